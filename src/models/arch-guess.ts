// Which model a state dict is for, from its keys and shapes alone: a torchvision builder (block type, blocks per
// layer, groups and width from the 3x3 convolutions, classes from fc) or the sizes of a transformers ResNet (stem,
// stages, depths, hidden sizes, labels). Used by `resnet inspect`, and by the CLI when --weights names a file but no
// --arch. What weights cannot tell (the activation, where a stride sits, dilation) is not guessed.

import type { Tensor } from '../tensor/tensor.js';
import { ResNetConfig, type LayerType } from './hf-config.js';
import { torchvisionArchForHF } from './convert.js';

export type KeyFamily = 'torchvision' | 'hf' | 'unknown';

/** Which family's names a state dict uses. */
export function keyFamily(keys: Iterable<string>): KeyFamily {
  let tv = false, hf = false;
  for (const k of keys) {
    if (/^(conv1|bn1|fc)\.|^layer[1-4]\./.test(k)) tv = true;
    else if (/^(resnet\.)?(embedder|encoder)\.|^classifier\.1\./.test(k)) hf = true;
  }
  return tv === hf ? 'unknown' : tv ? 'torchvision' : 'hf';
}

export interface TorchvisionGuess {
  family: 'torchvision';
  /** The builder these weights fit, or null when no builder has this shape. */
  arch: string | null;
  block: 'basic' | 'bottleneck';
  layers: number[];
  groups: number;
  widthPerGroup: number;
  /** fc's outputs, or null without fc. */
  numClasses: number | null;
}

export interface HFGuess {
  family: 'hf';
  /** ResNetForImageClassification keys (resnet.*, classifier.*) or a base model's (ResNetModel / ResNetBackbone). */
  className: 'ResNetForImageClassification' | 'ResNetModel';
  config: { num_channels: number; embedding_size: number; hidden_sizes: number[]; depths: number[]; layer_type: LayerType; num_labels: number | null };
  /** The torchvision builder of the same shape (if the activation is relu and no downsampling flag is set), or null. */
  torchvision: string | null;
}

/** torchvision's builders as [block, layers, groups, width_per_group] (torchvision/models/resnet.py). */
const BUILDERS: Readonly<Record<string, ['basic' | 'bottleneck', number[], number, number]>> = {
  resnet18: ['basic', [2, 2, 2, 2], 1, 64], resnet34: ['basic', [3, 4, 6, 3], 1, 64],
  resnet50: ['bottleneck', [3, 4, 6, 3], 1, 64], resnet101: ['bottleneck', [3, 4, 23, 3], 1, 64],
  resnet152: ['bottleneck', [3, 8, 36, 3], 1, 64], resnext50_32x4d: ['bottleneck', [3, 4, 6, 3], 32, 4],
  resnext101_32x8d: ['bottleneck', [3, 4, 23, 3], 32, 8], resnext101_64x4d: ['bottleneck', [3, 4, 23, 3], 64, 4],
  wide_resnet50_2: ['bottleneck', [3, 4, 6, 3], 1, 128], wide_resnet101_2: ['bottleneck', [3, 4, 23, 3], 1, 128],
};

function guessTorchvision(sd: Map<string, Tensor>): TorchvisionGuess | null {
  const shape = (k: string) => sd.get(k)?.shape;
  const layers = [1, 2, 3, 4].map((i) => {
    let j = 0;
    while (sd.has(`layer${i}.${j}.conv1.weight`)) j++;
    return j;
  });
  if (layers.some((n) => n === 0)) return null;
  const block = sd.has('layer1.0.conv3.weight') ? 'bottleneck' : 'basic';
  let groups = 1, widthPerGroup = 64;
  const c2 = shape('layer1.0.conv2.weight');
  if (block === 'bottleneck' && c2 && c2.length === 4 && c2[1] > 0) {
    groups = c2[0] / c2[1];
    widthPerGroup = c2[0] / groups;
  }
  const stem = shape('conv1.weight');
  const standardStem = !!stem && stem.join() === '64,3,7,7';
  const arch = Object.keys(BUILDERS).find((a) => {
    const [b, l, g, w] = BUILDERS[a];
    return standardStem && b === block && g === groups && w === widthPerGroup && l.every((n, i) => n === layers[i]);
  }) ?? null;
  return { family: 'torchvision', arch, block, layers, groups, widthPerGroup, numClasses: shape('fc.weight')?.[0] ?? null };
}

function guessHF(sd: Map<string, Tensor>): HFGuess | null {
  const prefixed = [...sd.keys()].some((k) => k.startsWith('resnet.'));
  const p = prefixed ? 'resnet.' : '';
  const stem = sd.get(`${p}embedder.embedder.convolution.weight`)?.shape;
  if (!stem || stem.length !== 4) return null;
  const layerType: LayerType = sd.has(`${p}encoder.stages.0.layers.0.layer.2.convolution.weight`) ? 'bottleneck' : 'basic';
  const depths: number[] = [], hidden: number[] = [];
  for (let s = 0; sd.has(`${p}encoder.stages.${s}.layers.0.layer.0.convolution.weight`); s++) {
    let j = 0;
    while (sd.has(`${p}encoder.stages.${s}.layers.${j}.layer.0.convolution.weight`)) j++;
    depths.push(j);
    hidden.push(sd.get(`${p}encoder.stages.${s}.layers.0.layer.${layerType === 'bottleneck' ? 2 : 1}.convolution.weight`)?.shape[0] ?? 0);
  }
  if (!depths.length || hidden.includes(0)) return null;
  const labels = sd.get('classifier.1.weight')?.shape[0] ?? (prefixed ? 0 : null);
  const config = { num_channels: stem[1], embedding_size: stem[0], hidden_sizes: hidden, depths, layer_type: layerType, num_labels: labels };
  let torchvision: string | null = null;
  try {
    torchvision = torchvisionArchForHF(new ResNetConfig({ numChannels: stem[1], embeddingSize: stem[0], hiddenSizes: hidden, depths, layerType, numLabels: labels ?? 0 })).arch;
  } catch {
    // sizes no torchvision ResNet has
  }
  return { family: 'hf', className: prefixed ? 'ResNetForImageClassification' : 'ResNetModel', config, torchvision };
}

/** The architecture a state dict fits, as far as its keys and shapes tell; null when it is neither family's. */
export function guessArchitecture(sd: Map<string, Tensor>): TorchvisionGuess | HFGuess | null {
  const family = keyFamily(sd.keys());
  if (family === 'torchvision') return guessTorchvision(sd);
  if (family === 'hf') return guessHF(sd);
  return null;
}

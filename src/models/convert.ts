// The one explicit map between torchvision's and transformers' ResNet state dicts, and the configs that make the two
// families the same network (torchvision's ResNet is transformers' with embedding 64, relu, no downsampling in the
// first stage and the stride on the 3x3 convolution: downsample_in_bottleneck false).
//
//   conv1.weight                       <-> resnet.embedder.embedder.convolution.weight
//   bn1.<bn>                           <-> resnet.embedder.embedder.normalization.<bn>
//   layer{i}.{j}.conv{k}.weight        <-> resnet.encoder.stages.{i-1}.layers.{j}.layer.{k-1}.convolution.weight
//   layer{i}.{j}.bn{k}.<bn>            <-> resnet.encoder.stages.{i-1}.layers.{j}.layer.{k-1}.normalization.<bn>
//   layer{i}.{j}.downsample.0.weight   <-> resnet.encoder.stages.{i-1}.layers.{j}.shortcut.convolution.weight
//   layer{i}.{j}.downsample.1.<bn>     <-> resnet.encoder.stages.{i-1}.layers.{j}.shortcut.normalization.<bn>
//   fc.weight, fc.bias                 <-> classifier.1.weight, classifier.1.bias
//
// <bn> is weight, bias, running_mean, running_var or num_batches_tracked. ResNetModel and ResNetBackbone keys have no
// `resnet.` prefix and no classifier. Keys map one to one (a key that does not map is an error naming it), tensors
// are passed through (the same objects, not copies), and the result is in the target model's state_dict order.

import type { Tensor } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';
import { describe } from '../ops/check.js';
import { BasicBlock, Bottleneck } from './resnet.js';
import { ResNetConfig, type LayerType } from './hf-config.js';

export type StateDictLike = Map<string, Tensor> | Readonly<Record<string, Tensor>>;
export type HFTarget = 'ResNetForImageClassification' | 'ResNetModel' | 'ResNetBackbone';

/** One tensor's place in either family. sub: 0..2 the convs of a block (conv{k} / layer.{k-1}), 3 its shortcut. */
interface Slot {
  part: 0 | 1 | 2; // stem, blocks, head
  stage: number;
  block: number;
  sub: number;
  kind: 'conv' | 'bn' | 'fc';
  param: string;
}

const BN_PARAMS = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'];

function slot(part: 0 | 1 | 2, stage: number, block: number, sub: number, kind: Slot['kind'], param: string): Slot | null {
  const ok = kind === 'conv' ? param === 'weight' : kind === 'bn' ? BN_PARAMS.includes(param) : param === 'weight' || param === 'bias';
  return ok ? { part, stage, block, sub, kind, param } : null;
}

function parseTorchvision(key: string): Slot | null {
  let m: RegExpMatchArray | null;
  if ((m = key.match(/^conv1\.(\w+)$/))) return slot(0, 0, 0, 0, 'conv', m[1]);
  if ((m = key.match(/^bn1\.(\w+)$/))) return slot(0, 0, 0, 0, 'bn', m[1]);
  if ((m = key.match(/^layer([1-4])\.(0|[1-9]\d*)\.(conv|bn)([1-3])\.(\w+)$/))) {
    return slot(1, Number(m[1]) - 1, Number(m[2]), Number(m[4]) - 1, m[3] as 'conv' | 'bn', m[5]);
  }
  if ((m = key.match(/^layer([1-4])\.(0|[1-9]\d*)\.downsample\.([01])\.(\w+)$/))) {
    return slot(1, Number(m[1]) - 1, Number(m[2]), 3, m[3] === '0' ? 'conv' : 'bn', m[4]);
  }
  if ((m = key.match(/^fc\.(\w+)$/))) return slot(2, 0, 0, 0, 'fc', m[1]);
  return null;
}

/** `key` without its `resnet.` prefix when `prefixed`; the classifier only exists in the prefixed form. */
function parseHF(key: string, prefixed: boolean): Slot | null {
  let m: RegExpMatchArray | null;
  if (prefixed && (m = key.match(/^classifier\.1\.(\w+)$/))) return slot(2, 0, 0, 0, 'fc', m[1]);
  if (prefixed) {
    if (!key.startsWith('resnet.')) return null;
    key = key.slice('resnet.'.length);
  }
  const mod = (s: string) => (s === 'convolution' ? 'conv' : 'bn');
  if ((m = key.match(/^embedder\.embedder\.(convolution|normalization)\.(\w+)$/))) return slot(0, 0, 0, 0, mod(m[1]), m[2]);
  if ((m = key.match(/^encoder\.stages\.([0-3])\.layers\.(0|[1-9]\d*)\.layer\.([0-2])\.(convolution|normalization)\.(\w+)$/))) {
    return slot(1, Number(m[1]), Number(m[2]), Number(m[3]), mod(m[4]), m[5]);
  }
  if ((m = key.match(/^encoder\.stages\.([0-3])\.layers\.(0|[1-9]\d*)\.shortcut\.(convolution|normalization)\.(\w+)$/))) {
    return slot(1, Number(m[1]), Number(m[2]), 3, mod(m[3]), m[4]);
  }
  return null;
}

function torchvisionKey(s: Slot): string {
  if (s.part === 0) return `${s.kind === 'conv' ? 'conv1' : 'bn1'}.${s.param}`;
  if (s.part === 2) return `fc.${s.param}`;
  const block = `layer${s.stage + 1}.${s.block}`;
  if (s.sub === 3) return `${block}.downsample.${s.kind === 'conv' ? 0 : 1}.${s.param}`;
  return `${block}.${s.kind}${s.sub + 1}.${s.param}`;
}

function hfKey(s: Slot, prefix: string): string {
  const mod = s.kind === 'conv' ? 'convolution' : 'normalization';
  if (s.part === 0) return `${prefix}embedder.embedder.${mod}.${s.param}`;
  if (s.part === 2) return `classifier.1.${s.param}`;
  const layer = `${prefix}encoder.stages.${s.stage}.layers.${s.block}`;
  return s.sub === 3 ? `${layer}.shortcut.${mod}.${s.param}` : `${layer}.layer.${s.sub}.${mod}.${s.param}`;
}

/** Sort keys that give each family's state_dict order: torchvision lists a block's downsample last, transformers its shortcut first. */
function order(s: Slot, family: 'tv' | 'hf'): number[] {
  const pos = s.sub === 3 ? (family === 'tv' ? 6 : 0) : 2 * s.sub + (family === 'tv' ? 0 : 2);
  const param = s.kind === 'fc' ? ['weight', 'bias'].indexOf(s.param) : BN_PARAMS.indexOf(s.param);
  return [s.part, s.stage, s.block, pos + (s.kind === 'bn' ? 1 : 0), param];
}

function sorted(entries: { key: string; t: Tensor; rank: number[] }[]): Map<string, Tensor> {
  entries.sort((a, b) => {
    for (let i = 0; i < a.rank.length; i++) if (a.rank[i] !== b.rank[i]) return a.rank[i] - b.rank[i];
    return 0;
  });
  return new Map(entries.map((e) => [e.key, e.t]));
}

function entriesOf(sd: StateDictLike, what: string): [string, Tensor][] {
  if (sd instanceof Map) return [...sd];
  if (typeof sd !== 'object' || sd === null) throw new TypeError(`Expected a state dict (Map or object of tensors) for ${what} but received ${describe(sd)}`);
  return Object.entries(sd);
}

/** ResNeXt and wide ResNets have torchvision keys but no transformers equivalent: refuse them by their shapes. */
function checkExpressible(tv: Map<string, Tensor>): void {
  for (const [key, t] of tv) {
    const m = key.match(/^(layer\d\.\d+)\.conv2\.weight$/);
    if (!m || !tv.has(`${m[1]}.conv3.weight`)) continue;
    const w = t.shape[0];
    if (t.shape[1] !== w) {
      throw new RangeError(`torchvisionToHF: ${key} has shape ${fmtShape(t.shape)}, a grouped convolution (ResNeXt, groups=${w / t.shape[1]}); transformers' ResNetBottleNeckLayer has no groups`);
    }
    const out = tv.get(`${m[1]}.conv3.weight`)!.shape[0];
    if (out !== 4 * w) {
      throw new RangeError(`torchvisionToHF: ${key} has ${w} channels for a block of ${out} outputs (a wide ResNet); transformers' ResNetBottleNeckLayer always uses out_channels / 4 = ${out / 4}`);
    }
  }
}

export interface TorchvisionToHFOptions {
  /** The model the keys are for (default ResNetForImageClassification; the other two have no prefix and no head). */
  target?: HFTarget;
  /**
   * The head's label count. When given, fc.weight must have that many rows; 0 drops fc (transformers' head is then
   * an Identity with no parameters).
   */
  numLabels?: number;
}

/** torchvision ResNet (resnet18 ... resnet152) state dict -> transformers keys. */
export function torchvisionToHF(sd: StateDictLike, o: TorchvisionToHFOptions = {}): Map<string, Tensor> {
  const target = o.target ?? 'ResNetForImageClassification';
  if (!['ResNetForImageClassification', 'ResNetModel', 'ResNetBackbone'].includes(target)) {
    throw new RangeError(`Expected ResNetForImageClassification, ResNetModel or ResNetBackbone for target but received ${describe(target)}`);
  }
  const classifier = target === 'ResNetForImageClassification';
  if (o.numLabels !== undefined && (!classifier || !Number.isInteger(o.numLabels) || o.numLabels < 0)) {
    throw new RangeError(`Expected an integer >= 0 for numLabels (ResNetForImageClassification only) but received ${describe(o.numLabels)}`);
  }
  const tv = new Map(entriesOf(sd, 'torchvisionToHF'));
  checkExpressible(tv);
  const out: { key: string; t: Tensor; rank: number[] }[] = [];
  for (const [key, t] of tv) {
    const s = parseTorchvision(key);
    if (!s) throw new RangeError(`torchvisionToHF: key "${key}" has no transformers equivalent (not a torchvision ResNet key)`);
    if (s.part === 2) {
      if (!classifier || o.numLabels === 0) continue;
      if (o.numLabels !== undefined && t.shape[0] !== o.numLabels) {
        throw new RangeError(`torchvisionToHF: ${key} has shape ${fmtShape(t.shape)} but numLabels is ${o.numLabels}`);
      }
    }
    out.push({ key: hfKey(s, classifier ? 'resnet.' : ''), t, rank: order(s, 'hf') });
  }
  return sorted(out);
}

/**
 * transformers ResNet state dict -> torchvision keys. Accepts ResNetForImageClassification keys (resnet.*,
 * classifier.1.*) or ResNetModel / ResNetBackbone keys (embedder.*, encoder.*; the result then has no fc).
 */
export function hfToTorchvision(sd: StateDictLike): Map<string, Tensor> {
  const entries = entriesOf(sd, 'hfToTorchvision');
  const prefixed = entries.some(([k]) => k.startsWith('resnet.') || k.startsWith('classifier.'));
  const out: { key: string; t: Tensor; rank: number[] }[] = [];
  for (const [key, t] of entries) {
    const s = parseHF(key, prefixed);
    if (!s) throw new RangeError(`hfToTorchvision: key "${key}" has no torchvision equivalent${prefixed ? ' (ResNetForImageClassification keys start with resnet. or classifier.1.)' : ''}`);
    out.push({ key: torchvisionKey(s), t, rank: order(s, 'tv') });
  }
  return sorted(out);
}

const TV_ARCHS: Readonly<Record<string, [LayerType, number[]]>> = {
  resnet18: ['basic', [2, 2, 2, 2]],
  resnet34: ['basic', [3, 4, 6, 3]],
  resnet50: ['bottleneck', [3, 4, 6, 3]],
  resnet101: ['bottleneck', [3, 4, 23, 3]],
  resnet152: ['bottleneck', [3, 8, 36, 3]],
};

const TV_UNSUPPORTED: Readonly<Record<string, [number, number]>> = {
  resnext50_32x4d: [32, 4], resnext101_32x8d: [32, 8], resnext101_64x4d: [64, 4], wide_resnet50_2: [1, 128], wide_resnet101_2: [1, 128],
};

export interface TorchvisionArch {
  block: 'basic' | 'bottleneck' | typeof BasicBlock | typeof Bottleneck;
  layers: readonly number[];
  groups?: number;
  widthPerGroup?: number;
  replaceStrideWithDilation?: readonly boolean[] | null;
}

/**
 * The ResNetConfig of the transformers model equal to a torchvision ResNet: an arch name (resnet18 ... resnet152) or
 * torchvision's ResNet arguments. numLabels defaults to torchvision's num_classes default, 1000.
 */
export function hfConfigForTorchvision(arch: string | TorchvisionArch, o: { numLabels?: number } = {}): ResNetConfig {
  let name: string, layerType: LayerType, layers: readonly number[], groups = 1, width = 64, dilate = false;
  if (typeof arch === 'string') {
    name = arch;
    if (Object.prototype.hasOwnProperty.call(TV_UNSUPPORTED, arch)) [groups, width] = TV_UNSUPPORTED[arch];
    else if (Object.prototype.hasOwnProperty.call(TV_ARCHS, arch)) [layerType, layers] = TV_ARCHS[arch];
    else throw new RangeError(`Unknown torchvision ResNet ${arch}; known: ${[...Object.keys(TV_ARCHS), ...Object.keys(TV_UNSUPPORTED)].join(', ')}`);
  } else {
    if (typeof arch !== 'object' || arch === null) throw new TypeError(`Expected an arch name or {block, layers} but received ${describe(arch)}`);
    name = 'this torchvision ResNet';
    const b = arch.block;
    if (b === 'basic' || b === BasicBlock) layerType = 'basic';
    else if (b === 'bottleneck' || b === Bottleneck) layerType = 'bottleneck';
    else throw new TypeError(`Expected 'basic', 'bottleneck', BasicBlock or Bottleneck for block but received ${describe(b)}`);
    layers = arch.layers;
    if (!Array.isArray(layers) || layers.length !== 4) throw new RangeError(`Expected 4 block counts for layers but received ${describe(layers)}`);
    groups = arch.groups ?? 1;
    width = arch.widthPerGroup ?? 64;
    dilate = (arch.replaceStrideWithDilation ?? []).some(Boolean);
  }
  const why = `${name} cannot be expressed by transformers' ResNet`;
  if (groups !== 1) throw new RangeError(`${why}: it uses grouped convolutions (groups=${groups}, width_per_group=${width}) and ResNetBottleNeckLayer has no groups`);
  if (width !== 64) throw new RangeError(`${why}: its bottleneck is ${width / 64}x wider (width_per_group=${width}) but ResNetBottleNeckLayer's width is always out_channels / 4`);
  if (dilate) throw new RangeError(`${why}: transformers has no dilated convolutions (replace_stride_with_dilation)`);
  return new ResNetConfig({
    numChannels: 3,
    embeddingSize: 64,
    hiddenSizes: layerType! === 'basic' ? [64, 128, 256, 512] : [256, 512, 1024, 2048],
    depths: [...layers!],
    layerType: layerType!,
    hiddenAct: 'relu',
    downsampleInFirstStage: false,
    downsampleInBottleneck: false,
    numLabels: o.numLabels ?? 1000,
  });
}

/**
 * The torchvision ResNet a transformers config equals ({arch, block, layers, numClasses}; arch is null for block
 * counts no builder has), or an error saying which field torchvision cannot express.
 */
export function torchvisionArchForHF(c: ResNetConfig): { arch: string | null; block: 'basic' | 'bottleneck'; layers: number[]; numClasses: number } {
  const sizes = c.layerType === 'basic' ? [64, 128, 256, 512] : [256, 512, 1024, 2048];
  const fail = (why: string) => new RangeError(`this transformers ResNet has no torchvision equivalent: ${why}`);
  if (c.numChannels !== 3) throw fail(`num_channels is ${c.numChannels} (torchvision's stem takes 3)`);
  if (c.embeddingSize !== 64) throw fail(`embedding_size is ${c.embeddingSize} (torchvision's is 64)`);
  if (c.hiddenAct !== 'relu') throw fail(`hidden_act is ${c.hiddenAct} (torchvision uses relu)`);
  if (c.downsampleInFirstStage) throw fail('downsample_in_first_stage is true (torchvision\'s layer1 has stride 1)');
  if (c.layerType === 'bottleneck' && c.downsampleInBottleneck) throw fail('downsample_in_bottleneck is true (torchvision strides the 3x3 convolution)');
  if (c.hiddenSizes.length !== 4 || c.hiddenSizes.some((h, i) => h !== sizes[i])) {
    throw fail(`hidden_sizes is [${c.hiddenSizes.join(', ')}] (torchvision's ${c.layerType} ResNets have [${sizes.join(', ')}])`);
  }
  const arch = Object.keys(TV_ARCHS).find((a) => TV_ARCHS[a][0] === c.layerType && TV_ARCHS[a][1].every((d, i) => d === c.depths[i])) ?? null;
  return { arch, block: c.layerType, layers: [...c.depths], numClasses: c.numLabels };
}

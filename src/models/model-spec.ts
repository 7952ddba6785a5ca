// What model a training run trains, as data the checkpoint carries (model_spec), so `resnet eval` and a resumed run
// rebuild exactly that model: a torchvision builder or a transformers config, the class count, the input channels
// and the stem.
//
// Stems: 'imagenet' is the models' own (7x7 stride-2 conv, 3x3 stride-2 max pool: 224 -> 56). 'cifar' is the
// usual recipe for small images (28x28 Fashion-MNIST, 32x32 CIFAR): a 3x3 stride-1 conv (padding 1, no bias) and
// no max pool, so a 28x28 input reaches layer4 at 4x4 instead of 1x1. In PyTorch the same model is
//   m = torchvision.models.resnet18(num_classes=10)
//   m.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False); m.maxpool = nn.Identity()
// (for transformers: resnet.embedder.embedder = ResNetConvLayer(C, embedding_size, 3, 1); resnet.embedder.pooler =
// Identity). Identity has no state, so the state dict keys are the builder's.
// 'small' is the same 3x3 stride-1 conv with the model's max pool kept (3x3, stride 2, padding 1), so 28x28 reaches
// layer1 at 14x14 (layer4 at 2x2): a quarter of the cifar stem's multiply-adds, for a 4x faster Fashion-MNIST run.
// In PyTorch: m.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False) and nothing else (for transformers:
// the embedder's convolution replaced, its pooler kept). Its weights cannot be told from the cifar stem's, so a
// checkpoint without a model_spec is taken for cifar.
// Input channels: torchvision's conv1 is replaced by one with in_channels inputs; transformers' num_channels is
// set in the config. Pretrained weights for another channel count are adapted (adaptInputConv).

import { fmtShape, shapeEq } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { Generator } from '../tensor/random.js';
import type { Module } from '../nn/module.js';
import { Conv2d, Identity } from '../nn/layers.js';
import { kaimingNormal_ } from '../nn/init.js';
import { ResNet, getModel, listModels } from './resnet.js';
import { ResNetConfig, ResNetConvLayer, ResNetForImageClassification } from './hf.js';
import { configWithOverrides } from './pretrained.js';
import { hfToTorchvision, torchvisionToHF } from './convert.js';
import type { ResolvedWeights } from './factory.js';

export type Stem = 'imagenet' | 'cifar' | 'small';
export const STEMS: readonly Stem[] = ['imagenet', 'cifar', 'small'];

/** Checkpoint-facing (snake_case keys). */
export interface ModelSpec {
  family: 'torchvision' | 'hf';
  /** The torchvision builder (family torchvision). */
  arch: string | null;
  /** The transformers config.json text, with num_channels and the labels set (family hf). */
  hf_config: string | null;
  num_classes: number;
  in_channels: number;
  stem: Stem;
}

export interface SpecOptions {
  /** A torchvision builder name or a transformers config.json path / ResNetConfig. */
  arch: string | ResNetConfig;
  numClasses: number;
  inChannels?: number;
  stem?: Stem;
  /** Class names (the HF config's id2label). */
  classNames?: readonly string[];
}

/** A spec from a builder name or an HF config (a path ending in .json, or a ResNetConfig). */
export function makeSpec(o: SpecOptions): ModelSpec {
  const inChannels = o.inChannels ?? 3, stem = o.stem ?? 'imagenet';
  if (!Number.isInteger(o.numClasses) || o.numClasses < 1) throw new RangeError(`Expected a positive integer for numClasses but received ${o.numClasses}`);
  if (!Number.isInteger(inChannels) || inChannels < 1) throw new RangeError(`Expected a positive integer for inChannels but received ${inChannels}`);
  if (!STEMS.includes(stem)) throw new RangeError(`Expected one of ${STEMS.join(', ')} for stem but received ${String(stem)}`);
  if (typeof o.arch === 'string' && !o.arch.toLowerCase().endsWith('.json')) {
    if (!listModels().includes(o.arch)) throw new RangeError(`unknown architecture '${o.arch}'; known: ${listModels().join(', ')} (or a transformers config.json)`);
    return { family: 'torchvision', arch: o.arch, hf_config: null, num_classes: o.numClasses, in_channels: inChannels, stem };
  }
  const base = typeof o.arch === 'string' ? ResNetConfig.fromJSONFile(o.arch) : o.arch;
  const labels = o.classNames && o.classNames.length === o.numClasses ? Object.fromEntries(o.classNames.map((c, i) => [String(i), c])) : undefined;
  const withLabels = configWithOverrides(base, labels ? { id2label: labels } : { numLabels: o.numClasses });
  const config = ResNetConfig.fromDict({ ...withLabels.toDict(), num_channels: inChannels });
  return { family: 'hf', arch: null, hf_config: config.toJSONString(), num_classes: o.numClasses, in_channels: inChannels, stem };
}

/** A spec as read from a checkpoint, checked. */
export function specFromCheckpoint(v: unknown, where: string): ModelSpec {
  const s = v as Partial<ModelSpec> | null;
  const ok = !!s && typeof s === 'object' && (s.family === 'torchvision' ? typeof s.arch === 'string' : s.family === 'hf' && typeof s.hf_config === 'string') &&
    Number.isInteger(s.num_classes) && Number.isInteger(s.in_channels) && STEMS.includes(s.stem as Stem);
  if (!ok) throw new TypeError(`${where}: model_spec is not a valid model description (family, arch or hf_config, num_classes, in_channels, stem)`);
  return { family: s!.family!, arch: s!.arch ?? null, hf_config: s!.hf_config ?? null, num_classes: s!.num_classes!, in_channels: s!.in_channels!, stem: s!.stem! };
}

/** The key of the stem convolution's weight and of the head's parameters in a spec's state dict. */
export function stemKey(spec: ModelSpec): string {
  return spec.family === 'torchvision' ? 'conv1.weight' : 'resnet.embedder.embedder.convolution.weight';
}

export function headKeys(spec: ModelSpec): string[] {
  return spec.family === 'torchvision' ? ['fc.weight', 'fc.bias'] : ['classifier.1.weight', 'classifier.1.bias'];
}

/**
 * The spec a state dict fits, given the architecture (for checkpoints without a model_spec, e.g. one saved by a
 * PyTorch script): classes from the head's rows, channels and stem from the stem convolution's shape.
 */
export function inferSpec(arch: string | ResNetConfig, sd: Map<string, Tensor>): ModelSpec {
  const probe = makeSpec({ arch, numClasses: 1 });
  const head = sd.get(headKeys(probe)[0]);
  const stem = sd.get(stemKey(probe)) ?? sd.get(stemKey(probe).replace(/^resnet\./, ''));
  if (!head || head.ndim !== 2) throw new RangeError(`the weights have no ${headKeys(probe)[0]} (a ${probe.family} classification head) to take the class count from`);
  if (!stem || stem.ndim !== 4) throw new RangeError(`the weights have no 4-d ${stemKey(probe)} (the stem convolution)`);
  return makeSpec({ arch, numClasses: head.shape[0], inChannels: stem.shape[1], stem: stem.shape[2] === 3 && stem.shape[3] === 3 ? 'cifar' : 'imagenet' });
}

/** The model a spec describes, with seeded initial weights. */
export function buildSpecModel(spec: ModelSpec, o: { seed?: number } = {}): Module {
  const g = new Generator(o.seed ?? 0);
  const init = (c: Conv2d) => kaimingNormal_(c.weight, { mode: 'fan_out', nonlinearity: 'relu', generator: g });
  if (spec.family === 'torchvision') {
    const m = getModel(spec.arch!, { numClasses: spec.num_classes, generator: g }) as ResNet;
    const out = m.conv1.outChannels;
    if (spec.stem !== 'imagenet') {
      m.conv1 = new Conv2d(spec.in_channels, out, 3, { stride: 1, padding: 1, bias: false });
      if (spec.stem === 'cifar') (m as unknown as { maxpool: Module }).maxpool = new Identity();
      init(m.conv1);
    } else if (spec.in_channels !== 3) {
      m.conv1 = new Conv2d(spec.in_channels, out, 7, { stride: 2, padding: 3, bias: false });
      init(m.conv1);
    }
    return m;
  }
  const config = ResNetConfig.fromDict(JSON.parse(spec.hf_config!) as Record<string, unknown>);
  const m = new ResNetForImageClassification(config, { generator: g });
  if (spec.stem !== 'imagenet') {
    const emb = m.resnet.embedder;
    emb.embedder = new ResNetConvLayer(config.numChannels, config.embeddingSize, 3, 1, config.hiddenAct);
    if (spec.stem === 'cifar') (emb as unknown as { pooler: Module }).pooler = new Identity();
    init(emb.embedder.convolution);
  }
  return m;
}

/**
 * A stem convolution's weight (O, Cs, KH, KW) for Ct input channels (timm's adapt_input_conv): Ct = 1 sums the
 * source channels (a grey image through RGB filters); otherwise channel c takes source channel c % Cs scaled by
 * Cs / Ct. Null when the output channels or the kernel differ (a different stem: nothing to adapt).
 */
export function adaptInputConv(w: Tensor, target: readonly number[]): Tensor | null {
  const [O, Cs, KH, KW] = w.shape, Ct = target[1];
  if (w.ndim !== 4 || target.length !== 4 || target[0] !== O || target[2] !== KH || target[3] !== KW) return null;
  const src = w.contiguousData() as Float32Array, k = KH * KW;
  const out = new Float32Array(O * Ct * k);
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < Ct; c++) {
      for (let i = 0; i < k; i++) {
        let v = 0;
        if (Ct === 1) for (let s = 0; s < Cs; s++) v += src[(o * Cs + s) * k + i];
        else v = (src[(o * Cs + (c % Cs)) * k + i] * Cs) / Ct;
        out[(o * Ct + c) * k + i] = v;
      }
    }
  }
  return new Tensor(out, [O, Ct, KH, KW]);
}

/**
 * Load pretrained weights into a model built from `spec`, converting between the families when needed. The head
 * and the stem may differ (a new head for the new classes; a cifar stem; another channel count, adapted): those are
 * returned as notes. Any other missing, unexpected or mismatched key is an error listing them all.
 */
export function loadWeightsInto(model: Module, spec: ModelSpec, w: Pick<ResolvedWeights, 'stateDict' | 'family' | 'source'>): string[] {
  let sd = w.stateDict;
  if (spec.family === 'torchvision' && w.family === 'hf') sd = hfToTorchvision(sd);
  else if (spec.family === 'hf' && w.family === 'torchvision') sd = torchvisionToHF(sd);
  else if (spec.family === 'hf' && ![...sd.keys()].some((k) => k.startsWith('resnet.'))) sd = new Map([...sd].map(([k, t]) => [`resnet.${k}`, t]));
  const own = model.stateDict();
  const head = headKeys(spec), stem = stemKey(spec);
  const load = new Map<string, Tensor>(), notes: string[] = [], problems: string[] = [];
  let newHead = false;
  for (const [k, t] of own) {
    const v = sd.get(k);
    if (v && shapeEq(v.shape, t.shape)) load.set(k, v);
    else if (head.includes(k)) newHead = true;
    else if (k === stem && v) {
      const a = adaptInputConv(v, t.shape);
      if (a) load.set(k, a);
      notes.push(a ? `${k}: adapted from ${v.shape[1]} to ${t.shape[1]} input channels` : `${k}: new ${spec.stem} stem (the weights' is ${fmtShape(v.shape)}, the model's ${fmtShape(t.shape)})`);
    } else if (!v) problems.push(`missing key "${k}"`);
    else problems.push(`size mismatch for ${k}: ${fmtShape(v.shape)} in the weights, ${fmtShape(t.shape)} in the model`);
  }
  for (const k of sd.keys()) if (!own.has(k) && !head.includes(k)) problems.push(`unexpected key "${k}"`);
  if (problems.length) throw new Error(`${w.source}: the weights do not fit ${spec.arch ?? 'the config'} (${spec.num_classes} classes, ${spec.in_channels} channels, ${spec.stem} stem):\n\t${problems.join('\n\t')}`);
  if (newHead) notes.unshift(`${head[0].replace(/\.weight$/, '')}: new head for ${spec.num_classes} classes (the weights' head is left out)`);
  model.loadStateDict(load, { strict: false });
  return notes;
}

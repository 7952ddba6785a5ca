// A model summary: one row per module (dotted name, type, output shape, own parameters, multiply-adds), as
// torchinfo prints, plus totals, for torchvision and Hugging Face ResNets (or any Module with a forward(x)).
//
// The rows come from running the model's own forward on a zero input with a forward hook on every module
// (nn/module.ts). By default the heavy leaf layers (Conv2d, Linear, BatchNorm2d, pooling, activations) run as
// shape functions only: each returns zeros of the shape the real op would produce, after the same argument checks,
// so a 224x224 wide_resnet101_2 is summarised in well under a second instead of computing 22.75 G multiply-adds;
// { compute: true } runs the real kernels instead (the tests check that both give the same rows).
//
// Multiply-adds count what torchvision's "GFLOPS" metadata counts: one per weight use in Conv2d and Linear
// (output elements x input channels per group x kernel area; output elements x in_features). BatchNorm, ReLU,
// pooling and the residual add are not counted: with them resnet18 would be 1.82 G and resnet50 4.10 G instead of the
// published 1.81 and 4.09. Sizes are in bytes; the table prints MiB (2^20 bytes), the unit of torchvision's file sizes.

import { Tensor } from '../tensor/tensor.js';
import { zeros } from '../tensor/creation.js';
import { noGrad } from '../tensor/autograd.js';
import { conv2dParams } from '../ops/conv.js';
import { maxPool2dParams } from '../ops/pool.js';
import { describe, expectInt } from '../ops/check.js';
import { Module, hasInstanceForward } from '../nn/module.js';
import { skipInit } from '../nn/init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU } from '../nn/layers.js';
import { GELU, LeakyReLU, Mish, QuickGELU, ReLU6, ReLUSquared, SiLU, Sigmoid, Tanh } from '../nn/activation.js';
import { ResNetConfig, ResNetForImageClassification, ResNetPreTrainedModel } from './hf.js';

/** A tensor's shape, or the shapes inside a structured output (an HF output object, a tuple). */
export type OutputShape = number[] | OutputShape[] | { [field: string]: OutputShape };

export interface SummaryRow {
  /** Dotted path, as in the state dict (`layer1.0.conv1`). */
  name: string;
  /** The module's class name. */
  type: string;
  /** Number of dots + 1: `layer1` is 1, `layer1.0.conv1` is 3. */
  depth: number;
  /** Output of the last call (batch dimension included); null when the forward never called the module (a ModuleList). */
  outputShape: OutputShape | null;
  /** Times the forward called it (a block's relu runs 2 or 3 times). */
  calls: number;
  /** Parameters the module holds itself. */
  params: number;
  /** Parameters of the module and its descendants (a shared one counted once). */
  paramsTotal: number;
  /** Conv2d / Linear multiply-adds of this module over all its calls (0 for other layers and containers). */
  macs: number;
  /** Multiply-adds of the module and its descendants. */
  macsTotal: number;
}

export interface Summary {
  /** The model's class name. */
  model: string;
  /** The input the forward ran on: [batch, C, H, W]. */
  inputShape: number[];
  outputShape: OutputShape | null;
  rows: SummaryRow[];
  totalParams: number;
  trainableParams: number;
  /** Conv2d and Linear multiply-adds for the whole batch (torchvision's "GFLOPS" x 1e9 at batch 1, 224x224). */
  totalMacs: number;
  /** Parameters and buffers (what a checkpoint holds). */
  paramsBytes: number;
  buffersBytes: number;
  /** Every leaf module call's output (what one forward writes). */
  activationsBytes: number;
  inputBytes: number;
  /** params + buffers + activations + input. */
  totalBytes: number;
}

export interface SummaryOptions {
  /** [C, H, W] of one sample; default [3, 224, 224] (an HF model: [config.numChannels, 224, 224]). */
  inputShape?: readonly number[];
  /** Batch size of the zero input (default 1). */
  batch?: number;
  /** Run the real kernels instead of shape functions (slower; the same rows). */
  compute?: boolean;
}

type Forward = (...args: unknown[]) => unknown;

const PASSTHROUGH: (abstract new (...a: never[]) => Module)[] = [ReLU, Identity, GELU, SiLU, Sigmoid, Tanh, LeakyReLU, ReLU6, Mish, QuickGELU, ReLUSquared];

function exactly(m: Module, cls: abstract new (...a: never[]) => Module): boolean {
  return Object.getPrototypeOf(m) === cls.prototype;
}

function input4d(x: unknown, what: string): Tensor {
  if (!(x instanceof Tensor) || x.ndim !== 4) throw new RangeError(`Expected a 4D (N,C,H,W) input for ${what} but received ${describe(x)}`);
  return x;
}

/** A shape-only forward for the stock leaf layers (null: run the real one). Checks what the real op checks. */
function shapeForward(m: Module): Forward | null {
  if (exactly(m, Conv2d)) {
    const c = m as Conv2d;
    return (x) => {
      const p = conv2dParams(input4d(x, 'conv2d').shape, c.weight.shape, c.convOptions());
      return zeros([p.N, p.O, p.OH, p.OW]);
    };
  }
  if (exactly(m, Linear)) {
    const l = m as Linear;
    return (x) => {
      if (!(x instanceof Tensor) || x.ndim < 1) throw new RangeError(`Expected a linear input of at least 1 dim but received ${describe(x)}`);
      const K = x.shape[x.ndim - 1];
      if (K !== l.inFeatures) throw new RangeError(`mat1 and mat2 shapes cannot be multiplied (${x.numel / K}x${K} and ${l.inFeatures}x${l.outFeatures})`);
      return zeros([...x.shape.slice(0, -1), l.outFeatures]);
    };
  }
  if (exactly(m, BatchNorm2d)) {
    const bn = m as BatchNorm2d;
    return (x) => {
      const t = input4d(x, 'batch_norm');
      if (t.shape[1] !== bn.numFeatures) throw new RangeError(`running_mean should contain ${t.shape[1]} elements not ${bn.numFeatures}`);
      return t;
    };
  }
  if (exactly(m, MaxPool2d)) {
    const mp = m as MaxPool2d;
    return (x) => {
      const p = maxPool2dParams(input4d(x, 'max_pool2d').shape, { kernelSize: mp.kernelSize, ...mp.o });
      return zeros([p.N, p.C, p.OH, p.OW]);
    };
  }
  if (exactly(m, AdaptiveAvgPool2d)) {
    const ap = m as AdaptiveAvgPool2d;
    return (x) => {
      const [N, C, H, W] = input4d(x, 'adaptive_avg_pool2d').shape;
      const s = ap.outputSize;
      const [oh, ow] = typeof s === 'number' ? [s, s] : [s[0] ?? H, s[1] ?? W];
      return zeros([N, C, expectInt(oh, 'output_size', 1), expectInt(ow, 'output_size', 1)]);
    };
  }
  if (PASSTHROUGH.some((cls) => exactly(m, cls))) return (x) => x;
  return null;
}

/** Multiply-adds of one call, as torchvision counts them (Conv2d and Linear only). */
function callMacs(m: Module, out: unknown): number {
  if (!(out instanceof Tensor)) return 0;
  if (m instanceof Conv2d) return out.numel * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
  if (m instanceof Linear) return out.numel * m.inFeatures;
  return 0;
}

function shapeOf(v: unknown, depth = 0): OutputShape | null {
  if (v instanceof Tensor) return [...v.shape];
  if (depth > 4 || v === null || typeof v !== 'object') return null;
  if (Array.isArray(v)) {
    const s = v.map((e) => shapeOf(e, depth + 1)).filter((e): e is OutputShape => e !== null);
    return s.length ? s : null;
  }
  const out: Record<string, OutputShape> = {};
  for (const [k, e] of Object.entries(v)) {
    const s = shapeOf(e, depth + 1);
    if (s !== null) out[k] = s;
  }
  return Object.keys(out).length ? out : null;
}

function tensorBytes(v: unknown): number {
  if (v instanceof Tensor) return v.numel * v.data.BYTES_PER_ELEMENT;
  if (Array.isArray(v)) return v.reduce((s: number, e) => s + tensorBytes(e), 0);
  if (v !== null && typeof v === 'object') return Object.values(v).reduce((s: number, e) => s + tensorBytes(e), 0);
  return 0;
}

/**
 * Summarise `model` (or an HF ResNetConfig, built as ResNetForImageClassification without drawing initial values:
 * nn/init.ts skipInit; build a torchvision arch the same way, `summary(skipInit(() => resnet50()))`) on a zero input of
 * [batch, ...inputShape]. The model runs in eval mode without gradients and is left as it was (modes, hooks, forwards).
 */
export function summary(model: Module | ResNetConfig, o: SummaryOptions = {}): Summary {
  if (model instanceof ResNetConfig) model = skipInit(() => new ResNetForImageClassification(model as ResNetConfig)); // shapes only: no random draws
  if (!(model instanceof Module)) throw new TypeError(`Expected a Module or a ResNetConfig for model but received ${describe(model)}`);
  const root = model;
  const chw = [...(o.inputShape ?? [root instanceof ResNetPreTrainedModel ? root.config.numChannels : 3, 224, 224])];
  if (chw.length !== 3) throw new RangeError(`Expected [C, H, W] for inputShape but received ${describe(o.inputShape)}`);
  chw.forEach((d, i) => expectInt(d, `inputShape[${i}]`, 1));
  const batch = expectInt(o.batch ?? 1, 'batch', 1);
  const named = [...root.namedModules()];
  const stats = new Map<Module, { calls: number; out: unknown; macs: number }>(named.map(([, m]) => [m, { calls: 0, out: undefined, macs: 0 }]));
  let activationsBytes = 0;

  const modes = named.map(([, m]) => m.training);
  const patched: Module[] = [];
  const handles: { remove(): void }[] = [];
  let output: unknown;
  try {
    root.eval();
    if (!o.compute) {
      for (const [, m] of named) {
        const f = hasInstanceForward(m) ? null : shapeForward(m); // hooks or a caller's patch: run what is there
        if (!f) continue;
        patched.push(m);
        Object.defineProperty(m, 'forward', { value: f, writable: true, configurable: true, enumerable: false });
      }
    }
    for (const [, m] of named) {
      const leaf = m.children().length === 0;
      handles.push(m.registerForwardHook((mod, _inputs, out) => {
        const s = stats.get(mod)!;
        s.calls++;
        s.out = out;
        s.macs += callMacs(mod, out);
        if (leaf) activationsBytes += tensorBytes(out);
      }));
    }
    output = noGrad(() => root.forward(zeros([batch, ...chw])));
  } finally {
    for (const h of handles.reverse()) h.remove();
    for (const m of patched) delete (m as { forward?: unknown }).forward;
    named.forEach(([, m], i) => (m.training = modes[i]));
  }

  const macsTotal = new Map<Module, number>();
  const subtreeMacs = (m: Module): number => {
    let t = stats.get(m)!.macs;
    for (const c of m.children()) t += subtreeMacs(c);
    macsTotal.set(m, t);
    return t;
  };
  subtreeMacs(root);
  const rows: SummaryRow[] = named.slice(1).map(([name, m]) => {
    const s = stats.get(m)!;
    return {
      name, type: m.constructor.name, depth: name.split('.').length,
      outputShape: s.calls ? shapeOf(s.out) : null, calls: s.calls,
      params: m.ownParameters().reduce((n, [, p]) => n + p.numel, 0), paramsTotal: m.numParameters(),
      macs: s.macs, macsTotal: macsTotal.get(m)!,
    };
  });
  const bytes = (ts: Tensor[]): number => ts.reduce((n, t) => n + t.numel * t.data.BYTES_PER_ELEMENT, 0);
  const paramsBytes = bytes(root.parameters()), buffersBytes = bytes(root.buffers());
  const inputBytes = batch * chw[0] * chw[1] * chw[2] * 4;
  return {
    model: root.constructor.name, inputShape: [batch, ...chw], outputShape: shapeOf(output), rows,
    totalParams: root.numParameters(), trainableParams: root.numParameters(true), totalMacs: macsTotal.get(root)!,
    paramsBytes, buffersBytes, activationsBytes, inputBytes, totalBytes: paramsBytes + buffersBytes + activationsBytes + inputBytes,
  };
}

export interface FormatOptions {
  /** Show rows down to this depth (1: the top-level modules); default all. */
  depth?: number;
  /** Title line (default: the model's class name). */
  title?: string;
}

/** `64x112x112` for one sample (the batch dimension dropped), fields as `name: shape`. */
export function formatShape(s: OutputShape | null, dropBatch = true): string {
  if (s === null) return '--';
  if (s.length === 0 || (Array.isArray(s) && typeof s[0] === 'number')) {
    const dims = s as number[];
    return (dropBatch && dims.length > 1 ? dims.slice(1) : dims).join('x') || 'scalar';
  }
  if (Array.isArray(s)) return `[${(s as OutputShape[]).map((e) => formatShape(e, dropBatch)).join(', ')}]`;
  return Object.entries(s).map(([k, v]) => `${k}: ${formatShape(v, dropBatch)}`).join(', ');
}

const int = (n: number): string => n.toLocaleString('en-US');
const mib = (b: number): string => (b / 2 ** 20).toFixed(2);

/** Multiply-adds with a unit: 118.01M, 1.81G. */
export function formatMacs(n: number): string {
  if (n === 0) return '--';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

/**
 * The summary as a table, like torchinfo's: each row indented by depth; a container's Params and MACs are its
 * subtree's totals; a module called several times shows its last output and (xN).
 */
export function formatSummary(s: Summary, o: FormatOptions = {}): string {
  const depth = o.depth ?? Infinity;
  const rows = s.rows.filter((r) => r.depth <= depth);
  const cells = rows.map((r) => [
    `${'  '.repeat(r.depth - 1)}${r.name} (${r.type})${r.calls > 1 ? ` x${r.calls}` : ''}`,
    formatShape(r.outputShape), r.paramsTotal ? int(r.paramsTotal) : '--', formatMacs(r.macsTotal),
  ]);
  const head = ['Layer (type)', 'Output shape', 'Params', 'MACs'];
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `${c[0].padEnd(w[0])}  ${c[1].padEnd(w[1])}  ${c[2].padStart(w[2])}  ${c[3].padStart(w[3])}`.trimEnd();
  const rule = '='.repeat(w.reduce((a, b) => a + b, 0) + 6);
  return [
    `${o.title ?? s.model}: input ${s.inputShape.join('x')}, output ${formatShape(s.outputShape, false)} (shapes below are per sample)`,
    rule, line(head), rule, ...cells.map(line), rule,
    `Total params: ${int(s.totalParams)}`,
    `Trainable params: ${int(s.trainableParams)}`,
    `Non-trainable params: ${int(s.totalParams - s.trainableParams)}`,
    `Multiply-adds (conv + linear, as torchvision's GFLOPS): ${(s.totalMacs / 1e9).toFixed(2)} G`,
    rule,
    `Input size (MiB): ${mib(s.inputBytes)}`,
    `Forward activations (MiB): ${mib(s.activationsBytes)}`,
    `Params + buffers size (MiB): ${mib(s.paramsBytes + s.buffersBytes)}`,
    `Estimated total size (MiB): ${mib(s.totalBytes)}`,
    rule,
  ].join('\n');
}

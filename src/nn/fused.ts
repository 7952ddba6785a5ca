// Inference fusion of conv -> batch norm [-> + residual] [-> relu], the pattern every ResNet block is made of.
//
// In eval mode a BatchNorm2d that follows a Conv2d is an affine map per output channel, so it folds into the
// convolution: w' = w * s, b' = beta + (b - mean) * s with s = gamma / sqrt(var + eps) (computed in double,
// rounded once). The residual add and the relu then run in the convolution's epilogue, so a block's tail is
// one kernel call. The folded tensors are cached per (conv, bn) and rebuilt when any source tensor changes
// (their version counters). In training mode a BatchNorm2d directly followed by a ReLU still runs as one op (batch
// statistics, then the relu in the same pass); otherwise, or with any other norm layer, the modules run one by one.
// They also run one by one when a module involved has forward hooks or a patched forward (hasInstanceForward),
// so hooks observe every module, and inside withoutFusion(fn) (to compare fused and unfused results), and when a
// parameter of the pair wants a gradient while grad mode is on (paramsWantGrad below).

import { Tensor } from '../tensor/tensor.js';
import { isGradEnabled } from '../tensor/autograd.js';
import * as F from '../ops/index.js';
import { recycle } from '../ops/recycle.js';
import { Module, hasInstanceForward } from './module.js';
import { BatchNorm2d, Conv2d, ReLU, Sequential } from './layers.js';

interface Folded {
  srcs: (Tensor | null)[];
  versions: number[];
  weight: Tensor;
  bias: Tensor;
}

const cache = new WeakMap<Conv2d, WeakMap<BatchNorm2d, Folded>>();

function sources(conv: Conv2d, bn: BatchNorm2d): (Tensor | null)[] {
  return [conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var];
}

/** The conv weight and bias with `bn` (eval mode, running statistics) folded in. */
export function foldConvBn(conv: Conv2d, bn: BatchNorm2d): { weight: Tensor; bias: Tensor } {
  const srcs = sources(conv, bn);
  const versions = srcs.map((t) => (t ? t.version : -1));
  let perConv = cache.get(conv);
  if (!perConv) cache.set(conv, (perConv = new WeakMap()));
  const hit = perConv.get(bn);
  if (hit && hit.srcs.every((t, i) => t === srcs[i] && versions[i] === hit.versions[i])) return hit;
  const O = conv.outChannels;
  if (bn.numFeatures !== O) throw new RangeError(`cannot fold ${bn.numFeatures}-channel batch norm into a ${O}-channel convolution`);
  const w = conv.weight.contiguousData() as Float32Array;
  const per = w.length / O;
  const fw = new Float32Array(w.length), fb = new Float32Array(O);
  const g = bn.weight?.contiguousData(), be = bn.bias?.contiguousData();
  const rm = bn.running_mean!.contiguousData(), rv = bn.running_var!.contiguousData();
  const cb = conv.bias?.contiguousData();
  for (let o = 0; o < O; o++) {
    const s = (g ? Number(g[o]) : 1) / Math.sqrt(Number(rv[o]) + bn.eps);
    for (let i = o * per; i < (o + 1) * per; i++) fw[i] = w[i] * s;
    fb[o] = (be ? Number(be[o]) : 0) + ((cb ? Number(cb[o]) : 0) - Number(rm[o])) * s;
  }
  const folded: Folded = { srcs, versions, weight: new Tensor(fw, conv.weight.shape), bias: new Tensor(fb, [O]) };
  perConv.set(bn, folded);
  return folded;
}

let unfusedDepth = 0;

/** Run fn with every fused path switched off (module by module, as in training mode but with eval semantics). */
export function withoutFusion<T>(fn: () => T): T {
  unfusedDepth++;
  try {
    return fn();
  } finally {
    unfusedDepth--;
  }
}

function canFold(conv: Module, norm: Module): norm is BatchNorm2d {
  return conv instanceof Conv2d && norm instanceof BatchNorm2d && !norm.training && !conv.training &&
    norm.running_mean !== null && norm.running_var !== null && unfusedDepth === 0 &&
    !hasInstanceForward(conv) && !hasInstanceForward(norm);
}

/** act is absent, or a stock ReLU that can run in the convolution's epilogue. */
function fusableRelu(act: Module | null): boolean {
  return act === null || (act instanceof ReLU && !hasInstanceForward(act));
}

/**
 * True when convBnAct(conv, norm, x, { act }) runs as one F.conv2d: it then returns a tensor over new storage of
 * its own and keeps no reference to x or to the residual, which is what lets inference code recycle them.
 */
export function fusesConvBnAct(conv: Module, norm: Module, act: Module | null): boolean {
  return canFold(conv, norm) && !paramsWantGrad(conv as Conv2d, norm) && fusableRelu(act);
}

/** m is an instance of exactly cls (not a subclass) with no forward hooks or patched forward. */
export function isStock(m: Module | null, cls: abstract new (...args: never[]) => Module): boolean {
  return m !== null && Object.getPrototypeOf(m) === cls.prototype && !hasInstanceForward(m);
}

/**
 * True when convBnAct(conv, norm, x, { act }) keeps no reference to x, the residual or anything it made, except
 * what autograd saves for backward, and returns new storage, in any mode: it fuses, or its modules are exactly
 * Conv2d, BatchNorm2d and ReLU (or none) without hooks. Model code may then recycle (ops/recycle.ts) x and the
 * residual once it no longer needs them: in training their storage is reused after backward has read it.
 */
export function ownsConvBnAct(conv: Module, norm: Module, act: Module | null): boolean {
  return fusesConvBnAct(conv, norm, act) || (isStock(conv, Conv2d) && isStock(norm, BatchNorm2d) && (act === null || isStock(act, ReLU)));
}

/** ownsConvBnAct for convBnSequential(seq, x): true only when it runs the pair through convBnAct. */
export function ownsConvBnSequential(seq: Module): boolean {
  if (!(seq instanceof Sequential) || seq.length !== 2 || hasInstanceForward(seq)) return false;
  const [c, n] = seq.children();
  return ownsConvBnAct(c, n, null);
}

export interface ConvBnOptions {
  /** Added after the norm (the block's identity). */
  residual?: Tensor | null;
  /** Applied last; a ReLU module fuses, any other module runs after the fused part. */
  act?: Module | null;
}

/**
 * True when grad mode is on and a parameter that folding would hide wants a gradient: the pair then runs unfused,
 * so an eval-mode model still gives every conv and BN parameter its gradient, as PyTorch does. Inference that
 * wants the fused path runs under noGrad() (as the tutorial's `with torch.no_grad()`), or with frozen parameters.
 */
function paramsWantGrad(conv: Conv2d, bn: BatchNorm2d): boolean {
  return isGradEnabled() && [conv.weight, conv.bias, bn.weight, bn.bias].some((p) => p !== null && p.requiresGrad);
}

/** act(norm(conv(x)) + residual), fused when the modules allow it. */
export function convBnAct(conv: Conv2d, norm: Module, x: Tensor, o: ConvBnOptions = {}): Tensor {
  const act = o.act ?? null;
  if (canFold(conv, norm) && !paramsWantGrad(conv, norm)) {
    const f = foldConvBn(conv, norm);
    const fuseRelu = act !== null && fusableRelu(act);
    const y = F.conv2d(x, f.weight, f.bias, conv.convOptions(), { residual: o.residual ?? null, relu: fuseRelu });
    return act && !fuseRelu ? (act.forward(y) as Tensor) : y;
  }
  const z = conv.forward(x) as Tensor;
  // the convolution's output is ours alone when both modules are stock: recycle it once the norm has read it
  const own = (y: Tensor): Tensor => {
    if (y.data !== z.data && isStock(conv, Conv2d) && isStock(norm, BatchNorm2d)) recycle(z);
    return y;
  };
  // training (or gradients wanted): a stock BatchNorm2d + ReLU with nothing between them run as one batch_norm op with
  // its relu flag (one pass; the backward rule applies relu's mask inside the batch-norm kernel), the same values as
  // torchvision's bn -> ReLU(inplace=True)
  if (!o.residual && act !== null && norm instanceof BatchNorm2d && !hasInstanceForward(norm) && fusableRelu(act) && unfusedDepth === 0) {
    return own(norm.forward(z, true));
  }
  let y = own(norm.forward(z) as Tensor);
  if (o.residual && act !== null && fusableRelu(act) && unfusedDepth === 0) return F.addInPlace(y, o.residual, { relu: true }); // + relu_ in one pass
  if (o.residual) y = F.addInPlace(y, o.residual);
  return act ? (act.forward(y) as Tensor) : y;
}

/** Run a Sequential(conv, norm) (torchvision's downsample), fused when it has exactly that form. */
export function convBnSequential(seq: Module, x: Tensor): Tensor {
  if (seq instanceof Sequential && seq.length === 2 && !hasInstanceForward(seq)) {
    const [c, n] = seq.children();
    if (c instanceof Conv2d) return convBnAct(c, n, x);
  }
  return seq.forward(x) as Tensor;
}

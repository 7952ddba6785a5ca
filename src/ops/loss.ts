// Losses with PyTorch 1.13's arguments and formulas: mse_loss, cross_entropy (class indices or class
// probabilities; weight, ignore_index, label_smoothing) and binary_cross_entropy_with_logits (weight, pos_weight,
// in its numerically stable form), each with reduction 'mean' | 'sum' | 'none'. They are what transformers'
// ResNetForImageClassification computes for its three problem types. Every sum runs in double and is rounded
// once to the input's dtype. Each records a node (ops/grad.ts) whose gradient formula is here, beside its forward.
// cross_entropy takes (N, C) or unbatched (C) logits; PyTorch's extra spatial dims (N, C, d1, ...) are not here.

import { Tensor } from '../tensor/tensor.js';
import { allocStorage, isFloat, type FloatDType } from '../tensor/dtype.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { needsGrad, record } from '../tensor/autograd.js';
import { describe, expectTensor } from './check.js';

/** nn.CrossEntropyLoss's default ignore_index: targets equal to it add nothing and are not counted. */
export const IGNORE_INDEX = -100;

export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(r: unknown): Reduction {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${String(r)} is not a valid value for reduction (expected 'mean', 'sum' or 'none')`);
  return r;
}

function floatInput(x: unknown, name: string): Tensor {
  const t = expectTensor(x, name);
  if (!isFloat(t.dtype)) throw new TypeError(`Expected a floating point tensor for ${name} but received ${describe(t)}`);
  return t;
}

/** A tensor of `dtype` and `shape` over the double values `v` (rounded once). */
function fromDoubles(v: ArrayLike<number>, shape: readonly number[], dtype: FloatDType): Tensor {
  const s = allocStorage(dtype, v.length) as Float64Array;
  for (let i = 0; i < v.length; i++) s[i] = v[i];
  return new Tensor(s, shape, { dtype });
}

/** Per-element values reduced as asked: a 0-d mean or sum, or the values themselves. */
function reduce(v: Float64Array, shape: readonly number[], r: Reduction, dtype: FloatDType, denom = v.length): Tensor {
  if (r === 'none') return fromDoubles(v, shape, dtype);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return fromDoubles([r === 'sum' ? s : s / denom], [], dtype);
}

/** Doubles of a float tensor broadcast to `shape` (for weights), or null. */
function broadcastDoubles(t: Tensor | null | undefined, shape: readonly number[], name: string, last = false): Float64Array | null {
  if (t === null || t === undefined) return null;
  floatInput(t, name);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const src = t.contiguousData();
  if (last) {
    // pos_weight: one value per class (the last dim), or a single value
    const C = shape.length ? shape[shape.length - 1] : 1;
    if (src.length !== C && src.length !== 1) throw new RangeError(`Expected ${name} of ${C} values (one per class) but received ${describe(t)}`);
    for (let i = 0; i < n; i++) out[i] = Number(src[src.length === 1 ? 0 : i % C]);
    return out;
  }
  if (shapeEq(t.shape, shape)) {
    for (let i = 0; i < n; i++) out[i] = Number(src[i]);
    return out;
  }
  // general broadcast of the weight against the input's shape
  const ts = t.shape, nd = shape.length, off = nd - ts.length;
  if (off < 0 || ts.some((d, i) => d !== 1 && d !== shape[off + i])) {
    throw new RangeError(`Expected ${name} broadcastable to ${fmtShape(shape)} but received ${describe(t)}`);
  }
  const idx = new Array<number>(nd).fill(0);
  for (let i = 0; i < n; i++) {
    let k = 0;
    for (let d = 0; d < ts.length; d++) k = k * ts[d] + (ts[d] === 1 ? 0 : idx[off + d]);
    out[i] = Number(src[k]);
    for (let d = nd - 1; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
  }
  return out;
}

// ---- mse_loss -------------------------------------------------------------------------------------------------------

/** (input - target)^2 reduced. `target` has the input's shape (any numeric dtype, as PyTorch promotes it). */
export function mseLoss(input: Tensor, target: Tensor, o: { reduction?: Reduction } = {}): Tensor {
  floatInput(input, 'mse_loss input');
  expectTensor(target, 'mse_loss target');
  const reduction = checkReduction(o.reduction ?? 'mean');
  if (!shapeEq(input.shape, target.shape)) {
    throw new RangeError(`Expected a target of the input's shape ${fmtShape(input.shape)} for mse_loss but received ${describe(target)}`);
  }
  const x = input.contiguousData(), y = target.contiguousData();
  const v = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const d = Number(x[i]) - Number(y[i]);
    v[i] = d * d;
  }
  const out = reduce(v, input.shape, reduction, input.dtype as FloatDType);
  if (needsGrad(input, target)) record('mse_loss', [input, target], out, { x: input, t: target, reduction });
  return out;
}

// ---- cross_entropy ----------------------------------------------------------------------------------------------------

export interface CrossEntropyOptions {
  /** Per-class weights (C). */
  weight?: Tensor | null;
  /** Class-index targets equal to this add nothing and are not counted (default -100). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** In [0, 1]: the target becomes (1 - s) * target + s / C (PyTorch's label_smoothing). */
  labelSmoothing?: number;
}

export interface CrossEntropySaved {
  x: Tensor;
  target: Tensor;
  weight: Float64Array | null;
  ignoreIndex: number;
  reduction: Reduction;
  smoothing: number;
  /** The 'mean' divisor: the summed weight of the counted targets (indices) or the batch size (probabilities). */
  denom: number;
}

/**
 * log_softmax of each row, and coefficients a (N, C) with loss_i = sum_c a[i,c] * -logp[i,c] (before reduction):
 * indices: a[i,y_i] += (1 - s) w[y_i] and a[i,c] += s/C w[c] (all zero on an ignored row); probabilities:
 * a[i,c] = w[c] ((1 - s) t[i,c] + s/C). This is PyTorch 1.13's formula for every option combination.
 */
function ceTerms(s: Omit<CrossEntropySaved, 'denom'>, N: number, C: number): { logp: Float64Array; a: Float64Array; counted: number } {
  const x = s.x.contiguousData(), w = s.weight, sm = s.smoothing;
  const logp = new Float64Array(N * C), a = new Float64Array(N * C);
  const probs = isFloat(s.target.dtype);
  const t = s.target.contiguousData();
  let counted = 0;
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, Number(x[n * C + c]));
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(Number(x[n * C + c]) - m);
    const lz = m + Math.log(z);
    for (let c = 0; c < C; c++) logp[n * C + c] = Number(x[n * C + c]) - lz;
    if (probs) {
      for (let c = 0; c < C; c++) a[n * C + c] = (w ? w[c] : 1) * ((1 - sm) * Number(t[n * C + c]) + sm / C);
      continue;
    }
    const k = Number(t[n]);
    if (k === s.ignoreIndex) continue;
    if (k < 0 || k >= C) throw new RangeError(`Target ${k} is out of bounds.`);
    a[n * C + k] += (1 - sm) * (w ? w[k] : 1);
    if (sm > 0) for (let c = 0; c < C; c++) a[n * C + c] += (sm / C) * (w ? w[c] : 1);
    counted += w ? w[k] : 1;
  }
  return { logp, a, counted };
}

/**
 * Cross entropy of logits `input` ((N, C) or unbatched (C)) against int64 class indices (shape (N) or ()) or class
 * probabilities (a float tensor of the input's shape). 'mean' divides by the summed weight of the counted targets
 * (NaN when every target is ignored, as PyTorch) or, for probabilities, by N.
 */
export function crossEntropy(input: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  floatInput(input, 'cross_entropy input');
  expectTensor(target, 'cross_entropy target');
  if (input.ndim !== 1 && input.ndim !== 2) throw new RangeError(`Expected (N, C) or (C) logits for cross_entropy input but received ${describe(input)}`);
  const batched = input.ndim === 2;
  const N = batched ? input.shape[0] : 1, C = input.shape[input.ndim - 1];
  const reduction = checkReduction(o.reduction ?? 'mean');
  const smoothing = o.labelSmoothing ?? 0;
  if (typeof smoothing !== 'number' || !(smoothing >= 0 && smoothing <= 1)) throw new RangeError(`label_smoothing must be between 0.0 and 1.0. Got: ${smoothing}`);
  const ignoreIndex = o.ignoreIndex ?? IGNORE_INDEX;
  if (!Number.isInteger(ignoreIndex)) throw new RangeError(`Expected an integer for ignore_index but received ${describe(ignoreIndex)}`);
  // PyTorch's order: a target of the input's shape holds probabilities, anything else class indices
  const indexShape = batched ? [N] : [];
  if (shapeEq(target.shape, input.shape)) {
    if (!isFloat(target.dtype)) throw new TypeError(`Expected floating point type for target with class probabilities, got ${target.dtype}`);
  } else if (target.dtype === 'int64' && !shapeEq(target.shape, indexShape)) {
    throw new RangeError(`Expected a target of shape ${fmtShape(indexShape)} for cross_entropy input of shape ${fmtShape(input.shape)} but received ${describe(target)}`);
  } else if (target.dtype !== 'int64') {
    if (shapeEq(target.shape, indexShape)) {
      throw new TypeError(`Expected an int64 tensor of class indices for cross_entropy target but received ${describe(target)} (PyTorch: expected scalar type Long)`);
    }
    throw new RangeError(`Expected an int64 tensor of class indices (shape ${fmtShape(indexShape)}) or class probabilities (the input's shape ${fmtShape(input.shape)}) for cross_entropy target but received ${describe(target)}`);
  }
  let weight: Float64Array | null = null;
  if (o.weight !== null && o.weight !== undefined) {
    floatInput(o.weight, 'cross_entropy weight');
    if (o.weight.ndim !== 1 || o.weight.shape[0] !== C) {
      throw new RangeError(`weight tensor should be defined either for all ${C} classes or no classes but got weight tensor of shape: ${fmtShape(o.weight.shape)}`);
    }
    weight = Float64Array.from(o.weight.contiguousData() as Float32Array, Number);
  }
  const s = { x: input, target, weight, ignoreIndex, reduction, smoothing };
  const { logp, a, counted } = ceTerms(s, N, C);
  const rows = new Float64Array(N);
  for (let i = 0; i < N * C; i++) rows[Math.floor(i / C)] -= a[i] * logp[i];
  const denom = isFloat(target.dtype) ? N : counted;
  const out = reduce(rows, batched ? [N] : [], reduction, input.dtype as FloatDType, denom);
  if (needsGrad(input, target)) record('cross_entropy', [input, target], out, { ...s, denom } satisfies CrossEntropySaved);
  return out;
}

/** d loss / d logits = scale_i (A_i softmax_i - a_i) with A_i = sum_c a[i,c]; d loss / d probabilities likewise. */
export function crossEntropyGrad(s: CrossEntropySaved, g: Tensor, needs: readonly boolean[]): (Tensor | null)[] {
  const x = s.x, batched = x.ndim === 2;
  const N = batched ? x.shape[0] : 1, C = x.shape[x.ndim - 1];
  const { logp, a } = ceTerms(s, N, C);
  const gd = g.contiguousData();
  const scale = (n: number) => (s.reduction === 'none' ? Number(gd[n]) : s.reduction === 'sum' ? Number(gd[0]) : Number(gd[0]) / s.denom);
  const dx = new Float64Array(N * C), dt = needs[1] ? new Float64Array(N * C) : null;
  for (let n = 0; n < N; n++) {
    const k = scale(n);
    let A = 0;
    for (let c = 0; c < C; c++) A += a[n * C + c];
    for (let c = 0; c < C; c++) {
      const i = n * C + c;
      dx[i] = k * (A * Math.exp(logp[i]) - a[i]);
      if (dt) dt[i] = -k * (1 - s.smoothing) * (s.weight ? s.weight[c] : 1) * logp[i];
    }
  }
  const dtype = x.dtype as FloatDType;
  return [needs[0] ? fromDoubles(dx, x.shape, dtype) : null, dt ? fromDoubles(dt, x.shape, dtype) : null];
}

// ---- binary_cross_entropy_with_logits --------------------------------------------------------------------------------

export interface BceOptions {
  /** Rescales each element's loss; broadcast to the input's shape. */
  weight?: Tensor | null;
  /** Weight of the positive term per class (the last dim), as PyTorch's pos_weight. */
  posWeight?: Tensor | null;
  reduction?: Reduction;
}

export interface BceSaved {
  x: Tensor;
  t: Tensor;
  weight: Float64Array | null;
  posWeight: Float64Array | null;
  reduction: Reduction;
}

const softplusNeg = (v: number) => Math.max(-v, 0) + Math.log1p(Math.exp(-Math.abs(v))); // log(1 + exp(-v)), stable

/**
 * (1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x)), times weight (pw = 1 without pos_weight), never overflowing.
 * target is a floating point tensor of the input's shape (PyTorch: "Target size (...) must be the same as input
 * size (...)").
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, o: BceOptions = {}): Tensor {
  floatInput(input, 'binary_cross_entropy_with_logits input');
  floatInput(target, 'binary_cross_entropy_with_logits target');
  if (!shapeEq(input.shape, target.shape)) {
    throw new RangeError(`Target size (${fmtShape(target.shape)}) must be the same as input size (${fmtShape(input.shape)})`);
  }
  const reduction = checkReduction(o.reduction ?? 'mean');
  const weight = broadcastDoubles(o.weight, input.shape, 'binary_cross_entropy_with_logits weight');
  const posWeight = broadcastDoubles(o.posWeight, input.shape, 'binary_cross_entropy_with_logits pos_weight', true);
  const x = input.contiguousData(), y = target.contiguousData();
  const v = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = Number(x[i]), ti = Number(y[i]);
    const lw = posWeight ? 1 + (posWeight[i] - 1) * ti : 1;
    v[i] = ((1 - ti) * xi + lw * softplusNeg(xi)) * (weight ? weight[i] : 1);
  }
  const out = reduce(v, input.shape, reduction, input.dtype as FloatDType);
  if (needsGrad(input, target)) record('bce_with_logits', [input, target], out, { x: input, t: target, weight, posWeight, reduction } satisfies BceSaved);
  return out;
}

/** d/dx = w ((1 - t) - lw sigmoid(-x)); d/dt = w (-x + (pw - 1) log(1 + exp(-x))). */
export function bceWithLogitsGrad(s: BceSaved, g: Tensor, needs: readonly boolean[]): (Tensor | null)[] {
  const x = s.x.contiguousData(), y = s.t.contiguousData(), gd = g.contiguousData();
  const n = x.length, k = s.reduction === 'mean' ? 1 / n : 1;
  const dx = new Float64Array(n), dt = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xi = Number(x[i]), ti = Number(y[i]);
    const gi = Number(gd[s.reduction === 'none' ? i : 0]) * k * (s.weight ? s.weight[i] : 1);
    const pw = s.posWeight ? s.posWeight[i] : 1;
    const sigNeg = xi >= 0 ? Math.exp(-xi) / (1 + Math.exp(-xi)) : 1 / (1 + Math.exp(xi));
    dx[i] = gi * ((1 - ti) - (1 + (pw - 1) * ti) * sigNeg);
    dt[i] = gi * (-xi + (pw - 1) * softplusNeg(xi));
  }
  return [needs[0] ? fromDoubles(dx, s.x.shape, s.x.dtype as FloatDType) : null, needs[1] ? fromDoubles(dt, s.t.shape, s.t.dtype as FloatDType) : null];
}

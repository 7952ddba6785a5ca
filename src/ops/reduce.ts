// Reductions along one dim or all dims: sum, mean, max, argmax, topk, softmax, log_softmax.
// Sums accumulate in double and round once (PyTorch's CPU kernels use cascade sums; the difference is below
// float32 rounding for the sizes a classifier produces). The float results record their rule (ops/grad.ts):
// sum, mean, softmax, max_all (max over everything), gather (max along a dim, topk values).

import { allocStorage, isFloat, type DType } from '../tensor/dtype.js';
import { normDim, numelOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { needsGrad, record } from '../tensor/autograd.js';
import { expectInt, expectTensor } from './check.js';

/** View x as (outer, n, inner) around `dim`, contiguous. */
function around(x: Tensor, dim: number): { src: Tensor['data']; outer: number; n: number; inner: number } {
  const c = x.contiguous();
  const src = c.data.subarray(c.offset, c.offset + c.numel) as Tensor['data'];
  return { src, outer: numelOf(x.shape.slice(0, dim)), n: x.shape[dim], inner: numelOf(x.shape.slice(dim + 1)) };
}

function reducedShape(x: Tensor, dim: number, keepdim: boolean): number[] {
  const s = [...x.shape];
  if (keepdim) s[dim] = 1;
  else s.splice(dim, 1);
  return s;
}

function reduce(x: Tensor, dim: number | undefined, keepdim: boolean, name: string, outDtype: DType,
  f: (src: Tensor['data'], start: number, n: number, stride: number) => number): Tensor {
  expectTensor(x, `${name} input`);
  if (dim === undefined) {
    const c = x.contiguousData();
    const out = allocStorage(outDtype, 1);
    const v = f(c, 0, c.length, 1);
    if (out instanceof BigInt64Array) out[0] = BigInt(v);
    else out[0] = v;
    return new Tensor(out, keepdim ? x.shape.map(() => 1) : [], { dtype: outDtype });
  }
  const d = normDim(dim, x.ndim, `${name} dim`);
  const { src, outer, n, inner } = around(x, d);
  const out = allocStorage(outDtype, outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const v = f(src, o * n * inner + i, n, inner);
      if (out instanceof BigInt64Array) out[o * inner + i] = BigInt(v);
      else out[o * inner + i] = v;
    }
  }
  return new Tensor(out, reducedShape(x, d, keepdim), { dtype: outDtype });
}

function sumDtype(d: DType): DType {
  return isFloat(d) ? d : 'int64';
}

export function sum(x: Tensor, dim?: number, keepdim = false): Tensor {
  const out = reduce(x, dim, keepdim, 'sum', sumDtype(x.dtype), (s, start, n, st) => {
    let acc = 0;
    for (let k = 0; k < n; k++) acc += Number(s[start + k * st]);
    return acc;
  });
  if (needsGrad(x)) record('sum', [x], out, { shape: x.shape, dim: dim === undefined ? undefined : normDim(dim, x.ndim), keepdim });
  return out;
}

export function mean(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (!isFloat(x.dtype)) throw new TypeError(`mean(): could not infer output dtype. Input dtype must be floating point, but got ${x.dtype}`);
  const out = reduce(x, dim, keepdim, 'mean', x.dtype, (s, start, n, st) => {
    let acc = 0;
    for (let k = 0; k < n; k++) acc += Number(s[start + k * st]);
    return acc / n;
  });
  if (needsGrad(x)) {
    const d = dim === undefined ? undefined : normDim(dim, x.ndim);
    record('mean', [x], out, { shape: x.shape, dim: d, keepdim, count: d === undefined ? x.numel : x.ndim === 0 ? 1 : x.shape[d] });
  }
  return out;
}

function argBest(s: Tensor['data'], start: number, n: number, st: number, largest: boolean): number {
  let best = Number(s[start]), bi = 0;
  if (Number.isNaN(best)) return 0;
  for (let k = 1; k < n; k++) {
    const v = Number(s[start + k * st]);
    if (Number.isNaN(v)) return k; // NaN is the maximum (and the minimum), as in PyTorch
    if (largest ? v > best : v < best) {
      best = v;
      bi = k;
    }
  }
  return bi;
}

/** Index of the maximum (first one on ties), int64; over the flattened tensor when dim is undefined. */
export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (x.numel === 0) throw new RangeError('argmax(): cannot perform reduction on an empty tensor');
  return reduce(x, dim, keepdim, 'argmax', 'int64', (s, st0, n, st) => argBest(s, st0, n, st, true));
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (x.numel === 0) throw new RangeError('argmin(): cannot perform reduction on an empty tensor');
  return reduce(x, dim, keepdim, 'argmin', 'int64', (s, st0, n, st) => argBest(s, st0, n, st, false));
}

/** The maximum over everything, or along dim (values only; argmax gives the indices). */
export function max(x: Tensor, dim?: number, keepdim = false): Tensor {
  if (x.numel === 0) throw new RangeError('max(): cannot perform reduction on an empty tensor');
  const out = reduce(x, dim, keepdim, 'max', x.dtype, (s, st0, n, st) => Number(s[st0 + argBest(s, st0, n, st, true) * st]));
  if (needsGrad(x)) {
    if (dim === undefined) record('max_all', [x], out, { x, y: out });
    else {
      const d = normDim(dim, x.ndim);
      record('gather', [x], out, { shape: x.shape, dim: d, k: 1, index: Int32Array.from(argmax(x, d).contiguousData() as BigInt64Array, Number) });
    }
  }
  return out;
}

/**
 * The k largest (or smallest) values along `dim` and their int64 indices, sorted (ties keep the lower index
 * first; NaN counts as the largest).
 */
export function topk(x: Tensor, k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
  expectTensor(x, 'topk input');
  const d = normDim(dim, x.ndim, 'topk dim');
  const n = x.ndim === 0 ? 1 : x.shape[d];
  expectInt(k, 'k', 0);
  if (k > n) throw new RangeError(`topk(): selected index k (${k}) out of range for dimension ${d} of size ${n}`);
  const xs = x.ndim === 0 ? x.reshape([1]) : x;
  const { src, outer, inner } = around(xs, d);
  const shape = [...xs.shape];
  shape[d] = k;
  const vals = allocStorage(x.dtype, outer * k * inner);
  const idx = new BigInt64Array(outer * k * inner);
  const order = new Array<number>(n);
  const key = (v: number) => (Number.isNaN(v) ? Infinity : v);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      for (let j = 0; j < n; j++) order[j] = j;
      order.sort((p, q) => {
        const vp = Number(src[base + p * inner]), vq = Number(src[base + q * inner]);
        const np = Number.isNaN(vp), nq = Number.isNaN(vq);
        if (np !== nq) return (largest ? -1 : 1) * (np ? 1 : -1);
        const diff = largest ? key(vq) - key(vp) : key(vp) - key(vq);
        return diff !== 0 && !Number.isNaN(diff) ? diff : p - q;
      });
      for (let j = 0; j < k; j++) {
        const at = o * k * inner + j * inner + i;
        (vals as Float32Array)[at] = src[base + order[j] * inner] as number;
        idx[at] = BigInt(order[j]);
      }
    }
  }
  const values = new Tensor(vals, x.ndim === 0 ? [] : shape, { dtype: x.dtype });
  if (needsGrad(x)) record('gather', [x], values, { shape: x.shape, dim: d, k, index: Int32Array.from(idx, Number) });
  return { values, indices: new Tensor(idx, x.ndim === 0 ? [] : shape, { dtype: 'int64' }) };
}

function softmaxImpl(x: Tensor, dim: number, log: boolean): Tensor {
  expectTensor(x, log ? 'log_softmax input' : 'softmax input');
  const src0 = isFloat(x.dtype) ? x : x.float();
  const d = normDim(dim, src0.ndim, 'softmax dim');
  if (src0.ndim === 0) {
    const y = new Tensor((allocStorage(src0.dtype, 1) as Float32Array).fill(log ? 0 : 1), [], { dtype: src0.dtype });
    if (needsGrad(x)) record('softmax', [x], y, { y, dim: 0, log });
    return y;
  }
  const { src, outer, n, inner } = around(src0, d);
  const out = allocStorage(src0.dtype, src0.numel) as Float32Array;
  const s = src as Float32Array;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let m = -Infinity;
      for (let k = 0; k < n; k++) m = Math.max(m, s[base + k * inner]);
      let z = 0;
      for (let k = 0; k < n; k++) z += Math.exp(s[base + k * inner] - m);
      const lz = Math.log(z);
      for (let k = 0; k < n; k++) {
        const v = s[base + k * inner] - m;
        out[base + k * inner] = log ? v - lz : Math.exp(v) / z;
      }
    }
  }
  const y = new Tensor(out, src0.shape, { dtype: src0.dtype });
  if (needsGrad(x)) record('softmax', [x], y, { y, dim: d, log });
  return y;
}

export function softmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, false);
}

export function logSoftmax(x: Tensor, dim: number): Tensor {
  return softmaxImpl(x, dim, true);
}

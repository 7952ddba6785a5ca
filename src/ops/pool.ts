// Pooling: max_pool2d (kernel, stride, padding, dilation, ceil_mode, indices) and adaptive_avg_pool2d with
// PyTorch's output-size and window rules. max_pool2d records rule max_pool2d with the argmax indices (asked of the
// backend only then), adaptive_avg_pool2d records its geometry (ops/grad.ts).

import { Tensor } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';
import { needsGrad, record } from '../tensor/autograd.js';
import type { Pool2dParams } from '../backend/backend.js';
import { describe, expectInt, expectTensor, pair } from './check.js';
import { floatData, floatDtype, kernelsFor, outputOf } from './kernels.js';

export interface MaxPool2dOptions {
  kernelSize: number | [number, number];
  /** Defaults to kernelSize. */
  stride?: number | [number, number] | null;
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
}

/** PyTorch's pooling_output_shape: floor or ceil division, and a last window must start inside input + left pad. */
export function poolOutSize(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const num = size + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

export function maxPool2dParams(shape: readonly number[], o: MaxPool2dOptions): Pool2dParams {
  const [KH, KW] = pair(o.kernelSize, 'kernel_size', 1);
  const [sh, sw] = o.stride === undefined || o.stride === null ? [KH, KW] : pair(o.stride, 'stride', 1);
  const [ph, pw] = pair(o.padding ?? 0, 'padding', 0);
  const [dh, dw] = pair(o.dilation ?? 1, 'dilation', 1);
  if (ph > KH / 2 || pw > KW / 2) {
    throw new RangeError(`pad should be at most half of effective kernel size, but got pad=${fmtShape([ph, pw])}, kernel_size=${fmtShape([KH, KW])}`);
  }
  const [N, C, H, W] = shape;
  const ceil = !!o.ceilMode;
  const OH = poolOutSize(H, KH, sh, ph, dh, ceil), OW = poolOutSize(W, KW, sw, pw, dw, ceil);
  if (OH < 1 || OW < 1) {
    throw new RangeError(`Given input size: (${C}x${H}x${W}). Calculated output size: (${C}x${OH}x${OW}). Output size is too small`);
  }
  return { N, C, H, W, OH, OW, KH, KW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw };
}

function batched(x: Tensor, name: string): Tensor {
  expectTensor(x, name, { ndims: [3, 4] });
  return x.ndim === 3 ? x.unsqueeze(0) : x;
}

export function maxPool2d(x: Tensor, o: MaxPool2dOptions): Tensor {
  return maxPool2dWithIndices(x, o, false).output;
}

/** Also returns the argmax indices (int64, flat h*W+w per plane) when asked, as return_indices=True. */
export function maxPool2dWithIndices(x: Tensor, o: MaxPool2dOptions, wantIndices = true): { output: Tensor; indices: Tensor | null } {
  const xs = batched(x, 'max_pool2d input');
  const dt = floatDtype(x, 'max_pool2d input');
  const p = maxPool2dParams(xs.shape, o);
  const be = kernelsFor(dt, 'max_pool2d');
  const y = outputOf(dt, p.N * p.C * p.OH * p.OW);
  const rec = needsGrad(x);
  const idx = wantIndices || rec ? new Int32Array(y.length) : null;
  be.maxPool2d(floatData(xs, 'max_pool2d input', dt), p, y, idx);
  const shape = x.ndim === 3 ? [p.C, p.OH, p.OW] : [p.N, p.C, p.OH, p.OW];
  const indices = idx && wantIndices ? new Tensor(BigInt64Array.from(idx, (v) => BigInt(v)), shape, { dtype: 'int64' }) : null;
  const output = new Tensor(y, shape);
  if (rec) record('max_pool2d', [x], output, { indices: idx, p, xShape: x.shape, dtype: dt });
  return { output, indices };
}

/** outputSize: an int, or [h, w] where null keeps the input size along that axis. */
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | [number | null, number | null]): Tensor {
  const xs = batched(x, 'adaptive_avg_pool2d input');
  const [N, C, H, W] = xs.shape;
  let OH: number, OW: number;
  if (typeof outputSize === 'number') OH = OW = expectInt(outputSize, 'output_size', 1);
  else if (Array.isArray(outputSize) && outputSize.length === 2) {
    OH = outputSize[0] === null ? H : expectInt(outputSize[0], 'output_size[0]', 1);
    OW = outputSize[1] === null ? W : expectInt(outputSize[1], 'output_size[1]', 1);
  } else throw new RangeError(`Expected an int or a pair for output_size but received ${describe(outputSize)}`);
  if (H < 1 || W < 1) throw new RangeError(`adaptive_avg_pool2d(): expected a non-empty input but received ${describe(x)}`);
  const dt = floatDtype(x, 'adaptive_avg_pool2d input');
  const be = kernelsFor(dt, 'adaptive_avg_pool2d');
  const y = outputOf(dt, N * C * OH * OW);
  be.adaptiveAvgPool2d(floatData(xs, 'adaptive_avg_pool2d input', dt), N, C, H, W, OH, OW, y);
  const out = new Tensor(y, x.ndim === 3 ? [C, OH, OW] : [N, C, OH, OW]);
  if (needsGrad(x)) record('adaptive_avg_pool2d', [x], out, { dims: [N, C, H, W, OH, OW], xShape: x.shape, dtype: dt });
  return out;
}

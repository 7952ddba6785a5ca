// linear (y = x W^T + b over the last dim) and matmul of 2-D float32 tensors, on the backend's gemm.

import { Tensor } from '../tensor/tensor.js';
import { numelOf } from '../tensor/shape.js';
import { getBackend } from '../backend/select.js';
import { outputBuffer } from './recycle.js';
import { describe, expectTensor, f32 } from './check.js';

/** x (*, in), weight (out, in), bias (out) or null -> (*, out). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  expectTensor(x, 'linear input');
  expectTensor(weight, 'linear weight', { ndim: 2 });
  if (x.ndim < 1) throw new RangeError(`Expected a linear input of at least 1 dim but received ${describe(x)}`);
  const [O, I] = weight.shape;
  const K = x.shape[x.ndim - 1];
  if (K !== I) throw new RangeError(`mat1 and mat2 shapes cannot be multiplied (${numelOf(x.shape.slice(0, -1))}x${K} and ${I}x${O})`);
  if (bias) {
    expectTensor(bias, 'linear bias', { ndim: 1 });
    if (bias.shape[0] !== O) throw new RangeError(`Expected a linear bias of shape [${O}] but received ${describe(bias)}`);
  }
  const M = numelOf(x.shape.slice(0, -1));
  const be = getBackend();
  // fully written: by the bias rows and then gemm (beta 1), or by gemm alone (beta 0); empty when M or O is 0
  const y = outputBuffer(M * O);
  if (bias) {
    const b = f32(bias, 'linear bias');
    for (let m = 0; m < M; m++) y.set(b, m * O);
  }
  if (M > 0 && O > 0) be.gemm(false, true, M, O, K, 1, f32(x, 'linear input'), f32(weight, 'linear weight'), bias ? 1 : 0, y);
  return new Tensor(y, [...x.shape.slice(0, -1), O]);
}

/** (M,K) x (K,N) -> (M,N). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectTensor(a, 'matmul input', { ndim: 2 });
  expectTensor(b, 'matmul other', { ndim: 2 });
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new RangeError(`mat1 and mat2 shapes cannot be multiplied (${M}x${K} and ${K2}x${N})`);
  const be = getBackend();
  const y = outputBuffer(M * N);
  if (M > 0 && N > 0) be.gemm(false, false, M, N, K, 1, f32(a, 'matmul input'), f32(b, 'matmul other'), 0, y);
  return new Tensor(y, [M, N]);
}

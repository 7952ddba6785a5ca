// linear (y = x W^T + b over the last dim) and matmul of 2-D float tensors, on the backend's gemm. Both record
// their rule (ops/grad.ts): the gradients are two more gemms.

import { Tensor } from '../tensor/tensor.js';
import { numelOf } from '../tensor/shape.js';
import { needsGrad, record } from '../tensor/autograd.js';
import { describe, expectTensor } from './check.js';
import { floatData, floatDtype, kernelsFor, outputOf } from './kernels.js';

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
  const dt = floatDtype(x, 'linear input');
  const be = kernelsFor(dt, 'linear');
  // fully written: by the bias rows and then gemm (beta 1), or by gemm alone (beta 0); empty when M or O is 0
  const y = outputOf(dt, M * O);
  if (bias) {
    const b = floatData(bias, 'linear bias', dt);
    for (let m = 0; m < M; m++) y.set(b, m * O);
  } else if (K === 0) y.fill(0);
  if (M > 0 && O > 0 && K > 0) be.gemm(false, true, M, O, K, 1, floatData(x, 'linear input', dt), floatData(weight, 'linear weight', dt), bias ? 1 : 0, y);
  const out = new Tensor(y, [...x.shape.slice(0, -1), O]);
  if (needsGrad(x, weight, bias)) {
    record('linear', [x, weight, bias], out, { x: weight.requiresGrad ? x : null, w: x.requiresGrad ? weight : null, M, K, O, xShape: x.shape, dtype: dt });
  }
  return out;
}

/** (M,K) x (K,N) -> (M,N). */
export function matmul(a: Tensor, b: Tensor): Tensor {
  expectTensor(a, 'matmul input', { ndim: 2 });
  expectTensor(b, 'matmul other', { ndim: 2 });
  const [M, K] = a.shape;
  const [K2, N] = b.shape;
  if (K !== K2) throw new RangeError(`mat1 and mat2 shapes cannot be multiplied (${M}x${K} and ${K2}x${N})`);
  const dt = floatDtype(a, 'matmul input');
  const be = kernelsFor(dt, 'matmul');
  const y = outputOf(dt, M * N);
  if (K === 0) y.fill(0);
  else if (M > 0 && N > 0) be.gemm(false, false, M, N, K, 1, floatData(a, 'matmul input', dt), floatData(b, 'matmul other', dt), 0, y);
  const out = new Tensor(y, [M, N]);
  if (needsGrad(a, b)) record('matmul', [a, b], out, { a, b, dtype: dt });
  return out;
}

// Losses with PyTorch's default arguments (reduction='mean'), forward only: mse_loss, cross_entropy over class
// indices (ignore_index=-100, as nn.CrossEntropyLoss()), binary_cross_entropy_with_logits in its numerically stable
// form. They are what transformers' ResNetForImageClassification computes for its three problem types.
// Every sum runs in double and is rounded once, to the input's dtype; the result is a 0-d tensor.
// Not here yet: backward rules, weights, label smoothing, probability targets, other reductions.

import { Tensor } from '../tensor/tensor.js';
import { allocStorage, isFloat } from '../tensor/dtype.js';
import { fmtShape, shapeEq } from '../tensor/shape.js';
import { describe, expectTensor } from './check.js';

/** nn.CrossEntropyLoss's default ignore_index: targets equal to it add nothing and are not counted. */
export const IGNORE_INDEX = -100;

function scalar(v: number, like: Tensor): Tensor {
  const s = allocStorage(like.dtype, 1);
  s[0] = v;
  return new Tensor(s, [], { dtype: like.dtype });
}

function floatInput(x: unknown, name: string): Tensor {
  const t = expectTensor(x, name);
  if (!isFloat(t.dtype)) throw new TypeError(`Expected a floating point tensor for ${name} but received ${describe(t)}`);
  return t;
}

/** mean((input - target)^2). `target` has the input's shape (any numeric dtype, as PyTorch promotes it). */
export function mseLoss(input: Tensor, target: Tensor): Tensor {
  floatInput(input, 'mse_loss input');
  expectTensor(target, 'mse_loss target');
  if (!shapeEq(input.shape, target.shape)) {
    throw new RangeError(`Expected a target of the input's shape ${fmtShape(input.shape)} for mse_loss but received ${describe(target)}`);
  }
  const x = input.contiguousData(), y = target.contiguousData();
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Number(x[i]) - Number(y[i]);
    acc += d * d;
  }
  return scalar(acc / x.length, input);
}

/**
 * -mean_i log_softmax(input_i)[target_i] over the targets that are not IGNORE_INDEX (NaN when all are ignored, as
 * PyTorch). input is (N, C) logits or unbatched (C); target holds int64 class indices of shape (N) or ().
 */
export function crossEntropy(input: Tensor, target: Tensor): Tensor {
  floatInput(input, 'cross_entropy input');
  expectTensor(target, 'cross_entropy target');
  if (input.ndim !== 1 && input.ndim !== 2) throw new RangeError(`Expected (N, C) or (C) logits for cross_entropy input but received ${describe(input)}`);
  if (target.dtype !== 'int64') {
    throw new TypeError(`Expected an int64 tensor of class indices for cross_entropy target but received ${describe(target)} (PyTorch: expected scalar type Long)`);
  }
  const batched = input.ndim === 2;
  const N = batched ? input.shape[0] : 1, C = input.shape[input.ndim - 1];
  if (!shapeEq(target.shape, batched ? [N] : [])) {
    throw new RangeError(`Expected a target of shape ${fmtShape(batched ? [N] : [])} for cross_entropy input of shape ${fmtShape(input.shape)} but received ${describe(target)}`);
  }
  const x = input.contiguousData(), t = target.contiguousData() as BigInt64Array;
  let acc = 0, count = 0;
  for (let n = 0; n < N; n++) {
    const k = Number(t[n]);
    if (k === IGNORE_INDEX) continue;
    if (k < 0 || k >= C) throw new RangeError(`Target ${k} is out of bounds.`);
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, Number(x[n * C + c]));
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(Number(x[n * C + c]) - m);
    acc += m + Math.log(z) - Number(x[n * C + k]);
    count++;
  }
  return scalar(acc / count, input);
}

/**
 * mean(max(x, 0) - x * t + log1p(exp(-|x|))): binary cross entropy on logits x, never overflowing. target is a
 * floating point tensor of the input's shape (PyTorch: "Target size (...) must be the same as input size (...)").
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor): Tensor {
  floatInput(input, 'binary_cross_entropy_with_logits input');
  floatInput(target, 'binary_cross_entropy_with_logits target');
  if (!shapeEq(input.shape, target.shape)) {
    throw new RangeError(`Target size (${fmtShape(target.shape)}) must be the same as input size (${fmtShape(input.shape)})`);
  }
  const x = input.contiguousData(), y = target.contiguousData();
  let acc = 0;
  for (let i = 0; i < x.length; i++) {
    const v = Number(x[i]);
    acc += Math.max(v, 0) - v * Number(y[i]) + Math.log1p(Math.exp(-Math.abs(v)));
  }
  return scalar(acc / x.length, input);
}

// batch_norm as torch.nn.functional.batch_norm. Training mode normalises with the batch statistics (biased
// variance) and updates the running statistics in place with `momentum`, storing the unbiased variance, exactly
// as PyTorch does (that update is not part of the graph); eval mode normalises with the running statistics.
// Records rule batch_norm (ops/grad.ts) for x, weight and bias, with the statistics the forward used.

import { Tensor } from '../tensor/tensor.js';
import { numelOf } from '../tensor/shape.js';
import type { FloatDType } from '../tensor/dtype.js';
import { needsGrad, record } from '../tensor/autograd.js';
import { describe, expectTensor } from './check.js';
import { floatData, floatDtype, kernelsFor, outputOf, zerosOf } from './kernels.js';

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch's exponential_average_factor). */
  momentum?: number;
  eps?: number;
  /** Apply relu to the output (inference fusion). */
  relu?: boolean;
}

function checkVec(t: Tensor | null, C: number, name: string, dt: FloatDType): Float32Array | null {
  if (t === null || t === undefined) return null;
  expectTensor(t, name, { ndim: 1 });
  if (t.shape[0] !== C) throw new RangeError(`Expected ${name} of shape [${C}] but received ${describe(t)}`);
  return floatData(t, name, dt);
}

/** 1 / sqrt(variance + eps) per channel, in double, rounded once to dt. */
function invstdOf(variance: Float32Array, eps: number, dt: FloatDType): Float32Array {
  const out = zerosOf(dt, variance.length);
  for (let c = 0; c < variance.length; c++) out[c] = 1 / Math.sqrt(variance[c] + eps);
  return out;
}

/** x is (N, C, *). runningMean/runningVar are updated in place when training and given. */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null,
  o: BatchNormOptions = {}): Tensor {
  expectTensor(x, 'batch_norm input');
  if (x.ndim < 2) throw new RangeError(`Expected batch_norm input of at least 2 dims (N, C, ...) but received ${describe(x)}`);
  const training = !!o.training;
  const momentum = o.momentum ?? 0.1;
  const eps = o.eps ?? 1e-5;
  const [N, C] = x.shape;
  const HW = numelOf(x.shape.slice(2));
  const dt = floatDtype(x, 'batch_norm input');
  const xd = floatData(x, 'batch_norm input', dt);
  const w = checkVec(weight, C, 'batch_norm weight', dt);
  const b = checkVec(bias, C, 'batch_norm bias', dt);
  const rm = checkVec(runningMean, C, 'batch_norm running_mean', dt);
  const rv = checkVec(runningVar, C, 'batch_norm running_var', dt);
  const be = kernelsFor(dt, 'batch_norm');
  const y = outputOf(dt, xd.length);
  const rec = needsGrad(x, weight, bias);
  const save = (out: Tensor, mean: Float32Array, variance: Float32Array) => {
    record('batch_norm', [x, weight, bias], out, { x, mean, invstd: invstdOf(variance, eps, dt), w: weight, training, y: o.relu ? out : null, dtype: dt });
  };
  if (!training) {
    if (!rm || !rv) throw new RangeError('batch_norm in eval mode needs running_mean and running_var');
    be.batchNorm(xd, N, C, HW, rm, rv, w, b, eps, !!o.relu, y);
    const out = new Tensor(y, x.shape);
    if (rec) save(out, rm.slice(), rv); // a copy of the mean: the buffer may change before backward
    return out;
  }
  const count = N * HW;
  if (count <= 1) throw new RangeError(`Expected more than 1 value per channel when training, got input size [${x.shape.join(', ')}]`);
  const mean = zerosOf(dt, C), varB = zerosOf(dt, C);
  be.batchNormStats(xd, N, C, HW, mean, varB);
  be.batchNorm(xd, N, C, HW, mean, varB, w, b, eps, !!o.relu, y);
  if (rm && rv && runningMean && runningVar) {
    if (!runningMean.isContiguous() || !runningVar.isContiguous()) throw new RangeError('running statistics must be contiguous tensors');
    // contiguous 1-D buffers: floatData() returned a view of their storage, so these writes update them in place
    const unbias = count / (count - 1);
    for (let c = 0; c < C; c++) {
      rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
      rv[c] = (1 - momentum) * rv[c] + momentum * varB[c] * unbias;
    }
    runningMean.bumpVersion();
    runningVar.bumpVersion();
  }
  const out = new Tensor(y, x.shape);
  if (rec) save(out, mean, varB);
  return out;
}

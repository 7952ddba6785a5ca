// batch_norm as torch.nn.functional.batch_norm. Training mode normalises with the batch statistics (biased
// variance) and updates the running statistics in place with `momentum`, storing the unbiased variance, exactly
// as PyTorch does; eval mode normalises with the running statistics.

import { Tensor } from '../tensor/tensor.js';
import { numelOf } from '../tensor/shape.js';
import { getBackend } from '../backend/select.js';
import { outputBuffer } from './recycle.js';
import { describe, expectTensor, f32 } from './check.js';

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the new batch statistic in the running average (PyTorch's exponential_average_factor). */
  momentum?: number;
  eps?: number;
  /** Apply relu to the output (inference fusion). */
  relu?: boolean;
}

function checkVec(t: Tensor | null, C: number, name: string): Float32Array | null {
  if (t === null || t === undefined) return null;
  expectTensor(t, name, { ndim: 1 });
  if (t.shape[0] !== C) throw new RangeError(`Expected ${name} of shape [${C}] but received ${describe(t)}`);
  return f32(t, name);
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
  const xd = f32(x, 'batch_norm input');
  const w = checkVec(weight, C, 'batch_norm weight');
  const b = checkVec(bias, C, 'batch_norm bias');
  const rm = checkVec(runningMean, C, 'batch_norm running_mean');
  const rv = checkVec(runningVar, C, 'batch_norm running_var');
  const be = getBackend();
  const y = outputBuffer(xd.length);
  if (!training) {
    if (!rm || !rv) throw new RangeError('batch_norm in eval mode needs running_mean and running_var');
    be.batchNorm(xd, N, C, HW, rm, rv, w, b, eps, !!o.relu, y);
    return new Tensor(y, x.shape);
  }
  const count = N * HW;
  if (count <= 1) throw new RangeError(`Expected more than 1 value per channel when training, got input size [${x.shape.join(', ')}]`);
  const mean = new Float32Array(C), varB = new Float32Array(C);
  be.batchNormStats(xd, N, C, HW, mean, varB);
  be.batchNorm(xd, N, C, HW, mean, varB, w, b, eps, !!o.relu, y);
  if (rm && rv && runningMean && runningVar) {
    if (!runningMean.isContiguous() || !runningVar.isContiguous()) throw new RangeError('running statistics must be contiguous tensors');
    // contiguous 1-D buffers: f32() returned a view of their storage, so these writes update them in place
    const unbias = count / (count - 1);
    for (let c = 0; c < C; c++) {
      rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
      rv[c] = (1 - momentum) * rv[c] + momentum * varB[c] * unbias;
    }
    runningMean.bumpVersion();
    runningVar.bumpVersion();
  }
  return new Tensor(y, x.shape);
}

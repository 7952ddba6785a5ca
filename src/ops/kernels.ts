// Which kernels run a float op, by dtype. float32 tensors run on the active backend. float64 tensors (used for
// finite-difference gradient checks) run on the js backend's loops, which are written over Float32Array |
// Float64Array (backend/js.ts), and only while js is the active backend: the native kernels are float32, and
// switching backends behind the caller's back would hide where work runs. The Backend interface stays float32;
// floatData() and outputOf() pass float64 storage through it typed as Float32Array, which is sound only because
// kernelsFor() hands float64 work to nothing but the js loops.

import type { Tensor } from '../tensor/tensor.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Backend } from '../backend/backend.js';
import { getBackend } from '../backend/select.js';
import { outputBuffer } from './recycle.js';
import { describe } from './check.js';

/** The dtype an op computes in: its input's, which must be float32 or float64. */
export function floatDtype(x: Tensor, name: string): FloatDType {
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new TypeError(`Expected a float32 (or, on the js backend, float64) tensor for ${name} but received ${describe(x)}`);
  return x.dtype;
}

/** The backend that runs `op` on tensors of `dtype`; float64 needs the js backend to be the active one. */
export function kernelsFor(dtype: FloatDType, op: string): Backend {
  const be = getBackend();
  if (dtype === 'float64' && be.name !== 'js') {
    throw new TypeError(`${op}: float64 tensors run only on the js backend (the ${be.name} kernels are float32); use withBackend('js', ...) or convert with .float()`);
  }
  return be;
}

/** Contiguous data of a tensor that must have the op's dtype (see the file comment for the float64 typing). */
export function floatData(t: Tensor, name: string, dtype: FloatDType): Float32Array {
  if (t.dtype !== dtype) throw new TypeError(`Expected a ${dtype} tensor (the dtype of the op's input) for ${name} but received ${describe(t)}`);
  return t.contiguousData() as Float32Array;
}

/** Storage for an op's output of n elements (fully written by the op): float32 from outputBuffer, float64 fresh. */
export function outputOf(dtype: FloatDType, n: number): Float32Array {
  return dtype === 'float32' ? outputBuffer(n) : (new Float64Array(n) as unknown as Float32Array);
}

/** A zeroed array of n elements of dtype (statistics, small gradients). */
export function zerosOf(dtype: FloatDType, n: number): Float32Array {
  return dtype === 'float32' ? new Float32Array(n) : (new Float64Array(n) as unknown as Float32Array);
}

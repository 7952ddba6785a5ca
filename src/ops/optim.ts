// Optimizer steps as ops: the one door from optim/ to the compute backends (optim/ imports nothing else of ops/).
// float32 parameters run on the active backend (native: csrc/kernels/optim.c, vectorized and threaded); float64
// parameters (finite-difference checks, tests) run the js backend's loops whatever backend is active, since the
// Backend interface is float32 and these loops are written over either (see kernels.ts for the same typing).

import type { FloatStorage } from '../tensor/dtype.js';
import type { AdamwStepParams, SgdStepParams } from '../backend/backend.js';
import { jsBackend } from '../backend/js.js';
import { getBackend } from '../backend/select.js';

export type { AdamwStepParams, SgdStepParams };

function backendFor(arrays: (FloatStorage | null)[], what: string) {
  const p = arrays[0]!;
  for (const a of arrays) {
    if (a === null) continue;
    if (a.length !== p.length) throw new RangeError(`${what}: state of ${a.length} elements for a parameter of ${p.length}`);
    if (a.constructor !== p.constructor) throw new TypeError(`${what}: the parameter is ${p.constructor.name} but its gradient or state is ${a.constructor.name}`);
  }
  return p instanceof Float32Array ? getBackend() : jsBackend;
}

/** One SGD step of one parameter (its contiguous storage), in place; buf is null without momentum. */
export function sgdStep(p: FloatStorage, grad: FloatStorage, buf: FloatStorage | null, o: SgdStepParams): void {
  if (o.momentum !== 0 && buf === null) throw new TypeError('sgdStep: momentum needs a momentum buffer');
  const be = backendFor([p, grad, o.momentum !== 0 ? buf : null], 'sgdStep');
  be.sgdStep(p as Float32Array, grad as Float32Array, o.momentum !== 0 ? (buf as Float32Array) : null, p.length, o);
}

/** One AdamW step of one parameter, in place; vmax is null without amsgrad. */
export function adamwStep(p: FloatStorage, grad: FloatStorage, m: FloatStorage, v: FloatStorage, vmax: FloatStorage | null, o: AdamwStepParams): void {
  const be = backendFor([p, grad, m, v, vmax], 'adamwStep');
  be.adamwStep(p as Float32Array, grad as Float32Array, m as Float32Array, v as Float32Array, vmax as Float32Array | null, p.length, o);
}

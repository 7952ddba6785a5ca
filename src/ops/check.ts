// Argument checks shared by the ops: every op validates here, at the TypeScript boundary, so backends can trust
// what they receive. Messages follow "Expected <what> for <name> but received <value>".

import { Tensor } from '../tensor/tensor.js';
import { fmtShape } from '../tensor/shape.js';
import type { DType } from '../tensor/dtype.js';

export function describe(v: unknown): string {
  if (v instanceof Tensor) return `a ${v.dtype} tensor of shape ${fmtShape(v.shape)}`;
  if (Array.isArray(v)) return `[${v.map(String).join(', ')}] of type array`;
  return `${String(v)} of type ${typeof v}`;
}

export function expectTensor(t: unknown, name: string, opts: { dtype?: DType; ndim?: number; ndims?: number[] } = {}): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${name} but received ${describe(t)}`);
  if (opts.dtype && t.dtype !== opts.dtype) throw new TypeError(`Expected a ${opts.dtype} tensor for ${name} but received ${describe(t)}`);
  if (opts.ndim !== undefined && t.ndim !== opts.ndim) throw new RangeError(`Expected a ${opts.ndim}-D tensor for ${name} but received ${describe(t)}`);
  if (opts.ndims && !opts.ndims.includes(t.ndim)) throw new RangeError(`Expected a ${opts.ndims.join(' or ')}-D tensor for ${name} but received ${describe(t)}`);
  return t;
}

export function expectInt(v: unknown, name: string, min = -Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new RangeError(`Expected an integer${min > -Infinity ? ` >= ${min}` : ''} for ${name} but received ${describe(v)}`);
  }
  return v;
}

/** An int or a pair of ints -> [h, w], each >= min. */
export function pair(v: unknown, name: string, min: number): [number, number] {
  if (typeof v === 'number') {
    expectInt(v, name, min);
    return [v, v];
  }
  if (Array.isArray(v) && v.length === 2) {
    expectInt(v[0], name, min);
    expectInt(v[1], name, min);
    return [v[0], v[1]];
  }
  throw new RangeError(`Expected an integer >= ${min} or a pair of them for ${name} but received ${describe(v)}`);
}

/** The float32 data of a tensor as a contiguous array (copying only when the layout requires it). */
export function f32(t: Tensor, name: string): Float32Array {
  if (t.dtype !== 'float32') throw new TypeError(`Expected a float32 tensor for ${name} but received ${describe(t)}`);
  return t.contiguousData() as Float32Array;
}

/** A value spelled as Python prints it (for error messages that must equal PyTorch's). */
export function pyRepr(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'string') return `'${v}'`;
  return String(v);
}

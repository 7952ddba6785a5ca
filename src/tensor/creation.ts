// Tensor creation: from arrays and TypedArrays, constant fills, ranges and seeded random values.

import { type DType, type Storage, allocStorage, dtypeOfStorage, isDType } from './dtype.js';
import { type Generator, defaultGenerator } from './random.js';
import { checkShape, numelOf, fmtShape } from './shape.js';
import { Tensor } from './tensor.js';

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

function finish(t: Tensor, o?: CreateOptions): Tensor {
  if (o?.requiresGrad) t.requiresGrad_(true);
  return t;
}

function checkDType(d: unknown): DType {
  if (!isDType(d)) throw new TypeError(`Expected one of float32, float64, int64, int32, uint8, bool for dtype but received ${String(d)} of type ${typeof d}`);
  return d;
}

/**
 * A tensor from a TypedArray (zero-copy when its type matches `dtype`) or from (nested) arrays of numbers,
 * bigints or booleans. `shape` defaults to the nesting (or 1-D for flat data).
 */
export function fromArray(values: Storage | ArrayLike<number | bigint | boolean> | unknown[], shape?: readonly number[], o: CreateOptions = {}): Tensor {
  let flat: ArrayLike<number | bigint | boolean>;
  let inferred: number[];
  if (ArrayBuffer.isView(values)) {
    flat = values as Storage;
    inferred = [(values as Storage).length];
  } else {
    inferred = [];
    let probe: unknown = values;
    while (Array.isArray(probe)) {
      inferred.push(probe.length);
      probe = probe[0];
    }
    flat = (values as unknown[]).flat(Infinity) as (number | bigint | boolean)[];
    if (flat.length !== numelOf(inferred)) throw new RangeError(`fromArray: nested arrays are ragged (expected ${numelOf(inferred)} values for shape ${fmtShape(inferred)}, found ${flat.length})`);
  }
  const target = shape ? checkShape(shape) : inferred;
  if (numelOf(target) !== flat.length) throw new RangeError(`fromArray: ${flat.length} values cannot fill shape ${fmtShape(target)}`);
  const typed = ArrayBuffer.isView(values) ? (values as Storage) : null;
  const dtype = checkDType(o.dtype ?? (typed ? dtypeOfStorage(typed) : typeof flat[0] === 'boolean' ? 'bool' : typeof flat[0] === 'bigint' ? 'int64' : 'float32'));
  if (typed && dtypeOfStorage(typed, dtype) === dtype) return finish(new Tensor(typed, target, { dtype }), o);
  const out = allocStorage(dtype, flat.length);
  if (out instanceof BigInt64Array) {
    for (let i = 0; i < flat.length; i++) {
      const v = flat[i];
      out[i] = typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)));
    }
  } else {
    for (let i = 0; i < flat.length; i++) out[i] = dtype === 'bool' ? (Number(flat[i]) ? 1 : 0) : Number(flat[i]);
  }
  return finish(new Tensor(out, target, { dtype }), o);
}

/** torch.tensor-like alias. */
export const tensor = fromArray;

export function empty(shape: readonly number[], o: CreateOptions = {}): Tensor {
  const s = checkShape(shape);
  const dtype = checkDType(o.dtype ?? 'float32');
  return finish(new Tensor(allocStorage(dtype, numelOf(s)), s, { dtype }), o);
}

export function zeros(shape: readonly number[], o: CreateOptions = {}): Tensor {
  return empty(shape, o);
}

export function full(shape: readonly number[], value: number, o: CreateOptions = {}): Tensor {
  const t = empty(shape, o);
  if (t.data instanceof BigInt64Array) t.data.fill(BigInt(Math.trunc(value)));
  else t.data.fill(o.dtype === 'bool' ? (value ? 1 : 0) : value);
  return t;
}

export function ones(shape: readonly number[], o: CreateOptions = {}): Tensor {
  return full(shape, 1, o);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, { dtype: t.dtype });
}

export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, { dtype: t.dtype });
}

/** Values start, start+step, ... below end (torch.arange); int64 when all arguments are integers. */
export function arange(start: number, end?: number, step = 1, o: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0 || !Number.isFinite(step)) throw new RangeError(`arange: step must be finite and nonzero, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const isInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = o.dtype ?? (isInt ? 'int64' : 'float32');
  const vals = Array.from({ length: n }, (_, i) => start + i * step);
  return fromArray(vals, [n], { ...o, dtype });
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}

/** Uniform [0, 1) float32 values from `generator` (default: the global seeded generator). */
export function rand(shape: readonly number[], o: RandomOptions = {}): Tensor {
  const t = empty(shape, { dtype: o.dtype ?? 'float32' });
  const g = o.generator ?? defaultGenerator;
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = g.uniform();
  return finish(t, o);
}

/** Standard normal float32 values from `generator` (default: the global seeded generator). */
export function randn(shape: readonly number[], o: RandomOptions = {}): Tensor {
  const t = empty(shape, { dtype: o.dtype ?? 'float32' });
  const g = o.generator ?? defaultGenerator;
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; i++) d[i] = g.normal();
  return finish(t, o);
}

/** Uniform integers in [low, high) as int64 (torch.randint). */
export function randint(low: number, high: number, shape: readonly number[], o: RandomOptions = {}): Tensor {
  if (!(high > low)) throw new RangeError(`randint: expected low < high but got low=${low}, high=${high}`);
  const g = o.generator ?? defaultGenerator;
  const n = numelOf(checkShape(shape));
  const vals = Array.from({ length: n }, () => low + g.randint(high - low));
  return fromArray(vals, shape, { dtype: o.dtype ?? 'int64' });
}

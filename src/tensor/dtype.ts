// dtypes: the element types a tensor can hold and the TypedArray that stores each.
// float32 is what the network computes in; float64 serves references and finite differences; int64, int32,
// uint8 and bool exist because checkpoints (num_batches_tracked), labels and indexing need them.

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';
export type FloatDType = 'float32' | 'float64';
export type Storage = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
export type FloatStorage = Float32Array | Float64Array;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'int64', 'int32', 'uint8', 'bool'];

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function isFloat(d: DType): d is FloatDType {
  return d === 'float32' || d === 'float64';
}

export function itemSize(d: DType): number {
  switch (d) {
    case 'float64': case 'int64': return 8;
    case 'float32': case 'int32': return 4;
    case 'uint8': case 'bool': return 1;
  }
}

export function allocStorage(d: DType, n: number): Storage {
  switch (d) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
  }
}

/** A view of `bytes` (byteOffset must be aligned to the item size) as the storage of dtype `d`. */
export function storageView(d: DType, buf: ArrayBufferLike, byteOffset: number, n: number): Storage {
  switch (d) {
    case 'float32': return new Float32Array(buf, byteOffset, n);
    case 'float64': return new Float64Array(buf, byteOffset, n);
    case 'int64': return new BigInt64Array(buf, byteOffset, n);
    case 'int32': return new Int32Array(buf, byteOffset, n);
    case 'uint8': case 'bool': return new Uint8Array(buf, byteOffset, n);
  }
}

/** The dtype whose storage class `s` is (uint8 and bool share Uint8Array; `hint` decides). */
export function dtypeOfStorage(s: Storage, hint?: DType): DType {
  if (s instanceof Float32Array) return 'float32';
  if (s instanceof Float64Array) return 'float64';
  if (s instanceof BigInt64Array) return 'int64';
  if (s instanceof Int32Array) return 'int32';
  return hint === 'bool' ? 'bool' : 'uint8';
}

/** Result dtype of a binary op, following PyTorch's promotion for the dtypes we have. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a;
  const rank: Record<DType, number> = { bool: 0, uint8: 1, int32: 2, int64: 3, float32: 4, float64: 5 };
  return rank[a] >= rank[b] ? a : b;
}

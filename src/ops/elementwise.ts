// Elementwise ops with PyTorch broadcasting and type promotion: add/sub/mul/div, comparisons, unary math.
// The hot cases (same-shape float32 add/relu, as in a residual block) go to the backend; the general strided
// broadcast loop below serves everything else. The arithmetic records its rule (ops/grad.ts): add, sub, mul, div,
// maximum/minimum, and unary (with the function's name in grad.ts's DERIVATIVES) for the unary math.

import { type DType, allocStorage, isFloat, promote } from '../tensor/dtype.js';
import { broadcastShapes, broadcastStrides, numelOf, shapeEq } from '../tensor/shape.js';
import { Tensor, forEachOffset } from '../tensor/tensor.js';
import { checkInplace, needsGrad, noGrad, record } from '../tensor/autograd.js';
import { getBackend } from '../backend/select.js';
import { outputBuffer } from './recycle.js';
import { describe } from './check.js';

export type Scalar = number;
type Operand = Tensor | Scalar;

function asTensor(v: Operand, other: Tensor | null, name: string): Tensor {
  if (v instanceof Tensor) return v;
  if (typeof v !== 'number') throw new TypeError(`Expected a Tensor or a number for ${name} but received ${describe(v)}`);
  // A Python-style "weak" scalar: it takes the tensor's dtype unless an integer tensor meets a fractional number.
  let dtype: DType = 'float32';
  if (other) dtype = isFloat(other.dtype) || !Number.isInteger(v) ? (isFloat(other.dtype) ? other.dtype : 'float32') : other.dtype === 'bool' ? 'int64' : other.dtype;
  const s = allocStorage(dtype, 1);
  if (s instanceof BigInt64Array) s[0] = BigInt(v);
  else s[0] = v;
  return new Tensor(s, [], { dtype });
}

/** Read element `off` of storage `s` as a JS number. */
function rd(s: Tensor['data'], off: number): number {
  return Number(s[off]);
}

function store(out: Tensor['data'], i: number, v: number, dtype: DType): void {
  if (out instanceof BigInt64Array) out[i] = BigInt(Math.trunc(v));
  else if (dtype === 'bool') out[i] = v ? 1 : 0;
  else out[i] = v;
}

/** The general broadcasting binary loop: out = f(a, b), result dtype `dtype`. */
export function binaryMap(a: Operand, b: Operand, f: (x: number, y: number) => number, dtype?: DType, name = 'op'): Tensor {
  const ta = asTensor(a, b instanceof Tensor ? b : null, `${name} input`);
  const tb = asTensor(b, ta, `${name} other`);
  const shape = broadcastShapes(ta.shape, tb.shape);
  const outDtype = dtype ?? promote(ta.dtype, tb.dtype);
  const n = numelOf(shape);
  const out = allocStorage(outDtype, n);
  const sa = broadcastStrides(ta.shape, ta.strides, shape);
  const sb = broadcastStrides(tb.shape, tb.strides, shape);
  const da = ta.data, db = tb.data;
  if (ta.isContiguous() && tb.isContiguous() && shapeEq(ta.shape, shape) && shapeEq(tb.shape, shape) && !(out instanceof BigInt64Array) && !(da instanceof BigInt64Array) && !(db instanceof BigInt64Array)) {
    for (let i = 0; i < n; i++) store(out, i, f(da[ta.offset + i] as number, db[tb.offset + i] as number), outDtype);
    return new Tensor(out, shape, { dtype: outDtype });
  }
  // walk `a` with the odometer; derive b's offset from the same multi-index
  const idx = new Array<number>(shape.length).fill(0);
  let offA = ta.offset, offB = tb.offset;
  for (let i = 0; i < n; i++) {
    store(out, i, f(rd(da, offA), rd(db, offB)), outDtype);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]++;
      offA += sa[d];
      offB += sb[d];
      if (idx[d] < shape[d]) break;
      offA -= idx[d] * sa[d];
      offB -= idx[d] * sb[d];
      idx[d] = 0;
    }
  }
  return new Tensor(out, shape, { dtype: outDtype });
}

/** out = f(x) elementwise; float inputs keep their dtype, integer inputs become float32 unless `keepInt`. */
export function unaryMap(x: Tensor, f: (v: number) => number, opts: { keepInt?: boolean; dtype?: DType } = {}): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`Expected a Tensor but received ${describe(x)}`);
  const outDtype = opts.dtype ?? (isFloat(x.dtype) || opts.keepInt ? x.dtype : 'float32');
  const out = allocStorage(outDtype, x.numel);
  const src = x.data;
  forEachOffset(x.shape, x.strides, x.offset, (off, i) => store(out, i, f(Number(src[off])), outDtype));
  return new Tensor(out, x.shape, { dtype: outDtype });
}

/** unaryMap of a differentiable function: records rule unary with the derivative named `fn` in ops/grad.ts. */
export function unaryOp(fn: string, x: Tensor, f: (v: number) => number, args: number[] = [], keepInt = false): Tensor {
  const out = unaryMap(x, f, { keepInt });
  if (isFloat(out.dtype) && needsGrad(x)) record('unary', [x], out, { x, y: out, fn, args });
  return out;
}

/** Shape of an operand (a number is 0-d). */
const shapeOf = (v: Operand): readonly number[] => (v instanceof Tensor ? v.shape : []);
const tensorOrNull = (v: Operand): Tensor | null => (v instanceof Tensor ? v : null);

function sameShapeF32(a: Operand, b: Operand): a is Tensor {
  return a instanceof Tensor && b instanceof Tensor && a.dtype === 'float32' && b.dtype === 'float32' && shapeEq(a.shape, b.shape);
}

export function add(a: Operand, b: Operand): Tensor {
  let out: Tensor;
  if (sameShapeF32(a, b)) {
    const be = getBackend();
    const y = outputBuffer(a.numel);
    be.add(a.contiguousData() as Float32Array, (b as Tensor).contiguousData() as Float32Array, y, y.length, false);
    out = new Tensor(y, a.shape);
  } else out = binaryMap(a, b, (x, y) => x + y, undefined, 'add');
  if (needsGrad(tensorOrNull(a), tensorOrNull(b))) record('add', [tensorOrNull(a), tensorOrNull(b)], out, { a: shapeOf(a), b: shapeOf(b) });
  return out;
}

export function sub(a: Operand, b: Operand): Tensor {
  const out = binaryMap(a, b, (x, y) => x - y, undefined, 'sub');
  if (needsGrad(tensorOrNull(a), tensorOrNull(b))) record('sub', [tensorOrNull(a), tensorOrNull(b)], out, { a: shapeOf(a), b: shapeOf(b) });
  return out;
}

export function mul(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a, b instanceof Tensor ? b : null, 'mul input');
  const tb = asTensor(b, ta, 'mul other');
  const out = binaryMap(ta, tb, (x, y) => x * y, undefined, 'mul');
  if (needsGrad(ta, tb)) record('mul', [ta, tb], out, { a: ta, b: tb });
  return out;
}

/** True division: integer inputs give float32, as torch.div. */
export function div(a: Operand, b: Operand): Tensor {
  const ta = asTensor(a, b instanceof Tensor ? b : null, 'div input');
  const tb = asTensor(b, ta, 'div other');
  const d = promote(ta.dtype, tb.dtype);
  const out = binaryMap(ta, tb, (x, y) => x / y, isFloat(d) ? d : 'float32', 'div');
  if (needsGrad(ta, tb)) record('div', [ta, tb], out, { a: ta, b: tb });
  return out;
}

/** Elementwise max; the gradient goes to the larger operand (half to each on ties), as PyTorch. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = binaryMap(a, b, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)), undefined, 'maximum');
  if (needsGrad(a, b)) record('maximum', [a, b], out, { a, b, max: true });
  return out;
}

export function minimum(a: Tensor, b: Tensor): Tensor {
  const out = binaryMap(a, b, (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)), undefined, 'minimum');
  if (needsGrad(a, b)) record('maximum', [a, b], out, { a, b, max: false });
  return out;
}

export const eq = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x === y), 'bool', 'eq');
export const ne = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x !== y), 'bool', 'ne');
export const lt = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x < y), 'bool', 'lt');
export const le = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x <= y), 'bool', 'le');
export const gt = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x > y), 'bool', 'gt');
export const ge = (a: Operand, b: Operand): Tensor => binaryMap(a, b, (x, y) => +(x >= y), 'bool', 'ge');

/**
 * In-place a += b (b broadcast to a's shape); returns a. In a graph, a's node becomes add's (as torchvision's
 * `out += identity`); refused for a leaf that requires grad while recording, as in PyTorch. With `relu`, a then
 * goes through relu in the same pass and gets relu's node after add's: what `out += identity; relu_(out)` records.
 */
export function addInPlace(a: Tensor, b: Operand, o: { relu?: boolean } = {}): Tensor {
  const tb = tensorOrNull(b);
  const rec = needsGrad(a, tb);
  if (rec) checkInplace(a, 'add_');
  if (sameShapeF32(a, b) && a.isContiguous()) {
    const ad = a.data.subarray(a.offset, a.offset + a.numel) as Float32Array;
    getBackend().add(ad, (b as Tensor).contiguousData() as Float32Array, ad, ad.length, !!o.relu);
    a.bumpVersion();
    if (rec) {
      record('add', [a, tb], a, { a: a.shape, b: shapeOf(b) });
      if (o.relu) record('relu', [a], a, { y: a });
    }
    return a;
  }
  const r = binaryMap(a, b, (x, y) => x + y, a.dtype, 'add_');
  if (!shapeEq(r.shape, a.shape)) throw new RangeError(`add_: output with shape [${a.shape}] doesn't match the broadcast shape [${r.shape}]`);
  noGrad(() => a.copy_(r));
  if (rec) record('add', [a, tb], a, { a: a.shape, b: shapeOf(b) });
  return o.relu ? a.relu_() : a; // (the method: activation.ts imports this file)
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x, (v) => -v, [], true);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x, Math.abs, [], true);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x, Math.exp);
export const log = (x: Tensor): Tensor => unaryOp('log', x, Math.log);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x, Math.sqrt);
export const square = (x: Tensor): Tensor => unaryOp('square', x, (v) => v * v, [], true);
export const clamp = (x: Tensor, min = -Infinity, max = Infinity): Tensor =>
  unaryOp('clamp', x, (v) => (Number.isNaN(v) ? v : Math.min(Math.max(v, min), max)), [min, max], true);

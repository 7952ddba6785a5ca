// Tensor: a typed storage plus shape, strides (in elements) and an offset, as in PyTorch. Views share the storage
// and its version counter. Math lives in ops/ (which also installs the arithmetic methods on this class, see
// ops/methods.ts); this file holds only what needs no backend: layout, views, copies, element access, and the
// autograd entry points (backward, detach). Views and copies record their backward rule by name while grad mode is
// on and the source requires grad (tensor/autograd.ts; the rules are in ops/grad.ts).

import { type DType, type Storage, allocStorage, dtypeOfStorage, isFloat } from './dtype.js';
import { type Shape, contiguousStrides, inferShape, normDim, numelOf, shapeEq, fmtShape } from './shape.js';
import { type BackwardOptions, type GradFn, backward, checkInplace, isGradEnabled, needsGrad, record } from './autograd.js';

export type { GradFn } from './autograd.js';

export class Tensor {
  /** The storage; shared with every view of this tensor. */
  readonly data: Storage;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  /** Offset of element [0, 0, ...] in `data`. */
  readonly offset: number;
  /** Bumped by every in-place change; shared by views. Backends key their packed-weight caches on it. */
  readonly _version: { n: number };
  /** Leaves: whether backward() accumulates a gradient into .grad. Op outputs: whether they are in a recorded graph. */
  requiresGrad = false;
  /** The gradient accumulated by backward() (leaves only), or null. */
  grad: Tensor | null = null;
  /** The node that made this tensor (null for leaves and for tensors made while nothing needed a gradient). */
  gradFn: GradFn | null = null;

  constructor(data: Storage, shape: Shape, opts: { dtype?: DType; strides?: readonly number[]; offset?: number; version?: { n: number } } = {}) {
    this.data = data;
    this.dtype = opts.dtype ?? dtypeOfStorage(data);
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(opts.strides ? [...opts.strides] : contiguousStrides(shape));
    this.offset = opts.offset ?? 0;
    this._version = opts.version ?? { n: 0 };
    if (this.strides.length !== this.shape.length) throw new RangeError(`strides [${this.strides}] do not match shape ${fmtShape(shape)}`);
    if (!opts.strides && this.offset + numelOf(shape) > data.length) {
      throw new RangeError(`storage of ${data.length} elements is too small for shape ${fmtShape(shape)} at offset ${this.offset}`);
    }
  }

  get ndim(): number {
    return this.shape.length;
  }

  get numel(): number {
    return numelOf(this.shape);
  }

  get version(): number {
    return this._version.n;
  }

  /** Mark an in-place modification (invalidates backend caches keyed on this tensor). */
  bumpVersion(): this {
    this._version.n++;
    return this;
  }

  size(dim?: number): number | readonly number[] {
    return dim === undefined ? this.shape : this.shape[normDim(dim, this.ndim)];
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.ndim - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i];
    }
    return true;
  }

  /** The contiguous storage slice of this tensor: zero-copy when already contiguous, else a packed copy. */
  contiguousData(): Storage {
    const n = this.numel;
    if (!this.isContiguous()) {
      const out = allocStorage(this.dtype, n);
      copyStrided(this, out);
      return out;
    }
    return this.offset === 0 && this.data.length === n ? this.data : this.data.subarray(this.offset, this.offset + n);
  }

  contiguous(): Tensor {
    if (this.isContiguous()) return this;
    const out = allocStorage(this.dtype, this.numel);
    copyStrided(this, out);
    const t = new Tensor(out, this.shape, { dtype: this.dtype });
    if (needsGrad(this)) record('identity', [this], t, {});
    return t;
  }

  /** A deep copy with its own storage (contiguous); gradients flow back to this tensor, as torch.clone. */
  clone(): Tensor {
    const out = allocStorage(this.dtype, this.numel);
    if (this.isContiguous()) out.set(this.data.subarray(this.offset, this.offset + this.numel) as never);
    else copyStrided(this, out);
    const t = new Tensor(out, this.shape, { dtype: this.dtype });
    if (needsGrad(this)) record('identity', [this], t, {});
    return t;
  }

  /** Same storage and version counter, no autograd history: requiresGrad false, gradFn null. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, { dtype: this.dtype, strides: this.strides, offset: this.offset, version: this._version });
  }

  /**
   * Accumulate d(this)/d(leaf) into the .grad of every leaf that requires grad (torch.Tensor.backward). `grad` is
   * the gradient of this tensor: optional for a one-element tensor (1), required otherwise. The graph's saved
   * values are freed unless { retainGraph: true }.
   */
  backward(grad?: Tensor | null, o: BackwardOptions = {}): void {
    backward(this, grad, o);
  }

  /** True for tensors not made by a recorded op (parameters, inputs, detached tensors). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  view(...shape: number[] | [readonly number[]]): Tensor {
    const target = inferShape(flatArgs(shape), this.numel);
    if (!this.isContiguous()) {
      throw new RangeError(`view size is not compatible with input tensor's size and stride (shape ${fmtShape(this.shape)}, strides [${this.strides}]); use .reshape(...) instead`);
    }
    return this.#reshaped(this, target);
  }

  /** view() when the layout allows it, else a contiguous copy. */
  reshape(...shape: number[] | [readonly number[]]): Tensor {
    const target = inferShape(flatArgs(shape), this.numel);
    return this.#reshaped(this.isContiguous() ? this : this.contiguous(), target);
  }

  /** A view of contiguous `src` (this tensor or its contiguous copy) with shape `target`, recorded as a reshape. */
  #reshaped(src: Tensor, target: number[]): Tensor {
    const t = new Tensor(src.data, target, { dtype: this.dtype, offset: src.offset, strides: contiguousStrides(target), version: src._version });
    return needsGrad(src) ? viewOf(src, t, 'reshape', { shape: src.shape }) : t;
  }

  /** Flatten dims startDim..endDim (inclusive) into one, as torch.flatten. */
  flatten(startDim = 0, endDim = -1): Tensor {
    if (this.ndim === 0) return this.reshape([1]);
    const s = normDim(startDim, this.ndim, 'flatten start_dim');
    const e = normDim(endDim, this.ndim, 'flatten end_dim');
    if (s > e) throw new RangeError(`flatten() has invalid args: start_dim (${startDim}) cannot come after end_dim (${endDim})`);
    const shape = [...this.shape.slice(0, s), numelOf(this.shape.slice(s, e + 1)), ...this.shape.slice(e + 1)];
    return this.reshape(shape);
  }

  permute(...dims: number[] | [readonly number[]]): Tensor {
    const d = flatArgs(dims).map((x) => normDim(x, this.ndim, 'permute'));
    if (d.length !== this.ndim || new Set(d).size !== d.length) {
      throw new RangeError(`permute(): dims [${d}] must be a permutation of the ${this.ndim} dims of a tensor of shape ${fmtShape(this.shape)}`);
    }
    const t = new Tensor(this.data, d.map((i) => this.shape[i]), { dtype: this.dtype, strides: d.map((i) => this.strides[i]), offset: this.offset, version: this._version });
    return needsGrad(this) ? viewOf(this, t, 'permute', { dims: d }) : t;
  }

  transpose(dim0: number, dim1: number): Tensor {
    const p = [...Array(this.ndim).keys()];
    const a = normDim(dim0, this.ndim), b = normDim(dim1, this.ndim);
    [p[a], p[b]] = [p[b], p[a]];
    return this.permute(p);
  }

  unsqueeze(dim: number): Tensor {
    const d = normDim(dim, this.ndim + 1, 'unsqueeze');
    const shape = [...this.shape];
    const strides = [...this.strides];
    shape.splice(d, 0, 1);
    strides.splice(d, 0, d < this.ndim ? this.strides[d] * this.shape[d] : 1);
    const t = new Tensor(this.data, shape, { dtype: this.dtype, strides, offset: this.offset, version: this._version });
    return needsGrad(this) ? viewOf(this, t, 'reshape', { shape: this.shape }) : t;
  }

  /** Remove size-1 dims (all, or only `dim`). */
  squeeze(dim?: number): Tensor {
    const keep = [...this.shape.keys()].filter((i) => (dim === undefined ? this.shape[i] !== 1 : i !== normDim(dim, this.ndim) || this.shape[i] !== 1));
    const t = new Tensor(this.data, keep.map((i) => this.shape[i]), { dtype: this.dtype, strides: keep.map((i) => this.strides[i]), offset: this.offset, version: this._version });
    return needsGrad(this) ? viewOf(this, t, 'reshape', { shape: this.shape }) : t;
  }

  /** Index the first dimension: t.get(i) is t[i] in PyTorch (a view; negative i counts from the end). */
  get(i: number): Tensor {
    if (this.ndim === 0) throw new RangeError('invalid index of a 0-dim tensor');
    const n = this.shape[0];
    if (!Number.isInteger(i) || i < -n || i >= n) throw new RangeError(`index ${i} is out of bounds for dimension 0 with size ${n}`);
    const k = i < 0 ? i + n : i;
    const t = new Tensor(this.data, this.shape.slice(1), { dtype: this.dtype, strides: this.strides.slice(1), offset: this.offset + k * this.strides[0], version: this._version });
    return needsGrad(this) ? viewOf(this, t, 'select', { shape: this.shape, dim: 0, index: k }) : t;
  }

  /** Elements start..start+length-1 along `dim` (a view), as torch.narrow. */
  narrow(dim: number, start: number, length: number): Tensor {
    const d = normDim(dim, this.ndim, 'narrow');
    const n = this.shape[d];
    if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > n) {
      throw new RangeError(`narrow(): start (${start}) + length (${length}) exceeds dimension size (${n}) of dim ${d}`);
    }
    const shape = [...this.shape];
    shape[d] = length;
    const t = new Tensor(this.data, shape, { dtype: this.dtype, strides: this.strides, offset: this.offset + start * this.strides[d], version: this._version });
    return needsGrad(this) ? viewOf(this, t, 'narrow', { shape: this.shape, dim: d, start }) : t;
  }

  /** The single value of a one-element tensor, as a JS number (int64 converted; exact below 2^53). */
  item(): number {
    if (this.numel !== 1) throw new RangeError(`a Tensor with ${this.numel} elements cannot be converted to a scalar`);
    return Number(this.data[this.offset]);
  }

  /** All elements in row-major order as JS numbers. */
  toArray(): number[] {
    const src = this.contiguousData();
    const out = new Array<number>(src.length);
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
    return out;
  }

  /** Nested arrays, as torch's tolist(). */
  tolist(): unknown {
    const flat = this.toArray();
    if (this.ndim === 0) return flat[0];
    const build = (d: number, off: number): unknown => {
      const n = this.shape[d];
      if (d === this.ndim - 1) return flat.slice(off, off + n);
      const step = numelOf(this.shape.slice(d + 1));
      return Array.from({ length: n }, (_, i) => build(d + 1, off + i * step));
    };
    return build(0, 0);
  }

  /** A contiguous copy converted to `dtype` (float -> int truncates toward zero, as PyTorch). */
  to(dtype: DType): Tensor {
    if (dtype === this.dtype) return this;
    const src = this.contiguousData();
    const out = allocStorage(dtype, src.length);
    if (out instanceof BigInt64Array) {
      for (let i = 0; i < src.length; i++) out[i] = BigInt(Math.trunc(Number(src[i])));
    } else if (dtype === 'bool') {
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]) !== 0 ? 1 : 0;
    } else if (isFloat(dtype)) {
      for (let i = 0; i < src.length; i++) out[i] = Number(src[i]);
    } else {
      for (let i = 0; i < src.length; i++) out[i] = Math.trunc(Number(src[i]));
    }
    const t = new Tensor(out, this.shape, { dtype });
    // a float result keeps the history; an integer one cannot carry a gradient (as PyTorch)
    if (isFloat(dtype) && needsGrad(this)) record('cast', [this], t, {});
    return t;
  }

  float(): Tensor {
    return this.to('float32');
  }

  /**
   * Copy `src` (same shape, any dtype) into this tensor's elements in place. While recording, the gradient of the
   * result flows to src (this tensor's old values get none). Overwriting a leaf that requires grad from a source
   * that does not is a plain data write (as loading weights), not an error.
   */
  copy_(src: Tensor): this {
    if (!shapeEq(src.shape, this.shape)) throw new RangeError(`copy_: expected a source of shape ${fmtShape(this.shape)} but received ${fmtShape(src.shape)}`);
    const rec = isGradEnabled() && (src.requiresGrad || (this.requiresGrad && this.gradFn !== null));
    if (rec) checkInplace(this, 'copy_');
    const vals = src.dtype === this.dtype ? src.contiguousData() : src.to(this.dtype).contiguousData();
    if (this.isContiguous()) (this.data as Float32Array).set(vals as Float32Array, this.offset);
    else scatterStrided(vals, this);
    this.bumpVersion();
    if (rec) record('copy', [this, src], this, {});
    return this;
  }

  /** Set every element to `value`; while recording, a tensor in the graph then passes no gradient to its old values. */
  fill_(value: number): this {
    const rec = isGradEnabled() && this.requiresGrad && this.gradFn !== null;
    if (rec) checkInplace(this, 'fill_');
    const v = this.dtype === 'int64' ? BigInt(Math.trunc(value)) : value;
    if (this.isContiguous()) (this.data as Float32Array).fill(v as number, this.offset, this.offset + this.numel);
    else {
      const tmp = allocStorage(this.dtype, this.numel);
      (tmp as Float32Array).fill(v as number);
      scatterStrided(tmp, this);
    }
    this.bumpVersion();
    if (rec) record('fill', [this], this, {});
    return this;
  }

  /** Make this leaf require a gradient (or stop requiring one, freezing it). */
  requiresGrad_(flag = true): this {
    if (flag && !isFloat(this.dtype)) throw new TypeError(`only floating point tensors can require gradients (got ${this.dtype})`);
    if (!flag && this.gradFn !== null) {
      throw new Error("you can only change requires_grad flags of leaf variables. If you want to use a computed variable in a subgraph that doesn't require differentiation use detach()");
    }
    this.requiresGrad = flag;
    return this;
  }

  toString(): string {
    const MAX = 8;
    const vals = this.numel <= MAX ? this.toArray() : this.toArray().slice(0, MAX);
    const body = vals.map((v) => (isFloat(this.dtype) ? v.toPrecision(5) : String(v))).join(', ');
    return `tensor([${body}${this.numel > MAX ? ', ...' : ''}], shape=${fmtShape(this.shape)}, dtype=${this.dtype})`;
  }
}

/**
 * Record view rule `name` from src to its view t. The rule also keeps src, only so that backward can tell whether
 * an in-place op changed src (and so the view's values) after the view was taken (its version counter).
 */
function viewOf(src: Tensor, t: Tensor, name: string, saved: Record<string, unknown>): Tensor {
  record(name, [src], t, { ...saved, src });
  return t;
}

function flatArgs(a: number[] | [readonly number[]]): number[] {
  return a.length === 1 && Array.isArray(a[0]) ? [...(a[0] as readonly number[])] : (a as number[]);
}

/** Visit every element's storage offset of `t` in row-major order. */
export function forEachOffset(shape: readonly number[], strides: readonly number[], offset: number, fn: (off: number, i: number) => void): void {
  const nd = shape.length;
  const n = numelOf(shape);
  if (n === 0) return;
  if (nd === 0) {
    fn(offset, 0);
    return;
  }
  const idx = new Array<number>(nd).fill(0);
  const last = nd - 1;
  const sl = strides[last], nl = shape[last];
  let base = offset;
  for (let i = 0; i < n; ) {
    for (let j = 0, off = base; j < nl; j++, off += sl) fn(off, i++);
    // advance the odometer over dims 0..last-1
    let d = last - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      base += strides[d];
      if (idx[d] < shape[d]) break;
      base -= idx[d] * strides[d];
      idx[d] = 0;
    }
    if (d < 0) break;
  }
}

function copyStrided(t: Tensor, out: Storage): void {
  const src = t.data as Float32Array;
  const dst = out as Float32Array;
  forEachOffset(t.shape, t.strides, t.offset, (off, i) => {
    dst[i] = src[off];
  });
}

function scatterStrided(vals: Storage, t: Tensor): void {
  const dst = t.data as Float32Array;
  const src = vals as Float32Array;
  forEachOffset(t.shape, t.strides, t.offset, (off, i) => {
    dst[off] = src[i];
  });
}

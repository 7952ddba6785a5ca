// Shape arithmetic shared by the tensor and the ops: strides, sizes, broadcasting, dim normalisation.

export type Shape = readonly number[];

export function numelOf(shape: Shape): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Row-major (C order) strides in elements. */
export function contiguousStrides(shape: Shape): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

export function checkShape(shape: Shape, what = 'shape'): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`Expected an array of sizes for ${what} but received ${String(shape)} of type ${typeof shape}`);
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new RangeError(`Expected non-negative integer sizes for ${what} but received [${shape.join(', ')}]`);
  }
  return [...shape];
}

/** Normalise a possibly negative dim for a tensor of rank `ndim` (PyTorch's wrap rule). */
export function normDim(dim: number, ndim: number, what = 'dim'): number {
  const n = Math.max(ndim, 1);
  if (!Number.isInteger(dim) || dim < -n || dim >= n) {
    throw new RangeError(`Dimension out of range for ${what}: expected to be in range of [${-n}, ${n - 1}], but got ${dim}`);
  }
  return dim < 0 ? dim + n : dim;
}

/** NumPy/PyTorch broadcasting of two shapes; throws naming both shapes when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`Shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for reading a tensor of `shape`/`strides` as if it had `target` shape (0 stride on broadcast dims). */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const out = new Array<number>(target.length).fill(0);
  const off = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : strides[i];
  return out;
}

/** Resolve one -1 in a reshape target; checks the element count. */
export function inferShape(target: readonly number[], numel: number): number[] {
  let neg = -1;
  let known = 1;
  for (let i = 0; i < target.length; i++) {
    const s = target[i];
    if (s === -1) {
      if (neg >= 0) throw new RangeError('only one dimension can be inferred (-1) in a reshape');
      neg = i;
    } else if (!Number.isInteger(s) || s < 0) {
      throw new RangeError(`invalid shape dimension ${s} in reshape to [${target.join(', ')}]`);
    } else known *= s;
  }
  const out = [...target];
  if (neg >= 0) {
    if (known === 0 || numel % known !== 0) throw new RangeError(`shape '[${target.join(', ')}]' is invalid for input of size ${numel}`);
    out[neg] = numel / known;
  } else if (known !== numel) {
    throw new RangeError(`shape '[${target.join(', ')}]' is invalid for input of size ${numel}`);
  }
  return out;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(s: Shape): string {
  return `[${s.join(', ')}]`;
}

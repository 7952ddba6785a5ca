// PIL's image resizing on 8-bit images, reimplemented so our results equal Image.resize (Pillow 9.4, which is what
// torchvision 0.14's F.resize and transformers' image processors call on PIL images).
//
// Images are (H, W, C) interleaved uint8. The algorithm is Pillow's src/libImaging/Resample.c:
//   - separable: a horizontal pass into an 8-bit intermediate (only over the source rows the vertical pass reads),
//     then a vertical pass; each pass is skipped when that axis keeps its size;
//   - per output index xx: center = (xx + 0.5) * scale, filter support scaled by max(scale, 1) (antialiasing when
//     downscaling), taps [trunc(center - support + 0.5), trunc(center + support + 0.5)) clipped to the image,
//     weights filter((x - center + 0.5) / max(scale, 1)) normalised to sum 1;
//   - 8-bit fixed point: weights rounded to 22 fractional bits (away from zero at .5), sums start at 2^21 (rounding),
//     result = clamp(sum >> 22, 0, 255).
// Nearest is not a filter in PIL: Image.resize(NEAREST) is an affine scale (Geometry.c ImagingScaleAffine) that
// picks source index floor(x0 + (x + 0.5) * in/out) with the position accumulated in double, as here.
// This file does not know tensors (transforms.ts wraps it) and does not decode files (image.ts does).

/** PIL's resampling filters (Image.Resampling), by torchvision's InterpolationMode names. */
export type PilFilter = 'nearest' | 'bilinear' | 'bicubic' | 'box' | 'hamming' | 'lanczos';

/** PIL's integer codes (Image.NEAREST = 0, LANCZOS = 1, BILINEAR = 2, BICUBIC = 3, BOX = 4, HAMMING = 5). */
export const PIL_FILTER_CODES: readonly PilFilter[] = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'];

interface FilterDef {
  fn: (x: number) => number;
  support: number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

const FILTERS: Record<Exclude<PilFilter, 'nearest'>, FilterDef> = {
  box: { fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0), support: 0.5 },
  bilinear: { fn: (x) => { x = Math.abs(x); return x < 1 ? 1 - x : 0; }, support: 1 },
  hamming: {
    fn: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x)); // 0.54f, 0.46f in C
    },
    support: 1,
  },
  // Keys' cubic convolution with a = -0.5 (PIL's BICUBIC; torchvision's tensor bicubic without antialias uses -0.75)
  bicubic: {
    fn: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
    support: 2,
  },
  lanczos: { fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0), support: 3 },
};

/** One axis of a resize: output index i reads `count[i]` source samples from `start[i]` with weights `k[i * ksize + j]`. */
export interface AxisCoeffs {
  ksize: number;
  start: Int32Array;
  count: Int32Array;
  /** Normalised weights (double), ksize per output index. */
  k: Float64Array;
}

/** Pillow's precompute_coeffs for the box [0, inSize) -> outSize. */
export function pilCoeffs(inSize: number, outSize: number, filter: Exclude<PilFilter, 'nearest'>): AxisCoeffs {
  const f = FILTERS[filter];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize), count = new Int32Array(outSize), k = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      k[xx * ksize + x] = w;
      ww += w;
    }
    if (ww !== 0) for (let x = 0; x < xmax; x++) k[xx * ksize + x] /= ww;
    start[xx] = xmin;
    count[xx] = Math.max(xmax, 0);
  }
  return { ksize, start, count, k };
}

const PRECISION_BITS = 22; // 32 - 8 - 2: 8 bits of result, 2 bits of headroom for negative lobes and overshoot

/** normalize_coeffs_8bpc: weights to signed fixed point, rounded half away from zero, truncated like a C int cast. */
function fixedPoint(k: Float64Array): Int32Array {
  const out = new Int32Array(k.length);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < k.length; i++) out[i] = k[i] < 0 ? Math.trunc(-0.5 + k[i] * one) : Math.trunc(0.5 + k[i] * one);
  return out;
}

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass over source rows [y0, y0 + rows): (rows, W, C) -> (rows, OW, C). */
function horizontal(src: Uint8Array, w: number, c: number, y0: number, rows: number, co: AxisCoeffs, ow: number): Uint8Array {
  const kk = fixedPoint(co.k);
  const out = new Uint8Array(rows * ow * c);
  const half = 1 << (PRECISION_BITS - 1);
  const { start, count, ksize } = co;
  if (c === 3) { // the RGB case, unrolled: three accumulators in registers
    for (let y = 0; y < rows; y++) {
      const rowIn = (y + y0) * w * 3;
      let o = y * ow * 3;
      for (let xx = 0; xx < ow; xx++) {
        let s0 = half, s1 = half, s2 = half;
        let p = rowIn + start[xx] * 3, kb = xx * ksize;
        for (let x = 0, n = count[xx]; x < n; x++, p += 3, kb++) {
          const wt = kk[kb];
          s0 += src[p] * wt;
          s1 += src[p + 1] * wt;
          s2 += src[p + 2] * wt;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      }
    }
    return out;
  }
  for (let y = 0; y < rows; y++) {
    const rowIn = (y + y0) * w * c, rowOut = y * ow * c;
    for (let xx = 0; xx < ow; xx++) {
      const xmin = start[xx], n = count[xx], kb = xx * ksize;
      for (let ch = 0; ch < c; ch++) {
        let ss = half;
        for (let x = 0; x < n; x++) ss += src[rowIn + (x + xmin) * c + ch] * kk[kb + x];
        out[rowOut + xx * c + ch] = clip8(ss);
      }
    }
  }
  return out;
}

/** Vertical pass: (H', W, C) -> (OH, W, C); `yShift` is subtracted from every start (the rows the horizontal pass skipped). */
function vertical(src: Uint8Array, w: number, c: number, co: AxisCoeffs, oh: number, yShift: number): Uint8Array {
  const kk = fixedPoint(co.k);
  const rowLen = w * c;
  const out = new Uint8Array(oh * rowLen);
  const acc = new Int32Array(rowLen); // int sums as PIL's (the 2 headroom bits keep them in range)
  for (let yy = 0; yy < oh; yy++) {
    const ymin = co.start[yy] - yShift, n = co.count[yy], kb = yy * co.ksize;
    acc.fill(1 << (PRECISION_BITS - 1));
    for (let y = 0; y < n; y++) {
      const wt = kk[kb + y], p = (y + ymin) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = acc[i] + src[p + i] * wt;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/** Pillow's ImagingScaleAffine for Image.resize(NEAREST) on the whole image. */
function nearest(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number): Uint8Array {
  // positions accumulate in double exactly as PIL's loop does; a position that lands outside the image (rounding)
  // leaves the pixel 0, as PIL's fill does
  const xin = new Int32Array(ow);
  const ax = w / ow, ay = h / oh;
  let xo = ax * 0.5;
  for (let x = 0; x < ow; x++, xo += ax) xin[x] = Math.trunc(xo) < w ? Math.trunc(xo) : -1;
  const out = new Uint8Array(oh * ow * c);
  let yo = ay * 0.5;
  for (let y = 0; y < oh; y++, yo += ay) {
    const yi = Math.trunc(yo);
    if (yi >= h) continue;
    for (let x = 0; x < ow; x++) {
      if (xin[x] < 0) continue;
      const p = (yi * w + xin[x]) * c, q = (y * ow + x) * c;
      for (let ch = 0; ch < c; ch++) out[q + ch] = src[p + ch];
    }
  }
  return out;
}

/**
 * Image.resize((ow, oh), filter) on an (H, W, C) uint8 image: a new (OH, OW, C) array (a copy when the size is
 * unchanged, as PIL returns a copy).
 */
export function pilResize(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number, filter: PilFilter): Uint8Array {
  if (src.length !== w * h * c) throw new RangeError(`pilResize: ${src.length} bytes do not hold a ${w}x${h}x${c} image`);
  if (!(Number.isInteger(ow) && Number.isInteger(oh) && ow > 0 && oh > 0)) {
    throw new RangeError(`Expected a positive integer output size for resize but received ${ow}x${oh}`);
  }
  if (ow === w && oh === h) return src.slice();
  if (filter === 'nearest') return nearest(src, w, h, c, ow, oh);
  if (!(filter in FILTERS)) throw new TypeError(`Expected one of ${PIL_FILTER_CODES.join(', ')} for filter but received ${String(filter)}`);
  const vert = pilCoeffs(h, oh, filter);
  const needH = ow !== w, needV = oh !== h;
  let cur = src, yShift = 0;
  if (needH) {
    // only the source rows the vertical pass reads: from the first tap of row 0 to the last tap of the last row
    const yFirst = vert.start[0];
    const yLast = vert.start[oh - 1] + vert.count[oh - 1];
    cur = horizontal(src, w, c, yFirst, yLast - yFirst, pilCoeffs(w, ow, filter), ow);
    yShift = yFirst;
  }
  if (needV) cur = vertical(cur, needH ? ow : w, c, vert, oh, yShift);
  return cur;
}

// torch.nn.functional.interpolate on float32 image planes, as torchvision 0.14's F.resize runs it on tensors
// (PyTorch 1.13, aten/src/ATen/native/cpu/UpSampleKernel.cpp, align_corners=False):
//   - antialias=True (bilinear, bicubic): PIL's algorithm (support scaled by the downscale factor, weights
//     normalised to sum 1, bicubic a = -0.5) computed in float32 instead of PIL's 8-bit fixed point;
//   - antialias=False: plain bilinear (source index max(scale * (i + 0.5) - 0.5, 0), two taps), bicubic (Keys
//     a = -0.75, four taps with indices clamped to the border), nearest (floor(i * scale), PyTorch's legacy
//     'nearest', not 'nearest-exact').
// Every case is separable: a horizontal pass then a vertical pass, accumulated in float32 in PyTorch's order
// (first tap times weight, then += each further tap), with the float32 roundings of PyTorch's index and weight
// arithmetic emulated by Math.fround. Planes are (P, H, W) row-major: P = every leading dimension (N * C).

export type TensorInterpolation = 'nearest' | 'bilinear' | 'bicubic';

const f = Math.fround;

/** Per output index: k taps (source index, float32 weight). */
interface Taps {
  k: number;
  idx: Int32Array;
  w: Float32Array;
}

function aaBilinear(x: number): number {
  x = Math.abs(x);
  return x < 1 ? f(1 - x) : 0;
}

function aaBicubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return f(((a + 2) * x - (a + 3)) * x * x + 1);
  if (x < 2) return f(f(f(f(f(x - 5) * x) + 8) * x) - 4) * a;
  return 0;
}

/** HelperInterpBase::_compute_indices_min_size_weights_aa for every output index (scalar_t = float). */
function antialiasTaps(inSize: number, outSize: number, mode: 'bilinear' | 'bicubic'): Taps {
  const filter = mode === 'bilinear' ? aaBilinear : aaBicubic;
  const interpSize = mode === 'bilinear' ? 2 : 4;
  const scale = f(inSize / outSize);
  const support = scale >= 1 ? f(interpSize * 0.5 * scale) : interpSize * 0.5;
  const k = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? f(1 / scale) : 1;
  const idx = new Int32Array(outSize * k), w = new Float32Array(outSize * k);
  for (let i = 0; i < outSize; i++) {
    const center = f(scale * (i + 0.5));
    const xmin = Math.max(Math.trunc(f(center - support) + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(f(center + support) + 0.5), inSize) - xmin, 0), k);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const wj = filter(f((f(j + xmin - center) + 0.5) * invscale));
      w[i * k + j] = wj;
      total = f(total + wj);
    }
    for (let j = 0; j < k; j++) {
      idx[i * k + j] = Math.min(xmin + j, inSize - 1); // taps past xsize keep weight 0
      if (j < xsize && total !== 0) w[i * k + j] = f(w[i * k + j] / total);
    }
  }
  return { k, idx, w };
}

/** upsample_bilinear2d's indices and lambdas (align_corners=False). */
function linearTaps(inSize: number, outSize: number): Taps {
  const scale = f(inSize / outSize);
  const idx = new Int32Array(outSize * 2), w = new Float32Array(outSize * 2);
  for (let i = 0; i < outSize; i++) {
    let real = f(scale * (i + 0.5) - 0.5);
    if (real < 0) real = 0;
    const i0 = Math.trunc(real);
    const lambda1 = Math.min(Math.max(f(real - i0), 0), 1);
    idx[2 * i] = i0;
    idx[2 * i + 1] = i0 + (i0 < inSize - 1 ? 1 : 0);
    w[2 * i] = f(1 - lambda1);
    w[2 * i + 1] = lambda1;
  }
  return { k: 2, idx, w };
}

const A = -0.75; // PyTorch's cubic convolution coefficient (OpenCV's); PIL's is -0.5
function cubic1(x: number): number {
  return f(f(f(f(f((A + 2) * x) - (A + 3)) * x) * x) + 1);
}
function cubic2(x: number): number {
  return f(f(f(f(f(f(A * x) - 5 * A) * x) + 8 * A) * x) - 4 * A);
}

/** upsample_bicubic2d's four taps per output index (align_corners=False), indices clamped to [0, inSize). */
function cubicTaps(inSize: number, outSize: number): Taps {
  const scale = f(inSize / outSize);
  const idx = new Int32Array(outSize * 4), w = new Float32Array(outSize * 4);
  for (let i = 0; i < outSize; i++) {
    const real = f(scale * (i + 0.5) - 0.5);
    const i0 = Math.floor(real);
    const t = f(real - i0);
    const x2 = f(1 - t);
    const ws = [cubic2(f(t + 1)), cubic1(t), cubic1(x2), cubic2(f(x2 + 1))];
    for (let j = 0; j < 4; j++) {
      idx[4 * i + j] = Math.max(Math.min(i0 - 1 + j, inSize - 1), 0);
      w[4 * i + j] = ws[j];
    }
  }
  return { k: 4, idx, w };
}

/** Legacy 'nearest': floor(i * scale) in float32, clamped; the exact 1x and 2x cases as PyTorch special-cases them. */
function nearestTaps(inSize: number, outSize: number): Taps {
  const scale = f(inSize / outSize);
  const idx = new Int32Array(outSize), w = new Float32Array(outSize).fill(1);
  for (let i = 0; i < outSize; i++) {
    idx[i] = outSize === inSize ? i : outSize === 2 * inSize ? i >> 1 : Math.min(Math.floor(f(i * scale)), inSize - 1);
  }
  return { k: 1, idx, w };
}

function taps(inSize: number, outSize: number, mode: TensorInterpolation, antialias: boolean): Taps {
  if (mode === 'nearest') return nearestTaps(inSize, outSize);
  if (antialias) return antialiasTaps(inSize, outSize, mode);
  return mode === 'bilinear' ? linearTaps(inSize, outSize) : cubicTaps(inSize, outSize);
}

/** out[r, o] = sum_j x[r, idx[o, j]] * w[o, j] over `rows` rows of length n (stride 1 along the axis). */
function passRows(x: Float32Array, rows: number, n: number, t: Taps, outN: number): Float32Array {
  const y = new Float32Array(rows * outN);
  for (let r = 0; r < rows; r++) {
    const xi = r * n, yo = r * outN;
    for (let o = 0; o < outN; o++) {
      const b = o * t.k;
      let acc = f(x[xi + t.idx[b]] * t.w[b]);
      for (let j = 1; j < t.k; j++) acc = f(acc + f(x[xi + t.idx[b + j]] * t.w[b + j]));
      y[yo + o] = acc;
    }
  }
  return y;
}

/** The vertical pass over (P, H, W) -> (P, OH, W), whole rows at a time. */
function passColumns(x: Float32Array, planes: number, h: number, w: number, t: Taps, oh: number): Float32Array {
  const y = new Float32Array(planes * oh * w);
  for (let p = 0; p < planes; p++) {
    for (let o = 0; o < oh; o++) {
      const b = o * t.k, yo = (p * oh + o) * w;
      const r0 = (p * h + t.idx[b]) * w, w0 = t.w[b];
      for (let i = 0; i < w; i++) y[yo + i] = f(x[r0 + i] * w0);
      for (let j = 1; j < t.k; j++) {
        const rj = (p * h + t.idx[b + j]) * w, wj = t.w[b + j];
        for (let i = 0; i < w; i++) y[yo + i] = f(y[yo + i] + f(x[rj + i] * wj));
      }
    }
  }
  return y;
}

/** Resize `planes` (H, W) float32 planes to (OH, OW): width first, then height, as PyTorch's separable kernels. */
export function interpolatePlanes(x: Float32Array, planes: number, h: number, w: number, oh: number, ow: number,
  mode: TensorInterpolation, antialias: boolean): Float32Array {
  if (x.length !== planes * h * w) throw new RangeError(`interpolate: ${x.length} values do not hold ${planes} planes of ${h}x${w}`);
  if (antialias && mode === 'nearest') throw new RangeError('Antialias option is supported for bilinear and bicubic interpolation modes only');
  const horizontal = passRows(x, planes * h, w, taps(w, ow, mode, antialias), ow);
  return passColumns(horizontal, planes, h, ow, taps(h, oh, mode, antialias), oh);
}

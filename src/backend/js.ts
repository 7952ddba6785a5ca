// The js backend: plain TypeScript loops, the readable reference and the last fallback. Every sum is accumulated
// in double precision and rounded once, so this backend is also the accuracy reference for the native one.

import type { Backend, Conv2dEpilogue, Conv2dParams, Pool2dParams } from './backend.js';

function conv2d(x: Float32Array, w: Float32Array, p: Conv2dParams, ep: Conv2dEpilogue, y: Float32Array): void {
  const { N, C, H, W, O, KH, KW, OH, OW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups } = p;
  const Cg = C / groups, Og = O / groups;
  const plane = OH * OW;
  const acc = new Float64Array(plane);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      acc.fill(ep.bias ? ep.bias[o] : 0);
      for (let ci = 0; ci < Cg; ci++) {
        const xBase = (n * C + g * Cg + ci) * H * W;
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const wv = w[((o * Cg + ci) * KH + kh) * KW + kw];
            // output columns whose input column iw = ow*sw - pw + kw*dw lies inside [0, W)
            const off = kw * dw - pw;
            const owLo = Math.max(0, Math.ceil(-off / sw));
            const owHi = Math.min(OW - 1, Math.floor((W - 1 - off) / sw));
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) continue;
              const xRow = xBase + ih * W + off;
              const aRow = oh * OW;
              for (let ow = owLo; ow <= owHi; ow++) acc[aRow + ow] += wv * x[xRow + ow * sw];
            }
          }
        }
      }
      const yBase = (n * O + o) * plane;
      for (let i = 0; i < plane; i++) {
        let v = acc[i];
        if (ep.residual) v += ep.residual[yBase + i];
        if (ep.relu && !(v > 0) && !Number.isNaN(v)) v = 0;
        y[yBase + i] = v;
      }
    }
  }
}

function batchNorm(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array,
  weight: Float32Array | null, bias: Float32Array | null, eps: number, relu: boolean, y: Float32Array): void {
  for (let c = 0; c < C; c++) {
    const invstd = 1 / Math.sqrt(variance[c] + eps);
    const scale = (weight ? weight[c] : 1) * invstd;
    const shift = (bias ? bias[c] : 0) - mean[c] * scale;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) {
        let v = x[i] * scale + shift;
        if (relu && !(v > 0) && !Number.isNaN(v)) v = 0;
        y[i] = v;
      }
    }
  }
}

function batchNormStats(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array): void {
  const count = N * HW;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) s += x[i];
    }
    const m = s / count;
    let ss = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * HW;
      for (let i = base; i < base + HW; i++) {
        const d = x[i] - m;
        ss += d * d;
      }
    }
    mean[c] = m;
    variance[c] = ss / count;
  }
}

function maxPool2d(x: Float32Array, p: Pool2dParams, y: Float32Array, indices: Int32Array | null): void {
  const { N, C, H, W, OH, OW, KH, KW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw } = p;
  for (let nc = 0; nc < N * C; nc++) {
    const xb = nc * H * W, yb = nc * OH * OW;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = -Infinity, bi = -1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - ph + kh * dh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pw + kw * dw;
            if (iw < 0 || iw >= W) continue;
            const v = x[xb + ih * W + iw];
            if (bi < 0) bi = ih * W + iw; // PyTorch starts at the first in-bounds position
            if (v > best || Number.isNaN(v)) {
              best = v;
              bi = ih * W + iw;
            }
          }
        }
        y[yb + oh * OW + ow] = best;
        if (indices) indices[yb + oh * OW + ow] = bi;
      }
    }
  }
}

function adaptiveAvgPool2d(x: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number, y: Float32Array): void {
  for (let nc = 0; nc < N * C; nc++) {
    const xb = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.floor((oh * H) / OH), h1 = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.floor((ow * W) / OW), w1 = Math.ceil(((ow + 1) * W) / OW);
        let s = 0;
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += x[xb + h * W + w];
        y[nc * OH * OW + oh * OW + ow] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
}

function gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void {
  const row = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    row.fill(0);
    for (let k = 0; k < K; k++) {
      const a = transA ? A[k * M + m] : A[m * K + k];
      if (transB) for (let n = 0; n < N; n++) row[n] += a * B[n * K + k];
      else for (let n = 0, b = k * N; n < N; n++) row[n] += a * B[b + n];
    }
    for (let n = 0; n < N; n++) C[m * N + n] = alpha * row[n] + (beta === 0 ? 0 : beta * C[m * N + n]);
  }
}

function relu(x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    y[i] = v > 0 || Number.isNaN(v) ? v : 0;
  }
}

function add(a: Float32Array, b: Float32Array, y: Float32Array, n: number, doRelu: boolean): void {
  for (let i = 0; i < n; i++) {
    const v = a[i] + b[i];
    y[i] = !doRelu || v > 0 || Number.isNaN(v) ? v : 0;
  }
}

export const jsBackend: Backend = {
  name: 'js',
  alloc: (n: number) => new Float32Array(n),
  conv2d,
  batchNorm,
  batchNormStats,
  maxPool2d,
  adaptiveAvgPool2d,
  gemm,
  relu,
  add,
  numThreads: () => 1,
  setNumThreads: () => {},
};

// The js backend: plain TypeScript loops, the readable reference and the last fallback. Every sum is accumulated
// in double precision and rounded once, so this backend is also the accuracy reference for the native one.
// The loops are written over FloatArray (Float32Array or Float64Array): the Backend interface is float32, but
// ops/kernels.ts also runs float64 tensors here (finite-difference gradient checks), only while js is the
// active backend. The backward members (training) follow the forward ones at the end of the file.

import type { AdamwStepParams, Backend, Conv2dEpilogue, Conv2dParams, Pool2dParams, SgdStepParams } from './backend.js';

/** The storage the js loops accept. */
export type FloatArray = Float32Array | Float64Array;

interface Epilogue {
  bias: FloatArray | null;
  residual: FloatArray | null;
  relu: boolean;
}

function conv2d(x: FloatArray, w: FloatArray, p: Conv2dParams, ep: Conv2dEpilogue | Epilogue, y: FloatArray): void {
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

function batchNorm(x: FloatArray, N: number, C: number, HW: number, mean: FloatArray, variance: FloatArray,
  weight: FloatArray | null, bias: FloatArray | null, eps: number, relu: boolean, y: FloatArray): void {
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

function batchNormStats(x: FloatArray, N: number, C: number, HW: number, mean: FloatArray, variance: FloatArray): void {
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

function maxPool2d(x: FloatArray, p: Pool2dParams, y: FloatArray, indices: Int32Array | null): void {
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

function adaptiveAvgPool2d(x: FloatArray, N: number, C: number, H: number, W: number, OH: number, OW: number, y: FloatArray): void {
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
  A: FloatArray, B: FloatArray, beta: number, C: FloatArray): void {
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

function relu(x: FloatArray, y: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    y[i] = v > 0 || Number.isNaN(v) ? v : 0;
  }
}

function add(a: FloatArray, b: FloatArray, y: FloatArray, n: number, doRelu: boolean): void {
  for (let i = 0; i < n; i++) {
    const v = a[i] + b[i];
    y[i] = !doRelu || v > 0 || Number.isNaN(v) ? v : 0;
  }
}

// ---- backward (training) ----

/** dx (N,C,H,W): every dy (N,O,OH,OW) value times the weights it was made with, summed into the input plane. */
function conv2dBackwardData(dy: FloatArray, w: FloatArray, p: Conv2dParams, dx: FloatArray): void {
  const { N, C, H, W, O, KH, KW, OH, OW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups } = p;
  const Cg = C / groups, Og = O / groups;
  const acc = new Float64Array(H * W);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = Math.floor(c / Cg), ci = c - g * Cg;
      acc.fill(0);
      for (let o = g * Og; o < (g + 1) * Og; o++) {
        const dyBase = (n * O + o) * OH * OW;
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++) {
            const wv = w[((o * Cg + ci) * KH + kh) * KW + kw];
            const off = kw * dw - pw;
            const owLo = Math.max(0, Math.ceil(-off / sw));
            const owHi = Math.min(OW - 1, Math.floor((W - 1 - off) / sw));
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) continue;
              const aRow = ih * W + off, dRow = dyBase + oh * OW;
              for (let ow = owLo; ow <= owHi; ow++) acc[aRow + ow * sw] += wv * dy[dRow + ow];
            }
          }
        }
      }
      dx.set(acc, (n * C + c) * H * W);
    }
  }
}

/** dw (O,C/groups,KH,KW) = sum over n, oh, ow of dy * the input value under each tap; db (O) = sum of dy. */
function conv2dBackwardWeight(x: FloatArray, dy: FloatArray, p: Conv2dParams, dwt: FloatArray, db: FloatArray | null): void {
  const { N, C, H, W, O, KH, KW, OH, OW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups } = p;
  const Cg = C / groups, Og = O / groups;
  for (let o = 0; o < O; o++) {
    const g = Math.floor(o / Og);
    for (let ci = 0; ci < Cg; ci++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++) {
          const off = kw * dw - pw;
          const owLo = Math.max(0, Math.ceil(-off / sw));
          const owHi = Math.min(OW - 1, Math.floor((W - 1 - off) / sw));
          let s = 0;
          for (let n = 0; n < N; n++) {
            const xBase = (n * C + g * Cg + ci) * H * W, dyBase = (n * O + o) * OH * OW;
            for (let oh = 0; oh < OH; oh++) {
              const ih = oh * sh - ph + kh * dh;
              if (ih < 0 || ih >= H) continue;
              const xRow = xBase + ih * W + off, dRow = dyBase + oh * OW;
              for (let ow = owLo; ow <= owHi; ow++) s += dy[dRow + ow] * x[xRow + ow * sw];
            }
          }
          dwt[((o * Cg + ci) * KH + kh) * KW + kw] = s;
        }
      }
    }
    if (db) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = (n * O + o) * OH * OW, end = i + OH * OW; i < end; i++) s += dy[i];
      db[o] = s;
    }
  }
}

/**
 * Batch norm with batch statistics, per channel over M = N*HW values, xhat = (x - mean) * invstd:
 * dx = weight * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)); dweight = sum(dy * xhat); dbias = sum(dy).
 */
function batchNormBackward(x: FloatArray, dy: FloatArray, y: FloatArray | null, N: number, C: number, HW: number, mean: FloatArray, invstd: FloatArray,
  weight: FloatArray | null, dx: FloatArray, dweight: FloatArray | null, dbias: FloatArray | null): void {
  const M = N * HW;
  for (let c = 0; c < C; c++) {
    const m = mean[c], is = invstd[c];
    let sdy = 0, sdyx = 0;
    for (let n = 0; n < N; n++) {
      for (let i = (n * C + c) * HW, end = i + HW; i < end; i++) {
        const g = y === null || y[i] > 0 ? dy[i] : 0;
        sdy += g;
        sdyx += g * (x[i] - m);
      }
    }
    const sdyXhat = sdyx * is;
    const k = (weight ? weight[c] : 1) * is;
    const meanDy = sdy / M, proj = sdyXhat / M;
    for (let n = 0; n < N; n++) {
      for (let i = (n * C + c) * HW, end = i + HW; i < end; i++) dx[i] = k * ((y === null || y[i] > 0 ? dy[i] : 0) - meanDy - (x[i] - m) * is * proj);
    }
    if (dweight) dweight[c] = sdyXhat;
    if (dbias) dbias[c] = sdy;
  }
}

/** dx: each dy summed into the input position maxPool2d picked (windows may overlap). */
function maxPool2dBackward(dy: FloatArray, indices: Int32Array, p: Pool2dParams, dx: FloatArray): void {
  const { N, C, H, W, OH, OW } = p;
  const acc = new Float64Array(H * W);
  for (let nc = 0; nc < N * C; nc++) {
    acc.fill(0);
    for (let i = nc * OH * OW, end = i + OH * OW; i < end; i++) acc[indices[i]] += dy[i];
    dx.set(acc, nc * H * W);
  }
}

/** dx: each dy divided by its bin's area and added to every position of the bin (bins may overlap). */
function adaptiveAvgPool2dBackward(dy: FloatArray, N: number, C: number, H: number, W: number, OH: number, OW: number, dx: FloatArray): void {
  const acc = new Float64Array(H * W);
  for (let nc = 0; nc < N * C; nc++) {
    acc.fill(0);
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.floor((oh * H) / OH), h1 = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.floor((ow * W) / OW), w1 = Math.ceil(((ow + 1) * W) / OW);
        const v = dy[nc * OH * OW + oh * OW + ow] / ((h1 - h0) * (w1 - w0));
        for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) acc[h * W + w] += v;
      }
    }
    dx.set(acc, nc * H * W);
  }
}

function reluBackward(dy: FloatArray, y: FloatArray, dx: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

/** SGD (see Backend.sgdStep), math in double per element, each stored value rounded once. */
function sgdStep(w: FloatArray, grad: FloatArray, b: FloatArray | null, n: number, o: SgdStepParams): void {
  const { lr, momentum, weightDecay: wd, nesterov } = o, sign = o.maximize ? -1 : 1, keep = 1 - o.dampening;
  if (momentum === 0) {
    for (let i = 0; i < n; i++) w[i] -= lr * (sign * grad[i] + wd * w[i]);
    return;
  }
  if (!b) throw new TypeError('sgdStep: momentum needs a momentum buffer');
  if (o.first) {
    for (let i = 0; i < n; i++) b[i] = sign * grad[i] + wd * w[i];
    for (let i = 0; i < n; i++) w[i] -= lr * (nesterov ? b[i] + momentum * b[i] : b[i]);
  } else if (nesterov) {
    // two specialised loops: this is memory-bound, a branch per element costs ~2x
    for (let i = 0; i < n; i++) {
      const d = sign * grad[i] + wd * w[i];
      const bi = (b[i] = momentum * b[i] + keep * d);
      w[i] -= lr * (d + momentum * bi);
    }
  } else {
    for (let i = 0; i < n; i++) {
      const bi = (b[i] = momentum * b[i] + keep * (sign * grad[i] + wd * w[i]));
      w[i] -= lr * bi;
    }
  }
}

/** AdamW (see Backend.adamwStep), math in double per element, each stored value rounded once. */
function adamwStep(w: FloatArray, grad: FloatArray, m: FloatArray, v: FloatArray, vmax: FloatArray | null, n: number, o: AdamwStepParams): void {
  const { beta1, beta2, eps, stepSize, biasCorrection2Sqrt: bc2Sqrt } = o, sign = o.maximize ? -1 : 1, decay = 1 - o.lr * o.weightDecay;
  for (let i = 0; i < n; i++) {
    const gi = sign * grad[i];
    const wi = w[i] * decay;
    const mi = (m[i] = beta1 * m[i] + (1 - beta1) * gi);
    let vi = (v[i] = beta2 * v[i] + (1 - beta2) * gi * gi);
    if (vmax !== null) vi = vmax[i] = Math.max(vmax[i], vi);
    w[i] = wi - stepSize * (mi / (Math.sqrt(vi) / bc2Sqrt + eps));
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
  conv2dBackwardData,
  conv2dBackwardWeight,
  batchNormBackward,
  maxPool2dBackward,
  adaptiveAvgPool2dBackward,
  reluBackward,
  sgdStep,
  adamwStep,
  numThreads: () => 1,
  setNumThreads: () => {},
};

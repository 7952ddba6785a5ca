// The backward rules, one table: for every op that records a node (tensor/autograd.ts), how the gradient of its
// output becomes the gradients of its inputs. A rule gets what its forward saved, the output gradient g and which
// inputs need a gradient, and returns one gradient (or null) per input in the forward's input order. Rules run with
// grad mode off. The heavy ones call the backend's backward kernels (conv, batch norm, pooling, relu, gemm); the rest
// are short loops. Views and copies (tensor.ts) record by the names in the first block.
//
// Shapes: conv x (N,C,H,W), w (O,C/groups,KH,KW), y (N,O,OH,OW); batch norm x (N,C,HW) per channel c; linear x
// (M,K) flattened, w (O,K), y (M,O). Gradients have their input's shape and dtype (the engine converts dtypes).

import { Tensor, forEachOffset } from '../tensor/tensor.js';
import { type FloatDType, allocStorage } from '../tensor/dtype.js';
import { broadcastStrides, contiguousStrides, numelOf, shapeEq } from '../tensor/shape.js';
import { defineRules, setGradAdder, setGradDone, type Rule } from '../tensor/autograd.js';
import type { Conv2dParams, Pool2dParams } from '../backend/backend.js';
import { floatData, kernelsFor, outputOf, zerosOf } from './kernels.js';
import { erf } from './activation.js';
import { recycle, recycleArray } from './recycle.js';
import { crossEntropyGrad, bceWithLogitsGrad, type CrossEntropySaved, type BceSaved } from './loss.js';

type Shape = readonly number[];
type G = Tensor;
type Needs = readonly boolean[];

// ---- helpers ------------------------------------------------------------------------------------------------------

const data = (t: Tensor, dt: FloatDType, what: string) => floatData(t, what, dt);
const wrap = (d: Float32Array, shape: Shape) => new Tensor(d, shape);

/** g summed over the dims it was broadcast along, back to `shape` (PyTorch's sum_to). */
export function reduceTo(g: Tensor, shape: Shape): Tensor {
  if (shapeEq(g.shape, shape)) return g;
  const acc = new Float64Array(numelOf(shape));
  const src = g.contiguousData();
  forEachOffset(g.shape, broadcastStrides(shape, contiguousStrides(shape), g.shape), 0, (off, i) => {
    acc[off] += Number(src[i]);
  });
  const out = allocStorage(g.dtype, acc.length) as Float64Array;
  out.set(acc);
  return new Tensor(out, shape, { dtype: g.dtype });
}

/** t broadcast to `shape`, materialized. */
export function expandTo(t: Tensor, shape: Shape): Tensor {
  if (shapeEq(t.shape, shape) && t.isContiguous()) return t;
  const out = allocStorage(t.dtype, numelOf(shape)) as Float64Array;
  const src = t.data as Float64Array;
  forEachOffset(shape, broadcastStrides(t.shape, t.strides, shape), t.offset, (off, i) => {
    out[i] = src[off];
  });
  return new Tensor(out, shape, { dtype: t.dtype });
}

/** Zeros of `shape` with g written where `view` of them (a select or narrow) lies. */
function scatterInto(shape: Shape, g: Tensor, view: (z: Tensor) => Tensor): Tensor {
  const z = new Tensor(allocStorage(g.dtype, numelOf(shape)), shape, { dtype: g.dtype });
  view(z).copy_(g);
  return z;
}

/** out[i] = f(a[i], b[i], i) over same-shape float tensors, in a's dtype. */
function zip(a: Tensor, b: Tensor, f: (x: number, y: number, i?: number) => number): Tensor {
  const ad = a.contiguousData() as Float64Array, bd = b.contiguousData() as Float64Array;
  const out = allocStorage(a.dtype, ad.length) as Float64Array;
  for (let i = 0; i < out.length; i++) out[i] = f(ad[i], bd[i], i);
  return new Tensor(out, a.shape, { dtype: a.dtype });
}

/** g (the reduced gradient of a sum or mean over `dim`, or over everything) spread back over `shape`, times k. */
function unreduce(g: Tensor, shape: Shape, dim: number | undefined, keepdim: boolean, k: number): Tensor {
  let gs = g;
  if (dim === undefined) gs = g.reshape(shape.map(() => 1));
  else if (!keepdim) gs = g.unsqueeze(dim);
  const e = expandTo(gs, shape);
  const out = e === gs ? e.clone() : e;
  if (k !== 1) {
    const d = out.data as Float64Array;
    for (let i = 0; i < d.length; i++) d[i] *= k;
  }
  return out;
}

/** Per output channel: sum of dy (N,O,P) over N and P. */
function channelSums(dy: Float32Array, N: number, O: number, P: number, dt: FloatDType): Float32Array {
  const db = zerosOf(dt, O);
  for (let o = 0; o < O; o++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let i = (n * O + o) * P, end = i + P; i < end; i++) s += dy[i];
    db[o] = s;
  }
  return db;
}

/** dy masked by relu's output y (dy where y > 0); float64 (relu runs on any backend in float64) in a plain loop. */
function reluMask(dy: Float32Array, y: Tensor, dt: FloatDType): Float32Array {
  const m = outputOf(dt, dy.length), yd = data(y, dt, 'relu output');
  if (dt === 'float64') for (let i = 0; i < m.length; i++) m[i] = yd[i] > 0 ? dy[i] : 0;
  else kernelsFor(dt, 'relu backward').reluBackward(dy, yd, m, dy.length);
  return m;
}

// Conv weights are packed by the native backend per PackKey; backward-data packs them differently, so it gets its
// own key object per weight (held weakly).
const bwdKeys = new WeakMap<Tensor, object>();
function bwdPackKey(w: Tensor): { key: object; version: number } {
  let k = bwdKeys.get(w);
  if (!k) bwdKeys.set(w, (k = {}));
  return { key: k, version: w.version };
}

// d/dx of the elementwise functions (ops/elementwise.ts, ops/activation.ts): (x, y = f(x), a = the function's
// parameter) => f'(x).
const SQRT1_2PI = 1 / Math.sqrt(2 * Math.PI);
const sig = (v: number) => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
export const DERIVATIVES: Readonly<Record<string, (x: number, y: number, a: number[]) => number>> = {
  neg: () => -1,
  abs: (x) => Math.sign(x),
  exp: (_x, y) => y,
  log: (x) => 1 / x,
  sqrt: (_x, y) => 0.5 / y,
  square: (x) => 2 * x,
  clamp: (x, _y, [lo, hi]) => (x >= lo && x <= hi ? 1 : 0),
  sigmoid: (_x, y) => y * (1 - y),
  tanh: (_x, y) => 1 - y * y,
  silu: (x) => sig(x) * (1 + x * (1 - sig(x))),
  gelu: (x) => 0.5 * (1 + erf(x / Math.SQRT2)) + x * SQRT1_2PI * Math.exp(-0.5 * x * x),
  geluTanh: (x) => {
    const k = Math.sqrt(2 / Math.PI), u = k * (x + 0.044715 * x * x * x), t = Math.tanh(u);
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
  },
  quickGelu: (x) => sig(1.702 * x) * (1 + 1.702 * x * (1 - sig(1.702 * x))),
  mish: (x) => {
    const sp = x > 20 ? x : Math.log1p(Math.exp(x)), t = Math.tanh(sp);
    return t + x * (1 - t * t) * sig(x);
  },
  relu6: (x) => (x > 0 && x < 6 ? 1 : 0),
  leakyRelu: (x, _y, [slope]) => (x > 0 ? 1 : slope),
  relu2: (x) => (x > 0 ? 2 * x : 0),
  elu: (x, y, [alpha]) => (x > 0 ? 1 : y + alpha),
};

// ---- the rules ----------------------------------------------------------------------------------------------------

const RULES = {
  // layout (tensor.ts): gradients move back through views and copies
  identity: (_s: object, g: G) => [g],
  cast: (_s: object, g: G) => [g],
  copy: (_s: object, g: G) => [null, g],
  fill: () => [null],
  reshape: (s: { shape: Shape }, g: G) => [g.reshape(s.shape)],
  permute: (s: { dims: number[] }, g: G) => {
    const inv = new Array<number>(s.dims.length);
    s.dims.forEach((d, i) => (inv[d] = i));
    return [g.permute(inv)];
  },
  select: (s: { shape: Shape; index: number }, g: G) => [scatterInto(s.shape, g, (z) => z.get(s.index))],
  narrow: (s: { shape: Shape; dim: number; start: number }, g: G) => [scatterInto(s.shape, g, (z) => z.narrow(s.dim, s.start, g.shape[s.dim]))],

  // elementwise, with broadcasting: each gradient is summed back to its input's shape
  add: (s: { a: Shape; b: Shape }, g: G, n: Needs) => [n[0] ? reduceTo(g, s.a) : null, n[1] ? reduceTo(g, s.b) : null],
  sub: (s: { a: Shape; b: Shape }, g: G, n: Needs) => [n[0] ? reduceTo(g, s.a) : null, n[1] ? reduceTo(zip(g, g, (x) => -x), s.b) : null],
  mul: (s: { a: Tensor; b: Tensor }, g: G, n: Needs) => [
    n[0] ? reduceTo(zip(g, expandTo(s.b, g.shape), (x, y) => x * y), s.a.shape) : null,
    n[1] ? reduceTo(zip(g, expandTo(s.a, g.shape), (x, y) => x * y), s.b.shape) : null,
  ],
  div: (s: { a: Tensor; b: Tensor }, g: G, n: Needs) => {
    const b = expandTo(s.b, g.shape);
    return [
      n[0] ? reduceTo(zip(g, b, (x, y) => x / y), s.a.shape) : null,
      n[1] ? reduceTo(zip(zip(g, expandTo(s.a, g.shape), (x, y) => x * y), b, (x, y) => -x / (y * y)), s.b.shape) : null,
    ];
  },
  maximum: (s: { a: Tensor; b: Tensor; max: boolean }, g: G, n: Needs) => {
    // to the selected operand; half to each where they tie (PyTorch's maximum/minimum)
    const a = expandTo(s.a.to(g.dtype), g.shape), b = expandTo(s.b.to(g.dtype), g.shape);
    const ad = a.data as Float64Array, bd = b.data as Float64Array;
    const part = (mine: Float64Array, other: Float64Array) => zip(g, g, (v, _w, i) => {
      const x = mine[i!], y = other[i!];
      return x === y ? v / 2 : (s.max ? x > y : x < y) ? v : 0;
    });
    return [n[0] ? reduceTo(part(ad, bd), s.a.shape) : null, n[1] ? reduceTo(part(bd, ad), s.b.shape) : null];
  },
  unary: (s: { x: Tensor; y: Tensor; fn: string; args: number[] }, g: G) => {
    const df = DERIVATIVES[s.fn];
    const xd = s.x.contiguousData(), yd = s.y.contiguousData(), gd = g.contiguousData();
    const out = allocStorage(g.dtype, gd.length) as Float64Array;
    for (let i = 0; i < out.length; i++) out[i] = Number(gd[i]) * df(Number(xd[i]), Number(yd[i]), s.args);
    return [new Tensor(out, g.shape, { dtype: g.dtype })];
  },
  relu: (s: { y: Tensor }, g: G) => {
    const dt = g.dtype as FloatDType;
    return [wrap(reluMask(data(g, dt, 'relu grad'), s.y, dt), g.shape)];
  },

  // reductions
  sum: (s: { shape: Shape; dim?: number; keepdim: boolean }, g: G) => [unreduce(g, s.shape, s.dim, s.keepdim, 1)],
  mean: (s: { shape: Shape; dim?: number; keepdim: boolean; count: number }, g: G) => [unreduce(g, s.shape, s.dim, s.keepdim, 1 / s.count)],
  softmax: (s: { y: Tensor; dim: number; log: boolean }, g: G) => [softmaxGrad(s.y, g, s.dim, s.log)],
  max_all: (s: { x: Tensor; y: Tensor }, g: G) => {
    // spread evenly over the positions that hold the maximum (PyTorch's evenly_distribute_backward)
    const m = s.y.item(), isMax = (v: number) => v === m || (Number.isNaN(v) && Number.isNaN(m));
    const xd = s.x.contiguousData();
    let count = 0;
    for (let i = 0; i < xd.length; i++) if (isMax(Number(xd[i]))) count++;
    const out = allocStorage(g.dtype, xd.length) as Float64Array;
    for (let i = 0; i < xd.length; i++) if (isMax(Number(xd[i]))) out[i] = g.item() / count;
    return [new Tensor(out, s.x.shape, { dtype: g.dtype })];
  },
  gather: (s: { shape: Shape; dim: number; k: number; index: Int32Array }, g: G) => {
    // g (outer, k, inner) added back at the positions index picked along dim (max along a dim, topk)
    const n = s.shape.length ? s.shape[s.dim] : 1, inner = numelOf(s.shape.slice(s.dim + 1)), outer = numelOf(s.shape.slice(0, s.dim));
    const gd = g.contiguousData() as Float64Array;
    const out = allocStorage(g.dtype, numelOf(s.shape)) as Float64Array;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < s.k; j++) {
        for (let i = 0; i < inner; i++) {
          const at = (o * s.k + j) * inner + i;
          out[(o * n + s.index[at]) * inner + i] += gd[at];
        }
      }
    }
    return [new Tensor(out, s.shape, { dtype: g.dtype })];
  },

  // nn
  conv2d: (s: { x: Tensor | null; w: Tensor | null; p: Conv2dParams; y: Tensor | null; xShape: Shape; rShape: Shape | null; dtype: FloatDType }, g: G, n: Needs) => {
    const { p, dtype: dt } = s;
    const be = kernelsFor(dt, 'conv2d backward');
    let dy = data(g, dt, 'conv2d grad');
    if (s.y) dy = reluMask(dy, s.y, dt);
    let dx: Float32Array | null = null, dw: Float32Array | null = null, db: Float32Array | null = null;
    if (n[0]) be.conv2dBackwardData(dy, data(s.w!, dt, 'conv2d weight'), p, (dx = outputOf(dt, p.N * p.C * p.H * p.W)), bwdPackKey(s.w!));
    if (n[1]) be.conv2dBackwardWeight(data(s.x!, dt, 'conv2d input'), dy, p, (dw = outputOf(dt, p.O * (p.C / p.groups) * p.KH * p.KW)), n[2] ? (db = zerosOf(dt, p.O)) : null);
    else if (n[2]) db = channelSums(dy, p.N, p.O, p.OH * p.OW, dt);
    if (s.y && !n[3] && dy instanceof Float32Array) recycleArray(dy); // the relu-masked gradient was ours alone
    return [dx && wrap(dx, s.xShape), dw && wrap(dw, s.w ? s.w.shape : [p.O, p.C / p.groups, p.KH, p.KW]), db && wrap(db, [p.O]), n[3] ? wrap(dy, s.rShape!) : null];
  },
  batch_norm: (s: { x: Tensor; mean: Float32Array; invstd: Float32Array; w: Tensor | null; training: boolean; y: Tensor | null; dtype: FloatDType }, g: G, n: Needs) => {
    const dt = s.dtype;
    const [N, C] = s.x.shape, HW = numelOf(s.x.shape.slice(2));
    let dy = data(g, dt, 'batch_norm grad');
    const xd = data(s.x, dt, 'batch_norm input'), wd = s.w ? data(s.w, dt, 'batch_norm weight') : null;
    const dx = outputOf(dt, xd.length), dw = n[1] ? zerosOf(dt, C) : null, db = n[2] ? zerosOf(dt, C) : null;
    // a fused relu's mask is applied inside the training kernel; eval mode masks first
    if (s.training) kernelsFor(dt, 'batch_norm backward').batchNormBackward(xd, dy, s.y ? data(s.y, dt, 'batch_norm output') : null, N, C, HW, s.mean, s.invstd, wd, dx, dw, db);
    else {
      if (s.y) dy = reluMask(dy, s.y, dt);
      batchNormEvalBackward(xd, dy, N, C, HW, s.mean, s.invstd, wd, dx, dw, db);
    }
    return [n[0] ? wrap(dx, s.x.shape) : null, dw && wrap(dw, [C]), db && wrap(db, [C])];
  },
  max_pool2d: (s: { indices: Int32Array; p: Pool2dParams; xShape: Shape; dtype: FloatDType }, g: G) => {
    const { p, dtype: dt } = s;
    const dx = outputOf(dt, p.N * p.C * p.H * p.W);
    kernelsFor(dt, 'max_pool2d backward').maxPool2dBackward(data(g, dt, 'max_pool2d grad'), s.indices, p, dx);
    return [wrap(dx, s.xShape)];
  },
  adaptive_avg_pool2d: (s: { dims: [number, number, number, number, number, number]; xShape: Shape; dtype: FloatDType }, g: G) => {
    const [N, C, H, W, OH, OW] = s.dims, dt = s.dtype;
    const dx = outputOf(dt, N * C * H * W);
    kernelsFor(dt, 'adaptive_avg_pool2d backward').adaptiveAvgPool2dBackward(data(g, dt, 'adaptive_avg_pool2d grad'), N, C, H, W, OH, OW, dx);
    return [wrap(dx, s.xShape)];
  },
  linear: (s: { x: Tensor | null; w: Tensor | null; M: number; K: number; O: number; xShape: Shape; dtype: FloatDType }, g: G, n: Needs) => {
    const { M, K, O, dtype: dt } = s;
    const be = kernelsFor(dt, 'linear backward');
    const dy = data(g, dt, 'linear grad');
    // dx (M,K) = dy (M,O) W (O,K);  dW (O,K) = dy^T (O,M) x (M,K);  db (O) = column sums of dy
    const dx = n[0] ? gemmOrZero(be, false, false, M, K, O, dy, data(s.w!, dt, 'linear weight'), dt) : null;
    const dw = n[1] ? gemmOrZero(be, true, false, O, K, M, dy, data(s.x!, dt, 'linear input'), dt) : null;
    const db = n[2] ? channelSums(dy, M, O, 1, dt) : null;
    return [dx && wrap(dx, s.xShape), dw && wrap(dw, [O, K]), db && wrap(db, [O])];
  },
  matmul: (s: { a: Tensor; b: Tensor; dtype: FloatDType }, g: G, n: Needs) => {
    const [M, K] = s.a.shape, N = s.b.shape[1], dt = s.dtype;
    const be = kernelsFor(dt, 'matmul backward');
    const dy = data(g, dt, 'matmul grad');
    // dA (M,K) = dC (M,N) B^T;  dB (K,N) = A^T dC
    return [
      n[0] ? wrap(gemmOrZero(be, false, true, M, K, N, dy, data(s.b, dt, 'matmul other'), dt), [M, K]) : null,
      n[1] ? wrap(gemmOrZero(be, true, false, K, N, M, data(s.a, dt, 'matmul input'), dy, dt), [K, N]) : null,
    ];
  },

  // losses (the formulas live next to their forward in loss.ts)
  mse_loss: (s: { x: Tensor; t: Tensor; reduction: string }, g: G, n: Needs) => {
    const k = s.reduction === 'mean' ? 2 / s.x.numel : 2;
    const gd = expandTo(g, s.x.shape);
    const d = zip(zip(s.x, s.t.dtype === s.x.dtype ? s.t : s.t.to(s.x.dtype), (x, t) => k * (x - t)), gd, (v, w) => v * w);
    return [n[0] ? d : null, n[1] ? zip(d, d, (v) => -v) : null];
  },
  cross_entropy: (s: CrossEntropySaved, g: G, n: Needs) => crossEntropyGrad(s, g, n),
  bce_with_logits: (s: BceSaved, g: G, n: Needs) => bceWithLogitsGrad(s, g, n),
} satisfies Record<string, Rule>;

export type RuleName = keyof typeof RULES;
defineRules(RULES);
// gradients meeting at a node or a leaf are summed by the backend (float32) or a plain loop (float64)
setGradAdder((a, b, y, n) => {
  if (a instanceof Float32Array && b instanceof Float32Array && y instanceof Float32Array) kernelsFor('float32', 'gradient sum').add(a, b, y, n, false);
  else for (let i = 0; i < n; i++) y[i] = a[i] + b[i];
});
// a gradient backward has finished with goes to later outputs of its size (ops/recycle.ts)
setGradDone(recycle);

// ---- the longer rule bodies ---------------------------------------------------------------------------------------

/** A (M,N) = op(A) op(B) with inner size K; zeros when K is 0 (no products). */
function gemmOrZero(be: ReturnType<typeof kernelsFor>, tA: boolean, tB: boolean, M: number, N: number, K: number,
  A: Float32Array, B: Float32Array, dt: FloatDType): Float32Array {
  if (K === 0 || M === 0 || N === 0) return zerosOf(dt, M * N);
  const out = outputOf(dt, M * N);
  be.gemm(tA, tB, M, N, K, 1, A, B, 0, out);
  return out;
}

/** Eval-mode batch norm is a per-channel affine map: dx = dy * w * invstd; dw = sum(dy * xhat); db = sum(dy). */
function batchNormEvalBackward(x: Float32Array, dy: Float32Array, N: number, C: number, HW: number, mean: Float32Array, invstd: Float32Array,
  w: Float32Array | null, dx: Float32Array, dw: Float32Array | null, db: Float32Array | null): void {
  for (let c = 0; c < C; c++) {
    const k = (w ? w[c] : 1) * invstd[c], m = mean[c];
    let sdy = 0, sdyx = 0;
    for (let nn = 0; nn < N; nn++) {
      for (let i = (nn * C + c) * HW, end = i + HW; i < end; i++) {
        dx[i] = dy[i] * k;
        sdy += dy[i];
        sdyx += dy[i] * (x[i] - m);
      }
    }
    if (dw) dw[c] = sdyx * invstd[c];
    if (db) db[c] = sdy;
  }
}

/** softmax: dx = y (g - sum(g y)); log_softmax: dx = g - exp(y) sum(g), sums along dim. */
function softmaxGrad(y: Tensor, g: Tensor, dim: number, log: boolean): Tensor {
  const yd = y.contiguousData() as Float64Array, gd = g.contiguousData() as Float64Array;
  const n = y.ndim === 0 ? 1 : y.shape[dim];
  const inner = numelOf(y.shape.slice(dim + 1)), outer = numelOf(y.shape.slice(0, dim));
  const out = allocStorage(g.dtype, yd.length) as Float64Array;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      let s = 0;
      for (let k = 0; k < n; k++) s += log ? gd[base + k * inner] : gd[base + k * inner] * yd[base + k * inner];
      for (let k = 0; k < n; k++) {
        const at = base + k * inner;
        out[at] = log ? gd[at] - Math.exp(yd[at]) * s : yd[at] * (gd[at] - s);
      }
    }
  }
  return new Tensor(out, y.shape, { dtype: g.dtype });
}

// The native backend against the js backend (the double-precision reference), member by member, on odd shapes:
// sizes that are not multiples of the SIMD width or of the register tile (8 x 48 on AVX-512), few and prime
// channel counts, groups, dilation, padding, strides, batches whose columns straddle images, epilogues, every
// gemm transpose, NaN, and arrays too short for the call. Every case runs on every SIMD level this CPU offers
// (avx512, avx2, scalar, and "ref", the naive C kernels) with 1 and 2 threads; js results are computed once.
//
// Tolerances (per member, written next to each test):
// - conv2d, gemm: |native - js| <= 1e-5 * absref + 1e-30, absref = the same op on |inputs| (sum of |products|,
//   plus |bias|, |residual|, |beta*C|). Native sums K products in float32 (FMA, blocked by 512), js in double; each
//   float32 addition errs by <= 2^-24 of the running |sum| <= absref, and the errors behave like a random walk,
//   so the difference is ~sqrt(K) * 6e-8 * absref: 4e-6 * absref at K = 4608, 2.7e-6 at K = 2048. A wrong index
//   or a lost term is >= absref / K (2e-4 * absref at K = 4608), far above the bound.
// - batchNorm: y = x*scale + shift with scale and shift rounded to float32 once, then one FMA: 2e-7 relative to
//   |x*scale| + |shift|; checked as 1e-6 * that magnitude.
// - batchNormStats, adaptiveAvgPool2d: double accumulation on both sides, one rounding to float32: rtol 1e-6.
// - maxPool2d, relu, add: exact (max and the float32 add are exact operations), NaN where js has NaN, indices equal.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../src/backend/js.js';
import { loadNative, nativeIsaList, setNativeIsa } from '../../src/backend/native.js';
import type { Backend, Conv2dParams, Pool2dParams } from '../../src/backend/backend.js';
import { backends, everyNativeConfig, randArray } from '../helpers.js';

const nativeSkip = backends().find((b) => b.name === 'native')!.skip;
const native = loadNative().backend as Backend;
const LEVELS = nativeSkip ? [] : nativeIsaList();


const rand = randArray;

const abs = (a: Float32Array) => a.map(Math.abs);

/** |actual - expected| <= rel * magnitude + atol everywhere, NaN matching NaN. */
function assertWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, magnitude: ArrayLike<number> | null, rel: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) assert.fail(`${what}: element ${i} is ${a}, expected ${e}`);
      continue;
    }
    const tol = atol + rel * (magnitude ? magnitude[i] : Math.abs(e));
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e).toExponential(3)} > ${tol.toExponential(3)})`);
    }
  }
}

// ---- conv2d -----------------------------------------------------------------------------------------------------

interface ConvCase {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  s?: [number, number]; p?: [number, number]; d?: [number, number]; g?: number;
  bias?: boolean; residual?: boolean; relu?: boolean;
}

function convParams(c: ConvCase): Conv2dParams {
  const [sh, sw] = c.s ?? [1, 1], [ph, pw] = c.p ?? [0, 0], [dh, dw] = c.d ?? [1, 1];
  const OH = Math.floor((c.H + 2 * ph - dh * (c.KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((c.W + 2 * pw - dw * (c.KW - 1) - 1) / sw) + 1;
  return { N: c.N, C: c.C, H: c.H, W: c.W, O: c.O, KH: c.KH, KW: c.KW, OH, OW, strideH: sh, strideW: sw,
    padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups: c.g ?? 1 };
}

const CONV_CASES: ConvCase[] = [
  // channels 1/3/5/17/33, non-square, sizes off the vector width and tile
  { N: 1, C: 1, H: 5, W: 7, O: 1, KH: 3, KW: 3, p: [1, 1], bias: true },
  { N: 1, C: 3, H: 13, W: 11, O: 5, KH: 3, KW: 3, p: [1, 1], bias: true, relu: true },
  { N: 3, C: 5, H: 9, W: 10, O: 17, KH: 3, KW: 3, p: [1, 1], residual: true, relu: true },
  { N: 1, C: 17, H: 15, W: 12, O: 33, KH: 5, KW: 3, p: [3, 1] },
  { N: 3, C: 33, H: 7, W: 7, O: 17, KH: 1, KW: 1, bias: true, residual: true, relu: true },
  // 1x1 stride 1 reading x directly (full 48-column tiles), and batch columns straddling images
  { N: 3, C: 16, H: 10, W: 10, O: 24, KH: 1, KW: 1, bias: true },
  { N: 1, C: 64, H: 8, W: 12, O: 64, KH: 1, KW: 1, residual: true },
  // stride 2, padding 0/1/3, the 7x7 stem shape
  { N: 1, C: 3, H: 30, W: 29, O: 16, KH: 7, KW: 7, s: [2, 2], p: [3, 3], bias: true, relu: true },
  { N: 3, C: 8, H: 11, W: 14, O: 12, KH: 3, KW: 3, s: [2, 2], p: [1, 1], relu: true },
  { N: 1, C: 12, H: 17, W: 9, O: 20, KH: 1, KW: 1, s: [2, 2] },
  { N: 1, C: 4, H: 9, W: 9, O: 6, KH: 3, KW: 3, s: [2, 1], p: [0, 0] },
  { N: 1, C: 4, H: 19, W: 23, O: 6, KH: 3, KW: 3, s: [3, 3], p: [1, 1] },
  // stride 2 through the phase planes: odd sizes, no padding, an even kernel, 1x1 downsampling across images
  { N: 2, C: 6, H: 10, W: 13, O: 9, KH: 3, KW: 3, s: [2, 2], bias: true },
  { N: 1, C: 5, H: 12, W: 12, O: 7, KH: 4, KW: 2, s: [2, 2], p: [2, 1], relu: true },
  { N: 3, C: 12, H: 9, W: 7, O: 20, KH: 1, KW: 1, s: [2, 2], residual: true },
  { N: 3, C: 32, H: 20, W: 20, O: 48, KH: 1, KW: 1, s: [2, 2], bias: true },
  // dilation 2
  { N: 1, C: 6, H: 12, W: 13, O: 10, KH: 3, KW: 3, d: [2, 2], p: [2, 2], bias: true },
  { N: 3, C: 5, H: 10, W: 9, O: 7, KH: 3, KW: 3, d: [2, 1], p: [0, 1], s: [1, 2] },
  // groups 2 and 4, resnext-like 32 groups of width 4, depthwise
  { N: 1, C: 8, H: 9, W: 9, O: 6, KH: 3, KW: 3, g: 2, p: [1, 1], bias: true },
  { N: 3, C: 16, H: 7, W: 11, O: 12, KH: 3, KW: 3, g: 4, p: [1, 1], residual: true, relu: true },
  { N: 1, C: 128, H: 8, W: 8, O: 128, KH: 3, KW: 3, g: 32, p: [1, 1], s: [2, 2], bias: true },
  { N: 3, C: 10, H: 9, W: 8, O: 10, KH: 3, KW: 3, g: 10, p: [1, 1], bias: true, relu: true },
  // big enough to thread (> 2 M multiply-adds), K = 576 > 512 (two K blocks), columns across images
  { N: 3, C: 64, H: 9, W: 11, O: 40, KH: 3, KW: 3, p: [1, 1], bias: true, residual: true, relu: true },
  { N: 1, C: 64, H: 20, W: 19, O: 64, KH: 3, KW: 3, p: [1, 1], bias: true, relu: true },
  // few columns, many rows (the row split), K = 1152 (three K blocks)
  { N: 1, C: 128, H: 7, W: 7, O: 136, KH: 3, KW: 3, p: [1, 1], bias: true, residual: true, relu: true },
  { N: 3, C: 256, H: 7, W: 7, O: 64, KH: 1, KW: 1, bias: true, relu: true },
];

function convName(c: ConvCase): string {
  const p = convParams(c);
  return `x(${c.N},${c.C},${c.H},${c.W}) w(${c.O},${c.C / p.groups},${c.KH},${c.KW}) s${p.strideH}x${p.strideW} ` +
    `p${p.padH}x${p.padW} d${p.dilationH}x${p.dilationW} g${p.groups}${c.bias ? ' +bias' : ''}${c.residual ? ' +res' : ''}${c.relu ? ' relu' : ''}`;
}

test('native conv2d matches js (tolerance 1e-5 * conv(|x|,|w|) + |b| + |res|)', { skip: nativeSkip }, async (t) => {
  for (const [i, c] of CONV_CASES.entries()) {
    await t.test(convName(c), () => {
      const p = convParams(c);
      const x = rand(p.N * p.C * p.H * p.W, 10 + i), w = rand(p.O * (p.C / p.groups) * p.KH * p.KW, 100 + i, -0.5, 0.5);
      const ny = p.N * p.O * p.OH * p.OW;
      const bias = c.bias ? rand(p.O, 200 + i) : null, res = c.residual ? rand(ny, 300 + i) : null;
      const ep = { bias, residual: res, relu: !!c.relu };
      const want = new Float32Array(ny), mag = new Float32Array(ny);
      jsBackend.conv2d(x, w, p, ep, want);
      jsBackend.conv2d(abs(x), abs(w), p, { bias: bias && abs(bias), residual: res && abs(res), relu: false }, mag);
      everyNativeConfig((cfg) => {
        for (const packed of [false, true]) {
          const y = new Float32Array(ny).fill(NaN);
          native.conv2d(x, w, p, ep, y, packed ? { key: w, version: 0 } : undefined);
          assertWithin(y, want, mag, 1e-5, 1e-30, `${cfg}${packed ? ', packed' : ''}`);
        }
      });
    });
  }
});

test('native conv2d: packed weights follow the version and the geometry', { skip: nativeSkip }, () => {
  const c: ConvCase = { N: 1, C: 6, H: 8, W: 9, O: 10, KH: 3, KW: 3, p: [1, 1] };
  const p = convParams(c);
  const x = rand(p.N * p.C * p.H * p.W, 1), w = rand(p.O * p.C * 9, 2), key = {};
  const run = (version: number, q = p, ww = w) => {
    const y = new Float32Array(q.N * q.O * q.OH * q.OW);
    native.conv2d(x, ww, q, { bias: null, residual: null, relu: false }, y, { key, version });
    return y;
  };
  const ref = (q = p, ww = w) => {
    const y = new Float32Array(q.N * q.O * q.OH * q.OW);
    jsBackend.conv2d(x, ww, q, { bias: null, residual: null, relu: false }, y);
    return y;
  };
  assertWithin(run(0), ref(), null, 1e-5, 1e-5, 'first call');
  const before = ref();
  w.set(rand(w.length, 3));                                   // in-place change without a version bump:
  assertWithin(run(0), before, null, 1e-5, 1e-5, 'cached');   // the cached packing is used (by design)
  assertWithin(run(1), ref(), null, 1e-5, 1e-5, 'after bump'); // version bump -> repacked
  const q = convParams({ ...c, O: 5 });                       // same key and version, other geometry -> repacked
  assertWithin(run(1, q, w.subarray(0, 5 * 54)), ref(q, w.subarray(0, 5 * 54)), null, 1e-5, 1e-5, 'geometry');
  everyNativeConfig((cfg) => assertWithin(run(1), ref(), null, 1e-5, 1e-5, `${cfg} (repacked per SIMD level)`));
});

// ---- gemm -------------------------------------------------------------------------------------------------------

test('native gemm matches js for every transA/transB (tolerance 1e-5 * |A||B| + |beta C|)', { skip: nativeSkip }, async (t) => {
  const shapes: [number, number, number][] = [[1, 1, 1], [1, 7, 33], [7, 1, 33], [7, 33, 1], [33, 7, 7], [33, 33, 33],
    [5, 1000, 64], [1, 1000, 2048], [3, 1000, 2048], [70, 50, 600], [129, 97, 513]];
  for (const [M, N, K] of shapes) {
    await t.test(`M=${M} N=${N} K=${K}`, () => {
      for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
        for (const [alpha, beta] of [[1, 0], [0.5, 1], [-1.25, 0.75]]) {
          const A = rand(M * K, M * 7 + K), B = rand(K * N, N * 13 + K), C0 = rand(M * N, 5);
          if (beta === 0) C0.fill(NaN);  // beta = 0: C must not be read
          const want = C0.slice(), mag = C0.map(Math.abs);
          jsBackend.gemm(ta, tb, M, N, K, alpha, A, B, beta, want);
          jsBackend.gemm(ta, tb, M, N, K, Math.abs(alpha), abs(A), abs(B), Math.abs(beta), mag);
          everyNativeConfig((cfg) => {
            if (M * N * K > 1e6 && cfg.startsWith('ref')) return;  // the naive C gemm is slow; covered by smaller shapes
            const got = C0.slice();
            native.gemm(ta, tb, M, N, K, alpha, A, B, beta, got);
            assertWithin(got, want, mag, 1e-5, 1e-30, `${cfg}, transA=${ta} transB=${tb} alpha=${alpha} beta=${beta}`);
          });
        }
      }
    });
  }
});

// ---- batch norm -------------------------------------------------------------------------------------------------

test('native batchNorm matches js (tolerance 1e-6 * (|x*scale| + |shift|))', { skip: nativeSkip }, () => {
  for (const [N, C, HW] of [[1, 1, 1], [3, 5, 17], [2, 33, 49], [1, 17, 70000], [4, 64, 3136]]) {
    for (const [affine, relu] of [[true, false], [false, true], [true, true]]) {
      const x = rand(N * C * HW, N + C + HW, -3, 3), mean = rand(C, 1), variance = rand(C, 2, 0.1, 2);
      const weight = affine ? rand(C, 3) : null, bias = affine ? rand(C, 4) : null;
      x[0] = NaN;
      const want = new Float32Array(x.length);
      jsBackend.batchNorm(x, N, C, HW, mean, variance, weight, bias, 1e-5, relu, want);
      const mag = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const c = Math.floor(i / HW) % C, s = (weight ? weight[c] : 1) / Math.sqrt(variance[c] + 1e-5);
        mag[i] = Math.abs(x[i] * s) + Math.abs((bias ? bias[c] : 0) - mean[c] * s);
      }
      everyNativeConfig((cfg) => {
        const y = new Float32Array(x.length);
        native.batchNorm(x, N, C, HW, mean, variance, weight, bias, 1e-5, relu, y);
        assertWithin(y, want, mag, 1e-6, 1e-30, `${cfg}, (${N},${C},${HW}) affine=${affine} relu=${relu}`);
      });
    }
  }
});

test('native batchNormStats matches js (rtol 1e-6)', { skip: nativeSkip }, () => {
  for (const [N, C, HW] of [[1, 1, 1], [3, 5, 17], [2, 33, 49], [1, 7, 70000], [8, 64, 196]]) {
    const x = rand(N * C * HW, C * HW, 2, 5);  // an offset mean checks the two-pass variance
    const wm = new Float32Array(C), wv = new Float32Array(C);
    jsBackend.batchNormStats(x, N, C, HW, wm, wv);
    everyNativeConfig((cfg) => {
      const m = new Float32Array(C), v = new Float32Array(C);
      native.batchNormStats(x, N, C, HW, m, v);
      assertWithin(m, wm, null, 1e-6, 1e-30, `${cfg} mean (${N},${C},${HW})`);
      assertWithin(v, wv, null, 1e-6, 1e-30, `${cfg} var (${N},${C},${HW})`);
    });
  }
  // the one-pass kernel's hard cases: a mean far from zero with a tiny spread, and constant channels (variance 0)
  const [N, C, HW] = [4, 3, 3000];
  const x = rand(N * C * HW, 77, -1, 1).map((v, i) => (Math.floor(i / HW) % C === 0 ? 1e4 + 1e-2 * v : Math.floor(i / HW) % C === 1 ? -3.25 : v));
  const wm = new Float32Array(C), wv = new Float32Array(C);
  jsBackend.batchNormStats(x, N, C, HW, wm, wv);
  assert.equal(wv[1], 0);
  everyNativeConfig((cfg) => {
    const m = new Float32Array(C), v = new Float32Array(C);
    native.batchNormStats(x, N, C, HW, m, v);
    assertWithin(m, wm, null, 1e-6, 1e-30, `${cfg} mean (offset and constant channels)`);
    assertWithin(v, wv, null, 1e-6, 1e-30, `${cfg} var (offset and constant channels)`);
    assert.equal(v[1], 0, `${cfg}: a constant channel's variance`);
  });
});

// ---- pooling ----------------------------------------------------------------------------------------------------

function poolParams(N: number, C: number, H: number, W: number, k: [number, number], s: [number, number], pd: [number, number], d: [number, number], ceil: boolean): Pool2dParams {
  const out = (size: number, kk: number, ss: number, pp: number, dd: number) => {
    const span = size + 2 * pp - dd * (kk - 1) - 1;
    let o = (ceil ? Math.ceil(span / ss) : Math.floor(span / ss)) + 1;
    if (ceil && (o - 1) * ss >= size + pp) o--;  // PyTorch: the last window must start inside the input or left padding
    return o;
  };
  return { N, C, H, W, OH: out(H, k[0], s[0], pd[0], d[0]), OW: out(W, k[1], s[1], pd[1], d[1]), KH: k[0], KW: k[1],
    strideH: s[0], strideW: s[1], padH: pd[0], padW: pd[1], dilationH: d[0], dilationW: d[1] };
}

test('native maxPool2d matches js exactly, with indices, ceil_mode, dilation, padding and NaN', { skip: nativeSkip }, () => {
  const cases: [number, number, number, number, [number, number], [number, number], [number, number], [number, number], boolean][] = [
    [1, 64, 112, 112, [3, 3], [2, 2], [1, 1], [1, 1], false],  // ResNet's stem pool
    [3, 5, 13, 11, [3, 3], [2, 2], [1, 1], [1, 1], true],
    [2, 3, 10, 17, [2, 3], [2, 1], [0, 1], [1, 1], false],
    [1, 4, 15, 14, [3, 3], [2, 2], [1, 1], [2, 2], true],
    [1, 2, 9, 9, [4, 2], [3, 3], [2, 1], [1, 2], true],
    [2, 3, 1, 1, [1, 1], [1, 1], [0, 0], [1, 1], false],
  ];
  for (const [N, C, H, W, k, s, pd, d, ceil] of cases) {
    const p = poolParams(N, C, H, W, k, s, pd, d, ceil);
    const x = rand(N * C * H * W, H * W + C);
    for (let i = 0; i < x.length; i += 37) x[i] = NaN;  // NaN propagates (and wins the index)
    for (let i = 5; i < x.length; i += 41) x[i] = x[i - 1];  // ties: the first maximum keeps the index
    const ny = N * C * p.OH * p.OW;
    const want = new Float32Array(ny), wantIdx = new Int32Array(ny);
    jsBackend.maxPool2d(x, p, want, wantIdx);
    everyNativeConfig((cfg) => {
      const what = `${cfg}, x(${N},${C},${H},${W}) k${k} s${s} p${pd} d${d} ceil=${ceil}`;
      const y = new Float32Array(ny), idx = new Int32Array(ny);
      native.maxPool2d(x, p, y, idx);
      assertWithin(y, want, null, 0, 0, `${what} values (with indices)`);
      assert.deepEqual(idx, wantIdx, `${what} indices`);
      const y2 = new Float32Array(ny);
      native.maxPool2d(x, p, y2, null);
      assertWithin(y2, want, null, 0, 0, `${what} values (no indices)`);
    });
  }
});

test('native adaptiveAvgPool2d matches js (rtol 1e-6), non-divisible bins and the global case', { skip: nativeSkip }, () => {
  for (const [N, C, H, W, OH, OW] of [[2, 3, 7, 7, 1, 1], [1, 2048, 7, 7, 1, 1], [3, 5, 10, 13, 3, 4], [1, 4, 5, 5, 7, 3], [2, 3, 224, 224, 1, 1], [1, 2, 9, 6, 9, 6]]) {
    const x = rand(N * C * H * W, H * W + OH, -2, 3);
    const want = new Float32Array(N * C * OH * OW);
    jsBackend.adaptiveAvgPool2d(x, N, C, H, W, OH, OW, want);
    everyNativeConfig((cfg) => {
      const y = new Float32Array(want.length);
      native.adaptiveAvgPool2d(x, N, C, H, W, OH, OW, y);
      assertWithin(y, want, null, 1e-6, 1e-30, `${cfg}, (${N},${C},${H},${W}) -> ${OH}x${OW}`);
    });
  }
});

// ---- elementwise ------------------------------------------------------------------------------------------------

test('native relu and add match js exactly (NaN kept, -0 -> +0, in place)', { skip: nativeSkip }, () => {
  for (const n of [0, 1, 15, 17, 33, 1000, 300001]) {
    const a = rand(n, n + 1), b = rand(n, n + 2);
    if (n > 3) {
      a[1] = NaN;
      a[2] = -0;
      b[3] = NaN;
      a[3] = -Infinity;
    }
    const r = new Float32Array(n), s = new Float32Array(n), sr = new Float32Array(n);
    jsBackend.relu(a, r, n);
    jsBackend.add(a, b, s, n, false);
    jsBackend.add(a, b, sr, n, true);
    everyNativeConfig((cfg) => {
      const y = new Float32Array(n).fill(7);
      native.relu(a, y, n);
      assertWithin(y, r, null, 0, 0, `${cfg} relu n=${n}`);
      for (let i = 0; i < n; i++) if (Object.is(r[i], 0)) assert.ok(Object.is(y[i], 0), `${cfg} relu(${a[i]}) must be +0`);
      const inPlace = a.slice();
      native.relu(inPlace, inPlace, n);
      assertWithin(inPlace, r, null, 0, 0, `${cfg} relu in place n=${n}`);
      const z = new Float32Array(n);
      native.add(a, b, z, n, false);
      assertWithin(z, s, null, 0, 0, `${cfg} add n=${n}`);
      const zr = b.slice();
      native.add(a, zr, zr, n, true);
      assertWithin(zr, sr, null, 0, 0, `${cfg} add+relu in place n=${n}`);
    });
  }
});

// ---- runtime ----------------------------------------------------------------------------------------------------

test('native: too-short arrays throw a RangeError instead of touching memory', { skip: nativeSkip }, () => {
  const p = convParams({ N: 1, C: 3, H: 8, W: 8, O: 4, KH: 3, KW: 3, p: [1, 1] });
  const x = new Float32Array(3 * 64), w = new Float32Array(4 * 27), y = new Float32Array(4 * 64);
  const ep = { bias: null, residual: null, relu: false };
  assert.throws(() => native.conv2d(x.subarray(1), w, p, ep, y), RangeError);
  assert.throws(() => native.conv2d(x, w, p, ep, y.subarray(0, 10)), RangeError);
  assert.throws(() => native.conv2d(x, w, p, { ...ep, bias: new Float32Array(3) }, y), RangeError);
  assert.throws(() => native.conv2d(x, w, p, { ...ep, residual: new Float32Array(5) }, y), RangeError);
  assert.throws(() => native.conv2d(x, w, { ...p, groups: 2 }, ep, y), RangeError);
  assert.throws(() => native.gemm(false, false, 4, 4, 4, 1, new Float32Array(15), new Float32Array(16), 0, new Float32Array(16)), RangeError);
  assert.throws(() => native.relu(new Float32Array(3), new Float32Array(2), 3), RangeError);
  assert.throws(() => native.add(new Float32Array(3), new Float32Array(3), new Float32Array(3), 4, false), RangeError);
  const pp = poolParams(1, 2, 6, 6, [3, 3], [2, 2], [1, 1], [1, 1], false);
  assert.throws(() => native.maxPool2d(new Float32Array(71), pp, new Float32Array(18), null), RangeError);
  assert.throws(() => native.maxPool2d(new Float32Array(72), pp, new Float32Array(18), new Int32Array(17)), RangeError);
  assert.throws(() => native.batchNorm(new Float32Array(6), 1, 2, 3, new Float32Array(1), new Float32Array(2), null, null, 1e-5, false, new Float32Array(6)), RangeError);
  assert.throws(() => native.adaptiveAvgPool2d(new Float32Array(8), 1, 2, 2, 2, 1, 1, new Float32Array(1)), RangeError);
});

test('native: SIMD levels and thread counts are switchable and reported', { skip: nativeSkip }, () => {
  assert.ok(LEVELS.includes('scalar') && LEVELS.includes('ref'), `levels: ${LEVELS}`);
  const before = loadNative().info.isa;
  for (const isa of LEVELS) assert.equal(setNativeIsa(isa), isa);
  setNativeIsa(before);
  assert.equal(loadNative().info.isa, before);
  assert.throws(() => setNativeIsa('neon-on-a-toaster'), /not available/);
  const t = native.numThreads();
  native.setNumThreads(1);
  assert.equal(native.numThreads(), 1);
  native.setNumThreads(1e6);
  assert.ok(native.numThreads() >= 1 && native.numThreads() <= 64);
  native.setNumThreads(t);
});

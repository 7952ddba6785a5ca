// The native backward kernels (csrc/kernels/conv_bwd.c, norm.c, pool.c, eltwise.c) against the naive C references
// (the "ref" level) and the js backend, on odd shapes: every SIMD level this CPU offers (avx512, avx2, scalar, ref)
// with 1 and 2 threads. Shapes cover what the fast paths special-case: stride-2 phases (even/odd sizes, rows wide
// enough for the vector interleave), 1x1 kernels (read in place, weight gradient written straight into dw), padding
// beyond the kernel's reach, dilation, groups (2, 32, depthwise; small groups take the direct kernels of
// conv_grouped.c), channel counts off the 8-row panel and 16-lane vector, and pixel counts long enough for the
// weight gradient's split of the reduction between threads.
// PyTorch parity of the same members is tests/ops/conv-backward.test.ts.
//
// Tolerances: conv gradients |native - js| <= 1e-5 * absref + 1e-30, absref = the same gradient on |inputs|
// (computed by js in double): native sums in float32 (blocked by 512), js in double; the difference is a random
// walk of ~sqrt(K) * 6e-8 * absref (K <= 4608 here: <= 4e-6), while a wrong index or a lost term is >= absref / K.
// batchNormBackward: float partial sums added in double, then one fused pass: 1e-5 * (its absref). Pools: float32
// accumulation of <= 9 overlapping terms against js's double: 8 ulps of the |dy| sum. relu: exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../src/backend/js.js';
import { loadNative } from '../../src/backend/native.js';
import type { Backend, Conv2dParams, Pool2dParams } from '../../src/backend/backend.js';
import { backends, everyNativeConfig, randArray } from '../helpers.js';

const nativeSkip = backends().find((b) => b.name === 'native')!.skip;
const native = loadNative().backend as Backend;
const EPS32 = 2 ** -23;


const abs = (a: Float32Array) => a.map(Math.abs);

function assertWithin(actual: ArrayLike<number>, expected: ArrayLike<number>, magnitude: ArrayLike<number> | null, rel: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: lengths differ`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    const tol = atol + rel * (magnitude ? magnitude[i] : Math.abs(e));
    if (!(Math.abs(a - e) <= tol)) {
      assert.fail(`${what}: element ${i} is ${a}, expected ${e} (|diff| ${Math.abs(a - e).toExponential(3)} > ${tol.toExponential(3)})`);
    }
  }
}

// ---- convolution -------------------------------------------------------------------------------------------------

interface ConvCase {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW: number;
  s?: [number, number]; p?: [number, number]; d?: [number, number]; g?: number;
}

function convParams(c: ConvCase): Conv2dParams {
  const [sh, sw] = c.s ?? [1, 1], [ph, pw] = c.p ?? [0, 0], [dh, dw] = c.d ?? [1, 1];
  const OH = Math.floor((c.H + 2 * ph - dh * (c.KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((c.W + 2 * pw - dw * (c.KW - 1) - 1) / sw) + 1;
  return { N: c.N, C: c.C, H: c.H, W: c.W, O: c.O, KH: c.KH, KW: c.KW, OH, OW, strideH: sh, strideW: sw,
    padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups: c.g ?? 1 };
}

const CONV_CASES: ConvCase[] = [
  { N: 1, C: 3, H: 5, W: 7, O: 4, KH: 3, KW: 3, p: [1, 1] },
  { N: 2, C: 16, H: 7, W: 7, O: 24, KH: 1, KW: 1 },
  { N: 2, C: 17, H: 9, W: 10, O: 20, KH: 3, KW: 3, p: [1, 1] },
  { N: 1, C: 5, H: 6, W: 6, O: 7, KH: 1, KW: 1, p: [1, 1] },                  // padding beyond the kernel's reach
  { N: 2, C: 8, H: 9, W: 10, O: 16, KH: 3, KW: 3, s: [2, 2], p: [1, 1] },     // stride-2 phases, odd and even sizes
  { N: 1, C: 4, H: 6, W: 40, O: 8, KH: 3, KW: 3, s: [2, 2], p: [1, 1] },      // rows wide enough for the vector interleave
  { N: 2, C: 12, H: 17, W: 9, O: 20, KH: 1, KW: 1, s: [2, 2] },               // 1x1 stride 2: three empty phases
  { N: 1, C: 3, H: 30, W: 29, O: 16, KH: 7, KW: 7, s: [2, 2], p: [3, 3] },    // the stem
  { N: 1, C: 4, H: 19, W: 23, O: 6, KH: 3, KW: 3, s: [3, 3], p: [1, 1] },
  { N: 3, C: 5, H: 10, W: 9, O: 7, KH: 3, KW: 3, s: [1, 2], p: [0, 1], d: [2, 1] },
  { N: 1, C: 6, H: 12, W: 13, O: 10, KH: 3, KW: 3, p: [2, 2], d: [2, 2] },
  { N: 1, C: 4, H: 15, W: 16, O: 6, KH: 3, KW: 3, s: [2, 2], p: [2, 2], d: [2, 2] },
  { N: 1, C: 5, H: 12, W: 12, O: 7, KH: 4, KW: 2, s: [2, 2], p: [2, 1] },
  { N: 1, C: 8, H: 9, W: 9, O: 6, KH: 3, KW: 3, p: [1, 1], g: 2 },
  { N: 2, C: 128, H: 8, W: 8, O: 128, KH: 3, KW: 3, p: [1, 1], g: 32 },
  { N: 2, C: 128, H: 9, W: 9, O: 256, KH: 3, KW: 3, s: [2, 2], p: [1, 1], g: 32 },
  { N: 3, C: 10, H: 9, W: 8, O: 10, KH: 3, KW: 3, p: [1, 1], g: 10 },
  // small groups go to the direct kernels (conv_grouped.c): dilation, a 1x1 with padding (a negative shift in the
  // data gradient), a non-square kernel with a stride in one direction, output channels off the 4/8 tiles
  { N: 2, C: 12, H: 9, W: 11, O: 18, KH: 3, KW: 3, p: [2, 2], d: [2, 2], g: 3 },
  { N: 1, C: 8, H: 7, W: 6, O: 8, KH: 1, KW: 1, p: [1, 1], g: 4 },
  { N: 2, C: 10, H: 11, W: 10, O: 15, KH: 5, KW: 3, s: [2, 1], p: [2, 1], g: 5 },
  { N: 2, C: 6, H: 40, W: 37, O: 21, KH: 3, KW: 3, p: [1, 1], g: 3 },
  { N: 2, C: 64, H: 14, W: 14, O: 64, KH: 3, KW: 3, p: [1, 1] },              // K = 576: two K blocks
  { N: 2, C: 16, H: 48, W: 48, O: 32, KH: 3, KW: 3, p: [1, 1] },              // 4608 pixels: the reduction split
  { N: 2, C: 32, H: 48, W: 48, O: 17, KH: 1, KW: 1 },                         // ... with a 1x1 kernel (dw in place)
];

function convName(c: ConvCase): string {
  const p = convParams(c);
  return `N${c.N} C${c.C} ${c.H}x${c.W} O${c.O} k${c.KH}x${c.KW} s${p.strideH},${p.strideW} p${p.padH},${p.padW} d${p.dilationH},${p.dilationW} g${p.groups}`;
}

test('native conv2dBackwardData/Weight match js and the C reference at every level (1e-5 * absref)', { skip: nativeSkip }, async (t) => {
  for (const [ci, c] of CONV_CASES.entries()) {
    await t.test(convName(c), () => {
      const p = convParams(c);
      const x = randArray(p.N * p.C * p.H * p.W, 100 + ci), w = randArray(p.O * (p.C / p.groups) * p.KH * p.KW, 200 + ci);
      const dy = randArray(p.N * p.O * p.OH * p.OW, 300 + ci);
      const jdx = new Float32Array(x.length), jdw = new Float32Array(w.length), jdb = new Float32Array(p.O);
      jsBackend.conv2dBackwardData(dy, w, p, jdx);
      jsBackend.conv2dBackwardWeight(x, dy, p, jdw, jdb);
      const adx = new Float32Array(x.length), adw = new Float32Array(w.length), adb = new Float32Array(p.O);
      jsBackend.conv2dBackwardData(abs(dy), abs(w), p, adx);
      jsBackend.conv2dBackwardWeight(abs(x), abs(dy), p, adw, adb);
      const key = { key: {}, version: 0 };
      everyNativeConfig((cfg) => {
        const dx = new Float32Array(x.length).fill(NaN), dw = new Float32Array(w.length).fill(NaN);
        const db = new Float32Array(p.O).fill(NaN);
        native.conv2dBackwardData(dy, w, p, dx, key);
        native.conv2dBackwardWeight(x, dy, p, dw, db);
        assertWithin(dx, jdx, adx, 1e-5, 1e-30, `${cfg} dx (packed)`);
        assertWithin(dw, jdw, adw, 1e-5, 1e-30, `${cfg} dw`);
        assertWithin(db, jdb, adb, 1e-5, 1e-30, `${cfg} db`);
        const dx2 = new Float32Array(x.length).fill(NaN);
        native.conv2dBackwardData(dy, w, p, dx2);
        assertWithin(dx2, jdx, adx, 1e-5, 1e-30, `${cfg} dx (packed on the fly)`);
        const dw2 = new Float32Array(w.length).fill(NaN);
        native.conv2dBackwardWeight(x, dy, p, dw2, null);
        assertWithin(dw2, jdw, adw, 1e-5, 1e-30, `${cfg} dw without db`);
      });
    });
  }
});

test('native conv2dBackwardData: packed weights follow the version and the geometry', { skip: nativeSkip }, () => {
  const c: ConvCase = { N: 1, C: 6, H: 9, W: 9, O: 8, KH: 3, KW: 3, s: [2, 2], p: [1, 1] };
  const p = convParams(c), w = randArray(8 * 6 * 9, 5), key = { key: {}, version: 0 };
  const check = (q: Conv2dParams, what: string) => {
    const dy = randArray(q.N * q.O * q.OH * q.OW, 6), want = new Float32Array(q.N * q.C * q.H * q.W), got = new Float32Array(want.length);
    jsBackend.conv2dBackwardData(dy, w, q, want);
    native.conv2dBackwardData(dy, w, q, got, key);
    const mag = new Float32Array(want.length);
    jsBackend.conv2dBackwardData(abs(dy), abs(w), q, mag);
    assertWithin(got, want, mag, 1e-5, 1e-30, what);
  };
  check(p, 'first pack');
  w[7] += 1; // in-place change, then the version bump that ops/ makes
  key.version++;
  check(p, 'after a version bump');
  check(convParams({ ...c, H: 10, W: 8 }), 'same weight, other input size (other phase sizes)');
  check(convParams({ ...c, s: [1, 1] }), 'same weight, stride 1');
});

// ---- batch norm, pools, relu --------------------------------------------------------------------------------------

test('native batchNormBackward matches js and the C reference at every level, with and without a fused relu', { skip: nativeSkip }, () => {
  const cases: [number, number, number, boolean][] = [[2, 3, 7, true], [3, 5, 1, false], [1, 4, 70 * 70, true], [4, 17, 33, true], [2, 16, 49, false]];
  for (const [ci, [N, C, HW, affine]] of cases.entries()) {
    for (const relu of [false, true]) {
      const n = N * C * HW;
      const x = randArray(n, 10 + ci, -2, 4), dy = randArray(n, 20 + ci);
      // a fused relu's output: 0 where it cut (the gradient must not pass there), positive elsewhere
      const y = relu ? randArray(n, 40 + ci).map((v) => (v > 0 ? v : 0)) : null;
      const g = y ? dy.map((v, i) => (y[i] > 0 ? v : 0)) : dy;
      const mean = new Float32Array(C), variance = new Float32Array(C), invstd = new Float32Array(C);
      jsBackend.batchNormStats(x, N, C, HW, mean, variance);
      for (let c = 0; c < C; c++) invstd[c] = 1 / Math.sqrt(variance[c] + 1e-5);
      const weight = affine ? randArray(C, 30 + ci, 0.5, 1.5) : null;
      const jdx = new Float32Array(n), jdw = new Float32Array(C), jdb = new Float32Array(C);
      jsBackend.batchNormBackward(x, dy, y, N, C, HW, mean, invstd, weight, jdx, jdw, jdb);
      if (y) {
        // the fused mask is relu's backward followed by the plain batch-norm backward
        const pdx = new Float32Array(n), pdw = new Float32Array(C), pdb = new Float32Array(C);
        jsBackend.batchNormBackward(x, g, null, N, C, HW, mean, invstd, weight, pdx, pdw, pdb);
        assert.deepEqual([jdx, jdw, jdb], [pdx, pdw, pdb], 'js: masked inside = masked before');
      }
      // scales: |w| invstd (|g| + mean|g| + |xhat| mean|g xhat|) for dx, sum|g xhat| and sum|g| (g: dy masked)
      const mdx = new Float32Array(n), sdxh = new Float32Array(C), sdy = new Float32Array(C), M = N * HW;
      for (let c = 0; c < C; c++) {
        let a = 0, b = 0;
        for (let k = 0; k < N; k++) for (let i = (k * C + c) * HW; i < (k * C + c + 1) * HW; i++) {
          a += Math.abs(g[i]);
          b += Math.abs(g[i] * (x[i] - mean[c]) * invstd[c]);
        }
        sdy[c] = a;
        sdxh[c] = b;
        const k0 = Math.abs(weight ? weight[c] : 1) * invstd[c];
        for (let k = 0; k < N; k++) for (let i = (k * C + c) * HW; i < (k * C + c + 1) * HW; i++) {
          mdx[i] = k0 * (Math.abs(g[i]) + a / M + Math.abs((x[i] - mean[c]) * invstd[c]) * b / M);
        }
      }
      everyNativeConfig((cfg) => {
        const dx = new Float32Array(n).fill(NaN), dw = new Float32Array(C).fill(NaN), db = new Float32Array(C).fill(NaN);
        native.batchNormBackward(x, dy, y, N, C, HW, mean, invstd, weight, dx, dw, db);
        const what = `${cfg} N${N} C${C} HW${HW}${relu ? ' relu' : ''}`;
        assertWithin(dx, jdx, mdx, 1e-5, 1e-30, `${what} dx`);
        assertWithin(dw, jdw, sdxh, 1e-5, 1e-30, `${what} dweight`);
        assertWithin(db, jdb, sdy, 1e-5, 1e-30, `${what} dbias`);
        const dx2 = new Float32Array(n).fill(NaN);
        native.batchNormBackward(x, dy, y, N, C, HW, mean, invstd, weight, dx2, null, null);
        assertWithin(dx2, jdx, mdx, 1e-5, 1e-30, `${what} dx without dweight/dbias`);
      });
    }
  }
});

function poolParams(N: number, C: number, H: number, W: number, k: [number, number], s: [number, number], p: [number, number], d: [number, number]): Pool2dParams {
  const OH = Math.floor((H + 2 * p[0] - d[0] * (k[0] - 1) - 1) / s[0]) + 1, OW = Math.floor((W + 2 * p[1] - d[1] * (k[1] - 1) - 1) / s[1]) + 1;
  return { N, C, H, W, OH, OW, KH: k[0], KW: k[1], strideH: s[0], strideW: s[1], padH: p[0], padW: p[1], dilationH: d[0], dilationW: d[1] };
}

test('native maxPool2dBackward matches js (overlapping windows, ties) at every level', { skip: nativeSkip }, () => {
  const cases = [poolParams(2, 3, 12, 11, [3, 3], [2, 2], [1, 1], [1, 1]), poolParams(1, 4, 7, 9, [3, 3], [1, 1], [1, 1], [1, 1]),
    poolParams(2, 2, 13, 12, [3, 2], [2, 1], [1, 0], [2, 1]), poolParams(1, 2, 40, 40, [2, 2], [2, 2], [0, 0], [1, 1])];
  for (const [ci, p] of cases.entries()) {
    const x = randArray(p.N * p.C * p.H * p.W, 40 + ci).map((v) => Math.round(v * 3)); // integer values: ties
    const ny = p.N * p.C * p.OH * p.OW, y = new Float32Array(ny), idx = new Int32Array(ny);
    jsBackend.maxPool2d(x, p, y, idx);
    const dy = randArray(ny, 50 + ci), want = new Float32Array(x.length), mag = new Float32Array(x.length);
    jsBackend.maxPool2dBackward(dy, idx, p, want);
    jsBackend.maxPool2dBackward(abs(dy), idx, p, mag);
    everyNativeConfig((cfg) => {
      const dx = new Float32Array(x.length).fill(NaN);
      native.maxPool2dBackward(dy, idx, p, dx);
      assertWithin(dx, want, mag, 8 * EPS32, 0, `${cfg} case ${ci}`);
    });
  }
});

test('native maxPool2d with indices (the training forward) matches js exactly on wide rows: vector path, NaN, ties', { skip: nativeSkip }, () => {
  // >= 16 interior outputs per row, so stride 1 and 2 take the vector path; the edges take the scalar one
  const cases = [poolParams(2, 3, 9, 40, [3, 3], [1, 1], [1, 1], [1, 1]), poolParams(1, 4, 11, 70, [2, 3], [1, 2], [0, 1], [1, 2]),
    poolParams(1, 2, 8, 37, [3, 2], [2, 1], [1, 1], [2, 1])];
  for (const [ci, p] of cases.entries()) {
    const x = randArray(p.N * p.C * p.H * p.W, 90 + ci).map((v) => Math.round(v * 4)); // integer values: ties
    for (let i = 0; i < x.length; i += 29) x[i] = NaN;
    const ny = p.N * p.C * p.OH * p.OW, want = new Float32Array(ny), wantIdx = new Int32Array(ny);
    jsBackend.maxPool2d(x, p, want, wantIdx);
    everyNativeConfig((cfg) => {
      const y = new Float32Array(ny), idx = new Int32Array(ny);
      native.maxPool2d(x, p, y, idx);
      assert.deepEqual(y, want, `${cfg} case ${ci} values`);
      assert.deepEqual(idx, wantIdx, `${cfg} case ${ci} indices`);
    });
  }
});

test('native adaptiveAvgPool2dBackward matches js (overlapping bins, the global case) at every level', { skip: nativeSkip }, () => {
  const cases: [number, number, number, number, number, number][] = [[2, 3, 7, 7, 1, 1], [2, 8, 13, 11, 1, 1], [2, 3, 10, 9, 4, 3], [1, 4, 5, 5, 7, 7], [1, 2, 64, 64, 1, 1]];
  for (const [ci, [N, C, H, W, OH, OW]] of cases.entries()) {
    const dy = randArray(N * C * OH * OW, 60 + ci), want = new Float32Array(N * C * H * W), mag = new Float32Array(want.length);
    jsBackend.adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, want);
    jsBackend.adaptiveAvgPool2dBackward(abs(dy), N, C, H, W, OH, OW, mag);
    everyNativeConfig((cfg) => {
      const dx = new Float32Array(want.length).fill(NaN);
      native.adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, dx);
      assertWithin(dx, want, mag, 8 * EPS32, 0, `${cfg} ${H}x${W} -> ${OH}x${OW}`);
    });
  }
});

test('native reluBackward matches js exactly, also in place', { skip: nativeSkip }, () => {
  for (const n of [1, 15, 16, 17, 100003]) {
    const y = randArray(n, 70 + n).map((v) => (v < -0.3 ? 0 : v < 0 ? -0 : v)), dy = randArray(n, 80 + n);
    const want = new Float32Array(n);
    jsBackend.reluBackward(dy, y, want, n);
    everyNativeConfig((cfg) => {
      const dx = new Float32Array(n).fill(NaN);
      native.reluBackward(dy, y, dx, n);
      assert.deepEqual(dx, want, `${cfg} n=${n}`);
      const inPlace = dy.slice();
      native.reluBackward(inPlace, y, inPlace, n);
      assert.deepEqual(inPlace, want, `${cfg} n=${n} in place`);
    });
  }
});

// ---- the glue ----------------------------------------------------------------------------------------------------

test('native backward: too-short arrays and bad indices throw a RangeError instead of touching memory', { skip: nativeSkip }, () => {
  const p = convParams({ N: 1, C: 4, H: 8, W: 8, O: 6, KH: 3, KW: 3, p: [1, 1], s: [2, 2] });
  const x = new Float32Array(4 * 64), w = new Float32Array(6 * 4 * 9), dy = new Float32Array(6 * 16);
  const dx = new Float32Array(x.length), dw = new Float32Array(w.length);
  assert.throws(() => native.conv2dBackwardData(dy.subarray(1), w, p, dx), RangeError);
  assert.throws(() => native.conv2dBackwardData(dy, w.subarray(1), p, dx), RangeError);
  assert.throws(() => native.conv2dBackwardData(dy, w, p, dx.subarray(1)), RangeError);
  assert.throws(() => native.conv2dBackwardData(dy, w, { ...p, groups: 4 }, dx), RangeError); // 6 % 4
  assert.throws(() => native.conv2dBackwardWeight(x.subarray(1), dy, p, dw, null), RangeError);
  assert.throws(() => native.conv2dBackwardWeight(x, dy.subarray(1), p, dw, null), RangeError);
  assert.throws(() => native.conv2dBackwardWeight(x, dy, p, dw.subarray(1), null), RangeError);
  assert.throws(() => native.conv2dBackwardWeight(x, dy, p, dw, new Float32Array(5)), RangeError);
  const c = new Float32Array(2);
  assert.throws(() => native.batchNormBackward(new Float32Array(5), new Float32Array(6), null, 1, 2, 3, c, c, null, new Float32Array(6), null, null), RangeError);
  assert.throws(() => native.batchNormBackward(new Float32Array(6), new Float32Array(6), null, 1, 2, 3, c, new Float32Array(1), null, new Float32Array(6), null, null), RangeError);
  assert.throws(() => native.batchNormBackward(new Float32Array(6), new Float32Array(6), null, 1, 2, 3, c, c, new Float32Array(1), new Float32Array(6), null, null), RangeError);
  assert.throws(() => native.batchNormBackward(new Float32Array(6), new Float32Array(6), null, 1, 2, 3, c, c, null, new Float32Array(5), null, null), RangeError);
  assert.throws(() => native.batchNormBackward(new Float32Array(6), new Float32Array(6), null, 1, 2, 3, c, c, null, new Float32Array(6), new Float32Array(1), null), RangeError);
  assert.throws(() => native.batchNormBackward(new Float32Array(6), new Float32Array(6), null, 1, 2, 3, c, c, null, new Float32Array(6), null, new Float32Array(1)), RangeError);
  const pp = poolParams(1, 2, 6, 6, [3, 3], [2, 2], [1, 1], [1, 1]); // 2 planes of 3x3 outputs, 6x6 inputs
  const pdy = new Float32Array(18), pidx = new Int32Array(18), pdx = new Float32Array(72);
  assert.throws(() => native.maxPool2dBackward(pdy.subarray(1), pidx, pp, pdx), RangeError);
  assert.throws(() => native.maxPool2dBackward(pdy, pidx.subarray(1), pp, pdx), RangeError);
  assert.throws(() => native.maxPool2dBackward(pdy, pidx, pp, pdx.subarray(1)), RangeError);
  pidx[5] = 36;
  assert.throws(() => native.maxPool2dBackward(pdy, pidx, pp, pdx), /indices\[5\] = 36 is outside \[0, 36\)/);
  pidx[5] = -1;
  assert.throws(() => native.maxPool2dBackward(pdy, pidx, pp, pdx), RangeError);
  assert.throws(() => native.adaptiveAvgPool2dBackward(new Float32Array(1), 1, 2, 2, 2, 1, 1, new Float32Array(8)), RangeError);
  assert.throws(() => native.adaptiveAvgPool2dBackward(new Float32Array(2), 1, 2, 2, 2, 1, 1, new Float32Array(7)), RangeError);
  assert.throws(() => native.reluBackward(new Float32Array(3), new Float32Array(2), new Float32Array(3), 3), RangeError);
  assert.throws(() => native.reluBackward(new Float32Array(3), new Float32Array(3), new Float32Array(2), 3), RangeError);
});

// The backward members of every backend against PyTorch's autograd gradients: every case of
// scripts/fixtures/make_backward.py (tests/fixtures/gen/backward/*.safetensors): conv2d data/weight/bias gradients
// over strides 1/2/3, padding, dilation, groups (2, ResNeXt's 32, depthwise), 1x1/3x3/5x3/4x2/7x7 kernels and odd
// sizes; training-mode batch_norm; max_pool2d with overlapping windows and ties; adaptive_avg_pool2d with
// overlapping bins; relu. js runs once; native runs at every SIMD level this CPU offers (avx512, avx2, scalar and
// the naive C "ref") with 1 and 2 threads. A missing fixture fails; an unavailable native backend is skipped with its
// reason (a failure in CI).
//
// Tolerances, from `absref` (the same gradient on |inputs| in float64, stored by the maker):
//   - conv2d: 2e-5 * absref. Both sides sum K float32 products (K <= 4608 here); each side's error is a random walk
//     of ~sqrt(K) * 6e-8 * absref (<= 4e-6), while a wrong index or a lost term is >= absref / K (>= 2e-4).
//   - batch_norm: 1e-5 * absref (two reductions per channel and one fused elementwise pass).
//   - max_pool2d, adaptive_avg_pool2d: float32 sums of a few overlapping terms: 8 ulps of the |dy| sum (computed
//     here by the js backend on |dy|). relu: exact.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Tensor } from '../../src/tensor/tensor.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { jsBackend } from '../../src/backend/js.js';
import { loadNative, nativeIsaList, setNativeIsa } from '../../src/backend/native.js';
import type { Backend, Conv2dParams, Pool2dParams } from '../../src/backend/backend.js';
import { backends, fixture } from '../helpers.js';

const EPS32 = 2 ** -23;
const nativeSkip = backends().find((b) => b.name === 'native')!.skip;

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
type Case = { name: string } & Record<string, Json>;

function load(op: string): { cases: Case[]; f32(c: Case, role: string): Float32Array; i32(c: Case, role: string): Int32Array; has(c: Case, role: string): boolean } {
  const path = fixture('backward', `${op}.safetensors`);
  const f = readSafetensorsSync(path);
  assert.ok(f.metadata?.cases, `${path} has no "cases" metadata`);
  const cases = JSON.parse(f.metadata.cases) as Case[];
  assert.ok(cases.length > 0, `${path} has no cases`);
  const get = (c: Case, role: string): Tensor => {
    const t = f.tensors.get(`${c.name}.${role}`);
    if (!t) throw new Error(`${path}: no tensor ${c.name}.${role}`);
    return t;
  };
  return {
    cases,
    f32: (c, role) => Float32Array.from(get(c, role).toArray()),
    i32: (c, role) => Int32Array.from(get(c, role).toArray()),
    has: (c, role) => f.tensors.has(`${c.name}.${role}`),
  };
}

/** The backends to run: js once, native per SIMD level and thread count. */
function configs(): { name: string; b: Backend; enter(): void }[] {
  const out: { name: string; b: Backend; enter(): void }[] = [{ name: 'js', b: jsBackend, enter: () => {} }];
  if (nativeSkip) return out;
  const native = loadNative().backend as Backend;
  for (const isa of nativeIsaList()) {
    for (const t of [1, 2]) {
      out.push({ name: `native ${isa}, ${t} thread${t > 1 ? 's' : ''}`, b: native, enter: () => { setNativeIsa(isa); native.setNumThreads(t); } });
    }
  }
  return out;
}

/** Runs fn for every config, restoring the native level and thread count afterwards. */
function everyBackend(t: TestContext, fn: (name: string, b: Backend) => void): void {
  if (nativeSkip) t.diagnostic(`native skipped: ${nativeSkip}`);
  const nat = loadNative();
  const prevIsa = nat.info.isa, prevThreads = nat.backend?.numThreads() ?? 1;
  try {
    for (const c of configs()) {
      c.enter();
      fn(c.name, c.b);
    }
  } finally {
    if (nat.backend) {
      setNativeIsa(prevIsa);
      nat.backend.setNumThreads(prevThreads);
    }
  }
}

class Margin {
  worst = 0;
  where = '';
  check(actual: Float32Array, expected: Float32Array, mag: Float32Array | null, rel: number, what: string): void {
    assert.equal(actual.length, expected.length, `${what}: lengths differ`);
    for (let i = 0; i < expected.length; i++) {
      const d = Math.abs(actual[i] - expected[i]), tol = rel * (mag ? mag[i] : 0) + 1e-30;
      if (!(d <= tol)) assert.fail(`${what}: element ${i} is ${actual[i]}, PyTorch ${expected[i]} (|diff| ${d.toExponential(3)} > ${tol.toExponential(3)})`);
      if (d / tol > this.worst) {
        this.worst = d / tol;
        this.where = what;
      }
    }
  }
  report(t: TestContext): void {
    t.diagnostic(`worst |diff|/tolerance ${this.worst.toExponential(2)}${this.where ? ` (${this.where})` : ''}`);
  }
}

const pair = (v: Json) => v as [number, number];

test('conv2d backward (data, weight, bias) matches PyTorch on every backend (2e-5 * absref)', async (t) => {
  const fx = load('conv2d_backward');
  const m = new Margin();
  for (const c of fx.cases) {
    await t.test(c.name, (tt) => {
      const [sh, sw] = pair(c.stride), [ph, pw] = pair(c.padding), [dh, dw] = pair(c.dilation);
      const p: Conv2dParams = { N: c.N as number, C: c.C as number, H: c.H as number, W: c.W as number, O: c.O as number,
        KH: c.KH as number, KW: c.KW as number, OH: c.OH as number, OW: c.OW as number, strideH: sh, strideW: sw,
        padH: ph, padW: pw, dilationH: dh, dilationW: dw, groups: c.groups as number };
      const x = fx.f32(c, 'x'), w = fx.f32(c, 'w'), dy = fx.f32(c, 'dy');
      const wantDx = fx.f32(c, 'dx'), wantDw = fx.f32(c, 'dw'), adx = fx.f32(c, 'absref_dx'), adw = fx.f32(c, 'absref_dw');
      const bias = c.bias as boolean;
      const wantDb = bias ? fx.f32(c, 'db') : null, adb = bias ? fx.f32(c, 'absref_db') : null;
      everyBackend(tt, (name, b) => {
        const dx = new Float32Array(wantDx.length).fill(NaN), dwt = new Float32Array(wantDw.length).fill(NaN);
        const db = bias ? new Float32Array(p.O).fill(NaN) : null;
        b.conv2dBackwardData(dy, w, p, dx, { key: w, version: 0 });
        b.conv2dBackwardWeight(x, dy, p, dwt, db);
        m.check(dx, wantDx, adx, 2e-5, `${c.name} ${name} dx`);
        m.check(dwt, wantDw, adw, 2e-5, `${c.name} ${name} dw`);
        if (db) m.check(db, wantDb!, adb, 2e-5, `${c.name} ${name} db`);
      });
    });
  }
  m.report(t);
});

test('batch_norm training backward matches PyTorch on every backend (1e-5 * absref)', (t) => {
  const fx = load('batch_norm_backward');
  const m = new Margin();
  for (const c of fx.cases) {
    const N = c.N as number, C = c.C as number, HW = c.HW as number, affine = c.affine as boolean;
    const x = fx.f32(c, 'x'), dy = fx.f32(c, 'dy'), mean = fx.f32(c, 'mean'), invstd = fx.f32(c, 'invstd');
    const weight = affine ? fx.f32(c, 'weight') : null;
    const wantDx = fx.f32(c, 'dx'), adx = fx.f32(c, 'absref_dx');
    everyBackend(t, (name, b) => {
      const dx = new Float32Array(x.length).fill(NaN), dwt = new Float32Array(C).fill(NaN), db = new Float32Array(C).fill(NaN);
      b.batchNormBackward(x, dy, null, N, C, HW, mean, invstd, weight, dx, affine ? dwt : null, affine ? db : null);
      m.check(dx, wantDx, adx, 1e-5, `${c.name} ${name} dx`);
      if (affine) {
        m.check(dwt, fx.f32(c, 'dweight'), fx.f32(c, 'absref_dweight'), 1e-5, `${c.name} ${name} dweight`);
        m.check(db, fx.f32(c, 'dbias'), fx.f32(c, 'absref_dbias'), 1e-5, `${c.name} ${name} dbias`);
      }
    });
  }
  m.report(t);
});

test('max_pool2d backward matches PyTorch on every backend (overlapping windows, ties; 8 ulps of the |dy| sum)', (t) => {
  const fx = load('max_pool2d_backward');
  const m = new Margin();
  for (const c of fx.cases) {
    const [KH, KW] = pair(c.kernel), [sh, sw] = pair(c.stride), [ph, pw] = pair(c.padding), [dh, dw] = pair(c.dilation);
    const p: Pool2dParams = { N: c.N as number, C: c.C as number, H: c.H as number, W: c.W as number, OH: c.OH as number,
      OW: c.OW as number, KH, KW, strideH: sh, strideW: sw, padH: ph, padW: pw, dilationH: dh, dilationW: dw };
    const idx = fx.i32(c, 'indices'), dy = fx.f32(c, 'dy'), want = fx.f32(c, 'dx');
    const mag = new Float32Array(want.length);
    jsBackend.maxPool2dBackward(dy.map(Math.abs), idx, p, mag);
    everyBackend(t, (name, b) => {
      const dx = new Float32Array(want.length).fill(NaN);
      b.maxPool2dBackward(dy, idx, p, dx);
      m.check(dx, want, mag, 8 * EPS32, `${c.name} ${name}`);
    });
  }
  m.report(t);
});

test('adaptive_avg_pool2d backward matches PyTorch on every backend (overlapping bins; 8 ulps of the |dy| sum)', (t) => {
  const fx = load('adaptive_avg_pool2d_backward');
  const m = new Margin();
  for (const c of fx.cases) {
    const [N, C, H, W, OH, OW] = [c.N, c.C, c.H, c.W, c.OH, c.OW] as number[];
    const dy = fx.f32(c, 'dy'), want = fx.f32(c, 'dx'), mag = new Float32Array(want.length);
    jsBackend.adaptiveAvgPool2dBackward(dy.map(Math.abs), N, C, H, W, OH, OW, mag);
    everyBackend(t, (name, b) => {
      const dx = new Float32Array(want.length).fill(NaN);
      b.adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, dx);
      m.check(dx, want, mag, 8 * EPS32, `${c.name} ${name}`);
    });
  }
  m.report(t);
});

test('relu backward matches PyTorch exactly on every backend (zeros and -0 in the output get no gradient)', (t) => {
  const fx = load('relu_backward');
  for (const c of fx.cases) {
    const y = fx.f32(c, 'y'), dy = fx.f32(c, 'dy'), want = fx.f32(c, 'dx'), n = c.n as number;
    everyBackend(t, (name, b) => {
      const dx = new Float32Array(n).fill(NaN);
      b.reluBackward(dy, y, dx, n);
      assert.deepEqual(dx, want, `${c.name} ${name}`);
    });
  }
});

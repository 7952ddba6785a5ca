// The native optimizer steps (csrc/kernels/optim.c) against the js backend's loops (double per element), at every
// SIMD level this CPU offers (the "ref" level is the C reference) with 1 and 2 threads: SGD without momentum, with
// momentum (first step and later ones), dampening, Nesterov, weight decay and maximize; AdamW with and without
// amsgrad and maximize. Sizes cover the vector tails (1, 15, 17, 100) and the split between threads (70001).
// PyTorch parity of whole optimizers is tests/train/optim.test.ts (which runs these kernels on the native backend).
//
// Tolerances: the C reference does js's arithmetic in double and rounds once per stored value, but may fuse a*b+c
// (one float32 ulp of each result). The fast levels compute in float32, as torch does: a few ulps of the values
// that meet in each result (`mag`), 8 * 2^-23 * mag.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend } from '../../src/backend/js.js';
import { loadNative } from '../../src/backend/native.js';
import type { AdamwStepParams, Backend, SgdStepParams } from '../../src/backend/backend.js';
import { backends, everyNativeConfig, randArray } from '../helpers.js';

const nativeSkip = backends().find((b) => b.name === 'native')!.skip;
const native = loadNative().backend as Backend;
const EPS32 = 2 ** -23;
const SIZES = [1, 15, 17, 100, 70001];

function within(actual: Float32Array, expected: Float32Array, mag: Float64Array, ulps: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    const tol = ulps * EPS32 * mag[i] + 1e-37;
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (|diff| ${Math.abs(actual[i] - expected[i]).toExponential(3)} > ${tol.toExponential(3)})`);
  }
}

const SGD_CASES: (Omit<SgdStepParams, 'first'> & { name: string })[] = [
  { name: 'plain', lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
  { name: 'weight decay, maximize', lr: 0.05, momentum: 0, dampening: 0, weightDecay: 1e-2, nesterov: false, maximize: true },
  { name: 'momentum', lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: false, maximize: false },
  { name: 'momentum, dampening', lr: 0.01, momentum: 0.8, dampening: 0.3, weightDecay: 0, nesterov: false, maximize: false },
  { name: 'nesterov', lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 5e-4, nesterov: true, maximize: false },
  { name: 'nesterov, maximize', lr: 0.02, momentum: 0.5, dampening: 0, weightDecay: 1e-3, nesterov: true, maximize: true },
];

test('native sgdStep matches js (and the C reference) at every level, first and later steps', { skip: nativeSkip }, () => {
  for (const n of SIZES) {
    const p0 = randArray(n, 1, -3, 3), g = randArray(n, 2), b0 = randArray(n, 3, -0.5, 0.5);
    for (const c of SGD_CASES) {
      for (const first of c.momentum === 0 ? [false] : [true, false]) {
        const o: SgdStepParams = { ...c, first };
        const pj = p0.slice(), bj = b0.slice();
        jsBackend.sgdStep(pj, g, c.momentum ? bj : null, n, o);
        // what meets in each result: |p|, lr * |d| and momentum * |buf|
        const magB = new Float64Array(n), magP = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          const d = Math.abs(g[i]) + c.weightDecay * Math.abs(p0[i]);
          magB[i] = (first ? 0 : c.momentum * Math.abs(b0[i])) + d;
          magP[i] = Math.abs(p0[i]) + c.lr * (d + (c.momentum ? (1 + c.momentum) * magB[i] : 0));
        }
        everyNativeConfig((cfg) => {
          const pn = p0.slice(), bn = b0.slice();
          native.sgdStep(pn, g, c.momentum ? bn : null, n, o);
          const ulps = cfg.startsWith('ref') ? 1 : 8;
          within(pn, pj, magP, ulps, `sgd ${c.name}${first ? ' (first)' : ''}, n ${n}, ${cfg}: p`);
          if (c.momentum) within(bn, bj, magB, ulps, `sgd ${c.name}${first ? ' (first)' : ''}, n ${n}, ${cfg}: buf`);
          else assert.deepEqual(bn, b0, 'no buffer without momentum');
        });
      }
    }
  }
});

test('native adamwStep matches js (and the C reference) at every level, with and without amsgrad', { skip: nativeSkip }, () => {
  for (const n of SIZES) {
    const p0 = randArray(n, 4, -2, 2), g = randArray(n, 5), m0 = randArray(n, 6, -0.1, 0.1);
    const v0 = randArray(n, 7, 0, 0.01), vmax0 = randArray(n, 8, 0, 0.01);
    for (const amsgrad of [false, true]) {
      for (const maximize of [false, true]) {
        const t = 3, lr = 1e-3, beta1 = 0.9, beta2 = 0.999;
        const o: AdamwStepParams = { lr, beta1, beta2, eps: 1e-8, weightDecay: 1e-2, stepSize: lr / (1 - beta1 ** t), biasCorrection2Sqrt: Math.sqrt(1 - beta2 ** t), maximize };
        const pj = p0.slice(), mj = m0.slice(), vj = v0.slice(), xj = vmax0.slice();
        jsBackend.adamwStep(pj, g, mj, vj, amsgrad ? xj : null, n, o);
        const magM = new Float64Array(n), magV = new Float64Array(n), magP = new Float64Array(n);
        for (let i = 0; i < n; i++) {
          magM[i] = beta1 * Math.abs(m0[i]) + (1 - beta1) * Math.abs(g[i]);
          magV[i] = beta2 * v0[i] + (1 - beta2) * g[i] * g[i];
          const v = amsgrad ? Math.max(vmax0[i], magV[i]) : magV[i];
          magP[i] = Math.abs(p0[i]) + o.stepSize * magM[i] / (Math.sqrt(v) / o.biasCorrection2Sqrt + o.eps);
        }
        everyNativeConfig((cfg) => {
          const pn = p0.slice(), mn = m0.slice(), vn = v0.slice(), xn = vmax0.slice();
          native.adamwStep(pn, g, mn, vn, amsgrad ? xn : null, n, o);
          const what = `adamw${amsgrad ? ' amsgrad' : ''}${maximize ? ' maximize' : ''}, n ${n}, ${cfg}`;
          const ulps = cfg.startsWith('ref') ? 1 : 8;
          within(mn, mj, magM, ulps, `${what}: exp_avg`);
          within(vn, vj, magV, ulps, `${what}: exp_avg_sq`);
          if (amsgrad) within(xn, xj, magV.map((v, i) => Math.max(v, vmax0[i])), ulps, `${what}: max_exp_avg_sq`);
          else assert.deepEqual(xn, vmax0);
          within(pn, pj, magP, ulps * 2, `${what}: p`);
        });
      }
    }
  }
});

test('native optimizer steps refuse arrays that are too short or missing', { skip: nativeSkip }, () => {
  const o: SgdStepParams = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, first: false };
  assert.throws(() => native.sgdStep(new Float32Array(3), new Float32Array(2), new Float32Array(3), 3, o), /sgd gradient has 2 elements but the call needs 3/);
  assert.throws(() => native.sgdStep(new Float32Array(3), new Float32Array(3), null, 3, o), /momentum needs a momentum buffer/);
  const a: AdamwStepParams = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, stepSize: 1e-2, biasCorrection2Sqrt: 0.04, maximize: false };
  assert.throws(() => native.adamwStep(new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(3), null, 4, a), /exp_avg_sq has 3 elements/);
});

// Op-level parity with PyTorch: every case of scripts/fixtures/make_ops.py (tests/fixtures/gen/ops/*.safetensors),
// on every backend (js and native; an unavailable backend is skipped with its reason, and is a failure in CI).
// A missing fixture fails the test. Tolerances are written per op with the reason next to them:
//   - exact ops (relu, max_pool2d and its indices, argmax, topk, comparisons, flatten, relu6, single float32
//     add/sub/mul/div) must agree bit for bit (NaN meets NaN; +0 and -0 count as equal);
//   - ops that accumulate get a bound proportional to `absref`, the same op on |inputs| in float64 (stored by the
//     maker): both sides round a sum of products whose terms are at most absref in total, so the difference of
//     two float32 results is a small multiple of float32's epsilon (1.19e-7) times absref;
//   - transcendental activations get a few float32 ulps (torch uses vectorised approximations of exp/erf/tanh;
//     we compute in double and round once).
// Each test ends with a diagnostic: the worst |diff| / bound over its cases, so the margin is visible.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import * as F from '../../src/ops/index.js';
import { withBackend } from '../../src/backend/select.js';
import type { BackendName } from '../../src/backend/backend.js';
import { BatchNorm2d } from '../../src/nn/layers.js';
import { backends, fixture } from '../helpers.js';

const EPS32 = 2 ** -23; // float32 machine epsilon, 1.19e-7
const FLT_MIN = 2 ** -126; // smallest normal float32

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
interface Case {
  name: string;
  [k: string]: Json;
}

interface OpFixture {
  cases: Case[];
  /** Tensor `<case>.<role>`; throws naming the file when absent. */
  t(c: Case, role: string): Tensor;
  has(c: Case, role: string): boolean;
}

function loadOps(op: string): OpFixture {
  const path = fixture('ops', `${op}.safetensors`);
  const f = readSafetensorsSync(path);
  assert.ok(f.metadata?.cases, `${path} has no "cases" metadata`);
  const cases = JSON.parse(f.metadata.cases) as Case[];
  assert.ok(cases.length > 0, `${path} has no cases`);
  return {
    cases,
    t(c, role) {
      const v = f.tensors.get(`${c.name}.${role}`);
      if (!v) throw new Error(`${path}: no tensor ${c.name}.${role}`);
      return v;
    },
    has: (c, role) => f.tensors.has(`${c.name}.${role}`),
  };
}

interface Tol {
  /** Bit-exact (=== per element, NaN meets NaN). */
  exact?: boolean;
  atol?: number;
  rtol?: number;
  /** Multiple of `absref` (per element) allowed. */
  k?: number;
  absref?: Tensor;
  /** A subnormal PyTorch value may come back as 0 (the native backend runs with FTZ/DAZ, csrc/include/dl.h). */
  ftz?: boolean;
}

/** Worst |diff| / bound seen per test, reported as a diagnostic at its end. */
class Margin {
  worst = 0;
  where = '';
  note(ratio: number, where: string): void {
    if (ratio > this.worst) {
      this.worst = ratio;
      this.where = where;
    }
  }
  report(t: TestContext): void {
    t.diagnostic(`worst |diff|/tolerance ${this.worst.toExponential(2)}${this.where ? ` (${this.where})` : ''}`);
  }
}

/** Compare shape, dtype and values of `actual` with the PyTorch tensor `expected` under `tol`. */
function check(actual: Tensor, expected: Tensor, tol: Tol, what: string, m?: Margin): void {
  assert.ok(actual instanceof Tensor, `${what}: not a Tensor`);
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape [${actual.shape}] vs PyTorch [${expected.shape}]`);
  assert.equal(actual.dtype, expected.dtype, `${what}: dtype ${actual.dtype} vs PyTorch ${expected.dtype}`);
  const a = actual.toArray(), e = expected.toArray();
  const ref = tol.absref?.toArray();
  if (ref) assert.equal(ref.length, e.length, `${what}: absref size`);
  const atol = tol.atol ?? 0, rtol = tol.rtol ?? 0, k = tol.k ?? 0;
  for (let i = 0; i < e.length; i++) {
    const x = a[i], y = e[i];
    if (Number.isNaN(y) || Number.isNaN(x)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${y}`);
      continue;
    }
    if (x === y) continue; // also equal infinities
    if (tol.ftz && x === 0 && y !== 0 && Math.abs(y) < FLT_MIN) continue;
    if (tol.exact || !Number.isFinite(x) || !Number.isFinite(y)) {
      assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${y} (exact match required)`);
    }
    const bound = atol + rtol * Math.abs(y) + (ref ? k * ref[i] : 0);
    const d = Math.abs(x - y);
    if (!(d <= bound)) {
      assert.fail(`${what}: element ${i} is ${x}, PyTorch has ${y}: |diff| ${d.toExponential(3)} > tolerance ${bound.toExponential(3)}` +
        (ref ? ` (absref ${ref[i].toExponential(3)})` : ''));
    }
    m?.note(d / bound, `${what}[${i}]`);
  }
}

/** One test per backend for op family `op`; one subtest per fixture case, run on that backend. */
function suite(op: string, run: (c: Case, f: OpFixture, be: BackendName, m: Margin) => void): void {
  for (const be of backends()) {
    test(`${op} matches PyTorch [${be.name}]`, { skip: be.skip }, async (t) => {
      const f = loadOps(op);
      const m = new Margin();
      for (const c of f.cases) {
        await t.test(c.name, () => withBackend(be.name, () => run(c, f, be.name, m)));
      }
      m.report(t);
    });
  }
}

const pairOf = (v: Json): number | [number, number] => (Array.isArray(v) ? [v[0] as number, v[1] as number] : (v as number));

// ---------------------------------------------------------------------------------------------------------------
// conv2d. Tolerance 1e-5 * absref (absref = conv(|x|, |w|) + |b| [+ |residual|]): the accumulation order differs
// from oneDNN's blocked kernels (and from our own fast kernels), each of which rounds K = C/groups*KH*KW products
// into a float32 sum; the difference is bounded by a multiple of K * eps32 * absref and in practice sits far below
// 1e-5 * absref (~84 ulps of the largest possible sum) for the K <= 833 used here.
const CONV_K = 1e-5;
suite('conv2d', (c, f, _be, m) => {
  const x = f.t(c, 'x'), w = f.t(c, 'w');
  const b = f.has(c, 'b') ? f.t(c, 'b') : null;
  const epi = c.epilogue as string | null;
  const r = f.has(c, 'r') ? f.t(c, 'r') : null;
  const o = { stride: pairOf(c.stride), padding: pairOf(c.padding), dilation: pairOf(c.dilation), groups: c.groups as number };
  const y = F.conv2d(x, w, b, o, { residual: r, relu: !!epi && epi.includes('relu') });
  check(y, f.t(c, 'y'), { k: CONV_K, absref: f.t(c, 'absref') }, `conv2d ${c.name}`, m);
  // the same weight again, with the input's batch reversed: a backend that caches a repacked weight must reuse it
  // correctly for a new input (and the result must not depend on the batch position)
  if (x.ndim === 4 && x.shape[0] > 1 && !r) {
    const idx = [...Array(x.shape[0]).keys()].reverse();
    const xr = stack(idx.map((i) => x.get(i)));
    const yr = F.conv2d(xr, w, b, o, { relu: !!epi && epi.includes('relu') });
    const want = stack(idx.map((i) => f.t(c, 'y').get(i)));
    const ref = stack(idx.map((i) => f.t(c, 'absref').get(i)));
    check(yr, want, { k: CONV_K, absref: ref }, `conv2d ${c.name} (batch reversed, cached weight)`, m);
  }
});

/** Stack equal-shape tensors along a new first dim (test-side helper; float32 only). */
function stack(ts: Tensor[]): Tensor {
  const n = ts[0].numel;
  const out = new Float32Array(n * ts.length);
  ts.forEach((t, i) => out.set(t.contiguousData() as Float32Array, i * n));
  return new Tensor(out, [ts.length, ...ts[0].shape]);
}

// ---------------------------------------------------------------------------------------------------------------
// batch_norm (functional). Output: 1e-5 * absref with absref = (|x| + |mean|) * |w| / sqrt(var + eps) + |b|: the
// statistics are sums over N*H*W (up to 297) values and the output is x*scale + shift with scale and shift rounded
// to float32 on both sides. Running statistics: (1 - m) * running + m * batch statistic, where the batch statistic
// is itself a float32-rounded sum: rtol 1e-5 plus 1e-6 of the largest entry (entries near 0).
const BN_K = 1e-5;
const BN_STATS = { rtol: 1e-5, atol: 1e-6 };
suite('batch_norm', (c, f, _be, m) => {
  const x = f.t(c, 'x');
  const w = f.has(c, 'w') ? f.t(c, 'w') : null, b = f.has(c, 'b') ? f.t(c, 'b') : null;
  const rm = f.t(c, 'rm0').clone(), rv = f.t(c, 'rv0').clone();
  const y = F.batchNorm(x, rm, rv, w, b, { training: c.training as boolean, momentum: c.momentum as number, eps: c.eps as number, relu: c.relu as boolean });
  check(y, f.t(c, 'y'), { k: BN_K, absref: f.t(c, 'absref') }, `batch_norm ${c.name} output`, m);
  if (c.training) {
    check(rm, f.t(c, 'rm1'), BN_STATS, `batch_norm ${c.name} running_mean`, m);
    check(rv, f.t(c, 'rv1'), BN_STATS, `batch_norm ${c.name} running_var`, m);
  } else {
    check(rm, f.t(c, 'rm0'), { exact: true }, `batch_norm ${c.name} running_mean untouched in eval`);
    check(rv, f.t(c, 'rv0'), { exact: true }, `batch_norm ${c.name} running_var untouched in eval`);
  }
});

// nn.BatchNorm2d over several train steps, then eval: momentum 0.1, momentum null (cumulative average, factor
// 1/num_batches_tracked), track_running_stats false. num_batches_tracked is an exact int64 count. Same tolerances.
suite('batch_norm_module', (c, f, _be, m) => {
  const C = c.channels as number;
  const bn = new BatchNorm2d(C, { momentum: c.momentum as number | null, trackRunningStats: c.track_running_stats as boolean });
  bn.weight!.copy_(f.t(c, 'weight'));
  bn.bias!.copy_(f.t(c, 'bias'));
  bn.train();
  for (let i = 0; i < (c.steps as number); i++) {
    const y = bn.forward(f.t(c, `x${i}`));
    check(y, f.t(c, `y${i}`), { k: BN_K, absref: f.t(c, `absref${i}`) }, `BatchNorm2d ${c.name} step ${i} output`, m);
    if (c.track_running_stats) {
      check(bn.running_mean!, f.t(c, `running_mean${i}`), BN_STATS, `BatchNorm2d ${c.name} step ${i} running_mean`, m);
      check(bn.running_var!, f.t(c, `running_var${i}`), BN_STATS, `BatchNorm2d ${c.name} step ${i} running_var`, m);
      check(bn.num_batches_tracked!, f.t(c, `num_batches_tracked${i}`), { exact: true }, `BatchNorm2d ${c.name} step ${i} num_batches_tracked`);
    } else {
      assert.equal(bn.running_mean, null);
      assert.equal(bn.num_batches_tracked, null);
    }
  }
  bn.eval();
  check(bn.forward(f.t(c, 'x_eval')), f.t(c, 'y_eval'), { k: BN_K, absref: f.t(c, 'absref_eval') }, `BatchNorm2d ${c.name} eval output`, m);
});

// ---------------------------------------------------------------------------------------------------------------
// relu: exact (a comparison and a select; NaN propagates as in torch.relu). Also in place.
// One deliberate difference: the native backend flushes subnormals to zero (FTZ/DAZ, a design decision documented
// in csrc/include/dl.h; PyTorch does not flush by default), so relu(1e-40) is 0 there. The fixture holds one
// subnormal; on native it may come back as exactly 0, on js it must equal PyTorch's.
suite('relu', (c, f, be) => {
  const x = f.t(c, 'x');
  const tol: Tol = { exact: true, ftz: be === 'native' };
  check(F.relu(x), f.t(c, 'y'), tol, `relu ${c.name}`);
  const xi = x.clone();
  const r = F.relu(xi, true);
  assert.equal(r, xi, 'in-place relu returns its input');
  check(xi, f.t(c, 'y'), tol, `relu_ ${c.name}`);
  check(x.relu(), f.t(c, 'y'), tol, `Tensor.relu ${c.name}`);
});

// max_pool2d with return_indices: exact values and exact int64 indices (first maximum wins on ties, as PyTorch's
// CPU kernel; -inf padding never wins).
suite('max_pool2d', (c, f) => {
  const o = {
    kernelSize: pairOf(c.kernel_size), stride: c.stride === null ? null : pairOf(c.stride), padding: pairOf(c.padding),
    dilation: pairOf(c.dilation), ceilMode: c.ceil_mode as boolean,
  };
  const { output, indices } = F.maxPool2dWithIndices(f.t(c, 'x'), o);
  check(output, f.t(c, 'y'), { exact: true }, `max_pool2d ${c.name} output`);
  check(indices!, f.t(c, 'indices'), { exact: true }, `max_pool2d ${c.name} indices`);
  check(F.maxPool2d(f.t(c, 'x'), o), f.t(c, 'y'), { exact: true }, `max_pool2d ${c.name} (no indices)`);
});

// adaptive_avg_pool2d: averages of up to 12707 values; 1e-5 * absref (absref = the same pooling of |x|), the
// accumulation-order rule of conv2d.
suite('adaptive_avg_pool2d', (c, f, _be, m) => {
  const os = c.output_size as number | (number | null)[];
  const size = typeof os === 'number' ? os : ([os[0], os[1]] as [number | null, number | null]);
  check(F.adaptiveAvgPool2d(f.t(c, 'x'), size), f.t(c, 'y'), { k: 1e-5, absref: f.t(c, 'absref') }, `adaptive_avg_pool2d ${c.name}`, m);
});

// linear (gemm against MKL/OpenBLAS sgemm): 1e-5 * absref, absref = |x| |W|^T + |b|, as conv2d.
suite('linear', (c, f, _be, m) => {
  const b = f.has(c, 'b') ? f.t(c, 'b') : null;
  check(F.linear(f.t(c, 'x'), f.t(c, 'w'), b), f.t(c, 'y'), { k: 1e-5, absref: f.t(c, 'absref') }, `linear ${c.name}`, m);
});

// add/sub/mul/div with broadcasting: one IEEE operation on float32 operands. Computing it in double and rounding
// once gives the correctly rounded float32 result (double has more than 2*24+2 bits), as does PyTorch's float32
// arithmetic, so they are exact. The same holds for int64 (exact integers) and the int -> float32 promotions.
// Comparisons are exact booleans (NaN compares false, != true).
suite('elementwise', (c, f) => {
  const a = f.t(c, 'a');
  if (c.name.startsWith('compare')) {
    const b: Tensor | number = f.has(c, 'b') ? f.t(c, 'b') : (c.scalar as number);
    for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
      check(F[op](a, b), f.t(c, op), { exact: true }, `${op} ${c.name}`);
      check(a[op](b), f.t(c, op), { exact: true }, `Tensor.${op} ${c.name}`);
    }
    return;
  }
  const b = f.t(c, 'b');
  check(F.add(a, b), f.t(c, 'add'), { exact: true }, `add ${c.name}`);
  check(F.sub(a, b), f.t(c, 'sub'), { exact: true }, `sub ${c.name}`);
  check(F.mul(a, b), f.t(c, 'mul'), { exact: true }, `mul ${c.name}`);
  const bd = f.has(c, 'bnz') ? f.t(c, 'bnz') : b;
  check(F.div(a, bd), f.t(c, 'div'), { exact: true }, `div ${c.name}`);
  check(a.add(b), f.t(c, 'add'), { exact: true }, `Tensor.add ${c.name}`);
  if (f.has(c, 'af')) {
    // float32 (op) int64 promotes to float32, as torch
    check(F.add(f.t(c, 'af'), a), f.t(c, 'fadd'), { exact: true }, `float32 + int64 ${c.name}`);
    check(F.mul(f.t(c, 'af'), b), f.t(c, 'fmul'), { exact: true }, `float32 * int64 ${c.name}`);
  }
  // in place, into a tensor of the broadcast shape (b broadcast to a when a already has the full shape)
  if (a.numel === f.t(c, 'add').numel && a.dtype === 'float32') {
    const acc = a.clone();
    F.addInPlace(acc, b);
    check(acc, f.t(c, 'add'), { exact: true }, `add_ ${c.name}`);
  }
});

// flatten (exact: a view), sum/mean (1e-5 * absref, accumulation order), argmax (exact; first index on ties),
// topk (exact values and indices on distinct values), softmax (rtol 1e-6 + 1e-9 absolute: exp rounded to float32
// and one division; torch's vectorised exp is within ~1 ulp) and log_softmax ((x - max) - log(sum): absolute error
// of a few ulps of max(|x - max|, log(sum)): 1e-6 * (1 + |y|)).
suite('reduce', (c, f, _be, m) => {
  const x = f.t(c, 'x');
  const dim = c.dim === null || c.dim === undefined ? undefined : (c.dim as number);
  switch (c.op) {
    case 'flatten': {
      const y = x.flatten(c.start_dim as number, c.end_dim as number);
      check(y, f.t(c, 'y'), { exact: true }, `flatten ${c.name}`);
      assert.equal(y.data, x.data, `flatten ${c.name} of a contiguous tensor is a view`);
      break;
    }
    case 'sum': {
      const y = F.sum(x, dim, c.keepdim as boolean);
      check(y, f.t(c, 'y'), f.has(c, 'absref') ? { k: 1e-5, absref: f.t(c, 'absref') } : { exact: true }, `sum ${c.name}`, m);
      check(x.sum(dim, c.keepdim as boolean), f.t(c, 'y'), f.has(c, 'absref') ? { k: 1e-5, absref: f.t(c, 'absref') } : { exact: true }, `Tensor.sum ${c.name}`, m);
      break;
    }
    case 'mean':
      check(F.mean(x, dim, c.keepdim as boolean), f.t(c, 'y'), { k: 1e-5, absref: f.t(c, 'absref') }, `mean ${c.name}`, m);
      break;
    case 'argmax':
      check(F.argmax(x, dim, c.keepdim as boolean), f.t(c, 'y'), { exact: true }, `argmax ${c.name}`);
      break;
    case 'topk': {
      const { values, indices } = F.topk(x, c.k as number, c.dim as number, c.largest as boolean);
      check(values, f.t(c, 'values'), { exact: true }, `topk ${c.name} values`);
      check(indices, f.t(c, 'indices'), { exact: true }, `topk ${c.name} indices`);
      break;
    }
    case 'softmax': {
      const d = c.dim as number;
      check(F.softmax(x, d), f.t(c, 'y'), { rtol: 1e-6, atol: 1e-9 }, `softmax ${c.name}`, m);
      const yl = f.t(c, 'ylog');
      check(F.logSoftmax(x, d), yl, { rtol: 1e-6, atol: 1e-6 }, `log_softmax ${c.name}`, m);
      break;
    }
    default:
      assert.fail(`unknown reduce op ${String(c.op)} in the fixture`);
  }
});

// Activations. relu6 is exact (two comparisons). leaky_relu multiplies by the slope: torch rounds the slope to
// float32 first, we multiply in double, so they may differ by 1 ulp: rtol 2 * eps32. The transcendental ones
// (gelu erf/tanh, silu, sigmoid, tanh, mish) use torch's vectorised exp/erf/tanh approximations (a few ulps); the
// forms x * (1 + erf(x/sqrt2)) / 2 and x * sigmoid(x) cancel for large negative x, where torch's result carries an
// absolute error of a few ulps of |x| (x times a factor <= 1): bound 8 ulps of |y| + 4 ulps of |x| + 1e-30.
const ACT_TOL: Record<string, (x: number) => Tol> = {
  gelu: (x) => ({ rtol: 8 * EPS32, atol: 4 * EPS32 * Math.abs(x) + 1e-30 }),
  gelu_tanh: (x) => ({ rtol: 8 * EPS32, atol: 4 * EPS32 * Math.abs(x) + 1e-30 }),
  silu: (x) => ({ rtol: 8 * EPS32, atol: 4 * EPS32 * Math.abs(x) + 1e-30 }),
  sigmoid: () => ({ rtol: 8 * EPS32, atol: 1e-30 }),
  tanh: () => ({ rtol: 8 * EPS32, atol: 1e-30 }),
  mish: (x) => ({ rtol: 8 * EPS32, atol: 4 * EPS32 * Math.abs(x) + 1e-30 }),
  leaky_relu: () => ({ rtol: 2 * EPS32 }),
  'leaky_relu_0.2': () => ({ rtol: 2 * EPS32 }),
  relu6: () => ({ exact: true }),
};
const ACT_FN: Record<string, (x: Tensor) => Tensor> = {
  gelu: F.gelu, gelu_tanh: F.geluTanh, silu: F.silu, sigmoid: F.sigmoid, tanh: F.tanh, mish: F.mish,
  leaky_relu: (x) => F.leakyRelu(x, 0.01), 'leaky_relu_0.2': (x) => F.leakyRelu(x, 0.2), relu6: F.relu6,
};
suite('activation', (c, f, _be, m) => {
  const fn = ACT_FN[c.fn as string], tolOf = ACT_TOL[c.fn as string];
  assert.ok((c.fn as string) in ACT_FN && (c.fn as string) in ACT_TOL, `no activation ${String(c.fn)} here`);
  const x = f.t(c, 'x'), want = f.t(c, 'y');
  const y = fn(x);
  assert.equal(y.dtype, 'float32');
  assert.deepEqual([...y.shape], [...want.shape]);
  const xs = x.toArray(), ys = y.toArray(), ws = want.toArray();
  for (let i = 0; i < xs.length; i++) {
    check(new Tensor(new Float32Array([ys[i]]), [1]), new Tensor(new Float32Array([ws[i]]), [1]), tolOf(xs[i]), `${c.fn}(${xs[i]})`, m);
  }
});

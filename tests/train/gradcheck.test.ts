// Every backward rule checked by finite differences in float64 on the js backend (ops/kernels.ts runs float64 there
// only), as torch.autograd.gradcheck: for random inputs x and a random upstream gradient gy, the gradient backward()
// puts in x.grad must equal (s(x + h e_j) - s(x - h e_j)) / 2h for every element j, where s(x) = sum(gy * f(x)).
// h = 1e-6; central differences are then exact to ~1e-12 and float64 rounding adds ~1e-16 |s| / h, so the rule is
// |analytic - numeric| <= 1e-7 + 1e-6 |numeric|. Inputs stay away from kinks (relu at 0, max-pool ties, clamp limits).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { fromArray } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { noGrad } from '../../src/tensor/autograd.js';
import * as F from '../../src/ops/index.js';
import { withBackend } from '../../src/backend/select.js';

const gen = new Generator(4242);
/** float64 values uniform in [lo, hi). */
function rnd(shape: number[], lo = -1, hi = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return fromArray(Float64Array.from({ length: n }, () => lo + (hi - lo) * gen.uniform()), shape, { dtype: 'float64' });
}
/** A random permutation of evenly spaced values in (-1, 1): no ties, none at 0, every pair >= 2/n apart. */
function spaced(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, (_, i) => -1 + (2 * (i + 0.3)) / n);
  for (let i = n - 1; i > 0; i--) {
    const j = gen.randint(i + 1);
    [v[i], v[j]] = [v[j], v[i]];
  }
  return fromArray(Float64Array.from(v), shape, { dtype: 'float64' });
}
const i64 = (v: number[], shape = [v.length]) => fromArray(v.map(BigInt), shape, { dtype: 'int64' });

/**
 * Check f's gradients with respect to the inputs flagged in `diff` (default: every float64 input). f may mutate
 * nothing it is given (it runs many times on copies).
 */
function gradcheck(what: string, f: (x: Tensor[]) => Tensor, inputs: Tensor[], diff?: boolean[]): void {
  const wants = inputs.map((t, i) => (diff ? diff[i] : t.dtype === 'float64'));
  const leaves = inputs.map((t, i) => (wants[i] ? t.clone().requiresGrad_(true) : t));
  const y = f(leaves);
  assert.ok(y.requiresGrad, `${what}: output records a node`);
  const gy = rnd([...y.shape]);
  y.backward(gy);
  const gyd = gy.toArray();
  const s = (xs: Tensor[]) => noGrad(() => {
    const v = f(xs).toArray();
    let acc = 0;
    for (let i = 0; i < v.length; i++) acc += v[i] * gyd[i];
    return acc;
  });
  const h = 1e-6;
  inputs.forEach((t, i) => {
    if (!wants[i]) return;
    const ana = leaves[i].grad;
    assert.ok(ana, `${what}: input ${i} got no gradient`);
    assert.deepEqual([...ana.shape], [...t.shape], `${what}: gradient ${i} shape`);
    const a = ana.toArray();
    const base = t.contiguous().toArray();
    for (let j = 0; j < base.length; j++) {
      const at = (d: number) => {
        const v = base.slice();
        v[j] += d;
        return inputs.map((u, k) => (k === i ? fromArray(Float64Array.from(v), t.shape, { dtype: 'float64' }) : u));
      };
      const num = (s(at(h)) - s(at(-h))) / (2 * h);
      const tol = 1e-7 + 1e-6 * Math.abs(num);
      assert.ok(Math.abs(a[j] - num) <= tol, `${what}: d/d input ${i} [${j}] analytic ${a[j]} vs numeric ${num}`);
    }
  });
}

const js = (fn: () => void) => () => withBackend('js', fn);

test('gradcheck conv2d: stride, padding, dilation, groups, bias, epilogue, unbatched', js(() => {
  const cases: [number[], number[], F.Conv2dOptions][] = [
    [[2, 3, 5, 4], [4, 3, 3, 3], { padding: 1 }],
    [[1, 2, 7, 6], [3, 2, 3, 2], { stride: 2, padding: [1, 0] }],
    [[1, 2, 7, 7], [2, 2, 3, 3], { dilation: 2, padding: 2, stride: [1, 2] }],
    [[2, 4, 4, 5], [6, 2, 3, 3], { groups: 2, padding: 1 }],
    [[1, 4, 5, 5], [4, 1, 3, 3], { groups: 4, stride: 2, padding: 1 }],
    [[1, 3, 7, 5], [2, 3, 1, 1], { stride: 2 }],
  ];
  for (const [xs, ws, o] of cases) {
    gradcheck(`conv2d ${JSON.stringify(o)}`, ([x, w, b]) => F.conv2d(x, w, b, o), [rnd(xs), rnd(ws), rnd([ws[0]])]);
  }
  gradcheck('conv2d residual + relu epilogue', ([x, w, b, r]) => F.conv2d(x, w, b, { padding: 1 }, { residual: r, relu: true }),
    [spaced([1, 2, 4, 4]), rnd([3, 2, 3, 3]), rnd([3]), rnd([1, 3, 4, 4])]);
  gradcheck('conv2d unbatched', ([x, w]) => F.conv2d(x, w, null, { padding: 1 }), [rnd([2, 4, 3]), rnd([3, 2, 3, 3])]);
}));

test('gradcheck batch_norm: training (batch statistics), eval, no affine, 2-D, fused relu', js(() => {
  const rm0 = rnd([3], -0.5, 0.5), rv0 = rnd([3], 0.5, 1.5);
  for (const training of [true, false]) {
    // fresh running statistics each call: training mode updates them in place
    gradcheck(`batch_norm training=${training}`, ([x, w, b]) => F.batchNorm(x, rm0.clone(), rv0.clone(), w, b, { training, momentum: 0.1, eps: 1e-5 }),
      [rnd([2, 3, 3, 2], -2, 3), rnd([3], 0.5, 1.5), rnd([3])]);
  }
  gradcheck('batch_norm training, no affine, no running stats', ([x]) => F.batchNorm(x, null, null, null, null, { training: true }), [rnd([3, 3, 2, 2])]);
  gradcheck('batch_norm training 2-D', ([x, w, b]) => F.batchNorm(x, null, null, w, b, { training: true, eps: 1e-3 }), [rnd([5, 3]), rnd([3]), rnd([3])]);
  gradcheck('batch_norm eval with relu', ([x, w, b]) => F.batchNorm(x, fromArray(new Float64Array([0.1, -0.2, 0.3]), [3], { dtype: 'float64' }),
    fromArray(new Float64Array([1.5, 0.7, 1.1]), [3], { dtype: 'float64' }), w, b, { relu: true }), [spaced([2, 3, 2, 2]), rnd([3]), rnd([3])]);
}));

test('gradcheck relu (and in place), pooling', js(() => {
  gradcheck('relu', ([x]) => F.relu(x), [spaced([3, 4])]);
  gradcheck('relu in place on a non-leaf', ([x]) => F.relu(x.mul(1), true), [spaced([3, 4])]);
  const pools: F.MaxPool2dOptions[] = [
    { kernelSize: 3, stride: 2, padding: 1 },
    { kernelSize: 3, stride: 2, ceilMode: true },
    { kernelSize: 2, stride: 1, dilation: 2 },
    { kernelSize: [3, 2], stride: [1, 2], padding: [1, 1], ceilMode: true },
  ];
  for (const o of pools) gradcheck(`max_pool2d ${JSON.stringify(o)}`, ([x]) => F.maxPool2d(x, o), [spaced([1, 2, 7, 6])]);
  for (const [shape, out] of [[[2, 2, 7, 5], [3, 2]], [[1, 2, 3, 4], [5, 6]], [[1, 3, 4, 4], [1, 1]]] as [number[], [number, number]][]) {
    gradcheck(`adaptive_avg_pool2d ${shape} -> ${out}`, ([x]) => F.adaptiveAvgPool2d(x, out), [rnd(shape)]);
  }
}));

test('gradcheck linear, matmul, elementwise with broadcasting', js(() => {
  gradcheck('linear', ([x, w, b]) => F.linear(x, w, b), [rnd([3, 4]), rnd([5, 4]), rnd([5])]);
  gradcheck('linear 3-D', ([x, w]) => F.linear(x, w), [rnd([2, 3, 4]), rnd([2, 4])]);
  gradcheck('matmul', ([a, b]) => F.matmul(a, b), [rnd([3, 4]), rnd([4, 2])]);
  gradcheck('add', ([a, b]) => F.add(a, b), [rnd([2, 3, 4]), rnd([3, 1])]);
  gradcheck('sub', ([a, b]) => F.sub(a, b), [rnd([2, 1, 4]), rnd([3, 4])]);
  gradcheck('mul', ([a, b]) => F.mul(a, b), [rnd([2, 3]), rnd([2, 1])]);
  gradcheck('div', ([a, b]) => F.div(a, b), [rnd([2, 3]), rnd([3], 0.5, 2)]);
  gradcheck('scalar operands', ([a]) => F.div(F.sub(2, F.mul(a, 3)), 4).add(1), [rnd([3])]);
  gradcheck('add_ in place', ([a, b]) => F.addInPlace(a.mul(1), b), [rnd([2, 3]), rnd([3])]);
  gradcheck('maximum / minimum', ([a, b]) => F.add(F.maximum(a, b), F.minimum(a, b).mul(2)), [spaced([2, 3]), spaced([3])]);
  gradcheck('same tensor used twice', ([a]) => F.add(F.mul(a, a), a), [rnd([4])]);
}));

test('gradcheck reductions, softmax, views and copies', js(() => {
  const x = () => rnd([2, 3, 4]);
  gradcheck('sum all', ([t]) => t.sum(), [x()]);
  gradcheck('sum dim', ([t]) => t.sum(1), [x()]);
  gradcheck('mean dim keepdim', ([t]) => t.mean(-1, true), [x()]);
  gradcheck('mean all', ([t]) => t.mean(), [x()]);
  gradcheck('softmax', ([t]) => F.softmax(t, 1), [x()]);
  gradcheck('log_softmax', ([t]) => F.logSoftmax(t, 2), [rnd([2, 3, 4], -3, 3)]);
  gradcheck('max all', ([t]) => t.max(), [spaced([3, 4])]);
  gradcheck('max dim', ([t]) => t.max(0), [spaced([3, 4])]);
  gradcheck('topk values', ([t]) => t.topk(2, 1).values, [spaced([3, 4])]);
  gradcheck('view / reshape / flatten', ([t]) => t.view([4, 6]).reshape([2, 12]).flatten(), [x()]);
  gradcheck('permute / transpose / contiguous', ([t]) => t.permute(2, 0, 1).transpose(0, 1).contiguous().mul(1), [x()]);
  gradcheck('narrow / get', ([t]) => t.narrow(2, 1, 2).get(1), [x()]);
  gradcheck('unsqueeze / squeeze', ([t]) => t.unsqueeze(1).squeeze(), [x()]);
  gradcheck('clone', ([t]) => t.clone().mul(2), [x()]);
  gradcheck('reshape of a non-contiguous tensor', ([t]) => t.transpose(0, 2).reshape([-1]), [x()]);
  gradcheck('copy_ into a buffer', ([t]) => {
    const buf = fromArray(new Float64Array(24), [2, 3, 4], { dtype: 'float64' });
    return buf.copy_(t.mul(3)).mul(buf);
  }, [x()]);
  // overwritten history gets no gradient at all (PyTorch gives zeros there): t is not checked, u is
  gradcheck('copy_ over a node, fill_ of another', ([t, u]) => {
    const a = t.mul(2);
    a.copy_(u);
    const b = t.mul(1);
    b.fill_(2);
    return F.add(a, b).mul(u);
  }, [x(), x()], [false, true]);
}));

test('gradcheck activations and unary math', js(() => {
  const acts: [string, (t: Tensor) => Tensor, number, number][] = [
    ['gelu', F.gelu, -3, 3], ['geluTanh', F.geluTanh, -3, 3], ['quickGelu', F.quickGelu, -3, 3], ['sigmoid', F.sigmoid, -4, 4],
    ['silu', F.silu, -4, 4], ['tanh', F.tanh, -2, 2], ['mish', F.mish, -3, 3], ['relu6', F.relu6, -2, 8],
    ['leakyRelu', (t) => F.leakyRelu(t, 0.2), -1, 1], ['relu2', F.relu2, -1, 1], ['elu', (t) => F.elu(t, 0.7), -2, 2],
    ['neg', F.neg, -1, 1], ['abs', F.abs, -1, 1], ['exp', F.exp, -2, 2], ['log', F.log, 0.2, 3], ['sqrt', F.sqrt, 0.2, 3],
    ['square', F.square, -2, 2], ['clamp', (t) => F.clamp(t, -0.5, 0.7), -1, 1],
  ];
  for (const [name, fn, lo, hi] of acts) {
    const t = spaced([3, 5]);
    gradcheck(name, ([u]) => fn(u), [F.add(F.mul(t, (hi - lo) / 2), (hi + lo) / 2).detach()]);
  }
}));

test('gradcheck losses: every cross_entropy option, probabilities, BCE with weights, MSE', js(() => {
  const x = () => rnd([4, 5], -2, 2);
  const w = rnd([5], 0.5, 2).detach();
  for (const reduction of ['mean', 'sum', 'none'] as F.Reduction[]) {
    for (const o of [{}, { weight: w }, { labelSmoothing: 0.2 }, { weight: w, labelSmoothing: 0.1 }, { weight: w, labelSmoothing: 0.1, ignoreIndex: 2 }] as F.CrossEntropyOptions[]) {
      const target = i64(o.ignoreIndex === 2 ? [0, 2, 4, 2] : [0, 4, -100, 2]);
      gradcheck(`cross_entropy ${reduction} ${JSON.stringify({ ...o, weight: !!o.weight })}`, ([t]) => F.crossEntropy(t, target, { ...o, reduction }), [x()]);
    }
    const probs = F.softmax(rnd([4, 5]), 1).detach();
    gradcheck(`cross_entropy probabilities ${reduction}`, ([t, p]) => F.crossEntropy(t, p, { weight: w, labelSmoothing: 0.1, reduction }), [x(), probs]);
    gradcheck(`bce_with_logits ${reduction}`, ([t, y]) => F.binaryCrossEntropyWithLogits(t, y, { reduction }), [rnd([3, 4], -4, 4), rnd([3, 4], 0, 1)]);
    const bw = rnd([3, 1], 0.5, 1.5), pw = rnd([4], 0.5, 3);
    gradcheck(`bce_with_logits weight pos_weight ${reduction}`, ([t, y]) => F.binaryCrossEntropyWithLogits(t, y, { weight: bw, posWeight: pw, reduction }),
      [rnd([3, 4], -4, 4), rnd([3, 4], 0, 1)]);
    gradcheck(`mse ${reduction}`, ([t, y]) => F.mseLoss(t, y, { reduction }), [rnd([3, 4]), rnd([3, 4])]);
  }
  gradcheck('cross_entropy unbatched', ([t]) => F.crossEntropy(t, i64([3], []), { labelSmoothing: 0.3 }), [rnd([5])]);
}));

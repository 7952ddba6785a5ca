// Every backward rule against PyTorch 1.13's autograd, on every backend: the cases of scripts/fixtures/make_grad.py
// (tests/fixtures/gen/grad/ops.safetensors) give float32 inputs, the output, a random upstream gradient gy and the
// gradient of every input after y.backward(gy). We run the same op on leaves that require grad, call
// y.backward(gy), and compare the output, each .grad and (batch norm in training mode) the updated running stats.
//
// Tolerance, per tensor: |ours - torch| <= 2e-5 * max|torch| + 1e-6 * |torch| elementwise. Both sides round sums of
// products in float32 (torch) or double (us); a gradient is such a sum over at most a few hundred terms here, so the
// difference is a few float32 ulps of the largest term: 1e-6 relative to the largest gradient, doubled for batch norm
// whose dx subtracts two means of the same size. The worst ratio per backend is printed as a diagnostic.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as F from '../../src/ops/index.js';
import { withBackend } from '../../src/backend/select.js';
import { backends, compare, fixture } from '../helpers.js';

type Args = Record<string, unknown>;
interface Case { name: string; op: string; args: Args; inputs: string[]; grads: string[] }

const file = readSafetensorsSync(fixture('grad', 'ops.safetensors'));
const CASES = JSON.parse(file.metadata!.cases) as Case[];

function get(key: string): Tensor {
  const t = file.tensors.get(key);
  if (!t) throw new Error(`ops.safetensors has no tensor ${key}`);
  return t;
}

type In = Record<string, Tensor>;
const opt = (t: Tensor | undefined) => t ?? null;

/** Our op for each fixture op name: (inputs by name, args) -> output. */
const OPS: Record<string, (t: In, a: Args) => Tensor> = {
  conv2d: (t, a) => F.conv2d(t.x, t.w, opt(t.b), a as F.Conv2dOptions),
  conv2d_epilogue: (t, a) => F.conv2d(t.x, t.w, t.b, a as F.Conv2dOptions, { residual: t.r, relu: true }),
  batch_norm: (t, a) => F.batchNorm(t.x, t.running_mean, t.running_var, opt(t.w), opt(t.b), a as F.BatchNormOptions),
  relu: (t) => F.relu(t.x),
  relu_inplace: (t) => F.relu(t.x.mul(1), true),
  max_pool2d: (t, a) => F.maxPool2d(t.x, a as unknown as F.MaxPool2dOptions),
  adaptive_avg_pool2d: (t, a) => F.adaptiveAvgPool2d(t.x, a.outputSize as [number, number]),
  linear: (t) => F.linear(t.x, t.w, opt(t.b)),
  matmul: (t) => F.matmul(t.a, t.b),
  add: (t) => F.add(t.a, t.b),
  sub: (t) => F.sub(t.a, t.b),
  mul: (t) => F.mul(t.a, t.b),
  div: (t) => F.div(t.a, t.b),
  mul_scalar: (t, a) => F.mul(t.a, a.s as number),
  add_inplace: (t) => F.addInPlace(t.a.mul(1), t.b),
  sum: (t, a) => t.x.sum((a.dim ?? undefined) as number | undefined, a.keepdim as boolean),
  mean: (t, a) => t.x.mean((a.dim ?? undefined) as number | undefined, a.keepdim as boolean),
  softmax: (t, a) => F.softmax(t.x, a.dim as number),
  log_softmax: (t, a) => F.logSoftmax(t.x, a.dim as number),
  max: (t, a) => (a.dim === null ? t.x.max() : t.x.max(a.dim as number)),
  flatten: (t, a) => t.x.flatten(a.start as number),
  view: (t, a) => t.x.view(a.shape as number[]),
  permute: (t, a) => t.x.permute(a.dims as number[]),
  transpose_reshape: (t) => t.x.transpose(0, 2).reshape([4, 6]),
  narrow: (t, a) => t.x.narrow(a.dim as number, a.start as number, a.length as number),
  select: (t, a) => t.x.get(a.index as number),
  unsqueeze_squeeze: (t) => t.x.squeeze().unsqueeze(0),
  gelu: (t) => F.gelu(t.x),
  gelu_tanh: (t) => F.geluTanh(t.x),
  silu: (t) => F.silu(t.x),
  sigmoid: (t) => F.sigmoid(t.x),
  tanh: (t) => F.tanh(t.x),
  mish: (t) => F.mish(t.x),
  relu6: (t) => F.relu6(t.x),
  leaky_relu: (t) => F.leakyRelu(t.x, 0.1),
  elu: (t) => F.elu(t.x),
  cross_entropy: (t, a) => F.crossEntropy(t.x, t.target, { weight: opt(t.weight), ...(a as F.CrossEntropyOptions) }),
  bce: (t, a) => F.binaryCrossEntropyWithLogits(t.x, t.target, { weight: opt(t.weight), posWeight: opt(t.posWeight), reduction: a.reduction as F.Reduction }),
  mse: (t, a) => F.mseLoss(t.x, t.target, { reduction: a.reduction as F.Reduction }),
};

/** Assert the per-tensor rule; returns the worst |diff| / tolerance. */
function check(ours: Tensor, ref: Tensor, what: string): number {
  assert.deepEqual([...ours.shape], [...ref.shape], `${what}: shape`);
  assert.equal(ours.dtype, ref.dtype, `${what}: dtype`);
  const a = ours.toArray(), b = ref.toArray();
  const { maxRef } = compare(a, b);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const tol = 2e-5 * maxRef + 1e-6 * Math.abs(b[i]) + 1e-30;
    const r = Math.abs(a[i] - b[i]) / tol;
    assert.ok(r <= 1, `${what}: element ${i} is ${a[i]}, torch ${b[i]} (tol ${tol.toExponential(2)}, max|torch| ${maxRef.toExponential(2)})`);
    worst = Math.max(worst, r);
  }
  return worst;
}

function runCase(c: Case): number {
  const leaves: In = {};
  for (const k of c.inputs) {
    const t = get(`${c.name}.in.${k}`).clone();
    if (c.grads.includes(k)) t.requiresGrad_(true);
    leaves[k] = t;
  }
  const op = OPS[c.op];
  assert.ok(op, `no op for fixture op ${c.op}`);
  const y = op(leaves, c.args);
  let worst = check(y.detach(), get(`${c.name}.y`), `${c.name} output`);
  assert.ok(y.requiresGrad && y.gradFn !== null, `${c.name}: the output records a node`);
  y.backward(get(`${c.name}.gy`));
  for (const k of c.grads) {
    assert.ok(leaves[k].grad, `${c.name}: ${k} got no gradient`);
    worst = Math.max(worst, check(leaves[k].grad!, get(`${c.name}.grad.${k}`), `${c.name} d${k}`));
  }
  for (const k of ['running_mean', 'running_var']) {
    if (file.tensors.has(`${c.name}.after.${k}`)) worst = Math.max(worst, check(leaves[k], get(`${c.name}.after.${k}`), `${c.name} ${k} after`));
  }
  return worst;
}

test('the fixture covers every op the test knows', () => {
  assert.deepEqual([...new Set(CASES.map((c) => c.op))].sort(), Object.keys(OPS).sort());
});

for (const b of backends()) {
  test(`op gradients match PyTorch [${b.name}]`, { skip: b.skip }, (t: TestContext) => withBackend(b.name, () => {
    let worst = 0, where = '';
    for (const c of CASES) {
      const r = runCase(c);
      if (r > worst) [worst, where] = [r, c.name];
    }
    t.diagnostic(`${CASES.length} cases; worst |diff|/tolerance ${worst.toExponential(2)} (${where})`);
  }));
}

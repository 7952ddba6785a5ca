// The tape's semantics, as PyTorch's autograd: implicit gradient for scalars only, accumulation into leaves across
// backward calls, retainGraph and the error for a freed graph, noGrad / enableGrad, detach, the in-place checks
// (a leaf that requires grad; a tensor a node saved and an in-place op then changed; views), torchvision's in-place
// ReLU and `out += identity`, Module.zeroGrad / requiresGrad_, BatchNorm2d's running statistics in a recorded
// forward, nothing recorded when nothing requires grad, and eval-mode fusion and recycling with a graph.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { fromArray, randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { enableGrad, isGradEnabled, noGrad, setGradEnabled } from '../../src/tensor/autograd.js';
import * as F from '../../src/ops/index.js';
import { backendInfo, withBackend } from '../../src/backend/select.js';
import { BatchNorm2d, Conv2d, Linear, ReLU, Sequential } from '../../src/nn/layers.js';
import { withoutFusion } from '../../src/nn/fused.js';
import { BasicBlock, resnet18 } from '../../src/models/resnet.js';
import { assertClose, backends } from '../helpers.js';

const leaf = (v: number[], shape = [v.length]) => fromArray(v, shape).requiresGrad_(true);

test('backward: implicit 1 for scalars, errors for non-scalars, shape mismatch and tensors outside a graph', () => {
  const x = leaf([1, 2, 3]);
  const y = x.mul(x).sum();
  y.backward();
  assert.deepEqual(x.grad!.toArray(), [2, 4, 6]);
  assert.throws(() => x.mul(2).backward(), { message: /^grad can be implicitly created only for scalar outputs/ });
  assert.throws(() => x.mul(2).backward(fromArray([1, 1])), { message: 'Mismatch in shape: grad_output[0] has a shape of [2] and output[0] has a shape of [3].' });
  assert.throws(() => fromArray([1]).backward(), { message: 'element 0 of tensors does not require grad and does not have a grad_fn' });
  const z = leaf([1, 2]);
  z.mul(3).backward(fromArray([1, -1]));
  assert.deepEqual(z.grad!.toArray(), [3, -3]);
  // a leaf's own backward accumulates the given gradient
  z.backward(fromArray([1, 1]));
  assert.deepEqual(z.grad!.toArray(), [4, -2]);
  assert.equal(y.gradFn!.name, 'sum');
  assert.ok(x.isLeaf && !y.isLeaf);
});

test('gradients accumulate across backward calls and paths; zeroGrad clears them', () => {
  const x = leaf([1, -2]);
  const f = () => F.add(x.mul(x), x.mul(3)).sum(); // x used on two paths
  f().backward();
  assert.deepEqual(x.grad!.toArray(), [5, -1]);
  const g = x.grad!;
  f().backward();
  assert.deepEqual(x.grad!.toArray(), [10, -2]);
  assert.equal(x.grad, g, 'accumulated in place into the same .grad tensor');
  assert.ok(!x.grad!.requiresGrad && x.grad!.gradFn === null, '.grad carries no history');
  const m = new Linear(2, 1);
  F.linear(x, m.weight, m.bias).sum().backward();
  m.zeroGrad(false);
  assert.deepEqual(m.weight.grad!.toArray(), [0, 0], 'zeroGrad(false) fills with zeros');
  m.zeroGrad();
  assert.equal(m.weight.grad, null, 'zeroGrad() drops the gradients');
});

test('retainGraph: a second backward through freed saved values is an error, retained ones work', () => {
  const x = leaf([0.5, 1.5]);
  const y = F.sigmoid(x).sum(); // sigmoid saves its input and output
  y.backward(null, { retainGraph: true });
  const once = x.grad!.toArray();
  y.backward();
  assert.deepEqual(x.grad!.toArray(), once.map((v) => 2 * v));
  assert.throws(() => y.backward(), { message: /^Trying to backward through the graph a second time/ });
  // a graph that saved nothing can run again, as in PyTorch
  const z = leaf([1, 2]);
  const s = F.add(z, z).sum();
  s.backward();
  s.backward();
  assert.deepEqual(z.grad!.toArray(), [4, 4]);
});

test('noGrad / enableGrad / setGradEnabled, and detach', () => {
  const x = leaf([1, 2]);
  assert.equal(isGradEnabled(), true);
  const y = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const inner = enableGrad(() => x.mul(2));
    assert.ok(inner.requiresGrad, 'enableGrad records inside noGrad');
    return x.mul(2);
  });
  assert.ok(!y.requiresGrad && y.gradFn === null);
  assert.equal(isGradEnabled(), true);
  assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.equal(isGradEnabled(), true, 'restored after a throw');
  setGradEnabled(false);
  assert.equal(x.mul(2).requiresGrad, false);
  setGradEnabled(true);
  const d = x.mul(2).detach();
  assert.ok(!d.requiresGrad && d.gradFn === null);
  F.add(x.mul(d), x).sum().backward(); // no gradient flows through d
  assert.deepEqual(x.grad!.toArray(), [3, 5]);
  const x2 = x.detach();
  x2.data[x2.offset] = 7;
  assert.equal(x.toArray()[0], 7, 'detach shares storage');
  assert.throws(() => x.mul(2).requiresGrad_(false), /you can only change requires_grad flags of leaf variables/);
});

test('in-place checks: leaves, saved tensors changed afterwards, views', () => {
  const w = leaf([1, -1]);
  assert.throws(() => F.relu(w, true), { message: /^a leaf tensor that requires grad is being used in an in-place operation \(relu_\)/ });
  assert.throws(() => F.addInPlace(w, 1), /in-place operation \(add_\)/);
  noGrad(() => F.addInPlace(w, 1)); // an optimizer-style update
  assert.deepEqual(w.toArray(), [2, 0]);
  // sigmoid saved a; changing a in place before backward is caught by its version counter
  const a = w.mul(1);
  const y = F.sigmoid(a).sum();
  F.addInPlace(a, 1);
  assert.throws(() => y.backward(), { message: /^one of the variables needed for gradient computation has been modified by an inplace operation: \[float32 \[2\]\], saved by unary, is at version 1; expected version 0 instead/ });
  // relu_ saves its output: changing it afterwards is caught too
  const r = F.relu(w.mul(1), true);
  const s = r.mul(2).sum();
  F.addInPlace(r, 1);
  assert.throws(() => s.backward(), /modified by an inplace operation/);
  // a view taken before its base changed in place
  const base = w.mul(1);
  const v = base.reshape([2, 1]);
  F.relu(base, true);
  assert.throws(() => v.sum().backward(), /modified by an inplace operation/);
  assert.throws(() => F.relu(w.mul(1).reshape([2, 1]), true), /in-place operations on a view \(reshape\)/);
  // a data write into a leaf (as loading weights) is allowed; copying a tensor in a graph into it is not
  w.copy_(fromArray([3, 4]));
  assert.throws(() => w.copy_(w.mul(2)), /leaf tensor that requires grad is being used in an in-place operation \(copy_\)/);
});

test("in-place ReLU and `out += identity` (torchvision's BasicBlock) give the out-of-place gradients", () => {
  const g = new Generator(3);
  const conv = new Conv2d(3, 3, 3, { padding: 1, bias: false, generator: g });
  const bn = new BatchNorm2d(3);
  const x = randn([2, 3, 5, 5], { generator: g });
  // 'inplace': add_ then relu_; 'fused': add_ with its relu flag (one pass, two nodes); 'bn-relu': batch norm with
  // its relu flag (the backward kernel masks), then a plain add; each against the out-of-place graph
  const run = (mode: 'outofplace' | 'inplace' | 'fused' | 'bn-relu', input: Tensor) => {
    const xi = input.clone().requiresGrad_(true);
    conv.zeroGrad();
    bn.zeroGrad();
    let h: Tensor;
    if (mode === 'bn-relu') h = F.add(bn.forward(conv.forward(xi), true), xi);
    else {
      h = bn.forward(conv.forward(xi));
      if (mode === 'fused') h = F.addInPlace(h, xi, { relu: true });
      else h = F.relu(mode === 'inplace' ? F.addInPlace(h, xi) : F.add(h, xi), mode === 'inplace');
    }
    F.mul(h, h).sum().backward();
    return [xi.grad!, conv.weight.grad!, bn.weight!.grad!, bn.bias!.grad!];
  };
  const b = run('outofplace', x);
  for (const mode of ['inplace', 'fused'] as const) run(mode, x).forEach((t, i) => assertClose(t, b[i], { atol: 1e-6, rtol: 1e-6, what: `${mode}: gradient ${i}` }));
  // relu before the add
  const ref = (() => {
    const xi = x.clone().requiresGrad_(true);
    conv.zeroGrad();
    bn.zeroGrad();
    const h = F.add(F.relu(bn.forward(conv.forward(xi))), xi);
    F.mul(h, h).sum().backward();
    return [xi.grad!, conv.weight.grad!, bn.weight!.grad!, bn.bias!.grad!];
  })();
  run('bn-relu', x).forEach((t, i) => assertClose(t, ref[i], { atol: 1e-6, rtol: 1e-6, what: `bn-relu: gradient ${i}` }));
  // a whole BasicBlock in training mode: fused (bn+relu, add+relu) against module by module
  const block = new BasicBlock(3, 3).train();
  const grads = (fused: boolean) => {
    block.zeroGrad();
    const xi = x.clone().requiresGrad_(true);
    const y = fused ? block.forward(xi) : withoutFusion(() => block.forward(xi));
    F.mul(y, y).sum().backward();
    return [y.detach(), xi.grad!, ...block.parameters().map((p) => p.grad!)];
  };
  const f = grads(true), u = grads(false);
  f.forEach((t, i) => assertClose(t, u[i], { atol: 1e-6, rtol: 1e-5, what: `BasicBlock ${i === 0 ? 'output' : `gradient ${i}`}` }));
});

test('BatchNorm2d in a recorded train forward: running stats and num_batches_tracked as without a graph', () => {
  const g = new Generator(5);
  const x = randn([2, 3, 4, 4], { generator: g });
  const a = new BatchNorm2d(3), b = new BatchNorm2d(3);
  const ya = a.forward(x.clone().requiresGrad_(true));
  const yb = noGrad(() => b.forward(x));
  assert.ok(ya.requiresGrad && !yb.requiresGrad);
  assertClose(ya.detach(), yb, { atol: 0 });
  assertClose(a.running_mean!, b.running_mean!, { atol: 0 });
  assertClose(a.running_var!, b.running_var!, { atol: 0 });
  assert.equal(a.num_batches_tracked!.item(), 1);
  assert.ok(!a.running_mean!.requiresGrad && a.running_mean!.gradFn === null, 'the running statistics are not in the graph');
  ya.sum().backward();
  assert.ok(a.weight!.grad && a.bias!.grad);
});

test('requiresGrad_ on a module freezes it; nothing is recorded when nothing requires grad', () => {
  const seq = new Sequential(new Linear(3, 4), new ReLU(), new Linear(4, 2));
  seq.at<Linear>(0).requiresGrad_(false);
  const x = randn([5, 3]);
  F.crossEntropy(seq.forward(x) as Tensor, fromArray([0n, 1n, 1n, 0n, 1n], [5], { dtype: 'int64' })).backward();
  assert.equal(seq.at<Linear>(0).weight.grad, null, 'frozen: no gradient');
  assert.ok(seq.at<Linear>(2).weight.grad, 'trainable: a gradient');
  assert.equal(seq.numParameters(true), 4 * 2 + 2);
  seq.requiresGrad_(false);
  const y = seq.forward(x) as Tensor;
  assert.ok(!y.requiresGrad && y.gradFn === null, 'nothing requires grad: no node');
  const z = F.conv2d(randn([1, 2, 4, 4]), randn([2, 2, 3, 3]));
  assert.equal(z.gradFn, null);
});

test('gradient dtypes follow their inputs; float64 needs the js backend for backend ops', () => {
  const x = leaf([1, 2]);
  const y = x.to('float64').mul(fromArray(new Float64Array([3, 4]), [2], { dtype: 'float64' })).sum();
  assert.equal(y.dtype, 'float64');
  y.backward();
  assert.equal(x.grad!.dtype, 'float32');
  assert.deepEqual(x.grad!.toArray(), [3, 4]);
  const x64 = randn([1, 2, 4, 4], { dtype: 'float64' });
  const w64 = randn([2, 2, 3, 3], { dtype: 'float64' });
  assert.equal(withBackend('js', () => F.conv2d(x64, w64)).dtype, 'float64');
  assert.throws(() => withBackend('js', () => F.conv2d(x64, randn([2, 2, 3, 3]))), /Expected a float64 tensor \(the dtype of the op's input\) for conv2d weight/);
  for (const b of backends()) {
    if (b.name === 'native' && !b.skip) {
      assert.throws(() => withBackend('native', () => F.conv2d(x64, w64)), { message: "conv2d: float64 tensors run only on the js backend (the native kernels are float32); use withBackend('js', ...) or convert with .float()" });
    }
  }
});

for (const b of backends()) {
  test(`eval-mode fusion and recycling with a graph: input gradients equal the unfused ones [${b.name}]`, { skip: b.skip }, () => withBackend(b.name, () => {
    assert.equal(backendInfo().name, b.name);
    const model = resnet18({ numClasses: 4, seed: 1 }).eval();
    const x = randn([1, 3, 64, 64], { generator: new Generator(8) });
    const inputGrad = (fused: boolean) => {
      const xi = x.clone().requiresGrad_(true);
      const run = () => (model.forward(xi) as Tensor).sum().backward();
      if (fused) run();
      else withoutFusion(run);
      return xi.grad!;
    };
    // frozen parameters: the fused path (folded conv+BN, recycling) records nodes for the input only
    model.requiresGrad_(false);
    const fusedGrad = inputGrad(true), plainGrad = inputGrad(false);
    assertClose(fusedGrad, plainGrad, { scale: 1e-5, what: 'dL/dx fused vs unfused' });
    // trainable parameters and an input in the graph: the pairs run unfused, so the parameters get gradients
    model.requiresGrad_(true);
    model.zeroGrad();
    const g1 = inputGrad(true);
    assertClose(g1, plainGrad, { scale: 1e-5, what: 'dL/dx with trainable parameters' });
    assert.ok(model.conv1.weight.grad && model.layer4.at<BasicBlock>(0).conv2.weight.grad && model.fc.weight.grad, 'eval mode: parameters got gradients');
    const w1 = model.conv1.weight.grad!.clone();
    model.zeroGrad();
    inputGrad(false);
    assertClose(w1, model.conv1.weight.grad!, { scale: 1e-5, what: 'conv1 weight gradient fused-path vs unfused' });
    // an input that needs no gradient (an image): eval mode still gives every parameter its gradient, as PyTorch
    model.zeroGrad();
    (model.forward(x) as Tensor).sum().backward();
    assertClose(model.conv1.weight.grad!, w1, { scale: 1e-5, what: 'conv1 weight gradient, eval mode, plain input' });
    // under noGrad the same forward folds and records nothing
    const y = noGrad(() => model.forward(x) as Tensor);
    assert.equal(y.gradFn, null);
  }));
}

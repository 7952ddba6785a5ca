// nn mechanics: registration order, names, parameters vs buffers, train/eval, apply, state dicts and their errors,
// initialisation rules, and eval-mode conv+BN folding equal to the unfused modules.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { fromArray, randn, zeros } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { BatchNorm2d, Conv2d, Flatten, Identity, Linear, MaxPool2d, Module, ReLU, Sequential, StateDictError, convBnAct, getActivation } from '../../src/nn/index.js';
import { kaimingNormal_ } from '../../src/nn/init.js';
import { resnet18 } from '../../src/models/resnet.js';
import { assertClose } from '../helpers.js';

class Net extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;
  head: Sequential;
  constructor() {
    super();
    this.conv = new Conv2d(3, 4, 3, { bias: false, generator: new Generator(1) });
    this.bn = new BatchNorm2d(4);
    this.head = new Sequential(new Flatten(), new Linear(4 * 6 * 6, 2, { generator: new Generator(2) }));
  }
  override forward(x: Tensor): Tensor {
    return this.head.forward(this.bn.forward(this.conv.forward(x)));
  }
}

test('registration order gives PyTorch state_dict keys; parameters and buffers are told apart', () => {
  const n = new Net();
  assert.deepEqual([...n.stateDict().keys()], [
    'conv.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked', 'head.1.weight', 'head.1.bias']);
  assert.deepEqual(n.namedParameters().map((e) => e[0]), ['conv.weight', 'bn.weight', 'bn.bias', 'head.1.weight', 'head.1.bias']);
  assert.deepEqual(n.namedBuffers().map((e) => e[0]), ['bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
  assert.equal(n.stateDict().get('bn.num_batches_tracked')!.dtype, 'int64');
  assert.deepEqual([...n.namedModules()].map((e) => e[0]), ['', 'conv', 'bn', 'head', 'head.0', 'head.1']);
  assert.equal(n.numParameters(), 4 * 3 * 9 + 4 + 4 + 144 * 2 + 2);
  // replacing a child keeps its place (the tutorial's fc swap)
  n.conv = new Conv2d(3, 4, 3);
  assert.deepEqual([...n.stateDict().keys()].slice(0, 2), ['conv.weight', 'conv.bias']);
  // a parameter shared by two modules is listed once
  const a = new Linear(2, 2), s = new Sequential(a, a);
  assert.equal(s.parameters().length, 2);
});

test('train()/eval() reach every module; apply visits children first', () => {
  const n = new Net();
  n.eval();
  assert.ok(n.modules().every((m) => !m.training));
  n.train();
  assert.ok(n.modules().every((m) => m.training));
  const order: string[] = [];
  n.apply((m) => order.push(m.constructor.name));
  assert.deepEqual(order, ['Conv2d', 'BatchNorm2d', 'Flatten', 'Linear', 'Sequential', 'Net']);
});

test('loadStateDict: strict errors list every problem; strict false loads the rest', () => {
  const src = new Net();
  const dst = new Net();
  dst.head = new Sequential(new Flatten(), new Linear(144, 5));
  const sd = src.stateDict();
  sd.set('extra.weight', zeros([1]));
  sd.delete('bn.bias');
  assert.throws(() => dst.loadStateDict(sd), (e: unknown) => {
    assert.ok(e instanceof StateDictError);
    assert.match(e.message, /Error\(s\) in loading state_dict for Net:/);
    assert.match(e.message, /Missing key\(s\) in state_dict: "bn.bias"\./);
    assert.match(e.message, /Unexpected key\(s\) in state_dict: "extra.weight"\./);
    assert.match(e.message, /size mismatch for head.1.weight: copying a param with shape \[2, 144\] from checkpoint, the shape in current model is \[5, 144\]/);
    return true;
  });
  const before = dst.conv.weight.toArray();
  assert.deepEqual(dst.conv.weight.toArray(), before, 'a failed strict load changes nothing');
  const r = dst.loadStateDict(sd, { strict: false });
  assert.deepEqual(r.missingKeys, ['bn.bias']);
  assert.deepEqual(r.unexpectedKeys, ['extra.weight']);
  assert.deepEqual(r.mismatchedKeys.map((m) => m.key), ['head.1.weight', 'head.1.bias']);
  assert.deepEqual(dst.conv.weight.toArray(), src.conv.weight.toArray());
  // plain objects work too, and `__proto__` is an ordinary key
  const obj = Object.fromEntries(src.stateDict());
  assert.doesNotThrow(() => new Net().loadStateDict(obj));
  const weird = new Map(src.stateDict());
  weird.set('__proto__', zeros([1]));
  assert.deepEqual(new Net().loadStateDict(weird, { strict: false }).unexpectedKeys, ['__proto__']);
});

test('loading bumps versions so cached folded weights are rebuilt', () => {
  const m = resnet18({ seed: 1 }).eval();
  const x = randn([1, 3, 32, 32], { generator: new Generator(3) });
  const y1 = m.forward(x);
  const other = resnet18({ seed: 2 });
  m.loadStateDict(other.stateDict());
  const y2 = m.forward(x);
  const y3 = other.eval().forward(x);
  assert.notDeepEqual(y1.toArray(), y2.toArray());
  assertClose(y2, y3, { atol: 0, what: 'reloaded model equals the source model' });
});

test('initialisation: PyTorch defaults and seeded reproducibility', () => {
  const c = new Conv2d(16, 32, 3, { generator: new Generator(0) });
  const bound = 1 / Math.sqrt(16 * 9);
  assert.ok(c.weight.toArray().every((v) => Math.abs(v) <= bound + 1e-7), 'default conv init is U(-1/sqrt(fan_in), 1/sqrt(fan_in))');
  assert.ok(c.bias!.toArray().every((v) => Math.abs(v) <= bound + 1e-7));
  const l = new Linear(100, 10, { generator: new Generator(0) });
  assert.ok(l.weight.toArray().every((v) => Math.abs(v) <= 0.1 + 1e-7));
  const big = zeros([256, 128, 3, 3]);
  kaimingNormal_(big, { mode: 'fan_out', nonlinearity: 'relu', generator: new Generator(9) });
  const vals = big.toArray();
  const sd = Math.sqrt(vals.reduce((s, v) => s + v * v, 0) / vals.length);
  const want = Math.sqrt(2 / (256 * 9));
  assert.ok(Math.abs(sd / want - 1) < 0.01, `kaiming fan_out std ${sd} vs ${want}`);
  const a = new Conv2d(3, 3, 3, { generator: new Generator(5) }).weight.toArray();
  assert.deepEqual(new Conv2d(3, 3, 3, { generator: new Generator(5) }).weight.toArray(), a);
});

test('BatchNorm2d: train mode updates running stats and counts batches; momentum null averages', () => {
  const bn = new BatchNorm2d(2, { momentum: null });
  const x1 = fromArray([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 1, 2]);
  bn.forward(x1);
  bn.forward(x1.mul(2));
  assert.equal(bn.num_batches_tracked!.item(), 2);
  // channel 0 holds {1,2,10,20} and {2,4,20,40}: means 8.25 and 16.5, cumulative average 12.375
  assert.ok(Math.abs(bn.running_mean!.toArray()[0] - 12.375) < 1e-5);
  assert.throws(() => bn.forward(zeros([2, 2, 3]) as Tensor), /expected 4D input \(got 3D input\)/);
});

test('eval-mode conv+BN folding matches the unfused modules (with residual and relu)', () => {
  const g = new Generator(11);
  const conv = new Conv2d(5, 7, 3, { padding: 1, stride: 2, generator: g });
  const bn = new BatchNorm2d(7);
  bn.weight!.copy_(randn([7], { generator: g }));
  bn.bias!.copy_(randn([7], { generator: g }));
  bn.running_mean!.copy_(randn([7], { generator: g }));
  bn.running_var!.copy_(randn([7], { generator: g }).abs().add(0.5));
  conv.eval();
  bn.eval();
  const x = randn([2, 5, 9, 11], { generator: g });
  const res = randn([2, 7, 5, 6], { generator: g });
  const fused = convBnAct(conv, bn, x, { residual: res, act: new ReLU() });
  const plain = bn.forward(conv.forward(x)).add(res).relu();
  assertClose(fused, plain, { atol: 1e-5, rtol: 1e-5, what: 'fused vs unfused' });
  // changing a BN buffer in place invalidates the folded copy
  bn.running_mean!.fill_(0);
  const fused2 = convBnAct(conv, bn, x, { act: getActivation('gelu') });
  const plain2 = getActivation('gelu').forward(bn.forward(conv.forward(x))) as Tensor;
  assertClose(fused2, plain2, { atol: 1e-5, rtol: 1e-5, what: 'refolded after an in-place change' });
});

test('simple modules: Identity, Flatten, MaxPool2d argument checks, Sequential indexing', () => {
  const x = randn([2, 3, 4, 4]);
  assert.equal(new Identity().forward(x), x);
  assert.deepEqual([...new Flatten().forward(x).shape], [2, 48]);
  assert.throws(() => new MaxPool2d(2, { padding: 3 }), /pad should be at most half/);
  const s = new Sequential(new ReLU(), new Identity());
  assert.equal(s.length, 2);
  assert.ok(s.at(-1) instanceof Identity);
  assert.throws(() => s.at(2), /out of range/);
  assert.throws(() => getActivation('nope'), /function nope not found in ACT2FN mapping/);
});

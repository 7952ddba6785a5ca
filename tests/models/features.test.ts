// Forward hooks (nn/module.ts) and the feature extractor (models/features.ts) against torchvision 0.14's
// feature_extraction (scripts/fixtures/make_features.py): node names, outputs of every resnet18 node and of the
// resnet50 nodes stored (eval mode, both backends), scope queries (layer3, layer3.5), output order, train mode.
// Hooks: add/remove, pre-hooks and output replacement, hooks on containers the fused forward would skip, and
// fused == unfused within float tolerance. Node values: see checkNode (the logits rule against PyTorch's float64 answer).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { extractStateDict, readPthSync } from '../../src/io/pth.js';
import { withBackend } from '../../src/backend/select.js';
import { Module, hasInstanceForward } from '../../src/nn/module.js';
import { ReLU, Sequential } from '../../src/nn/layers.js';
import { fusesConvBnAct, withoutFusion } from '../../src/nn/fused.js';
import { type ResNet, resnet18, resnet50 } from '../../src/models/resnet.js';
import { ResNetBottleNeckLayer, ResNetConfig, ResNetModel, type ResNetStage } from '../../src/models/hf.js';
import { createFeatureExtractor, getGraphNodeNames } from '../../src/models/features.js';
import { skipInit } from '../../src/nn/init.js';
import { assertClose, backends, compare, fixture } from '../helpers.js';

const TOL = { scale: 1e-4, atol: 1e-5 };
const BACKENDS = backends();

interface ArchInfo {
  train_names: string[];
  eval_names: string[];
  nodes: string[];
  prefixes: string[];
  order: { request: string[] | Record<string, string>; keys: string[] }[];
  rectified_by_inplace_relu: string[];
  train_nodes?: string[];
}
const INFO = JSON.parse(readFileSync(fixture('features', 'features.json'), 'utf8')) as Record<string, ArchInfo>;

/** The torchvision model of the fixtures: built with constant init (cheap), then torchvision's weights from the .pth. */
function loadModel(arch: 'resnet18' | 'resnet50'): ResNet {
  const model = skipInit(() => (arch === 'resnet18' ? resnet18 : resnet50)());
  model.loadStateDict(extractStateDict(readPthSync(fixture('features', `${arch}.pth`)).object));
  return model.eval();
}

function tensors(arch: string): Map<string, Tensor> {
  return readSafetensorsSync(fixture('features', `${arch}.safetensors`)).tensors;
}

/**
 * A node's value against PyTorch's float32 and float64 answers. The reference is the exact (float64) answer: deep
 * nodes of these random-weight models are ~1e-4 of their scale away from it in PyTorch's own float32 (resnet50
 * layer4.2.bn3: 9.7e-5), so ours must be within the logits rule of it, or no further from it than twice PyTorch's
 * float32 error (+ atol).
 */
function checkNode(ours: Tensor, torch32: Tensor, f64: Tensor, what: string): { oursRel: number; torchRel: number } {
  assert.deepEqual([...ours.shape], [...torch32.shape], `${what}: shape`);
  const r = compare(ours, f64), t = compare(torch32, f64);
  const tol = Math.max(TOL.scale * r.maxRef, 2 * t.maxAbs) + TOL.atol;
  assert.ok(r.maxAbs <= tol, `${what}: |ours - f64| ${r.maxAbs.toExponential(3)} > ${tol.toExponential(3)} (max|f64| ${r.maxRef.toExponential(3)}, |torch32 - f64| ${t.maxAbs.toExponential(3)})`);
  return { oursRel: r.maxAbs / r.maxRef, torchRel: t.maxAbs / t.maxRef };
}

const small = (): ResNet => skipInit(() => resnet18());

for (const arch of ['resnet18', 'resnet50'] as const) {
  test(`${arch}: getGraphNodeNames equals torchvision's (train and eval)`, () => {
    const [train, evalNames] = getGraphNodeNames(arch === 'resnet18' ? small() : skipInit(() => resnet50()));
    assert.deepEqual(train, INFO[arch].train_names);
    assert.deepEqual(evalNames, INFO[arch].eval_names);
    if (arch === 'resnet50') {
      for (const n of ['layer3.5.conv1', 'layer3.5.relu', 'layer3.5.relu_1', 'layer3.5.relu_2', 'layer3.5.add']) assert.ok(evalNames.includes(n), n);
    }
  });

  test(`${arch}: node outputs equal torchvision's (eval, 1x3x64x64, every backend)`, async (t) => {
    const info = INFO[arch];
    const ts = tensors(arch);
    const model = loadModel(arch);
    const x = ts.get('input')!;
    for (const be of BACKENDS) {
      await t.test(be.name, { skip: be.skip }, () => withBackend(be.name, () => {
        const out = createFeatureExtractor(model, { returnNodes: info.nodes }).forward(x);
        assert.deepEqual(Object.keys(out), info.nodes, 'outputs in graph order');
        let worst = { rel: 0, node: '', torchRel: 0 };
        for (const n of info.nodes) {
          const r = checkNode(out[n], ts.get(`node.${n}`)!, ts.get(`node64.${n}`)!, `${arch} ${n} [${be.name}]`);
          if (r.oursRel > worst.rel) worst = { rel: r.oursRel, node: n, torchRel: r.torchRel };
        }
        t.diagnostic(`${be.name}: ${info.nodes.length} nodes; worst |ours - f64| / max|f64| ${worst.rel.toExponential(1)} at ${worst.node} (PyTorch float32 there: ${worst.torchRel.toExponential(1)})`);
      }));
    }
    // scope queries (layer3, layer3.5: the module's last node), each asked alone as in the fixture
    for (const q of info.prefixes) {
      const o = createFeatureExtractor(model, { returnNodes: [q] }).forward(x);
      checkNode(o[q], ts.get(`prefix.${q}`)!, ts.get(`prefix64.${q}`)!, `${arch} scope query ${q}`);
    }
    // torchvision's inplace ReLUs overwrite bn1, the bnN before a relu and every add; we return the computed values
    const rect = info.rectified_by_inplace_relu;
    assert.ok(rect.includes('bn1') && rect.some((n) => n.endsWith('.add')), `rectified: ${rect}`);
    for (const n of rect) assert.match(n, /(^|\.)(bn\d|add)$/, n);
    const out = createFeatureExtractor(model, { returnNodes: rect }).forward(x);
    for (const n of rect) assert.ok(out[n].toArray().some((v) => v < 0), `${n} keeps its negative values`);
  });

  test(`${arch}: output order and renaming as torchvision's`, () => {
    const model = arch === 'resnet18' ? small() : skipInit(() => resnet50());
    model.eval();
    const x = randn([1, 3, 32, 32], { generator: new Generator(1) });
    for (const { request, keys } of INFO[arch].order) {
      const fe = createFeatureExtractor(model, { returnNodes: request });
      assert.deepEqual(fe.outputNames, keys, JSON.stringify(request));
      if (arch === 'resnet18') assert.deepEqual(Object.keys(fe.forward(x)), keys, JSON.stringify(request));
    }
  });
}

test('resnet18: train-mode node outputs equal torchvision\'s (batch statistics)', () => {
  const info = INFO.resnet18;
  const ts = tensors('resnet18');
  const model = loadModel('resnet18').train();
  const fe = createFeatureExtractor(model, { returnNodes: info.train_nodes! });
  const out = fe.forward(ts.get('input_train')!);
  for (const n of info.train_nodes!) assertClose(out[n], ts.get(`train.${n}`)!, { ...TOL, what: `train ${n}` });
});

test('extractor: scope queries, the input node, early stop, errors', () => {
  const model = small().eval();
  const x = randn([1, 3, 32, 32], { generator: new Generator(2) });
  const full = createFeatureExtractor(model, { returnNodes: ['layer2.1.relu_1', 'layer2', 'x', 'fc'] }).forward(x);
  assert.equal(full.x, x);
  assert.deepEqual([...full.layer2.toArray()], [...full['layer2.1.relu_1'].toArray()], 'layer2 is its last node');
  assertClose(full.fc, model.forward(x) as Tensor, { ...TOL, what: 'fc node vs forward' });
  // the forward stops once every requested node has been seen
  let fcCalls = 0;
  const h = model.fc.registerForwardHook(() => void fcCalls++);
  createFeatureExtractor(model, { returnNodes: ['layer1'] }).forward(x);
  assert.equal(fcCalls, 0, 'fc did not run for layer1');
  h.remove();
  assert.ok(!hasInstanceForward(model.layer1.at(1)), 'the extractor removed its hooks');
  assert.throws(() => createFeatureExtractor(model, { returnNodes: ['layer5'] }), { message: /^node: 'layer5' is not present in model\. Hint: use `getGraphNodeNames`/ });
  assert.throws(() => createFeatureExtractor(model, { returnNodes: ['layer1.0.relu_2'] }), /'layer1\.0\.relu_2' is not present/);
  assert.throws(() => createFeatureExtractor(model, { returnNodes: ['lay'] }), /'lay' is not present/);
  assert.throws(() => createFeatureExtractor(model, { returnNodes: ['fc'], trainReturnNodes: ['fc'] }), /Either `returnNodes` or `trainReturnNodes` and `evalReturnNodes`/);
  assert.throws(() => createFeatureExtractor(model, { returnNodes: { layer1: 'a', layer2: 'a' } }), /names an output twice/);
  const hf = skipInit(() => new ResNetModel(new ResNetConfig({ depths: [1, 1], hiddenSizes: [8, 16], embeddingSize: 8 })));
  assert.throws(() => createFeatureExtractor(hf, { returnNodes: ['encoder'] }), /outputHiddenStates: true.*ResNetBackbone/);
  // train / eval node lists, chosen by the model's mode
  const fe = createFeatureExtractor(model, { trainReturnNodes: ['layer1'], evalReturnNodes: ['layer2', 'fc'] });
  assert.deepEqual(Object.keys(fe.forward(x)), ['layer2', 'fc']);
  fe.train();
  assert.equal(model.training, true);
  assert.deepEqual(fe.outputNames, ['layer1']);
  model.eval();
  assert.deepEqual(fe.outputNames, ['layer2', 'fc']);
  assert.deepEqual([...fe.stateDict().keys()], [...model.stateDict().keys()], 'the extractor shares the model\'s modules');
});

test('hooks: register, order, pre-hooks, replacing the output, remove', () => {
  class Double extends Module {
    override forward(x: Tensor): Tensor {
      return x.mul(2);
    }
  }
  const m = new Double();
  const x = randn([3], { generator: new Generator(3) });
  const seen: string[] = [];
  const h1 = m.registerForwardHook((mod, inputs, out) => {
    assert.equal(mod, m);
    assert.equal(inputs[0], x);
    assertClose(out as Tensor, x.mul(2));
    seen.push('h1');
  });
  const h2 = m.registerForwardHook(() => void seen.push('h2'), { prepend: true });
  assert.ok(m.hasHooks() && hasInstanceForward(m));
  assert.ok(!Object.keys(m).includes('forward'), 'the wrapper is not enumerable (not a child or parameter)');
  m.forward(x);
  assert.deepEqual(seen, ['h2', 'h1']);
  h1.remove();
  const pre = m.registerForwardPreHook((_m, inputs) => (inputs[0] as Tensor).add(1));
  const rep = m.registerForwardHook((_m, _i, out) => (out as Tensor).add(10));
  assertClose(m.forward(x) as Tensor, x.add(1).mul(2).add(10), { what: 'pre-hook input, hook output' });
  for (const h of [h1, h2, pre, rep]) h.remove();
  h1.remove(); // twice is harmless
  assert.ok(!m.hasHooks() && !hasInstanceForward(m), 'forward is the class\'s again');
  assertClose(m.forward(x) as Tensor, x.mul(2));
  // a caller's own patch survives hooks coming and going
  m.forward = (t: Tensor) => t.mul(3);
  const h = m.registerForwardHook(() => 'replaced');
  assert.equal(m.forward(x), 'replaced');
  h.remove();
  assertClose(m.forward(x) as Tensor, x.mul(3));
  assert.throws(() => m.registerForwardHook(42 as never), /Expected a function for the forward hook/);
});

test('hooks see every module of the fused torchvision forward; fused == unfused', (t) => noGrad(() => { // inference: fused path
  const model = loadModel('resnet18');
  const x = randn([2, 3, 64, 64], { generator: new Generator(5) });
  const fused = model.forward(x) as Tensor;
  assert.ok(fusesConvBnAct(model.conv1, model.bn1, model.relu), 'eval mode fuses the stem');
  const unfused = withoutFusion(() => model.forward(x) as Tensor);
  const r = assertClose(unfused, fused, { ...TOL, what: 'withoutFusion vs fused logits' });
  // a hook on every module: each is called (layer1..4 included, though the fused forward iterates their blocks)
  const calls = new Map<string, number>();
  const handles = [...model.namedModules()].slice(1).map(([name, m]) => m.registerForwardHook(() => void calls.set(name, (calls.get(name) ?? 0) + 1)));
  assert.ok(!fusesConvBnAct(model.conv1, model.bn1, model.relu), 'hooked modules are not folded');
  const hooked = model.forward(x) as Tensor;
  for (const [name] of [...model.namedModules()].slice(1)) assert.ok(calls.get(name)! >= 1, `${name} was called`);
  assert.equal(calls.get('layer1.0.relu'), 2);
  assert.equal(calls.get('layer4'), 1);
  assert.deepEqual(hooked.toArray(), unfused.toArray(), 'hooks on every module == withoutFusion, exactly');
  for (const h of handles) h.remove();
  assert.ok(fusesConvBnAct(model.conv1, model.bn1, model.relu), 'fusion is back once the hooks are gone');
  assert.deepEqual((model.forward(x) as Tensor).toArray(), fused.toArray(), 'fused again, bit for bit');
  t.diagnostic(`fused vs unfused logits: max |diff| ${r.maxAbs.toExponential(2)} (max |logit| ${r.maxRef.toFixed(2)})`);
}));

test('hooks: an output kept by a hook is not recycled by the fused forward', () => {
  const model = loadModel('resnet18');
  const x = randn([1, 3, 96, 96], { generator: new Generator(6) });
  let kept: Tensor | null = null, copy: number[] = [];
  const h = model.layer1.at(0).registerForwardHook((_m, _i, out) => {
    kept = out as Tensor;
    copy = kept.toArray();
  });
  const y = model.forward(x) as Tensor;
  h.remove();
  assert.deepEqual(kept!.toArray(), copy, 'the hooked block output was not reused by a later op');
  // hooks on a layer Sequential and on the avgpool fire, and the logits do not change
  const shapes: number[][] = [];
  const hs = [model.layer4, model.avgpool].map((m) => m.registerForwardHook((_m, _i, out) => void shapes.push([...(out as Tensor).shape])));
  assertClose(model.forward(x) as Tensor, y, { ...TOL, what: 'logits with hooks' });
  hs.forEach((e) => e.remove());
  assert.deepEqual(shapes, [[1, 512, 3, 3], [1, 512, 1, 1]]);
});

test('hooks on Hugging Face modules the fused path would skip', () => {
  const config = new ResNetConfig({ depths: [1, 1], hiddenSizes: [8, 16], embeddingSize: 8, layerType: 'bottleneck' });
  const model = new ResNetModel(config, { seed: 1 }).eval();
  const x = randn([1, 3, 32, 32], { generator: new Generator(7) });
  const ref = model.forward(x).lastHiddenState;
  const last = model.encoder.stages.at<ResNetStage>(0).layers.at<ResNetBottleNeckLayer>(0).layer.at(2);
  let called = 0;
  const h = last.registerForwardHook(() => void called++);
  assertClose(model.forward(x).lastHiddenState, ref, { ...TOL, what: 'HF with a hook on the last conv layer' });
  h.remove();
  assert.equal(called, 1);
});

test('a patched forward is called instead of being fused away', () => {
  const model = loadModel('resnet18');
  const x = randn([1, 3, 32, 32], { generator: new Generator(8) });
  const relu = model.layer2.at<Module & { relu: ReLU }>(1).relu;
  const ds = model.layer2.at<Module & { downsample: Sequential }>(0).downsample;
  let reluCalls = 0, dsCalls = 0;
  relu.forward = (t: Tensor) => (reluCalls++, t.relu());
  const inner = ds.forward.bind(ds);
  ds.forward = (t: Tensor) => (dsCalls++, inner(t));
  assert.ok(hasInstanceForward(relu) && hasInstanceForward(ds));
  const y = model.forward(x) as Tensor;
  assert.equal(reluCalls, 2, 'the block\'s relu ran twice as a module');
  assert.equal(dsCalls, 1, 'the downsample Sequential ran as a module');
  delete (relu as { forward?: unknown }).forward;
  delete (ds as { forward?: unknown }).forward;
  assertClose(y, model.forward(x) as Tensor, { ...TOL, what: 'patched == fused' });
});

// The Hugging Face family against PyTorch: every case of scripts/fixtures/make_hf.py (hf_reference.py, a PyTorch
// transcription of transformers' ResNet, is the oracle) on every backend; transformers' state-dict keys in order;
// config.json as transformers writes it and every config error; the torchvision <-> transformers map, checked by
// running a torchvision ResNet (tests/fixtures/gen/torchvision) through ResNetForImageClassification.
// Tolerance for every model output: |ours - torch| <= 1e-4 * max|torch| + 1e-5 per tensor (the logits rule: float32
// sums over thousands of terms, accumulated in another order). Each parity test reports max|diff| and max|ref|.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.js';
import { fromArray, randn } from '../../src/tensor/creation.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { withBackend } from '../../src/backend/select.js';
import { BatchNorm2d, Conv2d, Identity, Linear, Module } from '../../src/nn/index.js';
import {
  ResNetBackbone, ResNetConfig, ResNetForImageClassification, ResNetModel, ResNetBottleNeckLayer, ResNetBasicLayer,
  ResNetConvLayer, ResNetShortCut, type HFModelOptions,
} from '../../src/models/hf.js';
import { hfConfigForTorchvision, hfToTorchvision, torchvisionArchForHF, torchvisionToHF } from '../../src/models/convert.js';
import { BasicBlock, Bottleneck, ResNet, resnet18, resnet50 } from '../../src/models/resnet.js';
import { assertClose, backends, fixture, tempDir } from '../helpers.js';

const TOL = { atol: 1e-5, scale: 1e-4 };
type ModelClass = new (c: ResNetConfig, o?: HFModelOptions) => Module;
const CLASSES: Record<string, ModelClass> = { ResNetForImageClassification, ResNetModel, ResNetBackbone };

interface Case { name: string; class: string; train: boolean; what: string; input: number[] }
const cases = JSON.parse(readFileSync(fixture('hf', 'cases.json'), 'utf8')) as Case[];

function loadCase(c: Case) {
  const w = readSafetensorsSync(fixture('hf', `${c.name}.safetensors`));
  const io = readSafetensorsSync(fixture('hf', `${c.name}.io.safetensors`));
  const config = ResNetConfig.fromJSONString(w.metadata!.config, `${c.name}.safetensors`);
  const model = new CLASSES[c.class](config, { seed: 1 });
  model.loadStateDict(w.tensors);
  const t = (k: string) => {
    const v = io.tensors.get(k);
    assert.ok(v, `${c.name}.io.safetensors has no ${k}`);
    return v;
  };
  return { config, model, io, t, meta: io.metadata! };
}

/** All of a case's eval or train outputs next to PyTorch's; returns the worst |diff| and max|ref| over them. */
function runCase(c: Case): { maxAbs: number; maxRef: number } {
  const { config, model, io, t, meta } = loadCase(c);
  const x = t('input');
  if (c.train) model.train();
  else model.eval();
  const pairs: [string, Tensor][] = [];
  const labels = io.tensors.get('labels');
  if (model instanceof ResNetForImageClassification) {
    const out = model.forward(x, { labels, outputHiddenStates: true });
    pairs.push(['logits', out.logits]);
    if (labels) pairs.push(['loss', out.loss!]);
    else assert.equal(out.loss, undefined);
    out.hiddenStates!.forEach((h, i) => pairs.push([`hidden_states.${i}`, h]));
    assert.equal(config.problemType, JSON.parse(meta.problem_type));
  } else if (model instanceof ResNetModel) {
    const out = model.forward(x, { outputHiddenStates: true });
    pairs.push(['last_hidden_state', out.lastHiddenState], ['pooler_output', out.poolerOutput]);
    out.hiddenStates!.forEach((h, i) => pairs.push([`hidden_states.${i}`, h]));
  } else if (model instanceof ResNetBackbone) {
    const out = model.forward(x, { outputHiddenStates: true });
    assert.deepEqual(model.outFeatures, JSON.parse(meta.out_features));
    assert.deepEqual(model.channels, JSON.parse(meta.channels));
    assert.equal(out.featureMaps.length, model.outFeatures.length);
    out.featureMaps.forEach((f, i) => pairs.push([`feature_maps.${i}`, f]));
    out.hiddenStates!.forEach((h, i) => pairs.push([`hidden_states.${i}`, h]));
  }
  const hidden = [...io.tensors.keys()].filter((k) => k.startsWith('hidden_states.')).length;
  assert.equal(pairs.filter(([k]) => k.startsWith('hidden_states.')).length, hidden, 'number of hidden states');
  if (c.train) {
    const sd = model.stateDict();
    for (const k of io.tensors.keys()) if (k.startsWith('after.')) pairs.push([k, sd.get(k.slice('after.'.length))!]);
  }
  let maxAbs = 0, maxRef = 0;
  for (const [k, ours] of pairs) {
    assert.ok(ours, `${c.name}: no ${k} on our side`);
    const ref = t(k);
    if (ref.dtype === 'int64') {
      assert.deepEqual(ours.toArray(), ref.toArray(), `${c.name}: ${k}`);
      continue;
    }
    const r = assertClose(ours, ref, { ...TOL, what: `${c.name}: ${k}` });
    if (k === 'logits' || k === 'last_hidden_state' || k.startsWith('feature_maps')) {
      maxAbs = Math.max(maxAbs, r.maxAbs);
      maxRef = Math.max(maxRef, r.maxRef);
    }
  }
  return { maxAbs, maxRef };
}

test('every fixture case is present', () => {
  assert.ok(cases.length >= 16, `cases.json lists ${cases.length} cases`);
  for (const c of cases) {
    fixture('hf', `${c.name}.safetensors`);
    fixture('hf', `${c.name}.io.safetensors`);
  }
});

for (const be of backends()) {
  test(`HF ResNet matches the PyTorch reference [${be.name}]`, { skip: be.skip }, async (t) => {
    const table: string[] = [];
    for (const c of cases) {
      await t.test(`${c.name}: ${c.what}`, () => {
        const r = withBackend(be.name, () => runCase(c));
        table.push(`${c.name.padEnd(22)} max|diff| ${r.maxAbs.toExponential(2)}  max|ref| ${r.maxRef.toExponential(2)}`);
      });
    }
    t.diagnostic(`parity (logits / last hidden state / feature maps):\n${table.join('\n')}`);
  });
}

test('state-dict keys and shapes are transformers\', in order', () => {
  const keys = JSON.parse(readFileSync(fixture('hf', 'keys.json'), 'utf8')) as Record<string, [string, number[]][]>;
  const r50 = new ResNetConfig();
  const r18 = new ResNetConfig({ layerType: 'basic', hiddenSizes: [64, 128, 256, 512], depths: [2, 2, 2, 2], numLabels: 1000 });
  const narrow = new ResNetConfig({ embeddingSize: 8, hiddenSizes: [16, 32, 64, 128] }); // resnet-50's depths, fewer channels
  const built: Record<string, Module> = {
    'resnet50.ResNetForImageClassification': new ResNetForImageClassification(r50),
    'narrow50.ResNetModel': new ResNetModel(narrow),
    'narrow50.ResNetBackbone': new ResNetBackbone(narrow),
    'resnet18.ResNetForImageClassification': new ResNetForImageClassification(r18),
  };
  assert.deepEqual(Object.keys(built).sort(), Object.keys(keys).sort());
  for (const [name, m] of Object.entries(built)) {
    const ours = [...m.stateDict()].map(([k, v]) => [k, [...v.shape]]);
    assert.deepEqual(ours, keys[name], name);
  }
  const sd = built['resnet50.ResNetForImageClassification'].stateDict();
  for (const k of ['resnet.embedder.embedder.convolution.weight', 'resnet.encoder.stages.0.layers.0.shortcut.convolution.weight',
    'resnet.encoder.stages.0.layers.0.layer.1.normalization.running_var', 'classifier.1.weight']) assert.ok(sd.has(k), k);
  assert.equal(sd.get('resnet.embedder.embedder.normalization.num_batches_tracked')!.dtype, 'int64');
});

test('config.json: written as transformers writes it, read back unchanged', () => {
  const { roundtrip } = JSON.parse(readFileSync(fixture('hf', 'configs.json'), 'utf8')) as {
    roundtrip: { dict: Record<string, unknown>; json: string; num_labels: number; out_features: string[]; out_indices: number[]; stage_names: string[] }[];
  };
  const dir = tempDir('hf-config-');
  roundtrip.forEach((r, i) => {
    const c = ResNetConfig.fromDict(r.dict);
    assert.equal(c.toJSONString(), r.json, `case ${i}: ${JSON.stringify(r.dict)}`);
    assert.equal(c.numLabels, r.num_labels);
    assert.deepEqual(c.outFeatures, r.out_features);
    assert.deepEqual(c.outIndices, r.out_indices);
    assert.deepEqual(c.stageNames, r.stage_names);
    const path = join(dir, `config${i}.json`);
    c.toJSONFile(path);
    assert.equal(readFileSync(path, 'utf8'), r.json);
    assert.equal(ResNetConfig.fromJSONFile(path).toJSONString(), r.json);
  });
  // defaults and the PretrainedConfig label rules
  const d = new ResNetConfig();
  assert.deepEqual([d.numChannels, d.embeddingSize, d.layerType, d.hiddenAct, d.downsampleInFirstStage, d.downsampleInBottleneck, d.modelType],
    [3, 64, 'bottleneck', 'relu', false, false, 'resnet']);
  assert.deepEqual([d.hiddenSizes, d.depths, d.outFeatures, d.outIndices], [[256, 512, 1024, 2048], [3, 4, 6, 3], ['stage4'], [4]]);
  assert.deepEqual([d.numLabels, d.id2label, d.label2id, d.problemType, d.architectures], [2, { 0: 'LABEL_0', 1: 'LABEL_1' }, { LABEL_0: 0, LABEL_1: 1 }, null, null]);
  d.numLabels = 3;
  assert.deepEqual(d.id2label, { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' });
  d.outFeatures = ['stem', 'stage3'];
  assert.deepEqual(d.outIndices, [0, 3]);
  d.outIndices = [-1];
  assert.deepEqual(d.outFeatures, ['stage4']);
  // a factory-style override: num_labels with id2label removed
  const f = ResNetConfig.fromDict({ id2label: undefined, label2id: undefined, num_labels: 7 });
  assert.equal(f.numLabels, 7);
  // transformers' defaults are not written back
  assert.ok(!('torchscript' in ResNetConfig.fromDict({ torchscript: false, return_dict: true }).toDict()));
});

test('config errors: transformers\' messages', () => {
  const { errors } = JSON.parse(readFileSync(fixture('hf', 'configs.json'), 'utf8')) as { errors: { dict: Record<string, unknown>; error: string }[] };
  assert.ok(errors.length >= 17);
  for (const e of errors) assert.throws(() => ResNetConfig.fromDict(e.dict), { message: e.error }, JSON.stringify(e.dict));
});

test('config errors: our own checks', () => {
  const bad = (d: Record<string, unknown>, msg: RegExp | string) =>
    assert.throws(() => ResNetConfig.fromDict(d), typeof msg === 'string' ? { message: msg } : msg, JSON.stringify(d));
  bad({ hidden_act: 'swishy' }, /^RangeError: hidden_act: function swishy not found in ACT2FN mapping \['relu', /);
  bad({ depths: [1, 2], hidden_sizes: [8, 16, 32] }, 'depths and hidden_sizes must have one entry per stage, but depths has 2 and hidden_sizes has 3');
  bad({ depths: [] }, /Expected a non-empty list of positive integers for depths/);
  bad({ hidden_sizes: [8, 0, 16, 32] }, /Expected a non-empty list of positive integers for hidden_sizes/);
  bad({ num_channels: 2.5 }, /Expected a positive integer for num_channels but received 2\.5 of type number/);
  bad({ embedding_size: '64' }, /Expected a positive integer for embedding_size/);
  bad({ num_labels: -1 }, /Expected an integer >= 0 for num_labels/);
  bad({ downsample_in_bottleneck: 1 }, /Expected true or false for downsample_in_bottleneck/);
  bad({ id2label: { a: 'x' } }, /invalid literal for int\(\) with base 10: 'a'/);
  bad({ out_indices: [-7] }, /out_indices: list index out of range \(-7 for 5 stage_names\)/);
  bad({ out_indices: ['stage1'] }, "out_indices must be a list of integers, got ['stage1']");
  bad({ architectures: 'ResNet' }, /Expected a list of strings for architectures/);
  assert.throws(() => ResNetConfig.fromJSONString('{"layer_type": "x"}', 'my/config.json'), { name: 'RangeError', message: 'my/config.json: layer_type=x is not one of basic,bottleneck' });
  assert.throws(() => ResNetConfig.fromJSONString('{nope', 'my/config.json'), /^SyntaxError: my\/config\.json: expected a JSON config/);
  assert.throws(() => ResNetConfig.fromJSONFile('/nonexistent/config.json'), /cannot read config file \/nonexistent\/config\.json/);
  assert.throws(() => ResNetConfig.fromDict([] as unknown as Record<string, unknown>), /Expected a config dictionary/);
});

test('config warnings: conflicting num_labels, another model_type (transformers logs both)', (t) => {
  const warn = t.mock.method(process, 'emitWarning', () => {});
  const c = ResNetConfig.fromDict({ num_labels: 3, id2label: { 0: 'a', 1: 'b' }, model_type: 'bit' });
  assert.equal(c.numLabels, 2);
  const msgs = warn.mock.calls.map((call) => String(call.arguments[0]));
  assert.deepEqual(msgs, [
    'You are using a model of type bit to instantiate a model of type resnet. This is not supported for all configurations of models and can yield errors.',
    "You passed along `num_labels=3` with an incompatible id to label map: {0: 'a', 1: 'b'}. The number of labels wil be overwritten to 2.",
  ]);
  assert.equal(c.toDict().model_type, 'resnet');
});

test('forward options: tuples with returnDict false, hidden states on request or from the config', () => {
  const config = new ResNetConfig({ layerType: 'basic', embeddingSize: 4, hiddenSizes: [4, 8], depths: [1, 1], numLabels: 3 });
  const m = new ResNetForImageClassification(config, { seed: 3 }).eval();
  const x = randn([2, 3, 16, 16]);
  const plain = m.forward(x);
  assert.deepEqual(Object.keys(plain), ['logits']);
  assert.deepEqual([...plain.logits.shape], [2, 3]);
  const labels = fromArray([2n, 0n], [2], { dtype: 'int64' });
  const tup = m.forward(x, { labels, outputHiddenStates: true, returnDict: false });
  assert.equal(tup.length, 3);
  assert.deepEqual((tup[1] as Tensor).toArray(), plain.logits.toArray());
  assert.equal((tup[2] as Tensor[]).length, 3);
  assert.equal(m.forward(x, { returnDict: false }).length, 1);
  const base = m.resnet.forward(x, { returnDict: false });
  assert.equal(base.length, 2);
  assert.deepEqual([...(base[1] as Tensor).shape], [2, 8, 1, 1]);
  config.outputHiddenStates = true;
  assert.equal(m.forward(x).hiddenStates!.length, 3);
  assert.equal(m.forward(x, { outputHiddenStates: false }).hiddenStates, undefined);
  config.outputHiddenStates = false;
  const bb = new ResNetBackbone(new ResNetConfig({ ...{ layerType: 'basic', embeddingSize: 4, hiddenSizes: [4, 8], depths: [1, 1] }, outFeatures: ['stem', 'stage2'] }));
  bb.eval();
  const bt = bb.forward(x, { returnDict: false });
  assert.equal(bt.length, 1);
  assert.equal(bt[0].length, 2);
  assert.equal(bb.forward(x, { returnDict: false, outputHiddenStates: true }).length, 2);
  assert.deepEqual(bb.channels, [4, 8]);
  assert.deepEqual(bb.outFeatureChannels, { stem: 4, stage1: 4, stage2: 8 });
  bb.outIndices = [1];
  assert.deepEqual([bb.outFeatures, bb.channels, bb.forward(x).featureMaps.length], [['stage1'], [4], 1]);
  assert.deepEqual(bb.numFeatures, [4, 4, 8]);
});

test('model errors: channel check, input rank, int32 labels meet cross entropy as in PyTorch', () => {
  const config = new ResNetConfig({ layerType: 'basic', embeddingSize: 4, hiddenSizes: [4, 8], depths: [1, 1], numLabels: 3 });
  const m = new ResNetForImageClassification(config, { seed: 3 }).eval();
  assert.throws(() => m.forward(randn([1, 1, 16, 16])), {
    name: 'RangeError', message: 'Make sure that the channel dimension of the pixel values match with the one set in the configuration.',
  });
  assert.throws(() => m.forward(randn([3, 16, 16])), /Expected a 4-D tensor for pixel_values \(batch, channels, height, width\)/);
  assert.throws(() => new ResNetModel({} as ResNetConfig), /Expected a ResNetConfig for config/);
  // int32 labels pick single_label_classification (transformers), then cross entropy wants int64 (PyTorch)
  const labels = fromArray([1, 2], [2], { dtype: 'int32' });
  assert.throws(() => m.forward(randn([2, 3, 16, 16]), { labels }), /Expected an int64 tensor of class indices for cross_entropy target/);
  assert.equal(config.problemType, 'single_label_classification');
  // once inferred, problem_type stays: float labels now go to cross entropy too
  assert.throws(() => m.forward(randn([2, 3, 16, 16]), { labels: randn([2, 3]) }), /int64 tensor of class indices/);
  // the configured problem type wins over inference
  const c2 = new ResNetConfig({ ...{ layerType: 'basic' as const, embeddingSize: 4, hiddenSizes: [4, 8], depths: [1, 1] }, numLabels: 3, problemType: 'multi_label_classification' });
  const out = new ResNetForImageClassification(c2, { seed: 1 }).eval().forward(randn([2, 3, 16, 16]), { labels: randn([2, 3]) });
  assert.ok(Number.isFinite(out.loss!.item()));
});

test('structure and initialisation follow _init_weights and the seed', () => {
  const config = new ResNetConfig({ embeddingSize: 16, hiddenSizes: [32, 64], depths: [2, 1], numLabels: 5 });
  const a = new ResNetForImageClassification(config, { seed: 7 });
  const b = new ResNetForImageClassification(config, { seed: 7 });
  const c = new ResNetForImageClassification(config, { seed: 8 });
  const sa = a.stateDict(), sb = b.stateDict(), sc = c.stateDict();
  for (const [k, v] of sa) assert.deepEqual(v.toArray(), sb.get(k)!.toArray(), k);
  assert.notDeepEqual(sa.get('classifier.1.weight')!.toArray(), sc.get('classifier.1.weight')!.toArray());
  for (const m of a.modules()) {
    if (m instanceof Conv2d) {
      const w = m.weight.toArray();
      const fanOut = m.weight.shape[0] * m.weight.shape[2] * m.weight.shape[3];
      const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
      assert.ok(Math.abs(std / Math.sqrt(2 / fanOut) - 1) < 0.5, `conv std ${std} vs ${Math.sqrt(2 / fanOut)}`);
      assert.equal(m.bias, null);
    } else if (m instanceof BatchNorm2d) {
      assert.ok(m.weight!.toArray().every((v) => v === 1) && m.bias!.toArray().every((v) => v === 0));
    } else if (m instanceof Linear) {
      const bound = 1 / Math.sqrt(m.inFeatures);
      assert.ok(m.weight.toArray().every((v) => Math.abs(v) <= bound));
    }
  }
  // the layer structure of the seed: shortcut only when channels or stride change; stride on the 3x3 by default
  const s0 = a.resnet.encoder.stages.at(0) as unknown as { layers: { at(i: number): ResNetBottleNeckLayer } };
  const first = s0.layers.at(0), second = s0.layers.at(1);
  assert.ok(first.shortcut instanceof ResNetShortCut && second.shortcut instanceof Identity);
  assert.deepEqual((first.shortcut as ResNetShortCut).convolution.stride, [1, 1]);
  const l2 = (a.resnet.encoder.stages.at(1) as unknown as { layers: { at(i: number): ResNetBottleNeckLayer } }).layers.at(0);
  const convs = l2.layer.children() as ResNetConvLayer[];
  assert.deepEqual(convs.map((cv) => cv.convolution.stride[0]), [1, 2, 1]);
  assert.deepEqual(convs.map((cv) => cv.convolution.outChannels), [16, 16, 64]);
  assert.deepEqual(convs.map((cv) => cv.activation.constructor.name), ['ReLU', 'ReLU', 'Identity']);
  const gelu = new ResNetBasicLayer(4, 8, 2, 'gelu');
  assert.deepEqual([gelu.activation.constructor.name, (gelu.layer.at(0) as ResNetConvLayer).activation.constructor.name], ['GELU', 'ReLU']);
  const dib = new ResNetBottleNeckLayer(8, 16, 2, 'relu', 4, true);
  assert.deepEqual((dib.layer.children() as ResNetConvLayer[]).map((cv) => cv.convolution.stride[0]), [2, 1, 1]);
  const headless = new ResNetForImageClassification(new ResNetConfig({ ...{ embeddingSize: 16, hiddenSizes: [16, 32], depths: [1, 1] }, numLabels: 0 }));
  assert.ok(headless.classifier.at(1) instanceof Identity);
  assert.ok(![...headless.stateDict().keys()].some((k) => k.startsWith('classifier')));
});

// ---- torchvision <-> transformers ----------------------------------------------------------------------------------

function tvFixture(arch: string) {
  const w = readSafetensorsSync(fixture('torchvision', `${arch}.safetensors`)).tensors;
  const io = readSafetensorsSync(fixture('torchvision', `${arch}.io.safetensors`)).tensors;
  return { w, io };
}

/** torchvision logits vs the same weights mapped into ResNetForImageClassification, both on our core. */
function tvParity(arch: 'resnet18' | 'resnet50', inputKey: string, logitsKey: string) {
  const { w, io } = tvFixture(arch);
  const x = io.get(inputKey)!, ref = io.get(logitsKey)!;
  assert.ok(x && ref, `${arch}.io.safetensors has ${inputKey} and ${logitsKey}`);
  const tv = (arch === 'resnet18' ? resnet18 : resnet50)({ seed: 0 });
  tv.loadStateDict(w);
  const rTv = assertClose(tv.eval().forward(x), ref, { ...TOL, what: `torchvision ${arch}` });
  const hf = new ResNetForImageClassification(hfConfigForTorchvision(arch), { seed: 0 });
  const mapped = torchvisionToHF(w);
  assert.deepEqual([...mapped.keys()], [...hf.stateDict().keys()], 'mapped keys come in transformers\' order');
  hf.loadStateDict(mapped);
  const rHf = assertClose(hf.eval().forward(x).logits, ref, { ...TOL, what: `HF ${arch} from torchvision weights` });
  const back = hfToTorchvision(hf.stateDict());
  assert.deepEqual([...back.keys()], [...w.keys()], 'hfToTorchvision restores torchvision\'s keys in order');
  return { rTv, rHf };
}

for (const be of backends()) {
  // js runs the small resnet18 case only; the native backend also runs resnet50
  const archs: ['resnet18' | 'resnet50', string, string][] = [['resnet18', 'input64', 'logits64']];
  if (be.name !== 'js') archs.push(['resnet50', 'input', 'logits']);
  test(`torchvision weights through torchvisionToHF give torchvision's logits [${be.name}]`, { skip: be.skip }, (t) => {
    for (const [arch, xi, li] of archs) {
      const { rTv, rHf } = withBackend(be.name, () => tvParity(arch, xi, li));
      t.diagnostic(`${arch} ${xi}: torchvision max|diff| ${rTv.maxAbs.toExponential(2)}, HF max|diff| ${rHf.maxAbs.toExponential(2)}, max|ref| ${rHf.maxRef.toExponential(2)}`);
    }
  });
}

test('torchvisionToHF / hfToTorchvision: one to one, same tensors, exact round trip', () => {
  const { w } = tvFixture('resnet50');
  const hf = torchvisionToHF(w);
  assert.equal(hf.size, w.size);
  const back = hfToTorchvision(hf);
  assert.deepEqual([...back.keys()], [...w.keys()]);
  for (const [k, v] of back) assert.equal(v, w.get(k), `${k} is the same tensor object`);
  assert.equal(hf.get('resnet.embedder.embedder.convolution.weight'), w.get('conv1.weight'));
  assert.equal(hf.get('resnet.encoder.stages.0.layers.0.shortcut.normalization.running_var'), w.get('layer1.0.downsample.1.running_var'));
  assert.equal(hf.get('resnet.encoder.stages.3.layers.2.layer.2.convolution.weight'), w.get('layer4.2.conv3.weight'));
  assert.equal(hf.get('classifier.1.bias'), w.get('fc.bias'));
  // headless targets: no prefix, no fc; back to torchvision keys without fc
  const base = torchvisionToHF(w, { target: 'ResNetBackbone' });
  const narrow50 = new ResNetConfig({ embeddingSize: 4, hiddenSizes: [8, 8, 8, 8] }); // resnet-50's keys, tiny tensors
  assert.deepEqual([...base.keys()], [...new ResNetModel(narrow50).stateDict().keys()]);
  assert.deepEqual([...base.keys()], [...new ResNetBackbone(narrow50).stateDict().keys()]);
  assert.deepEqual([...hfToTorchvision(base).keys()], [...w.keys()].filter((k) => !k.startsWith('fc.')));
  assert.ok(![...torchvisionToHF(w, { numLabels: 0 }).keys()].some((k) => k.startsWith('classifier')));
  // a basic-block model from the records: resnet18
  const r18 = new ResNet(BasicBlock, [2, 2, 2, 2], { numClasses: 10, seed: 2 }).stateDict();
  const h18 = torchvisionToHF(r18, { numLabels: 10 });
  assert.deepEqual([...h18.keys()], [...new ResNetForImageClassification(hfConfigForTorchvision('resnet18', { numLabels: 10 })).stateDict().keys()]);
  assert.deepEqual([...hfToTorchvision(Object.fromEntries(h18)).keys()], [...r18.keys()]);
});

test('conversion errors name the key or the reason', () => {
  const r18 = new ResNet(BasicBlock, [1, 1, 1, 1], { numClasses: 4, seed: 2 }).stateDict();
  assert.throws(() => torchvisionToHF(new Map([...r18, ['layer1.0.se.weight', randn([1])]])), {
    message: 'torchvisionToHF: key "layer1.0.se.weight" has no transformers equivalent (not a torchvision ResNet key)',
  });
  assert.throws(() => torchvisionToHF(new Map([...r18, ['layer1.0.conv1.bias', randn([1])]])), /key "layer1\.0\.conv1\.bias" has no transformers equivalent/);
  assert.throws(() => torchvisionToHF(r18, { numLabels: 5 }), { message: 'torchvisionToHF: fc.weight has shape [4, 512] but numLabels is 5' });
  assert.throws(() => torchvisionToHF(r18, { target: 'ResNetModel', numLabels: 4 }), /numLabels \(ResNetForImageClassification only\)/);
  assert.throws(() => torchvisionToHF(r18, { target: 'Nope' as 'ResNetModel' }), /Expected ResNetForImageClassification, ResNetModel or ResNetBackbone for target/);
  // a ResNeXt / wide block as torchvision shapes it (only the shapes matter)
  const block = (conv2: number[], conv3: number[]) => new Map([['layer1.0.conv2.weight', randn(conv2)], ['layer1.0.conv3.weight', randn(conv3)]]);
  const grouped = block([64, 16, 3, 3], [256, 64, 1, 1]);
  assert.throws(() => torchvisionToHF(grouped), { message: 'torchvisionToHF: layer1.0.conv2.weight has shape [64, 16, 3, 3], a grouped convolution (ResNeXt, groups=4); transformers\' ResNetBottleNeckLayer has no groups' });
  const wide = block([128, 128, 3, 3], [256, 128, 1, 1]);
  assert.throws(() => torchvisionToHF(wide), { message: 'torchvisionToHF: layer1.0.conv2.weight has 128 channels for a block of 256 outputs (a wide ResNet); transformers\' ResNetBottleNeckLayer always uses out_channels / 4 = 64' });
  const hf = torchvisionToHF(r18);
  assert.throws(() => hfToTorchvision(new Map([...hf, ['resnet.encoder.stages.4.layers.0.layer.0.convolution.weight', randn([1])]])), {
    message: 'hfToTorchvision: key "resnet.encoder.stages.4.layers.0.layer.0.convolution.weight" has no torchvision equivalent (ResNetForImageClassification keys start with resnet. or classifier.1.)',
  });
  assert.throws(() => hfToTorchvision(new Map([...hf, ['encoder.stages.0.layers.0.layer.0.convolution.weight', randn([1])]])), /key "encoder\.stages\.0\.layers\.0\.layer\.0\.convolution\.weight" has no torchvision equivalent/);
  assert.throws(() => hfToTorchvision({ 'embedder.pooler.weight': randn([1]) }), /key "embedder\.pooler\.weight" has no torchvision equivalent$/);
  // architectures transformers cannot express
  assert.throws(() => hfConfigForTorchvision('resnext50_32x4d'), { message: 'resnext50_32x4d cannot be expressed by transformers\' ResNet: it uses grouped convolutions (groups=32, width_per_group=4) and ResNetBottleNeckLayer has no groups' });
  assert.throws(() => hfConfigForTorchvision('wide_resnet101_2'), { message: 'wide_resnet101_2 cannot be expressed by transformers\' ResNet: its bottleneck is 2x wider (width_per_group=128) but ResNetBottleNeckLayer\'s width is always out_channels / 4' });
  assert.throws(() => hfConfigForTorchvision({ block: Bottleneck, layers: [3, 4, 6, 3], replaceStrideWithDilation: [false, true, true] }), /has no dilated convolutions/);
  assert.throws(() => hfConfigForTorchvision('resnet9000'), /^RangeError: Unknown torchvision ResNet resnet9000; known: resnet18, resnet34/);
  assert.throws(() => hfConfigForTorchvision({ block: 'fancy' as 'basic', layers: [1, 1, 1, 1] }), /Expected 'basic', 'bottleneck', BasicBlock or Bottleneck for block/);
  assert.throws(() => hfConfigForTorchvision({ block: 'basic', layers: [1, 1, 1] }), /Expected 4 block counts for layers/);
  const c = hfConfigForTorchvision({ block: BasicBlock, layers: [1, 2, 3, 4] }, { numLabels: 10 });
  assert.deepEqual([c.layerType, c.depths, c.hiddenSizes, c.numLabels, c.embeddingSize], ['basic', [1, 2, 3, 4], [64, 128, 256, 512], 10, 64]);
  assert.deepEqual(torchvisionArchForHF(hfConfigForTorchvision('resnet101')), { arch: 'resnet101', block: 'bottleneck', layers: [3, 4, 23, 3], numClasses: 1000 });
  assert.deepEqual(torchvisionArchForHF(c).arch, null);
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ hiddenAct: 'gelu' })), { message: 'this transformers ResNet has no torchvision equivalent: hidden_act is gelu (torchvision uses relu)' });
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ downsampleInBottleneck: true })), /downsample_in_bottleneck is true/);
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ downsampleInFirstStage: true })), /downsample_in_first_stage is true/);
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ numChannels: 1 })), /num_channels is 1/);
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ embeddingSize: 32 })), /embedding_size is 32/);
  assert.throws(() => torchvisionArchForHF(new ResNetConfig({ hiddenSizes: [8, 16, 32, 64] })), /hidden_sizes is \[8, 16, 32, 64\]/);
});

test('a saved config.json and a converted state dict load back into an identical model', () => {
  const dir = tempDir('hf-save-');
  const config = hfConfigForTorchvision({ block: 'basic', layers: [1, 1, 1, 1] }, { numLabels: 3 });
  config.toJSONFile(join(dir, 'config.json'));
  writeFileSync(join(dir, 'note.txt'), 'x');
  const a = new ResNetForImageClassification(config, { seed: 4 });
  const b = new ResNetForImageClassification(ResNetConfig.fromJSONFile(join(dir, 'config.json')), { seed: 5 });
  b.loadStateDict(torchvisionToHF(hfToTorchvision(a.stateDict())));
  const x = randn([1, 3, 32, 32]);
  assert.deepEqual(b.eval().forward(x).logits.toArray(), a.eval().forward(x).logits.toArray());
});

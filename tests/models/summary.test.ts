// The model summary (models/summary.ts): totals of all ten torchvision builders against torchvision's published
// figures (parameter counts; "GFLOPS" = conv + linear multiply-adds at 1x3x224x224), the rows of resnet18 and
// resnet50 against seed 004's shape walk-through, a Hugging Face config, shape-only rows == computed rows, and the
// model left as it was.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { hasInstanceForward, type Module } from '../../src/nn/module.js';
import { MODELS, getModelWeights, resnet18, resnet50 } from '../../src/models/resnet.js';
import { ResNetConfig, ResNetForImageClassification } from '../../src/models/hf.js';
import { hfConfigForTorchvision } from '../../src/models/convert.js';
import { type SummaryRow, formatSummary, summary } from '../../src/models/summary.js';
import { skipInit } from '../../src/nn/init.js';

/** torchvision's published figures (the weights' meta: num_params, GFLOPS). */
const PUBLISHED: Record<string, [number, number]> = {
  resnet18: [11_689_512, 1.81], resnet34: [21_797_672, 3.66], resnet50: [25_557_032, 4.09], resnet101: [44_549_160, 7.80],
  resnet152: [60_192_808, 11.51], resnext50_32x4d: [25_028_904, 4.23], resnext101_32x8d: [88_791_336, 16.41],
  resnext101_64x4d: [83_455_272, 15.46], wide_resnet50_2: [68_883_240, 11.40], wide_resnet101_2: [126_886_696, 22.75],
};

const numel = (s: unknown): number => (s as number[]).reduce((a, b) => a * b, 1);

test('all ten builders: params and multiply-adds equal torchvision\'s published figures', (t) => {
  assert.deepEqual(Object.keys(MODELS).sort(), Object.keys(PUBLISHED).sort());
  for (const [arch, [params, gflops]] of Object.entries(PUBLISHED)) {
    const s = summary(skipInit(() => MODELS[arch]()));
    assert.equal(s.totalParams, params, `${arch} params`);
    assert.equal(Number((s.totalMacs / 1e9).toFixed(2)), gflops, `${arch}: ${s.totalMacs} multiply-adds vs ${gflops} GFLOPS`);
    const meta = getModelWeights(arch).fromStr('DEFAULT').meta;
    assert.equal(meta.num_params, params, `${arch}: the registry's num_params`);
    assert.equal(Number((s.totalMacs / 1e9).toFixed(3)), meta._ops, `${arch}: the registry's _ops (3 decimals)`);
    assert.equal(s.rows.reduce((n, r) => n + r.macs, 0), s.totalMacs, 'the rows add up');
    assert.equal(s.rows.reduce((n, r) => n + r.params, 0), s.totalParams, 'own params add up');
    // torchvision counts conv and linear only: with batch-norm elements resnet18 / resnet50 would round to 1.82 / 4.10
    const bn = s.rows.filter((r) => r.type === 'BatchNorm2d').reduce((n, r) => n + numel(r.outputShape), 0);
    if (arch === 'resnet18' || arch === 'resnet50') assert.notEqual(Number(((s.totalMacs + bn) / 1e9).toFixed(2)), gflops);
    t.diagnostic(`${arch}: ${s.totalParams} params, ${(s.totalMacs / 1e9).toFixed(3)} G multiply-adds`);
  }
});

/** Seed 004: 3x224x224 -> conv1 64x112x112, maxpool 64x56x56, layer1..4, avgpool, fc (C = 64 or 256 for layer1). */
function walkThrough(expansion: number): [string, string, number[]][] {
  const e = expansion;
  return [
    ['conv1', 'Conv2d', [1, 64, 112, 112]], ['bn1', 'BatchNorm2d', [1, 64, 112, 112]], ['relu', 'ReLU', [1, 64, 112, 112]],
    ['maxpool', 'MaxPool2d', [1, 64, 56, 56]], ['layer1', 'Sequential', [1, 64 * e, 56, 56]], ['layer2', 'Sequential', [1, 128 * e, 28, 28]],
    ['layer3', 'Sequential', [1, 256 * e, 14, 14]], ['layer4', 'Sequential', [1, 512 * e, 7, 7]],
    ['avgpool', 'AdaptiveAvgPool2d', [1, 512 * e, 1, 1]], ['fc', 'Linear', [1, 1000]],
  ];
}

for (const [arch, e] of [['resnet18', 1], ['resnet50', 4]] as const) {
  test(`${arch}: rows follow seed 004's walk-through`, () => {
    const model = skipInit(() => (arch === 'resnet18' ? resnet18 : resnet50)());
    const s = summary(model);
    assert.deepEqual(s.inputShape, [1, 3, 224, 224]);
    assert.deepEqual(s.outputShape, [1, 1000]);
    assert.deepEqual(s.rows.map((r) => r.name), [...model.namedModules()].slice(1).map(([n]) => n), 'one row per module, in order');
    const top = s.rows.filter((r) => r.depth === 1);
    assert.deepEqual(top.map((r) => [r.name, r.type, r.outputShape]), walkThrough(e));
    const row = (n: string): SummaryRow => s.rows.find((r) => r.name === n)!;
    assert.equal(row('conv1').params, 3 * 64 * 49);
    assert.equal(row('conv1').macs, 64 * 112 * 112 * 3 * 49);
    assert.equal(row('fc').params, 512 * e * 1000 + 1000);
    assert.equal(row('layer1').params, 0, 'a container owns no parameters');
    assert.equal(row('layer1').paramsTotal, model.layer1.numParameters());
    assert.equal(row('layer1.0.relu').calls, e === 1 ? 2 : 3, 'the block\'s relu runs per conv');
    assert.equal(row('layer2.0.downsample.0').macs, 128 * e * 28 * 28 * 64 * e);
    assert.equal(row('layer4.0.conv1').outputShape!.toString(), (e === 1 ? [1, 512, 7, 7] : [1, 512, 14, 14]).toString(), 'v1.5: the stride is on the 3x3');
    assert.equal(s.paramsBytes, s.totalParams * 4);
    assert.equal(s.inputBytes, 3 * 224 * 224 * 4);
    assert.ok(s.activationsBytes > 0 && s.totalBytes === s.paramsBytes + s.buffersBytes + s.activationsBytes + s.inputBytes);
    const table = formatSummary(s, { depth: 1, title: arch });
    assert.match(table, /^conv1 \(Conv2d\) +64x112x112 +9,408 +118\.01M$/m);
    assert.match(table, /^maxpool \(MaxPool2d\) +64x56x56 +-- +--$/m);
    assert.match(table, new RegExp(`^layer4 \\(Sequential\\) +${512 * e}x7x7 `, 'm'));
    assert.match(table, new RegExp(`Multiply-adds .*: ${PUBLISHED[arch][1].toFixed(2)} G`));
    assert.ok(!table.includes('layer1.0'), 'depth 1 hides the blocks');
  });
}

/** The model as it was: no instance forwards left, modes restored. */
function assertUntouched(model: Module, modes: boolean[]): void {
  const mods = model.modules();
  assert.ok(mods.every((m) => !hasInstanceForward(m) && !m.hasHooks()), 'no hooks or patched forwards left');
  assert.deepEqual(mods.map((m) => m.training), modes, 'training flags restored');
}

test('shape-only rows equal the rows of a real forward; the model is left as it was', () => {
  const model = resnet18({ numClasses: 10, seed: 1 }); // real weights: the logits below must mean something
  const modes = model.modules().map((m) => m.training);
  const fast = summary(model, { inputShape: [3, 64, 48], batch: 2 });
  const real = summary(model, { inputShape: [3, 64, 48], batch: 2, compute: true });
  assert.deepEqual(fast, real);
  assert.deepEqual(fast.outputShape, [2, 10]);
  assert.equal(fast.rows.find((r) => r.name === 'layer4')!.outputShape!.toString(), '2,512,2,2');
  assertUntouched(model, modes);
  model.eval();
  const x = randn([1, 3, 32, 32], { generator: new Generator(1) });
  const before = model.forward(x) as Tensor;
  // a caller's hook is kept and sees the summary's forward (its module runs for real)
  const seen: number[][] = [];
  const h = model.fc.registerForwardHook((_m, _i, out) => void seen.push([...(out as Tensor).shape]));
  assert.equal(summary(model, { inputShape: [3, 32, 32] }).rows.find((r) => r.name === 'fc')!.macs, 512 * 10);
  assert.deepEqual(seen, [[1, 10]]);
  assert.ok(model.fc.hasHooks());
  h.remove();
  assertUntouched(model, model.modules().map(() => false));
  assert.deepEqual((model.forward(x) as Tensor).toArray(), before.toArray(), 'the fused forward gives the same logits');
});

test('Hugging Face: microsoft/resnet-50\'s config gives torchvision resnet50\'s totals; stage rows; small config', () => {
  const config = hfConfigForTorchvision('resnet50', { numLabels: 1000 });
  const s = summary(skipInit(() => new ResNetForImageClassification(config)));
  assert.equal(s.totalParams, PUBLISHED.resnet50[0]);
  assert.equal((s.totalMacs / 1e9).toFixed(2), '4.09');
  const shape = (n: string) => s.rows.find((r) => r.name === n)?.outputShape;
  assert.deepEqual(shape('resnet.embedder.embedder.convolution'), [1, 64, 112, 112]);
  assert.deepEqual(shape('resnet.embedder'), [1, 64, 56, 56]);
  [[256, 56], [512, 28], [1024, 14], [2048, 7]].forEach(([c, h], i) => assert.deepEqual(shape(`resnet.encoder.stages.${i}`), [1, c, h, h]));
  assert.deepEqual(shape('resnet.encoder'), { lastHiddenState: [1, 2048, 7, 7] });
  assert.deepEqual(shape('resnet'), { lastHiddenState: [1, 2048, 7, 7], poolerOutput: [1, 2048, 1, 1] });
  assert.equal(shape('resnet.encoder.stages'), null, 'a ModuleList is iterated, never called');
  assert.deepEqual(shape('resnet.encoder.stages.0.layers.0.layer.2'), [1, 256, 56, 56], 'the last conv layer (fused away without hooks) is seen');
  assert.deepEqual(shape('classifier.1'), [1, 1000]);
  assert.deepEqual(s.outputShape, { logits: [1, 1000] });
  assert.match(formatSummary(s), /^resnet \(ResNetModel\) +lastHiddenState: 2048x7x7, poolerOutput: 2048x1x1 /m);

  // a ResNetConfig directly, 1 channel by default from the config; shape-only == computed
  const small = new ResNetConfig({ numChannels: 1, embeddingSize: 8, hiddenSizes: [8, 16], depths: [1, 2], layerType: 'basic', hiddenAct: 'gelu', numLabels: 3 });
  const a = summary(small, { inputShape: [1, 40, 40] });
  assert.deepEqual(a.inputShape, [1, 1, 40, 40]);
  assert.deepEqual(summary(small).inputShape, [1, 1, 224, 224], 'default channels from the config');
  const model = new ResNetForImageClassification(small, { seed: 3 });
  assert.deepEqual(summary(model, { inputShape: [1, 40, 40], compute: true }), a);
  assert.equal(a.totalParams, model.numParameters());
  assert.throws(() => summary(model, { inputShape: [3, 40, 40] }), /channel dimension of the pixel values/);
  assertUntouched(model, model.modules().map(() => true));
});

test('errors: input shape and batch', () => {
  const model = skipInit(() => resnet18());
  assert.throws(() => summary(model, { inputShape: [224, 224] }), /Expected \[C, H, W\] for inputShape/);
  assert.throws(() => summary(model, { inputShape: [3, 0, 224] }), /inputShape\[1\]/);
  assert.throws(() => summary(model, { batch: 0 }), /batch/);
  assert.throws(() => summary(model, { inputShape: [4, 64, 64] }), /expected input\[1, 4, 64, 64\] to have 3 channels/);
  assertUntouched(model, model.modules().map(() => true));
  // the shape-only and the real forward fail alike
  assert.throws(() => summary(model, { inputShape: [4, 64, 64] }), (e: Error) => {
    assert.throws(() => summary(model, { inputShape: [4, 64, 64], compute: true }), { message: e.message });
    return true;
  });
});

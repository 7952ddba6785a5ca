// The training loop on tiny models: it learns (Fashion-MNIST, asserted above chance), evaluate's numbers agree
// with a hand-written pass, schedulers step per batch or per epoch, a run interrupted after a mid-epoch checkpoint
// and resumed ends bit-identical to an unbroken one, and the fine-tuning helpers (head swap, freezing with and
// without frozen-BN eval mode, parameter groups, pretrained weights into another head / stem / channel count).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.js';
import { Generator } from '../../src/tensor/random.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { SGD } from '../../src/optim/sgd.js';
import { CosineAnnealingLR, OneCycleLR, StepLR } from '../../src/optim/lr-scheduler.js';
import { DataLoader } from '../../src/data/loader.js';
import type { Dataset, Sample } from '../../src/data/dataset.js';
import { FashionMNIST } from '../../src/data/fashion-mnist.js';
import { BatchNorm2d } from '../../src/nn/layers.js';
import type { Module } from '../../src/nn/module.js';
import { ResNetConfig, ResNetForImageClassification } from '../../src/models/hf.js';
import { resnet18 } from '../../src/models/resnet.js';
import { evaluate, fit, logitsOf } from '../../src/train/loop.js';
import { freezeBackbone, headOf, paramGroups, replaceHead } from '../../src/train/finetune.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { buildSpecModel, loadWeightsInto, makeSpec } from '../../src/models/model-spec.js';
import { limitDataset } from '../../src/train/recipe.js';
import { tempDir } from '../helpers.js';


function tinyConfig(o: { channels?: number; labels?: number } = {}): ResNetConfig {
  return new ResNetConfig({ numChannels: o.channels ?? 1, embeddingSize: 8, hiddenSizes: [8, 16, 24, 32], depths: [1, 1, 1, 1], layerType: 'basic', numLabels: o.labels ?? 10 });
}

const tinySpec = (o: { channels?: number; labels?: number } = {}) => makeSpec({ arch: tinyConfig(o), numClasses: o.labels ?? 10, inChannels: o.channels ?? 1, stem: 'cifar' });

/** Two classes of 1x12x12 noise images, told apart by which half is brighter (learnable in a few steps). */
class HalvesDataset implements Dataset {
  constructor(readonly length: number, private readonly seed = 0) {}
  get(i: number): Sample {
    const g = new Generator(this.seed * 100003 + i);
    const label = i % 2;
    const x = new Float32Array(144);
    for (let p = 0; p < 144; p++) x[p] = g.normal() * 0.5 + ((p < 72) === (label === 0) ? 1 : -1);
    return { input: new Tensor(x, [1, 12, 12]), label };
  }
}

function bitsEqual(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: keys`);
  for (const [k, t] of a) {
    const x = t.contiguousData(), y = b.get(k)!.contiguousData();
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${what}: ${k}[${i}] ${x[i]} vs ${y[i]}`);
  }
}

test('fit learns Fashion-MNIST on a tiny ResNet: loss falls, validation accuracy well above chance; files and per-epoch scheduling', async () => {
  const norm = [{ name: 'Normalize' as const, mean: [0.286], std: [0.353] }];
  const train = limitDataset(new FashionMNIST({ transform: norm }), 512, 1);
  const val = limitDataset(new FashionMNIST({ train: false, transform: norm }), 256, 2);
  const model = buildSpecModel(tinySpec(), { seed: 0 });
  const trainLoader = new DataLoader(train, { batchSize: 32, shuffle: true, seed: 7 });
  const valLoader = new DataLoader(val, { batchSize: 64 });
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const scheduler = new CosineAnnealingLR(optimizer, { tMax: 3 });
  const dir = tempDir('loop-');
  const steps: number[] = [];
  const r = await fit({ model, trainLoader, valLoader, optimizer, scheduler, epochs: 3, checkpointDir: dir, traceEvery: 4, onStep: (s) => steps.push(s.loss) });
  const h = r.history;
  assert.equal(h.length, 3);
  assert.equal(steps.length, 48);
  assert.ok((h[2].train_loss as number) < (h[0].train_loss as number) - 0.3, `train loss ${h.map((x) => x.train_loss).join(' -> ')}`);
  assert.ok((h[2].val_accuracy as number) > 0.45, `validation accuracy ${h[2].val_accuracy} (chance 0.1)`);
  assert.equal(scheduler.lastEpoch, 3, 'CosineAnnealingLR steps once per epoch by default');
  [0.1, 0.075, 0.025].forEach((lr, i) => assert.ok(Math.abs((h[i].lr as number) - lr) < 1e-12, `epoch ${i + 1} trained with lr ${h[i].lr}, expected ${lr}`));
  assert.ok(existsSync(join(dir, 'last.pth')) && existsSync(join(dir, 'best.pth')));
  const last = loadCheckpoint(join(dir, 'last.pth'));
  assert.equal(last.epoch, 3);
  assert.equal(last.batch, 0);
  assert.equal(last.global_step, 48);
  assert.deepEqual(last.history, h);
  assert.deepEqual([...last.loss_trace.shape], [12, 2]);
  const best = loadCheckpoint(join(dir, 'best.pth'));
  assert.equal(best.best!.epoch, r.best!.epoch);
  assert.equal(best.best!.value, Math.max(...h.map((x) => x.val_accuracy as number)));

  // evaluate agrees with a pass written out by hand
  model.train();
  const bn = model.modules().find((m) => m instanceof BatchNorm2d)!;
  bn.training = false; // a per-module mode that evaluate must restore as it was
  const ev = await evaluate(model, valLoader);
  assert.equal(model.training, true);
  assert.equal(bn.training, false);
  model.eval();
  let correct = 0;
  const conf = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
  for await (const b of valLoader.iterate({ epoch: 0 })) {
    const logits = noGrad(() => logitsOf(model.forward(b.input)));
    const pred = logits.argmax(1).toArray(), y = b.label.toArray();
    y.forEach((t, i) => {
      conf[t][pred[i]]++;
      if (t === pred[i]) correct++;
    });
  }
  assert.equal(ev.count, 256);
  assert.equal(ev.correct, correct);
  assert.equal(ev.accuracy, correct / 256);
  assert.deepEqual(ev.confusion, conf);
  ev.perClassAccuracy.forEach((a, c) => {
    const n = conf[c].reduce((s, v) => s + v, 0);
    assert.equal(a, n ? conf[c][c] / n : null);
  });
  assert.equal(ev.accuracy, h[2].val_accuracy, 'the last epoch validated the same weights');
});

async function halvesRun(o: { dir: string; seed: number; stopAt?: [number, number]; resume?: string }) {
  const model = buildSpecModel(tinySpec({ labels: 2 }), { seed: o.seed });
  const trainLoader = new DataLoader(new HalvesDataset(96), { batchSize: 16, shuffle: true, seed: 11 });
  const valLoader = new DataLoader(new HalvesDataset(32, 1), { batchSize: 16 });
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
  const scheduler = new OneCycleLR(optimizer, { maxLr: 0.05, totalSteps: 12 });
  const r = await fit({
    model, trainLoader, valLoader, optimizer, scheduler, epochs: 2, checkpointDir: o.dir, checkpointEvery: 2, resume: o.resume,
    onStep: (s) => {
      if (o.stopAt && s.epoch === o.stopAt[0] && s.batch === o.stopAt[1]) throw new Error('simulated crash');
    },
  });
  return { r, model, optimizer, scheduler };
}

test('a run interrupted after a mid-epoch checkpoint and resumed (fresh model, optimizer, OneCycleLR) ends bit-identical', async () => {
  const a = await halvesRun({ dir: tempDir('loop-'), seed: 1 });
  assert.equal(a.scheduler.lastEpoch, 12, 'OneCycleLR steps once per batch');
  const dir = tempDir('loop-');
  await assert.rejects(halvesRun({ dir, seed: 1, stopAt: [1, 3] }), /simulated crash/);
  const mid = loadCheckpoint(join(dir, 'last.pth'));
  assert.deepEqual([mid.epoch, mid.batch, mid.global_step], [1, 2, 8]);
  const b = await halvesRun({ dir, seed: 99, resume: join(dir, 'last.pth') });
  bitsEqual(b.model.stateDict(), a.model.stateDict(), 'weights and buffers');
  const sa = a.optimizer.stateDict().state, sb = b.optimizer.stateDict().state;
  for (const [i, s] of sa) bitsEqual(new Map([['m', s.momentum_buffer!]]), new Map([['m', sb.get(i)!.momentum_buffer!]]), `momentum ${i}`);
  assert.deepEqual(b.optimizer.paramGroups.map((g) => [g.lr, g.momentum]), a.optimizer.paramGroups.map((g) => [g.lr, g.momentum]));
  const strip = (h: typeof a.r.history) => h.map(({ seconds: _s, images_per_sec: _i, ...rest }) => rest);
  assert.deepEqual(strip(b.r.history), strip(a.r.history));
  assert.ok((a.r.history[1].val_accuracy as number) >= 0.9, `the halves task is learnt: ${a.r.history[1].val_accuracy}`);
});

test('replaceHead keeps the head in place (torchvision fc, HF classifier.1) and sets the HF labels', () => {
  const tv = resnet18({ seed: 0 });
  const keys = [...tv.stateDict().keys()];
  const l = replaceHead(tv, 2);
  assert.equal(l, tv.fc);
  assert.deepEqual([...tv.stateDict().keys()], keys);
  assert.deepEqual([...tv.fc.weight.shape], [2, 512]);
  const hf = new ResNetForImageClassification(tinyConfig({ channels: 3, labels: 5 }));
  replaceHead(hf, 3, { labels: ['a', 'b', 'c'] });
  assert.equal(headOf(hf).name, 'classifier.1');
  assert.deepEqual([...hf.stateDict().get('classifier.1.weight')!.shape], [3, 32]);
  assert.equal(hf.config.numLabels, 3);
  assert.deepEqual(hf.config.id2label, { 0: 'a', 1: 'b', 2: 'c' });
});

async function frozenStep(frozenBnEval: boolean) {
  const model = buildSpecModel(tinySpec({ labels: 2 }), { seed: 3 });
  const f = freezeBackbone(model);
  const before = new Map([...model.stateDict()].map(([k, t]) => [k, t.clone()]));
  const optimizer = new SGD(paramGroups(model, { lr: 0.1 }), { lr: 0.1, momentum: 0.9 });
  await fit({ model, trainLoader: new DataLoader(new HalvesDataset(32), { batchSize: 16 }), optimizer, epochs: 1, frozenBnEval });
  return { model, before, f };
}

test('freezeBackbone trains the head only; frozen BN keeps PyTorch behaviour unless frozenBnEval', async () => {
  const { model, before, f } = await frozenStep(false);
  assert.equal(f.trainable, 32 * 2 + 2);
  const after = model.stateDict();
  const changed = (k: string) => !after.get(k)!.contiguousData().every((v, i) => Object.is(v, before.get(k)!.contiguousData()[i]));
  for (const [k] of model.namedParameters()) assert.equal(changed(k), k.startsWith('classifier.'), k);
  assert.ok(changed('resnet.embedder.embedder.normalization.running_mean'), 'train-mode BN statistics move (PyTorch default)');
  const e = await frozenStep(true);
  const ea = e.model.stateDict();
  for (const [k, t] of ea) {
    if (k.startsWith('classifier.')) continue;
    assert.ok(t.contiguousData().every((v, i) => Object.is(v, e.before.get(k)!.contiguousData()[i])), `${k} unchanged with frozenBnEval`);
  }
  // parameter groups: a smaller lr for the backbone, frozen parameters left out
  const m2 = buildSpecModel(tinySpec({ labels: 2 }));
  const g = paramGroups(m2, { lr: 1e-3, backboneLr: 1e-4 });
  assert.deepEqual(g.map((x) => [x.lr, [...x.params].length]), [[1e-4, m2.parameters().length - 2], [1e-3, 2]]);
  freezeBackbone(m2);
  assert.deepEqual(paramGroups(m2, { lr: 1e-3, backboneLr: 1e-4 }).map((x) => [x.lr, [...x.params].length]), [[1e-3, 2]]);
});

test('pretrained weights load into another head, stem or channel count (adapted, with notes), and misfits are errors', () => {
  const src = new ResNetForImageClassification(tinyConfig({ channels: 3, labels: 5 }), { seed: 4 });
  const w = { kind: 'file' as const, source: 'pre.pth', stateDict: src.stateDict(), family: 'hf' as const, config: null, weights: null, arch: null, stateDictKey: null };
  const spec = makeSpec({ arch: tinyConfig(), numClasses: 2, inChannels: 1, stem: 'imagenet' });
  const model = buildSpecModel(spec, { seed: 5 });
  const notes = loadWeightsInto(model, spec, w);
  assert.equal(notes.length, 2);
  assert.match(notes[0], /classifier\.1: new head for 2 classes/);
  assert.match(notes[1], /adapted from 3 to 1 input channels/);
  const k = 'resnet.embedder.embedder.convolution.weight';
  const s3 = src.stateDict().get(k)!.contiguousData() as Float32Array, s1 = model.stateDict().get(k)!.contiguousData() as Float32Array;
  assert.ok(Math.abs(s1[0] - (s3[0] + s3[49] + s3[98])) < 1e-6, 'RGB filters summed for a grey input');
  bitsEqual(new Map([['w', model.stateDict().get('resnet.encoder.stages.2.layers.0.layer.0.convolution.weight')!]]),
    new Map([['w', src.stateDict().get('resnet.encoder.stages.2.layers.0.layer.0.convolution.weight')!]]), 'a body weight');
  const cifar = makeSpec({ arch: tinyConfig(), numClasses: 2, inChannels: 1, stem: 'cifar' });
  assert.match(loadWeightsInto(buildSpecModel(cifar), cifar, w).join('\n'), /new cifar stem/);
  const wide = makeSpec({ arch: ResNetConfig.fromDict({ ...tinyConfig().toDict(), hidden_sizes: [8, 16, 24, 48] }), numClasses: 2 });
  assert.throws(() => loadWeightsInto(buildSpecModel(wide), wide, w), /pre\.pth: the weights do not fit .*\n\tsize mismatch for resnet\.encoder\.stages\.3/);
  const tv = makeSpec({ arch: 'resnet18', numClasses: 2 });
  assert.throws(() => loadWeightsInto(buildSpecModel(tv) as Module, tv, w), /pre\.pth/);
});

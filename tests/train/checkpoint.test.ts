// Training checkpoints both ways: written here after real SGD steps (seed 004's fine-tuning flow: resnet18 with a
// new 3-class fc, momentum buffers, a float loss) they load in PyTorch with torch.load(weights_only=True), the same
// torchvision model built in Python gives our logits, and optimizer_state_dict loads into torch.optim.SGD and steps;
// the cifar-stem, 1-channel recipe builds in PyTorch as documented; and the file loads back into ours with the
// tutorial's calls (loadCheckpoint, model.loadStateDict(ckpt.model_state_dict)) to the same logits and state.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.js';
import { writeNpySync } from '../../src/io/npy.js';
import { readPthSync } from '../../src/io/pth.js';
import { pyTuple } from '../../src/io/pickle.js';
import { randn, fromArray } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { crossEntropy } from '../../src/ops/loss.js';
import { SGD } from '../../src/optim/sgd.js';
import { resnet18 } from '../../src/models/resnet.js';
import type { Module } from '../../src/nn/module.js';
import { replaceHead } from '../../src/train/finetune.js';
import { decodeFloats, encodeFloats, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { buildSpecModel, makeSpec } from '../../src/models/model-spec.js';


const evalLogits = (m: Module, x: Tensor) => noGrad(() => (m.eval().forward(x) as Tensor).contiguous());

function sameBits(a: Tensor, b: Tensor, what: string): void {
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  const x = a.contiguousData(), y = b.contiguousData();
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${what}: element ${i} differs (${x[i]} vs ${y[i]})`);
}

test('floats outside tensors become 0-dim float64 tensors and come back as the same numbers', () => {
  const src = { lr: 0.1, n: 3, one: 1.0, nan: NaN, inf: -Infinity, tiny: 5e-324, list: [0.5, 2], tuple: pyTuple([0.9, 0.999]), nested: new Map<unknown, unknown>([[0, { v: 1 / 3 }]]), s: 'x', b: true, z: null };
  const enc = encodeFloats(src) as Record<string, unknown>;
  assert.ok(enc.lr instanceof Tensor && enc.lr.dtype === 'float64' && enc.lr.ndim === 0);
  assert.equal(enc.n, 3);
  assert.equal(enc.one, 1);
  const back = decodeFloats(new Map(Object.entries(enc))) as Record<string, unknown>;
  assert.equal(back.lr, 0.1);
  assert.ok(Number.isNaN(back.nan));
  assert.equal(back.inf, -Infinity);
  assert.equal(back.tiny, 5e-324);
  assert.deepEqual(back.list, [0.5, 2]);
  assert.deepEqual([...(back.tuple as number[])], [0.9, 0.999]);
  assert.equal(((back.nested as Map<number, Record<string, number>>).get(0))!.v, 1 / 3);
  assert.deepEqual([back.s, back.b, back.z], ['x', true, null]);
});

test('a checkpoint of the tutorial flow loads in PyTorch (weights_only=True) and back into ours', () => {
  const dir = tempDir('ckpt-');
  // seed 004: a model with 1000 classes, fc replaced by a 3-class Linear, fine-tuned a few SGD steps
  const model = resnet18({ seed: 1 });
  replaceHead(model, 3, { seed: 2 });
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 1e-4 });
  const x = randn([4, 3, 32, 32], { generator: new Generator(3) });
  const y = fromArray(new BigInt64Array([0n, 1n, 2n, 1n]), [4]);
  model.train();
  let lastLoss = 0;
  for (let i = 0; i < 2; i++) {
    const loss = crossEntropy(model.forward(x) as Tensor, y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    lastLoss = loss.item();
  }
  assert.ok(!Number.isInteger(lastLoss));
  const xe = randn([2, 3, 64, 64], { generator: new Generator(4) });
  const logits = evalLogits(model, xe);
  const path = join(dir, 'tutorial.pth');
  saveCheckpoint(path, { model_state_dict: model.stateDict(), optimizer_state_dict: opt.stateDict(), epoch: 1, loss: lastLoss, class_names: ['ants', 'bees', 'wasps'] });
  writeNpySync(join(dir, 'x1.npy'), xe);
  writeNpySync(join(dir, 'y1.npy'), logits);

  // the Fashion-MNIST recipe: resnet18, 1 input channel, cifar stem
  const spec = makeSpec({ arch: 'resnet18', numClasses: 10, inChannels: 1, stem: 'cifar' });
  const small = buildSpecModel(spec, { seed: 5 });
  const xs = randn([2, 1, 28, 28], { generator: new Generator(6) });
  writeNpySync(join(dir, 'x2.npy'), xs);
  writeNpySync(join(dir, 'y2.npy'), evalLogits(small, xs));
  saveCheckpoint(join(dir, 'cifar.pth'), { model_state_dict: small.stateDict(), model_spec: spec });
  // the shipped model's recipe: the same conv1 with the max pool kept (the 'small' stem)
  const specS = makeSpec({ arch: 'resnet18', numClasses: 10, inChannels: 1, stem: 'small' });
  const pooled = buildSpecModel(specS, { seed: 7 });
  writeNpySync(join(dir, 'y3.npy'), evalLogits(pooled, xs));
  saveCheckpoint(join(dir, 'small.pth'), { model_state_dict: pooled.stateDict(), model_spec: specS });

  const cases = [
    { name: 'tutorial', file: 'tutorial.pth', arch: 'resnet18', num_classes: 3, input: 'x1.npy', logits: 'y1.npy' },
    { name: 'cifar', file: 'cifar.pth', input: 'x2.npy', logits: 'y2.npy' },
    { name: 'small', file: 'small.pth', input: 'x2.npy', logits: 'y3.npy' },
  ];
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ cases }));
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'train', 'checkpoint_check.py'), dir], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which this test needs: ${r.error?.message}`);
  assert.equal(r.status, 0, `checkpoint_check.py failed:\n${r.stdout}\n${r.stderr}`);
  const res = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
  for (const c of res) assert.equal(c.error, undefined, `${c.name}: ${c.error}`);
  const [tut, cif, sml] = res;
  assert.deepEqual(tut.keys, ['model_state_dict', 'optimizer_state_dict', 'epoch', 'loss', 'class_names']);
  assert.ok(tut.logits_max_abs_diff <= 1e-4 * Math.max(1, tut.logits_scale), `tutorial logits differ by ${tut.logits_max_abs_diff} (scale ${tut.logits_scale})`);
  assert.ok(tut.argmax_equal);
  assert.deepEqual(tut.epoch, { type: 'int', dtype: null, value: 1 });
  assert.equal(tut.loss.type, 'Tensor');
  assert.equal(tut.loss.dtype, 'torch.float64');
  assert.equal(tut.loss.value, lastLoss, 'the float is stored exactly');
  assert.deepEqual(tut.optim, { lr: 0.01, momentum: 0.9, weight_decay: 1e-4, groups: 1, state_entries: 62, buffers_match_params: true, stepped: true, finite: true });
  assert.ok(cif.logits_max_abs_diff <= 1e-4 * Math.max(1, cif.logits_scale), `cifar-stem logits differ by ${cif.logits_max_abs_diff}`);
  assert.ok(sml.logits_max_abs_diff <= 1e-4 * Math.max(1, sml.logits_scale), `small-stem logits differ by ${sml.logits_max_abs_diff}`);
  assert.ok(sml.argmax_equal);

  // back into ours, with the tutorial's calls
  const ckpt = loadCheckpoint(path);
  assert.equal(ckpt.epoch, 1);
  assert.equal(ckpt.loss, lastLoss);
  assert.deepEqual(ckpt.class_names, ['ants', 'bees', 'wasps']);
  const again = resnet18({ seed: 9 });
  replaceHead(again, 3);
  again.loadStateDict(ckpt.model_state_dict);
  sameBits(evalLogits(again, xe), logits, 'logits after loading back');
  const opt2 = new SGD(again.parameters(), { lr: 0.5 });
  opt2.loadStateDict(ckpt.optimizer_state_dict);
  assert.equal(opt2.paramGroups[0].lr, 0.01);
  assert.equal(opt2.paramGroups[0].momentum, 0.9);
  const mine = opt.stateDict().state, theirs = opt2.stateDict().state;
  assert.equal(theirs.size, mine.size);
  for (const [i, s] of mine) sameBits(theirs.get(i)!.momentum_buffer!, s.momentum_buffer!, `momentum_buffer ${i}`);
  // what is in the file: no BINFLOAT (0x47) in data.pkl, the float a 0-dim float64 tensor
  const raw = readPthSync(path).object as Map<string, unknown>;
  assert.ok(raw.get('loss') instanceof Tensor);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

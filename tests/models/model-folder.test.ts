// resnet-ts model folders (models/model-folder.ts) end to end: a `resnet train`-style checkpoint of the Fashion-MNIST
// recipe's model (resnet18, 1 channel, 'small' stem) exported with `resnet export` (float32 and float16), then used
// the ways a user would: loadModel / createModel give the checkpoint's logits (bit-exact from float32, within
// float16 rounding from float16); createClassifier and `resnet predict` take the folder's labels and its grey 28x28
// preprocessing; `resnet eval --checkpoint DIR` equals the checkpoint's own evaluation; a train checkpoint works as
// --weights directly; PyTorch builds the model from the model card's recipe, loads the float16 safetensors and gives
// our logits. Broken folders and misuse are errors that name the file and what was expected.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, assertClose, tempDir } from '../helpers.js';
import { Generator } from '../../src/tensor/random.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { randn } from '../../src/tensor/creation.js';
import { loadSharp } from '../../src/data/image.js';
import { FASHION_MNIST_CLASSES } from '../../src/data/fashion-mnist.js';
import type { Module } from '../../src/nn/module.js';
import { buildSpecModel, makeSpec } from '../../src/models/model-spec.js';
import { readModelFolder } from '../../src/models/model-folder.js';
import { createModel, loadModel } from '../../src/models/factory.js';
import { createClassifier } from '../../src/infer/classifier.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { dataRecipe, inferenceTransform } from '../../src/train/recipe.js';
import { writeNpySync } from '../../src/io/npy.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const resnet = (args: string[]) => {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const logitsOf = (m: Module, x: Tensor) => noGrad(() => (m.eval().forward(x) as Tensor));
const MEAN = 0.2860, STD = 0.3530;

interface Setup { dir: string; spec: ReturnType<typeof makeSpec>; model: Module; old: string; ckpt: string; pngs: string[]; grey: Uint8Array[] }

let cached: Setup | null = null;
async function setup(): Promise<Setup> {
  if (cached) return cached;
  const dir = tempDir('model-folder-');
  const spec = makeSpec({ arch: 'resnet18', numClasses: 10, inChannels: 1, stem: 'small' });
  const model = buildSpecModel(spec, { seed: 3 });
  noGrad(() => model.train().forward(randn([4, 1, 28, 28], { generator: new Generator(1) }))); // non-trivial BN statistics
  model.eval();
  const recipe = dataRecipe('fashion-mnist');
  const base = {
    model_state_dict: model.stateDict(), model_spec: spec, class_names: [...FASHION_MNIST_CLASSES], epoch: 3,
    metrics: { epoch: 3, val_accuracy: 0.5, val_loss: 1.25 }, best: { metric: 'val_accuracy', value: 0.5, epoch: 3 },
    run_config: { args: { data: 'fashion-mnist', arch: 'resnet18', stem: 'small', epochs: '3', 'log-every': '5', out: 'runs/x' }, data: recipe },
  };
  const old = join(dir, 'old.pth'), ckpt = join(dir, 'new.pth');
  saveCheckpoint(old, base); // as written before checkpoints carried their preprocessing
  saveCheckpoint(ckpt, { ...base, preprocess: JSON.stringify(inferenceTransform(recipe)) });
  const sharp = await loadSharp();
  const g = new Generator(7), pngs: string[] = [], grey: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const px = new Uint8Array(28 * 28).map(() => g.randint(256));
    const p = join(dir, `img${i}.png`);
    await sharp(Buffer.from(px), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(p);
    pngs.push(p);
    grey.push(px);
  }
  cached = { dir, spec, model, old, ckpt, pngs, grey };
  return cached;
}

/** The model's input for grey pixels, by hand: ToTensor then Normalize(0.2860, 0.3530). */
function input(grey: Uint8Array[]): Tensor {
  const x = new Float32Array(grey.length * 784);
  grey.forEach((px, n) => px.forEach((v, i) => { x[n * 784 + i] = (Math.fround(v / 255) - Math.fround(MEAN)) / Math.fround(STD); }));
  return new Tensor(x, [grey.length, 1, 28, 28]);
}

test('resnet export writes a folder that loads back as the same model (float32 exactly, float16 within its rounding)', async () => {
  const s = await setup();
  const d32 = join(s.dir, 'f32'), d16 = join(s.dir, 'f16');
  let r = resnet(['export', s.old, d32]);
  assert.equal(r.code, 0, r.err);
  r = resnet(['export', s.ckpt, d16, '--dtype', 'float16', '--name', 'test model']);
  assert.equal(r.code, 0, r.err);
  const cfg = JSON.parse(readFileSync(join(d16, 'config.json'), 'utf8'));
  assert.equal(cfg.library, 'resnet-ts');
  assert.deepEqual(cfg.model_spec, s.spec);
  assert.deepEqual(cfg.labels, [...FASHION_MNIST_CLASSES]);
  assert.equal(cfg.torch_dtype, 'float16');
  assert.equal(cfg.name, 'test model');
  assert.equal(cfg.training.command, 'resnet train --data fashion-mnist --arch resnet18 --stem small --epochs 3 --out runs/x', 'runtime-only flags left out');
  // the old checkpoint's preprocessing is made from its data recipe, and equals what new checkpoints carry
  assert.deepEqual(readModelFolder(d32).preprocess, cfg.preprocess);
  assert.deepEqual(cfg.preprocess.map((t: { name: string }) => t.name), ['Resize', 'CenterCrop', 'Grayscale', 'Normalize']);
  const card = readFileSync(join(d16, 'README.md'), 'utf8');
  assert.match(card, /m\.conv1 = torch\.nn\.Conv2d\(1, m\.conv1\.out_channels, 3, 1, 1, bias=False\)/);
  assert.doesNotMatch(card, /maxpool = torch\.nn\.Identity/, "the 'small' stem keeps the max pool");
  assert.match(card, /Validation accuracy at that epoch: 50\.00%/);

  const x = randn([2, 1, 28, 28], { generator: new Generator(2) });
  const want = logitsOf(s.model, x);
  const m32 = await loadModel({ weights: d32 });
  assert.deepEqual([...logitsOf(m32, x).contiguousData()], [...want.contiguousData()], 'float32 folder: bit-exact logits');
  const m16 = createModel({ weights: d16 });
  assertClose(logitsOf(m16, x), want, { rtol: 2e-2, atol: 2e-2 });
  // the folder's float16 weights are the checkpoint's rounded to nearest even
  const f16 = readModelFolder(d16).stateDict.get('layer1.0.conv1.weight')!.contiguousData() as Float32Array;
  const orig = s.model.stateDict().get('layer1.0.conv1.weight')!.contiguousData() as Float32Array;
  for (let i = 0; i < orig.length; i += 97) assert.ok(Math.abs(f16[i] - orig[i]) <= Math.abs(orig[i]) * 2 ** -11 + 2 ** -24, `element ${i}: ${f16[i]} vs ${orig[i]}`);
});

test('createClassifier and resnet predict use the folder labels and its grey 28x28 preprocessing', async () => {
  const s = await setup();
  const d32 = join(s.dir, 'f32c');
  assert.equal(resnet(['export', s.ckpt, d32]).code, 0);
  const want = logitsOf(s.model, input(s.grey)).softmax(1).contiguousData() as Float32Array;
  const clf = await createClassifier({ weights: d32, workers: 0, topk: 3 });
  try {
    assert.match(clf.describePreprocess(), /Resize, CenterCrop, Grayscale, Normalize/);
    const res = await clf.classify(s.pngs);
    res.forEach((r, n) => {
      const row = want.subarray(n * 10, n * 10 + 10);
      const top = row.indexOf(Math.max(...row));
      assert.equal(r.topk[0].index, top, `${r.input}: top class`);
      assert.equal(r.topk[0].label, FASHION_MNIST_CLASSES[top]);
      assert.ok(Math.abs(r.topk[0].probability - row[top]) <= 1e-6, `${r.input}: ${r.topk[0].probability} vs ${row[top]}`);
    });
  } finally {
    await clf.close();
  }
  // the CLI, and a train checkpoint given directly (it says its model, labels and preprocessing too)
  for (const weights of [d32, s.ckpt]) {
    const r = resnet(['predict', '--weights', weights, '--json', '--topk', '1', ...s.pngs]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { file: string; topk: { label: string; index: number }[] });
    lines.forEach((l, n) => {
      const row = [...want.subarray(n * 10, n * 10 + 10)];
      assert.equal(l.topk[0].index, row.indexOf(Math.max(...row)), `${weights}: ${l.file}`);
      assert.equal(l.topk[0].label, FASHION_MNIST_CLASSES[l.topk[0].index]);
    });
  }
});

test('resnet eval --checkpoint DIR equals the evaluation of the checkpoint it was exported from', async () => {
  const s = await setup();
  const d32 = join(s.dir, 'f32e');
  assert.equal(resnet(['export', s.ckpt, d32]).code, 0);
  const a = resnet(['eval', '--checkpoint', d32, '--data', 'fashion-mnist', '--limit', '48', '--json']);
  const b = resnet(['eval', '--checkpoint', s.ckpt, '--data', 'fashion-mnist', '--limit', '48', '--json']);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  const ja = JSON.parse(a.out), jb = JSON.parse(b.out);
  assert.equal(ja.count, 48);
  assert.deepEqual(ja.confusion_matrix, jb.confusion_matrix);
  assert.equal(ja.loss, jb.loss);
  assert.deepEqual(ja.classes, [...FASHION_MNIST_CLASSES]);
});

test('PyTorch builds the model card recipe, loads the float16 safetensors and gives our logits', async () => {
  const s = await setup();
  const d16 = join(s.dir, 'f16t');
  assert.equal(resnet(['export', s.ckpt, d16, '--dtype', 'float16']).code, 0);
  const x = randn([2, 1, 28, 28], { generator: new Generator(5) });
  writeNpySync(join(s.dir, 'x.npy'), x);
  writeNpySync(join(s.dir, 'y.npy'), logitsOf(createModel({ weights: d16 }), x));
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'models', 'model_folder_check.py'), d16, join(s.dir, 'x.npy'), join(s.dir, 'y.npy')],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which this test needs: ${r.error?.message}`);
  assert.equal(r.status, 0, `model_folder_check.py failed:\n${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout) as { max_abs_diff: number; scale: number; argmax_equal: boolean; dtypes: string[] };
  assert.deepEqual(out.dtypes, ['F16', 'I64'], 'float weights stored as F16, num_batches_tracked as I64');
  assert.ok(out.max_abs_diff <= 1e-4 * Math.max(1, out.scale), `logits differ by ${out.max_abs_diff} (scale ${out.scale})`);
  assert.ok(out.argmax_equal);
});

test('broken model folders and misuse are errors that say what is wrong', async () => {
  const s = await setup();
  const good = join(s.dir, 'good');
  assert.equal(resnet(['export', s.ckpt, good]).code, 0);
  const variant = (name: string, edit: (cfg: Record<string, unknown>) => void, dropWeights = false) => {
    const d = join(s.dir, name);
    cpSync(good, d, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    edit(cfg);
    writeFileSync(join(d, 'config.json'), JSON.stringify(cfg));
    if (dropWeights) rmSync(join(d, 'model.safetensors'));
    return d;
  };
  assert.throws(() => readModelFolder(variant('labels', (c) => { c.labels = ['a', 'b']; })), /config\.json: 2 labels for a model with 10 classes/);
  assert.throws(() => readModelFolder(variant('format', (c) => { c.format = 2; })), /config\.json: format 2 is not one this version reads/);
  assert.throws(() => readModelFolder(variant('spec', (c) => { (c.model_spec as Record<string, unknown>).stem = 'huge'; })), /config\.json: model_spec is not a valid model description/);
  assert.throws(() => readModelFolder(variant('noweights', () => {}, true)), /no model\.safetensors/);
  const random = variant('random', (c) => { (c.preprocess as unknown[]).unshift({ name: 'RandomCrop', size: 28, padding: 4 }); });
  await assert.rejects(createClassifier({ weights: random, workers: 0 }), /random: its preprocess: .*RandomCrop is a training augmentation/);
  assert.throws(() => createModel({ arch: 'resnet34', weights: good }), /these weights are a resnet18, not a resnet34; leave out arch/);
  assert.throws(() => createModel({ weights: good, numClasses: 5 }), /the model has 10 classes, not 5/);
  // a folder whose config.json is not ours is read as a Hugging Face folder (its own error)
  const hf = join(s.dir, 'hf');
  mkdirSync(hf);
  writeFileSync(join(hf, 'config.json'), JSON.stringify({ model_type: 'resnet' }));
  assert.throws(() => createModel({ weights: hf }), /no file named model\.safetensors/);
  // export needs a resnet train checkpoint
  const plain = join(s.dir, 'plain.pth');
  saveCheckpoint(plain, { model_state_dict: s.model.stateDict() });
  let r = resnet(['export', plain, join(s.dir, 'x')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /plain\.pth: has no model_spec, so it is not a resnet train checkpoint/);
  r = resnet(['export', s.ckpt]);
  assert.equal(r.code, 2);
  assert.match(r.err, /expected CHECKPOINT and OUT_DIR/);
  r = resnet(['export', s.ckpt, join(s.dir, 'y'), '--dtype', 'int8']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--dtype must be one of float32, float16, bfloat16/);
  r = resnet(['eval', '--checkpoint', good, '--data', 'fashion-mnist', '--arch', 'resnet18']);
  assert.equal(r.code, 2);
  assert.match(r.err, /is a model folder, which says its model: leave out --arch/);
});

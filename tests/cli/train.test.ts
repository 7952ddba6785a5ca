// resnet train / resnet eval in spawned processes, as a user runs them: a run killed with SIGKILL in the middle of
// an epoch (right after a mid-epoch checkpoint) and resumed with --resume ends with weights, buffers, optimizer
// state and metrics bit-identical to an unbroken run with the same seed, and never leaves a partial file at the
// checkpoint's path; fine-tuning a "pretrained" model on a synthetic image folder with --weights and
// --freeze-backbone (backbone unchanged, new head), the metric files and curves; resnet eval's --json output parsed
// back and checked against the run's own validation numbers (and for a bare state dict with --arch); usage errors
// exit 2.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.js';
import { Generator } from '../../src/tensor/random.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { loadSharp } from '../../src/data/image.js';
import { ResNetConfig, ResNetForImageClassification } from '../../src/models/hf.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function resnet(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', cwd });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function tinyConfigFile(dir: string, channels: number): string {
  const path = join(dir, `tiny${channels}.json`);
  writeFileSync(path, JSON.stringify({ model_type: 'resnet', num_channels: channels, embedding_size: 8, hidden_sizes: [8, 16, 24, 32], depths: [1, 1, 1, 1], layer_type: 'basic', num_labels: 10 }));
  return path;
}

function sameBits(a: Map<string, Tensor>, b: Map<string, Tensor>, what: string): void {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: keys`);
  for (const [k, t] of a) {
    const x = t.contiguousData(), y = b.get(k)!.contiguousData();
    assert.equal(x.length, y.length, `${what}: ${k} size`);
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) assert.fail(`${what}: ${k}[${i}] ${x[i]} vs ${y[i]}`);
  }
}

test('usage errors exit 2 with the usage; bad runs exit 1', () => {
  const dir = tempDir('cli-train-');
  for (const args of [
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18'], // no --out
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'r'), '--lr', 'fast'],
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'r'), '--scheduler', 'sometimes'],
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'r'), '--epochs', '2', '--warmup-epochs', '2'],
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'r'), '--num-classes', '3'],
    ['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'r'), '--freeze-bn'],
    ['train', '--bogus'],
    ['eval', '--data', 'fashion-mnist'],
    ['eval', '--checkpoint', 'x.pth', '--data', 'fashion-mnist', '--split', 'test'],
  ]) {
    const r = resnet(args);
    assert.equal(r.code, 2, `${args.join(' ')} -> exit ${r.code}: ${r.err}`);
    assert.match(r.err, /^resnet (train|eval): .+\n/);
    assert.match(r.err, /Usage: resnet (train|eval)/);
  }
  assert.equal(resnet(['train', '--help']).code, 0);
  assert.equal(resnet(['eval', '--help']).code, 0);
  const noRun = resnet(['train', '--data', 'fashion-mnist', '--arch', 'resnet18', '--out', join(dir, 'none'), '--resume']);
  assert.equal(noRun.code, 1);
  assert.match(noRun.err, /--resume: .*last\.pth does not exist/);
  const badArch = resnet(['train', '--data', 'fashion-mnist', '--arch', 'resnet19', '--out', join(dir, 'r2'), '--limit-train', '8']);
  assert.equal(badArch.code, 1);
  assert.match(badArch.err, /unknown architecture 'resnet19'/);
});

test('a run killed with SIGKILL mid-epoch and resumed ends bit-identical to an unbroken run', async () => {
  const dir = tempDir('cli-train-');
  const arch = tinyConfigFile(dir, 1);
  const args = (out: string) => ['train', '--data', 'fashion-mnist', '--arch', arch, '--out', join(dir, out), '--epochs', '2', '--batch-size', '16',
    '--limit-train', '256', '--limit-val', '64', '--checkpoint-every', '4', '--seed', '3', '--scheduler', 'onecycle', '--label-smoothing', '0.1'];
  const a = resnet(args('A'));
  assert.equal(a.code, 0, a.err);

  const child = spawn(process.execPath, [MAIN, ...args('B')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      // kill as soon as the first mid-epoch checkpoint of epoch 2 is on disk
      if (/checkpoint .*last\.pth \(epoch 2, step 4\/16\)/.test(err)) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  assert.equal(exit.signal, 'SIGKILL', `the run was to be killed mid-epoch but ended with ${exit.code}: ${err}`);
  const killedAt = loadCheckpoint(join(dir, 'B', 'last.pth')); // a complete file: the reader checks every size and offset
  assert.equal(killedAt.epoch, 1, 'killed in the second epoch');
  assert.ok(killedAt.batch > 0 && killedAt.batch < 16, `a mid-epoch checkpoint (step ${killedAt.batch}/16)`);
  // every file at its final name is whole: epoch 1's metrics row, the curves
  assert.equal(JSON.parse(readFileSync(join(dir, 'B', 'metrics.jsonl'), 'utf8').trim()).epoch, 1);
  assert.match(readFileSync(join(dir, 'B', 'curves.svg'), 'utf8'), /<\/svg>\n$/);
  assert.ok(existsSync(join(dir, 'B', 'best.pth')) && loadCheckpoint(join(dir, 'B', 'best.pth')).epoch === 1);

  const b = resnet([...args('B'), '--resume']);
  assert.equal(b.code, 0, b.err);
  assert.match(b.err, new RegExp(`resuming .*last\\.pth at epoch 2, step ${killedAt.batch}/16`));
  const A = loadCheckpoint(join(dir, 'A', 'last.pth')), B = loadCheckpoint(join(dir, 'B', 'last.pth'));
  sameBits(B.model_state_dict, A.model_state_dict, 'weights and buffers');
  const stA = (A.optimizer_state_dict as { state: Map<number, Map<string, Tensor>> }).state;
  const stB = (B.optimizer_state_dict as { state: Map<number, Map<string, Tensor>> }).state;
  for (const [i, s] of stA) sameBits(stB.get(i)!, s, `optimizer state ${i}`);
  assert.deepEqual(B.scheduler_state_dict, A.scheduler_state_dict);
  const strip = (h: typeof A.history) => h.map(({ seconds: _s, images_per_sec: _i, ...rest }) => rest);
  assert.deepEqual(strip(B.history), strip(A.history));
  assert.equal(B.global_step, 32);
  const rows = readFileSync(join(dir, 'B', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  assert.deepEqual(rows.map((r) => r.train_loss), A.history.map((h) => h.train_loss), 'metrics.jsonl has each epoch once');
  assert.deepEqual(readdirSync(join(dir, 'B')).filter((f) => f.endsWith('.tmp')), [], 'no temp file is left once the run resumed');
  const conflict = resnet([...args('B').map((x) => (x === '3' ? '4' : x)), '--resume']);
  assert.equal(conflict.code, 2);
  assert.match(conflict.err, /--resume continues .* it was started with --seed 3, not --seed 4/);
});

/** A class folder of 16x16 RGB PNGs: class 0 bright on top, class 1 bright at the bottom, noise everywhere. */
async function writeHalves(root: string, split: string, perClass: number, seed: number): Promise<void> {
  const sharp = await loadSharp();
  const g = new Generator(seed);
  for (const [c, name] of ['top', 'bottom'].entries()) {
    mkdirSync(join(root, split, name), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = new Uint8Array(16 * 16 * 3);
      for (let p = 0; p < px.length; p++) {
        const row = Math.floor(p / 48);
        const bright = (row < 8) === (c === 0);
        px[p] = Math.max(0, Math.min(255, Math.round((bright ? 190 : 60) + g.normal() * 30)));
      }
      await sharp(Buffer.from(px), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(join(root, split, name, `${i}.png`));
    }
  }
}

test('fine-tuning with --weights and --freeze-backbone on an image folder; files; resnet eval --json agrees with the run', async () => {
  const dir = tempDir('cli-train-');
  const data = join(dir, 'halves');
  await writeHalves(data, 'train', 24, 1);
  await writeHalves(data, 'val', 8, 2);
  const arch = tinyConfigFile(dir, 3);
  // "pretrained": a 5-class model of the same config, saved as a torch.save checkpoint
  const pre = new ResNetForImageClassification(ResNetConfig.fromJSONFile(arch), { seed: 8 });
  const prePath = join(dir, 'pre.pth');
  saveCheckpoint(prePath, { model_state_dict: pre.stateDict() });
  const out = join(dir, 'runs', 'ft');
  const r = resnet(['train', '--data', data, '--arch', arch, '--weights', prePath, '--out', out, '--epochs', '2', '--batch-size', '8', '--image-size', '16',
    '--stem', 'imagenet', '--freeze-backbone', '--freeze-bn', '--lr', '0.05', '--workers', '1', '--augment', 'none']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /classifier\.1: new head for 2 classes/);
  assert.match(r.err, /backbone frozen: 66 trainable parameters/);
  assert.match(r.out, /done: 2 epochs .* best val_accuracy/);
  for (const f of ['last.pth', 'best.pth', 'metrics.jsonl', 'metrics.csv', 'curves.svg']) assert.ok(existsSync(join(out, f)), f);
  const last = loadCheckpoint(join(out, 'last.pth'));
  assert.deepEqual(last.class_names, ['bottom', 'top']);
  const preSd = pre.stateDict();
  const body = new Map([...last.model_state_dict].filter(([k]) => !k.startsWith('classifier.')));
  sameBits(body, new Map([...preSd].filter(([k]) => !k.startsWith('classifier.'))), 'frozen backbone with frozen BN');
  assert.deepEqual([...last.model_state_dict.get('classifier.1.weight')!.shape], [2, 32]);
  const csv = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,global_step,seconds,images_per_sec');
  assert.equal(csv.length, 3);
  const svg = readFileSync(join(out, 'curves.svg'), 'utf8');
  assert.match(svg, /^<\?xml[^]*<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^]*>loss<\/text>[^]*>accuracy<\/text>[^]*<\/svg>\n$/);
  assert.doesNotMatch(svg, /<script|href=/);

  const best = loadCheckpoint(join(out, 'best.pth'));
  const ev = resnet(['eval', '--checkpoint', join(out, 'best.pth'), '--data', data, '--json']);
  assert.equal(ev.code, 0, ev.err);
  const j = JSON.parse(ev.out) as { count: number; correct: number; accuracy: number; loss: number; classes: string[]; per_class: { class: string; count: number; accuracy: number }[]; confusion_matrix: number[][] };
  assert.equal(j.count, 16);
  assert.deepEqual(j.classes, ['bottom', 'top']);
  assert.equal(j.accuracy, best.best!.value, 'eval reproduces the run\'s best validation accuracy');
  assert.equal(j.accuracy, j.correct / j.count);
  assert.equal(j.confusion_matrix.flat().reduce((s, v) => s + v, 0), 16);
  assert.deepEqual(j.per_class.map((c) => c.count), [8, 8]);
  j.per_class.forEach((c, i) => assert.equal(c.accuracy, j.confusion_matrix[i][i] / c.count));
  const text = resnet(['eval', '--checkpoint', join(out, 'best.pth'), '--data', data]);
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /accuracy [\d.]+% \(\d+\/16\)[^]*per-class accuracy:[^]*bottom[^]*confusion matrix/);

  // a bare state dict (no model_spec): --arch gives the architecture, the shapes give classes, channels and stem
  const plain = join(dir, 'plain.pth');
  saveCheckpoint(plain, { model_state_dict: best.model_state_dict });
  assert.equal(resnet(['eval', '--checkpoint', plain, '--data', data, '--json']).code, 2);
  const ev2 = resnet(['eval', '--checkpoint', plain, '--data', data, '--arch', arch, '--image-size', '16', '--json']);
  assert.equal(ev2.code, 0, ev2.err);
  assert.equal((JSON.parse(ev2.out) as { accuracy: number }).accuracy, j.accuracy);
});

// The CLI in a spawned process, as a user runs it: help, version with the backend, usage errors (exit 2),
// a forward pass through `resnet run` whose output equals the API's, and bench's JSON line.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, assertClose } from '../helpers.js';
import { readNpySync, writeNpySync } from '../../src/io/npy.js';
import { writePthSync } from '../../src/io/pth-write.js';
import { writeSafetensorsSync } from '../../src/io/safetensors.js';
import { randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { resnet18 } from '../../src/models/resnet.js';
import { withBackend } from '../../src/backend/select.js';
import { noGrad } from '../../src/tensor/autograd.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function resnet(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('help and version', () => {
  const h = resnet(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /Usage: resnet <command>/);
  assert.match(h.out, /run .*\n.*bench/s);
  const v = resnet(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.out, /resnet-ts \d+\.\d+\.\d+/);
  assert.match(v.out, /backend: (native|js) \(/);
  const vj = resnet(['--version'], { RESNET_BACKEND: 'js' });
  assert.match(vj.out, /backend: js \(RESNET_BACKEND=js\)/);
  assert.equal(resnet(['run', '--help']).code, 0);
});

test('usage errors are one line plus the usage, exit 2', () => {
  for (const args of [['nope'], ['run', '--frobnicate'], ['run', '--arch', 'resnet18'], ['bench', '--arch', 'resnet18', '--batch-size', '0'], ['bench', '--arch', 'resnet18', '--backend', 'gpu']]) {
    const r = resnet(args);
    assert.equal(r.code, 2, `${args.join(' ')} -> exit ${r.code}: ${r.err}`);
    assert.match(r.err, /^resnet( \w+)?: .+\n/);
    assert.match(r.err, /Usage: resnet/);
  }
  const bad = resnet(['run', '--arch', 'resnet19', '--input', 'x.npy', '--output', 'y.npy']);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /unknown architecture 'resnet19'; known: .*\bresnet18\b.*\bwide_resnet101_2\b/);
});

test('resnet run writes the same logits as the API (both backends)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-cli-'));
  try {
    const x = randn([2, 3, 48, 40], { generator: new Generator(4) });
    const inp = join(dir, 'x.npy'), out = join(dir, 'y.npy');
    writeNpySync(inp, x);
    const r = resnet(['run', '--arch', 'resnet18', '--seed', '3', '--num-classes', '7', '--input', inp, '--output', out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /resnet18 on \[2x3x48x40\] -> \[2x7\]/);
    const y = readNpySync(out);
    const want = withBackend('js', () => noGrad(() => resnet18({ seed: 3, numClasses: 7 }).eval().forward(x))); // as the CLI runs it
    assertClose(y, want, { atol: 1e-5, scale: 1e-4, what: 'CLI logits' });
    const rj = resnet(['run', '--arch', 'resnet18', '--seed', '3', '--num-classes', '7', '--input', inp, '--output', out, '--backend', 'js']);
    assert.equal(rj.code, 0, rj.err);
    assertClose(readNpySync(out), want, { atol: 0, what: 'js CLI logits equal js API logits exactly' });
    const missing = resnet(['run', '--arch', 'resnet18', '--input', join(dir, 'none.npy'), '--output', out]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /none\.npy/);
    assert.ok(!existsSync(join(dir, 'none.npy')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resnet run --weights takes a safetensors file or a torch.save .pth checkpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-cli-'));
  try {
    const x = randn([1, 3, 40, 44], { generator: new Generator(8) });
    const inp = join(dir, 'x.npy'), out = join(dir, 'y.npy');
    writeNpySync(inp, x);
    const src = resnet18({ seed: 21, numClasses: 3 });
    const want = withBackend('js', () => src.eval().forward(x));
    const st = join(dir, 'w.safetensors'), pth = join(dir, 'ckpt.pth');
    writeSafetensorsSync(st, src.stateDict());
    // the tutorial's checkpoint layout
    writePthSync(pth, new Map<string, unknown>([['epoch', 3], ['model_state_dict', src.stateDict()]]));
    for (const w of [st, pth]) {
      const r = resnet(['run', '--arch', 'resnet18', '--num-classes', '3', '--weights', w, '--input', inp, '--output', out]);
      assert.equal(r.code, 0, r.err);
      assertClose(readNpySync(out), want, { atol: 1e-5, scale: 1e-4, what: `logits with --weights ${w}` });
    }
    const wrong = resnet(['run', '--arch', 'resnet18', '--weights', pth, '--input', inp, '--output', out]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /ckpt\.pth: Error\(s\) in loading state_dict for ResNet:\n\tsize mismatch for fc\.weight/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resnet bench prints a JSON result', () => {
  const r = resnet(['bench', '--arch', 'resnet18', '--size', '64', '--repeats', '2', '--warmup', '1', '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out.trim());
  assert.equal(j.arch, 'resnet18');
  assert.equal(j.batchSize, 1);
  assert.ok(j.imagesPerSec > 0 && j.medianMs > 0);
});

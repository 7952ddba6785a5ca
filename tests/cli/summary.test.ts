// `resnet summary` in a spawned process, as a user runs it: seed 004's walk-through as a table, --json parsed back
// (totals equal torchvision's published figures), a Hugging Face config.json, and the usage errors (exit 2).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';
import { hfConfigForTorchvision } from '../../src/models/convert.js';
import type { Summary } from '../../src/models/summary.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');

function resnet(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('resnet summary resnet18 --depth 1 prints seed 004\'s walk-through with totals', () => {
  const r = resnet(['summary', 'resnet18', '--depth', '1']);
  assert.equal(r.code, 0, r.err);
  const rows = r.out.split('\n').filter((l) => /^\w+ \(\w+\) /.test(l) && !l.startsWith('Layer (type)')).map((l) => l.split(/\s{2,}/).slice(0, 2));
  assert.deepEqual(rows, [
    ['conv1 (Conv2d)', '64x112x112'], ['bn1 (BatchNorm2d)', '64x112x112'], ['relu (ReLU)', '64x112x112'],
    ['maxpool (MaxPool2d)', '64x56x56'], ['layer1 (Sequential)', '64x56x56'], ['layer2 (Sequential)', '128x28x28'],
    ['layer3 (Sequential)', '256x14x14'], ['layer4 (Sequential)', '512x7x7'], ['avgpool (AdaptiveAvgPool2d)', '512x1x1'],
    ['fc (Linear)', '1000'],
  ]);
  assert.match(r.out, /^resnet18: input 1x3x224x224, output 1x1000/);
  assert.match(r.out, /^Total params: 11,689,512$/m);
  assert.match(r.out, /^Multiply-adds \(conv \+ linear, as torchvision's GFLOPS\): 1\.81 G$/m);
  assert.match(r.out, /^Params \+ buffers size \(MiB\): 44\.\d\d$/m);
  assert.match(r.out, /^Estimated total size \(MiB\): \d+\.\d\d$/m);
  const all = resnet(['summary', 'resnet18']);
  assert.match(all.out, /^ {4}layer2\.0\.downsample \(Sequential\) +128x28x28 /m, 'every module by default, indented by depth');
  assert.match(all.out, /^ {4}layer1\.0\.relu \(ReLU\) x2 +64x56x56 /m);
});

test('resnet summary resnet50 --json: rows and totals parse back', () => {
  const r = resnet(['summary', 'resnet50', '--json']);
  assert.equal(r.code, 0, r.err);
  const s = JSON.parse(r.out) as Summary & { arch: string };
  assert.equal(s.arch, 'resnet50');
  assert.equal(s.totalParams, 25_557_032);
  assert.equal((s.totalMacs / 1e9).toFixed(2), '4.09');
  assert.deepEqual(s.inputShape, [1, 3, 224, 224]);
  const shapes = Object.fromEntries(s.rows.filter((x) => x.depth === 1).map((x) => [x.name, x.outputShape]));
  assert.deepEqual(shapes, {
    conv1: [1, 64, 112, 112], bn1: [1, 64, 112, 112], relu: [1, 64, 112, 112], maxpool: [1, 64, 56, 56],
    layer1: [1, 256, 56, 56], layer2: [1, 512, 28, 28], layer3: [1, 1024, 14, 14], layer4: [1, 2048, 7, 7],
    avgpool: [1, 2048, 1, 1], fc: [1, 1000],
  });
  assert.ok(s.rows.some((x) => x.name === 'layer3.5.relu' && x.calls === 3));
  const small = JSON.parse(resnet(['summary', 'resnet50', '--json', '--input', '3x64x96', '--batch', '2', '--depth', '2']).out) as Summary;
  assert.deepEqual(small.inputShape, [2, 3, 64, 96]);
  assert.deepEqual(small.rows.find((x) => x.name === 'layer4')!.outputShape, [2, 2048, 2, 3]);
  assert.ok(small.rows.every((x) => x.depth <= 2) && small.rows.some((x) => x.name === 'layer3.5'));
});

test('resnet summary config.json (Hugging Face)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'resnet-summary-'));
  try {
    const cfg = join(dir, 'config.json');
    hfConfigForTorchvision('resnet18', { numLabels: 1000 }).toJSONFile(cfg);
    const r = resnet(['summary', cfg, '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out) as Summary;
    assert.equal(s.model, 'ResNetForImageClassification');
    assert.equal(s.totalParams, 11_689_512);
    assert.equal((s.totalMacs / 1e9).toFixed(2), '1.81');
    assert.deepEqual(s.rows.find((x) => x.name === 'resnet.encoder.stages.3')!.outputShape, [1, 512, 7, 7]);
    const t = resnet(['summary', cfg, '--depth', '4']);
    assert.match(t.out, /^ {6}resnet\.encoder\.stages\.1 \(ResNetStage\) +128x28x28 /m);
    // not a config: a runtime error naming the file, exit 1
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ not json');
    const b = resnet(['summary', bad]);
    assert.equal(b.code, 1);
    assert.match(b.err, /^resnet summary: .*bad\.json/);
    // the input does not fit the config's channels: a usage error
    const c = resnet(['summary', cfg, '--input', '1x64x64']);
    assert.equal(c.code, 2, c.err);
    assert.match(c.err, /^resnet summary: --input 1x64x64 does not fit .*channel dimension/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resnet summary: usage errors are one line plus the usage, exit 2', () => {
  assert.equal(resnet(['summary', '--help']).code, 0);
  assert.match(resnet(['--help']).out, /^ +summary +one row per module/m);
  for (const args of [['summary'], ['summary', 'resnet19'], ['summary', 'resnet18', '--input', '3x224'], ['summary', 'resnet18', '--input', 'big'],
    ['summary', 'resnet18', '--depth', '0'], ['summary', 'resnet18', '--frobnicate'], ['summary', 'resnet18', 'resnet50']]) {
    const r = resnet(args);
    assert.equal(r.code, 2, `${args.join(' ')} -> exit ${r.code}: ${r.err}`);
    assert.match(r.err, /^resnet summary: [^\n]+\nUsage: resnet summary <arch \| config\.json>/);
  }
  assert.match(resnet(['summary', 'resnet19']).err, /unknown architecture 'resnet19'.*known: .*resnet18/);
});

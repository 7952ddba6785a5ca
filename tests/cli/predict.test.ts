// `resnet predict` and `resnet embed` in a spawned process, as a user runs them, on real photos with a
// torchvision-written .pth of a random resnet18 (fixtures: scripts/fixtures/make_predict.py): JSON lines parsed back
// equal torch's top-5; a folder mixing good images and bad files (empty, truncated JPEG, text named .jpg, pixel bomb)
// answers the good ones, names every bad one on stderr and exits 1; many files give one line each; usage errors exit
// 2; embed writes an (N, D) float32 .npy equal to torch's avgpool features and the row order beside it.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { readNpySync } from '../../src/io/npy.js';
import { ROOT, assertClose, fixture } from '../helpers.js';
import { CountProgress } from '../../src/cli/predict.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const expected = readSafetensorsSync(fixture('predict', 'expected.safetensors'));
const FILES = JSON.parse(expected.metadata!.files) as string[];
const want = (kind: string, name: string) => expected.tensors.get(`${kind}.${name}`)!;
const IMAGES = fixture('predict', 'images');
const PTH = fixture('predict', 'resnet18.pth');
const tmp = mkdtempSync(join(tmpdir(), 'resnet-predict-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function resnet(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Line { file: string; topk?: { label: string; index: number; probability: number }[]; error?: string }
const jsonLines = (out: string): Line[] => out.trim().split('\n').map((l) => JSON.parse(l) as Line);

function checkTop5(line: Line, name: string): void {
  assert.equal(line.error, undefined, line.error);
  assert.deepEqual(line.topk!.map((t) => t.index), Array.from(want('top5', name).toArray()), `${name}: top-5`);
  const p = want('probs', name).toArray();
  for (const t of line.topk!) assert.ok(Math.abs(t.probability - p[t.index]) <= 1e-4, `${name}: class ${t.index}: ${t.probability} vs torch ${p[t.index]}`);
}

test('predict --json on a folder of real photos: top-5 equal to torch, exit 0; the table for a few files', () => {
  const r = resnet(['predict', IMAGES, '--weights', PTH, '--json', '--batch-size', '3']);
  assert.equal(r.code, 0, r.err);
  const lines = jsonLines(r.out);
  assert.deepEqual(lines.map((l) => l.file), FILES.map((f) => join(IMAGES, f)), 'the folder, sorted');
  lines.forEach((l, i) => checkTop5(l, FILES[i]));
  const labels = join(tmp, 'labels.txt');
  writeFileSync(labels, `${Array.from({ length: 1000 }, (_, i) => `name ${i}`).join('\n')}\n`);
  const t = resnet(['predict', join(IMAGES, 'coffee.png'), join(IMAGES, 'chelsea.jpg'), '--weights', PTH, '--topk', '3', '--labels', labels]);
  assert.equal(t.code, 0, t.err);
  const blocks = t.out.trim().split('\n\n');
  assert.equal(blocks.length, 2);
  const rows = blocks[0].split('\n');
  assert.equal(rows[0], join(IMAGES, 'coffee.png'));
  assert.equal(rows.length, 4);
  const top = want('top5', 'coffee.png').toArray()[0], p = want('probs', 'coffee.png').toArray()[top];
  assert.match(rows[1], new RegExp(`^ +${(p * 100).toFixed(2)}% +${top}  name ${top}$`));
  assert.match(blocks[1], /chelsea\.jpg\n/);
});

test('a folder mixing photos and bad files: every bad file named on stderr with its reason, the photos answered, exit 1', () => {
  const dir = join(tmp, 'mixed');
  mkdirSync(dir);
  for (const f of ['chelsea.png', 'coffee.png']) copyFileSync(join(IMAGES, f), join(dir, f));
  for (const f of ['empty.jpg', 'truncated.jpg', 'text.jpg', 'bomb.png']) copyFileSync(fixture('predict', 'bad', f), join(dir, f));
  const r = resnet(['predict', dir, join(tmp, 'missing.jpg'), '--weights', PTH, '--json', '--batch-size', '4']);
  assert.equal(r.code, 1, r.err);
  const lines = jsonLines(r.out);
  const byFile = new Map(lines.map((l) => [l.file, l]));
  assert.equal(lines.length, 7);
  checkTop5(byFile.get(join(dir, 'chelsea.png'))!, 'chelsea.png');
  checkTop5(byFile.get(join(dir, 'coffee.png'))!, 'coffee.png');
  const reasons: [string, RegExp][] = [['empty.jpg', /the file is empty \(0 bytes\)/], ['truncated.jpg', /cannot decode the JPEG image/],
    ['text.jpg', /the content is text .*not an image/], ['bomb.png', /30000x30000 .*decompression bomb/]];
  const errLines = r.err.trim().split('\n');
  for (const [f, re] of reasons) {
    const p = join(dir, f);
    assert.match(byFile.get(p)!.error!, re);
    const mine = errLines.filter((l) => l.startsWith(`resnet predict: ${p}: `));
    assert.equal(mine.length, 1, `one stderr line names ${f}:\n${r.err}`);
    assert.match(mine[0], re);
  }
  assert.ok(errLines.some((l) => l === `resnet predict: ${join(tmp, 'missing.jpg')}: no such file or directory`), r.err);
  assert.match(r.err, /2 of 7 inputs classified .*, 5 failed/);
});

test('many files: one line per file (top-1), quoted globs expanded by us', () => {
  const dir = join(tmp, 'many');
  mkdirSync(dir);
  const names = Array.from({ length: 12 }, (_, i) => `img${String(i).padStart(2, '0')}.${i % 2 ? 'jpg' : 'png'}`);
  names.forEach((n, i) => copyFileSync(join(IMAGES, i % 2 ? 'chelsea.jpg' : 'coffee.png'), join(dir, n)));
  const r = resnet(['predict', join(dir, 'img*.png'), join(dir, 'img0?.jpg'), join(dir, 'img1?.jpg'), '--weights', PTH, '--batch-size', '4']);
  assert.equal(r.code, 0, r.err);
  const rows = r.out.trim().split('\n');
  const order = [...names.filter((n) => n.endsWith('.png')), ...names.filter((n) => n.endsWith('.jpg'))];
  assert.deepEqual(rows.map((l) => l.split(/\s+/)[0]), order.map((n) => join(dir, n)));
  for (const row of rows) {
    const src = row.includes('.png') ? 'coffee.png' : 'chelsea.jpg';
    const top = want('top5', src).toArray()[0];
    assert.match(row, new RegExp(` ${(want('probs', src).toArray()[top] * 100).toFixed(2)}%  class ${top} \\(${top}\\)$`));
  }
  assert.match(r.err, /12 of 12 inputs classified in [\d.]+ s \([\d.]+ images\/s\)\n$/);
  const none = resnet(['predict', join(dir, '*.gif'), '--weights', PTH]);
  assert.equal(none.code, 1);
  assert.match(none.err, /\*\.gif: no files match/);
});

test('usage errors: one line and the usage, exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['predict'], /give image files, directories or globs/], [['predict', IMAGES, '--topk', '0'], /--topk expects an integer >= 1, got '0'/],
    [['predict', IMAGES, '--arch', 'resnet18', '--config', 'c.json'], /one of --arch or --config/], [['predict', IMAGES, '--frobnicate'], /frobnicate/],
    [['predict', IMAGES, '--batch-size', 'x'], /--batch-size expects an integer/], [['predict', IMAGES, '--backend', 'gpu'], /--backend must be one of js, native/],
    [['embed', IMAGES], /--output is required/],
  ];
  for (const [args, re] of cases) {
    const r = resnet(args);
    assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code}: ${r.err}`);
    assert.match(r.err.split('\n')[0], re);
    assert.match(r.err, /Usage: resnet (predict|embed)/);
  }
  const h = resnet(['--help']);
  assert.match(h.out, /predict .*\n.*embed /s);
  assert.equal(resnet(['predict', '--help']).code, 0);
});

test('embed writes (N, D) float32 equal to torch\'s avgpool features, the row order beside it; --normalize', () => {
  const out = join(tmp, 'emb.npy');
  const r = resnet(['embed', IMAGES, '--weights', PTH, '--output', out]);
  assert.equal(r.code, 0, r.err);
  const e = readNpySync(out);
  assert.equal(e.dtype, 'float32');
  assert.deepEqual([...e.shape], [FILES.length, 512]);
  const meta = JSON.parse(readFileSync(`${out}.json`, 'utf8'));
  assert.deepEqual(meta.files, FILES.map((f) => join(IMAGES, f)));
  assert.deepEqual(meta.shape, [FILES.length, 512]);
  assert.equal(meta.normalized, false);
  assert.deepEqual(meta.errors, []);
  const rows = e.toArray();
  FILES.forEach((f, i) => assertClose(rows.slice(i * 512, (i + 1) * 512), want('embed', f), { atol: 1e-5, scale: 1e-4, what: `embedding of ${f}` }));
  const outN = join(tmp, 'embn.npy');
  const rn = resnet(['embed', join(IMAGES, 'coffee.png'), fixture('predict', 'bad', 'text.jpg'), join(IMAGES, 'chelsea.png'), '--weights', PTH, '--output', outN, '--normalize']);
  assert.equal(rn.code, 1, rn.err);
  assert.match(rn.err, /text\.jpg: the content is text/);
  const n = readNpySync(outN);
  assert.deepEqual([...n.shape], [2, 512]);
  const metaN = JSON.parse(readFileSync(`${outN}.json`, 'utf8'));
  assert.deepEqual(metaN.files, [join(IMAGES, 'coffee.png'), join(IMAGES, 'chelsea.png')]);
  assert.equal(metaN.normalized, true);
  assert.equal(metaN.errors.length, 1);
  const nv = n.toArray();
  ['coffee.png', 'chelsea.png'].forEach((f, i) => {
    const v = want('embed', f).toArray();
    const norm = Math.hypot(...v);
    assertClose(nv.slice(i * 512, (i + 1) * 512), v.map((x) => x / norm), { atol: 1e-6, what: `normalized ${f}` });
  });
  const none = join(tmp, 'none.npy');
  const rb = resnet(['embed', fixture('predict', 'bad', 'empty.jpg'), '--weights', PTH, '--output', none]);
  assert.equal(rb.code, 1);
  assert.match(rb.err, /nothing written/);
  assert.ok(!existsSync(none) && !existsSync(`${none}.json`));
});

test('the progress bar: count, percent, images/s and ETA on one redrawn line; printed lines do not tear it', () => {
  let text = '';
  const stream = { columns: 120, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
  const bar = new CountProgress(40, stream);
  bar.tick(10);
  assert.match(text, /^\r\x1b\[K10\/40 \[#{5} {15}\]  25%  [\d.]+ images\/s  ETA \d+:\d\d$/);
  text = '';
  bar.print(stream, 'a result');
  assert.match(text, /^\r\x1b\[Ka result\n\r\x1b\[K10\/40 /, 'cleared, printed, redrawn');
  bar.tick(30);
  assert.match(text, /40\/40 \[#{20}\] 100%/);
  text = '';
  bar.finish();
  assert.equal(text, '\n');
});

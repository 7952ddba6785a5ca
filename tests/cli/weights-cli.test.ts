// The weights side of the CLI in spawned processes, as a user runs it: `resnet inspect` (text and --json) on the
// tutorial's checkpoint {epoch, model_state_dict, optimizer_state_dict, loss} written by PyTorch and on an HF folder;
// `resnet convert` torchvision .pth -> HF folder -> torchvision safetensors / .pth, bit-equal; `resnet run --weights`
// with a folder, with hf:org/name served by a local stand-in for the hub (HF_ENDPOINT, HF_HOME in a temp dir, then
// HF_HUB_OFFLINE=1), with a URL and a registry name served locally (TORCH_HOME, RESNET_TORCHVISION_BASE_URL); and
// `resnet bench --weights`. Processes are spawned asynchronously: the stand-in server lives in this process.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, assertClose, fixture } from '../helpers.js';
import { type FakeHub, startFakeHub } from '../hub-server.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { readNpySync, writeNpySync } from '../../src/io/npy.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { readPthSync, extractStateDict } from '../../src/io/pth.js';
import type { InspectReport } from '../../src/cli/inspect.js';

const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TOL = { atol: 1e-5, scale: 1e-4 };

function resnet(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

const temps: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'resnet-wcli-'));
  temps.push(d);
  return d;
};
let hub: FakeHub;
let work: string;
let x: string; // the tutorial's input as .npy
let logits: Tensor; // torch's logits for it
before(async () => {
  hub = await startFakeHub();
  work = temp();
  const io = readSafetensorsSync(fixture('pretrained', 'tutorial.io.safetensors'));
  x = join(work, 'x.npy');
  writeNpySync(x, io.tensors.get('input')!);
  logits = io.tensors.get('logits')!;
});
after(async () => {
  await hub.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

interface TutorialFacts {
  top_level: string[]; epoch: number; loss: number; keys: [string, number[], string][]; num_params: number; numel: number; bytes: number;
  optimizer_state_entries: number; param_groups: Record<string, unknown>[];
}

test('inspect: the tutorial checkpoint written by PyTorch, as text and as JSON', async () => {
  const ckpt = fixture('pretrained', 'tutorial.pth');
  const facts = JSON.parse(readFileSync(fixture('pretrained', 'tutorial.json'), 'utf8')) as TutorialFacts;
  const t = await resnet(['inspect', ckpt]);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /torch\.save checkpoint \(zip\)/);
  assert.match(t.out, /^ {2}epoch +5$/m);
  assert.match(t.out, /^ {2}model_state_dict +state dict of 122 tensors {2}\(the state dict, below\)$/m);
  assert.match(t.out, /^ {2}optimizer_state_dict +dict of 2: \{state: dict of 62, param_groups: list of 1 \[dict of \d+: \{lr: 0\.001, momentum: 0\.9,/m);
  assert.match(t.out, /^ {2}layer4\.1\.bn2\.running_var +\[512\] +float32 +512$/m);
  assert.match(t.out, /^total: 122 tensors, 11,177,538 parameters, /m);
  assert.match(t.out, /^architecture: torchvision resnet18, num_classes 2$/m);

  const j = await resnet(['inspect', ckpt, '--json']);
  assert.equal(j.code, 0, j.err);
  const r = JSON.parse(j.out) as InspectReport;
  assert.equal(r.kind, 'pth');
  assert.equal(r.container, 'zip');
  assert.deepEqual(Object.keys(r.topLevel!), facts.top_level);
  assert.deepEqual(r.topLevel!.epoch, { type: 'number', value: facts.epoch });
  assert.deepEqual(r.topLevel!.loss, { type: 'number', value: facts.loss });
  const opt = r.topLevel!.optimizer_state_dict as { items: Record<string, { size?: number; items?: { items: Record<string, { value: unknown }> }[] }> };
  assert.equal(opt.items.state.size, facts.optimizer_state_entries);
  const group = opt.items.param_groups.items![0].items;
  for (const [k, v] of Object.entries(facts.param_groups[0])) assert.equal(group[k].value, v, `param_groups[0].${k}`);
  assert.equal(r.stateDictKey, 'model_state_dict');
  assert.deepEqual(r.tensors.map((e) => [e.key, e.shape, e.dtype]), facts.keys);
  assert.deepEqual(r.totals, { tensors: facts.keys.length, numel: facts.numel, params: facts.num_params, bytes: facts.bytes });
  assert.deepEqual(r.architecture, { family: 'torchvision', arch: 'resnet18', block: 'basic', layers: [2, 2, 2, 2], groups: 1, widthPerGroup: 64, numClasses: 2 });
});

test('inspect: a sharded HF folder written by PyTorch', async () => {
  const dir = fixture('pretrained', 'hf_sharded');
  const index = JSON.parse(readFileSync(join(dir, 'pytorch_model.bin.index.json'), 'utf8'));
  const r = await resnet(['inspect', dir, '--json']);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as InspectReport;
  assert.equal(j.kind, 'hf-folder');
  assert.equal(j.index, 'pytorch_model.bin.index.json');
  assert.deepEqual(j.files, [...new Set(Object.values(index.weight_map) as string[])].sort());
  assert.equal(j.config!.hidden_act, 'gelu');
  assert.deepEqual(j.tensors.map((e) => e.key).sort(), Object.keys(index.weight_map).sort());
  assert.equal(j.totals.bytes, index.metadata.total_size);
  assert.deepEqual(j.architecture, {
    family: 'hf', className: 'ResNetForImageClassification', torchvision: null,
    config: { num_channels: 3, embedding_size: 16, hidden_sizes: [16, 32, 48, 64], depths: [2, 2, 1, 1], layer_type: 'bottleneck', num_labels: 4 },
  });
  assert.match((j.torchvisionEquivalent as { error: string }).error, /embedding_size is 16/);
  const t = await resnet(['inspect', dir]);
  assert.equal(t.code, 0, t.err);
  assert.match(t.out, /Hugging Face model folder/);
  assert.match(t.out, /weights: pytorch_model\.bin\.index\.json -> 4 shards: pytorch_model-00001-of-00004\.bin, /);
  assert.match(t.out, /^ {2}hidden_act +"gelu"$/m);
  const bad = await resnet(['inspect']);
  assert.equal(bad.code, 2);
  const missing = await resnet(['inspect', join(work, 'nothing.pth')]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /nothing\.pth: no such file or folder/);
});

function bytesOf(t: Tensor): Buffer {
  const d = t.contiguousData();
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

test('convert: torchvision .pth -> HF folder -> torchvision safetensors and .pth, bit-equal; run on the folder', async () => {
  const ckpt = fixture('pretrained', 'tutorial.pth');
  const want = extractStateDict(readPthSync(ckpt).object, ckpt);
  const folder = join(work, 'hf-folder');
  const a = await resnet(['convert', ckpt, folder]);
  assert.equal(a.code, 0, a.err);
  assert.match(a.err, /torchvision keys, 122 tensors\) -> hf keys, HF model folder .*; the checkpoint's other entries \(all but model_state_dict\) were not converted/);
  assert.deepEqual(readdirSync(folder).sort(), ['config.json', 'model.safetensors']);
  const cfg = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
  assert.deepEqual([cfg.architectures, cfg.layer_type, cfg.depths, cfg.hidden_sizes, cfg.torch_dtype, cfg.model_type],
    [['ResNetForImageClassification'], 'basic', [2, 2, 2, 2], [64, 128, 256, 512], 'float32', 'resnet']);
  assert.equal(cfg.id2label, undefined, 'two labels: transformers leaves the default LABEL_0/LABEL_1 out');
  const st = join(work, 'back.safetensors'), pth = join(work, 'back.pth');
  for (const [out, extra] of [[st, ['--to', 'torchvision']], [pth, ['--to', 'torchvision', '--format', 'pth']]] as [string, string[]][]) {
    const b = await resnet(['convert', folder, out, ...extra]);
    assert.equal(b.code, 0, b.err);
    const got = out.endsWith('.pth') ? extractStateDict(readPthSync(out).object, out) : readSafetensorsSync(out).tensors;
    assert.deepEqual([...got.keys()], [...want.keys()], `${out}: keys in torchvision's order`);
    for (const [k, t] of want) {
      assert.equal(got.get(k)!.dtype, t.dtype, `${out}: ${k} dtype`);
      assert.deepEqual(got.get(k)!.shape, t.shape, `${out}: ${k} shape`);
      assert.ok(bytesOf(got.get(k)!).equals(bytesOf(t)), `${out}: ${k} is not bit-equal`);
    }
  }
  // without --to the family stays (a folder to one HF-keyed file); torchvision safetensors straight to HF keys
  const same = join(work, 'same.safetensors');
  assert.equal((await resnet(['convert', folder, same])).code, 0);
  assert.deepEqual([...readSafetensorsSync(same).tensors.keys()], [...readSafetensorsSync(join(folder, 'model.safetensors')).tensors.keys()]);
  const hfFile = join(work, 'hf.safetensors');
  assert.equal((await resnet(['convert', st, hfFile, '--to', 'hf'])).code, 0);
  assert.ok(readSafetensorsSync(hfFile).tensors.has('resnet.embedder.embedder.convolution.weight'));
  assert.equal(readSafetensorsSync(hfFile).metadata?.format, 'pt');
  const u = await resnet(['convert', st, join(work, 'tv-folder'), '--to', 'torchvision']);
  assert.equal(u.code, 2);
  assert.match(u.err, /for torchvision weights give OUT a \.pth or \.safetensors name/);

  // run: the HF folder alone names its model; --arch converts back to torchvision; both give torch's logits
  for (const args of [['--weights', folder], ['--arch', 'resnet18', '--weights', folder], ['--weights', ckpt]]) {
    const out = join(work, 'y.npy');
    const r = await resnet(['run', ...args, '--input', x, '--output', out]);
    assert.equal(r.code, 0, r.err);
    assertClose(readNpySync(out), logits, { ...TOL, what: `run ${args.join(' ')}` });
  }
  const wrongArch = await resnet(['run', '--arch', 'resnet50', '--weights', folder, '--input', x, '--output', join(work, 'y.npy')]);
  assert.equal(wrongArch.code, 1);
  assert.match(wrongArch.err, /hf-folder: these weights are a resnet18 \(from config\.json\), not a resnet50/);
  const bench = await resnet(['bench', '--weights', folder, '--size', '32', '--repeats', '1', '--warmup', '0', '--json']);
  assert.equal(bench.code, 0, bench.err);
  const bj = JSON.parse(bench.out);
  assert.equal(bj.arch, folder);
  assert.ok(bj.imagesPerSec > 0);
});

test('run --weights hf:org/name through a local hub (HF_ENDPOINT, HF_HOME), then offline from the cache', async () => {
  const ckpt = fixture('pretrained', 'tutorial.pth');
  const folder = join(temp(), 'repo');
  assert.equal((await resnet(['convert', ckpt, folder, '--format', 'pth', '--max-shard-size', '20MB'])).code, 0);
  const files = new Map(readdirSync(folder).map((f) => [f, readFileSync(join(folder, f))]));
  assert.ok(files.has('pytorch_model.bin.index.json'));
  const commit = hub.addRepo('someone/tutorial-resnet18', files);
  const home = temp();
  const env = { HF_ENDPOINT: hub.base, HF_HOME: home };
  const out = join(work, 'y-hub.npy');
  const r = await resnet(['run', '--weights', 'hf:someone/tutorial-resnet18', '--input', x, '--output', out], env);
  assert.equal(r.code, 0, r.err);
  assertClose(readNpySync(out), logits, { ...TOL, what: 'hf: logits' });
  assert.ok(existsSync(join(home, 'hub', 'models--someone--tutorial-resnet18', 'snapshots', commit, 'config.json')));
  const seen = hub.requests.length;
  const off = await resnet(['run', '--weights', 'hf:someone/tutorial-resnet18', '--input', x, '--output', out], { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(off.code, 0, off.err);
  assert.equal(hub.requests.length, seen, 'offline: no request');
  assertClose(readNpySync(out), logits, { ...TOL, what: 'offline logits' });
  const none = await resnet(['run', '--weights', 'hf:someone/other', '--input', x, '--output', out], { ...env, HF_HUB_OFFLINE: '1' });
  assert.equal(none.code, 1);
  assert.match(none.err, /offline mode is on/);
});

test('run --weights with a URL and with a registry name, served locally into TORCH_HOME', async () => {
  const ckpt = fixture('pretrained', 'tutorial.pth');
  const bytes = readFileSync(ckpt);
  const name = `tutorial-${createHash('sha256').update(bytes).digest('hex').slice(0, 8)}.pth`;
  hub.addFile(`/files/${name}`, bytes);
  const home = temp();
  const out = join(work, 'y-url.npy');
  const r = await resnet(['run', '--weights', `${hub.base}/files/${name}`, '--input', x, '--output', out], { TORCH_HOME: home });
  assert.equal(r.code, 0, r.err);
  assertClose(readNpySync(out), logits, { ...TOL, what: 'URL logits (arch and classes from the keys)' });
  assert.ok(existsSync(join(home, 'hub', 'checkpoints', name)));

  // the registry's resnet18 file from a mirror: these bytes are not the real file, so its hash refuses them
  hub.addFile('/models/resnet18-f37072fd.pth', bytes);
  const reg = await resnet(['run', '--arch', 'resnet18', '--weights', 'IMAGENET1K_V1', '--input', x, '--output', out],
    { TORCH_HOME: home, RESNET_TORCHVISION_BASE_URL: `${hub.base}/models` });
  assert.equal(reg.code, 1);
  assert.match(reg.err, /invalid hash value \(expected "f37072fd", got "[0-9a-f]{64}"\) for http:\/\/127\.0\.0\.1:\d+\/models\/resnet18-f37072fd\.pth/);
  assert.ok(hub.requests.includes('GET /models/resnet18-f37072fd.pth'));
  assert.ok(!existsSync(join(home, 'hub', 'checkpoints', 'resnet18-f37072fd.pth')));
  const noArch = await resnet(['run', '--weights', 'IMAGENET1K_V1', '--input', x, '--output', out]);
  assert.equal(noArch.code, 1);
  assert.match(noArch.err, /the registry name IMAGENET1K_V1 needs an architecture \(--arch\)/);
});

// fromPretrained / savePretrained (src/models/pretrained.ts) and the weights specs of src/models/factory.ts:
// - folders PyTorch wrote (scripts/fixtures/make_pretrained.py: torch.save'd pytorch_model.bin, and a sharded
//   variant with its index) load into ResNetForImageClassification, ResNetModel and ResNetBackbone and give
//   hf_reference.py's outputs, with transformers' prefix handling and reports;
// - savePretrained -> fromPretrained round trips (safetensors, .bin, sharded), config.json byte-equal to the one
//   Python wrote, and PyTorch loading the folders we write (tests/models/pretrained_check.py) with the same logits;
// - repo ids through a local stand-in for the hub (tests/hub-server.ts), then offline from the cache;
// - bad folders: escaping shard names, a missing shard, a bad config.json, a key in two shards, ... each one error
//   naming the file;
// - weights specs: torchvision weights into an HF model and back, registry entries through the torch.hub cache.
// Tolerance for outputs against PyTorch: |ours - torch| <= 1e-4 * max|torch| + 1e-5 (as tests/models/hf.test.ts).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, assertClose, backends, fixture } from '../helpers.js';
import { type FakeHub, startFakeHub } from '../hub-server.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { withBackend } from '../../src/backend/select.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { readNpySync, writeNpySync } from '../../src/io/npy.js';
import { readPthSync } from '../../src/io/pth.js';
import { serializePth, writePthSync } from '../../src/io/pth-write.js';
import { ResNetBackbone, ResNetForImageClassification, ResNetModel, ResNetPreTrainedModel } from '../../src/models/hf.js';
import { type SavePretrainedOptions, loadPretrained, parseShardSize, saveStateDictPretrained } from '../../src/models/pretrained.js';
import { buildModel, createModel, resolveWeights } from '../../src/models/factory.js';
import { hfConfigForTorchvision } from '../../src/models/convert.js';
import { ResNet, resnet18 } from '../../src/models/resnet.js';
import { ResNet18_Weights, Weights } from '../../src/models/weights.js';

const TOL = { atol: 1e-5, scale: 1e-4 };
const temps: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'resnet-pretrained-'));
  temps.push(d);
  return d;
};
let hub: FakeHub;
before(async () => {
  hub = await startFakeHub();
});
after(async () => {
  await hub.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function io(name: string) {
  const f = readSafetensorsSync(fixture('pretrained', `${name}.io.safetensors`));
  return { t: (k: string) => f.tensors.get(k)!, meta: f.metadata! };
}

/** Every file of a folder, as the hub would serve it. */
function repoFiles(dir: string): Map<string, Uint8Array> {
  return new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f))]));
}

const sameTensors = (a: Map<string, Tensor>, b: Map<string, Tensor>, what: string) => {
  assert.deepEqual([...a.keys()], [...b.keys()], `${what}: keys`);
  for (const [k, t] of a) assert.deepEqual(t.toArray(), b.get(k)!.toArray(), `${what}: ${k}`);
};

for (const name of ['hf_bin', 'hf_sharded']) {
  test(`${name}: a folder PyTorch wrote loads into all three classes and gives hf_reference.py's outputs`, async () => {
    const dir = fixture('pretrained', name);
    const { t, meta } = io(name);
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    const head = await loadPretrained(ResNetForImageClassification, dir, { warn });
    assert.deepEqual(head.info, { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    assert.equal(head.files.format, 'pth');
    assert.equal(head.files.files.length, Number(meta.shards));
    if (name === 'hf_bin') assert.deepEqual(head.model.config.id2label, { 0: 'cat', 1: 'dog', 2: 'bird' });
    const base = await loadPretrained(ResNetModel, dir, { warn });
    assert.deepEqual(base.info.unexpectedKeys, ['classifier.1.weight', 'classifier.1.bias']); // the head's, reported
    assert.deepEqual(base.info.missingKeys, []);
    const features = JSON.parse(meta.backbone_features) as string[];
    const bb = await ResNetBackbone.fromPretrained(dir, { outFeatures: features, warn });
    assert.deepEqual(bb.outFeatures, features);
    assert.deepEqual(bb.outIndices, [1, 3]);
    // unused head keys are an info in transformers when the checkpoint is of another class: no warning
    assert.deepEqual(warnings, []);
    for (const b of backends()) {
      if (b.skip) continue;
      withBackend(b.name, () => {
        const x = t('input');
        assertClose(head.model.eval().forward(x).logits, t('logits'), { ...TOL, what: `${b.name} logits` });
        const o = base.model.eval().forward(x);
        assertClose(o.lastHiddenState, t('last_hidden_state'), { ...TOL, what: `${b.name} last_hidden_state` });
        assertClose(o.poolerOutput, t('pooler_output'), { ...TOL, what: `${b.name} pooler_output` });
        bb.eval().forward(x).featureMaps.forEach((f, i) => assertClose(f, t(`feature_maps.${i}`), { ...TOL, what: `${b.name} feature_maps.${i}` }));
      });
    }
  });
}

test('a base checkpoint into a head model: the head is newly initialized (warned), the rest loads under resnet.', async () => {
  const dir = temp();
  const base = await ResNetModel.fromPretrained(fixture('pretrained', 'hf_bin'));
  base.savePretrained(dir);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).architectures, ['ResNetModel']);
  const warnings: string[] = [];
  const { model, info } = await loadPretrained(ResNetForImageClassification, dir, { warn: (m) => warnings.push(m), seed: 3 });
  assert.deepEqual(info.missingKeys, ['classifier.1.weight', 'classifier.1.bias']);
  assert.deepEqual(info.unexpectedKeys, []);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0], `Some weights of ResNetForImageClassification were not initialized from the model checkpoint at ${dir} and are newly initialized: ['classifier.1.weight', 'classifier.1.bias']\nYou should probably TRAIN this model on a down-stream task to be able to use it for predictions and inference.`);
  const sd = model.stateDict();
  for (const [k, v] of base.stateDict()) assert.deepEqual(sd.get(`resnet.${k}`)!.toArray(), v.toArray(), k);
  assert.equal(model.numLabels, 3); // from config.json's id2label

  // a checkpoint saved from this very class with a key the model does not have: a warning
  const extra = temp();
  const head = await ResNetForImageClassification.fromPretrained(fixture('pretrained', 'hf_bin'));
  head.savePretrained(extra, { safeSerialization: false });
  const sdx = readPthSync(join(extra, 'pytorch_model.bin')).object as Map<string, Tensor>;
  sdx.set('classifier.2.weight', randn([2]));
  writePthSync(join(extra, 'pytorch_model.bin'), sdx);
  const w2: string[] = [];
  const r = await loadPretrained(ResNetForImageClassification, extra, { warn: (m) => w2.push(m) });
  assert.deepEqual(r.info.unexpectedKeys, ['classifier.2.weight']);
  assert.equal(w2.length, 1);
  assert.match(w2[0], /^Some weights of the model checkpoint at .* were not used when initializing ResNetForImageClassification: \['classifier\.2\.weight'\]/);
});

test('numLabels that disagree with the checkpoint: an error naming ignoreMismatchedSizes, or newly initialized with it', async () => {
  const dir = fixture('pretrained', 'hf_bin');
  await assert.rejects(() => ResNetForImageClassification.fromPretrained(dir, { numLabels: 5 }), (e: Error) => {
    assert.ok(e.message.startsWith(`${dir}: Error(s) in loading state_dict for ResNetForImageClassification:\n\tsize mismatch for classifier.1.weight: copying a param with shape [3, 32] from checkpoint, the shape in current model is [5, 32].`), e.message);
    assert.match(e.message, /ignoreMismatchedSizes: true/);
    return true;
  });
  const warnings: string[] = [];
  const { model, info } = await loadPretrained(ResNetForImageClassification, dir, { numLabels: 5, ignoreMismatchedSizes: true, warn: (m) => warnings.push(m) });
  assert.equal(model.config.numLabels, 5);
  assert.deepEqual(model.config.id2label[4], 'LABEL_4');
  assert.deepEqual(info.mismatchedKeys.map((m) => m.key), ['classifier.1.weight', 'classifier.1.bias']);
  assert.match(warnings.join('\n'), /newly initialized because the shapes did not match:\n- classifier\.1\.weight: found shape \[3, 32\] in the checkpoint and \[5, 32\] in the model instantiated/);
});

test('savePretrained -> fromPretrained: safetensors, .bin, sharded; config.json as transformers writes it; no temp files', async () => {
  const src = fixture('pretrained', 'hf_bin');
  const model = (await ResNetForImageClassification.fromPretrained(src)).eval();
  const x = io('hf_bin').t('input');
  const want = model.forward(x).logits;
  const total = [...model.stateDict().values()].reduce((n, t) => n + t.numel * (t.dtype === 'int64' ? 8 : 4), 0);
  const cases: { o: SavePretrainedOptions; files?: string[]; index?: string }[] = [
    { o: {}, files: ['config.json', 'model.safetensors'] },
    { o: { safeSerialization: false }, files: ['config.json', 'pytorch_model.bin'] },
    { o: { maxShardSize: '50KB' }, index: 'model.safetensors.index.json' },
    { o: { safeSerialization: false, maxShardSize: 60_000 }, index: 'pytorch_model.bin.index.json' },
  ];
  for (const c of cases) {
    const dir = join(temp(), 'saved');
    model.savePretrained(dir, c.o);
    const files = readdirSync(dir).sort();
    if (c.files) assert.deepEqual(files, c.files);
    assert.equal(readFileSync(join(dir, 'config.json'), 'utf8'), readFileSync(join(src, 'config.json'), 'utf8'), 'config.json byte for byte as Python wrote it');
    if (c.index) {
      const idx = JSON.parse(readFileSync(join(dir, c.index), 'utf8'));
      assert.equal(idx.metadata.total_size, total);
      assert.deepEqual(Object.keys(idx.weight_map), [...model.stateDict().keys()].sort());
      const shards = [...new Set(Object.values(idx.weight_map) as string[])].sort();
      assert.ok(shards.length >= 3, `${shards.length} shards`);
      assert.deepEqual(files, ['config.json', c.index, ...shards].sort());
      const max = parseShardSize(c.o.maxShardSize!);
      for (const s of shards) {
        const keys = Object.keys(idx.weight_map).filter((k) => idx.weight_map[k] === s);
        const bytes = keys.reduce((n, k) => n + model.stateDict().get(k)!.numel * 4, 0);
        assert.ok(bytes <= max || keys.length === 1, `${s}: ${bytes} bytes > ${max}`);
      }
    }
    const back = await ResNetForImageClassification.fromPretrained(dir);
    assertClose(back.eval().forward(x).logits, want, { atol: 0, what: `round trip ${JSON.stringify(c.o)}` });
    sameTensors(back.stateDict(), model.stateDict(), JSON.stringify(c.o));
  }
  // saving over an earlier save of another layout leaves only the new files (so the folder loads what was saved)
  const dir = join(temp(), 'over');
  model.savePretrained(dir, { maxShardSize: 40_000 });
  const other = await ResNetForImageClassification.fromPretrained(fixture('pretrained', 'hf_bin'), { numLabels: 2, ignoreMismatchedSizes: true, seed: 9, warn: () => {} });
  other.savePretrained(dir, { safeSerialization: false });
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'pytorch_model.bin']);
  assert.equal((await ResNetForImageClassification.fromPretrained(dir)).numLabels, 2);
  assert.throws(() => model.savePretrained(join(src, 'config.json')), /is a file, not a folder/);
  assert.throws(() => model.savePretrained(dir, { maxShardSize: '5 parsecs' }), /maxShardSize/);
  // a save that fails after writing some shards (a bad entry in the second) changes nothing and leaves no temp file
  const bad = new Map<string, Tensor>([...model.stateDict(), ['not.a.tensor', 42 as never]]);
  assert.throws(() => saveStateDictPretrained(dir, bad, model.config, 'ResNetForImageClassification', { maxShardSize: 40_000 }), /Expected a Tensor for "not\.a\.tensor"/);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'pytorch_model.bin'], 'a failed save leaves nothing behind');
});

test('folders we save load in PyTorch (hf_reference.py, torch.load / hand-parsed safetensors) with the same outputs', async () => {
  const work = temp();
  const head = (await ResNetForImageClassification.fromPretrained(fixture('pretrained', 'hf_sharded'))).eval();
  const base = (await ResNetModel.fromPretrained(fixture('pretrained', 'hf_bin'))).eval();
  const x = randn([2, 3, 36, 36], { generator: new Generator(5) });
  writeNpySync(join(work, 'x.npy'), x);
  const dirs = { st: join(work, 'st'), stSharded: join(work, 'st-sharded'), bin: join(work, 'bin'), binSharded: join(work, 'bin-sharded') };
  head.savePretrained(dirs.st);
  head.savePretrained(dirs.stSharded, { maxShardSize: 30_000 });
  base.savePretrained(dirs.bin, { safeSerialization: false });
  head.savePretrained(dirs.binSharded, { safeSerialization: false, maxShardSize: 30_000 });
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'models', 'pretrained_check.py'), join(work, 'x.npy'), ...Object.values(dirs)],
    { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', PYTHONWARNINGS: 'ignore' } });
  assert.equal(r.status, 0, `pretrained_check.py failed (needs Debian's python3-torch): ${r.error?.message ?? r.stderr}`);
  const report = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(report.length, 4);
  assert.ok(report[1].files.length >= 2 && report[3].files.length >= 2, 'sharded folders have several shards');
  const want = head.forward(x).logits;
  for (const d of [dirs.st, dirs.stSharded, dirs.binSharded]) assertClose(readNpySync(join(d, 'torch_out.npy')), want, { ...TOL, what: `torch on ${d}` });
  assertClose(readNpySync(join(dirs.bin, 'torch_out.npy')), base.forward(x).poolerOutput, { ...TOL, what: 'torch ResNetModel pooler_output' });
});

test('a repo id through the hub (a local stand-in), then offline from the cache', async () => {
  const cacheDir = temp();
  const saved = join(temp(), 'repo');
  const model = (await ResNetForImageClassification.fromPretrained(fixture('pretrained', 'hf_sharded'))).eval();
  model.savePretrained(saved, { maxShardSize: 30_000 });
  hub.addRepo('org/tiny', repoFiles(saved));
  const commit = hub.addRepo('org/tiny-bin', repoFiles(fixture('pretrained', 'hf_bin')));
  const x = io('hf_sharded').t('input');
  const o = { endpoint: hub.base, cacheDir, progress: false };
  const first = hub.requests.length;
  const a = await ResNetForImageClassification.fromPretrained('org/tiny', o);
  assertClose(a.eval().forward(x).logits, io('hf_sharded').t('logits'), { ...TOL, what: 'org/tiny logits' });
  const afterOnline = hub.requests.length;
  assert.ok(afterOnline > first);
  const b = await ResNetForImageClassification.fromPretrained('org/tiny', { ...o, offline: true });
  assert.equal(hub.requests.length, afterOnline, 'offline: no request');
  assertClose(b.eval().forward(x).logits, a.forward(x).logits, { atol: 0, what: 'offline' });
  await assert.rejects(() => ResNetForImageClassification.fromPretrained('org/tiny', { ...o, cacheDir: temp(), offline: true }), /offline mode is on/);

  // a .bin repo: the safetensors names are asked for first (404), as transformers does
  const bin = await loadPretrained(ResNetForImageClassification, 'hf:org/tiny-bin', o);
  assert.equal(bin.files.format, 'pth');
  assert.equal(bin.files.dir, join(cacheDir, 'models--org--tiny-bin', 'snapshots', commit));
  assert.ok(hub.requests.includes('HEAD /org/tiny-bin/resolve/main/model.safetensors'));
  assertClose(bin.model.eval().forward(io('hf_bin').t('input')).logits, io('hf_bin').t('logits'), { ...TOL, what: 'org/tiny-bin logits' });
  await assert.rejects(() => ResNetModel.fromPretrained('org/nothing-here', o), /HTTP 404.*RepoNotFound/);

  // an index whose shard name leaves the repo is refused before anything else is fetched
  const evil = repoFiles(saved);
  const index = JSON.parse(Buffer.from(evil.get('model.safetensors.index.json')!).toString());
  index.weight_map['classifier.1.bias'] = '../../../evil.safetensors';
  evil.set('model.safetensors.index.json', Buffer.from(JSON.stringify(index)));
  hub.addRepo('org/evil', evil);
  await assert.rejects(() => ResNetForImageClassification.fromPretrained('org/evil', o), (e: Error) => {
    assert.match(e.message, /model\.safetensors\.index\.json: "classifier\.1\.bias": the weight_map names the shard "\.\.\/\.\.\/\.\.\/evil\.safetensors"; shard file names must be plain file names/);
    return true;
  });
  assert.ok(!hub.requests.some((r) => r.includes('evil.safetensors')));
});

/** A copy of the sharded PyTorch folder to break. */
function brokenCopy(): { dir: string; index: string; map: Record<string, string> } {
  const dir = join(temp(), 'broken');
  cpSync(fixture('pretrained', 'hf_sharded'), dir, { recursive: true });
  const index = join(dir, 'pytorch_model.bin.index.json');
  return { dir, index, map: JSON.parse(readFileSync(index, 'utf8')).weight_map };
}

test('bad folders: each is one error naming the file and the cause', async () => {
  const load = (dir: string) => ResNetForImageClassification.fromPretrained(dir, { warn: () => {} });
  for (const name of ['../pytorch_model-00001-of-00004.bin', '/etc/passwd', 'sub/x.bin', '..\\x.bin', '..', 'C:x.bin']) {
    const b = brokenCopy();
    b.map['classifier.1.bias'] = name;
    writeFileSync(b.index, JSON.stringify({ metadata: {}, weight_map: b.map }));
    await assert.rejects(() => load(b.dir), (e: Error) => {
      assert.ok(e.message.startsWith(`${b.index}: "classifier.1.bias": the weight_map names the shard ${JSON.stringify(name)}`), e.message);
      return true;
    });
  }
  let b = brokenCopy();
  renameSync(join(b.dir, 'pytorch_model-00003-of-00004.bin'), join(b.dir, 'moved.bin'));
  await assert.rejects(() => load(b.dir), (e: Error) => {
    assert.equal(e.message, `${b.index}: the weight_map names the shard pytorch_model-00003-of-00004.bin but ${join(b.dir, 'pytorch_model-00003-of-00004.bin')} does not exist`);
    return true;
  });
  b = brokenCopy();
  writeFileSync(join(b.dir, 'config.json'), '{"layer_type": "basic",');
  await assert.rejects(() => load(b.dir), (e: Error) => e.message.startsWith(`${join(b.dir, 'config.json')}: expected a JSON config`));
  writeFileSync(join(b.dir, 'config.json'), '{"layer_type": "wide"}');
  await assert.rejects(() => load(b.dir), (e: Error) => e.message === `${join(b.dir, 'config.json')}: layer_type=wide is not one of basic,bottleneck`);
  // a key in two shards: shard 2 also gets a key of shard 1
  b = brokenCopy();
  const s1 = readPthSync(join(b.dir, 'pytorch_model-00001-of-00004.bin')).object as Map<string, Tensor>;
  const s2 = join(b.dir, 'pytorch_model-00002-of-00004.bin');
  const twice = [...s1.keys()][0];
  writePthSync(s2, new Map([...(readPthSync(s2).object as Map<string, Tensor>), [twice, s1.get(twice)!]]));
  await assert.rejects(() => load(b.dir), (e: Error) => {
    assert.equal(e.message, `${b.index}: ${JSON.stringify(twice)}: the key is in two shards, pytorch_model-00001-of-00004.bin and pytorch_model-00002-of-00004.bin`);
    return true;
  });
  // the index puts a key in a shard that does not hold it
  b = brokenCopy();
  b.map['classifier.1.bias'] = 'pytorch_model-00001-of-00004.bin';
  writeFileSync(b.index, JSON.stringify({ weight_map: b.map }));
  await assert.rejects(() => load(b.dir), /"classifier\.1\.bias": the weight_map puts the key in pytorch_model-00001-of-00004\.bin but pytorch_model-00001-of-00004\.bin does not hold it \(pytorch_model-00004-of-00004\.bin does\)/);
  b = brokenCopy();
  writeFileSync(b.index, '{"metadata": {}}');
  await assert.rejects(() => load(b.dir), (e: Error) => e.message.startsWith(`${b.index}: expected a shard index`));
  b = brokenCopy();
  for (const f of readdirSync(b.dir)) if (f !== 'config.json') rmSync(join(b.dir, f));
  await assert.rejects(() => load(b.dir), (e: Error) => e.message === `${b.dir}: no file named model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json (the weights of a pretrained model folder)`);
  rmSync(join(b.dir, 'config.json'));
  await assert.rejects(() => load(b.dir), (e: Error) => e.message.startsWith(`${b.dir}: no config.json`));
  await assert.rejects(() => load(join(fixture('pretrained', 'hf_bin'), 'config.json')), /config\.json is a file; a pretrained model is a folder/);
  await assert.rejects(() => load('./no/such/folder'), /no such folder, and not a Hugging Face repo id/);
  await assert.rejects(() => ResNetPreTrainedModel.fromPretrained(fixture('pretrained', 'hf_bin')), /ResNetPreTrainedModel has no weights to load; use ResNetModel, ResNetForImageClassification or ResNetBackbone/);
});

test('weights specs: torchvision weights into an HF model, HF weights into a torchvision builder, each family\'s logits', async () => {
  const work = temp();
  const tutorial = fixture('pretrained', 'tutorial.pth');
  const { t } = (() => {
    const f = readSafetensorsSync(fixture('pretrained', 'tutorial.io.safetensors'));
    return { t: (k: string) => f.tensors.get(k)! };
  })();
  const cfg = join(work, 'config.json');
  hfConfigForTorchvision('resnet18', { numLabels: 2 }).toJSONFile(cfg);
  const hf = createModel({ config: cfg, weights: tutorial });
  assert.ok(hf instanceof ResNetForImageClassification);
  assertClose(hf.eval().forward(t('input')).logits, t('logits'), { ...TOL, what: 'HF model from the tutorial .pth' });
  const folder = join(work, 'folder');
  hf.savePretrained(folder);
  const tv = createModel({ arch: 'resnet18', weights: folder });
  assert.ok(tv instanceof ResNet);
  assert.equal(tv.fc.outFeatures, 2, 'num_classes from config.json');
  assertClose(tv.eval().forward(t('input')), t('logits'), { ...TOL, what: 'torchvision model from an HF folder' });
  // (the architecture taken from the weights alone is tested through the CLI: tests/cli/weights-cli.test.ts)
  assert.throws(() => createModel({ arch: 'resnet34', weights: folder }), /folder: these weights are a resnet18 \(from config\.json\), not a resnet34/);
  assert.throws(() => createModel({ arch: 'resnet18', weights: 'IMAGENET1K_V1' }), /IMAGENET1K_V1: a registry name needs a download; use loadModel/);
  assert.throws(() => createModel({ arch: 'resnet18', weights: join(work, 'nope.pth') }), /nope\.pth: no such file or folder/);
});

test('registry entries download into the torch.hub cache with their hash checked ($RESNET_TORCHVISION_BASE_URL)', async () => {
  const home = temp();
  const saved = { TORCH_HOME: process.env.TORCH_HOME, RESNET_TORCHVISION_BASE_URL: process.env.RESNET_TORCHVISION_BASE_URL };
  process.env.TORCH_HOME = home;
  process.env.RESNET_TORCHVISION_BASE_URL = `${hub.base}/mirror/`;
  try {
    // a Weights of ResNet18_Weights whose file carries its own hash prefix, served by the stand-in
    const src = resnet18({ seed: 4 });
    const bytes = serializePth(src.stateDict());
    const file = `resnet18-${createHash('sha256').update(bytes).digest('hex').slice(0, 10)}.pth`;
    hub.addFile(`/mirror/${file}`, bytes);
    const local = new Weights({ ...ResNet18_Weights.IMAGENET1K_V1, enumName: 'ResNet18_Weights', name: 'LOCAL', url: `https://download.pytorch.org/models/${file}` });
    const w = await resolveWeights(local, { progress: false });
    assert.equal(w.kind, 'registry');
    assert.equal(w.arch, 'resnet18');
    assert.ok(existsSync(join(home, 'hub', 'checkpoints', file)));
    const model = buildModel({}, w);
    sameTensors(model.stateDict(), src.stateDict(), 'registry weights');
    assert.ok(hub.requests.includes(`GET /mirror/${file}`));
    // the real entry's name: the stand-in's bytes do not hash to f37072fd..., so they are refused and not kept
    const real = ResNet18_Weights.IMAGENET1K_V1;
    const realFile = real.url.split('/').pop()!;
    hub.addFile(`/mirror/${realFile}`, bytes);
    await assert.rejects(() => resolveWeights('IMAGENET1K_V1', { arch: 'resnet18', progress: false }), (e: Error) => {
      assert.match(e.message, new RegExp(`invalid hash value \\(expected "${real.hashPrefix}"`));
      return true;
    });
    assert.ok(hub.requests.includes(`GET /mirror/${realFile}`));
    assert.ok(!existsSync(join(home, 'hub', 'checkpoints', realFile)));
    await assert.rejects(() => resolveWeights('IMAGENET1K_V1', {}), /the registry name IMAGENET1K_V1 needs an architecture \(--arch\) or a full name such as ResNet50_Weights\.IMAGENET1K_V1/);
    await assert.rejects(() => resolveWeights('ResNet50_Weights.IMAGENET1K_V2', { arch: 'resnet18' }), /ResNet50_Weights\.IMAGENET1K_V2: no such file or folder, and not a registry name: Unknown value 'ResNet50_Weights\.IMAGENET1K_V2' for ResNet18_Weights/);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
});

test('parseShardSize reads transformers\' sizes', () => {
  assert.equal(parseShardSize('5GB'), 5e9);
  assert.equal(parseShardSize('10MiB'), 10 * 2 ** 20);
  assert.equal(parseShardSize('1.5KB'), 1500);
  assert.equal(parseShardSize(123), 123);
  assert.throws(() => parseShardSize(0), /maxShardSize/);
  assert.throws(() => parseShardSize('5 GB of stuff'), /maxShardSize/);
});

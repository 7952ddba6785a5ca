// The inference API (src/infer/) on real photos against PyTorch (fixtures: scripts/fixtures/make_predict.py ->
// tests/fixtures/gen/predict/): a torchvision-written .pth of a seeded random resnet18 classifies skimage's photos
// and a PIL JPEG with the same top-5 indices and probabilities as torch with ResNet18_Weights.IMAGENET1K_V1's
// transforms on the PIL image; paths, bytes and decoded images give one answer; bad files (empty, truncated, text
// named .jpg, a pixel bomb) get errors naming them while the others are answered; embed equals torch's avgpool
// output; an HF folder (from the hub stand-in too) brings its preprocessor_config.json and id2label.
// Runs on the default backend (native when it loads): the js reference backend takes ~6 s per 224x224 resnet18
// image, and the classifier adds no arithmetic of its own beyond the softmax checked here.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { readImage } from '../../src/data/image.js';
import { ConvNextImageProcessor } from '../../src/data/hf-processor.js';
import { ImageClassification } from '../../src/data/transforms.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { resnet18 } from '../../src/models/resnet.js';
import { skipInit } from '../../src/nn/init.js';
import { ResNetConfig } from '../../src/models/hf.js';
import { readWeightsFile } from '../../src/models/factory.js';
import { hfConfigForTorchvision, torchvisionToHF } from '../../src/models/convert.js';
import { saveStateDictPretrained } from '../../src/models/pretrained.js';
import { writePthSync } from '../../src/io/pth-write.js';
import { type Classifier, createClassifier, topkOfLogits } from '../../src/infer/classifier.js';
import { expandInputs, globRegExp } from '../../src/infer/files.js';
import { type FakeHub, startFakeHub } from '../hub-server.js';
import { assertClose, fixture } from '../helpers.js';

const expected = readSafetensorsSync(fixture('predict', 'expected.safetensors'));
const FILES = JSON.parse(expected.metadata!.files) as string[];
const want = (kind: string, name: string) => expected.tensors.get(`${kind}.${name}`)!;
const photo = (name: string) => fixture('predict', 'images', name);
const bad = (name: string) => fixture('predict', 'bad', name);
const PTH = fixture('predict', 'resnet18.pth');

let clf: Classifier;
const tmp = mkdtempSync(join(tmpdir(), 'resnet-infer-'));
before(async () => {
  clf = await createClassifier({ weights: PTH, batchSize: 3 });
});
after(async () => {
  await clf?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function checkAgainstTorch(r: { input: string; topk: { index: number; probability: number; label: string }[]; error?: string }, name: string): void {
  assert.equal(r.error, undefined, r.error);
  assert.deepEqual(r.topk.map((t) => t.index), Array.from(want('top5', name).toArray()), `${name}: top-5 indices`);
  const probs = want('probs', name).toArray();
  for (const t of r.topk) {
    assert.ok(Math.abs(t.probability - probs[t.index]) <= 1e-4, `${name}: class ${t.index} probability ${t.probability} vs torch ${probs[t.index]}`);
    assert.equal(t.label, `class ${t.index}`);
  }
}

test('a torchvision .pth classifies real photos as torch does (top-5 indices, probabilities within 1e-4)', async () => {
  assert.equal(clf.model.constructor.name, 'ResNet');
  assert.equal(clf.model.training, false, 'eval mode');
  assert.deepEqual(clf.preprocess, { kind: 'torchvision', options: { cropSize: 224, resizeSize: 256 } }, 'ImageNet V1 preset by default');
  assert.equal(clf.labels, null);
  assert.deepEqual(FILES, ['astronaut.png', 'chelsea.jpg', 'chelsea.png', 'coffee.png']);
  const results = await clf.classify(FILES.map(photo)); // batches of 3: one full, one partial
  assert.deepEqual(results.map((r) => r.input), FILES.map(photo));
  let worst = 0;
  results.forEach((r, i) => {
    checkAgainstTorch(r, FILES[i]);
    const p = want('probs', FILES[i]).toArray();
    for (const t of r.topk) worst = Math.max(worst, Math.abs(t.probability - p[t.index]));
  });
  console.log(`max |probability - torch| over the top-5 of ${FILES.length} photos: ${worst.toExponential(2)}`);
  const top1 = await clf.classify(photo('coffee.png'), { topk: 1 });
  assert.equal(top1.length, 1);
  assert.deepEqual(top1[0].topk.map((t) => t.index), [want('top5', 'coffee.png').toArray()[0]]);
});

test('paths, Buffers and decoded RgbImages give the same answers; inline decoding equals the worker\'s', async () => {
  const bytes = readFileSync(photo('chelsea.jpg'));
  const img = await readImage(photo('chelsea.png'));
  const rs = await clf.classify([bytes, img, new Uint8Array(readFileSync(photo('astronaut.png')))]);
  assert.deepEqual(rs.map((r) => r.input), ['<bytes 0>', '<image 1>', '<bytes 2>']);
  checkAgainstTorch(rs[0], 'chelsea.jpg');
  checkAgainstTorch(rs[1], 'chelsea.png');
  checkAgainstTorch(rs[2], 'astronaut.png');
  const inline = await createClassifier({ model: clf.model, workers: 0, batchSize: 2 });
  const a = await inline.classify(FILES.map(photo));
  const b = await clf.classify(FILES.map(photo));
  assert.deepEqual(a, b, 'workers: 0 gives exactly the worker results');
  await inline.close();
});

test('bad files get an error naming them; the good files in the same batches are still answered', async () => {
  const inputs = [bad('empty.jpg'), photo('chelsea.png'), bad('truncated.jpg'), bad('text.jpg'), photo('coffee.png'), bad('bomb.png'), join(tmp, 'missing.jpg')];
  const t0 = performance.now();
  const rs = await clf.classify(inputs);
  const ms = performance.now() - t0;
  assert.deepEqual(rs.map((r) => r.input), inputs);
  checkAgainstTorch(rs[1], 'chelsea.png');
  checkAgainstTorch(rs[4], 'coffee.png');
  const reasons: [number, RegExp][] = [[0, /empty \(0 bytes\)/], [2, /cannot decode the JPEG image.*(premature end|truncated)/i],
    [3, /content is text .*not an image/], [5, /30000x30000 .*more than the limit.*decompression bomb/], [6, /cannot read the file.*ENOENT/]];
  for (const [i, re] of reasons) {
    assert.deepEqual(rs[i].topk, []);
    assert.ok(rs[i].error!.startsWith(`${inputs[i]}: `), `error names the file: ${rs[i].error}`);
    assert.match(rs[i].error!, re);
  }
  assert.ok(ms < 5000, `the pixel bomb is refused from its header (${ms.toFixed(0)} ms for the lot)`);
});

test('embed: avgpool features before fc equal torch\'s; normalize gives unit vectors', async () => {
  const e = await clf.embed(FILES.map(photo));
  const n = await clf.embed([...FILES.map(photo), bad('text.jpg')], { normalize: true });
  FILES.forEach((name, i) => {
    assert.equal(e[i].input, photo(name));
    assert.equal(e[i].embedding!.length, 512);
    assertClose(e[i].embedding!, want('embed', name), { atol: 1e-5, scale: 1e-4, what: `embedding of ${name}` });
    const norm = Math.hypot(...e[i].embedding!);
    assertClose(n[i].embedding!, e[i].embedding!.map((v) => v / norm), { atol: 1e-6, what: `normalized embedding of ${name}` });
    assert.ok(Math.abs(Math.hypot(...n[i].embedding!) - 1) < 1e-5);
  });
  assert.equal(n[4].embedding, null);
  assert.match(n[4].error!, /text\.jpg: the content is text/);
});

test('a model given directly, with a preprocess function and labels (calling thread)', async () => {
  const labels = Array.from({ length: 1000 }, (_, i) => `label-${i}`);
  const preset = new ImageClassification({ cropSize: 224, resizeSize: 256 });
  let calls = 0;
  const custom = await createClassifier({ model: clf.model, labels, topk: 2, preprocess: (img) => (calls++, preset.forward(img)) });
  const [r] = await custom.classify([photo('chelsea.png')]);
  assert.equal(calls, 1);
  assert.deepEqual(r.topk.map((t) => t.label), Array.from(want('top5', 'chelsea.png').toArray().slice(0, 2), (i) => `label-${i}`));
  await custom.close();
  await assert.rejects(createClassifier({ model: clf.model, labels: ['a', 'b'] }), /Expected 1000 labels \(the model has 1000 classes\) but received 2/);
  await assert.rejects(createClassifier({ model: clf.model, weights: PTH }), /either model, or arch\/config and weights/);
  await assert.rejects(createClassifier({ weights: PTH, batchSize: 0 }), /integer >= 1 for batchSize/);
  await assert.rejects(createClassifier({ arch: 'resnet18', weights: join(tmp, 'nope.pth') }), /nope\.pth: no such file or folder/);
});

test('batches are pipelined: batch k+1 is prepared before batch k computes', async () => {
  const img = await readImage(photo('coffee.png'));
  const preset = new ImageClassification({ cropSize: 64, resizeSize: 64 });
  const events: string[] = [];
  let n = 0;
  const c = await createClassifier({ model: clf.model, batchSize: 1, preprocess: (im) => (events.push(`prepare ${n++}`), preset.forward(im)) });
  let k = 0;
  const h = clf.model.registerForwardHook(() => void events.push(`compute ${k++}`));
  try {
    const rs = await c.classify([img, img, img]);
    assert.equal(rs.length, 3);
  } finally {
    h.remove();
    await c.close();
  }
  for (let i = 0; i < 2; i++) assert.ok(events.indexOf(`prepare ${i + 1}`) < events.indexOf(`compute ${i}`), events.join(', '));
});

test('a fine-tuned 2-class head (seed 004): --arch with a .pth whose fc has 2 rows, labels given', async () => {
  const sd = readWeightsFile(PTH);
  const w = sd.get('fc.weight')!.contiguousData() as Float32Array, b = sd.get('fc.bias')!.contiguousData() as Float32Array;
  sd.set('fc.weight', new Tensor(w.slice(0, 2 * 512), [2, 512]));
  sd.set('fc.bias', new Tensor(b.slice(0, 2), [2]));
  const path = join(tmp, 'two-class.pth');
  writePthSync(path, sd);
  const c = await createClassifier({ arch: 'resnet18', weights: path, labels: ['cat', 'dog'] });
  const rs = await c.classify([photo('chelsea.png'), photo('coffee.png')]);
  await c.close();
  rs.forEach((r, i) => {
    const l = want('logits', ['chelsea.png', 'coffee.png'][i]).toArray();
    const p1 = 1 / (1 + Math.exp(l[0] - l[1])); // the same two rows of fc: torch's logits 0 and 1
    assert.deepEqual(r.topk.map((t) => t.label), p1 > 0.5 ? ['dog', 'cat'] : ['cat', 'dog']);
    assert.ok(Math.abs(r.topk.find((t) => t.index === 1)!.probability - p1) < 1e-4, `${r.input}: p(dog) ${JSON.stringify(r.topk)} vs torch ${p1}`);
  });
});

test('topkOfLogits: softmax in double precision, ties to the lower index', () => {
  const r = topkOfLogits(Float32Array.from([1, 3, 3, -2]), 3, ['a', 'b', 'c', 'd']);
  const z = Math.exp(1) + 2 * Math.exp(3) + Math.exp(-2);
  assert.deepEqual(r.map((t) => [t.label, t.index]), [['b', 1], ['c', 2], ['a', 0]]);
  assert.ok(Math.abs(r[0].probability - Math.exp(3) / z) < 1e-15);
  assert.equal(topkOfLogits(Float32Array.from([0, 1]), 5, null).length, 2);
});

/** An HF model folder holding the .pth's weights (converted), with labels and, optionally, a preprocessor config. */
function hfFolder(dir: string, preprocessor: object | null): { id2label: Record<string, string> } {
  const config = hfConfigForTorchvision('resnet18', { numLabels: 1000 });
  const id2label = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [String(i), `hf-${i}`]));
  const d = config.toDict();
  d.id2label = id2label;
  d.label2id = Object.fromEntries(Object.entries(id2label).map(([i, l]) => [l, Number(i)]));
  saveStateDictPretrained(dir, torchvisionToHF(readWeightsFile(PTH)), ResNetConfig.fromDict(d), 'ResNetForImageClassification');
  if (preprocessor) writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(preprocessor));
  return { id2label };
}

// microsoft/resnet-50's preprocessor_config.json
const MS_PREPROCESSOR = { crop_pct: 0.875, do_normalize: true, do_resize: true, feature_extractor_type: 'ConvNextFeatureExtractor', image_mean: [0.485, 0.456, 0.406], image_std: [0.229, 0.224, 0.225], resample: 3, size: 224 };

/** What the HF pipeline should give: the processor's pixel_values through the torchvision model (same weights). */
async function hfReference(files: string[]): Promise<Float32Array[]> {
  const proc = new ConvNextImageProcessor(MS_PREPROCESSOR);
  const tv = skipInit(() => resnet18({ numClasses: 1000 }));
  tv.loadStateDict(readWeightsFile(PTH));
  tv.eval();
  const { pixel_values } = proc.preprocess(await Promise.all(files.map((f) => readImage(f))));
  const y = noGrad(() => tv.forward(pixel_values)) as Tensor;
  const flat = y.contiguousData() as Float32Array;
  return files.map((_, i) => flat.slice(i * 1000, (i + 1) * 1000));
}

test('an HF folder brings its preprocessor_config.json (ConvNext processor) and id2label', async () => {
  const dir = join(tmp, 'hf-resnet18');
  hfFolder(dir, MS_PREPROCESSOR);
  const hf = await createClassifier({ weights: dir, batchSize: 2 });
  assert.equal(hf.model.constructor.name, 'ResNetForImageClassification');
  assert.equal((hf.preprocess as { kind: string }).kind, 'convnext');
  assert.match(hf.describePreprocess(), /ConvNextImageProcessor \(shortest_edge 224, crop_pct 0\.875, bicubic\)/);
  const files = [photo('chelsea.png'), photo('coffee.png'), photo('astronaut.png')];
  const rs = await hf.classify(files);
  const ref = await hfReference(files);
  rs.forEach((r, i) => {
    const expect = topkOfLogits(ref[i], 5, null);
    assert.deepEqual(r.topk.map((t) => t.index), expect.map((t) => t.index), `${files[i]}: HF top-5`);
    assert.deepEqual(r.topk.map((t) => t.label), expect.map((t) => `hf-${t.index}`));
    r.topk.forEach((t, j) => assert.ok(Math.abs(t.probability - expect[j].probability) < 1e-5));
  });
  const pooled = await hf.embed([photo('chelsea.png')]);
  assert.equal(pooled[0].embedding!.length, 512);
  await hf.close();
  // without a preprocessor_config.json: a warning and the V1 preset
  const bare = join(tmp, 'hf-bare');
  hfFolder(bare, null);
  const warnings: string[] = [];
  const b = await createClassifier({ weights: bare, warn: (m) => warnings.push(m) });
  assert.deepEqual(b.preprocess, { kind: 'torchvision', options: { cropSize: 224, resizeSize: 256 } });
  assert.ok(warnings.some((w) => w.includes('has no preprocessor_config.json')), warnings.join('\n'));
  await b.close();
});

test('hf:org/name through the hub stand-in: weights, preprocessor_config.json and labels', async () => {
  const dir = join(tmp, 'hf-hub-src');
  hfFolder(dir, MS_PREPROCESSOR);
  const files = new Map(['config.json', 'model.safetensors', 'preprocessor_config.json'].map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));
  let hub: FakeHub | null = null;
  try {
    hub = await startFakeHub();
    hub.addRepo('tests/resnet18-random', files);
    const c = await createClassifier({ weights: 'hf:tests/resnet18-random', endpoint: hub.base, cacheDir: join(tmp, 'hf-cache'), progress: false, topk: 3 });
    assert.equal((c.preprocess as { kind: string }).kind, 'convnext');
    assert.ok(hub.requests.some((r) => r.endsWith('/preprocessor_config.json')), hub.requests.join('\n'));
    const [r] = await c.classify([photo('coffee.png')]);
    const expect = topkOfLogits((await hfReference([photo('coffee.png')]))[0], 3, null);
    assert.deepEqual(r.topk.map((t) => t.label), expect.map((t) => `hf-${t.index}`));
    await c.close();
  } finally {
    await hub?.close();
  }
});

test('expandInputs: directories sorted and filtered, globs in the last segment, errors per argument', async () => {
  const d = join(tmp, 'tree');
  mkdirSync(join(d, 'sub'), { recursive: true });
  for (const n of ['b.png', 'a.JPG', 'c.txt', '.hidden.jpg', 'z.webp', 'sub/d.jpeg']) writeFileSync(join(d, n), 'x');
  copyFileSync(photo('chelsea.png'), join(d, 'sub', 'e.png'));
  symlinkSync(join(d, 'b.png'), join(d, 'link.png'));
  const r = await expandInputs([d, join(d, 'c.txt'), join(d, '*.png'), join(d, 'sub', '?.jpeg')]);
  assert.deepEqual(r.files, [join(d, 'a.JPG'), join(d, 'b.png'), join(d, 'link.png'), join(d, 'z.webp'), join(d, 'c.txt'), join(d, 'b.png'), join(d, 'link.png'), join(d, 'sub', 'd.jpeg')]);
  assert.deepEqual(r.errors, []);
  const rec = await expandInputs([d], { recursive: true });
  assert.deepEqual(rec.files, ['a.JPG', 'b.png', 'link.png', 'sub/d.jpeg', 'sub/e.png', 'z.webp'].map((n) => join(d, n)), 'depth first, each level sorted');
  const e = await expandInputs([join(d, 'none.jpg'), join(d, '*.gif'), join(d, '*', 'x.jpg'), join(d, 'sub', '..', 'sub'), join(tmp, 'hf-bare')]);
  assert.deepEqual(e.files, [join(d, 'sub', 'd.jpeg'), join(d, 'sub', 'e.png')]);
  assert.deepEqual(e.errors.map((x) => x.message.slice(x.arg.length + 2)), [
    'no such file or directory', 'no files match', 'wildcards (* and ?) are supported in the last path segment only',
    'no image files (.jpg .jpeg .png .webp .gif .tif .tiff) in this directory (--recursive to look in subdirectories)',
  ]);
  assert.ok(globRegExp('a.b*?.jpg').test('a.bxyz1.jpg') && !globRegExp('a.b*.jpg').test('aXb.jpg') && !globRegExp('*.jpg').test('d/x.jpg'));
});

// The torchvision ResNet family against torchvision 0.14 itself (fixtures: scripts/fixtures/make_torchvision.py ->
// tests/fixtures/gen/torchvision/). For each of the ten builders: torchvision's parameter count, its state-dict keys
// key for key in order with shapes and dtypes, the .pth file torch.save wrote read by our reader (io/pth.ts) and
// loaded strictly into getModel(arch) (copied, or for every other arch adopted zero-copy with assign), and eval
// logits on the native backend under the logits rule max|ours - torch| <= 1e-4 * max|torch| + 1e-5 (97x131 for all
// ten, 224x224 for resnet18/resnet50; resnet18 at 64x64 on every backend including js): the torch -> resnet-ts half
// of the end-to-end weights test (tests/models/pth-e2e.test.ts is the other half). Then a train-mode step (output, every
// running statistic, num_batches_tracked), the constructor options, initialisation, the seed's error messages and
// loadStateDict's strict/non-strict behaviour (the tutorial's fc swap).
//
// The per-architecture parity table is written to tests/fixtures/gen/parity-report.json and printed at the end.
// Full-size models run on js too with RESNET_PARITY_JS=1 (slow: minutes). A missing fixture fails the test.
// Models whose every parameter a strict load overwrites are built with skipInit (no random draws: seconds saved);
// the initialisation itself is tested below on models built normally.
//
// Why the logits rule: the networks are 18-152 layers of float32 sums whose accumulation order differs between
// PyTorch (oneDNN) and us; rounding differences grow through depth and through the BN scales, so the bound is
// relative to the size of the logits (1e-4, ~840 ulps of the largest logit) plus a small absolute floor (1e-5).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../../src/tensor/tensor.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { extractStateDict, readPthSync } from '../../src/io/pth.js';
import { skipInit } from '../../src/nn/init.js';
import { withBackend } from '../../src/backend/select.js';
import type { BackendName } from '../../src/backend/backend.js';
import { BatchNorm2d, Conv2d, Linear } from '../../src/nn/layers.js';
import { Module, Parameter, StateDictError } from '../../src/nn/module.js';
import { BasicBlock, Bottleneck, ResNet, getModel, resnet18, resnet50 } from '../../src/models/resnet.js';
import { FIXTURES, backends, compare, fixture } from '../helpers.js';

const ARCHS = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d',
  'resnext101_64x4d', 'wide_resnet50_2', 'wide_resnet101_2'] as const;

/** torchvision's published num_params (the Weights enums' meta). */
const NUM_PARAMS: Record<(typeof ARCHS)[number], number> = {
  resnet18: 11_689_512, resnet34: 21_797_672, resnet50: 25_557_032, resnet101: 44_549_160, resnet152: 60_192_808,
  resnext50_32x4d: 25_028_904, resnext101_32x8d: 88_791_336, resnext101_64x4d: 83_455_272,
  wide_resnet50_2: 68_883_240, wide_resnet101_2: 126_886_696,
};

const LOGITS_SCALE = 1e-4;
const LOGITS_ATOL = 1e-5;
const BACKENDS = backends();
const FULL_ON_JS = process.env.RESNET_PARITY_JS === '1';

// ---------------------------------------------------------------------------------------------------------------
// fixture access

const tv = (name: string): string => fixture('torchvision', name);

function tensorsOf(name: string): Map<string, Tensor> {
  return readSafetensorsSync(tv(name)).tensors;
}

/** The state dict in `<arch>.pth` (torch.save(model.state_dict(), path) by torchvision), through our .pth reader. */
function weightsOf(arch: string): Map<string, Tensor> {
  const path = tv(`${arch}.pth`);
  return extractStateDict(readPthSync(path).object, path);
}

function get(m: Map<string, Tensor>, key: string, where: string): Tensor {
  const t = m.get(key);
  if (!t) throw new Error(`${where}: no tensor "${key}"`);
  return t;
}

type KeyRow = [string, number[], string];
interface KeysEntry {
  num_params: number;
  keys: KeyRow[];
}
let keysCache: Record<string, KeysEntry> | null = null;
function keysJson(name: string): KeysEntry {
  keysCache ??= JSON.parse(readFileSync(tv('keys.json'), 'utf8')) as Record<string, KeysEntry>;
  const e = keysCache[name];
  assert.ok(e, `keys.json has no entry ${name}`);
  return e;
}

interface OptionsJson {
  zero_init_residual: Record<string, { zero: string[]; one: string[] }>;
  errors: Record<string, { type: string; message: string }>;
}
const optionsJson = (): OptionsJson => JSON.parse(readFileSync(tv('options.json'), 'utf8')) as OptionsJson;

// ---------------------------------------------------------------------------------------------------------------
// checks

interface ReportRow {
  arch: string;
  input: string;
  backend: BackendName;
  maxDiff: number;
  maxTorch: number;
  ratio: number;
  tolerance: number;
  /** max|ours - float64 answer| and max|torch float32 - float64 answer| (null where the fixture has no float64 run). */
  oursVsF64: number | null;
  torchVsF64: number | null;
  /** Whether the rule holds against PyTorch's float32 logits (asserted unless PyTorch's own error leaves no room). */
  vsTorchRule?: string;
  pass: boolean;
}
const REPORT: ReportRow[] = [];

/**
 * The logits rule max|ours - torch| <= 1e-4 * max|torch| + 1e-5, plus (when the fixture has PyTorch's float64 run
 * `exact`) the same rule against the exact answer and an accuracy rule: our distance to the exact answer is at most
 * twice PyTorch's own float32 distance to it, + 1e-5.
 * Where PyTorch's float32 logits are themselves more than half the tolerance away from the exact answer (deep
 * random-weight networks: resnet152 here), no second float32 implementation can be held to the rule against them;
 * there the rule is asserted against the exact answer only, and the distance to PyTorch's float32 is reported in
 * the table (column vsTorchRule) — never silently dropped.
 */
function logitsRule(ours: Tensor, torch: Tensor, arch: string, input: string, backend: BackendName, exact?: Tensor): void {
  assert.deepEqual([...ours.shape], [...torch.shape], `${arch} ${input}: logits shape`);
  const r = compare(ours, torch);
  const tolerance = LOGITS_SCALE * r.maxRef + LOGITS_ATOL;
  const oursVsF64 = exact ? compare(ours, exact).maxAbs : null;
  const torchVsF64 = exact ? compare(torch, exact).maxAbs : null;
  const torchNoisy = torchVsF64 !== null && torchVsF64 > 0.5 * tolerance;
  const vsTorchRule = r.maxAbs <= tolerance ? 'met' : `not met (PyTorch f32 is ${torchVsF64?.toExponential(2)} from exact)`;
  const pass = (r.maxAbs <= tolerance || torchNoisy) && (oursVsF64 === null || (oursVsF64 <= 2 * torchVsF64! + LOGITS_ATOL && oursVsF64 <= tolerance));
  REPORT.push({ arch, input, backend, maxDiff: r.maxAbs, maxTorch: r.maxRef, ratio: r.maxAbs / r.maxRef, tolerance, oursVsF64, torchVsF64, vsTorchRule, pass });
  const f64 = exact ? ` [against the float64 answer: ours ${oursVsF64!.toExponential(3)}, PyTorch float32 ${torchVsF64!.toExponential(3)}]` : '';
  if (!torchNoisy) {
    assert.ok(r.maxAbs <= tolerance, `${arch} ${input} [${backend}]: max|ours - torch| ${r.maxAbs.toExponential(3)} at element ${r.worstIndex} ` +
      `(ours ${ours.toArray()[r.worstIndex]}, torch ${torch.toArray()[r.worstIndex]}) > ${tolerance.toExponential(3)} ` +
      `= ${LOGITS_SCALE} * max|torch| ${r.maxRef.toExponential(3)} + ${LOGITS_ATOL}${f64}`);
  }
  if (exact) {
    const tolExact = LOGITS_SCALE * exact.toArray().reduce((m, v) => Math.max(m, Math.abs(v)), 0) + LOGITS_ATOL;
    assert.ok(oursVsF64! <= tolExact, `${arch} ${input} [${backend}]: max|ours - exact| ${oursVsF64!.toExponential(3)} > ${tolExact.toExponential(3)}${f64}`);
    assert.ok(oursVsF64! <= 2 * torchVsF64! + LOGITS_ATOL, `${arch} ${input} [${backend}]: less accurate than PyTorch's float32:${f64}`);
  }
}

/** State-dict keys, shapes and dtypes equal torchvision's, key for key, in order. */
function assertKeys(model: Module, want: KeyRow[], what: string): void {
  const ours: KeyRow[] = [...model.stateDict()].map(([k, v]) => [k, [...v.shape], v.dtype]);
  const n = Math.min(ours.length, want.length);
  for (let i = 0; i < n; i++) {
    assert.deepEqual(ours[i], want[i], `${what}: state-dict entry ${i} is ${JSON.stringify(ours[i])}, torchvision has ${JSON.stringify(want[i])}`);
  }
  assert.equal(ours.length, want.length, `${what}: ${ours.length} state-dict entries, torchvision has ${want.length} ` +
    `(first extra: ${JSON.stringify((ours.length > want.length ? ours : want)[n])})`);
}

/** Every state-dict tensor of `model` equals the file's, exactly (after loading). */
function assertLoaded(model: Module, file: Map<string, Tensor>, what: string, skip: (k: string) => boolean = () => false): void {
  for (const [k, v] of model.stateDict()) {
    if (skip(k)) continue;
    const f = get(file, k, what);
    const a = v.contiguousData(), b = f.contiguousData();
    assert.equal(a.length, b.length, `${what}: ${k} size`);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: ${k}[${i}] is ${a[i]} after loading, the file has ${b[i]}`);
  }
}

/** Running statistics after a train step: they are batch means/variances of deep activations, which carry the
 * same accumulated rounding as the logits, so the same relative rule per tensor (1e-4 * max|torch| + 1e-6). */
function assertRunningStats(model: Module, after: Map<string, Tensor>, prefix: string, what: string): number {
  const sd = model.stateDict();
  let n = 0;
  for (const [key, want] of after) {
    if (!key.startsWith(prefix)) continue;
    const k = key.slice(prefix.length);
    const ours = sd.get(k);
    assert.ok(ours, `${what}: our model has no ${k}`);
    assert.equal(ours.dtype, want.dtype, `${what}: ${k} dtype`);
    if (k.endsWith('num_batches_tracked')) {
      assert.equal(ours.item(), want.item(), `${what}: ${k}`);
    } else {
      const r = compare(ours, want);
      assert.ok(r.maxAbs <= 1e-4 * r.maxRef + 1e-6, `${what}: ${k} max|diff| ${r.maxAbs.toExponential(3)} at ${r.worstIndex} ` +
        `(ours ${ours.toArray()[r.worstIndex]}, torch ${want.toArray()[r.worstIndex]}), max|torch| ${r.maxRef.toExponential(3)}`);
    }
    n++;
  }
  return n;
}

const shapeStr = (t: Tensor): string => t.shape.join('x');

/** Build once, reload state from `file` each time it is handed out (cheap compared with construction). */
function cachedLoaded<M extends Module>(build: () => M, file: () => Map<string, Tensor>): () => M {
  let m: M | null = null;
  let f: Map<string, Tensor> | null = null;
  return () => {
    m ??= build();
    f ??= file();
    m.loadStateDict(f);
    return m;
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the ten builders

for (const [i, arch] of ARCHS.entries()) {
  // every other arch takes the file's tensors as its own (loadStateDict assign: zero-copy), the rest copies them
  const assign = i % 2 === 1;
  test(`${arch}: torchvision's parameter count, state-dict keys/shapes/dtypes, ${arch}.pth (torch.save) loaded strictly${assign ? ' (assign)' : ''}, eval logits`, async (t) => {
    const keys = keysJson(arch);
    const model = skipInit(() => getModel(arch, { seed: 0 }));
    assert.ok(model instanceof ResNet, `getModel('${arch}') builds a ResNet`);
    assert.equal(model.numParameters(), NUM_PARAMS[arch], `${arch}: parameter count`);
    assert.equal(keys.num_params, NUM_PARAMS[arch], `${arch}: the fixture's num_params (torchvision) vs the published one`);
    assertKeys(model, keys.keys, arch);
    assert.ok(keys.keys.some(([k, , d]) => k.endsWith('num_batches_tracked') && d === 'int64'), 'num_batches_tracked is int64');

    const path = tv(`${arch}.pth`);
    const pth = readPthSync(path);
    assert.equal(pth.format, 'zip', `${arch}.pth is torch.save's zip format`);
    const sd = extractStateDict(pth.object, path);
    assert.ok(pth.object instanceof Map && sd.size === pth.object.size, `${arch}.pth holds the state dict itself (an OrderedDict of tensors)`);
    assert.deepEqual([...sd.keys()], keys.keys.map((k) => k[0]), `${arch}.pth is in torchvision's order`);
    for (const [k, shape, d] of keys.keys) {
      const v = sd.get(k)!;
      assert.equal(pth.dtypes.get(v), d, `${arch}.pth: dtype of ${k} on disk`);
      assert.equal(v.dtype, d, `${arch}.pth: dtype of ${k} as read`);
      assert.deepEqual([...v.shape], shape, `${arch}.pth: shape of ${k}`);
    }
    const res = model.loadStateDict(sd, { assign });
    assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    assertLoaded(model, sd, arch);
    // assign: the model's tensors are the file's storage (no copy); copy: they are the model's own
    for (const [k, v] of model.stateDict()) {
      assert.equal(v.data === sd.get(k)!.data, assign, `${arch}: ${k} ${assign ? 'shares' : 'does not share'} the file's storage`);
    }
    const params = model.namedParameters();
    assert.equal(params.length, keys.keys.filter(([k]) => !/running_|num_batches/.test(k)).length, `${arch}: parameter count after loading`);
    for (const [k, p] of params) assert.ok(p instanceof Parameter && p.requiresGrad, `${arch}: ${k} is a Parameter that requires grad`);
    model.eval();

    const io = tensorsOf(`${arch}.io.safetensors`);
    const runs: { input: string; logits: string; small: boolean }[] = [{ input: 'input', logits: 'logits', small: false }];
    if (io.has('input224')) runs.push({ input: 'input224', logits: 'logits224', small: false });
    if (io.has('input64')) runs.push({ input: 'input64', logits: 'logits64', small: true });
    for (const be of BACKENDS) {
      for (const run of runs) {
        const x = get(io, run.input, arch);
        const skip = be.skip || (be.name === 'js' && !run.small && !FULL_ON_JS ? 'full-size models run on js only with RESNET_PARITY_JS=1 (slow); js is checked on resnet18 at 64x64' : false);
        await t.test(`eval logits ${shapeStr(x)} [${be.name}]`, { skip }, () => withBackend(be.name, () => {
          logitsRule(noGrad(() => model.forward(x)), get(io, run.logits, arch), arch, shapeStr(x), be.name, get(io, `${run.logits}_f64`, arch));
        }));
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// train mode: resnet18 at 64x80, batch 3, from the fixture state (num_batches_tracked 3): output, and every
// running_mean / running_var (momentum 0.1, unbiased variance) and num_batches_tracked (4) after the step.

const resnet18Loaded = cachedLoaded(() => skipInit(() => resnet18({ seed: 0 })), () => weightsOf('resnet18'));

for (const be of BACKENDS) {
  test(`resnet18 train-mode forward: output and every running statistic [${be.name}]`, { skip: be.skip }, () => withBackend(be.name, () => {
    const tr = tensorsOf('train_resnet18.safetensors');
    const model = resnet18Loaded().train();
    const x = get(tr, 'input', 'train_resnet18');
    logitsRule(model.forward(x), get(tr, 'output', 'train_resnet18'), 'resnet18 (train mode)', shapeStr(x), be.name);
    const n = assertRunningStats(model, tr, 'after.', 'resnet18 train step');
    assert.equal(n, 20 * 3, 'all 20 BatchNorms of resnet18 were checked');
    const nbt = model.stateDict().get('bn1.num_batches_tracked')!;
    assert.equal(nbt.item(), 4, 'three randomize_bn passes + this step');
    model.eval();
  }));
}

// ---------------------------------------------------------------------------------------------------------------
// options

const customLoaded = cachedLoaded(
  () => new ResNet(Bottleneck, [1, 2, 1, 1], { groups: 4, widthPerGroup: 16, numClasses: 10, seed: 0 }),
  () => {
    const all = tensorsOf('options.safetensors');
    return new Map([...all].filter(([k]) => k.startsWith('custom.sd.')).map(([k, v]) => [k.slice('custom.sd.'.length), v]));
  });

test('groups/width_per_group: custom ResNet(Bottleneck, [1,2,1,1], groups=4, width_per_group=16) keys and count', () => {
  const keys = keysJson('custom_bottleneck_1211_g4_w16_nc10');
  const model = customLoaded();
  assertKeys(model, keys.keys, 'custom grouped ResNet');
  assert.equal(model.numParameters(), keys.num_params, 'custom grouped ResNet parameter count');
  // width = int(planes * (16 / 64)) * 4 = planes: layer1's 3x3 conv is 64 -> 64 in 4 groups
  const l1 = (model as ResNet).layer1.at<Bottleneck>(0).conv2;
  assert.deepEqual([l1.inChannels, l1.outChannels, l1.groups], [64, 64, 4]);
});

for (const be of BACKENDS) {
  test(`groups/width_per_group: custom grouped ResNet eval logits and a train step [${be.name}]`, { skip: be.skip }, () => withBackend(be.name, () => {
    const o = tensorsOf('options.safetensors');
    const model = customLoaded().eval();
    const x = get(o, 'custom.input', 'options');
    logitsRule(model.forward(x), get(o, 'custom.logits', 'options'), 'ResNet(Bottleneck,[1,2,1,1],g4,w16)', shapeStr(x), be.name);
    model.train();
    const xt = get(o, 'custom.train_input', 'options');
    logitsRule(model.forward(xt), get(o, 'custom.train_output', 'options'), 'ResNet(Bottleneck,[1,2,1,1],g4,w16) (train mode)', shapeStr(xt), be.name);
    const n = assertRunningStats(model, o, 'custom.after.', 'custom grouped ResNet train step');
    assert.equal(n, (1 + (1 + 2 + 1 + 1) * 3 + 4) * 3, 'every BatchNorm of the custom model was checked');
    model.eval();
  }));
}

interface DilationMeta {
  replace_stride_with_dilation: boolean[];
  feature_shape: number[];
  convs: [string, number[], number[], number[]][];
}
const dilationModels = new Map<string, ResNet>();
function dilated(name: string, pattern: boolean[]): ResNet {
  let m = dilationModels.get(name);
  if (!m) {
    m = skipInit(() => resnet50({ seed: 0, replaceStrideWithDilation: pattern }));
    m.loadStateDict(weightsOf('resnet50'));
    dilationModels.set(name, m.eval());
  }
  return m;
}

for (const name of ['FFT', 'FTT', 'TTT']) {
  test(`replace_stride_with_dilation ${name} on resnet50: every conv's stride/padding/dilation as torchvision`, () => {
    const st = readSafetensorsSync(tv('options.safetensors'));
    const meta = (JSON.parse(st.metadata!.options) as { dilation: Record<string, DilationMeta> }).dilation[name];
    assert.ok(meta, `options.safetensors has no dilation pattern ${name}`);
    const model = dilated(name, meta.replace_stride_with_dilation);
    const ours = [...model.namedModules()].filter((e): e is [string, Conv2d] => e[1] instanceof Conv2d)
      .map(([n, c]) => [n, [...c.stride], [...c.padding], [...c.dilation]]);
    assert.deepEqual(ours, meta.convs);
  });
  for (const be of BACKENDS) {
    test(`replace_stride_with_dilation ${name} on resnet50: logits [${be.name}]`, { skip: be.skip }, () => withBackend(be.name, () => {
      const st = readSafetensorsSync(tv('options.safetensors'));
      const meta = (JSON.parse(st.metadata!.options) as { dilation: Record<string, DilationMeta> }).dilation[name];
      const model = dilated(name, meta.replace_stride_with_dilation);
      const x = get(st.tensors, 'dilation.input', 'options');
      logitsRule(model.forward(x), get(st.tensors, `dilation.${name}.logits`, 'options'), `resnet50 dilation ${name}`, shapeStr(x), be.name);
    }));
  }
}

const nc10Loaded = cachedLoaded(() => skipInit(() => resnet18({ numClasses: 10, seed: 0 })), () => {
  const sd = new Map([...weightsOf('resnet18')].filter(([k]) => !k.startsWith('fc.')));
  const o = tensorsOf('options.safetensors');
  sd.set('fc.weight', get(o, 'nc10.fc.weight', 'options'));
  sd.set('fc.bias', get(o, 'nc10.fc.bias', 'options'));
  return sd;
});

for (const be of BACKENDS) {
  test(`num_classes=10: keys, count and logits [${be.name}]`, { skip: be.skip }, () => withBackend(be.name, () => {
    const keys = keysJson('resnet18_num_classes_10');
    const model = nc10Loaded().eval();
    assertKeys(model, keys.keys, 'resnet18(num_classes=10)');
    assert.equal(model.numParameters(), keys.num_params);
    const o = tensorsOf('options.safetensors');
    const x = get(o, 'nc10.input', 'options');
    logitsRule(model.forward(x), get(o, 'nc10.logits', 'options'), 'resnet18(num_classes=10)', shapeStr(x), be.name);
  }));
}

test('zero_init_residual zeroes exactly the BN weights torchvision zeroes (bn2 in BasicBlock, bn3 in Bottleneck)', () => {
  const want = optionsJson().zero_init_residual;
  for (const [arch, build, last] of [['resnet18', resnet18, 'bn2'], ['resnet50', resnet50, 'bn3']] as const) {
    const model = build({ zeroInitResidual: true, seed: 5 });
    const bnWeights = [...model.stateDict()].filter(([k, v]) => k.endsWith('.weight') && v.ndim === 1 && !k.startsWith('fc.'));
    const zero = bnWeights.filter(([, v]) => v.toArray().every((x) => x === 0)).map(([k]) => k);
    const one = bnWeights.filter(([, v]) => v.toArray().every((x) => x === 1)).map(([k]) => k);
    assert.deepEqual(zero, want[arch].zero, `${arch}: zeroed BN weights`);
    assert.deepEqual(one, want[arch].one, `${arch}: BN weights left at 1`);
    assert.equal(zero.length + one.length, bnWeights.length, `${arch}: every BN weight is 0 or 1`);
    assert.ok(zero.length > 0 && zero.every((k) => k.endsWith(`.${last}.weight`)) && zero.every((k) => /^layer\d\.\d+\./.test(k)),
      `${arch}: only ${last}.weight of the residual blocks is zeroed`);
    const blocks = [...model.namedModules()].filter(([, m]) => m instanceof (last === 'bn2' ? BasicBlock : Bottleneck)).length;
    assert.equal(zero.length, blocks, `${arch}: one zeroed BN per block`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// initialisation

test('init: same seed gives an identical state dict, a different seed a different one', () => {
  const a = resnet18({ seed: 7 }).stateDict(), b = resnet18({ seed: 7 }).stateDict(), c = resnet18({ seed: 8 }).stateDict();
  assert.deepEqual([...b.keys()], [...a.keys()]);
  for (const [k, v] of a) {
    assert.deepEqual(b.get(k)!.toArray(), v.toArray(), `seed 7 twice: ${k} differs`);
  }
  // without zero_init_residual every BN weight starts at 1 (resnet50's are checked below)
  assert.ok([...a].filter(([k]) => /bn\d\.weight$|downsample\.1\.weight$/.test(k)).every(([, v]) => v.toArray().every((x) => x === 1)));
  for (const k of ['conv1.weight', 'layer1.0.conv1.weight', 'layer4.1.conv2.weight', 'fc.weight', 'fc.bias']) {
    const x = a.get(k)!.toArray(), y = c.get(k)!.toArray();
    assert.ok(x.some((v, i) => v !== y[i]), `seeds 7 and 8 give the same ${k}`);
  }
});

/** Mean, standard deviation and kurtosis of a sample. */
function moments(v: ArrayLike<number>): { mean: number; std: number; kurt: number } {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  const mean = s / v.length;
  let m2 = 0, m4 = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v[i] - mean, d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  m2 /= v.length;
  m4 /= v.length;
  return { mean, std: Math.sqrt(m2), kurt: m4 / (m2 * m2) };
}

test('init: kaiming_normal fan_out/relu for convs (std, mean, normal shape), BN 1/0, fc as nn.Linear', () => {
  const model = resnet50({ seed: 3 });
  // (name, fan_out): layer4.0.conv2 is 512 -> 512 3x3 (2.36M values), conv1 64 x 7x7, layer3.0.conv3 1024 x 1x1
  for (const [name, fanOut] of [['layer4.0.conv2.weight', 512 * 9], ['conv1.weight', 64 * 49], ['layer3.0.conv3.weight', 1024]] as const) {
    const w = model.stateDict().get(name)!.contiguousData() as Float32Array;
    const n = w.length;
    const want = Math.sqrt(2 / fanOut);
    const { mean, std, kurt } = moments(w);
    // sampling errors of a normal sample: std/sigma has s.e. 1/sqrt(2n), mean s.e. sigma/sqrt(n), kurtosis s.e.
    // sqrt(24/n); allow 6 standard errors (a wrong fan or gain is off by >= 40%, a uniform draw has kurtosis 1.8)
    assert.ok(Math.abs(std / want - 1) < 6 / Math.sqrt(2 * n), `${name}: std ${std} vs sqrt(2/fan_out) = ${want} (n = ${n})`);
    assert.ok(Math.abs(mean) < 6 * want / Math.sqrt(n), `${name}: mean ${mean}`);
    assert.ok(Math.abs(kurt - 3) < 6 * Math.sqrt(24 / n), `${name}: kurtosis ${kurt} (normal: 3)`);
  }
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    assert.ok(m.weight!.toArray().every((v) => v === 1), `${name}.weight is 1`);
    assert.ok(m.bias!.toArray().every((v) => v === 0), `${name}.bias is 0`);
    assert.ok(m.running_mean!.toArray().every((v) => v === 0), `${name}.running_mean is 0`);
    assert.ok(m.running_var!.toArray().every((v) => v === 1), `${name}.running_var is 1`);
    assert.equal(m.num_batches_tracked!.item(), 0);
    assert.equal(m.num_batches_tracked!.dtype, 'int64');
  }
  // fc keeps nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
  const bound = 1 / Math.sqrt(2048);
  for (const k of ['fc.weight', 'fc.bias']) {
    const v = model.stateDict().get(k)!.toArray();
    assert.ok(v.every((x) => Math.abs(x) <= bound), `${k} within +-1/sqrt(2048)`);
    assert.ok(v.reduce((m, x) => Math.max(m, Math.abs(x)), 0) > 0.9 * bound, `${k} spans its range`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// the seed's errors, with torchvision's exact messages (recorded from torchvision by the fixture maker)

test("constructor errors carry torchvision's messages", () => {
  const e = optionsJson().errors;
  const throwsExactly = (f: () => unknown, message: string) =>
    assert.throws(f, (err: unknown) => err instanceof Error && err.message === message, `expected exactly: ${message}`);
  throwsExactly(() => new ResNet(BasicBlock, [2, 2, 2, 2], { groups: 2 }), e.basic_groups.message);
  throwsExactly(() => new ResNet(BasicBlock, [2, 2, 2, 2], { widthPerGroup: 32 }), e.basic_width.message);
  throwsExactly(() => resnet18({ replaceStrideWithDilation: [false, false, true] }), e.basic_dilation.message);
  assert.equal(e.basic_groups.message, 'BasicBlock only supports groups=1 and base_width=64');
  assert.equal(e.basic_dilation.message, 'Dilation > 1 not supported in BasicBlock');
  throwsExactly(() => resnet50({ replaceStrideWithDilation: [false, true] }), e.rswd_len2.message);
  // a Bottleneck model accepts groups and dilation (no error)
  assert.doesNotThrow(() => new ResNet(Bottleneck, [1, 1, 1, 1], { groups: 2, widthPerGroup: 32, replaceStrideWithDilation: [false, true, true], numClasses: 3 }));
});

// ---------------------------------------------------------------------------------------------------------------
// loadStateDict: strict errors and non-strict loading (the tutorial's head swap)

test('loadStateDict strict names every missing, unexpected and mismatched key and loads nothing', () => {
  const file = weightsOf('resnet18');
  const model = resnet18({ seed: 11 });
  const before = model.conv1.weight.toArray();
  const sd = new Map(file);
  sd.delete('layer1.0.bn1.running_var');
  sd.delete('layer3.1.conv2.weight');
  sd.set('layer5.0.conv1.weight', get(file, 'layer4.0.conv1.weight', 'resnet18'));
  sd.set('fc.weight', get(file, 'fc.weight', 'resnet18').narrow(0, 0, 10));
  assert.throws(() => model.loadStateDict(sd), (err: unknown) => {
    assert.ok(err instanceof StateDictError, 'a StateDictError');
    assert.match(err.message, /^Error\(s\) in loading state_dict for ResNet:/);
    assert.match(err.message, /Missing key\(s\) in state_dict: "layer1\.0\.bn1\.running_var", "layer3\.1\.conv2\.weight"\./);
    assert.match(err.message, /Unexpected key\(s\) in state_dict: "layer5\.0\.conv1\.weight"\./);
    assert.match(err.message, /size mismatch for fc\.weight: copying a param with shape \[10, 512\] from checkpoint, the shape in current model is \[1000, 512\]\./);
    assert.deepEqual(err.result.missingKeys, ['layer1.0.bn1.running_var', 'layer3.1.conv2.weight']);
    assert.deepEqual(err.result.unexpectedKeys, ['layer5.0.conv1.weight']);
    assert.deepEqual(err.result.mismatchedKeys, [{ key: 'fc.weight', expected: [1000, 512], got: [10, 512] }]);
    return true;
  });
  assert.deepEqual(model.conv1.weight.toArray(), before, 'a failed strict load changes nothing');
  const r = model.loadStateDict(sd, { strict: false });
  assert.deepEqual(r.missingKeys, ['layer1.0.bn1.running_var', 'layer3.1.conv2.weight']);
  assert.deepEqual(r.unexpectedKeys, ['layer5.0.conv1.weight']);
  assert.deepEqual(r.mismatchedKeys.map((m) => m.key), ['fc.weight']);
  const skipped = new Set(['layer1.0.bn1.running_var', 'layer3.1.conv2.weight', 'fc.weight']);
  assertLoaded(model, file, 'strict:false load', (k) => skipped.has(k));
  const own = model.stateDict();
  assert.notDeepEqual(own.get('layer3.1.conv2.weight')!.toArray().slice(0, 16), get(file, 'layer3.1.conv2.weight', 'resnet18').toArray().slice(0, 16));
  assert.ok(own.get('layer1.0.bn1.running_var')!.toArray().every((v) => v === 1), 'a missing buffer keeps its value');
});

test("the tutorial's head swap: fc = Linear(fc.in_features, 2), strict:false loads everything else", () => {
  const file = weightsOf('resnet18');
  const model = resnet18({ seed: 12 });
  const numFtrs = model.fc.inFeatures;
  assert.equal(numFtrs, 512);
  model.fc = new Linear(numFtrs, 2);
  const keys = [...model.stateDict().keys()];
  assert.deepEqual(keys.slice(-2), ['fc.weight', 'fc.bias'], 'the new head keeps fc\'s place');
  assert.deepEqual(keys, keysJson('resnet18').keys.map((k) => k[0]));
  assert.throws(() => model.loadStateDict(file), /size mismatch for fc\.weight: copying a param with shape \[1000, 512\] from checkpoint, the shape in current model is \[2, 512\]/);
  const head = model.fc.weight.toArray();
  const r = model.loadStateDict(file, { strict: false });
  assert.deepEqual(r.missingKeys, []);
  assert.deepEqual(r.unexpectedKeys, []);
  assert.deepEqual(r.mismatchedKeys, [{ key: 'fc.weight', expected: [2, 512], got: [1000, 512] }, { key: 'fc.bias', expected: [2], got: [1000] }]);
  assertLoaded(model, file, 'head swap', (k) => k.startsWith('fc.'));
  assert.deepEqual(model.fc.weight.toArray(), head, 'the new head keeps its own initialisation');
  const io = tensorsOf('resnet18.io.safetensors');
  const x = get(io, 'input64', 'resnet18.io');
  const be = BACKENDS.find((b) => !b.skip)!.name;
  withBackend(be, () => {
    model.eval();
    const y = model.forward(x);
    assert.deepEqual([...y.shape], [2, 2]);
    // the body is torchvision's resnet18: its features give the fixture's 1000-way logits through the old fc
    const ref = resnet18Loaded().eval();
    const feats = model.avgpool.forward(model.features(x)).flatten(1);
    logitsRule(ref.fc.forward(feats), get(io, 'logits64', 'resnet18.io'), 'resnet18 body after head swap', shapeStr(x), be);
    REPORT.pop(); // a check of the loaded body, not an architecture row of the table
  });
});

// ---------------------------------------------------------------------------------------------------------------
// the parity table

test('parity report: written to tests/fixtures/gen/parity-report.json', (t) => {
  mkdirSync(FIXTURES, { recursive: true });
  const path = join(FIXTURES, 'parity-report.json');
  const p4 = (v: number | null) => (v === null ? null : Number(v.toPrecision(4)));
  const rows = REPORT.map((r) => ({ ...r, maxDiff: p4(r.maxDiff), maxTorch: p4(r.maxTorch), ratio: p4(r.ratio), tolerance: p4(r.tolerance), oursVsF64: p4(r.oursVsF64), torchVsF64: p4(r.torchVsF64) }));
  const rules = {
    logits: `max|ours - torch| <= ${LOGITS_SCALE} * max|torch| + ${LOGITS_ATOL}`,
    accuracy: `max|ours - f64| <= 2 * max|torch - f64| + ${LOGITS_ATOL} (f64: the same model run in float64 by PyTorch)`,
    exact: `max|ours - f64| <= ${LOGITS_SCALE} * max|f64| + ${LOGITS_ATOL}; the logits rule against PyTorch float32 is asserted unless PyTorch's own distance to f64 exceeds half its tolerance (see vsTorchRule)`,
  };
  writeFileSync(path, `${JSON.stringify({ rules, rows }, null, 1)}\n`);
  const e = (v: number | null) => (v === null ? '-' : v.toExponential(3)).padStart(10);
  const lines = [`${'arch'.padEnd(48)} ${'input'.padEnd(12)} ${'backend'.padEnd(7)} ${'max|diff|'.padStart(10)} ${'max|torch|'.padStart(10)} ${'ratio'.padStart(10)} ${'ours-f64'.padStart(10)} ${'torch-f64'.padStart(10)}  ok   rule vs PyTorch f32`];
  for (const r of REPORT) {
    lines.push(`${r.arch.padEnd(48)} ${r.input.padEnd(12)} ${r.backend.padEnd(7)} ${e(r.maxDiff)} ${e(r.maxTorch)} ${e(r.ratio)} ${e(r.oursVsF64)} ${e(r.torchVsF64)}  ${r.pass ? 'yes' : 'NO '}  ${r.vsTorchRule ?? ''}`);
  }
  for (const l of lines) t.diagnostic(l);
  console.log(`parity table (${path}):\n${lines.join('\n')}`);
  assert.ok(REPORT.length > 0, 'no parity rows were recorded');
});

// Tests for src/models/weights.ts and the weights side of the builders in src/models/resnet.ts: every enum member's
// facts equal what the installed torchvision says (read live through /usr/bin/python3: without python, torch and
// torchvision these tests fail, they do not skip); verify/get_weight/get_model_weights accept and reject as
// torchvision does, with its messages; num_classes and the legacy `pretrained` behave as in torchvision; and a
// checkpoint in a temporary $TORCH_HOME loads end to end without the network: a file whose sha256 does not match
// its name is refused, one that does loads strictly and gives torch's logits.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertClose } from '../helpers.js';
import { readNpySync } from '../../src/io/npy.js';
import { Generator, defaultGenerator } from '../../src/tensor/random.js';
import {
  MODELS, ResNet, getModel, getModelBuilder, listModels, resnet18, resnet50, resnext50_32x4d,
} from '../../src/models/resnet.js';
import {
  HF_RESNET, IMAGENET_CATEGORIES, ResNet18_Weights, ResNet50_Weights, Weights, WeightsEnum, getModelWeights, getWeight,
  legacyPretrainedWeights, listWeightsEnums, verifyWeights,
} from '../../src/models/weights.js';

const PY = '/usr/bin/python3';

function python(script: string, args: string[] = []): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, PYTHONWARNINGS: 'ignore' } });
  if (r.error || r.status !== 0) {
    throw new Error(`${PY} failed (needs Debian's python3-torch and python3-torchvision): ${r.error?.message ?? r.stderr}`);
  }
  return r.stdout;
}

// What torchvision says, for every builder: its enum's members (aliases included), their url, hash prefix (torch.hub's
// HASH_REGEX), meta, preset; GFLOPS (torchvision 0.14 has no meta["_ops"]: multiply-adds of convs and linears at
// 224x224, counted with hooks, as later releases define it); what pretrained=True/False turn into, with the warnings
// (torchvision's _resnet is swapped for one that returns its weights, so nothing is built or downloaded).
const FACTS_PY = String.raw`
import json, os, warnings, torch, torch.hub, torchvision
from torchvision.models import _api, _meta, resnet

def gflops(b):
    m, n = getattr(resnet, b)().eval(), [0]
    def hook(mod, i, o):
        n[0] += o.numel() * (mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1] if isinstance(mod, torch.nn.Conv2d) else mod.in_features)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)): mod.register_forward_hook(hook)
    with torch.no_grad(): m(torch.zeros(1, 3, 224, 224))
    return round(n[0] / 1e9, 3)

def legacy(b, flag):
    real = resnet._resnet
    resnet._resnet = lambda block, layers, weights, progress, **kw: weights
    try:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            w = getattr(resnet, b)(pretrained=flag)
        return {"weights": None if w is None else str(w), "warnings": [str(r.message) for r in rec]}
    finally:
        resnet._resnet = real

out = {"version": torchvision.__version__, "categories": list(_meta._IMAGENET_CATEGORIES), "enums": {}}
for b in [n for n in resnet.__all__ if n[0].islower()]:
    e = _api.get_model_weights(b)
    members = {}
    ops = gflops(b) if any("_ops" not in w.meta for w in e) else None
    for name, w in e.__members__.items():
        t = w.transforms()
        meta = {k: v for k, v in w.meta.items() if k != "categories"}
        if "_ops" not in meta: meta["_ops"] = ops
        members[name] = {"target": w.name, "url": w.url, "hash": torch.hub.HASH_REGEX.search(os.path.basename(w.url)).group(1),
                         "meta": meta, "categories": list(w.meta["categories"]),
                         "transforms": {"resizeSize": t.resize_size[0], "cropSize": t.crop_size[0], "interpolation": t.interpolation.value,
                                        "mean": list(t.mean), "std": list(t.std), "antialias": getattr(t, "antialias", None)}}
    out["enums"][e.__name__] = {"builder": b, "members": members, "legacyTrue": legacy(b, True), "legacyFalse": legacy(b, False)}
print(json.dumps(out))
`;

// torchvision's answers (value or error class + message) to calls given as JSON [kind, ...args].
const CALLS_PY = String.raw`
import json, sys
from torchvision.models import _api, resnet
res = []
for kind, *a in json.loads(sys.argv[1]):
    try:
        if kind == "verify": v = getattr(resnet, a[0]).verify(getattr(getattr(resnet, a[1][0]), a[1][1]) if isinstance(a[1], list) else a[1])
        elif kind == "get_weight": v = _api.get_weight(a[0])
        elif kind == "get_model_weights": v = _api.get_model_weights(a[0]).__name__
        elif kind == "build": v = getattr(resnet, a[0])(**a[1])
        res.append({"value": None if v is None else str(v)})
    except Exception as err:
        res.append({"error": type(err).__name__, "message": str(err)})
print(json.dumps(res))
`;

interface PyMember {
  target: string;
  url: string;
  hash: string;
  meta: Record<string, unknown>;
  categories: string[];
  transforms: Record<string, unknown>;
}
interface PyLegacy {
  weights: string | null;
  warnings: string[];
}
interface PyFacts {
  version: string;
  categories: string[];
  enums: Record<string, { builder: string; members: Record<string, PyMember>; legacyTrue: PyLegacy; legacyFalse: PyLegacy }>;
}
type PyAnswer = { value: string | null } | { error: string; message: string };

let factsCache: PyFacts | undefined;
const facts = (): PyFacts => (factsCache ??= JSON.parse(python(FACTS_PY)) as PyFacts);
const torchvisionSays = (calls: unknown[][]): PyAnswer[] => JSON.parse(python(CALLS_PY, [JSON.stringify(calls)])) as PyAnswer[];

/** Python exception class -> the JS error class we throw for it. */
const ERROR_CLASS: Record<string, typeof Error> = { ValueError: RangeError, TypeError: TypeError };

/** Call `f` and check it does what torchvision answered. */
async function sameAsTorchvision(what: string, answer: PyAnswer, f: () => unknown): Promise<void> {
  if ('error' in answer) {
    await assert.rejects(async () => f(), (err: Error) => {
      assert.ok(err instanceof ERROR_CLASS[answer.error], `${what}: expected a ${ERROR_CLASS[answer.error].name} (torchvision: ${answer.error}), got ${err.constructor.name}: ${err.message}`);
      assert.equal(err.message, answer.message, what);
      return true;
    });
  } else {
    const v = await f();
    assert.equal(v === null ? null : String(v), answer.value, what);
  }
}

// ---- the table against torchvision --------------------------------------------------------------------------------

test('the enums, members, aliases and builders are torchvision\'s', () => {
  const py = facts();
  assert.deepEqual(listWeightsEnums().map((e) => e.enumName), Object.keys(py.enums));
  assert.deepEqual(listModels(), Object.values(py.enums).map((e) => e.builder).sort());
  for (const [enumName, pe] of Object.entries(py.enums)) {
    const e = getModelWeights(pe.builder);
    assert.equal(e.enumName, enumName);
    assert.equal(getModelWeights(MODELS[pe.builder]), e, 'by builder function');
    assert.equal(MODELS[pe.builder].weightsEnum, e);
    assert.deepEqual(e.names(), Object.keys(pe.members), `${enumName} member names (aliases included)`);
    for (const [name, pm] of Object.entries(pe.members)) {
      const w = (e as unknown as Record<string, Weights>)[name];
      assert.ok(w instanceof Weights, `${enumName}.${name}`);
      assert.equal(w.name, pm.target, `${enumName}.${name} is ${pm.target}`);
      assert.equal(w, e.fromStr(pm.target), `${enumName}.${name} is the same object as ${pm.target}`);
      assert.equal(w.enumName, enumName);
      assert.equal(String(w), `${enumName}.${pm.target}`);
    }
    assert.deepEqual(e.members().map((w) => w.name), Object.entries(pe.members).filter(([n, m]) => n === m.target).map(([n]) => n));
  }
});

test('every member\'s url, hash prefix, meta, transforms and categories equal torchvision\'s', () => {
  const py = facts();
  assert.deepEqual(IMAGENET_CATEGORIES, py.categories);
  assert.equal(IMAGENET_CATEGORIES.length, 1000);
  for (const [enumName, pe] of Object.entries(py.enums)) {
    for (const [name, pm] of Object.entries(pe.members)) {
      const w = getWeight(`${enumName}.${name}`);
      const what = `${enumName}.${name}`;
      assert.equal(w.url, pm.url, `${what} url`);
      assert.equal(w.hashPrefix, pm.hash, `${what} hash prefix`);
      assert.deepEqual(w.meta.categories, pm.categories, `${what} categories`);
      assert.equal(w.meta.categories, IMAGENET_CATEGORIES, `${what} categories are the shared list`);
      const { categories: _c, ...meta } = w.meta;
      assert.deepEqual(JSON.parse(JSON.stringify(meta)), pm.meta, `${what} meta (num_params, acc@1/acc@5, _ops, _file_size, recipe, _docs, min_size)`);
      // torchvision 0.14's preset has no antialias argument (PIL input is always antialiased); later ones say true
      assert.deepEqual({ ...w.transforms }, { ...pm.transforms, antialias: pm.transforms.antialias ?? true }, `${what} transforms`);
      assert.ok([256, 232].includes(w.transforms.resizeSize) && w.transforms.cropSize === 224, `${what} resize/crop`);
    }
  }
});

/** Run f with weight initialisation reduced to constants: a parameter count does not depend on it, and the ten
 * models build in seconds instead of a minute. Conv2d/Linear's own init draws from the default generator. */
function fastInit<T>(f: (g: Generator) => T): T {
  const g = Object.assign(new Generator(0), { uniform: () => 0.5, normal: () => 0 });
  const saved = { uniform: defaultGenerator.uniform, normal: defaultGenerator.normal };
  Object.assign(defaultGenerator, { uniform: g.uniform, normal: g.normal });
  try {
    return f(g);
  } finally {
    Object.assign(defaultGenerator, saved);
  }
}

test('num_params equals each builder\'s numParameters()', () => {
  fastInit((g) => {
    for (const e of listWeightsEnums()) {
      const builder = Object.values(MODELS).find((b) => b.weightsEnum === e)!;
      const n = builder({ generator: g }).numParameters();
      for (const w of e.members()) assert.equal(w.meta.num_params, n, `${w} num_params vs ${builder.name}()`);
    }
  });
});

test('Hugging Face repo ids map to the torchvision builder of the same depth', () => {
  assert.deepEqual(HF_RESNET.map((h) => [h.repo, h.torchvision]), [
    ['microsoft/resnet-18', 'resnet18'], ['microsoft/resnet-26', null], ['microsoft/resnet-34', 'resnet34'],
    ['microsoft/resnet-50', 'resnet50'], ['microsoft/resnet-101', 'resnet101'], ['microsoft/resnet-152', 'resnet152'],
  ]);
  for (const h of HF_RESNET) if (h.torchvision) assert.ok(listModels().includes(h.torchvision));
});

// ---- verify, get_weight, get_model_weights: accepted and rejected as torchvision -----------------------------------

test('verify accepts and rejects what torchvision\'s WeightsEnum.verify does, with its messages', async () => {
  const cases: [string, string | [string, string]][] = [
    ['ResNet50_Weights', 'IMAGENET1K_V2'], ['ResNet50_Weights', 'DEFAULT'], ['ResNet50_Weights', 'ResNet50_Weights.IMAGENET1K_V1'],
    ['ResNet50_Weights', 'ResNet50_Weights.DEFAULT'], ['ResNet18_Weights', 'DEFAULT'], ['ResNet50_Weights', ['ResNet50_Weights', 'IMAGENET1K_V2']],
    ['ResNet50_Weights', ['ResNet50_Weights', 'DEFAULT']], ['ResNet50_Weights', ['ResNet18_Weights', 'IMAGENET1K_V1']],
    ['Wide_ResNet50_2_Weights', ['ResNet50_Weights', 'IMAGENET1K_V2']], ['ResNet18_Weights', 'IMAGENET1K_V2'],
    ['ResNet50_Weights', 'ResNet18_Weights.IMAGENET1K_V1'], ['ResNet50_Weights', 'imagenet1k_v1'], ['ResNet50_Weights', ''],
  ];
  const answers = torchvisionSays(cases.map(([e, v]) => ['verify', e, v]));
  for (const [i, [enumName, v]] of cases.entries()) {
    const e = listWeightsEnums().find((x) => x.enumName === enumName)!;
    const value = Array.isArray(v) ? getWeight(`${v[0]}.${v[1]}`) : v;
    await sameAsTorchvision(`${enumName}.verify(${String(value)})`, answers[i], () => verifyWeights(e, value));
  }
  assert.equal(verifyWeights(ResNet50_Weights, null), null);
  assert.equal(verifyWeights(ResNet50_Weights, undefined), null);
  assert.equal(ResNet50_Weights.verify(ResNet50_Weights.IMAGENET1K_V2), ResNet50_Weights.IMAGENET1K_V2);
  assert.throws(() => ResNet50_Weights.verify(5), { name: 'TypeError', message: 'Invalid Weight class provided; expected ResNet50_Weights but received Number.' });
});

test('getWeight and getModelWeights answer as torchvision\'s get_weight and get_model_weights', async () => {
  const weightNames = ['ResNet50_Weights.IMAGENET1K_V2', 'ResNet50_Weights.DEFAULT', 'ResNeXt101_64X4D_Weights.DEFAULT', 'ResNet50_Weights',
    'Foo_Weights.IMAGENET1K_V1', 'ResNet50_Weights.IMAGENET1K_V3', 'a.b.c'];
  const models = ['resnet50', 'Wide_ResNet101_2', 'resnet26', 'vgg11x'];
  const answers = torchvisionSays([...weightNames.map((n) => ['get_weight', n]), ...models.map((n) => ['get_model_weights', n])]);
  for (const [i, n] of weightNames.entries()) await sameAsTorchvision(`getWeight(${n})`, answers[i], () => getWeight(n));
  for (const [i, n] of models.entries()) {
    await sameAsTorchvision(`getModelWeights(${n})`, answers[weightNames.length + i], () => getModelWeights(n).enumName);
  }
  assert.throws(() => getModelWeights(() => 0), /The WeightsEnum class for the specific method couldn't be retrieved/);
  assert.equal(getModelBuilder('ResNet50'), resnet50);
});

// ---- the builders with weights -----------------------------------------------------------------------------------

test('weights fix num_classes: another value is torchvision\'s _ovewrite_named_param error; no weights, no change', async () => {
  const calls = [['build', 'resnet18', { weights: 'DEFAULT', num_classes: 10 }], ['build', 'resnext50_32x4d', { weights: 'DEFAULT', num_classes: 5 }],
    ['build', 'resnet50', { weights: 'IMAGENET1K_V3' }], ['build', 'resnet50', { weights: 'ResNet18_Weights.IMAGENET1K_V1' }]];
  const [a, b, c, d] = torchvisionSays(calls);
  await sameAsTorchvision('resnet18 numClasses 10', a, () => resnet18({ weights: 'DEFAULT', numClasses: 10 }));
  await sameAsTorchvision('resnext50_32x4d numClasses 5', b, () => resnext50_32x4d({ weights: 'DEFAULT', numClasses: 5 }));
  await sameAsTorchvision('resnet50 unknown weights', c, () => resnet50({ weights: 'IMAGENET1K_V3' }));
  await sameAsTorchvision('resnet50 with resnet18 weights', d, () => resnet50({ weights: 'ResNet18_Weights.IMAGENET1K_V1' }));
  await assert.rejects(() => resnet50({ weights: ResNet18_Weights.IMAGENET1K_V1 }), { name: 'TypeError', message: 'Invalid Weight class provided; expected ResNet50_Weights but received ResNet18_Weights.' });
  await assert.rejects(() => getModel('resnet50', { weights: ResNet18_Weights.DEFAULT }), TypeError);
  // no weights: synchronous, as before
  const m = resnet18({ numClasses: 10, seed: 0, weights: null });
  assert.ok(m instanceof ResNet);
  assert.equal(m.fc.outFeatures, 10);
  assert.throws(() => resnext50_32x4d({ groups: 16 }), { message: "The parameter 'groups' expected value 32 but got 16 instead." });
});

test('legacy pretrained: true means IMAGENET1K_V1 (not DEFAULT), false means none; both warn with torchvision\'s text', async (t) => {
  const py = facts();
  for (const pe of Object.values(py.enums)) {
    assert.equal(legacyPretrainedWeights(pe.builder).fullName, pe.legacyTrue.weights, `${pe.builder}(pretrained=True)`);
    assert.equal(pe.legacyFalse.weights, null);
  }
  const warned: string[] = [];
  t.mock.method(process, 'emitWarning', (msg: string | Error) => void warned.push(String(msg)));
  // which weights the builder loads (the load itself is stubbed: no network, no cache)
  const asked: string[] = [];
  t.mock.method(Weights.prototype, 'getStateDict', function (this: Weights) {
    asked.push(String(this));
    return Promise.reject(new Error('stubbed load'));
  });
  for (const builder of ['resnet18', 'resnet50']) { // resnet50: DEFAULT is V2, pretrained still means V1
    const pe = Object.values(py.enums).find((e) => e.builder === builder)!;
    asked.length = warned.length = 0;
    await assert.rejects(fastInit(() => MODELS[builder]({ pretrained: true })), /stubbed load/); // built before the load
    assert.deepEqual(asked, [pe.legacyTrue.weights], `${builder}({ pretrained: true }) loads`);
    assert.deepEqual(warned, pe.legacyTrue.warnings, `${builder}({ pretrained: true }) warns`);
    asked.length = warned.length = 0;
    const plain = fastInit((generator) => MODELS[builder]({ pretrained: false, generator }));
    assert.ok(plain instanceof ResNet, `${builder}({ pretrained: false }) is synchronous`);
    assert.deepEqual(asked, []);
    assert.deepEqual(warned, pe.legacyFalse.warnings, `${builder}({ pretrained: false }) warns`);
  }
  // both: torchvision hands the stray \`pretrained\` on to ResNet.__init__, a TypeError; so do we, with a clearer message
  const [both] = torchvisionSays([['build', 'resnet18', { weights: null, pretrained: true }]]);
  assert.equal('error' in both && both.error, 'TypeError');
  assert.throws(() => resnet18({ weights: null, pretrained: false }), TypeError);
  await assert.rejects(async () => resnet18({ weights: 'DEFAULT', pretrained: true }), { name: 'TypeError', message: /got both 'weights' and the deprecated 'pretrained'/ });
});

// ---- end to end, offline -------------------------------------------------------------------------------------------

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

// A torchvision resnet18 with random weights (BN statistics too), saved by torch.save; an input and torch's logits.
const CHECKPOINT_PY = String.raw`
import sys, numpy as np, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18()
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
m.eval()
torch.save(m.state_dict(), sys.argv[1] + "/resnet18.pth")
x = torch.randn(2, 3, 64, 64)
with torch.no_grad(): y = m(x)
np.save(sys.argv[1] + "/x.npy", x.numpy()); np.save(sys.argv[1] + "/y.npy", y.numpy())
`;

test('end to end without the network: a cached checkpoint whose hash does not match is refused, a matching one loads strictly', async () => {
  const work = mkdtempSync(join(tmpdir(), 'resnet-ts-weights-'));
  temps.push(work);
  python(CHECKPOINT_PY, [work]);
  const home = join(work, 'torch-home');
  const ckpts = join(home, 'hub', 'checkpoints');
  mkdirSync(ckpts, { recursive: true });
  const saved = process.env.TORCH_HOME;
  process.env.TORCH_HOME = home;
  try {
    // 1. the file under the name of the real IMAGENET1K_V1 checkpoint: its sha256 is not f37072fd..., so it is refused
    const v1 = ResNet18_Weights.IMAGENET1K_V1;
    const v1File = join(ckpts, v1.url.split('/').pop()!);
    copyFileSync(join(work, 'resnet18.pth'), v1File);
    await assert.rejects(() => resnet18({ weights: v1, progress: false }), (err: Error) => {
      assert.match(err.message, /sha256/);
      assert.match(err.message, new RegExp(`starts with ${v1.hashPrefix}`));
      assert.ok(err.message.includes(v1File), err.message);
      return true;
    });
    // without checkHash (torch's default for get_state_dict), the cached file is taken as it is
    assert.deepEqual([...(await v1.getStateDict({ progress: false })).keys()], [...resnet18({ seed: 0 }).stateDict().keys()]);

    // 2. the same bytes under a name carrying their own hash prefix, through a Weights of ResNet18_Weights made here
    const digest = createHash('sha256').update(readFileSync(join(work, 'resnet18.pth'))).digest('hex');
    const local = new Weights({
      enumName: 'ResNet18_Weights', name: 'LOCAL_TEST',
      url: `https://download.pytorch.org/models/resnet18-${digest.slice(0, 8)}.pth`,
      transforms: v1.transforms, meta: v1.meta,
    });
    assert.equal(local.hashPrefix, digest.slice(0, 8));
    copyFileSync(join(work, 'resnet18.pth'), join(ckpts, `resnet18-${digest.slice(0, 8)}.pth`));
    const model = await resnet18({ weights: local, progress: false });
    assert.ok(model instanceof ResNet);
    assert.equal(model.fc.outFeatures, 1000);
    const y = model.eval().forward(readNpySync(join(work, 'x.npy')));
    assertClose(y, readNpySync(join(work, 'y.npy')), { atol: 1e-4, scale: 1e-4, what: 'resnet18 logits vs torch' });
    const viaRegistry = await getModel('resnet18', { weights: local, progress: false });
    assertClose(viaRegistry.eval().forward(readNpySync(join(work, 'x.npy'))), y, { atol: 0, what: 'getModel' });
  } finally {
    if (saved === undefined) delete process.env.TORCH_HOME;
    else process.env.TORCH_HOME = saved;
  }
});

test('a Weights is frozen, prints as torchvision\'s repr, and an enum exposes DEFAULT as the aliased member', () => {
  assert.ok(Object.isFrozen(ResNet50_Weights.IMAGENET1K_V2));
  assert.ok(ResNet50_Weights instanceof WeightsEnum);
  assert.equal(ResNet50_Weights.DEFAULT, ResNet50_Weights.IMAGENET1K_V2);
  assert.equal(ResNet18_Weights.DEFAULT, ResNet18_Weights.IMAGENET1K_V1);
  assert.equal(`${ResNet50_Weights.DEFAULT}`, 'ResNet50_Weights.IMAGENET1K_V2');
  assert.equal(ResNet50_Weights.IMAGENET1K_V2.fullName, 'ResNet50_Weights.IMAGENET1K_V2');
  assert.deepEqual(Object.keys(ResNet50_Weights), ['IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT']);
});

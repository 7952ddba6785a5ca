// Whole-model gradients in training mode against PyTorch: torchvision resnet18, resnet50 and resnext50_32x4d
// (num_classes 10, inputs 2x3x64x64; resnet18 also 2x3x40x40 for the js backend) and Hugging Face basic and
// bottleneck configs (hf_reference.py, 2x3x64x64) with cross entropy, plus HF's multi-label (BCE) and regression
// (MSE) losses. scripts/fixtures/make_grad.py saves each seeded model with torch.save (read here with readPthSync +
// extractStateDict), and one train-mode step: logits, loss, every parameter's .grad and every BatchNorm buffer after
// the step. The maker only keeps well-conditioned cases (PyTorch's own float32 and float64 gradients agree within
// 1e-4, and so do float64 runs under weight noise of the size of float32 rounding; see its header), so 1e-3 measures
// our arithmetic, not on which side of a ReLU kink rounding lands. resnet50 and resnext50_32x4d are deep enough that
// float32-accumulating kernels' rounding (native) moves some ReLU decision for every seed tried, so their forward runs
// on js (double accumulation, PyTorch's decisions) and their backward, which takes no decisions, on native.
//
// Rule, per tensor: max|ours - torch| <= 1e-3 * max|torch| for logits, loss and each parameter's gradient (the
// issue's "within 1e-3 relative"); running_mean / running_var within 1e-5 * max|torch| (they are batch means and
// variances of activations both sides compute in float32) and num_batches_tracked exactly. The worst ratio per
// model is printed. The big models run on native only (js would take minutes); js runs resnet18 at 32x32 and the HF
// models.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { extractStateDict, readPthSync } from '../../src/io/pth.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import * as F from '../../src/ops/index.js';
import { withBackend } from '../../src/backend/select.js';
import type { BackendName } from '../../src/backend/backend.js';
import type { Module } from '../../src/nn/module.js';
import { getModel } from '../../src/models/resnet.js';
import { ResNetConfig, ResNetForImageClassification } from '../../src/models/hf.js';
import { backends, compare, fixture } from '../helpers.js';

/** forward: the backend the forward runs on, when not the one under test (whose backward is checked). */
interface Case { name: string; tag: string; on: BackendName[]; forward?: BackendName }
const CASES: Case[] = [
  { name: 'resnet18', tag: 's64', on: ['native'] },
  { name: 'resnet18', tag: 's40', on: ['js', 'native'] },
  { name: 'resnet50', tag: 's64', on: ['native'], forward: 'js' },
  { name: 'resnext50_32x4d', tag: 's64', on: ['native'], forward: 'js' },
  { name: 'hf_basic', tag: 's64', on: ['js', 'native'] },
  { name: 'hf_bottleneck', tag: 's64', on: ['js', 'native'] },
  { name: 'hf_multilabel', tag: 's64', on: ['native'] },
  { name: 'hf_regression', tag: 's64', on: ['native'] },
];

/** max|a - b| / max|b| over one tensor. */
function relErr(a: Tensor, b: Tensor, what: string): number {
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  const r = compare(a, b);
  assert.ok(Number.isFinite(r.maxAbs), `${what}: NaN where torch has a number (or the reverse)`);
  return r.maxRef === 0 ? r.maxAbs : r.maxAbs / r.maxRef;
}

function trainStep(c: Case, backend: BackendName, t: TestContext): void {
  const io = readSafetensorsSync(fixture('grad', `${c.name}.grads.safetensors`));
  const get = (k: string): Tensor => {
    const v = io.tensors.get(`${c.tag}.${k}`);
    if (!v) throw new Error(`${c.name}.grads.safetensors has no ${c.tag}.${k}`);
    return v;
  };
  const sd = extractStateDict(readPthSync(fixture('grad', `${c.name}.pth`)).object, `${c.name}.pth`);
  const hf = c.name.startsWith('hf_');
  const model: Module = hf
    ? new ResNetForImageClassification(ResNetConfig.fromJSONString(io.metadata!.config, `${c.name} config`))
    : getModel(c.name, { numClasses: Number(io.metadata!.num_classes) });
  model.loadStateDict(sd);
  model.train();
  model.zeroGrad();
  const t0 = Date.now();
  let logits: Tensor, loss: Tensor;
  withBackend(c.forward ?? backend, () => {
    if (hf) ({ logits, loss } = (model as ResNetForImageClassification).forward(get('input'), { labels: get('labels') }) as { logits: Tensor; loss: Tensor });
    else {
      logits = model.forward(get('input')) as Tensor;
      loss = F.crossEntropy(logits, get('labels'));
    }
  });
  const t1 = Date.now();
  withBackend(backend, () => loss.backward());
  const ms = `forward ${t1 - t0} ms${c.forward ? ` (${c.forward})` : ''}, backward ${Date.now() - t1} ms`;

  // the worst relative error per kind, for the diagnostic
  const worst: Record<string, [number, string]> = { output: [0, ''], gradient: [0, ''], buffer: [0, ''] };
  const note = (r: number, what: string, bound: number, kind: string) => {
    assert.ok(r <= bound, `${c.name} ${what}: max|ours - torch| / max|torch| = ${r.toExponential(3)} > ${bound}`);
    if (r >= worst[kind][0]) worst[kind] = [r, what];
  };
  note(relErr(logits!.detach(), get('logits'), 'logits'), 'logits', 1e-3, 'output');
  note(relErr(loss!.detach(), get('loss'), 'loss'), 'loss', 1e-3, 'output');
  let n = 0;
  for (const [name, p] of model.namedParameters()) {
    assert.ok(p.grad, `${c.name}: parameter ${name} got no gradient`);
    note(relErr(p.grad!, get(`grad.${name}`), name), name, 1e-3, 'gradient');
    n++;
  }
  assert.equal(n, [...io.tensors.keys()].filter((k) => k.startsWith(`${c.tag}.grad.`)).length, 'every parameter compared');
  let buffers = 0;
  for (const [name, b] of model.namedBuffers()) {
    const ref = get(`after.${name}`);
    if (name.endsWith('num_batches_tracked')) assert.equal(b.item(), ref.item(), `${c.name} ${name}`);
    else note(relErr(b, ref, name), name, 1e-5, 'buffer');
    buffers++;
  }
  assert.ok(buffers > 0, 'BN buffers compared');
  const fmt = (k: string) => `${worst[k][0].toExponential(2)} (${worst[k][1]})`;
  t.diagnostic(`${c.name} ${c.tag}: ${n} gradients, ${buffers} buffers; ${ms}; worst relative error: output ${fmt('output')}, gradient ${fmt('gradient')}, buffer ${fmt('buffer')}`);
}

for (const b of backends()) {
  for (const c of CASES.filter((k) => k.on.includes(b.name))) {
    test(`${c.name} ${c.tag} train-mode gradients match PyTorch [${b.name}]`, { skip: b.skip }, (t) => trainStep(c, b.name, t));
  }
}

// SGD and AdamW against torch.optim (PyTorch 1.13; scripts/fixtures/make_optim.py): every option combination that
// matters, two parameter groups with different options, a frozen parameter and one that gets no grad for the first
// steps. Parameters must be within 1e-5 relative (+1e-7 absolute) of torch's after every step, and the state dict
// (state by index, in torch's order; param_groups with torch's keys and values) equal to torch's. State dicts cross
// over both ways: torch.save'd ones load into ours and continue identically, and ours (written with writePthSync)
// load into torch's optimizers and continue identically (checked by tests/train/optim_interop.py).
// Tolerance: torch rounds each intermediate to float32 (with FMAs); the native backend's step does the same in its
// own order, the js backend's computes each element in double and rounds once: a few float32 ulps per step.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { readPthSync } from '../../src/io/pth.js';
import { writePthSync } from '../../src/io/pth-write.js';
import { Parameter } from '../../src/nn/module.js';
import { AdamW, SGD, type Optimizer } from '../../src/optim/index.js';
import { fromArray, zeros } from '../../src/tensor/creation.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { ROOT, assertClose, fixture, randArray } from '../helpers.js';

interface Case { name: string; optimizer: 'SGD' | 'AdamW'; group0: Record<string, unknown>; group1: Record<string, unknown> }
interface Spec { steps: number; save_at: number; shapes: number[][]; frozen: number; late: number; cases: Case[] }
interface SdJson { state: Record<string, Record<string, unknown>>; state_order: number[]; param_groups: Record<string, unknown>[] }

const spec = JSON.parse(readFileSync(fixture('optim', 'cases.json'), 'utf8')) as Spec;
const TOL = { rtol: 1e-5, atol: 1e-7 };

function camel(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]));
}

function makeOptimizer(c: Case, params: Parameter[]): Optimizer {
  const groups = [{ params: params.slice(0, 2) }, { params: params.slice(2), ...c.group1 }]; // group 1 in torch's keys
  return c.optimizer === 'SGD' ? new SGD(groups, camel(c.group0)) : new AdamW(groups, camel(c.group0));
}

function params(from: (i: number) => Tensor): Parameter[] {
  return spec.shapes.map((_, i) => new Parameter(from(i).clone(), i !== spec.frozen));
}

function applyStep(opt: Optimizer, ps: Parameter[], f: ReturnType<typeof readSafetensorsSync>, s: number): void {
  opt.zeroGrad();
  ps.forEach((p, i) => {
    const g = f.tensors.get(`grad.${s}.${i}`);
    if (g) p.grad = g;
  });
  opt.step();
}

function checkStateDict(opt: Optimizer, ref: SdJson, f: ReturnType<typeof readSafetensorsSync>, what: string): void {
  const sd = opt.stateDict();
  assert.deepEqual([...sd.state.keys()], ref.state_order, `${what}: state indices in torch's order`);
  for (const [idx, st] of sd.state) {
    const want = ref.state[String(idx)];
    assert.deepEqual(Object.keys(st), Object.keys(want), `${what}: state[${idx}] keys`);
    for (const [k, v] of Object.entries(st)) {
      const w = want[k];
      if (w === null) {
        assert.equal(v, null, `${what}: state[${idx}].${k} is None in torch`);
        continue;
      }
      const t = f.tensors.get((w as { tensor: string }).tensor)!;
      assert.ok(v instanceof Tensor, `${what}: state[${idx}].${k} is a tensor`);
      assert.equal(v.dtype, t.dtype, `${what}: state[${idx}].${k} dtype`);
      assert.deepEqual([...v.shape], [...t.shape], `${what}: state[${idx}].${k} shape`);
      assertClose(v, t, { ...TOL, what: `${what}: state[${idx}].${k}` });
    }
  }
  assert.deepEqual(sd.param_groups.map((g) => Object.keys(g).sort()), ref.param_groups.map((g) => Object.keys(g).sort()), `${what}: param_groups keys`);
  assert.deepEqual(sd.param_groups, ref.param_groups, `${what}: param_groups`);
}

for (const c of spec.cases) {
  test(`${c.name}: ${spec.steps} steps equal torch's, state dict equal, torch's state dict loads and continues`, () => {
    const f = readSafetensorsSync(fixture('optim', `${c.name}.safetensors`));
    const ps = params((i) => f.tensors.get(`init.${i}`)!);
    const opt = makeOptimizer(c, ps);
    for (let s = 1; s <= spec.steps; s++) {
      const versions = ps.map((p) => p.version);
      applyStep(opt, ps, f, s);
      ps.forEach((p, i) => {
        assertClose(p, f.tensors.get(`after.${s}.${i}`)!, { ...TOL, what: `${c.name} p${i} after step ${s}` });
        const stepped = f.tensors.has(`grad.${s}.${i}`);
        assert.equal(p.version > versions[i], stepped, `${c.name} p${i} step ${s}: version bumped iff updated`);
      });
      if (s === spec.save_at) checkStateDict(opt, JSON.parse(f.metadata!.sd1) as SdJson, f, `${c.name} after step ${s}`);
    }
    checkStateDict(opt, JSON.parse(f.metadata!.sd2) as SdJson, f, `${c.name} after step ${spec.steps}`);
    assert.deepEqual(ps[spec.frozen].toArray(), f.tensors.get(`init.${spec.frozen}`)!.toArray(), 'frozen parameter unchanged');

    // torch.save(opt.state_dict()) at save_at -> ours, then the remaining steps
    const ps2 = params((i) => f.tensors.get(`after.${spec.save_at}.${i}`)!);
    const opt2 = makeOptimizer(c, ps2);
    const file = readPthSync(fixture('optim', `${c.name}.pth`));
    opt2.loadStateDict(file.object);
    checkStateDict(opt2, JSON.parse(f.metadata!.sd1) as SdJson, f, `${c.name} loaded from torch`);
    for (let s = spec.save_at + 1; s <= spec.steps; s++) {
      applyStep(opt2, ps2, f, s);
      ps2.forEach((p, i) => assertClose(p, f.tensors.get(`after.${s}.${i}`)!, { ...TOL, what: `${c.name} (torch state) p${i} after step ${s}` }));
    }
  });
}

test('our state dicts, written with writePthSync, load into torch\'s optimizers and continue identically', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'optim-sd-'));
  try {
    for (const c of spec.cases) {
      const f = readSafetensorsSync(fixture('optim', `${c.name}.safetensors`));
      const ps = params((i) => f.tensors.get(`init.${i}`)!);
      const opt = makeOptimizer(c, ps);
      for (let s = 1; s <= spec.save_at; s++) applyStep(opt, ps, f, s);
      writePthSync(join(dir, `${c.name}.pth`), opt.stateDict());
      // and our own file reads back into ours
      const again = makeOptimizer(c, params((i) => f.tensors.get(`after.${spec.save_at}.${i}`)!));
      again.loadStateDict(readPthSync(join(dir, `${c.name}.pth`)).object);
      checkStateDict(again, JSON.parse(f.metadata!.sd1) as SdJson, f, `${c.name} round trip through our .pth`);
    }
    const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'train', 'optim_interop.py'), join(ROOT, 'tests', 'fixtures', 'gen', 'optim'), dir], {
      encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which this test needs: ${r.error?.message}`);
    assert.equal(r.status, 0, `optim_interop.py failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^OK ${spec.cases.length}$`, 'm'), r.stdout);
    t.diagnostic(r.stdout.split('\n').filter((l) => l.includes('read with')).slice(0, 2).join('; '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('zeroGrad, skipped parameters, option checks and state-dict errors', () => {
  const p = new Parameter(fromArray([1, 2, 3]));
  const q = new Parameter(fromArray([4, 5]));
  const opt = new SGD([p, q], { lr: 0.5, momentum: 0.9 });
  p.grad = fromArray([1, 1, 1]);
  opt.zeroGrad(false);
  assert.deepEqual(p.grad.toArray(), [0, 0, 0], 'zeroGrad(false) fills with zeros');
  assert.equal(q.grad, null);
  opt.step(); // a zero grad is a step (momentum buffer created); a null grad is skipped
  assert.deepEqual([...opt.stateDict().state.keys()], [0]);
  opt.zeroGrad();
  assert.equal(p.grad, null, 'zeroGrad() sets grads to null');
  // a frozen parameter is skipped even with a stale grad
  const frozen = new Parameter(fromArray([1, 2]), false);
  frozen.grad = fromArray([1, 1]);
  new SGD([frozen], { lr: 1 }).step();
  assert.deepEqual(frozen.toArray(), [1, 2]);

  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/);
  assert.throws(() => new SGD([p], { lr: -1 }), /Invalid lr value/);
  assert.throws(() => new SGD([p]), /required optimization parameter lr/);
  assert.throws(() => new AdamW([p], { betas: [1, 0.999] }), /beta parameter at index 0/);
  assert.throws(() => new SGD([{ params: [p] }, { params: [p, q] }], { lr: 1 }), /more than one parameter group/);
  assert.throws(() => new SGD([], { lr: 1 }), /empty parameter list/);
  assert.throws(() => new SGD([new Tensor(new Int32Array(2), [2])], { lr: 1 }), /floating point/);
  assert.throws(() => opt.loadStateDict({ state: new Map(), param_groups: [] }), /0 parameter groups but this optimizer has 1/);
  assert.throws(() => opt.loadStateDict({ state: new Map(), param_groups: [{ lr: 1, params: [0] }] }), /has 1 params but this optimizer's group has 2/);
  assert.throws(() => opt.loadStateDict({ state: new Map([[0, { momentum_buffer: zeros([2]) }]]), param_groups: [{ lr: 1, params: [0, 1] }] }),
    /Expected shape \[3\] for SGD.loadStateDict: state\[0\].momentum_buffer/);
  assert.throws(() => opt.loadStateDict({ state: new Map([[7, {}]]), param_groups: [{ lr: 1, params: [0, 1] }] }), /parameter 7, which no parameter group lists/);
  // a failed load leaves the optimizer as it was
  assert.equal(opt.paramGroups[0].lr, 0.5);
  // camelCase group options are stored under torch's keys
  const o2 = new SGD([{ params: [p], weightDecay: 0.1 }], { lr: 1 });
  assert.equal(o2.paramGroups[0].weight_decay, 0.1);
});

// LR schedules against torch.optim.lr_scheduler (PyTorch 1.13; scripts/fixtures/make_optim.py writes lr.json):
// for each schedule, two parameter groups with different lrs, the lrs (and SGD's momentum or AdamW's beta1, which
// OneCycleLR cycles) at construction and after each of 30 steps, the final param_groups options (initial_lr,
// max_lr, ...) and the scheduler's state_dict. Both sides compute in double with the same formulas in the same
// order; only Math.cos/Math.pow may differ from C's by an ulp, hence a 1e-12 relative tolerance.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Parameter } from '../../src/nn/module.js';
import {
  AdamW, CosineAnnealingLR, LinearLR, MultiStepLR, OneCycleLR, SequentialLR, SGD, StepLR, type Optimizer,
} from '../../src/optim/index.js';
import { zeros } from '../../src/tensor/creation.js';
import { fixture } from '../helpers.js';

interface Snap { lr: number[]; group_lr: number[]; momentum: number[] }
interface Ref { seq: Snap[]; state_dict: Record<string, unknown>; param_groups: Record<string, unknown>[] }

const refs = JSON.parse(readFileSync(fixture('optim', 'lr.json'), 'utf8')) as Record<string, Ref>;

const sgd = () => new SGD([{ params: [new Parameter(zeros([2]))] }, { params: [new Parameter(zeros([2]))], lr: 0.01 }], { lr: 0.1, momentum: 0.9 });
const adamw = () => new AdamW([{ params: [new Parameter(zeros([2]))] }, { params: [new Parameter(zeros([2]))], lr: 0.01 }], { lr: 0.1 });

type Sched = { step(): void; getLastLr(): number[]; stateDict(): Record<string, unknown> };
const CONFIGS: Record<string, [() => Optimizer, (o: Optimizer) => Sched]> = {
  step: [sgd, (o) => new StepLR(o, { stepSize: 7, gamma: 0.5 })],
  multistep: [sgd, (o) => new MultiStepLR(o, { milestones: [5, 12, 12, 20], gamma: 0.3 })],
  cosine: [sgd, (o) => new CosineAnnealingLR(o, { tMax: 10, etaMin: 1e-4 })],
  cosine_long: [adamw, (o) => new CosineAnnealingLR(o, { tMax: 30 })],
  linear: [sgd, (o) => new LinearLR(o, { startFactor: 0.1, endFactor: 1.0, totalIters: 8 })],
  linear_down: [adamw, (o) => new LinearLR(o, { startFactor: 1.0, endFactor: 0.25, totalIters: 12 })],
  warmup_cosine: [sgd, (o) => new SequentialLR(o, { schedulers: [new LinearLR(o, { startFactor: 0.1, totalIters: 5 }), new CosineAnnealingLR(o, { tMax: 25 })], milestones: [5] })],
  warmup_step_cosine: [adamw, (o) => new SequentialLR(o, {
    schedulers: [new LinearLR(o, { startFactor: 0.2, totalIters: 4 }), new StepLR(o, { stepSize: 3, gamma: 0.5 }), new CosineAnnealingLR(o, { tMax: 14, etaMin: 1e-3 })],
    milestones: [4, 16],
  })],
  onecycle_sgd: [sgd, (o) => new OneCycleLR(o, { maxLr: [0.5, 0.05], totalSteps: 30 })],
  onecycle_adamw_linear_3phase: [adamw, (o) => new OneCycleLR(o, {
    maxLr: 0.2, totalSteps: 30, pctStart: 0.25, annealStrategy: 'linear', threePhase: true, divFactor: 10, finalDivFactor: 100, baseMomentum: 0.8, maxMomentum: [0.9, 0.95],
  })],
  onecycle_epochs_nomomentum: [sgd, (o) => new OneCycleLR(o, { maxLr: 0.3, epochs: 3, stepsPerEpoch: 10, pctStart: 0.4, cycleMomentum: false })],
};

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.abs(b) + 1e-300, `${what}: ${a} vs torch ${b}`);
}

/** Deep equality with numbers compared to 1e-12 relative; torch's dict keys become strings in JSON. */
function sameValue(a: unknown, b: unknown, what: string): void {
  if (typeof b === 'number') {
    assert.equal(typeof a, 'number', `${what}: a number`);
    return close(a as number, b, what);
  }
  if (Array.isArray(b)) {
    assert.ok(Array.isArray(a) && a.length === b.length, `${what}: a list of ${b.length}, got ${JSON.stringify(a)}`);
    return b.forEach((x, i) => sameValue((a as unknown[])[i], x, `${what}[${i}]`));
  }
  if (b !== null && typeof b === 'object') {
    const ao = a as Record<string, unknown>;
    assert.deepEqual(Object.keys(ao).sort(), Object.keys(b).sort(), `${what}: keys`);
    for (const [k, v] of Object.entries(b)) sameValue(ao[k], v, `${what}.${k}`);
    return;
  }
  assert.equal(a, b, what);
}

const momentumOf = (o: Optimizer) => o.paramGroups.map((g) => ('betas' in g ? (g.betas as number[])[0] : g.momentum as number));

for (const [name, [makeOpt, makeSched]] of Object.entries(CONFIGS)) {
  test(`${name}: lrs and momentum over 30 steps, param_groups and state_dict equal torch's`, () => {
    const ref = refs[name];
    assert.ok(ref, `lr.json has no schedule ${name}`);
    const opt = makeOpt();
    const s = makeSched(opt);
    ref.seq.forEach((r, k) => {
      if (k > 0) {
        opt.step();
        s.step();
      }
      r.lr.forEach((lr, i) => close(s.getLastLr()[i], lr, `${name} step ${k} getLastLr()[${i}]`));
      r.group_lr.forEach((lr, i) => close(opt.paramGroups[i].lr, lr, `${name} step ${k} group ${i} lr`));
      r.momentum.forEach((m, i) => close(momentumOf(opt)[i], m, `${name} step ${k} group ${i} momentum`));
    });
    const groups = opt.stateDict().param_groups.map((g) => Object.fromEntries(Object.entries(g).filter(([k]) => k !== 'params')));
    sameValue(groups, ref.param_groups, `${name} param_groups`);
    const sd = s.stateDict();
    delete sd._anneal_func_type; // torch 1.13 stores the bound function instead
    sameValue(sd, ref.state_dict, `${name} state_dict`);
  });
}

test('a scheduler resumed from its state dict continues the same sequence', () => {
  for (const name of ['warmup_cosine', 'onecycle_sgd', 'multistep']) {
    const [makeOpt, makeSched] = CONFIGS[name];
    const ref = refs[name];
    const opt = makeOpt();
    const s = makeSched(opt) as Sched & { loadStateDict(sd: Record<string, unknown>): void };
    for (let k = 0; k < 12; k++) {
      opt.step();
      s.step();
    }
    const saved = JSON.parse(JSON.stringify({ opt: opt.stateDict().param_groups, sched: s.stateDict() })) as { opt: Record<string, unknown>[]; sched: Record<string, unknown> };
    const opt2 = makeOpt();
    const s2 = makeSched(opt2) as typeof s;
    opt2.loadStateDict({ state: new Map(), param_groups: saved.opt.map((g) => ({ ...g, params: g.params })) });
    s2.loadStateDict(saved.sched);
    for (let k = 13; k < ref.seq.length; k++) {
      opt2.step();
      s2.step();
      ref.seq[k].lr.forEach((lr, i) => close(s2.getLastLr()[i], lr, `${name} resumed, step ${k}`));
    }
  }
});

test('schedule errors', () => {
  assert.throws(() => { const o = sgd(); const s = new OneCycleLR(o, { maxLr: 1, totalSteps: 3 }); for (let i = 0; i < 4; i++) s.step(); }, /Tried to step 5 times. The specified number of total steps is 3/);
  assert.throws(() => new OneCycleLR(sgd(), { maxLr: [1, 2, 3], totalSteps: 3 }), /expected 2 values for maxLr, got 3/);
  assert.throws(() => new OneCycleLR(sgd(), { maxLr: 1 }), /either totalSteps OR \(epochs AND stepsPerEpoch\)/);
  assert.throws(() => new StepLR(sgd(), { stepSize: 1, lastEpoch: 4 }), /param 'initial_lr' is not specified in param_groups\[0\]/);
  assert.throws(() => new LinearLR(sgd(), { startFactor: 2 }), /Starting multiplicative factor/);
  const o = sgd();
  assert.throws(() => new SequentialLR(o, { schedulers: [new StepLR(o, { stepSize: 2 }), new StepLR(sgd(), { stepSize: 2 })], milestones: [3] }), /same optimizer/);
  assert.throws(() => new SequentialLR(o, { schedulers: [new StepLR(o, { stepSize: 2 })], milestones: [3] }), /one more than the number of milestone points/);
});

// Learning-rate schedules, as torch.optim.lr_scheduler in PyTorch 1.13, step for step: StepLR, MultiStepLR,
// LinearLR (warm-up), CosineAnnealingLR, OneCycleLR and SequentialLR (e.g. warm-up then cosine).
//
// The machinery is torch's, because its numbers depend on it: construction sets each group's initial_lr and takes
// one step (last_epoch -1 -> 0); step() advances last_epoch and asks getLr() for the new lrs, which (as in torch)
// is the *recursive* (chainable) form, computed from the groups' current lr; step(epoch) uses the closed form
// where the schedule has one (SequentialLR does this at each milestone, as torch 1.13 does). Call
// optimizer.step() before scheduler.step(), once per epoch or per batch as the schedule was sized.
//
// stateDict() holds what torch's state_dict() holds (every field but the optimizer, under torch's names), except
// that OneCycleLR's bound anneal_func is replaced by the name of the strategy (`_anneal_func_type`, as later torch).

import type { Optimizer, ParamGroup } from './optimizer.js';

export type SchedulerState = Record<string, unknown>;

export abstract class LRScheduler {
  readonly optimizer: Optimizer;
  baseLrs: number[] = [];
  lastEpoch = -1;
  /** torch's _step_count: 1 after construction. */
  stepCount = 0;
  protected lastLr: number[] = [];

  constructor(optimizer: Optimizer) {
    this.optimizer = optimizer;
  }

  /** torch's _LRScheduler.__init__ body: subclasses call it at the end of their constructors (fields set first). */
  protected start(lastEpoch: number): void {
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new RangeError(`Expected an integer >= -1 for lastEpoch but received ${lastEpoch}`);
    const groups = this.optimizer.paramGroups;
    if (lastEpoch === -1) {
      for (const g of groups) if (!('initial_lr' in g)) g.initial_lr = g.lr;
    } else {
      groups.forEach((g, i) => {
        if (!('initial_lr' in g)) throw new RangeError(`param 'initial_lr' is not specified in param_groups[${i}] when resuming an optimizer`);
      });
    }
    this.baseLrs = groups.map((g) => g.initial_lr as number);
    this.lastEpoch = lastEpoch;
    this.initialStep();
  }

  initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** Advance one epoch (or batch); with `epoch`, jump there using the closed form when the schedule has one. */
  step(epoch?: number): void {
    this.stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr() ?? this.getLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lrs the last step set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** The next lrs from the groups' current ones (torch's chainable get_lr). */
  protected abstract getLr(): number[];

  /** The lrs at lastEpoch from baseLrs alone, or null when the schedule has no closed form. */
  protected closedFormLr(): number[] | null {
    return null;
  }

  protected get groups(): ParamGroup[] {
    return this.optimizer.paramGroups;
  }

  /** The schedule's own fields, in torch's __dict__ order (before the base fields). */
  protected abstract ownState(): SchedulerState;

  stateDict(): SchedulerState {
    return {
      ...this.ownState(), base_lrs: [...this.baseLrs], last_epoch: this.lastEpoch, verbose: false,
      _step_count: this.stepCount, _get_lr_called_within_step: false, _last_lr: [...this.lastLr],
    };
  }

  loadStateDict(sd: SchedulerState | Map<string, unknown>): void {
    const s = sd instanceof Map ? Object.fromEntries(sd) : sd;
    const nums = (k: string): number[] => {
      const v = s[k];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new TypeError(`${this.constructor.name}.loadStateDict: expected a list of numbers for ${k}`);
      return [...v] as number[];
    };
    const int = (k: string): number => {
      if (!Number.isInteger(s[k])) throw new TypeError(`${this.constructor.name}.loadStateDict: expected an integer for ${k} but received ${String(s[k])}`);
      return s[k] as number;
    };
    this.baseLrs = nums('base_lrs');
    this.lastEpoch = int('last_epoch');
    this.stepCount = int('_step_count');
    this.lastLr = nums('_last_lr');
    this.loadOwnState(s);
  }

  /** Restore the fields ownState() wrote. */
  protected loadOwnState(_s: SchedulerState): void {}
}

/** Python's % (the result has the divisor's sign). */
function pymod(a: number, b: number): number {
  return ((a % b) + b) % b;
}

/** lr * gamma every stepSize epochs. */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;

  constructor(optimizer: Optimizer, o: { stepSize: number; gamma?: number; lastEpoch?: number }) {
    super(optimizer);
    if (!Number.isInteger(o.stepSize) || o.stepSize <= 0) throw new RangeError(`Expected a positive integer for stepSize but received ${o.stepSize}`);
    this.stepSize = o.stepSize;
    this.gamma = o.gamma ?? 0.1;
    this.start(o.lastEpoch ?? -1);
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }

  protected ownState(): SchedulerState {
    return { step_size: this.stepSize, gamma: this.gamma };
  }

  protected override loadOwnState(s: SchedulerState): void {
    this.stepSize = s.step_size as number;
    this.gamma = s.gamma as number;
  }
}

/** lr * gamma at each milestone (a milestone listed twice multiplies by gamma twice). */
export class MultiStepLR extends LRScheduler {
  /** Milestone -> how many times it was listed (torch's Counter). */
  milestones: Map<number, number>;
  gamma: number;

  constructor(optimizer: Optimizer, o: { milestones: readonly number[]; gamma?: number; lastEpoch?: number }) {
    super(optimizer);
    if (!Array.isArray(o.milestones) || o.milestones.some((m) => !Number.isInteger(m))) throw new TypeError(`Expected a list of integer epochs for milestones but received ${String(o.milestones)}`);
    this.milestones = new Map();
    for (const m of o.milestones) this.milestones.set(m, (this.milestones.get(m) ?? 0) + 1);
    this.gamma = o.gamma ?? 0.1;
    this.start(o.lastEpoch ?? -1);
  }

  protected getLr(): number[] {
    const k = this.milestones.get(this.lastEpoch);
    if (k === undefined) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * this.gamma ** k);
  }

  protected override closedFormLr(): number[] {
    let passed = 0;
    for (const [m, k] of this.milestones) if (m <= this.lastEpoch) passed += k;
    return this.baseLrs.map((b) => b * this.gamma ** passed);
  }

  protected ownState(): SchedulerState {
    return { milestones: Object.fromEntries(this.milestones), gamma: this.gamma };
  }

  protected override loadOwnState(s: SchedulerState): void {
    const m = s.milestones instanceof Map ? s.milestones : new Map(Object.entries(s.milestones as object));
    this.milestones = new Map([...m].map(([k, v]) => [Number(k), Number(v)]));
    this.gamma = s.gamma as number;
  }
}

/** Linear warm-up: the lr factor goes from startFactor to endFactor over totalIters steps, then stays. */
export class LinearLR extends LRScheduler {
  startFactor: number;
  endFactor: number;
  totalIters: number;

  constructor(optimizer: Optimizer, o: { startFactor?: number; endFactor?: number; totalIters?: number; lastEpoch?: number } = {}) {
    super(optimizer);
    this.startFactor = o.startFactor ?? 1 / 3;
    this.endFactor = o.endFactor ?? 1;
    this.totalIters = o.totalIters ?? 5;
    if (!(this.startFactor >= 0 && this.startFactor <= 1)) throw new RangeError('Starting multiplicative factor expected to be between 0 and 1.');
    if (!(this.endFactor >= 0 && this.endFactor <= 1)) throw new RangeError('Ending multiplicative factor expected to be between 0 and 1.');
    if (!Number.isInteger(this.totalIters) || this.totalIters <= 0) throw new RangeError(`Expected a positive integer for totalIters but received ${this.totalIters}`);
    this.start(o.lastEpoch ?? -1);
  }

  protected getLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n, lastEpoch: t } = this;
    if (t === 0) return this.groups.map((g) => g.lr * s);
    if (t > n) return this.groups.map((g) => g.lr);
    return this.groups.map((g) => g.lr * (1 + (e - s) / (n * s + (t - 1) * (e - s))));
  }

  protected override closedFormLr(): number[] {
    const { startFactor: s, endFactor: e, totalIters: n } = this;
    return this.baseLrs.map((b) => b * (s + ((e - s) * Math.min(n, this.lastEpoch)) / n));
  }

  protected ownState(): SchedulerState {
    return { start_factor: this.startFactor, end_factor: this.endFactor, total_iters: this.totalIters };
  }

  protected override loadOwnState(s: SchedulerState): void {
    this.startFactor = s.start_factor as number;
    this.endFactor = s.end_factor as number;
    this.totalIters = s.total_iters as number;
  }
}

/** Cosine from the base lr down to etaMin over tMax steps (and back up after, as torch's recursive form does). */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer, o: { tMax: number; etaMin?: number; lastEpoch?: number }) {
    super(optimizer);
    if (!(o.tMax > 0)) throw new RangeError(`Expected a positive number for tMax but received ${o.tMax}`);
    this.tMax = o.tMax;
    this.etaMin = o.etaMin ?? 0;
    this.start(o.lastEpoch ?? -1);
  }

  protected getLr(): number[] {
    const { tMax: T, etaMin: eta, lastEpoch: t } = this;
    if (t === 0) return this.groups.map((g) => g.lr);
    if (this.stepCount === 1 && t > 0) return this.baseLrs.map((b) => eta + ((b - eta) * (1 + Math.cos((t * Math.PI) / T))) / 2);
    if (pymod(t - 1 - T, 2 * T) === 0) return this.groups.map((g, i) => g.lr + ((this.baseLrs[i] - eta) * (1 - Math.cos(Math.PI / T))) / 2);
    return this.groups.map((g) => ((1 + Math.cos((Math.PI * t) / T)) / (1 + Math.cos((Math.PI * (t - 1)) / T))) * (g.lr - eta) + eta);
  }

  protected override closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }

  protected ownState(): SchedulerState {
    return { T_max: this.tMax, eta_min: this.etaMin };
  }

  protected override loadOwnState(s: SchedulerState): void {
    this.tMax = s.T_max as number;
    this.etaMin = s.eta_min as number;
  }
}

export interface OneCycleLROptions {
  /** Peak lr, one number or one per group. */
  maxLr: number | readonly number[];
  /** Steps in the cycle; or give epochs and stepsPerEpoch. */
  totalSteps?: number;
  epochs?: number;
  stepsPerEpoch?: number;
  pctStart?: number;
  annealStrategy?: 'cos' | 'linear';
  cycleMomentum?: boolean;
  baseMomentum?: number | readonly number[];
  maxMomentum?: number | readonly number[];
  divFactor?: number;
  finalDivFactor?: number;
  threePhase?: boolean;
  lastEpoch?: number;
}

interface Phase { end_step: number; start_lr: string; end_lr: string; start_momentum: string; end_momentum: string }

/**
 * The 1cycle policy (Smith & Topin): lr from maxLr/divFactor up to maxLr over pctStart of the steps, then down to
 * initial/finalDivFactor (three-phase: back to initial first, then down); momentum (SGD's momentum or AdamW's
 * beta1) cycles the other way between maxMomentum and baseMomentum. Step it once per batch.
 */
export class OneCycleLR extends LRScheduler {
  totalSteps: number;
  schedulePhases: Phase[];
  annealStrategy: 'cos' | 'linear';
  cycleMomentum: boolean;
  useBeta1 = false;

  constructor(optimizer: Optimizer, o: OneCycleLROptions) {
    super(optimizer);
    const posInt = (v: unknown, name: string) => {
      if (!Number.isInteger(v) || (v as number) <= 0) throw new RangeError(`Expected positive integer ${name}, but got ${String(v)}`);
      return v as number;
    };
    if (o.totalSteps === undefined && o.epochs === undefined && o.stepsPerEpoch === undefined) throw new RangeError('You must define either totalSteps OR (epochs AND stepsPerEpoch)');
    this.totalSteps = o.totalSteps !== undefined ? posInt(o.totalSteps, 'totalSteps') : posInt(o.epochs, 'epochs') * posInt(o.stepsPerEpoch, 'stepsPerEpoch');
    const pct = o.pctStart ?? 0.3;
    if (!(pct >= 0 && pct <= 1)) throw new RangeError(`Expected a number between 0 and 1 for pctStart, but got ${pct}`);
    const n = this.totalSteps;
    const phase = (end: number, lr0: string, lr1: string, m0: string, m1: string): Phase => ({ end_step: end, start_lr: lr0, end_lr: lr1, start_momentum: m0, end_momentum: m1 });
    this.schedulePhases = o.threePhase
      ? [phase(pct * n - 1, 'initial_lr', 'max_lr', 'max_momentum', 'base_momentum'),
        phase(2 * pct * n - 2, 'max_lr', 'initial_lr', 'base_momentum', 'max_momentum'),
        phase(n - 1, 'initial_lr', 'min_lr', 'max_momentum', 'max_momentum')]
      : [phase(pct * n - 1, 'initial_lr', 'max_lr', 'max_momentum', 'base_momentum'),
        phase(n - 1, 'max_lr', 'min_lr', 'base_momentum', 'max_momentum')];
    this.annealStrategy = o.annealStrategy ?? 'cos';
    if (this.annealStrategy !== 'cos' && this.annealStrategy !== 'linear') throw new RangeError(`annealStrategy must be one of 'cos' or 'linear', instead got ${String(this.annealStrategy)}`);
    const lastEpoch = o.lastEpoch ?? -1;
    const divFactor = o.divFactor ?? 25, finalDivFactor = o.finalDivFactor ?? 1e4;
    const maxLrs = this.perGroup('maxLr', o.maxLr);
    if (lastEpoch === -1) {
      this.groups.forEach((g, i) => {
        g.initial_lr = maxLrs[i] / divFactor;
        g.max_lr = maxLrs[i];
        g.min_lr = (g.initial_lr as number) / finalDivFactor;
      });
    }
    this.cycleMomentum = o.cycleMomentum ?? true;
    if (this.cycleMomentum) {
      const d = this.optimizer.defaults;
      if (!('momentum' in d) && !('betas' in d)) throw new RangeError('optimizer must support momentum with `cycleMomentum` option enabled');
      this.useBeta1 = 'betas' in d;
      const maxM = this.perGroup('maxMomentum', o.maxMomentum ?? 0.95);
      const baseM = this.perGroup('baseMomentum', o.baseMomentum ?? 0.85);
      if (lastEpoch === -1) {
        this.groups.forEach((g, i) => {
          this.setMomentum(g, maxM[i]);
          g.max_momentum = maxM[i];
          g.base_momentum = baseM[i];
        });
      }
    }
    this.start(lastEpoch);
  }

  private perGroup(name: string, v: number | readonly number[]): number[] {
    if (typeof v === 'number') return this.groups.map(() => v);
    if (!Array.isArray(v) || v.length !== this.groups.length) throw new RangeError(`expected ${this.groups.length} values for ${name}, got ${Array.isArray(v) ? v.length : String(v)}`);
    return [...v];
  }

  private setMomentum(g: ParamGroup, m: number): void {
    if (this.useBeta1) g.betas = [m, ...(g.betas as number[]).slice(1)];
    else g.momentum = m;
  }

  private anneal(start: number, end: number, pct: number): number {
    if (this.annealStrategy === 'linear') return (end - start) * pct + start;
    return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  }

  protected getLr(): number[] {
    const t = this.lastEpoch;
    if (t > this.totalSteps) throw new RangeError(`Tried to step ${t + 1} times. The specified number of total steps is ${this.totalSteps}`);
    return this.groups.map((g) => {
      let startStep = 0;
      for (const [i, ph] of this.schedulePhases.entries()) {
        if (t <= ph.end_step || i === this.schedulePhases.length - 1) {
          const span = ph.end_step - startStep;
          if (span === 0) throw new RangeError('OneCycleLR: a phase has zero length (pctStart and totalSteps leave no step for it); torch raises ZeroDivisionError here');
          const pct = (t - startStep) / span;
          if (this.cycleMomentum) this.setMomentum(g, this.anneal(g[ph.start_momentum] as number, g[ph.end_momentum] as number, pct));
          return this.anneal(g[ph.start_lr] as number, g[ph.end_lr] as number, pct);
        }
        startStep = ph.end_step;
      }
      throw new Error('unreachable');
    });
  }

  protected ownState(): SchedulerState {
    return {
      total_steps: this.totalSteps, _schedule_phases: this.schedulePhases.map((p) => ({ ...p })), _anneal_func_type: this.annealStrategy,
      cycle_momentum: this.cycleMomentum, ...(this.cycleMomentum ? { use_beta1: this.useBeta1 } : {}),
    };
  }

  protected override loadOwnState(s: SchedulerState): void {
    this.totalSteps = s.total_steps as number;
    const phases = s._schedule_phases as unknown[];
    this.schedulePhases = phases.map((p) => (p instanceof Map ? Object.fromEntries(p) : { ...(p as object) }) as Phase);
    if (s._anneal_func_type === 'cos' || s._anneal_func_type === 'linear') this.annealStrategy = s._anneal_func_type;
    this.cycleMomentum = s.cycle_momentum as boolean;
    if ('use_beta1' in s) this.useBeta1 = s.use_beta1 as boolean;
  }
}

/**
 * Runs schedulers one after another: schedulers[i] from milestones[i-1] on (at a milestone the next one restarts
 * at its epoch 0, in closed form). The typical use is warm-up then cosine:
 *   new SequentialLR(opt, { schedulers: [new LinearLR(opt, {startFactor: 0.1, totalIters: 5}),
 *                                        new CosineAnnealingLR(opt, {tMax: 25})], milestones: [5] })
 */
export class SequentialLR {
  readonly optimizer: Optimizer;
  readonly schedulers: LRScheduler[];
  milestones: number[];
  lastEpoch: number;
  private lastLr: number[];

  constructor(optimizer: Optimizer, o: { schedulers: LRScheduler[]; milestones: readonly number[]; lastEpoch?: number }) {
    o.schedulers.forEach((s, i) => {
      if (s.optimizer !== optimizer) throw new RangeError(`Sequential Schedulers expects all schedulers to belong to the same optimizer, but got schedulers at index ${i} to be different than the optimizer passed in.`);
    });
    if (o.milestones.length !== o.schedulers.length - 1) {
      throw new RangeError(`Sequential Schedulers expects number of schedulers provided to be one more than the number of milestone points, but got number of schedulers ${o.schedulers.length} and the number of milestones to be equal to ${o.milestones.length}`);
    }
    this.optimizer = optimizer;
    this.schedulers = o.schedulers;
    this.milestones = [...o.milestones];
    this.lastEpoch = (o.lastEpoch ?? -1) + 1;
    for (const g of optimizer.paramGroups) g.lr = g.initial_lr as number;
    for (const s of this.schedulers) s.lastEpoch -= 1;
    this.schedulers[0].initialStep();
    this.lastLr = this.schedulers[0].getLastLr();
  }

  step(): void {
    this.lastEpoch++;
    let idx = 0; // bisect_right
    while (idx < this.milestones.length && this.milestones[idx] <= this.lastEpoch) idx++;
    const s = this.schedulers[idx];
    if (idx > 0 && this.milestones[idx - 1] === this.lastEpoch) s.step(0);
    else s.step();
    this.lastLr = s.getLastLr();
  }

  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): SchedulerState {
    return { _milestones: [...this.milestones], last_epoch: this.lastEpoch, _last_lr: [...this.lastLr], _schedulers: this.schedulers.map((s) => s.stateDict()) };
  }

  loadStateDict(sd: SchedulerState | Map<string, unknown>): void {
    const s = sd instanceof Map ? Object.fromEntries(sd) : sd;
    const subs = s._schedulers;
    if (!Array.isArray(subs) || subs.length !== this.schedulers.length) throw new RangeError(`SequentialLR.loadStateDict: expected ${this.schedulers.length} scheduler states in _schedulers`);
    this.milestones = [...(s._milestones as number[])];
    this.lastEpoch = s.last_epoch as number;
    this.lastLr = [...(s._last_lr as number[])];
    subs.forEach((x, i) => this.schedulers[i].loadStateDict(x as SchedulerState));
  }
}

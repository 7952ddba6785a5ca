// The training loop and evaluation, as a PyTorch training script writes them:
//
//   for epoch in range(start, epochs):                  fit({ model, trainLoader, valLoader, optimizer, scheduler,
//     model.train()                                            epochs, lossFn, onStep, onEpoch, checkpointDir })
//     for x, y in loader:
//       loss = loss_fn(model(x), y)
//       optimizer.zero_grad(); loss.backward(); optimizer.step()
//       scheduler.step()          # per batch (OneCycleLR, schedules sized in steps) ...
//     scheduler.step()            # ... or per epoch (StepLR, MultiStepLR, CosineAnnealingLR sized in epochs)
//     evaluate(model, val_loader) # model.eval() under torch.no_grad()
//     torch.save({...}, 'last.pth')
//
// Resuming: everything the next step depends on is in the checkpoint (weights and BN buffers, optimizer and
// scheduler state, epoch and batch position, the loader's seed, the unfinished epoch's running sums), and the data
// loader can start an epoch at any batch (data/loader.ts), so a run resumed from a mid-epoch checkpoint takes the
// same steps on the same batches as an unbroken run: with a deterministic backend the final weights are bit for bit
// the same (tests/cli/train.test.ts kills a run with SIGKILL and checks).
//
// Frozen BatchNorm: by default a frozen backbone's BN layers stay in training mode (batch statistics, running
// stats updated), as PyTorch does when a script only sets requires_grad=False. With frozenBnEval, model.train()
// is followed by putting every BatchNorm2d whose affine parameters are all frozen into eval mode.

import { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { Module } from '../nn/module.js';
import { BatchNorm2d } from '../nn/layers.js';
import { crossEntropy } from '../ops/loss.js';
import type { Optimizer } from '../optim/optimizer.js';
import { OneCycleLR, type SchedulerState } from '../optim/lr-scheduler.js';
import type { DataLoader } from '../data/loader.js';
import '../ops/grad.js'; // registers the backward rules
import { CHECKPOINT_FORMAT, type BestMetric, type EpochMetrics, type EpochState, type TrainCheckpoint, copyFileAtomicSync, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { ConfusionMatrix, argmaxRow } from './metrics.js';

/** What fit steps: an LRScheduler or a SequentialLR. */
export interface Schedule {
  step(): void;
  stateDict(): SchedulerState;
  loadStateDict(s: SchedulerState | Map<string, unknown>): void;
  getLastLr(): number[];
}

export type LossFn = (logits: Tensor, labels: Tensor) => Tensor;

/** The logits of a model's output: a tensor (torchvision) or an object with .logits (transformers). */
export function logitsOf(out: unknown): Tensor {
  if (out instanceof Tensor) return out;
  const l = (out as { logits?: unknown } | null)?.logits;
  if (l instanceof Tensor) return l;
  throw new TypeError('Expected the model to return logits (a Tensor or an object with a logits Tensor)');
}

export interface EvalResult {
  /** Mean loss per sample. */
  loss: number;
  accuracy: number;
  count: number;
  correct: number;
  /** Per true class (null: no sample of that class). */
  perClassAccuracy: (number | null)[];
  /** confusion[true][predicted]. */
  confusion: number[][];
  confusionMatrix: ConfusionMatrix;
}

export interface EvaluateOptions {
  lossFn?: LossFn;
  /** Classes in the confusion matrix (default: the logits' width). */
  numClasses?: number;
  /** The loader epoch to read (its shuffle and augmentation seed; default 0). */
  epoch?: number;
  onBatch?: (done: number, total: number) => void;
}

/** Accuracy, per-class accuracy, confusion matrix and mean loss over a loader, in eval mode with gradients off. */
export async function evaluate(model: Module, loader: DataLoader, o: EvaluateOptions = {}): Promise<EvalResult> {
  const lossFn = o.lossFn ?? ((x: Tensor, y: Tensor) => crossEntropy(x, y));
  const modes = model.modules().map((m) => [m, m.training] as const);
  model.eval();
  let cm: ConfusionMatrix | null = o.numClasses ? new ConfusionMatrix(o.numClasses) : null;
  let lossSum = 0;
  try {
    for await (const b of loader.iterate({ epoch: o.epoch ?? 0 })) {
      noGrad(() => {
        const logits = logitsOf(model.forward(b.input));
        const n = b.input.shape[0], C = logits.shape[1];
        lossSum += lossFn(logits, b.label).item() * n;
        cm ??= new ConfusionMatrix(C);
        const x = logits.contiguousData() as Float32Array, y = b.label.contiguousData() as BigInt64Array;
        for (let i = 0; i < n; i++) cm.add(Number(y[i]), argmaxRow(x, i * C, C));
      });
      o.onBatch?.(b.batch + 1, loader.length);
    }
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  cm ??= new ConfusionMatrix(o.numClasses ?? 1);
  const count = cm.total;
  return {
    loss: lossSum / count, accuracy: cm.accuracy(), count, correct: cm.correct, perClassAccuracy: cm.perClassAccuracy(),
    confusion: cm.counts.map((r) => [...r]), confusionMatrix: cm,
  };
}

/** Put every BatchNorm2d whose affine parameters are all frozen (requiresGrad false) into eval mode. */
export function setFrozenBnEval(model: Module): number {
  let n = 0;
  for (const m of model.modules()) {
    if (!(m instanceof BatchNorm2d) || !m.weight) continue;
    if (m.parameters().every((p) => !p.requiresGrad)) {
      m.training = false;
      n++;
    }
  }
  return n;
}

export interface StepInfo {
  /** 0-based epoch. */
  epoch: number;
  epochs: number;
  /** Batches done in this epoch (1-based after the step). */
  batch: number;
  batches: number;
  globalStep: number;
  loss: number;
  /** Running mean loss and accuracy of the epoch so far. */
  epochLoss: number;
  epochAccuracy: number;
  lr: number;
  /** Images per second over this process's part of the epoch. */
  imagesPerSec: number;
}

export interface CheckpointInfo {
  path: string;
  /** Epochs completed and batches done in the next one. */
  epoch: number;
  batch: number;
  batches: number;
  best: boolean;
}

export interface FitOptions {
  model: Module;
  trainLoader: DataLoader;
  valLoader?: DataLoader | null;
  optimizer: Optimizer;
  scheduler?: Schedule | null;
  /** When the scheduler steps: 'step' (every batch) or 'epoch'. Default: 'step' for OneCycleLR, else 'epoch'. */
  schedulerInterval?: 'step' | 'epoch';
  /** Total epochs (a resumed run continues up to this). */
  epochs: number;
  /** Default cross entropy. */
  lossFn?: LossFn;
  /** Classes for the validation confusion matrix (default: the logits' width). */
  numClasses?: number;
  onStep?: (s: StepInfo) => void;
  /** After each epoch's checkpoint is written: the epoch's metrics row and the validation result. */
  onEpoch?: (row: EpochMetrics, val: EvalResult | null, state: TrainCheckpoint) => void | Promise<void>;
  onCheckpoint?: (c: CheckpointInfo) => void;
  /** Write last.pth here after every epoch (and mid-epoch with checkpointEvery), best.pth when the best metric improves. */
  checkpointDir?: string | null;
  /** Also write last.pth every this many steps inside an epoch (0: only at epoch ends). */
  checkpointEvery?: number;
  /** Added to every checkpoint (the CLI: model_spec, class_names, run_config). */
  checkpointExtra?: Record<string, unknown>;
  /** Continue from this checkpoint (loadCheckpoint's result or a path). */
  resume?: TrainCheckpoint | string | null;
  /** What best.pth maximizes ('..._loss' metrics are minimized). Default val_accuracy, or train_accuracy without validation. */
  bestMetric?: string;
  /** A loss_trace point every this many steps (default 10). */
  traceEvery?: number;
  frozenBnEval?: boolean;
}

export interface FitResult {
  history: EpochMetrics[];
  best: BestMetric | null;
  state: TrainCheckpoint;
}

function freshEpochState(): EpochState {
  return { loss_sum: 0, correct: 0, seen: 0, trace_loss_sum: 0, trace_count: 0 };
}

function better(metric: string, v: number, best: BestMetric | null): boolean {
  if (!Number.isFinite(v)) return false;
  if (best === null) return true;
  return metric.endsWith('_loss') ? v < best.value : v > best.value;
}

/** Train `epochs` epochs (or what is left of them after `resume`); see the top of the file. */
export async function fit(o: FitOptions): Promise<FitResult> {
  const { model, optimizer, trainLoader } = o;
  const scheduler = o.scheduler ?? null;
  const interval = o.schedulerInterval ?? (scheduler instanceof OneCycleLR ? 'step' : 'epoch');
  const lossFn = o.lossFn ?? ((x: Tensor, y: Tensor) => crossEntropy(x, y));
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new RangeError(`Expected a positive integer for epochs but received ${o.epochs}`);
  const every = o.checkpointEvery ?? 0, traceEvery = o.traceEvery ?? 10;
  const bestMetric = o.bestMetric ?? (o.valLoader ? 'val_accuracy' : 'train_accuracy');
  const nb = trainLoader.length;
  if (nb === 0) throw new RangeError('the training loader has no batches (an empty dataset, or dropLast with fewer samples than a batch)');

  const st: TrainCheckpoint = {
    model_state_dict: model.stateDict(), optimizer_state_dict: null, scheduler_state_dict: null, epoch: 0, batch: 0, global_step: 0,
    seed: trainLoader.seed, epoch_state: freshEpochState(), metrics: null, history: [], loss_trace: new Tensor(new Float64Array(0), [0, 2], { dtype: 'float64' }), best: null,
  };
  let trace: [number, number][] = [];
  if (o.resume) {
    const r = typeof o.resume === 'string' ? loadCheckpoint(o.resume) : o.resume;
    model.loadStateDict(r.model_state_dict);
    if (r.optimizer_state_dict) optimizer.loadStateDict(r.optimizer_state_dict);
    if (scheduler && r.scheduler_state_dict) scheduler.loadStateDict(r.scheduler_state_dict as SchedulerState);
    if (r.seed !== undefined && r.seed !== trainLoader.seed) throw new RangeError(`the checkpoint was trained with loader seed ${r.seed} but the training loader has seed ${trainLoader.seed}: batches would differ`);
    // a checkpoint from elsewhere (the tutorial's {model_state_dict, optimizer_state_dict, epoch}) resumes at an epoch start
    Object.assign(st, {
      epoch: r.epoch ?? 0, batch: r.batch ?? 0, global_step: r.global_step ?? 0, epoch_state: { ...freshEpochState(), ...r.epoch_state },
      metrics: r.metrics ?? null, history: [...(r.history ?? [])], best: r.best ?? null,
    });
    trace = traceRows(r.loss_trace);
    if (st.batch > nb) throw new RangeError(`the checkpoint stopped at batch ${st.batch} of epoch ${st.epoch + 1} but the training loader has ${nb} batches per epoch`);
  }

  const lrNow = () => optimizer.paramGroups[optimizer.paramGroups.length - 1].lr;
  const snapshot = () => {
    st.model_state_dict = model.stateDict();
    st.optimizer_state_dict = optimizer.stateDict();
    st.scheduler_state_dict = scheduler ? scheduler.stateDict() : null;
    st.loss_trace = new Tensor(Float64Array.from(trace.flat()), [trace.length, 2], { dtype: 'float64' });
  };
  const save = (best: boolean) => {
    snapshot();
    if (!o.checkpointDir) return;
    const path = `${o.checkpointDir}/last.pth`;
    saveCheckpoint(path, { format: CHECKPOINT_FORMAT, ...st, ...o.checkpointExtra });
    if (best) copyFileAtomicSync(path, `${o.checkpointDir}/best.pth`);
    o.onCheckpoint?.({ path, epoch: st.epoch, batch: st.batch, batches: nb, best });
  };

  for (let epoch = st.epoch; epoch < o.epochs; epoch++) {
    model.train();
    if (o.frozenBnEval) setFrozenBnEval(model);
    const es = st.epoch_state;
    const t0 = performance.now();
    let images = 0;
    for await (const b of trainLoader.iterate({ epoch, startBatch: st.batch })) {
      const n = b.input.shape[0];
      const logits = logitsOf(model.forward(b.input));
      const loss = lossFn(logits, b.label);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      if (scheduler && interval === 'step') scheduler.step();
      const lv = loss.item();
      const C = logits.shape[1], x = logits.contiguousData() as Float32Array, y = b.label.contiguousData() as BigInt64Array;
      for (let i = 0; i < n; i++) if (argmaxRow(x, i * C, C) === Number(y[i])) es.correct++;
      es.loss_sum += lv * n;
      es.seen += n;
      es.trace_loss_sum += lv;
      es.trace_count++;
      images += n;
      st.batch = b.batch + 1;
      st.global_step++;
      if (es.trace_count >= traceEvery || st.batch === nb) {
        trace.push([st.global_step, es.trace_loss_sum / es.trace_count]);
        es.trace_loss_sum = 0;
        es.trace_count = 0;
      }
      o.onStep?.({
        epoch, epochs: o.epochs, batch: st.batch, batches: nb, globalStep: st.global_step, loss: lv, epochLoss: es.loss_sum / es.seen,
        epochAccuracy: es.correct / es.seen, lr: lrNow(), imagesPerSec: images / ((performance.now() - t0) / 1000),
      });
      if (every > 0 && st.batch % every === 0 && st.batch < nb) save(false);
    }
    const lr = lrNow(); // the lr this epoch ended with, before an epoch-interval step
    if (scheduler && interval === 'epoch') scheduler.step();
    const secs = (performance.now() - t0) / 1000;
    const val = o.valLoader ? await evaluate(model, o.valLoader, { lossFn, numClasses: o.numClasses }) : null;
    const row: EpochMetrics = {
      epoch: epoch + 1, train_loss: es.loss_sum / es.seen, train_accuracy: es.correct / es.seen,
      val_loss: val ? val.loss : null, val_accuracy: val ? val.accuracy : null, lr, global_step: st.global_step,
      seconds: secs, images_per_sec: images / secs,
    };
    st.history.push(row);
    st.metrics = row;
    st.epoch = epoch + 1;
    st.batch = 0;
    st.epoch_state = freshEpochState();
    const v = row[bestMetric];
    const isBest = typeof v === 'number' && better(bestMetric, v, st.best);
    if (isBest) st.best = { metric: bestMetric, value: v as number, epoch: epoch + 1 };
    save(isBest);
    await o.onEpoch?.(row, val, st);
  }
  snapshot();
  return { history: st.history, best: st.best, state: st };
}

/** A loss_trace tensor as [step, loss] rows. */
export function traceRows(t: Tensor | null | undefined): [number, number][] {
  if (!(t instanceof Tensor) || t.ndim !== 2 || t.shape[1] !== 2) return [];
  const d = t.contiguousData() as Float64Array;
  const out: [number, number][] = [];
  for (let i = 0; i < t.shape[0]; i++) out.push([Number(d[2 * i]), Number(d[2 * i + 1])]);
  return out;
}

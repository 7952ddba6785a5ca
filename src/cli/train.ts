// resnet train: train or fine-tune a ResNet on an image folder or Fashion-MNIST, with checkpoints PyTorch loads,
// metric files and curves, and --resume (from a mid-epoch checkpoint too). The loop is train/loop.ts; what a run
// is made of (data, transforms, optimizer, schedule, model) is train/recipe.ts and models/model-spec.ts.

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setBackend, backendInfo } from '../backend/select.js';
import { DataLoader } from '../data/loader.js';
import { resolveWeights } from '../models/factory.js';
import { crossEntropy } from '../ops/loss.js';
import type { Tensor } from '../tensor/tensor.js';
import { type TrainCheckpoint, loadCheckpoint, removeStaleTemps } from '../train/checkpoint.js';
import { freezeBackbone } from '../train/finetune.js';
import { fit, traceRows, type EvalResult } from '../train/loop.js';
import { writeMetricFiles } from '../train/metrics.js';
import { downloadFashionMNIST } from '../data/fashion-mnist.js';
import { type ModelSpec, STEMS, type Stem, buildSpecModel, loadWeightsInto, makeSpec, specFromCheckpoint } from '../models/model-spec.js';
import { curvesSvg } from '../train/plot.js';
import { TrainProgress } from '../train/progress.js';
import { SCHEDULES, type DataRecipe, type OptimConfig, type ScheduleConfig, type ScheduleName, dataRecipe, evalTransform, inferenceTransform, limitDataset, makeOptimizer, makeScheduler, openSplit, trainTransform } from '../train/recipe.js';
import { writeFileAtomicSync } from '../io/tensor-bytes.js';
import { type Command, UsageError, intArg, oneOf, parse } from './args.js';

const usage = `Usage: resnet train --data <DIR | fashion-mnist[:ROOT]> --arch <builder | config.json> --out runs/NAME [options]

Model      --weights SPEC          start from these weights (file, HF folder, hf:org/name, URL, registry name such
                                   as DEFAULT); the head is replaced for the data's classes
           --num-classes K         must equal the data's class count (default: that count)
           --in-channels C         1 or 3 (default: 1 for fashion-mnist, 3 for folders)
           --stem imagenet|cifar|small
                                   cifar: 3x3 stride-1 conv1 and no max pool, for small images; small: the same
                                   conv1 with the max pool kept (a quarter of cifar's work)
                                   (default: cifar for fashion-mnist, imagenet for folders)
           --freeze-backbone       train only the head (requires_grad False elsewhere)
           --freeze-bn             with --freeze-backbone: frozen BatchNorm layers in eval mode (default: PyTorch's
                                   behaviour, they keep training-mode statistics)
Data       --image-size S          (default 28 for fashion-mnist, 224 for folders)
           --augment standard|none --val-data DIR   --limit-train N   --limit-val N   --workers N
           --download              fashion-mnist: fetch missing files (torchvision's mirror, MD5-checked) into
                                   ROOT/FashionMNIST/raw ($RESNET_FASHION_MNIST_MIRROR replaces the mirror)
Training   --epochs E (10)  --batch-size B (64; 32 for folders)  --seed S (0)  --label-smoothing X (0)
           --optimizer sgd|adamw   --lr LR (sgd: 0.1, 0.01 with --weights; adamw: 0.001)
           --momentum M (0.9)  --nesterov  --weight-decay WD (sgd 5e-4, adamw 0.01)  --backbone-lr LR
           --scheduler step|multistep|cosine|onecycle|none (cosine)  --warmup-epochs W (0)
           --step-size N (epochs, default epochs/3)  --milestones A,B (epochs, default 50%,75%)  --gamma G (0.1)
Output     --checkpoint-every N    also write last.pth every N steps inside an epoch (for --resume)
           --log-every N           a progress line every N steps when stderr is not a terminal
           --resume                continue the run in --out from last.pth (its settings; flags that would change
                                   the training must be left out or equal)
           --backend js|native

Writes runs/NAME/last.pth (every epoch, atomically), best.pth (best validation accuracy), metrics.jsonl,
metrics.csv and curves.svg. Checkpoints load in PyTorch with torch.load(path, weights_only=True) and
model.load_state_dict(ckpt['model_state_dict']); non-integer numbers in them are 0-dim float64 tensors.`;

const OPTIONS = {
  data: { type: 'string' }, arch: { type: 'string' }, out: { type: 'string' }, weights: { type: 'string' },
  'num-classes': { type: 'string' }, 'in-channels': { type: 'string' }, stem: { type: 'string' }, 'freeze-backbone': { type: 'boolean' },
  'freeze-bn': { type: 'boolean' }, 'image-size': { type: 'string' }, augment: { type: 'string' }, 'val-data': { type: 'string' },
  'limit-train': { type: 'string' }, 'limit-val': { type: 'string' }, workers: { type: 'string' }, epochs: { type: 'string' },
  'batch-size': { type: 'string' }, seed: { type: 'string' }, 'label-smoothing': { type: 'string' }, optimizer: { type: 'string' },
  lr: { type: 'string' }, momentum: { type: 'string' }, nesterov: { type: 'boolean' }, 'weight-decay': { type: 'string' },
  'backbone-lr': { type: 'string' }, scheduler: { type: 'string' }, 'warmup-epochs': { type: 'string' }, 'step-size': { type: 'string' },
  milestones: { type: 'string' }, gamma: { type: 'string' }, 'checkpoint-every': { type: 'string' }, 'log-every': { type: 'string' },
  resume: { type: 'boolean' }, backend: { type: 'string' }, download: { type: 'boolean' },
} as const;

/** Flags that do not change what is trained: free to differ on --resume. */
export const RUNTIME_FLAGS: ReadonlySet<string> = new Set(['out', 'resume', 'workers', 'checkpoint-every', 'log-every', 'backend', 'download', 'help']);
/** Flags naming paths: stored absolute, so a run resumes from any directory. */
const PATH_FLAGS = ['data', 'val-data', 'weights'];

export function floatArg(v: string | undefined, flag: string, min: number, max = Infinity): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} expects a number${max < Infinity ? ` in [${min}, ${max}]` : ` >= ${min}`}, got '${v}'`, usage);
  return n;
}

type Args = Record<string, string | boolean | undefined>;

/** Paths made absolute (data sources, a weights file or folder, a config.json), so the saved args resume anywhere. */
function absolutize(a: Args): Args {
  const out = { ...a };
  for (const k of PATH_FLAGS) {
    const v = out[k];
    if (typeof v === 'string' && v !== 'fashion-mnist' && !v.startsWith('fashion-mnist:') && !v.startsWith('hf:') && !/^https?:/.test(v) && existsSync(v)) out[k] = resolve(v);
  }
  if (typeof out.arch === 'string' && out.arch.toLowerCase().endsWith('.json')) out.arch = resolve(out.arch);
  return out;
}

/** On --resume: the saved args, after checking that the given training flags agree with them. */
function resumedArgs(given: Args, ckpt: TrainCheckpoint, path: string): Args {
  const saved = (ckpt.run_config as { args?: Args } | undefined)?.args;
  if (!saved || typeof saved !== 'object') throw new Error(`${path}: no run_config.args in the checkpoint (not written by resnet train); cannot resume it with the CLI`);
  const now = absolutize(given);
  for (const [k, v] of Object.entries(now)) {
    if (RUNTIME_FLAGS.has(k) || v === undefined) continue;
    if (String(saved[k]) !== String(v)) {
      throw new UsageError(`--resume continues ${path} with its own settings: it was started with ${saved[k] === undefined ? `no --${k}` : `--${k} ${String(saved[k])}`}, not --${k} ${String(v)} (leave the flag out, or start a new run with another --out)`, usage);
    }
  }
  return { ...saved, ...Object.fromEntries(Object.entries(given).filter(([k]) => RUNTIME_FLAGS.has(k))) };
}

interface Setup {
  recipe: DataRecipe;
  optim: OptimConfig;
  schedule: ScheduleConfig;
  epochs: number;
  batchSize: number;
  seed: number;
  labelSmoothing: number;
  stem: Stem;
  limitTrain?: number;
  limitVal?: number;
}

function setupFrom(a: Args): Setup {
  const s = (k: string) => a[k] as string | undefined;
  if (!s('data')) throw new UsageError('--data is required (an image folder, or fashion-mnist)', usage);
  if (!s('arch')) throw new UsageError('--arch is required (a torchvision builder such as resnet18, or a transformers config.json)', usage);
  const fmnist = s('data') === 'fashion-mnist' || s('data')!.startsWith('fashion-mnist:');
  const inChannels = intArg(s('in-channels'), '--in-channels', usage, 1);
  if (inChannels !== undefined && inChannels !== 1 && inChannels !== 3) throw new UsageError(`--in-channels must be 1 or 3, got '${s('in-channels')}'`, usage);
  const augment = oneOf(s('augment'), '--augment', ['standard', 'none'] as const, usage);
  const recipe = dataRecipe(s('data')!, { valData: s('val-data'), imageSize: intArg(s('image-size'), '--image-size', usage, 8), inChannels, augment });
  const epochs = intArg(s('epochs'), '--epochs', usage, 1) ?? 10;
  const optimizer = oneOf(s('optimizer'), '--optimizer', ['sgd', 'adamw'] as const, usage) ?? 'sgd';
  const lr = floatArg(s('lr'), '--lr', 0) ?? (optimizer === 'adamw' ? 1e-3 : s('weights') ? 0.01 : 0.1);
  const scheduler = oneOf(s('scheduler'), '--scheduler', SCHEDULES, usage) ?? ('cosine' as ScheduleName);
  const milestones = s('milestones') === undefined ? [Math.round(epochs * 0.5), Math.round(epochs * 0.75)]
    : s('milestones')!.split(',').map((m) => intArg(m.trim(), '--milestones', usage, 1)!);
  if (a['freeze-bn'] && !a['freeze-backbone']) throw new UsageError('--freeze-bn applies to the layers --freeze-backbone freezes; give both', usage);
  const warmup = intArg(s('warmup-epochs'), '--warmup-epochs', usage, 0) ?? 0;
  if (warmup >= epochs) throw new UsageError(`--warmup-epochs ${warmup} must be less than --epochs ${epochs}`, usage);
  return {
    recipe, epochs, seed: intArg(s('seed'), '--seed', usage, 0) ?? 0,
    batchSize: intArg(s('batch-size'), '--batch-size', usage, 1) ?? (fmnist ? 64 : 32),
    labelSmoothing: floatArg(s('label-smoothing'), '--label-smoothing', 0, 1) ?? 0,
    stem: oneOf(s('stem'), '--stem', STEMS, usage) ?? (fmnist ? 'cifar' : 'imagenet'),
    limitTrain: intArg(s('limit-train'), '--limit-train', usage, 1), limitVal: intArg(s('limit-val'), '--limit-val', usage, 1),
    optim: {
      optimizer, lr, momentum: floatArg(s('momentum'), '--momentum', 0) ?? 0.9, nesterov: !!a.nesterov,
      weight_decay: floatArg(s('weight-decay'), '--weight-decay', 0) ?? (optimizer === 'adamw' ? 0.01 : 5e-4),
      backbone_lr: floatArg(s('backbone-lr'), '--backbone-lr', 0) ?? null,
    },
    schedule: {
      scheduler, epochs, warmup_epochs: warmup, step_size: intArg(s('step-size'), '--step-size', usage, 1) ?? Math.max(1, Math.round(epochs / 3)),
      milestones, gamma: floatArg(s('gamma'), '--gamma', 0) ?? 0.1,
    },
  };
}

async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, OPTIONS, usage);
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const given = values as Args;
  if (!given.out) throw new UsageError('--out is required (the run folder, e.g. runs/NAME)', usage);
  const out = resolve(given.out as string);
  const last = join(out, 'last.pth');
  let ckpt: TrainCheckpoint | null = null;
  let a: Args;
  if (given.resume) {
    if (!existsSync(last)) throw new Error(`--resume: ${last} does not exist (nothing to resume; drop --resume to start the run)`);
    ckpt = loadCheckpoint(last);
    a = resumedArgs(given, ckpt, last);
  } else {
    if (existsSync(last)) throw new Error(`${last} exists: pass --resume to continue that run, or choose another --out`);
    a = absolutize(given);
  }
  const setup = setupFrom(a);
  const backend = oneOf(a.backend as string | undefined, '--backend', ['js', 'native'] as const, usage);
  if (backend) setBackend(backend);
  const workers = intArg(a.workers as string | undefined, '--workers', usage, 0) ?? (setup.recipe.source === 'fashion-mnist' ? 0 : 1);
  const every = intArg(a['checkpoint-every'] as string | undefined, '--checkpoint-every', usage, 1) ?? 0;
  const bar = new TrainProgress(process.stderr, 0);
  const say = (m: string) => bar.line(`resnet train: ${m}`);

  const { recipe } = setup;
  if (a.download && recipe.source === 'fashion-mnist') for (const f of await downloadFashionMNIST(recipe.train)) say(`downloaded ${f}`);
  const trainSplit = openSplit(recipe, 'train', trainTransform(recipe))!;
  const valSplit = openSplit(recipe, 'val', evalTransform(recipe));
  if (valSplit && valSplit.classes.join('\n') !== trainSplit.classes.join('\n')) {
    throw new Error(`the validation data's classes (${valSplit.classes.join(', ')}) differ from the training data's (${trainSplit.classes.join(', ')})`);
  }
  const classes = trainSplit.classes;
  const k = intArg(a['num-classes'] as string | undefined, '--num-classes', usage, 1);
  if (k !== undefined && k !== classes.length) throw new UsageError(`--num-classes ${k} but the data has ${classes.length} classes (${classes.join(', ')})`, usage);
  const trainDs = limitDataset(trainSplit.dataset, setup.limitTrain, setup.seed);
  const valDs = valSplit ? limitDataset(valSplit.dataset, setup.limitVal, setup.seed + 1) : null;

  const spec: ModelSpec = ckpt ? specFromCheckpoint(ckpt.model_spec, last)
    : makeSpec({ arch: a.arch as string, numClasses: classes.length, inChannels: recipe.in_channels, stem: setup.stem, classNames: classes });
  const model = buildSpecModel(spec, { seed: setup.seed });
  if (a.weights && !ckpt) {
    const w = await resolveWeights(a.weights as string, { arch: spec.arch ?? undefined, progress: !!process.stderr.isTTY });
    for (const note of loadWeightsInto(model, spec, w)) say(note);
  }
  if (a['freeze-backbone']) {
    const f = freezeBackbone(model);
    say(`backbone frozen: ${f.trainable} trainable parameters, ${f.frozen} frozen`);
  }

  // a last batch of one image would make train-mode BatchNorm's statistics degenerate (PyTorch raises): drop it
  const remainder = trainDs.length % setup.batchSize;
  const trainLoader = new DataLoader(trainDs, { batchSize: setup.batchSize, shuffle: true, seed: setup.seed, dropLast: remainder === 1, numWorkers: workers });
  const valLoader = valDs ? new DataLoader(valDs, { batchSize: setup.batchSize, numWorkers: workers }) : null;
  const optimizer = makeOptimizer(model, setup.optim);
  const scheduler = makeScheduler(optimizer, setup.schedule, trainLoader.length);
  const logEvery = intArg(a['log-every'] as string | undefined, '--log-every', usage, 1) ?? Math.max(1, Math.floor(trainLoader.length / 10));
  bar.every = logEvery;
  mkdirSync(out, { recursive: true });
  for (const f of ['last.pth', 'best.pth', 'metrics.jsonl', 'metrics.csv', 'curves.svg']) removeStaleTemps(out, f);

  const steps = trainLoader.length;
  const writeFiles = (history: TrainCheckpoint['history'], trace: [number, number][]) => {
    writeMetricFiles(join(out, 'metrics'), history);
    writeFileAtomicSync(join(out, 'curves.svg'), [new TextEncoder().encode(curvesSvg({ history, trace, stepsPerEpoch: steps, title: `resnet train ${out}` }))]);
  };
  if (ckpt) {
    writeFiles(ckpt.history, traceRows(ckpt.loss_trace));
    say(`resuming ${last} at epoch ${ckpt.epoch + 1}, step ${ckpt.batch}/${steps}`);
  }
  const runConfig = { args: a, data: recipe, optim: setup.optim, schedule: setup.schedule, batch_size: setup.batchSize, seed: setup.seed, label_smoothing: setup.labelSmoothing, steps_per_epoch: steps };
  say(`${spec.arch ?? 'config'} (${spec.num_classes} classes, ${spec.in_channels} channel(s), ${spec.stem} stem) on ${trainDs.length} training images` +
    `${valDs ? ` / ${valDs.length} validation` : ''}, ${steps} steps per epoch, ${backendInfo().name} backend`);
  const lossFn = (x: Tensor, y: Tensor) => crossEntropy(x, y, { labelSmoothing: setup.labelSmoothing });
  try {
    const r = await fit({
      model, trainLoader, valLoader, optimizer, scheduler, schedulerInterval: 'step', epochs: setup.epochs, lossFn, numClasses: classes.length,
      checkpointDir: out, checkpointEvery: every, resume: ckpt, frozenBnEval: !!a['freeze-bn'],
      checkpointExtra: { model_spec: spec, class_names: classes, run_config: runConfig, preprocess: JSON.stringify(inferenceTransform(recipe)) },
      onStep: (s) => bar.step(s),
      onCheckpoint: (c) => { if (c.batch > 0) bar.line(`checkpoint ${c.path} (epoch ${c.epoch + 1}, step ${c.batch}/${c.batches})`); },
      onEpoch: (row, val: EvalResult | null, st) => {
        writeFiles(st.history, traceRows(st.loss_trace));
        const v = val ? `  val_loss ${val.loss.toFixed(4)}  val_acc ${(100 * val.accuracy).toFixed(2)}%` : '';
        bar.line(`epoch ${row.epoch}/${setup.epochs}  train_loss ${(row.train_loss as number).toFixed(4)}  train_acc ${(100 * (row.train_accuracy as number)).toFixed(2)}%${v}` +
          `  ${(row.seconds as number).toFixed(1)} s${st.best?.epoch === row.epoch ? '  (best)' : ''}`);
      },
    });
    const b = r.best;
    console.log(`resnet train: done: ${setup.epochs} epochs in ${out}${b ? `; best ${b.metric} ${b.value.toFixed(4)} at epoch ${b.epoch} (best.pth)` : ''}`);
  } finally {
    await trainLoader.close();
    await valLoader?.close();
  }
  return 0;
}

export const trainCommand: Command = { name: 'train', summary: 'train or fine-tune on an image folder or Fashion-MNIST', usage, run };

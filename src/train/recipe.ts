// The pieces of a training run that are configuration, as data the checkpoint keeps (run_config): where the images
// come from and how they are transformed, the optimizer, and the learning-rate schedule.
//
// Data. `fashion-mnist` (or `fashion-mnist:ROOT`) trains on the 60000-image train split and validates on the 10000
// test images; a folder trains on DIR/train and validates on DIR/val (or valid, validation, test) when DIR/train
// exists, else trains on DIR itself (validation from valData, if given). Classes are ImageFolder's.
// Transforms (data/augment.ts's TransformSpec, so worker threads can rebuild them):
//   Fashion-MNIST  train: [Resize(size) if not 28] RandomCrop(size, padding size/7) RandomHorizontalFlip;
//                  eval: [Resize]; both: Grayscale(3) when in_channels is 3 (the grey channel replicated), then
//                  Normalize(0.2860, 0.3530) (the training set's mean and std)
//   folders        train: RandomResizedCrop(size) RandomHorizontalFlip; eval: Resize(size*256/224) CenterCrop(size);
//                  both: Grayscale(1) when in_channels is 1; Normalize(ImageNet mean, std)
// augment 'none' uses the eval transform for training too.
//
// Schedules are sized in optimizer steps and stepped after every batch (fit's schedulerInterval 'step'):
//   step       lr * gamma every stepSize epochs           multistep  lr * gamma at each milestone epoch
//   cosine     cosine from lr to 0 over the epochs after the warm-up
//   onecycle   OneCycleLR with max_lr = lr; its warm-up is pctStart = warmupEpochs / epochs (0.3 when 0); it cycles
//              SGD's momentum (0.85..0.95) or AdamW's beta1, as torch does
//   none       constant lr
// warmupEpochs > 0 (not onecycle) puts LinearLR from 0.1 * lr to lr before the schedule (SequentialLR).

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Module } from '../nn/module.js';
import { SGD } from '../optim/sgd.js';
import { AdamW } from '../optim/adamw.js';
import type { Optimizer } from '../optim/optimizer.js';
import { CosineAnnealingLR, LinearLR, MultiStepLR, OneCycleLR, SequentialLR, StepLR, type LRScheduler } from '../optim/lr-scheduler.js';
import { Generator } from '../tensor/random.js';
import { Subset, deriveSeed, type Dataset } from '../data/dataset.js';
import { FASHION_MNIST_ROOT, FashionMNIST } from '../data/fashion-mnist.js';
import { ImageFolder } from '../data/image-folder.js';
import type { TransformSpec } from '../data/augment.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/transforms.js';
import { paramGroups } from './finetune.js';
import type { Schedule } from './loop.js';

export interface DataRecipe {
  source: 'fashion-mnist' | 'image-folder';
  /** Fashion-MNIST: the folder of IDX files; image folders: the training folder. */
  train: string;
  /** The validation folder (image folders; Fashion-MNIST validates on its test split), or null. */
  val: string | null;
  image_size: number;
  in_channels: number;
  mean: number[];
  std: number[];
  augment: 'standard' | 'none';
}

export const FASHION_MNIST_MEAN = 0.2860, FASHION_MNIST_STD = 0.3530;

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** A recipe from --data (fashion-mnist[:ROOT] or a folder) and the options (defaults per source). */
export function dataRecipe(data: string, o: { valData?: string; imageSize?: number; inChannels?: number; augment?: 'standard' | 'none' } = {}): DataRecipe {
  const augment = o.augment ?? 'standard';
  if (data === 'fashion-mnist' || data.startsWith('fashion-mnist:')) {
    const c = o.inChannels ?? 1;
    return {
      source: 'fashion-mnist', train: data.slice('fashion-mnist:'.length) || FASHION_MNIST_ROOT, val: null, image_size: o.imageSize ?? 28, in_channels: c,
      mean: new Array(c).fill(FASHION_MNIST_MEAN), std: new Array(c).fill(FASHION_MNIST_STD), augment,
    };
  }
  if (!isDir(data)) throw new Error(`--data ${data}: not a folder (give an image folder with one sub-folder per class, or fashion-mnist)`);
  let train = data, val: string | null = o.valData ?? null;
  if (isDir(join(data, 'train'))) {
    train = join(data, 'train');
    val ??= ['val', 'valid', 'validation', 'test'].map((n) => join(data, n)).find(isDir) ?? null;
  }
  const c = o.inChannels ?? 3;
  const mean = c === 3 ? [...IMAGENET_MEAN] : new Array(c).fill(0.449), std = c === 3 ? [...IMAGENET_STD] : new Array(c).fill(0.226);
  return { source: 'image-folder', train, val, image_size: o.imageSize ?? 224, in_channels: c, mean, std, augment };
}

function channelSteps(r: DataRecipe): TransformSpec[] {
  if (r.source === 'fashion-mnist') {
    if (r.in_channels === 3) return [{ name: 'Grayscale', numOutputChannels: 3 }];
    if (r.in_channels !== 1) throw new RangeError(`Fashion-MNIST images are grey: in_channels must be 1 or 3, not ${r.in_channels}`);
    return [];
  }
  if (r.in_channels === 1) return [{ name: 'Grayscale', numOutputChannels: 1 }];
  if (r.in_channels !== 3) throw new RangeError(`image folders are read as RGB: in_channels must be 3 or 1, not ${r.in_channels}`);
  return [];
}

/** The evaluation transform of a recipe. */
export function evalTransform(r: DataRecipe): TransformSpec[] {
  const s = r.image_size;
  const geometry: TransformSpec[] = r.source === 'fashion-mnist'
    ? (s === 28 ? [] : [{ name: 'Resize', size: s }])
    : [{ name: 'Resize', size: Math.floor((s * 256) / 224) }, { name: 'CenterCrop', size: s }];
  return [...geometry, ...channelSteps(r), { name: 'Normalize', mean: r.mean, std: r.std }];
}

/**
 * What a model trained on this recipe needs at inference time, for any decoded RGB image (not only the dataset's):
 * the eval transform's geometry made total (Fashion-MNIST: Resize(size) + CenterCrop(size), which leave a 28x28
 * image as it is), then the channel conversion (Grayscale(1) for grey models; Grayscale(3) for a Fashion-MNIST
 * model with 3 channels), then Normalize. Checkpoints and model folders carry it as `preprocess`.
 */
export function inferenceTransform(r: DataRecipe): TransformSpec[] {
  const s = r.image_size;
  const norm: TransformSpec = { name: 'Normalize', mean: r.mean, std: r.std };
  if (r.source === 'fashion-mnist') {
    return [{ name: 'Resize', size: s }, { name: 'CenterCrop', size: s }, { name: 'Grayscale', numOutputChannels: r.in_channels === 3 ? 3 : 1 }, norm];
  }
  return evalTransform(r);
}

/** The training transform of a recipe (the eval transform when augment is 'none'). */
export function trainTransform(r: DataRecipe): TransformSpec[] {
  if (r.augment === 'none') return evalTransform(r);
  const s = r.image_size;
  const geometry: TransformSpec[] = r.source === 'fashion-mnist'
    ? [...(s === 28 ? [] : [{ name: 'Resize', size: s } as TransformSpec]), { name: 'RandomCrop', size: s, padding: Math.round(s / 7) }, { name: 'RandomHorizontalFlip' }]
    : [{ name: 'RandomResizedCrop', size: s }, { name: 'RandomHorizontalFlip' }];
  return [...geometry, ...channelSteps(r), { name: 'Normalize', mean: r.mean, std: r.std }];
}

export interface Split {
  dataset: Dataset;
  classes: string[];
}

/** A split of a recipe's data ('train' or 'val'; Fashion-MNIST's val is its test split) with the given transform. */
export function openSplit(r: DataRecipe, split: 'train' | 'val', transform: TransformSpec[]): Split | null {
  if (r.source === 'fashion-mnist') {
    const ds = new FashionMNIST({ root: r.train, train: split === 'train', transform });
    return { dataset: ds, classes: [...ds.classes] };
  }
  const dir = split === 'train' ? r.train : r.val;
  if (!dir) return null;
  const ds = new ImageFolder(dir, { transform });
  return { dataset: ds, classes: ds.classes };
}

/** `limit` samples of `ds` chosen at random (seeded), in dataset order; the dataset itself when it has no more. */
export function limitDataset(ds: Dataset, limit: number | undefined, seed: number): Dataset {
  if (limit === undefined || limit >= ds.length) return ds;
  const g = new Generator(deriveSeed(seed, 2, ds.length));
  const idx = Array.from({ length: ds.length }, (_, i) => i);
  for (let i = 0; i < limit; i++) {
    const j = i + g.randint(ds.length - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return new Subset(ds, idx.slice(0, limit).sort((a, b) => a - b));
}

export interface OptimConfig {
  optimizer: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  weight_decay: number;
  nesterov: boolean;
  /** The backbone's lr (a second parameter group), or null for one lr. */
  backbone_lr: number | null;
}

/** SGD or AdamW over the model's trainable parameters (two groups when backbone_lr is set). */
export function makeOptimizer(model: Module, c: OptimConfig): Optimizer {
  const groups = paramGroups(model, { lr: c.lr, backboneLr: c.backbone_lr ?? undefined });
  if (c.optimizer === 'sgd') return new SGD(groups, { lr: c.lr, momentum: c.momentum, weightDecay: c.weight_decay, nesterov: c.nesterov });
  if (c.optimizer === 'adamw') return new AdamW(groups, { lr: c.lr, weightDecay: c.weight_decay });
  throw new RangeError(`Expected sgd or adamw for optimizer but received ${String(c.optimizer)}`);
}

export type ScheduleName = 'step' | 'multistep' | 'cosine' | 'onecycle' | 'none';
export const SCHEDULES: readonly ScheduleName[] = ['step', 'multistep', 'cosine', 'onecycle', 'none'];

export interface ScheduleConfig {
  scheduler: ScheduleName;
  epochs: number;
  warmup_epochs: number;
  /** StepLR's period in epochs. */
  step_size: number;
  /** MultiStepLR's milestones in epochs. */
  milestones: number[];
  gamma: number;
}

/** The schedule of a config, sized in steps (step it after every batch), or null for a constant lr without warm-up. */
export function makeScheduler(opt: Optimizer, c: ScheduleConfig, stepsPerEpoch: number): Schedule | null {
  const spe = stepsPerEpoch, warm = c.warmup_epochs * spe;
  if (!(c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs)) throw new RangeError(`warm-up must be shorter than the run: ${c.warmup_epochs} warm-up epochs of ${c.epochs}`);
  if (c.scheduler === 'onecycle') {
    return new OneCycleLR(opt, {
      maxLr: opt.paramGroups.map((g) => g.lr), totalSteps: c.epochs * spe, pctStart: c.warmup_epochs > 0 ? c.warmup_epochs / c.epochs : 0.3,
    });
  }
  let main: LRScheduler | null = null;
  if (c.scheduler === 'step') main = new StepLR(opt, { stepSize: c.step_size * spe, gamma: c.gamma });
  else if (c.scheduler === 'multistep') main = new MultiStepLR(opt, { milestones: c.milestones.map((m) => (m - c.warmup_epochs) * spe), gamma: c.gamma });
  else if (c.scheduler === 'cosine') main = new CosineAnnealingLR(opt, { tMax: (c.epochs - c.warmup_epochs) * spe });
  else if (c.scheduler !== 'none') throw new RangeError(`Expected one of ${SCHEDULES.join(', ')} for scheduler but received ${String(c.scheduler)}`);
  if (warm === 0) return main;
  const warmup = new LinearLR(opt, { startFactor: 0.1, totalIters: warm });
  if (!main) return warmup;
  return new SequentialLR(opt, { schedulers: [warmup, main], milestones: [warm] });
}

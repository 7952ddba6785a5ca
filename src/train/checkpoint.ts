// Training checkpoints: the tutorial's {model_state_dict, optimizer_state_dict, epoch, ...} as a .pth that PyTorch
// loads with torch.load(path, weights_only=True), and back.
//
//   ckpt = torch.load('runs/x/last.pth', weights_only=True)      |  const ckpt = loadCheckpoint('runs/x/last.pth');
//   model.load_state_dict(ckpt['model_state_dict'])              |  model.loadStateDict(ckpt.model_state_dict);
//   optimizer.load_state_dict(ckpt['optimizer_state_dict'])      |  optimizer.loadStateDict(ckpt.optimizer_state_dict);
//
// Floats. torch 1.13's weights_only unpickler has no BINFLOAT opcode, so a Python float anywhere in the file (an
// lr in param_groups, a loss in the metrics) makes torch.load(weights_only=True) fail. Every non-integer number
// outside the tensors is therefore stored as a 0-dim float64 tensor (exact: a double round-trips bit for bit), e.g.
// ckpt['optimizer_state_dict']['param_groups'][0]['lr'] is tensor(0.1, dtype=torch.float64), which
// torch.optim.SGD.load_state_dict and step() accept; in Python use .item() for the number. Integer-valued numbers
// (epoch, 0.0, 1.0) are written as ints by io/pth-write.ts. loadCheckpoint turns those 0-dim float64 tensors back
// into numbers everywhere except inside model_state_dict and the optimizer's per-parameter `state`.
//
// Layout (CHECKPOINT_FORMAT): model_state_dict, optimizer_state_dict, scheduler_state_dict (or None), epoch (epochs
// completed), batch (batches done in epoch `epoch`: 0 at an epoch boundary, k after a mid-epoch save), global_step,
// seed (the data loader's: with epoch and batch it is the whole loader/RNG position, see data/loader.ts),
// epoch_state (the running sums of the unfinished epoch), metrics (the last finished epoch's row), history (every
// finished epoch's row), loss_trace (float64 (n, 2): global step, mean train loss since the previous point), best
// ({metric, value, epoch} or None), then whatever the caller adds (the CLI: model_spec, class_names, run_config, and
// preprocess: the inference transform as JSON text, which models/factory.ts reads).
// Files are written atomically (temp file + fsync + rename, io/tensor-bytes.ts), so a killed run never leaves a
// partial file under the final name.

import { closeSync, copyFileSync, fsyncSync, openSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Tensor } from '../tensor/tensor.js';
import { readPthSync } from '../io/pth.js';
import { writePthSync } from '../io/pth-write.js';
import { isPyTuple, pyTuple } from '../io/pickle.js';

export const CHECKPOINT_FORMAT = 'resnet-ts/train-checkpoint/1';

/** One finished epoch: numbers by name (epoch, train_loss, train_accuracy, val_loss, val_accuracy, lr, ...). */
export type EpochMetrics = Record<string, number | null>;

/** The running sums of the epoch in progress (restored on resume so the epoch's metrics come out the same). */
export interface EpochState {
  loss_sum: number;
  correct: number;
  seen: number;
  trace_loss_sum: number;
  trace_count: number;
}

export interface BestMetric {
  metric: string;
  value: number;
  epoch: number;
}

/** A training checkpoint as loadCheckpoint returns it (snake_case: these are the file's keys). */
export interface TrainCheckpoint {
  format?: string;
  model_state_dict: Map<string, Tensor>;
  optimizer_state_dict: unknown;
  scheduler_state_dict: unknown;
  epoch: number;
  batch: number;
  global_step: number;
  seed: number;
  epoch_state: EpochState;
  metrics: EpochMetrics | null;
  history: EpochMetrics[];
  /** Float64 (n, 2): global step, mean train loss over the steps since the previous row. */
  loss_trace: Tensor;
  best: BestMetric | null;
  [extra: string]: unknown;
}

/** The number as a 0-dim float64 tensor (see the header: torch 1.13's weights_only loader has no floats). */
export function floatTensor(v: number): Tensor {
  return new Tensor(new Float64Array([v]), [], { dtype: 'float64' });
}

/**
 * A copy of `v` with every non-integer number (NaN and infinities included) replaced by a 0-dim float64 tensor;
 * tensors, strings, booleans, null and integers as they are; Maps, arrays, tuples and plain objects rebuilt.
 */
export function encodeFloats(v: unknown): unknown {
  if (typeof v === 'number') return Number.isInteger(v) ? v : floatTensor(v);
  if (v === null || typeof v !== 'object' || v instanceof Tensor || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    const items = v.map(encodeFloats);
    return isPyTuple(v) ? pyTuple(items) : items;
  }
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, encodeFloats(x)]));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeFloats(x)]));
}

const isFloatScalar = (v: unknown): v is Tensor => v instanceof Tensor && v.dtype === 'float64' && v.ndim === 0;

/**
 * The inverse of encodeFloats for what this project writes: 0-dim float64 tensors become numbers; dicts whose keys
 * are all strings and whose values are not all tensors become plain objects (state dicts and dicts keyed by ints,
 * such as the optimizer's `state`, stay Maps). `keep(path)` true leaves a subtree exactly as read.
 */
export function decodeFloats(v: unknown, keep: (path: string[]) => boolean = () => false, path: string[] = []): unknown {
  if (keep(path)) return v;
  if (isFloatScalar(v)) return v.item();
  if (v === null || typeof v !== 'object' || v instanceof Tensor || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    const items = v.map((x, i) => decodeFloats(x, keep, [...path, String(i)]));
    return isPyTuple(v) ? pyTuple(items) : items;
  }
  if (v instanceof Map) {
    const entries = [...v].map(([k, x]) => [k, decodeFloats(x, keep, [...path, String(k)])] as [unknown, unknown]);
    const stringKeys = entries.every(([k]) => typeof k === 'string');
    const allTensors = entries.length > 0 && entries.every(([, x]) => x instanceof Tensor);
    return stringKeys && !allTensors ? Object.fromEntries(entries) : new Map(entries);
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v; // a class instance (a reader's PthStorage, ...)
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeFloats(x, keep, [...path, k])]));
}

/** Subtrees loadCheckpoint leaves as read: the weights and the optimizer's per-parameter tensors. */
function keepAsRead(path: string[]): boolean {
  return (path.length === 1 && path[0] === 'model_state_dict') || (path.length === 2 && path[0] === 'optimizer_state_dict' && path[1] === 'state');
}

/** Write a checkpoint (any object; floats encoded as described at the top) atomically to `path`. */
export function saveCheckpoint(path: string, ckpt: Record<string, unknown> | Map<string, unknown>): void {
  writePthSync(path, encodeFloats(ckpt));
}

/**
 * Read a checkpoint written by saveCheckpoint (or any torch.save'd dict) with floats decoded; the top level is a
 * plain object, so the tutorial's `ckpt.model_state_dict` works. Fields this project writes are checked when present.
 */
export function loadCheckpoint(path: string): TrainCheckpoint {
  const obj = decodeFloats(readPthSync(path).object, keepAsRead);
  if (obj === null || typeof obj !== 'object' || obj instanceof Map || Array.isArray(obj) || obj instanceof Tensor) {
    throw new TypeError(`${path}: expected a checkpoint dict ({model_state_dict, optimizer_state_dict, epoch, ...}) but the file holds ${obj instanceof Map ? 'a dict with non-string keys' : Array.isArray(obj) ? 'a list' : typeof obj}`);
  }
  const c = obj as Record<string, unknown>;
  const sd = c.model_state_dict;
  if (!(sd instanceof Map) || ![...sd.values()].every((t) => t instanceof Tensor)) {
    throw new TypeError(`${path}: expected model_state_dict to be a dict of tensors${sd === undefined ? ' but the checkpoint has no model_state_dict' : ''}`);
  }
  for (const k of ['epoch', 'batch', 'global_step', 'seed']) {
    if (c[k] !== undefined && !Number.isSafeInteger(c[k])) throw new TypeError(`${path}: expected an integer for ${k} but found ${String(c[k])}`);
  }
  return c as TrainCheckpoint;
}

/** Copy `src` to `dst` atomically (a temp file beside dst, fsync, then rename): best.pth from last.pth. */
export function copyFileAtomicSync(src: string, dst: string): void {
  const tmp = join(dirname(dst), `.${basename(dst)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    copyFileSync(src, tmp);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd); // on disk before the rename makes it visible, as writeFileAtomicSync does
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, dst);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    throw new Error(`cannot copy ${src} to ${dst}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Remove temp files that an atomic write of `name` left in `dir` when its process was killed
 * (.name.<pid>.<hex>.tmp, io/tensor-bytes.ts's naming), unless that process is still alive.
 */
export function removeStaleTemps(dir: string, name: string): string[] {
  const pattern = new RegExp(`^\\.${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.[0-9a-f]+\\.tmp$`);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const f of names) {
    const m = pattern.exec(f);
    if (!m || isAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, f));
      removed.push(f);
    } catch {
      // raced with another cleaner: fine
    }
  }
  return removed;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

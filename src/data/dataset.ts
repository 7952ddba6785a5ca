// Datasets: what the data loader reads, as torch.utils.data.Dataset (a length and an indexed get), plus the pieces
// the loader and its worker threads share: per-sample seeds, loading a batch of samples and collating it.
//
// A sample is { input, label }: input a float tensor (an image as (C, H, W)), label an integer class index. get()
// may be synchronous (Fashion-MNIST, in memory) or asynchronous (ImageFolder decodes files). It receives a
// SampleContext whose generator is seeded from (loader seed, epoch, sample index) alone, so random augmentation is
// the same whichever thread loads the sample and in whatever order.
//
// To be loaded in worker threads a dataset must be rebuildable there: workerRecipe() names a module, an exported
// factory and structured-cloneable options (SharedArrayBuffers are shared, not copied), and the worker calls
// `(await import(module))[export](options)`. Datasets whose transform is a function (not TransformSpec data)
// cannot say how to rebuild it; the loader then needs a recipe from the caller or numWorkers 0.

import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';

export interface Sample {
  /** A float tensor, e.g. an image (C, H, W); every sample of a batch must have the same shape. */
  input: Tensor;
  /** Class index. */
  label: number;
}

export interface SampleContext {
  /** This sample's own generator, for random augmentation. */
  rng: Generator;
  epoch: number;
  index: number;
}

/** How a worker thread rebuilds a dataset: `(await import(module))[export](options)`. */
export interface WorkerRecipe {
  /** A file: URL (import.meta.url) or an absolute path. */
  module: string;
  export: string;
  /** Structured-cloneable; typed arrays over SharedArrayBuffers are shared with the worker. */
  options?: unknown;
}

export interface Dataset {
  readonly length: number;
  get(index: number, ctx?: SampleContext): Sample | Promise<Sample>;
  /** How a worker thread rebuilds this dataset, or null when it cannot be (e.g. a function transform). */
  workerRecipe?(): WorkerRecipe | null;
}

/** Throws unless i is an integer in [0, n). */
export function checkIndex(i: number, n: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`index ${i} is out of range for ${what} of ${n} samples`);
}

function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** A 32-bit seed from a (up to 53-bit) seed and any number of small non-negative integers (epoch, index, salt). */
export function deriveSeed(seed: number, ...parts: number[]): number {
  let h = mix(mix(0x9e3779b9, seed >>> 0), Math.floor(seed / 4294967296) >>> 0);
  for (const p of parts) h = mix(h, p);
  return h;
}

/** The generator sample `index` gets in `epoch` (independent of workers, batch size and order). */
export function sampleGenerator(seed: number, epoch: number, index: number): Generator {
  return new Generator(deriveSeed(seed, 1, epoch, index));
}

/** A collated batch as transferable arrays: inputs (N, ...) float32 and labels (N) int64. */
export interface RawBatch {
  input: Float32Array;
  shape: number[];
  labels: BigInt64Array;
}

/** Stack samples into a batch, checking shapes and labels (errors name the sample's dataset index). */
export function collate(samples: readonly Sample[], indices: readonly number[]): RawBatch {
  if (samples.length === 0) throw new RangeError('cannot collate an empty batch');
  const first = samples[0].input;
  const per = first.numel;
  const input = new Float32Array(per * samples.length);
  const labels = new BigInt64Array(samples.length);
  samples.forEach((s, k) => {
    const at = `sample ${indices[k]}`;
    if (!s || !(s.input instanceof Tensor)) throw new TypeError(`${at}: expected { input: Tensor, label: number } from the dataset but received ${String(s)}`);
    if (s.input.shape.length !== first.shape.length || s.input.shape.some((d, i) => d !== first.shape[i])) {
      throw new RangeError(`${at}: input of shape [${s.input.shape}] cannot be batched with shape [${first.shape}] (sample ${indices[0]}); make every sample the same size (e.g. with a crop)`);
    }
    if (!Number.isInteger(s.label) || s.label < 0) throw new RangeError(`${at}: expected a non-negative integer label but received ${String(s.label)}`);
    const src = s.input.contiguousData();
    if (src instanceof Float32Array) input.set(src, k * per);
    else for (let i = 0; i < per; i++) input[k * per + i] = Number(src[i]);
    labels[k] = BigInt(s.label);
  });
  return { input, shape: [samples.length, ...first.shape], labels };
}

/** Load the samples `indices` of `epoch` (concurrently when get is async) and collate them. */
export async function loadBatch(ds: Dataset, indices: readonly number[], epoch: number, seed: number): Promise<RawBatch> {
  const samples = await Promise.all(indices.map(async (index) => {
    try {
      return await ds.get(index, { rng: sampleGenerator(seed, epoch, index), epoch, index });
    } catch (err) {
      const e = err as Error;
      throw new Error(`loading sample ${index}: ${e.message}`, { cause: err });
    }
  }));
  return collate(samples, indices);
}

/** A Uint8Array copy of `src` in shared memory (so worker threads see it without a copy). */
export function sharedCopy(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(new SharedArrayBuffer(src.length));
  out.set(src);
  return out;
}

/** The samples `indices` of another dataset (a train/validation split, a quick run on part of the data). */
export class Subset implements Dataset {
  readonly indices: readonly number[];

  constructor(readonly dataset: Dataset, indices: Iterable<number>) {
    this.indices = [...indices];
    for (const i of this.indices) checkIndex(i, dataset.length, 'the dataset of a Subset');
  }

  get length(): number {
    return this.indices.length;
  }

  get(i: number, ctx?: SampleContext): Sample | Promise<Sample> {
    checkIndex(i, this.indices.length, 'Subset');
    return this.dataset.get(this.indices[i], ctx);
  }

  workerRecipe(): WorkerRecipe | null {
    const inner = this.dataset.workerRecipe?.() ?? null;
    return inner && { module: import.meta.url, export: 'subsetFromRecipe', options: { inner, indices: this.indices } };
  }
}

/** Worker-side factory for Subset: rebuild the inner dataset, then select. */
export async function subsetFromRecipe(o: { inner: WorkerRecipe; indices: number[] }): Promise<Subset> {
  return new Subset(await buildFromRecipe(o.inner), o.indices);
}

/** `(await import(module))[export](options)`, checked (what a worker thread does with a recipe). */
export async function buildFromRecipe(recipe: WorkerRecipe): Promise<Dataset> {
  const url = isAbsolute(recipe.module) ? pathToFileURL(recipe.module).href : recipe.module;
  const mod = (await import(url)) as Record<string, unknown>;
  const factory = mod[recipe.export];
  if (typeof factory !== 'function') throw new TypeError(`the worker recipe's module ${recipe.module} has no exported function ${recipe.export}`);
  const ds = (await factory(recipe.options)) as Dataset;
  if (!ds || typeof ds.get !== 'function' || !Number.isInteger(ds.length)) throw new TypeError(`${recipe.module}#${recipe.export} did not return a dataset (length and get)`);
  return ds;
}

// DataLoader: batches of a Dataset, as torch.utils.data.DataLoader: batchSize, seeded shuffle, dropLast, collation
// to an (N, C, H, W) float32 input and int64 labels, and prefetching in worker threads.
//
// Determinism: an epoch's order is a Fisher-Yates shuffle by a generator seeded from (seed, epoch), and every sample
// is loaded with its own generator seeded from (seed, epoch, index) (dataset.ts), so batches are identical for any
// numWorkers and batch k of an epoch can be produced without the batches before it: iterate({ epoch, startBatch })
// resumes an epoch exactly where a killed run stopped. Plain `for await (const b of loader)` runs the next epoch
// (0, 1, 2, ...: each gets its own shuffle, as a torch DataLoader's generator advances); setEpoch(e) chooses it.
//
// Workers (numWorkers > 0): each thread rebuilds the dataset from its workerRecipe() (or options.workerRecipe),
// loads and augments whole batches and sends them back as transferred buffers; batch b goes to worker b % n, and up
// to prefetch batches per worker are in flight while the caller computes. Workers live until close() (they do not
// keep the process alive while idle). With numWorkers 0 batches are loaded inline, on demand.

import { Worker } from 'node:worker_threads';
import { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { deriveSeed, loadBatch, type Dataset, type RawBatch, type WorkerRecipe } from './dataset.js';

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  /** Seeds the shuffles and every sample's augmentation (default 0). */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
  /** Worker threads that load batches (0: load inline on the calling thread). */
  numWorkers?: number;
  /** Batches in flight per worker (default 2). */
  prefetch?: number;
  /** How workers rebuild the dataset, when the dataset itself cannot say (see dataset.ts). */
  workerRecipe?: WorkerRecipe;
}

export interface Batch {
  /** (N, ...sample shape) float32. */
  input: Tensor;
  /** (N) int64 class indices. */
  label: Tensor;
  /** The dataset indices of the samples, in batch order. */
  indices: number[];
  epoch: number;
  /** This batch's position in its epoch. */
  batch: number;
}

export class DataLoader {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly numWorkers: number;
  readonly prefetch: number;
  /** The epoch the next plain iteration runs. */
  epoch = 0;
  private readonly recipe: WorkerRecipe | null;
  private pool: WorkerPool | null = null;

  constructor(dataset: Dataset, o: DataLoaderOptions = {}) {
    if (!dataset || !Number.isInteger(dataset.length) || dataset.length < 0 || typeof dataset.get !== 'function') {
      throw new TypeError('Expected a dataset with an integer length and a get(index) method');
    }
    const posInt = (v: number | undefined, d: number, name: string, min = 1) => {
      const x = v ?? d;
      if (!Number.isInteger(x) || x < min) throw new RangeError(`Expected an integer >= ${min} for ${name} but received ${String(v)}`);
      return x;
    };
    this.dataset = dataset;
    this.batchSize = posInt(o.batchSize, 1, 'batchSize');
    this.shuffle = o.shuffle ?? false;
    this.seed = o.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) throw new RangeError(`Expected a non-negative integer for seed but received ${String(o.seed)}`);
    this.dropLast = o.dropLast ?? false;
    this.numWorkers = posInt(o.numWorkers, 0, 'numWorkers', 0);
    this.prefetch = posInt(o.prefetch, 2, 'prefetch');
    this.recipe = o.workerRecipe ?? dataset.workerRecipe?.() ?? null;
    if (this.numWorkers > 0 && !this.recipe) {
      throw new TypeError(`numWorkers ${this.numWorkers} needs a dataset that worker threads can rebuild, but ${dataset.constructor.name} has no workerRecipe() ` +
        '(a transform given as a function cannot be sent to a worker): give the transform as TransformSpec data, pass options.workerRecipe, or use numWorkers 0');
    }
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  setEpoch(epoch: number): void {
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`Expected a non-negative integer epoch but received ${epoch}`);
    this.epoch = epoch;
  }

  /** The dataset indices in the order `epoch` visits them. */
  order(epoch: number): Uint32Array {
    const n = this.dataset.length;
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    if (!this.shuffle) return idx;
    const g = new Generator(deriveSeed(this.seed, 0, epoch));
    for (let i = n - 1; i > 0; i--) {
      const j = g.randint(i + 1);
      const t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
    return idx;
  }

  /** Run the next epoch (this.epoch, then advance it). */
  [Symbol.asyncIterator](): AsyncGenerator<Batch> {
    const epoch = this.epoch;
    this.epoch = epoch + 1;
    return this.iterate({ epoch });
  }

  /** Batches startBatch.. of `epoch` (default this.epoch), exactly as a full pass over that epoch yields them. */
  async *iterate(o: { epoch?: number; startBatch?: number } = {}): AsyncGenerator<Batch> {
    const epoch = o.epoch ?? this.epoch;
    const start = o.startBatch ?? 0;
    const nb = this.length;
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`Expected a non-negative integer epoch but received ${String(o.epoch)}`);
    if (!Number.isInteger(start) || start < 0 || start > nb) throw new RangeError(`Expected startBatch in 0..${nb} (batches per epoch) but received ${String(o.startBatch)}`);
    const order = this.order(epoch);
    const indicesOf = (b: number) => Array.from(order.subarray(b * this.batchSize, Math.min(order.length, (b + 1) * this.batchSize)));
    const wrap = (raw: RawBatch, b: number): Batch => ({
      input: new Tensor(raw.input, raw.shape), label: new Tensor(raw.labels, [raw.labels.length]), indices: indicesOf(b), epoch, batch: b,
    });
    if (this.numWorkers === 0) {
      for (let b = start; b < nb; b++) yield wrap(await loadBatch(this.dataset, indicesOf(b), epoch, this.seed), b);
      return;
    }
    if (this.pool?.broken) await this.close(); // a crashed worker: start afresh
    const pool = (this.pool ??= new WorkerPool(this.recipe!, this.numWorkers));
    const inflight = new Map<number, Promise<RawBatch>>();
    let next = start;
    const fill = () => {
      while (next < nb && inflight.size < this.numWorkers * this.prefetch) {
        const p = pool.run(next % this.numWorkers, indicesOf(next), epoch, this.seed);
        p.catch(() => {}); // observed when its turn comes; never an unhandled rejection meanwhile
        inflight.set(next, p);
        next++;
      }
    };
    try {
      for (let b = start; b < nb; b++) {
        fill();
        const raw = await inflight.get(b)!;
        inflight.delete(b);
        fill();
        yield wrap(raw, b);
      }
    } finally {
      pool.forget(); // results of batches still in flight (after a break) are dropped
    }
  }

  /** Stop the worker threads (a later iteration starts new ones). */
  async close(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    if (p) await p.close();
  }
}

interface Job { resolve: (r: RawBatch) => void; reject: (e: Error) => void; worker: number }

/** numWorkers threads running loader-worker.js; jobs tagged by id, the threads unref'd while idle. */
class WorkerPool {
  private readonly workers: Worker[];
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  broken: Error | null = null;

  constructor(recipe: WorkerRecipe, n: number) {
    this.workers = Array.from({ length: n }, (_, w) => {
      const worker = new Worker(new URL('./loader-worker.js', import.meta.url), { workerData: { recipe } });
      worker.unref();
      worker.on('message', (m: { id: number; ok: boolean; batch?: RawBatch; error?: string }) => {
        const job = this.jobs.get(m.id);
        if (!job) return;
        this.jobs.delete(m.id);
        this.idle();
        if (m.ok) job.resolve(m.batch!);
        else job.reject(new Error(`data loader worker ${w}: ${m.error}`));
      });
      const fail = (err: Error) => {
        this.broken = err;
        for (const [id, job] of this.jobs) {
          if (job.worker !== w) continue;
          this.jobs.delete(id);
          job.reject(err);
        }
        this.idle();
      };
      worker.on('error', (err) => fail(new Error(`data loader worker ${w} crashed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => fail(new Error(`data loader worker ${w} exited (code ${code})`)));
      return worker;
    });
  }

  run(w: number, indices: number[], epoch: number, seed: number): Promise<RawBatch> {
    if (this.broken) return Promise.reject(this.broken);
    const id = this.nextId++;
    return new Promise<RawBatch>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, worker: w });
      if (this.jobs.size === 1) for (const x of this.workers) x.ref();
      this.workers[w].postMessage({ id, indices, epoch, seed });
    });
  }

  /** Drop pending jobs (their results are ignored when they arrive). */
  forget(): void {
    this.jobs.clear();
    this.idle();
  }

  private idle(): void {
    if (this.jobs.size === 0) for (const x of this.workers) x.unref();
  }

  async close(): Promise<void> {
    this.forget();
    this.broken = new Error('the data loader was closed');
    // a worker that was unref'd does not keep the event loop alive until it has exited (even after ref()): hold it
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await Promise.all(this.workers.map((w) => w.terminate()));
    } finally {
      clearInterval(keepAlive);
    }
  }
}

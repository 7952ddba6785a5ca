// Inputs to model-ready arrays, off the caller's thread: decode (paths and encoded bytes through sharp, data/image.ts)
// and preprocess (preprocess.ts) each item of a batch, and report every failure as that item's error message (which
// names the file) instead of failing the batch.
//
// Two ways to run, same results:
// - workers > 0 (the default when the preprocessing is data): worker threads (decode-worker.ts) read, decode and
//   preprocess whole batches and send back the float32 arrays (transferred, not copied). The caller's thread is free
//   while they work, so the next batch is prepared while the current one computes (compute is synchronous).
// - workers = 0, or a preprocess function (which cannot be sent to a worker): on the calling thread; file reads and
//   sharp's decoding still run on libuv's threads, the resize and normalisation on this one.
// Workers are started on first use, keep the process alive only while they have work, and end with close().

import { Worker } from 'node:worker_threads';
import { type ReadImageOptions, type RgbImage, isRgbImage, readImage } from '../data/image.js';
import { type PreprocessFn, type PreprocessSpec, makePreprocessFn } from './preprocess.js';

/** A file path, encoded image bytes (JPEG/PNG/WebP/GIF/TIFF), or decoded pixels. */
export type InferInput = string | Uint8Array | RgbImage;

/** One item of a batch: the input and the name its results and errors use. */
export interface Item {
  input: InferInput;
  name: string;
}

/** A preprocessed input (3, H, W) float32, or why there is none. */
export type Prepared = { ok: true; data: Float32Array; shape: number[] } | { ok: false; error: string };

/** The name of input i: its path, or "<bytes i>" / "<image i>". */
export function inputName(input: InferInput, i: number): string {
  if (typeof input === 'string') return input;
  if (isRgbImage(input)) return `<image ${i}>`;
  if (input instanceof Uint8Array) return `<bytes ${i}>`;
  throw new TypeError(`Expected a file path, a Uint8Array/Buffer of encoded image bytes or an RgbImage for input ${i} but received ${String(input)} of type ${typeof input}`);
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Decode and preprocess one item; every failure becomes { ok: false, error } whose message names the item. */
export async function prepareOne(item: Item, fn: PreprocessFn, read: ReadImageOptions): Promise<Prepared> {
  let img: RgbImage;
  try {
    img = isRgbImage(item.input) ? item.input : await readImage(item.input, { ...read, name: item.name });
  } catch (e) {
    const m = message(e);
    return { ok: false, error: m.startsWith(item.name) ? m : `${item.name}: ${m}` };
  }
  try {
    const t = fn(img);
    if (t?.dtype !== 'float32' || t.ndim !== 3) throw new TypeError(`preprocessing gave ${t?.dtype} [${t?.shape}], expected a float32 (C, H, W) tensor`);
    const d = t.contiguousData() as Float32Array;
    const data = d.byteOffset === 0 && d.byteLength === d.buffer.byteLength ? d : d.slice(); // whole buffer: transferable
    return { ok: true, data, shape: [...t.shape] };
  } catch (e) {
    return { ok: false, error: `${item.name}: cannot preprocess the image: ${message(e)}` };
  }
}

interface Job {
  resolve: (r: Prepared[]) => void;
  reject: (e: Error) => void;
}

class DecodeWorker {
  readonly worker: Worker;
  readonly jobs = new Map<number, Job>();
  failure: Error | null = null;

  constructor(spec: PreprocessSpec, read: ReadImageOptions) {
    this.worker = new Worker(new URL('./decode-worker.js', import.meta.url), { workerData: { spec, read } });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; results: Prepared[] }) => {
      const job = this.jobs.get(m.id);
      if (!job) return;
      this.jobs.delete(m.id);
      if (this.jobs.size === 0) this.worker.unref();
      job.resolve(m.results);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const j of this.jobs.values()) j.reject(e);
      this.jobs.clear();
      this.worker.unref();
    };
    this.worker.on('error', (e) => fail(new Error(`the image decoding worker failed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => fail(new Error(`the image decoding worker exited (code ${code})`)));
  }

  run(id: number, items: Item[]): Promise<Prepared[]> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      if (this.jobs.size === 0) this.worker.ref();
      this.jobs.set(id, { resolve, reject });
      this.worker.postMessage({ id, items });
    });
  }
}

export class Decoder {
  readonly #fn: PreprocessFn;
  readonly #spec: PreprocessSpec | null;
  readonly #read: ReadImageOptions;
  readonly #nWorkers: number;
  #workers: DecodeWorker[] = [];
  #nextJob = 0;

  /** `workers` is ignored (0) for a preprocess function. */
  constructor(spec: PreprocessSpec | PreprocessFn, read: ReadImageOptions = {}, workers = 1) {
    this.#fn = makePreprocessFn(spec);
    this.#spec = typeof spec === 'function' ? null : spec;
    this.#read = read;
    this.#nWorkers = this.#spec ? workers : 0;
  }

  /** Worker threads in use (0: the calling thread). */
  get workers(): number {
    return this.#nWorkers;
  }

  /** Decode and preprocess a batch; results in item order. Rejects only if a worker dies. */
  prepare(items: Item[]): Promise<Prepared[]> {
    if (this.#nWorkers === 0) return Promise.all(items.map((it) => prepareOne(it, this.#fn, this.#read)));
    if (this.#workers.length === 0) this.#workers = Array.from({ length: this.#nWorkers }, () => new DecodeWorker(this.#spec!, this.#read));
    const id = this.#nextJob++;
    return this.#workers[id % this.#workers.length].run(id, items);
  }

  /** Stop the worker threads (they are started again if prepare is called later). */
  async close(): Promise<void> {
    const ws = this.#workers;
    this.#workers = [];
    await Promise.all(ws.map((w) => w.worker.terminate()));
  }
}

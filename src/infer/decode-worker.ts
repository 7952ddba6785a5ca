// The image decoding worker thread (decode.ts starts it): builds the preprocessing from the spec in workerData, then
// for each job { id, items } decodes and preprocesses the items concurrently (prepareOne) and posts
// { id, results } back with the float32 arrays transferred.

import { parentPort, workerData } from 'node:worker_threads';
import type { ReadImageOptions } from '../data/image.js';
import { type Item, prepareOne } from './decode.js';
import { type PreprocessSpec, makePreprocessFn } from './preprocess.js';

const { spec, read } = workerData as { spec: PreprocessSpec; read: ReadImageOptions };
const fn = makePreprocessFn(spec);

parentPort!.on('message', async (job: { id: number; items: Item[] }) => {
  const results = await Promise.all(job.items.map((it) => prepareOne(it, fn, read)));
  const transfer = results.flatMap((r) => (r.ok ? [r.data.buffer as ArrayBuffer] : []));
  parentPort!.postMessage({ id: job.id, results }, transfer);
});

// A data loader worker thread (loader.ts starts it): rebuilds the dataset from the recipe in workerData, then for
// each job { id, indices, epoch, seed } loads and collates those samples exactly as the main thread would
// (dataset.ts's loadBatch) and posts { id, ok, batch } back with the batch's buffers transferred.

import { parentPort, workerData } from 'node:worker_threads';
import { buildFromRecipe, loadBatch, type WorkerRecipe } from './dataset.js';

const dataset = buildFromRecipe((workerData as { recipe: WorkerRecipe }).recipe);
dataset.catch(() => {}); // reported with each job

parentPort!.on('message', async (job: { id: number; indices: number[]; epoch: number; seed: number }) => {
  try {
    const batch = await loadBatch(await dataset, job.indices, job.epoch, job.seed);
    parentPort!.postMessage({ id: job.id, ok: true, batch }, [batch.input.buffer as ArrayBuffer, batch.labels.buffer as ArrayBuffer]);
  } catch (err) {
    const e = err as Error;
    parentPort!.postMessage({ id: job.id, ok: false, error: e?.message ?? String(err) });
  }
});

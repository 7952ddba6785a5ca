// DataLoader and ImageFolder: collation (N, C, H, W) float32 + int64 labels, batch counts with and without dropLast,
// seeded shuffles (a permutation, new each epoch, the same for the same seed and epoch), batches identical for
// numWorkers 0 and 2 (augmentation included), an epoch resumed at batch k equal to the tail of the full epoch,
// errors from samples and workers; ImageFolder's listing equal to torchvision's (scripts/fixtures/make_augment.py's
// folder/) and its ToTensor samples byte-equal to torchvision's.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Subset } from '../../src/data/dataset.js';
import { FashionMNIST } from '../../src/data/fashion-mnist.js';
import { ImageFolder } from '../../src/data/image-folder.js';
import { DataLoader, type Batch } from '../../src/data/loader.js';
import type { TransformSpec } from '../../src/data/augment.js';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { fixture } from '../helpers.js';
import { Synthetic } from './loader-datasets.js';

const AUG: TransformSpec[] = [
  { name: 'RandomCrop', size: 28, padding: 4 }, { name: 'RandomHorizontalFlip' }, { name: 'ToTensor' }, { name: 'Normalize', mean: [0.286], std: [0.353] },
];

let fm: FashionMNIST | null = null;
const fashion = (transform: TransformSpec[] = AUG) => new FashionMNIST({ train: false, transform }, fm ? { images: fm.images, labels: fm.labels, count: fm.length, root: fm.root, train: false } : undefined);
fm = fashion();

async function collect(it: AsyncIterable<Batch>): Promise<{ input: number[]; label: number[]; indices: number[]; shape: number[]; batch: number; epoch: number }[]> {
  const out = [];
  for await (const b of it) out.push({ input: b.input.toArray(), label: b.label.toArray(), indices: b.indices, shape: [...b.input.shape], batch: b.batch, epoch: b.epoch });
  return out;
}

test('collation, batch counts, dropLast and seeded shuffles', async () => {
  const ds = new Subset(fm!, Array.from({ length: 100 }, (_, i) => i));
  const dl = new DataLoader(ds, { batchSize: 32 });
  assert.equal(dl.length, 4);
  const batches = [];
  for await (const b of dl) batches.push(b);
  assert.deepEqual(batches.map((b) => [...b.input.shape]), [[32, 1, 28, 28], [32, 1, 28, 28], [32, 1, 28, 28], [4, 1, 28, 28]]);
  assert.equal(batches[0].input.dtype, 'float32');
  assert.equal(batches[0].label.dtype, 'int64');
  assert.deepEqual([...batches[3].label.shape], [4]);
  assert.deepEqual(batches.flatMap((b) => b.indices), Array.from({ length: 100 }, (_, i) => i), 'no shuffle: dataset order');
  assert.deepEqual(batches[0].label.toArray(), Array.from(fm!.labels.subarray(0, 32)));
  const dropped = new DataLoader(ds, { batchSize: 32, dropLast: true });
  assert.equal(dropped.length, 3);
  assert.equal((await collect(dropped)).length, 3);

  const sh = new DataLoader(new Synthetic({ length: 50 }), { batchSize: 8, shuffle: true, seed: 3 });
  const e0 = [...sh.order(0)], e1 = [...sh.order(1)];
  assert.deepEqual([...e0].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i), 'a permutation');
  assert.notDeepEqual(e0, e1, 'each epoch its own order');
  assert.deepEqual(e0, [...new DataLoader(new Synthetic({ length: 50 }), { shuffle: true, seed: 3 }).order(0)], 'same seed, same order');
  assert.notDeepEqual(e0, [...new DataLoader(new Synthetic({ length: 50 }), { shuffle: true, seed: 4 }).order(0)], 'another seed, another order');
  // plain iteration runs epoch 0, then 1, ...; setEpoch picks one
  const first = await collect(sh), second = await collect(sh);
  assert.deepEqual([first[0].epoch, second[0].epoch], [0, 1]);
  assert.deepEqual(first.flatMap((b) => b.indices), e0);
  assert.deepEqual(second.flatMap((b) => b.indices), e1);
  sh.setEpoch(0);
  assert.deepEqual((await collect(sh)).flatMap((b) => b.indices), e0);
});

test('numWorkers 0 and 2 give identical batches (order and augmentation); resume at batch k equals the epoch\'s tail', async (t) => {
  const ds = new Subset(fm!, Array.from({ length: 300 }, (_, i) => (i * 31) % 10000));
  const inline = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 11 });
  const workers = new DataLoader(ds, { batchSize: 32, shuffle: true, seed: 11, numWorkers: 2 });
  try {
    for (const epoch of [0, 1]) {
      const a = await collect(inline.iterate({ epoch }));
      const b = await collect(workers.iterate({ epoch }));
      assert.equal(a.length, 10);
      assert.deepEqual(b, a, `epoch ${epoch}: workers and inline agree`);
      const tailA = await collect(inline.iterate({ epoch, startBatch: 4 }));
      const tailB = await collect(workers.iterate({ epoch, startBatch: 4 }));
      assert.deepEqual(tailA, a.slice(4), `epoch ${epoch}: resumed inline`);
      assert.deepEqual(tailB, a.slice(4), `epoch ${epoch}: resumed with workers`);
    }
    const e0 = await collect(inline.iterate({ epoch: 0 })), e1 = await collect(inline.iterate({ epoch: 1 }));
    const s0 = e0[0].indices[0];
    const pos1 = e1.flatMap((b) => b.indices).indexOf(s0);
    const x0 = e0[0].input.slice(0, 784), x1 = e1[Math.floor(pos1 / 32)].input.slice((pos1 % 32) * 784, (pos1 % 32 + 1) * 784);
    assert.notDeepEqual(x0, x1, 'a sample is augmented differently in another epoch');
    // an early break leaves the loader usable
    for await (const b of workers.iterate({ epoch: 0 })) if (b.batch === 1) break;
    assert.equal((await collect(workers.iterate({ epoch: 0, startBatch: 9 }))).length, 1);
    await assert.rejects(workers.iterate({ startBatch: 11 }).next(), /startBatch in 0\.\.10/);

    // throughput, reported: the same 4096 augmented samples inline and with 2 workers
    const big = new Subset(fm!, Array.from({ length: 4096 }, (_, i) => i));
    for (const n of [0, 2]) {
      const dl = new DataLoader(big, { batchSize: 128, shuffle: true, numWorkers: n });
      const t0 = performance.now();
      let count = 0;
      for await (const b of dl) count += b.indices.length;
      t.diagnostic(`numWorkers ${n}: ${count} Fashion-MNIST samples (crop+flip+normalize) in ${(performance.now() - t0).toFixed(0)} ms`);
      await dl.close();
    }
  } finally {
    await workers.close();
  }
});

test('errors: a failing sample (inline, in a worker), a function transform with workers, async datasets, close()', async () => {
  await assert.rejects(collect(new DataLoader(new Synthetic({ length: 20, failAt: 7 }), { batchSize: 4 })), /loading sample 7: synthetic failure at 7/);
  const dl = new DataLoader(new Synthetic({ length: 20, failAt: 7 }), { batchSize: 4, numWorkers: 2 });
  try {
    await assert.rejects(collect(dl), /data loader worker 1: loading sample 7: synthetic failure at 7/);
  } finally {
    await dl.close();
  }
  const fn = new FashionMNIST({ train: false, transform: (img) => { void img; throw new Error('x'); } }, { images: fm!.images, labels: fm!.labels, count: fm!.length, root: fm!.root, train: false });
  assert.throws(() => new DataLoader(fn, { numWorkers: 2 }), /FashionMNIST has no workerRecipe\(\) .* give the transform as TransformSpec data, pass options.workerRecipe, or use numWorkers 0/);
  // an async dataset (samples resolve out of order) with a caller-given recipe
  const syn = new Synthetic({ length: 30, async: true });
  const a = new DataLoader(syn, { batchSize: 4, shuffle: true, seed: 5 });
  const b = new DataLoader(syn, { batchSize: 4, shuffle: true, seed: 5, numWorkers: 2, prefetch: 1, workerRecipe: syn.workerRecipe() });
  try {
    const x = await collect(a), y = await collect(b);
    assert.deepEqual(y, x);
    assert.deepEqual(x[0].input.slice(0, 3), [x[0].indices[0], x[0].input[1], 0], 'sample carries its index and epoch');
  } finally {
    await b.close();
  }
  await b.close(); // twice is fine
  assert.throws(() => new DataLoader(syn, { batchSize: 0 }), /integer >= 1 for batchSize/);
});

test('ImageFolder lists files as torchvision does and decodes them to its ToTensor values; loads through workers', async () => {
  const root = fixture('augment', 'folder');
  const ref = JSON.parse(readFileSync(fixture('augment', 'folder.json'), 'utf8')) as { classes: string[]; class_to_idx: Record<string, number>; samples: [string, number][]; targets: number[] };
  const ds = new ImageFolder(root);
  assert.deepEqual(ds.classes, ref.classes);
  assert.deepEqual(Object.fromEntries(ds.classToIdx), ref.class_to_idx);
  assert.deepEqual(ds.samples.map(([p, c]) => [relative(root, p), c]), ref.samples);
  assert.deepEqual(ds.targets, ref.targets);
  const tensors = readSafetensorsSync(fixture('augment', 'folder.safetensors')).tensors;
  for (let i = 0; i < ds.length; i++) {
    const s = await ds.get(i);
    const want = tensors.get(`sample.${i}`)!;
    assert.deepEqual([...s.input.shape], [...want.shape], `sample ${i} shape`);
    assert.deepEqual(s.input.toArray(), want.toArray(), `sample ${i} (${ds.samples[i][0]}) equals torchvision's ToTensor`);
    assert.equal(s.label, ref.targets[i]);
  }
  await assert.rejects(collect(new DataLoader(ds, { batchSize: 4 })), /cannot be batched with shape .* make every sample the same size/);
  const spec: TransformSpec[] = [{ name: 'RandomResizedCrop', size: 6, scale: [0.3, 1] }, { name: 'RandomHorizontalFlip' }];
  const aug = new ImageFolder(root, { transform: spec });
  const w = new DataLoader(aug, { batchSize: 3, shuffle: true, numWorkers: 2 });
  try {
    const x = await collect(new DataLoader(aug, { batchSize: 3, shuffle: true })), y = await collect(w);
    assert.deepEqual(y, x);
    assert.deepEqual(x[0].shape, [3, 3, 6, 6]);
  } finally {
    await w.close();
  }
  assert.throws(() => new ImageFolder(join(root, 'cat', 'sub', 'deeper')), /Couldn't find any class folder/);
  assert.throws(() => new ImageFolder(root, { extensions: ['.gif'] }), /Found no valid file for the classes Dog, a-b, bird, cat, zz\. Supported extensions are: \.gif/);
});

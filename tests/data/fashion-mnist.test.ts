// Fashion-MNIST from Debian's dataset-fashion-mnist files (/usr/share/datasets/fashion-mnist) against what Python
// reads from them (scripts/fixtures/make_augment.py: gzip + numpy; torchvision's class names): counts, labels,
// pixel sums, the label histogram; uncompressed files and torchvision's FashionMNIST/raw layout; and the errors for
// a missing folder, a truncated file, a wrong magic and mismatched counts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, FashionMNIST, parseIdx } from '../../src/data/fashion-mnist.js';
import { Generator } from '../../src/tensor/random.js';
import { fixture } from '../helpers.js';

interface Split { count: number; shape: number[]; labels: number[]; sum_first: number; sum_last: number; label_counts: number[] }
const ref = JSON.parse(readFileSync(fixture('augment', 'fmnist.json'), 'utf8')) as { classes: string[]; train: Split; t10k: Split };

function sum(a: Uint8Array): number {
  let s = 0;
  for (const v of a) s += v;
  return s;
}

function check(ds: FashionMNIST, r: Split, what: string): void {
  assert.equal(ds.length, r.count, `${what}: count`);
  assert.deepEqual(Array.from(ds.labels.subarray(0, 32)), r.labels, `${what}: first labels`);
  assert.equal(sum(ds.pixels(0).data), r.sum_first, `${what}: pixels of image 0`);
  assert.equal(sum(ds.pixels(ds.length - 1).data), r.sum_last, `${what}: pixels of the last image`);
  const hist = new Array(10).fill(0);
  for (const v of ds.labels) hist[v]++;
  assert.deepEqual(hist, r.label_counts, `${what}: label histogram`);
}

test('the Debian files: 60000 train and 10000 test images with the labels Python reads, torchvision\'s classes', () => {
  const train = new FashionMNIST();
  const testSplit = new FashionMNIST({ train: false });
  assert.equal(train.root, FASHION_MNIST_ROOT);
  check(train, ref.train, 'train');
  check(testSplit, ref.t10k, 'test');
  assert.deepEqual([...FASHION_MNIST_CLASSES], ref.classes);
  const s = testSplit.get(0, { rng: new Generator(0), epoch: 0, index: 0 });
  assert.deepEqual([...s.input.shape], [1, 28, 28]);
  assert.equal(s.input.dtype, 'float32');
  assert.equal(s.label, ref.t10k.labels[0]);
  const px = testSplit.pixels(0).data;
  assert.deepEqual(s.input.toArray().slice(200, 210), Array.from(px.subarray(200, 210), (v) => Math.fround(v / 255)), 'ToTensor by default');
  assert.ok(train.images.buffer instanceof SharedArrayBuffer, 'pixels in shared memory (for worker threads)');
  assert.throws(() => testSplit.get(10000), /index 10000 is out of range for Fashion-MNIST of 10000 samples/);
});

test('uncompressed files in torchvision\'s FashionMNIST/raw layout; clear errors for missing and damaged files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fmnist-'));
  try {
    const raw = join(dir, 'FashionMNIST', 'raw');
    mkdirSync(raw, { recursive: true });
    const images = new Uint8Array(gunzipSync(readFileSync(join(FASHION_MNIST_ROOT, 't10k-images-idx3-ubyte.gz')))); // a copy: Buffer.slice would be a view
    const labels = new Uint8Array(gunzipSync(readFileSync(join(FASHION_MNIST_ROOT, 't10k-labels-idx1-ubyte.gz'))));
    writeFileSync(join(raw, 't10k-images-idx3-ubyte'), images);
    writeFileSync(join(raw, 't10k-labels-idx1-ubyte'), labels);
    check(new FashionMNIST({ root: dir, train: false }), ref.t10k, 'uncompressed test split');
    assert.throws(() => new FashionMNIST({ root: dir, train: true }), /train-images-idx3-ubyte\(\.gz\) not found in .* install Debian's dataset-fashion-mnist/);

    const bad = (name: string, img: Uint8Array, lab: Uint8Array, re: RegExp) => {
      const d = join(dir, name);
      mkdirSync(d);
      writeFileSync(join(d, 't10k-images-idx3-ubyte.gz'), gzipSync(img));
      writeFileSync(join(d, 't10k-labels-idx1-ubyte'), lab);
      assert.throws(() => new FashionMNIST({ root: d, train: false }), re, name);
    };
    bad('truncated', images.subarray(0, 5000), labels, /t10k-images-idx3-ubyte\.gz: the header declares 10000 x 28 x 28 = 7840000 values but the file holds 4984/);
    const magic = images.slice();
    magic[2] = 0x0d;
    bad('magic', magic, labels, /expected IDX type 0x08 \(unsigned bytes\) but the file has type 0x0d/);
    const fewer = labels.slice(0, 8 + 9999);
    new DataView(fewer.buffer).setUint32(4, 9999, false);
    bad('counts', images, fewer, /expected 10000 labels \(one per image in .*\) but the file holds 9999/);
    const label11 = labels.slice();
    label11[8 + 17] = 11;
    bad('label', images, label11, /label 17 is 11, expected 0\.\.9/);
    const d = join(dir, 'gz');
    mkdirSync(d);
    writeFileSync(join(d, 't10k-images-idx3-ubyte.gz'), gzipSync(images).subarray(0, 1000));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte'), labels);
    assert.throws(() => new FashionMNIST({ root: d, train: false }), /t10k-images-idx3-ubyte\.gz: corrupt gzip data/);
    assert.throws(() => parseIdx(new Uint8Array([1, 2, 3, 4]), 'x.idx'), /x\.idx: not an IDX file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

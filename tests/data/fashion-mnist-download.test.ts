// Fashion-MNIST's download (torchvision's FashionMNIST(root, download=True)) against a server on 127.0.0.1 that
// stands in for the official mirror: missing files are fetched into root/FashionMNIST/raw and MD5-checked, files
// already there are not fetched again, and the dataset then reads them. A file whose MD5 is wrong, or a 404, is an
// error naming the URL, and nothing appears under the file's name; through the CLI (--download with
// $RESNET_FASHION_MNIST_MIRROR), the official MD5s are checked and a mismatch is reported the same way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_RESOURCES, FashionMNIST, downloadFashionMNIST } from '../../src/data/fashion-mnist.js';
import { Generator } from '../../src/tensor/random.js';
import { startFakeHub } from '../hub-server.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { buildSpecModel, makeSpec } from '../../src/models/model-spec.js';
import { ROOT, tempDir } from '../helpers.js';

/** An IDX file of uint8 values: 0, 0, 0x08, ndim, big-endian dims, data; gzipped. */
function idxGz(dims: number[], data: Uint8Array): Uint8Array {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return gzipSync(Buffer.concat([head, data]));
}

function fakeSet(n: number, seed: number) {
  const g = new Generator(seed);
  const images = new Uint8Array(n * 784).map(() => g.randint(256)), labels = new Uint8Array(n).map(() => g.randint(10));
  return { images, labels, files: { images: idxGz([n, 28, 28], images), labels: idxGz([n], labels) } };
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

test('missing files are downloaded, MD5-checked, not fetched twice, and read by the dataset', async () => {
  const hub = await startFakeHub();
  try {
    const train = fakeSet(5, 1), test = fakeSet(3, 2);
    const bodies: Record<string, Uint8Array> = {
      'train-images-idx3-ubyte.gz': train.files.images, 'train-labels-idx1-ubyte.gz': train.files.labels,
      't10k-images-idx3-ubyte.gz': test.files.images, 't10k-labels-idx1-ubyte.gz': test.files.labels,
    };
    for (const [f, b] of Object.entries(bodies)) hub.addFile(`/fmnist/${f}`, b);
    const resources = FASHION_MNIST_RESOURCES.map(([f]) => [f, md5(bodies[f])] as const);
    const root = tempDir('fmnist-dl-');
    const got = await downloadFashionMNIST(root, { mirror: `${hub.base}/fmnist`, resources, progress: false });
    assert.deepEqual(got, FASHION_MNIST_RESOURCES.map(([f]) => join(root, 'FashionMNIST', 'raw', f)));
    assert.equal(hub.requests.length, 4);
    const ds = new FashionMNIST({ root, train: true });
    assert.equal(ds.length, 5);
    assert.deepEqual([...ds.labels], [...train.labels]);
    assert.deepEqual([...ds.pixels(4).data], [...train.images.subarray(4 * 784)]);
    assert.equal(new FashionMNIST({ root, train: false }).length, 3);
    // everything present: nothing fetched
    assert.deepEqual(await downloadFashionMNIST(root, { mirror: `${hub.base}/fmnist`, resources, progress: false }), []);
    assert.equal(hub.requests.length, 4);
  } finally {
    await hub.close();
  }
});

test('a wrong MD5 or a missing file on the mirror is an error naming the URL, and leaves no file behind', async () => {
  const hub = await startFakeHub();
  try {
    const set = fakeSet(2, 3);
    hub.addFile('/m/train-images-idx3-ubyte.gz', set.files.images);
    const root = tempDir('fmnist-dl-bad-');
    const raw = join(root, 'FashionMNIST', 'raw');
    await assert.rejects(downloadFashionMNIST(root, { mirror: `${hub.base}/m/`, resources: [['train-images-idx3-ubyte.gz', '0'.repeat(32)]], progress: false }),
      (e: Error) => /invalid MD5 \(expected 0{32}, got [0-9a-f]{32}\) for http:\/\/127\.0\.0\.1:\d+\/m\/train-images-idx3-ubyte\.gz: the file was not saved/.test(e.message));
    assert.deepEqual(readdirSync(raw), [], 'no file, and no temp file left');
    await assert.rejects(downloadFashionMNIST(root, { mirror: `${hub.base}/m/`, resources: [['t10k-labels-idx1-ubyte.gz', '0'.repeat(32)]], progress: false }),
      /HTTP 404.*t10k-labels-idx1-ubyte\.gz/s);
    assert.deepEqual(readdirSync(raw), []);
  } finally {
    await hub.close();
  }
});

test('resnet eval --download checks the official MD5s (a file that differs is refused and not kept)', async () => {
  const hub = await startFakeHub();
  try {
    const set = fakeSet(2, 4);
    hub.addFile('/fm/train-images-idx3-ubyte.gz', set.files.images);
    const root = tempDir('fmnist-dl-cli-');
    const ckpt = join(root, 'm.pth');
    const spec = makeSpec({ arch: 'resnet18', numClasses: 10, inChannels: 1, stem: 'small' });
    saveCheckpoint(ckpt, { model_state_dict: buildSpecModel(spec).stateDict(), model_spec: spec });
    // asynchronously: the server answers from this process's event loop
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'eval', '--checkpoint', ckpt, '--data', `fashion-mnist:${root}`, '--download'],
      { env: { ...process.env, RESNET_FASHION_MNIST_MIRROR: `${hub.base}/fm/` } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const status = await new Promise<number | null>((res) => child.on('close', res));
    const r2 = { status, stderr };
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, new RegExp(`invalid MD5 \\(expected ${FASHION_MNIST_RESOURCES[0][1]}, got ${md5(set.files.images)}\\) for ${hub.base}/fm/train-images-idx3-ubyte\\.gz`));
    assert.ok(!existsSync(join(root, 'FashionMNIST', 'raw', 'train-images-idx3-ubyte.gz')));
  } finally {
    await hub.close();
  }
});

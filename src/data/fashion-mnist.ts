// Fashion-MNIST (Zalando's 28x28 grey clothing images, 60000 train + 10000 test, 10 classes) from its IDX files,
// as torchvision.datasets.FashionMNIST. Files are looked up in `root` (default /usr/share/datasets/fashion-mnist,
// where Debian's dataset-fashion-mnist package puts them) or in root/FashionMNIST/raw (torchvision's layout), each
// as <split>-images-idx3-ubyte / <split>-labels-idx1-ubyte, gzipped (.gz) or not. Nothing is downloaded.
//
// IDX: a big-endian header (two zero bytes, a type byte 0x08 = uint8, a dimension count byte, then a u32 per
// dimension) followed by the raw values. Images are checked to be N x 28 x 28 and labels N values in 0..9.
// Pixels are held in shared memory so data loader workers use them without a copy. A sample is the image through
// `transform` (default ToTensor: (1, 28, 28) float32 in [0, 1]) and its label.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Generator } from '../tensor/random.js';
import { buildTransform, type Pixels, type SampleTransform, type TransformSpec } from './augment.js';
import { checkIndex, sharedCopy, type Dataset, type Sample, type SampleContext, type WorkerRecipe } from './dataset.js';

export const FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist';

/** torchvision's FashionMNIST.classes. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

export interface FashionMNISTOptions {
  /** Folder with the IDX files (default FASHION_MNIST_ROOT). */
  root?: string;
  /** The 60000-image training split (default) or the 10000-image test split. */
  train?: boolean;
  /** Per-image transform: TransformSpec data (worker-loadable) or a function (numWorkers 0 only). */
  transform?: readonly TransformSpec[] | SampleTransform;
}

/** Parse an IDX file of uint8 values (gzipped or not); `name` is used in errors. */
export function parseIdx(buf: Uint8Array, name: string): { dims: number[]; data: Uint8Array } {
  const bytes = buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b ? gunzipOrThrow(buf, name) : buf;
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new Error(`${name}: not an IDX file (expected two zero bytes, then a type and a dimension count)`);
  if (bytes[2] !== 0x08) throw new Error(`${name}: expected IDX type 0x08 (unsigned bytes) but the file has type 0x${bytes[2].toString(16).padStart(2, '0')}`);
  const nd = bytes[3];
  if (bytes.length < 4 + 4 * nd) throw new Error(`${name}: truncated IDX header (${nd} dimensions need ${4 + 4 * nd} bytes, the file has ${bytes.length})`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => dv.getUint32(4 + 4 * i, false));
  const n = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * nd;
  if (bytes.length - start !== n) throw new Error(`${name}: the header declares ${dims.join(' x ')} = ${n} values but the file holds ${bytes.length - start} (truncated or corrupt)`);
  return { dims, data: bytes.subarray(start) };
}

function gunzipOrThrow(buf: Uint8Array, name: string): Uint8Array {
  try {
    return gunzipSync(buf);
  } catch (err) {
    throw new Error(`${name}: corrupt gzip data (${(err as Error).message})`, { cause: err });
  }
}

/** The path of `base` (or base.gz) in root or root/FashionMNIST/raw. */
function findFile(root: string, base: string): string {
  const dirs = [root, join(root, 'FashionMNIST', 'raw')];
  for (const d of dirs) for (const f of [base, `${base}.gz`]) if (existsSync(join(d, f))) return join(d, f);
  throw new Error(`Fashion-MNIST file ${base}(.gz) not found in ${dirs.join(' or ')}: install Debian's dataset-fashion-mnist ` +
    `(apt-get install dataset-fashion-mnist, files in ${FASHION_MNIST_ROOT}) or pass root pointing at a folder with the four IDX files`);
}

interface Shared { images: Uint8Array; labels: Uint8Array; count: number; transform?: readonly TransformSpec[]; root: string; train: boolean }

export class FashionMNIST implements Dataset {
  readonly root: string;
  readonly train: boolean;
  readonly classes = FASHION_MNIST_CLASSES;
  /** N x 28 x 28 pixels, row-major (shared memory). */
  readonly images: Uint8Array;
  /** N labels in 0..9 (shared memory). */
  readonly labels: Uint8Array;
  readonly length: number;
  private readonly transform: SampleTransform;
  private readonly spec: readonly TransformSpec[] | undefined;

  constructor(o: FashionMNISTOptions = {}, shared?: Shared) {
    this.root = o.root ?? FASHION_MNIST_ROOT;
    this.train = o.train ?? true;
    const t = o.transform ?? [];
    this.spec = typeof t === 'function' ? undefined : t;
    this.transform = typeof t === 'function' ? t : buildTransform(t);
    if (shared) {
      ({ images: this.images, labels: this.labels, count: this.length } = shared);
      return;
    }
    const split = this.train ? 'train' : 't10k';
    const read = (base: string) => {
      const path = findFile(this.root, base);
      let buf: Uint8Array;
      try {
        buf = readFileSync(path);
      } catch (err) {
        throw new Error(`cannot read Fashion-MNIST file ${path}: ${(err as Error).message}`, { cause: err });
      }
      return { path, ...parseIdx(buf, path) };
    };
    const img = read(`${split}-images-idx3-ubyte`);
    const lab = read(`${split}-labels-idx1-ubyte`);
    if (img.dims.length !== 3 || img.dims[1] !== 28 || img.dims[2] !== 28) throw new Error(`${img.path}: expected N x 28 x 28 images but the file holds ${img.dims.join(' x ')}`);
    if (lab.dims.length !== 1 || lab.dims[0] !== img.dims[0]) throw new Error(`${lab.path}: expected ${img.dims[0]} labels (one per image in ${img.path}) but the file holds ${lab.dims.join(' x ')}`);
    const bad = lab.data.findIndex((v) => v > 9);
    if (bad >= 0) throw new Error(`${lab.path}: label ${bad} is ${lab.data[bad]}, expected 0..9`);
    this.images = sharedCopy(img.data);
    this.labels = sharedCopy(lab.data);
    this.length = img.dims[0];
  }

  /** Image i as (28, 28, 1) pixels (a view, not a copy). */
  pixels(i: number): Pixels {
    checkIndex(i, this.length, 'Fashion-MNIST');
    return { data: this.images.subarray(i * 784, (i + 1) * 784), width: 28, height: 28, channels: 1 };
  }

  get(i: number, ctx?: SampleContext): Sample {
    const rng = ctx?.rng ?? new Generator(i);
    return { input: this.transform(this.pixels(i), rng), label: this.labels[i] };
  }

  workerRecipe(): WorkerRecipe | null {
    if (!this.spec) return null;
    const shared: Shared = { images: this.images, labels: this.labels, count: this.length, transform: this.spec, root: this.root, train: this.train };
    return { module: import.meta.url, export: 'fashionMNISTFromShared', options: shared };
  }
}

/** Worker-side factory (see workerRecipe): the same dataset over the shared pixels. */
export function fashionMNISTFromShared(s: Shared): FashionMNIST {
  return new FashionMNIST({ root: s.root, train: s.train, transform: s.transform }, s);
}

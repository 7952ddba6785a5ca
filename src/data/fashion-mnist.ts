// Fashion-MNIST (Zalando's 28x28 grey clothing images, 60000 train + 10000 test, 10 classes) from its IDX files,
// as torchvision.datasets.FashionMNIST. Files are looked up in `root` (default /usr/share/datasets/fashion-mnist,
// where Debian's dataset-fashion-mnist package puts them) or in root/FashionMNIST/raw (torchvision's layout), each
// as <split>-images-idx3-ubyte / <split>-labels-idx1-ubyte, gzipped (.gz) or not. Nothing is downloaded.
//
// IDX: a big-endian header (two zero bytes, a type byte 0x08 = uint8, a dimension count byte, then a u32 per
// dimension) followed by the raw values. Images are checked to be N x 28 x 28 and labels N values in 0..9.
// Download (downloadFashionMNIST, the CLI's --download): when files are missing, the official .gz files are fetched
// from torchvision's mirror (or $RESNET_FASHION_MNIST_MIRROR, or o.mirror) into root/FashionMNIST/raw, each checked
// against torchvision's MD5 before it appears under its name (io/hub.ts: never a partial file). The constructor
// itself never touches the network.
// Pixels are held in shared memory so data loader workers use them without a copy. A sample is the image through
// `transform` (default ToTensor: (1, 28, 28) float32 in [0, 1]) and its label.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DownloadError, downloadUrlToFile } from '../io/hub.js';
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

/** The path of `base` (or base.gz) in root or root/FashionMNIST/raw, or null. */
function lookFor(root: string, base: string): string | null {
  for (const d of [root, join(root, 'FashionMNIST', 'raw')]) for (const f of [base, `${base}.gz`]) if (existsSync(join(d, f))) return join(d, f);
  return null;
}

function findFile(root: string, base: string): string {
  const found = lookFor(root, base);
  if (found) return found;
  throw new Error(`Fashion-MNIST file ${base}(.gz) not found in ${root} or ${join(root, 'FashionMNIST', 'raw')}: install Debian's dataset-fashion-mnist ` +
    `(apt-get install dataset-fashion-mnist, files in ${FASHION_MNIST_ROOT}), pass root pointing at a folder with the four IDX files, ` +
    'or download them (downloadFashionMNIST(root); resnet train/eval --download)');
}

/** torchvision's mirror of the official files. */
export const FASHION_MNIST_MIRROR = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

/** The four official files and their MD5s (torchvision.datasets.FashionMNIST.resources). */
export const FASHION_MNIST_RESOURCES: readonly (readonly [file: string, md5: string])[] = [
  ['train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'],
  ['train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'],
  ['t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'],
  ['t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310'],
];

export interface FashionMNISTDownloadOptions {
  /** Base URL the file names are appended to (default $RESNET_FASHION_MNIST_MIRROR, else FASHION_MNIST_MIRROR). */
  mirror?: string;
  /** Files and MD5s (default FASHION_MNIST_RESOURCES). */
  resources?: readonly (readonly [string, string])[];
  /** A progress bar on stderr when it is a terminal (default true). */
  progress?: boolean;
}

/**
 * Make sure root holds the four files (as torchvision's FashionMNIST(root, download=True)): any that is missing
 * from root and root/FashionMNIST/raw is downloaded into root/FashionMNIST/raw and MD5-checked. Returns the files
 * fetched (none when all were there).
 */
export async function downloadFashionMNIST(root: string, o: FashionMNISTDownloadOptions = {}): Promise<string[]> {
  const mirror = o.mirror ?? process.env.RESNET_FASHION_MNIST_MIRROR ?? FASHION_MNIST_MIRROR;
  const base = mirror.endsWith('/') ? mirror : `${mirror}/`;
  const fetched: string[] = [];
  for (const [file, md5] of o.resources ?? FASHION_MNIST_RESOURCES) {
    if (lookFor(root, file.replace(/\.gz$/, ''))) continue;
    const dst = join(root, 'FashionMNIST', 'raw', file);
    try {
      await downloadUrlToFile(`${base}${file}`, dst, { md5, progress: o.progress });
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      throw new Error(`cannot write the Fashion-MNIST download into ${join(root, 'FashionMNIST', 'raw')}: ${(e as Error).message} (give a writable root, e.g. fashion-mnist:./data)`, { cause: e });
    }
    fetched.push(dst);
  }
  return fetched;
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

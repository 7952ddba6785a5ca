// ImageFolder: one sub-folder per class, as torchvision.datasets.ImageFolder (0.14):
//   root/cat/001.jpg, root/cat/more/002.png, root/dog/xyz.jpeg  ->  classes ['cat', 'dog'], class_to_idx {cat: 0, dog: 1}
// Classes are the sorted names of root's sub-folders (symlinks to folders count); each class folder is walked
// recursively (following links, sorted by folder path, files sorted by name) and files whose lower-cased name ends
// with one of IMG_EXTENSIONS are its samples. A class folder without any is an error, as in torchvision. Sorting is
// by Unicode code point, as Python's sorted(). Images are decoded by image.ts's readImage (RGB; formats sharp reads:
// a .bmp/.ppm/.pgm is listed, as torchvision lists it, but fails to decode with a clear error).

import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Generator } from '../tensor/random.js';
import { asPixels, buildTransform, type SampleTransform, type TransformSpec } from './augment.js';
import { checkIndex, type Dataset, type Sample, type SampleContext, type WorkerRecipe } from './dataset.js';
import { readImage } from './image.js';

/** torchvision's IMG_EXTENSIONS. */
export const IMG_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'];

export interface ImageFolderOptions {
  /** Per-image transform: TransformSpec data (worker-loadable) or a function (numWorkers 0 only). Default ToTensor. */
  transform?: readonly TransformSpec[] | SampleTransform;
  /** Lower-case file name endings to accept (default IMG_EXTENSIONS). */
  extensions?: readonly string[];
}

/** Python's string order (by code point; JS's < compares UTF-16 units). */
export function comparePy(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0)! - y[i].codePointAt(0)!;
  }
  return x.length - y.length;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory(); // follows symlinks, as os.scandir's is_dir()
  } catch {
    return false;
  }
}

/** torchvision's find_classes: sorted sub-folder names and their indices. */
export function findClasses(root: string): { classes: string[]; classToIdx: Map<string, number> } {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (err) {
    throw new Error(`cannot list image folder ${root}: ${(err as Error).message}`, { cause: err });
  }
  const classes = names.filter((n) => isDir(join(root, n))).sort(comparePy);
  if (classes.length === 0) throw new Error(`Couldn't find any class folder in ${root}.`);
  return { classes, classToIdx: new Map(classes.map((c, i) => [c, i])) };
}

/** os.walk(dir, followlinks=True) as [folder, sorted file names], sorted by folder path; link cycles are cut. */
function walk(dir: string, seen = new Set<string>()): [string, string[]][] {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return [];
  }
  if (seen.has(real)) return [];
  seen.add(real);
  const files: string[] = [];
  const out: [string, string[]][] = [];
  const subdirs: string[] = [];
  for (const n of readdirSync(dir)) (isDir(join(dir, n)) ? subdirs : files).push(n);
  out.push([dir, files.sort(comparePy)]);
  for (const s of subdirs) out.push(...walk(join(dir, s), seen));
  return out.sort((a, b) => comparePy(a[0], b[0]));
}

/** torchvision's make_dataset: [path, class index] for every accepted file, class by class. */
export function makeDataset(root: string, classToIdx: ReadonlyMap<string, number>, extensions: readonly string[] = IMG_EXTENSIONS): [string, number][] {
  const out: [string, number][] = [];
  const empty: string[] = [];
  for (const cls of [...classToIdx.keys()].sort(comparePy)) {
    const before = out.length;
    const dir = join(root, cls);
    if (!isDir(dir)) continue;
    for (const [folder, files] of walk(dir)) {
      for (const f of files) if (extensions.some((e) => f.toLowerCase().endsWith(e))) out.push([join(folder, f), classToIdx.get(cls)!]);
    }
    if (out.length === before) empty.push(cls);
  }
  if (empty.length) throw new Error(`Found no valid file for the classes ${empty.sort(comparePy).join(', ')}. Supported extensions are: ${extensions.join(', ')}`);
  return out;
}

export class ImageFolder implements Dataset {
  readonly root: string;
  readonly classes: string[];
  readonly classToIdx: Map<string, number>;
  /** [path, class index], in torchvision's order. */
  readonly samples: [string, number][];
  readonly targets: number[];
  private readonly transform: SampleTransform;
  private readonly spec: readonly TransformSpec[] | undefined;
  private readonly extensions: readonly string[];

  constructor(root: string, o: ImageFolderOptions = {}, listed?: { classes: string[]; samples: [string, number][] }) {
    this.root = root;
    this.extensions = o.extensions ?? IMG_EXTENSIONS;
    if (listed) {
      this.classes = listed.classes;
      this.classToIdx = new Map(listed.classes.map((c, i) => [c, i]));
      this.samples = listed.samples;
    } else {
      ({ classes: this.classes, classToIdx: this.classToIdx } = findClasses(root));
      this.samples = makeDataset(root, this.classToIdx, this.extensions);
    }
    this.targets = this.samples.map((s) => s[1]);
    const t = o.transform ?? [];
    this.spec = typeof t === 'function' ? undefined : t;
    this.transform = typeof t === 'function' ? t : buildTransform(t);
  }

  get length(): number {
    return this.samples.length;
  }

  async get(i: number, ctx?: SampleContext): Promise<Sample> {
    checkIndex(i, this.samples.length, `ImageFolder ${this.root}`);
    const [path, label] = this.samples[i];
    const img = await readImage(path);
    return { input: this.transform(asPixels(img), ctx?.rng ?? new Generator(i)), label };
  }

  workerRecipe(): WorkerRecipe | null {
    if (!this.spec) return null;
    const options = { root: this.root, transform: this.spec, extensions: this.extensions, classes: this.classes, samples: this.samples };
    return { module: import.meta.url, export: 'imageFolderFromListing', options };
  }
}

/** Worker-side factory (see workerRecipe): the same listing, not rescanned. */
export function imageFolderFromListing(o: { root: string; transform: TransformSpec[]; extensions: string[]; classes: string[]; samples: [string, number][] }): ImageFolder {
  return new ImageFolder(o.root, { transform: o.transform, extensions: o.extensions }, o);
}

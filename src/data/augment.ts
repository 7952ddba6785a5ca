// Training-time augmentation, as torchvision 0.14's transforms on PIL images: RandomResizedCrop, RandomCrop (with
// padding: constant / edge / reflect / symmetric), RandomHorizontalFlip; plus the pixel helpers they are made of
// (crop, pad, hflip, resizedCrop, resizePixels, centerCropPixels) and pixelsToTensor.
//
// Images are `Pixels`: (H, W, C) interleaved uint8 with C = 1 (grey, e.g. Fashion-MNIST) or 3 (RGB, what image.ts's
// readImage returns). Every random choice comes from the Generator passed in (the data loader gives each sample
// its own, seeded from the loader's seed, the epoch and the sample's index), so results never depend on worker
// scheduling. The draws follow torchvision's algorithms but not torch's random stream (see tensor/random.ts).
// Resizing is PIL's (resample.ts), so resizedCrop equals torchvision's F.resized_crop on a PIL image exactly.
//
// A pipeline can also be written as data (TransformSpec[]): buildTransform() turns it into a function, and because a
// spec can be sent to a worker thread, datasets built on specs can be loaded with numWorkers > 0 (see loader.ts).
// The pixel helpers here take any channel count (transforms.ts's take RGB images); sizes, rounding and
// normalisation are transforms.ts's. This file does not decode images (image.ts).

import type { Generator } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { pilResize, type PilFilter } from './resample.js';
import { normalize, resizedSize, roundHalfEven, type Size } from './transforms.js';

/** (height, width, channels) interleaved uint8; channels 1 or 3. */
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/** An RGB image (image.ts's RgbImage) or any HWC uint8 image as Pixels (no copy). */
export function asPixels(img: { data: Uint8Array; width: number; height: number; channels?: number }): Pixels {
  const channels = img.channels ?? 3;
  if (!(img.data instanceof Uint8Array) || img.data.length !== img.width * img.height * channels) {
    throw new TypeError(`Expected ${img.width}x${img.height}x${channels} bytes of (H, W, C) pixels but received ${img.data?.length} bytes`);
  }
  return { data: img.data, width: img.width, height: img.height, channels };
}

/** A [height, width] from torchvision's size argument (an int means square). */
export function sizePair(size: number | readonly number[], what = 'size'): [number, number] {
  const s = typeof size === 'number' ? [size, size] : [...size];
  if (s.length === 1) s.push(s[0]);
  if (s.length !== 2 || !s.every((v) => Number.isInteger(v) && v > 0)) throw new RangeError(`Expected a positive integer or [height, width] for ${what} but received ${JSON.stringify(size)}`);
  return s as [number, number];
}

// ---- pixel operations ------------------------------------------------------------------------------------------

/** PIL's img.crop((left, top, left + width, top + height)): out-of-image pixels are 0. */
export function crop(img: Pixels, top: number, left: number, height: number, width: number): Pixels {
  const { channels: c, width: W, height: H } = img;
  const out = new Uint8Array(width * height * c);
  const x0 = Math.max(0, -left), x1 = Math.min(width, W - left);
  for (let y = 0; y < height; y++) {
    const sy = top + y;
    if (sy < 0 || sy >= H || x1 <= x0) continue;
    out.set(img.data.subarray((sy * W + left + x0) * c, (sy * W + left + x1) * c), (y * width + x0) * c);
  }
  return { data: out, width, height, channels: c };
}

/** Mirror left-right (F.hflip). */
export function hflip(img: Pixels): Pixels {
  const { channels: c, width: W, height: H } = img;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * c, q = (y * W + W - 1 - x) * c;
      for (let k = 0; k < c; k++) out[q + k] = img.data[p + k];
    }
  }
  return { ...img, data: out };
}

export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';

/** torchvision's padding argument as [left, top, right, bottom]: an int, [lr, tb] or [l, t, r, b]. */
export function paddingLtrb(padding: number | readonly number[]): [number, number, number, number] {
  const p = typeof padding === 'number' ? [padding] : [...padding];
  if (!p.every((v) => Number.isInteger(v) && v >= 0) || ![1, 2, 4].includes(p.length)) {
    throw new RangeError(`Padding must be a non-negative int or a 1, 2, or 4 element list, not ${JSON.stringify(padding)}`);
  }
  if (p.length === 1) return [p[0], p[0], p[0], p[0]];
  if (p.length === 2) return [p[0], p[1], p[0], p[1]];
  return p as [number, number, number, number];
}

/** Source index for output index i of a padded axis (numpy.pad's modes, any pad width). */
function padIndex(i: number, n: number, mode: Exclude<PaddingMode, 'constant'>): number {
  if (i >= 0 && i < n) return i;
  if (mode === 'edge' || n === 1) return i < 0 ? 0 : n - 1;
  const period = mode === 'reflect' ? 2 * (n - 1) : 2 * n;
  let k = ((i % period) + period) % period;
  if (mode === 'reflect') return k < n ? k : period - k;
  return k < n ? k : period - 1 - k;
}

/** F.pad on a PIL image: `fill` (one value or one per channel) for constant, else numpy.pad's mode. */
export function pad(img: Pixels, padding: number | readonly number[], fill: number | readonly number[] = 0, mode: PaddingMode = 'constant'): Pixels {
  const [l, t, r, b] = paddingLtrb(padding);
  const { channels: c, width: W, height: H } = img;
  const ow = W + l + r, oh = H + t + b;
  const out = new Uint8Array(ow * oh * c);
  if (mode === 'constant') {
    const f = typeof fill === 'number' ? Array(c).fill(fill) : [...fill];
    if (f.length !== c || !f.every((v) => Number.isInteger(v) && v >= 0 && v <= 255)) throw new RangeError(`Expected a fill of ${c} integer(s) in 0..255 but received ${JSON.stringify(fill)}`);
    for (let i = 0; i < ow * oh; i++) for (let k = 0; k < c; k++) out[i * c + k] = f[k];
    for (let y = 0; y < H; y++) out.set(img.data.subarray(y * W * c, (y + 1) * W * c), ((y + t) * ow + l) * c);
    return { data: out, width: ow, height: oh, channels: c };
  }
  if (!['edge', 'reflect', 'symmetric'].includes(mode)) throw new RangeError(`Padding mode should be either constant, edge, reflect or symmetric, not ${String(mode)}`);
  const xs = Array.from({ length: ow }, (_, x) => padIndex(x - l, W, mode));
  for (let y = 0; y < oh; y++) {
    const sy = padIndex(y - t, H, mode);
    for (let x = 0; x < ow; x++) {
      const p = (sy * W + xs[x]) * c, q = (y * ow + x) * c;
      for (let k = 0; k < c; k++) out[q + k] = img.data[p + k];
    }
  }
  return { data: out, width: ow, height: oh, channels: c };
}

/** F.resized_crop on a PIL image: crop (top, left, height, width), then PIL's resize to [oh, ow]. */
export function resizedCrop(img: Pixels, top: number, left: number, height: number, width: number, size: number | readonly number[], interpolation: PilFilter = 'bilinear'): Pixels {
  const [oh, ow] = sizePair(size);
  const c = crop(img, top, left, height, width);
  return { data: pilResize(c.data, width, height, img.channels, ow, oh, interpolation), width: ow, height: oh, channels: img.channels };
}

/** PIL's convert('L') (ITU-R 601-2 luma, integer arithmetic) or a copy of a grey image, with `channels` copies. */
export function grayscale(img: Pixels, channels: 1 | 3 = 1): Pixels {
  const n = img.width * img.height;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    const s = img.channels === 1 ? img.data[i]
      : (img.data[3 * i] * 19595 + img.data[3 * i + 1] * 38470 + img.data[3 * i + 2] * 7471 + 0x8000) >>> 16;
    for (let k = 0; k < channels; k++) out[i * channels + k] = s;
  }
  return { data: out, width: img.width, height: img.height, channels };
}

/** ToTensor on pixels of any channel count: (C, H, W) float32 in [0, 1] (v / 255, rounded once, as torch). */
export function pixelsToTensor(img: Pixels): Tensor {
  const { channels: c, width: W, height: H } = img;
  const n = W * H;
  const out = new Float32Array(c * n);
  for (let i = 0; i < n; i++) for (let k = 0; k < c; k++) out[k * n + i] = img.data[i * c + k] / 255;
  return new Tensor(out, [c, H, W]);
}

/** F.resize on a PIL image of any channel count: torchvision's output size rule, PIL's resampling. */
export function resizePixels(img: Pixels, size: Size, interpolation: PilFilter = 'bilinear', maxSize?: number): Pixels {
  const [oh, ow] = resizedSize(img.height, img.width, size, maxSize);
  if (oh === img.height && ow === img.width) return img;
  return { data: pilResize(img.data, img.width, img.height, img.channels, ow, oh, interpolation), width: ow, height: oh, channels: img.channels };
}

/** F.center_crop on a PIL image of any channel count (zero padding when the crop is larger, offsets half to even). */
export function centerCropPixels(img: Pixels, size: number | readonly number[]): Pixels {
  const [ch, cw] = sizePair(size);
  const { height: h, width: w } = img;
  if (ch === h && cw === w) return img;
  const padT = ch > h ? Math.floor((ch - h) / 2) : 0, padL = cw > w ? Math.floor((cw - w) / 2) : 0;
  const ph = Math.max(ch, h), pw = Math.max(cw, w);
  return crop(img, roundHalfEven((ph - ch) / 2) - padT, roundHalfEven((pw - cw) / 2) - padL, ch, cw);
}

// ---- random transforms -----------------------------------------------------------------------------------------

export interface RandomResizedCropOptions {
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  interpolation?: PilFilter;
}

/** A random area (scale of the image) and aspect ratio, cropped and resized to `size` (Inception-style). */
export class RandomResizedCrop {
  readonly size: [number, number];
  readonly scale: readonly [number, number];
  readonly ratio: readonly [number, number];
  readonly interpolation: PilFilter;

  constructor(size: number | readonly number[], o: RandomResizedCropOptions = {}) {
    this.size = sizePair(size);
    this.scale = o.scale ?? [0.08, 1];
    this.ratio = o.ratio ?? [3 / 4, 4 / 3];
    this.interpolation = o.interpolation ?? 'bilinear';
    if (this.scale[0] > this.scale[1] || this.ratio[0] > this.ratio[1]) throw new RangeError('Scale and ratio should be of kind (min, max)');
  }

  /**
   * torchvision's get_params: up to 10 tries of area = W*H*U(scale), aspect = exp(U(log ratio)), w = round(sqrt(area *
   * aspect)), h = round(sqrt(area / aspect)), kept if it fits, at a uniform position; else a central crop of the
   * whole image clamped to the ratio range. Returns [top, left, height, width].
   */
  static getParams(width: number, height: number, scale: readonly number[], ratio: readonly number[], rng: Generator): [number, number, number, number] {
    const area = width * height;
    const lr0 = Math.log(ratio[0]), lr1 = Math.log(ratio[1]);
    for (let k = 0; k < 10; k++) {
      const target = area * (scale[0] + rng.uniform() * (scale[1] - scale[0]));
      const aspect = Math.exp(lr0 + rng.uniform() * (lr1 - lr0));
      const w = roundHalfEven(Math.sqrt(target * aspect));
      const h = roundHalfEven(Math.sqrt(target / aspect));
      if (w > 0 && w <= width && h > 0 && h <= height) {
        const i = rng.randint(height - h + 1);
        const j = rng.randint(width - w + 1);
        return [i, j, h, w];
      }
    }
    const inRatio = width / height;
    const lo = Math.min(ratio[0], ratio[1]), hi = Math.max(ratio[0], ratio[1]);
    let w = width, h = height;
    if (inRatio < lo) h = roundHalfEven(w / lo);
    else if (inRatio > hi) w = roundHalfEven(h * hi);
    return [Math.floor((height - h) / 2), Math.floor((width - w) / 2), h, w];
  }

  apply(img: Pixels, rng: Generator): Pixels {
    const [i, j, h, w] = RandomResizedCrop.getParams(img.width, img.height, this.scale, this.ratio, rng);
    return resizedCrop(img, i, j, h, w, this.size, this.interpolation);
  }
}

export interface RandomCropOptions {
  /** Padding applied first: an int, [left/right, top/bottom] or [left, top, right, bottom]. */
  padding?: number | readonly number[];
  /** Pad both sides of a dimension by its shortfall (as torchvision) when the image is smaller than the crop. */
  padIfNeeded?: boolean;
  fill?: number | readonly number[];
  paddingMode?: PaddingMode;
}

/** Pad (optionally), then crop `size` at a uniform position (e.g. 32x32 with padding 4, the CIFAR recipe). */
export class RandomCrop {
  readonly size: [number, number];
  readonly o: RandomCropOptions;

  constructor(size: number | readonly number[], o: RandomCropOptions = {}) {
    this.size = sizePair(size);
    if (o.padding !== undefined) paddingLtrb(o.padding);
    this.o = o;
  }

  /** torchvision's get_params: [top, left, height, width]; no draw when the image is exactly the crop's size. */
  static getParams(width: number, height: number, size: readonly [number, number], rng: Generator): [number, number, number, number] {
    const [th, tw] = size;
    if (height < th || width < tw) throw new RangeError(`Required crop size [${th}, ${tw}] is larger than input image size [${height}, ${width}]`);
    if (width === tw && height === th) return [0, 0, height, width];
    const i = rng.randint(height - th + 1);
    const j = rng.randint(width - tw + 1);
    return [i, j, th, tw];
  }

  apply(img: Pixels, rng: Generator): Pixels {
    const { padding, padIfNeeded, fill = 0, paddingMode = 'constant' } = this.o;
    let x = padding !== undefined ? pad(img, padding, fill, paddingMode) : img;
    const [th, tw] = this.size;
    if (padIfNeeded && x.width < tw) x = pad(x, [tw - x.width, 0], fill, paddingMode);
    if (padIfNeeded && x.height < th) x = pad(x, [0, th - x.height], fill, paddingMode);
    const [i, j, h, w] = RandomCrop.getParams(x.width, x.height, this.size, rng);
    return crop(x, i, j, h, w);
  }
}

/** Mirror left-right with probability p (one uniform draw per image). */
export class RandomHorizontalFlip {
  constructor(readonly p = 0.5) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Expected a probability in [0, 1] for p but received ${p}`);
  }

  apply(img: Pixels, rng: Generator): Pixels {
    return rng.uniform() < this.p ? hflip(img) : img;
  }
}

// ---- pipelines as data -----------------------------------------------------------------------------------------

/** One step of a pipeline written as data (structured-cloneable, so a worker thread can rebuild it). */
export type TransformSpec =
  | { name: 'RandomResizedCrop'; size: number | number[]; scale?: [number, number]; ratio?: [number, number]; interpolation?: PilFilter }
  | { name: 'RandomCrop'; size: number | number[]; padding?: number | number[]; padIfNeeded?: boolean; fill?: number | number[]; paddingMode?: PaddingMode }
  | { name: 'RandomHorizontalFlip'; p?: number }
  | { name: 'Pad'; padding: number | number[]; fill?: number | number[]; paddingMode?: PaddingMode }
  | { name: 'Resize'; size: number | [number, number]; interpolation?: PilFilter; maxSize?: number }
  | { name: 'CenterCrop'; size: number | number[] }
  | { name: 'Grayscale'; numOutputChannels?: 1 | 3 }
  | { name: 'ToTensor' }
  | { name: 'Normalize'; mean: number[]; std: number[] };

/** What a dataset applies to each image: pixels and the sample's generator in, a (C, H, W) float32 tensor out. */
export type SampleTransform = (img: Pixels, rng: Generator) => Tensor;

/** A pipeline from specs: pixel steps, then ToTensor (implied if absent), then Normalize (transforms.ts's, float32 as torch). */
export function buildTransform(specs: readonly TransformSpec[]): SampleTransform {
  const pixelSteps: ((img: Pixels, rng: Generator) => Pixels)[] = [];
  const tensorSteps: ((t: Tensor) => Tensor)[] = [];
  let tensorStage = false;
  for (const [k, s] of specs.entries()) {
    const where = `transform spec [${k}] (${(s as { name?: unknown }).name})`;
    const pixel = (f: (img: Pixels, rng: Generator) => Pixels) => {
      if (tensorStage) throw new RangeError(`${where} works on pixels but comes after ToTensor`);
      pixelSteps.push(f);
    };
    switch (s.name) {
      case 'RandomResizedCrop': { const t = new RandomResizedCrop(s.size, s); pixel((x, r) => t.apply(x, r)); break; }
      case 'RandomCrop': { const t = new RandomCrop(s.size, s); pixel((x, r) => t.apply(x, r)); break; }
      case 'RandomHorizontalFlip': { const t = new RandomHorizontalFlip(s.p); pixel((x, r) => t.apply(x, r)); break; }
      case 'Pad': pixel((x) => pad(x, s.padding, s.fill, s.paddingMode)); break;
      case 'Resize': resizedSize(1, 1, s.size, s.maxSize); pixel((x) => resizePixels(x, s.size, s.interpolation, s.maxSize)); break;
      case 'CenterCrop': sizePair(s.size); pixel((x) => centerCropPixels(x, s.size)); break;
      case 'Grayscale': pixel((x) => grayscale(x, s.numOutputChannels ?? 1)); break;
      case 'ToTensor':
        if (tensorStage) throw new RangeError(`${where}: ToTensor must come once, before Normalize`);
        tensorStage = true;
        break;
      case 'Normalize':
        tensorStage = true;
        tensorSteps.push((t) => normalize(t, s.mean, s.std));
        break;
      default:
        throw new RangeError(`${where}: unknown transform; expected one of RandomResizedCrop, RandomCrop, RandomHorizontalFlip, Pad, Resize, CenterCrop, Grayscale, ToTensor, Normalize`);
    }
  }
  return (img, rng) => {
    let x = img;
    for (const f of pixelSteps) x = f(x, rng);
    let t = pixelsToTensor(x);
    for (const f of tensorSteps) t = f(t);
    return t;
  };
}

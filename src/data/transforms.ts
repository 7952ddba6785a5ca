// torchvision.transforms for inference, equal to torchvision 0.14 on both of its input kinds:
// - an RgbImage (decoded pixels, (H, W, 3) uint8) plays the PIL image: Resize is PIL's Image.resize (resample.ts),
//   always antialiased, exact in 8 bits;
// - a Tensor (..., H, W) float32 (or uint8) plays the tensor: Resize is torch.nn.functional.interpolate
//   (interpolate.ts), antialiased only when asked, uint8 rounded back half-to-even as torchvision does.
// Functional forms (resize, centerCrop, crop, pilToTensor, toTensor, convertImageDtype, normalize) and the
// classes torchvision users compose (Resize, CenterCrop, PILToTensor, ToTensor, ConvertImageDtype, Normalize,
// Compose), plus the ImageClassification preset each pretrained-weights entry carries
// (torchvision.transforms._presets.ImageClassification: resize, center crop, to float, normalize).
// The weights registry (models/weights.ts) holds the preset's parameters; this layer does not import it: pass
// `weights.transforms` to `new ImageClassification(...)`.

import { allocStorage } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { type RgbImage, checkRgbImage } from './image.js';
import { interpolatePlanes, type TensorInterpolation } from './interpolate.js';
import { type PilFilter, pilResize } from './resample.js';

/** torchvision's InterpolationMode names (box, hamming and lanczos exist for RgbImage input only, as for PIL). */
export type Interpolation = PilFilter;
export type ImageLike = RgbImage | Tensor;
/** An int (the shorter side), [int] (the same) or [height, width]. */
export type Size = number | readonly [number] | readonly [number, number];

const f = Math.fround;
const INTERPOLATIONS: readonly Interpolation[] = ['nearest', 'bilinear', 'bicubic', 'box', 'hamming', 'lanczos'];

/** Python's round(): half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function sizeList(size: Size, what: string): number[] {
  const s = typeof size === 'number' ? [size] : Array.isArray(size) ? [...size] : null;
  if (!s || s.length < 1 || s.length > 2 || !s.every((v) => Number.isInteger(v) && v > 0)) {
    throw new TypeError(`Expected a positive int, [int] or [height, width] for ${what} but received ${JSON.stringify(size)}`);
  }
  return s;
}

/** (height, width) of an RgbImage or of a (..., H, W) tensor. */
export function imageSize(img: ImageLike): [number, number] {
  if (img instanceof Tensor) {
    if (img.ndim < 2) throw new TypeError(`Expected a tensor image (..., H, W) but received shape [${img.shape}]`);
    return [img.shape[img.ndim - 2], img.shape[img.ndim - 1]];
  }
  checkRgbImage(img);
  return [img.height, img.width];
}

/**
 * torchvision's _compute_resized_output_size: `size` int or [int] scales the shorter side to it (the longer side
 * truncated, int(size * long / short)), then caps the longer side at maxSize; [h, w] is taken as is.
 */
export function resizedSize(height: number, width: number, size: Size, maxSize?: number): [number, number] {
  const s = sizeList(size, 'size');
  if (s.length === 2) {
    if (maxSize !== undefined) throw new RangeError('max_size should only be passed if size specifies the length of the smaller edge, i.e. size should be an int or a sequence of length 1');
    return [s[0], s[1]];
  }
  const [short, long] = width <= height ? [width, height] : [height, width];
  let newShort = s[0], newLong = Math.trunc((s[0] * long) / short);
  if (maxSize !== undefined) {
    if (maxSize <= s[0]) throw new RangeError(`max_size = ${maxSize} must be strictly greater than the requested size for the smaller edge size = ${s[0]}`);
    if (newLong > maxSize) [newShort, newLong] = [Math.trunc((maxSize * newShort) / newLong), maxSize];
  }
  return width <= height ? [newLong, newShort] : [newShort, newLong];
}

export interface ResizeOptions {
  /** Default 'bilinear'. */
  interpolation?: Interpolation;
  /** Cap on the longer side when `size` is an int (torchvision's max_size). */
  maxSize?: number;
  /** Tensor input only (RgbImage input is always antialiased, as PIL): default false, as torchvision 0.14. */
  antialias?: boolean;
}

function checkInterpolation(m: unknown): Interpolation {
  if (!INTERPOLATIONS.includes(m as Interpolation)) throw new TypeError(`Expected one of ${INTERPOLATIONS.join(', ')} for interpolation but received ${String(m)}`);
  return m as Interpolation;
}

/** torchvision's F.resize: the same kind as the input back (an unchanged size returns the input itself). */
export function resize<T extends ImageLike>(img: T, size: Size, o: ResizeOptions = {}): T {
  const mode = checkInterpolation(o.interpolation ?? 'bilinear');
  const [h, w] = imageSize(img);
  const [oh, ow] = resizedSize(h, w, size, o.maxSize);
  if (oh === h && ow === w) return img;
  if (!(img instanceof Tensor)) {
    return { data: pilResize(img.data, w, h, 3, ow, oh, mode), width: ow, height: oh } as T;
  }
  if (mode !== 'nearest' && mode !== 'bilinear' && mode !== 'bicubic') {
    throw new TypeError(`Expected nearest, bilinear or bicubic interpolation for a tensor but received ${mode} (box, hamming and lanczos are for RgbImage input, as PIL's)`);
  }
  return resizeTensor(img, oh, ow, mode, o.antialias ?? false) as T;
}

function resizeTensor(t: Tensor, oh: number, ow: number, mode: TensorInterpolation, antialias: boolean): Tensor {
  if (t.dtype !== 'float32' && t.dtype !== 'uint8') throw new TypeError(`Expected a float32 or uint8 tensor for resize but received ${t.dtype}`);
  const [h, w] = imageSize(t);
  const lead = t.shape.slice(0, -2);
  const planes = lead.reduce((a, b) => a * b, 1);
  const src = t.contiguousData();
  const x = t.dtype === 'float32' ? (src as Float32Array) : Float32Array.from(src as Uint8Array);
  const y = interpolatePlanes(x, planes, h, w, oh, ow, mode, antialias);
  if (t.dtype === 'float32') return new Tensor(y, [...lead, oh, ow]);
  // torchvision's _cast_squeeze_out: bicubic clamps to [0, 255], then round half to even, then cast
  const u = new Uint8Array(y.length);
  for (let i = 0; i < y.length; i++) u[i] = Math.min(Math.max(roundHalfEven(y[i]), 0), 255);
  return new Tensor(u, [...lead, oh, ow], { dtype: 'uint8' });
}

/** torchvision's F.crop: rows [top, top + height), columns [left, left + width); outside the image is 0. */
export function crop<T extends ImageLike>(img: T, top: number, left: number, height: number, width: number): T {
  for (const [k, v] of Object.entries({ top, left, height, width })) {
    if (!Number.isInteger(v) || ((k === 'height' || k === 'width') && v <= 0)) throw new TypeError(`Expected an integer${k === 'height' || k === 'width' ? ' > 0' : ''} for ${k} but received ${v}`);
  }
  const [h, w] = imageSize(img);
  const isT = img instanceof Tensor;
  // a tensor is P planes of (H, W) with one value per pixel; an RgbImage is one plane of 3 interleaved values
  const planes = isT ? img.shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1;
  const c = isT ? 1 : 3;
  const src = (isT ? img.contiguousData() : img.data) as Uint8Array;
  const out = (isT ? allocStorage(img.dtype, planes * height * width) : new Uint8Array(height * width * 3)) as Uint8Array;
  const x0 = Math.max(left, 0), x1 = Math.min(left + width, w);
  if (x1 > x0) {
    for (let p = 0; p < planes; p++) {
      for (let y = Math.max(top, 0); y < Math.min(top + height, h); y++) {
        const from = ((p * h + y) * w + x0) * c, to = ((p * height + y - top) * width + x0 - left) * c;
        out.set(src.subarray(from, from + (x1 - x0) * c), to);
      }
    }
  }
  if (isT) return new Tensor(out, [...img.shape.slice(0, -2), height, width], { dtype: img.dtype }) as T;
  return { data: out, width, height } as T;
}

/**
 * torchvision's F.center_crop: zero padding (left/top get floor, right/bottom ceil of the excess) when the crop is
 * larger than the image, then offsets int(round((H - h) / 2.0)) with Python's round (half to even).
 */
export function centerCrop<T extends ImageLike>(img: T, size: Size): T {
  const s = sizeList(size, 'size');
  const [ch, cw] = s.length === 1 ? [s[0], s[0]] : s;
  const [h, w] = imageSize(img);
  const padT = ch > h ? Math.floor((ch - h) / 2) : 0, padL = cw > w ? Math.floor((cw - w) / 2) : 0;
  const ph = ch > h ? ch : h, pw = cw > w ? cw : w; // size after torchvision's padding
  if (ph === h && pw === w && ch === h && cw === w) return img;
  const top = roundHalfEven((ph - ch) / 2) - padT, left = roundHalfEven((pw - cw) / 2) - padL;
  return crop(img, top, left, ch, cw);
}

/** torchvision's F.pil_to_tensor: (3, H, W) uint8. */
export function pilToTensor(img: RgbImage): Tensor {
  checkRgbImage(img);
  const { data, width: w, height: h } = img;
  const n = w * h;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = data[3 * i]; out[n + i] = data[3 * i + 1]; out[2 * n + i] = data[3 * i + 2];
  }
  return new Tensor(out, [3, h, w], { dtype: 'uint8' });
}

/** torchvision's F.convert_image_dtype to float32: uint8 / 255 (float32 division); float32 unchanged. */
export function convertImageDtype(t: Tensor): Tensor {
  if (t.dtype === 'float32') return t;
  if (t.dtype !== 'uint8') throw new TypeError(`Expected a uint8 or float32 image tensor but received ${t.dtype}`);
  const src = t.contiguousData() as Uint8Array;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f(src[i] / 255);
  return new Tensor(out, t.shape);
}

/** torchvision's F.to_tensor on an RgbImage: (3, H, W) float32 in [0, 1]. */
export function toTensor(img: RgbImage): Tensor {
  return convertImageDtype(pilToTensor(img));
}

function checkStats(v: readonly number[], c: number, what: string): Float32Array {
  if (!Array.isArray(v) || !(v.length === c || v.length === 1) || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new TypeError(`Expected ${c} finite numbers (or 1) for ${what} but received ${JSON.stringify(v)}`);
  }
  return Float32Array.from(v.length === 1 ? new Array(c).fill(v[0]) : v);
}

/** torchvision's F.normalize on a float32 (..., C, H, W) tensor: (x - mean[c]) / std[c] in float32; a new tensor. */
export function normalize(t: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  if (t.dtype !== 'float32') throw new TypeError(`Expected a float32 tensor for normalize but received ${t.dtype} (convert it with convertImageDtype first)`);
  if (t.ndim < 3) throw new TypeError(`Expected a tensor image (..., C, H, W) for normalize but received shape [${t.shape}]`);
  const c = t.shape[t.ndim - 3], hw = t.shape[t.ndim - 2] * t.shape[t.ndim - 1];
  const m = checkStats(mean, c, 'mean'), s = checkStats(std, c, 'std');
  if (s.some((v) => v === 0)) throw new RangeError(`std evaluated to zero after conversion to float32, leading to division by zero (std ${JSON.stringify(std)})`);
  const x = t.contiguousData() as Float32Array;
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const ch = Math.floor(i / hw) % c;
    y[i] = f(f(x[i] - m[ch]) / s[ch]);
  }
  return new Tensor(y, t.shape);
}

// ---- transform objects ----------------------------------------------------------------------------------------------

/** A step of a preprocessing pipeline: forward(x) as torchvision's transforms' __call__. */
export interface Transform<I = any, O = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  forward(x: I): O;
  toString(): string;
}

export class Resize implements Transform<ImageLike, ImageLike> {
  readonly size: number[];
  readonly interpolation: Interpolation;
  readonly maxSize: number | undefined;
  readonly antialias: boolean | undefined;
  constructor(size: Size, o: ResizeOptions = {}) {
    this.size = sizeList(size, 'size');
    this.interpolation = checkInterpolation(o.interpolation ?? 'bilinear');
    this.maxSize = o.maxSize;
    this.antialias = o.antialias;
    if (o.maxSize !== undefined && this.size.length === 2) resizedSize(1, 1, size, o.maxSize); // throws the message
  }
  forward<T extends ImageLike>(img: T): T {
    return resize(img, this.size as unknown as Size, { interpolation: this.interpolation, maxSize: this.maxSize, antialias: this.antialias });
  }
  toString(): string {
    return `Resize(size=${this.size.length === 1 ? this.size[0] : `[${this.size}]`}, interpolation=${this.interpolation}, max_size=${this.maxSize ?? 'None'}, antialias=${this.antialias ?? 'None'})`;
  }
}

export class CenterCrop implements Transform<ImageLike, ImageLike> {
  readonly size: [number, number];
  constructor(size: Size) {
    const s = sizeList(size, 'size');
    this.size = s.length === 1 ? [s[0], s[0]] : [s[0], s[1]];
  }
  forward<T extends ImageLike>(img: T): T {
    return centerCrop(img, this.size);
  }
  toString(): string {
    return `CenterCrop(size=(${this.size.join(', ')}))`;
  }
}

export class PILToTensor implements Transform<RgbImage, Tensor> {
  forward(img: RgbImage): Tensor {
    return pilToTensor(img);
  }
  toString(): string {
    return 'PILToTensor()';
  }
}

export class ToTensor implements Transform<RgbImage | Tensor, Tensor> {
  forward(img: RgbImage | Tensor): Tensor {
    return img instanceof Tensor ? convertImageDtype(img) : toTensor(img);
  }
  toString(): string {
    return 'ToTensor()';
  }
}

export class ConvertImageDtype implements Transform<Tensor, Tensor> {
  forward(t: Tensor): Tensor {
    return convertImageDtype(t);
  }
  toString(): string {
    return 'ConvertImageDtype(float32)';
  }
}

export class Normalize implements Transform<Tensor, Tensor> {
  readonly mean: readonly number[];
  readonly std: readonly number[];
  constructor(mean: readonly number[], std: readonly number[]) {
    this.mean = [...mean];
    this.std = [...std];
  }
  forward(t: Tensor): Tensor {
    return normalize(t, this.mean, this.std);
  }
  toString(): string {
    return `Normalize(mean=[${this.mean.join(', ')}], std=[${this.std.join(', ')}])`;
  }
}

export class Compose implements Transform {
  readonly transforms: readonly Transform[];
  constructor(transforms: readonly Transform[]) {
    if (!Array.isArray(transforms) || !transforms.every((t) => t && typeof t.forward === 'function')) {
      throw new TypeError('Expected an array of transforms (objects with forward(x)) for Compose');
    }
    this.transforms = [...transforms];
  }
  forward(x: unknown): any { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const t of this.transforms) x = t.forward(x);
    return x;
  }
  toString(): string {
    return `Compose(\n${this.transforms.map((t) => `    ${t}`).join('\n')}\n)`;
  }
}

// ---- the ImageClassification preset ---------------------------------------------------------------------------------

/** The preset's parameters: the shape of a Weights entry's `transforms` (models/weights.ts). */
export interface ImageClassificationOptions {
  cropSize: number;
  /** Default 256. */
  resizeSize?: number;
  /** Default ImageNet's (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225). */
  mean?: readonly number[];
  std?: readonly number[];
  /** Default 'bilinear'. */
  interpolation?: Interpolation;
  /** Tensor input only (RgbImage input is always antialiased). Default true, as the registry's entries say and
   * torchvision >= 0.17's preset does; torchvision 0.14's preset left it unset, i.e. false on tensors. */
  antialias?: boolean;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * torchvision.transforms._presets.ImageClassification: resize the shorter side to resizeSize, center-crop
 * cropSize, scale to [0, 1] float32, normalize. Accepts an RgbImage (as PIL images) or a (..., 3, H, W) tensor.
 */
export class ImageClassification implements Transform<ImageLike, Tensor> {
  readonly cropSize: number;
  readonly resizeSize: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly interpolation: Interpolation;
  readonly antialias: boolean;
  constructor(o: ImageClassificationOptions) {
    this.cropSize = sizeList(o?.cropSize, 'cropSize')[0];
    this.resizeSize = sizeList(o.resizeSize ?? 256, 'resizeSize')[0];
    this.mean = [...(o.mean ?? IMAGENET_MEAN)];
    this.std = [...(o.std ?? IMAGENET_STD)];
    checkStats(this.mean, 3, 'mean');
    checkStats(this.std, 3, 'std');
    this.interpolation = checkInterpolation(o.interpolation ?? 'bilinear');
    this.antialias = o.antialias ?? true;
  }
  forward(img: ImageLike): Tensor {
    const resized = resize(img, this.resizeSize, { interpolation: this.interpolation, antialias: this.antialias });
    const cropped = centerCrop(resized, this.cropSize);
    const t = cropped instanceof Tensor ? cropped : pilToTensor(cropped);
    return normalize(convertImageDtype(t), this.mean, this.std);
  }
  toString(): string {
    return `ImageClassification(\n    crop_size=[${this.cropSize}]\n    resize_size=[${this.resizeSize}]\n    mean=[${this.mean.join(', ')}]\n    std=[${this.std.join(', ')}]\n    interpolation=${this.interpolation}\n)`;
  }
  describe(): string {
    return `Accepts RgbImage, batched (B, C, H, W) and single (C, H, W) image tensors. The images are resized to ` +
      `resize_size=[${this.resizeSize}] using interpolation=${this.interpolation}, followed by a central crop of ` +
      `crop_size=[${this.cropSize}]. Finally the values are first rescaled to [0.0, 1.0] and then normalized using ` +
      `mean=[${this.mean.join(', ')}] and std=[${this.std.join(', ')}].`;
  }
}

/** The preset as a function of a registry entry's parameters: `imageClassification(weights.transforms)`. */
export function imageClassification(o: ImageClassificationOptions): ImageClassification {
  return new ImageClassification(o);
}


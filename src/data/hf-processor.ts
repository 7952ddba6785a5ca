// transformers' ConvNextImageProcessor, the image processor of microsoft/resnet-* checkpoints, configured from a
// preprocessor_config.json dict (transformers' models/convnext/image_processing_convnext.py and image_transforms.py):
//   1. resize (do_resize): shortest_edge < 384 -> the shorter side to int(shortest_edge / crop_pct) (the longer side
//      int(new_short * long / short), get_resize_output_image_size), then a center crop to shortest_edge square;
//      shortest_edge >= 384 -> warp to shortest_edge x shortest_edge, no crop. Resizing goes through PIL
//      (Image.resize with `resample`, PIL's integer codes: 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box,
//      5 hamming), which resample.ts reproduces exactly;
//   2. rescale (do_rescale): value * rescale_factor in float64, then float32;
//   3. normalize (do_normalize): (x - mean) / std in float32;
//   4. channels first: (3, H, W) float32; preprocess() of several images stacks them into pixel_values (N, 3, H, W).
// HF's center_crop differs from torchvision's: offsets floor((H - h) / 2) (torchvision rounds half to even) and, when
// the crop is larger, the extra zero row/column goes on top/left (torchvision puts it at the bottom/right).

import { readFile } from 'node:fs/promises';
import { Tensor } from '../tensor/tensor.js';
import { type RgbImage, checkRgbImage } from './image.js';
import { PIL_FILTER_CODES, type PilFilter, pilResize } from './resample.js';
import { crop, resizedSize } from './transforms.js';

/** preprocessor_config.json keys as transformers spells them (others are kept and ignored). */
export interface ConvNextImageProcessorConfig {
  do_resize?: boolean;
  /** {shortest_edge} or a legacy int (transformers' get_size_dict turns it into {shortest_edge}). */
  size?: number | { shortest_edge?: number; [k: string]: unknown };
  crop_pct?: number | null;
  resample?: number;
  do_rescale?: boolean;
  rescale_factor?: number;
  do_normalize?: boolean;
  image_mean?: number | number[];
  image_std?: number | number[];
  image_processor_type?: string;
  feature_extractor_type?: string;
  [k: string]: unknown;
}

/** transformers' IMAGENET_STANDARD_MEAN / STD, ConvNext's defaults (microsoft/resnet-* configs set ImageNet's). */
const STANDARD = [0.5, 0.5, 0.5];
const f = Math.fround;

/** transformers' image_transforms.center_crop on an RgbImage: floor offsets, zero fill (extra row/column top/left). */
export function hfCenterCrop(img: RgbImage, height: number, width: number): RgbImage {
  checkRgbImage(img);
  return crop(img, Math.floor((img.height - height) / 2), Math.floor((img.width - width) / 2), height, width);
}

function bad(key: string, expected: string, v: unknown): TypeError {
  return new TypeError(`preprocessor_config.json: expected ${expected} for "${key}" but received ${JSON.stringify(v)}`);
}

function bool(cfg: ConvNextImageProcessorConfig, key: string, dflt: boolean): boolean {
  const v = cfg[key] ?? dflt;
  if (typeof v !== 'boolean') throw bad(key, 'true or false', v);
  return v;
}

function stats(cfg: ConvNextImageProcessorConfig, key: string): Float32Array {
  const v = cfg[key] ?? STANDARD;
  const a = typeof v === 'number' ? [v, v, v] : v;
  if (!Array.isArray(a) || a.length !== 3 || !a.every((x) => typeof x === 'number' && Number.isFinite(x))) throw bad(key, 'a number or 3 numbers', v);
  if (key === 'image_std' && a.some((x) => x === 0)) throw bad(key, 'non-zero numbers', v);
  return Float32Array.from(a as number[]);
}

export class ConvNextImageProcessor {
  readonly doResize: boolean;
  readonly shortestEdge: number;
  readonly cropPct: number;
  readonly resample: PilFilter;
  readonly doRescale: boolean;
  readonly rescaleFactor: number;
  readonly doNormalize: boolean;
  readonly imageMean: readonly number[];
  readonly imageStd: readonly number[];
  private readonly mean32: Float32Array;
  private readonly std32: Float32Array;

  constructor(config: ConvNextImageProcessorConfig = {}) {
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw bad('(root)', 'a JSON object', config);
    const type = config.image_processor_type ?? config.feature_extractor_type;
    if (type !== undefined && !/^ConvNext(ImageProcessor|ImageProcessorFast|FeatureExtractor)$/.test(String(type))) {
      throw new TypeError(`preprocessor_config.json: this is a ${String(type)} configuration; only ConvNextImageProcessor (the processor of microsoft/resnet-*) is implemented`);
    }
    this.doResize = bool(config, 'do_resize', true);
    const size = config.size ?? { shortest_edge: 384 };
    const se = typeof size === 'number' ? size : size.shortest_edge;
    if (!Number.isInteger(se) || (se as number) <= 0) throw bad('size', 'a positive int or {"shortest_edge": int} (ConvNext resizes by the shortest edge)', size);
    this.shortestEdge = se as number;
    const pct = config.crop_pct ?? 224 / 256;
    if (typeof pct !== 'number' || !(pct > 0)) throw bad('crop_pct', 'a positive number or null', pct);
    this.cropPct = pct;
    const r = config.resample ?? 3;
    if (!Number.isInteger(r) || r < 0 || r >= PIL_FILTER_CODES.length) throw bad('resample', `a PIL resampling code 0..5 (${PIL_FILTER_CODES.map((n, i) => `${i} ${n}`).join(', ')})`, r);
    this.resample = PIL_FILTER_CODES[r];
    this.doRescale = bool(config, 'do_rescale', true);
    const rf = config.rescale_factor ?? 1 / 255;
    if (typeof rf !== 'number' || !Number.isFinite(rf)) throw bad('rescale_factor', 'a number', rf);
    this.rescaleFactor = rf;
    this.doNormalize = bool(config, 'do_normalize', true);
    this.mean32 = stats(config, 'image_mean');
    this.std32 = stats(config, 'image_std');
    this.imageMean = Array.from(typeof config.image_mean === 'number' ? [config.image_mean, config.image_mean, config.image_mean] : config.image_mean ?? STANDARD);
    this.imageStd = Array.from(typeof config.image_std === 'number' ? [config.image_std, config.image_std, config.image_std] : config.image_std ?? STANDARD);
  }

  /** From a preprocessor_config.json file (read asynchronously). */
  static async fromFile(path: string): Promise<ConvNextImageProcessor> {
    const text = await readFile(path, 'utf8');
    let cfg: unknown;
    try {
      cfg = JSON.parse(text);
    } catch (e) {
      throw new SyntaxError(`${path}: not valid JSON (${(e as Error).message})`);
    }
    try {
      return new ConvNextImageProcessor(cfg as ConvNextImageProcessorConfig);
    } catch (e) {
      throw new TypeError(`${path}: ${(e as Error).message}`);
    }
  }

  /** The resize (and crop) step on uint8 pixels. */
  resize(img: RgbImage): RgbImage {
    checkRgbImage(img);
    const se = this.shortestEdge;
    if (se >= 384) return { data: pilResize(img.data, img.width, img.height, 3, se, se, this.resample), width: se, height: se };
    const [oh, ow] = resizedSize(img.height, img.width, Math.trunc(se / this.cropPct));
    const resized = { data: pilResize(img.data, img.width, img.height, 3, ow, oh, this.resample), width: ow, height: oh };
    return hfCenterCrop(resized, se, se);
  }

  /** One image -> (3, H, W) float32, exactly as transformers' preprocess(images)['pixel_values'][0]. */
  preprocessOne(img: RgbImage): Tensor {
    const r = this.doResize ? this.resize(img) : checkRgbImage(img);
    const n = r.width * r.height;
    const out = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        let v = r.data[3 * i + c];
        if (this.doRescale) v = f(v * this.rescaleFactor);
        if (this.doNormalize) v = f(f(v - this.mean32[c]) / this.std32[c]);
        out[c * n + i] = v;
      }
    }
    return new Tensor(out, [3, r.height, r.width]);
  }

  /** Images -> pixel_values (N, 3, H, W); every image must come out the same size (do_resize gives that). */
  preprocess(images: RgbImage | readonly RgbImage[]): { pixel_values: Tensor } {
    const list = Array.isArray(images) ? images : [images as RgbImage];
    if (list.length === 0) throw new RangeError('preprocess: no images');
    const ts = list.map((im) => this.preprocessOne(im));
    const [c, h, w] = ts[0].shape;
    const out = new Float32Array(ts.length * c * h * w);
    ts.forEach((t, i) => {
      if (t.shape[1] !== h || t.shape[2] !== w) throw new RangeError(`preprocess: image ${i} is ${t.shape[2]}x${t.shape[1]} after processing, image 0 is ${w}x${h}; they cannot form a batch`);
      out.set(t.contiguousData() as Float32Array, i * c * h * w);
    });
    return { pixel_values: new Tensor(out, [ts.length, c, h, w]) };
  }

  toJSON(): ConvNextImageProcessorConfig {
    return {
      image_processor_type: 'ConvNextImageProcessor', do_resize: this.doResize, size: { shortest_edge: this.shortestEdge },
      crop_pct: this.cropPct, resample: PIL_FILTER_CODES.indexOf(this.resample), do_rescale: this.doRescale,
      rescale_factor: this.rescaleFactor, do_normalize: this.doNormalize, image_mean: [...this.imageMean], image_std: [...this.imageStd],
    };
  }
}

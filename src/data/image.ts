// Image files in, RGB pixels out: the equivalent of PIL's `Image.open(path).convert('RGB')`, decoded by sharp
// (libvips) off the event loop.
//
// Policy, chosen so that our pixels equal what a PyTorch pipeline sees:
// - Formats: JPEG, PNG, WebP, GIF (first frame), TIFF, recognised by their magic bytes; the file name and extension
//   are never trusted (a text file named .jpg is "not an image", a BMP is "unsupported"). sharp's loader must agree.
// - Colour: RGB uint8, (H, W, 3) interleaved, converted as PIL 9.4's convert('RGB') does: grey replicated; alpha
//   dropped, never composited (grey+alpha, RGBA, palette with tRNS); palette expanded; CMYK by PIL's naive rule
//   (R = 255 - C - K + C*K/255, no colour management); embedded ICC profiles ignored (PIL ignores them too).
//   16-bit (PIL 9.4's rules, depth16 'pil', the default): RGB/RGBA/grey+alpha keep the high byte (v >> 8); 16-bit grey
//   without alpha opens in PIL as mode I and convert('RGB') CLIPS it to 255 (so most of a 16-bit grey image turns
//   white, in PIL and here). depth16 'high-byte' takes the high byte for grey too.
//   Known difference: pixels a GIF marks transparent come out black here (libvips renders them RGBA 0,0,0,0),
//   while PIL's convert('RGB') gives the palette colour stored at the transparent index.
// - Orientation: 'ignore' (default) leaves the EXIF orientation alone, as PIL's Image.open and torchvision do;
//   'exif' applies it (PIL's ImageOps.exif_transpose).
// - Decompression bombs: an image of more than maxPixels (default PIL's MAX_IMAGE_PIXELS, 89478485) is refused from
//   its header, before any pixel is decoded (sharp's limitInputPixels guards the decoder as well).
// - Damage: an empty, truncated or corrupt file is an ImageDecodeError naming the file; sharp's failOn is 'warning'
//   by default, so a JPEG whose entropy data is corrupt fails (PIL: "broken data stream") instead of decoding to a
//   partly grey image.
// sharp is loaded on first use; if it cannot load, SharpLoadError says why and how to fix it.

import { readFile } from 'node:fs/promises';
import type SharpModule from 'sharp';

type Sharp = typeof SharpModule;

/** Decoded pixels: (height, width, 3) interleaved RGB, uint8. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';

/** PIL's Image.MAX_IMAGE_PIXELS: int(1024 * 1024 * 1024 // 4 // 3). */
export const MAX_IMAGE_PIXELS = 89_478_485;

export interface ReadImageOptions {
  /** Refuse images with more pixels than this (default MAX_IMAGE_PIXELS); Infinity disables the check. */
  maxPixels?: number;
  /** The name errors use when `src` is bytes (default '<buffer>'). */
  name?: string;
  /** 'ignore' (default, as PIL and torchvision) or 'exif' (rotate/flip upright as the EXIF orientation says). */
  orientation?: 'exif' | 'ignore';
  /** sharp's failOn: how damaged pixel data may be before decoding fails (default 'warning', the strictest). */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
  /** 16-bit to 8-bit: 'pil' (default, PIL 9.4's rules, see the file header) or 'high-byte' (v >> 8 everywhere). */
  depth16?: 'pil' | 'high-byte';
}

/** An image that cannot be decoded: `file` names it, `reason` says why. */
export class ImageDecodeError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'ImageDecodeError';
    this.file = file;
    this.reason = reason;
  }
}

/** sharp (libvips) did not load on this platform: no image can be decoded. */
export class SharpLoadError extends Error {
  constructor(cause: unknown) {
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    super(`cannot decode images: the sharp module (libvips) did not load (${why}).\n` +
      'Possible solutions:\n' +
      '- install it with its prebuilt libvips for this platform: npm install --include=optional sharp\n' +
      `- or rebuild it: npm rebuild sharp (platform ${process.platform}-${process.arch}, Node ${process.versions.node})\n` +
      '- see https://sharp.pixelplumbing.com/install', { cause });
    this.name = 'SharpLoadError';
  }
}

let sharpPromise: Promise<Sharp> | undefined;

/** Import sharp (`specifier` exists for tests); throws SharpLoadError when it cannot load. */
export async function loadSharp(specifier = 'sharp'): Promise<Sharp> {
  try {
    const m = (await import(specifier)) as { default?: Sharp };
    const fn = m.default ?? (m as unknown as Sharp);
    if (typeof fn !== 'function') throw new Error(`${specifier} did not export a function`);
    return fn;
  } catch (e) {
    throw new SharpLoadError(e);
  }
}

function getSharp(): Promise<Sharp> {
  sharpPromise ??= loadSharp().catch((e: unknown) => {
    sharpPromise = undefined;
    throw e;
  });
  return sharpPromise;
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** The image format from the first bytes (magic numbers), or null. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && ascii(b, 0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 4 && (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*' || ascii(b, 0, 4) === 'II+\0' || ascii(b, 0, 4) === 'MM\0+')) return 'tiff';
  return null;
}

/** What a file we do not decode seems to be, for the error message. */
function describeContent(b: Uint8Array): string {
  if (b.length >= 2 && ascii(b, 0, 2) === 'BM') return 'a BMP image, which is not supported';
  if (b.length >= 12 && ascii(b, 4, 8) === 'ftyp') return `an ISO media file (${ascii(b, 8, 12).trim()}: HEIF/AVIF/MP4), which is not supported`;
  if (b.length >= 4 && ascii(b, 0, 4) === '%PDF') return 'a PDF document, not an image';
  const head = b.subarray(0, 256);
  const text = head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127));
  if (text) {
    const s = ascii(head, 0, head.length).trimStart();
    if (s.startsWith('<svg') || s.startsWith('<?xml')) return 'SVG/XML text, which is not supported';
    return `text (${JSON.stringify(s.slice(0, 40))}), not an image`;
  }
  return `not an image (starts with bytes ${Array.from(b.subarray(0, 8), (c) => c.toString(16).padStart(2, '0')).join(' ')})`;
}

const FORMAT_NAMES: Record<ImageFormat, string> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', gif: 'GIF', tiff: 'TIFF' };

/** Read and decode an image file (path) or encoded bytes into RGB pixels; see the file header for the policy. */
export async function readImage(src: string | Uint8Array, opts: ReadImageOptions = {}): Promise<RgbImage> {
  const name = typeof src === 'string' ? src : opts.name ?? '<buffer>';
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  if (!(maxPixels > 0)) throw new RangeError(`Expected a positive number for maxPixels but received ${String(maxPixels)} of type ${typeof maxPixels}`);
  const orientation = opts.orientation ?? 'ignore';
  if (orientation !== 'ignore' && orientation !== 'exif') throw new RangeError(`Expected 'ignore' or 'exif' for orientation but received ${String(orientation)}`);
  let bytes: Uint8Array;
  if (typeof src === 'string') {
    try {
      bytes = await readFile(src);
    } catch (e) {
      throw new ImageDecodeError(name, `cannot read the file (${(e as Error).message})`, { cause: e });
    }
  } else if (src instanceof Uint8Array) {
    bytes = src;
  } else {
    throw new TypeError(`Expected a file path or a Uint8Array for src but received ${String(src)} of type ${typeof src}`);
  }
  if (bytes.length === 0) throw new ImageDecodeError(name, 'the file is empty (0 bytes)');
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageDecodeError(name, `the content is ${describeContent(bytes)}; expected JPEG, PNG, WebP, GIF or TIFF (the file name is not trusted)`);
  return decode(await getSharp(), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), format, name, maxPixels, orientation, opts);
}

async function decode(sharp: Sharp, buf: Buffer, format: ImageFormat, name: string, maxPixels: number,
  orientation: 'exif' | 'ignore', opts: ReadImageOptions): Promise<RgbImage> {
  const fmt = FORMAT_NAMES[format];
  const sharpOpts = {
    failOn: opts.failOn ?? 'warning',
    limitInputPixels: Number.isFinite(maxPixels) ? Math.floor(maxPixels) : false,
    ignoreIcc: true, // PIL does not colour-manage either
    autoOrient: orientation === 'exif',
    page: 0, pages: 1, // GIF/WebP/TIFF: the first frame, as PIL's Image.open
  } as const;
  const fail = (what: string, e: unknown) => new ImageDecodeError(name, `cannot decode the ${fmt} ${what} (damaged or truncated file?): ${(e as Error).message ?? String(e)}`, { cause: e });
  let meta: SharpModule.Metadata;
  try {
    meta = await sharp(buf, { ...sharpOpts, limitInputPixels: false }).metadata(); // the header only: we check the size below
  } catch (e) {
    throw fail('header', e);
  }
  if (meta.format !== format) {
    throw new ImageDecodeError(name, `the content looks like ${fmt} but libvips reads it as ${String(meta.format)}`);
  }
  const w = meta.width ?? 0, h = meta.height ?? 0;
  if (w * h > maxPixels) {
    throw new ImageDecodeError(name, `the image is ${w}x${h} = ${w * h} pixels, more than the limit of ${maxPixels} ` +
      '(maxPixels, default PIL\'s MAX_IMAGE_PIXELS): refusing a possible decompression bomb');
  }
  try {
    const depth16 = meta.depth === 'ushort' && (meta.space === 'grey16' || meta.space === 'rgb16');
    let img = sharp(buf, sharpOpts);
    if (meta.space === 'cmyk') img = img.pipelineColourspace('cmyk').toColourspace('cmyk');
    else if (depth16) img = img.toColourspace(meta.space as 'grey16' | 'rgb16');
    const { data, info } = await img.raw({ depth: depth16 ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    if (meta.space === 'cmyk') return { data: cmykToRgb(data, n, info.channels), width: info.width, height: info.height };
    if (depth16) {
      const words = data.byteOffset % 2 === 0 ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2) : new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
      const clip = (opts.depth16 ?? 'pil') === 'pil' && meta.space === 'grey16' && !meta.hasAlpha;
      return { data: sixteenToRgb(words, n, info.channels, meta.space === 'grey16', clip), width: info.width, height: info.height };
    }
    return { data: toRgb(data, n, info.channels), width: info.width, height: info.height };
  } catch (e) {
    throw fail('image', e);
  }
}

/** (n, c) uint8 -> (n, 3): drop alpha (c = 2 or 4), replicate grey (c = 1 or 2). */
function toRgb(src: Uint8Array, n: number, c: number): Uint8Array {
  if (c === 3) return new Uint8Array(src.buffer, src.byteOffset, n * 3);
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    if (c >= 3) {
      out[3 * i] = src[c * i]; out[3 * i + 1] = src[c * i + 1]; out[3 * i + 2] = src[c * i + 2];
    } else {
      out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src[c * i];
    }
  }
  return out;
}

/** PIL's cmyk2rgb (Convert.c): nk = 255 - K; R = clip(nk - C * nk / 255) with PIL's rounded MULDIV255. */
function cmykToRgb(src: Uint8Array, n: number, c: number): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const nk = 255 - src[c * i + 3];
    for (let ch = 0; ch < 3; ch++) {
      const t = src[c * i + ch] * nk + 128;
      const v = nk - (((t >> 8) + t) >> 8);
      out[3 * i + ch] = v < 0 ? 0 : v;
    }
  }
  return out;
}

/** 16-bit (n, c) -> RGB uint8: the high byte, or (PIL's mode I -> RGB) the value clipped to 255. */
function sixteenToRgb(src: Uint16Array, n: number, c: number, grey: boolean, clip: boolean): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < 3; ch++) {
      const v = src[c * i + (grey ? 0 : ch)];
      out[3 * i + ch] = clip ? Math.min(v, 255) : v >> 8;
    }
  }
  return out;
}

/** Check that `img` is a well-formed RgbImage; `what` names it in the error. */
export function checkRgbImage(img: RgbImage, what = 'image'): RgbImage {
  if (!img || !(img.data instanceof Uint8Array) || !Number.isInteger(img.width) || !Number.isInteger(img.height) ||
    img.width <= 0 || img.height <= 0 || img.data.length !== img.width * img.height * 3) {
    const got = img && img.data ? `${img.width}x${img.height} with ${img.data.length} bytes` : String(img);
    throw new TypeError(`Expected an RgbImage {data: Uint8Array of width*height*3 bytes, width, height} for ${what} but received ${got}`);
  }
  return img;
}

export function isRgbImage(x: unknown): x is RgbImage {
  const o = x as RgbImage;
  return typeof o === 'object' && o !== null && o.data instanceof Uint8Array && typeof o.width === 'number' && typeof o.height === 'number';
}

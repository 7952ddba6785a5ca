// Byte-level helpers shared by the tensor file formats (safetensors.ts, npy.ts, pth.ts): the error type they throw,
// storage <-> bytes (zero-copy when aligned, else a copy, optionally byte-swapped), exact float16/bfloat16
// conversions, whole-file reads into memory that tensors can then view, and atomic file writes.
// It is not a format: nothing here knows about headers. It assumes a little-endian host (every platform Node 20
// ships for) and says so at load time if that is ever false.
// The one import from backend/ is the native addon's page allocator (nativeAllocPages), used only as memory.

import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { type DType, type Storage, allocStorage, itemSize, storageView } from '../tensor/dtype.js';
import { nativeAllocPages } from '../backend/native.js';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('resnet-ts io: a little-endian host is required (typed arrays use host byte order)');
}

/** A malformed or unsupported tensor file. `file` names the file (or '<buffer>'), `key` the entry if any. */
export class TensorFileError extends Error {
  readonly file: string;
  readonly key: string | undefined;
  constructor(file: string, message: string, key?: string) {
    super(`${file}: ${key === undefined ? '' : `${JSON.stringify(key)}: `}${message}`);
    this.name = 'TensorFileError';
    this.file = file;
    this.key = key;
  }
}

/**
 * `n` elements of dtype `d` stored at `bytes[byteOffset..]` in little-endian order: a view into the same memory
 * when the absolute address is aligned to the item size, otherwise a copy. `swap` (big-endian source) always copies
 * and reverses each item's bytes.
 */
export function storageFromBytes(d: DType, bytes: Uint8Array, byteOffset: number, n: number, swap = false): Storage {
  const size = itemSize(d);
  const abs = bytes.byteOffset + byteOffset;
  if (!swap && abs % size === 0) return storageView(d, bytes.buffer, abs, n);
  const out = allocStorage(d, n);
  const ob = new Uint8Array(out.buffer, out.byteOffset, n * size);
  ob.set(bytes.subarray(byteOffset, byteOffset + n * size));
  if (swap && size > 1) ob.set(byteSwapped(ob, size));
  return out;
}

/** A copy of `b` with the bytes of each `size`-byte item reversed. */
export function byteSwapped(b: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i += size) for (let j = 0; j < size; j++) out[i + j] = b[i + size - 1 - j];
  return out;
}

/** The bytes of a storage (no copy). */
export function bytesOf(s: Storage): Uint8Array {
  return new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
}

/** Index of the first byte that is neither 0 nor 1 (a malformed bool), or -1. */
export function badBoolIndex(b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) if (b[i] > 1) return i;
  return -1;
}

// ---- float16 / bfloat16 <-> float32, bit-exact -------------------------------------------------------------
// IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. bfloat16: the top 16 bits of a float32.
// Widening is exact (every half and bfloat16 is a float32); a float16 NaN keeps its payload and is made quiet, bit
// for bit as torch's .float() does (tests check all 65536 patterns against torch). Narrowing rounds to nearest,
// ties to even, as numpy's astype(float16) and torch's .half()/.bfloat16() do; NaN stays a (quiet) NaN.

/** float16 bits -> float32 bits. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant === 0 ? 0 : 0x400000 | (mant << 13))) >>> 0; // inf; NaN made quiet as torch/F16C do
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: rebias 15 -> 127
  if (mant === 0) return sign >>> 0; // +-0
  // subnormal m * 2^-24: shift the leading 1 up to the implicit bit, lowering the exponent each step
  let e = 113;
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/** float32 bits -> float16 bits, round to nearest even. */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // half exponent field if normal
  if (e >= 31) return sign | 0x7c00; // overflow
  if (e >= 1) {
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry may run into the exponent: still right
    return sign | h;
  }
  // half subnormal (or zero): m = round(full * 2^(exp - 126)) where full has the implicit bit
  const shift = 126 - exp; // >= 14
  if (shift > 24) return sign; // below 2^-25: rounds to zero
  const full = mant | 0x800000;
  let m = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (m & 1) === 1)) m++;
  return sign | m;
}

/** float32 bits -> bfloat16 bits, round to nearest even. */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // NaN: keep it a NaN
  return Math.floor((x + 0x7fff + ((x >>> 16) & 1)) / 0x10000) & 0xffff;
}

let f16Table: Uint32Array | null = null; // float16 bits -> float32 bits, built on first use (256 KB)

/** `n` float16 (or bfloat16) little-endian values at `bytes[off..]` widened to a new Float32Array. */
export function halfToFloat32(bytes: Uint8Array, off: number, n: number, kind: 'F16' | 'BF16', swap = false): Float32Array {
  let src: Uint16Array;
  if (swap) src = new Uint16Array(byteSwapped(bytes.subarray(off, off + 2 * n), 2).buffer);
  else if ((bytes.byteOffset + off) % 2 === 0) src = new Uint16Array(bytes.buffer, bytes.byteOffset + off, n);
  else src = new Uint16Array(new Uint8Array(bytes.subarray(off, off + 2 * n)).buffer); // aligned copy
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  if (kind === 'BF16') {
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  } else {
    if (!f16Table) {
      f16Table = new Uint32Array(65536);
      for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
    }
    const table = f16Table;
    for (let i = 0; i < n; i++) bits[i] = table[src[i]];
  }
  return out;
}

/** float32 values narrowed to float16 or bfloat16, as little-endian bytes. */
export function float32ToHalf(src: Float32Array, kind: 'F16' | 'BF16'): Uint8Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length); // a Float32Array is always 4-aligned
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = kind === 'F16' ? f32BitsToF16Bits(bits[i]) : f32BitsToBf16Bits(bits[i]);
  return new Uint8Array(out.buffer);
}

// ---- whole-file reads ---------------------------------------------------------------------------------------
// A checkpoint is read whole and its tensors view that memory (zero-copy), so the memory should be cheap to fill
// and to touch. In a VM each first touch of a fresh 4 KB page can cost microseconds: reading a 100 MB file into a
// new Buffer (fs.readFileSync) spent ~3/4 of its time in page faults here. From PAGES_MIN up the buffer comes from
// the native addon instead (its own mapping with transparent huge pages requested: 512 pages per fault), when the
// addon is loaded; otherwise from Buffer.allocUnsafeSlow. Either way the bytes are read with pread into it.

const PAGES_MIN = 2 << 20;
const READ_CHUNK = 1 << 30;

function bufferFor(size: number): Uint8Array {
  const pages = size >= PAGES_MIN ? nativeAllocPages(size) : null;
  return pages ? new Uint8Array(pages) : Buffer.allocUnsafeSlow(size);
}

/**
 * The bytes of the file at `path` (fs.readFileSync's result, in memory from bufferFor). A regular file is read up to
 * the size it had when opened (fewer bytes if it shrank meanwhile); pipes and devices are read to their end.
 */
export function readWholeFileSync(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return readFileSync(fd);
    const buf = bufferFor(st.size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, Math.min(buf.length - n, READ_CHUNK), n);
      if (got === 0) break;
      n += got;
    }
    return n === buf.length ? buf : buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** As readWholeFileSync, reading on libuv's thread pool (the event loop stays free). */
export async function readWholeFile(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) return await fh.readFile();
    const buf = bufferFor(st.size);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, Math.min(buf.length - n, READ_CHUNK), n);
      if (bytesRead === 0) break;
      n += bytesRead;
    }
    return n === buf.length ? buf : buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

// ---- atomic writes ------------------------------------------------------------------------------------------

/**
 * Write `chunks` to `path` atomically: into a temp file in the same directory (same filesystem), fsync, then
 * rename over `path`. On any failure the temp file is removed and `path` is left as it was.
 */
/** The chunks joined into one array (the in-memory twin of writeFileAtomicSync). */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

export function writeFileAtomicSync(path: string, chunks: Uint8Array[]): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd = -1;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    for (const c of chunks) {
      for (let done = 0; done < c.length; ) done += writeSync(fd, c, done, c.length - done);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file was never created, or is already gone
    }
    throw new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

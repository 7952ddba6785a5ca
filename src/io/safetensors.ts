// safetensors reader and writer (https://github.com/huggingface/safetensors, format described in its README):
//
//   [8 bytes: N, little-endian u64] [N bytes: UTF-8 JSON header] [data section]
//   header = { "__metadata__"?: {string: string}, "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]} }
//
// data_offsets are relative to the data section. Like the Rust reference we require the ranges, sorted, to tile the
// data section exactly (no overlap, no hole, no trailing bytes). The reader checks every field before it touches the
// data and throws a TensorFileError naming the file, the entry and what was expected; it never executes anything.
// Tensors are zero-copy views into the input buffer when the dtype matches ours and the bytes are aligned.
// This file is not a state-dict matcher (names are returned as the file has them) and does no memory mapping.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { DType } from '../tensor/dtype.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { TensorFileError, badBoolIndex, bytesOf, concatChunks, float32ToHalf, halfToFloat32, storageFromBytes, writeFileAtomicSync } from './tensor-bytes.js';

/** Header lengths above this are refused (the Rust reference uses the same 100 MB cap). */
export const SAFETENSORS_MAX_HEADER = 100_000_000;

/**
 * Whether a file's first 9 bytes are a safetensors start: a little-endian u64 header length (its top bytes zero),
 * then the JSON header's '{'. Checked before any pickle/zip guess: a header length's low byte can be 0x80 (a pickle's
 * PROTO) or its first two bytes "PK", while neither a torch.save zip nor a legacy pickle has '{' at byte 8.
 */
export function looksLikeSafetensors(head: Uint8Array): boolean {
  return head.length >= 9 && head[8] === 0x7b && head[5] === 0 && head[6] === 0 && head[7] === 0;
}

export interface SafetensorsFile {
  /** Tensors in header order, keyed by their names exactly as in the file. */
  tensors: Map<string, Tensor>;
  /** The `__metadata__` map, or null when the file has none. */
  metadata: Record<string, string> | null;
  /** Each tensor's on-disk dtype string (F32, F16, BF16, ...), before any widening. */
  dtypes: Map<string, string>;
}

/** On-disk dtype -> the dtype we hold it as, and its size on disk. F16/BF16 widen to float32, I16/I8 to int32. */
const ON_DISK: ReadonlyMap<string, { dtype: DType; size: number }> = new Map([
  ['F32', { dtype: 'float32', size: 4 }],
  ['F64', { dtype: 'float64', size: 8 }],
  ['F16', { dtype: 'float32', size: 2 }],
  ['BF16', { dtype: 'float32', size: 2 }],
  ['I64', { dtype: 'int64', size: 8 }],
  ['I32', { dtype: 'int32', size: 4 }],
  ['I16', { dtype: 'int32', size: 2 }],
  ['I8', { dtype: 'int32', size: 1 }],
  ['U8', { dtype: 'uint8', size: 1 }],
  ['BOOL', { dtype: 'bool', size: 1 }],
]);

const TO_DISK: Record<DType, string> = { float32: 'F32', float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' };

const ENTRY_FIELDS = new Set(['dtype', 'shape', 'data_offsets']);

interface Entry {
  key: string;
  disk: string;
  shape: number[];
  begin: number;
  end: number;
}

/** Parse a whole safetensors file held in memory. `name` is used in error messages (pass the path). */
export function parseSafetensors(buf: Uint8Array, name = '<buffer>'): SafetensorsFile {
  const fail = (msg: string, key?: string) => new TensorFileError(name, msg, key);
  if (!(buf instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for the contents of ${name} but received ${String(buf)} of type ${typeof buf}`);
  if (buf.length < 8) throw fail(`expected at least 8 bytes (the header length) but the file has ${buf.length}; is it truncated?`);
  const dv = new DataView(buf.buffer, buf.byteOffset, 8);
  const n = dv.getUint32(4, true) * 2 ** 32 + dv.getUint32(0, true); // exact below 2^53, and anything larger is refused
  if (n > SAFETENSORS_MAX_HEADER) throw fail(`expected a header length below ${SAFETENSORS_MAX_HEADER} bytes but the first 8 bytes say ${n}; this is not a safetensors file or it is corrupt`);
  if (8 + n > buf.length) throw fail(`expected a header of ${n} bytes after the 8-byte length, but the file has only ${buf.length - 8} more bytes; is it truncated?`);

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf.subarray(8, 8 + n));
  } catch {
    throw fail('expected the header to be UTF-8 text but it is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw fail(`expected the JSON header to start with '{' but it starts with ${JSON.stringify(text.slice(0, 20))}`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw fail(`expected the header to be valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) throw fail('expected the header to be a JSON object');
  const keys = topLevelKeys(text, fail); // also rejects duplicate keys at any depth
  const values = new Map(Object.entries(header));

  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  let metadata: Record<string, string> | null = null;
  const entries: Entry[] = [];
  for (const key of keys) {
    if (key === '__metadata__') metadata = values.get(key) === null ? null : parseMetadata(values.get(key), fail); // null: as the Rust Option
    else entries.push(parseEntry(key, values.get(key), dataLen, fail));
  }
  checkTiling(entries, dataLen, fail);

  const tensors = new Map<string, Tensor>();
  const dtypes = new Map<string, string>();
  for (const e of entries) {
    tensors.set(e.key, decodeEntry(buf, dataStart, e, fail));
    dtypes.set(e.key, e.disk);
  }
  return { tensors, metadata, dtypes };
}

/** Read and parse a safetensors file (the whole file is read into memory; tensors view that buffer). */
export function readSafetensorsSync(path: string): SafetensorsFile {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read safetensors file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseSafetensors(buf, path);
}

/** As readSafetensorsSync, reading the file without blocking the event loop (parsing is synchronous). */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let buf: Uint8Array;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new Error(`cannot read safetensors file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseSafetensors(buf, path);
}

export interface SafetensorsWriteOptions {
  /** Storage for float32 tensors: F32 (default), or F16/BF16 rounded to nearest even. Other dtypes keep theirs. */
  dtype?: 'F32' | 'F16' | 'BF16';
}

/**
 * A safetensors file in memory: tensors in the given order, packed back to back, header padded with spaces to a
 * multiple of 8 bytes (as the Rust reference does, so every tensor starts 8-aligned in the file).
 */
export function serializeSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
  opts: SafetensorsWriteOptions = {},
): Uint8Array {
  return concatChunks(fileChunks(tensors, metadata, opts));
}

/** serializeSafetensors written atomically (temp file in the same directory, then rename): never a partial file. */
export function writeSafetensorsSync(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata?: Record<string, string>,
  opts?: SafetensorsWriteOptions,
): void {
  writeFileAtomicSync(path, fileChunks(tensors, metadata, opts)); // tensor bytes go to disk without a joined copy
}

/** The file as [length + header + padding, tensor bytes...]; tensor chunks view the tensors' storage when they can. */
function fileChunks(tensors: Map<string, Tensor> | Record<string, Tensor>, metadata?: Record<string, string>, opts: SafetensorsWriteOptions = {}): Uint8Array[] {
  const target = opts.dtype ?? 'F32';
  if (target !== 'F32' && target !== 'F16' && target !== 'BF16') {
    throw new TypeError(`Expected F32, F16 or BF16 for opts.dtype but received ${String(target)} of type ${typeof target}`);
  }
  const list = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const fields: string[] = [];
  if (metadata !== undefined && metadata !== null) {
    if (!isPlainObject(metadata)) throw new TypeError(`Expected an object of strings for metadata but received ${String(metadata)} of type ${typeof metadata}`);
    const kv = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new TypeError(`Expected a string for metadata[${JSON.stringify(k)}] but received ${String(v)} of type ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    fields.push(`"__metadata__":{${kv.join(',')}}`);
  }
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [key, t] of list) {
    if (typeof key !== 'string' || key === '__metadata__') throw new TypeError(`Expected a tensor name other than __metadata__ but received ${JSON.stringify(key)}`);
    if (!(t instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${JSON.stringify(key)} but received ${String(t)} of type ${typeof t}`);
    const data = t.contiguousData();
    const half = t.dtype === 'float32' && target !== 'F32';
    const bytes = half ? float32ToHalf(data as Float32Array, target as 'F16' | 'BF16') : bytesOf(data);
    const disk = half ? target : TO_DISK[t.dtype];
    fields.push(`${JSON.stringify(key)}:{"dtype":"${disk}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`);
    blobs.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(8 + headerLen).fill(0x20); // pad with spaces
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLen), true);
  head.set(json, 8);
  return [head, ...blobs];
}

// ---- header checks ------------------------------------------------------------------------------------------

type Fail = (msg: string, key?: string) => TensorFileError;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A short JSON rendering of a header value for messages (safe on absurdly nested values). */
function show(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = Array.isArray(v) ? '[...]' : '{...}'; // too deep to stringify
  }
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * The header's top-level keys in file order, rejecting a key repeated in any object (JSON.parse would keep the last
 * one silently). `text` has already been parsed by JSON.parse, so this scanner only tracks strings and nesting.
 */
function topLevelKeys(text: string, fail: Fail): string[] {
  const top: string[] = [];
  const stack: { keys: Set<string> | null; wantKey: boolean; owner: string | undefined; last: string | undefined }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const frame = stack[stack.length - 1];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (frame?.keys && frame.wantKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (frame.keys.has(key)) throw fail(`expected unique keys but ${JSON.stringify(key)} appears twice in the header`, frame.owner ?? key);
        frame.keys.add(key);
        frame.wantKey = false;
        frame.last = key;
        if (stack.length === 1) top.push(key);
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const owner = frame ? (frame.keys ? frame.last : frame.owner) : undefined;
      stack.push({ keys: c === '{' ? new Set() : null, wantKey: c === '{', owner, last: undefined });
    } else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && frame?.keys) frame.wantKey = true;
  }
  return top;
}

function parseMetadata(v: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(v)) throw fail(`expected an object mapping strings to strings but received ${show(v)}`, '__metadata__');
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw fail(`expected a string value for ${JSON.stringify(k)} but received ${show(s)} of type ${typeof s}`, '__metadata__');
    Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true }); // '__proto__' stays a key
  }
  return out;
}

function parseEntry(key: string, v: unknown, dataLen: number, fail: Fail): Entry {
  if (!isPlainObject(v)) throw fail(`expected an object {dtype, shape, data_offsets} but received ${show(v)}`, key);
  for (const f of Object.keys(v)) if (!ENTRY_FIELDS.has(f)) throw fail(`expected only the fields dtype, shape, data_offsets but found ${JSON.stringify(f)}`, key);
  const { dtype, shape, data_offsets: offs } = v;
  const info = typeof dtype === 'string' ? ON_DISK.get(dtype) : undefined;
  if (!info) throw fail(`expected dtype to be one of ${[...ON_DISK.keys()].join(', ')} but received ${show(dtype)}`, key);
  const isSize = (s: unknown): s is number => Number.isSafeInteger(s) && (s as number) >= 0;
  if (!Array.isArray(shape) || !shape.every(isSize)) throw fail(`expected shape to be an array of non-negative integers but received ${show(shape)}`, key);
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isSize) || offs[0] > offs[1]) {
    throw fail(`expected data_offsets to be [begin, end] with integers 0 <= begin <= end but received ${show(offs)}`, key);
  }
  const [begin, end] = offs as number[];
  const want = shape.reduce((a: bigint, s: number) => a * BigInt(s), 1n) * BigInt(info.size);
  if (want !== BigInt(end - begin)) {
    throw fail(`expected data_offsets to span ${want} bytes (shape ${fmtShape(shape)} of ${dtype}, ${info.size} bytes each) but [${begin}, ${end}] spans ${end - begin}`, key);
  }
  if (end > dataLen) throw fail(`expected data_offsets inside the ${dataLen}-byte data section but received [${begin}, ${end}]; is the file truncated?`, key);
  return { key, disk: dtype as string, shape, begin, end };
}

/** Sorted by offset, the ranges must tile [0, dataLen) exactly, as the Rust reference requires. */
function checkTiling(entries: Entry[], dataLen: number, fail: Fail): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < pos) throw fail(`expected non-overlapping data but bytes [${e.begin}, ${e.end}] overlap ${JSON.stringify(prev?.key)} at [${prev?.begin}, ${prev?.end}]`, e.key);
    if (e.begin > pos) throw fail(`expected tensors packed without gaps but bytes [${pos}, ${e.begin}) of the data section belong to no tensor`, e.key);
    pos = e.end;
    prev = e;
  }
  if (pos !== dataLen) throw fail(`expected the tensors to cover the whole data section but its last ${dataLen - pos} of ${dataLen} bytes belong to no tensor`);
}

function decodeEntry(buf: Uint8Array, dataStart: number, e: Entry, fail: Fail): Tensor {
  const off = dataStart + e.begin;
  const info = ON_DISK.get(e.disk)!;
  const n = (e.end - e.begin) / info.size;
  if (e.disk === 'F16' || e.disk === 'BF16') return new Tensor(halfToFloat32(buf, off, n, e.disk), e.shape);
  if (e.disk === 'I16' || e.disk === 'I8') {
    const raw = new Uint8Array(buf.subarray(off, off + n * info.size)); // an aligned copy (Buffer#slice would not copy)
    return new Tensor(Int32Array.from(e.disk === 'I16' ? new Int16Array(raw.buffer) : new Int8Array(raw.buffer)), e.shape);
  }
  const data = storageFromBytes(info.dtype, buf, off, n);
  if (info.dtype === 'bool') {
    const bad = badBoolIndex(data as Uint8Array);
    if (bad >= 0) throw fail(`expected BOOL bytes to be 0 or 1 but element ${bad} is ${data[bad]}`, e.key);
  }
  return new Tensor(data, e.shape, { dtype: info.dtype });
}

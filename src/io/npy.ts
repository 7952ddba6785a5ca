// NumPy .npy reader and writer (format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
//
//   "\x93NUMPY" major minor | header length (u16 LE for 1.0, u32 LE for 2.0/3.0) | header | raw C-order data
//   header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + spaces + "\n"
//
// The header is a Python dict literal. We read it with a small strict parser that accepts exactly the three keys
// numpy writes and the literal forms it uses (quoted strings, True/False, a tuple of ints); nothing is evaluated.
// Reading checks magic, version, every header field and that the data is exactly shape * itemsize bytes.
// Big-endian data and float16/int16/int8 are converted; fortran-order and structured/object arrays are refused.
// This file does not read .npz archives (zip) and does not memory-map.

import { readFileSync } from 'node:fs';
import type { DType } from '../tensor/dtype.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { TensorFileError, badBoolIndex, byteSwapped, bytesOf, halfToFloat32, storageFromBytes, writeFileAtomicSync } from './tensor-bytes.js';

/** Header lengths above this are refused (numpy itself refuses more than 10 000 bytes by default). */
export const NPY_MAX_HEADER = 1 << 20;

/** descr kind+size -> the dtype we hold it as (f2 widens to float32; i1/i2 to int32). */
const KINDS: ReadonlyMap<string, DType> = new Map([
  ['f2', 'float32'], ['f4', 'float32'], ['f8', 'float64'],
  ['i1', 'int32'], ['i2', 'int32'], ['i4', 'int32'], ['i8', 'int64'],
  ['u1', 'uint8'], ['b1', 'bool'],
]);

const DESCR_OF: Record<DType, string> = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1', bool: '|b1' };

/** Parse a whole .npy file held in memory. `name` is used in error messages (pass the path). */
export function parseNpy(buf: Uint8Array, name = '<buffer>'): Tensor {
  const fail = (msg: string, key?: string) => new TensorFileError(name, msg, key);
  if (!(buf instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for the contents of ${name} but received ${String(buf)} of type ${typeof buf}`);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw fail('expected a .npy file starting with the magic string \\x93NUMPY but it does not');
  const major = buf[6], minor = buf[7];
  if (major < 1 || major > 3 || minor !== 0) throw fail(`expected .npy format version 1.0, 2.0 or 3.0 but the file says ${major}.${minor}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  if (major > 1 && buf.length < 12) throw fail(`expected a 4-byte header length for version ${major}.0 but the file has ${buf.length} bytes; is it truncated?`);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (hlen > NPY_MAX_HEADER) throw fail(`expected a header length of at most ${NPY_MAX_HEADER} bytes but the file says ${hlen}`);
  if (start + hlen > buf.length) throw fail(`expected a ${hlen}-byte header but the file has only ${buf.length - start} bytes after the prefix; is it truncated?`);

  const raw = buf.subarray(start, start + hlen);
  let text: string;
  try {
    text = major === 3 ? new TextDecoder('utf-8', { fatal: true }).decode(raw) : Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1');
  } catch {
    throw fail('expected a UTF-8 header (version 3.0) but it is not valid UTF-8');
  }
  const { descr, fortran, shape } = parseHeaderDict(text, fail);

  const m = /^([<>|=])([fiub]\d+)$/.exec(descr);
  const dtype = m ? KINDS.get(m[2]) : undefined;
  if (!m || !dtype) throw fail(`expected descr to be one of <f2 <f4 <f8 <i1 <i2 <i4 <i8 |u1 |b1 (or big-endian >...) but received '${descr}'`, 'descr');
  const size = Number(m[2].slice(1));
  if (size > 1 && m[1] === '|') throw fail(`expected a byte order ('<' or '>') in descr for a ${size}-byte type but received '${descr}'`, 'descr');
  const swap = size > 1 && m[1] === '>';
  if (fortran) throw fail("fortran_order True is not supported: expected a C-order array (save np.ascontiguousarray(a) instead)", 'fortran_order');

  const dataStart = start + hlen;
  const have = buf.length - dataStart;
  const want = shape.reduce((a, s) => a * BigInt(s), 1n) * BigInt(size);
  if (want !== BigInt(have)) {
    const why = BigInt(have) < want ? 'the file is truncated' : 'the file has trailing bytes';
    throw fail(`expected ${want} bytes of data (shape ${fmtShape(shape)} of '${descr}') but found ${have}: ${why}`);
  }
  const n = have / size;
  let data;
  if (m[2] === 'f2') data = halfToFloat32(buf, dataStart, n, 'F16', swap);
  else if (m[2] === 'i2' || m[2] === 'i1') {
    let b: Uint8Array = new Uint8Array(buf.subarray(dataStart, dataStart + have)); // an aligned copy (Buffer#slice would not copy)
    if (swap) b = byteSwapped(b, size);
    data = Int32Array.from(size === 2 ? new Int16Array(b.buffer) : new Int8Array(b.buffer));
  } else data = storageFromBytes(dtype, buf, dataStart, n, swap);
  if (dtype === 'bool') {
    const bad = badBoolIndex(data as Uint8Array);
    if (bad >= 0) throw fail(`expected bool bytes to be 0 or 1 but element ${bad} is ${data[bad]}`);
  }
  return new Tensor(data, shape, { dtype });
}

/** Read and parse a .npy file. */
export function readNpySync(path: string): Tensor {
  let buf: Uint8Array;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read .npy file ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseNpy(buf, path);
}

/**
 * A .npy file in memory, byte-identical to numpy's np.save of the same array: version 1.0 (2.0 only if the header
 * needs more than 65535 bytes), the same spare spaces numpy leaves for growing the first axis, and the header padded
 * so the data starts at a multiple of 64 bytes.
 */
export function serializeNpy(t: Tensor): Uint8Array {
  if (!(t instanceof Tensor)) throw new TypeError(`Expected a Tensor for t but received ${String(t)} of type ${typeof t}`);
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let dict = `{'descr': '${DESCR_OF[t.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  if (t.ndim > 0) dict += ' '.repeat(Math.max(0, 21 - String(t.shape[0]).length)); // numpy's GROWTH_AXIS_MAX_DIGITS
  const hlen = dict.length + 1; // with the final '\n'
  const major = hlen + 64 - ((10 + hlen) % 64) <= 0xffff ? 1 : 2; // as numpy: 1.0 unless the u16 length overflows
  const prefix = major === 1 ? 10 : 12;
  const pad = 64 - ((prefix + hlen) % 64);
  const head = new Uint8Array(prefix + hlen + pad);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const dv = new DataView(head.buffer);
  if (major === 1) dv.setUint16(8, hlen + pad, true);
  else dv.setUint32(8, hlen + pad, true);
  for (let i = 0; i < dict.length; i++) head[prefix + i] = dict.charCodeAt(i);
  head.fill(0x20, prefix + dict.length, head.length - 1);
  head[head.length - 1] = 0x0a; // '\n'
  const data = bytesOf(t.contiguousData());
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** serializeNpy written atomically (temp file in the same directory, then rename): never a partial file. */
export function writeNpySync(path: string, t: Tensor): void {
  writeFileAtomicSync(path, [serializeNpy(t)]);
}

// ---- header dict --------------------------------------------------------------------------------------------

type Fail = (msg: string, key?: string) => TensorFileError;

/** Parse "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }": exactly these keys, each once. */
function parseHeaderDict(s: string, fail: Fail): { descr: string; fortran: boolean; shape: number[] } {
  let i = 0;
  const show = () => JSON.stringify(s.length > 120 ? `${s.slice(0, 117)}...` : s);
  const bad = (what: string, key?: string) => fail(`expected ${what} at position ${i} of the header ${show()}`, key);
  const ws = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  const take = (c: string, what = `'${c}'`, key?: string) => {
    ws();
    if (s[i] !== c) throw bad(what, key);
    i++;
  };
  const str = (key?: string) => {
    ws();
    const q = s[i];
    if (q !== "'" && q !== '"') throw bad('a quoted string', key);
    const j = s.indexOf(q, i + 1);
    if (j < 0) throw bad('a closing quote', key);
    const v = s.slice(i + 1, j);
    if (v.includes('\\')) throw bad('a plain quoted string (no escapes)', key);
    i = j + 1;
    return v;
  };
  const tuple = (key: string) => {
    take('(', 'a tuple of sizes', key);
    const out: number[] = [];
    for (ws(); s[i] !== ')'; ws()) {
      const d = /^(\d+)L?/.exec(s.slice(i, i + 40));
      if (!d) throw bad('a non-negative integer size', key);
      const v = Number(d[1]);
      if (!Number.isSafeInteger(v)) throw bad(`a size below 2^53 (got ${d[1]})`, key);
      out.push(v);
      i += d[0].length;
      ws();
      if (s[i] === ',') i++;
      else if (s[i] !== ')') throw bad("',' or ')'", key);
      else if (out.length === 1) throw bad("',' (a 1-tuple is written (n,))", key);
    }
    i++;
    return out;
  };
  const fields = new Map<string, unknown>();
  take('{', 'a dict');
  for (ws(); s[i] !== '}'; ws()) {
    const key = str();
    if (key !== 'descr' && key !== 'fortran_order' && key !== 'shape') throw fail(`expected only the keys 'descr', 'fortran_order', 'shape' in the header but found '${key}'`, key);
    if (fields.has(key)) throw fail(`expected each header key once but '${key}' appears twice`, key);
    take(':');
    ws();
    if (key === 'descr') {
      if (s[i] === '[' || s[i] === '{') throw fail('structured dtypes are not supported: expected descr to be a string like \'<f4\'', key);
      fields.set(key, str(key));
    } else if (key === 'fortran_order') {
      const m = /^(True|False)/.exec(s.slice(i, i + 5));
      if (!m) throw bad('True or False', key);
      fields.set(key, m[1] === 'True');
      i += m[1].length;
    } else fields.set(key, tuple(key));
    ws();
    if (s[i] === ',') i++;
    else if (s[i] !== '}') throw bad("',' or '}'");
  }
  i++;
  ws();
  if (i !== s.length) throw bad('the end of the header after the dict');
  for (const k of ['descr', 'fortran_order', 'shape']) if (!fields.has(k)) throw fail(`expected the header to have the key '${k}' but it is missing`, k);
  return { descr: fields.get('descr') as string, fortran: fields.get('fortran_order') as boolean, shape: fields.get('shape') as number[] };
}

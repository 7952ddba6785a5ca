// PyTorch checkpoint reader (.pth/.pt files written by torch.save), both formats:
//
//   zip (torch >= 1.6):  <prefix>/data.pkl  the pickled object; tensors refer to storages by persistent id
//                        <prefix>/data/<key> each storage's raw little-endian bytes (STORED, 64-byte aligned)
//                        <prefix>/version, <prefix>/byteorder (torch >= 2.1; absent means little)
//   legacy (_use_new_zipfile_serialization=False): pickled magic 0x1950a86a20f9469cfc6c, protocol 1001, sys_info,
//                        the object, the list of storage keys, then per key: u64 LE element count + raw bytes.
//
// The pickle is read by pickle.ts with the torch globals below as the only additions to its allowlist (no
// torch.device, dtypes, modules or optimizers: those are refused by name). A persistent id becomes one typed storage
// per key (shared by every tensor that uses it), its size checked against the archive before anything is read.
// Tensors keep their storage offset and strides: non-contiguous tensors are strided views of the storage, exactly as
// in PyTorch (call .contiguous() for a packed copy). Storages are zero-copy views of the file buffer when the dtype is
// ours and the bytes are aligned (the zip format aligns them); float16/bfloat16 become float32, int16/int8 int32 (the
// on-disk dtype of each tensor is in PthFile.dtypes). Views keep the whole file buffer alive.
// Legacy files are unpickled twice: storages' dtypes (from the object) are needed to find the records that follow it.
// Their records are unaligned: parsePth copies them, readPth/readPthSync (owning the buffer) align them in place.
// This file does not write checkpoints (pth-write.ts does) and does not load TorchScript archives.

import { type DType, type Storage, isFloat } from '../tensor/dtype.js';
import { fmtShape } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { PyGlobal, isPyTuple, kind, unpickle, type UnpickleOptions } from './pickle.js';
import { TensorFileError, badBoolIndex, byteSwapped, halfToFloat32, readWholeFile, readWholeFileSync, storageFromBytes } from './tensor-bytes.js';
import { readZipEntries, readZipEntry } from './zip.js';

/** A tensor's dtype as the file stores it. */
export type TorchDType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export interface PthFile {
  /** The unpickled object: Maps, arrays, tuples (isPyTuple), numbers, strings, ..., Tensors. */
  object: unknown;
  format: 'zip' | 'legacy';
  /** Each tensor's dtype on disk (a float16 tensor is held as float32 but reported here as float16). */
  dtypes: Map<Tensor, TorchDType>;
}

/** A storage that appears in the object by itself, not inside a tensor. */
export class PthStorage {
  constructor(readonly key: string, readonly dtype: TorchDType, readonly numel: number, readonly data: Storage) {}
}

/** Compressed metadata records (data.pkl, version, byteorder) may inflate to at most this; storages must be STORED. */
export const PTH_MAX_COMPRESSED_RECORD = 64 << 20;
/** Tensors with more elements than this are refused (an expanded view of a small storage could claim any size). */
export const PTH_MAX_ELEMENTS = 2 ** 32;

interface StorageType { dtype: TorchDType; size: number; hold: DType }

const STORAGE_TYPES: ReadonlyMap<string, StorageType> = new Map([
  ['torch.FloatStorage', { dtype: 'float32', size: 4, hold: 'float32' }],
  ['torch.DoubleStorage', { dtype: 'float64', size: 8, hold: 'float64' }],
  ['torch.HalfStorage', { dtype: 'float16', size: 2, hold: 'float32' }],
  ['torch.BFloat16Storage', { dtype: 'bfloat16', size: 2, hold: 'float32' }],
  ['torch.LongStorage', { dtype: 'int64', size: 8, hold: 'int64' }],
  ['torch.IntStorage', { dtype: 'int32', size: 4, hold: 'int32' }],
  ['torch.ShortStorage', { dtype: 'int16', size: 2, hold: 'int32' }],
  ['torch.CharStorage', { dtype: 'int8', size: 1, hold: 'int32' }],
  ['torch.ByteStorage', { dtype: 'uint8', size: 1, hold: 'uint8' }],
  ['torch.BoolStorage', { dtype: 'bool', size: 1, hold: 'bool' }],
  ['torch.storage.UntypedStorage', { dtype: 'uint8', size: 1, hold: 'uint8' }], // 1.13's name; numel counts bytes
  ['torch.UntypedStorage', { dtype: 'uint8', size: 1, hold: 'uint8' }],
] as [string, StorageType][]);

/** The torch globals a checkpoint may name, on top of pickle.ts's builtins (OrderedDict, set, bytes). */
export const PTH_GLOBALS: ReadonlySet<string> = new Set([
  'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor', 'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state', 'torch.Size', ...STORAGE_TYPES.keys(),
]);

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const PHANTOM = new Float32Array(0);

/** Where a storage's bytes are; null while a legacy file is being surveyed (no data yet). */
type Locate = (key: string, t: StorageType, numel: number, fail: (msg: string) => TensorFileError) => { bytes: Uint8Array; offset: number } | null;

/** Parse a whole checkpoint held in memory. `name` is used in error messages (pass the path). */
export function parsePth(buf: Uint8Array, name = '<buffer>'): PthFile {
  return parse(buf, name, false);
}

/** `owned`: the buffer is ours to rearrange (legacy storages are then aligned in place instead of copied). */
function parse(buf: Uint8Array, name: string, owned: boolean): PthFile {
  if (!(buf instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for the contents of ${name} but received ${String(buf)} of type ${typeof buf}`);
  const dtypes = new Map<Tensor, TorchDType>();
  if (buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b) return { object: parseZip(buf, name, dtypes), format: 'zip', dtypes };
  if (buf.length >= 2 && buf[0] === 0x80) return { object: parseLegacy(buf, name, dtypes, owned), format: 'legacy', dtypes };
  if (buf.length >= 262 && Buffer.from(buf.subarray(257, 262)).toString('latin1') === 'ustar') {
    throw new TensorFileError(name, 'this is a tar checkpoint from PyTorch < 0.4, which is not supported: load it with torch.load and save it again');
  }
  const head = Buffer.from(buf.subarray(0, 8)).toString('hex');
  throw new TensorFileError(name, `expected a PyTorch checkpoint (a zip archive starting with "PK" or a legacy pickle starting with 0x80) but the file starts with 0x${head || '(empty)'}`);
}

/**
 * Read and parse a checkpoint file. The file is read whole (tensor-bytes.ts readWholeFileSync: memory from the native
 * addon with huge pages when it is loaded) and the tensors view that memory; to make them a model's own without a
 * copy, load them with `model.loadStateDict(sd, { assign: true })` into a model built with nn/init.ts skipInit.
 */
export function readPthSync(path: string): PthFile {
  let buf: Uint8Array;
  try {
    buf = readWholeFileSync(path);
  } catch (err) {
    throw new Error(`cannot read PyTorch checkpoint ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parse(buf, path, true);
}

/** As readPthSync, reading the file without blocking the event loop (parsing is synchronous). */
export async function readPth(path: string): Promise<PthFile> {
  let buf: Uint8Array;
  try {
    buf = await readWholeFile(path);
  } catch (err) {
    throw new Error(`cannot read PyTorch checkpoint ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parse(buf, path, true);
}

// ---- the two containers ---------------------------------------------------------------------------------------

function parseZip(buf: Uint8Array, name: string, dtypes: Map<Tensor, TorchDType>): unknown {
  const fail = (msg: string, key?: string) => new TensorFileError(name, msg, key);
  const entries = readZipEntries(buf, name);
  const files = [...entries.keys()].filter((n) => !n.endsWith('/'));
  if (files.length === 0) throw fail('expected a torch.save archive but the zip archive has no files');
  if (files.some((f) => /^[^/]+\/(constants\.pkl$|code\/)/.test(f))) {
    throw fail('this is a TorchScript archive (torch.jit.save), which is not supported: load it in PyTorch with torch.jit.load, then torch.save(model.state_dict(), path) and load that file');
  }
  const prefix = files[0].split('/')[0];
  for (const f of files) {
    if (!f.startsWith(`${prefix}/`)) throw fail(`expected every entry inside one top-level folder, as torch.save writes, but this one is outside "${prefix}/"`, f);
  }
  const record = (rec: string): string | null => {
    const e = entries.get(`${prefix}/${rec}`);
    return e ? Buffer.from(readZipEntry(buf, e, name, 256)).toString('latin1') : null;
  };
  const version = record('version');
  if (version !== null && !/^\d{1,9}\n?$/.test(version)) throw fail(`expected a format version number but received ${JSON.stringify(version.slice(0, 20))}`, `${prefix}/version`);
  const order = record('byteorder');
  if (order !== null && order !== 'little' && order !== 'big') throw fail(`expected "little" or "big" but received ${JSON.stringify(order.slice(0, 20))}`, `${prefix}/byteorder`);
  const pklName = `${prefix}/data.pkl`;
  const pkl = entries.get(pklName);
  if (!pkl) throw fail(`expected a pickle record "${pklName}", as torch.save writes, but the archive has none`);
  const pickle = readZipEntry(buf, pkl, name, PTH_MAX_COMPRESSED_RECORD);

  const locate: Locate = (key, t, numel, stop) => {
    const rec = `${prefix}/data/${key}`;
    const e = entries.get(rec);
    if (!e) throw stop(`expected a storage record "${rec}" for storage key "${key}" but the archive has none`);
    if (e.size !== numel * t.size) throw stop(`expected storage record "${rec}" to hold ${numel} ${t.dtype} elements (${numel * t.size} bytes) but it holds ${e.size} bytes`);
    return { bytes: readZipEntry(buf, e, name), offset: 0 };
  };
  const { value, end } = unpickle(pickle, 0, torchHooks(name, pklName, locate, order === 'big', dtypes));
  if (end !== pickle.length) throw fail(`expected the pickle to end at its STOP opcode but ${pickle.length - end} bytes follow it`, pklName);
  return value;
}

function parseLegacy(buf: Uint8Array, name: string, dtypes: Map<Tensor, TorchDType>, owned: boolean): unknown {
  const fail = (msg: string, key?: string) => new TensorFileError(name, msg, key);
  const magic = unpickle(buf, 0, { file: name, entry: 'magic number' });
  if (magic.value !== LEGACY_MAGIC) throw fail(`expected the legacy magic number 0x1950a86a20f9469cfc6c but the first pickle holds ${kind(magic.value)}; this is not a torch.save file`);
  const proto = unpickle(buf, magic.end, { file: name, entry: 'protocol version' });
  if (proto.value !== 1001) throw fail(`expected legacy protocol version 1001 but received ${kind(proto.value)}`);
  const sys = unpickle(buf, proto.end, { file: name, entry: 'sys_info' });
  // torch writes legacy storages little-endian whatever the machine and ignores sys_info when loading; so do we
  if (!(sys.value instanceof Map)) throw fail(`expected a dict but received ${kind(sys.value)}`, 'sys_info');

  // survey: which storages the object uses, with their types and sizes (phantom tensors, nothing read)
  const decls = new Map<string, { t: StorageType; numel: number }>();
  const survey = unpickle(buf, sys.end, torchHooks(name, 'object', (key, t, numel) => (decls.set(key, { t, numel }), null), false, new Map()));
  const list = unpickle(buf, survey.end, { file: name, entry: 'storage keys' });
  if (!Array.isArray(list.value) || !list.value.every((k) => typeof k === 'string')) throw fail(`expected a list of strings but received ${kind(list.value)}`, 'storage keys');
  const where = new Map<string, number>();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = list.end;
  for (const key of list.value as string[]) {
    const d = decls.get(key);
    if (!d) throw fail('expected every listed storage to be used by a tensor but this one is not', key);
    if (where.has(key)) throw fail('expected each storage once in the storage list but this one appears twice', key);
    if (pos + 8 > buf.length) throw fail(`expected an 8-byte element count at byte ${pos} but the file ends; is it truncated?`, key);
    const count = dv.getUint32(pos + 4, true) * 2 ** 32 + dv.getUint32(pos, true);
    if (count !== d.numel) throw fail(`expected the storage record to hold ${d.numel} elements, as the object says, but it says ${count}`, key);
    if (pos + 8 + count * d.t.size > buf.length) throw fail(`expected ${count * d.t.size} bytes of ${d.t.dtype} data at byte ${pos + 8} but the file has only ${buf.length - pos - 8}; is it truncated?`, key);
    where.set(key, pos + 8);
    pos += 8 + count * d.t.size;
  }
  for (const key of decls.keys()) if (!where.has(key)) throw fail('expected a record for this storage, which a tensor uses, but the storage list does not name it', key);
  if (pos !== buf.length) throw fail(`expected the file to end after the last storage record (byte ${pos}) but ${buf.length - pos} more bytes follow`);

  if (owned) alignRecords(buf, list.end, list.value as string[], where, decls);
  const locate: Locate = (key) => ({ bytes: buf, offset: where.get(key)! });
  return unpickle(buf, sys.end, torchHooks(name, 'object', locate, false, dtypes)).value;
}

/**
 * Legacy records sit at arbitrary offsets, so most storages could not be viewed in place. When the buffer is ours,
 * slide each record left (over the 8-byte counts already read) to the first offset aligned to its item size: the
 * destination never passes the source, so one in-order pass of memmoves suffices and no new memory is needed.
 */
function alignRecords(buf: Uint8Array, start: number, keys: string[], where: Map<string, number>, decls: Map<string, { t: StorageType; numel: number }>): void {
  let w = start;
  for (const key of keys) {
    const { t, numel } = decls.get(key)!;
    const src = where.get(key)!, len = numel * t.size;
    const dst = w + ((t.size - ((buf.byteOffset + w) % t.size)) % t.size); // <= src: src - w >= 8 > t.size - 1
    if (dst !== src) buf.copyWithin(dst, src, src + len);
    where.set(key, dst);
    w = dst + len;
  }
}

// ---- torch's globals and persistent ids -----------------------------------------------------------------------

function torchHooks(file: string, entry: string, locate: Locate, swap: boolean, dtypes: Map<Tensor, TorchDType>): UnpickleOptions {
  const storages = new Map<string, { s: PthStorage | null; t: StorageType; numel: number }>();
  type Fail = (msg: string) => TensorFileError;

  const persistentLoad = (pid: unknown, fail: Fail): PthStorage | { phantom: StorageType; numel: number; key: string } => {
    if (!isPyTuple(pid) || (pid.length !== 5 && pid.length !== 6)) throw fail(`expected a persistent id ('storage', type, key, location, numel) but received ${kind(pid)}`);
    const [tag, type, key, location, numel, view] = pid;
    if (tag !== 'storage') throw fail(`expected a persistent id tagged "storage" but received ${kind(tag)}`);
    const t = type instanceof PyGlobal ? STORAGE_TYPES.get(type.name) : undefined;
    if (!t) throw fail(`expected a storage class in the persistent id but received ${kind(type)}`);
    if (typeof key !== 'string' || !/^\w{1,64}$/.test(key)) throw fail(`expected a storage key of letters and digits but received ${kind(key)}`);
    if (typeof location !== 'string') throw fail(`expected a device name such as "cpu" but received ${kind(location)}`);
    if (!Number.isSafeInteger(numel) || (numel as number) < 0) throw fail(`expected a storage size (a non-negative integer) but received ${kind(numel)}`);
    if (pid.length === 6 && view !== null) throw fail('storage views (view_metadata, PyTorch < 0.4) are not supported');
    const n = numel as number;
    const seen = storages.get(key);
    if (seen) {
      if (seen.t !== t || seen.numel !== n) throw fail(`storage "${key}" is used as ${n} ${t.dtype} elements here but as ${seen.numel} ${seen.t.dtype} elements before`);
    } else {
      const at = locate(key, t, n, fail);
      storages.set(key, { s: at && new PthStorage(key, t.dtype, n, decode(at.bytes, at.offset, t, n, swap, (m) => fail(`storage "${key}": ${m}`))), t, numel: n });
    }
    const e = storages.get(key)!;
    return e.s ?? { phantom: t, numel: n, key };
  };

  const tensor = (storage: unknown, offset: unknown, size: unknown, stride: unknown, grad: unknown, fail: Fail): Tensor => {
    const st = storage instanceof PthStorage ? { t: STORAGE_BY_DTYPE.get(storage.dtype)!, numel: storage.numel, key: storage.key } : isPhantom(storage) ? { t: storage.phantom, numel: storage.numel, key: storage.key } : null;
    if (!st) throw fail(`expected a storage as a tensor's first argument but received ${kind(storage)}`);
    const shape = ints(size, 'size', fail), strides = ints(stride, 'stride', fail);
    if (shape.length !== strides.length) throw fail(`expected as many strides as dimensions but received size ${fmtShape(shape)} and stride [${strides.join(', ')}]`);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw fail(`expected a storage offset (a non-negative integer) but received ${kind(offset)}`);
    if (typeof grad !== 'boolean') throw fail(`expected requires_grad to be a bool but received ${kind(grad)}`);
    let numel = 1, last = offset as number;
    for (let i = 0; i < shape.length; i++) {
      numel *= shape[i];
      last += (shape[i] - 1) * strides[i];
    }
    if (numel > PTH_MAX_ELEMENTS) throw fail(`expected a tensor of at most ${PTH_MAX_ELEMENTS} elements but size ${fmtShape(shape)} has ${numel}`);
    if (numel > 0 && !(last < st.numel)) {
      throw fail(`expected a tensor of size ${fmtShape(shape)}, stride [${strides.join(', ')}] at offset ${offset} to fit in storage "${st.key}" of ${st.numel} elements but it reaches element ${last}`);
    }
    if (!(storage instanceof PthStorage)) return new Tensor(PHANTOM, shape, { dtype: st.t.hold, strides, offset: offset as number });
    const t = new Tensor(storage.data, shape, { dtype: st.t.hold, strides, offset: offset as number });
    if (grad && isFloat(t.dtype)) t.requiresGrad = true;
    dtypes.set(t, storage.dtype);
    return t;
  };

  const reduce = (name: string, args: readonly unknown[], fail: Fail): unknown => {
    const arity = (...n: number[]) => {
      if (!n.includes(args.length)) throw fail(`expected ${n.join(' or ')} arguments for ${name} but received ${args.length}`);
    };
    switch (name) {
      case 'torch._utils._rebuild_tensor_v2': { // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
        arity(6, 7);
        if (!(args[5] instanceof Map)) throw fail(`expected an OrderedDict of backward hooks but received ${kind(args[5])}`);
        if (args.length === 7 && args[6] !== null && !(args[6] instanceof Map && args[6].size === 0)) throw fail(`tensor metadata ${kind(args[6])} is not supported`);
        return tensor(args[0], args[1], args[2], args[3], args[4], fail);
      }
      case 'torch._utils._rebuild_tensor': // (storage, offset, size, stride): PyTorch < 1.0
        arity(4);
        return tensor(args[0], args[1], args[2], args[3], false, fail);
      case 'torch._utils._rebuild_parameter': case 'torch._utils._rebuild_parameter_with_state': { // (data, requires_grad, hooks[, state])
        arity(name.endsWith('state') ? 4 : 3);
        const [data, grad] = args;
        if (!(data instanceof Tensor)) throw fail(`expected a tensor as a parameter's data but received ${kind(data)}`);
        if (typeof grad !== 'boolean') throw fail(`expected requires_grad to be a bool but received ${kind(grad)}`);
        if (grad && isFloat(data.dtype)) data.requiresGrad = true;
        return data;
      }
      case 'torch.Size':
        arity(1);
        return ints(args[0], 'torch.Size', fail);
      default: // a storage class
        throw fail(`calling ${name} is not allowed (storages may only appear in persistent ids)`);
    }
  };
  return { file, entry, globals: PTH_GLOBALS, reduce, persistentLoad, explain };
}

/** Why a refused global probably appears, and what to do about it. */
function explain(name: string): string | undefined {
  if (/^torch\.\w+Storage$/.test(name)) return 'tensors of this dtype are not supported';
  if (/^(torch\.nn\.|torchvision\.|timm\.|__main__\.)/.test(name)) return 'the file pickles a whole Python object (a model?): in PyTorch, torch.save(model.state_dict(), path) and load that file';
  return undefined;
}

const STORAGE_BY_DTYPE = new Map([...STORAGE_TYPES.values()].map((t) => [t.dtype, t]));

function isPhantom(v: unknown): v is { phantom: StorageType; numel: number; key: string } {
  return typeof v === 'object' && v !== null && 'phantom' in v && !(v instanceof Tensor);
}

function ints(v: unknown, what: string, fail: (msg: string) => TensorFileError): number[] {
  if (!Array.isArray(v) || v.length > 64 || !v.every((x) => Number.isSafeInteger(x) && x >= 0)) {
    throw fail(`expected ${what} to be a tuple of at most 64 non-negative integers but received ${kind(v)}`);
  }
  return [...(v as number[])];
}

/** `n` elements of type `t` at bytes[offset..] as the storage we hold them in (a view when possible). */
function decode(bytes: Uint8Array, offset: number, t: StorageType, n: number, swap: boolean, fail: (msg: string) => TensorFileError): Storage {
  if (t.dtype === 'float16' || t.dtype === 'bfloat16') return halfToFloat32(bytes, offset, n, t.dtype === 'float16' ? 'F16' : 'BF16', swap);
  if (t.dtype === 'int16' || t.dtype === 'int8') {
    let raw: Uint8Array = new Uint8Array(bytes.subarray(offset, offset + n * t.size)); // an aligned copy
    if (swap) raw = byteSwapped(raw, t.size);
    return Int32Array.from(t.dtype === 'int16' ? new Int16Array(raw.buffer) : new Int8Array(raw.buffer));
  }
  const data = storageFromBytes(t.hold, bytes, offset, n, swap);
  if (t.dtype === 'bool') {
    const bad = badBoolIndex(data as Uint8Array);
    if (bad >= 0) throw fail(`expected bool bytes to be 0 or 1 but element ${bad} is ${data[bad]}`);
  }
  return data;
}

// ---- finding the state dict -----------------------------------------------------------------------------------

/** Where checkpoints people actually have keep the model's state dict, in the order we look. */
export const STATE_DICT_KEYS: readonly string[] = ['state_dict', 'model_state_dict', 'model', 'net'];

/**
 * The state dict in a loaded checkpoint: `obj` itself when it is a dict of tensors, else the first of
 * STATE_DICT_KEYS that holds one. A `module.` prefix (DataParallel) is stripped when every key has it.
 */
export function extractStateDict(obj: unknown, name = '<object>'): Map<string, Tensor> {
  const asMap = (v: unknown): Map<unknown, unknown> | null =>
    v instanceof Map ? v : typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Tensor) && Object.getPrototypeOf(v) === Object.prototype ? new Map(Object.entries(v)) : null;
  const isStateDict = (m: Map<unknown, unknown> | null): m is Map<string, Tensor> =>
    m !== null && m.size > 0 && [...m].every(([k, v]) => typeof k === 'string' && v instanceof Tensor);
  const top = asMap(obj);
  let sd: Map<string, Tensor> | null = isStateDict(top) ? top : null;
  for (const k of STATE_DICT_KEYS) {
    if (sd || !top) break;
    const m = asMap(top.get(k));
    if (isStateDict(m)) sd = m;
  }
  if (!sd) {
    const keys = top ? [...top.keys()].map((k) => (typeof k === 'string' ? JSON.stringify(k) : String(k))) : [];
    const what = top ? `the top-level keys are [${keys.slice(0, 30).join(', ')}${keys.length > 30 ? ', ...' : ''}]` : `the object is ${kind(obj)}`;
    throw new TensorFileError(name, `expected a state dict (a dict of tensors) or a checkpoint dict holding one under ${STATE_DICT_KEYS.map((k) => `"${k}"`).join(', ')}, but ${what}`);
  }
  const strip = [...sd.keys()].every((k) => k.startsWith('module.'));
  return strip ? new Map([...sd].map(([k, v]) => [k.slice('module.'.length), v])) : new Map(sd);
}

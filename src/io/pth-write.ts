// PyTorch checkpoint writer: the zip format torch.save writes (archive/data.pkl, archive/byteorder,
// archive/data/<key>, archive/version; STORED entries, data aligned to 64 bytes), readable by torch.load(path,
// weights_only=True). The pickle is protocol 2, as torch's, using only opcodes torch's weights_only unpickler knows
// (plus BINFLOAT for floats, which torch 1.13's weights_only unpickler lacks even for torch's own files).
//
// Values: Map or plain object -> dict (an OrderedDict when every value is a tensor: a state dict), array -> list,
// pyTuple -> tuple, integer number or bigint -> int, other number -> float (so 1.0 is written as the int 1),
// string -> str, boolean -> bool, null -> None, Tensor -> tensor. Tensors that share a storage (the same typed array)
// share it in the file, with their offsets and strides, as torch does; the whole storage is written. Tensors are
// written with requires_grad=False, as state_dict() returns them. Cycles and nesting deeper than MAX_PICKLE_DEPTH
// are refused; a container used twice is written once and referenced (pickle memo).
// This file does not write the legacy format, float16/bfloat16 storages or TorchScript.

import type { DType, Storage } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { MAX_PICKLE_DEPTH, isPyTuple } from './pickle.js';
import { bytesOf, concatChunks, writeFileAtomicSync } from './tensor-bytes.js';
import { type ZipWriteOptions, zipChunks } from './zip.js';

const STORAGE_OF: Record<DType, string> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', int64: 'LongStorage', int32: 'IntStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

/** `obj` as the bytes of a .pth file (zip format). */
export function serializePth(obj: unknown, o: ZipWriteOptions = {}): Uint8Array {
  return concatChunks(pthChunks(obj, o));
}

/** serializePth written atomically (temp file in the same folder, then rename); storages are not copied. */
export function writePthSync(path: string, obj: unknown, o: ZipWriteOptions = {}): void {
  writeFileAtomicSync(path, pthChunks(obj, o));
}

function pthChunks(obj: unknown, o: ZipWriteOptions): Uint8Array[] {
  const p = new Pickler();
  p.dump(obj);
  const text = (s: string) => new TextEncoder().encode(s);
  return zipChunks([
    { name: 'archive/data.pkl', data: p.bytes() },
    { name: 'archive/byteorder', data: text('little') },
    ...p.storages.map((s) => ({ name: `archive/data/${s.key}`, data: bytesOf(s.data) })),
    { name: 'archive/version', data: text('3\n') },
  ], o);
}

/** Protocol-2 pickler for the values above; tensors become persistent ids of storages collected in `storages`. */
class Pickler {
  readonly storages: { key: string; data: Storage; dtype: DType }[] = [];
  private readonly byData = new Map<Storage, { key: string; dtype: DType }>();
  private buf = new Uint8Array(1 << 16);
  private len = 0;
  private readonly memo = new Map<unknown, number>(); // globals by name, containers by identity
  private readonly active = new Set<object>(); // containers on the current path (cycle check)

  dump(obj: unknown): void {
    this.byte(0x80, 2); // PROTO 2
    this.save(obj, 0, 'obj');
    this.byte(0x2e); // STOP
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  private byte(...b: number[]): void {
    this.reserve(b.length);
    for (const x of b) this.buf[this.len++] = x;
  }

  private raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private u32(op: number, v: number): void {
    this.byte(op, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }

  /** BINPUT the next memo index for `key`. */
  private put(key: unknown): void {
    const i = this.memo.size;
    this.memo.set(key, i);
    if (i < 256) this.byte(0x71, i);
    else this.u32(0x72, i);
  }

  /** BINGET `key` if it was memoized; returns whether it was. */
  private get(key: unknown): boolean {
    const i = this.memo.get(key);
    if (i === undefined) return false;
    if (i < 256) this.byte(0x68, i);
    else this.u32(0x6a, i);
    return true;
  }

  private global(mod: string, name: string): void {
    const full = `${mod}\n${name}\n`;
    if (this.get(full)) return;
    this.byte(0x63);
    this.raw(new TextEncoder().encode(full));
    this.put(full);
  }

  private int(v: number | bigint): void {
    const n = typeof v === 'bigint' && v >= -(2n ** 31n) && v < 2n ** 31n ? Number(v) : v;
    if (typeof n === 'number' && n >= 0 && n < 256) this.byte(0x4b, n); // BININT1
    else if (typeof n === 'number' && n >= 0 && n < 65536) this.byte(0x4d, n & 0xff, n >>> 8); // BININT2
    else if (typeof n === 'number' && n >= -(2 ** 31) && n < 2 ** 31) this.u32(0x4a, n); // BININT
    else {
      let b = BigInt(n); // LONG1: little-endian two's complement, as few bytes as keep the sign
      const out: number[] = [];
      for (;;) {
        const lo = Number(b & 0xffn);
        out.push(lo);
        b >>= 8n;
        if ((b === 0n && !(lo & 0x80)) || (b === -1n && lo & 0x80)) break;
      }
      this.byte(0x8a, out.length, ...out);
    }
  }

  private str(s: string): void {
    if (/\p{Cs}/u.test(s)) throw new TypeError(`Expected well-formed text for a string but received one with a lone surrogate: ${JSON.stringify(s.slice(0, 40))}`);
    const b = new TextEncoder().encode(s);
    this.u32(0x58, b.length); // BINUNICODE
    this.raw(b);
  }

  private tuple(items: readonly unknown[], depth: number, path: string): void {
    if (items.length === 0) return this.byte(0x29); // EMPTY_TUPLE
    if (items.length > 3) this.byte(0x28); // MARK
    items.forEach((v, i) => this.save(v, depth + 1, `${path}[${i}]`));
    this.byte(items.length === 1 ? 0x85 : items.length === 2 ? 0x86 : items.length === 3 ? 0x87 : 0x74);
  }

  private save(v: unknown, depth: number, path: string): void {
    if (v === null) return this.byte(0x4e);
    if (typeof v === 'boolean') return this.byte(v ? 0x88 : 0x89);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) return this.int(v);
      if (Number.isInteger(v)) return this.int(BigInt(v)); // beyond 2^53 but integral: still an int
      this.byte(0x47); // BINFLOAT, big-endian
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v, false);
      return this.raw(b);
    }
    if (typeof v === 'string') return this.str(v);
    if (v instanceof Tensor) return this.tensor(v);
    if (typeof v !== 'object' || ArrayBuffer.isView(v) || !(Array.isArray(v) || v instanceof Map || isPlainObject(v))) {
      throw new TypeError(`Expected a dict, list, tuple, number, string, boolean, null or Tensor at ${path} but received ${describe(v)}`);
    }
    if (this.active.has(v)) throw new TypeError(`Expected an acyclic object but ${path} contains itself`);
    if (depth >= MAX_PICKLE_DEPTH) throw new TypeError(`Expected containers nested at most ${MAX_PICKLE_DEPTH} deep but ${path} is deeper`);
    if (this.get(v)) return;
    this.active.add(v);
    if (isPyTuple(v)) {
      this.tuple(v, depth, path);
      this.put(v);
    } else if (Array.isArray(v)) {
      this.byte(0x5d); // EMPTY_LIST
      this.put(v);
      this.batched(v.length, (i) => this.save(v[i], depth + 1, `${path}[${i}]`), 0x65); // APPENDS
    } else {
      const entries: [unknown, unknown][] = v instanceof Map ? [...v] : Object.entries(v);
      if (entries.length > 0 && entries.every(([, x]) => x instanceof Tensor)) {
        this.global('collections', 'OrderedDict');
        this.byte(0x29, 0x52); // () REDUCE
      } else this.byte(0x7d); // EMPTY_DICT
      this.put(v);
      this.batched(entries.length, (i) => {
        const [k, x] = entries[i];
        if (k !== null && typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'bigint' && typeof k !== 'boolean') {
          throw new TypeError(`Expected a string, number, boolean or null dict key at ${path} but received ${describe(k)}`);
        }
        this.save(k, depth + 1, path);
        this.save(x, depth + 1, `${path}[${JSON.stringify(String(k))}]`);
      }, 0x75); // SETITEMS
    }
    this.active.delete(v);
  }

  /** MARK items... op, in batches of 1000 as Python's pickler does. */
  private batched(n: number, item: (i: number) => void, op: number): void {
    for (let i = 0; i < n; i += 1000) {
      this.byte(0x28);
      for (let j = i; j < Math.min(n, i + 1000); j++) item(j);
      this.byte(op);
    }
  }

  /** _rebuild_tensor_v2(storage pid, offset, size, stride, False, OrderedDict()). */
  private tensor(t: Tensor): void {
    let src = t;
    const reach = t.shape.reduce((a, s, i) => a + (s - 1) * t.strides[i], t.offset);
    if (t.strides.some((s) => s < 0) || (t.numel > 0 && reach >= t.data.length)) src = t.contiguous(); // torch needs strides >= 0
    let s = this.byData.get(src.data);
    if (s && s.dtype !== src.dtype) throw new TypeError(`Expected tensors that share a storage to share its dtype but one is ${s.dtype} and another ${src.dtype}`);
    if (!s) {
      s = { key: String(this.storages.length), dtype: src.dtype };
      this.byData.set(src.data, s);
      this.storages.push({ key: s.key, data: src.data, dtype: src.dtype });
    }
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.byte(0x28, 0x28); // MARK MARK
    this.str('storage');
    this.global('torch', STORAGE_OF[src.dtype]);
    this.str(s.key);
    this.str('cpu');
    this.int(src.data.length);
    this.byte(0x74, 0x51); // TUPLE BINPERSID
    this.int(src.offset);
    this.tuple(src.shape, 0, 'size');
    this.tuple(src.strides, 0, 'stride');
    this.byte(0x89); // requires_grad False
    this.global('collections', 'OrderedDict');
    this.byte(0x29, 0x52, 0x74, 0x52); // () REDUCE (backward hooks), TUPLE, REDUCE
  }
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (typeof v === 'object' && v !== null) return `an object of class ${v.constructor?.name ?? 'null'}`;
  return `${String(v)} of type ${typeof v}`;
}

// A pickle reader for checkpoints: a small opcode machine over protocols 2-5 as torch.save writes them, in the spirit
// of torch's weights_only=True unpickler. Nothing is imported, looked up by name or executed: GLOBAL may only name an
// entry of a fixed allowlist (a few builtins here, plus the torch names the caller declares), REDUCE dispatches over
// that list with a switch, BUILD only sets the state of an OrderedDict, and every other opcode is an error naming it.
//
// Python values become: dict -> Map (insertion order kept; '__proto__' is an ordinary key), list -> array, tuple ->
// frozen array marked as a tuple (isPyTuple), int -> number (bigint beyond 2^53), float -> number, str -> string,
// bytes -> Uint8Array (a copy), None -> null, bool -> boolean, set/frozenset -> Set.
// Safety: every length is checked against the bytes present before it is read, the mark stack and container nesting
// are capped at MAX_PICKLE_DEPTH, and a container may not change once it is stored in another (so results are
// acyclic and their depth is known exactly). Errors are TensorFileErrors naming the file, the entry and the byte.
// This file is not a pickler (see pth-write.ts) and knows nothing of tensors: the caller's hooks build those.

import { TensorFileError } from './tensor-bytes.js';

/** Marks and nested containers beyond this depth are refused (Python's own pickler stops near 1000 frames). */
export const MAX_PICKLE_DEPTH = 1000;

const tuples = new WeakSet<object>();
const orderedDicts = new WeakSet<object>();
const states = new WeakMap<object, unknown>();

/** A Python tuple: a frozen array that isPyTuple recognizes (the writer pickles it as a tuple). */
export function pyTuple<T>(items: T[]): readonly T[] {
  tuples.add(Object.freeze(items));
  return items;
}

export function isPyTuple(v: unknown): v is readonly unknown[] {
  return typeof v === 'object' && v !== null && tuples.has(v);
}

/** The state BUILD gave an OrderedDict (a state_dict's `_metadata` lives there), or undefined. */
export function pyState(dict: object): unknown {
  return states.get(dict);
}

/** A global the allowlist admitted; only REDUCE (or the caller's hooks) can use it. */
export class PyGlobal {
  constructor(readonly name: string) {}
}

/** Globals this file implements itself. Python 3 writes `__builtin__` for builtins in protocol 2. */
const BUILTIN_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict', 'builtins.set', '__builtin__.set', 'builtins.frozenset', '__builtin__.frozenset', '_codecs.encode',
  'builtins.bytes', '__builtin__.bytes',
]);

export interface UnpickleOptions {
  /** The file, for errors. */
  file: string;
  /** The archive entry or part of the file being read, for errors (e.g. "archive/data.pkl"). */
  entry: string;
  /** More allowed globals, handed to `reduce` (and seen as PyGlobal by `persistentLoad`). */
  globals?: ReadonlySet<string>;
  /** REDUCE of one of `globals`: return the value, or throw with `fail`. */
  reduce?(name: string, args: readonly unknown[], fail: (msg: string) => TensorFileError): unknown;
  /** A hint appended to the error for a global that is not allowed (e.g. how to re-save the file). */
  explain?(name: string): string | undefined;
  /** BINPERSID: the object a persistent id stands for. Without it persistent ids are an error. */
  persistentLoad?(pid: unknown, fail: (msg: string) => TensorFileError): unknown;
}

/** Opcodes torch never writes (or that would run code), by byte, so that errors can name them. */
const REFUSED: ReadonlyMap<number, string> = new Map([
  [0x30, 'POP'], [0x31, 'POP_MARK'], [0x32, 'DUP'], [0x46, 'FLOAT'], [0x49, 'INT'], [0x4c, 'LONG'], [0x50, 'PERSID'],
  [0x53, 'STRING'], [0x56, 'UNICODE'], [0x64, 'DICT'], [0x67, 'GET'], [0x69, 'INST'], [0x6c, 'LIST'], [0x6f, 'OBJ'],
  [0x70, 'PUT'], [0x81, 'NEWOBJ'], [0x82, 'EXT1'], [0x83, 'EXT2'], [0x84, 'EXT4'], [0x92, 'NEWOBJ_EX'],
  [0x97, 'NEXT_BUFFER'], [0x98, 'READONLY_BUFFER'],
]);

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Python 2 str bytes as text, byte b -> U+00bb (TextDecoder's 'latin1' is really windows-1252). */
const latin1 = { decode: (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1') };

/** Unpickle one object from `buf` starting at `start`; returns it and the position after STOP. */
export function unpickle(buf: Uint8Array, start: number, o: UnpickleOptions): { value: unknown; end: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const depth = new WeakMap<object, number>();
  const sealed = new WeakSet<object>();
  let pos = start;
  let op = start; // where the current opcode began
  const allowed = o.globals ?? new Set<string>();
  const fail = (msg: string) => new TensorFileError(o.file, `${msg} (pickle opcode at byte ${op})`, o.entry);

  const need = (n: number, what: string) => {
    if (!(n >= 0 && pos + n <= buf.length)) throw fail(`expected ${n} bytes of ${what} but only ${buf.length - pos} remain; is the data truncated?`);
  };
  const floor = () => (marks.length ? marks[marks.length - 1] : 0);
  const pop = (): unknown => {
    if (stack.length <= floor()) throw fail('pickle stack underflow: the data is corrupt');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length <= floor()) throw fail('pickle stack underflow: the data is corrupt');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw fail('expected a MARK before this opcode but there is none; the data is corrupt');
    return stack.splice(m);
  };
  const isContainer = (v: unknown): v is object => Array.isArray(v) || v instanceof Map || v instanceof Set;
  /** Record that `parent` now holds `kids`: kids are sealed, parent's depth grows, parent must not be sealed. */
  const adopt = (parent: object, kids: readonly unknown[], mutation: boolean) => {
    if (mutation && sealed.has(parent)) throw fail('a container is modified after being stored in another one (a cycle); this is refused');
    let d = depth.get(parent) ?? 0;
    for (const k of kids) {
      if (!isContainer(k)) continue;
      if (k === parent) throw fail('a container is stored in itself (a cycle); this is refused');
      sealed.add(k);
      d = Math.max(d, (depth.get(k) ?? 0) + 1);
    }
    if (d >= MAX_PICKLE_DEPTH) throw fail(`containers are nested more than ${MAX_PICKLE_DEPTH} deep; this is refused`);
    depth.set(parent, d);
  };
  const tuple = (items: unknown[]) => {
    const t = pyTuple(items);
    adopt(t, items, false);
    return t;
  };
  const str = (n: number, decoder: { decode(b: Uint8Array): string }) => {
    need(n, 'string');
    try {
      return decoder.decode(buf.subarray(pos, (pos += n)));
    } catch {
      throw fail('expected a UTF-8 string but it is not valid UTF-8');
    }
  };
  const bytes = (n: number) => {
    need(n, 'bytes');
    return new Uint8Array(buf.subarray(pos, (pos += n))); // a copy: results never alias the file
  };
  const len8 = (what: string) => {
    need(8, what);
    const v = dv.getUint32(pos + 4, true) * 2 ** 32 + dv.getUint32(pos, true);
    pos += 8;
    need(v, what); // also refuses lengths beyond 2^53
    return v;
  };
  const long = (n: number) => {
    need(n, 'integer');
    if (n > 1024) throw fail(`expected an integer of at most 1024 bytes but this one has ${n}`);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[pos + i]);
    if (n > 0 && buf[pos + n - 1] & 0x80) v -= 1n << BigInt(8 * n); // two's complement
    pos += n;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const line = () => {
    const nl = buf.subarray(pos, pos + 257).indexOf(0x0a) + pos;
    if (nl < pos) throw fail('expected a module or name of at most 256 characters ending in a newline');
    const s = str(nl - pos, utf8);
    pos++;
    return s;
  };
  const global = (name: string) => {
    if (!BUILTIN_GLOBALS.has(name) && !allowed.has(name)) {
      const list = [...BUILTIN_GLOBALS, ...allowed].join(', ');
      const hint = o.explain?.(name);
      throw fail(`pickle global ${JSON.stringify(name)} is not allowed (allowed: ${list})${hint ? `; ${hint}` : ''}`);
    }
    return new PyGlobal(name);
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw fail(`memo entry ${i} is read before it is written; the data is corrupt`);
    return memo.get(i);
  };

  if (start >= buf.length) throw fail('expected a pickle but the data is empty');
  for (;;) {
    op = pos;
    need(1, 'opcode');
    const code = buf[pos++];
    switch (code) {
      case 0x80: { // PROTO
        need(1, 'protocol');
        const v = buf[pos++];
        if (v < 2 || v > 5) throw fail(`expected pickle protocol 2 to 5 but received ${v}`);
        break;
      }
      case 0x95: len8('frame'); break; // FRAME: a length hint; the frame's opcodes follow inline
      case 0x2e: { // STOP
        if (marks.length || stack.length !== 1) throw fail(`expected exactly one value on the stack at STOP but found ${stack.length} and ${marks.length} open MARKs; the data is corrupt`);
        return { value: stack[0], end: pos };
      }
      case 0x28: // MARK
        if (marks.length >= MAX_PICKLE_DEPTH) throw fail(`MARKs are nested more than ${MAX_PICKLE_DEPTH} deep; this is refused`);
        marks.push(stack.length);
        break;
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(pyTuple([])); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: need(4, 'int'); stack.push(dv.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: need(1, 'int'); stack.push(buf[pos++]); break; // BININT1
      case 0x4d: need(2, 'int'); stack.push(dv.getUint16(pos, true)); pos += 2; break; // BININT2
      case 0x8a: need(1, 'length'); { const n = buf[pos++]; stack.push(long(n)); } break; // LONG1
      case 0x8b: need(4, 'length'); { const n = dv.getInt32(pos, true); pos += 4; stack.push(long(n)); } break; // LONG4
      case 0x47: need(8, 'float'); stack.push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x8c: need(1, 'length'); stack.push(str(buf[pos++], utf8)); break; // SHORT_BINUNICODE
      case 0x58: need(4, 'length'); { const n = dv.getUint32(pos, true); pos += 4; stack.push(str(n, utf8)); } break; // BINUNICODE
      case 0x8d: stack.push(str(len8('string'), utf8)); break; // BINUNICODE8
      case 0x55: need(1, 'length'); stack.push(str(buf[pos++], latin1)); break; // SHORT_BINSTRING (Python 2 str)
      case 0x54: need(4, 'length'); { const n = dv.getInt32(pos, true); pos += 4; stack.push(str(n, latin1)); } break; // BINSTRING
      case 0x43: need(1, 'length'); stack.push(bytes(buf[pos++])); break; // SHORT_BINBYTES
      case 0x42: need(4, 'length'); { const n = dv.getUint32(pos, true); pos += 4; stack.push(bytes(n)); } break; // BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(len8('bytes'))); break; // BINBYTES8, BYTEARRAY8
      case 0x85: stack.push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(tuple([a, b, c])); break; } // TUPLE3
      case 0x74: stack.push(tuple(popMark())); break; // TUPLE
      case 0x91: { const items = popMark(); const s = new Set(items); adopt(s, items, false); stack.push(s); break; } // FROZENSET
      case 0x71: need(1, 'memo index'); memo.set(buf[pos++], top()); break; // BINPUT
      case 0x72: need(4, 'memo index'); memo.set(dv.getUint32(pos, true), top()); pos += 4; break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: need(1, 'memo index'); stack.push(memoGet(buf[pos++])); break; // BINGET
      case 0x6a: need(4, 'memo index'); stack.push(memoGet(dv.getUint32(pos, true))); pos += 4; break; // LONG_BINGET
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) throw fail(`expected a set before ADDITEMS but received ${kind(s)}`); adopt(s, items, true); for (const v of items) s.add(v); break; } // ADDITEMS
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x63: { const mod = line(), name = line(); stack.push(global(`${mod}.${name}`)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(), mod = pop();
        if (typeof mod !== 'string' || typeof name !== 'string') throw fail('expected two strings before STACK_GLOBAL but received something else');
        stack.push(global(`${mod}.${name}`));
        break;
      }
      case 0x52: { const args = pop(), fn = pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only an OrderedDict's attributes (a state_dict's _metadata), as torch's weights_only
        const state = pop(), inst = top();
        if (!(inst instanceof Map) || !orderedDicts.has(inst)) throw fail(`BUILD is only allowed on an OrderedDict but received ${kind(inst)}`);
        if (!(state instanceof Map)) throw fail(`expected a dict as an OrderedDict's state but received ${kind(state)}`);
        adopt(inst, [state], true);
        states.set(inst, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!o.persistentLoad) throw fail('persistent ids are not allowed here');
        stack.push(o.persistentLoad(pid, fail));
        break;
      }
      default: {
        const name = REFUSED.get(code);
        throw fail(name ? `pickle opcode ${name} (0x${hex2(code)}) is not supported` : `unknown pickle opcode 0x${hex2(code)}; the data is corrupt or not a pickle`);
      }
    }
  }

  function append(list: unknown, items: unknown[]): void {
    if (!Array.isArray(list) || isPyTuple(list)) throw fail(`expected a list to append to but received ${kind(list)}`);
    adopt(list, items, true);
    for (const v of items) (list as unknown[]).push(v);
  }

  function setItems(dict: unknown, items: unknown[]): void {
    if (!(dict instanceof Map)) throw fail(`expected a dict to set items in but received ${kind(dict)}`);
    if (items.length % 2) throw fail('expected key/value pairs for SETITEMS but found an odd number of items');
    adopt(dict, items, true);
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  }

  function reduce(fn: unknown, args: unknown): unknown {
    if (!(fn instanceof PyGlobal)) throw fail(`REDUCE may only call an allowed global but received ${kind(fn)}`);
    if (!isPyTuple(args)) throw fail(`expected a tuple of arguments for ${fn.name} but received ${kind(args)}`);
    switch (fn.name) {
      case 'collections.OrderedDict': {
        if (args.length !== 0) throw fail(`expected OrderedDict() with no arguments but received ${args.length}`);
        const d = new Map();
        orderedDicts.add(d);
        return d;
      }
      case 'builtins.set': case '__builtin__.set': case 'builtins.frozenset': case '__builtin__.frozenset': {
        if (args.length !== 1 || !Array.isArray(args[0])) throw fail(`expected ${fn.name}(list) but received ${args.length} arguments`);
        const s = new Set(args[0]);
        adopt(s, args[0], false);
        return s;
      }
      case 'builtins.bytes': case '__builtin__.bytes': // how protocol 2 writes b'': bytes()
        if (args.length !== 0) throw fail(`expected ${fn.name}() with no arguments but received ${args.length}`);
        return new Uint8Array(0);
      case '_codecs.encode': { // how protocol 2 writes other bytes: encode(latin-1 text, 'latin1')
        const [text, enc] = args;
        if (args.length !== 2 || typeof text !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw fail("expected _codecs.encode(str, 'latin1'), how pickle writes bytes, but received other arguments");
        const out = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c > 255) throw fail('expected latin-1 text in _codecs.encode but found a character above U+00FF');
          out[i] = c;
        }
        return out;
      }
      default:
        if (!o.reduce) throw fail(`calling ${fn.name} is not allowed here`);
        return o.reduce(fn.name, args, fail);
    }
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** A short description of a value for messages (never its contents). */
export function kind(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyGlobal) return `global ${v.name}`;
  if (isPyTuple(v)) return `a tuple of ${v.length}`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof Map) return `a dict of ${v.size}`;
  if (v instanceof Set) return `a set of ${v.size}`;
  if (v instanceof Uint8Array) return `bytes of length ${v.length}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  if (typeof v === 'object') return `an object of class ${v.constructor?.name ?? 'null'}`;
  return `${typeof v} ${String(v)}`;
}

// Tests for src/io/{zip,pickle,pth,pth-write}.ts: every file torch.save wrote (zip and legacy; every dtype and layout,
// resnet18, checkpoints with optimizer state, pickle protocols 2-5, big-endian and deflated metadata) reads equal to
// what torch had; files we write are read back by torch.load(weights_only=True) equal (checked in Python); and every
// kind of bad input (bad files torch wrote, crafted pickles, tensors, zips, truncations and random corruption) gives
// one TensorFileError naming the file and the cause. Python (/usr/bin/python3 with torch) is required: without it
// these tests fail, they do not skip.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';
import { fromArray, zeros } from '../../src/tensor/creation.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { resnet18 } from '../../src/models/resnet.js';
import { PthStorage, extractStateDict, parsePth, readPth, readPthSync } from '../../src/io/pth.js';
import { serializePth, writePthSync } from '../../src/io/pth-write.js';
import { MAX_PICKLE_DEPTH, isPyTuple, pyState, pyTuple, unpickle } from '../../src/io/pickle.js';
import { readZipEntries, zipChunks } from '../../src/io/zip.js';
import { TensorFileError, bytesOf } from '../../src/io/tensor-bytes.js';

// ---- Python fixtures --------------------------------------------------------------------------------------------

const temps: string[] = [];
/** A fresh temporary folder, removed when the tests end. */
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function python(cmd: string, dir: string): string {
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'io', 'pth_fixtures.py'), cmd, dir], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which these tests need: ${r.error?.message}`);
  assert.equal(r.status, 0, `pth_fixtures.py ${cmd} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

type Tagged = null | boolean | { [tag: string]: unknown };
interface Manifest { files: Record<string, { format: string; expected: Tagged }>; bad: Record<string, string>; plain: Tagged }

let written: { dir: string; manifest: Manifest } | null = null;
function fixtures(): { dir: string; manifest: Manifest } {
  if (!written) {
    const dir = tempDir('pth-py-');
    python('write', dir);
    written = { dir, manifest: JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest };
  }
  return written;
}

const hexOf = (t: Tensor) => Buffer.from(bytesOf(t.contiguousData())).toString('hex');
/** Small tensors compare as hex, large ones by SHA-256 of the same bytes (as pth_fixtures.py writes them). */
function heldBytes(t: Tensor): { hex: string } | { sha256: string } {
  const b = bytesOf(t.contiguousData());
  return b.length <= 4096 ? { hex: Buffer.from(b).toString('hex') } : { sha256: createHash('sha256').update(b).digest('hex') };
}
const f64hex = (v: number) => Buffer.from(new Float64Array([v]).buffer).reverse().toString('hex');

function decodeKey(k: Tagged): unknown {
  if (k === null || typeof k === 'boolean') return k;
  const [[tag, v]] = Object.entries(k);
  if (tag === 'int') return Number.isSafeInteger(Number(v)) ? Number(v) : BigInt(v as string);
  return v;
}

/** Assert `got` (our reader's value) equals the tagged expectation Python wrote. */
function expectEqual(got: unknown, exp: Tagged, path: string, ctx: { dtypes?: Map<Tensor, string>; storages: Map<number, unknown> }): void {
  if (exp === null || typeof exp === 'boolean') return assert.equal(got, exp, path);
  const [[tag, e]] = Object.entries(exp) as [[string, unknown]];
  switch (tag) {
    case 'int': {
      const want = BigInt(e as string);
      if (want >= BigInt(Number.MIN_SAFE_INTEGER) && want <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(got, Number(want), path);
      else assert.equal(got, want, path);
      return;
    }
    case 'float': return assert.equal(typeof got === 'number' ? f64hex(got) : got, e, path);
    case 'str': return assert.equal(got, e, path);
    case 'bytes': return assert.equal(got instanceof Uint8Array ? Buffer.from(got).toString('hex') : got, e, path);
    case 'size': return assert.deepEqual(got, e, path), assert.ok(!isPyTuple(got), `${path}: torch.Size is a plain array`);
    case 'list': case 'tuple': case 'set': {
      const arr = e as Tagged[];
      if (tag === 'set') assert.ok(got instanceof Set, `${path}: expected a Set`);
      else assert.ok(Array.isArray(got) && isPyTuple(got) === (tag === 'tuple'), `${path}: expected a ${tag}`);
      const items = [...(got as Iterable<unknown>)];
      assert.equal(items.length, arr.length, `${path}: length`);
      arr.forEach((x, i) => expectEqual(items[i], x, `${path}[${i}]`, ctx));
      return;
    }
    case 'dict': {
      const pairs = e as [Tagged, Tagged][];
      assert.ok(got instanceof Map, `${path}: expected a Map`);
      assert.deepEqual([...got.keys()], pairs.map(([k]) => decodeKey(k)), `${path}: keys`);
      for (const [k, v] of pairs) expectEqual(got.get(decodeKey(k)), v, `${path}[${String(decodeKey(k))}]`, ctx);
      return;
    }
    case 'tensor': {
      const t = e as { dtype: string; shape: number[]; stride: number[]; offset: number; storage: number; requires_grad: boolean; hex?: string; sha256?: string };
      assert.ok(got instanceof Tensor, `${path}: expected a Tensor`);
      if (ctx.dtypes) assert.equal(ctx.dtypes.get(got), t.dtype, `${path}: on-disk dtype`);
      assert.deepEqual([...got.shape], t.shape, `${path}: shape`);
      assert.deepEqual([...got.strides], t.stride, `${path}: strides (views keep them)`);
      assert.equal(got.offset, t.offset, `${path}: storage offset`);
      assert.equal(got.requiresGrad, t.requires_grad, `${path}: requires_grad`);
      assert.deepEqual(heldBytes(got), t.hex === undefined ? { sha256: t.sha256 } : { hex: t.hex }, `${path}: values`);
      const seen = ctx.storages.get(t.storage);
      if (seen === undefined) {
        for (const [, d] of ctx.storages) assert.notEqual(d, got.data, `${path}: must not share another tensor's storage`);
        ctx.storages.set(t.storage, got.data);
      } else assert.equal(got.data, seen, `${path}: must share storage ${t.storage}`);
      return;
    }
  }
  assert.fail(`${path}: unknown tag ${tag}`);
}

function rejects(buf: Uint8Array, ...patterns: RegExp[]): TensorFileError {
  let err: unknown;
  try {
    parsePth(buf, 'bad.pth');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TensorFileError, `expected a TensorFileError but got ${err instanceof Error ? err.stack : String(err)}`);
  assert.match(err.message, /^bad\.pth: /);
  for (const p of patterns) assert.match(err.message, p);
  return err;
}

// ---- a tiny pickle assembler for crafted inputs -------------------------------------------------------------------

const te = new TextEncoder();
type Part = number | number[] | Uint8Array | string;
/** Bytes from opcodes (numbers), byte arrays and latin-1 text. */
function bytes(...parts: Part[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else if (typeof p === 'string') for (const c of p) out.push(c.charCodeAt(0));
    else out.push(...p);
  }
  return new Uint8Array(out);
}
const u32 = (n: number) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];
const S = (s: string): Part[] => { const b = te.encode(s); return [0x58, u32(b.length), b]; }; // BINUNICODE
/** BININT, or LONG1 (8 bytes) beyond 32 bits. */
const I = (n: number): Part[] => (n === (n | 0) ? [0x4a, u32(n)] : [0x8a, 8, [...new Uint8Array(new BigInt64Array([BigInt(n)]).buffer)]]);
const G = (mod: string, name: string): Part[] => [0x63, `${mod}\n${name}\n`]; // GLOBAL
const T = (...items: Part[][]): Part[] => [0x28, ...items.flat(), 0x74]; // MARK ... TUPLE
const PROTO = [0x80, 2];

interface TensorSpec { storage?: string; key?: string; numel?: number; offset?: number; size?: number[]; stride?: number[]; args?: Part[][] }
/** A pickle of one `_rebuild_tensor_v2` call, as torch writes it (fields overridable). */
function tensorPickle(o: TensorSpec = {}): Part[] {
  const size = o.size ?? [2, 3], stride = o.stride ?? [3, 1];
  const pid = T(S('storage'), G('torch', o.storage ?? 'FloatStorage'), S(o.key ?? '0'), S('cpu'), I(o.numel ?? 6));
  const args = o.args ?? [[...pid, 0x51], I(o.offset ?? 0), T(...size.map(I)), T(...stride.map(I)), [0x89], [...G('collections', 'OrderedDict'), 0x29, 0x52]];
  return [...G('torch._utils', '_rebuild_tensor_v2'), ...T(...args), 0x52];
}
/** A zip checkpoint from a pickle body (PROTO and STOP added) and storage records. */
function pthOf(body: Part[], storages: Record<string, Uint8Array> = { 0: new Uint8Array(24) }, o: { zip64?: boolean; align?: number } = {}): Uint8Array {
  const entries = [{ name: 'archive/data.pkl', data: bytes(...PROTO, ...body, 0x2e) }];
  for (const [k, d] of Object.entries(storages)) entries.push({ name: `archive/data/${k}`, data: d });
  return Buffer.concat(zipChunks(entries, o));
}
const unp = (...parts: Part[]) => unpickle(bytes(...PROTO, ...parts, 0x2e), 0, { file: 'bad.pth', entry: 'x.pkl' }).value;
function pickleRejects(parts: Part[], ...patterns: RegExp[]): void {
  assert.throws(() => unp(...parts), (e: unknown) => {
    assert.ok(e instanceof TensorFileError, `expected a TensorFileError but got ${String(e)}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });
}

// ---- reading what torch wrote ----------------------------------------------------------------------------------

test('every file torch.save wrote (zip and legacy) reads equal: dtypes, layouts, shared storage, checkpoints', () => {
  const { dir, manifest } = fixtures();
  assert.ok(Object.keys(manifest.files).length >= 26);
  for (const [name, spec] of Object.entries(manifest.files)) {
    const f = readPthSync(join(dir, name));
    assert.equal(f.format, spec.format, `${name}: format`);
    expectEqual(f.object, spec.expected, name, { dtypes: f.dtypes, storages: new Map() });
  }
});

test('zip storages are zero-copy views of the file; legacy and converted ones are copies', () => {
  const { dir } = fixtures();
  const buf = readFileSync(join(dir, 'resnet18.pth'));
  const sd = parsePth(buf).object as Map<string, Tensor>;
  for (const [k, t] of sd) assert.equal(t.data.buffer, buf.buffer, `${k} views the file buffer`);
  const d = parsePth(readFileSync(join(dir, 'dtypes.pth')));
  const m = d.object as Map<string, Tensor>;
  assert.equal(m.get('float16')!.dtype, 'float32');
  assert.equal(d.dtypes.get(m.get('float16')!), 'float16');
  assert.equal(m.get('int8')!.dtype, 'int32');
  assert.equal(d.dtypes.get(m.get('int8')!), 'int8');
  // legacy records are unaligned: parsePth (the caller's buffer) copies them; readPthSync (its own buffer) aligns
  // them in place, so they become views of one buffer too, with the same values
  const file = readFileSync(join(dir, 'dtypes_legacy.pth')); // 1-byte records of odd lengths misalign the rest
  const copied = parsePth(file);
  const inPlace = readPthSync(join(dir, 'dtypes_legacy.pth'));
  const native = (f: typeof copied) => [...(f.object as Map<string, Tensor>).values()].filter((t) => t.dtype === f.dtypes.get(t));
  assert.ok(native(copied).some((t) => t.data.buffer !== file.buffer), 'some records copied');
  assert.equal(new Set(native(inPlace).map((t) => t.data.buffer)).size, 1, 'one buffer');
  for (const [k, t] of copied.object as Map<string, Tensor>) assert.equal(hexOf((inPlace.object as Map<string, Tensor>).get(k)!), hexOf(t), k);
  assert.deepEqual(parsePth(file).object instanceof Map, true, 'parsePth left the caller\'s buffer intact');
});

test('pickle protocols 2-5 of plain values: ints of every width, floats, strings, bytes, tuples, sets, odd keys', () => {
  const { dir, manifest } = fixtures();
  for (const p of [2, 3, 4, 5]) {
    const { value } = unpickle(readFileSync(join(dir, `plain_p${p}.pkl`)), 0, { file: `plain_p${p}.pkl`, entry: 'pickle' });
    expectEqual(value, manifest.plain, `protocol ${p}`, { storages: new Map() });
    const m = value as Map<unknown, unknown>;
    assert.equal(Object.getPrototypeOf(m), Map.prototype, '__proto__ is an ordinary key');
    assert.equal(m.get('__proto__'), 'p');
    const shared = m.get('shared') as unknown[][];
    assert.equal(shared[0], shared[1], 'a memoized list is one object');
    assert.ok(Object.isFrozen(pyTuple([1])) && isPyTuple(pyTuple([1])) && !isPyTuple([1]));
  }
});

test('a state_dict keeps its _metadata (BUILD on an OrderedDict) and loads into our resnet18 (zip and legacy)', async () => {
  const { dir } = fixtures();
  for (const name of ['resnet18.pth', 'resnet18_legacy.pth']) {
    const f = name.endsWith('legacy.pth') ? await readPth(join(dir, name)) : readPthSync(join(dir, name));
    const state = pyState(f.object as object) as Map<string, unknown>;
    assert.ok(state instanceof Map && state.get('_metadata') instanceof Map, `${name}: _metadata`);
    const sd = extractStateDict(f.object, name);
    assert.equal(f.dtypes.get(sd.get('bn1.num_batches_tracked')!), 'int64');
    const model = resnet18();
    const r = model.loadStateDict(sd);
    assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    assert.equal(hexOf(model.stateDict().get('layer4.1.bn2.running_var')!), hexOf(sd.get('layer4.1.bn2.running_var')!));
  }
});

test('extractStateDict: plain state dicts and the checkpoint keys people use; module. stripped; a clear error', () => {
  const { dir } = fixtures();
  const base = extractStateDict(readPthSync(join(dir, 'sd_state_dict.pth')).object);
  const keys = [...base.keys()];
  assert.ok(keys.includes('0.weight') && keys.includes('1.num_batches_tracked'));
  for (const f of ['sd_model.pth', 'sd_net.pth', 'sd_model_state_dict.pth', 'sd_module.pth', 'sd_module_legacy.pth', 'checkpoint.pth']) {
    assert.deepEqual([...extractStateDict(readPthSync(join(dir, f)).object, f).keys()], keys, f);
  }
  const plain = { 'module.a': zeros([1]), 'module.b': zeros([2]) };
  assert.deepEqual([...extractStateDict(plain).keys()], ['a', 'b']);
  assert.deepEqual([...extractStateDict({ 'module.a': zeros([1]), b: zeros([1]) }).keys()], ['module.a', 'b'], 'only when every key has it');
  assert.throws(() => extractStateDict(readPthSync(join(dir, 'not_sd.pth')).object, 'not_sd.pth'),
    /^TensorFileError: not_sd\.pth: expected a state dict .* "state_dict", "model_state_dict", "model", "net", but the top-level keys are \["epoch", "lr", "model"\]$/);
  assert.throws(() => extractStateDict([1, 2], 'x.pth'), /x\.pth: .*but the object is a list of 2/);
  assert.throws(() => extractStateDict(new Map()), /top-level keys are \[\]/);
});

test('bad files torch wrote are refused with one clear error, and nothing runs', () => {
  const { dir, manifest } = fixtures();
  for (const [name, message] of Object.entries(manifest.bad)) {
    assert.throws(() => readPthSync(join(dir, name)), (e: unknown) => {
      assert.ok(e instanceof TensorFileError, `${name}: ${String(e)}`);
      assert.ok(e.message.startsWith(`${join(dir, name)}: `), e.message);
      assert.ok(e.message.includes(message), `${name}: ${e.message}`);
      return true;
    });
  }
  assert.ok(!existsSync(join(dir, 'PWNED')), 'the os.system payload never ran');
  assert.throws(() => readPthSync(join(dir, 'bad_module.pth')), /; the file pickles a whole Python object \(a model\?\): in PyTorch, torch\.save\(model\.state_dict\(\), path\)/);
  assert.throws(() => readPthSync(join(dir, 'bad_complex.pth')), /; tensors of this dtype are not supported/);
});

// ---- writing for torch ------------------------------------------------------------------------------------------

/** The tagged form of a value we write (what torch must read back). */
function tag(v: unknown, storages: Map<unknown, number>): Tagged {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return { int: String(v) };
  if (typeof v === 'number') return Number.isInteger(v) ? { int: BigInt(v).toString() } : { float: f64hex(v) };
  if (typeof v === 'string') return { str: v };
  if (v instanceof Tensor) {
    if (!storages.has(v.data)) storages.set(v.data, storages.size);
    return { tensor: { dtype: v.dtype, shape: [...v.shape], stride: [...v.strides], offset: v.offset, storage: storages.get(v.data), requires_grad: false, ...heldBytes(v) } };
  }
  if (isPyTuple(v)) return { tuple: v.map((x) => tag(x, storages)) };
  if (Array.isArray(v)) return { list: v.map((x) => tag(x, storages)) };
  const entries = v instanceof Map ? [...v] : Object.entries(v as object);
  return { dict: entries.map(([k, x]) => [tag(k, storages), tag(x, storages)]) };
}

function sampleTensors(): Map<string, Tensor> {
  const base = fromArray(Array.from({ length: 24 }, (_, i) => i), [4, 6]);
  const f = new Float32Array([0, -0, 1.5, -2, Infinity, -Infinity, NaN, 1e-45, 3.4e38, 0.1]);
  return new Map<string, Tensor>([
    ['f32', fromArray(f, [2, 5])],
    ['f64', fromArray(new Float64Array([Math.PI, -0, NaN, 5e-324]), [4])],
    ['i64', fromArray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), [3])],
    ['num_batches_tracked', fromArray(new BigInt64Array([12345n]), [])],
    ['i32', fromArray(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [1, 2])],
    ['u8', fromArray(new Uint8Array([0, 127, 255]), [3])],
    ['bool', fromArray([true, false, true])],
    ['scalar', new Tensor(new Float32Array([7]), [])],
    ['empty', zeros([0, 3])],
    ['base', base],
    ['row', base.get(1)],
    ['transposed', base.transpose(0, 1)],
    ['narrow', base.narrow(1, 2, 3)],
    ['expanded', new Tensor(new Float32Array([3]), [4, 5], { strides: [0, 0] })],
  ]);
}

test('files we write are read back equal by torch.load(weights_only=True) (checked in Python) and by us', () => {
  const dir = tempDir('pth-ts-');
  const { dir: pyDir } = fixtures();
  const r18 = readPthSync(join(pyDir, 'resnet18.pth')).object as Map<string, Tensor>;
  const nested = { a: { b: [1, [2, [3, { c: pyTuple([]) }]]] } };
  const checkpoint = new Map<unknown, unknown>([
    ['epoch', 7], ['model_state_dict', sampleTensors()], ['loss', 0.25], ['lr', 1e-3], ['name', 'resnet'], ['note', null],
    ['flags', [true, false]], ['pair', pyTuple([1, 'a', null, 2.5])], ['big', 2n ** 70n], ['neg', -(2 ** 40)], ['huge', -(2 ** 60)],
    ['nested', nested], ['ключ', 'значение'], ['__proto__', 1], [5, 'int key'], ['ints', [0, 255, 256, 65535, 65536, -1, -(2 ** 31), 2 ** 31]],
    ['specials', [NaN, Infinity, -Infinity, -0.5, 5e-324]],
  ]);
  const noFloat = new Map([...checkpoint].filter(([k]) => !['loss', 'lr', 'pair', 'specials', 'model_state_dict'].includes(k as string)));
  const objects: Record<string, unknown> = {
    'ts_tensors.pth': sampleTensors(),
    'ts_checkpoint.pth': checkpoint,
    'ts_checkpoint_nofloat.pth': noFloat,
    'ts_plain_object.pth': { 'conv.weight': fromArray([1, 2, 3]), 'conv.bias': fromArray([4]) },
    'ts_empty.pth': new Map(),
    'ts_resnet18.pth': r18,
    'ts_zip64.pth': sampleTensors(),
  };
  const files: Record<string, unknown> = {};
  for (const [name, obj] of Object.entries(objects)) {
    writePthSync(join(dir, name), obj, { zip64: name === 'ts_zip64.pth' });
    files[name] = { expected: tag(obj, new Map()), ...(name === 'ts_resnet18.pth' ? { same_as: join(pyDir, 'resnet18.pth') } : {}) };
    const back = readPthSync(join(dir, name));
    expectEqual(back.object, tag(obj, new Map()), `${name} (our reader)`, { storages: new Map() });
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ files }));
  const out = python('check', dir);
  assert.match(out, /^OK 7/m, out);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
});

test('written archives: torch layout, 64-byte aligned STORED data, zip64 on request, atomic and strict writes', () => {
  const t = sampleTensors();
  const buf = serializePth(t);
  const entries = readZipEntries(buf, 'w.pth');
  assert.deepEqual([...entries.keys()].slice(0, 3), ['archive/data.pkl', 'archive/byteorder', 'archive/data/0']);
  assert.equal([...entries.keys()].at(-1), 'archive/version');
  for (const e of entries.values()) {
    assert.equal(e.method, 0);
    assert.equal(e.dataOffset % 64, 0, `${e.name} aligned`);
  }
  const z64 = serializePth(t, { zip64: true });
  assert.deepEqual([...readZipEntries(z64, 'z.pth').keys()], [...entries.keys()]);
  assert.ok(z64.length > buf.length);
  // storages are written once per shared typed array
  const shared = serializePth(new Map([['a', t.get('base')!], ['b', t.get('row')!], ['c', t.get('transposed')!]]));
  assert.equal([...readZipEntries(shared, 's.pth').keys()].filter((k) => k.includes('/data/')).length, 1);

  const dir = tempDir('pth-w-');
  const path = join(dir, 'x.pth');
  writeFileSync(path, 'old');
  writePthSync(path, t);
  assert.equal(readPthSync(path).format, 'zip');
  assert.throws(() => writePthSync(join(dir, 'no', 'such', 'x.pth'), t), /cannot write/);
  assert.throws(() => writePthSync(join(dir, 'y.pth'), { f: () => 1 }), /Expected a dict, list, .* at obj\["f"\] but received/);
  assert.deepEqual(readdirSync(dir).sort(), ['x.pth'], 'failed writes leave nothing behind');

  const cyc: unknown[] = [];
  cyc.push(cyc);
  assert.throws(() => serializePth({ a: cyc }), /acyclic/);
  let deep: unknown = [];
  for (let i = 0; i < MAX_PICKLE_DEPTH + 5; i++) deep = [deep];
  assert.throws(() => serializePth(deep), /nested at most/);
  const same = [1, 2];
  const twice = parsePth(serializePth({ x: [same, same] })).object as Map<string, unknown[][]>;
  assert.equal(twice.get('x')![0], twice.get('x')![1], 'a shared container is written once');
  const bytesShared = new Uint8Array([1, 0]);
  assert.throws(() => serializePth({ a: new Tensor(bytesShared, [2], { dtype: 'uint8' }), b: new Tensor(bytesShared, [2], { dtype: 'bool' }) }), /share its dtype/);
  assert.throws(() => serializePth({ s: 'a\ud800' }), /lone surrogate/);
  assert.throws(() => serializePth({ f: new Float32Array(2) }), /Float32Array/);
});

// ---- crafted bad input ------------------------------------------------------------------------------------------

test('crafted pickles: refused opcodes and globals, misused REDUCE/BUILD/persistent ids, cycles, depth, memo, lengths', () => {
  pickleRejects([0x81], /pickle opcode NEWOBJ \(0x81\) is not supported/);
  for (const [op, name] of [[0x69, 'INST'], [0x6f, 'OBJ'], [0x82, 'EXT1'], [0x50, 'PERSID'], [0x92, 'NEWOBJ_EX'], [0x97, 'NEXT_BUFFER'], [0x30, 'POP']] as const) {
    pickleRejects([op], new RegExp(`${name} \\(0x${op.toString(16)}\\) is not supported`));
  }
  pickleRejects([0xff], /unknown pickle opcode 0xff/);
  pickleRejects([...G('os', 'system')], /^bad\.pth: "x\.pkl": pickle global "os\.system" is not allowed \(allowed: collections\.OrderedDict, .*\) \(pickle opcode at byte 2\)$/);
  pickleRejects([...G('builtins', 'eval')], /"builtins\.eval" is not allowed/);
  pickleRejects([...S('os'), ...S('system'), 0x93], /"os\.system" is not allowed/); // STACK_GLOBAL
  pickleRejects([...G('builtins', 'getattr')], /"builtins\.getattr" is not allowed/);
  pickleRejects([...G('collections', 'OrderedDict'), ...S('x'), 0x85, 0x52], /OrderedDict\(\) with no arguments/);
  pickleRejects([...S('f'), 0x29, 0x52], /REDUCE may only call an allowed global but received the string "f"/);
  pickleRejects([...G('collections', 'OrderedDict'), 0x5d, 0x52], /expected a tuple of arguments/);
  pickleRejects([0x5d, 0x7d, 0x62], /BUILD is only allowed on an OrderedDict but received a list/);
  pickleRejects([0x7d, 0x7d, 0x62], /BUILD is only allowed on an OrderedDict but received a dict/);
  pickleRejects([...T(S('storage')), 0x51], /persistent ids are not allowed here/);
  pickleRejects([...G('torch._utils', '_rebuild_tensor_v2')], /"torch\._utils\._rebuild_tensor_v2" is not allowed/); // only with torch hooks
  pickleRejects([0x5d, 0x71, 0, 0x68, 0, 0x61], /stored in itself/);
  pickleRejects([0x5d, 0x71, 0, 0x5d, 0x68, 0, 0x61, 0x61], /modified after being stored/);
  pickleRejects([0x68, 5], /memo entry 5 is read before it is written/);
  pickleRejects([0x61], /stack underflow/);
  pickleRejects([0x28, 0x4e, 0x85, 0x61], /stack underflow/); // APPEND may not reach below a MARK
  pickleRejects([0x65], /expected a MARK/);
  pickleRejects([0x4e, 0x4e], /exactly one value on the stack at STOP/);
  pickleRejects([0x5d, 0x28, 0x4e, 0x75], /dict to set items in but received a list/);
  pickleRejects([0x7d, 0x28, 0x4e, 0x75], /odd number/);
  pickleRejects([0x29, 0x4e, 0x61], /list to append to but received a tuple/);
  pickleRejects([0x58, u32(1000), 'abc'], /expected 1000 bytes of string but only \d+ remain/);
  pickleRejects([0x58, u32(0xffffffff)], /4294967295 bytes/);
  pickleRejects([0x8d, [0, 0, 0, 0, 0, 0, 0, 0x40]], /bytes of string/); // BINUNICODE8 of 2^62
  pickleRejects([0x8b, u32(0x7fffffff)], /bytes of integer/); // LONG4
  pickleRejects([0x8b, u32(2000), new Uint8Array(2000)], /at most 1024 bytes/);
  pickleRejects([0x95, [255, 255, 255, 255, 255, 255, 255, 255]], /frame/);
  pickleRejects([0x58, u32(2), [0xc3, 0x28]], /not valid UTF-8/);
  pickleRejects([0x63, 'os\nsystem'], /ending in a newline/);
  assert.throws(() => unpickle(bytes(0x80, 1, 0x4e, 0x2e), 0, { file: 'f', entry: 'e' }), /protocol 2 to 5 but received 1/);
  assert.throws(() => unpickle(bytes(...PROTO, 0x4e), 0, { file: 'f', entry: 'e' }), /bytes of opcode/);
  assert.throws(() => unpickle(new Uint8Array(0), 0, { file: 'f', entry: 'e' }), /empty/);

  // nesting: marks, lists and tuples beyond MAX_PICKLE_DEPTH are refused; just below it they are fine
  const n = MAX_PICKLE_DEPTH + 10;
  pickleRejects([...Array(n).fill(0x28)], /MARKs are nested more than 1000 deep/);
  pickleRejects([...Array(n).fill(0x5d), ...Array(n - 1).fill(0x61)], /nested more than 1000 deep/);
  pickleRejects([0x29, ...Array(n).fill(0x85)], /nested more than 1000 deep/);
  let v = unp(0x29, ...Array(MAX_PICKLE_DEPTH - 1).fill(0x85));
  for (let i = 0; i < MAX_PICKLE_DEPTH - 1; i++) v = (v as unknown[])[0];
  assert.ok(isPyTuple(v) && (v as unknown[]).length === 0);
  // Python 2 strings and bytes, and shared (not cyclic) references are fine
  assert.equal(unp(0x55, 3, 'a\xe9b'), 'a\u00e9b');
  assert.deepEqual(unp(0x43, 2, [1, 2]), new Uint8Array([1, 2]));
});

test('crafted tensors: sizes, offsets and strides checked against the storage before any read', () => {
  const ok = parsePth(pthOf(tensorPickle())).object as Tensor;
  assert.deepEqual([...ok.shape], [2, 3]);
  const views = parsePth(pthOf(T(tensorPickle({ offset: 5, size: [1], stride: [1] }), tensorPickle({ size: [3, 2], stride: [1, 3] })))).object as Tensor[];
  assert.equal(views[0].data, views[1].data, 'one storage per key');
  rejects(pthOf(tensorPickle({ offset: 1 })), /"archive\/data\.pkl": expected a tensor of size \[2, 3\], stride \[3, 1\] at offset 1 to fit in storage "0" of 6 elements but it reaches element 6/);
  rejects(pthOf(tensorPickle({ stride: [4, 1] })), /stride \[4, 1\] at offset 0 .* reaches element 6/);
  rejects(pthOf(tensorPickle({ size: [2, 3, 4], stride: [3, 1] })), /as many strides as dimensions/);
  rejects(pthOf(tensorPickle({ size: [2 ** 40, 2 ** 40], stride: [0, 0] })), /at most 4294967296 elements/);
  rejects(pthOf(tensorPickle({ numel: 2 ** 50 })), /expected storage record "archive\/data\/0" to hold 1125899906842624 float32 elements \(4503599627370496 bytes\) but it holds 24 bytes/);
  rejects(pthOf(tensorPickle({ numel: 5 })), /to hold 5 float32 elements \(20 bytes\) but it holds 24 bytes/);
  rejects(pthOf(tensorPickle({ key: '7' })), /expected a storage record "archive\/data\/7" for storage key "7" but the archive has none/);
  rejects(pthOf(tensorPickle({ key: '../0' })), /expected a storage key of letters and digits but received the string "..\/0"/);
  rejects(pthOf(tensorPickle({ storage: 'ComplexFloatStorage' })), /pickle global "torch\.ComplexFloatStorage" is not allowed/);
  rejects(pthOf(tensorPickle({ storage: 'BoolStorage' }), { 0: new Uint8Array([0, 1, 2, 0, 0, 0]) }), /storage "0": expected bool bytes to be 0 or 1 but element 2 is 2/);
  rejects(pthOf(tensorPickle({ offset: -1 })), /storage offset \(a non-negative integer\) but received number -1/);
  rejects(pthOf(tensorPickle({ size: [-2, 3] })), /size to be a tuple of at most 64 non-negative integers/);
  rejects(pthOf([...tensorPickle(), ...tensorPickle({ storage: 'LongStorage', numel: 3 }), 0x86]), /storage "0" is used as 3 int64 elements here but as 6 float32 elements before/);
  rejects(pthOf([...G('torch._utils', '_rebuild_tensor_v2'), ...T([...S('x')]), 0x52]), /expected 6 or 7 arguments for torch\._utils\._rebuild_tensor_v2 but received 1/);
  rejects(pthOf([...G('torch._utils', '_rebuild_tensor_v2'), ...T(S('s'), I(0), T(), T(), [0x89], [0x7d]), 0x52]), /expected a storage as a tensor's first argument but received the string "s"/);
  rejects(pthOf([...G('torch', 'FloatStorage'), 0x29, 0x52]), /calling torch\.FloatStorage is not allowed/);
  rejects(pthOf([...T(S('module'), G('torch', 'FloatStorage'), S('0'), S('cpu'), I(6)), 0x51]), /persistent id tagged "storage" but received the string "module"/);
  rejects(pthOf([...T(S('storage'), S('torch.FloatStorage'), S('0'), S('cpu'), I(6)), 0x51]), /storage class in the persistent id but received the string/);
  rejects(pthOf([...G('torch', 'Size'), ...T(T(I(-1))), 0x52]), /torch\.Size to be a tuple/);
  const bare = parsePth(pthOf([...T(S('storage'), G('torch', 'LongStorage'), S('0'), S('cpu'), I(3)), 0x51])).object;
  assert.ok(bare instanceof PthStorage && bare.dtype === 'int64' && bare.numel === 3, 'a bare storage');
});

test('crafted zips: truncation, trailing data, duplicates, path tricks, overlap, encryption, bombs, bad CRC', () => {
  const good = pthOf(tensorPickle());
  assert.ok(parsePth(good).object instanceof Tensor);
  rejects(good.subarray(0, good.length - 1), /end-of-central-directory record .* truncated/);
  rejects(bytes('PK', 3, 4), /end-of-central-directory/);
  rejects(Buffer.concat([good, new Uint8Array(10)]), /end-of-central-directory/);
  rejects(new Uint8Array(0), /starts with 0x\(empty\)/);
  rejects(te.encode('{"a": 1}'), /expected a PyTorch checkpoint .* starts with 0x7b2261223a20317d$/);
  const twice = Buffer.concat(zipChunks([{ name: 'archive/data.pkl', data: new Uint8Array(1) }, { name: 'archive/data.pkl', data: new Uint8Array(1) }]));
  rejects(twice, /"archive\/data\.pkl": expected unique entry names/);
  for (const [name, why] of [['../x', /"\.\." path segment/], ['/etc/passwd', /absolute/], ['archive\\data.pkl', /backslash/], ['C:/x', /absolute/], ['a//b', /empty/], ['a/./b', /"\."/], ['a\u0000b', /control/]] as const) {
    rejects(Buffer.concat(zipChunks([{ name, data: new Uint8Array(1) }])), /path tricks/, why);
  }
  rejects(Buffer.concat(zipChunks([{ name: 'a/data.pkl', data: new Uint8Array(1) }, { name: 'b/x', data: new Uint8Array(1) }])), /"b\/x": expected every entry inside one top-level folder/);
  rejects(Buffer.concat(zipChunks([{ name: 'a/version', data: te.encode('3\n') }])), /expected a pickle record "a\/data\.pkl"/);
  rejects(Buffer.concat(zipChunks([{ name: 'a/code/x.py', data: new Uint8Array(1) }])), /TorchScript/);
  rejects(pthOf(tensorPickle()).fill(0x20, 64, 66), /"archive\/data\.pkl": expected CRC-32 [0-9a-f]{8} but the data has/); // garbled pickle bytes
  rejects(Buffer.concat(zipChunks([{ name: 'archive/data.pkl', data: bytes(...PROTO, 0x4e, 0x2e, 0x4e) }])), /1 bytes follow/);
  rejects(Buffer.concat(zipChunks([{ name: 'archive/data.pkl', data: bytes(...PROTO, 0x4e, 0x2e) }, { name: 'archive/byteorder', data: te.encode('middle') }])), /"archive\/byteorder": expected "little" or "big"/);

  // patch central-directory fields of the good file
  const cd = (buf: Uint8Array) => {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const eocd = buf.length - 22;
    return { dv, eocd, cdOffset: dv.getUint32(eocd + 16, true) };
  };
  const patched = (f: (p: ReturnType<typeof cd>) => void) => {
    const b = new Uint8Array(good);
    f(cd(b));
    return b;
  };
  rejects(patched(({ dv, cdOffset }) => dv.setUint16(cdOffset + 8, 1, true)), /encrypted/);
  rejects(patched(({ dv, cdOffset }) => dv.setUint16(cdOffset + 10, 12, true)), /compression method 0 \(stored\) or 8 \(deflate\) but received 12/);
  rejects(patched(({ dv, cdOffset }) => dv.setUint32(cdOffset + 16, 1234, true)), /expected CRC-32 000004d2 but the data has/);
  rejects(patched(({ dv, cdOffset }) => dv.setUint32(cdOffset + 42, 1, true)), /local file header at byte 1/);
  rejects(patched(({ dv, cdOffset }) => (dv.setUint32(cdOffset + 20, 1e9, true), dv.setUint32(cdOffset + 24, 1e9, true))), /1000000000 bytes of data .* truncated/);
  rejects(patched(({ dv, eocd }) => dv.setUint16(eocd - 76 + 32, 0, true)), /zip and zip64 end records to agree/); // zip64 entry count
  rejects(patched(({ dv, eocd }) => { dv.setUint16(eocd + 10, 60000, true); dv.setUint16(eocd + 8, 60000, true); }), /zip and zip64 end records to agree/);
  const noZip64 = (b: Uint8Array) => { // classic EOCD only: drop the zip64 record and locator
    const { eocd } = cd(b);
    return Buffer.concat([b.subarray(0, eocd - 76), b.subarray(eocd)]);
  };
  assert.ok(parsePth(noZip64(good)).object instanceof Tensor, 'a classic end record alone is fine');
  rejects(patched(({ dv, eocd }) => dv.setUint32(eocd - 76 + 48, 2 ** 31, true)), /zip and zip64 end records to agree/); // zip64 directory offset
  rejects(patched(({ dv, eocd }) => dv.setUint32(eocd - 20 + 8, 5, true)), /zip64 end-of-central-directory record at byte 5/);
  rejects(patched(({ dv, eocd }) => dv.setUint32(eocd + 16, 2 ** 31, true)), /agree/);
  const tooMany = noZip64(good);
  new DataView(tooMany.buffer, tooMany.byteOffset).setUint16(tooMany.length - 12, 65000, true);
  rejects(tooMany, /at most \d+ entries in a \d+-byte central directory but the archive claims 65000/);

  // overlapping entries: a second name whose local header sits inside the first entry's data
  const inner = Buffer.concat(zipChunks([{ name: 'archive/xyz', data: new Uint8Array(24) }], { align: 1 }));
  const innerLocal = inner.subarray(0, inner.indexOf(bytes('PK', 1, 2)));
  const outer = Buffer.concat(zipChunks([{ name: 'archive/data.pkl', data: bytes(...PROTO, 0x4e, 0x2e) }, { name: 'archive/pad', data: innerLocal }], { align: 1 }));
  const padEntry = readZipEntries(outer, 'o').get('archive/pad')!;
  const o = cd(outer);
  const records = Buffer.from(outer.subarray(o.cdOffset, outer.length - 98)); // the two central records
  const clone = Buffer.from(records.subarray(records.indexOf(bytes('PK', 1, 2), 4)));
  clone.write('archive/xyz', 46, 'latin1');
  clone.writeUInt32LE(crc32(new Uint8Array(24)) >>> 0, 16);
  clone.writeUInt32LE(24, 20);
  clone.writeUInt32LE(24, 24);
  clone.writeUInt32LE(padEntry.dataOffset, 42);
  const forged = Buffer.concat([outer.subarray(0, o.cdOffset), records, clone]);
  const tail = Buffer.from(outer.subarray(outer.length - 22));
  tail.writeUInt16LE(3, 8); tail.writeUInt16LE(3, 10); tail.writeUInt32LE(records.length + clone.length, 12);
  rejects(Buffer.concat([forged, tail]), /"archive\/xyz": expected entries not to overlap but this one starts inside "archive\/pad"/);
});

test('zip bombs: storages must be STORED; a deflated pickle is capped before and while inflating', async () => {
  const { dir } = fixtures();
  const { deflateRawSync, crc32 } = await import('node:zlib');
  // one deflated data.pkl whose central directory claims a given size
  const deflated = (claimed: number, payload: Uint8Array) => {
    const plain = Buffer.concat(zipChunks([{ name: 'archive/data.pkl', data: payload }], { align: 1 }));
    const packed = deflateRawSync(payload);
    const name = te.encode('archive/data.pkl');
    const local = Buffer.alloc(30 + name.length + packed.length);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(8, 8); local.writeUInt16LE(name.length, 26);
    local.set(name, 30); local.set(packed, 30 + name.length);
    const central = Buffer.alloc(46 + name.length);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(8, 10); central.writeUInt32LE(crc32(payload) >>> 0, 16);
    central.writeUInt32LE(packed.length, 20); central.writeUInt32LE(claimed, 24); central.writeUInt16LE(name.length, 28);
    central.set(name, 46);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length, 12); end.writeUInt32LE(local.length, 16);
    assert.ok(plain.length > 0);
    return Buffer.concat([local, central, end]);
  };
  const pkl = bytes(...PROTO, 0x4e, 0x2e);
  assert.equal(parsePth(deflated(pkl.length, pkl)).object, null, 'a small deflated pickle is fine');
  rejects(deflated(3_000_000_000, pkl), /inflate to at most 67108864 bytes but it declares 3000000000/);
  const bomb = new Uint8Array(50 << 20); // 50 MB of zeros deflate to ~50 KB; the entry claims 10 bytes
  rejects(deflated(10, bomb), /cannot inflate the entry \(declared size 10 bytes\)/);
  rejects(readFileSync(join(dir, 'bad_deflated_storage.pth')), /DEFLATE-compressed/);
  assert.ok(parsePth(readFileSync(join(dir, 'deflated_pkl.pth'))).object instanceof Map);
});

test('legacy files: storage counts, missing or extra records, trailing bytes, truncation', () => {
  const { dir } = fixtures();
  const good = readFileSync(join(dir, 'parameters_legacy.pth'));
  assert.equal(parsePth(good).format, 'legacy');
  rejects(Buffer.concat([good, new Uint8Array(3)]), /expected the file to end after the last storage record .* 3 more bytes follow/);
  rejects(good.subarray(0, good.length - 1), /truncated/);
  // the first storage record's count follows the key list; make it disagree
  const list = good.lastIndexOf(0x2e, good.length - 8 - 12 - 8 - 8) + 1; // STOP of the key list (storages: 3 + 2 floats)
  const bad = Buffer.from(good);
  bad.writeUInt32LE(99, list);
  rejects(bad, /expected the storage record to hold \d elements, as the object says, but it says 99/);
  const notMagic = Buffer.from(good);
  notMagic[5] ^= 1; // inside the LONG1 that holds the magic number
  rejects(notMagic, /legacy magic number/);
});

test('truncations and random corruption never crash, hang or run anything: each gives one TensorFileError', () => {
  const { dir } = fixtures();
  const files = [serializePth(new Map<string, unknown>([['w', sampleTensors()], ['epoch', 3], ['l', [1.5, 'x', null]]])), readFileSync(join(dir, 'checkpoint_legacy.pth')), readFileSync(join(dir, 'parameters.pth'))];
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  let refused = 0, parsed = 0;
  for (const file of files) {
    const step = Math.max(1, Math.floor(file.length / 400));
    for (let n = 0; n < file.length; n += step) {
      assert.throws(() => parsePth(file.subarray(0, n), 'cut.pth'), (e: unknown) => e instanceof TensorFileError && e.message.startsWith('cut.pth: '), `cut at ${n}`);
    }
    for (let i = 0; i < 600; i++) {
      const b = new Uint8Array(file);
      const at = Math.floor(rand() * b.length);
      b[at] ^= 1 + Math.floor(rand() * 255);
      try {
        parsePth(b, 'flip.pth');
        parsed++;
      } catch (e) {
        assert.ok(e instanceof TensorFileError, `flip at ${at}: ${e instanceof Error ? e.stack : String(e)}`);
        refused++;
      }
    }
  }
  assert.ok(refused > 1000, `most corruptions are refused (${refused} refused, ${parsed} parsed)`);
});

// Tests for src/io/safetensors.ts and the float16/bfloat16 conversions in src/io/tensor-bytes.ts: round trips of
// every dtype, exact half conversions (checked exhaustively against torch), zero-copy and the alignment copy,
// every validation error on a crafted file, atomic writes, and interop with files written and read by Python.
// Python (/usr/bin/python3 with numpy and torch) is required: if it is missing these tests fail, they do not skip.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.js';
import { fromArray, zeros } from '../../src/tensor/creation.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { looksLikeSafetensors, parseSafetensors, readSafetensors, readSafetensorsSync, serializeSafetensors, writeSafetensorsSync } from '../../src/io/safetensors.js';
import { readCheckpointFile } from '../../src/models/checkpoint.js';
import { TensorFileError, bytesOf, f16BitsToF32Bits, f32BitsToBf16Bits, f32BitsToF16Bits } from '../../src/io/tensor-bytes.js';

const hex = (t: Tensor) => Buffer.from(bytesOf(t.contiguousData())).toString('hex');

function assertSame(a: Tensor | undefined, b: Tensor, what: string): void {
  assert.ok(a instanceof Tensor, `${what}: missing`);
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  assert.equal(hex(a), hex(b), `${what}: bytes`);
}

/** One tensor of every dtype, plus 0-d, empty and non-contiguous ones. Names include ones JS objects reorder. */
function sample(): Map<string, Tensor> {
  const f = new Float32Array([0, -0, 1.5, -2, Infinity, -Infinity, NaN, 1e-45, 3.4e38, 0.1]);
  return new Map<string, Tensor>([
    ['f32', fromArray(f, [2, 5])],
    ['f64', fromArray(new Float64Array([Math.PI, -0, NaN, 5e-324]), [4])],
    ['i64', fromArray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n]), [3])],
    ['i32', fromArray(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [1, 2])],
    ['u8', fromArray(new Uint8Array([0, 127, 255]), [3])],
    ['bool', fromArray([true, false, true])],
    ['10', new Tensor(new Float32Array([7]), [])],
    ['2', zeros([0, 3])],
    ['empty_i64', zeros([2, 0], { dtype: 'int64' })],
    ['transposed', fromArray([[1, 2, 3], [4, 5, 6]]).transpose(0, 1)],
  ]);
}

/** A safetensors file from a header (object, raw JSON text or raw bytes) and a data section. */
function craft(header: object | string | Uint8Array, data: Uint8Array = new Uint8Array(0), len?: bigint): Uint8Array {
  const h = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** `o` with an own enumerable '__proto__' key (an object literal's `__proto__:` would set the prototype instead). */
function withProtoKey<T extends object>(o: T, value: unknown): T {
  return Object.defineProperty(o, '__proto__', { value, enumerable: true, writable: true, configurable: true });
}

const ent = (dtype: unknown, shape: unknown, offs: unknown) => ({ dtype, shape, data_offsets: offs });

function rejects(buf: Uint8Array, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    parseSafetensors(buf, 'bad.safetensors');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TensorFileError, `expected a TensorFileError but got ${String(err)}`);
  assert.match(err.message, /^bad\.safetensors: /);
  for (const p of patterns) assert.match(err.message, p);
}

function python(cmd: string, dir: string): string {
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'io', 'interop.py'), cmd, dir], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which these tests need: ${r.error?.message}`);
  assert.equal(r.status, 0, `interop.py ${cmd} failed:\n${r.stderr}`);
  return r.stdout;
}

test('round trip of every dtype, 0-d, empty and non-contiguous tensors, in the given order', () => {
  const src = sample();
  const buf = serializeSafetensors(src, { format: 'pt', 'ключ': 'значение' });
  const n = Number(new DataView(buf.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0, 'header padded to a multiple of 8');
  const text = Buffer.from(buf.subarray(8, 8 + n)).toString('utf8');
  assert.match(text, /^\{"__metadata__":\{"format":"pt",.*\} *$/);
  const { tensors, metadata, dtypes } = parseSafetensors(buf);
  assert.deepEqual([...tensors.keys()], [...src.keys()]);
  for (const [k, t] of src) assertSame(tensors.get(k), t.contiguous(), k);
  assert.deepEqual(metadata, { format: 'pt', 'ключ': 'значение' });
  assert.deepEqual(Object.fromEntries(dtypes), {
    f32: 'F32', f64: 'F64', i64: 'I64', i32: 'I32', u8: 'U8', bool: 'BOOL', 10: 'F32', 2: 'F32', empty_i64: 'I64', transposed: 'F32',
  });
  assert.deepEqual(parseSafetensors(serializeSafetensors({})).tensors.size, 0);
  assert.equal(serializeSafetensors(new Map()).length, 16, '"{}" padded to 8 bytes');
  assert.equal(parseSafetensors(serializeSafetensors({ a: zeros([1]) })).metadata, null);
});

test('float16 widening: known values and every bit pattern', () => {
  const f32 = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
  const known: [number, number][] = [
    [0x0000, 0], [0x8000, -0], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x3c00, 1],
    [0xc000, -2], [0x7bff, 65504], [0x3555, 0.333251953125], [0x7c00, Infinity], [0xfc00, -Infinity],
  ];
  for (const [h, v] of known) assert.ok(Object.is(f32(f16BitsToF32Bits(h)), v), `0x${h.toString(16)} -> ${v}`);
  for (let h = 0; h < 65536; h++) {
    const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
    const v = f32(f16BitsToF32Bits(h));
    if (e === 31 && m !== 0) {
      assert.ok(Number.isNaN(v), `0x${h.toString(16)} is NaN`);
      continue;
    }
    const want = e === 31 ? s * Infinity : s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    assert.ok(Object.is(v, want), `0x${h.toString(16)}: ${v} vs ${want}`);
    assert.equal(f32BitsToF16Bits(f16BitsToF32Bits(h)), h, `0x${h.toString(16)} survives f16 -> f32 -> f16`);
  }
});

test('float16 and bfloat16 narrowing round to nearest, ties to even', () => {
  const bits = (v: number) => new Uint32Array(new Float32Array([v]).buffer)[0];
  const f16: [number, number][] = [
    [1, 0x3c00], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01],
    [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00], [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [2 ** -25 + 2 ** -40, 0x0001],
    [3 * 2 ** -25, 0x0002], [5 * 2 ** -25, 0x0002], [1e-10, 0x0000], [-1e-10, 0x8000], [-0, 0x8000], [1e-45, 0],
  ];
  for (const [v, h] of f16) assert.equal(f32BitsToF16Bits(bits(v)), h, `${v} -> 0x${h.toString(16)}`);
  const nan = f32BitsToF16Bits(bits(NaN));
  assert.ok((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0, 'NaN stays NaN');
  assert.ok((f32BitsToF16Bits(0x7f800001) & 0x3ff) !== 0, 'a NaN with a low payload stays NaN');
  const bf: [number, number][] = [
    [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -20, 0x3f81], [-2, 0xc000],
    [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-Infinity, 0xff80], [1e-45, 0x0000], [-0, 0x8000],
  ];
  for (const [v, h] of bf) assert.equal(f32BitsToBf16Bits(bits(v)), h, `${v} -> bf16 0x${h.toString(16)}`);
  assert.ok((f32BitsToBf16Bits(0x7f800001) & 0x7f) !== 0, 'bf16 NaN stays NaN');

  const x = fromArray(new Float32Array([1 + 2 ** -11, 65520, 2 ** -25, 1 + 2 ** -8]));
  const ints = fromArray(new BigInt64Array([5n]));
  for (const dtype of ['F16', 'BF16'] as const) {
    const r = parseSafetensors(serializeSafetensors({ x, ints }, undefined, { dtype }));
    assert.equal(r.dtypes.get('x'), dtype);
    assert.equal(r.dtypes.get('ints'), 'I64', 'non-float32 tensors keep their dtype');
    const want = dtype === 'F16' ? [1, Infinity, 0, 1 + 2 ** -8] : [1, 65536, 2 ** -25, 1]; // ties go to even
    assert.deepEqual(r.tensors.get('x')!.toArray(), want);
  }
});

test('tensors are zero-copy views when aligned, copies when not', () => {
  const src = sample();
  const buf = serializeSafetensors(src);
  const { tensors } = parseSafetensors(buf);
  for (const k of ['f32', 'f64', 'i64', 'i32', 'u8', 'bool']) assert.equal(tensors.get(k)!.data.buffer, buf.buffer, `${k} is a view`);
  const t = tensors.get('f32')!;
  const at = t.data.byteOffset;
  new DataView(buf.buffer).setFloat32(at, 42, true);
  assert.equal(t.toArray()[0], 42, 'the view sees writes to the buffer');

  const shifted = new Uint8Array(buf.length + 1);
  shifted.set(buf, 1);
  const copied = parseSafetensors(shifted.subarray(1)).tensors;
  for (const k of ['f32', 'f64', 'i64', 'i32']) {
    assert.notEqual(copied.get(k)!.data.buffer, shifted.buffer, `${k} at an odd address is copied`);
    assertSame(copied.get(k), tensors.get(k)!, k);
  }
  assert.equal(copied.get('u8')!.data.buffer, shifted.buffer, 'bytes need no alignment');

  // misaligned inside the file: a 3-byte U8 tensor puts the F32 at data offset 3
  const data = new Uint8Array([1, 2, 3, 0, 0, 0, 0]);
  new DataView(data.buffer).setFloat32(3, -1.25, true);
  const r = parseSafetensors(craft({ b: ent('U8', [3], [0, 3]), f: ent('F32', [1], [3, 7]) }, data));
  assert.deepEqual(r.tensors.get('f')!.toArray(), [-1.25]);
  assert.deepEqual(r.tensors.get('b')!.toArray(), [1, 2, 3]);
});

test('a Python-written file of every dtype reads equal; every F16/BF16 pattern matches torch', () => {
  const dir = tempDir('st-py-');
  python('st-write', dir);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const r = readSafetensorsSync(join(dir, 'py.safetensors'));
  assert.deepEqual(r.metadata, manifest.metadata);
  assert.deepEqual([...r.tensors.keys()], Object.keys(manifest.tensors));
  for (const [k, m] of Object.entries(manifest.tensors) as [string, { disk: string; shape: number[]; hex: string }][]) {
    assert.equal(r.dtypes.get(k), m.disk, k);
    assert.deepEqual([...r.tensors.get(k)!.shape], m.shape, k);
    assert.equal(hex(r.tensors.get(k)!), m.hex, `${k} (${m.disk}) bytes`);
  }
  const all = readSafetensorsSync(join(dir, 'all16.safetensors')).tensors;
  for (const [ours, ref] of [['f16', 'f16_as_f32'], ['bf16', 'bf16_as_f32']]) {
    const a = new Uint32Array(all.get(ours)!.data.buffer.slice(0)), b = new Uint32Array((all.get(ref)!.contiguousData() as Float32Array).slice().buffer);
    for (let i = 0; i < 65536; i++) assert.equal(a[i], b[i], `${ours} pattern #${i}: 0x${a[i].toString(16)} vs torch 0x${b[i].toString(16)}`);
  }
});

test('files we write (F32, F16, BF16) read back in Python, bit-exact against numpy/torch rounding', () => {
  const dir = tempDir('st-ts-');
  const vals = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -25, 3 * 2 ** -25, 2 ** -14 - 2 ** -25, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0, NaN, Infinity, -Infinity, 1e-45, 3e38];
  for (let i = 0; i < 500; i++) vals.push((Math.sin(i * 12.9898) * 43758.5453) % 1 * 10 ** ((i % 24) - 12));
  const x = fromArray(new Float32Array(vals), [vals.length]);
  const files: Record<string, unknown> = {};
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    const src = new Map([...sample(), ['x', x]]);
    const meta = dtype === 'F32' ? withProtoKey({ format: 'pt' }, 'x') : undefined;
    writeSafetensorsSync(join(dir, `ours_${dtype}.safetensors`), src, meta, { dtype });
    files[`ours_${dtype}.safetensors`] = {
      metadata: meta ?? null,
      tensors: [...src].map(([name, t]) => ({
        name, from: t.dtype, hex: hex(t), shape: [...t.shape],
        disk: t.dtype === 'float32' ? dtype : { float64: 'F64', int64: 'I64', int32: 'I32', uint8: 'U8', bool: 'BOOL' }[t.dtype as string],
      })),
    };
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ files }));
  assert.match(python('st-check', dir), /^OK 3/);
});

test('__proto__, constructor and friends are ordinary names, in tensors and in metadata', () => {
  const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '__metadata'];
  const src = new Map(names.map((k, i) => [k, fromArray(new Float32Array([i]))]));
  const r = parseSafetensors(serializeSafetensors(src, withProtoKey({ constructor: 'c' }, 'p')));
  assert.deepEqual([...r.tensors.keys()], names);
  names.forEach((k, i) => assert.deepEqual(r.tensors.get(k)!.toArray(), [i], k));
  assert.equal(Object.getPrototypeOf(r.metadata), Object.prototype, 'metadata prototype untouched');
  assert.deepEqual(Object.entries(r.metadata!), [['constructor', 'c'], ['__proto__', 'p']]);
  const raw = parseSafetensors(craft('{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array([9])));
  assert.deepEqual(r.tensors.get('__proto__')!.shape, [1]);
  assert.deepEqual(raw.tensors.get('__proto__')!.toArray(), [9]);
  assert.equal(({} as Record<string, unknown>).dtype, undefined, 'no prototype pollution');
});

test('every malformed header is rejected with a message naming the file, the key and what was expected', () => {
  const f4 = new Uint8Array(4), f8 = new Uint8Array(8);
  rejects(new Uint8Array(4), /at least 8 bytes/);
  rejects(craft('{}', undefined, 200_000_000n), /header length below 100000000 bytes.*200000000/);
  rejects(craft('{}', undefined, 2n ** 64n - 1n), /header length below 100000000/);
  rejects(craft('{}', undefined, 100n), /header of 100 bytes.*only 2 more bytes.*truncated/);
  rejects(craft(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
  rejects(craft(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), /start with '\{'/);
  rejects(craft(' {}'), /start with '\{'/);
  rejects(craft('[1]'), /start with '\{'/);
  rejects(craft('{"a": }'), /valid JSON/);
  rejects(craft({ w: 3 }), /"w": expected an object \{dtype, shape, data_offsets\} but received 3/);
  rejects(craft({ w: { shape: [1], data_offsets: [0, 4] } }, f4), /"w": expected dtype to be one of F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL but received undefined/);
  rejects(craft({ w: ent('U16', [1], [0, 2]) }), /"w": expected dtype .* but received "U16"/);
  rejects(craft({ w: ent(5, [1], [0, 2]) }), /"w": expected dtype .* but received 5/);
  rejects(craft({ w: ent('F32', '1', [0, 4]) }, f4), /"w": expected shape to be an array of non-negative integers but received "1"/);
  rejects(craft({ w: ent('F32', [-1], [0, 4]) }, f4), /"w": expected shape .* but received \[-1\]/);
  rejects(craft({ w: ent('F32', [1.5], [0, 4]) }, f4), /"w": expected shape .*\[1\.5\]/);
  rejects(craft({ w: ent('F32', [2 ** 60], [0, 4]) }, f4), /"w": expected shape/);
  rejects(craft({ w: { dtype: 'F32', shape: [1] } }, f4), /"w": expected data_offsets to be \[begin, end\].*undefined/);
  rejects(craft({ w: ent('F32', [1], [0]) }, f4), /"w": expected data_offsets .* \[0\]/);
  rejects(craft({ w: ent('F32', [1], ['0', 4]) }, f4), /"w": expected data_offsets/);
  rejects(craft({ w: ent('F32', [1], [4, 0]) }, f4), /"w": expected data_offsets .*0 <= begin <= end but received \[4,0\]/);
  rejects(craft({ w: ent('F32', [1], [-4, 0]) }, f4), /"w": expected data_offsets/);
  rejects(craft({ w: ent('F32', [2], [0, 4]) }, f4), /"w": expected data_offsets to span 8 bytes \(shape \[2\] of F32, 4 bytes each\) but \[0, 4\] spans 4/);
  rejects(craft({ w: ent('F32', [2 ** 52, 2 ** 52], [0, 4]) }, f4), /"w": expected data_offsets to span 81129638414606681695789005144064 bytes/);
  rejects(craft({ w: ent('F32', [1], [0, 4]) }), /"w": expected data_offsets inside the 0-byte data section .*truncated/);
  rejects(craft({ a: ent('F32', [2], [0, 8]), b: ent('F32', [1], [4, 8]) }, f8), /"b": expected non-overlapping data but bytes \[4, 8\] overlap "a"/);
  rejects(craft({ a: ent('F32', [1], [4, 8]) }, f8), /"a": expected tensors packed without gaps but bytes \[0, 4\)/);
  rejects(craft({ a: ent('F32', [1], [0, 4]) }, f8), /cover the whole data section but its last 4 of 8 bytes/);
  rejects(craft('{}', f4), /last 4 of 4 bytes/);
  rejects(craft('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /"w": expected unique keys but "w" appears twice/);
  rejects(craft('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\\u0077":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /"w" appears twice/);
  rejects(craft('{"w":{"dtype":"U16","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)), /"w": expected unique keys but "dtype" appears twice/);
  rejects(craft('{"__metadata__":{"a":"1","a":"2"}}'), /"__metadata__": expected unique keys but "a" appears twice/);
  rejects(craft({ w: { ...ent('U8', [1], [0, 1]), extra: 1 } }, new Uint8Array(1)), /"w": expected only the fields dtype, shape, data_offsets but found "extra"/);
  assert.equal(parseSafetensors(craft({ __metadata__: null })).metadata, null, 'null metadata is no metadata, as in Rust');
  rejects(craft({ __metadata__: 'x' }), /"__metadata__": expected an object mapping strings to strings but received "x"/);
  rejects(craft({ __metadata__: { a: 1 } }), /"__metadata__": expected a string value for "a" but received 1 of type number/);
  rejects(craft({ b: ent('BOOL', [2], [0, 2]) }, new Uint8Array([1, 2])), /"b": expected BOOL bytes to be 0 or 1 but element 1 is 2/);
  const deep = 100_000;
  rejects(craft(`{"w":${'['.repeat(deep)}${']'.repeat(deep)}}`), /"w": expected an object \{dtype, shape, data_offsets\} but received \[\.\.\.\]/);
  assert.throws(() => parseSafetensors('nope' as never), /Expected a Uint8Array/);
});

test('the writer rejects what it cannot write', () => {
  assert.throws(() => serializeSafetensors({ __metadata__: zeros([1]) }), /other than __metadata__/);
  assert.throws(() => serializeSafetensors({ a: [1, 2] as never }), /Expected a Tensor for "a"/);
  assert.throws(() => serializeSafetensors({}, { a: 1 as never }), /Expected a string for metadata\["a"\]/);
  assert.throws(() => serializeSafetensors({}, undefined, { dtype: 'F64' as never }), /Expected F32, F16 or BF16/);
});

test('file reads name the file; writes are atomic and leave no temp files', async () => {
  const dir = tempDir('st-io-');
  const path = join(dir, 'w.safetensors');
  const src = sample();
  writeSafetensorsSync(path, src, { a: 'b' });
  for (const r of [readSafetensorsSync(path), await readSafetensors(path)]) {
    for (const [k, t] of src) assertSame(r.tensors.get(k), t.contiguous(), k);
    assert.deepEqual(r.metadata, { a: 'b' });
  }
  assert.deepEqual(readdirSync(dir), ['w.safetensors']);

  writeFileSync(path, 'old');
  assert.throws(() => writeSafetensorsSync(path, { bad: 3 as never }), /Expected a Tensor/);
  assert.throws(() => writeSafetensorsSync(join(dir, 'no', 'such', 'dir.safetensors'), src), /cannot write .*dir\.safetensors/);
  assert.equal(readFileSync(path, 'utf8'), 'old', 'a failed write leaves the old file alone');
  assert.deepEqual(readdirSync(dir), ['w.safetensors'], 'and no temp file behind');

  assert.throws(() => readSafetensorsSync(path), (e: Error) => e instanceof TensorFileError && e.message.startsWith(`${path}: `) && /header length/.test(e.message));
  await assert.rejects(readSafetensors(path), (e: Error) => e.message.startsWith(`${path}: `));
  assert.throws(() => readSafetensorsSync(join(dir, 'missing.safetensors')), /cannot read safetensors file .*missing\.safetensors/);
  await assert.rejects(readSafetensors(join(dir, 'missing.safetensors')), /cannot read safetensors file .*missing\.safetensors/);
});

test('a safetensors file whose header length begins 0x80 (a pickle PROTO) or "PK" (zip) is still read as safetensors', () => {
  const dir = tempDir('st-sniff-');
  const w = fromArray([1, 2, 3], [3]);
  for (const target of [0x80, 0x4b50]) {
    // grow a metadata string until the (8-aligned) header is exactly `target` bytes long
    let pad = 0, buf: Uint8Array;
    for (;;) {
      buf = serializeSafetensors({ w }, { p: 'x'.repeat(pad) });
      const len = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
      if (len === target) break;
      assert.ok(len < target, `header length ${len} overshot ${target}`);
      pad += Math.max(1, target - len - 7);
    }
    assert.ok(buf[0] === 0x80 || (buf[0] === 0x50 && buf[1] === 0x4b), 'the file starts like a pickle or a zip');
    assert.ok(looksLikeSafetensors(buf));
    const file = join(dir, `w-${target}.safetensors`);
    writeFileSync(file, buf);
    const ck = readCheckpointFile(file);
    assert.equal(ck.format, 'safetensors');
    assert.deepEqual(ck.stateDict.get('w')!.toArray(), [1, 2, 3]);
  }
  // torch.save's two containers are never taken for safetensors
  const legacy = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]);
  const zip = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00]);
  assert.ok(!looksLikeSafetensors(legacy) && !looksLikeSafetensors(zip));
});

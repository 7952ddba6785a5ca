// Tests for src/io/npy.ts: round trips of every dtype, byte-identical output to np.save, numpy interop in both
// directions (big-endian, float16, int8/int16, versions 2.0 and 3.0 included), and every validation error on a
// crafted file. Python (/usr/bin/python3 with numpy) is required: if it is missing these tests fail, not skip.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.js';
import { fromArray, zeros } from '../../src/tensor/creation.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { parseNpy, readNpySync, serializeNpy, writeNpySync } from '../../src/io/npy.js';
import { TensorFileError, bytesOf } from '../../src/io/tensor-bytes.js';

const hex = (t: Tensor) => Buffer.from(bytesOf(t.contiguousData())).toString('hex');

function assertSame(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  assert.equal(hex(a), hex(b), `${what}: bytes`);
}

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['f32', fromArray(new Float32Array([0, -0, 1.5, -2, Infinity, -Infinity, NaN, 1e-45, 3.4e38, 0.1, 7, 8]), [2, 3, 2])],
    ['f64', fromArray(new Float64Array([Math.PI, -0, NaN, 5e-324]), [4])],
    ['i64', fromArray(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 2n ** 53n + 1n]), [2, 2])],
    ['i32', fromArray(new Int32Array([-(2 ** 31), 2 ** 31 - 1]), [1, 2])],
    ['u8', fromArray(new Uint8Array([0, 127, 255]), [3])],
    ['bool', fromArray([[true, false, true]])],
    ['scalar', new Tensor(new Float32Array([7]), [])],
    ['empty', zeros([0, 3])],
    ['empty_i64', zeros([2, 0, 5], { dtype: 'int64' })],
    ['transposed', fromArray([[1, 2, 3], [4, 5, 6]]).transpose(0, 1)],
    ['wide', zeros([1234567890123, 0])], // numpy's growth padding depends on the digits of shape[0]
  ]);
}

/** A .npy file from a header text (padded to 64 like numpy unless `raw`) and data bytes. */
function craft(header: string, data: Uint8Array = new Uint8Array(0), o: { version?: number; raw?: boolean } = {}): Uint8Array {
  const v = o.version ?? 1;
  const prefix = v === 1 ? 10 : 12;
  let h = header;
  if (!o.raw) h += ' '.repeat(63 - ((prefix + h.length) % 64)) + '\n';
  const hb = new TextEncoder().encode(h);
  const out = new Uint8Array(prefix + hb.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, v, 0]);
  const dv = new DataView(out.buffer);
  if (v === 1) dv.setUint16(8, hb.length, true);
  else dv.setUint32(8, hb.length, true);
  out.set(hb, prefix);
  out.set(data, prefix + hb.length);
  return out;
}

const dict = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

function rejects(buf: Uint8Array, ...patterns: RegExp[]): void {
  let err: unknown;
  try {
    parseNpy(buf, 'bad.npy');
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof TensorFileError, `expected a TensorFileError but got ${String(err)}`);
  assert.match(err.message, /^bad\.npy: /);
  for (const p of patterns) assert.match(err.message, p);
}

function python(cmd: string, dir: string): string {
  const r = spawnSync('/usr/bin/python3', [join(ROOT, 'tests', 'io', 'interop.py'), cmd, dir], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot run /usr/bin/python3, which these tests need: ${r.error?.message}`);
  assert.equal(r.status, 0, `interop.py ${cmd} failed:\n${r.stderr}`);
  return r.stdout;
}

test('round trip of every dtype, 0-d, empty and non-contiguous tensors; header as numpy writes it', () => {
  for (const [k, t] of sample()) {
    const buf = serializeNpy(t);
    const hlen = new DataView(buf.buffer).getUint16(8, true);
    assert.equal(buf[6], 1, `${k}: version 1.0`);
    assert.equal((10 + hlen) % 64, 0, `${k}: data starts 64-aligned`);
    assert.equal(buf[10 + hlen - 1], 0x0a, `${k}: header ends with a newline`);
    const back = parseNpy(buf);
    assertSame(back, t.contiguous(), k);
    if (t.numel > 0) assert.equal(back.data.buffer, buf.buffer, `${k}: zero-copy view`);
  }
  const text = (t: Tensor) => {
    const b = serializeNpy(t);
    return Buffer.from(b.subarray(10, 10 + new DataView(b.buffer).getUint16(8, true))).toString('latin1');
  };
  assert.match(text(zeros([2, 3])), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} {58}\n$/); // 20 spare spaces (numpy's growth room) + 38 to reach 128 bytes
  assert.match(text(zeros([5], { dtype: 'uint8' })), /'descr': '\|u1', 'fortran_order': False, 'shape': \(5,\), \}/);
  assert.match(text(new Tensor(new Float64Array([1]), [])), /'shape': \(\), \} +\n$/);
  assert.match(text(zeros([1234567890123, 0])), /'shape': \(1234567890123, 0\), \} +\n$/);
});

test('a misaligned buffer is copied, big-endian and narrow types are converted', () => {
  const buf = serializeNpy(sample().get('f64')!);
  const shifted = new Uint8Array(buf.length + 3);
  shifted.set(buf, 3);
  const t = parseNpy(shifted.subarray(3));
  assert.notEqual(t.data.buffer, shifted.buffer);
  assertSame(t, sample().get('f64')!, 'copied f64');

  const be = new Uint8Array(8);
  new DataView(be.buffer).setFloat32(0, -1.5, false);
  new DataView(be.buffer).setFloat32(4, 1e-40, false);
  assert.deepEqual(parseNpy(craft(dict('>f4', '(2,)'), be)).toArray(), [-1.5, new Float32Array([1e-40])[0]]);
  assert.deepEqual(parseNpy(craft(dict('>i8', '(1,)'), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]))).data, new BigInt64Array([-2n]));
  const f2 = parseNpy(craft(dict('<f2', '(4,)'), new Uint8Array([0x00, 0x3c, 0x01, 0x00, 0x00, 0x7c, 0x00, 0xfe])));
  assert.equal(f2.dtype, 'float32');
  assert.deepEqual(f2.toArray(), [1, 2 ** -24, Infinity, NaN]);
  assert.deepEqual(parseNpy(craft(dict('>i2', '(2,)'), new Uint8Array([0x80, 0x00, 0xff, 0xfe]))).data, new Int32Array([-32768, -2]));
  assert.deepEqual(parseNpy(craft(dict('|i1', '(2,)'), new Uint8Array([0x80, 0x7f]))).data, new Int32Array([-128, 127]));
  assert.deepEqual(parseNpy(craft(dict('<i4', '(1,)'), new Uint8Array([1, 0, 0, 0]), { version: 2 })).toArray(), [1]);
  assert.deepEqual(parseNpy(craft(`{"shape": (1,), "fortran_order": False, "descr": "<u1"}`, new Uint8Array([9]), { version: 3 })).toArray(), [9]);
  assert.deepEqual(parseNpy(craft(`{'descr':'<i8','fortran_order':False,'shape':(1L,)}`, new Uint8Array(8))).shape, [1]);
});

test('files numpy wrote read equal, and files we write load equal (and byte-identical) in numpy', () => {
  const dir = tempDir('npy-py-');
  python('npy-write', dir);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, { file: string; shape: number[]; dtype: string; hex: string }>;
  assert.ok(Object.keys(manifest).length >= 20);
  for (const [k, m] of Object.entries(manifest)) {
    const t = readNpySync(join(dir, m.file));
    assert.equal(t.dtype, m.dtype, k);
    assert.deepEqual([...t.shape], m.shape, k);
    assert.equal(hex(t), m.hex, `${k} bytes`);
  }
  assert.throws(() => readNpySync(join(dir, 'fortran.npy')), /fortran\.npy: "fortran_order": fortran_order True is not supported/);
  assert.throws(() => readNpySync(join(dir, 'object.npy')), /object\.npy: "descr": expected descr .* but received '\|O'/);

  const out = tempDir('npy-ts-');
  const ours: Record<string, unknown> = {};
  for (const [k, t] of sample()) {
    writeNpySync(join(out, `${k}.npy`), t);
    ours[k] = { file: `${k}.npy`, shape: [...t.shape], dtype: t.dtype, hex: hex(t) };
  }
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(ours));
  assert.match(python('npy-check', out), /^OK 11/);
});

test('every malformed file is rejected with a message naming the file and what was expected', () => {
  const f4 = new Uint8Array(4);
  rejects(new Uint8Array(3), /magic string/);
  rejects(new TextEncoder().encode('PK\x03\x04 not npy at all'), /magic string \\x93NUMPY/);
  rejects(craft(dict('<f4', '(1,)'), f4, { version: 4 }), /version 1\.0, 2\.0 or 3\.0 but the file says 4\.0/);
  const v11 = craft(dict('<f4', '(1,)'), f4);
  v11[7] = 1;
  rejects(v11, /says 1\.1/);
  rejects(craft(dict('<f4', '(1,)'), f4).subarray(0, 11), /-byte header but the file has only 1 bytes .*truncated/);
  rejects(craft(dict('<f4', '(1,)'), f4, { version: 2 }).subarray(0, 11), /4-byte header length/);
  const huge = craft('{}', undefined, { version: 2, raw: true });
  new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
  rejects(huge, /at most 1048576 bytes but the file says 4294967295/);
  rejects(craft(`__import__('os').system('true')`), /expected a dict at position 0/);
  rejects(craft(`{'descr': '<f4', 'fortran_order': False}`), /"shape": expected the header to have the key 'shape'/);
  rejects(craft(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}`, f4), /only the keys .* but found 'extra'/);
  rejects(craft(`{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}`, f4), /"descr": expected each header key once/);
  rejects(craft(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}`, f4), /structured dtypes are not supported/);
  rejects(craft(`{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}`, f4), /"fortran_order": expected True or False/);
  rejects(craft(`{'descr': '<f\\x34', 'fortran_order': False, 'shape': (1,)}`, f4), /no escapes/);
  rejects(craft(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x`, f4), /the end of the header/);
  rejects(craft(`{'descr': '<f4`, f4), /"descr": expected a closing quote/);
  rejects(craft(`{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}`, f4), /expected ',' or '\}'/);
  rejects(craft(dict('<f4', '(2, 3)', 'True'), new Uint8Array(24)), /"fortran_order": fortran_order True is not supported/);
  rejects(craft(dict('<c8', '(1,)'), new Uint8Array(8)), /"descr": expected descr to be one of .* but received '<c8'/);
  rejects(craft(dict('|f4', '(1,)'), f4), /byte order .* '\|f4'/);
  rejects(craft(dict('<f4', '(-1,)'), f4), /"shape": expected a non-negative integer size/);
  rejects(craft(dict('<f4', '(1.5,)'), f4), /"shape": expected ',' or '\)'/);
  rejects(craft(dict('<f4', '(1)'), f4), /a 1-tuple is written \(n,\)/);
  rejects(craft(dict('<f4', '[1]'), f4), /"shape": expected a tuple of sizes/);
  rejects(craft(dict('<f4', '(99999999999999999999,)'), f4), /a size below 2\^53/);
  rejects(craft(dict('<f4', '(2, 3)'), new Uint8Array(20)), /expected 24 bytes of data \(shape \[2, 3\] of '<f4'\) but found 20: the file is truncated/);
  rejects(craft(dict('<f4', '(2, 3)'), new Uint8Array(25)), /found 25: the file has trailing bytes/);
  rejects(craft(dict('<f4', '(4294967296, 4294967296, 4294967296)'), f4), /expected 316912650057057350374175801344 bytes/);
  rejects(craft(dict('|b1', '(2,)'), new Uint8Array([0, 3])), /bool bytes to be 0 or 1 but element 1 is 3/);
  assert.throws(() => serializeNpy([1] as never), /Expected a Tensor/);
});

test('file reads name the file; writes are atomic and leave no temp files', () => {
  const dir = tempDir('npy-io-');
  const path = join(dir, 'x.npy');
  writeNpySync(path, sample().get('i64')!);
  assertSame(readNpySync(path), sample().get('i64')!, 'i64');
  writeFileSync(path, 'old');
  assert.throws(() => writeNpySync(path, 'nope' as never), /Expected a Tensor/);
  assert.throws(() => writeNpySync(join(dir, 'missing', 'x.npy'), zeros([1])), /cannot write .*missing/);
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['x.npy']);
  assert.throws(() => readNpySync(path), (e: Error) => e instanceof TensorFileError && e.message.startsWith(`${path}: `));
  assert.throws(() => readNpySync(join(dir, 'nope.npy')), /cannot read \.npy file .*nope\.npy/);
});

// Tensor mechanics: creation, views and strides, copies, dtypes, indexing, reductions and broadcasting on values
// small enough to check by hand. (Op parity against PyTorch is in tests/ops/parity.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { arange, fromArray, full, ones, rand, randint, randn, zeros } from '../../src/tensor/creation.js';
import { Generator, manualSeed } from '../../src/tensor/random.js';
import * as F from '../../src/ops/index.js';

test('creation: shapes, dtypes, fills', () => {
  const z = zeros([2, 3]);
  assert.deepEqual([...z.shape], [2, 3]);
  assert.equal(z.dtype, 'float32');
  assert.deepEqual(z.toArray(), [0, 0, 0, 0, 0, 0]);
  assert.deepEqual(ones([2], { dtype: 'int64' }).toArray(), [1, 1]);
  assert.ok(ones([2], { dtype: 'int64' }).data instanceof BigInt64Array);
  assert.deepEqual(full([3], 2.5).toArray(), [2.5, 2.5, 2.5]);
  assert.deepEqual(arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.equal(arange(5).dtype, 'int64');
  assert.deepEqual(arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
  assert.equal(arange(1, 2, 0.25).dtype, 'float32');
  const t = fromArray([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual([...t.shape], [2, 3]);
  assert.deepEqual(t.tolist(), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(fromArray([true, false]).dtype, 'bool');
  assert.throws(() => fromArray([[1, 2], [3]]), /ragged/);
  assert.throws(() => fromArray([1, 2, 3], [2, 2]), /cannot fill shape/);
  assert.throws(() => zeros([2, -1]), /non-negative integer sizes/);
  assert.throws(() => zeros([2], { dtype: 'float16' as never }), /Expected one of float32/);
});

test('fromArray of a matching TypedArray is zero-copy', () => {
  const buf = new Float32Array([1, 2, 3, 4]);
  const t = fromArray(buf, [2, 2]);
  buf[3] = 9;
  assert.equal(t.get(1).toArray()[1], 9);
});

test('views share storage; reshape copies only when needed', () => {
  const t = arange(24, undefined, 1, { dtype: 'float32' }).reshape([2, 3, 4]);
  const v = t.view(6, 4);
  assert.equal(v.data, t.data);
  const p = t.permute(2, 0, 1);
  assert.deepEqual([...p.shape], [4, 2, 3]);
  assert.deepEqual([...p.strides], [1, 12, 4]);
  assert.equal(p.isContiguous(), false);
  assert.throws(() => p.view(24), /view size is not compatible/);
  const r = p.reshape(-1);
  assert.deepEqual(r.toArray().slice(0, 6), [0, 4, 8, 12, 16, 20]);
  const c = p.contiguous();
  assert.equal(c.isContiguous(), true);
  assert.deepEqual(c.toArray(), r.toArray());
  assert.deepEqual([...t.flatten(1).shape], [2, 12]);
  assert.deepEqual([...t.flatten().shape], [24]);
  assert.deepEqual([...t.flatten(0, 1).shape], [6, 4]);
  assert.throws(() => t.flatten(2, 1), /cannot come after/);
  assert.throws(() => t.reshape(5, -1), /is invalid for input of size 24/);
  assert.deepEqual([...t.transpose(0, 2).shape], [4, 3, 2]);
  assert.deepEqual([...t.unsqueeze(1).shape], [2, 1, 3, 4]);
  assert.deepEqual([...t.unsqueeze(-1).shape], [2, 3, 4, 1]);
  assert.deepEqual([...zeros([1, 3, 1]).squeeze().shape], [3]);
  assert.deepEqual([...zeros([1, 3, 1]).squeeze(0).shape], [3, 1]);
});

test('indexing the first dim, narrow, item, negative indices', () => {
  const t = arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]);
  assert.deepEqual(t.get(1).toArray(), [4, 5, 6, 7]);
  assert.deepEqual(t.get(-1).toArray(), [8, 9, 10, 11]);
  assert.throws(() => t.get(3), /index 3 is out of bounds for dimension 0 with size 3/);
  assert.deepEqual(t.narrow(1, 1, 2).toArray(), [1, 2, 5, 6, 9, 10]);
  assert.equal(t.get(2).get(3).item(), 11);
  assert.throws(() => t.item(), /cannot be converted to a scalar/);
  // writes through a view reach the base and bump the shared version
  const v0 = t.version;
  t.get(0).fill_(-1);
  assert.deepEqual(t.get(0).toArray(), [-1, -1, -1, -1]);
  assert.ok(t.version > v0);
  t.narrow(1, 0, 1).copy_(fromArray([[7], [7], [7]]));
  assert.deepEqual(t.toArray().filter((_, i) => i % 4 === 0), [7, 7, 7]);
});

test('dtype conversion follows PyTorch (truncation toward zero, bool from nonzero)', () => {
  const t = fromArray([-1.7, -0.2, 0, 0.9, 2.5]);
  assert.deepEqual(t.to('int64').toArray(), [-1, 0, 0, 0, 2]);
  assert.deepEqual(t.to('int32').toArray(), [-1, 0, 0, 0, 2]);
  assert.deepEqual(t.to('bool').toArray(), [1, 1, 0, 1, 1]);
  assert.equal(t.to('float64').dtype, 'float64');
});

test('elementwise ops broadcast and promote', () => {
  const a = fromArray([[1, 2, 3], [4, 5, 6]]);
  const b = fromArray([10, 20, 30]);
  assert.deepEqual(a.add(b).toArray(), [11, 22, 33, 14, 25, 36]);
  assert.deepEqual(a.sub(fromArray([[1], [2]])).toArray(), [0, 1, 2, 2, 3, 4]);
  assert.deepEqual(a.mul(2).toArray(), [2, 4, 6, 8, 10, 12]);
  assert.deepEqual(a.div(b).toArray().map((v) => +v.toFixed(4)), [0.1, 0.1, 0.1, 0.4, 0.25, 0.2]);
  assert.throws(() => a.add(fromArray([1, 2])), /cannot be broadcast together/);
  const i = fromArray([1, 2, 3], undefined, { dtype: 'int64' });
  assert.equal(i.add(1).dtype, 'int64');
  assert.equal(i.add(0.5).dtype, 'float32');
  assert.equal(i.div(2).dtype, 'float32');
  assert.deepEqual(i.div(2).toArray(), [0.5, 1, 1.5]);
  assert.equal(i.add(fromArray([1.5, 1, 1])).dtype, 'float32');
  // comparisons give bool
  const c = a.gt(3);
  assert.equal(c.dtype, 'bool');
  assert.deepEqual(c.toArray(), [0, 0, 0, 1, 1, 1]);
  assert.deepEqual(a.eq(fromArray([1, 5, 3])).toArray(), [1, 0, 1, 0, 1, 0]);
  // strided operands
  assert.deepEqual(a.transpose(0, 1).add(fromArray([100, 200])).toArray(), [101, 204, 102, 205, 103, 206]);
  // in-place add through the fast path and the general path
  const d = zeros([2, 3]);
  d.add_(a);
  d.add_(b);
  assert.deepEqual(d.toArray(), [11, 22, 33, 14, 25, 36]);
});

test('reductions: sum, mean, max, argmax (first of ties), topk, softmax', () => {
  const a = fromArray([[1, 5, 5], [7, 2, 0]]);
  assert.equal(a.sum().item(), 20);
  assert.deepEqual(a.sum(0).toArray(), [8, 7, 5]);
  assert.deepEqual([...a.sum(1, true).shape], [2, 1]);
  assert.deepEqual(a.mean(1).toArray().map((v) => +v.toFixed(5)), [3.66667, 3]);
  assert.deepEqual(a.max(1).toArray(), [5, 7]);
  const am = a.argmax(1);
  assert.equal(am.dtype, 'int64');
  assert.deepEqual(am.toArray(), [1, 0]);
  assert.equal(a.argmax().item(), 3);
  const { values, indices } = fromArray([3, 1, 4, 1, 5, 9, 2, 6]).topk(3);
  assert.deepEqual(values.toArray(), [9, 6, 5]);
  assert.deepEqual(indices.toArray(), [5, 7, 4]);
  assert.deepEqual(fromArray([1, 2, 2, 0]).topk(2).indices.toArray(), [1, 2]);
  assert.deepEqual(fromArray([3, 1, 2]).topk(2, -1, false).values.toArray(), [1, 2]);
  assert.throws(() => fromArray([1, 2]).topk(3), /out of range/);
  const s = fromArray([[1, 2, 3], [1000, 1000, 1000]]).softmax(1);
  const r = s.toArray();
  assert.ok(Math.abs(r[0] - 0.09003057) < 1e-7 && Math.abs(r[2] - 0.66524096) < 1e-7);
  assert.ok(r.slice(3).every((v) => Math.abs(v - 1 / 3) < 1e-7), 'softmax is shift-invariant (no overflow)');
  const ls = fromArray([[1, 2, 3]]).logSoftmax(-1).toArray();
  assert.ok(Math.abs(ls[2] - -0.40760596) < 1e-6);
  assert.throws(() => a.sum(2), /Dimension out of range/);
  assert.throws(() => arange(3).mean(), /floating point/);
});

test('seeded generators are reproducible and independent', () => {
  const a = randn([1000], { generator: new Generator(42) }).toArray();
  const b = randn([1000], { generator: new Generator(42) }).toArray();
  const c = randn([1000], { generator: new Generator(43) }).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const m = a.reduce((s, v) => s + v, 0) / a.length;
  const sd = Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
  assert.ok(Math.abs(m) < 0.1 && Math.abs(sd - 1) < 0.1, `normal moments ${m} ${sd}`);
  const u = rand([1000], { generator: new Generator(1) }).toArray();
  assert.ok(u.every((v) => v >= 0 && v < 1));
  manualSeed(7);
  const d = randn([5]).toArray();
  manualSeed(7);
  assert.deepEqual(randn([5]).toArray(), d);
  const g = new Generator(3);
  g.normal();
  const st = g.getState();
  const x = [g.normal(), g.uniform()];
  g.setState(st);
  assert.deepEqual([g.normal(), g.uniform()], x);
  const ri = randint(0, 10, [100], { generator: new Generator(5) }).toArray();
  assert.ok(ri.every((v) => Number.isInteger(v) && v >= 0 && v < 10));
});

test('functional ops validate their arguments with messages that name them', () => {
  const x = zeros([1, 3, 8, 8]);
  assert.throws(() => F.conv2d(x, zeros([4, 2, 3, 3])), /Given groups=1, weight of size \[4, 2, 3, 3\], expected input\[1, 3, 8, 8\] to have 2 channels, but got 3 channels instead/);
  assert.throws(() => F.conv2d(x, zeros([4, 3, 9, 9])), /Kernel size can't be greater than actual input size/);
  assert.throws(() => F.conv2d(x, zeros([4, 3, 3, 3]), null, { stride: 0 }), /Expected an integer >= 1 .*for stride/);
  assert.throws(() => F.conv2d(x, zeros([4, 3, 3, 3]), zeros([3])), /bias of shape \[4\]/);
  assert.throws(() => F.conv2d(zeros([3, 8]) as Tensor, zeros([4, 3, 3, 3])), /Expected a 3 or 4-D tensor for conv2d input/);
  assert.throws(() => F.maxPool2d(x, { kernelSize: 2, padding: 2 }), /pad should be at most half of effective kernel size/);
  assert.throws(() => F.maxPool2d(zeros([1, 1, 2, 2]), { kernelSize: 3 }), /Output size is too small/);
  assert.throws(() => F.batchNorm(zeros([1, 3, 1, 1]), zeros([3]), ones([3]), null, null, { training: true }), /Expected more than 1 value per channel when training/);
  assert.throws(() => F.linear(zeros([2, 5]), zeros([4, 6])), /mat1 and mat2 shapes cannot be multiplied \(2x5 and 6x4\)/);
  assert.throws(() => F.adaptiveAvgPool2d(x, [0, 1]), /output_size/);
  // unbatched conv input (C,H,W) works like PyTorch
  assert.deepEqual([...F.conv2d(zeros([3, 8, 8]), zeros([4, 3, 3, 3])).shape], [4, 6, 6]);
});

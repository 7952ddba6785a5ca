// The losses against torch.nn.functional (scripts/fixtures/make_hf.py writes losses.safetensors): mse_loss,
// cross_entropy with ignore_index -100 and extreme logits, binary_cross_entropy_with_logits at |x| up to 1000; and
// their argument errors. The ops run in double on the CPU side (no backend call), so one run covers every backend.
// Tolerance: 2 float32 ulps of the result (both sides round a double-or-better sum once; torch sums in float32
// with a different order, which the small sizes here keep within a few ulps).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readSafetensorsSync } from '../../src/io/safetensors.js';
import { fromArray, randn } from '../../src/tensor/creation.js';
import { binaryCrossEntropyWithLogits, crossEntropy, mseLoss } from '../../src/ops/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { fixture } from '../helpers.js';

const OPS: Record<string, (x: Tensor, t: Tensor) => Tensor> = {
  mse: mseLoss, mse_long: mseLoss, ce: crossEntropy, ce_big: crossEntropy, ce_1d: crossEntropy,
  bce: binaryCrossEntropyWithLogits, bce_extreme: binaryCrossEntropyWithLogits,
};

test('losses match torch.nn.functional', (t) => {
  const f = readSafetensorsSync(fixture('hf', 'losses.safetensors'));
  const cases = JSON.parse(f.metadata!.cases) as string[];
  assert.deepEqual(cases.sort(), Object.keys(OPS).sort());
  for (const name of cases) {
    const get = (role: string) => {
      const v = f.tensors.get(`${name}.${role}`);
      assert.ok(v, `losses.safetensors has no ${name}.${role}`);
      return v;
    };
    const ours = OPS[name](get('input'), get('target'));
    const ref = get('loss');
    assert.deepEqual([...ours.shape], [], `${name}: a 0-d result`);
    assert.equal(ours.dtype, 'float32');
    const tol = 2 * 2 ** -23 * Math.abs(ref.item()) + 1e-30;
    assert.ok(Math.abs(ours.item() - ref.item()) <= tol, `${name}: ${ours.item()} vs ${ref.item()} (tol ${tol})`);
    t.diagnostic(`${name}: ours ${ours.item()}, torch ${ref.item()}`);
  }
});

test('loss edge cases: all targets ignored gives NaN, float64 stays float64', () => {
  assert.ok(Number.isNaN(crossEntropy(randn([2, 3]), fromArray([-100n, -100n], [2], { dtype: 'int64' })).item()));
  const x = fromArray([0.5, -1], [2], { dtype: 'float64' });
  const r = mseLoss(x, fromArray([0, 0], [2], { dtype: 'float64' }));
  assert.equal(r.dtype, 'float64');
  assert.equal(r.item(), (0.25 + 1) / 2);
  assert.equal(binaryCrossEntropyWithLogits(fromArray([1000]), fromArray([1])).item(), 0);
});

test('loss argument errors', () => {
  const x = randn([2, 3]);
  const i64 = (v: number[]) => fromArray(v.map(BigInt), [v.length], { dtype: 'int64' });
  assert.throws(() => mseLoss(x, randn([3, 2])), { message: "Expected a target of the input's shape [2, 3] for mse_loss but received a float32 tensor of shape [3, 2]" });
  assert.throws(() => mseLoss(i64([1, 2]), i64([1, 2])), /Expected a floating point tensor for mse_loss input/);
  assert.throws(() => crossEntropy(x, i64([0, 3])), { name: 'RangeError', message: 'Target 3 is out of bounds.' });
  assert.throws(() => crossEntropy(x, i64([0, -1])), { message: 'Target -1 is out of bounds.' });
  assert.throws(() => crossEntropy(x, fromArray([0, 1], [2], { dtype: 'int32' })), /Expected an int64 tensor of class indices for cross_entropy target but received a int32 tensor of shape \[2\]/);
  assert.throws(() => crossEntropy(x, i64([0, 1, 2])), /Expected a target of shape \[2\] for cross_entropy input of shape \[2, 3\]/);
  assert.throws(() => crossEntropy(randn([2, 3, 4]), i64([0, 1])), /Expected \(N, C\) or \(C\) logits for cross_entropy input/);
  assert.throws(() => binaryCrossEntropyWithLogits(x, randn([2, 4])), { message: 'Target size ([2, 4]) must be the same as input size ([2, 3])' });
  assert.throws(() => binaryCrossEntropyWithLogits(x, fromArray([1, 0, 1, 0, 1, 0], [2, 3], { dtype: 'int64' })), /Expected a floating point tensor for binary_cross_entropy_with_logits target/);
  assert.throws(() => mseLoss(x, null as unknown as Tensor), /Expected a Tensor for mse_loss target/);
});

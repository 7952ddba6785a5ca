// Backend.alloc: storage for op outputs. js gives new Float32Array(n); native hands out blocks of a C-side pool
// (csrc/binding/pool.c) as external ArrayBuffers and takes them back from the ArrayBuffer finalizer.
//
// What must hold:
// - a block is never handed out twice while an array over it is alive: arrays are filled with a tag each, some
//   are dropped, garbage is collected (node --expose-gc, in a child process), the blocks come back and are handed
//   out again, and every array still alive must still hold its own tag everywhere;
// - ops fully write what they allocate: the pool is first filled with NaN garbage of the right sizes, then each op
//   must match the js backend exactly;
// - pooled arrays work with every consumer (subarray, set, slice, Buffer over the ArrayBuffer, DataView,
//   structuredClone, tensors, safetensors);
// - RESNET_POOL_MB bounds the pool (requests over it get plain arrays), 0 turns it off, and backendInfo says so;
// - recycling (ops/recycle.ts, used by the torchvision ResNet forward) never touches a tensor the caller can
//   still reach: outputs and features held across later forwards keep their values, a module that keeps its
//   input (a user layer, a Bottleneck subclass) keeps it intact; in training, activations autograd saved are
//   recycled only after backward has read them and gradients once backward is done with them, so every step's loss
//   and gradients equal those of a run that recycles nothing, bit for bit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setImmediate as tick } from 'node:timers/promises';
import { jsBackend } from '../../src/backend/js.js';
import { loadNative, nativePoolStats, nativePoolTrim, type PoolStats } from '../../src/backend/native.js';
import { backendInfo, withBackend } from '../../src/backend/select.js';
import type { Backend } from '../../src/backend/backend.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { backward, noGrad } from '../../src/tensor/autograd.js';
import { parseSafetensors, serializeSafetensors } from '../../src/io/safetensors.js';
import * as F from '../../src/ops/index.js';
import { clearRecycled, outputBuffer, recycle, recycledBytes, setRecycleLimit } from '../../src/ops/recycle.js';
import { Module } from '../../src/nn/module.js';
import { Bottleneck, ResNet, resnet18, resnet50 } from '../../src/models/resnet.js';
import { randn } from '../../src/tensor/creation.js';
import { Generator } from '../../src/tensor/random.js';
import { backends, randArray } from '../helpers.js';

const nativeSkip = backends().find((b) => b.name === 'native')!.skip;
const SELF = fileURLToPath(import.meta.url);
const CHILD = process.env.RESNET_ALLOC_TEST_CHILD;

/** Smallest request the native pool serves (64 KB); below it alloc is new Float32Array. */
const POOL_MIN = 16384;

const rand = randArray;

const gc = (globalThis as { gc?: () => void }).gc;

/** Collect garbage and let Node run the ArrayBuffer finalizers (they run from the event loop, not inside GC). */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await tick();
    await tick();
  }
}

/** Run this file as a child (node --expose-gc) in one of the modes below; returns its JSON report. */
function child(mode: string, env: Record<string, string> = {}): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['--expose-gc', SELF], {
    encoding: 'utf8', env: { ...process.env, RESNET_POOL_MB: '', ...env, RESNET_ALLOC_TEST_CHILD: mode }, maxBuffer: 1 << 24,
  });
  assert.equal(r.status, 0, `child ${mode} failed (status ${r.status}, signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as Record<string, unknown>;
}

// ---- child modes ------------------------------------------------------------------------------------------------

/** Fill, drop, collect, reuse, for many rounds; every live array must keep its tag. */
async function childAliasing(): Promise<Record<string, unknown>> {
  const native = loadNative().backend!;
  const sizes = [POOL_MIN, POOL_MIN + 1, 50_000, 262_144, 600_001, 1 << 20];
  const live: { a: Float32Array; tag: number }[] = [];
  let tag = 1, checked = 0;
  const check = () => {
    for (const { a, tag: t } of live) {
      // every element would be overwritten by a second owner's fill(); a stride that is prime to the sizes,
      // plus both ends, finds it
      for (let i = 0; i < a.length; i += 997) if (a[i] !== t) throw new Error(`array tagged ${t} (length ${a.length}) holds ${a[i]} at ${i}: its block was handed out twice`);
      if (a[a.length - 1] !== t) throw new Error(`array tagged ${t} (length ${a.length}) holds ${a[a.length - 1]} at its end`);
      checked++;
    }
  };
  for (let round = 0; round < 16; round++) {
    const batch: { a: Float32Array; tag: number }[] = [];
    for (let i = 0; i < 24; i++) {
      const a = native.alloc(sizes[(round * 7 + i) % sizes.length]);
      a.fill(tag);
      batch.push({ a, tag: tag++ });
    }
    for (const [i, e] of batch.entries()) if (i % 3 === 0) live.push(e); // keep a third, drop the rest
    batch.length = 0;
    if (live.length > 48) live.splice(0, 16); // and let old survivors die too
    check();
    await collect();
    check();
  }
  return { checked, tags: tag - 1, stats: nativePoolStats() };
}

/** Dirty the pool with NaN blocks of every output size, then run the ops; results must equal js exactly-ish. */
async function childFullWrite(): Promise<Record<string, unknown>> {
  const x = new Tensor(rand(2 * 16 * 48 * 48, 1), [2, 16, 48, 48]);
  const w = new Tensor(rand(32 * 16 * 3 * 3, 2), [32, 16, 3, 3]);
  const b = new Tensor(rand(32, 3), [32]);
  const res = new Tensor(rand(2 * 32 * 48 * 48, 4), [2, 32, 48, 48]);
  const mean = new Tensor(rand(16, 5), [16]), vari = new Tensor(rand(16, 6).map(Math.abs), [16]);
  const lw = new Tensor(rand(300 * 256, 7), [300, 256]), lb = new Tensor(rand(300, 8), [300]);
  const lx = new Tensor(rand(80 * 256, 9), [80, 256]);
  const run = (): Tensor[] => [
    F.conv2d(x, w, b, { padding: 1 }, { residual: res, relu: true }),
    F.conv2d(x, w, null, { stride: 2, padding: 1 }),
    F.batchNorm(x, mean, vari, null, null, { relu: true }),
    F.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1 }),
    F.adaptiveAvgPool2d(x, [24, 24]),
    F.relu(F.sub(x, 0.25)),
    F.add(x, x),
    F.linear(lx, lw, lb),
    F.linear(lx, lw, null),
    F.matmul(lx, lw.transpose(0, 1)),
  ];
  const want = withBackend('js', run).map((t) => t.toArray());
  const sizes = want.map((a) => a.length);
  let dirty = 0;
  for (let round = 0; round < 3; round++) {
    const native = loadNative().backend!;
    for (const n of sizes) for (let k = 0; k < 4; k++) native.alloc(n).fill(NaN), dirty++;
    await collect();
    const before = nativePoolStats()!;
    const got = withBackend('native', run);
    const after = nativePoolStats()!;
    if (after.hits - before.hits < 5) throw new Error(`the ops did not reuse the dirty blocks (hits ${before.hits} -> ${after.hits})`);
    for (const [i, t] of got.entries()) {
      const g = t.toArray(), e = want[i];
      for (let j = 0; j < e.length; j++) {
        if (!(Math.abs(g[j] - e[j]) <= 1e-4 * (1 + Math.abs(e[j])))) throw new Error(`op ${i}: element ${j} is ${g[j]}, js has ${e[j]}`);
      }
    }
  }
  return { dirty, outputs: sizes, stats: nativePoolStats() };
}

/** Requests over RESNET_POOL_MB get plain arrays; the pool never manages more than its limit. */
function allocSome(): PoolStats {
  const native = loadNative().backend!;
  const keep: Float32Array[] = [];
  for (let i = 0; i < 8; i++) {
    const a = native.alloc(100_000); // 400 KB: two fit under 1 MB, the rest are refused
    a.fill(i);
    keep.push(a);
  }
  const s = nativePoolStats()!;
  for (const [i, a] of keep.entries()) if (a.length !== 100_000 || a[99_999] !== i) throw new Error(`array ${i} is wrong`);
  if (s.live + s.idle > s.limit) throw new Error(`the pool manages ${s.live + s.idle} bytes over its limit ${s.limit}`);
  return s;
}

async function childLimit(): Promise<Record<string, unknown>> {
  const s = allocSome(); // its arrays die with its frame
  await collect();
  const after = nativePoolStats()!;
  nativePoolTrim();
  return { stats: s, after, trimmed: nativePoolStats(), info: backendInfo().native.alloc };
}

async function childInfo(): Promise<Record<string, unknown>> {
  const native = loadNative().backend!;
  const a = native.alloc(100_000);
  return { length: a.length, info: backendInfo().native.alloc, stats: nativePoolStats() };
}

if (CHILD) {
  const modes: Record<string, () => Promise<Record<string, unknown>>> = { aliasing: childAliasing, fullWrite: childFullWrite, limit: childLimit, info: childInfo };
  const r = await modes[CHILD]();
  console.log(JSON.stringify(r));
} else {
  // ---- tests (parent) -----------------------------------------------------------------------------------------

  test('js alloc is a zeroed Float32Array of exactly n', () => {
    for (const n of [0, 1, 7, POOL_MIN, 100_003]) {
      const a = jsBackend.alloc(n);
      assert.ok(a instanceof Float32Array);
      assert.equal(a.length, n);
      assert.equal(a.byteOffset, 0);
      assert.ok(a.every((v) => v === 0));
    }
  });

  test('native alloc: exact length, own buffer, served by the pool from 64 KB up', { skip: nativeSkip }, () => {
    const native = loadNative().backend as Backend;
    const on = loadNative().info.alloc.startsWith('pool ');
    if (process.env.RESNET_POOL_MB === undefined) assert.ok(on, loadNative().info.alloc);
    for (const n of [0, 1, POOL_MIN - 1, POOL_MIN, POOL_MIN + 1, 100_003, 1 << 20]) {
      const before = nativePoolStats()!;
      const a = native.alloc(n);
      const after = nativePoolStats()!;
      assert.ok(a instanceof Float32Array, `alloc(${n})`);
      assert.equal(a.length, n);
      assert.equal(a.byteOffset, 0);
      assert.equal(a.buffer.byteLength, 4 * n);
      const pooled = after.hits + after.misses - before.hits - before.misses;
      assert.equal(pooled, on && n >= POOL_MIN ? 1 : 0, `alloc(${n}) pooled ${pooled} blocks`);
      if (n > 1) {
        a[0] = 1.5;
        a[n - 1] = -2.5;
        assert.equal(a[0], 1.5);
        assert.equal(a[n - 1], -2.5);
      }
    }
    // the same requests through the ops layer
    const before = nativePoolStats()!;
    withBackend('native', () => F.relu(new Tensor(rand(POOL_MIN * 2, 1), [2, POOL_MIN])));
    const after = nativePoolStats()!;
    assert.equal(after.hits + after.misses - before.hits - before.misses, on ? 1 : 0);
  });

  test('native alloc: pooled arrays work with every consumer', { skip: nativeSkip }, () => {
    const native = loadNative().backend as Backend;
    const n = 70_001;
    const a = native.alloc(n);
    const src = rand(n, 42);
    a.set(src);
    assert.deepEqual(a, src);
    // views share the memory
    const sub = a.subarray(10, 20);
    sub[0] = 123;
    assert.equal(a[10], 123);
    const dv = new DataView(a.buffer, 40, 8);
    dv.setFloat32(0, 7, true);
    assert.equal(a[10], 7);
    const buf = Buffer.from(a.buffer);
    assert.equal(buf.length, 4 * n);
    buf.writeFloatLE(9, 4 * 11);
    assert.equal(a[11], 9);
    assert.equal(Buffer.from(a.buffer, 8, 16).readFloatLE(0), a[2]);
    const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    assert.equal(u8.length, 4 * n);
    // copies do not
    const copies = [a.slice(), Float32Array.from(a), structuredClone(a), new Float32Array(a.buffer.slice(0)), new Float32Array(a)];
    a[0] = -1;
    for (const c of copies) {
      assert.equal(c.length, n);
      assert.notEqual(c[0], -1);
      assert.equal(c[n - 1], a[n - 1]);
    }
    // set() between pooled arrays, overlapping and not
    const b = native.alloc(n);
    b.set(a);
    assert.deepEqual(b, a);
    b.copyWithin(0, 1);
    assert.equal(b[0], a[1]);
    // tensors over pooled storage: views, reshape, serialization
    const t = new Tensor(a, [1, n]);
    assert.equal(t.get(0).narrow(0, 5, 3).toArray()[2], a[7]);
    const file = parseSafetensors(serializeSafetensors({ t }));
    assert.deepEqual(file.tensors.get('t')!.contiguousData(), a);
    assert.equal(t.contiguousData(), a);
  });

  test('native alloc: a block is never handed out twice while an array over it is alive (GC in a child)', { skip: nativeSkip }, () => {
    const r = child('aliasing');
    const s = r.stats as { hits: number; misses: number; live: number; idle: number; limit: number };
    assert.ok((r.checked as number) > 500, `only ${r.checked} arrays checked`);
    assert.ok(s.hits > 100, `the pool reused only ${s.hits} blocks (misses ${s.misses}); reuse is what this test is about`);
    assert.ok(s.live + s.idle <= s.limit);
  });

  test('ops fully write pooled outputs: NaN-dirty blocks give the js results', { skip: nativeSkip }, () => {
    const r = child('fullWrite');
    assert.ok((r.dirty as number) > 0);
  });

  test('RESNET_POOL_MB bounds the pool; requests over it get plain arrays; trim unmaps idle blocks', { skip: nativeSkip }, () => {
    const r = child('limit', { RESNET_POOL_MB: '1' });
    const s = r.stats as { limit: number; live: number; idle: number; refusals: number; misses: number };
    const after = r.after as { live: number; idle: number };
    const trimmed = r.trimmed as { idle: number };
    assert.equal(s.limit, 1 << 20);
    assert.equal(s.misses, 2);
    assert.equal(s.refusals, 6);
    assert.equal(after.live, 0);
    assert.equal(after.idle, 2 * 401_408); // 400 KB rounded up to pages
    assert.equal(trimmed.idle, 0);
    assert.match(r.info as string, /up to 1 MB/);
  });

  test('recycle: only whole, owned, large float32 storage, once; outputBuffer hands it back', () => {
    clearRecycled();
    const big = new Tensor(new Float32Array(POOL_MIN * 2), [2, POOL_MIN]);
    recycle(big);
    recycle(big); // twice is once
    assert.equal(recycledBytes(), big.data.byteLength);
    recycle(new Tensor(new Float32Array(100), [100])); // small: ignored
    recycle(big.get(1)); // a view at an offset: ignored
    const shared = new Float32Array(POOL_MIN * 3);
    recycle(new Tensor(shared.subarray(0, POOL_MIN * 2), [POOL_MIN * 2])); // does not own its buffer: ignored
    recycle(new Tensor(new Float64Array(POOL_MIN), [POOL_MIN])); // not float32: ignored
    assert.equal(recycledBytes(), big.data.byteLength);
    assert.equal(outputBuffer(POOL_MIN * 2), big.data);
    assert.notEqual(outputBuffer(POOL_MIN * 2), big.data);
    assert.equal(recycledBytes(), 0);
    clearRecycled();
  });

  for (const { name, skip } of backends()) {
    test(`ResNet forward recycling keeps every reachable tensor intact (${name})`, { skip }, () => withBackend(name, () => noGrad(() => { // inference: the fused, recycling path
      const cases: [string, () => ResNet, number[]][] = name === 'js'
        ? [['resnet18', () => resnet18({ seed: 1, numClasses: 10 }), [1, 3, 64, 64]]]
        : [['resnet18', () => resnet18({ seed: 1, numClasses: 10 }), [2, 3, 96, 96]], ['resnet50', () => resnet50({ seed: 2, numClasses: 10 }), [2, 3, 64, 64]]];
      for (const [arch, make, shape] of cases) {
        const model = make().eval();
        const x1 = randn(shape, { generator: new Generator(3) }), x2 = randn(shape, { generator: new Generator(4) });
        clearRecycled();
        const y1 = model.forward(x1);
        const snap = y1.toArray();
        assert.ok(recycledBytes() > 0, `${arch}: the eval forward recycled nothing`);
        const f1 = model.features(x1), fsnap = f1.toArray();
        const l1 = model.layer1.forward(model.maxpool.forward(F.relu(F.conv2d(x1, model.conv1.weight, null, model.conv1.convOptions())))), lsnap = l1.toArray();
        for (let i = 0; i < 3; i++) model.forward(i % 2 ? x1 : x2);
        assert.deepEqual(y1.toArray(), snap, `${arch}: a held output changed`);
        assert.deepEqual(f1.toArray(), fsnap, `${arch}: held features changed`);
        assert.deepEqual(l1.toArray(), lsnap, `${arch}: a held layer1 output changed`);
        assert.deepEqual(model.forward(x1).toArray(), snap, `${arch}: the same input gave another output`);

        // a user module that keeps its input, in place of a stage, and a Bottleneck subclass that does the same
        const kept: Tensor[] = [];
        class Keep extends Module {
          constructor(readonly inner: Module) {
            super();
          }
          override forward(x: Tensor): Tensor {
            kept.push(x);
            return this.inner.forward(x) as Tensor;
          }
        }
        const layer2 = model.layer2;
        model.layer2 = new Keep(layer2) as never;
        const out = model.forward(x1);
        assert.deepEqual(out.toArray(), snap, `${arch}: a wrapped stage changed the output`);
        const first = kept.slice(), keptSnap = first.map((t) => t.toArray());
        for (let i = 0; i < 2; i++) model.forward(x2);
        first.forEach((t, i) => assert.deepEqual(t.toArray(), keptSnap[i], `${arch}: the input a user module kept was overwritten`));
        model.layer2 = layer2;
        if (arch === 'resnet50') {
          class KeepingBottleneck extends Bottleneck {
            override forward(x: Tensor): Tensor {
              kept.push(x);
              return super.forward(x);
            }
          }
          const b = model.layer3.at<Bottleneck>(1);
          const sub = Object.assign(Object.create(KeepingBottleneck.prototype), b) as Bottleneck;
          (model.layer3 as unknown as Record<string, Module>)['1'] = sub;
          kept.length = 0;
          model.forward(x1);
          const mine = kept.slice(), ks = mine.map((t) => t.toArray());
          assert.equal(mine.length, 1);
          for (let i = 0; i < 2; i++) model.forward(x2);
          mine.forEach((t, i) => assert.deepEqual(t.toArray(), ks[i], `${arch}: the input a Bottleneck subclass kept was overwritten`));
          (model.layer3 as unknown as Record<string, Module>)['1'] = b;
        }

        // training mode without gradients (batch statistics, nothing saved) recycles as it goes, and held outputs stay
        clearRecycled();
        model.train();
        const t1 = model.forward(x1), tsnap = t1.toArray();
        assert.ok(recycledBytes() > 0, `${arch}: a training-mode forward under noGrad recycled nothing`);
        model.forward(x2);
        assert.deepEqual(t1.toArray(), tsnap, `${arch}: a held training-mode output changed`);
        assert.deepEqual(model.forward(x1).toArray(), tsnap, `${arch}: a training-mode forward changed with recycling`);
        model.eval();
      }
    })));
  }

  for (const { name, skip } of backends()) {
    test(`training steps recycle activations and gradients and match a run that recycles nothing (${name})`, { skip }, () => withBackend(name, () => {
      const cases: [string, () => ResNet, number[]][] = name === 'js'
        ? [['resnet18', () => resnet18({ seed: 5, numClasses: 10 }), [2, 3, 32, 32]]]
        : [['resnet18', () => resnet18({ seed: 5, numClasses: 10 }), [2, 3, 64, 64]], ['resnet50', () => resnet50({ seed: 6, numClasses: 10 }), [2, 3, 64, 64]]];
      for (const [arch, make, shape] of cases) {
        const model = make().train();
        const params = model.parameters();
        const xs = [7, 8, 7].map((seed) => randn(shape, { generator: new Generator(seed) }));
        const target = new Tensor(BigInt64Array.from({ length: shape[0] }, (_, i) => BigInt(i % 10)), [shape[0]], { dtype: 'int64' });
        const step = (x: Tensor) => {
          for (const p of params) p.grad = null;
          const y = model.forward(x);
          const loss = F.crossEntropy(y, target);
          backward(loss);
          return { y, loss: loss.item(), grads: params.map((p) => p.grad!.toArray()) };
        };
        const prev = setRecycleLimit(0); // the reference: nothing is kept for reuse
        clearRecycled();
        const ref = [step(xs[0]), step(xs[1])];
        setRecycleLimit(prev);
        const first = step(xs[0]);
        assert.ok(recycledBytes() > 0, `${arch}: a training step recycled nothing`);
        const ysnap = first.y.toArray();
        const runs = [first, step(xs[1]), step(xs[2])];
        runs.forEach((r, i) => {
          const want = ref[i % 2];
          assert.equal(r.loss, want.loss, `${arch}: step ${i}'s loss differs with recycling`);
          r.grads.forEach((g, k) => assert.deepEqual(g, want.grads[k], `${arch}: step ${i}'s gradient of parameter ${k} differs with recycling`));
        });
        assert.deepEqual(first.y.toArray(), ysnap, `${arch}: an output held across later steps changed`);
        clearRecycled();
      }
    }));
  }

  test('RESNET_POOL_MB=0 turns the pool off and backendInfo says so; a bad value is reported', { skip: nativeSkip }, () => {
    const off = child('info', { RESNET_POOL_MB: '0' });
    assert.equal(off.length, 100_000);
    assert.match(off.info as string, /^Float32Array \(RESNET_POOL_MB=0/);
    assert.equal((off.stats as { misses: number }).misses, 0);
    const bad = child('info', { RESNET_POOL_MB: 'lots' });
    assert.match(bad.info as string, /^pool .*RESNET_POOL_MB='lots' is not an integer/);
    assert.equal(backendInfo().native.alloc, loadNative().info.alloc);
  });
}

// ResNet eval forward: resnet-ts against onnxruntime-node on the same weights, in the same run.
//   npm run build && node dist/bench/ort.bench.js [--arch resnet50] [--batches 1,8] [--threads 2] [--repeats 20] [--gap-ms 50]
// The ONNX model and the weights come from bench/export_onnx.py (Debian's torch.onnx), cached in bench/out/.
// Runs alternate between the two engines so machine noise hits both; the table reports medians and minima.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel } from '../src/models/factory.js';
import { backendInfo, setNumThreads } from '../src/backend/select.js';
import { readSafetensorsSync } from '../src/io/safetensors.js';
import { randn } from '../src/tensor/creation.js';
import { Generator } from '../src/tensor/random.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { setGradEnabled } from '../src/tensor/autograd.js';
import { packageRoot } from '../src/backend/native.js';

const { values: v } = parseArgs({ options: {
  arch: { type: 'string', default: 'resnet50' }, batches: { type: 'string', default: '1,8' },
  threads: { type: 'string', default: '2' }, repeats: { type: 'string', default: '20' }, size: { type: 'string', default: '224' },
  'gap-ms': { type: 'string', default: '50' },
} });
// ORT's intra-op threads keep spinning after a run; a pause before every timed run lets both engines start from an
// idle machine instead of each paying for the other's spinning threads.
const gapMs = Number(v['gap-ms']);
const settle = () => new Promise((r) => setTimeout(r, gapMs));
const arch = v.arch!, threads = Number(v.threads), repeats = Number(v.repeats), S = Number(v.size);
const batches = v.batches!.split(',').map(Number);
const out = join(packageRoot(), 'bench', 'out');
const onnxPath = join(out, `${arch}.onnx`);
if (!existsSync(onnxPath)) execFileSync('/usr/bin/python3', [join(packageRoot(), 'bench', 'export_onnx.py'), arch, out], { stdio: 'inherit' });

let ort: typeof import('onnxruntime-node');
try {
  ort = await import('onnxruntime-node');
} catch (e) {
  console.error(`onnxruntime-node is not installed (${(e as Error).message}); run: ONNXRUNTIME_NODE_INSTALL=skip npm install`);
  process.exit(1);
}

setNumThreads(threads);
const model = createModel({ arch, weights: join(out, `${arch}.safetensors`) }).eval();
const session = await ort.InferenceSession.create(onnxPath, {
  intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});

// both engines must compute the same thing before their speed means anything
const check = readSafetensorsSync(join(out, `${arch}.check.safetensors`)).tensors;
const x0 = check.get('input')!, ref = check.get('logits')!.toArray();
setGradEnabled(false); // inference: no tape, fused eval path
const ours0 = (model.forward(x0) as Tensor).toArray();
const ort0 = Array.from((await session.run({ input: new ort.Tensor('float32', x0.contiguousData() as Float32Array, [...x0.shape]) })).logits.data as Float32Array);
const maxRef = Math.max(...ref.map(Math.abs));
const errOurs = Math.max(...ours0.map((a, i) => Math.abs(a - ref[i])));
const errOrt = Math.max(...ort0.map((a, i) => Math.abs(a - ref[i])));
console.log(`${arch}: max|logits - torch| = ${errOurs.toExponential(2)} (resnet-ts), ${errOrt.toExponential(2)} (ORT); max|torch| ${maxRef.toFixed(3)}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const b = backendInfo();
console.log(`resnet-ts ${b.name}${b.native.isa ? '/' + b.native.isa : ''} ${b.threads} threads vs onnxruntime-node ${ort.env.versions?.common ?? ''} ${threads} intra-op threads; ${S}x${S}, ${repeats} repeats, ${gapMs} ms idle before each run (median / min ms)\n`);
console.log('| batch | resnet-ts ms | ORT ms | resnet-ts img/s | ORT img/s | ratio (ours/ORT) |');
console.log('|---|---|---|---|---|---|');
for (const B of batches) {
  const x = randn([B, 3, S, S], { generator: new Generator(B) });
  const xo = new ort.Tensor('float32', x.contiguousData() as Float32Array, [B, 3, S, S]);
  for (let i = 0; i < 3; i++) {
    model.forward(x);
    await session.run({ input: xo });
  }
  const tOurs: number[] = [], tOrt: number[] = [];
  for (let i = 0; i < repeats; i++) {
    await settle();
    let t = performance.now();
    model.forward(x);
    tOurs.push(performance.now() - t);
    await settle();
    t = performance.now();
    await session.run({ input: xo });
    tOrt.push(performance.now() - t);
  }
  const mo = median(tOurs), mr = median(tOrt);
  console.log(`| ${B} | ${mo.toFixed(1)} / ${Math.min(...tOurs).toFixed(1)} | ${mr.toFixed(1)} / ${Math.min(...tOrt).toFixed(1)} | ${(1000 * B / mo).toFixed(1)} | ${(1000 * B / mr).toFixed(1)} | **${(mr / mo).toFixed(2)}x** |`);
}

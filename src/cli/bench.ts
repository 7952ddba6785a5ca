// resnet bench: eval-mode forward throughput of a model (a builder, a config, or what --weights names) on random input: warm-up, then the median of repeats.

import { loadModel } from '../models/factory.js';
import { backendInfo, setBackend, setNumThreads } from '../backend/select.js';
import { randn } from '../tensor/creation.js';
import { Generator } from '../tensor/random.js';
import { setGradEnabled } from '../tensor/autograd.js';
import { type Command, UsageError, intArg, oneOf, parse } from './args.js';

const usage = `Usage: resnet bench [--arch NAME | --config config.json] [--weights SPEC] [--batch-size N] [--size 224]
                    [--threads T] [--repeats R] [--warmup W] [--backend js|native] [--json]

Measures eval-mode forward throughput (images/s, ms/batch: median and min of the repeats). --weights takes what
resnet run --weights takes (a file, an HF folder, hf:org/name, a URL or a registry name).`;

export interface BenchResult {
  arch: string; batchSize: number; size: number; threads: number; backend: string;
  repeats: number; medianMs: number; minMs: number; imagesPerSec: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function run(argv: string[]): Promise<number> {
  const { values: v } = parse(argv, {
    arch: { type: 'string' }, config: { type: 'string' }, weights: { type: 'string' }, 'batch-size': { type: 'string' }, size: { type: 'string' }, threads: { type: 'string' },
    repeats: { type: 'string' }, warmup: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' },
  }, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (v.arch && v.config) throw new UsageError('give one of --arch or --config, not both', usage);
  if (!v.arch && !v.config && !v.weights) throw new UsageError('--arch is required (or --config, or --weights naming an HF folder, a repo or a full registry name)', usage);
  const backend = oneOf(v.backend, '--backend', ['js', 'native'] as const, usage);
  if (backend) setBackend(backend);
  const threads = intArg(v.threads, '--threads', usage);
  if (threads) setNumThreads(threads);
  const B = intArg(v['batch-size'], '--batch-size', usage) ?? 1;
  const S = intArg(v.size, '--size', usage, 32) ?? 224;
  const repeats = intArg(v.repeats, '--repeats', usage) ?? 20;
  const warmup = intArg(v.warmup, '--warmup', usage, 0) ?? 3;
  const model = (await loadModel({ arch: v.arch, config: v.config, weights: v.weights, warn: (m) => console.error(`resnet bench: warning: ${m}`) })).eval();
  const name = v.arch ?? v.config ?? v.weights!;
  const x = randn([B, 3, S, S], { generator: new Generator(1) });
  setGradEnabled(false); // inference only: no tape, fused eval path
  for (let i = 0; i < warmup; i++) model.forward(x);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    model.forward(x);
    times.push(performance.now() - t0);
  }
  const med = median(times);
  const info = backendInfo();
  const r: BenchResult = { arch: name, batchSize: B, size: S, threads: info.threads, backend: info.name + (info.native.isa && info.name === 'native' ? `/${info.native.isa}` : ''),
    repeats, medianMs: med, minMs: Math.min(...times), imagesPerSec: (1000 * B) / med };
  if (v.json) console.log(JSON.stringify(r));
  else {
    console.log(`${r.arch} batch ${B} at ${S}x${S}, ${r.backend} backend, ${r.threads} thread(s), ${repeats} repeats after ${warmup} warm-up`);
    console.log(`  ${r.imagesPerSec.toFixed(2)} images/s   ${med.toFixed(2)} ms/batch (median)   ${r.minMs.toFixed(2)} ms (min)`);
  }
  return 0;
}

export const benchCommand: Command = { name: 'bench', summary: 'forward throughput of a model (images/s, ms/batch)', usage, run };

// Per-layer conv2d throughput of the native backend on the ResNet-18 and ResNet-50 convolutions at 224x224
// (torchvision v1.5: stride on the 3x3). Not a test. Every layer runs with its bias + relu epilogue (the last conv
// of a block also adds the residual), weights pre-packed as in inference; time is the median of --reps runs after
// warm-up. GFLOP = 2 * MACs. Peak is PERFORMANCE.md's measured 208 GFLOP/s per core (zmm FMA) times threads.
//
//   node dist/bench/conv.bench.js [--model resnet50|resnet18|all] [--batch 1,8] [--threads 1,2] [--reps 20]
//                                 [--isa avx512|avx2|scalar] [--layers 3] [--only 'l4 3x3']
// (--layers: only the first n shapes; --only: only shapes whose name contains the text)

import { loadNative, setNativeIsa } from '../src/backend/native.js';
import type { Backend, Conv2dParams } from '../src/backend/backend.js';

const PEAK_PER_CORE = 208;

interface Layer {
  name: string;
  C: number; O: number; H: number; K: number; s: number;
  /** How many times the shape occurs in the network. */
  count: number;
  residual?: boolean;
}

function l(name: string, C: number, O: number, H: number, K: number, s: number, count: number, residual = false): Layer {
  return { name, C, O, H, K, s, count, residual };
}

const MODELS: Record<string, Layer[]> = {
  resnet50: [
    l('stem 7x7 s2', 3, 64, 224, 7, 2, 1),
    l('l1 1x1 64->64', 64, 64, 56, 1, 1, 1),
    l('l1 1x1 256->64', 256, 64, 56, 1, 1, 2),
    l('l1 3x3 64', 64, 64, 56, 3, 1, 3),
    l('l1 1x1 64->256', 64, 256, 56, 1, 1, 3, true),
    l('l1 ds 1x1 64->256', 64, 256, 56, 1, 1, 1),
    l('l2 1x1 256->128 @56', 256, 128, 56, 1, 1, 1),
    l('l2 3x3 s2 128', 128, 128, 56, 3, 2, 1),
    l('l2 ds 1x1 s2 256->512', 256, 512, 56, 1, 2, 1),
    l('l2 1x1 512->128', 512, 128, 28, 1, 1, 3),
    l('l2 3x3 128', 128, 128, 28, 3, 1, 3),
    l('l2 1x1 128->512', 128, 512, 28, 1, 1, 4, true),
    l('l3 1x1 512->256 @28', 512, 256, 28, 1, 1, 1),
    l('l3 3x3 s2 256', 256, 256, 28, 3, 2, 1),
    l('l3 ds 1x1 s2 512->1024', 512, 1024, 28, 1, 2, 1),
    l('l3 1x1 1024->256', 1024, 256, 14, 1, 1, 5),
    l('l3 3x3 256', 256, 256, 14, 3, 1, 5),
    l('l3 1x1 256->1024', 256, 1024, 14, 1, 1, 6, true),
    l('l4 1x1 1024->512 @14', 1024, 512, 14, 1, 1, 1),
    l('l4 3x3 s2 512', 512, 512, 14, 3, 2, 1),
    l('l4 ds 1x1 s2 1024->2048', 1024, 2048, 14, 1, 2, 1),
    l('l4 1x1 2048->512', 2048, 512, 7, 1, 1, 2),
    l('l4 3x3 512', 512, 512, 7, 3, 1, 2),
    l('l4 1x1 512->2048', 512, 2048, 7, 1, 1, 3, true),
  ],
  resnet18: [
    l('stem 7x7 s2', 3, 64, 224, 7, 2, 1),
    l('l1 3x3 64', 64, 64, 56, 3, 1, 4, true),
    l('l2 3x3 s2 64->128', 64, 128, 56, 3, 2, 1),
    l('l2 ds 1x1 s2 64->128', 64, 128, 56, 1, 2, 1),
    l('l2 3x3 128', 128, 128, 28, 3, 1, 3, true),
    l('l3 3x3 s2 128->256', 128, 256, 28, 3, 2, 1),
    l('l3 ds 1x1 s2 128->256', 128, 256, 28, 1, 2, 1),
    l('l3 3x3 256', 256, 256, 14, 3, 1, 3, true),
    l('l4 3x3 s2 256->512', 256, 512, 14, 3, 2, 1),
    l('l4 ds 1x1 s2 256->512', 256, 512, 14, 1, 2, 1),
    l('l4 3x3 512', 512, 512, 7, 3, 1, 3, true),
  ],
};

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

function params(L: Layer, N: number): Conv2dParams {
  const pad = (L.K - 1) >> 1;
  const OH = Math.floor((L.H + 2 * pad - L.K) / L.s) + 1;
  return { N, C: L.C, H: L.H, W: L.H, O: L.O, KH: L.K, KW: L.K, OH, OW: OH, strideH: L.s, strideW: L.s,
    padH: pad, padW: pad, dilationH: 1, dilationW: 1, groups: 1 };
}

function random(n: number): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Median milliseconds of one layer. */
function time(be: Backend, L: Layer, N: number, reps: number): number {
  const p = params(L, N);
  const x = random(N * L.C * L.H * L.H), w = random(L.O * L.C * L.K * L.K).map((v) => v * 0.05), b = random(L.O);
  const ny = N * L.O * p.OH * p.OW;
  const y = new Float32Array(ny), res = L.residual ? random(ny) : null;
  const key = { key: w, version: 0 };
  const ep = { bias: b, residual: res, relu: true };
  for (let i = 0; i < 2; i++) be.conv2d(x, w, p, ep, y, key);
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    be.conv2d(x, w, p, ep, y, key);
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function main(): void {
  const nat = loadNative();
  if (!nat.backend) throw new Error(`native backend unavailable: ${nat.info.error}`);
  const be = nat.backend;
  const isa = arg('isa', '');
  if (isa) setNativeIsa(isa);
  const models = arg('model', 'all') === 'all' ? Object.keys(MODELS) : arg('model', 'all').split(',');
  const batches = arg('batch', '1,8').split(',').map(Number);
  const threads = arg('threads', '1,2').split(',').map(Number);
  const reps = Math.max(1, Number(arg('reps', '20')));
  const only = Number(arg('layers', '0'));
  const match = arg('only', '');
  console.log(`native conv2d, isa ${nat.info.isa}, median of ${reps}, peak ${PEAK_PER_CORE} GFLOP/s per core`);
  for (const model of models) {
    const layers = (only > 0 ? MODELS[model].slice(0, only) : MODELS[model]).filter((L) => L.name.includes(match));
    for (const N of batches) {
      const cols = threads.map((t) => `${t}T GF/s  %pk    ms`).join(' | ');
      console.log(`\n${model}  batch ${N}\n${'layer'.padEnd(26)} ${'x'.padStart(2)} ${'GFLOP'.padStart(6)} | ${cols}`);
      const tot = threads.map(() => ({ ms: 0, gf: 0 }));
      for (const L of layers) {
        const p = params(L, N);
        const gflop = (2 * N * L.O * p.OH * p.OW * L.C * L.K * L.K) / 1e9;
        const cells = threads.map((t, i) => {
          be.setNumThreads(t);
          const ms = time(be, L, N, reps);
          const gfs = gflop / (ms / 1e3);
          tot[i].ms += ms * L.count;
          tot[i].gf += gflop * L.count;
          return `${gfs.toFixed(0).padStart(8)} ${((100 * gfs) / (PEAK_PER_CORE * t)).toFixed(0).padStart(4)} ${ms.toFixed(2).padStart(6)}`;
        });
        console.log(`${L.name.padEnd(26)} ${String(L.count).padStart(2)} ${gflop.toFixed(3).padStart(6)} | ${cells.join(' | ')}`);
      }
      const cells = tot.map((t, i) => {
        const gfs = t.gf / (t.ms / 1e3);
        return `${gfs.toFixed(0).padStart(8)} ${((100 * gfs) / (PEAK_PER_CORE * threads[i])).toFixed(0).padStart(4)} ${t.ms.toFixed(2).padStart(6)}`;
      });
      console.log(`${'all convs (weighted)'.padEnd(26)} ${''.padStart(2)} ${tot[0].gf.toFixed(2).padStart(6)} | ${cells.join(' | ')}`);
    }
  }
}

main();

// Training throughput of the native backend against PyTorch 1.13 on this machine, in the same run. Not a test.
//
//  1. Per layer: the convolution gradients (data, weight) of every ResNet-50 convolution (torchvision v1.5 shapes;
//     --model resnext50 for ResNeXt-50 32x4d's grouped 3x3 layers) at batch 8, 224x224, median of --reps, next to
//     torch.ops.aten.convolution_backward with the same shapes (output_mask data-only / weight-only). Ours and
//     PyTorch's alternate layer by layer, so both see the same machine load. GFLOP = 2 * MACs of the forward.
//  2. The whole step: getModel(arch) in training mode, forward + cross-entropy + backward + SGD (momentum 0.9),
//     against torchvision's model with torch.optim.SGD, alternating ours / PyTorch's rounds of --steps steps (after
//     warm-up). Each of our steps is followed by a turn of the event loop (what an async DataLoader loop does), so
//     the native memory pool gets back the blocks of the previous step's tensors. Then one instrumented step shows
//     where the time goes (wall time per backend member; the rest is JavaScript: autograd, optimizer, GC).
//
// PyTorch runs in one persistent /usr/bin/python3 process (torch.set_num_threads(--threads), OMP_NUM_THREADS set
// the same), driven over stdin/stdout. The machine is shared: the load average is printed with the results.
//
//   node dist/bench/train.bench.js [--threads 2] [--batch 8] [--reps 7] [--steps 5] [--model resnet50|resnext50]
//                                  [--arch resnet50] [--no-layers] [--no-step] [--no-torch] [--only 'l1']

import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { loadavg } from 'node:os';
import { loadNative, nativePoolStats } from '../src/backend/native.js';
import { setBackend, setNumThreads } from '../src/backend/select.js';
import type { Backend, Conv2dParams } from '../src/backend/backend.js';
import { getModel } from '../src/models/resnet.js';
import * as F from '../src/ops/index.js';
import { recycledBytes } from '../src/ops/recycle.js';
import { SGD } from '../src/optim/index.js';
import { Tensor } from '../src/tensor/tensor.js';

const PEAK_PER_CORE = 208; // GFLOP/s, PERFORMANCE.md §1.1

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

interface Layer { name: string; C: number; O: number; H: number; K: number; s: number; g: number; count: number }
const l = (name: string, C: number, O: number, H: number, K: number, s: number, count: number, g = 1): Layer => ({ name, C, O, H, K, s, g, count });

const MODELS: Record<string, Layer[]> = {
  resnet50: [
    l('stem 7x7 s2 (weight only)', 3, 64, 224, 7, 2, 1),
    l('l1 1x1 64->64', 64, 64, 56, 1, 1, 1),
    l('l1 1x1 256->64', 256, 64, 56, 1, 1, 2),
    l('l1 3x3 64', 64, 64, 56, 3, 1, 3),
    l('l1 1x1 64->256', 64, 256, 56, 1, 1, 3),
    l('l1 ds 1x1 64->256', 64, 256, 56, 1, 1, 1),
    l('l2 1x1 256->128 @56', 256, 128, 56, 1, 1, 1),
    l('l2 3x3 s2 128', 128, 128, 56, 3, 2, 1),
    l('l2 ds 1x1 s2 256->512', 256, 512, 56, 1, 2, 1),
    l('l2 1x1 512->128', 512, 128, 28, 1, 1, 3),
    l('l2 3x3 128', 128, 128, 28, 3, 1, 3),
    l('l2 1x1 128->512', 128, 512, 28, 1, 1, 4),
    l('l3 1x1 512->256 @28', 512, 256, 28, 1, 1, 1),
    l('l3 3x3 s2 256', 256, 256, 28, 3, 2, 1),
    l('l3 ds 1x1 s2 512->1024', 512, 1024, 28, 1, 2, 1),
    l('l3 1x1 1024->256', 1024, 256, 14, 1, 1, 5),
    l('l3 3x3 256', 256, 256, 14, 3, 1, 5),
    l('l3 1x1 256->1024', 256, 1024, 14, 1, 1, 6),
    l('l4 1x1 1024->512 @14', 1024, 512, 14, 1, 1, 1),
    l('l4 3x3 s2 512', 512, 512, 14, 3, 2, 1),
    l('l4 ds 1x1 s2 1024->2048', 1024, 2048, 14, 1, 2, 1),
    l('l4 1x1 2048->512', 2048, 512, 7, 1, 1, 2),
    l('l4 3x3 512', 512, 512, 7, 3, 1, 2),
    l('l4 1x1 512->2048', 512, 2048, 7, 1, 1, 3),
  ],
  // ResNeXt-50 32x4d's grouped 3x3 convolutions (its 1x1 layers are ResNet-50-like)
  resnext50: [
    l('l1 3x3 g32 128', 128, 128, 56, 3, 1, 3, 32),
    l('l2 3x3 g32 s2 256', 256, 256, 56, 3, 2, 1, 32),
    l('l2 3x3 g32 256', 256, 256, 28, 3, 1, 3, 32),
    l('l3 3x3 g32 s2 512', 512, 512, 28, 3, 2, 1, 32),
    l('l3 3x3 g32 512', 512, 512, 14, 3, 1, 5, 32),
    l('l4 3x3 g32 s2 1024', 1024, 1024, 14, 3, 2, 1, 32),
    l('l4 3x3 g32 1024', 1024, 1024, 7, 3, 1, 2, 32),
  ],
};

function params(L: Layer, N: number): Conv2dParams {
  const pad = (L.K - 1) >> 1, OH = Math.floor((L.H + 2 * pad - L.K) / L.s) + 1;
  return { N, C: L.C, H: L.H, W: L.H, O: L.O, KH: L.K, KW: L.K, OH, OW: OH, strideH: L.s, strideW: L.s,
    padH: pad, padW: pad, dilationH: 1, dilationW: 1, groups: L.g };
}

const gflopOf = (p: Conv2dParams) => (2 * p.N * p.O * p.OH * p.OW * (p.C / p.groups) * p.KH * p.KW) / 1e9;

function random(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function timeIt(fn: () => void, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

// ---- PyTorch helper process ---------------------------------------------------------------------------------------

const TORCH_SERVER = String.raw`
import json, sys, time, torch, torchvision
torch.set_num_threads(int(sys.argv[1]))
def med(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append((time.perf_counter() - t0) * 1e3)
    return med(ts)
models = {}
print(json.dumps({"ready": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    q = json.loads(line)
    if q["cmd"] == "conv":
        p = q["p"]; g = torch.Generator().manual_seed(0)
        x = torch.randn(p["N"], p["C"], p["H"], p["W"], generator=g)
        w = torch.randn(p["O"], p["C"] // p["groups"], p["KH"], p["KW"], generator=g) * 0.05
        dy = torch.randn(p["N"], p["O"], p["OH"], p["OW"], generator=g)
        st, pd = [p["strideH"], p["strideW"]], [p["padH"], p["padW"]]
        bwd = lambda m: torch.ops.aten.convolution_backward(dy, x, w, None, st, pd, [1, 1], False, [0, 0], p["groups"], m)
        r = {"weight": timed(lambda: bwd([False, True, False]), q["reps"])}
        if q["data"]:
            r["data"] = timed(lambda: bwd([True, False, False]), q["reps"])
        print(json.dumps(r), flush=True)
    elif q["cmd"] == "step":
        key = (q["arch"], q["batch"])
        if key not in models:
            torch.manual_seed(0)
            m = getattr(torchvision.models, q["arch"])(); m.train()
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            x = torch.randn(q["batch"], 3, 224, 224); y = torch.randint(0, 1000, (q["batch"],))
            models[key] = (m, opt, x, y)
        m, opt, x, y = models[key]
        res = []
        for i in range(q["warmup"] + q["steps"]):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x), y)
            t1 = time.perf_counter(); loss.backward(); t2 = time.perf_counter(); opt.step(); t3 = time.perf_counter()
            if i >= q["warmup"]:
                res.append([(t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3])
        print(json.dumps({"steps": res}), flush=True)
`;

class Torch {
  private proc: ChildProcess;
  private lines: Interface;
  private queue: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  version = '';

  constructor(threads: number) {
    this.proc = spawn('/usr/bin/python3', ['-u', '-c', TORCH_SERVER, String(threads)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, OMP_NUM_THREADS: String(threads), PYTHONWARNINGS: 'ignore' },
    });
    this.lines = createInterface({ input: this.proc.stdout! });
    this.lines.on('line', (s) => this.queue.shift()?.resolve(s));
    this.proc.on('exit', (code) => {
      for (const w of this.queue.splice(0)) w.reject(new Error(`the PyTorch helper (/usr/bin/python3) exited with ${code}`));
    });
  }

  async ask<T>(q: object | null): Promise<T> {
    const reply = new Promise<string>((resolve, reject) => this.queue.push({ resolve, reject }));
    if (q) this.proc.stdin!.write(`${JSON.stringify(q)}\n`);
    return JSON.parse(await reply) as T;
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

// ---- 1. per layer ---------------------------------------------------------------------------------------------------

async function layers(be: Backend, torch: Torch | null, model: string, N: number, reps: number, only: string): Promise<void> {
  console.log(`\n${model} convolution gradients, batch ${N}, ${be.numThreads()} threads, median of ${reps}; GFLOP/s (2 x MACs)`);
  console.log(`${'layer'.padEnd(28)} ${'x'.padStart(2)} | ${'data ms'.padStart(8)} ${'GF/s'.padStart(5)} ${torch ? `${'torch'.padStart(7)} ${'ratio'.padStart(5)} ` : ''}| ${'weight ms'.padStart(9)} ${'GF/s'.padStart(5)} ${torch ? `${'torch'.padStart(7)} ${'ratio'.padStart(5)}` : ''}`);
  const tot = { d: 0, w: 0, td: 0, tw: 0, gd: 0, gw: 0 };
  for (const L of MODELS[model].filter((x) => x.name.includes(only))) {
    const p = params(L, N), gf = gflopOf(p);
    const x = random(N * L.C * L.H * L.H), w = random((L.O * L.C * L.K * L.K) / L.g, 0.05), dy = random(N * L.O * p.OH * p.OW);
    const dx = be.alloc(x.length), dw = new Float32Array(w.length), key = { key: w, version: 0 };
    const withData = !L.name.startsWith('stem');
    const d = withData ? timeIt(() => be.conv2dBackwardData(dy, w, p, dx, key), reps) : 0;
    const wt = timeIt(() => be.conv2dBackwardWeight(x, dy, p, dw, null), reps);
    const t = torch ? await torch.ask<{ data?: number; weight: number }>({ cmd: 'conv', p, reps, data: withData }) : null;
    tot.d += d * L.count; tot.w += wt * L.count; tot.gw += gf * L.count;
    if (withData) tot.gd += gf * L.count;
    if (t) { tot.td += (t.data ?? 0) * L.count; tot.tw += t.weight * L.count; }
    const cell = (ms: number, tms: number | undefined) => ms === 0 ? `${'-'.padStart(8)} ${''.padStart(5)} ${torch ? `${''.padStart(7)} ${''.padStart(5)} ` : ''}`
      : `${ms.toFixed(2).padStart(8)} ${(gf / ms * 1e3).toFixed(0).padStart(5)} ${torch ? `${tms!.toFixed(2).padStart(7)} ${(tms! / ms).toFixed(2).padStart(5)} ` : ''}`;
    console.log(`${L.name.padEnd(28)} ${String(L.count).padStart(2)} | ${cell(d, t?.data)}| ${cell(wt, t?.weight)}`);
  }
  const peak = PEAK_PER_CORE * be.numThreads();
  console.log(`${'network (x count)'.padEnd(28)} ${''.padStart(2)} | ${tot.d.toFixed(1).padStart(8)} ${(tot.gd / tot.d * 1e3).toFixed(0).padStart(5)} ${torch ? `${tot.td.toFixed(1).padStart(7)} ${(tot.td / tot.d).toFixed(2).padStart(5)} ` : ''}| ${tot.w.toFixed(1).padStart(9)} ${(tot.gw / tot.w * 1e3).toFixed(0).padStart(5)} ${torch ? `${tot.tw.toFixed(1).padStart(7)} ${(tot.tw / tot.w).toFixed(2).padStart(5)}` : ''}`);
  console.log(`(ratio = PyTorch time / ours; above 1 means ours is faster. Peak at ${be.numThreads()} threads: ${peak} GFLOP/s)`);
}

// ---- 2. whole training step ------------------------------------------------------------------------------------------

interface StepTimes { fwd: number; bwd: number; opt: number; total: number }

async function step(be: Backend, torch: Torch | null, arch: string, N: number, steps: number): Promise<void> {
  console.log(`\n${arch} training step (forward + cross-entropy + backward + SGD momentum 0.9), batch ${N}, 224x224, ${be.numThreads()} threads`);
  const model = getModel(arch, {});
  model.train();
  const opt = new SGD([...model.parameters()], { lr: 0.01, momentum: 0.9 });
  const x = new Tensor(random(N * 3 * 224 * 224), [N, 3, 224, 224]);
  const labels = new Tensor(new Float64Array(N).map((_, i) => (i * 37) % 1000), [N], { dtype: 'int64' });
  const one = (): StepTimes => {
    const t0 = performance.now();
    opt.zeroGrad();
    const loss = F.crossEntropy(model.forward(x) as Tensor, labels);
    const t1 = performance.now();
    loss.backward();
    const t2 = performance.now();
    opt.step();
    const t3 = performance.now();
    return { fwd: t1 - t0, bwd: t2 - t1, opt: t3 - t2, total: t3 - t0 };
  };
  const turn = () => new Promise((r) => setImmediate(r));
  const ours = async (k: number): Promise<StepTimes[]> => {
    const out: StepTimes[] = [];
    for (let i = 0; i < k; i++) {
      await turn();
      out.push(one());
    }
    return out;
  };
  const theirs = async (k: number, warmup: number): Promise<StepTimes[]> => {
    const r = await torch!.ask<{ steps: number[][] }>({ cmd: 'step', arch, batch: N, steps: k, warmup });
    return r.steps.map(([fwd, bwd, o, total]) => ({ fwd, bwd, opt: o, total }));
  };
  // FLOPs of one step: count every convolution call (forward, data and weight gradients) once
  const flops = { v: 0 };
  const wrapped: [keyof Backend, unknown][] = [];
  const count = (k: 'conv2d' | 'conv2dBackwardData' | 'conv2dBackwardWeight', pi: number) => {
    const f = be[k] as (...a: unknown[]) => void;
    wrapped.push([k, f]);
    (be as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      flops.v += gflopOf(a[pi] as Conv2dParams);
      return f.apply(be, a);
    };
  };
  count('conv2d', 2);
  count('conv2dBackwardData', 2);
  count('conv2dBackwardWeight', 2);
  await ours(2); // warm-up: packs, pool blocks, JIT
  for (const [k, f] of wrapped) (be as unknown as Record<string, unknown>)[k] = f;
  const gflop = flops.v / 2;

  const mine: StepTimes[] = [], torchs: StepTimes[] = [];
  for (let round = 0; round < 2; round++) {
    mine.push(...(await ours(steps)));
    if (torch) torchs.push(...(await theirs(steps, round === 0 ? 2 : 0)));
  }
  const med = (xs: StepTimes[], k: keyof StepTimes) => median(xs.map((s) => s[k]));
  const row = (name: string, xs: StepTimes[]) => console.log(`${name.padEnd(22)} fwd ${med(xs, 'fwd').toFixed(0).padStart(5)} ms  bwd ${med(xs, 'bwd').toFixed(0).padStart(5)} ms  sgd ${med(xs, 'opt').toFixed(0).padStart(4)} ms  total ${med(xs, 'total').toFixed(0).padStart(5)} ms  (${(gflop / med(xs, 'total') * 1e3).toFixed(0)} conv GFLOP/s)`);
  console.log(`convolution work per step: ${gflop.toFixed(1)} GFLOP; medians of ${mine.length} steps each, alternating rounds`);
  row('resnet-ts (native)', mine);
  if (torch) {
    row(`PyTorch ${torch.version}`, torchs);
    console.log(`ratio PyTorch / ours (total step): ${(med(torchs, 'total') / med(mine, 'total')).toFixed(2)}x  (forward ${(med(torchs, 'fwd') / med(mine, 'fwd')).toFixed(2)}x, backward ${(med(torchs, 'bwd') / med(mine, 'bwd')).toFixed(2)}x, sgd ${(med(torchs, 'opt') / med(mine, 'opt')).toFixed(2)}x)`);
  }

  // one instrumented step: wall time per backend member
  const acc = new Map<string, number>();
  const saved: [string, unknown][] = [];
  for (const k of Object.keys(be) as (keyof Backend)[]) {
    const f = be[k];
    if (typeof f !== 'function' || k === 'numThreads' || k === 'setNumThreads') continue;
    saved.push([k, f]);
    (be as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
      const t0 = performance.now();
      const r = (f as (...x: unknown[]) => unknown).apply(be, a);
      acc.set(k, (acc.get(k) ?? 0) + performance.now() - t0);
      return r;
    };
  }
  await turn();
  const p0 = nativePoolStats();
  const s = one();
  const p1 = nativePoolStats();
  for (const [k, f] of saved) (be as unknown as Record<string, unknown>)[k] = f;
  if (p0 && p1) {
    console.log(`memory in that step: pool hits ${p1.hits - p0.hits}, misses ${p1.misses - p0.misses}, refusals ${p1.refusals - p0.refusals}; ` +
      `${(recycledBytes() / 2 ** 20).toFixed(0)} MB waiting in the recycling free lists after it`);
  }
  const inBackend = [...acc.values()].reduce((a, b) => a + b, 0);
  console.log(`one instrumented step, ${s.total.toFixed(0)} ms: backend ${inBackend.toFixed(0)} ms (${[...acc].sort((a, b) => b[1] - a[1]).filter(([, v]) => v >= 1).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}), other (JavaScript: autograd, optimizer, GC) ${(s.total - inBackend).toFixed(0)} ms`);
}

async function main(): Promise<void> {
  const nat = loadNative();
  if (!nat.backend) throw new Error(`native backend unavailable: ${nat.info.error}`);
  const be = nat.backend;
  setBackend('native');
  const threads = Number(arg('threads', '2')), N = Number(arg('batch', '8'));
  setNumThreads(threads);
  const torch = flag('no-torch') ? null : new Torch(threads);
  if (torch) {
    const hello = await torch.ask<{ ready: string; threads: number }>(null);
    torch.version = hello.ready;
  }
  console.log(`native isa ${nat.info.isa}, ${be.numThreads()} threads${torch ? `; PyTorch ${torch.version} with ${threads} threads` : ''}; load average ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  try {
    if (!flag('no-layers')) await layers(be, torch, arg('model', 'resnet50'), N, Number(arg('reps', '7')), arg('only', ''));
    if (!flag('no-step')) await step(be, torch, arg('arch', 'resnet50'), N, Number(arg('steps', '5')));
  } finally {
    torch?.close();
  }
  console.log(`\nload average at the end ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

await main();

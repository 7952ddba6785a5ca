// Loading a torchvision ResNet-50 checkpoint (.pth, ~100 MB, zip format as torch.save writes it) into our resnet50.
// Not a test. Each measurement runs in a fresh child process so that peak RSS (getrusage maxrss) belongs to it:
//   parse   readPthSync + extractStateDict only
//   model   resnet50() is built first (its own ~100 MB of parameters), then read + extract + loadStateDict
// Reported: wall time of each step (first load, then the median of --reps loads in the same process), peak RSS and
// its growth over the process's RSS before loading, both relative to the file size. Targets: load <= 0.5 s, peak RSS
// growth < 2x the file size. The file is written once by /usr/bin/python3 (torch + torchvision) into bench/out/.
//
//   node dist/bench/pth.bench.js [--reps 5] [--legacy]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { extractStateDict, readPthSync } from '../src/io/pth.js';
import { resnet50 } from '../src/models/resnet.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const reps = Number(opt('--reps', '5'));
const legacy = args.includes('--legacy');
const file = join(ROOT, 'bench', 'out', legacy ? 'resnet50_legacy.pth' : 'resnet50.pth');
const MB = 1e6;

function makeFile(): void {
  if (existsSync(file)) return;
  mkdirSync(dirname(file), { recursive: true });
  const py = `import torch, torchvision\ntorch.manual_seed(0)\ntorch.save(torchvision.models.resnet50().state_dict(), ${JSON.stringify(file)}, _use_new_zipfile_serialization=${legacy ? 'False' : 'True'})`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cannot write ${file} with /usr/bin/python3 (needs torch and torchvision)`);
}

const ms = (t0: number) => performance.now() - t0;
const peakRss = () => process.resourceUsage().maxRSS * 1024; // bytes

/** One phase in this (child) process; prints one JSON line. */
function phase(kind: 'parse' | 'model'): void {
  const model = kind === 'model' ? resnet50() : null;
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  const times: Record<string, number>[] = [];
  for (let i = 0; i < (kind === 'model' ? reps : 1); i++) {
    let t = performance.now();
    const f = readPthSync(file);
    const read = ms(t);
    t = performance.now();
    const sd = extractStateDict(f.object, file);
    const extract = ms(t);
    t = performance.now();
    if (model) model.loadStateDict(sd);
    const load = ms(t);
    times.push({ read, extract, load, total: read + extract + load });
    if (i === 0) Object.assign(times[0], { peak: peakRss() }); // the process's peak so far (includes building the model)
  }
  // the floor on this machine: allocating and touching as many fresh bytes as the file has (page faults)
  const t = performance.now();
  Buffer.allocUnsafeSlow(statSync(file).size).fill(1);
  const touch = ms(t);
  console.log(JSON.stringify({ kind, rss0, times, touch }));
}

function run(kind: 'parse' | 'model'): { rss0: number; times: Record<string, number>[]; touch: number } {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--phase', kind, '--reps', String(reps), ...(legacy ? ['--legacy'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`phase ${kind} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

if (args.includes('--phase')) {
  phase(opt('--phase', 'parse') as 'parse' | 'model');
} else {
  makeFile();
  const size = statSync(file).size;
  console.log(`${file}: ${(size / MB).toFixed(1)} MB (${legacy ? 'legacy' : 'zip'} format), node ${process.version}`);
  for (const kind of ['parse', 'model'] as const) {
    const { rss0, times, touch } = run(kind);
    const first = times[0];
    const med = (k: string) => times.map((t) => t[k]).sort((a, b) => a - b)[Math.floor(times.length / 2)];
    const steps = ['read', 'extract', 'load'].filter((k) => kind === 'model' || k !== 'load');
    console.log(`\n${kind === 'parse' ? 'readPthSync + extractStateDict' : 'resnet50() then readPthSync + extractStateDict + loadStateDict'}:`);
    console.log(`  first load: ${steps.map((k) => `${k} ${first[k].toFixed(1)} ms`).join(', ')}; total ${first.total.toFixed(1)} ms (target <= 500 ms)`);
    if (times.length > 1) console.log(`  median of ${times.length}: ${steps.map((k) => `${k} ${med(k).toFixed(1)} ms`).join(', ')}; total ${med('total').toFixed(1)} ms`);
    if (kind === 'parse') console.log(`  (for scale: allocating and touching ${(size / MB).toFixed(0)} MB of fresh memory takes ${touch.toFixed(1)} ms here)`);
    const peak = first.peak;
    console.log(`  RSS before loading ${(rss0 / MB).toFixed(0)} MB; peak ${(peak / MB).toFixed(0)} MB = ${(peak / size).toFixed(2)}x the file; growth ${((peak - rss0) / MB).toFixed(0)} MB = ${((peak - rss0) / size).toFixed(2)}x the file (target < 2x)`);
  }
}

// Loading a torchvision ResNet-50 checkpoint (.pth, ~100 MB, as torch.save writes it) into our resnet50. Not a test.
// Every run is a fresh child process (so times include first touches of memory, and peak RSS belongs to the run);
// the figure is the median of --runs runs. The file is read once first, so it is in the page cache for every run;
// with --cold it is evicted from the page cache before each run instead (posix_fadvise DONTNEED on this file only,
// through /usr/bin/python3's os.posix_fadvise: Node has no binding), so every run reads it from the disk.
//
// Paths, each timed from nothing to a loaded model:
//   fast      skipInit(() => resnet50()), readPthSync, extractStateDict, loadStateDict(sd, { assign: true })
//             (what resnet50({ weights }) does; PyTorch's meta-device + load_state_dict(assign=True) recipe)
//   classic   resnet50() (draws ~25M random initial values), readPthSync, extractStateDict, loadStateDict (copy)
//   before    classic with the reader as it was before the speed-up: fs.readFileSync + parsePth (zip format only:
//             for a legacy file parsePth copies the unaligned records that readPthSync aligns in place)
// and a breakdown run (phases): file read into fresh memory (fs.readFileSync vs readWholeFileSync), zip directory,
// CRC-32 of every entry, unpickle + tensor creation (the rest of parsePth), extractStateDict.
// "load" = read + parse + extract + loadStateDict, the issue's figure (target <= 0.5 s); "total" adds building the
// model. Peak RSS growth = peak RSS - RSS before the load started, relative to the file size (target < 2x).
//
//   node dist/bench/pth.bench.js [--runs 7] [--legacy] [--cold] [--only fast,classic,before,phases]

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { extractStateDict, parsePth, readPthSync } from '../src/io/pth.js';
import { readWholeFileSync } from '../src/io/tensor-bytes.js';
import { readZipEntries } from '../src/io/zip.js';
import { skipInit } from '../src/nn/init.js';
import { resnet50 } from '../src/models/resnet.js';
import { loadNative } from '../src/backend/native.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const runs = Number(opt('--runs', '7'));
const legacy = args.includes('--legacy');
const cold = args.includes('--cold');
const only = opt('--only', 'phases,fast,classic,before').split(',');
const file = join(ROOT, 'bench', 'out', legacy ? 'resnet50_legacy.pth' : 'resnet50.pth');
const MB = 1e6;

type Path = 'fast' | 'classic' | 'before' | 'phases';
type Times = Record<string, number>;

function makeFile(): void {
  if (existsSync(file)) return;
  mkdirSync(dirname(file), { recursive: true });
  const py = `import torch, torchvision\ntorch.manual_seed(0)\ntorch.save(torchvision.models.resnet50().state_dict(), ${JSON.stringify(file)}, _use_new_zipfile_serialization=${legacy ? 'False' : 'True'})`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cannot write ${file} with /usr/bin/python3 (needs torch and torchvision)`);
}

/** One run of one path in this (child) process: prints one JSON line of phase times (ms) and memory. */
function child(path: Path): void {
  loadNative(); // the addon is loaded before timing (a model's first forward would load it anyway)
  const t: Times = {};
  let t0 = performance.now();
  const lap = (k: string) => {
    const now = performance.now();
    t[k] = now - t0;
    t0 = now;
  };
  if (path === 'phases') {
    const rss0 = process.memoryUsage().rss;
    readFileSync(file);
    lap('readFileSync');
    const buf = readWholeFileSync(file);
    lap('readWholeFileSync');
    if (!legacy) {
      const entries = readZipEntries(buf, file);
      lap('zip directory');
      for (const e of entries.values()) crc32(buf.subarray(e.dataOffset, e.dataOffset + e.compressedSize));
      lap('crc32 (all entries)');
    }
    const f = parsePth(buf, file);
    lap('parsePth');
    extractStateDict(f.object, file);
    lap('extract');
    console.log(JSON.stringify({ t, rss0, peak: process.resourceUsage().maxRSS * 1024 }));
    return;
  }
  const model = path === 'fast' ? skipInit(() => resnet50()) : resnet50();
  lap('construct');
  const rss0 = process.memoryUsage().rss;
  t0 = performance.now();
  const f = path === 'before' ? parsePth(readFileSync(file), file) : readPthSync(file);
  lap('read+parse');
  const sd = extractStateDict(f.object, file);
  lap('extract');
  model.loadStateDict(sd, { assign: path === 'fast' });
  lap('loadStateDict');
  t.load = t['read+parse'] + t.extract + t.loadStateDict;
  t.total = t.construct + t.load;
  console.log(JSON.stringify({ t, rss0, peak: process.resourceUsage().maxRSS * 1024 }));
}

/** Drop this file's pages from the page cache (other files are untouched). */
function evict(): void {
  const py = `import os\nfd = os.open(${JSON.stringify(file)}, os.O_RDONLY)\nos.fsync(fd)\nos.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\nos.close(fd)`;
  const r = spawnSync('/usr/bin/python3', ['-c', py], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`cannot evict ${file} from the page cache`);
}

function run(path: Path): { t: Times; rss0: number; peak: number } {
  if (cold) evict();
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', path, ...(legacy ? ['--legacy'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${path} run failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

if (args.includes('--child')) {
  child(opt('--child', 'fast') as Path);
} else {
  makeFile();
  const size = statSync(file).size;
  if (!cold) readFileSync(file); // into the page cache: every run below reads a cached file
  const native = loadNative().info;
  console.log(`${file}: ${(size / MB).toFixed(1)} MB (${legacy ? 'legacy' : 'zip'} format), ${cold ? 'evicted from the page cache before each run' : 'in the page cache'}; node ${process.version}; ` +
    `native addon ${native.loaded ? 'loaded' : `not loaded (${native.error})`}; median of ${runs} fresh processes each`);
  for (const path of ['phases', 'fast', 'classic', 'before'] as const) {
    if (!only.includes(path) || (legacy && path === 'before')) continue;
    const rs = Array.from({ length: runs }, () => run(path));
    const keys = Object.keys(rs[0].t);
    const med = Object.fromEntries(keys.map((k) => [k, median(rs.map((r) => r.t[k]))]));
    const list = (ks: string[]) => ks.map((k) => `${k} ${med[k].toFixed(1)}`).join(', ');
    const growth = median(rs.map((r) => r.peak - r.rss0)), peak = median(rs.map((r) => r.peak));
    if (path === 'phases') {
      console.log(`\nphases (ms): ${list(keys)}${legacy ? ' (parsePth of a buffer it does not own copies each unaligned record)' : ''}`);
      if (med.parsePth !== undefined && med['crc32 (all entries)'] !== undefined) {
        console.log(`  unpickle + tensor creation ~ ${(med.parsePth - med['zip directory'] - med['crc32 (all entries)']).toFixed(1)} ms (parsePth - zip directory - crc32)`);
      }
      continue;
    }
    console.log(`\n${path}: load ${med.load.toFixed(1)} ms (target <= 500), total with construction ${med.total.toFixed(1)} ms; runs: ${rs.map((r) => r.t.load.toFixed(0)).join(' ')} ms`);
    console.log(`  phases (median ms): ${list(['construct', 'read+parse', 'extract', 'loadStateDict'])}`);
    console.log(`  peak RSS ${(peak / MB).toFixed(0)} MB; growth while loading ${(growth / MB).toFixed(0)} MB = ${(growth / size).toFixed(2)}x the file (target < 2x)`);
  }
}

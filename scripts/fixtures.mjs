#!/usr/bin/env node
// Makes the PyTorch fixtures the tests compare against: runs every scripts/fixtures/make_*.py with Debian's
// /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14) into tests/fixtures/gen/<name>/. A stamp (hash of
// the maker, the shared modules beside it and the torch version) skips makers whose output is current. A missing torch is an error,
// never a skip: the parity tests must run.
//   node scripts/fixtures.mjs [--force] [name ...]

import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'scripts', 'fixtures');
const out = join(root, 'tests', 'fixtures', 'gen');
const python = process.env.RESNET_PYTHON || '/usr/bin/python3';
const args = process.argv.slice(2);
const force = args.includes('--force');
const only = args.filter((a) => !a.startsWith('--'));

let torchVersion;
try {
  torchVersion = execFileSync(python, ['-c', 'import torch, torchvision; print(torch.__version__, torchvision.__version__)'], { encoding: 'utf8' }).trim();
} catch (e) {
  console.error(`fixtures: ${python} cannot import torch and torchvision (${e.message.split('\n')[0]}).\n` +
    'Install Debian\'s python3-torch and python3-torchvision (sudo apt-get install python3-torch python3-torchvision); the parity tests need them.');
  process.exit(1);
}

const makers = readdirSync(dir).filter((f) => /^make_\w+\.py$/.test(f)).sort();
// every shared module (common.py, hf_reference.py, ...) can change any maker's output: hash them all into each stamp
const shared = readdirSync(dir).filter((f) => f.endsWith('.py') && !makers.includes(f)).sort();
const common = Buffer.concat(shared.map((f) => Buffer.concat([Buffer.from(f), readFileSync(join(dir, f))])));
let failed = 0;
for (const f of makers) {
  const name = f.slice(5, -3);
  if (only.length && !only.includes(name)) continue;
  const hash = createHash('sha256').update(readFileSync(join(dir, f))).update(common).update(torchVersion).digest('hex');
  const dest = join(out, name);
  const stamp = join(dest, '.stamp');
  if (!force && existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) {
    console.log(`fixtures: ${name} is current`);
    continue;
  }
  // build into a temporary folder and swap it in, so an interrupted run never leaves half a fixture set
  const tmp = `${dest}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  const r = spawnSync(python, [join(dir, f), tmp], { stdio: 'inherit', cwd: root, env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2' } });
  if (r.status !== 0) {
    console.error(`fixtures: ${f} failed (exit ${r.status ?? r.signal})`);
    rmSync(tmp, { recursive: true, force: true });
    failed++;
    continue;
  }
  writeFileSync(join(tmp, '.stamp'), hash);
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dirname(dest), { recursive: true });
  renameSync(tmp, dest);
  console.log(`fixtures: ${name} made in ${((Date.now() - t0) / 1000).toFixed(1)} s (torch ${torchVersion})`);
}
process.exit(failed ? 1 : 0);

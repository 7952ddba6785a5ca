#!/usr/bin/env node
// Builds the native addon (build/Release/resnet_native.node) with node-gyp; run by `npm install`.
// A failed build is not fatal by default: the package still works on the pure-TypeScript backend, and
// backendInfo() / `resnet --version` say why native is missing. Under CI=true or RESNET_REQUIRE_NATIVE=1 a
// failed build fails the install.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const required = process.env.CI === 'true' || process.env.RESNET_REQUIRE_NATIVE === '1';

function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const local = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (existsSync(local)) return local;
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}

function explain(reason) {
  const lines = [
    `resnet-ts: the native addon was not built: ${reason}`,
    'resnet-ts will run on its pure-TypeScript backend (much slower); backendInfo() reports this.',
    'To build it: install python3, make and a C compiler (Debian/Ubuntu: `apt-get install python3 make gcc g++`),',
    'then run `node scripts/build-native.mjs` in the package folder (or reinstall the package).',
  ];
  console.error(lines.join('\n'));
  process.exit(required ? 1 : 0);
}

if (process.env.RESNET_SKIP_NATIVE === '1' && !required) {
  console.error('resnet-ts: RESNET_SKIP_NATIVE=1, not building the native addon.');
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) explain('node-gyp was not found (neither npm_config_node_gyp nor node_modules/node-gyp).');
const args = [gyp, 'rebuild', '--release', `--jobs=${process.env.JOBS || 'max'}`];
// Use the headers next to this node (distro packages and official tarballs ship include/node) unless a nodedir
// was configured, so that building needs no download.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'common.gypi'))) args.push(`--nodedir=${prefix}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: process.env });
if (r.error) explain(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) explain(`node-gyp exited with ${r.signal ? `signal ${r.signal}` : `code ${r.status}`} (see its output above).`);
if (!existsSync(join(root, 'build', 'Release', 'resnet_native.node'))) explain('node-gyp succeeded but build/Release/resnet_native.node is missing.');
console.error('resnet-ts: built build/Release/resnet_native.node');

// Loader for the native addon (csrc/, built by node-gyp into build/Release/resnet_native.node) and the
// Backend wrapper around it. Loading never throws: failures come back as an explanation that says how to fix them.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from './backend.js';

export interface NativeInfo {
  loaded: boolean;
  /** Path of the addon that was tried. */
  path: string;
  /** Why it is not usable (empty when loaded). */
  error: string;
  /** SIMD level picked at run time: 'avx512' | 'avx2' | 'scalar' (empty when not loaded). */
  isa: string;
}

let cached: { backend: Backend | null; info: NativeInfo } | null = null;

/** The repository (or installed package) root: dist/src/backend -> ../../.. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function loadNative(): { backend: Backend | null; info: NativeInfo } {
  if (cached) return cached;
  const path = process.env.RESNET_NATIVE_PATH || join(packageRoot(), 'build', 'Release', 'resnet_native.node');
  const fail = (error: string) => (cached = { backend: null, info: { loaded: false, path, error, isa: '' } });
  if (!existsSync(path)) {
    return fail(`${path} does not exist. Build it with \`npm install\` (or \`node scripts/build-native.mjs\`); it needs python3, make and g++ (node-gyp).`);
  }
  let addon: unknown;
  try {
    addon = createRequire(import.meta.url)(path);
  } catch (e) {
    return fail(`loading ${path} failed: ${(e as Error).message}. Rebuild it with \`node scripts/build-native.mjs\`.`);
  }
  try {
    const backend = makeNativeBackend(addon);
    cached = { backend, info: { loaded: true, path, error: '', isa: (addon as { isa(): string }).isa() } };
  } catch (e) {
    return fail(`${path} loaded but is unusable: ${(e as Error).message}`);
  }
  return cached;
}

function makeNativeBackend(_addon: unknown): Backend {
  throw new Error('the native backend wrapper is not written yet');
}

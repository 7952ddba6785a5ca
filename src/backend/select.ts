// Backend selection: native first, then js; RESNET_BACKEND=js|native overrides. The chosen backend and the
// reason for any fallback are always visible through backendInfo() (and `resnet --version`); a fallback also
// prints one warning on stderr. Asking for native explicitly and not getting it is an error, never a fallback.

import type { Backend, BackendName } from './backend.js';
import { jsBackend } from './js.js';
import { loadNative, type NativeInfo } from './native.js';

export interface BackendInfo {
  /** The backend ops/ runs on now. */
  name: BackendName;
  /** Why this backend: 'default', 'RESNET_BACKEND=js', 'setBackend("js")', or the fallback reason. */
  reason: string;
  /** True when the native addon was wanted (default selection) but could not be used. */
  fallback: boolean;
  threads: number;
  /** Details of the native addon: loaded or not, the error, the SIMD level chosen at run time. */
  native: NativeInfo;
}

let current: Backend | null = null;
let info: BackendInfo | null = null;

function select(): void {
  const env = process.env.RESNET_BACKEND;
  const nat = loadNative();
  if (env !== undefined && env !== '' && env !== 'js' && env !== 'native') {
    throw new Error(`RESNET_BACKEND must be 'js' or 'native' but is '${env}'`);
  }
  if (env === 'js') {
    current = jsBackend;
    info = { name: 'js', reason: 'RESNET_BACKEND=js', fallback: false, threads: 1, native: nat.info };
    return;
  }
  if (nat.backend) {
    current = nat.backend;
    info = { name: 'native', reason: env === 'native' ? 'RESNET_BACKEND=native' : 'default', fallback: false, threads: nat.backend.numThreads(), native: nat.info };
    return;
  }
  if (env === 'native') throw new Error(`RESNET_BACKEND=native but the native addon is not usable: ${nat.info.error}`);
  current = jsBackend;
  info = { name: 'js', reason: `native addon unavailable, fell back to js: ${nat.info.error}`, fallback: true, threads: 1, native: nat.info };
  process.emitWarning(`resnet-ts: ${info.reason}`, { code: 'RESNET_NATIVE_FALLBACK' });
}

/** The backend ops/ dispatches to. Only ops/ may call this. */
export function getBackend(): Backend {
  if (!current) select();
  return current!;
}

/** What runs, and why. */
export function backendInfo(): BackendInfo {
  if (!info) select();
  const b = current!;
  return { ...info!, threads: b.numThreads() };
}

/** Switch backends at run time (tests run one suite over every backend this way). */
export function setBackend(name: BackendName): void {
  if (name === 'js') {
    if (!info) select();
    current = jsBackend;
    info = { ...info!, name: 'js', reason: 'setBackend("js")', fallback: false };
    return;
  }
  if (name === 'native') {
    const nat = loadNative();
    if (!nat.backend) throw new Error(`the native backend is not usable: ${nat.info.error}`);
    current = nat.backend;
    info = { name: 'native', reason: 'setBackend("native")', fallback: false, threads: nat.backend.numThreads(), native: nat.info };
    return;
  }
  throw new TypeError(`Expected 'js' or 'native' for backend but received ${String(name)} of type ${typeof name}`);
}

/** Run `fn` with `name` as the backend, restoring the previous one afterwards. */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  if (!current) select();
  const prev = current, prevInfo = info;
  setBackend(name);
  try {
    return fn();
  } finally {
    current = prev;
    info = prevInfo;
  }
}

export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`Expected a positive integer for threads but received ${n}`);
  getBackend().setNumThreads(n);
}

export function getNumThreads(): number {
  return getBackend().numThreads();
}

// Loader for the native addon (csrc/, built by node-gyp into build/Release/resnet_native.node) and the
// Backend wrapper around it. Loading never throws: failures come back as an explanation that says how to fix them.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend, Conv2dEpilogue, Conv2dParams, PackKey, Pool2dParams } from './backend.js';

export interface NativeInfo {
  loaded: boolean;
  /** Path of the addon that was tried. */
  path: string;
  /** Why it is not usable (empty when loaded). */
  error: string;
  /** SIMD level picked at run time: 'avx512' | 'avx2' | 'scalar' (empty when not loaded). */
  isa: string;
  /**
   * Where Backend.alloc gets memory: 'pool (...)', or 'Float32Array (...)' with the reason the pool is off
   * (RESNET_POOL_MB=0, or the runtime refuses external array buffers); empty when not loaded.
   */
  alloc: string;
}

/** Counters of the native memory pool (bytes and counts); see csrc/binding/pool.c. */
export interface PoolStats {
  /** Bytes the pool may manage, live plus idle (RESNET_POOL_MB). */
  limit: number;
  /** Bytes handed out whose ArrayBuffers have not been finalized yet. */
  live: number;
  /** Bytes kept for reuse. */
  idle: number;
  hits: number;
  misses: number;
  /** Requests the pool declined (over the limit, or out of memory); those got a plain Float32Array. */
  refusals: number;
  evictions: number;
}

let cached: { backend: Backend | null; info: NativeInfo } | null = null;

/** The repository (or installed package) root: dist/src/backend -> ../../.. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function loadNative(): { backend: Backend | null; info: NativeInfo } {
  if (cached) return cached;
  const path = process.env.RESNET_NATIVE_PATH || join(packageRoot(), 'build', 'Release', 'resnet_native.node');
  const fail = (error: string) => (cached = { backend: null, info: { loaded: false, path, error, isa: '', alloc: '' } });
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
    const a = addon as Addon;
    const want = process.env.RESNET_ISA;
    if (want) {
      try {
        a.setIsa(want);
      } catch {
        return fail(`RESNET_ISA=${want} but this CPU/build offers only ${a.isaList()}. Unset RESNET_ISA or pick one of those.`);
      }
    }
    cached = { backend, info: { loaded: true, path, error: '', isa: a.isa(), alloc: poolInfo } };
    nativeAddon = a;
  } catch (e) {
    return fail(`${path} loaded but is unusable: ${(e as Error).message}`);
  }
  return cached;
}

/** The addon's exports (csrc/binding/napi.c). Geometry travels as a Float64Array; see the C side for the order. */
interface Addon {
  conv2dPackedSize(p: Float64Array): number;
  conv2dPack(p: Float64Array, w: Float32Array, packed: Float32Array): void;
  conv2d(p: Float64Array, x: Float32Array, w: Float32Array, packed: Float32Array | null, bias: Float32Array | null,
    residual: Float32Array | null, relu: boolean, y: Float32Array): void;
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array,
    B: Float32Array, beta: number, C: Float32Array): void;
  batchNorm(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array,
    weight: Float32Array | null, bias: Float32Array | null, eps: number, relu: boolean, y: Float32Array): void;
  batchNormStats(x: Float32Array, N: number, C: number, HW: number, mean: Float32Array, variance: Float32Array): void;
  maxPool2d(p: Float64Array, x: Float32Array, y: Float32Array, indices: Int32Array | null): void;
  adaptiveAvgPool2d(x: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number, y: Float32Array): void;
  relu(x: Float32Array, y: Float32Array, n: number): void;
  add(a: Float32Array, b: Float32Array, y: Float32Array, n: number, relu: boolean): void;
  isa(): string;
  isaList(): string;
  setIsa(name: string): string;
  numThreads(): number;
  numCores(): number;
  setNumThreads(n: number): number;
  conv2dBackwardDataPackedSize(p: Float64Array): number;
  conv2dBackwardDataPack(p: Float64Array, w: Float32Array, packed: Float32Array): void;
  conv2dBackwardData(p: Float64Array, dy: Float32Array, w: Float32Array, packed: Float32Array | null, dx: Float32Array): void;
  conv2dBackwardWeight(p: Float64Array, x: Float32Array, dy: Float32Array, dw: Float32Array, db: Float32Array | null): void;
  batchNormBackward(x: Float32Array, dy: Float32Array, y: Float32Array | null, N: number, C: number, HW: number, mean: Float32Array,
    invstd: Float32Array, weight: Float32Array | null, dx: Float32Array, dweight: Float32Array | null, dbias: Float32Array | null): void;
  maxPool2dBackward(p: Float64Array, dy: Float32Array, indices: Int32Array, dx: Float32Array): void;
  adaptiveAvgPool2dBackward(dy: Float32Array, N: number, C: number, H: number, W: number, OH: number, OW: number, dx: Float32Array): void;
  reluBackward(dy: Float32Array, y: Float32Array, dx: Float32Array, n: number): void;
  sgdStep(p: Float32Array, g: Float32Array, buf: Float32Array | null, n: number, lr: number, momentum: number, dampening: number,
    weightDecay: number, nesterov: boolean, maximize: boolean, first: boolean): void;
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null, n: number, lr: number,
    beta1: number, beta2: number, eps: number, weightDecay: number, stepSize: number, biasCorrection2Sqrt: number, maximize: boolean): void;
  alloc(n: number): Float32Array | undefined;
  poolStats(): PoolStats;
  poolSetLimit(bytes: number): void;
  poolTrim(): void;
  poolProbe(): void;
}

const ADDON_FUNCTIONS: (keyof Addon)[] = ['conv2dPackedSize', 'conv2dPack', 'conv2d', 'gemm', 'batchNorm',
  'batchNormStats', 'maxPool2d', 'adaptiveAvgPool2d', 'relu', 'add', 'isa', 'isaList', 'setIsa', 'numThreads',
  'numCores', 'setNumThreads', 'alloc', 'poolStats', 'poolSetLimit', 'poolTrim', 'poolProbe',
  'conv2dBackwardDataPackedSize', 'conv2dBackwardDataPack', 'conv2dBackwardData', 'conv2dBackwardWeight',
  'batchNormBackward', 'maxPool2dBackward', 'adaptiveAvgPool2dBackward', 'reluBackward', 'sgdStep', 'adamwStep'];

let nativeAddon: Addon | null = null;

/** SIMD levels the loaded addon can run here, best first (e.g. ['avx512', 'avx2', 'scalar', 'ref']); [] if not loaded. */
export function nativeIsaList(): string[] {
  return nativeAddon ? nativeAddon.isaList().split(',') : [];
}

/**
 * Force the native SIMD level ('avx512' | 'avx2' | 'scalar', or 'ref' for the naive C kernels); what RESNET_ISA
 * does at load time. Throws if the addon is not loaded or the level is unavailable. Returns the level now in use.
 */
export function setNativeIsa(name: string): string {
  if (!nativeAddon || !cached) throw new Error('the native backend is not loaded');
  const isa = nativeAddon.setIsa(name);
  cached.info.isa = isa;
  return isa;
}

/** Counters of the native memory pool, or null when the addon is not loaded. */
export function nativePoolStats(): PoolStats | null {
  return nativeAddon ? nativeAddon.poolStats() : null;
}

/** Unmap the pool's idle blocks (memory held for reuse); live ones return to it as their arrays are collected. */
export function nativePoolTrim(): void {
  nativeAddon?.poolTrim();
}

/**
 * `bytes` zero bytes over their own page-aligned mapping (huge pages requested from 2 MB up; unmapped when the
 * ArrayBuffer is collected), or null when the addon is not loaded, predates allocPages, or declines. Not pooled:
 * for large buffers that live as long as their owner decides, such as a checkpoint read whole (io/tensor-bytes.ts),
 * where first touches of fresh 4 KB pages, not the copy, are what a VM makes slow.
 */
export function nativeAllocPages(bytes: number): ArrayBuffer | null {
  const a = loadNative().info.loaded ? (nativeAddon as (Addon & { allocPages?: (n: number) => ArrayBuffer | undefined }) | null) : null;
  return typeof a?.allocPages === 'function' ? (a.allocPages(bytes) ?? null) : null;
}

// ---- Backend.alloc -----------------------------------------------------------------------------------------
// Outputs of 64 KB and more come from the C pool (csrc/binding/pool.c) as Float32Arrays over external
// ArrayBuffers: memory that earlier forwards already faulted in, instead of fresh zeroed pages. A block goes back
// to the pool when its ArrayBuffer is finalized (Node runs that from the event loop after garbage collection), so
// no block is handed out while an array over it is reachable. Smaller outputs, and any request the pool declines
// (over RESNET_POOL_MB, live plus idle), get new Float32Array(n). Finalizers never run inside a synchronous loop,
// so such a loop returns nothing to the pool until it yields: the limit bounds it, and ops/recycle.ts (reuse by
// the model itself) is what keeps a steady-state forward from allocating at all.

/** Elements below which alloc() is plain new Float32Array(n) (64 KB). */
const POOL_MIN = 16384;
/** Elements above which alloc() is plain new Float32Array(n) (2 GB, the C side's cap). */
const POOL_MAX = 2 ** 29;
/** Default pool bound: a quarter of physical memory, between 1 GB and 4 GB. A ResNet-50 training step at batch 8
 * keeps ~2.5 GB live; outputs over the bound fall back to fresh (page-faulting) arrays, ~5x slower to first write. */
const POOL_DEFAULT_MB = Math.min(4096, Math.max(1024, Math.floor(totalmem() / 4 / 2 ** 20)));

let poolInfo = '';

/** Apply RESNET_POOL_MB and check that this runtime accepts external array buffers. Returns whether to pool. */
function setupPool(a: Addon): boolean {
  const env = process.env.RESNET_POOL_MB;
  let mb = POOL_DEFAULT_MB, note = '';
  if (env !== undefined && env !== '') {
    const v = Number(env);
    if (Number.isInteger(v) && v >= 0 && v <= 2 ** 20) mb = v;
    else note = `; RESNET_POOL_MB='${env}' is not an integer in [0, 1048576], using ${POOL_DEFAULT_MB}`;
  }
  a.poolSetLimit(mb * 2 ** 20);
  if (mb === 0) {
    poolInfo = 'Float32Array (RESNET_POOL_MB=0 turns the pool off)';
    return false;
  }
  try {
    a.poolProbe(); // one external ArrayBuffer over a static block: the call alloc makes, without using the pool
  } catch (e) {
    poolInfo = `Float32Array (the memory pool is off: ${(e as Error).message})${note}`;
    return false;
  }
  poolInfo = `pool (outputs >= 64 KB reuse 64-byte-aligned native blocks, up to ${mb} MB: RESNET_POOL_MB)${note}`;
  return true;
}

/** A packed copy of one weight tensor, valid for one version, geometry and SIMD level. */
interface PackEntry {
  version: number;
  geometry: string;
  isa: string;
  packed: Float32Array;
}

/** Wrap the addon as a Backend. Exported for tests; loadNative() is the normal way in. */
export function makeNativeBackend(addon: unknown): Backend {
  if (typeof addon !== 'object' || addon === null) throw new Error('the addon exports nothing');
  const missing = ADDON_FUNCTIONS.filter((f) => typeof (addon as Record<string, unknown>)[f] !== 'function');
  if (missing.length) throw new Error(`the addon lacks ${missing.join(', ')}; it is probably stale: rebuild it with \`node scripts/build-native.mjs\``);
  const a = addon as Addon;

  // Parameter blocks reused by every call (the calls are synchronous, so one of each is enough).
  const convP = new Float64Array(16);
  const poolP = new Float64Array(14);
  const packs = new WeakMap<object, PackEntry>();
  // conv2dBackwardData's packing of the same weights (flipped, transposed, per stride phase): a separate cache.
  const bwdPacks = new WeakMap<object, PackEntry>();
  let pooling = setupPool(a);

  function fillConv(p: Conv2dParams): Float64Array {
    convP[0] = p.N; convP[1] = p.C; convP[2] = p.H; convP[3] = p.W;
    convP[4] = p.O; convP[5] = p.KH; convP[6] = p.KW; convP[7] = p.OH; convP[8] = p.OW;
    convP[9] = p.strideH; convP[10] = p.strideW; convP[11] = p.padH; convP[12] = p.padW;
    convP[13] = p.dilationH; convP[14] = p.dilationW; convP[15] = p.groups;
    return convP;
  }

  /** The packed weights for `w` under `pack`, re-packed when the version, the geometry or the SIMD level changed. */
  function packed(w: Float32Array, p: Conv2dParams, params: Float64Array, pack: PackKey): Float32Array {
    const geometry = `${p.O},${p.C / p.groups},${p.KH},${p.KW},${p.groups}`;
    const isa = a.isa();
    const hit = packs.get(pack.key);
    if (hit && hit.version === pack.version && hit.geometry === geometry && hit.isa === isa) return hit.packed;
    return repack(packs, hit, pack, geometry, isa, a.conv2dPackedSize(params), (buf) => a.conv2dPack(params, w, buf));
  }

  /**
   * Pack into the entry's buffer when it has the right size (training bumps every weight's version each step, and
   * fresh memory would cost a page fault per 4 KB), else into a new one.
   */
  function repack(cache: WeakMap<object, PackEntry>, hit: PackEntry | undefined, pack: PackKey, geometry: string, isa: string,
    size: number, fill: (buf: Float32Array) => void): Float32Array {
    const buf = hit && hit.packed.length === size ? hit.packed : new Float32Array(size);
    fill(buf);
    cache.set(pack.key, { version: pack.version, geometry, isa, packed: buf });
    return buf;
  }

  /** The same for conv2dBackwardData, whose packing also depends on stride, padding, dilation and input size. */
  function bwdPacked(w: Float32Array, p: Conv2dParams, params: Float64Array, pack: PackKey): Float32Array {
    const geometry = `${p.O},${p.C / p.groups},${p.KH},${p.KW},${p.groups},${p.H},${p.W},${p.strideH},${p.strideW},` +
      `${p.padH},${p.padW},${p.dilationH},${p.dilationW}`;
    const isa = a.isa();
    const hit = bwdPacks.get(pack.key);
    if (hit && hit.version === pack.version && hit.geometry === geometry && hit.isa === isa) return hit.packed;
    return repack(bwdPacks, hit, pack, geometry, isa, a.conv2dBackwardDataPackedSize(params), (buf) => a.conv2dBackwardDataPack(params, w, buf));
  }

  function fillPool(p: Pool2dParams): Float64Array {
    poolP[0] = p.N; poolP[1] = p.C; poolP[2] = p.H; poolP[3] = p.W; poolP[4] = p.OH; poolP[5] = p.OW;
    poolP[6] = p.KH; poolP[7] = p.KW; poolP[8] = p.strideH; poolP[9] = p.strideW;
    poolP[10] = p.padH; poolP[11] = p.padW; poolP[12] = p.dilationH; poolP[13] = p.dilationW;
    return poolP;
  }

  return {
    name: 'native',
    alloc(n: number): Float32Array {
      if (pooling && n >= POOL_MIN && n <= POOL_MAX && Math.floor(n) === n) {
        try {
          const y = a.alloc(n);
          if (y !== undefined) return y;
        } catch (e) {
          // not expected after the probe in setupPool; stop pooling and say why in backendInfo().native.alloc
          pooling = false;
          poolInfo = `Float32Array (the memory pool failed and was turned off: ${(e as Error).message})`;
          if (cached) cached.info.alloc = poolInfo;
        }
      }
      return new Float32Array(n);
    },
    conv2d(x: Float32Array, w: Float32Array, p: Conv2dParams, ep: Conv2dEpilogue, y: Float32Array, pack?: PackKey): void {
      const params = fillConv(p);
      const pw = pack ? packed(w, p, params, pack) : null;
      a.conv2d(params, x, w, pw, ep.bias, ep.residual, ep.relu, y);
    },
    batchNorm(x, N, C, HW, mean, variance, weight, bias, eps, relu, y): void {
      a.batchNorm(x, N, C, HW, mean, variance, weight, bias, eps, relu, y);
    },
    batchNormStats(x, N, C, HW, mean, variance): void {
      a.batchNormStats(x, N, C, HW, mean, variance);
    },
    maxPool2d(x: Float32Array, p: Pool2dParams, y: Float32Array, indices: Int32Array | null): void {
      a.maxPool2d(fillPool(p), x, y, indices);
    },
    adaptiveAvgPool2d(x, N, C, H, W, OH, OW, y): void {
      a.adaptiveAvgPool2d(x, N, C, H, W, OH, OW, y);
    },
    gemm(transA, transB, M, N, K, alpha, A, B, beta, C): void {
      a.gemm(transA, transB, M, N, K, alpha, A, B, beta, C);
    },
    relu(x, y, n): void {
      a.relu(x, y, n);
    },
    add(x, b, y, n, relu): void {
      a.add(x, b, y, n, relu);
    },
    conv2dBackwardData(dy: Float32Array, w: Float32Array, p: Conv2dParams, dx: Float32Array, pack?: PackKey): void {
      const params = fillConv(p);
      const pw = pack ? bwdPacked(w, p, params, pack) : null;
      a.conv2dBackwardData(params, dy, w, pw, dx);
    },
    conv2dBackwardWeight(x: Float32Array, dy: Float32Array, p: Conv2dParams, dw: Float32Array, db: Float32Array | null): void {
      a.conv2dBackwardWeight(fillConv(p), x, dy, dw, db);
    },
    batchNormBackward(x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias): void {
      a.batchNormBackward(x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias);
    },
    maxPool2dBackward(dy: Float32Array, indices: Int32Array, p: Pool2dParams, dx: Float32Array): void {
      a.maxPool2dBackward(fillPool(p), dy, indices, dx);
    },
    adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, dx): void {
      a.adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, dx);
    },
    reluBackward(dy, y, dx, n): void {
      a.reluBackward(dy, y, dx, n);
    },
    sgdStep(p, g, buf, n, o): void {
      a.sgdStep(p, g, buf, n, o.lr, o.momentum, o.dampening, o.weightDecay, o.nesterov, o.maximize, o.first);
    },
    adamwStep(p, g, m, v, vmax, n, o): void {
      a.adamwStep(p, g, m, v, vmax, n, o.lr, o.beta1, o.beta2, o.eps, o.weightDecay, o.stepSize, o.biasCorrection2Sqrt, o.maximize);
    },
    numThreads: () => a.numThreads(),
    setNumThreads(n: number): void {
      a.setNumThreads(Math.max(1, Math.min(Math.floor(n), a.numCores() * 2)));
    },
  };
}

// Output buffers for the ops, and their recycling by inference code that knows when a tensor is dead.
//
// Every op that fully writes its output takes it from outputBuffer(n): an array handed back with recycle() if one
// of that length is waiting, else getBackend().alloc(n). Without recycling, an output lives until garbage
// collection finds it, and a batch-8 ResNet-50 forward allocates ~350 MB of them: V8 answers with a mark-compact
// per 64 MB (about 10 GC events and 25 ms per forward), and only then can the native pool take the blocks back.
// The torchvision ResNet forward recycles each intermediate right after its last use (models/resnet.ts), so in
// steady state a forward allocates almost nothing and reuses the same warm arrays.
//
// Training recycles too. A tensor whose storage an autograd node saved (an activation backward will read) is not
// taken when recycle() is called but marked, and joins the free lists when the last node that saved it is freed by
// backward(); so the forward's activations become the backward's gradients, which become the next forward's
// activations, without the garbage collector in between. backward() also hands over every gradient it has
// finished with (tensor/autograd.ts setGradDone; installed by ops/grad.ts).
//
// recycle(t) is a promise by the caller that no tensor other than t (and t itself, which the caller drops) can
// reach t's storage, now or later, except the autograd nodes that saved it. Only call it on tensors the caller
// created through ops and never passed to code that could keep them. Misuse would hand the storage to a later op
// while something still reads it.

import type { Tensor } from '../tensor/tensor.js';
import { isSavedStorage, setStorageReleased } from '../tensor/autograd.js';
import { getBackend } from '../backend/select.js';

/** Smallest array worth keeping (64 KB); smaller outputs come and go through the JS heap cheaply. */
const MIN_ELEMS = 16384;
/** Bytes the free lists may hold by default (setRecycleLimit changes it); past it, other sizes are dropped first. */
const DEFAULT_MAX_BYTES = 1024 * 2 ** 20;

const free = new Map<number, Float32Array[]>();
/** Arrays now in a free list: recycling one twice must not put it there twice. */
const waiting = new WeakSet<Float32Array>();
/** Arrays recycled while a live autograd node still saves them: they join a free list when it is freed. */
const deferred = new WeakSet<object>();
let freeBytes = 0;
let maxBytes = DEFAULT_MAX_BYTES;

/** Storage for n float32 values that the caller will fully write before reading; contents unspecified. */
export function outputBuffer(n: number): Float32Array {
  const list = free.get(n);
  if (list !== undefined && list.length > 0) {
    const a = list.pop()!;
    waiting.delete(a);
    freeBytes -= a.byteLength;
    return a;
  }
  return getBackend().alloc(n);
}

/**
 * Give t's storage to later outputs of the same size. The caller guarantees t is dead (see the file comment).
 * Storage that an autograd node saved is taken once backward has freed that node (never while backward may read
 * it); a leaf tensor that requires grad (a parameter) is never taken.
 */
export function recycle(t: Tensor): void {
  const d = t.data;
  if (!(d instanceof Float32Array) || d.length < MIN_ELEMS || t.offset !== 0 || d.length !== t.numel) return;
  if (t.requiresGrad && t.gradFn === null) return;
  if (isSavedStorage(d)) deferred.add(d);
  else recycleArray(d);
}

/**
 * Give a float32 array to later outputs of its length: the caller guarantees that nothing can reach it any more
 * (for buffers an op made and used internally, and for gradients backward has finished with).
 */
export function recycleArray(d: Float32Array): void {
  if (d.length < MIN_ELEMS || isSavedStorage(d)) return;
  if (d.byteOffset !== 0 || d.buffer.byteLength !== d.byteLength || waiting.has(d)) return; // must own its buffer
  if (freeBytes + d.byteLength > maxBytes) {
    // make room by dropping the other sizes (the workload changed shape); if that is not enough, drop d instead
    for (const [n, list] of free) {
      if (n === d.length) continue;
      for (const a of list) {
        waiting.delete(a);
        freeBytes -= a.byteLength;
      }
      free.delete(n);
    }
    if (freeBytes + d.byteLength > maxBytes) return;
  }
  let list = free.get(d.length);
  if (list === undefined) free.set(d.length, (list = []));
  list.push(d);
  waiting.add(d);
  freeBytes += d.byteLength;
}

setStorageReleased((s) => {
  if (!deferred.has(s)) return;
  deferred.delete(s);
  recycleArray(s as Float32Array);
});

/** Drop every recycled array (they go to the garbage collector, and from there back to the native pool). */
export function clearRecycled(): void {
  for (const list of free.values()) for (const a of list) waiting.delete(a);
  free.clear();
  freeBytes = 0;
}

/** Bytes held for reuse by the free lists. */
export function recycledBytes(): number {
  return freeBytes;
}

/** Set the bytes the free lists may hold (default 1024 MB); returns the previous limit. */
export function setRecycleLimit(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`setRecycleLimit: bytes must be a number >= 0 (got ${bytes})`);
  const prev = maxBytes;
  maxBytes = bytes;
  if (freeBytes > maxBytes) clearRecycled();
  return prev;
}

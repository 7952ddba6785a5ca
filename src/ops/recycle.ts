// Output buffers for the ops, and their recycling by inference code that knows when a tensor is dead.
//
// Every op that fully writes its output takes it from outputBuffer(n): an array handed back with recycle() if one
// of that length is waiting, else getBackend().alloc(n). Without recycling, an output lives until garbage
// collection finds it, and a batch-8 ResNet-50 forward allocates ~350 MB of them: V8 answers with a mark-compact
// per 64 MB (about 10 GC events and 25 ms per forward), and only then can the native pool take the blocks back.
// The torchvision ResNet forward recycles each intermediate right after its last use (models/resnet.ts), so in
// steady state a forward allocates almost nothing and reuses the same warm arrays.
//
// recycle(t) is a promise by the caller that no tensor other than t (and t itself, which the caller drops) can
// reach t's storage, now or later. Only call it on tensors the caller created through ops and never passed to
// code that could keep them. Misuse would hand the storage to a later op while something still reads it.

import type { Tensor } from '../tensor/tensor.js';
import { isSavedStorage } from '../tensor/autograd.js';
import { getBackend } from '../backend/select.js';

/** Smallest array worth keeping (64 KB); smaller outputs come and go through the JS heap cheaply. */
const MIN_ELEMS = 16384;
/** Bytes the free lists may hold; past it they are dropped (to the garbage collector, then the native pool). */
const MAX_BYTES = 512 * 2 ** 20;

const free = new Map<number, Float32Array[]>();
/** Arrays now in a free list: recycling one twice must not put it there twice. */
const waiting = new WeakSet<Float32Array>();
let freeBytes = 0;

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
 * A tensor in a recorded graph, or whose storage an autograd node saved, is never taken: backward still reads it.
 */
export function recycle(t: Tensor): void {
  const d = t.data;
  if (!(d instanceof Float32Array) || d.length < MIN_ELEMS || t.offset !== 0 || d.length !== t.numel) return;
  if (t.requiresGrad || isSavedStorage(d)) return;
  if (d.byteOffset !== 0 || d.buffer.byteLength !== d.byteLength || waiting.has(d)) return; // must own its buffer
  if (freeBytes + d.byteLength > MAX_BYTES) clearRecycled();
  let list = free.get(d.length);
  if (list === undefined) free.set(d.length, (list = []));
  list.push(d);
  waiting.add(d);
  freeBytes += d.byteLength;
}

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

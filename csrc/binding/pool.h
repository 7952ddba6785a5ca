// pool.h: a process-wide pool of large, page-aligned memory blocks for op outputs (see pool.c). No N-API here;
// napi.c hands the blocks to JavaScript as external ArrayBuffers and returns them from their finalizers.

#ifndef RESNET_POOL_H
#define RESNET_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct pool_stats {
  uint64_t limit;      // bytes the pool may manage (live + idle); 0 disables it
  uint64_t live;       // bytes handed out and not yet returned
  uint64_t idle;       // bytes kept for reuse
  uint64_t hits;       // pool_get served from an idle block
  uint64_t misses;     // pool_get that mapped a new block
  uint64_t refusals;   // pool_get that returned NULL (over the limit, or mapping failed)
  uint64_t evictions;  // idle blocks unmapped to make room or to respect the limit
} pool_stats;

/**
 * A block of at least `bytes` bytes (64-byte aligned; page aligned in fact; 2 MB aligned from 2 MB up, with
 * transparent huge pages requested), or NULL when the pool would exceed its limit or the system is out of memory.
 * Contents are unspecified. *mapped receives the block's real size, which pool_put needs back.
 */
void *pool_get(size_t bytes, size_t *mapped);
/** Return a block from pool_get (idle for reuse, or unmapped when over the limit). */
void pool_put(void *block, size_t mapped);
/** Count a block from pool_get as lost (never returned); keeps the accounting right after a failed hand-off. */
void pool_forget(size_t mapped);
/** Change the limit (bytes); idle blocks beyond it are unmapped. */
void pool_set_limit(uint64_t bytes);
/** Unmap every idle block. */
void pool_trim(void);
void pool_get_stats(pool_stats *s);

/**
 * A fresh zero-filled block of at least `bytes` bytes outside the pool (not counted, never reused), with pool_get's
 * alignment and huge-page advice; NULL when bytes is 0 or above 2^40, or the system is out of memory. For memory
 * whose lifetime its owner decides (a file read whole). *mapped receives the size pages_free needs back.
 */
void *pages_alloc(size_t bytes, size_t *mapped);
void pages_free(void *block, size_t mapped);

#endif  // RESNET_POOL_H

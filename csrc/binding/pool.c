// pool.c: reusable memory for op outputs.
//
// Why: a fresh large allocation (calloc -> mmap) costs one page fault per 4 KB on first write, several
// microseconds each in a VM, so an op that writes a new 25 MB output spends more time faulting than computing.
// A network asks for the same sizes on every forward, so blocks are kept by exact (page-rounded) size and handed
// out again once JavaScript has dropped them (napi.c returns them from the ArrayBuffer finalizer).
//
// - Blocks come from mmap (never from malloc, so glibc's settings are untouched): page aligned, and 2 MB aligned
//   with MADV_HUGEPAGE from 2 MB up, which turns 512 faults into one when the kernel has huge pages to give.
// - One limit bounds everything the pool manages, live (handed out) plus idle. A miss that would pass it first
//   unmaps idle blocks of other sizes, least recently used size first; if that is not enough, pool_get returns
//   NULL and the caller falls back to an ordinary allocation. Node runs ArrayBuffer finalizers from the event loop
//   (not inside GC), so a synchronous loop of forwards returns nothing until it yields: the limit is what keeps
//   that case from growing without bound.
// - Idle blocks of one size form a LIFO stack (the most recently used block is the warmest), linked through
//   their first word. A mutex guards everything (alloc and finalizers run on JS threads; there may be several).

#define _GNU_SOURCE
#include "pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define MAX_CLASSES 256
#define DEFAULT_LIMIT ((uint64_t)1024 << 20)

typedef struct {
  size_t size;    // block size in bytes (page multiple); 0 = free slot
  void *head;     // idle blocks, linked through their first word
  uint64_t count; // idle blocks in this class
  uint64_t used;  // tick of the last get or put, for LRU eviction
} size_class;

static struct {
  pthread_mutex_t mu;
  size_class cls[MAX_CLASSES];
  int ncls;
  uint64_t tick;
  size_t page;
  pool_stats st;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .st = {.limit = DEFAULT_LIMIT}};

static void *map_block(size_t size) {
  if (size >= HUGE_PAGE) {
    // Over-map by 2 MB and trim to a 2 MB aligned start, so every whole 2 MB extent can be a huge page.
    size_t span = size + HUGE_PAGE;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + span > a + size) munmap(a + size, (size_t)(p + span - (a + size)));
#ifdef MADV_HUGEPAGE
    madvise(a, size, MADV_HUGEPAGE);
#endif
    return a;
  }
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void unmap_block(void *b, size_t size) { munmap(b, size); }

static size_class *find(size_t size) {
  for (int i = 0; i < P.ncls; i++)
    if (P.cls[i].size == size) return &P.cls[i];
  return NULL;
}

static size_class *find_or_add(size_t size) {
  size_class *c = find(size);
  if (c) return c;
  for (int i = 0; i < P.ncls; i++)  // reuse the slot of a size that has no idle block
    if (P.cls[i].count == 0) {
      P.cls[i].size = size;
      return &P.cls[i];
    }
  if (P.ncls == MAX_CLASSES) return NULL;
  c = &P.cls[P.ncls++];
  *c = (size_class){.size = size};
  return c;
}

/** Unmap one idle block of the least recently used size; 0 when there is none. */
static int evict_one(void) {
  size_class *lru = NULL;
  for (int i = 0; i < P.ncls; i++)
    if (P.cls[i].count && (!lru || P.cls[i].used < lru->used)) lru = &P.cls[i];
  if (!lru) return 0;
  void *b = lru->head;
  lru->head = *(void **)b;
  lru->count--;
  P.st.idle -= lru->size;
  P.st.evictions++;
  unmap_block(b, lru->size);
  return 1;
}

void *pool_get(size_t bytes, size_t *mapped) {
  if (!P.page) {
    long ps = sysconf(_SC_PAGESIZE);
    P.page = ps > 0 ? (size_t)ps : 4096;  // benign race: every thread computes the same value
  }
  if (bytes == 0 || bytes > ((size_t)1 << 40)) return NULL;
  size_t size = (bytes + P.page - 1) & ~(P.page - 1);
  pthread_mutex_lock(&P.mu);
  size_class *c = find(size);
  if (c && c->head) {
    void *b = c->head;
    c->head = *(void **)b;
    c->count--;
    c->used = ++P.tick;
    P.st.idle -= size;
    P.st.live += size;
    P.st.hits++;
    pthread_mutex_unlock(&P.mu);
    *mapped = size;
    return b;
  }
  while (P.st.live + P.st.idle + size > P.st.limit && evict_one()) {}
  if (P.st.live + P.st.idle + size > P.st.limit) {
    P.st.refusals++;
    pthread_mutex_unlock(&P.mu);
    return NULL;
  }
  P.st.live += size;  // reserve before mapping, outside the lock
  P.st.misses++;
  pthread_mutex_unlock(&P.mu);
  void *b = map_block(size);
  if (!b) {
    pthread_mutex_lock(&P.mu);
    P.st.live -= size;
    P.st.misses--;
    P.st.refusals++;
    pthread_mutex_unlock(&P.mu);
    return NULL;
  }
  *mapped = size;
  return b;
}

void pool_put(void *b, size_t size) {
  pthread_mutex_lock(&P.mu);
  P.st.live -= size;
  size_class *c = P.st.live + P.st.idle + size <= P.st.limit ? find_or_add(size) : NULL;
  if (!c) {
    P.st.evictions++;
    pthread_mutex_unlock(&P.mu);
    unmap_block(b, size);
    return;
  }
  *(void **)b = c->head;
  c->head = b;
  c->count++;
  c->used = ++P.tick;
  P.st.idle += size;
  pthread_mutex_unlock(&P.mu);
}

void pool_set_limit(uint64_t bytes) {
  pthread_mutex_lock(&P.mu);
  P.st.limit = bytes;
  while (P.st.live + P.st.idle > P.st.limit && evict_one()) {}
  pthread_mutex_unlock(&P.mu);
}

void pool_trim(void) {
  pthread_mutex_lock(&P.mu);
  while (evict_one()) {}
  pthread_mutex_unlock(&P.mu);
}

void pool_get_stats(pool_stats *s) {
  pthread_mutex_lock(&P.mu);
  *s = P.st;
  pthread_mutex_unlock(&P.mu);
}

void *pages_alloc(size_t bytes, size_t *mapped) {
  long ps = sysconf(_SC_PAGESIZE);
  size_t page = ps > 0 ? (size_t)ps : 4096;
  if (bytes == 0 || bytes > ((size_t)1 << 40)) return NULL;
  size_t size = (bytes + page - 1) & ~(page - 1);
  void *b = map_block(size);  // fresh anonymous pages read as zeros
  if (b) *mapped = size;
  return b;
}

void pages_free(void *block, size_t mapped) { unmap_block(block, mapped); }

// threadpool.c: a persistent pool of pthreads (the caller's thread is thread 0) for the kernels, plus per-thread
// scratch buffers. Not OpenMP and not libuv's pool (that one is shared with fs and DNS work).
//
// One job at a time: dl_parallel publishes (fn, ctx, nth) by bumping a generation counter, runs ith 0 itself,
// then waits until every worker has finished. Waiting spins first (a cross-core round trip is ~0.5 us on a quiet
// VM, PERFORMANCE.md §5) and then sleeps on a condition variable, both for workers waiting for a job and for the
// caller waiting for workers. The spin/sleep hand-off is the Dekker pattern on seq_cst atomics: the side that goes
// to sleep announces it and re-checks under the mutex; the other side publishes and then checks the announcement.
// Workers set FTZ/DAZ once (the caller's thread gets them per call in dispatch.c).

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "kernels/kernels.h"

// Spin budgets, in nanoseconds: workers keep spinning this long after a job for the next one (ops of a network
// come back to back); the caller spins this long for stragglers before sleeping.
#define WORKER_SPIN_NS 200000
#define CALLER_SPIN_NS 2000000

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake;   // workers: a new generation was published
  pthread_cond_t done;   // caller: pending reached 0
  atomic_uint gen;
  atomic_int pending;
  atomic_int sleepers;   // workers blocked on `wake`
  atomic_int caller_asleep;
  atomic_flag busy;      // one job at a time (several JS threads may share the addon)
  dl_task_fn fn;
  void *ctx;
  int nth;
  int nworkers;          // started worker threads (never shrinks)
  int nthreads;          // configured thread count, caller included
} pool = {
  .mu = PTHREAD_MUTEX_INITIALIZER,
  .wake = PTHREAD_COND_INITIALIZER,
  .done = PTHREAD_COND_INITIALIZER,
  .busy = ATOMIC_FLAG_INIT,
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void set_ftz_daz(void) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}

/**
 * One step of a bounded spin: pause, and every 256 steps check the clock; past 20 us also yield the CPU (cheap
 * when nothing else wants it; lets a thread that shares this core run). Returns 0 once budget_ns has passed.
 */
static int spin_step(unsigned i, int64_t *t0, int64_t budget_ns) {
  cpu_relax();
  if ((i & 255) != 0) return 1;
  int64_t t = now_ns();
  if (*t0 == 0) *t0 = t;
  if (t - *t0 > 20000) sched_yield();
  return t - *t0 <= budget_ns;
}

/** Spin until pool.gen changes from `seen` (returns 1) or `budget_ns` passes (returns 0). */
static int spin_while_gen(unsigned seen, int64_t budget_ns) {
  int64_t t0 = 0;
  for (unsigned i = 1;; i++) {
    if (atomic_load(&pool.gen) != seen) return 1;
    if (!spin_step(i, &t0, budget_ns)) return 0;
  }
}

// The generation current when worker i was started: it must not read pool.gen itself, because the job that
// started it may already be published by the time it runs.
static unsigned start_gen[DL_MAX_THREADS];

// CPU placement. This VM's scheduler packs runnable threads onto one vCPU (kernel option sched_vcpu_pack): left
// alone, the worker and the caller time-slice one core and 2 threads run 2x slower than 1 (measured). So workers
// are pinned, each to a CPU other than the one the caller runs on now; the caller (the Node main thread) is never
// pinned. dl_parallel re-reads the caller's CPU (sched_getcpu, a vDSO call) and bumps pin_gen when it moved;
// each worker re-pins itself at its next job.
static atomic_int caller_cpu = -1;
static atomic_uint pin_gen;

/** The ith CPU (ith >= 1) of this process's allowed set, skipping the caller's; -1 if there is none. */
static int cpu_for_worker(int ith, int skip) {
#ifdef CPU_COUNT
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  int n = CPU_COUNT(&allowed) - (skip >= 0 && CPU_ISSET(skip, &allowed));
  if (n <= 0) return -1;
  int want = (ith - 1) % n;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &allowed) || cpu == skip) continue;
    if (seen++ == want) return cpu;
  }
#else
  (void)ith, (void)skip;
#endif
  return -1;
}

static void pin_self(int ith) {
#ifdef CPU_COUNT
  int cpu = cpu_for_worker(ith, atomic_load(&caller_cpu));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) CPU_SET(cpu, &set);
  else if (sched_getaffinity(0, sizeof set, &set) != 0) return;
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
#else
  (void)ith;
#endif
}

/** Called by dl_parallel: note the caller's CPU; workers re-pin when it changed. */
static void track_caller_cpu(void) {
#ifdef CPU_COUNT
  int cpu = sched_getcpu();
  if (cpu >= 0 && cpu != atomic_load(&caller_cpu)) {
    atomic_store(&caller_cpu, cpu);
    atomic_fetch_add(&pin_gen, 1);
  }
#endif
}

static void *worker_main(void *arg) {
  int ith = (int)(intptr_t)arg;
  set_ftz_daz();
  unsigned seen = start_gen[ith], pinned = atomic_load(&pin_gen) - 1;
  for (;;) {
    if (!spin_while_gen(seen, WORKER_SPIN_NS)) {
      pthread_mutex_lock(&pool.mu);
      atomic_fetch_add(&pool.sleepers, 1);
      while (atomic_load(&pool.gen) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
      atomic_fetch_sub(&pool.sleepers, 1);
      pthread_mutex_unlock(&pool.mu);
    }
    seen = atomic_load(&pool.gen);
    if (atomic_load(&pin_gen) != pinned) {
      pinned = atomic_load(&pin_gen);
      pin_self(ith);
    }
    if (ith < pool.nth) pool.fn(pool.ctx, ith, pool.nth);
    if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.caller_asleep)) {
      pthread_mutex_lock(&pool.mu);
      pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mu);
    }
  }
  return NULL;
}

int dl_num_cores(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int dl_num_threads(void) {
  if (pool.nthreads == 0) {
    int n = dl_num_cores();
    pool.nthreads = n < DL_MAX_THREADS ? n : DL_MAX_THREADS;
  }
  return pool.nthreads;
}

void dl_set_num_threads(int n) {
  pool.nthreads = n < 1 ? 1 : n > DL_MAX_THREADS ? DL_MAX_THREADS : n;
}

/** Start workers 1..n-1 if they are not running yet; returns how many threads can take part. */
static int ensure_workers(int n) {
  while (pool.nworkers + 1 < n) {
    pthread_t t;
    pthread_attr_t attr;
    start_gen[pool.nworkers + 1] = atomic_load(&pool.gen);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)(pool.nworkers + 1)) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) break;
    pool.nworkers++;
  }
  return pool.nworkers + 1 < n ? pool.nworkers + 1 : n;
}

void dl_parallel(dl_task_fn fn, void *ctx, int nth) {
  int max = dl_num_threads();
  if (nth > max) nth = max;
  if (nth <= 1 || atomic_flag_test_and_set(&pool.busy)) {
    fn(ctx, 0, 1);
    return;
  }
  track_caller_cpu();
  nth = ensure_workers(nth);
  if (nth <= 1) {
    atomic_flag_clear(&pool.busy);
    fn(ctx, 0, 1);
    return;
  }
  // Every started worker wakes for every job (those with ith >= nth just check in), so `pending` counts them all.
  pool.fn = fn;
  pool.ctx = ctx;
  pool.nth = nth;
  atomic_store(&pool.pending, pool.nworkers);
  atomic_fetch_add(&pool.gen, 1);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.mu);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mu);
  }
  fn(ctx, 0, nth);
  int64_t t0 = 0;
  for (unsigned i = 1; atomic_load(&pool.pending) > 0; i++)
    if (!spin_step(i, &t0, CALLER_SPIN_NS)) break;
  if (atomic_load(&pool.pending) > 0) {
    pthread_mutex_lock(&pool.mu);
    atomic_store(&pool.caller_asleep, 1);
    while (atomic_load(&pool.pending) > 0) pthread_cond_wait(&pool.done, &pool.mu);
    atomic_store(&pool.caller_asleep, 0);
    pthread_mutex_unlock(&pool.mu);
  }
  atomic_flag_clear(&pool.busy);
}

// ---- per-thread scratch ----------------------------------------------------------------------------------------

typedef struct {
  void *p[DL_SCRATCH_SLOTS];
  size_t cap[DL_SCRATCH_SLOTS];
} scratch_t;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
  scratch_t *s = v;
  for (int i = 0; i < DL_SCRATCH_SLOTS; i++) free(s->p[i]);
  free(s);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

void *dl_scratch(int slot, size_t bytes) {
  pthread_once(&scratch_once, scratch_init);
  scratch_t *s = pthread_getspecific(scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) abort();
    pthread_setspecific(scratch_key, s);
  }
  if (s->cap[slot] < bytes) {
    free(s->p[slot]);
    size_t cap = (bytes + 63) / 64 * 64;
    cap += cap / 4;  // some headroom so alternating layer sizes do not reallocate every call
    s->p[slot] = aligned_alloc(64, (cap + 63) / 64 * 64);
    if (!s->p[slot]) abort();
    s->cap[slot] = cap;
  }
  return s->p[slot];
}

// gemm.c: the blocked GEMM that convolution (conv.c) and dl_gemm share, and dl_gemm itself.
//
// C (M, J) = A (M, K) x B (K, J), BLIS-style: A is packed into row panels of MR rows ([K][MR], broadcast one
// scalar at a time), B into column tiles of NR = NV*VL columns ([KC][NR], loaded as NV vectors). The microkernel
// keeps an MR x NR tile of C in MR*NV vector registers (AVX-512: 8 x 48 = 24 zmm) and does MR*NV FMAs per k with
// NV vector loads and MR broadcasts. MR = 8 divides every ResNet channel count (64..2048) and 48 columns keep the
// 24 accumulators of PERFORMANCE.md §4.2; AVX2 uses 6 x 16 (12 ymm), 128-bit SIMD 6 x 8, scalar 4 x 2. The
// column count is (image, pixel) flattened, so tails are rare at batch > 1.
//
// Loops, outer to inner: this thread's column chunks of NCT tiles (its B chunk stays in L2) -> K blocks of
// <= KC_MAX (an A panel, MR x KC, stays in L1) -> row panels -> column tiles. Between K blocks the partial sums
// live in a dense per-thread buffer ([panel][tile][MR][NR], next to the B chunk in L2), not in C: C's rows are
// far apart and may straddle images, so C is written exactly once, by the last K block, with the epilogue
// (bias, residual or gemm's beta*C, relu) applied as the tile leaves the registers.
//
// A is (M,K), B is (K,J), C is (M,J) per group (see dl_gemm_job in kernels.h for the C layout).

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../simd.h"
#include "kernels.h"

#define MR DL_MR
#define NV DL_NV
#define NR (NV * DL_VL)
#define KC_MAX 512             // one A panel (MR x KC floats = 16 KB) in L1
#define L2_BYTES (512 << 10)   // one thread's B chunk and partial sums of C in L2 (1 MB per core)

int64_t dl_gemm_mr(void) { return MR; }
int64_t dl_gemm_nr(void) { return NR; }

typedef struct {
  const float *cin;    // partial sums to add (dense MR x NR tile), or NULL
  float *out;          // where the tile goes
  int64_t ldo;         // row stride of out (and of res)
  int last;            // 0: store raw sums; 1: apply the epilogue below
  int relu;
  const float *bias;   // MR row values, or NULL
  const float *res;    // tile added as rscale * res (residual, or gemm's C), or NULL; may alias out
  float rscale;
} tile_io;

// out (MR x nv*VL) = epilogue(cin + sum_k a[k*MR + i] * b[k*ldb + :]).
DL_INLINE void ukernel(const int nv, int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb,
                       const tile_io *io) {
  const int64_t ldo = io->ldo;
  float *out = io->out;
  // The output tile (and the residual) are touched only after the k loop: start fetching them now. Their rows
  // lie far apart (one per output channel), which the hardware prefetchers do not follow.
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
      __builtin_prefetch(out + i * ldo + v * DL_VL, 1, 3);
      if (io->res) __builtin_prefetch(io->res + i * ldo + v * DL_VL, 0, 3);
    }
  }
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) acc[i][v] = vf_zero();
  for (int64_t k = 0; k < kc; k++) {
    vf bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) bv[v] = vf_load(b + v * DL_VL);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) acc[i][v] = a[i] * bv[v] + acc[i][v];
    a += MR;
    b += ldb;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) {
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
      vf r = acc[i][v];
      if (io->cin) r += vf_load(io->cin + i * NR + v * DL_VL);
      if (io->last) {
        if (io->bias) r += io->bias[i];
        if (io->res) r += io->rscale * vf_load(io->res + i * ldo + v * DL_VL);
        if (io->relu) r = vf_relu(r);
      }
      vf_store(out + i * ldo + v * DL_VL, r);
    }
  }
}

typedef void (*ukernel_fn)(int64_t, const float *, const float *, int64_t, const tile_io *);
#define UKERNEL_NV(n)                                                                                        \
  static void ukernel_##n(int64_t kc, const float *a, const float *b, int64_t ldb, const tile_io *io) {      \
    ukernel(n, kc, a, b, ldb, io);                                                                           \
  }
UKERNEL_NV(1)
#if NV >= 2
UKERNEL_NV(2)
#endif
#if NV >= 3
UKERNEL_NV(3)
#endif
#if NV >= 4
UKERNEL_NV(4)
#endif
static const ukernel_fn ukernels[5] = {
  NULL, ukernel_1,
#if NV >= 2
  ukernel_2,
#endif
#if NV >= 3
  ukernel_3,
#endif
#if NV >= 4
  ukernel_4,
#endif
};

void dl_gemm_tile(int nv, int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc,
                  int accumulate) {
  tile_io io = {NULL, c, ldc, 1, 0, NULL, accumulate ? c : NULL, 1.0f};
  ukernels[nv](kc, a, b, ldb, &io);
}

// The same tile with A read in place: row i is rows[i][0..kc) (a row of dy or x), broadcast one k at a time.
DL_INLINE void ukernel_rows(const int nv, int64_t kc, const float *const *rows, const float *restrict b, int64_t ldb,
                            float *c, int64_t ldc, int accumulate) {
  const float *r[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++) r[i] = rows[i];
  vf acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) acc[i][v] = vf_zero();
  for (int64_t k = 0; k < kc; k++) {
    vf bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) bv[v] = vf_load(b + v * DL_VL);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
      for (int v = 0; v < nv; v++) acc[i][v] = r[i][k] * bv[v] + acc[i][v];
    b += ldb;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++) {
      vf o = acc[i][v];
      if (accumulate) o += vf_load(c + i * ldc + v * DL_VL);
      vf_store(c + i * ldc + v * DL_VL, o);
    }
}

typedef void (*ukernel_rows_fn)(int64_t, const float *const *, const float *, int64_t, float *, int64_t, int);
#define UKERNEL_ROWS_NV(n)                                                                                   \
  static void ukernel_rows_##n(int64_t kc, const float *const *rows, const float *b, int64_t ldb, float *c,  \
                               int64_t ldc, int accumulate) {                                                \
    ukernel_rows(n, kc, rows, b, ldb, c, ldc, accumulate);                                                   \
  }
UKERNEL_ROWS_NV(1)
#if NV >= 2
UKERNEL_ROWS_NV(2)
#endif
#if NV >= 3
UKERNEL_ROWS_NV(3)
#endif
#if NV >= 4
UKERNEL_ROWS_NV(4)
#endif
static const ukernel_rows_fn ukernels_rows[5] = {
  NULL, ukernel_rows_1,
#if NV >= 2
  ukernel_rows_2,
#endif
#if NV >= 3
  ukernel_rows_3,
#endif
#if NV >= 4
  ukernel_rows_4,
#endif
};

void dl_gemm_tile_rows(int nv, int64_t kc, const float *const *rows, const float *b, int64_t ldb, float *c,
                       int64_t ldc, int accumulate) {
  ukernels_rows[nv](kc, rows, b, ldb, c, ldc, accumulate);
}

void dl_gemm_pack_a(int64_t M, int64_t K, const float *a, int64_t rs, int64_t cs, float alpha, float *ap) {
  for (int64_t m0 = 0; m0 < M; m0 += MR) {
    int64_t mr = M - m0 < MR ? M - m0 : MR;
    float *dst = ap + m0 * K;
    for (int64_t k = 0; k < K; k++) {
      for (int64_t i = 0; i < mr; i++) dst[k * MR + i] = alpha * a[(m0 + i) * rs + k * cs];
      for (int64_t i = mr; i < MR; i++) dst[k * MR + i] = 0;
    }
  }
}

// ---- driver ---------------------------------------------------------------------------------------------------

typedef struct {
  const dl_gemm_job *job;
  int64_t nmp, nt;      // row panels per group, column tiles per group
  int64_t kc, nkb, nct; // K block, K blocks, tiles per column chunk
  int tm, nth;          // thread grid: tm row groups x (nth / tm) column groups
  atomic_llong next_chunk;
} plan_t;

/** Vectors of work in column tiles [t0, t1) (flattened over groups; a group's last tile may be narrow). */
static int64_t tile_vectors(const plan_t *pl, int64_t t0, int64_t t1) {
  int64_t nt = pl->nt, J = pl->job->J;
  int64_t last_nv = (J - (nt - 1) * NR + DL_VL - 1) / DL_VL;
  int64_t lasts = t1 / nt - t0 / nt;  // tiles t in [t0, t1) with t % nt == nt - 1
  return (t1 - t0 - lasts) * NV + lasts * last_nv;
}

/**
 * Last K block of one tile at row m0 (mr valid rows), column j0 (nr valid columns) of group g: sums (cin + this
 * block) plus the epilogue go to C. Clean tiles are written in place; tiles that are partial or straddle two
 * images go through a dense copy.
 */
static void finish_tile(const plan_t *pl, int64_t g, int64_t m0, int64_t mr, int64_t j0, int64_t nr, int64_t kc,
                        const float *a, const float *b, int64_t ldb, tile_io io) {
  const dl_gemm_job *jb = pl->job;
  int64_t n0 = j0 / jb->jp, p0 = j0 % jb->jp;
  int64_t cbase = g * jb->c_gs + m0 * jb->ldc;
  io.last = 1;
  io.relu = jb->relu;
  io.rscale = jb->res_scale;
  if (mr == MR && nr == NR && p0 + NR <= jb->jp) {
    int64_t off = cbase + n0 * jb->c_ns + p0;
    io.out = jb->c + off;
    io.ldo = jb->ldc;
    io.res = jb->res ? jb->res + off : NULL;
    ukernels[NV](kc, a, b, ldb, &io);
    return;
  }
  float tmp[MR * NR], rtmp[MR * NR], btmp[MR];
  int64_t off[NR];
  for (int64_t jj = 0; jj < nr; jj++) off[jj] = ((j0 + jj) / jb->jp) * jb->c_ns + (j0 + jj) % jb->jp;
  if (jb->res) {
    for (int64_t i = 0; i < MR; i++)
      for (int64_t jj = 0; jj < NR; jj++)
        rtmp[i * NR + jj] = i < mr && jj < nr ? jb->res[cbase + i * jb->ldc + off[jj]] : 0.0f;
    io.res = rtmp;
  }
  if (io.bias && mr < MR) {
    for (int64_t i = 0; i < MR; i++) btmp[i] = i < mr ? io.bias[i] : 0;
    io.bias = btmp;
  }
  io.out = tmp;
  io.ldo = NR;
  ukernels[(nr + DL_VL - 1) / DL_VL](kc, a, b, ldb, &io);
  for (int64_t i = 0; i < mr; i++)
    for (int64_t jj = 0; jj < nr; jj++) jb->c[cbase + i * jb->ldc + off[jj]] = tmp[i * NR + jj];
}

/** Column tiles [cs, ce) of group g, rows panels [mp0, mp1): every K block, packing B once per block. */
static void do_chunk(const plan_t *pl, int64_t g, int64_t cs, int64_t ce, int64_t mp0, int64_t mp1, float *bbuf,
                     float *cbuf) {
  const dl_gemm_job *jb = pl->job;
  const float *bp[pl->nct];
  int64_t ldb[pl->nct];
  for (int64_t kb = 0; kb < pl->nkb; kb++) {
    int64_t k0 = kb * pl->kc, kc = jb->K - k0 < pl->kc ? jb->K - k0 : pl->kc;
    for (int64_t tt = cs; tt < ce; tt++) {
      int64_t j0 = (tt - g * pl->nt) * NR, nr = jb->J - j0 < NR ? jb->J - j0 : NR;
      bp[tt - cs] = jb->get_b(jb->bctx, g, j0, nr, k0, kc, bbuf + (tt - cs) * pl->kc * NR, &ldb[tt - cs]);
    }
    const int last = kb == pl->nkb - 1;
    for (int64_t mp = mp0; mp < mp1; mp++) {
      int64_t m0 = mp * MR, mr = jb->M - m0 < MR ? jb->M - m0 : MR;
      const float *a = jb->ap + ((g * pl->nmp + mp) * jb->K + k0) * MR;
      const float *bias = last && jb->bias ? jb->bias + g * jb->M + m0 : NULL;
      for (int64_t tt = cs; tt < ce; tt++) {
        int64_t j0 = (tt - g * pl->nt) * NR, nr = jb->J - j0 < NR ? jb->J - j0 : NR;
        float *part = cbuf + ((mp - mp0) * pl->nct + (tt - cs)) * MR * NR;
        tile_io io = {kb > 0 ? part : NULL, part, NR, 0, 0, bias, NULL, 1.0f};
        if (last) finish_tile(pl, g, m0, mr, j0, nr, kc, a, bp[tt - cs], ldb[tt - cs], io);
        else ukernels[(nr + DL_VL - 1) / DL_VL](kc, a, bp[tt - cs], ldb[tt - cs], &io);
      }
    }
  }
}

// Work split. With a row split (tm > 1, chosen for few columns) each thread takes a fixed share of row panels
// and column tiles. With a column split, threads take chunks of nct column tiles from a shared counter, so a
// thread that the VM slows down (noisy neighbours, PERFORMANCE.md §5) simply takes fewer chunks.
static void gemm_task(void *arg, int ith, int nth) {
  plan_t *pl = arg;
  const dl_gemm_job *jb = pl->job;
  int tm = nth == pl->nth ? pl->tm : 1, tn = nth / tm;
  int64_t mp0 = 0, mp1 = pl->nmp;
  if (tm > 1) dl_split(pl->nmp, ith % tm, tm, &mp0, &mp1);
  // Scratch: the B chunk (nct panels of KC x NR), then the partial sums of C for this thread's rows and chunk
  // ([panel][tile][MR][NR]; only when K takes several blocks).
  size_t bfloats = (size_t)(pl->nct * pl->kc * NR);
  size_t cfloats = pl->nkb > 1 ? (size_t)((mp1 - mp0) * pl->nct * MR * NR) : 0;
  float *bbuf = dl_scratch(0, (bfloats + cfloats) * sizeof(float) + 64), *cbuf = bbuf + bfloats;
  const int64_t cpg = (pl->nt + pl->nct - 1) / pl->nct;  // chunks per group
  if (tm == 1 && nth > 1) {
    for (int64_t c; (c = atomic_fetch_add(&pl->next_chunk, 1)) < jb->G * cpg;) {
      int64_t g = c / cpg, cs = g * pl->nt + (c % cpg) * pl->nct, ce = cs + pl->nct;
      do_chunk(pl, g, cs, ce < (g + 1) * pl->nt ? ce : (g + 1) * pl->nt, mp0, mp1, bbuf, cbuf);
    }
    return;
  }
  int64_t t0, t1;
  dl_split(jb->G * pl->nt, ith / tm, tn, &t0, &t1);
  for (int64_t t = t0; t < t1;) {
    int64_t g = t / pl->nt, te = (g + 1) * pl->nt < t1 ? (g + 1) * pl->nt : t1;
    for (int64_t cs = t; cs < te; cs += pl->nct) do_chunk(pl, g, cs, cs + pl->nct < te ? cs + pl->nct : te, mp0, mp1, bbuf, cbuf);
    t = te;
  }
}

void dl_gemm_run(const dl_gemm_job *jb) {
  if (jb->G <= 0 || jb->M <= 0 || jb->J <= 0 || jb->K <= 0) return;
  plan_t pl = {.job = jb};
  pl.nmp = (jb->M + MR - 1) / MR;
  pl.nt = (jb->J + NR - 1) / NR;
  pl.nkb = (jb->K + KC_MAX - 1) / KC_MAX;
  pl.kc = (jb->K + pl.nkb - 1) / pl.nkb;
  // Threads: at least ~1 M multiply-adds each. Then the thread grid with the least work per thread (in tile
  // vectors, so a narrow last tile counts as narrow); ties go to splitting columns, since then each thread packs
  // only its own part of B (splitting rows makes every row group pack all of it).
  double macs = (double)jb->G * (double)(pl.nmp * MR) * (double)(pl.nt * NR) * (double)jb->K;
  int nth = dl_threads_for((int64_t)(macs / (1 << 20)), 1);
  pl.nth = nth;
  pl.tm = 1;
  int64_t T = jb->G * pl.nt, best = -1;
  for (int tm = 1; tm <= nth; tm++) {
    if (nth % tm) continue;
    int tn = nth / tm;
    int64_t cols = 0;
    for (int in = 0; in < tn; in++) {
      int64_t lo, hi;
      dl_split(T, in, tn, &lo, &hi);
      int64_t v = tile_vectors(&pl, lo, hi);
      if (v > cols) cols = v;
    }
    int64_t cost = ((pl.nmp + tm - 1) / tm) * cols;
    if (best < 0 || cost < best) best = cost, pl.tm = tm;
  }
  // Column chunk: its B panels plus (when K is blocked) this thread's partial sums should stay in L2.
  int64_t rows = (pl.nmp + pl.tm - 1) / pl.tm * MR;
  int64_t per_tile = (pl.kc + (pl.nkb > 1 ? rows : 0)) * NR * 4;
  pl.nct = L2_BYTES / per_tile;
  // With a column split, keep >= 4 chunks per thread when there are enough tiles (balance).
  if (pl.tm == 1 && nth > 1 && pl.nct > T / (4 * nth)) pl.nct = T / (4 * nth);
  if (pl.nct > 256) pl.nct = 256;  // bounds the per-chunk arrays on the stack (tiny K)
  if (pl.nct < 1) pl.nct = 1;
  atomic_init(&pl.next_chunk, 0);
  dl_parallel(gemm_task, &pl, nth);
}

// ---- dl_gemm --------------------------------------------------------------------------------------------------

typedef struct {
  const float *B;
  int64_t N, K;
  int trans_b, direct;
} gemm_b_ctx;

static const float *gemm_get_b(const void *vctx, int64_t g, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                               float *dst, int64_t *ldb) {
  const gemm_b_ctx *cx = vctx;
  (void)g;
  if (!cx->trans_b) {
    const float *src = cx->B + k0 * cx->N + j0;
    if (cx->direct && nr == NR) {
      *ldb = cx->N;
      return src;
    }
    for (int64_t kk = 0; kk < kc; kk++, src += cx->N) {
      if (nr == NR)
        for (int v = 0; v < NV; v++) vf_store(dst + kk * NR + v * DL_VL, vf_load(src + v * DL_VL));
      else
        for (int64_t jj = 0; jj < NR; jj++) dst[kk * NR + jj] = jj < nr ? src[jj] : 0;
    }
  } else {
    for (int64_t jj = 0; jj < NR; jj++) {
      if (jj >= nr) {
        for (int64_t kk = 0; kk < kc; kk++) dst[kk * NR + jj] = 0;
        continue;
      }
      const float *src = cx->B + (j0 + jj) * cx->K + k0;
      for (int64_t kk = 0; kk < kc; kk++) dst[kk * NR + jj] = src[kk];
    }
  }
  *ldb = NR;
  return dst;
}

// Skinny products (M or N <= 8): dot products of K-contiguous rows, which reads the big operand once instead of
// packing it (the FC layer at small batch: 1..8 x 2048 times 1000 x 2048). X has nx <= 8 rows, Y has ny rows;
// out[i][j] = sum_k X[i][k] Y[j][k]. Blocks of XB x YB dot products share their loads: 4 x 4 when nx <= 4,
// 8 x 2 otherwise. Rows past nx repeat row 0 (wasted FMAs, no extra memory traffic).
typedef struct {
  const float *X, *Y;   // X rows = op(A) rows (M of them) or op(B) columns, see `swap`
  int64_t nx, ny, K;
  float alpha, beta;
  float *C;
  int64_t N;
  int swap;             // 0: X = op(A) rows, Y = op(B)^T rows; 1: the other way round (M > 8, N <= 8)
} skinny_ctx;

DL_INLINE void skinny_block(const skinny_ctx *s, int64_t yb, const int XB, const int YB) {
  const float *xr[8], *yr[4];
  for (int i = 0; i < XB; i++) xr[i] = s->X + (i < s->nx ? i : 0) * s->K;
  for (int j = 0; j < YB; j++) yr[j] = s->Y + (yb + j < s->ny ? yb + j : yb) * s->K;
  vf acc[8][4];
  for (int i = 0; i < XB; i++)
    for (int j = 0; j < YB; j++) acc[i][j] = vf_zero();
  int64_t k = 0;
  for (; k + DL_VL <= s->K; k += DL_VL) {
    vf yv[4];
    for (int j = 0; j < YB; j++) {
      __builtin_prefetch(yr[j] + k + 256, 0, 0);  // Y streams from DRAM (weights); stay ~1 KB ahead
      yv[j] = vf_load(yr[j] + k);
    }
    for (int i = 0; i < XB; i++) {
      vf xv = vf_load(xr[i] + k);
      for (int j = 0; j < YB; j++) acc[i][j] = xv * yv[j] + acc[i][j];
    }
  }
  for (int i = 0; i < s->nx && i < XB; i++) {
    for (int j = 0; j < YB && yb + j < s->ny; j++) {
      float sum = vf_hsum(acc[i][j]);
      for (int64_t kk = k; kk < s->K; kk++) sum += xr[i][kk] * yr[j][kk];
      float *cp = s->swap ? &s->C[(yb + j) * s->N + i] : &s->C[i * s->N + yb + j];
      *cp = s->alpha * sum + (s->beta == 0 ? 0 : s->beta * *cp);
    }
  }
}

static void skinny_task(void *arg, int ith, int nth) {
  const skinny_ctx *s = arg;
  const int YB = s->nx <= 4 ? 4 : 2;
  int64_t lo, hi;
  dl_split((s->ny + YB - 1) / YB, ith, nth, &lo, &hi);
  for (int64_t yb = lo * YB; yb < hi * YB && yb < s->ny; yb += YB) {
    if (YB == 4) skinny_block(s, yb, 4, 4);
    else skinny_block(s, yb, 8, 2);
  }
}

/** Rows of op(X) as a K-contiguous (R x K) matrix: X itself, or a transposed copy in *tmp (NULL on OOM). */
static const float *k_contiguous(const float *X, int64_t R, int64_t K, int trans, float **tmp) {
  *tmp = NULL;
  if (!trans) return X;  // X is (R, K)
  float *t = malloc((size_t)(R * K) * sizeof(float) + 1);
  if (!t) return NULL;
  for (int64_t k = 0; k < K; k++)
    for (int64_t r = 0; r < R; r++) t[r * K + k] = X[k * R + r];
  *tmp = t;
  return t;
}

void dl_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             const float *B, float beta, float *C) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M * N; i++) C[i] = beta == 0 ? 0 : beta * C[i];
    return;
  }
  if (M <= 8 || N <= 8) {
    float *ta = NULL, *tb = NULL;
    const float *ar = k_contiguous(A, M, K, trans_a, &ta);   // op(A) rows
    const float *bc = k_contiguous(B, N, K, !trans_b, &tb);  // op(B) columns
    if (ar && bc) {
      skinny_ctx s = {ar, bc, M, N, K, alpha, beta, C, N, 0};
      if (M > 8 || (N < M && N <= 8)) s = (skinny_ctx){bc, ar, N, M, K, alpha, beta, C, N, 1};
      dl_parallel(skinny_task, &s, dl_threads_for(s.ny * K / 4, 1 << 16));
    } else {
      dl_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
    }
    free(ta);
    free(tb);
    return;
  }
  int64_t nmp = (M + MR - 1) / MR;
  float *ap = malloc((size_t)(nmp * MR * K) * sizeof(float));
  if (!ap) {
    dl_gemm_ref(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
    return;
  }
  dl_gemm_pack_a(M, K, A, trans_a ? 1 : K, trans_a ? M : 1, alpha, ap);
  gemm_b_ctx bc = {B, N, K, trans_b, M <= MR};
  dl_gemm_job jb = {.G = 1, .M = M, .J = N, .K = K, .ap = ap, .c = C, .c_gs = 0, .ldc = N, .c_ns = 0, .jp = N,
                    .res = beta != 0 ? C : NULL, .res_scale = beta, .bias = NULL, .relu = 0,
                    .get_b = gemm_get_b, .bctx = &bc};
  dl_gemm_run(&jb);
  free(ap);
}

// Naive reference: one double accumulator per output, as the js backend.
void dl_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 const float *B, float beta, float *C) {
  for (int64_t m = 0; m < M; m++) {
    for (int64_t n = 0; n < N; n++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) {
        double a = trans_a ? A[k * M + m] : A[m * K + k];
        double b = trans_b ? B[n * K + k] : B[k * N + n];
        s += a * b;
      }
      C[m * N + n] = (float)((double)alpha * s + (beta == 0 ? 0.0 : (double)beta * C[m * N + n]));
    }
  }
}

// kernels.h: what the kernel files share (internal; not part of the ABI in include/dl.h).
//
// binding.gyp compiles every csrc/kernels/*.c once per SIMD level with -DDL_ISA=<level> and that level's -march.
// Inside such a build the public names are renamed with a suffix (dl_conv2d -> dl_conv2d_avx512) by the macros
// below, so the kernel files read as plain `dl_conv2d` / `dl_conv2d_ref` while several builds link into one addon.
// The un-suffixed names in dl.h are the dispatching wrappers in csrc/dispatch.c, which call through the table of
// the level in use (dl_kernel_table, one per build, defined in kernels/table.c).

#ifndef DL_KERNELS_H
#define DL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef DL_ISA
#define DL_CAT2(a, b) a##_##b
#define DL_CAT(a, b) DL_CAT2(a, b)
#define DL_RENAME(f) DL_CAT(f, DL_ISA)
#define dl_conv2d_packed_size DL_RENAME(dl_conv2d_packed_size)
#define dl_conv2d_pack DL_RENAME(dl_conv2d_pack)
#define dl_conv2d DL_RENAME(dl_conv2d)
#define dl_conv2d_ref DL_RENAME(dl_conv2d_ref)
#define dl_gemm DL_RENAME(dl_gemm)
#define dl_gemm_ref DL_RENAME(dl_gemm_ref)
#define dl_gemm_run DL_RENAME(dl_gemm_run)
#define dl_gemm_mr DL_RENAME(dl_gemm_mr)
#define dl_gemm_nr DL_RENAME(dl_gemm_nr)
#define dl_gemm_pack_a DL_RENAME(dl_gemm_pack_a)
#define dl_gemm_tile DL_RENAME(dl_gemm_tile)
#define dl_gemm_tile_rows DL_RENAME(dl_gemm_tile_rows)
#define dl_batchnorm DL_RENAME(dl_batchnorm)
#define dl_batchnorm_ref DL_RENAME(dl_batchnorm_ref)
#define dl_batchnorm_stats DL_RENAME(dl_batchnorm_stats)
#define dl_batchnorm_stats_ref DL_RENAME(dl_batchnorm_stats_ref)
#define dl_maxpool2d DL_RENAME(dl_maxpool2d)
#define dl_maxpool2d_ref DL_RENAME(dl_maxpool2d_ref)
#define dl_adaptive_avgpool2d DL_RENAME(dl_adaptive_avgpool2d)
#define dl_adaptive_avgpool2d_ref DL_RENAME(dl_adaptive_avgpool2d_ref)
#define dl_relu DL_RENAME(dl_relu)
#define dl_relu_ref DL_RENAME(dl_relu_ref)
#define dl_add DL_RENAME(dl_add)
#define dl_add_ref DL_RENAME(dl_add_ref)
#define dl_conv2d_bwd_data_packed_size DL_RENAME(dl_conv2d_bwd_data_packed_size)
#define dl_conv2d_bwd_data_pack DL_RENAME(dl_conv2d_bwd_data_pack)
#define dl_conv2d_bwd_data DL_RENAME(dl_conv2d_bwd_data)
#define dl_conv2d_bwd_data_ref DL_RENAME(dl_conv2d_bwd_data_ref)
#define dl_conv2d_bwd_weight DL_RENAME(dl_conv2d_bwd_weight)
#define dl_conv2d_bwd_weight_ref DL_RENAME(dl_conv2d_bwd_weight_ref)
#define dl_batchnorm_bwd DL_RENAME(dl_batchnorm_bwd)
#define dl_batchnorm_bwd_ref DL_RENAME(dl_batchnorm_bwd_ref)
#define dl_maxpool2d_bwd DL_RENAME(dl_maxpool2d_bwd)
#define dl_maxpool2d_bwd_ref DL_RENAME(dl_maxpool2d_bwd_ref)
#define dl_adaptive_avgpool2d_bwd DL_RENAME(dl_adaptive_avgpool2d_bwd)
#define dl_adaptive_avgpool2d_bwd_ref DL_RENAME(dl_adaptive_avgpool2d_bwd_ref)
#define dl_relu_bwd DL_RENAME(dl_relu_bwd)
#define dl_relu_bwd_ref DL_RENAME(dl_relu_bwd_ref)
#define dl_sgd_step DL_RENAME(dl_sgd_step)
#define dl_sgd_step_ref DL_RENAME(dl_sgd_step_ref)
#define dl_adamw_step DL_RENAME(dl_adamw_step)
#define dl_adamw_step_ref DL_RENAME(dl_adamw_step_ref)
#define dl_conv_src_init DL_RENAME(dl_conv_src_init)
#define dl_grouped_direct_ok DL_RENAME(dl_grouped_direct_ok)
#define dl_grouped_conv_s1 DL_RENAME(dl_grouped_conv_s1)
#define dl_grouped_dw_s1 DL_RENAME(dl_grouped_dw_s1)
#endif

#include "../include/dl.h"

/** One SIMD level's kernels. `ref` tables point every op at its naive version. */
typedef struct dl_kernel_table {
  const char *name;
  int64_t (*conv2d_packed_size)(const dl_conv2d_params *p);
  void (*conv2d_pack)(const dl_conv2d_params *p, const float *w, float *packed);
  void (*conv2d)(const dl_conv2d_params *p, const float *x, const float *w, const float *packed,
                 const float *bias, const float *residual, float *y);
  void (*gemm)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, const float *B, float beta, float *C);
  void (*batchnorm)(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                    const float *weight, const float *bias, double eps, int relu, float *y);
  void (*batchnorm_stats)(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var);
  void (*maxpool2d)(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices);
  void (*adaptive_avgpool2d)(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y);
  void (*relu)(const float *x, float *y, int64_t n);
  void (*add)(const float *a, const float *b, float *y, int64_t n, int relu);
  // backward (training)
  int64_t (*conv2d_bwd_data_packed_size)(const dl_conv2d_params *p);
  void (*conv2d_bwd_data_pack)(const dl_conv2d_params *p, const float *w, float *packed);
  void (*conv2d_bwd_data)(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed, float *dx);
  void (*conv2d_bwd_weight)(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db);
  void (*batchnorm_bwd)(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                        const float *invstd, const float *weight, float *dx, float *dweight, float *dbias);
  void (*maxpool2d_bwd)(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx);
  void (*adaptive_avgpool2d_bwd)(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                 float *dx);
  void (*relu_bwd)(const float *dy, const float *y, float *dx, int64_t n);
  // optimizer steps
  void (*sgd_step)(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n);
  void (*adamw_step)(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n);
} dl_kernel_table;

// ---- thread pool (threadpool.c; shared by every build) --------------------------------------------------------

typedef void (*dl_task_fn)(void *ctx, int ith, int nth);

/**
 * Run fn(ctx, ith, nth) for ith in [0, nth) on the pool (the caller runs ith 0) and return when all are done.
 * nth is clamped to dl_num_threads(). Tasks must split their work by (ith, nth) alone: when another thread is
 * already using the pool, this runs fn(ctx, 0, 1) on the caller.
 */
void dl_parallel(dl_task_fn fn, void *ctx, int nth);

/**
 * A 64-byte-aligned buffer of at least `bytes`, private to the calling thread, valid until its next call with the
 * same slot. Slot 0 is for work inside a task (B panels, row buffers), slot 1 for a whole call's data prepared by
 * the caller before dl_parallel (stride-2 phase planes). Slots 2 and 3 are the backward convolutions' (conv_bwd.c:
 * phase outputs, packed dy, partial weight gradients). Kept between calls, so steady state allocates nothing.
 */
#define DL_SCRATCH_SLOTS 4
void *dl_scratch(int slot, size_t bytes);

/** Threads worth using for `work` units when one thread should get at least `grain` of them. */
static inline int dl_threads_for(int64_t work, int64_t grain) {
  int n = dl_num_threads();
  int64_t want = grain > 0 ? work / grain : n;
  if (want < 1) want = 1;
  return want < n ? (int)want : n;
}

/** [lo, hi) of the ith of nth near-equal parts of [0, n). */
static inline void dl_split(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
  *lo = n * ith / nth;
  *hi = n * (ith + 1) / nth;
}

/** dl_split of n elements in whole runs of `width` (a vector's lanes); the last thread also takes the tail. */
static inline void dl_split_runs(int64_t n, int64_t width, int ith, int nth, int64_t *lo, int64_t *hi) {
  dl_split(n / width, ith, nth, lo, hi);
  *lo *= width;
  *hi = ith == nth - 1 ? n : *hi * width;
}

// ---- blocked GEMM driver (gemm.c; used by conv.c) -------------------------------------------------------------

/**
 * Fills the KC x NR panel for columns [j0, j0+nr) and reduction rows [k0, k0+kc) of group g's B matrix:
 * dst[kk*NR + jj] (columns nr..NR-1 may hold anything). Or, instead of packing, returns a pointer to B laid out
 * as rows of stride *ldb (then dst is unused). Returns dst when it packed (and sets *ldb = NR).
 */
typedef const float *(*dl_get_b_fn)(const void *ctx, int64_t g, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                                    float *dst, int64_t *ldb);

/**
 * Per group g: C_g (M x J) = relu?(A_g (M x K) B_g (K x J) + bias[g*M + m] + res_scale * R_g). A is pre-packed
 * (dl_gemm_pack_a layout). Element (g, m, j) of C (and of R) lives at c[g*c_gs + m*ldc + (j / jp)*c_ns + j % jp];
 * this lets a convolution's column index run over (image, pixel). R may be C itself (gemm's beta * C).
 */
typedef struct dl_gemm_job {
  int64_t G, M, J, K;
  const float *ap;
  float *c;
  int64_t c_gs, ldc, c_ns, jp;
  const float *res;
  float res_scale;
  const float *bias;
  int relu;
  dl_get_b_fn get_b;
  const void *bctx;
} dl_gemm_job;

// The micro-tile of this build (files that include simd.h first): DL_MR rows x DL_NV vectors of columns.
#if defined(DL_VL) && !defined(DL_MR)
#if DL_VL == 16
#define DL_MR 8
#define DL_NV 3
#elif DL_VL >= 4
#define DL_MR 6
#define DL_NV 2
#else
#define DL_MR 4
#define DL_NV 2
#endif
#endif

/** Row-panel height and column-tile width of this build's microkernel. */
int64_t dl_gemm_mr(void);
int64_t dl_gemm_nr(void);
/** Pack A (M x K, element (m,k) at a[m*rs + k*cs]) times alpha into ceil(M/MR) panels of [K][MR], zero-padded. */
void dl_gemm_pack_a(int64_t M, int64_t K, const float *a, int64_t rs, int64_t cs, float alpha, float *ap);
/** Run the job on the pool. */
void dl_gemm_run(const dl_gemm_job *job);
/**
 * One MR x (nv*VL) tile on the calling thread (1 <= nv <= NR/VL): c (row stride ldc) = [c +] a b, with a one
 * packed A panel ([kc][MR]) and b a B panel of kc rows with stride ldb. For drivers other than dl_gemm_run
 * (conv_bwd.c). The _rows variant reads A in place: row i is rows[i][0..kc).
 */
void dl_gemm_tile(int nv, int64_t kc, const float *a, const float *b, int64_t ldb, float *c, int64_t ldc,
                  int accumulate);
void dl_gemm_tile_rows(int nv, int64_t kc, const float *const *rows, const float *b, int64_t ldb, float *c,
                       int64_t ldc, int accumulate);

// ---- how convolutions read x (conv.c; shared with conv_bwd.c) ------------------------------------------------

/**
 * The source a convolution's B panels are filled from: x itself, or for stride 2 (dilation 1) the 2x2 phase planes
 * of x, xp[n][c][slot][PH][PW] holding x[2i + r][2j + s] for the phases (r, s) some tap reads (see conv.c).
 * Tap (kh, kw) with dh = kh*dilation_h - pad_h, dw likewise then reads phase slot[(dh & 1) * 2 + (dw & 1)] at
 * ((ih - (dh & 1)) / 2, (iw - (dw & 1)) / 2), one element per output column.
 */
typedef struct dl_conv_src {
  const float *x;
  int64_t cstride;  // floats between channels (H*W, or nslot*PH*PW)
  int64_t istride;  // floats between images (C * cstride)
  int phased;
  int64_t PH, PW;
  int slot[4];      // phase r*2+s -> its plane index, or -1
} dl_conv_src;

/** Fill *src for reading x with geometry p; builds the phase planes (threaded) in the caller's scratch slot 1. */
void dl_conv_src_init(const dl_conv2d_params *p, const float *x, dl_conv_src *src);

// ---- grouped convolutions with few channels per group (conv_grouped.c; used by conv_bwd.c) --------------------

/** Whether the direct kernels below should handle groups of cin_g inputs and cout_g outputs (2+ groups, <= 16). */
int dl_grouped_direct_ok(int64_t groups, int64_t cin_g, int64_t cout_g);
/**
 * Stride-1 grouped convolution y (N,O,OH,OW) of src (N,C,H,W) with wd (O, C/groups, KH, KW); p's stride is ignored
 * (1), its padding may be negative (a shift). Zero outside src.
 */
void dl_grouped_conv_s1(const dl_conv2d_params *p, const float *src, const float *wd, float *y);
/** Stride-1 grouped weight gradient dw (O, C/groups, KH, KW) of x (N,C,H,W) and dy (N,O,OH,OW). */
void dl_grouped_dw_s1(const dl_conv2d_params *p, const float *x, const float *dy, float *dw);

#endif  // DL_KERNELS_H

// dispatch.c: the public entry points of dl.h. Picks one kernel table per process from what the CPU supports
// (avx512 > avx2 > scalar, PERFORMANCE.md §8: explicit tables rather than ifunc, so it works beyond glibc) and
// forwards every call to it with FTZ/DAZ set for the duration of the call.

#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DL_X86 1
#endif

#include "kernels/kernels.h"

extern const dl_kernel_table dl_kernels_scalar, dl_kernels_ref;
#ifdef DL_HAVE_AVX2
extern const dl_kernel_table dl_kernels_avx2;
#endif
#ifdef DL_HAVE_AVX512
extern const dl_kernel_table dl_kernels_avx512;
#endif

typedef struct {
  const dl_kernel_table *table;
  int (*supported)(void);
} level_t;

static int always(void) { return 1; }
#ifdef DL_HAVE_AVX2
// x86-64-v3: AVX, AVX2, BMI1/2, F16C, FMA, LZCNT, MOVBE (what -march=x86-64-v3 may emit). libgcc's check also
// requires the OS to save the YMM state (XCR0).
static int has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
         __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") && __builtin_cpu_supports("movbe");
}
#endif
#ifdef DL_HAVE_AVX512
// x86-64-v4 adds AVX512F/BW/CD/DQ/VL (and the OS must save the ZMM state).
static int has_avx512(void) {
  __builtin_cpu_init();
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
}
#endif

static const level_t levels[] = {
#ifdef DL_HAVE_AVX512
  {&dl_kernels_avx512, has_avx512},
#endif
#ifdef DL_HAVE_AVX2
  {&dl_kernels_avx2, has_avx2},
#endif
  {&dl_kernels_scalar, always},
  {&dl_kernels_ref, always},
};
#define NLEVELS (sizeof levels / sizeof levels[0])

static const dl_kernel_table *current;
static char isa_list[128];

static const dl_kernel_table *kt(void) {
  if (!current) {
    for (size_t i = 0; i < NLEVELS && !current; i++)
      if (levels[i].supported()) current = levels[i].table;
  }
  return current;
}

const char *dl_isa(void) { return kt()->name; }

const char *dl_isa_list(void) {
  if (!isa_list[0]) {
    for (size_t i = 0; i < NLEVELS; i++) {
      if (!levels[i].supported()) continue;
      if (isa_list[0]) strcat(isa_list, ",");
      strcat(isa_list, levels[i].table->name);
    }
  }
  return isa_list;
}

int dl_set_isa(const char *name) {
  for (size_t i = 0; i < NLEVELS; i++) {
    if (strcmp(levels[i].table->name, name) == 0 && levels[i].supported()) {
      current = levels[i].table;
      return 0;
    }
  }
  return -1;
}

// FTZ/DAZ for the duration of a call on the caller's thread (the JS thread's own MXCSR is left as it was).
#ifdef DL_X86
#define FP_ENTER unsigned int saved_csr_ = _mm_getcsr(); _mm_setcsr(saved_csr_ | 0x8040)
#define FP_LEAVE _mm_setcsr(saved_csr_)
#else
#define FP_ENTER
#define FP_LEAVE
#endif

int64_t dl_conv2d_packed_size(const dl_conv2d_params *p) { return kt()->conv2d_packed_size(p); }

void dl_conv2d_pack(const dl_conv2d_params *p, const float *w, float *packed) { kt()->conv2d_pack(p, w, packed); }

void dl_conv2d(const dl_conv2d_params *p, const float *x, const float *w, const float *packed, const float *bias,
               const float *residual, float *y) {
  FP_ENTER;
  kt()->conv2d(p, x, w, packed, bias, residual, y);
  FP_LEAVE;
}

void dl_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
             const float *B, float beta, float *C) {
  FP_ENTER;
  kt()->gemm(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
  FP_LEAVE;
}

void dl_batchnorm(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                  const float *weight, const float *bias, double eps, int relu, float *y) {
  FP_ENTER;
  kt()->batchnorm(x, N, C, HW, mean, var, weight, bias, eps, relu, y);
  FP_LEAVE;
}

void dl_batchnorm_stats(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var) {
  FP_ENTER;
  kt()->batchnorm_stats(x, N, C, HW, mean, var);
  FP_LEAVE;
}

void dl_maxpool2d(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices) {
  FP_ENTER;
  kt()->maxpool2d(p, x, y, indices);
  FP_LEAVE;
}

void dl_adaptive_avgpool2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                           float *y) {
  FP_ENTER;
  kt()->adaptive_avgpool2d(x, N, C, H, W, OH, OW, y);
  FP_LEAVE;
}

void dl_relu(const float *x, float *y, int64_t n) {
  FP_ENTER;
  kt()->relu(x, y, n);
  FP_LEAVE;
}

void dl_add(const float *a, const float *b, float *y, int64_t n, int relu) {
  FP_ENTER;
  kt()->add(a, b, y, n, relu);
  FP_LEAVE;
}

int64_t dl_conv2d_bwd_data_packed_size(const dl_conv2d_params *p) { return kt()->conv2d_bwd_data_packed_size(p); }

void dl_conv2d_bwd_data_pack(const dl_conv2d_params *p, const float *w, float *packed) {
  kt()->conv2d_bwd_data_pack(p, w, packed);
}

void dl_conv2d_bwd_data(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed, float *dx) {
  FP_ENTER;
  kt()->conv2d_bwd_data(p, dy, w, packed, dx);
  FP_LEAVE;
}

void dl_conv2d_bwd_weight(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db) {
  FP_ENTER;
  kt()->conv2d_bwd_weight(p, x, dy, dw, db);
  FP_LEAVE;
}

void dl_batchnorm_bwd(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                      const float *invstd, const float *weight, float *dx, float *dweight, float *dbias) {
  FP_ENTER;
  kt()->batchnorm_bwd(x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias);
  FP_LEAVE;
}

void dl_maxpool2d_bwd(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx) {
  FP_ENTER;
  kt()->maxpool2d_bwd(p, dy, indices, dx);
  FP_LEAVE;
}

void dl_adaptive_avgpool2d_bwd(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                               float *dx) {
  FP_ENTER;
  kt()->adaptive_avgpool2d_bwd(dy, N, C, H, W, OH, OW, dx);
  FP_LEAVE;
}

void dl_relu_bwd(const float *dy, const float *y, float *dx, int64_t n) {
  FP_ENTER;
  kt()->relu_bwd(dy, y, dx, n);
  FP_LEAVE;
}

// Optimizer steps: no FP_ENTER (no flush-to-zero), so tiny state values behave as in PyTorch and the js loops.
void dl_sgd_step(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n) { kt()->sgd_step(o, p, g, buf, n); }
void dl_adamw_step(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n) {
  kt()->adamw_step(o, p, g, m, v, vmax, n);
}

// The naive references, whatever level is in use (the same functions as the "ref" level).
void dl_conv2d_ref(const dl_conv2d_params *p, const float *x, const float *w, const float *packed,
                   const float *bias, const float *residual, float *y) {
  dl_kernels_ref.conv2d(p, x, w, packed, bias, residual, y);
}
void dl_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 const float *B, float beta, float *C) {
  dl_kernels_ref.gemm(trans_a, trans_b, M, N, K, alpha, A, B, beta, C);
}
void dl_batchnorm_ref(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                      const float *weight, const float *bias, double eps, int relu, float *y) {
  dl_kernels_ref.batchnorm(x, N, C, HW, mean, var, weight, bias, eps, relu, y);
}
void dl_batchnorm_stats_ref(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var) {
  dl_kernels_ref.batchnorm_stats(x, N, C, HW, mean, var);
}
void dl_maxpool2d_ref(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices) {
  dl_kernels_ref.maxpool2d(p, x, y, indices);
}
void dl_adaptive_avgpool2d_ref(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                               int64_t OW, float *y) {
  dl_kernels_ref.adaptive_avgpool2d(x, N, C, H, W, OH, OW, y);
}
void dl_relu_ref(const float *x, float *y, int64_t n) { dl_kernels_ref.relu(x, y, n); }
void dl_add_ref(const float *a, const float *b, float *y, int64_t n, int relu) { dl_kernels_ref.add(a, b, y, n, relu); }
void dl_conv2d_bwd_data_ref(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed,
                            float *dx) {
  dl_kernels_ref.conv2d_bwd_data(p, dy, w, packed, dx);
}
void dl_conv2d_bwd_weight_ref(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db) {
  dl_kernels_ref.conv2d_bwd_weight(p, x, dy, dw, db);
}
void dl_batchnorm_bwd_ref(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                          const float *invstd, const float *weight, float *dx, float *dweight, float *dbias) {
  dl_kernels_ref.batchnorm_bwd(x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias);
}
void dl_maxpool2d_bwd_ref(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx) {
  dl_kernels_ref.maxpool2d_bwd(p, dy, indices, dx);
}
void dl_adaptive_avgpool2d_bwd_ref(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW, float *dx) {
  dl_kernels_ref.adaptive_avgpool2d_bwd(dy, N, C, H, W, OH, OW, dx);
}
void dl_relu_bwd_ref(const float *dy, const float *y, float *dx, int64_t n) { dl_kernels_ref.relu_bwd(dy, y, dx, n); }
void dl_sgd_step_ref(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n) { dl_kernels_ref.sgd_step(o, p, g, buf, n); }
void dl_adamw_step_ref(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n) {
  dl_kernels_ref.adamw_step(o, p, g, m, v, vmax, n);
}

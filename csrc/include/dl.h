// dl.h: the flat C ABI of resnet-ts's compute core (csrc/). Pointers, int64_t sizes and POD parameter structs;
// nothing JS-shaped. Every array is dense, row-major float32 unless said otherwise. The caller (TypeScript, via
// csrc/binding/napi.c) has validated every shape and size, so these functions trust their inputs.
//
// Worked example: y = relu(conv3x3(x) + bias), x (1,3,5,5) -> y (1,8,5,5), padding 1.
//
//   dl_conv2d_params p = { .N = 1, .C = 3, .H = 5, .W = 5, .O = 8, .KH = 3, .KW = 3, .OH = 5, .OW = 5,
//                          .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1,
//                          .dilation_h = 1, .dilation_w = 1, .groups = 1, .relu = 1 };
//   float *packed = malloc(sizeof(float) * dl_conv2d_packed_size(&p));
//   dl_conv2d_pack(&p, w, packed);                    // once per weight version; the layout depends on the ISA
//   dl_conv2d(&p, x, w, packed, bias, NULL, y);       // bias (8) or NULL, residual (1,8,5,5) or NULL
//
// Threads: every call may use the persistent pool (dl_set_num_threads); it returns when the result is written.
// SIMD level: chosen once at load time from the CPU (avx512 > avx2 > scalar); dl_set_isa() forces one, which is
// how tests cover every level on one machine. Any packed weights must be re-packed after dl_set_isa().
// Denormals are flushed to zero (FTZ/DAZ) inside every call; the caller's MXCSR is restored on return.

#ifndef DL_H
#define DL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Convolution geometry. x is (N,C,H,W), w is (O,C/groups,KH,KW), y is (N,O,OH,OW). Zero padding. */
typedef struct dl_conv2d_params {
  int64_t N, C, H, W;
  int64_t O, KH, KW;
  int64_t OH, OW;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;
  int64_t groups;
  int32_t relu;  // epilogue: y = relu(acc + bias + residual) when nonzero
  int32_t _pad;
} dl_conv2d_params;

/** Pooling window geometry. x is (N,C,H,W), y is (N,C,OH,OW). */
typedef struct dl_pool2d_params {
  int64_t N, C, H, W;
  int64_t OH, OW;
  int64_t KH, KW;
  int64_t stride_h, stride_w;
  int64_t pad_h, pad_w;
  int64_t dilation_h, dilation_w;
} dl_pool2d_params;

// ---- runtime -------------------------------------------------------------------------------------------------

/** Name of the SIMD level in use: "avx512", "avx2", "scalar", or "ref" (the naive reference kernels). */
const char *dl_isa(void);
/** Comma-separated levels this CPU and build support, best first, e.g. "avx512,avx2,scalar,ref". */
const char *dl_isa_list(void);
/** Force a level by name. Returns 0, or -1 when the name is unknown or the CPU/build lacks it. */
int dl_set_isa(const char *name);

/** Threads used by the kernels (the caller's thread included). */
int dl_num_threads(void);
/** Clamp n to [1, DL_MAX_THREADS] and use that many threads from the next call on. */
void dl_set_num_threads(int n);
/** Online CPUs this process may run on. */
int dl_num_cores(void);

#define DL_MAX_THREADS 64

// ---- kernels -------------------------------------------------------------------------------------------------
// Each op has a fast version and a naive `_ref` version with the same signature (the ref ignores `packed`).

/** Floats needed by dl_conv2d_pack's output for this geometry (depends on the SIMD level). */
int64_t dl_conv2d_packed_size(const dl_conv2d_params *p);
/** Repack w (O, C/groups, KH, KW) into the layout dl_conv2d reads. */
void dl_conv2d_pack(const dl_conv2d_params *p, const float *w, float *packed);
/**
 * y = relu?(conv(x, w) + bias[o] + residual). bias (O) or NULL, residual (N,O,OH,OW) or NULL (must not alias y).
 * `packed` is dl_conv2d_pack's output for w, or NULL to pack on the fly.
 */
void dl_conv2d(const dl_conv2d_params *p, const float *x, const float *w, const float *packed,
               const float *bias, const float *residual, float *y);
void dl_conv2d_ref(const dl_conv2d_params *p, const float *x, const float *w, const float *packed,
                   const float *bias, const float *residual, float *y);

/**
 * C (M,N) = alpha * op(A) op(B) + beta * C. op(A) is (M,K): A is (M,K), or (K,M) when trans_a. op(B) is (K,N):
 * B is (K,N), or (N,K) when trans_b. beta == 0 means C is not read (NaNs in C do not propagate).
 */
void dl_gemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
             const float *A, const float *B, float beta, float *C);
void dl_gemm_ref(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                 const float *A, const float *B, float beta, float *C);

/** y = (x - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c], relu if asked. x, y (N,C,HW); weight/bias may be NULL. */
void dl_batchnorm(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                  const float *weight, const float *bias, double eps, int relu, float *y);
void dl_batchnorm_ref(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                      const float *weight, const float *bias, double eps, int relu, float *y);

/** Per-channel mean and biased variance of x (N,C,HW), accumulated in double. */
void dl_batchnorm_stats(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var);
void dl_batchnorm_stats_ref(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var);

/** Max pooling, -inf padding, NaN propagates; indices (same size as y, flat h*W+w) or NULL. */
void dl_maxpool2d(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices);
void dl_maxpool2d_ref(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices);

/** PyTorch's adaptive average pooling: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)). */
void dl_adaptive_avgpool2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y);
void dl_adaptive_avgpool2d_ref(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW, float *y);

/** y[i] = max(x[i], 0), NaN propagates; y may be x. */
void dl_relu(const float *x, float *y, int64_t n);
void dl_relu_ref(const float *x, float *y, int64_t n);

/** y[i] = a[i] + b[i], then relu if asked; y may be a or b. */
void dl_add(const float *a, const float *b, float *y, int64_t n, int relu);
void dl_add_ref(const float *a, const float *b, float *y, int64_t n, int relu);

// ---- backward (training) -------------------------------------------------------------------------------------
// Same layouts as the forward ops; every output is fully written.

/** Floats needed by dl_conv2d_bwd_data_pack's output for this geometry (depends on the SIMD level). */
int64_t dl_conv2d_bwd_data_packed_size(const dl_conv2d_params *p);
/** Repack w (O, C/groups, KH, KW) into the layout dl_conv2d_bwd_data reads (per stride phase, flipped, transposed). */
void dl_conv2d_bwd_data_pack(const dl_conv2d_params *p, const float *w, float *packed);
/** dx (N,C,H,W) = gradient of conv2d w.r.t. x for dy (N,O,OH,OW); `packed` from the pack above, or NULL. */
void dl_conv2d_bwd_data(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed, float *dx);
void dl_conv2d_bwd_data_ref(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed, float *dx);

/** dw (O,C/groups,KH,KW) = gradient of conv2d w.r.t. w from x and dy; db (O) = sum of dy per channel, or NULL. */
void dl_conv2d_bwd_weight(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db);
void dl_conv2d_bwd_weight_ref(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db);

/**
 * Training-mode batch-norm backward over x (N,C,HW) normalised with per-channel mean and invstd = 1/sqrt(var+eps):
 * dx; dweight = sum(dy * xhat) and dbias = sum(dy) when not NULL. weight NULL means 1. y (N,C,HW) or NULL: the output
 * of a relu fused into the forward; dy counts only where y > 0 (relu's backward, without a pass of its own).
 */
void dl_batchnorm_bwd(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                      const float *invstd, const float *weight, float *dx, float *dweight, float *dbias);
void dl_batchnorm_bwd_ref(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                          const float *invstd, const float *weight, float *dx, float *dweight, float *dbias);

/** dx (N,C,H,W) = dy (N,C,OH,OW) summed at the argmax `indices` (flat h*W+w, each in [0, H*W)). */
void dl_maxpool2d_bwd(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx);
void dl_maxpool2d_bwd_ref(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx);

/** dx (N,C,H,W): each dy (N,C,OH,OW) value spread evenly over its adaptive-average-pool bin. */
void dl_adaptive_avgpool2d_bwd(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                               float *dx);
void dl_adaptive_avgpool2d_bwd_ref(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW, float *dx);

/** dx[i] = y[i] > 0 ? dy[i] : 0 (y is relu's output); dx may be dy. */
void dl_relu_bwd(const float *dy, const float *y, float *dx, int64_t n);
void dl_relu_bwd_ref(const float *dy, const float *y, float *dx, int64_t n);

// ---- optimizer steps (optim.c): one parameter, in place. No FTZ/DAZ: tiny momentum values stay as PyTorch keeps them.

/** SGD options (torch.optim.SGD's). first: the parameter's first step with momentum (buf <- d). */
typedef struct dl_sgd_params {
  double lr, momentum, dampening, weight_decay;
  int32_t nesterov, maximize, first, _pad;
} dl_sgd_params;

/** d = ±g + wd*p; with momentum: buf = first ? d : momentum*buf + (1-dampening)*d, d = nesterov ? d + momentum*buf
 *  : buf; p -= lr*d. buf is (n), or NULL when momentum is 0. */
void dl_sgd_step(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n);
void dl_sgd_step_ref(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n);

/** AdamW options; step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t) for this step t. */
typedef struct dl_adamw_params {
  double lr, beta1, beta2, eps, weight_decay, step_size, bias_correction2_sqrt;
  int32_t maximize, _pad;
} dl_adamw_params;

/** p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; vmax = max(vmax, v) (amsgrad, else NULL);
 *  p -= step_size * m / (sqrt(vmax or v) / bias_correction2_sqrt + eps). g is negated first when maximize. */
void dl_adamw_step(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n);
void dl_adamw_step_ref(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n);

#ifdef __cplusplus
}
#endif

#endif  // DL_H

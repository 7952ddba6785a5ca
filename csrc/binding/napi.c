// napi.c: N-API glue between src/backend/native.ts and csrc/include/dl.h. No math here.
//
// Arrays are TypedArrays used in place (zero-copy). TypeScript has validated dtypes, shapes and ranges; this file
// only checks what memory safety needs (argument types, integer ranges, and that every array is long enough for
// the sizes the kernel will touch), and throws a JS error otherwise. Convolution and pooling geometry arrives as
// one Float64Array so a call does not read a dozen object properties.

#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../include/dl.h"
#include "pool.h"

#define MAX_ARGS 16
#define DIM_MAX ((int64_t)1 << 40)

typedef struct {
  napi_env env;
  napi_value argv[MAX_ARGS];
  size_t argc;
  int failed;
} call_t;

static void fail(call_t *c, const char *code, const char *msg) {
  if (c->failed) return;
  c->failed = 1;
  bool pending = false;
  napi_is_exception_pending(c->env, &pending);
  if (pending) return;
  if (code && strcmp(code, "TypeError") == 0) napi_throw_type_error(c->env, NULL, msg);
  else if (code && strcmp(code, "Error") == 0) napi_throw_error(c->env, NULL, msg);
  else napi_throw_range_error(c->env, NULL, msg);
}

static int begin(call_t *c, napi_env env, napi_callback_info info, size_t want) {
  c->env = env;
  c->argc = MAX_ARGS;
  c->failed = 0;
  if (napi_get_cb_info(env, info, &c->argc, c->argv, NULL, NULL) != napi_ok || c->argc < want) {
    char msg[96];
    snprintf(msg, sizeof msg, "resnet_native: expected %zu arguments but received %zu", want, c->argc);
    fail(c, "TypeError", msg);
    return 0;
  }
  return 1;
}

static int is_nullish(call_t *c, size_t i) {
  napi_valuetype t;
  if (napi_typeof(c->env, c->argv[i], &t) != napi_ok) return 0;
  return t == napi_null || t == napi_undefined;
}

/** Argument i as a typed array of `type` with at least `need` elements (NULL allowed when nullable). */
static void *typed(call_t *c, size_t i, napi_typedarray_type type, int64_t need, int nullable, const char *name) {
  if (c->failed) return NULL;
  if (nullable && is_nullish(c, i)) return NULL;
  bool is = false;
  napi_typedarray_type t;
  size_t len = 0;
  void *data = NULL;
  char msg[160];
  if (napi_is_typedarray(c->env, c->argv[i], &is) != napi_ok || !is ||
      napi_get_typedarray_info(c->env, c->argv[i], &t, &len, &data, NULL, NULL) != napi_ok || t != type) {
    snprintf(msg, sizeof msg, "resnet_native: expected a %s for %s", type == napi_int32_array ? "Int32Array" :
             type == napi_float64_array ? "Float64Array" : "Float32Array", name);
    fail(c, "TypeError", msg);
    return NULL;
  }
  if (need < 0 || (uint64_t)len < (uint64_t)need) {
    snprintf(msg, sizeof msg, "resnet_native: %s has %zu elements but the call needs %lld", name, len, (long long)need);
    fail(c, "RangeError", msg);
    return NULL;
  }
  // A zero-length TypedArray may have no backing store; kernels never touch it then, but keep pointers non-NULL.
  static float empty[16];
  return data ? data : (void *)empty;
}

static int64_t integer(call_t *c, size_t i, int64_t lo, const char *name) {
  double d = 0;
  char msg[128];
  if (c->failed) return 0;
  if (napi_get_value_double(c->env, c->argv[i], &d) != napi_ok || d != (double)(int64_t)d || d < (double)lo || d > (double)DIM_MAX) {
    snprintf(msg, sizeof msg, "resnet_native: %s must be an integer in [%lld, 2^40]", name, (long long)lo);
    fail(c, "RangeError", msg);
    return 0;
  }
  return (int64_t)d;
}

static double number(call_t *c, size_t i) {
  double d = 0;
  if (!c->failed && napi_get_value_double(c->env, c->argv[i], &d) != napi_ok) fail(c, "TypeError", "resnet_native: expected a number");
  return d;
}

static int boolean(call_t *c, size_t i) {
  bool b = false;
  if (!c->failed && napi_get_value_bool(c->env, c->argv[i], &b) != napi_ok) fail(c, "TypeError", "resnet_native: expected a boolean");
  return b;
}

/** Product of n sizes, or -1 on overflow (typed() then rejects it). */
static int64_t prod(int n, const int64_t *v) {
  int64_t r = 1;
  for (int i = 0; i < n; i++)
    if (__builtin_mul_overflow(r, v[i], &r)) return -1;
  return r;
}
#define PROD(...) prod(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), (int64_t[]){__VA_ARGS__})

/** Read a Float64Array of n integers >= the given minimums into out. */
static void dims(call_t *c, size_t i, int n, const int64_t *mins, int64_t *out, const char *name) {
  double *d = typed(c, i, napi_float64_array, n, 0, name);
  for (int k = 0; k < n && !c->failed; k++) {
    if (d[k] != (double)(int64_t)d[k] || d[k] < (double)mins[k] || d[k] > (double)DIM_MAX) {
      char msg[128];
      snprintf(msg, sizeof msg, "resnet_native: %s[%d] = %g is out of range", name, k, d[k]);
      fail(c, "RangeError", msg);
    }
    out[k] = (int64_t)d[k];
  }
}

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// conv params: [N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups]
static int conv_params(call_t *c, size_t i, int relu, dl_conv2d_params *p) {
  static const int64_t mins[16] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  int64_t d[16] = {0};
  dims(c, i, 16, mins, d, "conv2d params");
  if (c->failed) return 0;
  *p = (dl_conv2d_params){d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13],
                          d[14], d[15], relu, 0};
  if (p->C % p->groups || p->O % p->groups) {
    fail(c, "RangeError", "resnet_native: channels must be divisible by groups");
    return 0;
  }
  return 1;
}

// conv2dPackedSize(params) -> number
static napi_value conv2d_packed_size(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 1) || !conv_params(&c, 0, 0, &p)) return NULL;
  napi_value r;
  napi_create_double(env, (double)dl_conv2d_packed_size(&p), &r);
  return r;
}

// conv2dPack(params, w, packed)
static napi_value conv2d_pack(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 3) || !conv_params(&c, 0, 0, &p)) return NULL;
  float *w = typed(&c, 1, napi_float32_array, PROD(p.O, p.C / p.groups, p.KH, p.KW), 0, "conv2d weight");
  float *packed = typed(&c, 2, napi_float32_array, dl_conv2d_packed_size(&p), 0, "conv2d packed weight");
  if (c.failed) return NULL;
  dl_conv2d_pack(&p, w, packed);
  return undefined(env);
}

// conv2d(params, x, w, packed|null, bias|null, residual|null, relu, y)
static napi_value conv2d(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 8)) return NULL;
  if (!conv_params(&c, 0, boolean(&c, 6), &p)) return NULL;
  int64_t ny = PROD(p.N, p.O, p.OH, p.OW);
  float *x = typed(&c, 1, napi_float32_array, PROD(p.N, p.C, p.H, p.W), 0, "conv2d input");
  float *w = typed(&c, 2, napi_float32_array, PROD(p.O, p.C / p.groups, p.KH, p.KW), 0, "conv2d weight");
  float *packed = typed(&c, 3, napi_float32_array, dl_conv2d_packed_size(&p), 1, "conv2d packed weight");
  float *bias = typed(&c, 4, napi_float32_array, p.O, 1, "conv2d bias");
  float *res = typed(&c, 5, napi_float32_array, ny, 1, "conv2d residual");
  float *y = typed(&c, 7, napi_float32_array, ny, 0, "conv2d output");
  if (c.failed) return NULL;
  dl_conv2d(&p, x, w, packed, bias, res, y);
  return undefined(env);
}

// gemm(transA, transB, M, N, K, alpha, A, B, beta, C)
static napi_value gemm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 10)) return NULL;
  int ta = boolean(&c, 0), tb = boolean(&c, 1);
  int64_t M = integer(&c, 2, 0, "M"), N = integer(&c, 3, 0, "N"), K = integer(&c, 4, 0, "K");
  float alpha = (float)number(&c, 5), beta = (float)number(&c, 8);
  float *A = typed(&c, 6, napi_float32_array, PROD(M, K), 0, "gemm A");
  float *B = typed(&c, 7, napi_float32_array, PROD(K, N), 0, "gemm B");
  float *C = typed(&c, 9, napi_float32_array, PROD(M, N), 0, "gemm C");
  if (c.failed) return NULL;
  dl_gemm(ta, tb, M, N, K, alpha, A, B, beta, C);
  return undefined(env);
}

// batchNorm(x, N, C, HW, mean, var, weight|null, bias|null, eps, relu, y)
static napi_value batchnorm(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 11)) return NULL;
  int64_t N = integer(&c, 1, 0, "N"), C = integer(&c, 2, 0, "C"), HW = integer(&c, 3, 0, "HW");
  float *x = typed(&c, 0, napi_float32_array, PROD(N, C, HW), 0, "batch_norm input");
  float *mean = typed(&c, 4, napi_float32_array, C, 0, "batch_norm mean");
  float *var = typed(&c, 5, napi_float32_array, C, 0, "batch_norm var");
  float *weight = typed(&c, 6, napi_float32_array, C, 1, "batch_norm weight");
  float *bias = typed(&c, 7, napi_float32_array, C, 1, "batch_norm bias");
  double eps = number(&c, 8);
  int relu = boolean(&c, 9);
  float *y = typed(&c, 10, napi_float32_array, PROD(N, C, HW), 0, "batch_norm output");
  if (c.failed) return NULL;
  dl_batchnorm(x, N, C, HW, mean, var, weight, bias, eps, relu, y);
  return undefined(env);
}

// batchNormStats(x, N, C, HW, mean, var)
static napi_value batchnorm_stats(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 6)) return NULL;
  int64_t N = integer(&c, 1, 0, "N"), C = integer(&c, 2, 0, "C"), HW = integer(&c, 3, 0, "HW");
  float *x = typed(&c, 0, napi_float32_array, PROD(N, C, HW), 0, "batch_norm input");
  float *mean = typed(&c, 4, napi_float32_array, C, 0, "batch_norm mean");
  float *var = typed(&c, 5, napi_float32_array, C, 0, "batch_norm var");
  if (c.failed) return NULL;
  dl_batchnorm_stats(x, N, C, HW, mean, var);
  return undefined(env);
}

// maxPool2d(params, x, y, indices|null); params [N, C, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw]
static napi_value maxpool2d(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 4)) return NULL;
  static const int64_t mins[14] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
  int64_t d[14] = {0};
  dims(&c, 0, 14, mins, d, "max_pool2d params");
  if (c.failed) return NULL;
  dl_pool2d_params p = {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13]};
  int64_t ny = PROD(p.N, p.C, p.OH, p.OW);
  float *x = typed(&c, 1, napi_float32_array, PROD(p.N, p.C, p.H, p.W), 0, "max_pool2d input");
  float *y = typed(&c, 2, napi_float32_array, ny, 0, "max_pool2d output");
  int32_t *idx = typed(&c, 3, napi_int32_array, ny, 1, "max_pool2d indices");
  if (c.failed) return NULL;
  dl_maxpool2d(&p, x, y, idx);
  return undefined(env);
}

// adaptiveAvgPool2d(x, N, C, H, W, OH, OW, y)
static napi_value adaptive_avgpool2d(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 8)) return NULL;
  int64_t N = integer(&c, 1, 0, "N"), C = integer(&c, 2, 0, "C"), H = integer(&c, 3, 1, "H"),
          W = integer(&c, 4, 1, "W"), OH = integer(&c, 5, 1, "OH"), OW = integer(&c, 6, 1, "OW");
  float *x = typed(&c, 0, napi_float32_array, PROD(N, C, H, W), 0, "adaptive_avg_pool2d input");
  float *y = typed(&c, 7, napi_float32_array, PROD(N, C, OH, OW), 0, "adaptive_avg_pool2d output");
  if (c.failed) return NULL;
  dl_adaptive_avgpool2d(x, N, C, H, W, OH, OW, y);
  return undefined(env);
}

// relu(x, y, n)
static napi_value relu(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 3)) return NULL;
  int64_t n = integer(&c, 2, 0, "n");
  float *x = typed(&c, 0, napi_float32_array, n, 0, "relu input");
  float *y = typed(&c, 1, napi_float32_array, n, 0, "relu output");
  if (c.failed) return NULL;
  dl_relu(x, y, n);
  return undefined(env);
}

// add(a, b, y, n, relu)
static napi_value add(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 5)) return NULL;
  int64_t n = integer(&c, 3, 0, "n");
  float *a = typed(&c, 0, napi_float32_array, n, 0, "add input");
  float *b = typed(&c, 1, napi_float32_array, n, 0, "add other");
  float *y = typed(&c, 2, napi_float32_array, n, 0, "add output");
  int r = boolean(&c, 4);
  if (c.failed) return NULL;
  dl_add(a, b, y, n, r);
  return undefined(env);
}

// ---- backward (training) --------------------------------------------------------------------------------------

// conv2dBackwardDataPackedSize(params) -> number
static napi_value conv2d_bwd_data_packed_size(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 1) || !conv_params(&c, 0, 0, &p)) return NULL;
  napi_value r;
  napi_create_double(env, (double)dl_conv2d_bwd_data_packed_size(&p), &r);
  return r;
}

// conv2dBackwardDataPack(params, w, packed)
static napi_value conv2d_bwd_data_pack(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 3) || !conv_params(&c, 0, 0, &p)) return NULL;
  float *w = typed(&c, 1, napi_float32_array, PROD(p.O, p.C / p.groups, p.KH, p.KW), 0, "conv2d weight");
  float *packed = typed(&c, 2, napi_float32_array, dl_conv2d_bwd_data_packed_size(&p), 0, "conv2d backward packed weight");
  if (c.failed) return NULL;
  dl_conv2d_bwd_data_pack(&p, w, packed);
  return undefined(env);
}

// conv2dBackwardData(params, dy, w, packed|null, dx)
static napi_value conv2d_bwd_data(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 5) || !conv_params(&c, 0, 0, &p)) return NULL;
  float *dy = typed(&c, 1, napi_float32_array, PROD(p.N, p.O, p.OH, p.OW), 0, "conv2d output gradient");
  float *w = typed(&c, 2, napi_float32_array, PROD(p.O, p.C / p.groups, p.KH, p.KW), 0, "conv2d weight");
  float *packed = typed(&c, 3, napi_float32_array, dl_conv2d_bwd_data_packed_size(&p), 1, "conv2d backward packed weight");
  float *dx = typed(&c, 4, napi_float32_array, PROD(p.N, p.C, p.H, p.W), 0, "conv2d input gradient");
  if (c.failed) return NULL;
  dl_conv2d_bwd_data(&p, dy, w, packed, dx);
  return undefined(env);
}

// conv2dBackwardWeight(params, x, dy, dw, db|null)
static napi_value conv2d_bwd_weight(napi_env env, napi_callback_info info) {
  call_t c;
  dl_conv2d_params p;
  if (!begin(&c, env, info, 5) || !conv_params(&c, 0, 0, &p)) return NULL;
  float *x = typed(&c, 1, napi_float32_array, PROD(p.N, p.C, p.H, p.W), 0, "conv2d input");
  float *dy = typed(&c, 2, napi_float32_array, PROD(p.N, p.O, p.OH, p.OW), 0, "conv2d output gradient");
  float *dw = typed(&c, 3, napi_float32_array, PROD(p.O, p.C / p.groups, p.KH, p.KW), 0, "conv2d weight gradient");
  float *db = typed(&c, 4, napi_float32_array, p.O, 1, "conv2d bias gradient");
  if (c.failed) return NULL;
  dl_conv2d_bwd_weight(&p, x, dy, dw, db);
  return undefined(env);
}

// batchNormBackward(x, dy, y|null, N, C, HW, mean, invstd, weight|null, dx, dweight|null, dbias|null)
static napi_value batchnorm_bwd(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 12)) return NULL;
  int64_t N = integer(&c, 3, 0, "N"), C = integer(&c, 4, 0, "C"), HW = integer(&c, 5, 0, "HW");
  int64_t n = PROD(N, C, HW);
  float *x = typed(&c, 0, napi_float32_array, n, 0, "batch_norm input");
  float *dy = typed(&c, 1, napi_float32_array, n, 0, "batch_norm output gradient");
  float *y = typed(&c, 2, napi_float32_array, n, 1, "batch_norm relu output");
  float *mean = typed(&c, 6, napi_float32_array, C, 0, "batch_norm mean");
  float *invstd = typed(&c, 7, napi_float32_array, C, 0, "batch_norm invstd");
  float *weight = typed(&c, 8, napi_float32_array, C, 1, "batch_norm weight");
  float *dx = typed(&c, 9, napi_float32_array, n, 0, "batch_norm input gradient");
  float *dweight = typed(&c, 10, napi_float32_array, C, 1, "batch_norm weight gradient");
  float *dbias = typed(&c, 11, napi_float32_array, C, 1, "batch_norm bias gradient");
  if (c.failed) return NULL;
  dl_batchnorm_bwd(x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias);
  return undefined(env);
}

// maxPool2dBackward(params, dy, indices, dx); params as maxPool2d's. Every index must lie in [0, H*W).
static napi_value maxpool2d_bwd(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 4)) return NULL;
  static const int64_t mins[14] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1};
  int64_t d[14] = {0};
  dims(&c, 0, 14, mins, d, "max_pool2d params");
  if (c.failed) return NULL;
  dl_pool2d_params p = {d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13]};
  int64_t ny = PROD(p.N, p.C, p.OH, p.OW), plane = PROD(p.H, p.W);
  float *dy = typed(&c, 1, napi_float32_array, ny, 0, "max_pool2d output gradient");
  int32_t *idx = typed(&c, 2, napi_int32_array, ny, 0, "max_pool2d indices");
  float *dx = typed(&c, 3, napi_float32_array, PROD(p.N, p.C, p.H, p.W), 0, "max_pool2d input gradient");
  if (c.failed) return NULL;
  for (int64_t i = 0; i < ny; i++) {
    if (idx[i] < 0 || idx[i] >= plane) {
      char msg[160];
      snprintf(msg, sizeof msg, "resnet_native: max_pool2d indices[%lld] = %d is outside [0, %lld) (H*W)",
               (long long)i, (int)idx[i], (long long)plane);
      fail(&c, "RangeError", msg);
      return NULL;
    }
  }
  dl_maxpool2d_bwd(&p, dy, idx, dx);
  return undefined(env);
}

// adaptiveAvgPool2dBackward(dy, N, C, H, W, OH, OW, dx)
static napi_value adaptive_avgpool2d_bwd(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 8)) return NULL;
  int64_t N = integer(&c, 1, 0, "N"), C = integer(&c, 2, 0, "C"), H = integer(&c, 3, 1, "H"),
          W = integer(&c, 4, 1, "W"), OH = integer(&c, 5, 1, "OH"), OW = integer(&c, 6, 1, "OW");
  float *dy = typed(&c, 0, napi_float32_array, PROD(N, C, OH, OW), 0, "adaptive_avg_pool2d output gradient");
  float *dx = typed(&c, 7, napi_float32_array, PROD(N, C, H, W), 0, "adaptive_avg_pool2d input gradient");
  if (c.failed) return NULL;
  dl_adaptive_avgpool2d_bwd(dy, N, C, H, W, OH, OW, dx);
  return undefined(env);
}

// reluBackward(dy, y, dx, n)
static napi_value relu_bwd(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 4)) return NULL;
  int64_t n = integer(&c, 3, 0, "n");
  float *dy = typed(&c, 0, napi_float32_array, n, 0, "relu output gradient");
  float *y = typed(&c, 1, napi_float32_array, n, 0, "relu output");
  float *dx = typed(&c, 2, napi_float32_array, n, 0, "relu input gradient");
  if (c.failed) return NULL;
  dl_relu_bwd(dy, y, dx, n);
  return undefined(env);
}

// sgdStep(p, g, buf|null, n, lr, momentum, dampening, weightDecay, nesterov, maximize, first)
static napi_value sgd_step(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 11)) return NULL;
  int64_t n = integer(&c, 3, 0, "n");
  float *p = typed(&c, 0, napi_float32_array, n, 0, "sgd parameter");
  float *g = typed(&c, 1, napi_float32_array, n, 0, "sgd gradient");
  float *buf = typed(&c, 2, napi_float32_array, n, 1, "sgd momentum buffer");
  dl_sgd_params o = {number(&c, 4), number(&c, 5), number(&c, 6), number(&c, 7), boolean(&c, 8), boolean(&c, 9), boolean(&c, 10), 0};
  if (!c.failed && o.momentum != 0 && buf == NULL) fail(&c, "TypeError", "resnet_native: sgd with momentum needs a momentum buffer");
  if (c.failed) return NULL;
  dl_sgd_step(&o, p, g, buf, n);
  return undefined(env);
}

// adamwStep(p, g, m, v, vmax|null, n, lr, beta1, beta2, eps, weightDecay, stepSize, biasCorrection2Sqrt, maximize)
static napi_value adamw_step(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 14)) return NULL;
  int64_t n = integer(&c, 5, 0, "n");
  float *p = typed(&c, 0, napi_float32_array, n, 0, "adamw parameter");
  float *g = typed(&c, 1, napi_float32_array, n, 0, "adamw gradient");
  float *m = typed(&c, 2, napi_float32_array, n, 0, "adamw exp_avg");
  float *v = typed(&c, 3, napi_float32_array, n, 0, "adamw exp_avg_sq");
  float *vmax = typed(&c, 4, napi_float32_array, n, 1, "adamw max_exp_avg_sq");
  dl_adamw_params o = {number(&c, 6), number(&c, 7), number(&c, 8), number(&c, 9), number(&c, 10), number(&c, 11), number(&c, 12), boolean(&c, 13), 0};
  if (c.failed) return NULL;
  dl_adamw_step(&o, p, g, m, v, vmax, n);
  return undefined(env);
}

// ---- memory for op outputs (pool.c) ---------------------------------------------------------------------------
// Each block goes to JavaScript as the storage of one external ArrayBuffer; its finalizer, which Node runs on the
// JS thread once the ArrayBuffer is garbage, is the only way back into the pool, so a block is never handed out
// while an ArrayBuffer over it can still be reached. The finalize hint carries the block's mapped size.
// No napi_adjust_external_memory: V8 already counts every ArrayBuffer's byte length, external ones included, as
// external memory and schedules GC on it (one mark-compact per 64 MB of growth). Reporting the bytes again
// doubled the mark-compacts during a ResNet-50 forward (5.5 -> 9.5 per batch-8 forward) and gained nothing.

#define POOL_MAX_BYTES ((int64_t)1 << 31)

static void pool_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  pool_put(data, (size_t)(uintptr_t)hint);
}

// alloc(n) -> a Float32Array of n elements over a pooled block (contents unspecified), or undefined when the pool
// declines (n == 0, above 2 GB, over its limit, out of memory): the caller then allocates normally. Throws when
// this runtime refuses external array buffers (e.g. a V8 sandbox).
static napi_value alloc(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 1)) return NULL;
  int64_t n = integer(&c, 0, 0, "n");
  if (c.failed) return NULL;
  size_t mapped = 0;
  size_t bytes = (size_t)n * sizeof(float);
  void *b = n > 0 && (int64_t)bytes <= POOL_MAX_BYTES ? pool_get(bytes, &mapped) : NULL;
  if (!b) return undefined(env);
  napi_value ab, ta;
  napi_status st = napi_create_external_arraybuffer(env, b, bytes, pool_finalize, (void *)(uintptr_t)mapped, &ab);
  if (st != napi_ok) {
    const napi_extended_error_info *e = NULL;
    napi_get_last_error_info(env, &e);
    char msg[200];
    snprintf(msg, sizeof msg, "napi_create_external_arraybuffer failed (status %d: %s)", (int)st,
             e && e->error_message ? e->error_message : "no message");
    // These statuses come back before Node registers the finalizer, so the block is still ours. After any other
    // failure the finalizer may still run, so the block stays counted as live rather than risk a double return.
    if (st == napi_invalid_arg || st == napi_pending_exception || st == napi_no_external_buffers_allowed ||
        st == napi_cannot_run_js)
      pool_put(b, mapped);
    fail(&c, "Error", msg);
    return NULL;
  }
  if (napi_create_typedarray(env, napi_float32_array, (size_t)n, ab, 0, &ta) != napi_ok) {
    fail(&c, "Error", "resnet_native: napi_create_typedarray failed");  // ab's finalizer returns the block
    return NULL;
  }
  return ta;
}

static void pages_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  pages_free(data, (size_t)(uintptr_t)hint);
}

// allocPages(bytes) -> an ArrayBuffer of `bytes` zero bytes over its own mapping (pool.c pages_alloc: page aligned,
// huge pages requested from 2 MB up), unmapped when the ArrayBuffer is collected; undefined when bytes is 0 or the
// mapping fails (the caller then allocates normally). For reading large files (src/io/tensor-bytes.ts): in a VM
// the first touch of each fresh 4 KB page can cost microseconds, and a huge page takes 512 of them at once.
static napi_value alloc_pages(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 1)) return NULL;
  int64_t bytes = integer(&c, 0, 0, "bytes");
  if (c.failed) return NULL;
  size_t mapped = 0;
  void *b = pages_alloc((size_t)bytes, &mapped);
  if (!b) return undefined(env);
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, b, (size_t)bytes, pages_finalize, (void *)(uintptr_t)mapped, &ab);
  if (st != napi_ok) {
    // as in alloc(): these statuses come back before Node registers the finalizer; after any other, leak the block
    // rather than risk unmapping it twice
    if (st == napi_invalid_arg || st == napi_pending_exception || st == napi_no_external_buffers_allowed || st == napi_cannot_run_js)
      pages_free(b, mapped);
    return undefined(env);
  }
  return ab;
}

static char probe_block[64];
static void probe_finalize(napi_env env, void *data, void *hint) { (void)env, (void)data, (void)hint; }

// poolProbe(): throws when this runtime refuses external array buffers (alloc would then always throw).
static napi_value pool_probe(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 0)) return NULL;
  napi_value ab;
  napi_status st = napi_create_external_arraybuffer(env, probe_block, sizeof probe_block, probe_finalize, NULL, &ab);
  if (st != napi_ok) {
    const napi_extended_error_info *e = NULL;
    napi_get_last_error_info(env, &e);
    char msg[200];
    snprintf(msg, sizeof msg, "napi_create_external_arraybuffer failed (status %d: %s)", (int)st,
             e && e->error_message ? e->error_message : "no message");
    fail(&c, "Error", msg);
    return NULL;
  }
  return undefined(env);
}

static void set_double(napi_env env, napi_value obj, const char *name, double v) {
  napi_value x;
  napi_create_double(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

// poolStats() -> {limit, live, idle, hits, misses, refusals, evictions} (bytes and counts)
static napi_value pool_stats_fn(napi_env env, napi_callback_info info) {
  (void)info;
  pool_stats s;
  pool_get_stats(&s);
  napi_value o;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  set_double(env, o, "limit", (double)s.limit);
  set_double(env, o, "live", (double)s.live);
  set_double(env, o, "idle", (double)s.idle);
  set_double(env, o, "hits", (double)s.hits);
  set_double(env, o, "misses", (double)s.misses);
  set_double(env, o, "refusals", (double)s.refusals);
  set_double(env, o, "evictions", (double)s.evictions);
  return o;
}

// poolSetLimit(bytes)
static napi_value pool_set_limit_fn(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 1)) return NULL;
  int64_t bytes = integer(&c, 0, 0, "pool limit");
  if (c.failed) return NULL;
  pool_set_limit((uint64_t)bytes);
  return undefined(env);
}

// poolTrim(): unmap every idle block.
static napi_value pool_trim_fn(napi_env env, napi_callback_info info) {
  (void)info;
  pool_trim();
  return undefined(env);
}

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value isa(napi_env env, napi_callback_info info) { (void)info; return str(env, dl_isa()); }
static napi_value isa_list(napi_env env, napi_callback_info info) { (void)info; return str(env, dl_isa_list()); }

// setIsa(name): throws when this CPU or build does not have it.
static napi_value set_isa(napi_env env, napi_callback_info info) {
  call_t c;
  char name[32] = {0};
  size_t len = 0;
  if (!begin(&c, env, info, 1)) return NULL;
  if (napi_get_value_string_utf8(env, c.argv[0], name, sizeof name, &len) != napi_ok || dl_set_isa(name) != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "resnet_native: SIMD level '%s' is not available here (available: %s)", name, dl_isa_list());
    fail(&c, "RangeError", msg);
    return NULL;
  }
  return str(env, dl_isa());
}

static napi_value num_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, dl_num_threads(), &v);
  return v;
}

static napi_value num_cores(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  napi_create_int32(env, dl_num_cores(), &v);
  return v;
}

static napi_value set_num_threads(napi_env env, napi_callback_info info) {
  call_t c;
  if (!begin(&c, env, info, 1)) return NULL;
  int64_t n = integer(&c, 0, 1, "threads");
  if (c.failed) return NULL;
  dl_set_num_threads(n > DL_MAX_THREADS ? DL_MAX_THREADS : (int)n);
  return num_threads(env, info);
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
    {"conv2dPackedSize", conv2d_packed_size}, {"conv2dPack", conv2d_pack}, {"conv2d", conv2d},
    {"gemm", gemm}, {"batchNorm", batchnorm}, {"batchNormStats", batchnorm_stats}, {"maxPool2d", maxpool2d},
    {"adaptiveAvgPool2d", adaptive_avgpool2d}, {"relu", relu}, {"add", add}, {"isa", isa},
    {"isaList", isa_list}, {"setIsa", set_isa}, {"numThreads", num_threads}, {"numCores", num_cores},
    {"setNumThreads", set_num_threads}, {"alloc", alloc}, {"poolStats", pool_stats_fn},
    {"poolSetLimit", pool_set_limit_fn}, {"poolTrim", pool_trim_fn}, {"poolProbe", pool_probe}, {"allocPages", alloc_pages},
    {"conv2dBackwardDataPackedSize", conv2d_bwd_data_packed_size}, {"conv2dBackwardDataPack", conv2d_bwd_data_pack},
    {"conv2dBackwardData", conv2d_bwd_data}, {"conv2dBackwardWeight", conv2d_bwd_weight},
    {"batchNormBackward", batchnorm_bwd}, {"maxPool2dBackward", maxpool2d_bwd},
    {"adaptiveAvgPool2dBackward", adaptive_avgpool2d_bwd}, {"reluBackward", relu_bwd},
    {"sgdStep", sgd_step}, {"adamwStep", adamw_step},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

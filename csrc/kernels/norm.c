// norm.c: batch normalisation with given statistics, and the per-channel batch statistics.
// x and y are (N,C,HW); mean, var, weight, bias are (C).
//
// dl_batchnorm folds each channel into y = x*scale + shift (scale and shift computed in double, rounded once),
// one FMA per element, threads over (n, c) planes. dl_batchnorm_stats is one pass per channel (sum and sum of
// squares of x minus a sample of the channel) with double accumulators, so its error does not grow with N*HW;
// threads over channels. Its _ref is the textbook two passes (mean, then the mean squared deviation).

#include <math.h>

#include "../simd.h"
#include "kernels.h"

typedef struct {
  const float *x;
  int64_t N, C, HW;
  const float *mean, *var, *weight, *bias;
  double eps;
  int relu;
  float *y;
} bn_ctx;

static void bn_coeffs(const bn_ctx *b, int64_t c, float *scale, float *shift) {
  double invstd = 1.0 / sqrt((double)b->var[c] + b->eps);
  double s = (b->weight ? (double)b->weight[c] : 1.0) * invstd;
  *scale = (float)s;
  *shift = (float)((b->bias ? (double)b->bias[c] : 0.0) - (double)b->mean[c] * s);
}

static void bn_task(void *arg, int ith, int nth) {
  const bn_ctx *b = arg;
  int64_t lo, hi;
  dl_split(b->N * b->C, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) {
    float scale, shift;
    bn_coeffs(b, nc % b->C, &scale, &shift);
    const float *x = b->x + nc * b->HW;
    float *y = b->y + nc * b->HW;
    vf vs = vf_splat(scale), vb = vf_splat(shift);
    int64_t i = 0;
    if (b->relu)
      for (; i + DL_VL <= b->HW; i += DL_VL) vf_store(y + i, vf_relu(vf_load(x + i) * vs + vb));
    else
      for (; i + DL_VL <= b->HW; i += DL_VL) vf_store(y + i, vf_load(x + i) * vs + vb);
    for (; i < b->HW; i++) {
      float v = x[i] * scale + shift;
      y[i] = !b->relu || v > 0 || v != v ? v : 0.0f;
    }
  }
}

void dl_batchnorm(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                  const float *weight, const float *bias, double eps, int relu, float *y) {
  bn_ctx b = {x, N, C, HW, mean, var, weight, bias, eps, relu, y};
  dl_parallel(bn_task, &b, dl_threads_for(N * C * HW, 1 << 16));
}

void dl_batchnorm_ref(const float *x, int64_t N, int64_t C, int64_t HW, const float *mean, const float *var,
                      const float *weight, const float *bias, double eps, int relu, float *y) {
  for (int64_t c = 0; c < C; c++) {
    double invstd = 1.0 / sqrt((double)var[c] + eps);
    double scale = (weight ? (double)weight[c] : 1.0) * invstd;
    double shift = (bias ? (double)bias[c] : 0.0) - (double)mean[c] * scale;
    for (int64_t n = 0; n < N; n++) {
      for (int64_t i = (n * C + c) * HW; i < (n * C + c + 1) * HW; i++) {
        double v = (double)x[i] * scale + shift;
        if (relu && !(v > 0) && v == v) v = 0;
        y[i] = (float)v;
      }
    }
  }
}

typedef struct {
  const float *x;
  int64_t N, C, HW;
  float *mean, *var;
} stats_ctx;

// Sum and sum of squares of (x - shift) over one plane, in double lanes.
static void shifted_sums(const float *x, int64_t n, double shift, double *sum, double *sumsq) {
  vd as = {0}, aq = {0}, vm = shift - (vd){0};
  int64_t i = 0;
  for (; i + DL_VL <= n; i += DL_VL) {
    vd d = vf_to_vd(vf_load(x + i)) - vm;
    as += d;
    aq += d * d;
  }
  double s = vd_hsum(&as), q = vd_hsum(&aq);
  for (; i < n; i++) {
    double d = (double)x[i] - shift;
    s += d;
    q += d * d;
  }
  *sum += s;
  *sumsq += q;
}

static void stats_task(void *arg, int ith, int nth) {
  const stats_ctx *s = arg;
  int64_t lo, hi;
  dl_split(s->C, ith, nth, &lo, &hi);
  double count = (double)(s->N * s->HW);
  for (int64_t c = lo; c < hi; c++) {
    // one pass, shifted by the channel's first value: var = E[(x-k)^2] - (E[x-k])^2 has no cancellation worth
    // the name in double when k is a sample of the channel (the two-pass _ref is the check)
    double k = count > 0 ? s->x[c * s->HW] : 0, sum = 0, ss = 0;
    for (int64_t n = 0; n < s->N; n++) shifted_sums(s->x + (n * s->C + c) * s->HW, s->HW, k, &sum, &ss);
    double m = sum / count, v = ss / count - m * m;
    s->mean[c] = (float)(k + m);
    s->var[c] = (float)(v < 0 ? 0 : v); // rounding can leave a constant channel a hair below 0; NaN stays NaN
  }
}

void dl_batchnorm_stats(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var) {
  stats_ctx s = {x, N, C, HW, mean, var};
  int nth = dl_threads_for(N * C * HW, 1 << 16);
  if (nth > C) nth = (int)C;
  dl_parallel(stats_task, &s, nth);
}

void dl_batchnorm_stats_ref(const float *x, int64_t N, int64_t C, int64_t HW, float *mean, float *var) {
  double count = (double)(N * HW);
  for (int64_t c = 0; c < C; c++) {
    double s = 0, ss = 0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) s += x[(n * C + c) * HW + i];
    double m = s / count;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = 0; i < HW; i++) {
        double d = x[(n * C + c) * HW + i] - m;
        ss += d * d;
      }
    mean[c] = (float)m;
    var[c] = (float)(ss / count);
  }
}

// ---- backward (training mode) ----------------------------------------------------------------------------------
// With xhat = (x - mean) * invstd and M = N*HW per channel: dbias = sum(dy), dweight = sum(dy * xhat) and
// dx = weight * invstd * (dy - sum(dy)/M - xhat * sum(dy * xhat)/M) (PyTorch's batch_norm_backward). Threads take
// whole channels: the two sums (float vectors per plane, added up in double), then dx from the same planes while
// they are still in L2, so x and dy are read from memory once. With y (the output of a fused relu), dy is taken as
// 0 where y <= 0 (or NaN), in both passes: relu's backward folded in.

typedef struct {
  const float *x, *dy, *y;
  int64_t N, C, HW;
  const float *mean, *invstd, *weight;
  float *dx, *dweight, *dbias;
} bnb_ctx;

/** dy where the fused relu passed (y > 0), 0 elsewhere; dy itself without a relu. */
DL_INLINE vf bnb_grad(const float *dy, const float *y, int64_t i) {
  vf g = vf_load(dy + i);
  return y ? vf_and(g, vf_load(y + i) > 0) : g;
}
DL_INLINE float bnb_grad1(const float *dy, const float *y, int64_t i) { return !y || y[i] > 0 ? dy[i] : 0.0f; }

static void bnb_task(void *arg, int ith, int nth) {
  const bnb_ctx *b = arg;
  const int64_t HW = b->HW;
  int64_t lo, hi;
  dl_split(b->C, ith, nth, &lo, &hi);
  for (int64_t c = lo; c < hi; c++) {
    const float m = b->mean[c];
    const vf vm = vf_splat(m);
    double sdy = 0, sdx = 0;
    for (int64_t n = 0; n < b->N; n++) {
      const float *x = b->x + (n * b->C + c) * HW, *dy = b->dy + (n * b->C + c) * HW, *y = b->y ? b->y + (n * b->C + c) * HW : NULL;
      for (int64_t i0 = 0; i0 < HW; i0 += 4096) {  // float partial sums over at most 4096 / VL terms per lane
        const int64_t i1 = i0 + 4096 < HW ? i0 + 4096 : HW;
        vf a1 = vf_zero(), a2 = vf_zero();
        int64_t i = i0;
        for (; i + DL_VL <= i1; i += DL_VL) {
          vf g = bnb_grad(dy, y, i);
          a1 += g;
          a2 = g * (vf_load(x + i) - vm) + a2;
        }
        sdy += vf_hsum(a1);
        sdx += vf_hsum(a2);
        for (; i < i1; i++) {
          float g = bnb_grad1(dy, y, i);
          sdy += g;
          sdx += (double)g * (x[i] - m);
        }
      }
    }
    const double inv = b->invstd[c], w = b->weight ? b->weight[c] : 1.0, M = (double)(b->N * HW);
    if (b->dbias) b->dbias[c] = (float)sdy;
    if (b->dweight) b->dweight[c] = (float)(sdx * inv);
    if (!b->dx) continue;
    // dx = k1 * dy + k2 * (x - mean) + k0
    const float k1 = (float)(w * inv), k2 = (float)(-w * inv * inv * inv * sdx / M), k0 = (float)(-w * inv * sdy / M);
    const vf v1 = vf_splat(k1), v2 = vf_splat(k2), v0 = vf_splat(k0);
    for (int64_t n = 0; n < b->N; n++) {
      const float *x = b->x + (n * b->C + c) * HW, *dy = b->dy + (n * b->C + c) * HW, *y = b->y ? b->y + (n * b->C + c) * HW : NULL;
      float *dx = b->dx + (n * b->C + c) * HW;
      int64_t i = 0;
      for (; i + DL_VL <= HW; i += DL_VL) vf_store(dx + i, v1 * bnb_grad(dy, y, i) + (v2 * (vf_load(x + i) - vm) + v0));
      for (; i < HW; i++) dx[i] = k1 * bnb_grad1(dy, y, i) + (k2 * (x[i] - m) + k0);
    }
  }
}

void dl_batchnorm_bwd(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                      const float *invstd, const float *weight, float *dx, float *dweight, float *dbias) {
  bnb_ctx b = {x, dy, y, N, C, HW, mean, invstd, weight, dx, dweight, dbias};
  int nth = dl_threads_for(N * C * HW, 1 << 15);
  if (nth > C) nth = (int)C;
  dl_parallel(bnb_task, &b, nth);
}

void dl_batchnorm_bwd_ref(const float *x, const float *dy, const float *y, int64_t N, int64_t C, int64_t HW, const float *mean,
                          const float *invstd, const float *weight, float *dx, float *dweight, float *dbias) {
  const double M = (double)(N * HW);
  for (int64_t c = 0; c < C; c++) {
    double sdy = 0, sdx = 0, m = mean[c], inv = invstd[c], w = weight ? weight[c] : 1.0;
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = (n * C + c) * HW; i < (n * C + c + 1) * HW; i++) {
        double g = !y || y[i] > 0 ? dy[i] : 0.0;
        sdy += g;
        sdx += g * (x[i] - m);
      }
    if (dbias) dbias[c] = (float)sdy;
    if (dweight) dweight[c] = (float)(sdx * inv);
    for (int64_t n = 0; n < N; n++)
      for (int64_t i = (n * C + c) * HW; i < (n * C + c + 1) * HW; i++)
        dx[i] = (float)(w * inv * ((!y || y[i] > 0 ? dy[i] : 0.0) - sdy / M - (x[i] - m) * inv * inv * sdx / M));
  }
}

// optim.c: one optimizer step over one float32 parameter, in place: SGD (momentum, dampening, Nesterov, weight
// decay, maximize) and AdamW (decoupled weight decay, amsgrad, maximize), the update rules of torch.optim in
// PyTorch 1.13 (see src/optim/sgd.ts and adamw.ts for the formulas). p, g and the state arrays are (n).
//
// The fast versions compute in float32, as PyTorch's own single-tensor steps do (each of its ops rounds to float32;
// here FMAs round less often), vectorized and split over threads for big tensors. The _ref versions compute each
// element in double and round once per stored value: the same arithmetic, in the same order, as the js backend's
// loops (backend/js.ts); the compiler may contract a*b+c into an FMA here, so the two can differ in the last bit of a
// double, which rounding to float32 almost always hides (the tests allow one float32 ulp).
// Memory-bound: SGD with momentum reads p, g, buf and writes p, buf (20 bytes per element).

#include <math.h>

#include "../simd.h"
#include "kernels.h"

#define GRAIN (1 << 15)  // elements per thread, at least

typedef struct {
  const dl_sgd_params *o;
  float *p, *buf;
  const float *g;
  int64_t n;
} sgd_ctx;

static void sgd_task(void *arg, int ith, int nth) {
  const sgd_ctx *c = arg;
  const dl_sgd_params *o = c->o;
  int64_t lo, hi;
  dl_split_runs(c->n, DL_VL, ith, nth, &lo, &hi);
  const float lr = (float)o->lr, mom = (float)o->momentum, keep = (float)(1.0 - o->dampening), wd = (float)o->weight_decay;
  const float sign = o->maximize ? -1.0f : 1.0f;
  float *p = c->p, *b = c->buf;
  const float *g = c->g;
  const vf vlr = vf_splat(lr), vmom = vf_splat(mom), vkeep = vf_splat(keep), vwd = vf_splat(wd), vsign = vf_splat(sign);
  int64_t i = lo;
  if (mom == 0.0f) {
    for (; i + DL_VL <= hi; i += DL_VL) {
      vf w = vf_load(p + i);
      vf_store(p + i, w - vlr * (vsign * vf_load(g + i) + vwd * w));
    }
    for (; i < hi; i++) p[i] -= lr * (sign * g[i] + wd * p[i]);
  } else if (o->first) {
    for (; i + DL_VL <= hi; i += DL_VL) {
      vf w = vf_load(p + i), d = vsign * vf_load(g + i) + vwd * w;
      vf_store(b + i, d);
      vf_store(p + i, w - vlr * (o->nesterov ? d + vmom * d : d));
    }
    for (; i < hi; i++) {
      float d = sign * g[i] + wd * p[i];
      b[i] = d;
      p[i] -= lr * (o->nesterov ? d + mom * d : d);
    }
  } else if (o->nesterov) {
    for (; i + DL_VL <= hi; i += DL_VL) {
      vf w = vf_load(p + i), d = vsign * vf_load(g + i) + vwd * w;
      vf bi = vmom * vf_load(b + i) + vkeep * d;
      vf_store(b + i, bi);
      vf_store(p + i, w - vlr * (d + vmom * bi));
    }
    for (; i < hi; i++) {
      float d = sign * g[i] + wd * p[i], bi = mom * b[i] + keep * d;
      b[i] = bi;
      p[i] -= lr * (d + mom * bi);
    }
  } else {
    for (; i + DL_VL <= hi; i += DL_VL) {
      vf w = vf_load(p + i), d = vsign * vf_load(g + i) + vwd * w;
      vf bi = vmom * vf_load(b + i) + vkeep * d;
      vf_store(b + i, bi);
      vf_store(p + i, w - vlr * bi);
    }
    for (; i < hi; i++) {
      float bi = mom * b[i] + keep * (sign * g[i] + wd * p[i]);
      b[i] = bi;
      p[i] -= lr * bi;
    }
  }
}

void dl_sgd_step(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n) {
  sgd_ctx c = {o, p, buf, g, n};
  dl_parallel(sgd_task, &c, dl_threads_for(n, GRAIN));
}

void dl_sgd_step_ref(const dl_sgd_params *o, float *p, const float *g, float *buf, int64_t n) {
  const double lr = o->lr, mom = o->momentum, keep = 1.0 - o->dampening, wd = o->weight_decay, sign = o->maximize ? -1.0 : 1.0;
  for (int64_t i = 0; i < n; i++) {
    double d = sign * g[i] + wd * p[i];
    if (mom == 0.0) {
      p[i] = (float)(p[i] - lr * d);
    } else if (o->first) {
      buf[i] = (float)d;
      double b = buf[i];  // the stored value, as js reads it back
      p[i] = (float)(p[i] - lr * (o->nesterov ? b + mom * b : b));
    } else {
      double b = mom * buf[i] + keep * d;
      buf[i] = (float)b;
      p[i] = (float)(p[i] - lr * (o->nesterov ? d + mom * b : b));
    }
  }
}

// ---- AdamW -------------------------------------------------------------------------------------------------

typedef struct {
  const dl_adamw_params *o;
  float *p, *m, *v, *vmax;
  const float *g;
  int64_t n;
} adamw_ctx;

DL_INLINE vf vf_sqrt(vf x) {
#if DL_VL == 16
  return (vf)_mm512_sqrt_ps((__m512)x);
#elif DL_VL == 8 && defined(__AVX__)
  return (vf)_mm256_sqrt_ps((__m256)x);
#else
  for (int l = 0; l < DL_VL; l++) x[l] = sqrtf(x[l]);
  return x;
#endif
}

static void adamw_task(void *arg, int ith, int nth) {
  const adamw_ctx *c = arg;
  const dl_adamw_params *o = c->o;
  int64_t lo, hi;
  dl_split_runs(c->n, DL_VL, ith, nth, &lo, &hi);
  const float b1 = (float)o->beta1, b2 = (float)o->beta2, c1 = (float)(1.0 - o->beta1), c2 = (float)(1.0 - o->beta2);
  const float decay = (float)(1.0 - o->lr * o->weight_decay), step = (float)o->step_size, inv_bc2 = (float)(1.0 / o->bias_correction2_sqrt);
  const float eps = (float)o->eps, sign = o->maximize ? -1.0f : 1.0f;
  float *p = c->p, *m = c->m, *v = c->v, *vmax = c->vmax;
  const float *g = c->g;
  int64_t i = lo;
  const vf vb1 = vf_splat(b1), vb2 = vf_splat(b2), vc1 = vf_splat(c1), vc2 = vf_splat(c2), vdecay = vf_splat(decay);
  const vf vstep = vf_splat(step), vinv = vf_splat(inv_bc2), veps = vf_splat(eps), vsign = vf_splat(sign);
  for (; i + DL_VL <= hi; i += DL_VL) {
    vf gi = vsign * vf_load(g + i);
    vf mi = vb1 * vf_load(m + i) + vc1 * gi;
    vf vi = vb2 * vf_load(v + i) + vc2 * (gi * gi);
    vf_store(m + i, mi);
    vf_store(v + i, vi);
    if (vmax) {
      vf old = vf_load(vmax + i);
      vi = vf_select(old > vi, old, vi);
      vf_store(vmax + i, vi);
    }
    vf_store(p + i, vf_load(p + i) * vdecay - vstep * (mi / (vf_sqrt(vi) * vinv + veps)));
  }
  for (; i < hi; i++) {
    float gi = sign * g[i];
    float mi = b1 * m[i] + c1 * gi, vi = b2 * v[i] + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    if (vmax) vi = vmax[i] = vmax[i] > vi ? vmax[i] : vi;
    p[i] = p[i] * decay - step * (mi / (sqrtf(vi) * inv_bc2 + eps));
  }
}

void dl_adamw_step(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n) {
  adamw_ctx c = {o, p, m, v, vmax, g, n};
  dl_parallel(adamw_task, &c, dl_threads_for(n, GRAIN));
}

void dl_adamw_step_ref(const dl_adamw_params *o, float *p, const float *g, float *m, float *v, float *vmax, int64_t n) {
  const double b1 = o->beta1, b2 = o->beta2, decay = 1.0 - o->lr * o->weight_decay, sign = o->maximize ? -1.0 : 1.0;
  for (int64_t i = 0; i < n; i++) {
    double gi = sign * g[i];
    double wi = p[i] * decay;
    double mi = b1 * m[i] + (1.0 - b1) * gi;
    m[i] = (float)mi;
    double vi = b2 * v[i] + (1.0 - b2) * gi * gi;
    v[i] = (float)vi;
    if (vmax) {
      double a = vmax[i];
      vi = a != a || vi != vi ? NAN : a > vi ? a : vi;  // Math.max: NaN wins
      vmax[i] = (float)vi;
    }
    p[i] = (float)(wi - o->step_size * (mi / (sqrt(vi) / o->bias_correction2_sqrt + o->eps)));
  }
}

// eltwise.c: relu and add over flat float arrays. x, a, b, y are (n). Memory-bound: one vectorized pass, split
// over threads only when the arrays are big enough (>= 256 KB each) for a second core's bandwidth to pay for the
// wake-up.
//
// relu keeps NaN (as torch.relu); both write +0 for -0 and for negatives.

#include "../simd.h"
#include "kernels.h"

#define GRAIN (1 << 16)  // floats per thread, at least

typedef struct {
  const float *a, *b;
  float *y;
  int64_t n;
  int relu;
} ew_ctx;

static void relu_task(void *arg, int ith, int nth) {
  const ew_ctx *e = arg;
  int64_t lo, hi;
  dl_split_runs(e->n, DL_VL, ith, nth, &lo, &hi);
  int64_t i = lo;
  for (; i + DL_VL <= hi; i += DL_VL) vf_store(e->y + i, vf_relu(vf_load(e->a + i)));
  for (; i < hi; i++) {
    float v = e->a[i];
    e->y[i] = v > 0 || v != v ? v : 0.0f;
  }
}

static void add_task(void *arg, int ith, int nth) {
  const ew_ctx *e = arg;
  int64_t lo, hi;
  dl_split_runs(e->n, DL_VL, ith, nth, &lo, &hi);
  int64_t i = lo;
  if (e->relu)
    for (; i + DL_VL <= hi; i += DL_VL) vf_store(e->y + i, vf_relu(vf_load(e->a + i) + vf_load(e->b + i)));
  else
    for (; i + DL_VL <= hi; i += DL_VL) vf_store(e->y + i, vf_load(e->a + i) + vf_load(e->b + i));
  for (; i < hi; i++) {
    float v = e->a[i] + e->b[i];
    e->y[i] = !e->relu || v > 0 || v != v ? v : 0.0f;
  }
}

void dl_relu(const float *x, float *y, int64_t n) {
  ew_ctx e = {x, NULL, y, n, 1};
  dl_parallel(relu_task, &e, dl_threads_for(n, GRAIN));
}

void dl_add(const float *a, const float *b, float *y, int64_t n, int relu) {
  ew_ctx e = {a, b, y, n, relu};
  dl_parallel(add_task, &e, dl_threads_for(n, GRAIN));
}

void dl_relu_ref(const float *x, float *y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    y[i] = v > 0 || v != v ? v : 0.0f;
  }
}

void dl_add_ref(const float *a, const float *b, float *y, int64_t n, int relu) {
  for (int64_t i = 0; i < n; i++) {
    float v = a[i] + b[i];
    y[i] = !relu || v > 0 || v != v ? v : 0.0f;
  }
}

// relu backward: dx = y > 0 ? dy : 0 (y is relu's output; NaN in y gives 0). dx may be dy.
static void relu_bwd_task(void *arg, int ith, int nth) {
  const ew_ctx *e = arg;
  int64_t lo, hi;
  dl_split_runs(e->n, DL_VL, ith, nth, &lo, &hi);
  int64_t i = lo;
  for (; i + DL_VL <= hi; i += DL_VL) vf_store(e->y + i, vf_and(vf_load(e->a + i), vf_load(e->b + i) > 0));
  for (; i < hi; i++) e->y[i] = e->b[i] > 0 ? e->a[i] : 0.0f;
}

void dl_relu_bwd(const float *dy, const float *y, float *dx, int64_t n) {
  ew_ctx e = {dy, y, dx, n, 0};
  dl_parallel(relu_bwd_task, &e, dl_threads_for(n, GRAIN));
}

void dl_relu_bwd_ref(const float *dy, const float *y, float *dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0.0f;
}

// pool.c: max pooling and adaptive average pooling, threads over (n, c) planes.
// x is (N,C,H,W), y is (N,C,OH,OW), indices (N,C,OH,OW) or NULL.
//
// Max pooling follows PyTorch exactly: padding is -inf, a position wins when it is greater than the best so far
// or NaN (so NaN propagates and, among several NaNs, the last one's index is kept), and the index starts at the
// first in-bounds position. Without indices the window is separable: a vector pass takes the max over the KH rows
// of each output row (rowmax over the full input width), then a short scalar pass takes the max over KW columns.
// The max is exact, so this matches the direct loop except for the sign of a winning zero.
//
// Adaptive average pooling sums in double; the global case (OH = OW = 1, ResNet's head) is one vector pass.

#include <math.h>

#include "../simd.h"
#include "kernels.h"

typedef struct {
  const dl_pool2d_params *p;
  const float *x;
  float *y;
  int32_t *indices;
} mp_ctx;

// One plane, direct loop over the window (the reference semantics; used for indices).
static void maxpool_plane_direct(const dl_pool2d_params *p, const float *x, float *y, int32_t *idx) {
  for (int64_t oh = 0; oh < p->OH; oh++) {
    for (int64_t ow = 0; ow < p->OW; ow++) {
      float best = -INFINITY;
      int64_t bi = -1;
      for (int64_t kh = 0; kh < p->KH; kh++) {
        int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
        if (ih < 0 || ih >= p->H) continue;
        for (int64_t kw = 0; kw < p->KW; kw++) {
          int64_t iw = ow * p->stride_w - p->pad_w + kw * p->dilation_w;
          if (iw < 0 || iw >= p->W) continue;
          float v = x[ih * p->W + iw];
          if (bi < 0) bi = ih * p->W + iw;
          if (v > best || v != v) {
            best = v;
            bi = ih * p->W + iw;
          }
        }
      }
      y[oh * p->OW + ow] = best;
      if (idx) idx[oh * p->OW + ow] = (int32_t)bi;
    }
  }
}

static void maxpool_plane_separable(const dl_pool2d_params *p, const float *x, float *y, float *rowmax) {
  const int64_t W = p->W;
  for (int64_t oh = 0; oh < p->OH; oh++) {
    int rows = 0;
    for (int64_t kh = 0; kh < p->KH; kh++) {
      int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
      if (ih < 0 || ih >= p->H) continue;
      const float *xr = x + ih * W;
      int64_t i = 0;
      if (rows++ == 0) {
        for (; i + DL_VL <= W; i += DL_VL) vf_store(rowmax + i, vf_load(xr + i));
        for (; i < W; i++) rowmax[i] = xr[i];
      } else {
        for (; i + DL_VL <= W; i += DL_VL) vf_store(rowmax + i, vf_max_nan(vf_load(rowmax + i), vf_load(xr + i)));
        for (; i < W; i++)
          if (xr[i] > rowmax[i] || xr[i] != xr[i]) rowmax[i] = xr[i];
      }
    }
    float *yr = y + oh * p->OW;
    // Interior outputs (every tap inside the row) DL_VL at a time for strides 1 and 2; the rest one by one.
    const int64_t sw = p->stride_w, dw = p->dilation_w, KW = p->KW;
    int64_t lo = (p->pad_w + sw - 1) / sw, hi = W - 1 + p->pad_w - (KW - 1) * dw < 0 ? 0 : (W - 1 + p->pad_w - (KW - 1) * dw) / sw + 1;
    if (hi > p->OW) hi = p->OW;
    int64_t ow = 0;
    for (; ow < p->OW; ow++) {
      if (rows && sw <= 2 && ow >= lo && ow + DL_VL <= hi) {
        const float *r = rowmax + ow * sw - p->pad_w;
        vf best = sw == 1 ? vf_load(r) : vf_even(vf_load(r), vf_load(r + DL_VL));
        for (int64_t kw = 1; kw < KW; kw++) {
          const float *q = r + kw * dw;
          best = vf_max_nan(best, sw == 1 ? vf_load(q) : vf_even(vf_load(q), vf_load(q + DL_VL)));
        }
        vf_store(yr + ow, best);
        ow += DL_VL - 1;
        continue;
      }
      float best = -INFINITY;
      if (rows)
        for (int64_t kw = 0; kw < KW; kw++) {
          int64_t iw = ow * sw - p->pad_w + kw * dw;
          if (iw < 0 || iw >= W) continue;
          float v = rowmax[iw];
          if (v > best || v != v) best = v;
        }
      yr[ow] = best;
    }
  }
}

static void maxpool_task(void *arg, int ith, int nth) {
  const mp_ctx *m = arg;
  const dl_pool2d_params *p = m->p;
  int64_t lo, hi;
  dl_split(p->N * p->C, ith, nth, &lo, &hi);
  // rowmax: W floats plus slack, since a stride-2 vector step reads one float past its last tap.
  float *rowmax = m->indices ? NULL : dl_scratch(0, (size_t)(p->W + 2 * DL_VL) * sizeof(float) + 64);
  for (int64_t nc = lo; nc < hi; nc++) {
    const float *x = m->x + nc * p->H * p->W;
    float *y = m->y + nc * p->OH * p->OW;
    if (m->indices) maxpool_plane_direct(p, x, y, m->indices + nc * p->OH * p->OW);
    else maxpool_plane_separable(p, x, y, rowmax);
  }
}

void dl_maxpool2d(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices) {
  mp_ctx m = {p, x, y, indices};
  int64_t work = p->N * p->C * (p->H * p->W + p->OH * p->OW * p->KW);
  int nth = dl_threads_for(work, 1 << 16);
  if (nth > p->N * p->C) nth = (int)(p->N * p->C);
  dl_parallel(maxpool_task, &m, nth);
}

void dl_maxpool2d_ref(const dl_pool2d_params *p, const float *x, float *y, int32_t *indices) {
  for (int64_t nc = 0; nc < p->N * p->C; nc++)
    maxpool_plane_direct(p, x + nc * p->H * p->W, y + nc * p->OH * p->OW,
                         indices ? indices + nc * p->OH * p->OW : NULL);
}

typedef struct {
  const float *x;
  int64_t NC, H, W, OH, OW;
  float *y;
} ap_ctx;

static void avgpool_plane(const ap_ctx *a, const float *x, float *y) {
  if (a->OH == 1 && a->OW == 1) {
    int64_t n = a->H * a->W;
    vd acc = {0};
    int64_t i = 0;
    for (; i + DL_VL <= n; i += DL_VL) acc += vf_to_vd(vf_load(x + i));
    double s = vd_hsum(&acc);
    for (; i < n; i++) s += x[i];
    y[0] = (float)(s / (double)n);
    return;
  }
  for (int64_t oh = 0; oh < a->OH; oh++) {
    int64_t h0 = oh * a->H / a->OH, h1 = ((oh + 1) * a->H + a->OH - 1) / a->OH;
    for (int64_t ow = 0; ow < a->OW; ow++) {
      int64_t w0 = ow * a->W / a->OW, w1 = ((ow + 1) * a->W + a->OW - 1) / a->OW;
      double s = 0;
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) s += x[h * a->W + w];
      y[oh * a->OW + ow] = (float)(s / (double)((h1 - h0) * (w1 - w0)));
    }
  }
}

static void avgpool_task(void *arg, int ith, int nth) {
  const ap_ctx *a = arg;
  int64_t lo, hi;
  dl_split(a->NC, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) avgpool_plane(a, a->x + nc * a->H * a->W, a->y + nc * a->OH * a->OW);
}

void dl_adaptive_avgpool2d(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                           float *y) {
  ap_ctx a = {x, N * C, H, W, OH, OW, y};
  int nth = dl_threads_for(N * C * (H * W + OH * OW), 1 << 16);
  if (nth > N * C) nth = (int)(N * C);
  dl_parallel(avgpool_task, &a, nth);
}

void dl_adaptive_avgpool2d_ref(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                               int64_t OW, float *y) {
  for (int64_t nc = 0; nc < N * C; nc++) {
    const float *xp = x + nc * H * W;
    for (int64_t oh = 0; oh < OH; oh++) {
      int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
        double s = 0;
        for (int64_t h = h0; h < h1; h++)
          for (int64_t w = w0; w < w1; w++) s += xp[h * W + w];
        y[nc * OH * OW + oh * OW + ow] = (float)(s / (double)((h1 - h0) * (w1 - w0)));
      }
    }
  }
}

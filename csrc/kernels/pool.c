// pool.c: max pooling and adaptive average pooling, threads over (n, c) planes.
// x is (N,C,H,W), y is (N,C,OH,OW), indices (N,C,OH,OW) or NULL.
//
// Max pooling follows PyTorch exactly: padding is -inf, a position wins when it is greater than the best so far
// or NaN (so NaN propagates and, among several NaNs, the last one's index is kept), and the index starts at the
// first in-bounds position. With indices, interior outputs run the direct loop DL_VL lanes at a time (stride 1 or
// 2; same taps, same order, so the same result). Without indices the window is separable: a vector pass takes the
// max over the KH rows of each output row (rowmax over the full input width), then a short scalar pass takes the
// max over KW columns.
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

// The direct loop's result for outputs whose taps are all inside the row, DL_VL at a time (strides 1 and 2): the
// same taps in the same order, the same "greater, or NaN" rule, so the same values and indices.
static void maxpool_plane_indices(const dl_pool2d_params *p, const float *x, float *y, int32_t *idx) {
  const int64_t W = p->W, H = p->H, sw = p->stride_w, dw = p->dilation_w, KW = p->KW;
  int64_t lo = (p->pad_w + sw - 1) / sw, hi = W - 1 + p->pad_w - (KW - 1) * dw < 0 ? 0 : (W - 1 + p->pad_w - (KW - 1) * dw) / sw + 1;
  if (hi > p->OW) hi = p->OW;
  if (sw > 2 || hi - lo < DL_VL || H * W >= ((int64_t)1 << 31)) {
    maxpool_plane_direct(p, x, y, idx);
    return;
  }
  vi lane;
  for (int l = 0; l < DL_VL; l++) lane[l] = (int32_t)(l * sw);
  for (int64_t oh = 0; oh < p->OH; oh++) {
    int rows = 0;  // input rows of this output row inside x
    for (int64_t kh = 0; kh < p->KH; kh++) {
      int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
      rows += ih >= 0 && ih < H;
    }
    float *yr = y + oh * p->OW;
    int32_t *ir = idx + oh * p->OW;
    int64_t ow = 0;
    while (ow < p->OW) {
      // one past the last float the vector loads read in their row (stride 2 loads 2*VL floats per tap)
      const int64_t end = ow * sw - p->pad_w + (KW - 1) * dw + (sw == 2 ? DL_VL * 2 : DL_VL);
      if (rows && ow >= lo && ow + DL_VL <= hi && end <= W) {
        vf best = vf_splat(-INFINITY);
        vi bi = vi_splat(0);
        int first = 1;
        for (int64_t kh = 0; kh < p->KH; kh++) {
          const int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < KW; kw++) {
            const int64_t iw = ow * sw - p->pad_w + kw * dw;
            const float *r = x + ih * W + iw;
            const vf v = sw == 1 ? vf_load(r) : vf_even(vf_load(r), vf_load(r + DL_VL));
            const vi at = (int32_t)(ih * W + iw) + lane;
            if (first) bi = at, first = 0;
            const vi m = (v > best) | (v != v);
            best = vf_select(m, v, best);
            bi = (m & at) | (~m & bi);
          }
        }
        vf_store(yr + ow, best);
        *(vi_u *)(ir + ow) = bi;
        ow += DL_VL;
        continue;
      }
      // this output alone (edges)
      float best = -INFINITY;
      int64_t b = -1;
      for (int64_t kh = 0; kh < p->KH; kh++) {
        const int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
        if (ih < 0 || ih >= H) continue;
        for (int64_t kw = 0; kw < KW; kw++) {
          const int64_t iw = ow * sw - p->pad_w + kw * dw;
          if (iw < 0 || iw >= W) continue;
          const float v = x[ih * W + iw];
          if (b < 0) b = ih * W + iw;
          if (v > best || v != v) {
            best = v;
            b = ih * W + iw;
          }
        }
      }
      yr[ow] = best;
      ir[ow] = (int32_t)b;
      ow++;
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
    if (m->indices) maxpool_plane_indices(p, x, y, m->indices + nc * p->OH * p->OW);
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

// ---- backward --------------------------------------------------------------------------------------------------
// Max pooling: each dx plane is zeroed, then every dy value is added at its recorded argmax (windows may overlap,
// so several outputs can add to one input). Indices are flat h*W + w inside the plane, as maxpool2d writes them;
// the glue (napi.c) has checked that they are in [0, H*W). Adaptive average pooling: each dy value divided by its
// bin's height, then width, added over the bin; the global case (1x1 output) is one fill with dy / (H*W). Both are
// PyTorch's exact operations (it runs a 1x1 adaptive pool as a mean), so the results match it bit for bit.
// Both thread over (n, c) planes, so no two threads touch one dx element.

typedef struct {
  const dl_pool2d_params *p;
  const float *dy;
  const int32_t *indices;
  float *dx;
} mpb_ctx;

static void maxpool_bwd_plane(const float *dy, const int32_t *idx, int64_t nout, float *dx, int64_t nin) {
  int64_t i = 0;
  for (; i + DL_VL <= nin; i += DL_VL) vf_store(dx + i, vf_zero());
  for (; i < nin; i++) dx[i] = 0;
  for (int64_t o = 0; o < nout; o++) dx[idx[o]] += dy[o];
}

static void maxpool_bwd_task(void *arg, int ith, int nth) {
  const mpb_ctx *m = arg;
  const dl_pool2d_params *p = m->p;
  const int64_t nin = p->H * p->W, nout = p->OH * p->OW;
  int64_t lo, hi;
  dl_split(p->N * p->C, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) maxpool_bwd_plane(m->dy + nc * nout, m->indices + nc * nout, nout, m->dx + nc * nin, nin);
}

void dl_maxpool2d_bwd(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx) {
  mpb_ctx m = {p, dy, indices, dx};
  int nth = dl_threads_for(p->N * p->C * (p->H * p->W + p->OH * p->OW), 1 << 16);
  if (nth > p->N * p->C) nth = (int)(p->N * p->C);
  dl_parallel(maxpool_bwd_task, &m, nth);
}

void dl_maxpool2d_bwd_ref(const dl_pool2d_params *p, const float *dy, const int32_t *indices, float *dx) {
  const int64_t nin = p->H * p->W, nout = p->OH * p->OW;
  for (int64_t i = 0; i < p->N * p->C * nin; i++) dx[i] = 0;
  for (int64_t nc = 0; nc < p->N * p->C; nc++)
    for (int64_t o = 0; o < nout; o++) dx[nc * nin + indices[nc * nout + o]] += dy[nc * nout + o];
}

typedef struct {
  const float *dy;
  int64_t NC, H, W, OH, OW;
  float *dx;
} apb_ctx;

static void avgpool_bwd_plane(const apb_ctx *a, const float *dy, float *dx) {
  const int64_t H = a->H, W = a->W, n = H * W;
  if (a->OH == 1 && a->OW == 1) {
    const float v = dy[0] / (float)n;  // PyTorch computes the global pool as a mean: one division by H*W
    const vf vv = vf_splat(v);
    int64_t i = 0;
    for (; i + DL_VL <= n; i += DL_VL) vf_store(dx + i, vv);
    for (; i < n; i++) dx[i] = v;
    return;
  }
  for (int64_t i = 0; i < n; i++) dx[i] = 0;
  for (int64_t oh = 0; oh < a->OH; oh++) {
    int64_t h0 = oh * H / a->OH, h1 = ((oh + 1) * H + a->OH - 1) / a->OH;
    for (int64_t ow = 0; ow < a->OW; ow++) {
      int64_t w0 = ow * W / a->OW, w1 = ((ow + 1) * W + a->OW - 1) / a->OW;
      const float v = dy[oh * a->OW + ow] / (float)(h1 - h0) / (float)(w1 - w0);
      for (int64_t h = h0; h < h1; h++)
        for (int64_t w = w0; w < w1; w++) dx[h * W + w] += v;
    }
  }
}

static void avgpool_bwd_task(void *arg, int ith, int nth) {
  const apb_ctx *a = arg;
  int64_t lo, hi;
  dl_split(a->NC, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) avgpool_bwd_plane(a, a->dy + nc * a->OH * a->OW, a->dx + nc * a->H * a->W);
}

void dl_adaptive_avgpool2d_bwd(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH, int64_t OW,
                               float *dx) {
  apb_ctx a = {dy, N * C, H, W, OH, OW, dx};
  int nth = dl_threads_for(N * C * (H * W + OH * OW), 1 << 16);
  if (nth > N * C) nth = (int)(N * C);
  dl_parallel(avgpool_bwd_task, &a, nth);
}

// Reference: the same sums in double, one rounding per dx element.
void dl_adaptive_avgpool2d_bwd_ref(const float *dy, int64_t N, int64_t C, int64_t H, int64_t W, int64_t OH,
                                   int64_t OW, float *dx) {
  for (int64_t nc = 0; nc < N * C; nc++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) {
        double s = 0;
        for (int64_t oh = 0; oh < OH; oh++) {
          int64_t h0 = oh * H / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
          if (h < h0 || h >= h1) continue;
          for (int64_t ow = 0; ow < OW; ow++) {
            int64_t w0 = ow * W / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
            if (w < w0 || w >= w1) continue;
            s += (double)dy[(nc * OH + oh) * OW + ow] / (double)((h1 - h0) * (w1 - w0));
          }
        }
        dx[(nc * H + h) * W + w] = (float)s;
      }
}

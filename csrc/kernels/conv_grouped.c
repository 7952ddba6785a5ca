// conv_grouped.c: direct kernels for grouped convolutions with few channels per group (ResNeXt's 32 groups of
// 4..16 channels, depthwise), used by the backward convolutions (conv_bwd.c). There a per-group GEMM has 4..16
// rows, so its packed panels are reused by too few rows and it runs at 10-20 GFLOP/s.
//
// Stride-1 convolution: per (image, group), the group's input channels are copied into a zero-padded grid
// xp[i][Hp][Wp] (Hp = OH + (KH-1)*dil_h, Wp = OW + (KW-1)*dil_w), so the output at grid index q = oh*Wp + ow
// reads tap (th, tw) at q + th*dil_h*Wp + tw*dil_w: a constant offset per tap. Vectors of VL grid pixels
// accumulate OT outputs x V vectors in registers, one broadcast weight per FMA. The grid columns past OW are
// computed and dropped when the rows are copied out (Wp/OW extra work: 4% at 56x56, 29% at 7x7).
//
// Stride-1 weight gradient: dw[m][i][t] = sum over images and grid pixels q of dyg[m][q] * xp[i][q + off(t)],
// with dy copied into the same grid (zeros past OW). Tiles of OT outputs x CT (channel, tap) pairs keep vector
// partial sums, loaded and stored per chunk of pixels that stays in L1, and reduced across lanes once per group.
//
// Threads take whole (image, group) pairs for the convolution and whole groups for the weight gradient, so no
// two threads write one element.

#include <stdlib.h>
#include <string.h>

#include "../simd.h"
#include "kernels.h"

int dl_grouped_direct_ok(int64_t groups, int64_t cin_g, int64_t cout_g) {
  return groups > 1 && cin_g <= 16 && cout_g <= 16;
}

#if DL_VL == 16
#define GC_V(OT) ((OT) <= 4 ? 4 : 3)  // vectors per tile: OT * V accumulators <= 24 of 32 zmm
#elif DL_VL > 1
#define GC_V(OT) ((OT) <= 4 ? 2 : 1)  // 16 ymm / xmm
#else
#define GC_V(OT) 4
#endif
#define GC_VMAX 4

/** xp[i][r][c] = src plane i at (r - pad_h, c - pad_w), 0 outside; planes of Hp x Wp. */
static void fill_grid(const float *src, int64_t splane, int64_t H, int64_t W, int64_t nplanes, int64_t pad_h,
                      int64_t pad_w, int64_t Hp, int64_t Wp, float *xp) {
  for (int64_t i = 0; i < nplanes; i++) {
    const float *s = src + i * splane;
    float *d = xp + i * Hp * Wp;
    for (int64_t r = 0; r < Hp; r++, d += Wp) {
      const int64_t ih = r - pad_h;
      if (ih < 0 || ih >= H) {
        memset(d, 0, (size_t)Wp * sizeof(float));
        continue;
      }
      const int64_t c0 = pad_w > 0 ? (pad_w < Wp ? pad_w : Wp) : 0;  // first column inside the row
      int64_t c1 = W + pad_w;                                        // one past the last
      if (c1 > Wp) c1 = Wp;
      if (c1 < c0) c1 = c0;
      memset(d, 0, (size_t)c0 * sizeof(float));
      if (c1 > c0) memcpy(d + c0, s + ih * W + (c0 - pad_w), (size_t)(c1 - c0) * sizeof(float));
      memset(d + c1, 0, (size_t)(Wp - c1) * sizeof(float));
    }
  }
}

// ---- convolution ----------------------------------------------------------------------------------------------

// yg[o][v*VL + l] (o < OT, plane stride ys) = sum over i < Mi, t < T of w[o*ws + i*T + t] * x[i*xs + off[t] + ...]
DL_INLINE void gc_tile(const int OT, const float *x, int64_t xs, const float *w, int64_t ws, int64_t Mi, int64_t T,
                       const int64_t *off, float *yg, int64_t ys) {
  const int V = GC_V(OT);
  vf acc[8][GC_VMAX];
#pragma GCC unroll 8
  for (int o = 0; o < OT; o++)
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) acc[o][v] = vf_zero();
  for (int64_t i = 0; i < Mi; i++, x += xs, w += T) {
    for (int64_t t = 0; t < T; t++) {
      const float *xt = x + off[t];
      vf xv[GC_VMAX];
#pragma GCC unroll 4
      for (int v = 0; v < V; v++) xv[v] = vf_load(xt + v * DL_VL);
#pragma GCC unroll 8
      for (int o = 0; o < OT; o++) {
        const float wv = w[o * ws + t];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[o][v] = wv * xv[v] + acc[o][v];
      }
    }
  }
#pragma GCC unroll 8
  for (int o = 0; o < OT; o++)
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) vf_store(yg + o * ys + v * DL_VL, acc[o][v]);
}

typedef void (*gc_tile_fn)(const float *, int64_t, const float *, int64_t, int64_t, int64_t, const int64_t *, float *,
                           int64_t);
#define GC_TILE(n)                                                                                              \
  static void gc_tile_##n(const float *x, int64_t xs, const float *w, int64_t ws, int64_t Mi, int64_t T,        \
                          const int64_t *off, float *yg, int64_t ys) {                                          \
    gc_tile(n, x, xs, w, ws, Mi, T, off, yg, ys);                                                               \
  }
GC_TILE(1)
GC_TILE(2)
GC_TILE(4)
GC_TILE(8)

typedef struct {
  const dl_conv2d_params *p;
  const float *src, *wd;
  float *y;
  int64_t Mi, Mo, T, Hp, Wp, yplane, tail;
  const int64_t *off;
} gc_ctx;

static void gc_task(void *arg, int ith, int nth) {
  const gc_ctx *c = arg;
  const dl_conv2d_params *p = c->p;
  const int64_t G = p->groups, Mi = c->Mi, Mo = c->Mo, T = c->T, plane = c->Hp * c->Wp, Wp = c->Wp;
  const int64_t nq = p->OH * Wp, ys = c->yplane, tail = c->tail;
  float *xp = dl_scratch(0, (size_t)(Mi * plane + tail + Mo * ys) * sizeof(float) + 128);
  float *yg = xp + Mi * plane + tail;
  memset(xp + Mi * plane, 0, (size_t)tail * sizeof(float));  // the last tiles read past the planes (dropped lanes)
  int64_t lo, hi;
  dl_split(p->N * G, ith, nth, &lo, &hi);
  for (int64_t u = lo; u < hi; u++) {
    const int64_t n = u / G, g = u % G;
    fill_grid(c->src + (n * p->C + g * Mi) * p->H * p->W, p->H * p->W, p->H, p->W, Mi, p->pad_h, p->pad_w, c->Hp, Wp, xp);
    for (int64_t m0 = 0; m0 < Mo;) {
      const int OT = Mo - m0 >= 8 ? 8 : Mo - m0 >= 4 ? 4 : Mo - m0 >= 2 ? 2 : 1;
      const gc_tile_fn fn = OT == 8 ? gc_tile_8 : OT == 4 ? gc_tile_4 : OT == 2 ? gc_tile_2 : gc_tile_1;
      const int64_t step = GC_V(OT) * DL_VL;
      const float *w = c->wd + ((g * Mo + m0) * Mi) * T;
      for (int64_t q = 0; q < nq; q += step) fn(xp + q, plane, w, Mi * T, Mi, T, c->off, yg + m0 * ys + q, ys);
      m0 += OT;
    }
    for (int64_t m = 0; m < Mo; m++) {
      float *out = c->y + ((n * p->O + g * Mo + m) * p->OH) * p->OW;
      for (int64_t oh = 0; oh < p->OH; oh++) memcpy(out + oh * p->OW, yg + m * ys + oh * Wp, (size_t)p->OW * sizeof(float));
    }
  }
}

void dl_grouped_conv_s1(const dl_conv2d_params *p, const float *src, const float *wd, float *y) {
  const int64_t T = p->KH * p->KW;
  int64_t small[64], *off = T <= 64 ? small : malloc((size_t)T * sizeof(int64_t));
  if (!off) abort();
  gc_ctx c = {.p = p, .src = src, .wd = wd, .y = y, .Mi = p->C / p->groups, .Mo = p->O / p->groups, .T = T,
              .Hp = p->OH + (p->KH - 1) * p->dilation_h, .Wp = p->OW + (p->KW - 1) * p->dilation_w, .off = off};
  c.yplane = p->OH * c.Wp + GC_VMAX * DL_VL;
  c.tail = (p->KW - 1) * p->dilation_w + 2 * GC_VMAX * DL_VL;
  for (int64_t th = 0; th < p->KH; th++)
    for (int64_t tw = 0; tw < p->KW; tw++) off[th * p->KW + tw] = th * p->dilation_h * c.Wp + tw * p->dilation_w;
  dl_parallel(gc_task, &c, dl_threads_for(p->N * p->O * p->OH * c.Wp * c.Mi * T / 64, 1 << 14));
  if (off != small) free(off);
}

// ---- weight gradient ------------------------------------------------------------------------------------------

#if DL_VL == 16
#define GW_CT(OT) ((OT) == 4 ? 6 : (OT) == 2 ? 8 : 12)  // OT * CT accumulators, OT + CT loads per pixel vector
#elif DL_VL > 1
#define GW_CT(OT) ((OT) == 4 ? 2 : (OT) == 2 ? 4 : 6)
#else
#define GW_CT(OT) 4
#endif
#define GW_QC 1024  // grid pixels per chunk: OT + CT rows of 4 KB stay in L1

// part[o*CT + j] (vectors) += sum over q in [0, nq) step VL of dy[o*ys + q] * x[xo[j] + q]
DL_INLINE void gw_tile(const int OT, const float *dy, int64_t ys, const float *x, const int64_t *xo, int64_t nq,
                       float *part) {
  const int CT = GW_CT(OT);
  vf acc[4][12];
#pragma GCC unroll 4
  for (int o = 0; o < OT; o++)
#pragma GCC unroll 12
    for (int j = 0; j < CT; j++) acc[o][j] = vf_load(part + (o * CT + j) * DL_VL);
  const float *xr[12];
#pragma GCC unroll 12
  for (int j = 0; j < CT; j++) xr[j] = x + xo[j];
  for (int64_t q = 0; q < nq; q += DL_VL) {
    vf dv[4];
#pragma GCC unroll 4
    for (int o = 0; o < OT; o++) dv[o] = vf_load(dy + o * ys + q);
#pragma GCC unroll 12
    for (int j = 0; j < CT; j++) {
      const vf xv = vf_load(xr[j] + q);
#pragma GCC unroll 4
      for (int o = 0; o < OT; o++) acc[o][j] = dv[o] * xv + acc[o][j];
    }
  }
#pragma GCC unroll 4
  for (int o = 0; o < OT; o++)
#pragma GCC unroll 12
    for (int j = 0; j < CT; j++) vf_store(part + (o * CT + j) * DL_VL, acc[o][j]);
}

typedef void (*gw_tile_fn)(const float *, int64_t, const float *, const int64_t *, int64_t, float *);
#define GW_TILE(n)                                                                                               \
  static void gw_tile_##n(const float *dy, int64_t ys, const float *x, const int64_t *xo, int64_t nq, float *part) { \
    gw_tile(n, dy, ys, x, xo, nq, part);                                                                         \
  }
GW_TILE(1)
GW_TILE(2)
GW_TILE(4)

typedef struct {
  const dl_conv2d_params *p;
  const float *x, *dy;
  float *dw;
  int64_t Mi, Mo, T, Hp, Wp, ys;
  int OT, CT;
  const int64_t *off;
} gw_ctx;

static void gw_task(void *arg, int ith, int nth) {
  const gw_ctx *c = arg;
  const dl_conv2d_params *p = c->p;
  const int64_t G = p->groups, Mi = c->Mi, Mo = c->Mo, T = c->T, plane = c->Hp * c->Wp, Wp = c->Wp, ys = c->ys;
  const int64_t nq = p->OH * Wp, J = Mi * T;
  const int OT = c->OT, CT = c->CT;
  const int64_t nmt = (Mo + OT - 1) / OT, njt = (J + CT - 1) / CT;
  const gw_tile_fn fn = OT == 4 ? gw_tile_4 : OT == 2 ? gw_tile_2 : gw_tile_1;
  // scratch: xp (Mi planes + a zero tail), dyg (Mo planes of ys, plus OT zero planes for dummy rows), partial sums,
  // the (channel, tap) offsets padded to whole tiles
  const int64_t tail = (p->KW - 1) * p->dilation_w + 2 * DL_VL;  // the last vectors read past the planes (times 0)
  const size_t fx = (size_t)(Mi * plane + tail), fy = (size_t)((Mo + OT) * ys), fp = (size_t)(nmt * njt * OT * CT * DL_VL);
  float *xp = dl_scratch(0, (fx + fy + fp) * sizeof(float) + (size_t)(njt * CT) * sizeof(int64_t) + 256);
  float *dyg = xp + fx, *part = dyg + fy;
  int64_t *xo = (int64_t *)(part + fp);
  memset(xp + Mi * plane, 0, (size_t)tail * sizeof(float));
  // (channel, tap) pairs past J are dummies: they read real data into partial sums that are never used
  for (int64_t j = 0; j < njt * CT; j++) xo[j] = j < J ? (j / T) * plane + c->off[j % T] : 0;
  int64_t lo, hi;
  dl_split(G, ith, nth, &lo, &hi);
  for (int64_t g = lo; g < hi; g++) {
    memset(part, 0, fp * sizeof(float));
    memset(dyg, 0, fy * sizeof(float));
    for (int64_t n = 0; n < p->N; n++) {
      fill_grid(c->x + (n * p->C + g * Mi) * p->H * p->W, p->H * p->W, p->H, p->W, Mi, p->pad_h, p->pad_w, c->Hp, Wp, xp);
      for (int64_t m = 0; m < Mo; m++) {
        const float *s = c->dy + ((n * p->O + g * Mo + m) * p->OH) * p->OW;
        for (int64_t oh = 0; oh < p->OH; oh++) memcpy(dyg + m * ys + oh * Wp, s + oh * p->OW, (size_t)p->OW * sizeof(float));
      }
      for (int64_t q0 = 0; q0 < nq; q0 += GW_QC) {
        const int64_t len = nq - q0 < GW_QC ? nq - q0 : GW_QC;
        for (int64_t mt = 0; mt < nmt; mt++) {
          // rows past Mo read the zero planes after the last one
          const float *d = dyg + (mt * OT < Mo ? mt * OT : Mo) * ys + q0;
          for (int64_t jt = 0; jt < njt; jt++) fn(d, ys, xp + q0, xo + jt * CT, len, part + (mt * njt + jt) * OT * CT * DL_VL);
        }
      }
    }
    for (int64_t m = 0; m < Mo; m++)
      for (int64_t j = 0; j < J; j++) {
        const int64_t mt = m / OT, o = m % OT, jt = j / CT, k = j % CT;
        c->dw[(g * Mo + m) * J + j] = vf_hsum(vf_load(part + ((mt * njt + jt) * OT * CT + o * CT + k) * DL_VL));
      }
  }
}

void dl_grouped_dw_s1(const dl_conv2d_params *p, const float *x, const float *dy, float *dw) {
  const int64_t T = p->KH * p->KW;
  int64_t small[64], *off = T <= 64 ? small : malloc((size_t)T * sizeof(int64_t));
  if (!off) abort();
  gw_ctx c = {.p = p, .x = x, .dy = dy, .dw = dw, .Mi = p->C / p->groups, .Mo = p->O / p->groups, .T = T,
              .Hp = p->OH + (p->KH - 1) * p->dilation_h, .Wp = p->OW + (p->KW - 1) * p->dilation_w, .off = off};
  // dy planes in the grid: whole vectors, then zeros (the last vector of a chunk may run past OH*Wp)
  c.ys = (p->OH * c.Wp + DL_VL - 1) / DL_VL * DL_VL + DL_VL;
  c.OT = c.Mo >= 4 ? 4 : c.Mo >= 2 ? 2 : 1;
  c.CT = GW_CT(c.OT);
  for (int64_t th = 0; th < p->KH; th++)
    for (int64_t tw = 0; tw < p->KW; tw++) off[th * p->KW + tw] = th * p->dilation_h * c.Wp + tw * p->dilation_w;
  int nth = dl_threads_for(p->N * p->O * p->OH * c.Wp * c.Mi * T / 64, 1 << 14);
  if (nth > p->groups) nth = (int)p->groups;
  dl_parallel(gw_task, &c, nth);
  if (off != small) free(off);
}

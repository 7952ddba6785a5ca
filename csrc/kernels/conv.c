// conv.c: 2-D convolution as an implicit GEMM on NCHW.
// x is (N,C,H,W), w is (O,C/groups,KH,KW), y is (N,O,OH,OW); Cg = C/groups, Og = O/groups, P = OH*OW.
//
// Per group g: Y_g[Og, N*P] = W_g[Og, Cg*KH*KW] x col_g[Cg*KH*KW, N*P], where the column index j runs over
// (image n, output pixel p) so small late layers still fill whole tiles at batch > 1. The weights are packed
// once into the GEMM's row panels (dl_conv2d_pack, cached by the caller). There is no im2col buffer: gemm.c asks
// conv_get_b for one KC x NR panel at a time and this file fills it straight from x. A 1x1 stride-1 convolution
// without padding has col_g == x, so full tiles read x directly.
//
// Filling a panel: for a fixed kernel tap (kh, kw), the input offsets of one vector of output columns do not
// depend on the channel. So for each tap and each vector we classify the lanes once, then copy that vector for
// every channel of the K block:
//   ZERO    every lane falls in the padding;
//   AFFINE1 lanes read x[base + l] (also across output rows when OW == W), padding lanes masked to 0;
//   AFFINE2 lanes read x[base + 2l] (stride 2 within one output row): two loads and a de-interleave;
//   GATHER  anything else (row or image boundaries inside the vector, other strides): one scalar load per lane.
//
// Stride 2 (dilation 1): a vector that wraps to the next output row is not affine in x, so most vectors of small
// layers would gather. Instead the caller's thread first splits x into its 2x2 phases, xp[n][c][phase][PH][PW]
// with phase (r, s) holding x[2i + r][2j + s] (only the phases some tap reads). Tap (kh, kw) then reads phase
// ((kh - pad_h) & 1, (kw - pad_w) & 1) at unit stride, which wraps rows contiguously when PW == OW, i.e. for every
// "same"-padded stride-2 layer; a 1x1 stride-2 layer becomes a 1x1 stride-1 layer on phase (0, 0).

#include <stdlib.h>

#include "../simd.h"
#include "kernels.h"

typedef struct {
  const dl_conv2d_params *p;
  const float *x;        // x, or its phase planes
  int64_t Cg, P, KHW, NR;
  int64_t cstride;       // floats between channels of the source (H*W, or nslot*PH*PW)
  int64_t istride;       // floats between images of the source (C * cstride)
  int direct_1x1;
  int phased;            // the source is phase planes
  int64_t PH, PW;        // phase plane size
  int slot[4];           // phase r*2+s -> its index among the built planes, or -1
} conv_ctx;

enum { ZERO, AFFINE1, AFFINE2, GATHER };

/** Output coordinates of the columns of one tile, VL lanes per vector; lanes past the tile are marked invalid. */
typedef struct {
  vi ohs, ows;  // oh*stride_h, ow*stride_w
  vi nbase;     // n * istride (int32: the fast path requires the source < 2^31 floats)
  vi col_ok;
} lanes_t;

static void tile_lanes(const conv_ctx *cx, int64_t j0, int64_t nr, int nvec, lanes_t *ln) {
  const dl_conv2d_params *p = cx->p;
  for (int v = 0; v < nvec; v++) {
    for (int l = 0; l < DL_VL; l++) {
      int64_t jj = v * DL_VL + l, j = j0 + (jj < nr ? jj : 0);
      int64_t n = j / cx->P, pp = j % cx->P;
      ln[v].ohs[l] = (int32_t)((pp / p->OW) * p->stride_h);
      ln[v].ows[l] = (int32_t)((pp % p->OW) * p->stride_w);
      ln[v].nbase[l] = (int32_t)(n * cx->istride);
      ln[v].col_ok[l] = jj < nr ? -1 : 0;
    }
  }
}

static const float *conv_get_b(const void *vctx, int64_t g, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                               float *dst, int64_t *ldb) {
  const conv_ctx *cx = vctx;
  const dl_conv2d_params *p = cx->p;
  const int64_t NR = cx->NR, CS = cx->cstride, KHW = cx->KHW;
  if (cx->direct_1x1 && nr == NR && j0 % cx->P + NR <= cx->P) {
    *ldb = CS;
    return cx->x + (j0 / cx->P) * cx->istride + (g * cx->Cg + k0) * CS + j0 % cx->P;
  }
  *ldb = NR;
  const int nvec = (int)((nr + DL_VL - 1) / DL_VL);
  lanes_t ln[8];
  tile_lanes(cx, j0, nr, nvec, ln);
  const float *xg = cx->x + g * cx->Cg * CS;
  const int64_t xend = p->N * cx->istride;  // reads must stay in [0, xend) relative to x
  const int32_t H = (int32_t)p->H, W = (int32_t)p->W;
  vi lane;
  for (int l = 0; l < DL_VL; l++) lane[l] = l;
  for (int64_t r = 0; r < KHW; r++) {
    // channels c with k = c*KHW + r inside [k0, k0 + kc)
    int64_t c_lo = k0 - r <= 0 ? 0 : (k0 - r + KHW - 1) / KHW;
    int64_t last = k0 + kc - 1 - r;
    if (last < 0) continue;
    int64_t c_hi = last / KHW;
    if (c_lo > c_hi) continue;
    int64_t kh = r / p->KW, kw = r % p->KW;
    int32_t dh = (int32_t)(kh * p->dilation_h - p->pad_h), dw = (int32_t)(kw * p->dilation_w - p->pad_w);
    // Phase planes: this tap reads phase (pr, ps) at (ih - pr)/2, (iw - ps)/2, one plane step per column.
    int32_t pr = dh & 1, ps = dw & 1, step = (int32_t)p->stride_w;
    int64_t pbase = 0;
    if (cx->phased) {
      pbase = cx->slot[pr * 2 + ps] * cx->PH * cx->PW;
      step = 1;
    }
    float *d0 = dst + (c_lo * KHW + r - k0) * NR;
    const int64_t dstep = KHW * NR, nc = c_hi - c_lo + 1;
    const float *s0 = xg + c_lo * CS;
    for (int v = 0; v < nvec; v++) {
      vi ih = ln[v].ohs + dh, iw = ln[v].ows + dw;
      vi in = ln[v].col_ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W);
      vi off = cx->phased ? ln[v].nbase + (int32_t)pbase + ((ih - pr) >> 1) * (int32_t)cx->PW + ((iw - ps) >> 1)
                          : ln[v].nbase + ih * W + iw;
      int mode = GATHER;
      int64_t base = off[0];
      if (vi_bits(in) == 0) {
        mode = ZERO;
      } else if (step <= 2 && vi_bits((off == off[0] + lane * step) | ~ln[v].col_ok) == DL_ALL_LANES) {
        mode = step == 1 ? AFFINE1 : AFFINE2;
        int64_t lo = base + g * cx->Cg * CS + c_lo * CS, hi = base + g * cx->Cg * CS + c_hi * CS + step * DL_VL;
        if (lo < 0 || hi > xend) mode = GATHER;  // the vector read would leave x: gather the valid lanes only
      }
      float *d = d0 + v * DL_VL;
      const float *s = s0;
      switch (mode) {
        case ZERO:
          for (int64_t c = 0; c < nc; c++, d += dstep) vf_store(d, vf_zero());
          break;
        case AFFINE1:
          for (int64_t c = 0; c < nc; c++, d += dstep, s += CS) vf_store(d, vf_and(vf_load(s + base), in));
          break;
        case AFFINE2:
          for (int64_t c = 0; c < nc; c++, d += dstep, s += CS)
            vf_store(d, vf_and(vf_even(vf_load(s + base), vf_load(s + base + DL_VL)), in));
          break;
        default:
          for (int64_t c = 0; c < nc; c++, d += dstep, s += CS)
            for (int l = 0; l < DL_VL; l++) d[l] = in[l] ? s[off[l]] : 0.0f;
          break;
      }
    }
  }
  return dst;
}

int64_t dl_conv2d_packed_size(const dl_conv2d_params *p) {
  int64_t G = p->groups, Og = p->O / G, K = p->C / G * p->KH * p->KW, MR = dl_gemm_mr();
  return G * ((Og + MR - 1) / MR) * MR * K;
}

typedef struct {
  const dl_conv2d_params *p;
  const float *w;
  float *packed;
} pack_job;

// Threads over (group, row panel): training re-packs every weight after every optimizer step.
static void pack_task(void *arg, int ith, int nth) {
  const pack_job *pj = arg;
  const dl_conv2d_params *p = pj->p;
  const int64_t G = p->groups, Og = p->O / G, K = p->C / G * p->KH * p->KW, MR = dl_gemm_mr();
  const int64_t nmp = (Og + MR - 1) / MR, per = nmp * MR * K;
  int64_t lo, hi;
  dl_split(G * nmp, ith, nth, &lo, &hi);
  for (int64_t u = lo; u < hi; u++) {
    const int64_t g = u / nmp, m0 = u % nmp * MR, mr = Og - m0 < MR ? Og - m0 : MR;
    dl_gemm_pack_a(mr, K, pj->w + (g * Og + m0) * K, K, 1, 1.0f, pj->packed + g * per + m0 * K);
  }
}

void dl_conv2d_pack(const dl_conv2d_params *p, const float *w, float *packed) {
  pack_job pj = {p, w, packed};
  dl_parallel(pack_task, &pj, dl_threads_for(p->O * (p->C / p->groups) * p->KH * p->KW, 1 << 16));
}

typedef struct {
  const dl_conv2d_params *p;
  const dl_conv_src *src;
  const float *x;
  float *xp;
} phase_job;

// xp[n][c][slot][PH][PW] = x[n][c][2i + r][2j + s] for the phases (r, s) in use, 0 outside x.
static void phase_task(void *arg, int ith, int nth) {
  const phase_job *pj = arg;
  const dl_conv_src *src = pj->src;
  const dl_conv2d_params *p = pj->p;
  const int64_t PH = src->PH, PW = src->PW, H = p->H, W = p->W;
  int64_t lo, hi;
  dl_split(p->N * p->C, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) {
    const float *xc = pj->x + nc * H * W;
    for (int ph = 0; ph < 4; ph++) {
      if (src->slot[ph] < 0) continue;
      const int r = ph >> 1, s = ph & 1;
      float *dp = pj->xp + nc * src->cstride + src->slot[ph] * PH * PW;
      for (int64_t i = 0; i < PH; i++, dp += PW) {
        int64_t ih = 2 * i + r, j = 0;
        if (ih >= H) {
          for (; j < PW; j++) dp[j] = 0;
          continue;
        }
        const float *row = xc + ih * W + s;
        for (; 2 * j + s + 2 * DL_VL <= W && j + DL_VL <= PW; j += DL_VL)
          vf_store(dp + j, vf_even(vf_load(row + 2 * j), vf_load(row + 2 * j + DL_VL)));
        for (; j < PW; j++) dp[j] = 2 * j + s < W ? row[2 * j] : 0;
      }
    }
  }
}

void dl_conv_src_init(const dl_conv2d_params *p, const float *x, dl_conv_src *src) {
  *src = (dl_conv_src){.x = x, .cstride = p->H * p->W, .istride = p->C * p->H * p->W, .slot = {-1, -1, -1, -1}};
  if (!(p->stride_h == 2 && p->stride_w == 2 && p->dilation_h == 1 && p->dilation_w == 1)) return;
  src->phased = 1;
  src->PH = (p->H + 1) / 2;
  src->PW = (p->W + 1) / 2;
  int nslot = 0;
  for (int64_t kh = 0; kh < p->KH && kh < 2; kh++)
    for (int64_t kw = 0; kw < p->KW && kw < 2; kw++) src->slot[((kh - p->pad_h) & 1) * 2 + ((kw - p->pad_w) & 1)] = 0;
  for (int ph = 0; ph < 4; ph++)
    if (src->slot[ph] == 0) src->slot[ph] = nslot++;
  src->cstride = nslot * src->PH * src->PW;
  src->istride = p->C * src->cstride;
  float *xp = dl_scratch(1, (size_t)(p->N * src->istride) * sizeof(float) + 64);
  phase_job pj = {p, src, x, xp};
  dl_parallel(phase_task, &pj, dl_threads_for(p->N * p->C * p->H * p->W, 1 << 16));
  src->x = xp;
}

void dl_conv2d(const dl_conv2d_params *p, const float *x, const float *w, const float *packed, const float *bias,
               const float *residual, float *y) {
  int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, P = p->OH * p->OW;
  // The lane arithmetic is int32 and the panel classifier needs up to 8 vectors per tile.
  if (p->N * p->C * (p->H + 1) * (p->W + 1) >= ((int64_t)1 << 31) - 64 || dl_gemm_nr() > 8 * DL_VL) {
    dl_conv2d_ref(p, x, w, packed, bias, residual, y);
    return;
  }
  float *own = NULL;
  if (!packed) {
    own = malloc((size_t)dl_conv2d_packed_size(p) * sizeof(float) + 1);
    if (!own) {
      dl_conv2d_ref(p, x, w, packed, bias, residual, y);
      return;
    }
    dl_conv2d_pack(p, w, own);
    packed = own;
  }
  dl_conv_src src;
  dl_conv_src_init(p, x, &src);
  conv_ctx cx = {.p = p, .x = src.x, .Cg = Cg, .P = P, .KHW = p->KH * p->KW, .NR = dl_gemm_nr(),
                 .cstride = src.cstride, .istride = src.istride, .phased = src.phased, .PH = src.PH, .PW = src.PW,
                 .slot = {src.slot[0], src.slot[1], src.slot[2], src.slot[3]}};
  const int pad0 = p->pad_h == 0 && p->pad_w == 0, k1 = p->KH == 1 && p->KW == 1;
  cx.direct_1x1 = k1 && pad0 && p->stride_h == 1 && p->stride_w == 1 && p->OH == p->H && p->OW == p->W;
  if (src.phased) cx.direct_1x1 = k1 && pad0 && p->OW == cx.PW && p->OH <= cx.PH;
  dl_gemm_job jb = {.G = G, .M = Og, .J = p->N * P, .K = Cg * p->KH * p->KW, .ap = packed, .c = y,
                    .c_gs = Og * P, .ldc = P, .c_ns = p->O * P, .jp = P, .res = residual, .res_scale = 1.0f,
                    .bias = bias, .relu = p->relu, .get_b = conv_get_b, .bctx = &cx};
  dl_gemm_run(&jb);
  free(own);
}

// Naive reference: one double accumulator per output, as the js backend.
void dl_conv2d_ref(const dl_conv2d_params *p, const float *x, const float *w, const float *packed,
                   const float *bias, const float *residual, float *y) {
  (void)packed;
  int64_t Cg = p->C / p->groups, Og = p->O / p->groups;
  for (int64_t n = 0; n < p->N; n++) {
    for (int64_t o = 0; o < p->O; o++) {
      int64_t g = o / Og;
      for (int64_t oh = 0; oh < p->OH; oh++) {
        for (int64_t ow = 0; ow < p->OW; ow++) {
          double acc = bias ? bias[o] : 0;
          for (int64_t c = 0; c < Cg; c++) {
            const float *xc = x + (n * p->C + g * Cg + c) * p->H * p->W;
            const float *wc = w + (o * Cg + c) * p->KH * p->KW;
            for (int64_t kh = 0; kh < p->KH; kh++) {
              int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
              if (ih < 0 || ih >= p->H) continue;
              for (int64_t kw = 0; kw < p->KW; kw++) {
                int64_t iw = ow * p->stride_w - p->pad_w + kw * p->dilation_w;
                if (iw < 0 || iw >= p->W) continue;
                acc += (double)wc[kh * p->KW + kw] * xc[ih * p->W + iw];
              }
            }
          }
          int64_t yi = ((n * p->O + o) * p->OH + oh) * p->OW + ow;
          if (residual) acc += residual[yi];
          if (p->relu && !(acc > 0) && acc == acc) acc = 0;
          y[yi] = (float)acc;
        }
      }
    }
  }
}

// conv_dw.c: the gradient of conv2d (conv.c) w.r.t. its weight (and bias), for training.
// Same layouts as conv.c: x (N,C,H,W); dw (O,C/groups,KH,KW); dy (N,O,OH,OW); Cg = C/groups, Og = O/groups,
// P = OH*OW.
//
// Weight gradient: per group, dW_g[Og][Cg*KH*KW] = dy_g[Og][N*P] x col_g[N*P][Cg*KH*KW], a GEMM whose reduction
// runs over the N*P output pixels, the contiguous dimension of both dy and x in NCHW. It runs on gemm.c's
// micro-kernel (8 x 48 on AVX-512) with its own BLIS-style driver (see "The GEMM" below): the broadcast operand A
// is read in place from the rows of dy (K blocks stay inside one image), or packed per K block for 7x7 layers; the
// vector operand B is the im2col^T panel [KC pixels][NR columns], filled like conv.c's panels (per tap, per vector
// of pixels: zero / affine load / gather, stride 2 through the phase planes) and transposed VL x VL in registers.
// Columns run tap-major (j = r*Cg + c) so that one tap's lane classification serves many channels; the result is
// permuted to OIHW at the end. Unpadded 1x1 stride-1 layers with more input than output channels swap the roles
// (A = rows of x, B = dy^T), so the packed operand is always the one with fewer channels.
//
// Small groups (ResNeXt's 32 groups of 4..16 channels, depthwise) at stride 1 use the direct kernel of
// conv_grouped.c instead.

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../simd.h"
#include "kernels.h"

// ---- weight gradient -------------------------------------------------------------------------------------------

typedef struct {
  const dl_conv2d_params *p;
  dl_conv_src src;
  const float *dy, *x;
  int64_t G, Cg, Og, KHW, P, K, J;  // K = N*P (reduction), J = KHW*Cg (columns, tap-major)
  int64_t MR, NR, nmp;
} dw_geom;

/** Per job: the B panel source, and where its pixel range starts. */
typedef struct {
  const dw_geom *s;
  int64_t k_off;
} dw_bctx;

enum { ZERO, AFFINE1, AFFINE2, GATHER };

// The im2col^T panel: dst[kk][jj] = col(pixel k_off + k0 + kk, column j0 + jj) for kk < kc, jj < nr, with
// column j = r*Cg + c (tap r, channel c) of group g. Per vector of VL pixels: classify each tap's lanes once,
// write one vector per column into a staging block (column-major), transpose VL x VL blocks into the panel rows.
static const float *dw_get_b(const void *vctx, int64_t g, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                             float *dst, int64_t *ldb) {
  const dw_bctx *bc = vctx;
  const dw_geom *s = bc->s;
  const dl_conv2d_params *p = s->p;
  const dl_conv_src *src = &s->src;
  const int64_t NR = s->NR, Cg = s->Cg, CS = src->cstride, OW = p->OW;
  const int32_t H = (int32_t)p->H, W = (int32_t)p->W;
  const int ncb = (int)((nr + DL_VL - 1) / DL_VL);  // column blocks of VL
  *ldb = NR;
  const float *xg = src->x + g * Cg * CS;
  const int64_t xend = p->N * src->istride - g * Cg * CS;  // reads must stay in [0, xend) relative to xg
  float stage[8 * DL_VL * DL_VL] __attribute__((aligned(64)));
  for (int64_t jj = nr; jj < (int64_t)ncb * DL_VL; jj++) memset(stage + jj * DL_VL, 0, DL_VL * sizeof(float));
  vi lane;
  for (int l = 0; l < DL_VL; l++) lane[l] = l;
  int64_t q = bc->k_off + k0;
  int64_t n = q / s->P, pp = q % s->P, oh = pp / OW, ow = pp % OW;
  const int64_t r_lo = j0 / Cg, r_hi = (j0 + nr - 1) / Cg;
  for (int64_t kb = 0; kb < kc; kb += DL_VL) {
    vi ohs, ows, nbase, ok;
    for (int l = 0; l < DL_VL; l++) {
      ohs[l] = (int32_t)(oh * p->stride_h);
      ows[l] = (int32_t)(ow * p->stride_w);
      nbase[l] = (int32_t)(n * src->istride);
      ok[l] = kb + l < kc ? -1 : 0;
      if (++ow == OW) {
        ow = 0;
        if (++oh == p->OH) oh = 0, n++;
      }
    }
    for (int64_t r = r_lo; r <= r_hi; r++) {
      const int64_t kh = r / p->KW, kw = r % p->KW;
      const int32_t dh = (int32_t)(kh * p->dilation_h - p->pad_h), dw = (int32_t)(kw * p->dilation_w - p->pad_w);
      const int32_t pr = dh & 1, ps = dw & 1;
      int32_t step = (int32_t)p->stride_w, pbase = 0;
      if (src->phased) {
        pbase = (int32_t)(src->slot[pr * 2 + ps] * src->PH * src->PW);
        step = 1;
      }
      const int64_t c_lo = (j0 > r * Cg ? j0 - r * Cg : 0), c_hi = (j0 + nr < (r + 1) * Cg ? j0 + nr - r * Cg : Cg);
      vi ih = ohs + dh, iw = ows + dw;
      vi in = ok & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W);
      vi off = src->phased ? nbase + pbase + ((ih - pr) >> 1) * (int32_t)src->PW + ((iw - ps) >> 1)
                           : nbase + ih * W + iw;
      int mode = GATHER;
      const int64_t base = off[0];
      if (vi_bits(in) == 0) {
        mode = ZERO;
      } else if (step <= 2 && vi_bits((off == off[0] + lane * step) | ~ok) == DL_ALL_LANES) {
        mode = step == 1 ? AFFINE1 : AFFINE2;
        int64_t lo = base + c_lo * CS, hi = base + (c_hi - 1) * CS + step * DL_VL;
        if (lo < 0 || hi > xend) mode = GATHER;
      }
      float *d = stage + (r * Cg + c_lo - j0) * DL_VL;
      const float *sp = xg + c_lo * CS;
      const int64_t nc = c_hi - c_lo;
      switch (mode) {
        case ZERO:
          for (int64_t c = 0; c < nc; c++, d += DL_VL) vf_store(d, vf_zero());
          break;
        case AFFINE1:
          for (int64_t c = 0; c < nc; c++, d += DL_VL, sp += CS) vf_store(d, vf_and(vf_load(sp + base), in));
          break;
        case AFFINE2:
          for (int64_t c = 0; c < nc; c++, d += DL_VL, sp += CS)
            vf_store(d, vf_and(vf_even(vf_load(sp + base), vf_load(sp + base + DL_VL)), in));
          break;
        default:
          for (int64_t c = 0; c < nc; c++, d += DL_VL, sp += CS)
            for (int l = 0; l < DL_VL; l++) d[l] = in[l] ? sp[off[l]] : 0.0f;
          break;
      }
    }
    const int rows = kc - kb < DL_VL ? (int)(kc - kb) : DL_VL;
    for (int cb = 0; cb < ncb; cb++) {
      vf t[DL_VL];
      for (int i = 0; i < DL_VL; i++) t[i] = vf_load(stage + (cb * DL_VL + i) * DL_VL);
      vf_transpose(t);
      for (int i = 0; i < rows; i++) vf_store(dst + (kb + i) * NR + cb * DL_VL, t[i]);
    }
  }
  return dst;
}

// A: rows [m0, m1) (a multiple of MR apart; rows past Og are 0) of group g's dy for pixels [k0, k1), transposed into
// panels ap[((m - m0)/MR * kstride + q - k0)*MR + (m - m0) % MR]. Blocks of VL rows x VL pixels go through a
// register transpose; a pixel range may straddle images.
static void pack_dy(const dw_geom *s, int64_t g, int64_t m0, int64_t m1, int64_t k0, int64_t k1, float *ap,
                    int64_t kstride) {
  const int64_t MR = s->MR, Og = s->Og, P = s->P, O = s->p->O;
  for (int64_t q = k0; q < k1;) {
    const int64_t n = q / P, p0 = q % P, len = P - p0 < k1 - q ? P - p0 : k1 - q;
    const float *dyn = s->dy + (n * O + g * Og) * P + p0;
    for (int64_t ob = m0; ob < m1; ob += DL_VL) {
      int64_t j = 0;
      for (; j + DL_VL <= len; j += DL_VL) {
        vf t[DL_VL];
        for (int i = 0; i < DL_VL; i++) t[i] = ob + i < Og ? vf_load(dyn + (ob + i) * P + j) : vf_zero();
        vf_transpose(t);
        for (int l = 0; l < DL_VL; l++) {
          const int64_t row = q - k0 + j + l;
#if DL_VL % DL_MR == 0
          for (int h = 0; h < DL_VL / DL_MR && ob + h * MR < m1; h++)
            memcpy(ap + (((ob - m0) / MR + h) * kstride + row) * MR, (const float *)&t[l] + h * MR, DL_MR * sizeof(float));
#else
          for (int i = 0; i < DL_VL && ob + i < m1; i++)
            ap[(((ob - m0 + i) / MR) * kstride + row) * MR + (ob - m0 + i) % MR] = t[l][i];
#endif
        }
      }
      for (; j < len; j++) {
        const int64_t row = q - k0 + j;
        for (int64_t i = ob; i < ob + DL_VL && i < m1; i++)
          ap[(((i - m0) / MR) * kstride + row) * MR + (i - m0) % MR] = i < Og ? dyn[i * P + j] : 0.0f;
      }
    }
    q += len;
  }
}

// dst[k*NR + r] = src[r*rs + k] for r < nrows, k < kc (a transposed copy of nrows rows), 0 for r up to the next
// multiple of VL. VL x VL register transposes; the pixel tail is a masked load.
static void pack_t(const float *src, int64_t rs, int64_t nrows, int64_t kc, float *dst, int64_t NR) {
  const int64_t nrb = (nrows + DL_VL - 1) / DL_VL;
  for (int64_t k = 0; k < kc; k += DL_VL) {
    const int kn = kc - k < DL_VL ? (int)(kc - k) : DL_VL;
    for (int64_t rb = 0; rb < nrb; rb++) {
      vf t[DL_VL];
      for (int i = 0; i < DL_VL; i++) {
        const int64_t r = rb * DL_VL + i;
        t[i] = r >= nrows ? vf_zero() : kn == DL_VL ? vf_load(src + r * rs + k) : vf_load_n(src + r * rs + k, kn);
      }
      vf_transpose(t);
      for (int l = 0; l < kn; l++) vf_store(dst + (k + l) * NR + rb * DL_VL, t[l]);
    }
  }
}

// The GEMM, BLIS-style, over MR x NR tiles of a padded buffer C[g][MRp][JP], in one of two orientations:
//   IM2COL: rows o (A = dy), columns j = r*Cg + c (B = im2col^T, from dw_get_b, or a plain transposed copy of x
//           for an unpadded 1x1 stride-1 conv);
//   XROWS:  unpadded 1x1 stride-1 convs with more input than output channels: rows c (A = x), columns o (B =
//           dy^T). The packed operand (B) is the one with fewer channels, so packing costs less per multiply-add.
// When the images have >= 128 output pixels, K blocks stay inside one image and the micro-kernel broadcasts A
// straight from the rows of dy (or x): only B is packed. Otherwise (7x7 layers) A is dy packed per K block.
// A unit of work is (group, chunk of column tiles, block of row panels); per K block it packs its B chunk into L2
// and accumulates into its part of C, which stays in L2 across K blocks. Threads share the units (each with the
// whole reduction, no partial sums) or, when units would leave threads idle, split the K blocks and each computes
// every unit into a private C; dw_finish then sums and permutes into OIHW.
#define DW_KC 512           // pixels per K block, at most
#define DW_BCHUNK (384 << 10) // bytes of B panels per unit and K block
#define DW_NMP 64           // row panels per unit, at most

enum { DW_IM2COL, DW_XROWS };

typedef struct {
  dw_geom s;
  float *dw;
  int mode, a_direct, b_plain;
  int64_t M, JC;                     // GEMM rows and columns per group
  int64_t nmp, nt, MRp, JP;
  int64_t kcb, nbi, nblk;            // K block length; blocks per image (a_direct); blocks in all
  int64_t njc, nct, nmc, npb, nunits;
  int ksplit;
  atomic_llong next;
  float *c;                          // the shared C (unit split)
  float *part[DL_MAX_THREADS];       // private Cs (K split), NULL for threads without blocks
} dw_ctx;

/** Rows [k0, k0 + kc) of the reduction: block b. n is the image when the block lies inside one (a_direct). */
static void dw_block(const dw_ctx *d, int64_t b, int64_t *n, int64_t *p0, int64_t *k0, int64_t *kc) {
  const int64_t P = d->s.P, K = d->s.K;
  if (d->a_direct) {
    *n = b / d->nbi;
    *p0 = (b % d->nbi) * d->kcb;
    *kc = P - *p0 < d->kcb ? P - *p0 : d->kcb;
    *k0 = *n * P + *p0;
  } else {
    *n = *p0 = 0;
    *k0 = b * d->kcb;
    *kc = K - *k0 < d->kcb ? K - *k0 : d->kcb;
  }
}

/** Blocks [b0, b1) of unit u into C (accumulating after the first). */
static void dw_unit(const dw_ctx *d, int64_t u, int64_t b0, int64_t b1, float *C, float *abuf, float *bbuf) {
  const dw_geom *s = &d->s;
  const dl_conv2d_params *p = s->p;
  const int64_t MR = s->MR, NR = s->NR, M = d->M;
  const int64_t g = u / (d->njc * d->nmc), jc = u / d->nmc % d->njc, mc = u % d->nmc;
  const int64_t t0 = jc * d->nct, t1 = t0 + d->nct < d->nt ? t0 + d->nct : d->nt;
  const int64_t q0 = mc * d->npb, q1 = q0 + d->npb < d->nmp ? q0 + d->npb : d->nmp;  // row panels
  float *Cg = C + g * d->MRp * d->JP;
  dw_bctx bc = {s, 0};
  for (int64_t b = b0; b < b1; b++) {
    int64_t n, p0, k0, kc;
    dw_block(d, b, &n, &p0, &k0, &kc);
    // B panels of this unit's tiles
    for (int64_t t = t0; t < t1; t++) {
      const int64_t j0 = t * NR, nr = d->JC - j0 < NR ? d->JC - j0 : NR;
      float *dst = bbuf + (t - t0) * d->kcb * NR;
      int64_t ldb;
      if (d->mode == DW_XROWS) pack_t(s->dy + (n * p->O + g * s->Og + j0) * s->P + p0, s->P, nr, kc, dst, NR);
      else if (d->b_plain) pack_t(s->x + (n * p->C + g * s->Cg + j0) * s->P + p0, s->P, nr, kc, dst, NR);
      else dw_get_b(&bc, g, j0, nr, k0, kc, dst, &ldb);
    }
    if (!d->a_direct) pack_dy(s, g, q0 * MR, q1 * MR, k0, k0 + kc, abuf, d->kcb);
    const float *abase = d->mode == DW_XROWS ? s->x + (n * p->C + g * s->Cg) * s->P + p0
                                             : s->dy + (n * p->O + g * s->Og) * s->P + p0;
    for (int64_t mp = q0; mp < q1; mp++) {
      const float *rows[16];
      for (int64_t i = 0; i < MR; i++) {
        const int64_t m = mp * MR + i < M ? mp * MR + i : M - 1;  // padding rows repeat a real one (never read)
        rows[i] = abase + m * s->P;
      }
      for (int64_t t = t0; t < t1; t++) {
        const int64_t j0 = t * NR, nr = d->JC - j0 < NR ? d->JC - j0 : NR;
        const int nv = (int)((nr + DL_VL - 1) / DL_VL);
        const float *bp = bbuf + (t - t0) * d->kcb * NR;
        float *ct = Cg + mp * MR * d->JP + j0;
        if (d->a_direct) dl_gemm_tile_rows(nv, kc, rows, bp, NR, ct, d->JP, b > b0);
        else dl_gemm_tile(nv, kc, abuf + (mp - q0) * d->kcb * MR, bp, NR, ct, d->JP, b > b0);
      }
    }
  }
}

static void dw_task(void *arg, int ith, int nth) {
  dw_ctx *d = arg;
  const dw_geom *s = &d->s;
  float *bbuf = dl_scratch(0, (size_t)(d->nct * d->kcb * s->NR) * sizeof(float) + 64);
  float *abuf = d->a_direct ? NULL : dl_scratch(2, (size_t)(d->npb * d->kcb * s->MR) * sizeof(float) + 64);
  if (d->ksplit) {
    int64_t b0, b1;
    dl_split(d->nblk, ith, nth, &b0, &b1);
    d->part[ith] = NULL;
    if (b1 <= b0) return;
    float *C = dl_scratch(3, (size_t)(s->G * d->MRp * d->JP) * sizeof(float) + 64);
    for (int64_t u = 0; u < d->nunits; u++) dw_unit(d, u, b0, b1, C, abuf, bbuf);
    d->part[ith] = C;
    return;
  }
  for (int64_t u; (u = atomic_fetch_add(&d->next, 1)) < d->nunits;) dw_unit(d, u, 0, d->nblk, d->c, abuf, bbuf);
}

// dw[g][o][c][r] = sum over the Cs of C[g][o][r*Cg + c] (IM2COL) or C[g][c][o] (XROWS); threads over rows (g, o).
static void dw_finish_task(void *arg, int ith, int nth) {
  const dw_ctx *d = arg;
  const dw_geom *s = &d->s;
  const int64_t J = s->J, Cg = s->Cg, KHW = s->KHW;
  int64_t lo, hi;
  dl_split(s->G * s->Og, ith, nth, &lo, &hi);
  for (int64_t row = lo; row < hi; row++) {
    const int64_t g = row / s->Og, o = row % s->Og;
    float *out = d->dw + row * J;
    int first = 1;
    for (int t = 0; t < DL_MAX_THREADS; t++) {
      if (!d->part[t]) continue;
      const float *Cg_ = d->part[t] + g * d->MRp * d->JP;
      if (d->mode == DW_XROWS) {
        for (int64_t c = 0; c < Cg; c++) out[c] = first ? Cg_[c * d->JP + o] : out[c] + Cg_[c * d->JP + o];
      } else if (KHW == 1) {
        const float *pt = Cg_ + o * d->JP;
        int64_t j = 0;
        if (first)
          for (; j + DL_VL <= J; j += DL_VL) vf_store(out + j, vf_load(pt + j));
        else
          for (; j + DL_VL <= J; j += DL_VL) vf_store(out + j, vf_load(out + j) + vf_load(pt + j));
        for (; j < J; j++) out[j] = first ? pt[j] : out[j] + pt[j];
      } else {
        const float *pt = Cg_ + o * d->JP;
        for (int64_t r = 0; r < KHW; r++)
          for (int64_t c = 0; c < Cg; c++) {
            const float v = pt[r * Cg + c];
            out[c * KHW + r] = first ? v : out[c * KHW + r] + v;
          }
      }
      first = 0;
    }
  }
}

typedef struct {
  const float *dy;
  int64_t N, O, P;
  float *db;
} db_ctx;

static void db_task(void *arg, int ith, int nth) {
  const db_ctx *b = arg;
  int64_t lo, hi;
  dl_split(b->O, ith, nth, &lo, &hi);
  for (int64_t o = lo; o < hi; o++) {
    double s = 0;
    for (int64_t n = 0; n < b->N; n++) {
      const float *x = b->dy + (n * b->O + o) * b->P;
      vd acc = {0};
      int64_t i = 0;
      for (; i + DL_VL <= b->P; i += DL_VL) acc += vf_to_vd(vf_load(x + i));
      s += vd_hsum(&acc);
      for (; i < b->P; i++) s += x[i];
    }
    b->db[o] = (float)s;
  }
}

/**
 * How busy nth threads would be sharing the units (busy time / (nth * longest thread)), with units costed by
 * their row panels x column vectors and handed out in order to whichever thread is free first (the atomic counter).
 */
static double dw_balance(const dw_ctx *d, int nth) {
  double load[DL_MAX_THREADS] = {0}, total = 0, worst = 0;
  const int64_t NR = d->s.NR;
  for (int64_t u = 0; u < d->nunits; u++) {
    const int64_t jc = u / d->nmc % d->njc, mc = u % d->nmc;
    const int64_t t0 = jc * d->nct, t1 = t0 + d->nct < d->nt ? t0 + d->nct : d->nt;
    const int64_t p0 = mc * d->npb, p1 = p0 + d->npb < d->nmp ? p0 + d->npb : d->nmp;
    const int64_t cols = (t1 * NR < d->JC ? t1 * NR : d->JC) - t0 * NR;
    const double cost = (double)(p1 - p0) * (double)((cols + DL_VL - 1) / DL_VL);
    int best = 0;
    for (int t = 1; t < nth; t++)
      if (load[t] < load[best]) best = t;
    load[best] += cost;
    total += cost;
  }
  for (int t = 0; t < nth; t++)
    if (load[t] > worst) worst = load[t];
  return worst > 0 ? total / (nth * worst) : 1.0;
}

void dl_conv2d_bwd_weight(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db) {
  const int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, KHW = p->KH * p->KW, P = p->OH * p->OW;
  if (db) {
    db_ctx b = {dy, p->N, p->O, P, db};
    dl_parallel(db_task, &b, dl_threads_for(p->N * p->O * P, 1 << 16));
  }
  if (p->N * P == 0) {
    memset(dw, 0, (size_t)(p->O * Cg * KHW) * sizeof(float));
    return;
  }
  if (p->stride_h == 1 && p->stride_w == 1 && dl_grouped_direct_ok(G, Cg, Og)) {
    dl_grouped_dw_s1(p, x, dy, dw);
    return;
  }
  // the lane arithmetic is int32 (as in conv.c); the staging block holds at most 8 column vectors
  if (p->N * p->C * (p->H + 1) * (p->W + 1) >= ((int64_t)1 << 31) - 64 || dl_gemm_nr() > 8 * DL_VL) {
    dl_conv2d_bwd_weight_ref(p, x, dy, dw, NULL);
    return;
  }
  dw_ctx d = {.s = {.p = p, .dy = dy, .x = x, .G = G, .Cg = Cg, .Og = Og, .KHW = KHW, .P = P, .K = p->N * P,
                    .J = KHW * Cg, .MR = dl_gemm_mr(), .NR = dl_gemm_nr()},
              .dw = dw};
  dw_geom *s = &d.s;
  const int64_t MR = s->MR, NR = s->NR;
  const int plain_1x1 = KHW == 1 && p->stride_h == 1 && p->stride_w == 1 && p->pad_h == 0 && p->pad_w == 0 &&
                        p->OH == p->H && p->OW == p->W;
  d.a_direct = P >= 128;
  d.mode = d.a_direct && plain_1x1 && Cg > Og ? DW_XROWS : DW_IM2COL;
  d.b_plain = d.a_direct && plain_1x1;
  d.M = d.mode == DW_XROWS ? Cg : Og;
  d.JC = d.mode == DW_XROWS ? Og : s->J;
  d.nmp = (d.M + MR - 1) / MR;
  d.nt = (d.JC + NR - 1) / NR;
  d.MRp = d.nmp * MR;
  d.JP = d.nt * NR;
  s->nmp = d.nmp;  // pack_dy's zero rows (IM2COL)
  if (d.a_direct) {
    d.nbi = (P + DW_KC - 1) / DW_KC;
    d.kcb = (P + d.nbi - 1) / d.nbi;
    d.nblk = p->N * d.nbi;
  } else {
    d.nblk = (s->K + DW_KC - 1) / DW_KC;
    d.kcb = (s->K + d.nblk - 1) / d.nblk;
  }
  // Units: all row panels together up to 512 rows (B, the costly operand to pack, is then packed once per 512
  // rows), column chunks whose B panels fit DW_BCHUNK, made smaller until there are >= 4 units per thread.
  if (!d.b_plain && d.mode == DW_IM2COL) dl_conv_src_init(p, x, &s->src);
  const double macs = (double)G * d.M * d.JC * s->K;
  int nth = dl_threads_for((int64_t)(macs / (1 << 20)), 1);
  d.nmc = (d.nmp + DW_NMP - 1) / DW_NMP;
  d.npb = (d.nmp + d.nmc - 1) / d.nmc;
  int64_t nct = DW_BCHUNK / (d.kcb * NR * 4);
  if (nct < 1) nct = 1;
  d.njc = (d.nt + nct - 1) / nct;
  if (G * d.njc * d.nmc < 4 * nth) {
    int64_t want = (4 * nth + G * d.nmc - 1) / (G * d.nmc);
    d.njc = want < d.nt ? want : d.nt;
  }
  d.nct = (d.nt + d.njc - 1) / d.njc;
  d.njc = (d.nt + d.nct - 1) / d.nct;
  d.nunits = G * d.njc * d.nmc;
  // Units that would leave threads idle (< 85% busy; e.g. early layers: 64 channels, 1-3 units) and enough K
  // blocks to share: split the K blocks instead.
  d.ksplit = nth > 1 && dw_balance(&d, nth) < 0.85 && d.nblk >= 2 * nth;
  atomic_init(&d.next, 0);
  if (!d.ksplit) {
    d.c = dl_scratch(3, (size_t)(G * d.MRp * d.JP) * sizeof(float) + 64);
    d.part[0] = d.c;
  }
  dl_parallel(dw_task, &d, nth);
  dl_parallel(dw_finish_task, &d, dl_threads_for(G * Og * s->J * (d.ksplit ? nth : 1), 1 << 15));
}

// Naive reference: one double accumulator per weight (and per bias).
void dl_conv2d_bwd_weight_ref(const dl_conv2d_params *p, const float *x, const float *dy, float *dw, float *db) {
  const int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, P = p->OH * p->OW;
  for (int64_t o = 0; o < p->O; o++) {
    const int64_t g = o / Og;
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t kh = 0; kh < p->KH; kh++)
        for (int64_t kw = 0; kw < p->KW; kw++) {
          double acc = 0;
          for (int64_t n = 0; n < p->N; n++) {
            const float *xc = x + (n * p->C + g * Cg + c) * p->H * p->W, *dyo = dy + (n * p->O + o) * P;
            for (int64_t oh = 0; oh < p->OH; oh++) {
              int64_t ih = oh * p->stride_h - p->pad_h + kh * p->dilation_h;
              if (ih < 0 || ih >= p->H) continue;
              for (int64_t ow = 0; ow < p->OW; ow++) {
                int64_t iw = ow * p->stride_w - p->pad_w + kw * p->dilation_w;
                if (iw < 0 || iw >= p->W) continue;
                acc += (double)dyo[oh * p->OW + ow] * xc[ih * p->W + iw];
              }
            }
          }
          dw[((o * Cg + c) * p->KH + kh) * p->KW + kw] = (float)acc;
        }
    if (db) {
      double s = 0;
      for (int64_t n = 0; n < p->N; n++)
        for (int64_t i = 0; i < P; i++) s += dy[(n * p->O + o) * P + i];
      db[o] = (float)s;
    }
  }
}

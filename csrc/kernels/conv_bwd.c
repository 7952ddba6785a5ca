// conv_bwd.c: the gradient of conv2d (conv.c) w.r.t. its input, for training (the weight gradient is conv_dw.c).
// Same layouts as conv.c: x, dx (N,C,H,W); w, dw (O,C/groups,KH,KW); dy (N,O,OH,OW); Cg = C/groups, Og = O/groups.
//
// Data gradient: dx[ih] = sum over o, kh with ih = oh*s - p + kh*d of w[o][c][kh] * dy[oh] (per dimension).
// Split dx into s x s phases by (ih mod s, iw mod s): inside phase r the taps kh that can reach it are those with
// (r + p - kh*d) divisible by s, and they read dy at i + (r + p - kh*d)/s, an arithmetic progression in kh. So each
// phase is a stride-1 convolution of dy (channels O -> C, same groups) with the flipped, transposed sub-kernel:
// conv.c's implicit GEMM, at forward speed, with weights packed once per weight version (bwd_data_pack). For
// stride 1 there is one phase, the classic "convolve dy with the rotated kernel, padding (K-1)*d - p", written
// straight into dx. For stride > 1 the phases go to scratch planes and one pass interleaves them into dx (phases
// no tap reaches, e.g. the odd ones of a 1x1 stride-2 layer, become zeros there).
//
// Small groups (ResNeXt's 32 groups of 4..16 channels, depthwise) run the phase convolutions with the direct kernel
// of conv_grouped.c instead, with weights packed plainly (C, O/groups, taps) per phase.

#include <stdlib.h>
#include <string.h>

#include "../simd.h"
#include "kernels.h"



/** One dimension of one phase r: dx[s*i + r] = sum over t < n of w[k_last - t*kstep] * dy[i - pad + t*dil]. */
typedef struct {
  int64_t n;       // taps (0: nothing reaches this phase)
  int64_t k_last;  // kernel index of tap 0
  int64_t kstep;
  int64_t pad, dil;
  int64_t size;    // outputs i with s*i + r < H
} phase_dim;

static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

static phase_dim phase_of(int64_t r, int64_t H, int64_t K, int64_t s, int64_t p, int64_t d) {
  phase_dim f = {0};
  f.size = r < H ? (H - r + s - 1) / s : 0;
  int64_t g = gcd64(s, d);
  f.kstep = s / g;
  f.dil = d / g;
  int64_t first = -1;  // valid kernel indices repeat with period kstep
  for (int64_t k = 0; k < K && k < f.kstep && first < 0; k++)
    if (((r + p - k * d) % s + s) % s == 0) first = k;
  if (first < 0) return f;
  f.n = (K - 1 - first) / f.kstep + 1;
  f.k_last = first + (f.n - 1) * f.kstep;
  f.pad = -((r + p - f.k_last * d) / s);  // exact: tap 0 (k_last) has the smallest dy offset
  return f;
}

/** The stride-1 convolution over dy that computes phase (fh, fw) of dx. */
static dl_conv2d_params phase_params(const dl_conv2d_params *p, const phase_dim *fh, const phase_dim *fw) {
  return (dl_conv2d_params){.N = p->N, .C = p->O, .H = p->OH, .W = p->OW, .O = p->C, .KH = fh->n, .KW = fw->n,
                            .OH = fh->size, .OW = fw->size, .stride_h = 1, .stride_w = 1, .pad_h = fh->pad,
                            .pad_w = fw->pad, .dilation_h = fh->dil, .dilation_w = fw->dil, .groups = p->groups};
}

static int phase_live(const phase_dim *fh, const phase_dim *fw) { return fh->n && fw->n && fh->size && fw->size; }

/** Small groups go to conv_grouped.c's direct kernel, whose weights are plain (C, O/groups, taps) per phase. */
static int bwd_data_direct(const dl_conv2d_params *p) {
  return dl_grouped_direct_ok(p->groups, p->O / p->groups, p->C / p->groups);
}

int64_t dl_conv2d_bwd_data_packed_size(const dl_conv2d_params *p) {
  const int direct = bwd_data_direct(p);
  int64_t total = 0;
  for (int64_t rh = 0; rh < p->stride_h; rh++) {
    phase_dim fh = phase_of(rh, p->H, p->KH, p->stride_h, p->pad_h, p->dilation_h);
    for (int64_t rw = 0; rw < p->stride_w; rw++) {
      phase_dim fw = phase_of(rw, p->W, p->KW, p->stride_w, p->pad_w, p->dilation_w);
      if (!phase_live(&fh, &fw)) continue;
      dl_conv2d_params pp = phase_params(p, &fh, &fw);
      total += direct ? p->C * (p->O / p->groups) * fh.n * fw.n : dl_conv2d_packed_size(&pp);
    }
  }
  return total;
}

// Per phase, per group: conv.c's packed A for the (Cg x Og*T) matrix wt[c][o*T + t] = w[o][c][kh(t)][kw(t)]:
// row panels of MR channels, [k][MR] inside a panel, rows past Cg zero (dl_gemm_pack_a's layout); or, for the
// direct grouped kernel, plainly wd[c][o][t]. Threads over (group, panel); sequential writes inside a panel.
typedef struct {
  const dl_conv2d_params *p;
  const float *w;
  float *packed;        // this phase's part
  const int64_t *taps;  // tap t -> kh*KW + kw
  int64_t T;
  int direct;
} bwd_pack_job;

static void bwd_pack_task(void *arg, int ith, int nth) {
  const bwd_pack_job *j = arg;
  const dl_conv2d_params *p = j->p;
  const int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, KHW = p->KH * p->KW, MR = dl_gemm_mr(), T = j->T;
  const int64_t nmp = j->direct ? 1 : (Cg + MR - 1) / MR, Kp = Og * T;
  int64_t lo, hi;
  dl_split(G * nmp, ith, nth, &lo, &hi);
  for (int64_t u = lo; u < hi; u++) {
    const int64_t g = u / nmp, mp = u % nmp;
    if (j->direct) {
      for (int64_t c = 0; c < Cg; c++)
        for (int64_t o = 0; o < Og; o++)
          for (int64_t t = 0; t < T; t++)
            j->packed[((g * Cg + c) * Og + o) * T + t] = j->w[((g * Og + o) * Cg + c) * KHW + j->taps[t]];
      continue;
    }
    const int64_t c0 = mp * MR, mr = Cg - c0 < MR ? Cg - c0 : MR;
    float *dst = j->packed + (g * nmp + mp) * Kp * MR;
    for (int64_t o = 0; o < Og; o++) {
      const float *wo = j->w + ((g * Og + o) * Cg + c0) * KHW;
      for (int64_t t = 0; t < T; t++, dst += MR) {
        for (int64_t i = 0; i < mr; i++) dst[i] = wo[i * KHW + j->taps[t]];
        for (int64_t i = mr; i < MR; i++) dst[i] = 0;
      }
    }
  }
}

void dl_conv2d_bwd_data_pack(const dl_conv2d_params *p, const float *w, float *packed) {
  const int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, MR = dl_gemm_mr();
  const int direct = bwd_data_direct(p);
  for (int64_t rh = 0; rh < p->stride_h; rh++) {
    phase_dim fh = phase_of(rh, p->H, p->KH, p->stride_h, p->pad_h, p->dilation_h);
    for (int64_t rw = 0; rw < p->stride_w; rw++) {
      phase_dim fw = phase_of(rw, p->W, p->KW, p->stride_w, p->pad_w, p->dilation_w);
      if (!phase_live(&fh, &fw)) continue;
      const int64_t T = fh.n * fw.n;
      int64_t small[256], *taps = T <= 256 ? small : malloc((size_t)T * sizeof(int64_t));
      if (!taps) abort();
      for (int64_t th = 0; th < fh.n; th++)
        for (int64_t tw = 0; tw < fw.n; tw++)
          taps[th * fw.n + tw] = (fh.k_last - th * fh.kstep) * p->KW + fw.k_last - tw * fw.kstep;
      bwd_pack_job j = {p, w, packed, taps, T, direct};
      dl_parallel(bwd_pack_task, &j, dl_threads_for(p->C * Og * T, 1 << 16));
      if (taps != small) free(taps);
      packed += direct ? p->C * Og * T : G * ((Cg + MR - 1) / MR) * MR * Og * T;
    }
  }
}

typedef struct {
  const dl_conv2d_params *p;
  const float *planes[16];  // per phase rh*sw + rw (stride 2: 4), NULL for an all-zero phase
  int64_t ph[16], pw[16];   // plane sizes
  float *dx;
} interleave_ctx;

// dx[n][c][s*i + rh][s*j + rw] = planes[rh*s + rw][n][c][i][j] (0 when that phase is empty). Threads over planes.
// Stride 2 in width (ResNet's case) zips the two phases of a row VL at a time, with masked tails.
static void interleave_row2(float *out, const float *a, const float *b, int64_t W) {
  const int64_t na = (W + 1) / 2, nb = W / 2;  // columns of phase 0 and phase 1
  int64_t j = 0;
  for (; j + DL_VL <= nb; j += DL_VL) {
    vf va = a ? vf_load(a + j) : vf_zero(), vb = b ? vf_load(b + j) : vf_zero();
    vf_store(out + 2 * j, vf_zip_lo(va, vb));
    vf_store(out + 2 * j + DL_VL, vf_zip_hi(va, vb));
  }
  for (; j < na; j += DL_VL) {
    const int ra = (int)(na - j < DL_VL ? na - j : DL_VL), rb = (int)(nb - j < DL_VL ? (nb > j ? nb - j : 0) : DL_VL);
    vf va = a ? vf_load_n(a + j, ra) : vf_zero(), vb = b ? vf_load_n(b + j, rb) : vf_zero();
    const int rest = (int)(W - 2 * j);
    vf_store_n(out + 2 * j, vf_zip_lo(va, vb), rest < DL_VL ? rest : DL_VL);
    if (rest > DL_VL) vf_store_n(out + 2 * j + DL_VL, vf_zip_hi(va, vb), rest - DL_VL);
  }
}

static void interleave_task(void *arg, int ith, int nth) {
  const interleave_ctx *ic = arg;
  const dl_conv2d_params *p = ic->p;
  const int64_t sh = p->stride_h, sw = p->stride_w, H = p->H, W = p->W;
  int64_t lo, hi;
  dl_split(p->N * p->C, ith, nth, &lo, &hi);
  for (int64_t nc = lo; nc < hi; nc++) {
    float *out = ic->dx + nc * H * W;
    for (int64_t ih = 0, rh = 0, i = 0; ih < H; ih++, out += W) {
      const float *src[16];
      int any = 0;
      for (int64_t rw = 0; rw < sw; rw++) {
        const int64_t ph = rh * sw + rw;
        src[rw] = ic->planes[ph] ? ic->planes[ph] + (nc * ic->ph[ph] + i) * ic->pw[ph] : NULL;
        any |= src[rw] != NULL;
      }
      if (!any) {
        memset(out, 0, (size_t)W * sizeof(float));
      } else if (sw == 2) {
        interleave_row2(out, src[0], src[1], W);
      } else {
        for (int64_t rw = 0; rw < sw; rw++) {
          const float *s = src[rw];
          for (int64_t j = rw, k = 0; j < W; j += sw, k++) out[j] = s ? s[k] : 0.0f;
        }
      }
      if (++rh == sh) rh = 0, i++;
    }
  }
}

void dl_conv2d_bwd_data(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed, float *dx) {
  const int64_t sh = p->stride_h, sw = p->stride_w;
  // conv.c's limits (int32 lane arithmetic over dy, at most 8 vectors per tile); phases indexed in a 4x4 table.
  if (p->N * p->O * (p->OH + 1) * (p->OW + 1) >= ((int64_t)1 << 31) - 64 || dl_gemm_nr() > 8 * DL_VL ||
      sh * sw > 16) {
    dl_conv2d_bwd_data_ref(p, dy, w, packed, dx);
    return;
  }
  if (p->N == 0) return;
  float *own = NULL;
  if (!packed) {
    own = malloc((size_t)dl_conv2d_bwd_data_packed_size(p) * sizeof(float) + 64);
    if (!own) {
      dl_conv2d_bwd_data_ref(p, dy, w, packed, dx);
      return;
    }
    dl_conv2d_bwd_data_pack(p, w, own);
    packed = own;
  }
  if (sh == 1 && sw == 1) {
    phase_dim fh = phase_of(0, p->H, p->KH, 1, p->pad_h, p->dilation_h);
    phase_dim fw = phase_of(0, p->W, p->KW, 1, p->pad_w, p->dilation_w);
    dl_conv2d_params pp = phase_params(p, &fh, &fw);
    if (bwd_data_direct(p)) dl_grouped_conv_s1(&pp, dy, packed, dx);
    else dl_conv2d(&pp, dy, NULL, packed, NULL, NULL, dx);
    free(own);
    return;
  }
  // The phase planes partition dx, so together they need exactly N*C*H*W floats.
  float *buf = dl_scratch(2, (size_t)(p->N * p->C * p->H * p->W) * sizeof(float) + 64), *next = buf;
  interleave_ctx ic = {.p = p, .dx = dx};
  for (int64_t rh = 0; rh < sh; rh++) {
    phase_dim fh = phase_of(rh, p->H, p->KH, sh, p->pad_h, p->dilation_h);
    for (int64_t rw = 0; rw < sw; rw++) {
      phase_dim fw = phase_of(rw, p->W, p->KW, sw, p->pad_w, p->dilation_w);
      const int64_t ph = rh * sw + rw;
      ic.ph[ph] = fh.size;
      ic.pw[ph] = fw.size;
      if (!phase_live(&fh, &fw)) continue;
      dl_conv2d_params pp = phase_params(p, &fh, &fw);
      if (bwd_data_direct(p)) {
        dl_grouped_conv_s1(&pp, dy, packed, next);
        packed += p->C * (p->O / p->groups) * fh.n * fw.n;
      } else {
        dl_conv2d(&pp, dy, NULL, packed, NULL, NULL, next);
        packed += dl_conv2d_packed_size(&pp);
      }
      ic.planes[ph] = next;
      next += p->N * p->C * fh.size * fw.size;
    }
  }
  dl_parallel(interleave_task, &ic, dl_threads_for(p->N * p->C * p->H * p->W, 1 << 16));
  free(own);
}

// Naive reference: each dx element gathers its terms in double.
void dl_conv2d_bwd_data_ref(const dl_conv2d_params *p, const float *dy, const float *w, const float *packed,
                            float *dx) {
  (void)packed;
  const int64_t G = p->groups, Cg = p->C / G, Og = p->O / G, KHW = p->KH * p->KW;
  for (int64_t n = 0; n < p->N; n++)
    for (int64_t c = 0; c < p->C; c++) {
      const int64_t g = c / Cg, cl = c % Cg;
      for (int64_t ih = 0; ih < p->H; ih++)
        for (int64_t iw = 0; iw < p->W; iw++) {
          double acc = 0;
          for (int64_t kh = 0; kh < p->KH; kh++) {
            int64_t th = ih + p->pad_h - kh * p->dilation_h;
            if (th < 0 || th % p->stride_h) continue;
            int64_t oh = th / p->stride_h;
            if (oh >= p->OH) continue;
            for (int64_t kw = 0; kw < p->KW; kw++) {
              int64_t tw = iw + p->pad_w - kw * p->dilation_w;
              if (tw < 0 || tw % p->stride_w) continue;
              int64_t ow = tw / p->stride_w;
              if (ow >= p->OW) continue;
              for (int64_t o = g * Og; o < (g + 1) * Og; o++)
                acc += (double)w[(o * Cg + cl) * KHW + kh * p->KW + kw] *
                       dy[((n * p->O + o) * p->OH + oh) * p->OW + ow];
            }
          }
          dx[((n * p->C + c) * p->H + ih) * p->W + iw] = (float)acc;
        }
    }
}

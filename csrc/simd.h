// simd.h: the one SIMD layer. Kernels are written once against `vf`, a GCC/Clang vector of DL_VL floats, and end
// with a scalar tail loop. DL_VL follows the flags the translation unit is compiled with (binding.gyp builds
// csrc/kernels/ once per level): 16 with AVX-512, 8 with AVX2+FMA, 4 with NEON or WASM SIMD, else 1 (plain scalar
// code through the same source). Only things vector extensions cannot say live here as small helpers.
//
// Idioms (PERFORMANCE.md §4.3): broadcast as `s * v` so the compiler emits an FMA with an embedded broadcast;
// accumulators in local arrays with compile-time bounds; selects in the mask form, never `(vf){} + s` (it turns
// -0 into +0).

#ifndef DL_SIMD_H
#define DL_SIMD_H

#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define DL_VL 16
#elif defined(__AVX2__) && defined(__FMA__)
#define DL_VL 8
#elif defined(__ARM_NEON) || defined(__wasm_simd128__)
#define DL_VL 4
#else
#define DL_VL 1
#endif

typedef float vf __attribute__((vector_size(DL_VL * 4)));
typedef int32_t vi __attribute__((vector_size(DL_VL * 4)));
typedef double vd __attribute__((vector_size(DL_VL * 8)));
// The same vectors with 4-byte alignment: loads and stores through these never assume 64-byte alignment
// (TypedArray storage is not aligned that far).
typedef float vf_u __attribute__((vector_size(DL_VL * 4), aligned(4)));
typedef int32_t vi_u __attribute__((vector_size(DL_VL * 4), aligned(4)));

// Vector arguments of static inline helpers never cross an ABI boundary, so the psABI notes do not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

#define DL_INLINE static inline __attribute__((always_inline))

DL_INLINE vf vf_load(const float *p) { return *(const vf_u *)p; }
DL_INLINE void vf_store(float *p, vf v) { *(vf_u *)p = v; }
DL_INLINE vf vf_zero(void) { return (vf){0}; }
/** Every lane = s (s - 0 is exact for every s, -0 included). */
DL_INLINE vf vf_splat(float s) { return s - (vf){0}; }
DL_INLINE vf vf_and(vf v, vi mask) { return (vf)((vi)v & mask); }
DL_INLINE vi vi_splat(int32_t s) { return s - (vi){0}; }
DL_INLINE vf vf_select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/** max(v, 0) with NaN kept: lanes that are > 0 or NaN pass, the rest (including -0) become +0. */
DL_INLINE vf vf_relu(vf v) { return vf_and(v, (v > 0) | (v != v)); }
/** PyTorch's max step: take v when v > best or v is NaN. */
DL_INLINE vf vf_max_nan(vf best, vf v) { return vf_select((v > best) | (v != v), v, best); }

/** Lanes [0, n) from p, 0 in the others; never touches p[n..VL) (masked load where the ISA has one). 0 <= n <= VL. */
DL_INLINE vf vf_load_n(const float *p, int n) {
#if DL_VL == 16
  return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
  vf v = vf_zero();
  for (int l = 0; l < n; l++) v[l] = p[l];
  return v;
#endif
}

/** Store lanes [0, n) of v to p; p[n..VL) is not touched. 0 <= n <= VL. */
DL_INLINE void vf_store_n(float *p, vf v, int n) {
#if DL_VL == 16
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
  for (int l = 0; l < n; l++) p[l] = v[l];
#endif
}

/** Bit l set when lane l of the comparison mask m is true (m lanes are 0 or -1). */
DL_INLINE uint32_t vi_bits(vi m) {
#if DL_VL == 16
  return (uint32_t)_mm512_test_epi32_mask((__m512i)m, (__m512i)m);
#elif DL_VL == 8 && defined(__AVX2__)
  return (uint32_t)_mm256_movemask_ps((__m256)m);
#else
  uint32_t b = 0;
  for (int l = 0; l < DL_VL; l++) b |= (uint32_t)(m[l] != 0) << l;
  return b;
#endif
}
#define DL_ALL_LANES ((uint32_t)((1ull << DL_VL) - 1))

DL_INLINE float vf_hsum(vf v) {
  float s = 0;
  for (int l = 0; l < DL_VL; l++) s += v[l];
  return s;
}

DL_INLINE vd vf_to_vd(vf v) { return __builtin_convertvector(v, vd); }

DL_INLINE double vd_hsum(const vd *v) {
  double s = 0;
  for (int l = 0; l < DL_VL; l++) s += (*v)[l];
  return s;
}

/** Lanes 0, 2, 4, ... of the 2*DL_VL floats a:b (de-interleave for stride-2 reads). */
DL_INLINE vf vf_even(vf a, vf b) {
#if DL_VL == 1
  (void)b;
  return a;
#elif defined(__clang__)
#if DL_VL == 4
  return __builtin_shufflevector(a, b, 0, 2, 4, 6);
#elif DL_VL == 8
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#else
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#endif
#else
  vi idx;
  for (int l = 0; l < DL_VL; l++) idx[l] = 2 * l;
  return __builtin_shuffle(a, b, idx);
#endif
}

/** Lanes 0..VL/2-1 of a and b interleaved: a0 b0 a1 b1 ... (zip_hi: the upper halves). */
#if DL_VL == 1
DL_INLINE vf vf_zip_lo(vf a, vf b) { (void)b; return a; }
DL_INLINE vf vf_zip_hi(vf a, vf b) { (void)a; return b; }
#elif defined(__clang__)
#if DL_VL == 4
DL_INLINE vf vf_zip_lo(vf a, vf b) { return __builtin_shufflevector(a, b, 0, 4, 1, 5); }
DL_INLINE vf vf_zip_hi(vf a, vf b) { return __builtin_shufflevector(a, b, 2, 6, 3, 7); }
#elif DL_VL == 8
DL_INLINE vf vf_zip_lo(vf a, vf b) { return __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11); }
DL_INLINE vf vf_zip_hi(vf a, vf b) { return __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15); }
#else
DL_INLINE vf vf_zip_lo(vf a, vf b) {
  return __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
DL_INLINE vf vf_zip_hi(vf a, vf b) {
  return __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
#endif
#else
DL_INLINE vf vf_zip_lo(vf a, vf b) {
  vi idx;
  for (int l = 0; l < DL_VL; l++) idx[l] = (l >> 1) + (l & 1) * DL_VL;
  return __builtin_shuffle(a, b, idx);
}
DL_INLINE vf vf_zip_hi(vf a, vf b) {
  vi idx;
  for (int l = 0; l < DL_VL; l++) idx[l] = DL_VL / 2 + (l >> 1) + (l & 1) * DL_VL;
  return __builtin_shuffle(a, b, idx);
}
#endif

/**
 * Transpose the DL_VL x DL_VL block r[0..VL) in place (r[i][l] <-> r[l][i]): log2(VL) rounds of zipping row i
 * with row i + VL/2 (each round is a perfect shuffle of the rows; VL of them transpose the block).
 */
DL_INLINE void vf_transpose(vf *r) {
#if DL_VL > 1
  for (int round = 1; round < DL_VL; round <<= 1) {
    vf t[DL_VL];
#pragma GCC unroll 16
    for (int i = 0; i < DL_VL / 2; i++) {
      t[2 * i] = vf_zip_lo(r[i], r[i + DL_VL / 2]);
      t[2 * i + 1] = vf_zip_hi(r[i], r[i + DL_VL / 2]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < DL_VL; i++) r[i] = t[i];
  }
#else
  (void)r;
#endif
}

#endif  // DL_SIMD_H

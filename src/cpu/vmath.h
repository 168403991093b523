/* Branch-free float32 exp, expm1, tanh and sigmoid that the compiler can
   vectorise (libm's are scalar calls). Range reduction x = n ln2 + r with
   ln2 split in two (Cody-Waite), |r| <= ln2/2, and the Taylor series of
   expm1(r) to r^7, whose truncation stays under half an ulp. Errors are a
   few ulp; float64 code uses libm instead. */
#ifndef EBL_CPU_VMATH_H
#define EBL_CPU_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^n for integral n in -126..127, built from exponent bits. */
static inline float ebl_pow2f(float n) {
  int32_t bits = ((int32_t)n + 127) << 23;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* Splits x into n ln2 + r; returns r and stores 2^n in *scale. */
static inline float ebl_reducef(float x, float *scale) {
  const float shifter = 12582912.0f;   /* 1.5 * 2^23: rounds to integer */
  x = fminf(fmaxf(x, -87.0f), 88.0f);
  float n = (x * 1.44269504f + shifter) - shifter;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  *scale = ebl_pow2f(n);
  return r;
}

/* expm1(r) for |r| <= ln2/2. */
static inline float ebl_expm1_smallf(float r) {
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  return r + r * r * p;
}

/* exp(x); inputs are clamped to [-87, 88] (no inf, no denormals). */
static inline float ebl_expf(float x) {
  float scale;
  float p = ebl_expm1_smallf(ebl_reducef(x, &scale));
  return scale * p + scale;
}

/* expm1(x), accurate near 0 where n = 0 and the series is used as is. */
static inline float ebl_expm1f(float x) {
  float scale;
  float p = ebl_expm1_smallf(ebl_reducef(x, &scale));
  return scale * p + (scale - 1.0f);
}

/* tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), sign of x restored. */
static inline float ebl_tanhf(float x) {
  float e = ebl_expm1f(-2.0f * fabsf(x));
  return copysignf(-e / (2.0f + e), x);
}

/* 1 / (1 + exp(-x)). */
static inline float ebl_sigmoidf(float x) {
  return 1.0f / (1.0f + ebl_expf(-x));
}

#endif

/* float32 exp, expm1, tanh and sigmoid on vectors of 4 lanes (GCC vector
   extensions, lowered to whatever SIMD the target has), since libm's are
   scalar calls and GCC does not vectorise the clamps these need. Range
   reduction x = n ln2 + r with ln2 split in two (Cody-Waite), |r| <=
   ln2/2, and the Taylor series of expm1(r) to r^7, whose truncation stays
   under half an ulp: errors are one or two ulp. Inputs are clamped to
   [-87, 88] (no overflow, no denormals); NaN stays NaN. A single value
   goes through the same vector code, so results never depend on where an
   element sits. float64 code uses libm instead. */
#ifndef EBL_CPU_VMATH_H
#define EBL_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

/* 8 lanes are two SSE registers on a baseline x86-64 build and one AVX
   register where the kernels are cloned for AVX2; GCC warns that such
   vectors change the calling convention, which cannot matter here: the
   functions are static and inlined. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Inlined always: the kernels hand these to macros, never call them. */
#define EBL_V8_FN static inline __attribute__((always_inline))

typedef float ebl_v8f __attribute__((vector_size(32)));
typedef int32_t ebl_v8i __attribute__((vector_size(32)));

/* Lanes of a where mask m is set (all ones), else lanes of b. */
EBL_V8_FN ebl_v8f ebl_v8_select(ebl_v8i m, ebl_v8f a, ebl_v8f b) {
  return (ebl_v8f)((m & (ebl_v8i)a) | (~m & (ebl_v8i)b));
}

/* A vector with every lane c. */
EBL_V8_FN ebl_v8f ebl_v8_splat(float c) {
  ebl_v8f v = {c, c, c, c, c, c, c, c};
  return v;
}

EBL_V8_FN ebl_v8f ebl_v8_abs(ebl_v8f x) {
  return (ebl_v8f)((ebl_v8i)x & 0x7fffffff);
}

/* Splits x into n ln2 + r; returns r and stores 2^n in *scale. */
EBL_V8_FN ebl_v8f ebl_v8_reduce(ebl_v8f x, ebl_v8f *scale) {
  const float shifter = 12582912.0f;   /* 1.5 * 2^23: rounds to integer */
  x = ebl_v8_select(x < -87.0f, ebl_v8_splat(-87.0f), x);
  x = ebl_v8_select(x > 88.0f, ebl_v8_splat(88.0f), x);
  ebl_v8f n = (x * 1.44269504f + shifter) - shifter;
  ebl_v8f r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  ebl_v8i bits = (__builtin_convertvector(n, ebl_v8i) + 127) << 23;
  *scale = (ebl_v8f)bits;
  return r;
}

/* expm1(r) for |r| <= ln2/2. */
EBL_V8_FN ebl_v8f ebl_v8_expm1_small(ebl_v8f r) {
  ebl_v8f p = ebl_v8_splat(1.0f / 5040);
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  return r + r * r * p;
}

EBL_V8_FN ebl_v8f ebl_v8_exp(ebl_v8f x) {
  ebl_v8f scale;
  ebl_v8f p = ebl_v8_expm1_small(ebl_v8_reduce(x, &scale));
  return scale * p + scale;
}

/* expm1(x): near 0, n = 0 and the series is used as is. */
EBL_V8_FN ebl_v8f ebl_v8_expm1(ebl_v8f x) {
  ebl_v8f scale;
  ebl_v8f p = ebl_v8_expm1_small(ebl_v8_reduce(x, &scale));
  return scale * p + (scale - 1.0f);
}

/* tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), sign of x restored. */
EBL_V8_FN ebl_v8f ebl_v8_tanh(ebl_v8f x) {
  ebl_v8f e = ebl_v8_expm1(-2.0f * ebl_v8_abs(x));
  ebl_v8f t = -e / (2.0f + e);
  return (ebl_v8f)((ebl_v8i)t | ((ebl_v8i)x & (int32_t)0x80000000));
}

EBL_V8_FN ebl_v8f ebl_v8_sigmoid(ebl_v8f x) {
  return 1.0f / (1.0f + ebl_v8_exp(-x));
}

/* sech^2 x = 4e / (1 + e)^2, e = exp(-2|x|): no cancellation. */
EBL_V8_FN ebl_v8f ebl_v8_tanh_grad(ebl_v8f x) {
  ebl_v8f e = ebl_v8_exp(-2.0f * ebl_v8_abs(x));
  return 4.0f * e / ((1.0f + e) * (1.0f + e));
}

/* s(x) (1 - s(x)) = e / (1 + e)^2, e = exp(-|x|). */
EBL_V8_FN ebl_v8f ebl_v8_sigmoid_grad(ebl_v8f x) {
  ebl_v8f e = ebl_v8_exp(-ebl_v8_abs(x));
  return e / ((1.0f + e) * (1.0f + e));
}

/* Applies vector function FN to n dense floats; the tail goes through a
   padded vector, so every element sees the same arithmetic. A macro, so
   that FN is inlined. */
#define EBL_V8_MAP(FN, n, o, in)                                       \
  do {                                                                 \
    int64_t i_ = 0;                                                    \
    for (; i_ + 8 <= (n); i_ += 8) {                                   \
      ebl_v8f v_;                                                      \
      memcpy(&v_, (in) + i_, sizeof v_);                               \
      v_ = FN(v_);                                                     \
      memcpy((o) + i_, &v_, sizeof v_);                                \
    }                                                                  \
    if (i_ < (n)) {                                                    \
      ebl_v8f v_ = ebl_v8_splat(0.0f);                                 \
      memcpy(&v_, (in) + i_, sizeof(float) * (size_t)((n) - i_));      \
      v_ = FN(v_);                                                     \
      memcpy((o) + i_, &v_, sizeof(float) * (size_t)((n) - i_));       \
    }                                                                  \
  } while (0)

/* One value through a vector function. */
#define EBL_V8_ONE(FN, x) (FN(ebl_v8_splat(x))[0])

static inline float ebl_expf(float x) { return EBL_V8_ONE(ebl_v8_exp, x); }

#endif

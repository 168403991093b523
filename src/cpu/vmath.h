/* float32 exp, expm1, tanh and sigmoid on vectors of 8 lanes (GCC vector
   extensions: two SSE registers on a baseline x86-64 build, one AVX
   register where the kernels are cloned for AVX2), since libm's are
   scalar calls and GCC does not vectorise the clamps these need. Range
   reduction x = n ln2 + r with ln2 split in two (Cody-Waite), |r| <=
   ln2/2, and the Taylor series of expm1(r) to r^7, whose truncation stays
   under half an ulp: errors are one or two ulp. Inputs are clamped to
   [-87, 88] (no overflow, no denormals); NaN stays NaN. A single value
   goes through the same vector code, so results never depend on where an
   element sits. float64 code uses libm instead.
   The functions work in place through pointers: passing 32-byte vectors
   by value makes GCC comment on the calling convention of AVX. */
#ifndef EBL_CPU_VMATH_H
#define EBL_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

#define EBL_V8_FN static inline __attribute__((always_inline)) void

typedef float ebl_v8f __attribute__((vector_size(32)));
typedef int32_t ebl_v8i __attribute__((vector_size(32)));

/* A vector with every lane c. */
#define EBL_V8_SPLAT(c) ((ebl_v8f){c, c, c, c, c, c, c, c})
/* Lanes of a where mask m is set (all ones), else lanes of b. */
#define EBL_V8_SELECT(m, a, b)                                         \
  ((ebl_v8f)(((m) & (ebl_v8i)(a)) | (~(m) & (ebl_v8i)(b))))
/* |x| lane by lane. */
#define EBL_V8_ABS(x) ((ebl_v8f)((ebl_v8i)(x) & 0x7fffffff))

/* Splits *x into n ln2 + *r; stores 2^n in *scale. */
EBL_V8_FN ebl_v8_reduce(const ebl_v8f *x, ebl_v8f *r, ebl_v8f *scale) {
  const float shifter = 12582912.0f;   /* 1.5 * 2^23: rounds to integer */
  ebl_v8f c = EBL_V8_SELECT(*x < -87.0f, EBL_V8_SPLAT(-87.0f), *x);
  c = EBL_V8_SELECT(c > 88.0f, EBL_V8_SPLAT(88.0f), c);
  ebl_v8f n = (c * 1.44269504f + shifter) - shifter;
  *r = c - n * 0.693359375f;
  *r = *r - n * -2.12194440e-4f;
  ebl_v8i bits = (__builtin_convertvector(n, ebl_v8i) + 127) << 23;
  *scale = (ebl_v8f)bits;
}

/* *r = expm1(*r) for |r| <= ln2/2. */
EBL_V8_FN ebl_v8_expm1_small(ebl_v8f *r) {
  ebl_v8f p = EBL_V8_SPLAT(1.0f / 5040);
  p = p * *r + 1.0f / 720;
  p = p * *r + 1.0f / 120;
  p = p * *r + 1.0f / 24;
  p = p * *r + 1.0f / 6;
  p = p * *r + 0.5f;
  *r = *r + *r * *r * p;
}

/* *v = exp(*v). */
EBL_V8_FN ebl_v8_exp(ebl_v8f *v) {
  ebl_v8f r, scale;
  ebl_v8_reduce(v, &r, &scale);
  ebl_v8_expm1_small(&r);
  *v = scale * r + scale;
}

/* *v = expm1(*v): near 0, n = 0 and the series is used as is. */
EBL_V8_FN ebl_v8_expm1(ebl_v8f *v) {
  ebl_v8f r, scale;
  ebl_v8_reduce(v, &r, &scale);
  ebl_v8_expm1_small(&r);
  *v = scale * r + (scale - 1.0f);
}

/* tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)), sign of x restored. */
EBL_V8_FN ebl_v8_tanh(ebl_v8f *v) {
  ebl_v8f e = -2.0f * EBL_V8_ABS(*v);
  ebl_v8_expm1(&e);
  ebl_v8f t = -e / (2.0f + e);
  *v = (ebl_v8f)((ebl_v8i)t | ((ebl_v8i)*v & (int32_t)0x80000000));
}

/* 1 / (1 + exp(-x)). */
EBL_V8_FN ebl_v8_sigmoid(ebl_v8f *v) {
  ebl_v8f e = -*v;
  ebl_v8_exp(&e);
  *v = 1.0f / (1.0f + e);
}

/* sech^2 x = 4e / (1 + e)^2, e = exp(-2|x|): no cancellation. */
EBL_V8_FN ebl_v8_tanh_grad(ebl_v8f *v) {
  ebl_v8f e = -2.0f * EBL_V8_ABS(*v);
  ebl_v8_exp(&e);
  *v = 4.0f * e / ((1.0f + e) * (1.0f + e));
}

/* s(x) (1 - s(x)) = e / (1 + e)^2, e = exp(-|x|). */
EBL_V8_FN ebl_v8_sigmoid_grad(ebl_v8f *v) {
  ebl_v8f e = -EBL_V8_ABS(*v);
  ebl_v8_exp(&e);
  *v = e / ((1.0f + e) * (1.0f + e));
}

/* Applies in-place vector function FN to n dense floats; the tail goes
   through a padded vector, so every element sees the same arithmetic.
   A macro, so that FN is inlined. */
#define EBL_V8_MAP(FN, n, o, in)                                       \
  do {                                                                 \
    int64_t i_ = 0;                                                    \
    for (; i_ + 8 <= (n); i_ += 8) {                                   \
      ebl_v8f v_;                                                      \
      memcpy(&v_, (in) + i_, sizeof v_);                               \
      FN(&v_);                                                         \
      memcpy((o) + i_, &v_, sizeof v_);                                \
    }                                                                  \
    if (i_ < (n)) {                                                    \
      ebl_v8f v_ = EBL_V8_SPLAT(0.0f);                                 \
      memcpy(&v_, (in) + i_, sizeof(float) * (size_t)((n) - i_));      \
      FN(&v_);                                                         \
      memcpy((o) + i_, &v_, sizeof(float) * (size_t)((n) - i_));       \
    }                                                                  \
  } while (0)

/* One value through in-place vector function FN (inlined in the caller,
   so it shares the caller's instruction set). */
#define EBL_V8_ONE(FN, x)                                              \
  __extension__({                                                      \
    ebl_v8f v1_ = EBL_V8_SPLAT(x);                                     \
    FN(&v1_);                                                          \
    v1_[0];                                                            \
  })

/* exp of one float through the vector code. */
static inline float ebl_expf(float x) {
  ebl_v8f v = EBL_V8_SPLAT(x);
  ebl_v8_exp(&v);
  return v[0];
}

#endif

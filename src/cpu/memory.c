/* CPU memory: aligned blocks, copies with dtype casts, fills. Casts from
   float to integer saturate (NaN gives 0) instead of wrapping. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/iter.h"

void *ebl_cpu_alloc(size_t nbytes) {
  size_t rounded = (nbytes + 63) / 64 * 64;
  return aligned_alloc(64, rounded ? rounded : 64);
}

void ebl_cpu_free(void *data) { free(data); }

ebl_status ebl_cpu_to_host(void *host, const void *data, size_t nbytes) {
  if (nbytes) memcpy(host, data, nbytes);
  return EBL_OK;
}

ebl_status ebl_cpu_from_host(void *data, const void *host, size_t nbytes) {
  if (nbytes) memcpy(data, host, nbytes);
  return EBL_OK;
}

/* ---- casts of one value */

static inline int32_t to_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}

static inline uint8_t to_u8(double x) {
  if (x != x || x <= 0) return 0;
  return x >= 255.0 ? 255 : (uint8_t)x;
}

#define CAST_f32(x) ((float)(x))
#define CAST_f64(x) ((double)(x))
#define CAST_i32(x) to_i32((double)(x))
#define CAST_u8(x) to_u8((double)(x))
/* Integer to integer: i32 -> u8 saturates too; the rest are exact. */
#define CAST_i32_from_int(x) ((int32_t)(x))

#define COPY_LOOP(NAME, TD, TS, CAST)                                  \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    TD *o = (TD *)p[0];                                                \
    const TS *in = (const TS *)p[1];                                   \
    (void)ctx;                                                         \
    if (s[0] == sizeof(TD) && s[1] == sizeof(TS)) {                    \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) o[i] = CAST(in[i]);              \
    } else {                                                           \
      int64_t so = s[0] / (int64_t)sizeof(TD);                         \
      int64_t si = s[1] / (int64_t)sizeof(TS);                         \
      for (int64_t i = 0; i < n; i++) o[i * so] = CAST(in[i * si]);    \
    }                                                                  \
  }

/* Same dtype: memcpy for dense runs. */
#define SAME_LOOP(NAME, T)                                             \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    (void)ctx;                                                         \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                      \
      memcpy(p[0], p[1], (size_t)n * sizeof(T));                       \
    } else {                                                           \
      T *o = (T *)p[0];                                                \
      const T *in = (const T *)p[1];                                   \
      int64_t so = s[0] / (int64_t)sizeof(T);                          \
      int64_t si = s[1] / (int64_t)sizeof(T);                          \
      for (int64_t i = 0; i < n; i++) o[i * so] = in[i * si];          \
    }                                                                  \
  }

SAME_LOOP(f32_f32, float)
SAME_LOOP(f64_f64, double)
SAME_LOOP(i32_i32, int32_t)
SAME_LOOP(u8_u8, uint8_t)
COPY_LOOP(f32_f64, float, double, CAST_f32)
COPY_LOOP(f32_i32, float, int32_t, CAST_f32)
COPY_LOOP(f32_u8, float, uint8_t, CAST_f32)
COPY_LOOP(f64_f32, double, float, CAST_f64)
COPY_LOOP(f64_i32, double, int32_t, CAST_f64)
COPY_LOOP(f64_u8, double, uint8_t, CAST_f64)
COPY_LOOP(i32_f32, int32_t, float, CAST_i32)
COPY_LOOP(i32_f64, int32_t, double, CAST_i32)
COPY_LOOP(i32_u8, int32_t, uint8_t, CAST_i32_from_int)
COPY_LOOP(u8_f32, uint8_t, float, CAST_u8)
COPY_LOOP(u8_f64, uint8_t, double, CAST_u8)
COPY_LOOP(u8_i32, uint8_t, int32_t, CAST_u8)

/* copy_loops[dst][src]. */
static const ebl_loop_fn copy_loops[EBL_NDTYPES][EBL_NDTYPES] = {
  {f32_f32, f32_f64, f32_i32, f32_u8},
  {f64_f32, f64_f64, f64_i32, f64_u8},
  {i32_f32, i32_f64, i32_i32, i32_u8},
  {u8_f32, u8_f64, u8_i32, u8_u8},
};

ebl_status ebl_cpu_copy(const ebl_tensor *dst, const ebl_tensor *src) {
  ebl_iter it;
  const ebl_tensor *ops[2] = {dst, src};
  ebl_iter_init(&it, 2, ops);
  return ebl_iter_run(&it, copy_loops[dst->dtype][src->dtype], NULL, 1);
}

ebl_status ebl_cpu_fill(const ebl_tensor *out, double value) {
  ebl_storage host;
  ebl_tensor scalar;
  ebl_tensor_wrap(&scalar, &host, &value, EBL_F64, 0, NULL);
  scalar.ndim = out->ndim;
  for (int d = 0; d < out->ndim; d++) {
    scalar.shape[d] = out->shape[d];
    scalar.stride[d] = 0;
  }
  return ebl_cpu_copy(out, &scalar);
}

/* out[i] = start + i * step, computed in double, cast per element. */
ebl_status ebl_cpu_affine(const ebl_tensor *out, double start,
                          double step) {
  char *base = ebl_tensor_data(out);
  int64_t size = (int64_t)ebl_dtype_size(out->dtype);
  int64_t stride = out->stride[0] * size;
  for (int64_t i = 0; i < out->shape[0]; i++) {
    double v = start + (double)i * step;
    char *at = base + i * stride;
    switch (out->dtype) {
    case EBL_F32: *(float *)at = (float)v; break;
    case EBL_F64: *(double *)at = v; break;
    case EBL_I32: *(int32_t *)at = to_i32(v); break;
    default: *(uint8_t *)at = to_u8(v); break;
    }
  }
  return EBL_OK;
}

/* CPU elementwise kernels: unary ops and activations with their
   derivatives, binary ops and comparisons, where, axpby. Each kernel is a
   1-D loop with a dense fast path (vectorised with omp simd; out may be
   the very same array as an input, which carries no dependence between
   iterations) and a strided path; src/cpu/iter.c drives them over N-d
   views and threads. */
#include <math.h>
#include <stdint.h>

#include "cpu/cpu.h"
#include "cpu/iter.h"
#include "cpu/vmath.h"

typedef struct scalar_params { double p0, p1; } scalar_params;

/* ---- unary kernels: EXPR of x (and parameters p0, p1) */

#define UNARY_LOOP(NAME, T, EXPR)                                      \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    const T p0 = (T)((const scalar_params *)ctx)->p0;                  \
    const T p1 = (T)((const scalar_params *)ctx)->p1;                  \
    T *o = (T *)p[0];                                                  \
    const T *in = (const T *)p[1];                                     \
    (void)p0;                                                          \
    (void)p1;                                                          \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                      \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) {                                \
        T x = in[i];                                                   \
        o[i] = (EXPR);                                                 \
      }                                                                \
    } else {                                                           \
      int64_t so = s[0] / (int64_t)sizeof(T);                          \
      int64_t si = s[1] / (int64_t)sizeof(T);                          \
      for (int64_t i = 0; i < n; i++) {                                \
        T x = in[i * si];                                              \
        o[i * so] = (EXPR);                                            \
      }                                                                \
    }                                                                  \
  }

/* float32 kernels on 4-lane vectors (src/cpu/vmath.h); strided
   elements go one at a time through the same vector code. */
#define VECTOR_LOOP(NAME, VFN)                                         \
  __attribute__((target_clones("arch=x86-64-v3", "default")))            \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    float *o = (float *)p[0];                                          \
    const float *in = (const float *)p[1];                             \
    (void)ctx;                                                         \
    if (s[0] == sizeof(float) && s[1] == sizeof(float)) {              \
      EBL_V8_MAP(VFN, n, o, in);                                       \
    } else {                                                           \
      int64_t so = s[0] / (int64_t)sizeof(float);                      \
      int64_t si = s[1] / (int64_t)sizeof(float);                      \
      for (int64_t i = 0; i < n; i++)                                  \
        o[i * so] = EBL_V8_ONE(VFN, in[i * si]);                       \
    }                                                                  \
  }

/* sech^2 x = 4e / (1 + e)^2 with e = exp(-2|x|): no cancellation. */
#define TANH_GRAD(E) (4 * (E) / ((1 + (E)) * (1 + (E))))
/* s(x) (1 - s(x)) = e / (1 + e)^2 with e = exp(-|x|). */
#define SIGMOID_GRAD(E) ((E) / ((1 + (E)) * (1 + (E))))

UNARY_LOOP(neg_f32, float, -x)
UNARY_LOOP(abs_f32, float, fabsf(x))
UNARY_LOOP(square_f32, float, x * x)
UNARY_LOOP(sign_f32, float, (float)((x > 0) - (x < 0)))
VECTOR_LOOP(exp_f32, ebl_v8_exp)
UNARY_LOOP(log_f32, float, logf(x))
UNARY_LOOP(sqrt_f32, float, sqrtf(x))
UNARY_LOOP(recip_f32, float, 1.0f / x)
UNARY_LOOP(clamp_f32, float, x < p0 ? p0 : (x > p1 ? p1 : x))
VECTOR_LOOP(tanh_f32, ebl_v8_tanh)
VECTOR_LOOP(sigmoid_f32, ebl_v8_sigmoid)
UNARY_LOOP(relu_f32, float, x < 0 ? 0.0f : x)
UNARY_LOOP(leaky_f32, float, x > 0 ? x : p0 * x)
UNARY_LOOP(gelu_f32, float, 0.5f * x * erfcf(-x * (float)M_SQRT1_2))
UNARY_LOOP(softplus_f32, float, fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))))
VECTOR_LOOP(tanh_grad_f32, ebl_v8_tanh_grad)
VECTOR_LOOP(sigmoid_grad_f32, ebl_v8_sigmoid_grad)
UNARY_LOOP(relu_grad_f32, float, x > 0 ? 1.0f : 0.0f)
UNARY_LOOP(leaky_grad_f32, float, x > 0 ? 1.0f : p0)
UNARY_LOOP(gelu_grad_f32, float,
           0.5f * erfcf(-x * (float)M_SQRT1_2) +
           x * expf(-0.5f * x * x) * (float)(0.5 * M_2_SQRTPI * M_SQRT1_2))
VECTOR_LOOP(softplus_grad_f32, ebl_v8_sigmoid)

UNARY_LOOP(neg_f64, double, -x)
UNARY_LOOP(abs_f64, double, fabs(x))
UNARY_LOOP(square_f64, double, x * x)
UNARY_LOOP(sign_f64, double, (double)((x > 0) - (x < 0)))
UNARY_LOOP(exp_f64, double, exp(x))
UNARY_LOOP(log_f64, double, log(x))
UNARY_LOOP(sqrt_f64, double, sqrt(x))
UNARY_LOOP(recip_f64, double, 1.0 / x)
UNARY_LOOP(clamp_f64, double, x < p0 ? p0 : (x > p1 ? p1 : x))
UNARY_LOOP(tanh_f64, double, tanh(x))
UNARY_LOOP(sigmoid_f64, double, 1.0 / (1.0 + exp(-x)))
UNARY_LOOP(relu_f64, double, x < 0 ? 0.0 : x)
UNARY_LOOP(leaky_f64, double, x > 0 ? x : p0 * x)
UNARY_LOOP(gelu_f64, double, 0.5 * x * erfc(-x * M_SQRT1_2))
UNARY_LOOP(softplus_f64, double, fmax(x, 0.0) + log1p(exp(-fabs(x))))
UNARY_LOOP(tanh_grad_f64, double, TANH_GRAD(exp(-2.0 * fabs(x))))
UNARY_LOOP(sigmoid_grad_f64, double, SIGMOID_GRAD(exp(-fabs(x))))
UNARY_LOOP(relu_grad_f64, double, x > 0 ? 1.0 : 0.0)
UNARY_LOOP(leaky_grad_f64, double, x > 0 ? 1.0 : p0)
UNARY_LOOP(gelu_grad_f64, double,
           0.5 * erfc(-x * M_SQRT1_2) +
           x * exp(-0.5 * x * x) * (0.5 * M_2_SQRTPI * M_SQRT1_2))
UNARY_LOOP(softplus_grad_f64, double, 1.0 / (1.0 + exp(-x)))

/* Integers: negation and abs wrap like unsigned arithmetic. */
UNARY_LOOP(neg_i32, int32_t, (int32_t)(0u - (uint32_t)x))
UNARY_LOOP(abs_i32, int32_t, x < 0 ? (int32_t)(0u - (uint32_t)x) : x)
UNARY_LOOP(clamp_i32, int32_t, x < p0 ? p0 : (x > p1 ? p1 : x))
UNARY_LOOP(relu_i32, int32_t, x < 0 ? 0 : x)
UNARY_LOOP(neg_u8, uint8_t, (uint8_t)(0u - x))
UNARY_LOOP(abs_u8, uint8_t, x)
UNARY_LOOP(clamp_u8, uint8_t, x < p0 ? p0 : (x > p1 ? p1 : x))
UNARY_LOOP(relu_u8, uint8_t, x)

/* Kernels by op and dtype (F32, F64, I32, U8); NULL: not defined. */
static const ebl_loop_fn unary_loops[EBL_NUNARY][EBL_NDTYPES] = {
  [EBL_NEG] = {neg_f32, neg_f64, neg_i32, neg_u8},
  [EBL_ABS] = {abs_f32, abs_f64, abs_i32, abs_u8},
  [EBL_SQUARE] = {square_f32, square_f64, NULL, NULL},
  [EBL_SIGN] = {sign_f32, sign_f64, NULL, NULL},
  [EBL_EXP] = {exp_f32, exp_f64, NULL, NULL},
  [EBL_LOG] = {log_f32, log_f64, NULL, NULL},
  [EBL_SQRT] = {sqrt_f32, sqrt_f64, NULL, NULL},
  [EBL_RECIPROCAL] = {recip_f32, recip_f64, NULL, NULL},
  [EBL_CLAMP] = {clamp_f32, clamp_f64, clamp_i32, clamp_u8},
  [EBL_TANH] = {tanh_f32, tanh_f64, NULL, NULL},
  [EBL_SIGMOID] = {sigmoid_f32, sigmoid_f64, NULL, NULL},
  [EBL_RELU] = {relu_f32, relu_f64, relu_i32, relu_u8},
  [EBL_LEAKY_RELU] = {leaky_f32, leaky_f64, NULL, NULL},
  [EBL_GELU] = {gelu_f32, gelu_f64, NULL, NULL},
  [EBL_SOFTPLUS] = {softplus_f32, softplus_f64, NULL, NULL},
  [EBL_TANH_GRAD] = {tanh_grad_f32, tanh_grad_f64, NULL, NULL},
  [EBL_SIGMOID_GRAD] = {sigmoid_grad_f32, sigmoid_grad_f64, NULL, NULL},
  [EBL_RELU_GRAD] = {relu_grad_f32, relu_grad_f64, NULL, NULL},
  [EBL_LEAKY_RELU_GRAD] = {leaky_grad_f32, leaky_grad_f64, NULL, NULL},
  [EBL_GELU_GRAD] = {gelu_grad_f32, gelu_grad_f64, NULL, NULL},
  [EBL_SOFTPLUS_GRAD] = {softplus_grad_f32, softplus_grad_f64, NULL, NULL},
};

/* Relative cost of an element, which sets when threads pay off. */
static int unary_cost(ebl_unary_op op) {
  switch (op) {
  case EBL_NEG: case EBL_ABS: case EBL_SQUARE: case EBL_SIGN:
  case EBL_CLAMP: case EBL_RELU: case EBL_LEAKY_RELU: case EBL_RELU_GRAD:
  case EBL_LEAKY_RELU_GRAD: case EBL_RECIPROCAL:
    return 1;
  default:
    return 8;
  }
}

int ebl_cpu_unary_defined(ebl_unary_op op, ebl_dtype dtype) {
  return (unsigned)op < EBL_NUNARY && (unsigned)dtype < EBL_NDTYPES &&
         unary_loops[op][dtype] != NULL;
}

/* Integer clamp bounds cast safely into the dtype's range. */
static void int_bounds(ebl_dtype dtype, scalar_params *pr) {
  double lo = dtype == EBL_U8 ? 0.0 : -2147483648.0;
  double hi = dtype == EBL_U8 ? 255.0 : 2147483647.0;
  pr->p0 = isnan(pr->p0) ? lo : fmin(fmax(ceil(pr->p0), lo), hi);
  pr->p1 = isnan(pr->p1) ? hi : fmin(fmax(floor(pr->p1), lo), hi);
}

ebl_status ebl_cpu_unary(ebl_unary_op op, const ebl_tensor *out,
                         const ebl_tensor *x, double p0, double p1) {
  ebl_iter it;
  const ebl_tensor *ops[2] = {out, x};
  scalar_params pr = {p0, p1};
  if (!ebl_cpu_unary_defined(op, x->dtype))
    return ebl_fail(EBL_EARG, "%s: not defined for %s tensors",
                    ebl_unary_name(op), ebl_dtype_name(x->dtype));
  if (!ebl_dtype_is_float(x->dtype)) int_bounds(x->dtype, &pr);
  ebl_iter_init(&it, 2, ops);
  return ebl_iter_run(&it, unary_loops[op][x->dtype], &pr, unary_cost(op));
}

/* ---- binary kernels: EXPR of x (from a) and y (from b) */

#define BINARY_LOOP(NAME, T, TO, EXPR)                                 \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    TO *o = (TO *)p[0];                                                \
    const T *a = (const T *)p[1], *b = (const T *)p[2];                \
    int dense_out = s[0] == sizeof(TO);                                \
    (void)ctx;                                                         \
    if (dense_out && s[1] == sizeof(T) && s[2] == sizeof(T)) {         \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) {                                \
        T x = a[i], y = b[i];                                          \
        o[i] = (TO)(EXPR);                                             \
      }                                                                \
    } else if (dense_out && s[1] == sizeof(T) && s[2] == 0) {          \
      const T y = b[0];                                                \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) {                                \
        T x = a[i];                                                    \
        o[i] = (TO)(EXPR);                                             \
      }                                                                \
    } else if (dense_out && s[1] == 0 && s[2] == sizeof(T)) {          \
      const T x = a[0];                                                \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) {                                \
        T y = b[i];                                                    \
        o[i] = (TO)(EXPR);                                             \
      }                                                                \
    } else {                                                           \
      int64_t so = s[0] / (int64_t)sizeof(TO);                         \
      int64_t sa = s[1] / (int64_t)sizeof(T);                          \
      int64_t sb = s[2] / (int64_t)sizeof(T);                          \
      for (int64_t i = 0; i < n; i++) {                                \
        T x = a[i * sa], y = b[i * sb];                                \
        o[i * so] = (TO)(EXPR);                                        \
      }                                                                \
    }                                                                  \
  }

/* NaN wins in maximum and minimum, as in numpy. */
#define MAX_EXPR ((x > y || x != x) ? x : y)
#define MIN_EXPR ((x < y || x != x) ? x : y)

/* Arithmetic and comparisons of one dtype, named op_suffix. */
#define BINARY_COMMON(SFX, T)                                          \
  BINARY_LOOP(max_##SFX, T, T, MAX_EXPR)                               \
  BINARY_LOOP(min_##SFX, T, T, MIN_EXPR)                               \
  BINARY_LOOP(eq_##SFX, T, uint8_t, x == y)                            \
  BINARY_LOOP(ne_##SFX, T, uint8_t, x != y)                            \
  BINARY_LOOP(lt_##SFX, T, uint8_t, x < y)                             \
  BINARY_LOOP(le_##SFX, T, uint8_t, x <= y)                            \
  BINARY_LOOP(gt_##SFX, T, uint8_t, x > y)                             \
  BINARY_LOOP(ge_##SFX, T, uint8_t, x >= y)

BINARY_COMMON(f32, float)
BINARY_COMMON(f64, double)
BINARY_COMMON(i32, int32_t)
BINARY_COMMON(u8, uint8_t)

BINARY_LOOP(add_f32, float, float, x + y)
BINARY_LOOP(sub_f32, float, float, x - y)
BINARY_LOOP(mul_f32, float, float, x * y)
BINARY_LOOP(div_f32, float, float, x / y)
BINARY_LOOP(pow_f32, float, float, powf(x, y))
BINARY_LOOP(add_f64, double, double, x + y)
BINARY_LOOP(sub_f64, double, double, x - y)
BINARY_LOOP(mul_f64, double, double, x * y)
BINARY_LOOP(div_f64, double, double, x / y)
BINARY_LOOP(pow_f64, double, double, pow(x, y))
/* Integer arithmetic wraps around (computed unsigned). */
BINARY_LOOP(add_i32, int32_t, int32_t, (uint32_t)x + (uint32_t)y)
BINARY_LOOP(sub_i32, int32_t, int32_t, (uint32_t)x - (uint32_t)y)
BINARY_LOOP(mul_i32, int32_t, int32_t, (uint32_t)x * (uint32_t)y)
BINARY_LOOP(add_u8, uint8_t, uint8_t, x + y)
BINARY_LOOP(sub_u8, uint8_t, uint8_t, x - y)
BINARY_LOOP(mul_u8, uint8_t, uint8_t, x * y)

#define ALL4(op) {op##_f32, op##_f64, op##_i32, op##_u8}

static const ebl_loop_fn binary_loops[EBL_NBINARY][EBL_NDTYPES] = {
  [EBL_ADD] = ALL4(add), [EBL_SUB] = ALL4(sub), [EBL_MUL] = ALL4(mul),
  [EBL_DIV] = {div_f32, div_f64, NULL, NULL},
  [EBL_POW] = {pow_f32, pow_f64, NULL, NULL},
  [EBL_MAXIMUM] = ALL4(max), [EBL_MINIMUM] = ALL4(min),
  [EBL_EQ] = ALL4(eq), [EBL_NE] = ALL4(ne), [EBL_LT] = ALL4(lt),
  [EBL_LE] = ALL4(le), [EBL_GT] = ALL4(gt), [EBL_GE] = ALL4(ge),
};

int ebl_cpu_binary_defined(ebl_binary_op op, ebl_dtype dtype) {
  return (unsigned)op < EBL_NBINARY && (unsigned)dtype < EBL_NDTYPES &&
         binary_loops[op][dtype] != NULL;
}

ebl_status ebl_cpu_binary(ebl_binary_op op, const ebl_tensor *out,
                          const ebl_tensor *a, const ebl_tensor *b) {
  ebl_iter it;
  const ebl_tensor *ops[3] = {out, a, b};
  if (!ebl_cpu_binary_defined(op, a->dtype))
    return ebl_fail(EBL_EARG, "%s: not defined for %s tensors",
                    ebl_binary_name(op), ebl_dtype_name(a->dtype));
  ebl_iter_init(&it, 3, ops);
  return ebl_iter_run(&it, binary_loops[op][a->dtype], NULL,
                      op == EBL_POW ? 8 : 1);
}

/* The scalar becomes a 0-dim tensor of a's dtype, broadcast with
   stride 0, so the same kernels serve. */
ebl_status ebl_cpu_binary_scalar(ebl_binary_op op, const ebl_tensor *out,
                                 const ebl_tensor *a, double s,
                                 int reversed) {
  double value64 = s;
  ebl_storage host64, host;
  ebl_tensor scalar, wide;
  union { float f; double d; int32_t i; uint8_t u; } cell;
  ebl_tensor_wrap(&scalar, &host64, &value64, EBL_F64, 0, NULL);
  ebl_tensor_wrap(&wide, &host, &cell, a->dtype, 0, NULL);
  EBL_TRY(ebl_cpu_copy(&wide, &scalar));
  wide.ndim = a->ndim;
  for (int d = 0; d < a->ndim; d++) {
    wide.shape[d] = a->shape[d];
    wide.stride[d] = 0;
  }
  return reversed ? ebl_cpu_binary(op, out, &wide, a)
                  : ebl_cpu_binary(op, out, a, &wide);
}

/* ---- where and axpby */

#define WHERE_LOOP(NAME, T)                                            \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    (void)ctx;                                                         \
    for (int64_t i = 0; i < n; i++) {                                  \
      uint8_t c = *(const uint8_t *)(p[1] + i * s[1]);                 \
      const char *src = c ? p[2] + i * s[2] : p[3] + i * s[3];         \
      *(T *)(p[0] + i * s[0]) = *(const T *)src;                       \
    }                                                                  \
  }

WHERE_LOOP(where_f32, float)
WHERE_LOOP(where_f64, double)
WHERE_LOOP(where_i32, int32_t)
WHERE_LOOP(where_u8, uint8_t)

ebl_status ebl_cpu_where(const ebl_tensor *out, const ebl_tensor *cond,
                         const ebl_tensor *a, const ebl_tensor *b) {
  static const ebl_loop_fn loops[EBL_NDTYPES] = ALL4(where);
  ebl_iter it;
  const ebl_tensor *ops[4] = {out, cond, a, b};
  ebl_iter_init(&it, 4, ops);
  return ebl_iter_run(&it, loops[out->dtype], NULL, 2);
}

typedef struct axpby_params { double alpha, beta; } axpby_params;

/* out = alpha x + beta out; beta 0 never reads out (NaN stays out). */
#define AXPBY_LOOP(NAME, T)                                            \
  static void NAME(int64_t n, char *const *p, const int64_t *s,        \
                   const void *ctx) {                                  \
    const axpby_params *ab = ctx;                                      \
    const T alpha = (T)ab->alpha, beta = (T)ab->beta;                  \
    T *o = (T *)p[0];                                                  \
    const T *x = (const T *)p[1];                                      \
    int64_t so = s[0] / (int64_t)sizeof(T);                            \
    int64_t sx = s[1] / (int64_t)sizeof(T);                            \
    if (so == 1 && sx == 1 && ab->beta != 0) {                         \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) o[i] = alpha * x[i] + beta * o[i]; \
    } else if (so == 1 && sx == 1) {                                   \
      _Pragma("omp simd")                                              \
      for (int64_t i = 0; i < n; i++) o[i] = alpha * x[i];             \
    } else if (ab->beta != 0) {                                        \
      for (int64_t i = 0; i < n; i++)                                  \
        o[i * so] = alpha * x[i * sx] + beta * o[i * so];              \
    } else {                                                           \
      for (int64_t i = 0; i < n; i++) o[i * so] = alpha * x[i * sx];   \
    }                                                                  \
  }

AXPBY_LOOP(axpby_f32, float)
AXPBY_LOOP(axpby_f64, double)

ebl_status ebl_cpu_axpby(const ebl_tensor *out, double alpha,
                         const ebl_tensor *x, double beta) {
  ebl_iter it;
  const ebl_tensor *ops[2] = {out, x};
  axpby_params ab = {alpha, beta};
  ebl_iter_init(&it, 2, ops);
  return ebl_iter_run(&it, out->dtype == EBL_F32 ? axpby_f32 : axpby_f64,
                      &ab, 1);
}

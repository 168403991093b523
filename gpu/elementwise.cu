// Elementwise kernels: copies with casts, fills, affine ranges, unary
// ops and activations with their derivatives, binary ops and
// comparisons, where, axpby. The arithmetic mirrors the CPU's kernels
// (src/cpu/elementwise.c, src/cpu/memory.c) op for op.
//
// Every op is a small struct with load() (read the inputs of one
// element) and store() (compute and write it), run by one of two
// kernels: a flat one for operands that merged into one dim (dense,
// broadcast scalars or one stride), where each thread loads four
// elements before it computes any, so that four loads per thread are in
// flight; and an N-d one that turns a linear index into each operand's
// offset.
#include <math.h>
#include <stdint.h>

#include "gpu/gpu.h"

#define THREADS 256
#define PER_THREAD 4

// ---- casts, as the CPU's (saturating float to integer, NaN to 0)

__device__ inline int32_t to_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}

__device__ inline uint8_t to_u8(double x) {
  if (x != x || x <= 0) return 0;
  return x >= 255.0 ? 255 : (uint8_t)x;
}

template <typename TD> struct Cast;
template <> struct Cast<float> {
  template <typename TS> __device__ static float of(TS x) {
    return (float)x;
  }
};
template <> struct Cast<double> {
  template <typename TS> __device__ static double of(TS x) {
    return (double)x;
  }
};
template <> struct Cast<int32_t> {
  template <typename TS> __device__ static int32_t of(TS x) {
    return to_i32((double)x);
  }
  __device__ static int32_t of(int32_t x) { return x; }
  __device__ static int32_t of(uint8_t x) { return (int32_t)x; }
};
template <> struct Cast<uint8_t> {
  template <typename TS> __device__ static uint8_t of(TS x) {
    return to_u8((double)x);
  }
  __device__ static uint8_t of(uint8_t x) { return x; }
};

// ---- float and double math under one name

__device__ inline float m_exp(float x) { return expf(x); }
__device__ inline double m_exp(double x) { return exp(x); }
__device__ inline float m_log(float x) { return logf(x); }
__device__ inline double m_log(double x) { return log(x); }
__device__ inline float m_sqrt(float x) { return sqrtf(x); }
__device__ inline double m_sqrt(double x) { return sqrt(x); }
__device__ inline float m_tanh(float x) { return tanhf(x); }
__device__ inline double m_tanh(double x) { return tanh(x); }
__device__ inline float m_erfc(float x) { return erfcf(x); }
__device__ inline double m_erfc(double x) { return erfc(x); }
__device__ inline float m_log1p(float x) { return log1pf(x); }
__device__ inline double m_log1p(double x) { return log1p(x); }
__device__ inline float m_abs(float x) { return fabsf(x); }
__device__ inline double m_abs(double x) { return fabs(x); }
__device__ inline float m_max(float x, float y) { return fmaxf(x, y); }
__device__ inline double m_max(double x, double y) { return fmax(x, y); }
__device__ inline float m_pow(float x, float y) { return powf(x, y); }
__device__ inline double m_pow(double x, double y) { return pow(x, y); }

// ---- unary ops

// op(x; p0, p1) for float and double.
template <typename T>
__device__ T unary_float(int op, T x, T p0, T p1) {
  const T half_sqrt2 = (T)0.70710678118654752440;   // 1/sqrt(2)
  const T inv_sqrt_2pi = (T)0.39894228040143267794;  // 1/sqrt(2 pi)
  T e;
  switch (op) {
  case EBL_NEG: return -x;
  case EBL_ABS: return m_abs(x);
  case EBL_SQUARE: return x * x;
  case EBL_SIGN: return (T)((x > 0) - (x < 0));
  case EBL_EXP: return m_exp(x);
  case EBL_LOG: return m_log(x);
  case EBL_SQRT: return m_sqrt(x);
  case EBL_RECIPROCAL: return (T)1 / x;
  case EBL_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  case EBL_TANH: return m_tanh(x);
  case EBL_SIGMOID: return (T)1 / ((T)1 + m_exp(-x));
  case EBL_RELU: return x < 0 ? (T)0 : x;
  case EBL_LEAKY_RELU: return x > 0 ? x : p0 * x;
  case EBL_GELU: return (T)0.5 * x * m_erfc(-x * half_sqrt2);
  case EBL_SOFTPLUS: return m_max(x, (T)0) + m_log1p(m_exp(-m_abs(x)));
  case EBL_TANH_GRAD:
    e = m_exp((T)-2 * m_abs(x));
    return (T)4 * e / (((T)1 + e) * ((T)1 + e));
  case EBL_SIGMOID_GRAD:
    e = m_exp(-m_abs(x));
    return e / (((T)1 + e) * ((T)1 + e));
  case EBL_RELU_GRAD: return x > 0 ? (T)1 : (T)0;
  case EBL_LEAKY_RELU_GRAD: return x > 0 ? (T)1 : p0;
  case EBL_GELU_GRAD:
    return (T)0.5 * m_erfc(-x * half_sqrt2) +
           x * m_exp((T)-0.5 * x * x) * inv_sqrt_2pi;
  case EBL_SOFTPLUS_GRAD: return (T)1 / ((T)1 + m_exp(-x));
  default: return x;
  }
}

// The integer ops: negation and abs wrap; clamp bounds come in range.
__device__ inline int32_t unary_int(int op, int32_t x, int32_t p0,
                                    int32_t p1) {
  switch (op) {
  case EBL_NEG: return (int32_t)(0u - (uint32_t)x);
  case EBL_ABS: return x < 0 ? (int32_t)(0u - (uint32_t)x) : x;
  case EBL_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  case EBL_RELU: return x < 0 ? 0 : x;
  default: return x;
  }
}

__device__ inline uint8_t unary_int(int op, uint8_t x, uint8_t p0,
                                    uint8_t p1) {
  switch (op) {
  case EBL_NEG: return (uint8_t)(0u - x);
  case EBL_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  default: return x;            // abs and relu of uint8
  }
}

__device__ inline float unary_value(int op, float x, float p0, float p1) {
  return unary_float(op, x, p0, p1);
}
__device__ inline double unary_value(int op, double x, double p0,
                                     double p1) {
  return unary_float(op, x, p0, p1);
}
__device__ inline int32_t unary_value(int op, int32_t x, int32_t p0,
                                      int32_t p1) {
  return unary_int(op, x, p0, p1);
}
__device__ inline uint8_t unary_value(int op, uint8_t x, uint8_t p0,
                                      uint8_t p1) {
  return unary_int(op, x, p0, p1);
}

// ---- binary ops

// NaN wins in maximum and minimum, as in numpy (and the CPU).
template <typename T>
__device__ inline T arith(int op, T x, T y) {
  switch (op) {
  case EBL_ADD: return x + y;
  case EBL_SUB: return x - y;
  case EBL_MUL: return x * y;
  case EBL_DIV: return x / y;
  case EBL_POW: return m_pow(x, y);
  case EBL_MAXIMUM: return (x > y || x != x) ? x : y;
  default: return (x < y || x != x) ? x : y;
  }
}

// Integer arithmetic wraps around (computed unsigned).
template <>
__device__ inline int32_t arith<int32_t>(int op, int32_t x, int32_t y) {
  switch (op) {
  case EBL_ADD: return (int32_t)((uint32_t)x + (uint32_t)y);
  case EBL_SUB: return (int32_t)((uint32_t)x - (uint32_t)y);
  case EBL_MUL: return (int32_t)((uint32_t)x * (uint32_t)y);
  case EBL_MAXIMUM: return x > y ? x : y;
  default: return x < y ? x : y;
  }
}

template <>
__device__ inline uint8_t arith<uint8_t>(int op, uint8_t x, uint8_t y) {
  switch (op) {
  case EBL_ADD: return (uint8_t)(x + y);
  case EBL_SUB: return (uint8_t)(x - y);
  case EBL_MUL: return (uint8_t)(x * y);
  case EBL_MAXIMUM: return x > y ? x : y;
  default: return x < y ? x : y;
  }
}

template <typename T>
__device__ inline uint8_t compare(int op, T x, T y) {
  switch (op) {
  case EBL_EQ: return x == y;
  case EBL_NE: return x != y;
  case EBL_LT: return x < y;
  case EBL_LE: return x <= y;
  case EBL_GT: return x > y;
  default: return x >= y;
  }
}

// ---- the ops as load/store pairs; off[k] is operand k's offset

template <typename T>
struct UnaryOp {
  typedef T In;
  T *out;
  const T *x;
  int op;
  T p0, p1;
  __device__ In load(const int64_t *off) const { return x[off[1]]; }
  __device__ void store(const int64_t *off, In v) const {
    out[off[0]] = unary_value(op, v, p0, p1);
  }
};

// Operands (out, a, b), or (out, a) with the scalar s on side 1 (s op a)
// or side 2 (a op s).
template <typename T, bool Cmp>
struct BinaryOp {
  struct In { T x, y; };
  void *out;
  const T *a, *b;
  int op, side;
  T s;
  __device__ In load(const int64_t *off) const {
    In v;
    v.x = side == 1 ? s : a[off[1]];
    v.y = side == 2 ? s : side == 1 ? a[off[1]] : b[off[2]];
    return v;
  }
  __device__ void store(const int64_t *off, In v) const {
    if (Cmp) ((uint8_t *)out)[off[0]] = compare(op, v.x, v.y);
    else ((T *)out)[off[0]] = arith(op, v.x, v.y);
  }
};

template <typename T>
struct WhereOp {
  struct In { uint8_t c; T a, b; };
  T *out;
  const uint8_t *cond;
  const T *a, *b;
  __device__ In load(const int64_t *off) const {
    In v = {cond[off[1]], a[off[2]], b[off[3]]};
    return v;
  }
  __device__ void store(const int64_t *off, In v) const {
    out[off[0]] = v.c ? v.a : v.b;
  }
};

// out = alpha x + beta out; with beta 0 out is never read.
template <typename T>
struct AxpbyOp {
  struct In { T x, o; };
  T *out;
  const T *x;
  T alpha, beta;
  bool read_out;
  __device__ In load(const int64_t *off) const {
    In v = {x[off[1]], read_out ? out[off[0]] : (T)0};
    return v;
  }
  __device__ void store(const int64_t *off, In v) const {
    out[off[0]] = read_out ? alpha * v.x + beta * v.o : alpha * v.x;
  }
};

template <typename TD, typename TS>
struct CopyOp {
  typedef TS In;
  TD *out;
  const TS *in;
  __device__ In load(const int64_t *off) const { return in[off[1]]; }
  __device__ void store(const int64_t *off, In v) const {
    out[off[0]] = Cast<TD>::of(v);
  }
};

template <typename T>
struct FillOp {
  typedef char In;
  T *out;
  T value;
  __device__ In load(const int64_t *) const { return 0; }
  __device__ void store(const int64_t *off, In) const {
    out[off[0]] = value;
  }
};

// ---- the two kernels

struct FlatStrides { int64_t s[EBL_GPU_OPS]; };

// Operands of one dim: element i of operand k at i * s[k]. Each thread
// handles PER_THREAD elements THREADS apart, loading all of them first.
template <typename Op>
__global__ void flat_kernel(Op op, int64_t n, FlatStrides st) {
  typename Op::In v[PER_THREAD];
  int64_t base = (int64_t)blockIdx.x * (THREADS * PER_THREAD) +
                 threadIdx.x;
  int64_t off[EBL_GPU_OPS];
#pragma unroll
  for (int j = 0; j < PER_THREAD; j++) {
    int64_t i = base + j * THREADS;
    if (i < n) {
      for (int k = 0; k < EBL_GPU_OPS; k++) off[k] = i * st.s[k];
      v[j] = op.load(off);
    }
  }
#pragma unroll
  for (int j = 0; j < PER_THREAD; j++) {
    int64_t i = base + j * THREADS;
    if (i < n) {
      for (int k = 0; k < EBL_GPU_OPS; k++) off[k] = i * st.s[k];
      op.store(off, v[j]);
    }
  }
}

// Any dims: the linear index i (row-major over it.shape) is split into
// per-dim indices, innermost first. I is the index type (32-bit when
// the element count allows: its division is much cheaper).
template <typename Op, typename I>
__global__ void nd_kernel(Op op, ebl_gpu_iter it) {
  I n = (I)it.numel;
  I step = (I)gridDim.x * THREADS;
  for (I i = (I)blockIdx.x * THREADS + threadIdx.x; i < n; i += step) {
    int64_t off[EBL_GPU_OPS] = {0, 0, 0, 0};
    I rest = i;
    for (int d = it.ndim - 1; d >= 0; d--) {
      I size = (I)it.shape[d];
      int64_t idx = (int64_t)(rest % size);
      rest /= size;
#pragma unroll
      for (int k = 0; k < EBL_GPU_OPS; k++) off[k] += idx * it.stride[k][d];
    }
    op.store(off, op.load(off));
  }
}

// Runs op over the iterator's elements on the stream.
template <typename Op>
static cudaError_t launch(const ebl_gpu_iter *it, const Op &op) {
  int64_t n = it->numel;
  if (n == 0) return cudaSuccess;
  if (it->ndim == 1) {
    FlatStrides st;
    for (int k = 0; k < EBL_GPU_OPS; k++)
      st.s[k] = k < it->nops ? it->stride[k][0] : 0;
    int64_t blocks = (n + THREADS * PER_THREAD - 1) /
                     (THREADS * PER_THREAD);
    flat_kernel<Op><<<(unsigned)blocks, THREADS, 0, ebl_gpu_stream>>>(
      op, n, st);
    return cudaGetLastError();
  }
  int64_t blocks = (n + THREADS - 1) / THREADS;
  int64_t cap = (int64_t)ebl_gpu_sm_count * 16;
  if (blocks > cap) blocks = cap;
  if (n < ((int64_t)1 << 31))
    nd_kernel<Op, uint32_t><<<(unsigned)blocks, THREADS, 0,
                              ebl_gpu_stream>>>(op, *it);
  else
    nd_kernel<Op, uint64_t><<<(unsigned)blocks, THREADS, 0,
                              ebl_gpu_stream>>>(op, *it);
  return cudaGetLastError();
}

// ---- launchers

template <typename TD>
static cudaError_t copy_to(const ebl_gpu_iter *it, ebl_dtype st) {
  TD *out = (TD *)it->data[0];
  const void *in = it->data[1];
  switch (st) {
  case EBL_F32: return launch(it, CopyOp<TD, float>{out, (const float *)in});
  case EBL_F64:
    return launch(it, CopyOp<TD, double>{out, (const double *)in});
  case EBL_I32:
    return launch(it, CopyOp<TD, int32_t>{out, (const int32_t *)in});
  default:
    return launch(it, CopyOp<TD, uint8_t>{out, (const uint8_t *)in});
  }
}

extern "C" cudaError_t ebl_gpu_copy(const ebl_gpu_iter *it, ebl_dtype dt,
                                    ebl_dtype st) {
  switch (dt) {
  case EBL_F32: return copy_to<float>(it, st);
  case EBL_F64: return copy_to<double>(it, st);
  case EBL_I32: return copy_to<int32_t>(it, st);
  default: return copy_to<uint8_t>(it, st);
  }
}

// The value in dt, cast on the host exactly as the device would.
template <typename T>
static cudaError_t fill_as(const ebl_gpu_iter *it, T value) {
  return launch(it, FillOp<T>{(T *)it->data[0], value});
}

static int32_t host_to_i32(double x) {
  if (x != x) return 0;
  if (x >= 2147483647.0) return INT32_MAX;
  if (x <= -2147483648.0) return INT32_MIN;
  return (int32_t)x;
}

static uint8_t host_to_u8(double x) {
  if (x != x || x <= 0) return 0;
  return x >= 255.0 ? 255 : (uint8_t)x;
}

extern "C" cudaError_t ebl_gpu_fill(const ebl_gpu_iter *it, ebl_dtype dt,
                                    double value) {
  switch (dt) {
  case EBL_F32: return fill_as<float>(it, (float)value);
  case EBL_F64: return fill_as<double>(it, value);
  case EBL_I32: return fill_as<int32_t>(it, host_to_i32(value));
  default: return fill_as<uint8_t>(it, host_to_u8(value));
  }
}

// out[i * stride] = start + i * step in double (no fused multiply-add,
// as on the CPU), cast per element.
template <typename T>
__global__ void affine_kernel(T *out, int64_t n, int64_t stride,
                              double start, double step) {
  int64_t i = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (i < n)
    out[i * stride] = Cast<T>::of(__dadd_rn(start,
                                            __dmul_rn((double)i, step)));
}

extern "C" cudaError_t ebl_gpu_affine(void *out, ebl_dtype dt, int64_t n,
                                      int64_t stride, double start,
                                      double step) {
  if (n == 0) return cudaSuccess;
  unsigned blocks = (unsigned)((n + THREADS - 1) / THREADS);
  cudaStream_t s = ebl_gpu_stream;
  switch (dt) {
  case EBL_F32:
    affine_kernel<<<blocks, THREADS, 0, s>>>((float *)out, n, stride,
                                             start, step);
    break;
  case EBL_F64:
    affine_kernel<<<blocks, THREADS, 0, s>>>((double *)out, n, stride,
                                             start, step);
    break;
  case EBL_I32:
    affine_kernel<<<blocks, THREADS, 0, s>>>((int32_t *)out, n, stride,
                                             start, step);
    break;
  default:
    affine_kernel<<<blocks, THREADS, 0, s>>>((uint8_t *)out, n, stride,
                                             start, step);
    break;
  }
  return cudaGetLastError();
}

extern "C" int ebl_gpu_unary_defined(ebl_unary_op op, ebl_dtype dt) {
  if ((unsigned)op >= EBL_NUNARY) return 0;
  if (dt == EBL_F32 || dt == EBL_F64) return 1;
  return op == EBL_NEG || op == EBL_ABS || op == EBL_CLAMP ||
         op == EBL_RELU;
}

extern "C" int ebl_gpu_binary_defined(ebl_binary_op op, ebl_dtype dt) {
  if ((unsigned)op >= EBL_NBINARY) return 0;
  if (dt == EBL_F32 || dt == EBL_F64) return 1;
  return op != EBL_DIV && op != EBL_POW;
}

// Integer clamp bounds brought into the dtype's range (NaN: no bound),
// as the CPU does.
static void int_bounds(ebl_dtype dt, double *p0, double *p1) {
  double lo = dt == EBL_U8 ? 0.0 : -2147483648.0;
  double hi = dt == EBL_U8 ? 255.0 : 2147483647.0;
  *p0 = *p0 != *p0 ? lo : fmin(fmax(ceil(*p0), lo), hi);
  *p1 = *p1 != *p1 ? hi : fmin(fmax(floor(*p1), lo), hi);
}

template <typename T>
static cudaError_t unary_as(const ebl_gpu_iter *it, int op, double p0,
                            double p1) {
  UnaryOp<T> u = {(T *)it->data[0], (const T *)it->data[1], op, (T)p0,
                  (T)p1};
  return launch(it, u);
}

extern "C" cudaError_t ebl_gpu_unary(const ebl_gpu_iter *it,
                                     ebl_unary_op op, ebl_dtype dt,
                                     double p0, double p1) {
  if (dt == EBL_I32 || dt == EBL_U8) int_bounds(dt, &p0, &p1);
  switch (dt) {
  case EBL_F32: return unary_as<float>(it, op, p0, p1);
  case EBL_F64: return unary_as<double>(it, op, p0, p1);
  case EBL_I32: return unary_as<int32_t>(it, op, p0, p1);
  default: return unary_as<uint8_t>(it, op, p0, p1);
  }
}

template <typename T>
static cudaError_t binary_as(const ebl_gpu_iter *it, int op, int side,
                             T s) {
  const T *a = (const T *)it->data[1];
  const T *b = side ? NULL : (const T *)it->data[2];
  if (op >= EBL_EQ)
    return launch(it, BinaryOp<T, true>{it->data[0], a, b, op, side, s});
  return launch(it, BinaryOp<T, false>{it->data[0], a, b, op, side, s});
}

extern "C" cudaError_t ebl_gpu_binary(const ebl_gpu_iter *it,
                                      ebl_binary_op op, ebl_dtype dt,
                                      int scalar_side, double s) {
  switch (dt) {
  case EBL_F32: return binary_as<float>(it, op, scalar_side, (float)s);
  case EBL_F64: return binary_as<double>(it, op, scalar_side, s);
  case EBL_I32:
    return binary_as<int32_t>(it, op, scalar_side, host_to_i32(s));
  default: return binary_as<uint8_t>(it, op, scalar_side, host_to_u8(s));
  }
}

template <typename T>
static cudaError_t where_as(const ebl_gpu_iter *it) {
  WhereOp<T> w = {(T *)it->data[0], (const uint8_t *)it->data[1],
                  (const T *)it->data[2], (const T *)it->data[3]};
  return launch(it, w);
}

extern "C" cudaError_t ebl_gpu_where(const ebl_gpu_iter *it,
                                     ebl_dtype dt) {
  switch (dt) {
  case EBL_F32: return where_as<float>(it);
  case EBL_F64: return where_as<double>(it);
  case EBL_I32: return where_as<int32_t>(it);
  default: return where_as<uint8_t>(it);
  }
}

extern "C" cudaError_t ebl_gpu_axpby(const ebl_gpu_iter *it, ebl_dtype dt,
                                     double alpha, double beta) {
  if (dt == EBL_F32) {
    AxpbyOp<float> op = {(float *)it->data[0], (const float *)it->data[1],
                         (float)alpha, (float)beta, beta != 0};
    return launch(it, op);
  }
  AxpbyOp<double> op = {(double *)it->data[0], (const double *)it->data[1],
                        alpha, beta, beta != 0};
  return launch(it, op);
}

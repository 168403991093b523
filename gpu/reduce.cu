// Reductions (sum, mean, max, min, argmax, argmin, var, norm), softmax
// and sums of doubles. Deterministic: no atomics; every result comes
// from a fixed split of the elements (by shape alone, never by the
// device's size) combined in a fixed tree, in double as on the CPU.
//
// A reduction over one dim gives each output a group of G threads
// (G = 1, 32 or 256, from the shape): lane l takes elements l, l+G, ...
// in order, then the group's lanes combine in a tree in shared memory.
// A reduction of all elements runs in two levels: a fixed number of
// blocks each reduce a grid-strided share, then one block their
// partials. Extremes keep the first extreme (smallest index) and let
// NaN win, whatever order partials meet in.
#include <math.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "gpu/group.cuh"

#define THREADS 256

typedef ebl_gpu_partial Partial;

enum PassKind {
  P_SUM, P_SQDEV, P_ABS, P_POW, P_MAX, P_MIN, P_MAXABS, P_ARGMAX, P_ARGMIN
};

__host__ __device__ inline bool is_extreme(int k) { return k >= P_MAX; }

// The neutral partial: zero for sums, "none" (index -1) for extremes.
__device__ inline Partial identity(int k) {
  Partial p = {0.0, is_extreme(k) ? -1LL : 0LL};
  return p;
}

// The partial of element x at index j (c: the centre of SQDEV).
__device__ inline Partial element(int k, double x, long long j, double c,
                                  double p) {
  Partial r = {x, j};
  switch (k) {
  case P_SQDEV: r.v = (x - c) * (x - c); break;
  case P_ABS: case P_MAXABS: r.v = fabs(x); break;
  case P_POW: r.v = pow(fabs(x), p); break;
  default: break;
  }
  return r;
}

// a combined with b: sums add; extremes keep NaN (the first by index),
// else the larger (smaller) value, ties to the smaller index.
__device__ inline Partial combine(int k, Partial a, Partial b) {
  if (!is_extreme(k)) {
    a.v += b.v;
    return a;
  }
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) {
    if (an && bn) return a.i <= b.i ? a : b;
    return an ? a : b;
  }
  bool low = k == P_MIN || k == P_ARGMIN;
  if (low ? b.v < a.v : b.v > a.v) return b;
  if (b.v == a.v && b.i < a.i) return b;
  return a;
}

// Combines the partials of each group of G lanes into sh[group start];
// every thread of the block calls it.
template <int G>
__device__ Partial group_combine(int k, Partial acc, Partial *sh) {
  if (G == 1) return acc;
  int t = threadIdx.x, lane = t % G;
  sh[t] = acc;
  __syncthreads();
  for (int s = G / 2; s > 0; s >>= 1) {
    if (lane < s) sh[t] = combine(k, sh[t], sh[t + s]);
    __syncthreads();
  }
  Partial r = sh[t - lane];
  __syncthreads();
  return r;
}

// Offset of output o's first element (o row-major over the kept dims).
__device__ inline int64_t kept_offset(const ebl_gpu_rows &r, int64_t o) {
  int64_t off = 0;
  for (int d = r.nkept - 1; d >= 0; d--) {
    off += (o % r.kept_shape[d]) * r.kept_stride[d];
    o /= r.kept_shape[d];
  }
  return off;
}

// ---- reductions over one dim

template <typename T, int G>
__global__ void rows_kernel(ebl_gpu_rows r, const T *x, int k, double p,
                            const double *center, Partial *res) {
  __shared__ Partial sh[THREADS];
  int lane = threadIdx.x % G;
  int64_t o = (int64_t)blockIdx.x * (THREADS / G) + threadIdx.x / G;
  Partial acc = identity(k);
  if (o < r.nout) {
    const T *row = x + kept_offset(r, o);
    double c = center ? center[o] : 0.0;
    for (int64_t j = lane; j < r.len; j += G)
      acc = combine(k, acc, element(k, (double)row[j * r.stride], j, c,
                                    p));
  }
  acc = group_combine<G>(k, acc, sh);
  if (o < r.nout && lane == 0) res[o] = acc;
}

// Threads per output for a reduction of nout outputs over len elements
// at stride: one thread when rows are short or many outputs read
// neighbouring columns; a warp along dense rows; a block for few long
// rows.
static int group_size(int64_t len, int64_t stride, int64_t nout) {
  if (len <= 32) return 1;
  if (nout < 1024 && len >= 4096) return 256;
  if (stride == 1) return 32;
  if (nout >= 4096) return 1;
  return 256;
}

template <typename T>
static cudaError_t rows_pass(const ebl_gpu_rows *r, const T *x, int k,
                             double p, const double *center,
                             Partial *res) {
  int g = group_size(r->len, r->stride, r->nout);
  int64_t blocks = (r->nout + THREADS / g - 1) / (THREADS / g);
  cudaStream_t s = ebl_gpu_stream;
  if (blocks == 0) return cudaSuccess;
  if (g == 1)
    rows_kernel<T, 1><<<(unsigned)blocks, THREADS, 0, s>>>(*r, x, k, p,
                                                           center, res);
  else if (g == 32)
    rows_kernel<T, 32><<<(unsigned)blocks, THREADS, 0, s>>>(*r, x, k, p,
                                                            center, res);
  else
    rows_kernel<T, 256><<<(unsigned)blocks, THREADS, 0, s>>>(*r, x, k, p,
                                                             center, res);
  return cudaGetLastError();
}

// ---- reductions of all elements

// Blocks of the first level for n elements: fixed by n alone.
static int64_t all_blocks(int64_t n) {
  int64_t b = (n + 4095) / 4096;
  return b < 1 ? 1 : b > 1024 ? 1024 : b;
}

// Block b reduces elements b*THREADS + t + m * blocks * THREADS.
template <typename T>
__global__ void all_kernel(const T *x, int64_t n, int k, double p,
                           const double *center, Partial *parts) {
  __shared__ Partial sh[THREADS];
  int64_t step = (int64_t)gridDim.x * THREADS;
  double c = center ? center[0] : 0.0;
  Partial acc = identity(k);
  for (int64_t i = (int64_t)blockIdx.x * THREADS + threadIdx.x; i < n;
       i += step)
    acc = combine(k, acc, element(k, (double)x[i], i, c, p));
  acc = group_combine<THREADS>(k, acc, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = acc;
}

// One block combines count partials into *res.
__global__ void parts_kernel(const Partial *parts, int64_t count, int k,
                             Partial *res) {
  __shared__ Partial sh[THREADS];
  Partial acc = identity(k);
  for (int64_t i = threadIdx.x; i < count; i += THREADS)
    acc = combine(k, acc, parts[i]);
  acc = group_combine<THREADS>(k, acc, sh);
  if (threadIdx.x == 0) res[0] = acc;
}

template <typename T>
static cudaError_t all_pass(int64_t n, const T *x, int k, double p,
                            const double *center, Partial *parts,
                            Partial *res) {
  int64_t blocks = all_blocks(n);
  all_kernel<T><<<(unsigned)blocks, THREADS, 0, ebl_gpu_stream>>>(
    x, n, k, p, center, parts);
  parts_kernel<<<1, THREADS, 0, ebl_gpu_stream>>>(parts, blocks, k, res);
  return cudaGetLastError();
}

// ---- finishing

// The first pass of op (the only one but for VAR's second).
static int first_pass(ebl_reduce_op op, double p) {
  switch (op) {
  case EBL_MAX: return P_MAX;
  case EBL_MIN: return P_MIN;
  case EBL_ARGMAX: return P_ARGMAX;
  case EBL_ARGMIN: return P_ARGMIN;
  case EBL_NORM:
    if (isinf(p)) return P_MAXABS;
    if (p == 2) return P_SQDEV;
    return p == 1 ? P_ABS : P_POW;
  default: return P_SUM;
  }
}

// center[o] = a[o] / len: VAR's means.
__global__ void center_kernel(const Partial *a, int64_t nres, int64_t len,
                              double *center) {
  int64_t o = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (o < nres) center[o] = a[o].v / (double)len;
}

// The value of op from its first pass a (and VAR's second, b).
__device__ double finish(ebl_reduce_op op, double p, int64_t n, Partial a,
                         double b) {
  switch (op) {
  case EBL_MEAN: return a.v / (double)n;
  case EBL_VAR:    // no elements: no variance (0 / -1 would give -0)
    return n > 0 ? b / (double)(n - (p != 0 ? 1 : 0)) : NAN;
  case EBL_NORM:
    if (isinf(p) || p == 1) return a.v;
    return p == 2 ? sqrt(a.v) : pow(a.v, 1.0 / p);
  case EBL_ARGMAX: case EBL_ARGMIN: return (double)a.i;
  case EBL_MAX: case EBL_MIN: return n > 0 ? a.v : NAN;
  default: return a.v;
  }
}

__global__ void finish_kernel(ebl_reduce_op op, double p, int64_t len,
                              const Partial *a, const Partial *b,
                              int64_t nres, void *out, ebl_dtype ot) {
  int64_t o = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (o >= nres) return;
  double v = finish(op, p, len, a[o], b ? b[o].v : 0.0);
  if (ot == EBL_F32) ((float *)out)[o] = (float)v;
  else if (ot == EBL_F64) ((double *)out)[o] = v;
  else ((int32_t *)out)[o] = (int32_t)v;
}

// Scratch layout: first-level partials (all only), a, b, centres.
struct Scratch {
  Partial *parts, *a, *b;
  double *center;
};

static Scratch layout(void *base, int64_t nres, int all, int64_t len) {
  Scratch s;
  s.parts = (Partial *)base;
  s.a = s.parts + (all ? all_blocks(len) : 0);
  s.b = s.a + nres;
  s.center = (double *)(s.b + nres);
  return s;
}

extern "C" size_t ebl_gpu_reduce_scratch(const ebl_gpu_rows *r, int all) {
  int64_t nres = all ? 1 : r->nout;
  int64_t parts = all ? all_blocks(r->len) : 0;
  return (size_t)(parts + 2 * nres) * sizeof(Partial) +
         (size_t)nres * sizeof(double) + 64;
}

// One pass of kind k into res, over all elements or the rows.
template <typename T>
static cudaError_t pass(const ebl_gpu_rows *r, int all, const void *x,
                        int k, double p, const double *center,
                        Partial *parts, Partial *res) {
  if (all) return all_pass(r->len, (const T *)x, k, p, center, parts, res);
  return rows_pass(r, (const T *)x, k, p, center, res);
}

template <typename T>
static cudaError_t reduce_as(const ebl_gpu_rows *r, int all,
                             ebl_reduce_op op, double p, const void *x,
                             void *out, ebl_dtype ot, void *scratch) {
  int64_t nres = all ? 1 : r->nout;
  unsigned blocks = (unsigned)((nres + THREADS - 1) / THREADS);
  Scratch s = layout(scratch, nres, all, r->len);
  cudaStream_t st = ebl_gpu_stream;
  if (nres == 0) return cudaSuccess;
  cudaError_t err = pass<T>(r, all, x, first_pass(op, p), p, NULL, s.parts,
                            s.a);
  if (err == cudaSuccess && op == EBL_VAR) {
    center_kernel<<<blocks, THREADS, 0, st>>>(s.a, nres, r->len, s.center);
    err = pass<T>(r, all, x, P_SQDEV, p, s.center, s.parts, s.b);
  }
  if (err != cudaSuccess) return err;
  finish_kernel<<<blocks, THREADS, 0, st>>>(op, p, r->len, s.a,
                                            op == EBL_VAR ? s.b : NULL,
                                            nres, out, ot);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_reduce(const ebl_gpu_rows *r, int all,
                                      ebl_reduce_op op, double p,
                                      const void *x, ebl_dtype xt,
                                      void *out, ebl_dtype ot,
                                      void *scratch) {
  if (xt == EBL_F32)
    return reduce_as<float>(r, all, op, p, x, out, ot, scratch);
  return reduce_as<double>(r, all, op, p, x, out, ot, scratch);
}

// ---- sums of doubles

__global__ void sum_doubles_kernel(const double *parts, int64_t n,
                                   double *sum, double mul, double div) {
  __shared__ Partial sh[THREADS];
  Partial acc = {0.0, 0};
  for (int64_t i = threadIdx.x; i < n; i += THREADS) acc.v += parts[i];
  acc = group_combine<THREADS>(P_SUM, acc, sh);
  if (threadIdx.x == 0) sum[0] = __ddiv_rn(__dmul_rn(mul, acc.v), div);
}

extern "C" cudaError_t ebl_gpu_sum_doubles(const double *parts, int64_t n,
                                           double *sum, double mul,
                                           double div) {
  sum_doubles_kernel<<<1, THREADS, 0, ebl_gpu_stream>>>(parts, n, sum, mul,
                                                         div);
  return cudaGetLastError();
}

// ---- softmax along rows

__device__ inline float s_exp(float x) { return expf(x); }
__device__ inline double s_exp(double x) { return exp(x); }

// The row's maximum, NaN when it holds one; then sum exp(x - max) in
// double; then each output, as src/cpu/reduce.c computes them.
template <typename T, int G>
__global__ void softmax_kernel(ebl_gpu_rows rx, ebl_gpu_rows ry,
                               const T *x, T *y, int take_log) {
  __shared__ double sh[THREADS];
  int lane = threadIdx.x % G;
  int64_t o = (int64_t)blockIdx.x * (THREADS / G) + threadIdx.x / G;
  bool live = o < rx.nout;
  const T *xr = live ? x + kept_offset(rx, o) : x;
  T *yr = live ? y + kept_offset(ry, o) : y;
  int64_t n = live ? rx.len : 0;
  T m = (T)-INFINITY;
  for (int64_t j = lane; j < n; j += G) {
    T v = xr[j * rx.stride];
    if (v > m || v != v) m = v;
  }
  m = (T)group_all<G, true>((double)m, sh);
  double sum = 0.0;
  for (int64_t j = lane; j < n; j += G) sum += s_exp(xr[j * rx.stride] - m);
  sum = group_all<G, false>(sum, sh);
  T lse = (T)log(sum), scale = (T)(1.0 / sum);
  for (int64_t j = lane; j < n; j += G) {
    T v = xr[j * rx.stride] - m;
    yr[j * ry.stride] = take_log ? v - lse : s_exp(v) * scale;
  }
}

template <typename T>
static cudaError_t softmax_as(const ebl_gpu_rows *rx,
                              const ebl_gpu_rows *ry, const T *x, T *y,
                              int take_log) {
  int g = group_size(rx->len, rx->stride, rx->nout);
  int64_t blocks = (rx->nout + THREADS / g - 1) / (THREADS / g);
  cudaStream_t s = ebl_gpu_stream;
  if (blocks == 0 || rx->len == 0) return cudaSuccess;
  if (g == 1)
    softmax_kernel<T, 1><<<(unsigned)blocks, THREADS, 0, s>>>(
      *rx, *ry, x, y, take_log);
  else if (g == 32)
    softmax_kernel<T, 32><<<(unsigned)blocks, THREADS, 0, s>>>(
      *rx, *ry, x, y, take_log);
  else
    softmax_kernel<T, 256><<<(unsigned)blocks, THREADS, 0, s>>>(
      *rx, *ry, x, y, take_log);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_softmax(const ebl_gpu_rows *rx,
                                       const ebl_gpu_rows *ry,
                                       const void *x, void *y,
                                       ebl_dtype dt, int take_log) {
  if (dt == EBL_F32)
    return softmax_as(rx, ry, (const float *)x, (float *)y, take_log);
  return softmax_as(rx, ry, (const double *)x, (double *)y, take_log);
}

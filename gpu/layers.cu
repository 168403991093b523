// Layer kernels on dense NCHW memory: max and average pooling with
// their VJPs, bias addition and bias gradients of the convolutions, and
// the per-row losses. Semantics follow src/cpu/layers_real.h: the first
// maximum of a window wins (NaN over any number) and its flat index
// h * w_in + w within the plane is kept. The VJPs gather (each input
// sums the outputs whose windows hold it, in output order), so no two
// threads write one element and no atomics are needed.
#include <math.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "gpu/group.cuh"

#define THREADS 256

static unsigned blocks_for(int64_t n) {
  return (unsigned)((n + THREADS - 1) / THREADS);
}

// The window of output (oh, ow), clipped to the input.
__device__ inline void window(const ebl_pool_geom &g, int oh, int ow,
                              int *h_lo, int *h_hi, int *w_lo, int *w_hi) {
  int h0 = oh * g.stride_h - g.pad_h, w0 = ow * g.stride_w - g.pad_w;
  *h_lo = h0 < 0 ? 0 : h0;
  *w_lo = w0 < 0 ? 0 : w0;
  *h_hi = h0 + g.kh < g.h_in ? h0 + g.kh : g.h_in;
  *w_hi = w0 + g.kw < g.w_in ? w0 + g.kw : g.w_in;
}

// The outputs along one axis whose windows hold input position i:
// lo .. hi (empty when lo > hi).
__device__ inline void covering(int i, int k, int stride, int pad,
                                int n_out, int *lo, int *hi) {
  int first = i + pad - k + 1;
  *lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  *hi = (i + pad) / stride;
  if (*hi > n_out - 1) *hi = n_out - 1;
}

// ---- max pooling

template <typename T>
__global__ void max_pool_kernel(ebl_pool_geom g, const T *x, T *y,
                                int32_t *argmax, int64_t total) {
  int64_t o = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (o >= total) return;
  int64_t plane_out = (int64_t)g.h_out * g.w_out;
  int64_t p = o / plane_out, r = o % plane_out;
  int oh = (int)(r / g.w_out), ow = (int)(r % g.w_out);
  const T *plane = x + p * g.h_in * (int64_t)g.w_in;
  int h_lo, h_hi, w_lo, w_hi;
  window(g, oh, ow, &h_lo, &h_hi, &w_lo, &w_hi);
  int32_t best_at = h_lo * g.w_in + w_lo;
  T best = plane[best_at];
  for (int ih = h_lo; ih < h_hi; ih++)
    for (int iw = w_lo; iw < w_hi; iw++) {
      int32_t at = ih * g.w_in + iw;
      T v = plane[at];
      if (v > best || (v != v && best == best)) {
        best = v;
        best_at = at;
      }
    }
  y[o] = best;
  argmax[o] = best_at;
}

// dx at each input: the dy of every output whose winner it is.
template <typename T>
__global__ void max_pool_vjp_kernel(ebl_pool_geom g, const T *dy,
                                    const int32_t *argmax, T *dx,
                                    int64_t total) {
  int64_t i = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (i >= total) return;
  int64_t plane_in = (int64_t)g.h_in * g.w_in;
  int64_t p = i / plane_in;
  int at = (int)(i % plane_in), ih = at / g.w_in, iw = at % g.w_in;
  int oh_lo, oh_hi, ow_lo, ow_hi;
  covering(ih, g.kh, g.stride_h, g.pad_h, g.h_out, &oh_lo, &oh_hi);
  covering(iw, g.kw, g.stride_w, g.pad_w, g.w_out, &ow_lo, &ow_hi);
  const T *dyp = dy + p * g.h_out * (int64_t)g.w_out;
  const int32_t *win = argmax + p * g.h_out * (int64_t)g.w_out;
  T sum = 0;
  for (int oh = oh_lo; oh <= oh_hi; oh++)
    for (int ow = ow_lo; ow <= ow_hi; ow++) {
      int o = oh * g.w_out + ow;
      if (win[o] == at) sum += dyp[o];
    }
  dx[i] = sum;
}

// ---- average pooling (divisor kh * kw, padding counts as zeros)

template <typename T>
__global__ void avg_pool_kernel(ebl_pool_geom g, const T *x, T *y,
                                int64_t total) {
  int64_t o = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (o >= total) return;
  int64_t plane_out = (int64_t)g.h_out * g.w_out;
  int64_t p = o / plane_out, r = o % plane_out;
  int oh = (int)(r / g.w_out), ow = (int)(r % g.w_out);
  const T *plane = x + p * g.h_in * (int64_t)g.w_in;
  T scale = (T)1 / ((T)g.kh * g.kw), sum = 0;
  int h_lo, h_hi, w_lo, w_hi;
  window(g, oh, ow, &h_lo, &h_hi, &w_lo, &w_hi);
  for (int ih = h_lo; ih < h_hi; ih++)
    for (int iw = w_lo; iw < w_hi; iw++) sum += plane[ih * g.w_in + iw];
  y[o] = sum * scale;
}

template <typename T>
__global__ void avg_pool_vjp_kernel(ebl_pool_geom g, const T *dy, T *dx,
                                    int64_t total) {
  int64_t i = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (i >= total) return;
  int64_t plane_in = (int64_t)g.h_in * g.w_in;
  int64_t p = i / plane_in;
  int at = (int)(i % plane_in), ih = at / g.w_in, iw = at % g.w_in;
  int oh_lo, oh_hi, ow_lo, ow_hi;
  covering(ih, g.kh, g.stride_h, g.pad_h, g.h_out, &oh_lo, &oh_hi);
  covering(iw, g.kw, g.stride_w, g.pad_w, g.w_out, &ow_lo, &ow_hi);
  const T *dyp = dy + p * g.h_out * (int64_t)g.w_out;
  T scale = (T)1 / ((T)g.kh * g.kw), sum = 0;
  for (int oh = oh_lo; oh <= oh_hi; oh++)
    for (int ow = ow_lo; ow <= ow_hi; ow++)
      sum += dyp[oh * g.w_out + ow] * scale;
  dx[i] = sum;
}

// ---- launchers of pooling

// Elements of the input (in) or output planes of g.
static int64_t plane_total(const ebl_pool_geom *g, int in) {
  int64_t plane = in ? (int64_t)g->h_in * g->w_in
                     : (int64_t)g->h_out * g->w_out;
  return (int64_t)g->n * g->c * plane;
}

template <typename T>
static cudaError_t max_pool_as(const ebl_pool_geom *g, const void *x,
                               void *y, int32_t *argmax) {
  int64_t n = plane_total(g, 0);
  if (n > 0)
    max_pool_kernel<T><<<blocks_for(n), THREADS, 0, ebl_gpu_stream>>>(
      *g, (const T *)x, (T *)y, argmax, n);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t max_pool_vjp_as(const ebl_pool_geom *g, const void *dy,
                                   const int32_t *argmax, void *dx) {
  int64_t n = plane_total(g, 1);
  if (n > 0)
    max_pool_vjp_kernel<T><<<blocks_for(n), THREADS, 0,
                             ebl_gpu_stream>>>(*g, (const T *)dy, argmax,
                                               (T *)dx, n);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t avg_pool_as(const ebl_pool_geom *g, const void *x,
                               void *y) {
  int64_t n = plane_total(g, 0);
  if (n > 0)
    avg_pool_kernel<T><<<blocks_for(n), THREADS, 0, ebl_gpu_stream>>>(
      *g, (const T *)x, (T *)y, n);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t avg_pool_vjp_as(const ebl_pool_geom *g, const void *dy,
                                   void *dx) {
  int64_t n = plane_total(g, 1);
  if (n > 0)
    avg_pool_vjp_kernel<T><<<blocks_for(n), THREADS, 0,
                             ebl_gpu_stream>>>(*g, (const T *)dy, (T *)dx,
                                               n);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_max_pool(const ebl_pool_geom *g,
                                        ebl_dtype dt, const void *x,
                                        void *y, int32_t *argmax) {
  return dt == EBL_F32 ? max_pool_as<float>(g, x, y, argmax)
                       : max_pool_as<double>(g, x, y, argmax);
}

extern "C" cudaError_t ebl_gpu_max_pool_vjp(const ebl_pool_geom *g,
                                            ebl_dtype dt, const void *dy,
                                            const int32_t *argmax,
                                            void *dx) {
  return dt == EBL_F32 ? max_pool_vjp_as<float>(g, dy, argmax, dx)
                       : max_pool_vjp_as<double>(g, dy, argmax, dx);
}

extern "C" cudaError_t ebl_gpu_avg_pool(const ebl_pool_geom *g,
                                        ebl_dtype dt, const void *x,
                                        void *y) {
  return dt == EBL_F32 ? avg_pool_as<float>(g, x, y)
                       : avg_pool_as<double>(g, x, y);
}

extern "C" cudaError_t ebl_gpu_avg_pool_vjp(const ebl_pool_geom *g,
                                            ebl_dtype dt, const void *dy,
                                            void *dx) {
  return dt == EBL_F32 ? avg_pool_vjp_as<float>(g, dy, dx)
                       : avg_pool_vjp_as<double>(g, dy, dx);
}

// ---- convolution bias: addition and gradient

// y[i, c, j] += b[c] over y (n, channels, plane).
template <typename T>
__global__ void add_bias_kernel(int channels, int64_t plane, const T *b,
                                T *y, int64_t total) {
  int64_t e = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (e < total) y[e] += b[(e / plane) % channels];
}

// Block c sums channel c of dy (n, channels, plane) in double.
template <typename T>
__global__ void bias_sums_kernel(int n, int channels, int64_t plane,
                                 const T *dy, T *db) {
  __shared__ double sh[GROUP_THREADS];
  int c = blockIdx.x;
  int64_t count = (int64_t)n * plane;
  double sum = 0.0;
  for (int64_t q = threadIdx.x; q < count; q += THREADS) {
    int64_t i = q / plane, j = q % plane;
    sum += (double)dy[(i * channels + c) * plane + j];
  }
  sum = group_all<THREADS, false>(sum, sh);
  if (threadIdx.x == 0) db[c] = (T)sum;
}

extern "C" cudaError_t ebl_gpu_add_bias(ebl_dtype dt, int n, int channels,
                                        int64_t plane, const void *b,
                                        void *y) {
  int64_t total = (int64_t)n * channels * plane;
  if (total == 0) return cudaSuccess;
  if (dt == EBL_F32)
    add_bias_kernel<<<blocks_for(total), THREADS, 0, ebl_gpu_stream>>>(
      channels, plane, (const float *)b, (float *)y, total);
  else
    add_bias_kernel<<<blocks_for(total), THREADS, 0, ebl_gpu_stream>>>(
      channels, plane, (const double *)b, (double *)y, total);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_bias_sums(ebl_dtype dt, int n, int channels,
                                         int64_t plane, const void *dy,
                                         void *db) {
  if (channels == 0) return cudaSuccess;
  if (dt == EBL_F32)
    bias_sums_kernel<<<channels, THREADS, 0, ebl_gpu_stream>>>(
      n, channels, plane, (const float *)dy, (float *)db);
  else
    bias_sums_kernel<<<channels, THREADS, 0, ebl_gpu_stream>>>(
      n, channels, plane, (const double *)dy, (double *)db);
  return cudaGetLastError();
}

// ---- losses: one group of G threads per row of k values

// rows[i] = sum_j (x - t)^2 of row i; grad = (x - t) / n.
template <typename T, int G>
__global__ void mse_kernel(int n, int k, const T *x, const T *t, T *grad,
                           double *rows) {
  __shared__ double sh[GROUP_THREADS];
  int lane = threadIdx.x % G;
  int64_t i = (int64_t)blockIdx.x * (THREADS / G) + threadIdx.x / G;
  double sum = 0.0;
  for (int j = lane; i < n && j < k; j += G) {
    int64_t e = i * k + j;
    double diff = (double)x[e] - (double)t[e];
    sum += diff * diff;
    if (grad) grad[e] = (T)(diff / n);
  }
  sum = group_all<G, false>(sum, sh);
  if (i < n && lane == 0) rows[i] = sum;
}

// log sum_j exp(v_j) of row v, shifted by its maximum (NaN ignored, an
// infinite maximum replaced by 0), as the CPU computes it.
template <typename T, int G>
__device__ double row_lse(const T *v, int k, bool live, double *sh) {
  int lane = threadIdx.x % G;
  double top = -INFINITY, total = 0.0;
  for (int j = lane; live && j < k; j += G)
    if ((double)v[j] > top) top = v[j];
  top = group_all<G, true>(top, sh);
  if (!isfinite(top)) top = 0;
  for (int j = lane; live && j < k; j += G)
    total += exp((double)v[j] - top);
  total = group_all<G, false>(total, sh);
  return top + log(total);
}

// Cross-entropy of row i against a label or soft targets; grad gets
// (softmax - onehot) / n or (softmax * sum(t) - t) / n.
template <typename T, int G>
__global__ void ce_kernel(int n, int k, const T *logits,
                          const int32_t *labels, const T *target, T *grad,
                          double *rows) {
  __shared__ double sh[GROUP_THREADS];
  int lane = threadIdx.x % G;
  int64_t i = (int64_t)blockIdx.x * (THREADS / G) + threadIdx.x / G;
  bool live = i < n;
  const T *v = logits + (live ? i * k : 0);
  T *g = grad ? grad + (live ? i * k : 0) : NULL;
  double lse = row_lse<T, G>(v, k, live, sh), loss = 0.0, mass = 0.0;
  int label = labels && live ? labels[i] : 0;
  bool bad = labels && (label < 0 || label >= k);
  const T *t = target ? target + (live ? i * k : 0) : NULL;
  for (int j = lane; t && live && j < k; j += G)
    if (t[j] != 0) {
      loss += (double)t[j] * (lse - v[j]);
      mass += t[j];
    }
  loss = group_all<G, false>(loss, sh);
  mass = group_all<G, false>(mass, sh);
  for (int j = lane; g && live && j < k; j += G) {
    double prob = (double)(T)exp((double)v[j] - lse);
    g[j] = bad ? (T)NAN
         : labels ? (T)((prob - (j == label)) / n)
                  : (T)((prob * mass - t[j]) / n);
  }
  if (!live || lane != 0) return;
  rows[i] = bad ? NAN : labels ? lse - v[label] : loss;
}

// Threads per row of k values.
static int loss_group(int k) { return k <= 32 ? 1 : k <= 1024 ? 32 : 256; }

template <typename T>
static cudaError_t mse_as(int n, int k, const void *x, const void *t,
                          void *grad, double *rows) {
  int g = loss_group(k);
  unsigned blocks = (unsigned)((n + THREADS / g - 1) / (THREADS / g));
  cudaStream_t s = ebl_gpu_stream;
  const T *xt = (const T *)x, *tt = (const T *)t;
  if (g == 1)
    mse_kernel<T, 1><<<blocks, THREADS, 0, s>>>(n, k, xt, tt, (T *)grad,
                                                rows);
  else if (g == 32)
    mse_kernel<T, 32><<<blocks, THREADS, 0, s>>>(n, k, xt, tt, (T *)grad,
                                                 rows);
  else
    mse_kernel<T, 256><<<blocks, THREADS, 0, s>>>(n, k, xt, tt, (T *)grad,
                                                  rows);
  return cudaGetLastError();
}

template <typename T>
static cudaError_t ce_as(int n, int k, const void *logits,
                         const int32_t *labels, const void *target,
                         void *grad, double *rows) {
  int g = loss_group(k);
  unsigned blocks = (unsigned)((n + THREADS / g - 1) / (THREADS / g));
  cudaStream_t s = ebl_gpu_stream;
  const T *v = (const T *)logits, *t = (const T *)target;
  if (g == 1)
    ce_kernel<T, 1><<<blocks, THREADS, 0, s>>>(n, k, v, labels, t,
                                               (T *)grad, rows);
  else if (g == 32)
    ce_kernel<T, 32><<<blocks, THREADS, 0, s>>>(n, k, v, labels, t,
                                                (T *)grad, rows);
  else
    ce_kernel<T, 256><<<blocks, THREADS, 0, s>>>(n, k, v, labels, t,
                                                 (T *)grad, rows);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_mse_rows(ebl_dtype dt, int n, int k,
                                        const void *x, const void *t,
                                        void *grad, double *rows) {
  if (n <= 0) return cudaSuccess;
  return dt == EBL_F32 ? mse_as<float>(n, k, x, t, grad, rows)
                       : mse_as<double>(n, k, x, t, grad, rows);
}

extern "C" cudaError_t ebl_gpu_ce_rows(ebl_dtype dt, int n, int k,
                                       const void *logits,
                                       const int32_t *labels,
                                       const void *target, void *grad,
                                       double *rows) {
  if (n <= 0) return cudaSuccess;
  return dt == EBL_F32
           ? ce_as<float>(n, k, logits, labels, target, grad, rows)
           : ce_as<double>(n, k, logits, labels, target, grad, rows);
}

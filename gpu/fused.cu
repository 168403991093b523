// Fused kernels of the energy engine's inner loop: each reads its
// operands once and writes its results once, where the unfused engine
// runs two to eight elementwise passes and a reduction. The arithmetic
// is the engine's (src/engine/energy.c, src/engine/infer.c), in the
// tensors' dtype, with sums of squares in double.
//
// Bytes each must move, for n elements of s bytes (4 for float32):
//   pred_error    reads v, mu; writes e                    3 n s
//   bipc_signals  reads e_f, e_b; writes sig, sig_b        4 n s
//   state_step    SGD: reads v, g; writes v                3 n s
//                 momentum: reads v, g, m1; writes v, m1   5 n s
//                 Adam: reads v, g, m1, m2; writes them    7 n s
//   act_vjp       reads y, dy; writes out                  3 n s
// plus 8 bytes per block of partial sums (at most 1024 blocks). The
// benchmark (bench/bench_cuda.c) divides these bytes by the time.
//
// Also here: the inference loop's check (relax_check), one thread that
// sums the energy's terms and keeps the loop's watch, so that the host
// need not read F at every step; state steps after the loop stopped do
// nothing (the gate).
#include <math.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "gpu/group.cuh"

#define THREADS 256
#define UNROLL 4

// Blocks for n elements: fixed by n alone, so that the sums of squares
// are the same on any device.
extern "C" int ebl_gpu_fused_blocks(int64_t n) {
  int64_t b = (n + 4095) / 4096;
  return (int)(b < 1 ? 1 : b > 1024 ? 1024 : b);
}

// Each thread visits base + j * THREADS (j < UNROLL) for base stepping
// by the grid's span; all of an iteration's loads come before its
// stores, so UNROLL loads per operand are in flight.
#define FOR_CHUNKS(n, base)                                            \
  for (int64_t base = (int64_t)blockIdx.x * THREADS * UNROLL +         \
                      threadIdx.x;                                     \
       base < (n); base += (int64_t)gridDim.x * THREADS * UNROLL)

// e = v - mu; parts[block] = sum of e^2 over the block's elements.
template <typename T>
__global__ void pred_error_kernel(int64_t n, T *err, const T *v,
                                  const T *mu, double *parts) {
  __shared__ double sh[GROUP_THREADS];
  double acc = 0.0;
  FOR_CHUNKS(n, base) {
    T a[UNROLL], b[UNROLL];
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      a[j] = i < n ? v[i] : (T)0;
      b[j] = i < n ? mu[i] : (T)0;
    }
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      T e = a[j] - b[j];
      if (i < n) err[i] = e;
      acc += (double)e * (double)e;
    }
  }
  acc = group_all<THREADS, false>(acc, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = acc;
}

// r = e_f + lambda e_b; sig = r; sig_b = lambda r; parts: sum of r^2.
template <typename T>
__global__ void bipc_kernel(int64_t n, T *sig, T *sig_b, const T *e_f,
                            const T *e_b, T lambda, double *parts) {
  __shared__ double sh[GROUP_THREADS];
  double acc = 0.0;
  FOR_CHUNKS(n, base) {
    T f[UNROLL], b[UNROLL];
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      f[j] = i < n ? e_f[i] : (T)0;
      b[j] = i < n ? e_b[i] : (T)0;
    }
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      T r = lambda * b[j] + f[j];
      if (i < n) {
        sig[i] = r;
        sig_b[i] = r * lambda;
      }
      acc += (double)r * (double)r;
    }
  }
  acc = group_all<THREADS, false>(acc, sh);
  if (threadIdx.x == 0) parts[blockIdx.x] = acc;
}

// out = dy f'(x) from y = f(x): tanh 1 - y^2, sigmoid y (1 - y). out
// may be y: each element is read before it is written.
template <typename T>
__global__ void act_vjp_kernel(int64_t n, bool tanh_act, T *out,
                               const T *y, const T *dy) {
  FOR_CHUNKS(n, base) {
    T a[UNROLL], d[UNROLL];
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      a[j] = i < n ? y[i] : (T)0;
      d[j] = i < n ? dy[i] : (T)0;
    }
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      if (i < n)
        out[i] = tanh_act ? d[j] * ((T)1 - a[j] * a[j])
                          : d[j] * (a[j] * ((T)1 - a[j]));
    }
  }
}

// The coefficients of a step in the dtype, as the engine casts them.
template <typename T>
struct Coeffs {
  int kind;
  T neg_lr, momentum;            // SGD, momentum
  T one_b1, b1, one_b2, b2;      // Adam's moments
  T inv_c2, eps, neg_lr_c1;      // Adam's bias corrections
};

// One element of the state update (see ebl_state_step).
template <typename T>
__device__ inline void step_one(const Coeffs<T> &c, T &v, T g, T &m1,
                                T &m2) {
  if (c.kind == EBL_STEP_SGD) {
    v = c.neg_lr * g + v;
  } else if (c.kind == EBL_STEP_MOMENTUM) {
    m1 = g + c.momentum * m1;
    v = c.neg_lr * m1 + v;
  } else {
    m1 = c.one_b1 * g + c.b1 * m1;
    m2 = c.one_b2 * (g * g) + c.b2 * m2;
    T d = sqrt(m2 * c.inv_c2) + c.eps;
    v = c.neg_lr_c1 * (m1 / d) + v;
  }
}

template <typename T>
__global__ void step_kernel(int64_t n, Coeffs<T> c, T *v, const T *g,
                            T *m1, T *m2, const double *gate) {
  if (gate != nullptr && *gate >= 0) return;
  bool moment1 = c.kind != EBL_STEP_SGD, moment2 = c.kind == EBL_STEP_ADAM;
  FOR_CHUNKS(n, base) {
    T vv[UNROLL], gg[UNROLL], a[UNROLL], b[UNROLL];
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      bool in = i < n;
      vv[j] = in ? v[i] : (T)0;
      gg[j] = in ? g[i] : (T)0;
      a[j] = in && moment1 ? m1[i] : (T)0;
      b[j] = in && moment2 ? m2[i] : (T)0;
    }
#pragma unroll
    for (int j = 0; j < UNROLL; j++) {
      int64_t i = base + j * THREADS;
      if (i >= n) continue;
      step_one(c, vv[j], gg[j], a[j], b[j]);
      v[i] = vv[j];
      if (moment1) m1[i] = a[j];
      if (moment2) m2[i] = b[j];
    }
  }
}

extern "C" cudaError_t ebl_gpu_pred_error(ebl_dtype dt, int64_t n,
                                          void *err, const void *v,
                                          const void *mu, double *parts) {
  int blocks = ebl_gpu_fused_blocks(n);
  if (dt == EBL_F32)
    pred_error_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, (float *)err, (const float *)v, (const float *)mu, parts);
  else
    pred_error_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, (double *)err, (const double *)v, (const double *)mu, parts);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_bipc_signals(ebl_dtype dt, int64_t n,
                                            void *sig, void *sig_b,
                                            const void *e_f,
                                            const void *e_b, double lambda,
                                            double *parts) {
  int blocks = ebl_gpu_fused_blocks(n);
  if (dt == EBL_F32)
    bipc_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, (float *)sig, (float *)sig_b, (const float *)e_f,
      (const float *)e_b, (float)lambda, parts);
  else
    bipc_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, (double *)sig, (double *)sig_b, (const double *)e_f,
      (const double *)e_b, lambda, parts);
  return cudaGetLastError();
}

extern "C" cudaError_t ebl_gpu_act_vjp(ebl_dtype dt, int64_t n,
                                       int tanh_act, void *out,
                                       const void *y, const void *dy) {
  if (n == 0) return cudaSuccess;
  int blocks = ebl_gpu_fused_blocks(n);
  if (dt == EBL_F32)
    act_vjp_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, tanh_act != 0, (float *)out, (const float *)y, (const float *)dy);
  else
    act_vjp_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, tanh_act != 0, (double *)out, (const double *)y,
      (const double *)dy);
  return cudaGetLastError();
}

// The step's coefficients rounded to T from double, as the engine's
// axpby and scalar ops round theirs.
template <typename T>
static Coeffs<T> coeffs(const ebl_state_step *s) {
  double c1 = 1.0 - pow(s->beta1, s->t), c2 = 1.0 - pow(s->beta2, s->t);
  Coeffs<T> c = {s->kind, (T)-s->lr, (T)s->momentum,
                 (T)(1.0 - s->beta1), (T)s->beta1, (T)(1.0 - s->beta2),
                 (T)s->beta2, (T)(1.0 / c2), (T)s->eps,
                 (T)(-s->lr / c1)};
  return c;
}

extern "C" cudaError_t ebl_gpu_state_step(ebl_dtype dt, int64_t n,
                                          const ebl_state_step *step,
                                          void *v, const void *g, void *m1,
                                          void *m2) {
  if (n == 0) return cudaSuccess;
  int blocks = ebl_gpu_fused_blocks(n);
  if (dt == EBL_F32)
    step_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, coeffs<float>(step), (float *)v, (const float *)g, (float *)m1,
      (float *)m2, step->gate);
  else
    step_kernel<<<blocks, THREADS, 0, ebl_gpu_stream>>>(
      n, coeffs<double>(step), (double *)v, (const double *)g,
      (double *)m1, (double *)m2, step->gate);
  return cudaGetLastError();
}

// ---- the loop's check

// F = sum coef_i term_i (squared where flagged), in order and without
// fused multiply-adds, as the host sums it (src/engine/ledger.c).
__device__ double ledger_sum(const double *ledger, int n, int stride) {
  double f = 0.0;
  for (int i = 0; i < n; i++) {
    double t = ledger[i], c = ledger[stride + i];
    double e = ledger[2 * stride + i] != 0.0 ? __dmul_rn(__dmul_rn(c, t), t)
                                             : __dmul_rn(c, t);
    f = __dadd_rn(f, e);
  }
  return f;
}

// watch: F of the last step, the step that stopped the loop, the step
// at which F became NaN or Inf (see ebl_relax_check).
__global__ void relax_check_kernel(ebl_relax_check c) {
  double *w = c.watch;
  if (w[1] >= 0) return;
  double f = ledger_sum(c.ledger, c.nterms, c.stride), prev = w[0];
  c.trace[c.k] = f;
  w[0] = f;
  if (c.k == 0) return;
  if (!isfinite(f)) {
    w[1] = w[2] = c.k;
  } else if (fabs(f - prev) <= c.tol * fabs(prev)) {
    w[1] = c.k;
  }
}

extern "C" cudaError_t ebl_gpu_relax_check(const ebl_relax_check *c) {
  relax_check_kernel<<<1, 1, 0, ebl_gpu_stream>>>(*c);
  return cudaGetLastError();
}

/* A stand-in for the CUDA module that runs on the host: the CPU's
   kernels compute, while gpu/memory.c (the caching allocator), gpu/iter.c
   and gpu/backend.c's fused-kernel adaptors run as built for the GPU,
   over the CUDA runtime functions below, which use host memory. The
   fused kernels are written here as gpu/fused.cu computes them. With it
   tests/spec/cuda_spec.lua runs on a machine without a GPU: it checks the
   spec itself, the binding, the core's handling of a second device, the
   engine's use of the fused entries and the allocator's figures, but no
   CUDA code. It needs a program that exports the core's symbols (./ebl
   does; see tests/stand_in/run.sh). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "gpu/gpu.h"

cudaStream_t ebl_gpu_stream;
int ebl_gpu_sm_count = 1;

static ebl_cuda_host host;
static char last_msg[400];

/* ---- the runtime on host memory (gpu/memory.c's needs) */

cudaError_t cudaMalloc(void **p, size_t n) {
  *p = aligned_alloc(256, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFree(void *p) {
  free(p);
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) { return cudaSuccess; }

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  (void)s;
  return cudaSuccess;
}

/* A device of 64 GiB: 8 TiB fails in cudaMalloc's aligned_alloc. */
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
  *free_bytes = *total = (size_t)64 << 30;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n,
                            enum cudaMemcpyKind kind, cudaStream_t s) {
  (void)kind;
  (void)s;
  memcpy(dst, src, n);
  return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t err) {
  (void)err;
  return "stand-in error";
}

/* ---- gpu/context.c's helpers */

ebl_status ebl_gpu_fail(ebl_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return host.fail(status, "%s", last_msg);
}

ebl_status ebl_gpu_check(const char *op, cudaError_t err) {
  if (err == cudaSuccess) return EBL_OK;
  return ebl_gpu_fail(EBL_EDEVICE, "%s: %s", op, cudaGetErrorString(err));
}

void ebl_gpu_defer(ebl_status status) { (void)status; }

ebl_status ebl_gpu_pending(const char *fn) {
  (void)fn;
  return EBL_OK;
}

ebl_status ebl_gpu_read(const char *op, void *dst, const void *dev,
                        size_t nbytes) {
  (void)op;
  memcpy(dst, dev, nbytes);
  return EBL_OK;
}

ebl_status ebl_gpu_read_doubles(const char *op, double *dst,
                                const double *dev, int n) {
  return ebl_gpu_read(op, dst, dev, sizeof(double) * (size_t)n);
}

/* ---- the fused kernels, element for element as gpu/fused.cu */

int ebl_gpu_fused_blocks(int64_t n) {
  int64_t b = (n + 4095) / 4096;
  return (int)(b < 1 ? 1 : b > 1024 ? 1024 : b);
}

cudaError_t ebl_gpu_sum_doubles(const double *parts, int64_t n,
                                double *sum, double mul, double div) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += parts[i];
  *sum = mul * s / div;
  return cudaSuccess;
}

/* Runs BODY with T the C type of dtype dt. */
#define AS_DTYPE(dt, ...)                                             \
  do {                                                                \
    if ((dt) == EBL_F32) {                                            \
      typedef float T;                                                \
      __VA_ARGS__                                                     \
    } else {                                                          \
      typedef double T;                                               \
      __VA_ARGS__                                                     \
    }                                                                 \
  } while (0)

cudaError_t ebl_gpu_pred_error(ebl_dtype dt, int64_t n, void *err,
                               const void *v, const void *mu,
                               double *parts) {
  parts[0] = 0;
  AS_DTYPE(dt, {
    for (int64_t i = 0; i < n; i++) {
      T e = ((const T *)v)[i] - ((const T *)mu)[i];
      ((T *)err)[i] = e;
      parts[0] += (double)e * e;
    }
  });
  for (int b = 1; b < ebl_gpu_fused_blocks(n); b++) parts[b] = 0;
  return cudaSuccess;
}

cudaError_t ebl_gpu_bipc_signals(ebl_dtype dt, int64_t n, void *sig,
                                 void *sig_b, const void *e_f,
                                 const void *e_b, double lambda,
                                 double *parts) {
  parts[0] = 0;
  AS_DTYPE(dt, {
    T l = (T)lambda;
    for (int64_t i = 0; i < n; i++) {
      T r = l * ((const T *)e_b)[i] + ((const T *)e_f)[i];
      ((T *)sig)[i] = r;
      ((T *)sig_b)[i] = r * l;
      parts[0] += (double)r * r;
    }
  });
  for (int b = 1; b < ebl_gpu_fused_blocks(n); b++) parts[b] = 0;
  return cudaSuccess;
}

cudaError_t ebl_gpu_act_vjp(ebl_dtype dt, int64_t n, int tanh_act,
                            void *out, const void *y, const void *dy) {
  AS_DTYPE(dt, {
    for (int64_t i = 0; i < n; i++) {
      T a = ((const T *)y)[i], d = ((const T *)dy)[i];
      ((T *)out)[i] = tanh_act ? d * (1 - a * a) : d * (a * (1 - a));
    }
  });
  return cudaSuccess;
}

cudaError_t ebl_gpu_state_step(ebl_dtype dt, int64_t n,
                               const ebl_state_step *s, void *vp,
                               const void *gp, void *m1p, void *m2p) {
  double c1 = 1.0 - pow(s->beta1, s->t), c2 = 1.0 - pow(s->beta2, s->t);
  if (s->gate != NULL && *s->gate >= 0) return cudaSuccess;
  AS_DTYPE(dt, {
    T *v = vp, *m1 = m1p, *m2 = m2p;
    const T *g = gp;
    for (int64_t i = 0; i < n; i++) {
      if (s->kind == EBL_STEP_SGD) {
        v[i] = (T)-s->lr * g[i] + v[i];
      } else if (s->kind == EBL_STEP_MOMENTUM) {
        m1[i] = g[i] + (T)s->momentum * m1[i];
        v[i] = (T)-s->lr * m1[i] + v[i];
      } else {
        m1[i] = (T)(1 - s->beta1) * g[i] + (T)s->beta1 * m1[i];
        m2[i] = (T)(1 - s->beta2) * (g[i] * g[i]) + (T)s->beta2 * m2[i];
        T d = (T)sqrt(m2[i] * (T)(1 / c2)) + (T)s->eps;
        v[i] = (T)(-s->lr / c1) * (m1[i] / d) + v[i];
      }
    }
  });
  return cudaSuccess;
}

/* Per-row losses through the CPU's loss of one row, as
   gpu/layers.cu's kernels give them: rows without mse's 1/2, and grad of
   the batch mean. */
cudaError_t ebl_gpu_mse_rows(ebl_dtype dt, int n, int k, const void *x,
                             const void *t, void *grad, double *rows) {
  size_t row = (size_t)k * (dt == EBL_F32 ? 4 : 8);
  for (int i = 0; i < n; i++) {
    size_t at = (size_t)i * row;
    void *g = grad ? (char *)grad + at : NULL;
    rows[i] = 2 * ebl_cpu_mse_loss(dt, 1, k, (const char *)x + at,
                                   (const char *)t + at, g);
  }
  if (grad) AS_DTYPE(dt, {
    for (int64_t e = 0; e < (int64_t)n * k; e++) ((T *)grad)[e] /= n;
  });
  return cudaSuccess;
}

cudaError_t ebl_gpu_ce_rows(ebl_dtype dt, int n, int k, const void *x,
                            const int32_t *labels, const void *target,
                            void *grad, double *rows) {
  size_t row = (size_t)k * (dt == EBL_F32 ? 4 : 8);
  for (int i = 0; i < n; i++) {
    size_t at = (size_t)i * row;
    void *g = grad ? (char *)grad + at : NULL;
    rows[i] = ebl_cpu_cross_entropy(dt, 1, k, (const char *)x + at,
                                    labels ? labels + i : NULL,
                                    target ? (const char *)target + at
                                           : NULL, g);
  }
  if (grad) AS_DTYPE(dt, {
    for (int64_t e = 0; e < (int64_t)n * k; e++) ((T *)grad)[e] /= n;
  });
  return cudaSuccess;
}

/* The loop's check, as gpu/fused.cu's kernel does it. */
cudaError_t ebl_gpu_relax_check(const ebl_relax_check *c) {
  double *w = c->watch, f = 0.0, prev = w[0];
  if (w[1] >= 0) return cudaSuccess;
  for (int i = 0; i < c->nterms; i++) {
    double t = c->ledger[i], k = c->ledger[c->stride + i];
    f += c->ledger[2 * c->stride + i] != 0.0 ? k * t * t : k * t;
  }
  c->trace[c->k] = f;
  w[0] = f;
  if (c->k == 0) return cudaSuccess;
  if (!isfinite(f)) w[1] = w[2] = c->k;
  else if (fabs(f - prev) <= c->tol * fabs(prev)) w[1] = c->k;
  return cudaSuccess;
}

/* ---- the module */

extern const ebl_backend ebl_gpu_backend, ebl_cpu_backend;
ebl_status ebl_gpu_memory_stats(ebl_cuda_memory_stats *stats);
ebl_status ebl_gpu_empty_cache(void);

static ebl_backend table;
static int tf32;

static ebl_status synchronize(void) { return EBL_OK; }
static void allow_tf32(int allow) { tf32 = allow; }
static int tf32_allowed(void) { return tf32; }

static ebl_status device_name(char *buf, size_t len) {
  snprintf(buf, len, "CPU stand-in");
  return EBL_OK;
}

static ebl_cuda_module module;

/* The CPU's table, with the allocator and the fused entries of the
   CUDA module's own code. */
__attribute__((visibility("default")))
const ebl_cuda_module *ebl_cuda_entry(const ebl_cuda_host *h) {
  host = *h;
  table = ebl_cpu_backend;
  table.name = "cuda";
  table.alloc = ebl_gpu_backend.alloc;
  table.free = ebl_gpu_backend.free;
  table.alloc_failed = ebl_gpu_backend.alloc_failed;
  table.kernel_status = ebl_gpu_backend.kernel_status;
  table.pred_error = ebl_gpu_backend.pred_error;
  table.bipc_signals = ebl_gpu_backend.bipc_signals;
  table.state_step = ebl_gpu_backend.state_step;
  table.act_vjp = ebl_gpu_backend.act_vjp;
  table.loss_into = ebl_gpu_backend.loss_into;
  table.relax_check = ebl_gpu_backend.relax_check;
  module = (ebl_cuda_module){&table, ebl_gpu_memory_stats,
                             ebl_gpu_empty_cache, synchronize, allow_tf32,
                             tf32_allowed, device_name, NULL};
  return &module;
}

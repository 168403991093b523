/* Matrix products through cuBLAS. ebl's batches are row-major (BLAS's
   C convention); cuBLAS is column-major, so C = A B is computed as
   C^T = B^T A^T: the operands swap places and keep their transposes.
   One product goes to ?gemm; a batch whose offsets step evenly (a step
   of 0 for a broadcast operand) to ?gemmStridedBatched; any other batch
   to ?gemmBatched with arrays of pointers. Float32 is full fp32 unless
   TF32 was allowed (CUBLAS_DEFAULT_MATH never picks TF32 by itself). */
#include <pthread.h>
#include <stdlib.h>

#include <cublas_v2.h>

#include "gpu/gpu.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t handle;
static int tf32;

static ebl_status blas_fail(const char *op, cublasStatus_t st) {
  return ebl_gpu_fail(EBL_EDEVICE, "%s: %s", op, cublasGetStatusString(st));
}

/* The handle, created on first use, on ebl's stream, in the math mode
   the TF32 setting asks for. */
static ebl_status blas_handle(cublasHandle_t *h) {
  ebl_status st = EBL_OK;
  pthread_mutex_lock(&lock);
  if (!handle) {
    cublasStatus_t s = cublasCreate(&handle);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasSetStream(handle, ebl_gpu_stream);
    if (s == CUBLAS_STATUS_SUCCESS)
      s = cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                         : CUBLAS_DEFAULT_MATH);
    if (s != CUBLAS_STATUS_SUCCESS) {
      if (handle) cublasDestroy(handle);
      handle = NULL;
      st = blas_fail("cublasCreate", s);
    }
  }
  *h = handle;
  pthread_mutex_unlock(&lock);
  return st;
}

void ebl_gpu_blas_set_tf32(int allow) {
  pthread_mutex_lock(&lock);
  tf32 = allow != 0;
  if (handle)
    cublasSetMathMode(handle, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                   : CUBLAS_DEFAULT_MATH);
  pthread_mutex_unlock(&lock);
}

int ebl_gpu_blas_tf32(void) { return tf32; }

/* ---- one product and strided batches */

/* Nonzero when off[i] = off[0] + i * step for every i. */
static int even_steps(const int64_t *off, int64_t count, int64_t *step) {
  *step = count > 1 ? off[1] - off[0] : 0;
  for (int64_t i = 2; i < count; i++)
    if (off[i] - off[i - 1] != *step) return 0;
  return 1;
}

/* The cuBLAS form of g's transposes (see the file's comment). */
static cublasOperation_t op_of(int trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

/* The whole batch as one strided call (count 1 included). */
static cublasStatus_t strided(cublasHandle_t h, const ebl_gemm_batch *g,
                              int64_t sa, int64_t sb, int64_t sc) {
  int m = (int)g->m, n = (int)g->n, k = (int)g->k, count = (int)g->count;
  cublasOperation_t ta = op_of(g->trans_a), tb = op_of(g->trans_b);
  if (g->dtype == EBL_F32) {
    float alpha = (float)g->alpha, beta = (float)g->beta;
    const float *a = (const float *)g->a + g->a_off[0];
    const float *b = (const float *)g->b + g->b_off[0];
    float *c = (float *)g->c + g->c_off[0];
    if (count == 1)
      return cublasSgemm(h, tb, ta, n, m, k, &alpha, b, (int)g->ldb, a,
                         (int)g->lda, &beta, c, (int)g->ldc);
    return cublasSgemmStridedBatched(h, tb, ta, n, m, k, &alpha, b,
                                     (int)g->ldb, sb, a, (int)g->lda, sa,
                                     &beta, c, (int)g->ldc, sc, count);
  }
  double alpha = g->alpha, beta = g->beta;
  const double *a = (const double *)g->a + g->a_off[0];
  const double *b = (const double *)g->b + g->b_off[0];
  double *c = (double *)g->c + g->c_off[0];
  if (count == 1)
    return cublasDgemm(h, tb, ta, n, m, k, &alpha, b, (int)g->ldb, a,
                       (int)g->lda, &beta, c, (int)g->ldc);
  return cublasDgemmStridedBatched(h, tb, ta, n, m, k, &alpha, b,
                                   (int)g->ldb, sb, a, (int)g->lda, sa,
                                   &beta, c, (int)g->ldc, sc, count);
}

/* ---- batches of uneven offsets: arrays of pointers */

/* Device arrays of the count pointers to a, b and c (in that order)
   in *arrays, allocated from the caching allocator. */
static ebl_status pointer_arrays(const ebl_gemm_batch *g, void ***arrays) {
  int64_t count = g->count;
  size_t es = ebl_gpu_dtype_size(g->dtype);
  size_t bytes = 3 * (size_t)count * sizeof(void *);
  void **host = malloc(bytes);
  if (!host) return ebl_gpu_fail(EBL_ENOMEM, "matmul: out of memory");
  for (int64_t i = 0; i < count; i++) {
    host[i] = (char *)g->a + g->a_off[i] * es;
    host[count + i] = (char *)g->b + g->b_off[i] * es;
    host[2 * count + i] = (char *)g->c + g->c_off[i] * es;
  }
  void *dev;
  ebl_status st = ebl_gpu_scratch("matmul", bytes, &dev);
  if (st == EBL_OK) {
    cudaError_t err = cudaMemcpyAsync(dev, host, bytes,
                                      cudaMemcpyHostToDevice,
                                      ebl_gpu_stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(ebl_gpu_stream);
    st = ebl_gpu_check("matmul", err);
    if (st != EBL_OK) ebl_gpu_free(dev);
  }
  free(host);
  *arrays = st == EBL_OK ? dev : NULL;
  return st;
}

static cublasStatus_t pointered(cublasHandle_t h, const ebl_gemm_batch *g,
                                void **p) {
  int m = (int)g->m, n = (int)g->n, k = (int)g->k, count = (int)g->count;
  cublasOperation_t ta = op_of(g->trans_a), tb = op_of(g->trans_b);
  if (g->dtype == EBL_F32) {
    float alpha = (float)g->alpha, beta = (float)g->beta;
    return cublasSgemmBatched(h, tb, ta, n, m, k, &alpha,
                              (const float *const *)(p + count),
                              (int)g->ldb, (const float *const *)p,
                              (int)g->lda, &beta,
                              (float *const *)(p + 2 * count), (int)g->ldc,
                              count);
  }
  double alpha = g->alpha, beta = g->beta;
  return cublasDgemmBatched(h, tb, ta, n, m, k, &alpha,
                            (const double *const *)(p + count),
                            (int)g->ldb, (const double *const *)p,
                            (int)g->lda, &beta,
                            (double *const *)(p + 2 * count), (int)g->ldc,
                            count);
}

ebl_status ebl_gpu_gemm(const ebl_gemm_batch *g) {
  cublasHandle_t h;
  int64_t sa, sb, sc;
  if (g->count > 2147483647)
    return ebl_gpu_fail(EBL_EARG, "matmul: batch of %lld products is too "
                        "large", (long long)g->count);
  if (g->count == 0) return EBL_OK;
  EBL_GPU_TRY(blas_handle(&h));
  if (even_steps(g->a_off, g->count, &sa) &&
      even_steps(g->b_off, g->count, &sb) &&
      even_steps(g->c_off, g->count, &sc)) {
    cublasStatus_t s = strided(h, g, sa, sb, sc);
    return s == CUBLAS_STATUS_SUCCESS ? EBL_OK : blas_fail("matmul", s);
  }
  void **arrays;
  EBL_GPU_TRY(pointer_arrays(g, &arrays));
  cublasStatus_t s = pointered(h, g, arrays);
  ebl_gpu_free(arrays);
  return s == CUBLAS_STATUS_SUCCESS ? EBL_OK : blas_fail("matmul", s);
}

/* ---- the reference timing of cuBLAS alone */

/* Mean milliseconds of iters row-major (m, k) x (k, n) float products
   on fresh uniform data. */
double ebl_gpu_blas_reference(int m, int n, int k, int iters) {
  cublasHandle_t h;
  size_t bytes[3] = {(size_t)m * k * 4, (size_t)k * n * 4,
                     (size_t)m * n * 4};
  float *buf[3] = {NULL, NULL, NULL}, alpha = 1, beta = 0, ms = -1;
  cudaEvent_t start = NULL, stop = NULL;
  if (blas_handle(&h) != EBL_OK || iters < 1) return -1;
  for (int i = 0; i < 3; i++) {
    buf[i] = ebl_gpu_alloc(bytes[i]);
    if (buf[i])
      ebl_gpu_random(buf[i], EBL_F32, (int64_t)(bytes[i] / 4),
                     EBL_RANDOM_UNIFORM, -1, 1, 99, 0);
  }
  int ok = buf[0] && buf[1] && buf[2] &&
           cudaEventCreate(&start) == cudaSuccess &&
           cudaEventCreate(&stop) == cudaSuccess;
  for (int r = 0; ok && r <= iters; r++) {
    if (r == 1) cudaEventRecord(start, ebl_gpu_stream);
    ok = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, buf[1],
                     n, buf[0], k, &beta, buf[2], n) ==
         CUBLAS_STATUS_SUCCESS;
  }
  if (ok) ok = cudaEventRecord(stop, ebl_gpu_stream) == cudaSuccess &&
               cudaEventSynchronize(stop) == cudaSuccess &&
               cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  for (int i = 0; i < 3; i++) ebl_gpu_free(buf[i]);
  return ok ? ms / iters : -1;
}

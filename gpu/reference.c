/* Timings of the vendor libraries alone, the yardsticks of
   bench/bench_cuda.c: cuBLAS's sgemm, cuDNN's forward convolution and
   the driver's device-to-device copy, each timed with CUDA events on
   ebl's stream after one warm-up run. */
#include "gpu/gpu.h"

double ebl_gpu_blas_reference(int m, int n, int k, int iters);
double ebl_gpu_conv_reference(const ebl_conv_geom *g, int iters);

/* A conv2d of stride 1 and padding pad on x (n, c_in, h, w). */
static double conv2d(int n, int c_in, int h, int w, int c_out, int k,
                     int pad, int iters) {
  ebl_conv_geom g = {
    .n = n, .c_in = c_in, .h_in = h, .w_in = w, .c_out = c_out, .kh = k,
    .kw = k, .stride_h = 1, .stride_w = 1, .pad_h = pad, .pad_w = pad,
    .dil_h = 1, .dil_w = 1, .groups = 1,
    .h_out = h + 2 * pad - k + 1, .w_out = w + 2 * pad - k + 1};
  if (g.h_out < 1 || g.w_out < 1) return -1;
  return ebl_gpu_conv_reference(&g, iters);
}

/* cudaMemcpyAsync of nbytes between two device blocks. */
static double copy(size_t nbytes, int iters) {
  void *src = ebl_gpu_alloc(nbytes), *dst = ebl_gpu_alloc(nbytes);
  cudaEvent_t start = NULL, stop = NULL;
  float ms = -1;
  int ok = src && dst && iters > 0 &&
           cudaMemsetAsync(src, 1, nbytes, ebl_gpu_stream) == cudaSuccess &&
           cudaEventCreate(&start) == cudaSuccess &&
           cudaEventCreate(&stop) == cudaSuccess;
  for (int r = 0; ok && r <= iters; r++) {
    if (r == 1) cudaEventRecord(start, ebl_gpu_stream);
    ok = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice,
                         ebl_gpu_stream) == cudaSuccess;
  }
  if (ok) ok = cudaEventRecord(stop, ebl_gpu_stream) == cudaSuccess &&
               cudaEventSynchronize(stop) == cudaSuccess &&
               cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  ebl_gpu_free(src);
  ebl_gpu_free(dst);
  return ok ? ms / iters : -1;
}

const ebl_cuda_reference ebl_gpu_reference = {
  .sgemm = ebl_gpu_blas_reference,
  .conv2d = conv2d,
  .copy = copy,
};

/* Benchmarks of the CUDA backend: matmul against cuBLAS alone (2048,
   4096 and the MLP's shapes), conv2d against cuDNN alone (batch 128,
   32x32, 3x3, 64 -> 64), elementwise add, mul and tanh and the fused
   engine kernels as a fraction of the measured device-to-device copy
   bandwidth (goal 80%). ebl's times are wall time over back-to-back
   calls ended by a synchronisation, so ebl's host work per call counts;
   the libraries' are CUDA events around the bare calls. Each figure is
   the best of three runs. Without a GPU it says so and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cuda.h"
#include "nn.h"

#define REPEATS 3

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Stops the benchmark on a failure (a benchmark has no recovery). */
static void must(ebl_status st, const char *what) {
  if (st == EBL_OK) return;
  fprintf(stderr, "bench_cuda: %s: %s\n", what, ebl_error());
  exit(1);
}

/* A float32 GPU tensor of shape, uniform in [-1, 1). */
static ebl_tensor gpu_rand(int ndim, const int64_t *shape) {
  ebl_tensor t;
  must(ebl_tensor_empty(&t, EBL_F32, ndim, shape, EBL_CUDA), "empty");
  must(ebl_fill_rand(&t, -1, 1), "rand");
  return t;
}

/* One benchmark: fn(ctx) queues one call. */
typedef struct job {
  void (*fn)(const struct job *);
  const ebl_tensor *t[5];
  double a;
  ebl_state_step step;
} job;

/* Milliseconds per call: one warm-up, then iters calls, best of
   REPEATS. */
static double time_ms(const job *j, int iters) {
  double best = 1e30;
  j->fn(j);
  must(ebl_cuda_synchronize(), "synchronize");
  for (int r = 0; r < REPEATS; r++) {
    double t0 = now();
    for (int i = 0; i < iters; i++) j->fn(j);
    must(ebl_cuda_synchronize(), "synchronize");
    double ms = (now() - t0) * 1e3 / iters;
    if (ms < best) best = ms;
  }
  return best;
}

/* The best of REPEATS reference timings. */
static double best_of(double a, double b, double c) {
  double m = a < b ? a : b;
  return m < c ? m : c;
}

/* ---- the jobs */

static void do_add(const job *j) {
  must(ebl_binary(EBL_ADD, j->t[0], j->t[1], j->t[2]), "add");
}
static void do_mul(const job *j) {
  must(ebl_binary(EBL_MUL, j->t[0], j->t[1], j->t[2]), "mul");
}
static void do_tanh(const job *j) {
  must(ebl_unary(EBL_TANH, j->t[0], j->t[1], 0, 0), "tanh");
}
static void do_matmul(const job *j) {
  must(ebl_matmul(j->t[0], j->t[1], j->t[2]), "matmul");
}
static void do_conv(const job *j) {
  ebl_conv_opts o = ebl_conv_opts_default();
  o.padding[0] = o.padding[1] = 1;
  must(ebl_conv2d(j->t[0], j->t[1], j->t[2], NULL, &o), "conv2d");
}
static void do_pred_error(const job *j) {
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  static double *sumsq;              /* one double on the device */
  if (sumsq == NULL && (sumsq = be->alloc(sizeof *sumsq)) == NULL)
    must(EBL_ENOMEM, "pred_error");
  must(be->pred_error(j->t[0], j->t[1], j->t[2], j->a ? sumsq : NULL),
       "pred_error");
}
static void do_bipc(const job *j) {
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  must(be->bipc_signals(j->t[0], j->t[1], j->t[2], j->t[3], 0.5, NULL),
       "bipc_signals");
}
static void do_act_vjp(const job *j) {
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  must(be->act_vjp(EBL_TANH, j->t[0], j->t[1], j->t[2]), "act_vjp");
}
static void do_step(const job *j) {
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  must(be->state_step(&j->step, j->t[0], j->t[1], j->t[2], j->t[3]),
       "state_step");
}

/* ---- the sections; each prints its lines and feeds the table */

static double copy_gbs;        /* device-to-device copy, read + write */

static void bench_copy(const ebl_cuda_reference *ref) {
  size_t bytes = (size_t)1 << 30;
  double ms = best_of(ref->copy(bytes, 20), ref->copy(bytes, 20),
                      ref->copy(bytes, 20));
  copy_gbs = 2.0 * bytes / (ms * 1e6);
  printf("copy       device to device, 1 GiB      %8.0f GB/s\n", copy_gbs);
}

/* Elementwise ops on 2^28 floats (1 GiB per tensor). */
static void bench_elementwise(void) {
  int64_t n = (int64_t)1 << 28;
  ebl_tensor a = gpu_rand(1, &n), b = gpu_rand(1, &n), c = gpu_rand(1, &n);
  struct { const char *name; void (*fn)(const job *); int tensors; } ops[] =
    {{"add", do_add, 3}, {"mul", do_mul, 3}, {"tanh", do_tanh, 2}};
  for (int i = 0; i < 3; i++) {
    job j = {ops[i].fn, {&c, &a, &b}, 0, {0}};
    double ms = time_ms(&j, 20);
    double gbs = ops[i].tensors * 4.0 * n / (ms * 1e6);
    printf("%-10s float32, 2^28 elements      %8.0f GB/s  %5.1f%% of "
           "copy\n", ops[i].name, gbs, 100 * gbs / copy_gbs);
  }
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
  ebl_tensor_release(&c);
}

/* ebl_matmul of (m, k) by (k, n) against cuBLAS's sgemm alone. */
static void bench_matmul(const ebl_cuda_reference *ref, int64_t m,
                         int64_t k, int64_t n, int iters) {
  int64_t sa[2] = {m, k}, sb[2] = {k, n}, sc[2] = {m, n};
  ebl_tensor a = gpu_rand(2, sa), b = gpu_rand(2, sb), c = gpu_rand(2, sc);
  job j = {do_matmul, {&c, &a, &b}, 0, {0}};
  double ms = time_ms(&j, iters);
  double lib = best_of(ref->sgemm((int)m, (int)n, (int)k, iters),
                       ref->sgemm((int)m, (int)n, (int)k, iters),
                       ref->sgemm((int)m, (int)n, (int)k, iters));
  double flop = 2.0 * m * n * k;
  printf("matmul     %5lldx%5lldx%5lld  ebl %9.1f us %6.1f TFLOP/s  "
         "cuBLAS %9.1f us %6.1f TFLOP/s  ebl/cuBLAS %.2f\n", (long long)m,
         (long long)k, (long long)n, ms * 1e3, flop / (ms * 1e9),
         lib * 1e3, flop / (lib * 1e9), lib / ms);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
  ebl_tensor_release(&c);
}

/* conv2d of x (128, 64, 32, 32) with 64 3x3 filters, padding 1. */
static void bench_conv(const ebl_cuda_reference *ref) {
  int64_t sx[4] = {128, 64, 32, 32}, sw[4] = {64, 64, 3, 3};
  ebl_tensor x = gpu_rand(4, sx), w = gpu_rand(4, sw), y = gpu_rand(4, sx);
  job j = {do_conv, {&y, &x, &w}, 0, {0}};
  double ms = time_ms(&j, 20);
  double lib = best_of(ref->conv2d(128, 64, 32, 32, 64, 3, 1, 20),
                       ref->conv2d(128, 64, 32, 32, 64, 3, 1, 20),
                       ref->conv2d(128, 64, 32, 32, 64, 3, 1, 20));
  double flop = 2.0 * 128 * 64 * 32 * 32 * 64 * 9;
  printf("conv2d     128x64x32x32, 3x3 -> 64  ebl %8.3f ms %5.1f TFLOP/s  "
         "cuDNN %8.3f ms %5.1f TFLOP/s  ebl/cuDNN %.2f\n", ms,
         flop / (ms * 1e9), lib, flop / (lib * 1e9), lib / ms);
  ebl_tensor_release(&x);
  ebl_tensor_release(&w);
  ebl_tensor_release(&y);
}

/* The fused kernels on 2^26 floats per operand; bytes as gpu/fused.cu
   counts them. */
static void bench_fused(void) {
  int64_t n = (int64_t)1 << 26;
  ebl_tensor t[4];
  for (int i = 0; i < 4; i++) t[i] = gpu_rand(1, &n);
  struct { const char *name; job j; int moved; } cases[] = {
    {"pred_error (e = v - mu)", {do_pred_error, {&t[0], &t[1], &t[2]}, 0,
                                 {0}}, 3},
    {"pred_error + sum e^2", {do_pred_error, {&t[0], &t[1], &t[2]}, 1,
                              {0}}, 3},
    {"bipc_signals", {do_bipc, {&t[0], &t[1], &t[2], &t[3]}, 0, {0}}, 4},
    {"act_vjp tanh", {do_act_vjp, {&t[0], &t[1], &t[2]}, 0, {0}}, 3},
    {"state_step sgd", {do_step, {&t[0], &t[1], &t[2], &t[3]}, 0,
                        {EBL_STEP_SGD, 1e-3, 0.9, 0.9, 0.999, 1e-8, 1,
                         NULL}}, 3},
    {"state_step momentum", {do_step, {&t[0], &t[1], &t[2], &t[3]}, 0,
                             {EBL_STEP_MOMENTUM, 1e-3, 0.9, 0.9, 0.999,
                              1e-8, 1, NULL}}, 5},
    {"state_step adam", {do_step, {&t[0], &t[1], &t[2], &t[3]}, 0,
                         {EBL_STEP_ADAM, 1e-3, 0.9, 0.9, 0.999, 1e-8, 1,
                          NULL}},
     7},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    double ms = time_ms(&cases[i].j, 20);
    double gbs = cases[i].moved * 4.0 * n / (ms * 1e6);
    printf("fused      %-25s %8.0f GB/s  %5.1f%% of copy\n", cases[i].name,
           gbs, 100 * gbs / copy_gbs);
  }
  for (int i = 0; i < 4; i++) ebl_tensor_release(&t[i]);
}

int main(void) {
  char name[256] = "";
  if (!ebl_cuda_available()) {
    printf("bench_cuda: no GPU (%s)\n", ebl_cuda_unavailable_reason());
    return 0;
  }
  const ebl_cuda_reference *ref = ebl_cuda_reference_timings();
  ebl_cuda_device_name(name, sizeof name);
  printf("== bench_cuda on %s (float32, TF32 off)\n", name);
  ebl_manual_seed(1);
  bench_copy(ref);
  bench_elementwise();
  bench_matmul(ref, 2048, 2048, 2048, 20);
  bench_matmul(ref, 4096, 4096, 4096, 10);
  bench_matmul(ref, 128, 784, 256, 200);
  bench_matmul(ref, 128, 256, 256, 200);
  bench_matmul(ref, 128, 256, 10, 200);
  bench_conv(ref);
  bench_fused();
  return 0;
}

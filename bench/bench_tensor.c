/* Benchmarks of the tensor core: ebl matmul against raw cblas_sgemm
   (GFLOP/s and ratio), elementwise add/mul/tanh on 16M floats against
   measured memcpy bandwidth, and a mixed loop of gemm and elementwise
   ops, each with 1 and 2 threads. Times are the best of several runs. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* A random float32 tensor (fails loudly: a benchmark has no recovery). */
static ebl_tensor randn(int ndim, const int64_t *shape) {
  ebl_tensor t;
  if (ebl_tensor_randn(&t, EBL_F32, ndim, shape, EBL_CPU) != EBL_OK) {
    fprintf(stderr, "bench: %s\n", ebl_error());
    exit(1);
  }
  return t;
}

/* ---- matmul */

typedef struct mm_case {
  const char *name;
  int64_t m, k, n;
  int trans_b;          /* b given as a transposed (n, k) view */
} mm_case;

/* Seconds of one call of ebl_matmul. */
static double time_ebl(const ebl_tensor *c, const ebl_tensor *a,
                       const ebl_tensor *b) {
  double t0 = now();
  if (ebl_matmul(c, a, b) != EBL_OK) {
    fprintf(stderr, "bench: %s\n", ebl_error());
    exit(1);
  }
  return now() - t0;
}

/* Seconds of one raw sgemm call on the same memory. */
static double time_blas(const mm_case *mc, const float *a, const float *b,
                        float *c) {
  double t0 = now();
  cblas_sgemm(CblasRowMajor, CblasNoTrans,
              mc->trans_b ? CblasTrans : CblasNoTrans, (int)mc->m,
              (int)mc->n, (int)mc->k, 1.0f, a, (int)mc->k, b,
              mc->trans_b ? (int)mc->k : (int)mc->n, 0.0f, c, (int)mc->n);
  return now() - t0;
}

static void bench_matmul(int threads) {
  static const mm_case cases[] = {
    {"(128x784)@(784x256)", 128, 784, 256, 0},
    {"(128x784)@(256x784)^T", 128, 784, 256, 1},
    {"(128x256)@(256x256)", 128, 256, 256, 0},
    {"2048 square", 2048, 2048, 2048, 0},
    {"2048 square, b^T", 2048, 2048, 2048, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const mm_case *mc = &cases[i];
    ebl_tensor a = randn(2, (int64_t[]){mc->m, mc->k});
    ebl_tensor braw = mc->trans_b ? randn(2, (int64_t[]){mc->n, mc->k})
                                  : randn(2, (int64_t[]){mc->k, mc->n});
    ebl_tensor b, c;
    if (mc->trans_b) ebl_tensor_transpose(&b, &braw, 0, 1);
    else ebl_tensor_view(&b, &braw);
    ebl_tensor_empty(&c, EBL_F32, 2, (int64_t[]){mc->m, mc->n}, EBL_CPU);
    double flop = 2.0 * mc->m * mc->n * mc->k;
    int reps = flop > 1e9 ? 6 : 300;
    double te = 1e30, tb = 1e30;
    for (int r = 0; r < reps; r++) {     /* interleaved: same noise */
      double t1 = time_ebl(&c, &a, &b);
      double t2 = time_blas(mc, ebl_tensor_data(&a),
                            ebl_tensor_data(&braw), ebl_tensor_data(&c));
      if (t1 < te) te = t1;
      if (t2 < tb) tb = t2;
    }
    printf("  %-24s %d thr  ebl %7.2f GF/s  blas %7.2f GF/s  ratio %4.0f%%\n",
           mc->name, threads, flop / te * 1e-9, flop / tb * 1e-9,
           100 * tb / te);
    ebl_tensor_release(&a);
    ebl_tensor_release(&b);
    ebl_tensor_release(&braw);
    ebl_tensor_release(&c);
  }
}

/* ---- elementwise */

/* Best memcpy bandwidth (bytes read + written per second), the copy
   split among the threads. */
static double memcpy_bandwidth(char *dst, const char *src, size_t bytes,
                               int threads) {
  double best = 1e30;
  for (int r = 0; r < 8; r++) {
    double t0 = now();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < threads; p++) {
      size_t lo = bytes / threads * p;
      size_t hi = p == threads - 1 ? bytes : bytes / threads * (p + 1);
      memcpy(dst + lo, src + lo, hi - lo);
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  return 2.0 * bytes / best;
}

typedef enum ew_kind { EW_ADD, EW_MUL, EW_TANH } ew_kind;

/* Best time of one elementwise op into a preallocated output. */
static double time_op(ew_kind kind, const ebl_tensor *out,
                      const ebl_tensor *a, const ebl_tensor *b) {
  double best = 1e30;
  for (int r = 0; r < 8; r++) {
    double t0 = now();
    ebl_status st = kind == EW_ADD ? ebl_binary(EBL_ADD, out, a, b)
                  : kind == EW_MUL ? ebl_binary(EBL_MUL, out, a, b)
                  : ebl_unary(EBL_TANH, out, a, 0, 0);
    if (st != EBL_OK) {
      fprintf(stderr, "bench: %s\n", ebl_error());
      exit(1);
    }
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  return best;
}

static void bench_elementwise(int threads) {
  int64_t n = (int64_t)1 << 24;
  ebl_tensor a = randn(1, &n), b = randn(1, &n), out = randn(1, &n);
  size_t bytes = (size_t)n * 4;
  double bw = memcpy_bandwidth(ebl_tensor_data(&out), ebl_tensor_data(&a),
                               bytes, threads);
  printf("  memcpy 64 MB            %d thr  %6.2f GB/s\n", threads,
         bw * 1e-9);
  static const char *names[] = {"add", "mul", "tanh"};
  for (int k = EW_ADD; k <= EW_TANH; k++) {
    double t = time_op(k, &out, &a, &b);
    double moved = (k == EW_TANH ? 2.0 : 3.0) * bytes;
    printf("  %-4s 16M floats         %d thr  %6.2f GB/s  %5.1f ms  "
           "%4.0f%% of memcpy\n", names[k], threads, moved / t * 1e-9,
           t * 1e3, 100 * moved / t / bw);
  }
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
  ebl_tensor_release(&out);
}

/* ---- gemm and elementwise interleaved, as a training step does */

static void bench_mixed(int threads) {
  ebl_tensor x = randn(2, (int64_t[]){256, 784});
  ebl_tensor w = randn(2, (int64_t[]){784, 512});
  ebl_tensor h = randn(2, (int64_t[]){256, 512});
  ebl_tensor bias = randn(1, (int64_t[]){512});
  double best = 1e30;
  for (int r = 0; r < 5; r++) {
    double t0 = now();
    for (int i = 0; i < 20; i++) {
      ebl_matmul(&h, &x, &w);
      ebl_binary(EBL_ADD, &h, &h, &bias);
      ebl_unary(EBL_TANH, &h, &h, 0, 0);
    }
    double dt = (now() - t0) / 20;
    if (dt < best) best = dt;
  }
  printf("  mixed step (256x784 @ 784x512, +bias, tanh)  %d thr  %6.3f ms\n",
         threads, best * 1e3);
  ebl_tensor_release(&x);
  ebl_tensor_release(&w);
  ebl_tensor_release(&h);
  ebl_tensor_release(&bias);
}

/* Arguments (both optional): a thread count to run alone, and one
   section ("matmul", "elementwise" or "mixed"). */
int main(int argc, char **argv) {
  int only = argc > 1 ? atoi(argv[1]) : 0;
  const char *section = argc > 2 ? argv[2] : "";
  ebl_manual_seed(1);
  printf("bench_tensor (OpenBLAS: %s)\n", openblas_get_config());
  for (int threads = 1; threads <= 2; threads++) {
    if (only && threads != only) continue;
    ebl_set_num_threads(threads);
    if (!*section || strcmp(section, "matmul") == 0) bench_matmul(threads);
    if (!*section || strcmp(section, "elementwise") == 0)
      bench_elementwise(threads);
    if (!*section || strcmp(section, "mixed") == 0) bench_mixed(threads);
  }
  return 0;
}

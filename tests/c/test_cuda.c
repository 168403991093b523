/* Tests of the CUDA backend through the core's C API: the fused engine
   kernels against the CPU's unfused steps, gemm with alpha and beta,
   copies into strided views across devices, the caching allocator (its
   figures, no cudaMalloc in steady state, out of memory). Skipped where
   no GPU is usable; tests/spec/cuda_spec.lua covers the tensor API. */
#include <math.h>
#include <stdlib.h>

#include "backend.h"
#include "cuda.h"
#include "helpers.h"
#include "tap.h"

/* A float32 tensor of n values uniform in [lo, hi) on device. */
static ebl_tensor uniform(int64_t n, double lo, double hi,
                          ebl_device device) {
  ebl_tensor t;
  memset(&t, 0, sizeof t);
  if (ebl_tensor_empty(&t, EBL_F32, 1, &n, device) != EBL_OK ||
      ebl_fill_rand(&t, lo, hi) != EBL_OK)
    printf("# uniform failed: %s\n", ebl_error());
  return t;
}

/* t on device (a new tensor). */
static ebl_tensor on(const ebl_tensor *t, ebl_device device) {
  ebl_tensor r;
  memset(&r, 0, sizeof r);
  if (ebl_to_device(&r, t, device) != EBL_OK)
    printf("# to_device failed: %s\n", ebl_error());
  return r;
}

/* max |a - b| / max(max |b|, tiny) over two tensors of one shape (any
   devices), in double on the host. */
static double max_rel(const ebl_tensor *a, const ebl_tensor *b) {
  int64_t n = ebl_tensor_numel(b);
  double *x = malloc(sizeof(double) * (size_t)n);
  double *y = malloc(sizeof(double) * (size_t)n);
  double worst = INFINITY, top = 1e-30;
  if (x && y && ebl_tensor_to_buffer(a, x, EBL_F64) == EBL_OK &&
      ebl_tensor_to_buffer(b, y, EBL_F64) == EBL_OK) {
    worst = 0;
    for (int64_t i = 0; i < n; i++) {
      worst = fmax(worst, fabs(x[i] - y[i]));
      top = fmax(top, fabs(y[i]));
    }
  }
  free(x);
  free(y);
  return worst / top;
}

/* Sum of squares of a dense float32 host tensor, in float64 element by
   element (a float32 norm squared is off by float32's rounding). */
static double host_sumsq(const ebl_tensor *t) {
  const float *x = ebl_tensor_data(t);
  double sum = 0.0;
  for (int64_t i = 0; i < ebl_tensor_numel(t); i++)
    sum += (double)x[i] * (double)x[i];
  return sum;
}

static void release(ebl_tensor *t, int n) {
  for (int i = 0; i < n; i++) ebl_tensor_release(&t[i]);
}

/* A float64 tensor of n zeros on the GPU, for sums kernels write. */
static ebl_tensor doubles(int64_t n) {
  ebl_tensor t;
  ebl_tensor_zeros(&t, EBL_F64, 1, &n, EBL_CUDA);
  return t;
}

/* e = v - mu with its energy in one pass equals the CPU's subtraction
   (bit for bit) and its sum of squares, for n elements (past 2^22 every
   block of the kernel loops over several chunks). */
static void test_pred_error(const ebl_backend *be, int64_t n) {
  ebl_tensor t[6];
  t[0] = uniform(n, -1, 1, EBL_CPU);
  t[1] = uniform(n, -1, 1, EBL_CPU);
  t[2] = on(&t[0], EBL_CUDA);
  t[3] = on(&t[1], EBL_CUDA);
  ebl_tensor_empty(&t[4], EBL_F32, 1, &n, EBL_CUDA);
  ebl_binary_new(EBL_SUB, &t[5], &t[0], &t[1]);
  ebl_tensor sum = doubles(1);
  CHECK(be->pred_error(&t[4], &t[2], &t[3], ebl_tensor_data(&sum)) ==
        EBL_OK, "pred_error runs on %lld (%s)", (long long)n, ebl_error());
  CHECK(max_rel(&t[4], &t[5]) == 0, "pred_error: e = v - mu exactly");
  CHECK_CLOSE(at(&sum, 0), host_sumsq(&t[5]), 1e-9,
              "pred_error: the sum of squares of %lld", (long long)n);
  ebl_tensor_release(&sum);
  CHECK(be->pred_error(&t[4], &t[2], &t[3], NULL) == EBL_OK,
        "pred_error without the sum");
  CHECK(be->pred_error(&t[4], &t[0], &t[3], NULL) == EBL_EARG,
        "pred_error refuses a cpu operand (%s)", ebl_error());
  release(t, 6);
}

/* BiPC's r = e_f + lambda e_b, sig_b = lambda r and ||r||^2. */
static void test_bipc(const ebl_backend *be) {
  int64_t n = 65536 * 3 + 5;
  double lambda = 0.3;
  ebl_tensor t[8], sum = doubles(1);
  t[0] = uniform(n, -1, 1, EBL_CPU);
  t[1] = uniform(n, -1, 1, EBL_CPU);
  t[2] = on(&t[0], EBL_CUDA);
  t[3] = on(&t[1], EBL_CUDA);
  ebl_tensor_empty(&t[4], EBL_F32, 1, &n, EBL_CUDA);
  ebl_tensor_empty(&t[5], EBL_F32, 1, &n, EBL_CUDA);
  ebl_tensor_clone(&t[6], &t[0]);
  ebl_axpby(&t[6], lambda, &t[1], 1.0);
  ebl_binary_scalar_new(EBL_MUL, &t[7], &t[6], lambda);
  CHECK(be->bipc_signals(&t[4], &t[5], &t[2], &t[3], lambda,
                         ebl_tensor_data(&sum)) == EBL_OK,
        "bipc_signals runs (%s)", ebl_error());
  CHECK(max_rel(&t[4], &t[6]) < 1e-6, "bipc_signals: sig = e_f + l e_b");
  CHECK(max_rel(&t[5], &t[7]) < 1e-6, "bipc_signals: sig_b = l sig");
  CHECK_CLOSE(at(&sum, 0), host_sumsq(&t[6]), 1e-6,
              "bipc_signals: ||sig||^2");
  release(t, 8);
  ebl_tensor_release(&sum);
}

/* tanh's and sigmoid's VJP from the output, in place, against the
   CPU's kernel. */
static void test_act_vjp(const ebl_backend *be) {
  const ebl_backend *cpu = ebl_backend_for(EBL_CPU);
  int64_t n = 65536 * 3 + 5;
  ebl_unary_op acts[2] = {EBL_TANH, EBL_SIGMOID};
  for (int k = 0; k < 2; k++) {
    ebl_tensor t[4];
    t[0] = uniform(n, -1, 1, EBL_CPU);         /* y */
    t[1] = uniform(n, -1, 1, EBL_CPU);         /* dy */
    t[2] = on(&t[0], EBL_CUDA);
    t[3] = on(&t[1], EBL_CUDA);
    const char *name = ebl_unary_name(acts[k]);
    CHECK(be->act_vjp(acts[k], &t[2], &t[2], &t[3]) == EBL_OK,
          "act_vjp runs in place (%s: %s)", name, ebl_error());
    cpu->act_vjp(acts[k], &t[0], &t[0], &t[1]);
    CHECK(max_rel(&t[2], &t[0]) < 1e-6, "act_vjp (%s) matches the CPU",
          name);
    release(t, 4);
  }
  ebl_tensor a = uniform(4, -1, 1, EBL_CPU), b = on(&a, EBL_CUDA);
  CHECK(be->act_vjp(EBL_RELU, &b, &b, &b) == EBL_EARG,
        "act_vjp refuses relu (%s)", ebl_error());
  CHECK(be->act_vjp(EBL_TANH, &b, &a, &b) == EBL_EARG,
        "act_vjp refuses a cpu operand (%s)", ebl_error());
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

/* The CPU's unfused steps (src/engine/infer.c) on host tensors. */
static void cpu_step(const ebl_state_step *s, ebl_tensor *v,
                     const ebl_tensor *g, ebl_tensor *m1, ebl_tensor *m2) {
  ebl_tensor tmp;
  if (s->kind == EBL_STEP_SGD) {
    ebl_axpby(v, -s->lr, g, 1.0);
    return;
  }
  if (s->kind == EBL_STEP_MOMENTUM) {
    ebl_axpby(m1, 1.0, g, s->momentum);
    ebl_axpby(v, -s->lr, m1, 1.0);
    return;
  }
  double c1 = 1.0 - pow(s->beta1, s->t), c2 = 1.0 - pow(s->beta2, s->t);
  ebl_tensor_empty_like(&tmp, g);
  ebl_axpby(m1, 1.0 - s->beta1, g, s->beta1);
  ebl_binary(EBL_MUL, &tmp, g, g);
  ebl_axpby(m2, 1.0 - s->beta2, &tmp, s->beta2);
  ebl_binary_scalar(EBL_MUL, &tmp, m2, 1.0 / c2);
  ebl_unary(EBL_SQRT, &tmp, &tmp, 0, 0);
  ebl_binary_scalar(EBL_ADD, &tmp, &tmp, s->eps);
  ebl_binary(EBL_DIV, &tmp, m1, &tmp);
  ebl_axpby(v, -s->lr / c1, &tmp, 1.0);
  ebl_tensor_release(&tmp);
}

/* Three steps of each optimiser, fused on the GPU and unfused on the
   CPU, from the same states, gradients and moments. */
static void test_state_step(const ebl_backend *be) {
  static const char *const names[] = {"sgd", "momentum", "adam"};
  int64_t n = 4097;
  for (int kind = EBL_STEP_SGD; kind <= EBL_STEP_ADAM; kind++) {
    ebl_state_step s = {kind, 0.05, 0.9, 0.9, 0.999, 1e-8, 0, NULL};
    ebl_tensor c[4], g[4];
    c[0] = uniform(n, -1, 1, EBL_CPU);
    c[1] = uniform(n, -1, 1, EBL_CPU);
    ebl_tensor_zeros(&c[2], EBL_F32, 1, &n, EBL_CPU);
    ebl_tensor_zeros(&c[3], EBL_F32, 1, &n, EBL_CPU);
    for (int i = 0; i < 4; i++) g[i] = on(&c[i], EBL_CUDA);
    int ok = 1;
    for (s.t = 1; s.t <= 3; s.t++) {
      ok = ok && be->state_step(&s, &g[0], &g[1], &g[2], &g[3]) == EBL_OK;
      cpu_step(&s, &c[0], &c[1], &c[2], &c[3]);
    }
    CHECK(ok, "state_step %s runs (%s)", names[kind], ebl_error());
    CHECK(max_rel(&g[0], &c[0]) < 1e-6, "state_step %s: the states",
          names[kind]);
    CHECK(kind == EBL_STEP_SGD || max_rel(&g[2], &c[2]) < 1e-6,
          "state_step %s: the first moments", names[kind]);
    CHECK(kind != EBL_STEP_ADAM || max_rel(&g[3], &c[3]) < 1e-6,
          "state_step %s: the second moments", names[kind]);
    release(c, 4);
    release(g, 4);
  }
}

/* Sets a ledger of terms (2, 3) with coefficients (0.5, 1), the first
   squared: F = 0.5 * 4 + 3 = 5; scale multiplies the terms. */
static void set_ledger(ebl_tensor *ledger, double scale) {
  double rows[6] = {2 * scale, 3 * scale, 0.5, 1, 1, 0};
  for (int64_t i = 0; i < 6; i++)
    ebl_tensor_set(ledger, &i, rows[i]);
}

/* The loop's check: F from the ledger, the stop on a small change, the
   flag on NaN, and the gate that then holds the states. */
static void test_relax_check(const ebl_backend *be) {
  ebl_tensor ledger = doubles(6), watch = doubles(3), trace = doubles(4);
  double w0[3] = {0, -1, -1};
  be->from_host(ebl_tensor_data(&watch), w0, sizeof w0);
  ebl_relax_check c = {ebl_tensor_data(&watch), ebl_tensor_data(&ledger),
                       2, 2, ebl_tensor_data(&trace), 0, 1e-3};
  set_ledger(&ledger, 1.0);
  CHECK(be->relax_check(&c) == EBL_OK, "relax_check runs (%s)",
        ebl_error());
  CHECK(at(&trace, 0) == 5.0 && at(&watch, 1) == -1, "relax_check: F = 5 "
        "at step 0, running (got %g, %g)", at(&trace, 0), at(&watch, 1));
  set_ledger(&ledger, 2.0);        /* F = 0.5 * 16 + 6 = 14 */
  c.k = 1;
  be->relax_check(&c);
  CHECK(at(&trace, 1) == 14.0 && at(&watch, 1) == -1,
        "relax_check: a large change goes on");
  c.k = 2;                          /* the same F: stop at 2 */
  be->relax_check(&c);
  CHECK(at(&watch, 1) == 2 && at(&watch, 2) == -1 && at(&watch, 0) == 14,
        "relax_check: stops at step 2 (got %g)", at(&watch, 1));
  c.k = 3;
  be->relax_check(&c);
  CHECK(at(&watch, 1) == 2, "relax_check: a stopped loop stays stopped");
  int64_t n = 5;
  ebl_tensor v, g;
  ebl_tensor_full(&v, EBL_F32, 1, &n, 1.0, EBL_CUDA);
  ebl_tensor_full(&g, EBL_F32, 1, &n, 1.0, EBL_CUDA);
  ebl_state_step s = {EBL_STEP_SGD, 0.5, 0, 0, 0, 0, 1,
                      (const double *)ebl_tensor_data(&watch) + 1};
  be->state_step(&s, &v, &g, NULL, NULL);
  CHECK(at(&watch, 1) == 2 && ebl_tensor_get(&v, (int64_t[]){4}, &w0[0]) ==
        EBL_OK && w0[0] == 1.0, "state_step: the gate holds the states");
  be->from_host(ebl_tensor_data(&watch), (double[3]){0, -1, -1},
                3 * sizeof(double));
  set_ledger(&ledger, NAN);
  c.k = 1;
  be->relax_check(&c);
  CHECK(at(&watch, 1) == 1 && at(&watch, 2) == 1,
        "relax_check: NaN stops the loop and is flagged");
  ebl_tensor t[5] = {ledger, watch, trace, v, g};
  release(t, 5);
}

/* out = 0.5 a b + 2 out on the GPU equals the CPU's. */
static void test_gemm(void) {
  ebl_tensor t[6];
  int64_t sa[2] = {33, 47}, sb[2] = {47, 21}, sc[2] = {33, 21};
  ebl_tensor_randn(&t[0], EBL_F32, 2, sa, EBL_CPU);
  ebl_tensor_randn(&t[1], EBL_F32, 2, sb, EBL_CPU);
  ebl_tensor_randn(&t[2], EBL_F32, 2, sc, EBL_CPU);
  for (int i = 0; i < 3; i++) t[3 + i] = on(&t[i], EBL_CUDA);
  CHECK(ebl_gemm(&t[5], &t[3], &t[4], 0.5, 2.0) == EBL_OK &&
        ebl_gemm(&t[2], &t[0], &t[1], 0.5, 2.0) == EBL_OK,
        "gemm with alpha and beta runs");
  CHECK(max_rel(&t[5], &t[2]) < 1e-5, "gemm: 0.5 a b + 2 c");
  release(t, 6);
}

/* A host tensor copied into a transposed view of a GPU tensor. */
static void test_copy_into_view(void) {
  ebl_tensor host = make(EBL_F64, 2, SHAPE(2, 3), VALUES(1, 2, 3, 4, 5, 6));
  ebl_tensor dev, view;
  ebl_tensor_zeros(&dev, EBL_F32, 2, SHAPE(3, 2), EBL_CUDA);
  ebl_tensor_transpose(&view, &dev, 0, 1);
  CHECK(ebl_copy(&view, &host) == EBL_OK, "copy into a strided view");
  CHECK(equals(&dev, 6, VALUES(1, 4, 2, 5, 3, 6)),
        "the view was written through its strides");
  ebl_tensor_release(&view);
  ebl_tensor_release(&dev);
  ebl_tensor_release(&host);
}

/* Rounds of the same sizes: the second round reuses every block. */
static void test_allocator(void) {
  static const size_t sizes[] = {1, 100, 512, 513, 4096, 70000, 1 << 20,
                                 (3 << 20) + 5, 300u << 20};
  const int count = sizeof sizes / sizeof sizes[0];
  ebl_cuda_memory_stats before, during, after, steady;
  void *p[sizeof sizes / sizeof sizes[0]];
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  ebl_cuda_empty_cache();
  ebl_cuda_memory(&before);
  for (int round = 0; round < 5; round++) {
    int ok = 1;
    for (int i = 0; i < count; i++) {
      p[i] = be->alloc(sizes[i]);
      ok = ok && p[i] != NULL;
    }
    if (round == 0) {
      CHECK(ok, "the allocator gives every size");
      ebl_cuda_memory(&during);
    }
    for (int i = 0; i < count; i++) be->free(p[i]);
    if (round == 0) ebl_cuda_memory(&after);
  }
  ebl_cuda_memory(&steady);
  CHECK(during.in_use >= before.in_use + (300u << 20),
        "in use counts the blocks (%zu)", during.in_use);
  CHECK(after.in_use == before.in_use && after.cached >= (300u << 20),
        "freed blocks are cached");
  CHECK(steady.device_mallocs == after.device_mallocs,
        "no cudaMalloc in steady state (%lld, %lld)",
        steady.device_mallocs, after.device_mallocs);
  CHECK(steady.peak >= during.in_use, "peak keeps the highest use");
  CHECK(ebl_cuda_empty_cache() == EBL_OK, "empty_cache");
  ebl_cuda_memory(&after);
  CHECK(after.cached == 0, "nothing cached after empty_cache");
}

/* 2^40 float64 elements: 8 TiB, more than any GPU holds. */
static void test_out_of_memory(void) {
  ebl_tensor t;
  int64_t n = (int64_t)1 << 40;
  ebl_status st = ebl_tensor_empty(&t, EBL_F64, 1, &n, EBL_CUDA);
  CHECK(st == EBL_ENOMEM, "8 TiB fails with EBL_ENOMEM");
  CHECK(strstr(ebl_error(), "cuda: out of memory allocating 8.00 TiB") ==
        ebl_error(), "the message names the size: %s", ebl_error());
}

int main(void) {
  if (!ebl_cuda_available()) {
    SKIP("no GPU", "the CUDA backend (%s)", ebl_cuda_unavailable_reason());
    return tap_done();
  }
  char name[256];
  CHECK(ebl_cuda_device_name(name, sizeof name) == EBL_OK && name[0],
        "device 0 is %s", name);
  const ebl_backend *be = ebl_backend_for(EBL_CUDA);
  CHECK(be && be->pred_error && be->bipc_signals && be->state_step &&
        be->act_vjp,
        "the CUDA table has the fused kernels");
  ebl_manual_seed(17);
  test_pred_error(be, 100003);
  test_pred_error(be, ((int64_t)1 << 22) + 7);
  test_bipc(be);
  test_act_vjp(be);
  test_state_step(be);
  test_relax_check(be);
  test_gemm();
  test_copy_into_view();
  test_allocator();
  test_out_of_memory();
  return tap_done();
}

/* Tests of the fused CPU kernels of the inference loop: the prediction
   error with its sum of squares (exact errors, the sum against a
   float64 reference, lengths that leave a tail, thread-count
   independence, strided fallback), BiPC's signals, the state step
   (SGD, momentum and Adam against the formulas written out here, the
   stop gate) and the activation's VJP from its output (against
   derivatives taken from the input in float64). */
#include <stdlib.h>

#include "tap.h"
#include "helpers.h"
#include "cpu/cpu.h"

/* A float tensor of n elements with reproducible values in [-2, 2). */
static ebl_tensor ramp(ebl_dtype dtype, int64_t n, unsigned seed) {
  ebl_tensor t = make(dtype, 1, &n, NULL);
  srand(seed);
  for (int64_t i = 0; i < n; i++) {
    double x = 4.0 * rand() / ((double)RAND_MAX + 1.0) - 2.0;
    if (dtype == EBL_F32)
      ((float *)ebl_tensor_data(&t))[i] = (float)x;
    else
      ((double *)ebl_tensor_data(&t))[i] = x;
  }
  return t;
}

/* The sum of squares of v - mu in float64, element by element. */
static double reference_sumsq(const ebl_tensor *v, const ebl_tensor *mu) {
  double sum = 0.0;
  for (int64_t i = 0; i < ebl_tensor_numel(v); i++) {
    double e = v->dtype == EBL_F32
      ? (double)(((float *)ebl_tensor_data(v))[i] -
                 ((float *)ebl_tensor_data(mu))[i])
      : at(v, i) - at(mu, i);
    sum += e * e;
  }
  return sum;
}

/* err = v - mu exactly in v's dtype, and the sum of squares. */
static void check_pred_error(ebl_dtype dtype, int64_t n) {
  const char *dt = dtype == EBL_F32 ? "float32" : "float64";
  ebl_tensor v = ramp(dtype, n, 1), mu = ramp(dtype, n, 2);
  ebl_tensor err = make(dtype, 1, &n, NULL);
  double sum = -1.0;
  CHECK(ebl_cpu_pred_error(&err, &v, &mu, &sum) == EBL_OK,
        "pred_error runs on %lld %s", (long long)n, dt);
  int exact = 1;
  for (int64_t i = 0; exact && i < n; i++)
    exact = dtype == EBL_F32
      ? ((float *)ebl_tensor_data(&err))[i] ==
          ((float *)ebl_tensor_data(&v))[i] -
          ((float *)ebl_tensor_data(&mu))[i]
      : at(&err, i) == at(&v, i) - at(&mu, i);
  CHECK(exact, "pred_error: e = v - mu exactly (%lld %s)", (long long)n,
        dt);
  CHECK_CLOSE(sum, reference_sumsq(&v, &mu), 1e-13,
              "pred_error: the sum of squares of %lld %s", (long long)n, dt);
  ebl_tensor_release(&v);
  ebl_tensor_release(&mu);
  ebl_tensor_release(&err);
}

/* The sum is bit for bit the same on one thread and on two. */
static void test_thread_independence(void) {
  int64_t n = 300007;
  ebl_tensor v = ramp(EBL_F32, n, 3), mu = ramp(EBL_F32, n, 4);
  ebl_tensor err = make(EBL_F32, 1, &n, NULL);
  int threads = ebl_get_num_threads();
  double one = 0.0, two = 1.0;
  ebl_set_num_threads(1);
  ebl_cpu_pred_error(&err, &v, &mu, &one);
  ebl_set_num_threads(2);
  ebl_cpu_pred_error(&err, &v, &mu, &two);
  ebl_set_num_threads(threads);
  CHECK(one == two, "pred_error: the same sum on 1 and 2 threads");
  ebl_tensor_release(&v);
  ebl_tensor_release(&mu);
  ebl_tensor_release(&err);
}

/* A transposed operand takes the general path with the same results. */
static void test_strided(void) {
  ebl_tensor v = make(EBL_F32, 2, SHAPE(2, 3), VALUES(1, 2, 3, 4, 5, 6));
  ebl_tensor mu = make(EBL_F32, 2, SHAPE(3, 2), VALUES(0, 1, 1, 0, 2, 2));
  ebl_tensor mut, err = make(EBL_F32, 2, SHAPE(2, 3), NULL);
  memset(&mut, 0, sizeof mut);
  ebl_tensor_transpose(&mut, &mu, 0, 1);
  double sum = 0.0;
  CHECK(ebl_cpu_pred_error(&err, &v, &mut, &sum) == EBL_OK,
        "pred_error on a transposed prediction");
  CHECK(equals(&err, 6, VALUES(1, 1, 1, 3, 5, 4)),
        "pred_error on a transposed prediction: the errors");
  CHECK_CLOSE(sum, 53.0, 1e-12,
              "pred_error on a transposed prediction: the sum");
  ebl_tensor_release(&v);
  ebl_tensor_release(&mu);
  ebl_tensor_release(&mut);
  ebl_tensor_release(&err);
}

/* One step of each state optimiser against its formula in float64. */
static void check_state_step(ebl_step_kind kind, const char *name) {
  int64_t n = 37;
  ebl_tensor v = ramp(EBL_F64, n, 5), g = ramp(EBL_F64, n, 6);
  ebl_tensor m1 = ramp(EBL_F64, n, 7), m2 = ramp(EBL_F64, n, 8);
  double *pm2 = ebl_tensor_data(&m2);
  for (int64_t i = 0; i < n; i++) pm2[i] = fabs(pm2[i]);
  double want[37];
  ebl_state_step st = {kind, 0.1, 0.9, 0.8, 0.99, 1e-8, 3, NULL};
  for (int64_t i = 0; i < n; i++) {
    double vi = at(&v, i), gi = at(&g, i), a = at(&m1, i), b = pm2[i];
    if (kind == EBL_STEP_SGD) {
      want[i] = vi - 0.1 * gi;
    } else if (kind == EBL_STEP_MOMENTUM) {
      want[i] = vi - 0.1 * (0.9 * a + gi);
    } else {
      double m = 0.8 * a + 0.2 * gi, s = 0.99 * b + 0.01 * gi * gi;
      double mhat = m / (1 - pow(0.8, 3)), shat = s / (1 - pow(0.99, 3));
      want[i] = vi - 0.1 * mhat / (sqrt(shat) + 1e-8);
    }
  }
  CHECK(ebl_cpu_state_step(&st, &v, &g, &m1, &m2) == EBL_OK,
        "state step runs (%s)", name);
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++)
    worst = fmax(worst, fabs(at(&v, i) - want[i]));
  CHECK(worst < 1e-14, "state step follows its formula (%s): %.3g", name,
        worst);
  ebl_tensor_release(&v);
  ebl_tensor_release(&g);
  ebl_tensor_release(&m1);
  ebl_tensor_release(&m2);
}

/* After the loop has stopped (gate >= 0) the step leaves v alone. */
static void test_gate(void) {
  ebl_tensor v = make(EBL_F32, 1, SHAPE(3), VALUES(1, 2, 3));
  ebl_tensor g = make(EBL_F32, 1, SHAPE(3), VALUES(1, 1, 1));
  double stopped = 4.0, running = -1.0;
  ebl_state_step st = {EBL_STEP_SGD, 0.5, 0, 0, 0, 0, 1, &stopped};
  ebl_cpu_state_step(&st, &v, &g, NULL, NULL);
  CHECK(equals(&v, 3, VALUES(1, 2, 3)), "state step: a stopped gate holds");
  st.gate = &running;
  ebl_cpu_state_step(&st, &v, &g, NULL, NULL);
  CHECK(equals(&v, 3, VALUES(0.5, 1.5, 2.5)),
        "state step: an open gate steps");
  ebl_tensor_release(&v);
  ebl_tensor_release(&g);
}

/* sig = e_f + lambda e_b (written over e_f when in_place), sig_b =
   lambda sig and the sum of sig^2, against float64 arithmetic. */
static void check_bipc_signals(ebl_dtype dtype, int64_t n, int in_place) {
  double lambda = 0.3, tol = dtype == EBL_F32 ? 1e-6 : 1e-14;
  ebl_tensor e_f = ramp(dtype, n, 11), e_b = ramp(dtype, n, 12);
  ebl_tensor sig_b = make(dtype, 1, &n, NULL);
  ebl_tensor sig = in_place ? e_f : make(dtype, 1, &n, NULL);
  double *want = malloc(sizeof(double) * (size_t)n), sum = 0.0, got = -1;
  for (int64_t i = 0; i < n; i++) {
    want[i] = at(&e_f, i) + lambda * at(&e_b, i);
    sum += want[i] * want[i];
  }
  CHECK(ebl_cpu_bipc_signals(&sig, &sig_b, &e_f, &e_b, lambda, &got) ==
        EBL_OK, "bipc_signals runs on %lld %s%s", (long long)n,
        ebl_dtype_name(dtype), in_place ? " in place" : "");
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    worst = fmax(worst, fabs(at(&sig, i) - want[i]));
    worst = fmax(worst, fabs(at(&sig_b, i) - lambda * want[i]));
  }
  CHECK(worst <= tol, "bipc_signals: sig and sig_b (%lld %s): %.3g",
        (long long)n, ebl_dtype_name(dtype), worst);
  CHECK_CLOSE(got, sum, tol, "bipc_signals: the sum of squares (%lld %s)",
              (long long)n, ebl_dtype_name(dtype));
  free(want);
  if (!in_place) ebl_tensor_release(&sig);
  ebl_tensor_release(&e_f);
  ebl_tensor_release(&e_b);
  ebl_tensor_release(&sig_b);
}

/* out = dy f'(x) from y = f(x), written over y, against the derivative
   of f at x itself. */
static void check_act_vjp(ebl_unary_op act, ebl_dtype dtype, double tol) {
  int64_t n = 1000;
  const char *name = ebl_unary_name(act);
  ebl_tensor x = ramp(EBL_F64, n, 9), dy = ramp(dtype, n, 10);
  ebl_tensor y = make(dtype, 1, &n, NULL);
  ebl_unary(act, &y, &x, 0.0, 0.0);
  CHECK(ebl_cpu_act_vjp(act, &y, &y, &dy) == EBL_OK,
        "act_vjp runs in place (%s, %s)", name, ebl_dtype_name(dtype));
  double worst = 0.0;
  for (int64_t i = 0; i < n; i++) {
    double xi = at(&x, i), s = 1.0 / (1.0 + exp(-xi));
    double d = act == EBL_TANH ? 1.0 - tanh(xi) * tanh(xi) : s * (1.0 - s);
    worst = fmax(worst, fabs(at(&y, i) - at(&dy, i) * d));
  }
  CHECK(worst <= tol, "act_vjp matches dy f'(x) (%s, %s): %.3g", name,
        ebl_dtype_name(dtype), worst);
  ebl_tensor_release(&x);
  ebl_tensor_release(&dy);
  ebl_tensor_release(&y);
}

/* Functions whose derivative is not a function of the output, and
   mismatched operands, are refused. */
static void test_act_vjp_refuses(void) {
  ebl_tensor a = make(EBL_F32, 1, SHAPE(4), NULL);
  ebl_tensor b = make(EBL_F32, 1, SHAPE(3), NULL);
  CHECK(ebl_cpu_act_vjp(EBL_RELU, &a, &a, &a) == EBL_EARG &&
          error_is("act_vjp: tanh or sigmoid expected, got relu"),
        "act_vjp refuses relu");
  CHECK(ebl_cpu_act_vjp(EBL_TANH, &a, &a, &b) == EBL_EARG,
        "act_vjp refuses operands of two sizes");
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

int main(void) {
  const int64_t lengths[] = {1, 7, 8, 9, 63, 64, 65, 1280, 32768, 100003};
  for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
    check_pred_error(EBL_F32, lengths[i]);
    check_pred_error(EBL_F64, lengths[i]);
  }
  test_thread_independence();
  test_strided();
  check_state_step(EBL_STEP_SGD, "sgd");
  check_state_step(EBL_STEP_MOMENTUM, "momentum");
  check_state_step(EBL_STEP_ADAM, "adam");
  test_gate();
  check_bipc_signals(EBL_F32, 1281, 0);
  check_bipc_signals(EBL_F64, 1281, 1);
  check_bipc_signals(EBL_F32, 100003, 1);
  check_act_vjp(EBL_TANH, EBL_F64, 1e-15);
  check_act_vjp(EBL_SIGMOID, EBL_F64, 1e-15);
  check_act_vjp(EBL_TANH, EBL_F32, 1e-6);
  check_act_vjp(EBL_SIGMOID, EBL_F32, 1e-6);
  test_act_vjp_refuses();
  return tap_done();
}

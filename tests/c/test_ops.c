/* Tests of elementwise operations: hand-computed values, broadcasting
   edge cases, in-place forms with aliasing, integer rules and their
   errors, activations and their derivatives (central differences in
   float64), softmax and log_softmax. */
#include "tap.h"
#include "helpers.h"

/* Arithmetic on hand-computed values, and dtype promotion. */
static void test_arithmetic(void) {
  ebl_tensor a = make(EBL_F32, 1, SHAPE(4), VALUES(1, -2, 3, 0.5));
  ebl_tensor b = make(EBL_F32, 1, SHAPE(4), VALUES(2, 4, -1, 2));
  ebl_tensor r;
  struct { ebl_binary_op op; double want[4]; } cases[] = {
    {EBL_ADD, {3, 2, 2, 2.5}}, {EBL_SUB, {-1, -6, 4, -1.5}},
    {EBL_MUL, {2, -8, -3, 1}}, {EBL_DIV, {0.5, -0.5, -3, 0.25}},
    {EBL_POW, {1, 16, 1.0 / 3, 0.25}}, {EBL_MAXIMUM, {2, 4, 3, 2}},
    {EBL_MINIMUM, {1, -2, -1, 0.5}}, {EBL_EQ, {0, 0, 0, 0}},
    {EBL_LT, {1, 1, 0, 1}}, {EBL_GE, {0, 0, 1, 0}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ebl_binary_op op = cases[i].op;
    CHECK(ebl_binary_new(op, &r, &a, &b) == EBL_OK, "%s runs",
          ebl_binary_name(op));
    int ok = 1;
    for (int j = 0; j < 4; j++)
      ok &= fabs(at(&r, j) - cases[i].want[j]) < 1e-6;
    CHECK(ok, "%s values", ebl_binary_name(op));
    CHECK(r.dtype == (op >= EBL_EQ ? EBL_U8 : EBL_F32), "%s dtype",
          ebl_binary_name(op));
    ebl_tensor_release(&r);
  }
  ebl_tensor d = make(EBL_F64, 1, SHAPE(1), VALUES(0.25));
  CHECK(ebl_binary_new(EBL_ADD, &r, &a, &d) == EBL_OK && r.dtype == EBL_F64
        && equals(&r, 4, VALUES(1.25, -1.75, 3.25, 0.75)),
        "float32 + float64 gives float64");
  ebl_tensor_release(&r);
  ebl_tensor_release(&d);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

/* Broadcasting: column against row, leading dims, size 0, scalars. */
static void test_broadcast(void) {
  ebl_tensor col = make(EBL_F32, 2, SHAPE(3, 1), VALUES(10, 20, 30));
  ebl_tensor row = make(EBL_F32, 1, SHAPE(2), VALUES(1, 2));
  ebl_tensor s = make(EBL_F32, 0, NULL, VALUES(100));
  ebl_tensor r, e, bad;
  CHECK(ebl_binary_new(EBL_SUB, &r, &col, &row) == EBL_OK &&
        r.shape[0] == 3 && r.shape[1] == 2 &&
        equals(&r, 6, VALUES(9, 8, 19, 18, 29, 28)), "3x1 - 2 = 3x2");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_new(EBL_ADD, &r, &s, &col) == EBL_OK && r.ndim == 2 &&
        equals(&r, 3, VALUES(110, 120, 130)), "0-dim + 3x1");
  ebl_tensor_release(&r);
  ebl_tensor_empty(&e, EBL_F32, 3, SHAPE(2, 0, 1), EBL_CPU);
  CHECK(ebl_binary_new(EBL_MUL, &r, &e, &row) == EBL_OK &&
        r.shape[0] == 2 && r.shape[1] == 0 && r.shape[2] == 2,
        "2x0x1 * 2 = 2x0x2");
  ebl_tensor_release(&r);
  bad = make(EBL_F32, 1, SHAPE(3), VALUES(1, 2, 3));
  CHECK(ebl_binary_new(EBL_ADD, &r, &row, &bad) == EBL_EARG &&
        error_is("add: shapes 2 and 3 do not broadcast"),
        "2 + 3 fails with the shapes");
  ebl_tensor big;
  ebl_tensor_zeros(&big, EBL_F32, 2, SHAPE(3, 3), EBL_CPU);
  CHECK(ebl_binary(EBL_ADD, &big, &col, &row) == EBL_EARG &&
        error_is("add: output has shape 3x3, expected 3x2"),
        "output of the wrong shape");
  /* In-place into a broadcast operand's own storage. */
  ebl_tensor acc = make(EBL_F32, 2, SHAPE(2, 3), VALUES(1, 2, 3, 4, 5, 6));
  ebl_tensor bias = make(EBL_F32, 1, SHAPE(3), VALUES(10, 20, 30));
  CHECK(ebl_binary(EBL_ADD, &acc, &acc, &bias) == EBL_OK &&
        equals(&acc, 6, VALUES(11, 22, 33, 14, 25, 36)), "acc += bias");
  /* out aliasing b through a transpose: inputs are copied first. */
  ebl_tensor sq = make(EBL_F32, 2, SHAPE(2, 2), VALUES(1, 2, 3, 4)), t;
  ebl_tensor_transpose(&t, &sq, 0, 1);
  CHECK(ebl_binary(EBL_SUB, &sq, &sq, &t) == EBL_OK &&
        equals(&sq, 4, VALUES(0, -1, 1, 0)), "x - x^T in place");
  ebl_tensor_release(&t);
  ebl_tensor_release(&sq);
  ebl_tensor_release(&acc);
  ebl_tensor_release(&bias);
  ebl_tensor_release(&big);
  ebl_tensor_release(&bad);
  ebl_tensor_release(&e);
  ebl_tensor_release(&s);
  ebl_tensor_release(&row);
  ebl_tensor_release(&col);
}

/* Strided operands of every kind through the general iterator. */
static void test_strided(void) {
  ebl_tensor a, at_, n, r, want;
  int64_t shape[3] = {3, 4, 5};
  ebl_tensor_arange(&a, EBL_F64, 0, 60, 1, EBL_CPU);
  ebl_tensor_reshape(&a, &a, 3, shape);
  ebl_tensor_permute(&at_, &a, (const int[]){2, 0, 1});
  ebl_tensor_narrow(&n, &at_, 0, 1, 3);
  ebl_binary_new(EBL_MUL, &r, &n, &n);
  int ok = 1;
  for (int i = 0; i < 3 && ok; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        double v = (double)(j * 20 + k * 5 + i + 1);
        ok &= at(&r, (i * 3 + j) * 4 + k) == v * v;
      }
  CHECK(ok, "square of a permuted, narrowed view");
  ebl_tensor_clone(&want, &n);
  CHECK(ebl_unary(EBL_NEG, &n, &n, 0, 0) == EBL_OK &&
        at(&n, 0) == -at(&want, 0) && at(&n, 35) == -at(&want, 35),
        "in-place neg on a strided view");
  ebl_tensor_release(&want);
  ebl_tensor_release(&r);
  ebl_tensor_release(&n);
  ebl_tensor_release(&at_);
  ebl_tensor_release(&a);
}

/* Scalar forms, unary ops, clamp, where. */
static void test_scalar_unary(void) {
  ebl_tensor a = make(EBL_F32, 1, SHAPE(4), VALUES(-2, -0.5, 1, 4)), r;
  CHECK(ebl_scalar_binary_new(EBL_SUB, &r, 1, &a) == EBL_OK &&
        equals(&r, 4, VALUES(3, 1.5, 0, -3)), "1 - x");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_scalar_new(EBL_DIV, &r, &a, 2) == EBL_OK &&
        equals(&r, 4, VALUES(-1, -0.25, 0.5, 2)), "x / 2");
  ebl_tensor_release(&r);
  CHECK(ebl_scalar_binary_new(EBL_POW, &r, 2, &a) == EBL_OK &&
        at(&r, 0) == 0.25 && fabs(at(&r, 1) - M_SQRT1_2) < 1e-7 &&
        at(&r, 2) == 2 && at(&r, 3) == 16, "2 ^ x");
  ebl_tensor_release(&r);
  CHECK(ebl_unary_new(EBL_CLAMP, &r, &a, -1, 2) == EBL_OK &&
        equals(&r, 4, VALUES(-1, -0.5, 1, 2)), "clamp(-1, 2)");
  ebl_tensor_release(&r);
  CHECK(ebl_unary_new(EBL_ABS, &r, &a, 0, 0) == EBL_OK &&
        equals(&r, 4, VALUES(2, 0.5, 1, 4)), "abs");
  ebl_tensor_release(&r);
  CHECK(ebl_unary_new(EBL_SQRT, &r, &a, 0, 0) == EBL_OK &&
        isnan(at(&r, 0)) && at(&r, 3) == 2, "sqrt (NaN below 0)");
  ebl_tensor_release(&r);
  CHECK(ebl_unary_new(EBL_LEAKY_RELU, &r, &a, 0.1, 0) == EBL_OK &&
        fabs(at(&r, 0) + 0.2) < 1e-7 && at(&r, 3) == 4, "leaky_relu 0.1");
  ebl_tensor_release(&r);
  ebl_tensor big = make(EBL_F32, 1, SHAPE(4), VALUES(0, -1, 5, 3));
  ebl_tensor mask;
  ebl_binary_new(EBL_GT, &mask, &a, &big);
  CHECK(ebl_where_new(&r, &mask, &a, &big) == EBL_OK &&
        equals(&r, 4, VALUES(0, -0.5, 5, 4)), "where(a > big, a, big)");
  ebl_tensor_release(&r);
  ebl_tensor s = make(EBL_F64, 0, NULL, VALUES(-7));
  CHECK(ebl_where_new(&r, &a, &a, &s) == EBL_OK && r.dtype == EBL_F64 &&
        equals(&r, 4, VALUES(-2, -0.5, 1, 4)), "where with float cond");
  ebl_tensor_release(&r);
  ebl_tensor out;
  ebl_tensor_zeros(&out, EBL_F32, 1, SHAPE(4), EBL_CPU);
  CHECK(ebl_axpby(&out, 2, &a, 0) == EBL_OK &&
        ebl_axpby(&out, 1, &big, -1) == EBL_OK &&
        equals(&out, 4, VALUES(4, 0, 3, -5)), "axpby twice");
  ebl_tensor_release(&out);
  ebl_tensor_release(&s);
  ebl_tensor_release(&mask);
  ebl_tensor_release(&big);
  ebl_tensor_release(&a);
}

/* Integer dtypes: supported ops, wraparound, and clear errors. */
static void test_integers(void) {
  ebl_tensor a = make(EBL_I32, 1, SHAPE(3), VALUES(7, -3, 2147483647));
  ebl_tensor b = make(EBL_I32, 1, SHAPE(3), VALUES(2, 5, 1)), r;
  CHECK(ebl_binary_new(EBL_ADD, &r, &a, &b) == EBL_OK &&
        r.dtype == EBL_I32 &&
        equals(&r, 3, VALUES(9, 2, -2147483648.0)), "int32 add wraps");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_new(EBL_DIV, &r, &a, &b) == EBL_EARG &&
        error_is("div: not defined for int32 tensors"), "int32 div fails");
  CHECK(ebl_unary_new(EBL_TANH, &r, &a, 0, 0) == EBL_EARG &&
        error_is("tanh: not defined for int32 tensors"), "int32 tanh fails");
  ebl_tensor u = make(EBL_U8, 1, SHAPE(3), VALUES(250, 3, 0));
  CHECK(ebl_binary_new(EBL_MUL, &r, &u, &b) == EBL_OK &&
        r.dtype == EBL_I32 && equals(&r, 3, VALUES(500, 15, 0)),
        "uint8 * int32 gives int32");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_scalar_new(EBL_ADD, &r, &u, 10) == EBL_OK &&
        r.dtype == EBL_U8 && equals(&r, 3, VALUES(4, 13, 10)),
        "uint8 + 10 wraps");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_scalar_new(EBL_MUL, &r, &u, 0.5) == EBL_OK &&
        r.dtype == EBL_F32 && equals(&r, 3, VALUES(125, 1.5, 0)),
        "uint8 * 0.5 computes in float32");
  ebl_tensor_release(&r);
  CHECK(ebl_binary_scalar_new(EBL_EQ, &r, &a, -3) == EBL_OK &&
        equals(&r, 3, VALUES(0, 1, 0)), "int32 == -3");
  ebl_tensor_release(&r);
  CHECK(ebl_unary_new(EBL_CLAMP, &r, &a, 0, INFINITY) == EBL_OK &&
        equals(&r, 3, VALUES(7, 0, 2147483647)), "int32 clamp(0, inf)");
  ebl_tensor_release(&r);
  ebl_tensor_release(&u);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

/* Every unary op and every comparison on hand-computed values. */
static void test_table(void) {
  ebl_tensor x = make(EBL_F64, 1, SHAPE(3), VALUES(-2, 0.25, 4)), r;
  struct { ebl_unary_op op; double p0, p1, want[3]; } un[] = {
    {EBL_NEG, 0, 0, {2, -0.25, -4}}, {EBL_ABS, 0, 0, {2, 0.25, 4}},
    {EBL_SQUARE, 0, 0, {4, 0.0625, 16}}, {EBL_SIGN, 0, 0, {-1, 1, 1}},
    {EBL_EXP, 0, 0, {exp(-2.0), exp(0.25), exp(4.0)}},
    {EBL_LOG, 0, 0, {NAN, log(0.25), log(4.0)}},
    {EBL_SQRT, 0, 0, {NAN, 0.5, 2}}, {EBL_RECIPROCAL, 0, 0, {-0.5, 4, 0.25}},
    {EBL_CLAMP, 0, 1, {0, 0.25, 1}}, {EBL_RELU, 0, 0, {0, 0.25, 4}},
    {EBL_LEAKY_RELU, 0.5, 0, {-1, 0.25, 4}},
    {EBL_TANH, 0, 0, {tanh(-2.0), tanh(0.25), tanh(4.0)}},
    {EBL_SIGMOID, 0, 0, {1 / (1 + exp(2.0)), 1 / (1 + exp(-0.25)),
                         1 / (1 + exp(-4.0))}},
    {EBL_RELU_GRAD, 0, 0, {0, 1, 1}}, {EBL_LEAKY_RELU_GRAD, 0.5, 0,
                                       {0.5, 1, 1}},
  };
  for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
    ebl_unary_new(un[i].op, &r, &x, un[i].p0, un[i].p1);
    int ok = 1;
    for (int j = 0; j < 3; j++) {
      double got = at(&r, j), want = un[i].want[j];
      ok &= isnan(want) ? isnan(got) : fabs(got - want) < 1e-15;
    }
    CHECK(ok, "%s on -2, 0.25, 4", ebl_unary_name(un[i].op));
    ebl_tensor_release(&r);
  }
  ebl_tensor y = make(EBL_F64, 1, SHAPE(3), VALUES(-2, 1, 3));
  struct { ebl_binary_op op; double want[3]; } cmp[] = {
    {EBL_EQ, {1, 0, 0}}, {EBL_NE, {0, 1, 1}}, {EBL_LT, {0, 1, 0}},
    {EBL_LE, {1, 1, 0}}, {EBL_GT, {0, 0, 1}}, {EBL_GE, {1, 0, 1}},
  };
  for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
    ebl_binary_new(cmp[i].op, &r, &x, &y);
    CHECK(r.dtype == EBL_U8 && equals(&r, 3, cmp[i].want),
          "%s on (-2, 0.25, 4) and (-2, 1, 3)", ebl_binary_name(cmp[i].op));
    ebl_tensor_release(&r);
  }
  ebl_tensor_release(&y);
  ebl_tensor_release(&x);
}

/* f(x) of an activation at one point, through the tensor API. */
static double apply(ebl_unary_op op, double x, double p0) {
  ebl_tensor t = make(EBL_F64, 0, NULL, &x), r;
  double v = NAN;
  ebl_unary_new(op, &r, &t, p0, 0);
  ebl_tensor_item(&r, &v);
  ebl_tensor_release(&r);
  ebl_tensor_release(&t);
  return v;
}

/* Activations at known points, and each derivative against central
   differences in float64 at points away from kinks. */
static void test_activations(void) {
  CHECK_CLOSE(apply(EBL_TANH, 0.5, 0), tanh(0.5), 1e-15, "tanh(0.5)");
  CHECK_CLOSE(apply(EBL_SIGMOID, 0, 0), 0.5, 1e-15, "sigmoid(0)");
  CHECK_CLOSE(apply(EBL_GELU, 1, 0), 0.8413447460685429, 1e-14,
              "gelu(1) = Phi(1)");
  CHECK_CLOSE(apply(EBL_SOFTPLUS, 0, 0), log(2.0), 1e-15, "softplus(0)");
  CHECK_CLOSE(apply(EBL_SOFTPLUS, 800, 0), 800, 1e-15,
              "softplus(800) does not overflow");
  CHECK_CLOSE(apply(EBL_TANH_GRAD, 30, 0), 4 * exp(-60.0), 1e-12,
              "tanh_grad(30) keeps its tiny value");
  struct { ebl_unary_op f, df; double p0; } acts[] = {
    {EBL_TANH, EBL_TANH_GRAD, 0}, {EBL_SIGMOID, EBL_SIGMOID_GRAD, 0},
    {EBL_RELU, EBL_RELU_GRAD, 0}, {EBL_LEAKY_RELU, EBL_LEAKY_RELU_GRAD, 0.1},
    {EBL_GELU, EBL_GELU_GRAD, 0}, {EBL_SOFTPLUS, EBL_SOFTPLUS_GRAD, 0},
  };
  const double xs[] = {-3.1, -0.7, -0.05, 0.2, 1.3, 4.2};
  const double h = 1e-5;
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
    double worst = 0;
    for (size_t j = 0; j < sizeof xs / sizeof xs[0]; j++) {
      double x = xs[j];
      double fd = (apply(acts[i].f, x + h, acts[i].p0) -
                   apply(acts[i].f, x - h, acts[i].p0)) / (2 * h);
      double err = fabs(apply(acts[i].df, x, acts[i].p0) - fd);
      if (!(err <= worst)) worst = err;
    }
    CHECK(worst < 1e-9, "%s matches central differences (max err %.2g)",
          ebl_unary_name(acts[i].df), worst);
  }
}

/* float32 fast paths against float64 over a range of inputs. */
static void test_float32_accuracy(void) {
  ebl_unary_op ops[] = {EBL_EXP, EBL_TANH, EBL_SIGMOID, EBL_TANH_GRAD,
                        EBL_SIGMOID_GRAD, EBL_GELU, EBL_SOFTPLUS, EBL_LOG};
  ebl_tensor x64, x32, r64, r32;
  ebl_tensor_linspace(&x64, EBL_F64, -20, 20, 40001, EBL_CPU);
  ebl_to_dtype(&x32, &x64, EBL_F32);
  ebl_to_dtype(&x64, &x32, EBL_F64);   /* same inputs for both */
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    ebl_unary_new(ops[i], &r64, &x64, 0, 0);
    ebl_unary_new(ops[i], &r32, &x32, 0, 0);
    const double *w = ebl_tensor_data(&r64);
    const float *g = ebl_tensor_data(&r32);
    double worst = 0;
    for (int64_t j = 0; j < 40001; j++) {
      if (!isfinite(w[j])) continue;
      double rel = fabs(g[j] - w[j]) / fmax(fabs(w[j]), 1e-30);
      if (!(rel <= worst)) worst = rel;
    }
    /* gelu's tail erfc(-x/sqrt 2) amplifies the rounding of its float
       argument (about 16 ulp at x = -11), whatever the code does. */
    double tol = ops[i] == EBL_GELU ? 2e-5 : 2e-6;
    CHECK(worst < tol, "float32 %s within %g relative (max %.2g)",
          ebl_unary_name(ops[i]), tol, worst);
    ebl_tensor_release(&r64);
    ebl_tensor_release(&r32);
  }
  ebl_tensor_release(&x64);
  ebl_tensor_release(&x32);
}

/* A strided element goes through the same arithmetic as a dense one. */
static void test_strided_same_bits(void) {
  ebl_tensor x, xt, a, b, bt;
  ebl_tensor_randn(&x, EBL_F32, 2, SHAPE(37, 23), EBL_CPU);
  ebl_binary_scalar(EBL_MUL, &x, &x, 4);
  ebl_tensor_transpose(&xt, &x, 0, 1);
  ebl_unary_op ops[] = {EBL_EXP, EBL_TANH, EBL_SIGMOID, EBL_TANH_GRAD};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    ebl_unary_new(ops[i], &a, &xt, 0, 0);       /* strided input */
    ebl_unary_new(ops[i], &b, &x, 0, 0);        /* dense input */
    ebl_tensor_transpose(&bt, &b, 0, 1);
    int same = 1;
    for (int64_t j = 0; j < 37 * 23 && same; j++)
      same = at(&a, j) == at(&bt, j);
    CHECK(same, "float32 %s: strided and dense give the same bits",
          ebl_unary_name(ops[i]));
    ebl_tensor_release(&a);
    ebl_tensor_release(&b);
    ebl_tensor_release(&bt);
  }
  ebl_tensor_release(&xt);
  ebl_tensor_release(&x);
}

/* softmax and log_softmax: values, stability, dims, in place. */
static void test_softmax(void) {
  ebl_tensor x = make(EBL_F32, 2, SHAPE(2, 3),
                      VALUES(1, 2, 3, 1000, 1000, 1000)), r;
  double e1 = exp(-2.0), e2 = exp(-1.0), z = e1 + e2 + 1;
  CHECK(ebl_softmax_new(&r, &x, -1) == EBL_OK, "softmax runs");
  CHECK_CLOSE(at(&r, 0), e1 / z, 1e-6, "softmax row 0 col 0");
  CHECK_CLOSE(at(&r, 2), 1 / z, 1e-6, "softmax row 0 col 2");
  CHECK_CLOSE(at(&r, 4), 1.0 / 3, 1e-6, "softmax of large equal logits");
  ebl_tensor_release(&r);
  CHECK(ebl_log_softmax_new(&r, &x, 1) == EBL_OK, "log_softmax runs");
  CHECK_CLOSE(at(&r, 2), -log(z), 1e-6, "log_softmax row 0 col 2");
  CHECK_CLOSE(at(&r, 5), -log(3.0), 1e-6, "log_softmax stable at 1000");
  ebl_tensor_release(&r);
  CHECK(ebl_softmax_new(&r, &x, 0) == EBL_OK, "softmax over dim 0");
  CHECK_CLOSE(at(&r, 3), 1.0, 1e-6, "column softmax favours 1000");
  ebl_tensor_release(&r);
  ebl_tensor d = make(EBL_F64, 1, SHAPE(3), VALUES(0, log(2.0), log(5.0)));
  CHECK(ebl_softmax(&d, &d, 0) == EBL_OK &&
        fabs(at(&d, 0) - 0.125) < 1e-15 && fabs(at(&d, 2) - 0.625) < 1e-15,
        "softmax in place, float64");
  CHECK(ebl_softmax_new(&r, &x, 2) == EBL_EARG &&
        error_is("softmax: dim 2 out of range for a 2-d tensor"),
        "softmax dim out of range");
  ebl_tensor_release(&d);
  ebl_tensor_release(&x);
}

int main(void) {
  test_arithmetic();
  test_broadcast();
  test_strided();
  test_scalar_unary();
  test_integers();
  test_table();
  test_activations();
  test_float32_accuracy();
  test_strided_same_bits();
  test_softmax();
  return tap_done();
}

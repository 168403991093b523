/* Tests of reductions: hand-computed values over all dims and one dim,
   keepdim, strided views (row and column layouts), integer inputs,
   accuracy of float32 sums, thread-count independence, bad input. */
#include "tap.h"
#include "helpers.h"

/* op over dim of x as a new tensor (EBL_DIM_ALL for everything). */
static ebl_tensor reduce(ebl_reduce_op op, const ebl_tensor *x, int dim,
                         int keepdim, double p) {
  ebl_tensor r;
  memset(&r, 0, sizeof r);
  if (ebl_reduce_new(op, &r, x, dim, keepdim, p) != EBL_OK)
    printf("# reduce failed: %s\n", ebl_error());
  return r;
}

/* All eight reductions over everything and over each dim of a 2x3. */
static void test_values(void) {
  ebl_tensor x = make(EBL_F32, 2, SHAPE(2, 3), VALUES(1, -4, 2, 3, 0, -2));
  struct { ebl_reduce_op op; double p, all, d0[3], d1[2]; } cases[] = {
    {EBL_SUM, 0, 0, {4, -4, 0}, {-1, 1}},
    {EBL_MEAN, 0, 0, {2, -2, 0}, {-1.0 / 3, 1.0 / 3}},
    {EBL_MAX, 0, 3, {3, 0, 2}, {2, 3}},
    {EBL_MIN, 0, -4, {1, -4, -2}, {-4, -2}},
    {EBL_ARGMAX, 0, 3, {1, 1, 0}, {2, 0}},
    {EBL_ARGMIN, 0, 1, {0, 0, 1}, {1, 2}},
    {EBL_VAR, 1, 34.0 / 5, {2, 8, 8}, {31.0 / 3, 19.0 / 3}},
    {EBL_NORM, 2, sqrt(34.0), {sqrt(10.0), 4, sqrt(8.0)},
     {sqrt(21.0), sqrt(13.0)}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *name = ebl_reduce_name(cases[i].op);
    ebl_tensor r = reduce(cases[i].op, &x, EBL_DIM_ALL, 0, cases[i].p);
    CHECK(r.ndim == 0, "%s over all gives a 0-dim tensor", name);
    CHECK_CLOSE(at(&r, 0), cases[i].all, 1e-6, "%s over all", name);
    ebl_tensor_release(&r);
    r = reduce(cases[i].op, &x, 0, 0, cases[i].p);
    int ok = r.ndim == 1 && r.shape[0] == 3;
    for (int j = 0; ok && j < 3; j++)
      ok = fabs(at(&r, j) - cases[i].d0[j]) < 1e-6;
    CHECK(ok, "%s over dim 0", name);
    ebl_tensor_release(&r);
    r = reduce(cases[i].op, &x, -1, 1, cases[i].p);
    ok = r.ndim == 2 && r.shape[0] == 2 && r.shape[1] == 1;
    for (int j = 0; ok && j < 2; j++)
      ok = fabs(at(&r, j) - cases[i].d1[j]) < 1e-6;
    CHECK(ok, "%s over dim 1, keepdim", name);
    ebl_tensor_release(&r);
  }
  ebl_tensor r = reduce(EBL_ARGMAX, &x, 1, 0, 0);
  CHECK(r.dtype == EBL_I32, "argmax gives int32");
  ebl_tensor_release(&r);
  r = reduce(EBL_NORM, &x, EBL_DIM_ALL, 0, 1);
  CHECK(at(&r, 0) == 12, "L1 norm");
  ebl_tensor_release(&r);
  r = reduce(EBL_NORM, &x, 1, 0, INFINITY);
  CHECK(equals(&r, 2, VALUES(4, 3)), "max norm per row");
  ebl_tensor_release(&r);
  r = reduce(EBL_NORM, &x, EBL_DIM_ALL, 0, 3);
  CHECK_CLOSE(at(&r, 0), cbrt(1 + 64 + 8 + 27 + 8), 1e-6, "3-norm");
  ebl_tensor_release(&r);
  r = reduce(EBL_VAR, &x, 1, 0, 0);
  CHECK_CLOSE(at(&r, 1), 38.0 / 9, 1e-6, "biased var of row 1");
  ebl_tensor_release(&r);
  ebl_tensor_release(&x);
}

/* Strided inputs: a transpose (column layout) and a narrowed view. */
static void test_strided(void) {
  ebl_tensor a, t, n;
  ebl_tensor_arange(&a, EBL_F64, 0, 60, 1, EBL_CPU);
  ebl_tensor_reshape(&a, &a, 2, SHAPE(20, 3));
  ebl_tensor_transpose(&t, &a, 0, 1);       /* 3x20, rows stride 1 */
  ebl_tensor r = reduce(EBL_SUM, &t, 0, 0, 0);
  int ok = r.shape[0] == 20;
  for (int j = 0; ok && j < 20; j++) ok = at(&r, j) == 9 * j + 3;
  CHECK(ok, "sum over dim 0 of a transpose");
  ebl_tensor_release(&r);
  r = reduce(EBL_MAX, &a, 0, 0, 0);          /* column layout */
  CHECK(equals(&r, 3, VALUES(57, 58, 59)), "column max of 20x3");
  ebl_tensor_release(&r);
  ebl_tensor big;
  ebl_tensor_arange(&big, EBL_F32, 0, 4000, 1, EBL_CPU);
  ebl_tensor_reshape(&big, &big, 2, SHAPE(40, 100));
  ebl_tensor_narrow(&n, &big, 1, 10, 50);
  r = reduce(EBL_ARGMIN, &n, 0, 0, 0);
  CHECK(r.shape[0] == 50 && at(&r, 7) == 0, "argmin over rows, narrowed");
  ebl_tensor_release(&r);
  r = reduce(EBL_MEAN, &n, EBL_DIM_ALL, 0, 0);
  CHECK_CLOSE(at(&r, 0), 1950 + 34.5, 1e-12, "mean of a narrowed view");
  ebl_tensor_release(&r);
  r = reduce(EBL_VAR, &n, 0, 1, 1);
  CHECK(r.shape[0] == 1 && r.shape[1] == 50, "var keepdim shape");
  CHECK_CLOSE(at(&r, 3), 10000.0 * 40 * 41 / 12, 1e-7,
              "column var of an arithmetic sequence");
  ebl_tensor_release(&r);
  ebl_tensor_release(&n);
  ebl_tensor_release(&big);
  ebl_tensor_release(&t);
  ebl_tensor_release(&a);
}

/* Integer inputs, NaN, the accuracy of long float32 sums, into forms. */
static void test_dtypes(void) {
  ebl_tensor u = make(EBL_U8, 1, SHAPE(4), VALUES(200, 100, 3, 255));
  ebl_tensor r = reduce(EBL_SUM, &u, EBL_DIM_ALL, 0, 0);
  CHECK(r.dtype == EBL_I32 && at(&r, 0) == 558, "uint8 sum in int32");
  ebl_tensor_release(&r);
  r = reduce(EBL_MEAN, &u, 0, 0, 0);
  CHECK(r.dtype == EBL_F64 && at(&r, 0) == 139.5, "uint8 mean in float64");
  ebl_tensor_release(&r);
  r = reduce(EBL_MAX, &u, 0, 0, 0);
  CHECK(r.dtype == EBL_U8 && at(&r, 0) == 255, "uint8 max stays uint8");
  ebl_tensor_release(&r);
  ebl_tensor x = make(EBL_F32, 1, SHAPE(3), VALUES(1, NAN, 3));
  r = reduce(EBL_MAX, &x, 0, 0, 0);
  CHECK(isnan(at(&r, 0)), "max propagates NaN");
  ebl_tensor_release(&r);
  r = reduce(EBL_ARGMAX, &x, 0, 0, 0);
  CHECK(at(&r, 0) == 1, "argmax points at the NaN");
  ebl_tensor_release(&r);
  ebl_tensor_release(&x);
  /* 4M float32 values of 0.1: a float accumulator would drift by
     several percent. */
  ebl_tensor tenths;
  ebl_tensor_full(&tenths, EBL_F32, 1, SHAPE(1 << 22), 0.1, EBL_CPU);
  r = reduce(EBL_SUM, &tenths, EBL_DIM_ALL, 0, 0);
  CHECK_CLOSE(at(&r, 0), (double)0.1f * (1 << 22), 1e-7,
              "float32 sum of 4M values accumulates in double");
  ebl_tensor_release(&r);
  ebl_tensor out;
  ebl_tensor_zeros(&out, EBL_F64, 1, SHAPE(4), EBL_CPU);
  ebl_tensor_reshape(&tenths, &tenths, 2, SHAPE(4, 1 << 20));
  CHECK(ebl_reduce(EBL_SUM, &out, &tenths, 1, 0, 0) == EBL_OK,
        "sum into a float64 output");
  CHECK_CLOSE(at(&out, 3), (double)0.1f * (1 << 20), 1e-9,
              "row sums into float64");
  CHECK(ebl_reduce(EBL_SUM, &out, &tenths, 0, 0, 0) == EBL_EARG &&
        error_is("sum: output has shape 4, expected 1048576"),
        "wrong output shape");
  ebl_tensor_release(&out);
  ebl_tensor_release(&tenths);
  ebl_tensor_release(&u);
}

/* Same numbers with 1 and 2 threads, bit for bit. */
static void test_threads(void) {
  ebl_tensor x;
  ebl_manual_seed(11);
  ebl_tensor_randn(&x, EBL_F32, 2, SHAPE(300, 1000), EBL_CPU);
  double v1[4], v2[4];
  for (int pass = 0; pass < 2; pass++) {
    ebl_set_num_threads(pass + 1);
    double *v = pass ? v2 : v1;
    ebl_reduce_all(EBL_SUM, &x, 0, &v[0]);
    ebl_reduce_all(EBL_VAR, &x, 1, &v[1]);
    ebl_tensor r = reduce(EBL_SUM, &x, 0, 0, 0);
    ebl_reduce_all(EBL_SUM, &r, 0, &v[2]);
    ebl_tensor_release(&r);
    r = reduce(EBL_NORM, &x, 1, 0, 2);
    ebl_reduce_all(EBL_SUM, &r, 0, &v[3]);
    ebl_tensor_release(&r);
  }
  CHECK(memcmp(v1, v2, sizeof v1) == 0,
        "reductions agree bitwise for 1 and 2 threads");
  ebl_tensor_release(&x);
}

/* Bad arguments give EBL_EARG and a message. */
static void test_errors(void) {
  ebl_tensor x = make(EBL_F32, 2, SHAPE(2, 0), NULL), r;
  CHECK(ebl_reduce_new(EBL_MAX, &r, &x, 1, 0, 0) == EBL_EARG &&
        error_is("max: reduction over no elements"), "max of nothing");
  CHECK(ebl_reduce_new(EBL_SUM, &r, &x, 1, 0, 0) == EBL_OK &&
        r.shape[0] == 2 && at(&r, 1) == 0, "sum of nothing is 0");
  ebl_tensor_release(&r);
  CHECK(ebl_reduce_new(EBL_NORM, &r, &x, 0, 0, -1) == EBL_EARG &&
        error_is("norm: order p = -1 must be positive"), "bad norm order");
  CHECK(ebl_reduce_new(EBL_SUM, &r, &x, 2, 0, 0) == EBL_EARG &&
        error_is("sum: dim 2 out of range for a 2-d tensor"), "bad dim");
  ebl_tensor_release(&x);
}

/* norm(2) over dim 0 of a 3x9 reads columns (the column layout): its
   squares need no centre. Column j holds j, 2j, 2j: norm 3j. */
static void test_norm_columns(void) {
  double v[27];
  for (int j = 0; j < 9; j++) {
    v[j] = j;
    v[9 + j] = v[18 + j] = 2 * j;
  }
  ebl_tensor x = make(EBL_F32, 2, SHAPE(3, 9), v);
  ebl_tensor r = reduce(EBL_NORM, &x, 0, 0, 2);
  int ok = r.ndim == 1 && r.shape[0] == 9;
  for (int j = 0; ok && j < 9; j++) ok = fabs(at(&r, j) - 3 * j) < 1e-5;
  CHECK(ok, "norm(2) over the rows of a 3x9 (column layout)");
  ebl_tensor_release(&r);
  ebl_tensor_release(&x);
}

int main(void) {
  test_values();
  test_norm_columns();
  test_strided();
  test_dtypes();
  test_threads();
  test_errors();
  return tap_done();
}

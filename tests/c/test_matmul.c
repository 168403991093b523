/* Tests of matmul and gemm: hand-computed products, transposed and
   strided views (without copies where BLAS can take them), 1-D operands,
   broadcast batches against naive loops, alpha/beta, aliasing, errors. */
#include "tap.h"
#include "helpers.h"

/* Element (i, j) of matrix b of a batch view t (batch index flat). */
static double elem(const ebl_tensor *t, int64_t b, int64_t i, int64_t j) {
  int64_t idx[EBL_MAX_DIMS];
  int nb = t->ndim - 2;
  for (int d = nb - 1; d >= 0; d--) {
    idx[d] = b % t->shape[d];
    b /= t->shape[d];
  }
  idx[nb] = i;
  idx[nb + 1] = j;
  double v = NAN;
  ebl_tensor_get(t, idx, &v);
  return v;
}

/* Largest |c - a @ b| over a batch, with a and b broadcast to c's batch
   dims (all three >= 2-D, c's batch dims the full ones). */
static double naive_error(const ebl_tensor *a, const ebl_tensor *b,
                          const ebl_tensor *c) {
  ebl_tensor ae, be;
  int nd = c->ndim;
  int64_t shape[EBL_MAX_DIMS];
  memcpy(shape, c->shape, sizeof shape);
  shape[nd - 2] = a->shape[a->ndim - 2];
  shape[nd - 1] = a->shape[a->ndim - 1];
  ebl_tensor_expand(&ae, a, nd, shape);
  shape[nd - 2] = b->shape[b->ndim - 2];
  shape[nd - 1] = b->shape[b->ndim - 1];
  ebl_tensor_expand(&be, b, nd, shape);
  int64_t count = 1, m = c->shape[nd - 2], n = c->shape[nd - 1];
  int64_t k = a->shape[a->ndim - 1];
  for (int d = 0; d < nd - 2; d++) count *= c->shape[d];
  double worst = 0;
  for (int64_t q = 0; q < count; q++)
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t l = 0; l < k; l++)
          s += elem(&ae, q, i, l) * elem(&be, q, l, j);
        double err = fabs(s - elem(c, q, i, j));
        if (!(err <= worst)) worst = err;     /* NaN sticks */
      }
  ebl_tensor_release(&ae);
  ebl_tensor_release(&be);
  return worst;
}

static ebl_tensor randn(ebl_dtype dtype, int ndim, const int64_t *shape) {
  ebl_tensor t;
  ebl_tensor_randn(&t, dtype, ndim, shape, EBL_CPU);
  return t;
}

/* A transposed view goes to BLAS as a transpose: no temporary storage. */
static void test_no_copy(void) {
  ebl_tensor a = randn(EBL_F32, 2, SHAPE(256, 128));
  ebl_tensor b = randn(EBL_F32, 2, SHAPE(256, 64)), at_, c;
  ebl_tensor_zeros(&c, EBL_F32, 2, SHAPE(128, 64), EBL_CPU);
  ebl_tensor_transpose(&at_, &a, 0, 1);
  size_t peak = ebl_memory_peak(), live = ebl_memory_live();
  CHECK(peak == live, "no earlier peak hides a temporary");
  CHECK(ebl_matmul(&c, &at_, &b) == EBL_OK, "a^T @ b into c");
  CHECK(ebl_memory_peak() == peak, "no temporary for a transposed view");
  CHECK(naive_error(&at_, &b, &c) < 1e-4, "a^T @ b values");
  ebl_tensor_release(&at_);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
  ebl_tensor_release(&c);
}

static void test_small(void) {
  ebl_tensor a = make(EBL_F32, 2, SHAPE(2, 2), VALUES(1, 2, 3, 4));
  ebl_tensor b = make(EBL_F32, 2, SHAPE(2, 2), VALUES(5, 6, 7, 8)), c;
  CHECK(ebl_matmul_new(&c, &a, &b) == EBL_OK &&
        equals(&c, 4, VALUES(19, 22, 43, 50)), "2x2 @ 2x2");
  CHECK(ebl_gemm(&c, &a, &b, 2, -1) == EBL_OK &&
        equals(&c, 4, VALUES(19, 22, 43, 50)), "c = 2 a@b - c");
  ebl_tensor_release(&c);
  ebl_tensor v = make(EBL_F32, 1, SHAPE(2), VALUES(1, -1));
  CHECK(ebl_matmul_new(&c, &a, &v) == EBL_OK && c.ndim == 1 &&
        equals(&c, 2, VALUES(-1, -1)), "matrix @ vector");
  ebl_tensor_release(&c);
  CHECK(ebl_matmul_new(&c, &v, &a) == EBL_OK && c.ndim == 1 &&
        equals(&c, 2, VALUES(-2, -2)), "vector @ matrix");
  ebl_tensor_release(&c);
  CHECK(ebl_matmul_new(&c, &v, &v) == EBL_OK && c.ndim == 0 &&
        at(&c, 0) == 2, "vector @ vector is 0-dim");
  ebl_tensor_release(&c);
  /* a = a @ b in place: BLAS may not write over its input. */
  CHECK(ebl_matmul(&a, &a, &b) == EBL_OK &&
        equals(&a, 4, VALUES(19, 22, 43, 50)), "a = a @ b in place");
  ebl_tensor_release(&v);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

/* Every layout of a and b against the naive product, float64. */
static void test_layouts(void) {
  ebl_tensor a = randn(EBL_F64, 2, SHAPE(7, 5));
  ebl_tensor b = randn(EBL_F64, 2, SHAPE(5, 6));
  ebl_tensor at_, bt, att, btt, c, wide, nb;
  ebl_tensor_transpose(&at_, &a, 0, 1);
  ebl_tensor_clone(&att, &at_);                /* 5x7 dense */
  ebl_tensor_transpose(&att, &att, 0, 1);      /* 7x5, column-major */
  ebl_tensor_transpose(&bt, &b, 0, 1);
  ebl_tensor_clone(&btt, &bt);
  ebl_tensor_transpose(&btt, &btt, 0, 1);
  ebl_matmul_new(&c, &att, &btt);
  CHECK(naive_error(&a, &b, &c) < 1e-12, "column-major a and b");
  ebl_tensor_release(&c);
  ebl_matmul_new(&c, &a, &btt);
  CHECK(naive_error(&a, &b, &c) < 1e-12, "a @ column-major b");
  ebl_tensor_release(&c);
  /* Every-other-column view: no unit stride, copied for BLAS. */
  ebl_tensor_randn(&wide, EBL_F64, 2, SHAPE(7, 10), EBL_CPU);
  nb = wide;
  nb.shape[1] = 5;
  nb.stride[1] = 2;
  ebl_matmul_new(&c, &nb, &b);
  CHECK(naive_error(&nb, &b, &c) < 1e-12, "stride-2 columns are copied");
  ebl_tensor_release(&c);
  /* Output a transposed view: computed aside, copied in. */
  ebl_tensor ct;
  ebl_tensor_zeros(&ct, EBL_F64, 2, SHAPE(6, 7), EBL_CPU);
  ebl_tensor_transpose(&c, &ct, 0, 1);
  CHECK(ebl_matmul(&c, &a, &b) == EBL_OK &&
        naive_error(&a, &b, &c) < 1e-12, "into a transposed output");
  ebl_tensor_release(&c);
  ebl_tensor_release(&ct);
  ebl_tensor_release(&wide);
  ebl_tensor_release(&at_);
  ebl_tensor_release(&att);
  ebl_tensor_release(&bt);
  ebl_tensor_release(&btt);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

/* Batches: broadcast batch dims, a batch against one matrix (folded
   into one product), transposed batch views. */
static void test_batched(void) {
  ebl_tensor a = randn(EBL_F64, 4, SHAPE(2, 1, 3, 4));
  ebl_tensor b = randn(EBL_F64, 3, SHAPE(3, 4, 5)), c;
  CHECK(ebl_matmul_new(&c, &a, &b) == EBL_OK && c.ndim == 4 &&
        c.shape[0] == 2 && c.shape[1] == 3 && c.shape[3] == 5,
        "(2,1,3,4) @ (3,4,5) is (2,3,3,5)");
  CHECK(naive_error(&a, &b, &c) < 1e-12, "broadcast batch values");
  ebl_tensor_release(&c);
  ebl_tensor x = randn(EBL_F32, 3, SHAPE(4, 6, 8));
  ebl_tensor w = randn(EBL_F32, 2, SHAPE(10, 8)), wt;
  ebl_tensor_transpose(&wt, &w, 0, 1);
  CHECK(ebl_matmul_new(&c, &x, &wt) == EBL_OK &&
        naive_error(&x, &wt, &c) < 1e-4, "batch @ W^T (one folded gemm)");
  ebl_tensor_release(&c);
  ebl_tensor bt;
  ebl_tensor_transpose(&bt, &b, 1, 2);        /* (3,5,4) view */
  ebl_tensor y = randn(EBL_F64, 3, SHAPE(3, 2, 5));
  CHECK(ebl_matmul_new(&c, &y, &bt) == EBL_OK &&
        naive_error(&y, &bt, &c) < 1e-12, "batched transposed views");
  ebl_tensor_release(&c);
  ebl_tensor_release(&bt);
  ebl_tensor_release(&y);
  ebl_tensor_release(&wt);
  ebl_tensor_release(&w);
  ebl_tensor_release(&x);
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
}

static void test_errors(void) {
  ebl_tensor a = randn(EBL_F32, 2, SHAPE(3, 4)), c;
  ebl_tensor d = randn(EBL_F64, 2, SHAPE(4, 2));
  ebl_tensor i = make(EBL_I32, 2, SHAPE(4, 2), NULL);
  CHECK(ebl_matmul_new(&c, &a, &a) == EBL_EARG &&
        error_is("matmul: shapes 3x4 and 3x4 do not fit (4 ~= 3)"),
        "inner sizes differ");
  CHECK(ebl_matmul_new(&c, &a, &d) == EBL_EARG &&
        error_is("matmul: dtypes float32, float64 and output float32 "
                 "differ"), "mixed dtypes");
  ebl_tensor_release(&d);
  CHECK(ebl_matmul_new(&c, &i, &i) == EBL_EARG,
        "integer operands fail");
  ebl_tensor b3 = randn(EBL_F32, 3, SHAPE(2, 4, 5));
  ebl_tensor b4 = randn(EBL_F32, 3, SHAPE(3, 3, 4));
  CHECK(ebl_matmul_new(&c, &b4, &b3) == EBL_EARG &&
        error_is("matmul: batch dims of 3x3x4 and 2x4x5 do not broadcast"),
        "batch dims do not broadcast");
  ebl_tensor_release(&b3);
  ebl_tensor_release(&b4);
  ebl_tensor_release(&i);
  ebl_tensor_release(&a);
}

int main(void) {
  ebl_manual_seed(3);
  test_no_copy();
  test_small();
  test_layouts();
  test_batched();
  test_errors();
  return tap_done();
}

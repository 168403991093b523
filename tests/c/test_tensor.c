/* Tests of tensor values and views: allocation, refcounts and memory
   accounting, reshape/transpose/narrow/select/expand/squeeze edge cases,
   element access, copies with casts, creation functions, bad input. */
#include "tap.h"
#include "helpers.h"

/* Allocation, alignment, refcounts and the live-byte counter. */
static void test_storage(void) {
  size_t start = ebl_memory_live();
  ebl_tensor a, v;
  CHECK(ebl_tensor_empty(&a, EBL_F32, 2, SHAPE(3, 5), EBL_CPU) == EBL_OK,
        "empty 3x5");
  CHECK(ebl_memory_live() - start == 60, "60 bytes live for 3x5 float32");
  CHECK(((uintptr_t)a.storage->data & 63) == 0, "storage 64-byte aligned");
  CHECK(a.stride[0] == 5 && a.stride[1] == 1, "row-major strides");
  ebl_tensor_view(&v, &a);
  CHECK(a.storage->refcount == 2, "view retains the storage");
  ebl_tensor_release(&a);
  CHECK(ebl_memory_live() - start == 60, "storage alive while a view is");
  CHECK(a.storage == NULL, "release zeroes the tensor");
  ebl_tensor_release(&a);
  ebl_tensor_release(&v);
  CHECK(ebl_memory_live() == start, "memory back to start");
  ebl_tensor z;
  CHECK(ebl_tensor_zeros(&z, EBL_F64, 0, NULL, EBL_CPU) == EBL_OK &&
        ebl_tensor_numel(&z) == 1 && at(&z, 0) == 0.0, "0-dim zeros");
  ebl_tensor_release(&z);
  CHECK(ebl_tensor_empty(&z, EBL_U8, 2, SHAPE(0, 4), EBL_CPU) == EBL_OK &&
        ebl_tensor_numel(&z) == 0, "empty tensor with a zero size");
  ebl_tensor_release(&z);
  CHECK(ebl_memory_live() == start, "memory back to start again");
}

/* Reshape is a view when strides allow, a copy otherwise. */
static void test_reshape(void) {
  ebl_tensor a = make(EBL_F32, 2, SHAPE(2, 3), VALUES(0, 1, 2, 3, 4, 5));
  ebl_tensor r, t, r2;
  CHECK(ebl_tensor_reshape(&r, &a, 3, SHAPE(3, -1, 1)) == EBL_OK &&
        r.shape[1] == 2 && r.storage == a.storage, "reshape 3x-1x1 view");
  CHECK(equals(&r, 6, VALUES(0, 1, 2, 3, 4, 5)), "reshape keeps order");
  ebl_tensor_transpose(&t, &a, 0, 1);
  CHECK(!ebl_tensor_is_contiguous(&t), "transpose is not contiguous");
  CHECK(ebl_tensor_reshape(&r2, &t, 1, SHAPE(6)) == EBL_OK &&
        r2.storage != a.storage, "reshape of transpose copies");
  CHECK(equals(&r2, 6, VALUES(0, 3, 1, 4, 2, 5)), "copy in view order");
  ebl_tensor_release(&r2);
  /* A narrowed view whose rows keep their stride can still be viewed. */
  ebl_tensor n, nv;
  ebl_tensor_narrow(&n, &a, 1, 1, 2);
  CHECK(ebl_tensor_reshape(&nv, &n, 3, SHAPE(2, 1, 2)) == EBL_OK &&
        nv.storage == a.storage && nv.stride[0] == 3, "narrowed: view");
  CHECK(equals(&nv, 4, VALUES(1, 2, 4, 5)), "narrowed reshape values");
  CHECK(ebl_tensor_reshape(&r2, &n, 1, SHAPE(4)) == EBL_OK &&
        r2.storage != a.storage, "narrowed flat: copy");
  CHECK(equals(&r2, 4, VALUES(1, 2, 4, 5)), "narrowed flat values");
  ebl_tensor_release(&r2);
  CHECK(ebl_tensor_reshape(&r2, &a, 2, SHAPE(4, 2)) == EBL_EARG &&
        error_is("reshape: cannot reshape 2x3 (6 elements) to 4x2"),
        "reshape with the wrong count fails");
  CHECK(ebl_tensor_reshape(&r2, &a, 2, SHAPE(-1, -1)) == EBL_EARG,
        "two -1 sizes fail");
  ebl_tensor f;
  CHECK(ebl_tensor_flatten(&f, &t, 0, -1) == EBL_OK &&
        equals(&f, 6, VALUES(0, 3, 1, 4, 2, 5)), "flatten transposed");
  ebl_tensor_release(&f);
  ebl_tensor_release(&nv);
  ebl_tensor_release(&n);
  ebl_tensor_release(&t);
  ebl_tensor_release(&r);
  ebl_tensor_release(&a);
}

/* transpose, permute, narrow, select, unsqueeze, squeeze. */
static void test_views(void) {
  ebl_tensor a = make(EBL_F64, 3, SHAPE(2, 3, 4), NULL);
  ebl_tensor v, w;
  for (int i = 0; i < 24; i++) {
    int64_t idx[3] = {i / 12, (i / 4) % 3, i % 4};
    ebl_tensor_set(&a, idx, i);
  }
  CHECK(ebl_tensor_permute(&v, &a, (const int[]){2, 0, 1}) == EBL_OK &&
        v.shape[0] == 4 && v.shape[1] == 2 && v.shape[2] == 3,
        "permute 2,0,1 shape");
  CHECK(at(&v, 1) == 4 && at(&v, 3) == 12, "permute values");
  CHECK(ebl_tensor_permute(&w, &a, (const int[]){0, 0, 1}) == EBL_EARG &&
        error_is("permute: dim 0 appears twice"), "permute repeated dim");
  ebl_tensor_release(&v);
  CHECK(ebl_tensor_select(&v, &a, 1, 2) == EBL_OK && v.ndim == 2 &&
        equals(&v, 8, VALUES(8, 9, 10, 11, 20, 21, 22, 23)),
        "select dim 1 index 2");
  CHECK(ebl_tensor_select(&w, &v, -1, 3) == EBL_OK &&
        equals(&w, 2, VALUES(11, 23)), "select of select, negative dim");
  int64_t idx[1] = {1};
  ebl_tensor_set(&w, idx, -5);
  idx[0] = 0;
  int64_t full[3] = {1, 2, 3};
  double back;
  ebl_tensor_get(&a, full, &back);
  CHECK(back == -5, "writes through a view reach the storage");
  ebl_tensor_release(&w);
  ebl_tensor_release(&v);
  CHECK(ebl_tensor_narrow(&v, &a, 2, 1, 2) == EBL_OK &&
        ebl_tensor_narrow(&v, &v, 0, 1, 1) == EBL_OK &&
        equals(&v, 6, VALUES(13, 14, 17, 18, 21, 22)), "narrow twice");
  CHECK(a.storage->refcount == 2, "narrow into itself keeps one ref");
  CHECK(ebl_tensor_narrow(&w, &a, 2, 3, 2) == EBL_EARG &&
        error_is("narrow: range 3..4 out of bounds for dim 2 of size 4"),
        "narrow past the end");
  ebl_tensor_release(&v);
  CHECK(ebl_tensor_unsqueeze(&v, &a, -1) == EBL_OK && v.ndim == 4 &&
        v.shape[3] == 1 && v.stride[3] == 1, "unsqueeze at the end");
  CHECK(ebl_tensor_unsqueeze(&w, &v, 0) == EBL_OK && w.shape[0] == 1 &&
        ebl_tensor_squeeze(&w, &w, EBL_DIM_ALL) == EBL_OK && w.ndim == 3,
        "unsqueeze then squeeze all");
  ebl_tensor_release(&w);
  CHECK(ebl_tensor_squeeze(&w, &v, 0) == EBL_OK && w.ndim == 4,
        "squeeze of a size-2 dim does nothing");
  ebl_tensor_release(&w);
  CHECK(ebl_tensor_transpose(&w, &a, 0, 5) == EBL_EARG &&
        error_is("transpose: dim 5 out of range for a 3-d tensor"),
        "transpose dim out of range");
  ebl_tensor_release(&v);
  ebl_tensor_release(&a);
}

/* expand gives stride 0; copy broadcasts; writing an expanded view fails. */
static void test_expand(void) {
  ebl_tensor a = make(EBL_F32, 2, SHAPE(3, 1), VALUES(1, 2, 3));
  ebl_tensor e, out;
  CHECK(ebl_tensor_expand(&e, &a, 3, SHAPE(2, 3, 4)) == EBL_OK &&
        e.stride[0] == 0 && e.stride[2] == 0 && e.stride[1] == 1,
        "expand 3x1 to 2x3x4 strides");
  CHECK(at(&e, 0) == 1 && at(&e, 5) == 2 && at(&e, 23) == 3,
        "expanded values");
  ebl_tensor_zeros(&out, EBL_F64, 3, SHAPE(2, 3, 4), EBL_CPU);
  CHECK(ebl_copy(&out, &a) == EBL_OK && at(&out, 13) == 1 &&
        at(&out, 22) == 3, "copy broadcasts 3x1 into 2x3x4 (and casts)");
  CHECK(ebl_copy(&e, &out) == EBL_EARG,
        "copy into an expanded view fails");
  ebl_tensor_release(&e);
  CHECK(ebl_tensor_expand(&e, &a, 2, SHAPE(4, 4)) == EBL_EARG &&
        error_is("expand: cannot expand 3x1 to 4x4"), "bad expand");
  CHECK(ebl_tensor_expand(&e, &a, 2, SHAPE(-1, 2)) == EBL_OK &&
        e.shape[0] == 3 && e.shape[1] == 2, "expand keeps a -1 size");
  ebl_tensor_release(&e);
  ebl_tensor_release(&out);
  ebl_tensor_release(&a);
}

/* Casts saturate, buffers round-trip, copies between overlapping views. */
static void test_copy(void) {
  ebl_tensor f = make(EBL_F64, 1, SHAPE(5), VALUES(-3.7, 0.5, 300, NAN, 1e12));
  ebl_tensor i, u;
  CHECK(ebl_to_dtype(&i, &f, EBL_I32) == EBL_OK &&
        equals(&i, 5, VALUES(-3, 0, 300, 0, 2147483647)),
        "float64 to int32 truncates and saturates");
  CHECK(ebl_to_dtype(&u, &i, EBL_U8) == EBL_OK &&
        equals(&u, 5, VALUES(0, 0, 255, 0, 255)), "int32 to uint8 clamps");
  float buf[5];
  CHECK(ebl_tensor_to_buffer(&i, buf, EBL_F32) == EBL_OK && buf[2] == 300,
        "to_buffer casts");
  ebl_tensor_release(&u);
  ebl_tensor_release(&i);
  /* Shift a row right by one inside the same storage. */
  ebl_tensor a = make(EBL_F32, 1, SHAPE(5), VALUES(1, 2, 3, 4, 5));
  ebl_tensor src, dst;
  ebl_tensor_narrow(&src, &a, 0, 0, 4);
  ebl_tensor_narrow(&dst, &a, 0, 1, 4);
  CHECK(ebl_copy(&dst, &src) == EBL_OK &&
        equals(&a, 5, VALUES(1, 1, 2, 3, 4)), "overlapping copy");
  ebl_tensor t;
  ebl_tensor sq = make(EBL_F32, 2, SHAPE(2, 2), VALUES(1, 2, 3, 4));
  ebl_tensor_transpose(&t, &sq, 0, 1);
  CHECK(ebl_copy(&sq, &t) == EBL_OK && equals(&sq, 4, VALUES(1, 3, 2, 4)),
        "copy a matrix onto its own transpose");
  ebl_tensor_release(&t);
  ebl_tensor_release(&sq);
  ebl_tensor_release(&src);
  ebl_tensor_release(&dst);
  ebl_tensor_release(&a);
  ebl_tensor_release(&f);
}

/* ones, full, arange, linspace, eye, from_buffer, get/set errors. */
static void test_create(void) {
  ebl_tensor t;
  CHECK(ebl_tensor_arange(&t, EBL_F32, 0, 1, 0.25, EBL_CPU) == EBL_OK &&
        equals(&t, 4, VALUES(0, 0.25, 0.5, 0.75)), "arange 0..1 by 0.25");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_arange(&t, EBL_I32, 5, 0, -2, EBL_CPU) == EBL_OK &&
        equals(&t, 3, VALUES(5, 3, 1)), "arange down");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_arange(&t, EBL_F32, 0, 1, 0, EBL_CPU) == EBL_EARG,
        "arange with step 0 fails");
  CHECK(ebl_tensor_linspace(&t, EBL_F64, -1, 1, 5, EBL_CPU) == EBL_OK &&
        equals(&t, 5, VALUES(-1, -0.5, 0, 0.5, 1)), "linspace");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_linspace(&t, EBL_F32, 0, 0.3, 7, EBL_CPU) == EBL_OK &&
        at(&t, 6) == (double)0.3f, "linspace ends exactly at stop");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_eye(&t, EBL_U8, 2, 3, EBL_CPU) == EBL_OK &&
        equals(&t, 6, VALUES(1, 0, 0, 0, 1, 0)), "eye 2x3");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_full(&t, EBL_I32, 2, SHAPE(2, 2), 7.9, EBL_CPU) ==
        EBL_OK && equals(&t, 4, VALUES(7, 7, 7, 7)), "full int32 7.9 -> 7");
  double v;
  CHECK(ebl_tensor_get(&t, SHAPE(2, 0), &v) == EBL_EARG &&
        error_is("get: index 2 out of range for dim 0 of size 2"),
        "get out of range");
  CHECK(ebl_tensor_item(&t, &v) == EBL_EARG &&
        error_is("item: tensor of shape 2x2 has 4 elements, not 1"),
        "item on 4 elements");
  ebl_tensor_release(&t);
  CHECK(ebl_tensor_ones(&t, EBL_F32, 2, SHAPE(2, -1), EBL_CPU) == EBL_EARG &&
        error_is("empty: size -1 of dim 1 is negative"), "negative size");
  CHECK(ebl_tensor_empty(&t, EBL_F32, 9, SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1),
                         EBL_CPU) == EBL_EARG &&
        error_is("empty: 9 dims (at most 8)"), "too many dims");
  CHECK(ebl_tensor_empty(&t, EBL_F32, 1, SHAPE(4), EBL_CUDA) != EBL_OK,
        "a CUDA tensor fails in a CPU-only build");
  CHECK(ebl_dtype_from_name("float64") == EBL_F64 &&
        ebl_dtype_from_name("byte") == EBL_U8 &&
        ebl_dtype_from_name("complex") == -1, "dtype names");
}

/* Creating and dropping tensors in a loop does not grow memory. */
static void test_no_growth(void) {
  size_t start = ebl_memory_live();
  int64_t count = ebl_storage_count();
  for (int i = 0; i < 2000; i++) {
    ebl_tensor a, b, c;
    ebl_tensor_randn(&a, EBL_F32, 2, SHAPE(16, 8), EBL_CPU);
    ebl_tensor_transpose(&b, &a, 0, 1);
    ebl_binary_new(EBL_ADD, &c, &b, &b);
    ebl_tensor_reshape(&c, &c, 1, SHAPE(-1));
    ebl_tensor_release(&a);
    ebl_tensor_release(&b);
    ebl_tensor_release(&c);
  }
  CHECK(ebl_memory_live() == start && ebl_storage_count() == count,
        "2000 create/drop rounds leave no storage behind");
}

int main(void) {
  test_storage();
  test_reshape();
  test_views();
  test_expand();
  test_copy();
  test_create();
  test_no_growth();
  return tap_done();
}

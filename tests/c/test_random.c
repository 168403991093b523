/* Tests of the random numbers: Philox4x32-10 known answers, the
   documented mapping of counters to elements, seeds and offsets,
   independence of the thread count, and basic statistics. */
#include "tap.h"
#include "helpers.h"
#include "philox.h"

/* Known-answer vectors of Random123 for philox4x32-10. */
static void test_known_answers(void) {
  struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
    {{0, 0, 0, 0}, {0, 0},
     {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (int i = 0; i < 3; i++) {
    uint32_t out[4];
    ebl_philox4x32_10(kat[i].ctr, kat[i].key, out);
    CHECK(memcmp(out, kat[i].out, sizeof out) == 0,
          "philox4x32-10 known answer %d", i);
  }
}

/* Element i of a float32 uniform draw is word i%4 of block i/4. */
static void test_mapping(void) {
  ebl_tensor u, n;
  ebl_manual_seed(0x123456789abcULL);
  ebl_tensor_rand(&u, EBL_F32, 1, SHAPE(10), EBL_CPU);
  CHECK(ebl_rng_offset() == 3, "10 float32 uniforms use 3 blocks");
  int ok = 1;
  for (int i = 0; i < 10; i++) {
    uint32_t w[4];
    ebl_philox_block(0x123456789abcULL, (uint64_t)(i / 4), w);
    ok &= at(&u, i) == (double)(w[i % 4] >> 8) / 16777216.0;
  }
  CHECK(ok, "float32 uniforms follow the documented mapping");
  ebl_tensor_randn(&n, EBL_F64, 1, SHAPE(3), EBL_CPU);
  uint32_t w[4];
  ebl_philox_block(0x123456789abcULL, 3, w);
  double u1 = ebl_philox_u53(w[0], w[1]) + 1.0 / 9007199254740992.0;
  double u2 = ebl_philox_u53(w[2], w[3]);
  double z1 = sqrt(-2 * log(u1)) * sin(2 * M_PI * u2);
  CHECK(at(&n, 1) == z1, "float64 normals follow the documented mapping");
  CHECK(ebl_rng_offset() == 5, "3 float64 normals use 2 blocks");
  ebl_tensor_release(&n);
  ebl_tensor_release(&u);
}

/* Same seed, same numbers; a view is filled in its own element order. */
static void test_seeds(void) {
  ebl_tensor a, b, c, t;
  ebl_manual_seed(7);
  ebl_tensor_randn(&a, EBL_F32, 2, SHAPE(3, 5), EBL_CPU);
  ebl_manual_seed(7);
  ebl_tensor_randn(&b, EBL_F32, 2, SHAPE(3, 5), EBL_CPU);
  CHECK(memcmp(ebl_tensor_data(&a), ebl_tensor_data(&b), 60) == 0,
        "same seed, same numbers");
  ebl_tensor_randn(&c, EBL_F32, 2, SHAPE(3, 5), EBL_CPU);
  CHECK(memcmp(ebl_tensor_data(&a), ebl_tensor_data(&c), 60) != 0,
        "the offset moves on between draws");
  ebl_manual_seed(7);
  ebl_tensor_transpose(&t, &c, 0, 1);
  ebl_tensor_release(&b);
  ebl_tensor_randn(&b, EBL_F32, 2, SHAPE(5, 3), EBL_CPU);
  ebl_manual_seed(7);
  ebl_fill_randn(&t, 0, 1);
  CHECK(at(&t, 1) == at(&b, 1) && at(&t, 14) == at(&b, 14),
        "a transposed view is filled in its row-major order");
  uint64_t seed = ebl_rng_seed(), offset = ebl_rng_offset();
  ebl_tensor_rand(&a, EBL_F64, 1, SHAPE(4), EBL_CPU);
  ebl_rng_set_state(seed, offset);
  ebl_tensor_rand(&c, EBL_F64, 1, SHAPE(4), EBL_CPU);
  CHECK(at(&a, 3) == at(&c, 3), "a saved state replays");
  ebl_tensor_release(&a);
  ebl_tensor_release(&b);
  ebl_tensor_release(&c);
  ebl_tensor_release(&t);
}

/* Bitwise the same numbers with 1 and 2 threads. */
static void test_threads(void) {
  ebl_tensor r[2][4];
  for (int pass = 0; pass < 2; pass++) {
    ebl_set_num_threads(pass + 1);
    ebl_manual_seed(99);
    ebl_tensor_rand(&r[pass][0], EBL_F32, 1, SHAPE(300001), EBL_CPU);
    ebl_tensor_randn(&r[pass][1], EBL_F32, 1, SHAPE(300001), EBL_CPU);
    ebl_tensor_randn(&r[pass][2], EBL_F64, 1, SHAPE(300001), EBL_CPU);
    ebl_tensor_randint(&r[pass][3], EBL_I32, 1, SHAPE(300001), -5, 5,
                       EBL_CPU);
  }
  for (int k = 0; k < 4; k++) {
    size_t bytes = (size_t)300001 * ebl_dtype_size(r[0][k].dtype);
    CHECK(memcmp(ebl_tensor_data(&r[0][k]), ebl_tensor_data(&r[1][k]),
                 bytes) == 0, "draw %d identical with 1 and 2 threads", k);
    ebl_tensor_release(&r[0][k]);
    ebl_tensor_release(&r[1][k]);
  }
}

/* Mean and variance of a million draws. */
static void test_statistics(void) {
  ebl_tensor x;
  double mean, var, lo, hi;
  int64_t n = 1000000;
  ebl_manual_seed(2024);
  ebl_tensor_randn(&x, EBL_F32, 1, &n, EBL_CPU);
  ebl_reduce_all(EBL_MEAN, &x, 0, &mean);
  ebl_reduce_all(EBL_VAR, &x, 1, &var);
  CHECK(fabs(mean) < 5e-3, "randn mean %.5f within 5e-3 of 0", mean);
  CHECK(fabs(var - 1) < 1e-2, "randn var %.5f within 1e-2 of 1", var);
  ebl_fill_randn(&x, 3, 2);
  ebl_reduce_all(EBL_MEAN, &x, 0, &mean);
  ebl_reduce_all(EBL_VAR, &x, 1, &var);
  CHECK(fabs(mean - 3) < 1e-2 && fabs(var - 4) < 4e-2,
        "randn(3, 2): mean %.4f var %.4f", mean, var);
  ebl_fill_rand(&x, -1, 3);
  ebl_reduce_all(EBL_MEAN, &x, 0, &mean);
  ebl_reduce_all(EBL_VAR, &x, 1, &var);
  ebl_reduce_all(EBL_MIN, &x, 0, &lo);
  ebl_reduce_all(EBL_MAX, &x, 0, &hi);
  CHECK(fabs(mean - 1) < 1e-2 && fabs(var - 16.0 / 12) < 1e-2,
        "rand(-1, 3): mean %.4f var %.4f", mean, var);
  CHECK(lo >= -1 && hi < 3, "rand(-1, 3) stays in [-1, 3)");
  ebl_fill_bernoulli(&x, 0.3);
  ebl_reduce_all(EBL_MEAN, &x, 0, &mean);
  CHECK(fabs(mean - 0.3) < 3e-3, "bernoulli(0.3) mean %.4f", mean);
  ebl_tensor_release(&x);
  ebl_tensor k, counts, ten;
  ebl_tensor_randint(&k, EBL_U8, 1, &n, 0, 10, EBL_CPU);
  ebl_tensor_arange(&ten, EBL_U8, 0, 10, 1, EBL_CPU);
  ebl_tensor_reshape(&k, &k, 2, SHAPE(-1, 1));
  ebl_tensor eq;
  ebl_binary_new(EBL_EQ, &eq, &k, &ten);
  ebl_reduce_new(EBL_SUM, &counts, &eq, 0, 0, 0);
  double cmin, cmax;
  ebl_reduce_all(EBL_MIN, &counts, 0, &cmin);
  ebl_reduce_all(EBL_MAX, &counts, 0, &cmax);
  CHECK(cmin > 98500 && cmax < 101500,
        "randint(0, 10) counts within 5 sigma (%g..%g)", cmin, cmax);
  ebl_tensor_release(&eq);
  ebl_tensor_release(&counts);
  ebl_tensor_release(&ten);
  ebl_tensor_release(&k);
}

static void test_randperm(void) {
  ebl_tensor p, sorted;
  ebl_manual_seed(5);
  CHECK(ebl_tensor_randperm(&p, EBL_I32, 1000, EBL_CPU) == EBL_OK,
        "randperm 1000");
  ebl_tensor_zeros(&sorted, EBL_I32, 1, SHAPE(1000), EBL_CPU);
  int ok = 1, moved = 0;
  for (int i = 0; i < 1000; i++) {
    int64_t v = (int64_t)at(&p, i);
    moved += v != i;
    if (v < 0 || v >= 1000 || at(&sorted, v) != 0) ok = 0;
    else ebl_tensor_set(&sorted, &v, 1);
  }
  CHECK(ok, "randperm holds every index once");
  CHECK(moved > 900, "randperm moves most indices (%d)", moved);
  CHECK(ebl_tensor_randperm(&sorted, EBL_U8, 300, EBL_CPU) == EBL_EARG &&
        error_is("randperm: n = 300 does not fit uint8"), "randperm range");
  ebl_tensor_release(&sorted);
  ebl_tensor_release(&p);
}

/* A small forward pass from a seed, reduced to one number. */
static double pipeline(uint64_t seed) {
  ebl_tensor x, w, h, p;
  double v;
  ebl_manual_seed(seed);
  ebl_tensor_randn(&x, EBL_F32, 2, SHAPE(64, 300), EBL_CPU);
  ebl_tensor_randn(&w, EBL_F32, 2, SHAPE(300, 200), EBL_CPU);
  ebl_matmul_new(&h, &x, &w);
  ebl_unary(EBL_TANH, &h, &h, 0, 0);
  ebl_softmax_new(&p, &h, 1);
  ebl_fill_bernoulli(&h, 0.5);
  ebl_binary(EBL_MUL, &p, &p, &h);
  ebl_reduce_all(EBL_SUM, &p, 0, &v);
  ebl_tensor_release(&x);
  ebl_tensor_release(&w);
  ebl_tensor_release(&h);
  ebl_tensor_release(&p);
  return v;
}

/* Same seed and thread count: the same bits. */
static void test_determinism(void) {
  double a = pipeline(42), b = pipeline(42), c = pipeline(43);
  CHECK(memcmp(&a, &b, sizeof a) == 0, "same seed, same result bits");
  CHECK(a != c, "another seed, another result");
}

static void test_errors(void) {
  ebl_tensor i = make(EBL_I32, 1, SHAPE(3), NULL);
  CHECK(ebl_fill_randn(&i, 0, 1) == EBL_EARG &&
        error_is("randn: not defined for int32 tensors"), "randn on int32");
  CHECK(ebl_fill_randint(&i, 5, 5) == EBL_EARG &&
        error_is("randint: bad range 5..4 (need lo < hi, at most 2^32 "
                 "values)"), "empty randint range");
  CHECK(ebl_fill_bernoulli(&i, 1.5) == EBL_EARG,
        "bernoulli with p > 1 fails");
  ebl_tensor_release(&i);
}

int main(void) {
  test_known_answers();
  test_mapping();
  test_seeds();
  test_threads();
  test_statistics();
  test_randperm();
  test_determinism();
  test_errors();
  return tap_done();
}

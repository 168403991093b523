/* The random state (seed and offset of the Philox counter, see
   src/philox.h) and the random creation functions. Seed 0 until
   ebl_manual_seed() is called. */
#include <math.h>
#include <stdlib.h>

#include "core.h"

static uint64_t rng_seed;
static uint64_t rng_offset;

void ebl_manual_seed(uint64_t seed) {
  rng_seed = seed;
  __atomic_store_n(&rng_offset, 0, __ATOMIC_RELAXED);
}

uint64_t ebl_rng_seed(void) { return rng_seed; }

uint64_t ebl_rng_offset(void) {
  return __atomic_load_n(&rng_offset, __ATOMIC_RELAXED);
}

void ebl_rng_set_state(uint64_t seed, uint64_t offset) {
  rng_seed = seed;
  __atomic_store_n(&rng_offset, offset, __ATOMIC_RELAXED);
}

/* Blocks a draw of n elements uses (see src/philox.h). */
static uint64_t blocks_used(ebl_random_kind kind, ebl_dtype dtype,
                            int64_t n) {
  int wide = dtype == EBL_F64 &&
             (kind == EBL_RANDOM_UNIFORM || kind == EBL_RANDOM_NORMAL);
  int per_block = wide ? 2 : 4;
  return (uint64_t)((n + per_block - 1) / per_block);
}

/* Draws into out, through a contiguous temporary when out is not. */
static ebl_status draw(const char *fn, const ebl_tensor *out,
                       ebl_random_kind kind, double a, double b) {
  const ebl_backend *be;
  ebl_tensor dense;
  EBL_TRY(ebl_need_tensor(fn, out, "output"));
  EBL_TRY(ebl_backend_of(fn, out, &be));
  int64_t n = ebl_tensor_numel(out);
  uint64_t offset = __atomic_fetch_add(&rng_offset,
                                       blocks_used(kind, out->dtype, n),
                                       __ATOMIC_RELAXED);
  if (ebl_tensor_is_contiguous(out))
    return be->random(out, kind, a, b, rng_seed, offset);
  EBL_TRY(ebl_tensor_empty_like(&dense, out));
  ebl_status st = be->random(&dense, kind, a, b, rng_seed, offset);
  if (st == EBL_OK) st = ebl_copy(out, &dense);
  ebl_tensor_release(&dense);
  return st;
}

ebl_status ebl_fill_rand(const ebl_tensor *out, double lo, double hi) {
  EBL_TRY(ebl_need_tensor("rand", out, "output"));
  EBL_TRY(ebl_need_float("rand", out));
  if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
    return ebl_fail(EBL_EARG, "rand: bad range [%g, %g)", lo, hi);
  return draw("rand", out, EBL_RANDOM_UNIFORM, lo, hi);
}

ebl_status ebl_fill_randn(const ebl_tensor *out, double mean, double std) {
  EBL_TRY(ebl_need_tensor("randn", out, "output"));
  EBL_TRY(ebl_need_float("randn", out));
  if (!(std >= 0) || !isfinite(mean) || !isfinite(std))
    return ebl_fail(EBL_EARG, "randn: bad mean %g or std %g", mean, std);
  return draw("randn", out, EBL_RANDOM_NORMAL, mean, std);
}

ebl_status ebl_fill_randint(const ebl_tensor *out, int64_t lo,
                            int64_t hi) {
  if (hi <= lo || (uint64_t)(hi - lo) > ((uint64_t)1 << 32))
    return ebl_fail(EBL_EARG, "randint: bad range %lld..%lld (need lo < hi"
                    ", at most 2^32 values)", (long long)lo,
                    (long long)hi - 1);
  return draw("randint", out, EBL_RANDOM_INTEGER, (double)lo, (double)hi);
}

ebl_status ebl_fill_bernoulli(const ebl_tensor *out, double p) {
  if (!(p >= 0 && p <= 1))
    return ebl_fail(EBL_EARG, "bernoulli: probability %g not in [0, 1]", p);
  return draw("bernoulli", out, EBL_RANDOM_BERNOULLI, p, 0.0);
}

/* Allocates a tensor and fills it with fill(); releases it on failure. */
static ebl_status new_filled(ebl_tensor *res, ebl_dtype dtype, int ndim,
                             const int64_t *shape, ebl_device device,
                             ebl_status (*fill)(const ebl_tensor *, double,
                                                double),
                             double a, double b) {
  ebl_tensor r;
  EBL_TRY(ebl_tensor_empty(&r, dtype, ndim, shape, device));
  ebl_status st = fill(&r, a, b);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

ebl_status ebl_tensor_rand(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, ebl_device device) {
  return new_filled(res, dtype, ndim, shape, device, ebl_fill_rand, 0, 1);
}

ebl_status ebl_tensor_randn(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device) {
  return new_filled(res, dtype, ndim, shape, device, ebl_fill_randn, 0, 1);
}

ebl_status ebl_tensor_randint(ebl_tensor *res, ebl_dtype dtype, int ndim,
                              const int64_t *shape, int64_t lo,
                              int64_t hi, ebl_device device) {
  ebl_tensor r;
  EBL_TRY(ebl_tensor_empty(&r, dtype, ndim, shape, device));
  ebl_status st = ebl_fill_randint(&r, lo, hi);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

/* Fisher-Yates on the host driven by float64 uniforms u[i]: at step i
   (n-1 down to 1) element i swaps with floor(u[i] (i + 1)). */
ebl_status ebl_tensor_randperm(ebl_tensor *res, ebl_dtype dtype, int64_t n,
                               ebl_device device) {
  ebl_tensor u;
  double limit = dtype == EBL_U8 ? 256.0 : dtype == EBL_F32 ? 16777216.0
                                                            : 2147483647.0;
  if (n < 0 || (double)n > limit)
    return ebl_fail(EBL_EARG, "randperm: n = %lld does not fit %s",
                    (long long)n, ebl_dtype_name(dtype));
  EBL_TRY(ebl_tensor_rand(&u, EBL_F64, 1, &n, EBL_CPU));
  int32_t *perm = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
  if (!perm) {
    ebl_tensor_release(&u);
    return ebl_fail(EBL_ENOMEM, "randperm: out of memory");
  }
  const double *uv = ebl_tensor_data(&u);
  for (int64_t i = 0; i < n; i++) perm[i] = (int32_t)i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(uv[i] * (double)(i + 1));
    int32_t keep = perm[i];
    perm[i] = perm[j];
    perm[j] = keep;
  }
  ebl_status st = ebl_tensor_from_buffer(res, dtype, 1, &n, perm, EBL_I32,
                                         device);
  free(perm);
  ebl_tensor_release(&u);
  return st;
}

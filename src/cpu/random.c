/* CPU random fills: Philox blocks mapped to elements exactly as
   src/philox.h documents, in parallel over blocks (the numbers do not
   depend on the thread count). out is contiguous (the front end sees to
   it). */
#include <math.h>

#include "cpu/cpu.h"
#include "cpu/iter.h"
#include "philox.h"

typedef struct draw {
  char *data;
  ebl_dtype dtype;
  ebl_random_kind kind;
  double a, b;
  uint64_t seed, offset;
  int64_t n;
  int per_block;
} draw;

/* Writes v at element i, cast to the dtype (integers saturate). */
static void put(const draw *d, int64_t i, double v) {
  switch (d->dtype) {
  case EBL_F32: {
    float f = (float)v;
    if (d->kind == EBL_RANDOM_UNIFORM && f >= (float)d->b && d->b > d->a)
      f = nextafterf((float)d->b, -INFINITY);
    ((float *)d->data)[i] = f;
    break;
  }
  case EBL_F64: ((double *)d->data)[i] = v; break;
  case EBL_I32:
    ((int32_t *)d->data)[i] = v >= 2147483647.0 ? INT32_MAX :
                              v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
    break;
  default:
    ((uint8_t *)d->data)[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
    break;
  }
}

/* Box-Muller on u1 in (0, 1] and u2 in [0, 1): a pair of normals. */
static void box_muller(double u1, double u2, double *z0, double *z1) {
  double r = sqrt(-2.0 * log(u1));
  double theta = 2.0 * M_PI * u2;
  *z0 = r * cos(theta);
  *z1 = r * sin(theta);
}

/* The elements of one block j from its words w. */
static void fill_block(const draw *d, int64_t j, const uint32_t w[4]) {
  int64_t first = j * d->per_block;
  const double two32 = 4294967296.0;
  double z[4];
  if (d->kind == EBL_RANDOM_NORMAL && d->dtype == EBL_F64) {
    double u1 = ebl_philox_u53(w[0], w[1]) + 1.0 / 9007199254740992.0;
    box_muller(u1, ebl_philox_u53(w[2], w[3]), &z[0], &z[1]);
  } else if (d->kind == EBL_RANDOM_NORMAL) {
    box_muller((w[0] + 1.0) / two32, w[1] / two32, &z[0], &z[1]);
    box_muller((w[2] + 1.0) / two32, w[3] / two32, &z[2], &z[3]);
  }
  for (int e = 0; e < d->per_block && first + e < d->n; e++) {
    double v;
    switch (d->kind) {
    case EBL_RANDOM_UNIFORM:
      v = d->dtype == EBL_F64 ? ebl_philox_u53(w[2 * e], w[2 * e + 1])
                              : (w[e] >> 8) * (1.0 / 16777216.0);
      v = d->a + (d->b - d->a) * v;
      break;
    case EBL_RANDOM_NORMAL: v = d->a + d->b * z[e]; break;
    case EBL_RANDOM_INTEGER:
      v = d->a + (double)(((uint64_t)w[e] * (uint64_t)(d->b - d->a)) >> 32);
      break;
    default: v = (double)w[e] < d->a * two32 ? 1.0 : 0.0; break;
    }
    put(d, first + e, v);
  }
}

/* Blocks begin..end-1 of the draw. */
static void fill_blocks(int64_t begin, int64_t end, void *ctx) {
  const draw *d = ctx;
  uint32_t w[4];
  for (int64_t j = begin; j < end; j++) {
    ebl_philox_block(d->seed, d->offset + (uint64_t)j, w);
    fill_block(d, j, w);
  }
}

ebl_status ebl_cpu_random(const ebl_tensor *out, ebl_random_kind kind,
                          double a, double b, uint64_t seed,
                          uint64_t offset) {
  draw d = {ebl_tensor_data(out), out->dtype, kind, a, b, seed, offset,
            ebl_tensor_numel(out), 4};
  int wide = out->dtype == EBL_F64 &&
             (kind == EBL_RANDOM_UNIFORM || kind == EBL_RANDOM_NORMAL);
  if (wide) d.per_block = 2;
  int64_t blocks = (d.n + d.per_block - 1) / d.per_block;
  return ebl_parallel_for(blocks, 8192, fill_blocks, &d);
}

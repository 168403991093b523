// Random fills on the GPU: one thread per Philox block, the elements of
// a block mapped exactly as src/philox.h says and as src/cpu/random.c
// does, with the generator itself compiled from that same header.
// Products and sums are rounded one at a time (__dmul_rn, __dadd_rn),
// as the CPU computes them, so uniform, integer and Bernoulli draws are
// the CPU's bit for bit. Normal draws go through log, cos and sin in
// double, where CUDA's functions may differ from glibc's in the last
// bit or two: float32 normals then agree almost always exactly, float64
// ones to a few units in the last place.
#include <math.h>
#include <stdint.h>

#include "gpu/gpu.h"
#include "philox.h"

#define THREADS 256

struct Draw {
  void *data;
  ebl_dtype dtype;
  ebl_random_kind kind;
  double a, b;
  uint64_t seed, offset;
  int64_t n;
  int per_block;
};

// Writes v at element i, cast to the dtype (integers saturate).
__device__ void put(const Draw &d, int64_t i, double v) {
  switch (d.dtype) {
  case EBL_F32: {
    float f = (float)v;
    if (d.kind == EBL_RANDOM_UNIFORM && f >= (float)d.b && d.b > d.a)
      f = nextafterf((float)d.b, -INFINITY);
    ((float *)d.data)[i] = f;
    break;
  }
  case EBL_F64: ((double *)d.data)[i] = v; break;
  case EBL_I32:
    ((int32_t *)d.data)[i] = v >= 2147483647.0 ? INT32_MAX :
                             v <= -2147483648.0 ? INT32_MIN : (int32_t)v;
    break;
  default:
    ((uint8_t *)d.data)[i] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
    break;
  }
}

// Box-Muller on u1 in (0, 1] and u2 in [0, 1): a pair of normals.
__device__ void box_muller(double u1, double u2, double *z0, double *z1) {
  double r = sqrt(__dmul_rn(-2.0, log(u1)));
  double theta = __dmul_rn(2.0 * M_PI, u2);
  *z0 = __dmul_rn(r, cos(theta));
  *z1 = __dmul_rn(r, sin(theta));
}

// The value of element e of a block with words w (z: its normals).
__device__ double value(const Draw &d, const uint32_t *w, const double *z,
                        int e) {
  const double two32 = 4294967296.0;
  double u;
  switch (d.kind) {
  case EBL_RANDOM_UNIFORM:
    u = d.dtype == EBL_F64 ? ebl_philox_u53(w[2 * e], w[2 * e + 1])
                           : (w[e] >> 8) * (1.0 / 16777216.0);
    return __dadd_rn(d.a, __dmul_rn(d.b - d.a, u));
  case EBL_RANDOM_NORMAL:
    return __dadd_rn(d.a, __dmul_rn(d.b, z[e]));
  case EBL_RANDOM_INTEGER:
    return __dadd_rn(d.a, (double)(((uint64_t)w[e] *
                                    (uint64_t)(d.b - d.a)) >> 32));
  default:
    return (double)w[e] < __dmul_rn(d.a, two32) ? 1.0 : 0.0;
  }
}

// Block j of the draw: its four words, then its elements.
__global__ void random_kernel(Draw d, int64_t blocks) {
  int64_t j = (int64_t)blockIdx.x * THREADS + threadIdx.x;
  if (j >= blocks) return;
  uint32_t w[4];
  double z[4] = {0, 0, 0, 0};
  const double two32 = 4294967296.0;
  ebl_philox_block(d.seed, d.offset + (uint64_t)j, w);
  if (d.kind == EBL_RANDOM_NORMAL && d.dtype == EBL_F64) {
    double u1 = __dadd_rn(ebl_philox_u53(w[0], w[1]),
                          1.0 / 9007199254740992.0);
    box_muller(u1, ebl_philox_u53(w[2], w[3]), &z[0], &z[1]);
  } else if (d.kind == EBL_RANDOM_NORMAL) {
    box_muller((w[0] + 1.0) / two32, w[1] / two32, &z[0], &z[1]);
    box_muller((w[2] + 1.0) / two32, w[3] / two32, &z[2], &z[3]);
  }
  int64_t first = j * d.per_block;
  for (int e = 0; e < d.per_block && first + e < d.n; e++)
    put(d, first + e, value(d, w, z, e));
}

extern "C" cudaError_t ebl_gpu_random(void *out, ebl_dtype dt, int64_t n,
                                      ebl_random_kind kind, double a,
                                      double b, uint64_t seed,
                                      uint64_t offset) {
  int wide = dt == EBL_F64 &&
             (kind == EBL_RANDOM_UNIFORM || kind == EBL_RANDOM_NORMAL);
  Draw d = {out, dt, kind, a, b, seed, offset, n, wide ? 2 : 4};
  int64_t blocks = (n + d.per_block - 1) / d.per_block;
  if (blocks == 0) return cudaSuccess;
  random_kernel<<<(unsigned)((blocks + THREADS - 1) / THREADS), THREADS, 0,
                  ebl_gpu_stream>>>(d, blocks);
  return cudaGetLastError();
}

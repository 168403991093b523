/* Small helpers shared by the C tests of the tensor core: building
   tensors from literal values and reading elements back. */
#ifndef EBL_TEST_HELPERS_H
#define EBL_TEST_HELPERS_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor.h"

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define VALUES(...) ((const double[]){__VA_ARGS__})

/* A new tensor of dtype and shape holding vals (row-major), or zeros
   when vals is NULL. */
static inline ebl_tensor make(ebl_dtype dtype, int ndim,
                              const int64_t *shape, const double *vals) {
  ebl_tensor t;
  memset(&t, 0, sizeof t);
  ebl_status st = vals ? ebl_tensor_from_buffer(&t, dtype, ndim, shape,
                                                 vals, EBL_F64, EBL_CPU)
                       : ebl_tensor_zeros(&t, dtype, ndim, shape, EBL_CPU);
  if (st != EBL_OK)
    printf("# make failed: %s\n", ebl_error());
  return t;
}

/* Element at flat row-major position i, as a double. */
static inline double at(const ebl_tensor *t, int64_t i) {
  int64_t idx[EBL_MAX_DIMS];
  double v = NAN;
  for (int d = t->ndim - 1; d >= 0; d--) {
    idx[d] = i % t->shape[d];
    i /= t->shape[d];
  }
  if (ebl_tensor_get(t, idx, &v) != EBL_OK)
    printf("# get failed: %s\n", ebl_error());
  return v;
}

/* Nonzero when t holds exactly the n values vals (row-major). */
static inline int equals(const ebl_tensor *t, int64_t n,
                         const double *vals) {
  if (ebl_tensor_numel(t) != n) return 0;
  for (int64_t i = 0; i < n; i++)
    if (at(t, i) != vals[i]) {
      printf("# element %lld: got %.9g, expected %.9g\n", (long long)i,
             at(t, i), vals[i]);
      return 0;
    }
  return 1;
}

/* Nonzero when the last error message is exactly msg. */
static inline int error_is(const char *msg) {
  if (strcmp(ebl_error(), msg) == 0) return 1;
  printf("# error was: %s\n", ebl_error());
  return 0;
}

#endif

/* The thread count shared by ebl's OpenMP loops and OpenBLAS. */
#include <cblas.h>
#include <omp.h>

#include "tensor.h"

static int thread_count;   /* 0 until set: OpenMP's default */

void ebl_set_num_threads(int n) {
  if (n < 1) n = 1;
  thread_count = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int ebl_get_num_threads(void) {
  if (thread_count == 0) thread_count = omp_get_max_threads();
  return thread_count;
}

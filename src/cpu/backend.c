/* The CPU dispatch table. */
#include "cpu/cpu.h"

const ebl_backend ebl_cpu_backend = {
  .name = "cpu",
  .alloc = ebl_cpu_alloc,
  .free = ebl_cpu_free,
  .to_host = ebl_cpu_to_host,
  .from_host = ebl_cpu_from_host,
  .copy = ebl_cpu_copy,
  .fill = ebl_cpu_fill,
  .affine = ebl_cpu_affine,
  .random = ebl_cpu_random,
  .unary = ebl_cpu_unary,
  .binary = ebl_cpu_binary,
  .binary_scalar = ebl_cpu_binary_scalar,
  .where = ebl_cpu_where,
  .axpby = ebl_cpu_axpby,
  .softmax = ebl_cpu_softmax,
  .reduce = ebl_cpu_reduce,
  .gemm = ebl_cpu_gemm,
};

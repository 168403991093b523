/* The kernel launchers that gpu/backend.c's table names but the
   stand-in's table replaces with the CPU's: defined without their
   prototypes (this file does not include gpu/gpu.h) only to link; each
   stops the program if it is ever called. */
#include <stdio.h>
#include <stdlib.h>

#define UNUSED(name)                                                  \
  void name(void) {                                                   \
    fprintf(stderr, "stand-in: %s was called\n", #name);              \
    abort();                                                          \
  }

UNUSED(ebl_gpu_copy)
UNUSED(ebl_gpu_fill)
UNUSED(ebl_gpu_affine)
UNUSED(ebl_gpu_unary_defined)
UNUSED(ebl_gpu_binary_defined)
UNUSED(ebl_gpu_unary)
UNUSED(ebl_gpu_binary)
UNUSED(ebl_gpu_where)
UNUSED(ebl_gpu_axpby)
UNUSED(ebl_gpu_random)
UNUSED(ebl_gpu_reduce_scratch)
UNUSED(ebl_gpu_reduce)
UNUSED(ebl_gpu_softmax)
UNUSED(ebl_gpu_max_pool)
UNUSED(ebl_gpu_max_pool_vjp)
UNUSED(ebl_gpu_avg_pool)
UNUSED(ebl_gpu_avg_pool_vjp)
UNUSED(ebl_gpu_bias_sums)
UNUSED(ebl_gpu_gemm)
UNUSED(ebl_gpu_conv_workspace)
UNUSED(ebl_gpu_conv_forward)
UNUSED(ebl_gpu_conv_input_vjp)
UNUSED(ebl_gpu_conv_weight_vjp)
UNUSED(ebl_gpu_convt_forward)
UNUSED(ebl_gpu_convt_input_vjp)
UNUSED(ebl_gpu_convt_weight_vjp)

/* Tensor-level layer operations: conv2d, conv_transpose2d, pooling and
   losses, each forward beside its vector-Jacobian products. They check
   shapes and dtypes, make inputs contiguous, allocate outputs and
   scratch memory, and call the device's kernels through its backend.
   Layout is NCHW; x is (n, c, h, w), float32 or float64. */
#ifndef EBL_NN_H
#define EBL_NN_H

#include "tensor.h"

/* Geometry options of a 2-D convolution; {0} is not valid, start from
   ebl_conv_opts_default(). output_padding is used by the transpose. */
typedef struct ebl_conv_opts {
  int stride[2];          /* (h, w), >= 1 */
  int padding[2];         /* zeros added on each side, >= 0 */
  int dilation[2];        /* >= 1 */
  int groups;             /* >= 1, divides both channel counts */
  int output_padding[2];  /* conv_transpose2d only: 0 .. stride-1 */
} ebl_conv_opts;

/* Options of 2-D pooling; stride 0 means "equal to the kernel". */
typedef struct ebl_pool_opts {
  int kernel[2];
  int stride[2];
  int padding[2];         /* at most half the kernel */
} ebl_pool_opts;

/* stride 1, padding 0, dilation 1, groups 1, output_padding 0. */
ebl_conv_opts ebl_conv_opts_default(void);

/* ---- conv2d: x (n, c_in, h, w), w (c_out, c_in/groups, kh, kw),
   b (c_out) or NULL, y (n, c_out, h_out, w_out). */

/* The shape of conv2d's output (4 sizes). */
ebl_status ebl_conv2d_shape(const ebl_tensor *x, const ebl_tensor *w,
                            const ebl_conv_opts *o, int64_t *y_shape);
/* y = conv2d(x, w) + b into an existing y. */
ebl_status ebl_conv2d(const ebl_tensor *y, const ebl_tensor *x,
                      const ebl_tensor *w, const ebl_tensor *b,
                      const ebl_conv_opts *o);
/* y = conv2d(x, w) + b, allocated. */
ebl_status ebl_conv2d_new(ebl_tensor *y, const ebl_tensor *x,
                          const ebl_tensor *w, const ebl_tensor *b,
                          const ebl_conv_opts *o);
/* dx = VJP of conv2d for the input; dx's shape is x's (it fixes h, w). */
ebl_status ebl_conv2d_input_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                                const ebl_tensor *w,
                                const ebl_conv_opts *o);
/* dw = VJP of conv2d for the weight; dw has w's shape. */
ebl_status ebl_conv2d_weight_vjp(const ebl_tensor *dw, const ebl_tensor *x,
                                 const ebl_tensor *dy,
                                 const ebl_conv_opts *o);
/* db = dy summed over n, h, w; db has shape (c_out). */
ebl_status ebl_conv2d_bias_vjp(const ebl_tensor *db, const ebl_tensor *dy);

/* ---- conv_transpose2d: x (n, c_in, h, w), w (c_in, c_out/groups, kh,
   kw) - the same weight as the conv2d it transposes - b (c_out) or NULL,
   y (n, c_out, (h-1)*stride - 2*pad + dil*(kh-1) + output_padding + 1,
   likewise for w). */

/* The shape of conv_transpose2d's output (4 sizes). */
ebl_status ebl_conv_transpose2d_shape(const ebl_tensor *x,
                                      const ebl_tensor *w,
                                      const ebl_conv_opts *o,
                                      int64_t *y_shape);
/* y = conv_transpose2d(x, w) + b into an existing y. */
ebl_status ebl_conv_transpose2d(const ebl_tensor *y, const ebl_tensor *x,
                                const ebl_tensor *w, const ebl_tensor *b,
                                const ebl_conv_opts *o);
/* y = conv_transpose2d(x, w) + b, allocated. */
ebl_status ebl_conv_transpose2d_new(ebl_tensor *y, const ebl_tensor *x,
                                    const ebl_tensor *w,
                                    const ebl_tensor *b,
                                    const ebl_conv_opts *o);
/* dx = VJP of conv_transpose2d for its input; dx has x's shape. */
ebl_status ebl_conv_transpose2d_input_vjp(const ebl_tensor *dx,
                                          const ebl_tensor *dy,
                                          const ebl_tensor *w,
                                          const ebl_conv_opts *o);
/* dw = VJP of conv_transpose2d for the weight; dw has w's shape. */
ebl_status ebl_conv_transpose2d_weight_vjp(const ebl_tensor *dw,
                                           const ebl_tensor *x,
                                           const ebl_tensor *dy,
                                           const ebl_conv_opts *o);
/* db = dy summed over n, h, w (same as conv2d's). */
ebl_status ebl_conv_transpose2d_bias_vjp(const ebl_tensor *db,
                                         const ebl_tensor *dy);

/* ---- pooling over x (n, c, h, w) */

/* The shape of a pooling output (4 sizes). */
ebl_status ebl_pool2d_shape(const char *fn, const ebl_tensor *x,
                            const ebl_pool_opts *o, int64_t *y_shape);
/* y = max_pool2d(x); indices (I32, y's shape) gets each winner's flat
   index h*w_in + w within its plane. */
ebl_status ebl_max_pool2d_new(ebl_tensor *y, ebl_tensor *indices,
                              const ebl_tensor *x, const ebl_pool_opts *o);
/* The same into existing y and indices. */
ebl_status ebl_max_pool2d(const ebl_tensor *y, const ebl_tensor *indices,
                          const ebl_tensor *x, const ebl_pool_opts *o);
/* dx = VJP of max_pool2d (dx has x's shape; overwritten). */
ebl_status ebl_max_pool2d_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                              const ebl_tensor *indices,
                              const ebl_pool_opts *o);
/* y = avg_pool2d(x), allocated (divisor kh*kw, padding counts). */
ebl_status ebl_avg_pool2d_new(ebl_tensor *y, const ebl_tensor *x,
                              const ebl_pool_opts *o);
/* The same into an existing y. */
ebl_status ebl_avg_pool2d(const ebl_tensor *y, const ebl_tensor *x,
                          const ebl_pool_opts *o);
/* dx = VJP of avg_pool2d (dx has x's shape; overwritten). */
ebl_status ebl_avg_pool2d_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                              const ebl_pool_opts *o);

/* ---- losses over x (n, ...) as n rows of k = numel/n values; the
   loss is the batch mean of the per-row loss. grad (x's shape and
   dtype) or NULL receives d(loss)/dx. */

/* mse: 1/2 sum_k (x - target)^2 per row; target has x's shape. */
ebl_status ebl_mse_loss(double *loss, const ebl_tensor *x,
                        const ebl_tensor *target, const ebl_tensor *grad);
/* Cross-entropy of logits x (n, k) against integer labels (I32 or U8,
   shape (n), values 0..k-1) or one-hot / soft targets (x's shape). */
ebl_status ebl_cross_entropy(double *loss, const ebl_tensor *x,
                             const ebl_tensor *target,
                             const ebl_tensor *grad);

#endif

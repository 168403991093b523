/* Layer operations of the energy engine: the steps of an edge's chain,
   each with its forward pass, its vector-Jacobian products (for its input
   and its parameters) and, for BiPC's feedback, its transpose with tied
   weights. Parameters live in the model's table and are named by index,
   so that a weight used by a layer and its transpose gets one gradient. */
#ifndef EBL_ENGINE_OP_H
#define EBL_ENGINE_OP_H

#include "nn.h"
#include "tensor.h"

typedef enum ebl_op_kind {
  EBL_OP_LINEAR,      /* y = x W^T + b, W (out, in) */
  EBL_OP_LINEAR_T,    /* y = x W: the transpose of LINEAR, no bias */
  EBL_OP_CONV2D,      /* y = conv2d(x, W) + b, W (out, in/g, kh, kw) */
  EBL_OP_CONV_T2D,    /* y = conv_transpose2d(x, W) + b, W (in, out/g,..) */
  EBL_OP_MAX_POOL,    /* y = max_pool2d(x), winners kept */
  EBL_OP_AVG_POOL,    /* y = avg_pool2d(x) */
  EBL_OP_AVG_UNPOOL,  /* adjoint of AVG_POOL: each value spread / k */
  EBL_OP_UPSAMPLE,    /* nearest upsampling: each value copied k times,
                         the transpose taken for MAX_POOL */
  EBL_OP_RESHAPE,     /* flatten and its inverse: same elements */
  EBL_OP_IDENTITY,
  EBL_OP_ACTIVATION   /* y = act(x) */
} ebl_op_kind;

/* One step of a chain, for a batch whose per-sample shapes are fixed. */
typedef struct ebl_op {
  ebl_op_kind kind;
  int weight, bias;           /* indices into the parameter table, or -1 */
  ebl_unary_op act;           /* ACTIVATION: the function */
  ebl_unary_op act_grad;      /* ACTIVATION: its derivative */
  double act_param;           /* leaky_relu's slope */
  ebl_conv_opts conv;
  int kernel[2];              /* conv kernel size (kh, kw) */
  ebl_pool_opts pool;
  int in_ndim, out_ndim;      /* per-sample shapes (without the batch) */
  int64_t in_shape[EBL_MAX_DIMS], out_shape[EBL_MAX_DIMS];
} ebl_op;

/* The parameters and their gradients, shared by every op of a model;
   scratch[i] (the shape of value[i]) holds a product before it is added
   to grad[i]. */
typedef struct ebl_params {
  int count;
  ebl_tensor *value;
  ebl_tensor *grad;
  ebl_tensor *scratch;
} ebl_params;

/* Scratch of one application of a chain to a batch: act[0] is the input
   (a view), act[i + 1] the output of op i; winners[i] the max-pool
   indices of op i; cot[i] the cotangent of act[i]. Allocated once for a
   batch size; views where an op changes no element. */
typedef struct ebl_chain_buf {
  int count;
  ebl_tensor *act;
  ebl_tensor *winners;
  ebl_tensor *cot;
} ebl_chain_buf;

/* Fills out_shape from in_shape (per sample); fails naming both shapes
   when the op cannot take the input (context names the edge). */
ebl_status ebl_op_infer_shape(ebl_op *op, const ebl_params *p, int in_ndim,
                              const int64_t *in_shape, const char *context);

/* Allocates the buffers of a chain of n ops, with act[0] a view of
   input (batch first, then the chain's input shape). */
ebl_status ebl_chain_buf_init(ebl_chain_buf *b, const ebl_op *ops, int n,
                              const ebl_tensor *input);
void ebl_chain_buf_free(ebl_chain_buf *b);

/* Computes act[1..n] from act[0], the input view set at init. */
ebl_status ebl_chain_forward(const ebl_op *ops, int n, ebl_chain_buf *b,
                             const ebl_params *p);

/* Back through the chain from the cotangent dy of act[n]: writes the
   cotangent of act[0] into dx (dx may be NULL when not needed) and, when
   grad_scale is nonzero, adds grad_scale * dL/dtheta to the gradients of
   the parameters the ops use. */
ebl_status ebl_chain_vjp(const ebl_op *ops, int n, ebl_chain_buf *b,
                         const ebl_params *p, const ebl_tensor *dy,
                         const ebl_tensor *dx, double grad_scale);

/* Nonzero when ebl_chain_vjp_add can add into dx in place: the chain
   starts with a linear map, whose product takes the sum itself. */
int ebl_chain_adds_in_place(const ebl_op *ops, int n);

/* As ebl_chain_vjp, but dx += alpha * (cotangent of act[0]), with no
   pass of its own over dx; only for chains ebl_chain_adds_in_place
   accepts. */
ebl_status ebl_chain_vjp_add(const ebl_op *ops, int n, ebl_chain_buf *b,
                             const ebl_params *p, const ebl_tensor *dy,
                             const ebl_tensor *dx, double alpha,
                             double grad_scale);

/* dx = dy f'(x) for the node function or activation op act (act_grad
   its derivative, param its parameter). Where y = f(x) is given (not
   NULL) and the backend has act_vjp, tanh and sigmoid take f' from y in
   one pass instead of two. dx may be y. */
ebl_status ebl_act_vjp(ebl_unary_op act, ebl_unary_op act_grad,
                       double param, const ebl_tensor *dx,
                       const ebl_tensor *x, const ebl_tensor *y,
                       const ebl_tensor *dy);

/* Builds the transpose of a forward chain for BiPC's feedback: the ops
   reversed, linear maps transposed with the same weights (no bias),
   pooling replaced by its adjoint, activations and reshapes inverted or
   dropped. t must hold room for n ops; *tn receives the count. */
ebl_status ebl_chain_transpose(const ebl_op *ops, int n, ebl_op *t,
                               int *tn);

#endif

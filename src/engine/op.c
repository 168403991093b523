/* Layer operations of the energy engine: shapes, forward passes, VJPs
   and transposes of the steps of an edge's chain (see op.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "engine/op.h"

/* ---------------------------------------------------------------- */
/* Shapes                                                            */

static void set_out(ebl_op *op, int ndim, const int64_t *shape) {
  op->out_ndim = ndim;
  memcpy(op->out_shape, shape, sizeof(int64_t) * (size_t)ndim);
}

static ebl_status shape_linear(ebl_op *op, const ebl_tensor *w,
                               const char *context) {
  int t = op->kind == EBL_OP_LINEAR_T;
  int64_t in = w->shape[t ? 0 : 1], out = w->shape[t ? 1 : 0];
  char buf[64];
  if (op->in_ndim != 1 || op->in_shape[0] != in)
    return ebl_fail(EBL_EARG, "%s: linear layer takes %lld features, "
                    "input has shape %s", context, (long long)in,
                    ebl_format_shape(op->in_ndim, op->in_shape, buf,
                                     sizeof buf));
  set_out(op, 1, &out);
  return EBL_OK;
}

/* Output size of a convolution or pooling window along one dim. */
static int64_t window_out(int64_t in, int k, int stride, int pad,
                          int dil) {
  int64_t span = (int64_t)dil * (k - 1) + 1;
  if (in + 2 * pad < span)
    return 0;
  return (in + 2 * pad - span) / stride + 1;
}

static ebl_status shape_conv(ebl_op *op, const ebl_tensor *w,
                             const char *context) {
  const ebl_conv_opts *o = &op->conv;
  char buf[64];
  if (op->in_ndim != 3)
    return ebl_fail(EBL_EARG, "%s: conv takes (channels, h, w) states, "
                    "input has shape %s", context,
                    ebl_format_shape(op->in_ndim, op->in_shape, buf,
                                     sizeof buf));
  int t = op->kind == EBL_OP_CONV_T2D;
  int64_t c_in = t ? w->shape[0] : w->shape[1] * o->groups;
  int64_t c_out = t ? w->shape[1] * o->groups : w->shape[0];
  if (op->in_shape[0] != c_in)
    return ebl_fail(EBL_EARG, "%s: input has %lld channels, weight "
                    "expects %lld", context, (long long)op->in_shape[0],
                    (long long)c_in);
  int64_t out[3] = {c_out, 0, 0};
  for (int d = 0; d < 2; d++) {
    int64_t in = op->in_shape[1 + d];
    int k = (int)w->shape[2 + d];
    op->kernel[d] = k;
    out[1 + d] = t ? (in - 1) * o->stride[d] - 2 * o->padding[d] +
                     (int64_t)o->dilation[d] * (k - 1) +
                     o->output_padding[d] + 1
                   : window_out(in, k, o->stride[d], o->padding[d],
                                o->dilation[d]);
    if (out[1 + d] < 1)
      return ebl_fail(EBL_EARG, "%s: kernel %lldx%lld does not fit input "
                      "%s", context, (long long)w->shape[2],
                      (long long)w->shape[3],
                      ebl_format_shape(3, op->in_shape, buf, sizeof buf));
  }
  set_out(op, 3, out);
  return EBL_OK;
}

static ebl_status shape_pool(ebl_op *op, const char *context) {
  const ebl_pool_opts *o = &op->pool;
  char buf[64];
  if (op->in_ndim != 3)
    return ebl_fail(EBL_EARG, "%s: pooling takes (channels, h, w) states, "
                    "input has shape %s", context,
                    ebl_format_shape(op->in_ndim, op->in_shape, buf,
                                     sizeof buf));
  int64_t out[3] = {op->in_shape[0], 0, 0};
  for (int d = 0; d < 2; d++) {
    int64_t in = op->in_shape[1 + d];
    out[1 + d] = op->kind == EBL_OP_AVG_POOL || op->kind == EBL_OP_MAX_POOL
      ? window_out(in, o->kernel[d], o->stride[d], o->padding[d], 1)
      : (in - 1) * o->stride[d] - 2 * o->padding[d] + o->kernel[d];
    if (out[1 + d] < 1)
      return ebl_fail(EBL_EARG, "%s: pooling window %dx%d does not fit "
                      "input %s", context, o->kernel[0], o->kernel[1],
                      ebl_format_shape(3, op->in_shape, buf, sizeof buf));
  }
  set_out(op, 3, out);
  return EBL_OK;
}

/* Checks that parameter index i (0-based, -1: none) names a tensor of
   ndim dims; `what` is "weight" or "bias". */
static ebl_status check_param(const ebl_params *p, int i, int ndim,
                              int needed, const char *what,
                              const char *context) {
  if (i < 0 && !needed)
    return EBL_OK;
  if (i < 0 || i >= p->count)
    return ebl_fail(EBL_EARG, "%s: %s index %d is not among the %d "
                    "parameters", context, what, i + 1, p->count);
  if (p->value[i].ndim != ndim)
    return ebl_fail(EBL_EARG, "%s: %s must have %d dims, got %d", context,
                    what, ndim, p->value[i].ndim);
  return EBL_OK;
}

/* Checks one pair of integers against a lower bound. */
static ebl_status check_pair(const int v[2], int min, const char *what,
                             const char *context) {
  for (int d = 0; d < 2; d++)
    if (v[d] < min)
      return ebl_fail(EBL_EARG, "%s: %s must be >= %d, got %dx%d",
                      context, what, min, v[0], v[1]);
  return EBL_OK;
}

/* Checks the options of a conv or pooling op before any size is read. */
static ebl_status check_window(const ebl_op *op, const char *context) {
  const ebl_conv_opts *c = &op->conv;
  const ebl_pool_opts *o = &op->pool;
  if (op->kind == EBL_OP_CONV2D || op->kind == EBL_OP_CONV_T2D) {
    EBL_TRY(check_pair(c->stride, 1, "stride", context));
    EBL_TRY(check_pair(c->padding, 0, "padding", context));
    EBL_TRY(check_pair(c->dilation, 1, "dilation", context));
    EBL_TRY(check_pair(c->output_padding, 0, "output_padding", context));
    if (c->groups < 1)
      return ebl_fail(EBL_EARG, "%s: groups must be >= 1, got %d",
                      context, c->groups);
    return EBL_OK;
  }
  EBL_TRY(check_pair(o->kernel, 1, "kernel", context));
  EBL_TRY(check_pair(o->stride, 1, "stride", context));
  EBL_TRY(check_pair(o->padding, 0, "padding", context));
  for (int d = 0; d < 2; d++)
    if (o->padding[d] > o->kernel[d] / 2)
      return ebl_fail(EBL_EARG, "%s: padding %dx%d must be at most half "
                      "the kernel %dx%d", context, o->padding[0],
                      o->padding[1], o->kernel[0], o->kernel[1]);
  return EBL_OK;
}

/* Checks an op's parameters and options: indices in range, weights of
   the right rank, windows of positive size. */
static ebl_status check_op(const ebl_op *op, const ebl_params *p,
                           const char *context) {
  switch (op->kind) {
  case EBL_OP_LINEAR:
  case EBL_OP_LINEAR_T:
    EBL_TRY(check_param(p, op->weight, 2, 1, "weight", context));
    return check_param(p, op->bias, 1, 0, "bias", context);
  case EBL_OP_CONV2D:
  case EBL_OP_CONV_T2D:
    EBL_TRY(check_param(p, op->weight, 4, 1, "weight", context));
    EBL_TRY(check_param(p, op->bias, 1, 0, "bias", context));
    return check_window(op, context);
  case EBL_OP_MAX_POOL:
  case EBL_OP_AVG_POOL:
  case EBL_OP_AVG_UNPOOL:
  case EBL_OP_UPSAMPLE:
    return check_window(op, context);
  case EBL_OP_RESHAPE:
    for (int i = 0; i < op->out_ndim; i++)
      if (op->out_shape[i] < 1)
        return ebl_fail(EBL_EARG, "%s: reshape sizes must be >= 1, got "
                        "%lld", context, (long long)op->out_shape[i]);
    return EBL_OK;
  default:
    return EBL_OK;
  }
}

/* Bias of n values for an op of n outputs, if it has one. */
static ebl_status check_bias_size(const ebl_op *op, const ebl_params *p,
                                  int64_t n, const char *context) {
  if (op->bias < 0 || p->value[op->bias].shape[0] == n)
    return EBL_OK;
  return ebl_fail(EBL_EARG, "%s: bias has %lld values, the layer has %lld "
                  "outputs", context,
                  (long long)p->value[op->bias].shape[0], (long long)n);
}

ebl_status ebl_op_infer_shape(ebl_op *op, const ebl_params *p, int in_ndim,
                              const int64_t *in_shape, const char *context) {
  op->in_ndim = in_ndim;
  memcpy(op->in_shape, in_shape, sizeof(int64_t) * (size_t)in_ndim);
  EBL_TRY(check_op(op, p, context));
  const ebl_tensor *w = op->weight >= 0 ? &p->value[op->weight] : NULL;
  switch (op->kind) {
  case EBL_OP_LINEAR:
  case EBL_OP_LINEAR_T:
    EBL_TRY(shape_linear(op, w, context));
    return check_bias_size(op, p, op->out_shape[0], context);
  case EBL_OP_CONV2D:
  case EBL_OP_CONV_T2D:
    EBL_TRY(shape_conv(op, w, context));
    return check_bias_size(op, p, op->out_shape[0], context);
  case EBL_OP_MAX_POOL:
  case EBL_OP_AVG_POOL:
  case EBL_OP_AVG_UNPOOL:
  case EBL_OP_UPSAMPLE:
    return shape_pool(op, context);
  case EBL_OP_RESHAPE: {
    int64_t n_in = 1, n_out = 1;
    for (int i = 0; i < in_ndim; i++) n_in *= in_shape[i];
    if (op->out_ndim == 0)
      set_out(op, 1, &n_in);   /* flatten */
    for (int i = 0; i < op->out_ndim; i++) n_out *= op->out_shape[i];
    if (n_in != n_out)
      return ebl_fail(EBL_EARG, "%s: cannot reshape %lld values into "
                      "%lld", context, (long long)n_in, (long long)n_out);
    return EBL_OK;
  }
  case EBL_OP_IDENTITY:
  case EBL_OP_ACTIVATION:
    set_out(op, in_ndim, in_shape);
    return EBL_OK;
  }
  return ebl_fail(EBL_EARG, "%s: unknown layer kind %d", context,
                  (int)op->kind);
}

/* ---------------------------------------------------------------- */
/* Buffers                                                           */

/* Ops whose output is the same elements as their input. */
static int is_view_op(ebl_op_kind kind) {
  return kind == EBL_OP_RESHAPE || kind == EBL_OP_IDENTITY;
}

static ebl_status batch_tensor(ebl_tensor *res, const ebl_tensor *like,
                               int ndim, const int64_t *shape) {
  int64_t full[EBL_MAX_DIMS];
  if (ndim + 1 > EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "engine: states have at most %d dims",
                    EBL_MAX_DIMS - 1);
  full[0] = like->shape[0];
  memcpy(full + 1, shape, sizeof(int64_t) * (size_t)ndim);
  return ebl_tensor_zeros(res, like->dtype, ndim + 1, full,
                          ebl_tensor_device(like));
}

static ebl_status view_as(ebl_tensor *res, const ebl_tensor *t, int ndim,
                          const int64_t *shape) {
  int64_t full[EBL_MAX_DIMS];
  full[0] = t->shape[0];
  memcpy(full + 1, shape, sizeof(int64_t) * (size_t)ndim);
  return ebl_tensor_reshape(res, t, ndim + 1, full);
}

void ebl_chain_buf_free(ebl_chain_buf *b) {
  for (int i = 0; i <= b->count && b->act != NULL; i++)
    ebl_tensor_release(&b->act[i]);
  for (int i = 0; i <= b->count && b->cot != NULL; i++)
    ebl_tensor_release(&b->cot[i]);
  for (int i = 0; i < b->count && b->winners != NULL; i++)
    ebl_tensor_release(&b->winners[i]);
  free(b->act);
  free(b->cot);
  free(b->winners);
  memset(b, 0, sizeof *b);
}

/* Output, cotangent and winners of op i, once act[i] exists. */
static ebl_status buf_step(ebl_chain_buf *b, const ebl_op *op, int i) {
  const ebl_tensor *x = &b->act[i];
  if (is_view_op(op->kind))
    EBL_TRY(view_as(&b->act[i + 1], x, op->out_ndim, op->out_shape));
  else
    EBL_TRY(batch_tensor(&b->act[i + 1], x, op->out_ndim, op->out_shape));
  if (i > 0)
    EBL_TRY(ebl_tensor_zeros_like(&b->cot[i], x));
  if (op->kind == EBL_OP_MAX_POOL) {
    const ebl_tensor *y = &b->act[i + 1];
    EBL_TRY(ebl_tensor_zeros(&b->winners[i], EBL_I32, y->ndim, y->shape,
                         ebl_tensor_device(y)));
  }
  return EBL_OK;
}

ebl_status ebl_chain_buf_init(ebl_chain_buf *b, const ebl_op *ops, int n,
                              const ebl_tensor *input) {
  memset(b, 0, sizeof *b);
  b->count = n;
  b->act = calloc((size_t)n + 1, sizeof *b->act);
  b->cot = calloc((size_t)n + 1, sizeof *b->cot);
  b->winners = calloc((size_t)n + 1, sizeof *b->winners);
  if (b->act == NULL || b->cot == NULL || b->winners == NULL) {
    ebl_chain_buf_free(b);
    return ebl_fail(EBL_ENOMEM, "engine: out of memory for a chain");
  }
  ebl_tensor_view(&b->act[0], input);
  for (int i = 0; i < n; i++) {
    ebl_status s = buf_step(b, &ops[i], i);
    if (s != EBL_OK) {
      ebl_chain_buf_free(b);
      return s;
    }
  }
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Forward                                                           */

static const ebl_tensor *param(const ebl_params *p, int i) {
  return i >= 0 ? &p->value[i] : NULL;
}

/* Copies src into dst through a view of src in dst's shape: src
   broadcast (expand) or src reshaped. */
static ebl_status copy_in_shape(const ebl_tensor *dst, const ebl_tensor *src,
                                int expand) {
  ebl_tensor v = {0};
  EBL_TRY(expand ? ebl_tensor_expand(&v, src, dst->ndim, dst->shape)
                 : ebl_tensor_reshape(&v, src, dst->ndim, dst->shape));
  ebl_status s = ebl_copy(dst, &v);
  ebl_tensor_release(&v);
  return s;
}

/* y = x W^T (+ b) or, transposed, y = x W. The bias goes in first and
   the product adds to it, one pass over y fewer than adding it after. */
static ebl_status linear_forward(const ebl_op *op, const ebl_params *p,
                                 const ebl_tensor *x, const ebl_tensor *y) {
  const ebl_tensor *w = param(p, op->weight);
  if (op->kind == EBL_OP_LINEAR_T)
    return ebl_gemm(y, x, w, 1.0, 0.0);
  if (op->bias >= 0)
    EBL_TRY(copy_in_shape(y, param(p, op->bias), 1));  /* b in each row */
  ebl_tensor wt = {0};
  EBL_TRY(ebl_tensor_transpose(&wt, w, 0, 1));
  ebl_status s = ebl_gemm(y, x, &wt, 1.0, op->bias >= 0 ? 1.0 : 0.0);
  ebl_tensor_release(&wt);
  return s;
}

/* Nearest upsampling: k^2 times the adjoint of average pooling. */
static ebl_status upsample(const ebl_op *op, const ebl_tensor *x,
                           const ebl_tensor *y) {
  EBL_TRY(ebl_avg_pool2d_vjp(y, x, &op->pool));
  double area = (double)op->pool.kernel[0] * op->pool.kernel[1];
  return ebl_binary_scalar(EBL_MUL, y, y, area);
}

static ebl_status op_forward(const ebl_op *op, const ebl_params *p,
                             const ebl_tensor *x, const ebl_tensor *y,
                             const ebl_tensor *winners) {
  switch (op->kind) {
  case EBL_OP_LINEAR:
  case EBL_OP_LINEAR_T:
    return linear_forward(op, p, x, y);
  case EBL_OP_CONV2D:
    return ebl_conv2d(y, x, param(p, op->weight), param(p, op->bias),
                      &op->conv);
  case EBL_OP_CONV_T2D:
    return ebl_conv_transpose2d(y, x, param(p, op->weight),
                                param(p, op->bias), &op->conv);
  case EBL_OP_MAX_POOL:
    return ebl_max_pool2d(y, winners, x, &op->pool);
  case EBL_OP_AVG_POOL:
    return ebl_avg_pool2d(y, x, &op->pool);
  case EBL_OP_AVG_UNPOOL:
    return ebl_avg_pool2d_vjp(y, x, &op->pool);
  case EBL_OP_UPSAMPLE:
    return upsample(op, x, y);
  case EBL_OP_RESHAPE:
  case EBL_OP_IDENTITY:
    return EBL_OK;
  case EBL_OP_ACTIVATION:
    return ebl_unary(op->act, y, x, op->act_param, 0.0);
  }
  return ebl_fail(EBL_EARG, "engine: unknown layer kind %d", (int)op->kind);
}

ebl_status ebl_chain_forward(const ebl_op *ops, int n, ebl_chain_buf *b,
                             const ebl_params *p) {
  for (int i = 0; i < n; i++)
    EBL_TRY(op_forward(&ops[i], p, &b->act[i], &b->act[i + 1],
                   &b->winners[i]));
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Vector-Jacobian products                                          */

/* grad[i] += scale * scratch[i]. */
static ebl_status add_scratch(const ebl_params *p, int i, double scale) {
  return ebl_axpby(&p->grad[i], scale, &p->scratch[i], 1.0);
}

/* Bias gradient: dy summed over the batch (and space for convs). */
static ebl_status bias_vjp(const ebl_op *op, const ebl_params *p,
                           const ebl_tensor *dy, double scale) {
  if (op->bias < 0)
    return EBL_OK;
  if (op->kind == EBL_OP_LINEAR)
    EBL_TRY(ebl_reduce(EBL_SUM, &p->scratch[op->bias], dy, 0, 0, 0.0));
  else
    EBL_TRY(ebl_conv2d_bias_vjp(&p->scratch[op->bias], dy));
  return add_scratch(p, op->bias, scale);
}

/* Linear maps: the input cotangent (dx = alpha dy W + beta dx, beta 0
   or 1) and the weight gradient. */
static ebl_status linear_vjp(const ebl_op *op, const ebl_params *p,
                             const ebl_tensor *x, const ebl_tensor *dy,
                             const ebl_tensor *dx, const double dx_ab[2],
                             double scale) {
  const ebl_tensor *w = param(p, op->weight);
  int t = op->kind == EBL_OP_LINEAR_T;
  ebl_tensor wt = {0}, at = {0};
  ebl_status s = EBL_OK;
  if (dx != NULL) {
    EBL_TRY(ebl_tensor_transpose(&wt, w, 0, 1));
    s = ebl_gemm(dx, dy, t ? &wt : w, dx_ab[0], dx_ab[1]);
    ebl_tensor_release(&wt);
  }
  if (s != EBL_OK || scale == 0.0)
    return s;
  /* LINEAR: dW += dy^T x; LINEAR_T (y = x W): dW += x^T dy. */
  EBL_TRY(ebl_tensor_transpose(&at, t ? x : dy, 0, 1));
  s = ebl_gemm(&p->grad[op->weight], &at, t ? dy : x, scale, 1.0);
  ebl_tensor_release(&at);
  return s == EBL_OK ? bias_vjp(op, p, dy, scale) : s;
}

static ebl_status conv_vjp(const ebl_op *op, const ebl_params *p,
                           const ebl_tensor *x, const ebl_tensor *dy,
                           const ebl_tensor *dx, double scale) {
  const ebl_tensor *w = param(p, op->weight);
  int t = op->kind == EBL_OP_CONV_T2D;
  if (dx != NULL)
    EBL_TRY(t ? ebl_conv_transpose2d_input_vjp(dx, dy, w, &op->conv)
          : ebl_conv2d_input_vjp(dx, dy, w, &op->conv));
  if (scale == 0.0)
    return EBL_OK;
  const ebl_tensor *dw = &p->scratch[op->weight];
  EBL_TRY(t ? ebl_conv_transpose2d_weight_vjp(dw, x, dy, &op->conv)
        : ebl_conv2d_weight_vjp(dw, x, dy, &op->conv));
  EBL_TRY(add_scratch(p, op->weight, scale));
  return bias_vjp(op, p, dy, scale);
}

/* dx = dy f'(x) from f's output y by the backend's act_vjp; 0 when the
   backend or f cannot (dx is then left alone). */
static int vjp_from_output(ebl_unary_op act, const ebl_tensor *dx,
                           const ebl_tensor *y, const ebl_tensor *dy) {
  ebl_device device = ebl_tensor_device(dx);
  const ebl_backend *be = ebl_backend_for(device);
  return (act == EBL_TANH || act == EBL_SIGMOID) && be != NULL &&
         be->act_vjp != NULL && ebl_tensor_device(y) == device &&
         ebl_tensor_device(dy) == device &&
         be->act_vjp(act, dx, y, dy) == EBL_OK;
}

ebl_status ebl_act_vjp(ebl_unary_op act, ebl_unary_op act_grad,
                       double param, const ebl_tensor *dx,
                       const ebl_tensor *x, const ebl_tensor *y,
                       const ebl_tensor *dy) {
  if (y != NULL && vjp_from_output(act, dx, y, dy))
    return EBL_OK;
  EBL_TRY(ebl_unary(act_grad, dx, x, param, 0.0));
  return ebl_binary(EBL_MUL, dx, dx, dy);
}

/* One op's VJP at input x and output y (NULL: not known to be the
   op's output at x); dx_ab = {alpha, beta} of dx, {1, 0} but for a
   linear map that adds in place. */
static ebl_status op_vjp(const ebl_op *op, const ebl_params *p,
                         const ebl_tensor *x, const ebl_tensor *y,
                         const ebl_tensor *dy, const ebl_tensor *dx,
                         const ebl_tensor *winners, const double dx_ab[2],
                         double scale) {
  switch (op->kind) {
  case EBL_OP_LINEAR:
  case EBL_OP_LINEAR_T:
    return linear_vjp(op, p, x, dy, dx, dx_ab, scale);
  case EBL_OP_CONV2D:
  case EBL_OP_CONV_T2D:
    return conv_vjp(op, p, x, dy, dx, scale);
  default:
    break;
  }
  if (dx == NULL)
    return EBL_OK;
  switch (op->kind) {
  case EBL_OP_MAX_POOL:
    return ebl_max_pool2d_vjp(dx, dy, winners, &op->pool);
  case EBL_OP_AVG_POOL:
    return ebl_avg_pool2d_vjp(dx, dy, &op->pool);
  case EBL_OP_AVG_UNPOOL:
    return ebl_avg_pool2d(dx, dy, &op->pool);
  case EBL_OP_UPSAMPLE:
    EBL_TRY(ebl_avg_pool2d(dx, dy, &op->pool));
    return ebl_binary_scalar(EBL_MUL, dx, dx, (double)op->pool.kernel[0] *
                             op->pool.kernel[1]);
  case EBL_OP_RESHAPE:
  case EBL_OP_IDENTITY:
    return copy_in_shape(dx, dy, 0);
  case EBL_OP_ACTIVATION:
    return ebl_act_vjp(op->act, op->act_grad, op->act_param, dx, x, y, dy);
  default:
    return ebl_fail(EBL_EARG, "engine: unknown layer kind %d",
                    (int)op->kind);
  }
}

/* Whether act[i] was written by the chain's forward, with act[i + 1]:
   an op before i is not a view. Otherwise act[i] views the chain's
   input, a state that may have moved since (m:step under bp). */
static int computed_in_chain(const ebl_op *ops, int i) {
  for (int j = 0; j < i; j++)
    if (!is_view_op(ops[j].kind))
      return 1;
  return 0;
}

/* Back through the chain; dx_ab applies to the write into dx. */
static ebl_status chain_vjp(const ebl_op *ops, int n, ebl_chain_buf *b,
                            const ebl_params *p, const ebl_tensor *dy,
                            const ebl_tensor *dx, const double dx_ab[2],
                            double grad_scale) {
  static const double plain[2] = {1.0, 0.0};
  const ebl_tensor *cot = dy;
  if (dx == NULL && grad_scale == 0.0)
    return EBL_OK;
  for (int i = n - 1; i >= 0; i--) {
    const ebl_tensor *out = i > 0 ? &b->cot[i] : dx;
    if (out == NULL && !(ops[i].weight >= 0 && grad_scale != 0.0))
      break;
    const ebl_tensor *y = computed_in_chain(ops, i) ? &b->act[i + 1]
                                                    : NULL;
    EBL_TRY(op_vjp(&ops[i], p, &b->act[i], y, cot, out, &b->winners[i],
                   i > 0 ? plain : dx_ab, grad_scale));
    cot = out;
  }
  return EBL_OK;
}

ebl_status ebl_chain_vjp(const ebl_op *ops, int n, ebl_chain_buf *b,
                         const ebl_params *p, const ebl_tensor *dy,
                         const ebl_tensor *dx, double grad_scale) {
  static const double plain[2] = {1.0, 0.0};
  return chain_vjp(ops, n, b, p, dy, dx, plain, grad_scale);
}

int ebl_chain_adds_in_place(const ebl_op *ops, int n) {
  return n > 0 && (ops[0].kind == EBL_OP_LINEAR ||
                   ops[0].kind == EBL_OP_LINEAR_T);
}

ebl_status ebl_chain_vjp_add(const ebl_op *ops, int n, ebl_chain_buf *b,
                             const ebl_params *p, const ebl_tensor *dy,
                             const ebl_tensor *dx, double alpha,
                             double grad_scale) {
  const double add[2] = {alpha, 1.0};
  if (!ebl_chain_adds_in_place(ops, n))
    return ebl_fail(EBL_EARG, "engine: this chain cannot add its VJP in "
                    "place");
  return chain_vjp(ops, n, b, p, dy, dx, add, grad_scale);
}

/* ---------------------------------------------------------------- */
/* Transposes for feedback                                           */

/* For a conv2d taking size in to size out along dim d: what a
   conv_transpose2d from out must add to give back in. */
static int64_t conv_t_extra(const ebl_op *f, int d) {
  const ebl_conv_opts *o = &f->conv;
  int64_t in = f->in_shape[1 + d], out = f->out_shape[1 + d];
  int64_t k = f->kernel[d];
  return in - ((out - 1) * o->stride[d] - 2 * o->padding[d] +
               (int64_t)o->dilation[d] * (k - 1) + 1);
}

/* The transpose of one op; returns 0 when the op is dropped. */
static int transpose_op(const ebl_op *f, ebl_op *t) {
  *t = *f;
  t->bias = -1;
  t->in_ndim = f->out_ndim;
  t->out_ndim = f->in_ndim;
  memcpy(t->in_shape, f->out_shape, sizeof t->in_shape);
  memcpy(t->out_shape, f->in_shape, sizeof t->out_shape);
  switch (f->kind) {
  case EBL_OP_LINEAR: t->kind = EBL_OP_LINEAR_T; return 1;
  case EBL_OP_LINEAR_T: t->kind = EBL_OP_LINEAR; return 1;
  case EBL_OP_CONV2D:
  case EBL_OP_CONV_T2D:
    t->kind = f->kind == EBL_OP_CONV2D ? EBL_OP_CONV_T2D : EBL_OP_CONV2D;
    for (int d = 0; d < 2 && f->kind == EBL_OP_CONV2D; d++) {
      /* The output padding that gives back the forward input's size. */
      t->conv.output_padding[d] = (int)conv_t_extra(f, d);
    }
    if (f->kind == EBL_OP_CONV_T2D)
      t->conv.output_padding[0] = t->conv.output_padding[1] = 0;
    return 1;
  case EBL_OP_MAX_POOL: t->kind = EBL_OP_UPSAMPLE; return 1;
  case EBL_OP_AVG_POOL: t->kind = EBL_OP_AVG_UNPOOL; return 1;
  case EBL_OP_AVG_UNPOOL: t->kind = EBL_OP_AVG_POOL; return 1;
  case EBL_OP_UPSAMPLE: t->kind = EBL_OP_AVG_POOL; return 1;
  case EBL_OP_RESHAPE: return 1;
  case EBL_OP_IDENTITY:
  case EBL_OP_ACTIVATION:
    return 0;
  }
  return 0;
}

ebl_status ebl_chain_transpose(const ebl_op *ops, int n, ebl_op *t,
                               int *tn) {
  int k = 0;
  for (int i = n - 1; i >= 0; i--)
    k += transpose_op(&ops[i], &t[k]);
  *tn = k;
  return EBL_OK;
}

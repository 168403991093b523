/* Elementwise front end: names of ops, argument checks, broadcasting,
   dtype promotion and result allocation; the loops run in the backend.
   Inputs that partially overlap the output are copied first. */
#include <math.h>
#include <string.h>

#include "core.h"

static const char *const binary_names[EBL_NBINARY] = {
  "add", "sub", "mul", "div", "pow", "maximum", "minimum",
  "eq", "ne", "lt", "le", "gt", "ge"
};

static const char *const unary_names[EBL_NUNARY] = {
  "neg", "abs", "square", "sign", "exp", "log", "sqrt", "reciprocal",
  "clamp", "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "softplus",
  "tanh_grad", "sigmoid_grad", "relu_grad", "leaky_relu_grad",
  "gelu_grad", "softplus_grad"
};

const char *ebl_binary_name(ebl_binary_op op) {
  return (unsigned)op < EBL_NBINARY ? binary_names[op] : "?";
}

const char *ebl_unary_name(ebl_unary_op op) {
  return (unsigned)op < EBL_NUNARY ? unary_names[op] : "?";
}

int ebl_unary_from_name(const char *name) {
  for (int i = 0; i < EBL_NUNARY; i++)
    if (strcmp(name, unary_names[i]) == 0) return i;
  return -1;
}

int ebl_binary_from_name(const char *name) {
  for (int i = 0; i < EBL_NBINARY; i++)
    if (strcmp(name, binary_names[i]) == 0) return i;
  return -1;
}

/* ---- helpers */

static int is_comparison(ebl_binary_op op) { return op >= EBL_EQ; }

/* Which ops integer dtypes support (see tensor.h). */
static int int_binary_ok(ebl_binary_op op) {
  return op != EBL_DIV && op != EBL_POW;
}

static int int_unary_ok(ebl_unary_op op) {
  return op == EBL_NEG || op == EBL_ABS || op == EBL_CLAMP ||
         op == EBL_RELU;
}

/* Where a result of dtype rt computed for out goes: out itself when the
   dtypes match, else a temporary cast into out by finish_target. */
static ebl_status start_target(const ebl_tensor *out, ebl_dtype rt,
                               ebl_tensor *target) {
  if (out->dtype == rt) {
    ebl_tensor_view(target, out);
    return EBL_OK;
  }
  return ebl_tensor_empty(target, rt, out->ndim, out->shape,
                          out->storage->device);
}

static ebl_status finish_target(const ebl_tensor *out, ebl_tensor *target,
                                ebl_status st) {
  if (st == EBL_OK && target->storage != out->storage)
    st = ebl_copy(out, target);
  ebl_tensor_release(target);
  return st;
}

/* x cast to dtype and broadcast to shape, safe to read while out is
   written. */
static ebl_status operand(const ebl_tensor *out, const ebl_tensor *x,
                          ebl_dtype dtype, int ndim, const int64_t *shape,
                          ebl_tensor *res) {
  ebl_tensor cast, wide;
  EBL_TRY(ebl_to_dtype(&cast, x, dtype));
  ebl_status st = ebl_tensor_expand(&wide, &cast, ndim, shape);
  ebl_tensor_release(&cast);
  if (st != EBL_OK) return st;
  st = ebl_input_for(out, &wide, res);
  ebl_tensor_release(&wide);
  return st;
}

/* Checks that out exists, is writable, on x's device, of shape. */
static ebl_status check_out(const char *fn, const ebl_tensor *out,
                            const ebl_tensor *x, int ndim,
                            const int64_t *shape) {
  char a[96], b[96];
  EBL_TRY(ebl_need_tensor(fn, out, "output"));
  EBL_TRY(ebl_need_same_device(fn, out, x));
  int same = out->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = out->shape[d] == shape[d];
  if (!same)
    return ebl_fail(EBL_EARG, "%s: output has shape %s, expected %s", fn,
                    ebl_shape_string(out, a, sizeof a),
                    ebl_format_shape(ndim, shape, b, sizeof b));
  for (int d = 0; d < out->ndim; d++)
    if (out->stride[d] == 0 && out->shape[d] > 1)
      return ebl_fail(EBL_EARG, "%s: the output is a broadcast view", fn);
  return EBL_OK;
}

/* Allocates res with shape and dtype on x's device, runs fill into it
   and releases it again on failure. */
#define ALLOC_AND_RUN(res, dtype, ndim, shape, x, call)               \
  do {                                                                \
    ebl_tensor r_;                                                    \
    EBL_TRY(ebl_tensor_empty(&r_, dtype, ndim, shape,                 \
                             (x)->storage->device));                  \
    const ebl_tensor *out_ = &r_;                                     \
    ebl_status st_ = (call);                                          \
    (void)out_;                                                       \
    if (st_ != EBL_OK) {                                              \
      ebl_tensor_release(&r_);                                        \
      return st_;                                                     \
    }                                                                 \
    *(res) = r_;                                                      \
    return EBL_OK;                                                    \
  } while (0)

/* ---- binary */

/* Dtype a op b is computed in, after checking the op supports it. */
static ebl_status binary_dtype(ebl_binary_op op, ebl_dtype a, ebl_dtype b,
                               ebl_dtype *ct) {
  if ((unsigned)op >= EBL_NBINARY)
    return ebl_fail(EBL_EARG, "binary: unknown op %d", (int)op);
  *ct = ebl_dtype_promote(a, b);
  if (!ebl_dtype_is_float(*ct) && !int_binary_ok(op))
    return ebl_fail(EBL_EARG, "%s: not defined for %s tensors",
                    binary_names[op], ebl_dtype_name(*ct));
  return EBL_OK;
}

/* Checks a and b; gives the broadcast shape and compute dtype. */
static ebl_status binary_prepare(ebl_binary_op op, const ebl_tensor *a,
                                 const ebl_tensor *b, int *ndim,
                                 int64_t *shape, ebl_dtype *ct) {
  const char *fn = (unsigned)op < EBL_NBINARY ? binary_names[op] : "binary";
  EBL_TRY(ebl_need_tensor(fn, a, "first operand"));
  EBL_TRY(ebl_need_tensor(fn, b, "second operand"));
  EBL_TRY(ebl_need_same_device(fn, a, b));
  EBL_TRY(binary_dtype(op, a->dtype, b->dtype, ct));
  return ebl_broadcast_shape(fn, a, b, ndim, shape);
}

ebl_status ebl_binary(ebl_binary_op op, const ebl_tensor *out,
                      const ebl_tensor *a, const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_dtype ct = EBL_F32;
  ebl_tensor x, y, target;
  const ebl_backend *be;
  EBL_TRY(binary_prepare(op, a, b, &nd, shape, &ct));
  EBL_TRY(check_out(binary_names[op], out, a, nd, shape));
  EBL_TRY(ebl_backend_of(binary_names[op], out, &be));
  ebl_dtype rt = is_comparison(op) ? EBL_U8 : ct;
  EBL_TRY(start_target(out, rt, &target));
  ebl_status st = operand(&target, a, ct, nd, shape, &x);
  if (st != EBL_OK) return finish_target(out, &target, st);
  st = operand(&target, b, ct, nd, shape, &y);
  if (st == EBL_OK) st = be->binary(op, &target, &x, &y);
  ebl_tensor_release(&x);
  ebl_tensor_release(&y);
  return finish_target(out, &target, st);
}

ebl_status ebl_binary_new(ebl_binary_op op, ebl_tensor *res,
                          const ebl_tensor *a, const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_dtype ct = EBL_F32;
  EBL_TRY(binary_prepare(op, a, b, &nd, shape, &ct));
  ALLOC_AND_RUN(res, is_comparison(op) ? EBL_U8 : ct, nd, shape, a,
                ebl_binary(op, out_, a, b));
}

/* Dtype of a op s: an integer tensor meets a fractional number, a
   division or a power in float32. */
static ebl_status scalar_dtype(ebl_binary_op op, const ebl_tensor *a,
                               double s, ebl_dtype *ct) {
  if ((unsigned)op >= EBL_NBINARY)
    return ebl_fail(EBL_EARG, "binary: unknown op %d", (int)op);
  EBL_TRY(ebl_need_tensor(binary_names[op], a, "tensor operand"));
  *ct = a->dtype;
  if (!ebl_dtype_is_float(*ct) &&
      (s != floor(s) || !int_binary_ok(op)))
    *ct = EBL_F32;
  return EBL_OK;
}

/* out = a op s, or s op a when reversed. */
static ebl_status scalar_op(ebl_binary_op op, const ebl_tensor *out,
                            const ebl_tensor *a, double s, int reversed) {
  ebl_dtype ct = EBL_F32;
  ebl_tensor x, target;
  const ebl_backend *be;
  EBL_TRY(scalar_dtype(op, a, s, &ct));
  EBL_TRY(check_out(binary_names[op], out, a, a->ndim, a->shape));
  EBL_TRY(ebl_backend_of(binary_names[op], out, &be));
  EBL_TRY(start_target(out, is_comparison(op) ? EBL_U8 : ct, &target));
  ebl_status st = operand(&target, a, ct, a->ndim, a->shape, &x);
  if (st == EBL_OK) st = be->binary_scalar(op, &target, &x, s, reversed);
  ebl_tensor_release(&x);
  return finish_target(out, &target, st);
}

/* res = a op s (or s op a), allocated. */
static ebl_status scalar_op_new(ebl_binary_op op, ebl_tensor *res,
                                const ebl_tensor *a, double s,
                                int reversed) {
  ebl_dtype ct = EBL_F32;
  EBL_TRY(scalar_dtype(op, a, s, &ct));
  ALLOC_AND_RUN(res, is_comparison(op) ? EBL_U8 : ct, a->ndim, a->shape,
                a, scalar_op(op, out_, a, s, reversed));
}

ebl_status ebl_binary_scalar(ebl_binary_op op, const ebl_tensor *out,
                             const ebl_tensor *a, double s) {
  return scalar_op(op, out, a, s, 0);
}

ebl_status ebl_binary_scalar_new(ebl_binary_op op, ebl_tensor *res,
                                 const ebl_tensor *a, double s) {
  return scalar_op_new(op, res, a, s, 0);
}

ebl_status ebl_scalar_binary(ebl_binary_op op, const ebl_tensor *out,
                             double s, const ebl_tensor *b) {
  return scalar_op(op, out, b, s, 1);
}

ebl_status ebl_scalar_binary_new(ebl_binary_op op, ebl_tensor *res,
                                 double s, const ebl_tensor *b) {
  return scalar_op_new(op, res, b, s, 1);
}

/* ---- unary */

static ebl_status unary_check(ebl_unary_op op, const ebl_tensor *x,
                              double p0, double p1) {
  if ((unsigned)op >= EBL_NUNARY)
    return ebl_fail(EBL_EARG, "unary: unknown op %d", (int)op);
  EBL_TRY(ebl_need_tensor(unary_names[op], x, "input"));
  if (op == EBL_CLAMP && (isnan(p0) || isnan(p1)))
    return ebl_fail(EBL_EARG, "clamp: %s must be a number, got nan",
                    isnan(p0) ? "min" : "max");
  if (!ebl_dtype_is_float(x->dtype) && !int_unary_ok(op))
    return ebl_fail(EBL_EARG, "%s: not defined for %s tensors",
                    unary_names[op], ebl_dtype_name(x->dtype));
  return EBL_OK;
}

ebl_status ebl_unary(ebl_unary_op op, const ebl_tensor *out,
                     const ebl_tensor *x, double p0, double p1) {
  ebl_tensor in, target;
  const ebl_backend *be;
  EBL_TRY(unary_check(op, x, p0, p1));
  EBL_TRY(check_out(unary_names[op], out, x, x->ndim, x->shape));
  EBL_TRY(ebl_backend_of(unary_names[op], out, &be));
  EBL_TRY(start_target(out, x->dtype, &target));
  ebl_status st = ebl_input_for(&target, x, &in);
  if (st == EBL_OK) st = be->unary(op, &target, &in, p0, p1);
  ebl_tensor_release(&in);
  return finish_target(out, &target, st);
}

ebl_status ebl_unary_new(ebl_unary_op op, ebl_tensor *res,
                         const ebl_tensor *x, double p0, double p1) {
  EBL_TRY(unary_check(op, x, p0, p1));
  ALLOC_AND_RUN(res, x->dtype, x->ndim, x->shape, x,
                ebl_unary(op, out_, x, p0, p1));
}

/* ---- where, axpby */

/* Shape and dtype of where(cond, a, b). */
static ebl_status where_prepare(const ebl_tensor *cond, const ebl_tensor *a,
                                const ebl_tensor *b, int *ndim,
                                int64_t *shape, ebl_dtype *dt) {
  ebl_tensor ab;
  EBL_TRY(ebl_need_tensor("where", cond, "condition"));
  EBL_TRY(ebl_need_tensor("where", a, "first choice"));
  EBL_TRY(ebl_need_tensor("where", b, "second choice"));
  EBL_TRY(ebl_need_same_device("where", cond, a));
  EBL_TRY(ebl_need_same_device("where", a, b));
  EBL_TRY(ebl_broadcast_shape("where", a, b, ndim, shape));
  memset(&ab, 0, sizeof ab);
  ab.ndim = *ndim;
  memcpy(ab.shape, shape, sizeof(int64_t) * *ndim);
  EBL_TRY(ebl_broadcast_shape("where", cond, &ab, ndim, shape));
  *dt = ebl_dtype_promote(a->dtype, b->dtype);
  return EBL_OK;
}

/* The condition as U8 (nonzero -> 1) broadcast to shape. */
static ebl_status where_mask(const ebl_tensor *out, const ebl_tensor *cond,
                             int ndim, const int64_t *shape,
                             ebl_tensor *res) {
  ebl_tensor mask;
  if (cond->dtype == EBL_U8)
    return operand(out, cond, EBL_U8, ndim, shape, res);
  EBL_TRY(ebl_binary_scalar_new(EBL_NE, &mask, cond, 0.0));
  ebl_status st = operand(out, &mask, EBL_U8, ndim, shape, res);
  ebl_tensor_release(&mask);
  return st;
}

ebl_status ebl_where(const ebl_tensor *out, const ebl_tensor *cond,
                     const ebl_tensor *a, const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_dtype dt;
  ebl_tensor c = {0}, x = {0}, y = {0}, target;
  const ebl_backend *be;
  EBL_TRY(where_prepare(cond, a, b, &nd, shape, &dt));
  EBL_TRY(check_out("where", out, a, nd, shape));
  EBL_TRY(ebl_backend_of("where", out, &be));
  EBL_TRY(start_target(out, dt, &target));
  ebl_status st = where_mask(&target, cond, nd, shape, &c);
  if (st == EBL_OK) st = operand(&target, a, dt, nd, shape, &x);
  if (st == EBL_OK) st = operand(&target, b, dt, nd, shape, &y);
  if (st == EBL_OK) st = be->where(&target, &c, &x, &y);
  ebl_tensor_release(&c);
  ebl_tensor_release(&x);
  ebl_tensor_release(&y);
  return finish_target(out, &target, st);
}

ebl_status ebl_where_new(ebl_tensor *res, const ebl_tensor *cond,
                         const ebl_tensor *a, const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_dtype dt;
  EBL_TRY(where_prepare(cond, a, b, &nd, shape, &dt));
  ALLOC_AND_RUN(res, dt, nd, shape, a, ebl_where(out_, cond, a, b));
}

ebl_status ebl_axpby(const ebl_tensor *out, double alpha,
                     const ebl_tensor *x, double beta) {
  ebl_tensor in;
  const ebl_backend *be;
  EBL_TRY(ebl_need_tensor("axpby", out, "output"));
  EBL_TRY(ebl_need_tensor("axpby", x, "input"));
  EBL_TRY(ebl_need_float("axpby", out));
  EBL_TRY(check_out("axpby", out, x, out->ndim, out->shape));
  EBL_TRY(ebl_backend_of("axpby", out, &be));
  EBL_TRY(operand(out, x, out->dtype, out->ndim, out->shape, &in));
  ebl_status st = be->axpby(out, alpha, &in, beta);
  ebl_tensor_release(&in);
  return st;
}

/* ---- softmax */

static ebl_status softmax_into(const char *fn, const ebl_tensor *out,
                               const ebl_tensor *x, int dim, int take_log) {
  int d;
  ebl_tensor in, target;
  const ebl_backend *be;
  EBL_TRY(ebl_need_tensor(fn, x, "input"));
  EBL_TRY(ebl_need_float(fn, x));
  EBL_TRY(ebl_wrap_dim(fn, dim, x->ndim, 0, &d));
  EBL_TRY(check_out(fn, out, x, x->ndim, x->shape));
  EBL_TRY(ebl_backend_of(fn, out, &be));
  EBL_TRY(start_target(out, x->dtype, &target));
  ebl_status st = ebl_input_for(&target, x, &in);
  if (st == EBL_OK) st = be->softmax(&target, &in, d, take_log);
  ebl_tensor_release(&in);
  return finish_target(out, &target, st);
}

ebl_status ebl_softmax(const ebl_tensor *out, const ebl_tensor *x,
                       int dim) {
  return softmax_into("softmax", out, x, dim, 0);
}

ebl_status ebl_log_softmax(const ebl_tensor *out, const ebl_tensor *x,
                           int dim) {
  return softmax_into("log_softmax", out, x, dim, 1);
}

ebl_status ebl_softmax_new(ebl_tensor *res, const ebl_tensor *x, int dim) {
  EBL_TRY(ebl_need_tensor("softmax", x, "input"));
  ALLOC_AND_RUN(res, x->dtype, x->ndim, x->shape, x,
                ebl_softmax(out_, x, dim));
}

ebl_status ebl_log_softmax_new(ebl_tensor *res, const ebl_tensor *x,
                               int dim) {
  EBL_TRY(ebl_need_tensor("log_softmax", x, "input"));
  ALLOC_AND_RUN(res, x->dtype, x->ndim, x->shape, x,
                ebl_log_softmax(out_, x, dim));
}

/* Reductions front end: result shapes and dtypes, checks, and the
   conversions around the backend, which reduces float data only (integer
   inputs are reduced as float64, exact below 2^53). */
#include <math.h>
#include <string.h>

#include "core.h"

static const char *const reduce_names[EBL_NREDUCE] = {
  "sum", "mean", "max", "min", "argmax", "argmin", "var", "norm"
};

const char *ebl_reduce_name(ebl_reduce_op op) {
  return (unsigned)op < EBL_NREDUCE ? reduce_names[op] : "?";
}

static int is_arg(ebl_reduce_op op) {
  return op == EBL_ARGMAX || op == EBL_ARGMIN;
}

ebl_dtype ebl_reduce_dtype(ebl_reduce_op op, ebl_dtype x) {
  if (is_arg(op)) return EBL_I32;
  if (ebl_dtype_is_float(x)) return x;
  if (op == EBL_MAX || op == EBL_MIN) return x;
  return op == EBL_SUM ? EBL_I32 : EBL_F64;
}

/* The reduced shape with the dims kept as size 1 (keepdim form). */
static void kept_shape(const ebl_tensor *t, int d, int64_t *shape) {
  for (int i = 0; i < t->ndim; i++)
    shape[i] = (d == EBL_DIM_ALL || i == d) ? 1 : t->shape[i];
}

ebl_status ebl_reduce_shape(const char *fn, const ebl_tensor *t, int dim,
                            int keepdim, int *ndim, int64_t *shape) {
  int d = EBL_DIM_ALL;
  if (dim != EBL_DIM_ALL) EBL_TRY(ebl_wrap_dim(fn, dim, t->ndim, 0, &d));
  if (keepdim) {
    *ndim = t->ndim;
    kept_shape(t, d, shape);
    return EBL_OK;
  }
  *ndim = 0;
  for (int i = 0; i < t->ndim && d != EBL_DIM_ALL; i++)
    if (i != d) shape[(*ndim)++] = t->shape[i];
  return EBL_OK;
}

/* Checks op, p and x; gives the wrapped dim and reduced length. */
static ebl_status reduce_check(ebl_reduce_op op, const ebl_tensor *x,
                               int dim, double p, int *d) {
  if ((unsigned)op >= EBL_NREDUCE)
    return ebl_fail(EBL_EARG, "reduce: unknown op %d", (int)op);
  const char *fn = reduce_names[op];
  EBL_TRY(ebl_need_tensor(fn, x, "input"));
  *d = EBL_DIM_ALL;
  if (dim != EBL_DIM_ALL) EBL_TRY(ebl_wrap_dim(fn, dim, x->ndim, 0, d));
  if (op == EBL_NORM && !(p > 0))
    return ebl_fail(EBL_EARG, "norm: order p = %g must be positive", p);
  int64_t len = *d == EBL_DIM_ALL ? ebl_tensor_numel(x) : x->shape[*d];
  int needs_one = op == EBL_MAX || op == EBL_MIN || is_arg(op);
  if (needs_one && len == 0)
    return ebl_fail(EBL_EARG, "%s: reduction over no elements", fn);
  return EBL_OK;
}

/* The float input the backend reduces: x as float64 if it is integer,
   dense when all dims are reduced. */
static ebl_status float_input(const ebl_tensor *x, int d, ebl_tensor *res) {
  ebl_tensor f;
  if (ebl_dtype_is_float(x->dtype)) ebl_tensor_view(&f, x);
  else EBL_TRY(ebl_to_dtype(&f, x, EBL_F64));
  if (d != EBL_DIM_ALL) {
    *res = f;
    return EBL_OK;
  }
  ebl_status st = ebl_tensor_contiguous(res, &f);
  ebl_tensor_release(&f);
  return st;
}

/* Where the backend writes: out itself (viewed in keepdim shape) when it
   is dense, of the backend's dtype and apart from the input; else a
   temporary. */
static ebl_status reduce_target(const ebl_tensor *out, const ebl_tensor *x,
                                const ebl_tensor *in, int d, ebl_dtype dt,
                                ebl_tensor *target) {
  int64_t kept[EBL_MAX_DIMS];
  kept_shape(x, d, kept);
  if (out->dtype == dt && ebl_tensor_is_contiguous(out) &&
      !ebl_views_overlap(out, in))
    return ebl_tensor_reshape(target, out, x->ndim, kept);
  return ebl_tensor_empty(target, dt, x->ndim, kept, out->storage->device);
}

/* Copies a temporary target into out (of shape nd, shape). */
static ebl_status reduce_finish(const ebl_tensor *out,
                                const ebl_tensor *target, int nd,
                                const int64_t *shape) {
  ebl_tensor shaped;
  if (target->storage == out->storage) return EBL_OK;
  EBL_TRY(ebl_tensor_reshape(&shaped, target, nd, shape));
  ebl_status st = ebl_copy(out, &shaped);
  ebl_tensor_release(&shaped);
  return st;
}

ebl_status ebl_reduce(ebl_reduce_op op, const ebl_tensor *out,
                      const ebl_tensor *x, int dim, int keepdim, double p) {
  int d, nd;
  int64_t shape[EBL_MAX_DIMS];
  char a[96], b[96];
  ebl_tensor in, target;
  const ebl_backend *be;
  EBL_TRY(reduce_check(op, x, dim, p, &d));
  const char *fn = reduce_names[op];
  EBL_TRY(ebl_need_tensor(fn, out, "output"));
  EBL_TRY(ebl_need_same_device(fn, out, x));
  EBL_TRY(ebl_reduce_shape(fn, x, dim, keepdim, &nd, shape));
  if (out->ndim != nd || memcmp(out->shape, shape, sizeof(int64_t) * nd))
    return ebl_fail(EBL_EARG, "%s: output has shape %s, expected %s", fn,
                    ebl_shape_string(out, a, sizeof a),
                    ebl_format_shape(nd, shape, b, sizeof b));
  EBL_TRY(ebl_backend_of(fn, out, &be));
  EBL_TRY(float_input(x, d, &in));
  ebl_dtype dt = is_arg(op) ? EBL_I32 : in.dtype;
  ebl_status st = reduce_target(out, x, &in, d, dt, &target);
  if (st == EBL_OK) {
    st = be->reduce(op, &target, &in, d, p);
    if (st == EBL_OK) st = reduce_finish(out, &target, nd, shape);
    ebl_tensor_release(&target);
  }
  ebl_tensor_release(&in);
  return st;
}

ebl_status ebl_reduce_new(ebl_reduce_op op, ebl_tensor *res,
                          const ebl_tensor *x, int dim, int keepdim,
                          double p) {
  int d, nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_tensor r;
  EBL_TRY(reduce_check(op, x, dim, p, &d));
  EBL_TRY(ebl_reduce_shape(reduce_names[op], x, dim, keepdim, &nd, shape));
  EBL_TRY(ebl_tensor_empty(&r, ebl_reduce_dtype(op, x->dtype), nd, shape,
                           x->storage->device));
  ebl_status st = ebl_reduce(op, &r, x, dim, keepdim, p);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

ebl_status ebl_reduce_all(ebl_reduce_op op, const ebl_tensor *x, double p,
                          double *value) {
  ebl_tensor r;
  EBL_TRY(ebl_reduce_new(op, &r, x, EBL_DIM_ALL, 0, p));
  ebl_status st = ebl_tensor_item(&r, value);
  ebl_tensor_release(&r);
  return st;
}

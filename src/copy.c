/* Copies between tensors (broadcast, dtype casts, across devices),
   fills, dtype and device conversion, and the deterministic creation
   functions (full, ones, arange, linspace, eye). */
#include <math.h>
#include <string.h>

#include "core.h"

/* Fails when t has a dim of stride 0 and size > 1: writing it would hit
   one element several times. */
static ebl_status need_writable(const char *fn, const ebl_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] == 0 && t->shape[d] > 1)
      return ebl_fail(EBL_EARG, "%s: the output is a broadcast view "
                      "(dim %d has stride 0)", fn, d);
  return EBL_OK;
}

/* A host copy of src, contiguous, of dtype (for device transfers). */
static ebl_status host_copy(ebl_tensor *res, const ebl_tensor *src,
                            ebl_dtype dtype) {
  const ebl_backend *be;
  ebl_tensor dense, host;
  EBL_TRY(ebl_backend_of("copy", src, &be));
  EBL_TRY(ebl_tensor_contiguous(&dense, src));
  ebl_status st = ebl_tensor_empty(&host, src->dtype, src->ndim,
                                   src->shape, EBL_CPU);
  if (st == EBL_OK)
    st = be->to_host(ebl_tensor_data(&host), ebl_tensor_data(&dense),
                     (size_t)ebl_tensor_numel(src) *
                     ebl_dtype_size(src->dtype));
  ebl_tensor_release(&dense);
  if (st == EBL_OK) st = ebl_to_dtype(res, &host, dtype);
  ebl_tensor_release(&host);
  return st;
}

/* dst = src (src already has dst's shape) when their devices differ:
   through a contiguous host copy in dst's dtype. */
static ebl_status copy_across(const ebl_tensor *dst, const ebl_tensor *src) {
  ebl_tensor host, stage;
  const ebl_backend *be;
  EBL_TRY(ebl_backend_of("copy", dst, &be));
  if (dst->storage->device == EBL_CPU) {
    EBL_TRY(host_copy(&host, src, src->dtype));
    ebl_status st = ebl_cpu_backend.copy(dst, &host);
    ebl_tensor_release(&host);
    return st;
  }
  EBL_TRY(host_copy(&host, src, dst->dtype));
  size_t nbytes = (size_t)ebl_tensor_numel(dst) * ebl_dtype_size(dst->dtype);
  ebl_status st;
  if (ebl_tensor_is_contiguous(dst)) {
    st = be->from_host(ebl_tensor_data(dst), ebl_tensor_data(&host), nbytes);
  } else {
    st = ebl_tensor_empty_like(&stage, dst);
    if (st == EBL_OK)
      st = be->from_host(ebl_tensor_data(&stage), ebl_tensor_data(&host),
                         nbytes);
    if (st == EBL_OK) st = be->copy(dst, &stage);
    ebl_tensor_release(&stage);
  }
  ebl_tensor_release(&host);
  return st;
}

ebl_status ebl_copy(const ebl_tensor *dst, const ebl_tensor *src) {
  ebl_tensor wide, safe;
  char a[96], b[96];
  const ebl_backend *be;
  EBL_TRY(ebl_need_tensor("copy", dst, "destination"));
  EBL_TRY(ebl_need_tensor("copy", src, "source"));
  EBL_TRY(need_writable("copy", dst));
  if (ebl_tensor_expand(&wide, src, dst->ndim, dst->shape) != EBL_OK)
    return ebl_fail(EBL_EARG, "copy: cannot broadcast %s to %s",
                    ebl_shape_string(src, a, sizeof a),
                    ebl_shape_string(dst, b, sizeof b));
  ebl_status st;
  if (dst->storage->device != src->storage->device) {
    st = copy_across(dst, &wide);
  } else if (ebl_views_equal(dst, &wide)) {
    st = EBL_OK;
  } else {
    st = ebl_input_for(dst, &wide, &safe);
    if (st == EBL_OK && (st = ebl_backend_of("copy", dst, &be)) == EBL_OK)
      st = be->copy(dst, &safe);
    ebl_tensor_release(&safe);
  }
  ebl_tensor_release(&wide);
  return st;
}

ebl_status ebl_fill(const ebl_tensor *out, double value) {
  const ebl_backend *be;
  EBL_TRY(ebl_need_tensor("fill", out, "tensor"));
  EBL_TRY(ebl_backend_of("fill", out, &be));
  return be->fill(out, value);
}

ebl_status ebl_to_dtype(ebl_tensor *res, const ebl_tensor *t,
                        ebl_dtype dtype) {
  ebl_tensor r;
  EBL_TRY(ebl_need_tensor("to_dtype", t, "tensor"));
  if ((unsigned)dtype >= EBL_NDTYPES)
    return ebl_fail(EBL_EARG, "to_dtype: unknown dtype %d", (int)dtype);
  if (t->dtype == dtype) {
    ebl_tensor_view(res, t);
    return EBL_OK;
  }
  EBL_TRY(ebl_tensor_empty(&r, dtype, t->ndim, t->shape,
                           t->storage->device));
  ebl_status st = ebl_copy(&r, t);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  if (res == t) ebl_tensor_release(res);
  *res = r;
  return EBL_OK;
}

ebl_status ebl_to_device(ebl_tensor *res, const ebl_tensor *t,
                         ebl_device device) {
  ebl_tensor r;
  EBL_TRY(ebl_need_tensor("to_device", t, "tensor"));
  if (t->storage->device == device) {
    ebl_tensor_view(res, t);
    return EBL_OK;
  }
  EBL_TRY(ebl_tensor_empty(&r, t->dtype, t->ndim, t->shape, device));
  ebl_status st = ebl_copy(&r, t);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  if (res == t) ebl_tensor_release(res);
  *res = r;
  return EBL_OK;
}

/* ---- creation */

ebl_status ebl_tensor_full(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, double value,
                           ebl_device device) {
  ebl_tensor r;
  EBL_TRY(ebl_tensor_empty(&r, dtype, ndim, shape, device));
  ebl_status st = ebl_fill(&r, value);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

ebl_status ebl_tensor_ones(ebl_tensor *res, ebl_dtype dtype, int ndim,
                           const int64_t *shape, ebl_device device) {
  return ebl_tensor_full(res, dtype, ndim, shape, 1.0, device);
}

/* A 1-D tensor with out[i] = start + i * step. */
static ebl_status affine_new(ebl_tensor *res, ebl_dtype dtype, int64_t n,
                             double start, double step, ebl_device device) {
  ebl_tensor r;
  const ebl_backend *be;
  EBL_TRY(ebl_tensor_empty(&r, dtype, 1, &n, device));
  ebl_status st = ebl_backend_of("arange", &r, &be);
  if (st == EBL_OK) st = be->affine(&r, start, step);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

ebl_status ebl_tensor_arange(ebl_tensor *res, ebl_dtype dtype,
                             double start, double stop, double step,
                             ebl_device device) {
  if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
    return ebl_fail(EBL_EARG, "arange: bad range %g to %g step %g", start,
                    stop, step);
  double count = ceil((stop - start) / step);
  if (count > 1e12)
    return ebl_fail(EBL_EARG, "arange: %g elements are too many", count);
  return affine_new(res, dtype, count > 0 ? (int64_t)count : 0, start,
                    step, device);
}

ebl_status ebl_tensor_linspace(ebl_tensor *res, ebl_dtype dtype,
                               double start, double stop, int64_t n,
                               ebl_device device) {
  ebl_tensor r;
  if (n < 1 || !isfinite(start) || !isfinite(stop))
    return ebl_fail(EBL_EARG, "linspace: bad arguments %g, %g, %lld",
                    start, stop, (long long)n);
  double step = n > 1 ? (stop - start) / (double)(n - 1) : 0.0;
  EBL_TRY(affine_new(&r, dtype, n, start, step, device));
  int64_t last = n - 1;
  ebl_status st = n > 1 ? ebl_tensor_set(&r, &last, stop) : EBL_OK;
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

ebl_status ebl_tensor_eye(ebl_tensor *res, ebl_dtype dtype, int64_t rows,
                          int64_t cols, ebl_device device) {
  ebl_tensor r, diag;
  int64_t shape[2] = {rows, cols};
  EBL_TRY(ebl_tensor_zeros(&r, dtype, 2, shape, device));
  diag = r;
  diag.ndim = 1;
  diag.shape[0] = rows < cols ? rows : cols;
  diag.stride[0] = cols + 1;
  ebl_status st = ebl_fill(&diag, 1.0);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

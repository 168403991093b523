/* Tensor values: allocation, references, metadata, element access and
   the shared helpers of src/core.h. Views live in src/view.c. */
#include <stdio.h>
#include <string.h>

#include "core.h"

/* ---- helpers of core.h */

ebl_status ebl_wrap_dim(const char *fn, int dim, int ndim, int extra,
                        int *res) {
  int range = ndim + extra;
  int d = dim < 0 ? dim + range : dim;
  if (d < 0 || d >= range || range == 0)
    return ebl_fail(EBL_EARG, "%s: dim %d out of range for a %d-d tensor",
                    fn, dim, ndim);
  *res = d;
  return EBL_OK;
}

void ebl_contiguous_strides(int ndim, const int64_t *shape,
                            int64_t *stride) {
  int64_t step = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    stride[d] = step;
    step *= shape[d] > 1 ? shape[d] : 1;
  }
}

int64_t ebl_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 0) return 0;
    if (shape[d] > ((int64_t)1 << 62) / n) return -1;
    n *= shape[d];
  }
  return n;
}

const char *ebl_format_shape(int ndim, const int64_t *shape, char *buf,
                             size_t len) {
  size_t used = 0;
  if (len == 0) return buf;
  buf[0] = '\0';
  if (ndim == 0) {
    snprintf(buf, len, "scalar");
    return buf;
  }
  for (int d = 0; d < ndim && used < len; d++)
    used += snprintf(buf + used, len - used, d ? "x%lld" : "%lld",
                     (long long)shape[d]);
  return buf;
}

int ebl_views_equal(const ebl_tensor *a, const ebl_tensor *b) {
  if (a->storage != b->storage || a->offset != b->offset ||
      a->dtype != b->dtype || a->ndim != b->ndim)
    return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d] || a->stride[d] != b->stride[d])
      return 0;
  return 1;
}

/* Byte range [lo, hi) that t's elements occupy in its storage. */
static void byte_range(const ebl_tensor *t, int64_t *lo, int64_t *hi) {
  int64_t first = t->offset, last = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] == 0) {
      *lo = *hi = 0;
      return;
    }
    int64_t span = (t->shape[d] - 1) * t->stride[d];
    if (span < 0) first += span; else last += span;
  }
  int64_t size = (int64_t)ebl_dtype_size(t->dtype);
  *lo = first * size;
  *hi = (last + 1) * size;
}

int ebl_views_overlap(const ebl_tensor *a, const ebl_tensor *b) {
  if (a->storage != b->storage) return 0;
  int64_t alo, ahi, blo, bhi;
  byte_range(a, &alo, &ahi);
  byte_range(b, &blo, &bhi);
  return alo < bhi && blo < ahi;
}

ebl_status ebl_input_for(const ebl_tensor *out, const ebl_tensor *in,
                         ebl_tensor *res) {
  if (ebl_views_overlap(out, in) && !ebl_views_equal(out, in))
    return ebl_tensor_clone(res, in);
  ebl_tensor_view(res, in);
  return EBL_OK;
}

void ebl_tensor_wrap(ebl_tensor *t, ebl_storage *s, void *data,
                     ebl_dtype dtype, int ndim, const int64_t *shape) {
  int64_t n = ebl_shape_numel(ndim, shape);
  s->data = data;
  s->nbytes = (size_t)(n > 0 ? n : 0) * ebl_dtype_size(dtype);
  s->refcount = 1;
  s->device = EBL_CPU;
  memset(t, 0, sizeof *t);
  t->storage = s;
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy(t->shape, shape, sizeof(int64_t) * ndim);
  ebl_contiguous_strides(ndim, shape, t->stride);
}

ebl_status ebl_need_float(const char *fn, const ebl_tensor *t) {
  if (ebl_dtype_is_float(t->dtype)) return EBL_OK;
  return ebl_fail(EBL_EARG, "%s: not defined for %s tensors", fn,
                  ebl_dtype_name(t->dtype));
}

ebl_status ebl_need_tensor(const char *fn, const ebl_tensor *t,
                           const char *what) {
  if (!t || !t->storage)
    return ebl_fail(EBL_EARG, "%s: %s is not a tensor", fn, what);
  const ebl_backend *be;
  return ebl_backend_of(fn, t, &be);
}

ebl_status ebl_need_same_device(const char *fn, const ebl_tensor *a,
                                const ebl_tensor *b) {
  if (a->storage->device == b->storage->device) return EBL_OK;
  return ebl_fail(EBL_EARG, "%s: tensors on %s and %s", fn,
                  ebl_device_name(a->storage->device),
                  ebl_device_name(b->storage->device));
}

/* ---- allocation and references */

/* Checks what ebl_tensor_empty is given; returns the element count. */
static ebl_status check_new(const char *fn, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device,
                            int64_t *numel) {
  if ((unsigned)dtype >= EBL_NDTYPES)
    return ebl_fail(EBL_EARG, "%s: unknown dtype %d", fn, (int)dtype);
  if ((unsigned)device >= EBL_NDEVICES)
    return ebl_fail(EBL_EARG, "%s: unknown device %d", fn, (int)device);
  if (ndim < 0 || ndim > EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "%s: %d dims (at most %d)", fn, ndim,
                    EBL_MAX_DIMS);
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0)
      return ebl_fail(EBL_EARG, "%s: size %lld of dim %d is negative", fn,
                      (long long)shape[d], d);
  *numel = ebl_shape_numel(ndim, shape);
  if (*numel < 0 || *numel > (int64_t)1 << 40)
    return ebl_fail(EBL_EARG, "%s: too many elements", fn);
  return EBL_OK;
}

ebl_status ebl_tensor_empty(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device) {
  int64_t numel = 0;
  ebl_storage *s;
  EBL_TRY(check_new("empty", dtype, ndim, shape, device, &numel));
  EBL_TRY(ebl_storage_new(&s, (size_t)numel * ebl_dtype_size(dtype),
                          device));
  memset(res, 0, sizeof *res);
  res->storage = s;
  res->dtype = dtype;
  res->ndim = ndim;
  memcpy(res->shape, shape, sizeof(int64_t) * ndim);
  ebl_contiguous_strides(ndim, shape, res->stride);
  return EBL_OK;
}

ebl_status ebl_tensor_zeros(ebl_tensor *res, ebl_dtype dtype, int ndim,
                            const int64_t *shape, ebl_device device) {
  return ebl_tensor_full(res, dtype, ndim, shape, 0.0, device);
}

ebl_status ebl_tensor_empty_like(ebl_tensor *res, const ebl_tensor *t) {
  EBL_TRY(ebl_need_tensor("empty_like", t, "argument"));
  return ebl_tensor_empty(res, t->dtype, t->ndim, t->shape,
                          t->storage->device);
}

ebl_status ebl_tensor_zeros_like(ebl_tensor *res, const ebl_tensor *t) {
  EBL_TRY(ebl_need_tensor("zeros_like", t, "argument"));
  return ebl_tensor_zeros(res, t->dtype, t->ndim, t->shape,
                          t->storage->device);
}

void ebl_tensor_view(ebl_tensor *res, const ebl_tensor *src) {
  if (res == src) return;
  if (src->storage) ebl_storage_retain(src->storage);
  *res = *src;
}

void ebl_tensor_release(ebl_tensor *t) {
  if (!t) return;
  ebl_storage_release(t->storage);
  memset(t, 0, sizeof *t);
}

int64_t ebl_tensor_numel(const ebl_tensor *t) {
  return ebl_shape_numel(t->ndim, t->shape);
}

int ebl_tensor_is_contiguous(const ebl_tensor *t) {
  int64_t step = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] == 0) return 1;
    if (t->shape[d] != 1 && t->stride[d] != step) return 0;
    step *= t->shape[d];
  }
  return 1;
}

ebl_device ebl_tensor_device(const ebl_tensor *t) {
  return t->storage ? t->storage->device : EBL_CPU;
}

void *ebl_tensor_data(const ebl_tensor *t) {
  if (!t->storage) return NULL;
  return (char *)t->storage->data +
         t->offset * (int64_t)ebl_dtype_size(t->dtype);
}

int ebl_tensor_same_shape(const ebl_tensor *a, const ebl_tensor *b) {
  if (a->ndim != b->ndim) return 0;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d]) return 0;
  return 1;
}

const char *ebl_shape_string(const ebl_tensor *t, char *buf, size_t len) {
  return ebl_format_shape(t->ndim, t->shape, buf, len);
}

/* ---- buffers */

ebl_status ebl_tensor_from_buffer(ebl_tensor *res, ebl_dtype dtype,
                                  int ndim, const int64_t *shape,
                                  const void *data, ebl_dtype data_dtype,
                                  ebl_device device) {
  ebl_tensor t, src;
  ebl_storage host;
  if ((unsigned)data_dtype >= EBL_NDTYPES)
    return ebl_fail(EBL_EARG, "from_buffer: unknown data dtype %d",
                    (int)data_dtype);
  if (!data && ndim >= 0 && ebl_shape_numel(ndim, shape) != 0)
    return ebl_fail(EBL_EARG, "from_buffer: no data");
  EBL_TRY(ebl_tensor_empty(&t, dtype, ndim, shape, device));
  ebl_tensor_wrap(&src, &host, (void *)data, data_dtype, ndim, shape);
  ebl_status st = ebl_copy(&t, &src);
  if (st != EBL_OK) {
    ebl_tensor_release(&t);
    return st;
  }
  *res = t;
  return EBL_OK;
}

ebl_status ebl_tensor_to_buffer(const ebl_tensor *t, void *buf,
                                ebl_dtype buf_dtype) {
  ebl_tensor dst;
  ebl_storage host;
  EBL_TRY(ebl_need_tensor("to_buffer", t, "tensor"));
  if ((unsigned)buf_dtype >= EBL_NDTYPES)
    return ebl_fail(EBL_EARG, "to_buffer: unknown buffer dtype %d",
                    (int)buf_dtype);
  ebl_tensor_wrap(&dst, &host, buf, buf_dtype, t->ndim, t->shape);
  return ebl_copy(&dst, t);
}

/* ---- element access */

/* The element offset of index in t, after range checks. */
static ebl_status element_offset(const char *fn, const ebl_tensor *t,
                                 const int64_t *index, int64_t *off) {
  EBL_TRY(ebl_need_tensor(fn, t, "tensor"));
  int64_t o = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    if (index[d] < 0 || index[d] >= t->shape[d])
      return ebl_fail(EBL_EARG,
                      "%s: index %lld out of range for dim %d of size %lld",
                      fn, (long long)index[d], d, (long long)t->shape[d]);
    o += index[d] * t->stride[d];
  }
  *off = o;
  return EBL_OK;
}

/* One element through the backend, as a 0-dim tensor on the host. */
ebl_status ebl_tensor_get(const ebl_tensor *t, const int64_t *index,
                          double *value) {
  int64_t off = 0;
  ebl_tensor one, host;
  ebl_storage hs;
  EBL_TRY(element_offset("get", t, index, &off));
  one = *t;
  one.ndim = 0;
  one.offset = off;
  ebl_tensor_wrap(&host, &hs, value, EBL_F64, 0, NULL);
  return ebl_copy(&host, &one);
}

ebl_status ebl_tensor_set(const ebl_tensor *t, const int64_t *index,
                          double value) {
  int64_t off = 0;
  ebl_tensor one, host;
  ebl_storage hs;
  EBL_TRY(element_offset("set", t, index, &off));
  one = *t;
  one.ndim = 0;
  one.offset = off;
  ebl_tensor_wrap(&host, &hs, &value, EBL_F64, 0, NULL);
  return ebl_copy(&one, &host);
}

ebl_status ebl_tensor_item(const ebl_tensor *t, double *value) {
  int64_t zeros[EBL_MAX_DIMS] = {0};
  EBL_TRY(ebl_need_tensor("item", t, "tensor"));
  if (ebl_tensor_numel(t) != 1) {
    char buf[96];
    return ebl_fail(EBL_EARG, "item: tensor of shape %s has %lld elements,"
                    " not 1", ebl_shape_string(t, buf, sizeof buf),
                    (long long)ebl_tensor_numel(t));
  }
  return ebl_tensor_get(t, zeros, value);
}

/* Views: reshape, transpose, permute, narrow, select, (un)squeeze,
   expand, flatten, contiguous. A view shares its input's storage and
   differs only in shape, strides and offset. */
#include <string.h>

#include "core.h"

/* Stores view v (same storage as t) in *res, taking a reference unless
   res is t itself, whose reference passes on to the view. */
static ebl_status give_view(ebl_tensor *res, const ebl_tensor *t,
                            const ebl_tensor *v) {
  if (res != t) ebl_storage_retain(t->storage);
  *res = *v;
  return EBL_OK;
}

/* Stores a freshly allocated r in *res, dropping t when res is t. */
static ebl_status give_new(ebl_tensor *res, const ebl_tensor *t,
                           ebl_tensor *r) {
  if (res == t) ebl_tensor_release(res);
  *res = *r;
  return EBL_OK;
}

/* Resolves a -1 in shape against numel; writes the final shape. */
static ebl_status infer_shape(const ebl_tensor *t, int ndim,
                              const int64_t *shape, int64_t *out) {
  int infer = -1;
  int64_t known = 1, numel = ebl_tensor_numel(t);
  char a[96], b[96];
  if (ndim < 0 || ndim > EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "reshape: %d dims (at most %d)", ndim,
                    EBL_MAX_DIMS);
  for (int d = 0; d < ndim; d++) {
    out[d] = shape[d];
    if (shape[d] == -1 && infer < 0) infer = d;
    else if (shape[d] < 0)
      return ebl_fail(EBL_EARG, "reshape: size %lld of dim %d is invalid",
                      (long long)shape[d], d);
    else known *= shape[d];
  }
  if (infer >= 0 && known > 0 && numel % known == 0)
    out[infer] = numel / known;
  if (ebl_shape_numel(ndim, out) != numel || (infer >= 0 && known == 0))
    return ebl_fail(EBL_EARG, "reshape: cannot reshape %s (%lld elements)"
                    " to %s", ebl_shape_string(t, a, sizeof a),
                    (long long)numel, ebl_format_shape(ndim, shape, b,
                                                       sizeof b));
  return EBL_OK;
}

/* Strides that show t's elements in shape without copying, when such
   exist. Walks t's dims from the last in runs that are dense among
   themselves and lays the new dims over each run. Returns 1 on success. */
static int view_strides(const ebl_tensor *t, int ndim, const int64_t *shape,
                        int64_t *stride) {
  if (ebl_tensor_numel(t) == 0 || t->ndim == 0) {
    ebl_contiguous_strides(ndim, shape, stride);
    return 1;
  }
  int nd = ndim - 1;
  int64_t run_base = t->stride[t->ndim - 1];
  int64_t run_numel = 1, view_numel = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    run_numel *= t->shape[d];
    int run_ends = d == 0 || (t->shape[d - 1] != 1 &&
                              t->stride[d - 1] != run_numel * run_base);
    if (!run_ends) continue;
    while (nd >= 0 && (view_numel < run_numel || shape[nd] == 1)) {
      stride[nd] = view_numel * run_base;
      view_numel *= shape[nd];
      nd--;
    }
    if (view_numel != run_numel) return 0;
    if (d > 0) {
      run_base = t->stride[d - 1];
      run_numel = view_numel = 1;
    }
  }
  return nd == -1;
}

ebl_status ebl_tensor_reshape(ebl_tensor *res, const ebl_tensor *t,
                              int ndim, const int64_t *shape) {
  int64_t new_shape[EBL_MAX_DIMS], stride[EBL_MAX_DIMS];
  EBL_TRY(ebl_need_tensor("reshape", t, "tensor"));
  EBL_TRY(infer_shape(t, ndim, shape, new_shape));
  if (view_strides(t, ndim, new_shape, stride)) {
    ebl_tensor v = *t;
    v.ndim = ndim;
    memcpy(v.shape, new_shape, sizeof(int64_t) * ndim);
    memcpy(v.stride, stride, sizeof(int64_t) * ndim);
    return give_view(res, t, &v);
  }
  ebl_tensor copy;
  EBL_TRY(ebl_tensor_clone(&copy, t));
  copy.ndim = ndim;
  memcpy(copy.shape, new_shape, sizeof(int64_t) * ndim);
  ebl_contiguous_strides(ndim, new_shape, copy.stride);
  return give_new(res, t, &copy);
}

ebl_status ebl_tensor_transpose(ebl_tensor *res, const ebl_tensor *t,
                                int d0, int d1) {
  int a, b;
  EBL_TRY(ebl_need_tensor("transpose", t, "tensor"));
  EBL_TRY(ebl_wrap_dim("transpose", d0, t->ndim, 0, &a));
  EBL_TRY(ebl_wrap_dim("transpose", d1, t->ndim, 0, &b));
  ebl_tensor v = *t;
  v.shape[a] = t->shape[b];
  v.stride[a] = t->stride[b];
  v.shape[b] = t->shape[a];
  v.stride[b] = t->stride[a];
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_permute(ebl_tensor *res, const ebl_tensor *t,
                              const int *perm) {
  int seen[EBL_MAX_DIMS] = {0};
  EBL_TRY(ebl_need_tensor("permute", t, "tensor"));
  ebl_tensor v = *t;
  for (int i = 0; i < t->ndim; i++) {
    int d;
    EBL_TRY(ebl_wrap_dim("permute", perm[i], t->ndim, 0, &d));
    if (seen[d]++)
      return ebl_fail(EBL_EARG, "permute: dim %d appears twice", perm[i]);
    v.shape[i] = t->shape[d];
    v.stride[i] = t->stride[d];
  }
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_narrow(ebl_tensor *res, const ebl_tensor *t, int dim,
                             int64_t start, int64_t length) {
  int d;
  EBL_TRY(ebl_need_tensor("narrow", t, "tensor"));
  EBL_TRY(ebl_wrap_dim("narrow", dim, t->ndim, 0, &d));
  if (start < 0 || length < 0 || start + length > t->shape[d])
    return ebl_fail(EBL_EARG, "narrow: range %lld..%lld out of bounds for "
                    "dim %d of size %lld", (long long)start,
                    (long long)(start + length - 1), dim,
                    (long long)t->shape[d]);
  ebl_tensor v = *t;
  v.offset += start * t->stride[d];
  v.shape[d] = length;
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_select(ebl_tensor *res, const ebl_tensor *t, int dim,
                             int64_t index) {
  int d;
  EBL_TRY(ebl_need_tensor("select", t, "tensor"));
  EBL_TRY(ebl_wrap_dim("select", dim, t->ndim, 0, &d));
  if (index < 0 || index >= t->shape[d])
    return ebl_fail(EBL_EARG, "select: index %lld out of range for dim %d "
                    "of size %lld", (long long)index, dim,
                    (long long)t->shape[d]);
  ebl_tensor v = *t;
  v.offset += index * t->stride[d];
  for (int i = d; i < t->ndim - 1; i++) {
    v.shape[i] = t->shape[i + 1];
    v.stride[i] = t->stride[i + 1];
  }
  v.ndim--;
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_unsqueeze(ebl_tensor *res, const ebl_tensor *t,
                                int dim) {
  int d;
  EBL_TRY(ebl_need_tensor("unsqueeze", t, "tensor"));
  if (t->ndim >= EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "unsqueeze: tensor has %d dims already",
                    t->ndim);
  EBL_TRY(ebl_wrap_dim("unsqueeze", dim, t->ndim, 1, &d));
  ebl_tensor v = *t;
  for (int i = t->ndim; i > d; i--) {
    v.shape[i] = t->shape[i - 1];
    v.stride[i] = t->stride[i - 1];
  }
  v.shape[d] = 1;
  v.stride[d] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
  v.ndim++;
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_squeeze(ebl_tensor *res, const ebl_tensor *t,
                              int dim) {
  int only = -1;
  EBL_TRY(ebl_need_tensor("squeeze", t, "tensor"));
  if (dim != EBL_DIM_ALL)
    EBL_TRY(ebl_wrap_dim("squeeze", dim, t->ndim, 0, &only));
  ebl_tensor v = *t;
  v.ndim = 0;
  for (int i = 0; i < t->ndim; i++) {
    int drop = t->shape[i] == 1 && (only < 0 || only == i);
    if (drop) continue;
    v.shape[v.ndim] = t->shape[i];
    v.stride[v.ndim++] = t->stride[i];
  }
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_expand(ebl_tensor *res, const ebl_tensor *t,
                             int ndim, const int64_t *shape) {
  char a[96], b[96];
  EBL_TRY(ebl_need_tensor("expand", t, "tensor"));
  if (ndim < t->ndim || ndim > EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "expand: cannot expand %s to %d dims",
                    ebl_shape_string(t, a, sizeof a), ndim);
  ebl_tensor v = *t;
  v.ndim = ndim;
  for (int i = ndim - 1; i >= 0; i--) {
    int src = i - (ndim - t->ndim);
    int64_t size = shape[i];
    int64_t have = src >= 0 ? t->shape[src] : 1;
    if (size == -1 && src >= 0) size = have;
    if (size < 0 || (have != size && have != 1))
      return ebl_fail(EBL_EARG, "expand: cannot expand %s to %s",
                      ebl_shape_string(t, a, sizeof a),
                      ebl_format_shape(ndim, shape, b, sizeof b));
    v.shape[i] = size;
    v.stride[i] = (src >= 0 && have == size) ? t->stride[src] : 0;
  }
  return give_view(res, t, &v);
}

ebl_status ebl_tensor_flatten(ebl_tensor *res, const ebl_tensor *t,
                              int start_dim, int end_dim) {
  int s, e, nd = 0;
  int64_t shape[EBL_MAX_DIMS];
  EBL_TRY(ebl_need_tensor("flatten", t, "tensor"));
  if (t->ndim == 0) {
    int64_t one = 1;
    return ebl_tensor_reshape(res, t, 1, &one);
  }
  EBL_TRY(ebl_wrap_dim("flatten", start_dim, t->ndim, 0, &s));
  EBL_TRY(ebl_wrap_dim("flatten", end_dim, t->ndim, 0, &e));
  if (s > e)
    return ebl_fail(EBL_EARG, "flatten: start dim %d after end dim %d",
                    start_dim, end_dim);
  for (int d = 0; d < s; d++) shape[nd++] = t->shape[d];
  shape[nd] = 1;
  for (int d = s; d <= e; d++) shape[nd] *= t->shape[d];
  nd++;
  for (int d = e + 1; d < t->ndim; d++) shape[nd++] = t->shape[d];
  return ebl_tensor_reshape(res, t, nd, shape);
}

ebl_status ebl_tensor_contiguous(ebl_tensor *res, const ebl_tensor *t) {
  EBL_TRY(ebl_need_tensor("contiguous", t, "tensor"));
  if (ebl_tensor_is_contiguous(t)) return give_view(res, t, t);
  return ebl_tensor_clone(res, t);
}

ebl_status ebl_tensor_clone(ebl_tensor *res, const ebl_tensor *t) {
  ebl_tensor r;
  EBL_TRY(ebl_tensor_empty_like(&r, t));
  ebl_status st = ebl_copy(&r, t);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  return give_new(res, t, &r);
}

ebl_status ebl_broadcast_shape(const char *fn, const ebl_tensor *a,
                               const ebl_tensor *b, int *ndim,
                               int64_t *shape) {
  char sa[96], sb[96];
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
    int64_t x = ia >= 0 ? a->shape[ia] : 1;
    int64_t y = ib >= 0 ? b->shape[ib] : 1;
    if (x != y && x != 1 && y != 1)
      return ebl_fail(EBL_EARG, "%s: shapes %s and %s do not broadcast",
                      fn, ebl_shape_string(a, sa, sizeof sa),
                      ebl_shape_string(b, sb, sizeof sb));
    shape[i] = x == 1 ? y : x;
  }
  *ndim = nd;
  return EBL_OK;
}

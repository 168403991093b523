/* Helpers shared by the front-end files of the tensor core: dim checks,
   stride arithmetic, aliasing tests. Not part of the public API. */
#ifndef EBL_CORE_H
#define EBL_CORE_H

#include "backend.h"

/* Returns from the calling function when expr fails. */
#define EBL_TRY(expr)                                                 \
  do {                                                                \
    ebl_status st_ = (expr);                                          \
    if (st_ != EBL_OK) return st_;                                    \
  } while (0)

/* Turns a possibly negative dim into 0..ndim-1 (0..ndim when extra is
   1, for unsqueeze); fails naming fn. */
ebl_status ebl_wrap_dim(const char *fn, int dim, int ndim, int extra,
                        int *res);
/* Row-major strides for shape. */
void ebl_contiguous_strides(int ndim, const int64_t *shape,
                            int64_t *stride);
/* Product of sizes, or -1 on overflow past 2^62. */
int64_t ebl_shape_numel(int ndim, const int64_t *shape);
/* Writes "3x4" for a shape. */
const char *ebl_format_shape(int ndim, const int64_t *shape, char *buf,
                             size_t len);
/* Nonzero when a and b are the same view of the same storage. */
int ebl_views_equal(const ebl_tensor *a, const ebl_tensor *b);
/* Nonzero when the memory a and b can touch intersects. */
int ebl_views_overlap(const ebl_tensor *a, const ebl_tensor *b);
/* res = in, or a contiguous copy of in when writing out could change
   in's elements before they are read (partial overlap). */
ebl_status ebl_input_for(const ebl_tensor *out, const ebl_tensor *in,
                         ebl_tensor *res);
/* A tensor over caller memory on the host: storage *s lives on the
   caller's stack and is never freed. */
void ebl_tensor_wrap(ebl_tensor *t, ebl_storage *s, void *data,
                     ebl_dtype dtype, int ndim, const int64_t *shape);
/* Fails with "<fn>: not defined for <dtype>" unless t is float. */
ebl_status ebl_need_float(const char *fn, const ebl_tensor *t);
/* Fails unless t has storage and a backend. */
ebl_status ebl_need_tensor(const char *fn, const ebl_tensor *t,
                           const char *what);
/* Fails unless a and b are on one device. */
ebl_status ebl_need_same_device(const char *fn, const ebl_tensor *a,
                                const ebl_tensor *b);

#endif

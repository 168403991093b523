/* Tensor-level layer operations over the kernels of src/cpu/layers.h,
   reached through the dispatch table: checks of shapes and dtypes in the
   user's terms, dense inputs, outputs written in place when they are
   dense (else computed aside and copied), scratch memory per call. */
#include <limits.h>
#include <string.h>

#include "core.h"
#include "nn.h"

ebl_conv_opts ebl_conv_opts_default(void) {
  ebl_conv_opts o = {{1, 1}, {0, 0}, {1, 1}, 1, {0, 0}};
  return o;
}

/* ---- helpers */

/* Checks that t is a float tensor of ndim dims (and dtype, when dtype
   >= 0) on device; what names it in messages. */
static ebl_status need(const char *fn, const ebl_tensor *t,
                       const char *what, int ndim, int dtype,
                       ebl_device device) {
  EBL_TRY(ebl_need_tensor(fn, t, what));
  if (t->ndim != ndim)
    return ebl_fail(EBL_EARG, "%s: %s must have %d dims, not %d", fn, what,
                    ndim, t->ndim);
  if (!ebl_dtype_is_float(t->dtype))
    return ebl_fail(EBL_EARG, "%s: %s is %s, not float32 or float64", fn,
                    what, ebl_dtype_name(t->dtype));
  if (dtype >= 0 && t->dtype != (ebl_dtype)dtype)
    return ebl_fail(EBL_EARG, "%s: %s is %s, expected %s", fn, what,
                    ebl_dtype_name(t->dtype), ebl_dtype_name(dtype));
  if (t->storage->device != device)
    return ebl_fail(EBL_EARG, "%s: %s is on %s, expected %s", fn, what,
                    ebl_device_name(t->storage->device),
                    ebl_device_name(device));
  return EBL_OK;
}

/* Checks that t has exactly the 4 sizes in shape. */
static ebl_status need_shape(const char *fn, const ebl_tensor *t,
                             const char *what, int ndim,
                             const int64_t *shape) {
  char a[96], b[96];
  if (t->ndim == ndim &&
      memcmp(t->shape, shape, sizeof(int64_t) * ndim) == 0)
    return EBL_OK;
  return ebl_fail(EBL_EARG, "%s: %s has shape %s, expected %s", fn, what,
                  ebl_shape_string(t, a, sizeof a),
                  ebl_format_shape(ndim, shape, b, sizeof b));
}

/* Sizes must fit the int of the kernels' geometry. */
static ebl_status need_int_sizes(const char *fn, const ebl_tensor *t) {
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] > INT_MAX)
      return ebl_fail(EBL_EARG, "%s: size %lld is too large", fn,
                      (long long)t->shape[d]);
  return EBL_OK;
}

/* A geometry message from the kernels, renamed to fn when the kernel
   used a family name ("pool2d: ..." from max_pool2d). */
static ebl_status geom_fail(const char *fn, const char *family,
                            const char *msg) {
  size_t len = strlen(family);
  if (strncmp(msg, family, len) == 0 && msg[len] == ':')
    return ebl_fail(EBL_EARG, "%s%s", fn, msg + len);
  return ebl_fail(EBL_EARG, "%s", msg);
}

/* The output's dense stand-in: out itself, or a temporary when out is
   not dense or shares memory with an input. */
static ebl_status out_begin(const ebl_tensor *out, const ebl_tensor *in1,
                            const ebl_tensor *in2, ebl_tensor *dense) {
  int aside = !ebl_tensor_is_contiguous(out) ||
              (in1 && ebl_views_overlap(out, in1)) ||
              (in2 && ebl_views_overlap(out, in2));
  if (!aside) {
    ebl_tensor_view(dense, out);
    return EBL_OK;
  }
  return ebl_tensor_empty_like(dense, out);
}

/* Copies the stand-in into out when it was a temporary; releases it. */
static ebl_status out_end(const ebl_tensor *out, ebl_tensor *dense,
                          ebl_status st) {
  if (st == EBL_OK && dense->storage != out->storage)
    st = ebl_copy(out, dense);
  ebl_tensor_release(dense);
  return st;
}

/* Scratch memory of nbytes on a device (NULL for 0 bytes). */
static ebl_status scratch(const char *fn, const ebl_backend *be,
                          size_t nbytes, void **work) {
  /* Grow-only, per thread and backend: the same geometries come back
     every inference iteration, which then allocates nothing. */
  static _Thread_local struct { const ebl_backend *be; void *data;
                                size_t size; } cache;
  *work = NULL;
  if (nbytes == 0) return EBL_OK;
  if (cache.be == be && cache.size >= nbytes) {
    *work = cache.data;
    return EBL_OK;
  }
  if (cache.data != NULL) cache.be->free(cache.data);
  cache.data = be->alloc(nbytes);
  cache.size = cache.data ? nbytes : 0;
  cache.be = be;
  if (!cache.data)
    return ebl_fail(EBL_ENOMEM, "%s: cannot allocate %zu bytes of scratch",
                    fn, nbytes);
  *work = cache.data;
  return EBL_OK;
}

/* st, or the failure the device reports for the kernels it just ran
   (devices that queue work record errors of the void kernels). */
static ebl_status kernel_done(const ebl_backend *be, const char *fn,
                              ebl_status st) {
  if (st == EBL_OK && be->kernel_status) return be->kernel_status(fn);
  return st;
}

/* Dense versions of up to three inputs (NULL stays NULL). */
typedef struct dense_inputs { ebl_tensor t[3]; } dense_inputs;

static ebl_status make_dense(dense_inputs *d, const ebl_tensor *a,
                             const ebl_tensor *b, const ebl_tensor *c) {
  const ebl_tensor *in[3] = {a, b, c};
  memset(d, 0, sizeof *d);
  for (int i = 0; i < 3; i++) {
    if (!in[i]) continue;
    ebl_status st = ebl_tensor_contiguous(&d->t[i], in[i]);
    if (st != EBL_OK) {
      for (int j = 0; j < i; j++) ebl_tensor_release(&d->t[j]);
      return st;
    }
  }
  return EBL_OK;
}

static void free_dense(dense_inputs *d) {
  for (int i = 0; i < 3; i++) ebl_tensor_release(&d->t[i]);
}

/* Data pointer of dense input i, NULL when it was not given. */
static const void *data_of(const dense_inputs *d, int i) {
  return d->t[i].storage ? ebl_tensor_data(&d->t[i]) : NULL;
}

/* ---- geometry */

/* Fills a conv2d geometry from x's shape, w's shape and the options. */
static ebl_status conv_geom(const char *fn, const ebl_tensor *x,
                            const ebl_tensor *w, const ebl_conv_opts *o,
                            ebl_conv_geom *g) {
  char msg[256];
  EBL_TRY(need_int_sizes(fn, x));
  EBL_TRY(need_int_sizes(fn, w));
  int64_t expects = w->shape[1] * (o->groups > 0 ? o->groups : 1);
  if (x->shape[1] != expects)
    return ebl_fail(EBL_EARG, "%s: input has %lld channels, weight expects "
                    "%lld", fn, (long long)x->shape[1], (long long)expects);
  *g = (ebl_conv_geom){
    .n = (int)x->shape[0], .c_in = (int)x->shape[1],
    .h_in = (int)x->shape[2], .w_in = (int)x->shape[3],
    .c_out = (int)w->shape[0], .kh = (int)w->shape[2],
    .kw = (int)w->shape[3], .stride_h = o->stride[0],
    .stride_w = o->stride[1], .pad_h = o->padding[0],
    .pad_w = o->padding[1], .dil_h = o->dilation[0],
    .dil_w = o->dilation[1], .groups = o->groups};
  if (ebl_conv_geom_finish(g, msg, sizeof msg) != 0)
    return geom_fail(fn, "conv2d", msg);
  return EBL_OK;
}

/* Fills the geometry of conv_transpose2d(x, w) (see src/cpu/layers.h). */
static ebl_status convt_geom(const char *fn, const ebl_tensor *x,
                             const ebl_tensor *w, const ebl_conv_opts *o,
                             ebl_conv_geom *g) {
  char msg[256];
  EBL_TRY(need_int_sizes(fn, x));
  EBL_TRY(need_int_sizes(fn, w));
  if (x->shape[1] != w->shape[0])
    return ebl_fail(EBL_EARG, "%s: input has %lld channels, weight expects "
                    "%lld", fn, (long long)x->shape[1],
                    (long long)w->shape[0]);
  int64_t c_out = w->shape[1] * (o->groups > 0 ? o->groups : 1);
  if (c_out > INT_MAX) return ebl_fail(EBL_EARG, "%s: too many channels", fn);
  if (ebl_conv_geom_transpose(g, (int)x->shape[0], (int)x->shape[1],
                              (int)x->shape[2], (int)x->shape[3],
                              (int)c_out, (int)w->shape[2],
                              (int)w->shape[3], o->stride[0], o->stride[1],
                              o->padding[0], o->padding[1], o->dilation[0],
                              o->dilation[1], o->groups,
                              o->output_padding[0], o->output_padding[1],
                              msg, sizeof msg) != 0)
    return geom_fail(fn, "conv_transpose2d", msg);
  return EBL_OK;
}

/* Checks x and w of a conv (4-D, one float dtype, one device). */
static ebl_status conv_operands(const char *fn, const ebl_tensor *x,
                                const ebl_tensor *w) {
  EBL_TRY(ebl_need_tensor(fn, x, "input"));
  EBL_TRY(need(fn, x, "input", 4, -1, x->storage->device));
  return need(fn, w, "weight", 4, x->dtype, x->storage->device);
}

/* Checks a bias of c entries (NULL is fine). */
static ebl_status conv_bias(const char *fn, const ebl_tensor *x,
                            const ebl_tensor *b, int64_t c) {
  if (!b) return EBL_OK;
  EBL_TRY(need(fn, b, "bias", 1, x->dtype, x->storage->device));
  if (b->shape[0] != c)
    return ebl_fail(EBL_EARG, "%s: bias has %lld entries, weight has %lld "
                    "output channels", fn, (long long)b->shape[0],
                    (long long)c);
  return EBL_OK;
}

/* ---- conv2d and conv_transpose2d */

/* Which of the eight conv kernels a call runs. */
typedef enum conv_kind {
  CONV_FORWARD, CONV_INPUT_VJP, CONV_WEIGHT_VJP
} conv_kind;

/* Calls the backend's kernel for (transposed, kind) on raw memory. */
static void conv_kernel(const ebl_backend *be, int transposed,
                        conv_kind kind, const ebl_conv_geom *g,
                        ebl_dtype dt, const void *p, const void *q,
                        const void *bias, void *o, void *work) {
  if (kind == CONV_FORWARD && !transposed)
    be->conv2d_forward(g, dt, p, q, bias, o, work);
  else if (kind == CONV_FORWARD)
    be->conv_transpose2d_forward(g, dt, p, q, bias, o, work);
  else if (kind == CONV_INPUT_VJP && !transposed)
    be->conv2d_input_vjp(g, dt, p, q, o, work);
  else if (kind == CONV_INPUT_VJP)
    be->conv_transpose2d_input_vjp(g, dt, p, q, o, work);
  else if (!transposed)
    be->conv2d_weight_vjp(g, dt, p, q, o, work);
  else
    be->conv_transpose2d_weight_vjp(g, dt, p, q, o, work);
}

/* Runs one conv kernel on dense inputs a, b (and bias c) into out. */
static ebl_status conv_run(const char *fn, int transposed, conv_kind kind,
                           const ebl_conv_geom *g, const ebl_tensor *out,
                           const ebl_tensor *a, const ebl_tensor *b,
                           const ebl_tensor *c) {
  const ebl_backend *be;
  dense_inputs d;
  ebl_tensor y;
  void *work;
  EBL_TRY(ebl_backend_of(fn, out, &be));
  EBL_TRY(make_dense(&d, a, b, c));
  ebl_status st = out_begin(out, a, b, &y);
  if (st != EBL_OK) {
    free_dense(&d);
    return st;
  }
  st = scratch(fn, be, be->conv2d_workspace(g, out->dtype), &work);
  if (st == EBL_OK) {
    conv_kernel(be, transposed, kind, g, out->dtype, data_of(&d, 0),
                data_of(&d, 1), data_of(&d, 2), ebl_tensor_data(&y), work);
    st = kernel_done(be, fn, st);
  }
  free_dense(&d);
  return out_end(out, &y, st);
}

/* The geometry of a conv or its transpose from input x and weight w. */
static ebl_status any_geom(const char *fn, int transposed,
                           const ebl_tensor *x, const ebl_tensor *w,
                           const ebl_conv_opts *o, ebl_conv_geom *g,
                           int64_t *y_shape) {
  EBL_TRY(conv_operands(fn, x, w));
  if (!transposed) {
    EBL_TRY(conv_geom(fn, x, w, o, g));
    int64_t s[4] = {g->n, g->c_out, g->h_out, g->w_out};
    memcpy(y_shape, s, sizeof s);
  } else {
    EBL_TRY(convt_geom(fn, x, w, o, g));
    int64_t s[4] = {g->n, g->c_in, g->h_in, g->w_in};
    memcpy(y_shape, s, sizeof s);
  }
  return EBL_OK;
}

/* Forward of either conv into y. */
static ebl_status any_forward(const char *fn, int transposed,
                              const ebl_tensor *y, const ebl_tensor *x,
                              const ebl_tensor *w, const ebl_tensor *b,
                              const ebl_conv_opts *o) {
  ebl_conv_geom g;
  int64_t shape[4];
  EBL_TRY(any_geom(fn, transposed, x, w, o, &g, shape));
  EBL_TRY(conv_bias(fn, x, b, shape[1]));
  EBL_TRY(need(fn, y, "output", 4, x->dtype, x->storage->device));
  EBL_TRY(need_shape(fn, y, "output", 4, shape));
  return conv_run(fn, transposed, CONV_FORWARD, &g, y, x, w, b);
}

/* Forward of either conv, allocated. */
static ebl_status any_forward_new(const char *fn, int transposed,
                                  ebl_tensor *y, const ebl_tensor *x,
                                  const ebl_tensor *w, const ebl_tensor *b,
                                  const ebl_conv_opts *o) {
  ebl_conv_geom g;
  int64_t shape[4];
  ebl_tensor r;
  EBL_TRY(any_geom(fn, transposed, x, w, o, &g, shape));
  EBL_TRY(ebl_tensor_empty(&r, x->dtype, 4, shape, x->storage->device));
  ebl_status st = any_forward(fn, transposed, &r, x, w, b, o);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *y = r;
  return EBL_OK;
}

/* dx for either conv: dx has the input's shape, dy the output's. */
static ebl_status any_input_vjp(const char *fn, int transposed,
                                const ebl_tensor *dx, const ebl_tensor *dy,
                                const ebl_tensor *w,
                                const ebl_conv_opts *o) {
  ebl_conv_geom g;
  int64_t shape[4];
  EBL_TRY(ebl_need_tensor(fn, dx, "input gradient"));
  EBL_TRY(any_geom(fn, transposed, dx, w, o, &g, shape));
  EBL_TRY(need(fn, dy, "output gradient", 4, dx->dtype,
               dx->storage->device));
  EBL_TRY(need_shape(fn, dy, "output gradient", 4, shape));
  return conv_run(fn, transposed, CONV_INPUT_VJP, &g, dx, dy, w, NULL);
}

/* dw for either conv: dw has the weight's shape. */
static ebl_status any_weight_vjp(const char *fn, int transposed,
                                 const ebl_tensor *dw, const ebl_tensor *x,
                                 const ebl_tensor *dy,
                                 const ebl_conv_opts *o) {
  ebl_conv_geom g;
  int64_t shape[4];
  EBL_TRY(any_geom(fn, transposed, x, dw, o, &g, shape));
  EBL_TRY(need(fn, dy, "output gradient", 4, x->dtype,
               x->storage->device));
  EBL_TRY(need_shape(fn, dy, "output gradient", 4, shape));
  return conv_run(fn, transposed, CONV_WEIGHT_VJP, &g, dw, x, dy, NULL);
}

/* db = dy summed over batch and plane (either conv). */
static ebl_status any_bias_vjp(const char *fn, int transposed,
                               const ebl_tensor *db, const ebl_tensor *dy) {
  const ebl_backend *be;
  ebl_tensor d, out;
  EBL_TRY(ebl_need_tensor(fn, dy, "output gradient"));
  EBL_TRY(need(fn, dy, "output gradient", 4, -1, dy->storage->device));
  EBL_TRY(need(fn, db, "bias gradient", 1, dy->dtype, dy->storage->device));
  EBL_TRY(need_shape(fn, db, "bias gradient", 1, dy->shape + 1));
  EBL_TRY(need_int_sizes(fn, dy));
  EBL_TRY(ebl_backend_of(fn, db, &be));
  ebl_conv_geom g = {0};
  g.n = (int)dy->shape[0];
  g.c_out = g.c_in = (int)dy->shape[1];
  g.h_out = g.h_in = (int)dy->shape[2];
  g.w_out = g.w_in = (int)dy->shape[3];
  EBL_TRY(ebl_tensor_contiguous(&d, dy));
  ebl_status st = out_begin(db, &d, NULL, &out);
  if (st == EBL_OK) {
    if (transposed)
      be->conv_transpose2d_bias_vjp(&g, dy->dtype, ebl_tensor_data(&d),
                                    ebl_tensor_data(&out));
    else
      be->conv2d_bias_vjp(&g, dy->dtype, ebl_tensor_data(&d),
                          ebl_tensor_data(&out));
    st = out_end(db, &out, kernel_done(be, fn, st));
  }
  ebl_tensor_release(&d);
  return st;
}

ebl_status ebl_conv2d_shape(const ebl_tensor *x, const ebl_tensor *w,
                            const ebl_conv_opts *o, int64_t *y_shape) {
  ebl_conv_geom g;
  return any_geom("conv2d", 0, x, w, o, &g, y_shape);
}

ebl_status ebl_conv2d(const ebl_tensor *y, const ebl_tensor *x,
                      const ebl_tensor *w, const ebl_tensor *b,
                      const ebl_conv_opts *o) {
  return any_forward("conv2d", 0, y, x, w, b, o);
}

ebl_status ebl_conv2d_new(ebl_tensor *y, const ebl_tensor *x,
                          const ebl_tensor *w, const ebl_tensor *b,
                          const ebl_conv_opts *o) {
  return any_forward_new("conv2d", 0, y, x, w, b, o);
}

ebl_status ebl_conv2d_input_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                                const ebl_tensor *w,
                                const ebl_conv_opts *o) {
  return any_input_vjp("conv2d", 0, dx, dy, w, o);
}

ebl_status ebl_conv2d_weight_vjp(const ebl_tensor *dw, const ebl_tensor *x,
                                 const ebl_tensor *dy,
                                 const ebl_conv_opts *o) {
  return any_weight_vjp("conv2d", 0, dw, x, dy, o);
}

ebl_status ebl_conv2d_bias_vjp(const ebl_tensor *db, const ebl_tensor *dy) {
  return any_bias_vjp("conv2d", 0, db, dy);
}

ebl_status ebl_conv_transpose2d_shape(const ebl_tensor *x,
                                      const ebl_tensor *w,
                                      const ebl_conv_opts *o,
                                      int64_t *y_shape) {
  ebl_conv_geom g;
  return any_geom("conv_transpose2d", 1, x, w, o, &g, y_shape);
}

ebl_status ebl_conv_transpose2d(const ebl_tensor *y, const ebl_tensor *x,
                                const ebl_tensor *w, const ebl_tensor *b,
                                const ebl_conv_opts *o) {
  return any_forward("conv_transpose2d", 1, y, x, w, b, o);
}

ebl_status ebl_conv_transpose2d_new(ebl_tensor *y, const ebl_tensor *x,
                                    const ebl_tensor *w,
                                    const ebl_tensor *b,
                                    const ebl_conv_opts *o) {
  return any_forward_new("conv_transpose2d", 1, y, x, w, b, o);
}

ebl_status ebl_conv_transpose2d_input_vjp(const ebl_tensor *dx,
                                          const ebl_tensor *dy,
                                          const ebl_tensor *w,
                                          const ebl_conv_opts *o) {
  return any_input_vjp("conv_transpose2d", 1, dx, dy, w, o);
}

ebl_status ebl_conv_transpose2d_weight_vjp(const ebl_tensor *dw,
                                           const ebl_tensor *x,
                                           const ebl_tensor *dy,
                                           const ebl_conv_opts *o) {
  return any_weight_vjp("conv_transpose2d", 1, dw, x, dy, o);
}

ebl_status ebl_conv_transpose2d_bias_vjp(const ebl_tensor *db,
                                         const ebl_tensor *dy) {
  return any_bias_vjp("conv_transpose2d", 1, db, dy);
}

/* ---- pooling */

/* Geometry of a pooling of x; stride 0 means the kernel size. */
static ebl_status pool_geom(const char *fn, const ebl_tensor *x,
                            const ebl_pool_opts *o, ebl_pool_geom *g) {
  char msg[256];
  EBL_TRY(ebl_need_tensor(fn, x, "input"));
  EBL_TRY(need(fn, x, "input", 4, -1, x->storage->device));
  EBL_TRY(need_int_sizes(fn, x));
  *g = (ebl_pool_geom){
    .n = (int)x->shape[0], .c = (int)x->shape[1],
    .h_in = (int)x->shape[2], .w_in = (int)x->shape[3],
    .kh = o->kernel[0], .kw = o->kernel[1],
    .stride_h = o->stride[0] ? o->stride[0] : o->kernel[0],
    .stride_w = o->stride[1] ? o->stride[1] : o->kernel[1],
    .pad_h = o->padding[0], .pad_w = o->padding[1]};
  if (ebl_pool_geom_finish(g, msg, sizeof msg) != 0)
    return geom_fail(fn, "pool2d", msg);
  return EBL_OK;
}

ebl_status ebl_pool2d_shape(const char *fn, const ebl_tensor *x,
                            const ebl_pool_opts *o, int64_t *y_shape) {
  ebl_pool_geom g;
  EBL_TRY(pool_geom(fn, x, o, &g));
  int64_t s[4] = {g.n, g.c, g.h_out, g.w_out};
  memcpy(y_shape, s, sizeof s);
  return EBL_OK;
}

/* Checks an I32 index tensor of shape on x's device. */
static ebl_status need_indices(const char *fn, const ebl_tensor *idx,
                               const ebl_tensor *x, const int64_t *shape) {
  EBL_TRY(ebl_need_tensor(fn, idx, "indices"));
  if (idx->dtype != EBL_I32)
    return ebl_fail(EBL_EARG, "%s: indices are %s, expected int32", fn,
                    ebl_dtype_name(idx->dtype));
  EBL_TRY(ebl_need_same_device(fn, idx, x));
  return need_shape(fn, idx, "indices", 4, shape);
}

ebl_status ebl_max_pool2d(const ebl_tensor *y, const ebl_tensor *indices,
                          const ebl_tensor *x, const ebl_pool_opts *o) {
  const char *fn = "max_pool2d";
  ebl_pool_geom g;
  int64_t shape[4];
  const ebl_backend *be;
  ebl_tensor dx, out, idx;
  EBL_TRY(ebl_pool2d_shape(fn, x, o, shape));
  pool_geom(fn, x, o, &g);
  EBL_TRY(need(fn, y, "output", 4, x->dtype, x->storage->device));
  EBL_TRY(need_shape(fn, y, "output", 4, shape));
  EBL_TRY(need_indices(fn, indices, x, shape));
  EBL_TRY(ebl_backend_of(fn, x, &be));
  EBL_TRY(ebl_tensor_contiguous(&dx, x));
  ebl_status st = out_begin(y, &dx, NULL, &out);
  if (st == EBL_OK) {
    st = out_begin(indices, &dx, NULL, &idx);
    if (st == EBL_OK) {
      be->max_pool2d_forward(&g, x->dtype, ebl_tensor_data(&dx),
                             ebl_tensor_data(&out), ebl_tensor_data(&idx));
      st = out_end(indices, &idx, kernel_done(be, fn, st));
    }
    st = out_end(y, &out, st);
  }
  ebl_tensor_release(&dx);
  return st;
}

ebl_status ebl_max_pool2d_new(ebl_tensor *y, ebl_tensor *indices,
                              const ebl_tensor *x, const ebl_pool_opts *o) {
  int64_t shape[4];
  ebl_tensor ry, ri;
  EBL_TRY(ebl_pool2d_shape("max_pool2d", x, o, shape));
  EBL_TRY(ebl_tensor_empty(&ry, x->dtype, 4, shape, x->storage->device));
  ebl_status st = ebl_tensor_empty(&ri, EBL_I32, 4, shape,
                                   x->storage->device);
  if (st == EBL_OK) st = ebl_max_pool2d(&ry, &ri, x, o);
  if (st != EBL_OK) {
    ebl_tensor_release(&ry);
    ebl_tensor_release(&ri);
    return st;
  }
  *y = ry;
  *indices = ri;
  return EBL_OK;
}

ebl_status ebl_max_pool2d_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                              const ebl_tensor *indices,
                              const ebl_pool_opts *o) {
  const char *fn = "max_pool2d";
  ebl_pool_geom g;
  int64_t shape[4];
  const ebl_backend *be;
  dense_inputs d;
  ebl_tensor out;
  EBL_TRY(ebl_pool2d_shape(fn, dx, o, shape));
  pool_geom(fn, dx, o, &g);
  EBL_TRY(need(fn, dy, "output gradient", 4, dx->dtype,
               dx->storage->device));
  EBL_TRY(need_shape(fn, dy, "output gradient", 4, shape));
  EBL_TRY(need_indices(fn, indices, dx, shape));
  EBL_TRY(ebl_backend_of(fn, dx, &be));
  EBL_TRY(make_dense(&d, dy, indices, NULL));
  ebl_status st = out_begin(dx, dy, indices, &out);
  if (st == EBL_OK) {
    be->max_pool2d_vjp(&g, dx->dtype, data_of(&d, 0), data_of(&d, 1),
                       ebl_tensor_data(&out));
    st = out_end(dx, &out, kernel_done(be, fn, st));
  }
  free_dense(&d);
  return st;
}

ebl_status ebl_avg_pool2d(const ebl_tensor *y, const ebl_tensor *x,
                          const ebl_pool_opts *o) {
  const char *fn = "avg_pool2d";
  ebl_pool_geom g;
  int64_t shape[4];
  const ebl_backend *be;
  ebl_tensor dx, out;
  EBL_TRY(ebl_pool2d_shape(fn, x, o, shape));
  pool_geom(fn, x, o, &g);
  EBL_TRY(need(fn, y, "output", 4, x->dtype, x->storage->device));
  EBL_TRY(need_shape(fn, y, "output", 4, shape));
  EBL_TRY(ebl_backend_of(fn, x, &be));
  EBL_TRY(ebl_tensor_contiguous(&dx, x));
  ebl_status st = out_begin(y, &dx, NULL, &out);
  if (st == EBL_OK) {
    be->avg_pool2d_forward(&g, x->dtype, ebl_tensor_data(&dx),
                           ebl_tensor_data(&out));
    st = out_end(y, &out, kernel_done(be, fn, st));
  }
  ebl_tensor_release(&dx);
  return st;
}

ebl_status ebl_avg_pool2d_new(ebl_tensor *y, const ebl_tensor *x,
                              const ebl_pool_opts *o) {
  int64_t shape[4];
  ebl_tensor r;
  EBL_TRY(ebl_pool2d_shape("avg_pool2d", x, o, shape));
  EBL_TRY(ebl_tensor_empty(&r, x->dtype, 4, shape, x->storage->device));
  ebl_status st = ebl_avg_pool2d(&r, x, o);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *y = r;
  return EBL_OK;
}

ebl_status ebl_avg_pool2d_vjp(const ebl_tensor *dx, const ebl_tensor *dy,
                              const ebl_pool_opts *o) {
  const char *fn = "avg_pool2d";
  ebl_pool_geom g;
  int64_t shape[4];
  const ebl_backend *be;
  ebl_tensor d, out;
  EBL_TRY(ebl_pool2d_shape(fn, dx, o, shape));
  pool_geom(fn, dx, o, &g);
  EBL_TRY(need(fn, dy, "output gradient", 4, dx->dtype,
               dx->storage->device));
  EBL_TRY(need_shape(fn, dy, "output gradient", 4, shape));
  EBL_TRY(ebl_backend_of(fn, dx, &be));
  EBL_TRY(ebl_tensor_contiguous(&d, dy));
  ebl_status st = out_begin(dx, &d, NULL, &out);
  if (st == EBL_OK) {
    be->avg_pool2d_vjp(&g, dx->dtype, ebl_tensor_data(&d),
                       ebl_tensor_data(&out));
    st = out_end(dx, &out, kernel_done(be, fn, st));
  }
  ebl_tensor_release(&d);
  return st;
}

/* ---- losses */

/* Rows n and row length k of x (n = first size); grad checked. */
static ebl_status loss_rows(const char *fn, const ebl_tensor *x,
                            const ebl_tensor *grad, int *n, int *k) {
  EBL_TRY(ebl_need_tensor(fn, x, "input"));
  EBL_TRY(ebl_need_float(fn, x));
  if (x->ndim < 1 || x->shape[0] < 1)
    return ebl_fail(EBL_EARG, "%s: input needs a batch dim of size >= 1",
                    fn);
  int64_t rows = x->shape[0], len = ebl_tensor_numel(x) / rows;
  if (rows > INT_MAX || len > INT_MAX || len < 1)
    return ebl_fail(EBL_EARG, "%s: rows of %lld values are not supported",
                    fn, (long long)len);
  if (grad) {
    EBL_TRY(need(fn, grad, "gradient", x->ndim, x->dtype,
                 x->storage->device));
    EBL_TRY(need_shape(fn, grad, "gradient", x->ndim, x->shape));
  }
  *n = (int)rows;
  *k = (int)len;
  return EBL_OK;
}

ebl_status ebl_mse_loss(double *loss, const ebl_tensor *x,
                        const ebl_tensor *target, const ebl_tensor *grad) {
  const char *fn = "mse_loss";
  int n, k;
  const ebl_backend *be;
  ebl_tensor t, dense_t, out = {0};
  dense_inputs d;
  EBL_TRY(loss_rows(fn, x, grad, &n, &k));
  EBL_TRY(ebl_need_tensor(fn, target, "target"));
  EBL_TRY(need_shape(fn, target, "target", x->ndim, x->shape));
  EBL_TRY(ebl_need_same_device(fn, x, target));
  EBL_TRY(ebl_backend_of(fn, x, &be));
  EBL_TRY(ebl_to_dtype(&t, target, x->dtype));
  ebl_status st = ebl_tensor_contiguous(&dense_t, &t);
  ebl_tensor_release(&t);
  if (st != EBL_OK) return st;
  st = make_dense(&d, x, NULL, NULL);
  if (st == EBL_OK && grad) st = out_begin(grad, x, target, &out);
  if (st == EBL_OK) {
    *loss = be->mse_loss(x->dtype, n, k, data_of(&d, 0),
                         ebl_tensor_data(&dense_t),
                         grad ? ebl_tensor_data(&out) : NULL);
    st = kernel_done(be, fn, st);
    if (grad) st = out_end(grad, &out, st);
  }
  free_dense(&d);
  ebl_tensor_release(&dense_t);
  return st;
}

/* Integer labels as dense I32, checked to lie in 0..k-1. */
static ebl_status labels_of(const char *fn, const ebl_tensor *target,
                            int n, int k, ebl_tensor *res) {
  int64_t shape[1] = {n};
  double lo, hi;
  EBL_TRY(need_shape(fn, target, "labels", 1, shape));
  EBL_TRY(ebl_reduce_all(EBL_MIN, target, 0, &lo));
  EBL_TRY(ebl_reduce_all(EBL_MAX, target, 0, &hi));
  if (lo < 0 || hi >= k)
    return ebl_fail(EBL_EARG, "%s: label %g out of range 0..%d", fn,
                    lo < 0 ? lo : hi, k - 1);
  ebl_tensor t;
  EBL_TRY(ebl_to_dtype(&t, target, EBL_I32));
  ebl_status st = ebl_tensor_contiguous(res, &t);
  ebl_tensor_release(&t);
  return st;
}

ebl_status ebl_cross_entropy(double *loss, const ebl_tensor *x,
                             const ebl_tensor *target,
                             const ebl_tensor *grad) {
  const char *fn = "cross_entropy";
  int n, k;
  const ebl_backend *be;
  ebl_tensor tgt, dense_x, out = {0};
  EBL_TRY(loss_rows(fn, x, grad, &n, &k));
  EBL_TRY(ebl_need_tensor(fn, target, "target"));
  EBL_TRY(ebl_need_same_device(fn, x, target));
  EBL_TRY(ebl_backend_of(fn, x, &be));
  int labels = !ebl_dtype_is_float(target->dtype);
  if (labels) {
    EBL_TRY(labels_of(fn, target, n, k, &tgt));
  } else {
    ebl_tensor t;
    EBL_TRY(need_shape(fn, target, "target", x->ndim, x->shape));
    EBL_TRY(ebl_to_dtype(&t, target, x->dtype));
    ebl_status st = ebl_tensor_contiguous(&tgt, &t);
    ebl_tensor_release(&t);
    if (st != EBL_OK) return st;
  }
  ebl_status st = ebl_tensor_contiguous(&dense_x, x);
  if (st == EBL_OK && grad) st = out_begin(grad, x, target, &out);
  if (st == EBL_OK) {
    const void *t = ebl_tensor_data(&tgt);
    *loss = be->cross_entropy(x->dtype, n, k, ebl_tensor_data(&dense_x),
                              labels ? t : NULL, labels ? NULL : t,
                              grad ? ebl_tensor_data(&out) : NULL);
    st = kernel_done(be, fn, st);
    if (grad) st = out_end(grad, &out, st);
  }
  ebl_tensor_release(&dense_x);
  ebl_tensor_release(&tgt);
  return st;
}

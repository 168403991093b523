/* conv2d in float through oneDNN: per geometry and thread count, the
   forward, backward-data and backward-weights primitives with reorders
   between NCHW and oneDNN's blocked layouts, kept in a small cache. The
   blocked copies and the scratchpad live in the caller's workspace, so
   a call allocates nothing once its geometry is cached. */
#include "cpu/conv_onednn.h"

#if !defined(EBL_NO_ONEDNN) && __has_include(<dnnl.h>)

#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

#define CACHE_SIZE 32
#define ALIGN 64

/* Gives up on the current step (returning 0) when a oneDNN call fails. */
#define TRY(call)                                                     \
  do {                                                                \
    if ((call) != dnnl_success)                                       \
      return 0;                                                       \
  } while (0)

/* One argument of a primitive: the caller's array in its NCHW layout
   (user) and, when oneDNN wants another layout, a blocked copy (inner,
   at `offset` in the workspace) with the reorder between the two. */
typedef struct dnn_arg {
  int id, is_output;
  dnnl_memory_t user, inner;
  dnnl_primitive_t reorder;
  size_t offset;
} dnn_arg;

/* One operation: the convolution primitive, its arguments, its
   scratchpad (in the workspace) and the workspace bytes it needs. */
typedef struct dnn_op {
  dnnl_primitive_t conv;
  dnn_arg args[4];
  int nargs;
  dnnl_memory_t scratch;
  size_t scratch_offset, bytes;
} dnn_op;

/* A cached geometry: usable is 0 when oneDNN refused it; sized is set
   once ebl_onednn_conv_workspace reported its needs. */
typedef struct dnn_entry {
  ebl_conv_geom g;
  int threads, usable, sized;
  unsigned long last_use;
  dnn_op ops[EBL_DNN_NOPS];
  float *zero_bias;
} dnn_entry;

/* The memory descriptors of one geometry: the caller's layouts and the
   "any" layouts that let oneDNN choose. */
typedef struct dnn_mds {
  dnnl_memory_desc_t src, wei, bias, dst, src_any, wei_any, dst_any;
  dnnl_dims_t strides, dilates, pad_l, pad_r;
} dnn_mds;

/* What an argument is: its DNNL_ARG_*, the query for the layout the
   primitive wants, and the caller's layout. */
typedef struct arg_spec {
  int id, is_output;
  dnnl_query_t query;
  int index;
  const dnnl_memory_desc_t *user;
} arg_spec;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static dnn_entry cache[CACHE_SIZE];
static int cache_count = 0;
static unsigned long use_clock = 0;
static int enabled = 1;
static dnnl_engine_t engine = NULL;
static dnnl_stream_t stream = NULL;

/* ---- descriptors ---- */

/* Right padding that makes oneDNN's output size equal g's (which may be
   below the natural size for a transposed conv's geometry). */
static int64_t pad_right(int in, int out, int k, int stride, int pad,
                         int dil) {
  int64_t span = (int64_t)dil * (k - 1) + 1;
  return (int64_t)(out - 1) * stride + span - in - pad;
}

/* A plain float memory descriptor; 1 on success. */
static int init_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t d,
                   dnnl_format_tag_t tag) {
  return dnnl_memory_desc_init_by_tag(md, ndims, d, dnnl_f32, tag) ==
         dnnl_success;
}

/* Weights: (c_out, c_in/groups, kh, kw) is oihw, or goihw with groups. */
static int init_weights_md(dnnl_memory_desc_t *md, const ebl_conv_geom *g,
                           int any) {
  int grp = g->groups;
  dnnl_dims_t plain = {g->c_out, g->c_in, g->kh, g->kw};
  dnnl_dims_t grouped = {grp, g->c_out / grp, g->c_in / grp, g->kh, g->kw};
  if (grp == 1)
    return init_md(md, 4, plain, any ? dnnl_format_tag_any : dnnl_oihw);
  return init_md(md, 5, grouped, any ? dnnl_format_tag_any : dnnl_goihw);
}

/* The descriptors and conv parameters of g in oneDNN's terms. */
static int init_mds(dnn_mds *m, const ebl_conv_geom *g) {
  dnnl_dims_t src = {g->n, g->c_in, g->h_in, g->w_in};
  dnnl_dims_t dst = {g->n, g->c_out, g->h_out, g->w_out};
  dnnl_dims_t bias = {g->c_out};
  m->strides[0] = g->stride_h, m->strides[1] = g->stride_w;
  m->dilates[0] = g->dil_h - 1, m->dilates[1] = g->dil_w - 1;
  m->pad_l[0] = g->pad_h, m->pad_l[1] = g->pad_w;
  m->pad_r[0] = pad_right(g->h_in, g->h_out, g->kh, g->stride_h, g->pad_h,
                          g->dil_h);
  m->pad_r[1] = pad_right(g->w_in, g->w_out, g->kw, g->stride_w, g->pad_w,
                          g->dil_w);
  return init_md(&m->src, 4, src, dnnl_nchw) &&
         init_md(&m->dst, 4, dst, dnnl_nchw) &&
         init_md(&m->bias, 1, bias, dnnl_x) &&
         init_md(&m->src_any, 4, src, dnnl_format_tag_any) &&
         init_md(&m->dst_any, 4, dst, dnnl_format_tag_any) &&
         init_weights_md(&m->wei, g, 0) && init_weights_md(&m->wei_any, g, 1);
}

/* Primitive descriptor of op, with a user-managed scratchpad; the
   backward ones take the forward one as their hint. */
static int make_pd(dnnl_primitive_desc_t *pd, int op, const dnn_mds *m,
                   const_dnnl_primitive_desc_t hint) {
  dnnl_convolution_desc_t cd;
  dnnl_alg_kind_t alg = dnnl_convolution_direct;
  if (op == EBL_DNN_FORWARD)
    TRY(dnnl_dilated_convolution_forward_desc_init(
      &cd, dnnl_forward_training, alg, &m->src_any, &m->wei_any, &m->bias,
      &m->dst_any, m->strides, m->dilates, m->pad_l, m->pad_r));
  else if (op == EBL_DNN_INPUT_VJP)
    TRY(dnnl_dilated_convolution_backward_data_desc_init(
      &cd, alg, &m->src_any, &m->wei_any, &m->dst_any, m->strides,
      m->dilates, m->pad_l, m->pad_r));
  else
    TRY(dnnl_dilated_convolution_backward_weights_desc_init(
      &cd, alg, &m->src_any, &m->wei_any, NULL, &m->dst_any, m->strides,
      m->dilates, m->pad_l, m->pad_r));
  dnnl_primitive_attr_t attr;
  TRY(dnnl_primitive_attr_create(&attr));
  dnnl_status_t st = dnnl_primitive_attr_set_scratchpad_mode(
    attr, dnnl_scratchpad_mode_user);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create(pd, &cd, attr, engine, hint);
  dnnl_primitive_attr_destroy(attr);
  return st == dnnl_success;
}

/* ---- building an operation ---- */

static size_t align_up(size_t bytes) {
  return (bytes + ALIGN - 1) / ALIGN * ALIGN;
}

/* Reorder primitive between two memory descriptors. */
static int make_reorder(dnnl_primitive_t *prim,
                        const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to) {
  dnnl_primitive_desc_t pd;
  TRY(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine,
                                         NULL));
  dnnl_status_t st = dnnl_primitive_create(prim, pd);
  dnnl_primitive_desc_destroy(pd);
  return st == dnnl_success;
}

/* Sets up one argument of op: the caller's memory, and a blocked copy
   placed at op->bytes in the workspace when the layouts differ. */
static int bind_arg(dnn_op *op, dnnl_primitive_desc_t pd,
                    const arg_spec *spec) {
  dnn_arg *a = &op->args[op->nargs++];
  const dnnl_memory_desc_t *want =
    dnnl_primitive_desc_query_md(pd, spec->query, spec->index);
  a->id = spec->id;
  a->is_output = spec->is_output;
  TRY(dnnl_memory_create(&a->user, spec->user, engine, DNNL_MEMORY_NONE));
  if (!want || dnnl_memory_desc_equal(want, spec->user))
    return 1;
  TRY(dnnl_memory_create(&a->inner, want, engine, DNNL_MEMORY_NONE));
  a->offset = op->bytes;
  op->bytes = align_up(op->bytes + dnnl_memory_desc_get_size(want));
  return a->is_output ? make_reorder(&a->reorder, want, spec->user)
                      : make_reorder(&a->reorder, spec->user, want);
}

/* Argument table of each operation. */
static int arg_specs(int op, const dnn_mds *m, arg_spec *s) {
  if (op == EBL_DNN_FORWARD) {
    s[0] = (arg_spec){DNNL_ARG_SRC, 0, dnnl_query_src_md, 0, &m->src};
    s[1] = (arg_spec){DNNL_ARG_WEIGHTS, 0, dnnl_query_weights_md, 0,
                      &m->wei};
    s[2] = (arg_spec){DNNL_ARG_BIAS, 0, dnnl_query_weights_md, 1, &m->bias};
    s[3] = (arg_spec){DNNL_ARG_DST, 1, dnnl_query_dst_md, 0, &m->dst};
    return 4;
  }
  if (op == EBL_DNN_INPUT_VJP) {
    s[0] = (arg_spec){DNNL_ARG_DIFF_DST, 0, dnnl_query_diff_dst_md, 0,
                      &m->dst};
    s[1] = (arg_spec){DNNL_ARG_WEIGHTS, 0, dnnl_query_weights_md, 0,
                      &m->wei};
    s[2] = (arg_spec){DNNL_ARG_DIFF_SRC, 1, dnnl_query_diff_src_md, 0,
                      &m->src};
    return 3;
  }
  s[0] = (arg_spec){DNNL_ARG_SRC, 0, dnnl_query_src_md, 0, &m->src};
  s[1] = (arg_spec){DNNL_ARG_DIFF_DST, 0, dnnl_query_diff_dst_md, 0,
                    &m->dst};
  s[2] = (arg_spec){DNNL_ARG_DIFF_WEIGHTS, 1, dnnl_query_diff_weights_md, 0,
                    &m->wei};
  return 3;
}

/* Builds op from its primitive descriptor: arguments, scratchpad, the
   convolution primitive. */
static int build_op(dnn_op *op, int kind, dnnl_primitive_desc_t pd,
                    const dnn_mds *m) {
  arg_spec specs[4];
  int count = arg_specs(kind, m, specs);
  for (int i = 0; i < count; i++)
    if (!bind_arg(op, pd, &specs[i]))
      return 0;
  const dnnl_memory_desc_t *pad_md =
    dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  size_t pad_bytes = pad_md ? dnnl_memory_desc_get_size(pad_md) : 0;
  if (pad_bytes > 0) {
    TRY(dnnl_memory_create(&op->scratch, pad_md, engine, DNNL_MEMORY_NONE));
    op->scratch_offset = op->bytes;
    op->bytes = align_up(op->bytes + pad_bytes);
  }
  TRY(dnnl_primitive_create(&op->conv, pd));
  return 1;
}

/* Releases what build_op made (any part of it may be missing). */
static void destroy_op(dnn_op *op) {
  for (int i = 0; i < op->nargs; i++) {
    dnn_arg *a = &op->args[i];
    if (a->user)
      dnnl_memory_destroy(a->user);
    if (a->inner)
      dnnl_memory_destroy(a->inner);
    if (a->reorder)
      dnnl_primitive_destroy(a->reorder);
  }
  if (op->scratch)
    dnnl_memory_destroy(op->scratch);
  if (op->conv)
    dnnl_primitive_destroy(op->conv);
  memset(op, 0, sizeof *op);
}

/* Builds the three operations of e->g; 0 when oneDNN refuses any. */
static int build_entry(dnn_entry *e) {
  dnn_mds m;
  dnnl_primitive_desc_t fwd, pd;
  if (!init_mds(&m, &e->g) || !make_pd(&fwd, EBL_DNN_FORWARD, &m, NULL))
    return 0;
  int ok = build_op(&e->ops[EBL_DNN_FORWARD], EBL_DNN_FORWARD, fwd, &m);
  for (int op = EBL_DNN_INPUT_VJP; ok && op < EBL_DNN_NOPS; op++) {
    ok = make_pd(&pd, op, &m, fwd);
    if (ok) {
      ok = build_op(&e->ops[op], op, pd, &m);
      dnnl_primitive_desc_destroy(pd);
    }
  }
  dnnl_primitive_desc_destroy(fwd);
  e->zero_bias = ok ? calloc(e->g.c_out, sizeof(float)) : NULL;
  return ok && e->zero_bias;
}

/* Releases an entry and clears it for reuse. */
static void destroy_entry(dnn_entry *e) {
  for (int op = 0; op < EBL_DNN_NOPS; op++)
    destroy_op(&e->ops[op]);
  free(e->zero_bias);
  memset(e, 0, sizeof *e);
}

/* ---- the cache ---- */

/* Creates the CPU engine and its stream on first use. */
static int ensure_engine(void) {
  if (!engine && dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
    return 0;
  if (!stream && dnnl_stream_create(&stream, engine,
                                    dnnl_stream_default_flags) !=
                   dnnl_success)
    return 0;
  return 1;
}

/* The entry of g at the current thread count, built on first use (the
   least recently used one makes room). Called with cache_lock held. */
static dnn_entry *lookup(const ebl_conv_geom *g) {
  int threads = omp_get_max_threads(), victim = 0;
  for (int i = 0; i < cache_count; i++) {
    dnn_entry *e = &cache[i];
    if (e->threads == threads && memcmp(&e->g, g, sizeof *g) == 0) {
      e->last_use = ++use_clock;
      return e;
    }
    if (e->last_use < cache[victim].last_use)
      victim = i;
  }
  if (cache_count < CACHE_SIZE)
    victim = cache_count++;
  dnn_entry *e = &cache[victim];
  destroy_entry(e);
  e->g = *g;
  e->threads = threads;
  e->last_use = ++use_clock;
  e->usable = ensure_engine() && build_entry(e);
  if (!e->usable) {
    destroy_entry(e);
    e->g = *g;
    e->threads = threads;
    e->last_use = use_clock;
  }
  return e;
}

/* Workspace of an entry: its largest operation, plus room to align. */
static size_t entry_bytes(const dnn_entry *e) {
  size_t most = 0;
  for (int op = 0; op < EBL_DNN_NOPS; op++)
    if (e->ops[op].bytes > most)
      most = e->ops[op].bytes;
  return most + ALIGN;
}

/* Marks the entry as sized: its kernels may use that much workspace. */
size_t ebl_onednn_conv_workspace(const ebl_conv_geom *g) {
  pthread_mutex_lock(&cache_lock);
  size_t bytes = 0;
  if (enabled) {
    dnn_entry *e = lookup(g);
    if (e->usable) {
      e->sized = 1;
      bytes = entry_bytes(e);
    }
  }
  pthread_mutex_unlock(&cache_lock);
  return bytes;
}

/* ---- running ---- */

/* Runs one primitive on the stream; 1 on success. */
static int execute(dnnl_primitive_t prim, int nargs,
                   const dnnl_exec_arg_t *args) {
  return dnnl_primitive_execute(prim, stream, nargs, args) == dnnl_success;
}

/* Points the arguments' memories at the caller's arrays (ptrs) and the
   workspace (base). */
static int set_handles(dnn_op *op, void *const *ptrs, char *base) {
  for (int i = 0; i < op->nargs; i++) {
    dnn_arg *a = &op->args[i];
    TRY(dnnl_memory_set_data_handle(a->user, ptrs[i]));
    if (a->inner)
      TRY(dnnl_memory_set_data_handle(a->inner, base + a->offset));
  }
  if (op->scratch)
    TRY(dnnl_memory_set_data_handle(op->scratch, base + op->scratch_offset));
  return 1;
}

/* Runs the reorders of the inputs (outputs == 0) or of the outputs. */
static int run_reorders(dnn_op *op, int outputs) {
  for (int i = 0; i < op->nargs; i++) {
    dnn_arg *a = &op->args[i];
    if (!a->reorder || a->is_output != outputs)
      continue;
    dnnl_exec_arg_t args[2] = {
      {DNNL_ARG_FROM, outputs ? a->inner : a->user},
      {DNNL_ARG_TO, outputs ? a->user : a->inner}};
    if (!execute(a->reorder, 2, args))
      return 0;
  }
  return 1;
}

/* Inputs to blocked layouts, the convolution, outputs back to NCHW. */
static int run_op(dnn_op *op, void *const *ptrs, char *base) {
  dnnl_exec_arg_t args[5];
  int n = 0;
  if (!set_handles(op, ptrs, base) || !run_reorders(op, 0))
    return 0;
  for (int i = 0; i < op->nargs; i++) {
    dnn_arg *a = &op->args[i];
    args[n++] = (dnnl_exec_arg_t){a->id, a->inner ? a->inner : a->user};
  }
  if (op->scratch)
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, op->scratch};
  return execute(op->conv, n, args) && run_reorders(op, 1) &&
         dnnl_stream_wait(stream) == dnnl_success;
}

/* Runs op through oneDNN if the entry is usable and the workspace is
   known to hold it; the work is in place when this returns 1. */
int ebl_onednn_conv(int op, const ebl_conv_geom *g, const float *a,
                    const float *b, const float *bias, float *out,
                    void *work, size_t fallback_bytes) {
  pthread_mutex_lock(&cache_lock);
  int done = 0;
  dnn_entry *e = enabled ? lookup(g) : NULL;
  if (e && e->usable && (e->sized || entry_bytes(e) <= fallback_bytes)) {
    char *base = (char *)(((uintptr_t)work + ALIGN - 1) / ALIGN * ALIGN);
    void *ptrs[4] = {(void *)a, (void *)b, out, NULL};
    if (op == EBL_DNN_FORWARD) {
      ptrs[2] = (void *)(bias ? bias : e->zero_bias);
      ptrs[3] = out;
    }
    done = run_op(&e->ops[op], ptrs, base);
  }
  pthread_mutex_unlock(&cache_lock);
  return done;
}

int ebl_onednn_takes(const ebl_conv_geom *g) {
  pthread_mutex_lock(&cache_lock);
  int takes = enabled && lookup(g)->usable;
  pthread_mutex_unlock(&cache_lock);
  return takes;
}

/* Sets whether the float convs try oneDNN first. */
int ebl_onednn_enable(int enable) {
  pthread_mutex_lock(&cache_lock);
  int previous = enabled;
  enabled = enable != 0;
  pthread_mutex_unlock(&cache_lock);
  return previous;
}

#else /* no oneDNN: every call falls back to im2col */

size_t ebl_onednn_conv_workspace(const ebl_conv_geom *g) {
  (void)g;
  return 0;
}

int ebl_onednn_conv(int op, const ebl_conv_geom *g, const float *a,
                    const float *b, const float *bias, float *out,
                    void *work, size_t fallback_bytes) {
  (void)op, (void)g, (void)a, (void)b, (void)bias, (void)out, (void)work;
  (void)fallback_bytes;
  return 0;
}

int ebl_onednn_enable(int enable) {
  (void)enable;
  return 0;
}

int ebl_onednn_takes(const ebl_conv_geom *g) {
  (void)g;
  return 0;
}

#endif

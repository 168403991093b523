/* Benchmark of conv2d on the CPU: forward, input VJP and weight VJP of
   ebl's kernels (float through oneDNN or im2col + sgemm, double through
   im2col + dgemm) and of oneDNN called directly, batch 128, 32x32, 3x3,
   64 -> 64 channels, padding 1, 2 threads (EBL_BENCH_THREADS to change). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dnnl.h>

#include "cpu/layers.h"

#define REPS 5

static ebl_conv_geom geom = {.n = 128, .c_in = 64, .h_in = 32, .w_in = 32,
                             .c_out = 64, .kh = 3, .kw = 3, .stride_h = 1,
                             .stride_w = 1, .pad_h = 1, .pad_w = 1,
                             .dil_h = 1, .dil_w = 1, .groups = 1};

/* Operands of the three operations, in float and double. */
static struct {
  float *x, *w, *b, *y, *dy, *dx, *dw;
  double *xd, *wd, *bd, *yd, *dyd, *dxd, *dwd;
  void *work, *workd;
} data;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Best of REPS timed calls after one warm-up call. */
static double best_ms(void (*run)(void *), void *ctx) {
  run(ctx);
  double best = INFINITY;
  for (int i = 0; i < REPS; i++) {
    double t0 = now_ms();
    run(ctx);
    best = fmin(best, now_ms() - t0);
  }
  return best;
}

static void report(const char *op, const char *impl, double ms) {
  const ebl_conv_geom *g = &geom;
  double flops = 2.0 * g->n * g->c_out * g->h_out * g->w_out * g->c_in *
                 g->kh * g->kw;
  printf("%-12s %-30s %8.2f ms %7.1f GFLOP/s\n", op, impl, ms,
         flops / ms / 1e6);
}

static float *random_f32(size_t count) {
  float *v = malloc(sizeof(float) * count);
  for (size_t i = 0; i < count; i++)
    v[i] = (float)rand() / RAND_MAX - 0.5f;
  return v;
}

static double *widen(const float *v, size_t count) {
  double *d = malloc(sizeof(double) * count);
  for (size_t i = 0; i < count; i++)
    d[i] = v[i];
  return d;
}

static void setup(void) {
  const ebl_conv_geom *g = &geom;
  size_t xs = (size_t)g->n * g->c_in * g->h_in * g->w_in;
  size_t ys = (size_t)g->n * g->c_out * g->h_out * g->w_out;
  size_t ws = (size_t)g->c_out * g->c_in / g->groups * g->kh * g->kw;
  data.x = random_f32(xs);
  data.w = random_f32(ws);
  data.b = random_f32(g->c_out);
  data.dy = random_f32(ys);
  data.y = random_f32(ys);
  data.dx = random_f32(xs);
  data.dw = random_f32(ws);
  data.xd = widen(data.x, xs);
  data.wd = widen(data.w, ws);
  data.bd = widen(data.b, g->c_out);
  data.dyd = widen(data.dy, ys);
  data.yd = widen(data.y, ys);
  data.dxd = widen(data.dx, xs);
  data.dwd = widen(data.dw, ws);
  data.work = malloc(ebl_conv2d_workspace_f32(g));
  data.workd = malloc(ebl_conv2d_workspace_f64(g));
}

/* ---- ebl's kernels ---- */

static void ebl_forward(void *ctx) {
  (void)ctx;
  ebl_conv2d_forward_f32(&geom, data.x, data.w, data.b, data.y, data.work);
}

static void ebl_input_vjp(void *ctx) {
  (void)ctx;
  ebl_conv2d_input_vjp_f32(&geom, data.dy, data.w, data.dx, data.work);
}

static void ebl_weight_vjp(void *ctx) {
  (void)ctx;
  ebl_conv2d_weight_vjp_f32(&geom, data.x, data.dy, data.dw, data.work);
}

static void ebl_forward_f64(void *ctx) {
  (void)ctx;
  ebl_conv2d_forward_f64(&geom, data.xd, data.wd, data.bd, data.yd,
                         data.workd);
}

static void ebl_input_vjp_f64(void *ctx) {
  (void)ctx;
  ebl_conv2d_input_vjp_f64(&geom, data.dyd, data.wd, data.dxd, data.workd);
}

static void ebl_weight_vjp_f64(void *ctx) {
  (void)ctx;
  ebl_conv2d_weight_vjp_f64(&geom, data.xd, data.dyd, data.dwd,
                            data.workd);
}

/* ---- oneDNN ---- */

#define DNN(call)                                                     \
  do {                                                                \
    dnnl_status_t st_ = (call);                                       \
    if (st_ != dnnl_success) {                                        \
      fprintf(stderr, "oneDNN: %s failed (%d)\n", #call, (int)st_);   \
      exit(1);                                                        \
    }                                                                 \
  } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

/* One primitive with its arguments. */
typedef struct dnn_step {
  dnnl_primitive_t prim;
  int nargs;
  dnnl_exec_arg_t args[4];
} dnn_step;

/* An operation on user (NCHW) arrays: reorders in, the convolution,
   reorders out; `conv` is the index of the convolution step. */
typedef struct dnn_op {
  dnn_step steps[8];
  int nsteps, conv;
  const char *impl;
} dnn_op;

static void dnn_run_steps(dnn_op *op, int from, int to) {
  for (int i = from; i < to; i++)
    DNN(dnnl_primitive_execute(op->steps[i].prim, stream,
                               op->steps[i].nargs, op->steps[i].args));
  DNN(dnnl_stream_wait(stream));
}

/* Whole operation, reorders from and to NCHW included. */
static void dnn_run_all(void *ctx) {
  dnn_op *op = ctx;
  dnn_run_steps(op, 0, op->nsteps);
}

/* The convolution alone, on oneDNN's preferred layouts. */
static void dnn_run_conv(void *ctx) {
  dnn_op *op = ctx;
  dnn_run_steps(op, op->conv, op->conv + 1);
}

static dnnl_memory_desc_t user_md(int ndims, const dnnl_dims_t dims,
                                  dnnl_format_tag_t tag) {
  dnnl_memory_desc_t md;
  DNN(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
  return md;
}

/* Adds a reorder from memory `from` to memory `to` as the next step. */
static void dnn_add_reorder(dnn_op *op, dnnl_memory_t from,
                            dnnl_memory_t to) {
  const dnnl_memory_desc_t *fmd, *tmd;
  DNN(dnnl_memory_get_memory_desc(from, &fmd));
  DNN(dnnl_memory_get_memory_desc(to, &tmd));
  dnnl_primitive_desc_t pd;
  DNN(dnnl_reorder_primitive_desc_create(&pd, fmd, engine, tmd, engine,
                                         NULL));
  dnn_step *s = &op->steps[op->nsteps++];
  DNN(dnnl_primitive_create(&s->prim, pd));
  DNN(dnnl_primitive_desc_destroy(pd));
  s->nargs = 2;
  s->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, from};
  s->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, to};
}

/* Memory for argument `which` of pd over the user array `ptr` (layout
   `umd`): the array itself when layouts agree, else an internal buffer
   with a reorder before (input) or after (output) the convolution. */
static dnnl_memory_t dnn_bind(dnn_op *op, dnnl_primitive_desc_t pd,
                              dnnl_query_t which, const dnnl_memory_desc_t
                              *umd, void *ptr, int is_output,
                              dnnl_memory_t *pending) {
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, which,
                                                                0);
  dnnl_memory_t user, inner;
  DNN(dnnl_memory_create(&user, umd, engine, ptr));
  if (dnnl_memory_desc_equal(want, umd))
    return user;
  DNN(dnnl_memory_create(&inner, want, engine, DNNL_MEMORY_ALLOCATE));
  if (is_output) {
    pending[0] = inner;
    pending[1] = user;
  } else {
    dnn_add_reorder(op, user, inner);
  }
  return inner;
}

/* Dimensions and layouts of the benchmark's conv in oneDNN's terms. */
typedef struct dnn_shapes {
  dnnl_memory_desc_t src, wei, bias, dst;       /* user layouts */
  dnnl_memory_desc_t src_a, wei_a, dst_a;       /* for the primitive */
  dnnl_dims_t strides, dilates, pad;
} dnn_shapes;

static void dnn_shapes_init(dnn_shapes *s, int any) {
  const ebl_conv_geom *g = &geom;
  dnnl_dims_t src = {g->n, g->c_in, g->h_in, g->w_in};
  dnnl_dims_t wei = {g->c_out, g->c_in, g->kh, g->kw};
  dnnl_dims_t dst = {g->n, g->c_out, g->h_out, g->w_out};
  dnnl_dims_t bias = {g->c_out};
  s->src = user_md(4, src, dnnl_nchw);
  s->wei = user_md(4, wei, dnnl_oihw);
  s->dst = user_md(4, dst, dnnl_nchw);
  s->bias = user_md(1, bias, dnnl_x);
  s->src_a = any ? user_md(4, src, dnnl_format_tag_any) : s->src;
  s->wei_a = any ? user_md(4, wei, dnnl_format_tag_any) : s->wei;
  s->dst_a = any ? user_md(4, dst, dnnl_format_tag_any) : s->dst;
  s->strides[0] = g->stride_h, s->strides[1] = g->stride_w;
  s->dilates[0] = g->dil_h - 1, s->dilates[1] = g->dil_w - 1;
  s->pad[0] = g->pad_h, s->pad[1] = g->pad_w;
}

static dnnl_primitive_desc_t dnn_forward_pd(const dnn_shapes *s) {
  dnnl_convolution_desc_t cd;
  DNN(dnnl_dilated_convolution_forward_desc_init(
    &cd, dnnl_forward_training, dnnl_convolution_direct, &s->src_a,
    &s->wei_a, &s->bias, &s->dst_a, s->strides, s->dilates, s->pad,
    s->pad));
  dnnl_primitive_desc_t pd;
  DNN(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, NULL));
  return pd;
}

/* Adds the convolution step of pd, with its arguments, then the output
   reorder if one is pending. */
static void dnn_add_conv(dnn_op *op, dnnl_primitive_desc_t pd, int nargs,
                         const dnnl_exec_arg_t *args,
                         const dnnl_memory_t *pending) {
  const char *impl = NULL;
  DNN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
  op->impl = impl;
  op->conv = op->nsteps;
  dnn_step *s = &op->steps[op->nsteps++];
  DNN(dnnl_primitive_create(&s->prim, pd));
  s->nargs = nargs;
  memcpy(s->args, args, sizeof(dnnl_exec_arg_t) * nargs);
  if (pending[0])
    dnn_add_reorder(op, pending[0], pending[1]);
}

static void dnn_build_forward(dnn_op *op, const dnn_shapes *s) {
  dnnl_primitive_desc_t pd = dnn_forward_pd(s);
  dnnl_memory_t pending[2] = {NULL, NULL}, bias;
  dnnl_memory_t src = dnn_bind(op, pd, dnnl_query_src_md, &s->src, data.x,
                               0, pending);
  dnnl_memory_t wei = dnn_bind(op, pd, dnnl_query_weights_md, &s->wei,
                               data.w, 0, pending);
  dnnl_memory_t dst = dnn_bind(op, pd, dnnl_query_dst_md, &s->dst, data.y,
                               1, pending);
  DNN(dnnl_memory_create(&bias, &s->bias, engine, data.b));
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei},
                             {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}};
  dnn_add_conv(op, pd, 4, args, pending);
}

static void dnn_build_input_vjp(dnn_op *op, const dnn_shapes *s) {
  dnnl_primitive_desc_t hint = dnn_forward_pd(s), pd;
  dnnl_convolution_desc_t cd;
  DNN(dnnl_dilated_convolution_backward_data_desc_init(
    &cd, dnnl_convolution_direct, &s->src_a, &s->wei_a, &s->dst_a,
    s->strides, s->dilates, s->pad, s->pad));
  DNN(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint));
  dnnl_memory_t pending[2] = {NULL, NULL};
  dnnl_memory_t ddst = dnn_bind(op, pd, dnnl_query_diff_dst_md, &s->dst,
                                data.dy, 0, pending);
  dnnl_memory_t wei = dnn_bind(op, pd, dnnl_query_weights_md, &s->wei,
                               data.w, 0, pending);
  dnnl_memory_t dsrc = dnn_bind(op, pd, dnnl_query_diff_src_md, &s->src,
                                data.dx, 1, pending);
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, ddst},
                             {DNNL_ARG_WEIGHTS, wei},
                             {DNNL_ARG_DIFF_SRC, dsrc}};
  dnn_add_conv(op, pd, 3, args, pending);
}

static void dnn_build_weight_vjp(dnn_op *op, const dnn_shapes *s) {
  dnnl_primitive_desc_t hint = dnn_forward_pd(s), pd;
  dnnl_convolution_desc_t cd;
  DNN(dnnl_dilated_convolution_backward_weights_desc_init(
    &cd, dnnl_convolution_direct, &s->src_a, &s->wei_a, NULL, &s->dst_a,
    s->strides, s->dilates, s->pad, s->pad));
  DNN(dnnl_primitive_desc_create(&pd, &cd, NULL, engine, hint));
  dnnl_memory_t pending[2] = {NULL, NULL};
  dnnl_memory_t src = dnn_bind(op, pd, dnnl_query_src_md, &s->src, data.x,
                               0, pending);
  dnnl_memory_t ddst = dnn_bind(op, pd, dnnl_query_diff_dst_md, &s->dst,
                                data.dy, 0, pending);
  dnnl_memory_t dwei = dnn_bind(op, pd, dnnl_query_diff_weights_md,
                                &s->wei, data.dw, 1, pending);
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_DIFF_DST, ddst},
                             {DNNL_ARG_DIFF_WEIGHTS, dwei}};
  dnn_add_conv(op, pd, 3, args, pending);
}

/* max |a - b| / max |b| over count floats. */
static double rel_diff(const float *a, const float *b, size_t count) {
  double err = 0, scale = 1e-30;
  for (size_t i = 0; i < count; i++) {
    err = fmax(err, fabs((double)a[i] - b[i]));
    scale = fmax(scale, fabs((double)b[i]));
  }
  return err / scale;
}

/* Runs op once and compares its result (out, count floats) with ebl's
   im2col one, kept in ref. */
static double dnn_agreement(dnn_op *op, float *out, const float *ref,
                            size_t count) {
  memset(out, 0, sizeof(float) * count);
  dnn_run_all(op);
  return rel_diff(out, ref, count);
}

/* Times one operation in oneDNN on user layouts (`any` lets oneDNN pick
   blocked layouts, reordered to and from NCHW; else plain NCHW) and
   compares its result in out with ebl's in ref. */
static void bench_dnn(const char *name, void (*build)(dnn_op *,
                      const dnn_shapes *), int any, float *out,
                      const float *ref, size_t count) {
  dnn_shapes s;
  dnn_shapes_init(&s, any);
  dnn_op op = {.nsteps = 0};
  build(&op, &s);
  double agree = dnn_agreement(&op, out, ref, count);
  char label[64];
  snprintf(label, sizeof label, "oneDNN %s%s", any ? "" : "nchw ",
           op.impl);
  report(name, label, best_ms(dnn_run_all, &op));
  if (any && op.nsteps > 1)
    report(name, "  (convolution step alone)", best_ms(dnn_run_conv, &op));
  printf("%-12s   agrees with ebl im2col to %.1e\n", "", agree);
}

static float *copy_of(const float *v, size_t count) {
  float *c = malloc(sizeof(float) * count);
  memcpy(c, v, sizeof(float) * count);
  return c;
}

int main(void) {
  const char *env = getenv("EBL_BENCH_THREADS");
  omp_set_num_threads(env ? atoi(env) : 2);
  char msg[200];
  if (ebl_conv_geom_finish(&geom, msg, sizeof msg) != 0) {
    fprintf(stderr, "%s\n", msg);
    return 1;
  }
  setup();
  printf("conv2d n%d %dx%d %dx%d %d->%d pad %d, %d threads, best of %d\n",
         geom.n, geom.h_in, geom.w_in, geom.kh, geom.kw, geom.c_in,
         geom.c_out, geom.pad_h, omp_get_max_threads(), REPS);

  const ebl_conv_geom *g = &geom;
  size_t xs = (size_t)g->n * g->c_in * g->h_in * g->w_in;
  size_t ys = (size_t)g->n * g->c_out * g->h_out * g->w_out;
  size_t ws = (size_t)g->c_out * g->c_in * g->kh * g->kw;
  ebl_conv2d_set_onednn(0);
  report("forward", "ebl f32 im2col+sgemm", best_ms(ebl_forward, NULL));
  report("input VJP", "ebl f32 im2col+sgemm", best_ms(ebl_input_vjp, NULL));
  report("weight VJP", "ebl f32 im2col+sgemm",
         best_ms(ebl_weight_vjp, NULL));
  float *y = copy_of(data.y, ys), *dx = copy_of(data.dx, xs);
  float *dw = copy_of(data.dw, ws);
  ebl_conv2d_set_onednn(1);
  report("forward", "ebl f32 (oneDNN inside)", best_ms(ebl_forward, NULL));
  report("input VJP", "ebl f32 (oneDNN inside)",
         best_ms(ebl_input_vjp, NULL));
  report("weight VJP", "ebl f32 (oneDNN inside)",
         best_ms(ebl_weight_vjp, NULL));
  report("forward", "ebl f64 im2col+dgemm", best_ms(ebl_forward_f64, NULL));
  report("input VJP", "ebl f64 im2col+dgemm",
         best_ms(ebl_input_vjp_f64, NULL));
  report("weight VJP", "ebl f64 im2col+dgemm",
         best_ms(ebl_weight_vjp_f64, NULL));

  DNN(dnnl_engine_create(&engine, dnnl_cpu, 0));
  DNN(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
  for (int any = 1; any >= 0; any--) {
    bench_dnn("forward", dnn_build_forward, any, data.y, y, ys);
    bench_dnn("input VJP", dnn_build_input_vjp, any, data.dx, dx, xs);
    bench_dnn("weight VJP", dnn_build_weight_vjp, any, data.dw, dw, ws);
  }
  return 0;
}

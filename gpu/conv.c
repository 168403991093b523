/* Convolutions through cuDNN: the forward pass and both VJPs of conv2d,
   and conv_transpose2d as the same three calls in other roles (its
   forward is the conv's data gradient, its input VJP the conv's
   forward, its weight VJP the conv's filter gradient with x and dy
   swapped), as src/cpu/layers.h lays out. Each geometry gets a plan:
   descriptors and the algorithms cuDNN's heuristics rank first among
   the deterministic ones that need at most 1 GiB of workspace and, for
   float32 without TF32, use plain FMA arithmetic. Plans are cached (the
   oldest dropped past 64). Biases are added by ebl's own kernel. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn.h>

#include "gpu/gpu.h"

#define MAX_PLANS 64
#define WORKSPACE_LIMIT ((size_t)1 << 30)

typedef struct plan {
  ebl_conv_geom g;
  ebl_dtype dtype;
  int tf32;
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  cudnnConvolutionFwdAlgo_t fwd;
  cudnnConvolutionBwdDataAlgo_t data;
  cudnnConvolutionBwdFilterAlgo_t filter;
  cudnnMathType_t fwd_math, data_math, filter_math;
  size_t fwd_ws, data_ws, filter_ws;
} plan;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t handle;
static plan *plans[MAX_PLANS];
static int nplans, oldest;
static int tf32;

static ebl_status dnn_fail(const char *op, cudnnStatus_t st) {
  return ebl_gpu_fail(EBL_EDEVICE, "%s: %s", op, cudnnGetErrorString(st));
}

#define DNN_TRY(op, call)                                             \
  do {                                                                \
    cudnnStatus_t s_ = (call);                                        \
    if (s_ != CUDNN_STATUS_SUCCESS) return dnn_fail(op, s_);          \
  } while (0)

/* The handle, created on first use, on ebl's stream. Called with the
   lock held. */
static ebl_status dnn_handle(void) {
  if (handle) return EBL_OK;
  cudnnStatus_t s = cudnnCreate(&handle);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetStream(handle, ebl_gpu_stream);
  if (s != CUDNN_STATUS_SUCCESS) {
    if (handle) cudnnDestroy(handle);
    handle = NULL;
    return dnn_fail("cudnnCreate", s);
  }
  return EBL_OK;
}

static void plan_free(plan *p) {
  if (!p) return;
  if (p->x) cudnnDestroyTensorDescriptor(p->x);
  if (p->y) cudnnDestroyTensorDescriptor(p->y);
  if (p->w) cudnnDestroyFilterDescriptor(p->w);
  if (p->conv) cudnnDestroyConvolutionDescriptor(p->conv);
  free(p);
}

/* ---- descriptors */

static cudnnDataType_t dnn_type(ebl_dtype dt) {
  return dt == EBL_F32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

/* The math type asked for before ranking: for float32 FMA only, unless
   TF32 is allowed; float64 has no reduced-precision path to avoid. */
static cudnnMathType_t wanted_math(const plan *p) {
  return p->dtype == EBL_F32 && !p->tf32 ? CUDNN_FMA_MATH
                                         : CUDNN_DEFAULT_MATH;
}

/* Creates and sets x (n, c_in, h_in, w_in), y, w and the convolution,
   and checks that cuDNN's output size is ebl's. */
static ebl_status describe(plan *p) {
  const ebl_conv_geom *g = &p->g;
  cudnnDataType_t t = dnn_type(p->dtype);
  int n, c, h, w;
  DNN_TRY("conv2d", cudnnCreateTensorDescriptor(&p->x));
  DNN_TRY("conv2d", cudnnCreateTensorDescriptor(&p->y));
  DNN_TRY("conv2d", cudnnCreateFilterDescriptor(&p->w));
  DNN_TRY("conv2d", cudnnCreateConvolutionDescriptor(&p->conv));
  DNN_TRY("conv2d", cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, t,
                                               g->n, g->c_in, g->h_in,
                                               g->w_in));
  DNN_TRY("conv2d", cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, t,
                                               g->n, g->c_out, g->h_out,
                                               g->w_out));
  DNN_TRY("conv2d", cudnnSetFilter4dDescriptor(p->w, t, CUDNN_TENSOR_NCHW,
                                               g->c_out,
                                               g->c_in / g->groups, g->kh,
                                               g->kw));
  DNN_TRY("conv2d", cudnnSetConvolution2dDescriptor(
            p->conv, g->pad_h, g->pad_w, g->stride_h, g->stride_w,
            g->dil_h, g->dil_w, CUDNN_CROSS_CORRELATION, t));
  DNN_TRY("conv2d", cudnnSetConvolutionGroupCount(p->conv, g->groups));
  DNN_TRY("conv2d", cudnnSetConvolutionMathType(p->conv, wanted_math(p)));
  DNN_TRY("conv2d", cudnnGetConvolution2dForwardOutputDim(p->conv, p->x,
                                                          p->w, &n, &c, &h,
                                                          &w));
  if (n != g->n || c != g->c_out || h != g->h_out || w != g->w_out)
    return ebl_gpu_fail(EBL_EDEVICE, "conv2d: cuDNN gives output %dx%dx"
                        "%dx%d, ebl expects %dx%dx%dx%d", n, c, h, w, g->n,
                        g->c_out, g->h_out, g->w_out);
  return EBL_OK;
}

/* ---- algorithms */

/* Nonzero when an algorithm suits ebl: deterministic, within the
   workspace limit and, for float32 without TF32, reported with FMA math
   (strict) or with FMA or default math (relaxed: such an algorithm is
   then run with the math type set to FMA, which keeps TF32 out). */
static int suits(const plan *p, cudnnStatus_t st, cudnnDeterminism_t det,
                 cudnnMathType_t math, size_t memory, int strict) {
  if (st != CUDNN_STATUS_SUCCESS || det != CUDNN_DETERMINISTIC ||
      memory > WORKSPACE_LIMIT)
    return 0;
  if (p->tf32 || p->dtype != EBL_F32) return 1;
  return strict ? math == CUDNN_FMA_MATH
                : math == CUDNN_FMA_MATH || math == CUDNN_DEFAULT_MATH;
}

/* Picks from perf (count entries of one of cuDNN's perf types, ranked
   by its heuristics) the first that suits, strictly if any does, and
   stores its algorithm, the math type to run it with and its
   workspace. */
#define PICK(P, PERF, COUNT, ALGO_OUT, MATH_OUT, WS_OUT, WHAT)       \
  do {                                                                \
    int found_ = -1;                                                  \
    for (int pass_ = 1; pass_ >= 0 && found_ < 0; pass_--)            \
      for (int i_ = 0; i_ < (COUNT) && found_ < 0; i_++)              \
        if (suits(P, PERF[i_].status, PERF[i_].determinism,           \
                  PERF[i_].mathType, PERF[i_].memory, pass_))         \
          found_ = i_;                                                \
    if (found_ < 0)                                                   \
      return ebl_gpu_fail(EBL_EDEVICE, "conv2d: cuDNN offers no "     \
                          "deterministic %s algorithm for this "      \
                          "geometry", WHAT);                          \
    (ALGO_OUT) = PERF[found_].algo;                                   \
    (MATH_OUT) = (P)->tf32 || (P)->dtype != EBL_F32                   \
                   ? PERF[found_].mathType : CUDNN_FMA_MATH;          \
    (WS_OUT) = PERF[found_].memory;                                   \
  } while (0)

/* Asks cuDNN again for the workspace of each chosen algorithm under the
   math type it will run with: a relaxed pick runs with FMA math where
   the ranking measured it with the default one, and the workspace may
   differ. The larger of the two figures is kept. */
static ebl_status exact_workspace(plan *p) {
  size_t ws = 0;
  DNN_TRY("conv2d", cudnnSetConvolutionMathType(p->conv, p->fwd_math));
  DNN_TRY("conv2d", cudnnGetConvolutionForwardWorkspaceSize(
            handle, p->x, p->w, p->conv, p->y, p->fwd, &ws));
  if (ws > p->fwd_ws) p->fwd_ws = ws;
  DNN_TRY("conv2d", cudnnSetConvolutionMathType(p->conv, p->data_math));
  DNN_TRY("conv2d", cudnnGetConvolutionBackwardDataWorkspaceSize(
            handle, p->w, p->y, p->conv, p->x, p->data, &ws));
  if (ws > p->data_ws) p->data_ws = ws;
  DNN_TRY("conv2d", cudnnSetConvolutionMathType(p->conv, p->filter_math));
  DNN_TRY("conv2d", cudnnGetConvolutionBackwardFilterWorkspaceSize(
            handle, p->x, p->y, p->conv, p->w, p->filter, &ws));
  if (ws > p->filter_ws) p->filter_ws = ws;
  return EBL_OK;
}

static ebl_status choose(plan *p) {
  cudnnConvolutionFwdAlgoPerf_t fwd[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  cudnnConvolutionBwdDataAlgoPerf_t
    data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  cudnnConvolutionBwdFilterAlgoPerf_t
    filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int nf = 0, nd = 0, nw = 0;
  DNN_TRY("conv2d", cudnnGetConvolutionForwardAlgorithm_v7(
            handle, p->x, p->w, p->conv, p->y,
            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &nf, fwd));
  DNN_TRY("conv2d", cudnnGetConvolutionBackwardDataAlgorithm_v7(
            handle, p->w, p->y, p->conv, p->x,
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &nd, data));
  DNN_TRY("conv2d", cudnnGetConvolutionBackwardFilterAlgorithm_v7(
            handle, p->x, p->y, p->conv, p->w,
            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &nw, filter));
  PICK(p, fwd, nf, p->fwd, p->fwd_math, p->fwd_ws, "forward");
  PICK(p, data, nd, p->data, p->data_math, p->data_ws, "data gradient");
  PICK(p, filter, nw, p->filter, p->filter_math, p->filter_ws,
       "filter gradient");
  return exact_workspace(p);
}

/* ---- the plan cache */

/* The plan of g (built on first use). Called with the lock held. */
static ebl_status plan_of(const ebl_conv_geom *g, ebl_dtype dt,
                          plan **res) {
  for (int i = 0; i < nplans; i++)
    if (plans[i]->dtype == dt && plans[i]->tf32 == tf32 &&
        memcmp(&plans[i]->g, g, sizeof *g) == 0) {
      *res = plans[i];
      return EBL_OK;
    }
  EBL_GPU_TRY(dnn_handle());
  plan *p = calloc(1, sizeof *p);
  if (!p) return ebl_gpu_fail(EBL_ENOMEM, "conv2d: out of memory");
  p->g = *g;
  p->dtype = dt;
  p->tf32 = tf32;
  ebl_status st = describe(p);
  if (st == EBL_OK) st = choose(p);
  if (st != EBL_OK) {
    plan_free(p);
    return st;
  }
  if (nplans == MAX_PLANS) {
    plan_free(plans[oldest]);
    plans[oldest] = p;
    oldest = (oldest + 1) % MAX_PLANS;
  } else {
    plans[nplans++] = p;
  }
  *res = p;
  return EBL_OK;
}

void ebl_gpu_conv_set_tf32(int allow) {
  pthread_mutex_lock(&lock);
  tf32 = allow != 0;
  pthread_mutex_unlock(&lock);
}

size_t ebl_gpu_conv_workspace(const ebl_conv_geom *g, ebl_dtype dt) {
  plan *p;
  size_t ws = 0;
  pthread_mutex_lock(&lock);
  if (plan_of(g, dt, &p) == EBL_OK) {
    ws = p->fwd_ws > p->data_ws ? p->fwd_ws : p->data_ws;
    if (p->filter_ws > ws) ws = p->filter_ws;
  }
  pthread_mutex_unlock(&lock);
  return ws;
}

/* ---- the three cuDNN calls. Scaling factors are float for float
   data and double for double data. */

typedef enum role { FORWARD, DATA_GRAD, FILTER_GRAD } role;

/* Runs one call: FORWARD y = conv(in, w); DATA_GRAD out = dx of dy=in;
   FILTER_GRAD out = dw from x=in and dy=other. op names the operation
   the caller ran in a failure (conv2d or conv_transpose2d). */
static ebl_status run(const char *op, const ebl_conv_geom *g,
                      ebl_dtype dt, role r, const void *in,
                      const void *other, void *out, void *work) {
  float one_f = 1, zero_f = 0;
  double one_d = 1, zero_d = 0;
  const void *one = dt == EBL_F32 ? (const void *)&one_f : &one_d;
  const void *zero = dt == EBL_F32 ? (const void *)&zero_f : &zero_d;
  plan *p;
  cudnnStatus_t s;
  EBL_GPU_TRY(plan_of(g, dt, &p));
  if (r == FORWARD) {
    DNN_TRY(op, cudnnSetConvolutionMathType(p->conv, p->fwd_math));
    s = cudnnConvolutionForward(handle, one, p->x, in, p->w, other,
                                p->conv, p->fwd, work, p->fwd_ws, zero,
                                p->y, out);
  } else if (r == DATA_GRAD) {
    DNN_TRY(op, cudnnSetConvolutionMathType(p->conv, p->data_math));
    s = cudnnConvolutionBackwardData(handle, one, p->w, other, p->y, in,
                                     p->conv, p->data, work, p->data_ws,
                                     zero, p->x, out);
  } else {
    DNN_TRY(op, cudnnSetConvolutionMathType(p->conv, p->filter_math));
    s = cudnnConvolutionBackwardFilter(handle, one, p->x, in, p->y, other,
                                       p->conv, p->filter, work,
                                       p->filter_ws, zero, p->w, out);
  }
  return s == CUDNN_STATUS_SUCCESS ? EBL_OK : dnn_fail(op, s);
}

/* run() under the lock; a failure is kept for kernel_status. */
static ebl_status run_locked(const char *op, const ebl_conv_geom *g,
                             ebl_dtype dt, role r, const void *in,
                             const void *other, void *out, void *work) {
  pthread_mutex_lock(&lock);
  ebl_status st = run(op, g, dt, r, in, other, out, work);
  pthread_mutex_unlock(&lock);
  ebl_gpu_defer(st);
  return st;
}

/* Adds b over the channels of y and keeps a failure, named op. */
static void add_bias(const char *op, ebl_dtype dt, int n, int channels,
                     int64_t plane, const void *b, void *y) {
  if (b)
    ebl_gpu_defer(ebl_gpu_check(op, ebl_gpu_add_bias(
                                  dt, n, channels, plane, b, y)));
}

void ebl_gpu_conv_forward(const ebl_conv_geom *g, ebl_dtype dt,
                          const void *x, const void *w, const void *b,
                          void *y, void *work) {
  if (run_locked("conv2d", g, dt, FORWARD, x, w, y, work) == EBL_OK)
    add_bias("conv2d", dt, g->n, g->c_out, (int64_t)g->h_out * g->w_out, b,
             y);
}

/* The data gradient takes dy (y's shape) and w. */
void ebl_gpu_conv_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                            const void *dy, const void *w, void *dx,
                            void *work) {
  run_locked("conv2d", g, dt, DATA_GRAD, dy, w, dx, work);
}

void ebl_gpu_conv_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *x, const void *dy, void *dw,
                             void *work) {
  run_locked("conv2d", g, dt, FILTER_GRAD, x, dy, dw, work);
}

/* conv_transpose2d's x has the conv's output shape; y the conv's input
   shape, with c_out_t = g->c_in channels. */
void ebl_gpu_convt_forward(const ebl_conv_geom *g, ebl_dtype dt,
                           const void *x, const void *w, const void *b,
                           void *y, void *work) {
  if (run_locked("conv_transpose2d", g, dt, DATA_GRAD, x, w, y, work) ==
      EBL_OK)
    add_bias("conv_transpose2d", dt, g->n, g->c_in,
             (int64_t)g->h_in * g->w_in, b, y);
}

void ebl_gpu_convt_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *dy, const void *w, void *dx,
                             void *work) {
  run_locked("conv_transpose2d", g, dt, FORWARD, dy, w, dx, work);
}

void ebl_gpu_convt_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                              const void *x, const void *dy, void *dw,
                              void *work) {
  run_locked("conv_transpose2d", g, dt, FILTER_GRAD, dy, x, dw, work);
}

/* ---- the reference timing of cuDNN alone */

/* Mean milliseconds of iters float forward convolutions of geometry g
   (through the plan ebl uses) on fresh uniform data. */
double ebl_gpu_conv_reference(const ebl_conv_geom *g, int iters) {
  size_t n[3] = {(size_t)g->n * g->c_in * g->h_in * g->w_in,
                 (size_t)g->c_out * (g->c_in / g->groups) * g->kh * g->kw,
                 (size_t)g->n * g->c_out * g->h_out * g->w_out};
  void *buf[3] = {NULL, NULL, NULL}, *work = NULL;
  size_t ws = ebl_gpu_conv_workspace(g, EBL_F32);
  cudaEvent_t start = NULL, stop = NULL;
  float ms = -1;
  int ok = iters > 0 && (ws == 0 || (work = ebl_gpu_alloc(ws)) != NULL);
  for (int i = 0; i < 3; i++) {
    buf[i] = ebl_gpu_alloc(n[i] * 4);
    if (!buf[i]) ok = 0;
    else ebl_gpu_random(buf[i], EBL_F32, (int64_t)n[i], EBL_RANDOM_UNIFORM,
                        -1, 1, 7, 0);
  }
  ok = ok && cudaEventCreate(&start) == cudaSuccess &&
       cudaEventCreate(&stop) == cudaSuccess;
  for (int r = 0; ok && r <= iters; r++) {
    if (r == 1) cudaEventRecord(start, ebl_gpu_stream);
    ok = run_locked("conv2d", g, EBL_F32, FORWARD, buf[0], buf[1], buf[2],
                    work) == EBL_OK;
  }
  if (ok) ok = cudaEventRecord(stop, ebl_gpu_stream) == cudaSuccess &&
               cudaEventSynchronize(stop) == cudaSuccess &&
               cudaEventElapsedTime(&ms, start, stop) == cudaSuccess;
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  for (int i = 0; i < 3; i++) ebl_gpu_free(buf[i]);
  ebl_gpu_free(work);
  ebl_gpu_pending("conv2d");
  return ok ? ms / iters : -1;
}

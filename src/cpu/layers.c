/* CPU layer kernels: geometry checks shared by both precisions, and the
   float and double kernels instantiated from layers_real.h. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "cpu/conv_onednn.h"
#include "cpu/layers.h"

/* Bytes of im2col columns the conv kernels aim to hold at once: enough
   samples per chunk that the gemm is large, few enough to stay modest. */
#define CONV_CHUNK_BYTES ((size_t)32 << 20)

/* ---- geometry ---- */

/* Writes a printf-style message into msg (when there is room); returns -1
   so that checks can end with `return geom_error(...)`. */
static int geom_error(char *msg, size_t msg_len, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));

static int geom_error(char *msg, size_t msg_len, const char *fmt, ...) {
  if (msg && msg_len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msg_len, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Output length of a sliding window along one axis; the caller has made
   sure that the dilated kernel fits in the padded input. */
static int64_t window_count(int64_t in, int k, int stride, int pad,
                            int dil) {
  int64_t span = (int64_t)dil * (k - 1) + 1;
  return (in + 2 * (int64_t)pad - span) / stride + 1;
}

/* Checks the sizes, strides, paddings, dilations and groups of a conv
   geometry; name ("conv2d", "conv_transpose2d") starts every message. */
static int conv_check_params(const ebl_conv_geom *g, const char *name,
                             char *msg, size_t msg_len) {
  if (g->stride_h < 1 || g->stride_w < 1)
    return geom_error(msg, msg_len, "%s: stride %dx%d must be at least 1",
                      name, g->stride_h, g->stride_w);
  if (g->pad_h < 0 || g->pad_w < 0)
    return geom_error(msg, msg_len, "%s: padding %dx%d must not be "
                      "negative", name, g->pad_h, g->pad_w);
  if (g->dil_h < 1 || g->dil_w < 1)
    return geom_error(msg, msg_len, "%s: dilation %dx%d must be at "
                      "least 1", name, g->dil_h, g->dil_w);
  if (g->kh < 1 || g->kw < 1)
    return geom_error(msg, msg_len, "%s: kernel %dx%d must be at least "
                      "1x1", name, g->kh, g->kw);
  if (g->groups < 1)
    return geom_error(msg, msg_len, "%s: groups %d must be at least 1",
                      name, g->groups);
  return 0;
}

/* Checks the channel counts of a conv against its groups; in and out
   name the two channel counts as the user sees them. */
static int conv_check_channels(const char *name, int c_in, int c_out,
                               int groups, char *msg, size_t msg_len) {
  if (c_in < 1 || c_out < 1)
    return geom_error(msg, msg_len, "%s: %d input and %d output channels "
                      "(both must be at least 1)", name, c_in, c_out);
  if (c_in % groups != 0)
    return geom_error(msg, msg_len, "%s: input has %d channels, not "
                      "divisible by groups %d", name, c_in, groups);
  if (c_out % groups != 0)
    return geom_error(msg, msg_len, "%s: %d output channels are not "
                      "divisible by groups %d", name, c_out, groups);
  return 0;
}

/* Rejects geometries whose gemm dimensions or plane sizes overflow the
   int that BLAS and the argmax indices use. */
static int conv_check_limits(const ebl_conv_geom *g, const char *name,
                             char *msg, size_t msg_len) {
  int64_t taps = (int64_t)g->c_in * g->kh * g->kw;
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  if (taps > INT_MAX || plane_in > INT_MAX || plane_out > INT_MAX)
    return geom_error(msg, msg_len, "%s: sizes too large (input plane "
                      "%dx%d, %d channels, kernel %dx%d)", name, g->h_in,
                      g->w_in, g->c_in, g->kh, g->kw);
  return 0;
}

/* Validates a conv2d geometry and fills its output size. */
int ebl_conv_geom_finish(ebl_conv_geom *g, char *msg, size_t msg_len) {
  const char *name = "conv2d";
  if (g->n < 1 || g->h_in < 1 || g->w_in < 1)
    return geom_error(msg, msg_len, "conv2d: input of batch %d and size "
                      "%dx%d (all must be at least 1)", g->n, g->h_in,
                      g->w_in);
  if (conv_check_params(g, name, msg, msg_len) ||
      conv_check_channels(name, g->c_in, g->c_out, g->groups, msg,
                          msg_len))
    return -1;

  int64_t span_h = (int64_t)g->dil_h * (g->kh - 1) + 1;
  int64_t span_w = (int64_t)g->dil_w * (g->kw - 1) + 1;
  int64_t padded_h = g->h_in + 2 * (int64_t)g->pad_h;
  int64_t padded_w = g->w_in + 2 * (int64_t)g->pad_w;
  if (span_h > padded_h || span_w > padded_w)
    return geom_error(msg, msg_len, "conv2d: kernel %dx%d (dilated "
                      "%lldx%lld) is larger than padded input %lldx%lld",
                      g->kh, g->kw, (long long)span_h, (long long)span_w,
                      (long long)padded_h, (long long)padded_w);

  g->h_out = (int)window_count(g->h_in, g->kh, g->stride_h, g->pad_h,
                               g->dil_h);
  g->w_out = (int)window_count(g->w_in, g->kw, g->stride_w, g->pad_w,
                               g->dil_w);
  return conv_check_limits(g, name, msg, msg_len);
}

/* Output length of a transposed conv along one axis. */
static int64_t transpose_size(int in, int k, int stride, int pad, int dil,
                              int out_pad) {
  return (int64_t)(in - 1) * stride - 2 * (int64_t)pad +
         (int64_t)dil * (k - 1) + out_pad + 1;
}

/* Checks the output padding of a transposed conv (PyTorch's rule: below
   the stride or below the dilation) and the output size it gives. */
static int transpose_check_out(int64_t h, int64_t w, int out_pad_h,
                               int out_pad_w, const ebl_conv_geom *g,
                               char *msg, size_t msg_len) {
  const char *name = "conv_transpose2d";
  int ok_h = out_pad_h < g->stride_h || out_pad_h < g->dil_h;
  int ok_w = out_pad_w < g->stride_w || out_pad_w < g->dil_w;
  if (out_pad_h < 0 || out_pad_w < 0 || !ok_h || !ok_w)
    return geom_error(msg, msg_len, "%s: output padding %dx%d must be "
                      "non-negative and smaller than stride %dx%d or "
                      "dilation %dx%d", name, out_pad_h, out_pad_w,
                      g->stride_h, g->stride_w, g->dil_h, g->dil_w);
  if (h < 1 || w < 1 || h > INT_MAX || w > INT_MAX)
    return geom_error(msg, msg_len, "%s: output size %lldx%lld is out of "
                      "range (input %dx%d, kernel %dx%d, stride %dx%d, "
                      "padding %dx%d)", name, (long long)h, (long long)w,
                      g->h_out, g->w_out, g->kh, g->kw, g->stride_h,
                      g->stride_w, g->pad_h, g->pad_w);
  return 0;
}

/* Builds the conv2d geometry whose input VJP is the transposed conv:
   conv input = transposed output, conv output = transposed input. */
int ebl_conv_geom_transpose(ebl_conv_geom *g, int n, int c_in_t,
                            int h_in_t, int w_in_t, int c_out_t, int kh,
                            int kw, int stride_h, int stride_w, int pad_h,
                            int pad_w, int dil_h, int dil_w, int groups,
                            int out_pad_h, int out_pad_w, char *msg,
                            size_t msg_len) {
  const char *name = "conv_transpose2d";
  *g = (ebl_conv_geom){.n = n, .c_in = c_out_t, .c_out = c_in_t,
                       .h_out = h_in_t, .w_out = w_in_t, .kh = kh,
                       .kw = kw, .stride_h = stride_h,
                       .stride_w = stride_w, .pad_h = pad_h,
                       .pad_w = pad_w, .dil_h = dil_h, .dil_w = dil_w,
                       .groups = groups};
  if (n < 1 || h_in_t < 1 || w_in_t < 1)
    return geom_error(msg, msg_len, "%s: input of batch %d and size %dx%d "
                      "(all must be at least 1)", name, n, h_in_t, w_in_t);
  if (conv_check_params(g, name, msg, msg_len) ||
      conv_check_channels(name, c_in_t, c_out_t, groups, msg, msg_len))
    return -1;

  int64_t h = transpose_size(h_in_t, kh, stride_h, pad_h, dil_h,
                             out_pad_h);
  int64_t w = transpose_size(w_in_t, kw, stride_w, pad_w, dil_w,
                             out_pad_w);
  if (transpose_check_out(h, w, out_pad_h, out_pad_w, g, msg, msg_len))
    return -1;
  g->h_in = (int)h;
  g->w_in = (int)w;
  return conv_check_limits(g, name, msg, msg_len);
}

/* Validates a pooling geometry and fills its output size. */
int ebl_pool_geom_finish(ebl_pool_geom *g, char *msg, size_t msg_len) {
  if (g->n < 1 || g->c < 1 || g->h_in < 1 || g->w_in < 1)
    return geom_error(msg, msg_len, "pool2d: input shape (%d, %d, %d, %d) "
                      "has a size below 1", g->n, g->c, g->h_in, g->w_in);
  if (g->kh < 1 || g->kw < 1)
    return geom_error(msg, msg_len, "pool2d: kernel %dx%d must be at "
                      "least 1x1", g->kh, g->kw);
  if (g->stride_h < 1 || g->stride_w < 1)
    return geom_error(msg, msg_len, "pool2d: stride %dx%d must be at "
                      "least 1", g->stride_h, g->stride_w);
  if (g->pad_h < 0 || g->pad_w < 0 || g->pad_h > g->kh / 2 ||
      g->pad_w > g->kw / 2)
    return geom_error(msg, msg_len, "pool2d: padding %dx%d must be between "
                      "0 and half the kernel %dx%d", g->pad_h, g->pad_w,
                      g->kh, g->kw);
  int64_t padded_h = g->h_in + 2 * (int64_t)g->pad_h;
  int64_t padded_w = g->w_in + 2 * (int64_t)g->pad_w;
  if (g->kh > padded_h || g->kw > padded_w)
    return geom_error(msg, msg_len, "pool2d: kernel %dx%d is larger than "
                      "padded input %lldx%lld", g->kh, g->kw,
                      (long long)padded_h, (long long)padded_w);
  if ((int64_t)g->h_in * g->w_in > INT32_MAX)
    return geom_error(msg, msg_len, "pool2d: input plane %dx%d is too "
                      "large for int32 indices", g->h_in, g->w_in);
  g->h_out = (int)window_count(g->h_in, g->kh, g->stride_h, g->pad_h, 1);
  g->w_out = (int)window_count(g->w_in, g->kw, g->stride_w, g->pad_w, 1);
  return 0;
}

/* ---- shared helpers of the kernels ---- */

/* Range [*lo, *hi) of output positions along one axis whose tap at
   offset (ki*dil - pad) lands inside the input 0..in-1. */
static void tap_range(int in, int out, int stride, int offset, int *lo,
                      int *hi) {
  int64_t first = offset >= 0 ? 0 : (-(int64_t)offset + stride - 1) / stride;
  int64_t end = in - (int64_t)offset;
  int64_t last = end <= 0 ? 0 : (end + stride - 1) / stride;
  *lo = (int)(first < out ? first : out);
  *hi = (int)(last < out ? last : out);
  if (*hi < *lo)
    *hi = *lo;
}

/* Samples per im2col chunk: as many as CONV_CHUNK_BYTES of columns allow,
   at least one, at most the batch. */
static int conv_chunk(const ebl_conv_geom *g, size_t elem) {
  size_t per_sample = elem * (size_t)g->h_out * g->w_out *
                      ((size_t)g->c_in * g->kh * g->kw + g->c_out);
  size_t fit = CONV_CHUNK_BYTES / per_sample;
  if (fit < 1)
    fit = 1;
  if (fit > (size_t)INT_MAX / ((size_t)g->h_out * g->w_out))
    fit = (size_t)INT_MAX / ((size_t)g->h_out * g->w_out);
  return fit < (size_t)g->n ? (int)fit : g->n;
}

/* Workspace of a chunk: columns (c_in*kh*kw rows) and outputs in gemm
   layout (c_out rows), each row one entry per (sample, oh, ow). */
static size_t conv_workspace(const ebl_conv_geom *g, size_t elem) {
  size_t cols = (size_t)conv_chunk(g, elem) * g->h_out * g->w_out;
  size_t rows = (size_t)g->c_in * g->kh * g->kw + g->c_out;
  return elem * rows * cols;
}

/* Float convs may run through oneDNN, whose blocked copies of x and y
   can need more room than im2col's columns. */
size_t ebl_conv2d_workspace_f32(const ebl_conv_geom *g) {
  size_t im2col = conv_workspace(g, sizeof(float));
  size_t onednn = ebl_onednn_conv_workspace(g);
  return onednn > im2col ? onednn : im2col;
}

/* Double convs always use im2col. */
size_t ebl_conv2d_workspace_f64(const ebl_conv_geom *g) {
  return conv_workspace(g, sizeof(double));
}

/* Per-group gemm sizes: m output channels, k taps of the group's input
   channels. */
static void conv_group_dims(const ebl_conv_geom *g, int *m, int *k) {
  *m = g->c_out / g->groups;
  *k = g->c_in / g->groups * g->kh * g->kw;
}

/* Clips the window of pooling output (oh, ow) to the input: rows
   [*h_lo, *h_hi) and columns [*w_lo, *w_hi). */
static void pool_window(const ebl_pool_geom *g, int oh, int ow, int *h_lo,
                        int *h_hi, int *w_lo, int *w_hi) {
  int h0 = oh * g->stride_h - g->pad_h, w0 = ow * g->stride_w - g->pad_w;
  *h_lo = h0 < 0 ? 0 : h0;
  *w_lo = w0 < 0 ? 0 : w0;
  *h_hi = h0 + g->kh < g->h_in ? h0 + g->kh : g->h_in;
  *w_hi = w0 + g->kw < g->w_in ? w0 + g->kw : g->w_in;
}

/* Losses sum their rows in this many fixed blocks, in parallel, then add
   the blocks in order: the result is the same for any thread count. */
#define LOSS_BLOCKS 64

static double sum_parts(const double *part) {
  double sum = 0;
  for (int i = 0; i < LOSS_BLOCKS; i++)
    sum += part[i];
  return sum;
}

/* Switches float convs between oneDNN and im2col (see layers.h). */
int ebl_conv2d_set_onednn(int enable) { return ebl_onednn_enable(enable); }

int ebl_conv2d_uses_onednn(const ebl_conv_geom *g) {
  return ebl_onednn_takes(g);
}

/* ---- the kernels, once per precision ---- */

#define REAL float
#define SUFFIX f32
#define GEMM cblas_sgemm
#define CONV_ONEDNN
#include "cpu/layers_real.h"
#undef CONV_ONEDNN
#undef REAL
#undef SUFFIX
#undef GEMM

#define REAL double
#define SUFFIX f64
#define GEMM cblas_dgemm
#include "cpu/layers_real.h"
#undef REAL
#undef SUFFIX
#undef GEMM

/* The layer kernels written once for a real type: layers.c includes this
   file with REAL (float or double), SUFFIX (f32 or f64) and GEMM (the
   matching cblas gemm) defined, once per precision. With CONV_ONEDNN
   defined (float), the conv kernels first offer their work to oneDNN. */

#define FN_JOIN(name, suffix) name##_##suffix
#define FN_EXPAND(name, suffix) FN_JOIN(name, suffix)
#define FN(name) FN_EXPAND(name, SUFFIX)

/* ---- conv2d by im2col + gemm ---- */

/* Fills one row of the column matrix: tap (ki, kj) of one input plane,
   read at every output position (h_out*w_out entries, padding as 0). */
static void FN(im2col_tap)(const ebl_conv_geom *g, const REAL *plane,
                           int ki, int kj, REAL *dst) {
  int lo, hi;
  int off_w = kj * g->dil_w - g->pad_w;
  tap_range(g->w_in, g->w_out, g->stride_w, off_w, &lo, &hi);
  for (int oh = 0; oh < g->h_out; oh++, dst += g->w_out) {
    int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
    if (ih < 0 || ih >= g->h_in || lo == hi) {
      memset(dst, 0, sizeof(REAL) * g->w_out);
      continue;
    }
    const REAL *src = plane + (int64_t)ih * g->w_in + lo * g->stride_w +
                      off_w;
    memset(dst, 0, sizeof(REAL) * lo);
    if (g->stride_w == 1)
      memcpy(dst + lo, src, sizeof(REAL) * (hi - lo));
    else
      for (int ow = lo; ow < hi; ow++)
        dst[ow] = src[(int64_t)(ow - lo) * g->stride_w];
    memset(dst + hi, 0, sizeof(REAL) * (g->w_out - hi));
  }
}

/* Adds one row of the column matrix back onto the input plane it was
   read from: the adjoint of im2col_tap (taps in padding are dropped). */
static void FN(col2im_tap)(const ebl_conv_geom *g, const REAL *src,
                           int ki, int kj, REAL *plane) {
  int lo, hi;
  int off_w = kj * g->dil_w - g->pad_w;
  tap_range(g->w_in, g->w_out, g->stride_w, off_w, &lo, &hi);
  for (int oh = 0; oh < g->h_out; oh++, src += g->w_out) {
    int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
    if (ih < 0 || ih >= g->h_in)
      continue;
    REAL *dst = plane + (int64_t)ih * g->w_in + off_w;
    for (int ow = lo; ow < hi; ow++)
      dst[(int64_t)ow * g->stride_w] += src[ow];
  }
}

/* Column matrix of samples b0..b0+nb-1: row (c, ki, kj) holds that tap
   for every (sample, oh, ow), so a row has nb*h_out*w_out entries. */
static void FN(im2col)(const ebl_conv_geom *g, const REAL *x, int b0,
                       int nb, REAL *col) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  int64_t ld = nb * plane_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < g->c_in; c++)
    for (int b = 0; b < nb; b++) {
      const REAL *plane = x + ((int64_t)(b0 + b) * g->c_in + c) * plane_in;
      for (int ki = 0; ki < g->kh; ki++)
        for (int kj = 0; kj < g->kw; kj++) {
          int64_t row = ((int64_t)c * g->kh + ki) * g->kw + kj;
          FN(im2col_tap)(g, plane, ki, kj, col + row * ld + b * plane_out);
        }
    }
}

/* Overwrites the input planes of samples b0..b0+nb-1 with the sum of
   the column matrix's taps: each (sample, channel) plane is one task. */
static void FN(col2im)(const ebl_conv_geom *g, const REAL *col, int b0,
                       int nb, REAL *x) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  int64_t ld = nb * plane_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < g->c_in; c++) {
      REAL *plane = x + ((int64_t)(b0 + b) * g->c_in + c) * plane_in;
      memset(plane, 0, sizeof(REAL) * plane_in);
      for (int ki = 0; ki < g->kh; ki++)
        for (int kj = 0; kj < g->kw; kj++) {
          int64_t row = ((int64_t)c * g->kh + ki) * g->kw + kj;
          FN(col2im_tap)(g, col + row * ld + b * plane_out, ki, kj, plane);
        }
    }
}

/* Copies dy of samples b0..b0+nb-1 from NCHW into gemm layout: row c
   holds (sample, oh, ow). */
static void FN(gather_output)(const ebl_conv_geom *g, const REAL *y,
                              int b0, int nb, REAL *rows) {
  int64_t plane = (int64_t)g->h_out * g->w_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < g->c_out; c++)
    for (int b = 0; b < nb; b++)
      memcpy(rows + (c * (int64_t)nb + b) * plane,
             y + ((int64_t)(b0 + b) * g->c_out + c) * plane,
             sizeof(REAL) * plane);
}

/* Copies outputs in gemm layout back to NCHW, adding the bias b[c]
   when there is one. */
static void FN(scatter_output)(const ebl_conv_geom *g, const REAL *rows,
                               const REAL *bias, int b0, int nb, REAL *y) {
  int64_t plane = (int64_t)g->h_out * g->w_out;
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < g->c_out; c++) {
      const REAL *src = rows + (c * (int64_t)nb + b) * plane;
      REAL *dst = y + ((int64_t)(b0 + b) * g->c_out + c) * plane;
      REAL shift = bias ? bias[c] : (REAL)0;
      for (int64_t i = 0; i < plane; i++)
        dst[i] = src[i] + shift;
    }
}

/* Column matrix of one sample, filled by the calling thread alone: row
   (c, ki, kj) holds h_out*w_out entries. */
static void FN(im2col_sample)(const ebl_conv_geom *g, const REAL *x,
                              REAL *col) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  for (int c = 0; c < g->c_in; c++)
    for (int ki = 0; ki < g->kh; ki++)
      for (int kj = 0; kj < g->kw; kj++) {
        int64_t row = ((int64_t)c * g->kh + ki) * g->kw + kj;
        FN(im2col_tap)(g, x + c * plane_in, ki, kj, col + row * plane_out);
      }
}

/* Overwrites one sample's input planes with the sum of its column
   matrix's taps, by the calling thread alone. */
static void FN(col2im_sample)(const ebl_conv_geom *g, const REAL *col,
                              REAL *x) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  memset(x, 0, sizeof(REAL) * plane_in * g->c_in);
  for (int c = 0; c < g->c_in; c++)
    for (int ki = 0; ki < g->kh; ki++)
      for (int kj = 0; kj < g->kw; kj++) {
        int64_t row = ((int64_t)c * g->kh + ki) * g->kw + kj;
        FN(col2im_tap)(g, col + row * plane_out, ki, kj, x + c * plane_in);
      }
}

/* Forward of samples b0..b0+nb-1, one sample per thread at a time, each
   with its own columns (slot i of the workspace) and a one-thread gemm
   straight into y. */
static void FN(forward_samples)(const ebl_conv_geom *g, const REAL *x,
                                const REAL *w, const REAL *b, REAL *y,
                                int b0, int nb, REAL *col) {
  int m, k;
  conv_group_dims(g, &m, &k);
  int64_t plane = (int64_t)g->h_out * g->w_out;
  int64_t taps = (int64_t)g->c_in * g->kh * g->kw;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < nb; i++) {
    REAL *cols = col + i * taps * plane;
    REAL *out = y + (int64_t)(b0 + i) * g->c_out * plane;
    FN(im2col_sample)(g, x + (int64_t)(b0 + i) * g->c_in * g->h_in *
                      g->w_in, cols);
    for (int gi = 0; gi < g->groups; gi++)
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, (int)plane, k, 1,
           w + (int64_t)gi * m * k, k, cols + (int64_t)gi * k * plane,
           (int)plane, 0, out + (int64_t)gi * m * plane, (int)plane);
    for (int c = 0; b && c < g->c_out; c++)
      for (int64_t j = 0; j < plane; j++)
        out[c * plane + j] += b[c];
  }
}

/* Input VJP of samples b0..b0+nb-1, one sample per thread at a time. */
static void FN(input_vjp_samples)(const ebl_conv_geom *g, const REAL *dy,
                                  const REAL *w, REAL *dx, int b0, int nb,
                                  REAL *col) {
  int m, k;
  conv_group_dims(g, &m, &k);
  int64_t plane = (int64_t)g->h_out * g->w_out;
  int64_t taps = (int64_t)g->c_in * g->kh * g->kw;
#pragma omp parallel for schedule(dynamic)
  for (int i = 0; i < nb; i++) {
    REAL *cols = col + i * taps * plane;
    const REAL *grad = dy + (int64_t)(b0 + i) * g->c_out * plane;
    for (int gi = 0; gi < g->groups; gi++)
      GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, (int)plane, m, 1,
           w + (int64_t)gi * m * k, k, grad + (int64_t)gi * m * plane,
           (int)plane, 0, cols + (int64_t)gi * k * plane, (int)plane);
    FN(col2im_sample)(g, cols, dx + (int64_t)(b0 + i) * g->c_in *
                      g->h_in * g->w_in);
  }
}

/* y = conv2d(x, w) + b, a chunk of samples at a time. With at least a
   sample per thread, each thread takes whole samples (measured 10-20%
   faster at batch 128); else the columns of the chunk go through one
   threaded gemm per group: weights (m x k) times columns (k x nb*plane). */
void FN(ebl_conv2d_forward)(const ebl_conv_geom *g, const REAL *x,
                            const REAL *w, const REAL *b, REAL *y,
                            void *work) {
#ifdef CONV_ONEDNN
  if (ebl_onednn_conv(EBL_DNN_FORWARD, g, x, w, b, y, work,
                      conv_workspace(g, sizeof(REAL))))
    return;
#endif
  int chunk = conv_chunk(g, sizeof(REAL)), m, k;
  conv_group_dims(g, &m, &k);
  int64_t plane = (int64_t)g->h_out * g->w_out;
  REAL *col = work;
  REAL *rows = col + (int64_t)g->c_in * g->kh * g->kw * chunk * plane;

  for (int b0 = 0; b0 < g->n; b0 += chunk) {
    int nb = g->n - b0 < chunk ? g->n - b0 : chunk;
    int ld = (int)(nb * plane);
    if (nb > 1 && nb >= omp_get_max_threads()) {
      FN(forward_samples)(g, x, w, b, y, b0, nb, col);
      continue;
    }
    FN(im2col)(g, x, b0, nb, col);
    for (int gi = 0; gi < g->groups; gi++)
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, ld, k, 1,
           w + (int64_t)gi * m * k, k, col + (int64_t)gi * k * ld, ld, 0,
           rows + (int64_t)gi * m * ld, ld);
    FN(scatter_output)(g, rows, b, b0, nb, y);
  }
}

/* dx = conv2d's adjoint applied to dy, split like the forward: per
   group, the weights transposed (k x m) times dy (m x nb*plane) give
   columns, which col2im sums back onto the input. */
void FN(ebl_conv2d_input_vjp)(const ebl_conv_geom *g, const REAL *dy,
                              const REAL *w, REAL *dx, void *work) {
#ifdef CONV_ONEDNN
  if (ebl_onednn_conv(EBL_DNN_INPUT_VJP, g, dy, w, NULL, dx, work,
                      conv_workspace(g, sizeof(REAL))))
    return;
#endif
  int chunk = conv_chunk(g, sizeof(REAL)), m, k;
  conv_group_dims(g, &m, &k);
  int64_t plane = (int64_t)g->h_out * g->w_out;
  REAL *col = work;
  REAL *rows = col + (int64_t)g->c_in * g->kh * g->kw * chunk * plane;

  for (int b0 = 0; b0 < g->n; b0 += chunk) {
    int nb = g->n - b0 < chunk ? g->n - b0 : chunk;
    int ld = (int)(nb * plane);
    if (nb > 1 && nb >= omp_get_max_threads()) {
      FN(input_vjp_samples)(g, dy, w, dx, b0, nb, col);
      continue;
    }
    FN(gather_output)(g, dy, b0, nb, rows);
    for (int gi = 0; gi < g->groups; gi++)
      GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, k, ld, m, 1,
           w + (int64_t)gi * m * k, k, rows + (int64_t)gi * m * ld, ld, 0,
           col + (int64_t)gi * k * ld, ld);
    FN(col2im)(g, col, b0, nb, dx);
  }
}

/* dw = sum over samples of dy times the columns transposed: per group,
   (m x nb*plane) times (nb*plane x k), accumulated over chunks. */
void FN(ebl_conv2d_weight_vjp)(const ebl_conv_geom *g, const REAL *x,
                               const REAL *dy, REAL *dw, void *work) {
#ifdef CONV_ONEDNN
  if (ebl_onednn_conv(EBL_DNN_WEIGHT_VJP, g, x, dy, NULL, dw, work,
                      conv_workspace(g, sizeof(REAL))))
    return;
#endif
  int chunk = conv_chunk(g, sizeof(REAL)), m, k;
  conv_group_dims(g, &m, &k);
  int64_t plane = (int64_t)g->h_out * g->w_out;
  REAL *col = work;
  REAL *rows = col + (int64_t)g->c_in * g->kh * g->kw * chunk * plane;

  for (int b0 = 0; b0 < g->n; b0 += chunk) {
    int nb = g->n - b0 < chunk ? g->n - b0 : chunk;
    int ld = (int)(nb * plane);
    REAL keep = b0 == 0 ? 0 : 1;
    FN(im2col)(g, x, b0, nb, col);
    FN(gather_output)(g, dy, b0, nb, rows);
    for (int gi = 0; gi < g->groups; gi++)
      GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, m, k, ld, 1,
           rows + (int64_t)gi * m * ld, ld, col + (int64_t)gi * k * ld, ld,
           keep, dw + (int64_t)gi * m * k, k);
  }
}

/* Sums the planes of `channels` channels over the batch, in double:
   out[c] = sum over n, i of v[n][c][i]. */
static void FN(channel_sums)(int n, int channels, int64_t plane,
                             const REAL *v, REAL *out) {
#pragma omp parallel for schedule(static)
  for (int c = 0; c < channels; c++) {
    double sum = 0;
    for (int b = 0; b < n; b++) {
      const REAL *p = v + ((int64_t)b * channels + c) * plane;
      for (int64_t i = 0; i < plane; i++)
        sum += p[i];
    }
    out[c] = (REAL)sum;
  }
}

/* db[c] = sum of dy over samples and positions of channel c. */
void FN(ebl_conv2d_bias_vjp)(const ebl_conv_geom *g, const REAL *dy,
                             REAL *db) {
  FN(channel_sums)(g->n, g->c_out, (int64_t)g->h_out * g->w_out, dy, db);
}

/* ---- conv_transpose2d in terms of the conv above ---- */

/* Adds b[c] to every entry of channel c of v (n, channels, plane). */
static void FN(add_channel_bias)(int n, int channels, int64_t plane,
                                 const REAL *b, REAL *v) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int i = 0; i < n; i++)
    for (int c = 0; c < channels; c++) {
      REAL *p = v + ((int64_t)i * channels + c) * plane;
      for (int64_t j = 0; j < plane; j++)
        p[j] += b[c];
    }
}

/* y = conv_transpose2d(x, w) + b: the conv's input VJP applied to x,
   then the bias of each of the c_out_t = g->c_in channels. */
void FN(ebl_conv_transpose2d_forward)(const ebl_conv_geom *g,
                                      const REAL *x, const REAL *w,
                                      const REAL *b, REAL *y, void *work) {
  FN(ebl_conv2d_input_vjp)(g, x, w, y, work);
  if (b)
    FN(add_channel_bias)(g->n, g->c_in, (int64_t)g->h_in * g->w_in, b, y);
}

/* The adjoint of the transposed conv is the conv itself. */
void FN(ebl_conv_transpose2d_input_vjp)(const ebl_conv_geom *g,
                                        const REAL *dy, const REAL *w,
                                        REAL *dx, void *work) {
  FN(ebl_conv2d_forward)(g, dy, w, NULL, dx, work);
}

/* d<dy, conv_transpose(x, w)>/dw = d<conv(dy, w), x>/dw: the conv's
   weight VJP with dy as its input and x as its cotangent. */
void FN(ebl_conv_transpose2d_weight_vjp)(const ebl_conv_geom *g,
                                         const REAL *x, const REAL *dy,
                                         REAL *dw, void *work) {
  FN(ebl_conv2d_weight_vjp)(g, dy, x, dw, work);
}

/* db[c] = sum of dy over samples and positions, c_out_t channels. */
void FN(ebl_conv_transpose2d_bias_vjp)(const ebl_conv_geom *g,
                                       const REAL *dy, REAL *db) {
  FN(channel_sums)(g->n, g->c_in, (int64_t)g->h_in * g->w_in, dy, db);
}

/* ---- pooling ---- */

/* Max over one window of a plane, first maximum winning; a NaN wins over
   any number. Writes the winner's flat index; taps in padding are
   skipped (every window holds at least one input, see pool_geom). */
static REAL FN(window_max)(const ebl_pool_geom *g, const REAL *plane,
                           int oh, int ow, int32_t *where) {
  int h_lo, h_hi, w_lo, w_hi;
  pool_window(g, oh, ow, &h_lo, &h_hi, &w_lo, &w_hi);
  int32_t best_at = h_lo * g->w_in + w_lo;
  REAL best = plane[best_at];
  for (int ih = h_lo; ih < h_hi; ih++)
    for (int iw = w_lo; iw < w_hi; iw++) {
      int32_t at = ih * g->w_in + iw;
      REAL v = plane[at];
      if (v > best || (isnan(v) && !isnan(best))) {
        best = v;
        best_at = at;
      }
    }
  *where = best_at;
  return best;
}

/* Max pooling, one (sample, channel) plane per task. */
void FN(ebl_max_pool2d_forward)(const ebl_pool_geom *g, const REAL *x,
                                REAL *y, int32_t *argmax) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  int64_t planes = (int64_t)g->n * g->c;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    const REAL *src = x + p * plane_in;
    REAL *dst = y + p * plane_out;
    int32_t *at = argmax + p * plane_out;
    for (int oh = 0; oh < g->h_out; oh++)
      for (int ow = 0; ow < g->w_out; ow++) {
        int64_t o = (int64_t)oh * g->w_out + ow;
        dst[o] = FN(window_max)(g, src, oh, ow, at + o);
      }
  }
}

/* dx = 0, then each dy entry added to the input that won its window. */
void FN(ebl_max_pool2d_vjp)(const ebl_pool_geom *g, const REAL *dy,
                            const int32_t *argmax, REAL *dx) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  int64_t planes = (int64_t)g->n * g->c;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    REAL *dst = dx + p * plane_in;
    memset(dst, 0, sizeof(REAL) * plane_in);
    for (int64_t o = 0; o < plane_out; o++)
      dst[argmax[p * plane_out + o]] += dy[p * plane_out + o];
  }
}

/* Average pooling: window sums (padding adds nothing) over kh*kw. */
void FN(ebl_avg_pool2d_forward)(const ebl_pool_geom *g, const REAL *x,
                                REAL *y) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t planes = (int64_t)g->n * g->c;
  REAL scale = (REAL)1 / ((REAL)g->kh * g->kw);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    const REAL *src = x + p * plane_in;
    REAL *dst = y + p * g->h_out * g->w_out;
    for (int oh = 0; oh < g->h_out; oh++)
      for (int ow = 0; ow < g->w_out; ow++) {
        int h_lo, h_hi, w_lo, w_hi;
        pool_window(g, oh, ow, &h_lo, &h_hi, &w_lo, &w_hi);
        REAL sum = 0;
        for (int ih = h_lo; ih < h_hi; ih++)
          for (int iw = w_lo; iw < w_hi; iw++)
            sum += src[ih * g->w_in + iw];
        dst[oh * g->w_out + ow] = sum * scale;
      }
  }
}

/* dx = 0, then dy/(kh*kw) added to every input of each window. */
void FN(ebl_avg_pool2d_vjp)(const ebl_pool_geom *g, const REAL *dy,
                            REAL *dx) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t planes = (int64_t)g->n * g->c;
  REAL scale = (REAL)1 / ((REAL)g->kh * g->kw);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; p++) {
    const REAL *src = dy + p * g->h_out * g->w_out;
    REAL *dst = dx + p * plane_in;
    memset(dst, 0, sizeof(REAL) * plane_in);
    for (int oh = 0; oh < g->h_out; oh++)
      for (int ow = 0; ow < g->w_out; ow++) {
        int h_lo, h_hi, w_lo, w_hi;
        pool_window(g, oh, ow, &h_lo, &h_hi, &w_lo, &w_hi);
        REAL share = src[oh * g->w_out + ow] * scale;
        for (int ih = h_lo; ih < h_hi; ih++)
          for (int iw = w_lo; iw < w_hi; iw++)
            dst[ih * g->w_in + iw] += share;
      }
  }
}

/* ---- losses ---- */

/* Batch mean of 1/2 ||x - t||^2 per row; grad = (x - t)/n. The sum
   runs in fixed blocks so that it does not depend on the thread count. */
double FN(ebl_mse_loss)(int n, int k, const REAL *x, const REAL *t,
                        REAL *grad) {
  if (n <= 0 || k <= 0)
    return NAN;
  int64_t size = (int64_t)n * k;
  double part[LOSS_BLOCKS];
#pragma omp parallel for schedule(static) if (size > 65536)
  for (int blk = 0; blk < LOSS_BLOCKS; blk++) {
    double sum = 0;
    for (int64_t i = size * blk / LOSS_BLOCKS;
         i < size * (blk + 1) / LOSS_BLOCKS; i++) {
      double diff = (double)x[i] - (double)t[i];
      sum += diff * diff;
      if (grad)
        grad[i] = (REAL)(diff / n);
    }
    part[blk] = sum;
  }
  return 0.5 * sum_parts(part) / n;
}

/* log sum_j exp(v_j), shifted by the maximum so that nothing overflows;
   fills prob with the softmax when prob is not NULL, from the same
   exponentials (one exp per element). */
static double FN(log_sum_exp)(int k, const REAL *v, REAL *prob) {
  double top = -INFINITY;
  for (int j = 0; j < k; j++)
    if (v[j] > top)
      top = v[j];
  if (!isfinite(top))
    top = 0;
  double total = 0;
  for (int j = 0; j < k; j++) {
    double e = exp((double)v[j] - top);
    total += e;
    if (prob)
      prob[j] = (REAL)e;
  }
  double lse = top + log(total);
  if (prob)
    for (int j = 0; j < k; j++)
      prob[j] = (REAL)((double)prob[j] / total);
  return lse;
}

/* Cross-entropy of one row against an integer label; grad (may be NULL)
   gets (softmax - onehot)/n. An invalid label gives NaN everywhere. */
static double FN(ce_label_row)(int n, int k, const REAL *v, int32_t label,
                               REAL *grad) {
  if (label < 0 || label >= k) {
    for (int j = 0; grad && j < k; j++)
      grad[j] = (REAL)NAN;
    return NAN;
  }
  double lse = FN(log_sum_exp)(k, v, grad);
  for (int j = 0; grad && j < k; j++)
    grad[j] = (REAL)(((double)grad[j] - (j == label)) / n);
  return lse - v[label];
}

/* Cross-entropy of one row against soft targets t: sum_j t_j (lse - v_j),
   zero targets contributing nothing; grad gets (softmax*sum(t) - t)/n. */
static double FN(ce_soft_row)(int n, int k, const REAL *v, const REAL *t,
                              REAL *grad) {
  double lse = FN(log_sum_exp)(k, v, grad), loss = 0, mass = 0;
  for (int j = 0; j < k; j++)
    if (t[j] != 0) {
      loss += (double)t[j] * (lse - v[j]);
      mass += t[j];
    }
  for (int j = 0; grad && j < k; j++)
    grad[j] = (REAL)(((double)grad[j] * mass - t[j]) / n);
  return loss;
}

/* Batch mean of the rows' cross-entropies, summed in fixed blocks of
   rows so that the result does not depend on the thread count. */
double FN(ebl_cross_entropy)(int n, int k, const REAL *logits,
                             const int32_t *labels, const REAL *target,
                             REAL *grad) {
  if (n <= 0 || k <= 0 || (!labels && !target))
    return NAN;
  double part[LOSS_BLOCKS];
#pragma omp parallel for schedule(static) if ((int64_t)n * k > 16384)
  for (int blk = 0; blk < LOSS_BLOCKS; blk++) {
    double sum = 0;
    for (int i = (int)((int64_t)n * blk / LOSS_BLOCKS);
         i < (int)((int64_t)n * (blk + 1) / LOSS_BLOCKS); i++) {
      const REAL *v = logits + (int64_t)i * k;
      REAL *gi = grad ? grad + (int64_t)i * k : NULL;
      if (labels)
        sum += FN(ce_label_row)(n, k, v, labels[i], gi);
      else
        sum += FN(ce_soft_row)(n, k, v, target + (int64_t)i * k, gi);
    }
    part[blk] = sum;
  }
  return sum_parts(part) / n;
}

#undef FN
#undef FN_EXPAND
#undef FN_JOIN

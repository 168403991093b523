/* Tests of the CPU layer kernels (src/cpu/layers.h): forwards against
   naive loops in double, VJPs against central finite differences in
   double, float kernels against double ones, geometry errors. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/layers.h"
#include "tap.h"

#define FD_EPS 1e-6
#define FD_TOL 1e-7
#define F32_TOL 1e-5

/* ---- data helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Uniform in [-1, 1) from a splitmix64 stream. */
static double uniform(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) / (double)(1ull << 52) - 1.0;
}

static double *random_array(int64_t count) {
  double *v = malloc(sizeof(double) * (count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++)
    v[i] = uniform();
  return v;
}

static float *to_f32(const double *v, int64_t count) {
  float *f = malloc(sizeof(float) * (count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++)
    f[i] = (float)v[i];
  return f;
}

/* Output arrays start as NaN, so that a kernel must overwrite them. */
static double *nan_array(int64_t count) {
  double *v = malloc(sizeof(double) * (count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++)
    v[i] = NAN;
  return v;
}

static float *nan_array_f32(int64_t count) {
  float *v = malloc(sizeof(float) * (count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++)
    v[i] = NAN;
  return v;
}

/* A workspace full of NaN bit patterns: kernels must not read stale
   scratch. */
static void *nan_work(size_t bytes) {
  void *work = malloc(bytes > 0 ? bytes : 1);
  memset(work, 0xff, bytes);
  return work;
}

static double dot(const double *a, const double *b, int64_t count) {
  double sum = 0;
  for (int64_t i = 0; i < count; i++)
    sum += a[i] * b[i];
  return sum;
}

/* max |a - b| / max |b|: the error of a against the reference b. */
static double rel_err(const double *a, const double *b, int64_t count) {
  double err = 0, scale = 1e-300;
  for (int64_t i = 0; i < count; i++) {
    err = fmax(err, fabs(a[i] - b[i]));
    scale = fmax(scale, fabs(b[i]));
  }
  return err / scale;
}

/* Same, for float results against a double reference. */
static double rel_err_f32(const float *a, const double *b, int64_t count) {
  double err = 0, scale = 1e-300;
  for (int64_t i = 0; i < count; i++) {
    err = fmax(err, fabs((double)a[i] - b[i]));
    scale = fmax(scale, fabs(b[i]));
  }
  return err / scale;
}

/* ---- finite differences ---- */

/* A scalar function of an array that the checker perturbs in place. */
typedef double (*scalar_fn)(void *ctx);

/* Largest error of grad against central differences of f over all
   entries of v: |fd - grad| / max(1, |grad|). */
static double fd_error(scalar_fn f, void *ctx, double *v, int64_t count,
                       const double *grad) {
  double worst = 0;
  for (int64_t i = 0; i < count; i++) {
    double saved = v[i];
    v[i] = saved + FD_EPS;
    double up = f(ctx);
    v[i] = saved - FD_EPS;
    double down = f(ctx);
    v[i] = saved;
    double fd = (up - down) / (2 * FD_EPS);
    worst = fmax(worst, fabs(fd - grad[i]) / fmax(1.0, fabs(grad[i])));
  }
  return worst;
}

/* ---- conv2d: naive references ---- */

static int64_t conv_x_size(const ebl_conv_geom *g) {
  return (int64_t)g->n * g->c_in * g->h_in * g->w_in;
}

static int64_t conv_y_size(const ebl_conv_geom *g) {
  return (int64_t)g->n * g->c_out * g->h_out * g->w_out;
}

static int64_t conv_w_size(const ebl_conv_geom *g) {
  return (int64_t)g->c_out * (g->c_in / g->groups) * g->kh * g->kw;
}

/* One output of conv2d by its definition, bias excluded. */
static double ref_conv_at(const ebl_conv_geom *g, const double *x,
                          const double *w, int n, int co, int oh, int ow) {
  int cig = g->c_in / g->groups, grp = co / (g->c_out / g->groups);
  double sum = 0;
  for (int cl = 0; cl < cig; cl++)
    for (int ki = 0; ki < g->kh; ki++)
      for (int kj = 0; kj < g->kw; kj++) {
        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
        if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in)
          continue;
        int ci = grp * cig + cl;
        sum += x[(((int64_t)n * g->c_in + ci) * g->h_in + ih) * g->w_in +
                 iw] *
               w[(((int64_t)co * cig + cl) * g->kh + ki) * g->kw + kj];
      }
  return sum;
}

static void ref_conv(const ebl_conv_geom *g, const double *x,
                     const double *w, const double *b, double *y) {
  int64_t i = 0;
  for (int n = 0; n < g->n; n++)
    for (int co = 0; co < g->c_out; co++)
      for (int oh = 0; oh < g->h_out; oh++)
        for (int ow = 0; ow < g->w_out; ow++)
          y[i++] = ref_conv_at(g, x, w, n, co, oh, ow) + (b ? b[co] : 0);
}

/* Parameters of a transposed conv as the user gives them. */
typedef struct tconv {
  int n, c_in, h_in, w_in, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int oph, opw;
} tconv;

/* conv_transpose2d by its definition: each input scatters its kernel,
   scaled, onto the output; w is (c_in, c_out/groups, kh, kw). */
static void ref_tconv(const tconv *t, int h_out, int w_out,
                      const double *x, const double *w, const double *b,
                      double *y) {
  int cig = t->c_in / t->groups, cog = t->c_out / t->groups;
  int64_t plane = (int64_t)h_out * w_out;
  for (int64_t i = 0; i < t->n * t->c_out * plane; i++)
    y[i] = b ? b[i / plane % t->c_out] : 0;
  for (int n = 0; n < t->n; n++)
    for (int ci = 0; ci < t->c_in; ci++)
      for (int ih = 0; ih < t->h_in; ih++)
        for (int iw = 0; iw < t->w_in; iw++)
          for (int cl = 0; cl < cog; cl++)
            for (int ki = 0; ki < t->kh; ki++)
              for (int kj = 0; kj < t->kw; kj++) {
                int oh = ih * t->sh - t->ph + ki * t->dh;
                int ow = iw * t->sw - t->pw + kj * t->dw;
                if (oh < 0 || oh >= h_out || ow < 0 || ow >= w_out)
                  continue;
                int co = ci / cig * cog + cl;
                y[((int64_t)n * t->c_out + co) * plane + oh * w_out + ow] +=
                  x[(((int64_t)n * t->c_in + ci) * t->h_in + ih) * t->w_in +
                    iw] *
                  w[(((int64_t)ci * cog + cl) * t->kh + ki) * t->kw + kj];
              }
}

/* ---- conv2d: finite-difference contexts ---- */

/* f = <r, conv2d(x, w) + b> (or of the transpose), with every operand
   reachable so that the checker can perturb any of them. */
typedef struct conv_probe {
  const ebl_conv_geom *g;
  double *x, *w, *b, *r, *out;
  void *work;
  int transpose;
  int64_t out_size;
} conv_probe;

static double conv_probe_eval(void *ctx) {
  conv_probe *p = ctx;
  if (p->transpose)
    ebl_conv_transpose2d_forward_f64(p->g, p->x, p->w, p->b, p->out,
                                     p->work);
  else
    ebl_conv2d_forward_f64(p->g, p->x, p->w, p->b, p->out, p->work);
  return dot(p->r, p->out, p->out_size);
}

/* ---- conv2d tests ---- */

typedef struct conv_case {
  int n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups;
} conv_case;

static ebl_conv_geom geom_of(const conv_case *c) {
  ebl_conv_geom g = {.n = c->n, .c_in = c->c_in, .h_in = c->h,
                     .w_in = c->w, .c_out = c->c_out, .kh = c->kh,
                     .kw = c->kw, .stride_h = c->sh, .stride_w = c->sw,
                     .pad_h = c->ph, .pad_w = c->pw, .dil_h = c->dh,
                     .dil_w = c->dw, .groups = c->groups};
  return g;
}

/* Operands of one conv case in double and float, with workspaces. */
typedef struct conv_data {
  ebl_conv_geom g;
  int64_t xs, ys, ws;
  double *x, *w, *b, *r;
  float *xf, *wf, *bf, *rf;
  void *work, *workf;
} conv_data;

static void conv_data_init(conv_data *d, const ebl_conv_geom *g) {
  d->g = *g;
  d->xs = conv_x_size(g);
  d->ys = conv_y_size(g);
  d->ws = conv_w_size(g);
  d->x = random_array(d->xs);
  d->w = random_array(d->ws);
  d->b = random_array(g->c_out);
  d->r = random_array(d->ys);
  d->xf = to_f32(d->x, d->xs);
  d->wf = to_f32(d->w, d->ws);
  d->bf = to_f32(d->b, g->c_out);
  d->rf = to_f32(d->r, d->ys);
  d->work = nan_work(ebl_conv2d_workspace_f64(g));
  d->workf = nan_work(ebl_conv2d_workspace_f32(g));
}

static void conv_data_free(conv_data *d) {
  double *dv[] = {d->x, d->w, d->b, d->r};
  float *fv[] = {d->xf, d->wf, d->bf, d->rf};
  for (int i = 0; i < 4; i++) {
    free(dv[i]);
    free(fv[i]);
  }
  free(d->work);
  free(d->workf);
}

/* Forward in double against the naive loops. */
static void check_conv_forward(conv_data *d, const char *name) {
  double *y = nan_array(d->ys);
  double *ref = nan_array(d->ys);
  ebl_conv2d_forward_f64(&d->g, d->x, d->w, d->b, y, d->work);
  ref_conv(&d->g, d->x, d->w, d->b, ref);
  double err = rel_err(y, ref, d->ys);
  CHECK(err <= 1e-13, "conv2d forward f64 %s matches naive (err %.2g)",
        name, err);
  free(y);
  free(ref);
}

/* Input, weight and bias VJPs in double against finite differences of
   f = <r, conv2d(x, w) + b>. */
static void check_conv_vjps_fd(conv_data *d, const char *name) {
  double *out = nan_array(d->ys);
  conv_probe p = {&d->g, d->x, d->w, d->b, d->r, out, d->work, 0, d->ys};
  double *dx = nan_array(d->xs);
  double *dw = nan_array(d->ws);
  double *db = nan_array(d->g.c_out);

  ebl_conv2d_input_vjp_f64(&d->g, d->r, d->w, dx, d->work);
  double err = fd_error(conv_probe_eval, &p, d->x, d->xs, dx);
  CHECK(err <= FD_TOL, "conv2d input VJP %s vs finite differences "
        "(err %.2g)", name, err);
  ebl_conv2d_weight_vjp_f64(&d->g, d->x, d->r, dw, d->work);
  err = fd_error(conv_probe_eval, &p, d->w, d->ws, dw);
  CHECK(err <= FD_TOL, "conv2d weight VJP %s vs finite differences "
        "(err %.2g)", name, err);
  ebl_conv2d_bias_vjp_f64(&d->g, d->r, db);
  err = fd_error(conv_probe_eval, &p, d->b, d->g.c_out, db);
  CHECK(err <= FD_TOL, "conv2d bias VJP %s vs finite differences "
        "(err %.2g)", name, err);
  free(out);
  free(dx);
  free(dw);
  free(db);
}

/* The float kernels (through `path`: oneDNN or im2col) against the
   double ones: forward, input, weight and bias VJPs. */
static void check_conv_f32(conv_data *d, const char *name,
                           const char *path) {
  double *y = nan_array(d->ys);
  double *dx = nan_array(d->xs);
  double *dw = nan_array(d->ws);
  float *yf = nan_array_f32(d->ys);
  float *dxf = nan_array_f32(d->xs);
  float *dwf = nan_array_f32(d->ws);
  ebl_conv2d_forward_f64(&d->g, d->x, d->w, d->b, y, d->work);
  ebl_conv2d_forward_f32(&d->g, d->xf, d->wf, d->bf, yf, d->workf);
  ebl_conv2d_input_vjp_f64(&d->g, d->r, d->w, dx, d->work);
  ebl_conv2d_input_vjp_f32(&d->g, d->rf, d->wf, dxf, d->workf);
  ebl_conv2d_weight_vjp_f64(&d->g, d->x, d->r, dw, d->work);
  ebl_conv2d_weight_vjp_f32(&d->g, d->xf, d->rf, dwf, d->workf);
  double ey = rel_err_f32(yf, y, d->ys), ex = rel_err_f32(dxf, dx, d->xs);
  double ew = rel_err_f32(dwf, dw, d->ws);
  CHECK(ey <= F32_TOL && ex <= F32_TOL && ew <= F32_TOL, "conv2d f32 "
        "(%s) %s matches f64 (forward err %.2g, input VJP %.2g, weight "
        "VJP %.2g)", path, name, ey, ex, ew);
  free(y);
  free(dx);
  free(dw);
  free(yf);
  free(dxf);
  free(dwf);
}

/* The float bias VJP against the double one. */
static void check_conv_bias_f32(conv_data *d, const char *name) {
  double db[64];
  float dbf[64];
  ebl_conv2d_bias_vjp_f64(&d->g, d->r, db);
  ebl_conv2d_bias_vjp_f32(&d->g, d->rf, dbf);
  double eb = rel_err_f32(dbf, db, d->g.c_out);
  CHECK(eb <= F32_TOL, "conv2d bias VJP f32 %s matches f64 (err %.2g)",
        name, eb);
}

static const conv_case conv_cases[] = {
  {2, 3, 5, 5, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1},
  {2, 4, 7, 6, 6, 3, 2, 2, 1, 1, 0, 1, 1, 2},
  {1, 2, 8, 7, 3, 2, 3, 1, 2, 2, 1, 2, 1, 1},
  {3, 4, 6, 9, 4, 3, 3, 2, 2, 1, 2, 2, 2, 2},
  {2, 2, 5, 4, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1},
  {1, 6, 9, 5, 4, 2, 2, 2, 1, 0, 1, 1, 2, 2},
  {2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4},
  {1, 2, 10, 11, 2, 4, 3, 3, 2, 2, 1, 1, 2, 1},
};

static void test_conv_cases(void) {
  int count = sizeof conv_cases / sizeof conv_cases[0];
  for (int i = 0; i < count; i++) {
    const conv_case *c = &conv_cases[i];
    char name[160], msg[200];
    snprintf(name, sizeof name, "[n%d c%d %dx%d -> c%d k%dx%d s%dx%d "
             "p%dx%d d%dx%d g%d]", c->n, c->c_in, c->h, c->w, c->c_out,
             c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->dh, c->dw,
             c->groups);
    ebl_conv_geom g = geom_of(c);
    if (ebl_conv_geom_finish(&g, msg, sizeof msg) != 0) {
      CHECK(0, "conv2d geometry %s accepted: %s", name, msg);
      continue;
    }
    conv_data d;
    conv_data_init(&d, &g);
    check_conv_forward(&d, name);
    check_conv_vjps_fd(&d, name);
    check_conv_f32(&d, name, "oneDNN if it takes it");
    ebl_conv2d_set_onednn(0);
    check_conv_f32(&d, name, "im2col");
    ebl_conv2d_set_onednn(1);
    check_conv_bias_f32(&d, name);
    conv_data_free(&d);
  }
}

/* A conv computed by hand: w = [[1, 0], [0, -1]] on x = 1..9 (3x3)
   gives x[i][j] - x[i+1][j+1] = -4 everywhere, plus the bias 0.5. */
static void test_conv_by_hand(void) {
  ebl_conv_geom g = {.n = 1, .c_in = 1, .h_in = 3, .w_in = 3, .c_out = 1,
                     .kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1,
                     .dil_h = 1, .dil_w = 1, .groups = 1};
  char msg[200];
  int rc = ebl_conv_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == 0 && g.h_out == 2 && g.w_out == 2, "conv2d 3x3 by 2x2 "
        "gives 2x2 (got %dx%d)", g.h_out, g.w_out);
  double x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 0, 0, -1};
  double b = 0.5, y[4];
  void *work = nan_work(ebl_conv2d_workspace_f64(&g));
  ebl_conv2d_forward_f64(&g, x, w, &b, y, work);
  CHECK(y[0] == -3.5 && y[1] == -3.5 && y[2] == -3.5 && y[3] == -3.5,
        "conv2d by hand: all -3.5 (got %g %g %g %g)", y[0], y[1], y[2],
        y[3]);
  free(work);
}

/* Input, weight and bias VJPs of a conv against direct loops, for a
   batch large enough that the kernels work in several chunks. */
static void ref_conv_vjps(const ebl_conv_geom *g, const double *x,
                          const double *w, const double *dy, double *dx,
                          double *dw) {
  int cig = g->c_in / g->groups, cog = g->c_out / g->groups;
  memset(dx, 0, sizeof(double) * conv_x_size(g));
  memset(dw, 0, sizeof(double) * conv_w_size(g));
  for (int n = 0; n < g->n; n++)
    for (int co = 0; co < g->c_out; co++)
      for (int oh = 0; oh < g->h_out; oh++)
        for (int ow = 0; ow < g->w_out; ow++) {
          double r = dy[(((int64_t)n * g->c_out + co) * g->h_out + oh) *
                        g->w_out + ow];
          for (int cl = 0; cl < cig; cl++)
            for (int ki = 0; ki < g->kh; ki++)
              for (int kj = 0; kj < g->kw; kj++) {
                int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in)
                  continue;
                int64_t xi = (((int64_t)n * g->c_in + co / cog * cig + cl) *
                              g->h_in + ih) * g->w_in + iw;
                int64_t wi = (((int64_t)co * cig + cl) * g->kh + ki) *
                             g->kw + kj;
                dx[xi] += r * w[wi];
                dw[wi] += r * x[xi];
              }
        }
}

static void test_conv_chunks(void) {
  ebl_conv_geom g = {.n = 5, .c_in = 64, .h_in = 40, .w_in = 40,
                     .c_out = 6, .kh = 3, .kw = 3, .stride_h = 1,
                     .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1,
                     .dil_w = 1, .groups = 2};
  char msg[200];
  ebl_conv_geom_finish(&g, msg, sizeof msg);
  size_t per_sample = sizeof(double) * g.h_out * g.w_out *
                      (g.c_in * g.kh * g.kw + g.c_out);
  size_t work_bytes = ebl_conv2d_workspace_f64(&g);
  CHECK(work_bytes < g.n * per_sample, "conv2d workspace of a large "
        "batch holds part of it (%zu of %zu bytes)", work_bytes,
        g.n * per_sample);

  conv_data d;
  conv_data_init(&d, &g);
  double *y = nan_array(d.ys), *ref = nan_array(d.ys);
  double *dx = nan_array(d.xs), *dw = nan_array(d.ws);
  double *rdx = nan_array(d.xs), *rdw = nan_array(d.ws);
  ebl_conv2d_forward_f64(&g, d.x, d.w, d.b, y, d.work);
  ref_conv(&g, d.x, d.w, d.b, ref);
  ebl_conv2d_input_vjp_f64(&g, d.r, d.w, dx, d.work);
  ebl_conv2d_weight_vjp_f64(&g, d.x, d.r, dw, d.work);
  ref_conv_vjps(&g, d.x, d.w, d.r, rdx, rdw);
  double ey = rel_err(y, ref, d.ys), ex = rel_err(dx, rdx, d.xs);
  double ew = rel_err(dw, rdw, d.ws);
  CHECK(ey <= 1e-13 && ex <= 1e-13 && ew <= 1e-13, "conv2d in chunks: "
        "forward, input and weight VJPs match direct loops (err %.2g, "
        "%.2g, %.2g)", ey, ex, ew);
  free(y);
  free(ref);
  free(dx);
  free(dw);
  free(rdx);
  free(rdw);
  conv_data_free(&d);
}

/* A float workspace sized at one thread count still serves the kernels
   at another (oneDNN's needs depend on it; the kernels then fall back to
   im2col when they must). */
static void test_conv_thread_change(void) {
  ebl_conv_geom g = geom_of(&conv_cases[1]);
  char msg[200];
  ebl_conv_geom_finish(&g, msg, sizeof msg);
  int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  conv_data d;
  conv_data_init(&d, &g);
  omp_set_num_threads(threads > 1 ? threads : 2);
  check_conv_f32(&d, "[workspace sized at 1 thread]", "oneDNN if it fits");
  omp_set_num_threads(threads);
  conv_data_free(&d);
}

/* oneDNN takes common geometries (plain 3x3, and strided, dilated,
   grouped), and im2col is used when it is switched off. */
static void test_onednn_takes(void) {
  ebl_conv_geom plain = {.n = 4, .c_in = 16, .h_in = 12, .w_in = 12,
                         .c_out = 16, .kh = 3, .kw = 3, .stride_h = 1,
                         .stride_w = 1, .pad_h = 1, .pad_w = 1,
                         .dil_h = 1, .dil_w = 1, .groups = 1};
  ebl_conv_geom odd = geom_of(&conv_cases[3]);
  char msg[200];
  ebl_conv_geom_finish(&plain, msg, sizeof msg);
  ebl_conv_geom_finish(&odd, msg, sizeof msg);
  if (!ebl_conv2d_set_onednn(1)) {
    SKIP("built without oneDNN", "conv2d f32 runs through oneDNN");
    return;
  }
  CHECK(ebl_conv2d_uses_onednn(&plain) && ebl_conv2d_uses_onednn(&odd),
        "conv2d f32 runs through oneDNN (3x3 pad 1; strided, dilated, "
        "grouped)");
  int was = ebl_conv2d_set_onednn(0);
  CHECK(was == 1 && !ebl_conv2d_uses_onednn(&plain), "conv2d f32 uses "
        "im2col once oneDNN is switched off");
  ebl_conv2d_set_onednn(1);
}

/* ---- conv_transpose2d ---- */

static const tconv tconv_cases[] = {
  {2, 4, 4, 5, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
  {1, 4, 5, 3, 6, 2, 3, 1, 2, 0, 1, 2, 1, 2, 1, 1},
  {2, 2, 3, 4, 2, 3, 2, 3, 1, 2, 0, 1, 2, 1, 2, 0},
  {1, 6, 4, 4, 4, 3, 3, 2, 2, 1, 1, 2, 2, 2, 1, 1},
  {2, 3, 5, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 3, 0, 0},
};

/* Forward against naive scatter loops; the adjoint identity with the
   conv sharing its weight. */
static void check_tconv_forward(const tconv *t, conv_data *d,
                                const char *name) {
  const ebl_conv_geom *g = &d->g;
  double *y = nan_array(d->xs);
  double *ref = nan_array(d->xs);
  double *bt = random_array(t->c_out);
  ebl_conv_transpose2d_forward_f64(g, d->r, d->w, bt, y, d->work);
  ref_tconv(t, g->h_in, g->w_in, d->r, d->w, bt, ref);
  double err = rel_err(y, ref, d->xs);
  CHECK(err <= 1e-13, "conv_transpose2d forward f64 %s matches naive "
        "(err %.2g)", name, err);

  double *cy = nan_array(d->ys);
  ebl_conv2d_forward_f64(g, d->x, d->w, NULL, cy, d->work);
  ebl_conv_transpose2d_forward_f64(g, d->r, d->w, NULL, y, d->work);
  double lhs = dot(cy, d->r, d->ys), rhs = dot(d->x, y, d->xs);
  CHECK(fabs(lhs - rhs) <= 1e-12 * fabs(lhs), "<conv(x), y> = <x, "
        "conv_transpose(y)> %s (%.17g vs %.17g)", name, lhs, rhs);

  float *btf = to_f32(bt, t->c_out), *yf = nan_array_f32(d->xs);
  ebl_conv_transpose2d_forward_f64(g, d->r, d->w, bt, y, d->work);
  for (int onednn = 1; onednn >= 0; onednn--) {
    ebl_conv2d_set_onednn(onednn);
    ebl_conv_transpose2d_forward_f32(g, d->rf, d->wf, btf, yf, d->workf);
    err = rel_err_f32(yf, y, d->xs);
    CHECK(err <= F32_TOL, "conv_transpose2d forward f32 (%s) %s matches "
          "f64 (err %.2g)", onednn ? "oneDNN if it takes it" : "im2col",
          name, err);
  }
  ebl_conv2d_set_onednn(1);
  free(y);
  free(ref);
  free(bt);
  free(cy);
  free(btf);
  free(yf);
}

/* VJPs of f = <s, conv_transpose2d(x_t, w) + b> by finite differences:
   the transpose's input is d->r (conv output shape), its output has the
   conv input's shape, and s is d->x used as the cotangent. */
static void check_tconv_vjps(const tconv *t, conv_data *d,
                             const char *name) {
  const ebl_conv_geom *g = &d->g;
  double *out = nan_array(d->xs);
  double *bt = random_array(t->c_out);
  conv_probe p = {g, d->r, d->w, bt, d->x, out, d->work, 1, d->xs};
  double *dxt = nan_array(d->ys);
  double *dw = nan_array(d->ws);
  double *db = nan_array(t->c_out);

  ebl_conv_transpose2d_input_vjp_f64(g, d->x, d->w, dxt, d->work);
  double err = fd_error(conv_probe_eval, &p, d->r, d->ys, dxt);
  CHECK(err <= FD_TOL, "conv_transpose2d input VJP %s vs finite "
        "differences (err %.2g)", name, err);
  ebl_conv_transpose2d_weight_vjp_f64(g, d->r, d->x, dw, d->work);
  err = fd_error(conv_probe_eval, &p, d->w, d->ws, dw);
  CHECK(err <= FD_TOL, "conv_transpose2d weight VJP %s vs finite "
        "differences (err %.2g)", name, err);
  ebl_conv_transpose2d_bias_vjp_f64(g, d->x, db);
  err = fd_error(conv_probe_eval, &p, bt, t->c_out, db);
  CHECK(err <= FD_TOL, "conv_transpose2d bias VJP %s vs finite "
        "differences (err %.2g)", name, err);
  free(out);
  free(bt);
  free(dxt);
  free(dw);
  free(db);
}

static void test_tconv_cases(void) {
  int count = sizeof tconv_cases / sizeof tconv_cases[0];
  for (int i = 0; i < count; i++) {
    const tconv *t = &tconv_cases[i];
    char name[160], msg[200];
    snprintf(name, sizeof name, "[n%d c%d %dx%d -> c%d k%dx%d s%dx%d "
             "p%dx%d d%dx%d g%d op%dx%d]", t->n, t->c_in, t->h_in,
             t->w_in, t->c_out, t->kh, t->kw, t->sh, t->sw, t->ph, t->pw,
             t->dh, t->dw, t->groups, t->oph, t->opw);
    ebl_conv_geom g;
    int rc = ebl_conv_geom_transpose(&g, t->n, t->c_in, t->h_in, t->w_in,
                                     t->c_out, t->kh, t->kw, t->sh, t->sw,
                                     t->ph, t->pw, t->dh, t->dw, t->groups,
                                     t->oph, t->opw, msg, sizeof msg);
    int h = (t->h_in - 1) * t->sh - 2 * t->ph + t->dh * (t->kh - 1) +
            t->oph + 1;
    int w = (t->w_in - 1) * t->sw - 2 * t->pw + t->dw * (t->kw - 1) +
            t->opw + 1;
    CHECK(rc == 0 && g.h_in == h && g.w_in == w, "conv_transpose2d %s "
          "output %dx%d (got %dx%d)", name, h, w, g.h_in, g.w_in);
    if (rc != 0)
      continue;
    conv_data d;
    conv_data_init(&d, &g);
    check_tconv_forward(t, &d, name);
    check_tconv_vjps(t, &d, name);
    conv_data_free(&d);
  }
}

/* ---- geometry errors ---- */

/* Finishes a conv geometry expected to fail with exactly `expect`. */
static void check_conv_error(ebl_conv_geom g, const char *expect) {
  char msg[200] = "";
  int rc = ebl_conv_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == -1 && strcmp(msg, expect) == 0, "conv2d rejects: %s",
        expect);
  if (strcmp(msg, expect) != 0)
    printf("#   got '%s'\n", msg);
}

static void test_conv_geometry(void) {
  ebl_conv_geom base = {.n = 2, .c_in = 4, .h_in = 7, .w_in = 5,
                        .c_out = 6, .kh = 3, .kw = 2, .stride_h = 2,
                        .stride_w = 1, .pad_h = 1, .pad_w = 0, .dil_h = 1,
                        .dil_w = 2, .groups = 2};
  ebl_conv_geom g = base;
  char msg[200];
  int rc = ebl_conv_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == 0 && g.h_out == 4 && g.w_out == 3, "conv2d 7x5, kernel "
        "3x2, stride 2x1, padding 1x0, dilation 1x2 gives 4x3 (got %dx%d)",
        g.h_out, g.w_out);

  g = base;
  g.h_in = g.w_in = 3, g.kh = g.kw = 5, g.pad_h = 0, g.dil_w = 1;
  check_conv_error(g, "conv2d: kernel 5x5 (dilated 5x5) is larger than "
                   "padded input 3x3");
  g = base;
  g.h_in = g.w_in = 4, g.kh = g.kw = 3, g.pad_h = 0, g.dil_h = 2;
  check_conv_error(g, "conv2d: kernel 3x3 (dilated 5x5) is larger than "
                   "padded input 4x4");
  g = base;
  g.c_in = 3;
  check_conv_error(g, "conv2d: input has 3 channels, not divisible by "
                   "groups 2");
  g = base;
  g.c_out = 5;
  check_conv_error(g, "conv2d: 5 output channels are not divisible by "
                   "groups 2");
  g = base;
  g.stride_w = 0;
  check_conv_error(g, "conv2d: stride 2x0 must be at least 1");
  g = base;
  g.pad_h = -1;
  check_conv_error(g, "conv2d: padding -1x0 must not be negative");
  g = base;
  g.dil_h = 0;
  check_conv_error(g, "conv2d: dilation 0x2 must be at least 1");
  g = base;
  g.n = 0;
  check_conv_error(g, "conv2d: input of batch 0 and size 7x5 (all must "
                   "be at least 1)");
}

/* Output padding: below the stride, or below the dilation, else an
   error naming both. */
static void test_tconv_geometry(void) {
  ebl_conv_geom g;
  char msg[200] = "";
  int rc = ebl_conv_geom_transpose(&g, 1, 2, 4, 4, 2, 3, 3, 1, 1, 0, 0,
                                   2, 2, 1, 1, 1, msg, sizeof msg);
  CHECK(rc == 0 && g.h_in == 9 && g.h_out == 4, "conv_transpose2d: "
        "output padding 1 with stride 1, dilation 2 gives 9 (got %d)",
        g.h_in);
  rc = ebl_conv_geom_transpose(&g, 1, 2, 4, 4, 2, 3, 3, 2, 2, 1, 1, 1, 1,
                               1, 2, 0, msg, sizeof msg);
  CHECK(rc == -1 && strcmp(msg, "conv_transpose2d: output padding 2x0 "
        "must be non-negative and smaller than stride 2x2 or dilation "
        "1x1") == 0, "conv_transpose2d rejects output padding 2 at "
        "stride 2");
  rc = ebl_conv_geom_transpose(&g, 1, 3, 4, 4, 2, 3, 3, 1, 1, 0, 0, 1, 1,
                               2, 0, 0, msg, sizeof msg);
  CHECK(rc == -1 && strcmp(msg, "conv_transpose2d: input has 3 channels, "
        "not divisible by groups 2") == 0, "conv_transpose2d rejects "
        "3 channels in 2 groups");
  rc = ebl_conv_geom_transpose(&g, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1,
                               1, 0, 0, msg, sizeof msg);
  CHECK(rc == -1 && strstr(msg, "conv_transpose2d: output size -1x-1"),
        "conv_transpose2d rejects an empty output (%s)", msg);
}

static void test_pool_geometry(void) {
  ebl_pool_geom g = {.n = 1, .c = 1, .h_in = 7, .w_in = 6, .kh = 3,
                     .kw = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                     .pad_w = 1};
  char msg[200] = "";
  int rc = ebl_pool_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == 0 && g.h_out == 4 && g.w_out == 4, "pool2d 7x6, kernel "
        "3x2, stride 2, padding 1 gives 4x4 (got %dx%d)", g.h_out,
        g.w_out);
  g.pad_h = 2;
  rc = ebl_pool_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == -1 && strcmp(msg, "pool2d: padding 2x1 must be between 0 "
        "and half the kernel 3x2") == 0, "pool2d rejects padding above "
        "half the kernel (%s)", msg);
  g.pad_h = 0, g.pad_w = 0, g.kh = 8;
  rc = ebl_pool_geom_finish(&g, msg, sizeof msg);
  CHECK(rc == -1 && strcmp(msg, "pool2d: kernel 8x2 is larger than padded "
        "input 7x6") == 0, "pool2d rejects a kernel above the input (%s)",
        msg);
}

/* ---- pooling ---- */

typedef struct pool_case {
  int n, c, h, w, kh, kw, sh, sw, ph, pw;
} pool_case;

static const pool_case pool_cases[] = {
  {2, 3, 6, 6, 2, 2, 2, 2, 0, 0},
  {1, 2, 7, 5, 3, 3, 2, 2, 1, 1},
  {2, 2, 5, 8, 3, 2, 1, 2, 1, 1},
  {1, 3, 9, 7, 4, 3, 3, 1, 2, 1},
  {1, 2, 5, 5, 3, 3, 1, 1, 0, 0},
};

/* Naive max and average pooling of one output; avg divides by kh*kw. */
static double ref_pool_at(const ebl_pool_geom *g, const double *plane,
                          int oh, int ow, int is_max) {
  double best = -INFINITY, sum = 0;
  for (int ki = 0; ki < g->kh; ki++)
    for (int kj = 0; kj < g->kw; kj++) {
      int ih = oh * g->stride_h - g->pad_h + ki;
      int iw = ow * g->stride_w - g->pad_w + kj;
      if (ih < 0 || ih >= g->h_in || iw < 0 || iw >= g->w_in)
        continue;
      best = fmax(best, plane[ih * g->w_in + iw]);
      sum += plane[ih * g->w_in + iw];
    }
  return is_max ? best : sum / (g->kh * g->kw);
}

static void ref_pool(const ebl_pool_geom *g, const double *x, double *y,
                     int is_max) {
  int64_t i = 0;
  for (int p = 0; p < g->n * g->c; p++)
    for (int oh = 0; oh < g->h_out; oh++)
      for (int ow = 0; ow < g->w_out; ow++)
        y[i++] = ref_pool_at(g, x + (int64_t)p * g->h_in * g->w_in, oh, ow,
                             is_max);
}

/* f = <r, pool(x)> for the finite differences. */
typedef struct pool_probe {
  const ebl_pool_geom *g;
  double *x, *r, *out;
  int32_t *argmax;
  int is_max;
  int64_t out_size;
} pool_probe;

static double pool_probe_eval(void *ctx) {
  pool_probe *p = ctx;
  if (p->is_max)
    ebl_max_pool2d_forward_f64(p->g, p->x, p->out, p->argmax);
  else
    ebl_avg_pool2d_forward_f64(p->g, p->x, p->out);
  return dot(p->r, p->out, p->out_size);
}

/* Argmax entries point at the input holding the maximum. */
static int argmax_consistent(const ebl_pool_geom *g, const double *x,
                             const double *y, const int32_t *argmax) {
  int64_t plane_in = (int64_t)g->h_in * g->w_in;
  int64_t plane_out = (int64_t)g->h_out * g->w_out;
  for (int64_t i = 0; i < g->n * g->c * plane_out; i++) {
    int64_t at = argmax[i];
    if (at < 0 || at >= plane_in || x[i / plane_out * plane_in + at] != y[i])
      return 0;
  }
  return 1;
}

/* Forward against naive loops, VJP against finite differences, float
   against double, for max (is_max) or average pooling. */
static void check_pool(const ebl_pool_geom *g, const char *name,
                       int is_max) {
  const char *kind = is_max ? "max_pool2d" : "avg_pool2d";
  int64_t xs = (int64_t)g->n * g->c * g->h_in * g->w_in;
  int64_t ys = (int64_t)g->n * g->c * g->h_out * g->w_out;
  double *x = random_array(xs), *r = random_array(ys);
  double *y = nan_array(ys), *ref = nan_array(ys);
  double *dx = nan_array(xs);
  int32_t *argmax = malloc(sizeof(int32_t) * ys);
  memset(argmax, 0xff, sizeof(int32_t) * ys);
  pool_probe p = {g, x, r, y, argmax, is_max, ys};

  pool_probe_eval(&p);
  ref_pool(g, x, ref, is_max);
  double err = rel_err(y, ref, ys);
  CHECK(err <= 1e-15, "%s forward f64 %s matches naive (err %.2g)", kind,
        name, err);
  if (is_max) {
    CHECK(argmax_consistent(g, x, y, argmax), "max_pool2d %s argmax "
          "points at the maxima", name);
    ebl_max_pool2d_vjp_f64(g, r, argmax, dx);
  } else {
    ebl_avg_pool2d_vjp_f64(g, r, dx);
  }
  err = fd_error(pool_probe_eval, &p, x, xs, dx);
  CHECK(err <= FD_TOL, "%s VJP %s vs finite differences (err %.2g)",
        kind, name, err);

  float *xf = to_f32(x, xs), *rf = to_f32(r, ys);
  float *yf = nan_array_f32(ys), *dxf = nan_array_f32(xs);
  pool_probe_eval(&p);
  if (is_max) {
    ebl_max_pool2d_forward_f32(g, xf, yf, argmax);
    ebl_max_pool2d_vjp_f32(g, rf, argmax, dxf);
  } else {
    ebl_avg_pool2d_forward_f32(g, xf, yf);
    ebl_avg_pool2d_vjp_f32(g, rf, dxf);
  }
  double ey = rel_err_f32(yf, y, ys), ex = rel_err_f32(dxf, dx, xs);
  CHECK(ey <= F32_TOL && ex <= F32_TOL, "%s f32 %s matches f64 (forward "
        "err %.2g, VJP err %.2g)", kind, name, ey, ex);
  free(x);
  free(r);
  free(y);
  free(ref);
  free(dx);
  free(argmax);
  free(xf);
  free(rf);
  free(yf);
  free(dxf);
}

static void test_pool_cases(void) {
  int count = sizeof pool_cases / sizeof pool_cases[0];
  for (int i = 0; i < count; i++) {
    const pool_case *c = &pool_cases[i];
    ebl_pool_geom g = {.n = c->n, .c = c->c, .h_in = c->h, .w_in = c->w,
                       .kh = c->kh, .kw = c->kw, .stride_h = c->sh,
                       .stride_w = c->sw, .pad_h = c->ph, .pad_w = c->pw};
    char name[120], msg[200];
    snprintf(name, sizeof name, "[n%d c%d %dx%d k%dx%d s%dx%d p%dx%d]",
             c->n, c->c, c->h, c->w, c->kh, c->kw, c->sh, c->sw, c->ph,
             c->pw);
    if (ebl_pool_geom_finish(&g, msg, sizeof msg) != 0) {
      CHECK(0, "pool2d geometry %s accepted: %s", name, msg);
      continue;
    }
    check_pool(&g, name, 1);
    check_pool(&g, name, 0);
  }
}

/* Ties: the first maximum in row-major order wins; padding never does,
   even when every input is negative. */
static void test_max_pool_ties(void) {
  ebl_pool_geom g = {.n = 1, .c = 1, .h_in = 3, .w_in = 3, .kh = 2,
                     .kw = 2, .stride_h = 2, .stride_w = 2, .pad_h = 1,
                     .pad_w = 1};
  char msg[200];
  ebl_pool_geom_finish(&g, msg, sizeof msg);
  double x[9] = {-2, -2, -2, -2, -2, -2, -2, -2, -2}, y[4];
  int32_t at[4];
  ebl_max_pool2d_forward_f64(&g, x, y, at);
  CHECK(at[0] == 0 && at[1] == 1 && at[2] == 3 && at[3] == 4 &&
        y[0] == -2 && y[3] == -2, "max_pool2d ties with padding: argmax "
        "0 1 3 4 (got %d %d %d %d), values -2", at[0], at[1], at[2],
        at[3]);

  g = (ebl_pool_geom){.n = 1, .c = 1, .h_in = 2, .w_in = 4, .kh = 2,
                      .kw = 2, .stride_h = 2, .stride_w = 2};
  ebl_pool_geom_finish(&g, msg, sizeof msg);
  float xf[8] = {1, 5, 5, 3, 5, 0, 2, 5}, yf[2];
  ebl_max_pool2d_forward_f32(&g, xf, yf, at);
  CHECK(at[0] == 1 && at[1] == 2 && yf[0] == 5 && yf[1] == 5,
        "max_pool2d f32 ties: first 5 wins (argmax %d %d)", at[0], at[1]);

  float dyf[2] = {1, 2}, dxf[8];
  ebl_max_pool2d_vjp_f32(&g, dyf, at, dxf);
  CHECK(dxf[1] == 1 && dxf[2] == 2 && dxf[4] == 0 && dxf[7] == 0 &&
        dxf[0] == 0, "max_pool2d VJP sends dy to the winners only");
}

/* Overlapping windows: the VJP adds the share of every window. */
static void test_avg_pool_by_hand(void) {
  ebl_pool_geom g = {.n = 1, .c = 1, .h_in = 1, .w_in = 3, .kh = 1,
                     .kw = 2, .stride_h = 1, .stride_w = 1};
  char msg[200];
  ebl_pool_geom_finish(&g, msg, sizeof msg);
  double x[3] = {1, 2, 4}, y[2], dy[2] = {1, 1}, dx[3];
  ebl_avg_pool2d_forward_f64(&g, x, y);
  ebl_avg_pool2d_vjp_f64(&g, dy, dx);
  CHECK(y[0] == 1.5 && y[1] == 3 && dx[0] == 0.5 && dx[1] == 1 &&
        dx[2] == 0.5, "avg_pool2d by hand: y 1.5 3, dx 0.5 1 0.5");
}

/* ---- losses ---- */

enum { LOSS_N = 5, LOSS_K = 7 };

/* f = the loss of x against fixed targets, for finite differences. */
typedef struct loss_probe {
  double *x, *t;
  int32_t *labels;
  int kind; /* 0: mse, 1: cross-entropy with labels, 2: soft targets */
} loss_probe;

static double loss_probe_eval(void *ctx) {
  loss_probe *p = ctx;
  if (p->kind == 0)
    return ebl_mse_loss_f64(LOSS_N, LOSS_K, p->x, p->t, NULL);
  return ebl_cross_entropy_f64(LOSS_N, LOSS_K, p->x,
                               p->kind == 1 ? p->labels : NULL,
                               p->kind == 2 ? p->t : NULL, NULL);
}

/* Naive loss: mse, or cross-entropy as -sum t log softmax. */
static double ref_loss(const loss_probe *p) {
  double total = 0;
  for (int i = 0; i < LOSS_N; i++) {
    const double *v = p->x + i * LOSS_K, *t = p->t + i * LOSS_K;
    double z = 0;
    for (int j = 0; j < LOSS_K; j++)
      z += exp(v[j]);
    for (int j = 0; j < LOSS_K; j++) {
      if (p->kind == 0)
        total += 0.5 * (v[j] - t[j]) * (v[j] - t[j]);
      else if (p->kind == 1)
        total -= j == p->labels[i] ? log(exp(v[j]) / z) : 0;
      else
        total -= t[j] * log(exp(v[j]) / z);
    }
  }
  return total / LOSS_N;
}

static void check_loss(int kind) {
  static const char *names[] = {"mse", "cross-entropy (labels)",
                                "cross-entropy (soft targets)"};
  double *x = random_array(LOSS_N * LOSS_K), *t = random_array(LOSS_N *
                                                              LOSS_K);
  int32_t labels[LOSS_N] = {0, 6, 3, 3, 1};
  for (int i = 0; kind == 2 && i < LOSS_N * LOSS_K; i++)
    t[i] = fabs(t[i]) / 3;
  loss_probe p = {x, t, labels, kind};
  double grad[LOSS_N * LOSS_K];
  double loss = kind == 0 ? ebl_mse_loss_f64(LOSS_N, LOSS_K, x, t, grad)
                          : ebl_cross_entropy_f64(LOSS_N, LOSS_K, x,
                                                  kind == 1 ? labels : NULL,
                                                  kind == 2 ? t : NULL,
                                                  grad);
  double ref = ref_loss(&p);
  CHECK(fabs(loss - ref) <= 1e-14 * fabs(ref), "%s matches naive "
        "(%.17g vs %.17g)", names[kind], loss, ref);
  double err = fd_error(loss_probe_eval, &p, x, LOSS_N * LOSS_K, grad);
  CHECK(err <= FD_TOL, "%s gradient vs finite differences (err %.2g)",
        names[kind], err);

  float *xf = to_f32(x, LOSS_N * LOSS_K), *tf = to_f32(t, LOSS_N * LOSS_K);
  float gradf[LOSS_N * LOSS_K];
  double lossf = kind == 0
                   ? ebl_mse_loss_f32(LOSS_N, LOSS_K, xf, tf, gradf)
                   : ebl_cross_entropy_f32(LOSS_N, LOSS_K, xf,
                                           kind == 1 ? labels : NULL,
                                           kind == 2 ? tf : NULL, gradf);
  double eg = rel_err_f32(gradf, grad, LOSS_N * LOSS_K);
  CHECK(fabs(lossf - loss) <= F32_TOL * fabs(loss) && eg <= F32_TOL,
        "%s f32 matches f64 (loss %.9g vs %.9g, grad err %.2g)",
        names[kind], lossf, loss, eg);
  free(x);
  free(t);
  free(xf);
  free(tf);
}

/* Values by hand, one-hot targets equal to labels, large logits, and
   invalid labels. */
static void test_losses_by_hand(void) {
  double x[4] = {1, 2, 0, 0}, t[4] = {0, 0, 0, 0}, g[4];
  double mse = ebl_mse_loss_f64(2, 2, x, t, g);
  CHECK(mse == 1.25 && g[0] == 0.5 && g[1] == 1, "mse by hand: "
        "(1 + 4)/2/2 = 1.25, grad (x - t)/n (got %g)", mse);

  double logits[4] = {0, 0, 1000, 0};
  int32_t labels[2] = {0, 1};
  double ce = ebl_cross_entropy_f64(2, 2, logits, labels, NULL, g);
  double expect = (log(2.0) + 1000) / 2;
  CHECK(fabs(ce - expect) <= 1e-15 * expect && fabs(g[0] + 0.25) < 1e-15 &&
        fabs(g[2] - 0.5) < 1e-15 && fabs(g[3] + 0.5) < 1e-15,
        "cross-entropy by hand with a logit of 1000: %.17g (expected "
        "%.17g)", ce, expect);

  double onehot[4] = {1, 0, 0, 1}, gs[4];
  double soft = ebl_cross_entropy_f64(2, 2, logits, NULL, onehot, gs);
  CHECK(soft == ce && memcmp(g, gs, sizeof g) == 0, "cross-entropy: "
        "one-hot targets equal integer labels");

  int32_t bad[2] = {0, 2};
  double nan_loss = ebl_cross_entropy_f64(2, 2, logits, bad, NULL, g);
  CHECK(isnan(nan_loss) && isnan(g[2]) && !isnan(g[0]), "cross-entropy: "
        "label 2 of 2 classes gives NaN in its row");
  double inf_logits[4] = {INFINITY, 0, -INFINITY, 0};
  int32_t other[2] = {1, 1};
  double lost = ebl_cross_entropy_f64(1, 2, inf_logits, other, NULL, g);
  double sure = ebl_cross_entropy_f64(1, 2, inf_logits + 2, other, NULL,
                                      g);
  CHECK(isinf(lost) && lost > 0 && sure == 0 && g[0] == 0 && g[1] == 0,
        "cross-entropy: +inf on another class gives +inf (%g), -inf on "
        "another class gives 0 (%g) and a zero gradient", lost, sure);
  float lf[2] = {0, 0};
  int32_t neg = -1;
  CHECK(isnan(ebl_cross_entropy_f32(1, 2, lf, &neg, NULL, NULL)),
        "cross-entropy f32: label -1 gives NaN");
}

int main(void) {
  /* Two threads: the im2col kernels then take whole samples per thread
     for batches of 2 or more and one threaded gemm for a single sample,
     so the cases below cover both ways on any machine. */
  omp_set_num_threads(2);
  test_conv_geometry();
  test_tconv_geometry();
  test_pool_geometry();
  test_conv_by_hand();
  test_conv_cases();
  test_conv_chunks();
  test_conv_thread_change();
  test_onednn_takes();
  test_tconv_cases();
  test_max_pool_ties();
  test_avg_pool_by_hand();
  test_pool_cases();
  for (int kind = 0; kind < 3; kind++)
    check_loss(kind);
  test_losses_by_hand();
  return tap_done();
}

/* CPU reductions (sum, mean, max, min, argmax, argmin, var, norm) and
   softmax. Everything reduces runs of one dim: a run along the reduced
   dim (a "row", any stride) or, when the reduced dim is not dense but
   the last kept dim is, many columns at once (a "column block", which
   reads memory in order). Float32 accumulates in double. Full reductions
   cut the data into fixed chunks whose partials are combined in order,
   so the result never depends on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/iter.h"
#include "cpu/vmath.h"

/* What a pass over a run computes. */
typedef enum pass_kind {
  PASS_SUM,        /* sum x */
  PASS_SQDEV,      /* sum (x - c)^2 */
  PASS_ABS,        /* sum |x| */
  PASS_POW,        /* sum |x|^p */
  PASS_MAX, PASS_MIN, PASS_MAXABS,
  PASS_ARGMAX, PASS_ARGMIN
} pass_kind;

/* A partial result: a value and, for arg passes, its index. */
typedef struct partial { double v; int64_t i; } partial;

static int is_arg(pass_kind k) {
  return k == PASS_ARGMAX || k == PASS_ARGMIN;
}

static int is_extreme(pass_kind k) {
  return k == PASS_MAX || k == PASS_MIN || k == PASS_MAXABS || is_arg(k);
}

/* Combines partial b (later in order) into a: sums add; extremes keep
   the first winner, NaN beating everything. */
static void combine(pass_kind k, partial *a, partial b) {
  if (!is_extreme(k)) {
    a->v += b.v;
    return;
  }
  if (a->v != a->v) return;
  int later_wins = b.v != b.v ||
                   (k == PASS_MIN || k == PASS_ARGMIN ? b.v < a->v
                                                      : b.v > a->v);
  if (later_wins) *a = b;
}

/* ---- one run of n elements at stride s, for float and double */

#define RUN_FN(NAME, T)                                                \
  static partial NAME(pass_kind k, const T *x, int64_t n, int64_t s,   \
                      double c, double p) {                            \
    partial r = {0.0, 0};                                              \
    double acc = 0.0;                                                  \
    switch (k) {                                                       \
    case PASS_SUM:                                                     \
      if (s == 1) {                                                    \
        _Pragma("omp simd reduction(+:acc)")                           \
        for (int64_t i = 0; i < n; i++) acc += (double)x[i];           \
      } else {                                                         \
        for (int64_t i = 0; i < n; i++) acc += (double)x[i * s];       \
      }                                                                \
      r.v = acc;                                                       \
      return r;                                                        \
    case PASS_SQDEV:                                                   \
      if (s == 1) {                                                    \
        _Pragma("omp simd reduction(+:acc)")                           \
        for (int64_t i = 0; i < n; i++) {                              \
          double d = (double)x[i] - c;                                 \
          acc += d * d;                                                \
        }                                                              \
      } else {                                                         \
        for (int64_t i = 0; i < n; i++) {                              \
          double d = (double)x[i * s] - c;                             \
          acc += d * d;                                                \
        }                                                              \
      }                                                                \
      r.v = acc;                                                       \
      return r;                                                        \
    case PASS_ABS:                                                     \
      for (int64_t i = 0; i < n; i++) acc += fabs((double)x[i * s]);   \
      r.v = acc;                                                       \
      return r;                                                        \
    case PASS_POW:                                                     \
      for (int64_t i = 0; i < n; i++)                                  \
        acc += pow(fabs((double)x[i * s]), p);                         \
      r.v = acc;                                                       \
      return r;                                                        \
    default:                                                           \
      break;                                                           \
    }                                                                  \
    r.v = k == PASS_MAXABS ? fabs((double)x[0]) : (double)x[0];        \
    for (int64_t i = 1; i < n && r.v == r.v; i++) {                    \
      double v = (double)x[i * s];                                     \
      partial cand = {k == PASS_MAXABS ? fabs(v) : v, i};              \
      combine(k, &r, cand);                                            \
    }                                                                  \
    return r;                                                          \
  }

RUN_FN(run_f32, float)
RUN_FN(run_f64, double)

/* A run of either dtype. */
static partial run(pass_kind k, ebl_dtype dt, const char *x, int64_t n,
                   int64_t s, double c, double p) {
  if (n == 0) {
    partial none = {0.0, 0};
    return none;
  }
  return dt == EBL_F32 ? run_f32(k, (const float *)x, n, s, c, p)
                       : run_f64(k, (const double *)x, n, s, c, p);
}

/* ---- column blocks: runs of n rows (row stride s) over ncols dense
   columns, one partial per column, rows visited in order. */

#define COLS_FN(NAME, T)                                               \
  static void NAME(pass_kind k, const T *x, int64_t n, int64_t s,      \
                   int64_t ncols, const double *c, double p,           \
                   partial *res) {                                     \
    for (int64_t j = 0; j < ncols; j++) {                              \
      double v = n > 0 ? (double)x[j] : 0.0;                           \
      res[j].i = 0;                                                    \
      res[j].v = k == PASS_MAXABS ? fabs(v) : is_extreme(k) ? v : 0.0; \
    }                                                                  \
    for (int64_t i = is_extreme(k) ? 1 : 0; i < n; i++) {              \
      const T *row = x + i * s;                                        \
      for (int64_t j = 0; j < ncols; j++) {                            \
        double v = (double)row[j];                                     \
        switch (k) {                                                   \
        case PASS_SUM: res[j].v += v; break;                           \
        case PASS_SQDEV: {                                             \
          double cj = c ? c[j] : 0.0;  /* no centre: norm(2) */        \
          res[j].v += (v - cj) * (v - cj);                             \
          break;                                                       \
        }                                                              \
        case PASS_ABS: res[j].v += fabs(v); break;                     \
        case PASS_POW: res[j].v += pow(fabs(v), p); break;             \
        default: {                                                     \
          partial cand = {k == PASS_MAXABS ? fabs(v) : v, i};          \
          combine(k, &res[j], cand);                                   \
        }                                                              \
        }                                                              \
      }                                                                \
    }                                                                  \
  }

COLS_FN(cols_f32, float)
COLS_FN(cols_f64, double)

/* ---- the plan of a reduction over one dim */

#define COL_BLOCK 256

typedef struct plan {
  ebl_dtype dtype;
  const char *base;
  int64_t esize;
  int64_t len, stride;           /* the reduced dim */
  int nkept;
  int64_t kept_shape[EBL_MAX_DIMS], kept_stride[EBL_MAX_DIMS];
  int64_t nout;
  int columns;                   /* column-block layout */
  int64_t ncols, nouter;         /* with columns: last kept dim, rest */
} plan;

static void make_plan(plan *pl, const ebl_tensor *x, int dim) {
  pl->dtype = x->dtype;
  pl->base = ebl_tensor_data(x);
  pl->esize = (int64_t)ebl_dtype_size(x->dtype);
  pl->len = x->shape[dim];
  pl->stride = x->stride[dim];
  pl->nkept = 0;
  pl->nout = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (d == dim) continue;
    pl->kept_shape[pl->nkept] = x->shape[d];
    pl->kept_stride[pl->nkept++] = x->stride[d];
    pl->nout *= x->shape[d];
  }
  int last = pl->nkept - 1;
  pl->columns = pl->stride != 1 && last >= 0 &&
                pl->kept_stride[last] == 1 && pl->kept_shape[last] >= 8;
  pl->ncols = pl->columns ? pl->kept_shape[last] : 1;
  pl->nouter = pl->columns ? pl->nout / pl->ncols : pl->nout;
}

/* Address of kept position o (row-major over kept dims, the last one
   excluded when excl_last). */
static const char *kept_address(const plan *pl, int64_t o, int excl_last) {
  int64_t off = 0;
  for (int d = pl->nkept - 1 - excl_last; d >= 0; d--) {
    off += (o % pl->kept_shape[d]) * pl->kept_stride[d];
    o /= pl->kept_shape[d];
  }
  return pl->base + off * pl->esize;
}

typedef struct pass_job {
  const plan *pl;
  pass_kind kind;
  const double *center;          /* per output, or NULL */
  double p;
  partial *res;                  /* per output */
} pass_job;

/* Rows begin..end-1 (row layout). */
static void rows_body(int64_t begin, int64_t end, void *ctx) {
  const pass_job *j = ctx;
  const plan *pl = j->pl;
  for (int64_t o = begin; o < end; o++) {
    double c = j->center ? j->center[o] : 0.0;
    j->res[o] = run(j->kind, pl->dtype, kept_address(pl, o, 0), pl->len,
                    pl->stride, c, j->p);
  }
}

/* Column blocks begin..end-1: block b covers outer index b / nblocks. */
static void cols_body(int64_t begin, int64_t end, void *ctx) {
  const pass_job *j = ctx;
  const plan *pl = j->pl;
  int64_t nblocks = (pl->ncols + COL_BLOCK - 1) / COL_BLOCK;
  for (int64_t b = begin; b < end; b++) {
    int64_t outer = b / nblocks, c0 = (b % nblocks) * COL_BLOCK;
    int64_t n = pl->ncols - c0 < COL_BLOCK ? pl->ncols - c0 : COL_BLOCK;
    const char *x = kept_address(pl, outer, 1) + c0 * pl->esize;
    int64_t o = outer * pl->ncols + c0;
    const double *c = j->center ? j->center + o : NULL;
    if (pl->dtype == EBL_F32)
      cols_f32(j->kind, (const float *)x, pl->len, pl->stride, n, c, j->p,
               j->res + o);
    else
      cols_f64(j->kind, (const double *)x, pl->len, pl->stride, n, c,
               j->p, j->res + o);
  }
}

/* One pass over every output of the plan. */
static ebl_status run_pass(const plan *pl, pass_kind kind,
                           const double *center, double p, partial *res) {
  pass_job j = {pl, kind, center, p, res};
  int64_t len = pl->len > 0 ? pl->len : 1;
  if (pl->columns) {
    int64_t nblocks = (pl->ncols + COL_BLOCK - 1) / COL_BLOCK;
    int64_t grain = 32768 / (len * COL_BLOCK) + 1;
    return ebl_parallel_for(pl->nouter * nblocks, grain, cols_body, &j);
  }
  return ebl_parallel_for(pl->nout, 32768 / len + 1, rows_body, &j);
}

/* ---- full reductions of dense data: fixed chunks, partials in order */

#define FULL_CHUNK ((int64_t)1 << 15)

typedef struct full_job {
  ebl_dtype dtype;
  const char *base;
  int64_t n;
  pass_kind kind;
  double c, p;
  partial *res;                  /* per chunk */
} full_job;

static void full_body(int64_t begin, int64_t end, void *ctx) {
  const full_job *j = ctx;
  int64_t esize = (int64_t)ebl_dtype_size(j->dtype);
  for (int64_t b = begin; b < end; b++) {
    int64_t first = b * FULL_CHUNK;
    int64_t n = j->n - first < FULL_CHUNK ? j->n - first : FULL_CHUNK;
    j->res[b] = run(j->kind, j->dtype, j->base + first * esize, n, 1,
                    j->c, j->p);
    j->res[b].i += first;
  }
}

/* One pass over all n dense elements: the combined partial. */
static ebl_status full_pass(ebl_dtype dt, const char *base, int64_t n,
                            pass_kind kind, double c, double p,
                            partial *total) {
  int64_t chunks = (n + FULL_CHUNK - 1) / FULL_CHUNK;
  partial *res = malloc(sizeof(partial) * (size_t)(chunks ? chunks : 1));
  if (!res) return ebl_fail(EBL_ENOMEM, "reduce: out of memory");
  full_job j = {dt, base, n, kind, c, p, res};
  ebl_status st = ebl_parallel_for(chunks, 1, full_body, &j);
  total->v = 0.0;
  total->i = 0;
  for (int64_t b = 0; b < chunks && st == EBL_OK; b++) {
    if (b == 0) *total = res[0];
    else combine(kind, total, res[b]);
  }
  free(res);
  return st;
}

/* ---- reductions expressed in passes */

/* The pass that NORM(p) sums, and how its total becomes the norm. */
static pass_kind norm_pass(double p) {
  if (isinf(p)) return PASS_MAXABS;
  if (p == 2) return PASS_SQDEV;
  if (p == 1) return PASS_ABS;
  return PASS_POW;
}

static double norm_finish(double p, double total) {
  if (isinf(p) || p == 1) return total;
  if (p == 2) return sqrt(total);
  return pow(total, 1.0 / p);
}

/* The first pass of op, or the only one. */
static pass_kind first_pass(ebl_reduce_op op, double p) {
  switch (op) {
  case EBL_MAX: return PASS_MAX;
  case EBL_MIN: return PASS_MIN;
  case EBL_ARGMAX: return PASS_ARGMAX;
  case EBL_ARGMIN: return PASS_ARGMIN;
  case EBL_NORM: return norm_pass(p);
  default: return PASS_SUM;
  }
}

/* The value of op from the first pass (and, for VAR, the second). */
static double finish(ebl_reduce_op op, double p, int64_t n, partial a,
                     double second) {
  switch (op) {
  case EBL_MEAN: return a.v / (double)n;
  case EBL_VAR:    /* no elements: no variance (0 / -1 would give -0) */
    return n > 0 ? second / (double)(n - (p != 0 ? 1 : 0)) : NAN;
  case EBL_NORM: return norm_finish(p, a.v);
  case EBL_ARGMAX: case EBL_ARGMIN: return (double)a.i;
  case EBL_MAX: case EBL_MIN: return n > 0 ? a.v : NAN;
  default: return a.v;
  }
}

/* Writes value v into element o of the dense out. */
static void put(const ebl_tensor *out, int64_t o, double v) {
  char *at = (char *)ebl_tensor_data(out);
  switch (out->dtype) {
  case EBL_F32: ((float *)at)[o] = (float)v; break;
  case EBL_F64: ((double *)at)[o] = v; break;
  default: ((int32_t *)at)[o] = (int32_t)v; break;
  }
}

static ebl_status reduce_all(ebl_reduce_op op, const ebl_tensor *out,
                             const ebl_tensor *x, double p) {
  int64_t n = ebl_tensor_numel(x);
  const char *base = ebl_tensor_data(x);
  partial a, b = {0.0, 0};
  EBL_TRY(full_pass(x->dtype, base, n, first_pass(op, p), 0.0, p, &a));
  if (op == EBL_VAR)
    EBL_TRY(full_pass(x->dtype, base, n, PASS_SQDEV, a.v / (double)n, p,
                      &b));
  put(out, 0, finish(op, p, n, a, b.v));
  return EBL_OK;
}

static ebl_status reduce_dim(ebl_reduce_op op, const ebl_tensor *out,
                             const ebl_tensor *x, int dim, double p) {
  plan pl;
  make_plan(&pl, x, dim);
  size_t count = (size_t)(pl.nout ? pl.nout : 1);
  partial *a = malloc(sizeof(partial) * count);
  partial *b = malloc(sizeof(partial) * count);
  double *center = malloc(sizeof(double) * count);
  ebl_status st = EBL_OK;
  if (!a || !b || !center)
    st = ebl_fail(EBL_ENOMEM, "reduce: out of memory");
  if (st == EBL_OK) st = run_pass(&pl, first_pass(op, p), NULL, p, a);
  if (st == EBL_OK && op == EBL_VAR) {
    for (int64_t o = 0; o < pl.nout; o++)
      center[o] = a[o].v / (double)pl.len;
    st = run_pass(&pl, PASS_SQDEV, center, p, b);
  }
  for (int64_t o = 0; st == EBL_OK && o < pl.nout; o++)
    put(out, o, finish(op, p, pl.len, a[o], op == EBL_VAR ? b[o].v : 0));
  free(a);
  free(b);
  free(center);
  return st;
}

/* x is float and dense when dim is EBL_DIM_ALL; out is dense. */
ebl_status ebl_cpu_reduce(ebl_reduce_op op, const ebl_tensor *out,
                          const ebl_tensor *x, int dim, double p) {
  if (dim == EBL_DIM_ALL) return reduce_all(op, out, x, p);
  return reduce_dim(op, out, x, dim, p);
}

/* ---- softmax along one dim */

typedef struct softmax_job {
  plan in, out;
  int take_log;
} softmax_job;

#define SOFTMAX_ROW(NAME, T, EXP)                                      \
  static void NAME(const T *x, int64_t sx, T *y, int64_t sy, int64_t n, \
                   int take_log) {                                     \
    T m = x[0];                                                        \
    double sum = 0.0;                                                  \
    for (int64_t i = 1; i < n; i++)                                    \
      if (x[i * sx] > m || x[i * sx] != x[i * sx]) m = x[i * sx];      \
    for (int64_t i = 0; i < n; i++) {                                  \
      T e = EXP(x[i * sx] - m);                                        \
      sum += e;                                                        \
      if (!take_log) y[i * sy] = e;                                    \
    }                                                                  \
    if (take_log) {                                                    \
      T lse = (T)log(sum);                                             \
      for (int64_t i = 0; i < n; i++)                                  \
        y[i * sy] = (x[i * sx] - m) - lse;                             \
    } else {                                                           \
      T scale = (T)(1.0 / sum);                                        \
      for (int64_t i = 0; i < n; i++) y[i * sy] *= scale;              \
    }                                                                  \
  }

SOFTMAX_ROW(softmax_f32, float, ebl_expf)
SOFTMAX_ROW(softmax_f64, double, exp)

static void softmax_body(int64_t begin, int64_t end, void *ctx) {
  const softmax_job *j = ctx;
  for (int64_t o = begin; o < end; o++) {
    const char *x = kept_address(&j->in, o, 0);
    char *y = (char *)kept_address(&j->out, o, 0);
    if (j->in.dtype == EBL_F32)
      softmax_f32((const float *)x, j->in.stride, (float *)y,
                  j->out.stride, j->in.len, j->take_log);
    else
      softmax_f64((const double *)x, j->in.stride, (double *)y,
                  j->out.stride, j->in.len, j->take_log);
  }
}

/* out may be x itself: each row is read before it is overwritten. */
ebl_status ebl_cpu_softmax(const ebl_tensor *out, const ebl_tensor *x,
                           int dim, int take_log) {
  softmax_job j;
  make_plan(&j.in, x, dim);
  make_plan(&j.out, out, dim);
  j.take_log = take_log;
  if (j.in.len == 0) return EBL_OK;
  return ebl_parallel_for(j.in.nout, 8192 / j.in.len + 1, softmax_body,
                          &j);
}

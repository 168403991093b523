/* Fused CPU kernels of the engine's inner loop, each one pass: the
   prediction error with its sum of squares, BiPC's signals with theirs,
   the state optimiser's step, tanh's and sigmoid's VJP from their
   output; and the output cost written where the engine keeps its terms.
   Sums are taken over fixed chunks combined in order, so results do
   not depend on the thread count. */
#include <math.h>
#include <stdint.h>

#include "backend.h"
#include "cpu/cpu.h"

#define FUSED_CHUNKS 64
#define PARALLEL_MIN 32768

static int dense(const ebl_tensor *t) {
  return t == NULL || ebl_tensor_is_contiguous(t);
}

/* Nonzero when the count tensors of t are dense, of t[0]'s float dtype
   and of t[0]'s size: what the one-pass kernels below take. */
static int fusable(const ebl_tensor *const *t, int count) {
  for (int i = 0; i < count; i++)
    if (!dense(t[i]) || t[i]->dtype != t[0]->dtype ||
        ebl_tensor_numel(t[i]) != ebl_tensor_numel(t[0]) ||
        !ebl_dtype_is_float(t[0]->dtype))
      return 0;
  return 1;
}

/* err = v - mu over [lo, hi); returns the sum of err^2 there. The sum
   runs in PRED_LANES independent accumulators combined in a fixed
   order: one serial chain of double adds would bound the loop by the
   adder's latency, and the fixed order keeps the result the same on
   every run. */
#define PRED_LANES 8

/* The lanes' sums added in order. */
static inline double lanes_total(const double *acc) {
  double sum = 0.0;
  for (int k = 0; k < PRED_LANES; k++)
    sum += acc[k];
  return sum;
}

#define PRED_ERROR(REAL, NAME)                                          \
  __attribute__((target_clones("arch=x86-64-v3", "default")))          \
  static double NAME(REAL *restrict err, const REAL *restrict v,       \
                     const REAL *restrict mu, int64_t lo, int64_t hi) { \
    double acc[PRED_LANES] = {0};                                       \
    int64_t i = lo;                                                     \
    for (; i + PRED_LANES <= hi; i += PRED_LANES)                       \
      for (int k = 0; k < PRED_LANES; k++) {                            \
        REAL e = v[i + k] - mu[i + k];                                  \
        err[i + k] = e;                                                 \
        acc[k] += (double)e * (double)e;                                \
      }                                                                 \
    for (int k = 0; i < hi; i++, k++) {                                 \
      REAL e = v[i] - mu[i];                                            \
      err[i] = e;                                                       \
      acc[k] += (double)e * (double)e;                                  \
    }                                                                   \
    return lanes_total(acc);                                            \
  }
PRED_ERROR(float, pred_error_f32)
PRED_ERROR(double, pred_error_f64)

/* The sum of x^2 over [lo, hi), in lanes as above. */
#define SUM_SQUARES(REAL, NAME)                                         \
  __attribute__((target_clones("arch=x86-64-v3", "default")))          \
  static double NAME(const REAL *restrict x, int64_t lo, int64_t hi) {  \
    double acc[PRED_LANES] = {0};                                       \
    int64_t i = lo;                                                     \
    for (; i + PRED_LANES <= hi; i += PRED_LANES)                       \
      for (int k = 0; k < PRED_LANES; k++)                              \
        acc[k] += (double)x[i + k] * (double)x[i + k];                  \
    for (int k = 0; i < hi; i++, k++)                                   \
      acc[k] += (double)x[i] * (double)x[i];                            \
    return lanes_total(acc);                                            \
  }
SUM_SQUARES(float, sum_squares_f32)
SUM_SQUARES(double, sum_squares_f64)

/* The chunk sums of part[] added in order. */
static double chunk_total(const double *part) {
  double sum = 0.0;
  for (int c = 0; c < FUSED_CHUNKS; c++)
    sum += part[c];
  return sum;
}

/* The sum of squares of a dense float tensor, as the fused path sums. */
static double sum_squares(const ebl_tensor *x) {
  int64_t n = ebl_tensor_numel(x);
  double part[FUSED_CHUNKS] = {0};
  const void *p = ebl_tensor_data(x);
  #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int c = 0; c < FUSED_CHUNKS; c++) {
    int64_t lo = n * c / FUSED_CHUNKS, hi = n * (c + 1) / FUSED_CHUNKS;
    part[c] = x->dtype == EBL_F32 ? sum_squares_f32(p, lo, hi)
                                  : sum_squares_f64(p, lo, hi);
  }
  return chunk_total(part);
}

/* err = v - mu through the general binary op (strided or mixed operands),
   with the sum of squares of err. */
static ebl_status pred_error_general(const ebl_tensor *err,
                                     const ebl_tensor *v,
                                     const ebl_tensor *mu, double *sumsq) {
  ebl_status s = ebl_binary(EBL_SUB, err, v, mu);
  if (s != EBL_OK || sumsq == NULL)
    return s;
  if (dense(err) && ebl_dtype_is_float(err->dtype)) {
    *sumsq = sum_squares(err);
    return EBL_OK;
  }
  double norm = 0.0;
  s = ebl_reduce_all(EBL_NORM, err, 2.0, &norm);
  *sumsq = norm * norm;
  return s;
}

ebl_status ebl_cpu_pred_error(const ebl_tensor *err, const ebl_tensor *v,
                              const ebl_tensor *mu, double *sumsq) {
  const ebl_tensor *t[3] = {err, v, mu};
  if (!fusable(t, 3))
    return pred_error_general(err, v, mu, sumsq);
  int64_t n = ebl_tensor_numel(err);
  double part[FUSED_CHUNKS] = {0};
  int f32 = err->dtype == EBL_F32;
  void *e = ebl_tensor_data(err);
  const void *a = ebl_tensor_data(v), *b = ebl_tensor_data(mu);
  #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int c = 0; c < FUSED_CHUNKS; c++) {
    int64_t lo = n * c / FUSED_CHUNKS, hi = n * (c + 1) / FUSED_CHUNKS;
    part[c] = f32 ? pred_error_f32(e, a, b, lo, hi)
                  : pred_error_f64(e, a, b, lo, hi);
  }
  if (sumsq != NULL)
    *sumsq = chunk_total(part);
  return EBL_OK;
}

/* BiPC's signals over [lo, hi): r = e_f + lambda e_b, sig = r,
   sig_b = lambda r; returns the sum of r^2 (in lanes, as above). sig may
   be e_f, so neither is restrict. */
#define BIPC_SIGNALS(REAL, NAME)                                        \
  __attribute__((target_clones("arch=x86-64-v3", "default")))          \
  static double NAME(REAL *sig, REAL *restrict sig_b, const REAL *e_f,  \
                     const REAL *restrict e_b, REAL lambda, int64_t lo,  \
                     int64_t hi) {                                      \
    double acc[PRED_LANES] = {0};                                       \
    int64_t i = lo;                                                     \
    for (; i + PRED_LANES <= hi; i += PRED_LANES)                       \
      for (int k = 0; k < PRED_LANES; k++) {                            \
        REAL r = e_f[i + k] + lambda * e_b[i + k];                      \
        sig[i + k] = r;                                                 \
        sig_b[i + k] = lambda * r;                                      \
        acc[k] += (double)r * (double)r;                                \
      }                                                                 \
    for (int k = 0; i < hi; i++, k++) {                                 \
      REAL r = e_f[i] + lambda * e_b[i];                                \
      sig[i] = r;                                                       \
      sig_b[i] = lambda * r;                                            \
      acc[k] += (double)r * (double)r;                                  \
    }                                                                   \
    return lanes_total(acc);                                            \
  }
BIPC_SIGNALS(float, bipc_signals_f32)
BIPC_SIGNALS(double, bipc_signals_f64)

ebl_status ebl_cpu_bipc_signals(const ebl_tensor *sig,
                                const ebl_tensor *sig_b,
                                const ebl_tensor *e_f, const ebl_tensor *e_b,
                                double lambda, double *sumsq) {
  const ebl_tensor *t[4] = {sig, sig_b, e_f, e_b};
  int64_t n = ebl_tensor_numel(sig);
  if (!fusable(t, 4))
    return ebl_fail(EBL_EARG, "bipc_signals: operands must be dense, of "
                    "one float dtype and one size");
  double part[FUSED_CHUNKS] = {0};
  int f32 = sig->dtype == EBL_F32;
  void *ps = ebl_tensor_data(sig), *pb = ebl_tensor_data(sig_b);
  const void *pf = ebl_tensor_data(e_f), *pe = ebl_tensor_data(e_b);
  #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int c = 0; c < FUSED_CHUNKS; c++) {
    int64_t lo = n * c / FUSED_CHUNKS, hi = n * (c + 1) / FUSED_CHUNKS;
    part[c] = f32 ? bipc_signals_f32(ps, pb, pf, pe, (float)lambda, lo, hi)
                  : bipc_signals_f64(ps, pb, pf, pe, lambda, lo, hi);
  }
  if (sumsq != NULL)
    *sumsq = chunk_total(part);
  return EBL_OK;
}

/* One optimiser step on the states v from g over [lo, hi). */
#define STATE_STEP(REAL, NAME)                                          \
  static void NAME(const ebl_state_step *st, REAL *restrict v,         \
                   const REAL *restrict g, REAL *restrict m1,          \
                   REAL *restrict m2, int64_t lo, int64_t hi) {         \
    REAL lr = (REAL)st->lr, mu = (REAL)st->momentum;                   \
    if (st->kind == EBL_STEP_SGD) {                                     \
      for (int64_t i = lo; i < hi; i++) v[i] -= lr * g[i];              \
    } else if (st->kind == EBL_STEP_MOMENTUM) {                         \
      for (int64_t i = lo; i < hi; i++) {                               \
        m1[i] = mu * m1[i] + g[i];                                      \
        v[i] -= lr * m1[i];                                             \
      }                                                                 \
    } else {                                                            \
      REAL b1 = (REAL)st->beta1, b2 = (REAL)st->beta2;                  \
      REAL c1 = (REAL)(1.0 - pow(st->beta1, st->t));                    \
      REAL c2 = (REAL)(1.0 - pow(st->beta2, st->t));                    \
      REAL eps = (REAL)st->eps;                                         \
      for (int64_t i = lo; i < hi; i++) {                               \
        m1[i] = b1 * m1[i] + (1 - b1) * g[i];                           \
        m2[i] = b2 * m2[i] + (1 - b2) * g[i] * g[i];                    \
        v[i] -= lr / c1 * m1[i] / (sqrt(m2[i] / c2) + eps);             \
      }                                                                 \
    }                                                                   \
  }
STATE_STEP(float, state_step_f32)
STATE_STEP(double, state_step_f64)

ebl_status ebl_cpu_state_step(const ebl_state_step *step,
                              const ebl_tensor *v, const ebl_tensor *g,
                              const ebl_tensor *m1, const ebl_tensor *m2) {
  if (!dense(v) || !dense(g) || !dense(m1) || !dense(m2) ||
      g->dtype != v->dtype || !ebl_dtype_is_float(v->dtype))
    return ebl_fail(EBL_EARG, "state step: states must be dense and of one "
                    "float dtype");
  if (step->gate != NULL && *step->gate >= 0)
    return EBL_OK;
  int64_t n = ebl_tensor_numel(v);
  int f32 = v->dtype == EBL_F32;
  void *pv = ebl_tensor_data(v), *p1 = m1 ? ebl_tensor_data(m1) : NULL;
  void *p2 = m2 ? ebl_tensor_data(m2) : NULL;
  const void *pg = ebl_tensor_data(g);
  #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int c = 0; c < FUSED_CHUNKS; c++) {
    int64_t lo = n * c / FUSED_CHUNKS, hi = n * (c + 1) / FUSED_CHUNKS;
    if (f32)
      state_step_f32(step, pv, pg, p1, p2, lo, hi);
    else
      state_step_f64(step, pv, pg, p1, p2, lo, hi);
  }
  return EBL_OK;
}

/* out = dy f'(x) with f' written in y = f(x), over [lo, hi); out may
   be y, so neither is restrict. */
#define ACT_VJP(REAL, NAME)                                             \
  __attribute__((target_clones("arch=x86-64-v3", "default")))          \
  static void NAME(int tanh, REAL *out, const REAL *y,                  \
                   const REAL *restrict dy, int64_t lo, int64_t hi) {   \
    if (tanh)                                                           \
      for (int64_t i = lo; i < hi; i++)                                 \
        out[i] = dy[i] * (1 - y[i] * y[i]);                             \
    else                                                                \
      for (int64_t i = lo; i < hi; i++)                                 \
        out[i] = dy[i] * (y[i] * (1 - y[i]));                           \
  }
ACT_VJP(float, act_vjp_f32)
ACT_VJP(double, act_vjp_f64)

ebl_status ebl_cpu_act_vjp(ebl_unary_op act, const ebl_tensor *out,
                           const ebl_tensor *y, const ebl_tensor *dy) {
  if (act != EBL_TANH && act != EBL_SIGMOID)
    return ebl_fail(EBL_EARG, "act_vjp: tanh or sigmoid expected, got %s",
                    ebl_unary_name(act));
  const ebl_tensor *t[3] = {out, y, dy};
  if (!fusable(t, 3))
    return ebl_fail(EBL_EARG, "act_vjp: operands must be dense, of one "
                    "float dtype and one size");
  int64_t n = ebl_tensor_numel(out);
  int f32 = out->dtype == EBL_F32, tanh = act == EBL_TANH;
  void *po = ebl_tensor_data(out);
  const void *py = ebl_tensor_data(y), *pd = ebl_tensor_data(dy);
  #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
  for (int c = 0; c < FUSED_CHUNKS; c++) {
    int64_t lo = n * c / FUSED_CHUNKS, hi = n * (c + 1) / FUSED_CHUNKS;
    if (f32)
      act_vjp_f32(tanh, po, py, pd, lo, hi);
    else
      act_vjp_f64(tanh, po, py, pd, lo, hi);
  }
  return EBL_OK;
}

ebl_status ebl_cpu_loss_into(int ce, ebl_dtype dt, int n, int k,
                             const void *x, const int32_t *labels,
                             const void *target, void *grad, double *out) {
  *out = ce ? ebl_cpu_cross_entropy(dt, n, k, x, labels, target, grad)
            : ebl_cpu_mse_loss(dt, n, k, x, target, grad);
  return EBL_OK;
}

/* The CUDA dispatch table: each entry turns the tensors the front end
   checked into the iterators and row plans the kernels take, launches
   them on ebl's stream and turns CUDA's error codes into ebl errors.
   Nothing here waits for the device except the entries that hand a
   value back to the host (losses, sums of squares). */
#include <math.h>
#include <string.h>

#include "gpu/gpu.h"

ebl_status ebl_gpu_to_host(void *host, const void *data, size_t nbytes);
ebl_status ebl_gpu_from_host(void *data, const void *host, size_t nbytes);
ebl_status ebl_gpu_alloc_failed(size_t nbytes);

/* ---- helpers */

/* Runs launch(it) over ops and names op in a failure. */
static ebl_status run_iter(const char *op, int nops,
                           const ebl_tensor *const *ops,
                           cudaError_t (*launch)(const ebl_gpu_iter *,
                                                 const void *),
                           const void *ctx) {
  ebl_gpu_iter it;
  ebl_gpu_iter_init(&it, nops, ops);
  return ebl_gpu_check(op, launch(&it, ctx));
}

/* The rows of a reduction of x over dim (see ebl_gpu_rows). */
static void rows_of(ebl_gpu_rows *r, const ebl_tensor *x, int dim) {
  memset(r, 0, sizeof *r);
  r->len = x->shape[dim];
  r->stride = x->stride[dim];
  r->nout = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (d == dim) continue;
    r->kept_shape[r->nkept] = x->shape[d];
    r->kept_stride[r->nkept++] = x->stride[d];
    r->nout *= x->shape[d];
  }
}

/* What an elementwise launch needs beside its operands. */
typedef struct op_args {
  int op;
  ebl_dtype dtype;
  double p0, p1;
  int side;
} op_args;

/* ---- copies */

static cudaError_t copy_launch(const ebl_gpu_iter *it, const void *ctx) {
  const ebl_dtype *dt = ctx;
  return ebl_gpu_copy(it, dt[0], dt[1]);
}

static ebl_status copy(const ebl_tensor *dst, const ebl_tensor *src) {
  const ebl_tensor *ops[2] = {dst, src};
  ebl_dtype dt[2] = {dst->dtype, src->dtype};
  return run_iter("copy", 2, ops, copy_launch, dt);
}

static ebl_status affine(const ebl_tensor *out, double start, double step) {
  return ebl_gpu_check("arange", ebl_gpu_affine(ebl_gpu_data(out),
                                                out->dtype, out->shape[0],
                                                out->stride[0], start,
                                                step));
}

static ebl_status random_fill(const ebl_tensor *out, ebl_random_kind kind,
                              double a, double b, uint64_t seed,
                              uint64_t offset) {
  return ebl_gpu_check("random", ebl_gpu_random(ebl_gpu_data(out),
                                                out->dtype,
                                                ebl_gpu_numel(out), kind, a,
                                                b, seed, offset));
}

/* ---- fills and elementwise ops */

static cudaError_t fill_launch(const ebl_gpu_iter *it, const void *ctx) {
  const op_args *a = ctx;
  return ebl_gpu_fill(it, a->dtype, a->p0);
}

static ebl_status fill(const ebl_tensor *out, double value) {
  const ebl_tensor *ops[1] = {out};
  op_args a = {0, out->dtype, value, 0, 0};
  return run_iter("fill", 1, ops, fill_launch, &a);
}

static cudaError_t unary_launch(const ebl_gpu_iter *it, const void *ctx) {
  const op_args *a = ctx;
  return ebl_gpu_unary(it, (ebl_unary_op)a->op, a->dtype, a->p0, a->p1);
}

static ebl_status unary(ebl_unary_op op, const ebl_tensor *out,
                        const ebl_tensor *x, double p0, double p1) {
  const ebl_tensor *ops[2] = {out, x};
  op_args a = {op, x->dtype, p0, p1, 0};
  if (!ebl_gpu_unary_defined(op, x->dtype))
    return ebl_gpu_fail(EBL_EARG, "unary op %d: not defined for this "
                        "dtype", (int)op);
  return run_iter("unary", 2, ops, unary_launch, &a);
}

static cudaError_t binary_launch(const ebl_gpu_iter *it, const void *ctx) {
  const op_args *a = ctx;
  return ebl_gpu_binary(it, (ebl_binary_op)a->op, a->dtype, a->side,
                        a->p0);
}

static ebl_status binary(ebl_binary_op op, const ebl_tensor *out,
                         const ebl_tensor *a, const ebl_tensor *b) {
  const ebl_tensor *ops[3] = {out, a, b};
  op_args args = {op, a->dtype, 0, 0, 0};
  if (!ebl_gpu_binary_defined(op, a->dtype))
    return ebl_gpu_fail(EBL_EARG, "binary op %d: not defined for this "
                        "dtype", (int)op);
  return run_iter("binary", 3, ops, binary_launch, &args);
}

/* The scalar goes to the kernel by value: side 1 is s op a, 2 a op s. */
static ebl_status binary_scalar(ebl_binary_op op, const ebl_tensor *out,
                                const ebl_tensor *a, double s,
                                int reversed) {
  const ebl_tensor *ops[2] = {out, a};
  op_args args = {op, a->dtype, s, 0, reversed ? 1 : 2};
  if (!ebl_gpu_binary_defined(op, a->dtype))
    return ebl_gpu_fail(EBL_EARG, "binary op %d: not defined for this "
                        "dtype", (int)op);
  return run_iter("binary", 2, ops, binary_launch, &args);
}

static cudaError_t where_launch(const ebl_gpu_iter *it, const void *ctx) {
  return ebl_gpu_where(it, *(const ebl_dtype *)ctx);
}

static ebl_status where(const ebl_tensor *out, const ebl_tensor *cond,
                        const ebl_tensor *a, const ebl_tensor *b) {
  const ebl_tensor *ops[4] = {out, cond, a, b};
  return run_iter("where", 4, ops, where_launch, &out->dtype);
}

static cudaError_t axpby_launch(const ebl_gpu_iter *it, const void *ctx) {
  const op_args *a = ctx;
  return ebl_gpu_axpby(it, a->dtype, a->p0, a->p1);
}

static ebl_status axpby(const ebl_tensor *out, double alpha,
                        const ebl_tensor *x, double beta) {
  const ebl_tensor *ops[2] = {out, x};
  op_args a = {0, out->dtype, alpha, beta, 0};
  return run_iter("axpby", 2, ops, axpby_launch, &a);
}

/* ---- softmax and reductions */

static ebl_status softmax(const ebl_tensor *out, const ebl_tensor *x,
                          int dim, int take_log) {
  ebl_gpu_rows rx, ry;
  rows_of(&rx, x, dim);
  rows_of(&ry, out, dim);
  return ebl_gpu_check(take_log ? "log_softmax" : "softmax",
                       ebl_gpu_softmax(&rx, &ry, ebl_gpu_data(x),
                                       ebl_gpu_data(out), x->dtype,
                                       take_log));
}

/* x is float (dense for EBL_DIM_ALL); out is dense. */
static ebl_status reduce(ebl_reduce_op op, const ebl_tensor *out,
                         const ebl_tensor *x, int dim, double p) {
  ebl_gpu_rows r;
  void *scratch;
  int all = dim == EBL_DIM_ALL;
  if (all) {
    memset(&r, 0, sizeof r);
    r.len = ebl_gpu_numel(x);
    r.stride = 1;
    r.nout = 1;
  } else {
    rows_of(&r, x, dim);
  }
  EBL_GPU_TRY(ebl_gpu_scratch("reduce", ebl_gpu_reduce_scratch(&r, all),
                              &scratch));
  cudaError_t err = ebl_gpu_reduce(&r, all, op, p, ebl_gpu_data(x),
                                   x->dtype, ebl_gpu_data(out), out->dtype,
                                   scratch);
  ebl_gpu_free(scratch);
  return ebl_gpu_check("reduce", err);
}

/* ---- layers: pooling and bias gradients keep their failures for
   kernel_status */

static void bias_vjp(const ebl_conv_geom *g, ebl_dtype dt, const void *dy,
                     void *db) {
  ebl_gpu_defer(ebl_gpu_check("conv2d", ebl_gpu_bias_sums(
                                dt, g->n, g->c_out,
                                (int64_t)g->h_out * g->w_out, dy, db)));
}

/* conv_transpose2d's output has the conv's input shape (c_in). */
static void convt_bias_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                           const void *dy, void *db) {
  ebl_gpu_defer(ebl_gpu_check("conv_transpose2d", ebl_gpu_bias_sums(
                                dt, g->n, g->c_in,
                                (int64_t)g->h_in * g->w_in, dy, db)));
}

static void max_pool(const ebl_pool_geom *g, ebl_dtype dt, const void *x,
                     void *y, int32_t *argmax) {
  ebl_gpu_defer(ebl_gpu_check("max_pool2d",
                              ebl_gpu_max_pool(g, dt, x, y, argmax)));
}

static void max_pool_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                         const void *dy, const int32_t *argmax, void *dx) {
  ebl_gpu_defer(ebl_gpu_check("max_pool2d",
                              ebl_gpu_max_pool_vjp(g, dt, dy, argmax, dx)));
}

static void avg_pool(const ebl_pool_geom *g, ebl_dtype dt, const void *x,
                     void *y) {
  ebl_gpu_defer(ebl_gpu_check("avg_pool2d",
                              ebl_gpu_avg_pool(g, dt, x, y)));
}

static void avg_pool_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                         const void *dy, void *dx) {
  ebl_gpu_defer(ebl_gpu_check("avg_pool2d",
                              ebl_gpu_avg_pool_vjp(g, dt, dy, dx)));
}

/* ---- losses: per-row values summed in a fixed order, read back */

/* Sums the n doubles at rows (device) into *total (host). */
static ebl_status sum_rows(const char *op, double *rows, int n,
                           double *total) {
  EBL_GPU_TRY(ebl_gpu_check(op, ebl_gpu_sum_doubles(rows, n, rows + n,
                                                    1.0, 1.0)));
  return ebl_gpu_read_doubles(op, total, rows + n, 1);
}

static double mse_loss(ebl_dtype dt, int n, int k, const void *x,
                       const void *t, void *grad) {
  double *rows, total = NAN;
  if (n <= 0 || k <= 0) return NAN;
  ebl_status st = ebl_gpu_scratch("mse_loss", sizeof(double) * (n + 1),
                                  (void **)&rows);
  if (st == EBL_OK) {
    st = ebl_gpu_check("mse_loss",
                       ebl_gpu_mse_rows(dt, n, k, x, t, grad, rows));
    if (st == EBL_OK) st = sum_rows("mse_loss", rows, n, &total);
    ebl_gpu_free(rows);
  }
  ebl_gpu_defer(st);
  return st == EBL_OK ? 0.5 * total / n : NAN;
}

static double cross_entropy(ebl_dtype dt, int n, int k, const void *logits,
                            const int32_t *labels, const void *target,
                            void *grad) {
  double *rows, total = NAN;
  if (n <= 0 || k <= 0 || (!labels && !target)) return NAN;
  ebl_status st = ebl_gpu_scratch("cross_entropy",
                                  sizeof(double) * (n + 1),
                                  (void **)&rows);
  if (st == EBL_OK) {
    st = ebl_gpu_check("cross_entropy",
                       ebl_gpu_ce_rows(dt, n, k, logits, labels, target,
                                       grad, rows));
    if (st == EBL_OK) st = sum_rows("cross_entropy", rows, n, &total);
    ebl_gpu_free(rows);
  }
  ebl_gpu_defer(st);
  return st == EBL_OK ? total / n : NAN;
}

/* The engine's cost: the batch mean into *out (device), no wait. */
static ebl_status loss_into(int ce, ebl_dtype dt, int n, int k,
                            const void *x, const int32_t *labels,
                            const void *target, void *grad, double *out) {
  const char *fn = ce ? "cross_entropy" : "mse_loss";
  double *rows;
  if (n <= 0 || k <= 0 || (ce && !labels && !target))
    return ebl_gpu_fail(EBL_EARG, "%s: an empty batch", fn);
  EBL_GPU_TRY(ebl_gpu_scratch(fn, sizeof(double) * (size_t)n,
                              (void **)&rows));
  ebl_status st = ebl_gpu_check(fn, ce
    ? ebl_gpu_ce_rows(dt, n, k, x, labels, target, grad, rows)
    : ebl_gpu_mse_rows(dt, n, k, x, target, grad, rows));
  if (st == EBL_OK)
    st = ebl_gpu_check(fn, ebl_gpu_sum_doubles(rows, n, out,
                                               ce ? 1.0 : 0.5, n));
  ebl_gpu_free(rows);
  return st;
}

/* ---- fused engine kernels */

/* Fails unless every given tensor is dense, of t[0]'s float dtype and
   element count, on the GPU. */
static ebl_status fused_check(const char *fn, const ebl_tensor *const *t,
                              int count) {
  int64_t n = ebl_gpu_numel(t[0]);
  for (int i = 0; i < count; i++) {
    const ebl_tensor *x = t[i];
    int64_t step = 1;
    int dense = x && x->storage && x->storage->device == EBL_CUDA &&
                x->dtype == t[0]->dtype && ebl_gpu_numel(x) == n &&
                (x->dtype == EBL_F32 || x->dtype == EBL_F64);
    for (int d = x ? x->ndim - 1 : -1; dense && d >= 0; d--) {
      if (x->shape[d] != 1 && x->stride[d] != step) dense = 0;
      step *= x->shape[d];
    }
    if (!dense)
      return ebl_gpu_fail(EBL_EARG, "%s: operand %d is not a dense float "
                          "cuda tensor of the first one's dtype and size",
                          fn, i + 1);
  }
  return EBL_OK;
}

/* Launches a kernel that writes per-block sums of squares into parts,
   then, when sumsq (device) is wanted, sums them there. */
static ebl_status with_sumsq(const char *fn, int64_t n, double *sumsq,
                             cudaError_t (*launch)(double *, const void *),
                             const void *ctx) {
  int blocks = ebl_gpu_fused_blocks(n);
  double *parts;
  EBL_GPU_TRY(ebl_gpu_scratch(fn, sizeof(double) * (blocks + 1),
                              (void **)&parts));
  ebl_status st = ebl_gpu_check(fn, launch(parts, ctx));
  if (st == EBL_OK && sumsq)
    st = ebl_gpu_check(fn, ebl_gpu_sum_doubles(parts, blocks, sumsq, 1.0,
                                               1.0));
  ebl_gpu_free(parts);
  return st;
}

typedef struct fused_args {
  const ebl_tensor *out1, *out2, *in1, *in2;
  double lambda;
} fused_args;

static cudaError_t pred_error_launch(double *parts, const void *ctx) {
  const fused_args *a = ctx;
  return ebl_gpu_pred_error(a->out1->dtype, ebl_gpu_numel(a->out1),
                            ebl_gpu_data(a->out1), ebl_gpu_data(a->in1),
                            ebl_gpu_data(a->in2), parts);
}

static ebl_status pred_error(const ebl_tensor *err, const ebl_tensor *v,
                             const ebl_tensor *mu, double *sumsq) {
  const ebl_tensor *t[3] = {err, v, mu};
  fused_args a = {err, NULL, v, mu, 0};
  EBL_GPU_TRY(fused_check("pred_error", t, 3));
  return with_sumsq("pred_error", ebl_gpu_numel(err), sumsq,
                    pred_error_launch, &a);
}

static cudaError_t bipc_launch(double *parts, const void *ctx) {
  const fused_args *a = ctx;
  return ebl_gpu_bipc_signals(a->out1->dtype, ebl_gpu_numel(a->out1),
                              ebl_gpu_data(a->out1), ebl_gpu_data(a->out2),
                              ebl_gpu_data(a->in1), ebl_gpu_data(a->in2),
                              a->lambda, parts);
}

static ebl_status bipc_signals(const ebl_tensor *sig,
                               const ebl_tensor *sig_b,
                               const ebl_tensor *e_f, const ebl_tensor *e_b,
                               double lambda, double *sumsq) {
  const ebl_tensor *t[4] = {sig, sig_b, e_f, e_b};
  fused_args a = {sig, sig_b, e_f, e_b, lambda};
  EBL_GPU_TRY(fused_check("bipc_signals", t, 4));
  return with_sumsq("bipc_signals", ebl_gpu_numel(sig), sumsq, bipc_launch,
                    &a);
}

static ebl_status state_step(const ebl_state_step *step,
                             const ebl_tensor *v, const ebl_tensor *g,
                             const ebl_tensor *m1, const ebl_tensor *m2) {
  const ebl_tensor *t[4] = {v, g, m1, m2};
  int count = step->kind == EBL_STEP_ADAM ? 4
            : step->kind == EBL_STEP_MOMENTUM ? 3 : 2;
  EBL_GPU_TRY(fused_check("state_step", t, count));
  return ebl_gpu_check("state_step", ebl_gpu_state_step(
    v->dtype, ebl_gpu_numel(v), step, ebl_gpu_data(v), ebl_gpu_data(g),
    count > 2 ? ebl_gpu_data(m1) : NULL,
    count > 3 ? ebl_gpu_data(m2) : NULL));
}

static ebl_status act_vjp(ebl_unary_op act, const ebl_tensor *out,
                          const ebl_tensor *y, const ebl_tensor *dy) {
  const ebl_tensor *t[3] = {out, y, dy};
  if (act != EBL_TANH && act != EBL_SIGMOID)
    return ebl_gpu_fail(EBL_EARG, "act_vjp: tanh or sigmoid expected");
  EBL_GPU_TRY(fused_check("act_vjp", t, 3));
  return ebl_gpu_check("act_vjp", ebl_gpu_act_vjp(
    out->dtype, ebl_gpu_numel(out), act == EBL_TANH, ebl_gpu_data(out),
    ebl_gpu_data(y), ebl_gpu_data(dy)));
}

static ebl_status relax_check(const ebl_relax_check *c) {
  return ebl_gpu_check("infer", ebl_gpu_relax_check(c));
}

const ebl_backend ebl_gpu_backend = {
  .name = "cuda",
  .alloc = ebl_gpu_alloc,
  .free = ebl_gpu_free,
  .to_host = ebl_gpu_to_host,
  .from_host = ebl_gpu_from_host,
  .copy = copy,
  .fill = fill,
  .affine = affine,
  .random = random_fill,
  .unary = unary,
  .binary = binary,
  .binary_scalar = binary_scalar,
  .where = where,
  .axpby = axpby,
  .softmax = softmax,
  .reduce = reduce,
  .gemm = ebl_gpu_gemm,
  .conv2d_workspace = ebl_gpu_conv_workspace,
  .conv2d_forward = ebl_gpu_conv_forward,
  .conv2d_input_vjp = ebl_gpu_conv_input_vjp,
  .conv2d_weight_vjp = ebl_gpu_conv_weight_vjp,
  .conv2d_bias_vjp = bias_vjp,
  .conv_transpose2d_forward = ebl_gpu_convt_forward,
  .conv_transpose2d_input_vjp = ebl_gpu_convt_input_vjp,
  .conv_transpose2d_weight_vjp = ebl_gpu_convt_weight_vjp,
  .conv_transpose2d_bias_vjp = convt_bias_vjp,
  .max_pool2d_forward = max_pool,
  .max_pool2d_vjp = max_pool_vjp,
  .avg_pool2d_forward = avg_pool,
  .avg_pool2d_vjp = avg_pool_vjp,
  .mse_loss = mse_loss,
  .cross_entropy = cross_entropy,
  .kernel_status = ebl_gpu_pending,
  .alloc_failed = ebl_gpu_alloc_failed,
  .pred_error = pred_error,
  .bipc_signals = bipc_signals,
  .state_step = state_step,
  .act_vjp = act_vjp,
  .loss_into = loss_into,
  .relax_check = relax_check,
};

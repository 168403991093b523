/* Internals of the CUDA module, shared by its host files (C, built by
   gcc) and its kernel files (CUDA C++, built by nvcc): the stream all
   work is queued on, error helpers, the iterator that carries strided
   operands to kernels, and the launchers each kernel file exports.
   Launchers queue work on the stream and return the launch's error
   code; none of them waits for the device. */
#ifndef EBL_GPU_GPU_H
#define EBL_GPU_GPU_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Returns from the calling function when expr fails. */
#define EBL_GPU_TRY(expr)                                             \
  do {                                                                \
    ebl_status st_ = (expr);                                          \
    if (st_ != EBL_OK) return st_;                                    \
  } while (0)

/* Bytes of one element of dtype. */
static inline size_t ebl_gpu_dtype_size(ebl_dtype dt) {
  return dt == EBL_F64 ? 8 : dt == EBL_U8 ? 1 : 4;
}

/* Address of element (0, ..., 0) of t (the core's ebl_tensor_data). */
static inline void *ebl_gpu_data(const ebl_tensor *t) {
  return (char *)t->storage->data +
         t->offset * (int64_t)ebl_gpu_dtype_size(t->dtype);
}

/* Number of elements of t. */
static inline int64_t ebl_gpu_numel(const ebl_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

/* ---- the context (gpu/context.c) */

/* The one stream every kernel, copy and library call of ebl runs on:
   work on it runs in the order it was queued. */
extern cudaStream_t ebl_gpu_stream;
/* Multiprocessors of the device (for grid sizes). */
extern int ebl_gpu_sm_count;

/* Records a failure message (printf-style) through the core. */
ebl_status ebl_gpu_fail(ebl_status status, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
/* EBL_OK for cudaSuccess, else EBL_EDEVICE with "<op>: <CUDA's text>". */
ebl_status ebl_gpu_check(const char *op, cudaError_t err);
/* For entries that return no status: keeps the first failure until
   ebl_gpu_pending reports it. */
void ebl_gpu_defer(ebl_status status);
/* The kept failure (then cleared), or EBL_OK. */
ebl_status ebl_gpu_pending(const char *fn);
/* Copies nbytes from the device to host memory and waits for it. */
ebl_status ebl_gpu_read(const char *op, void *host,
                                const void *dev, size_t nbytes);
/* The same for n <= 8 doubles, through page-locked memory. */
ebl_status ebl_gpu_read_doubles(const char *op, double *dst,
                                const double *dev, int n);

/* ---- memory (gpu/memory.c): the caching allocator */

void *ebl_gpu_alloc(size_t nbytes);
void ebl_gpu_free(void *data);
/* Fails with "<op>: cannot allocate <size> of scratch" when NULL. */
ebl_status ebl_gpu_scratch(const char *op, size_t nbytes,
                                   void **data);

/* ---- operands of elementwise kernels (gpu/iter.c) */

#define EBL_GPU_OPS 4

/* Up to four operands of one shape: dims merged where every operand
   is dense across them, size-1 dims dropped (ndim >= 1). Element i of
   the row-major order over shape lies at data[k] + sum idx_d *
   stride[k][d] elements of operand k's dtype. */
typedef struct ebl_gpu_iter {
  int nops, ndim;
  int64_t numel;
  int64_t shape[EBL_MAX_DIMS];
  int64_t stride[EBL_GPU_OPS][EBL_MAX_DIMS];
  char *data[EBL_GPU_OPS];
} ebl_gpu_iter;

/* Fills it from ops (all of ops[0]'s shape). */
void ebl_gpu_iter_init(ebl_gpu_iter *it, int nops,
                               const ebl_tensor *const *ops);

/* ---- elementwise kernels (gpu/elementwise.cu); operand 0 is the
   output */

/* dst = src with a cast (operands: dst of dtype dt, src of st). */
cudaError_t ebl_gpu_copy(const ebl_gpu_iter *it, ebl_dtype dt,
                                 ebl_dtype st);
/* Every element = value cast to dt (one operand). */
cudaError_t ebl_gpu_fill(const ebl_gpu_iter *it, ebl_dtype dt,
                                 double value);
/* out[i * stride] = start + i * step for i < n. */
cudaError_t ebl_gpu_affine(void *out, ebl_dtype dt, int64_t n,
                                   int64_t stride, double start,
                                   double step);
/* Nonzero when the kernels define op for dtype. */
int ebl_gpu_unary_defined(ebl_unary_op op, ebl_dtype dt);
int ebl_gpu_binary_defined(ebl_binary_op op, ebl_dtype dt);
/* out = op(x; p0, p1), both of dtype dt. */
cudaError_t ebl_gpu_unary(const ebl_gpu_iter *it, ebl_unary_op op,
                                  ebl_dtype dt, double p0, double p1);
/* out = a op b (three operands) or, with two operands, a op s (side 2)
   or s op a (side 1); inputs of dtype dt, out dt or U8 for
   comparisons. */
cudaError_t ebl_gpu_binary(const ebl_gpu_iter *it,
                                   ebl_binary_op op, ebl_dtype dt,
                                   int scalar_side, double s);
/* out = cond ? a : b; cond U8, the rest of dtype dt. */
cudaError_t ebl_gpu_where(const ebl_gpu_iter *it, ebl_dtype dt);
/* out = alpha x + beta out (beta 0 never reads out). */
cudaError_t ebl_gpu_axpby(const ebl_gpu_iter *it, ebl_dtype dt,
                                  double alpha, double beta);

/* ---- random numbers (gpu/random.cu), exactly as src/philox.h says */

cudaError_t ebl_gpu_random(void *out, ebl_dtype dt, int64_t n,
                                   ebl_random_kind kind, double a,
                                   double b, uint64_t seed,
                                   uint64_t offset);

/* ---- reductions and softmax (gpu/reduce.cu) */

/* A reduction over one dim of x: for output o (row-major over the
   kept dims), the elements x[kept offset of o + j * stride], j < len. */
typedef struct ebl_gpu_rows {
  int64_t len, stride;
  int nkept;
  int64_t kept_shape[EBL_MAX_DIMS], kept_stride[EBL_MAX_DIMS];
  int64_t nout;
} ebl_gpu_rows;

/* A partial result of a reduction: a value and an index. */
typedef struct ebl_gpu_partial {
  double v;
  long long i;
} ebl_gpu_partial;

/* Scratch bytes a reduction needs (partials and centres). */
size_t ebl_gpu_reduce_scratch(const ebl_gpu_rows *r, int all);
/* out (dense, of dtype ot, nout elements) = op over the rows of x
   (float dtype xt). With all set, x is dense and rows describes one
   row of len elements. */
cudaError_t ebl_gpu_reduce(const ebl_gpu_rows *r, int all,
                                   ebl_reduce_op op, double p,
                                   const void *x, ebl_dtype xt, void *out,
                                   ebl_dtype ot, void *scratch);
/* Softmax (log_softmax with take_log) along the rows of x into the
   rows of y (same rows geometry except data and strides of y). */
cudaError_t ebl_gpu_softmax(const ebl_gpu_rows *rx,
                                    const ebl_gpu_rows *ry, const void *x,
                                    void *y, ebl_dtype dt, int take_log);
/* mul * (the sum of n dense doubles) / div into *sum (device); the sum
   in a fixed order. */
cudaError_t ebl_gpu_sum_doubles(const double *parts, int64_t n,
                                double *sum, double mul, double div);

/* ---- layers (gpu/layers.cu): pooling, bias, losses; dense NCHW */

cudaError_t ebl_gpu_max_pool(const ebl_pool_geom *g, ebl_dtype dt,
                                     const void *x, void *y,
                                     int32_t *argmax);
cudaError_t ebl_gpu_max_pool_vjp(const ebl_pool_geom *g,
                                         ebl_dtype dt, const void *dy,
                                         const int32_t *argmax, void *dx);
cudaError_t ebl_gpu_avg_pool(const ebl_pool_geom *g, ebl_dtype dt,
                                     const void *x, void *y);
cudaError_t ebl_gpu_avg_pool_vjp(const ebl_pool_geom *g,
                                         ebl_dtype dt, const void *dy,
                                         void *dx);
/* y[i, c, :] += b[c] over n samples, channels, plane. */
cudaError_t ebl_gpu_add_bias(ebl_dtype dt, int n, int channels,
                                     int64_t plane, const void *b, void *y);
/* db[c] = sum of dy[:, c, :] (double accumulation). */
cudaError_t ebl_gpu_bias_sums(ebl_dtype dt, int n, int channels,
                                      int64_t plane, const void *dy,
                                      void *db);
/* Per-row losses into rows[n] (doubles) and grad (may be NULL), as in
   src/cpu/layers.h; the caller sums rows. */
cudaError_t ebl_gpu_mse_rows(ebl_dtype dt, int n, int k,
                                     const void *x, const void *t,
                                     void *grad, double *rows);
cudaError_t ebl_gpu_ce_rows(ebl_dtype dt, int n, int k,
                                    const void *logits,
                                    const int32_t *labels,
                                    const void *target, void *grad,
                                    double *rows);

/* ---- fused engine kernels (gpu/fused.cu); dense operands of n
   elements; parts receives ebl_gpu_fused_blocks(n) doubles */

int ebl_gpu_fused_blocks(int64_t n);
cudaError_t ebl_gpu_pred_error(ebl_dtype dt, int64_t n, void *err,
                                       const void *v, const void *mu,
                                       double *parts);
cudaError_t ebl_gpu_bipc_signals(ebl_dtype dt, int64_t n,
                                         void *sig, void *sig_b,
                                         const void *e_f, const void *e_b,
                                         double lambda, double *parts);
cudaError_t ebl_gpu_state_step(ebl_dtype dt, int64_t n,
                                       const ebl_state_step *step,
                                       void *v, const void *g, void *m1,
                                       void *m2);
/* out = dy (1 - y^2) when tanh_act, else dy y (1 - y); out may be y. */
cudaError_t ebl_gpu_act_vjp(ebl_dtype dt, int64_t n, int tanh_act,
                            void *out, const void *y, const void *dy);
/* The inference loop's check (see ebl_relax_check in src/backend.h). */
cudaError_t ebl_gpu_relax_check(const ebl_relax_check *check);

/* ---- libraries (gpu/blas.c, gpu/conv.c) */

ebl_status ebl_gpu_gemm(const ebl_gemm_batch *g);
void ebl_gpu_blas_set_tf32(int allow);
int ebl_gpu_blas_tf32(void);
size_t ebl_gpu_conv_workspace(const ebl_conv_geom *g,
                                      ebl_dtype dt);
void ebl_gpu_conv_forward(const ebl_conv_geom *g, ebl_dtype dt,
                                  const void *x, const void *w,
                                  const void *b, void *y, void *work);
void ebl_gpu_conv_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                                    const void *dy, const void *w,
                                    void *dx, void *work);
void ebl_gpu_conv_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                                     const void *x, const void *dy,
                                     void *dw, void *work);
void ebl_gpu_convt_forward(const ebl_conv_geom *g, ebl_dtype dt,
                                   const void *x, const void *w,
                                   const void *b, void *y, void *work);
void ebl_gpu_convt_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                                     const void *dy, const void *w,
                                     void *dx, void *work);
void ebl_gpu_convt_weight_vjp(const ebl_conv_geom *g,
                                      ebl_dtype dt, const void *x,
                                      const void *dy, void *dw,
                                      void *work);
void ebl_gpu_conv_set_tf32(int allow);

/* ---- timing references (gpu/reference.c) */

extern const ebl_cuda_reference ebl_gpu_reference;

#ifdef __cplusplus
}
#endif

#endif

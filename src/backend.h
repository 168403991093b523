/* The dispatch table of a device: memory, copies and every kernel the
   tensor core runs. The front end in src/ checks arguments, broadcasts
   operands to a common shape (stride-0 views), promotes dtypes and
   allocates results; a backend only runs loops on operands it can trust.
   A new device adds a table, not code in the callers. */
#ifndef EBL_BACKEND_H
#define EBL_BACKEND_H

#include "cpu/layers.h"
#include "tensor.h"

/* Distributions a backend draws from (see src/philox.h for the exact
   mapping of counters to elements). */
typedef enum ebl_random_kind {
  EBL_RANDOM_UNIFORM,     /* [a, b) */
  EBL_RANDOM_NORMAL,      /* mean a, std b */
  EBL_RANDOM_INTEGER,     /* a .. b-1 */
  EBL_RANDOM_BERNOULLI    /* 1 with probability a */
} ebl_random_kind;

/* A batch of matrix products C_i = alpha A_i B_i + beta C_i in row-major
   BLAS terms; a_off[i] etc. are element offsets of batch i. */
typedef struct ebl_gemm_batch {
  ebl_dtype dtype;
  int trans_a, trans_b;
  int64_t m, n, k;
  double alpha, beta;
  const void *a, *b;
  void *c;
  int64_t lda, ldb, ldc;
  int64_t count;
  const int64_t *a_off, *b_off, *c_off;
} ebl_gemm_batch;

/* A step of a state optimiser, for the fused state update below: the
   same arithmetic as the engine's unfused steps (src/engine/infer.c). */
typedef enum ebl_step_kind {
  EBL_STEP_SGD,           /* v -= lr g */
  EBL_STEP_MOMENTUM,      /* m1 = momentum m1 + g; v -= lr m1 */
  EBL_STEP_ADAM           /* moments m1, m2; bias-corrected step */
} ebl_step_kind;

typedef struct ebl_state_step {
  ebl_step_kind kind;
  double lr, momentum, beta1, beta2, eps;
  int t;                  /* Adam's step count, from 1 */
  const double *gate;     /* device memory or NULL: no step when *gate is
                             >= 0 (the loop has stopped, see below) */
} ebl_state_step;

/* One check of the inference loop kept on the device (relax_check
   below). The ledger holds an energy as n terms at ledger[i], their
   coefficients at ledger[stride + i] and flags at ledger[2 stride + i]
   (1: the term is a norm, to be squared): F = sum coef_i * term_i (or
   term_i^2), summed in order in double. The
   watch is three doubles in device memory: F at the last step, the step
   at which the loop stopped (-1 while it runs) and the step at which F
   became NaN or Inf (-1 if none). */
typedef struct ebl_relax_check {
  double *watch;
  const double *ledger;
  int nterms, stride;
  double *trace;          /* F of step k goes to trace[k] */
  int k;                  /* the step just taken; 0 starts the loop */
  double tol;             /* stop when |F - F_prev| <= tol |F_prev| */
} ebl_relax_check;

typedef struct ebl_backend {
  const char *name;

  /* Memory: 64-byte aligned blocks; NULL when out of memory. */
  void *(*alloc)(size_t nbytes);
  void (*free)(void *data);
  /* Copies nbytes between this device and the host. */
  ebl_status (*to_host)(void *host, const void *data, size_t nbytes);
  ebl_status (*from_host)(void *data, const void *host, size_t nbytes);

  /* dst = src, both of one shape; dtypes may differ (cast). */
  ebl_status (*copy)(const ebl_tensor *dst, const ebl_tensor *src);
  /* Every element of out = value. */
  ebl_status (*fill)(const ebl_tensor *out, double value);
  /* out[i] = start + i * step, out 1-D. */
  ebl_status (*affine)(const ebl_tensor *out, double start, double step);
  /* Random numbers from counter block `offset` on; see src/philox.h. */
  ebl_status (*random)(const ebl_tensor *out, ebl_random_kind kind,
                       double a, double b, uint64_t seed, uint64_t offset);

  /* Elementwise: operands have out's shape; a and b share one dtype,
     out has it too (U8 for comparisons). */
  ebl_status (*unary)(ebl_unary_op op, const ebl_tensor *out,
                      const ebl_tensor *x, double p0, double p1);
  ebl_status (*binary)(ebl_binary_op op, const ebl_tensor *out,
                       const ebl_tensor *a, const ebl_tensor *b);
  /* out = a op s, or s op a when reversed. */
  ebl_status (*binary_scalar)(ebl_binary_op op, const ebl_tensor *out,
                              const ebl_tensor *a, double s, int reversed);
  /* cond is U8; a, b and out share one dtype. */
  ebl_status (*where)(const ebl_tensor *out, const ebl_tensor *cond,
                      const ebl_tensor *a, const ebl_tensor *b);
  ebl_status (*axpby)(const ebl_tensor *out, double alpha,
                      const ebl_tensor *x, double beta);
  /* Softmax (log_softmax when take_log) along dim; out has x's shape. */
  ebl_status (*softmax)(const ebl_tensor *out, const ebl_tensor *x,
                        int dim, int take_log);

  /* Reduction of a float x over dim (>= 0) or EBL_DIM_ALL into out,
     which has x's ndim with size 1 at the reduced dims and the dtype of
     ebl_reduce_dtype(). */
  ebl_status (*reduce)(ebl_reduce_op op, const ebl_tensor *out,
                       const ebl_tensor *x, int dim, double p);

  /* Batched matrix products. */
  ebl_status (*gemm)(const ebl_gemm_batch *g);

  /* Layer kernels on contiguous NCHW memory of dtype F32 or F64,
     geometry as in src/cpu/layers.h; each overwrites its output. The
     conv_transpose2d kernels take the geometry of
     ebl_conv_geom_transpose (the conv whose input VJP they are). */
  size_t (*conv2d_workspace)(const ebl_conv_geom *g, ebl_dtype dtype);
  void (*conv2d_forward)(const ebl_conv_geom *g, ebl_dtype dtype,
                         const void *x, const void *w, const void *b,
                         void *y, void *work);
  void (*conv2d_input_vjp)(const ebl_conv_geom *g, ebl_dtype dtype,
                           const void *dy, const void *w, void *dx,
                           void *work);
  void (*conv2d_weight_vjp)(const ebl_conv_geom *g, ebl_dtype dtype,
                            const void *x, const void *dy, void *dw,
                            void *work);
  void (*conv2d_bias_vjp)(const ebl_conv_geom *g, ebl_dtype dtype,
                          const void *dy, void *db);
  void (*conv_transpose2d_forward)(const ebl_conv_geom *g,
                                   ebl_dtype dtype, const void *x,
                                   const void *w, const void *b, void *y,
                                   void *work);
  void (*conv_transpose2d_input_vjp)(const ebl_conv_geom *g,
                                     ebl_dtype dtype, const void *dy,
                                     const void *w, void *dx, void *work);
  void (*conv_transpose2d_weight_vjp)(const ebl_conv_geom *g,
                                      ebl_dtype dtype, const void *x,
                                      const void *dy, void *dw,
                                      void *work);
  void (*conv_transpose2d_bias_vjp)(const ebl_conv_geom *g,
                                    ebl_dtype dtype, const void *dy,
                                    void *db);
  void (*max_pool2d_forward)(const ebl_pool_geom *g, ebl_dtype dtype,
                             const void *x, void *y, int32_t *argmax);
  void (*max_pool2d_vjp)(const ebl_pool_geom *g, ebl_dtype dtype,
                         const void *dy, const int32_t *argmax, void *dx);
  void (*avg_pool2d_forward)(const ebl_pool_geom *g, ebl_dtype dtype,
                             const void *x, void *y);
  void (*avg_pool2d_vjp)(const ebl_pool_geom *g, ebl_dtype dtype,
                         const void *dy, void *dx);
  /* Losses: the batch mean; grad may be NULL (see src/cpu/layers.h). */
  double (*mse_loss)(ebl_dtype dtype, int n, int k, const void *x,
                     const void *t, void *grad);
  double (*cross_entropy)(ebl_dtype dtype, int n, int k,
                          const void *logits, const int32_t *labels,
                          const void *target, void *grad);

  /* ---- optional entries: NULL where a device has none */

  /* The first failure of the kernels above that return no status, since
     the last call, or EBL_OK; a device that queues its work reports
     errors here (fn names the operation the caller ran). */
  ebl_status (*kernel_status)(const char *fn);
  /* Called after alloc returned NULL: records the message for a
     failure to allocate nbytes and returns EBL_ENOMEM. */
  ebl_status (*alloc_failed)(size_t nbytes);

  /* Fused kernels of the energy engine's inner loop, on dense tensors
     of one float dtype and one shape. sumsq may be NULL; when given it
     is one double in this device's memory (host memory on the CPU) that
     receives the sum of squares, with no wait for the device.
     err = v - mu and *sumsq = sum err^2, in one pass. */
  ebl_status (*pred_error)(const ebl_tensor *err, const ebl_tensor *v,
                           const ebl_tensor *mu, double *sumsq);
  /* BiPC's signals: r = e_f + lambda e_b, sig = r, sig_b = lambda r,
     *sumsq = sum r^2, in one pass. */
  ebl_status (*bipc_signals)(const ebl_tensor *sig,
                             const ebl_tensor *sig_b,
                             const ebl_tensor *e_f, const ebl_tensor *e_b,
                             double lambda, double *sumsq);
  /* The cotangent through tanh or sigmoid from its output y, in one
     pass: out = dy (1 - y^2) or dy y (1 - y); out may be y. Any other
     act is EBL_EARG. */
  ebl_status (*act_vjp)(ebl_unary_op act, const ebl_tensor *out,
                        const ebl_tensor *y, const ebl_tensor *dy);
  /* One state optimiser step on v from its gradient g; m1 (momentum,
     Adam) and m2 (Adam) are the moments, NULL when unused. */
  ebl_status (*state_step)(const ebl_state_step *step,
                           const ebl_tensor *v, const ebl_tensor *g,
                           const ebl_tensor *m1, const ebl_tensor *m2);
  /* The batch mean of a loss (cross-entropy when ce, else mse; the
     arguments of the losses above) into *out, one double in this
     device's memory, with no wait. */
  ebl_status (*loss_into)(int ce, ebl_dtype dtype, int n, int k,
                          const void *x, const int32_t *labels,
                          const void *target, void *grad, double *out);
  /* The loop's check on the device, so that the host reads the watch
     only every few steps: does nothing once the loop has stopped; else
     F from the ledger into trace[k] and watch[0]; for k > 0 a
     non-finite F, or a relative change of at most tol, stops the loop
     at k. Where a device has this entry, its state_step honours gate. */
  ebl_status (*relax_check)(const ebl_relax_check *check);
} ebl_backend;

/* The table of a device, or NULL when this build has none for it. */
const ebl_backend *ebl_backend_for(ebl_device device);
/* The backend of t's device; fails with "<fn>: no <device> backend in
   this build" when absent. */
ebl_status ebl_backend_of(const char *fn, const ebl_tensor *t,
                          const ebl_backend **backend);

/* Fails with "<fn>: no <device> backend in this build", or for CUDA
   "<fn>: cuda is not available (<reason>)". */
ebl_status ebl_backend_missing(const char *fn, ebl_device device);

/* The CPU table (src/cpu/backend.c). */
extern const ebl_backend ebl_cpu_backend;

#endif

/* The CPU backend's kernels, gathered into ebl_cpu_backend by
   src/cpu/backend.c. Arguments are trusted: the front end checked them. */
#ifndef EBL_CPU_CPU_H
#define EBL_CPU_CPU_H

#include "core.h"

/* Memory and copies (src/cpu/memory.c). */
void *ebl_cpu_alloc(size_t nbytes);
void ebl_cpu_free(void *data);
ebl_status ebl_cpu_to_host(void *host, const void *data, size_t nbytes);
ebl_status ebl_cpu_from_host(void *data, const void *host, size_t nbytes);
ebl_status ebl_cpu_copy(const ebl_tensor *dst, const ebl_tensor *src);
ebl_status ebl_cpu_fill(const ebl_tensor *out, double value);
ebl_status ebl_cpu_affine(const ebl_tensor *out, double start,
                          double step);

/* Random numbers (src/cpu/random.c). */
ebl_status ebl_cpu_random(const ebl_tensor *out, ebl_random_kind kind,
                          double a, double b, uint64_t seed,
                          uint64_t offset);

/* Elementwise (src/cpu/elementwise.c). */
int ebl_cpu_unary_defined(ebl_unary_op op, ebl_dtype dtype);
int ebl_cpu_binary_defined(ebl_binary_op op, ebl_dtype dtype);
ebl_status ebl_cpu_unary(ebl_unary_op op, const ebl_tensor *out,
                         const ebl_tensor *x, double p0, double p1);
ebl_status ebl_cpu_binary(ebl_binary_op op, const ebl_tensor *out,
                          const ebl_tensor *a, const ebl_tensor *b);
ebl_status ebl_cpu_binary_scalar(ebl_binary_op op, const ebl_tensor *out,
                                 const ebl_tensor *a, double s,
                                 int reversed);
ebl_status ebl_cpu_where(const ebl_tensor *out, const ebl_tensor *cond,
                         const ebl_tensor *a, const ebl_tensor *b);
ebl_status ebl_cpu_axpby(const ebl_tensor *out, double alpha,
                         const ebl_tensor *x, double beta);

/* Reductions and softmax (src/cpu/reduce.c). */
ebl_status ebl_cpu_reduce(ebl_reduce_op op, const ebl_tensor *out,
                          const ebl_tensor *x, int dim, double p);
ebl_status ebl_cpu_softmax(const ebl_tensor *out, const ebl_tensor *x,
                           int dim, int take_log);

/* Matrix products (src/cpu/gemm.c). */
ebl_status ebl_cpu_gemm(const ebl_gemm_batch *g);

/* Layer kernels by dtype (src/cpu/nn_kernels.c). */
size_t ebl_cpu_conv2d_workspace(const ebl_conv_geom *g, ebl_dtype dt);
void ebl_cpu_conv2d_forward(const ebl_conv_geom *g, ebl_dtype dt,
                            const void *x, const void *w, const void *b,
                            void *y, void *work);
void ebl_cpu_conv2d_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                              const void *dy, const void *w, void *dx,
                              void *work);
void ebl_cpu_conv2d_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                               const void *x, const void *dy, void *dw,
                               void *work);
void ebl_cpu_conv2d_bias_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *dy, void *db);
void ebl_cpu_convt2d_forward(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *x, const void *w, const void *b,
                             void *y, void *work);
void ebl_cpu_convt2d_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                               const void *dy, const void *w, void *dx,
                               void *work);
void ebl_cpu_convt2d_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                                const void *x, const void *dy, void *dw,
                                void *work);
void ebl_cpu_convt2d_bias_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                              const void *dy, void *db);
void ebl_cpu_max_pool2d_forward(const ebl_pool_geom *g, ebl_dtype dt,
                                const void *x, void *y, int32_t *argmax);
void ebl_cpu_max_pool2d_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                            const void *dy, const int32_t *argmax,
                            void *dx);
void ebl_cpu_avg_pool2d_forward(const ebl_pool_geom *g, ebl_dtype dt,
                                const void *x, void *y);
void ebl_cpu_avg_pool2d_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                            const void *dy, void *dx);
double ebl_cpu_mse_loss(ebl_dtype dt, int n, int k, const void *x,
                        const void *t, void *grad);
double ebl_cpu_cross_entropy(ebl_dtype dt, int n, int k, const void *logits,
                             const int32_t *labels, const void *target,
                             void *grad);

/* Fused kernels of the engine's loop (fused.c). */
ebl_status ebl_cpu_pred_error(const ebl_tensor *err, const ebl_tensor *v,
                              const ebl_tensor *mu, double *sumsq);
ebl_status ebl_cpu_state_step(const ebl_state_step *step,
                              const ebl_tensor *v, const ebl_tensor *g,
                              const ebl_tensor *m1, const ebl_tensor *m2);
ebl_status ebl_cpu_bipc_signals(const ebl_tensor *sig,
                                const ebl_tensor *sig_b,
                                const ebl_tensor *e_f, const ebl_tensor *e_b,
                                double lambda, double *sumsq);
ebl_status ebl_cpu_act_vjp(ebl_unary_op act, const ebl_tensor *out,
                           const ebl_tensor *y, const ebl_tensor *dy);
ebl_status ebl_cpu_loss_into(int ce, ebl_dtype dt, int n, int k,
                             const void *x, const int32_t *labels,
                             const void *target, void *grad, double *out);

#endif

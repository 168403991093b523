/* The CPU layer kernels of src/cpu/layers.h behind dtype-generic entry
   points, as the dispatch table holds them. */
#include "cpu/cpu.h"
#include "cpu/layers.h"

#define F32(p) ((float *)(p))
#define F64(p) ((double *)(p))
#define CF32(p) ((const float *)(p))
#define CF64(p) ((const double *)(p))

size_t ebl_cpu_conv2d_workspace(const ebl_conv_geom *g, ebl_dtype dt) {
  return dt == EBL_F32 ? ebl_conv2d_workspace_f32(g)
                       : ebl_conv2d_workspace_f64(g);
}

void ebl_cpu_conv2d_forward(const ebl_conv_geom *g, ebl_dtype dt,
                            const void *x, const void *w, const void *b,
                            void *y, void *work) {
  if (dt == EBL_F32)
    ebl_conv2d_forward_f32(g, CF32(x), CF32(w), CF32(b), F32(y), work);
  else
    ebl_conv2d_forward_f64(g, CF64(x), CF64(w), CF64(b), F64(y), work);
}

void ebl_cpu_conv2d_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                              const void *dy, const void *w, void *dx,
                              void *work) {
  if (dt == EBL_F32)
    ebl_conv2d_input_vjp_f32(g, CF32(dy), CF32(w), F32(dx), work);
  else
    ebl_conv2d_input_vjp_f64(g, CF64(dy), CF64(w), F64(dx), work);
}

void ebl_cpu_conv2d_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                               const void *x, const void *dy, void *dw,
                               void *work) {
  if (dt == EBL_F32)
    ebl_conv2d_weight_vjp_f32(g, CF32(x), CF32(dy), F32(dw), work);
  else
    ebl_conv2d_weight_vjp_f64(g, CF64(x), CF64(dy), F64(dw), work);
}

void ebl_cpu_conv2d_bias_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *dy, void *db) {
  if (dt == EBL_F32) ebl_conv2d_bias_vjp_f32(g, CF32(dy), F32(db));
  else ebl_conv2d_bias_vjp_f64(g, CF64(dy), F64(db));
}

void ebl_cpu_convt2d_forward(const ebl_conv_geom *g, ebl_dtype dt,
                             const void *x, const void *w, const void *b,
                             void *y, void *work) {
  if (dt == EBL_F32)
    ebl_conv_transpose2d_forward_f32(g, CF32(x), CF32(w), CF32(b), F32(y),
                                     work);
  else
    ebl_conv_transpose2d_forward_f64(g, CF64(x), CF64(w), CF64(b), F64(y),
                                     work);
}

void ebl_cpu_convt2d_input_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                               const void *dy, const void *w, void *dx,
                               void *work) {
  if (dt == EBL_F32)
    ebl_conv_transpose2d_input_vjp_f32(g, CF32(dy), CF32(w), F32(dx), work);
  else
    ebl_conv_transpose2d_input_vjp_f64(g, CF64(dy), CF64(w), F64(dx), work);
}

void ebl_cpu_convt2d_weight_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                                const void *x, const void *dy, void *dw,
                                void *work) {
  if (dt == EBL_F32)
    ebl_conv_transpose2d_weight_vjp_f32(g, CF32(x), CF32(dy), F32(dw),
                                        work);
  else
    ebl_conv_transpose2d_weight_vjp_f64(g, CF64(x), CF64(dy), F64(dw),
                                        work);
}

void ebl_cpu_convt2d_bias_vjp(const ebl_conv_geom *g, ebl_dtype dt,
                              const void *dy, void *db) {
  if (dt == EBL_F32) ebl_conv_transpose2d_bias_vjp_f32(g, CF32(dy), F32(db));
  else ebl_conv_transpose2d_bias_vjp_f64(g, CF64(dy), F64(db));
}

void ebl_cpu_max_pool2d_forward(const ebl_pool_geom *g, ebl_dtype dt,
                                const void *x, void *y, int32_t *argmax) {
  if (dt == EBL_F32) ebl_max_pool2d_forward_f32(g, CF32(x), F32(y), argmax);
  else ebl_max_pool2d_forward_f64(g, CF64(x), F64(y), argmax);
}

void ebl_cpu_max_pool2d_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                            const void *dy, const int32_t *argmax,
                            void *dx) {
  if (dt == EBL_F32) ebl_max_pool2d_vjp_f32(g, CF32(dy), argmax, F32(dx));
  else ebl_max_pool2d_vjp_f64(g, CF64(dy), argmax, F64(dx));
}

void ebl_cpu_avg_pool2d_forward(const ebl_pool_geom *g, ebl_dtype dt,
                                const void *x, void *y) {
  if (dt == EBL_F32) ebl_avg_pool2d_forward_f32(g, CF32(x), F32(y));
  else ebl_avg_pool2d_forward_f64(g, CF64(x), F64(y));
}

void ebl_cpu_avg_pool2d_vjp(const ebl_pool_geom *g, ebl_dtype dt,
                            const void *dy, void *dx) {
  if (dt == EBL_F32) ebl_avg_pool2d_vjp_f32(g, CF32(dy), F32(dx));
  else ebl_avg_pool2d_vjp_f64(g, CF64(dy), F64(dx));
}

double ebl_cpu_mse_loss(ebl_dtype dt, int n, int k, const void *x,
                        const void *t, void *grad) {
  if (dt == EBL_F32) return ebl_mse_loss_f32(n, k, CF32(x), CF32(t),
                                             F32(grad));
  return ebl_mse_loss_f64(n, k, CF64(x), CF64(t), F64(grad));
}

double ebl_cpu_cross_entropy(ebl_dtype dt, int n, int k, const void *logits,
                             const int32_t *labels, const void *target,
                             void *grad) {
  if (dt == EBL_F32)
    return ebl_cross_entropy_f32(n, k, CF32(logits), labels, CF32(target),
                                 F32(grad));
  return ebl_cross_entropy_f64(n, k, CF64(logits), labels, CF64(target),
                               F64(grad));
}

/* CPU layer kernels on contiguous NCHW arrays: convolution, its transpose,
   pooling and losses, each forward beside its vector-Jacobian products.
   Every kernel exists for float (_f32) and double (_f64); they take raw
   pointers and know nothing of tensors, so the tensor layer and tests can
   call them directly. Scratch memory is passed in, never allocated here. */
#ifndef EBL_CPU_LAYERS_H
#define EBL_CPU_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Geometry of conv2d: x (n, c_in, h_in, w_in), weight (c_out,
   c_in/groups, kh, kw), y (n, c_out, h_out, w_out). */
typedef struct ebl_conv_geom {
  int n, c_in, h_in, w_in;
  int c_out, kh, kw;
  int stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  int h_out, w_out;
} ebl_conv_geom;

/* Fills h_out and w_out; returns 0, or -1 with a message in msg (at
   most msg_len bytes) when the geometry is impossible. */
int ebl_conv_geom_finish(ebl_conv_geom *g, char *msg, size_t msg_len);

/* Bytes of scratch memory the conv kernels need for this geometry (for
   float, at the current OpenMP thread count: size it where it is used). */
size_t ebl_conv2d_workspace_f32(const ebl_conv_geom *g);
size_t ebl_conv2d_workspace_f64(const ebl_conv_geom *g);

/* y = conv2d(x, w) + b; b may be NULL. */
void ebl_conv2d_forward_f32(const ebl_conv_geom *g, const float *x,
                            const float *w, const float *b, float *y,
                            void *work);
/* dx = d<dy, conv2d(x, w)>/dx, overwriting dx. */
void ebl_conv2d_input_vjp_f32(const ebl_conv_geom *g, const float *dy,
                              const float *w, float *dx, void *work);
/* dw = d<dy, conv2d(x, w)>/dw, overwriting dw. */
void ebl_conv2d_weight_vjp_f32(const ebl_conv_geom *g, const float *x,
                               const float *dy, float *dw, void *work);
/* db[c] = sum of dy over n, h, w, overwriting db. */
void ebl_conv2d_bias_vjp_f32(const ebl_conv_geom *g, const float *dy,
                             float *db);

/* The float conv kernels run through oneDNN when the build has it and
   it takes the geometry, else through im2col + sgemm like double.
   ebl_conv2d_set_onednn(0) forces im2col; returns the previous setting
   (always 0 without oneDNN). */
int ebl_conv2d_set_onednn(int enable);
/* 1 when the float kernels run g through oneDNN (at the current thread
   count), 0 when they use im2col. */
int ebl_conv2d_uses_onednn(const ebl_conv_geom *g);

void ebl_conv2d_forward_f64(const ebl_conv_geom *g, const double *x,
                            const double *w, const double *b, double *y,
                            void *work);
void ebl_conv2d_input_vjp_f64(const ebl_conv_geom *g, const double *dy,
                              const double *w, double *dx, void *work);
void ebl_conv2d_weight_vjp_f64(const ebl_conv_geom *g, const double *x,
                               const double *dy, double *dw, void *work);
void ebl_conv2d_bias_vjp_f64(const ebl_conv_geom *g, const double *dy,
                             double *db);

/* conv_transpose2d(x, w) with w laid out (c_in_t, c_out_t/groups, kh, kw)
   is the input VJP of the conv2d whose geometry has c_out = c_in_t,
   c_in = c_out_t and h_in/w_in = the transposed output size; its VJPs are
   that conv's forward (for x) and weight VJP with x and dy swapped (for
   w). The tensor layer builds that geometry with ebl_conv_geom_transpose
   and calls the kernels above, so one weight serves a conv and its
   transpose. out_pad_h/w pick among the output sizes a stride allows.
   Returns 0 with g finished (its h_out/w_out are h_in_t/w_in_t; do not
   pass it to ebl_conv_geom_finish), or -1 with a message in msg. */
int ebl_conv_geom_transpose(ebl_conv_geom *g, int n, int c_in_t,
                            int h_in_t, int w_in_t, int c_out_t, int kh,
                            int kw, int stride_h, int stride_w, int pad_h,
                            int pad_w, int dil_h, int dil_w, int groups,
                            int out_pad_h, int out_pad_w, char *msg,
                            size_t msg_len);

/* conv_transpose2d on the geometry from ebl_conv_geom_transpose, so that
   the tensor layer need not remember the mapping: x and dx are (n, c_in_t,
   h_in_t, w_in_t) = (g->n, g->c_out, g->h_out, g->w_out), y and dy are
   (n, c_out_t, h_out_t, w_out_t) = (g->n, g->c_in, g->h_in, g->w_in), b
   and db have c_out_t entries, w and dw are (c_in_t, c_out_t/groups, kh,
   kw). The workspace is ebl_conv2d_workspace_* of g. Each overwrites its
   output; b may be NULL. */
void ebl_conv_transpose2d_forward_f32(const ebl_conv_geom *g,
                                      const float *x, const float *w,
                                      const float *b, float *y, void *work);
void ebl_conv_transpose2d_input_vjp_f32(const ebl_conv_geom *g,
                                        const float *dy, const float *w,
                                        float *dx, void *work);
void ebl_conv_transpose2d_weight_vjp_f32(const ebl_conv_geom *g,
                                         const float *x, const float *dy,
                                         float *dw, void *work);
void ebl_conv_transpose2d_bias_vjp_f32(const ebl_conv_geom *g,
                                       const float *dy, float *db);

void ebl_conv_transpose2d_forward_f64(const ebl_conv_geom *g,
                                      const double *x, const double *w,
                                      const double *b, double *y,
                                      void *work);
void ebl_conv_transpose2d_input_vjp_f64(const ebl_conv_geom *g,
                                        const double *dy, const double *w,
                                        double *dx, void *work);
void ebl_conv_transpose2d_weight_vjp_f64(const ebl_conv_geom *g,
                                         const double *x, const double *dy,
                                         double *dw, void *work);
void ebl_conv_transpose2d_bias_vjp_f64(const ebl_conv_geom *g,
                                       const double *dy, double *db);

/* Geometry of 2-D pooling over x (n, c, h_in, w_in). */
typedef struct ebl_pool_geom {
  int n, c, h_in, w_in;
  int kh, kw, stride_h, stride_w, pad_h, pad_w;
  int h_out, w_out;
} ebl_pool_geom;

/* Fills h_out and w_out (floor mode); returns 0, or -1 with a message
   starting "pool2d:" when the geometry is impossible. Padding may be at
   most half the kernel, so that every window holds an input. */
int ebl_pool_geom_finish(ebl_pool_geom *g, char *msg, size_t msg_len);

/* Max pooling keeps, for each output, the flat index (h*w_in + w) of the
   winning input within its (n, c) plane; padding never wins. */
void ebl_max_pool2d_forward_f32(const ebl_pool_geom *g, const float *x,
                                float *y, int32_t *argmax);
void ebl_max_pool2d_vjp_f32(const ebl_pool_geom *g, const float *dy,
                            const int32_t *argmax, float *dx);
void ebl_max_pool2d_forward_f64(const ebl_pool_geom *g, const double *x,
                                double *y, int32_t *argmax);
void ebl_max_pool2d_vjp_f64(const ebl_pool_geom *g, const double *dy,
                            const int32_t *argmax, double *dx);

/* Average pooling divides by kh*kw (padding counts as zeros). */
void ebl_avg_pool2d_forward_f32(const ebl_pool_geom *g, const float *x,
                                float *y);
void ebl_avg_pool2d_vjp_f32(const ebl_pool_geom *g, const float *dy,
                            float *dx);
void ebl_avg_pool2d_forward_f64(const ebl_pool_geom *g, const double *x,
                                double *y);
void ebl_avg_pool2d_vjp_f64(const ebl_pool_geom *g, const double *dy,
                            double *dx);

/* Losses over a batch of n rows of k values, as the batch mean of the
   per-row loss. mse: 1/2 sum_k (x - t)^2 per row. Cross-entropy takes
   logits and either integer labels (labels != NULL) or one-hot / soft
   targets (target != NULL). grad (may be NULL) receives d(loss)/dx of the
   batch mean. Returns the loss; a label outside 0..k-1 gives NaN (and
   NaN in that row of grad), as does n < 1. Soft targets need not sum to
   1: the loss is sum_k t_k (logsumexp - x_k) per row. */
double ebl_mse_loss_f32(int n, int k, const float *x, const float *t,
                        float *grad);
double ebl_mse_loss_f64(int n, int k, const double *x, const double *t,
                        double *grad);
double ebl_cross_entropy_f32(int n, int k, const float *logits,
                             const int32_t *labels, const float *target,
                             float *grad);
double ebl_cross_entropy_f64(int n, int k, const double *logits,
                             const int32_t *labels, const double *target,
                             double *grad);

#endif

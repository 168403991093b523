/* conv2d's float kernels through oneDNN, for layers.c: the calls return
   1 when oneDNN did the work and 0 when the caller must fall back to
   im2col + sgemm (no oneDNN in the build: headers missing or
   EBL_NO_ONEDNN defined; switched off; or a geometry it does not take).
   Not part of the public layer API. */
#ifndef EBL_CPU_CONV_ONEDNN_H
#define EBL_CPU_CONV_ONEDNN_H

#include <stddef.h>

#include "cpu/layers.h"

enum ebl_dnn_op {
  EBL_DNN_FORWARD,    /* a = x, b = w, out = y (+ bias) */
  EBL_DNN_INPUT_VJP,  /* a = dy, b = w, out = dx */
  EBL_DNN_WEIGHT_VJP, /* a = x, b = dy, out = dw */
  EBL_DNN_NOPS
};

/* Workspace bytes oneDNN needs for g at the current thread count, or 0
   when it will not run g. */
size_t ebl_onednn_conv_workspace(const ebl_conv_geom *g);

/* Runs op on g; `fallback_bytes` is what im2col needs, which the
   workspace is known to hold even if it was sized for another thread
   count. */
int ebl_onednn_conv(int op, const ebl_conv_geom *g, const float *a,
                    const float *b, const float *bias, float *out,
                    void *work, size_t fallback_bytes);

/* 1 when float convs of g run through oneDNN at the current thread
   count (builds its primitives if needed). */
int ebl_onednn_takes(const ebl_conv_geom *g);

/* Turns the oneDNN path on or off; returns the previous setting. */
int ebl_onednn_enable(int enable);

#endif

/* Layer operations from Lua: conv2d, conv_transpose2d, max and average
   pooling and the mse and cross-entropy losses, each beside its
   vector-Jacobian products (the *_vjp functions, *_grad for losses).
   Layout is NCHW. Pooling indices are 1-based in Lua. */
#include "lua/ltensor.h"
#include "nn.h"

static const char *const CONV_OPTS[] = {
  "stride", "padding", "dilation", "groups", NULL
};
static const char *const CONVT_OPTS[] = {
  "stride", "padding", "dilation", "groups", "output_padding", NULL
};

/* Reads {stride=, padding=, dilation=, groups= [, output_padding=]}. */
static ebl_conv_opts check_conv_opts(lua_State *L, int arg, int transpose) {
  ebl_conv_opts o = ebl_conv_opts_default();
  ebl_checkopts(L, arg, transpose ? CONVT_OPTS : CONV_OPTS);
  ebl_optpair(L, arg, "stride", 1, 1, o.stride);
  ebl_optpair(L, arg, "padding", 0, 0, o.padding);
  ebl_optpair(L, arg, "dilation", 1, 1, o.dilation);
  int64_t groups = ebl_optint(L, arg, "groups", 1);
  if (groups < 1 || groups > 1 << 20)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "option 'groups' must be >= 1, got %I", (lua_Integer)groups));
  o.groups = (int)groups;
  if (transpose)
    ebl_optpair(L, arg, "output_padding", 0, 0, o.output_padding);
  return o;
}

/* The shape argument of a VJP at arg: a table or a tensor's shape. */
static int check_like(lua_State *L, int arg, int64_t *shape) {
  ebl_tensor *t = ebl_testtensor(L, arg);
  if (t == NULL) {
    int next;
    return ebl_checkshape(L, arg, shape, 0, &next);
  }
  for (int i = 0; i < t->ndim; i++)
    shape[i] = t->shape[i];
  return t->ndim;
}

/* Pushes an unset tensor like `like` (dtype, device) of shape. */
static ebl_tensor *push_output(lua_State *L, const ebl_tensor *like,
                               int ndim, const int64_t *shape) {
  ebl_tensor *out = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_empty(out, like->dtype, ndim, shape,
                                 ebl_tensor_device(like)));
  return out;
}

/* ---- convolutions ---- */

/* The bias at arg 3 (nil allowed) and the options after it; conv2d(x,
   w, {stride = 2}) passes the options in place of the bias. */
static ebl_tensor *check_bias(lua_State *L, int transpose,
                              ebl_conv_opts *o) {
  int opts = 4;
  ebl_tensor *b = NULL;
  if (lua_type(L, 3) == LUA_TTABLE && lua_isnoneornil(L, 4))
    opts = 3;
  else if (!lua_isnoneornil(L, 3))
    b = ebl_checktensor(L, 3);
  *o = check_conv_opts(L, opts, transpose);
  return b;
}

/* ebl.conv2d(x, w [, b] [, options]) and conv_transpose2d (op 1). */
static int l_conv(lua_State *L) {
  int transpose = (int)lua_tointeger(L, lua_upvalueindex(1));
  ebl_tensor *x = ebl_checktensor(L, 1), *w = ebl_checktensor(L, 2);
  ebl_conv_opts o;
  ebl_tensor *b = check_bias(L, transpose, &o);
  ebl_tensor *y = ebl_pushnew(L);
  ebl_finish(L, transpose ? ebl_conv_transpose2d_new(y, x, w, b, &o)
                          : ebl_conv2d_new(y, x, w, b, &o));
  return 1;
}

/* ebl.conv2d_input_vjp(dy, w, x_shape [, options]) and the transposed
   conv's (op 1). */
static int l_conv_input_vjp(lua_State *L) {
  int transpose = (int)lua_tointeger(L, lua_upvalueindex(1));
  ebl_tensor *dy = ebl_checktensor(L, 1), *w = ebl_checktensor(L, 2);
  int64_t shape[EBL_MAX_DIMS];
  int ndim = check_like(L, 3, shape);
  ebl_conv_opts o = check_conv_opts(L, 4, transpose);
  ebl_tensor *dx = push_output(L, dy, ndim, shape);
  ebl_check_release(L, transpose ?
    ebl_conv_transpose2d_input_vjp(dx, dy, w, &o) :
    ebl_conv2d_input_vjp(dx, dy, w, &o), dx);
  return 1;
}

/* ebl.conv2d_weight_vjp(x, dy, w_shape [, options]) and the transposed
   conv's (op 1). */
static int l_conv_weight_vjp(lua_State *L) {
  int transpose = (int)lua_tointeger(L, lua_upvalueindex(1));
  ebl_tensor *x = ebl_checktensor(L, 1), *dy = ebl_checktensor(L, 2);
  int64_t shape[EBL_MAX_DIMS];
  int ndim = check_like(L, 3, shape);
  ebl_conv_opts o = check_conv_opts(L, 4, transpose);
  ebl_tensor *dw = push_output(L, dy, ndim, shape);
  ebl_check_release(L, transpose ?
    ebl_conv_transpose2d_weight_vjp(dw, x, dy, &o) :
    ebl_conv2d_weight_vjp(dw, x, dy, &o), dw);
  return 1;
}

/* ebl.conv2d_bias_vjp(dy): dy summed over n, h, w. */
static int l_conv_bias_vjp(lua_State *L) {
  ebl_tensor *dy = ebl_checktensor(L, 1);
  if (dy->ndim != 4)
    luaL_argerror(L, 1, lua_pushfstring(L,
      "dy must have 4 dims (n, c, h, w), got %d", dy->ndim));
  ebl_tensor *db = push_output(L, dy, 1, &dy->shape[1]);
  ebl_check_release(L, ebl_conv2d_bias_vjp(db, dy), db);
  return 1;
}

/* ---- pooling ---- */

/* Reads kernel, stride (nil: the kernel) and padding from arg on. */
static ebl_pool_opts check_pool(lua_State *L, int arg) {
  ebl_pool_opts o;
  luaL_checkany(L, arg);
  ebl_checkpair(L, arg, "kernel size", 1, 1, o.kernel);
  ebl_checkpair(L, arg + 1, "stride", 0, 1, o.stride);
  ebl_checkpair(L, arg + 2, "padding", 0, 0, o.padding);
  return o;
}

/* ebl.max_pool2d(x, kernel [, stride [, padding]]) -> y, indices */
static int l_max_pool2d(lua_State *L) {
  ebl_tensor *x = ebl_checktensor(L, 1);
  ebl_pool_opts o = check_pool(L, 2);
  ebl_tensor *y = ebl_pushnew(L);
  ebl_tensor *indices = ebl_pushnew(L);
  ebl_check(L, ebl_max_pool2d_new(y, indices, x, &o));
  ebl_account(L, y->storage->nbytes + indices->storage->nbytes);
  ebl_check(L, ebl_binary_scalar(EBL_ADD, indices, indices, 1));
  return 2;
}

/* Checks that the 1-based indices at arg point into planes of the input
   shape: the kernels trust them. */
static void check_indices(lua_State *L, int arg, const ebl_tensor *ind,
                          int ndim, const int64_t *shape) {
  if (ind->dtype != EBL_I32)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "indices must be int32 (from max_pool2d), got %s",
      ebl_dtype_name(ind->dtype)));
  if (ndim != 4 || ebl_tensor_numel(ind) == 0)
    return;
  double lo, hi, plane = (double)shape[2] * (double)shape[3];
  ebl_check(L, ebl_reduce_all(EBL_MIN, ind, 0, &lo));
  ebl_check(L, ebl_reduce_all(EBL_MAX, ind, 0, &hi));
  if (lo < 1 || hi > plane)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "indices must be in 1..%I (an input plane), got %I", (lua_Integer)plane,
      (lua_Integer)(lo < 1 ? lo : hi)));
}

/* ebl.max_pool2d_vjp(dy, indices, x_shape, kernel [, stride [,
   padding]]) -> dx */
static int l_max_pool2d_vjp(lua_State *L) {
  ebl_tensor *dy = ebl_checktensor(L, 1), *ind = ebl_checktensor(L, 2);
  int64_t shape[EBL_MAX_DIMS];
  int ndim = check_like(L, 3, shape);
  ebl_pool_opts o = check_pool(L, 4);
  check_indices(L, 2, ind, ndim, shape);
  ebl_tensor *zero_based = ebl_pushnew(L);
  ebl_finish(L, ebl_binary_scalar_new(EBL_SUB, zero_based, ind, 1));
  ebl_tensor *dx = push_output(L, dy, ndim, shape);
  ebl_status status = ebl_max_pool2d_vjp(dx, dy, zero_based, &o);
  ebl_tensor_release(zero_based);
  ebl_check_release(L, status, dx);
  return 1;
}

/* ebl.avg_pool2d(x, kernel [, stride [, padding]]) */
static int l_avg_pool2d(lua_State *L) {
  ebl_tensor *x = ebl_checktensor(L, 1);
  ebl_pool_opts o = check_pool(L, 2);
  ebl_tensor *y = ebl_pushnew(L);
  ebl_finish(L, ebl_avg_pool2d_new(y, x, &o));
  return 1;
}

/* ebl.avg_pool2d_vjp(dy, x_shape, kernel [, stride [, padding]]) */
static int l_avg_pool2d_vjp(lua_State *L) {
  ebl_tensor *dy = ebl_checktensor(L, 1);
  int64_t shape[EBL_MAX_DIMS];
  int ndim = check_like(L, 2, shape);
  ebl_pool_opts o = check_pool(L, 3);
  ebl_tensor *dx = push_output(L, dy, ndim, shape);
  ebl_check_release(L, ebl_avg_pool2d_vjp(dx, dy, &o), dx);
  return 1;
}

/* ---- losses ---- */

/* ebl.mse_loss(x, target) and cross_entropy (op 1), with the gradient
   as a second result for the *_grad forms (op 2 and 3). */
static int l_loss(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
  int cross = kind & 1, want_grad = kind & 2;
  ebl_tensor *x = ebl_checktensor(L, 1), *target = ebl_checktensor(L, 2);
  double loss;
  ebl_tensor *grad = NULL;
  if (want_grad) {
    grad = ebl_pushnew(L);
    ebl_finish(L, ebl_tensor_empty_like(grad, x));
  }
  ebl_status s = cross ? ebl_cross_entropy(&loss, x, target, grad)
                       : ebl_mse_loss(&loss, x, target, grad);
  ebl_check_release(L, s, grad);
  lua_pushnumber(L, loss);
  if (want_grad)
    lua_insert(L, -2);
  return want_grad ? 2 : 1;
}

#define CONV_OPTIONS \
  "Options: stride, padding, dilation (an integer or {h, w}) and " \
  "groups."

static const ebl_op_doc OPS[] = {
  {"conv2d", l_conv, 0,
   "conv2d(x, w [, b] [, options]) -> y: the 2-D convolution (cross-"
   "correlation) of x (n, c_in, h, w) with w (c_out, c_in/groups, kh, "
   "kw) plus bias b (c_out) if given. " CONV_OPTIONS "\n"
   "Example: ebl.conv2d(x, w, b, {stride = 1, padding = 1})"},
  {"conv_transpose2d", l_conv, 1,
   "conv_transpose2d(x, w [, b] [, options]) -> y: the transposed "
   "convolution, the adjoint of conv2d with the same weight w (c_in, "
   "c_out/groups, kh, kw). " CONV_OPTIONS " output_padding (0 .. "
   "stride-1) picks among the output sizes a stride allows.\n"
   "Example: ebl.conv_transpose2d(h, w, nil, {stride = 2, padding = 1, "
   "output_padding = 1})"},
  {"conv2d_input_vjp", l_conv_input_vjp, 0,
   "conv2d_input_vjp(dy, w, x_shape [, options]) -> dx: the gradient of "
   "<dy, conv2d(x, w)> with respect to x. x_shape is x's shape (a table) "
   "or x itself; the options are the forward's.\n"
   "Example: local dx = ebl.conv2d_input_vjp(dy, w, x, {padding = 1})"},
  {"conv2d_weight_vjp", l_conv_weight_vjp, 0,
   "conv2d_weight_vjp(x, dy, w_shape [, options]) -> dw: the gradient of "
   "<dy, conv2d(x, w)> with respect to w (w_shape: a table or w).\n"
   "Example: local dw = ebl.conv2d_weight_vjp(x, dy, w, {padding = 1})"},
  {"conv_transpose2d_input_vjp", l_conv_input_vjp, 1,
   "conv_transpose2d_input_vjp(dy, w, x_shape [, options]) -> dx: the "
   "gradient of <dy, conv_transpose2d(x, w)> with respect to x (x_shape: "
   "a table or x).\nExample: ebl.conv_transpose2d_input_vjp(dy, w, x, "
   "{stride = 2})"},
  {"conv_transpose2d_weight_vjp", l_conv_weight_vjp, 1,
   "conv_transpose2d_weight_vjp(x, dy, w_shape [, options]) -> dw: the "
   "gradient of <dy, conv_transpose2d(x, w)> with respect to w.\n"
   "Example: ebl.conv_transpose2d_weight_vjp(x, dy, w, {stride = 2})"},
  {"mse_loss", l_loss, 0,
   "mse_loss(x, target) -> the batch mean over rows (dim 1) of 1/2 the "
   "summed squared difference, a number; target has x's shape.\n"
   "Example: ebl.mse_loss(y, ebl.zeros_like(y))"},
  {"cross_entropy", l_loss, 1,
   "cross_entropy(logits, target) -> the batch mean of the cross-entropy "
   "of softmax(logits) (n, k). target is either class labels (int32 or "
   "uint8, shape (n), values 0..k-1: labels are values, not 1-based "
   "indices) or probabilities of the logits' shape.\n"
   "Example: ebl.cross_entropy(logits, labels)"},
  {"mse_loss_grad", l_loss, 2,
   "mse_loss_grad(x, target) -> loss, grad: mse_loss and its gradient "
   "with respect to x (x's shape).\n"
   "Example: local loss, dx = ebl.mse_loss_grad(y, t)"},
  {"cross_entropy_grad", l_loss, 3,
   "cross_entropy_grad(logits, target) -> loss, grad: cross_entropy and "
   "its gradient with respect to the logits, (softmax - target) / n.\n"
   "Example: local loss, dz = ebl.cross_entropy_grad(z, labels)"},
  {NULL, NULL, 0, NULL}
};

#define POOL_ARGS \
  "kernel and stride are integers or {h, w}; stride defaults to the " \
  "kernel, padding (at most half the kernel) to 0."

static const ebl_func_doc FUNCS[] = {
  {"conv2d_bias_vjp", l_conv_bias_vjp,
   "conv2d_bias_vjp(dy) -> db: dy (n, c, h, w) summed over n, h and w, "
   "the bias gradient of conv2d and of conv_transpose2d.\n"
   "Example: local db = ebl.conv2d_bias_vjp(dy)"},
  {"max_pool2d", l_max_pool2d,
   "max_pool2d(x, kernel [, stride [, padding]]) -> y, indices: the "
   "maximum of each window of x (n, c, h, w), and for each output the "
   "1-based flat index (row-1)*w + col of its winner within the (n, c) "
   "plane (int32). " POOL_ARGS "\n"
   "Example: local y, idx = ebl.max_pool2d(x, 2)"},
  {"max_pool2d_vjp", l_max_pool2d_vjp,
   "max_pool2d_vjp(dy, indices, x_shape, kernel [, stride [, padding]]) "
   "-> dx: dy routed back to the winners max_pool2d recorded (x_shape: "
   "a table or x).\nExample: local dx = ebl.max_pool2d_vjp(dy, idx, x, 2)"},
  {"avg_pool2d", l_avg_pool2d,
   "avg_pool2d(x, kernel [, stride [, padding]]) -> y: the mean of each "
   "window of x (n, c, h, w), dividing by the window size (padding "
   "counts as zeros). " POOL_ARGS "\nExample: ebl.avg_pool2d(x, 2)"},
  {"avg_pool2d_vjp", l_avg_pool2d_vjp,
   "avg_pool2d_vjp(dy, x_shape, kernel [, stride [, padding]]) -> dx: "
   "each dy spread evenly over its window, the adjoint of avg_pool2d "
   "(x_shape: a table or x).\n"
   "Example: local dx = ebl.avg_pool2d_vjp(dy, x, 2)"},
  {NULL, NULL, NULL}
};

/* Adds the layer functions to ebl. */
void ebl_open_nn(lua_State *L, int methods) {
  (void)methods;
  ebl_set_funcs(L, FUNCS);
  ebl_set_ops(L, OPS);
}

/* Tensor arithmetic from Lua: elementwise binary and unary operations
   (with in-place forms ending in _), comparisons, reductions over a dim
   or all, matmul, where, softmax and log_softmax. Each op is one C
   function with the core's op code as upvalue 1. */
#include <math.h>

#include "lua/ltensor.h"

/* The op code of the running closure. */
static int op_of(lua_State *L) {
  return (int)lua_tointeger(L, lua_upvalueindex(1));
}

/* The tensor at arg, or NULL when it is a number; anything else is an
   error. */
static ebl_tensor *tensor_or_number(lua_State *L, int arg) {
  if (lua_type(L, arg) == LUA_TNUMBER)
    return NULL;
  if (ebl_testtensor(L, arg) == NULL)
    luaL_typeerror(L, arg, "ebl.Tensor or number");
  return ebl_checktensor(L, arg);
}

/* ---- binary ---- */

/* a op b, either side a number: t:add(u), t + 2, 1 - t, t:lt(0). */
static int m_binary(lua_State *L) {
  ebl_binary_op op = (ebl_binary_op)op_of(L);
  ebl_tensor *a = tensor_or_number(L, 1), *b = tensor_or_number(L, 2);
  if (a == NULL && b == NULL)
    return luaL_typeerror(L, 1, EBL_TENSOR_MT);
  ebl_tensor *res = ebl_pushnew(L);
  if (a != NULL && b != NULL)
    ebl_finish(L, ebl_binary_new(op, res, a, b));
  else if (a != NULL)
    ebl_finish(L, ebl_binary_scalar_new(op, res, a, lua_tonumber(L, 2)));
  else
    ebl_finish(L, ebl_scalar_binary_new(op, res, lua_tonumber(L, 1), b));
  return 1;
}

/* t:add_(u [, alpha]) and the other in-place forms: t = t op u. */
static int m_binary_(lua_State *L) {
  ebl_binary_op op = (ebl_binary_op)op_of(L);
  ebl_tensor *a = ebl_checktensor(L, 1), *b = tensor_or_number(L, 2);
  if (!lua_isnoneornil(L, 3) && (op == EBL_ADD || op == EBL_SUB)) {
    double alpha = luaL_checknumber(L, 3);
    if (b == NULL)
      return luaL_argerror(L, 2, "alpha needs a tensor operand");
    ebl_check(L, ebl_axpby(a, op == EBL_ADD ? alpha : -alpha, b, 1));
  } else if (b != NULL) {
    ebl_check(L, ebl_binary(op, a, a, b));
  } else {
    ebl_check(L, ebl_binary_scalar(op, a, a, lua_tonumber(L, 2)));
  }
  lua_settop(L, 1);
  return 1;
}

/* ---- unary ---- */

/* The parameters of a unary op from arguments 2 and 3. */
static void unary_params(lua_State *L, int op, double *p0, double *p1) {
  *p0 = *p1 = 0;
  if (op == EBL_LEAKY_RELU || op == EBL_LEAKY_RELU_GRAD) {
    *p0 = luaL_optnumber(L, 2, 0.01);
  } else if (op == EBL_CLAMP) {
    *p0 = lua_isnoneornil(L, 2) ? -HUGE_VAL : luaL_checknumber(L, 2);
    *p1 = lua_isnoneornil(L, 3) ? HUGE_VAL : luaL_checknumber(L, 3);
    if (*p0 > *p1)
      luaL_argerror(L, 3, lua_pushfstring(L,
        "max must be >= min, got %f < %f", *p1, *p0));
  }
}

/* op(t): t:tanh(), -t (arguments past the parameters are ignored, as
   __unm passes t twice). */
static int m_unary(lua_State *L) {
  ebl_unary_op op = (ebl_unary_op)op_of(L);
  ebl_tensor *x = ebl_checktensor(L, 1);
  double p0, p1;
  unary_params(L, op, &p0, &p1);
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_unary_new(op, res, x, p0, p1));
  return 1;
}

/* t:tanh_() and the other in-place forms. */
static int m_unary_(lua_State *L) {
  ebl_unary_op op = (ebl_unary_op)op_of(L);
  ebl_tensor *x = ebl_checktensor(L, 1);
  double p0, p1;
  unary_params(L, op, &p0, &p1);
  ebl_check(L, ebl_unary(op, x, x, p0, p1));
  lua_settop(L, 1);
  return 1;
}

/* ---- reductions ---- */

/* Where the arguments of a reduction are: norm takes p first. */
typedef struct reduce_args {
  int dim;          /* 0-based, or EBL_DIM_ALL */
  int keepdim;
  double p;
} reduce_args;

/* Reads an optional boolean at arg. */
static int opt_bool(lua_State *L, int arg, const char *what) {
  if (lua_isnoneornil(L, arg))
    return 0;
  if (lua_type(L, arg) != LUA_TBOOLEAN)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a boolean, got %s",
                                          what, luaL_typename(L, arg)));
  return lua_toboolean(L, arg);
}

/* Reads [p,] dim, keepdim [, unbiased] for op. */
static void check_reduce(lua_State *L, int op, const ebl_tensor *x,
                         reduce_args *r) {
  int arg = 2;
  r->p = 0;
  if (op == EBL_NORM) {
    r->p = luaL_optnumber(L, arg, 2);
    if (!(r->p > 0))
      luaL_argerror(L, arg, lua_pushfstring(L, "p must be > 0, got %f",
                                            r->p));
    arg++;
  }
  r->dim = EBL_DIM_ALL;
  if (!lua_isnoneornil(L, arg))
    r->dim = ebl_checkdim(L, arg, x->ndim, 0);
  r->keepdim = opt_bool(L, arg + 1, "keepdim");
  if (op == EBL_VAR)
    r->p = lua_isnoneornil(L, arg + 2) ? 1 : opt_bool(L, arg + 2,
                                                      "unbiased");
}

/* t:sum([dim [, keepdim]]) and the others: over dim, or over all
   elements as a 0-dim tensor (it stays on its device; t:item() reads
   it). Positions from argmax and argmin come out 1-based. */
static int m_reduce(lua_State *L) {
  ebl_reduce_op op = (ebl_reduce_op)op_of(L);
  ebl_tensor *x = ebl_checktensor(L, 1);
  reduce_args r;
  check_reduce(L, op, x, &r);
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_reduce_new(op, res, x, r.dim, r.keepdim, r.p));
  if (op == EBL_ARGMAX || op == EBL_ARGMIN)
    ebl_check(L, ebl_binary_scalar(EBL_ADD, res, res, 1));
  return 1;
}

/* ---- matrices, selection, softmax ---- */

/* ebl.matmul(a, b), a:matmul(b) */
static int l_matmul(lua_State *L) {
  ebl_tensor *a = ebl_checktensor(L, 1), *b = ebl_checktensor(L, 2);
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_matmul_new(res, a, b));
  return 1;
}

/* The operand of where at arg: a tensor, or a number as a 0-dim tensor
   of dtype on the condition's device (pushed; it lives on the stack). */
static ebl_tensor *where_operand(lua_State *L, int arg, ebl_dtype dtype,
                                 ebl_device device) {
  ebl_tensor *t = tensor_or_number(L, arg);
  if (t != NULL)
    return t;
  t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_full(t, dtype, 0, NULL, lua_tonumber(L, arg),
                                device));
  return t;
}

/* ebl.where(cond, a, b) */
static int l_where(lua_State *L) {
  ebl_tensor *cond = ebl_checktensor(L, 1);
  ebl_tensor *a = tensor_or_number(L, 2), *b = tensor_or_number(L, 3);
  ebl_dtype dtype = a != NULL ? a->dtype : b != NULL ? b->dtype : EBL_F32;
  a = where_operand(L, 2, dtype, ebl_tensor_device(cond));
  b = where_operand(L, 3, dtype, ebl_tensor_device(cond));
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_where_new(res, cond, a, b));
  return 1;
}

/* ebl.softmax(x [, dim]) and log_softmax (op 1) */
static int l_softmax(lua_State *L) {
  int log = op_of(L);
  ebl_tensor *x = ebl_checktensor(L, 1);
  int dim = x->ndim == 0 ? 0 : x->ndim - 1;
  if (!lua_isnoneornil(L, 2))
    dim = ebl_checkdim(L, 2, x->ndim, 0);
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, log ? ebl_log_softmax_new(res, x, dim)
                    : ebl_softmax_new(res, x, dim));
  return 1;
}

/* ---- registration ---- */

#define BIN(name, op, what, example) \
  {name, m_binary, op, "t:" name "(u) -> " what " elementwise; u is a " \
   "tensor (broadcast, numpy rules) or a number, and the dtype is the " \
   "wider of the two.\nExample: " example}
#define BIN_(name, op, what) \
  {name "_", m_binary_, op, "t:" name "_(u) -> t, after t = " what \
   " in place (u a tensor broadcast to t, or a number).\n" \
   "Example: w:" name "_(2)"}
#define CMP(name, op, what) \
  {name, m_binary, op, "t:" name "(u) -> a uint8 tensor of 1 where " \
   what ", else 0 (u a tensor or a number). A method, not an operator: " \
   "Lua's __lt and __eq must return one boolean.\nExample: (x:" name \
   "(0)):sum()"}

static const ebl_op_doc BINARY[] = {
  BIN("add", EBL_ADD, "t + u", "x:add(1); x + y; 2 + x"),
  BIN("sub", EBL_SUB, "t - u", "x:sub(y); x - 1; 1 - x"),
  BIN("mul", EBL_MUL, "t * u (not a matrix product: see matmul)",
      "x * 0.5; x:mul(mask)"),
  BIN("div", EBL_DIV, "t / u (float dtypes)", "x / 255; 1 / x"),
  BIN("pow", EBL_POW, "t ^ u (float dtypes)", "x ^ 2; 2 ^ x"),
  BIN("maximum", EBL_MAXIMUM, "the larger of t and u",
      "x:maximum(0) -- relu"),
  BIN("minimum", EBL_MINIMUM, "the smaller of t and u", "x:minimum(1)"),
  {"add_", m_binary_, EBL_ADD,
   "t:add_(u [, alpha]) -> t, after t = t + u in place, or t + alpha*u "
   "with alpha (u a tensor broadcast to t, or a number).\n"
   "Example: w:add_(g, -0.01) -- a gradient step"},
  {"sub_", m_binary_, EBL_SUB,
   "t:sub_(u [, alpha]) -> t, after t = t - u in place, or t - alpha*u "
   "with alpha.\nExample: w:sub_(g, lr)"},
  BIN_("mul", EBL_MUL, "t * u"),
  BIN_("div", EBL_DIV, "t / u"),
  BIN_("pow", EBL_POW, "t ^ u"),
  BIN_("maximum", EBL_MAXIMUM, "max(t, u)"),
  BIN_("minimum", EBL_MINIMUM, "min(t, u)"),
  CMP("eq", EBL_EQ, "t == u"),
  CMP("ne", EBL_NE, "t ~= u"),
  CMP("lt", EBL_LT, "t < u"),
  CMP("le", EBL_LE, "t <= u"),
  CMP("gt", EBL_GT, "t > u"),
  CMP("ge", EBL_GE, "t >= u"),
  {NULL, NULL, 0, NULL}
};

#define UN(name, op, what, example) \
  {name, m_unary, op, "t:" name "() -> " what " elementwise, a new " \
   "tensor; t:" name "_() does it in place.\nExample: " example}, \
  {name "_", m_unary_, op, "t:" name "_() -> t, after t = " name \
   "(t) in place (" what ").\nExample: x:" name "_()"}

static const ebl_op_doc UNARY[] = {
  UN("neg", EBL_NEG, "-t", "x:neg(); -x"),
  UN("abs", EBL_ABS, "|t|", "(x - y):abs():max()"),
  UN("square", EBL_SQUARE, "t^2", "e:square():sum()"),
  UN("sign", EBL_SIGN, "-1, 0 or 1 by the sign of t", "x:sign()"),
  UN("exp", EBL_EXP, "e^t (float dtypes)", "x:exp()"),
  UN("log", EBL_LOG, "the natural log of t (float dtypes)", "p:log()"),
  UN("sqrt", EBL_SQRT, "the square root of t (float dtypes)", "v:sqrt()"),
  UN("reciprocal", EBL_RECIPROCAL, "1/t (float dtypes)",
     "x:reciprocal()"),
  UN("tanh", EBL_TANH, "tanh(t)", "h:tanh()"),
  UN("sigmoid", EBL_SIGMOID, "1/(1 + e^-t)", "h:sigmoid()"),
  UN("relu", EBL_RELU, "max(t, 0)", "h:relu()"),
  UN("gelu", EBL_GELU, "t*Phi(t), Phi the normal cdf", "h:gelu()"),
  UN("softplus", EBL_SOFTPLUS, "log(1 + e^t), stable for large |t|",
     "h:softplus()"),
  UN("tanh_grad", EBL_TANH_GRAD, "1 - tanh(t)^2, the derivative of tanh "
     "at t", "e * v:tanh_grad()"),
  UN("sigmoid_grad", EBL_SIGMOID_GRAD, "s(t)(1 - s(t)), the derivative "
     "of sigmoid at t", "v:sigmoid_grad()"),
  UN("relu_grad", EBL_RELU_GRAD, "1 where t > 0 else 0, the derivative "
     "of relu at t", "v:relu_grad()"),
  UN("gelu_grad", EBL_GELU_GRAD, "Phi(t) + t*phi(t), the derivative of "
     "gelu at t", "v:gelu_grad()"),
  UN("softplus_grad", EBL_SOFTPLUS_GRAD, "sigmoid(t), the derivative of "
     "softplus at t", "v:softplus_grad()"),
  {"leaky_relu", m_unary, EBL_LEAKY_RELU,
   "t:leaky_relu([slope]) -> t where t > 0, else slope*t (slope 0.01 by "
   "default); leaky_relu_ in place.\nExample: h:leaky_relu(0.1)"},
  {"leaky_relu_", m_unary_, EBL_LEAKY_RELU,
   "t:leaky_relu_([slope]) -> t, after leaky_relu in place.\n"
   "Example: h:leaky_relu_(0.1)"},
  {"leaky_relu_grad", m_unary, EBL_LEAKY_RELU_GRAD,
   "t:leaky_relu_grad([slope]) -> 1 where t > 0, else slope: the "
   "derivative of leaky_relu at t.\nExample: v:leaky_relu_grad(0.1)"},
  {"leaky_relu_grad_", m_unary_, EBL_LEAKY_RELU_GRAD,
   "t:leaky_relu_grad_([slope]) -> t, after leaky_relu_grad in place.\n"
   "Example: v:leaky_relu_grad_(0.1)"},
  {"clamp", m_unary, EBL_CLAMP,
   "t:clamp([min [, max]]) -> t limited to min..max elementwise (nil "
   "leaves a side open).\nExample: p:clamp(1e-7, 1); x:clamp(nil, 6)"},
  {"clamp_", m_unary_, EBL_CLAMP,
   "t:clamp_([min [, max]]) -> t, after clamp in place.\n"
   "Example: w:clamp_(-1, 1)"},
  {NULL, NULL, 0, NULL}
};

#define RED(name, op, what, example) \
  {name, m_reduce, op, "t:" name "([dim [, keepdim]]) -> " what \
   " over dim (1-based; negative from the end), a tensor with dim " \
   "removed (kept as size 1 with keepdim = true); without dim, over " \
   "all elements, as a 0-dim tensor (read it with :item()).\n" \
   "Example: " example}

static const ebl_op_doc REDUCE[] = {
  RED("sum", EBL_SUM, "the sum", "x:sum():item(); x:sum(2, true)"),
  RED("mean", EBL_MEAN, "the mean", "x:mean(1) -- column means"),
  RED("max", EBL_MAX, "the largest element (values only: argmax gives "
      "indices)", "x:max(); x:max(2)"),
  RED("min", EBL_MIN, "the smallest element", "x:min()"),
  RED("argmax", EBL_ARGMAX, "the 1-based index of the first largest "
      "element (int32; a flat row-major index without dim). Class labels "
      "are 0-based values, so compare logits:argmax(2) - 1 with them",
      "local pred = logits:argmax(2) - 1"),
  RED("argmin", EBL_ARGMIN, "the 1-based index of the first smallest "
      "element (int32; a flat row-major index without dim)", "d:argmin(2)"),
  {"var", m_reduce, EBL_VAR,
   "t:var([dim [, keepdim [, unbiased]]]) -> the variance over dim "
   "(1-based), dividing by n - 1 (unbiased, the default) or n; without "
   "dim over all elements, as a 0-dim tensor.\n"
   "Example: x:var(); x:var(1, false, false)"},
  {"norm", m_reduce, EBL_NORM,
   "t:norm([p [, dim [, keepdim]]]) -> the p-norm (p > 0, default 2; "
   "math.huge for the max norm) over dim (1-based), or of all elements "
   "as a 0-dim tensor.\nExample: g:norm():item(); x:norm(1, 2)"},
  {NULL, NULL, 0, NULL}
};

static const ebl_op_doc SOFTMAX[] = {
  {"softmax", l_softmax, 0,
   "softmax(x [, dim]) -> exp(x) / sum of exp(x) along dim (1-based, "
   "the last by default), computed stably. Also x:softmax(dim).\n"
   "Example: local p = ebl.softmax(logits, 2)"},
  {"log_softmax", l_softmax, 1,
   "log_softmax(x [, dim]) -> x - log(sum(exp(x))) along dim (1-based, "
   "the last by default), computed stably. Also x:log_softmax(dim).\n"
   "Example: local lp = logits:log_softmax()"},
  {NULL, NULL, 0, NULL}
};

static const ebl_func_doc FUNCS[] = {
  {"matmul", l_matmul,
   "matmul(a, b) -> the matrix product a @ b (float dtypes, one dtype). "
   "1-D operands act as row (a) or column (b) vectors; leading batch "
   "dims broadcast. Also a:matmul(b).\n"
   "Example: local y = ebl.matmul(x, w:transpose())"},
  {"where", l_where,
   "where(cond, a, b) -> a where cond is nonzero, else b, elementwise; "
   "a and b are tensors or numbers, all broadcast together.\n"
   "Example: ebl.where(x:gt(0), x, 0.01 * x)"},
  {NULL, NULL, NULL}
};

/* Adds the arithmetic functions and methods. */
void ebl_open_math(lua_State *L, int methods) {
  ebl_set_funcs(L, FUNCS);
  ebl_set_ops(L, SOFTMAX);
  lua_pushvalue(L, methods);
  ebl_set_ops(L, BINARY);
  ebl_set_ops(L, UNARY);
  ebl_set_ops(L, REDUCE);
  ebl_set_ops(L, SOFTMAX);
  lua_getfield(L, -2, "matmul");
  lua_setfield(L, -2, "matmul");
  lua_pop(L, 1);
}

/* Tensor creation from Lua: ebl.tensor from nested tables, zeros, ones,
   full, empty, arange, linspace, eye and the random generators. Every
   argument is checked before anything is allocated. */
#include <math.h>

#include "lua/ltensor.h"

static const char *const MAKE_OPTS[] = { "dtype", "device", NULL };

/* Where tensors are made when no device is named (src/lua/lcuda.c sets
   it). */
ebl_device ebl_lua_default_device = EBL_CPU;

/* What a creation function was asked for. */
typedef struct make_args {
  int ndim;
  int64_t shape[EBL_MAX_DIMS];
  ebl_dtype dtype;
  ebl_device device;
  int opts;               /* the argument holding the options */
} make_args;

/* Reads the options at arg: nil, a dtype name or {dtype=, device=};
   what is not given is def_dtype on def_device. */
static void check_opts(lua_State *L, int arg, ebl_dtype def_dtype,
                       ebl_device def_device, make_args *a) {
  a->opts = arg;
  a->device = def_device;
  if (lua_type(L, arg) == LUA_TSTRING) {
    a->dtype = ebl_checkdtype(L, arg);
    return;
  }
  ebl_checkopts(L, arg, MAKE_OPTS);
  a->dtype = ebl_optdtype(L, arg, def_dtype);
  a->device = ebl_optdevice(L, arg, def_device);
}

/* Reads a shape from arg on, then the options. */
static void check_make(lua_State *L, int arg, ebl_dtype def, make_args *a) {
  int next;
  a->ndim = ebl_checkshape(L, arg, a->shape, 0, &next);
  check_opts(L, next, def, ebl_lua_default_device, a);
}

/* Raises an error unless the dtype asked for is a float dtype. */
static void check_float(lua_State *L, const make_args *a) {
  if (!ebl_dtype_is_float(a->dtype))
    luaL_argerror(L, a->opts, lua_pushfstring(L,
      "dtype must be float32 or float64, got %s",
      ebl_dtype_name(a->dtype)));
}

/* ---- from shapes ---- */

enum { MAKE_EMPTY, MAKE_ZEROS, MAKE_ONES, MAKE_RAND, MAKE_RANDN };

/* Calls the core constructor of `kind`. */
static ebl_status make(int kind, ebl_tensor *t, const make_args *a) {
  switch (kind) {
  case MAKE_EMPTY:
    return ebl_tensor_empty(t, a->dtype, a->ndim, a->shape, a->device);
  case MAKE_ZEROS:
    return ebl_tensor_zeros(t, a->dtype, a->ndim, a->shape, a->device);
  case MAKE_ONES:
    return ebl_tensor_ones(t, a->dtype, a->ndim, a->shape, a->device);
  case MAKE_RAND:
    return ebl_tensor_rand(t, a->dtype, a->ndim, a->shape, a->device);
  default:
    return ebl_tensor_randn(t, a->dtype, a->ndim, a->shape, a->device);
  }
}

/* ebl.zeros, ones, empty, rand, randn (shape..., options). */
static int l_make(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
  make_args a;
  check_make(L, 1, EBL_F32, &a);
  if (kind == MAKE_RAND || kind == MAKE_RANDN)
    check_float(L, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, make(kind, t, &a));
  return 1;
}

/* ebl.full(shape, value [, options]) */
static int l_full(lua_State *L) {
  make_args a;
  int next;
  luaL_checktype(L, 1, LUA_TTABLE);
  a.ndim = ebl_checkshape(L, 1, a.shape, 0, &next);
  double value = luaL_checknumber(L, 2);
  check_opts(L, 3, EBL_F32, ebl_lua_default_device, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_full(t, a.dtype, a.ndim, a.shape, value,
                                a.device));
  return 1;
}

/* ebl.zeros_like, ones_like, empty_like (t [, options]) */
static int l_make_like(lua_State *L) {
  int kind = (int)lua_tointeger(L, lua_upvalueindex(1));
  ebl_tensor *like = ebl_checktensor(L, 1);
  make_args a;
  check_opts(L, 2, like->dtype, ebl_tensor_device(like), &a);
  a.ndim = like->ndim;
  for (int i = 0; i < like->ndim; i++)
    a.shape[i] = like->shape[i];
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, make(kind, t, &a));
  return 1;
}

/* ---- from nested tables ---- */

/* Pushes a copy of src with the dtype and device of a. */
static int copy_tensor(lua_State *L, const ebl_tensor *src,
                       const make_args *a) {
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_to_dtype(t, src, a->dtype));
  if (a->device != ebl_tensor_device(t))
    ebl_finish(L, ebl_to_device(t, t, a->device));
  if (t->storage == src->storage)
    ebl_finish(L, ebl_tensor_clone(t, t));
  return 1;
}

/* ebl.tensor(data [, dtype or options]) */
static int l_tensor(lua_State *L) {
  make_args a;
  ebl_tensor *src = ebl_testtensor(L, 1);
  if (src != NULL) {
    src = ebl_checktensor(L, 1);
    check_opts(L, 2, src->dtype, ebl_tensor_device(src), &a);
    return copy_tensor(L, src, &a);
  }
  check_opts(L, 2, EBL_F32, ebl_lua_default_device, &a);
  a.ndim = ebl_nested_shape(L, 1, a.dtype, a.shape);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_empty(t, a.dtype, a.ndim, a.shape, EBL_CPU));
  ebl_nested_fill(L, 1, t);
  if (a.device != EBL_CPU)
    ebl_finish(L, ebl_to_device(t, t, a.device));
  return 1;
}

/* ---- ranges ---- */

/* Counts the numbers from arg 1 on (at most max). */
static int count_numbers(lua_State *L, int max) {
  int n = 0;
  while (n < max && lua_type(L, n + 1) == LUA_TNUMBER)
    n++;
  return n;
}

/* ebl.arange(stop) or arange(start, stop [, step]) [, options] */
static int l_arange(lua_State *L) {
  int n = count_numbers(L, 3);
  double start = 0, stop, step = 1;
  if (n == 0)
    luaL_checknumber(L, 1);
  if (n == 1) {
    stop = lua_tonumber(L, 1);
  } else {
    start = lua_tonumber(L, 1);
    stop = lua_tonumber(L, 2);
    step = n == 3 ? lua_tonumber(L, 3) : 1;
  }
  luaL_argcheck(L, step != 0, 3, "step must not be 0");
  double count = ceil((stop - start) / step);
  luaL_argcheck(L, isfinite(count) && count < 1e15, n, lua_pushfstring(L,
    "arange from %f to %f by %f has too many elements", start, stop, step));
  make_args a;
  check_opts(L, n + 1, EBL_F32, ebl_lua_default_device, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_arange(t, a.dtype, start, stop, step, a.device));
  return 1;
}

/* ebl.linspace(start, stop, n [, options]) */
static int l_linspace(lua_State *L) {
  double start = luaL_checknumber(L, 1), stop = luaL_checknumber(L, 2);
  int64_t n = ebl_checkint(L, 3, "point count");
  luaL_argcheck(L, n >= 1, 3, lua_pushfstring(L,
    "point count must be >= 1, got %I", (lua_Integer)n));
  make_args a;
  check_opts(L, 4, EBL_F32, ebl_lua_default_device, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_linspace(t, a.dtype, start, stop, n, a.device));
  return 1;
}

/* Reads a size >= 0 at arg. */
static int64_t check_count(lua_State *L, int arg, const char *what) {
  int64_t n = ebl_checkint(L, arg, what);
  if (n < 0)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= 0, got %I",
                                          what, (lua_Integer)n));
  return n;
}

/* ebl.eye(n [, m] [, options]) */
static int l_eye(lua_State *L) {
  int64_t rows = check_count(L, 1, "size"), cols = rows;
  int next = 2;
  if (lua_type(L, 2) == LUA_TNUMBER)
    cols = check_count(L, next++, "size");
  make_args a;
  check_opts(L, next, EBL_F32, ebl_lua_default_device, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_eye(t, a.dtype, rows, cols, a.device));
  return 1;
}

/* ---- random integers ---- */

/* ebl.randint(lo, hi, shape... [, options]) */
static int l_randint(lua_State *L) {
  int64_t lo = ebl_checkint(L, 1, "lo"), hi = ebl_checkint(L, 2, "hi");
  if (hi <= lo)
    luaL_argerror(L, 2, lua_pushfstring(L, "hi must be > lo, got %I <= %I",
                                        (lua_Integer)hi, (lua_Integer)lo));
  make_args a;
  check_make(L, 3, EBL_I32, &a);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_randint(t, a.dtype, a.ndim, a.shape, lo, hi,
                                   a.device));
  return 1;
}

/* ebl.randperm(n [, options]): a permutation of 1..n. */
static int l_randperm(lua_State *L) {
  int64_t n = check_count(L, 1, "n");
  make_args a;
  check_opts(L, 2, EBL_I32, ebl_lua_default_device, &a);
  if (a.dtype == EBL_U8 && n > 255)
    luaL_argerror(L, 1, lua_pushfstring(L,
      "n must be <= 255 for uint8, got %I", (lua_Integer)n));
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_randperm(t, a.dtype, n, a.device));
  ebl_check(L, ebl_binary_scalar(EBL_ADD, t, t, 1));
  return 1;
}

/* ebl.manual_seed(seed) */
static int l_manual_seed(lua_State *L) {
  int64_t seed = ebl_checkint(L, 1, "seed");
  luaL_argcheck(L, seed >= 0, 1, lua_pushfstring(L,
    "seed must be >= 0, got %I", (lua_Integer)seed));
  ebl_manual_seed((uint64_t)seed);
  return 0;
}

#define SHAPE_ARGS \
  "The shape is a table {2, 3} or sizes 2, 3; options: a dtype name " \
  "or {dtype = 'float32' | 'float64' | 'int32' | 'uint8', " \
  "device = 'cpu' | 'cuda'}. "

static const ebl_op_doc MAKE_OPS[] = {
  {"zeros", l_make, MAKE_ZEROS,
   "zeros(shape [, options]) -> a tensor of zeros (float32 by default). "
   SHAPE_ARGS "\nExample: ebl.zeros{2, 3}; ebl.zeros(2, 3, 'float64')"},
  {"ones", l_make, MAKE_ONES,
   "ones(shape [, options]) -> a tensor of ones. " SHAPE_ARGS
   "\nExample: ebl.ones(4, {dtype = 'int32'})"},
  {"empty", l_make, MAKE_EMPTY,
   "empty(shape [, options]) -> a tensor whose elements are not set "
   "(whatever the memory held). " SHAPE_ARGS
   "\nExample: local out = ebl.empty{128, 10}"},
  {"rand", l_make, MAKE_RAND,
   "rand(shape [, options]) -> uniform numbers in [0, 1) from the "
   "generator seeded by ebl.manual_seed (float dtypes). " SHAPE_ARGS
   "\nExample: ebl.manual_seed(7); local u = ebl.rand(3, 3)"},
  {"randn", l_make, MAKE_RANDN,
   "randn(shape [, options]) -> standard normal numbers (float dtypes). "
   SHAPE_ARGS "\nExample: local w = ebl.randn{784, 10} * 0.01"},
  {"zeros_like", l_make_like, MAKE_ZEROS,
   "zeros_like(t [, options]) -> zeros of t's shape, dtype and device "
   "(options may change dtype and device).\n"
   "Example: local g = ebl.zeros_like(w)"},
  {"ones_like", l_make_like, MAKE_ONES,
   "ones_like(t [, options]) -> ones of t's shape, dtype and device.\n"
   "Example: local m = ebl.ones_like(x, 'uint8')"},
  {"empty_like", l_make_like, MAKE_EMPTY,
   "empty_like(t [, options]) -> an unset tensor of t's shape, dtype "
   "and device.\nExample: local out = ebl.empty_like(x)"},
  {NULL, NULL, 0, NULL}
};

static const ebl_func_doc FUNCS[] = {
  {"tensor", l_tensor,
   "tensor(data [, options]) -> a new tensor from a nested table of "
   "numbers (rows of equal length), a number (0-dim) or a tensor (a "
   "copy). float32 unless options say otherwise (a dtype name or "
   "{dtype =, device =}); int32 and uint8 take integers in range only.\n"
   "Example: ebl.tensor{{1, 2}, {3, 4}}; ebl.tensor({1, 2}, 'int32')"},
  {"full", l_full,
   "full(shape, value [, options]) -> a tensor of the given shape (a "
   "table) with every element value.\n"
   "Example: ebl.full({2, 2}, 0.5)"},
  {"arange", l_arange,
   "arange([start,] stop [, step] [, options]) -> 1-D start, "
   "start+step, ... up to but excluding stop, as numpy (start 0, step "
   "1 by default; float32 unless options say otherwise).\n"
   "Example: ebl.arange(5) --> 0 1 2 3 4; ebl.arange(1, 2, 0.25)"},
  {"linspace", l_linspace,
   "linspace(start, stop, n [, options]) -> 1-D n evenly spaced points "
   "from start to stop, both included.\n"
   "Example: ebl.linspace(0, 1, 5) --> 0 0.25 0.5 0.75 1"},
  {"eye", l_eye,
   "eye(n [, m] [, options]) -> an n x m (n x n) matrix with ones on "
   "the diagonal.\nExample: ebl.eye(3); ebl.eye(2, 3, 'float64')"},
  {"randint", l_randint,
   "randint(lo, hi, shape [, options]) -> integers uniform in lo..hi-1 "
   "(int32 by default).\n"
   "Example: local labels = ebl.randint(0, 10, {64})"},
  {"randperm", l_randperm,
   "randperm(n [, options]) -> a random permutation of 1..n, usable as "
   "Lua indices (int32 by default).\n"
   "Example: local order = ebl.randperm(60000)"},
  {"manual_seed", l_manual_seed,
   "manual_seed(seed): seeds the random generator (seed >= 0) and "
   "rewinds it; a seed gives the same numbers on any thread count.\n"
   "Example: ebl.manual_seed(7); print(ebl.randn(2))"},
  {NULL, NULL, NULL}
};

/* Adds the creation functions to ebl. */
void ebl_open_create(lua_State *L, int methods) {
  (void)methods;
  ebl_set_funcs(L, FUNCS);
  ebl_set_ops(L, MAKE_OPS);
}

/* Tensor methods about shape and storage: metadata, Lua values out of
   tensors (totable, item), views (reshape, transpose, narrow, ...),
   copies, fills and dtype or device changes. Dims and indices are
   1-based here and 0-based in the core. */
#include <string.h>

#include "lua/ltensor.h"

/* Pushes a new tensor and fills it with the core's result. */
#define PUSH_RESULT(L, call) \
  do { ebl_tensor *res_ = ebl_pushnew(L); ebl_finish(L, call); } while (0)

/* Pushes a size or shape entry. */
static void push_sizes(lua_State *L, const int64_t *v, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- metadata ---- */

/* t:shape() */
static int m_shape(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  push_sizes(L, t->shape, t->ndim);
  return 1;
}

/* t:size([dim]) */
static int m_size(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (lua_isnoneornil(L, 2))
    return m_shape(L);
  int dim = ebl_checkdim(L, 2, t->ndim, 0);
  lua_pushinteger(L, (lua_Integer)t->shape[dim]);
  return 1;
}

/* t:stride([dim]) */
static int m_stride(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    push_sizes(L, t->stride, t->ndim);
    return 1;
  }
  int dim = ebl_checkdim(L, 2, t->ndim, 0);
  lua_pushinteger(L, (lua_Integer)t->stride[dim]);
  return 1;
}

/* t:dim() */
static int m_dim(lua_State *L) {
  lua_pushinteger(L, ebl_checktensor(L, 1)->ndim);
  return 1;
}

/* t:numel() */
static int m_numel(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ebl_tensor_numel(ebl_checktensor(L, 1)));
  return 1;
}

/* t:dtype() */
static int m_dtype(lua_State *L) {
  lua_pushstring(L, ebl_dtype_name(ebl_checktensor(L, 1)->dtype));
  return 1;
}

/* t:device() */
static int m_device(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  lua_pushstring(L, ebl_device_name(ebl_tensor_device(t)));
  return 1;
}

/* t:is_contiguous() */
static int m_is_contiguous(lua_State *L) {
  lua_pushboolean(L, ebl_tensor_is_contiguous(ebl_checktensor(L, 1)));
  return 1;
}

/* t:shares_storage(u) */
static int m_shares_storage(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1), *u = ebl_checktensor(L, 2);
  lua_pushboolean(L, t->storage == u->storage);
  return 1;
}

/* ---- Lua values ---- */

/* Pushes v as an integer for integer dtypes, else as a float. */
static void push_value(lua_State *L, double v, ebl_dtype dtype) {
  if (ebl_dtype_is_float(dtype))
    lua_pushnumber(L, v);
  else
    lua_pushinteger(L, (lua_Integer)v);
}

/* t:item() */
static int m_item(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int64_t n = ebl_tensor_numel(t);
  if (n != 1)
    luaL_argerror(L, 1, lua_pushfstring(L,
      "item needs a tensor of one element, got %I", (lua_Integer)n));
  double v;
  ebl_check(L, ebl_tensor_item(t, &v));
  push_value(L, v, t->dtype);
  return 1;
}

/* Builds the nested table of dim `depth` from values[*at...]. */
static void build_table(lua_State *L, const ebl_tensor *t, int depth,
                        const double *values, int64_t *at) {
  int64_t n = t->shape[depth];
  lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
  for (int64_t i = 1; i <= n; i++) {
    if (depth + 1 == t->ndim)
      push_value(L, values[(*at)++], t->dtype);
    else
      build_table(L, t, depth + 1, values, at);
    lua_rawseti(L, -2, (lua_Integer)i);
  }
}

/* t:totable() */
static int m_totable(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (t->ndim == 0)
    return m_item(L);
  int64_t n = ebl_tensor_numel(t), at = 0;
  double *values = lua_newuserdatauv(L, (size_t)n * sizeof *values, 0);
  ebl_check(L, ebl_tensor_to_buffer(t, values, EBL_F64));
  luaL_checkstack(L, EBL_MAX_DIMS + 4, "totable");
  build_table(L, t, 0, values, &at);
  return 1;
}

/* ---- views ---- */

/* t:clone() */
static int m_clone(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  PUSH_RESULT(L, ebl_tensor_clone(res_, t));
  return 1;
}

/* t:contiguous() */
static int m_contiguous(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  PUSH_RESULT(L, ebl_tensor_contiguous(res_, t));
  return 1;
}

/* t:reshape(shape) */
static int m_reshape(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int64_t shape[EBL_MAX_DIMS];
  int next, ndim = ebl_checkshape(L, 2, shape, 1, &next);
  PUSH_RESULT(L, ebl_tensor_reshape(res_, t, ndim, shape));
  return 1;
}

/* t:view(shape): reshape that never copies. */
static int m_view(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (!ebl_tensor_is_contiguous(t))
    luaL_argerror(L, 1, "view needs a contiguous tensor (use reshape, or "
                  "contiguous first)");
  return m_reshape(L);
}

/* t:transpose([d1, d2]): d1, d2 default to 1, 2 for a matrix. */
static int m_transpose(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int d0 = 0, d1 = 1;
  if (lua_isnoneornil(L, 2) && t->ndim != 2)
    luaL_argerror(L, 2, lua_pushfstring(L,
      "dims needed for a %d-dim tensor (defaults only for 2 dims)",
      t->ndim));
  if (!lua_isnoneornil(L, 2)) {
    d0 = ebl_checkdim(L, 2, t->ndim, 0);
    d1 = ebl_checkdim(L, 3, t->ndim, 0);
  }
  PUSH_RESULT(L, ebl_tensor_transpose(res_, t, d0, d1));
  return 1;
}

/* Reads a permutation of 1..ndim (table or varargs from arg 2). */
static void check_perm(lua_State *L, int ndim, int *perm) {
  int64_t dims[EBL_MAX_DIMS];
  int next, seen[EBL_MAX_DIMS] = { 0 };
  int n = ebl_checkshape(L, 2, dims, 0, &next);
  if (n != ndim)
    luaL_argerror(L, 2, lua_pushfstring(L,
      "permute needs %d dims, got %d", ndim, n));
  for (int i = 0; i < n; i++) {
    if (dims[i] < 1 || dims[i] > ndim || seen[dims[i] - 1]++)
      luaL_argerror(L, 2, lua_pushfstring(L,
        "dims must be a permutation of 1..%d, got %I at place %d", ndim,
        (lua_Integer)dims[i], i + 1));
    perm[i] = (int)dims[i] - 1;
  }
}

/* t:permute(dims) */
static int m_permute(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int perm[EBL_MAX_DIMS];
  check_perm(L, t->ndim, perm);
  PUSH_RESULT(L, ebl_tensor_permute(res_, t, perm));
  return 1;
}

/* t:narrow(dim, start, length) */
static int m_narrow(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int dim = ebl_checkdim(L, 2, t->ndim, 0);
  int64_t size = t->shape[dim];
  int64_t start = ebl_checkint(L, 3, "start");
  int64_t length = ebl_checkint(L, 4, "length");
  if (start < 1 || start > size + 1)
    luaL_argerror(L, 3, lua_pushfstring(L,
      "start must be in 1..%I, got %I", (lua_Integer)size + 1,
      (lua_Integer)start));
  if (length < 0 || start - 1 + length > size)
    luaL_argerror(L, 4, lua_pushfstring(L,
      "length must be in 0..%I (dim %d has size %I), got %I",
      (lua_Integer)(size - start + 1), dim + 1, (lua_Integer)size,
      (lua_Integer)length));
  PUSH_RESULT(L, ebl_tensor_narrow(res_, t, dim, start - 1, length));
  return 1;
}

/* t:select(dim, index) */
static int m_select(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int dim = ebl_checkdim(L, 2, t->ndim, 0);
  int64_t index = ebl_checkindex(L, 3, t->shape[dim]);
  PUSH_RESULT(L, ebl_tensor_select(res_, t, dim, index));
  return 1;
}

/* t:unsqueeze(dim) */
static int m_unsqueeze(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int dim = ebl_checkdim(L, 2, t->ndim, 1);
  PUSH_RESULT(L, ebl_tensor_unsqueeze(res_, t, dim));
  return 1;
}

/* t:squeeze([dim]) */
static int m_squeeze(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int dim = EBL_DIM_ALL;
  if (!lua_isnoneornil(L, 2))
    dim = ebl_checkdim(L, 2, t->ndim, 0);
  PUSH_RESULT(L, ebl_tensor_squeeze(res_, t, dim));
  return 1;
}

/* t:expand(shape) */
static int m_expand(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int64_t shape[EBL_MAX_DIMS];
  int next, ndim = ebl_checkshape(L, 2, shape, 1, &next);
  PUSH_RESULT(L, ebl_tensor_expand(res_, t, ndim, shape));
  return 1;
}

/* t:flatten([start [, end]]) */
static int m_flatten(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  int n = t->ndim > 0 ? t->ndim : 1;
  int start = 0, end = n - 1;
  if (!lua_isnoneornil(L, 2))
    start = t->ndim == 0 ? 0 : ebl_checkdim(L, 2, t->ndim, 0);
  if (!lua_isnoneornil(L, 3))
    end = t->ndim == 0 ? 0 : ebl_checkdim(L, 3, t->ndim, 0);
  if (end < start)
    luaL_argerror(L, 3, lua_pushfstring(L,
      "end dim %d comes before start dim %d", end + 1, start + 1));
  PUSH_RESULT(L, ebl_tensor_flatten(res_, t, start, end));
  return 1;
}

/* ---- writing ---- */

/* t:copy(src) */
static int m_copy(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1), *src = ebl_checktensor(L, 2);
  ebl_check(L, ebl_copy(t, src));
  lua_settop(L, 1);
  return 1;
}

/* t:fill(value) */
static int m_fill(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  ebl_check(L, ebl_fill(t, luaL_checknumber(L, 2)));
  lua_settop(L, 1);
  return 1;
}

/* ---- dtypes and devices ---- */

/* Pushes t converted to dtype and device. */
static int push_converted(lua_State *L, ebl_tensor *t, ebl_dtype dtype,
                          ebl_device device) {
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_to_dtype(res, t, dtype));
  if (device != ebl_tensor_device(res))
    ebl_finish(L, ebl_to_device(res, res, device));
  return 1;
}

/* t:float(), t:double(), t:int(), t:byte() (dtype as upvalue). */
static int m_as(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  ebl_dtype dtype = (ebl_dtype)lua_tointeger(L, lua_upvalueindex(1));
  return push_converted(L, t, dtype, ebl_tensor_device(t));
}

/* Reads the target of t:to(...) at arg 2 into dtype and device. */
static void check_target(lua_State *L, const ebl_tensor *t,
                         ebl_dtype *dtype, ebl_device *device) {
  static const char *const known[] = { "dtype", "device", NULL };
  *dtype = t->dtype;
  *device = ebl_tensor_device(t);
  if (lua_type(L, 2) == LUA_TTABLE) {
    ebl_checkopts(L, 2, known);
    *dtype = ebl_optdtype(L, 2, *dtype);
    *device = ebl_optdevice(L, 2, *device);
    return;
  }
  const char *name = luaL_checkstring(L, 2);
  for (int d = 0; d < EBL_NDEVICES; d++)
    if (strcmp(name, ebl_device_name((ebl_device)d)) == 0) {
      *device = (ebl_device)d;
      return;
    }
  *dtype = ebl_checkdtype(L, 2);
}

/* t:to(dtype | device | {dtype =, device =}) */
static int m_to(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  ebl_dtype dtype;
  ebl_device device;
  check_target(L, t, &dtype, &device);
  return push_converted(L, t, dtype, device);
}

#define NO_COPY \
  "A view: it shares t's storage, so writes show through both. "

static const ebl_func_doc METHODS[] = {
  {"shape", m_shape,
   "t:shape() -> a table of the sizes, one per dim ({} for 0 dims).\n"
   "Example: ebl.zeros{2, 3}:shape() --> {2, 3}"},
  {"size", m_size,
   "t:size([dim]) -> the size of dim (1-based; negative counts from the "
   "end), or the shape table without dim.\n"
   "Example: ebl.zeros{2, 3}:size(2) --> 3; x:size(-1)"},
  {"stride", m_stride,
   "t:stride([dim]) -> the step in elements between neighbours along "
   "dim (1-based), or a table of all strides.\n"
   "Example: ebl.zeros{2, 3}:stride() --> {3, 1}"},
  {"dim", m_dim,
   "t:dim() -> the number of dims (0 for a scalar).\n"
   "Example: ebl.zeros{2, 3}:dim() --> 2"},
  {"numel", m_numel,
   "t:numel() -> the number of elements (1 for a 0-dim tensor).\n"
   "Example: ebl.zeros{2, 3}:numel() --> 6"},
  {"dtype", m_dtype,
   "t:dtype() -> 'float32', 'float64', 'int32' or 'uint8'.\n"
   "Example: ebl.zeros(2):dtype() --> 'float32'"},
  {"device", m_device,
   "t:device() -> 'cpu' or 'cuda'.\nExample: print(x:device())"},
  {"is_contiguous", m_is_contiguous,
   "t:is_contiguous() -> true when the elements lie dense in row-major "
   "order.\nExample: ebl.zeros{2, 3}:transpose():is_contiguous() --> "
   "false"},
  {"shares_storage", m_shares_storage,
   "t:shares_storage(u) -> true when t and u are views of the same "
   "storage.\nExample: x:shares_storage(x[1]) --> true"},
  {"item", m_item,
   "t:item() -> the only element of a one-element tensor as a Lua "
   "number (an integer for int32 and uint8).\n"
   "Example: ebl.tensor{{5}}:item() --> 5.0"},
  {"totable", m_totable,
   "t:totable() -> nested Lua tables of the elements (a number for a "
   "0-dim tensor).\nExample: ebl.eye(2):totable() --> {{1.0, 0.0}, "
   "{0.0, 1.0}}"},
  {"clone", m_clone,
   "t:clone() -> a contiguous copy with its own storage.\n"
   "Example: local backup = w:clone()"},
  {"contiguous", m_contiguous,
   "t:contiguous() -> t itself when contiguous, else a contiguous "
   "copy.\nExample: local c = x:transpose():contiguous()"},
  {"reshape", m_reshape,
   "t:reshape(shape) -> the same elements in a new shape (a table or "
   "sizes; one size may be -1). A view when the strides allow, else a "
   "copy.\nExample: ebl.arange(6):reshape(2, 3); x:reshape{-1, 784}"},
  {"view", m_view,
   "t:view(shape) -> like reshape, but always a view: t must be "
   "contiguous. " NO_COPY "\nExample: local flat = x:view(-1)"},
  {"transpose", m_transpose,
   "t:transpose([d1, d2]) -> dims d1 and d2 (1-based) swapped; a matrix "
   "needs no dims. " NO_COPY "\nExample: w:transpose(); x:transpose(1, 3)"},
  {"permute", m_permute,
   "t:permute(dims) -> dim i of the result is dim dims[i] of t (1-based, "
   "a table or varargs). " NO_COPY
   "\nExample: img:permute(3, 1, 2) -- HWC to CHW"},
  {"narrow", m_narrow,
   "t:narrow(dim, start, length) -> indices start .. start+length-1 of "
   "dim (1-based). " NO_COPY "\nExample: x:narrow(1, 1, 32) -- first 32 "
   "rows"},
  {"select", m_select,
   "t:select(dim, index) -> the slice at index (1-based, negative from "
   "the end) of dim, which is removed. " NO_COPY
   "\nExample: x:select(2, 1) -- first column"},
  {"unsqueeze", m_unsqueeze,
   "t:unsqueeze(dim) -> a size-1 dim inserted so that it becomes dim "
   "(1..dim()+1). " NO_COPY "\nExample: v:unsqueeze(1) -- row vector"},
  {"squeeze", m_squeeze,
   "t:squeeze([dim]) -> dim removed if its size is 1; without dim, "
   "every size-1 dim. " NO_COPY "\nExample: ebl.zeros{1, 3, 1}:squeeze()"
   ":shape() --> {3}"},
  {"expand", m_expand,
   "t:expand(shape) -> t broadcast to shape (new dims in front, -1 keeps "
   "a size) without copying: expanded dims have stride 0. " NO_COPY
   "\nExample: b:unsqueeze(1):expand(64, -1)"},
  {"flatten", m_flatten,
   "t:flatten([start [, end]]) -> dims start..end (1-based, default all) "
   "merged into one; a view when possible.\n"
   "Example: x:flatten(2) -- (n, c, h, w) to (n, c*h*w)"},
  {"copy", m_copy,
   "t:copy(src) -> t, after writing src's elements into t (src "
   "broadcast to t's shape, cast to t's dtype).\n"
   "Example: w:copy(ebl.randn(w:shape()))"},
  {"fill", m_fill,
   "t:fill(value) -> t, after setting every element to value.\n"
   "Example: ebl.empty{3}:fill(7)"},
  {"to", m_to,
   "t:to(target) -> t converted to a dtype ('float32', ...), a device "
   "('cpu', 'cuda') or {dtype =, device =}; t itself when nothing "
   "changes.\nExample: x:to('float64'); x:to{device = 'cuda'}"},
  {NULL, NULL, NULL}
};

static const ebl_op_doc CASTS[] = {
  {"float", m_as, EBL_F32,
   "t:float() -> t as float32 (t itself if it is).\n"
   "Example: labels:float()"},
  {"double", m_as, EBL_F64,
   "t:double() -> t as float64 (t itself if it is).\n"
   "Example: x:double()"},
  {"int", m_as, EBL_I32,
   "t:int() -> t as int32, fractions cut toward zero.\n"
   "Example: ebl.tensor{1.7, -1.7}:int() --> 1 -1"},
  {"byte", m_as, EBL_U8,
   "t:byte() -> t as uint8.\nExample: mask:byte()"},
  {NULL, NULL, 0, NULL}
};

/* Adds the shape and storage methods. */
void ebl_open_view(lua_State *L, int methods) {
  lua_pushvalue(L, methods);
  ebl_set_funcs(L, METHODS);
  ebl_set_ops(L, CASTS);
  lua_pop(L, 1);
}

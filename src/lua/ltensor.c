/* The ebl.Tensor userdata: wrapping core results, release by the
   collector or a to-be-closed variable, memory pacing of the collector,
   row indexing and assignment, and the opener of the tensor binding. */
#include <limits.h>
#include <string.h>

#include "lua/lebl.h"
#include "lua/ltensor.h"

/* Full collections forced by tensor allocation start once live tensor
   memory exceeds twice what it was after the last one, plus this. */
#define FORCED_COLLECT_SLACK ((size_t)64 << 20)

/* Live tensor bytes right after the last forced full collection. It is
   process-wide, like the core's own count of live bytes. */
static size_t collected_live = 0;

/* ---- the userdata ---- */

/* The tensor at idx, or NULL. */
ebl_tensor *ebl_testtensor(lua_State *L, int idx) {
  return luaL_testudata(L, idx, EBL_TENSOR_MT);
}

/* The open tensor at arg, or an argument error. */
ebl_tensor *ebl_checktensor(lua_State *L, int arg) {
  ebl_tensor *t = luaL_testudata(L, arg, EBL_TENSOR_MT);
  if (t == NULL)
    luaL_typeerror(L, arg, EBL_TENSOR_MT);
  if (t->storage == NULL)
    luaL_argerror(L, arg, "the tensor was closed");
  return t;
}

/* Pushes an empty ebl.Tensor for a core function to fill. */
ebl_tensor *ebl_pushnew(lua_State *L) {
  ebl_tensor *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, EBL_TENSOR_MT);
  return t;
}

/* Raises the core's message ("interrupted" as is). */
void ebl_check(lua_State *L, ebl_status status) {
  if (status == EBL_OK)
    return;
  if (status == EBL_EINTR) {
    lua_pushliteral(L, "interrupted");
    lua_error(L);
  }
  luaL_error(L, "%s", ebl_error());
}

/* Releases out on failure, then raises. */
void ebl_check_release(lua_State *L, ebl_status status, ebl_tensor *out) {
  if (status != EBL_OK && out != NULL)
    ebl_tensor_release(out);
  ebl_check(L, status);
}

/* Lua's collector only sees the few bytes of the userdata, not the
   storage behind it. Two things make it keep pace: each fresh storage
   adds its size as collector debt (an incremental step as if Lua had
   allocated it), and when live tensor memory has more than doubled since
   the last forced collection a full one runs. The second alone bounds
   memory in the generational mode, where debt triggers minor
   collections only. A stopped collector (collectgarbage 'stop') is left
   alone. */
void ebl_account(lua_State *L, size_t nbytes) {
  if (lua_gc(L, LUA_GCISRUNNING) != 1)
    return;
  size_t kb = nbytes >> 10;
  if (kb > 0)
    lua_gc(L, LUA_GCSTEP, (int)(kb < INT_MAX ? kb : INT_MAX));
  if (ebl_memory_live() > 2 * collected_live + FORCED_COLLECT_SLACK) {
    lua_gc(L, LUA_GCCOLLECT);
    collected_live = ebl_memory_live();
  }
}

/* Raises on failure; accounts fresh storage. */
void ebl_finish(lua_State *L, ebl_status status) {
  ebl_check(L, status);
  ebl_tensor *t = lua_touserdata(L, -1);
  if (t->storage != NULL && t->storage->refcount == 1)
    ebl_account(L, t->storage->nbytes);
}

/* __gc and __close: drops the storage reference (once). */
static int tensor_release(lua_State *L) {
  ebl_tensor *t = luaL_checkudata(L, 1, EBL_TENSOR_MT);
  ebl_tensor_release(t);
  return 0;
}

/* __tostring: the printed form with the default options. */
static int tensor_tostring(lua_State *L) {
  ebl_tensor *t = luaL_checkudata(L, 1, EBL_TENSOR_MT);
  if (t->storage == NULL)
    lua_pushliteral(L, "tensor(closed)");
  else
    ebl_push_repr(L, t);
  return 1;
}

/* __len: the size of dim 1. */
static int tensor_len(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (t->ndim == 0)
    return luaL_error(L, "attempt to get the length of a 0-dim tensor");
  lua_pushinteger(L, (lua_Integer)t->shape[0]);
  return 1;
}

/* ---- rows: t[i] and t[i] = v ---- */

/* Pushes element i of the 1-D tensor t as a Lua number. */
static void push_element(lua_State *L, const ebl_tensor *t, int64_t i) {
  double v;
  ebl_check(L, ebl_tensor_get(t, &i, &v));
  if (ebl_dtype_is_float(t->dtype))
    lua_pushnumber(L, v);
  else
    lua_pushinteger(L, (lua_Integer)v);
}

/* Checks t[i] for a tensor with dims and returns i 0-based. */
static int64_t row_index(lua_State *L, const ebl_tensor *t) {
  if (t->ndim == 0)
    luaL_error(L, "attempt to index a 0-dim tensor (use t:item())");
  return ebl_checkindex(L, 2, t->shape[0]);
}

/* __index: methods by name; t[i] is row i as a view (a number when t
   is 1-D). */
static int tensor_index(lua_State *L) {
  if (lua_type(L, 2) != LUA_TNUMBER) {
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    return 1;
  }
  ebl_tensor *t = ebl_checktensor(L, 1);
  int64_t i = row_index(L, t);
  if (t->ndim == 1) {
    push_element(L, t, i);
    return 1;
  }
  ebl_tensor *row = ebl_pushnew(L);
  ebl_finish(L, ebl_tensor_select(row, t, 0, i));
  return 1;
}

/* __newindex: t[i] = number fills row i, t[i] = tensor copies into it
   (broadcasting). */
static int tensor_newindex(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (lua_type(L, 2) != LUA_TNUMBER)
    return luaL_error(L, "cannot set field '%s' of an ebl.Tensor "
                      "(only t[i] = v)", luaL_tolstring(L, 2, NULL));
  int64_t i = row_index(L, t);
  ebl_tensor *src = ebl_testtensor(L, 3);
  if (src == NULL && lua_type(L, 3) != LUA_TNUMBER)
    return luaL_typeerror(L, 3, "number or ebl.Tensor");
  if (src != NULL)
    src = ebl_checktensor(L, 3);
  ebl_tensor *row = ebl_pushnew(L);
  ebl_check(L, ebl_tensor_select(row, t, 0, i));
  if (src != NULL)
    ebl_check(L, ebl_copy(row, src));
  else
    ebl_check(L, ebl_fill(row, lua_tonumber(L, 3)));
  return 0;
}

/* ---- memory and threads ---- */

/* ebl.memory(): live bytes, peak bytes, live storages. */
static int l_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ebl_memory_live());
  lua_pushinteger(L, (lua_Integer)ebl_memory_peak());
  lua_pushinteger(L, (lua_Integer)ebl_storage_count());
  lua_pushinteger(L, (lua_Integer)ebl_allocation_count());
  return 4;
}

/* ebl.set_num_threads(n) */
static int l_set_num_threads(lua_State *L) {
  int64_t n = ebl_checkint(L, 1, "thread count");
  luaL_argcheck(L, n >= 1 && n <= 4096, 1, lua_pushfstring(L,
    "thread count must be in 1..4096, got %I", (lua_Integer)n));
  ebl_set_num_threads((int)n);
  return 0;
}

/* ebl.is_tensor(v) */
static int l_is_tensor(lua_State *L) {
  lua_pushboolean(L, ebl_testtensor(L, 1) != NULL);
  return 1;
}

/* ebl.get_num_threads() */
static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, ebl_get_num_threads());
  return 1;
}

static const ebl_func_doc FUNCS[] = {
  {"memory", l_memory,
   "memory() -> live, peak, count, allocations: bytes held by live "
   "tensor storages, the highest such value so far, the number of live "
   "storages and the number of storages ever allocated. "
   "Views share storage and add nothing.\n"
   "Example: local before = ebl.memory(); local t = ebl.zeros{1024}; "
   "print(ebl.memory() - before)  --> 4096"},
  {"set_num_threads", l_set_num_threads,
   "set_num_threads(n): the number of threads (n >= 1) of ebl's loops "
   "and of BLAS.\nExample: ebl.set_num_threads(2)"},
  {"is_tensor", l_is_tensor,
   "is_tensor(v) -> true when v is an ebl.Tensor (open or closed).\n"
   "Example: if ebl.is_tensor(x) then print(x:shape()) end"},
  {"get_num_threads", l_get_num_threads,
   "get_num_threads() -> n: the thread count in use.\n"
   "Example: print(ebl.get_num_threads())"},
  {NULL, NULL, NULL}
};

/* ---- the opener ---- */

/* Metamethods; the arithmetic ones are copied from the methods. */
static const luaL_Reg META[] = {
  {"__gc", tensor_release},
  {"__close", tensor_release},
  {"__tostring", tensor_tostring},
  {"__len", tensor_len},
  {"__newindex", tensor_newindex},
  {NULL, NULL}
};

/* Arithmetic metamethods and the methods that implement them. */
static const char *const ARITH[][2] = {
  {"__add", "add"}, {"__sub", "sub"}, {"__mul", "mul"}, {"__div", "div"},
  {"__pow", "pow"}, {"__unm", "neg"}, {NULL, NULL}
};

/* Fills the metatable at mt from META and the methods at `methods`. */
static void fill_metatable(lua_State *L, int mt, int methods) {
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, META, 0);
  for (int i = 0; ARITH[i][0] != NULL; i++) {
    lua_getfield(L, methods, ARITH[i][1]);
    lua_setfield(L, -2, ARITH[i][0]);
  }
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, tensor_index, 1);
  lua_setfield(L, -2, "__index");
  /* For the prompt's completer, which calls no __index function. */
  lua_pushvalue(L, methods);
  lua_setfield(L, -2, "__methods");
  lua_pop(L, 1);
}

/* Registers closures carrying their op code, with help. */
void ebl_set_ops(lua_State *L, const ebl_op_doc *ops) {
  for (; ops->name != NULL; ops++) {
    lua_pushinteger(L, ops->op);
    lua_pushcclosure(L, ops->func, 1);
    ebl_help_set(L, -1, ops->help);
    lua_setfield(L, -2, ops->name);
  }
}

static const char TENSOR_HELP[] =
  "ebl.Tensor: an n-dim array (float32, float64, int32 or uint8) on a "
  "device, a strided view onto shared storage. Dims and indices are "
  "1-based as in Lua; negative ones count from the end (-1 = last).\n"
  "t[i] is row i (a view; a number when t is 1-D); t[i] = v fills or "
  "copies into it. + - * / ^ and unary - work elementwise with tensors "
  "or numbers on either side. == compares identity only, and < <= are "
  "not defined, because Lua's __eq and __lt must return one boolean; "
  "use t:eq(u), t:lt(u) ... for elementwise comparisons. Methods are "
  "listed in ebl.Tensor.\n"
  "Example: local t = ebl.tensor{{1, 2}, {3, 4}}; print(t[2][1], #t)";

/* Builds ebl.Tensor and adds the tensor functions to ebl. */
void ebl_open_tensor(lua_State *L) {
  int module = lua_gettop(L);
  luaL_newmetatable(L, EBL_TENSOR_MT);
  ebl_help_set(L, -1, TENSOR_HELP);
  lua_newtable(L);
  ebl_help_set(L, -1, TENSOR_HELP);
  int mt = module + 1, methods = module + 2;

  lua_pushvalue(L, module);
  ebl_set_funcs(L, FUNCS);
  ebl_open_create(L, methods);
  ebl_open_view(L, methods);
  ebl_open_math(L, methods);
  ebl_open_nn(L, methods);
  ebl_open_print(L, methods);
  lua_pop(L, 1);

  fill_metatable(L, mt, methods);
  lua_setfield(L, module, "Tensor");
  lua_pop(L, 1);
}

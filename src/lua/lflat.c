/* Nested Lua tables as tensors: ebl.tensor{{1, 2}, {3, 4}}. The shape
   comes from the first elements; a second pass checks that every level
   has that length (no ragged rows) and that every leaf is a number the
   dtype can hold, all before any memory is allocated. */
#include <math.h>

#include "lua/ltensor.h"

/* The place being checked: the 1-based index at each level. */
typedef struct nest_walk {
  lua_State *L;
  int arg;
  int ndim;
  ebl_dtype dtype;
  const int64_t *shape;
  lua_Integer path[EBL_MAX_DIMS];
} nest_walk;

/* Pushes the path of level `depth` as "[2][1]" (or "the value"). */
static const char *push_path(nest_walk *w, int depth) {
  luaL_Buffer b;
  luaL_buffinit(w->L, &b);
  for (int i = 0; i < depth; i++) {
    lua_pushfstring(w->L, "[%I]", w->path[i]);
    luaL_addvalue(&b);
  }
  if (depth == 0)
    luaL_addstring(&b, "the value");
  luaL_pushresult(&b);
  return lua_tostring(w->L, -1);
}

/* Raises an error about the value at `depth` of the walk. */
static void walk_error(nest_walk *w, int depth, const char *fmt,
                       const char *detail) {
  lua_State *L = w->L;
  const char *path = push_path(w, depth);
  luaL_argerror(L, w->arg, lua_pushfstring(L, fmt, path, detail));
}

/* Nonzero if the number at idx fits dtype. */
static int fits(lua_State *L, int idx, ebl_dtype dtype) {
  if (dtype == EBL_F32 || dtype == EBL_F64)
    return 1;
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint)
    return 0;
  if (dtype == EBL_I32)
    return v >= INT32_MIN && v <= INT32_MAX;
  return v >= 0 && v <= 255;
}

/* Checks the leaf at the top of the stack, at `depth`. */
static void check_leaf(nest_walk *w, int depth) {
  lua_State *L = w->L;
  int type = lua_type(L, -1);
  if (type == LUA_TTABLE)
    walk_error(w, depth, "ragged nested table: %s is a table, expected a "
               "number%s", "");
  if (type != LUA_TNUMBER)
    walk_error(w, depth, "number expected at %s, got %s",
               luaL_typename(L, -1));
  if (!fits(L, -1, w->dtype)) {
    const char *v = luaL_tolstring(L, -1, NULL);
    lua_pushfstring(L, "value %s at %%s does not fit %s", v,
                    ebl_dtype_name(w->dtype));
    walk_error(w, depth, lua_tostring(L, -1), "");
  }
}

/* Checks the value at the top of the stack against level `depth`. */
static void check_level(nest_walk *w, int depth) {
  lua_State *L = w->L;
  if (depth == w->ndim) {
    check_leaf(w, depth);
    return;
  }
  if (lua_type(L, -1) != LUA_TTABLE)
    walk_error(w, depth, "ragged nested table: %s is a %s, expected a table",
               luaL_typename(L, -1));
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n != w->shape[depth]) {
    lua_pushfstring(L, "ragged nested table: %%s has %I elements, "
                    "expected %I", n, (lua_Integer)w->shape[depth]);
    walk_error(w, depth, lua_tostring(L, -1), "");
  }
  for (lua_Integer i = 1; i <= n; i++) {
    w->path[depth] = i;
    lua_rawgeti(L, -1, i);
    check_level(w, depth + 1);
    lua_pop(L, 1);
  }
}

/* Reads the shape from the first element at each level; returns ndim. */
static int first_shape(lua_State *L, int arg, int64_t *shape) {
  int ndim = 0;
  lua_pushvalue(L, arg);
  while (lua_type(L, -1) == LUA_TTABLE) {
    if (ndim == EBL_MAX_DIMS)
      luaL_argerror(L, arg, lua_pushfstring(L,
        "nested table has more than %d levels", EBL_MAX_DIMS));
    shape[ndim] = (int64_t)lua_rawlen(L, -1);
    if (shape[ndim++] == 0)
      break;
    lua_rawgeti(L, -1, 1);
    lua_remove(L, -2);
  }
  lua_pop(L, 1);
  return ndim;
}

/* Checks the nested table at arg; returns its ndim and shape. */
int ebl_nested_shape(lua_State *L, int arg, ebl_dtype dtype,
                     int64_t *shape) {
  nest_walk w = { L, arg, 0, dtype, shape, { 0 } };
  int type = lua_type(L, arg);
  if (type != LUA_TTABLE && type != LUA_TNUMBER)
    luaL_typeerror(L, arg, "nested table of numbers");
  luaL_checkstack(L, 2 * EBL_MAX_DIMS + 8, "nested table");
  w.ndim = first_shape(L, arg, shape);
  lua_pushvalue(L, arg);
  check_level(&w, 0);
  lua_pop(L, 1);
  return w.ndim;
}

/* Stores v as element `at` (in elements from the data start) of t. */
static void store(ebl_tensor *t, int64_t at, lua_Number v) {
  void *data = t->storage->data;
  switch (t->dtype) {
  case EBL_F32: ((float *)data)[at] = (float)v; break;
  case EBL_F64: ((double *)data)[at] = (double)v; break;
  case EBL_I32: ((int32_t *)data)[at] = (int32_t)v; break;
  default: ((uint8_t *)data)[at] = (uint8_t)v; break;
  }
}

/* Writes the checked table at the top of the stack from *at on. */
static void fill_level(lua_State *L, ebl_tensor *t, int depth,
                       int64_t *at) {
  if (depth == t->ndim) {
    store(t, (*at)++, lua_tonumber(L, -1));
    return;
  }
  for (int64_t i = 1; i <= t->shape[depth]; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i);
    fill_level(L, t, depth + 1, at);
    lua_pop(L, 1);
  }
}

/* Copies the checked nested table at arg into t. */
void ebl_nested_fill(lua_State *L, int arg, ebl_tensor *t) {
  int64_t at = t->offset;
  lua_pushvalue(L, arg);
  fill_level(L, t, 0, &at);
  lua_pop(L, 1);
}

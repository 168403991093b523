/* Argument helpers of the tensor binding: dtypes, devices, 1-based dims
   and indices, shapes from tables or varargs, and option tables. Every
   check raises a Lua "bad argument" error naming the value. */
#include <string.h>

#include "lua/ltensor.h"

/* ---- dtypes and devices ---- */

/* Raises the error of a dtype name that is not one. */
static int dtype_error(lua_State *L, int arg, const char *what) {
  const char *got = luaL_tolstring(L, arg, NULL);
  return luaL_argerror(L, arg, lua_pushfstring(L,
    "%s must be one of float32, float64, int32, uint8, got '%s'",
    what, got));
}

/* A dtype name at arg. */
ebl_dtype ebl_checkdtype(lua_State *L, int arg) {
  int dtype = -1;
  if (lua_type(L, arg) == LUA_TSTRING)
    dtype = ebl_dtype_from_name(lua_tostring(L, arg));
  if (dtype < 0)
    dtype_error(L, arg, "dtype");
  return (ebl_dtype)dtype;
}

/* Reads field `name` of the table at arg (pushed), or returns 0 and
   pushes nothing if arg is no table or the field is nil. */
static int get_option(lua_State *L, int arg, const char *name) {
  if (lua_type(L, arg) != LUA_TTABLE)
    return 0;
  if (lua_getfield(L, arg, name) == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* Raises "bad argument #arg (option 'name' <what>, got <value>)" for
   the value at index idx. */
static int option_error(lua_State *L, int arg, const char *name,
                        const char *what, int idx) {
  const char *got = luaL_tolstring(L, idx, NULL);
  return luaL_argerror(L, arg, lua_pushfstring(L,
    "option '%s' %s, got %s", name, what, got));
}

/* Option 'dtype' of the table at arg. */
ebl_dtype ebl_optdtype(lua_State *L, int arg, ebl_dtype def) {
  if (!get_option(L, arg, "dtype"))
    return def;
  int dtype = lua_type(L, -1) == LUA_TSTRING ?
    ebl_dtype_from_name(lua_tostring(L, -1)) : -1;
  if (dtype < 0)
    option_error(L, arg, "dtype",
                 "must be one of float32, float64, int32, uint8", -1);
  lua_pop(L, 1);
  return (ebl_dtype)dtype;
}

/* Option 'device' of the table at arg. */
ebl_device ebl_optdevice(lua_State *L, int arg, ebl_device def) {
  if (!get_option(L, arg, "device"))
    return def;
  const char *name = lua_tostring(L, -1);
  int device = -1;
  for (int i = 0; name != NULL && i < EBL_NDEVICES; i++)
    if (strcmp(name, ebl_device_name((ebl_device)i)) == 0)
      device = i;
  if (device < 0 || lua_type(L, -1) != LUA_TSTRING)
    option_error(L, arg, "device", "must be 'cpu' or 'cuda'", -1);
  lua_pop(L, 1);
  return (ebl_device)device;
}

/* ---- integers, dims and indices ---- */

/* An integer at arg; `what` names it in errors. */
int64_t ebl_checkint(lua_State *L, int arg, const char *what) {
  int isint;
  lua_Integer v = lua_tointegerx(L, arg, &isint);
  if (isint)
    return v;
  if (lua_type(L, arg) == LUA_TNUMBER)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "%s must be an integer, got %s", what, luaL_tolstring(L, arg, NULL)));
  luaL_argerror(L, arg, lua_pushfstring(L, "%s expected, got %s",
                                        what, luaL_typename(L, arg)));
  return 0;
}

/* A 1-based or negative dim at arg, returned 0-based. */
int ebl_checkdim(lua_State *L, int arg, int ndim, int extra) {
  int64_t n = ndim + extra;
  int64_t dim = ebl_checkint(L, arg, "dim");
  if (n == 0)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "dim %d given, but the tensor has no dims", (int)dim));
  if (dim < -n || dim > n || dim == 0)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "dim must be in 1..%d or -%d..-1, got %d", (int)n, (int)n,
      (int)dim));
  return (int)(dim > 0 ? dim - 1 : dim + n);
}

/* A 1-based or negative index at arg, returned 0-based. */
int64_t ebl_checkindex(lua_State *L, int arg, int64_t size) {
  int64_t i = ebl_checkint(L, arg, "index");
  if (size == 0)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "index %I out of range: the dim is empty", (lua_Integer)i));
  if (i < -size || i > size || i == 0)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "index must be in 1..%I or -%I..-1, got %I", (lua_Integer)size,
      (lua_Integer)size, (lua_Integer)i));
  return i > 0 ? i - 1 : i + size;
}

/* ---- shapes ---- */

/* Checks one size (value at idx, from argument arg); `what` names it. */
static int64_t check_size(lua_State *L, int arg, int idx, const char *what,
                          int allow_infer) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint) {
    const char *got = lua_type(L, idx) == LUA_TNUMBER ?
      luaL_tolstring(L, idx, NULL) : luaL_typename(L, idx);
    luaL_argerror(L, arg, lua_pushfstring(L,
      "%s must be an integer, got %s", what, got));
  }
  if (v < 0 && !(allow_infer && v == -1))
    luaL_argerror(L, arg, lua_pushfstring(L, "%s must be >= 0, got %I",
                                          what, v));
  return v;
}

/* Raises an error for a shape of more than EBL_MAX_DIMS dims. */
static void check_ndim(lua_State *L, int arg, lua_Integer ndim) {
  if (ndim > EBL_MAX_DIMS)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "shape has %I dims, at most %d allowed", ndim, EBL_MAX_DIMS));
}

/* Reads a shape table {2, 3} at arg. */
static int table_shape(lua_State *L, int arg, int64_t *shape,
                       int allow_infer) {
  lua_Integer ndim = (lua_Integer)lua_rawlen(L, arg);
  check_ndim(L, arg, ndim);
  for (int i = 0; i < ndim; i++) {
    lua_rawgeti(L, arg, i + 1);
    const char *what = lua_pushfstring(L, "shape[%d]", i + 1);
    shape[i] = check_size(L, arg, -2, what, allow_infer);
    lua_pop(L, 2);
  }
  return (int)ndim;
}

/* Checks that at most one size is -1 and that the element count fits. */
static void check_sizes(lua_State *L, int arg, const int64_t *shape,
                        int ndim) {
  int inferred = 0;
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == -1 && ++inferred > 1)
      luaL_argerror(L, arg, "only one size may be -1");
    int64_t s = shape[i] < 0 ? 1 : shape[i];
    if (s != 0 && numel > INT64_MAX / 8 / s)
      luaL_argerror(L, arg, "shape has too many elements");
    numel *= s;
  }
}

/* A shape from a table at arg or integers from arg on. */
int ebl_checkshape(lua_State *L, int arg, int64_t *shape, int allow_infer,
                   int *next) {
  int ndim = 0;
  if (lua_type(L, arg) == LUA_TTABLE) {
    ndim = table_shape(L, arg, shape, allow_infer);
    *next = arg + 1;
  } else if (lua_type(L, arg) == LUA_TNUMBER) {
    while (lua_type(L, arg + ndim) == LUA_TNUMBER) {
      check_ndim(L, arg + ndim, ndim + 1);
      shape[ndim] = check_size(L, arg + ndim, arg + ndim, "size",
                               allow_infer);
      ndim++;
    }
    *next = arg + ndim;
  } else {
    luaL_typeerror(L, arg, "shape (table or integers)");
  }
  check_sizes(L, arg, shape, ndim);
  return ndim;
}

/* ---- option tables ---- */

/* Raises an error for an option name not in `known`. */
static void unknown_option(lua_State *L, int arg, const char *const *known) {
  luaL_Buffer b;
  const char *key = luaL_tolstring(L, -2, NULL);
  luaL_buffinit(L, &b);
  for (int i = 0; known[i] != NULL; i++) {
    luaL_addstring(&b, i > 0 ? ", " : "");
    luaL_addstring(&b, known[i]);
  }
  luaL_pushresult(&b);
  luaL_argerror(L, arg, lua_pushfstring(L,
    "unknown option '%s' (known: %s)", key, lua_tostring(L, -1)));
}

/* Nonzero if the key at -2 is a string among `known`. */
static int is_known(lua_State *L, const char *const *known) {
  if (lua_type(L, -2) != LUA_TSTRING)
    return 0;
  for (int i = 0; known[i] != NULL; i++)
    if (strcmp(lua_tostring(L, -2), known[i]) == 0)
      return 1;
  return 0;
}

/* Checks an options table: known names only. */
int ebl_checkopts(lua_State *L, int arg, const char *const *known) {
  if (lua_isnoneornil(L, arg))
    return 0;
  luaL_checktype(L, arg, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, arg) != 0) {
    if (!is_known(L, known))
      unknown_option(L, arg, known);
    lua_pop(L, 1);
  }
  return 1;
}

/* An integer option (absent: def). */
int64_t ebl_optint(lua_State *L, int arg, const char *name, int64_t def) {
  if (!get_option(L, arg, name))
    return def;
  int isint;
  lua_Integer v = lua_tointegerx(L, -1, &isint);
  if (!isint)
    option_error(L, arg, name, "must be an integer", -1);
  lua_pop(L, 1);
  return v;
}

/* A number option (absent: def). */
double ebl_optnum(lua_State *L, int arg, const char *name, double def) {
  if (!get_option(L, arg, name))
    return def;
  if (lua_type(L, -1) != LUA_TNUMBER)
    option_error(L, arg, name, "must be a number", -1);
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A boolean option (absent: def). */
int ebl_optbool(lua_State *L, int arg, const char *name, int def) {
  if (!get_option(L, arg, name))
    return def;
  if (lua_type(L, -1) != LUA_TBOOLEAN)
    option_error(L, arg, name, "must be a boolean", -1);
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Reads the integer at idx into *out; nonzero if it is one >= min. */
static int pair_item(lua_State *L, int idx, int min, int *out) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  *out = (int)v;
  return isint && v >= min && v <= 1 << 20;
}

/* Reads the pair {h, w} at the top of the stack; nonzero if valid. */
static int pair_table(lua_State *L, int min, int pair[2]) {
  if (lua_rawlen(L, -1) != 2)
    return 0;
  lua_rawgeti(L, -1, 1);
  lua_rawgeti(L, -2, 2);
  int ok = pair_item(L, -2, min, &pair[0]) &&
           pair_item(L, -1, min, &pair[1]);
  lua_pop(L, 2);
  return ok;
}

/* An option of one integer or a pair {h, w}. */
void ebl_optpair(lua_State *L, int arg, const char *name, int def, int min,
                 int pair[2]) {
  pair[0] = pair[1] = def;
  if (!get_option(L, arg, name))
    return;
  int ok;
  if (lua_type(L, -1) == LUA_TTABLE) {
    ok = pair_table(L, min, pair);
  } else {
    ok = pair_item(L, -1, min, &pair[0]);
    pair[1] = pair[0];
  }
  if (!ok) {
    int value = lua_gettop(L);
    option_error(L, arg, name, lua_pushfstring(L,
      "must be an integer >= %d or a pair {h, w} of them", min), value);
  }
  lua_pop(L, 1);
}

/* A positional integer or pair {h, w} (nil: def). */
void ebl_checkpair(lua_State *L, int arg, const char *what, int def,
                   int min, int pair[2]) {
  pair[0] = pair[1] = def;
  if (lua_isnoneornil(L, arg))
    return;
  lua_pushvalue(L, arg);
  int ok;
  if (lua_type(L, -1) == LUA_TTABLE) {
    ok = pair_table(L, min, pair);
  } else {
    ok = pair_item(L, -1, min, &pair[0]);
    pair[1] = pair[0];
  }
  if (!ok)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "%s must be an integer >= %d or a pair {h, w} of them, got %s",
      what, min, luaL_tolstring(L, arg, NULL)));
  lua_pop(L, 1);
}

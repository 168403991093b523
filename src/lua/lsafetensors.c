/* The safetensors binding: ebl.save(path, tensors, metadata) and
   ebl.load(path), over the core's writer and reader (src/safetensors.c),
   and the random generator's state for checkpoints. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lua/lebl.h"
#include "lua/ltensor.h"
#include "safetensors.h"

/* Scratch arrays of a save, in a userdata so that a Lua error frees them
   with the rest of the stack. */
typedef struct save_args {
  int n, nmeta;
  const char **names;
  const ebl_tensor **refs;
  const char **keys;
  const char **values;
} save_args;

/* Counts the string-keyed entries of the table at idx, raising an error
   at the first other key. */
static int count_entries(lua_State *L, int idx, const char *what) {
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "save: %s keys must be strings, got %s", what,
                 luaL_typename(L, -2));
    lua_pop(L, 1);
    n++;
  }
  return n;
}

/* Fills a->names and a->refs from the tensor table at idx. */
static void collect_tensors(lua_State *L, int idx, save_args *a) {
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const ebl_tensor *t = ebl_testtensor(L, -1);
    if (t == NULL)
      luaL_error(L, "save: tensors['%s'] must be a tensor, got %s",
                 lua_tostring(L, -2), luaL_typename(L, -1));
    a->names[i] = lua_tostring(L, -2);
    a->refs[i++] = t;
    lua_pop(L, 1);
  }
}

/* Fills a->keys and a->values from the metadata table at idx; numbers
   become strings kept in the table at anchor. */
static void collect_metadata(lua_State *L, int idx, int anchor,
                             save_args *a) {
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    int type = lua_type(L, -1);
    if (type != LUA_TSTRING && type != LUA_TNUMBER)
      luaL_error(L, "save: metadata['%s'] must be a string, got %s",
                 lua_tostring(L, -2), luaL_typename(L, -1));
    a->keys[i] = lua_tostring(L, -2);
    lua_pushvalue(L, -1);
    a->values[i] = lua_tostring(L, -1);
    lua_rawseti(L, anchor, i + 1);
    i++;
    lua_pop(L, 1);
  }
}

/* Allocates the scratch arrays of a save inside a userdata. */
static save_args *new_args(lua_State *L, int n, int nmeta) {
  size_t ptrs = (size_t)(2 * n + 2 * nmeta + 1);
  save_args *a = lua_newuserdatauv(L, sizeof *a + ptrs * sizeof(void *),
                                   0);
  void **slots = (void **)(a + 1);
  a->n = n;
  a->nmeta = nmeta;
  a->names = (const char **)slots;
  a->refs = (const ebl_tensor **)(slots + n);
  a->keys = (const char **)(slots + 2 * n);
  a->values = (const char **)(slots + 2 * n + nmeta);
  return a;
}

/* ebl.save(path, tensors [, metadata]) */
static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  int has_meta = lua_istable(L, 3);
  int n = count_entries(L, 2, "tensor");
  int nmeta = has_meta ? count_entries(L, 3, "metadata") : 0;
  lua_settop(L, 3);
  lua_newtable(L);                                     /* 4: anchor */
  save_args *a = new_args(L, n, nmeta);                /* 5 */
  collect_tensors(L, 2, a);
  if (has_meta)
    collect_metadata(L, 3, 4, a);
  ebl_tensor *values = malloc(sizeof(ebl_tensor) * (size_t)(n ? n : 1));
  if (values == NULL)
    return luaL_error(L, "save: out of memory");
  for (int i = 0; i < n; i++)
    values[i] = *a->refs[i];
  ebl_status st = ebl_safetensors_write(path, n, a->names, values, nmeta,
                                        a->keys, a->values);
  free(values);
  ebl_check(L, st);
  return 0;
}

/* ebl.load(path) -> tensors, metadata */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2))
    luaL_argerror(L, 2, "load takes a path only; "
                  "ebl.checkpoint.load(path, m [, opt]) loads into a model");
  ebl_safetensors st;
  ebl_check(L, ebl_safetensors_read(path, &st));
  lua_createtable(L, 0, st.ntensors);
  for (int i = 0; i < st.ntensors; i++) {
    ebl_tensor *t = ebl_pushnew(L);
    *t = st.tensors[i];
    memset(&st.tensors[i], 0, sizeof st.tensors[i]);
    ebl_finish(L, EBL_OK);
    lua_setfield(L, -2, st.names[i]);
  }
  lua_createtable(L, 0, st.nmeta);
  for (int i = 0; i < st.nmeta; i++) {
    lua_pushstring(L, st.values[i]);
    lua_setfield(L, -2, st.keys[i]);
  }
  ebl_safetensors_free(&st);
  return 2;
}

/* ebl._rng_state() -> seed, offset (decimal strings: both are uint64) */
static int l_rng_state(lua_State *L) {
  char buf[32];
  snprintf(buf, sizeof buf, "%" PRIu64, ebl_rng_seed());
  lua_pushstring(L, buf);
  snprintf(buf, sizeof buf, "%" PRIu64, ebl_rng_offset());
  lua_pushstring(L, buf);
  return 2;
}

/* A uint64 written in decimal at arg. */
static uint64_t check_u64(lua_State *L, int arg) {
  const char *s = luaL_checkstring(L, arg);
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (*s < '0' || *s > '9' || *end != '\0' || errno != 0)
    luaL_argerror(L, arg, "decimal integer >= 0 expected");
  return (uint64_t)v;
}

/* ebl._rng_set_state(seed, offset) */
static int l_rng_set_state(lua_State *L) {
  uint64_t seed = check_u64(L, 1), offset = check_u64(L, 2);
  ebl_rng_set_state(seed, offset);
  return 0;
}

static const ebl_func_doc safetensors_funcs[] = {
  {"save", l_save,
   "save(path, tensors [, metadata]) writes a safetensors file: tensors "
   "is a table {name = tensor}, metadata {key = string}. The write is "
   "atomic: a temporary file, fsync, then a rename over path, so a crash "
   "leaves the old file or the new one.\n"
   "  ebl.save('w.safetensors', {w = ebl.randn(3, 3)}, {note = 'hi'})"},
  {"load", l_load,
   "load(path) -> tensors, metadata: a safetensors file read and checked "
   "(header length, JSON, offsets against shapes and dtypes); a fault is "
   "an error naming the file and what is wrong. F32, F64, I32 and U8."},
  {"_rng_state", l_rng_state,
   "_rng_state() -> seed, offset of the random generator (decimal "
   "strings), for checkpoints."},
  {"_rng_set_state", l_rng_set_state,
   "_rng_set_state(seed, offset) restores a state from _rng_state()."},
  {NULL, NULL, NULL}
};

/* Adds save, load and the generator's state to the ebl table. */
void ebl_open_safetensors(lua_State *L) {
  ebl_set_funcs(L, safetensors_funcs);
}

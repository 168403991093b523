/* The help registry: a weak-keyed table from any value (function, table,
   userdata) to its text, filled by the C binding and by the Lua library. */
#include "lua/lebl.h"

static const char *const HELP_KEY = "ebl.help_texts";

/* Pushes the registry table, creating it on first use. */
static void push_registry(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, HELP_KEY) == LUA_TTABLE)
    return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, HELP_KEY);
}

void ebl_help_set(lua_State *L, int idx, const char *text) {
  idx = lua_absindex(L, idx);
  push_registry(L);
  lua_pushvalue(L, idx);
  lua_pushstring(L, text);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* Exposes the registry to the Lua library as ebl._help_texts. */
void ebl_open_help(lua_State *L) {
  push_registry(L);
  lua_setfield(L, -2, "_help_texts");
}

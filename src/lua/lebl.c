/* The ebl module: the table every script sees as the global `ebl`, built
   from the C openers and the Lua library embedded in the binary. */
#include <string.h>

#include "lua/lebl.h"
#include "lua/lembed.h"

/* Loader for an embedded module: upvalue 1 is its index in ebl_embedded. */
static int load_embedded(lua_State *L) {
  const ebl_embedded_file *f =
    &ebl_embedded[lua_tointeger(L, lua_upvalueindex(1))];
  if (luaL_loadbufferx(L, f->source, f->length, f->chunkname, "t") != 0)
    return lua_error(L);
  lua_pushstring(L, f->module);
  lua_call(L, 1, 1);
  return 1;
}

/* Puts every embedded module into package.preload. */
static void preload_embedded(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  for (int i = 0; ebl_embedded[i].module != NULL; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, load_embedded, 1);
    lua_setfield(L, -2, ebl_embedded[i].module);
  }
  lua_pop(L, 1);
}

void ebl_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction close) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, close);
  lua_setfield(L, -2, "__close");
  lua_pop(L, 1);
}

int ebl_raise(lua_State *L) {
  return luaL_error(L, "%s", ebl_error());
}

void ebl_set_funcs(lua_State *L, const ebl_func_doc *funcs) {
  for (; funcs->name != NULL; funcs++) {
    lua_pushcfunction(L, funcs->func);
    if (funcs->help != NULL)
      ebl_help_set(L, -1, funcs->help);
    lua_setfield(L, -2, funcs->name);
  }
}

int luaopen_ebl(lua_State *L) {
  preload_embedded(L);
  lua_newtable(L);
  lua_pushliteral(L, EBL_VERSION);
  lua_setfield(L, -2, "version");
  ebl_open_help(L);
  ebl_open_util(L);
  ebl_open_tensor(L);
  ebl_open_cuda(L);
  ebl_open_model(L);
  ebl_open_data(L);
  ebl_open_safetensors(L);

  /* The Lua half of the module extends the table in place. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ebl.init");
  lua_call(L, 1, 1);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 1;
}

/* The ebl host (placeholder while the command line is written). */
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lua/lebl.h"

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "ebl", luaopen_ebl, 1);
  lua_pop(L, 1);
  int status = argc > 1 ? luaL_dofile(L, argv[1]) : 0;
  if (status != 0)
    lua_writestringerror("%s\n", lua_tostring(L, -1));
  lua_close(L);
  return status != 0;
}

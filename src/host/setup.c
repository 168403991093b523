/* Opening ebl inside the host and describing the machine in the banner. */
#include <stdio.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>

#include "host/host.h"
#include "lua/lebl.h"

static char banner[160];

/* Asks the module whether a GPU is usable (ebl.cuda.available()). */
static int gpu_count(lua_State *L) {
  int n = 0;
  int top = lua_gettop(L);
  if (lua_getglobal(L, "ebl") == LUA_TTABLE &&
      lua_getfield(L, -1, "cuda") == LUA_TTABLE &&
      lua_getfield(L, -1, "device_count") == LUA_TFUNCTION &&
      lua_pcall(L, 0, 1, 0) == LUA_OK)
    n = (int)lua_tointeger(L, -1);
  lua_settop(L, top);
  return n;
}

static void make_banner(lua_State *L) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int gpus = gpu_count(L);
  char gpu[32] = "no GPU";
  if (gpus > 0)
    snprintf(gpu, sizeof gpu, "%d GPU%s", gpus, gpus > 1 ? "s" : "");
  snprintf(banner, sizeof banner, "ebl %s (%s) on %ld CPU core%s, %s",
           EBL_VERSION, LUA_RELEASE, cores, cores == 1 ? "" : "s", gpu);
}

const char *host_banner_text(void) { return banner; }

/* Global ebl (also package.loaded.ebl) and the global help. */
void host_open_ebl(lua_State *L) {
  luaL_requiref(L, "ebl", luaopen_ebl, 1);
  lua_getfield(L, -1, "help");
  lua_setglobal(L, "help");
  lua_pop(L, 1);
  make_banner(L);
}

/* Small utilities of the module: a monotonic clock, an interruptible
   sleep, the terminal test. */
#include <time.h>
#include <unistd.h>

#include "interrupt.h"
#include "lua/lebl.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int l_clock(lua_State *L) {
  lua_pushnumber(L, now());
  return 1;
}

/* Sleeps in slices of 10 ms, polling the interrupt flag between them as
   every long C loop of ebl does. */
static int l_sleep(lua_State *L) {
  double seconds = luaL_checknumber(L, 1);
  luaL_argcheck(L, seconds >= 0, 1, "seconds must be >= 0");
  double end = now() + seconds;
  while (now() < end) {
    if (ebl_interrupted())
      return luaL_error(L, "interrupted");
    struct timespec slice = {0, 10 * 1000 * 1000};
    nanosleep(&slice, NULL);
  }
  return 0;
}

static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

static const ebl_func_doc util_funcs[] = {
  {"clock", l_clock,
   "clock() -> seconds of a monotonic clock, for timing code:\n"
   "  local t0 = ebl.clock(); work(); print(ebl.clock() - t0)"},
  {"sleep", l_sleep,
   "sleep(seconds) waits; Ctrl-C stops it with 'interrupted'."},
  {"isatty", l_isatty,
   "isatty([fd=1]) -> true when the file descriptor is a terminal."},
  {NULL, NULL, NULL}
};

void ebl_open_util(lua_State *L) { ebl_set_funcs(L, util_funcs); }

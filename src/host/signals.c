/* Ctrl-C: while code runs it stops Lua through a hook and C loops through
   the shared flag; at the prompt it only marks the line to be cleared. */
#include <signal.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "host/host.h"
#include "host/signals.h"
#include "interrupt.h"

static lua_State *volatile running = NULL;
static int arm_depth = 0;
static volatile sig_atomic_t prompt_interrupt = 0;
static int handler_installed = 0;

/* Hook set by the signal handler: raises the error at the next event. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

/* Only async-signal-safe work here: lua_sethook is designed for it. */
static void on_sigint(int sig) {
  (void)sig;
  lua_State *L = running;
  if (L != NULL) {
    ebl_interrupt_raise();
    lua_sethook(L, stop_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  } else {
    prompt_interrupt = 1;
  }
}

/* Installs the handler without SA_RESTART, so that a blocking read at
   the prompt returns EINTR and the prompt can clear its line. */
void host_signals_install(void) {
  if (handler_installed)
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  handler_installed = 1;
}

void host_interrupt_arm(lua_State *L) {
  host_signals_install();
  if (arm_depth++ == 0) {
    ebl_interrupt_clear();
    running = L;
  }
}

void host_interrupt_disarm(lua_State *L) {
  if (--arm_depth > 0)
    return;
  running = NULL;
  lua_sethook(L, NULL, 0, 0);
  ebl_interrupt_clear();
}

/* Returns 1 once per Ctrl-C pressed while no code was running. */
int host_prompt_interrupted(void) {
  if (!prompt_interrupt)
    return 0;
  prompt_interrupt = 0;
  return 1;
}

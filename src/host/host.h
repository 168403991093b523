/* The host program's internal interface: running code with Ctrl-C armed,
   reporting errors, the banner and the prompt. */
#ifndef EBL_HOST_H
#define EBL_HOST_H

#include <lua.h>

/* Calls the function below narg arguments with a traceback handler and
   Ctrl-C armed; returns the lua_pcall status, the error left on top. */
int host_call(lua_State *L, int narg, int nres);
/* Prints the error on top of the stack (if status says so); pops it. */
int host_report(lua_State *L, int status);
void host_message(const char *msg);

/* Opens ebl as the global `ebl` and package.loaded.ebl, and the host's
   globals (help). */
void host_open_ebl(lua_State *L);
/* "ebl 0.1.0 (Lua 5.4.4) on 2 CPU cores, no GPU" */
const char *host_banner_text(void);
void host_banner(void);

/* While code runs, Ctrl-C raises "interrupted" in Lua and sets the flag
   polled by C loops; outside, it is left to the prompt. */
void host_interrupt_arm(lua_State *L);
void host_interrupt_disarm(lua_State *L);

/* The ebl> prompt: reads, evaluates and prints until end of input. */
void host_repl(lua_State *L);

#endif

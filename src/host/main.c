/* The ebl program: a command line compatible with lua.c (scripts, -e, -l,
   -i, -v, -, the arg table) that opens the ebl module as a global and
   starts the prompt when asked or when stdin is a terminal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "host/host.h"
#include "interrupt.h"
#include "lua/lebl.h"

static const char *progname = "ebl";

/* What the command line asked for, as found by scan_args. */
typedef struct options {
  int interactive;   /* -i */
  int version;       /* -v */
  int exec;          /* -e or -l seen */
  int ignore_env;    /* -E */
  int warnings;      /* -W */
  int script;        /* index of the script in argv, 0 if none */
} options;

static void print_usage(const char *badoption) {
  if (badoption != NULL) {
    if (badoption[1] == 'e' || badoption[1] == 'l')
      fprintf(stderr, "%s: '%s' needs argument\n", progname, badoption);
    else
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname,
              badoption);
  }
  fprintf(stderr,
    "usage: %s [options] [script [args]]\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat'\n"
    "  -i        enter the ebl> prompt after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information\n"
    "  -h        show this help\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on\n"
    "  --        stop handling options\n"
    "  -         stop handling options and execute stdin\n", progname);
}

/* Prints msg (with the program name) on stderr. */
void host_message(const char *msg) {
  fprintf(stderr, "%s: %s\n", progname, msg);
  fflush(stderr);
}

/* Reports a failed call: its message (with traceback) on stderr. */
int host_report(lua_State *L, int status) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL)
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, -1));
    host_message(msg);
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: turns an error into its message plus a traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") &&
        lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs the function below narg arguments with Ctrl-C armed and a
   traceback on error. */
int host_call(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  host_interrupt_arm(L);
  int status = lua_pcall(L, narg, nres, base);
  host_interrupt_disarm(L);
  lua_remove(L, base);
  return status;
}

static int run_chunk(lua_State *L, int status) {
  if (status == LUA_OK)
    status = host_call(L, 0, 0);
  return host_report(L, status);
}

static int run_file(lua_State *L, const char *name) {
  return run_chunk(L, luaL_loadfile(L, name));
}

static int run_string(lua_State *L, const char *s, const char *name) {
  return run_chunk(L, luaL_loadbuffer(L, s, strlen(s), name));
}

/* -l g=mod: require mod and store it as global g (g = mod without '='). */
static int run_require(lua_State *L, char *spec) {
  char *eq = strchr(spec, '=');
  const char *mod = spec;
  if (eq != NULL) {
    *eq = '\0';
    mod = eq + 1;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = host_call(L, 1, 1);
  if (status == LUA_OK)
    lua_setglobal(L, spec);
  return host_report(L, status);
}

/* Finds the options before the script, as lua.c does; returns -1 with
   *bad set on an unknown option or a missing argument. */
static int scan_args(char **argv, options *o, const char **bad) {
  memset(o, 0, sizeof *o);
  int i;
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    *bad = a;
    if (a[0] != '-')
      return o->script = i;
    switch (a[1]) {
    case '\0':
      return o->script = i;
    case '-':
      if (a[2] != '\0')
        return -1;
      return o->script = (argv[i + 1] != NULL ? i + 1 : 0);
    case 'h':
      if (a[2] != '\0')
        return -1;
      return -2;
    case 'E': case 'W': case 'i': case 'v':
      if (a[2] != '\0')
        return -1;
      if (a[1] == 'E') o->ignore_env = 1;
      if (a[1] == 'W') o->warnings = 1;
      if (a[1] == 'i') o->interactive = o->version = 1;
      if (a[1] == 'v') o->version = 1;
      break;
    case 'e': case 'l':
      o->exec = 1;
      if (a[2] == '\0' && (argv[++i] == NULL || argv[i][0] == '-'))
        return -1;
      break;
    default:
      return -1;
    }
  }
  return 0;
}

/* Builds the global arg: arg[0] is the script, arg[1..] its arguments,
   negative indices hold the program and the options before it. */
static void create_arg_table(lua_State *L, char **argv, int argc,
                             int script) {
  if (script == 0)
    script = argc;
  lua_createtable(L, argc - script, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Runs -e and -l in order of appearance. */
static int run_options(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l'))
      continue;
    char *extra = a[2] != '\0' ? argv[i] + 2 : argv[++i];
    int status = a[1] == 'e' ? run_string(L, extra, "=(command line)")
                             : run_require(L, extra);
    if (status != LUA_OK)
      return 0;
  }
  return 1;
}

/* Runs the script with its arguments; "-" means stdin. */
static int run_script(lua_State *L, char **argv) {
  const char *fname = argv[0];
  if (strcmp(fname, "-") == 0 && strcmp(argv[-1], "--") != 0)
    fname = NULL;
  int status = luaL_loadfile(L, fname);
  if (status == LUA_ERRFILE && fname != NULL &&
      access(fname, R_OK) != 0) {
    lua_pop(L, 1);
    fprintf(stderr, "%s: cannot open %s\n", progname, fname);
    print_usage(NULL);
    return LUA_ERRFILE;
  }
  int n = 0;
  if (status == LUA_OK) {
    lua_getglobal(L, "arg");
    n = (int)luaL_len(L, -1);
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (int i = 1; i <= n; i++)
      lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    status = host_call(L, n, 0);
  }
  return host_report(L, status);
}

/* Applies LUA_INIT_5_4 or LUA_INIT ("@file" or code), like lua.c. */
static int run_init(lua_State *L) {
  const char *name = "=LUA_INIT_5_4";
  const char *init = getenv(name + 1);
  if (init == NULL) {
    name = "=LUA_INIT";
    init = getenv(name + 1);
  }
  if (init == NULL)
    return LUA_OK;
  if (init[0] == '@')
    return run_file(L, init + 1);
  return run_string(L, init, name);
}

void host_banner(void) {
  printf("%s\n", host_banner_text());
  fflush(stdout);
}

/* The protected body of main: everything that may raise a Lua error. */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  options o;
  const char *bad = NULL;
  int script = scan_args(argv, &o, &bad);
  if (script < 0) {
    print_usage(script == -2 ? NULL : bad);
    if (script == -2)
      lua_pushboolean(L, 1);
    return script == -2;
  }
  if (o.ignore_env) {
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  host_open_ebl(L);
  if (o.version)
    host_banner();
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (o.warnings)
    lua_warning(L, "@on", 0);
  if (!o.ignore_env && run_init(L) != LUA_OK)
    return 0;
  if (!run_options(L, argv, script > 0 ? script : argc))
    return 0;
  if (script > 0 && run_script(L, argv + script) != LUA_OK)
    return 0;
  if (o.interactive) {
    host_repl(L);
  } else if (script == 0 && !o.exec && !o.version) {
    if (isatty(0)) {
      host_banner();
      host_repl(L);
    } else if (run_file(L, NULL) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    host_message("cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  host_report(L, status);
  lua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}

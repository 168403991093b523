/* The ebl> prompt: readline editing and history, chunks that continue
   while the parser wants more, values printed by lua/ebl/repl.lua, tab
   completion of names, fields, methods and file names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lua.h>
#include <lauxlib.h>

#include "host/host.h"
#include "host/signals.h"

#define PROMPT "ebl> "
#define PROMPT_MORE "..> "
#define HISTORY_MAX 1000

/* What reading a line gave. */
typedef enum { LINE_OK, LINE_EOF, LINE_CANCEL } line_status;

static lua_State *repl_state = NULL;
static char history_path[4096];
static int use_readline = 0;

/* ---------------------------------------------------------------- */
/* Reading lines                                                     */

static char *pending_line = NULL;
static int line_ready = 0;

static void on_line(char *line) {
  pending_line = line;
  line_ready = 1;
  rl_callback_handler_remove();
}

/* Clears the half-typed line after Ctrl-C and moves to a fresh one. */
static void cancel_line(void) {
  rl_free_line_state();
  rl_callback_sigcleanup();
  rl_replace_line("", 0);
  rl_point = rl_end = 0;
  rl_callback_handler_remove();
  fputs("\n", stdout);
  fflush(stdout);
}

/* Reads one line through readline's callback interface, so that Ctrl-C
   (which interrupts select) can clear the line outside signal context. */
static line_status readline_line(const char *prompt, char **out) {
  line_ready = 0;
  pending_line = NULL;
  rl_callback_handler_install(prompt, on_line);
  while (!line_ready) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fileno(rl_instream), &fds);
    int n = select(fileno(rl_instream) + 1, &fds, NULL, NULL, NULL);
    if (host_prompt_interrupted()) {
      cancel_line();
      return LINE_CANCEL;
    }
    if (n < 0 && errno != EINTR)
      break;
    if (n > 0)
      rl_callback_read_char();
  }
  *out = pending_line;
  return pending_line != NULL ? LINE_OK : LINE_EOF;
}

/* Without a terminal: print the prompt and read with fgets. */
static line_status plain_line(const char *prompt, char **out) {
  char buf[4096];
  fputs(prompt, stdout);
  fflush(stdout);
  if (fgets(buf, sizeof buf, stdin) == NULL) {
    if (host_prompt_interrupted()) {
      clearerr(stdin);
      fputs("\n", stdout);
      return LINE_CANCEL;
    }
    return LINE_EOF;
  }
  buf[strcspn(buf, "\n")] = '\0';
  *out = strdup(buf);
  return LINE_OK;
}

static line_status read_line(const char *prompt, char **out) {
  *out = NULL;
  return use_readline ? readline_line(prompt, out)
                      : plain_line(prompt, out);
}

/* ---------------------------------------------------------------- */
/* Compiling a chunk                                                 */

/* A syntax error at <eof> means the parser wants more input. */
static int incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX)
    return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  const char *mark = "<eof>";
  size_t mlen = strlen(mark);
  return len >= mlen && strcmp(msg + len - mlen, mark) == 0;
}

/* Tries `return <chunk>` so an expression shows its values; the chunk
   ending in ';' asks for silence. Pushes the function on success. */
static int compile_expression(lua_State *L, const char *chunk,
                              int *silent) {
  size_t len = strlen(chunk);
  while (len > 0 && strchr(" \t\r\n", chunk[len - 1]) != NULL)
    len--;
  *silent = len > 0 && chunk[len - 1] == ';';
  const char *code = lua_pushfstring(L, "return %s", chunk);
  int status = luaL_loadbuffer(L, code, strlen(code), "=stdin");
  lua_remove(L, -2);
  if (status != LUA_OK)
    lua_pop(L, 1);
  return status == LUA_OK;
}

/* `?name` or `name?` asks for help: pushes the chunk `ebl.help(name)`
   and returns 1; returns 0 for any other line. */
static int push_help_request(lua_State *L, const char *line) {
  size_t len = strlen(line);
  while (len > 0 && strchr(" \t\r\n", line[len - 1]) != NULL)
    len--;
  while (len > 0 && strchr(" \t", line[0]) != NULL) {
    line++;
    len--;
  }
  if (len == 0 || (line[0] != '?' && line[len - 1] != '?'))
    return 0;
  if (line[0] == '?') {
    line++;
    len--;
  } else {
    len--;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "ebl.help(");
  luaL_addlstring(&b, line, len);
  luaL_addstring(&b, ")");
  luaL_pushresult(&b);
  return 1;
}

/* Reads lines until they form a chunk that compiles (function pushed,
   LUA_OK), a real syntax error (message pushed), or EOF / Ctrl-C. The
   text of the chunk is left in *text for the history. */
static int read_chunk(lua_State *L, char **text, int *silent,
                      line_status *how) {
  char *line;
  *how = read_line(PROMPT, &line);
  if (*how != LINE_OK)
    return -1;
  *text = line;
  if (push_help_request(L, line)) {
    const char *chunk = lua_tostring(L, -1);
    int status = luaL_loadbuffer(L, chunk, strlen(chunk), "=stdin");
    lua_remove(L, -2);
    *silent = 1;
    return status;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, line[0] == '=' ? "return " : "");
  luaL_addstring(&b, line[0] == '=' ? line + 1 : line);
  luaL_pushresult(&b);
  for (;;) {
    const char *chunk = lua_tostring(L, -1);
    if (compile_expression(L, chunk, silent)) {
      lua_remove(L, -2);
      return LUA_OK;
    }
    int status = luaL_loadbuffer(L, chunk, strlen(chunk), "=stdin");
    if (!incomplete(L, status)) {
      lua_remove(L, -2);
      return status;
    }
    lua_pop(L, 1);
    char *more;
    *how = read_line(PROMPT_MORE, &more);
    if (*how != LINE_OK) {
      lua_pop(L, 1);
      return -1;
    }
    lua_pushfstring(L, "%s\n%s", chunk, more);
    lua_remove(L, -2);
    size_t n = strlen(*text) + strlen(more) + 2;
    char *joined = malloc(n);
    if (joined == NULL)
      luaL_error(L, "not enough memory for the input");
    snprintf(joined, n, "%s\n%s", *text, more);
    free(*text);
    free(more);
    *text = joined;
  }
}

/* ---------------------------------------------------------------- */
/* History: one entry per chunk, multi-line chunks kept whole        */

static void history_open(void) {
  const char *path = getenv("EBL_HISTORY");
  const char *home = getenv("HOME");
  if (path != NULL)
    snprintf(history_path, sizeof history_path, "%s", path);
  else if (home != NULL)
    snprintf(history_path, sizeof history_path, "%s/.ebl_history", home);
  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  using_history();
  stifle_history(HISTORY_MAX);
  if (history_path[0] != '\0')
    read_history(history_path);
}

/* Adds the chunk and appends it to the file at once, so that a crash
   loses nothing typed before it. */
static void history_add(const char *text) {
  if (!use_readline || text[strspn(text, " \t\n")] == '\0')
    return;
  HIST_ENTRY *last = history_get(history_base + history_length - 1);
  if (last != NULL && strcmp(last->line, text) == 0)
    return;
  add_history(text);
  if (history_path[0] == '\0')
    return;
  if (append_history(1, history_path) != 0)
    write_history(history_path);
}

static void history_close(void) {
  if (use_readline && history_path[0] != '\0')
    history_truncate_file(history_path, HISTORY_MAX);
}

/* ---------------------------------------------------------------- */
/* The Lua side: ebl.repl (lua/ebl/repl.lua)                         */

/* Pushes field name of the ebl.repl module. */
static int push_repl_field(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "ebl.repl");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK)
    return 0;
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return 1;
}

/* Shows the values from index base to the top through repl.show. */
static void show_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base + 1;
  if (n <= 0)
    return;
  if (!push_repl_field(L, "show")) {
    host_report(L, LUA_ERRRUN);
    lua_settop(L, base - 1);
    return;
  }
  lua_insert(L, base);
  host_report(L, host_call(L, n, 0));
  lua_settop(L, base - 1);
}

/* ---------------------------------------------------------------- */
/* Tab completion                                                    */

static char **candidates = NULL;
static size_t candidate_count = 0;

static void free_candidates(void) {
  for (size_t i = 0; i < candidate_count; i++)
    free(candidates[i]);
  free(candidates);
  candidates = NULL;
  candidate_count = 0;
}

/* Asks repl.complete(text) for the list of completions. */
static void collect_candidates(const char *text) {
  lua_State *L = repl_state;
  int top = lua_gettop(L);
  free_candidates();
  if (!push_repl_field(L, "complete"))
    goto done;
  lua_pushstring(L, text);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1))
    goto done;
  size_t n = (size_t)luaL_len(L, -1);
  candidates = calloc(n + 1, sizeof *candidates);
  for (size_t i = 0; candidates != NULL && i < n; i++) {
    lua_rawgeti(L, -1, (lua_Integer)i + 1);
    const char *s = lua_tostring(L, -1);
    if (s != NULL && (candidates[candidate_count] = strdup(s)) != NULL)
      candidate_count++;
    lua_pop(L, 1);
  }
done:
  lua_settop(L, top);
}

/* Readline's generator: hands out the collected candidates in turn. */
static char *next_candidate(const char *text, int state) {
  static size_t index;
  if (state == 0) {
    collect_candidates(text);
    index = 0;
  }
  if (index < candidate_count)
    return strdup(candidates[index++]);
  return NULL;
}

/* Inside a string: file names (readline's own); otherwise Lua names. */
static char **complete(const char *text, int start, int end) {
  (void)start;
  (void)end;
  if (rl_completion_quote_character != 0)
    return NULL;
  rl_attempted_completion_over = 1;
  rl_completion_append_character = '\0';
  rl_completion_suppress_append = 1;
  return rl_completion_matches(text, next_candidate);
}

static void completion_setup(void) {
  rl_readline_name = "ebl";
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = " \t\n\"\\'><=;+-*/%^~#{}()[],&|";
  rl_completer_quote_characters = "\"'";
  rl_catch_signals = 0;
}

/* ---------------------------------------------------------------- */
/* The loop                                                          */

/* Tells repl.lua whether stdout takes colours. */
static void repl_setup(lua_State *L) {
  int colour = isatty(1) && getenv("NO_COLOR") == NULL;
  const char *term = getenv("TERM");
  if (term != NULL && strcmp(term, "dumb") == 0)
    colour = 0;
  if (push_repl_field(L, "setup")) {
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, colour);
    lua_setfield(L, -2, "colour");
    host_report(L, host_call(L, 1, 0));
  } else {
    host_report(L, LUA_ERRRUN);
  }
}

/* Runs one compiled chunk and shows what it returned. */
static void evaluate(lua_State *L, int silent) {
  int base = lua_gettop(L);
  int status = host_call(L, 0, LUA_MULTRET);
  if (status != LUA_OK) {
    host_report(L, status);
  } else if (silent) {
    lua_settop(L, base - 1);
  } else {
    show_results(L, base);
  }
  lua_settop(L, base - 1);
}

void host_repl(lua_State *L) {
  repl_state = L;
  use_readline = isatty(0);
  host_signals_install();
  if (use_readline) {
    completion_setup();
    history_open();
  }
  repl_setup(L);
  for (;;) {
    char *text = NULL;
    int silent = 0;
    line_status how;
    int status = read_chunk(L, &text, &silent, &how);
    if (how == LINE_OK)
      history_add(text);
    free(text);
    if (how == LINE_EOF)
      break;
    if (how == LINE_CANCEL)
      continue;
    if (status == LUA_OK)
      evaluate(L, silent);
    else
      host_report(L, status);
  }
  fputs("\n", stdout);
  fflush(stdout);
  history_close();
  free_candidates();
}

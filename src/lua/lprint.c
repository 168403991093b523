/* Printing tensors the numpy way: one number format per tensor (fixed
   or scientific, chosen from the range of the values shown), columns
   of equal width, rows wrapped to the terminal, and for big tensors
   only the edge items of each dim around "...". A last part gives the
   shape, dtype and device:
     tensor([[1.0000, 2.0000],
             [3.0000, 4.0000]], shape=2x2, float32, cpu) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lua/ltensor.h"

static const char *const OPTIONS_KEY = "ebl.print_options";
static const char PREFIX[] = "tensor(";
#define PREFIX_LEN ((int)sizeof PREFIX - 1)

/* What ebl.print_options sets; one copy per Lua state (registry). */
typedef struct print_opts {
  int precision;        /* digits after the point */
  int edgeitems;        /* items kept at each end of a summarised dim */
  int64_t threshold;    /* more elements than this are summarised */
  int linewidth;        /* 0: the terminal's width */
  int sci_mode;         /* -1 automatic, 0 fixed, 1 scientific */
} print_opts;

/* How each element is written. */
typedef struct num_format {
  char style;           /* 'd' integers, 'f' fixed, 'e' scientific */
  int precision;
  int width;            /* of the widest element shown */
} num_format;

/* The state of one printing. */
typedef struct printer {
  luaL_Buffer b;
  const ebl_tensor *t;
  num_format fmt;
  int summarise;
  int edge;
  int linewidth;
  int col;              /* column of the next character */
  ebl_device device;    /* where the printed tensor lives */
} printer;

/* ---- elements ---- */

/* Element at storage offset `at` (in elements) of a CPU tensor. */
static double element(const ebl_tensor *t, int64_t at) {
  const void *data = t->storage->data;
  switch (t->dtype) {
  case EBL_F32: return ((const float *)data)[at];
  case EBL_F64: return ((const double *)data)[at];
  case EBL_I32: return ((const int32_t *)data)[at];
  default: return ((const uint8_t *)data)[at];
  }
}

/* Writes v in format f into buf; returns the length. */
static int format_number(char *buf, size_t len, const num_format *f,
                         double v) {
  if (isnan(v))
    return snprintf(buf, len, "nan");
  if (isinf(v))
    return snprintf(buf, len, v > 0 ? "inf" : "-inf");
  if (f->style == 'd')
    return snprintf(buf, len, "%.0f", v);
  if (f->style == 'e')
    return snprintf(buf, len, "%.*e", f->precision, v);
  return snprintf(buf, len, "%.*f", f->precision, v);
}

/* ---- the elements shown ---- */

/* Nonzero if index i of a dim of size n is hidden by summarising. */
static int hidden(const printer *p, int64_t n, int64_t i) {
  return p->summarise && n > 2 * p->edge && i >= p->edge &&
         i < n - p->edge;
}

/* The range of the values shown, for choosing a format. */
typedef struct value_range {
  double max_abs, min_abs;   /* over finite nonzero values */
  int width;                 /* widest element in the format tried */
} value_range;

/* Calls fn on every element shown, in row-major order. */
static void each_shown(printer *p, int dim, int64_t at,
                       void (*fn)(printer *, double, value_range *),
                       value_range *r) {
  const ebl_tensor *t = p->t;
  if (dim == t->ndim) {
    fn(p, element(t, at), r);
    return;
  }
  for (int64_t i = 0; i < t->shape[dim]; i++) {
    if (hidden(p, t->shape[dim], i))
      i = t->shape[dim] - p->edge;
    each_shown(p, dim + 1, at + i * t->stride[dim], fn, r);
  }
}

/* Widens r to include v. */
static void note_range(printer *p, double v, value_range *r) {
  (void)p;
  double a = fabs(v);
  if (!isfinite(a) || a == 0)
    return;
  r->max_abs = fmax(r->max_abs, a);
  r->min_abs = fmin(r->min_abs, a);
}

/* Widens r->width to the printed width of v. */
static void note_width(printer *p, double v, value_range *r) {
  char buf[64];
  int n = format_number(buf, sizeof buf, &p->fmt, v);
  if (n > r->width)
    r->width = n;
}

/* Chooses the format of p's tensor from the values it shows. */
static void choose_format(printer *p, const print_opts *o) {
  value_range r = { 0, HUGE_VAL, 0 };
  p->fmt.precision = o->precision;
  p->fmt.style = 'd';
  if (ebl_dtype_is_float(p->t->dtype)) {
    each_shown(p, 0, p->t->offset, note_range, &r);
    int sci = r.max_abs >= 1e8 || r.min_abs < 1e-4;
    if (o->sci_mode >= 0)
      sci = o->sci_mode;
    p->fmt.style = sci ? 'e' : 'f';
  }
  r.width = 1;
  each_shown(p, 0, p->t->offset, note_width, &r);
  p->fmt.width = r.width;
}

/* ---- layout ---- */

/* Appends s (n bytes), advancing the column. */
static void add(printer *p, const char *s, size_t n) {
  luaL_addlstring(&p->b, s, n);
  p->col += (int)n;
}

/* Starts a new line indented to column `indent`. */
static void new_line(printer *p, int blank_lines, int indent) {
  for (int i = 0; i <= blank_lines; i++)
    luaL_addchar(&p->b, '\n');
  for (int i = 0; i < indent; i++)
    luaL_addchar(&p->b, ' ');
  p->col = indent;
}

/* Appends one number right-aligned to the width. */
static void add_item(printer *p, const char *s, int n) {
  for (int i = n; i < p->fmt.width; i++)
    add(p, " ", 1);
  add(p, s, (size_t)n);
}

/* Separates items of the last dim, wrapping before a too long line. */
static void item_separator(printer *p, int indent) {
  add(p, ",", 1);
  if (p->col + 1 + p->fmt.width + 1 > p->linewidth)
    new_line(p, 0, indent);
  else
    add(p, " ", 1);
}

/* Writes the last dim of the row at storage offset `at`. */
static void add_row(printer *p, int dim, int64_t at) {
  const ebl_tensor *t = p->t;
  int indent = PREFIX_LEN + dim + 1;
  add(p, "[", 1);
  for (int64_t i = 0; i < t->shape[dim]; i++) {
    char buf[64];
    if (i > 0)
      item_separator(p, indent);
    if (hidden(p, t->shape[dim], i)) {
      add(p, "...", 3);
      i = t->shape[dim] - p->edge - 1;
      continue;
    }
    double v = element(t, at + i * t->stride[dim]);
    add_item(p, buf, format_number(buf, sizeof buf, &p->fmt, v));
  }
  add(p, "]", 1);
}

/* Writes dim `dim` of the block at storage offset `at`. */
static void add_block(printer *p, int dim, int64_t at) {
  const ebl_tensor *t = p->t;
  if (dim == t->ndim - 1) {
    add_row(p, dim, at);
    return;
  }
  int indent = PREFIX_LEN + dim + 1, blank = t->ndim - dim - 2;
  add(p, "[", 1);
  for (int64_t i = 0; i < t->shape[dim]; i++) {
    if (i > 0) {
      add(p, ",", 1);
      new_line(p, blank, indent);
    }
    if (hidden(p, t->shape[dim], i)) {
      add(p, "...", 3);
      i = t->shape[dim] - p->edge - 1;
      continue;
    }
    add_block(p, dim + 1, at + i * t->stride[dim]);
  }
  add(p, "]", 1);
}

/* Writes the elements: a number, [] when empty, else nested rows. */
static void add_elements(printer *p) {
  const ebl_tensor *t = p->t;
  char buf[64];
  if (t->ndim == 0)
    add(p, buf, (size_t)format_number(buf, sizeof buf, &p->fmt,
                                      element(t, t->offset)));
  else if (ebl_tensor_numel(t) == 0)
    add(p, "[]", 2);
  else
    add_block(p, 0, t->offset);
}

/* Writes ", shape=2x3, float32, cpu)", on a line of its own if need be. */
static void add_suffix(printer *p) {
  char shape[160], suffix[256];
  ebl_shape_string(p->t, shape, sizeof shape);
  int n = snprintf(suffix, sizeof suffix, "shape=%s, %s, %s)", shape,
                   ebl_dtype_name(p->t->dtype),
                   ebl_device_name(p->device));
  add(p, ",", 1);
  if (p->col + 1 + n > p->linewidth)
    new_line(p, 0, PREFIX_LEN);
  else
    add(p, " ", 1);
  add(p, suffix, (size_t)n);
}

/* ---- options ---- */

/* The width of the terminal: $COLUMNS, else stdout's, else 80. */
static int terminal_width(void) {
  const char *columns = getenv("COLUMNS");
  int n = columns != NULL ? atoi(columns) : 0;
  struct winsize ws;
  if (n <= 0 && isatty(STDOUT_FILENO) &&
      ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
    n = ws.ws_col;
  return n >= 20 ? n : 80;
}

/* The options of this Lua state. */
static print_opts *state_opts(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, OPTIONS_KEY);
  print_opts *o = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return o;
}

/* Sets the defaults: precision 4, 3 edge items, over 1000 summarised. */
static void default_opts(print_opts *o) {
  o->precision = 4;
  o->edgeitems = 3;
  o->threshold = 1000;
  o->linewidth = 0;
  o->sci_mode = -1;
}

/* Reads an integer option in lo..hi into *v (unchanged if absent). */
static void int_option(lua_State *L, int arg, const char *name, int lo,
                       int hi, int *v) {
  int64_t n = ebl_optint(L, arg, name, *v);
  if (n < lo || n > hi)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "option '%s' must be in %d..%d, got %I", name, lo, hi,
      (lua_Integer)n));
  *v = (int)n;
}

/* Reads sci_mode: true, false or 'auto'. */
static void sci_option(lua_State *L, int arg, print_opts *o) {
  int type = lua_getfield(L, arg, "sci_mode");
  if (type == LUA_TBOOLEAN)
    o->sci_mode = lua_toboolean(L, -1);
  else if (type == LUA_TSTRING && strcmp(lua_tostring(L, -1), "auto") == 0)
    o->sci_mode = -1;
  else if (type != LUA_TNIL)
    luaL_argerror(L, arg, lua_pushfstring(L,
      "option 'sci_mode' must be true, false or 'auto', got %s",
      luaL_tolstring(L, -1, NULL)));
  lua_pop(L, 1);
}

/* Reads threshold (an integer or math.huge) and full = true|false
   (full = false undoes an infinite threshold). */
static void threshold_option(lua_State *L, int arg, print_opts *o) {
  int type = lua_getfield(L, arg, "threshold");
  if (type == LUA_TNUMBER && lua_tonumber(L, -1) == HUGE_VAL) {
    o->threshold = INT64_MAX;
  } else if (type != LUA_TNIL) {
    o->threshold = ebl_optint(L, arg, "threshold", 0);
    if (o->threshold < 0)
      luaL_argerror(L, arg, "option 'threshold' must be >= 0");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, arg, "full") != LUA_TNIL) {
    if (ebl_optbool(L, arg, "full", 0))
      o->threshold = INT64_MAX;
    else if (o->threshold == INT64_MAX)
      o->threshold = 1000;
  }
  lua_pop(L, 1);
}

/* Reads an options table at arg over *o. */
static void read_opts(lua_State *L, int arg, print_opts *o) {
  static const char *const known[] = {
    "precision", "edgeitems", "threshold", "linewidth", "sci_mode",
    "full", NULL
  };
  if (!ebl_checkopts(L, arg, known))
    return;
  int_option(L, arg, "precision", 0, 30, &o->precision);
  int_option(L, arg, "edgeitems", 1, 1 << 20, &o->edgeitems);
  int_option(L, arg, "linewidth", 0, 1 << 20, &o->linewidth);
  threshold_option(L, arg, o);
  sci_option(L, arg, o);
}

/* Pushes the options as a table. */
static void push_opts(lua_State *L, const print_opts *o) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, o->precision);
  lua_setfield(L, -2, "precision");
  lua_pushinteger(L, o->edgeitems);
  lua_setfield(L, -2, "edgeitems");
  if (o->threshold == INT64_MAX)
    lua_pushnumber(L, HUGE_VAL);
  else
    lua_pushinteger(L, (lua_Integer)o->threshold);
  lua_setfield(L, -2, "threshold");
  lua_pushinteger(L, o->linewidth);
  lua_setfield(L, -2, "linewidth");
  if (o->sci_mode < 0)
    lua_pushliteral(L, "auto");
  else
    lua_pushboolean(L, o->sci_mode);
  lua_setfield(L, -2, "sci_mode");
}

/* ---- entry points ---- */

/* Pushes the printed form of the CPU tensor t under options o. */
static void push_cpu_repr(lua_State *L, const ebl_tensor *t,
                          const print_opts *o, ebl_device device) {
  printer p;
  p.t = t;
  p.device = device;
  p.summarise = ebl_tensor_numel(t) > o->threshold;
  p.edge = o->edgeitems;
  p.linewidth = o->linewidth > 0 ? o->linewidth : terminal_width();
  p.col = 0;
  if (ebl_tensor_numel(t) > 0)
    choose_format(&p, o);
  luaL_buffinit(L, &p.b);
  add(&p, PREFIX, PREFIX_LEN);
  add_elements(&p);
  add_suffix(&p);
  luaL_pushresult(&p.b);
}

/* Pushes the printed form of t, copying it to the CPU first if need be. */
static void push_repr(lua_State *L, const ebl_tensor *t,
                      const print_opts *o) {
  if (ebl_tensor_device(t) == EBL_CPU) {
    push_cpu_repr(L, t, o, EBL_CPU);
    return;
  }
  ebl_tensor *host = ebl_pushnew(L);
  ebl_check(L, ebl_to_device(host, t, EBL_CPU));
  push_cpu_repr(L, host, o, ebl_tensor_device(t));
  lua_remove(L, -2);
}

/* The printed form with the options in force. */
void ebl_push_repr(lua_State *L, const ebl_tensor *t) {
  push_repr(L, t, state_opts(L));
}

/* t:format([options]) */
static int m_format(lua_State *L) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  print_opts o = *state_opts(L);
  read_opts(L, 2, &o);
  push_repr(L, t, &o);
  return 1;
}

/* t:print([options]): calls the global print with t:format(options). */
static int m_print(lua_State *L) {
  m_format(L);
  lua_getglobal(L, "print");
  lua_insert(L, -2);
  lua_call(L, 1, 0);
  return 0;
}

/* ebl.print_options([options]) */
static int l_print_options(lua_State *L) {
  print_opts *o = state_opts(L);
  if (lua_type(L, 1) == LUA_TSTRING &&
      strcmp(lua_tostring(L, 1), "default") == 0)
    default_opts(o);
  else
    read_opts(L, 1, o);
  push_opts(L, o);
  return 1;
}

#define PRINT_OPTIONS \
  "Options: precision (digits after the point, 4), edgeitems (3), " \
  "threshold (more elements are summarised with '...', 1000; " \
  "math.huge never), full = true (the same as threshold = math.huge), " \
  "linewidth (0: the terminal's, from $COLUMNS or stdout, else 80), " \
  "sci_mode (true, false or 'auto': scientific when the largest value " \
  "shown is >= 1e8 or the smallest nonzero one < 1e-4)."

static const ebl_func_doc FUNCS[] = {
  {"print_options", l_print_options,
   "print_options([options | 'default']) -> the options in force, after "
   "setting those given, for how tensors print. " PRINT_OPTIONS "\n"
   "Example: ebl.print_options{precision = 2, linewidth = 120}"},
  {NULL, NULL, NULL}
};

static const ebl_func_doc METHODS[] = {
  {"format", m_format,
   "t:format([options]) -> the printed form of t as a string, with "
   "options overriding ebl.print_options for this call. tostring(t) "
   "gives the same with the defaults.\n"
   "Example: local s = x:format{precision = 2}"},
  {"print", m_print,
   "t:print([options]) prints t:format(options); t:print{full = true} "
   "shows every element of a big tensor.\n"
   "Example: ebl.randn(50, 50):print{full = true}"},
  {NULL, NULL, NULL}
};

/* Adds print_options, t:format and t:print. */
void ebl_open_print(lua_State *L, int methods) {
  print_opts *o = lua_newuserdatauv(L, sizeof *o, 0);
  default_opts(o);
  lua_setfield(L, LUA_REGISTRYINDEX, OPTIONS_KEY);
  ebl_set_funcs(L, FUNCS);
  lua_pushvalue(L, methods);
  ebl_set_funcs(L, METHODS);
  lua_pop(L, 1);
}

/* The tensor binding's shared parts: the ebl.Tensor userdata, argument
   and option-table helpers, nested-table reading and the printer. */
#ifndef EBL_LTENSOR_H
#define EBL_LTENSOR_H

#include <lua.h>
#include <lauxlib.h>

#include "lua/lebl.h"
#include "tensor.h"

#define EBL_TENSOR_MT "ebl.Tensor"

/* ---- the userdata (ltensor.c) ---- */

/* Returns the tensor at arg, raising a Lua error if it is not an open
   ebl.Tensor. */
ebl_tensor *ebl_checktensor(lua_State *L, int arg);
/* Returns the tensor at idx, or NULL if it is no ebl.Tensor. */
ebl_tensor *ebl_testtensor(lua_State *L, int idx);
/* Pushes a new userdata holding an empty tensor (no storage) for a core
   function to fill; on failure it is collected like any other. */
ebl_tensor *ebl_pushnew(lua_State *L);
/* Finishes the tensor at the top of the stack after the core filled it:
   raises the error if status is not EBL_OK, and tells the collector
   about fresh storage. */
void ebl_finish(lua_State *L, ebl_status status);
/* Raises a Lua error unless status is EBL_OK. */
void ebl_check(lua_State *L, ebl_status status);
/* The same, but on failure first releases out: an output allocated for
   a call that then refused its arguments. */
void ebl_check_release(lua_State *L, ebl_status status, ebl_tensor *out);
/* Tells the collector that `nbytes` of memory outside Lua now hang on
   a Lua value, so that big tensors are collected in time. */
void ebl_account(lua_State *L, size_t nbytes);

/* Functions that share one C function and differ by an op code, passed
   as upvalue 1 (ebl_set_ops registers them with their help). */
typedef struct ebl_op_doc {
  const char *name;
  lua_CFunction func;
  int op;
  const char *help;
} ebl_op_doc;
void ebl_set_ops(lua_State *L, const ebl_op_doc *ops);

/* The parts' openers: each adds its functions to the ebl table at the
   top of the stack and its methods to the table at index `methods`. */
void ebl_open_create(lua_State *L, int methods);
void ebl_open_view(lua_State *L, int methods);
void ebl_open_math(lua_State *L, int methods);
void ebl_open_nn(lua_State *L, int methods);
void ebl_open_print(lua_State *L, int methods);

/* The device creation functions use when no device is named
   (lcreate.c; ebl.set_default_device changes it). */
extern ebl_device ebl_lua_default_device;

/* ---- arguments (largs.c) ---- */

/* A dtype name ("float32", also "float", "double", "int", "byte"). */
ebl_dtype ebl_checkdtype(lua_State *L, int arg);
/* Option 'dtype' of the options table at arg (nil: def). */
ebl_dtype ebl_optdtype(lua_State *L, int arg, ebl_dtype def);
/* Option 'device' of the options table at arg (nil: def). */
ebl_device ebl_optdevice(lua_State *L, int arg, ebl_device def);

/* A 1-based dim at arg (negative counts from the end) as 0-based, for a
   tensor of ndim dims. extra allows one more (unsqueeze). */
int ebl_checkdim(lua_State *L, int arg, int ndim, int extra);
/* A 1-based index at arg (negative counts from the end) into a dim of
   the given size, as 0-based. */
int64_t ebl_checkindex(lua_State *L, int arg, int64_t size);
/* An integer at arg, or an error naming what was expected. */
int64_t ebl_checkint(lua_State *L, int arg, const char *what);

/* A shape given as a table at arg or as integers from arg on; returns
   ndim and sets *next to the first argument after the shape. Sizes of
   -1 are allowed when allow_infer is set (reshape). */
int ebl_checkshape(lua_State *L, int arg, int64_t *shape, int allow_infer,
                   int *next);

/* Option tables: nil or a table with only the names in `known`. */
int ebl_checkopts(lua_State *L, int arg, const char *const *known);
int64_t ebl_optint(lua_State *L, int arg, const char *name, int64_t def);
double ebl_optnum(lua_State *L, int arg, const char *name, double def);
int ebl_optbool(lua_State *L, int arg, const char *name, int def);
/* An option that is one integer or a pair {h, w}; min is the
   least value allowed (0 for padding, 1 for stride). */
void ebl_optpair(lua_State *L, int arg, const char *name, int def, int min,
                 int pair[2]);

/* The same for a positional argument (nil: def). */
void ebl_checkpair(lua_State *L, int arg, const char *what, int def,
                   int min, int pair[2]);

/* ---- nested tables (lflat.c) ---- */

/* Checks that the value at arg is a rectangular nested table of numbers
   fitting dtype; returns ndim and fills shape. A number gives ndim 0. */
int ebl_nested_shape(lua_State *L, int arg, ebl_dtype dtype,
                     int64_t *shape);
/* Writes the numbers of the checked nested table at arg, row-major,
   into the contiguous CPU tensor t. */
void ebl_nested_fill(lua_State *L, int arg, ebl_tensor *t);

/* ---- printing (lprint.c) ---- */

/* Pushes the printed form of t with the options of ebl.print_options. */
void ebl_push_repr(lua_State *L, const ebl_tensor *t);

#endif

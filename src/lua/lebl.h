/* Declarations shared by the Lua binding: the module's openers, the help
   registry and the conversion of core errors into Lua errors. */
#ifndef EBL_LEBL_H
#define EBL_LEBL_H

#include <lua.h>
#include <lauxlib.h>

#include "tensor.h"

#define EBL_VERSION "0.1.0"

/* Opens the module: pushes the ebl table. */
int luaopen_ebl(lua_State *L);

/* Each opener adds its functions to the ebl table at the top of the
   stack, leaving the stack as it found it. */
void ebl_open_help(lua_State *L);
void ebl_open_util(lua_State *L);
/* ebl.Tensor and the tensor functions (src/lua/ltensor.c). */
void ebl_open_tensor(lua_State *L);
/* ebl.cuda, t:cuda(), t:cpu(), ebl.set_default_device (src/lua/lcuda.c);
   after ebl_open_tensor. */
void ebl_open_cuda(lua_State *L);
/* The energy engine's core object (src/lua/lmodel.c). */
void ebl_open_model(lua_State *L);
/* ebl.data: dataset readers and the batch loader (src/lua/ldata.c). */
void ebl_open_data(lua_State *L);
/* ebl.save, ebl.load: safetensors files (src/lua/lsafetensors.c). */
void ebl_open_safetensors(lua_State *L);

/* Registers text as the help of the value at index idx. */
void ebl_help_set(lua_State *L, int idx, const char *text);

/* Registers functions like luaL_setfuncs on the table at the top of the
   stack, each with its help text (texts[i] belongs to funcs[i]). */
typedef struct ebl_func_doc {
  const char *name;
  lua_CFunction func;
  const char *help;
} ebl_func_doc;
void ebl_set_funcs(lua_State *L, const ebl_func_doc *funcs);

/* Registers the metatable `name` for a userdata class: methods as its
   __index, close as both __gc and __close. Leaves the stack as it was. */
void ebl_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                   lua_CFunction close);

/* Raises the last core error (ebl_error()) as a Lua error. */
int ebl_raise(lua_State *L);

#endif

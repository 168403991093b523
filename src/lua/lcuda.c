/* The binding of the CUDA device: the ebl.cuda table (availability,
   devices, the allocator's figures, TF32), t:cuda() and t:cpu(), and
   ebl.set_default_device. The device itself is src/cuda.c and the
   module it opens; nothing here loads CUDA before a function asks. */
#include <string.h>

#include "cuda.h"
#include "lua/ltensor.h"

/* ebl.cuda.available() */
static int l_available(lua_State *L) {
  lua_pushboolean(L, ebl_cuda_available());
  return 1;
}

/* ebl.cuda.reason() */
static int l_reason(lua_State *L) {
  lua_pushstring(L, ebl_cuda_unavailable_reason());
  return 1;
}

/* ebl.cuda.device_count() */
static int l_device_count(lua_State *L) {
  lua_pushinteger(L, ebl_cuda_device_count());
  return 1;
}

/* ebl.cuda.device_name() */
static int l_device_name(lua_State *L) {
  char name[256];
  ebl_check(L, ebl_cuda_device_name(name, sizeof name));
  lua_pushstring(L, name);
  return 1;
}

/* Sets field name of the table on top to n. */
static void set_count(lua_State *L, const char *name, long long n) {
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, name);
}

/* ebl.cuda.memory() */
static int l_memory(lua_State *L) {
  ebl_cuda_memory_stats s;
  ebl_check(L, ebl_cuda_memory(&s));
  lua_createtable(L, 0, 6);
  set_count(L, "in_use", (long long)s.in_use);
  set_count(L, "cached", (long long)s.cached);
  set_count(L, "peak", (long long)s.peak);
  set_count(L, "requested", (long long)s.requested);
  set_count(L, "device_mallocs", s.device_mallocs);
  set_count(L, "device_frees", s.device_frees);
  return 1;
}

/* ebl.cuda.empty_cache() */
static int l_empty_cache(lua_State *L) {
  ebl_check(L, ebl_cuda_empty_cache());
  return 0;
}

/* ebl.cuda.synchronize() */
static int l_synchronize(lua_State *L) {
  ebl_check(L, ebl_cuda_synchronize());
  return 0;
}

/* ebl.cuda.allow_tf32(on) -> the previous setting */
static int l_allow_tf32(lua_State *L) {
  int previous = 0;
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  ebl_check(L, ebl_cuda_allow_tf32(lua_toboolean(L, 1), &previous));
  lua_pushboolean(L, previous);
  return 1;
}

/* Pushes t on device (t itself when it is there already). */
static int push_on(lua_State *L, ebl_device device) {
  ebl_tensor *t = ebl_checktensor(L, 1);
  if (ebl_tensor_device(t) == device) {
    lua_settop(L, 1);
    return 1;
  }
  ebl_tensor *res = ebl_pushnew(L);
  ebl_finish(L, ebl_to_device(res, t, device));
  return 1;
}

/* t:cuda() */
static int m_cuda(lua_State *L) { return push_on(L, EBL_CUDA); }

/* t:cpu() */
static int m_cpu(lua_State *L) { return push_on(L, EBL_CPU); }

/* ebl.set_default_device(name) */
static int l_set_default_device(lua_State *L) {
  static const char *const names[] = {"cpu", "cuda", NULL};
  int d = luaL_checkoption(L, 1, NULL, names);
  if (d == EBL_CUDA && !ebl_cuda_available())
    return luaL_error(L, "set_default_device: cuda is not available (%s)",
                      ebl_cuda_unavailable_reason());
  ebl_lua_default_device = (ebl_device)d;
  return 0;
}

/* ebl.default_device() */
static int l_default_device(lua_State *L) {
  lua_pushstring(L, ebl_device_name(ebl_lua_default_device));
  return 1;
}

static const ebl_func_doc CUDA_FUNCS[] = {
  {"available", l_available,
   "cuda.available() -> true when tensors can live on an NVIDIA GPU: the "
   "driver reports a device and the CUDA module (build/ebl_cuda.so, "
   "built when nvcc is present) loads. The first call loads it.\n"
   "Example: if ebl.cuda.available() then x = x:cuda() end"},
  {"reason", l_reason,
   "cuda.reason() -> why cuda.available() is false ('' when it is "
   "true).\nExample: print(ebl.cuda.reason())"},
  {"device_count", l_device_count,
   "cuda.device_count() -> the number of GPUs the driver reports (0 "
   "without a driver); loads no CUDA module.\n"
   "Example: print(ebl.cuda.device_count())"},
  {"device_name", l_device_name,
   "cuda.device_name() -> the name of GPU 0, e.g. 'NVIDIA H200'.\n"
   "Example: print(ebl.cuda.device_name())"},
  {"memory", l_memory,
   "cuda.memory() -> a table of the GPU allocator's bytes: in_use (held "
   "by live tensors and scratch), cached (freed, kept for reuse), peak, "
   "requested (asked for by blocks in use, before rounding), and the "
   "counts device_mallocs and device_frees of cudaMalloc and cudaFree.\n"
   "Example: print(ebl.cuda.memory().in_use)"},
  {"empty_cache", l_empty_cache,
   "cuda.empty_cache() returns the cached blocks to the driver (after "
   "the queued work), so other programs can use that memory.\n"
   "Example: ebl.cuda.empty_cache()"},
  {"synchronize", l_synchronize,
   "cuda.synchronize() waits until the queued GPU work has finished. "
   "Reading values (item, totable, printing) waits by itself; this is "
   "for timing.\nExample: ebl.cuda.synchronize(); local t = os.clock()"},
  {"allow_tf32", l_allow_tf32,
   "cuda.allow_tf32(on) lets float32 matrix products and convolutions "
   "use TF32 tensor cores (about 10 mantissa bits in the products) and "
   "returns the previous setting. Off by default: full float32.\n"
   "Example: local was = ebl.cuda.allow_tf32(true)"},
  {NULL, NULL, NULL}
};

static const ebl_func_doc FUNCS[] = {
  {"set_default_device", l_set_default_device,
   "set_default_device(name) makes creation functions (zeros, rand, "
   "tensor, arange, ... and the layers of ebl.nn) put tensors on 'cpu' "
   "or 'cuda' when no device option is given.\n"
   "Example: ebl.set_default_device('cuda')"},
  {"default_device", l_default_device,
   "default_device() -> 'cpu' or 'cuda', where tensors are made when no "
   "device is named.\nExample: print(ebl.default_device())"},
  {NULL, NULL, NULL}
};

static const ebl_func_doc METHODS[] = {
  {"cuda", m_cuda,
   "t:cuda() -> a copy of t on the GPU (t itself when it is there). The "
   "copy waits for the transfer.\n"
   "Example: local x = ebl.randn{2, 3}:cuda()"},
  {"cpu", m_cpu,
   "t:cpu() -> a copy of t in host memory (t itself when it is there); "
   "waits for the GPU's queued work.\nExample: print(y:cpu())"},
  {NULL, NULL, NULL}
};

static const char CUDA_HELP[] =
  "ebl.cuda: the NVIDIA GPU. Tensors move with t:cuda(), t:cpu(), "
  "t:to('cuda') or the option {device = 'cuda'}; every tensor op runs "
  "where its operands are, and mixing devices in one op is an error. "
  "GPU work is queued and runs asynchronously; reading a value waits. "
  "Float32 is full float32 unless cuda.allow_tf32(true).\n"
  "Example: if ebl.cuda.available() then print(ebl.cuda.device_name()) "
  "end";

void ebl_open_cuda(lua_State *L) {
  ebl_set_funcs(L, FUNCS);
  lua_newtable(L);
  ebl_help_set(L, -1, CUDA_HELP);
  ebl_set_funcs(L, CUDA_FUNCS);
  lua_setfield(L, -2, "cuda");
  if (lua_getfield(L, -1, "Tensor") == LUA_TTABLE)
    ebl_set_funcs(L, METHODS);
  lua_pop(L, 1);
}

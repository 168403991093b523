/* The data binding: the core's readers (IDX, CIFAR, Tiny ImageNet) and
   the batch loader as the table ebl.data. Dataset objects, file search
   and the loader's options live in lua/ebl/data.lua; the functions
   here whose names start with '_' are its building blocks. */
#include <string.h>

#include "data/data.h"
#include "lua/lebl.h"
#include "lua/ltensor.h"

#define LOADER_MT "ebl.LoaderCore"

/* Pushes a tensor value the core made, handing its reference to Lua. */
static void push_tensor(lua_State *L, ebl_tensor *t) {
  ebl_tensor *u = ebl_pushnew(L);
  *u = *t;
  memset(t, 0, sizeof *t);
  ebl_finish(L, EBL_OK);
}

/* Pushes a dataset's images, labels and (if any) coarse labels;
   returns how many values were pushed. */
static int push_dataset(lua_State *L, ebl_dataset *ds) {
  int coarse = ds->coarse.storage != NULL;
  push_tensor(L, &ds->images);
  push_tensor(L, &ds->labels);
  if (coarse)
    push_tensor(L, &ds->coarse);
  ebl_dataset_release(ds);
  return 2 + coarse;
}

/* ebl.data.idx(path) */
static int l_idx(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ebl_tensor *t = ebl_pushnew(L);
  ebl_finish(L, ebl_idx_read(t, path));
  return 1;
}

/* ebl.data._mnist(images_path, labels_path, classes) */
static int l_mnist(lua_State *L) {
  const char *images = luaL_checkstring(L, 1);
  const char *labels = luaL_checkstring(L, 2);
  int classes = (int)luaL_optinteger(L, 3, 10);
  ebl_dataset ds;
  ebl_check(L, ebl_mnist_read(&ds, images, labels, classes));
  return push_dataset(L, &ds);
}

/* ebl.data._cifar(kind, {paths}) with kind 10 or 100 */
static int l_cifar(lua_State *L) {
  lua_Integer kind = luaL_checkinteger(L, 1);
  luaL_argcheck(L, kind == 10 || kind == 100, 1, "10 or 100 expected");
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *paths[64];
  int n = (int)luaL_len(L, 2);
  luaL_argcheck(L, n >= 1 && n <= 64, 2, "1..64 paths expected");
  luaL_checkstack(L, n, "too many paths");
  for (int i = 0; i < n; i++) {   /* the strings stay on the stack */
    lua_rawgeti(L, 2, i + 1);
    paths[i] = luaL_checkstring(L, -1);
  }
  ebl_dataset ds;
  ebl_check(L, ebl_cifar_read(&ds, kind == 10 ? EBL_CIFAR10 : EBL_CIFAR100,
                              paths, n));
  return push_dataset(L, &ds);
}

/* Pushes the wnids as a Lua list. */
static void push_wnids(lua_State *L, const ebl_wnids *w) {
  lua_createtable(L, w->count, 0);
  for (int i = 0; i < w->count; i++) {
    lua_pushstring(L, w->ids[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ebl.data._tiny_imagenet(dir) -> train images, labels, val images,
   labels, wnids */
static int l_tiny_imagenet(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  ebl_wnids w;
  ebl_dataset train, val;
  ebl_check(L, ebl_wnids_read(&w, dir));
  ebl_status st = ebl_tiny_imagenet_read(&train, dir, "train", &w);
  if (st == EBL_OK) {
    st = ebl_tiny_imagenet_read(&val, dir, "val", &w);
    if (st != EBL_OK)
      ebl_dataset_release(&train);
  }
  if (st != EBL_OK)
    ebl_wnids_release(&w);
  ebl_check(L, st);
  push_dataset(L, &train);
  push_dataset(L, &val);
  push_wnids(L, &w);
  ebl_wnids_release(&w);
  return 5;
}

/* ebl.data._stats(images, count) -> {mean...}, {std...} */
static int l_stats(lua_State *L) {
  ebl_tensor *images = ebl_checktensor(L, 1);
  lua_Integer count = luaL_checkinteger(L, 2);
  double mean[EBL_LOADER_MAX_CHANNELS], std[EBL_LOADER_MAX_CHANNELS];
  luaL_argcheck(L, images->ndim == 4 &&
                images->shape[1] <= EBL_LOADER_MAX_CHANNELS, 1,
                "N x C x H x W images with at most 16 channels expected");
  ebl_tensor c = {0};
  ebl_check(L, ebl_tensor_contiguous(&c, images));
  ebl_status st = ebl_channel_stats(&c, count, mean, std);
  ebl_tensor_release(&c);
  ebl_check(L, st);
  for (int k = 0; k < 2; k++) {
    lua_createtable(L, (int)images->shape[1], 0);
    for (int i = 0; i < images->shape[1]; i++) {
      lua_pushnumber(L, k == 0 ? mean[i] : std[i]);
      lua_rawseti(L, -2, i + 1);
    }
  }
  return 2;
}

/* ebl.data._rng_seed() -> the global generator's seed */
static int l_rng_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)ebl_rng_seed());
  return 1;
}

/* ---------------------------------------------------------------- */
/* The loader core                                                  */

typedef struct loader_box {
  ebl_loader *loader;
} loader_box;

/* The open loader core at arg. */
static ebl_loader *check_loader(lua_State *L, int arg) {
  loader_box *box = luaL_checkudata(L, arg, LOADER_MT);
  if (box->loader == NULL)
    luaL_error(L, "loader: already closed");
  return box->loader;
}

/* Reads a list of numbers (the channel means or stds) from field name
   of the table at idx. */
static void read_channels(lua_State *L, int idx, const char *name,
                          double *values) {
  lua_getfield(L, idx, name);
  luaL_checktype(L, -1, LUA_TTABLE);
  int n = (int)luaL_len(L, -1);
  if (n > EBL_LOADER_MAX_CHANNELS)
    luaL_error(L, "loader: %s has %d entries, at most %d", name, n,
               EBL_LOADER_MAX_CHANNELS);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    values[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Reads the configuration table at idx (checked by data.lua). */
static void read_config(lua_State *L, int idx, ebl_loader_config *c) {
  static const char *const KNOWN[] = {"batch", "shuffle", "seed",
    "drop_last", "subset", "mean", "std", "crop", "flip", "prefetch",
    "dtype", NULL};
  ebl_checkopts(L, idx, KNOWN);
  *c = ebl_loader_config_default();
  c->batch = ebl_optint(L, idx, "batch", c->batch);
  c->shuffle = ebl_optbool(L, idx, "shuffle", 0);
  c->seed = (uint64_t)ebl_optint(L, idx, "seed", 0);
  c->drop_last = ebl_optbool(L, idx, "drop_last", 0);
  c->subset = ebl_optint(L, idx, "subset", 0);
  c->crop = (int)ebl_optint(L, idx, "crop", 0);
  c->flip = ebl_optbool(L, idx, "flip", 0);
  c->prefetch = ebl_optbool(L, idx, "prefetch", 1);
  c->dtype = ebl_optdtype(L, idx, EBL_F32);
  if (lua_getfield(L, idx, "mean") != LUA_TNIL) {
    c->normalize = 1;
    read_channels(L, idx, "mean", c->mean);
    read_channels(L, idx, "std", c->std);
  }
  lua_pop(L, 1);
}

/* ebl.data._loader(images, labels, config) -> loader core */
static int l_loader(lua_State *L) {
  ebl_tensor *images = ebl_checktensor(L, 1);
  ebl_tensor *labels = ebl_checktensor(L, 2);
  ebl_loader_config config;
  luaL_checktype(L, 3, LUA_TTABLE);
  read_config(L, 3, &config);
  loader_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->loader = NULL;
  luaL_setmetatable(L, LOADER_MT);
  ebl_check(L, ebl_loader_new(&box->loader, images, labels, &config));
  return 1;
}

/* core:start(epoch) */
static int l_start(lua_State *L) {
  ebl_loader *l = check_loader(L, 1);
  ebl_check(L, ebl_loader_start(l, luaL_checkinteger(L, 2)));
  return 0;
}

/* core:next() -> x, y, or nothing at the end of the epoch */
static int l_next(lua_State *L) {
  ebl_loader *l = check_loader(L, 1);
  ebl_tensor x = {0}, y = {0};
  int done = 0;
  ebl_check(L, ebl_loader_next(l, &x, &y, &done));
  if (done)
    return 0;
  push_tensor(L, &x);
  push_tensor(L, &y);
  return 2;
}

/* core:sizes() -> samples per epoch, batches per epoch */
static int l_sizes(lua_State *L) {
  ebl_loader *l = check_loader(L, 1);
  lua_pushinteger(L, (lua_Integer)ebl_loader_epoch_size(l));
  lua_pushinteger(L, (lua_Integer)ebl_loader_batches(l));
  return 2;
}

/* core:norm() -> {mean...}, {std...} as applied */
static int l_norm(lua_State *L) {
  ebl_loader *l = check_loader(L, 1);
  double mean[EBL_LOADER_MAX_CHANNELS], std[EBL_LOADER_MAX_CHANNELS];
  int n = ebl_loader_norm(l, mean, std);
  for (int k = 0; k < 2; k++) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
      lua_pushnumber(L, k == 0 ? mean[i] : std[i]);
      lua_rawseti(L, -2, i + 1);
    }
  }
  return 2;
}

/* __gc, __close and core:close(): stops the thread and frees (once). */
static int l_close(lua_State *L) {
  loader_box *box = luaL_checkudata(L, 1, LOADER_MT);
  ebl_loader_free(box->loader);
  box->loader = NULL;
  return 0;
}

static const luaL_Reg core_methods[] = {
  {"start", l_start}, {"next", l_next}, {"sizes", l_sizes},
  {"norm", l_norm}, {"close", l_close}, {NULL, NULL}
};

static const ebl_func_doc data_funcs[] = {
  {"idx", l_idx,
   "idx(path) -> the tensor stored in an IDX file (MNIST's format), raw "
   "or gzip-compressed, with the file's shape: uint8 for unsigned bytes, "
   "int32 for int8/int16/int32, float32 or float64 for floats. Bad "
   "magic, truncated files and trailing bytes are errors naming the "
   "file.\n  local t = ebl.data.idx('t10k-labels-idx1-ubyte.gz')"},
  {"_mnist", l_mnist,
   "_mnist(images_path, labels_path [, classes=10]) -> images (N x 1 x H "
   "x W uint8), labels (N int32): an IDX pair checked together."},
  {"_cifar", l_cifar,
   "_cifar(10 | 100, {paths}) -> images (N x 3 x 32 x 32 uint8), labels "
   "(int32) [, coarse labels for CIFAR-100]."},
  {"_tiny_imagenet", l_tiny_imagenet,
   "_tiny_imagenet(dir) -> train images, labels, val images, labels, "
   "wnids."},
  {"_stats", l_stats,
   "_stats(images, count) -> per-channel mean and std of the first count "
   "images scaled to [0, 1]."},
  {"_loader", l_loader,
   "_loader(images, labels, config) -> the C loader under "
   "ebl.data.loader."},
  {"_rng_seed", l_rng_seed,
   "_rng_seed() -> the seed of ebl.manual_seed (the loader's default)."},
  {NULL, NULL, NULL}
};

/* Adds ebl.data to the ebl table at the top of the stack. */
void ebl_open_data(lua_State *L) {
  ebl_new_class(L, LOADER_MT, core_methods, l_close);
  lua_newtable(L);
  ebl_set_funcs(L, data_funcs);
  lua_setfield(L, -2, "data");
}

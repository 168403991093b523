/* The binding of the energy engine: turns the description the Lua
   library builds from a graph (lua/ebl/model.lua) into an ebl_model,
   and exposes its inference, energies, states and gradients. The user's
   vocabulary (m:infer, m:state('h1'), ...) lives in model.lua. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/model.h"
#include "lua/lebl.h"
#include "lua/ltensor.h"

#define MODEL_MT "ebl.ModelCore"

typedef struct model_box {
  ebl_model *model;
  ebl_infer_opts last;    /* the settings of the last infer, for step */
} model_box;

static ebl_model *check_model(lua_State *L, int arg) {
  model_box *box = luaL_checkudata(L, arg, MODEL_MT);
  if (box->model == NULL)
    luaL_error(L, "model: already closed");
  return box->model;
}

/* ---------------------------------------------------------------- */
/* Reading the description                                          */

/* The value at idx as an int; raises an error naming field `name`. */
static int int_value(lua_State *L, int idx, const char *name) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (!isint || v < INT_MIN || v > INT_MAX)
    luaL_error(L, "model: '%s' must be an integer below 2^31, got %s",
               name, luaL_tolstring(L, idx, NULL));
  return (int)v;
}

/* Field name of the table at idx as an integer, or def when absent. */
static int int_field(lua_State *L, int idx, const char *name, int def) {
  int v = def;
  if (lua_getfield(L, idx, name) != LUA_TNIL)
    v = int_value(L, -1, name);
  lua_pop(L, 1);
  return v;
}

static double num_field(lua_State *L, int idx, const char *name,
                        double def) {
  double v = def;
  if (lua_getfield(L, idx, name) != LUA_TNIL)
    v = luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* A field holding one integer or a pair {h, w}. */
static void pair_field(lua_State *L, int idx, const char *name, int def,
                       int pair[2]) {
  pair[0] = pair[1] = def;
  int type = lua_getfield(L, idx, name);
  if (type == LUA_TTABLE) {
    for (int i = 0; i < 2; i++) {
      lua_rawgeti(L, -1, i + 1);
      pair[i] = int_value(L, -1, name);
      lua_pop(L, 1);
    }
  } else if (type != LUA_TNIL) {
    pair[0] = pair[1] = int_value(L, -1, name);
  }
  lua_pop(L, 1);
}

/* Reads a shape table field into shape; returns ndim. */
static int shape_field(lua_State *L, int idx, const char *name,
                       int64_t *shape, int max) {
  lua_getfield(L, idx, name);
  luaL_checktype(L, -1, LUA_TTABLE);
  int n = (int)luaL_len(L, -1);
  if (n > max)
    luaL_error(L, "model: shape with %d dims (at most %d)", n, max);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    shape[i] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* An activation by name, with its derivative: the core's unary ops
   that have a "<name>_grad" companion. */
static void activation(lua_State *L, const char *name, ebl_unary_op *act,
                       ebl_unary_op *grad) {
  char grad_name[64];
  snprintf(grad_name, sizeof grad_name, "%s_grad", name);
  int a = ebl_unary_from_name(name), g = ebl_unary_from_name(grad_name);
  if (a < 0 || g < 0)
    luaL_error(L, "model: unknown activation '%s'", name);
  *act = (ebl_unary_op)a;
  *grad = (ebl_unary_op)g;
}

static const char *const OP_KINDS[] = {"linear", "linear_t", "conv2d",
  "conv_transpose2d", "max_pool2d", "avg_pool2d", "avg_unpool2d",
  "upsample", "reshape", "identity", "activation", NULL};

/* Reads the op table at idx; parameter fields are 1-based indices. */
static void read_op(lua_State *L, int idx, ebl_op *op) {
  memset(op, 0, sizeof *op);
  lua_getfield(L, idx, "kind");
  op->kind = (ebl_op_kind)luaL_checkoption(L, -1, NULL, OP_KINDS);
  lua_pop(L, 1);
  op->weight = int_field(L, idx, "weight", 0) - 1;
  op->bias = int_field(L, idx, "bias", 0) - 1;
  op->conv = ebl_conv_opts_default();
  pair_field(L, idx, "stride", 1, op->conv.stride);
  pair_field(L, idx, "padding", 0, op->conv.padding);
  pair_field(L, idx, "dilation", 1, op->conv.dilation);
  pair_field(L, idx, "output_padding", 0, op->conv.output_padding);
  op->conv.groups = int_field(L, idx, "groups", 1);
  pair_field(L, idx, "kernel", 1, op->pool.kernel);
  pair_field(L, idx, "stride", 0, op->pool.stride);
  pair_field(L, idx, "padding", 0, op->pool.padding);
  for (int d = 0; d < 2; d++)
    if (op->pool.stride[d] == 0)
      op->pool.stride[d] = op->pool.kernel[d];
  if (op->kind == EBL_OP_ACTIVATION) {
    lua_getfield(L, idx, "act");
    activation(L, luaL_checkstring(L, -1), &op->act, &op->act_grad);
    lua_pop(L, 1);
    op->act_param = num_field(L, idx, "slope", 0.01);
  }
  if (op->kind == EBL_OP_RESHAPE && lua_getfield(L, idx, "shape") != LUA_TNIL)
    op->out_ndim = shape_field(L, idx, "shape", op->out_shape,
                               EBL_MAX_DIMS - 1);
  if (op->kind == EBL_OP_RESHAPE)
    lua_pop(L, 1);
}

static void read_config(lua_State *L, int idx, ebl_model_config *c) {
  static const char *const energies[] = {"pc", "bipc", "bipc_sq", "ep",
    "bp", NULL};
  static const char *const losses[] = {"mse", "ce", NULL};
  memset(c, 0, sizeof *c);
  lua_getfield(L, idx, "energy");
  c->energy = (ebl_energy)luaL_checkoption(L, -1, "pc", energies);
  lua_getfield(L, idx, "loss");
  c->loss = (ebl_loss)luaL_checkoption(L, -1, "ce", losses);
  lua_pop(L, 2);
  c->beta = num_field(L, idx, "beta", 1.0);
  c->time_steps = int_field(L, idx, "time_steps", 1);
  c->fb_weight = num_field(L, idx, "feedback_weight", 1.0);
  c->cb_weight = num_field(L, idx, "cb_weight", 0.0);
  lua_getfield(L, idx, "clamp");
  c->clamp_output = lua_toboolean(L, -1);
  lua_getfield(L, idx, "feedback_from_output");
  c->fb_from_output = lua_toboolean(L, -1);
  lua_getfield(L, idx, "feedback_learns");
  c->fb_learns = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 3);
}

static void read_node(lua_State *L, int idx, ebl_node *n) {
  static const char *const roles[] = {"hidden", "input", "output", NULL};
  memset(n, 0, sizeof *n);
  lua_getfield(L, idx, "name");
  snprintf(n->name, sizeof n->name, "%s", luaL_checkstring(L, -1));
  lua_getfield(L, idx, "role");
  n->role = (ebl_role)luaL_checkoption(L, -1, "hidden", roles);
  lua_getfield(L, idx, "activation");
  if (!lua_isnil(L, -1)) {
    activation(L, luaL_checkstring(L, -1), &n->act, &n->act_grad);
    n->has_act = 1;
    n->act_param = num_field(L, idx, "slope", 0.01);
  }
  lua_pop(L, 3);
  n->ndim = shape_field(L, idx, "shape", n->shape, EBL_MAX_DIMS - 1);
}

/* Adds the edges of desc.edges; ops reads each edge's op list. */
static ebl_status add_edges(lua_State *L, ebl_model *m, int desc) {
  static const char *const kinds[] = {"forward", "skip", "recurrent",
    "internal", NULL};
  lua_getfield(L, desc, "edges");
  int n = (int)luaL_len(L, -1);
  ebl_status s = EBL_OK;
  for (int e = 1; s == EBL_OK && e <= n; e++) {
    lua_rawgeti(L, -1, e);
    int ed = lua_gettop(L);
    lua_getfield(L, ed, "kind");
    ebl_edge_kind kind = (ebl_edge_kind)luaL_checkoption(L, -1, "forward",
                                                         kinds);
    lua_pop(L, 1);
    lua_getfield(L, ed, "ops");
    int nops = (int)luaL_len(L, -1);
    ebl_op *ops = lua_newuserdatauv(L, sizeof(ebl_op) * (size_t)(nops + 1),
                                    0);
    for (int i = 0; i < nops; i++) {
      lua_rawgeti(L, -2, i + 1);
      read_op(L, lua_gettop(L), &ops[i]);
      lua_pop(L, 1);
    }
    s = ebl_model_add_edge(m, int_field(L, ed, "src", 0) - 1,
                           int_field(L, ed, "dst", 0) - 1,
                           int_field(L, ed, "delay", 0), kind, ops, nops);
    lua_settop(L, ed - 1);
  }
  lua_pop(L, 1);
  return s;
}

static void add_nodes(lua_State *L, ebl_model *m, int desc) {
  lua_getfield(L, desc, "nodes");
  int n = (int)luaL_len(L, -1);
  for (int i = 1; i <= n; i++) {
    ebl_node node;
    int index;
    lua_rawgeti(L, -1, i);
    read_node(L, lua_gettop(L), &node);
    lua_pop(L, 1);
    ebl_check(L, ebl_model_add_node(m, &node, &index));
  }
  lua_pop(L, 1);
}

static void add_params(lua_State *L, ebl_model *m, int desc) {
  lua_getfield(L, desc, "params");
  int n = (int)luaL_len(L, -1);
  for (int i = 1; i <= n; i++) {
    int index;
    lua_rawgeti(L, -1, i);
    ebl_check(L, ebl_model_add_param(m, ebl_checktensor(L, -1), &index));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Fails unless desc (argument 1) has the four tables of a description. */
static void check_description(lua_State *L) {
  static const char *const parts[] = {"config", "nodes", "params", "edges"};
  luaL_checktype(L, 1, LUA_TTABLE);
  for (int i = 0; i < 4; i++) {
    int type = lua_getfield(L, 1, parts[i]);
    lua_pop(L, 1);
    if (type != LUA_TTABLE)
      luaL_error(L, "_model_new: desc.%s must be a table, got %s", parts[i],
                 lua_typename(L, type));
  }
}

/* ebl._model_new(desc) -> core: the model of a description built by
   lua/ebl/model.lua (config, nodes, params, edges). */
static int l_model_new(lua_State *L) {
  check_description(L);
  model_box *box = lua_newuserdatauv(L, sizeof *box, 0);
  box->model = NULL;
  luaL_setmetatable(L, MODEL_MT);
  ebl_model_config cfg;
  lua_getfield(L, 1, "config");
  read_config(L, lua_gettop(L), &cfg);
  lua_pop(L, 1);
  ebl_check(L, ebl_model_new(&box->model, &cfg));
  add_nodes(L, box->model, 1);
  add_params(L, box->model, 1);
  ebl_check(L, add_edges(L, box->model, 1));
  ebl_check(L, ebl_model_finish(box->model));
  return 1;
}

/* ---------------------------------------------------------------- */
/* Methods of the core                                               */

/* A count option of infer in min..INT_MAX (absent: def). */
static int count_option(lua_State *L, int arg, const char *name, int def,
                        int min) {
  int64_t v = ebl_optint(L, arg, name, def);
  if (v < min)
    luaL_error(L, "infer: %s must be >= %d, got %I", name, min,
               (lua_Integer)v);
  if (v > INT_MAX)
    luaL_error(L, "infer: %s must be <= %d, got %I", name, INT_MAX,
               (lua_Integer)v);
  return (int)v;
}

static void read_infer_opts(lua_State *L, int arg, ebl_model *m,
                            ebl_infer_opts *o) {
  static const char *const known[] = {"steps", "state_lr", "tol", "beta",
    "state_optim", "momentum", "beta1", "beta2", "eps", "record",
    "check_every", "param_lr", "backtrack", NULL};
  static const char *const optims[] = {"sgd", "momentum", "adam", NULL};
  ebl_checkopts(L, arg, known);
  o->beta = ebl_optnum(L, arg, "beta", ebl_model_config_of(m)->beta);
  o->steps = count_option(L, arg, "steps", 200, 0);
  o->state_lr = ebl_optnum(L, arg, "state_lr", 0.01);
  o->tol = ebl_optnum(L, arg, "tol", 1e-7);
  o->momentum = ebl_optnum(L, arg, "momentum", 0.9);
  o->beta1 = ebl_optnum(L, arg, "beta1", 0.9);
  o->beta2 = ebl_optnum(L, arg, "beta2", 0.999);
  o->eps = ebl_optnum(L, arg, "eps", 1e-8);
  o->record = ebl_optbool(L, arg, "record", 0);
  o->check_every = count_option(L, arg, "check_every", 10, 1);
  o->param_lr = ebl_optnum(L, arg, "param_lr", 0.0);
  o->backtrack = ebl_optbool(L, arg, "backtrack", 0);
  o->optim = EBL_STATE_SGD;
  if (!lua_isnoneornil(L, arg) &&
      lua_getfield(L, arg, "state_optim") != LUA_TNIL) {
    const char *name = lua_tostring(L, -1);
    int i = 0;
    while (optims[i] != NULL && (name == NULL || strcmp(optims[i], name)))
      i++;
    if (optims[i] == NULL)
      luaL_error(L, "infer: state_optim must be sgd, momentum or adam, "
                 "got %s", luaL_tolstring(L, -1, NULL));
    o->optim = (ebl_state_optim)i;
  }
  if (!lua_isnoneornil(L, arg))
    lua_pop(L, 1);
  if (!(o->state_lr > 0))
    luaL_error(L, "infer: state_lr must be > 0, got %f", o->state_lr);
  if (!(o->tol >= 0))
    luaL_error(L, "infer: tol must be >= 0, got %f", o->tol);
}

/* core:infer(x, target or nil, opts) -> energy, steps, trace, state_lr */
static int l_infer(lua_State *L) {
  ebl_model *m = check_model(L, 1);
  const ebl_tensor *x = ebl_checktensor(L, 2);
  const ebl_tensor *target = lua_isnil(L, 3) ? NULL : ebl_checktensor(L, 3);
  ebl_infer_opts o;
  read_infer_opts(L, 4, m, &o);
  ebl_infer_result r;
  ebl_check(L, ebl_model_infer(m, x, target, &o, &r));
  ((model_box *)lua_touserdata(L, 1))->last = o;
  lua_pushnumber(L, r.energy);
  lua_pushinteger(L, r.steps);
  lua_createtable(L, r.steps + 1, 0);
  for (int i = 0; i <= r.steps; i++) {
    lua_pushnumber(L, r.trace[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushnumber(L, r.state_lr);
  return 4;
}

static int l_step(lua_State *L) {
  ebl_model *m = check_model(L, 1);
  ebl_infer_opts o = ((model_box *)lua_touserdata(L, 1))->last;
  if (!lua_isnoneornil(L, 2))
    read_infer_opts(L, 2, m, &o);
  double energy;
  ebl_check(L, ebl_model_step(m, &o, &energy));
  lua_pushnumber(L, energy);
  return 1;
}

static int l_forward(lua_State *L) {
  ebl_model *m = check_model(L, 1);
  ebl_check(L, ebl_model_forward(m, ebl_checktensor(L, 2)));
  return 0;
}

static int l_energy(lua_State *L) {
  double energy;
  ebl_check(L, ebl_model_energy(check_model(L, 1), &energy));
  lua_pushnumber(L, energy);
  return 1;
}

static int l_grads(lua_State *L) {
  ebl_check(L, ebl_model_grads(check_model(L, 1)));
  return 0;
}

/* Pushes a new Tensor viewing t (a live view), or nil. */
static int push_view(lua_State *L, const ebl_tensor *t) {
  if (t == NULL || t->storage == NULL) {
    lua_pushnil(L);
    return 1;
  }
  ebl_tensor *res = ebl_pushnew(L);
  ebl_tensor_view(res, t);
  return 1;
}

/* core:slot(what, node, t): 'state', 'error', 'feedback', 'grad'; node
   and t 1-based. */
static int l_slot(lua_State *L) {
  static const char *const whats[] = {"state", "error", "feedback", "grad",
    NULL};
  ebl_model *m = check_model(L, 1);
  int what = luaL_checkoption(L, 2, NULL, whats);
  int node = (int)luaL_checkinteger(L, 3) - 1;
  int t = (int)luaL_checkinteger(L, 4) - 1;
  const ebl_tensor *res =
    what == 0 ? ebl_model_state(m, node, t)
    : what == 1 ? ebl_model_error(m, node, t)
    : what == 2 ? ebl_model_fb_error(m, node, t)
    : ebl_model_state_grad(m, node, t);
  return push_view(L, res);
}

/* core:param_grad(i) -> the live gradient tensor of parameter i. */
static int l_param_grad(lua_State *L) {
  ebl_model *m = check_model(L, 1);
  ebl_params *p = ebl_model_params(m);
  int i = (int)luaL_checkinteger(L, 2);
  luaL_argcheck(L, i >= 1 && i <= p->count, 2, "no such parameter");
  return push_view(L, &p->grad[i - 1]);
}

/* core:trace() -> {energy = {{node1, ...}, ...}, grad = {...}} per
   step of the last infer (record = true). */
static int push_rows(lua_State *L, const double *data, int rows, int cols) {
  lua_createtable(L, rows, 0);
  for (int r = 0; r < rows; r++) {
    lua_createtable(L, cols, 0);
    for (int c = 0; c < cols; c++) {
      lua_pushnumber(L, data[r * cols + c]);
      lua_rawseti(L, -2, c + 1);
    }
    lua_rawseti(L, -2, r + 1);
  }
  return 1;
}

static int l_trace(lua_State *L) {
  ebl_model *m = check_model(L, 1);
  int rows, cols = ebl_model_node_count(m);
  lua_createtable(L, 0, 2);
  const double *e = ebl_model_node_energy_trace(m, &rows);
  push_rows(L, e, rows, cols);
  lua_setfield(L, -2, "energy");
  const double *g = ebl_model_node_grad_trace(m, &rows);
  push_rows(L, g, rows, cols);
  lua_setfield(L, -2, "grad");
  return 1;
}

static int l_batch(lua_State *L) {
  lua_pushinteger(L, ebl_model_batch(check_model(L, 1)));
  return 1;
}

static int l_close(lua_State *L) {
  model_box *box = luaL_checkudata(L, 1, MODEL_MT);
  ebl_model_free(box->model);
  box->model = NULL;
  return 0;
}

static const luaL_Reg core_methods[] = {
  {"infer", l_infer}, {"step", l_step}, {"forward", l_forward},
  {"energy", l_energy}, {"grads", l_grads}, {"slot", l_slot},
  {"param_grad", l_param_grad}, {"trace", l_trace}, {"batch", l_batch},
  {"close", l_close}, {NULL, NULL}
};

/* ebl._chain_shape(ops, params, in_shape, context) -> out_shape: the
   engine's shape rules, for checks when an edge is added. */
static int l_chain_shape(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *context = luaL_checkstring(L, 4);
  int nparams = (int)luaL_len(L, 2), nops = (int)luaL_len(L, 1);
  ebl_params p = {0};
  p.count = nparams;
  p.value = lua_newuserdatauv(L, sizeof(ebl_tensor) * (size_t)(nparams + 1),
                              0);
  for (int i = 0; i < nparams; i++) {
    lua_rawgeti(L, 2, i + 1);
    p.value[i] = *ebl_checktensor(L, -1);
    lua_pop(L, 1);
  }
  int64_t shape[EBL_MAX_DIMS];
  lua_createtable(L, 0, 1);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, "shape");
  int ndim = shape_field(L, lua_gettop(L), "shape", shape, EBL_MAX_DIMS - 1);
  lua_pop(L, 1);
  for (int i = 0; i < nops; i++) {
    ebl_op op;
    lua_rawgeti(L, 1, i + 1);
    read_op(L, lua_gettop(L), &op);
    lua_pop(L, 1);
    ebl_check(L, ebl_op_infer_shape(&op, &p, ndim, shape, context));
    ndim = op.out_ndim;
    memcpy(shape, op.out_shape, sizeof(int64_t) * (size_t)ndim);
  }
  lua_createtable(L, ndim, 0);
  for (int i = 0; i < ndim; i++) {
    lua_pushinteger(L, shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static const ebl_func_doc model_funcs[] = {
  {"_chain_shape", l_chain_shape,
   "_chain_shape(ops, params, shape, context): shape rules (internal)."},
  {"_model_new", l_model_new,
   "_model_new(desc): the engine behind ebl.model (internal)."},
  {NULL, NULL, NULL}
};

void ebl_open_model(lua_State *L) {
  ebl_new_class(L, MODEL_MT, core_methods, l_close);
  ebl_set_funcs(L, model_funcs);
}

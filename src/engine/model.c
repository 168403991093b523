/* Building a model: nodes, parameters and edges, the checks of the
   graph, the feedback chains, the time order of slots and the buffers of
   a batch size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* Grows an array to hold one more element. */
static int grow(void **data, int *cap, int count, size_t elem) {
  if (count < *cap)
    return 1;
  int next = *cap ? 2 * *cap : 8;
  void *p = realloc(*data, (size_t)next * elem);
  if (p == NULL)
    return 0;
  memset((char *)p + (size_t)*cap * elem, 0,
         (size_t)(next - *cap) * elem);
  *data = p;
  *cap = next;
  return 1;
}

ebl_status ebl_model_new(ebl_model **res, const ebl_model_config *cfg) {
  if (cfg->time_steps < 1)
    return ebl_fail(EBL_EARG, "model: time_steps must be >= 1, got %d",
                    cfg->time_steps);
  if (cfg->time_steps > EBL_MAX_TIME_STEPS)
    return ebl_fail(EBL_EARG, "model: time_steps must be <= %d, got %d",
                    EBL_MAX_TIME_STEPS, cfg->time_steps);
  ebl_model *m = calloc(1, sizeof *m);
  if (m == NULL)
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  m->cfg = *cfg;
  m->T = cfg->time_steps;
  m->input = m->output = -1;
  *res = m;
  return EBL_OK;
}

ebl_status ebl_model_add_node(ebl_model *m, const ebl_node *node,
                              int *index) {
  if (m->finished)
    return ebl_fail(EBL_EARG, "model: the graph is already finished");
  for (int i = 0; i < m->nnodes; i++)
    if (strcmp(m->nodes[i].name, node->name) == 0)
      return ebl_fail(EBL_EARG, "model: two nodes named '%s'", node->name);
  int *slot = node->role == EBL_INPUT ? &m->input
            : node->role == EBL_OUTPUT ? &m->output : NULL;
  if (slot != NULL && *slot >= 0)
    return ebl_fail(EBL_EARG, "model: nodes '%s' and '%s' are both %s",
                    m->nodes[*slot].name, node->name,
                    node->role == EBL_INPUT ? "input" : "output");
  if (!grow((void **)&m->nodes, &m->cap_nodes, m->nnodes, sizeof *node))
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  m->nodes[m->nnodes] = *node;
  if (slot != NULL)
    *slot = m->nnodes;
  *index = m->nnodes++;
  return EBL_OK;
}

/* Grows the three parameter arrays together. */
static int grow_params(ebl_model *m) {
  ebl_params *p = &m->params;
  if (p->count < m->cap_params)
    return 1;
  int next = m->cap_params ? 2 * m->cap_params : 8;
  ebl_tensor **arrays[3] = {&p->value, &p->grad, &p->scratch};
  for (int i = 0; i < 3; i++) {
    ebl_tensor *a = realloc(*arrays[i], sizeof(ebl_tensor) * (size_t)next);
    if (a == NULL)
      return 0;
    memset(a + m->cap_params, 0,
           sizeof(ebl_tensor) * (size_t)(next - m->cap_params));
    *arrays[i] = a;
  }
  m->cap_params = next;
  return 1;
}

ebl_status ebl_model_add_param(ebl_model *m, const ebl_tensor *value,
                               int *index) {
  ebl_params *p = &m->params;
  if (!ebl_dtype_is_float(value->dtype))
    return ebl_fail(EBL_EARG, "model: parameters must be float32 or "
                    "float64, got %s", ebl_dtype_name(value->dtype));
  if (p->count > 0 && value->dtype != p->value[0].dtype)
    return ebl_fail(EBL_EARG, "model: parameters mix %s and %s",
                    ebl_dtype_name(p->value[0].dtype),
                    ebl_dtype_name(value->dtype));
  if (!ebl_tensor_is_contiguous(value))
    return ebl_fail(EBL_EARG, "model: parameters must be contiguous");
  if (!grow_params(m))
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  int i = p->count;
  EBL_TRY(ebl_tensor_zeros_like(&p->grad[i], value));
  ebl_status s = ebl_tensor_zeros_like(&p->scratch[i], value);
  if (s != EBL_OK) {
    ebl_tensor_release(&p->grad[i]);
    return s;
  }
  ebl_tensor_view(&p->value[i], value);
  *index = p->count++;
  return EBL_OK;
}

/* Runs shape inference along a chain from src's shape to dst's. */
static ebl_status check_chain(ebl_model *m, ebl_op *ops, int nops, int src,
                              int dst) {
  char context[2 * EBL_NAME_MAX + 16], a[64], b[64];
  snprintf(context, sizeof context, "edge %s -> %s", m->nodes[src].name,
           m->nodes[dst].name);
  int ndim = m->nodes[src].ndim;
  const int64_t *shape = m->nodes[src].shape;
  for (int i = 0; i < nops; i++) {
    EBL_TRY(ebl_op_infer_shape(&ops[i], &m->params, ndim, shape, context));
    ndim = ops[i].out_ndim;
    shape = ops[i].out_shape;
  }
  const ebl_node *d = &m->nodes[dst];
  if (ndim != d->ndim ||
      memcmp(shape, d->shape, sizeof(int64_t) * (size_t)ndim) != 0)
    return ebl_fail(EBL_EARG, "%s: the edge gives shape %s, node '%s' has "
                    "shape %s", context,
                    ebl_format_shape(ndim, shape, a, sizeof a), d->name,
                    ebl_format_shape(d->ndim, d->shape, b, sizeof b));
  return EBL_OK;
}

ebl_status ebl_model_add_edge(ebl_model *m, int src, int dst, int delay,
                              ebl_edge_kind kind, const ebl_op *ops,
                              int nops) {
  if (m->finished)
    return ebl_fail(EBL_EARG, "model: the graph is already finished");
  if (src < 0 || src >= m->nnodes || dst < 0 || dst >= m->nnodes)
    return ebl_fail(EBL_EARG, "edge: node index out of range");
  if (dst == m->input)
    return ebl_fail(EBL_EARG, "edge %s -> %s: the input node is clamped "
                    "and takes no edges", m->nodes[src].name,
                    m->nodes[dst].name);
  if (delay < 0)
    return ebl_fail(EBL_EARG, "edge %s -> %s: delay must be >= 0, got %d",
                    m->nodes[src].name, m->nodes[dst].name, delay);
  ebl_op *copy = malloc(sizeof *copy * (size_t)(nops > 0 ? nops : 1));
  if (copy == NULL)
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  memcpy(copy, ops, sizeof *copy * (size_t)nops);
  ebl_status s = check_chain(m, copy, nops, src, dst);
  if (s == EBL_OK &&
      !grow((void **)&m->edges, &m->cap_edges, m->nedges, sizeof(ebl_edge)))
    s = ebl_fail(EBL_ENOMEM, "model: out of memory");
  if (s != EBL_OK) {
    free(copy);
    return s;
  }
  ebl_edge *e = &m->edges[m->nedges++];
  memset(e, 0, sizeof *e);
  e->src = src;
  e->dst = dst;
  e->delay = delay;
  e->kind = kind;
  e->ops = copy;
  e->nops = nops;
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Finishing the graph                                               */

/* The source of an undelayed edge into node from a node still left
   by Kahn's algorithm (indeg > 0), or -1. */
static int left_source(const ebl_model *m, const int *indeg, int node) {
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    if (ed->delay == 0 && ed->dst == node && indeg[ed->src] > 0)
      return ed->src;
  }
  return -1;
}

/* Names a cycle among the nodes left by Kahn's algorithm: walking back
   along undelayed edges from any of them must come round. */
static ebl_status report_cycle(const ebl_model *m, const int *indeg) {
  int n = m->nnodes, node = 0, len = 0;
  int *seen = calloc((size_t)n, sizeof *seen);
  int *path = calloc((size_t)n + 1, sizeof *path);
  if (seen == NULL || path == NULL) {
    free(seen);
    free(path);
    return ebl_fail(EBL_EARG, "model: a cycle of edges without delay");
  }
  while (indeg[node] <= 0)
    node++;
  while (!seen[node]) {
    seen[node] = 1;
    node = left_source(m, indeg, node);
  }
  int first = node;
  do {
    path[len++] = node;
    node = left_source(m, indeg, node);
  } while (node != first && len < n);
  char text[512];
  size_t used = 0;
  for (int i = len - 1; i >= 0 && used < sizeof text; i--)
    used += (size_t)snprintf(text + used, sizeof text - used, "%s -> ",
                             m->nodes[path[i]].name);
  if (used < sizeof text)
    snprintf(text + used, sizeof text - used, "%s",
             m->nodes[path[len - 1]].name);
  free(seen);
  free(path);
  return ebl_fail(EBL_EARG, "model: cycle of edges without delay: %s "
                  "(give a recurrent edge delay=1)", text);
}

/* Orders nodes so that every undelayed edge goes forward. */
static ebl_status node_order(const ebl_model *m, int *order) {
  int n = m->nnodes, done = 0;
  int *indeg = calloc((size_t)n, sizeof *indeg);
  if (indeg == NULL)
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  for (int e = 0; e < m->nedges; e++)
    if (m->edges[e].delay == 0)
      indeg[m->edges[e].dst]++;
  for (int pass = 0; pass < n && done < n; pass++)
    for (int i = 0; i < n; i++) {
      if (indeg[i] != 0)
        continue;
      order[done++] = i;
      indeg[i] = -1;
      for (int e = 0; e < m->nedges; e++)
        if (m->edges[e].delay == 0 && m->edges[e].src == i)
          indeg[m->edges[e].dst]--;
    }
  ebl_status s = done == n ? EBL_OK : report_cycle(m, indeg);
  free(indeg);
  return s;
}

/* A node's rho: its own function, else the last activation of the
   first non-recurrent edge into it. */
static void infer_rho(ebl_model *m, ebl_node *node, int index) {
  node->has_rho = node->has_act;
  node->rho = node->act;
  node->rho_grad = node->act_grad;
  node->rho_param = node->act_param;
  for (int e = 0; e < m->nedges && !node->has_rho; e++) {
    const ebl_edge *ed = &m->edges[e];
    if (ed->dst != index || ed->kind == EBL_EDGE_RECURRENT ||
        ed->nops == 0 || ed->ops[ed->nops - 1].kind != EBL_OP_ACTIVATION)
      continue;
    const ebl_op *a = &ed->ops[ed->nops - 1];
    node->has_rho = 1;
    node->rho = a->act;
    node->rho_grad = a->act_grad;
    node->rho_param = a->act_param;
  }
}

/* The feedback chain of an edge: its transpose, then src's rho. */
static ebl_status build_feedback(ebl_model *m, ebl_edge *e) {
  int sends = e->kind != EBL_EDGE_SKIP &&
              (m->cfg.fb_from_output || e->dst != m->output) &&
              (m->cfg.cb_weight != 0.0 || e->src != m->input);
  if (!sends)
    return EBL_OK;
  e->fb = malloc(sizeof *e->fb * (size_t)(e->nops + 1));
  if (e->fb == NULL)
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  EBL_TRY(ebl_chain_transpose(e->ops, e->nops, e->fb, &e->nfb));
  const ebl_node *src = &m->nodes[e->src];
  if (src->has_rho) {
    ebl_op *a = &e->fb[e->nfb++];
    memset(a, 0, sizeof *a);
    a->kind = EBL_OP_ACTIVATION;
    a->weight = a->bias = -1;
    a->act = src->rho;
    a->act_grad = src->rho_grad;
    a->act_param = src->rho_param;
    a->in_ndim = a->out_ndim = src->ndim;
    memcpy(a->in_shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    memcpy(a->out_shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
  }
  if (e->nfb == 0) {
    /* An identity edge: its feedback is the identity too. */
    ebl_op *id = &e->fb[e->nfb++];
    memset(id, 0, sizeof *id);
    id->kind = EBL_OP_IDENTITY;
    id->weight = id->bias = -1;
    id->in_ndim = id->out_ndim = src->ndim;
    memcpy(id->in_shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
    memcpy(id->out_shape, src->shape, sizeof(int64_t) * (size_t)src->ndim);
  }
  return EBL_OK;
}

/* EP needs symmetric interactions: every chain a linear map. */
static ebl_status check_ep(const ebl_model *m) {
  if (m->T != 1)
    return ebl_fail(EBL_EARG, "model: energy 'ep' runs without time "
                    "steps (time_steps = 1), got %d", m->T);
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int i = 0; i < ed->nops; i++) {
      ebl_op_kind k = ed->ops[i].kind;
      if (k == EBL_OP_ACTIVATION || k == EBL_OP_MAX_POOL)
        return ebl_fail(EBL_EARG, "edge %s -> %s: energy 'ep' needs "
                        "linear edges (activations belong to nodes)",
                        m->nodes[ed->src].name, m->nodes[ed->dst].name);
    }
    if (ed->delay != 0)
      return ebl_fail(EBL_EARG, "edge %s -> %s: energy 'ep' takes no "
                      "delays", m->nodes[ed->src].name,
                      m->nodes[ed->dst].name);
  }
  return EBL_OK;
}

ebl_status ebl_model_finish(ebl_model *m) {
  if (m->finished)
    return EBL_OK;
  if (m->input < 0 || m->output < 0)
    return ebl_fail(EBL_EARG, "model: the graph needs a node with "
                    "role='input' and one with role='output'");
  if (m->cfg.energy == EBL_ENERGY_EP)
    EBL_TRY(check_ep(m));
  int *nodes = malloc(sizeof *nodes * (size_t)m->nnodes);
  m->order = malloc(sizeof *m->order * (size_t)(m->nnodes * m->T));
  if (nodes == NULL || m->order == NULL) {
    free(nodes);
    return ebl_fail(EBL_ENOMEM, "model: out of memory");
  }
  ebl_status s = node_order(m, nodes);
  for (int t = 0; s == EBL_OK && t < m->T; t++)
    for (int i = 0; i < m->nnodes; i++)
      m->order[t * m->nnodes + i] = slot_of(m, nodes[i], t);
  free(nodes);
  EBL_TRY(s);
  for (int i = 0; i < m->nnodes; i++)
    infer_rho(m, &m->nodes[i], i);
  int bipc = m->cfg.energy == EBL_ENERGY_BIPC ||
             m->cfg.energy == EBL_ENERGY_BIPC_SQ;
  for (int e = 0; bipc && e < m->nedges; e++)
    EBL_TRY(build_feedback(m, &m->edges[e]));
  m->finished = 1;
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Buffers of a batch size                                           */

static void release_all(ebl_tensor *a, int n) {
  for (int i = 0; a != NULL && i < n; i++)
    ebl_tensor_release(&a[i]);
  free(a);
}

static void free_batch(ebl_model *m) {
  int slots = m->nnodes * m->T;
  ebl_tensor **arrays[] = {&m->v, &m->pre, &m->pred, &m->err, &m->fb,
                           &m->err_b, &m->sig, &m->sig_b, &m->grad,
                           &m->tmp, &m->mom1, &m->mom2, &m->v_free};
  for (size_t i = 0; i < sizeof arrays / sizeof *arrays; i++) {
    release_all(*arrays[i], slots);
    *arrays[i] = NULL;
  }
  release_all(m->ep_grad, m->params.count);
  m->ep_grad = NULL;
  for (int i = 0; i < m->nedges * m->T; i++) {
    if (m->fwd != NULL) ebl_chain_buf_free(&m->fwd[i]);
    if (m->fbk != NULL) ebl_chain_buf_free(&m->fbk[i]);
  }
  free(m->fwd);
  free(m->fbk);
  free(m->has_f);
  free(m->k_b);
  m->fwd = m->fbk = NULL;
  m->has_f = m->k_b = NULL;
  ebl_tensor_release(&m->x);
  ebl_tensor_release(&m->target);
  ebl_tensor_release(&m->cost_grad);
  ebl_tensor_release(&m->scalar);
  ebl_ledger_free(m);
  m->batch = 0;
  m->states_ready = m->inputs_cached = m->grads_ready = 0;
}

/* A zero tensor of shape (n, node shape). */
static ebl_status node_tensor(const ebl_model *m, ebl_tensor *res,
                              const ebl_node *node) {
  int64_t shape[EBL_MAX_DIMS];
  shape[0] = m->batch;
  memcpy(shape + 1, node->shape, sizeof(int64_t) * (size_t)node->ndim);
  return ebl_tensor_zeros(res, m->dtype, node->ndim + 1, shape, m->device);
}

/* Per-slot tensors; the input's slots are views of x. */
static ebl_status alloc_slots(ebl_model *m) {
  ebl_tensor **arrays[] = {&m->v, &m->pre, &m->pred, &m->err, &m->fb,
                           &m->err_b, &m->sig, &m->sig_b, &m->grad,
                           &m->tmp, &m->mom1, &m->mom2, &m->v_free};
  int slots = m->nnodes * m->T;
  for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
    *arrays[a] = calloc((size_t)slots, sizeof(ebl_tensor));
    if (*arrays[a] == NULL)
      return ebl_fail(EBL_ENOMEM, "model: out of memory for states");
  }
  EBL_TRY(node_tensor(m, &m->x, &m->nodes[m->input]));
  for (int i = 0; i < m->nnodes; i++)
    for (int t = 0; t < m->T; t++) {
      int s = slot_of(m, i, t);
      for (size_t a = 0; a < sizeof arrays / sizeof *arrays; a++) {
        if (a == 0 && i == m->input)
          ebl_tensor_view(&(*arrays[a])[s], &m->x);
        else
          EBL_TRY(node_tensor(m, &(*arrays[a])[s], &m->nodes[i]));
      }
    }
  return EBL_OK;
}

/* Chain buffers: forward chains read v(src, t - delay); feedback chains
   read v(dst, t + delay) and predict v(src, t). */
static ebl_status alloc_chains(ebl_model *m) {
  int n = m->nedges * m->T;
  m->fwd = calloc((size_t)n + 1, sizeof *m->fwd);
  m->fbk = calloc((size_t)n + 1, sizeof *m->fbk);
  if (m->fwd == NULL || m->fbk == NULL)
    return ebl_fail(EBL_ENOMEM, "model: out of memory for chains");
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int t = 0; t < m->T; t++) {
      int src = slot_of(m, ed->src, t - ed->delay);
      /* EP's chains read rho(v), kept in pre; the input enters as x. */
      int rho = m->cfg.energy == EBL_ENERGY_EP && ed->src != m->input;
      if (t - ed->delay >= 0)
        EBL_TRY(ebl_chain_buf_init(&m->fwd[e * m->T + t], ed->ops, ed->nops,
                               rho ? &m->pre[src] : &m->v[src]));
      if (ed->nfb > 0 && t + ed->delay < m->T)
        EBL_TRY(ebl_chain_buf_init(&m->fbk[e * m->T + t], ed->fb, ed->nfb,
                               &m->v[slot_of(m, ed->dst, t + ed->delay)]));
    }
  }
  return EBL_OK;
}

/* Which slots have forward predictions and how many feedback terms. */
static void count_terms(ebl_model *m) {
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int t = 0; t < m->T; t++) {
      if (t - ed->delay >= 0)
        m->has_f[slot_of(m, ed->dst, t)]++;
      if (ed->nfb > 0 && t + ed->delay < m->T)
        m->k_b[slot_of(m, ed->src, t)]++;
    }
  }
}

/* Where a slot has one forward term, its sum is that chain's output:
   pre becomes a view of it, and PC's signal is its error itself. */
static ebl_status share_buffers(ebl_model *m) {
  if (m->cfg.energy == EBL_ENERGY_EP)
    return EBL_OK;
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int t = ed->delay; t < m->T; t++) {
      int s = slot_of(m, ed->dst, t);
      if (m->has_f[s] != 1)
        continue;
      ebl_tensor_release(&m->pre[s]);
      ebl_tensor_view(&m->pre[s], &m->fwd[e * m->T + t].act[ed->nops]);
    }
  }
  for (int s = 0; m->cfg.energy == EBL_ENERGY_PC &&
                  s < m->nnodes * m->T; s++) {
    ebl_tensor_release(&m->sig[s]);
    ebl_tensor_view(&m->sig[s], &m->err[s]);
  }
  return EBL_OK;
}

ebl_status ebl_model_alloc(ebl_model *m, int64_t n, ebl_dtype dtype,
                           ebl_device device) {
  if (m->batch == n && m->dtype == dtype && m->device == device)
    return EBL_OK;
  free_batch(m);
  m->batch = n;
  m->dtype = dtype;
  m->device = device;
  int slots = m->nnodes * m->T;
  m->has_f = calloc((size_t)slots, sizeof *m->has_f);
  m->k_b = calloc((size_t)slots, sizeof *m->k_b);
  m->ep_grad = calloc((size_t)m->params.count + 1, sizeof *m->ep_grad);
  ebl_status s = m->has_f && m->k_b && m->ep_grad ? EBL_OK
    : ebl_fail(EBL_ENOMEM, "model: out of memory");
  if (s == EBL_OK)
    s = alloc_slots(m);
  if (s == EBL_OK)
    s = alloc_chains(m);
  if (s == EBL_OK)
    s = node_tensor(m, &m->cost_grad, &m->nodes[m->output]);
  if (s == EBL_OK)
    s = ebl_tensor_zeros(&m->scalar, dtype, 0, NULL, device);
  if (s == EBL_OK)
    s = ebl_ledger_alloc(m);
  for (int i = 0; s == EBL_OK && i < m->params.count; i++)
    s = ebl_tensor_zeros_like(&m->ep_grad[i], &m->params.value[i]);
  if (s != EBL_OK) {
    free_batch(m);
    return s;
  }
  count_terms(m);
  return share_buffers(m);
}

/* Checks that t is (n, node shape); what names the tensor. */
static ebl_status check_batch(const ebl_tensor *t,
                              const ebl_node *node, const char *what) {
  char a[64], b[64];
  int ok = t->ndim == node->ndim + 1 && t->shape[0] >= 1 &&
           memcmp(t->shape + 1, node->shape,
                  sizeof(int64_t) * (size_t)node->ndim) == 0;
  if (!ok)
    return ebl_fail(EBL_EARG, "model: %s has shape %s, node '%s' takes "
                    "(batch)x%s", what, ebl_format_shape(t->ndim, t->shape, a,
                    sizeof a), node->name,
                    ebl_format_shape(node->ndim, node->shape, b, sizeof b));
  return EBL_OK;
}

/* A contiguous copy of t in dtype, owned by the model. */
static ebl_status dense_copy(ebl_tensor *res, const ebl_tensor *t,
                             ebl_dtype dtype) {
  ebl_tensor cast = {0};
  EBL_TRY(ebl_to_dtype(&cast, t, dtype));
  ebl_status s = ebl_tensor_clone(res, &cast);
  ebl_tensor_release(&cast);
  return s;
}

/* Labels (n) of an integer dtype, or values shaped like the output. */
static ebl_status set_target(ebl_model *m, const ebl_tensor *target) {
  ebl_tensor_release(&m->target);
  m->have_target = 0;
  if (target == NULL)
    return EBL_OK;
  const ebl_node *out = &m->nodes[m->output];
  if (!ebl_dtype_is_float(target->dtype)) {
    char got[64];
    if (target->ndim != 1 || target->shape[0] != m->batch)
      return ebl_fail(EBL_EARG, "model: labels must have shape %lld (one "
                      "per sample), got %s", (long long)m->batch,
                      ebl_format_shape(target->ndim, target->shape, got,
                                       sizeof got));
    if (m->cfg.loss != EBL_LOSS_CE && !m->cfg.clamp_output)
      return ebl_fail(EBL_EARG, "model: integer labels need loss 'ce'; "
                      "give one-hot targets for 'mse'");
    EBL_TRY(dense_copy(&m->target, target, EBL_I32));
    double lo, hi;
    int k = (int)out->shape[0];
    EBL_TRY(ebl_reduce_all(EBL_MIN, &m->target, 0.0, &lo));
    EBL_TRY(ebl_reduce_all(EBL_MAX, &m->target, 0.0, &hi));
    if (out->ndim != 1 || lo < 0 || hi >= k)
      return ebl_fail(EBL_EARG, "model: label %g out of range 0..%d for "
                      "output '%s'", lo < 0 ? lo : hi, k - 1, out->name);
  } else {
    EBL_TRY(check_batch(target, out, "target"));
    if (target->shape[0] != m->batch)
      return ebl_fail(EBL_EARG, "model: target has %lld rows, x has %lld",
                      (long long)target->shape[0], (long long)m->batch);
    EBL_TRY(dense_copy(&m->target, target, m->dtype));
  }
  m->have_target = 1;
  return EBL_OK;
}

ebl_status ebl_model_set_batch(ebl_model *m, const ebl_tensor *x,
                               const ebl_tensor *target) {
  if (!m->finished)
    EBL_TRY(ebl_model_finish(m));
  EBL_TRY(check_batch(x, &m->nodes[m->input], "x"));
  ebl_dtype dtype = m->params.count > 0 ? m->params.value[0].dtype
                  : ebl_dtype_is_float(x->dtype) ? x->dtype : EBL_F32;
  EBL_TRY(ebl_model_alloc(m, x->shape[0], dtype, ebl_tensor_device(x)));
  EBL_TRY(ebl_copy(&m->x, x));
  m->inputs_cached = 0;
  m->states_ready = 0;
  m->grads_ready = 0;
  m->preds_fresh = 0;
  return set_target(m, target);
}

/* ---------------------------------------------------------------- */
/* Access and release                                                */

int ebl_model_node_count(const ebl_model *m) { return m->nnodes; }
const ebl_node *ebl_model_node(const ebl_model *m, int i) {
  return &m->nodes[i];
}
int ebl_model_edge_count(const ebl_model *m) { return m->nedges; }
const ebl_edge *ebl_model_edge(const ebl_model *m, int i) {
  return &m->edges[i];
}
const ebl_model_config *ebl_model_config_of(const ebl_model *m) {
  return &m->cfg;
}
ebl_params *ebl_model_params(ebl_model *m) { return &m->params; }
int64_t ebl_model_batch(const ebl_model *m) { return m->batch; }

static const ebl_tensor *slot_tensor(const ebl_model *m,
                                     const ebl_tensor *a, int i, int t) {
  if (a == NULL || i < 0 || i >= m->nnodes || t < 0 || t >= m->T)
    return NULL;
  return &a[slot_of(m, i, t)];
}

const ebl_tensor *ebl_model_state(const ebl_model *m, int i, int t) {
  return slot_tensor(m, m->v, i, t);
}
const ebl_tensor *ebl_model_error(const ebl_model *m, int i, int t) {
  return slot_tensor(m, m->err, i, t);
}
const ebl_tensor *ebl_model_fb_error(const ebl_model *m, int i, int t) {
  return slot_tensor(m, m->err_b, i, t);
}
const ebl_tensor *ebl_model_state_grad(const ebl_model *m, int i, int t) {
  return slot_tensor(m, m->grad, i, t);
}

const double *ebl_model_node_energy_trace(const ebl_model *m, int *rows) {
  *rows = m->record ? m->rows : 0;
  return m->node_energy;
}
const double *ebl_model_node_grad_trace(const ebl_model *m, int *rows) {
  *rows = m->record ? m->rows : 0;
  return m->node_grad;
}

void ebl_model_free(ebl_model *m) {
  if (m == NULL)
    return;
  free_batch(m);
  for (int e = 0; e < m->nedges; e++) {
    free(m->edges[e].ops);
    free(m->edges[e].fb);
  }
  for (int i = 0; i < m->params.count; i++) {
    ebl_tensor_release(&m->params.value[i]);
    ebl_tensor_release(&m->params.grad[i]);
    ebl_tensor_release(&m->params.scratch[i]);
  }
  free(m->params.value);
  free(m->params.grad);
  free(m->params.scratch);
  free(m->edges);
  free(m->nodes);
  free(m->order);
  free(m->trace);
  free(m->node_energy);
  free(m->node_grad);
  free(m);
}

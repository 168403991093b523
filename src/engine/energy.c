/* The energies and their gradients at the current states: predictions
   and errors (PC, BiPC eq. 10 and eq. 9), the Hopfield-like energy of
   EP, dF/dv for every free state, dF/dtheta for every parameter, and
   backprop through the same chains. docs/ENERGIES.md has the equations;
   per sample, F = 1/2 sum ||r||^2 + beta C, reported as a batch mean. */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "engine/internal.h"

static int is_bipc(const ebl_model *m) {
  return m->cfg.energy == EBL_ENERGY_BIPC ||
         m->cfg.energy == EBL_ENERGY_BIPC_SQ;
}

/* coef * ||t||^2 as a term of the energy, for node. */
static ebl_status add_sumsq(ebl_model *m, const ebl_tensor *t, int node,
                            double coef) {
  return ebl_ledger_reduce(m, EBL_NORM, t, node, coef);
}

/* A node's state is free unless it is the input or a clamped output. */
int ebl_energy_is_free(const ebl_model *m, int node) {
  if (node == m->input)
    return 0;
  return !(node == m->output && m->cfg.clamp_output && m->have_target &&
           m->T == 1);
}

/* Free at slot (node, t): clamping holds the output at t = T only. */
static int slot_free(const ebl_model *m, int node, int t) {
  if (node == m->input)
    return 0;
  return !(node == m->output && m->cfg.clamp_output && m->have_target &&
           t == m->T - 1);
}

static ebl_chain_buf *fwd_buf(ebl_model *m, int e, int t) {
  return &m->fwd[e * m->T + t];
}

/* ---------------------------------------------------------------- */
/* Predictions                                                       */

/* Runs the forward chains into slot (node, t) and sums them into pre;
   pred = node function (pre) when the node has one. */
static ebl_status predict_slot(ebl_model *m, int node, int t,
                               int skip_cached) {
  int s = slot_of(m, node, t), terms = 0;
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    if (ed->dst != node || t - ed->delay < 0)
      continue;
    ebl_chain_buf *b = fwd_buf(m, e, t);
    if (!(skip_cached && ed->src == m->input))
      EBL_TRY(ebl_chain_forward(ed->ops, ed->nops, b, &m->params));
    const ebl_tensor *out = &b->act[ed->nops];
    if (m->has_f[s] == 1 && m->cfg.energy != EBL_ENERGY_EP)
      terms++;              /* pre is a view of this output */
    else
      EBL_TRY(terms++ == 0 ? ebl_copy(&m->pre[s], out)
                       : ebl_binary(EBL_ADD, &m->pre[s], &m->pre[s], out));
  }
  const ebl_node *n = &m->nodes[node];
  if (terms > 0 && n->has_act)
    EBL_TRY(ebl_unary(n->act, &m->pred[s], &m->pre[s], n->act_param, 0.0));
  return EBL_OK;
}

static const ebl_tensor *prediction(const ebl_model *m, int s, int node) {
  return m->nodes[node].has_act ? &m->pred[s] : &m->pre[s];
}

ebl_status ebl_energy_forward_sweep(ebl_model *m) {
  int slots = m->nnodes * m->T;
  for (int k = 0; k < slots; k++) {
    int s = m->order[k], node = s / m->T, t = s % m->T;
    if (node == m->input)
      continue;
    EBL_TRY(predict_slot(m, node, t, 0));
    if (!m->has_f[s])
      continue;
    if (!slot_free(m, node, t))
      EBL_TRY(ebl_copy(&m->v[s], &m->target));
    else
      EBL_TRY(ebl_copy(&m->v[s], prediction(m, s, node)));
  }
  m->states_ready = 1;
  return EBL_OK;
}

/* Feedback predictions v_b (the mean of the terms) and errors e_b. */
static ebl_status feedback(ebl_model *m) {
  int slots = m->nnodes * m->T;
  for (int s = 0; s < slots; s++)
    if (m->k_b[s] > 0)
      EBL_TRY(ebl_fill(&m->fb[s], 0.0));
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int t = 0; ed->nfb > 0 && t + ed->delay < m->T; t++) {
      ebl_chain_buf *b = &m->fbk[e * m->T + t];
      int s = slot_of(m, ed->src, t);
      EBL_TRY(ebl_chain_forward(ed->fb, ed->nfb, b, &m->params));
      EBL_TRY(ebl_axpby(&m->fb[s], 1.0 / m->k_b[s], &b->act[ed->nfb], 1.0));
    }
  }
  for (int s = 0; s < slots; s++)
    if (m->k_b[s] > 0)
      EBL_TRY(ebl_binary(EBL_SUB, &m->err_b[s], &m->v[s], &m->fb[s]));
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* PC and BiPC: energy and error signals                             */

/* The output cost C (batch mean), weighted by coef in the energy, and
   cost_grad = per-sample dC/dv. The backend's kernel is called
   directly: the buffers are dense and the labels were checked once per
   batch (ebl_model_set_batch). */
static ebl_status output_cost(ebl_model *m, double coef) {
  const ebl_tensor *out = &m->v[slot_of(m, m->output, m->T - 1)];
  const ebl_backend *be;
  EBL_TRY(ebl_backend_of("model", out, &be));
  int n = (int)m->batch, k = (int)(ebl_tensor_numel(out) / m->batch);
  const void *x = ebl_tensor_data(out), *t = ebl_tensor_data(&m->target);
  void *g = ebl_tensor_data(&m->cost_grad);
  int labels = !ebl_dtype_is_float(m->target.dtype);
  double *cost;
  EBL_TRY(ebl_ledger_slot(m, -1, coef, 0, &cost));
  EBL_TRY(be->loss_into(m->cfg.loss == EBL_LOSS_CE, m->dtype, n, k, x,
                        labels ? t : NULL, labels ? NULL : t, g, cost));
  return ebl_binary_scalar(EBL_MUL, &m->cost_grad, &m->cost_grad,
                           (double)m->batch);
}

/* ---------------------------------------------------------------- */
/* Fused kernels of the backend, where it has them (the CPU fuses the */
/* prediction error, CUDA also BiPC's signals); the unfused steps     */
/* remain for the others. *done tells whether the kernel ran.         */

/* PC on a device whose backend fuses the prediction error: pc_eval
   leaves e_f = v - mu to fused_pred_error, which also gives its energy. */
static int pc_error_fused(const ebl_model *m) {
  const ebl_backend *be = ebl_backend_for(m->device);
  return m->cfg.energy == EBL_ENERGY_PC && be != NULL &&
         be->pred_error != NULL;
}

/* PC: e_f = v - mu (sig is a view of it) and coef ||e_f||^2 as a term,
   in one pass. */
static ebl_status fused_pred_error(ebl_model *m, int s, int node,
                                   double coef, int *done) {
  *done = pc_error_fused(m) && m->has_f[s];
  if (!*done)
    return EBL_OK;
  double *sumsq;
  EBL_TRY(ebl_ledger_slot(m, node, coef, 0, &sumsq));
  return ebl_backend_for(m->device)->pred_error(
    &m->err[s], &m->v[s], prediction(m, s, node), sumsq);
}

/* BiPC: sig = e_f + lambda e_b, sig_b = lambda sig, and
   coef ||sig||^2 as a term. */
static ebl_status fused_bipc_signals(ebl_model *m, int s, int node,
                                     double coef, int *done) {
  const ebl_backend *be = ebl_backend_for(m->device);
  *done = be != NULL && be->bipc_signals != NULL;
  if (!*done)
    return EBL_OK;
  double *sumsq;
  EBL_TRY(ebl_ledger_slot(m, node, coef, 0, &sumsq));
  return be->bipc_signals(&m->sig[s], &m->sig_b[s], &m->err[s],
                          &m->err_b[s], m->cfg.fb_weight, sumsq);
}

/* The input's signal: its rebuild error, weighted by cb. */
static ebl_status input_signals(ebl_model *m, int s, int node) {
  double cb = m->cfg.cb_weight;
  if (m->k_b[s] == 0)
    return EBL_OK;
  EBL_TRY(add_sumsq(m, &m->err_b[s], node, 0.5 * cb / (double)m->batch));
  return ebl_binary_scalar(EBL_MUL, &m->sig_b[s], &m->err_b[s], cb);
}

/* Signals of one slot: sig = dF/de_f, sig_b = dF/de_b, and its energy
   terms (per-sample sums, as a batch mean). */
static ebl_status slot_signals(ebl_model *m, int s, int node) {
  double lambda = m->cfg.fb_weight, half = 0.5 / (double)m->batch;
  int k = m->k_b[s];
  if (node == m->input)
    return input_signals(m, s, node);
  int bipc = k > 0 && m->cfg.energy == EBL_ENERGY_BIPC, fused;
  EBL_TRY(bipc ? fused_bipc_signals(m, s, node, half, &fused)
           : fused_pred_error(m, s, node, half, &fused));
  if (!fused && m->sig[s].storage != m->err[s].storage)
    EBL_TRY(ebl_copy(&m->sig[s], &m->err[s]));
  if (bipc && !fused) {
    EBL_TRY(ebl_axpby(&m->sig[s], lambda, &m->err_b[s], 1.0));
    EBL_TRY(ebl_binary_scalar(EBL_MUL, &m->sig_b[s], &m->sig[s], lambda));
  }
  if (!fused)
    EBL_TRY(add_sumsq(m, &m->sig[s], node, half));
  if (k > 0 && !bipc) {
    EBL_TRY(ebl_binary_scalar(EBL_MUL, &m->sig_b[s], &m->err_b[s],
                          lambda * lambda));
    EBL_TRY(add_sumsq(m, &m->err_b[s], node, half * lambda * lambda));
  }
  return EBL_OK;
}

static ebl_status pc_eval(ebl_model *m, double beta) {
  int slots = m->nnodes * m->T;
  for (int k = 0; k < slots; k++) {
    int s = m->order[k], node = s / m->T, t = s % m->T;
    if (node == m->input)
      continue;
    EBL_TRY(predict_slot(m, node, t, m->inputs_cached));
    if (m->has_f[s] && !pc_error_fused(m))
      EBL_TRY(ebl_binary(EBL_SUB, &m->err[s], &m->v[s],
                     prediction(m, s, node)));
  }
  if (is_bipc(m))
    EBL_TRY(feedback(m));
  for (int s = 0; s < slots; s++)
    EBL_TRY(slot_signals(m, s, s / m->T));
  if (m->have_target && beta != 0.0 && !m->cfg.clamp_output)
    EBL_TRY(output_cost(m, beta));
  m->preds_fresh = 1;
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* PC and BiPC: gradients                                            */

/* The cotangent of the chains' summed output at slot s: the signal,
   times the node function's derivative when the node has one. It is
   written over pred, which the errors no longer need. Where the backend
   has act_vjp and pred is fresh, tanh's and sigmoid's derivatives come
   from pred itself, in one pass. */
static const ebl_tensor *chain_cotangent(ebl_model *m, int s, int node,
                                         const ebl_tensor *signal,
                                         int fresh) {
  const ebl_node *n = &m->nodes[node];
  if (!n->has_act)
    return signal;
  if (ebl_act_vjp(n->act, n->act_grad, n->act_param, &m->pred[s],
                  &m->pre[s], fresh ? &m->pred[s] : NULL, signal) != EBL_OK)
    return NULL;
  return &m->pred[s];
}

/* grad(slot) -= scale * VJP of a chain, when the slot is free. */
static ebl_status pull_back(ebl_model *m, const ebl_op *ops, int nops,
                            ebl_chain_buf *b, const ebl_tensor *dy,
                            int node, int t, double scale,
                            double grad_scale) {
  int s = slot_of(m, node, t);
  int free_state = slot_free(m, node, t) && scale != 0.0;
  if (free_state && ebl_chain_adds_in_place(ops, nops))
    return ebl_chain_vjp_add(ops, nops, b, &m->params, dy, &m->grad[s],
                             -scale, grad_scale);
  const ebl_tensor *dx = free_state ? &m->tmp[s] : NULL;
  EBL_TRY(ebl_chain_vjp(ops, nops, b, &m->params, dy, dx, grad_scale));
  if (free_state)
    EBL_TRY(ebl_axpby(&m->grad[s], -scale, &m->tmp[s], 1.0));
  return EBL_OK;
}

/* Through every chain: states (state_scale 1) and/or parameters
   (param_scale: the factor of the batch mean). */
static ebl_status pc_backward(ebl_model *m, double state_scale,
                              double param_scale) {
  int slots = m->nnodes * m->T, fresh = m->preds_fresh;
  m->preds_fresh = 0;         /* the cotangents go over pred */
  for (int s = 0; s < slots; s++) {
    int node = s / m->T;
    if (!m->has_f[s])
      continue;
    const ebl_tensor *dy = chain_cotangent(m, s, node, &m->sig[s], fresh);
    if (dy == NULL)
      return ebl_fail(EBL_EARG, "engine: %s", ebl_error());
    for (int e = 0; e < m->nedges; e++) {
      const ebl_edge *ed = &m->edges[e];
      int t = s % m->T;
      if (ed->dst != node || t - ed->delay < 0)
        continue;
      EBL_TRY(pull_back(m, ed->ops, ed->nops, fwd_buf(m, e, t), dy, ed->src,
                    t - ed->delay, state_scale, -param_scale));
    }
  }
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    for (int t = 0; ed->nfb > 0 && t + ed->delay < m->T; t++) {
      int s = slot_of(m, ed->src, t);
      double share = 1.0 / m->k_b[s];
      double learn = m->cfg.fb_learns ? param_scale * share : 0.0;
      EBL_TRY(pull_back(m, ed->fb, ed->nfb, &m->fbk[e * m->T + t],
                    &m->sig_b[s], ed->dst, t + ed->delay,
                    state_scale * share, -learn));
    }
  }
  return EBL_OK;
}

/* dF/dv of every free slot, from the signals of the last eval. */
static ebl_status pc_state_grads(ebl_model *m, double beta) {
  int slots = m->nnodes * m->T;
  for (int s = 0; s < slots; s++) {
    int node = s / m->T;
    if (!slot_free(m, node, s % m->T))
      continue;
    EBL_TRY(m->has_f[s] ? ebl_copy(&m->grad[s], &m->sig[s])
                    : ebl_fill(&m->grad[s], 0.0));
    if (m->k_b[s] > 0)
      EBL_TRY(ebl_binary(EBL_ADD, &m->grad[s], &m->grad[s], &m->sig_b[s]));
  }
  if (m->have_target && beta != 0.0 && !m->cfg.clamp_output) {
    int s = slot_of(m, m->output, m->T - 1);
    EBL_TRY(ebl_axpby(&m->grad[s], beta, &m->cost_grad, 1.0));
  }
  return pc_backward(m, 1.0, 0.0);
}

static ebl_status zero_param_grads(ebl_model *m) {
  for (int i = 0; i < m->params.count; i++)
    EBL_TRY(ebl_fill(&m->params.grad[i], 0.0));
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* EP: E = 1/2 sum ||v||^2 - sum_e <rho(v_dst), f_e(rho(v_src))>       */
/* The chains read rho(v) from pre (the input enters as x itself).    */

static const ebl_tensor *ep_rho(ebl_model *m, int node) {
  int s = slot_of(m, node, 0);
  return node == m->input ? &m->v[s] : &m->pre[s];
}

/* rho(v) into pre and rho'(v) into pred, for every state. */
static ebl_status ep_activate(ebl_model *m) {
  for (int i = 0; i < m->nnodes; i++) {
    const ebl_node *n = &m->nodes[i];
    int s = slot_of(m, i, 0);
    if (i == m->input)
      continue;
    ebl_unary_op rho = n->has_act ? n->act : EBL_SIGMOID;
    ebl_unary_op rho_grad = n->has_act ? n->act_grad : EBL_SIGMOID_GRAD;
    EBL_TRY(ebl_unary(rho, &m->pre[s], &m->v[s], n->act_param, 0.0));
    EBL_TRY(ebl_unary(rho_grad, &m->pred[s], &m->v[s], n->act_param, 0.0));
  }
  return EBL_OK;
}

static ebl_status ep_eval(ebl_model *m, double beta) {
  double inv = 1.0 / (double)m->batch;
  EBL_TRY(ep_activate(m));
  for (int i = 0; i < m->nnodes; i++)
    if (i != m->input)
      EBL_TRY(add_sumsq(m, &m->v[slot_of(m, i, 0)], i, 0.5 * inv));
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    ebl_chain_buf *b = fwd_buf(m, e, 0);
    int d = slot_of(m, ed->dst, 0);
    EBL_TRY(ebl_chain_forward(ed->ops, ed->nops, b, &m->params));
    EBL_TRY(ebl_binary(EBL_MUL, &m->tmp[d], ep_rho(m, ed->dst),
                   &b->act[ed->nops]));
    EBL_TRY(ebl_ledger_reduce(m, EBL_SUM, &m->tmp[d], ed->dst, -inv));
  }
  if (m->have_target && beta != 0.0)
    EBL_TRY(output_cost(m, beta));
  return EBL_OK;
}

/* dE/dv = v - rho'(v) * (sum of chains into v + sum of VJPs of chains
   out of v at rho(v_dst)), plus beta dC/dv at the output. */
static ebl_status ep_state_grads(ebl_model *m, double beta) {
  for (int i = 0; i < m->nnodes; i++)
    if (i != m->input)
      EBL_TRY(ebl_fill(&m->sig[slot_of(m, i, 0)], 0.0));
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    ebl_chain_buf *b = fwd_buf(m, e, 0);
    int d = slot_of(m, ed->dst, 0), s = slot_of(m, ed->src, 0);
    EBL_TRY(ebl_binary(EBL_ADD, &m->sig[d], &m->sig[d], &b->act[ed->nops]));
    if (ed->src == m->input)
      continue;
    EBL_TRY(ebl_chain_vjp(ed->ops, ed->nops, b, &m->params, ep_rho(m, ed->dst),
                      &m->tmp[s], 0.0));
    EBL_TRY(ebl_binary(EBL_ADD, &m->sig[s], &m->sig[s], &m->tmp[s]));
  }
  for (int i = 0; i < m->nnodes; i++) {
    int s = slot_of(m, i, 0);
    if (!slot_free(m, i, 0))
      continue;
    EBL_TRY(ebl_binary(EBL_MUL, &m->grad[s], &m->pred[s], &m->sig[s]));
    EBL_TRY(ebl_binary(EBL_SUB, &m->grad[s], &m->v[s], &m->grad[s]));
  }
  if (m->have_target && beta != 0.0) {
    int s = slot_of(m, m->output, 0);
    EBL_TRY(ebl_axpby(&m->grad[s], beta, &m->cost_grad, 1.0));
  }
  return EBL_OK;
}

/* dE/dtheta (batch mean) = -J_theta^T rho(v_dst) at rho(v_src). */
static ebl_status ep_param_grads(ebl_model *m) {
  EBL_TRY(zero_param_grads(m));
  for (int e = 0; e < m->nedges; e++) {
    const ebl_edge *ed = &m->edges[e];
    EBL_TRY(ebl_chain_vjp(ed->ops, ed->nops, fwd_buf(m, e, 0), &m->params,
                      ep_rho(m, ed->dst), NULL, -1.0 / (double)m->batch));
  }
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Backprop through the same chains, after a forward sweep           */

/* Signals are dC/dv here; the slots are visited in reverse order, so a
   slot's signal is complete before it flows on to its sources. */
ebl_status ebl_energy_backprop(ebl_model *m) {
  int slots = m->nnodes * m->T;
  m->preds_fresh = 0;
  for (int s = 0; s < slots; s++)
    EBL_TRY(ebl_fill(&m->sig[s], 0.0));
  EBL_TRY(zero_param_grads(m));
  ebl_ledger_begin(m);
  EBL_TRY(output_cost(m, 1.0));
  EBL_TRY(ebl_copy(&m->sig[slot_of(m, m->output, m->T - 1)], &m->cost_grad));
  for (int k = slots - 1; k >= 0; k--) {
    int s = m->order[k], node = s / m->T, t = s % m->T;
    if (node == m->input || !m->has_f[s])
      continue;
    const ebl_tensor *dy = chain_cotangent(m, s, node, &m->sig[s], 0);
    if (dy == NULL)
      return ebl_fail(EBL_EARG, "engine: %s", ebl_error());
    for (int e = 0; e < m->nedges; e++) {
      const ebl_edge *ed = &m->edges[e];
      if (ed->dst != node || t - ed->delay < 0)
        continue;
      int src = slot_of(m, ed->src, t - ed->delay);
      const ebl_tensor *dx = ed->src == m->input ? NULL : &m->tmp[src];
      EBL_TRY(ebl_chain_vjp(ed->ops, ed->nops, fwd_buf(m, e, t), &m->params,
                        dy, dx, 1.0 / (double)m->batch));
      if (dx != NULL)
        EBL_TRY(ebl_binary(EBL_ADD, &m->sig[src], &m->sig[src], dx));
    }
  }
  for (int s = 0; s < slots; s++)
    EBL_TRY(ebl_copy(&m->grad[s], &m->sig[s]));
  m->grads_ready = 1;
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Dispatch on the energy                                            */

/* Queues the evaluation of F into the ledger; with energy, reads it. */
ebl_status ebl_energy_eval(ebl_model *m, double beta, double *energy) {
  ebl_ledger_begin(m);
  switch (m->cfg.energy) {
  case EBL_ENERGY_EP:
    EBL_TRY(ep_eval(m, beta));
    break;
  case EBL_ENERGY_BP:
    if (m->have_target)
      EBL_TRY(output_cost(m, 1.0));
    break;
  default:
    EBL_TRY(pc_eval(m, beta));
  }
  return energy != NULL ? ebl_ledger_total(m, energy) : EBL_OK;
}

ebl_status ebl_energy_state_grads(ebl_model *m, double beta) {
  switch (m->cfg.energy) {
  case EBL_ENERGY_EP:
    return ep_state_grads(m, beta);
  case EBL_ENERGY_BP:
    return ebl_energy_backprop(m);
  default:
    return pc_state_grads(m, beta);
  }
}

ebl_status ebl_energy_param_grads(ebl_model *m, double beta) {
  EBL_TRY(ebl_energy_eval(m, beta, NULL));
  switch (m->cfg.energy) {
  case EBL_ENERGY_EP:
    return ep_param_grads(m);
  case EBL_ENERGY_BP:
    return ebl_energy_backprop(m);
  default:
    EBL_TRY(zero_param_grads(m));
    return pc_backward(m, 0.0, 1.0 / (double)m->batch);
  }
}

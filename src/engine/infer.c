/* Inference and gradients: the loop of a batch (state optimiser steps
   on dF/dv until the tolerance or the step limit), EP's three phases,
   the diagnostics recorded per iteration, and the public entry points.
   Nothing here allocates per iteration. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "engine/internal.h"
#include "interrupt.h"

/* ---------------------------------------------------------------- */
/* State optimisers                                                  */

/* Adam on one state: v -= lr * mhat / (sqrt(vhat) + eps). */
static ebl_status adam_slot(ebl_model *m, int s, const ebl_infer_opts *o) {
  const ebl_tensor *g = &m->grad[s], *m1 = &m->mom1[s];
  const ebl_tensor *m2 = &m->mom2[s], *tmp = &m->tmp[s];
  double c1 = 1.0 - pow(o->beta1, m->adam_t);
  double c2 = 1.0 - pow(o->beta2, m->adam_t);
  EBL_TRY(ebl_axpby(m1, 1.0 - o->beta1, g, o->beta1));
  EBL_TRY(ebl_binary(EBL_MUL, tmp, g, g));
  EBL_TRY(ebl_axpby(m2, 1.0 - o->beta2, tmp, o->beta2));
  EBL_TRY(ebl_binary_scalar(EBL_MUL, tmp, m2, 1.0 / c2));
  EBL_TRY(ebl_unary(EBL_SQRT, tmp, tmp, 0.0, 0.0));
  EBL_TRY(ebl_binary_scalar(EBL_ADD, tmp, tmp, o->eps));
  EBL_TRY(ebl_binary(EBL_DIV, tmp, m1, tmp));
  return ebl_axpby(&m->v[s], -o->state_lr / c1, tmp, 1.0);
}

/* The update of slot s in one pass on a device whose backend fuses it
   (CUDA); *done = 0 on the CPU, which keeps the steps above. */
static ebl_status fused_state_step(ebl_model *m, int s,
                                   const ebl_infer_opts *o, int *done) {
  const ebl_backend *be = ebl_backend_for(m->device);
  *done = be != NULL && be->state_step != NULL;
  if (!*done)
    return EBL_OK;
  ebl_state_step step = {
    o->optim == EBL_STATE_ADAM       ? EBL_STEP_ADAM
    : o->optim == EBL_STATE_MOMENTUM ? EBL_STEP_MOMENTUM : EBL_STEP_SGD,
    o->state_lr, o->momentum, o->beta1, o->beta2, o->eps, m->adam_t,
    m->watching ? ebl_watch_gate(m) : NULL};
  return be->state_step(&step, &m->v[s], &m->grad[s], &m->mom1[s],
                        &m->mom2[s]);
}

/* Whether the state optimiser moves slot s: not the input, not a
   clamped output. */
static int slot_moves(const ebl_model *m, int s) {
  int node = s / m->T;
  if (node == m->input)
    return 0;
  return !(node == m->output && m->cfg.clamp_output && m->have_target &&
           s % m->T == m->T - 1);
}

static ebl_status update_states(ebl_model *m, const ebl_infer_opts *o) {
  int slots = m->nnodes * m->T;
  m->adam_t++;
  for (int s = 0; s < slots; s++) {
    if (!slot_moves(m, s))
      continue;
    int fused;
    EBL_TRY(fused_state_step(m, s, o, &fused));
    if (fused)
      continue;
    switch (o->optim) {
    case EBL_STATE_SGD:
      EBL_TRY(ebl_axpby(&m->v[s], -o->state_lr, &m->grad[s], 1.0));
      break;
    case EBL_STATE_MOMENTUM:
      EBL_TRY(ebl_axpby(&m->mom1[s], 1.0, &m->grad[s], o->momentum));
      EBL_TRY(ebl_axpby(&m->v[s], -o->state_lr, &m->mom1[s], 1.0));
      break;
    case EBL_STATE_ADAM:
      EBL_TRY(adam_slot(m, s, o));
      break;
    }
  }
  return EBL_OK;
}

/* Backtracking: takes back the last SGD step, v += lr dF/dv (dF/dv is
   still the one the step used). */
static ebl_status undo_step(ebl_model *m, double lr) {
  for (int s = 0; s < m->nnodes * m->T; s++)
    if (slot_moves(m, s))
      EBL_TRY(ebl_axpby(&m->v[s], lr, &m->grad[s], 1.0));
  return EBL_OK;
}

static ebl_status reset_optimiser(ebl_model *m) {
  int slots = m->nnodes * m->T;
  m->adam_t = 0;
  for (int s = 0; s < slots; s++) {
    EBL_TRY(ebl_fill(&m->mom1[s], 0.0));
    EBL_TRY(ebl_fill(&m->mom2[s], 0.0));
  }
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Diagnostics                                                       */

/* Room for rows of per-node records (allocated per infer, not per
   iteration). */
static ebl_status prepare_record(ebl_model *m, int rows, int on) {
  m->record = on;
  m->rows = 0;
  if (rows > m->cap_rows) {
    double *tr = realloc(m->trace, sizeof *tr * (size_t)rows);
    if (tr == NULL)
      return ebl_fail(EBL_ENOMEM, "infer: out of memory for the trace");
    m->trace = tr;
    double *ne = realloc(m->node_energy,
                         sizeof *ne * (size_t)rows * (size_t)m->nnodes);
    double *ng = ne == NULL ? NULL : realloc(m->node_grad,
                         sizeof *ng * (size_t)rows * (size_t)m->nnodes);
    if (ne != NULL) m->node_energy = ne;
    if (ng == NULL)
      return ebl_fail(EBL_ENOMEM, "infer: out of memory for the trace");
    m->node_grad = ng;
    m->cap_rows = rows;
  }
  memset(m->node_energy, 0, sizeof(double) * (size_t)rows *
         (size_t)m->nnodes);
  memset(m->node_grad, 0, sizeof(double) * (size_t)rows *
         (size_t)m->nnodes);
  return EBL_OK;
}

/* |dF/dv| of each node: the batch's root mean square of per-sample
   norms, summed over time steps. */
static ebl_status record_grads(ebl_model *m) {
  if (!m->record || m->rows >= m->cap_rows)
    return EBL_OK;
  for (int s = 0; s < m->nnodes * m->T; s++) {
    int node = s / m->T;
    if (node == m->input)
      continue;
    double norm;
    EBL_TRY(ebl_reduce(EBL_NORM, &m->scalar, &m->grad[s], EBL_DIM_ALL, 0, 2.0));
    EBL_TRY(ebl_tensor_item(&m->scalar, &norm));
    m->node_grad[m->rows * m->nnodes + node] +=
      norm / sqrt((double)m->batch);
  }
  return EBL_OK;
}

/* Names the first node whose states hold a NaN or an Inf. */
static ebl_status numeric_failure(ebl_model *m, int step) {
  for (int s = 0; s < m->nnodes * m->T; s++) {
    double sum;
    if (ebl_reduce_all(EBL_SUM, &m->v[s], 0.0, &sum) == EBL_OK &&
        !isfinite(sum))
      return ebl_fail(EBL_ENUMERIC, "infer: the state of node '%s' "
                      "became NaN or Inf at step %d",
                      m->nodes[s / m->T].name, step);
  }
  return ebl_fail(EBL_ENUMERIC, "infer: the energy became NaN or Inf at "
                  "step %d", step);
}

/* Incremental PC: the parameters take an SGD step at every iteration,
   so the chains from the input are recomputed from then on. */
static ebl_status incremental_step(ebl_model *m, const ebl_infer_opts *o,
                                   double beta) {
  m->inputs_cached = 0;
  EBL_TRY(ebl_energy_param_grads(m, beta));
  for (int i = 0; i < m->params.count; i++)
    EBL_TRY(ebl_axpby(&m->params.value[i], -o->param_lr, &m->params.grad[i],
                  1.0));
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* The loop                                                          */

/* One eval, recorded as row m->rows of the diagnostics. */
static ebl_status eval_row(ebl_model *m, double beta, double *energy) {
  EBL_TRY(ebl_energy_eval(m, beta, energy));
  if (m->rows < m->cap_rows)
    m->trace[m->rows] = *energy;
  return EBL_OK;
}

/* One step of the loop: the states move along -dF/dv (and the weights
   too in incremental PC). */
static ebl_status relax_step(ebl_model *m, const ebl_infer_opts *o,
                             double beta) {
  if (ebl_interrupted())
    return ebl_fail(EBL_EINTR, "interrupted");
  EBL_TRY(ebl_energy_state_grads(m, beta));
  EBL_TRY(record_grads(m));
  EBL_TRY(update_states(m, o));
  if (o->param_lr > 0)
    EBL_TRY(incremental_step(m, o, beta));
  return EBL_OK;
}

/* The loop checked on the host: F is read after every step. With
   backtracking a step that raises F by more than its rounding (or makes
   it NaN) is taken back and the step size halved; such a step is not a
   convergence test. */
static ebl_status relax_host(ebl_model *m, const ebl_infer_opts *o,
                             double beta, double *energy, int *steps,
                             double *lr) {
  ebl_infer_opts step = *o;
  /* A rise within the rounding of F's terms is no reason to back off. */
  double noise = 64 * (m->dtype == EBL_F32 ? FLT_EPSILON : DBL_EPSILON);
  double f_prev;
  EBL_TRY(eval_row(m, beta, &f_prev));
  int k = 0;
  while (k < o->steps) {
    EBL_TRY(relax_step(m, &step, beta));
    k++;
    m->rows++;
    double f;
    EBL_TRY(eval_row(m, beta, &f));
    int undone = o->backtrack && !(f <= f_prev + noise * fabs(f_prev));
    if (undone) {
      EBL_TRY(undo_step(m, step.state_lr));
      step.state_lr *= 0.5;
      EBL_TRY(eval_row(m, beta, &f));
    }
    if (!isfinite(f))
      return numeric_failure(m, k);
    int converged = !undone && fabs(f - f_prev) <= o->tol * fabs(f_prev);
    f_prev = f;
    if (converged)
      break;
  }
  if (!isfinite(f_prev))
    return numeric_failure(m, k);
  *energy = f_prev;
  *steps = k;
  *lr = step.state_lr;
  return EBL_OK;
}

/* The loop checked on the device (ledger.c): the host queues steps and
   reads the watch every check_every steps. Steps queued after the one
   that ended the loop leave the states alone (the gate), so the result
   is the one the host's check gives. */
static ebl_status relax_device(ebl_model *m, const ebl_infer_opts *o,
                               double beta, double *energy, int *steps,
                               double *lr) {
  *lr = o->state_lr;
  int every = o->check_every > 0 ? o->check_every : 1, k = 0;
  int base = m->rows;
  double w[3];
  EBL_TRY(ebl_energy_eval(m, beta, NULL));
  EBL_TRY(ebl_watch_start(m, o->steps));
  m->watching = 1;
  while (k < o->steps) {
    EBL_TRY(relax_step(m, o, beta));
    k++;
    EBL_TRY(ebl_energy_eval(m, beta, NULL));
    EBL_TRY(ebl_watch_check(m, k, o->tol));
    if (k % every == 0 && k < o->steps) {
      EBL_TRY(ebl_watch_read(m, w));
      if (w[1] >= 0)
        break;
    }
  }
  m->watching = 0;
  EBL_TRY(ebl_watch_read(m, w));
  int stop = w[1] >= 0 ? (int)w[1] : k;
  EBL_TRY(ebl_watch_trace(m, base, stop));
  m->rows = base + stop;
  if (w[2] >= 0)
    return numeric_failure(m, (int)w[2]);
  if (!isfinite(w[0]))
    return numeric_failure(m, stop);
  *energy = w[0];
  *steps = stop;
  return EBL_OK;
}

/* Iterates from the current states until the tolerance or the limit;
   the energy of the states reached is left in *energy. */
static ebl_status relax_loop(ebl_model *m, const ebl_infer_opts *o,
                             double beta, double *energy, int *steps,
                             double *lr) {
  EBL_TRY(reset_optimiser(m));
  /* Inputs and weights are fixed from here on (unless incremental):
     the chains that read the input keep their outputs. */
  m->inputs_cached = o->param_lr <= 0;
  EBL_TRY(ebl_watch_usable(m, o)
            ? relax_device(m, o, beta, energy, steps, lr)
            : relax_host(m, o, beta, energy, steps, lr));
  EBL_TRY(ebl_energy_state_grads(m, beta));
  EBL_TRY(record_grads(m));
  m->rows++;
  return EBL_OK;
}

static ebl_status relax(ebl_model *m, const ebl_infer_opts *o, double beta,
                        double *energy, int *steps, double *lr) {
  ebl_status s = relax_loop(m, o, beta, energy, steps, lr);
  m->inputs_cached = 0;
  m->watching = 0;
  return s;
}

/* EP: free phase, then nudged phases at +beta and -beta from the free
   fixed point; grads = (dE/dtheta(+beta) - dE/dtheta(-beta)) / 2 beta.
   The states are left at the free fixed point. */
static ebl_status ep_phases(ebl_model *m, const ebl_infer_opts *o,
                            double beta, ebl_infer_result *r) {
  EBL_TRY(relax(m, o, 0.0, &r->energy, &r->steps, &r->state_lr));
  int slots = m->nnodes * m->T, steps;
  double f, lr;
  for (int s = 0; s < slots; s++)
    EBL_TRY(ebl_copy(&m->v_free[s], &m->v[s]));
  if (!m->have_target || beta == 0.0)
    return EBL_OK;
  int record = m->record, rows = m->rows;
  m->record = 0;
  EBL_TRY(relax(m, o, beta, &f, &steps, &lr));
  EBL_TRY(ebl_energy_param_grads(m, beta));
  for (int i = 0; i < m->params.count; i++)
    EBL_TRY(ebl_copy(&m->ep_grad[i], &m->params.grad[i]));
  for (int s = 0; s < slots; s++)
    EBL_TRY(ebl_copy(&m->v[s], &m->v_free[s]));
  EBL_TRY(relax(m, o, -beta, &f, &steps, &lr));
  EBL_TRY(ebl_energy_param_grads(m, -beta));
  for (int i = 0; i < m->params.count; i++)
    EBL_TRY(ebl_axpby(&m->params.grad[i], 1.0 / (2.0 * beta), &m->ep_grad[i],
                  -1.0 / (2.0 * beta)));
  for (int s = 0; s < slots; s++)
    EBL_TRY(ebl_copy(&m->v[s], &m->v_free[s]));
  EBL_TRY(ebl_energy_eval(m, 0.0, &f));
  m->record = record;
  m->rows = rows;
  m->grads_ready = 1;
  return EBL_OK;
}

ebl_status ebl_model_infer(ebl_model *m, const ebl_tensor *x,
                           const ebl_tensor *target,
                           const ebl_infer_opts *o, ebl_infer_result *r) {
  if (o->steps < 0)
    return ebl_fail(EBL_EARG, "infer: steps must be >= 0, got %d",
                    o->steps);
  if (o->backtrack && (o->optim != EBL_STATE_SGD || o->param_lr > 0))
    return ebl_fail(EBL_EARG, "infer: backtrack needs state_optim 'sgd' "
                    "and no param_lr");
  EBL_TRY(ebl_model_set_batch(m, x, target));
  if (m->cfg.energy == EBL_ENERGY_BP && !m->have_target)
    return ebl_fail(EBL_EARG, "infer: energy 'bp' needs a target");
  EBL_TRY(prepare_record(m, o->steps + 2, o->record));
  EBL_TRY(ebl_energy_forward_sweep(m));
  double beta = o->beta;
  memset(r, 0, sizeof *r);
  r->state_lr = o->state_lr;
  if (m->cfg.energy == EBL_ENERGY_BP) {
    EBL_TRY(eval_row(m, beta, &r->energy));
    EBL_TRY(ebl_energy_backprop(m));
    m->rows = 1;
  } else if (m->cfg.energy == EBL_ENERGY_EP) {
    EBL_TRY(ep_phases(m, o, beta, r));
  } else {
    EBL_TRY(relax(m, o, beta, &r->energy, &r->steps, &r->state_lr));
  }
  m->beta = beta;
  r->trace = m->trace;
  return EBL_OK;
}

ebl_status ebl_model_step(ebl_model *m, const ebl_infer_opts *o,
                          double *energy) {
  if (!m->states_ready)
    return ebl_fail(EBL_EARG, "step: run infer first");
  EBL_TRY(ebl_energy_state_grads(m, m->beta));
  EBL_TRY(update_states(m, o));
  return ebl_energy_eval(m, m->beta, energy);
}

ebl_status ebl_model_forward(ebl_model *m, const ebl_tensor *x) {
  EBL_TRY(ebl_model_set_batch(m, x, NULL));
  return ebl_energy_forward_sweep(m);
}

ebl_status ebl_model_energy(ebl_model *m, double *energy) {
  if (!m->states_ready)
    return ebl_fail(EBL_EARG, "energy: run infer first");
  return ebl_energy_eval(m, m->beta, energy);
}

ebl_status ebl_model_grads(ebl_model *m) {
  if (!m->states_ready)
    return ebl_fail(EBL_EARG, "grads: run infer first");
  if (m->grads_ready)
    return EBL_OK;
  return ebl_energy_param_grads(m, m->beta);
}

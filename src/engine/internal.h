/* The engine's model structure, shared by model.c (building, buffers),
   energy.c (energies and their gradients) and infer.c (the loops). A
   slot is one node at one time step: slot = node * T + t. */
#ifndef EBL_ENGINE_INTERNAL_H
#define EBL_ENGINE_INTERNAL_H

#include "core.h"
#include "engine/model.h"

struct ebl_model {
  ebl_model_config cfg;
  int nnodes, cap_nodes;
  ebl_node *nodes;
  int nedges, cap_edges;
  ebl_edge *edges;
  ebl_params params;
  int cap_params;
  int finished;
  int input, output;          /* node indices */
  int T;
  int *order;                 /* slots in forward order (nnodes * T) */

  /* Buffers for one batch size, one per slot unless said otherwise. */
  int64_t batch;
  ebl_dtype dtype;
  ebl_device device;
  ebl_tensor x;               /* the clamped input, (n, input shape) */
  ebl_tensor *v;              /* states (input slots: views of x) */
  ebl_tensor *pre;            /* sum of forward terms */
  ebl_tensor *pred;           /* forward prediction (view of pre when
                                 the node has no function) */
  ebl_tensor *err;            /* forward error e_f */
  ebl_tensor *fb;             /* feedback prediction v_b */
  ebl_tensor *err_b;          /* feedback error e_b */
  ebl_tensor *sig;            /* dF/d(pre-activation prediction) */
  ebl_tensor *sig_b;          /* dF/d(feedback prediction) */
  ebl_tensor *grad;           /* dF/dv */
  ebl_tensor *tmp;            /* scratch of a slot's shape */
  ebl_tensor *mom1, *mom2;    /* state optimiser moments */
  ebl_tensor *v_free;         /* EP: the free fixed point */
  int *has_f;                 /* number of forward terms of a slot */
  int *k_b;                   /* number of feedback terms of a slot */
  ebl_chain_buf *fwd;         /* edge e at time t: [e * T + t] */
  ebl_chain_buf *fbk;
  ebl_tensor target;          /* labels (I32) or values */
  int have_target;
  ebl_tensor cost_grad;       /* per-sample dC/d(output state) */
  ebl_tensor scalar;          /* 0-dim result of reductions */
  ebl_tensor *ep_grad;        /* EP: gradients of the + phase */
  int inputs_cached;          /* chains from the input are up to date */
  int preds_fresh;            /* pred holds f(pre) of the last eval */
  int states_ready;
  int grads_ready;            /* EP / bp fill grads during infer */
  int adam_t;
  double beta;                /* beta of the last infer */

  /* The energy's terms (ledger.c). */
  ebl_tensor ledger;          /* float64: terms, coefficients, flags */
  ebl_tensor *led_view;       /* 0-dim views of the terms */
  double *led_host;           /* the same three rows on the host */
  int *led_node;              /* node of each term, -1 for the cost */
  int led_cap, led_n, led_loop_n;
  int watching;               /* state steps are gated by the watch */
  ebl_tensor watch;           /* float64 (3): the loop's check */
  ebl_tensor dtrace;          /* float64: F per step, on the device */

  /* Diagnostics of the last infer. */
  int record;
  int rows, cap_rows;
  double *trace;
  double *node_energy;        /* rows x nnodes */
  double *node_grad;
};

static inline int slot_of(const ebl_model *m, int node, int t) {
  return node * m->T + t;
}

/* Buffers for batch size n (model.c). */
ebl_status ebl_model_alloc(ebl_model *m, int64_t n, ebl_dtype dtype,
                           ebl_device device);
/* Copies x into the input slots and the target (model.c). */
ebl_status ebl_model_set_batch(ebl_model *m, const ebl_tensor *x,
                               const ebl_tensor *target);

/* ledger.c */
ebl_status ebl_ledger_alloc(ebl_model *m);
void ebl_ledger_free(ebl_model *m);
void ebl_ledger_begin(ebl_model *m);
ebl_status ebl_ledger_slot(ebl_model *m, int node, double coef,
                           int squared, double **slot);
ebl_status ebl_ledger_reduce(ebl_model *m, ebl_reduce_op op,
                             const ebl_tensor *t, int node, double coef);
ebl_status ebl_ledger_total(ebl_model *m, double *energy);
int ebl_watch_usable(const ebl_model *m, const ebl_infer_opts *o);
ebl_status ebl_watch_start(ebl_model *m, int steps);
ebl_status ebl_watch_check(ebl_model *m, int k, double tol);
ebl_status ebl_watch_read(ebl_model *m, double w[3]);
const double *ebl_watch_gate(const ebl_model *m);
ebl_status ebl_watch_trace(ebl_model *m, int base, int k);

/* energy.c: energy may be NULL, which leaves F in the ledger */
ebl_status ebl_energy_forward_sweep(ebl_model *m);
ebl_status ebl_energy_eval(ebl_model *m, double beta, double *energy);
ebl_status ebl_energy_state_grads(ebl_model *m, double beta);
ebl_status ebl_energy_param_grads(ebl_model *m, double beta);
ebl_status ebl_energy_backprop(ebl_model *m);
int ebl_energy_is_free(const ebl_model *m, int node);

#endif

/* The energy engine: a graph of nodes (states) and edges (chains of layer
   ops), unrolled over T time steps, with the energies PC, BiPC (eq. 10
   and eq. 9), EP and backprop, inference on the states and gradients for
   the parameters. All of a batch's loop runs here, on buffers allocated
   once per batch size. docs/ENERGIES.md writes out every equation. */
#ifndef EBL_ENGINE_MODEL_H
#define EBL_ENGINE_MODEL_H

#include "engine/op.h"

#define EBL_NAME_MAX 64

typedef enum ebl_role { EBL_HIDDEN, EBL_INPUT, EBL_OUTPUT } ebl_role;

typedef enum ebl_edge_kind {
  EBL_EDGE_FORWARD, EBL_EDGE_SKIP, EBL_EDGE_RECURRENT, EBL_EDGE_INTERNAL
} ebl_edge_kind;

typedef enum ebl_energy {
  EBL_ENERGY_PC, EBL_ENERGY_BIPC, EBL_ENERGY_BIPC_SQ, EBL_ENERGY_EP,
  EBL_ENERGY_BP
} ebl_energy;

typedef enum ebl_loss { EBL_LOSS_MSE, EBL_LOSS_CE } ebl_loss;

typedef enum ebl_state_optim {
  EBL_STATE_SGD, EBL_STATE_MOMENTUM, EBL_STATE_ADAM
} ebl_state_optim;

typedef struct ebl_node {
  char name[EBL_NAME_MAX];
  ebl_role role;
  int ndim;
  int64_t shape[EBL_MAX_DIMS - 1];
  /* The node's own function, applied to the sum of its predictions. */
  int has_act;
  ebl_unary_op act, act_grad;
  double act_param;
  /* The function feedback ends with (the own function, else that of
     the first forward edge into the node), and EP's rho. */
  int has_rho;
  ebl_unary_op rho, rho_grad;
  double rho_param;
} ebl_node;

typedef struct ebl_edge {
  int src, dst, delay;
  ebl_edge_kind kind;
  int nops;
  ebl_op *ops;
  int nfb;            /* feedback chain (BiPC): 0 when none */
  ebl_op *fb;
} ebl_edge;

/* The most time steps a net is unrolled over: each step holds its own
   states, errors and gradients for every node. */
#define EBL_MAX_TIME_STEPS 65536

typedef struct ebl_model_config {
  ebl_energy energy;
  ebl_loss loss;
  double beta;            /* weight of the output cost C */
  int time_steps;         /* T in 1..EBL_MAX_TIME_STEPS */
  int clamp_output;       /* clamp the output to the target */
  double fb_weight;       /* BiPC: weight lambda of the feedback error */
  int fb_from_output;     /* BiPC: edges into the output send feedback */
  double cb_weight;       /* BiPC: weight of C_b, the input's rebuild */
  int fb_learns;          /* BiPC: feedback errors reach the weights */
} ebl_model_config;

/* Settings of one inference. */
typedef struct ebl_infer_opts {
  double beta;            /* weight of C in this inference */
  int steps;
  double state_lr;
  double tol;             /* relative change of F that ends the loop */
  ebl_state_optim optim;
  double momentum;        /* MOMENTUM */
  double beta1, beta2, eps;  /* ADAM */
  int record;             /* keep per-node energy and |dF/dv| per step */
  double param_lr;        /* > 0: incremental PC, SGD on the parameters
                             at every step with this rate */
  int check_every;        /* on a GPU: steps between the host's reads
                             of the loop's check (the CPU reads F at
                             every step) */
  int backtrack;          /* SGD: a step that raises F is undone and
                             state_lr halved (F never rises) */
} ebl_infer_opts;

/* What an inference gives back. */
typedef struct ebl_infer_result {
  double energy;          /* batch mean of F at the end */
  int steps;              /* iterations taken */
  double *trace;          /* F after each step: steps + 1 values */
  double state_lr;        /* the step size at the end (backtracking
                             may have halved it) */
} ebl_infer_result;

typedef struct ebl_model ebl_model;

/* Creates an empty model; nodes and edges are added next. The params
   table is the model's own (value tensors retained). */
ebl_status ebl_model_new(ebl_model **res, const ebl_model_config *cfg);
void ebl_model_free(ebl_model *m);

/* Adds a node; returns its index in *index. */
ebl_status ebl_model_add_node(ebl_model *m, const ebl_node *node,
                              int *index);
/* Adds a parameter tensor (float, any shape); returns its index. */
ebl_status ebl_model_add_param(ebl_model *m, const ebl_tensor *value,
                               int *index);
/* Adds an edge with a copy of its ops (param indices already set);
   checks shapes: the chain must take src's shape to dst's. */
ebl_status ebl_model_add_edge(ebl_model *m, int src, int dst, int delay,
                              ebl_edge_kind kind, const ebl_op *ops,
                              int nops);
/* Checks the graph (no cycle without delay, an input and an output,
   EP's chains linear) and builds feedback chains. Call once, after the
   last edge. */
ebl_status ebl_model_finish(ebl_model *m);

/* Inference for a batch: x (n, input shape), target (n) integer labels
   or (n, output shape) values (may be NULL: then beta is taken as 0).
   Allocates buffers when the batch size changes. */
ebl_status ebl_model_infer(ebl_model *m, const ebl_tensor *x,
                           const ebl_tensor *target,
                           const ebl_infer_opts *o, ebl_infer_result *r);
/* One more iteration of the state optimiser (after an infer). */
ebl_status ebl_model_step(ebl_model *m, const ebl_infer_opts *o,
                          double *energy);
/* The forward sweep alone: states from x, nothing else. */
ebl_status ebl_model_forward(ebl_model *m, const ebl_tensor *x);
/* F (batch mean) at the current states; per-node parts when not NULL. */
ebl_status ebl_model_energy(ebl_model *m, double *energy);
/* Fills the parameter gradients (batch mean of dF/dtheta; for EP the
   symmetric-nudging estimate made by infer; for bp backprop's). */
ebl_status ebl_model_grads(ebl_model *m);

/* Access for the binding and tests. */
int ebl_model_node_count(const ebl_model *m);
const ebl_node *ebl_model_node(const ebl_model *m, int i);
int ebl_model_edge_count(const ebl_model *m);
const ebl_edge *ebl_model_edge(const ebl_model *m, int i);
const ebl_model_config *ebl_model_config_of(const ebl_model *m);
ebl_params *ebl_model_params(ebl_model *m);
int64_t ebl_model_batch(const ebl_model *m);
/* The live tensors of node i at time t (0-based): its state, its
   forward error, its feedback error, dF/dv. NULL before an infer. */
const ebl_tensor *ebl_model_state(const ebl_model *m, int i, int t);
const ebl_tensor *ebl_model_error(const ebl_model *m, int i, int t);
const ebl_tensor *ebl_model_fb_error(const ebl_model *m, int i, int t);
const ebl_tensor *ebl_model_state_grad(const ebl_model *m, int i, int t);
/* Per-iteration diagnostics of the last infer (record on): energy and
   |dF/dv| (norm per sample, batch mean) of node i, steps + 1 rows. */
const double *ebl_model_node_energy_trace(const ebl_model *m, int *rows);
const double *ebl_model_node_grad_trace(const ebl_model *m, int *rows);

#endif

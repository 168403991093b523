/* The energy's ledger and the loop's watch. An evaluation of F writes
   its terms (sums of squares, sums, the output cost) into a float64
   vector on the model's device, each with a coefficient; the host reads
   the vector back and sums it (ledger_total), or, on a device with a
   relax_check kernel, the device sums it and keeps the loop's flags
   (watch_*), and the host reads them only every few steps. */
#include <math.h>
#include <stdlib.h>

#include "backend.h"
#include "engine/internal.h"

/* Terms one evaluation can write: two per slot (PC, BiPC), one per node
   and per chain (EP), and the output cost. */
static int ledger_cap(const ebl_model *m) {
  return 2 * m->nnodes * m->T + m->nnodes + m->nedges * m->T + 2;
}

ebl_status ebl_ledger_alloc(ebl_model *m) {
  int cap = ledger_cap(m);
  int64_t n = 3 * (int64_t)cap, three = 3;
  m->led_cap = cap;
  m->led_host = calloc((size_t)n, sizeof *m->led_host);
  m->led_node = calloc((size_t)cap, sizeof *m->led_node);
  m->led_view = calloc((size_t)cap, sizeof *m->led_view);
  if (!m->led_host || !m->led_node || !m->led_view)
    return ebl_fail(EBL_ENOMEM, "model: out of memory for the ledger");
  EBL_TRY(ebl_tensor_zeros(&m->ledger, EBL_F64, 1, &n, m->device));
  EBL_TRY(ebl_tensor_zeros(&m->watch, EBL_F64, 1, &three, m->device));
  for (int i = 0; i < cap; i++)
    EBL_TRY(ebl_tensor_select(&m->led_view[i], &m->ledger, 0, i));
  return EBL_OK;
}

void ebl_ledger_free(ebl_model *m) {
  for (int i = 0; m->led_view != NULL && i < m->led_cap; i++)
    ebl_tensor_release(&m->led_view[i]);
  free(m->led_view);
  free(m->led_host);
  free(m->led_node);
  m->led_view = NULL;
  m->led_host = NULL;
  m->led_node = NULL;
  m->led_cap = m->led_n = 0;
  ebl_tensor_release(&m->ledger);
  ebl_tensor_release(&m->watch);
  ebl_tensor_release(&m->dtrace);
}

void ebl_ledger_begin(ebl_model *m) {
  m->led_n = 0;
}

/* Claims the next term: node (or -1) and coefficient, squared when the
   term is a norm. */
static ebl_status claim(ebl_model *m, int node, double coef, int squared,
                        int *index) {
  if (m->led_n >= m->led_cap)
    return ebl_fail(EBL_ENUMERIC, "model: the energy has more than %d "
                    "terms", m->led_cap);
  int i = m->led_n++;
  m->led_host[m->led_cap + i] = coef;
  m->led_host[2 * m->led_cap + i] = squared;
  m->led_node[i] = node;
  *index = i;
  return EBL_OK;
}

/* Device memory for a kernel that writes a term itself (fused kernels,
   the output cost). */
ebl_status ebl_ledger_slot(ebl_model *m, int node, double coef,
                           int squared, double **slot) {
  int i = 0;
  EBL_TRY(claim(m, node, coef, squared, &i));
  *slot = (double *)ebl_tensor_data(&m->ledger) + i;
  return EBL_OK;
}

/* A term reduced from t: EBL_NORM (then squared) or EBL_SUM. */
ebl_status ebl_ledger_reduce(ebl_model *m, ebl_reduce_op op,
                             const ebl_tensor *t, int node, double coef) {
  int i = 0;
  EBL_TRY(claim(m, node, coef, op == EBL_NORM, &i));
  if (m->scalar.dtype == EBL_F64)
    return ebl_reduce(op, &m->led_view[i], t, EBL_DIM_ALL, 0, 2.0);
  EBL_TRY(ebl_reduce(op, &m->scalar, t, EBL_DIM_ALL, 0, 2.0));
  return ebl_copy(&m->led_view[i], &m->scalar);
}

/* Records a term's share of a node's energy (batch mean). */
static void record_node(ebl_model *m, int node, double e) {
  if (m->record && node >= 0 && m->node_energy != NULL &&
      m->rows < m->cap_rows)
    m->node_energy[m->rows * m->nnodes + node] += e;
}

/* Reads the terms back (this waits for the device) and sums them in
   order; the per-node records are made here. */
ebl_status ebl_ledger_total(ebl_model *m, double *energy) {
  const ebl_backend *be;
  EBL_TRY(ebl_backend_of("model", &m->ledger, &be));
  double *t = m->led_host, f = 0.0;
  EBL_TRY(be->to_host(t, ebl_tensor_data(&m->ledger),
                      sizeof(double) * (size_t)m->led_n));
  for (int i = 0; i < m->led_n; i++) {
    double c = m->led_host[m->led_cap + i];
    double e = m->led_host[2 * m->led_cap + i] != 0 ? c * t[i] * t[i]
                                                    : c * t[i];
    record_node(m, m->led_node[i], e);
    f += e;
  }
  *energy = f;
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* The watch: the loop's check on the device                         */

int ebl_watch_usable(const ebl_model *m, const ebl_infer_opts *o) {
  const ebl_backend *be = ebl_backend_for(m->device);
  return be != NULL && be->relax_check != NULL && be->state_step != NULL &&
         !o->record && o->param_lr <= 0 && !o->backtrack;
}

/* After the first evaluation of a loop: sends the coefficients, resets
   the watch and makes room for the trace of steps + 1 values. */
ebl_status ebl_watch_start(ebl_model *m, int steps) {
  const ebl_backend *be = ebl_backend_for(m->device);
  double w[3] = {0.0, -1.0, -1.0};
  double *dev = ebl_tensor_data(&m->ledger);
  int64_t len = (int64_t)steps + 1;
  if (m->dtrace.storage == NULL || m->dtrace.shape[0] < len) {
    ebl_tensor_release(&m->dtrace);
    EBL_TRY(ebl_tensor_empty(&m->dtrace, EBL_F64, 1, &len, m->device));
  }
  m->led_loop_n = m->led_n;
  EBL_TRY(be->from_host(dev + m->led_cap, m->led_host + m->led_cap,
                        sizeof(double) * 2 * (size_t)m->led_cap));
  EBL_TRY(be->from_host(ebl_tensor_data(&m->watch), w, sizeof w));
  return ebl_watch_check(m, 0, 0.0);
}

/* Queues the check of step k. */
ebl_status ebl_watch_check(ebl_model *m, int k, double tol) {
  if (m->led_n != m->led_loop_n)
    return ebl_fail(EBL_ENUMERIC, "infer: the energy changed its terms "
                    "during the loop (%d, then %d)", m->led_loop_n,
                    m->led_n);
  ebl_relax_check c = {ebl_tensor_data(&m->watch),
                       ebl_tensor_data(&m->ledger), m->led_n, m->led_cap,
                       ebl_tensor_data(&m->dtrace), k, tol};
  return ebl_backend_for(m->device)->relax_check(&c);
}

/* The watch's three values (waits for the device). */
ebl_status ebl_watch_read(ebl_model *m, double w[3]) {
  const ebl_backend *be = ebl_backend_for(m->device);
  return be->to_host(w, ebl_tensor_data(&m->watch), 3 * sizeof(double));
}

/* The gate for state steps: the watch's stop step. */
const double *ebl_watch_gate(const ebl_model *m) {
  return (const double *)ebl_tensor_data(&m->watch) + 1;
}

/* Copies F of steps 0..k to the host's trace from row base on. */
ebl_status ebl_watch_trace(ebl_model *m, int base, int k) {
  const ebl_backend *be = ebl_backend_for(m->device);
  int room = m->cap_rows - base, n = k + 1 < room ? k + 1 : room;
  if (n <= 0)
    return EBL_OK;
  return be->to_host(m->trace + base, ebl_tensor_data(&m->dtrace),
                     sizeof(double) * (size_t)n);
}

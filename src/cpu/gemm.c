/* CPU matrix products through OpenBLAS: one cblas_?gemm per batch entry.
   Batches of small matrices run in parallel (BLAS single-threaded inside
   an OpenMP region); large ones let BLAS use the threads. */
#include <cblas.h>

#include "cpu/cpu.h"
#include "cpu/iter.h"

/* Entry i of the batch. */
static void gemm_one(const ebl_gemm_batch *g, int64_t i) {
  enum CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
  enum CBLAS_TRANSPOSE tb = g->trans_b ? CblasTrans : CblasNoTrans;
  if (g->dtype == EBL_F32)
    cblas_sgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k,
                (float)g->alpha, (const float *)g->a + g->a_off[i],
                (int)g->lda, (const float *)g->b + g->b_off[i],
                (int)g->ldb, (float)g->beta, (float *)g->c + g->c_off[i],
                (int)g->ldc);
  else
    cblas_dgemm(CblasRowMajor, ta, tb, (int)g->m, (int)g->n, (int)g->k,
                g->alpha, (const double *)g->a + g->a_off[i], (int)g->lda,
                (const double *)g->b + g->b_off[i], (int)g->ldb, g->beta,
                (double *)g->c + g->c_off[i], (int)g->ldc);
}

static void gemm_body(int64_t begin, int64_t end, void *ctx) {
  for (int64_t i = begin; i < end; i++) gemm_one(ctx, i);
}

ebl_status ebl_cpu_gemm(const ebl_gemm_batch *g) {
  double flops = 2.0 * (double)g->m * (double)g->n * (double)g->k;
  if (g->count > 1 && flops < 4e6)
    return ebl_parallel_for(g->count, 1, gemm_body, (void *)g);
  for (int64_t i = 0; i < g->count; i++) gemm_one(g, i);
  return EBL_OK;
}

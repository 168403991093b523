/* Matrix products: shape rules (1-D operands, broadcast batch dims),
   mapping views onto BLAS's row-major (trans, ld) form without copies
   where the strides allow, and folding a batch into one big product when
   the second operand has no batch dims. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BLAS_MAX ((int64_t)1 << 31)

ebl_status ebl_matmul_shape(const ebl_tensor *a, const ebl_tensor *b,
                            int *ndim, int64_t *shape) {
  char sa[96], sb[96];
  EBL_TRY(ebl_need_tensor("matmul", a, "first operand"));
  EBL_TRY(ebl_need_tensor("matmul", b, "second operand"));
  if (a->ndim == 0 || b->ndim == 0)
    return ebl_fail(EBL_EARG, "matmul: operands need at least 1 dim "
                    "(got %d and %d)", a->ndim, b->ndim);
  int64_t k = a->shape[a->ndim - 1];
  int64_t k2 = b->shape[b->ndim > 1 ? b->ndim - 2 : 0];
  if (k != k2)
    return ebl_fail(EBL_EARG, "matmul: shapes %s and %s do not fit "
                    "(%lld ~= %lld)", ebl_shape_string(a, sa, sizeof sa),
                    ebl_shape_string(b, sb, sizeof sb), (long long)k,
                    (long long)k2);
  int abatch = a->ndim > 2 ? a->ndim - 2 : 0;
  int bbatch = b->ndim > 2 ? b->ndim - 2 : 0;
  int nb = abatch > bbatch ? abatch : bbatch;
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - abatch), ib = i - (nb - bbatch);
    int64_t x = ia >= 0 ? a->shape[ia] : 1, y = ib >= 0 ? b->shape[ib] : 1;
    if (x != y && x != 1 && y != 1)
      return ebl_fail(EBL_EARG, "matmul: batch dims of %s and %s do not "
                      "broadcast", ebl_shape_string(a, sa, sizeof sa),
                      ebl_shape_string(b, sb, sizeof sb));
    shape[i] = x == 1 ? y : x;
  }
  *ndim = nb;
  if (a->ndim > 1) shape[(*ndim)++] = a->shape[a->ndim - 2];
  if (b->ndim > 1) shape[(*ndim)++] = b->shape[b->ndim - 1];
  return EBL_OK;
}

/* How a matrix view (last two dims) goes to BLAS: 0 when it cannot. */
static int blas_layout(const ebl_tensor *t, int *trans, int64_t *ld) {
  int64_t rows = t->shape[t->ndim - 2], cols = t->shape[t->ndim - 1];
  int64_t rs = t->stride[t->ndim - 2], cs = t->stride[t->ndim - 1];
  int64_t min_ld_rows = cols > 1 ? cols : 1, min_ld_cols = rows > 1 ? rows : 1;
  if ((cols == 1 || cs == 1) && (rows == 1 || rs >= min_ld_rows)) {
    *trans = 0;
    *ld = rows == 1 ? min_ld_rows : rs;
  } else if ((rows == 1 || rs == 1) && (cols == 1 || cs >= min_ld_cols)) {
    *trans = 1;
    *ld = cols == 1 ? min_ld_cols : cs;
  } else {
    return 0;
  }
  return *ld < BLAS_MAX;
}

/* The operands as >= 2-D views broadcast over the batch dims of out3
   (out with its dropped dims restored). */
typedef struct mm_views {
  ebl_tensor a, b, c;
  int nb;                        /* batch dims */
  int64_t count;                 /* batch entries */
} mm_views;

static void release_views(mm_views *v) {
  ebl_tensor_release(&v->a);
  ebl_tensor_release(&v->b);
  ebl_tensor_release(&v->c);
}

/* Builds 3 views: a (batch.., m, k), b (batch.., k, n), c (batch.., m, n). */
static ebl_status make_views(const ebl_tensor *out, const ebl_tensor *a,
                             const ebl_tensor *b, mm_views *v) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_tensor a2, b2;
  memset(v, 0, sizeof *v);
  EBL_TRY(ebl_matmul_shape(a, b, &nd, shape));
  ebl_tensor_view(&a2, a);
  ebl_tensor_view(&b2, b);
  ebl_tensor_view(&v->c, out);
  if (a->ndim == 1) {
    ebl_tensor_unsqueeze(&a2, &a2, 0);
    ebl_tensor_unsqueeze(&v->c, &v->c, v->c.ndim - (b->ndim > 1 ? 1 : 0));
  }
  if (b->ndim == 1) {
    ebl_tensor_unsqueeze(&b2, &b2, 1);
    ebl_tensor_unsqueeze(&v->c, &v->c, v->c.ndim);
  }
  v->nb = v->c.ndim - 2;
  memcpy(shape, v->c.shape, sizeof(int64_t) * v->c.ndim);
  shape[v->nb] = a2.shape[a2.ndim - 2];
  shape[v->nb + 1] = a2.shape[a2.ndim - 1];
  ebl_status st = ebl_tensor_expand(&v->a, &a2, v->c.ndim, shape);
  shape[v->nb] = b2.shape[b2.ndim - 2];
  shape[v->nb + 1] = b2.shape[b2.ndim - 1];
  if (st == EBL_OK) st = ebl_tensor_expand(&v->b, &b2, v->c.ndim, shape);
  ebl_tensor_release(&a2);
  ebl_tensor_release(&b2);
  v->count = ebl_shape_numel(v->nb, v->c.shape);
  if (st != EBL_OK) release_views(v);
  return st;
}

/* Merges the batch dims of t into its row dim when strides allow:
   (batch.., m, x) -> (count * m, x). Returns 1 when done. */
static int fold_rows(ebl_tensor *t) {
  int rd = t->ndim - 2;
  for (int d = 0; d < rd; d++)
    if (t->shape[d] != 1 &&
        t->stride[d] != t->stride[d + 1] * t->shape[d + 1])
      return 0;
  if (t->shape[rd] != 1 && t->stride[rd] < t->shape[t->ndim - 1])
    return 0;
  int64_t rows = ebl_shape_numel(rd + 1, t->shape);
  int64_t rs = t->stride[rd], cols = t->shape[t->ndim - 1];
  int64_t cs = t->stride[t->ndim - 1];
  if (t->shape[rd] == 1) rs = cols;
  t->ndim = 2;
  t->shape[0] = rows;
  t->stride[0] = rs;
  t->shape[1] = cols;
  t->stride[1] = cs;
  return 1;
}

/* With b free of batch dims, a (batch.., m, k) and c as one product. */
static void try_fold(mm_views *v) {
  for (int d = 0; d < v->nb; d++)
    if (v->b.stride[d] != 0 && v->b.shape[d] != 1) return;
  if (v->nb == 0 || v->a.stride[v->a.ndim - 1] != 1) return;
  ebl_tensor a = v->a, c = v->c;
  if (!fold_rows(&a) || !fold_rows(&c)) return;
  v->a = a;
  v->c = c;
  v->b.ndim = 2;
  v->b.shape[0] = v->b.shape[v->nb];
  v->b.stride[0] = v->b.stride[v->nb];
  v->b.shape[1] = v->b.shape[v->nb + 1];
  v->b.stride[1] = v->b.stride[v->nb + 1];
  v->nb = 0;
  v->count = 1;
}

/* Element offsets of every batch entry of t (row-major batch order). */
static void batch_offsets(const ebl_tensor *t, int nb, int64_t count,
                          int64_t *off) {
  for (int64_t i = 0; i < count; i++) {
    int64_t rest = i, o = 0;
    for (int d = nb - 1; d >= 0; d--) {
      o += (rest % t->shape[d]) * t->stride[d];
      rest /= t->shape[d];
    }
    off[i] = o;
  }
}

/* Replaces t by a contiguous copy when BLAS cannot take its strides. */
static ebl_status blas_ready(ebl_tensor *t, int *trans, int64_t *ld) {
  if (blas_layout(t, trans, ld)) return EBL_OK;
  EBL_TRY(ebl_tensor_clone(t, t));
  blas_layout(t, trans, ld);
  return EBL_OK;
}

/* Runs the batch on views whose c is BLAS-ready (not transposed). */
static ebl_status run_gemm(mm_views *v, double alpha, double beta) {
  ebl_gemm_batch g;
  const ebl_backend *be;
  int tc;
  int64_t ldc;
  EBL_TRY(ebl_backend_of("matmul", &v->c, &be));
  EBL_TRY(blas_ready(&v->a, &g.trans_a, &g.lda));
  EBL_TRY(blas_ready(&v->b, &g.trans_b, &g.ldb));
  blas_layout(&v->c, &tc, &ldc);
  /* Offsets on the stack for small batches (the engine's loop), so that
     a product allocates nothing. */
  int64_t local[3 * 16];
  int64_t *off = v->count <= 16 ? local
               : malloc(sizeof(int64_t) * 3 * (size_t)v->count);
  if (!off) return ebl_fail(EBL_ENOMEM, "matmul: out of memory");
  batch_offsets(&v->a, v->nb, v->count, off);
  batch_offsets(&v->b, v->nb, v->count, off + v->count);
  batch_offsets(&v->c, v->nb, v->count, off + 2 * v->count);
  g.dtype = v->c.dtype;
  g.m = v->a.shape[v->nb];
  g.k = v->a.shape[v->nb + 1];
  g.n = v->b.shape[v->nb + 1];
  g.alpha = alpha;
  g.beta = beta;
  g.a = ebl_tensor_data(&v->a);
  g.b = ebl_tensor_data(&v->b);
  g.c = ebl_tensor_data(&v->c);
  g.ldc = ldc;
  g.count = v->count;
  g.a_off = off;
  g.b_off = off + v->count;
  g.c_off = off + 2 * v->count;
  ebl_status st = be->gemm(&g);
  if (off != local)
    free(off);
  return st;
}

/* Nonzero when c can take BLAS's output directly. */
static int c_ready(const mm_views *v, const ebl_tensor *a,
                   const ebl_tensor *b) {
  int tc;
  int64_t ldc;
  if (!blas_layout(&v->c, &tc, &ldc) || tc) return 0;
  for (int d = 0; d < v->nb; d++)
    if (v->c.stride[d] == 0 && v->c.shape[d] > 1) return 0;
  return !ebl_views_overlap(&v->c, a) && !ebl_views_overlap(&v->c, b);
}

/* Checks dtypes, devices and sizes of a gemm. */
static ebl_status gemm_check(const ebl_tensor *out, const ebl_tensor *a,
                             const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  char s1[96], s2[96];
  EBL_TRY(ebl_matmul_shape(a, b, &nd, shape));
  EBL_TRY(ebl_need_tensor("matmul", out, "output"));
  EBL_TRY(ebl_need_same_device("matmul", a, b));
  EBL_TRY(ebl_need_same_device("matmul", out, a));
  EBL_TRY(ebl_need_float("matmul", a));
  if (a->dtype != b->dtype || out->dtype != a->dtype)
    return ebl_fail(EBL_EARG, "matmul: dtypes %s, %s and output %s differ",
                    ebl_dtype_name(a->dtype), ebl_dtype_name(b->dtype),
                    ebl_dtype_name(out->dtype));
  if (out->ndim != nd || memcmp(out->shape, shape, sizeof(int64_t) * nd))
    return ebl_fail(EBL_EARG, "matmul: output has shape %s, expected %s",
                    ebl_shape_string(out, s1, sizeof s1),
                    ebl_format_shape(nd, shape, s2, sizeof s2));
  int64_t k = a->shape[a->ndim - 1];
  for (int d = 0; d < nd; d++)
    if (shape[d] >= BLAS_MAX || k >= BLAS_MAX)
      return ebl_fail(EBL_EARG, "matmul: sizes past 2^31 are not "
                      "supported");
  return EBL_OK;
}

ebl_status ebl_gemm(const ebl_tensor *out, const ebl_tensor *a,
                    const ebl_tensor *b, double alpha, double beta) {
  mm_views v;
  ebl_tensor dense;
  EBL_TRY(gemm_check(out, a, b));
  if (ebl_tensor_numel(out) == 0) return EBL_OK;
  if (a->shape[a->ndim - 1] == 0)
    return beta == 0 ? ebl_fill(out, 0.0)
                     : ebl_binary_scalar(EBL_MUL, out, out, beta);
  if (ebl_tensor_is_contiguous(out) && !ebl_views_overlap(out, a) &&
      !ebl_views_overlap(out, b)) {
    EBL_TRY(make_views(out, a, b, &v));
    if (c_ready(&v, a, b)) {
      try_fold(&v);
      ebl_status st = run_gemm(&v, alpha, beta);
      release_views(&v);
      return st;
    }
    release_views(&v);
  }
  /* Output BLAS cannot write: compute into a dense copy, copy back. */
  EBL_TRY(ebl_tensor_clone(&dense, out));
  ebl_status st = make_views(&dense, a, b, &v);
  if (st == EBL_OK) {
    try_fold(&v);
    st = run_gemm(&v, alpha, beta);
    release_views(&v);
  }
  if (st == EBL_OK) st = ebl_copy(out, &dense);
  ebl_tensor_release(&dense);
  return st;
}

ebl_status ebl_matmul(const ebl_tensor *out, const ebl_tensor *a,
                      const ebl_tensor *b) {
  return ebl_gemm(out, a, b, 1.0, 0.0);
}

ebl_status ebl_matmul_new(ebl_tensor *res, const ebl_tensor *a,
                          const ebl_tensor *b) {
  int nd;
  int64_t shape[EBL_MAX_DIMS];
  ebl_tensor r;
  EBL_TRY(ebl_matmul_shape(a, b, &nd, shape));
  EBL_TRY(ebl_tensor_empty(&r, a->dtype, nd, shape, a->storage->device));
  ebl_status st = ebl_matmul(&r, a, b);
  if (st != EBL_OK) {
    ebl_tensor_release(&r);
    return st;
  }
  *res = r;
  return EBL_OK;
}

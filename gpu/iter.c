/* The element iterator of gpu/gpu.h: operands' shapes and strides with
   dims merged where every operand is dense across them, as the CPU's
   iterator does (src/cpu/iter.c), but in elements rather than bytes. */
#include <string.h>

#include "gpu/gpu.h"

void ebl_gpu_iter_init(ebl_gpu_iter *it, int nops,
                       const ebl_tensor *const *ops) {
  const ebl_tensor *t0 = ops[0];
  memset(it, 0, sizeof *it);
  it->nops = nops;
  it->numel = 1;
  for (int i = 0; i < nops; i++) it->data[i] = ebl_gpu_data(ops[i]);
  for (int d = 0; d < t0->ndim; d++) {
    it->numel *= t0->shape[d];
    if (t0->shape[d] == 1) continue;
    int k = it->ndim, merge = k > 0;
    for (int i = 0; i < nops && merge; i++)
      merge = it->stride[i][k - 1] == ops[i]->stride[d] * t0->shape[d];
    if (merge) {
      it->shape[k - 1] *= t0->shape[d];
      for (int i = 0; i < nops; i++)
        it->stride[i][k - 1] = ops[i]->stride[d];
      continue;
    }
    it->shape[k] = t0->shape[d];
    for (int i = 0; i < nops; i++) it->stride[i][k] = ops[i]->stride[d];
    it->ndim++;
  }
  if (it->ndim == 0) {
    it->ndim = 1;
    it->shape[0] = 1;
  }
}

/* Strided N-d iteration over up to four operands of one shape, the engine
   under every CPU elementwise kernel: dims are coalesced, the index space
   is cut into fixed chunks shared among OpenMP threads, and a kernel runs
   on each 1-D run of the innermost dim. */
#ifndef EBL_CPU_ITER_H
#define EBL_CPU_ITER_H

#include "tensor.h"

#define EBL_ITER_MAX_OPS 4

/* A 1-D kernel: n elements, operand i at p[i] with byte stride s[i]. */
typedef void (*ebl_loop_fn)(int64_t n, char *const *p, const int64_t *s,
                            const void *ctx);

typedef struct ebl_iter {
  int nops, ndim;
  int64_t numel;
  int64_t shape[EBL_MAX_DIMS];
  int64_t stride[EBL_ITER_MAX_OPS][EBL_MAX_DIMS];   /* in bytes */
  char *base[EBL_ITER_MAX_OPS];
} ebl_iter;

/* Sets up iteration over ops (all of ops[0]'s shape), merging dims that
   are dense in every operand. */
void ebl_iter_init(ebl_iter *it, int nops, const ebl_tensor *const *ops);
/* Runs fn over every element; threads are used when the element count
   times cost (1 for an add, more for a tanh) passes the threshold.
   Polls the interrupt flag between chunks. */
ebl_status ebl_iter_run(const ebl_iter *it, ebl_loop_fn fn,
                        const void *ctx, int cost);
/* Runs body(begin, end, ctx) over 0..n-1 cut into chunks of grain
   (fixed bounds), spread over threads when there are two or more. */
ebl_status ebl_parallel_for(int64_t n, int64_t grain,
                            void (*body)(int64_t, int64_t, void *),
                            void *ctx);
/* Element counts above which loops of cost 1 use several threads. */
extern int64_t ebl_cpu_parallel_threshold;

#endif

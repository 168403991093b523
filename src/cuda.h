/* The CUDA device as the core sees it. The kernels live in a separate
   module (build/ebl_cuda.so, built from gpu/ when nvcc is present) that
   the core opens with dlopen on first use, and only when the driver
   (libcuda.so.1) loads and reports a device; ./ebl and ebl.so link no
   CUDA library. Without it every function here answers "not available"
   and the rest of ebl works as before. */
#ifndef EBL_CUDA_H
#define EBL_CUDA_H

#include <stddef.h>

#include "backend.h"

/* What the allocator of the device holds, in bytes. */
typedef struct ebl_cuda_memory_stats {
  size_t in_use;          /* blocks given to live storages and scratch */
  size_t cached;          /* freed blocks kept for reuse */
  size_t peak;            /* highest in_use so far */
  size_t requested;       /* bytes asked for by the blocks in use */
  long long device_mallocs;  /* cudaMalloc calls so far */
  long long device_frees;    /* cudaFree calls so far */
} ebl_cuda_memory_stats;

/* ---- the module's interface: what the core hands to the module and
   what the module's one entry point returns. Both sides are built from
   these headers in one build; the sizes guard against a stale module. */

#define EBL_CUDA_ENTRY "ebl_cuda_entry"

typedef struct ebl_cuda_host {
  size_t backend_size;    /* sizeof(ebl_backend) */
  size_t tensor_size;     /* sizeof(ebl_tensor) */
  /* Records a failure message, as ebl_fail() does. */
  ebl_status (*fail)(ebl_status status, const char *fmt, ...);
} ebl_cuda_host;

/* Timings of the vendor libraries alone, for bench/bench_cuda.c: each
   runs its operation iters times on the module's stream after one
   warm-up run and returns the mean milliseconds per run measured with
   CUDA events, or a negative number when it could not run. */
typedef struct ebl_cuda_reference {
  /* cublasSgemm of (m, k) by (k, n), row-major, fp32 as configured. */
  double (*sgemm)(int m, int n, int k, int iters);
  /* cudnnConvolutionForward of x (n, c_in, h, w) with a c_out x c_in x
     k x k kernel, stride 1, padding pad, the algorithm ebl picks. */
  double (*conv2d)(int n, int c_in, int h, int w, int c_out, int k,
                   int pad, int iters);
  /* cudaMemcpyAsync of nbytes device to device. */
  double (*copy)(size_t nbytes, int iters);
} ebl_cuda_reference;

typedef struct ebl_cuda_module {
  const ebl_backend *backend;
  ebl_status (*memory)(ebl_cuda_memory_stats *stats);
  ebl_status (*empty_cache)(void);
  ebl_status (*synchronize)(void);
  /* Sets whether float32 products may use TF32 tensor cores. */
  void (*allow_tf32)(int allow);
  int (*tf32_allowed)(void);
  ebl_status (*device_name)(char *buf, size_t len);
  const ebl_cuda_reference *reference;
} ebl_cuda_module;

/* The type of the module's entry point: NULL when it cannot start (the
   reason recorded through host->fail). */
typedef const ebl_cuda_module *(*ebl_cuda_entry_fn)(
  const ebl_cuda_host *host);

/* ---- the core's side */

/* The CUDA backend table, loading the module on the first call; NULL
   when no usable GPU, driver or module is there. */
const ebl_backend *ebl_cuda_backend(void);
/* Nonzero when CUDA tensors can be made. */
int ebl_cuda_available(void);
/* Why ebl_cuda_available() is 0 ("no NVIDIA driver (libcuda.so.1 not
   found)", ...); "" when it is 1. */
const char *ebl_cuda_unavailable_reason(void);
/* Devices the driver reports (0 without a driver); loads no module. */
int ebl_cuda_device_count(void);
/* The name of device 0 ("NVIDIA H200"). */
ebl_status ebl_cuda_device_name(char *buf, size_t len);
/* The allocator's figures. */
ebl_status ebl_cuda_memory(ebl_cuda_memory_stats *stats);
/* Returns the allocator's cached blocks to the driver. */
ebl_status ebl_cuda_empty_cache(void);
/* Waits until all queued device work has finished. */
ebl_status ebl_cuda_synchronize(void);
/* The vendor-library timings of the module (NULL when unavailable). */
const ebl_cuda_reference *ebl_cuda_reference_timings(void);
/* Allows or forbids TF32 in float32 products and convolutions (off by
   default: full float32); *previous gets the old setting when not
   NULL. */
ebl_status ebl_cuda_allow_tf32(int allow, int *previous);

#endif

/* The CUDA module's entry point and context: device 0, the one stream,
   error messages through the core, the kept failure of entries that
   return no status, and small reads back to the host. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpu/gpu.h"

cudaStream_t ebl_gpu_stream;
int ebl_gpu_sm_count = 1;

static ebl_cuda_host host;
static _Thread_local char last_msg[400];
static ebl_status pending = EBL_OK;
static char pending_msg[400];
static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;

/* Host memory that device results are copied into (page-locked). */
static double *readback;
static pthread_mutex_t readback_lock = PTHREAD_MUTEX_INITIALIZER;

/* The backend table (gpu/backend.c) and the allocator's figures and
   cache (gpu/memory.c). */
extern const ebl_backend ebl_gpu_backend;
ebl_status ebl_gpu_memory_stats(ebl_cuda_memory_stats *stats);
ebl_status ebl_gpu_empty_cache(void);

/* Formats the message here (kept for ebl_gpu_defer) and hands it to
   the core. */
ebl_status ebl_gpu_fail(ebl_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_msg, sizeof last_msg, fmt, ap);
  va_end(ap);
  return host.fail(status, "%s", last_msg);
}

ebl_status ebl_gpu_check(const char *op, cudaError_t err) {
  if (err == cudaSuccess) return EBL_OK;
  return ebl_gpu_fail(EBL_EDEVICE, "%s: %s", op, cudaGetErrorString(err));
}

/* Keeps the message of the last failure, when nothing is pending. */
void ebl_gpu_defer(ebl_status status) {
  if (status == EBL_OK) return;
  pthread_mutex_lock(&pending_lock);
  if (pending == EBL_OK) {
    pending = status;
    snprintf(pending_msg, sizeof pending_msg, "%s", last_msg);
  }
  pthread_mutex_unlock(&pending_lock);
}

ebl_status ebl_gpu_pending(const char *fn) {
  (void)fn;
  pthread_mutex_lock(&pending_lock);
  ebl_status st = pending;
  char msg[sizeof pending_msg];
  snprintf(msg, sizeof msg, "%s", pending_msg);
  pending = EBL_OK;
  pthread_mutex_unlock(&pending_lock);
  return st == EBL_OK ? EBL_OK : ebl_gpu_fail(st, "%s", msg);
}

ebl_status ebl_gpu_read(const char *op, void *dst, const void *dev,
                        size_t nbytes) {
  if (nbytes == 0) return EBL_OK;
  cudaError_t err = cudaMemcpyAsync(dst, dev, nbytes,
                                    cudaMemcpyDeviceToHost, ebl_gpu_stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(ebl_gpu_stream);
  return ebl_gpu_check(op, err);
}

ebl_status ebl_gpu_read_doubles(const char *op, double *dst,
                                const double *dev, int n) {
  pthread_mutex_lock(&readback_lock);
  ebl_status st = ebl_gpu_read(op, readback, dev, sizeof(double) * n);
  if (st == EBL_OK) memcpy(dst, readback, sizeof(double) * n);
  pthread_mutex_unlock(&readback_lock);
  return st;
}

/* ---- the module's functions */

static ebl_status synchronize(void) {
  return ebl_gpu_check("synchronize",
                       cudaStreamSynchronize(ebl_gpu_stream));
}

static void allow_tf32(int allow) {
  ebl_gpu_blas_set_tf32(allow);
  ebl_gpu_conv_set_tf32(allow);
}

static ebl_status device_name(char *buf, size_t len) {
  struct cudaDeviceProp prop;
  EBL_GPU_TRY(ebl_gpu_check("device_name",
                            cudaGetDeviceProperties(&prop, 0)));
  snprintf(buf, len, "%s", prop.name);
  return EBL_OK;
}

static const ebl_cuda_module module = {
  .backend = &ebl_gpu_backend,
  .memory = ebl_gpu_memory_stats,
  .empty_cache = ebl_gpu_empty_cache,
  .synchronize = synchronize,
  .allow_tf32 = allow_tf32,
  .tf32_allowed = ebl_gpu_blas_tf32,
  .device_name = device_name,
  .reference = &ebl_gpu_reference,
};

/* Device 0, its stream and the readback buffer. */
static ebl_status start(void) {
  int sms = 0;
  EBL_GPU_TRY(ebl_gpu_check("cudaSetDevice", cudaSetDevice(0)));
  EBL_GPU_TRY(ebl_gpu_check("cudaStreamCreate",
                            cudaStreamCreateWithFlags(
                              &ebl_gpu_stream, cudaStreamNonBlocking)));
  EBL_GPU_TRY(ebl_gpu_check("cudaDeviceGetAttribute",
                            cudaDeviceGetAttribute(
                              &sms, cudaDevAttrMultiProcessorCount, 0)));
  ebl_gpu_sm_count = sms > 0 ? sms : 1;
  return ebl_gpu_check("cudaMallocHost",
                       cudaMallocHost((void **)&readback,
                                      8 * sizeof(double)));
}

/* The entry point the core looks up with dlsym. */
__attribute__((visibility("default")))
const ebl_cuda_module *ebl_cuda_entry(const ebl_cuda_host *h) {
  if (!h || h->backend_size != sizeof(ebl_backend) ||
      h->tensor_size != sizeof(ebl_tensor)) {
    if (h && h->fail)
      h->fail(EBL_EDEVICE, "ebl_cuda.so was built from other headers "
              "than this ebl (rebuild both)");
    return NULL;
  }
  host = *h;
  return start() == EBL_OK ? &module : NULL;
}

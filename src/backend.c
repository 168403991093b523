/* The registry of backends: the CPU table is always linked; a CUDA table
   is picked up when an object defining ebl_cuda_backend is linked in. */
#include "backend.h"

extern const ebl_backend ebl_cuda_backend __attribute__((weak));

const ebl_backend *ebl_backend_for(ebl_device device) {
  switch (device) {
  case EBL_CPU: return &ebl_cpu_backend;
  case EBL_CUDA: return &ebl_cuda_backend;  /* NULL when not linked */
  default: return NULL;
  }
}

ebl_status ebl_backend_of(const char *fn, const ebl_tensor *t,
                          const ebl_backend **backend) {
  if (!t->storage)
    return ebl_fail(EBL_EARG, "%s: tensor has no storage", fn);
  *backend = ebl_backend_for(t->storage->device);
  if (!*backend)
    return ebl_fail(EBL_EDEVICE, "%s: no %s backend in this build", fn,
                    ebl_device_name(t->storage->device));
  return EBL_OK;
}

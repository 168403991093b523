/* The registry of backends: the CPU table is always linked; the CUDA
   table comes from the module that src/cuda.c opens on first use. */
#include "backend.h"
#include "cuda.h"

const ebl_backend *ebl_backend_for(ebl_device device) {
  switch (device) {
  case EBL_CPU: return &ebl_cpu_backend;
  case EBL_CUDA: return ebl_cuda_backend();  /* NULL when unavailable */
  default: return NULL;
  }
}

ebl_status ebl_backend_missing(const char *fn, ebl_device device) {
  if (device == EBL_CUDA)
    return ebl_fail(EBL_EDEVICE, "%s: cuda is not available (%s)", fn,
                    ebl_cuda_unavailable_reason());
  return ebl_fail(EBL_EDEVICE, "%s: no %s backend in this build", fn,
                  ebl_device_name(device));
}

ebl_status ebl_backend_of(const char *fn, const ebl_tensor *t,
                          const ebl_backend **backend) {
  if (!t->storage)
    return ebl_fail(EBL_EARG, "%s: tensor has no storage", fn);
  *backend = ebl_backend_for(t->storage->device);
  if (!*backend)
    return ebl_backend_missing(fn, t->storage->device);
  return EBL_OK;
}

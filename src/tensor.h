/* The tensor core: refcounted storage on a device and strided views on it.
   This layer knows nothing of Lua; errors are reported through ebl_error(). */
#ifndef EBL_TENSOR_H
#define EBL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define EBL_MAX_DIMS 8

typedef enum ebl_dtype {
  EBL_F32 = 0,
  EBL_F64 = 1,
  EBL_I32 = 2,
  EBL_U8 = 3,
  EBL_NDTYPES
} ebl_dtype;

typedef enum ebl_device {
  EBL_CPU = 0,
  EBL_CUDA = 1,
  EBL_NDEVICES
} ebl_device;

/* Status codes returned by every fallible core function. */
typedef enum ebl_status {
  EBL_OK = 0,
  EBL_EARG,        /* bad argument: shape, dtype, index, ... */
  EBL_ENOMEM,      /* allocation failed */
  EBL_EINTR,       /* stopped by the interrupt flag (Ctrl-C) */
  EBL_EDEVICE,     /* device or library failure */
  EBL_ENUMERIC     /* NaN or Inf where none may be */
} ebl_status;

/* Reference-counted block of memory on one device. */
typedef struct ebl_storage {
  void *data;
  size_t nbytes;
  int refcount;
  ebl_device device;
} ebl_storage;

/* A view: dtype, shape and strides (in elements) over a storage. A tensor
   value owns one reference to its storage; copy it only through
   ebl_tensor_view() and drop it with ebl_tensor_release(). */
typedef struct ebl_tensor {
  ebl_storage *storage;
  ebl_dtype dtype;
  int ndim;
  int64_t shape[EBL_MAX_DIMS];
  int64_t stride[EBL_MAX_DIMS];
  int64_t offset;
} ebl_tensor;

/* The message of the last failure on this thread ("matmul: shapes ..."). */
const char *ebl_error(void);
/* Records a failure message (printf-style) and returns the status. */
ebl_status ebl_fail(ebl_status status, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

#endif

/* Safetensors files: an 8-byte little-endian header length, a JSON header
   naming each tensor's dtype, shape and byte span, then the raw data.
   Written atomically (temporary file, fsync, rename); validated on read. */
#ifndef EBL_SAFETENSORS_H
#define EBL_SAFETENSORS_H

#include "tensor.h"

/* Most bytes a header may have; larger ones are refused as damaged. */
#define EBL_SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20)

/* The contents of a file: tensors by name and the string pairs of its
   "__metadata__". Every string and tensor is owned by the struct. */
typedef struct ebl_safetensors {
  int ntensors;
  char **names;
  ebl_tensor *tensors;
  int nmeta;
  char **keys;
  char **values;
} ebl_safetensors;

/* Writes n tensors (CPU, any strides) under names, with nmeta metadata
   pairs, to path: first to path.tmp.<pid>, flushed and fsynced, then
   renamed over path and the folder fsynced, so that a crash leaves the
   old file or the new one, never a part. Tensors are laid out by
   element size, then name. Names must differ and not be "__metadata__". */
ebl_status ebl_safetensors_write(const char *path, int n,
                                 const char *const *names,
                                 const ebl_tensor *tensors, int nmeta,
                                 const char *const *keys,
                                 const char *const *values);

/* Reads path into *res after checking it: the header length against the
   file size, the JSON, each dtype and shape against its byte span, spans
   inside the data, neither overlapping nor leaving holes. Dtypes F32,
   F64, I32 and U8 are read. On failure *res is empty and the message
   names the file and the fault. */
ebl_status ebl_safetensors_read(const char *path, ebl_safetensors *res);

/* Frees what ebl_safetensors_read returned and zeroes *st. */
void ebl_safetensors_free(ebl_safetensors *st);

#endif

/* Storage: reference-counted blocks on a device, dtype and device names,
   and the accounting of live bytes that ebl.memory() reports. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"

static size_t live_bytes[EBL_NDEVICES];
static size_t peak_bytes;
static int64_t live_storages;
static int64_t total_allocations;

static const char *const dtype_names[EBL_NDTYPES] = {
  "float32", "float64", "int32", "uint8"
};
static const size_t dtype_sizes[EBL_NDTYPES] = { 4, 8, 4, 1 };

size_t ebl_dtype_size(ebl_dtype dtype) {
  return (unsigned)dtype < EBL_NDTYPES ? dtype_sizes[dtype] : 0;
}

const char *ebl_dtype_name(ebl_dtype dtype) {
  return (unsigned)dtype < EBL_NDTYPES ? dtype_names[dtype] : "?";
}

/* Also accepts the C-ish aliases a user is likely to type. */
int ebl_dtype_from_name(const char *name) {
  static const struct { const char *name; ebl_dtype dtype; } alias[] = {
    {"float", EBL_F32}, {"double", EBL_F64}, {"int", EBL_I32},
    {"byte", EBL_U8}, {"f32", EBL_F32}, {"f64", EBL_F64},
    {"i32", EBL_I32}, {"u8", EBL_U8}
  };
  for (int i = 0; i < EBL_NDTYPES; i++)
    if (strcmp(name, dtype_names[i]) == 0) return i;
  for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
    if (strcmp(name, alias[i].name) == 0) return alias[i].dtype;
  return -1;
}

int ebl_dtype_is_float(ebl_dtype dtype) {
  return dtype == EBL_F32 || dtype == EBL_F64;
}

/* Ranks: U8 < I32 < F32 < F64. */
ebl_dtype ebl_dtype_promote(ebl_dtype a, ebl_dtype b) {
  static const int rank[EBL_NDTYPES] = { 2, 3, 1, 0 };
  return rank[a] >= rank[b] ? a : b;
}

const char *ebl_device_name(ebl_device device) {
  return device == EBL_CPU ? "cpu" : device == EBL_CUDA ? "cuda" : "?";
}

/* Adds delta bytes to a device's count and raises the peak. */
static void account(ebl_device device, size_t nbytes, int sign) {
  if (sign > 0) {
    __atomic_add_fetch(&live_bytes[device], nbytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&live_storages, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_allocations, 1, __ATOMIC_RELAXED);
    size_t now = ebl_memory_live();
    size_t peak = __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
    while (now > peak &&
           !__atomic_compare_exchange_n(&peak_bytes, &peak, now, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      ;
  } else {
    __atomic_sub_fetch(&live_bytes[device], nbytes, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&live_storages, 1, __ATOMIC_RELAXED);
  }
}

ebl_status ebl_storage_new(ebl_storage **res, size_t nbytes,
                           ebl_device device) {
  const ebl_backend *be = ebl_backend_for(device);
  if (!be) return ebl_backend_missing("storage", device);
  ebl_storage *s = malloc(sizeof *s);
  if (!s) return ebl_fail(EBL_ENOMEM, "storage: out of host memory");
  s->data = be->alloc(nbytes);
  if (!s->data) {
    free(s);
    if (be->alloc_failed) return be->alloc_failed(nbytes);
    return ebl_fail(EBL_ENOMEM, "storage: cannot allocate %zu bytes on %s",
                    nbytes, ebl_device_name(device));
  }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->device = device;
  account(device, nbytes, 1);
  *res = s;
  return EBL_OK;
}

void ebl_storage_retain(ebl_storage *s) {
  __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED);
}

void ebl_storage_release(ebl_storage *s) {
  if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) != 0)
    return;
  ebl_backend_for(s->device)->free(s->data);
  account(s->device, s->nbytes, -1);
  free(s);
}

size_t ebl_memory_live(void) {
  size_t total = 0;
  for (int d = 0; d < EBL_NDEVICES; d++)
    total += __atomic_load_n(&live_bytes[d], __ATOMIC_RELAXED);
  return total;
}

size_t ebl_memory_live_on(ebl_device device) {
  if ((unsigned)device >= EBL_NDEVICES) return 0;
  return __atomic_load_n(&live_bytes[device], __ATOMIC_RELAXED);
}

size_t ebl_memory_peak(void) {
  return __atomic_load_n(&peak_bytes, __ATOMIC_RELAXED);
}

int64_t ebl_storage_count(void) {
  return __atomic_load_n(&live_storages, __ATOMIC_RELAXED);
}

int64_t ebl_allocation_count(void) {
  return __atomic_load_n(&total_allocations, __ATOMIC_RELAXED);
}

/* CIFAR-10 and CIFAR-100 binary files: fixed-size records of label
   byte(s) followed by a 3 x 32 x 32 image stored channel by channel,
   which is already the N x C x H x W layout of ebl's datasets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core.h"
#include "data/data.h"
#include "interrupt.h"

#define CIFAR_PIXELS (3 * 32 * 32)

/* Records read per fread call, between polls of the interrupt flag. */
#define CIFAR_CHUNK 1000

/* What one kind of file looks like. */
typedef struct cifar_format {
  const char *name;
  int label_bytes;     /* 1, or 2: coarse then fine */
  int classes;         /* of the (fine) label */
  int coarse_classes;  /* of the coarse label, or 0 */
} cifar_format;

static const cifar_format FORMATS[] = {
  {"cifar10", 1, 10, 0},
  {"cifar100", 2, 100, 20},
};

/* The record count of the file at path, checked from its size. */
static ebl_status count_records(const cifar_format *fmt, const char *path,
                                int64_t *count) {
  struct stat st;
  size_t record = (size_t)fmt->label_bytes + CIFAR_PIXELS;
  if (stat(path, &st) != 0)
    return ebl_fail(EBL_EARG, "%s: %s: %s", fmt->name, path,
                    strerror(errno));
  if (!S_ISREG(st.st_mode))
    return ebl_fail(EBL_EARG, "%s: %s: not a regular file", fmt->name,
                    path);
  if (st.st_size == 0 || (size_t)st.st_size % record != 0)
    return ebl_fail(EBL_EARG, "%s: %s: size %lld bytes is not a nonzero "
                    "multiple of the %zu-byte record", fmt->name, path,
                    (long long)st.st_size, record);
  *count = (int64_t)((size_t)st.st_size / record);
  return EBL_OK;
}

/* Checks a label byte of record i against its class count. */
static ebl_status check_label(const cifar_format *fmt, const char *path,
                              int value, int classes, int64_t i) {
  if (value < classes)
    return EBL_OK;
  return ebl_fail(EBL_EARG, "%s: %s: label %d in record %lld is out of "
                  "range 0..%d", fmt->name, path, value, (long long)i,
                  classes - 1);
}

/* Splits n records at raw into the dataset from sample `first` on. */
static ebl_status unpack(const cifar_format *fmt, const char *path,
                         const uint8_t *raw, int64_t n, int64_t first,
                         int64_t file_first, ebl_dataset *ds) {
  size_t record = (size_t)fmt->label_bytes + CIFAR_PIXELS;
  uint8_t *images = ebl_tensor_data(&ds->images);
  int32_t *labels = ebl_tensor_data(&ds->labels);
  int32_t *coarse = ebl_tensor_data(&ds->coarse);
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *r = raw + (size_t)i * record;
    int fine = r[fmt->label_bytes - 1];
    EBL_TRY(check_label(fmt, path, fine, fmt->classes, file_first + i));
    labels[first + i] = fine;
    if (fmt->label_bytes == 2) {
      EBL_TRY(check_label(fmt, path, r[0], fmt->coarse_classes,
                          file_first + i));
      coarse[first + i] = r[0];
    }
    memcpy(images + (size_t)(first + i) * CIFAR_PIXELS,
           r + fmt->label_bytes, CIFAR_PIXELS);
  }
  return EBL_OK;
}

/* Reads the count records of one file into the dataset at `first`. */
static ebl_status read_file(const cifar_format *fmt, const char *path,
                            int64_t count, int64_t first, uint8_t *raw,
                            ebl_dataset *ds) {
  size_t record = (size_t)fmt->label_bytes + CIFAR_PIXELS;
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return ebl_fail(EBL_EARG, "%s: %s: %s", fmt->name, path,
                    strerror(errno));
  ebl_status st = EBL_OK;
  for (int64_t done = 0; done < count && st == EBL_OK;) {
    int64_t n = count - done < CIFAR_CHUNK ? count - done : CIFAR_CHUNK;
    if (ebl_interrupted())
      st = ebl_fail(EBL_EINTR, "interrupted");
    else if (fread(raw, record, (size_t)n, fp) != (size_t)n)
      st = ebl_fail(EBL_EARG, "%s: %s: read failed after %lld records "
                    "(%s)", fmt->name, path, (long long)done,
                    ferror(fp) ? strerror(errno) : "file shrank");
    else
      st = unpack(fmt, path, raw, n, first + done, done, ds);
    done += n;
  }
  fclose(fp);
  return st;
}

/* Allocates the dataset's tensors for n records. */
static ebl_status alloc_dataset(const cifar_format *fmt, int64_t n,
                                ebl_dataset *ds) {
  int64_t shape[4] = {n, 3, 32, 32};
  EBL_TRY(ebl_tensor_empty(&ds->images, EBL_U8, 4, shape, EBL_CPU));
  EBL_TRY(ebl_tensor_empty(&ds->labels, EBL_I32, 1, &n, EBL_CPU));
  if (fmt->label_bytes == 2)
    EBL_TRY(ebl_tensor_empty(&ds->coarse, EBL_I32, 1, &n, EBL_CPU));
  ds->classes = fmt->classes;
  return EBL_OK;
}

/* Sizes every file, allocates, then reads them in order. */
static ebl_status read_all(const cifar_format *fmt,
                           const char *const *paths, int npaths,
                           ebl_dataset *ds) {
  int64_t counts[64], total = 0, first = 0;
  if (npaths < 1 || npaths > 64)
    return ebl_fail(EBL_EARG, "%s: 1..64 files expected, got %d",
                    fmt->name, npaths);
  for (int i = 0; i < npaths; i++) {
    EBL_TRY(count_records(fmt, paths[i], &counts[i]));
    total += counts[i];
  }
  EBL_TRY(alloc_dataset(fmt, total, ds));
  size_t record = (size_t)fmt->label_bytes + CIFAR_PIXELS;
  uint8_t *raw = malloc(record * CIFAR_CHUNK);
  if (raw == NULL)
    return ebl_fail(EBL_ENOMEM, "%s: out of memory", fmt->name);
  ebl_status st = EBL_OK;
  for (int i = 0; i < npaths && st == EBL_OK; i++) {
    st = read_file(fmt, paths[i], counts[i], first, raw, ds);
    first += counts[i];
  }
  free(raw);
  return st;
}

/* Reads CIFAR files of one kind; nothing is kept on failure. */
ebl_status ebl_cifar_read(ebl_dataset *ds, ebl_cifar_kind kind,
                          const char *const *paths, int npaths) {
  if (kind != EBL_CIFAR10 && kind != EBL_CIFAR100)
    return ebl_fail(EBL_EARG, "cifar: unknown kind %d", (int)kind);
  memset(ds, 0, sizeof *ds);
  ebl_status st = read_all(&FORMATS[kind], paths, npaths, ds);
  if (st != EBL_OK)
    ebl_dataset_release(ds);
  return st;
}

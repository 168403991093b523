/* IDX files, the format of MNIST and Fashion-MNIST: a big-endian magic
   0x0000TTNN (TT the element type, NN the number of dims), NN sizes of
   4 bytes, then the elements row-major. Read through zlib, which tells
   a gzip stream by its magic (1f 8b) and reads other files as they are. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core.h"
#include "data/data.h"
#include "interrupt.h"

/* Bytes read per gzread call, between polls of the interrupt flag. */
#define IDX_CHUNK ((size_t)1 << 20)

/* Most bytes of elements a file may promise: 1 TiB. */
#define IDX_MAX_BYTES ((uint64_t)1 << 40)

/* One element type of the format and the dtype it becomes. */
typedef struct idx_type {
  int code;
  const char *name;
  int size;
  ebl_dtype dtype;
} idx_type;

static const idx_type IDX_TYPES[] = {
  {0x08, "uint8", 1, EBL_U8}, {0x09, "int8", 1, EBL_I32},
  {0x0B, "int16", 2, EBL_I32}, {0x0C, "int32", 4, EBL_I32},
  {0x0D, "float32", 4, EBL_F32}, {0x0E, "float64", 8, EBL_F64},
};

/* An open IDX file and what its header says. */
typedef struct idx_file {
  const char *path;
  gzFile gz;
  uint32_t magic;
  const idx_type *type;
  int ndim;
  int64_t shape[EBL_MAX_DIMS];
  uint64_t payload;     /* bytes of elements the dims promise */
  uint64_t total;       /* header and elements */
} idx_file;

/* ---- reading bytes ---- */

/* zlib's message for f without the "<path>: " it starts with. */
static const char *zlib_message(const idx_file *f, int *code) {
  const char *msg = gzerror(f->gz, code);
  size_t len = strlen(f->path);
  if (strncmp(msg, f->path, len) == 0 && msg[len] == ':')
    msg += len + (msg[len + 1] == ' ' ? 2 : 1);
  return *code == Z_ERRNO ? strerror(errno) : msg;
}

/* Fails with the zlib or system error of f, if it has one. A stream
   that ends early (Z_BUF_ERROR) is left to the callers, which report
   it as a truncated file. */
static ebl_status stream_error(const idx_file *f) {
  int code = Z_OK;
  const char *msg = zlib_message(f, &code);
  if (code == Z_OK || code == Z_BUF_ERROR)
    return EBL_OK;
  if (code == Z_ERRNO)
    return ebl_fail(EBL_EARG, "idx: %s: %s", f->path, msg);
  return ebl_fail(EBL_EARG, "idx: %s: corrupt gzip data (%s)", f->path,
                  msg);
}

/* Nonzero when f is a gzip stream that ended before its trailer. */
static int stream_cut(const idx_file *f) {
  int code = Z_OK;
  gzerror(f->gz, &code);
  return code == Z_BUF_ERROR;
}

/* Reads up to n bytes into buf, in chunks; *got is what came before the
   end of the stream (or the point where a gzip stream was cut). Fails
   on other stream errors and on Ctrl-C. */
static ebl_status read_bytes(idx_file *f, void *buf, size_t n,
                             size_t *got) {
  *got = 0;
  while (*got < n) {
    if (ebl_interrupted())
      return ebl_fail(EBL_EINTR, "interrupted");
    size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
    int r = gzread(f->gz, (char *)buf + *got, (unsigned)want);
    if (r < 0)
      EBL_TRY(stream_error(f));
    if (r <= 0)
      break;
    *got += (size_t)r;
  }
  return EBL_OK;
}

/* Fails with "truncated" when only `got` of the `want` bytes of a part
   of the file came; `before` counts the bytes of earlier parts and
   `expected` the bytes the whole file should have. */
static ebl_status check_complete(const idx_file *f, size_t got,
                                 size_t want, uint64_t before,
                                 uint64_t expected) {
  if (got == want)
    return EBL_OK;
  return ebl_fail(EBL_EARG,
                  "idx: %s: truncated (expected %llu bytes, got %llu%s)",
                  f->path, (unsigned long long)expected,
                  (unsigned long long)(before + got),
                  stream_cut(f) ? "; the gzip stream is cut short" : "");
}

/* Counts the bytes left after the elements; fails when there are any,
   and also when the stream ends in a broken gzip trailer. */
static ebl_status check_trailing(idx_file *f) {
  char rest[8192];
  uint64_t extra = 0;
  int r;
  while ((r = gzread(f->gz, rest, sizeof rest)) > 0)
    extra += (uint64_t)r;
  if (r < 0)
    EBL_TRY(stream_error(f));
  if (r < 0 && extra == 0 && stream_cut(f))
    return ebl_fail(EBL_EARG, "idx: %s: truncated (the gzip stream is cut "
                    "short after the elements)", f->path);
  if (extra > 0)
    return ebl_fail(EBL_EARG, "idx: %s: %llu trailing bytes after the "
                    "%llu the dims promise", f->path,
                    (unsigned long long)extra,
                    (unsigned long long)f->total);
  return EBL_OK;
}

/* ---- the header ---- */

/* Decodes a big-endian 32-bit word. */
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
         (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the magic word: two zero bytes, a known type, 1..8 dims. */
static ebl_status parse_magic(idx_file *f, uint32_t expected) {
  uint32_t m = f->magic;
  if (expected != 0 && m != expected)
    return ebl_fail(EBL_EARG, "idx: %s: bad magic 0x%08x (expected "
                    "0x%08x)", f->path, m, expected);
  if (m >> 16 != 0)
    return ebl_fail(EBL_EARG, "idx: %s: bad magic 0x%08x (an IDX file "
                    "starts with two zero bytes)", f->path, m);
  f->type = NULL;
  for (size_t i = 0; i < sizeof IDX_TYPES / sizeof IDX_TYPES[0]; i++)
    if (IDX_TYPES[i].code == (int)(m >> 8 & 0xff))
      f->type = &IDX_TYPES[i];
  if (f->type == NULL)
    return ebl_fail(EBL_EARG, "idx: %s: bad magic 0x%08x (unknown type "
                    "byte 0x%02x)", f->path, m, m >> 8 & 0xff);
  f->ndim = (int)(m & 0xff);
  if (f->ndim < 1 || f->ndim > EBL_MAX_DIMS)
    return ebl_fail(EBL_EARG, "idx: %s: bad magic 0x%08x (%d dims, "
                    "1..%d supported)", f->path, m, f->ndim, EBL_MAX_DIMS);
  return EBL_OK;
}

/* Reads the sizes and works out the bytes they promise. */
static ebl_status parse_dims(idx_file *f) {
  uint8_t raw[4 * EBL_MAX_DIMS];
  size_t want = 4 * (size_t)f->ndim, got;
  EBL_TRY(read_bytes(f, raw, want, &got));
  if (got < want) {
    return ebl_fail(EBL_EARG, "idx: %s: truncated (the header needs %zu "
                    "bytes, got %zu)", f->path, 4 + want, 4 + got);
  }
  uint64_t bytes = (uint64_t)f->type->size;
  for (int d = 0; d < f->ndim; d++) {
    f->shape[d] = be32(raw + 4 * d);
    if (f->shape[d] != 0 && bytes > IDX_MAX_BYTES / (uint64_t)f->shape[d])
      return ebl_fail(EBL_EARG, "idx: %s: dims promise more than %llu "
                      "bytes (dim %d is %lld)", f->path,
                      (unsigned long long)IDX_MAX_BYTES, d + 1,
                      (long long)f->shape[d]);
    bytes *= (uint64_t)f->shape[d];
  }
  f->payload = bytes;
  f->total = 4 + want + bytes;
  return EBL_OK;
}

/* Opens path and reads its header; expected is a magic to insist on, or
   0 for any valid one. */
static ebl_status open_idx(idx_file *f, const char *path,
                           uint32_t expected) {
  memset(f, 0, sizeof *f);
  f->path = path;
  errno = 0;
  f->gz = gzopen(path, "rb");
  if (f->gz == NULL)
    return ebl_fail(EBL_EARG, "idx: %s: %s", path,
                    errno ? strerror(errno) : "cannot open");
  uint8_t magic[4];
  size_t got;
  EBL_TRY(read_bytes(f, magic, 4, &got));
  if (got < 4) {
    return ebl_fail(EBL_EARG, "idx: %s: %s", path, got == 0 ?
                    "empty file" : "truncated (no complete magic)");
  }
  f->magic = be32(magic);
  EBL_TRY(parse_magic(f, expected));
  return parse_dims(f);
}

/* ---- the elements ---- */

/* Converts n big-endian elements of type code at raw into dst. */
static void convert(const idx_type *type, const uint8_t *raw, size_t n,
                    void *dst) {
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = raw + i * (size_t)type->size;
    uint32_t w = type->size == 4 ? be32(p) : 0;
    switch (type->code) {
    case 0x09: ((int32_t *)dst)[i] = (int8_t)p[0]; break;
    case 0x0B: ((int32_t *)dst)[i] = (int16_t)(p[0] << 8 | p[1]); break;
    case 0x0C: ((int32_t *)dst)[i] = (int32_t)w; break;
    case 0x0D: memcpy((float *)dst + i, &w, 4); break;
    default: {
      uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
      memcpy((double *)dst + i, &v, 8);
    }
    }
  }
}

/* Reads the elements into the fresh tensor t. */
static ebl_status read_elements(idx_file *f, const ebl_tensor *t) {
  size_t want = (size_t)f->payload, got;
  uint64_t before = f->total - f->payload;
  if (f->type->code == 0x08) {
    EBL_TRY(read_bytes(f, ebl_tensor_data(t), want, &got));
    return check_complete(f, got, want, before, f->total);
  }
  uint8_t *raw = malloc(want ? want : 1);
  if (raw == NULL)
    return ebl_fail(EBL_ENOMEM, "idx: %s: out of memory for %zu bytes",
                    f->path, want);
  ebl_status st = read_bytes(f, raw, want, &got);
  if (st == EBL_OK)
    st = check_complete(f, got, want, before, f->total);
  if (st == EBL_OK)
    convert(f->type, raw, want / (size_t)f->type->size,
            ebl_tensor_data(t));
  free(raw);
  return st;
}

/* Reads a whole file after its header check. */
static ebl_status read_idx(ebl_tensor *res, const char *path,
                           uint32_t expected) {
  idx_file f;
  ebl_tensor t = {0};
  ebl_status st = open_idx(&f, path, expected);
  if (st == EBL_OK)
    st = ebl_tensor_empty(&t, f.type->dtype, f.ndim, f.shape, EBL_CPU);
  if (st == EBL_OK)
    st = read_elements(&f, &t);
  if (st == EBL_OK)
    st = check_trailing(&f);
  if (f.gz != NULL)
    gzclose(f.gz);
  if (st != EBL_OK) {
    ebl_tensor_release(&t);
    return st;
  }
  *res = t;
  return EBL_OK;
}

/* Any valid IDX file, as a tensor of its shape. */
ebl_status ebl_idx_read(ebl_tensor *res, const char *path) {
  return read_idx(res, path, 0);
}

/* ---- MNIST-style pairs ---- */

/* Turns uint8 labels into int32 ones, each checked to be < classes. */
static ebl_status labels_to_int(ebl_tensor *res, const ebl_tensor *raw,
                                const char *path, int classes) {
  const uint8_t *v = ebl_tensor_data(raw);
  int64_t n = raw->shape[0];
  for (int64_t i = 0; i < n; i++)
    if (v[i] >= classes)
      return ebl_fail(EBL_EARG, "mnist: %s: label %d at index %lld is "
                      "out of range 0..%d", path, v[i], (long long)i,
                      classes - 1);
  return ebl_to_dtype(res, raw, EBL_I32);
}

/* Checks the pair agrees and fills ds. */
static ebl_status mnist_pair(ebl_dataset *ds, const ebl_tensor *images,
                             const ebl_tensor *labels, const char *ipath,
                             const char *lpath, int classes) {
  if (images->shape[0] != labels->shape[0])
    return ebl_fail(EBL_EARG, "mnist: %s holds %lld images but %s holds "
                    "%lld labels", ipath, (long long)images->shape[0],
                    lpath, (long long)labels->shape[0]);
  int64_t shape[4] = {images->shape[0], 1, images->shape[1],
                      images->shape[2]};
  EBL_TRY(labels_to_int(&ds->labels, labels, lpath, classes));
  ebl_status st = ebl_tensor_reshape(&ds->images, images, 4, shape);
  if (st != EBL_OK)
    ebl_tensor_release(&ds->labels);
  return st;
}

/* An MNIST-style pair of image and label files, checked together. */
ebl_status ebl_mnist_read(ebl_dataset *ds, const char *images_path,
                          const char *labels_path, int classes) {
  ebl_tensor images = {0}, labels = {0};
  if (classes < 1 || classes > 256)
    return ebl_fail(EBL_EARG, "mnist: classes must be in 1..256, got %d",
                    classes);
  memset(ds, 0, sizeof *ds);
  ebl_status st = read_idx(&images, images_path, 0x00000803);
  if (st == EBL_OK)
    st = read_idx(&labels, labels_path, 0x00000801);
  if (st == EBL_OK)
    st = mnist_pair(ds, &images, &labels, images_path, labels_path,
                    classes);
  ebl_tensor_release(&images);
  ebl_tensor_release(&labels);
  ds->classes = classes;
  return st;
}

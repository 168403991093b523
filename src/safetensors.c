/* Safetensors files (see safetensors.h). The JSON header is written by
   hand and read back by a small recursive-descent parser that knows the
   format's shape; tensor bytes are copied as they lie in memory, which
   is the format's little-endian order on the hosts ebl builds for. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "interrupt.h"
#include "safetensors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c copies tensor bytes as they are (little-endian)"
#endif

/* Bytes copied per fread/fwrite, between polls of the interrupt flag. */
#define ST_CHUNK ((size_t)16 << 20)

/* Deepest nesting of JSON values the parser follows. */
#define ST_MAX_DEPTH 64

/* ---------------------------------------------------------------- */
/* Dtypes                                                            */

/* A dtype of the format, its element size and the ebl dtype it reads
   as (-1: known to the format, not read by ebl). */
typedef struct st_dtype {
  const char *name;
  int size;
  int dtype;
} st_dtype;

static const st_dtype DTYPES[] = {
  {"F32", 4, EBL_F32}, {"F64", 8, EBL_F64}, {"I32", 4, EBL_I32},
  {"U8", 1, EBL_U8}, {"BOOL", 1, -1}, {"I8", 1, -1}, {"I16", 2, -1},
  {"U16", 2, -1}, {"F16", 2, -1}, {"BF16", 2, -1}, {"U32", 4, -1},
  {"I64", 8, -1}, {"U64", 8, -1}, {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1},
};
#define NDTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

/* The index in DTYPES of a format dtype name, or -1. */
static int dtype_by_name(const char *name) {
  for (int i = 0; i < NDTYPES; i++)
    if (strcmp(DTYPES[i].name, name) == 0)
      return i;
  return -1;
}

/* The index in DTYPES of an ebl dtype. */
static int dtype_of(ebl_dtype dtype) {
  for (int i = 0; i < NDTYPES; i++)
    if (DTYPES[i].dtype == (int)dtype)
      return i;
  return -1;
}

/* ---------------------------------------------------------------- */
/* A growing text buffer for the header                              */

typedef struct text {
  char *data;
  size_t len, cap;
  int failed;
} text;

static void text_put(text *t, const char *s, size_t n) {
  if (t->failed)
    return;
  if (t->len + n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + n + 1)
      cap *= 2;
    char *grown = realloc(t->data, cap);
    if (grown == NULL) {
      t->failed = 1;
      return;
    }
    t->data = grown;
    t->cap = cap;
  }
  memcpy(t->data + t->len, s, n);
  t->len += n;
  t->data[t->len] = '\0';
}

static void text_str(text *t, const char *s) { text_put(t, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static void text_printf(text *t, const char *fmt, ...) {
  char buf[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  text_put(t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* s as a JSON string: quotes, backslashes and control bytes escaped;
   other bytes (UTF-8) as they are. */
static void text_json_string(text *t, const char *s) {
  text_put(t, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      text_put(t, esc, 2);
    } else if (c < 0x20) {
      text_printf(t, "\\u%04x", c);
    } else {
      text_put(t, (const char *)&c, 1);
    }
  }
  text_put(t, "\"", 1);
}

/* ---------------------------------------------------------------- */
/* Writing                                                           */

/* The inputs of a write, checked before anything is allocated. */
typedef struct write_job {
  const char *path;
  int n;
  const char *const *names;
  const ebl_tensor *tensors;
  int *order;            /* layout: element size descending, then name */
} write_job;

static const char *const *sort_names;

static int by_name(const void *a, const void *b) {
  return strcmp(sort_names[*(const int *)a], sort_names[*(const int *)b]);
}

/* Fails unless every tensor has a name of its own and a dtype the
   format knows. */
static ebl_status check_tensors(const write_job *w) {
  for (int i = 0; i < w->n; i++) {
    if (w->names[i] == NULL || strcmp(w->names[i], "__metadata__") == 0)
      return ebl_fail(EBL_EARG, "save: %s: '%s' cannot name a tensor",
                      w->path, w->names[i] ? w->names[i] : "(null)");
    EBL_TRY(ebl_need_tensor("save", &w->tensors[i], w->names[i]));
    if (dtype_of(w->tensors[i].dtype) < 0)
      return ebl_fail(EBL_EARG, "save: %s: tensor '%s' has dtype %s",
                      w->path, w->names[i],
                      ebl_dtype_name(w->tensors[i].dtype));
  }
  return EBL_OK;
}

/* Sorts the tensors into their layout and fails on a repeated name. */
static ebl_status layout(write_job *w) {
  int *by = malloc(sizeof(int) * (size_t)(w->n > 0 ? w->n : 1));
  if (by == NULL)
    return ebl_fail(EBL_ENOMEM, "save: out of memory");
  for (int i = 0; i < w->n; i++)
    by[i] = i;
  sort_names = w->names;
  qsort(by, (size_t)w->n, sizeof(int), by_name);
  for (int i = 1; i < w->n; i++)
    if (strcmp(w->names[by[i]], w->names[by[i - 1]]) == 0) {
      const char *name = w->names[by[i]];
      free(by);
      return ebl_fail(EBL_EARG, "save: %s: two tensors named '%s'",
                      w->path, name);
    }
  int k = 0;
  for (int size = 8; size >= 1; size /= 2)
    for (int i = 0; i < w->n; i++)
      if ((int)ebl_dtype_size(w->tensors[by[i]].dtype) == size)
        w->order[k++] = by[i];
  free(by);
  return EBL_OK;
}

/* Appends one tensor's entry; *offset advances past its bytes. */
static void header_entry(text *h, const char *name, const ebl_tensor *t,
                         uint64_t *offset) {
  uint64_t bytes = (uint64_t)ebl_tensor_numel(t) * ebl_dtype_size(t->dtype);
  text_json_string(h, name);
  text_str(h, ":{\"dtype\":\"");
  text_str(h, DTYPES[dtype_of(t->dtype)].name);
  text_str(h, "\",\"shape\":[");
  for (int d = 0; d < t->ndim; d++)
    text_printf(h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
  text_printf(h, "],\"data_offsets\":[%llu,%llu]}",
              (unsigned long long)*offset,
              (unsigned long long)(*offset + bytes));
  *offset += bytes;
}

/* The JSON header, padded with spaces so that the data starts at a
   multiple of 8 bytes. */
static ebl_status build_header(text *h, const write_job *w, int nmeta,
                               const char *const *keys,
                               const char *const *values) {
  text_str(h, "{");
  if (nmeta > 0) {
    text_str(h, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i)
        text_str(h, ",");
      text_json_string(h, keys[i]);
      text_str(h, ":");
      text_json_string(h, values[i]);
    }
    text_str(h, "}");
  }
  uint64_t offset = 0;
  for (int k = 0; k < w->n; k++) {
    if (k || nmeta > 0)
      text_str(h, ",");
    header_entry(h, w->names[w->order[k]], &w->tensors[w->order[k]],
                 &offset);
  }
  text_str(h, "}");
  while ((8 + h->len) % 8 != 0)
    text_str(h, " ");
  if (h->failed)
    return ebl_fail(EBL_ENOMEM, "save: %s: out of memory for the header",
                    w->path);
  return EBL_OK;
}

/* Writes n bytes in chunks, polling the interrupt flag. */
static ebl_status write_bytes(FILE *f, const char *path, const void *data,
                              size_t n) {
  const char *p = data;
  while (n > 0) {
    if (ebl_interrupted())
      return ebl_fail(EBL_EINTR, "interrupted");
    size_t chunk = n < ST_CHUNK ? n : ST_CHUNK;
    if (fwrite(p, 1, chunk, f) != chunk)
      return ebl_fail(EBL_EARG, "save: %s: %s", path, strerror(errno));
    p += chunk;
    n -= chunk;
  }
  return EBL_OK;
}

/* Writes the elements of t, row-major, copying it to a dense host
   tensor first when it is not one. */
static ebl_status write_tensor(FILE *f, const char *path,
                               const ebl_tensor *t) {
  size_t bytes = (size_t)ebl_tensor_numel(t) * ebl_dtype_size(t->dtype);
  if (bytes == 0)
    return EBL_OK;
  ebl_tensor host = {0}, dense = {0};
  EBL_TRY(ebl_to_device(&host, t, EBL_CPU));
  ebl_status st = ebl_tensor_contiguous(&dense, &host);
  ebl_tensor_release(&host);
  if (st != EBL_OK)
    return st;
  st = write_bytes(f, path, ebl_tensor_data(&dense), bytes);
  ebl_tensor_release(&dense);
  return st;
}

/* The header length, the header and every tensor, into f. */
static ebl_status write_contents(FILE *f, const write_job *w,
                                 const text *h) {
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)((uint64_t)h->len >> (8 * i));
  EBL_TRY(write_bytes(f, w->path, len, 8));
  EBL_TRY(write_bytes(f, w->path, h->data, h->len));
  for (int k = 0; k < w->n; k++)
    EBL_TRY(write_tensor(f, w->path, &w->tensors[w->order[k]]));
  if (fflush(f) != 0 || fsync(fileno(f)) != 0)
    return ebl_fail(EBL_EARG, "save: %s: %s", w->path, strerror(errno));
  return EBL_OK;
}

/* Flushes the folder holding path, so that a rename in it is on disk. */
static ebl_status sync_folder(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    strcpy(dir, ".");
  } else {
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof dir)
      return ebl_fail(EBL_EARG, "save: %s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return ebl_fail(EBL_EARG, "save: %s: cannot open its folder %s: %s",
                    path, dir, strerror(errno));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0 && errno != EINVAL)
    return ebl_fail(EBL_EARG, "save: %s: fsync of %s: %s", path, dir,
                    strerror(errno));
  return EBL_OK;
}

/* Writes to path.tmp.<pid>, then renames it over path. */
static ebl_status write_atomically(const write_job *w, const text *h) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", w->path, (long)getpid())
      >= (int)sizeof tmp)
    return ebl_fail(EBL_EARG, "save: %s: path too long", w->path);
  FILE *f = fopen(tmp, "wb");
  if (f == NULL)
    return ebl_fail(EBL_EARG, "save: cannot write %s (through %s): %s",
                    w->path, tmp, strerror(errno));
  ebl_status st = write_contents(f, w, h);
  if (fclose(f) != 0 && st == EBL_OK)
    st = ebl_fail(EBL_EARG, "save: %s: %s", tmp, strerror(errno));
  if (st == EBL_OK && rename(tmp, w->path) != 0)
    st = ebl_fail(EBL_EARG, "save: cannot rename %s to %s: %s", tmp,
                  w->path, strerror(errno));
  if (st != EBL_OK) {
    unlink(tmp);
    return st;
  }
  return sync_folder(w->path);
}

ebl_status ebl_safetensors_write(const char *path, int n,
                                 const char *const *names,
                                 const ebl_tensor *tensors, int nmeta,
                                 const char *const *keys,
                                 const char *const *values) {
  if (path == NULL || n < 0 || nmeta < 0)
    return ebl_fail(EBL_EARG, "save: bad arguments");
  write_job w = {path, n, names, tensors, NULL};
  EBL_TRY(check_tensors(&w));
  w.order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  if (w.order == NULL)
    return ebl_fail(EBL_ENOMEM, "save: out of memory");
  text h = {0};
  ebl_status st = layout(&w);
  if (st == EBL_OK)
    st = build_header(&h, &w, nmeta, keys, values);
  if (st == EBL_OK)
    st = write_atomically(&w, &h);
  free(h.data);
  free(w.order);
  return st;
}

/* ---------------------------------------------------------------- */
/* Parsing the header                                                */

/* One tensor as the header describes it. */
typedef struct st_entry {
  char *name;
  int dtype;                     /* index in DTYPES, -1 before seen */
  int ndim;                      /* -1 before seen */
  int64_t shape[EBL_MAX_DIMS];
  uint64_t begin, end;
  int have_offsets;
} st_entry;

typedef struct parser {
  const char *path;
  const char *s;
  size_t n, pos;
  st_entry *entries;
  int nentries, cap;
  ebl_safetensors *res;
  int have_meta;
} parser;

/* A JSON syntax fault at the current position. */
static ebl_status bad_json(const parser *p, const char *what) {
  return ebl_fail(EBL_EARG, "load: %s: the header is not well-formed JSON "
                  "(%s at byte %zu of %zu)", p->path, what, p->pos, p->n);
}

/* A fault of the header's content. */
__attribute__((format(printf, 2, 3)))
static ebl_status bad_header(const parser *p, const char *fmt, ...) {
  char what[300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return ebl_fail(EBL_EARG, "load: %s: %s", p->path, what);
}

static void skip_ws(parser *p) {
  while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                           p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
    p->pos++;
}

/* The next byte after white space (0 at the end). */
static char peek(parser *p) {
  skip_ws(p);
  return p->pos < p->n ? p->s[p->pos] : '\0';
}

static ebl_status expect(parser *p, char c) {
  if (peek(p) != c) {
    char what[32];
    snprintf(what, sizeof what, "expected '%c'", c);
    return bad_json(p, what);
  }
  p->pos++;
  return EBL_OK;
}

/* Four hex digits of a \u escape. */
static ebl_status hex4(parser *p, unsigned *code) {
  *code = 0;
  for (int i = 0; i < 4; i++, p->pos++) {
    char c = p->pos < p->n ? p->s[p->pos] : '\0';
    int v = c >= '0' && c <= '9' ? c - '0'
          : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0)
      return bad_json(p, "bad \\u escape");
    *code = *code * 16 + (unsigned)v;
  }
  return EBL_OK;
}

/* A \u escape (with its low surrogate, if any) as UTF-8. */
static ebl_status unicode_escape(parser *p, text *out) {
  unsigned code;
  EBL_TRY(hex4(p, &code));
  if (code >= 0xD800 && code < 0xDC00) {
    unsigned low;
    if (p->pos + 2 > p->n || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
      return bad_json(p, "lone surrogate");
    p->pos += 2;
    EBL_TRY(hex4(p, &low));
    if (low < 0xDC00 || low >= 0xE000)
      return bad_json(p, "bad surrogate pair");
    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
  }
  if (code == 0)
    return bad_json(p, "\\u0000 in a string");
  char u[4];
  int len = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  static const unsigned char lead[] = {0, 0, 0xC0, 0xE0, 0xF0};
  for (int i = len - 1; i > 0; i--, code >>= 6)
    u[i] = (char)(0x80 | (code & 0x3F));
  u[0] = (char)(lead[len] | code);
  text_put(out, u, (size_t)len);
  return EBL_OK;
}

/* One escape after a backslash. */
static ebl_status string_escape(parser *p, text *out) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  char c = p->pos < p->n ? p->s[p->pos] : '\0';
  p->pos++;
  if (c == 'u')
    return unicode_escape(p, out);
  const char *k = c ? strchr(from, c) : NULL;
  if (k == NULL)
    return bad_json(p, "bad escape in a string");
  text_put(out, &to[k - from], 1);
  return EBL_OK;
}

/* A JSON string into *res (allocated; the caller frees it). */
static ebl_status parse_string(parser *p, char **res) {
  EBL_TRY(expect(p, '"'));
  text out = {0};
  text_put(&out, "", 0);
  ebl_status st = EBL_OK;
  while (st == EBL_OK) {
    if (p->pos >= p->n) {
      st = bad_json(p, "unterminated string");
      break;
    }
    char c = p->s[p->pos++];
    if (c == '"')
      break;
    if ((unsigned char)c < 0x20)
      st = bad_json(p, "control byte in a string");
    else if (c == '\\')
      st = string_escape(p, &out);
    else
      text_put(&out, &c, 1);
  }
  if (st == EBL_OK && out.failed)
    st = ebl_fail(EBL_ENOMEM, "load: %s: out of memory", p->path);
  if (st != EBL_OK) {
    free(out.data);
    return st;
  }
  *res = out.data;
  return EBL_OK;
}

/* A non-negative integer (shape sizes, offsets). */
static ebl_status parse_uint(parser *p, uint64_t *res, const char *what) {
  skip_ws(p);
  size_t start = p->pos;
  uint64_t v = 0;
  while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
    unsigned d = (unsigned)(p->s[p->pos++] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return bad_header(p, "%s is too large", what);
    v = v * 10 + d;
  }
  char next = p->pos < p->n ? p->s[p->pos] : '\0';
  if (p->pos == start || next == '.' || next == 'e' || next == 'E')
    return bad_header(p, "%s must be an integer >= 0 (at byte %zu of the "
                      "header)", what, start);
  *res = v;
  return EBL_OK;
}

static ebl_status skip_value(parser *p, int depth);

/* Skips the elements of an array or the members of an object. */
static ebl_status skip_members(parser *p, char close, int depth) {
  p->pos++;
  if (peek(p) == close) {
    p->pos++;
    return EBL_OK;
  }
  for (;;) {
    if (close == '}') {
      char *key;
      EBL_TRY(parse_string(p, &key));
      free(key);
      EBL_TRY(expect(p, ':'));
    }
    EBL_TRY(skip_value(p, depth + 1));
    char c = peek(p);
    p->pos++;
    if (c == close)
      return EBL_OK;
    if (c != ',')
      return bad_json(p, close == '}' ? "expected ',' or '}'"
                                      : "expected ',' or ']'");
  }
}

/* Skips a number: JSON's grammar, loosely. */
static ebl_status skip_number(parser *p) {
  size_t start = p->pos;
  while (p->pos < p->n && strchr("+-0123456789.eE", p->s[p->pos]) &&
         p->s[p->pos] != '\0')
    p->pos++;
  return p->pos > start ? EBL_OK : bad_json(p, "expected a value");
}

/* Skips any value (members the format does not define). */
static ebl_status skip_value(parser *p, int depth) {
  if (depth > ST_MAX_DEPTH)
    return bad_json(p, "values nested too deeply");
  char c = peek(p);
  if (c == '{' || c == '[')
    return skip_members(p, c == '{' ? '}' : ']', depth);
  if (c == '"') {
    char *s;
    EBL_TRY(parse_string(p, &s));
    free(s);
    return EBL_OK;
  }
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t len = strlen(words[i]);
    if (p->pos + len <= p->n && memcmp(p->s + p->pos, words[i], len) == 0) {
      p->pos += len;
      return EBL_OK;
    }
  }
  return skip_number(p);
}

/* An array of integers >= 0: the first max into vals, all counted. */
static ebl_status parse_uint_array(parser *p, uint64_t *vals, int max,
                                   int *count, const char *what) {
  EBL_TRY(expect(p, '['));
  *count = 0;
  if (peek(p) == ']') {
    p->pos++;
    return EBL_OK;
  }
  for (;;) {
    uint64_t v = 0;
    EBL_TRY(parse_uint(p, &v, what));
    if (*count < max)
      vals[*count] = v;
    (*count)++;
    char c = peek(p);
    p->pos++;
    if (c == ']')
      return EBL_OK;
    if (c != ',')
      return bad_json(p, "expected ',' or ']'");
  }
}

/* The "dtype" of an entry. */
static ebl_status entry_dtype(parser *p, st_entry *e) {
  char *name = NULL;
  EBL_TRY(parse_string(p, &name));
  e->dtype = dtype_by_name(name);
  ebl_status st = e->dtype < 0
    ? bad_header(p, "tensor '%s' has an unknown dtype '%s'", e->name, name)
    : EBL_OK;
  free(name);
  return st;
}

/* The "shape" of an entry. */
static ebl_status entry_shape(parser *p, st_entry *e) {
  uint64_t dims[EBL_MAX_DIMS];
  int n;
  char what[200];
  snprintf(what, sizeof what, "the shape of tensor '%s'", e->name);
  EBL_TRY(parse_uint_array(p, dims, EBL_MAX_DIMS, &n, what));
  if (n > EBL_MAX_DIMS)
    return bad_header(p, "tensor '%s' has %d dims; ebl tensors have at "
                      "most %d", e->name, n, EBL_MAX_DIMS);
  for (int d = 0; d < n; d++) {
    if (dims[d] > ((uint64_t)1 << 62))
      return bad_header(p, "tensor '%s': size %llu is too large", e->name,
                        (unsigned long long)dims[d]);
    e->shape[d] = (int64_t)dims[d];
  }
  e->ndim = n;
  return EBL_OK;
}

/* The "data_offsets" of an entry: exactly [begin, end]. */
static ebl_status entry_offsets(parser *p, st_entry *e) {
  uint64_t v[2];
  int n;
  char what[200];
  snprintf(what, sizeof what, "the data_offsets of tensor '%s'", e->name);
  EBL_TRY(parse_uint_array(p, v, 2, &n, what));
  if (n != 2)
    return bad_header(p, "tensor '%s': data_offsets must be [begin, end], "
                      "got %d numbers", e->name, n);
  e->begin = v[0];
  e->end = v[1];
  e->have_offsets = 1;
  return EBL_OK;
}

/* One member of a tensor's object. */
static ebl_status entry_member(parser *p, st_entry *e) {
  char *key = NULL;
  EBL_TRY(parse_string(p, &key));
  ebl_status st = expect(p, ':');
  if (st == EBL_OK) {
    if (strcmp(key, "dtype") == 0)
      st = entry_dtype(p, e);
    else if (strcmp(key, "shape") == 0)
      st = entry_shape(p, e);
    else if (strcmp(key, "data_offsets") == 0)
      st = entry_offsets(p, e);
    else
      st = skip_value(p, 1);
  }
  free(key);
  return st;
}

/* Room for one more entry, named name (owned from here on). */
static ebl_status add_entry(parser *p, char *name, st_entry **res) {
  for (int i = 0; i < p->nentries; i++)
    if (strcmp(p->entries[i].name, name) == 0) {
      ebl_status st = bad_header(p, "tensor '%s' appears twice", name);
      free(name);
      return st;
    }
  if (p->nentries == p->cap) {
    int cap = p->cap ? 2 * p->cap : 16;
    st_entry *grown = realloc(p->entries, sizeof(st_entry) * (size_t)cap);
    if (grown == NULL) {
      free(name);
      return ebl_fail(EBL_ENOMEM, "load: %s: out of memory", p->path);
    }
    p->entries = grown;
    p->cap = cap;
  }
  st_entry *e = &p->entries[p->nentries++];
  memset(e, 0, sizeof *e);
  e->name = name;
  e->dtype = -1;
  e->ndim = -1;
  *res = e;
  return EBL_OK;
}

/* A tensor's object: {"dtype": .., "shape": [..], "data_offsets": [..]}. */
static ebl_status parse_entry(parser *p, char *name) {
  st_entry *e = NULL;
  EBL_TRY(add_entry(p, name, &e));
  if (peek(p) != '{')
    return bad_header(p, "tensor '%s' is not described by an object",
                      e->name);
  p->pos++;
  if (peek(p) != '}') {
    for (;;) {
      EBL_TRY(entry_member(p, e));
      char c = peek(p);
      p->pos++;
      if (c == '}')
        break;
      if (c != ',')
        return bad_json(p, "expected ',' or '}'");
    }
  } else {
    p->pos++;
  }
  const char *missing = e->dtype < 0 ? "dtype" : e->ndim < 0 ? "shape"
                      : !e->have_offsets ? "data_offsets" : NULL;
  if (missing)
    return bad_header(p, "tensor '%s' has no %s", e->name, missing);
  return EBL_OK;
}

/* Appends one metadata pair (both strings owned from here on). */
static ebl_status add_meta(parser *p, char *key, char *value) {
  ebl_safetensors *r = p->res;
  char **keys = realloc(r->keys, sizeof(char *) * (size_t)(r->nmeta + 1));
  if (keys != NULL)
    r->keys = keys;
  char **values = keys ? realloc(r->values, sizeof(char *) *
                                 (size_t)(r->nmeta + 1)) : NULL;
  if (values == NULL) {
    free(key);
    free(value);
    return ebl_fail(EBL_ENOMEM, "load: %s: out of memory", p->path);
  }
  r->values = values;
  r->keys[r->nmeta] = key;
  r->values[r->nmeta++] = value;
  return EBL_OK;
}

/* One "key": "value" pair of __metadata__. */
static ebl_status metadata_member(parser *p) {
  char *key = NULL, *value = NULL;
  EBL_TRY(parse_string(p, &key));
  ebl_status st = expect(p, ':');
  if (st == EBL_OK && peek(p) != '"')
    st = bad_header(p, "__metadata__ value of '%s' is not a string", key);
  if (st == EBL_OK)
    st = parse_string(p, &value);
  if (st != EBL_OK) {
    free(key);
    return st;
  }
  return add_meta(p, key, value);
}

/* "__metadata__": an object of strings. */
static ebl_status parse_metadata(parser *p) {
  if (p->have_meta)
    return bad_header(p, "__metadata__ appears twice");
  p->have_meta = 1;
  if (peek(p) != '{')
    return bad_header(p, "__metadata__ is not an object");
  p->pos++;
  if (peek(p) == '}') {
    p->pos++;
    return EBL_OK;
  }
  for (;;) {
    EBL_TRY(metadata_member(p));
    char c = peek(p);
    p->pos++;
    if (c == '}')
      return EBL_OK;
    if (c != ',')
      return bad_json(p, "expected ',' or '}'");
  }
}

/* One member of the top object: a tensor or __metadata__. */
static ebl_status header_member(parser *p) {
  char *key = NULL;
  EBL_TRY(parse_string(p, &key));
  ebl_status st = expect(p, ':');
  if (st != EBL_OK) {
    free(key);
    return st;
  }
  if (strcmp(key, "__metadata__") == 0) {
    free(key);
    return parse_metadata(p);
  }
  return parse_entry(p, key);
}

/* The whole header: one object, then nothing but white space. */
static ebl_status parse_header(parser *p) {
  if (peek(p) != '{')
    return bad_json(p, "the header is not an object");
  p->pos++;
  if (peek(p) == '}') {
    p->pos++;
  } else {
    for (;;) {
      EBL_TRY(header_member(p));
      char c = peek(p);
      p->pos++;
      if (c == '}')
        break;
      if (c != ',')
        return bad_json(p, "expected ',' or '}'");
    }
  }
  skip_ws(p);
  if (p->pos != p->n)
    return bad_json(p, "bytes after the closing '}'");
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Checking the spans                                                */

static const st_entry *sort_entries;

static int by_begin(const void *a, const void *b) {
  const st_entry *x = &sort_entries[*(const int *)a];
  const st_entry *y = &sort_entries[*(const int *)b];
  if (x->begin != y->begin)
    return x->begin < y->begin ? -1 : 1;
  return (x->end > y->end) - (x->end < y->end);
}

/* Fails unless e's dtype and shape need exactly its span, inside the
   data's data_len bytes. */
static ebl_status check_span(const parser *p, const st_entry *e,
                             uint64_t data_len) {
  if (e->begin > e->end)
    return bad_header(p, "tensor '%s': data_offsets [%llu, %llu] run "
                      "backwards", e->name, (unsigned long long)e->begin,
                      (unsigned long long)e->end);
  if (e->end > data_len)
    return bad_header(p, "tensor '%s': data_offsets [%llu, %llu] run past "
                      "the end of the data (%llu bytes)", e->name,
                      (unsigned long long)e->begin,
                      (unsigned long long)e->end,
                      (unsigned long long)data_len);
  int64_t numel = ebl_shape_numel(e->ndim, e->shape);
  uint64_t size = (uint64_t)DTYPES[e->dtype].size;
  char shape[128];
  ebl_format_shape(e->ndim, e->shape, shape, sizeof shape);
  if (numel < 0 || (uint64_t)numel * size != e->end - e->begin)
    return bad_header(p, "tensor '%s': dtype %s and shape %s need %llu "
                      "bytes, data_offsets [%llu, %llu] hold %llu",
                      e->name, DTYPES[e->dtype].name, shape,
                      (unsigned long long)((uint64_t)numel * size),
                      (unsigned long long)e->begin,
                      (unsigned long long)e->end,
                      (unsigned long long)(e->end - e->begin));
  return EBL_OK;
}

/* Fails when spans overlap or leave bytes of the data to no tensor;
   order receives the entries sorted by their begin. */
static ebl_status check_layout(const parser *p, int *order,
                               uint64_t data_len) {
  for (int i = 0; i < p->nentries; i++)
    order[i] = i;
  sort_entries = p->entries;
  qsort(order, (size_t)p->nentries, sizeof(int), by_begin);
  uint64_t at = 0;
  const st_entry *prev = NULL;
  for (int k = 0; k < p->nentries; k++) {
    const st_entry *e = &p->entries[order[k]];
    if (e->begin < at)
      return bad_header(p, "tensors '%s' and '%s' overlap (bytes %llu to "
                        "%llu)", prev->name, e->name,
                        (unsigned long long)e->begin,
                        (unsigned long long)at);
    if (e->begin > at)
      return bad_header(p, "bytes %llu to %llu of the data belong to no "
                        "tensor", (unsigned long long)at,
                        (unsigned long long)e->begin);
    at = e->end;
    prev = e;
  }
  if (at != data_len)
    return bad_header(p, "bytes %llu to %llu of the data belong to no "
                      "tensor", (unsigned long long)at,
                      (unsigned long long)data_len);
  return EBL_OK;
}

/* ---------------------------------------------------------------- */
/* Reading                                                           */

/* Reads n bytes at the current position, in chunks. */
static ebl_status read_bytes(FILE *f, const char *path, void *buf,
                             size_t n) {
  char *p = buf;
  while (n > 0) {
    if (ebl_interrupted())
      return ebl_fail(EBL_EINTR, "interrupted");
    size_t chunk = n < ST_CHUNK ? n : ST_CHUNK;
    if (fread(p, 1, chunk, f) != chunk)
      return ebl_fail(EBL_EARG, "load: %s: %s", path, ferror(f)
                      ? strerror(errno) : "the file ended early");
    p += chunk;
    n -= chunk;
  }
  return EBL_OK;
}

/* The header's bytes, after checking its length against the file. */
static ebl_status read_header(FILE *f, const char *path, char **header,
                              uint64_t *header_len, uint64_t *data_len) {
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0)
    return ebl_fail(EBL_EARG, "load: %s: %s", path, strerror(errno));
  uint64_t size = (uint64_t)sb.st_size;
  unsigned char len[8];
  if (size < 8)
    return ebl_fail(EBL_EARG, "load: %s: the file has %llu bytes, fewer "
                    "than the 8 of the header length", path,
                    (unsigned long long)size);
  EBL_TRY(read_bytes(f, path, len, 8));
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | len[i];
  if (n > size - 8)
    return ebl_fail(EBL_EARG, "load: %s: the header length %llu runs past "
                    "the end of the file (%llu bytes): truncated or not "
                    "a safetensors file", path, (unsigned long long)n,
                    (unsigned long long)size);
  if (n < 2 || n > EBL_SAFETENSORS_MAX_HEADER)
    return ebl_fail(EBL_EARG, "load: %s: a header length of %llu bytes is "
                    "not plausible", path, (unsigned long long)n);
  *header = malloc((size_t)n);
  if (*header == NULL)
    return ebl_fail(EBL_ENOMEM, "load: %s: out of memory", path);
  *header_len = n;
  *data_len = size - 8 - n;
  return read_bytes(f, path, *header, (size_t)n);
}

/* Reads the tensors in data order (the file is positioned at the data's
   start) into res. */
static ebl_status read_tensors(FILE *f, const parser *p, const int *order,
                               ebl_safetensors *res) {
  for (int k = 0; k < p->nentries; k++) {
    const st_entry *e = &p->entries[order[k]];
    if (DTYPES[e->dtype].dtype < 0)
      return bad_header(p, "tensor '%s' has dtype %s; ebl reads F32, F64, "
                        "I32 and U8", e->name, DTYPES[e->dtype].name);
    ebl_tensor *t = &res->tensors[k];
    EBL_TRY(ebl_tensor_empty(t, (ebl_dtype)DTYPES[e->dtype].dtype, e->ndim,
                             e->shape, EBL_CPU));
    res->names[k] = strdup(e->name);
    res->ntensors = k + 1;
    if (res->names[k] == NULL)
      return ebl_fail(EBL_ENOMEM, "load: %s: out of memory", p->path);
    EBL_TRY(read_bytes(f, p->path, ebl_tensor_data(t),
                       (size_t)(e->end - e->begin)));
  }
  return EBL_OK;
}

/* Checks the parsed header against the data and reads the tensors. */
static ebl_status read_body(FILE *f, parser *p, uint64_t data_len) {
  int n = p->nentries;
  int *order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
  ebl_safetensors *res = p->res;
  res->names = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
  res->tensors = calloc((size_t)(n > 0 ? n : 1), sizeof(ebl_tensor));
  ebl_status st = EBL_OK;
  if (order == NULL || res->names == NULL || res->tensors == NULL)
    st = ebl_fail(EBL_ENOMEM, "load: %s: out of memory", p->path);
  for (int i = 0; st == EBL_OK && i < n; i++)
    st = check_span(p, &p->entries[i], data_len);
  if (st == EBL_OK)
    st = check_layout(p, order, data_len);
  if (st == EBL_OK)
    st = read_tensors(f, p, order, res);
  free(order);
  return st;
}

ebl_status ebl_safetensors_read(const char *path, ebl_safetensors *res) {
  memset(res, 0, sizeof *res);
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ebl_fail(EBL_EARG, "load: %s: %s", path, strerror(errno));
  parser p = {.path = path, .res = res};
  char *header = NULL;
  uint64_t header_len = 0, data_len = 0;
  ebl_status st = read_header(f, path, &header, &header_len, &data_len);
  if (st == EBL_OK) {
    p.s = header;
    p.n = (size_t)header_len;
    st = parse_header(&p);
  }
  if (st == EBL_OK)
    st = read_body(f, &p, data_len);
  fclose(f);
  for (int i = 0; i < p.nentries; i++)
    free(p.entries[i].name);
  free(p.entries);
  free(header);
  if (st != EBL_OK)
    ebl_safetensors_free(res);
  return st;
}

void ebl_safetensors_free(ebl_safetensors *st) {
  for (int i = 0; i < st->ntensors; i++) {
    free(st->names[i]);
    ebl_tensor_release(&st->tensors[i]);
  }
  for (int i = 0; i < st->nmeta; i++) {
    free(st->keys[i]);
    free(st->values[i]);
  }
  free(st->names);
  free(st->tensors);
  free(st->keys);
  free(st->values);
  memset(st, 0, sizeof *st);
}

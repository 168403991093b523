/* Tests of safetensors files: a round trip of every dtype ebl reads, the
   layout the writer chooses, each fault the reader must name (files made
   here byte by byte), and atomic writes: a failed save and a writer
   killed midway both leave the old file readable. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "helpers.h"
#include "safetensors.h"

static char tmp[256];

/* The path of name inside the temporary folder (rotating buffers). */
static const char *in_tmp(const char *name) {
  static char paths[16][512];
  static int next;
  char *p = paths[next++ % 16];
  snprintf(p, 512, "%s/%s", tmp, name);
  return p;
}

/* Writes a file: the 8-byte length of header, header, then data. */
static void write_file(const char *path, const char *header,
                       const void *data, size_t ndata) {
  FILE *f = fopen(path, "wb");
  uint64_t n = strlen(header);
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)(n >> (8 * i));
  if (f == NULL) {
    printf("# cannot write %s\n", path);
    return;
  }
  fwrite(len, 1, 8, f);
  fwrite(header, 1, n, f);
  if (ndata)
    fwrite(data, 1, ndata, f);
  fclose(f);
}

/* Reads path expecting failure with a message containing want. */
static void check_refused(const char *path, const char *want,
                          const char *what) {
  ebl_safetensors st;
  ebl_status s = ebl_safetensors_read(path, &st);
  const char *msg = ebl_error();
  int ok = s == EBL_EARG && strstr(msg, want) != NULL &&
           strstr(msg, path) != NULL && st.ntensors == 0;
  CHECK(ok, "refuses %s", what);
  if (!ok)
    printf("#   message: %s\n#   wanted:  %s\n", msg, want);
}

/* A header with one entry and data of ndata zero bytes, then refused. */
static void refuse_header(const char *header, size_t ndata,
                          const char *want, const char *what) {
  static unsigned char zeros[64];
  const char *path = in_tmp("bad.safetensors");
  write_file(path, header, zeros, ndata);
  check_refused(path, want, what);
}

/* ---------------------------------------------------------------- */

static void test_round_trip(void) {
  ebl_tensor a = make(EBL_F32, 2, SHAPE(2, 3), VALUES(1, 2, 3, 4, 5, 6));
  ebl_tensor at_ = {0};
  ebl_tensor_transpose(&at_, &a, 0, 1);            /* not contiguous */
  ebl_tensor b = make(EBL_F64, 0, SHAPE(0), VALUES(-2.5));
  ebl_tensor c = make(EBL_I32, 1, SHAPE(3), VALUES(-7, 0, 2147483647));
  ebl_tensor d = make(EBL_U8, 2, SHAPE(0, 4), NULL);
  ebl_tensor e = make(EBL_U8, 1, SHAPE(3), VALUES(0, 128, 255));
  const char *names[] = {"w.t", "b", "c", "d", "e\"\n"};
  ebl_tensor ts[] = {at_, b, c, d, e};
  const char *keys[] = {"format", "note"}, *values[] = {"1", "tab\there"};
  const char *path = in_tmp("rt.safetensors");
  ebl_status s = ebl_safetensors_write(path, 5, names, ts, 2, keys, values);
  CHECK(s == EBL_OK, "writes five tensors and two metadata pairs");
  ebl_safetensors st;
  s = ebl_safetensors_read(path, &st);
  CHECK(s == EBL_OK && st.ntensors == 5 && st.nmeta == 2,
        "reads them back");
  double want[][6] = {{1, 4, 2, 5, 3, 6}, {-2.5}, {-7, 0, 2147483647},
                      {0}, {0, 128, 255}};
  int64_t numel[] = {6, 1, 3, 0, 3};
  for (int k = 0; s == EBL_OK && k < 5; k++) {
    int i = 0;
    while (i < 5 && strcmp(st.names[k], names[i]) != 0)
      i++;
    int same = i < 5 && st.tensors[k].dtype == ts[i].dtype &&
               ebl_tensor_same_shape(&st.tensors[k], &ts[i]);
    for (int64_t j = 0; same && j < numel[i]; j++)
      same = at(&st.tensors[k], j) == want[i][j];
    CHECK(same, "tensor %d of 5 comes back with dtype, shape and values",
          i + 1);
  }
  int meta = s == EBL_OK;
  for (int k = 0; meta && k < 2; k++)
    meta = (strcmp(st.keys[k], "format") == 0 &&
            strcmp(st.values[k], "1") == 0) ||
           (strcmp(st.keys[k], "note") == 0 &&
            strcmp(st.values[k], "tab\there") == 0);
  CHECK(meta, "metadata comes back with its escapes");
  if (s == EBL_OK)
    ebl_safetensors_free(&st);
  ebl_tensor_release(&a);
  ebl_tensor_release(&at_);
  ebl_tensor_release(&b);
  ebl_tensor_release(&c);
  ebl_tensor_release(&d);
  ebl_tensor_release(&e);
}

/* The data starts at a multiple of 8; 8-byte elements come first. */
static void test_layout(void) {
  ebl_tensor u = make(EBL_U8, 1, SHAPE(1), VALUES(9));
  ebl_tensor f = make(EBL_F64, 1, SHAPE(1), VALUES(0.5));
  const char *names[] = {"a", "z"};
  ebl_tensor ts[] = {u, f};
  const char *path = in_tmp("layout.safetensors");
  ebl_safetensors_write(path, 2, names, ts, 0, NULL, NULL);
  FILE *fp = fopen(path, "rb");
  unsigned char buf[256] = {0};
  size_t n = fp ? fread(buf, 1, sizeof buf, fp) : 0;
  if (fp)
    fclose(fp);
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--)
    len = len << 8 | buf[i];
  CHECK(n == 8 + len + 9 && (8 + len) % 8 == 0 && buf[8] == '{',
        "the header is padded so that the data starts at a multiple of 8");
  double half;
  memcpy(&half, buf + 8 + len, 8);
  CHECK(half == 0.5 && buf[8 + len + 8] == 9,
        "the float64 comes first, the uint8 after it, little-endian");
  const char *h = (const char *)buf + 8;
  CHECK(strstr(h, "\"z\":{\"dtype\":\"F64\",\"shape\":[1],"
                  "\"data_offsets\":[0,8]}") != NULL,
        "the header describes each tensor by the format's names");
  ebl_tensor_release(&u);
  ebl_tensor_release(&f);
}

static void test_faults(void) {
  const char *path = in_tmp("short.safetensors");
  FILE *fp = fopen(path, "wb");
  fwrite("abcde", 1, 5, fp);
  fclose(fp);
  check_refused(path, "the file has 5 bytes, fewer than the 8 of the "
                "header length", "a file shorter than the length field");
  check_refused(in_tmp("none.safetensors"), "No such file or directory",
                "a missing file");
  path = in_tmp("long.safetensors");
  fp = fopen(path, "wb");
  unsigned char len[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
  fwrite(len, 1, 8, fp);
  fwrite("{}", 1, 2, fp);
  fclose(fp);
  check_refused(path, "the header length 65535 runs past the end of the "
                "file (10 bytes)", "a header length past the end");
  refuse_header("{\"a\":{\"dtype\":\"F32\" \"shape\":[1],"
                "\"data_offsets\":[0,4]}}", 4,
                "not well-formed JSON (expected ',' or '}' at byte 21",
                "malformed JSON");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                "\"data_offsets\":[0,4]}} x", 4,
                "bytes after the closing '}'", "bytes after the header");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                "\"data_offsets\":[0,8]}}", 4,
                "tensor 'a': data_offsets [0, 8] run past the end of the "
                "data (4 bytes)", "offsets past the data (truncated)");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                "\"data_offsets\":[0,4]}}", 4,
                "tensor 'a': dtype F32 and shape 2 need 8 bytes, "
                "data_offsets [0, 4] hold 4", "a span that the shape "
                "does not fill");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                "\"data_offsets\":[4,0]}}", 4, "run backwards",
                "offsets that run backwards");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\","
                "\"shape\":[4],\"data_offsets\":[2,6]}}", 6,
                "tensors 'a' and 'b' overlap (bytes 2 to 4)",
                "overlapping tensors");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                "\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"U8\","
                "\"shape\":[2],\"data_offsets\":[6,8]}}", 8,
                "bytes 4 to 6 of the data belong to no tensor",
                "a hole between tensors");
  refuse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
                "\"data_offsets\":[0,4]}}", 10,
                "bytes 4 to 10 of the data belong to no tensor",
                "bytes after the last tensor");
  refuse_header("{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],"
                "\"data_offsets\":[0,1]}}", 1,
                "tensor 'a' has an unknown dtype 'Q8'", "an unknown dtype");
  refuse_header("{\"a\":{\"dtype\":\"BF16\",\"shape\":[1],"
                "\"data_offsets\":[0,2]}}", 2,
                "tensor 'a' has dtype BF16; ebl reads F32, F64, I32 and U8",
                "a dtype ebl does not hold");
  refuse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                "\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\","
                "\"shape\":[1],\"data_offsets\":[1,2]}}", 2,
                "tensor 'a' appears twice", "a repeated name");
  refuse_header("{\"__metadata__\":{\"k\":1}}", 0,
                "__metadata__ value of 'k' is not a string",
                "metadata that is not a string");
  refuse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1,
                "tensor 'a' has no data_offsets", "a missing field");
  refuse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
                "\"data_offsets\":[0,1]}}", 1,
                "the shape of tensor 'a' must be an integer >= 0",
                "a negative size");
  refuse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                "\"data_offsets\":[0,1]}}", 1, "tensor 'a' has 9 dims; ebl tensors "
                "have at most 8",
                "more dims than a tensor has");
  refuse_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],"
                "\"data_offsets\":[0,1,2]}}", 1, "tensor 'a': data_offsets "
                "must be [begin, end], got 3 numbers", "three offsets");
  refuse_header("[1]", 0, "the header is not an object", "an array");
}

/* Escapes, unknown members and an empty header are read as JSON says. */
static void test_json_reading(void) {
  const char *path = in_tmp("json.safetensors");
  unsigned char data[2] = {7, 8};
  write_file(path, " { \"a\\u00e9\\\"\" : { \"extra\" : [ {\"x\": null}, "
             "true ], \"dtype\" : \"U8\" , \"shape\" : [ 2 ] , "
             "\"data_offsets\" : [ 0 , 2 ] } , \"__metadata__\" : { "
             "\"k\\/\" : \"\\ud83d\\ude00\" } }   ", data, 2);
  ebl_safetensors st;
  ebl_status s = ebl_safetensors_read(path, &st);
  CHECK(s == EBL_OK && st.ntensors == 1 &&
        strcmp(st.names[0], "a\xc3\xa9\"") == 0 && at(&st.tensors[0], 1) == 8,
        "reads escapes, white space and members it does not know");
  if (s != EBL_OK)
    printf("#   %s\n", ebl_error());
  CHECK(s == EBL_OK && st.nmeta == 1 && strcmp(st.keys[0], "k/") == 0 &&
        strcmp(st.values[0], "\xf0\x9f\x98\x80") == 0,
        "turns a surrogate pair into UTF-8");
  if (s == EBL_OK)
    ebl_safetensors_free(&st);
  write_file(path, "{}", NULL, 0);
  s = ebl_safetensors_read(path, &st);
  CHECK(s == EBL_OK && st.ntensors == 0 && st.nmeta == 0,
        "reads a file of no tensors");
  if (s == EBL_OK)
    ebl_safetensors_free(&st);
}

/* The number of entries of the temporary folder whose name has part. */
static int count_files(const char *part) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "ls %s | grep -c '%s'", tmp, part);
  FILE *p = popen(cmd, "r");
  int n = -1;
  if (p) {
    if (fscanf(p, "%d", &n) != 1)
      n = -1;
    pclose(p);
  }
  return n;
}

/* Reads path and says which of the two contents it holds (0 on error). */
static int which_contents(const char *path, int64_t big) {
  ebl_safetensors st;
  if (ebl_safetensors_read(path, &st) != EBL_OK) {
    printf("#   %s\n", ebl_error());
    return 0;
  }
  int64_t n = ebl_tensor_numel(&st.tensors[0]);
  int kind = st.ntensors == 1 ? (n == 3 ? 1 : n == big ? 2 : 0) : 0;
  ebl_safetensors_free(&st);
  return kind;
}

static void test_atomic(void) {
  const char *path = in_tmp("ckpt.safetensors");
  ebl_tensor old = make(EBL_F32, 1, SHAPE(3), VALUES(1, 2, 3));
  const char *names[] = {"w", "w"};
  ebl_tensor ts[] = {old, old};
  ebl_safetensors_write(path, 1, names, ts, 0, NULL, NULL);
  ebl_status s = ebl_safetensors_write(path, 2, names, ts, 0, NULL, NULL);
  CHECK(s == EBL_EARG && strstr(ebl_error(), "two tensors named 'w'"),
        "refuses two tensors of one name");
  CHECK(which_contents(path, 0) == 1 && count_files(".tmp.") == 0,
        "a refused save leaves the old file and no temporary one");
  s = ebl_safetensors_write(in_tmp("no/such/dir/x"), 1, names, ts, 0,
                            NULL, NULL);
  CHECK(s == EBL_EARG && strstr(ebl_error(), "no/such/dir/x.tmp.") &&
        strstr(ebl_error(), "No such file"),
        "a folder that does not exist is named in the error");

  /* A child rewrites the file with 32 MB over and over; it is killed at
     some point of a write. The tensor is made before the fork, so that
     the child runs no parallel loop. */
  int64_t big = 8 << 20;
  ebl_tensor t;
  ebl_tensor_empty(&t, EBL_F32, 1, &big, EBL_CPU);
  pid_t pid = fork();
  if (pid == 0)
    for (;;)
      ebl_safetensors_write(path, 1, names, &t, 0, NULL, NULL);
  struct timespec pause = {0, 400 * 1000 * 1000};
  nanosleep(&pause, NULL);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  int kind = which_contents(path, big);
  CHECK(kind == 1 || kind == 2,
        "after a writer is killed the file holds the old or the new "
        "contents, whole (%s)", kind == 2 ? "new" : "old");
  ebl_tensor_release(&old);
  ebl_tensor_release(&t);
}

int main(void) {
  snprintf(tmp, sizeof tmp, "/tmp/ebl_safetensors_XXXXXX");
  if (mkdtemp(tmp) == NULL) {
    printf("# cannot make a temporary folder\n");
    return 1;
  }
  test_round_trip();
  test_layout();
  test_faults();
  test_json_reading();
  test_atomic();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", tmp);
  return tap_done();
}

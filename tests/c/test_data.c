/* Tests of the data layer: IDX files (raw and gzip, valid and broken),
   CIFAR records, a small Tiny ImageNet tree of JPEGs written here with
   libjpeg, and the batch loader (order, determinism with and without
   the prefetch thread, normalisation, flips, crops). Files live in a
   temporary folder that is removed at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <jpeglib.h>

#include "tap.h"
#include "helpers.h"
#include "data/data.h"

static char tmp[256];

/* The path of name inside the temporary folder (static buffers that
   rotate among 32, so a test can hold several paths at once). */
static const char *in_tmp(const char *name) {
  static char paths[32][512];
  static int next;
  char *p = paths[next++ % 32];
  snprintf(p, 512, "%s/%s", tmp, name);
  return p;
}

/* Writes bytes to path as they are. */
static void write_raw(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(bytes, 1, n, f) != n)
    printf("# cannot write %s\n", path);
  if (f) fclose(f);
}

/* Writes bytes to path gzip-compressed. */
static void write_gz(const char *path, const void *bytes, size_t n) {
  gzFile f = gzopen(path, "wb");
  if (f == NULL || gzwrite(f, bytes, (unsigned)n) != (int)n)
    printf("# cannot write %s\n", path);
  if (f) gzclose(f);
}

/* Reads a whole file into a malloc'd buffer; sets *n. */
static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = malloc(1 << 20);
  *n = f ? fread(buf, 1, 1 << 20, f) : 0;
  if (f) fclose(f);
  return buf;
}

/* Nonzero when the last error contains text. */
static int error_has(const char *text) {
  if (strstr(ebl_error(), text) != NULL) return 1;
  printf("# error was: %s\n", ebl_error());
  return 0;
}

/* ------------------------------------------------------------------ */
/* IDX */

/* A 3 x 2 x 2 uint8 image file: magic 0x803, dims, values 0..11, and
   `extra` more bytes. Returns its length (28 + extra). */
static size_t idx_images(uint8_t *b, int extra) {
  const uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2,
                            0, 0, 0, 2};
  memcpy(b, head, 16);
  for (int i = 0; i < 12 + extra; i++) b[16 + i] = (uint8_t)i;
  return 28 + (size_t)extra;
}

/* A label file of n labels: magic 0x801, dim n, the values. */
static size_t idx_labels(uint8_t *b, int n, const uint8_t *values) {
  const uint8_t head[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
  memcpy(b, head, 8);
  memcpy(b + 8, values, (size_t)n);
  return 8 + (size_t)n;
}

/* Nonzero when t holds the bytes 0..11. */
static int is_0_to_11(const ebl_tensor *t) {
  const uint8_t *v = ebl_tensor_data(t);
  for (int i = 0; i < 12; i++)
    if (v[i] != i) return 0;
  return 1;
}

/* The same file raw and gzipped reads the same. */
static void test_idx_valid(void) {
  uint8_t b[64];
  size_t n = idx_images(b, 0);
  write_raw(in_tmp("img.idx"), b, n);
  write_gz(in_tmp("img.idx.gz"), b, n);
  const char *names[2] = {"img.idx", "img.idx.gz"};
  for (int k = 0; k < 2; k++) {
    ebl_tensor t = {0};
    ebl_status st = ebl_idx_read(&t, in_tmp(names[k]));
    CHECK(st == EBL_OK && t.dtype == EBL_U8 && t.ndim == 3 &&
          t.shape[0] == 3 && t.shape[1] == 2 && t.shape[2] == 2 &&
          is_0_to_11(&t), "idx: %s reads as uint8 3x2x2 holding 0..11",
          names[k]);
    ebl_tensor_release(&t);
  }
}

/* int16 and float32 elements are big-endian and keep their sign. */
static void test_idx_types(void) {
  const uint8_t i16[] = {0, 0, 0x0B, 1, 0, 0, 0, 2, 0xFF, 0xFE, 0x01,
                         0x00};
  const uint8_t f32[] = {0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1,
                         0x3F, 0xC0, 0, 0};
  ebl_tensor t = {0};
  write_gz(in_tmp("i16.gz"), i16, sizeof i16);
  CHECK(ebl_idx_read(&t, in_tmp("i16.gz")) == EBL_OK &&
        t.dtype == EBL_I32 && equals(&t, 2, VALUES(-2, 256)),
        "idx: int16 elements become int32 -2 and 256");
  ebl_tensor_release(&t);
  write_raw(in_tmp("f32"), f32, sizeof f32);
  CHECK(ebl_idx_read(&t, in_tmp("f32")) == EBL_OK &&
        t.dtype == EBL_F32 && t.ndim == 2 && equals(&t, 1, VALUES(1.5)),
        "idx: a float32 1x1 file holds 1.5");
  ebl_tensor_release(&t);
}

/* Reads name expecting failure; the message must contain text. */
static void expect_idx_error(const char *name, const char *text,
                             const char *what) {
  ebl_tensor t = {0};
  ebl_status st = ebl_idx_read(&t, in_tmp(name));
  CHECK(st == EBL_EARG && t.storage == NULL && error_has(text) &&
        error_has(in_tmp(name)), "idx: %s", what);
}

/* Files shorter than their dims promise, and no file at all. */
static void test_idx_truncated(void) {
  uint8_t b[64];
  size_t n = idx_images(b, 0);
  write_raw(in_tmp("short.idx"), b, n - 8);
  write_gz(in_tmp("short.idx.gz"), b, n - 8);
  write_raw(in_tmp("head.idx"), b, 10);
  write_raw(in_tmp("empty.idx"), b, 0);
  expect_idx_error("short.idx", "truncated (expected 28 bytes, got 20)",
                   "a raw file 8 bytes short is truncated, with counts");
  expect_idx_error("short.idx.gz", "truncated (expected 28 bytes, got 20)",
                   "a gzip file 8 bytes short is truncated, with counts");
  expect_idx_error("head.idx", "truncated (the header needs 16 bytes, "
                   "got 10)", "a cut header is truncated");
  expect_idx_error("empty.idx", "empty file", "an empty file is refused");
  expect_idx_error("missing.idx", "No such file", "a missing file");
}

/* Magic words that are not IDX ones, and absurd dims. */
static void test_idx_bad_header(void) {
  uint8_t b[64];
  size_t n = idx_images(b, 0);
  const uint8_t bad[4] = {0x12, 0x34, 0x56, 0x78};
  memcpy(b, bad, 4);
  write_gz(in_tmp("magic.gz"), b, n);
  expect_idx_error("magic.gz", "bad magic 0x12345678",
                   "a bad magic is named");
  b[0] = b[1] = 0, b[2] = 0x0F, b[3] = 3;
  write_raw(in_tmp("type.idx"), b, n);
  expect_idx_error("type.idx", "unknown type byte 0x0f",
                   "an unknown type byte is named");
  b[2] = 8, b[3] = 0;
  write_raw(in_tmp("ndim.idx"), b, n);
  expect_idx_error("ndim.idx", "0 dims", "zero dims are refused");
  const uint8_t huge[12] = {0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 0xFF};
  write_raw(in_tmp("huge.idx"), huge, 12);
  expect_idx_error("huge.idx", "dims promise more than",
                   "dims of 2^32 - 1 are refused before allocating");
}

/* Bytes after the elements are counted and refused. */
static void test_idx_trailing(void) {
  uint8_t b[64];
  size_t n = idx_images(b, 3);
  write_raw(in_tmp("tail.idx"), b, n);
  write_gz(in_tmp("tail.idx.gz"), b, n);
  expect_idx_error("tail.idx", "3 trailing bytes after the 28",
                   "trailing bytes of a raw file are counted");
  expect_idx_error("tail.idx.gz", "3 trailing bytes after the 28",
                   "trailing bytes of a gzip file are counted");
}

/* A damaged CRC and a cut compressed stream are errors, not data. */
static void test_idx_broken_gzip(void) {
  uint8_t b[4096];
  for (int i = 0; i < 4000; i++) b[16 + i] = (uint8_t)(i * 31 + i / 7);
  const uint8_t head[16] = {0, 0, 8, 3, 0, 0, 0, 40, 0, 0, 0, 10, 0, 0,
                            0, 10};
  memcpy(b, head, 16);
  write_gz(in_tmp("good.gz"), b, 4016);
  size_t n;
  uint8_t *gz = slurp(in_tmp("good.gz"), &n);
  gz[n - 6] ^= 0xFF;   /* a byte of the CRC-32 in the trailer */
  write_raw(in_tmp("crc.gz"), gz, n);
  gz[n - 6] ^= 0xFF;
  write_raw(in_tmp("cut.gz"), gz, n / 2);
  free(gz);
  expect_idx_error("crc.gz", "gzip", "a wrong CRC is a gzip error");
  expect_idx_error("cut.gz", "truncated", "a cut gzip stream is truncated");
}

/* An image file and a label file read and checked together. */
static void test_mnist_pairs(void) {
  uint8_t b[64], l[16];
  const uint8_t labels[3] = {1, 0, 2}, wrong[3] = {1, 10, 2};
  write_gz(in_tmp("i.gz"), b, idx_images(b, 0));
  write_gz(in_tmp("l.gz"), l, idx_labels(l, 3, labels));
  write_raw(in_tmp("l2"), l, idx_labels(l, 2, labels));
  write_raw(in_tmp("l10"), l, idx_labels(l, 3, wrong));
  ebl_dataset ds;
  CHECK(ebl_mnist_read(&ds, in_tmp("i.gz"), in_tmp("l.gz"), 10) == EBL_OK
        && ds.images.ndim == 4 && ds.images.shape[1] == 1 &&
        ds.images.shape[3] == 2 && ds.labels.dtype == EBL_I32 &&
        equals(&ds.labels, 3, VALUES(1, 0, 2)) && ds.classes == 10,
        "mnist: a pair gives 3x1x2x2 images and int32 labels 1, 0, 2");
  ebl_dataset_release(&ds);
  CHECK(ebl_mnist_read(&ds, in_tmp("i.gz"), in_tmp("l2"), 10) != EBL_OK &&
        error_has("holds 3 images but") && error_has("holds 2 labels"),
        "mnist: counts that differ are named");
  CHECK(ebl_mnist_read(&ds, in_tmp("i.gz"), in_tmp("l10"), 10) != EBL_OK &&
        error_has("label 10 at index 1 is out of range 0..9"),
        "mnist: a label out of range is named with its index");
  CHECK(ebl_mnist_read(&ds, in_tmp("l.gz"), in_tmp("l.gz"), 10) != EBL_OK &&
        error_has("bad magic 0x00000801 (expected 0x00000803)"),
        "mnist: a label file in place of images has the wrong dims");
}

/* ------------------------------------------------------------------ */
/* CIFAR */

/* Writes n records of label_bytes labels; record k has labels
   (k % 20, k % 100) or k % 10 and pixel p = (7k + p) % 256. */
static void write_cifar(const char *path, int n, int label_bytes,
                        int first, int extra) {
  size_t record = (size_t)label_bytes + 3072;
  uint8_t *b = calloc((size_t)n * record + (size_t)extra + 1, 1);
  for (int k = 0; k < n; k++) {
    uint8_t *r = b + (size_t)k * record;
    int id = first + k;
    r[0] = (uint8_t)(label_bytes == 1 ? id % 10 : id % 20);
    if (label_bytes == 2) r[1] = (uint8_t)(id % 100);
    for (int p = 0; p < 3072; p++)
      r[label_bytes + p] = (uint8_t)((7 * id + p) % 256);
  }
  write_raw(path, b, (size_t)n * record + (size_t)extra);
  free(b);
}

/* Nonzero when sample k of ds holds record id's pixels. */
static int cifar_pixels_ok(const ebl_dataset *ds, int k, int id) {
  const uint8_t *v = (const uint8_t *)ebl_tensor_data(&ds->images) +
                     (size_t)k * 3072;
  for (int p = 0; p < 3072; p++)
    if (v[p] != (7 * id + p) % 256) return 0;
  return 1;
}

/* CIFAR-10 files concatenated; wrong sizes refused by name. */
static void test_cifar10(void) {
  write_cifar(in_tmp("b1.bin"), 2, 1, 0, 0);
  write_cifar(in_tmp("b2.bin"), 3, 1, 12, 0);
  const char *paths[2] = {in_tmp("b1.bin"), in_tmp("b2.bin")};
  ebl_dataset ds;
  ebl_status st = ebl_cifar_read(&ds, EBL_CIFAR10, paths, 2);
  CHECK(st == EBL_OK && ds.images.shape[0] == 5 &&
        ds.images.shape[1] == 3 && ds.images.shape[2] == 32 &&
        equals(&ds.labels, 5, VALUES(0, 1, 2, 3, 4)) &&
        ds.coarse.storage == NULL,
        "cifar10: two files give 5 records with labels in order");
  CHECK(st == EBL_OK && cifar_pixels_ok(&ds, 1, 1) &&
        cifar_pixels_ok(&ds, 4, 14), "cifar10: pixels are stored CHW");
  ebl_dataset_release(&ds);
  write_cifar(in_tmp("odd.bin"), 2, 1, 0, 5);
  paths[1] = in_tmp("odd.bin");
  CHECK(ebl_cifar_read(&ds, EBL_CIFAR10, paths, 2) != EBL_OK &&
        error_has(in_tmp("odd.bin")) &&
        error_has("size 6151 bytes is not a nonzero multiple of the "
                  "3073-byte record"), "cifar10: a wrong size names file");
  write_raw(in_tmp("zero.bin"), "", 0);
  paths[1] = in_tmp("zero.bin");
  CHECK(ebl_cifar_read(&ds, EBL_CIFAR10, paths, 2) != EBL_OK &&
        error_has("size 0 bytes"), "cifar10: an empty file is refused");
  write_cifar(in_tmp("c100.bin"), 2, 2, 0, 0);
  paths[1] = in_tmp("c100.bin");
  CHECK(ebl_cifar_read(&ds, EBL_CIFAR10, paths, 2) != EBL_OK,
        "cifar10: a CIFAR-100 file (3074-byte records) is refused");
}

/* CIFAR-100 records: coarse then fine label. */
static void test_cifar100(void) {
  write_cifar(in_tmp("train.bin"), 3, 2, 98, 0);
  const char *paths[1] = {in_tmp("train.bin")};
  ebl_dataset ds;
  ebl_status st = ebl_cifar_read(&ds, EBL_CIFAR100, paths, 1);
  CHECK(st == EBL_OK && equals(&ds.labels, 3, VALUES(98, 99, 0)) &&
        equals(&ds.coarse, 3, VALUES(18, 19, 0)) && ds.classes == 100 &&
        cifar_pixels_ok(&ds, 2, 100),
        "cifar100: fine labels, coarse labels and pixels");
  ebl_dataset_release(&ds);
  uint8_t bad[3074] = {25, 3};
  write_raw(in_tmp("bad100.bin"), bad, sizeof bad);
  paths[0] = in_tmp("bad100.bin");
  CHECK(ebl_cifar_read(&ds, EBL_CIFAR100, paths, 1) != EBL_OK &&
        error_has("label 25 in record 0 is out of range 0..19"),
        "cifar100: a coarse label out of range is named");
}

/* ------------------------------------------------------------------ */
/* JPEG and Tiny ImageNet */

/* Writes a side x side JPEG of one colour (gray when channels is 1). */
static void write_jpeg(const char *path, int side, int channels,
                       const uint8_t rgb[3]) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  FILE *f = fopen(path, "wb");
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = c.image_height = (JDIMENSION)side;
  c.input_components = channels;
  c.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint8_t row[3 * 64];
  for (int j = 0; j < side * channels; j++) row[j] = rgb[j % channels];
  while (c.next_scanline < c.image_height) {
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}

static const uint8_t COLOURS[4][3] = {
  {200, 30, 30}, {30, 200, 30}, {128, 128, 128}, {30, 30, 200}};

/* Builds the tree: 2 classes of 2 images (image 2 grayscale), 2 val. */
static void make_tiny_tree(void) {
  const char *dirs[] = {"tiny", "tiny/train", "tiny/train/n001",
    "tiny/train/n001/images", "tiny/train/n002", "tiny/train/n002/images",
    "tiny/val", "tiny/val/images"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    mkdir(in_tmp(dirs[i]), 0700);
  write_raw(in_tmp("tiny/wnids.txt"), "n001\nn002\n", 10);
  write_jpeg(in_tmp("tiny/train/n001/images/n001_0.JPEG"), 64, 3,
             COLOURS[0]);
  write_jpeg(in_tmp("tiny/train/n001/images/n001_1.JPEG"), 64, 3,
             COLOURS[1]);
  write_jpeg(in_tmp("tiny/train/n002/images/n002_0.JPEG"), 64, 1,
             COLOURS[2]);
  write_jpeg(in_tmp("tiny/train/n002/images/n002_1.JPEG"), 64, 3,
             COLOURS[3]);
  write_raw(in_tmp("tiny/train/n002/n002_boxes.txt"), "x", 1);
  write_jpeg(in_tmp("tiny/val/images/val_0.JPEG"), 64, 3, COLOURS[3]);
  write_jpeg(in_tmp("tiny/val/images/val_1.JPEG"), 64, 3, COLOURS[0]);
  const char *ann = "val_0.JPEG\tn002\t0\t0\t63\t63\n"
                    "val_1.JPEG\tn001\t1\t2\t60\t61\n";
  write_raw(in_tmp("tiny/val/val_annotations.txt"), ann, strlen(ann));
}

/* Largest |pixel - colour| over sample k of a 3 x 64 x 64 set. */
static int colour_error(const ebl_dataset *ds, int k, const uint8_t *rgb) {
  const uint8_t *v = (const uint8_t *)ebl_tensor_data(&ds->images) +
                     (size_t)k * 3 * 4096;
  int worst = 0;
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 4096; p++) {
      int d = abs(v[c * 4096 + p] - rgb[c]);
      worst = d > worst ? d : worst;
    }
  return worst;
}

/* The tree read back: labels, colours, grayscale as RGB, val. */
static void test_tiny_imagenet(void) {
  make_tiny_tree();
  ebl_wnids w;
  ebl_dataset train, val;
  CHECK(ebl_wnids_read(&w, in_tmp("tiny")) == EBL_OK && w.count == 2 &&
        strcmp(w.ids[1], "n002") == 0, "tiny: wnids.txt gives 2 ids");
  ebl_status st = ebl_tiny_imagenet_read(&train, in_tmp("tiny"), "train",
                                         &w);
  CHECK(st == EBL_OK && train.images.shape[0] == 4 &&
        train.images.shape[1] == 3 && train.images.shape[2] == 64 &&
        equals(&train.labels, 4, VALUES(0, 0, 1, 1)),
        "tiny: train holds 4 RGB 64x64 images labelled 0, 0, 1, 1");
  int worst = 0;
  for (int k = 0; k < 4 && st == EBL_OK; k++) {
    int e = colour_error(&train, k, COLOURS[k]);
    worst = e > worst ? e : worst;
  }
  CHECK(st == EBL_OK && worst <= 2, "tiny: colours decode within 2 "
        "levels, the grayscale image as equal RGB (worst %d)", worst);
  st = ebl_tiny_imagenet_read(&val, in_tmp("tiny"), "val", &w);
  CHECK(st == EBL_OK && equals(&val.labels, 2, VALUES(1, 0)) &&
        colour_error(&val, 0, COLOURS[3]) <= 2,
        "tiny: val follows val_annotations.txt");
  ebl_dataset_release(&train);
  ebl_dataset_release(&val);
  ebl_wnids_release(&w);
}

/* Reads the train split of the tree expecting an error with text. */
static void expect_tiny_error(const char *split, const char *text,
                              const char *what) {
  ebl_wnids w;
  ebl_dataset ds;
  ebl_wnids_read(&w, in_tmp("tiny"));
  ebl_status st = ebl_tiny_imagenet_read(&ds, in_tmp("tiny"), split, &w);
  CHECK(st != EBL_OK && ds.images.storage == NULL && error_has(text),
        "tiny: %s", what);
  ebl_wnids_release(&w);
}

/* Damaged files and lists are errors naming what is wrong. */
static void test_tiny_broken(void) {
  char jpeg[512];
  snprintf(jpeg, sizeof jpeg, "%s",
           in_tmp("tiny/train/n001/images/n001_1.JPEG"));
  size_t n;
  uint8_t *whole = slurp(jpeg, &n);
  write_raw(jpeg, whole, n / 2);
  expect_tiny_error("train", "n001_1.JPEG", "a cut JPEG is an error "
                    "naming the file");
  write_raw(jpeg, "", 0);
  expect_tiny_error("train", "n001_1.JPEG", "an empty JPEG is an error");
  write_jpeg(jpeg, 32, 3, COLOURS[0]);
  expect_tiny_error("train", "image is 32x32, expected 64x64",
                    "a wrongly sized image is refused");
  write_raw(jpeg, whole, n);
  free(whole);
  const char *ann = "val_0.JPEG\tn009\t0\t0\t63\t63\n";
  write_raw(in_tmp("tiny/val/val_annotations.txt"), ann, strlen(ann));
  expect_tiny_error("val", "val_annotations.txt:1: class n009 is not in "
                    "wnids.txt", "an unknown class in val is named");
  write_raw(in_tmp("tiny/wnids.txt"), "n001\nn003\n", 10);
  expect_tiny_error("train", "n003/images", "a missing class folder");
}

/* ------------------------------------------------------------------ */
/* The loader */

/* n single-channel h x w images, pixel (k, i, j) = (k*17 + i*w + j) % 256,
   and labels k % 10. */
static void make_set(int n, int h, int w, ebl_tensor *images,
                     ebl_tensor *labels) {
  ebl_tensor_empty(images, EBL_U8, 4, SHAPE(n, 1, h, w), EBL_CPU);
  ebl_tensor_empty(labels, EBL_I32, 1, SHAPE(n), EBL_CPU);
  uint8_t *v = ebl_tensor_data(images);
  int32_t *l = ebl_tensor_data(labels);
  for (int k = 0; k < n; k++) {
    l[k] = k % 10;
    for (int p = 0; p < h * w; p++)
      v[k * h * w + p] = (uint8_t)((k * 17 + p) % 256);
  }
}

/* All batches of one epoch, concatenated: x values and labels. */
typedef struct epoch_data {
  float x[4096];
  int32_t y[256];
  int64_t nx, ny, batches;
} epoch_data;

/* Runs epoch of l and copies all its batches into e. */
static void run_epoch(ebl_loader *l, int64_t epoch, epoch_data *e) {
  memset(e, 0, sizeof *e);
  ebl_loader_start(l, epoch);
  ebl_tensor x, y;
  int done = 0;
  while (ebl_loader_next(l, &x, &y, &done) == EBL_OK && !done) {
    int64_t nx = ebl_tensor_numel(&x), ny = ebl_tensor_numel(&y);
    memcpy(e->x + e->nx, ebl_tensor_data(&x), sizeof(float) * (size_t)nx);
    memcpy(e->y + e->ny, ebl_tensor_data(&y), sizeof(int32_t) * (size_t)ny);
    e->nx += nx, e->ny += ny, e->batches++;
    ebl_tensor_release(&x);
    ebl_tensor_release(&y);
  }
}

/* A loader with config c, or NULL (reported) on failure. */
static ebl_loader *new_loader(const ebl_tensor *images,
                              const ebl_tensor *labels,
                              ebl_loader_config c) {
  ebl_loader *l = NULL;
  if (ebl_loader_new(&l, images, labels, &c) != EBL_OK)
    printf("# loader_new failed: %s\n", ebl_error());
  return l;
}

/* Nonzero when the labels of an epoch are each sample once: sample k
   has label k % 10, and its first pixel tells k. */
static int is_permutation(const epoch_data *e, int n, int plane) {
  int seen[256] = {0};
  for (int i = 0; i < e->ny; i++) {
    int v = (int)(e->x[i * plane] * 255.0f + 0.5f);
    int k = v / 17;
    if (k >= n || seen[k] || e->y[i] != k % 10) return 0;
    seen[k] = 1;
  }
  return e->ny == n;
}

/* Permutations, determinism, prefetch on and off. */
static void test_loader_order(void) {
  ebl_tensor images, labels;
  make_set(12, 2, 3, &images, &labels);
  ebl_loader_config c = ebl_loader_config_default();
  c.batch = 5, c.shuffle = 1, c.seed = 42;
  ebl_loader *a = new_loader(&images, &labels, c);
  c.prefetch = 0;
  ebl_loader *b = new_loader(&images, &labels, c);
  c.seed = 43;
  ebl_loader *other = new_loader(&images, &labels, c);
  static epoch_data ea, eb, e2, eo;
  run_epoch(a, 1, &ea);
  run_epoch(b, 1, &eb);
  run_epoch(a, 2, &e2);
  run_epoch(other, 1, &eo);
  CHECK(ea.batches == 3 && ebl_loader_batches(a) == 3,
        "loader: 12 samples in batches of 5 make 3 batches");
  CHECK(is_permutation(&ea, 12, 6) && is_permutation(&e2, 12, 6),
        "loader: each epoch visits every sample once");
  CHECK(memcmp(&ea, &eb, sizeof ea) == 0,
        "loader: with and without prefetch, bitwise the same");
  CHECK(memcmp(ea.y, e2.y, sizeof ea.y) != 0 &&
        memcmp(ea.y, eo.y, sizeof ea.y) != 0,
        "loader: another epoch or seed gives another order");
  run_epoch(a, 1, &e2);
  CHECK(memcmp(&ea, &e2, sizeof ea) == 0,
        "loader: epoch 1 again repeats its batches");
  ebl_loader_free(a);
  ebl_loader_free(b);
  ebl_loader_free(other);
  ebl_tensor_release(&images);
  ebl_tensor_release(&labels);
}

/* Batch counts with and without drop_last and subset. */
static void test_loader_sizes(void) {
  ebl_tensor images, labels;
  make_set(10, 2, 2, &images, &labels);
  ebl_loader_config c = ebl_loader_config_default();
  c.batch = 4;
  ebl_loader *l = new_loader(&images, &labels, c);
  static epoch_data e;
  run_epoch(l, 0, &e);
  int in_order = e.ny == 10;
  for (int i = 0; i < 10; i++) in_order &= e.y[i] == i;
  CHECK(ebl_loader_batches(l) == 3 && e.batches == 3 && in_order &&
        e.x[4] == (float)(17 / 255.0),
        "loader: no shuffle keeps the order; the last batch has 2");
  ebl_loader_free(l);
  c.drop_last = 1, c.subset = 7, c.batch = 3;
  l = new_loader(&images, &labels, c);
  run_epoch(l, 0, &e);
  CHECK(ebl_loader_batches(l) == 2 && ebl_loader_epoch_size(l) == 7 &&
        e.ny == 6, "loader: subset 7, drop_last: 2 batches of 3");
  ebl_loader_free(l);
  c.batch = 0;
  CHECK(ebl_loader_new(&l, &images, &labels, &c) == EBL_EARG &&
        error_is("loader: batch must be >= 1, got 0"),
        "loader: batch 0 is refused with its value");
  ebl_tensor_release(&images);
  ebl_tensor_release(&labels);
}

/* Normalised values are (v / 255 - mean) / std rounded once. */
static void test_loader_normalize(void) {
  ebl_tensor images, labels;
  make_set(4, 2, 2, &images, &labels);
  double mean, std;
  ebl_channel_stats(&images, 4, &mean, &std);
  double sum = 0, sq = 0;
  const uint8_t *v = ebl_tensor_data(&images);
  for (int i = 0; i < 16; i++) sum += v[i] / 255.0;
  for (int i = 0; i < 16; i++)
    sq += (v[i] / 255.0 - sum / 16) * (v[i] / 255.0 - sum / 16);
  CHECK_CLOSE(mean, sum / 16, 1e-15, "stats: mean of the pixels");
  CHECK_CLOSE(std, sqrt(sq / 16), 1e-15, "stats: biased std");
  ebl_loader_config c = ebl_loader_config_default();
  c.normalize = 1, c.mean[0] = 0.25, c.std[0] = 0.5, c.batch = 4;
  ebl_loader *l = new_loader(&images, &labels, c);
  static epoch_data e;
  run_epoch(l, 0, &e);
  int exact = 1;
  for (int i = 0; i < 16; i++)
    exact &= e.x[i] == (float)((v[i] / 255.0 - 0.25) / 0.5);
  CHECK(exact, "loader: x = (v / 255 - 0.25) / 0.5 exactly");
  ebl_loader_free(l);
  ebl_tensor_release(&images);
  ebl_tensor_release(&labels);
}

/* Sample k's output equals its image shifted by (dy, dx) within zero
   padding and mirrored if flip; finds such a shift or returns 0. */
static int explained(const float *x, const uint8_t *src, int h, int w,
                     int pad, int *flipped) {
  for (int f = 0; f < 2; f++)
    for (int dy = -pad; dy <= pad; dy++)
      for (int dx = -pad; dx <= pad; dx++) {
        int ok = 1;
        for (int i = 0; i < h && ok; i++)
          for (int j = 0; j < w && ok; j++) {
            int si = i + dy, sj = (f ? w - 1 - j : j) + dx;
            int v = si >= 0 && si < h && sj >= 0 && sj < w ?
              src[si * w + sj] : 0;
            ok = x[i * w + j] == (float)(v / 255.0);
          }
        if (ok) {
          *flipped = f;
          return 1;
        }
      }
  return 0;
}

/* Crops and flips explained as shifts and mirrors of the source. */
static void test_loader_augment(void) {
  ebl_tensor images, labels;
  make_set(16, 4, 5, &images, &labels);
  ebl_loader_config c = ebl_loader_config_default();
  c.batch = 16, c.flip = 1, c.crop = 2, c.seed = 9;
  ebl_loader *l = new_loader(&images, &labels, c);
  static epoch_data e;
  run_epoch(l, 3, &e);
  const uint8_t *v = ebl_tensor_data(&images);
  int all = 1, flips = 0, zeros = 0;
  for (int k = 0; k < 16; k++) {
    int f = 0;
    all &= explained(e.x + k * 20, v + k * 20, 4, 5, 2, &f);
    flips += f;
  }
  for (int i = 0; i < 16 * 20; i++) zeros += e.x[i] == 0;
  CHECK(all, "loader: each sample is its image shifted by at most 2 "
        "and maybe mirrored");
  CHECK(flips > 0 && flips < 16 && zeros > 0,
        "loader: some samples flipped (%d of 16), zeros entered (%d)",
        flips, zeros);
  ebl_loader_free(l);
  ebl_tensor_release(&images);
  ebl_tensor_release(&labels);
}

/* Runs every test in a fresh temporary folder. */
int main(void) {
  snprintf(tmp, sizeof tmp, "/tmp/ebl_test_data_XXXXXX");
  if (mkdtemp(tmp) == NULL) {
    printf("Bail out! cannot make a temporary folder\n");
    return 1;
  }
  test_idx_valid();
  test_idx_types();
  test_idx_truncated();
  test_idx_bad_header();
  test_idx_trailing();
  test_idx_broken_gzip();
  test_mnist_pairs();
  test_cifar10();
  test_cifar100();
  test_tiny_imagenet();
  test_tiny_broken();
  test_loader_order();
  test_loader_sizes();
  test_loader_normalize();
  test_loader_augment();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    printf("# could not remove %s\n", tmp);
  return tap_done();
}

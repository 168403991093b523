/* Tiny ImageNet's folder layout: wnids.txt (one class id a line, label i
   is line i), train/<wnid>/images/<name>.JPEG, and val/images/ named by
   val/val_annotations.txt ("<file>\t<wnid>\t<box>"). Images are RGB
   64 x 64 JPEGs, decoded in parallel into N x 3 x 64 x 64. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core.h"
#include "data/data.h"
#include "interrupt.h"

#define TINY_SIDE 64
#define TINY_PIXELS (3 * TINY_SIDE * TINY_SIDE)
#define TINY_PATH 4096

/* The files of a split and their labels, before decoding. */
typedef struct image_list {
  int64_t count, cap;
  char **paths;
  int32_t *labels;
} image_list;

/* ---- the class list ---- */

/* Copies the first word of line into word (size 16); 0 when empty. */
static int first_word(const char *line, char *word, int *too_long) {
  while (isspace((unsigned char)*line)) line++;
  int n = 0;
  while (line[n] != '\0' && !isspace((unsigned char)line[n])) n++;
  *too_long = n >= 16;
  if (n == 0 || *too_long)
    return 0;
  memcpy(word, line, (size_t)n);
  word[n] = '\0';
  return 1;
}

/* Index of id among the first n wnids, or -1. */
static int find_wnid(const ebl_wnids *w, int n, const char *id) {
  for (int i = 0; i < n; i++)
    if (strcmp(w->ids[i], id) == 0)
      return i;
  return -1;
}

/* Adds the id on line lineno of path to the list, checked. */
static ebl_status add_wnid(ebl_wnids *w, int *cap, const char *id,
                           const char *path, int lineno) {
  if (find_wnid(w, w->count, id) >= 0)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s:%d: class %s listed "
                    "twice", path, lineno, id);
  if (w->count == *cap) {
    int grown = *cap ? 2 * *cap : 256;
    void *ids = realloc(w->ids, sizeof w->ids[0] * (size_t)grown);
    if (ids == NULL)
      return ebl_fail(EBL_ENOMEM, "tiny_imagenet: out of memory");
    w->ids = ids;
    *cap = grown;
  }
  strcpy(w->ids[w->count++], id);
  return EBL_OK;
}

/* Reads the ids line by line from the open file fp. */
static ebl_status read_wnid_lines(ebl_wnids *w, FILE *fp,
                                  const char *path) {
  char line[256], id[16];
  int cap = 0, lineno = 0, too_long;
  while (fgets(line, sizeof line, fp) != NULL) {
    lineno++;
    if (first_word(line, id, &too_long))
      EBL_TRY(add_wnid(w, &cap, id, path, lineno));
    else if (too_long)
      return ebl_fail(EBL_EARG, "tiny_imagenet: %s:%d: class id longer "
                      "than 15 characters", path, lineno);
  }
  if (w->count == 0)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s: no class ids", path);
  return EBL_OK;
}

/* Reads the class ids of dir/wnids.txt. */
ebl_status ebl_wnids_read(ebl_wnids *res, const char *dir) {
  char path[TINY_PATH];
  snprintf(path, sizeof path, "%s/wnids.txt", dir);
  memset(res, 0, sizeof *res);
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s: %s", path,
                    strerror(errno));
  ebl_status st = read_wnid_lines(res, fp, path);
  fclose(fp);
  if (st != EBL_OK)
    ebl_wnids_release(res);
  return st;
}

/* Frees the id list. */
void ebl_wnids_release(ebl_wnids *w) {
  free(w->ids);
  memset(w, 0, sizeof *w);
}

/* ---- lists of image files ---- */

/* Frees a list. */
static void list_release(image_list *list) {
  for (int64_t i = 0; i < list->count; i++)
    free(list->paths[i]);
  free(list->paths);
  free(list->labels);
  memset(list, 0, sizeof *list);
}

/* Appends dir/name with its label. */
static ebl_status list_add(image_list *list, const char *dir,
                           const char *name, int32_t label) {
  if (list->count == list->cap) {
    int64_t grown = list->cap ? 2 * list->cap : 1024;
    char **paths = realloc(list->paths, sizeof *paths * (size_t)grown);
    if (paths != NULL)
      list->paths = paths;
    int32_t *labels = realloc(list->labels, sizeof *labels * (size_t)grown);
    if (labels != NULL)
      list->labels = labels;
    if (paths == NULL || labels == NULL)
      return ebl_fail(EBL_ENOMEM, "tiny_imagenet: out of memory");
    list->cap = grown;
  }
  size_t len = strlen(dir) + strlen(name) + 2;
  char *path = malloc(len);
  if (path == NULL)
    return ebl_fail(EBL_ENOMEM, "tiny_imagenet: out of memory");
  snprintf(path, len, "%s/%s", dir, name);
  list->paths[list->count] = path;
  list->labels[list->count++] = label;
  return EBL_OK;
}

/* Nonzero for a file name ending in .JPEG, .jpeg or .jpg. */
static int is_jpeg_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot != NULL && dot != name &&
         (strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".jpg") == 0);
}

/* qsort order of file paths: strcmp. */
static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the JPEGs of one class folder, sorted by name. */
static ebl_status add_class_dir(image_list *list, const char *dir,
                                int32_t label) {
  DIR *d = opendir(dir);
  if (d == NULL)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s: %s", dir,
                    strerror(errno));
  int64_t first = list->count;
  ebl_status st = EBL_OK;
  struct dirent *e;
  while (st == EBL_OK && (e = readdir(d)) != NULL)
    if (is_jpeg_name(e->d_name))
      st = list_add(list, dir, e->d_name, label);
  closedir(d);
  EBL_TRY(st);
  if (list->count == first)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s: no JPEG images", dir);
  qsort(list->paths + first, (size_t)(list->count - first),
        sizeof *list->paths, compare_names);
  return EBL_OK;
}

/* The training images: every class folder in wnids order. */
static ebl_status list_train(image_list *list, const char *dir,
                             const ebl_wnids *w) {
  char path[TINY_PATH];
  for (int i = 0; i < w->count; i++) {
    snprintf(path, sizeof path, "%s/train/%s/images", dir, w->ids[i]);
    EBL_TRY(add_class_dir(list, path, i));
  }
  return EBL_OK;
}

/* Parses one line of val_annotations.txt: "<file>\t<wnid>\t...". */
static ebl_status add_val_line(image_list *list, const char *images,
                               char *line, const ebl_wnids *w,
                               const char *path, int lineno) {
  char *rest;
  char *name = strtok_r(line, " \t\r\n", &rest);
  char *id = name ? strtok_r(NULL, " \t\r\n", &rest) : NULL;
  if (name == NULL)
    return EBL_OK;
  if (id == NULL || strchr(name, '/') != NULL)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s:%d: expected '<file> "
                    "<wnid> ...', got '%s'", path, lineno, name);
  int label = find_wnid(w, w->count, id);
  if (label < 0)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s:%d: class %s is not in "
                    "wnids.txt", path, lineno, id);
  return list_add(list, images, name, label);
}

/* The validation images in the order of the annotations. */
static ebl_status list_val(image_list *list, const char *dir,
                           const ebl_wnids *w) {
  char path[TINY_PATH], images[TINY_PATH], line[512];
  snprintf(path, sizeof path, "%s/val/val_annotations.txt", dir);
  snprintf(images, sizeof images, "%s/val/images", dir);
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return ebl_fail(EBL_EARG, "tiny_imagenet: %s: %s", path,
                    strerror(errno));
  ebl_status st = EBL_OK;
  for (int lineno = 1; st == EBL_OK && fgets(line, sizeof line, fp);
       lineno++)
    st = add_val_line(list, images, line, w, path, lineno);
  fclose(fp);
  if (st == EBL_OK && list->count == 0)
    st = ebl_fail(EBL_EARG, "tiny_imagenet: %s: no images listed", path);
  return st;
}

/* ---- decoding ---- */

/* Decodes image i of the list into its N x 3 x 64 x 64 slot. */
static ebl_status decode_one(const image_list *list, int64_t i,
                             uint8_t *images) {
  uint8_t rgb[TINY_PIXELS];
  EBL_TRY(ebl_jpeg_read_rgb(list->paths[i], TINY_SIDE, TINY_SIDE, rgb));
  uint8_t *chw = images + (size_t)i * TINY_PIXELS;
  for (int p = 0; p < TINY_SIDE * TINY_SIDE; p++)
    for (int c = 0; c < 3; c++)
      chw[c * TINY_SIDE * TINY_SIDE + p] = rgb[3 * p + c];
  return EBL_OK;
}

/* The failure with the lowest index, shared by the decoding threads. */
typedef struct first_failure {
  int64_t index;
  ebl_status status;
  char message[512];
} first_failure;

/* Records the calling thread's failure at index i if it is the first. */
static void record_failure(first_failure *f, int64_t i, ebl_status st) {
  #pragma omp critical(ebl_tiny_imagenet_failure)
  if (i < f->index) {
    f->index = i;
    f->status = st;
    snprintf(f->message, sizeof f->message, "%s", ebl_error());
  }
}

/* Decodes every listed image in parallel; a failure stops the rest and
   is reported as the one of the lowest index among those tried. */
static ebl_status decode_all(const image_list *list, uint8_t *images) {
  first_failure fail = {INT64_MAX, EBL_OK, ""};
  volatile int stop = 0;
  #pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < list->count; i++) {
    if (stop)
      continue;
    ebl_status st = ebl_interrupted() ?
      ebl_fail(EBL_EINTR, "interrupted") : decode_one(list, i, images);
    if (st != EBL_OK) {
      record_failure(&fail, i, st);
      stop = 1;
    }
  }
  if (fail.status != EBL_OK)
    return ebl_fail(fail.status, "%s", fail.message);
  return EBL_OK;
}

/* Turns a list into a dataset. */
static ebl_status load_list(ebl_dataset *ds, const image_list *list,
                            int classes) {
  int64_t shape[4] = {list->count, 3, TINY_SIDE, TINY_SIDE};
  EBL_TRY(ebl_tensor_empty(&ds->images, EBL_U8, 4, shape, EBL_CPU));
  EBL_TRY(ebl_tensor_from_buffer(&ds->labels, EBL_I32, 1, &list->count,
                                 list->labels, EBL_I32, EBL_CPU));
  ds->classes = classes;
  return decode_all(list, ebl_tensor_data(&ds->images));
}

/* Lists a split's files, then decodes them into a dataset. */
ebl_status ebl_tiny_imagenet_read(ebl_dataset *ds, const char *dir,
                                  const char *split,
                                  const ebl_wnids *wnids) {
  image_list list = {0};
  ebl_status st;
  memset(ds, 0, sizeof *ds);
  if (strcmp(split, "train") == 0)
    st = list_train(&list, dir, wnids);
  else if (strcmp(split, "val") == 0)
    st = list_val(&list, dir, wnids);
  else
    st = ebl_fail(EBL_EARG, "tiny_imagenet: split must be 'train' or "
                  "'val', got '%s'", split);
  if (st == EBL_OK)
    st = load_list(ds, &list, wnids->count);
  list_release(&list);
  if (st != EBL_OK)
    ebl_dataset_release(ds);
  return st;
}

/* The batch loader: the order of an epoch (counter-based shuffling),
   batches made by copying, augmenting and normalising samples, and a
   prefetch thread that makes batch b+1 while the caller works on b.
   Every batch is a pure function of (seed, epoch, batch index), so the
   thread changes when a batch is made, never what it holds. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "data/data.h"
#include "philox.h"

/* Philox streams (counter word 3) of the loader's draws. */
#define STREAM_SHUFFLE 0x5348u   /* "SH" */
#define STREAM_AUGMENT 0x4147u   /* "AG" */

struct ebl_loader {
  ebl_loader_config config;
  ebl_tensor images;          /* uint8 N x C x H x W, contiguous */
  ebl_tensor labels;          /* int32 N, contiguous */
  int64_t size;               /* samples per epoch */
  int64_t batches;            /* batches per epoch */
  int channels, height, width;
  double mean[EBL_LOADER_MAX_CHANNELS], std[EBL_LOADER_MAX_CHANNELS];
  double *table;              /* channels x 256: byte -> output value */
  int32_t *order;             /* the epoch's order of sample indices */
  int64_t epoch;              /* -1 before the first start */
  int64_t next;               /* the batch ebl_loader_next gives next */

  /* The prefetch thread and the one slot it fills. */
  int running;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t wake;        /* signalled to the thread: work or quit */
  pthread_cond_t done;        /* signalled by the thread: slot filled */
  int quit;
  int busy;                   /* the thread is making a batch */
  int64_t wanted;             /* batch asked of the thread, or -1 */
  int64_t ready;              /* batch held in the slot, or -1 */
  ebl_tensor slot_x, slot_y;
  ebl_status slot_status;
  char slot_error[512];
};

/* The documented defaults; std 1 for every channel. */
ebl_loader_config ebl_loader_config_default(void) {
  ebl_loader_config c;
  memset(&c, 0, sizeof c);
  c.batch = 128;
  c.prefetch = 1;
  c.dtype = EBL_F32;
  for (int i = 0; i < EBL_LOADER_MAX_CHANNELS; i++)
    c.std[i] = 1;
  return c;
}

/* ------------------------------------------------------------------ */
/* Draws */

/* The four Philox words of counter (index, epoch, stream) under seed. */
static void draw(uint64_t seed, uint64_t index, uint64_t epoch,
                 uint32_t stream, uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)index, (uint32_t)epoch,
                     (uint32_t)(epoch >> 32), stream};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  ebl_philox4x32_10(ctr, key, out);
}

/* A number uniform in 0..n-1 from a 64-bit word by multiply-shift: its
   bias is below n / 2^64. */
static uint64_t below(uint64_t word, uint64_t n) {
  return (uint64_t)(((unsigned __int128)word * n) >> 64);
}

/* Fills order with the epoch's sample order: 0..size-1, or their
   Fisher-Yates shuffle where swap i takes the draw of counter i. */
static void make_order(ebl_loader *l, int64_t epoch) {
  for (int64_t i = 0; i < l->size; i++)
    l->order[i] = (int32_t)i;
  if (!l->config.shuffle)
    return;
  for (int64_t i = l->size - 1; i > 0; i--) {
    uint32_t w[4];
    draw(l->config.seed, (uint64_t)i, (uint64_t)epoch, STREAM_SHUFFLE, w);
    int64_t j = (int64_t)below((uint64_t)w[0] << 32 | w[1],
                               (uint64_t)i + 1);
    int32_t keep = l->order[i];
    l->order[i] = l->order[j];
    l->order[j] = keep;
  }
}

/* ------------------------------------------------------------------ */
/* Making one batch */

/* Where a sample's output pixels come from: a shift of (dy, dx) inside
   the zero padding, then an optional left-right mirror. */
typedef struct augment {
  int dy, dx, flip;
} augment;

/* The augmentation of the sample at position p of the epoch. */
static augment sample_augment(const ebl_loader *l, int64_t epoch,
                              int64_t p) {
  augment a = {0, 0, 0};
  if (l->config.crop == 0 && !l->config.flip)
    return a;
  uint32_t w[4];
  uint64_t span = 2 * (uint64_t)l->config.crop + 1;
  draw(l->config.seed, (uint64_t)p, (uint64_t)epoch, STREAM_AUGMENT, w);
  if (l->config.crop > 0) {
    a.dy = (int)below((uint64_t)w[0] << 32, span) - l->config.crop;
    a.dx = (int)below((uint64_t)w[1] << 32, span) - l->config.crop;
  }
  a.flip = l->config.flip && (w[2] >> 31);
  return a;
}

/* The output columns [*lo, *hi) of a row whose source column lies
   inside the image; the others see the zero padding. */
static void inside_columns(int w, augment a, int *lo, int *hi) {
  int shift = a.flip ? a.dx : -a.dx;
  *lo = shift > 0 ? shift : 0;
  *hi = w + shift < w ? w + shift : w;
  if (*hi < *lo)
    *hi = *lo;
}

/* Writes one channel plane of sample src through the table t:
   out(i, j) = t[src(i + dy, j' + dx)] with j' = j or its mirror
   w - 1 - j, and t[0] (a zero pixel) where that falls outside. The
   value is computed in double and rounded once to the output type. */
#define DEFINE_PLANE(name, type)                                        \
  static void name(const ebl_loader *l, const uint8_t *src,            \
                   const double *t, augment a, type *out) {            \
    int h = l->height, w = l->width, lo, hi;                           \
    type zero = (type)t[0];                                            \
    inside_columns(w, a, &lo, &hi);                                    \
    for (int i = 0; i < h; i++) {                                      \
      int si = i + a.dy;                                               \
      type *o = out + (int64_t)i * w;                                  \
      if (si < 0 || si >= h) {                                         \
        for (int j = 0; j < w; j++) o[j] = zero;                       \
        continue;                                                      \
      }                                                                \
      const uint8_t *row = src + (int64_t)si * w;                      \
      for (int j = 0; j < lo; j++) o[j] = zero;                        \
      if (a.flip)                                                      \
        for (int j = lo; j < hi; j++) o[j] = (type)t[row[w - 1 - j + a.dx]]; \
      else                                                             \
        for (int j = lo; j < hi; j++) o[j] = (type)t[row[j + a.dx]];   \
      for (int j = hi; j < w; j++) o[j] = zero;                        \
    }                                                                  \
  }

DEFINE_PLANE(plane_f32, float)
DEFINE_PLANE(plane_f64, double)

/* Copies sample s, augmented, into row k of the batch x. */
static void write_sample(const ebl_loader *l, int64_t s, augment a,
                         void *x, int64_t k) {
  int64_t plane = (int64_t)l->height * l->width;
  const uint8_t *src = (const uint8_t *)ebl_tensor_data(&l->images) +
                       s * l->channels * plane;
  for (int c = 0; c < l->channels; c++) {
    int64_t at = (k * l->channels + c) * plane;
    const double *t = l->table + 256 * c;
    if (l->config.dtype == EBL_F64)
      plane_f64(l, src + c * plane, t, a, (double *)x + at);
    else
      plane_f32(l, src + c * plane, t, a, (float *)x + at);
  }
}

/* Makes batch b of epoch (whose order is in l->order) into x and y. */
static ebl_status make_batch(const ebl_loader *l, int64_t epoch,
                             int64_t b, ebl_tensor *x, ebl_tensor *y) {
  int64_t first = b * l->config.batch;
  int64_t n = l->size - first < l->config.batch ? l->size - first
                                                : l->config.batch;
  int64_t shape[4] = {n, l->channels, l->height, l->width};
  EBL_TRY(ebl_tensor_empty(x, l->config.dtype, 4, shape, EBL_CPU));
  ebl_status st = ebl_tensor_empty(y, EBL_I32, 1, &n, EBL_CPU);
  if (st != EBL_OK) {
    ebl_tensor_release(x);
    return st;
  }
  const int32_t *labels = ebl_tensor_data(&l->labels);
  int32_t *yv = ebl_tensor_data(y);
  for (int64_t k = 0; k < n; k++) {
    int64_t s = l->order[first + k];
    yv[k] = labels[s];
    write_sample(l, s, sample_augment(l, epoch, first + k),
                 ebl_tensor_data(x), k);
  }
  return EBL_OK;
}

/* ------------------------------------------------------------------ */
/* The prefetch thread */

/* The thread's loop: wait for a wanted batch, make it, post it. */
static void *prefetch_main(void *arg) {
  ebl_loader *l = arg;
  pthread_mutex_lock(&l->lock);
  for (;;) {
    while (!l->quit && l->wanted < 0)
      pthread_cond_wait(&l->wake, &l->lock);
    if (l->quit)
      break;
    int64_t b = l->wanted, epoch = l->epoch;
    l->wanted = -1;
    l->busy = 1;
    pthread_mutex_unlock(&l->lock);

    ebl_tensor x = {0}, y = {0};
    ebl_status st = make_batch(l, epoch, b, &x, &y);

    pthread_mutex_lock(&l->lock);
    l->slot_x = x;
    l->slot_y = y;
    l->slot_status = st;
    if (st != EBL_OK)
      snprintf(l->slot_error, sizeof l->slot_error, "%s", ebl_error());
    l->ready = b;
    l->busy = 0;
    pthread_cond_broadcast(&l->done);
  }
  pthread_mutex_unlock(&l->lock);
  return NULL;
}

/* Starts the thread with every signal blocked in it, so that Ctrl-C is
   always taken by the caller's thread. */
static ebl_status start_thread(ebl_loader *l) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&l->thread, NULL, prefetch_main, l);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0)
    return ebl_fail(EBL_EDEVICE, "loader: cannot start the prefetch "
                    "thread (error %d)", err);
  l->running = 1;
  return EBL_OK;
}

/* Asks the thread for batch b (the lock is not held). */
static void request(ebl_loader *l, int64_t b) {
  pthread_mutex_lock(&l->lock);
  l->wanted = b;
  pthread_cond_signal(&l->wake);
  pthread_mutex_unlock(&l->lock);
}

/* Waits until the thread is idle, cancelling a request not yet taken
   up, and drops a batch left in the slot. */
static void drain(ebl_loader *l) {
  pthread_mutex_lock(&l->lock);
  l->wanted = -1;
  while (l->busy)
    pthread_cond_wait(&l->done, &l->lock);
  ebl_tensor_release(&l->slot_x);
  ebl_tensor_release(&l->slot_y);
  l->ready = -1;
  pthread_mutex_unlock(&l->lock);
}

/* Takes batch b from the slot, waiting for the thread to post it. */
static ebl_status take(ebl_loader *l, int64_t b, ebl_tensor *x,
                       ebl_tensor *y) {
  pthread_mutex_lock(&l->lock);
  while (l->ready != b)
    pthread_cond_wait(&l->done, &l->lock);
  ebl_status st = l->slot_status;
  *x = l->slot_x;
  *y = l->slot_y;
  memset(&l->slot_x, 0, sizeof l->slot_x);
  memset(&l->slot_y, 0, sizeof l->slot_y);
  l->ready = -1;
  if (st != EBL_OK)
    ebl_fail(st, "%s", l->slot_error);
  pthread_mutex_unlock(&l->lock);
  return st;
}

/* ------------------------------------------------------------------ */
/* Creation and the public calls */

/* Checks the images, labels and numbers of the configuration. */
static ebl_status check_config(const ebl_tensor *images,
                               const ebl_tensor *labels,
                               const ebl_loader_config *c) {
  char buf[64];
  if (images->dtype != EBL_U8 || images->ndim != 4)
    return ebl_fail(EBL_EARG, "loader: images must be uint8 N x C x H x "
                    "W, got %s %s", ebl_dtype_name(images->dtype),
                    ebl_shape_string(images, buf, sizeof buf));
  if (labels->ndim != 1 || labels->shape[0] != images->shape[0] ||
      ebl_dtype_is_float(labels->dtype))
    return ebl_fail(EBL_EARG, "loader: labels must be integers, one per "
                    "image (%lld), got %s %s", (long long)images->shape[0],
                    ebl_dtype_name(labels->dtype),
                    ebl_shape_string(labels, buf, sizeof buf));
  if (images->shape[0] > INT32_MAX)
    return ebl_fail(EBL_EARG, "loader: %lld samples, at most %d",
                    (long long)images->shape[0], INT32_MAX);
  if (c->batch < 1)
    return ebl_fail(EBL_EARG, "loader: batch must be >= 1, got %lld",
                    (long long)c->batch);
  if (c->subset < 0 || c->subset > images->shape[0])
    return ebl_fail(EBL_EARG, "loader: subset must be in 0..%lld, got "
                    "%lld", (long long)images->shape[0],
                    (long long)c->subset);
  return EBL_OK;
}

/* Checks the options that depend on the image shape. */
static ebl_status check_shape_options(const ebl_tensor *images,
                                      const ebl_loader_config *c) {
  int64_t side = images->shape[2] < images->shape[3] ? images->shape[2]
                                                     : images->shape[3];
  if (images->shape[1] > EBL_LOADER_MAX_CHANNELS)
    return ebl_fail(EBL_EARG, "loader: images have %lld channels, at "
                    "most %d", (long long)images->shape[1],
                    EBL_LOADER_MAX_CHANNELS);
  if (c->crop < 0 || c->crop > side)
    return ebl_fail(EBL_EARG, "loader: crop must be in 0..%lld, got %d",
                    (long long)side, c->crop);
  if (c->dtype != EBL_F32 && c->dtype != EBL_F64)
    return ebl_fail(EBL_EARG, "loader: dtype must be float32 or float64, "
                    "got %s", ebl_dtype_name(c->dtype));
  for (int i = 0; c->normalize && i < images->shape[1]; i++)
    if (!(c->std[i] > 0))
      return ebl_fail(EBL_EARG, "loader: std[%d] must be > 0, got %g",
                      i + 1, c->std[i]);
  return EBL_OK;
}

/* The byte -> value tables: v / 255, then (x - mean) / std. */
static void make_tables(ebl_loader *l) {
  for (int c = 0; c < l->channels; c++) {
    l->mean[c] = l->config.normalize ? l->config.mean[c] : 0;
    l->std[c] = l->config.normalize ? l->config.std[c] : 1;
    for (int v = 0; v < 256; v++) {
      double x = v / 255.0;
      l->table[256 * c + v] = l->config.normalize ?
        (x - l->mean[c]) / l->std[c] : x;
    }
  }
}

/* Takes the tensors (contiguous, labels as int32) and sizes. */
static ebl_status adopt_tensors(ebl_loader *l, const ebl_tensor *images,
                                const ebl_tensor *labels) {
  ebl_tensor ints = {0};
  EBL_TRY(ebl_tensor_contiguous(&l->images, images));
  EBL_TRY(ebl_to_dtype(&ints, labels, EBL_I32));
  ebl_status st = ebl_tensor_contiguous(&l->labels, &ints);
  ebl_tensor_release(&ints);
  EBL_TRY(st);
  l->channels = (int)images->shape[1];
  l->height = (int)images->shape[2];
  l->width = (int)images->shape[3];
  l->size = l->config.subset > 0 ? l->config.subset : images->shape[0];
  l->batches = l->config.drop_last ? l->size / l->config.batch
    : (l->size + l->config.batch - 1) / l->config.batch;
  return EBL_OK;
}

/* Allocates the loader's own memory and its lock. */
static ebl_status alloc_parts(ebl_loader *l) {
  l->table = malloc(sizeof *l->table * 256 * (size_t)l->channels);
  l->order = malloc(sizeof *l->order * (size_t)(l->size ? l->size : 1));
  if (l->table == NULL || l->order == NULL)
    return ebl_fail(EBL_ENOMEM, "loader: out of memory");
  pthread_mutex_init(&l->lock, NULL);
  pthread_cond_init(&l->wake, NULL);
  pthread_cond_init(&l->done, NULL);
  return EBL_OK;
}

/* Checks everything first, then builds the loader (no thread yet). */
ebl_status ebl_loader_new(ebl_loader **res, const ebl_tensor *images,
                          const ebl_tensor *labels,
                          const ebl_loader_config *config) {
  EBL_TRY(check_config(images, labels, config));
  EBL_TRY(check_shape_options(images, config));
  ebl_loader *l = calloc(1, sizeof *l);
  if (l == NULL)
    return ebl_fail(EBL_ENOMEM, "loader: out of memory");
  l->config = *config;
  l->epoch = -1;
  l->wanted = l->ready = -1;
  ebl_status st = adopt_tensors(l, images, labels);
  if (st == EBL_OK)
    st = alloc_parts(l);
  if (st != EBL_OK) {
    ebl_tensor_release(&l->images);
    ebl_tensor_release(&l->labels);
    free(l->table);
    free(l->order);
    free(l);
    return st;
  }
  make_tables(l);
  *res = l;
  return EBL_OK;
}

/* Stops and joins the thread, then frees everything. */
void ebl_loader_free(ebl_loader *l) {
  if (l == NULL)
    return;
  if (l->running) {
    pthread_mutex_lock(&l->lock);
    l->quit = 1;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
  }
  ebl_tensor_release(&l->slot_x);
  ebl_tensor_release(&l->slot_y);
  pthread_mutex_destroy(&l->lock);
  pthread_cond_destroy(&l->wake);
  pthread_cond_destroy(&l->done);
  ebl_tensor_release(&l->images);
  ebl_tensor_release(&l->labels);
  free(l->table);
  free(l->order);
  free(l);
}

/* The mean and std applied per channel. */
int ebl_loader_norm(const ebl_loader *l, double *mean, double *std) {
  for (int c = 0; c < l->channels; c++) {
    mean[c] = l->mean[c];
    std[c] = l->std[c];
  }
  return l->channels;
}

/* Samples per epoch. */
int64_t ebl_loader_epoch_size(const ebl_loader *l) { return l->size; }

/* Batches per epoch. */
int64_t ebl_loader_batches(const ebl_loader *l) { return l->batches; }

/* Drops what the thread was doing, draws the epoch's order and asks
   for batch 0. */
ebl_status ebl_loader_start(ebl_loader *l, int64_t epoch) {
  if (epoch < 0)
    return ebl_fail(EBL_EARG, "loader: epoch must be >= 0, got %lld",
                    (long long)epoch);
  if (l->running)
    drain(l);
  make_order(l, epoch);
  l->epoch = epoch;
  l->next = 0;
  if (!l->config.prefetch || l->batches == 0)
    return EBL_OK;
  if (!l->running)
    EBL_TRY(start_thread(l));
  request(l, 0);
  return EBL_OK;
}

/* The next batch: from the thread (then batch b+1 is asked for), or
   made here without one. */
ebl_status ebl_loader_next(ebl_loader *l, ebl_tensor *x, ebl_tensor *y,
                           int *done) {
  if (l->epoch < 0)
    return ebl_fail(EBL_EARG, "loader: no epoch started");
  *done = l->next >= l->batches;
  if (*done)
    return EBL_OK;
  int64_t b = l->next++;
  if (!l->running)
    return make_batch(l, l->epoch, b, x, y);
  ebl_status st = take(l, b, x, y);
  if (l->next < l->batches)
    request(l, l->next);
  return st;
}

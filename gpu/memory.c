/* The caching allocator of device memory. Sizes are rounded up to a
   class (four per power of two, at least 512 bytes: at most a quarter
   wasted); a freed block goes to its class's free list and the next
   request of that class takes it back, so a loop that allocates the
   same shapes over and over calls cudaMalloc only in its first round.
   Blocks over 256 MiB are rounded to 2 MiB and reused best-fit within
   an eighth. All work runs on one stream, in order, so a block freed
   while kernels that use it are still queued can be handed out at once:
   its next user's work is queued behind theirs. When cudaMalloc fails,
   the cache is returned to the driver and the request tried again. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "gpu/gpu.h"

#define MIN_BLOCK ((size_t)512)
#define LARGE ((size_t)256 << 20)
#define LARGE_STEP ((size_t)2 << 20)
#define NCLASSES 80

typedef struct block {
  void *ptr;
  size_t size;            /* the rounded size held */
  size_t asked;           /* what the caller asked for */
  struct block *next;     /* in a free list or a hash chain */
} block;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static block *free_class[NCLASSES];
static block *free_large;
static block **live;                /* hash chains of blocks in use */
static size_t live_buckets, live_count;
static ebl_cuda_memory_stats stats;

/* ---- sizes */

/* The class of a rounded size below LARGE: 0 for 512, then four per
   octave. */
static int class_of(size_t size) {
  if (size <= MIN_BLOCK) return 0;
  int k = 63 - __builtin_clzll((unsigned long long)(size - 1));
  size_t base = (size_t)1 << k, step = base / 4;
  return (k - 9) * 4 + (int)((size - base) / step);
}

/* nbytes rounded up to its class, or to 2 MiB for large blocks. */
static size_t rounded(size_t nbytes) {
  if (nbytes <= MIN_BLOCK) return MIN_BLOCK;
  if (nbytes > LARGE)
    return (nbytes + LARGE_STEP - 1) / LARGE_STEP * LARGE_STEP;
  int k = 63 - __builtin_clzll((unsigned long long)(nbytes - 1));
  size_t base = (size_t)1 << k, step = base / 4;
  return base + (nbytes - base + step - 1) / step * step;
}

/* Writes a byte count as "2.00 GiB", "512 bytes", ... into buf. */
static const char *human(size_t n, char *buf, size_t len) {
  static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = -1;
  while (v >= 1024.0 && u < 3) {
    v /= 1024.0;
    u++;
  }
  if (u < 0) snprintf(buf, len, "%zu bytes", n);
  else snprintf(buf, len, "%.2f %s", v, units[u]);
  return buf;
}

/* ---- the table of blocks in use */

static size_t bucket_of(const void *ptr, size_t buckets) {
  uintptr_t p = (uintptr_t)ptr >> 9;
  return (size_t)((p * 0x9E3779B97F4A7C15ull) >> 20) & (buckets - 1);
}

/* Doubles the table when it is full; returns 0 when out of memory. */
static int live_grow(void) {
  if (live_count < live_buckets) return 1;
  size_t n = live_buckets ? 2 * live_buckets : 1024;
  block **t = calloc(n, sizeof *t);
  if (!t) return 0;
  for (size_t i = 0; i < live_buckets; i++)
    while (live[i]) {
      block *b = live[i];
      live[i] = b->next;
      size_t j = bucket_of(b->ptr, n);
      b->next = t[j];
      t[j] = b;
    }
  free(live);
  live = t;
  live_buckets = n;
  return 1;
}

static void live_add(block *b) {
  size_t j = bucket_of(b->ptr, live_buckets);
  b->next = live[j];
  live[j] = b;
  live_count++;
}

/* Removes and returns the block of ptr, or NULL. */
static block *live_take(const void *ptr) {
  if (!live) return NULL;
  block **at = &live[bucket_of(ptr, live_buckets)];
  for (; *at; at = &(*at)->next)
    if ((*at)->ptr == ptr) {
      block *b = *at;
      *at = b->next;
      live_count--;
      return b;
    }
  return NULL;
}

/* ---- free lists */

/* A cached block for a rounded size, or NULL. */
static block *take_cached(size_t size) {
  if (size <= LARGE) {
    block *b = free_class[class_of(size)];
    if (b) free_class[class_of(size)] = b->next;
    return b;
  }
  block **best = NULL;
  for (block **at = &free_large; *at; at = &(*at)->next)
    if ((*at)->size >= size && (*at)->size <= size + size / 8 &&
        (!best || (*at)->size < (*best)->size))
      best = at;
  if (!best) return NULL;
  block *b = *best;
  *best = b->next;
  return b;
}

static void put_cached(block *b) {
  block **list = b->size <= LARGE ? &free_class[class_of(b->size)]
                                  : &free_large;
  b->next = *list;
  *list = b;
  stats.cached += b->size;
}

/* Returns every cached block to the driver, after the queued work
   that may still touch them. Called with the lock. */
static cudaError_t release_cached(void) {
  cudaError_t first = cudaStreamSynchronize(ebl_gpu_stream);
  for (int c = 0; c <= NCLASSES; c++) {
    block **list = c < NCLASSES ? &free_class[c] : &free_large;
    while (*list) {
      block *b = *list;
      *list = b->next;
      cudaError_t err = cudaFree(b->ptr);
      if (first == cudaSuccess) first = err;
      stats.cached -= b->size;
      stats.device_frees++;
      free(b);
    }
  }
  return first;
}

/* A new block from the driver, retried once after emptying the cache. */
static block *fresh_block(size_t size) {
  block *b = malloc(sizeof *b);
  if (!b) return NULL;
  b->size = size;
  if (cudaMalloc(&b->ptr, size) != cudaSuccess) {
    cudaGetLastError();
    release_cached();
    if (cudaMalloc(&b->ptr, size) != cudaSuccess) {
      cudaGetLastError();
      free(b);
      return NULL;
    }
  }
  stats.device_mallocs++;
  return b;
}

/* ---- the allocator's entries */

void *ebl_gpu_alloc(size_t nbytes) {
  size_t size = rounded(nbytes);
  pthread_mutex_lock(&lock);
  block *b = NULL;
  if (live_grow()) {
    b = take_cached(size);
    if (b) stats.cached -= b->size;
    else b = fresh_block(size);
  }
  if (b) {
    b->asked = nbytes;
    live_add(b);
    stats.in_use += b->size;
    stats.requested += nbytes;
    if (stats.in_use > stats.peak) stats.peak = stats.in_use;
  }
  pthread_mutex_unlock(&lock);
  return b ? b->ptr : NULL;
}

void ebl_gpu_free(void *data) {
  if (!data) return;
  pthread_mutex_lock(&lock);
  block *b = live_take(data);
  if (b) {
    stats.in_use -= b->size;
    stats.requested -= b->asked;
    put_cached(b);
  }
  pthread_mutex_unlock(&lock);
}

ebl_status ebl_gpu_scratch(const char *op, size_t nbytes, void **data) {
  char size[32];
  *data = ebl_gpu_alloc(nbytes);
  if (*data) return EBL_OK;
  return ebl_gpu_fail(EBL_ENOMEM, "%s: cannot allocate %s of scratch", op,
                      human(nbytes, size, sizeof size));
}

/* The message of a failed storage allocation. */
ebl_status ebl_gpu_alloc_failed(size_t nbytes) {
  char asked[32], used[32], total[32];
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaGetLastError();
  pthread_mutex_lock(&lock);
  size_t in_use = stats.in_use;
  pthread_mutex_unlock(&lock);
  return ebl_gpu_fail(EBL_ENOMEM, "cuda: out of memory allocating %s "
                      "(in use %s, device holds %s)",
                      human(nbytes, asked, sizeof asked),
                      human(in_use, used, sizeof used),
                      human(total_bytes, total, sizeof total));
}

ebl_status ebl_gpu_memory_stats(ebl_cuda_memory_stats *out) {
  pthread_mutex_lock(&lock);
  *out = stats;
  pthread_mutex_unlock(&lock);
  return EBL_OK;
}

ebl_status ebl_gpu_empty_cache(void) {
  pthread_mutex_lock(&lock);
  cudaError_t err = release_cached();
  pthread_mutex_unlock(&lock);
  return ebl_gpu_check("empty_cache", err);
}

/* ---- copies to and from the host */

ebl_status ebl_gpu_to_host(void *host_dst, const void *data,
                           size_t nbytes) {
  return ebl_gpu_read("to_host", host_dst, data, nbytes);
}

/* Waits for the copy: the host memory may be a caller's stack. */
ebl_status ebl_gpu_from_host(void *data, const void *host_src,
                             size_t nbytes) {
  if (nbytes == 0) return EBL_OK;
  cudaError_t err = cudaMemcpyAsync(data, host_src, nbytes,
                                    cudaMemcpyHostToDevice, ebl_gpu_stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(ebl_gpu_stream);
  return ebl_gpu_check("from_host", err);
}

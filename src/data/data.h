/* The data layer of the core: readers for IDX (MNIST, Fashion-MNIST),
   CIFAR-10/100 binary and Tiny ImageNet folders, and the batch loader
   with shuffling, augmentation and a prefetch thread. Knows no Lua. */
#ifndef EBL_DATA_H
#define EBL_DATA_H

#include <stdint.h>

#include "tensor.h"

/* ------------------------------------------------------------------ */
/* Datasets */

/* A labelled image set as the readers return it. */
typedef struct ebl_dataset {
  ebl_tensor images;   /* uint8, N x C x H x W */
  ebl_tensor labels;   /* int32, N, class values 0..classes-1 */
  ebl_tensor coarse;   /* int32, N: CIFAR-100's superclasses; else none */
  int classes;         /* number of classes the labels range over */
} ebl_dataset;

/* Drops the tensors of ds and zeroes it. */
void ebl_dataset_release(ebl_dataset *ds);

/* ------------------------------------------------------------------ */
/* IDX files (gzip-compressed or raw, told apart by the gzip magic).
   The magic is 0x0000TTNN: TT the element type (0x08 uint8, 0x09 int8,
   0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64, all big-endian),
   NN the number of dims (1..8). uint8 stays uint8, the integer types
   become int32, the float types float32 and float64. */

/* Reads the IDX file at path into a new tensor of its shape. Fails with
   "idx: <path>: <fault>" for a bad magic, a truncated file, trailing
   bytes, or a broken gzip stream. */
ebl_status ebl_idx_read(ebl_tensor *res, const char *path);

/* Reads an MNIST-style pair: images (magic 0x00000803, N x H x W) and
   labels (0x00000801, N, each < classes). ds->images is N x 1 x H x W. */
ebl_status ebl_mnist_read(ebl_dataset *ds, const char *images_path,
                          const char *labels_path, int classes);

/* ------------------------------------------------------------------ */
/* CIFAR binary files: records of label byte(s) and 3 x 32 x 32 pixels
   (1024 red, 1024 green, 1024 blue). CIFAR-10 records carry one label
   byte (classes 10); CIFAR-100 ones a coarse (20) and a fine (100)
   label, in that order; ds->labels are the fine ones. */

typedef enum ebl_cifar_kind { EBL_CIFAR10, EBL_CIFAR100 } ebl_cifar_kind;

/* Reads and concatenates npaths files of one kind. Every file's size
   must be a nonzero multiple of the record size. */
ebl_status ebl_cifar_read(ebl_dataset *ds, ebl_cifar_kind kind,
                          const char *const *paths, int npaths);

/* ------------------------------------------------------------------ */
/* JPEG and Tiny ImageNet */

/* Decodes the JPEG file at path as RGB (grayscale converted) into
   pixels, height x width x 3 bytes; the image must have exactly that
   size. Corrupt or truncated data is an error, never a partial image. */
ebl_status ebl_jpeg_read_rgb(const char *path, int height, int width,
                             uint8_t *pixels);

/* Class ids (wnids) in the order of dir/wnids.txt: label i is wnid i. */
typedef struct ebl_wnids {
  int count;
  char (*ids)[16];
} ebl_wnids;

/* Reads dir/wnids.txt. */
ebl_status ebl_wnids_read(ebl_wnids *res, const char *dir);
/* Frees the list. */
void ebl_wnids_release(ebl_wnids *w);

/* Reads one split of the Tiny ImageNet tree at dir: "train"
   (train/<wnid>/images/<name>.JPEG, sorted by name within each class,
   the classes in wnids order) or "val" (val/images/ named by
   val/val_annotations.txt, in its order). Images are 3 x 64 x 64. */
ebl_status ebl_tiny_imagenet_read(ebl_dataset *ds, const char *dir,
                                  const char *split,
                                  const ebl_wnids *wnids);

/* ------------------------------------------------------------------ */
/* Per-channel statistics of a uint8 image set scaled to [0, 1]:
   exact mean and (biased) standard deviation from byte histograms. */
ebl_status ebl_channel_stats(const ebl_tensor *images, int64_t count,
                             double *mean, double *std);

/* ------------------------------------------------------------------ */
/* The batch loader. Batch b of epoch e holds the samples at positions
   b*batch .. of the epoch's order: 0..n-1, or with shuffle a
   permutation drawn by Fisher-Yates from Philox4x32-10 keyed by the
   seed with counters (i, epoch): the same for every run, thread count
   and global RNG state. Augmentation draws for the sample at position
   p come from the counter (p, epoch) of a second stream. A batch is
   x: dtype, batch x C x H x W, (pixel / 255 - mean[c]) / std[c], and
   y: int32 labels. A background thread prepares the next batch while
   the caller works; it runs no OpenMP, and a batch is bitwise the same
   with or without it. */

#define EBL_LOADER_MAX_CHANNELS 16

typedef struct ebl_loader_config {
  int64_t batch;        /* >= 1 */
  int shuffle;          /* draw a permutation per epoch */
  uint64_t seed;        /* key of the shuffle and augmentation draws */
  int drop_last;        /* leave out a last, smaller batch */
  int64_t subset;       /* use the first subset samples; 0: all */
  int normalize;        /* apply mean and std */
  double mean[EBL_LOADER_MAX_CHANNELS];
  double std[EBL_LOADER_MAX_CHANNELS];
  int crop;             /* random crop with this zero padding; 0: none */
  int flip;             /* mirror left-right with probability 1/2 */
  int prefetch;         /* prepare the next batch in a thread */
  ebl_dtype dtype;      /* F32 or F64 */
} ebl_loader_config;

typedef struct ebl_loader ebl_loader;

/* The defaults: batch 128, no shuffle, seed 0, float32, prefetch on. */
ebl_loader_config ebl_loader_config_default(void);

/* A loader over images (uint8 N x C x H x W) and labels (int32 N);
   holds references to both. */
ebl_status ebl_loader_new(ebl_loader **res, const ebl_tensor *images,
                          const ebl_tensor *labels,
                          const ebl_loader_config *config);
/* Stops the thread (joining it) and frees the loader. NULL is ignored. */
void ebl_loader_free(ebl_loader *loader);

/* The per-channel mean and std the loader applies (channels entries;
   0 and 1 without normalisation). Returns the channel count. */
int ebl_loader_norm(const ebl_loader *loader, double *mean, double *std);
/* Samples an epoch visits (the subset, or all). */
int64_t ebl_loader_epoch_size(const ebl_loader *loader);
/* Batches per epoch. */
int64_t ebl_loader_batches(const ebl_loader *loader);

/* Starts epoch (>= 0): the next ebl_loader_next gives its batch 0. A
   batch being prepared for an earlier epoch is waited for and dropped. */
ebl_status ebl_loader_start(ebl_loader *loader, int64_t epoch);
/* Creates the next batch of the epoch in *x and *y and sets *done to 0,
   or sets *done to 1 when the epoch has no batch left. */
ebl_status ebl_loader_next(ebl_loader *loader, ebl_tensor *x,
                           ebl_tensor *y, int *done);

#endif

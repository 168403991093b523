/* What every dataset shares: releasing one, and the per-channel
   statistics that normalisation uses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

/* Drops the dataset's tensors. */
void ebl_dataset_release(ebl_dataset *ds) {
  ebl_tensor_release(&ds->images);
  ebl_tensor_release(&ds->labels);
  ebl_tensor_release(&ds->coarse);
  memset(ds, 0, sizeof *ds);
}

/* Counts each byte value of every channel over the first count images
   (contiguous N x C x plane); hist has C x 256 entries. */
static void channel_histograms(const uint8_t *pixels, int64_t count,
                               int channels, int64_t plane,
                               uint64_t *hist) {
  for (int64_t n = 0; n < count; n++)
    for (int c = 0; c < channels; c++) {
      const uint8_t *p = pixels + (n * channels + c) * plane;
      uint64_t *h = hist + 256 * c;
      for (int64_t i = 0; i < plane; i++)
        h[p[i]]++;
    }
}

/* Mean and biased std of the values v / 255 weighted by the histogram h,
   summed in double over the 256 bins: exact up to rounding. */
static void histogram_moments(const uint64_t *h, double *mean,
                              double *std) {
  double total = 0, sum = 0, squares = 0;
  for (int v = 0; v < 256; v++)
    total += (double)h[v], sum += (double)h[v] * (v / 255.0);
  *mean = total > 0 ? sum / total : 0;
  for (int v = 0; v < 256; v++) {
    double d = v / 255.0 - *mean;
    squares += (double)h[v] * d * d;
  }
  *std = total > 0 ? sqrt(squares / total) : 0;
}

/* Per-channel mean and std over the first count images. */
ebl_status ebl_channel_stats(const ebl_tensor *images, int64_t count,
                             double *mean, double *std) {
  if (images->dtype != EBL_U8 || images->ndim != 4 ||
      !ebl_tensor_is_contiguous(images))
    return ebl_fail(EBL_EARG, "channel_stats: images must be contiguous "
                    "uint8 N x C x H x W");
  if (count < 0 || count > images->shape[0])
    return ebl_fail(EBL_EARG, "channel_stats: count %lld out of range "
                    "0..%lld", (long long)count,
                    (long long)images->shape[0]);
  int channels = (int)images->shape[1];
  uint64_t *hist = calloc((size_t)channels * 256, sizeof *hist);
  if (hist == NULL)
    return ebl_fail(EBL_ENOMEM, "channel_stats: out of memory");
  channel_histograms(ebl_tensor_data(images), count, channels,
                     images->shape[2] * images->shape[3], hist);
  for (int c = 0; c < channels; c++)
    histogram_moments(hist + 256 * c, &mean[c], &std[c]);
  free(hist);
  return EBL_OK;
}

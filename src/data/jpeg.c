/* JPEG decoding through libjpeg: one file to an RGB image of a known
   size. libjpeg reports fatal errors through a callback that must not
   return, so the decoder jumps back out of it with longjmp; warnings
   that mean damaged pixels are turned into errors too. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "data/data.h"

/* libjpeg's error manager with a way back and the first bad warning. */
typedef struct jpeg_fault {
  struct jpeg_error_mgr mgr;
  jmp_buf escape;
  int corrupt;                      /* a damaging warning was seen */
  char message[JMSG_LENGTH_MAX];
} jpeg_fault;

/* Fatal errors: keep the text and jump back to the decoder. */
static void on_error(j_common_ptr cinfo) {
  jpeg_fault *fault = (jpeg_fault *)cinfo->err;
  cinfo->err->format_message(cinfo, fault->message);
  longjmp(fault->escape, 1);
}

/* Nonzero for the warnings after which pixels are wrong or missing. */
static int is_damage(int code) {
  return code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER ||
         code == JWRN_MUST_RESYNC || code == JWRN_HUFF_BAD_CODE ||
         code == JWRN_NOT_SEQUENTIAL || code == JWRN_BOGUS_PROGRESSION;
}

/* Messages: traces (level >= 0) are dropped; the first damaging warning
   is kept to be reported once decoding ends. Nothing is printed. */
static void on_message(j_common_ptr cinfo, int level) {
  jpeg_fault *fault = (jpeg_fault *)cinfo->err;
  if (level >= 0 || fault->corrupt || !is_damage(cinfo->err->msg_code))
    return;
  cinfo->err->format_message(cinfo, fault->message);
  fault->corrupt = 1;
}

/* Reads the scanlines of a started decompression into pixels. */
static void read_rows(struct jpeg_decompress_struct *cinfo, int width,
                      uint8_t *pixels) {
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = pixels + (size_t)cinfo->output_scanline * width * 3;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
}

/* Decodes fp; on a libjpeg error control comes back to the setjmp. */
static ebl_status decode(FILE *fp, const char *path, int height,
                         int width, uint8_t *pixels) {
  struct jpeg_decompress_struct cinfo;
  jpeg_fault fault;
  memset(&fault, 0, sizeof fault);
  cinfo.err = jpeg_std_error(&fault.mgr);
  fault.mgr.error_exit = on_error;
  fault.mgr.emit_message = on_message;
  if (setjmp(fault.escape)) {
    jpeg_destroy_decompress(&cinfo);
    return ebl_fail(EBL_EARG, "jpeg: %s: %s", path, fault.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, fp);
  jpeg_read_header(&cinfo, TRUE);
  if ((int)cinfo.image_width != width || (int)cinfo.image_height != height) {
    jpeg_destroy_decompress(&cinfo);
    return ebl_fail(EBL_EARG, "jpeg: %s: image is %ux%u, expected %dx%d",
                    path, cinfo.image_height, cinfo.image_width, height,
                    width);
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  read_rows(&cinfo, width, pixels);
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (fault.corrupt)
    return ebl_fail(EBL_EARG, "jpeg: %s: %s", path, fault.message);
  return EBL_OK;
}

/* Opens path and decodes it into pixels (height x width x 3). */
ebl_status ebl_jpeg_read_rgb(const char *path, int height, int width,
                             uint8_t *pixels) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return ebl_fail(EBL_EARG, "jpeg: %s: %s", path, strerror(errno));
  ebl_status st = decode(fp, path, height, width, pixels);
  fclose(fp);
  return st;
}

/* A minimal TAP producer for the C unit tests: each check prints one
   "ok N - name" or "not ok N - name" line; main returns the failures. */
#ifndef EBL_TAP_H
#define EBL_TAP_H

#include <math.h>
#include <stdio.h>

static int tap_count = 0;
static int tap_failed = 0;

/* Records one check; extra printf-style details go on a '#' line. */
#define CHECK(cond, ...)                                              \
  do {                                                                \
    int ok_ = (cond);                                                 \
    tap_count++;                                                      \
    printf("%s %d - ", ok_ ? "ok" : "not ok", tap_count);             \
    printf(__VA_ARGS__);                                              \
    printf("\n");                                                     \
    if (!ok_) {                                                       \
      tap_failed++;                                                   \
      printf("#   at %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                 \
  } while (0)

/* |a - b| <= tol * max(1, |b|), reported with both values. */
#define CHECK_CLOSE(a, b, tol, ...)                                   \
  do {                                                                \
    double a_ = (a), b_ = (b);                                        \
    int close_ = fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_));        \
    CHECK(close_, __VA_ARGS__);                                       \
    if (!close_)                                                      \
      printf("#   got %.17g, expected %.17g\n", a_, b_);              \
  } while (0)

#define SKIP(reason, ...)                                             \
  do {                                                                \
    tap_count++;                                                      \
    printf("ok %d - ", tap_count);                                    \
    printf(__VA_ARGS__);                                              \
    printf(" # SKIP %s\n", reason);                                   \
  } while (0)

static inline int tap_done(void) {
  printf("1..%d\n", tap_count);
  return tap_failed != 0;
}

#endif

/* Unit tests of the core's error reporting and interrupt flag. */
#include <string.h>

#include "interrupt.h"
#include "tap.h"
#include "tensor.h"

/* A long loop written the way ebl's C loops are: polls between chunks. */
static ebl_status long_loop(long n, long *done) {
  for (*done = 0; *done < n; (*done)++) {
    if ((*done & 1023) == 0 && ebl_interrupted())
      return ebl_fail(EBL_EINTR, "interrupted");
  }
  return EBL_OK;
}

int main(void) {
  ebl_status s = ebl_fail(EBL_EARG, "matmul: shapes %dx%d and %dx%d do "
                          "not fit (%d ~= %d)", 3, 4, 3, 4, 4, 3);
  CHECK(s == EBL_EARG, "ebl_fail returns its status");
  CHECK(strcmp(ebl_error(), "matmul: shapes 3x4 and 3x4 do not fit "
               "(4 ~= 3)") == 0, "ebl_error keeps the formatted message");

  char big[2000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  ebl_fail(EBL_EARG, "%s", big);
  CHECK(strlen(ebl_error()) < sizeof big, "long messages are truncated");

  long done = 0;
  ebl_interrupt_clear();
  CHECK(long_loop(100000, &done) == EBL_OK && done == 100000,
        "a loop runs to the end without the flag");
  ebl_interrupt_raise();
  CHECK(long_loop(100000, &done) == EBL_EINTR && done == 0,
        "a raised flag stops a loop at its first poll");
  CHECK(strcmp(ebl_error(), "interrupted") == 0, "the message says so");
  ebl_interrupt_clear();
  CHECK(!ebl_interrupted(), "clearing the flag");
  return tap_done();
}

/* Error reporting of the core: a message per thread, read by the binding
   layer after a function returned a status other than EBL_OK. */
#include <stdarg.h>
#include <stdio.h>

#include "tensor.h"

static _Thread_local char last_error[512] = "no error";

const char *ebl_error(void) { return last_error; }

ebl_status ebl_fail(ebl_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

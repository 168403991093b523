/* The interrupt flag shared by the host's signal handler and C loops. */
#include "interrupt.h"

volatile sig_atomic_t ebl_interrupt_flag = 0;

/* Called from a signal handler: only touches the flag. */
void ebl_interrupt_raise(void) { ebl_interrupt_flag = 1; }

void ebl_interrupt_clear(void) { ebl_interrupt_flag = 0; }

/* The interrupt flag: set by Ctrl-C in the host, polled by long C loops
   (tensor kernels, the inference loop) between iterations. */
#ifndef EBL_INTERRUPT_H
#define EBL_INTERRUPT_H

#include <signal.h>

extern volatile sig_atomic_t ebl_interrupt_flag;

/* Nonzero once Ctrl-C was pressed; cheap enough for inner loops. */
static inline int ebl_interrupted(void) { return ebl_interrupt_flag != 0; }

void ebl_interrupt_raise(void);
void ebl_interrupt_clear(void);

#endif

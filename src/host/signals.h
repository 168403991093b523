/* Signal handling shared by the command line and the prompt. */
#ifndef EBL_HOST_SIGNALS_H
#define EBL_HOST_SIGNALS_H

void host_signals_install(void);
/* 1 once per Ctrl-C pressed at the prompt (no code running), else 0. */
int host_prompt_interrupted(void);

#endif

/* The Lua library compiled into the binary (see scripts/embed.lua). */
#ifndef EBL_LEMBED_H
#define EBL_LEMBED_H

#include <stddef.h>

typedef struct ebl_embedded_file {
  const char *module;     /* "ebl.repl" */
  const char *chunkname;  /* "@lua/ebl/repl.lua", for tracebacks */
  const char *source;
  size_t length;
} ebl_embedded_file;

/* Terminated by an entry whose module is NULL. */
extern const ebl_embedded_file ebl_embedded[];

#endif

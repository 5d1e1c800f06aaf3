/* Internal: the default allocator of pools and receivers
 * (alloc_jemalloc.c). */
#ifndef MLLPI_ALLOC_H
#define MLLPI_ALLOC_H

#include <mllp/alloc.h>

/* jemalloc's private arena, or the C library's allocator in builds without
 * jemalloc and under sanitizers. 0 always. */
int mllpi_default_allocator(struct mllp_allocator *out);
/* Which one that is in this build: "jemalloc" and its version ("5.3.0"),
 * or "libc" and NULL (-DMLLP_JEMALLOC=OFF, sanitizer builds). Static
 * strings. */
void mllpi_default_allocator_build(const char **name, const char **version);

#endif

/* libmllp: the allocator hook.
 *
 * Everything the library allocates goes through a struct mllp_allocator.
 * The library never replaces the host process's malloc. The protocol core
 * (framer) defaults to the C library's allocator; the pool defaults to
 * jemalloc's mallocx/dallocx in a private arena (see pool.h).
 *
 * Threading: the callbacks are called from whichever thread uses the object
 * that owns them (for the pool: the manager thread and producer threads), so
 * they must be thread-safe when the allocator is shared. */
#ifndef MLLP_ALLOC_H
#define MLLP_ALLOC_H

#include <stddef.h>

#include <mllp/export.h>

MLLP_BEGIN_DECLS

struct mllp_allocator {
	/* Returns size bytes aligned for any type, or NULL. */
	void *(*alloc)(void *ctx, size_t size);
	/* Resizes p (old_size bytes, may be NULL with old_size 0) to
	 * new_size; returns NULL and leaves p untouched on failure. */
	void *(*realloc)(void *ctx, void *p, size_t old_size, size_t new_size);
	/* Releases p (size bytes, as allocated); p may be NULL. */
	void (*free)(void *ctx, void *p, size_t size);
	void *ctx;
};

/* The C library's malloc/realloc/free. Static storage; never NULL. */
MLLP_API const struct mllp_allocator *mllp_allocator_libc(void);

MLLP_END_DECLS

#endif

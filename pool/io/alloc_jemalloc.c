/* The pool's default allocator: jemalloc's mallocx/dallocx in a private
 * arena (mallctl "arenas.create"), so the library's memory never mixes
 * with the host's heap and the host's malloc is never replaced.
 *
 * One arena per process, created on first use (pthread_once) and never
 * destroyed: arenas cannot be reclaimed while any future still holds memory
 * from it, and futures may outlive their pool. Under ThreadSanitizer and
 * AddressSanitizer the C library's allocator is used instead: jemalloc is
 * not instrumented, and ASan would not see a use after free of a future.
 *
 * Thread caches: each thread that allocates or frees through this
 * allocator gets its own explicit jemalloc tcache ("tcache.create"), used
 * only here, so it only ever holds objects of the private arena. Without
 * one, every allocation and free takes the arena's bin lock, and a future
 * is allocated by a producer and freed on the manager thread: the lock's
 * cache line would travel between them twice per message. The tcache is
 * flushed back to the arena and destroyed when its thread exits (a
 * pthread key destructor). Where no tcache can be created (jemalloc's
 * limit on explicit tcaches reached), that thread goes without one. */
#include "alloc.h"

#include <pthread.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MLLPI_NO_JEMALLOC 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define MLLPI_NO_JEMALLOC 1
#endif
#endif

#ifndef MLLPI_NO_JEMALLOC
#include <jemalloc/jemalloc.h>

static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static unsigned arena_index;
static int arena_ok;
static pthread_key_t tcache_key;
static int tcache_key_ok;

/* This thread's tcache: 0 not yet asked for, 1 + id, or -1 none. */
static __thread long tcache_slot;

static void tcache_destroy(void *v)
{
	unsigned id = (unsigned)((uintptr_t)v - 1);
	mallctl("tcache.destroy", NULL, NULL, &id, sizeof(id));
}

static void arena_create(void)
{
	size_t sz = sizeof(arena_index);
	arena_ok = mallctl("arenas.create", &arena_index, &sz, NULL, 0) == 0;
	tcache_key_ok = pthread_key_create(&tcache_key, tcache_destroy) == 0;
}

static int tcache_flag(void)
{
	if (tcache_slot > 0)
		return MALLOCX_TCACHE((unsigned)(tcache_slot - 1));
	if (tcache_slot < 0)
		return MALLOCX_TCACHE_NONE;
	unsigned id;
	size_t sz = sizeof(id);
	tcache_slot = -1;
	if (tcache_key_ok && mallctl("tcache.create", &id, &sz, NULL, 0) == 0) {
		if (pthread_setspecific(tcache_key,
					(void *)((uintptr_t)id + 1)) == 0)
			tcache_slot = (long)id + 1;
		else
			tcache_destroy((void *)((uintptr_t)id + 1));
	}
	return tcache_slot > 0 ? MALLOCX_TCACHE(id) : MALLOCX_TCACHE_NONE;
}

static int flags_of(void *ctx)
{
	return MALLOCX_ARENA((unsigned)(uintptr_t)ctx) | tcache_flag();
}

static void *je_alloc(void *ctx, size_t size)
{
	return mallocx(size ? size : 1, flags_of(ctx));
}

static void *je_realloc(void *ctx, void *p, size_t old_size, size_t new_size)
{
	(void)old_size;
	if (!p)
		return je_alloc(ctx, new_size);
	return rallocx(p, new_size ? new_size : 1, flags_of(ctx));
}

static void je_free(void *ctx, void *p, size_t size)
{
	(void)size; /* dallocx, not sdallocx: robust to a wrong size */
	if (p)
		dallocx(p, flags_of(ctx));
}
#endif

#define MLLPI_STR_(x) #x
#define MLLPI_STR(x)  MLLPI_STR_(x)

void mllpi_default_allocator_build(const char **name, const char **version)
{
#ifndef MLLPI_NO_JEMALLOC
	*name = "jemalloc";
	*version = MLLPI_STR(JEMALLOC_VERSION_MAJOR) "." MLLPI_STR(
	    JEMALLOC_VERSION_MINOR) "." MLLPI_STR(JEMALLOC_VERSION_BUGFIX);
#else
	*name = "libc";
	*version = NULL;
#endif
}

int mllpi_default_allocator(struct mllp_allocator *out)
{
#ifndef MLLPI_NO_JEMALLOC
	pthread_once(&arena_once, arena_create);
	if (arena_ok) {
		out->alloc = je_alloc;
		out->realloc = je_realloc;
		out->free = je_free;
		out->ctx = (void *)(uintptr_t)arena_index;
		return 0;
	}
#endif
	*out = *mllp_allocator_libc();
	return 0;
}

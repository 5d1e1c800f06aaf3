/* libmllp: the C library allocator behind struct mllp_allocator. */
#include <stdlib.h>

#include <mllp/alloc.h>

static void *mllpi_libc_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void *mllpi_libc_realloc(void *ctx, void *p, size_t old_size,
				size_t new_size)
{
	(void)ctx;
	(void)old_size;
	return realloc(p, new_size);
}

static void mllpi_libc_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

static const struct mllp_allocator mllpi_libc = {
    .alloc = mllpi_libc_alloc,
    .realloc = mllpi_libc_realloc,
    .free = mllpi_libc_free,
    .ctx = NULL,
};

const struct mllp_allocator *mllp_allocator_libc(void)
{
	return &mllpi_libc;
}

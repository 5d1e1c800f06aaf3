/* C shim so the C++ benchmark can drive the pool's queue (pool/io/mpsc.h
 * and pool/io/subq.h use C11 atomics). */
#include <stdlib.h>

#include "subq.h"
#include "mpsc_shim.h"

/* Whole cache lines, as the pool's queues are laid out for. */
static void *alloc_lines(size_t size)
{
	void *p = aligned_alloc(64, (size + 63) / 64 * 64);
	if (!p)
		abort();
	return p;
}

void mllpi_bench_free(void *q)
{
	free(q);
}

struct mllpi_subq *mllpi_bench_subq_new(void)
{
	struct mllpi_subq *q = alloc_lines(sizeof(*q));
	mllpi_subq_init(q);
	return q;
}

bool mllpi_bench_subq_push(struct mllpi_subq *q, struct mllpi_node *n)
{
	return mllpi_subq_push(q, n) == MLLPI_PUSHED_WAKE;
}

struct mllpi_node *mllpi_bench_subq_pop(struct mllpi_subq *q)
{
	return mllpi_subq_pop(q);
}

bool mllpi_bench_subq_maybe_nonempty(struct mllpi_subq *q)
{
	return mllpi_subq_maybe_nonempty(q);
}

bool mllpi_bench_subq_prepare_sleep(struct mllpi_subq *q)
{
	return mllpi_subq_prepare_sleep(q);
}

void mllpi_bench_subq_awake(struct mllpi_subq *q)
{
	mllpi_subq_awake(q);
}

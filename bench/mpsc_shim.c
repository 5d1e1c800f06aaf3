/* C shim so the C++ benchmark can drive the pool's queues (pool/mpsc.h
 * and pool/subq.h use C11 atomics). */
#include <stdlib.h>

#include "subq.h"
#include "mpsc_shim.h"

struct mllpi_mpsc *mllpi_bench_q_new(void)
{
	struct mllpi_mpsc *q =
	    aligned_alloc(64, (sizeof(struct mllpi_mpsc) + 63) / 64 * 64);
	mllpi_mpsc_init(q);
	return q;
}

void mllpi_bench_q_free(struct mllpi_mpsc *q)
{
	free(q);
}

void mllpi_bench_q_push(struct mllpi_mpsc *q, struct mllpi_node *n)
{
	mllpi_mpsc_push(q, n);
}

struct mllpi_node *mllpi_bench_q_pop(struct mllpi_mpsc *q)
{
	return mllpi_mpsc_pop(q);
}

size_t mllpi_bench_node_size(void)
{
	return sizeof(struct mllpi_node);
}

bool mllpi_bench_q_maybe_nonempty(struct mllpi_mpsc *q)
{
	return mllpi_mpsc_maybe_nonempty(q);
}

struct mllpi_subq *mllpi_bench_subq_new(void)
{
	struct mllpi_subq *q =
	    aligned_alloc(64, (sizeof(struct mllpi_subq) + 63) / 64 * 64);
	mllpi_subq_init(q);
	return q;
}

void mllpi_bench_subq_free(struct mllpi_subq *q)
{
	free(q);
}

bool mllpi_bench_subq_push(struct mllpi_subq *q, struct mllpi_node *n)
{
	return mllpi_subq_push(q, n, false) == MLLPI_PUSHED_WAKE;
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

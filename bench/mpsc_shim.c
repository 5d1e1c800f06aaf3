/* C shim so the C++ benchmark can drive the pool's intrusive MPSC queue
 * (pool/mpsc.h uses C11 atomics). */
#include <stdlib.h>

#include "mpsc.h"
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

/* Internal: the pool's reply latency histogram (mllp_pool_get_latency,
 * PREFIX_reply_latency_seconds). Counted by the manager thread alone at
 * reply time: one short scan of the bounds and two relaxed load+store
 * pairs (single writer, so no read-modify-write), no allocation. Readers
 * load each counter relaxed. */
#ifndef MLLPI_LATENCY_H
#define MLLPI_LATENCY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/metrics.h>

/* Upper bounds in microseconds, ascending (MLLP_LATENCY_BUCKETS). */
static const uint64_t mllpi_latency_bounds_us[MLLP_LATENCY_BUCKETS] = {
    100,     250,     500,     1000,	 2500,	   5000,
    10000,   25000,   50000,   100000,	 250000,   500000,
    1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

struct mllpi_latency {
	_Atomic uint64_t count[MLLP_LATENCY_BUCKETS + 1];
	_Atomic uint64_t sum_us;
};

/* Count one reply that took us microseconds. Manager thread only. */
static inline void mllpi_latency_add(struct mllpi_latency *l, uint64_t us)
{
	size_t i = 0;
	while (i < MLLP_LATENCY_BUCKETS && us > mllpi_latency_bounds_us[i])
		i++;
	/* relaxed: statistics; the manager is the only writer. */
	atomic_store_explicit(
	    &l->count[i],
	    atomic_load_explicit(&l->count[i], memory_order_relaxed) + 1,
	    memory_order_relaxed);
	atomic_store_explicit(
	    &l->sum_us,
	    atomic_load_explicit(&l->sum_us, memory_order_relaxed) + us,
	    memory_order_relaxed);
}

#endif

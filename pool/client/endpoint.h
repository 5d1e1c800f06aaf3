/* Internal: endpoint ids and their lifetime — entering and leaving an id
 * from an API call, taking a slot for a new endpoint, removal
 * (endpoint_remove.c) and per-endpoint counters (endpoint_stats.c). Not
 * installed.
 *
 * Lifetime: an endpoint is reached through its slot (pool->slots[id]).
 * Every public call that uses an endpoint brackets the use with
 * mllpi_endpoint_enter() / mllpi_endpoint_leave(); the remover unpublishes
 * the slot, then waits until no thread is between the two, so no producer
 * holds the endpoint when the manager is told to remove it. The manager
 * then fails and closes everything, waits for the nodes that still name
 * the endpoint and for its sockets, and wakes the remover, which frees the
 * memory. */
#ifndef MLLPI_ENDPOINT_H
#define MLLPI_ENDPOINT_H

#include <stdatomic.h>
#include <stdint.h>

#include <mllp/error.h>

#include "pool_internal.h"

/* Enter endpoint `id`: *out is the endpoint, usable until
 * mllpi_endpoint_leave(pool, id). Errors (err filled with context ctx;
 * err may be NULL): MLLP_ERR_INVALID_ARGUMENT "no such endpoint" (never
 * added, or pool NULL), MLLP_ERR_ENDPOINT_REMOVED (removed or being
 * removed). Nothing to leave on error. Any thread. */
int mllpi_endpoint_enter(const struct mllp_pool *pool, uint32_t id,
			 enum mllp_context ctx, struct mllpi_endpoint **out,
			 struct mllp_error *err);
void mllpi_endpoint_leave(const struct mllp_pool *pool, uint32_t id);

/* Give ep (fully built) an id: the lowest free slot. On success ep->id is
 * set, the endpoint is published and the caller has entered it (it
 * leaves once the add node is pushed). MLLP_ERR_INVALID_ARGUMENT when
 * every id is taken. */
int mllpi_endpoint_take_slot(struct mllp_pool *pool, struct mllpi_endpoint *ep);

/* Free an endpoint's memory (connections, decoders, TLS, itself). */
void mllpi_endpoint_free(struct mllp_pool *pool, struct mllpi_endpoint *ep);
/* mllp_pool_stop: wake every producer blocked on an endpoint's queue. */
void mllpi_endpoints_wake_all(struct mllp_pool *pool);
/* Manager (op_stop): the endpoints not yet retired, into out (room for
 * MLLPI_MAX_ENDPOINTS); returns how many. They stay allocated while the
 * manager runs: a remover frees one only after the manager retired it. */
uint32_t mllpi_endpoints_snapshot(struct mllp_pool *p,
				  struct mllpi_endpoint **out);
/* mllp_pool_destroy: free every endpoint still owned by a slot. */
void mllpi_endpoints_free_all(struct mllp_pool *pool);

/* Manager: the remove node, the removed node (every node that named the
 * endpoint has been handled), and a socket of a retired endpoint freed. */
void mllpi_op_remove(struct mllp_pool *p, struct mllpi_endpoint *ep);
void mllpi_op_removed(struct mllp_pool *p, struct mllpi_endpoint *ep);
void mllpi_endpoint_sock_freed(struct mllp_pool *p, struct mllpi_endpoint *ep);

/* Manager (conn.c): close every connection of the endpoint and fail its
 * messages, without reconnecting and without telemetry. Queued messages,
 * and messages on a connection of which no byte was written, fail with
 * `unsent`; messages that may have reached the receiver with `sent`. */
void mllpi_endpoint_close_all(struct mllpi_endpoint *ep,
			      const struct mllp_error *unsent,
			      const struct mllp_error *sent);

/* Manager: the endpoint saw error e (a failed message, a failed connect,
 * a dropped connection): kept for mllp_pool_get_endpoint_stats. */
void mllpi_endpoint_note_error(struct mllpi_endpoint *ep,
			       const struct mllp_error *e);

/* Add n (modulo 2^64: a subtraction is n = -k) to an endpoint counter.
 * One writer (the manager): a relaxed load and store, not a locked
 * read-modify-write; readers load it relaxed (statistics only). */
static inline void mllpi_counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#endif

/* mllp_pool_remove_endpoint: fail and close everything of an endpoint,
 * then free it and its id. The protocol (endpoint.h):
 *
 * 1. The remover unpublishes the slot (state REMOVING, ep NULL) under
 *    add_mu, sets ep->removing and wakes producers blocked on the
 *    endpoint's queue (they give up with MLLP_ERR_ENDPOINT_REMOVED).
 * 2. It waits until no thread is inside the id (mllpi_endpoint_enter):
 *    every node a producer pushed for the endpoint is then in the
 *    submission queue before the remove node it pushes next, and no new
 *    one can come (the queue is FIFO).
 * 3. The manager (mllpi_op_remove) retires the endpoint: fails what is
 *    queued and in flight, closes the sockets, disarms the timers, and
 *    pushes removed_node on its own FIFO, behind any node a callback
 *    pushed for the endpoint before the removal (handled as removed).
 * 4. When removed_node is handled and the last socket is freed, the
 *    manager wakes the remover, which frees the endpoint and marks the
 *    slot REMOVED: a later add_endpoint may take the id again. */
#include "endpoint.h"

#include <sched.h>

/* The remover's wake-up, on its stack: the manager signals it once and
 * never touches it again. */
struct mllpi_remove_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void maybe_done(struct mllpi_endpoint *ep)
{
	struct mllpi_remove_wait *w = ep->remove_wait;
	if (!w || !ep->removed_seen || ep->socks > 0)
		return;
	ep->remove_wait = NULL;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void mllpi_op_remove(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	ep->retired = true;
	struct mllp_error unsent, sent;
	mllp_error_set(&unsent, MLLP_CTX_SEND, MLLP_ERR_ENDPOINT_REMOVED,
		       "endpoint removed; the message was not sent");
	mllp_error_set(&sent, MLLP_CTX_SEND, MLLP_ERR_ENDPOINT_REMOVED,
		       "endpoint removed; the message may have reached the "
		       "receiver");
	mllpi_endpoint_close_all(ep, &unsent, &sent);
	if (ep->added)
		p->timer_slots -= ep->nconns + 2;
	/* Straight onto the manager's own FIFO, also while stopping (the
	 * refusal of mllpi_pool_push is for producers): the sealed drain
	 * takes it too. */
	ep->removed_node.kind = MLLPI_OP_REMOVED;
	mllpi_subq_push_local(&p->q, &ep->removed_node);
}

void mllpi_op_removed(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	ep->removed_seen = true;
	maybe_done(ep);
}

void mllpi_endpoint_sock_freed(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	ep->socks--;
	if (ep->retired)
		maybe_done(ep);
}

/* Step 1 under add_mu: unpublish. Returns the endpoint, or NULL with *rc
 * set. */
static struct mllpi_endpoint *unpublish(struct mllp_pool *pool, uint32_t id,
					int *rc)
{
	struct mllpi_endpoint *ep = NULL;
	pthread_mutex_lock(&pool->add_mu);
	/* relaxed: writers are serialised by add_mu. */
	uint32_t n = atomic_load_explicit(&pool->neps, memory_order_relaxed);
	int st = id < n ? atomic_load_explicit(&pool->slots[id].state,
					       memory_order_relaxed)
			: MLLPI_SLOT_EMPTY;
	if (st == MLLPI_SLOT_LIVE) {
		struct mllpi_ep_slot *s = &pool->slots[id];
		ep = s->owned;
		atomic_store_explicit(&s->state, MLLPI_SLOT_REMOVING,
				      memory_order_relaxed);
		/* seq_cst: the Dekker pair of mllpi_endpoint_enter. */
		atomic_store_explicit(&s->ep, NULL, memory_order_seq_cst);
	} else {
		*rc = st == MLLPI_SLOT_EMPTY ? MLLP_ERR_INVALID_ARGUMENT
					     : MLLP_ERR_ENDPOINT_REMOVED;
	}
	pthread_mutex_unlock(&pool->add_mu);
	return ep;
}

int mllp_pool_remove_endpoint(struct mllp_pool *pool, uint32_t endpoint_id)
{
	/* From the manager thread it would wait for itself. */
	if (!pool || mllpi_pool_on_manager(pool))
		return MLLP_ERR_INVALID_ARGUMENT;
	int rc = 0;
	struct mllpi_endpoint *ep = unpublish(pool, endpoint_id, &rc);
	if (!ep)
		return rc;
	/* seq_cst: a producer blocked for queue room checks the flag under
	 * ep->mu before it sleeps; the broadcast under ep->mu comes after
	 * the store, so it is either seen or woken. */
	atomic_store_explicit(&ep->removing, true, memory_order_seq_cst);
	pthread_mutex_lock(&ep->mu);
	pthread_cond_broadcast(&ep->cv);
	pthread_mutex_unlock(&ep->mu);
	/* Step 2. seq_cst: the other half of the Dekker pair with enter;
	 * the users' uses (release on leave) happen before what follows.
	 * Producers stay inside for a few hundred ns (or until woken). */
	struct mllpi_ep_slot *s = &pool->slots[endpoint_id];
	while (atomic_load_explicit(&s->users, memory_order_seq_cst) != 0)
		sched_yield();
	struct mllpi_remove_wait w = {.done = false};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	ep->remove_wait = &w; /* published by the push (seq_cst CAS) */
	ep->remove_node.kind = MLLPI_OP_REMOVE;
	if (mllpi_pool_push(pool, &ep->remove_node) != 0) {
		/* The pool is stopping: the stop fails and closes everything
		 * (MLLP_ERR_STOPPED). Wait for it: the manager must be gone
		 * before the endpoint is freed. */
		ep->remove_wait = NULL;
		mllp_pool_stop(pool);
		rc = MLLP_ERR_STOPPED;
	} else {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	pthread_mutex_lock(&pool->add_mu);
	mllpi_endpoint_free(pool, ep);
	s->owned = NULL;
	atomic_store_explicit(&s->state, MLLPI_SLOT_REMOVED,
			      memory_order_relaxed);
	pthread_mutex_unlock(&pool->add_mu);
	return rc;
}

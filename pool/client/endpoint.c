/* Endpoint ids: entering and leaving an id, taking a slot, freeing, and
 * the small per-endpoint calls of pool.h (is_connected, connected_count,
 * reconnect). See endpoint.h for the lifetime rules. */
#include "endpoint.h"
#include "conn.h"
#include "window.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <mllp/tls.h>

/* The slot array is written by its users and the remover (the counter)
 * and by add/remove under add_mu: never through a const pool. */
static struct mllpi_ep_slot *slot_of(const struct mllp_pool *pool, uint32_t id)
{
	return &((struct mllp_pool *)pool)->slots[id];
}

int mllpi_endpoint_enter(const struct mllp_pool *pool, uint32_t id,
			 enum mllp_context ctx, struct mllpi_endpoint **out,
			 struct mllp_error *err)
{
	*out = NULL;
	/* acquire: pairs with the release store of neps in take_slot. */
	if (!pool ||
	    id >= atomic_load_explicit(&((struct mllp_pool *)pool)->neps,
				       memory_order_acquire)) {
		mllp_error_set(err, ctx, MLLP_ERR_INVALID_ARGUMENT,
			       "no such endpoint");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllpi_ep_slot *s = slot_of(pool, id);
	/* seq_cst, both: the Dekker pair with the remover, which stores
	 * ep = NULL then loads users. Either this thread sees NULL, or the
	 * remover sees it counted and waits for it to leave. The load also
	 * acquires the endpoint built before it was published. */
	atomic_fetch_add_explicit(&s->users, 1, memory_order_seq_cst);
	struct mllpi_endpoint *ep =
	    atomic_load_explicit(&s->ep, memory_order_seq_cst);
	if (ep) {
		*out = ep;
		return 0;
	}
	atomic_fetch_sub_explicit(&s->users, 1, memory_order_release);
	/* relaxed: which error to give; no data hangs off it. */
	if (atomic_load_explicit(&s->state, memory_order_relaxed) ==
	    MLLPI_SLOT_EMPTY) {
		mllp_error_set(err, ctx, MLLP_ERR_INVALID_ARGUMENT,
			       "no such endpoint");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	mllp_error_set(err, ctx, MLLP_ERR_ENDPOINT_REMOVED, NULL);
	return MLLP_ERR_ENDPOINT_REMOVED;
}

void mllpi_endpoint_leave(const struct mllp_pool *pool, uint32_t id)
{
	/* release: this thread's uses of the endpoint happen before the
	 * remover (acquire load of users) frees it. */
	atomic_fetch_sub_explicit(&slot_of(pool, id)->users, 1,
				  memory_order_release);
}

int mllpi_endpoint_take_slot(struct mllp_pool *pool, struct mllpi_endpoint *ep)
{
	pthread_mutex_lock(&pool->add_mu);
	/* relaxed: writers are serialised by add_mu. */
	uint32_t n = atomic_load_explicit(&pool->neps, memory_order_relaxed);
	uint32_t id = 0;
	while (id < n &&
	       atomic_load_explicit(&pool->slots[id].state,
				    memory_order_relaxed) != MLLPI_SLOT_REMOVED)
		id++;
	if (id >= MLLPI_MAX_ENDPOINTS) {
		pthread_mutex_unlock(&pool->add_mu);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllpi_ep_slot *s = &pool->slots[id];
	ep->id = id;
	s->owned = ep;
	/* The adder is inside the id until its add node is pushed: a remove
	 * of the new id waits for it, so the add node is handled first. */
	atomic_fetch_add_explicit(&s->users, 1, memory_order_seq_cst);
	atomic_store_explicit(&s->state, MLLPI_SLOT_LIVE, memory_order_relaxed);
	/* seq_cst: publishes the endpoint (release) and takes part in the
	 * Dekker pair of mllpi_endpoint_enter. */
	atomic_store_explicit(&s->ep, ep, memory_order_seq_cst);
	if (id == n)
		/* release: the slot is ready before its id is in range. */
		atomic_store_explicit(&pool->neps, n + 1, memory_order_release);
	pthread_mutex_unlock(&pool->add_mu);
	return 0;
}

void mllpi_endpoint_free(struct mllp_pool *pool, struct mllpi_endpoint *ep)
{
	struct mllp_allocator *a = &pool->alloc;
	for (uint32_t j = 0; j < ep->nconns; j++) {
		mllp_decoder_free(&ep->conns[j].dec);
		mllp_tls_session_free(ep->conns[j].tls_sess);
		mllpi_stale_free(&ep->conns[j], a);
	}
	mllpi_win_free(ep);
	mllp_tls_ctx_free(ep->tls_ctx);
	mllpi_lanes_free(pool, ep);
	pthread_mutex_destroy(&ep->mu);
	pthread_cond_destroy(&ep->cv);
	a->free(a->ctx, ep->conns, sizeof(*ep->conns) * ep->nconns);
	a->free(a->ctx, ep, sizeof(*ep));
}

void mllpi_endpoints_wake_all(struct mllp_pool *pool)
{
	/* acquire: pairs with take_slot's release store. */
	uint32_t n = atomic_load_explicit(&pool->neps, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++) {
		struct mllpi_endpoint *ep;
		if (mllpi_endpoint_enter(pool, i, MLLP_CTX_NONE, &ep, NULL))
			continue;
		pthread_mutex_lock(&ep->mu);
		pthread_cond_broadcast(&ep->cv);
		pthread_mutex_unlock(&ep->mu);
		mllpi_endpoint_leave(pool, i);
	}
}

uint32_t mllpi_endpoints_snapshot(struct mllp_pool *p,
				  struct mllpi_endpoint **out)
{
	uint32_t k = 0;
	pthread_mutex_lock(&p->add_mu);
	/* relaxed: under add_mu, as every writer. */
	uint32_t n = atomic_load_explicit(&p->neps, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++) {
		struct mllpi_endpoint *ep = p->slots[i].owned;
		if (ep && !ep->retired)
			out[k++] = ep;
	}
	pthread_mutex_unlock(&p->add_mu);
	return k;
}

void mllpi_endpoints_free_all(struct mllp_pool *pool)
{
	uint32_t n = atomic_load_explicit(&pool->neps, memory_order_acquire);
	for (uint32_t i = 0; i < n; i++)
		if (pool->slots[i].owned)
			mllpi_endpoint_free(pool, pool->slots[i].owned);
}

bool mllp_pool_is_connected(const struct mllp_pool *pool, uint32_t endpoint_id,
			    uint32_t conn)
{
	struct mllpi_endpoint *ep;
	if (mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_NONE, &ep, NULL))
		return false;
	/* acquire: pairs with publish_connected. */
	bool up = conn < ep->nconns &&
		  atomic_load_explicit(&ep->conns[conn].connected_pub,
				       memory_order_acquire);
	mllpi_endpoint_leave(pool, endpoint_id);
	return up;
}

uint32_t mllp_pool_connected_count(const struct mllp_pool *pool,
				   uint32_t endpoint_id)
{
	struct mllpi_endpoint *ep;
	if (mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_NONE, &ep, NULL))
		return 0;
	/* relaxed: a status count. */
	uint32_t n = atomic_load_explicit(&ep->connected, memory_order_relaxed);
	mllpi_endpoint_leave(pool, endpoint_id);
	return n;
}

int mllp_pool_reconnect(struct mllp_pool *pool, uint32_t endpoint_id)
{
	struct mllpi_endpoint *ep;
	int rc =
	    mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_NONE, &ep, NULL);
	if (rc != 0)
		return rc;
	/* seq_cst exchange: de-duplicates the reconnect node (one in the
	 * queue at a time; the manager clears the flag before acting, so a
	 * request made while it acts pushes the node again). */
	if (!atomic_exchange_explicit(&ep->reconnect_pending, true,
				      memory_order_seq_cst)) {
		rc = mllpi_pool_push(pool, &ep->reconnect_node);
		if (rc != 0)
			atomic_store(&ep->reconnect_pending, false);
	}
	mllpi_endpoint_leave(pool, endpoint_id);
	return rc;
}

void mllpi_endpoint_wait_first(struct mllp_pool *pool, uint32_t id,
			       int64_t timeout_ms)
{
	struct mllpi_endpoint *ep;
	if (mllpi_endpoint_enter(pool, id, MLLP_CTX_NONE, &ep, NULL))
		return;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ep->mu);
	/* seq_cst load of removing: see mllp_pool_remove_endpoint. */
	while (ep->first_done < ep->nconns &&
	       !atomic_load_explicit(&ep->removing, memory_order_seq_cst))
		if (pthread_cond_timedwait(&ep->cv, &ep->mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&ep->mu);
	mllpi_endpoint_leave(pool, id);
}

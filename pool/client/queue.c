/* An endpoint's queue of messages waiting for a connection (manager side)
 * and the queue slots producers reserve (send.c). */
#include "conn.h"
#include "endpoint.h"

void mllpi_space_freed(struct mllpi_endpoint *ep, uint32_t n)
{
	if (!n)
		return;
	/* seq_cst: Dekker pair with a blocking producer (waiters++ then
	 * reserve attempt): either it sees the freed slot or we see it
	 * waiting and signal under the mutex. */
	uint32_t was =
	    atomic_fetch_sub_explicit(&ep->reserved, n, memory_order_seq_cst);
	/* Hysteresis: wake blocked producers only once the queue has drained
	 * to half its capacity (with a capacity of 1, when the slot is free),
	 * not for every freed slot: one wake-up per half queue instead of one
	 * per message. (A producer with a block_timeout re-tries the
	 * reservation when it times out, so room above the mark is still
	 * taken then.) */
	uint32_t cap = ep->pool->cfg.queue_capacity;
	uint32_t low = cap / 2 ? cap / 2 : cap - 1;
	if (was - n > low)
		return;
	if (atomic_load_explicit(&ep->space_waiters, memory_order_seq_cst)) {
		/* Empty critical section: a producer that saw the queue full
		 * under the mutex is inside pthread_cond_wait once we hold
		 * it, so the broadcast after unlocking reaches it; signalling
		 * outside the mutex spares the woken thread from blocking
		 * again on the mutex we still hold. */
		pthread_mutex_lock(&ep->mu);
		pthread_mutex_unlock(&ep->mu);
		pthread_cond_broadcast(&ep->cv);
	}
}

void mllpi_flush_moved(struct mllp_pool *p)
{
	struct mllpi_endpoint *ep;
	while ((ep = p->moved_list) != NULL) {
		p->moved_list = ep->moved_next;
		uint32_t n = ep->moved;
		ep->moved = 0;
		mllpi_space_freed(ep, n);
	}
}

void mllpi_q_arm_timer(struct mllpi_endpoint *ep)
{
	struct mllp_pool *p = ep->pool;
	if (ep->opts.queue_timeout_ms > 0 && ep->qhead) {
		mllpi_timer_arm(
		    &p->loop.timers, &ep->qtimer,
		    mllpi_after_ms(ep->qhead->queued_us,
				   (uint64_t)ep->opts.queue_timeout_ms));
	} else {
		mllpi_timer_disarm(&p->loop.timers, &ep->qtimer);
	}
}

void mllpi_get_last_error(struct mllpi_endpoint *ep, struct mllp_error *e)
{
	pthread_mutex_lock(&ep->mu);
	*e = ep->last_error;
	pthread_mutex_unlock(&ep->mu);
}

/* Fail every queued message (never written). */
void mllpi_q_fail_all(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	while (ep->qhead) {
		struct mllp_future *f = ep->qhead;
		mllpi_q_remove(ep, f);
		mllpi_space_freed(ep, 1);
		mllpi_fail_future_err(f, e, MLLP_CTX_SEND, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
	}
	mllpi_q_arm_timer(ep);
}

struct mllp_future *mllpi_q_take(struct mllpi_endpoint *ep)
{
	struct mllp_future *f = ep->qhead;
	if (!f)
		return NULL;
	mllpi_q_remove(ep, f);
	mllpi_slot_moved(ep);
	mllpi_q_arm_timer(ep);
	return f;
}

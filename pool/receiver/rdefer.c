/* Deferred replies (see include/mllp/receiver.h): a dispatcher takes a
 * handle with mllp_reply_defer(); its slot waits in the connection's FIFO
 * (struct held) while any thread completes it with mllp_receiver_reply().
 *
 * Hand-off: the completing thread frames the bytes into the handle, moves
 * its state H_WAITING -> H_DONE (one atomic exchange) and pushes it on
 * r->replies (subq.h: an MPSC list plus the wake-up pair, so it wakes the
 * manager only when it sleeps). The manager takes it at the start of its
 * next turn (take_work), marks the slot ready, and sends every slot that is
 * ready in FIFO order.
 *
 * Close: the manager detaches each deferred slot of a closing connection:
 * a slot already taken is freed at once; otherwise it exchanges the state
 * to H_ORPHANED. Old state H_WAITING: the owner is told (reply_abandoned,
 * with the handle's address only: it may be freed from then on); its
 * mllp_receiver_reply sees H_ORPHANED, frees the handle and returns
 * MLLP_ERR_CLOSED. Old state
 * H_DONE: the handle is on r->replies (or about to be): the manager frees
 * it when it takes it. Either way exactly one thread frees it.
 *
 * Lifetime of r: every handle holds a reference (r->refs), dropped by
 * mllp_receiver_reply as its very last step (after the push and the wake,
 * which touch r); the owner holds one, dropped by destroy. The last one
 * frees r, so a handle may outlive mllp_receiver_destroy(). Only the
 * deferred path pays for these atomics: a synchronous reply takes none. */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <mllp/framer.h>
#include <mllp/receiver.h>

#include "receiver_internal.h"

struct mllp_reply_handle *mllp_reply_defer(struct mllp_reply *reply)
{
	if (!reply || !reply->deferral_)
		return NULL;
	struct rconn *c = reply->deferral_;
	struct mllp_receiver *r = c->r;
	struct mllp_reply_handle *h = r->alloc.alloc(r->alloc.ctx, sizeof(*h));
	if (!h)
		return NULL;
	memset(h, 0, offsetof(struct mllp_reply_handle, inl));
	h->q.deferred = true;
	h->q.bytes = h->inl;
	h->r = r;
	h->c = c;
	atomic_init(&h->node.next, NULL);
	atomic_init(&h->state, H_WAITING);
	/* relaxed: the reference only has to be counted before the handle
	 * reaches another thread, which the dispatcher's own hand-off (a
	 * lock, a queue) orders. */
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	r->hwait++;
	reply->deferral_ = NULL; /* once per frame */
	c->defer_h = h;
	return h;
}

void mllpi_rdefer_free(struct mllp_receiver *r, struct mllp_reply_handle *h)
{
	if (h->cap)
		r->alloc.free(r->alloc.ctx, h->q.bytes, h->cap);
	r->alloc.free(r->alloc.ctx, h, sizeof(*h));
}

void mllpi_rdefer_queue(struct rconn *c, struct mllp_reply_handle *h)
{
	struct mllp_receiver *r = c->r;
	h->q.next = NULL;
	h->q.due_us = c->last_active_us;
	h->queued_us = c->last_active_us;
	if (c->htail)
		c->htail->next = &h->q;
	else
		c->hhead = &h->q;
	c->htail = &h->q;
	c->deferred++;
	ST_ADD(r, st_pending, 1);
	/* deferred_timeout_ms: the idle timer fires by then (on_idle). */
	uint64_t due = mllpi_rconn_deferred_due(r, c);
	if (due &&
	    (!mllpi_timer_armed(&c->idle) || c->idle.deadline_us > due) &&
	    mllpi_timer_arm(&r->loop.timers, &c->idle, due) < 0)
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY, "timer");
}

void mllpi_rdefer_detach(struct rconn *c, struct mllp_reply_handle *h)
{
	struct mllp_receiver *r = c->r;
	c->deferred--;
	ST_SUB(r, st_pending, 1);
	if (h->q.ready) { /* taken already: the manager's alone */
		mllpi_rdefer_free(r, h);
		return;
	}
	h->c = NULL;
	/* acq_rel: release orders h->c = NULL before a completing thread
	 * may free h; acquire pairs with its exchange (H_DONE). */
	int old = atomic_exchange_explicit(&h->state, H_ORPHANED,
					   memory_order_acq_rel);
	if (old != H_WAITING)
		return; /* H_DONE: on r->replies (or about to be); freed
			 * when taken. */
	r->hwait--;	/* never pushed: its owner frees it */
	ST_ADD(r, st_abandoned, 1);
	/* h may be freed by its owner from here on: only its address is
	 * passed on. */
	if (r->cfg.reply_abandoned)
		r->cfg.reply_abandoned(r->cfg.dispatch_ctx, h, c->why);
}

/* Frame data into h (inline, or allocated apart when bigger); with
 * mllp_release 2 after the commit ACK block (pre bytes). */
static int frame_into(struct mllp_reply_handle *h, const void *data, size_t len)
{
	struct mllp_receiver *r = h->r;
	size_t pre = r->cfg.mllp_release == 2 ? MLLPI_R2_BLOCK : 0;
	h->q.len = pre ? mllpi_r2_block(h->q.bytes, false) : 0;
	if (len > 0 && !data)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (len == 0 && !data)
		return 0; /* no reply for this frame */
	int w = mllp_wrap_check(NULL, data, len);
	if (w < 0)
		return w;
	size_t need = pre + (w == 1 ? len : len + 3);
	if (need > HANDLE_INLINE) {
		unsigned char *p = r->alloc.alloc(r->alloc.ctx, need);
		if (!p)
			return MLLP_ERR_NO_MEMORY;
		memcpy(p, h->q.bytes, pre);
		h->q.bytes = p;
		h->cap = need;
	}
	h->q.len = pre + mllpi_reply_frame(h->q.bytes + pre, data, len, w);
	return 0;
}

void mllpi_receiver_unref(struct mllp_receiver *r)
{
	/* acq_rel: whoever frees r sees every other holder's writes. */
	if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
		mllpi_receiver_free(r);
}

/* Hand the completed h to its connection, the manager not woken yet: true
 * when it must be (it sleeps). *rc: MLLP_ERR_CLOSED when the connection
 * had closed (h is freed). h may be gone once pushed: r stays, held by
 * h's reference until the caller drops it. */
static bool hand_over(struct mllp_reply_handle *h, int *rc)
{
	struct mllp_receiver *r = h->r;
	/* acq_rel: release publishes the bytes (to the manager through the
	 * push as well); acquire pairs with the manager's exchange
	 * (H_ORPHANED) before h is freed here. */
	int old =
	    atomic_exchange_explicit(&h->state, H_DONE, memory_order_acq_rel);
	if (old == H_ORPHANED) {
		atomic_fetch_add_explicit(&r->st_late, 1, memory_order_relaxed);
		mllpi_rdefer_free(r, h);
		*rc = MLLP_ERR_CLOSED;
		return false;
	}
	return mllpi_subq_push(&r->replies, &h->node) == MLLPI_PUSHED_WAKE;
}

/* Frame the reply into h; on an error the frame gets no reply (with
 * release 2: the commit ACK alone). */
static int fill(struct mllp_reply_handle *h, const void *data, size_t len)
{
	int rc = frame_into(h, data, len);
	if (rc < 0) {
		if (h->cap)
			h->r->alloc.free(h->r->alloc.ctx, h->q.bytes, h->cap);
		h->cap = 0;
		h->q.bytes = h->inl;
		h->q.len = h->r->cfg.mllp_release == 2
			       ? mllpi_r2_block(h->q.bytes, false)
			       : 0;
	}
	return rc;
}

/* Hand h over and wake the manager if need be; rc: the caller's result. */
static int complete(struct mllp_reply_handle *h, int rc)
{
	struct mllp_receiver *r = h->r;
	if (hand_over(h, &rc))
		mllpi_loop_wake(&r->loop);
	mllpi_receiver_unref(r);
	return rc;
}

int mllp_receiver_reply(struct mllp_reply_handle *h, const void *data,
			size_t len)
{
	if (!h)
		return MLLP_ERR_INVALID_ARGUMENT;
	return complete(h, fill(h, data, len));
}

/* The end of a run of n handles of r handed over: one wake-up, then their
 * references (the last may free r). */
static void run_end(struct mllp_receiver *r, size_t n, bool wake)
{
	if (wake)
		mllpi_loop_wake(&r->loop);
	while (n-- > 0)
		mllpi_receiver_unref(r);
}

size_t mllp_receiver_reply_batch(struct mllp_reply_item *items, size_t n)
{
	size_t ok = 0, run = 0;
	struct mllp_receiver *r = NULL;
	bool wake = false;
	for (size_t i = 0; items && i < n; i++) {
		struct mllp_reply_item *it = &items[i];
		struct mllp_reply_handle *h = it->handle;
		if (!h) {
			it->result = MLLP_ERR_INVALID_ARGUMENT;
			continue;
		}
		if (h->r != r) { /* handles of another receiver */
			if (r)
				run_end(r, run, wake);
			r = h->r;
			run = 0;
			wake = false;
		}
		int rc = fill(h, it->data, it->len);
		wake |= hand_over(h, &rc);
		run++;
		it->result = rc;
		ok += rc == 0;
	}
	if (r)
		run_end(r, run, wake);
	return ok;
}

int mllp_receiver_refuse(struct mllp_reply_handle *h)
{
	if (!h)
		return MLLP_ERR_INVALID_ARGUMENT;
	h->q.len =
	    h->r->cfg.mllp_release == 2 ? mllpi_r2_block(h->q.bytes, true) : 0;
	return complete(h, 0);
}

/* A completed reply of a live connection: its slot is ready. */
static void take_one(struct mllp_receiver *r, struct mllp_reply_handle *h)
{
	struct rconn *c = h->c;
	h->q.ready = true;
	c->held_bytes += h->q.len;
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = r->dirty;
		r->dirty = c;
	}
}

/* A connection with completed replies: send what is ready in order, decode
 * what the pending limit held back, close after end of file. */
static void move_on(struct rconn *c, uint64_t now)
{
	c->dirty = false;
	if (c->closing)
		return;
	mllpi_rconn_resume(c, now);
}

int mllpi_rdefer_take(struct mllp_receiver *r)
{
	int n = 0;
	struct mllpi_node *nd;
	while ((nd = mllpi_subq_pop(&r->replies))) {
		struct mllp_reply_handle *h = mllpi_node_handle(nd);
		r->hwait--;
		n++;
		if (!h->c) { /* its connection closed first */
			atomic_fetch_add_explicit(&r->st_late, 1,
						  memory_order_relaxed);
			mllpi_rdefer_free(r, h);
			continue;
		}
		take_one(r, h);
	}
	if (n == 0)
		return 0;
	/* The turn's clock: every slot was queued at or before it. */
	uint64_t now = r->loop.now_us;
	while (r->dirty) {
		struct rconn *c = r->dirty;
		r->dirty = c->dirty_next;
		move_on(c, now);
	}
	return n;
}

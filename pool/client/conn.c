/* The connection state machine: going down, closing (the message in
 * flight failed), reconnecting after the backoff delay, and closing a
 * whole endpoint. Connecting is in conn_connect.c, sending in conn_send.c,
 * replies in conn_reply.c. */
#include "conn.h"
#include "endpoint.h"
#include "window.h"

void mllpi_publish_connected(struct mllpi_conn *c, bool up)
{
	bool was =
	    atomic_load_explicit(&c->connected_pub, memory_order_relaxed);
	if (was == up)
		return;
	/* release/relaxed: a status flag; no data hangs off it. */
	atomic_store_explicit(&c->connected_pub, up, memory_order_release);
	if (up)
		atomic_fetch_add_explicit(&c->ep->connected, 1,
					  memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&c->ep->connected, 1,
					  memory_order_relaxed);
}

void mllpi_set_usable(struct mllpi_conn *c, enum mllpi_cstate next)
{
	bool was = c->state != C_DOWN;
	bool now = next != C_DOWN;
	c->state = next;
	/* seq_cst: producers read `usable` (seq_cst) to fail fast while every
	 * connection is down; a plain counter, no data hangs off it. */
	if (was && !now)
		atomic_fetch_sub_explicit(&c->ep->usable, 1,
					  memory_order_seq_cst);
	else if (!was && now)
		atomic_fetch_add_explicit(&c->ep->usable, 1,
					  memory_order_seq_cst);
}

void mllpi_schedule_reconnect(struct mllpi_conn *c, uint64_t delay_ms)
{
	struct mllp_pool *p = c->ep->pool;
	c->timer.kind = T_BACKOFF;
	uint32_t div = p->cfg.backoff_divisor ? p->cfg.backoff_divisor : 1;
	mllpi_timer_arm(&p->loop.timers, &c->timer,
			mllpi_now_us() + mllpi_after_ms(0, delay_ms) / div);
}

/* The connection goes down: no message, no socket. When no connection of
 * the endpoint is usable and queue_timeout is 0, queued messages fail with
 * the last connect error — unless the caller reconnects at once
 * (fail_queue false): they then wait for that attempt's outcome. */
void mllpi_conn_down(struct mllpi_conn *c, bool fail_queue)
{
	struct mllpi_endpoint *ep = c->ep;
	mllpi_idle_remove(c);
	mllpi_publish_connected(c, false);
	mllpi_timer_disarm(&ep->pool->loop.timers, &c->timer);
	c->timer.kind = T_NONE;
	c->recv_armed = false;
	mllp_decoder_reset(&c->dec);
	mllpi_presend_forget(c);
	mllpi_set_usable(c, C_DOWN);
	/* relaxed: only the manager writes usable. */
	if (fail_queue &&
	    atomic_load_explicit(&ep->usable, memory_order_relaxed) == 0 &&
	    ep->opts.queue_timeout_ms == 0 && ep->qhead) {
		struct mllp_error e;
		mllpi_get_last_error(ep, &e);
		mllpi_q_fail_all(ep, &e);
	}
}

/* An established connection closed because of e. Until a reconnect attempt
 * fails, a send that finds every connection down is told the link closed
 * (the reference's sending/closed), not a stale connect error. Recorded
 * before is_connected turns false, so whoever sees it false sees this. */
static void record_closed(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	pthread_mutex_lock(&ep->mu);
	if (e->reason == MLLP_ERR_CLOSED)
		ep->last_error = *e;
	else
		mllp_error_set(&ep->last_error, MLLP_CTX_RECEIVE,
			       MLLP_ERR_CLOSED, "connection closed (%s)",
			       e->message);
	ep->stat_error = ep->last_error;
	pthread_mutex_unlock(&ep->mu);
}

/* Close an established (or connecting) connection. The message in flight
 * is failed with e (context ctx). reconnect_now: connect again at once;
 * else after the backoff delay. */
void mllpi_conn_close(struct mllpi_conn *c, bool abortive,
		      enum mllp_context ctx, const struct mllp_error *e,
		      bool reconnect_now, bool emit_closed)
{
	struct mllp_pool *p = c->ep->pool;
	bool was_up = c->state == C_IDLE || c->state == C_BUSY;
	if (was_up && !p->stopping)
		record_closed(c->ep, e);
	/* Down before the future completes: its callback (or a waiter woken
	 * by it) must not read is_connected true for a closing socket. */
	mllpi_publish_connected(c, false);
	bool had_msg =
	    c->cur != NULL || (c->win && (c->win->n || c->win->held));
	if (c->win)
		mllpi_win_fail_all(c, e, e, ctx);
	if (c->cur) {
		/* A send still in flight may have been written by the
		 * kernel already: the receiver may have (part of) it. */
		mllpi_fail_future_err(c->cur, e, ctx, c->send_done,
				      (c->sent > 0 || c->send_in_flight) &&
					  !c->send_done);
		mllpi_conn_drop_cur(c);
	}
	c->send_in_flight = false;
	mllpi_sock_detach(c, abortive);
	/* A socket closed while idle before its first reply (a receiver that
	 * accepts and drops or resets every connection, or greets it with
	 * junk) is reconnected after the backoff delay, not at once: else
	 * such a receiver drives a tight connect/close loop (thousands per
	 * second). The delay is peeked, not consumed: the connect resets it
	 * anyway. With a message in flight the reconnect stays immediate
	 * (the next message should not fail fast; the loop is bounded by the
	 * messages). */
	bool defer = reconnect_now && !c->proven && !had_msg && !p->stopping;
	if (defer)
		reconnect_now = false;
	c->proven = false;
	mllpi_conn_down(c, !reconnect_now || p->stopping);
	if (p->stopping)
		return;
	uint64_t delay = reconnect_now ? 0 : mllp_backoff_peek(&c->backoff);
	if (was_up && emit_closed)
		mllpi_emit(c, MLLP_EV_CONNECTION_CLOSED, e, 0, delay, false, 0,
			   false);
	if (reconnect_now) {
		mllpi_conn_start_connect(c);
	} else if (defer) {
		mllpi_schedule_reconnect(c, delay);
	} else {
		mllpi_schedule_reconnect(c, mllp_backoff_fail(&c->backoff));
	}
}

void mllpi_endpoint_close_all(struct mllpi_endpoint *ep,
			      const struct mllp_error *unsent,
			      const struct mllp_error *sent)
{
	struct mllp_pool *p = ep->pool;
	mllpi_flush_moved(p); /* ep leaves p->moved_list */
	mllpi_win_unflush(ep);
	mllpi_q_fail_all(ep, unsent);
	mllpi_timer_disarm(&p->loop.timers, &ep->qtimer);
	for (uint32_t j = 0; j < ep->nconns; j++) {
		struct mllpi_conn *c = &ep->conns[j];
		mllpi_publish_connected(c, false); /* before callbacks */
		if (c->win)
			mllpi_win_fail_all(c, sent, unsent, MLLP_CTX_SEND);
		if (c->cur) {
			bool partial = c->sent > 0 || c->send_in_flight;
			mllpi_fail_future_err(
			    c->cur, c->send_done || partial ? sent : unsent,
			    MLLP_CTX_SEND, c->send_done, partial);
			mllpi_conn_drop_cur(c);
		}
		c->send_in_flight = false;
		mllpi_sock_detach(c, false);
		if (c->state != C_DOWN)
			mllpi_conn_down(c, true);
		mllpi_timer_disarm(&p->loop.timers, &c->timer);
	}
	/* last: the messages above have left their lanes */
	mllpi_lanes_fail_all(ep, unsent, sent);
}

/* The manager thread: operations handed over by producers (send,
 * cancel, add, kick, reconnect, stop) and the loop's hooks (loop.h).
 *
 * Producers hand operations to the manager through the submission queue
 * of subq.h (wake-up and stop protocols described there); the manager's
 * own submissions, from completion callbacks, go through its local FIFO. */
#include "app_ack.h"
#include "conn.h"
#include "endpoint.h"
#include "tls_stream.h"
#include "window.h"

#include <stdio.h>
#include <string.h>

/* ---- operations from producers -------------------------------------- */

static void op_send(struct mllp_pool *p, struct mllp_future *f)
{
	struct mllpi_endpoint *ep = f->ep;
	/* The manager's part of the future (see mllp_pool_send). */
	mllpi_future_take(f);
	f->lane = NULL;
	if (f->app) /* enhanced mode: waits for its application ACK */
		mllpi_app_track(f);
	if (!p->stopping && !ep->retired && f->cancel_first) {
		/* Its cancel came first (op_cancel): never sent. */
		mllpi_space_freed(ep, 1);
		mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
				  false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
		return;
	}
	if (p->stopping || ep->retired) {
		/* retired: sent from a callback just before the removal */
		mllpi_space_freed(ep, 1);
		if (p->fatal.reason && !ep->retired)
			mllpi_fail_future_err(f, &p->fatal, MLLP_CTX_SEND,
					      false, false);
		else
			mllpi_fail_future(f, MLLP_CTX_SEND,
					  ep->retired
					      ? MLLP_ERR_ENDPOINT_REMOVED
					      : MLLP_ERR_STOPPED,
					  NULL, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
		return;
	}
	/* A keyed message waits while its key has one in flight (lane.c). */
	if (f->key_len && !mllpi_lane_admit(ep, f))
		return;
	if (ep->idle) {
		struct mllpi_conn *c = ep->idle;
		mllpi_slot_moved(ep);
		mllpi_conn_start_message(c, f);
		return;
	}
	if (mllpi_q_refuse(ep, f)) {
		for (uint32_t i = 0; i < ep->nconns; i++) {
			mllp_backoff_reset(&ep->conns[i].backoff);
			mllpi_conn_start_connect(&ep->conns[i]);
		}
		return;
	}
	/* Not counted in mllpi_space_freed: the slot stays taken while queued.
	 */
	mllpi_q_append(ep, f);
	if (ep->qhead == f)
		mllpi_q_arm_timer(ep);
}

static void op_cancel(struct mllp_pool *p, struct mllp_future *f)
{
	(void)p;
	if (!f->taken) {
		/* Before its send (not possible through the one FIFO, kept
		 * safe anyway): the manager's fields are not set yet; the
		 * send is failed as canceled when it comes. */
		f->cancel_first = true;
		mllpi_future_release(f); /* the cancel op's reference */
		return;
	}
	if (f->lane && mllpi_lane_cancel(f)) {
		mllpi_future_release(f); /* the cancel op's reference */
		return;
	}
	if (f->where == W_QUEUED) {
		mllpi_q_remove(f->ep, f);
		mllpi_space_freed(f->ep, 1);
		mllpi_q_arm_timer(f->ep);
		mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
				  false, false);
		f->where = W_DONE;
		mllpi_future_release(f); /* the engine's reference */
	} else if (f->where == W_INFLIGHT && !f->completed) {
		struct mllpi_conn *c = NULL;
		if (mllpi_win_find(f->ep, f, &c)) {
			/* in a window: it stays there until its reply */
			mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED,
					  NULL, f->w_state == W_WRITTEN,
					  f->w_state == W_SENDING);
			mllpi_future_release(f); /* the cancel op's reference */
			return;
		}
		for (uint32_t i = 0; i < f->ep->nconns; i++)
			if (f->ep->conns[i].cur == f)
				c = &f->ep->conns[i];
		mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
				  c ? c->send_done : false,
				  c ? c->sent > 0 || c->send_in_flight : false);
	}
	mllpi_future_release(f); /* the cancel op's reference */
}

static void op_add(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	if (ep->retired)
		return; /* removed before its add node came (endpoint.h) */
	ep->added = true;
	/* One timer per connection plus the queue timer: reserve so that
	 * arming never fails. */
	p->timer_slots += ep->nconns + 2; /* + queue and lane timers */
	if (mllpi_timers_reserve(&p->loop.timers, p->timer_slots) != 0)
		mllpi_pool_log(p, MLLP_LOG_ERROR, "out of memory for timers");
	if (p->stopping)
		return;
	/* Connections start in C_CONNECTING (counted in usable since the
	 * endpoint was added, so early sends queue instead of failing). */
	for (uint32_t i = 0; i < ep->nconns; i++)
		mllpi_conn_start_connect(&ep->conns[i]);
}

static void op_kick(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	/* seq_cst: de-duplication flag; cleared before acting so a later
	 * kick is not lost. */
	atomic_store_explicit(&ep->kick_pending, false, memory_order_seq_cst);
	if (ep->retired)
		return;
	for (uint32_t i = 0; i < ep->nconns; i++) {
		if (ep->conns[i].state == C_DOWN) {
			mllp_backoff_reset(&ep->conns[i].backoff);
			mllpi_conn_start_connect(&ep->conns[i]);
		}
	}
}

static void op_reconnect(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	/* seq_cst: cleared before acting, so a request made meanwhile
	 * pushes the node again and is not lost. */
	atomic_store_explicit(&ep->reconnect_pending, false,
			      memory_order_seq_cst);
	if (ep->retired)
		return;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_CLOSED,
		       "connection closed by reconnect");
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_conn *c = &ep->conns[i];
		mllp_backoff_reset(&c->backoff);
		if (c->state == C_DOWN) {
			mllpi_conn_start_connect(c);
		} else {
			c->proven = true; /* asked for: reconnect at once */
			mllpi_conn_close(c, false, MLLP_CTX_SEND, &e, true,
					 true);
		}
	}
}

static void op_stop(struct mllp_pool *p)
{
	p->stopping = true;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_STOPPED, NULL);
	struct mllpi_endpoint *eps[MLLPI_MAX_ENDPOINTS];
	uint32_t n = mllpi_endpoints_snapshot(p, eps);
	for (uint32_t i = 0; i < n; i++)
		mllpi_endpoint_close_all(eps[i], &e, &e);
	mllpi_app_stop_all(p); /* open application stages */
}

static void handle_node(struct mllp_pool *p, struct mllpi_node *n)
{
	switch (n->kind) {
	case MLLPI_OP_SEND:
		op_send(p, MLLPI_CONTAINER_OF(n, struct mllp_future, node));
		break;
	case MLLPI_OP_CANCEL:
		op_cancel(
		    p, MLLPI_CONTAINER_OF(n, struct mllp_future, cancel_node));
		break;
	case MLLPI_OP_ADD:
		op_add(p,
		       MLLPI_CONTAINER_OF(n, struct mllpi_endpoint, add_node));
		break;
	case MLLPI_OP_KICK:
		op_kick(
		    p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint, kick_node));
		break;
	case MLLPI_OP_RECONNECT:
		op_reconnect(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						   reconnect_node));
		break;
	case MLLPI_OP_STOP:
		op_stop(p);
		break;
	case MLLPI_OP_REMOVE:
		mllpi_op_remove(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						      remove_node));
		break;
	case MLLPI_OP_REMOVED:
		mllpi_op_removed(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						       removed_node));
		break;
	case MLLPI_OP_RELEASE:
		mllpi_lane_op_release(p, n);
		break;
	case MLLPI_OP_APP_ACK:
		mllpi_app_op_in(p, n);
		break;
	default:
		break;
	}
}

bool mllpi_pool_on_manager(const struct mllp_pool *pool)
{
	return mllpi_loop_current() == &pool->loop;
}

int mllpi_pool_push(struct mllp_pool *pool, struct mllpi_node *n)
{
	/* acquire: refuse early once the stop is seen. A push that races
	 * with the stop is either taken before the seal or refused by it
	 * (subq.h); the manager drains its own FIFO before it leaves. */
	if (n->kind != MLLPI_OP_STOP &&
	    atomic_load_explicit(&pool->q.stopped, memory_order_acquire))
		return MLLP_ERR_STOPPED;
	/* From a callback too: one FIFO (subq.h). */
	switch (mllpi_subq_push(&pool->q, n)) {
	case MLLPI_PUSH_STOPPED:
		return MLLP_ERR_STOPPED;
	case MLLPI_PUSHED_WAKE:
		mllpi_loop_wake(&pool->loop);
		break;
	case MLLPI_PUSHED:
		break;
	}
	return 0;
}

/* ---- the manager: the loop's hooks (loop.h) ---------------------------- */

/* Queued operations taken per turn at most (then the wait does not
 * sleep). */
#define MAX_BATCH 4096

static int mgr_take_work(void *ctx)
{
	struct mllp_pool *p = ctx;
	int batch = 0;
	struct mllpi_node *n;
	while (batch < MAX_BATCH && (n = mllpi_subq_pop(&p->q))) {
		handle_node(p, n);
		batch++;
	}
	p->batch_full = batch >= MAX_BATCH;
	return batch;
}

static bool mgr_pending(void *ctx)
{
	struct mllp_pool *p = ctx;
	return p->batch_full || mllpi_subq_maybe_nonempty(&p->q);
}

static void mgr_end_turn(void *ctx)
{
	struct mllp_pool *p = ctx;
	if (p->wflush)
		mllpi_win_flush(p); /* the windows' coalesced sends */
	mllpi_flush_moved(p);	    /* before wait(): see mllpi_slot_moved */
	mllpi_sock_reap(p);
}

static bool mgr_done(void *ctx)
{
	struct mllp_pool *p = ctx;
	return p->stopping && p->live_socks == 0 &&
	       !mllpi_subq_maybe_nonempty(&p->q);
}

static bool mgr_stopping(void *ctx)
{
	return ((struct mllp_pool *)ctx)->stopping;
}

static bool mgr_prepare_sleep(void *ctx)
{
	/* the wake-up pair of subq.h */
	return mllpi_subq_prepare_sleep(&((struct mllp_pool *)ctx)->q);
}

static void mgr_awake(void *ctx)
{
	/* Only after a prepared sleep: the line stays shared with the
	 * producers while the manager is busy. */
	mllpi_subq_awake(&((struct mllp_pool *)ctx)->q);
}

static void mgr_before_wait(void *ctx)
{
	struct mllp_pool *p = ctx;
	if (p->fresh)
		mllpi_presend_measure(p); /* right before wait() */
}

/* The backend's wait() keeps failing with rc: no completion can come back
 * any more. Stop as mllp_pool_stop does, but fail every message with rc
 * (logged once), and close and free every socket without waiting for
 * completions. Later sends are refused with MLLP_ERR_STOPPED. */
static void mgr_fatal(void *ctx, int rc)
{
	struct mllp_pool *p = ctx;
	mllp_error_set(&p->fatal, MLLP_CTX_NONE, rc,
		       "the pool stopped: backend %s wait failed: %s",
		       p->loop.ops->name, mllp_strerror(rc));
	mllpi_pool_log(p, MLLP_LOG_ERROR, "%s", p->fatal.message);
	/* seq_cst: the stop protocol of subq.h (as mllp_pool_stop). */
	atomic_store_explicit(&p->q.stopped, true, memory_order_seq_cst);
	mllpi_endpoints_wake_all(p);
	p->stopping = true;
	struct mllpi_endpoint *eps[MLLPI_MAX_ENDPOINTS];
	uint32_t n = mllpi_endpoints_snapshot(p, eps);
	for (uint32_t i = 0; i < n; i++)
		mllpi_endpoint_close_all(eps[i], &p->fatal, &p->fatal);
	mllpi_app_stop_all(p);
	for (struct mllpi_sock *s = p->socks; s; s = s->all_next) {
		s->conn = NULL;
		s->pending = 0;
		if (s->tls)
			mllpi_tls_stream_abandon(s->tls);
		mllpi_sock_maybe_free(p, s);
	}
	mllpi_sock_reap(p);
}

/* The stop protocol of subq.h: refuse later pushes, take what came in
 * meanwhile (failed as stopped; their callbacks' submissions are
 * refused). */
static void mgr_finish(void *ctx)
{
	struct mllp_pool *p = ctx;
	mllpi_subq_seal(&p->q);
	struct mllpi_node *n;
	while ((n = mllpi_subq_pop_sealed(&p->q)) != NULL)
		handle_node(p, n);
	mllpi_sock_reap(p);
}

static void mgr_warn(void *ctx, const char *line)
{
	struct mllp_pool *p = ctx;
	if (p->cfg.log)
		p->cfg.log(p->cfg.log_ctx, MLLP_LOG_WARNING, line);
	else
		fprintf(stderr, "[warning] mllp: %s\n", line);
}

const struct mllpi_loop_hooks mllpi_pool_hooks = {
    .take_work = mgr_take_work,
    .pending = mgr_pending,
    .on_timer = mllpi_pool_on_timer,
    .on_cqe = mllpi_pool_on_cqe,
    .end_turn = mgr_end_turn,
    .done = mgr_done,
    .stopping = mgr_stopping,
    .prepare_sleep = mgr_prepare_sleep,
    .awake = mgr_awake,
    .before_wait = mgr_before_wait,
    .fatal = mgr_fatal,
    .finish = mgr_finish,
    .warn = mgr_warn,
};

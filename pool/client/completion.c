/* The manager's dispatch of backend completions (connect, send, receive)
 * and expired timers to the connections and queues. */
#include "app_ack.h"
#include "conn.h"
#include "endpoint.h"
#include "tls_stream.h"
#include "window.h"

#include <errno.h>

static void on_connect_done(struct mllpi_conn *c, int res)
{
	if (res == 0) {
		mllpi_conn_on_connected(c);
	} else {
		int reason = res == -ECANCELED ? -ETIMEDOUT : res;
		mllpi_connect_failed(c, reason);
	}
}

/* Every byte of the message in flight is written: its reply timer runs
 * (or none: reply_timeout < 0). */
static void arm_reply_timer(struct mllp_pool *p, struct mllpi_conn *c)
{
	int64_t rt = c->cur ? c->cur->reply_timeout : 0;
	if (rt == 0)
		rt = c->ep->opts.reply_timeout_ms;
	if (rt >= 0) {
		mllpi_conn_timer_lazy(
		    p, c, T_REPLY,
		    mllpi_after_ms(mllpi_now_us(), (uint64_t)rt));
	} else {
		mllpi_timer_disarm(&p->loop.timers, &c->timer);
		c->timer.kind = T_NONE;
	}
}

/* A send completed with res (bytes written, or a negative errno); with
 * TLS, the stream reports the plaintext bytes now written (conn_tls.c). */
void mllpi_conn_on_sent(struct mllpi_conn *c, int res)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->win) {
		mllpi_win_on_sent(c, res);
		return;
	}
	c->send_in_flight = false;
	if (res < 0) {
		mllpi_conn_send_failed(c, res, NULL);
		return;
	}
	c->sent += (size_t)res;
	if (c->sent < c->total) {
		int rc = mllpi_submit_send(c);
		if (rc < 0)
			mllpi_conn_send_failed(c, rc, NULL);
		return;
	}
	c->send_done = true;
	STAT_ADD(c->ep, st_sent, 1);
	if (c->cur && c->cur->no_accept && !c->reply_done) {
		/* MSH-15 NE / ER: no accept ACK to wait for (conn_stale.c). */
		bool early = c->early_reply;
		c->early_reply = false;
		mllpi_accept_written(c, c->cur, early);
		mllpi_conn_finish(c);
		return;
	}
	if (c->cur && c->cur->async && !c->cur->completed) {
		c->cur->result.status = 0;
		c->cur->result.written = true;
		mllpi_publish(c->cur);
	}
	if (c->early_reply && c->cur) {
		/* The reply that came first (see mllpi_conn_handle_reply);
		 * one dropped as stale leaves the message waiting. */
		c->early_reply = false;
		if (mllpi_conn_handle_reply(c, c->cur->result.reply,
					    c->cur->result.reply_len))
			return;
	}
	if (c->reply_done) {
		mllpi_conn_finish(c);
		return;
	}
	arm_reply_timer(p, c);
}

/* A receive completed on socket s of c: data handed to the decoder (or
 * to TLS), then the end of the stream, an error, or a re-arm. */
static void on_recv_done(struct mllp_pool *p, struct mllpi_sock *s,
			 struct mllpi_conn *c, const struct mllpi_cqe *cq)
{
	if (cq->res > 0 && cq->data) {
		if (s->tls)
			mllpi_tls_stream_on_recv(s->tls, cq->data,
						 (size_t)cq->res);
		else
			mllpi_conn_on_recv_data(c, cq->data, (size_t)cq->res);
	}
	if (c->sock != s)
		return; /* closed meanwhile */
	if (!cq->more)
		c->recv_armed = false;
	if (cq->res <= 0 && cq->res != -ENOBUFS && s->tls &&
	    mllpi_tls_stream_handshaking(s->tls)) {
		/* closed or failed during the handshake: a TLS failure */
		mllpi_tls_stream_on_eof(s->tls, cq->res);
		return;
	}
	if (cq->res == 0) {
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_CLOSED, NULL);
		if (c->cur || (c->win && c->win->n))
			mllpi_pool_log(p, MLLP_LOG_ERROR,
				       "Error receiving from %s:%u => %s",
				       c->ep->host, c->ep->port, e.message);
		mllpi_conn_close(c, false, MLLP_CTX_RECEIVE, &e, true, true);
	} else if (cq->res < 0 && cq->res != -ENOBUFS) {
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_RECEIVE, cq->res, NULL);
		mllpi_pool_log(p, MLLP_LOG_ERROR,
			       "Error receiving from %s:%u => %s", c->ep->host,
			       c->ep->port, e.message);
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
	} else if (!cq->more) {
		mllpi_conn_arm_recv(c); /* -ENOBUFS or end: re-arm */
	}
}

void mllpi_pool_on_cqe(void *ctx, const struct mllpi_cqe *cq)
{
	struct mllp_pool *p = ctx;
	struct mllpi_sock *s =
	    (struct mllpi_sock *)(uintptr_t)(cq->token & ~(uint64_t)TOK_MASK);
	unsigned op = (unsigned)(cq->token & TOK_MASK);
	if (op == TOK_TLS_SEND) {
		/* The TLS stream's own send (not counted in s->pending): it
		 * reports what it means through its callbacks (conn_tls.c). */
		mllpi_tls_stream_on_sent(s->tls, cq->res);
		if (!s->conn)
			mllpi_sock_maybe_free(p, s);
		return;
	}
	bool ends = op != TOK_RECV || !cq->more;
	if (ends)
		s->pending--;
	struct mllpi_conn *c = s->conn;
	if (op == TOK_INQ)
		mllpi_presend_on_inq(s, c, cq->res);
	if (!c) {
		/* Stale: the socket is being closed. */
		mllpi_sock_maybe_free(p, s);
		return;
	}
	switch (op) {
	case TOK_CONNECT:
		on_connect_done(c, cq->res);
		break;
	case TOK_SEND:
		mllpi_conn_on_sent(c, cq->res);
		break;
	case TOK_RECV:
		on_recv_done(p, s, c, cq);
		break;
	default:
		break;
	}
}

/* The queue timer of ep: fail the messages queued for queue_timeout
 * (the last connect error, or a timeout while some connection is up). */
static void on_queue_timer(struct mllpi_endpoint *ep)
{
	uint64_t now = mllpi_now_us();
	struct mllp_error e;
	mllpi_get_last_error(ep, &e);
	/* relaxed: manager-written status count. */
	if (atomic_load_explicit(&ep->connected, memory_order_relaxed) > 0)
		mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_TIMEOUT,
			       "timed out waiting for a connection");
	while (ep->qhead &&
	       mllpi_after_ms(ep->qhead->queued_us,
			      (uint64_t)ep->opts.queue_timeout_ms) <= now) {
		struct mllp_future *f = ep->qhead;
		mllpi_q_remove(ep, f);
		mllpi_space_freed(ep, 1);
		mllpi_fail_future_err(f, &e, MLLP_CTX_SEND, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
	}
	mllpi_q_arm_timer(ep);
}

/* A reply did not come in time. */
static void on_reply_timeout(struct mllpi_conn *c)
{
	if (c->ep->opts.mllp_release == 2) { /* conn_r2.c: resend or fail */
		mllpi_r2_timeout(c);
		return;
	}
	struct mllp_error e;
	mllpi_reply_timed_out(c, c->send_start_us, &e);
	if (c->ep->opts.close_on_recv_error) {
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
	} else {
		/* The decoder is kept: a late reply still arriving
		 * completes and is dropped by MSA-2 correlation
		 * (stale_reply, conn_reply.c) instead of its tail being taken
		 * for junk before the next message's reply. */
		if (c->cur)
			mllpi_fail_future_err(c->cur, &e, MLLP_CTX_RECEIVE,
					      true, true);
		mllpi_conn_finish(c);
	}
}

void mllpi_pool_on_timer(void *ctx, struct mllpi_timer *t)
{
	struct mllp_pool *p = ctx;
	if (t->kind == T_QUEUE) {
		on_queue_timer(t->owner);
		return;
	}
	if (t->kind == T_LANE) {
		mllpi_lane_on_timer(t->owner);
		return;
	}
	if (t->kind == T_APP) {
		mllpi_app_on_timer(t->owner);
		return;
	}
	struct mllpi_conn *c = t->owner;
	int kind = t->kind;
	if ((kind == T_SEND || kind == T_REPLY) && c->win) {
		mllpi_win_on_timer(c); /* scans the window's deadlines */
		return;
	}
	if ((kind == T_SEND || kind == T_REPLY) && c->due_us > t->deadline_us) {
		/* Lazy entry (mllpi_conn_timer_lazy): not due yet. */
		mllpi_timer_arm(&p->loop.timers, t, c->due_us);
		return;
	}
	t->kind = T_NONE;
	switch (kind) {
	case T_BACKOFF:
		mllpi_conn_start_connect(c);
		break;
	case T_CONNECT:
		if (c->sock && c->sock->tls) {
			mllpi_conn_tls_timeout(c); /* the handshake's */
			break;
		}
		/* Cancel the connect; its completion (-ECANCELED) reports
		 * the failure as a timeout. */
		if (c->sock)
			p->loop.ops->cancel_fd(p->loop.be, c->sock->fd, 0);
		break;
	case T_SEND:
		mllpi_conn_send_failed(c, MLLP_ERR_TIMEOUT, NULL);
		break;
	case T_REPLY:
		on_reply_timeout(c);
		break;
	default:
		break;
	}
}

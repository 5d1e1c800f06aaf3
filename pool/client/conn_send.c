/* Sending: an idle connection takes a message, frames it and submits the
 * send; a failed send closes the connection. */
#include "conn.h"
#include "window.h"

#include <string.h>

int mllpi_submit_send(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->sock->tls)
		return mllpi_conn_tls_send(c);
	size_t skip = c->sent;
	int n = 0;
	for (int i = 0; i < c->iov_full_n; i++) {
		size_t l = c->iov_full[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		c->iov[n].iov_base = (char *)c->iov_full[i].iov_base + skip;
		c->iov[n].iov_len = l - skip;
		skip = 0;
		n++;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	uint64_t tok = mllpi_tok(c->sock, TOK_SEND);
	/* The first send of an attempt: the bytes waiting before it are
	 * measured (conn_presend.c). */
	int rc =
	    c->sent == 0
		? mllpi_presend_send(c, tok, mllpi_tok(c->sock, TOK_INQ))
		: p->loop.ops->sendmsg(p->loop.be, c->sock->fd, &c->msg, tok);
	if (rc == 0) {
		c->sock->pending++;
		c->send_in_flight = true;
	}
	return rc;
}

static const unsigned char sb_byte[1] = {MLLP_SB};
static const unsigned char trailer[2] = {MLLP_EB, MLLP_CR};

void mllpi_conn_send_failed(struct mllpi_conn *c, int reason, const char *why)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e;
	mllpi_error_note(&e, MLLP_CTX_SEND, reason, why);
	mllpi_pool_log(p, MLLP_LOG_ERROR, "Error sending to %s:%u => %s",
		       ep->host, ep->port, e.message);
	mllpi_emit(c, MLLP_EV_SEND_ERROR, &e, 0, 0, false, 0, false);
	mllpi_conn_close(c, true, MLLP_CTX_SEND, &e,
			 ep->opts.reconnect_on_send_error, true);
}

/* Start sending f on idle connection c. */
void mllpi_conn_start_message(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->win) {
		mllpi_win_take(c, f);
		return;
	}
	mllpi_idle_remove(c);
	c->state = C_BUSY;
	c->cur = f;
	f->where = W_INFLIGHT;
	STAT_ADD(c->ep, st_in_flight, 1);
	c->sent = 0;
	c->send_done = false;
	c->reply_done = false;
	c->early_reply = false;
	mllpi_r2_start(c);
	if (f->framed) {
		c->iov_full[0].iov_base = (void *)f->payload;
		c->iov_full[0].iov_len = f->len;
		c->iov_full_n = 1;
	} else {
		c->iov_full[0].iov_base = (void *)sb_byte;
		c->iov_full[0].iov_len = 1;
		c->iov_full[1].iov_base = (void *)f->payload;
		c->iov_full[1].iov_len = f->len;
		c->iov_full[2].iov_base = (void *)trailer;
		c->iov_full[2].iov_len = 2;
		c->iov_full_n = 3;
	}
	c->total = f->framed ? f->len : f->len + 3;
	c->send_start_us = p->loop.now_us;
	/* Keep a frame in progress when replies are correlated: it is a late
	 * reply to an earlier message (see mllpi_pool_on_timer, T_REPLY). */
	if (c->ep->opts.close_on_recv_error ||
	    !mllp_decoder_in_frame(&c->dec)) {
		mllp_decoder_reset(&c->dec);
		mllpi_presend_forget(c);
	}
	int rc = mllpi_submit_send(c);
	if (rc < 0) {
		mllpi_flush_moved(
		    p); /* this future's slot first (mllpi_slot_moved) */
		mllpi_conn_send_failed(c, rc, NULL);
		return;
	}
	mllpi_conn_send_submitted(p, c);
}

/* An idle connection takes the next queued message, or goes idle. */
void mllpi_conn_dispatch(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	if (c->win) {
		mllpi_win_fill(c);
		return;
	}
	if (c->state != C_IDLE || ep->pool->stopping)
		return;
	struct mllp_future *f = mllpi_q_take(ep);
	if (f) {
		mllpi_conn_start_message(c, f);
		return;
	}
	if (!c->in_idle) {
		c->idle_next = ep->idle;
		ep->idle = c;
		c->in_idle = true;
	}
}

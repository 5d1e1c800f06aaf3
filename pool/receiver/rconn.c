/* A receiver connection's life: reads (decoder, junk), end of file,
 * pausing reads (reply backlog, buffer budget), close, fail, free. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "receiver_internal.h"

void mllpi_rconn_free(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	close(c->fd);
	mllpi_tls_stream_free(c->tls);
	mllp_decoder_free(&c->dec);
	mllpi_obuf_free(r, &c->wr);
	mllpi_obuf_free(r, &c->fl);
	mllpi_obuf_free(r, &c->stash);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nconns--;
	r->alloc.free(r->alloc.ctx, c, sizeof(*c));
}

/* Queue a closed connection with nothing outstanding for freeing at the
 * end of the loop turn (callers may still look at it until then). */
void mllpi_rconn_reap(struct rconn *c)
{
	if (!c->closing || c->pending > 0 || c->reaped ||
	    (c->tls && mllpi_tls_stream_busy(c->tls)))
		return;
	c->reaped = true;
	c->dead_next = c->r->dead;
	c->r->dead = c;
}

void mllpi_recv_free_dead(struct mllp_receiver *r)
{
	while (r->dead) {
		struct rconn *c = r->dead;
		r->dead = c->dead_next;
		mllpi_rconn_free(c);
	}
}

/* Close: cancel what is outstanding, free when the last completion is
 * back. Emits connection_stop once. */
void mllpi_rconn_close(struct rconn *c, enum mllp_close_reason why, int error)
{
	struct mllp_receiver *r = c->r;
	if (c->closing)
		return;
	c->closing = true;
	c->why = why;
	if (c->tls)
		mllpi_rtls_close(c, why); /* close_notify if orderly */
	mllpi_timer_disarm(&r->loop.timers, &c->idle);
	mllpi_timer_disarm(&r->loop.timers, &c->delay);
	mllpi_rconn_held_free(c);
	mllpi_rbudget_remove(&r->budget, &c->bc);
	mllpi_rlog_conn_end(&r->log, &c->jlog, c->info.peer_address,
			    c->info.peer_port, r->loop.now_us);
	ST_SUB(r, st_active, 1);
	if (why == MLLP_CLOSE_IDLE_TIMEOUT)
		ST_ADD(r, st_idle, 1);
	else if (why == MLLP_CLOSE_ERROR)
		ST_ADD(r, st_error, 1);
	emit(r, MLLP_RECEIVER_EV_CONNECTION_STOP, &c->info, why, error,
	     mllpi_now_us() - c->start_us, MLLP_MSG_UNKNOWN, 0, 0);
	/* The cancel request is itself awaited (counted in pending): the fd
	 * is closed only after it ran, so it can never hit a new socket that
	 * reuses the number. */
	if (c->pending > 0 || (c->tls && mllpi_tls_stream_busy(c->tls))) {
		if (r->loop.ops->cancel_fd(r->loop.be, c->fd,
					   tok(c, TOK_CANCEL)) == 0)
			c->pending++;
		else /* no room to cancel: end the operations another way */
			shutdown(c->fd, SHUT_RDWR);
	}
	mllpi_rconn_reap(c);
}

void mllpi_rconn_fail(struct rconn *c, int error, const char *what)
{
	mllpi_rlog_line(&c->r->log, MLLP_LOG_ERROR,
			"connection from %s:%u: %s (%s)", c->info.peer_address,
			c->info.peer_port, what, mllp_strerror(error));
	mllpi_rconn_close(c, MLLP_CLOSE_ERROR, error);
}

static bool conn_drained(const struct rconn *c)
{
	return !c->sending && c->wr.len == 0 && !c->hhead &&
	       c->stash.len == 0 &&
	       (!c->tls || mllpi_tls_stream_drained(c->tls));
}

static bool only_crlf(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/* Reply bytes not yet written: queued, held by a delay, in flight. */
static size_t conn_unsent(const struct rconn *c)
{
	return c->wr.len + c->held_bytes +
	       (c->sending ? c->fl.len - c->fl_off : 0) +
	       (c->tls ? mllpi_tls_stream_wire_unsent(c->tls) : 0);
}

/* Received bytes wait undecoded: the reply backlog is over
 * reply_backlog_pause (or not yet back to half of it), the budget paused
 * the connection, or max_pending_replies deferred replies wait. What a
 * paused connection's receives still deliver is thus only kept (counted
 * against the budget), never answered, so a peer that sends without
 * reading costs a copy, not a reply per frame. */
static bool conn_decode_held(const struct rconn *c)
{
	const struct mllp_receiver *r = c->r;
	size_t pause = r->cfg.reply_backlog_pause;
	return c->deferred >= r->cfg.max_pending_replies || c->bc.paused ||
	       (pause < r->cfg.max_reply_backlog &&
		(c->rd_backlog || conn_unsent(c) > pause));
}

/* Decode and dispatch until the bytes are used up, the connection closes
 * or decoding is held (conn_decode_held); returns the bytes used. */
static size_t conn_decode(struct rconn *c, const unsigned char *p, size_t len)
{
	struct mllp_receiver *r = c->r;
	size_t total = len;
	c->junk_run = 0;
	while (len > 0 && !c->closing && !conn_decode_held(c)) {
		size_t used;
		struct mllp_decoded ev;
		int rc = mllp_decoder_feed(&c->dec, p, len, &used, &ev);
		if (rc < 0) {
			if (rc == MLLP_ERR_FRAME_TOO_BIG) {
				ST_ADD(r, st_too_big, 1);
				mllpi_rlog_line(
				    &r->log, MLLP_LOG_ERROR,
				    "connection from %s:%u: frame bigger "
				    "than %zu bytes, closing",
				    c->info.peer_address, c->info.peer_port,
				    r->cfg.max_frame);
				mllpi_rconn_close(c, MLLP_CLOSE_ERROR, rc);
			} else {
				mllpi_rconn_fail(c, rc, "decoder failure");
			}
			return total;
		}
		p += used;
		len -= used;
		if (ev.kind == MLLP_DECODE_FRAME) {
			c->after_frame = true;
			mllpi_rconn_on_frame(c, ev.data, ev.len);
			if (!c->closing &&
			    c->dec.cap > r->cfg.read_buffer_keep &&
			    !mllp_decoder_in_frame(&c->dec))
				mllp_decoder_free(&c->dec);
		} else if (ev.kind == MLLP_DECODE_JUNK) {
			ST_ADD(r, st_junk, ev.len);
			/* A CR/LF after a frame (netcat): quietly dropped. */
			if (c->after_frame && only_crlf(ev.data, ev.len))
				continue;
			c->after_frame = false;
			c->junk_run += ev.len;
		}
	}
	if (c->junk_run && !c->closing)
		mllpi_rlog_junk(&r->log, &c->jlog, c->info.peer_address,
				c->info.peer_port, c->junk_run, r->loop.now_us);
	c->junk_run = 0;
	return total - len;
}

/* Keep received bytes left undecoded (reads are paused meanwhile; what
 * was in flight still arrives and queues behind). */
static void conn_stash(struct rconn *c, const unsigned char *p, size_t len)
{
	if (mllpi_obuf_reserve(c->r, &c->stash, len) < 0) {
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY,
				 "cannot keep the received data");
		return;
	}
	memcpy(c->stash.p + c->stash.len, p, len);
	c->stash.len += len;
}

void mllpi_rconn_on_data(struct rconn *c, const unsigned char *p, size_t len)
{
	ST_ADD(c->r, st_bytes_in, len);
	if (c->r->stopping) /* no new frame once stop began */
		return;
	if (c->stash.len > 0) { /* behind what waits already */
		conn_stash(c, p, len);
		return;
	}
	size_t used = conn_decode(c, p, len);
	if (used < len && !c->closing)
		conn_stash(c, p + used, len - used);
	if (!c->closing)
		mllpi_rconn_flush(c);
}

void mllpi_rconn_replay(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->stash.len == 0 || conn_decode_held(c))
		return;
	c->stash_off += conn_decode(c, c->stash.p + c->stash_off,
				    c->stash.len - c->stash_off);
	if (c->closing)
		return;
	if (c->stash_off == c->stash.len) {
		c->stash.len = 0;
		c->stash_off = 0;
		if (c->stash.cap > r->cfg.read_buffer_keep)
			mllpi_obuf_free(r, &c->stash);
	}
	mllpi_rconn_flush(c);
}

void mllpi_rconn_arm_recv(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	int rc = r->loop.ops->recv(r->loop.be, c->fd, tok(c, TOK_RECV));
	if (rc < 0) {
		mllpi_rconn_fail(c, rc, "cannot submit receive");
		return;
	}
	c->pending++;
	c->recv_armed = true;
}

void mllpi_rconn_check_eof(struct rconn *c)
{
	bool stop = c->r->draining;
	if ((c->eof || stop) && !c->closing && conn_drained(c))
		mllpi_rconn_close(c,
				  stop ? MLLP_CLOSE_STOPPED : MLLP_CLOSE_PEER,
				  stop ? MLLP_ERR_STOPPED : 0);
}

void mllpi_rconn_drain(struct rconn *c)
{
	if (c->closing)
		return;
	if (c->tls && !c->tls_up) { /* no reply can be due yet */
		mllpi_rconn_close(c, MLLP_CLOSE_STOPPED, MLLP_ERR_STOPPED);
		return;
	}
	/* Received, never dispatched: the sender sends them again. */
	c->stash.len = 0;
	c->stash_off = 0;
	mllpi_rconn_reads(c); /* cancels the recv */
	mllpi_rconn_check_eof(c);
}

/* Read unless the reply backlog or the budget holds the connection back:
 * arm the recv, or cancel it (the send in flight, cancelled with it, is
 * submitted again by mllpi_rconn_on_send). */
void mllpi_rconn_reads(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->closing || c->eof || c->rd_cancel)
		return;
	bool want =
	    !r->stopping && !c->rd_backlog && !c->bc.paused && !c->rd_pending;
	if (want && !c->recv_armed) {
		mllpi_rconn_arm_recv(c);
	} else if (!want && c->recv_armed &&
		   r->loop.ops->cancel_fd(r->loop.be, c->fd,
					  tok(c, TOK_CANCEL)) == 0) {
		c->pending++;
		c->rd_cancel = true;
	}
}

/* After each event of a connection: its unsent replies decide whether it
 * reads (reply_backlog_pause), its buffers count against the budget. */
static void conn_backlog(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	size_t unsent = conn_unsent(c);
	size_t pause = r->cfg.reply_backlog_pause;
	if (pause < r->cfg.max_reply_backlog) {
		bool was = c->rd_backlog;
		c->rd_backlog = unsent > pause || (was && unsent > pause / 2);
		if (c->rd_backlog && !was)
			ST_ADD(r, st_paused, 1);
	}
}

void mllpi_rconn_account(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->closing)
		return;
	conn_backlog(c);
	if (c->stash.len > 0 && !conn_decode_held(c)) {
		/* Held back no longer: decode what was kept. */
		mllpi_rconn_replay(c);
		if (!c->closing)
			mllpi_rconn_check_eof(c);
		if (c->closing)
			return;
		conn_backlog(c);
	}
	/* max_pending_replies deferred replies wait, or bytes kept for
	 * them: read no more until they are sent. */
	bool was = c->rd_pending;
	c->rd_pending =
	    c->deferred >= r->cfg.max_pending_replies || c->stash.len > 0;
	if (c->rd_pending && !was)
		ST_ADD(r, st_paused, 1);
	mllpi_rbudget_set(&r->budget, &c->bc,
			  c->dec.cap + c->wr.cap + c->fl.cap + c->held_bytes +
			      c->stash.cap +
			      (c->tls ? mllpi_tls_stream_buffered(c->tls) : 0));
	mllpi_rconn_reads(c);
}

/* The connection that embeds bc. */
static struct rconn *bc_conn(struct mllpi_rbudget_conn *bc)
{
	return (struct rconn *)(void *)((char *)bc -
					offsetof(struct rconn, bc));
}

/* Paused or resumed by the budget. Resumed with bytes kept: the delay
 * timer, due now, decodes them (mllpi_rconn_replay) outside the budget's
 * walk; reads follow once they are used up. */
void mllpi_rconn_budget_reads(struct mllpi_rbudget_conn *bc)
{
	struct rconn *c = bc_conn(bc);
	struct mllp_receiver *r = c->r;
	if (!bc->paused && c->stash.len > 0 && !c->closing &&
	    mllpi_timer_arm(&r->loop.timers, &c->delay, r->loop.now_us) < 0) {
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY, "timer");
		return;
	}
	mllpi_rconn_reads(c);
}

void mllpi_rconn_budget_shed(struct mllpi_rbudget_conn *bc)
{
	struct rconn *c = bc_conn(bc);
	mllpi_rlog_line(
	    &c->r->log, MLLP_LOG_WARNING,
	    "connection from %s:%u: buffer budget exceeded (%zu bytes "
	    "held, max_buffered_bytes %zu), closing",
	    c->info.peer_address, c->info.peer_port, bc->bytes,
	    c->r->cfg.max_buffered_bytes);
	mllpi_rconn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_NO_MEMORY);
}

/* When the idle timer is due: idle_timeout after the last activity, or
 * sooner the handshake's limit (TLS); 0: no timer. */
uint64_t mllpi_rconn_idle_due(const struct mllp_receiver *r,
			      const struct rconn *c)
{
	uint64_t due =
	    r->cfg.idle_timeout_ms
		? c->last_active_us + (uint64_t)r->cfg.idle_timeout_ms * 1000u
		: 0;
	if (c->tls && !c->tls_up && r->cfg.tls_handshake_timeout_ms) {
		uint64_t hd = c->start_us +
			      (uint64_t)r->cfg.tls_handshake_timeout_ms * 1000u;
		if (!due || hd < due)
			due = hd;
	}
	return due;
}

uint64_t mllpi_rconn_deferred_due(const struct mllp_receiver *r,
				  const struct rconn *c)
{
	if (!r->cfg.deferred_timeout_ms || c->deferred == 0)
		return 0;
	for (struct held *q = c->hhead; q; q = q->next)
		if (q->deferred && !q->ready)
			return mllpi_slot_handle(q)->queued_us +
			       (uint64_t)r->cfg.deferred_timeout_ms * 1000u;
	return 0;
}

void mllpi_rconn_on_recv(struct rconn *c, const struct mllpi_cqe *cq)
{
	if (!cq->more) {
		c->pending--;
		c->recv_armed = false;
	}
	if (c->closing) {
		mllpi_rconn_reap(c);
		return;
	}
	if (cq->res > 0 && cq->data) {
		if (c->tls)
			mllpi_rtls_on_data(c, cq->data, (size_t)cq->res);
		else
			mllpi_rconn_on_data(c, cq->data, (size_t)cq->res);
		if (c->closing) {
			mllpi_rconn_reap(c);
			return;
		}
	}
	if (cq->res == 0) {
		c->eof = true;
		mllpi_rconn_check_eof(c);
	} else if (cq->res < 0 && cq->res != -ENOBUFS &&
		   cq->res != -ECANCELED) {
		if (cq->res == -ECONNRESET)
			mllpi_rconn_close(c, MLLP_CLOSE_PEER, cq->res);
		else
			mllpi_rconn_fail(c, cq->res, "receive failed");
	}
	mllpi_rconn_account(
	    c); /* -ENOBUFS, cancel or end: reads go on if allowed */
	mllpi_rconn_reap(c);
}

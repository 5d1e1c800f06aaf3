/* Pipelining, the sending side: a connection's window of messages, what
 * may join it, the coalesced sends, the deadlines, and failing the window
 * when the connection closes (window.h). */
#include "conn.h"
#include "endpoint.h"
#include "tls_stream.h"
#include "window.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static const unsigned char sb_byte[1] = {MLLP_SB};
static const unsigned char trailer[2] = {MLLP_EB, MLLP_CR};

/* ---- options and memory --------------------------------------------- */

int mllpi_win_check_options(const struct mllp_conn_options *o,
			    struct mllp_error *err)
{
	if (o->max_inflight <= MLLP_INFLIGHT_MAX ||
	    o->max_inflight == MLLP_INFLIGHT_AUTO)
		return 0;
	mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
		       "max_inflight %u: must be 1 to %u or "
		       "MLLP_INFLIGHT_AUTO",
		       o->max_inflight, MLLP_INFLIGHT_MAX);
	return MLLP_ERR_INVALID_ARGUMENT;
}

static uint32_t window_cap(const struct mllp_conn_options *o)
{
	return o->max_inflight == MLLP_INFLIGHT_AUTO ? MLLP_INFLIGHT_AUTO_WINDOW
						     : o->max_inflight;
}

static int iov_cap(uint32_t cap)
{
	/* three iovecs a message at most (SB, payload, trailer) */
	uint64_t n = (uint64_t)cap * 3u;
	return n > IOV_MAX ? IOV_MAX : (int)n;
}

int mllpi_win_alloc(struct mllpi_endpoint *ep)
{
	uint32_t mi = ep->opts.max_inflight;
	if (mi <= 1)
		return 0;
	struct mllp_allocator *a = &ep->pool->alloc;
	uint32_t cap = window_cap(&ep->opts);
	int ni = iov_cap(cap);
	size_t sz =
	    sizeof(struct mllpi_window) + (size_t)ni * sizeof(struct iovec);
	ep->probe = mi == MLLP_INFLIGHT_AUTO ? PROBE_WAIT : PROBE_NONE;
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_window *w = a->alloc(a->ctx, sz);
		if (!w)
			return MLLP_ERR_NO_MEMORY;
		memset(w, 0, sz);
		w->iov_cap = ni;
		w->max = mi == MLLP_INFLIGHT_AUTO ? 1 : cap;
		ep->conns[i].win = w;
	}
	return 0;
}

void mllpi_win_free(struct mllpi_endpoint *ep)
{
	struct mllp_allocator *a = &ep->pool->alloc;
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_window *w = ep->conns[i].win;
		if (!w)
			continue;
		a->free(a->ctx, w,
			sizeof(*w) + (size_t)w->iov_cap * sizeof(struct iovec));
		ep->conns[i].win = NULL;
	}
}

/* ---- joining and leaving -------------------------------------------- */

static size_t frame_len(const struct mllp_future *f)
{
	return f->framed ? f->len : f->len + 3;
}

/* Replies to f can be matched by id. */
static bool keyed(const struct mllp_future *f)
{
	return f->hl7 && f->control_id_len > 0;
}

static bool may_join(const struct mllpi_conn *c, const struct mllp_future *f)
{
	const struct mllpi_window *w = c->win;
	if (w->n == 0)
		return true;
	if (w->alone || w->n >= mllpi_win_limit((struct mllpi_conn *)c))
		return false;
	if (!keyed(f))
		return c->ep->opts.replies_in_order;
	for (const struct mllp_future *g = w->head; g; g = g->qnext)
		if (keyed(g) && g->control_id_len == f->control_id_len &&
		    memcmp(g->control_id, f->control_id, f->control_id_len) ==
			0)
			return false; /* its id is in flight: it waits */
	return true;
}

static void schedule_flush(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	if (w->in_flush)
		return;
	struct mllp_pool *p = c->ep->pool;
	w->in_flush = true;
	w->flush_next = p->wflush;
	p->wflush = c;
}

static void join(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllpi_window *w = c->win;
	f->qnext = NULL;
	f->qprev = w->tail;
	if (w->tail)
		w->tail->qnext = f;
	else
		w->head = f;
	w->tail = f;
	w->n++;
	if (!keyed(f) && !c->ep->opts.replies_in_order)
		w->alone = true;
	f->w_state = W_UNSENT;
	f->w_due_us = 0;
	f->w_start_us = c->ep->pool->loop.now_us;
	if (!w->wnext) {
		w->wnext = f;
		w->woff = 0;
	}
	c->state = C_BUSY;
	if (w->probing)
		mllpi_win_probe_joined(c);
	schedule_flush(c);
}

/* In the idle list while the window has room. */
static void idle_update(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	struct mllpi_endpoint *ep = c->ep;
	bool room = c->sock && (c->state == C_IDLE || c->state == C_BUSY) &&
		    !w->held && !w->alone && w->n < mllpi_win_limit(c) &&
		    !ep->pool->stopping;
	if (room && !c->in_idle) {
		c->idle_next = ep->idle;
		ep->idle = c;
		c->in_idle = true;
	} else if (!room) {
		mllpi_idle_remove(c);
	}
}

/* A message taken for c: in flight from now on (counted), in the window
 * or held. A message canceled while held never joins. */
void mllpi_win_take(struct mllpi_conn *c, struct mllp_future *f)
{
	f->where = W_INFLIGHT;
	f->w_probe = false;
	f->w_early = false;
	f->w_state = W_UNSENT;
	STAT_ADD(c->ep, st_in_flight, 1);
	if (may_join(c, f))
		join(c, f);
	else
		c->win->held = f;
	idle_update(c);
}

static void release(struct mllpi_conn *c, struct mllp_future *f)
{
	f->where = W_DONE;
	if (!f->left_flight)
		STAT_SUB(c->ep, st_in_flight, 1);
	mllpi_future_release(f);
}

static void unlink_msg(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllpi_window *w = c->win;
	if (w->wnext == f) {
		w->wnext = f->qnext;
		w->woff = 0;
	}
	if (f->qprev)
		f->qprev->qnext = f->qnext;
	else
		w->head = f->qnext;
	if (f->qnext)
		f->qnext->qprev = f->qprev;
	else
		w->tail = f->qprev;
	f->qprev = f->qnext = NULL;
	w->n--;
	if (!keyed(f))
		w->alone = false;
}

void mllpi_win_fill(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	struct mllpi_endpoint *ep = c->ep;
	if (ep->pool->stopping || !c->sock ||
	    (c->state != C_IDLE && c->state != C_BUSY))
		return;
	if (ep->probe == PROBE_WAIT)
		mllpi_win_probe_start(c);
	while (w->held && !w->held->completed && may_join(c, w->held)) {
		struct mllp_future *h = w->held;
		w->held = NULL;
		join(c, h);
	}
	if (w->held && w->held->completed) {
		/* canceled while it waited: never written */
		struct mllp_future *h = w->held;
		w->held = NULL;
		release(c, h);
	}
	while (!w->held && !w->alone && w->n < mllpi_win_limit(c)) {
		struct mllp_future *f = mllpi_q_take(ep);
		if (!f)
			break;
		mllpi_win_take(c, f);
	}
	if (w->n == 0 && !w->held)
		c->state = C_IDLE;
	idle_update(c);
}

void mllpi_win_done(struct mllpi_conn *c, struct mllp_future *f)
{
	unlink_msg(c, f);
	release(c, f);
	mllpi_win_fill(c);
}

bool mllpi_win_find(struct mllpi_endpoint *ep, const struct mllp_future *f,
		    struct mllpi_conn **out)
{
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_window *w = ep->conns[i].win;
		if (!w)
			return false;
		if (w->held == f) {
			*out = &ep->conns[i];
			return true;
		}
		for (struct mllp_future *g = w->head; g; g = g->qnext)
			if (g == f) {
				*out = &ep->conns[i];
				return true;
			}
	}
	return false;
}

void mllpi_win_fail_all(struct mllpi_conn *c, const struct mllp_error *sent,
			const struct mllp_error *unsent, enum mllp_context ctx)
{
	struct mllpi_window *w = c->win;
	struct mllp_future *f;
	mllpi_flush_moved(c->ep->pool); /* their slots first */
	while ((f = w->head) != NULL) {
		bool written = f->w_state == W_WRITTEN;
		bool partial = f->w_state == W_SENDING;
		if (w->probing && f->w_probe)
			mllpi_win_probe_result(c, f, false,
					       written || partial
						   ? sent->message
						   : unsent->message);
		mllpi_fail_future_err(f, written || partial ? sent : unsent,
				      ctx, written, partial);
		unlink_msg(c, f);
		release(c, f);
	}
	if ((f = w->held) != NULL) {
		w->held = NULL;
		mllpi_fail_future_err(f, unsent, ctx, false, false);
		release(c, f);
	}
	w->wnext = NULL;
	w->woff = 0;
	w->alone = false;
	w->send_due_us = 0;
	if (w->probing)
		mllpi_win_probe_result(c, NULL, false, sent->message);
}

/* ---- sending -------------------------------------------------------- */

/* The iovecs of the frames not yet written, from wnext on (each marked as
 * sending); *skip: bytes of the first already written. */
static int gather(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	int n = 0;
	for (struct mllp_future *f = w->wnext; f && n + 3 <= w->iov_cap;
	     f = f->qnext) {
		if (f->framed) {
			w->iov[n].iov_base = (void *)f->payload;
			w->iov[n++].iov_len = f->len;
		} else {
			w->iov[n].iov_base = (void *)sb_byte;
			w->iov[n++].iov_len = 1;
			w->iov[n].iov_base = (void *)f->payload;
			w->iov[n++].iov_len = f->len;
			w->iov[n].iov_base = (void *)trailer;
			w->iov[n++].iov_len = 2;
		}
		f->w_state = W_SENDING;
	}
	return n;
}

static int submit(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	struct mllp_pool *p = c->ep->pool;
	int n = gather(c);
	int rc;
	if (c->sock->tls) {
		size_t taken;
		struct mllpi_tls_stream *t = c->sock->tls;
		c->send_in_flight = true;
		rc = mllpi_tls_stream_write(
		    t, w->iov, n, w->woff + mllpi_tls_stream_plain_unsent(t),
		    &taken);
		if (rc < 0)
			c->send_in_flight = false;
	} else {
		/* skip what the first frame has written already */
		size_t skip = w->woff;
		int i = 0;
		while (skip && i < n) {
			if (skip >= w->iov[i].iov_len) {
				skip -= w->iov[i].iov_len;
				i++;
				continue;
			}
			w->iov[i].iov_base = (char *)w->iov[i].iov_base + skip;
			w->iov[i].iov_len -= skip;
			skip = 0;
		}
		memset(&w->msg, 0, sizeof(w->msg));
		w->msg.msg_iov = w->iov + i;
		w->msg.msg_iovlen = (size_t)(n - i);
		rc = p->loop.ops->sendmsg(p->loop.be, c->sock->fd, &w->msg,
					  mllpi_tok(c->sock, TOK_SEND));
		if (rc == 0) {
			c->sock->pending++;
			c->send_in_flight = true;
		}
	}
	if (rc == 0) {
		int64_t st = c->ep->opts.send_timeout_ms;
		w->send_due_us =
		    st >= 0 ? mllpi_after_ms(p->loop.now_us, (uint64_t)st) : 0;
		if (w->send_due_us && (!c->timer.index ||
				       c->timer.deadline_us > w->send_due_us)) {
			c->timer.kind = T_SEND;
			mllpi_timer_arm(&p->loop.timers, &c->timer,
					w->send_due_us);
		}
	}
	return rc;
}

void mllpi_win_flush(struct mllp_pool *p)
{
	struct mllpi_conn *c;
	while ((c = p->wflush) != NULL) {
		struct mllpi_window *w = c->win;
		p->wflush = w->flush_next;
		w->flush_next = NULL;
		w->in_flush = false;
		if (!c->sock || c->send_in_flight || !w->wnext ||
		    (c->state != C_BUSY && c->state != C_IDLE))
			continue;
		int rc = submit(c);
		if (rc < 0) {
			mllpi_flush_moved(p); /* their slots first */
			mllpi_conn_send_failed(c, rc, NULL);
		}
	}
}

void mllpi_win_unflush(struct mllpi_endpoint *ep)
{
	struct mllp_pool *p = ep->pool;
	struct mllpi_conn **pp = &p->wflush;
	while (*pp) {
		struct mllpi_window *w = (*pp)->win;
		if ((*pp)->ep == ep) {
			*pp = w->flush_next;
			w->flush_next = NULL;
			w->in_flush = false;
		} else {
			pp = &w->flush_next;
		}
	}
}

static void arm_at(struct mllpi_conn *c, uint64_t due)
{
	struct mllp_pool *p = c->ep->pool;
	if (!due)
		return;
	if (!c->timer.index || c->timer.deadline_us > due) {
		if (c->timer.kind != T_SEND)
			c->timer.kind = T_REPLY;
		mllpi_timer_arm(&p->loop.timers, &c->timer, due);
	}
}

/* Every byte of f is written: its reply deadline starts; a message that
 * asked for no accept ACK (MSH-15 NE / ER) completes and leaves the
 * window, a reply kept for it taken as a late one (conn_stale.c). */
static void written(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllp_pool *p = c->ep->pool;
	f->w_state = W_WRITTEN;
	STAT_ADD(c->ep, st_sent, 1);
	if (f->no_accept) {
		bool early = f->w_early;
		f->w_early = false;
		mllpi_accept_written(c, f, early);
		mllpi_win_done(c, f);
		return;
	}
	if (f->async && !f->completed) {
		f->result.status = 0;
		f->result.written = true;
		mllpi_publish(f);
	}
	int64_t rt = f->reply_timeout;
	if (rt == 0)
		rt = c->ep->opts.reply_timeout_ms;
	f->w_due_us =
	    rt >= 0 ? mllpi_after_ms(p->loop.now_us, (uint64_t)rt) : 0;
	arm_at(c, f->w_due_us);
}

void mllpi_win_on_sent(struct mllpi_conn *c, int res)
{
	struct mllpi_window *w = c->win;
	struct mllpi_sock *s = c->sock;
	c->send_in_flight = false;
	w->send_due_us = 0;
	if (res < 0) {
		mllpi_conn_send_failed(c, res, NULL);
		return;
	}
	size_t left = (size_t)res;
	struct mllp_future *from = w->wnext;
	while (left && w->wnext) {
		size_t rem = frame_len(w->wnext) - w->woff;
		if (left < rem) {
			w->woff += left;
			break;
		}
		left -= rem;
		w->wnext = w->wnext->qnext;
		w->woff = 0;
	}
	/* Messages from `from` up to wnext are written through; one whose
	 * reply came first is completed now (it may close the
	 * connection). A message that completes leaves the window, which
	 * refills behind the tail: those joined now are W_UNSENT, never in
	 * this send. */
	struct mllp_future *end = w->wnext;
	while (from && from != end && from->w_state == W_SENDING &&
	       c->sock == s) {
		struct mllp_future *next = from->qnext;
		bool no_accept = from->no_accept;
		written(c, from);
		if (!no_accept && from->w_early)
			mllpi_win_take_early(c, from);
		from = next;
	}
	if (c->sock != s || !w->wnext)
		return;
	/* What the send left unwritten (none of it on the wire yet but the
	 * first frame's woff bytes) goes with the next send, and with it what
	 * joined meanwhile. */
	for (struct mllp_future *f = w->wnext; f; f = f->qnext)
		f->w_state =
		    f == w->wnext && w->woff > 0 ? W_SENDING : W_UNSENT;
	if (s->tls && mllpi_tls_stream_plain_unsent(s->tls) > 0) {
		/* the stream still writes plaintext it took: its next flight
		 * is reported while a send is in flight */
		int rc = submit(c);
		if (rc < 0)
			mllpi_conn_send_failed(c, rc, NULL);
		return;
	}
	schedule_flush(c);
}

/* ---- deadlines ------------------------------------------------------ */

static void reply_timeout(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllp_error e;
	mllpi_reply_timed_out(c, f->w_start_us, &e);
	if (c->win->probing && f->w_probe)
		mllpi_win_probe_result(c, f, false,
				       "a reply did not come in time");
	if (c->ep->opts.close_on_recv_error) {
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		return;
	}
	/* The socket stays: a late reply matches nothing any more and is
	 * dropped (conn_window_reply.c). */
	mllpi_fail_future_err(f, &e, MLLP_CTX_RECEIVE, true, true);
	mllpi_win_done(c, f);
}

void mllpi_win_on_timer(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	uint64_t now = mllpi_now_us();
	c->timer.kind = T_NONE;
	if (!c->sock)
		return;
	if (c->send_in_flight && w->send_due_us && w->send_due_us <= now) {
		mllpi_conn_send_failed(c, MLLP_ERR_TIMEOUT, NULL);
		return;
	}
	struct mllpi_sock *s = c->sock;
	struct mllp_future *f = w->head;
	while (f && c->sock == s) {
		struct mllp_future *next = f->qnext;
		if (f->w_state == W_WRITTEN && f->w_due_us &&
		    f->w_due_us <= now)
			reply_timeout(c, f);
		f = next;
	}
	if (c->sock != s)
		return;
	uint64_t due = c->send_in_flight ? w->send_due_us : 0;
	for (f = w->head; f; f = f->qnext)
		if (f->w_state == W_WRITTEN && f->w_due_us &&
		    (!due || f->w_due_us < due))
			due = f->w_due_us;
	arm_at(c, due);
}

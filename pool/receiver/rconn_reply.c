/* A receiver connection's replies and output: a frame to the dispatcher,
 * its reply built (bytes or ACK), appended or held for a delay, and sent
 * from the flight buffer, one send in flight per connection. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <mllp/ack.h>

#include "receiver_internal.h"
#include "reserved.h"

int mllpi_obuf_reserve(struct mllp_receiver *r, struct obuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 1024;
	while (ncap < b->len + more)
		ncap *= 2;
	void *p = r->alloc.realloc(r->alloc.ctx, b->p, b->cap, ncap);
	if (!p)
		return MLLP_ERR_NO_MEMORY;
	b->p = p;
	b->cap = ncap;
	return 0;
}

void mllpi_obuf_free(struct mllp_receiver *r, struct obuf *b)
{
	if (b->p)
		r->alloc.free(r->alloc.ctx, b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

static void obuf_trim(struct mllp_receiver *r, struct obuf *b)
{
	if (b->len == 0 && b->cap > r->cfg.read_buffer_keep)
		mllpi_obuf_free(r, b);
}

/* Free one slot of the FIFO, or let go of a deferred one (rdefer.c). */
static void held_drop(struct rconn *c, struct held *h)
{
	struct mllp_receiver *r = c->r;
	if (h->deferred)
		mllpi_rdefer_detach(c, mllpi_slot_handle(h));
	else
		r->alloc.free(r->alloc.ctx, h, sizeof(*h) + h->len);
}

void mllpi_rconn_held_free(struct rconn *c)
{
	struct held *h = c->hhead;
	while (h) {
		struct held *n = h->next;
		held_drop(c, h);
		h = n;
	}
	c->hhead = c->htail = NULL;
	c->held_bytes = 0;
}

/* Submit the flush buffer (c->fl) as the connection's one send in flight. */
void mllpi_rconn_send_flight(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	c->fl_off = 0;
	c->iov.iov_base = c->fl.p;
	c->iov.iov_len = c->fl.len;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = &c->iov;
	c->msg.msg_iovlen = 1;
	int rc =
	    r->loop.ops->sendmsg(r->loop.be, c->fd, &c->msg, tok(c, TOK_SEND));
	if (rc < 0) {
		mllpi_rconn_fail(c, rc, "cannot submit send");
		return;
	}
	c->pending++;
	c->sending = true;
}

/* Start a send of the write buffer when none is in flight. */
void mllpi_rconn_flush(struct rconn *c)
{
	if (c->tls) {
		mllpi_rtls_flush(c);
		return;
	}
	if (c->closing || c->sending || c->wr.len == 0)
		return;
	struct obuf t = c->fl;
	c->fl = c->wr;
	c->wr = t;
	c->wr.len = 0;
	c->wr.replies = 0;
	mllpi_rconn_send_flight(c);
}

/* Append one framed reply to the write buffer. */
static int conn_append(struct rconn *c, const unsigned char *framed, size_t len)
{
	struct mllp_receiver *r = c->r;
	bool busy = c->sending || (c->tls && mllpi_tls_stream_busy(c->tls));
	if (busy && c->wr.len + len > r->cfg.max_reply_backlog)
		return MLLP_ERR_WOULD_BLOCK;
	if (mllpi_obuf_reserve(r, &c->wr, len) < 0)
		return MLLP_ERR_NO_MEMORY;
	memcpy(c->wr.p + c->wr.len, framed, len);
	c->wr.len += len;
	c->wr.replies++;
	return 0;
}

static int scratch_reserve(struct mllp_receiver *r, size_t n)
{
	if (n <= r->scratch_cap)
		return 0;
	size_t ncap = r->scratch_cap ? r->scratch_cap : 1024;
	while (ncap < n)
		ncap *= 2;
	void *p =
	    r->alloc.realloc(r->alloc.ctx, r->scratch, r->scratch_cap, ncap);
	if (!p)
		return MLLP_ERR_NO_MEMORY;
	r->scratch = p;
	r->scratch_cap = ncap;
	return 0;
}

/* Build the framed reply in r->scratch; *len 0 means no reply. */
static int build_reply(struct rconn *c, const struct mllp_message *m,
		       const struct mllp_reply *rep, size_t *len)
{
	struct mllp_receiver *r = c->r;
	*len = 0;
	if (rep->kind == MLLP_REPLY_BYTES) {
		if (rep->len > 0 && !rep->data)
			return MLLP_ERR_INVALID_ARGUMENT;
		int w = mllp_wrap_check(NULL, rep->data, rep->len);
		if (w < 0)
			return w;
		size_t need = w == 1 ? rep->len : rep->len + 3;
		if (scratch_reserve(r, need) < 0)
			return MLLP_ERR_NO_MEMORY;
		*len = mllpi_reply_frame(r->scratch, rep->data, rep->len, w);
		return 0;
	}
	if (rep->kind != MLLP_REPLY_ACK)
		return 0;
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.code = rep->ack_code;
	o.text = rep->ack_text;
	o.keep_control_id = r->cfg.keep_control_id;
	o.sequence = ++r->ack_seq;
	o.now_s = r->loop.wall_s; /* 0 (not yet set) means now */
	size_t n = 0;
	size_t room = r->scratch_cap > 3 ? r->scratch_cap - 3 : 0;
	int rc = mllp_ack_build(m->data, m->len, &o,
				room ? (char *)r->scratch + 1 : NULL, room, &n);
	if (rc == MLLP_ERR_BUFFER_TOO_SMALL) {
		if (scratch_reserve(r, n + 3) < 0)
			return MLLP_ERR_NO_MEMORY;
		rc = mllp_ack_build(m->data, m->len, &o, (char *)r->scratch + 1,
				    r->scratch_cap - 3, &n);
	}
	if (rc < 0)
		return rc;
	r->scratch[0] = MLLP_SB;
	r->scratch[n + 1] = MLLP_EB;
	r->scratch[n + 2] = MLLP_CR;
	*len = n + 3;
	return 0;
}

static void conn_arm_delay(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (!c->hhead || !c->hhead->ready) { /* none, or a deferred first */
		mllpi_timer_disarm(&r->loop.timers, &c->delay);
		return;
	}
	if (mllpi_timer_arm(&r->loop.timers, &c->delay, c->hhead->due_us) < 0)
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY,
				 "cannot arm reply timer");
}

/* Move the slots that are ready and due (in order) into the write
 * buffer; a deferred slot not yet completed stops it. */
void mllpi_rconn_release_held(struct rconn *c, uint64_t now)
{
	while (c->hhead && c->hhead->ready && c->hhead->due_us <= now) {
		struct held *h = c->hhead;
		int rc = h->len ? conn_append(c, h->bytes, h->len) : 0;
		if (rc < 0) {
			mllpi_rconn_fail(c, rc, "reply backlog exceeded");
			return;
		}
		c->hhead = h->next;
		if (!c->hhead)
			c->htail = NULL;
		c->held_bytes -= h->len;
		held_drop(c, h); /* a deferred one: taken, so freed */
	}
	conn_arm_delay(c);
}

void mllpi_rconn_resume(struct rconn *c, uint64_t now)
{
	mllpi_rconn_release_held(c, now);
	if (!c->closing) /* deferred slots released: room to read */
		mllpi_rconn_replay(c);
	if (!c->closing)
		mllpi_rconn_flush(c);
	if (!c->closing)
		mllpi_rconn_check_eof(c);
	mllpi_rconn_account(c);
}

/* MLLP release 2: the commit answer of a frame in front of its n reply
 * bytes in r->scratch (the NAK instead of them when refused). With a
 * reply delay and nothing held, the commit ACK goes out at once and the
 * reply alone is held. Negative: the connection failed. */
static int r2_answer(struct rconn *c, bool nak, uint32_t delay_ms, size_t *n)
{
	struct mllp_receiver *r = c->r;
	unsigned char block[MLLPI_R2_BLOCK];
	mllpi_r2_block(block, nak);
	if (nak)
		*n = 0;
	else if (delay_ms > 0 && !c->hhead) {
		int rc = conn_append(c, block, sizeof(block));
		if (rc < 0)
			mllpi_rconn_fail(c, rc, "reply backlog exceeded");
		else
			c->wr.replies--; /* counted with the held reply */
		return rc;
	}
	if (scratch_reserve(r, *n + sizeof(block)) < 0) {
		mllpi_rconn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_NO_MEMORY);
		return MLLP_ERR_NO_MEMORY;
	}
	memmove(r->scratch + sizeof(block), r->scratch, *n);
	memcpy(r->scratch, block, sizeof(block));
	*n += sizeof(block);
	return 0;
}

void mllpi_rconn_on_frame(struct rconn *c, const unsigned char *data,
			  size_t len)
{
	struct mllp_receiver *r = c->r;
	struct mllp_message m = {
	    .data = data,
	    .len = len,
	    .kind = (len >= 3 && memcmp(data, "MSH", 3) == 0)
			? MLLP_MSG_HL7
			: MLLP_MSG_UNKNOWN,
	    .conn = &c->info,
	};
	c->last_active_us = r->loop.now_us;
	ST_ADD(r, st_msgs, 1);
	if (m.kind == MLLP_MSG_HL7)
		ST_ADD(r, st_hl7, 1);
	emit(r, MLLP_RECEIVER_EV_MESSAGE_RECEIVED, &c->info, MLLP_CLOSE_NONE, 0,
	     0, m.kind, len, 0);
	struct mllp_reply rep;
	memset(&rep, 0, sizeof(rep));
	rep.deferral_ = c; /* for mllp_reply_defer */
	r->dispatched = true;
	r->cfg.dispatch(r->cfg.dispatch_ctx, &m, &rep);
	if (c->defer_h) { /* answered later: its slot waits in the FIFO */
		mllpi_rdefer_queue(c, c->defer_h);
		c->defer_h = NULL;
		return;
	}
	/* A field this library does not know: refuse rather than ignore. */
	bool r2 = r->cfg.mllp_release == 2;
	if (MLLPI_CHECK_RESERVED(&rep, "mllp_reply", MLLP_CTX_NONE, NULL)) {
		mllpi_rlog_line(&r->log, MLLP_LOG_ERROR,
				"connection from %s:%u: %s: "
				"mllp_reply: reserved fields must be zero",
				c->info.peer_address, c->info.peer_port,
				r2 ? "NAK sent" : "no reply sent");
		if (!r2)
			return;
		rep.kind = MLLP_REPLY_NAK;
		rep.delay_ms = 0;
	}
	size_t n;
	int rc = build_reply(c, &m, &rep, &n);
	if (rc < 0) {
		mllpi_rlog_line(
		    &r->log, MLLP_LOG_ERROR,
		    "connection from %s:%u: cannot build the reply: %s",
		    c->info.peer_address, c->info.peer_port, mllp_strerror(rc));
		if (rc == MLLP_ERR_NO_MEMORY) {
			mllpi_rconn_close(c, MLLP_CLOSE_ERROR, rc);
			return;
		}
		n = 0; /* release 2: the commit ACK alone */
	}
	if (r2 &&
	    r2_answer(c, rep.kind == MLLP_REPLY_NAK, rep.delay_ms, &n) < 0)
		return;
	if (n == 0)
		return;
	if (rep.delay_ms == 0 && !c->hhead) {
		rc = conn_append(c, r->scratch, n);
		if (rc < 0)
			mllpi_rconn_fail(c, rc, "reply backlog exceeded");
		return;
	}
	/* Held: behind earlier held replies, never before them. */
	if (c->held_bytes + n > r->cfg.max_reply_backlog) {
		mllpi_rconn_fail(c, MLLP_ERR_WOULD_BLOCK,
				 "reply backlog exceeded");
		return;
	}
	struct held *h = r->alloc.alloc(r->alloc.ctx, sizeof(*h) + n);
	if (!h) {
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY,
				 "cannot hold the reply");
		return;
	}
	h->next = NULL;
	h->len = n;
	h->bytes = (unsigned char *)(h + 1);
	h->deferred = false;
	h->ready = true;
	h->due_us = c->last_active_us + (uint64_t)rep.delay_ms * 1000u;
	if (c->htail && h->due_us < c->htail->due_us)
		h->due_us = c->htail->due_us;
	memcpy(h->bytes, r->scratch, n);
	if (c->htail)
		c->htail->next = h;
	else
		c->hhead = h;
	c->htail = h;
	c->held_bytes += n;
	if (c->hhead == h)
		conn_arm_delay(c);
}

void mllpi_rconn_on_send(struct rconn *c, const struct mllpi_cqe *cq)
{
	struct mllp_receiver *r = c->r;
	/* Cancelled by mllpi_rconn_reads (nothing written): submit it again. */
	int res = cq->res == -ECANCELED ? 0 : cq->res;
	c->pending--;
	c->sending = false;
	if (c->closing) {
		mllpi_rconn_reap(c);
		return;
	}
	if (res < 0) {
		if (res == -EPIPE || res == -ECONNRESET)
			mllpi_rconn_close(c, MLLP_CLOSE_PEER, res);
		else
			mllpi_rconn_fail(c, res, "send failed");
		mllpi_rconn_reap(c);
		return;
	}
	ST_ADD(r, st_bytes_out, (uint64_t)res);
	c->fl_off += (size_t)res;
	if (c->fl_off < c->fl.len) {
		/* Short write: send the rest. */
		c->iov.iov_base = c->fl.p + c->fl_off;
		c->iov.iov_len = c->fl.len - c->fl_off;
		int rc = r->loop.ops->sendmsg(r->loop.be, c->fd, &c->msg,
					      tok(c, TOK_SEND));
		if (rc < 0) {
			mllpi_rconn_fail(c, rc, "cannot submit send");
			mllpi_rconn_reap(c);
			return;
		}
		c->pending++;
		c->sending = true;
		return;
	}
	mllpi_rconn_sent(c, c->fl.len, c->fl.replies);
}

/* Also the TLS stream's flights (rconn_tls.c), fl then unused. */
void mllpi_rconn_sent(struct rconn *c, size_t len, uint32_t replies)
{
	struct mllp_receiver *r = c->r;
	ST_ADD(r, st_replies, replies);
	c->last_active_us = r->loop.now_us;
	if (replies > 0 || !c->tls) /* not for handshake flights */
		emit(r, MLLP_RECEIVER_EV_REPLY_SENT, &c->info, MLLP_CLOSE_NONE,
		     0, 0, MLLP_MSG_UNKNOWN, len, replies);
	c->fl.len = 0;
	c->fl.replies = 0;
	obuf_trim(r, &c->fl);
	if (c->closing) {
		mllpi_rconn_reap(c);
		return;
	}
	mllpi_rconn_flush(c);
	obuf_trim(r, &c->wr);
	mllpi_rconn_check_eof(c);
	mllpi_rconn_account(c);
	mllpi_rconn_reap(c);
}

/* MLLP release 2 (mllp_conn_options.mllp_release 2): the receiver answers
 * each message with a commit acknowledgement, the one-byte frame 0x06
 * (0x0B 0x06 0x1C 0x0D), or a negative one, 0x15 (NAK). The message is
 * done when its commit ACK arrives; a NAK, or no commit answer within the
 * reply timeout, sends the same message again on the same connection, up
 * to r2_max_retries times.
 *
 * Telling answers apart: a connection has one message in flight, and the
 * receiver answers the attempts it was sent in order. So every commit
 * answer belongs to the oldest attempt not answered yet: first those of
 * messages already done (after a timeout, the late answers of the earlier
 * attempts: dropped as stale), then those of the message in flight. An
 * answer that came before the latest attempt was handed to the kernel
 * (conn_presend.c) cannot answer that attempt. An attempt that never gets
 * an answer leaves one commit answer mistaken for its own later on the
 * same socket: the message it belonged to then times out and is sent
 * again — a resend, never a message taken as committed wrongly.
 *
 * Content frames (the HL7 ACK that may follow a commit ACK) never decide a
 * message: the receiver sends the commit ACK of message k, then its HL7
 * ACK, before it can have read message k + 1, so an HL7 ACK is matched
 * (MSA-2) against the last committed message, verified, counted and
 * reported (receive_valid, orphan); a copy of one already seen is stale;
 * anything else is reported as invalid_response and dropped. */
#include "conn.h"

#include <string.h>

#define R2_ACK 0x06
#define R2_NAK 0x15

int mllpi_r2_check_options(const struct mllp_conn_options *o,
			   struct mllp_error *err)
{
	if (o->mllp_release > 2) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "mllp_conn_options: mllp_release must be 1 or 2 "
			       "(got %u)",
			       o->mllp_release);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (o->mllp_release == 2 && o->max_inflight > 1) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "mllp_conn_options: mllp_release 2 allows one "
			       "message in flight (max_inflight must be 1)");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	return 0;
}

void mllpi_r2_reset(struct mllpi_conn *c)
{
	memset(&c->r2, 0, sizeof(c->r2));
}

void mllpi_r2_start(struct mllpi_conn *c)
{
	c->r2.prior += c->r2.owed; /* a message that ended unanswered */
	c->r2.attempts = 1;
	c->r2.owed = 1;
}

/* Send the message in flight again (every byte, from the first). */
static void resend(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	c->sent = 0;
	c->send_done = false;
	c->reply_done = false;
	c->early_reply = false;
	c->send_start_us = p->loop.now_us;
	c->r2.attempts++;
	c->r2.owed++;
	int rc = mllpi_submit_send(c);
	if (rc < 0) {
		mllpi_conn_send_failed(c, rc, NULL);
		return;
	}
	if (!mllpi_conn_send_submitted(p, c))
		c->timer.kind =
		    T_NONE; /* the reply timer is rearmed once sent */
}

/* The message in flight failed for good with e. After timeouts, as any
 * reply timeout (closed with close_on_recv_error); after a NAK the
 * receiver has answered every attempt: the connection stays. */
static void give_up(struct mllpi_conn *c, const struct mllp_error *e,
		    bool timeout)
{
	struct mllpi_endpoint *ep = c->ep;
	mllpi_pool_log(ep->pool, MLLP_LOG_ERROR,
		       "Error receiving from %s:%u => %s", ep->host, ep->port,
		       e->message);
	if (timeout && ep->opts.close_on_recv_error) {
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, e, true, true);
		return;
	}
	mllpi_fail_future_err(c->cur, e, MLLP_CTX_RECEIVE, true, true);
	mllpi_conn_finish(c);
}

/* A NAK answered the latest attempt, or none came in time (timeout). */
static void attempt_failed(struct mllpi_conn *c, bool timeout)
{
	uint32_t n = c->r2.attempts;
	uint64_t limit = (uint64_t)c->ep->opts.r2_max_retries + 1;
	struct mllp_error e;
	int reason = timeout ? MLLP_ERR_TIMEOUT : MLLP_ERR_NAK;
	const char *what = timeout ? "no commit acknowledgement"
				   : "negative commit acknowledgement (NAK)";
	if (n < limit)
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason,
			       "%s (attempt %u of %llu); sending again", what,
			       n, (unsigned long long)limit);
	else
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason,
			       "%s after %u attempt%s", what, n,
			       n == 1 ? "" : "s");
	mllpi_emit(c, timeout ? MLLP_EV_RECEIVE_TIMEOUT : MLLP_EV_COMMIT_NAK,
		   &e, c->ep->pool->loop.now_us - c->send_start_us, 0, false, 0,
		   c->cur->completed);
	if (n < limit) {
		mllpi_pool_log(c->ep->pool, MLLP_LOG_WARNING,
			       "Error receiving from %s:%u => %s", c->ep->host,
			       c->ep->port, e.message);
		resend(c);
		return;
	}
	give_up(c, &e, timeout);
}

/* The commit ACK of the message in flight: it is done. */
static void committed(struct mllpi_conn *c)
{
	struct mllp_future *f = c->cur;
	struct mllp_pool *p = c->ep->pool;
	uint64_t lat = p->loop.now_us - c->send_start_us;
	mllpi_latency_add(&p->lat, lat);
	c->proven = true;
	c->r2.prior += c->r2.owed; /* earlier attempts answered later */
	c->r2.owed = 0;
	c->r2.last_pending = true;
	c->r2.last_hl7 = f->hl7;
	c->r2.last_start_us = c->send_start_us;
	c->r2.last_id_len = 0;
	if (f->hl7 && f->control_id_len <= sizeof(c->r2.last_id)) {
		memcpy(c->r2.last_id, f->control_id, f->control_id_len);
		c->r2.last_id_len = f->control_id_len;
	}
	bool orphan = f->completed;
	if (!f->completed) {
		struct mllp_result *r = &f->result;
		r->status = 0;
		r->written = true;
		r->latency_us = lat;
		f->reply_inline[0] = R2_ACK;
		r->reply = f->reply_inline;
		r->reply_len = 1;
		mllpi_publish(f);
	}
	mllpi_emit(c, MLLP_EV_COMMIT_ACK, NULL, lat, 0, false, 0, orphan);
	mllpi_conn_finish(c);
}

/* A commit answer with nothing to answer: unsolicited. */
static void unsolicited(struct mllpi_conn *c, unsigned char b)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_UNSOLICITED,
		       "%s received while no message awaits one",
		       b == R2_ACK ? "commit acknowledgement"
				   : "negative commit acknowledgement (NAK)");
	mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false, 0, true);
	if (ep->opts.close_on_recv_error && !c->cur) {
		mllpi_pool_log(ep->pool, MLLP_LOG_ERROR,
			       "Error receiving from %s:%u => %s", ep->host,
			       ep->port, e.message);
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
	}
}

/* A commit answer (b: ACK or NAK). pre: it came before the latest
 * attempt was handed to the kernel. */
static void on_answer(struct mllpi_conn *c, unsigned char b, bool pre)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->r2.prior > 0) {
		/* A late answer to an attempt of a message already done. */
		c->r2.prior--;
		STAT_ADD(c->ep, st_stale, 1);
		mllpi_emit(c, MLLP_EV_STALE_REPLY, NULL, 0, 0, false, 0, true);
		return;
	}
	bool fresh = pre || c->send_turn == p->loop.turn;
	uint32_t answerable = c->r2.owed - (fresh && c->r2.owed > 0 ? 1 : 0);
	if (!c->cur || answerable == 0) {
		unsolicited(c, b);
		return;
	}
	if (!c->send_done) {
		/* Answered before our send completion came back: kept, and
		 * taken again once it has (mllpi_conn_on_sent). */
		c->cur->reply_inline[0] = b;
		c->cur->result.reply = c->cur->reply_inline;
		c->cur->result.reply_len = 1;
		c->early_reply = true;
		return;
	}
	c->r2.owed--;
	if (b == R2_ACK) {
		committed(c);
		return;
	}
	if (c->r2.owed > 0) {
		/* A later attempt is on its way: its answer decides. */
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_NAK,
			       "negative commit acknowledgement (NAK) of an "
			       "earlier attempt; a later one is pending");
		mllpi_emit(c, MLLP_EV_COMMIT_NAK, &e, 0, 0, false, 0,
			   c->cur->completed);
		return;
	}
	attempt_failed(c, false);
}

/* A content frame: the HL7 ACK of the last committed message, a copy of
 * one, or nothing this connection expects. */
static void on_content(struct mllpi_conn *c, const unsigned char *data,
		       size_t len)
{
	struct mllp_pool *p = c->ep->pool;
	struct mllpi_r2 *r = &c->r2;
	uint64_t lat = p->loop.now_us - r->last_start_us;
	if (r->last_pending && !r->last_hl7) {
		r->last_pending = false;
		STAT_ADD(c->ep, st_raw, 1);
		mllpi_emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, false, 0,
			   true);
		return;
	}
	struct mllp_ack ack;
	memset(&ack, 0, sizeof(ack));
	enum mllp_verdict v = MLLP_BAD_MESSAGE_CONTROL_ID;
	if (r->last_pending && r->last_id_len > 0)
		v = mllp_ack_verify_id(r->last_id, r->last_id_len, data, len,
				       &ack, NULL, 0);
	else
		(void)mllp_ack_verify_id("", 0, data, len, &ack, NULL, 0);
	if (v != MLLP_BAD_MESSAGE_CONTROL_ID) {
		r->last_pending = false;
		mllpi_stale_note(c, r->last_id, r->last_id_len);
		STAT_ADD(c->ep, st_acked[v], 1);
		mllpi_emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, true, v,
			   true);
		return;
	}
	if (mllpi_stale_drop(c, &ack.control_id, data, len))
		return;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_UNSOLICITED,
		       "reply matches no committed message; dropped");
	mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, true, v, true);
}

void mllpi_r2_frame(struct mllpi_conn *c, const unsigned char *data, size_t len,
		    bool pre)
{
	if (len == 1 && (data[0] == R2_ACK || data[0] == R2_NAK))
		on_answer(c, data[0], pre);
	else
		on_content(c, data, len);
}

void mllpi_r2_timeout(struct mllpi_conn *c)
{
	if (!c->cur) {
		mllpi_conn_finish(c);
		return;
	}
	attempt_failed(c, true);
}

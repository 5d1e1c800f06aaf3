/* Replies: bytes received on a connection are decoded into frames; a
 * frame completes the message in flight, or is reported as unsolicited,
 * stale or invalid. */
#include "conn.h"
#include "window.h"

#include <string.h>

int mllpi_store_reply(struct mllp_future *f, const unsigned char *data,
		      size_t len)
{
	if (data == f->result.reply && len == f->result.reply_len)
		return 0; /* kept already (early reply, see
			     mllpi_conn_handle_reply) */
	unsigned char *dst = f->reply_inline;
	if (len > sizeof(f->reply_inline)) {
		dst = f->alloc.alloc(f->alloc.ctx, len);
		if (!dst)
			return MLLP_ERR_NO_MEMORY;
		f->reply_heap = dst;
		f->reply_heap_size = len;
	}
	memcpy(dst, data, len);
	f->result.reply = dst;
	f->result.reply_len = len;
	return 0;
}

/* A receive error; note (may be NULL) is added to the reason's text. */
static void recv_error_note(struct mllpi_conn *c, int reason, const char *note,
			    bool telemetry_ev, bool may_close)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e;
	if (note)
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason, "%s %s",
			       mllp_strerror(reason), note);
	else
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason, NULL);
	mllpi_pool_log(p, MLLP_LOG_ERROR, "Error receiving from %s:%u => %s",
		       ep->host, ep->port, e.message);
	if (telemetry_ev)
		mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e,
			   mllpi_now_us() - c->send_start_us, 0, false, 0,
			   c->cur ? c->cur->completed : true);
	if (may_close && ep->opts.close_on_recv_error) {
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		return;
	}
	/* Keep the socket: fail the message, drop buffered bytes. */
	mllp_decoder_reset(&c->dec);
	mllpi_presend_forget(c);
	if (c->cur) {
		mllpi_fail_future_err(c->cur, &e, MLLP_CTX_RECEIVE,
				      c->send_done,
				      c->sent > 0 || c->send_in_flight);
		mllpi_conn_finish(c);
	}
}

static void recv_error(struct mllpi_conn *c, int reason, bool telemetry_ev,
		       bool may_close)
{
	recv_error_note(c, reason, NULL, telemetry_ev, may_close);
}

/* A reply that starts as a TLS record does (alert 0x15 or handshake 0x16,
 * then version major 3): a plaintext client talking to a TLS port. */
static const char *tls_reply_note(const unsigned char *data, size_t len)
{
	if (len >= 2 && (data[0] == 0x15 || data[0] == 0x16) && data[1] == 0x03)
		return "(the peer answered with TLS: is it a TLS port?)";
	return NULL;
}

/* With close_on_recv_error false, replies are correlated by MSA-2: a
 * frame whose MSA-2 is not the MSH-10 of the message in flight is a late
 * reply to an earlier message (after its timeout): dropped and reported.
 * Note: in this mode a receiver that answers with a wrong MSA-2 makes the
 * message end in a reply timeout instead of bad_message_control_id. */
static bool stale_reply(struct mllpi_conn *c, const unsigned char *data,
			size_t len)
{
	struct mllp_future *f = c->cur;
	if (!f->hl7 || c->ep->opts.close_on_recv_error)
		return false;
	struct mllp_ack ack;
	enum mllp_verdict v = mllp_ack_verify_id(
	    f->control_id, f->control_id_len, data, len, &ack, NULL, 0);
	if (v != MLLP_BAD_MESSAGE_CONTROL_ID)
		return false;
	if (mllpi_stale_drop(c, &ack.control_id, data, len))
		return true;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_UNSOLICITED,
		       "reply does not match the message in flight; dropped");
	mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, true, v, true);
	return true;
}

/* mllpi_reply_publish, inlined into the one-in-flight path. */
static inline __attribute__((always_inline)) void
reply_publish(struct mllpi_conn *c, struct mllp_future *f,
	      const unsigned char *data, size_t len, enum mllp_verdict v,
	      struct mllp_ack *ack, const char *why, uint64_t lat)
{
	struct mllp_pool *p = c->ep->pool;
	mllpi_latency_add(&p->lat, lat);
	c->proven = true;
	if (!f->hl7) {
		STAT_ADD(c->ep, st_raw, 1);
		if (!f->completed) {
			f->result.status = 0;
			f->result.written = true;
			f->result.latency_us = lat;
			if (mllpi_store_reply(f, data, len) != 0) {
				mllpi_fail_future(f, MLLP_CTX_RECEIVE,
						  MLLP_ERR_NO_MEMORY, NULL,
						  true, true);
			} else {
				mllpi_publish(f);
			}
		}
		mllpi_emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, false, 0,
			   f->completed && f->async);
		return;
	}
	STAT_ADD(c->ep, st_acked[v], 1);
	if (!f->completed) {
		struct mllp_result *r = &f->result;
		r->status = 0;
		r->written = true;
		r->latency_us = lat;
		r->has_verdict = true;
		r->verdict = v;
		/* the text only: the rest is zero already (op_send,
		 * pool_manager.c)
		 */
		memcpy(r->why, why, strnlen(why, sizeof(r->why) - 1));
		if (mllpi_store_reply(f, data, len) != 0) {
			mllpi_fail_future(f, MLLP_CTX_RECEIVE,
					  MLLP_ERR_NO_MEMORY, NULL, true, true);
		} else {
			/* Re-base the ack views onto the future's copy. */
			const char *base = (const char *)data;
			const char *nb = (const char *)r->reply;
			struct mllp_str *views[] = {
			    &ack->code, &ack->control_id, &ack->text, &ack->err,
			    &ack->message};
			for (size_t i = 0; i < 5; i++) {
				if (views[i]->ptr && views[i]->ptr >= base &&
				    views[i]->ptr <= base + len)
					views[i]->ptr =
					    nb + (views[i]->ptr - base);
				else if (views[i]->len == 0)
					views[i]->ptr = NULL;
			}
			r->ack = *ack;
			mllpi_publish(f);
		}
	}
	mllpi_emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, true, v,
		   f->completed && (f->async || f->result.status != 0));
}

void mllpi_reply_publish(struct mllpi_conn *c, struct mllp_future *f,
			 const unsigned char *data, size_t len,
			 enum mllp_verdict v, struct mllp_ack *ack,
			 const char *why, uint64_t lat)
{
	reply_publish(c, f, data, len, v, ack, why, lat);
}

/* A stale frame kept in f as its early reply is not its reply (a result
 * published already is left as it is: its owner may be reading it). */
static void forget_kept(struct mllp_future *f, const unsigned char *data)
{
	if (data != f->result.reply || f->completed)
		return;
	if (f->reply_heap)
		f->alloc.free(f->alloc.ctx, f->reply_heap, f->reply_heap_size);
	f->reply_heap = NULL;
	f->reply_heap_size = 0;
	f->result.reply = NULL;
	f->result.reply_len = 0;
}

/* A complete reply frame for c->cur. */
bool mllpi_conn_handle_reply(struct mllpi_conn *c, const unsigned char *data,
			     size_t len)
{
	struct mllp_future *f = c->cur;
	struct mllp_pool *p = c->ep->pool;
	if (c->ep->opts.mllp_release == 2) { /* an early commit answer */
		mllpi_r2_frame(c, data, len, false);
		return true;
	}
	/* A raw reply names no message, and one that comes before the send
	 * completed is kept unjudged: neither may be an answer owed to an
	 * MSH-15 NE / ER message written before (dropped now; otherwise
	 * f's own reply, coming next, would find the place taken). */
	bool early = !c->send_done && !f->completed;
	if ((!f->hl7 || early) && mllpi_stale_late_frame(c, data, len, f)) {
		forget_kept(f, data);
		return false;
	}
	if (early) {
		/* The receiver answered before our last byte was written.
		 * As in the reference (which writes, then reads), the reply
		 * is taken once the send has completed: kept until then, and
		 * dropped with the message if the send fails. So `written`
		 * and the sent counter always agree. */
		if (mllpi_store_reply(f, data, len) != 0) {
			mllpi_fail_future(f, MLLP_CTX_RECEIVE,
					  MLLP_ERR_NO_MEMORY, NULL, false,
					  true);
			mllpi_conn_finish(c);
			return true;
		}
		c->early_reply = true;
		return true;
	}
	struct mllp_ack ack;
	char why[MLLP_RESULT_WHY_MAX];
	enum mllp_verdict v = MLLP_APPLICATION_ACCEPT;
	if (f->hl7) {
		why[0] = 0;
		v = mllp_ack_verify_id(f->control_id, f->control_id_len, data,
				       len, &ack, why, sizeof(why));
		/* An ACK this connection took already, resent: not this
		 * message's answer; it keeps waiting. */
		if (v == MLLP_BAD_MESSAGE_CONTROL_ID &&
		    mllpi_stale_drop(c, &ack.control_id, data, len)) {
			forget_kept(f, data);
			return false;
		}
		mllpi_stale_note(c, f->control_id, f->control_id_len);
	}
	uint64_t lat = p->loop.now_us - c->send_start_us;
	reply_publish(c, f, data, len, v, &ack, why, lat);
	mllpi_conn_finish(c);
	return true;
}

void mllpi_conn_on_recv_data(struct mllpi_conn *c, const unsigned char *data,
			     size_t len)
{
	struct mllpi_endpoint *ep = c->ep;
	if (c->win) {
		mllpi_win_on_recv(c, data, len);
		return;
	}
	/* The first `early` bytes arrived before the message in flight was
	 * handed to the kernel: no frame holding one can be its reply. */
	size_t early = mllpi_presend_take(c, len);
	size_t off = 0;
	while (len > 0 && c->sock) {
		size_t used = 0;
		struct mllp_decoded ev;
		if (off < early)
			c->presend_taint = true;
		int rc = mllp_decoder_feed(&c->dec, data, len, &used, &ev);
		if (rc < 0 && !ep->opts.close_on_recv_error) {
			/* An oversize reply (or no memory for it) leaves the
			 * rest of the frame in the stream: its tail would be
			 * taken for junk before the next reply. No way to
			 * resynchronise: close whatever close_on_recv_error. */
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE, rc, NULL);
			mllpi_pool_log(ep->pool, MLLP_LOG_ERROR,
				       "Error receiving from %s:%u => %s",
				       ep->host, ep->port, e.message);
			mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e,
				   mllpi_now_us() - c->send_start_us, 0, false,
				   0, c->cur ? c->cur->completed : true);
			mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true,
					 true);
			return;
		}
		if (rc < 0) {
			recv_error(c, rc, true, true);
			return;
		}
		data += used;
		len -= used;
		off += used;
		if (ev.kind == MLLP_DECODE_NEED_MORE)
			break;
		bool pre = c->presend_taint;
		c->presend_taint = false;
		if (ev.kind == MLLP_DECODE_JUNK) {
			if (c->cur && !pre) {
				/* The reply does not start with SB. */
				recv_error_note(c, MLLP_ERR_INVALID_HEADER,
						tls_reply_note(ev.data, ev.len),
						true, true);
				return;
			}
			/* Unsolicited bytes while idle: reported (orphan
			 * invalid_response), then closed or dropped. */
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE,
				       MLLP_ERR_UNSOLICITED, NULL);
			mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false,
				   0, true);
			if (ep->opts.close_on_recv_error) {
				mllpi_pool_log(
				    ep->pool, MLLP_LOG_ERROR,
				    "Error receiving from %s:%u => %s",
				    ep->host, ep->port, e.message);
				mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e,
						 true, true);
				return;
			}
			continue;
		}
		if (ep->opts.mllp_release == 2) { /* conn_r2.c: every frame */
			mllpi_r2_frame(c, ev.data, ev.len, pre);
			continue;
		}
		/* A complete frame: unsolicited when no message is in flight,
		 * the one in flight has its reply already, or the frame came
		 * before the message was sent. */
		if (!c->cur || pre || c->early_reply || c->reply_done) {
			if (mllpi_stale_frame(c, ev.data, ev.len))
				continue;
			struct mllp_error e;
			if (c->cur && pre)
				mllp_error_set(&e, MLLP_CTX_RECEIVE,
					       MLLP_ERR_UNSOLICITED,
					       "reply received before the "
					       "message was sent");
			else
				mllp_error_set(&e, MLLP_CTX_RECEIVE,
					       MLLP_ERR_UNSOLICITED, NULL);
			mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false,
				   0, true);
			if (ep->opts.close_on_recv_error) {
				mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e,
						 true, true);
				return;
			}
			continue;
		}
		if (stale_reply(c, ev.data, ev.len))
			continue;
		if (len > 0) {
			/* Resent ACKs come several to a packet: one of them
			 * is not data after the trailer. */
			if (mllpi_stale_frame(c, ev.data, ev.len))
				continue;
			/* Bytes after the trailer in the same packet. */
			recv_error(c, MLLP_ERR_DATA_AFTER_TRAILER, true, true);
			return;
		}
		mllpi_conn_handle_reply(c, ev.data, ev.len);
	}
}

/* Pipelining, the receiving side: each reply frame on a window connection
 * is matched to its message by MSA-2 = MSH-10 (window.h), in any order.
 *
 * The oldest message is tried first (one parse when replies come in
 * order); a reply for another message in the window is parsed again
 * against it. A raw payload has no id: it is in the window alone, or with
 * replies_in_order the reply goes to the oldest message. A reply whose
 * MSA-2 a message of this socket was answered with already is a stale
 * duplicate (conn_stale.c): dropped; so is one owed to a message whose
 * MSH-15 (NE, ER) asked for no accept ACK and which left the window when
 * written (a late accept ACK), even with a raw payload at the head. With
 * one message in flight, written,
 * a reply without an MSA-2 is that message's (invalid_ack_message), as on
 * a connection without a window: it names no other message. A reply
 * naming an id not in flight (not even with one message in flight: it
 * may be another message's), a reply without MSA-2 while several are in
 * flight, and bytes that are not a frame are an error: with
 * close_on_recv_error the connection closes and fails every message in
 * flight (conn.c); without, the reply is dropped and reported. A reply is
 * never credited to a message it does not name.
 *
 * The probe of max_inflight MLLP_INFLIGHT_AUTO is judged here too. */
#include "conn.h"
#include "endpoint.h"
#include "window.h"

#include <string.h>

static bool keyed(const struct mllp_future *f)
{
	return f->hl7 && f->control_id_len > 0;
}

/* ---- the probe ------------------------------------------------------ */

uint32_t mllpi_win_limit(struct mllpi_conn *c)
{
	const struct mllpi_window *w = c->win;
	switch (c->ep->probe) {
	case PROBE_RUNNING:
		return w->probing ? 2 : 1;
	case PROBE_PASSED:
		return MLLP_INFLIGHT_AUTO_WINDOW;
	case PROBE_WAIT:
	case PROBE_FAILED:
		return 1;
	default:
		return w->max;
	}
}

static void probe_passed(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	ep->probe = PROBE_PASSED;
	c->win->probing = false;
	mllpi_pool_log(
	    ep->pool, MLLP_LOG_INFO,
	    "%s:%u answered two pipelined messages in order of their "
	    "ids: up to %u in flight per connection",
	    ep->host, ep->port, MLLP_INFLIGHT_AUTO_WINDOW);
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_conn *o = &ep->conns[i];
		o->win->max = MLLP_INFLIGHT_AUTO_WINDOW;
		if (o != c)
			mllpi_win_fill(o);
	}
}

void mllpi_win_probe_result(struct mllpi_conn *c, struct mllp_future *f,
			    bool ok, const char *why)
{
	struct mllpi_window *w = c->win;
	struct mllpi_endpoint *ep = c->ep;
	if (!w->probing || ep->probe != PROBE_RUNNING)
		return;
	if (f)
		f->w_probe = false;
	if (ok) {
		if (++w->probe_ok == 2) {
			probe_passed(c);
		} else if (f && w->n == 1) {
			/* it was alone: no pair yet, start again */
			w->probe_ok = 0;
		}
		return;
	}
	ep->probe = PROBE_FAILED;
	w->probing = false;
	mllpi_pool_log(ep->pool, MLLP_LOG_WARNING,
		       "%s:%u did not pass the pipelining probe (%s): one "
		       "message in flight per connection from now on",
		       ep->host, ep->port, why ? why : "no reply");
}

/* A message joins a probing window: the first two keyed ones together are
 * the probe. */
static void probe_join(struct mllpi_conn *c)
{
	struct mllpi_window *w = c->win;
	struct mllp_future *f = w->tail;
	if (!w->probing || !keyed(f) || f->no_accept)
		return; /* no reply to judge */
	uint32_t n = 0;
	for (struct mllp_future *g = w->head; g; g = g->qnext)
		n += g->w_probe;
	if (n < 2)
		f->w_probe = true;
}

/* ---- errors --------------------------------------------------------- */

/* A frame or bytes that match nothing (reason, note may be NULL): logged
 * and reported; true when the connection closed. force: close whatever
 * close_on_recv_error (the stream cannot be resynchronised). */
static bool win_error(struct mllpi_conn *c, int reason, const char *note,
		      bool force)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_error e;
	mllpi_error_note(&e, MLLP_CTX_RECEIVE, reason, note);
	mllpi_emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false, 0,
		   c->win->n == 0);
	if (!force && !ep->opts.close_on_recv_error)
		return false;
	mllpi_pool_log(ep->pool, MLLP_LOG_ERROR,
		       "Error receiving from %s:%u => %s", ep->host, ep->port,
		       e.message);
	if (c->win->probing)
		mllpi_win_probe_result(c, NULL, false, e.message);
	mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
	return true;
}

/* ---- matching ------------------------------------------------------- */

static struct mllp_future *find_id(const struct mllpi_window *w,
				   const struct mllp_str *id)
{
	if (!id->ptr || id->len == 0)
		return NULL;
	for (struct mllp_future *g = w->head; g; g = g->qnext)
		if (keyed(g) && g->control_id_len == id->len &&
		    memcmp(g->control_id, id->ptr, id->len) == 0)
			return g;
	return NULL;
}

/* f's reply, f written: completed, and f leaves the window. */
static void complete(struct mllpi_conn *c, struct mllp_future *f,
		     const unsigned char *data, size_t len, enum mllp_verdict v,
		     struct mllp_ack *ack, const char *why)
{
	struct mllp_pool *p = c->ep->pool;
	if (keyed(f))
		mllpi_stale_note(c, f->control_id, f->control_id_len);
	c->proven = true;
	if (f->w_probe)
		mllpi_win_probe_result(c, f,
				       v != MLLP_BAD_MESSAGE_CONTROL_ID &&
					   v != MLLP_INVALID_ACK_MESSAGE,
				       why);
	mllpi_reply_publish(c, f, data, len, v, ack, why,
			    p->loop.now_us - f->w_start_us);
	mllpi_win_done(c, f);
}

/* f's reply came before f was written: kept until it is. */
static void keep_early(struct mllpi_conn *c, struct mllp_future *f,
		       const unsigned char *data, size_t len)
{
	if (mllpi_store_reply(f, data, len) != 0) {
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_NO_MEMORY, NULL);
		mllpi_conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		return;
	}
	f->w_early = true;
}

void mllpi_win_take_early(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllp_ack ack;
	char why[MLLP_RESULT_WHY_MAX];
	enum mllp_verdict v = MLLP_APPLICATION_ACCEPT;
	f->w_early = false;
	memset(&ack, 0, sizeof(ack));
	why[0] = 0;
	if (f->hl7)
		v = mllp_ack_verify_id(f->control_id, f->control_id_len,
				       f->result.reply, f->result.reply_len,
				       &ack, why, sizeof(why));
	complete(c, f, f->result.reply, f->result.reply_len, v, &ack, why);
}

static void on_frame(struct mllpi_conn *c, const unsigned char *data,
		     size_t len)
{
	struct mllpi_window *w = c->win;
	struct mllp_future *head = w->head;
	struct mllp_ack ack;
	char why[MLLP_RESULT_WHY_MAX];
	enum mllp_verdict v = MLLP_APPLICATION_ACCEPT;
	memset(&ack, 0, sizeof(ack));
	why[0] = 0;
	if (!head) {
		if (!mllpi_stale_frame(c, data, len))
			(void)win_error(c, MLLP_ERR_UNSOLICITED, NULL, false);
		return;
	}
	struct mllp_future *f = head;
	if (keyed(head)) {
		v = mllp_ack_verify_id(head->control_id, head->control_id_len,
				       data, len, &ack, why, sizeof(why));
		bool alone = w->n == 1 && head->w_state == W_WRITTEN;
		if (v == MLLP_BAD_MESSAGE_CONTROL_ID) {
			f = find_id(w, &ack.control_id);
			if (f) {
				why[0] = 0;
				v = mllp_ack_verify_id(
				    f->control_id, f->control_id_len, data, len,
				    &ack, why, sizeof(why));
			} else if (mllpi_stale_drop(c, &ack.control_id, data,
						    len)) {
				return;
			} else {
				(void)win_error(c, MLLP_ERR_UNSOLICITED,
						"reply matches no message in "
						"flight",
						false);
				return;
			}
		} else if (v == MLLP_INVALID_ACK_MESSAGE && !alone) {
			(void)win_error(c, MLLP_ERR_UNSOLICITED, why, false);
			return;
		}
	} else if (head->hl7) {
		v = mllp_ack_verify_id(head->control_id, head->control_id_len,
				       data, len, &ack, why, sizeof(why));
	} else if (mllpi_stale_late_frame(c, data, len, NULL)) {
		return; /* owed to an MSH-15 NE / ER message, not the raw one */
	}
	if (f->w_early) {
		/* a second reply for it before it was written */
		(void)win_error(c, MLLP_ERR_UNSOLICITED,
				"two replies for one message", false);
		return;
	}
	if (f->w_state != W_WRITTEN) {
		keep_early(c, f, data, len);
		return;
	}
	complete(c, f, data, len, v, &ack, why);
}

void mllpi_win_on_recv(struct mllpi_conn *c, const unsigned char *data,
		       size_t len)
{
	struct mllpi_sock *s = c->sock;
	while (len > 0 && c->sock == s) {
		size_t used = 0;
		struct mllp_decoded ev;
		int rc = mllp_decoder_feed(&c->dec, data, len, &used, &ev);
		if (rc < 0) {
			/* an oversize reply: its tail would be taken for junk
			 */
			(void)win_error(c, rc, NULL, true);
			return;
		}
		data += used;
		len -= used;
		if (ev.kind == MLLP_DECODE_NEED_MORE)
			break;
		if (ev.kind == MLLP_DECODE_JUNK) {
			if (win_error(c,
				      c->win->n ? MLLP_ERR_INVALID_HEADER
						: MLLP_ERR_UNSOLICITED,
				      NULL, false))
				return;
			continue;
		}
		on_frame(c, ev.data, ev.len);
	}
}

/* Called by mllpi_win_fill (conn_window.c) through the limit: an auto
 * endpoint's first connection up starts the probe. */
void mllpi_win_probe_start(struct mllpi_conn *c)
{
	if (c->ep->probe != PROBE_WAIT)
		return;
	c->ep->probe = PROBE_RUNNING;
	c->win->probing = true;
	c->win->probe_ok = 0;
}

void mllpi_win_probe_joined(struct mllpi_conn *c)
{
	probe_join(c);
}

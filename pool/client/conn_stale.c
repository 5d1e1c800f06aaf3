/* Stale duplicate replies. Some receivers resend earlier ACKs on a kept
 * connection: node-hl7-server 2.5 answers message k with the ACKs of
 * messages 1..k. Each connection remembers the control ids of the last
 * MLLPI_STALE_IDS messages whose reply it took (64-bit hashes, in a ring
 * allocated at the first one: 2 KiB a connection). A reply frame whose
 * MSA-2 is one of them is a stale duplicate: dropped, counted
 * (stale_replies, telemetry stale_reply), logged once per connection,
 * and the message in flight keeps waiting for its own reply. A reply that
 * matches neither the message in flight nor a remembered one is handled
 * as before. The ring is emptied when a new socket comes up: resent ACKs
 * never cross connections.
 *
 * The same ring remembers the messages whose MSH-15 (NE, ER) asked for no
 * accept ACK: they completed when written (mllpi_accept_written). An
 * answer that still comes for one (a CE / CR for ER, or any ACK from a
 * receiver in original mode) is a late accept ACK: dropped the same way,
 * counted (late_accept_acks), reported (telemetry late_accept_ack, with
 * its verdict) and handed to the message's application stage
 * (mllpi_app_late). */
#include "app_ack.h"
#include "conn.h"

#include <string.h>

struct mllpi_stale {
	uint64_t h[MLLPI_STALE_IDS];
	uint32_t n;	  /* entries used, up to MLLPI_STALE_IDS */
	uint32_t next;	  /* where the next one goes */
	bool logged;	  /* this socket's one log line is out */
	bool late_logged; /* ... and its one line of a late accept ACK */
	/* bit i: h[i] is a message that asked for no accept ACK; nlate:
	 * how many bits are set */
	uint64_t late[MLLPI_STALE_IDS / 64];
	uint32_t nlate;
};

/* FNV-1a, 64-bit: ids are short (MSH-10, 20 characters at most in
 * practice); a collision between two of a connection's last 256 ids is
 * what it would take to drop a real reply. */
static uint64_t id_hash(const char *id, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)id[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void note(struct mllpi_conn *c, const char *id, size_t len, bool late)
{
	struct mllpi_stale *s = c->stale;
	if (!s) {
		struct mllp_allocator *a = &c->ep->pool->alloc;
		s = a->alloc(a->ctx, sizeof(*s));
		if (!s)
			return; /* not remembered: duplicates then close */
		memset(s, 0, sizeof(*s));
		c->stale = s;
	}
	uint32_t i = s->next;
	uint64_t bit = (uint64_t)1 << (i % 64);
	if (s->late[i / 64] & bit)
		s->nlate--; /* overwritten */
	s->h[i] = id_hash(id, len);
	if (late) {
		s->late[i / 64] |= bit;
		s->nlate++;
	} else {
		s->late[i / 64] &= ~bit;
	}
	s->next = (i + 1) % MLLPI_STALE_IDS;
	if (s->n < MLLPI_STALE_IDS)
		s->n++;
}

void mllpi_stale_note(struct mllpi_conn *c, const char *id, size_t len)
{
	note(c, id, len, false);
}

void mllpi_stale_reset(struct mllpi_conn *c)
{
	if (c->stale) {
		c->stale->n = 0;
		c->stale->next = 0;
		c->stale->logged = false;
		c->stale->late_logged = false;
		c->stale->nlate = 0;
		memset(c->stale->late, 0, sizeof(c->stale->late));
	}
}

void mllpi_stale_free(struct mllpi_conn *c, const struct mllp_allocator *a)
{
	if (c->stale)
		a->free(a->ctx, c->stale, sizeof(*c->stale));
	c->stale = NULL;
}

/* The ring entry of id (the newest when it is there twice), or -1. */
static int seen(const struct mllpi_stale *s, const struct mllp_str *id)
{
	if (!s || s->n == 0 || id->len == 0)
		return -1;
	uint64_t h = id_hash(id->ptr, id->len);
	for (uint32_t k = 1; k <= s->n; k++) {
		uint32_t i = (s->next + MLLPI_STALE_IDS - k) % MLLPI_STALE_IDS;
		if (s->h[i] == h)
			return (int)i;
	}
	return -1;
}

/* An answer (data[0..len), MSA-2 msa2) to a message that asked for no
 * accept ACK and completed when written. */
static void late_accept(struct mllpi_conn *c, const struct mllp_str *msa2,
			const unsigned char *data, size_t len)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_ack ack;
	memset(&ack, 0, sizeof(ack));
	enum mllp_verdict v =
	    mllp_ack_verify_id(msa2->ptr, msa2->len, data, len, &ack, NULL, 0);
	STAT_ADD(ep, st_late_accept, 1);
	/* A refusal is news for the sender: each is logged. An accept (or
	 * an original-mode ACK) once per connection. */
	bool refused = v != MLLP_APPLICATION_ACCEPT;
	if (refused || !c->stale->late_logged) {
		c->stale->late_logged |= !refused;
		int n = msa2->len > 64 ? 64 : (int)msa2->len;
		int k = ack.code.len > 8 ? 8 : (int)ack.code.len;
		mllpi_pool_log(ep->pool,
			       refused ? MLLP_LOG_WARNING : MLLP_LOG_INFO,
			       "Late accept acknowledgement from %s:%u: %.*s "
			       "for message '%.*s', which asked for none on "
			       "success (MSH-15) and completed when written; "
			       "dropped (counted in late_accept_acks)",
			       ep->host, ep->port, k,
			       ack.code.ptr ? ack.code.ptr : "", n, msa2->ptr);
	}
	mllpi_emit(c, MLLP_EV_LATE_ACCEPT_ACK, NULL, 0, 0, true, v, true);
	mllpi_app_late(ep->pool, ep->id, &ack, v, data, len);
}

bool mllpi_stale_drop(struct mllpi_conn *c, const struct mllp_str *msa2,
		      const unsigned char *data, size_t len)
{
	int i = seen(c->stale, msa2);
	if (i < 0)
		return false;
	if (c->stale->late[i / 64] & ((uint64_t)1 << (i % 64))) {
		late_accept(c, msa2, data, len);
		return true;
	}
	struct mllpi_endpoint *ep = c->ep;
	STAT_ADD(ep, st_stale, 1);
	if (!c->stale->logged) {
		c->stale->logged = true;
		int n = msa2->len > 64 ? 64 : (int)msa2->len;
		mllpi_pool_log(ep->pool, MLLP_LOG_WARNING,
			       "Stale reply from %s:%u: the ACK of message "
			       "'%.*s', answered already on this connection, "
			       "came again; dropped (logged once per "
			       "connection, counted in stale_replies)",
			       ep->host, ep->port, n, msa2->ptr);
	}
	mllpi_emit(c, MLLP_EV_STALE_REPLY, NULL, 0, 0, false, 0, true);
	return true;
}

bool mllpi_stale_frame(struct mllpi_conn *c, const unsigned char *data,
		       size_t len)
{
	if (!c->stale || c->stale->n == 0)
		return false;
	struct mllp_ack ack;
	/* Any expected id: only the views are wanted. */
	memset(&ack, 0, sizeof(ack));
	(void)mllp_ack_verify_id("", 0, data, len, &ack, NULL, 0);
	return mllpi_stale_drop(c, &ack.control_id, data, len);
}

bool mllpi_stale_late_frame(struct mllpi_conn *c, const unsigned char *data,
			    size_t len, const struct mllp_future *f)
{
	if (!c->stale || c->stale->nlate == 0)
		return false;
	struct mllp_ack ack;
	memset(&ack, 0, sizeof(ack));
	(void)mllp_ack_verify_id("", 0, data, len, &ack, NULL, 0);
	if (f && f->hl7 && ack.control_id.len == f->control_id_len &&
	    memcmp(ack.control_id.ptr, f->control_id, f->control_id_len) == 0)
		return false; /* f's own reply */
	int i = seen(c->stale, &ack.control_id);
	if (i < 0 || !(c->stale->late[i / 64] & ((uint64_t)1 << (i % 64))))
		return false;
	late_accept(c, &ack.control_id, data, len);
	return true;
}

void mllpi_accept_written(struct mllpi_conn *c, struct mllp_future *f,
			  bool early)
{
	note(c, f->control_id, f->control_id_len, true);
	const unsigned char *kept = f->result.reply;
	size_t kept_len = f->result.reply_len;
	if (!f->completed) {
		/* Nothing will come: done, with no verdict and no reply. */
		f->result.status = 0;
		f->result.written = true;
		f->result.reply = NULL;
		f->result.reply_len = 0;
		mllpi_publish(f);
	}
	/* An answer that came before the last byte was written (kept in f,
	 * which the connection still holds): late as any other. */
	if (early && kept)
		(void)mllpi_stale_frame(c, kept, kept_len);
}

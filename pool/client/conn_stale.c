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
 * never cross connections. */
#include "conn.h"

#include <string.h>

struct mllpi_stale {
	uint64_t h[MLLPI_STALE_IDS];
	uint32_t n;    /* entries used, up to MLLPI_STALE_IDS */
	uint32_t next; /* where the next one goes */
	bool logged;   /* this socket's one log line is out */
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

void mllpi_stale_note(struct mllpi_conn *c, const char *id, size_t len)
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
	s->h[s->next] = id_hash(id, len);
	s->next = (s->next + 1) % MLLPI_STALE_IDS;
	if (s->n < MLLPI_STALE_IDS)
		s->n++;
}

void mllpi_stale_reset(struct mllpi_conn *c)
{
	if (c->stale) {
		c->stale->n = 0;
		c->stale->next = 0;
		c->stale->logged = false;
	}
}

void mllpi_stale_free(struct mllpi_conn *c, const struct mllp_allocator *a)
{
	if (c->stale)
		a->free(a->ctx, c->stale, sizeof(*c->stale));
	c->stale = NULL;
}

static bool seen(const struct mllpi_stale *s, const struct mllp_str *id)
{
	if (!s || s->n == 0 || id->len == 0)
		return false;
	uint64_t h = id_hash(id->ptr, id->len);
	for (uint32_t i = 0; i < s->n; i++)
		if (s->h[i] == h)
			return true;
	return false;
}

bool mllpi_stale_drop(struct mllpi_conn *c, const struct mllp_str *msa2)
{
	if (!seen(c->stale, msa2))
		return false;
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
	return mllpi_stale_drop(c, &ack.control_id);
}

/* mllp-bridge --metrics: the bridge's counters as Prometheus text, served
 * by metrics_http.c (libmicrohttpd, its own thread). The page holds the
 * bridge's families (mllp_bridge_in_* or mllp_bridge_out_*, the counters
 * printed on exit), the NATS connection's state, then the receiver's (in)
 * or the pool's (out) families as the library renders them
 * (mllp_metrics_render_*; their names never start with mllp_bridge_). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics_http.h"
#include "mllp-bridge.h"

struct bridge_metrics {
	struct tool_metrics_http *h;
	bool out;
	struct bridge_in_counters in;
	struct bridge_out_counters oc;
	const struct bridge_nats *n;
	const struct mllp_receiver *recv;
	const struct mllp_pool *pool;
};

/* A page under construction, snprintf-like: len counts everything, the
 * text is written only while it fits. */
struct page {
	char *buf;
	size_t cap, len;
};

static void add(struct page *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add(struct page *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool room = p->len < p->cap;
	int n = vsnprintf(room ? p->buf + p->len : NULL,
			  room ? p->cap - p->len : 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		p->len += (size_t)n;
}

/* One family of one sample. */
static void family(struct page *p, const char *name, const char *type,
		   const char *help, uint64_t v)
{
	add(p, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type,
	    name, (unsigned long long)v);
}

static void counter(struct page *p, const char *name, const char *help,
		    const _Atomic uint64_t *v)
{
	family(p, name, "counter", help,
	       atomic_load_explicit(v, memory_order_relaxed));
}

static void render_in(struct page *p, const struct bridge_in_counters *c)
{
	counter(p, "mllp_bridge_in_received_total",
		"Messages received over MLLP.", c->received);
	counter(p, "mllp_bridge_in_stored_total",
		"Messages stored by JetStream (PubAck), answered AA.",
		c->stored);
	counter(p, "mllp_bridge_in_duplicates_total",
		"Messages JetStream already held (same Nats-Msg-Id within its "
		"duplicate window), answered AA.",
		c->duplicates);
	counter(p, "mllp_bridge_in_refused_total",
		"Publishes JetStream refused, answered AE.", c->refused);
	counter(p, "mllp_bridge_in_timed_out_total",
		"Publishes without a PubAck within --publish-timeout, "
		"answered AE.",
		c->timed_out);
	counter(p, "mllp_bridge_in_unavailable_total",
		"Messages not published (NATS not connected, too many "
		"pending, shutting down), answered AE.",
		c->unavailable);
	counter(p, "mllp_bridge_in_rejected_total",
		"Messages answered AR (not HL7, no MSH-10, subject too "
		"long).",
		c->rejected);
	counter(p, "mllp_bridge_in_replies_lost_total",
		"Replies that could not be sent (connection closed).",
		c->replies_lost);
	family(p, "mllp_bridge_in_pending", "gauge",
	       "Publishes awaiting JetStream's answer.",
	       atomic_load_explicit(c->pending, memory_order_relaxed));
}

static void render_out(struct page *p, const struct bridge_out_counters *c)
{
	counter(p, "mllp_bridge_out_received_total",
		"Messages received from the consumer, redeliveries included.",
		c->received);
	counter(p, "mllp_bridge_out_delivered_total",
		"Messages acknowledged AA or CA by the receiver, then acked in "
		"JetStream.",
		c->delivered);
	counter(p, "mllp_bridge_out_dead_lettered_total",
		"Messages rejected (AE, AR) published to the dead-letter "
		"subject and terminated.",
		c->dead_lettered);
	counter(p, "mllp_bridge_out_lanes_held_total",
		"Lanes stopped by a rejection with --on-reject hold.",
		c->lanes_held);
	counter(p, "mllp_bridge_out_retries_total",
		"Deliveries scheduled again after a failure.", c->retries);
	counter(p, "mllp_bridge_out_redelivered_total",
		"Messages JetStream delivered more than once.", c->redelivered);
	counter(p, "mllp_bridge_out_duplicates_dropped_total",
		"Redeliveries of messages this bridge already held, dropped.",
		c->duplicates_dropped);
	counter(p, "mllp_bridge_out_released_total",
		"Messages given back to JetStream (Nak) while draining.",
		c->released);
	counter(p, "mllp_bridge_out_in_progress_total",
		"InProgress acks sent for messages held longer than "
		"AckWait/3.",
		c->in_progress);
	family(p, "mllp_bridge_out_held", "gauge",
	       "Messages held: received, not yet acked, terminated or "
	       "released.",
	       atomic_load_explicit(c->held, memory_order_relaxed));
	family(p, "mllp_bridge_out_standby", "gauge",
	       "1 while waiting as a standby for the consumer (--exclusive).",
	       bridge_lease_standby());
}

static void render_nats(struct page *p, const struct bridge_nats *n)
{
	uint64_t reconnects = 0;
	natsStatistics *s = NULL;
	if (natsStatistics_Create(&s) == NATS_OK &&
	    natsConnection_GetStats(n->nc, s) == NATS_OK)
		natsStatistics_GetCounts(s, NULL, NULL, NULL, NULL,
					 &reconnects);
	natsStatistics_Destroy(s);
	family(p, "mllp_bridge_nats_connected", "gauge",
	       "1 while the NATS connection is up.",
	       natsConnection_Status(n->nc) == NATS_CONN_STATUS_CONNECTED);
	family(p, "mllp_bridge_nats_reconnects_total", "counter",
	       "Reconnections to NATS.", reconnects);
}

/* The page (tool_metrics_fn). */
static int render(void *ctx, char *buf, size_t cap)
{
	struct bridge_metrics *m = ctx;
	struct page p = {buf, cap, 0};
	if (m->out)
		render_out(&p, &m->oc);
	else
		render_in(&p, &m->in);
	render_nats(&p, m->n);
	bool room = p.len < cap;
	int r =
	    m->out
		? mllp_metrics_render_pool(m->pool, room ? buf + p.len : NULL,
					   room ? cap - p.len : 0, NULL)
		: mllp_metrics_render_receiver(m->recv,
					       room ? buf + p.len : NULL,
					       room ? cap - p.len : 0, NULL);
	if (r < 0)
		return r;
	p.len += (size_t)r;
	if (p.len >= cap && cap > 0)
		buf[0] = 0; /* never a partial page */
	return p.len > (size_t)INT32_MAX ? MLLP_ERR_BUFFER_TOO_SMALL
					 : (int)p.len;
}

/* A copy of t serving its page on spec, in *out (NULL, and 0, without
 * spec); BRIDGE_EXIT_RUNTIME when it cannot (said). */
static int start(const char *spec, const struct bridge_metrics *t,
		 struct bridge_metrics **out)
{
	*out = NULL;
	if (!spec)
		return 0;
	struct bridge_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		bridge_log("--metrics: out of memory");
		return BRIDGE_EXIT_RUNTIME;
	}
	*m = *t;
	char err[400];
	m->h = tool_metrics_http_start(spec, render, m, err, sizeof(err));
	if (!m->h) {
		bridge_log("%s", err);
		free(m);
		return BRIDGE_EXIT_RUNTIME;
	}
	printf("metrics on %s\n", tool_metrics_http_address(m->h));
	fflush(stdout);
	*out = m;
	return 0;
}

int bridge_metrics_in_start(const char *spec,
			    const struct bridge_in_counters *c,
			    const struct bridge_nats *n,
			    const struct mllp_receiver *recv,
			    struct bridge_metrics **out)
{
	struct bridge_metrics t = {.in = *c, .n = n, .recv = recv};
	return start(spec, &t, out);
}

int bridge_metrics_out_start(const char *spec,
			     const struct bridge_out_counters *c,
			     const struct bridge_nats *n,
			     const struct mllp_pool *pool,
			     struct bridge_metrics **out)
{
	struct bridge_metrics t = {.out = true, .oc = *c, .n = n, .pool = pool};
	return start(spec, &t, out);
}

void bridge_metrics_stop(struct bridge_metrics *m)
{
	if (!m)
		return;
	tool_metrics_http_stop(m->h);
	free(m);
}

/* Prometheus text exposition of a pool: pool-wide families, the reply
 * latency histogram and the per-endpoint families (metrics.h). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/metrics.h>

#include "latency.h"
#include "metrics_writer.h"
#include "pool_internal.h"

int mllp_pool_get_latency(const struct mllp_pool *pool,
			  struct mllp_latency_histogram *out)
{
	if (!out || out->size < sizeof(out->size))
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllp_latency_histogram h;
	memset(&h, 0, sizeof(h));
	memcpy(h.bound_us, mllpi_latency_bounds_us, sizeof(h.bound_us));
	if (pool) {
		/* C11 atomic_load takes a non-const pointer (fixed in C17). */
		struct mllp_pool *p = (struct mllp_pool *)(uintptr_t)pool;
		/* relaxed: statistics, each counter on its own. */
		for (int i = 0; i <= MLLP_LATENCY_BUCKETS; i++)
			h.count[i] = atomic_load_explicit(&p->lat.count[i],
							  memory_order_relaxed);
		h.sum_us =
		    atomic_load_explicit(&p->lat.sum_us, memory_order_relaxed);
	}
	/* The caller's struct may be older (smaller) than ours. */
	size_t n = out->size < sizeof(h) ? out->size : sizeof(h);
	h.size = n;
	memcpy(out, &h, n);
	return 0;
}

/* A caller's struct of `size` bytes (older, smaller ones included) into
 * dst, ours of n bytes: what the caller's lacks reads zero. */
static void copy_sized(void *dst, size_t n, const void *src, size_t size)
{
	memset(dst, 0, n);
	memcpy(dst, src, size < n ? size : n);
}

/* "timeout" for MLLP_ERR_TIMEOUT: the name without MLLP_ERR_, lower
 * case; NULL for a slot without a name. out holds 64 bytes. */
static const char *reason_name(int idx, char *out)
{
	const char *n = mllp_err_name(MLLP_ERR_BASE - idx);
	static const char pre[] = "MLLP_ERR_";
	if (strncmp(n, pre, sizeof(pre) - 1) != 0)
		return NULL;
	n += sizeof(pre) - 1;
	size_t i = 0;
	for (; n[i] && i < 63; i++)
		out[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
	out[i] = 0;
	return out;
}

/* The counters pool and endpoint share (struct mllp_pool_stats and
 * struct mllp_endpoint_stats name them alike). */
struct counters {
	uint64_t sent, acked[MLLP_VERDICT_COUNT], raw, errors, errors_os,
	    errors_mllp[MLLP_STATS_MLLP_ERRORS], connects, reconnects,
	    connect_failures, in_flight, queued, tls_handshakes, tls_resumed,
	    stale, lanes_active, lanes_held, lane_waiting, lane_held_waiting,
	    late_accept;
};

#define COPY_COUNTERS(d, s)                                                    \
	do {                                                                   \
		(d)->sent = (s)->sent;                                         \
		memcpy((d)->acked, (s)->acked, sizeof((d)->acked));            \
		(d)->raw = (s)->raw_replies;                                   \
		(d)->errors = (s)->errors;                                     \
		(d)->errors_os = (s)->errors_os;                               \
		memcpy((d)->errors_mllp, (s)->errors_mllp,                     \
		       sizeof((d)->errors_mllp));                              \
		(d)->connects = (s)->connects;                                 \
		(d)->reconnects = (s)->reconnects;                             \
		(d)->connect_failures = (s)->connect_failures;                 \
		(d)->in_flight = (s)->in_flight;                               \
		(d)->queued = (s)->queued;                                     \
		(d)->tls_handshakes = (s)->tls_handshakes;                     \
		(d)->tls_resumed = (s)->tls_resumed;                           \
		(d)->stale = (s)->stale_replies;                               \
		(d)->lanes_active = (s)->lanes_active;                         \
		(d)->lanes_held = (s)->lanes_held;                             \
		(d)->lane_waiting = (s)->lane_waiting;                         \
		(d)->lane_held_waiting = (s)->lane_held_waiting;               \
		(d)->late_accept = (s)->late_accept_acks;                      \
	} while (0)

/* One endpoint's labels, ready for the writer. */
struct ep_labels {
	struct counters c;
	uint32_t connections, connected;
	char endpoint[300];
	char id[21];
	struct mllpi_kv kv[3]; /* endpoint, endpoint_id, one more */
};

static void ep_labels_init(struct ep_labels *l,
			   const struct mllp_endpoint_stats *in, uint32_t id)
{
	/* The caller's version of the struct: what it did not fill is 0. */
	struct mllp_endpoint_stats e;
	memset(&e, 0, sizeof(e));
	memcpy(&e, in, in->size < sizeof(e) ? in->size : sizeof(e));
	e.host[sizeof(e.host) - 1] = 0;
	COPY_COUNTERS(&l->c, &e);
	l->connections = e.connections;
	l->connected = e.connected;
	bool v6 = strchr(e.host, ':') != NULL;
	snprintf(l->endpoint, sizeof(l->endpoint), v6 ? "[%s]:%u" : "%s:%u",
		 e.host, e.port);
	mllpi_mw_u64(id, l->id);
	l->kv[0] = (struct mllpi_kv){"endpoint", l->endpoint};
	l->kv[1] = (struct mllpi_kv){"endpoint_id", l->id};
}

/* Which counter a family shows. */
enum field {
	F_SENT,
	F_RAW,
	F_ERRORS,
	F_CONNECTS,
	F_RECONNECTS,
	F_CONNECT_FAILURES,
	F_INFLIGHT,
	F_QUEUED,
	F_TLS,
	F_TLS_RESUMED,
	F_STALE,
	F_LATE_ACCEPT,
	F_LANES,
	F_LANES_HELD,
	F_LANE_WAITING,
	F_LANE_HELD_WAITING,
	F_CONNECTIONS,
	F_CONNECTED,
};

static uint64_t field_of(const struct ep_labels *l, enum field f)
{
	const struct counters *c = &l->c;
	switch (f) {
	case F_SENT:
		return c->sent;
	case F_RAW:
		return c->raw;
	case F_ERRORS:
		return c->errors;
	case F_CONNECTS:
		return c->connects;
	case F_RECONNECTS:
		return c->reconnects;
	case F_CONNECT_FAILURES:
		return c->connect_failures;
	case F_INFLIGHT:
		return c->in_flight;
	case F_QUEUED:
		return c->queued;
	case F_TLS:
		return c->tls_handshakes;
	case F_TLS_RESUMED:
		return c->tls_resumed;
	case F_STALE:
		return c->stale;
	case F_LATE_ACCEPT:
		return c->late_accept;
	case F_LANES:
		return c->lanes_active;
	case F_LANES_HELD:
		return c->lanes_held;
	case F_LANE_WAITING:
		return c->lane_waiting;
	case F_LANE_HELD_WAITING:
		return c->lane_held_waiting;
	case F_CONNECTIONS:
		return l->connections;
	case F_CONNECTED:
		return l->connected;
	}
	return 0;
}

/* The families shown once for the pool and once per endpoint (name
 * without "endpoint_"). */
static const struct family {
	const char *name, *ep_name, *type, *help;
	enum field f;
} families[] = {
    {"messages_sent_total", "endpoint_messages_sent_total", "counter",
     "Messages completely written.", F_SENT},
    {"raw_replies_total", "endpoint_raw_replies_total", "counter",
     "Replies to raw (non-HL7) payloads.", F_RAW},
    {"messages_failed_total", "endpoint_messages_failed_total", "counter",
     "Messages whose future failed, all reasons.", F_ERRORS},
    {"connects_total", "endpoint_connects_total", "counter",
     "Successful connects.", F_CONNECTS},
    {"reconnects_total", "endpoint_reconnects_total", "counter",
     "Connect attempts after the first.", F_RECONNECTS},
    {"connect_failures_total", "endpoint_connect_failures_total", "counter",
     "Failed connect attempts.", F_CONNECT_FAILURES},
    {"tls_handshakes_total", "endpoint_tls_handshakes_total", "counter",
     "TLS handshakes completed.", F_TLS},
    {"tls_sessions_resumed_total", "endpoint_tls_sessions_resumed_total",
     "counter", "TLS handshakes that resumed a session.", F_TLS_RESUMED},
    {"stale_replies_total", "endpoint_stale_replies_total", "counter",
     "Replies dropped as stale: an ACK resent for a message answered "
     "already on the same connection.",
     F_STALE},
    {"late_accept_acks_total", "endpoint_late_accept_acks_total", "counter",
     "Answers dropped as late accept ACKs: a reply for a message whose "
     "MSH-15 (NE, ER) asked for none and which completed when written.",
     F_LATE_ACCEPT},
    {"inflight", "endpoint_inflight", "gauge",
     "Messages on a connection whose future is not complete, now.", F_INFLIGHT},
    {"queued", "endpoint_queued", "gauge",
     "Messages waiting for a connection, now.", F_QUEUED},
    {"lanes", "endpoint_lanes", "gauge",
     "Ordered lanes (keys with a message queued, in flight, waiting or "
     "held), now.",
     F_LANES},
    {"lanes_held", "endpoint_lanes_held", "gauge",
     "Ordered lanes held after a failure, now.", F_LANES_HELD},
    {"lane_waiting", "endpoint_lane_waiting", "gauge",
     "Keyed messages waiting behind an earlier message of their key, now.",
     F_LANE_WAITING},
    {"lane_held_waiting", "endpoint_lane_held_waiting", "gauge",
     "Keyed messages waiting behind a held lane, now.", F_LANE_HELD_WAITING},
    {NULL, "endpoint_connections", "gauge", "Connections configured.",
     F_CONNECTIONS},
    {NULL, "endpoint_connected", "gauge", "Connections up now.", F_CONNECTED},
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

/* acks_total{verdict}; all: every verdict, else the non-zero ones. */
static void acks(struct mllpi_mw *w, const struct counters *c,
		 struct mllpi_kv *kv, size_t nkv)
{
	for (int v = 0; v < MLLP_VERDICT_COUNT; v++) {
		kv[nkv] = (struct mllpi_kv){
		    "verdict", mllp_verdict_name((enum mllp_verdict)v)};
		mllpi_mw_sample(w, NULL, kv, nkv + 1, NULL, c->acked[v]);
	}
}

/* send_failures_total{reason}; all: every named reason, else the
 * non-zero ones. */
static void failures(struct mllpi_mw *w, const struct counters *c,
		     struct mllpi_kv *kv, size_t nkv, bool all)
{
	kv[nkv] = (struct mllpi_kv){"reason", "os"};
	if (all || c->errors_os)
		mllpi_mw_sample(w, NULL, kv, nkv + 1, NULL, c->errors_os);
	for (int i = 0; i < MLLP_STATS_MLLP_ERRORS; i++) {
		char name[64];
		if (!reason_name(i, name) || (!all && !c->errors_mllp[i]))
			continue;
		kv[nkv].v = name;
		mllpi_mw_sample(w, NULL, kv, nkv + 1, NULL, c->errors_mllp[i]);
	}
}

static void latency(struct mllpi_mw *w, const struct mllp_latency_histogram *h)
{
	mllpi_mw_family(w, "reply_latency_seconds", "histogram",
			"Time from a message's send to its reply.");
	char le[32];
	struct mllpi_kv kv = {"le", le};
	uint64_t cum = 0;
	for (int i = 0; i < MLLP_LATENCY_BUCKETS; i++) {
		cum += h->count[i];
		mllpi_mw_seconds(h->bound_us[i], le);
		mllpi_mw_sample(w, "_bucket", &kv, 1, NULL, cum);
	}
	cum += h->count[MLLP_LATENCY_BUCKETS];
	kv.v = "+Inf";
	mllpi_mw_sample(w, "_bucket", &kv, 1, NULL, cum);
	char sum[32];
	mllpi_mw_seconds(h->sum_us, sum);
	mllpi_mw_sample(w, "_sum", NULL, 0, sum, 0);
	mllpi_mw_sample(w, "_count", NULL, 0, NULL, cum);
}

static void render_pool_wide(struct mllpi_mw *w,
			     const struct mllp_pool_stats *s,
			     const struct mllp_latency_histogram *lat)
{
	struct counters c;
	COPY_COUNTERS(&c, s);
	struct mllpi_kv kv[1];
	if (s->backend) {
		mllpi_mw_family(w, "pool_info", "gauge",
				"The pool's I/O backend (always 1).");
		kv[0] = (struct mllpi_kv){"backend", s->backend};
		mllpi_mw_sample(w, NULL, kv, 1, NULL, 1);
	}
	struct ep_labels l;
	memset(&l, 0, sizeof(l));
	l.c = c;
	for (size_t i = 0; i < NFAMILIES; i++) {
		if (!families[i].name)
			continue;
		mllpi_mw_one(w, families[i].name, families[i].type,
			     families[i].help, field_of(&l, families[i].f));
		if (families[i].f == F_RAW) {
			mllpi_mw_family(w, "acks_total", "counter",
					"Replies verified, by verdict.");
			acks(w, &c, kv, 0);
		} else if (families[i].f == F_ERRORS) {
			mllpi_mw_family(w, "send_failures_total", "counter",
					"Messages whose future failed, by "
					"reason.");
			failures(w, &c, kv, 0, true);
		}
	}
	if (lat)
		latency(w, lat);
}

/* The per-endpoint families: every family over every endpoint (each
 * endpoint's labels are rebuilt per family: no allocation). */
static void render_endpoints(struct mllpi_mw *w,
			     const struct mllp_endpoint_stats *const *eps,
			     const uint32_t *ids, size_t n)
{
	struct ep_labels l;
	for (size_t i = 0; i < NFAMILIES; i++) {
		const struct family *f = &families[i];
		for (int part = 0; part < 2; part++) {
			if (part == 1 && f->f != F_RAW && f->f != F_ERRORS)
				break;
			if (part == 0)
				mllpi_mw_family(w, f->ep_name, f->type,
						f->help);
			else if (f->f == F_RAW)
				mllpi_mw_family(
				    w, "endpoint_acks_total", "counter",
				    "Replies verified, by verdict.");
			else
				mllpi_mw_family(w,
						"endpoint_send_failures_total",
						"counter",
						"Messages whose future failed, "
						"by reason.");
			for (size_t e = 0; e < n; e++) {
				ep_labels_init(&l, eps[e],
					       ids ? ids[e] : (uint32_t)e);
				if (part == 0)
					mllpi_mw_sample(w, NULL, l.kv, 2, NULL,
							field_of(&l, f->f));
				else if (f->f == F_RAW)
					acks(w, &l.c, l.kv, 2);
				else
					failures(w, &l.c, l.kv, 2, false);
			}
		}
	}
}

int mllp_metrics_render_pool_stats(
    const struct mllp_pool_stats *stats,
    const struct mllp_latency_histogram *latency_h,
    const struct mllp_endpoint_stats *const *eps, const uint32_t *ids,
    size_t neps, char *buf, size_t cap, const struct mllp_metrics_options *o)
{
	struct mllpi_mw w;
	int rc = mllpi_mw_init(&w, buf, cap, o);
	if (rc == 0 &&
	    (!stats || stats->size < sizeof(stats->size) ||
	     (neps > 0 && !eps) ||
	     (latency_h && latency_h->size < sizeof(latency_h->size))))
		rc = MLLP_ERR_INVALID_ARGUMENT;
	for (size_t i = 0; rc == 0 && i < neps; i++)
		if (!eps[i] || eps[i]->size < sizeof(eps[i]->size))
			rc = MLLP_ERR_INVALID_ARGUMENT;
	if (rc == 0) {
		struct mllp_pool_stats s;
		copy_sized(&s, sizeof(s), stats, stats->size);
		struct mllp_latency_histogram h;
		if (latency_h)
			copy_sized(&h, sizeof(h), latency_h, latency_h->size);
		render_pool_wide(&w, &s, latency_h ? &h : NULL);
		render_endpoints(&w, eps, ids, neps);
	}
	return mllpi_mw_end(&w, rc);
}

/* The live pool's endpoints: snapshots taken once (so every family shows
 * the same values), in one block from the pool's allocator. */
int mllp_metrics_render_pool(const struct mllp_pool *pool, char *buf,
			     size_t cap, const struct mllp_metrics_options *o)
{
	struct mllpi_mw w;
	if (!pool) {
		mllpi_mw_init(&w, buf, cap, NULL);
		return mllpi_mw_end(&w, MLLP_ERR_INVALID_ARGUMENT);
	}
	struct mllp_pool *p = (struct mllp_pool *)(uintptr_t)pool;
	uint32_t max = atomic_load_explicit(&p->neps, memory_order_acquire);
	/* One block: the snapshots, then the pointer and id arrays. */
	size_t bytes = (size_t)max * (sizeof(struct mllp_endpoint_stats) +
				      sizeof(void *) + sizeof(uint32_t));
	struct mllp_endpoint_stats *st = NULL;
	const struct mllp_endpoint_stats **ptrs = NULL;
	uint32_t *ids = NULL;
	if (max > 0) {
		st = p->alloc.alloc(p->alloc.ctx, bytes);
		if (!st) {
			mllpi_mw_init(&w, buf, cap, NULL);
			return mllpi_mw_end(&w, MLLP_ERR_NO_MEMORY);
		}
		ptrs = (const struct mllp_endpoint_stats **)(void *)(st + max);
		ids = (uint32_t *)(void *)(ptrs + max);
	}
	size_t n = 0;
	for (uint32_t id = 0; id < max; id++) {
		mllp_endpoint_stats_init(&st[n]);
		if (mllp_pool_get_endpoint_stats(pool, id, &st[n]) != 0)
			continue;
		ptrs[n] = &st[n];
		ids[n++] = id;
	}
	struct mllp_pool_stats s;
	mllp_pool_stats_init(&s);
	mllp_pool_get_stats(pool, &s);
	struct mllp_latency_histogram h;
	mllp_latency_histogram_init(&h);
	mllp_pool_get_latency(pool, &h);
	int rc =
	    mllp_metrics_render_pool_stats(&s, &h, ptrs, ids, n, buf, cap, o);
	if (st)
		p->alloc.free(p->alloc.ctx, st, bytes);
	return rc;
}

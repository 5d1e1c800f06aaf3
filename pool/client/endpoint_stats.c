/* Per-endpoint counters: mllp_pool_get_endpoint_stats. The manager counts
 * every message event for its endpoint and for the pool at once (STAT_ADD
 * in conn.h); this reads an endpoint's copy. */
#include "endpoint.h"

#include <stdio.h>
#include <string.h>

void mllpi_endpoint_note_error(struct mllpi_endpoint *ep,
			       const struct mllp_error *e)
{
	pthread_mutex_lock(&ep->mu);
	ep->stat_error = *e;
	pthread_mutex_unlock(&ep->mu);
}

int mllp_pool_get_endpoint_stats(const struct mllp_pool *pool,
				 uint32_t endpoint_id,
				 struct mllp_endpoint_stats *out)
{
	if (!out || out->size < sizeof(out->size))
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllpi_endpoint *ep;
	int rc =
	    mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_NONE, &ep, NULL);
	if (rc != 0)
		return rc;
	struct mllp_endpoint_stats st;
	memset(&st, 0, sizeof(st));
	snprintf(st.host, sizeof(st.host), "%s", ep->host);
	st.port = ep->port;
	st.connections = ep->nconns;
	/* relaxed: statistics, each counter on its own. */
#define LD(f) atomic_load_explicit(&ep->f, memory_order_relaxed)
	st.connected = LD(connected);
	st.queued = LD(st_queued);
	st.in_flight = LD(st_in_flight);
	st.sent = LD(st_sent);
	for (int i = 0; i < MLLP_VERDICT_COUNT; i++)
		st.acked[i] = LD(st_acked[i]);
	st.raw_replies = LD(st_raw);
	st.errors = LD(st_errors);
	st.errors_os = LD(st_errors_os);
	for (int i = 0; i < MLLP_STATS_MLLP_ERRORS; i++)
		st.errors_mllp[i] = LD(st_errors_mllp[i]);
	st.connects = LD(st_connects);
	st.reconnects = LD(st_reconnects);
	st.connect_failures = LD(st_connect_failures);
	st.tls_handshakes = LD(st_tls_handshakes);
	st.tls_resumed = LD(st_tls_resumed);
	st.stale_replies = LD(st_stale);
#undef LD
	pthread_mutex_lock(&ep->mu);
	st.last_error = ep->stat_error;
	pthread_mutex_unlock(&ep->mu);
	mllpi_endpoint_leave(pool, endpoint_id);
	/* The caller's version of the struct: as many bytes as it knows. */
	size_t n = out->size < sizeof(st) ? out->size : sizeof(st);
	st.size = n;
	memcpy(out, &st, n);
	return 0;
}

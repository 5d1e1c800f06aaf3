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
	st.connected = MLLPI_LD(ep->connected);
	MLLPI_LOAD_COUNTERS(&st, ep);
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

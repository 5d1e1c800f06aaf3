/* The connection's side of TLS: what tls_conn.c calls back into. */
#include "conn.h"
#include "endpoint.h"
#include "tls_conn.h"

void mllpi_conn_tls_up(struct mllpi_conn *c)
{
	mllpi_conn_on_connected(c);
}

void mllpi_conn_tls_arm_recv(struct mllpi_conn *c)
{
	mllpi_conn_arm_recv(c);
}

void mllpi_conn_tls_plain(struct mllpi_conn *c, const unsigned char *data,
			  size_t len)
{
	mllpi_conn_on_recv_data(c, data, len);
}

void mllpi_conn_tls_failed(struct mllpi_conn *c, const struct mllp_error *e)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (c->state == C_CONNECTING) {
		/* The server was reached: no other address is tried in this
		 * round (its error would hide this one), and the next round
		 * starts at the same address. */
		int idx = c->addr_idx;
		c->addr_tries = ep->naddrs;
		mllpi_connect_failed_err(c, e);
		c->addr_idx = idx;
		return;
	}
	/* After the handshake: the server refused us late (TLS 1.3 checks
	 * the client certificate after the client's handshake is done) or
	 * a fatal record error. */
	if (e->context == MLLP_CTX_TLS) {
		pthread_mutex_lock(&ep->mu);
		ep->last_error = *e;
		pthread_mutex_unlock(&ep->mu);
	}
	mllpi_pool_log(p, MLLP_LOG_ERROR, "TLS error with %s:%u => %s",
		       ep->host, ep->port, e->message);
	mllpi_conn_close(c, true, e->context, e, true, true);
}

void mllpi_conn_tls_count(struct mllpi_conn *c, bool resumed)
{
	STAT_ADD(c->ep, st_tls_handshakes, 1);
	if (resumed)
		STAT_ADD(c->ep, st_tls_resumed, 1);
}

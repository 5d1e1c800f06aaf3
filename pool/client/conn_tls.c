/* TLS on the pool's client connections, over the shared TLS stream
 * (pool/io/tls_stream.h): starting it when TCP is up, the handshake under
 * the connect timer, the message's plaintext written through it, and what
 * the stream reports back (plaintext, handshake done, bytes written,
 * failures). The stream belongs to the socket (s->tls); its callbacks get
 * the socket, whose connection is set while the stream is open. */
#include "conn.h"
#include "endpoint.h"
#include "tls_stream.h"

static void tls_plain(void *ctx, const unsigned char *data, size_t len)
{
	struct mllpi_sock *s = ctx;
	mllpi_conn_on_recv_data(s->conn, data, len);
}

static void tls_up(void *ctx, bool resumed)
{
	struct mllpi_sock *s = ctx;
	struct mllpi_conn *c = s->conn;
	STAT_ADD(c->ep, st_tls_handshakes, 1);
	if (resumed)
		STAT_ADD(c->ep, st_tls_resumed, 1);
	mllpi_conn_on_connected(c);
}

static void tls_session(void *ctx, struct mllp_tls_session *sess)
{
	struct mllpi_sock *s = ctx;
	struct mllpi_conn *c = s->conn;
	mllp_tls_session_free(c->tls_sess);
	c->tls_sess = sess;
}

/* A TLS failure: during the handshake a connect failure (context tls,
 * stored as the endpoint's last connect error); after it, the connection
 * is closed and its message in flight failed with e. */
static void conn_tls_failed(struct mllpi_conn *c, const struct mllp_error *e)
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

static void tls_failed(void *ctx, const struct mllp_error *e)
{
	struct mllpi_sock *s = ctx;
	struct mllpi_conn *c = s->conn;
	if (e->context == MLLP_CTX_SEND && c->send_in_flight) {
		/* The ciphertext of the message in flight was not written. */
		c->send_in_flight = false;
		mllpi_conn_send_failed(c, e->reason, NULL);
		return;
	}
	conn_tls_failed(c, e);
}

/* A flight is written: plain bytes of the message in flight are now on
 * the wire (0 when the flight carried none of it). */
static void tls_sent(void *ctx, size_t plain, size_t wire)
{
	struct mllpi_sock *s = ctx;
	struct mllpi_conn *c = s->conn;
	(void)wire;
	if (c->send_in_flight)
		mllpi_conn_on_sent(c, (int)plain);
}

static const struct mllpi_tls_stream_cbs tls_cbs = {
    .plain_in = tls_plain,
    .handshake_done = tls_up,
    .failed = tls_failed,
    .sent = tls_sent,
    .session = tls_session,
};

void mllpi_conn_tls_start(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllpi_sock *s = c->sock;
	struct mllp_tls_conn *conn;
	struct mllp_error e;
	int rc = mllp_tls_conn_new_client(ep->tls_ctx, ep->host, &conn, &e);
	if (rc < 0) {
		conn_tls_failed(c, &e);
		return;
	}
	const struct mllpi_tls_stream_io io = {
	    .ops = p->loop.ops,
	    .be = p->loop.be,
	    .fd = s->fd,
	    .token = mllpi_tok(s, TOK_TLS_SEND),
	    .alloc = &p->alloc,
	    .keep = SIZE_MAX,
	};
	rc = mllpi_tls_stream_new(&io, &tls_cbs, s, conn, &s->tls);
	if (rc < 0) {
		mllp_error_set(&e, MLLP_CTX_TLS, rc, NULL);
		conn_tls_failed(c, &e);
		return;
	}
	if (c->tls_sess)
		(void)mllp_tls_conn_set_session(conn, c->tls_sess);
	/* The handshake has its own connect_timeout_ms, from now. */
	c->timer.kind = T_CONNECT;
	mllpi_timer_arm(&p->loop.timers, &c->timer,
			mllpi_now_us() +
			    (uint64_t)ep->opts.connect_timeout_ms * 1000u);
	mllpi_conn_arm_recv(c);
	if (c->sock != s)
		return;
	mllpi_tls_stream_start(s->tls);
}

int mllpi_conn_tls_send(struct mllpi_conn *c)
{
	struct mllpi_tls_stream *t = c->sock->tls;
	size_t taken;
	c->send_in_flight = true;
	int rc = mllpi_tls_stream_write(
	    t, c->iov_full, c->iov_full_n,
	    c->sent + mllpi_tls_stream_plain_unsent(t), &taken);
	if (rc < 0)
		c->send_in_flight = false;
	return rc;
}

void mllpi_conn_tls_timeout(struct mllpi_conn *c)
{
	const struct mllpi_tls_stream *t = c->sock->tls;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_TLS, "%s (%u ms)%s",
		       mllp_tls_failure_text(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
		       c->ep->opts.connect_timeout_ms,
		       !mllpi_tls_stream_peer_sent_tls(t)
			   ? ": the peer sent no TLS handshake: is it a "
			     "plaintext MLLP port?"
			   : "");
	conn_tls_failed(c, &e);
}

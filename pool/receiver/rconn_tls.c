/* A receiver connection's TLS, over the shared TLS stream
 * (pool/io/tls_stream.h): the server side started at accept, ciphertext
 * in, the replies of the write buffer written through the stream, and
 * what the stream reports (handshake done, plaintext, flights written,
 * failures, the refusal of a failed handshake). */
#include <errno.h>
#include <stdio.h>

#include "receiver_internal.h"

static void tls_plain(void *ctx, const unsigned char *data, size_t len)
{
	mllpi_rconn_on_data(ctx, data, len);
}

static void tls_up(void *ctx, bool resumed)
{
	struct rconn *c = ctx;
	struct mllp_receiver *r = c->r;
	const struct mllp_tls_conn *e = mllpi_tls_stream_engine(c->tls);
	c->tls_up = true;
	ST_ADD(r, st_tls_hs, 1);
	ST_ADD(r, st_tls_resumed, resumed ? 1 : 0);
	const char *pn = mllp_tls_conn_peer_name(e);
	if (pn)
		snprintf(c->info.tls_peer_name, sizeof(c->info.tls_peer_name),
			 "%s", pn);
	mllpi_rlog_line(&r->log, MLLP_LOG_DEBUG,
			"TLS connection from %s:%u: %s %s%s, peer %s",
			c->info.peer_address, c->info.peer_port,
			mllp_tls_conn_version(e), mllp_tls_conn_cipher(e),
			resumed ? " (resumed)" : "",
			pn ? pn : "without certificate");
}

static void tls_peer_closed(void *ctx)
{
	struct rconn *c = ctx;
	c->eof = true; /* close_notify: as end of file */
}

/* The handshake failed (the stream sent the alert): log the engine's
 * reason and close (refused when the client's certificate is the
 * problem). */
static void tls_refuse(struct rconn *c, const struct mllp_error *e)
{
	struct mllp_receiver *r = c->r;
	const struct mllp_tls_conn *tc = mllpi_tls_stream_engine(c->tls);
	enum mllp_tls_failure f = mllp_tls_conn_failure(tc);
	bool refused =
	    !mllp_tls_conn_failure_by_peer(tc) &&
	    (f == MLLP_TLS_FAIL_UNKNOWN_CA || f == MLLP_TLS_FAIL_CERT_EXPIRED ||
	     f == MLLP_TLS_FAIL_CERT_NOT_YET_VALID ||
	     f == MLLP_TLS_FAIL_CERT_REVOKED ||
	     f == MLLP_TLS_FAIL_NO_CLIENT_CERT ||
	     f == MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED ||
	     f == MLLP_TLS_FAIL_BAD_CERT);
	mllpi_rlog_line(&r->log, MLLP_LOG_WARNING,
			"%s TLS connection from %s:%u: %s",
			refused ? "refused" : "failed", c->info.peer_address,
			c->info.peer_port, e->message);
	ST_ADD(r, st_tls_failed, 1);
	if (refused) {
		ST_ADD(r, st_refused, 1);
		ST_ADD(r, st_refused_by[REFUSED_TLS_CERT], 1);
	}
	mllpi_rconn_close(c, refused ? MLLP_CLOSE_REFUSED : MLLP_CLOSE_ERROR,
			  MLLP_ERR_TLS);
}

static void tls_failed(void *ctx, const struct mllp_error *e)
{
	struct rconn *c = ctx;
	struct mllp_receiver *r = c->r;
	if (e->context == MLLP_CTX_TLS && e->reason != MLLP_ERR_NO_MEMORY) {
		/* The engine's failure (its alert is out). */
		if (!c->tls_up) {
			tls_refuse(c, e);
			return;
		}
		mllpi_rlog_line(&r->log, MLLP_LOG_ERROR,
				"TLS error on connection from %s:%u: %s",
				c->info.peer_address, c->info.peer_port,
				e->message);
		mllpi_rconn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_TLS);
		return;
	}
	if (e->context == MLLP_CTX_TLS)
		mllpi_rconn_fail(c, e->reason, "cannot buffer TLS data");
	else if (e->reason == -EPIPE || e->reason == -ECONNRESET)
		mllpi_rconn_close(c, MLLP_CLOSE_PEER, e->reason);
	else
		mllpi_rconn_fail(c, e->reason, "send failed");
}

/* A flight is written: when it carried plaintext, it carried every reply
 * handed to the stream (the write buffer goes to the stream only between
 * flights). */
static void tls_sent(void *ctx, size_t plain, size_t wire)
{
	struct rconn *c = ctx;
	uint32_t replies = 0;
	ST_ADD(c->r, st_bytes_out, (uint64_t)wire);
	if (plain > 0) {
		replies = c->tls_replies;
		c->tls_replies = 0;
	}
	mllpi_rconn_sent(c, wire, replies);
}

static const struct mllpi_tls_stream_cbs tls_cbs = {
    .plain_in = tls_plain,
    .handshake_done = tls_up,
    .failed = tls_failed,
    .sent = tls_sent,
    .peer_closed = tls_peer_closed,
};

int mllpi_rtls_start(struct rconn *c, struct mllp_error *err)
{
	struct mllp_receiver *r = c->r;
	struct mllp_tls_conn *conn;
	int rc = mllp_tls_conn_new_server(r->tls_ctx, &conn, err);
	if (rc < 0)
		return rc;
	const struct mllpi_tls_stream_io io = {
	    .ops = r->loop.ops,
	    .be = r->loop.be,
	    .fd = c->fd,
	    .token = tok(c, TOK_TLS_SEND),
	    .alloc = &r->alloc,
	    .keep = r->cfg.read_buffer_keep,
	};
	return mllpi_tls_stream_new(&io, &tls_cbs, c, conn, &c->tls);
}

/* Between flights: the replies waiting in wr go to the stream, which
 * sends them (coalesced) in its next flight. */
void mllpi_rtls_flush(struct rconn *c)
{
	if (c->closing || !c->tls_up || mllpi_tls_stream_busy(c->tls))
		return;
	if (c->wr_off < c->wr.len) {
		const struct iovec v = {.iov_base = c->wr.p,
					.iov_len = c->wr.len};
		size_t taken = 0;
		int rc =
		    mllpi_tls_stream_write(c->tls, &v, 1, c->wr_off, &taken);
		c->wr_off += taken;
		if (rc < 0) {
			mllpi_rconn_fail(c, rc, "TLS write failed");
			return;
		}
	}
	if (c->wr.len > 0 && c->wr_off == c->wr.len) {
		c->tls_replies += c->wr.replies;
		c->wr.len = 0;
		c->wr.replies = 0;
		c->wr_off = 0;
	}
}

void mllpi_rtls_on_data(struct rconn *c, const unsigned char *p, size_t len)
{
	mllpi_tls_stream_on_recv(c->tls, p, len);
	if (!c->closing)
		mllpi_rtls_flush(c);
	mllpi_rconn_check_eof(c);
}

void mllpi_rtls_on_sent(struct rconn *c, const struct mllpi_cqe *cq)
{
	mllpi_tls_stream_on_sent(c->tls, cq->res);
	mllpi_rconn_reap(c);
}

void mllpi_rtls_close(struct rconn *c, enum mllp_close_reason why)
{
	/* close_notify, best effort: on an orderly close of ours, and in
	 * answer to the peer's (a close by the peer without one is not
	 * answered). */
	bool notify =
	    c->tls_up && why != MLLP_CLOSE_ERROR &&
	    (why != MLLP_CLOSE_PEER || mllp_tls_conn_close_notify_received(
					   mllpi_tls_stream_engine(c->tls)));
	mllpi_tls_stream_close(c->tls, notify);
}

/* libmllp: driving a TLS connection (wolfSSL): handshake, writes, reads,
 * shutdown.
 *
 * Every call that cannot progress answers MLLP_ERR_WOULD_BLOCK: wolfSSL met
 * an empty in buffer or a full out buffer (tls_mem.c). wolfSSL's rule that
 * a write which met WANT_WRITE must be repeated with the same buffer and
 * length is kept by copying that chunk into the connection ("held" bytes)
 * and repeating it from there, so the caller may reuse its buffer at once.
 * A failure is named by tls_fail.c and stays (sticky). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#include "tls_internal.h"

int mllp_tls_conn_handshake(struct mllp_tls_conn *c, struct mllp_error *err)
{
	int ret, e;

	if (c->fail_rc != 0)
		return mllpi_tls_sticky(c, err);
	if (c->done)
		return 0;
	c->started = true;
	for (int again = 0;; again++) {
		ret = c->ctx->server ? wolfSSL_accept(c->ssl)
				     : wolfSSL_connect(c->ssl);
		if (ret == WOLFSSL_SUCCESS)
			break;
		e = wolfSSL_get_error(c->ssl, ret);
		if (e == WOLFSSL_ERROR_WANT_READ ||
		    e == WOLFSSL_ERROR_WANT_WRITE)
			return MLLP_ERR_WOULD_BLOCK;
		if (e != WOLFSSL_ERROR_NONE)
			return mllpi_tls_fail(c, e, err);
		/* wolfSSL 5.5.4 answers -1 with no error after sending the
		 * last piece of a message that met WANT_WRITE: it wants to be
		 * called again. Do so while it progresses. */
		if (mllpi_tls_avail(&c->out) >= c->ctx->max_out)
			return MLLP_ERR_WOULD_BLOCK;
		if (again == 16)
			return mllpi_tls_fail(c, e, err);
	}
	c->done = true;
	if (c->peer_name == NULL)
		return mllpi_tls_late_peer_name(c, err);
	return 0;
}

/* One wolfSSL_write of n bytes at p; on WANT_WRITE the bytes are held
 * (copied unless p already is the held buffer). Returns 0 (all taken),
 * MLLP_ERR_WOULD_BLOCK (held), or an error. */
static int mllpi_write_chunk(struct mllp_tls_conn *c, const void *p, size_t n,
			     struct mllp_error *err)
{
	int ret = wolfSSL_write(c->ssl, p, (int)n);
	int e;

	if (ret > 0) {
		c->held_len = 0;
		c->send_blocked = false;
		return 0;
	}
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ ||
	    e == WOLFSSL_ERROR_NONE) {
		/* NONE: see mllp_tls_conn_handshake; repeat the same bytes. */
		if (p != c->held) {
			if (c->held == NULL &&
			    (c->held = malloc(MLLPI_TLS_CHUNK)) == NULL) {
				/* wolfSSL holds part of this chunk already:
				 * the connection cannot go on. */
				c->failure = MLLP_TLS_FAIL_INTERNAL;
				c->fail_rc = MLLP_ERR_NO_MEMORY;
				mllp_error_set(&c->fail_err, MLLP_CTX_TLS,
					       MLLP_ERR_NO_MEMORY, NULL);
				return mllpi_tls_sticky(c, err);
			}
			memcpy(c->held, p, n);
			c->held_len = n;
		}
		return MLLP_ERR_WOULD_BLOCK;
	}
	if (e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED, NULL);
		return MLLP_ERR_CLOSED;
	}
	return mllpi_tls_fail(c, e, err);
}

int mllp_tls_conn_flush(struct mllp_tls_conn *c, struct mllp_error *err)
{
	if (c->fail_rc != 0)
		return mllpi_tls_sticky(c, err);
	if (c->held_len == 0)
		return 0;
	return mllpi_write_chunk(c, c->held, c->held_len, err);
}

size_t mllp_tls_conn_write_pending(const struct mllp_tls_conn *c)
{
	return c->held_len;
}

int mllp_tls_conn_write(struct mllp_tls_conn *c, const void *buf, size_t len,
			size_t *written, struct mllp_error *err)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int rc;

	*written = 0;
	if (c->fail_rc != 0)
		return mllpi_tls_sticky(c, err);
	if (!c->done) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_BAD_STATE,
			       "TLS write before the handshake completed");
		return MLLP_ERR_BAD_STATE;
	}
	rc = mllp_tls_conn_flush(c, err);
	if (rc != 0)
		return rc;
	while (done < len) {
		size_t n = len - done;

		if (mllpi_tls_avail(&c->out) >= c->ctx->max_out)
			break; /* full: nothing more taken now */
		if (n > MLLPI_TLS_CHUNK)
			n = MLLPI_TLS_CHUNK;
		rc = mllpi_write_chunk(c, p + done, n, err);
		if (rc == MLLP_ERR_WOULD_BLOCK) {
			done += n; /* held by the engine */
			break;
		}
		if (rc != 0) {
			if (done > 0)
				break; /* report what was taken */
			return rc;
		}
		done += n;
	}
	*written = done;
	if (done == 0 && len > 0)
		return MLLP_ERR_WOULD_BLOCK;
	return 0;
}

int mllp_tls_conn_read(struct mllp_tls_conn *c, void *buf, size_t cap,
		       size_t *got, struct mllp_error *err)
{
	int ret, e;

	*got = 0;
	if (c->fail_rc != 0)
		return mllpi_tls_sticky(c, err);
	if (!c->done) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_BAD_STATE,
			       "TLS read before the handshake completed");
		return MLLP_ERR_BAD_STATE;
	}
	if (c->close_notify) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED, NULL);
		return MLLP_ERR_CLOSED;
	}
	/* Nothing to read: no ciphertext fed, no decrypted bytes left over,
	 * no output wolfSSL may want to retry, not at end of file. wolfSSL
	 * reads exactly the record it works on from the in buffer (no read
	 * ahead), so an empty in buffer means wolfSSL_read would only meet
	 * WANT_READ: answer "again" without the call (a wolfSSL_read that
	 * ends in WANT_READ walks the record layer and formats an error
	 * line: about 4 % of the engine's CPU per message). */
	if (mllpi_tls_avail(&c->in) == 0 && !c->eof && !c->send_blocked &&
	    c->held_len == 0 && wolfSSL_pending(c->ssl) == 0)
		return MLLP_ERR_WOULD_BLOCK;
	if (cap > INT_MAX)
		cap = INT_MAX;
	ret = wolfSSL_read(c->ssl, buf, (int)cap);
	if (ret > 0) {
		*got = (size_t)ret;
		return 0;
	}
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_READ) {
		c->send_blocked = false;
		return MLLP_ERR_WOULD_BLOCK;
	}
	if (e == WOLFSSL_ERROR_WANT_WRITE)
		return MLLP_ERR_WOULD_BLOCK;
	if (e == WOLFSSL_ERROR_ZERO_RETURN) {
		c->close_notify = true;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED,
			       "the peer closed the TLS connection "
			       "(close_notify)");
		return MLLP_ERR_CLOSED;
	}
	if (e == SOCKET_PEER_CLOSED_E ||
	    (c->eof && mllpi_tls_avail(&c->in) == 0 && e == SOCKET_ERROR_E)) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED,
			       "the peer closed the connection without "
			       "close_notify");
		return MLLP_ERR_CLOSED;
	}
	return mllpi_tls_fail(c, e, err);
}

int mllp_tls_conn_shutdown(struct mllp_tls_conn *c, struct mllp_error *err)
{
	int ret, e;

	if (!c->done || c->fail_rc != 0)
		return 0; /* nothing was established: just close */
	if (c->held_len > 0) {
		/* Finish the write wolfSSL is in the middle of first. */
		int rc = mllp_tls_conn_flush(c, err);

		if (rc != 0)
			return rc;
	}
	if (wolfSSL_get_shutdown(c->ssl) & WOLFSSL_SENT_SHUTDOWN)
		return 0;
	ret = wolfSSL_shutdown(c->ssl);
	if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
		return 0;
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ)
		return MLLP_ERR_WOULD_BLOCK;
	if (ret == 0 || e == WOLFSSL_ERROR_NONE ||
	    e == WOLFSSL_ERROR_ZERO_RETURN)
		return 0;
	mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
		       "cannot send close_notify: %s", mllpi_tls_wolf_text(e));
	return MLLP_ERR_TLS;
}

bool mllp_tls_conn_close_notify_received(const struct mllp_tls_conn *c)
{
	return c->close_notify;
}

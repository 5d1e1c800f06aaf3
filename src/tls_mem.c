/* libmllp: TLS connections (wolfSSL) over memory buffers.
 *
 * A connection never touches a socket or a clock. wolfSSL talks to two
 * custom I/O callbacks that read from the connection's in buffer
 * (ciphertext the caller fed) and append to its out buffer (ciphertext the
 * caller writes to the socket). An empty in buffer answers WANT_READ, a
 * full out buffer (max_out) WANT_WRITE: wolfSSL then returns and the caller
 * retries once it has moved bytes. This file creates and frees connections,
 * moves ciphertext in and out, and tells what a connection knows after the
 * handshake (version, cipher, peer, failure, session). tls_drive.c drives
 * the handshake, reads, writes and shutdown. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#include "tls_internal.h"

struct mllp_tls_session {
	WOLFSSL_SESSION *s;
};

/* ---- byte buffers -------------------------------------------------------- */

/* Append n bytes, compacting or growing as needed. */
int mllpi_tls_append(struct mllpi_bytes *b, const void *src, size_t n)
{
	if (b->off > 0 && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 4096;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return MLLP_ERR_NO_MEMORY;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static void mllpi_consume(struct mllpi_bytes *b, size_t n)
{
	if (n > mllpi_tls_avail(b))
		n = mllpi_tls_avail(b);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* ---- wolfSSL I/O callbacks ---------------------------------------------- */

static int mllpi_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct mllp_tls_conn *c = arg;
	size_t n = mllpi_tls_avail(&c->in);

	(void)ssl;
	if (n == 0)
		return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE
			      : WOLFSSL_CBIO_ERR_WANT_READ;
	if (sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, c->in.p + c->in.off, n);
	mllpi_consume(&c->in, n);
	return (int)n;
}

static int mllpi_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct mllp_tls_conn *c = arg;
	size_t pending = mllpi_tls_avail(&c->out);
	size_t room = pending < c->ctx->max_out ? c->ctx->max_out - pending : 0;
	size_t n;

	(void)ssl;
	if (sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (room == 0) {
		c->send_blocked = true;
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	}
	n = (size_t)sz < room ? (size_t)sz : room;
	if (mllpi_tls_append(&c->out, buf, n) != 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	return (int)n;
}

static int mllpi_ticket_cb(WOLFSSL *ssl, const unsigned char *ticket, int len,
			   void *arg)
{
	struct mllp_tls_conn *c = arg;

	(void)ssl;
	(void)ticket;
	if (len > 0)
		c->ticket = true;
	return 0;
}

/* Watches handshake messages: a client notes a CertificateRequest, so a
 * TLS 1.2 handshake_failure that follows can be read as "client
 * certificate required". */
static void mllpi_msg_cb(int write_p, int version, int content_type,
			 const void *buf, size_t len, WOLFSSL *ssl, void *arg)
{
	struct mllp_tls_conn *c = arg;
	const unsigned char *b = buf;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == 22 && len > 0 && b[0] == 13)
		c->cert_requested = true;
}

/* ---- connections --------------------------------------------------------- */

static int mllpi_conn_new(struct mllp_tls_ctx *t, bool server,
			  struct mllp_tls_conn **out, struct mllp_error *err)
{
	struct mllp_tls_conn *c;

	if (out == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	*out = NULL;
	if (t == NULL || t->server != server) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_INVALID_ARGUMENT,
			       "a %s connection needs a %s TLS context",
			       server ? "server" : "client",
			       server ? "server" : "client");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL || (c->ssl = wolfSSL_new(t->wctx)) == NULL) {
		free(c);
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	c->ctx = t;
	wolfSSL_SSLSetIORecv(c->ssl, mllpi_io_recv);
	wolfSSL_SSLSetIOSend(c->ssl, mllpi_io_send);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	wolfSSL_set_app_data(c->ssl, c);
	*out = c;
	return 0;
}

int mllp_tls_conn_new_client(struct mllp_tls_ctx *t, const char *host,
			     struct mllp_tls_conn **out, struct mllp_error *err)
{
	struct mllp_tls_conn *c;
	const char *name;
	unsigned char addr[sizeof(struct in6_addr)];
	int rc = mllpi_conn_new(t, false, out, err);

	if (rc != 0)
		return rc;
	c = *out;
	name = t->server_name != NULL ? t->server_name : host;
	if (name == NULL && t->verify) {
		mllp_tls_conn_free(c);
		*out = NULL;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_INVALID_ARGUMENT,
			       "no host name to verify the server certificate "
			       "against (set server_name)");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (name != NULL)
		snprintf(c->name, sizeof c->name, "%s", name);
	if (name != NULL && (inet_pton(AF_INET, name, addr) == 1 ||
			     inet_pton(AF_INET6, name, addr) == 1)) {
		/* An address: no SNI (RFC 6066), IP SAN check. */
		if (strlen(name) < sizeof c->ip)
			memcpy(c->ip, name, strlen(name) + 1);
	} else if (name != NULL) {
		if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, name,
				   (unsigned short)strlen(name)) !=
			WOLFSSL_SUCCESS ||
		    (t->verify && wolfSSL_check_domain_name(c->ssl, name) !=
				      WOLFSSL_SUCCESS)) {
			mllp_tls_conn_free(c);
			*out = NULL;
			mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "cannot use server name '%s'", name);
			return MLLP_ERR_TLS;
		}
	}
	wolfSSL_set_msg_callback(c->ssl, mllpi_msg_cb);
	wolfSSL_set_msg_callback_arg(c->ssl, c);
	/* UseSessionTicket: TLS 1.2 tickets too (else 1.2 resumes by
	 * session id only, from the server's small fixed-size cache). */
	if (t->resume &&
	    (wolfSSL_set_SessionTicket_cb(c->ssl, mllpi_ticket_cb, c) !=
		 WOLFSSL_SUCCESS ||
	     wolfSSL_UseSessionTicket(c->ssl) != WOLFSSL_SUCCESS)) {
		mllp_tls_conn_free(c);
		*out = NULL;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "cannot enable session tickets");
		return MLLP_ERR_TLS;
	}
	return 0;
}

int mllp_tls_conn_new_server(struct mllp_tls_ctx *t, struct mllp_tls_conn **out,
			     struct mllp_error *err)
{
	return mllpi_conn_new(t, true, out, err);
}

void mllp_tls_conn_free(struct mllp_tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL)
		wolfSSL_free(c->ssl);
	free(c->in.p);
	free(c->out.p);
	free(c->held);
	free(c->peer_name);
	free(c);
}

int mllp_tls_conn_feed(struct mllp_tls_conn *c, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!c->got_first) {
		c->got_first = true;
		c->first = *(const unsigned char *)data;
	}
	return mllpi_tls_append(&c->in, data, len);
}

void mllp_tls_conn_feed_eof(struct mllp_tls_conn *c)
{
	c->eof = true;
}

size_t mllp_tls_conn_out_peek(const struct mllp_tls_conn *c, const void **data)
{
	size_t n = mllpi_tls_avail(&c->out);

	*data = n != 0 ? c->out.p + c->out.off : NULL;
	return n;
}

void mllp_tls_conn_out_consume(struct mllp_tls_conn *c, size_t n)
{
	mllpi_consume(&c->out, n);
}

size_t mllp_tls_conn_out_pending(const struct mllp_tls_conn *c)
{
	return mllpi_tls_avail(&c->out);
}

size_t mllp_tls_conn_take_out(struct mllp_tls_conn *c, void *buf, size_t cap)
{
	size_t n = mllpi_tls_avail(&c->out);

	if (n > cap)
		n = cap;
	if (n != 0)
		memcpy(buf, c->out.p + c->out.off, n);
	mllpi_consume(&c->out, n);
	return n;
}

/* ---- after the handshake ------------------------------------------------ */

enum mllp_tls_failure mllp_tls_conn_failure(const struct mllp_tls_conn *c)
{
	return c->failure;
}

bool mllp_tls_conn_failure_by_peer(const struct mllp_tls_conn *c)
{
	return c->by_peer;
}

const char *mllp_tls_conn_peer_name(const struct mllp_tls_conn *c)
{
	return c->done ? c->peer_name : NULL;
}

const char *mllp_tls_conn_version(const struct mllp_tls_conn *c)
{
	const char *v = wolfSSL_get_version(c->ssl);

	return v != NULL ? v : "unknown";
}

const char *mllp_tls_conn_cipher(const struct mllp_tls_conn *c)
{
	const char *s = wolfSSL_get_cipher_name(c->ssl);

	return s != NULL ? s : "none";
}

bool mllp_tls_conn_session_reused(const struct mllp_tls_conn *c)
{
	return c->done && wolfSSL_session_reused(c->ssl) == 1;
}

/* ---- sessions ------------------------------------------------------------ */

struct mllp_tls_session *mllp_tls_conn_get_session(struct mllp_tls_conn *c)
{
	struct mllp_tls_session *s;
	WOLFSSL_SESSION *ws;

	if (c->ctx->server || !c->done || !c->ctx->resume || c->fail_rc != 0)
		return NULL;
	if (wolfSSL_version(c->ssl) == TLS1_3_VERSION && !c->ticket)
		return NULL; /* the NewSessionTicket was not read yet */
	ws = wolfSSL_get1_session(c->ssl);
	if (ws == NULL)
		return NULL;
	if (!wolfSSL_SESSION_is_resumable(ws) ||
	    (s = malloc(sizeof *s)) == NULL) {
		wolfSSL_SESSION_free(ws);
		return NULL;
	}
	s->s = ws;
	return s;
}

int mllp_tls_conn_set_session(struct mllp_tls_conn *c,
			      const struct mllp_tls_session *s)
{
	if (c->ctx->server || c->started || s == NULL)
		return MLLP_ERR_BAD_STATE;
	if (wolfSSL_set_session(c->ssl, s->s) != WOLFSSL_SUCCESS)
		return MLLP_ERR_TLS;
	return 0;
}

void mllp_tls_session_free(struct mllp_tls_session *s)
{
	if (s == NULL)
		return;
	wolfSSL_SESSION_free(s->s);
	free(s);
}

void mllp_tls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
	wc_ecc_fp_free(); /* this thread's ECC fixed-point cache */
#endif
}

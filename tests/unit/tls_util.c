/* Helpers of the test_tls program (see tls_util.h). */
#include "tls_util.h"

char certdir[PATH_MAX];

/* Path of a file in the certificate directory. The same name always gives
 * the same buffer, so configurations may keep the pointers. */
const char *cp(const char *name)
{
	static char names[64][32];
	static char paths[64][PATH_MAX + 64];
	static unsigned n;
	unsigned i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return paths[i];
	assert_true(n < 64 && strlen(name) < sizeof names[0]);
	snprintf(names[n], sizeof names[0], "%s", name);
	snprintf(paths[n], sizeof paths[0], "%s/%s", certdir, name);
	return paths[n++];
}

/* ---- helpers --------------------------------------------------------------
 */

void client_cfg(struct mllp_tls_client_config *c)
{
	mllp_tls_client_config_init(c);
	c->enabled = true;
	c->ca_file = cp("ca.pem");
}

void server_cfg(struct mllp_tls_server_config *s)
{
	mllp_tls_server_config_init(s);
	s->enabled = true;
	s->cert_file = cp("server.pem");
	s->key_file = cp("server.key");
}

/* Server requiring a client certificate from our CA. */
void mtls_cfg(struct mllp_tls_server_config *s)
{
	server_cfg(s);
	s->require_client_cert = true;
	s->client_ca_file = cp("ca.pem");
}

void client_cert(struct mllp_tls_client_config *c, const char *name)
{
	char f[64];

	snprintf(f, sizeof f, "%s.pem", name);
	c->cert_file = cp(f);
	snprintf(f, sizeof f, "%s.key", name);
	c->key_file = cp(f);
}

void pair_open(struct pair *p, const struct mllp_tls_client_config *cc,
	       const struct mllp_tls_server_config *sc, const char *host)
{
	struct mllp_error e;

	memset(p, 0, sizeof *p);
	assert_int_equal(mllp_tls_ctx_new_client(cc, &p->cctx, &e), 0);
	assert_int_equal(mllp_tls_ctx_new_server(sc, &p->sctx, &e), 0);
	assert_int_equal(mllp_tls_conn_new_client(p->cctx, host, &p->c, &e), 0);
	assert_int_equal(mllp_tls_conn_new_server(p->sctx, &p->s, &e), 0);
	p->crc = p->src = MLLP_ERR_WOULD_BLOCK;
}

/* A second client connection on the same contexts. */
void pair_reconnect(struct pair *p, const char *host)
{
	struct mllp_error e;

	mllp_tls_conn_free(p->c);
	mllp_tls_conn_free(p->s);
	assert_int_equal(mllp_tls_conn_new_client(p->cctx, host, &p->c, &e), 0);
	assert_int_equal(mllp_tls_conn_new_server(p->sctx, &p->s, &e), 0);
	p->crc = p->src = MLLP_ERR_WOULD_BLOCK;
}

void pair_close(struct pair *p)
{
	mllp_tls_conn_free(p->c);
	mllp_tls_conn_free(p->s);
	mllp_tls_ctx_free(p->cctx);
	mllp_tls_ctx_free(p->sctx);
}

/* Move pending ciphertext from one engine to the other, chunk bytes per
 * feed (0: all at once). Returns the bytes moved. */
size_t pump(struct mllp_tls_conn *from, struct mllp_tls_conn *to, size_t chunk)
{
	const void *d;
	size_t n = mllp_tls_conn_out_peek(from, &d);
	size_t moved = 0;

	while (n > 0) {
		size_t k = chunk != 0 && chunk < n ? chunk : n;

		assert_int_equal(mllp_tls_conn_feed(to, d, k), 0);
		mllp_tls_conn_out_consume(from, k);
		moved += k;
		n = mllp_tls_conn_out_peek(from, &d);
	}
	return moved;
}

/* Drive both handshakes until both ended (done or failed) and no byte
 * moves any more; bounded. */
void handshake(struct pair *p, size_t chunk)
{
	for (int i = 0; i < 100000; i++) {
		size_t moved;

		if (p->crc == MLLP_ERR_WOULD_BLOCK)
			p->crc = mllp_tls_conn_handshake(p->c, &p->cerr);
		if (p->src == MLLP_ERR_WOULD_BLOCK)
			p->src = mllp_tls_conn_handshake(p->s, &p->serr);
		moved = pump(p->c, p->s, chunk) + pump(p->s, p->c, chunk);
		if (moved == 0)
			return;
	}
	fail_msg("handshake did not settle");
}

void handshake_ok(struct pair *p, size_t chunk)
{
	handshake(p, chunk);
	if (p->crc != 0)
		fail_msg("client: %s", p->cerr.message);
	if (p->src != 0)
		fail_msg("server: %s", p->serr.message);
}

/* Send len bytes from a to b and check they arrive whole. */
void transfer(struct mllp_tls_conn *a, struct mllp_tls_conn *b, const void *msg,
	      size_t len, size_t chunk)
{
	unsigned char *got = malloc(len + 1);
	size_t sent = 0, recvd = 0;
	struct mllp_error e;

	assert_non_null(got);
	for (int i = 0; i < 1000000 && recvd < len; i++) {
		size_t w = 0, r = 0;
		int rc;

		if (sent < len) {
			rc = mllp_tls_conn_write(a, (const char *)msg + sent,
						 len - sent, &w, &e);
			assert_true(rc == 0 || rc == MLLP_ERR_WOULD_BLOCK);
			sent += w;
		} else {
			rc = mllp_tls_conn_flush(a, &e);
			assert_true(rc == 0 || rc == MLLP_ERR_WOULD_BLOCK);
		}
		pump(a, b, chunk);
		do {
			rc = mllp_tls_conn_read(b, got + recvd, len + 1 - recvd,
						&r, &e);
			if (rc == 0)
				recvd += r;
		} while (rc == 0 && recvd < len);
		if (rc != 0 && rc != MLLP_ERR_WOULD_BLOCK)
			fail_msg("read: %s", e.message);
		pump(b, a, chunk);
	}
	assert_int_equal(recvd, len);
	assert_memory_equal(got, msg, len);
	assert_int_equal(mllp_tls_conn_write_pending(a), 0);
	free(got);
}

const char frame[sizeof TLS_FRAME] = TLS_FRAME;
const char ack[sizeof TLS_ACK] = TLS_ACK;

void roundtrip(struct pair *p, size_t chunk)
{
	transfer(p->c, p->s, frame, sizeof frame - 1, chunk);
	transfer(p->s, p->c, ack, sizeof ack - 1, chunk);
}

void expect_contains(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		fail_msg("'%s' does not contain '%s'", s, sub);
}

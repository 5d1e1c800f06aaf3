/* The TLS engine, client against server, purely in memory: bytes are pumped
 * between two engines in a bounded loop. Certificates are made at run time
 * by tests/make_certs.sh (openssl CLI) into a temporary directory. */
#include "testutil.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mllp/error.h>
#include <mllp/tls.h>

/* Whether this wolfSSL accelerates AES (then the default prefers AES-GCM). */
#if defined(__has_include)
#if __has_include(<wolfssl/options.h>)
#include <wolfssl/options.h>
#if !defined(WOLFSSL_AESNI) && !defined(WOLFSSL_ARMASM)
#define MLLP_TEST_WOLFSSL_NO_AES_ACCEL 1
#endif
#endif
#endif

/* tests/ source directory, for make_certs.sh. The build defines it
 * (target_compile_definitions); without it, it is found from __FILE__
 * (absolute in CMake builds): <source>/tests/unit/test_tls.c. */
static void source_dir(char *buf, size_t cap)
{
#ifdef MLLP_TEST_SOURCE_DIR
	snprintf(buf, cap, "%s", MLLP_TEST_SOURCE_DIR);
#else
	char *slash;

	snprintf(buf, cap, "%s", __FILE__);
	for (int i = 0; i < 2; i++) {
		slash = strrchr(buf, '/');
		if (slash == NULL) {
			snprintf(buf, cap, "tests");
			return;
		}
		*slash = 0;
	}
#endif
}

static char certdir[PATH_MAX];

/* Path of a file in the certificate directory. The same name always gives
 * the same buffer, so configurations may keep the pointers. */
static const char *cp(const char *name)
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

static int group_setup(void **state)
{
	char cmd[3 * PATH_MAX + 64];
	char src[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(certdir, sizeof certdir, "%s/mllp-tls-XXXXXX",
		 tmp != NULL && *tmp != 0 ? tmp : "/tmp");
	if (mkdtemp(certdir) == NULL)
		return -1;
	source_dir(src, sizeof src);
	snprintf(cmd, sizeof cmd, "sh '%s/make_certs.sh' '%s'", src, certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers --------------------------------------------------------------
 */

static void client_cfg(struct mllp_tls_client_config *c)
{
	mllp_tls_client_config_init(c);
	c->enabled = true;
	c->ca_file = cp("ca.pem");
}

static void server_cfg(struct mllp_tls_server_config *s)
{
	mllp_tls_server_config_init(s);
	s->enabled = true;
	s->cert_file = cp("server.pem");
	s->key_file = cp("server.key");
}

/* Server requiring a client certificate from our CA. */
static void mtls_cfg(struct mllp_tls_server_config *s)
{
	server_cfg(s);
	s->require_client_cert = true;
	s->client_ca_file = cp("ca.pem");
}

static void client_cert(struct mllp_tls_client_config *c, const char *name)
{
	char f[64];

	snprintf(f, sizeof f, "%s.pem", name);
	c->cert_file = cp(f);
	snprintf(f, sizeof f, "%s.key", name);
	c->key_file = cp(f);
}

struct pair {
	struct mllp_tls_ctx *cctx, *sctx;
	struct mllp_tls_conn *c, *s;
	int crc, src;
	struct mllp_error cerr, serr;
};

static void pair_open(struct pair *p, const struct mllp_tls_client_config *cc,
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
static void pair_reconnect(struct pair *p, const char *host)
{
	struct mllp_error e;

	mllp_tls_conn_free(p->c);
	mllp_tls_conn_free(p->s);
	assert_int_equal(mllp_tls_conn_new_client(p->cctx, host, &p->c, &e), 0);
	assert_int_equal(mllp_tls_conn_new_server(p->sctx, &p->s, &e), 0);
	p->crc = p->src = MLLP_ERR_WOULD_BLOCK;
}

static void pair_close(struct pair *p)
{
	mllp_tls_conn_free(p->c);
	mllp_tls_conn_free(p->s);
	mllp_tls_ctx_free(p->cctx);
	mllp_tls_ctx_free(p->sctx);
}

/* Move pending ciphertext from one engine to the other, chunk bytes per
 * feed (0: all at once). Returns the bytes moved. */
static size_t pump(struct mllp_tls_conn *from, struct mllp_tls_conn *to,
		   size_t chunk)
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
static void handshake(struct pair *p, size_t chunk)
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

static void handshake_ok(struct pair *p, size_t chunk)
{
	handshake(p, chunk);
	if (p->crc != 0)
		fail_msg("client: %s", p->cerr.message);
	if (p->src != 0)
		fail_msg("server: %s", p->serr.message);
}

/* Send len bytes from a to b and check they arrive whole. */
static void transfer(struct mllp_tls_conn *a, struct mllp_tls_conn *b,
		     const void *msg, size_t len, size_t chunk)
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

static const char frame[] =
    "\x0bMSH|^~\\&|SEND|FAC|RECV|FAC|20260101120000||ADT^A01|MSG00001|P|"
    "2.5\rPID|1||12345^^^HOSP^MR||DOE^JOHN\r\x1c\r";
static const char ack[] = "\x0bMSH|^~\\&|RECV|FAC|SEND|FAC|20260101120001||"
			  "ACK^A01|ACK00001|P|2.5\rMSA|AA|MSG00001\r\x1c\r";

static void roundtrip(struct pair *p, size_t chunk)
{
	transfer(p->c, p->s, frame, sizeof frame - 1, chunk);
	transfer(p->s, p->c, ack, sizeof ack - 1, chunk);
}

/* After a TLS 1.3 handshake the client learns of a refusal at its first
 * read: read until the failure or a stall. */
static int client_read_fail(struct pair *p)
{
	unsigned char buf[256];
	size_t got;
	int rc = MLLP_ERR_WOULD_BLOCK;

	for (int i = 0; i < 8 && rc == MLLP_ERR_WOULD_BLOCK; i++) {
		pump(p->s, p->c, 0);
		rc = mllp_tls_conn_read(p->c, buf, sizeof buf, &got, &p->cerr);
	}
	return rc;
}

static void expect_contains(const char *s, const char *sub)
{
	if (strstr(s, sub) == NULL)
		fail_msg("'%s' does not contain '%s'", s, sub);
}

/* ---- successful handshakes ------------------------------------------------
 */

static void test_tls13_roundtrip(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	assert_false(mllp_tls_ctx_insecure(p.cctx));
	handshake_ok(&p, 0);
	assert_string_equal(mllp_tls_conn_version(p.c), "TLSv1.3");
	assert_string_equal(mllp_tls_conn_version(p.s), "TLSv1.3");
	assert_string_equal(mllp_tls_conn_peer_name(p.c), "localhost");
	assert_null(mllp_tls_conn_peer_name(p.s));
	assert_false(mllp_tls_conn_session_reused(p.c));
	assert_int_equal(mllp_tls_conn_failure(p.c), MLLP_TLS_FAIL_NONE);
	roundtrip(&p, 0);
	pair_close(&p);
}

static void test_tls12_roundtrip(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	client_cfg(&cc);
	cc.max_version = MLLP_TLS_VERSION_1_2;
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	assert_string_equal(mllp_tls_conn_version(p.c), "TLSv1.2");
	assert_string_equal(mllp_tls_conn_version(p.s), "TLSv1.2");
	roundtrip(&p, 0);
	pair_close(&p);
}

/* Every record arrives one byte per feed, both versions. */
static void test_one_byte_feeds(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	for (int v = 0; v < 2; v++) {
		client_cfg(&cc);
		cc.max_version =
		    v == 0 ? MLLP_TLS_VERSION_1_3 : MLLP_TLS_VERSION_1_2;
		server_cfg(&sc);
		pair_open(&p, &cc, &sc, "localhost");
		handshake_ok(&p, 1);
		roundtrip(&p, 1);
		pair_close(&p);
	}
}

/* An out buffer that takes 7 bytes at a time: handshakes and writes meet
 * WANT_WRITE over and over; a 100 KiB message still arrives whole. */
static void test_want_write(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	struct mllp_error e;
	size_t len = 100 * 1024, w = 0, blocked = 0;
	unsigned char *big = malloc(len);

	(void)state;
	assert_non_null(big);
	for (size_t i = 0; i < len; i++)
		big[i] = (unsigned char)(i * 31 + 7);
	client_cfg(&cc);
	cc.max_out = 7;
	server_cfg(&sc);
	sc.max_out = 7;
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	/* First write is taken (held after WANT_WRITE); the next answers
	 * "again" until the out buffer is drained. */
	assert_int_equal(mllp_tls_conn_write(p.c, big, len, &w, &e), 0);
	assert_true(w > 0 && w <= 16384);
	assert_true(mllp_tls_conn_write_pending(p.c) > 0);
	assert_true(mllp_tls_conn_out_pending(p.c) <= 7);
	assert_int_equal(mllp_tls_conn_write(p.c, big + w, len - w, &w, &e),
			 MLLP_ERR_WOULD_BLOCK);
	assert_int_equal(w, 0);
	assert_int_equal(mllp_tls_conn_flush(p.c, &e), MLLP_ERR_WOULD_BLOCK);
	blocked++;
	/* Start over on a fresh pair and let transfer() drive it all. */
	pair_close(&p);
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 3);
	transfer(p.c, p.s, big, len, 5);
	transfer(p.s, p.c, big, len, 0);
	roundtrip(&p, 2);
	pair_close(&p);
	assert_int_equal(blocked, 1);
	free(big);
}

static void test_ip_and_server_name(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	/* IP SAN */
	pair_open(&p, &cc, &sc, "127.0.0.1");
	handshake_ok(&p, 0);
	pair_close(&p);
	/* Host names are case-insensitive. */
	pair_open(&p, &cc, &sc, "LocalHost");
	handshake_ok(&p, 0);
	pair_close(&p);
	/* server_name overrides the host. */
	cc.server_name = "localhost";
	pair_open(&p, &cc, &sc, "db.example.org");
	handshake_ok(&p, 0);
	pair_close(&p);
	/* Trust from a CA directory. */
	client_cfg(&cc);
	cc.ca_file = NULL;
	cc.ca_path = cp("capath");
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	pair_close(&p);
	/* CN is used when there is no SAN. */
	client_cfg(&cc);
	sc.cert_file = cp("nosan.pem");
	sc.key_file = cp("nosan.key");
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	assert_string_equal(mllp_tls_conn_peer_name(p.c), "localhost");
	pair_close(&p);
}

/* ---- client-side verification failures ------------------------------------
 */

static void test_unknown_ca(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	sc.cert_file = cp("rogue.pem");
	sc.key_file = cp("rogue.key");
	pair_open(&p, &cc, &sc, "localhost");
	handshake(&p, 0);
	assert_int_equal(p.crc, MLLP_ERR_TLS);
	assert_int_equal(p.cerr.context, MLLP_CTX_TLS);
	assert_int_equal(p.cerr.reason, MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.c), MLLP_TLS_FAIL_UNKNOWN_CA);
	assert_false(mllp_tls_conn_failure_by_peer(p.c));
	expect_contains(p.cerr.message, "unknown CA");
	expect_contains(p.cerr.message, "rogue CA");
	/* The server learns it from the alert. */
	assert_int_equal(p.src, MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.s), MLLP_TLS_FAIL_UNKNOWN_CA);
	assert_true(mllp_tls_conn_failure_by_peer(p.s));
	expect_contains(p.serr.message, "client refused our certificate");
	/* Sticky: the handshake keeps answering the failure. */
	assert_int_equal(mllp_tls_conn_handshake(p.c, NULL), MLLP_ERR_TLS);
	pair_close(&p);
}

static void test_host_mismatch(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	static const char *const hosts[] = {"otherhost", "127.0.0.2",
					    "localhost.evil"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		client_cfg(&cc);
		server_cfg(&sc);
		pair_open(&p, &cc, &sc, hosts[i]);
		handshake(&p, 0);
		assert_int_equal(p.crc, MLLP_ERR_TLS);
		assert_int_equal(mllp_tls_conn_failure(p.c),
				 MLLP_TLS_FAIL_HOST_MISMATCH);
		expect_contains(p.cerr.message, "host name mismatch");
		assert_int_equal(p.src, MLLP_ERR_TLS);
		pair_close(&p);
	}
	/* The override is what is checked. */
	client_cfg(&cc);
	cc.server_name = "mllp.example.org";
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	handshake(&p, 0);
	assert_int_equal(mllp_tls_conn_failure(p.c),
			 MLLP_TLS_FAIL_HOST_MISMATCH);
	expect_contains(p.cerr.message, "mllp.example.org");
	pair_close(&p);
}

/* Verify none, explicit opt-in: a server from an unknown CA with a
 * different name is accepted. */
static void test_verify_none(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	struct mllp_tls_ctx *ctx;
	struct mllp_error e;

	(void)state;
	mllp_tls_client_config_init(&cc);
	/* verify on without trust anchors is refused */
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(ctx);
	expect_contains(e.message, "ca_file");
	cc.verify = MLLP_TLS_VERIFY_NONE;
	server_cfg(&sc);
	sc.cert_file = cp("rogue.pem");
	sc.key_file = cp("rogue.key");
	pair_open(&p, &cc, &sc, "anything.example");
	assert_true(mllp_tls_ctx_insecure(p.cctx));
	handshake_ok(&p, 0);
	assert_string_equal(mllp_tls_conn_peer_name(p.c), "localhost");
	roundtrip(&p, 0);
	pair_close(&p);
}

/* The client checks the server against a CRL too (not revoked: ok). */
static void test_client_crl_ok(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	client_cfg(&cc);
	cc.crl_file = cp("crl.pem");
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	pair_close(&p);
}

static void test_protocol_mismatch(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	/* Versions: client up to 1.2, server 1.3 only. */
	client_cfg(&cc);
	cc.max_version = MLLP_TLS_VERSION_1_2;
	server_cfg(&sc);
	sc.min_version = MLLP_TLS_VERSION_1_3;
	pair_open(&p, &cc, &sc, "localhost");
	handshake(&p, 0);
	assert_int_equal(p.src, MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.s),
			 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
	assert_int_equal(p.crc, MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.c),
			 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
	expect_contains(p.cerr.message, "protocol or cipher mismatch");
	pair_close(&p);
	/* Ciphers: no common TLS 1.2 suite. */
	client_cfg(&cc);
	cc.max_version = MLLP_TLS_VERSION_1_2;
	cc.cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256";
	server_cfg(&sc);
	sc.cipher_list = "ECDHE-ECDSA-CHACHA20-POLY1305";
	pair_open(&p, &cc, &sc, "localhost");
	handshake(&p, 0);
	assert_int_equal(mllp_tls_conn_failure(p.s),
			 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
	assert_int_equal(mllp_tls_conn_failure(p.c),
			 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
	assert_true(mllp_tls_conn_failure_by_peer(p.c));
	pair_close(&p);
}

/* ---- mutual TLS -----------------------------------------------------------
 */

static void test_mtls_ok(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	for (int v = 0; v < 2; v++) {
		client_cfg(&cc);
		client_cert(&cc, "client");
		cc.max_version =
		    v == 0 ? MLLP_TLS_VERSION_1_3 : MLLP_TLS_VERSION_1_2;
		mtls_cfg(&sc);
		sc.crl_file = cp("crl.pem");
		pair_open(&p, &cc, &sc, "localhost");
		handshake_ok(&p, 0);
		assert_string_equal(mllp_tls_conn_peer_name(p.s),
				    "client.example");
		roundtrip(&p, 0);
		pair_close(&p);
	}
}

/* allowed_clients: exact, case-insensitive, one of several, CN without
 * SAN; the matched name (as configured) is the peer name. */
static void test_mtls_allowed(void **state)
{
	static const char *const one[] = {"client.example"};
	static const char *const upper[] = {"CLIENT.EXAMPLE"};
	static const char *const several[] = {"a.example", "b.example",
					      "Client.Example", "c.example"};
	static const char *const mixed[] = {"client.mixed.example"};
	static const struct {
		const char *const *names;
		size_t n;
		const char *cert;
		const char *want;
	} cases[] = {
	    {one, 1, "client", "client.example"},
	    {upper, 1, "client", "CLIENT.EXAMPLE"},
	    {several, 4, "client", "Client.Example"},
	    {mixed, 1, "mixed", "client.mixed.example"},
	};
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		client_cfg(&cc);
		client_cert(&cc, cases[i].cert);
		mtls_cfg(&sc);
		sc.allowed_clients = cases[i].names;
		sc.n_allowed_clients = cases[i].n;
		pair_open(&p, &cc, &sc, "localhost");
		handshake_ok(&p, 0);
		assert_string_equal(mllp_tls_conn_peer_name(p.s),
				    cases[i].want);
		roundtrip(&p, 0);
		pair_close(&p);
	}
}

/* A resumed mutual-TLS session still names the client (allow-list). */
static void test_mtls_resumed(void **state)
{
	static const char *const allow[] = {"x.example", "CLIENT.example"};
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_session *sess;
	struct pair p;
	struct mllp_error e;
	unsigned char buf[16];
	size_t got;

	(void)state;
	for (int v = 0; v < 2; v++) {
		client_cfg(&cc);
		client_cert(&cc, "client");
		cc.max_version =
		    v == 0 ? MLLP_TLS_VERSION_1_3 : MLLP_TLS_VERSION_1_2;
		mtls_cfg(&sc);
		sc.allowed_clients = allow;
		sc.n_allowed_clients = 2;
		pair_open(&p, &cc, &sc, "localhost");
		handshake_ok(&p, 0);
		mllp_tls_conn_read(p.c, buf, sizeof buf, &got, &e);
		sess = mllp_tls_conn_get_session(p.c);
		assert_non_null(sess);
		pair_reconnect(&p, "localhost");
		assert_int_equal(mllp_tls_conn_set_session(p.c, sess), 0);
		handshake_ok(&p, 0);
		assert_true(mllp_tls_conn_session_reused(p.s));
		assert_non_null(mllp_tls_conn_peer_name(p.s));
		assert_string_equal(mllp_tls_conn_peer_name(p.s),
				    "CLIENT.example");
		assert_string_equal(mllp_tls_conn_peer_name(p.c), "localhost");
		roundtrip(&p, 0);
		mllp_tls_session_free(sess);
		pair_close(&p);
	}
}

/* Run a mutual-TLS handshake that the server refuses; check the server's
 * reason, and the client's (found at the handshake or first read). */
static void mtls_refused(const char *cert, int version,
			 const struct mllp_tls_server_config *sc,
			 enum mllp_tls_failure server_want,
			 enum mllp_tls_failure client_want,
			 const char *server_text)
{
	struct mllp_tls_client_config cc;
	struct pair p;

	client_cfg(&cc);
	if (cert != NULL)
		client_cert(&cc, cert);
	cc.max_version = version;
	pair_open(&p, &cc, sc, "localhost");
	handshake(&p, 0);
	if (p.src != MLLP_ERR_TLS)
		fail_msg("server accepted %s", cert != NULL ? cert : "none");
	assert_int_equal(p.serr.context, MLLP_CTX_TLS);
	if (mllp_tls_conn_failure(p.s) != server_want)
		fail_msg("server: %s: got %s want %s (%s)",
			 cert != NULL ? cert : "none",
			 mllp_tls_failure_name(mllp_tls_conn_failure(p.s)),
			 mllp_tls_failure_name(server_want), p.serr.message);
	assert_false(mllp_tls_conn_failure_by_peer(p.s));
	expect_contains(p.serr.message, server_text);
	if (p.crc == 0)
		assert_int_equal(client_read_fail(&p), MLLP_ERR_TLS);
	else
		assert_int_equal(p.crc, MLLP_ERR_TLS);
	if (mllp_tls_conn_failure(p.c) != client_want)
		fail_msg("client: %s: got %s want %s (%s)",
			 cert != NULL ? cert : "none",
			 mllp_tls_failure_name(mllp_tls_conn_failure(p.c)),
			 mllp_tls_failure_name(client_want), p.cerr.message);
	assert_true(mllp_tls_conn_failure_by_peer(p.c));
	expect_contains(p.cerr.message, "server");
	pair_close(&p);
}

static void test_mtls_refused(void **state)
{
	static const char *const allow[] = {"client.example"};
	struct mllp_tls_server_config sc, allow_sc, crl_sc;

	(void)state;
	mtls_cfg(&sc);
	mtls_cfg(&allow_sc);
	allow_sc.allowed_clients = allow;
	allow_sc.n_allowed_clients = 1;
	mtls_cfg(&crl_sc);
	crl_sc.crl_file = cp("crl.pem");
	for (int i = 0; i < 2; i++) {
		int v = i == 0 ? MLLP_TLS_VERSION_1_3 : MLLP_TLS_VERSION_1_2;

		mtls_refused(NULL, v, &sc, MLLP_TLS_FAIL_NO_CLIENT_CERT,
			     MLLP_TLS_FAIL_NO_CLIENT_CERT,
			     "no client certificate");
		mtls_refused("expired", v, &sc, MLLP_TLS_FAIL_CERT_EXPIRED,
			     MLLP_TLS_FAIL_CERT_EXPIRED, "certificate expired");
		mtls_refused("future", v, &sc, MLLP_TLS_FAIL_CERT_NOT_YET_VALID,
			     MLLP_TLS_FAIL_CERT_EXPIRED,
			     "certificate not yet valid");
		mtls_refused("revoked", v, &crl_sc, MLLP_TLS_FAIL_CERT_REVOKED,
			     MLLP_TLS_FAIL_CERT_REVOKED, "certificate revoked");
		mtls_refused("rogue", v, &sc, MLLP_TLS_FAIL_UNKNOWN_CA,
			     MLLP_TLS_FAIL_UNKNOWN_CA, "unknown CA");
		mtls_refused("other", v, &allow_sc,
			     MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED,
			     MLLP_TLS_FAIL_BAD_CERT, "intruder.example");
		/* A server certificate (serverAuth only) as client cert. */
		mtls_refused("server", v, &sc, MLLP_TLS_FAIL_BAD_CERT,
			     MLLP_TLS_FAIL_BAD_CERT, "certificate rejected");
	}
}

/* ---- close, not TLS, resumption ------------------------------------------ */

static void test_close_notify(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	struct mllp_error e;
	unsigned char buf[64];
	size_t got;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	roundtrip(&p, 0);
	assert_int_equal(mllp_tls_conn_shutdown(p.c, &e), 0);
	assert_true(mllp_tls_conn_out_pending(p.c) > 0);
	pump(p.c, p.s, 0);
	assert_int_equal(mllp_tls_conn_read(p.s, buf, sizeof buf, &got, &e),
			 MLLP_ERR_CLOSED);
	assert_true(mllp_tls_conn_close_notify_received(p.s));
	assert_int_equal(mllp_tls_conn_failure(p.s), MLLP_TLS_FAIL_NONE);
	assert_int_equal(mllp_tls_conn_shutdown(p.s, &e), 0);
	pair_close(&p);

	/* A bare EOF is a close too, but not an orderly one. */
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	mllp_tls_conn_feed_eof(p.s);
	assert_int_equal(mllp_tls_conn_read(p.s, buf, sizeof buf, &got, &e),
			 MLLP_ERR_CLOSED);
	assert_false(mllp_tls_conn_close_notify_received(p.s));
	pair_close(&p);

	/* EOF during the handshake. */
	pair_open(&p, &cc, &sc, "localhost");
	assert_int_equal(mllp_tls_conn_handshake(p.c, &e),
			 MLLP_ERR_WOULD_BLOCK);
	mllp_tls_conn_feed_eof(p.c);
	assert_int_equal(mllp_tls_conn_handshake(p.c, &e), MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.c), MLLP_TLS_FAIL_CLOSED);
	expect_contains(e.message, "closed");
	pair_close(&p);
}

/* Plaintext MLLP against a TLS engine, both ways. */
static void test_not_tls(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	struct mllp_error e;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	assert_int_equal(mllp_tls_conn_feed(p.s, frame, sizeof frame - 1), 0);
	assert_int_equal(mllp_tls_conn_handshake(p.s, &e), MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.s), MLLP_TLS_FAIL_NOT_TLS);
	expect_contains(e.message, "client does not speak TLS");
	/* A plaintext server answers the client hello with an ACK. */
	assert_int_equal(mllp_tls_conn_handshake(p.c, &e),
			 MLLP_ERR_WOULD_BLOCK);
	assert_int_equal(mllp_tls_conn_feed(p.c, ack, sizeof ack - 1), 0);
	assert_int_equal(mllp_tls_conn_handshake(p.c, &e), MLLP_ERR_TLS);
	assert_int_equal(mllp_tls_conn_failure(p.c), MLLP_TLS_FAIL_NOT_TLS);
	expect_contains(e.message, "server does not speak TLS");
	pair_close(&p);
}

static void resume(int version)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_session *sess;
	struct pair p;
	struct mllp_error e;
	unsigned char buf[16];
	size_t got;

	client_cfg(&cc);
	cc.max_version = version;
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	/* Before the handshake: no session, cannot set later. */
	assert_null(mllp_tls_conn_get_session(p.c));
	handshake_ok(&p, 0);
	if (version == MLLP_TLS_VERSION_1_3) {
		/* The ticket was pumped but not read yet. */
		assert_null(mllp_tls_conn_get_session(p.c));
		assert_int_equal(
		    mllp_tls_conn_read(p.c, buf, sizeof buf, &got, &e),
		    MLLP_ERR_WOULD_BLOCK);
	}
	sess = mllp_tls_conn_get_session(p.c);
	assert_non_null(sess);
	assert_int_equal(mllp_tls_conn_set_session(p.c, sess),
			 MLLP_ERR_BAD_STATE);
	assert_int_equal(mllp_tls_conn_set_session(p.s, sess),
			 MLLP_ERR_BAD_STATE);
	roundtrip(&p, 0);

	pair_reconnect(&p, "localhost");
	assert_int_equal(mllp_tls_conn_set_session(p.c, sess), 0);
	handshake_ok(&p, 0);
	assert_true(mllp_tls_conn_session_reused(p.c));
	assert_true(mllp_tls_conn_session_reused(p.s));
	roundtrip(&p, 0);
	mllp_tls_session_free(sess);
	pair_close(&p);

	/* Resumption off: no session offered. */
	client_cfg(&cc);
	cc.max_version = version;
	cc.session_resumption = false;
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	roundtrip(&p, 0);
	assert_null(mllp_tls_conn_get_session(p.c));
	pair_close(&p);
}

static void test_resumption_tls13(void **state)
{
	(void)state;
	resume(MLLP_TLS_VERSION_1_3);
}

static void test_resumption_tls12(void **state)
{
	(void)state;
	resume(MLLP_TLS_VERSION_1_2);
}

/* ---- configuration errors -------------------------------------------------
 */

static void test_bad_files(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_ctx *ctx = (struct mllp_tls_ctx *)&ctx;
	struct mllp_error e;

	(void)state;
	client_cfg(&cc);
	cc.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	assert_null(ctx);
	assert_int_equal(e.context, MLLP_CTX_TLS);
	expect_contains(e.message, "ca_file '/nonexistent/ca.pem'");
	expect_contains(e.message, "No such file");

	/* Not a certificate. */
	client_cfg(&cc);
	cc.ca_file = cp("ca.cnf");
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "ca.cnf");

	client_cfg(&cc);
	client_cert(&cc, "client");
	cc.key_file = cp("missing.key");
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "key_file");
	expect_contains(e.message, "missing.key");

	/* Key of another certificate. */
	client_cfg(&cc);
	cc.cert_file = cp("client.pem");
	cc.key_file = cp("other.key");
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "other.key");
	expect_contains(e.message, "does not match");

	/* Cert without key. */
	client_cfg(&cc);
	cc.cert_file = cp("client.pem");
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e),
			 MLLP_ERR_INVALID_ARGUMENT);

	client_cfg(&cc);
	cc.crl_file = cp("nope.crl");
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "crl_file");

	client_cfg(&cc);
	cc.cipher_list = "NO-SUCH-CIPHER";
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "NO-SUCH-CIPHER");

	client_cfg(&cc);
	cc.min_version = MLLP_TLS_VERSION_1_3;
	cc.max_version = MLLP_TLS_VERSION_1_2;
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e),
			 MLLP_ERR_INVALID_ARGUMENT);

	server_cfg(&sc);
	sc.cert_file = cp("nope.pem");
	assert_int_equal(mllp_tls_ctx_new_server(&sc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "cert_file");
	expect_contains(e.message, "nope.pem");

	server_cfg(&sc);
	sc.key_file = cp("client.key");
	assert_int_equal(mllp_tls_ctx_new_server(&sc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "does not match");

	server_cfg(&sc);
	sc.require_client_cert = true;
	assert_int_equal(mllp_tls_ctx_new_server(&sc, &ctx, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	expect_contains(e.message, "client_ca_file");

	mtls_cfg(&sc);
	sc.client_ca_file = cp("gone.pem");
	assert_int_equal(mllp_tls_ctx_new_server(&sc, &ctx, &e), MLLP_ERR_TLS);
	expect_contains(e.message, "client_ca_file");

	/* The system store (when the machine has one). */
	client_cfg(&cc);
	cc.ca_file = NULL;
	cc.use_system_cas = true;
	if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
		assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &e), 0);
		mllp_tls_ctx_free(ctx);
	}

	/* A server context cannot make client connections, and vice versa. */
	server_cfg(&sc);
	assert_int_equal(mllp_tls_ctx_new_server(&sc, &ctx, &e), 0);
	{
		struct mllp_tls_conn *c;

		assert_int_equal(mllp_tls_conn_new_client(ctx, "x", &c, &e),
				 MLLP_ERR_INVALID_ARGUMENT);
		assert_null(c);
	}
	mllp_tls_ctx_free(ctx);
}

static void test_failure_names(void **state)
{
	(void)state;
	assert_string_equal(mllp_tls_failure_text(MLLP_TLS_FAIL_UNKNOWN_CA),
			    "unknown CA");
	assert_string_equal(
	    mllp_tls_failure_name(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
	    "handshake_timeout");
	assert_string_equal(mllp_tls_failure_text((enum mllp_tls_failure)999),
			    "unknown TLS failure");
	for (int f = MLLP_TLS_FAIL_NONE; f <= MLLP_TLS_FAIL_INTERNAL; f++) {
		assert_non_null(mllp_tls_failure_text(f));
		assert_string_not_equal(mllp_tls_failure_name(f), "unknown");
	}
}

/* Several records fed at once, read with small and large buffers: every
 * byte comes out, then "again" (the engine skips wolfSSL_read when nothing
 * is left). A read with nothing fed answers "again" too. */
static void test_records_at_once(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;
	struct mllp_error e;
	unsigned char got[4 * sizeof frame];
	size_t w, r, total = 0;
	int rc;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	assert_int_equal(mllp_tls_conn_read(p.s, got, sizeof got, &r, &e),
			 MLLP_ERR_WOULD_BLOCK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    mllp_tls_conn_write(p.c, frame, sizeof frame - 1, &w, &e),
		    0);
		assert_int_equal(w, sizeof frame - 1);
	}
	pump(p.c, p.s, 0);
	/* A small buffer first: the rest of the record stays decrypted. */
	assert_int_equal(mllp_tls_conn_read(p.s, got, 10, &r, &e), 0);
	assert_int_equal(r, 10);
	total = r;
	while ((rc = mllp_tls_conn_read(p.s, got + total, sizeof got - total,
					&r, &e)) == 0)
		total += r;
	assert_int_equal(rc, MLLP_ERR_WOULD_BLOCK);
	assert_int_equal(total, 3 * (sizeof frame - 1));
	for (int i = 0; i < 3; i++)
		assert_memory_equal(got + i * (sizeof frame - 1), frame,
				    sizeof frame - 1);
	roundtrip(&p, 0);
	pair_close(&p);
}

/* ---- cipher suites --------------------------------------------------------
 */

/* The first suite of a cipher list usable here: TLS 1.3 ("TLS13-...") or
 * TLS 1.2 with the test server's ECDSA key ("ECDHE-ECDSA-..."). */
static void first_suite(const char *list, bool tls13, char *out, size_t cap)
{
	const char *want = tls13 ? "TLS13-" : "ECDHE-ECDSA-";
	const char *p = list;

	for (;;) {
		const char *end = strchr(p, ':');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

		if (strncmp(p, want, strlen(want)) == 0 && n < cap) {
			memcpy(out, p, n);
			out[n] = 0;
			return;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	fail_msg("no %s suite in '%s'", want, list);
}

/* Handshake with the given lists and version; returns the client's
 * negotiated suite (the server must agree). */
static void negotiate(const char *clist, const char *slist, bool tls13,
		      char *out, size_t cap)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct pair p;

	client_cfg(&cc);
	cc.cipher_list = clist;
	if (!tls13)
		cc.max_version = MLLP_TLS_VERSION_1_2;
	server_cfg(&sc);
	sc.cipher_list = slist;
	pair_open(&p, &cc, &sc, "localhost");
	handshake_ok(&p, 0);
	assert_string_equal(mllp_tls_conn_cipher(p.c),
			    mllp_tls_conn_cipher(p.s));
	snprintf(out, cap, "%s", mllp_tls_conn_cipher(p.c));
	roundtrip(&p, 0);
	pair_close(&p);
}

/* Without cipher_list both ends use mllp_tls_default_cipher_list():
 * ChaCha20-Poly1305 first when AES has no hardware support in wolfSSL, and
 * the receiver's order decides. A configured list still overrides. */
static void test_default_ciphers(void **state)
{
	const char *list = mllp_tls_default_cipher_list();
	char want[64], got[64];

	(void)state;
	assert_non_null(list);
	expect_contains(list, "TLS13-CHACHA20-POLY1305-SHA256");
	expect_contains(list, "TLS13-AES128-GCM-SHA256");
	expect_contains(list, "ECDHE-ECDSA-CHACHA20-POLY1305");
	expect_contains(list, "ECDHE-RSA-AES128-GCM-SHA256");
	for (const char *const *w =
		 (const char *const[]){"NULL", "RC4", "DES", "ADH", "PSK",
				       "CBC", "-SHA:", "CCM", "TLS13-SHA",
				       "EXP", "MD5", "CAMELLIA", NULL};
	     *w != NULL; w++)
		if (strstr(list, *w) != NULL)
			fail_msg("'%s' in the default list '%s'", *w, list);
#if defined(MLLP_TEST_WOLFSSL_NO_AES_ACCEL)
	assert_int_equal(strncmp(list, "TLS13-CHACHA20-POLY1305-SHA256", 30),
			 0);
#endif
	/* Defaults on both ends: the list's first suite, both versions. */
	first_suite(list, true, want, sizeof want);
	negotiate(NULL, NULL, true, got, sizeof got);
	assert_string_equal(got, want);
	first_suite(list, false, want, sizeof want);
	negotiate(NULL, NULL, false, got, sizeof got);
	assert_string_equal(got, want);
	/* The receiver's preference wins over the client's order. */
	first_suite(list, true, want, sizeof want);
	negotiate("TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:"
		  "TLS13-CHACHA20-POLY1305-SHA256",
		  NULL, true, got, sizeof got);
	assert_string_equal(got, want);
	/* An empty list is the default list too. */
	first_suite(list, true, want, sizeof want);
	negotiate("", "", true, got, sizeof got);
	assert_string_equal(got, want);
	/* A configured list overrides, on either end. */
	negotiate("TLS13-AES128-GCM-SHA256", NULL, true, got, sizeof got);
	assert_string_equal(got, "TLS13-AES128-GCM-SHA256");
	negotiate(NULL, "TLS13-AES256-GCM-SHA384", true, got, sizeof got);
	assert_string_equal(got, "TLS13-AES256-GCM-SHA384");
	negotiate("ECDHE-ECDSA-AES128-GCM-SHA256", NULL, false, got,
		  sizeof got);
	assert_string_equal(got, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

/* A default client refuses a server that offers only weak suites (NULL
 * encryption, RC4, 3DES, CBC with SHA-1), and a default server such a
 * client. (wolfSSL's own defaults in Debian's build accept all of them.) */
static void test_default_refuses_weak(void **state)
{
	static const char *const weak[] = {
	    "TLS13-SHA256-SHA256", "ECDHE-ECDSA-NULL-SHA",
	    "ECDHE-ECDSA-RC4-SHA", "ECDHE-ECDSA-DES-CBC3-SHA",
	    "ECDHE-ECDSA-AES128-SHA"};
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_ctx *sctx;
	struct mllp_error e;
	struct pair p;

	(void)state;
	for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
		client_cfg(&cc);
		cc.cipher_list = i % 2 ? "" : NULL; /* both mean default */
		server_cfg(&sc);
		sc.cipher_list = weak[i];
		if (strncmp(weak[i], "TLS13-", 6) != 0)
			sc.max_version = MLLP_TLS_VERSION_1_2;
		if (mllp_tls_ctx_new_server(&sc, &sctx, &e) != 0)
			continue; /* not in this wolfSSL at all */
		mllp_tls_ctx_free(sctx);
		pair_open(&p, &cc, &sc, "localhost");
		handshake(&p, 0);
		if (p.crc == 0 || p.src == 0)
			fail_msg("'%s' negotiated by default", weak[i]);
		assert_int_equal(mllp_tls_conn_failure(p.s),
				 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
		pair_close(&p);
		/* The other way round. */
		client_cfg(&cc);
		cc.cipher_list = weak[i];
		if (strncmp(weak[i], "TLS13-", 6) != 0)
			cc.max_version = MLLP_TLS_VERSION_1_2;
		server_cfg(&sc);
		pair_open(&p, &cc, &sc, "localhost");
		handshake(&p, 0);
		if (p.crc == 0 || p.src == 0)
			fail_msg("'%s' accepted by default", weak[i]);
		assert_int_equal(mllp_tls_conn_failure(p.s),
				 MLLP_TLS_FAIL_PROTOCOL_MISMATCH);
		pair_close(&p);
	}
}

/* CPU per full and resumed handshake (both ends, one thread). */
static void test_handshake_cost(void **state)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_session *sess;
	struct pair p;
	struct mllp_error e;
	unsigned char buf[16];
	size_t got;
	enum { N = 50 };
	clock_t t0;
	double full, resumed;

	(void)state;
	client_cfg(&cc);
	server_cfg(&sc);
	pair_open(&p, &cc, &sc, "localhost");
	t0 = clock();
	for (int i = 0; i < N; i++) {
		if (i > 0)
			pair_reconnect(&p, "localhost");
		handshake_ok(&p, 0);
	}
	full = (double)(clock() - t0) / CLOCKS_PER_SEC / N * 1e3;
	mllp_tls_conn_read(p.c, buf, sizeof buf, &got, &e);
	sess = mllp_tls_conn_get_session(p.c);
	assert_non_null(sess);
	t0 = clock();
	for (int i = 0; i < N; i++) {
		pair_reconnect(&p, "localhost");
		assert_int_equal(mllp_tls_conn_set_session(p.c, sess), 0);
		handshake_ok(&p, 0);
		assert_true(mllp_tls_conn_session_reused(p.c));
	}
	resumed = (double)(clock() - t0) / CLOCKS_PER_SEC / N * 1e3;
	print_message("TLS 1.3 ECDSA P-256 handshake CPU (both ends): full "
		      "%.2f ms, resumed %.2f ms\n",
		      full, resumed);
	mllp_tls_session_free(sess);
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failure_names),
	    cmocka_unit_test(test_tls13_roundtrip),
	    cmocka_unit_test(test_tls12_roundtrip),
	    cmocka_unit_test(test_one_byte_feeds),
	    cmocka_unit_test(test_want_write),
	    cmocka_unit_test(test_ip_and_server_name),
	    cmocka_unit_test(test_unknown_ca),
	    cmocka_unit_test(test_host_mismatch),
	    cmocka_unit_test(test_verify_none),
	    cmocka_unit_test(test_client_crl_ok),
	    cmocka_unit_test(test_protocol_mismatch),
	    cmocka_unit_test(test_mtls_ok),
	    cmocka_unit_test(test_mtls_allowed),
	    cmocka_unit_test(test_mtls_refused),
	    cmocka_unit_test(test_mtls_resumed),
	    cmocka_unit_test(test_close_notify),
	    cmocka_unit_test(test_not_tls),
	    cmocka_unit_test(test_resumption_tls13),
	    cmocka_unit_test(test_resumption_tls12),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_records_at_once),
	    cmocka_unit_test(test_default_ciphers),
	    cmocka_unit_test(test_default_refuses_weak),
	    cmocka_unit_test(test_handshake_cost),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

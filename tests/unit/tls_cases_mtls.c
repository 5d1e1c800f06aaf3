/* Part of the test_tls program (tls_util.h): mutual TLS, close_notify, a
 * peer that does not speak TLS, session resumption. */
#include "tls_util.h"

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

/* ---- mutual TLS -----------------------------------------------------------
 */

void test_mtls_ok(void **state)
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
void test_mtls_allowed(void **state)
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
void test_mtls_resumed(void **state)
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

void test_mtls_refused(void **state)
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

void test_close_notify(void **state)
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
void test_not_tls(void **state)
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

void test_resumption_tls13(void **state)
{
	(void)state;
	resume(MLLP_TLS_VERSION_1_3);
}

void test_resumption_tls12(void **state)
{
	(void)state;
	resume(MLLP_TLS_VERSION_1_2);
}

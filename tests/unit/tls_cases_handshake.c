/* Part of the test_tls program (tls_util.h): successful handshakes and
 * client-side verification failures. */
#include "tls_util.h"

/* ---- successful handshakes ------------------------------------------------
 */

void test_tls13_roundtrip(void **state)
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

void test_tls12_roundtrip(void **state)
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
void test_one_byte_feeds(void **state)
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
void test_want_write(void **state)
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

void test_ip_and_server_name(void **state)
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

void test_unknown_ca(void **state)
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

void test_host_mismatch(void **state)
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
void test_verify_none(void **state)
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
void test_client_crl_ok(void **state)
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

void test_protocol_mismatch(void **state)
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

/* Part of the test_tls program (tls_util.h): configuration errors,
 * failure names, records at once, cipher suites and handshake cost. */
#include "tls_util.h"

/* ---- configuration errors -------------------------------------------------
 */

void test_bad_files(void **state)
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

void test_failure_names(void **state)
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
void test_records_at_once(void **state)
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
void test_default_ciphers(void **state)
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
void test_default_refuses_weak(void **state)
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
void test_handshake_cost(void **state)
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

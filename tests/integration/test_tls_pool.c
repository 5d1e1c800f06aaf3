/* TLS between the pool and the receiver on loopback: ACKs over
 * TLS 1.2 and 1.3, host-name mismatch and unknown CA as tls errors, a
 * verify-none client (warned), session resumption on reconnect, mutual TLS
 * (no certificate, valid, allowed / not allowed / case-insensitive / one of
 * several names, expired, revoked, server certificate as client
 * certificate), bad file paths at start, the receiver's handshake timeout,
 * a 1 MiB message and many connections handshaking at once (against peers
 * that do not speak TLS: test_tls_peer.c).
 * Certificates are made at run time by tests/make_certs.sh. Ephemeral ports;
 * every wait is bounded. Backend: MLLP_TEST_BACKEND (common.h). */
#include <limits.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "common.h"
#include "testutil.h"
#include "tls_helpers.h"

/* ---- tests -------------------------------------------------------------- */

static void tls_version_case(enum mllp_tls_version v, const char *name)
{
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	assert_false(cap_has(&s.log, "non secured socket"));
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	ct.min_version = v;
	ct.max_version = v;
	struct cli c;
	cli_open(&c, "localhost", s.port, &ct);
	for (int i = 0; i < 20; i++)
		expect_aa(&c);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(c.pool, &ps);
	assert_int_equal(ps.tls_handshakes, 1);
	close_pair(&c, &s);
	(void)name;
}

static void test_ack_tls13(void **state)
{
	(void)state;
	tls_version_case(MLLP_TLS_VERSION_1_3, "TLSv1.3");
}

static void test_ack_tls12(void **state)
{
	(void)state;
	tls_version_case(MLLP_TLS_VERSION_1_2, "TLSv1.2");
}

static void test_ip_address_host(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	struct srv s;
	struct mllp_tls_client_config ct;
	struct cli c;
	open_pair(&s, &st, &c, &ct, "127.0.0.1"); /* IP SAN */
	expect_aa(&c);
	close_pair(&c, &s);
}

static void test_host_mismatch(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	ct.server_name = "mllp.example.org";
	struct cli c;
	cli_open(&c, "127.0.0.1", s.port, &ct);
	expect_tls_error(&c, "host name");
	/* The next send fails at once with the last connect error. */
	expect_tls_error(&c, "host name");
	assert_int_equal(mllp_pool_connected_count(c.pool, c.ep), 0);
	assert_true(cap_has(&c.log, "host name"));
	close_pair(&c, &s);
}

static void test_unknown_ca(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	st.cert_file = cp("rogue.pem");
	st.key_file = cp("rogue.key");
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct cli c;
	cli_open(&c, "localhost", s.port, &ct);
	expect_tls_error(&c, "unknown CA");
	close_pair(&c, &s);
}

static void test_verify_none(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	st.cert_file = cp("rogue.pem");
	st.key_file = cp("rogue.key");
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	mllp_tls_client_config_init(&ct);
	ct.enabled = true;
	ct.verify = MLLP_TLS_VERIFY_NONE;
	struct cli c;
	cli_open(&c, "127.0.0.1", s.port, &ct);
	assert_true(cap_has(&c.log, "verify none"));
	expect_aa(&c);
	close_pair(&c, &s);
}

struct many {
	struct cli *c;
	uint32_t n;
};

/* Exactly n connections of the endpoint are up. */
static bool all_up(void *arg)
{
	struct many *m = arg;
	return mllp_pool_connected_count(m->c->pool, m->c->ep) == m->n;
}

static bool wait_conns(struct cli *c, uint32_t n, int ms)
{
	struct many m = {c, n};
	return wait_until(all_up, &m, ms);
}

/* One message, the idle connection dropped and reconnected, another. */
static void aa_reconnect_aa(struct cli *c)
{
	expect_aa(c);
	assert_true(wait_conns(c, 0, 5000));
	assert_true(wait_conns(c, 1, 5000));
	expect_aa(c);
}

/* The receiver drops the idle TLS connection; the pool reconnects and
 * resumes the session (TLS 1.3 ticket, and TLS 1.2). */
static void resume_case(enum mllp_tls_version v)
{
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start_ex(&s, &st, NULL, 0, 300);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	ct.max_version = v;
	struct cli c;
	cli_open(&c, "localhost", s.port, &ct);
	aa_reconnect_aa(&c);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(c.pool, &ps);
	assert_true(ps.tls_handshakes >= 2);
	assert_true(ps.tls_resumed >= 1);
	close_pair(&c, &s);
}

static void test_reconnect_resumes_13(void **state)
{
	(void)state;
	resume_case(MLLP_TLS_VERSION_1_3);
}

static void test_reconnect_resumes_12(void **state)
{
	(void)state;
	resume_case(MLLP_TLS_VERSION_1_2);
}

/* Mutual TLS with an allow-list: a resumed session is accepted again
 * (the name is checked against the certificate kept in the session). */
static void mtls_resume_case(enum mllp_tls_version v)
{
	struct mllp_tls_server_config st;
	mtls_cfg(&st);
	const char *allow[] = {"client.example"};
	struct srv s;
	srv_start_ex(&s, &st, allow, 1, 300);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	client_cert(&ct, "client");
	ct.max_version = v;
	struct cli c;
	cli_open(&c, "localhost", s.port, &ct);
	aa_reconnect_aa(&c);
	char name[256];
	srv_peer(&s, name, sizeof(name));
	assert_string_equal(name, "client.example");
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(c.pool, &ps);
	assert_true(ps.tls_resumed >= 1);
	close_pair(&c, &s);
}

static void test_mtls_resumed(void **state)
{
	(void)state;
	mtls_resume_case(MLLP_TLS_VERSION_1_3);
	mtls_resume_case(MLLP_TLS_VERSION_1_2);
}

/* Mutual TLS: returns the send status; name receives the peer name the
 * dispatcher saw. */
static int mtls_case(const char *client, const char *const *allowed,
		     size_t nallowed, const char *crl, char *name, size_t cap,
		     enum mllp_tls_version v)
{
	struct mllp_tls_server_config st;
	mtls_cfg(&st);
	st.crl_file = crl;
	struct srv s;
	srv_start_ex(&s, &st, allowed, nallowed, 0);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	ct.max_version = v;
	if (client)
		client_cert(&ct, client);
	struct cli c;
	cli_open(&c, "localhost", s.port, &ct);
	char m[256];
	int rc = send_msg(&c, HL7, sizeof(HL7) - 1, NULL, m, sizeof(m));
	if (name)
		srv_peer(&s, name, cap);
	if (rc != 0) {
		/* Refused: a TLS error naming the reason, at the client, and
		 * logged by the receiver. */
		if (rc != MLLP_ERR_TLS)
			fail_msg("want MLLP_ERR_TLS, got %d %s", rc, m);
		if (getenv("MLLP_TEST_VERBOSE"))
			fprintf(stderr, "  client %s: %s\n",
				client ? client : "(none)", m);
		struct mllp_receiver_stats rs;
		mllp_receiver_stats_init(&rs);
		for (int i = 0; i < 200; i++) {
			mllp_receiver_get_stats(s.r, &rs);
			if (rs.connections_refused > 0)
				break;
			usleep(10000);
		}
		assert_true(rs.connections_refused > 0);
		assert_true(cap_has(&s.log, "refused TLS connection"));
	}
	close_pair(&c, &s);
	return rc;
}

static void test_mtls_no_cert(void **state)
{
	(void)state;
	assert_int_equal(
	    mtls_case(NULL, NULL, 0, NULL, NULL, 0, MLLP_TLS_VERSION_DEFAULT),
	    MLLP_ERR_TLS);
	assert_int_equal(
	    mtls_case(NULL, NULL, 0, NULL, NULL, 0, MLLP_TLS_VERSION_1_2),
	    MLLP_ERR_TLS);
}

static void test_mtls_valid(void **state)
{
	(void)state;
	char name[256];
	assert_int_equal(mtls_case("client", NULL, 0, NULL, name, sizeof(name),
				   MLLP_TLS_VERSION_DEFAULT),
			 0);
	assert_string_equal(name, "client.example");
}

static void test_mtls_allowed(void **state)
{
	(void)state;
	const char *allow[] = {"client.example"};
	char name[256];
	assert_int_equal(mtls_case("client", allow, 1, NULL, name, sizeof(name),
				   MLLP_TLS_VERSION_DEFAULT),
			 0);
	assert_string_equal(name, "client.example");
}

static void test_mtls_not_allowed(void **state)
{
	(void)state;
	const char *allow[] = {"client.example"};
	assert_int_equal(mtls_case("other", allow, 1, NULL, NULL, 0,
				   MLLP_TLS_VERSION_DEFAULT),
			 MLLP_ERR_TLS);
	assert_int_equal(
	    mtls_case("other", allow, 1, NULL, NULL, 0, MLLP_TLS_VERSION_1_2),
	    MLLP_ERR_TLS);
}

static void test_mtls_case_insensitive(void **state)
{
	(void)state;
	const char *allow[] = {"client.mixed.example"};
	char name[256];
	assert_int_equal(mtls_case("mixed", allow, 1, NULL, name, sizeof(name),
				   MLLP_TLS_VERSION_DEFAULT),
			 0);
	assert_string_equal(name, "client.mixed.example");
	const char *allow2[] = {"CLIENT.EXAMPLE"};
	assert_int_equal(mtls_case("client", allow2, 1, NULL, name,
				   sizeof(name), MLLP_TLS_VERSION_DEFAULT),
			 0);
	assert_string_equal(name, "CLIENT.EXAMPLE");
}

static void test_mtls_one_of_several(void **state)
{
	(void)state;
	const char *allow[] = {"a.example", "client.example", "b.example"};
	char name[256];
	assert_int_equal(mtls_case("client", allow, 3, NULL, name, sizeof(name),
				   MLLP_TLS_VERSION_DEFAULT),
			 0);
	assert_string_equal(name, "client.example");
}

static void test_mtls_expired(void **state)
{
	(void)state;
	assert_int_equal(mtls_case("expired", NULL, 0, NULL, NULL, 0,
				   MLLP_TLS_VERSION_DEFAULT),
			 MLLP_ERR_TLS);
}

static void test_mtls_revoked(void **state)
{
	(void)state;
	assert_int_equal(mtls_case("revoked", NULL, 0, cp("crl.pem"), NULL, 0,
				   MLLP_TLS_VERSION_DEFAULT),
			 MLLP_ERR_TLS);
	/* Without the CRL the same certificate is accepted. */
	assert_int_equal(mtls_case("revoked", NULL, 0, NULL, NULL, 0,
				   MLLP_TLS_VERSION_DEFAULT),
			 0);
}

static void test_mtls_server_cert_as_client(void **state)
{
	(void)state;
	assert_int_equal(mtls_case("server", NULL, 0, NULL, NULL, 0,
				   MLLP_TLS_VERSION_DEFAULT),
			 MLLP_ERR_TLS);
}

static void test_bad_files(void **state)
{
	(void)state;
	/* Receiver: a missing certificate file is named. */
	struct mllp_tls_server_config st;
	server_cfg(&st);
	st.cert_file = cp("missing.pem");
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_echo, NULL);
	rc.tls = &st;
	struct mllp_receiver *r = NULL;
	struct mllp_error e;
	assert_int_not_equal(mllp_receiver_create(&rc, &r, &e), 0);
	assert_null(r);
	assert_non_null(strstr(e.message, "missing.pem"));
	/* A TLS listener without a certificate does not start. */
	st.cert_file = NULL;
	st.key_file = NULL;
	assert_int_not_equal(mllp_receiver_create(&rc, &r, &e), 0);
	assert_null(r);
	/* An unreadable key is named too. */
	server_cfg(&st);
	st.key_file = cp("ca.pem"); /* not a key */
	assert_int_not_equal(mllp_receiver_create(&rc, &r, &e), 0);
	assert_non_null(strstr(e.message, "ca.pem"));
	/* Pool: a missing CA file fails add_endpoint, naming it. */
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	ct.ca_file = cp("nothere-ca.pem");
	struct cli c;
	assert_int_not_equal(cli_open_n(&c, "127.0.0.1", 9, &ct, 1, &e), 0);
	assert_non_null(strstr(e.message, "nothere-ca.pem"));
	cli_close(&c);
}

/* A client that connects and never starts the handshake is closed by the
 * receiver after tls_handshake_timeout_ms. */
static void test_receiver_handshake_timeout(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	g_hs_ms = 200;
	srv_start(&s, &st);
	g_hs_ms = 0;
	int fd = connect_loopback(s.port);
	char b[64];
	uint64_t t0 = (uint64_t)time(NULL);
	ssize_t n = recv(fd, b, sizeof(b), 0);
	assert_true(n <= 0); /* closed (EOF or reset), not the 5 s timeout */
	assert_true((uint64_t)time(NULL) - t0 < 4);
	close(fd);
	assert_true(cap_has(&s.log, "handshake timeout"));
	srv_stop(&s);
}

static void test_one_mib(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	struct srv s;
	struct mllp_tls_client_config ct;
	struct cli c;
	open_pair(&s, &st, &c, &ct, "localhost");
	size_t big = 1024 * 1024;
	char *msg = malloc(big + 64);
	assert_non_null(msg);
	size_t n = sizeof(HL7) - 1; /* MSH and PID, then a large OBX */
	memcpy(msg, HL7, n);
	memcpy(msg + n, "OBX|1|TX|||", 11);
	n += 11;
	while (n < big)
		msg[n++] = 'x';
	msg[n++] = '\r';
	struct mllp_result r;
	char m[256];
	int rc = send_msg(&c, msg, n, &r, m, sizeof(m));
	if (rc != 0)
		fail_msg("1 MiB send: %d %s", rc, m);
	assert_int_equal(r.verdict, MLLP_APPLICATION_ACCEPT);
	expect_aa(&c);
	free(msg);
	close_pair(&c, &s);
}

/* Messages around the 16 KiB pieces the pool encrypts as one record each
 * (start block + payload + trailer gathered across pieces) arrive whole. */
static void test_record_pieces(void **state)
{
	(void)state;
	static const size_t sizes[] = {16380, 16381, 16382, 16383, 16384,
				       16385, 32765, 32766, 40000};
	struct mllp_tls_server_config st;
	struct srv s;
	struct mllp_tls_client_config ct;
	struct cli c;
	open_pair(&s, &st, &c, &ct, "localhost");
	char *msg = malloc(40064);
	assert_non_null(msg);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizeof(HL7) - 1;
		memcpy(msg, HL7, n);
		memcpy(msg + n, "OBX|1|TX|||", 11);
		n += 11;
		while (n < sizes[k] - 1) {
			msg[n] = (char)('a' + (n * 7 + k) % 26);
			n++;
		}
		msg[n++] = '\r';
		uint64_t sum = 0;
		for (size_t i = 0; i < n; i++)
			sum = sum * 31 + (unsigned char)msg[i];
		struct mllp_result r;
		char m[256];
		int rc = send_msg(&c, msg, n, &r, m, sizeof(m));
		if (rc != 0)
			fail_msg("%zu-byte send: %d %s", n, rc, m);
		assert_int_equal(r.verdict, MLLP_APPLICATION_ACCEPT);
		pthread_mutex_lock(&s.mu);
		size_t got = s.last_len;
		uint64_t gsum = s.last_sum;
		pthread_mutex_unlock(&s.mu);
		assert_int_equal(got, n);
		assert_true(gsum == sum);
	}
	free(msg);
	close_pair(&c, &s);
}

static void test_many_handshakes(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct cli c;
	struct mllp_error e;
	assert_int_equal(cli_open_n(&c, "localhost", s.port, &ct, 48, &e), 0);
	assert_true(wait_conns(&c, 48, 20000));
	for (int i = 0; i < 100; i++)
		expect_aa(&c);
	close_pair(&c, &s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ack_tls13),
	    cmocka_unit_test(test_ack_tls12),
	    cmocka_unit_test(test_ip_address_host),
	    cmocka_unit_test(test_host_mismatch),
	    cmocka_unit_test(test_unknown_ca),
	    cmocka_unit_test(test_verify_none),
	    cmocka_unit_test(test_reconnect_resumes_13),
	    cmocka_unit_test(test_reconnect_resumes_12),
	    cmocka_unit_test(test_mtls_resumed),
	    cmocka_unit_test(test_mtls_no_cert),
	    cmocka_unit_test(test_mtls_valid),
	    cmocka_unit_test(test_mtls_allowed),
	    cmocka_unit_test(test_mtls_not_allowed),
	    cmocka_unit_test(test_mtls_case_insensitive),
	    cmocka_unit_test(test_mtls_one_of_several),
	    cmocka_unit_test(test_mtls_expired),
	    cmocka_unit_test(test_mtls_revoked),
	    cmocka_unit_test(test_mtls_server_cert_as_client),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_receiver_handshake_timeout),
	    cmocka_unit_test(test_one_mib),
	    cmocka_unit_test(test_record_pieces),
	    cmocka_unit_test(test_many_handshakes),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

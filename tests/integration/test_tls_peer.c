/* TLS against peers that do not speak it, and the orderly close, on
 * loopback: a TLS client against a plaintext receiver and a plaintext
 * client against a TLS receiver each say what the other side speaks; the
 * receiver answers a client's close_notify with its own. The receiver's
 * counters of refusals by reason and of its TLS handshakes (full,
 * resumed, failed), each exact. Certificates are
 * made at run time by tests/make_certs.sh. Ephemeral ports; every wait is
 * bounded. Backend: MLLP_TEST_BACKEND (common.h). */
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "common.h"
#include "testutil.h"
#include "tls_helpers.h"

/* A plaintext MLLP receiver never answers a ClientHello (junk to it): the
 * handshake times out with a clear reason. */
static void test_handshake_timeout(void **state)
{
	(void)state;
	struct srv s;
	srv_start(&s, NULL);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_conn_options o;
	cli_conn_options(&o, &ct);
	o.connect_timeout_ms = 300;
	struct cli c;
	struct mllp_error e;
	assert_int_equal(cli_open_opts(&c, "localhost", s.port, &o, 1, &e), 0);
	char m[256];
	assert_int_equal(send_msg(&c, HL7, sizeof(HL7) - 1, NULL, m, sizeof(m)),
			 MLLP_ERR_TLS);
	assert_string_equal(m, "handshake timeout (300 ms): the peer sent no "
			       "TLS handshake: is it a plaintext MLLP port?");
	close_pair(&c, &s);
}

/* A plaintext client against a TLS receiver: the receiver refuses it (not
 * TLS); the client's message fails, no hang. */
static void test_plaintext_to_tls(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	struct cli c;
	cli_open(&c, "127.0.0.1", s.port, NULL);
	char m[256];
	int rc = send_msg(&c, HL7, sizeof(HL7) - 1, NULL, m, sizeof(m));
	assert_int_equal(rc, MLLP_ERR_INVALID_HEADER);
	assert_string_equal(m, "Invalid header received in server "
			       "acknowledgment (the peer answered with TLS: "
			       "is it a TLS port?)");
	assert_int_equal(s.msgs, 0);
	close_pair(&c, &s);
}

/* ---- a client over the engine and a plain socket --------------------------
 */

/* Write what the engine has for the peer. */
static void eng_out(int fd, struct mllp_tls_conn *t)
{
	const void *d;
	size_t n;
	while ((n = mllp_tls_conn_out_peek(t, &d)) > 0) {
		ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		mllp_tls_conn_out_consume(t, (size_t)w);
	}
}

/* Feed the engine what arrives; false at end of file (or reset). */
static bool eng_in(int fd, struct mllp_tls_conn *t)
{
	unsigned char b[4096];
	ssize_t n = recv(fd, b, sizeof(b), 0);
	if (n <= 0) {
		mllp_tls_conn_feed_eof(t);
		return false;
	}
	assert_int_equal(mllp_tls_conn_feed(t, b, (size_t)n), 0);
	return true;
}

/* A client connection over the engine to 127.0.0.1:port ("localhost"),
 * offering session sess when not NULL: the handshake's result (0,
 * MLLP_ERR_TLS), the socket in *fd and the connection in *t. */
static int eng_connect(uint16_t port, struct mllp_tls_ctx *ctx,
		       const struct mllp_tls_session *sess, int *fd,
		       struct mllp_tls_conn **t)
{
	struct mllp_error e;
	assert_int_equal(mllp_tls_conn_new_client(ctx, "localhost", t, &e), 0);
	if (sess)
		assert_int_equal(mllp_tls_conn_set_session(*t, sess), 0);
	*fd = connect_loopback(port);
	int rc = MLLP_ERR_WOULD_BLOCK;
	for (int i = 0; i < 50 && rc == MLLP_ERR_WOULD_BLOCK; i++) {
		rc = mllp_tls_conn_handshake(*t, &e);
		eng_out(*fd, *t);
		if (rc == MLLP_ERR_WOULD_BLOCK)
			assert_true(eng_in(*fd, *t));
	}
	if (rc == MLLP_ERR_WOULD_BLOCK)
		fail_msg("the handshake did not end");
	return rc;
}

/* Read until the engine reports the connection closed; returns the
 * plaintext bytes read before that. */
static size_t eng_read_to_close(int fd, struct mllp_tls_conn *t)
{
	unsigned char b[4096];
	size_t total = 0;
	struct mllp_error e;
	for (int i = 0; i < 200; i++) {
		size_t got = 0;
		int rc = mllp_tls_conn_read(t, b, sizeof(b), &got, &e);
		if (rc == 0) {
			total += got;
			continue;
		}
		if (rc == MLLP_ERR_CLOSED)
			return total;
		if (rc != MLLP_ERR_WOULD_BLOCK)
			fail_msg("read: %s", e.message);
		eng_out(fd, t);
		eng_in(fd, t);
	}
	fail_msg("the connection did not close");
	return total;
}

/* A TLS receiver with the default test certificates in *s, and one
 * engine client connected to it and through its handshake. */
static void eng_start(struct srv *s, struct mllp_tls_ctx **ctx, int *fd,
		      struct mllp_tls_conn **t)
{
	struct mllp_tls_server_config st;
	server_cfg(&st);
	srv_start(s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_error e;
	assert_int_equal(mllp_tls_ctx_new_client(&ct, ctx, &e), 0);
	assert_int_equal(eng_connect(s->port, *ctx, NULL, fd, t), 0);
}

/* A client that ends with close_notify gets the receiver's close_notify
 * back (an orderly close on both sides), after the ACK of its message. */
static void test_receiver_answers_close_notify(void **state)
{
	(void)state;
	struct srv s;
	struct mllp_tls_ctx *ctx = NULL;
	struct mllp_tls_conn *t = NULL;
	struct mllp_error e;
	int fd;
	eng_start(&s, &ctx, &fd, &t);
	unsigned char framed[256];
	size_t n = 0, w = 0;
	assert_int_equal(
	    mllp_wrap(NULL, HL7, sizeof(HL7) - 1, framed, sizeof(framed), &n),
	    0);
	assert_int_equal(mllp_tls_conn_write(t, framed, n, &w, &e), 0);
	assert_int_equal(w, n);
	assert_int_equal(mllp_tls_conn_shutdown(t, &e), 0);
	eng_out(fd, t);
	assert_true(eng_read_to_close(fd, t) > 0); /* the ACK */
	assert_true(mllp_tls_conn_close_notify_received(t));
	close(fd);
	mllp_tls_conn_free(t);
	mllp_tls_ctx_free(ctx);
	srv_stop(&s);
}

/* ---- the receiver's counters ---------------------------------------------
 */

/* What the counters should reach. */
struct counts {
	struct mllp_receiver *r;
	uint64_t allow_list, max_connections, tls_cert; /* refused */
	uint64_t handshakes, resumed, failures;
};

/* The receiver has counted as many refusals and handshakes as wanted. */
static bool counted(void *arg)
{
	const struct counts *w = arg;
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(w->r, &st);
	return st.connections_refused ==
		   w->allow_list + w->max_connections + w->tls_cert &&
	       st.tls_handshakes == w->handshakes &&
	       st.tls_handshake_failures == w->failures;
}

/* Wait (bounded) for the totals, then check each counter exactly. */
static void expect_counts(struct counts w)
{
	wait_until(counted, &w, 5000);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(w.r, &st);
	assert_int_equal(st.connections_refused_allow_list, w.allow_list);
	assert_int_equal(st.connections_refused_max_connections,
			 w.max_connections);
	assert_int_equal(st.connections_refused_tls_cert, w.tls_cert);
	assert_int_equal(st.connections_refused,
			 w.allow_list + w.max_connections + w.tls_cert);
	assert_int_equal(st.tls_handshakes, w.handshakes);
	assert_int_equal(st.tls_handshakes_resumed, w.resumed);
	assert_int_equal(st.tls_handshake_failures, w.failures);
}

/* A plaintext receiver on an ephemeral port: allowed clients per allow,
 * at most maxc connections (0: the default). */
static struct mllp_receiver *plain_start(const char *allow, uint32_t maxc)
{
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_echo, NULL);
	const char *list[1] = {allow}; /* copied at start */
	if (allow) {
		rc.allowed_clients = list;
		rc.allowed_clients_count = 1;
	}
	if (maxc)
		rc.max_connections = maxc;
	struct mllp_receiver *r = NULL;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &r, &e) != 0)
		fail_msg("receiver start: %s", e.message);
	return r;
}

static bool one_open(void *arg)
{
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(arg, &st);
	return st.connections_active == 1;
}

/* A client outside the allow-list, and one over max_connections: each
 * refused and counted under its reason. */
static void test_refusals_by_reason(void **state)
{
	(void)state;
	struct mllp_receiver *r = plain_start("10.0.0.0/8", 0);
	int fd = connect_loopback_ex(mllp_receiver_port(r), true);
	expect_counts((struct counts){.r = r, .allow_list = 1});
	close(fd);
	mllp_receiver_destroy(r);

	r = plain_start(NULL, 1);
	int first = connect_loopback(mllp_receiver_port(r));
	assert_true(wait_until(one_open, r, 5000));
	fd = connect_loopback_ex(mllp_receiver_port(r), true);
	expect_counts((struct counts){.r = r, .max_connections = 1});
	close(fd);
	close(first);
	mllp_receiver_destroy(r);
}

/* A client without a certificate where one is required: refused for its
 * certificate, and a failed handshake. */
static void test_refused_tls_cert(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	mtls_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_tls_ctx *ctx = NULL;
	struct mllp_tls_conn *t = NULL;
	struct mllp_error e;
	assert_int_equal(mllp_tls_ctx_new_client(&ct, &ctx, &e), 0);
	int fd;
	/* TLS 1.3: the client's side completes, the refusal comes after. */
	if (eng_connect(s.port, ctx, NULL, &fd, &t) == 0) {
		unsigned char b[256];
		size_t got = 0;
		int rc = MLLP_ERR_WOULD_BLOCK;
		for (int i = 0; i < 50 && rc == MLLP_ERR_WOULD_BLOCK; i++) {
			rc = mllp_tls_conn_read(t, b, sizeof(b), &got, &e);
			if (rc == MLLP_ERR_WOULD_BLOCK && !eng_in(fd, t))
				break;
		}
	}
	expect_counts((struct counts){.r = s.r, .tls_cert = 1, .failures = 1});
	assert_true(cap_has(&s.log, "refused TLS connection"));
	close(fd);
	mllp_tls_conn_free(t);
	mllp_tls_ctx_free(ctx);
	srv_stop(&s);
}

/* One message and its ACK over t. */
static void eng_exchange(int fd, struct mllp_tls_conn *t)
{
	unsigned char framed[256], b[4096];
	size_t n = 0, w = 0;
	struct mllp_error e;
	assert_int_equal(
	    mllp_wrap(NULL, HL7, sizeof(HL7) - 1, framed, sizeof(framed), &n),
	    0);
	assert_int_equal(mllp_tls_conn_write(t, framed, n, &w, &e), 0);
	assert_int_equal(w, n);
	eng_out(fd, t);
	for (int i = 0; i < 200; i++) {
		size_t got = 0;
		int rc = mllp_tls_conn_read(t, b, sizeof(b), &got, &e);
		if (rc == 0 && memchr(b, 0x1c, got))
			return; /* the end of the ACK's frame */
		if (rc == MLLP_ERR_WOULD_BLOCK)
			assert_true(eng_in(fd, t));
		else if (rc != 0)
			fail_msg("read: %s", e.message);
	}
	fail_msg("no ACK");
}

/* A full handshake, one that resumes its session, and a plaintext client
 * (a failed handshake, not a refusal). */
static void test_handshakes_counted(void **state)
{
	(void)state;
	struct srv s;
	struct mllp_tls_ctx *ctx = NULL;
	struct mllp_tls_conn *t = NULL;
	int fd;
	eng_start(&s, &ctx, &fd, &t);
	assert_false(mllp_tls_conn_session_reused(t));
	eng_exchange(fd, t); /* reads the session ticket on the way */
	struct mllp_tls_session *sess = mllp_tls_conn_get_session(t);
	assert_non_null(sess);
	close(fd);
	mllp_tls_conn_free(t);
	expect_counts((struct counts){.r = s.r, .handshakes = 1});

	assert_int_equal(eng_connect(s.port, ctx, sess, &fd, &t), 0);
	assert_true(mllp_tls_conn_session_reused(t));
	eng_exchange(fd, t);
	close(fd);
	mllp_tls_conn_free(t);
	mllp_tls_session_free(sess);
	expect_counts((struct counts){.r = s.r, .handshakes = 2, .resumed = 1});

	fd = connect_loopback(s.port);
	assert_int_equal(send(fd, HL7, sizeof(HL7) - 1, MSG_NOSIGNAL),
			 (ssize_t)(sizeof(HL7) - 1));
	expect_counts((struct counts){
	    .r = s.r, .handshakes = 2, .resumed = 1, .failures = 1});
	close(fd);
	mllp_tls_ctx_free(ctx);
	srv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_plaintext_to_tls),
	    cmocka_unit_test(test_receiver_answers_close_notify),
	    cmocka_unit_test(test_refusals_by_reason),
	    cmocka_unit_test(test_refused_tls_cert),
	    cmocka_unit_test(test_handshakes_counted),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

/* TLS against peers that do not speak it, and the orderly close, on
 * loopback: a TLS client against a plaintext receiver and a plaintext
 * client against a TLS receiver each say what the other side speaks; the
 * receiver answers a client's close_notify with its own. Certificates are
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
	o.connect_timeout = 300;
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

/* A client that ends with close_notify gets the receiver's close_notify
 * back (an orderly close on both sides), after the ACK of its message. */
static void test_receiver_answers_close_notify(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct srv s;
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_tls_ctx *ctx = NULL;
	struct mllp_tls_conn *t = NULL;
	struct mllp_error e;
	assert_int_equal(mllp_tls_ctx_new_client(&ct, &ctx, &e), 0);
	assert_int_equal(mllp_tls_conn_new_client(ctx, "localhost", &t, &e), 0);
	int fd = connect_loopback(s.port);
	int rc = MLLP_ERR_WOULD_BLOCK;
	for (int i = 0; i < 50 && rc == MLLP_ERR_WOULD_BLOCK; i++) {
		rc = mllp_tls_conn_handshake(t, &e);
		eng_out(fd, t);
		if (rc == MLLP_ERR_WOULD_BLOCK)
			assert_true(eng_in(fd, t));
	}
	if (rc != 0)
		fail_msg("handshake: %s", e.message);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_timeout),
	    cmocka_unit_test(test_plaintext_to_tls),
	    cmocka_unit_test(test_receiver_answers_close_notify),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

/* The TLS stream the pool and the receiver share (pool/io/tls_stream.h),
 * client and server over a scripted backend: the test takes each flight
 * the stream submits, completes it (wholly, short, cancelled, failed) and
 * hands the bytes to the other side. Each stream's socket is one end of a
 * socketpair, so what the stream writes straight to its socket (alerts,
 * close_notify) is read at the other end. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mllp/tls.h>

#include "certs.h"
#include "tls_stream.h"

static char certdir[PATH_MAX];
static struct mllp_tls_ctx *cctx, *sctx;

struct side {
	struct mllpi_tls_stream *t;
	int fd, peer_fd;
	/* the flight submitted and not completed */
	unsigned char flight[1 << 17];
	size_t flight_len;
	bool out;
	int nsubmit;
	/* callbacks */
	unsigned char plain[1 << 17];
	size_t plain_len;
	int nplain;
	int nhs;
	bool resumed;
	int nfailed;
	struct mllp_error err;
	int nsent;
	size_t sent_plain, sent_wire;
	int npeer_closed;
	int nsess;
	bool close_on_plain;
};

static struct side cli, srv;

struct mllpi_backend {
	int unused;
};
static struct mllpi_backend fake_be;

static int fake_sendmsg(struct mllpi_backend *b, int fd,
			const struct msghdr *msg, uint64_t token)
{
	struct side *s = (struct side *)(uintptr_t)token;
	assert_ptr_equal(b, &fake_be);
	assert_int_equal(fd, s->fd);
	assert_false(s->out); /* one send in flight */
	s->flight_len = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		const struct iovec *v = &msg->msg_iov[i];
		assert_true(s->flight_len + v->iov_len <= sizeof(s->flight));
		memcpy(s->flight + s->flight_len, v->iov_base, v->iov_len);
		s->flight_len += v->iov_len;
	}
	s->out = true;
	s->nsubmit++;
	return 0;
}

static const struct mllpi_backend_ops fake_ops = {
    .name = "scripted",
    .sendmsg = fake_sendmsg,
};

static void cb_plain(void *ctx, const unsigned char *d, size_t n)
{
	struct side *s = ctx;
	assert_true(s->plain_len + n <= sizeof(s->plain));
	memcpy(s->plain + s->plain_len, d, n);
	s->plain_len += n;
	s->nplain++;
	if (s->close_on_plain)
		mllpi_tls_stream_close(s->t, false);
}

static void cb_hs(void *ctx, bool resumed)
{
	struct side *s = ctx;
	s->nhs++;
	s->resumed = resumed;
}

static void cb_failed(void *ctx, const struct mllp_error *e)
{
	struct side *s = ctx;
	s->nfailed++;
	s->err = *e;
}

static void cb_sent(void *ctx, size_t plain, size_t wire)
{
	struct side *s = ctx;
	s->nsent++;
	s->sent_plain += plain;
	s->sent_wire += wire;
}

static void cb_peer_closed(void *ctx)
{
	struct side *s = ctx;
	s->npeer_closed++;
}

static void cb_session(void *ctx, struct mllp_tls_session *sess)
{
	struct side *s = ctx;
	s->nsess++;
	mllp_tls_session_free(sess);
}

static const struct mllpi_tls_stream_cbs cbs = {
    .plain_in = cb_plain,
    .handshake_done = cb_hs,
    .failed = cb_failed,
    .sent = cb_sent,
    .peer_closed = cb_peer_closed,
    .session = cb_session,
};

static void side_open(struct side *s, bool client, size_t keep)
{
	struct mllp_error e;
	struct mllp_tls_conn *conn;
	int sv[2];
	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	s->fd = sv[0];
	s->peer_fd = sv[1];
	assert_int_equal(fcntl(s->peer_fd, F_SETFL, O_NONBLOCK), 0);
	if (client)
		assert_int_equal(
		    mllp_tls_conn_new_client(cctx, "localhost", &conn, &e), 0);
	else
		assert_int_equal(mllp_tls_conn_new_server(sctx, &conn, &e), 0);
	const struct mllpi_tls_stream_io io = {
	    .ops = &fake_ops,
	    .be = &fake_be,
	    .fd = s->fd,
	    .token = (uint64_t)(uintptr_t)s,
	    .alloc = mllp_allocator_libc(),
	    .keep = keep,
	};
	assert_int_equal(mllpi_tls_stream_new(&io, &cbs, s, conn, &s->t), 0);
}

static int setup(void **state)
{
	(void)state;
	side_open(&cli, true, SIZE_MAX);
	side_open(&srv, false, SIZE_MAX);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	struct side *sides[] = {&cli, &srv};
	for (int i = 0; i < 2; i++) {
		struct side *s = sides[i];
		mllpi_tls_stream_close(s->t, false);
		if (s->out) { /* the backend gives it back, cancelled */
			s->out = false;
			mllpi_tls_stream_on_sent(s->t, -ECANCELED);
		}
		assert_false(mllpi_tls_stream_busy(s->t));
		mllpi_tls_stream_free(s->t);
		close(s->fd);
		close(s->peer_fd);
	}
	return 0;
}

/* Complete from's flight with res (bytes written, or -errno); when it
 * wrote bytes, they reach `to`. */
static void complete(struct side *from, struct side *to, int res)
{
	static unsigned char bytes[sizeof(from->flight)];
	assert_true(from->out);
	size_t n = res > 0 ? (size_t)res : 0;
	assert_true(n <= from->flight_len);
	memcpy(bytes, from->flight, n);
	from->out = false;
	mllpi_tls_stream_on_sent(from->t, res);
	if (n > 0 && to)
		mllpi_tls_stream_on_recv(to->t, bytes, n);
}

/* Deliver whole flights both ways until neither side has one. */
static void run(void)
{
	for (int i = 0; i < 100; i++) {
		if (cli.out)
			complete(&cli, &srv, (int)cli.flight_len);
		else if (srv.out)
			complete(&srv, &cli, (int)srv.flight_len);
		else
			return;
	}
	fail_msg("the streams still send after 100 flights");
}

static void handshake(void)
{
	mllpi_tls_stream_start(cli.t);
	assert_true(cli.out); /* ClientHello */
	run();
	assert_int_equal(cli.nhs, 1);
	assert_int_equal(srv.nhs, 1);
	assert_int_equal(cli.nfailed + srv.nfailed, 0);
	assert_false(mllpi_tls_stream_handshaking(cli.t));
	assert_false(mllpi_tls_stream_handshaking(srv.t));
}

static size_t fill(unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)('A' + i % 26);
	return n;
}

static void test_handshake_then_both_ways(void **state)
{
	(void)state;
	assert_true(mllpi_tls_stream_handshaking(cli.t));
	assert_false(mllpi_tls_stream_peer_sent_tls(cli.t));
	handshake();
	assert_false(cli.resumed);
	assert_true(mllpi_tls_stream_peer_sent_tls(cli.t));
	assert_true(cli.nsess >= 1); /* a session to offer next time */
	assert_int_equal(srv.nsess, 0);
	/* Handshake flights carry no plaintext. */
	assert_true(cli.nsent > 0);
	assert_int_equal(cli.sent_plain + srv.sent_plain, 0);

	/* SB, payload, trailer: one record, reported once written. */
	static const unsigned char sb[] = {0x0b}, tr[] = {0x1c, 0x0d};
	static const char pl[] = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5";
	const struct iovec iov[3] = {
	    {(void *)sb, 1}, {(void *)pl, sizeof(pl) - 1}, {(void *)tr, 2}};
	size_t total = 1 + sizeof(pl) - 1 + 2, taken = 0;
	int nsent = cli.nsent;
	assert_int_equal(mllpi_tls_stream_write(cli.t, iov, 3, 0, &taken), 0);
	assert_int_equal(taken, total);
	assert_true(cli.out);
	assert_true(mllpi_tls_stream_busy(cli.t));
	assert_int_equal(mllpi_tls_stream_plain_unsent(cli.t), total);
	assert_int_equal(mllpi_tls_stream_wire_unsent(cli.t), cli.flight_len);
	assert_int_equal(cli.nsent, nsent); /* nothing written yet */
	size_t wire = cli.flight_len;
	complete(&cli, &srv, (int)wire);
	assert_int_equal(cli.nsent, nsent + 1);
	assert_int_equal(cli.sent_plain, total);
	assert_int_equal(mllpi_tls_stream_plain_unsent(cli.t), 0);
	assert_true(mllpi_tls_stream_drained(cli.t));
	assert_int_equal(srv.plain_len, total);
	assert_memory_equal(srv.plain, sb, 1);
	assert_memory_equal(srv.plain + 1, pl, sizeof(pl) - 1);
	assert_memory_equal(srv.plain + total - 2, tr, 2);

	/* From byte `skip` on only, the other way. */
	const struct iovec r = {(void *)pl, sizeof(pl) - 1};
	assert_int_equal(mllpi_tls_stream_write(srv.t, &r, 1, 4, &taken), 0);
	assert_int_equal(taken, sizeof(pl) - 1 - 4);
	run();
	assert_int_equal(cli.plain_len, sizeof(pl) - 1 - 4);
	assert_memory_equal(cli.plain, pl + 4, sizeof(pl) - 1 - 4);
	assert_int_equal(srv.sent_plain, sizeof(pl) - 1 - 4);
}

static void test_short_and_cancelled_sends(void **state)
{
	(void)state;
	static unsigned char big[40000];
	fill(big, sizeof(big));
	handshake();
	int nsent = cli.nsent;
	size_t wire0 = cli.sent_wire;
	const struct iovec v = {big, sizeof(big)};
	size_t taken = 0;
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken), 0);
	assert_int_equal(taken, sizeof(big));
	size_t wire = cli.flight_len;
	assert_true(wire > sizeof(big)); /* three records */
	int nsub = cli.nsubmit;
	/* Half written: the rest is submitted, nothing is reported. */
	complete(&cli, &srv, (int)(wire / 2));
	assert_int_equal(cli.nsubmit, nsub + 1);
	assert_true(cli.out);
	assert_int_equal(cli.flight_len, wire - wire / 2);
	assert_int_equal(cli.nsent, nsent);
	/* Cancelled (nothing written): the same rest again. */
	complete(&cli, &srv, -ECANCELED);
	assert_int_equal(cli.nsubmit, nsub + 2);
	assert_int_equal(cli.flight_len, wire - wire / 2);
	assert_int_equal(cli.nsent, nsent);
	complete(&cli, &srv, (int)cli.flight_len);
	assert_int_equal(cli.nsent, nsent + 1);
	assert_int_equal(cli.sent_plain, sizeof(big));
	assert_int_equal(cli.sent_wire - wire0, wire);
	assert_int_equal(srv.plain_len, sizeof(big));
	assert_memory_equal(srv.plain, big, sizeof(big));
	assert_int_equal(cli.nfailed + srv.nfailed, 0);
}

static void test_write_before_handshake(void **state)
{
	(void)state;
	const struct iovec v = {(void *)"x", 1};
	size_t taken = 7;
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken),
			 MLLP_ERR_BAD_STATE);
	assert_int_equal(taken, 0);
	assert_int_equal(cli.nfailed, 0);
	assert_false(cli.out);
}

static void test_send_error_kills_stream(void **state)
{
	(void)state;
	handshake();
	const struct iovec v = {(void *)"hello", 5};
	size_t taken = 0;
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken), 0);
	int nsent = cli.nsent;
	complete(&cli, NULL, -EPIPE);
	assert_int_equal(cli.nfailed, 1);
	assert_int_equal(cli.err.context, MLLP_CTX_SEND);
	assert_int_equal(cli.err.reason, -EPIPE);
	assert_int_equal(cli.nsent, nsent);
	assert_false(mllpi_tls_stream_busy(cli.t));
	/* Dead: no more callbacks, writes refused, no close_notify. */
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken),
			 MLLP_ERR_BAD_STATE);
	assert_int_equal(mllpi_tls_stream_write(srv.t, &v, 1, 0, &taken), 0);
	complete(&srv, &cli, (int)srv.flight_len);
	assert_int_equal(cli.plain_len, 0);
	assert_int_equal(cli.nfailed, 1);
	mllpi_tls_stream_close(cli.t, true);
	unsigned char b[64];
	assert_int_equal(recv(cli.peer_fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_send_error_in_handshake(void **state)
{
	(void)state;
	mllpi_tls_stream_start(cli.t);
	complete(&cli, NULL, -ECONNRESET);
	assert_int_equal(cli.nfailed, 1);
	assert_int_equal(cli.err.context, MLLP_CTX_CONNECT);
	assert_int_equal(cli.err.reason, -ECONNRESET);
	assert_int_equal(cli.nhs, 0);
}

static void test_close_notify(void **state)
{
	(void)state;
	unsigned char b[256];
	handshake();
	/* A flight out: nothing is written past it. */
	const struct iovec v = {(void *)"hello", 5};
	size_t taken = 0;
	assert_int_equal(mllpi_tls_stream_write(srv.t, &v, 1, 0, &taken), 0);
	assert_true(srv.out);
	mllpi_tls_stream_close(srv.t, true);
	assert_int_equal(recv(srv.peer_fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
	/* Orderly close, nothing out: close_notify straight to the socket;
	 * the peer reports it, and a closed stream reports nothing more. */
	mllpi_tls_stream_close(cli.t, true);
	ssize_t n = recv(cli.peer_fd, b, sizeof(b), 0);
	assert_true(n > 0);
	mllpi_tls_stream_on_recv(srv.t, b, (size_t)n);
	assert_int_equal(srv.npeer_closed, 0); /* srv is closed too */
	int nplain = cli.nplain;
	complete(&srv, &cli, (int)srv.flight_len);
	assert_int_equal(cli.nplain, nplain);
}

static void test_peer_close_reported(void **state)
{
	(void)state;
	unsigned char b[256];
	handshake();
	mllpi_tls_stream_close(cli.t, true);
	ssize_t n = recv(cli.peer_fd, b, sizeof(b), 0);
	assert_true(n > 0);
	mllpi_tls_stream_on_recv(srv.t, b, (size_t)n);
	assert_int_equal(srv.npeer_closed, 1);
	assert_int_equal(srv.nfailed, 0);
}

static void test_abortive_close_writes_nothing(void **state)
{
	(void)state;
	unsigned char b[64];
	handshake();
	mllpi_tls_stream_close(cli.t, false);
	assert_int_equal(recv(cli.peer_fd, b, sizeof(b), 0), -1);
	assert_int_equal(errno, EAGAIN);
}

static void test_not_tls(void **state)
{
	(void)state;
	static const unsigned char mllp[] = "\x0bMSH|^~\\&|A|B\x1c\r";
	mllpi_tls_stream_on_recv(srv.t, mllp, sizeof(mllp) - 1);
	assert_int_equal(srv.nfailed, 1);
	assert_int_equal(srv.err.context, MLLP_CTX_TLS);
	assert_int_equal(srv.err.reason, MLLP_ERR_TLS);
	assert_non_null(strstr(srv.err.message, "does not speak TLS"));
	assert_false(mllpi_tls_stream_peer_sent_tls(srv.t));
	assert_int_equal(srv.nhs, 0);
}

static void test_eof_in_handshake(void **state)
{
	(void)state;
	mllpi_tls_stream_start(cli.t);
	complete(&cli, &srv, (int)cli.flight_len); /* ClientHello */
	mllpi_tls_stream_on_eof(cli.t, 0);
	assert_int_equal(cli.nfailed, 1);
	assert_int_equal(cli.err.context, MLLP_CTX_TLS);
	assert_int_equal(cli.err.reason, MLLP_ERR_TLS);
	assert_int_equal(cli.nhs, 0);
}

static void test_close_inside_plain_in(void **state)
{
	(void)state;
	static unsigned char big[40000];
	fill(big, sizeof(big));
	handshake();
	srv.close_on_plain = true;
	const struct iovec v = {big, sizeof(big)};
	size_t taken = 0;
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken), 0);
	complete(&cli, &srv, (int)cli.flight_len);
	/* Closed by the first piece: no more plaintext handed up. */
	assert_int_equal(srv.nplain, 1);
	assert_true(srv.plain_len < sizeof(big));
	assert_false(srv.out);
}

static void test_flight_buffer_keep(void **state)
{
	(void)state;
	static unsigned char big[40000];
	fill(big, sizeof(big));
	mllpi_tls_stream_free(cli.t);
	close(cli.fd);
	close(cli.peer_fd);
	side_open(&cli, true, 1024);
	handshake();
	const struct iovec v = {big, sizeof(big)};
	size_t taken = 0;
	assert_int_equal(mllpi_tls_stream_write(cli.t, &v, 1, 0, &taken), 0);
	assert_true(mllpi_tls_stream_buffered(cli.t) > sizeof(big));
	complete(&cli, &srv, (int)cli.flight_len);
	assert_int_equal(mllpi_tls_stream_buffered(cli.t), 0);
	/* The server keeps its buffer (no limit). */
	assert_int_equal(mllpi_tls_stream_write(srv.t, &v, 1, 0, &taken), 0);
	complete(&srv, &cli, (int)srv.flight_len);
	assert_true(mllpi_tls_stream_buffered(srv.t) > sizeof(big));
	assert_int_equal(cli.plain_len, sizeof(big));
}

int main(void)
{
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_error e;
	if (tc_certs_make(MLLP_TEST_SOURCE_DIR, "mllp-tls-stream", certdir) !=
	    0) {
		fprintf(stderr, "cannot make the test certificates\n");
		return 1;
	}
	char ca[PATH_MAX + 16], cert[PATH_MAX + 16], key[PATH_MAX + 16];
	snprintf(ca, sizeof(ca), "%s/ca.pem", certdir);
	snprintf(cert, sizeof(cert), "%s/server.pem", certdir);
	snprintf(key, sizeof(key), "%s/server.key", certdir);
	mllp_tls_client_config_init(&cc);
	cc.enabled = true;
	cc.ca_file = ca;
	mllp_tls_server_config_init(&sc);
	sc.enabled = true;
	sc.cert_file = cert;
	sc.key_file = key;
	if (mllp_tls_ctx_new_client(&cc, &cctx, &e) != 0 ||
	    mllp_tls_ctx_new_server(&sc, &sctx, &e) != 0) {
		fprintf(stderr, "TLS contexts: %s\n", e.message);
		tc_certs_remove(certdir);
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake_then_both_ways,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_short_and_cancelled_sends,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_before_handshake, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_send_error_kills_stream, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_send_error_in_handshake, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_close_notify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peer_close_reported, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_abortive_close_writes_nothing,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_tls, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eof_in_handshake, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_close_inside_plain_in, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_flight_buffer_keep, setup,
					    teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	mllp_tls_ctx_free(cctx);
	mllp_tls_ctx_free(sctx);
	tc_certs_remove(certdir);
	return rc;
}

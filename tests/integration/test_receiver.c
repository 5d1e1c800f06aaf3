/* The MLLP receiver on loopback: the reference suite (start errors, start
 * and stop, connection info, concurrent senders, raw text), framing
 * (many frames a packet, junk, every split) and limits (oversize frames,
 * idle timeout). */
#include "recv_util.h"

/* Read the next reply: an ACK of msg with the given code. */
static void expect_ack(struct tc *t, const void *msg, size_t mlen,
		       const char *code)
{
	size_t rl;
	char *rep = tc_read_frame(t, &rl);
	assert_non_null(rep);
	assert_ack(msg, mlen, rep, rl, code);
	free(rep);
}

/* ---- the reference suite ------------------------------------------------ */

static void test_start_errors(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.port = MLLP_PORT_UNSET;
	struct mllp_receiver *rv = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(rv);
	assert_string_equal(err.message, "No tcp port provided");
	cfg_for(&c, &r, NULL, NULL);
	assert_int_equal(mllp_receiver_create(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "No dispatcher module provided");
	/* A default config has no port either. */
	mllp_receiver_config_init(&c);
	c.dispatch = mllp_dispatch_echo;
	assert_int_equal(mllp_receiver_create(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "No tcp port provided");
	cfg_for(&c, &r, mllp_dispatch_echo, NULL);
	const char *bad[] = {"10.0.0.0/33"};
	c.allowed_clients = bad;
	c.allowed_clients_count = 1;
	assert_int_equal(mllp_receiver_create(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	rec_free(&r);
}

static void test_port_in_use(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	struct mllp_receiver *a = start(&c);
	c.port = mllp_receiver_port(a);
	struct mllp_receiver *b = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&c, &b, &err), -EADDRINUSE);
	assert_null(b);
	assert_non_null(strstr(err.message, "eaddrinuse"));
	mllp_receiver_destroy(a);
	rec_free(&r);
}

static void test_start_stop(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver *rv = start_with(&r, mllp_dispatch_echo, NULL);
	uint16_t port = mllp_receiver_port(rv);
	assert_string_equal(mllp_receiver_address(rv), "127.0.0.1");
	assert_string_equal(mllp_receiver_backend(rv),
			    ti_backend() == MLLP_BACKEND_EPOLL ? "epoll"
							       : "io_uring");
	assert_int_equal(
	    rec_count_lines(&r, "Starting listener on a non secured socket, "
				"data will be passed over unencrypted "
				"connection!"),
	    1);
	/* Open connections are closed by stop, with reason stopped. */
	struct tc t[3];
	for (int i = 0; i < 3; i++)
		tc_connect(&t[i], port);
	assert_int_equal(
	    rec_wait(&r, &r.ev[MLLP_RECEIVER_EV_CONNECTION_START], 3), 3);
	assert_int_equal(mllp_receiver_stop(rv), 0);
	assert_int_equal(mllp_receiver_stop(rv), 0); /* idempotent */
	assert_int_equal(r.reasons[MLLP_CLOSE_STOPPED], 3);
	for (int i = 0; i < 3; i++) {
		assert_true(tc_wait_closed(&t[i]));
		tc_close(&t[i]);
	}
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_accepted, 3);
	assert_int_equal(st.connections_active, 0);
	/* The port is free again once stop has returned. */
	struct tc x;
	assert_true(tc_connect_to(&x, "127.0.0.1", port) != 0);
	tc_close(&x);
	finish(rv, &r);
}

struct seen {
	struct mllp_conn_info info;
	void *ctx;
	enum mllp_msg_kind kind;
	int calls;
};

/* Written on the manager thread, read by the test: under a mutex (the
 * socket round trip orders them, but TSan cannot see that). */
static struct seen g_seen;
static pthread_mutex_t g_seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void spy_dispatch(void *ctx, const struct mllp_message *m,
			 struct mllp_reply *rep)
{
	pthread_mutex_lock(&g_seen_mu);
	g_seen.info = *m->conn;
	g_seen.ctx = ctx;
	g_seen.kind = m->kind;
	g_seen.calls++;
	pthread_mutex_unlock(&g_seen_mu);
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = "hello back";
	rep->len = 10;
}

static void test_conn_info_and_context(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	int user_ctx = 42;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, spy_dispatch, &user_ctx);
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc t;
	tc_connect(&t, port);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	getsockname(t.fd, (struct sockaddr *)&me, &ml);
	size_t ml2;
	unsigned char *m = corpus("adt_a01.hl7", &ml2);
	tc_send_frame(&t, m, ml2);
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_non_null(rep);
	assert_string_equal(rep, "hello back");
	free(rep);
	pthread_mutex_lock(&g_seen_mu);
	struct seen seen = g_seen;
	pthread_mutex_unlock(&g_seen_mu);
	assert_int_equal(seen.calls, 1);
	assert_ptr_equal(seen.ctx, &user_ctx);
	assert_int_equal(seen.kind, MLLP_MSG_HL7);
	assert_string_equal(seen.info.peer_address, "127.0.0.1");
	assert_int_equal(seen.info.peer_port, ntohs(me.sin_port));
	assert_string_equal(seen.info.local_address, "127.0.0.1");
	assert_int_equal(seen.info.local_port, port);
	assert_string_equal(seen.info.tls_peer_name, "");
	assert_true(seen.info.id >= 1);
	tc_close(&t);
	/* closed by peer */
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], 1), 1);
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

struct sender_arg {
	uint16_t port;
	int id;
	int ok;
};

static void *sender_main(void *arg)
{
	struct sender_arg *a = arg;
	struct tc t;
	if (tc_connect_to(&t, "127.0.0.1", a->port) != 0)
		return NULL;
	for (int i = 0; i < 200; i++) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg),
				 "MSH|^~\\&|S%d|F|R|F|20240101||ADT^A01|"
				 "C%d-%d|P|2.5\rPID|1\r",
				 a->id, a->id, i);
		int v = round_trip(&t, msg, (size_t)n);
		if (v < 0)
			break;
		a->ok += v;
	}
	tc_close(&t);
	return NULL;
}

static void test_two_concurrent_senders(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver *rv = start_with(&r, mllp_dispatch_echo, NULL);
	pthread_t th[2];
	struct sender_arg a[2] = {{mllp_receiver_port(rv), 1, 0},
				  {mllp_receiver_port(rv), 2, 0}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, sender_main, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(a[0].ok, 200);
	assert_int_equal(a[1].ok, 200);
	finish(rv, &r);
}

static void test_raw_text(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	tc_send_frame(&t, "hello", 5);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_close(&t);
	finish(rv, &r);
}

/* ---- framing ------------------------------------------------------------ */

static void test_many_frames_one_packet(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t fl;
	unsigned char *feed = corpus("feed_100.mllp", &fl);
	tc_write(&t, feed, fl); /* 100 frames in one write */
	/* Each reply in order: MSA-2 of reply i == FEED0000ii. */
	struct mllp_decoder d;
	mllp_decoder_init(&d, NULL, NULL);
	const unsigned char *p = feed;
	size_t left = fl;
	int n = 0;
	while (left > 0) {
		size_t used;
		struct mllp_decoded ev;
		assert_int_equal(mllp_decoder_feed(&d, p, left, &used, &ev), 0);
		p += used;
		left -= used;
		if (ev.kind != MLLP_DECODE_FRAME)
			continue;
		size_t rl;
		char *rep = tc_read_frame(&t, &rl);
		assert_non_null(rep);
		assert_ack(ev.data, ev.len, rep, rl, "AA");
		char id[32];
		snprintf(id, sizeof(id), "|FEED%06d|", n);
		assert_non_null(strstr(rep, id));
		free(rep);
		n++;
	}
	assert_int_equal(n, 100);
	/* Telemetry: 100 messages, 100 replies (coalesced writes). */
	assert_int_equal(rec_wait(&r, &r.replies, 100), 100);
	assert_int_equal(r.ev[MLLP_RECEIVER_EV_MESSAGE_RECEIVED], 100);
	assert_true(r.ev[MLLP_RECEIVER_EV_REPLY_SENT] <= 100);
	mllp_decoder_free(&d);
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(feed);
	rec_free(&r);
}

static void test_junk_between_frames(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	/* frame, junk, frame, LF (netcat), frame, CRLF: one packet. */
	const char pkt[] =
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J1|P|2.5\r\x1c\r"
	    "junk"
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J2|P|2.5\r\x1c\r"
	    "\n"
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J3|P|2.5\r\x1c\r"
	    "\r\n";
	tc_write(&t, pkt, sizeof(pkt) - 1);
	expect_ids(&t, "MSA|AA|J%d", 1, 3);
	/* frame + junk + partial frame, then the rest. */
	const char p1[] = "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J4|P|2.5\r\x1c\r"
			  "xx"
			  "\x0bMSH|^~\\&|A|B|C|D|20";
	const char p2[] = "24||ADT^A01|J5|P|2.5\r\x1c";
	tc_write(&t, p1, sizeof(p1) - 1);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(strstr(rep, "MSA|AA|J4"));
	free(rep);
	tc_write(&t, p2, sizeof(p2) - 1);
	/* EB at the end of one packet, CR + next frame in the next. */
	const char p3[] =
	    "\r\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J6|P|2.5\r\x1c\r";
	tc_write(&t, p3, sizeof(p3) - 1);
	expect_ids(&t, "MSA|AA|J%d", 5, 6);
	tc_close(&t);
	assert_int_equal(
	    rec_wait(&r, &r.ev[MLLP_RECEIVER_EV_CONNECTION_STOP], 1), 1);
	assert_int_equal(
	    rec_count_lines(&r, "discarding unexpected data (4 bytes)"), 1);
	assert_int_equal(
	    rec_count_lines(&r, "discarding unexpected data (2 bytes)"), 1);
	assert_int_equal(rec_count_lines(&r, "discarding unexpected data"), 2);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, 6);
	assert_int_equal(st.replies_sent, 6);
	assert_int_equal(st.junk_bytes, 4 + 1 + 2 + 2);
	finish(rv, &r);
}

static void test_split_every_byte(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t ml;
	unsigned char *m = corpus("adt_a01.hl7", &ml);
	size_t fl = ml + 3;
	unsigned char *f = malloc(fl);
	size_t got;
	assert_int_equal(mllp_wrap(NULL, m, ml, f, fl, &got), 0);
	assert_int_equal(got, fl);
	/* Every split point: two writes, one reply each time. */
	for (size_t k = 1; k < fl; k++) {
		tc_write(&t, f, k);
		tc_write(&t, f + k, fl - k);
		expect_ack(&t, m, ml, "AA");
	}
	/* One byte per write. */
	for (size_t k = 0; k < fl; k++)
		tc_write(&t, f + k, 1);
	expect_ack(&t, m, ml, "AA");
	tc_close(&t);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, fl);
	assert_int_equal(st.junk_bytes, 0);
	mllp_receiver_destroy(rv);
	free(f);
	free(m);
	rec_free(&r);
}

/* ---- limits ------------------------------------------------------------- */

static void test_oversize_frame(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_frame = 1024;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	/* One of exactly max_frame passes. */
	char *big = malloc(4096);
	memset(big, 'x', 4096);
	tc_send_frame(&t, big, 1024);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_send_frame(&t, big, 4096);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_ERROR], 1), 1);
	assert_int_equal(r.stop_errors[MLLP_CLOSE_ERROR],
			 MLLP_ERR_FRAME_TOO_BIG);
	assert_int_equal(rec_count_lines(&r, "frame bigger than 1024 bytes"),
			 1);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.frames_too_big, 1);
	mllp_receiver_destroy(rv);
	free(big);
	rec_free(&r);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.idle_timeout_ms = 300;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	/* Silent client: closed after the timeout. */
	struct tc t;
	tc_connect(&t, port);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	/* Slowloris: one byte every 50 ms of a frame that never ends. The
	 * trickle is the load pattern, not synchronisation. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tc_connect(&t, port);
	const char *slow = "\x0bMSH|^~\\&|slow|loris|which|never|ends|at|all";
	bool closed = false;
	for (size_t i = 0; i < strlen(slow) && !closed; i++) {
		if (send(t.fd, slow + i, 1, MSG_NOSIGNAL) != 1) {
			closed = true;
			break;
		}
		struct pollfd pfd = {.fd = t.fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) == 1)
			closed = true;
	}
	assert_true(closed);
	assert_true(tc_wait_closed(&t));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs < 2.0);
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_IDLE_TIMEOUT], 2),
			 2);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_idle_timeout, 2);
	finish(rv, &r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_errors),
	    cmocka_unit_test(test_port_in_use),
	    cmocka_unit_test(test_start_stop),
	    cmocka_unit_test(test_conn_info_and_context),
	    cmocka_unit_test(test_two_concurrent_senders),
	    cmocka_unit_test(test_raw_text),
	    cmocka_unit_test(test_many_frames_one_packet),
	    cmocka_unit_test(test_junk_between_frames),
	    cmocka_unit_test(test_split_every_byte),
	    cmocka_unit_test(test_oversize_frame),
	    cmocka_unit_test(test_idle_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Reliability under faults: one test per fault of the fault-injection
 * receiver, with the exact outcome of every message and the connection's
 * recovery. Environment: see faults_util.h. */
#include "faults_util.h"

/* The first connection_closed of connection 0: its reason and delay. */
static void expect_closed(int reason, uint64_t delay_ms)
{
	struct ev cl;
	assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
	assert_int_equal(cl.reason, reason);
	assert_int_equal(cl.delay_ms, delay_ms);
}

/* A message fault that ends the first message in an error and closes the
 * connection: exact outcome, is_connected false inside the callback (the
 * connection is being closed), the telemetry sequence, recovery by an
 * immediate reconnect, and the next message accepted. */
static void error_and_recover(int fault, const struct mllp_pool_config *cfg,
			      const struct fr_config *fc, enum mllp_context ctx,
			      int reason, bool written, bool reached,
			      const char *events_before_close)
{
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, fc, fault, cfg);
	assert_true(wait_seq(0, "S", 2000));
	send_expect_error(&e, 1, ctx, reason, written, reached, false);
	assert_true(wait_up(&e, 5000));
	char want[64];
	snprintf(want, sizeof(want), "S%sCS", events_before_close);
	assert_true(wait_seq(0, want, 2000));
	expect_closed(reason, 0); /* reconnect at once */
	send_expect_aa(&e, 2);
	snprintf(want, sizeof(want), "S%sCSV", events_before_close);
	assert_true(wait_seq(0, want, 2000));
	expect_stats(&e, written ? 2 : 1, 1, 1);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(st.connect_failures, 0);
	if (reason <= MLLP_ERR_BASE)
		assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - reason], 1);
	else
		assert_int_equal(st.errors_os, 1);
	env_stop(&e);
}

/* error_and_recover() of a receive fault with the default configs: the
 * message was written and may have reached the receiver. */
static void recv_error_and_recover(int fault, int reason,
				   const char *events_before_close)
{
	error_and_recover(fault, NULL, NULL, MLLP_CTX_RECEIVE, reason, true,
			  true, events_before_close);
}

/* A message fault the client survives without closing: the first message
 * gets verdict v (or accept), the connection stays up (one connect). */
static void verdict_keep(int fault, enum mllp_verdict v,
			 const struct fr_config *fc)
{
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, fc, fault, NULL);
	g_rt = 5000; /* slow replies (bytewise) are not timeouts here */
	assert_true(wait_up(&e, 5000));
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_verdict(f, 1, v);
	assert_true(atomic_load(&pr.connected));
	mllp_future_free(f);
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SVV", 2000));
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.acked[v], v == MLLP_APPLICATION_ACCEPT ? 2 : 1);
	assert_int_equal(atomic_load(&e.fr.fired[fault]), 1);
	env_stop(&e);
}

/* ---- one test per scenario ------------------------------------------------
 */

/* Listener closed: connects are refused (connection_failure with
 * ECONNREFUSED, backoff 1 s, 2 s, 4 s before scaling), a send fails at once
 * with context send and "connection refused", never written; the listener
 * comes back and backoff brings the connection up without help. */
static void test_refuse(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	struct mllp_pool_config cfg;
	env_refusing(&e, &cfg);
	cfg.backoff_divisor = 20; /* 50, 100, 200 ms ... */
	env_pool(&e, &cfg, 1);
	assert_true(wait_seq(0, "FFF", 3000));
	for (int i = 0; i < 3; i++) {
		struct ev fe;
		assert_true(rec_find(0, MLLP_EV_CONNECTION_FAILURE, i, &fe));
		assert_int_equal(fe.reason, -ECONNREFUSED);
		assert_int_equal(fe.ctx, MLLP_CTX_CONNECT);
		assert_int_equal(fe.delay_ms, 1000u << i);
	}
	assert_false(mllp_pool_is_connected(e.pool, e.ep, 0));
	size_t len;
	char *m = hl7(1, &len);
	struct mllp_future *f = (void *)1;
	struct mllp_error err;
	int rc = mllp_pool_send(e.pool, e.ep, m, len, NULL, &f, &err);
	free(m);
	if (rc == 0) {
		/* A connect attempt was under way: the message waited for it
		 * and failed with its error. */
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		expect_error(f, MLLP_CTX_SEND, -ECONNREFUSED, false, false);
		mllp_future_free(f);
	} else {
		assert_int_equal(rc, -ECONNREFUSED);
		assert_null(f);
		assert_int_equal(err.context, MLLP_CTX_SEND);
		assert_string_equal(err.message, "connection refused");
	}
	fr_listen(&e.fr, true);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 2);
	/* The future may complete before its receive_valid event is
	 * delivered: wait (bounded) for the event, then check the rest. */
	char seq[256];
	size_t n = 0;
	uint64_t end = now_ms() + 5000;
	for (;;) {
		rec_seq(0, seq, sizeof(seq));
		n = strlen(seq);
		if ((n >= 2 && strcmp(seq + n - 2, "SV") == 0) ||
		    now_ms() > end)
			break;
		pause_ms(1);
	}
	assert_true(n >= 5);
	assert_string_equal(seq + n - 2, "SV");
	for (size_t i = 0; i + 2 < n; i++)
		assert_int_equal(seq[i], 'F');
	expect_stats(&e, 1, rc == 0 ? 1 : 0, 1);
	env_stop(&e);
}

/* Accepted, then reset at once: connection_success, connection_closed
 * (ECONNRESET), reconnect after the backoff delay, next message
 * accepted. */
static void test_reject(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, FR_REJECT, NULL);
	/* The reset may be seen after the connect completed (closed, from
	 * the receive side) or, with a readiness backend, as the connect's
	 * own result (connection_failure); either way ECONNRESET, and the
	 * backoff delay (idle, no reply yet), not a tight reconnect loop. */
	char seq[64];
	uint64_t end = now_ms() + 5000;
	do {
		pause_ms(1);
		rec_seq(0, seq, sizeof(seq));
	} while (strcmp(seq, "FS") && strcmp(seq, "SCS") && now_ms() < end);
	assert_true(wait_up(&e, 5000));
	struct ev cl;
	if (strcmp(seq, "FS") == 0) {
		assert_true(rec_find(0, MLLP_EV_CONNECTION_FAILURE, 0, &cl));
		assert_int_equal(cl.ctx, MLLP_CTX_CONNECT);
	} else {
		assert_string_equal(seq, "SCS");
		assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
		assert_int_equal(cl.ctx, MLLP_CTX_RECEIVE);
	}
	assert_int_equal(cl.reason, -ECONNRESET);
	assert_int_equal(cl.delay_ms, 1000);
	send_expect_aa(&e, 1);
	strcat(seq, "V");
	assert_true(wait_seq(0, seq, 2000));
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* Accepted, then closed at once (FIN): closed (connection closed), then a
 * reconnect; the next message is accepted. */
static void test_accept_close(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, NULL, FR_ACCEPT_CLOSE, NULL);
	assert_true(wait_seq(0, "SCS", 5000));
	expect_closed(MLLP_ERR_CLOSED, 1000);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 1);
	assert_true(wait_seq(0, "SCSV", 2000));
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* A receiver that accepts and closes every connection: the client keeps
 * reconnecting with backoff (not in a tight loop). */
static void test_accept_close_storm(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.backoff_divisor = 10; /* 100 ms, 200 ms, 400 ms ... */
	env_begin(&e, NULL);
	fr_set(&e.fr, FR_ACCEPT_CLOSE, 1000000, 0);
	env_pool(&e, &cfg, 1);
	pause_ms(600);
	int accepted = atomic_load(&e.fr.accepted);
	if (accepted > 8)
		fprintf(stderr, "accept-close storm: %d connects in 600 ms\n",
			accepted);
	/* 600 ms with 100 ms between attempts: a handful, not thousands. */
	assert_true(accepted >= 2);
	assert_true(accepted <= 10);
	fr_clear(&e.fr);
	env_stop(&e);
}

/* The receiver reads the message and closes without replying: receive /
 * connection closed, written (may have reached). */
static void test_close_no_reply(void **state)
{
	(void)state;
	recv_error_and_recover(FR_CLOSE_NO_REPLY, MLLP_ERR_CLOSED, "");
}

/* The same on a connection that has carried a reply: it reconnects at
 * once (connection_closed with delay 0). */
static void test_close_no_reply_proven(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, -1, NULL);
	send_expect_aa(&e, 1);
	fr_set(&e.fr, FR_CLOSE_NO_REPLY, 1000000, 1);
	send_expect_error(&e, 2, MLLP_CTX_RECEIVE, MLLP_ERR_CLOSED, true, true,
			  false);
	assert_true(wait_seq(0, "SVCS", 2000));
	struct ev cl;
	assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
	assert_int_equal(cl.delay_ms, 0);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 3);
	expect_stats(&e, 3, 1, 2);
	env_stop(&e);
}

/* Half of the reply, then RST: receive / ECONNRESET, written. */
static void test_rst_mid_reply(void **state)
{
	(void)state;
	recv_error_and_recover(FR_RST_MID_REPLY, -ECONNRESET, "");
}

/* No reply (half-open): receive / timed out after reply_timeout,
 * receive_timeout then connection_closed (abortive), reconnect. */
static void test_no_reply(void **state)
{
	(void)state;
	uint64_t t0 = now_ms();
	recv_error_and_recover(FR_NO_REPLY, MLLP_ERR_TIMEOUT, "T");
	assert_true(now_ms() - t0 >= 300);
}

/* A reply without trailer: the same as no reply (the timeout covers the
 * whole reply). */
static void test_no_trailer(void **state)
{
	(void)state;
	recv_error_and_recover(FR_NO_TRAILER, MLLP_ERR_TIMEOUT, "T");
}

/* Junk before SB: receive / invalid header, invalid_response, closed. */
static void test_junk_before(void **state)
{
	(void)state;
	recv_error_and_recover(FR_JUNK_BEFORE, MLLP_ERR_INVALID_HEADER, "I");
}

/* Bytes after the trailer in the same packet: data after trailer. */
static void test_data_after(void **state)
{
	(void)state;
	recv_error_and_recover(FR_DATA_AFTER, MLLP_ERR_DATA_AFTER_TRAILER, "I");
}

/* Two replies in one write: the second is data after the trailer. */
static void test_double_one_write(void **state)
{
	(void)state;
	recv_error_and_recover(FR_DOUBLE, MLLP_ERR_DATA_AFTER_TRAILER, "I");
}

/* A reply beyond max_reply: receive / frame too big, closed. */
static void test_oversize(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.max_reply = 4096;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.oversize = 8192;
	error_and_recover(FR_OVERSIZE, &cfg, &fc, MLLP_CTX_RECEIVE,
			  MLLP_ERR_FRAME_TOO_BIG, true, true, "I");
}

/* Two replies, the second 30 ms later: the message is accepted; the
 * second reply, an ACK for a message this connection has its answer to,
 * is a stale duplicate (some receivers resend earlier ACKs): dropped,
 * counted, the connection kept; the next message accepted on it. */
static void test_double_later(void **state)
{
	(void)state;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.double_pause_us = 30000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, &fc, FR_DOUBLE, NULL);
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_verdict(f, 1, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	assert_true(wait_seq(0, "SVD", 3000));
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SVDV", 3000));
	expect_stats(&e, 2, 0, 2);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.stale_replies, 1);
	assert_int_equal(st.connects, 1);
	env_stop(&e);
}

/* A reply before any message: unsolicited, closed, reconnected. */
static void test_unsolicited(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, NULL, FR_UNSOLICITED, NULL);
	assert_true(wait_seq(0, "SICS", 5000));
	expect_orphan_invalid(false, MLLP_ERR_UNSOLICITED);
	expect_closed(MLLP_ERR_UNSOLICITED, 1000);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 1);
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* Slow reply, one byte per write: accepted. */
static void test_bytewise(void **state)
{
	(void)state;
	verdict_keep(FR_BYTEWISE, MLLP_APPLICATION_ACCEPT, NULL);
}

/* EB and CR in separate writes: accepted. */
static void test_split_eb_cr(void **state)
{
	(void)state;
	verdict_keep(FR_SPLIT_EB_CR, MLLP_APPLICATION_ACCEPT, NULL);
}

/* Wrong MSA-2: verdict bad_message_control_id, connection kept. */
static void test_wrong_id(void **state)
{
	(void)state;
	verdict_keep(FR_WRONG_ID, MLLP_BAD_MESSAGE_CONTROL_ID, NULL);
}

/* AE / AR / CE / CR: the application verdicts, connection kept. */
static void test_app_codes(void **state)
{
	(void)state;
	verdict_keep(FR_AE, MLLP_APPLICATION_ERROR, NULL);
	verdict_keep(FR_AR, MLLP_APPLICATION_REJECT, NULL);
	verdict_keep(FR_CE, MLLP_APPLICATION_ERROR, NULL);
	verdict_keep(FR_CR, MLLP_APPLICATION_REJECT, NULL);
}

/* The receiver stops reading: a large message's send times out (context
 * send, not all written, may have reached), send_error then closed, and
 * the reconnected connection carries the next message. */
static void test_send_timeout(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.send_timeout_ms = 300;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, FR_STOP_READING, &cfg);
	size_t big = 32u << 20;
	unsigned char *raw = malloc(big);
	assert_non_null(raw);
	memset(raw, 'r', big);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_RAW;
	o.borrow_payload = true;
	struct probe pr = {.pool = e.pool, .ep = e.ep};
	o.callback = probe_cb;
	o.callback_arg = &pr;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(e.pool, e.ep, raw, big, &o, &f, NULL),
			 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	expect_error(f, MLLP_CTX_SEND, MLLP_ERR_TIMEOUT, false, true);
	uint64_t end = now_ms() + 5000;
	while (atomic_load(&pr.calls) == 0 && now_ms() < end)
		pause_ms(1);
	assert_int_equal(atomic_load(&pr.calls), 1);
	assert_false(atomic_load(&pr.connected));
	mllp_future_free(f);
	free(raw);
	assert_true(wait_up(&e, 5000));
	assert_true(wait_seq(0, "SECS", 2000));
	send_expect_aa(&e, 2);
	expect_stats(&e, 1, 1, 1);
	env_stop(&e);
}

int main(void)
{
	pthread_mutex_init(&g_rec.mu, NULL);
	const char *only = getenv("FAULTS_ONLY");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refuse),
	    cmocka_unit_test(test_reject),
	    cmocka_unit_test(test_accept_close),
	    cmocka_unit_test(test_accept_close_storm),
	    cmocka_unit_test(test_close_no_reply),
	    cmocka_unit_test(test_close_no_reply_proven),
	    cmocka_unit_test(test_rst_mid_reply),
	    cmocka_unit_test(test_no_reply),
	    cmocka_unit_test(test_no_trailer),
	    cmocka_unit_test(test_junk_before),
	    cmocka_unit_test(test_data_after),
	    cmocka_unit_test(test_double_one_write),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_double_later),
	    cmocka_unit_test(test_unsolicited),
	    cmocka_unit_test(test_bytewise),
	    cmocka_unit_test(test_split_eb_cr),
	    cmocka_unit_test(test_wrong_id),
	    cmocka_unit_test(test_app_codes),
	    cmocka_unit_test(test_send_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Reliability under faults: a listener that restarts, slow accepts, late
 * and wrong-id replies correlated, refused connects with a queue timeout,
 * oversize replies with the socket kept. Environment: see faults_util.h. */
#include "faults_util.h"

static int rec_count(enum mllp_event_kind k)
{
	int c = 0;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n; i++)
		c += g_rec.ev[i].kind == k;
	pthread_mutex_unlock(&g_rec.mu);
	return c;
}

/* The pool's connects counter is n. */
static void expect_connects(struct env *e, uint64_t n)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e->pool, &st);
	assert_int_equal(st.connects, n);
}

/* ---- listener restart and slow accept ------------------------------------ */

struct bulk {
	_Atomic int done, ok, failed, bad;
};

static void bulk_cb(struct mllp_future *f, void *arg)
{
	struct bulk *b = arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT) {
		atomic_fetch_add(&b->ok, 1);
	} else {
		atomic_fetch_add(&b->failed, 1);
		/* Closed under the message: the receiver may have it. */
		bool ok = (r->status == MLLP_ERR_CLOSED ||
			   r->status == -ECONNRESET || r->status == -EPIPE) &&
			  (!r->written || r->may_have_reached);
		if (!ok) {
			fprintf(stderr, "unexpected: %s %s\n",
				mllp_context_name(r->error.context),
				r->error.message);
			atomic_fetch_add(&b->bad, 1);
		}
	}
	atomic_fetch_add(&b->done, 1);
	mllp_future_free(f);
}

static void bulk_send(struct env *e, struct bulk *b, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		size_t len;
		char *m = hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.block = true;
		o.callback = bulk_cb;
		o.callback_arg = b;
		struct mllp_future *f;
		assert_int_equal(
		    mllp_pool_send(e->pool, e->ep, m, len, &o, &f, NULL), 0);
		free(m);
	}
}

static bool bulk_wait(struct bulk *b, int n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (atomic_load(&b->done) < n) {
		if (now_ms() > end)
			return false;
		pause_ms(1);
	}
	return true;
}

/* The listener restarts (every connection closed, same port) in the middle
 * of a run: messages in flight fail closed/reset (may have reached),
 * queued ones wait (queue_timeout), every connection comes back and the
 * run continues. */
static void test_restart_listener(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.queue_timeout_ms = 10000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_begin(&e, NULL);
	env_pool(&e, &cfg, 4);
	assert_true(wait_up(&e, 5000));
	struct bulk b;
	memset(&b, 0, sizeof(b));
	bulk_send(&e, &b, 0, 2000);
	while (atomic_load(&b.done) < 500)
		pause_ms(1);
	fr_restart(&e.fr);
	bulk_send(&e, &b, 2000, 2000);
	assert_true(bulk_wait(&b, 4000, 30000));
	assert_int_equal(atomic_load(&b.bad), 0);
	assert_true(atomic_load(&e.fr.restarts) == 1);
	assert_true(wait_up(&e, 5000));
	assert_true(rec_count(MLLP_EV_CONNECTION_CLOSED) >= 1);
	struct bulk c;
	memset(&c, 0, sizeof(c));
	bulk_send(&e, &c, 5000, 200);
	assert_true(bulk_wait(&c, 200, 10000));
	assert_int_equal(atomic_load(&c.ok), 200);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.errors, atomic_load(&b.failed));
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT],
			 atomic_load(&b.ok) + 200);
	assert_true(st.reconnects >= 4);
	env_stop(&e);
}

/* Slow accept: the receiver does not accept and its backlog is 1, so some
 * connects stay unanswered (connect timeout, connection_failure with
 * ETIMEDOUT) while others wait in the accept queue; messages wait
 * (queue_timeout). When accepting resumes, every message is accepted and
 * every connection comes up. */
static void test_slow_accept(void **state)
{
	(void)state;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.backlog = 1;
	fc.start_paused = true;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.connect_timeout_ms = 200;
	cfg.conn.queue_timeout_ms = 10000;
	cfg.conn.reply_timeout_ms = 5000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_begin(&e, &fc);
	env_pool(&e, &cfg, 4);
	struct bulk b;
	memset(&b, 0, sizeof(b));
	bulk_send(&e, &b, 0, 8);
	pause_ms(500);
	assert_int_equal(atomic_load(&b.done), 0);
	assert_int_equal(atomic_load(&e.fr.accepted), 0);
	int failures = rec_count(MLLP_EV_CONNECTION_FAILURE);
	for (int i = 0; i < failures; i++) {
		pthread_mutex_lock(&g_rec.mu);
		int reason = 0, k = 0;
		for (int j = 0; j < g_rec.n; j++)
			if (g_rec.ev[j].kind == MLLP_EV_CONNECTION_FAILURE &&
			    k++ == i)
				reason = g_rec.ev[j].reason;
		pthread_mutex_unlock(&g_rec.mu);
		assert_int_equal(reason, -ETIMEDOUT);
	}
	fr_pause_accept(&e.fr, false);
	assert_true(bulk_wait(&b, 8, 10000));
	assert_int_equal(atomic_load(&b.ok), 8);
	assert_true(wait_up(&e, 10000));
	fprintf(stderr, "slow accept: %d connect failures while paused\n",
		failures);
	env_stop(&e);
}

/* close_on_recv_error false: a late reply (after a reply timeout) is
 * dropped by MSA-2 correlation and never taken for the next message. */
static void test_late_reply_correlated(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.byte_pause_us = 5000; /* ~130 bytes: ~650 ms > reply timeout */
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, &fc, FR_BYTEWISE, &cfg);
	send_expect_error(&e, 1, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, true, true,
			  true); /* socket kept */
	/* Message 2 goes out while the late reply is still trickling in;
	 * its own reply comes after it. */
	g_rt = 5000;
	struct probe pr;
	struct mllp_future *g = send_wait(&e, 2, &pr);
	expect_verdict(g, 2, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(g);
	assert_true(wait_seq(0, "STIV", 3000));
	expect_orphan_invalid(true, 0);
	expect_connects(&e, 1);
	env_stop(&e);
}

/* Refused with queue_timeout: the message waits for a connection, then
 * fails with the last connect error (context send, never written). */
static void test_refuse_queue_timeout(void **state)
{
	(void)state;
	static struct env e;
	struct mllp_pool_config cfg;
	env_refusing(&e, &cfg);
	cfg.conn.queue_timeout_ms = 300;
	env_pool(&e, &cfg, 2);
	assert_true(wait_seq(0, "F", 3000));
	uint64_t t0 = now_ms();
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	assert_true(now_ms() - t0 >= 250);
	expect_error(f, MLLP_CTX_SEND, -ECONNREFUSED, false, false);
	assert_false(atomic_load(&pr.connected));
	mllp_future_free(f);
	fr_listen(&e.fr, true);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 2);
	expect_stats(&e, 1, 1, 1);
	env_stop(&e);
}

/* close_on_recv_error false and a reply far beyond max_reply: the message
 * fails (frame too big) and the rest of that reply must not be taken for
 * junk before the next message's reply. */
static void test_oversize_keep_socket(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	cfg.max_reply = 4096;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.oversize = 4u << 20;
	static struct env e;
	env_start_up(&e, &fc, FR_OVERSIZE, &cfg);
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_error(f, MLLP_CTX_RECEIVE, MLLP_ERR_FRAME_TOO_BIG, true, true);
	mllp_future_free(f);
	g_rt = 5000;
	for (int i = 2; i < 6; i++)
		send_expect_aa(&e, i);
	/* The socket was closed (abortively) and reconnected. */
	expect_connects(&e, 2);
	env_stop(&e);
}

/* close_on_recv_error false: a reply with a wrong MSA-2 is taken for a
 * late reply and dropped (orphan invalid_response); the message ends in a
 * reply timeout, the socket is kept, the next message is accepted. */
static void test_wrong_id_correlated(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	static struct env e;
	env_start_up(&e, NULL, FR_WRONG_ID, &cfg);
	send_expect_error(&e, 1, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, true, true,
			  true);
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SITV", 2000));
	expect_orphan_invalid(true, 0);
	expect_stats(&e, 2, 1, 1);
	env_stop(&e);
}

int main(void)
{
	pthread_mutex_init(&g_rec.mu, NULL);
	const char *only = getenv("FAULTS_ONLY");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restart_listener),
	    cmocka_unit_test(test_slow_accept),
	    cmocka_unit_test(test_late_reply_correlated),
	    cmocka_unit_test(test_wrong_id_correlated),
	    cmocka_unit_test(test_refuse_queue_timeout),
	    cmocka_unit_test(test_oversize_keep_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

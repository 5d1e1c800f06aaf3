/* Integration tests of the pool engine on loopback, ported from the
 * reference client suites: concurrent senders, asynchronous sends and
 * their telemetry, cancel and would-block, queue and send timeouts,
 * future waits and statistics. */
#include "pool_util.h"

struct conc_arg {
	struct mllp_client *c;
	int base;
	int bad;
};

static void *conc_main(void *arg)
{
	struct conc_arg *a = arg;
	for (int i = 0; i < 50; i++) {
		size_t len;
		int n = a->base + i;
		char *m = tr_hl7(n, &len);
		struct mllp_future *f;
		if (mllp_client_send(a->c, m, len, MLLP_PAYLOAD_HL7, 0, &f,
				     NULL) != 0) {
			a->bad++;
			free(m);
			continue;
		}
		const struct mllp_result *r = mllp_future_result(f);
		char want[32];
		snprintf(want, sizeof(want), "CTRL%d", n);
		if (r->status != 0 || r->verdict != MLLP_APPLICATION_ACCEPT ||
		    !mllp_str_eq(r->ack.control_id, want))
			a->bad++;
		mllp_future_free(f);
		free(m);
	}
	return NULL;
}

static void test_concurrent_senders(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	pthread_t th[4];
	struct conc_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct conc_arg){.c = c, .base = 1000 * (i + 1)};
		pthread_create(&th[i], NULL, conc_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].bad, 0);
	}
	stop_pair(c, &r);
}

static void test_send_async(void **state)
{
	(void)state;
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c = start_pair(&r, TR_ACK, &rec, NULL);
	size_t len;
	char *m = tr_hl7(7, &len);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send_async(c, m, len, MLLP_PAYLOAD_HL7, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, 0);
	assert_true(res->written);
	assert_false(res->has_verdict);
	mllp_future_free(f);
	/* Its reply goes to telemetry, not to the next message. */
	assert_true(wait_orphan(&rec, MLLP_EV_RECEIVE_VALID, true, 0, 5000));
	send_expect_aa(c, 8, 0);
	free(m);
	stop_pair(c, &r);
}

static void test_telemetry_sequence(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct tr r;
	tr_start(&r, port, TR_ACK);
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c = start_client(port, &rec, NULL);
	send_expect_aa(c, 1, 0);
	tr_stop(&r);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_FAILURE, 1, 5000));
	tr_start(&r, port, TR_ACK);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_SUCCESS, 2, 10000));
	enum mllp_event_kind want[] = {
	    MLLP_EV_CONNECTION_SUCCESS, MLLP_EV_RECEIVE_VALID,
	    MLLP_EV_CONNECTION_CLOSED, MLLP_EV_CONNECTION_FAILURE,
	    MLLP_EV_CONNECTION_SUCCESS};
	int k = 0;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n && k < 5; i++) {
		/* repeated failures collapse into one step */
		if (k > 0 && rec.ev[i].kind == MLLP_EV_CONNECTION_FAILURE &&
		    want[k - 1] == MLLP_EV_CONNECTION_FAILURE)
			continue;
		assert_int_equal(rec.ev[i].kind, want[k]);
		k++;
	}
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(k, 5);
	assert_string_equal(mllp_event_name(MLLP_EV_RECEIVE_VALID),
			    "receive_valid");
	stop_pair(c, &r);
}

static void test_cancel_and_would_block(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.queue_capacity = 2;
	cfg.conn.reply_timeout_ms = MLLP_INFINITE;
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 1, NULL, &ep, NULL),
	    0);
	struct mllp_future *f[3], *g = NULL;
	size_t len;
	char *m = tr_hl7(1, &len);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[0], NULL), 0);
	assert_true(tr_wait_count(&r.frames, 1, 5000));
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[1], NULL), 0);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[2], NULL), 0);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &g, NULL),
			 MLLP_ERR_WOULD_BLOCK);
	assert_null(g);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.block = true;
	o.block_timeout_ms = 50;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &g, NULL),
			 MLLP_ERR_WOULD_BLOCK);
	/* Cancel a queued message: never written. */
	assert_int_equal(mllp_future_cancel(f[2]), 0);
	assert_int_equal(mllp_future_wait(f[2], 5000), 0);
	assert_int_equal(mllp_future_result(f[2])->status, MLLP_ERR_CANCELED);
	assert_false(mllp_future_result(f[2])->may_have_reached);
	/* Cancel the one in flight: written, may have reached. */
	assert_int_equal(mllp_future_cancel(f[0]), 0);
	assert_int_equal(mllp_future_wait(f[0], 5000), 0);
	assert_int_equal(mllp_future_result(f[0])->status, MLLP_ERR_CANCELED);
	assert_true(mllp_future_result(f[0])->written);
	/* Room again: a blocking send gets in. */
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &g, NULL), 0);
	mllp_pool_stop(p);
	assert_int_equal(mllp_future_result(f[1])->status, MLLP_ERR_STOPPED);
	assert_int_equal(mllp_future_result(g)->status, MLLP_ERR_STOPPED);
	for (int i = 0; i < 3; i++)
		mllp_future_free(f[i]);
	mllp_future_free(g);
	mllp_pool_destroy(p);
	free(m);
	tr_stop(&r);
}

static void queue_wait(struct mllp_pool_config *cfg)
{
	cfg->conn.queue_timeout_ms = 5000;
}

static void test_queue_timeout_waits(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct mllp_client *c = start_client(port, NULL, queue_wait);
	size_t len;
	char *m = tr_hl7(11, &len);
	struct mllp_future *f;
	/* Down, but queue_timeout > 0: the message waits for a connection. */
	assert_int_equal(
	    mllp_client_send_async(c, m, len, MLLP_PAYLOAD_HL7, &f, NULL), 0);
	struct tr r;
	tr_start(&r, port, TR_ACK);
	assert_int_equal(mllp_future_wait(f, 8000), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	mllp_future_free(f);
	free(m);
	stop_pair(c, &r);
}

static void short_send_timeout(struct mllp_pool_config *cfg)
{
	cfg->conn.send_timeout_ms = 300;
}

/* A receiver that stops reading: the send times out (context send), the
 * message may have reached it (partly written), the socket is closed. */
static void test_send_timeout(void **state)
{
	(void)state;
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c =
	    start_pair(&r, TR_STALL, &rec, short_send_timeout);
	size_t len = 64u << 20;
	char *big = malloc(len);
	memset(big, 'x', len);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(c, big, len, MLLP_PAYLOAD_RAW, 0, &f, NULL), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(res->error.context, MLLP_CTX_SEND);
	assert_false(res->written);
	assert_true(res->may_have_reached);
	assert_int_equal(ti_count(&rec, MLLP_EV_SEND_ERROR), 1);
	mllp_future_free(f);
	free(big);
	stop_pair(c, &r);
}

static void test_future_wait_timeout_and_stats(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	assert_string_equal(mllp_pool_backend(p), ti_backend_name());
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 2, NULL, &ep, NULL),
	    0);
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_future *f;
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.reply_timeout_ms = 150;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 10), MLLP_ERR_TIMEOUT);
	assert_false(mllp_future_poll(f));
	assert_null(mllp_future_result(f));
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	mllp_future_free(f);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT], 1);
	assert_true(st.connects >= 2);
	free(m);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_senders),
	    cmocka_unit_test(test_send_async),
	    cmocka_unit_test(test_telemetry_sequence),
	    cmocka_unit_test(test_cancel_and_would_block),
	    cmocka_unit_test(test_queue_timeout_waits),
	    cmocka_unit_test(test_send_timeout),
	    cmocka_unit_test(test_future_wait_timeout_and_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

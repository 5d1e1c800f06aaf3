/* MSH-15 NE over TLS: a message that asks for no accept ACK completes
 * once its TLS records are handed to the kernel, one in flight and in a
 * window of 8, small messages and one spanning several records; messages
 * in between that ask for one (AL) get their CA. Against the library
 * receiver with TLS (its echo dispatcher answers nothing for NE). Run
 * once per backend (MLLP_TEST_BACKEND). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "common.h"
#include "tls_helpers.h"

#define REPLY_TIMEOUT_MS 30000
#define WAIT_MS		 3000
#define BIG		 (48 * 1024)

/* A message CTRL<i>, MSH-15 acc, MSH-16 NE, a PID segment of pad bytes. */
static char *make_msg(int i, const char *acc, size_t pad, size_t *len)
{
	char *m = malloc(pad + 256);
	assert_non_null(m);
	int l = snprintf(m, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A08|"
			 "CTRL%d|P|2.5|||%s|NE\rPID|1||",
			 i, acc);
	memset(m + l, 'x', pad);
	m[(size_t)l + pad] = '\r';
	*len = (size_t)l + pad + 1;
	return m;
}

static int srv_msgs(struct srv *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->msgs;
	pthread_mutex_unlock(&s->mu);
	return n;
}

struct msgs_min {
	struct srv *s;
	int n;
};

static bool msgs_reached(void *arg)
{
	struct msgs_min *w = arg;
	return srv_msgs(w->s) >= w->n;
}

/* n messages (every fourth AL, the rest NE; message 1 BIG bytes) over
 * TLS with max_inflight window. */
static void run(uint32_t window, int n)
{
	struct srv s;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	srv_start(&s, &st);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_conn_options o;
	cli_conn_options(&o, &ct);
	o.reply_timeout_ms = REPLY_TIMEOUT_MS;
	o.max_inflight = window;
	struct cli c;
	struct mllp_error e;
	if (cli_open_opts(&c, "127.0.0.1", s.port, &o, 1, &e) != 0)
		fail_msg("add_endpoint: %s", e.message);
	struct mllp_future **f = calloc((size_t)n, sizeof(*f));
	assert_non_null(f);
	for (int i = 0; i < n; i++) {
		size_t len;
		char *m = make_msg(i, i % 4 == 3 ? "AL" : "NE",
				   i == 1 ? BIG : 8, &len);
		if (mllp_pool_send(c.pool, c.ep, m, len, NULL, &f[i], &e) != 0)
			fail_msg("send: %s", e.message);
		free(m);
		if (window == 1)
			assert_int_equal(mllp_future_wait(f[i], WAIT_MS), 0);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(mllp_future_wait(f[i], WAIT_MS), 0);
		const struct mllp_result *r = mllp_future_result(f[i]);
		if (r->status != 0)
			fail_msg("message %d: %s", i, r->error.message);
		assert_true(r->written);
		if (i % 4 == 3) {
			assert_true(r->has_verdict);
			assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
			assert_true(mllp_str_eq(r->ack.code, "CA"));
		} else {
			assert_false(r->has_verdict);
			assert_null(r->reply);
		}
		mllp_future_free(f[i]);
	}
	free(f);
	struct msgs_min w = {&s, n};
	assert_true(wait_until(msgs_reached, &w, 5000));
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	assert_int_equal(mllp_pool_get_stats(c.pool, &ps), 0);
	assert_int_equal(ps.sent, (uint64_t)n);
	assert_int_equal(ps.errors, 0);
	assert_int_equal(ps.connects, 1);
	assert_int_equal(ps.tls_handshakes, 1);
	assert_int_equal(ps.late_accept_acks, 0);
	cli_close(&c);
	srv_stop(&s);
}

static void test_ne_tls_one(void **state)
{
	(void)state;
	run(1, 12);
}

static void test_ne_tls_window(void **state)
{
	(void)state;
	run(8, 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ne_tls_one),
	    cmocka_unit_test(test_ne_tls_window),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

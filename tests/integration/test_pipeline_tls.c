/* Pipelining over TLS: a window of messages written through the TLS
 * stream together (several records a flight, flights written in parts),
 * each reply matched by MSA-2; raw payloads in order with
 * replies_in_order. Against the library receiver with TLS. Run once per
 * backend (MLLP_TEST_BACKEND). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "common.h"
#include "tls_helpers.h"

#define N 96
#define W 16

struct ack_srv {
	struct mllp_receiver *r;
	uint16_t port;
	struct mllp_ack_dispatcher d;
};

/* Every frame answered with its own bytes. */
static void echo_bytes(void *ctx, const struct mllp_message *m,
		       struct mllp_reply *rep)
{
	(void)ctx;
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = m->data;
	rep->len = m->len;
}

/* The library receiver with TLS t: ACKs (AA, MSA-2 = MSH-10), or echo
 * the bytes. */
static void ack_srv_start(struct ack_srv *s,
			  const struct mllp_tls_server_config *t, bool echo)
{
	struct mllp_receiver_config rc;
	mllp_ack_dispatcher_init(&s->d);
	ti_receiver_config(&rc, echo ? echo_bytes : mllp_dispatch_ack, &s->d);
	rc.tls = t;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &s->r, &e) != 0)
		fail_msg("receiver start: %s", e.message);
	s->port = mllp_receiver_port(s->r);
}

/* A message with control id CTRL<i> and a PID segment of pad bytes. */
static char *make_msg(int i, size_t pad, size_t *len)
{
	char *m = malloc(pad + 256);
	assert_non_null(m);
	int l = snprintf(m, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A08|"
			 "CTRL%d|P|2.5\rPID|1||",
			 i);
	memset(m + l, 'x', pad);
	m[(size_t)l + pad] = '\r';
	*len = (size_t)l + pad + 1;
	return m;
}

static void open_cli(struct cli *c, uint16_t port, bool in_order)
{
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_conn_options o;
	cli_conn_options(&o, &ct);
	o.max_inflight = W;
	o.replies_in_order = in_order;
	struct mllp_error e;
	assert_int_equal(cli_open_opts(c, "localhost", port, &o, 1, &e), 0);
}

/* 96 messages of 6 KiB each (about 100 KiB a window: many TLS records,
 * flights written in parts), every one answered with its own AA. */
static void test_tls_window(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	static struct ack_srv s;
	ack_srv_start(&s, &st, false);
	struct cli c;
	open_cli(&c, s.port, false);
	static struct mllp_future *f[N];
	static char *msg[N];
	for (int i = 0; i < N; i++) {
		size_t len;
		msg[i] = make_msg(i, 6000, &len);
		assert_int_equal(mllp_pool_send(c.pool, c.ep, msg[i], len, NULL,
						&f[i], NULL),
				 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(mllp_future_wait(f[i], 10000), 0);
		const struct mllp_result *r = mllp_future_result(f[i]);
		char want[16];
		snprintf(want, sizeof(want), "CTRL%d", i);
		assert_int_equal(r->status, 0);
		assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
		assert_int_equal(r->ack.control_id.len, strlen(want));
		assert_memory_equal(r->ack.control_id.ptr, want, strlen(want));
		mllp_future_free(f[i]);
		free(msg[i]);
	}
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(c.pool, &ps);
	assert_int_equal(ps.acked[MLLP_APPLICATION_ACCEPT], N);
	assert_int_equal(ps.errors, 0);
	assert_int_equal(ps.connects, 1);
	cli_close(&c);
	mllp_receiver_destroy(s.r);
}

/* Raw payloads, replies_in_order: pipelined over TLS, each gets its own
 * echo. */
static void test_tls_raw_in_order(void **state)
{
	(void)state;
	struct mllp_tls_server_config st;
	server_cfg(&st);
	static struct ack_srv s;
	ack_srv_start(&s, &st, true);
	struct cli c;
	open_cli(&c, s.port, true);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_RAW;
	static struct mllp_future *f[N];
	static char body[N][32];
	for (int i = 0; i < N; i++) {
		int l = snprintf(body[i], sizeof(body[i]), "raw %d", i);
		assert_int_equal(mllp_pool_send(c.pool, c.ep, body[i],
						(size_t)l, &so, &f[i], NULL),
				 0);
	}
	for (int i = 0; i < N; i++) {
		assert_int_equal(mllp_future_wait(f[i], 10000), 0);
		const struct mllp_result *r = mllp_future_result(f[i]);
		assert_int_equal(r->status, 0);
		assert_int_equal(r->reply_len, strlen(body[i]));
		assert_memory_equal(r->reply, body[i], r->reply_len);
		mllp_future_free(f[i]);
	}
	cli_close(&c);
	mllp_receiver_destroy(s.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tls_window),
	    cmocka_unit_test(test_tls_raw_in_order),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

/* MLLP release 2 over TLS: the pool and the receiver exchange commit ACKs
 * (and a NAK, then the resend's commit ACK) through the TLS stream; the HL7
 * ACK that follows each commit ACK is verified. Certificates are made at
 * run time by tests/make_certs.sh. Backend: MLLP_TEST_BACKEND (common.h).
 * Ephemeral ports; every wait is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/mllp.h>

#include "common.h"
#include "testutil.h"
#include "tls_helpers.h"

static _Atomic int g_frames;
static _Atomic int g_nak_first;

static void nak_first(void *ctx, const struct mllp_message *m,
		      struct mllp_reply *rep)
{
	if (atomic_fetch_add(&g_frames, 1) < atomic_load(&g_nak_first)) {
		rep->kind = MLLP_REPLY_NAK;
		return;
	}
	mllp_dispatch_echo(ctx, m, rep);
}

static void r2_tls_case(int naks)
{
	atomic_store(&g_frames, 0);
	atomic_store(&g_nak_first, naks);
	struct mllp_tls_server_config st;
	server_cfg(&st);
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, nak_first, NULL);
	rc.tls = &st;
	rc.mllp_release = 2;
	struct mllp_receiver *r = NULL;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &r, &e) != 0)
		fail_msg("receiver: %s", e.message);

	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_pool_config cfg;
	ti_config(&cfg, &rec);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	struct mllp_tls_client_config ct;
	client_cfg(&ct);
	struct mllp_conn_options o;
	cli_conn_options(&o, &ct);
	o.mllp_release = 2;
	o.queue_timeout_ms = 5000;
	uint32_t ep;
	if (mllp_pool_add_endpoint(p, "localhost", mllp_receiver_port(r), 1, &o,
				   &ep, &e) != 0)
		fail_msg("add_endpoint: %s", e.message);
	enum { N = 4 };
	for (int i = 0; i < N; i++) {
		struct mllp_future *f = NULL;
		assert_int_equal(
		    mllp_pool_send(p, ep, HL7, strlen(HL7), NULL, &f, NULL), 0);
		assert_int_equal(mllp_future_wait(f, 15000), 0);
		const struct mllp_result *res = mllp_future_result(f);
		if (res->status != 0)
			fail_msg("status %s: %s", mllp_err_name(res->status),
				 res->error.message);
		assert_int_equal(res->reply_len, 1);
		assert_int_equal(res->reply[0], 0x06);
		mllp_future_free(f);
	}
	assert_true(ti_wait_count(&rec, MLLP_EV_RECEIVE_VALID, N, 5000));
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(p, &ps);
	assert_int_equal(ps.tls_handshakes, 1);
	assert_int_equal(ps.acked[MLLP_APPLICATION_ACCEPT], N);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
	assert_int_equal(atomic_load(&g_frames), N + naks);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), N);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_NAK), naks);
}

static void test_r2_commit_ack_tls(void **state)
{
	(void)state;
	r2_tls_case(0);
}

static void test_r2_nak_then_success_tls(void **state)
{
	(void)state;
	r2_tls_case(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_r2_commit_ack_tls),
	    cmocka_unit_test(test_r2_nak_then_success_tls),
	};
	return cmocka_run_group_tests(tests, tt_certs_setup, tt_certs_teardown);
}

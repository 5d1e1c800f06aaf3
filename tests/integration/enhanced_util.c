/* What the enhanced acknowledgement mode suites share: see
 * enhanced_util.h. */
#include "enhanced_util.h"

#include <stdio.h>

#include "testutil.h"

#include "common.h"

size_t te_make_msg(char *b, size_t cap, int n, const char *acc, const char *app)
{
	return (size_t)snprintf(b, cap,
				"MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||"
				"ADT^A01|CTRL%d|P|2.5|||%s|%s\rPID|1||%d\r",
				n, acc, app, n);
}

struct mllp_receiver *te_ack_receiver(struct mllp_ack_dispatcher *d,
				      const char *code)
{
	mllp_ack_dispatcher_init(d);
	d->code = code;
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_ack, d);
	struct mllp_receiver *r = NULL;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &r, &e) != 0)
		fail_msg("receiver: %s", e.message);
	return r;
}

static void answer_aa(void *ctx, const struct mllp_message *m,
		      struct mllp_reply *rep)
{
	(void)ctx;
	(void)m;
	rep->kind = MLLP_REPLY_ACK;
	rep->ack_code = "AA";
}

struct mllp_receiver *te_aa_receiver(void)
{
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, answer_aa, NULL);
	struct mllp_receiver *r = NULL;
	assert_int_equal(mllp_receiver_create(&rc, &r, NULL), 0);
	return r;
}

void te_expect_verdict(const struct mllp_result *r, const char *code,
		       enum mllp_verdict v)
{
	if (r->status != 0)
		fail_msg("status %s: %s", mllp_err_name(r->status),
			 r->error.message);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, v);
	assert_true(mllp_str_eq(r->ack.code, code));
}

void te_listen_acks(struct mllp_pool *p, int64_t timeout_ms)
{
	struct mllp_ack_listen_config lc;
	mllp_ack_listen_config_init(&lc);
	lc.address = "127.0.0.1";
	lc.port = 0;
	lc.backend = ti_backend();
	lc.application_ack_timeout_ms = timeout_ms;
	struct mllp_error e;
	if (mllp_pool_listen_acks(p, &lc, &e) != 0)
		fail_msg("listen_acks: %s", e.message);
}

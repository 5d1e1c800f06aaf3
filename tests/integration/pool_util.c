/* Helpers shared by the pool suites (see pool_util.h). */
#include "pool_util.h"

struct mllp_client *start_client(uint16_t port, struct ti_rec *rec,
				 void (*tweak)(struct mllp_pool_config *))
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	if (tweak)
		tweak(&cfg);
	struct mllp_client *c = NULL;
	struct mllp_error err;
	int rc = mllp_client_create("127.0.0.1", port, &cfg, &c, &err);
	if (rc != 0)
		fprintf(stderr, "client start: %s\n", err.message);
	assert_int_equal(rc, 0);
	return c;
}

/* Start a test receiver in mode on a free port, then a client to it
 * (rec: initialised first when not NULL). */
struct mllp_client *start_pair(struct tr *r, enum tr_mode mode,
			       struct ti_rec *rec,
			       void (*tweak)(struct mllp_pool_config *))
{
	tr_start(r, 0, mode);
	if (rec)
		ti_rec_init(rec);
	return start_client(r->port, rec, tweak);
}

/* Stop the client, then the test receiver. */
void stop_pair(struct mllp_client *c, struct tr *r)
{
	mllp_client_destroy(c);
	tr_stop(r);
}

bool client_up(void *arg)
{
	return mllp_client_is_connected(arg);
}

/* Send an HL7 message with control id CTRL<n>; expect application_accept
 * with MSA-2 == CTRL<n>. */
void send_expect_aa(struct mllp_client *c, int n, int64_t rt)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_future *f;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, rt, &f, &err);
	if (rc != 0)
		fprintf(stderr, "send: %s\n", err.message);
	assert_int_equal(rc, 0);
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != 0)
		fprintf(stderr, "result: %s\n", r->error.message);
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	char want[32];
	snprintf(want, sizeof(want), "CTRL%d", n);
	assert_true(mllp_str_eq(r->ack.control_id, want));
	assert_true(mllp_str_eq(r->ack.code, "AA"));
	mllp_future_free(f);
	free(m);
}

bool has_orphan(void *arg)
{
	struct orphan_want *w = arg;
	struct ti_rec *rec = w->rec;
	bool ok = false;
	pthread_mutex_lock(&rec->mu);
	for (int i = 0; i < rec->n; i++)
		if (rec->ev[i].kind == w->kind && rec->ev[i].orphan &&
		    (w->any_reason || rec->ev[i].reason == w->reason))
			ok = true;
	pthread_mutex_unlock(&rec->mu);
	return ok;
}

bool wait_orphan(struct ti_rec *rec, enum mllp_event_kind kind, bool any_reason,
		 int reason, int timeout_ms)
{
	struct orphan_want w = {rec, kind, any_reason, reason};
	return tr_wait_until(has_orphan, &w, timeout_ms);
}

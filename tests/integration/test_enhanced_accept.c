/* Enhanced acknowledgement mode, MSH-15 on the pool's accept stage: a
 * message whose MSH-15 is NE (never) or ER (only on error or reject) gets
 * no accept ACK from a receiver that honours it, so it completes when
 * written (status 0, no verdict, no reply), well inside a long reply
 * timeout; SU still waits (no reply: a timeout). An answer that comes
 * anyway — a CE for ER, an AA from a receiver in original mode — is a
 * late accept ACK: dropped, counted, reported, never credited to another
 * message, the connection kept; a CE ends the message's application
 * stage as not accepted. One message in flight and a window of 8.
 * Run once per backend (MLLP_TEST_BACKEND). Ephemeral ports; every wait
 * is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "enhanced_util.h"
#include "netutil.h"

/* Long enough that a message waiting for a reply fails the test's own
 * deadline (WAIT_MS) first. */
#define REPLY_TIMEOUT_MS 30000
#define WAIT_MS		 3000
#define MSGS		 20

/* The MLLP frame of an ACK with MSA-1 code and MSA-2 id; its length. */
static size_t put_ack(char *b, size_t cap, const char *code, const char *id)
{
	int n = snprintf(b, cap,
			 "\x0bMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120001||"
			 "ACK^A01^ACK|A%s|P|2.5\rMSA|%s|%s\r\x1c\r",
			 id, code, id);
	assert_true(n > 0 && (size_t)n < cap);
	return (size_t)n;
}

/* The pool's log lines about late accept ACKs: how many, the first. */
static struct logs {
	pthread_mutex_t mu;
	int late;
	char first[512];
} g_log = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void count_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct logs *g = ctx;
	(void)l;
	pthread_mutex_lock(&g->mu);
	if (strstr(line, "Late accept") && g->late++ == 0)
		snprintf(g->first, sizeof(g->first), "%s", line);
	pthread_mutex_unlock(&g->mu);
}

static void log_reset(void)
{
	pthread_mutex_lock(&g_log.mu);
	g_log.late = 0;
	g_log.first[0] = 0;
	pthread_mutex_unlock(&g_log.mu);
}

/* A pool of cfg with one endpoint (one connection) to 127.0.0.1:port, in
 * *ep. */
static struct mllp_pool *pool_to(const struct mllp_pool_config *cfg,
				 uint16_t port, uint32_t *ep)
{
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(cfg, &p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", port, 1, NULL, ep, NULL), 0);
	return p;
}

/* A pool to port: reply timeout REPLY_TIMEOUT_MS, max_inflight window,
 * telemetry into rec (may be NULL), an ack listener when listen. */
static struct mllp_pool *pool_start(struct ti_rec *rec, uint16_t port,
				    uint32_t window, bool listen, uint32_t *ep)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	log_reset();
	cfg.log = count_log;
	cfg.log_ctx = &g_log;
	cfg.log_level = MLLP_LOG_INFO;
	cfg.conn.queue_timeout_ms = 5000;
	cfg.conn.reply_timeout_ms = REPLY_TIMEOUT_MS;
	cfg.conn.max_inflight = window;
	struct mllp_pool *p = pool_to(&cfg, port, ep);
	if (listen)
		te_listen_acks(p, 60000);
	return p;
}

static struct mllp_future *send_msg(struct mllp_pool *p, uint32_t ep, int n,
				    const char *acc, const char *app)
{
	char msg[256];
	size_t l = te_make_msg(msg, sizeof(msg), n, acc, app);
	struct mllp_future *f = NULL;
	struct mllp_error e;
	if (mllp_pool_send(p, ep, msg, l, NULL, &f, &e) != 0)
		fail_msg("send: %s", e.message);
	return f;
}

/* f completed within WAIT_MS as written, without verdict or reply. */
static void expect_written(struct mllp_future *f)
{
	assert_int_equal(mllp_future_wait(f, WAIT_MS), 0);
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status != 0)
		fail_msg("status %s: %s", mllp_err_name(r->status),
			 r->error.message);
	assert_true(r->written);
	assert_false(r->has_verdict);
	assert_null(r->reply);
	assert_int_equal(r->reply_len, 0);
}

static void expect_accept(struct mllp_future *f, const char *code)
{
	assert_int_equal(mllp_future_wait(f, WAIT_MS), 0);
	te_expect_verdict(mllp_future_result(f), code, MLLP_APPLICATION_ACCEPT);
}

static void pool_stats(struct mllp_pool *p, uint32_t ep,
		       struct mllp_pool_stats *st,
		       struct mllp_endpoint_stats *es)
{
	mllp_pool_stats_init(st);
	assert_int_equal(mllp_pool_get_stats(p, st), 0);
	mllp_endpoint_stats_init(es);
	assert_int_equal(mllp_pool_get_endpoint_stats(p, ep, es), 0);
}

/* A tr_wait_until() predicate: the pool's late_accept_acks reached n. */
struct late_min {
	struct mllp_pool *p;
	uint64_t n;
};

static bool late_reached(void *arg)
{
	struct late_min *w = arg;
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(w->p, &st);
	return st.late_accept_acks >= w->n;
}

static void wait_late(struct mllp_pool *p, uint64_t n)
{
	struct late_min w = {p, n};
	assert_true(tr_wait_until(late_reached, &w, 5000));
}

/* A receiver with the built-in ack dispatcher d answering AA in *r, and a
 * pool of pool_start (telemetry into rec, max_inflight window, no ack
 * listener) with one endpoint to it, in *ep. */
static struct mllp_pool *ack_pair(struct ti_rec *rec,
				  struct mllp_ack_dispatcher *d,
				  uint32_t window, struct mllp_receiver **r,
				  uint32_t *ep)
{
	*r = te_ack_receiver(d, "AA");
	return pool_start(rec, mllp_receiver_port(*r), window, false, ep);
}

/* NE and ER to a receiver that honours MSH-15: each completes when
 * written, long before the reply timeout; the connection takes the next
 * message at once. An AL message after them gets its CA. */
static void test_ne_er_written(void **state)
{
	(void)state;
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = ack_pair(&rec, &d, 1, &r, &ep);
	for (int i = 0; i < 4; i++) {
		struct mllp_future *f =
		    send_msg(p, ep, i, i % 2 ? "ER" : "NE", "NE");
		expect_written(f);
		mllp_future_free(f);
	}
	struct mllp_future *f = send_msg(p, ep, 9, "AL", "NE");
	expect_accept(f, "CA");
	mllp_future_free(f);
	struct mllp_pool_stats st;
	struct mllp_endpoint_stats es;
	pool_stats(p, ep, &st, &es);
	assert_int_equal(st.sent, 5);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], 1);
	assert_int_equal(st.late_accept_acks, 0);
	assert_int_equal(st.connects, 1);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_VALID), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_LATE_ACCEPT_ACK), 0);
	assert_int_equal(d.counts[MLLP_ACK_CA], 1);
	mllp_receiver_destroy(r);
}

/* SU keeps waiting: a receiver that refuses sends nothing, and no reply
 * is no confirmation: the reply timeout. */
static void test_su_times_out(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r = te_ack_receiver(&d, "AE");
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.conn.reply_timeout_ms = 300;
	uint32_t ep;
	struct mllp_pool *p = pool_to(&cfg, mllp_receiver_port(r), &ep);
	struct mllp_future *f = send_msg(p, ep, 1, "SU", "NE");
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(res->error.context, MLLP_CTX_RECEIVE);
	assert_true(res->written);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

/* ---- a scripted receiver ---------------------------------------------- */

/* CTRL1 (ER) is not answered; CTRL2 (AL) is answered by a CE for CTRL1
 * and then its own CA, in one write; CTRL3 (AL) by its CA. */
struct late_srv {
	struct tn_peer peer;
	_Atomic int frames;
};

static bool late_frames(void *ctx, int fd, char *buf, size_t *len)
{
	struct late_srv *s = ctx;
	int n;
	while ((n = tn_take_ctrl_frame(buf, len)) >= 0) {
		atomic_fetch_add(&s->frames, 1);
		char out[512];
		size_t o = 0;
		if (n == 2)
			o += put_ack(out, sizeof(out), "CE", "CTRL1");
		if (n >= 2) {
			char id[32];
			snprintf(id, sizeof(id), "CTRL%d", n);
			o += put_ack(out + o, sizeof(out) - o, "CA", id);
			tn_send_all(fd, out, o);
		}
	}
	return true;
}

/* ER: no answer is no error (done when written); the CE that comes later,
 * with the next message in flight, is a late accept ACK: not that
 * message's reply, counted, reported with its verdict; the ER message's
 * application stage ends as not accepted; the connection stays. */
static void test_er_late_ce(void **state)
{
	(void)state;
	static struct late_srv s;
	static struct ti_rec rec;
	memset(&s, 0, sizeof(s));
	ti_rec_init(&rec);
	tn_peer_start(&s.peer, late_frames, NULL, &s);
	uint32_t ep;
	struct mllp_pool *p = pool_start(&rec, s.peer.port, 1, true, &ep);
	struct mllp_future *f1 = send_msg(p, ep, 1, "ER", "AL");
	expect_written(f1);
	assert_true(mllp_future_has_application(f1));
	assert_int_equal(mllp_future_wait_application(f1, 0), MLLP_ERR_TIMEOUT);
	struct mllp_future *f2 = send_msg(p, ep, 2, "AL", "AL");
	expect_accept(f2, "CA");
	assert_true(
	    mllp_str_eq(mllp_future_result(f2)->ack.control_id, "CTRL2"));
	/* the CE came before CTRL2's CA: handled by now */
	assert_int_equal(mllp_future_wait_application(f1, WAIT_MS), 0);
	const struct mllp_result *a = mllp_future_application_result(f1);
	assert_int_equal(a->status, MLLP_ERR_NOT_ACCEPTED);
	assert_int_equal(a->error.context, MLLP_CTX_RECEIVE);
	assert_string_equal(a->error.message,
			    "no application acknowledgement: the accept "
			    "acknowledgement was CE");
	/* CTRL2's own stage still waits for its application ACK */
	assert_int_equal(mllp_future_wait_application(f2, 0), MLLP_ERR_TIMEOUT);
	struct mllp_future *f3 = send_msg(p, ep, 3, "AL", "NE");
	expect_accept(f3, "CA");
	struct mllp_pool_stats st;
	struct mllp_endpoint_stats es;
	pool_stats(p, ep, &st, &es);
	assert_int_equal(st.late_accept_acks, 1);
	assert_int_equal(es.late_accept_acks, 1);
	assert_int_equal(st.stale_replies, 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.connects, 1);
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	mllp_future_free(f1);
	mllp_future_free(f2);
	mllp_future_free(f3);
	mllp_pool_destroy(p);
	pthread_mutex_lock(&rec.mu);
	int late = 0;
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].kind == MLLP_EV_LATE_ACCEPT_ACK) {
			late++;
			assert_true(rec.ev[i].has_verdict);
			assert_int_equal(rec.ev[i].verdict,
					 MLLP_APPLICATION_ERROR);
			assert_true(rec.ev[i].orphan);
		}
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(late, 1);
	char want[512];
	snprintf(want, sizeof(want),
		 "Late accept acknowledgement from 127.0.0.1:%u: CE for "
		 "message 'CTRL1', which asked for none on success (MSH-15) "
		 "and completed when written; dropped (counted in "
		 "late_accept_acks)",
		 (unsigned)s.peer.port);
	assert_int_equal(g_log.late, 1);
	assert_string_equal(g_log.first, want);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 0);
	assert_string_equal(mllp_event_name(MLLP_EV_LATE_ACCEPT_ACK),
			    "late_accept_ack");
	tn_peer_stop(&s.peer);
}

/* ---- a receiver in original mode --------------------------------------- */

static void count_done(struct mllp_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

/* A receiver in original mode answers every NE message with AA anyway.
 * Each message completes once, when written; each AA comes after it
 * completed and is dropped as a late accept ACK, never credited to the
 * next message; the connection is never closed. window: max_inflight. */
static void aa_to_ne(uint32_t window)
{
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_receiver *r = te_aa_receiver();
	uint32_t ep;
	struct mllp_pool *p =
	    pool_start(&rec, mllp_receiver_port(r), window, false, &ep);
	static _Atomic int done;
	atomic_store(&done, 0);
	struct mllp_future *f[MSGS];
	for (int i = 0; i < MSGS; i++) {
		char msg[256];
		size_t l = te_make_msg(msg, sizeof(msg), i, "NE", "NE");
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.callback = count_done;
		o.callback_arg = (void *)&done;
		assert_int_equal(mllp_pool_send(p, ep, msg, l, &o, &f[i], NULL),
				 0);
		if (window == 1)
			expect_written(f[i]);
	}
	for (int i = 0; i < MSGS; i++) {
		expect_written(f[i]);
		mllp_future_free(f[i]);
	}
	wait_late(p, MSGS);
	assert_int_equal(atomic_load(&done), MSGS);
	struct mllp_pool_stats st;
	struct mllp_endpoint_stats es;
	pool_stats(p, ep, &st, &es);
	assert_int_equal(st.sent, MSGS);
	assert_int_equal(st.late_accept_acks, MSGS);
	assert_int_equal(es.late_accept_acks, MSGS);
	assert_int_equal(st.stale_replies, 0);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], 0);
	assert_int_equal(st.connects, 1);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_LATE_ACCEPT_ACK), MSGS);
	/* accepts are logged once per connection */
	assert_int_equal(g_log.late, 1);
	assert_non_null(strstr(g_log.first, ": AA for message 'CTRL"));
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_VALID), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 0);
	mllp_receiver_destroy(r);
}

static void test_original_mode_aa_to_ne(void **state)
{
	(void)state;
	aa_to_ne(1);
}

static void test_original_mode_aa_to_ne_window(void **state)
{
	(void)state;
	aa_to_ne(8);
}

/* A raw payload after NE messages, to a receiver in original mode: the
 * AAs owed to the NE messages are late accept ACKs, never taken as the
 * raw payload's reply (which names no message). window: max_inflight. */
static void raw_after_ne(uint32_t window)
{
	struct mllp_receiver *r = te_aa_receiver();
	uint32_t ep;
	struct mllp_pool *p =
	    pool_start(NULL, mllp_receiver_port(r), window, false, &ep);
	for (int round = 0; round < 5; round++) {
		struct mllp_future *f[3];
		for (int i = 0; i < 3; i++)
			f[i] = send_msg(p, ep, round * 10 + i, "NE", "NE");
		static const char raw[] = "not hl7";
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_RAW;
		struct mllp_future *g = NULL;
		assert_int_equal(
		    mllp_pool_send(p, ep, raw, sizeof(raw) - 1, &o, &g, NULL),
		    0);
		for (int i = 0; i < 3; i++) {
			expect_written(f[i]);
			mllp_future_free(f[i]);
		}
		assert_int_equal(mllp_future_wait(g, WAIT_MS), 0);
		const struct mllp_result *res = mllp_future_result(g);
		assert_int_equal(res->status, 0);
		assert_non_null(res->reply);
		if (memmem(res->reply, res->reply_len, "CTRL", 4))
			fail_msg("round %d: the raw payload got %.*s", round,
				 (int)res->reply_len, (const char *)res->reply);
		mllp_future_free(g);
		wait_late(p, (uint64_t)(round + 1) * 3);
	}
	struct mllp_pool_stats st;
	struct mllp_endpoint_stats es;
	pool_stats(p, ep, &st, &es);
	assert_int_equal(st.late_accept_acks, 15);
	assert_int_equal(st.raw_replies, 5);
	assert_int_equal(st.connects, 1);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

static void test_raw_after_ne(void **state)
{
	(void)state;
	raw_after_ne(1);
	raw_after_ne(8);
}

/* NE with MSH-16 AL and an ack listener, to a receiver in original mode:
 * its late AA is the application ACK (as an AA in the accept stage would
 * be), taken from the connection, not the listener. */
static void test_original_mode_late_aa_app_stage(void **state)
{
	(void)state;
	struct mllp_receiver *r = te_aa_receiver();
	uint32_t ep;
	struct mllp_pool *p =
	    pool_start(NULL, mllp_receiver_port(r), 1, true, &ep);
	struct mllp_future *f = send_msg(p, ep, 1, "NE", "AL");
	expect_written(f);
	assert_true(mllp_future_has_application(f));
	assert_int_equal(mllp_future_wait_application(f, WAIT_MS), 0);
	const struct mllp_result *a = mllp_future_application_result(f);
	assert_int_equal(a->status, 0);
	assert_true(a->has_verdict);
	assert_int_equal(a->verdict, MLLP_APPLICATION_ACCEPT);
	assert_true(mllp_str_eq(a->ack.code, "AA"));
	assert_true(mllp_str_eq(a->ack.control_id, "CTRL1"));
	struct mllp_ack_listen_stats s;
	mllp_ack_listen_stats_init(&s);
	assert_int_equal(mllp_pool_ack_stats(p, &s), 0);
	assert_int_equal(s.pending, 0);
	assert_int_equal(s.received, 0);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

/* max_inflight 8: NE messages leave the window when written, AL ones in
 * between get their CA; none waits for the reply timeout. */
static void test_ne_window(void **state)
{
	(void)state;
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = ack_pair(&rec, &d, 8, &r, &ep);
	enum { N = 64 };
	struct mllp_future *f[N];
	for (int i = 0; i < N; i++)
		f[i] = send_msg(p, ep, i, i % 4 == 3 ? "AL" : "NE", "NE");
	for (int i = 0; i < N; i++) {
		if (i % 4 == 3)
			expect_accept(f[i], "CA");
		else
			expect_written(f[i]);
		mllp_future_free(f[i]);
	}
	struct mllp_pool_stats st;
	struct mllp_endpoint_stats es;
	pool_stats(p, ep, &st, &es);
	assert_int_equal(st.sent, N);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], N / 4);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.connects, 1);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 0);
	mllp_receiver_destroy(r);
}

/* MLLP release 2 is about transport: an NE or ER message still waits for
 * its commit ACK (the reply: the byte 0x06), not for its write. */
static void test_r2_waits_for_commit(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_ack, &d);
	rc.mllp_release = 2;
	struct mllp_receiver *r = NULL;
	assert_int_equal(mllp_receiver_create(&rc, &r, NULL), 0);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.conn.mllp_release = 2;
	uint32_t ep;
	struct mllp_pool *p = pool_to(&cfg, mllp_receiver_port(r), &ep);
	for (int i = 0; i < 2; i++) {
		struct mllp_future *f =
		    send_msg(p, ep, i, i ? "ER" : "NE", "NE");
		assert_int_equal(mllp_future_wait(f, WAIT_MS), 0);
		const struct mllp_result *res = mllp_future_result(f);
		assert_int_equal(res->status, 0);
		assert_false(res->has_verdict);
		assert_int_equal(res->reply_len, 1);
		assert_int_equal(res->reply[0], 0x06);
		mllp_future_free(f);
	}
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ne_er_written),
	    cmocka_unit_test(test_su_times_out),
	    cmocka_unit_test(test_er_late_ce),
	    cmocka_unit_test(test_original_mode_aa_to_ne),
	    cmocka_unit_test(test_original_mode_aa_to_ne_window),
	    cmocka_unit_test(test_original_mode_late_aa_app_stage),
	    cmocka_unit_test(test_raw_after_ne),
	    cmocka_unit_test(test_ne_window),
	    cmocka_unit_test(test_r2_waits_for_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

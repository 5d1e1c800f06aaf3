/* MLLP release 2 (commit ACK / NAK) on loopback, both sides: the pool
 * against the library's receiver (commit ACK then the HL7 ACK, NAK then
 * success, NAK until the retry limit), the pool against a scripted raw
 * receiver (no answer then a resend, the timeout limit, a late commit ACK
 * of an earlier attempt, an unsolicited one), the receiver against a raw
 * client checking the exact bytes (synchronous, refused, deferred,
 * release 1 refusal), and the configuration errors. Run once per backend
 * (MLLP_TEST_BACKEND). Ephemeral ports; every wait is bounded. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "netutil.h"

static const char ACK_BLOCK[] = "\x0b\x06\x1c\x0d";
static const char NAK_BLOCK[] = "\x0b\x15\x1c\x0d";

static size_t make_msg(char *b, size_t cap, int n)
{
	return (size_t)snprintf(b, cap,
				"MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||"
				"ADT^A08|CTRL%d|P|2.5\rPID|1||%d\r",
				n, n);
}

/* ---- the library's receiver, release 2 ---------------------------------- */

struct dsp {
	_Atomic int frames;
	int nak_first; /* refuse this many frames, then echo */
	bool defer;    /* defer, then answer inside the dispatcher */
	_Atomic bool refuse_deferred;
};

static void dsp_fn(void *ctx, const struct mllp_message *m,
		   struct mllp_reply *rep)
{
	struct dsp *d = ctx;
	int n = atomic_fetch_add(&d->frames, 1);
	if (n < d->nak_first) {
		rep->kind = MLLP_REPLY_NAK;
		return;
	}
	if (d->defer) {
		struct mllp_reply_handle *h = mllp_reply_defer(rep);
		assert_non_null(h);
		if (atomic_load(&d->refuse_deferred)) {
			assert_int_equal(mllp_receiver_refuse(h), 0);
			return;
		}
		assert_int_equal(mllp_receiver_reply(h, "DEFERRED", 8), 0);
		return;
	}
	mllp_dispatch_echo(NULL, m, rep);
}

static struct mllp_receiver *r2_receiver(struct dsp *d, uint32_t release)
{
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, dsp_fn, d);
	rc.mllp_release = release;
	struct mllp_receiver *r = NULL;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &r, &e) != 0)
		fail_msg("receiver: %s", e.message);
	return r;
}

static void r2_pool(struct mllp_pool **p, uint32_t *ep, uint16_t port,
		    struct ti_rec *rec, uint32_t retries, int64_t reply_ms)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	cfg.conn.mllp_release = 2;
	cfg.conn.r2_max_retries = retries;
	cfg.conn.reply_timeout_ms = reply_ms;
	cfg.conn.queue_timeout_ms = 5000;
	assert_int_equal(mllp_pool_create(&cfg, p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(*p, "127.0.0.1", port, 1, NULL, ep, NULL),
	    0);
}

static struct mllp_future *send_n(struct mllp_pool *p, uint32_t ep, int n)
{
	char msg[256];
	size_t l = make_msg(msg, sizeof(msg), n);
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(p, ep, msg, l, NULL, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 15000), 0);
	return f;
}

static void expect_committed(struct mllp_future *f)
{
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status != 0)
		fail_msg("status %s: %s", mllp_err_name(r->status),
			 r->error.message);
	assert_true(r->written);
	assert_false(r->has_verdict);
	assert_int_equal(r->reply_len, 1);
	assert_int_equal(r->reply[0], 0x06);
	mllp_future_free(f);
}

/* Each message is done at its commit ACK; the HL7 ACK that follows is
 * verified and reported (receive_valid, orphan, verdict AA), counted. */
static void test_commit_ack_end_to_end(void **state)
{
	(void)state;
	static struct dsp d;
	static struct ti_rec rec;
	memset(&d, 0, sizeof(d));
	ti_rec_init(&rec);
	struct mllp_receiver *r = r2_receiver(&d, 2);
	struct mllp_pool *p;
	uint32_t ep;
	r2_pool(&p, &ep, mllp_receiver_port(r), &rec, 2, 5000);
	enum { N = 5 };
	for (int k = 1; k <= N; k++)
		expect_committed(send_n(p, ep, k));
	assert_true(ti_wait_count(&rec, MLLP_EV_RECEIVE_VALID, N, 5000));
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], N);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.stale_replies, 0);
	assert_int_equal(st.connects, 1);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
	assert_int_equal(atomic_load(&d.frames), N);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), N);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_NAK), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 0);
	for (int i = 0; i < rec.n; i++) {
		if (rec.ev[i].kind != MLLP_EV_RECEIVE_VALID)
			continue;
		assert_true(rec.ev[i].orphan);
		assert_true(rec.ev[i].has_verdict);
		assert_int_equal(rec.ev[i].verdict, MLLP_APPLICATION_ACCEPT);
	}
	assert_string_equal(mllp_event_name(MLLP_EV_COMMIT_ACK), "commit_ack");
	assert_string_equal(mllp_event_name(MLLP_EV_COMMIT_NAK), "commit_nak");
}

/* Two NAKs, then the third attempt is committed. */
static void test_nak_then_success(void **state)
{
	(void)state;
	static struct dsp d;
	static struct ti_rec rec;
	memset(&d, 0, sizeof(d));
	d.nak_first = 2;
	ti_rec_init(&rec);
	struct mllp_receiver *r = r2_receiver(&d, 2);
	struct mllp_pool *p;
	uint32_t ep;
	r2_pool(&p, &ep, mllp_receiver_port(r), &rec, 2, 5000);
	expect_committed(send_n(p, ep, 1));
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
	assert_int_equal(atomic_load(&d.frames), 3);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_NAK), 2);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
}

/* NAK every time: the message fails after 1 + r2_max_retries attempts
 * with MLLP_ERR_NAK. */
static void nak_limit_case(uint32_t retries, const char *want)
{
	static struct dsp d;
	static struct ti_rec rec;
	memset(&d, 0, sizeof(d));
	d.nak_first = 1000;
	ti_rec_init(&rec);
	struct mllp_receiver *r = r2_receiver(&d, 2);
	struct mllp_pool *p;
	uint32_t ep;
	r2_pool(&p, &ep, mllp_receiver_port(r), &rec, retries, 5000);
	struct mllp_future *f = send_n(p, ep, 1);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, MLLP_ERR_NAK);
	assert_int_equal(res->error.reason, MLLP_ERR_NAK);
	assert_int_equal(res->error.context, MLLP_CTX_RECEIVE);
	assert_string_equal(res->error.message, want);
	assert_true(res->written);
	mllp_future_free(f);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_NAK], 1);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
	assert_int_equal(atomic_load(&d.frames), (int)retries + 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_NAK), (int)retries + 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
}

static void test_nak_limit(void **state)
{
	(void)state;
	nak_limit_case(2, "negative commit acknowledgement (NAK) after 3 "
			  "attempts");
	nak_limit_case(0, "negative commit acknowledgement (NAK) after 1 "
			  "attempt");
	assert_string_equal(mllp_err_name(MLLP_ERR_NAK), "MLLP_ERR_NAK");
	assert_string_equal(mllp_strerror(MLLP_ERR_NAK),
			    "negative commit acknowledgement (NAK)");
}

/* ---- a scripted raw receiver -------------------------------------------- */

/* Answers to the frames received, in order, across connections: one
 * string per frame, 'A' a commit ACK block, 'N' a NAK block, "" nothing
 * (one write per frame); frames past the script get "A". */
struct raw {
	struct tn_peer peer;
	const char *const *script;
	int nscript;
	_Atomic int frames;
};

static void raw_answer(struct raw *s, int fd, int idx)
{
	const char *a = idx < s->nscript ? s->script[idx] : "A";
	char out[64];
	size_t n = 0;
	for (; *a && n + 4 <= sizeof(out); a++) {
		memcpy(out + n, *a == 'N' ? NAK_BLOCK : ACK_BLOCK, 4);
		n += 4;
	}
	if (n)
		tn_send_all(fd, out, n);
}

static bool raw_bytes(void *ctx, int fd, char *buf, size_t *len)
{
	struct raw *s = ctx;
	while (tn_take_ctrl_frame(buf, len) >= 0)
		raw_answer(s, fd, atomic_fetch_add(&s->frames, 1));
	return true;
}

static void raw_start(struct raw *s, const char *const *script, int n)
{
	memset(s, 0, sizeof(*s));
	s->script = script;
	s->nscript = n;
	tn_peer_start(&s->peer, raw_bytes, NULL, s);
}

static void raw_stop(struct raw *s)
{
	tn_peer_stop(&s->peer);
}

/* s started with script (n answers); a release 2 pool (2 retries, reply
 * timeout reply_ms, telemetry into rec) with one connection to it, its
 * endpoint in *ep. */
static struct mllp_pool *raw_pool(struct raw *s, const char *const *script,
				  int n, struct ti_rec *rec, int64_t reply_ms,
				  uint32_t *ep)
{
	raw_start(s, script, n);
	ti_rec_init(rec);
	struct mllp_pool *p;
	r2_pool(&p, ep, s->peer.port, rec, 2, reply_ms);
	return p;
}

/* No answer to the first attempt: after the reply timeout the message is
 * sent again on the same connection and committed. */
static void test_timeout_then_resend(void **state)
{
	(void)state;
	static const char *const script[] = {"", "A"};
	static struct raw s;
	static struct ti_rec rec;
	uint32_t ep;
	struct mllp_pool *p = raw_pool(&s, script, 2, &rec, 500, &ep);
	expect_committed(send_n(p, ep, 1));
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.frames), 2);
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), 1);
	raw_stop(&s);
}

/* Never an answer: MLLP_ERR_TIMEOUT after 1 + r2_max_retries attempts. */
static void test_timeout_limit(void **state)
{
	(void)state;
	static const char *const script[] = {"", "", "", ""};
	static struct raw s;
	static struct ti_rec rec;
	uint32_t ep;
	struct mllp_pool *p = raw_pool(&s, script, 4, &rec, 200, &ep);
	struct mllp_future *f = send_n(p, ep, 1);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(res->error.context, MLLP_CTX_RECEIVE);
	assert_string_equal(res->error.message,
			    "no commit acknowledgement after 3 attempts");
	mllp_future_free(f);
	/* As any reply timeout (close_on_recv_error): closed. */
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_CLOSED, 1, 5000));
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.frames), 3);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 3);
	raw_stop(&s);
}

/* The first attempt of message 1 is answered late, together with the
 * resend's answer: the first ACK commits message 1, the second is the
 * earlier attempt's and is dropped as stale, never taken for message 2,
 * which is NAKed once (frame 3) and committed at its resend (frame 4). */
static void test_late_commit_ack(void **state)
{
	(void)state;
	static const char *const script[] = {"", "AA", "N", "A"};
	static struct raw s;
	static struct ti_rec rec;
	uint32_t ep;
	struct mllp_pool *p = raw_pool(&s, script, 4, &rec, 500, &ep);
	expect_committed(send_n(p, ep, 1));
	expect_committed(send_n(p, ep, 2));
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.stale_replies, 1);
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.frames), 4);
	assert_int_equal(ti_count(&rec, MLLP_EV_STALE_REPLY), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_NAK), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), 2);
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	raw_stop(&s);
}

/* close_on_recv_error false: message 1 fails after three unanswered
 * attempts and the socket is kept; the three late answers arrive with
 * message 2's own: dropped as stale, and message 2 is committed by the
 * fourth, with no resend. */
static void test_late_answers_after_failure(void **state)
{
	(void)state;
	static const char *const script[] = {"", "", "", "AAAA"};
	static struct raw s;
	static struct ti_rec rec;
	raw_start(&s, script, 4);
	ti_rec_init(&rec);
	struct mllp_pool_config cfg;
	ti_config(&cfg, &rec);
	cfg.conn.mllp_release = 2;
	cfg.conn.reply_timeout_ms = 500;
	cfg.conn.close_on_recv_error = false;
	struct mllp_pool *p;
	uint32_t ep;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1", s.peer.port, 1,
						NULL, &ep, NULL),
			 0);
	struct mllp_future *f = send_n(p, ep, 1);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	mllp_future_free(f);
	expect_committed(send_n(p, ep, 2));
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.stale_replies, 3);
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.frames), 4);
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 3);
	assert_int_equal(ti_count(&rec, MLLP_EV_COMMIT_ACK), 1);
	raw_stop(&s);
}

/* A second commit ACK for a message answered once already (nothing owed):
 * unsolicited, reported, and (close_on_recv_error) the connection is
 * closed; the next message goes on a new one. */
static void test_unsolicited_commit_ack(void **state)
{
	(void)state;
	static const char *const script[] = {"AA", "A"};
	static struct raw s;
	static struct ti_rec rec;
	uint32_t ep;
	struct mllp_pool *p = raw_pool(&s, script, 2, &rec, 5000, &ep);
	expect_committed(send_n(p, ep, 1));
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_CLOSED, 1, 5000));
	expect_committed(send_n(p, ep, 2));
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 1);
	assert_int_equal(atomic_load(&s.peer.accepts), 2);
	assert_int_equal(atomic_load(&s.frames), 2);
	raw_stop(&s);
}

/* ---- configuration ------------------------------------------------------ */

static void expect_add_error(struct mllp_pool *p,
			     const struct mllp_conn_options *o,
			     const char *want)
{
	struct mllp_error e;
	uint32_t id;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", 9, 1, o, &id, &e),
	    MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(e.message, want);
}

static void test_config_errors(void **state)
{
	(void)state;
	static const char one[] = "mllp_conn_options: mllp_release 2 allows "
				  "one message in flight (max_inflight must "
				  "be 1)";
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	assert_int_equal(o.mllp_release, 1);
	assert_int_equal(o.r2_max_retries, 2);
	o.mllp_release = 2;
	o.max_inflight = 4;
	expect_add_error(p, &o, one);
	o.max_inflight = MLLP_INFLIGHT_AUTO;
	expect_add_error(p, &o, one);
	o.max_inflight = 1;
	o.mllp_release = 3;
	expect_add_error(p, &o,
			 "mllp_conn_options: mllp_release must be 1 or "
			 "2 (got 3)");
	mllp_pool_destroy(p);

	struct mllp_error e;
	cfg.conn.mllp_release = 2;
	cfg.conn.max_inflight = 2;
	p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(p);
	assert_string_equal(e.message, one);

	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_echo, NULL);
	assert_int_equal(rc.mllp_release, 1);
	rc.mllp_release = 3;
	struct mllp_receiver *r = NULL;
	assert_int_equal(mllp_receiver_create(&rc, &r, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(r);
	assert_string_equal(e.message, "mllp_receiver_config: mllp_release "
				       "must be 1 or 2 (got 3)");
}

/* ---- the receiver's bytes, seen by a raw client ------------------------- */

/* Read exactly n bytes within 5 s (false: fewer came). */
static bool read_n(int fd, void *buf, size_t n)
{
	size_t got = 0;
	uint64_t end = tn_now_ms() + 5000;
	while (got < n) {
		uint64_t now = tn_now_ms();
		if (now >= end)
			return false;
		struct pollfd pf = {fd, POLLIN, 0};
		if (poll(&pf, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t r = recv(fd, (char *)buf + got, n - got, 0);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* Read one frame (SB ... EB CR) into buf, NUL-terminated; its length. */
static size_t read_frame(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		if (!read_n(fd, buf + n, 1))
			fail_msg("no complete frame (%zu bytes)", n);
		n++;
		if (n >= 2 && buf[n - 2] == 0x1c && buf[n - 1] == 0x0d)
			break;
	}
	buf[n] = 0;
	return n;
}

static void send_frame(int fd, int n)
{
	char msg[256];
	msg[0] = 0x0b;
	size_t l = make_msg(msg + 1, sizeof(msg) - 3, n);
	msg[l + 1] = 0x1c;
	msg[l + 2] = 0x0d;
	tn_send_all(fd, msg, l + 3);
}

/* Nothing more arrives within 200 ms. */
static void expect_silence(int fd)
{
	struct pollfd pf = {fd, POLLIN, 0};
	assert_int_equal(poll(&pf, 1, 200), 0);
}

static void test_receiver_bytes(void **state)
{
	(void)state;
	static struct dsp d;
	memset(&d, 0, sizeof(d));
	d.nak_first = 1;
	struct mllp_receiver *r = r2_receiver(&d, 2);
	int fd = tn_connect(mllp_receiver_port(r), 0);
	char b[1024];
	/* Refused: the NAK block alone. */
	send_frame(fd, 1);
	assert_true(read_n(fd, b, 4));
	assert_memory_equal(b, NAK_BLOCK, 4);
	expect_silence(fd);
	/* Taken: the commit ACK block, then the HL7 ACK as its own frame. */
	send_frame(fd, 2);
	assert_true(read_n(fd, b, 4));
	assert_memory_equal(b, ACK_BLOCK, 4);
	size_t n = read_frame(fd, b, sizeof(b));
	assert_true(n > 4);
	assert_memory_equal(b, "\x0bMSH|", 5);
	assert_non_null(strstr(b, "\rMSA|AA|CTRL2"));
	/* Raw bytes (not HL7): commit ACK, then "mllp_unknown". */
	tn_send_all(fd, "\x0bhello\x1c\x0d", 8);
	assert_true(read_n(fd, b, 4 + 15));
	assert_memory_equal(b, ACK_BLOCK, 4);
	assert_memory_equal(b + 4, "\x0bmllp_unknown\x1c\x0d", 15);
	expect_silence(fd);
	close(fd);
	mllp_receiver_destroy(r);
}

static void test_receiver_bytes_deferred(void **state)
{
	(void)state;
	static struct dsp d;
	memset(&d, 0, sizeof(d));
	d.defer = true;
	struct mllp_receiver *r = r2_receiver(&d, 2);
	int fd = tn_connect(mllp_receiver_port(r), 0);
	char b[64];
	send_frame(fd, 1);
	assert_true(read_n(fd, b, 4 + 11));
	assert_memory_equal(b, ACK_BLOCK, 4);
	assert_memory_equal(b + 4,
			    "\x0b"
			    "DEFERRED\x1c\x0d",
			    11);
	atomic_store(&d.refuse_deferred, true);
	send_frame(fd, 2);
	assert_true(read_n(fd, b, 4));
	assert_memory_equal(b, NAK_BLOCK, 4);
	expect_silence(fd);
	close(fd);
	mllp_receiver_destroy(r);
}

/* A reply delay holds the HL7 ACK, not the commit ACK (the `ack`
 * dispatcher, 3 s: the commit ACK comes well before, the ACK after). */
static void test_receiver_delay_holds_reply_only(void **state)
{
	(void)state;
	static struct mllp_ack_dispatcher ad;
	mllp_ack_dispatcher_init(&ad);
	ad.delay_ms = 3000;
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_ack, &ad);
	rc.mllp_release = 2;
	struct mllp_receiver *r = NULL;
	assert_int_equal(mllp_receiver_create(&rc, &r, NULL), 0);
	int fd = tn_connect(mllp_receiver_port(r), 0);
	char b[1024];
	uint64_t t0 = tn_now_ms();
	send_frame(fd, 1);
	assert_true(read_n(fd, b, 4));
	assert_memory_equal(b, ACK_BLOCK, 4);
	assert_true(tn_now_ms() - t0 < 2000);
	read_frame(fd, b, sizeof(b));
	assert_true(tn_now_ms() - t0 >= 2900);
	assert_non_null(strstr(b, "\rMSA|AA|CTRL1"));
	close(fd);
	mllp_receiver_destroy(r);
	assert_int_equal(ad.counts[MLLP_ACK_AA], 1);
}

/* Release 1: a refused frame gets no reply at all; no commit blocks. */
static void test_receiver_release1_refuse(void **state)
{
	(void)state;
	static struct dsp d;
	memset(&d, 0, sizeof(d));
	d.nak_first = 1;
	struct mllp_receiver *r = r2_receiver(&d, 1);
	int fd = tn_connect(mllp_receiver_port(r), 0);
	char b[1024];
	send_frame(fd, 1);
	send_frame(fd, 2);
	read_frame(fd, b, sizeof(b));
	assert_memory_equal(b, "\x0bMSH|", 5);
	assert_non_null(strstr(b, "\rMSA|AA|CTRL2"));
	expect_silence(fd);
	close(fd);
	mllp_receiver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commit_ack_end_to_end),
	    cmocka_unit_test(test_nak_then_success),
	    cmocka_unit_test(test_nak_limit),
	    cmocka_unit_test(test_timeout_then_resend),
	    cmocka_unit_test(test_timeout_limit),
	    cmocka_unit_test(test_late_commit_ack),
	    cmocka_unit_test(test_late_answers_after_failure),
	    cmocka_unit_test(test_unsolicited_commit_ack),
	    cmocka_unit_test(test_config_errors),
	    cmocka_unit_test(test_receiver_bytes),
	    cmocka_unit_test(test_receiver_bytes_deferred),
	    cmocka_unit_test(test_receiver_delay_holds_reply_only),
	    cmocka_unit_test(test_receiver_release1_refuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

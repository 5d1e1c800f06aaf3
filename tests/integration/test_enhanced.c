/* Enhanced acknowledgement mode (MSH-15 / MSH-16) on loopback: the
 * accept stage's CA / CE / CR, application ACKs arriving on the pool's ack
 * listener from a raw client (the receiving system's back channel) and
 * matched to the right message across two endpoints, the application
 * timeout (AL and ER), an application ACK that matches nothing, the
 * accept ACK the listener gives an application ACK that asks for one,
 * original mode unchanged, an original-mode receiver's AA taken as the
 * application ACK, an accept reply for another message (no application
 * stage), the stop, and the built-in dispatchers' CA vs AA.
 * Run once per backend (MLLP_TEST_BACKEND). Ephemeral ports; every wait
 * is bounded. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "enhanced_util.h"
#include "netutil.h"

/* An application ACK (MSA-1 code, MSA-2 ctrl), its own MSH-10 id and
 * MSH-15 acc. */
static size_t make_app_ack(char *b, size_t cap, const char *code,
			   const char *ctrl, const char *id, const char *acc)
{
	return (size_t)snprintf(b, cap,
				"MSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120001||"
				"ACK^A01^ACK|%s|P|2.5|||%s|NE\rMSA|%s|%s\r",
				id, acc, code, ctrl);
}

/* A pool with an endpoint per port and, when timeout_ms is not 0, an ack
 * listener with that application timeout. */
static struct mllp_pool *pool_start(struct ti_rec *rec, const uint16_t *ports,
				    int n, uint32_t *eps, int64_t timeout_ms)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	cfg.conn.queue_timeout_ms = 5000;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1",
							ports[i], 1, NULL,
							&eps[i], NULL),
				 0);
	if (timeout_ms) {
		te_listen_acks(p, timeout_ms);
		assert_int_not_equal(mllp_pool_ack_port(p), 0);
	}
	return p;
}

/* A receiver answering code (d its dispatcher) in *r, and a pool of
 * pool_start with one endpoint to it, in *ep. */
static struct mllp_pool *pair_start(struct ti_rec *rec,
				    struct mllp_ack_dispatcher *d,
				    const char *code, struct mllp_receiver **r,
				    uint32_t *ep, int64_t timeout_ms)
{
	*r = te_ack_receiver(d, code);
	uint16_t port = mllp_receiver_port(*r);
	return pool_start(rec, &port, 1, ep, timeout_ms);
}

static struct mllp_future *send_msg(struct mllp_pool *p, uint32_t ep, int n,
				    const char *acc, const char *app)
{
	char msg[256];
	size_t l = te_make_msg(msg, sizeof(msg), n, acc, app);
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(p, ep, msg, l, NULL, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	return f;
}

static void expect_accept(struct mllp_future *f, const char *code,
			  enum mllp_verdict v)
{
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	te_expect_verdict(r, code, v);
}

/* Accepted with code, and no application stage: waiting for one (up to
 * wait_ms) answers MLLP_ERR_NOT_FOUND. */
static void expect_no_application(struct mllp_future *f, const char *code,
				  int64_t wait_ms)
{
	expect_accept(f, code, MLLP_APPLICATION_ACCEPT);
	assert_false(mllp_future_has_application(f));
	assert_int_equal(mllp_future_wait_application(f, wait_ms),
			 MLLP_ERR_NOT_FOUND);
}

/* Free f and stop what pair_start started. */
static void pair_stop(struct mllp_future *f, struct mllp_pool *p,
		      struct mllp_receiver *r)
{
	mllp_future_free(f);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

/* Send frame data to fd and read one reply frame into out (payload, NUL
 * terminated); false when none comes within 5 s. */
/* Send data[0..len) framed. */
static void send_framed(int fd, const char *data, size_t len)
{
	char fr[1024];
	assert_true(len + 3 <= sizeof(fr));
	fr[0] = 0x0b;
	memcpy(fr + 1, data, len);
	fr[len + 1] = 0x1c;
	fr[len + 2] = 0x0d;
	tn_send_all(fd, fr, len + 3);
}

static bool exchange(int fd, const char *data, size_t len, char *out,
		     size_t cap)
{
	char fr[1024];
	send_framed(fd, data, len);
	size_t got = 0;
	uint64_t deadline = tn_now_ms() + 5000;
	while (tn_now_ms() < deadline) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t n = read(fd, fr + got, sizeof(fr) - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
		if (got >= 3 && fr[got - 2] == 0x1c && fr[got - 1] == 0x0d) {
			assert_int_equal(fr[0], 0x0b);
			size_t pl = got - 3 < cap - 1 ? got - 3 : cap - 1;
			memcpy(out, fr + 1, pl);
			out[pl] = 0;
			return true;
		}
	}
	return false;
}

/* MSA-1 and MSA-2 of a reply, as "CA|ID". */
static void msa_of(const char *reply, char *out, size_t cap)
{
	const char *m = strstr(reply, "\rMSA|");
	assert_non_null(m);
	m += 5;
	size_t n = strcspn(m, "\r");
	const char *bar = memchr(m, '|', n);
	assert_non_null(bar);
	const char *end = memchr(bar + 1, '|', n - (size_t)(bar + 1 - m));
	if (end)
		n = (size_t)(end - m);
	snprintf(out, cap, "%.*s", (int)n, m);
}

/* Send data[0..len) framed; its reply (in out, cap bytes) has MSA-1 and
 * MSA-2 want ("CA|ID"). */
static void expect_msa(int fd, const char *data, size_t len, char *out,
		       size_t cap, const char *want)
{
	char msa[128];
	assert_true(exchange(fd, data, len, out, cap));
	msa_of(out, msa, sizeof(msa));
	assert_string_equal(msa, want);
}

static void ack_stats(struct mllp_pool *p, struct mllp_ack_listen_stats *s)
{
	mllp_ack_listen_stats_init(s);
	assert_int_equal(mllp_pool_ack_stats(p, s), 0);
}

/* CA / CE / CR from a receiver in enhanced mode: the accept stage's
 * verdicts; with a listener, CE and CR end the application stage at once
 * (not accepted). */
static void test_accept_outcomes(void **state)
{
	(void)state;
	static const struct {
		const char *dcode, *acode;
		enum mllp_verdict v;
	} cases[] = {
	    {"AA", "CA", MLLP_APPLICATION_ACCEPT},
	    {"AE", "CE", MLLP_APPLICATION_ERROR},
	    {"AR", "CR", MLLP_APPLICATION_REJECT},
	};
	for (size_t i = 0; i < 3; i++) {
		struct mllp_ack_dispatcher d;
		struct mllp_receiver *r;
		uint32_t ep;
		struct mllp_pool *p =
		    pair_start(NULL, &d, cases[i].dcode, &r, &ep, 60000);
		struct mllp_future *f = send_msg(p, ep, 1, "AL", "AL");
		expect_accept(f, cases[i].acode, cases[i].v);
		assert_true(mllp_future_has_application(f));
		if (i == 0) {
			assert_int_equal(mllp_future_wait_application(f, 0),
					 MLLP_ERR_TIMEOUT);
			assert_null(mllp_future_application_result(f));
		} else {
			assert_int_equal(mllp_future_wait_application(f, 5000),
					 0);
			const struct mllp_result *a =
			    mllp_future_application_result(f);
			assert_int_equal(a->status, MLLP_ERR_NOT_ACCEPTED);
			char want[128];
			snprintf(want, sizeof(want),
				 "no application acknowledgement: the accept "
				 "acknowledgement was %s",
				 cases[i].acode);
			assert_string_equal(a->error.message, want);
		}
		pair_stop(f, p, r);
	}
	/* no listener: the accept stage only */
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = pair_start(NULL, &d, "AA", &r, &ep, 0);
	struct mllp_future *f = send_msg(p, ep, 2, "AL", "AL");
	expect_no_application(f, "CA", 0);
	struct mllp_ack_listen_stats s;
	mllp_ack_listen_stats_init(&s);
	assert_int_equal(mllp_pool_ack_stats(p, &s), MLLP_ERR_NOT_FOUND);
	pair_stop(f, p, r);
}

/* Two endpoints, one message each; the application ACKs come on the
 * listener in the other order, the first asking for no accept ACK, the
 * second for one (AL): each lands on its own message, the second is
 * answered CA with its own MSH-10. */
static void test_app_ack_two_endpoints(void **state)
{
	(void)state;
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_ack_dispatcher d1, d2;
	struct mllp_receiver *r1 = te_ack_receiver(&d1, "AA");
	struct mllp_receiver *r2 = te_ack_receiver(&d2, "AA");
	uint16_t ports[2] = {mllp_receiver_port(r1), mllp_receiver_port(r2)};
	uint32_t eps[2];
	struct mllp_pool *p = pool_start(&rec, ports, 2, eps, 60000);
	struct mllp_future *fa = send_msg(p, eps[0], 1, "AL", "AL");
	struct mllp_future *fb = send_msg(p, eps[1], 2, "AL", "AL");
	expect_accept(fa, "CA", MLLP_APPLICATION_ACCEPT);
	expect_accept(fb, "CA", MLLP_APPLICATION_ACCEPT);
	assert_int_equal(d1.counts[MLLP_ACK_CA], 1);
	assert_int_equal(d2.counts[MLLP_ACK_CA], 1);

	int fd = tn_connect(mllp_pool_ack_port(p), 0);
	char ack[256], reply[1024];
	/* for CTRL2, AE, MSH-15 NE: no answer; then for CTRL1, AA, MSH-15
	 * AL: the first reply is the second's */
	size_t l = make_app_ack(ack, sizeof(ack), "AE", "CTRL2", "APP2", "NE");
	send_framed(fd, ack, l);
	l = make_app_ack(ack, sizeof(ack), "AA", "CTRL1", "APP1", "AL");
	expect_msa(fd, ack, l, reply, sizeof(reply), "CA|APP1");

	assert_int_equal(mllp_future_wait_application(fa, 5000), 0);
	assert_int_equal(mllp_future_wait_application(fb, 5000), 0);
	const struct mllp_result *a = mllp_future_application_result(fa);
	const struct mllp_result *b = mllp_future_application_result(fb);
	assert_int_equal(a->status, 0);
	assert_true(a->has_verdict);
	assert_int_equal(a->verdict, MLLP_APPLICATION_ACCEPT);
	assert_true(mllp_str_eq(a->ack.code, "AA"));
	assert_true(mllp_str_eq(a->ack.control_id, "CTRL1"));
	assert_int_equal(b->status, 0);
	assert_int_equal(b->verdict, MLLP_APPLICATION_ERROR);
	assert_true(mllp_str_eq(b->ack.control_id, "CTRL2"));
	assert_non_null(b->reply);

	struct mllp_ack_listen_stats s;
	ack_stats(p, &s);
	assert_int_equal(s.received, 2);
	assert_int_equal(s.matched, 2);
	assert_int_equal(s.unmatched, 0);
	assert_int_equal(s.accept_acks, 1);
	assert_int_equal(s.pending, 0);
	assert_true(ti_wait_count(&rec, MLLP_EV_APPLICATION_ACK, 2, 5000));
	assert_string_equal(mllp_event_name(MLLP_EV_APPLICATION_ACK),
			    "application_ack");
	close(fd);
	mllp_future_free(fa);
	mllp_future_free(fb);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r1);
	mllp_receiver_destroy(r2);
}

/* No application ACK in time: AL and SU fail with the timeout; ER ends
 * with status 0 and no verdict (no error reported). */
static void test_app_ack_timeout(void **state)
{
	(void)state;
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = pair_start(&rec, &d, "AA", &r, &ep, 200);
	struct mllp_future *fal = send_msg(p, ep, 1, "AL", "AL");
	struct mllp_future *fer = send_msg(p, ep, 2, "AL", "ER");
	expect_accept(fal, "CA", MLLP_APPLICATION_ACCEPT);
	expect_accept(fer, "CA", MLLP_APPLICATION_ACCEPT);
	assert_int_equal(mllp_future_wait_application(fal, 10000), 0);
	assert_int_equal(mllp_future_wait_application(fer, 10000), 0);
	const struct mllp_result *a = mllp_future_application_result(fal);
	assert_int_equal(a->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(a->error.context, MLLP_CTX_RECEIVE);
	assert_string_equal(a->error.message,
			    "no application acknowledgement within 200 ms");
	const struct mllp_result *e = mllp_future_application_result(fer);
	assert_int_equal(e->status, 0);
	assert_false(e->has_verdict);
	assert_null(e->reply);
	struct mllp_ack_listen_stats s;
	ack_stats(p, &s);
	assert_int_equal(s.timeouts, 2);
	assert_int_equal(s.pending, 0);
	assert_true(
	    ti_wait_count(&rec, MLLP_EV_APPLICATION_ACK_TIMEOUT, 2, 5000));
	assert_string_equal(mllp_event_name(MLLP_EV_APPLICATION_ACK_TIMEOUT),
			    "application_ack_timeout");
	/* a late application ACK now matches nothing */
	int fd = tn_connect(mllp_pool_ack_port(p), 0);
	char ack[256], reply[1024];
	size_t l = make_app_ack(ack, sizeof(ack), "AA", "CTRL1", "LATE", "AL");
	expect_msa(fd, ack, l, reply, sizeof(reply), "CR|LATE");
	close(fd);
	mllp_future_free(fal);
	mllp_future_free(fer);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

/* An application ACK for no message: counted, logged, reported as an
 * orphan, answered CR (its MSH-15 AL asks), credited to nobody; a frame
 * that is no ACK is refused. */
static void test_unmatched_app_ack(void **state)
{
	(void)state;
	static struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = pair_start(&rec, &d, "AA", &r, &ep, 60000);
	struct mllp_future *f = send_msg(p, ep, 1, "AL", "AL");
	expect_accept(f, "CA", MLLP_APPLICATION_ACCEPT);
	int fd = tn_connect(mllp_pool_ack_port(p), 0);
	char ack[256], reply[1024];
	size_t l = make_app_ack(ack, sizeof(ack), "AA", "NOPE", "APPX", "AL");
	expect_msa(fd, ack, l, reply, sizeof(reply), "CR|APPX");
	assert_non_null(
	    strstr(reply, "|no message waits for this acknowledgement"));
	char nack[256];
	l = te_make_msg(nack, sizeof(nack), 9, "AL", "NE");
	expect_msa(fd, nack, l, reply, sizeof(reply), "CR|CTRL9");
	assert_int_equal(mllp_future_wait_application(f, 0), MLLP_ERR_TIMEOUT);
	struct mllp_ack_listen_stats s;
	ack_stats(p, &s);
	assert_int_equal(s.unmatched, 1);
	assert_int_equal(s.not_ack, 1);
	assert_int_equal(s.matched, 0);
	assert_int_equal(s.pending, 1);
	pthread_mutex_lock(&rec.mu);
	int orphans = 0;
	for (int i = 0; i < rec.n; i++)
		orphans += rec.ev[i].kind == MLLP_EV_APPLICATION_ACK &&
			   rec.ev[i].orphan;
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(orphans, 1);
	close(fd);
	/* stop: the open stage ends as stopped */
	assert_int_equal(mllp_pool_stop(p), 0);
	const struct mllp_result *a = mllp_future_application_result(f);
	assert_non_null(a);
	assert_int_equal(a->status, MLLP_ERR_STOPPED);
	pair_stop(f, p, r);
}

/* Original mode: no application stage even with a listener, AA as
 * always; an original-mode receiver answering an enhanced message with AA
 * gives both stages that one reply. */
static void answer_wrong_id(void *ctx, const struct mllp_message *m,
			    struct mllp_reply *rep)
{
	(void)ctx;
	(void)m;
	static const char ack[] =
	    "MSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK|X1|P|2.5\r"
	    "MSA|CA|WRONG\r";
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = ack;
	rep->len = sizeof(ack) - 1;
}

static void test_original_mode(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	struct mllp_receiver *r;
	uint32_t ep;
	struct mllp_pool *p = pair_start(NULL, &d, "AA", &r, &ep, 60000);
	struct mllp_future *f = send_msg(p, ep, 1, "", "");
	expect_no_application(f, "AA", 1000);
	assert_null(mllp_future_application_result(f));
	mllp_future_free(f);
	struct mllp_ack_listen_stats s;
	ack_stats(p, &s);
	assert_int_equal(s.pending, 0);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);

	r = te_aa_receiver();
	uint16_t port = mllp_receiver_port(r);
	p = pool_start(NULL, &port, 1, &ep, 60000);
	f = send_msg(p, ep, 2, "AL", "AL");
	expect_accept(f, "AA", MLLP_APPLICATION_ACCEPT);
	assert_int_equal(mllp_future_wait_application(f, 0), 0);
	const struct mllp_result *a = mllp_future_application_result(f);
	assert_int_equal(a->status, 0);
	assert_true(mllp_str_eq(a->ack.code, "AA"));
	pair_stop(f, p, r);

	/* an accept reply for another message: no application stage */
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, answer_wrong_id, NULL);
	assert_int_equal(mllp_receiver_create(&rc, &r, NULL), 0);
	port = mllp_receiver_port(r);
	p = pool_start(NULL, &port, 1, &ep, 60000);
	f = send_msg(p, ep, 3, "AL", "AL");
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(mllp_future_wait_application(f, 0), 0);
	a = mllp_future_application_result(f);
	assert_int_equal(a->status, MLLP_ERR_NOT_ACCEPTED);
	assert_string_equal(
	    a->error.message,
	    "no application acknowledgement: the accept stage's "
	    "reply was bad_message_control_id");
	pair_stop(f, p, r);
}

/* The built-in dispatchers: AA in original mode, CA (CE, CR) in
 * enhanced mode as MSH-15 asks, nothing for NE / ER on success / SU on
 * failure. */
static const char *dispatch_code(const char *code, const char *acc,
				 const char *app, bool echo)
{
	static char buf[256];
	size_t l = te_make_msg(buf, sizeof(buf), 1, acc, app);
	struct mllp_message m = {
	    .data = (const unsigned char *)buf, .len = l, .kind = MLLP_MSG_HL7};
	struct mllp_reply rep;
	memset(&rep, 0, sizeof(rep));
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.code = code;
	if (echo)
		mllp_dispatch_echo(NULL, &m, &rep);
	else
		mllp_dispatch_ack(&d, &m, &rep);
	if (rep.kind == MLLP_REPLY_NONE)
		return "none";
	assert_int_equal(rep.kind, MLLP_REPLY_ACK);
	return rep.ack_code;
}

static void test_dispatcher_codes(void **state)
{
	(void)state;
	assert_string_equal(dispatch_code("AA", "", "", false), "AA");
	assert_string_equal(dispatch_code("AE", "", "", false), "AE");
	assert_string_equal(dispatch_code("AA", "AL", "AL", false), "CA");
	assert_string_equal(dispatch_code("AA", "", "AL", false), "CA");
	assert_string_equal(dispatch_code("AE", "AL", "NE", false), "CE");
	assert_string_equal(dispatch_code("AR", "AL", "NE", false), "CR");
	assert_string_equal(dispatch_code("AA", "NE", "AL", false), "none");
	assert_string_equal(dispatch_code("AA", "ER", "AL", false), "none");
	assert_string_equal(dispatch_code("AR", "ER", "AL", false), "CR");
	assert_string_equal(dispatch_code("AA", "SU", "AL", false), "CA");
	assert_string_equal(dispatch_code("AE", "SU", "AL", false), "none");
	assert_string_equal(dispatch_code("AA", "", "", true), "AA");
	assert_string_equal(dispatch_code("AA", "AL", "AL", true), "CA");
	assert_string_equal(dispatch_code("AA", "NE", "NE", true), "none");
}

/* Configuration errors of the listener. */
static void test_listen_errors(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	struct mllp_ack_listen_config lc;
	mllp_ack_listen_config_init(&lc);
	lc.address = "127.0.0.1";
	lc.backend = ti_backend();
	struct mllp_error e;
	assert_int_equal(mllp_pool_listen_acks(p, &lc, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(e.message, "No tcp port provided");
	lc.port = 0;
	lc.application_ack_timeout_ms = 0;
	assert_int_equal(mllp_pool_listen_acks(p, &lc, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(e.message,
			    "mllp_ack_listen_config: "
			    "application_ack_timeout_ms must be positive or "
			    "MLLP_INFINITE");
	lc.application_ack_timeout_ms = MLLP_INFINITE;
	assert_int_equal(mllp_pool_listen_acks(p, &lc, &e), 0);
	assert_int_equal(mllp_pool_listen_acks(p, &lc, &e),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(e.message, "the pool has an ack listener already");
	mllp_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accept_outcomes),
	    cmocka_unit_test(test_app_ack_two_endpoints),
	    cmocka_unit_test(test_app_ack_timeout),
	    cmocka_unit_test(test_unmatched_app_ack),
	    cmocka_unit_test(test_original_mode),
	    cmocka_unit_test(test_dispatcher_codes),
	    cmocka_unit_test(test_listen_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

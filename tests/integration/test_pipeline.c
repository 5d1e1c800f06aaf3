/* Pipelining (max_inflight > 1): replies matched to their messages by
 * MSA-2 in any order, failures that fail the whole window, raw payloads
 * with and without replies_in_order, and the MLLP_INFLIGHT_AUTO probe.
 * The receiver here holds `hold` frames, then answers them as its mode
 * says (in order, backwards, with a foreign id, ...); it records how many
 * frames it had at once. Run once per backend (MLLP_TEST_BACKEND). */
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

#define W    8 /* the window of the tests */
#define MAXF 64

enum srv_mode {
	IN_ORDER,  /* each held batch answered in order */
	REVERSED,  /* answered backwards */
	UNKNOWN,   /* the first answer names an id never sent */
	DUPLICATE, /* in order, the first answer twice */
	PARTIAL,   /* only the first `answer` frames of the batch */
	CLOSE,	   /* the batch is not answered: the connection closes */
	MERGE,	   /* two frames read as one message: one ACK, the first's */
	ECHO,	   /* raw: each frame echoed back */
};

struct held {
	char id[32];
	char body[256];
	size_t blen;
};

struct srv {
	struct tn_peer peer;
	_Atomic int mode;   /* enum srv_mode */
	_Atomic int hold;   /* frames held before answering */
	_Atomic int answer; /* PARTIAL: frames answered */
	_Atomic int frames;
	_Atomic int max_held; /* most frames received and not answered */
	_Atomic int max_read; /* most frames completed by one read */
	struct held h[MAXF];  /* received on this connection, not answered */
	int nh;
};

/* Answer the n held frames; false: close the connection. */
static bool answer(struct srv *s, int fd, struct held *h, int n)
{
	static char out[MAXF * 300];
	size_t len = 0;
	switch ((enum srv_mode)atomic_load(&s->mode)) {
	case IN_ORDER:
	case PARTIAL:
	case DUPLICATE:
		for (int i = 0; i < n; i++) {
			if (s->mode == PARTIAL && i >= s->answer)
				break;
			len +=
			    tn_put_ack(out + len, sizeof(out) - len, h[i].id);
			if (s->mode == DUPLICATE && i == 0)
				len += tn_put_ack(out + len, sizeof(out) - len,
						  h[i].id);
		}
		break;
	case REVERSED:
		for (int i = n - 1; i >= 0; i--)
			len +=
			    tn_put_ack(out + len, sizeof(out) - len, h[i].id);
		break;
	case UNKNOWN:
		len += tn_put_ack(out + len, sizeof(out) - len, "NEVER");
		for (int i = 1; i < n; i++)
			len +=
			    tn_put_ack(out + len, sizeof(out) - len, h[i].id);
		break;
	case MERGE:
		len += tn_put_ack(out + len, sizeof(out) - len, h[0].id);
		break;
	case ECHO:
		for (int i = 0; i < n; i++) {
			out[len++] = 0x0b;
			memcpy(out + len, h[i].body, h[i].blen);
			len += h[i].blen;
			out[len++] = 0x1c;
			out[len++] = '\r';
		}
		break;
	case CLOSE:
		return false;
	}
	tn_send_all(fd, out, len);
	return true;
}

/* Complete frames of buf[0..*len) are held; a full batch is answered.
 * False: close. */
static bool frames(void *ctx, int fd, char *buf, size_t *len)
{
	struct srv *s = ctx;
	struct held *h = s->h;
	int *nh = &s->nh;
	char *end;
	int in_read = 0;
	while ((end = memmem(buf, *len, "\x1c\r", 2)) != NULL) {
		if (++in_read > atomic_load(&s->max_read))
			atomic_store(&s->max_read, in_read);
		size_t flen = (size_t)(end - buf) + 2;
		struct held *x = &h[*nh];
		x->blen = flen - 3 < sizeof(x->body) ? flen - 3 : 0;
		memcpy(x->body, buf + 1, x->blen);
		*end = 0;
		char *c = strstr(buf, "|CTRL");
		x->id[0] = 0;
		if (c) {
			char *bar = strchr(c + 1, '|');
			size_t il = bar ? (size_t)(bar - c - 1) : 0;
			if (il < sizeof(x->id)) {
				memcpy(x->id, c + 1, il);
				x->id[il] = 0;
			}
		}
		memmove(buf, buf + flen, *len - flen);
		*len -= flen;
		atomic_fetch_add(&s->frames, 1);
		(*nh)++;
		if (*nh > atomic_load(&s->max_held))
			atomic_store(&s->max_held, *nh);
		int need = s->mode == MERGE ? 2 : s->hold;
		if (*nh >= need) {
			bool keep = answer(s, fd, h, *nh);
			*nh = 0;
			if (!keep)
				return false;
		}
	}
	return true;
}

/* A new connection: nothing held. */
static void new_batch(void *ctx)
{
	struct srv *s = ctx;
	s->nh = 0;
}

static void srv_start(struct srv *s, enum srv_mode mode, int hold)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->hold = hold;
	tn_peer_start(&s->peer, frames, new_batch, s);
}

static void srv_stop(struct srv *s)
{
	tn_peer_stop(&s->peer);
}

/* ---- the client side ------------------------------------------------ */

struct logs {
	pthread_mutex_t mu;
	char probe[512];
	int probe_lines;
};

static void keep_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct logs *g = ctx;
	(void)l;
	pthread_mutex_lock(&g->mu);
	if (strstr(line, "pipelin")) {
		if (g->probe_lines++ == 0)
			snprintf(g->probe, sizeof(g->probe), "%s", line);
	}
	pthread_mutex_unlock(&g->mu);
}

static struct logs g_logs = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void make_pool(struct mllp_pool **p, uint32_t *ep, uint16_t port,
		      struct ti_rec *rec, uint32_t window, bool in_order,
		      int64_t reply_timeout_ms)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	cfg.log = keep_log;
	cfg.log_ctx = &g_logs;
	cfg.log_level = MLLP_LOG_INFO;
	cfg.conn.queue_timeout_ms = 5000;
	cfg.conn.reply_timeout_ms = reply_timeout_ms;
	cfg.conn.max_inflight = window;
	cfg.conn.replies_in_order = in_order;
	pthread_mutex_lock(&g_logs.mu);
	g_logs.probe[0] = 0;
	g_logs.probe_lines = 0;
	pthread_mutex_unlock(&g_logs.mu);
	assert_int_equal(mllp_pool_create(&cfg, p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(*p, "127.0.0.1", port, 1, NULL, ep, NULL),
	    0);
}

/* Queue messages CTRL<first>..CTRL<first+n-1> without waiting. */
static void send_n(struct mllp_pool *p, uint32_t ep, int first, int n,
		   struct mllp_future **f)
{
	for (int i = 0; i < n; i++) {
		char msg[256];
		int l = snprintf(msg, sizeof(msg),
				 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||"
				 "ADT^A08|CTRL%d|P|2.5\rPID|1||%d\r",
				 first + i, first + i);
		assert_int_equal(
		    mllp_pool_send(p, ep, msg, (size_t)l, NULL, &f[i], NULL),
		    0);
	}
}

static void wait_all(struct mllp_future **f, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(mllp_future_wait(f[i], 10000), 0);
}

/* f's result is the AA of CTRL<n>. */
static void assert_aa(struct mllp_future *f, int n)
{
	const struct mllp_result *r = mllp_future_result(f);
	char want[32];
	snprintf(want, sizeof(want), "CTRL%d", n);
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	assert_int_equal(r->ack.control_id.len, strlen(want));
	assert_memory_equal(r->ack.control_id.ptr, want, strlen(want));
}

/* s started in mode (answering `answer` frames of a batch, for PARTIAL),
 * holding a window of W frames; a pool of window W (reply timeout
 * reply_ms, telemetry into rec) sends messages 1..n at once and each one
 * ends: the futures in f. */
static struct mllp_pool *window_run(struct srv *s, enum srv_mode mode,
				    int answer, int64_t reply_ms,
				    struct ti_rec *rec, struct mllp_future **f,
				    int n)
{
	srv_start(s, mode, W);
	s->answer = answer;
	ti_rec_init(rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s->peer.port, rec, W, false, reply_ms);
	send_n(p, ep, 1, n, f);
	wait_all(f, n);
	return p;
}

static void free_all(struct mllp_future **f, int n)
{
	for (int i = 0; i < n; i++)
		mllp_future_free(f[i]);
}

/* Every message ends once: acked + errors = sent messages; nothing left
 * in flight or queued. */
static void assert_identity(struct mllp_pool *p, uint64_t n)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	uint64_t acked = 0;
	for (int i = 0; i < MLLP_VERDICT_COUNT; i++)
		acked += st.acked[i];
	assert_int_equal(acked + st.raw_replies + st.errors, n);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
}

static void run_ok(enum srv_mode mode, int rounds)
{
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W * 4];
	struct mllp_pool *p =
	    window_run(&s, mode, 0, 5000, &rec, f, W * rounds);
	for (int i = 0; i < W * rounds; i++)
		assert_aa(f[i], i + 1);
	free_all(f, W * rounds);
	assert_identity(p, (uint64_t)(W * rounds));
	mllp_pool_destroy(p);
	/* the receiver held a whole window: W frames written unanswered */
	assert_int_equal(atomic_load(&s.max_held), W);
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
	srv_stop(&s);
}

static void test_in_order(void **state)
{
	(void)state;
	run_ok(IN_ORDER, 4);
}

static void test_reversed(void **state)
{
	(void)state;
	run_ok(REVERSED, 4);
}

/* A resent reply to a message answered already is stale: dropped and
 * counted, nothing closes. */
static void test_duplicate_reply(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W * 2];
	struct mllp_pool *p =
	    window_run(&s, DUPLICATE, 0, 5000, &rec, f, W * 2);
	for (int i = 0; i < W * 2; i++)
		assert_aa(f[i], i + 1);
	free_all(f, W * 2);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.stale_replies, 2);
	assert_identity(p, W * 2);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
	srv_stop(&s);
}

/* A reply naming no message in flight: the connection closes and every
 * message of the window fails as written (may have reached the
 * receiver); none is credited with another's reply. */
static void test_unknown_id(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W];
	struct mllp_pool *p = window_run(&s, UNKNOWN, 0, 5000, &rec, f, W);
	for (int i = 0; i < W; i++) {
		const struct mllp_result *r = mllp_future_result(f[i]);
		assert_int_equal(r->status, MLLP_ERR_UNSOLICITED);
		assert_int_equal(r->error.context, MLLP_CTX_RECEIVE);
		assert_string_equal(r->error.message,
				    "reply matches no message in flight");
		assert_true(r->written);
		assert_true(r->may_have_reached);
		assert_false(r->has_verdict);
	}
	free_all(f, W);
	assert_identity(p, W);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 1);
	srv_stop(&s);
}

/* Replies for the first 3 of a window of 8, then nothing: those 3 are
 * accepted; the first reply timeout closes the connection and the 5 left
 * fail with the timeout, written. */
static void test_timeout_mid_window(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W];
	struct mllp_pool *p = window_run(&s, PARTIAL, 3, 300, &rec, f, W);
	for (int i = 0; i < 3; i++)
		assert_aa(f[i], i + 1);
	for (int i = 3; i < W; i++) {
		const struct mllp_result *r = mllp_future_result(f[i]);
		assert_int_equal(r->status, MLLP_ERR_TIMEOUT);
		assert_int_equal(r->error.context, MLLP_CTX_RECEIVE);
		assert_true(r->written);
	}
	free_all(f, W);
	assert_identity(p, W);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_TIMEOUT), 1);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 1);
	srv_stop(&s);
}

/* The peer closes with a full window: every message fails as closed,
 * written. */
static void test_peer_close_full_window(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W];
	struct mllp_pool *p = window_run(&s, CLOSE, 0, 5000, &rec, f, W);
	for (int i = 0; i < W; i++) {
		const struct mllp_result *r = mllp_future_result(f[i]);
		assert_int_equal(r->status, MLLP_ERR_CLOSED);
		assert_true(r->written);
		assert_true(r->may_have_reached);
	}
	free_all(f, W);
	assert_identity(p, W);
	mllp_pool_destroy(p);
	srv_stop(&s);
}

/* Raw payloads carry no id: without replies_in_order they go one at a
 * time; with it they are pipelined and each gets its own echo. */
static void run_raw(bool in_order)
{
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[W * 2];
	srv_start(&s, ECHO, in_order ? W : 1);
	ti_rec_init(&rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s.peer.port, &rec, W, in_order, 5000);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_RAW;
	char msg[W * 2][32];
	for (int i = 0; i < W * 2; i++) {
		int l = snprintf(msg[i], sizeof(msg[i]), "raw payload %d", i);
		assert_int_equal(
		    mllp_pool_send(p, ep, msg[i], (size_t)l, &so, &f[i], NULL),
		    0);
	}
	wait_all(f, W * 2);
	for (int i = 0; i < W * 2; i++) {
		const struct mllp_result *r = mllp_future_result(f[i]);
		assert_int_equal(r->status, 0);
		assert_int_equal(r->reply_len, strlen(msg[i]));
		assert_memory_equal(r->reply, msg[i], r->reply_len);
	}
	free_all(f, W * 2);
	assert_identity(p, W * 2);
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.max_held), in_order ? W : 1);
	/* one at a time: never two frames in one read */
	if (in_order)
		assert_true(atomic_load(&s.max_read) > 1);
	else
		assert_int_equal(atomic_load(&s.max_read), 1);
	srv_stop(&s);
}

static void test_raw_one_at_a_time(void **state)
{
	(void)state;
	run_raw(false);
}

static void test_raw_replies_in_order(void **state)
{
	(void)state;
	run_raw(true);
}

/* MLLP_INFLIGHT_AUTO against a receiver that answers as it should: the
 * probe passes, logged once, and later messages are pipelined. */
static void test_probe_passes(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[2 + 16];
	srv_start(&s, IN_ORDER, 2);
	ti_rec_init(&rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s.peer.port, &rec, MLLP_INFLIGHT_AUTO, false, 5000);
	send_n(p, ep, 1, 2, f);
	wait_all(f, 2);
	s.hold = 16; /* the auto window */
	send_n(p, ep, 3, 16, f + 2);
	wait_all(f + 2, 16);
	for (int i = 0; i < 18; i++)
		assert_aa(f[i], i + 1);
	free_all(f, 18);
	assert_identity(p, 18);
	mllp_pool_destroy(p);
	assert_int_equal(atomic_load(&s.max_held), 16);
	assert_int_equal(g_logs.probe_lines, 1);
	assert_non_null(strstr(g_logs.probe, "answered two pipelined "
					     "messages in order of their ids: "
					     "up to 16 in flight"));
	srv_stop(&s);
}

/* A receiver that reads two frames as one message answers only the
 * first: the second times out, the probe fails (logged once, with why)
 * and the endpoint goes on with one message in flight. */
static void test_probe_fails(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct mllp_future *f[2 + 6];
	srv_start(&s, MERGE, 2);
	ti_rec_init(&rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s.peer.port, &rec, MLLP_INFLIGHT_AUTO, false, 300);
	send_n(p, ep, 1, 2, f);
	wait_all(f, 2);
	assert_aa(f[0], 1);
	assert_int_equal(mllp_future_result(f[1])->status, MLLP_ERR_TIMEOUT);
	s.mode = IN_ORDER;
	s.hold = 1;
	send_n(p, ep, 3, 6, f + 2);
	wait_all(f + 2, 6);
	for (int i = 2; i < 8; i++)
		assert_aa(f[i], i + 1);
	free_all(f, 8);
	assert_identity(p, 8);
	mllp_pool_destroy(p);
	assert_int_equal(g_logs.probe_lines, 1);
	assert_non_null(strstr(g_logs.probe,
			       "did not pass the pipelining probe (a reply did "
			       "not come in time): one message in flight per "
			       "connection from now on"));
	srv_stop(&s);
}

/* The library receiver answers 16 frames written at once in their order,
 * the 16 ACKs in one send (read here in one recv). */
static void test_receiver_batches_replies(void **state)
{
	(void)state;
	static struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mllp_dispatch_ack, &d);
	struct mllp_receiver *rv;
	assert_int_equal(mllp_receiver_create(&rc, &rv, NULL), 0);
	int fd = tn_connect(mllp_receiver_port(rv), 0);
	static char out[16 * 200];
	size_t len = 0;
	for (int i = 0; i < 16; i++)
		len += (size_t)snprintf(
		    out + len, sizeof(out) - len,
		    "\x0bMSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A08|"
		    "CTRL%d|P|2.5\rPID|1\r\x1c\r",
		    i);
	tn_send_all(fd, out, len);
	static char in[65536];
	struct pollfd pf = {fd, POLLIN, 0};
	assert_int_equal(poll(&pf, 1, 5000), 1);
	ssize_t got = recv(fd, in, sizeof(in) - 1, 0);
	assert_true(got > 0);
	in[got] = 0;
	const char *p = in;
	for (int i = 0; i < 16; i++) {
		char want[32];
		snprintf(want, sizeof(want), "MSA|AA|CTRL%d\r", i);
		const char *at = strstr(p, want);
		assert_non_null(at); /* in this read, in order */
		p = at + strlen(want);
	}
	close(fd);
	mllp_receiver_destroy(rv);
}

/* Bad values of max_inflight are refused when the endpoint is added. */
static void test_bad_window(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.max_inflight = MLLP_INFLIGHT_MAX + 1;
	struct mllp_error e;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", 9, 1, &o, NULL, &e),
	    MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(e.message, "max_inflight 1025: must be 1 to "
				       "1024 or MLLP_INFLIGHT_AUTO");
	mllp_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order),
	    cmocka_unit_test(test_reversed),
	    cmocka_unit_test(test_duplicate_reply),
	    cmocka_unit_test(test_unknown_id),
	    cmocka_unit_test(test_timeout_mid_window),
	    cmocka_unit_test(test_peer_close_full_window),
	    cmocka_unit_test(test_raw_one_at_a_time),
	    cmocka_unit_test(test_raw_replies_in_order),
	    cmocka_unit_test(test_probe_passes),
	    cmocka_unit_test(test_probe_fails),
	    cmocka_unit_test(test_receiver_batches_replies),
	    cmocka_unit_test(test_bad_window),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

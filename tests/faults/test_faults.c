/* Reliability under faults: one test per fault of the
 * fault-injection receiver with the exact outcome of every message and the
 * connection's recovery, then a mixed-fault run that checks the accounting
 * identity.
 *
 * Environment: FAULTS_ONLY=<glob> runs only the matching tests (cmocka
 * filter); FAULTS_MIXED_TOTAL overrides the number of messages of the
 * mixed run; MLLP_TEST_BACKEND=io_uring|epoll|auto picks the backend;
 * FAULTS_LIBC_ALLOC=1 makes pools allocate with malloc (for memcheck). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include <mllp/mllp.h>

#include "faultrecv.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define FT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define FT_SANITIZED 1
#endif
#endif
#ifndef FT_SANITIZED
#define FT_SANITIZED 0
#endif

/* ---- helpers --------------------------------------------------------------
 */

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

#define MAX_EV 4096

struct ev {
	enum mllp_event_kind kind;
	uint32_t conn;
	int reason;
	enum mllp_context ctx;
	bool orphan;
	uint64_t delay_ms;
};

struct rec {
	pthread_mutex_t mu;
	struct ev ev[MAX_EV];
	int n;
	/* Per-connection grammar of the events, checked as they come (all
	 * of them, also past MAX_EV): success only while down, failure only
	 * while down, closed only while up, every other event while up. */
	bool up[256];
	int violations;
	long total;
};

static struct rec g_rec;

/* Per-send reply timeout of send_wait (0: the pool's). */
static int64_t g_rt;

static void on_event(void *ctx, const struct mllp_event *e)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	uint32_t c = e->connection_id & 255;
	bool ok;
	switch (e->kind) {
	case MLLP_EV_CONNECTION_SUCCESS:
		ok = !r->up[c];
		r->up[c] = true;
		break;
	case MLLP_EV_CONNECTION_FAILURE:
		ok = !r->up[c];
		break;
	case MLLP_EV_CONNECTION_CLOSED:
		ok = r->up[c];
		r->up[c] = false;
		break;
	default:
		ok = r->up[c];
		break;
	}
	if (!ok && r->violations++ < 5)
		fprintf(stderr, "telemetry: %s on conn %u out of order\n",
			mllp_event_name(e->kind), c);
	r->total++;
	if (r->n < MAX_EV) {
		struct ev *t = &r->ev[r->n++];
		t->kind = e->kind;
		t->conn = e->connection_id;
		t->reason = e->error ? e->error->reason : 0;
		t->ctx = e->error ? e->error->context : MLLP_CTX_NONE;
		t->orphan = e->orphan;
		t->delay_ms = e->reconnect_delay_ms;
	}
	pthread_mutex_unlock(&r->mu);
}

static void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

static void rec_reset(void)
{
	pthread_mutex_lock(&g_rec.mu);
	g_rec.n = 0;
	g_rec.violations = 0;
	g_rec.total = 0;
	memset(g_rec.up, 0, sizeof(g_rec.up));
	pthread_mutex_unlock(&g_rec.mu);
}

/* Events of connection `conn`, as a string of one letter per event:
 * S success, F failure, C closed, E send_error, T receive_timeout,
 * I invalid_response, V receive_valid, D stale_reply (a duplicate). */
static void rec_seq(uint32_t conn, char *out, size_t cap)
{
	static const char letters[] = "SFCETIVD";
	size_t k = 0;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n && k + 1 < cap; i++)
		if (g_rec.ev[i].conn == conn)
			out[k++] = letters[g_rec.ev[i].kind];
	pthread_mutex_unlock(&g_rec.mu);
	out[k] = 0;
}

/* The i-th event of kind k on conn (or NULL). Copied out. */
static bool rec_find(uint32_t conn, enum mllp_event_kind k, int nth,
		     struct ev *out)
{
	bool found = false;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n; i++) {
		if (g_rec.ev[i].conn != conn || g_rec.ev[i].kind != k)
			continue;
		if (nth-- == 0) {
			*out = g_rec.ev[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&g_rec.mu);
	return found;
}

static int rec_count(enum mllp_event_kind k)
{
	int c = 0;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n; i++)
		c += g_rec.ev[i].kind == k;
	pthread_mutex_unlock(&g_rec.mu);
	return c;
}

/* Wait (bounded) until the event string of conn equals want. */
static bool wait_seq(uint32_t conn, const char *want, int timeout_ms)
{
	char got[256];
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		rec_seq(conn, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return true;
		if (now_ms() > end) {
			fprintf(stderr,
				"events of conn %u: got \"%s\", want "
				"\"%s\"\n",
				conn, got, want);
			return false;
		}
		pause_ms(1);
	}
}

/* The backend under test: MLLP_TEST_BACKEND = io_uring | epoll | auto
 * (unset: auto), as in the integration suites. */
static enum mllp_backend_kind test_backend(void)
{
	const char *b = getenv("MLLP_TEST_BACKEND");
	if (b && !strcmp(b, "epoll"))
		return MLLP_BACKEND_EPOLL;
	if (b && (!strcmp(b, "io_uring") || !strcmp(b, "uring")))
		return MLLP_BACKEND_IO_URING;
	return MLLP_BACKEND_AUTO;
}

static void base_config(struct mllp_pool_config *cfg)
{
	mllp_pool_config_init(cfg);
	cfg->backend = test_backend();
	/* FAULTS_LIBC_ALLOC=1: the pool allocates with malloc, so memcheck
	 * sees every allocation (jemalloc's private arena hides them). */
	const char *la = getenv("FAULTS_LIBC_ALLOC");
	if (la && *la == '1')
		cfg->allocator = mllp_allocator_libc();
	cfg->log = quiet;
	cfg->telemetry = on_event;
	cfg->telemetry_ctx = &g_rec;
	cfg->backoff_divisor = 100;
	cfg->conn.connect_timeout = 1000;
	cfg->conn.reply_timeout = 300;
	cfg->max_reply = 64 * 1024;
	cfg->ring_entries = 256;
	cfg->recv_buffers = 64;
}

struct env {
	struct fr fr;
	struct mllp_pool *pool;
	uint32_t ep;
	uint32_t nconns;
};

static bool all_up(struct env *e)
{
	return mllp_pool_connected_count(e->pool, e->ep) == e->nconns;
}

static bool wait_up(struct env *e, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (!all_up(e)) {
		if (now_ms() > end)
			return false;
		pause_ms(1);
	}
	return true;
}

static void env_pool(struct env *e, const struct mllp_pool_config *cfg,
		     uint32_t nconns)
{
	e->nconns = nconns;
	struct mllp_error err;
	int rc = mllp_pool_create(cfg, &e->pool, &err);
	if (rc != 0)
		fprintf(stderr, "pool: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_int_equal(mllp_pool_add_endpoint(e->pool, "127.0.0.1",
						e->fr.port, nconns, NULL,
						&e->ep, NULL),
			 0);
}

/* A zeroed env, the telemetry reset, the fault receiver started. */
static void env_begin(struct env *e, const struct fr_config *fc)
{
	memset(e, 0, sizeof(*e));
	rec_reset();
	fr_start(&e->fr, fc);
}

/* env_begin() with the listener closed (connects refused), and a base
 * config in cfg. */
static void env_refusing(struct env *e, struct mllp_pool_config *cfg)
{
	env_begin(e, NULL);
	fr_listen(&e->fr, false);
	base_config(cfg);
}

/* Receiver with one fault firing once, and a pool of one connection. */
static void env_start(struct env *e, const struct fr_config *fc, int fault,
		      const struct mllp_pool_config *cfg)
{
	env_begin(e, fc);
	g_rt = 0;
	if (fault >= 0)
		fr_set(&e->fr, (enum fr_fault)fault, 1000000, 1);
	struct mllp_pool_config def;
	if (!cfg) {
		base_config(&def);
		cfg = &def;
	}
	env_pool(e, cfg, 1);
}

/* env_start(), then wait until the connection is up. */
static void env_start_up(struct env *e, const struct fr_config *fc, int fault,
			 const struct mllp_pool_config *cfg)
{
	env_start(e, fc, fault, cfg);
	assert_true(wait_up(e, 5000));
}

/* The pool's connects counter is n. */
static void expect_connects(struct env *e, uint64_t n)
{
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e->pool, &st);
	assert_int_equal(st.connects, n);
}

static int rec_violations(void)
{
	pthread_mutex_lock(&g_rec.mu);
	int v = g_rec.violations;
	pthread_mutex_unlock(&g_rec.mu);
	return v;
}

static void env_stop(struct env *e)
{
	mllp_pool_destroy(e->pool);
	fr_stop(&e->fr);
	assert_int_equal(rec_violations(), 0);
}

/* A test HL7 message with control id CTRL<n> (malloc'd). */
static char *hl7(int n, size_t *len)
{
	char *s = malloc(256);
	assert_non_null(s);
	int l = snprintf(s, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|"
			 "CTRL%d|P|2.5\rEVN|A01|20240101120000\rPID|1||%d||"
			 "DOE^JOHN\r",
			 n, n);
	*len = (size_t)l;
	return s;
}

/* What the completion callback saw. */
struct probe {
	struct mllp_pool *pool;
	uint32_t ep;
	_Atomic int calls;
	_Atomic bool connected; /* is_connected(conn 0) inside the callback */
};

static void probe_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	struct probe *p = arg;
	atomic_store(&p->connected, mllp_pool_is_connected(p->pool, p->ep, 0));
	atomic_fetch_add(&p->calls, 1);
}

/* Send message n (HL7) and wait for its completion; the caller frees. */
static struct mllp_future *send_wait(struct env *e, int n, struct probe *pr)
{
	size_t len;
	char *m = hl7(n, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.reply_timeout = g_rt;
	if (pr) {
		pr->pool = e->pool;
		pr->ep = e->ep;
		atomic_store(&pr->calls, 0);
		o.callback = probe_cb;
		o.callback_arg = pr;
	}
	struct mllp_future *f = NULL;
	struct mllp_error err;
	int rc = mllp_pool_send(e->pool, e->ep, m, len, &o, &f, &err);
	free(m);
	if (rc != 0)
		fprintf(stderr, "send %d: %s\n", n, err.message);
	assert_int_equal(rc, 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	if (pr) {
		/* The callback runs after the result is published: wait for
		 * it (bounded), then it must have run exactly once. */
		uint64_t end = now_ms() + 5000;
		while (atomic_load(&pr->calls) == 0 && now_ms() < end)
			pause_ms(1);
		assert_int_equal(atomic_load(&pr->calls), 1);
	}
	return f;
}

static void expect_verdict(struct mllp_future *f, int n, enum mllp_verdict v)
{
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != 0)
		fprintf(stderr, "message %d: %s (%s)\n", n, r->error.message,
			mllp_err_name(r->status));
	assert_int_equal(r->status, 0);
	assert_true(r->written);
	assert_true(r->has_verdict);
	if (r->verdict != v)
		fprintf(stderr, "message %d: verdict %s: %s\n", n,
			mllp_verdict_name(r->verdict), r->why);
	assert_int_equal(r->verdict, v);
	if (v != MLLP_BAD_MESSAGE_CONTROL_ID) {
		char want[32];
		snprintf(want, sizeof(want), "CTRL%d", n);
		assert_true(mllp_str_eq(r->ack.control_id, want));
	}
}

static void send_expect_aa(struct env *e, int n)
{
	/* A healthy exchange: a generous reply timeout (loaded CI, TSan). */
	int64_t saved = g_rt;
	g_rt = 5000;
	struct probe pr;
	struct mllp_future *f = send_wait(e, n, &pr);
	g_rt = saved;
	expect_verdict(f, n, MLLP_APPLICATION_ACCEPT);
	assert_true(atomic_load(&pr.connected));
	mllp_future_free(f);
}

static void expect_error(struct mllp_future *f, enum mllp_context ctx,
			 int reason, bool written, bool reached)
{
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != reason)
		fprintf(stderr, "status %s (%s: %s), want %s\n",
			mllp_err_name(r->status),
			mllp_context_name(r->error.context), r->error.message,
			mllp_err_name(reason));
	assert_int_equal(r->status, reason);
	assert_int_equal(r->error.reason, reason);
	assert_int_equal(r->error.context, ctx);
	assert_int_equal(r->written, written);
	assert_int_equal(r->may_have_reached, reached);
	assert_false(r->has_verdict);
}

static void expect_stats(struct env *e, uint64_t sent, uint64_t errors,
			 uint64_t accepted)
{
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e->pool, &st);
	assert_int_equal(st.sent, sent);
	assert_int_equal(st.errors, errors);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], accepted);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
}

/* Send message n: it fails as expect_error() checks, and the completion
 * callback saw the connection up (connected) or not. */
static void send_expect_error(struct env *e, int n, enum mllp_context ctx,
			      int reason, bool written, bool reached,
			      bool connected)
{
	struct probe pr;
	struct mllp_future *f = send_wait(e, n, &pr);
	expect_error(f, ctx, reason, written, reached);
	assert_int_equal(atomic_load(&pr.connected), connected);
	mllp_future_free(f);
}

/* The first connection_closed of connection 0: its reason and delay. */
static void expect_closed(int reason, uint64_t delay_ms)
{
	struct ev cl;
	assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
	assert_int_equal(cl.reason, reason);
	assert_int_equal(cl.delay_ms, delay_ms);
}

/* The first invalid_response of connection 0 is an orphan (with reason,
 * unless any_reason). */
static void expect_orphan_invalid(bool any_reason, int reason)
{
	struct ev iv;
	assert_true(rec_find(0, MLLP_EV_INVALID_RESPONSE, 0, &iv));
	assert_true(iv.orphan);
	if (!any_reason)
		assert_int_equal(iv.reason, reason);
}

/* A message fault that ends the first message in an error and closes the
 * connection: exact outcome, is_connected false inside the callback (the
 * connection is being closed), the telemetry sequence, recovery by an
 * immediate reconnect, and the next message accepted. */
static void error_and_recover(int fault, const struct mllp_pool_config *cfg,
			      const struct fr_config *fc, enum mllp_context ctx,
			      int reason, bool written, bool reached,
			      const char *events_before_close)
{
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, fc, fault, cfg);
	assert_true(wait_seq(0, "S", 2000));
	send_expect_error(&e, 1, ctx, reason, written, reached, false);
	assert_true(wait_up(&e, 5000));
	char want[64];
	snprintf(want, sizeof(want), "S%sCS", events_before_close);
	assert_true(wait_seq(0, want, 2000));
	expect_closed(reason, 0); /* reconnect at once */
	send_expect_aa(&e, 2);
	snprintf(want, sizeof(want), "S%sCSV", events_before_close);
	assert_true(wait_seq(0, want, 2000));
	expect_stats(&e, written ? 2 : 1, 1, 1);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.connects, 2);
	assert_int_equal(st.reconnects, 1);
	assert_int_equal(st.connect_failures, 0);
	if (reason <= MLLP_ERR_BASE)
		assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - reason], 1);
	else
		assert_int_equal(st.errors_os, 1);
	env_stop(&e);
}

/* error_and_recover() of a receive fault with the default configs: the
 * message was written and may have reached the receiver. */
static void recv_error_and_recover(int fault, int reason,
				   const char *events_before_close)
{
	error_and_recover(fault, NULL, NULL, MLLP_CTX_RECEIVE, reason, true,
			  true, events_before_close);
}

/* A message fault the client survives without closing: the first message
 * gets verdict v (or accept), the connection stays up (one connect). */
static void verdict_keep(int fault, enum mllp_verdict v,
			 const struct fr_config *fc)
{
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, fc, fault, NULL);
	g_rt = 5000; /* slow replies (bytewise) are not timeouts here */
	assert_true(wait_up(&e, 5000));
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_verdict(f, 1, v);
	assert_true(atomic_load(&pr.connected));
	mllp_future_free(f);
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SVV", 2000));
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.connects, 1);
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.acked[v], v == MLLP_APPLICATION_ACCEPT ? 2 : 1);
	assert_int_equal(atomic_load(&e.fr.fired[fault]), 1);
	env_stop(&e);
}

/* ---- one test per scenario ------------------------------------------------
 */

/* Listener closed: connects are refused (connection_failure with
 * ECONNREFUSED, backoff 1 s, 2 s, 4 s before scaling), a send fails at once
 * with context send and "connection refused", never written; the listener
 * comes back and backoff brings the connection up without help. */
static void test_refuse(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	struct mllp_pool_config cfg;
	env_refusing(&e, &cfg);
	cfg.backoff_divisor = 20; /* 50, 100, 200 ms ... */
	env_pool(&e, &cfg, 1);
	assert_true(wait_seq(0, "FFF", 3000));
	for (int i = 0; i < 3; i++) {
		struct ev fe;
		assert_true(rec_find(0, MLLP_EV_CONNECTION_FAILURE, i, &fe));
		assert_int_equal(fe.reason, -ECONNREFUSED);
		assert_int_equal(fe.ctx, MLLP_CTX_CONNECT);
		assert_int_equal(fe.delay_ms, 1000u << i);
	}
	assert_false(mllp_pool_is_connected(e.pool, e.ep, 0));
	size_t len;
	char *m = hl7(1, &len);
	struct mllp_future *f = (void *)1;
	struct mllp_error err;
	int rc = mllp_pool_send(e.pool, e.ep, m, len, NULL, &f, &err);
	free(m);
	if (rc == 0) {
		/* A connect attempt was under way: the message waited for it
		 * and failed with its error. */
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		expect_error(f, MLLP_CTX_SEND, -ECONNREFUSED, false, false);
		mllp_future_free(f);
	} else {
		assert_int_equal(rc, -ECONNREFUSED);
		assert_null(f);
		assert_int_equal(err.context, MLLP_CTX_SEND);
		assert_string_equal(err.message, "connection refused");
	}
	fr_listen(&e.fr, true);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 2);
	/* The future may complete before its receive_valid event is
	 * delivered: wait (bounded) for the event, then check the rest. */
	char seq[256];
	size_t n = 0;
	uint64_t end = now_ms() + 5000;
	for (;;) {
		rec_seq(0, seq, sizeof(seq));
		n = strlen(seq);
		if ((n >= 2 && strcmp(seq + n - 2, "SV") == 0) ||
		    now_ms() > end)
			break;
		pause_ms(1);
	}
	assert_true(n >= 5);
	assert_string_equal(seq + n - 2, "SV");
	for (size_t i = 0; i + 2 < n; i++)
		assert_int_equal(seq[i], 'F');
	expect_stats(&e, 1, rc == 0 ? 1 : 0, 1);
	env_stop(&e);
}

/* Accepted, then reset at once: connection_success, connection_closed
 * (ECONNRESET), reconnect after the backoff delay, next message
 * accepted. */
static void test_reject(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, FR_REJECT, NULL);
	/* The reset may be seen after the connect completed (closed, from
	 * the receive side) or, with a readiness backend, as the connect's
	 * own result (connection_failure); either way ECONNRESET, and the
	 * backoff delay (idle, no reply yet), not a tight reconnect loop. */
	char seq[64];
	uint64_t end = now_ms() + 5000;
	do {
		pause_ms(1);
		rec_seq(0, seq, sizeof(seq));
	} while (strcmp(seq, "FS") && strcmp(seq, "SCS") && now_ms() < end);
	assert_true(wait_up(&e, 5000));
	struct ev cl;
	if (strcmp(seq, "FS") == 0) {
		assert_true(rec_find(0, MLLP_EV_CONNECTION_FAILURE, 0, &cl));
		assert_int_equal(cl.ctx, MLLP_CTX_CONNECT);
	} else {
		assert_string_equal(seq, "SCS");
		assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
		assert_int_equal(cl.ctx, MLLP_CTX_RECEIVE);
	}
	assert_int_equal(cl.reason, -ECONNRESET);
	assert_int_equal(cl.delay_ms, 1000);
	send_expect_aa(&e, 1);
	strcat(seq, "V");
	assert_true(wait_seq(0, seq, 2000));
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* Accepted, then closed at once (FIN): closed (connection closed), then a
 * reconnect; the next message is accepted. */
static void test_accept_close(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, NULL, FR_ACCEPT_CLOSE, NULL);
	assert_true(wait_seq(0, "SCS", 5000));
	expect_closed(MLLP_ERR_CLOSED, 1000);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 1);
	assert_true(wait_seq(0, "SCSV", 2000));
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* A receiver that accepts and closes every connection: the client keeps
 * reconnecting with backoff (not in a tight loop). */
static void test_accept_close_storm(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.backoff_divisor = 10; /* 100 ms, 200 ms, 400 ms ... */
	env_begin(&e, NULL);
	fr_set(&e.fr, FR_ACCEPT_CLOSE, 1000000, 0);
	env_pool(&e, &cfg, 1);
	pause_ms(600);
	int accepted = atomic_load(&e.fr.accepted);
	if (accepted > 8)
		fprintf(stderr, "accept-close storm: %d connects in 600 ms\n",
			accepted);
	/* 600 ms with 100 ms between attempts: a handful, not thousands. */
	assert_true(accepted >= 2);
	assert_true(accepted <= 10);
	fr_clear(&e.fr);
	env_stop(&e);
}

/* The receiver reads the message and closes without replying: receive /
 * connection closed, written (may have reached). */
static void test_close_no_reply(void **state)
{
	(void)state;
	recv_error_and_recover(FR_CLOSE_NO_REPLY, MLLP_ERR_CLOSED, "");
}

/* The same on a connection that has carried a reply: it reconnects at
 * once (connection_closed with delay 0). */
static void test_close_no_reply_proven(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, -1, NULL);
	send_expect_aa(&e, 1);
	fr_set(&e.fr, FR_CLOSE_NO_REPLY, 1000000, 1);
	send_expect_error(&e, 2, MLLP_CTX_RECEIVE, MLLP_ERR_CLOSED, true, true,
			  false);
	assert_true(wait_seq(0, "SVCS", 2000));
	struct ev cl;
	assert_true(rec_find(0, MLLP_EV_CONNECTION_CLOSED, 0, &cl));
	assert_int_equal(cl.delay_ms, 0);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 3);
	expect_stats(&e, 3, 1, 2);
	env_stop(&e);
}

/* Half of the reply, then RST: receive / ECONNRESET, written. */
static void test_rst_mid_reply(void **state)
{
	(void)state;
	recv_error_and_recover(FR_RST_MID_REPLY, -ECONNRESET, "");
}

/* No reply (half-open): receive / timed out after reply_timeout,
 * receive_timeout then connection_closed (abortive), reconnect. */
static void test_no_reply(void **state)
{
	(void)state;
	uint64_t t0 = now_ms();
	recv_error_and_recover(FR_NO_REPLY, MLLP_ERR_TIMEOUT, "T");
	assert_true(now_ms() - t0 >= 300);
}

/* A reply without trailer: the same as no reply (the timeout covers the
 * whole reply). */
static void test_no_trailer(void **state)
{
	(void)state;
	recv_error_and_recover(FR_NO_TRAILER, MLLP_ERR_TIMEOUT, "T");
}

/* Junk before SB: receive / invalid header, invalid_response, closed. */
static void test_junk_before(void **state)
{
	(void)state;
	recv_error_and_recover(FR_JUNK_BEFORE, MLLP_ERR_INVALID_HEADER, "I");
}

/* Bytes after the trailer in the same packet: data after trailer. */
static void test_data_after(void **state)
{
	(void)state;
	recv_error_and_recover(FR_DATA_AFTER, MLLP_ERR_DATA_AFTER_TRAILER, "I");
}

/* Two replies in one write: the second is data after the trailer. */
static void test_double_one_write(void **state)
{
	(void)state;
	recv_error_and_recover(FR_DOUBLE, MLLP_ERR_DATA_AFTER_TRAILER, "I");
}

/* A reply beyond max_reply: receive / frame too big, closed. */
static void test_oversize(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.max_reply = 4096;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.oversize = 8192;
	error_and_recover(FR_OVERSIZE, &cfg, &fc, MLLP_CTX_RECEIVE,
			  MLLP_ERR_FRAME_TOO_BIG, true, true, "I");
}

/* Two replies, the second 30 ms later: the message is accepted; the
 * second reply, an ACK for a message this connection has its answer to,
 * is a stale duplicate (some receivers resend earlier ACKs): dropped,
 * counted, the connection kept; the next message accepted on it. */
static void test_double_later(void **state)
{
	(void)state;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.double_pause_us = 30000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, &fc, FR_DOUBLE, NULL);
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_verdict(f, 1, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	assert_true(wait_seq(0, "SVD", 3000));
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SVDV", 3000));
	expect_stats(&e, 2, 0, 2);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.stale_replies, 1);
	assert_int_equal(st.connects, 1);
	env_stop(&e);
}

/* A reply before any message: unsolicited, closed, reconnected. */
static void test_unsolicited(void **state)
{
	(void)state;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start(&e, NULL, FR_UNSOLICITED, NULL);
	assert_true(wait_seq(0, "SICS", 5000));
	expect_orphan_invalid(false, MLLP_ERR_UNSOLICITED);
	expect_closed(MLLP_ERR_UNSOLICITED, 1000);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 1);
	expect_stats(&e, 1, 0, 1);
	env_stop(&e);
}

/* Slow reply, one byte per write: accepted. */
static void test_bytewise(void **state)
{
	(void)state;
	verdict_keep(FR_BYTEWISE, MLLP_APPLICATION_ACCEPT, NULL);
}

/* EB and CR in separate writes: accepted. */
static void test_split_eb_cr(void **state)
{
	(void)state;
	verdict_keep(FR_SPLIT_EB_CR, MLLP_APPLICATION_ACCEPT, NULL);
}

/* Wrong MSA-2: verdict bad_message_control_id, connection kept. */
static void test_wrong_id(void **state)
{
	(void)state;
	verdict_keep(FR_WRONG_ID, MLLP_BAD_MESSAGE_CONTROL_ID, NULL);
}

/* AE / AR / CE / CR: the application verdicts, connection kept. */
static void test_app_codes(void **state)
{
	(void)state;
	verdict_keep(FR_AE, MLLP_APPLICATION_ERROR, NULL);
	verdict_keep(FR_AR, MLLP_APPLICATION_REJECT, NULL);
	verdict_keep(FR_CE, MLLP_APPLICATION_ERROR, NULL);
	verdict_keep(FR_CR, MLLP_APPLICATION_REJECT, NULL);
}

/* The receiver stops reading: a large message's send times out (context
 * send, not all written, may have reached), send_error then closed, and
 * the reconnected connection carries the next message. */
static void test_send_timeout(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.send_timeout = 300;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, NULL, FR_STOP_READING, &cfg);
	size_t big = 32u << 20;
	unsigned char *raw = malloc(big);
	assert_non_null(raw);
	memset(raw, 'r', big);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_RAW;
	o.borrow_payload = true;
	struct probe pr = {.pool = e.pool, .ep = e.ep};
	o.callback = probe_cb;
	o.callback_arg = &pr;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(e.pool, e.ep, raw, big, &o, &f, NULL),
			 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	expect_error(f, MLLP_CTX_SEND, MLLP_ERR_TIMEOUT, false, true);
	uint64_t end = now_ms() + 5000;
	while (atomic_load(&pr.calls) == 0 && now_ms() < end)
		pause_ms(1);
	assert_int_equal(atomic_load(&pr.calls), 1);
	assert_false(atomic_load(&pr.connected));
	mllp_future_free(f);
	free(raw);
	assert_true(wait_up(&e, 5000));
	assert_true(wait_seq(0, "SECS", 2000));
	send_expect_aa(&e, 2);
	expect_stats(&e, 1, 1, 1);
	env_stop(&e);
}

/* ---- listener restart and slow accept ------------------------------------ */

struct bulk {
	_Atomic int done, ok, failed, bad;
};

static void bulk_cb(struct mllp_future *f, void *arg)
{
	struct bulk *b = arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT) {
		atomic_fetch_add(&b->ok, 1);
	} else {
		atomic_fetch_add(&b->failed, 1);
		/* Closed under the message: the receiver may have it. */
		bool ok = (r->status == MLLP_ERR_CLOSED ||
			   r->status == -ECONNRESET || r->status == -EPIPE) &&
			  (!r->written || r->may_have_reached);
		if (!ok) {
			fprintf(stderr, "unexpected: %s %s\n",
				mllp_context_name(r->error.context),
				r->error.message);
			atomic_fetch_add(&b->bad, 1);
		}
	}
	atomic_fetch_add(&b->done, 1);
	mllp_future_free(f);
}

static void bulk_send(struct env *e, struct bulk *b, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		size_t len;
		char *m = hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.block = true;
		o.callback = bulk_cb;
		o.callback_arg = b;
		struct mllp_future *f;
		assert_int_equal(
		    mllp_pool_send(e->pool, e->ep, m, len, &o, &f, NULL), 0);
		free(m);
	}
}

static bool bulk_wait(struct bulk *b, int n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (atomic_load(&b->done) < n) {
		if (now_ms() > end)
			return false;
		pause_ms(1);
	}
	return true;
}

/* The listener restarts (every connection closed, same port) in the middle
 * of a run: messages in flight fail closed/reset (may have reached),
 * queued ones wait (queue_timeout), every connection comes back and the
 * run continues. */
static void test_restart_listener(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.queue_timeout = 10000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_begin(&e, NULL);
	env_pool(&e, &cfg, 4);
	assert_true(wait_up(&e, 5000));
	struct bulk b;
	memset(&b, 0, sizeof(b));
	bulk_send(&e, &b, 0, 2000);
	while (atomic_load(&b.done) < 500)
		pause_ms(1);
	fr_restart(&e.fr);
	bulk_send(&e, &b, 2000, 2000);
	assert_true(bulk_wait(&b, 4000, 30000));
	assert_int_equal(atomic_load(&b.bad), 0);
	assert_true(atomic_load(&e.fr.restarts) == 1);
	assert_true(wait_up(&e, 5000));
	assert_true(rec_count(MLLP_EV_CONNECTION_CLOSED) >= 1);
	struct bulk c;
	memset(&c, 0, sizeof(c));
	bulk_send(&e, &c, 5000, 200);
	assert_true(bulk_wait(&c, 200, 10000));
	assert_int_equal(atomic_load(&c.ok), 200);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.errors, atomic_load(&b.failed));
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT],
			 atomic_load(&b.ok) + 200);
	assert_true(st.reconnects >= 4);
	env_stop(&e);
}

/* Slow accept: the receiver does not accept and its backlog is 1, so some
 * connects stay unanswered (connect timeout, connection_failure with
 * ETIMEDOUT) while others wait in the accept queue; messages wait
 * (queue_timeout). When accepting resumes, every message is accepted and
 * every connection comes up. */
static void test_slow_accept(void **state)
{
	(void)state;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.backlog = 1;
	fc.start_paused = true;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.connect_timeout = 200;
	cfg.conn.queue_timeout = 10000;
	cfg.conn.reply_timeout = 5000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_begin(&e, &fc);
	env_pool(&e, &cfg, 4);
	struct bulk b;
	memset(&b, 0, sizeof(b));
	bulk_send(&e, &b, 0, 8);
	pause_ms(500);
	assert_int_equal(atomic_load(&b.done), 0);
	assert_int_equal(atomic_load(&e.fr.accepted), 0);
	int failures = rec_count(MLLP_EV_CONNECTION_FAILURE);
	for (int i = 0; i < failures; i++) {
		pthread_mutex_lock(&g_rec.mu);
		int reason = 0, k = 0;
		for (int j = 0; j < g_rec.n; j++)
			if (g_rec.ev[j].kind == MLLP_EV_CONNECTION_FAILURE &&
			    k++ == i)
				reason = g_rec.ev[j].reason;
		pthread_mutex_unlock(&g_rec.mu);
		assert_int_equal(reason, -ETIMEDOUT);
	}
	fr_pause_accept(&e.fr, false);
	assert_true(bulk_wait(&b, 8, 10000));
	assert_int_equal(atomic_load(&b.ok), 8);
	assert_true(wait_up(&e, 10000));
	fprintf(stderr, "slow accept: %d connect failures while paused\n",
		failures);
	env_stop(&e);
}

/* close_on_recv_error false: a late reply (after a reply timeout) is
 * dropped by MSA-2 correlation and never taken for the next message. */
static void test_late_reply_correlated(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.byte_pause_us = 5000; /* ~130 bytes: ~650 ms > reply timeout */
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	env_start_up(&e, &fc, FR_BYTEWISE, &cfg);
	send_expect_error(&e, 1, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, true, true,
			  true); /* socket kept */
	/* Message 2 goes out while the late reply is still trickling in;
	 * its own reply comes after it. */
	g_rt = 5000;
	struct probe pr;
	struct mllp_future *g = send_wait(&e, 2, &pr);
	expect_verdict(g, 2, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(g);
	assert_true(wait_seq(0, "STIV", 3000));
	expect_orphan_invalid(true, 0);
	expect_connects(&e, 1);
	env_stop(&e);
}

/* Refused with queue_timeout: the message waits for a connection, then
 * fails with the last connect error (context send, never written). */
static void test_refuse_queue_timeout(void **state)
{
	(void)state;
	static struct env e;
	struct mllp_pool_config cfg;
	env_refusing(&e, &cfg);
	cfg.conn.queue_timeout = 300;
	env_pool(&e, &cfg, 2);
	assert_true(wait_seq(0, "F", 3000));
	uint64_t t0 = now_ms();
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	assert_true(now_ms() - t0 >= 250);
	expect_error(f, MLLP_CTX_SEND, -ECONNREFUSED, false, false);
	assert_false(atomic_load(&pr.connected));
	mllp_future_free(f);
	fr_listen(&e.fr, true);
	assert_true(wait_up(&e, 5000));
	send_expect_aa(&e, 2);
	expect_stats(&e, 1, 1, 1);
	env_stop(&e);
}

/* close_on_recv_error false and a reply far beyond max_reply: the message
 * fails (frame too big) and the rest of that reply must not be taken for
 * junk before the next message's reply. */
static void test_oversize_keep_socket(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	cfg.max_reply = 4096;
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.oversize = 4u << 20;
	static struct env e;
	env_start_up(&e, &fc, FR_OVERSIZE, &cfg);
	struct probe pr;
	struct mllp_future *f = send_wait(&e, 1, &pr);
	expect_error(f, MLLP_CTX_RECEIVE, MLLP_ERR_FRAME_TOO_BIG, true, true);
	mllp_future_free(f);
	g_rt = 5000;
	for (int i = 2; i < 6; i++)
		send_expect_aa(&e, i);
	/* The socket was closed (abortively) and reconnected. */
	expect_connects(&e, 2);
	env_stop(&e);
}

/* close_on_recv_error false: a reply with a wrong MSA-2 is taken for a
 * late reply and dropped (orphan invalid_response); the message ends in a
 * reply timeout, the socket is kept, the next message is accepted. */
static void test_wrong_id_correlated(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.close_on_recv_error = false;
	static struct env e;
	env_start_up(&e, NULL, FR_WRONG_ID, &cfg);
	send_expect_error(&e, 1, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, true, true,
			  true);
	send_expect_aa(&e, 2);
	assert_true(wait_seq(0, "SITV", 2000));
	expect_orphan_invalid(true, 0);
	expect_stats(&e, 2, 1, 1);
	env_stop(&e);
}

/* ---- the mixed-fault run ----------------------------------------------- */

#define MIX_PRODUCERS 4

struct mix {
	struct mllp_pool *pool;
	uint32_t ep;
	int total;
	int per;
	_Atomic uint8_t *done; /* completions per message */
	_Atomic int completed;
	_Atomic int verdicts[7];
	_Atomic int failed;
	_Atomic int written;
	_Atomic int reasons[MLLP_STATS_MLLP_ERRORS];
	_Atomic int os_errors;
	_Atomic int bad;
	_Atomic int sync_errors;
};

static struct mix g_mix;

static void mix_cb(struct mllp_future *f, void *arg)
{
	int n = (int)(intptr_t)arg;
	struct mix *m = &g_mix;
	const struct mllp_result *r = mllp_future_result(f);
	if (atomic_fetch_add(&m->done[n], 1) != 0)
		atomic_fetch_add(&m->bad, 1);
	if (r->written)
		atomic_fetch_add(&m->written, 1);
	if (r->status == 0) {
		if (!r->has_verdict || !r->written)
			atomic_fetch_add(&m->bad, 1);
		else
			atomic_fetch_add(&m->verdicts[r->verdict], 1);
	} else {
		atomic_fetch_add(&m->failed, 1);
		int s = r->status;
		bool known = s == MLLP_ERR_CLOSED || s == -ECONNRESET ||
			     s == -EPIPE || s == MLLP_ERR_TIMEOUT ||
			     s == MLLP_ERR_INVALID_HEADER ||
			     s == MLLP_ERR_DATA_AFTER_TRAILER ||
			     s == MLLP_ERR_FRAME_TOO_BIG ||
			     /* a reply before the message went out (the
			      * unsolicited and double faults) */
			     s == MLLP_ERR_UNSOLICITED;
		/* The flags agree: written implies may_have_reached; a
		 * receive error (the peer closed, reset or answered) comes
		 * after at least part of the message went out, or while its
		 * send was in flight: it may have reached the receiver. */
		bool flags = (!r->written || r->may_have_reached) &&
			     (r->error.context != MLLP_CTX_RECEIVE ||
			      r->may_have_reached) &&
			     r->error.reason == s;
		if (!known || !flags) {
			fprintf(stderr,
				"mixed: unexpected outcome %s %s (%s) "
				"written %d reached %d\n",
				mllp_context_name(r->error.context),
				r->error.message, mllp_err_name(s), r->written,
				r->may_have_reached);
			atomic_fetch_add(&m->bad, 1);
		}
		if (s <= MLLP_ERR_BASE && MLLP_ERR_BASE - s >= 0 &&
		    MLLP_ERR_BASE - s < MLLP_STATS_MLLP_ERRORS)
			atomic_fetch_add(&m->reasons[MLLP_ERR_BASE - s], 1);
		else
			atomic_fetch_add(&m->os_errors, 1);
	}
	atomic_fetch_add(&m->completed, 1);
	if (n % 3 == 0)
		mllp_future_free(f); /* some freed in their callback */
}

static void *mix_producer(void *arg)
{
	int idx = (int)(intptr_t)arg;
	struct mix *m = &g_mix;
	struct mllp_future **keep = calloc((size_t)m->per, sizeof(*keep));
	assert_non_null(keep);
	for (int i = 0; i < m->per; i++) {
		int n = idx * m->per + i;
		size_t len;
		char *msg = hl7(n, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.block = true;
		o.callback = mix_cb;
		o.callback_arg = (void *)(intptr_t)n;
		struct mllp_future *f;
		struct mllp_error err;
		if (mllp_pool_send(m->pool, m->ep, msg, len, &o, &f, &err) !=
		    0) {
			fprintf(stderr, "mixed: send failed: %s\n",
				err.message);
			atomic_fetch_add(&m->sync_errors, 1);
		} else if (n % 3 != 0) {
			keep[i] = f;
		}
		free(msg);
	}
	for (int i = 0; i < m->per; i++) {
		if (!keep[i])
			continue;
		if (i % 2)
			mllp_future_wait(keep[i], MLLP_INFINITE);
		mllp_future_free(keep[i]); /* some before completion */
	}
	free(keep);
	return NULL;
}

/* total 0: the default size (or FAULTS_MIXED_TOTAL); rbufs/rbsize 0: the
 * defaults of the run (256 receive buffers of 16 KiB). */
static void run_mixed(int total, uint32_t rbufs, uint32_t rbsize,
		      bool keep_socket)
{
	int conns = FT_SANITIZED ? 16 : 32;
	if (!total) {
		total = FT_SANITIZED ? 20000 : 50000;
		const char *env = getenv("FAULTS_MIXED_TOTAL");
		if (env && atoi(env) > 0)
			total = atoi(env);
	}
	total -= total % MIX_PRODUCERS;
	struct mix *m = &g_mix;
	memset(m, 0, sizeof(*m));
	m->total = total;
	m->per = total / MIX_PRODUCERS;
	m->done = calloc((size_t)total, sizeof(*m->done));
	assert_non_null(m->done);
	rec_reset();
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.seed = 7;
	fc.oversize = 8192;
	fc.byte_pause_us = 50;
	fc.split_pause_us = 1000;
	/* static: a failed test's threads never see a dead frame */
	static struct env e;
	memset(&e, 0, sizeof(e));
	fr_start(&e.fr, &fc);
	/* Connection faults per accept, message faults per message (ppm). */
	fr_set(&e.fr, FR_REJECT, 20000, 0);
	fr_set(&e.fr, FR_ACCEPT_CLOSE, 20000, 0);
	fr_set(&e.fr, FR_UNSOLICITED, 20000, 0);
	fr_set(&e.fr, FR_STOP_READING, 5000, 0);
	fr_set(&e.fr, FR_CLOSE_NO_REPLY, 1000, 0);
	fr_set(&e.fr, FR_RST_MID_REPLY, 1000, 0);
	fr_set(&e.fr, FR_NO_REPLY, 300, 0);
	fr_set(&e.fr, FR_BYTEWISE, 500, 0);
	fr_set(&e.fr, FR_SPLIT_EB_CR, 1000, 0);
	fr_set(&e.fr, FR_JUNK_BEFORE, 1000, 0);
	fr_set(&e.fr, FR_DATA_AFTER, 1000, 0);
	fr_set(&e.fr, FR_WRONG_ID, 1000, 0);
	fr_set(&e.fr, FR_AE, 2000, 0);
	fr_set(&e.fr, FR_AR, 2000, 0);
	fr_set(&e.fr, FR_CE, 1000, 0);
	fr_set(&e.fr, FR_CR, 1000, 0);
	fr_set(&e.fr, FR_NO_TRAILER, 300, 0);
	fr_set(&e.fr, FR_OVERSIZE, 200, 0);
	fr_set(&e.fr, FR_DOUBLE, 1000, 0);
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.reply_timeout = 200;
	cfg.conn.queue_timeout = 20000;
	cfg.max_reply = 4096;
	cfg.queue_capacity = 1024;
	cfg.conn.close_on_recv_error = !keep_socket;
	cfg.recv_buffers = rbufs ? rbufs : 256;
	if (rbsize)
		cfg.recv_buffer_size = rbsize;
	cfg.ring_entries = 1024;
	env_pool(&e, &cfg, (uint32_t)conns);
	m->pool = e.pool;
	m->ep = e.ep;
	assert_true(wait_up(&e, 10000) || true);
	uint64_t t0 = now_ms();
	pthread_t th[MIX_PRODUCERS];
	for (int i = 0; i < MIX_PRODUCERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, mix_producer,
						(void *)(intptr_t)i),
				 0);
	/* Mid-run, the listener restarts (every connection closed, same
	 * port) while the producers keep sending. */
	uint64_t end = now_ms() + 60000;
	while (atomic_load(&m->completed) < total / 2 && now_ms() < end)
		pause_ms(1);
	fr_restart(&e.fr);
	/* At three quarters, the receiver goes down for 200 ms: connects
	 * are refused (backoff), messages wait in the queue. */
	while (atomic_load(&m->completed) < total * 3 / 4 && now_ms() < end)
		pause_ms(1);
	fr_down(&e.fr);
	pause_ms(200);
	fr_listen(&e.fr, true);
	for (int i = 0; i < MIX_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	while (atomic_load(&m->completed) + atomic_load(&m->sync_errors) <
	       total) {
		assert_true(now_ms() < end);
		pause_ms(1);
	}
	uint64_t dt = now_ms() - t0;
	assert_int_equal(atomic_load(&e.fr.restarts), 2);
	/* Faults off: every connection comes back by itself. */
	fr_clear(&e.fr);
	assert_true(wait_up(&e, 10000));
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	mllp_pool_stop(e.pool);
	/* Exactly once, nothing pending. */
	assert_int_equal(atomic_load(&m->sync_errors), 0);
	assert_int_equal(atomic_load(&m->bad), 0);
	for (int i = 0; i < total; i++)
		assert_int_equal(atomic_load(&m->done[i]), 1);
	int verdicts = 0;
	for (int v = 0; v < 7; v++)
		verdicts += atomic_load(&m->verdicts[v]);
	int failed = atomic_load(&m->failed);
	/* sent == accepted + app errors/rejects (+ other verdicts) + failed */
	assert_int_equal(verdicts + failed, total);
	/* The pool's counters agree. */
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.errors, (uint64_t)failed);
	for (int v = 0; v < 7; v++)
		assert_int_equal(st.acked[v],
				 (uint64_t)atomic_load(&m->verdicts[v]));
	assert_int_equal(st.errors_os, (uint64_t)atomic_load(&m->os_errors));
	for (int i = 0; i < MLLP_STATS_MLLP_ERRORS; i++)
		assert_int_equal(st.errors_mllp[i],
				 (uint64_t)atomic_load(&m->reasons[i]));
	assert_int_equal(st.sent, (uint64_t)atomic_load(&m->written));
	/* Faults really happened, and each kind of outcome was seen. */
	assert_true(atomic_load(&m->verdicts[MLLP_APPLICATION_ACCEPT]) >
		    total * 9 / 10);
	assert_true(failed > 0);
	if (!FT_SANITIZED) {
		assert_true(atomic_load(&m->verdicts[MLLP_APPLICATION_ERROR]) >
			    0);
		assert_true(atomic_load(&m->verdicts[MLLP_APPLICATION_REJECT]) >
			    0);
		/* Correlation drops a reply with a wrong MSA-2 (the message
		 * then times out); without it the verdict says so. */
		if (keep_socket)
			assert_int_equal(
			    atomic_load(
				&m->verdicts[MLLP_BAD_MESSAGE_CONTROL_ID]),
			    0);
		else
			assert_true(
			    atomic_load(
				&m->verdicts[MLLP_BAD_MESSAGE_CONTROL_ID]) > 0);
	}
	fprintf(
	    stderr,
	    "mixed: %d messages, %d connections, %d producers in %llu "
	    "ms: accept %d, app error %d, app reject %d, bad control id "
	    "%d, failed %d (timeout %d, closed %d, os %d, invalid header "
	    "%d, data after %d, too big %d); written %d; connects %llu, "
	    "connect failures %llu\n",
	    total, conns, MIX_PRODUCERS, (unsigned long long)dt,
	    atomic_load(&m->verdicts[MLLP_APPLICATION_ACCEPT]),
	    atomic_load(&m->verdicts[MLLP_APPLICATION_ERROR]),
	    atomic_load(&m->verdicts[MLLP_APPLICATION_REJECT]),
	    atomic_load(&m->verdicts[MLLP_BAD_MESSAGE_CONTROL_ID]), failed,
	    atomic_load(&m->reasons[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT]),
	    atomic_load(&m->reasons[MLLP_ERR_BASE - MLLP_ERR_CLOSED]),
	    atomic_load(&m->os_errors),
	    atomic_load(&m->reasons[MLLP_ERR_BASE - MLLP_ERR_INVALID_HEADER]),
	    atomic_load(
		&m->reasons[MLLP_ERR_BASE - MLLP_ERR_DATA_AFTER_TRAILER]),
	    atomic_load(&m->reasons[MLLP_ERR_BASE - MLLP_ERR_FRAME_TOO_BIG]),
	    atomic_load(&m->written), (unsigned long long)st.connects,
	    (unsigned long long)st.connect_failures);
	fprintf(stderr, "mixed: faults fired:");
	for (int f = 0; f < FR_COUNT; f++)
		fprintf(stderr, " %s %u", fr_fault_name((enum fr_fault)f),
			atomic_load(&e.fr.fired[f]));
	fprintf(stderr, "\n");
	mllp_pool_destroy(e.pool);
	fr_stop(&e.fr);
	free((void *)m->done);
	assert_int_equal(rec_violations(), 0);
	assert_true(g_rec.total > total); /* every reply reported */
}

static void test_mixed(void **state)
{
	(void)state;
	run_mixed(0, 0, 0, false);
}

/* The same with 4 receive buffers of 64 bytes shared by 32 connections:
 * replies span buffers and the buffer ring runs dry (the backend holds
 * the starved receives and reads on once buffers are given back). */
static void test_mixed_few_buffers(void **state)
{
	(void)state;
	run_mixed(8000, 4, 64, false);
}

/* close_on_recv_error false: sockets are kept after receive errors and
 * replies are correlated by MSA-2 (a wrong MSA-2 then ends in a reply
 * timeout, late and duplicate replies are dropped); the same accounting. */
static void test_mixed_keep_socket(void **state)
{
	(void)state;
	run_mixed(FT_SANITIZED ? 5000 : 20000, 0, 0, true);
}

/* Faults plus send_async, cancel and stop: 2 producers send (every 4th
 * message async, every 7th canceled at once) while the receiver injects
 * faults, and the pool is stopped in the middle of it. Every future
 * completes exactly once (a stop in flight included), sends after the stop
 * fail synchronously with MLLP_ERR_STOPPED, nothing stays pending, and the
 * error counter equals the failed futures. */
#define ACS_PRODUCERS 2
#define ACS_PER	      5000

struct acs {
	struct mllp_pool *pool;
	uint32_t ep;
	_Atomic int created, callbacks, sync_stopped, sync_other;
	_Atomic int ok_verdict, ok_async, canceled, stopped, failed_other, bad;
	_Atomic int started; /* futures created so far, for the stop */
};

static struct acs g_acs;

static void acs_cb(struct mllp_future *f, void *arg)
{
	bool async = (intptr_t)arg & 1;
	struct acs *a = &g_acs;
	const struct mllp_result *r = mllp_future_result(f);
	atomic_fetch_add(&a->callbacks, 1);
	if (!r) {
		atomic_fetch_add(&a->bad, 1);
		return;
	}
	if (r->status == 0) {
		if (async && r->written && !r->has_verdict)
			atomic_fetch_add(&a->ok_async, 1);
		else if (!async && r->written && r->has_verdict)
			atomic_fetch_add(&a->ok_verdict, 1);
		else
			atomic_fetch_add(&a->bad, 1);
		return;
	}
	if (r->written && !r->may_have_reached)
		atomic_fetch_add(&a->bad, 1);
	if (r->status == MLLP_ERR_CANCELED)
		atomic_fetch_add(&a->canceled, 1);
	else if (r->status == MLLP_ERR_STOPPED)
		atomic_fetch_add(&a->stopped, 1);
	else
		atomic_fetch_add(&a->failed_other, 1);
}

static void *acs_producer(void *arg)
{
	int idx = (int)(intptr_t)arg;
	struct acs *a = &g_acs;
	struct mllp_future **keep = calloc(ACS_PER, sizeof(*keep));
	assert_non_null(keep);
	for (int i = 0; i < ACS_PER; i++) {
		int n = idx * ACS_PER + i;
		size_t len;
		char *msg = hl7(n, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.block = true;
		o.async = n % 4 == 1;
		o.callback = acs_cb;
		o.callback_arg = (void *)(intptr_t)(o.async ? 1 : 0);
		struct mllp_error err;
		int rc = mllp_pool_send(a->pool, a->ep, msg, len, &o, &keep[i],
					&err);
		free(msg);
		if (rc == MLLP_ERR_STOPPED) {
			atomic_fetch_add(&a->sync_stopped, 1);
			assert_null(keep[i]);
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&a->sync_other, 1);
			continue;
		}
		atomic_fetch_add(&a->created, 1);
		atomic_fetch_add(&a->started, 1);
		if (n % 7 == 3)
			mllp_future_cancel(keep[i]);
	}
	for (int i = 0; i < ACS_PER; i++) {
		if (!keep[i])
			continue;
		assert_int_equal(mllp_future_wait(keep[i], 30000), 0);
		mllp_future_free(keep[i]);
	}
	free(keep);
	return NULL;
}

static void test_async_cancel_stop(void **state)
{
	(void)state;
	struct acs *a = &g_acs;
	memset(a, 0, sizeof(*a));
	rec_reset();
	struct fr_config fc;
	memset(&fc, 0, sizeof(fc));
	fc.seed = 11;
	fc.oversize = 8192;
	static struct env e;
	memset(&e, 0, sizeof(e));
	fr_start(&e.fr, &fc);
	fr_set(&e.fr, FR_ACCEPT_CLOSE, 20000, 0);
	fr_set(&e.fr, FR_CLOSE_NO_REPLY, 2000, 0);
	fr_set(&e.fr, FR_RST_MID_REPLY, 2000, 0);
	fr_set(&e.fr, FR_NO_REPLY, 500, 0);
	fr_set(&e.fr, FR_JUNK_BEFORE, 2000, 0);
	fr_set(&e.fr, FR_AE, 5000, 0);
	fr_set(&e.fr, FR_DOUBLE, 2000, 0);
	struct mllp_pool_config cfg;
	base_config(&cfg);
	cfg.conn.reply_timeout = 200;
	cfg.conn.queue_timeout = 20000;
	cfg.max_reply = 4096;
	cfg.queue_capacity = 512;
	env_pool(&e, &cfg, 8);
	a->pool = e.pool;
	a->ep = e.ep;
	pthread_t th[ACS_PRODUCERS];
	for (int i = 0; i < ACS_PRODUCERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, acs_producer,
						(void *)(intptr_t)i),
				 0);
	uint64_t end = now_ms() + 30000;
	while (atomic_load(&a->started) < ACS_PRODUCERS * ACS_PER / 2 &&
	       now_ms() < end)
		pause_ms(1);
	mllp_pool_stop(e.pool); /* returns after every future completed */
	/* A producer may still be inside mllp_pool_send for a message the
	 * manager took (and failed) while stopping: counted as created only
	 * once the call returns. Equality is checked after the joins. */
	assert_true(atomic_load(&a->callbacks) >= atomic_load(&a->created));
	for (int i = 0; i < ACS_PRODUCERS; i++)
		pthread_join(th[i], NULL);
	int created = atomic_load(&a->created);
	assert_int_equal(atomic_load(&a->callbacks), created);
	assert_int_equal(atomic_load(&a->bad), 0);
	assert_int_equal(atomic_load(&a->sync_other), 0);
	assert_int_equal(created + atomic_load(&a->sync_stopped),
			 ACS_PRODUCERS * ACS_PER);
	int failed = atomic_load(&a->canceled) + atomic_load(&a->stopped) +
		     atomic_load(&a->failed_other);
	assert_int_equal(atomic_load(&a->ok_verdict) +
			     atomic_load(&a->ok_async) + failed,
			 created);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(e.pool, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.errors, (uint64_t)failed);
	assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_CANCELED],
			 (uint64_t)atomic_load(&a->canceled));
	assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_STOPPED],
			 (uint64_t)atomic_load(&a->stopped));
	assert_true(atomic_load(&a->canceled) > 0);
	assert_true(atomic_load(&a->ok_async) > 0);
	fprintf(stderr,
		"async/cancel/stop: %d futures (%d refused after stop): "
		"verdicts %d, async written %d, canceled %d, stopped %d, "
		"other failures %d\n",
		created, atomic_load(&a->sync_stopped),
		atomic_load(&a->ok_verdict), atomic_load(&a->ok_async),
		atomic_load(&a->canceled), atomic_load(&a->stopped),
		atomic_load(&a->failed_other));
	mllp_pool_destroy(e.pool);
	fr_stop(&e.fr);
	assert_int_equal(rec_violations(), 0);
}

int main(void)
{
	pthread_mutex_init(&g_rec.mu, NULL);
	const char *only = getenv("FAULTS_ONLY");
	if (only && *only)
		cmocka_set_test_filter(only);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refuse),
	    cmocka_unit_test(test_reject),
	    cmocka_unit_test(test_accept_close),
	    cmocka_unit_test(test_accept_close_storm),
	    cmocka_unit_test(test_close_no_reply),
	    cmocka_unit_test(test_close_no_reply_proven),
	    cmocka_unit_test(test_rst_mid_reply),
	    cmocka_unit_test(test_no_reply),
	    cmocka_unit_test(test_no_trailer),
	    cmocka_unit_test(test_junk_before),
	    cmocka_unit_test(test_data_after),
	    cmocka_unit_test(test_double_one_write),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_double_later),
	    cmocka_unit_test(test_unsolicited),
	    cmocka_unit_test(test_bytewise),
	    cmocka_unit_test(test_split_eb_cr),
	    cmocka_unit_test(test_wrong_id),
	    cmocka_unit_test(test_app_codes),
	    cmocka_unit_test(test_send_timeout),
	    cmocka_unit_test(test_restart_listener),
	    cmocka_unit_test(test_slow_accept),
	    cmocka_unit_test(test_late_reply_correlated),
	    cmocka_unit_test(test_wrong_id_correlated),
	    cmocka_unit_test(test_refuse_queue_timeout),
	    cmocka_unit_test(test_oversize_keep_socket),
	    cmocka_unit_test(test_mixed),
	    cmocka_unit_test(test_mixed_few_buffers),
	    cmocka_unit_test(test_mixed_keep_socket),
	    cmocka_unit_test(test_async_cancel_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

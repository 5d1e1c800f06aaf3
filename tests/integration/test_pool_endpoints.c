/* The pool's per-endpoint calls on loopback, once per backend:
 * mllp_pool_remove_endpoint (queued and in-flight messages, sends racing
 * the removal, id reuse, bad ids; a stop waking the same waiters as a
 * removal) and mllp_pool_get_endpoint_stats (numbers of a known run). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include "common.h"

/* Completions counted per future (callback_arg points to the counter). */
static void count_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static struct mllp_pool *new_pool(void (*tweak)(struct mllp_pool_config *))
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	if (tweak)
		tweak(&cfg);
	struct mllp_pool *p = NULL;
	struct mllp_error err;
	int rc = mllp_pool_create(&cfg, &p, &err);
	if (rc != 0)
		fprintf(stderr, "pool: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_string_equal(mllp_pool_backend(p), ti_backend_name());
	return p;
}

static uint32_t add_ep(struct mllp_pool *p, uint16_t port, uint32_t conns,
		       const struct mllp_conn_options *o)
{
	uint32_t id = 9999;
	struct mllp_error err;
	int rc =
	    mllp_pool_add_endpoint(p, "127.0.0.1", port, conns, o, &id, &err);
	if (rc != 0)
		fprintf(stderr, "add: %s\n", err.message);
	assert_int_equal(rc, 0);
	return id;
}

struct up_arg {
	struct mllp_pool *p;
	uint32_t id;
	uint32_t n;
};

static bool all_up(void *arg)
{
	struct up_arg *a = arg;
	return mllp_pool_connected_count(a->p, a->id) == a->n;
}

static void wait_up(struct mllp_pool *p, uint32_t id, uint32_t n)
{
	struct up_arg a = {p, id, n};
	assert_true(tr_wait_until(all_up, &a, 5000));
}

/* Send CTRL<n> to endpoint id with a counting callback. */
static struct mllp_future *send_n(struct mllp_pool *p, uint32_t id, int n,
				  _Atomic int *done)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.callback = done ? count_cb : NULL;
	o.callback_arg = (void *)done;
	struct mllp_future *f = NULL;
	struct mllp_error err;
	int rc = mllp_pool_send(p, id, m, len, &o, &f, &err);
	free(m);
	if (rc != 0)
		fprintf(stderr, "send: %s\n", err.message);
	assert_int_equal(rc, 0);
	return f;
}

static int stats_of(struct mllp_pool *p, uint32_t id,
		    struct mllp_endpoint_stats *st)
{
	mllp_endpoint_stats_init(st);
	return mllp_pool_get_endpoint_stats(p, id, st);
}

/* Endpoint stats that have reached want[]: in_flight and queued, or
 * reconnects and connects with the one connection up. */
typedef bool stats_check(const struct mllp_endpoint_stats *st,
			 const uint64_t want[2]);

static bool flight_is(const struct mllp_endpoint_stats *st,
		      const uint64_t want[2])
{
	return st->in_flight == want[0] && st->queued == want[1];
}

static bool counts_are(const struct mllp_endpoint_stats *st,
		       const uint64_t want[2])
{
	return st->reconnects == want[0] && st->connects == want[1] &&
	       st->connected == 1;
}

struct stats_arg {
	struct mllp_pool *p;
	uint32_t id;
	stats_check *check;
	uint64_t want[2];
};

static bool stats_reached(void *arg)
{
	struct stats_arg *a = arg;
	struct mllp_endpoint_stats st;
	return stats_of(a->p, a->id, &st) == 0 && a->check(&st, a->want);
}

/* Wait (5 s at most) until endpoint id's stats pass check with w0, w1. */
static void wait_stats(struct mllp_pool *p, uint32_t id, stats_check *check,
		       uint64_t w0, uint64_t w1)
{
	struct stats_arg a = {p, id, check, {w0, w1}};
	assert_true(tr_wait_until(stats_reached, &a, 5000));
}

static bool no_conns(void *arg)
{
	return atomic_load(&((struct tr *)arg)->open_conns) == 0;
}

static void no_reply_timeout(struct mllp_pool_config *cfg)
{
	cfg->conn.reply_timeout_ms = MLLP_INFINITE;
}

/* A receiver that holds every reply: one message in flight, four queued.
 * The removal fails each future once, says which may have reached the
 * receiver, closes the connection and leaves nothing counted. */
static void test_remove_queued_and_in_flight(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool *p = new_pool(no_reply_timeout);
	uint32_t id = add_ep(p, r.port, 1, NULL);
	wait_up(p, id, 1);
	enum { N = 5 };
	_Atomic int done[N];
	struct mllp_future *f[N];
	for (int i = 0; i < N; i++) {
		atomic_init(&done[i], 0);
		f[i] = send_n(p, id, i, &done[i]);
	}
	wait_stats(p, id, flight_is, 1, N - 1);
	assert_true(tr_wait_count(&r.frames, 1, 5000)); /* it was written */

	assert_int_equal(mllp_pool_remove_endpoint(p, id), 0);
	/* Returned after every future completed (no wait needed). */
	for (int i = 0; i < N; i++) {
		assert_true(mllp_future_poll(f[i]));
		assert_int_equal(atomic_load(&done[i]), 1);
		const struct mllp_result *res = mllp_future_result(f[i]);
		assert_int_equal(res->status, MLLP_ERR_ENDPOINT_REMOVED);
		assert_int_equal(res->error.reason, MLLP_ERR_ENDPOINT_REMOVED);
		assert_int_equal(res->error.context, MLLP_CTX_SEND);
		assert_false(res->has_verdict);
		if (i == 0) {
			assert_true(res->written);
			assert_true(res->may_have_reached);
			assert_string_equal(res->error.message,
					    "endpoint removed; the message may "
					    "have reached the receiver");
		} else {
			assert_false(res->written);
			assert_false(res->may_have_reached);
			assert_string_equal(
			    res->error.message,
			    "endpoint removed; the message was not sent");
		}
	}
	/* Its connection is closed: the receiver sees it go. */
	assert_true(tr_wait_until(no_conns, &r, 5000));

	/* The id now says "endpoint removed" everywhere. */
	size_t len;
	char *m = tr_hl7(99, &len);
	struct mllp_future *g = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(p, id, m, len, NULL, &g, &err),
			 MLLP_ERR_ENDPOINT_REMOVED);
	free(m);
	assert_null(g);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_string_equal(err.message, "endpoint removed");
	assert_false(mllp_pool_is_connected(p, id, 0));
	assert_int_equal(mllp_pool_connected_count(p, id), 0);
	assert_int_equal(mllp_pool_reconnect(p, id), MLLP_ERR_ENDPOINT_REMOVED);
	struct mllp_endpoint_stats st;
	assert_int_equal(stats_of(p, id, &st), MLLP_ERR_ENDPOINT_REMOVED);
	assert_int_equal(mllp_pool_remove_endpoint(p, id),
			 MLLP_ERR_ENDPOINT_REMOVED);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(p, &ps);
	assert_int_equal(ps.in_flight, 0);
	assert_int_equal(ps.queued, 0);
	assert_int_equal(ps.errors, N);
	assert_int_equal(
	    ps.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_ENDPOINT_REMOVED], N);

	mllp_pool_destroy(p);
	for (int i = 0; i < N; i++) {
		assert_int_equal(atomic_load(&done[i]), 1); /* still once */
		mllp_future_free(f[i]);
	}
	tr_stop(&r);
}

struct blocked {
	struct mllp_pool *p;
	uint32_t id;
	_Atomic int entering;
	_Atomic int rc;
	_Atomic int returned;
};

static void *blocked_send(void *arg)
{
	struct blocked *b = arg;
	size_t len;
	char *m = tr_hl7(3, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.block = true;
	o.block_timeout_ms = MLLP_INFINITE;
	struct mllp_future *f = NULL;
	atomic_store(&b->entering, 1);
	atomic_store(&b->rc, mllp_pool_send(b->p, b->id, m, len, &o, &f, NULL));
	mllp_future_free(f);
	free(m);
	atomic_store(&b->returned, 1);
	return NULL;
}

struct remover {
	struct mllp_pool *p;
	uint32_t id;
	_Atomic int rc;
	_Atomic int returned;
};

static void *remove_main(void *arg)
{
	struct remover *r = arg;
	atomic_store(&r->rc, mllp_pool_remove_endpoint(r->p, r->id));
	atomic_store(&r->returned, 1);
	return NULL;
}

static void one_slot_queue(struct mllp_pool_config *cfg)
{
	cfg->conn.reply_timeout_ms = MLLP_INFINITE;
	cfg->queue_capacity = 1;
}

/* A receiver that never answers, a pool with one connection to it and a
 * one-message queue: f0 in flight, f1 in the queue, and a producer (b, its
 * thread bt) blocked in mllp_pool_send() waiting forever for room. */
struct full {
	struct tr r;
	struct mllp_pool *p;
	uint32_t id;
	struct mllp_future *f0, *f1;
	struct blocked b;
	pthread_t bt;
};

static void full_start(struct full *u)
{
	tr_start(&u->r, 0, TR_NONE);
	u->p = new_pool(one_slot_queue);
	u->id = add_ep(u->p, u->r.port, 1, NULL);
	wait_up(u->p, u->id, 1);
	u->f0 = send_n(u->p, u->id, 0, NULL); /* in flight */
	wait_stats(u->p, u->id, flight_is, 1, 0);
	u->f1 = send_n(u->p, u->id, 1, NULL); /* the one slot */
	wait_stats(u->p, u->id, flight_is, 1, 1);
	u->b = (struct blocked){.p = u->p, .id = u->id};
	assert_int_equal(pthread_create(&u->bt, NULL, blocked_send, &u->b), 0);
	assert_true(tr_wait_count(&u->b.entering, 1, 5000));
}

/* f0 and f1 failed with rc, f0 as written; free the rest. */
static void full_end(struct full *u, int rc)
{
	const struct mllp_result *r0 = mllp_future_result(u->f0);
	const struct mllp_result *r1 = mllp_future_result(u->f1);
	assert_non_null(r0);
	assert_non_null(r1);
	assert_int_equal(r0->status, rc);
	assert_true(r0->may_have_reached);
	assert_int_equal(r1->status, rc);
	assert_false(r1->written);
	mllp_future_free(u->f0);
	mllp_future_free(u->f1);
	mllp_pool_destroy(u->p);
	tr_stop(&u->r);
}

/* A producer waiting forever for queue room (the receiver never answers)
 * is woken by the removal with MLLP_ERR_ENDPOINT_REMOVED; the removal
 * does not wait for it in vain. */
static void test_remove_wakes_blocked_sender(void **state)
{
	(void)state;
	static struct full u;
	full_start(&u);
	struct remover rm = {.p = u.p, .id = u.id};
	pthread_t rt;
	assert_int_equal(pthread_create(&rt, NULL, remove_main, &rm), 0);
	/* Bounded: a removal that waits for the blocked producer hangs. */
	assert_true(tr_wait_count(&rm.returned, 1, 10000));
	assert_true(tr_wait_count(&u.b.returned, 1, 10000));
	pthread_join(rt, NULL);
	pthread_join(u.bt, NULL);
	assert_int_equal(atomic_load(&rm.rc), 0);
	assert_int_equal(atomic_load(&u.b.rc), MLLP_ERR_ENDPOINT_REMOVED);
	full_end(&u, MLLP_ERR_ENDPOINT_REMOVED);
}

struct waiter {
	struct mllp_future *f;
	_Atomic int rc;
	_Atomic int returned;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	atomic_store(&w->rc, mllp_future_wait(w->f, MLLP_INFINITE));
	atomic_store(&w->returned, 1);
	return NULL;
}

/* mllp_pool_stop() while one thread waits forever on the future in
 * flight and another is blocked in mllp_pool_send(): the stop wakes both
 * (the wait returns 0, the future failed MLLP_ERR_STOPPED; the send fails
 * with MLLP_ERR_STOPPED), and does not wait for them in vain. */
static void test_stop_wakes_waiter_and_sender(void **state)
{
	(void)state;
	static struct full u;
	full_start(&u);
	struct waiter w = {.f = u.f0};
	pthread_t wt;
	assert_int_equal(pthread_create(&wt, NULL, wait_main, &w), 0);
	/* Nothing answers: the waiter stays (a bounded look). */
	assert_false(tr_wait_count(&w.returned, 1, 200));
	assert_int_equal(mllp_pool_stop(u.p), 0);
	assert_true(tr_wait_count(&w.returned, 1, 10000));
	assert_true(tr_wait_count(&u.b.returned, 1, 10000));
	pthread_join(wt, NULL);
	pthread_join(u.bt, NULL);
	assert_int_equal(atomic_load(&w.rc), 0);
	assert_int_equal(atomic_load(&u.b.rc), MLLP_ERR_STOPPED);
	full_end(&u, MLLP_ERR_STOPPED);
}

struct cb_remove {
	struct mllp_pool *p;
	uint32_t id;
	_Atomic int rc;
	_Atomic int ran;
};

static void remove_from_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	struct cb_remove *c = arg;
	atomic_store(&c->rc, mllp_pool_remove_endpoint(c->p, c->id));
	atomic_store(&c->ran, 1);
}

/* Ids never added, a NULL pool, and a call from a callback (it would wait
 * for itself) are refused. */
static void test_remove_bad_ids(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_pool *p = new_pool(NULL);
	assert_int_equal(mllp_pool_remove_endpoint(p, 0),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_pool_remove_endpoint(NULL, 0),
			 MLLP_ERR_INVALID_ARGUMENT);
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_future *g = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(p, 0, m, len, NULL, &g, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(g);
	assert_string_equal(err.message, "no such endpoint");
	uint32_t id = add_ep(p, r.port, 1, NULL);
	assert_int_equal(id, 0);
	assert_int_equal(mllp_pool_remove_endpoint(p, 1),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_pool_remove_endpoint(p, UINT32_MAX),
			 MLLP_ERR_INVALID_ARGUMENT);
	struct mllp_endpoint_stats st;
	assert_int_equal(stats_of(p, 1, &st), MLLP_ERR_INVALID_ARGUMENT);

	struct cb_remove c = {.p = p, .id = id};
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.callback = remove_from_cb;
	o.callback_arg = &c;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(p, id, m, len, &o, &f, &err), 0);
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	assert_true(tr_wait_count(&c.ran, 1, 5000));
	assert_int_equal(atomic_load(&c.rc), MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_future_result(f)->status, 0);
	mllp_future_free(f);
	free(m);
	/* Still there. */
	assert_int_equal(stats_of(p, id, &st), 0);
	/* After stop: the id is freed all the same, reported as stopped. */
	mllp_pool_stop(p);
	assert_int_equal(mllp_pool_remove_endpoint(p, id), MLLP_ERR_STOPPED);
	assert_int_equal(stats_of(p, id, &st), MLLP_ERR_ENDPOINT_REMOVED);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

/* A removed id is given to the next endpoint added, with fresh counters;
 * the other endpoints do not notice. */
static void test_remove_slot_reuse(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_pool *p = new_pool(NULL);
	uint32_t a = add_ep(p, r.port, 1, NULL);
	uint32_t b = add_ep(p, r.port, 2, NULL);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	for (int i = 0; i < 3; i++) {
		struct mllp_future *f = send_n(p, a, i, NULL);
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		assert_int_equal(mllp_future_result(f)->status, 0);
		mllp_future_free(f);
	}
	assert_int_equal(mllp_pool_remove_endpoint(p, a), 0);
	uint32_t c = add_ep(p, r.port, 3, NULL);
	assert_int_equal(c, a);
	uint32_t d = add_ep(p, r.port, 1, NULL);
	assert_int_equal(d, 2);
	wait_up(p, c, 3);
	struct mllp_endpoint_stats st;
	assert_int_equal(stats_of(p, c, &st), 0);
	assert_int_equal(st.connections, 3);
	assert_int_equal(st.sent, 0);
	uint32_t ids[] = {b, c, d};
	for (int i = 0; i < 3; i++) {
		struct mllp_future *f = send_n(p, ids[i], 10 + i, NULL);
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		const struct mllp_result *res = mllp_future_result(f);
		assert_int_equal(res->status, 0);
		assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
		mllp_future_free(f);
	}
	assert_int_equal(stats_of(p, c, &st), 0);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], 1);
	/* Removing every endpoint and adding again starts from 0. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(mllp_pool_remove_endpoint(p, ids[i]), 0);
	assert_int_equal(add_ep(p, r.port, 1, NULL), 0);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

/* ---- sends racing a removal from 4 threads ---------------------------- */

#define RACE_THREADS 4
#define RACE_MAX     20000

struct racer {
	struct mllp_pool *p;
	uint32_t id;
	bool block;
	_Atomic int *total;
	struct mllp_future **f;
	_Atomic int *done;
	int n;
	int would_block;
	int last_rc;
	int bad_rc;
};

static void *race_main(void *arg)
{
	struct racer *t = arg;
	size_t len;
	char *m = tr_hl7(7, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.block = t->block;
	o.callback = count_cb;
	t->last_rc = 0;
	/* Bounded by the futures kept and by a deadline (the non-blocking
	 * threads spin on a full queue). */
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 20;
	while (t->n < RACE_MAX) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec)
			break;
		atomic_init(&t->done[t->n], 0);
		o.callback_arg = (void *)&t->done[t->n];
		struct mllp_future *f = NULL;
		int rc = mllp_pool_send(t->p, t->id, m, len, &o, &f, NULL);
		if (rc == 0) {
			t->f[t->n++] = f;
			atomic_fetch_add(t->total, 1);
			continue;
		}
		t->last_rc = rc;
		if (rc == MLLP_ERR_WOULD_BLOCK && !t->block) {
			t->would_block++;
			continue;
		}
		if (rc != MLLP_ERR_ENDPOINT_REMOVED)
			t->bad_rc = rc;
		break;
	}
	free(m);
	return NULL;
}

static void small_queue(struct mllp_pool_config *cfg)
{
	cfg->queue_capacity = 8;
}

static bool total_reached(void *arg)
{
	return atomic_load((_Atomic int *)arg) >= 200;
}

/* Two threads block for queue room, two do not; the endpoint is removed
 * under them. Every future completes exactly once (reply or "endpoint
 * removed"), every thread stops on MLLP_ERR_ENDPOINT_REMOVED, none hangs. */
static void test_remove_races_sends(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_pool *p = new_pool(small_queue);
	uint32_t id = add_ep(p, r.port, 2, NULL);
	wait_up(p, id, 2);
	_Atomic int total = 0;
	struct racer t[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	for (int i = 0; i < RACE_THREADS; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].p = p;
		t[i].id = id;
		t[i].block = i % 2 == 0;
		t[i].total = &total;
		t[i].f = calloc(RACE_MAX, sizeof(*t[i].f));
		t[i].done = calloc(RACE_MAX, sizeof(*t[i].done));
		assert_non_null(t[i].f);
		assert_non_null(t[i].done);
		assert_int_equal(pthread_create(&th[i], NULL, race_main, &t[i]),
				 0);
	}
	assert_true(tr_wait_until(total_reached, &total, 10000));
	assert_int_equal(mllp_pool_remove_endpoint(p, id), 0);
	int removed = 0, ok = 0, sent = 0;
	for (int i = 0; i < RACE_THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].bad_rc, 0);
		/* Stopped by the removal, not by the bound. */
		assert_int_equal(t[i].last_rc, MLLP_ERR_ENDPOINT_REMOVED);
		for (int k = 0; k < t[i].n; k++) {
			/* Sent before the removal: complete by now. */
			assert_true(mllp_future_poll(t[i].f[k]));
			assert_int_equal(atomic_load(&t[i].done[k]), 1);
			int st = mllp_future_result(t[i].f[k])->status;
			if (st == 0)
				ok++;
			else if (st == MLLP_ERR_ENDPOINT_REMOVED)
				removed++;
			else
				fail_msg("status %d", st);
		}
		sent += t[i].n;
	}
	assert_int_equal(ok + removed, sent);
	assert_true(ok > 0);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(p, &ps);
	assert_int_equal(ps.in_flight, 0);
	assert_int_equal(ps.queued, 0);
	assert_int_equal(
	    ps.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_ENDPOINT_REMOVED],
	    (uint64_t)removed);
	mllp_pool_destroy(p);
	for (int i = 0; i < RACE_THREADS; i++) {
		for (int k = 0; k < t[i].n; k++) {
			assert_int_equal(atomic_load(&t[i].done[k]), 1);
			mllp_future_free(t[i].f[k]);
		}
		free(t[i].f);
		free((void *)t[i].done);
	}
	tr_stop(&r);
}

/* ---- per-endpoint stats ------------------------------------------------ */

/* ACK code by the number n of the control id CTRL<n>: n % 5 == 1 AE,
 * n % 5 == 2 AR, else AA. */
static void mix_dispatch(void *ctx, const struct mllp_message *msg,
			 struct mllp_reply *reply)
{
	(void)ctx;
	const char *s = memmem(msg->data, msg->len, "|CTRL", 5);
	int n = s ? atoi(s + 5) : 0;
	reply->kind = MLLP_REPLY_ACK;
	reply->ack_code = n % 5 == 1 ? "AE" : n % 5 == 2 ? "AR" : "AA";
}

/* Endpoint A: 20 messages, 12 AA, 4 AE, 4 AR. Endpoint B: a receiver
 * that never answers: one message in flight and two queued, then three
 * reply timeouts, each closing and reconnecting. Each endpoint's numbers
 * are its own; the pool's are their sum. */
static void test_endpoint_stats(void **state)
{
	(void)state;
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, mix_dispatch, NULL);
	struct mllp_receiver *recv = NULL;
	assert_int_equal(mllp_receiver_create(&rc, &recv, NULL), 0);
	struct tr silent;
	tr_start(&silent, 0, TR_NONE);

	struct mllp_pool *p = new_pool(NULL);
	uint32_t a = add_ep(p, mllp_receiver_port(recv), 2, NULL);
	struct mllp_conn_options bo;
	mllp_conn_options_init(&bo);
	bo.reply_timeout_ms = 300;
	uint32_t b = add_ep(p, silent.port, 1, &bo);
	wait_up(p, a, 2);
	wait_up(p, b, 1);

	enum { N = 20 };
	struct mllp_future *f[N];
	for (int i = 0; i < N; i++)
		f[i] = send_n(p, a, i, NULL);
	struct mllp_future *g[3];
	for (int i = 0; i < 3; i++)
		g[i] = send_n(p, b, 100 + i, NULL);
	wait_stats(p, b, flight_is, 1, 2);
	for (int i = 0; i < N; i++) {
		assert_int_equal(mllp_future_wait(f[i], 5000), 0);
		assert_int_equal(mllp_future_result(f[i])->status, 0);
		mllp_future_free(f[i]);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mllp_future_wait(g[i], 5000), 0);
		assert_int_equal(mllp_future_result(g[i])->status,
				 MLLP_ERR_TIMEOUT);
		mllp_future_free(g[i]);
	}
	wait_stats(p, b, counts_are, 3, 4);

	struct mllp_endpoint_stats sa, sb;
	assert_int_equal(stats_of(p, a, &sa), 0);
	assert_int_equal(sa.size, sizeof(sa));
	assert_string_equal(sa.host, "127.0.0.1");
	assert_int_equal(sa.port, mllp_receiver_port(recv));
	assert_int_equal(sa.connections, 2);
	assert_int_equal(sa.connected, 2);
	assert_int_equal(sa.queued, 0);
	assert_int_equal(sa.in_flight, 0);
	assert_int_equal(sa.sent, N);
	assert_int_equal(sa.acked[MLLP_APPLICATION_ACCEPT], 12);
	assert_int_equal(sa.acked[MLLP_APPLICATION_ERROR], 4);
	assert_int_equal(sa.acked[MLLP_APPLICATION_REJECT], 4);
	for (int v = MLLP_BAD_MESSAGE_CONTROL_ID; v < 7; v++)
		assert_int_equal(sa.acked[v], 0);
	assert_int_equal(sa.raw_replies, 0);
	assert_int_equal(sa.errors, 0);
	assert_int_equal(sa.connects, 2);
	assert_int_equal(sa.reconnects, 0);
	assert_int_equal(sa.connect_failures, 0);
	assert_int_equal(sa.last_error.reason, 0);
	assert_string_equal(sa.last_error.message, "");

	assert_int_equal(stats_of(p, b, &sb), 0);
	assert_int_equal(sb.connections, 1);
	assert_int_equal(sb.queued, 0);
	assert_int_equal(sb.in_flight, 0);
	assert_int_equal(sb.sent, 3);
	for (int v = 0; v < 7; v++)
		assert_int_equal(sb.acked[v], 0);
	assert_int_equal(sb.errors, 3);
	assert_int_equal(sb.errors_os, 0);
	assert_int_equal(sb.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT], 3);
	assert_int_equal(sb.connects, 4);
	assert_int_equal(sb.reconnects, 3);
	assert_int_equal(sb.last_error.reason, MLLP_ERR_TIMEOUT);
	assert_int_equal(sb.last_error.context, MLLP_CTX_RECEIVE);
	assert_string_equal(sb.last_error.message, "timed out");

	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	mllp_pool_get_stats(p, &ps);
	assert_int_equal(ps.sent, sa.sent + sb.sent);
	assert_int_equal(ps.errors, sa.errors + sb.errors);
	assert_int_equal(ps.connects, sa.connects + sb.connects);
	for (int v = 0; v < 7; v++)
		assert_int_equal(ps.acked[v], sa.acked[v] + sb.acked[v]);

	/* An older, smaller struct: only its bytes are written. */
	unsigned char buf[sizeof(struct mllp_endpoint_stats) + 64];
	memset(buf, 0xAA, sizeof(buf));
	struct mllp_endpoint_stats *o = (void *)buf;
	size_t old = offsetof(struct mllp_endpoint_stats, connections);
	o->size = old;
	assert_int_equal(mllp_pool_get_endpoint_stats(p, a, o), 0);
	assert_int_equal(o->size, old);
	assert_string_equal(o->host, "127.0.0.1");
	for (size_t i = old; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xAA);
	/* A newer, bigger one: the library's bytes, the rest untouched. */
	memset(buf, 0xAA, sizeof(buf));
	o->size = sizeof(buf);
	assert_int_equal(mllp_pool_get_endpoint_stats(p, a, o), 0);
	assert_int_equal(o->size, sizeof(struct mllp_endpoint_stats));
	assert_int_equal(o->sent, N);
	for (size_t i = sizeof(struct mllp_endpoint_stats); i < sizeof(buf);
	     i++)
		assert_int_equal(buf[i], 0xAA);
	/* size not set. */
	o->size = 0;
	assert_int_equal(mllp_pool_get_endpoint_stats(p, a, o),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_pool_get_endpoint_stats(p, a, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);

	mllp_pool_destroy(p);
	tr_stop(&silent);
	mllp_receiver_destroy(recv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remove_queued_and_in_flight),
	    cmocka_unit_test(test_remove_wakes_blocked_sender),
	    cmocka_unit_test(test_stop_wakes_waiter_and_sender),
	    cmocka_unit_test(test_remove_bad_ids),
	    cmocka_unit_test(test_remove_slot_reuse),
	    cmocka_unit_test(test_remove_races_sends),
	    cmocka_unit_test(test_endpoint_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* 4 producer threads x many messages through one pool: every future
 * completes exactly once, every message is acknowledged, the counters
 * add up. Also run under TSan (label sanitize). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "common.h"

#define PRODUCERS    4
#define PER_PRODUCER 3000
#define TOTAL	     (PRODUCERS * PER_PRODUCER)

static _Atomic int completions[TOTAL];
static _Atomic int accepted;
static _Atomic int failed;
static _Atomic int odd_errors; /* errors that no fault explains */

struct prod {
	struct mllp_pool *pool;
	uint32_t ep;
	int index;
	int send_errors;
};

static void on_done(struct mllp_future *f, void *arg)
{
	int n = (int)(intptr_t)arg;
	atomic_fetch_add(&completions[n], 1);
	const struct mllp_result *r = mllp_future_result(f);
	if (r && r->status == 0 && r->verdict == MLLP_APPLICATION_ACCEPT) {
		atomic_fetch_add(&accepted, 1);
	} else {
		atomic_fetch_add(&failed, 1);
		/* Faults injected: the receiver closes; the message in flight
		 * fails on receive (closed/reset) or send (reset/pipe). */
		bool ok =
		    r && (r->status == MLLP_ERR_CLOSED ||
			  r->status == -ECONNRESET || r->status == -EPIPE);
		if (!ok)
			atomic_fetch_add(&odd_errors, 1);
	}
	/* Odd messages: freed from inside the callback. */
	if (n % 2)
		mllp_future_free(f);
}

/* HL7, blocking on a full queue, completion callback cb with argument n. */
static void blocking_hl7(struct mllp_send_options *o, mllp_future_cb cb, int n)
{
	mllp_send_options_init(o);
	o->kind = MLLP_PAYLOAD_HL7;
	o->block = true;
	o->callback = cb;
	o->callback_arg = (void *)(intptr_t)n;
}

static void *producer(void *arg)
{
	struct prod *p = arg;
	struct mllp_future **keep =
	    calloc(PER_PRODUCER, sizeof(struct mllp_future *));
	for (int i = 0; i < PER_PRODUCER; i++) {
		int n = p->index * PER_PRODUCER + i;
		size_t len;
		char *m = tr_hl7(n, &len);
		struct mllp_send_options o;
		blocking_hl7(&o, on_done, n);
		struct mllp_future *f;
		if (mllp_pool_send(p->pool, p->ep, m, len, &o, &f, NULL) != 0) {
			p->send_errors++;
			atomic_fetch_add(&completions[n], 1); /* accounted */
			atomic_fetch_add(&failed, 1);
		} else if (n % 2 == 0) {
			keep[i] = f;
		}
		free(m);
	}
	for (int i = 0; i < PER_PRODUCER; i++) {
		if (!keep[i])
			continue;
		mllp_future_wait(keep[i], MLLP_INFINITE);
		mllp_future_free(keep[i]);
	}
	free(keep);
	return NULL;
}

static bool all_done(void *arg)
{
	(void)arg;
	return atomic_load(&accepted) + atomic_load(&failed) >= TOTAL;
}

static void run(int close_every)
{
	for (int i = 0; i < TOTAL; i++)
		atomic_store(&completions[i], 0);
	atomic_store(&accepted, 0);
	atomic_store(&failed, 0);
	atomic_store(&odd_errors, 0);
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	atomic_store(&r.close_every, close_every);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.queue_capacity = 256;
	if (close_every)
		cfg.conn.queue_timeout_ms = 20000; /* wait across reconnects */
	struct mllp_pool *pool;
	assert_int_equal(mllp_pool_create(&cfg, &pool, NULL), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(pool, "127.0.0.1", r.port, 4,
						NULL, &ep, NULL),
			 0);
	pthread_t th[PRODUCERS];
	struct prod p[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct prod){.pool = pool, .ep = ep, .index = i};
		pthread_create(&th[i], NULL, producer, &p[i]);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].send_errors, 0);
	}
	assert_true(tr_wait_until(all_done, NULL, 60000));
	mllp_pool_stop(pool);
	for (int i = 0; i < TOTAL; i++)
		assert_int_equal(atomic_load(&completions[i]), 1);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(pool, &st);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
	assert_int_equal(atomic_load(&accepted) + atomic_load(&failed), TOTAL);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT],
			 atomic_load(&accepted));
	assert_int_equal(st.errors, atomic_load(&failed));
	if (!close_every) {
		assert_int_equal(atomic_load(&accepted), TOTAL);
		assert_int_equal(st.sent, TOTAL);
		assert_int_equal(atomic_load(&r.frames), TOTAL);
	} else {
		int closes = atomic_load(&r.closes);
		assert_true(closes > 0);
		assert_true(atomic_load(&failed) >= closes);
		assert_int_equal(atomic_load(&odd_errors), 0);
		assert_true(st.reconnects >= (uint64_t)closes);
	}
	mllp_pool_destroy(pool);
	tr_stop(&r);
}

static void test_four_producers(void **state)
{
	(void)state;
	run(0);
}

/* The receiver closes a connection every 97 frames: every future still
 * completes exactly once, errors carry the reason. */
static void test_four_producers_with_faults(void **state)
{
	(void)state;
	run(97);
}

/* Order across threads: producers that order their calls among
 * themselves (here a baton passed after each mllp_pool_send() returns)
 * get their messages sent in that order on a connection. One connection,
 * so the completion order is the sending order. */
#define BATON_MSGS 2000

struct baton {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int next; /* the message whose turn it is */
	struct mllp_pool *pool;
	uint32_t ep;
	_Atomic int done;
	int order[BATON_MSGS]; /* written by callbacks (manager thread) */
	int failures;
};

struct baton_arg {
	struct baton *b;
	int index;
};

static struct baton *the_baton;

static void on_baton_done(struct mllp_future *f, void *arg)
{
	struct baton *b = the_baton;
	const struct mllp_result *r = mllp_future_result(f);
	if (!r || r->status != 0)
		b->failures++;
	b->order[atomic_fetch_add(&b->done, 1)] = (int)(intptr_t)arg;
	mllp_future_free(f);
}

static void *baton_producer(void *arg)
{
	struct baton_arg *a = arg;
	struct baton *b = a->b;
	for (int n = a->index; n < BATON_MSGS; n += PRODUCERS) {
		pthread_mutex_lock(&b->mu);
		while (b->next != n && b->next >= 0)
			pthread_cond_wait(&b->cv, &b->mu);
		bool gave_up = b->next < 0;
		pthread_mutex_unlock(&b->mu);
		if (gave_up)
			break;
		size_t len;
		char *m = tr_hl7(n, &len);
		struct mllp_send_options o;
		blocking_hl7(&o, on_baton_done, n);
		struct mllp_future *f;
		int rc = mllp_pool_send(b->pool, b->ep, m, len, &o, &f, NULL);
		free(m);
		pthread_mutex_lock(&b->mu);
		if (rc != 0)
			b->next = -1; /* checked by the test: no send fails */
		else
			b->next = n + 1;
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
	return NULL;
}

static bool baton_all_done(void *arg)
{
	struct baton *b = arg;
	return atomic_load(&b->done) >= BATON_MSGS;
}

static void test_order_across_threads(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct baton *b = calloc(1, sizeof(*b));
	assert_non_null(b);
	the_baton = b;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	assert_int_equal(mllp_pool_create(&cfg, &b->pool, NULL), 0);
	assert_int_equal(mllp_pool_add_endpoint(b->pool, "127.0.0.1", r.port, 1,
						NULL, &b->ep, NULL),
			 0);
	pthread_t th[PRODUCERS];
	struct baton_arg a[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++) {
		a[i] = (struct baton_arg){b, i};
		assert_int_equal(
		    pthread_create(&th[i], NULL, baton_producer, &a[i]), 0);
	}
	bool all = tr_wait_until(baton_all_done, b, 60000);
	if (!all) { /* release the producers before failing */
		pthread_mutex_lock(&b->mu);
		b->next = -1;
		pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	mllp_pool_stop(b->pool);
	assert_true(all);
	assert_int_equal(b->next, BATON_MSGS);
	assert_int_equal(b->failures, 0);
	for (int i = 0; i < BATON_MSGS; i++)
		if (b->order[i] != i)
			fail_msg("message %d completed in position %d",
				 b->order[i], i);
	mllp_pool_destroy(b->pool);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
	tr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_four_producers),
	    cmocka_unit_test(test_four_producers_with_faults),
	    cmocka_unit_test(test_order_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

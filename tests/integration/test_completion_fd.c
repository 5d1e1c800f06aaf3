/* The completion fd (mllp_pool_completion_fd, mllp_pool_harvest): 4
 * producer threads send, a host loop harvests — through libuv (uv_poll_t
 * on the fd) and through a plain poll() thread. Every future is harvested
 * exactly once (counted by the control id of its ACK), nothing is lost, and
 * the fd is quiet at the end. Also: the harvest keeps completion order,
 * stop delivers the pending futures, futures completed before the fd exists
 * are not lost, bad arguments. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef MLLP_TEST_HAVE_LIBUV
#include <uv.h>
#endif

#include "testutil.h"

#include "common.h"

#define PRODUCERS 4
/* Messages of the libuv case (fewer under a sanitizer: ten times slower),
 * of the harvester thread case. */
#define UV_TOTAL     (TU_SANITIZED ? 20000 : 100000)
#define THREAD_TOTAL 20000
#define MAX_TOTAL    100000
#define BATCH	     64
#define DEADLINE_MS  120000

/* One run: the pool, what was harvested per message, failures. Producers
 * and the harvester share it; counters are atomics. */
struct run {
	struct tr r;
	struct mllp_pool *pool;
	uint32_t ep;
	int fd;
	int total;
	_Atomic int seen[MAX_TOTAL];
	_Atomic int harvested;
	_Atomic int bad;	 /* not an AA, or an unknown control id */
	_Atomic int send_errors; /* sends refused */
	_Atomic int wait_errors; /* mllp_future_wait failed on a kept one */
	char first_bad[MLLP_ERROR_MESSAGE_MAX + 32]; /* "status N: " + text */
};

static struct run the_run;

struct prod {
	struct run *run;
	int index;
};

/* The message number of a harvested future, from its ACK's MSA-2
 * ("CTRL<n>"); -1 when it is not a complete AA of this run. */
static int message_number(const struct run *run, struct mllp_future *f)
{
	const struct mllp_result *r = mllp_future_result(f);
	if (!r || r->status != 0 || !r->has_verdict ||
	    r->verdict != MLLP_APPLICATION_ACCEPT)
		return -1;
	char id[32];
	size_t len = r->ack.control_id.len;
	if (len < 5 || len >= sizeof(id))
		return -1;
	memcpy(id, r->ack.control_id.ptr, len);
	id[len] = '\0';
	char *end;
	long n = strtol(id + 4, &end, 10);
	if (strncmp(id, "CTRL", 4) != 0 || *end || n < 0 || n >= run->total)
		return -1;
	return (int)n;
}

/* Count (and free) what one harvest call took. */
static void account(struct run *run, struct mllp_future **fs, int n)
{
	for (int i = 0; i < n; i++) {
		int m = message_number(run, fs[i]);
		if (m < 0) {
			if (atomic_fetch_add(&run->bad, 1) == 0) {
				const struct mllp_result *r =
				    mllp_future_result(fs[i]);
				snprintf(run->first_bad, sizeof(run->first_bad),
					 "status %d: %s", r ? r->status : 1,
					 r ? r->error.message : "pending");
			}
		} else {
			atomic_fetch_add(&run->seen[m], 1);
		}
		mllp_future_free(fs[i]);
	}
	atomic_fetch_add(&run->harvested, n);
}

/* Harvest until a call returns fewer than BATCH (the fd is then quiet
 * until the next completion). */
static void harvest_all(struct run *run)
{
	struct mllp_future *fs[BATCH];
	int n;
	do {
		n = mllp_pool_harvest(run->pool, fs, BATCH);
		assert_true(n >= 0);
		account(run, fs, n);
	} while (n == BATCH);
}

/* Sends its share with MLLP_NOTIFY_FD. The send's reference is freed at
 * once (the harvest hands out its own), except every 100th: waited on
 * first (wait works on such futures too), then freed. */
static void *producer(void *arg)
{
	struct prod *p = arg;
	struct run *run = p->run;
	int per = run->total / PRODUCERS;
	for (int i = 0; i < per; i++) {
		int n = p->index * per + i;
		size_t len;
		char *m = tr_hl7(n, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.block = true;
		o.block_timeout_ms = MLLP_INFINITE;
		o.notify = MLLP_NOTIFY_FD;
		struct mllp_future *f;
		int rc =
		    mllp_pool_send(run->pool, run->ep, m, len, &o, &f, NULL);
		free(m);
		if (rc != 0) {
			atomic_fetch_add(&run->send_errors, 1);
			continue;
		}
		if (i % 100 == 0 && mllp_future_wait(f, DEADLINE_MS) != 0)
			atomic_fetch_add(&run->wait_errors, 1);
		mllp_future_free(f);
	}
	return NULL;
}

/* A pool (ti_config's defaults) with one endpoint of conns connections to
 * 127.0.0.1:port, its id in *ep. */
static struct mllp_pool *pool_to(uint16_t port, uint32_t conns, uint32_t *ep)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *pool;
	assert_int_equal(mllp_pool_create(&cfg, &pool, NULL), 0);
	assert_int_equal(mllp_pool_add_endpoint(pool, "127.0.0.1", port, conns,
						NULL, ep, NULL),
			 0);
	return pool;
}

static void run_start(struct run *run, int total, pthread_t *th, struct prod *p)
{
	memset(run, 0, sizeof(*run));
	run->total = total;
	tr_start(&run->r, 0, TR_ACK);
	run->pool = pool_to(run->r.port, 4, &run->ep);
	run->fd = mllp_pool_completion_fd(run->pool);
	assert_true(run->fd >= 0);
	assert_int_equal(mllp_pool_completion_fd(run->pool), run->fd);
	assert_true(fcntl(run->fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(run->fd, F_GETFD) & FD_CLOEXEC);
	for (int i = 0; i < PRODUCERS; i++) {
		p[i] = (struct prod){.run = run, .index = i};
		assert_int_equal(pthread_create(&th[i], NULL, producer, &p[i]),
				 0);
	}
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	int rc = poll(&pfd, 1, timeout_ms);
	assert_true(rc >= 0);
	return rc == 1;
}

/* Every message harvested exactly once; after stop, nothing more to
 * harvest and the fd quiet; destroy closes it. */
static void run_finish(struct run *run, pthread_t *th)
{
	for (int i = 0; i < PRODUCERS; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&run->bad))
		fail_msg("%d futures were not an AA of this run; first: %s",
			 atomic_load(&run->bad), run->first_bad);
	assert_int_equal(atomic_load(&run->send_errors), 0);
	assert_int_equal(atomic_load(&run->wait_errors), 0);
	assert_int_equal(atomic_load(&run->harvested), run->total);
	for (int i = 0; i < run->total; i++)
		if (atomic_load(&run->seen[i]) != 1)
			fail_msg("message %d harvested %d times", i,
				 atomic_load(&run->seen[i]));
	/* The manager is joined: no completion (nor wake-up) is on its
	 * way. One harvest finds nothing, and the fd is quiet. */
	assert_int_equal(mllp_pool_stop(run->pool), 0);
	struct mllp_future *fs[BATCH];
	assert_int_equal(mllp_pool_harvest(run->pool, fs, BATCH), 0);
	assert_false(readable(run->fd, 0));
	mllp_pool_destroy(run->pool);
	assert_int_equal(fcntl(run->fd, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	tr_stop(&run->r);
}

#ifdef MLLP_TEST_HAVE_LIBUV
struct uv_ctx {
	struct run *run;
	uv_poll_t poll;
	uv_timer_t deadline;
	bool timed_out;
	int wakeups;
};

static void uv_done(struct uv_ctx *u)
{
	uv_poll_stop(&u->poll);
	uv_close((uv_handle_t *)&u->poll, NULL);
	uv_close((uv_handle_t *)&u->deadline, NULL);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct uv_ctx *u = h->data;
	(void)events;
	assert_int_equal(status, 0);
	u->wakeups++;
	harvest_all(u->run);
	if (atomic_load(&u->run->harvested) >= u->run->total)
		uv_done(u);
}

static void on_deadline(uv_timer_t *t)
{
	struct uv_ctx *u = t->data;
	u->timed_out = true;
	uv_done(u);
}

/* 4 producers, harvested by a libuv loop polling the fd. */
static void test_libuv_loop(void **state)
{
	(void)state;
	struct run *run = &the_run;
	pthread_t th[PRODUCERS];
	struct prod p[PRODUCERS];
	run_start(run, UV_TOTAL, th, p);
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct uv_ctx u = {.run = run};
	u.poll.data = &u;
	u.deadline.data = &u;
	assert_int_equal(uv_poll_init(&loop, &u.poll, run->fd), 0);
	assert_int_equal(uv_poll_start(&u.poll, UV_READABLE, on_readable), 0);
	assert_int_equal(uv_timer_init(&loop, &u.deadline), 0);
	assert_int_equal(
	    uv_timer_start(&u.deadline, on_deadline, DEADLINE_MS, 0), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	if (u.timed_out)
		fail_msg("deadline: %d of %d harvested",
			 atomic_load(&run->harvested), run->total);
	/* Batched wake-ups: fewer than one per message. */
	assert_true(u.wakeups > 0 && u.wakeups < run->total);
	run_finish(run, th);
}
#else
static void test_libuv_loop(void **state)
{
	(void)state;
	skip_msg("built without libuv (pkg-config libuv not found)");
}
#endif

/* 4 producers, one harvester thread on poll() (no libuv); meant for TSan
 * too. */
static void test_harvester_thread(void **state)
{
	(void)state;
	struct run *run = &the_run;
	pthread_t th[PRODUCERS];
	struct prod p[PRODUCERS];
	run_start(run, THREAD_TOTAL, th, p);
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&run->harvested) < run->total) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 > DEADLINE_MS)
			fail_msg("deadline: %d of %d harvested",
				 atomic_load(&run->harvested), run->total);
		if (readable(run->fd, 100))
			harvest_all(run);
	}
	run_finish(run, th);
}

/* Stop completes the pending futures, and they are delivered; the fd,
 * created only after they completed, is readable at once. Futures without
 * MLLP_NOTIFY_FD never show up; their callbacks run as before. */
static _Atomic int callbacks;

static void on_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	(void)arg;
	atomic_fetch_add(&callbacks, 1);
}

static void test_stop_delivers(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	uint32_t ep;
	struct mllp_pool *pool = pool_to(r.port, 2, &ep);
	atomic_store(&callbacks, 0);
	enum { N = 10 };
	struct mllp_future *kept[N];
	for (int i = 0; i < 2 * N; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.callback = on_cb;
		/* even: notify FD; odd: the default */
		if (i % 2 == 0)
			o.notify = MLLP_NOTIFY_FD;
		struct mllp_future *f;
		assert_int_equal(mllp_pool_send(pool, ep, m, len, &o, &f, NULL),
				 0);
		free(m);
		if (i % 2 == 0 && i / 2 < N / 2)
			kept[i / 2] = f; /* freed after the harvest */
		else
			mllp_future_free(f);
	}
	struct mllp_future *fs[2 * N];
	assert_int_equal(mllp_pool_harvest(pool, fs, 2 * N), 0);
	assert_int_equal(mllp_pool_stop(pool), 0);
	assert_int_equal(atomic_load(&callbacks), 2 * N);
	int fd = mllp_pool_completion_fd(pool);
	assert_true(fd >= 0);
	assert_true(readable(fd, 0));
	/* max smaller than what waits: the rest stays, the fd readable */
	assert_int_equal(mllp_pool_harvest(pool, fs, 3), 3);
	assert_true(readable(fd, 0));
	assert_int_equal(mllp_pool_harvest(pool, fs + 3, 2 * N), N - 3);
	assert_false(readable(fd, 0));
	for (int i = 0; i < N; i++) {
		const struct mllp_result *res = mllp_future_result(fs[i]);
		assert_non_null(res);
		assert_int_equal(res->status, MLLP_ERR_STOPPED);
		mllp_future_free(fs[i]);
	}
	for (int i = 0; i < N / 2; i++) {
		assert_int_equal(mllp_future_wait(kept[i], 0), 0);
		mllp_future_free(kept[i]);
	}
	mllp_pool_destroy(pool);
	tr_stop(&r);
}

/* The harvest gives futures in completion order: the order their
 * callbacks ran in (on the manager thread, before the future is queued for
 * the harvest), over 4 connections whose replies interleave. */
#define ORDER_N 200
static struct mllp_future *cb_order[ORDER_N];
static _Atomic int cb_n;

static void on_cb_order(struct mllp_future *f, void *arg)
{
	(void)arg;
	int i = atomic_fetch_add(&cb_n, 1);
	if (i < ORDER_N)
		cb_order[i] = f;
}

static void test_harvest_order(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	uint32_t ep;
	struct mllp_pool *pool = pool_to(r.port, 4, &ep);
	int fd = mllp_pool_completion_fd(pool);
	assert_true(fd >= 0);
	atomic_store(&cb_n, 0);
	for (int i = 0; i < ORDER_N; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.notify = MLLP_NOTIFY_FD;
		o.callback = on_cb_order;
		struct mllp_future *f;
		assert_int_equal(mllp_pool_send(pool, ep, m, len, &o, &f, NULL),
				 0);
		free(m);
		mllp_future_free(f); /* the harvest keeps its own reference */
	}
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&cb_n) < ORDER_N) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 > DEADLINE_MS)
			fail_msg("deadline: %d of %d completed",
				 atomic_load(&cb_n), ORDER_N);
		readable(fd, 100);
	}
	static struct mllp_future *fs[ORDER_N + 1];
	int n = 0, got;
	while ((got = mllp_pool_harvest(pool, fs + n, ORDER_N + 1 - n)) > 0)
		n += got;
	assert_int_equal(got, 0);
	assert_int_equal(n, ORDER_N);
	for (int i = 0; i < ORDER_N; i++)
		if (fs[i] != cb_order[i])
			fail_msg("harvest %d is not completion %d", i, i);
	for (int i = 0; i < n; i++) {
		assert_int_equal(mllp_future_result(fs[i])->status, 0);
		mllp_future_free(fs[i]);
	}
	mllp_pool_destroy(pool);
	tr_stop(&r);
}

/* Futures left unharvested are released by destroy (the sanitizer and
 * valgrind runs would report a leak); bad arguments. */
static void test_destroy_and_arguments(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	uint32_t ep;
	struct mllp_pool *pool = pool_to(r.port, 1, &ep);
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.notify = (enum mllp_notify)7;
	struct mllp_future *f;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(pool, ep, m, len, &o, &f, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(f);
	assert_string_equal(err.message, "unknown notify value");
	o.notify = MLLP_NOTIFY_FD;
	assert_int_equal(mllp_pool_send(pool, ep, m, len, &o, &f, NULL), 0);
	free(m);
	mllp_future_free(f);
	assert_int_equal(mllp_pool_harvest(NULL, NULL, 0),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_pool_harvest(pool, NULL, 1),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_pool_harvest(pool, NULL, 0), 0);
	assert_int_equal(mllp_pool_completion_fd(NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	mllp_pool_destroy(pool); /* the message is unharvested */
	tr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_libuv_loop),
	    cmocka_unit_test(test_harvester_thread),
	    cmocka_unit_test(test_stop_delivers),
	    cmocka_unit_test(test_harvest_order),
	    cmocka_unit_test(test_destroy_and_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

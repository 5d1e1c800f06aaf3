/* The receiver's stop drains (stop_drain_ms) and deferred replies that
 * never come are reported (reply_abandoned, deferred_timeout_ms), on
 * loopback: a synchronous reply still being written when stop is called
 * reaches the client whole; a deferred reply completed after stop began
 * is sent; one never completed holds stop for the bound only, its
 * connection is closed and its handle reported; stop_drain_ms 0 closes at
 * once; a peer's reset and deferred_timeout_ms report each unanswered
 * handle once, with the close reason; nothing leaks (counting
 * allocator). Ephemeral ports only; every wait is bounded; no sleep
 * synchronises. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "common.h" /* ti_backend(), ti_receiver_config() */
#include "netutil.h"
#include "rx_util.h"

#define DEADLINE_MS 20000
#define MAX_H	    16
/* A reply far bigger than the socket buffers of a client that does not
 * read (its own 16 KiB, the receiver's at most tcp_wmem's maximum): still
 * being written when stop is called. Set by big_reply(). */
static size_t big_len;

/* ---- the allocator that counts what is live (rx_util.h) ------------------ */

static struct rx_counted cnt;
static long long blocks_base; /* at the start of the test (config()) */

/* ---- the dispatcher and what the receiver reports -------------------------
 */

enum mode {
	M_BIG = 0, /* a synchronous reply of big_len bytes */
	M_DEFER,   /* defer every frame but CTRL0 (answered at once) */
};

struct ctx {
	pthread_mutex_t mu;
	enum mode mode;
	char *big;
	struct mllp_reply_handle *h[MAX_H]; /* by CTRL<n> */
	_Atomic int dispatched;
	_Atomic int deferred;
	/* reply_abandoned */
	struct mllp_reply_handle *ab[MAX_H];
	enum mllp_close_reason ab_reason[MAX_H];
	_Atomic int nab;
	_Atomic int on_manager_bad; /* anything unexpected on its thread */
	/* telemetry and log */
	_Atomic int closes[8]; /* connection_stop by reason */
	_Atomic int stop_lines, timeout_lines;
};

static struct ctx X;

/* X.big: big_len bytes, three times the largest send buffer (12 MiB at
 * least). */
static void big_reply(void)
{
	size_t wmax = 4u * 1024 * 1024;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
	unsigned long a, b, c;
	if (f && fscanf(f, "%lu %lu %lu", &a, &b, &c) == 3 && c > wmax)
		wmax = c;
	if (f)
		fclose(f);
	big_len = 3 * wmax;
	X.big = malloc(big_len);
	assert_non_null(X.big);
	memset(X.big, 'x', big_len);
	memcpy(X.big, "MSH|", 4);
}

static void ctx_init(enum mode m)
{
	free(X.big);
	memset(&X, 0, sizeof(X));
	pthread_mutex_init(&X.mu, NULL);
	X.mode = m;
}

/* No cmocka assert here: this is the receiver's thread. */
static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct ctx *x = ctx;
	int n = rx_ctrl_of(msg);
	if (x->mode == M_BIG) {
		reply->kind = MLLP_REPLY_BYTES;
		reply->data = x->big;
		reply->len = big_len;
		atomic_fetch_add(&x->dispatched, 1);
		return;
	}
	struct mllp_reply_handle *h = mllp_reply_defer(reply);
	if (!h || n < 0 || n >= MAX_H) {
		atomic_fetch_add(&x->on_manager_bad, 1);
		return;
	}
	if (n == 0) {
		if (rx_reply_n(h, 0) != 0)
			atomic_fetch_add(&x->on_manager_bad, 1);
	} else {
		pthread_mutex_lock(&x->mu);
		x->h[n] = h;
		pthread_mutex_unlock(&x->mu);
		atomic_fetch_add(&x->deferred, 1);
	}
	atomic_fetch_add(&x->dispatched, 1);
}

static void abandoned(void *ctx, struct mllp_reply_handle *h,
		      enum mllp_close_reason reason)
{
	struct ctx *x = ctx;
	int k = atomic_load(&x->nab);
	if (k >= MAX_H) {
		atomic_fetch_add(&x->on_manager_bad, 1);
		return;
	}
	x->ab[k] = h;
	x->ab_reason[k] = reason;
	atomic_store(&x->nab, k + 1);
}

static void tel(void *ctx, const struct mllp_receiver_event *ev)
{
	struct ctx *x = ctx;
	if (ev->kind == MLLP_RECEIVER_EV_CONNECTION_STOP && ev->reason < 8)
		atomic_fetch_add(&x->closes[ev->reason], 1);
}

static void logline(void *ctx, enum mllp_log_level l, const char *line)
{
	struct ctx *x = ctx;
	(void)l;
	if (strstr(line, "stop: 1 connection closed with replies not "
			 "written after 300 ms"))
		atomic_fetch_add(&x->stop_lines, 1);
	if (strstr(line, ": no deferred reply within 300 ms, closing"))
		atomic_fetch_add(&x->timeout_lines, 1);
}

/* The handle kept for CTRL<n>. */
static struct mllp_reply_handle *kept(int n)
{
	pthread_mutex_lock(&X.mu);
	struct mllp_reply_handle *h = X.h[n];
	pthread_mutex_unlock(&X.mu);
	return h;
}

/* ---- receiver, client and stop helpers ------------------------------------
 */

static void config(struct mllp_receiver_config *c)
{
	ti_receiver_config(c, dispatch, &X);
	rx_counted_init(&cnt);
	blocks_base = atomic_load(&cnt.blocks); /* a failed test may leak */
	c->allocator = &cnt.a;
	c->reply_abandoned = abandoned;
	c->telemetry = tel;
	c->telemetry_ctx = &X;
	c->log = logline;
	c->log_ctx = &X;
}

static bool pending_is(void *arg)
{
	struct mllp_receiver *rv = arg;
	return rx_stats(rv).replies_pending ==
	       (uint64_t)atomic_load(&X.deferred);
}

static bool none_active(void *arg)
{
	return rx_stats(arg).connections_active == 0;
}

/* Frame of CTRL<i> to fd. */
static void send_frame(int fd, int i)
{
	char f[512];
	tn_send_all(fd, f, rx_frame(f, sizeof(f), i));
}

/* Read until the peer closes (or an error, or the deadline); returns the
 * bytes read into buf (at most cap, the rest counted and dropped); *eof:
 * it ended by the peer's close (end of file or reset). */
static size_t read_to_close(int fd, char *buf, size_t cap, bool *eof)
{
	static char sink[65536];
	size_t got = 0;
	uint64_t end = tn_now_ms() + DEADLINE_MS;
	*eof = false;
	for (;;) {
		uint64_t now = tn_now_ms();
		if (now >= end)
			return got;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		char *to = got < cap ? buf + got : sink;
		size_t room = got < cap ? cap - got : sizeof(sink);
		ssize_t r = recv(fd, to, room, 0);
		if (r <= 0) {
			*eof = r == 0 || errno == ECONNRESET;
			return got;
		}
		got += (size_t)r;
	}
}

/* How many reply frames (EB CR) buf holds, and whether each names
 * CTRL<first + i> in MSA-2 (else -1). */
static int count_acks(const char *buf, size_t len, int first)
{
	int n = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != 0x1c || buf[i + 1] != 0x0d)
			continue;
		char want[32];
		snprintf(want, sizeof(want), "MSA|AA|CTRL%d\r", first + n);
		if (!memmem(buf, i, want, strlen(want)))
			return -1;
		n++;
	}
	return n;
}

struct stopper {
	struct mllp_receiver *rv;
	pthread_t th;
	int rc;
	uint64_t ms; /* how long stop took */
};

static void *stop_main(void *arg)
{
	struct stopper *s = arg;
	uint64_t t0 = tn_now_ms();
	s->rc = mllp_receiver_stop(s->rv);
	s->ms = tn_now_ms() - t0;
	return NULL;
}

static void stop_async(struct stopper *s, struct mllp_receiver *rv)
{
	s->rv = rv;
	s->rc = -1;
	assert_int_equal(pthread_create(&s->th, NULL, stop_main, s), 0);
}

/* Stop has begun: the listener refuses new clients (a client taken in
 * before that is closed again; the drain closes it at once). */
static bool stop_begun(uint16_t port)
{
	return rx_port_refuses(port, DEADLINE_MS);
}

/* ---- one test's receiver and client --------------------------------------
 */

struct run {
	struct mllp_receiver *rv;
	int fd; /* the client; -1 once the test closed it */
};

/* The receiver (the dispatcher in mode m, config()) with stop_drain_ms
 * drain_ms (-1: the default) and deferred_timeout_ms timeout_ms, and a
 * client connected to it with receive buffer rcvbuf (0: the default).
 * False when io_uring is unavailable: the caller skips. */
static bool run_start(struct run *r, enum mode m, int drain_ms,
		      uint32_t timeout_ms, int rcvbuf)
{
	ctx_init(m);
	if (m == M_BIG)
		big_reply();
	struct mllp_receiver_config c;
	config(&c);
	if (drain_ms >= 0)
		c.stop_drain_ms = (uint32_t)drain_ms;
	if (timeout_ms > 0)
		c.deferred_timeout_ms = timeout_ms;
	if (!rx_start(&c, &r->rv))
		return false;
	r->fd = tn_connect(mllp_receiver_port(r->rv), rcvbuf);
	return true;
}

/* Close the client, destroy the receiver: nothing leaked. */
static void run_end(struct run *r)
{
	if (r->fd >= 0)
		close(r->fd);
	mllp_receiver_destroy(r->rv);
	assert_int_equal(atomic_load(&cnt.blocks), blocks_base);
}

/* Read the client's side of a big reply until the close, into a buffer
 * with room for big_len + 16 bytes (free it): *got bytes, *eof as
 * read_to_close. */
static char *read_big(int fd, size_t *got, bool *eof)
{
	char *buf = malloc(big_len + 16);
	assert_non_null(buf);
	*got = read_to_close(fd, buf, big_len + 16, eof);
	return buf;
}

/* ---- the drain ------------------------------------------------------------
 */

/* A big synchronous reply to a client that does not read yet: stop is
 * called while it is being written; the client then reads it whole, then
 * the close. Stop returns once it is written. */
static void test_sync_reply_written_at_stop(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_BIG, -1, 0, 16384))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	send_frame(fd, 1);
	assert_true(tr_wait_count(&X.dispatched, 1, DEADLINE_MS));
	assert_int_equal(rx_stats(rv).replies_sent, 0); /* not yet written */
	struct stopper s;
	stop_async(&s, rv);
	assert_true(stop_begun(mllp_receiver_port(rv)));
	size_t got;
	bool eof;
	char *buf = read_big(fd, &got, &eof);
	pthread_join(s.th, NULL);
	assert_int_equal(s.rc, 0);
	fprintf(stderr, "read %zu of %zu reply bytes; stop took %llu ms\n", got,
		big_len + 3, (unsigned long long)s.ms);
	assert_true(eof);
	assert_int_equal(got, big_len + 3);
	assert_int_equal(buf[0], 0x0b);
	assert_int_equal(buf[got - 2], 0x1c);
	free(buf);
	struct mllp_receiver_stats st = rx_stats(rv);
	assert_int_equal(st.replies_sent, 1);
	assert_int_equal(st.connections_stop_unfinished, 0);
	assert_true(atomic_load(&X.closes[MLLP_CLOSE_STOPPED]) >= 1);
	run_end(&t);
}

/* stop_drain_ms 0: as before the drain, the connection is closed at once
 * and the reply being written is cut short. */
static void test_drain_zero_closes_at_once(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_BIG, 0, 0, 16384))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	send_frame(fd, 1);
	assert_true(tr_wait_count(&X.dispatched, 1, DEADLINE_MS));
	assert_int_equal(mllp_receiver_stop(rv), 0);
	size_t got;
	bool eof;
	char *buf = read_big(fd, &got, &eof);
	fprintf(stderr, "read %zu of %zu reply bytes\n", got, big_len + 3);
	assert_true(eof);
	assert_true(got < big_len + 3);
	free(buf);
	struct mllp_receiver_stats st = rx_stats(rv);
	assert_int_equal(st.replies_sent, 0);
	assert_int_equal(st.connections_stop_unfinished, 0); /* no drain */
	assert_int_equal(atomic_load(&X.closes[MLLP_CLOSE_STOPPED]), 1);
	run_end(&t);
}

/* A deferred reply completed after stop began (within the bound) is sent;
 * a frame the client sends during the drain is not dispatched. Stop then
 * returns before the bound; nothing is reported abandoned. */
static void test_deferred_completed_during_drain(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_DEFER, 10000, 0, 0))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	send_frame(fd, 0); /* answered at once */
	send_frame(fd, 1);
	assert_true(tr_wait_count(&X.deferred, 1, DEADLINE_MS));
	assert_true(tr_wait_until(pending_is, rv, DEADLINE_MS));
	struct stopper s;
	stop_async(&s, rv);
	assert_true(stop_begun(mllp_receiver_port(rv)));
	send_frame(fd, 2); /* after stop began: never dispatched */
	assert_int_equal(rx_reply_n(kept(1), 1), 0);
	static char buf[4096];
	bool eof;
	size_t got = read_to_close(fd, buf, sizeof(buf), &eof);
	pthread_join(s.th, NULL);
	assert_int_equal(s.rc, 0);
	assert_true(eof);
	assert_int_equal(count_acks(buf, got, 0), 2);
	assert_true(s.ms < 10000);
	assert_int_equal(atomic_load(&X.dispatched), 2);
	assert_int_equal(atomic_load(&X.nab), 0);
	assert_int_equal(atomic_load(&X.on_manager_bad), 0);
	struct mllp_receiver_stats st = rx_stats(rv);
	assert_int_equal(st.replies_sent, 2);
	assert_int_equal(st.replies_after_close, 0);
	assert_int_equal(st.replies_abandoned, 0);
	assert_int_equal(st.connections_stop_unfinished, 0);
	run_end(&t);
}

#define DRAIN_MS 300

/* A deferred reply never completed: stop returns after the bound (plus
 * slack), the client sees the close, the handle is reported once (reason
 * stopped), replying to it answers MLLP_ERR_CLOSED; counted and logged
 * once; nothing leaks. */
static void test_drain_bound(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_DEFER, DRAIN_MS, 0, 0))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	send_frame(fd, 1);
	assert_true(tr_wait_count(&X.deferred, 1, DEADLINE_MS));
	assert_true(tr_wait_until(pending_is, rv, DEADLINE_MS));
	struct stopper s;
	stop_async(&s, rv);
	static char buf[4096];
	bool eof;
	size_t got = read_to_close(fd, buf, sizeof(buf), &eof);
	pthread_join(s.th, NULL);
	assert_int_equal(s.rc, 0);
	fprintf(stderr, "stop took %llu ms (drain bound %d ms)\n",
		(unsigned long long)s.ms, DRAIN_MS);
	assert_true(s.ms >= DRAIN_MS - 5);
	assert_true(s.ms < DRAIN_MS + 5000);
	assert_true(eof);
	assert_int_equal(got, 0);
	assert_int_equal(atomic_load(&X.nab), 1);
	assert_ptr_equal(X.ab[0], kept(1));
	assert_int_equal(X.ab_reason[0], MLLP_CLOSE_STOPPED);
	assert_int_equal(atomic_load(&X.stop_lines), 1);
	struct mllp_receiver_stats st = rx_stats(rv);
	assert_int_equal(st.connections_stop_unfinished, 1);
	assert_int_equal(st.replies_abandoned, 1);
	assert_int_equal(st.replies_pending, 0);
	assert_int_equal(rx_reply_n(kept(1), 1), MLLP_ERR_CLOSED);
	assert_int_equal(rx_stats(rv).replies_after_close, 1);
	assert_int_equal(atomic_load(&X.nab), 1); /* once */
	run_end(&t);
}

/* ---- abandoned deferred replies -----------------------------------------
 */

/* The peer resets with three deferred replies unanswered (and one
 * answered before): each of the three is reported once with reason
 * closed; a reply then answers MLLP_ERR_CLOSED. A handle may also be
 * answered from inside the callback. */
static void test_abandoned_on_peer_reset(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_DEFER, -1, 0, 0))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	for (int i = 0; i < 4; i++)
		send_frame(fd, i);
	assert_true(tr_wait_count(&X.deferred, 3, DEADLINE_MS));
	assert_true(tr_wait_until(pending_is, rv, DEADLINE_MS));
	assert_int_equal(rx_stats(rv).replies_pending, 3);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	t.fd = -1;
	assert_true(tr_wait_until(none_active, rv, DEADLINE_MS));
	assert_true(tr_wait_count(&X.nab, 3, DEADLINE_MS));
	assert_int_equal(atomic_load(&X.nab), 3);
	for (int n = 1; n <= 3; n++) {
		int seen = 0;
		for (int k = 0; k < 3; k++)
			if (X.ab[k] == kept(n)) {
				seen++;
				assert_int_equal(X.ab_reason[k],
						 MLLP_CLOSE_PEER);
			}
		assert_int_equal(seen, 1);
	}
	assert_int_equal(rx_stats(rv).replies_abandoned, 3);
	for (int n = 1; n <= 3; n++)
		assert_int_equal(rx_reply_n(kept(n), n), MLLP_ERR_CLOSED);
	assert_int_equal(rx_stats(rv).replies_after_close, 3);
	assert_int_equal(atomic_load(&X.on_manager_bad), 0);
	assert_int_equal(atomic_load(&X.closes[MLLP_CLOSE_PEER]), 1);
	run_end(&t);
}

/* deferred_timeout_ms: a connection whose replies all come stays open; a
 * deferred reply that does not come within it closes the connection
 * (reason reply_timeout, logged), the handle is reported with that
 * reason, and the client sees the close. */
static void test_deferred_timeout(void **state)
{
	(void)state;
	struct run t;
	if (!run_start(&t, M_DEFER, -1, DRAIN_MS, 0))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	send_frame(fd, 0); /* answered at once: no timeout */
	char buf[4096];
	size_t got = 0;
	while (got < 4 || memcmp(buf + got - 2, "\x1c\r", 2) != 0) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, DEADLINE_MS), 1);
		ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(count_acks(buf, got, 0), 1);
	/* Longer than the timeout with nothing deferred: still open. */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 2 * DRAIN_MS), 0);
	assert_int_equal(rx_stats(rv).connections_active, 1);
	uint64_t t0 = tn_now_ms();
	send_frame(fd, 1); /* deferred, never answered */
	bool eof;
	got = read_to_close(fd, buf, sizeof(buf), &eof);
	uint64_t waited = tn_now_ms() - t0;
	fprintf(stderr, "closed after %llu ms (deferred_timeout_ms %d)\n",
		(unsigned long long)waited, DRAIN_MS);
	assert_true(eof);
	assert_int_equal(got, 0);
	assert_true(waited >= DRAIN_MS - 5);
	assert_true(tr_wait_count(&X.nab, 1, DEADLINE_MS));
	assert_ptr_equal(X.ab[0], kept(1));
	assert_int_equal(X.ab_reason[0], MLLP_CLOSE_REPLY_TIMEOUT);
	assert_int_equal(atomic_load(&X.closes[MLLP_CLOSE_REPLY_TIMEOUT]), 1);
	assert_int_equal(atomic_load(&X.timeout_lines), 1);
	assert_string_equal(mllp_close_reason_name(MLLP_CLOSE_REPLY_TIMEOUT),
			    "reply_timeout");
	assert_int_equal(rx_reply_n(kept(1), 1), MLLP_ERR_CLOSED);
	assert_int_equal(rx_stats(rv).replies_abandoned, 1);
	assert_int_equal(atomic_load(&X.nab), 1);
	run_end(&t);
}

/* The defaults: a drain of MLLP_RECEIVER_DEFAULT_STOP_DRAIN_MS, no
 * deferred reply timeout, no callback; the options come from the reserved
 * space, which stays zero. */
static void test_defaults(void **state)
{
	(void)state;
	struct mllp_receiver_config c;
	mllp_receiver_config_init(&c);
	assert_int_equal(c.stop_drain_ms, 1000);
	assert_int_equal(MLLP_RECEIVER_DEFAULT_STOP_DRAIN_MS, 1000);
	assert_int_equal(c.deferred_timeout_ms, 0);
	assert_null(c.reply_abandoned);
	for (size_t i = 0; i < sizeof(c.reserved_) / sizeof(c.reserved_[0]);
	     i++)
		assert_int_equal(c.reserved_[i], 0);
}

static int teardown(void **state)
{
	(void)state;
	free(X.big);
	X.big = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_sync_reply_written_at_stop,
				      teardown),
	    cmocka_unit_test_teardown(test_drain_zero_closes_at_once, teardown),
	    cmocka_unit_test(test_deferred_completed_during_drain),
	    cmocka_unit_test(test_drain_bound),
	    cmocka_unit_test(test_abandoned_on_peer_reset),
	    cmocka_unit_test(test_deferred_timeout),
	    cmocka_unit_test(test_defaults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Integration tests of the receiver's engine through the backend seam: a
 * wait() that fails for good stops the receiver (the real backend,
 * wrapped: wrap_backend.h). Run once per backend (MLLP_TEST_BACKEND). */
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
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "netutil.h"
#include "rx_util.h"
#include "wrap_backend.h"

#include "receiver_internal.h"

#define DEADLINE_MS 5000

/* ---- the log and the telemetry ------------------------------------------ */

struct watch {
	pthread_mutex_t mu;
	char want[256]; /* the line waited for */
	bool seen;
	_Atomic int stopped; /* connection_stop events, reason stopped */
	_Atomic int stops;   /* connection_stop events, any reason */
};

static void watch_log(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)l;
	struct watch *w = ctx;
	pthread_mutex_lock(&w->mu);
	if (strcmp(line, w->want) == 0)
		w->seen = true;
	pthread_mutex_unlock(&w->mu);
}

static bool watch_seen(void *arg)
{
	struct watch *w = arg;
	pthread_mutex_lock(&w->mu);
	bool seen = w->seen;
	pthread_mutex_unlock(&w->mu);
	return seen;
}

static void watch_event(void *ctx, const struct mllp_receiver_event *ev)
{
	struct watch *w = ctx;
	if (ev->kind != MLLP_RECEIVER_EV_CONNECTION_STOP)
		return;
	atomic_fetch_add(&w->stops, 1);
	if (ev->reason == MLLP_CLOSE_STOPPED)
		atomic_fetch_add(&w->stopped, 1);
}

/* ---- the client -----------------------------------------------------------
 */

static void send_all(int fd, const void *p, size_t n)
{
	assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Read until the end of a frame (0x1C 0x0D) within the deadline. */
static void read_reply(int fd)
{
	char buf[4096];
	size_t got = 0;
	uint64_t end = tn_now_ms() + DEADLINE_MS;
	while (got < 2 || buf[got - 2] != 0x1C || buf[got - 1] != 0x0D) {
		uint64_t now = tn_now_ms();
		assert_true(now < end);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t n = recv(fd, buf + got, sizeof(buf) - got, 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

/* True when the peer closed fd (end of file or reset) within the
 * deadline; anything it sends first is read and dropped. */
static bool sees_close(int fd)
{
	uint64_t end = tn_now_ms() + DEADLINE_MS;
	for (uint64_t now = tn_now_ms(); now < end; now = tn_now_ms()) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		char buf[512];
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return true;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return false;
	}
	return false;
}

/* ---- stop within a deadline -----------------------------------------------
 */

static void *stop_thread(void *arg)
{
	mllp_receiver_stop(arg);
	return NULL;
}

/* mllp_receiver_stop returned within DEADLINE_MS (the manager thread has
 * ended). On false the stopping thread is left behind. */
static bool stop_in_time(struct mllp_receiver *rv)
{
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stop_thread, rv), 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += DEADLINE_MS / 1000;
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* ---- the test -------------------------------------------------------------
 */

/* wait() failing for good (here EBADF, as for a ring whose descriptor is
 * gone) with a client connected and a frame half received: the receiver
 * logs why it stopped, closes the client's connection (telemetry reason
 * stopped) and its port (new clients are refused) before anyone calls
 * stop, its manager thread ends, stop returns at once, and destroy frees
 * everything. Never a spin, never a hang. */
static void test_wait_error_stops_receiver(void **state)
{
	(void)state;
	struct rx_counted k = {0};
	rx_counted_init(&k);
	struct watch w = {0};
	pthread_mutex_init(&w.mu, NULL);
	snprintf(w.want, sizeof(w.want),
		 "the receiver stopped: backend wrapped wait failed: %s",
		 mllp_strerror(-EBADF));
	const struct mllpi_backend_ops *ops = tw_reset();
	struct mllp_receiver_config c;
	ti_receiver_config(&c, mllp_dispatch_echo, NULL);
	c.allocator = &k.a;
	c.log = watch_log;
	c.log_ctx = &w;
	c.telemetry = watch_event;
	c.telemetry_ctx = &w;
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllpi_receiver_create_ops(&c, ops, &rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		skip();
	}
	assert_int_equal(rc, 0);

	/* A live connection: one message answered, then half a frame that
	 * the decoder keeps. */
	int fd = tn_connect(mllp_receiver_port(rv), 0);
	size_t len;
	char *m = tr_hl7(1, &len);
	send_all(fd, "\x0b", 1);
	send_all(fd, m, len);
	send_all(fd, "\x1c\x0d", 2);
	free(m);
	read_reply(fd);
	atomic_store(&tw_wait_fail, -EBADF);
	/* Wakes the manager from the wait it is in; every wait after fails. */
	send_all(fd, "\x0bMSH|^~\\&|half", 15);

	bool logged = tr_wait_until(watch_seen, &w, DEADLINE_MS);
	bool closed = sees_close(fd);
	bool refuses = rx_port_refuses(mllp_receiver_port(rv), DEADLINE_MS);
	int failures = atomic_load(&tw_wait_failures);
	bool stopped = stop_in_time(rv);
	if (!stopped) {
		fprintf(stderr, "mllp_receiver_stop did not return: the "
				"manager thread is still running\n");
		fail();
	}
	assert_true(logged);
	assert_true(closed);
	assert_true(refuses);
	/* No spin: a few failed calls, then the manager left. */
	assert_true(failures >= 1 && failures <= 8);
	assert_int_equal(atomic_load(&tw_wait_failures), failures);
	assert_int_equal(atomic_load(&w.stops), 1);
	assert_int_equal(atomic_load(&w.stopped), 1);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_accepted, 1);
	assert_int_equal(st.connections_active, 0);
	assert_int_equal(st.messages_received, 1);
	assert_int_equal(mllp_receiver_stop(rv), 0); /* again: at once */
	mllp_receiver_destroy(rv);
	assert_int_equal(atomic_load(&k.blocks), 0);
	assert_int_equal(atomic_load(&k.bytes), 0);
	close(fd);
	pthread_mutex_destroy(&w.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wait_error_stops_receiver),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

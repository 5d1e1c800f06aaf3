/* Integration tests of the pool engine and the client API on loopback,
 * ported from the reference client suites: connecting, reconnecting and
 * its backoff, keepalive, stopping, bad addresses, two endpoints. */
#include "pool_util.h"

static bool client_down(void *arg)
{
	return !mllp_client_is_connected(arg);
}

static void real_backoff(struct mllp_pool_config *cfg)
{
	cfg->backoff_divisor = 1; /* stay down 1 s after the first failure */
}

static void test_econnrefused(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct mllp_client *c = start_client(port, NULL, real_backoff);
	assert_false(mllp_client_is_connected(c));
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_future *f = (void *)1;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, 0, &f, &err);
	assert_int_equal(rc, -ECONNREFUSED);
	assert_null(f);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_int_equal(err.reason, -ECONNREFUSED);
	assert_string_equal(err.message, "connection refused");
	/* send_async never hangs either: fails at once the same way. */
	rc = mllp_client_send_async(c, m, len, MLLP_PAYLOAD_HL7, &f, &err);
	if (rc == 0) {
		/* The first failure kicked a reconnect: the message waited
		 * for that attempt and failed with its error. */
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		assert_int_equal(mllp_future_result(f)->status, -ECONNREFUSED);
		assert_int_equal(mllp_future_result(f)->error.context,
				 MLLP_CTX_SEND);
		assert_false(mllp_future_result(f)->may_have_reached);
		mllp_future_free(f);
	} else {
		assert_int_equal(rc, -ECONNREFUSED);
		assert_int_equal(err.context, MLLP_CTX_SEND);
	}
	free(m);
	mllp_client_destroy(c);
}

static void test_late_listener_reconnect(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct mllp_client *c = start_client(port, NULL, NULL);
	assert_false(mllp_client_is_connected(c));
	struct tr r;
	tr_start(&r, port, TR_ACK);
	/* Backoff (scaled 1/100) brings it up without any send. */
	assert_true(tr_wait_until(client_up, c, 5000));
	send_expect_aa(c, 2, 0);
	stop_pair(c, &r);
}

/* Send message n while every connection is down: it must fail at once
 * with context send, never written, with reason want (or, when alt is not
 * 0, alt). */
static void send_expect_down(struct mllp_client *c, int n, int want, int alt)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_future *f = NULL;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, 0, &f, &err);
	int got;
	if (rc == 0) {
		const struct mllp_result *res = mllp_future_result(f);
		assert_int_not_equal(res->status, 0);
		assert_int_equal(res->error.context, MLLP_CTX_SEND);
		assert_false(res->may_have_reached);
		got = res->error.reason;
		mllp_future_free(f);
	} else {
		assert_int_equal(err.context, MLLP_CTX_SEND);
		assert_int_equal(err.reason, rc);
		got = rc;
	}
	if (got != want && (alt == 0 || got != alt))
		fail_msg("send while down: reason %d (%s), want %d or %d", got,
			 mllp_strerror(got), want, alt);
	free(m);
}

static bool connect_failed_once(void *arg)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(mllp_client_pool(arg), &st);
	return st.connect_failures > 0;
}

static void test_receiver_stop_detected(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	assert_true(mllp_client_is_connected(c));
	send_expect_aa(c, 1, 0);
	tr_stop(&r);
	assert_true(tr_wait_until(client_down, c, 5000));
	/* Send after the receiver stopped: an error with context send. The
	 * reconnect that follows the close may or may not have failed yet:
	 * the reason is that the connection closed, or the refused connect,
	 * never a stale "not connected". */
	send_expect_down(c, 2, MLLP_ERR_CLOSED, -ECONNREFUSED);
	/* Once a reconnect attempt has failed, its error is the reason. */
	assert_true(tr_wait_until(connect_failed_once, c, 5000));
	send_expect_down(c, 3, -ECONNREFUSED, 0);
	mllp_client_destroy(c);
}

/* The connection closes and no reconnect attempt has failed yet: a send
 * is told the link closed ("sending/closed"), not a stale or empty connect
 * error. A receiver greeting with junk gets the connection closed and, as it
 * never answered, the reconnect deferred by the backoff delay (1 s). */
static bool accepted_and_closed(void *arg)
{
	struct tr *r = arg;
	return atomic_load(&r->accepted) > 0 &&
	       atomic_load(&r->open_conns) == 0;
}

static void test_send_after_close(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	atomic_store(&r.junk_on_accept, true);
	struct mllp_client *c = start_client(r.port, NULL, real_backoff);
	/* The receiver sees the close, which follows the recorded reason. */
	assert_true(tr_wait_until(accepted_and_closed, &r, 5000));
	assert_false(mllp_client_is_connected(c));
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(mllp_client_pool(c), &st);
	assert_int_equal(st.connect_failures, 0);
	send_expect_down(c, 1, MLLP_ERR_CLOSED, 0);
	stop_pair(c, &r);
}

static void test_backoff_sequence(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c = start_client(port, &rec, NULL);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_FAILURE, 3, 5000));
	uint64_t d[3];
	int k = 0;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n && k < 3; i++)
		if (rec.ev[i].kind == MLLP_EV_CONNECTION_FAILURE)
			d[k++] = rec.ev[i].delay_ms;
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(d[0], 1000);
	assert_int_equal(d[1], 2000);
	assert_int_equal(d[2], 4000);
	/* A success resets: the next failure waits 1 s again. */
	struct tr r;
	tr_start(&r, port, TR_ACK);
	assert_true(tr_wait_until(client_up, c, 10000));
	int before = ti_count(&rec, MLLP_EV_CONNECTION_FAILURE);
	tr_stop(&r);
	assert_true(tr_wait_until(client_down, c, 5000));
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_FAILURE, 4, 5000));
	pthread_mutex_lock(&rec.mu);
	int seen = 0;
	uint64_t next = 0;
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].kind == MLLP_EV_CONNECTION_FAILURE &&
		    seen++ == before)
			next = rec.ev[i].delay_ms;
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(next, 1000);
	mllp_client_destroy(c);
}

static void keepalive_tweak(struct mllp_pool_config *cfg)
{
	cfg->conn.keepalive_idle_s = 33;
	cfg->conn.keepalive_interval_s = 7;
	cfg->conn.keepalive_count = 4;
}

static void test_keepalive_options(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, keepalive_tweak);
	assert_true(mllp_client_is_connected(c));
	assert_true(tr_wait_count(&r.accepted, 1, 5000));
	int peer = atomic_load(&r.last_peer_port);
	/* Find the client's socket in this process by its local port. */
	int found = -1;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		if (fd <= 2 ||
		    getsockname(fd, (struct sockaddr *)&a, &al) != 0 ||
		    a.sin_family != AF_INET)
			continue;
		if (ntohs(a.sin_port) == peer)
			found = fd;
	}
	closedir(d);
	assert_true(found >= 0);
	int v = 0;
	socklen_t vl = sizeof(v);
	getsockopt(found, SOL_SOCKET, SO_KEEPALIVE, &v, &vl);
	assert_int_equal(v, 1);
	getsockopt(found, IPPROTO_TCP, TCP_KEEPIDLE, &v, &vl);
	assert_int_equal(v, 33);
	getsockopt(found, IPPROTO_TCP, TCP_KEEPINTVL, &v, &vl);
	assert_int_equal(v, 7);
	getsockopt(found, IPPROTO_TCP, TCP_KEEPCNT, &v, &vl);
	assert_int_equal(v, 4);
	getsockopt(found, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
	assert_int_equal(v, 1);
	stop_pair(c, &r);
}

static void test_reconnect(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	assert_true(mllp_client_is_connected(c));
	assert_int_equal(mllp_client_reconnect(c), 0);
	assert_true(tr_wait_count(&r.accepted, 2, 5000));
	assert_true(tr_wait_until(client_up, c, 5000));
	send_expect_aa(c, 9, 0);
	stop_pair(c, &r);
}

static bool inflight1_queued(void *arg)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(arg, &st);
	return st.in_flight == 1 && st.queued == 9;
}

static void test_stop_with_queued(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.conn.reply_timeout_ms = MLLP_INFINITE;
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 1, NULL, &ep, NULL),
	    0);
	struct mllp_future *f[10];
	for (int i = 0; i < 10; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		assert_int_equal(
		    mllp_pool_send(p, ep, m, len, NULL, &f[i], NULL), 0);
		free(m);
	}
	assert_true(tr_wait_until(inflight1_queued, p, 5000));
	assert_true(tr_wait_count(&r.frames, 1, 5000));
	assert_int_equal(mllp_pool_stop(p), 0);
	for (int i = 0; i < 10; i++) {
		const struct mllp_result *res = mllp_future_result(f[i]);
		assert_non_null(res);
		assert_int_equal(res->status, MLLP_ERR_STOPPED);
		assert_int_equal(res->written, i == 0);
		assert_int_equal(res->may_have_reached, i == 0);
		mllp_future_free(f[i]);
	}
	/* A send after stop fails synchronously. */
	struct mllp_future *g;
	assert_int_equal(mllp_pool_send(p, ep, "x", 1, NULL, &g, NULL),
			 MLLP_ERR_STOPPED);
	assert_null(g);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

static void test_io_uring_unavailable(void **state)
{
	(void)state;
	int errs[] = {-EPERM, -ENOSYS};
	for (int i = 0; i < 2; i++) {
		struct mllp_pool_config cfg;
		ti_config(&cfg, NULL);
		cfg.backend = MLLP_BACKEND_IO_URING; /* auto falls back */
		cfg.test_ring_error = errs[i];
		struct mllp_pool *p = (void *)1;
		struct mllp_error err;
		assert_int_equal(mllp_pool_create(&cfg, &p, &err),
				 MLLP_ERR_IO_URING_UNAVAILABLE);
		assert_null(p);
		assert_int_equal(err.reason, MLLP_ERR_IO_URING_UNAVAILABLE);
		assert_non_null(strstr(err.message, "io_uring is unavailable"));
		struct mllp_client *c = (void *)1;
		assert_int_equal(
		    mllp_client_create("127.0.0.1", 9, &cfg, &c, &err),
		    MLLP_ERR_IO_URING_UNAVAILABLE);
		assert_null(c);
	}
}

static void test_bad_address(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_client *c = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_client_create("", 2575, &cfg, &c, &err),
			 MLLP_ERR_BAD_ADDRESS);
	assert_null(c);
	assert_string_equal(err.message, "Invalid server ip address");
	/* Names that do not resolve: the name and the resolver's reason
	 * (whatever the resolver of this machine says). */
	const char *bad[] = {"not a host name.invalid", "300.1.2.3.4"};
	for (int i = 0; i < 2; i++) {
		c = (void *)1;
		assert_int_equal(
		    mllp_client_create(bad[i], 2575, &cfg, &c, &err),
		    MLLP_ERR_BAD_ADDRESS);
		assert_null(c);
		assert_int_equal(err.context, MLLP_CTX_CONNECT);
		char want[128];
		int n = snprintf(want, sizeof(want),
				 "cannot resolve '%s': ", bad[i]);
		assert_memory_equal(err.message, want, (size_t)n);
		assert_true(strlen(err.message) > (size_t)n);
	}
	c = NULL;
	assert_int_equal(mllp_client_create(NULL, 2575, &cfg, &c, NULL),
			 MLLP_ERR_BAD_ADDRESS);
	/* IPv6 literal and host name are accepted. */
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	assert_int_equal(
	    mllp_client_create("localhost", r.port, &cfg, &c, NULL), 0);
	mllp_client_destroy(c);
	assert_int_equal(mllp_client_create("::1", r.port, &cfg, &c, NULL), 0);
	stop_pair(c, &r);
}

/* Two endpoints in one pool: each message goes to its own endpoint. */
static void test_two_endpoints(void **state)
{
	(void)state;
	struct tr r1, r2;
	tr_start(&r1, 0, TR_ACK);
	tr_start(&r2, 0, TR_ACK);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t e1, e2;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r1.port, 2, NULL, &e1, NULL),
	    0);
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "localhost", r2.port, 1, NULL, &e2, NULL),
	    0);
	assert_int_not_equal(e1, e2);
	struct mllp_future *f[40];
	for (int i = 0; i < 40; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		assert_int_equal(mllp_pool_send(p, i % 2 ? e2 : e1, m, len,
						NULL, &f[i], NULL),
				 0);
		free(m);
	}
	for (int i = 0; i < 40; i++) {
		assert_int_equal(mllp_future_wait(f[i], 5000), 0);
		const struct mllp_result *res = mllp_future_result(f[i]);
		assert_int_equal(res->status, 0);
		assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
		mllp_future_free(f[i]);
	}
	assert_int_equal(atomic_load(&r1.frames), 20);
	assert_int_equal(atomic_load(&r2.frames), 20);
	assert_int_equal(mllp_pool_connected_count(p, e1), 2);
	assert_true(mllp_pool_is_connected(p, e2, 0));
	assert_false(mllp_pool_is_connected(p, e2, 1));
	mllp_pool_destroy(p);
	tr_stop(&r1);
	tr_stop(&r2);
}

/* The receiver closes the connection every 3rd message (queue_timeout 0,
 * one connection): the message in flight fails (it may have reached the
 * receiver), the queued ones wait for the immediate reconnect and go on. */
static void test_queued_survive_reconnect(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	atomic_store(&r.close_every, 3);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 1, NULL, &ep, NULL),
	    0);
	struct mllp_future *f[30];
	for (int i = 0; i < 30; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		assert_int_equal(
		    mllp_pool_send(p, ep, m, len, NULL, &f[i], NULL), 0);
		free(m);
	}
	int ok = 0, failed = 0;
	for (int i = 0; i < 30; i++) {
		assert_int_equal(mllp_future_wait(f[i], 10000), 0);
		const struct mllp_result *res = mllp_future_result(f[i]);
		if (res->status == 0) {
			assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
			ok++;
		} else {
			assert_true(res->status == MLLP_ERR_CLOSED ||
				    res->status == -ECONNRESET);
			assert_true(res->may_have_reached);
			failed++;
		}
		mllp_future_free(f[i]);
	}
	assert_int_equal(failed, atomic_load(&r.closes));
	assert_int_equal(ok, 20);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

static void fixed_interval(struct mllp_pool_config *cfg)
{
	cfg->conn.use_backoff = false;
	cfg->conn.auto_reconnect_interval_ms = 500;
}

/* Without backoff every retry waits auto_reconnect_interval. */
static void test_fixed_reconnect_interval(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c = start_client(port, &rec, fixed_interval);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_FAILURE, 3, 5000));
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n; i++)
		if (rec.ev[i].kind == MLLP_EV_CONNECTION_FAILURE)
			assert_int_equal(rec.ev[i].delay_ms, 500);
	pthread_mutex_unlock(&rec.mu);
	mllp_client_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_econnrefused),
	    cmocka_unit_test(test_late_listener_reconnect),
	    cmocka_unit_test(test_receiver_stop_detected),
	    cmocka_unit_test(test_send_after_close),
	    cmocka_unit_test(test_backoff_sequence),
	    cmocka_unit_test(test_keepalive_options),
	    cmocka_unit_test(test_reconnect),
	    cmocka_unit_test(test_stop_with_queued),
	    cmocka_unit_test(test_io_uring_unavailable),
	    cmocka_unit_test(test_bad_address),
	    cmocka_unit_test(test_two_endpoints),
	    cmocka_unit_test(test_queued_survive_reconnect),
	    cmocka_unit_test(test_fixed_reconnect_interval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

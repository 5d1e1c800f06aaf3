/* Integration tests of the pool engine and the client API on loopback,
 * ported from the reference client suites. */
#include <errno.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"

static struct mllp_client *
start_client(uint16_t port, struct ti_rec *rec,
	     void (*tweak)(struct mllp_pool_config *))
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	if (tweak)
		tweak(&cfg);
	struct mllp_client *c = NULL;
	struct mllp_error err;
	int rc = mllp_client_start("127.0.0.1", port, &cfg, &c, &err);
	if (rc != 0)
		fprintf(stderr, "client start: %s\n", err.message);
	assert_int_equal(rc, 0);
	return c;
}

/* Start a test receiver in mode on a free port, then a client to it
 * (rec: initialised first when not NULL). */
static struct mllp_client *start_pair(struct tr *r, enum tr_mode mode,
				      struct ti_rec *rec,
				      void (*tweak)(struct mllp_pool_config *))
{
	tr_start(r, 0, mode);
	if (rec)
		ti_rec_init(rec);
	return start_client(r->port, rec, tweak);
}

/* Stop the client, then the test receiver. */
static void stop_pair(struct mllp_client *c, struct tr *r)
{
	mllp_client_stop(c);
	tr_stop(r);
}

static bool client_up(void *arg)
{
	return mllp_client_is_connected(arg);
}

static bool client_down(void *arg)
{
	return !mllp_client_is_connected(arg);
}

/* Send an HL7 message with control id CTRL<n>; expect application_accept
 * with MSA-2 == CTRL<n>. */
static void send_expect_aa(struct mllp_client *c, int n, int64_t rt)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_future *f;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, rt, &f, &err);
	if (rc != 0)
		fprintf(stderr, "send: %s\n", err.message);
	assert_int_equal(rc, 0);
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != 0)
		fprintf(stderr, "result: %s\n", r->error.message);
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	char want[32];
	snprintf(want, sizeof(want), "CTRL%d", n);
	assert_true(mllp_str_eq(r->ack.control_id, want));
	assert_true(mllp_str_eq(r->ack.code, "AA"));
	mllp_future_free(f);
	free(m);
}

/* Send and return the completed future (caller frees). */
static struct mllp_future *send_hl7(struct mllp_client *c, int n, int64_t rt)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_future *f;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, rt, &f, &err);
	free(m);
	assert_int_equal(rc, 0);
	assert_true(mllp_future_poll(f));
	return f;
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
	mllp_client_stop(c);
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
	mllp_client_stop(c);
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
	mllp_pool_get_stats(mllp_client_pool(c), &st);
	assert_int_equal(st.connect_failures, 0);
	send_expect_down(c, 1, MLLP_ERR_CLOSED, 0);
	stop_pair(c, &r);
}

static void test_large_messages(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	/* 10 KB */
	size_t len;
	char *m = tr_hl7(10, &len);
	char *big = malloc(12000);
	memcpy(big, m, len);
	size_t n = len;
	memcpy(big + n, "OBX|1|TX|||", 11);
	n += 11;
	while (n < 10 * 1024)
		big[n++] = 'x';
	big[n++] = '\r';
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(c, big, n, MLLP_PAYLOAD_HL7, 0, &f, NULL), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(big);
	free(m);
	/* 1 MiB from the corpus */
	unsigned char *mb = tu_corpus("messages/oru_r01_pdf_1mb.hl7", &len);
	assert_true(len > 1000000);
	assert_int_equal(
	    mllp_client_send(c, mb, len, MLLP_PAYLOAD_HL7, 0, &f, NULL), 0);
	const struct mllp_result *res = mllp_future_result(f);
	if (res->status)
		fprintf(stderr, "1 MiB: %s\n", res->error.message);
	assert_int_equal(res->status, 0);
	assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(mb);
	stop_pair(c, &r);
}

static void test_fragmented_reply(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK_BYTEWISE, NULL, NULL);
	send_expect_aa(c, 3, 0);
	stop_pair(c, &r);
}

static void test_split_trailer(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_SPLIT_TRAILER, NULL, NULL);
	send_expect_aa(c, 4, 0);
	stop_pair(c, &r);
}

static void expect_recv_error(enum tr_mode mode, int reason,
			      enum mllp_event_kind ev, int64_t rt)
{
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c = start_pair(&r, mode, &rec, NULL);
	struct mllp_future *f = send_hl7(c, 5, rt);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, reason);
	assert_int_equal(res->error.context, MLLP_CTX_RECEIVE);
	assert_true(res->written);
	assert_true(res->may_have_reached);
	if (reason == MLLP_ERR_INVALID_HEADER)
		assert_string_equal(
		    res->error.message,
		    "Invalid header received in server acknowledgment");
	assert_int_equal(ti_count(&rec, ev), 1);
	mllp_future_free(f);
	/* close_on_recv_error (default): closed abortively, reconnected. */
	assert_true(tr_wait_count(&r.accepted, 2, 5000));
	assert_true(tr_wait_until(client_up, c, 5000));
	stop_pair(c, &r);
}

static void test_no_header(void **state)
{
	(void)state;
	expect_recv_error(TR_NO_HEADER, MLLP_ERR_INVALID_HEADER,
			  MLLP_EV_INVALID_RESPONSE, 0);
}

static void test_data_after_trailer(void **state)
{
	(void)state;
	expect_recv_error(TR_DATA_AFTER, MLLP_ERR_DATA_AFTER_TRAILER,
			  MLLP_EV_INVALID_RESPONSE, 0);
}

static void test_missing_trailer_timeout(void **state)
{
	(void)state;
	expect_recv_error(TR_NO_TRAILER, MLLP_ERR_TIMEOUT,
			  MLLP_EV_RECEIVE_TIMEOUT, 200);
}

static void test_raw_echo(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ECHO, NULL, NULL);
	const char *xml = "<hello>world</hello>";
	struct mllp_future *f;
	assert_int_equal(mllp_client_send(c, xml, strlen(xml), MLLP_PAYLOAD_RAW,
					  0, &f, NULL),
			 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, 0);
	assert_false(res->has_verdict);
	assert_int_equal(res->reply_len, strlen(xml));
	assert_memory_equal(res->reply, xml, strlen(xml));
	mllp_future_free(f);
	/* auto: not HL7 → raw */
	assert_int_equal(mllp_client_send(c, xml, strlen(xml),
					  MLLP_PAYLOAD_AUTO, 0, &f, NULL),
			 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->reply_len, strlen(xml));
	mllp_future_free(f);
	stop_pair(c, &r);
}

struct conc_arg {
	struct mllp_client *c;
	int base;
	int bad;
};

static void *conc_main(void *arg)
{
	struct conc_arg *a = arg;
	for (int i = 0; i < 50; i++) {
		size_t len;
		int n = a->base + i;
		char *m = tr_hl7(n, &len);
		struct mllp_future *f;
		if (mllp_client_send(a->c, m, len, MLLP_PAYLOAD_HL7, 0, &f,
				     NULL) != 0) {
			a->bad++;
			free(m);
			continue;
		}
		const struct mllp_result *r = mllp_future_result(f);
		char want[32];
		snprintf(want, sizeof(want), "CTRL%d", n);
		if (r->status != 0 || r->verdict != MLLP_APPLICATION_ACCEPT ||
		    !mllp_str_eq(r->ack.control_id, want))
			a->bad++;
		mllp_future_free(f);
		free(m);
	}
	return NULL;
}

static void test_concurrent_senders(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	pthread_t th[4];
	struct conc_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct conc_arg){.c = c, .base = 1000 * (i + 1)};
		pthread_create(&th[i], NULL, conc_main, &a[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].bad, 0);
	}
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
	mllp_client_stop(c);
}

static void keepalive_tweak(struct mllp_pool_config *cfg)
{
	cfg->conn.keepalive_idle = 33;
	cfg->conn.keepalive_interval = 7;
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

static void keep_socket(struct mllp_pool_config *cfg)
{
	cfg->conn.close_on_recv_error = false;
}

/* A reply arriving after its timeout is never the next message's answer. */
static void late_reply(bool close_on_error)
{
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_client *c =
	    start_client(r.port, NULL, close_on_error ? NULL : keep_socket);
	atomic_store(&r.delay_ms, 400);
	atomic_store(&r.delay_count, 1);
	struct mllp_future *f = send_hl7(c, 1, 100);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(mllp_future_result(f)->error.context,
			 MLLP_CTX_RECEIVE);
	mllp_future_free(f);
	/* The next message gets its own reply (MSA-2 checked inside). */
	send_expect_aa(c, 2, 3000);
	send_expect_aa(c, 3, 3000);
	if (close_on_error)
		assert_int_equal(atomic_load(&r.accepted), 2);
	else
		assert_int_equal(atomic_load(&r.accepted), 1);
	stop_pair(c, &r);
}

static void test_close_on_recv_error_true(void **state)
{
	(void)state;
	late_reply(true);
}

static void test_close_on_recv_error_false(void **state)
{
	(void)state;
	late_reply(false);
}

/* A connection's reply timer is re-armed lazily (its heap entry stays
 * across messages, pool.c conn_timer_lazy): an earlier message's shorter
 * deadline must not cut a later reply short, and a shorter per-send
 * timeout after a long one must still fire. */
static void test_reply_timer_reuse(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	/* 1: 200 ms timeout, answered at once: its deadline stays behind. */
	send_expect_aa(c, 1, 200);
	/* 2: answered after 400 ms, past message 1's deadline. */
	atomic_store(&r.delay_ms, 400);
	atomic_store(&r.delay_count, 1);
	send_expect_aa(c, 2, 3000);
	/* 3: the default (60 s) timeout; 4: 150 ms, answered after 600 ms:
	 * times out. */
	send_expect_aa(c, 3, 0);
	atomic_store(&r.delay_ms, 600);
	atomic_store(&r.delay_count, 1);
	struct mllp_future *f = send_hl7(c, 4, 150);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(mllp_future_result(f)->error.context,
			 MLLP_CTX_RECEIVE);
	mllp_future_free(f);
	stop_pair(c, &r);
}

/* An orphan event of kind (with reason, unless any_reason) in rec. */
struct orphan_want {
	struct ti_rec *rec;
	enum mllp_event_kind kind;
	bool any_reason;
	int reason;
};

static bool has_orphan(void *arg)
{
	struct orphan_want *w = arg;
	struct ti_rec *rec = w->rec;
	bool ok = false;
	pthread_mutex_lock(&rec->mu);
	for (int i = 0; i < rec->n; i++)
		if (rec->ev[i].kind == w->kind && rec->ev[i].orphan &&
		    (w->any_reason || rec->ev[i].reason == w->reason))
			ok = true;
	pthread_mutex_unlock(&rec->mu);
	return ok;
}

static bool wait_orphan(struct ti_rec *rec, enum mllp_event_kind kind,
			bool any_reason, int reason, int timeout_ms)
{
	struct orphan_want w = {rec, kind, any_reason, reason};
	return tr_wait_until(has_orphan, &w, timeout_ms);
}

static void test_send_async(void **state)
{
	(void)state;
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c = start_pair(&r, TR_ACK, &rec, NULL);
	size_t len;
	char *m = tr_hl7(7, &len);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send_async(c, m, len, MLLP_PAYLOAD_HL7, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, 0);
	assert_true(res->written);
	assert_false(res->has_verdict);
	mllp_future_free(f);
	/* Its reply goes to telemetry, not to the next message. */
	assert_true(wait_orphan(&rec, MLLP_EV_RECEIVE_VALID, true, 0, 5000));
	send_expect_aa(c, 8, 0);
	free(m);
	stop_pair(c, &r);
}

static void test_telemetry_sequence(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct tr r;
	tr_start(&r, port, TR_ACK);
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c = start_client(port, &rec, NULL);
	send_expect_aa(c, 1, 0);
	tr_stop(&r);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_FAILURE, 1, 5000));
	tr_start(&r, port, TR_ACK);
	assert_true(ti_wait_count(&rec, MLLP_EV_CONNECTION_SUCCESS, 2, 10000));
	enum mllp_event_kind want[] = {
	    MLLP_EV_CONNECTION_SUCCESS, MLLP_EV_RECEIVE_VALID,
	    MLLP_EV_CONNECTION_CLOSED, MLLP_EV_CONNECTION_FAILURE,
	    MLLP_EV_CONNECTION_SUCCESS};
	int k = 0;
	pthread_mutex_lock(&rec.mu);
	for (int i = 0; i < rec.n && k < 5; i++) {
		/* repeated failures collapse into one step */
		if (k > 0 && rec.ev[i].kind == MLLP_EV_CONNECTION_FAILURE &&
		    want[k - 1] == MLLP_EV_CONNECTION_FAILURE)
			continue;
		assert_int_equal(rec.ev[i].kind, want[k]);
		k++;
	}
	pthread_mutex_unlock(&rec.mu);
	assert_int_equal(k, 5);
	assert_string_equal(mllp_event_name(MLLP_EV_RECEIVE_VALID),
			    "receive_valid");
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
	cfg.conn.reply_timeout = MLLP_INFINITE;
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
		    mllp_client_start("127.0.0.1", 9, &cfg, &c, &err),
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
	assert_int_equal(mllp_client_start("", 2575, &cfg, &c, &err),
			 MLLP_ERR_BAD_ADDRESS);
	assert_null(c);
	assert_string_equal(err.message, "Invalid server ip address");
	/* Names that do not resolve: the name and the resolver's reason
	 * (whatever the resolver of this machine says). */
	const char *bad[] = {"not a host name.invalid", "300.1.2.3.4"};
	for (int i = 0; i < 2; i++) {
		c = (void *)1;
		assert_int_equal(
		    mllp_client_start(bad[i], 2575, &cfg, &c, &err),
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
	assert_int_equal(mllp_client_start(NULL, 2575, &cfg, &c, NULL),
			 MLLP_ERR_BAD_ADDRESS);
	/* IPv6 literal and host name are accepted. */
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	assert_int_equal(mllp_client_start("localhost", r.port, &cfg, &c, NULL),
			 0);
	mllp_client_stop(c);
	assert_int_equal(mllp_client_start("::1", r.port, &cfg, &c, NULL), 0);
	stop_pair(c, &r);
}

static void test_cancel_and_would_block(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.queue_capacity = 2;
	cfg.conn.reply_timeout = MLLP_INFINITE;
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 1, NULL, &ep, NULL),
	    0);
	struct mllp_future *f[3], *g = NULL;
	size_t len;
	char *m = tr_hl7(1, &len);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[0], NULL), 0);
	assert_true(tr_wait_count(&r.frames, 1, 5000));
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[1], NULL), 0);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &f[2], NULL), 0);
	assert_int_equal(mllp_pool_send(p, ep, m, len, NULL, &g, NULL),
			 MLLP_ERR_WOULD_BLOCK);
	assert_null(g);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.block = true;
	o.block_timeout = 50;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &g, NULL),
			 MLLP_ERR_WOULD_BLOCK);
	/* Cancel a queued message: never written. */
	assert_int_equal(mllp_future_cancel(f[2]), 0);
	assert_int_equal(mllp_future_wait(f[2], 5000), 0);
	assert_int_equal(mllp_future_result(f[2])->status, MLLP_ERR_CANCELED);
	assert_false(mllp_future_result(f[2])->may_have_reached);
	/* Cancel the one in flight: written, may have reached. */
	assert_int_equal(mllp_future_cancel(f[0]), 0);
	assert_int_equal(mllp_future_wait(f[0], 5000), 0);
	assert_int_equal(mllp_future_result(f[0])->status, MLLP_ERR_CANCELED);
	assert_true(mllp_future_result(f[0])->written);
	/* Room again: a blocking send gets in. */
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &g, NULL), 0);
	mllp_pool_stop(p);
	assert_int_equal(mllp_future_result(f[1])->status, MLLP_ERR_STOPPED);
	assert_int_equal(mllp_future_result(g)->status, MLLP_ERR_STOPPED);
	for (int i = 0; i < 3; i++)
		mllp_future_free(f[i]);
	mllp_future_free(g);
	mllp_pool_destroy(p);
	free(m);
	tr_stop(&r);
}

static void queue_wait(struct mllp_pool_config *cfg)
{
	cfg->conn.queue_timeout = 5000;
}

static void test_queue_timeout_waits(void **state)
{
	(void)state;
	uint16_t port = tr_free_port();
	struct mllp_client *c = start_client(port, NULL, queue_wait);
	size_t len;
	char *m = tr_hl7(11, &len);
	struct mllp_future *f;
	/* Down, but queue_timeout > 0: the message waits for a connection. */
	assert_int_equal(
	    mllp_client_send_async(c, m, len, MLLP_PAYLOAD_HL7, &f, NULL), 0);
	struct tr r;
	tr_start(&r, port, TR_ACK);
	assert_int_equal(mllp_future_wait(f, 8000), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	mllp_future_free(f);
	free(m);
	stop_pair(c, &r);
}

/* Unsolicited bytes while idle: close and reconnect (default), or drop. */
static void unsolicited(bool close_on_error)
{
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	atomic_store(&r.junk_on_accept, true);
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c =
	    start_client(r.port, &rec, close_on_error ? NULL : keep_socket);
	assert_true(wait_orphan(&rec, MLLP_EV_INVALID_RESPONSE, false,
				MLLP_ERR_UNSOLICITED, 5000));
	if (close_on_error) {
		assert_true(tr_wait_count(&r.accepted, 2, 5000));
		atomic_store(&r.junk_on_accept, false);
		/* The junk-sending connections get closed; wait for a clean
		 * one. */
		assert_true(tr_wait_count(&r.accepted, 3, 5000));
		assert_true(tr_wait_until(client_up, c, 5000));
		int acc = atomic_load(&r.accepted);
		for (int i = 0; i < 100 && !mllp_client_is_connected(c); i++)
			tr_wait_until(client_up, c, 50);
		(void)acc;
	} else {
		assert_true(mllp_client_is_connected(c));
	}
	send_expect_aa(c, 12, 0);
	if (!close_on_error)
		assert_int_equal(atomic_load(&r.accepted), 1);
	stop_pair(c, &r);
}

static void test_unsolicited_close(void **state)
{
	(void)state;
	unsolicited(true);
}

static void test_unsolicited_drop(void **state)
{
	(void)state;
	unsolicited(false);
}

static void short_send_timeout(struct mllp_pool_config *cfg)
{
	cfg->conn.send_timeout = 300;
}

/* A receiver that stops reading: the send times out (context send), the
 * message may have reached it (partly written), the socket is closed. */
static void test_send_timeout(void **state)
{
	(void)state;
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c =
	    start_pair(&r, TR_STALL, &rec, short_send_timeout);
	size_t len = 64u << 20;
	char *big = malloc(len);
	memset(big, 'x', len);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(c, big, len, MLLP_PAYLOAD_RAW, 0, &f, NULL), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(res->error.context, MLLP_CTX_SEND);
	assert_false(res->written);
	assert_true(res->may_have_reached);
	assert_int_equal(ti_count(&rec, MLLP_EV_SEND_ERROR), 1);
	mllp_future_free(f);
	free(big);
	stop_pair(c, &r);
}

static void test_future_wait_timeout_and_stats(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	assert_string_equal(mllp_pool_backend(p), ti_backend_name());
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r.port, 2, NULL, &ep, NULL),
	    0);
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_future *f;
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.reply_timeout = 150;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 10), MLLP_ERR_TIMEOUT);
	assert_false(mllp_future_poll(f));
	assert_null(mllp_future_result(f));
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	mllp_future_free(f);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.errors, 1);
	assert_int_equal(st.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT], 1);
	assert_true(st.connects >= 2);
	free(m);
	mllp_pool_destroy(p);
	tr_stop(&r);
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
	cfg->conn.auto_reconnect_interval = 500;
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
	mllp_client_stop(c);
}

/* Payload checks happen on the caller's thread; a framed payload is sent
 * as is. */
static void test_payload_forms(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	struct mllp_future *f = (void *)1;
	struct mllp_error err;
	assert_int_equal(
	    mllp_client_send(c, "hello", 5, MLLP_PAYLOAD_HL7, 0, &f, &err),
	    MLLP_ERR_NOT_HL7);
	assert_null(f);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_int_equal(mllp_client_send(c, "\x0bMSH|^~\\&|", 10,
					  MLLP_PAYLOAD_AUTO, 0, &f, &err),
			 MLLP_ERR_PARTIAL_WRAP);
	size_t len;
	char *m = tr_hl7(21, &len);
	char *framed = malloc(len + 3);
	framed[0] = 0x0b;
	memcpy(framed + 1, m, len);
	framed[len + 1] = 0x1c;
	framed[len + 2] = 0x0d;
	assert_int_equal(
	    mllp_client_send(c, framed, len + 3, MLLP_PAYLOAD_HL7, 0, &f, NULL),
	    0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	assert_true(
	    mllp_str_eq(mllp_future_result(f)->ack.control_id, "CTRL21"));
	mllp_future_free(f);
	assert_int_equal(atomic_load(&r.frames), 1);
	free(framed);
	free(m);
	stop_pair(c, &r);
}

/* A receiver that answers before it has read the whole message (the
 * message is larger than the socket buffers, so the client is still
 * writing). The reply is taken only once the last byte is written: the
 * future does not complete before, and then completes accepted with
 * written true, in agreement with the sent counter. */
static void test_reply_before_send_completes(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1",
						ntohs(sa.sin_port), 1, NULL,
						&ep, NULL),
			 0);
	int cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);

	/* 32 MiB: far more than loopback socket buffers hold. */
	const char head[] = "MSH|^~\\&|S|S|R|R|20260101000000||ADT^A01|EARLY1|"
			    "P|2.5\rOBX|1|TX|||";
	size_t big = (size_t)32 << 20, len = sizeof(head) - 1 + big + 1;
	char *m = malloc(len);
	assert_non_null(m);
	memcpy(m, head, sizeof(head) - 1);
	memset(m + sizeof(head) - 1, 'x', big);
	m[len - 1] = '\r';
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.borrow_payload = true;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, NULL), 0);

	/* Read the start of the frame, then answer at once. */
	char buf[65536];
	size_t got = 0;
	while (got < 64) {
		ssize_t n = recv(cfd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	const char ack[] =
	    "\x0bMSH|^~\\&|R|R|S|S|20260101000001||ACK|A1|P|2.5\r"
	    "MSA|AA|EARLY1\r\x1c\r";
	assert_int_equal(send(cfd, ack, sizeof(ack) - 1, MSG_NOSIGNAL),
			 (ssize_t)(sizeof(ack) - 1));
	/* Not read further: the client cannot finish writing, so the
	 * future must not complete (it would, with the early reply). */
	assert_int_equal(mllp_future_wait(f, 300), MLLP_ERR_TIMEOUT);
	struct mllp_pool_stats st;
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 0);

	/* Read the rest of the frame: the send completes, then the reply
	 * is taken. */
	while (got < len + 3) {
		ssize_t n = recv(cfd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	const struct mllp_result *r = mllp_future_result(f);
	assert_int_equal(r->status, 0);
	assert_true(r->written);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 1);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	close(cfd);
	close(lfd);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_econnrefused),
	    cmocka_unit_test(test_late_listener_reconnect),
	    cmocka_unit_test(test_receiver_stop_detected),
	    cmocka_unit_test(test_send_after_close),
	    cmocka_unit_test(test_large_messages),
	    cmocka_unit_test(test_fragmented_reply),
	    cmocka_unit_test(test_split_trailer),
	    cmocka_unit_test(test_no_header),
	    cmocka_unit_test(test_data_after_trailer),
	    cmocka_unit_test(test_missing_trailer_timeout),
	    cmocka_unit_test(test_raw_echo),
	    cmocka_unit_test(test_concurrent_senders),
	    cmocka_unit_test(test_backoff_sequence),
	    cmocka_unit_test(test_keepalive_options),
	    cmocka_unit_test(test_close_on_recv_error_true),
	    cmocka_unit_test(test_close_on_recv_error_false),
	    cmocka_unit_test(test_reply_timer_reuse),
	    cmocka_unit_test(test_send_async),
	    cmocka_unit_test(test_telemetry_sequence),
	    cmocka_unit_test(test_reconnect),
	    cmocka_unit_test(test_stop_with_queued),
	    cmocka_unit_test(test_io_uring_unavailable),
	    cmocka_unit_test(test_bad_address),
	    cmocka_unit_test(test_cancel_and_would_block),
	    cmocka_unit_test(test_queue_timeout_waits),
	    cmocka_unit_test(test_unsolicited_close),
	    cmocka_unit_test(test_unsolicited_drop),
	    cmocka_unit_test(test_send_timeout),
	    cmocka_unit_test(test_future_wait_timeout_and_stats),
	    cmocka_unit_test(test_two_endpoints),
	    cmocka_unit_test(test_queued_survive_reconnect),
	    cmocka_unit_test(test_fixed_reconnect_interval),
	    cmocka_unit_test(test_payload_forms),
	    cmocka_unit_test(test_reply_before_send_completes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

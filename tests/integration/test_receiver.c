/* Integration tests of the MLLP receiver on loopback: the
 * reference receiver suite's applicable cases, framing edge cases, limits,
 * allow-list, dispatchers, 1,000 connections, and the pool talking to it.
 * Ephemeral ports only; every wait is bounded; no sleep synchronises. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "common.h" /* ti_backend(): MLLP_TEST_BACKEND, as the pool suites */

/* ---- recorder: log lines and telemetry, waitable ----------------------- */

#define MAX_LINES 256

struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *lines[MAX_LINES];
	int nlines;
	int ev[4];
	int reasons[8];
	int stop_errors[8]; /* error code of the last stop per reason */
	int replies;	    /* sum of reply_sent.replies */
	struct mllp_conn_info last_info;
};

static void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static void rec_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct rec *r = ctx;
	(void)l;
	pthread_mutex_lock(&r->mu);
	if (r->nlines < MAX_LINES)
		r->lines[r->nlines++] = strdup(line);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void rec_tel(void *ctx, const struct mllp_recv_event *ev)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->ev[ev->kind]++;
	if (ev->kind == MLLP_RECV_EV_CONNECTION_STOP) {
		r->reasons[ev->reason]++;
		r->stop_errors[ev->reason] = ev->error;
	}
	if (ev->kind == MLLP_RECV_EV_CONNECTION_START)
		r->last_info = *ev->conn;
	if (ev->kind == MLLP_RECV_EV_REPLY_SENT)
		r->replies += (int)ev->replies;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static int rec_count_lines(struct rec *r, const char *sub)
{
	pthread_mutex_lock(&r->mu);
	int n = 0;
	for (int i = 0; i < r->nlines; i++)
		n += strstr(r->lines[i], sub) != NULL;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Wait (bounded, 10 s) until *counter >= want; returns the value. */
static int rec_wait(struct rec *r, const int *counter, int want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	while (*counter < want &&
	       pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
	int v = *counter;
	pthread_mutex_unlock(&r->mu);
	return v;
}

/* Wait until a log line containing sub exists. */
static bool rec_wait_line(struct rec *r, const char *sub)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		for (int i = 0; i < r->nlines; i++)
			if (strstr(r->lines[i], sub)) {
				pthread_mutex_unlock(&r->mu);
				return true;
			}
		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&r->mu);
	return false;
}

/* ---- receiver helpers --------------------------------------------------- */

static void cfg_for(struct mllp_receiver_config *c, struct rec *r,
		    mllp_dispatch_fn fn, void *ctx)
{
	mllp_receiver_config_init(c);
	c->address = "127.0.0.1";
	c->port = 0;
	c->dispatch = fn;
	c->dispatch_ctx = ctx;
	c->log = rec_log;
	c->log_ctx = r;
	c->log_level = MLLP_LOG_DEBUG;
	c->telemetry = rec_tel;
	c->telemetry_ctx = r;
	c->ring_entries = 256;
	c->recv_buffers = 256;
	c->backend = ti_backend();
}

static struct mllp_receiver *start(const struct mllp_receiver_config *c)
{
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_start(c, &rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		exit(77);
	}
	if (rc != 0)
		fprintf(stderr, "receiver start: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_true(mllp_receiver_port(rv) != 0);
	return rv;
}

/* ---- a raw test client -------------------------------------------------- */

struct tc {
	int fd;
	struct mllp_decoder dec;
	unsigned char buf[65536];
	size_t off, len;
};

static int tc_connect_to(struct tc *t, const char *addr, uint16_t port)
{
	memset(t, 0, sizeof(*t));
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
	}
	t->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	mllp_decoder_init(&t->dec, &fc, NULL);
	return connect(t->fd, (struct sockaddr *)&ss, sl);
}

static void tc_connect(struct tc *t, uint16_t port)
{
	assert_int_equal(tc_connect_to(t, "127.0.0.1", port), 0);
}

static void tc_close(struct tc *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	mllp_decoder_free(&t->dec);
}

static void tc_write(struct tc *t, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w = send(t->fd, b, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

static void tc_send_frame(struct tc *t, const void *p, size_t n)
{
	unsigned char sb = MLLP_SB, tr[2] = {MLLP_EB, MLLP_CR};
	tc_write(t, &sb, 1);
	tc_write(t, p, n);
	tc_write(t, tr, 2);
}

/* Next reply frame, malloc'd (NUL added), or NULL on EOF/error/timeout. */
static char *tc_read_frame(struct tc *t, size_t *len)
{
	for (;;) {
		while (t->off < t->len) {
			size_t used;
			struct mllp_decoded ev;
			int rc = mllp_decoder_feed(&t->dec, t->buf + t->off,
						   t->len - t->off, &used, &ev);
			assert_int_equal(rc, 0);
			t->off += used;
			if (ev.kind == MLLP_DECODE_FRAME) {
				char *out = malloc(ev.len + 1);
				memcpy(out, ev.data, ev.len);
				out[ev.len] = 0;
				if (len)
					*len = ev.len;
				return out;
			}
		}
		ssize_t n = recv(t->fd, t->buf, sizeof(t->buf), 0);
		if (n <= 0)
			return NULL;
		t->off = 0;
		t->len = (size_t)n;
	}
}

/* True when the peer closed (EOF or reset) within the receive timeout. */
static bool tc_wait_closed(struct tc *t)
{
	for (;;) {
		ssize_t n = recv(t->fd, t->buf, sizeof(t->buf), 0);
		if (n == 0)
			return true;
		if (n < 0)
			return errno == ECONNRESET;
	}
}

static unsigned char *corpus(const char *name, size_t *len)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "messages/%s", name);
	return tu_corpus(rel, len);
}

/* rec_init(r), then a config for fn/ctx (cfg_for). */
static void rec_cfg(struct rec *r, struct mllp_receiver_config *c,
		    mllp_dispatch_fn fn, void *ctx)
{
	rec_init(r);
	cfg_for(c, r, fn, ctx);
}

/* rec_init(r), then start a receiver with the default config for fn/ctx. */
static struct mllp_receiver *start_with(struct rec *r, mllp_dispatch_fn fn,
					void *ctx)
{
	struct mllp_receiver_config c;
	rec_cfg(r, &c, fn, ctx);
	return start(&c);
}

/* start_with(), then connect t to the receiver. */
static struct mllp_receiver *start_connected(struct rec *r, struct tc *t,
					     mllp_dispatch_fn fn, void *ctx)
{
	struct mllp_receiver *rv = start_with(r, fn, ctx);
	tc_connect(t, mllp_receiver_port(rv));
	return rv;
}

/* Destroy the receiver, then free its recorder. */
static void finish(struct mllp_receiver *rv, struct rec *r)
{
	mllp_receiver_destroy(rv);
	rec_free(r);
}

/* Read replies from to to (inclusive); each holds fmt with its index. */
static void expect_ids(struct tc *t, const char *fmt, int from, int to)
{
	for (int i = from; i <= to; i++) {
		char *rep = tc_read_frame(t, NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), fmt, i);
		assert_non_null(strstr(rep, id));
		free(rep);
	}
}

/* Check reply is an ACK of msg with the given code. */
static void assert_ack(const void *msg, size_t mlen, const char *reply,
		       size_t rlen, const char *code)
{
	struct mllp_ack a;
	char why[256];
	enum mllp_verdict v =
	    mllp_ack_verify(msg, mlen, reply, rlen, &a, why, sizeof(why));
	if (v == MLLP_BAD_MESSAGE_CONTROL_ID || v == MLLP_INVALID_ACK_MESSAGE ||
	    v == MLLP_INVALID_MESSAGE)
		fprintf(stderr, "verify: %s\n", why);
	assert_true(v <= MLLP_APPLICATION_REJECT);
	assert_true(mllp_str_eq(a.code, code));
}

/* Read the next reply: an ACK of msg with the given code. */
static void expect_ack(struct tc *t, const void *msg, size_t mlen,
		       const char *code)
{
	size_t rl;
	char *rep = tc_read_frame(t, &rl);
	assert_non_null(rep);
	assert_ack(msg, mlen, rep, rl, code);
	free(rep);
}

/* Send msg framed, read the reply (for threads: no assertions): 1 when it
 * is an application accept of msg, 0 when not, -1 without a reply. */
static int round_trip(struct tc *t, const void *msg, size_t n)
{
	tc_send_frame(t, msg, n);
	size_t rl;
	char *rep = tc_read_frame(t, &rl);
	if (!rep)
		return -1;
	int ok = mllp_ack_verify(msg, n, rep, rl, NULL, NULL, 0) ==
		 MLLP_APPLICATION_ACCEPT;
	free(rep);
	return ok;
}

/* ---- the reference suite ------------------------------------------------ */

static void test_start_errors(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.port = MLLP_PORT_UNSET;
	struct mllp_receiver *rv = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_start(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(rv);
	assert_string_equal(err.message, "No tcp port provided");
	cfg_for(&c, &r, NULL, NULL);
	assert_int_equal(mllp_receiver_start(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "No dispatcher module provided");
	/* A default config has no port either. */
	mllp_receiver_config_init(&c);
	c.dispatch = mllp_dispatch_echo;
	assert_int_equal(mllp_receiver_start(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "No tcp port provided");
	cfg_for(&c, &r, mllp_dispatch_echo, NULL);
	const char *bad[] = {"10.0.0.0/33"};
	c.allowed_clients = bad;
	c.allowed_clients_count = 1;
	assert_int_equal(mllp_receiver_start(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	rec_free(&r);
}

static void test_port_in_use(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	struct mllp_receiver *a = start(&c);
	c.port = mllp_receiver_port(a);
	struct mllp_receiver *b = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_start(&c, &b, &err), -EADDRINUSE);
	assert_null(b);
	assert_non_null(strstr(err.message, "eaddrinuse"));
	mllp_receiver_destroy(a);
	rec_free(&r);
}

static void test_start_stop(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver *rv = start_with(&r, mllp_dispatch_echo, NULL);
	uint16_t port = mllp_receiver_port(rv);
	assert_string_equal(mllp_receiver_address(rv), "127.0.0.1");
	assert_string_equal(mllp_receiver_backend(rv),
			    ti_backend() == MLLP_BACKEND_EPOLL ? "epoll"
							       : "io_uring");
	assert_int_equal(
	    rec_count_lines(&r, "Starting listener on a non secured socket, "
				"data will be passed over unencrypted "
				"connection!"),
	    1);
	/* Open connections are closed by stop, with reason stopped. */
	struct tc t[3];
	for (int i = 0; i < 3; i++)
		tc_connect(&t[i], port);
	assert_int_equal(rec_wait(&r, &r.ev[MLLP_RECV_EV_CONNECTION_START], 3),
			 3);
	assert_int_equal(mllp_receiver_stop(rv), 0);
	assert_int_equal(mllp_receiver_stop(rv), 0); /* idempotent */
	assert_int_equal(r.reasons[MLLP_CLOSE_STOPPED], 3);
	for (int i = 0; i < 3; i++) {
		assert_true(tc_wait_closed(&t[i]));
		tc_close(&t[i]);
	}
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_accepted, 3);
	assert_int_equal(st.connections_active, 0);
	/* The port is free again once stop has returned. */
	struct tc x;
	assert_true(tc_connect_to(&x, "127.0.0.1", port) != 0);
	tc_close(&x);
	finish(rv, &r);
}

struct seen {
	struct mllp_conn_info info;
	void *ctx;
	enum mllp_msg_kind kind;
	int calls;
};

/* Written on the manager thread, read by the test: under a mutex (the
 * socket round trip orders them, but TSan cannot see that). */
static struct seen g_seen;
static pthread_mutex_t g_seen_mu = PTHREAD_MUTEX_INITIALIZER;

static void spy_dispatch(void *ctx, const struct mllp_message *m,
			 struct mllp_reply *rep)
{
	pthread_mutex_lock(&g_seen_mu);
	g_seen.info = *m->conn;
	g_seen.ctx = ctx;
	g_seen.kind = m->kind;
	g_seen.calls++;
	pthread_mutex_unlock(&g_seen_mu);
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = "hello back";
	rep->len = 10;
}

static void test_conn_info_and_context(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	int user_ctx = 42;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, spy_dispatch, &user_ctx);
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc t;
	tc_connect(&t, port);
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	getsockname(t.fd, (struct sockaddr *)&me, &ml);
	size_t ml2;
	unsigned char *m = corpus("adt_a01.hl7", &ml2);
	tc_send_frame(&t, m, ml2);
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_non_null(rep);
	assert_string_equal(rep, "hello back");
	free(rep);
	pthread_mutex_lock(&g_seen_mu);
	struct seen seen = g_seen;
	pthread_mutex_unlock(&g_seen_mu);
	assert_int_equal(seen.calls, 1);
	assert_ptr_equal(seen.ctx, &user_ctx);
	assert_int_equal(seen.kind, MLLP_MSG_HL7);
	assert_string_equal(seen.info.peer_address, "127.0.0.1");
	assert_int_equal(seen.info.peer_port, ntohs(me.sin_port));
	assert_string_equal(seen.info.local_address, "127.0.0.1");
	assert_int_equal(seen.info.local_port, port);
	assert_string_equal(seen.info.tls_peer_name, "");
	assert_true(seen.info.id >= 1);
	tc_close(&t);
	/* closed by peer */
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], 1), 1);
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

struct sender_arg {
	uint16_t port;
	int id;
	int ok;
};

static void *sender_main(void *arg)
{
	struct sender_arg *a = arg;
	struct tc t;
	if (tc_connect_to(&t, "127.0.0.1", a->port) != 0)
		return NULL;
	for (int i = 0; i < 200; i++) {
		char msg[256];
		int n = snprintf(msg, sizeof(msg),
				 "MSH|^~\\&|S%d|F|R|F|20240101||ADT^A01|"
				 "C%d-%d|P|2.5\rPID|1\r",
				 a->id, a->id, i);
		int v = round_trip(&t, msg, (size_t)n);
		if (v < 0)
			break;
		a->ok += v;
	}
	tc_close(&t);
	return NULL;
}

static void test_two_concurrent_senders(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver *rv = start_with(&r, mllp_dispatch_echo, NULL);
	pthread_t th[2];
	struct sender_arg a[2] = {{mllp_receiver_port(rv), 1, 0},
				  {mllp_receiver_port(rv), 2, 0}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, sender_main, &a[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(a[0].ok, 200);
	assert_int_equal(a[1].ok, 200);
	finish(rv, &r);
}

static void test_raw_text(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	tc_send_frame(&t, "hello", 5);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_close(&t);
	finish(rv, &r);
}

/* ---- framing ------------------------------------------------------------ */

static void test_many_frames_one_packet(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t fl;
	unsigned char *feed = corpus("feed_100.mllp", &fl);
	tc_write(&t, feed, fl); /* 100 frames in one write */
	/* Each reply in order: MSA-2 of reply i == FEED0000ii. */
	struct mllp_decoder d;
	mllp_decoder_init(&d, NULL, NULL);
	const unsigned char *p = feed;
	size_t left = fl;
	int n = 0;
	while (left > 0) {
		size_t used;
		struct mllp_decoded ev;
		assert_int_equal(mllp_decoder_feed(&d, p, left, &used, &ev), 0);
		p += used;
		left -= used;
		if (ev.kind != MLLP_DECODE_FRAME)
			continue;
		size_t rl;
		char *rep = tc_read_frame(&t, &rl);
		assert_non_null(rep);
		assert_ack(ev.data, ev.len, rep, rl, "AA");
		char id[32];
		snprintf(id, sizeof(id), "|FEED%06d|", n);
		assert_non_null(strstr(rep, id));
		free(rep);
		n++;
	}
	assert_int_equal(n, 100);
	/* Telemetry: 100 messages, 100 replies (coalesced writes). */
	assert_int_equal(rec_wait(&r, &r.replies, 100), 100);
	assert_int_equal(r.ev[MLLP_RECV_EV_MESSAGE_RECEIVED], 100);
	assert_true(r.ev[MLLP_RECV_EV_REPLY_SENT] <= 100);
	mllp_decoder_free(&d);
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(feed);
	rec_free(&r);
}

static void test_junk_between_frames(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	/* frame, junk, frame, LF (netcat), frame, CRLF: one packet. */
	const char pkt[] =
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J1|P|2.5\r\x1c\r"
	    "junk"
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J2|P|2.5\r\x1c\r"
	    "\n"
	    "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J3|P|2.5\r\x1c\r"
	    "\r\n";
	tc_write(&t, pkt, sizeof(pkt) - 1);
	expect_ids(&t, "MSA|AA|J%d", 1, 3);
	/* frame + junk + partial frame, then the rest. */
	const char p1[] = "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J4|P|2.5\r\x1c\r"
			  "xx"
			  "\x0bMSH|^~\\&|A|B|C|D|20";
	const char p2[] = "24||ADT^A01|J5|P|2.5\r\x1c";
	tc_write(&t, p1, sizeof(p1) - 1);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(strstr(rep, "MSA|AA|J4"));
	free(rep);
	tc_write(&t, p2, sizeof(p2) - 1);
	/* EB at the end of one packet, CR + next frame in the next. */
	const char p3[] =
	    "\r\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|J6|P|2.5\r\x1c\r";
	tc_write(&t, p3, sizeof(p3) - 1);
	expect_ids(&t, "MSA|AA|J%d", 5, 6);
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.ev[MLLP_RECV_EV_CONNECTION_STOP], 1),
			 1);
	assert_int_equal(
	    rec_count_lines(&r, "discarding unexpected data (4 bytes)"), 1);
	assert_int_equal(
	    rec_count_lines(&r, "discarding unexpected data (2 bytes)"), 1);
	assert_int_equal(rec_count_lines(&r, "discarding unexpected data"), 2);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, 6);
	assert_int_equal(st.replies_sent, 6);
	assert_int_equal(st.junk_bytes, 4 + 1 + 2 + 2);
	finish(rv, &r);
}

static void test_split_every_byte(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t ml;
	unsigned char *m = corpus("adt_a01.hl7", &ml);
	size_t fl = ml + 3;
	unsigned char *f = malloc(fl);
	size_t got;
	assert_int_equal(mllp_wrap(NULL, m, ml, f, fl, &got), 0);
	assert_int_equal(got, fl);
	/* Every split point: two writes, one reply each time. */
	for (size_t k = 1; k < fl; k++) {
		tc_write(&t, f, k);
		tc_write(&t, f + k, fl - k);
		expect_ack(&t, m, ml, "AA");
	}
	/* One byte per write. */
	for (size_t k = 0; k < fl; k++)
		tc_write(&t, f + k, 1);
	expect_ack(&t, m, ml, "AA");
	tc_close(&t);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, fl);
	assert_int_equal(st.junk_bytes, 0);
	mllp_receiver_destroy(rv);
	free(f);
	free(m);
	rec_free(&r);
}

/* ---- limits ------------------------------------------------------------- */

static void test_oversize_frame(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_frame = 1024;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	/* One of exactly max_frame passes. */
	char *big = malloc(4096);
	memset(big, 'x', 4096);
	tc_send_frame(&t, big, 1024);
	char *rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_send_frame(&t, big, 4096);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_ERROR], 1), 1);
	assert_int_equal(r.stop_errors[MLLP_CLOSE_ERROR],
			 MLLP_ERR_FRAME_TOO_BIG);
	assert_int_equal(rec_count_lines(&r, "frame bigger than 1024 bytes"),
			 1);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.frames_too_big, 1);
	mllp_receiver_destroy(rv);
	free(big);
	rec_free(&r);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.idle_timeout_ms = 300;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	/* Silent client: closed after the timeout. */
	struct tc t;
	tc_connect(&t, port);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	/* Slowloris: one byte every 50 ms of a frame that never ends. The
	 * trickle is the load pattern, not synchronisation. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	tc_connect(&t, port);
	const char *slow = "\x0bMSH|^~\\&|slow|loris|which|never|ends|at|all";
	bool closed = false;
	for (size_t i = 0; i < strlen(slow) && !closed; i++) {
		if (send(t.fd, slow + i, 1, MSG_NOSIGNAL) != 1) {
			closed = true;
			break;
		}
		struct pollfd pfd = {.fd = t.fd, .events = POLLIN};
		if (poll(&pfd, 1, 50) == 1)
			closed = true;
	}
	assert_true(closed);
	assert_true(tc_wait_closed(&t));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(secs < 2.0);
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_IDLE_TIMEOUT], 2),
			 2);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_idle_timeout, 2);
	finish(rv, &r);
}

/* ---- allow-list --------------------------------------------------------- */

/* Start with the allow-list, connect from addr; true when served. */
static bool try_allow(const char *listen, const char *from,
		      const char *const *allow, size_t n, struct rec *r)
{
	struct mllp_receiver_config c;
	cfg_for(&c, r, mllp_dispatch_echo, NULL);
	c.address = listen;
	c.allowed_clients = allow;
	c.allowed_clients_count = n;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	assert_int_equal(tc_connect_to(&t, from, mllp_receiver_port(rv)), 0);
	bool ok = false;
	const char *msg = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|AL1|P|2.5\r";
	unsigned char sb = MLLP_SB, tr[2] = {MLLP_EB, MLLP_CR};
	/* A refused client may see its writes fail (reset). */
	if (send(t.fd, &sb, 1, MSG_NOSIGNAL) == 1 &&
	    send(t.fd, msg, strlen(msg), MSG_NOSIGNAL) > 0 &&
	    send(t.fd, tr, 2, MSG_NOSIGNAL) == 2) {
		char *rep = tc_read_frame(&t, NULL);
		ok = rep != NULL;
		free(rep);
	}
	tc_close(&t);
	mllp_receiver_destroy(rv);
	return ok;
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	s6.sin6_addr = in6addr_loopback;
	bool ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	close(fd);
	return ok;
}

static void test_allow_list(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	const char *deny4[] = {"10.1.2.3"};
	const char *allow4[] = {"127.0.0.1"};
	const char *cidr_ok[] = {"192.168.0.0/16", "127.0.0.0/8"};
	const char *cidr_no[] = {"127.0.1.0/24"};
	const char *names[] = {"no-such-host.invalid", "localhost"};
	const char *gone[] = {"no-such-host.invalid"};
	assert_false(try_allow("127.0.0.1", "127.0.0.1", deny4, 1, &r));
	assert_true(rec_count_lines(&r, "refused connection from 127.0.0.1") >=
		    1);
	assert_true(r.reasons[MLLP_CLOSE_REFUSED] >= 1);
	assert_true(try_allow("127.0.0.1", "127.0.0.1", allow4, 1, &r));
	assert_true(try_allow("127.0.0.1", "127.0.0.1", cidr_ok, 2, &r));
	assert_false(try_allow("127.0.0.1", "127.0.0.1", cidr_no, 1, &r));
	assert_true(try_allow("127.0.0.1", "127.0.0.1", names, 2, &r));
	assert_true(
	    rec_count_lines(&r, "cannot resolve no-such-host.invalid") >= 1);
	assert_false(try_allow("127.0.0.1", "127.0.0.1", gone, 1, &r));
	if (have_ipv6()) {
		const char *a6[] = {"::1"};
		const char *c6ok[] = {"::/64"};
		const char *c6no[] = {"fd00::/8"};
		const char *v4only[] = {"127.0.0.1"};
		assert_true(try_allow("::1", "::1", a6, 1, &r));
		assert_true(try_allow("::1", "::1", c6ok, 1, &r));
		assert_false(try_allow("::1", "::1", c6no, 1, &r));
		assert_false(try_allow("::1", "::1", v4only, 1, &r));
		/* Dual-stack listener: an IPv4 client (v4-mapped) matches
		 * IPv4 entries. */
		assert_true(try_allow("::", "127.0.0.1", v4only, 1, &r));
		assert_false(try_allow("::", "127.0.0.1", a6, 1, &r));
	} else {
		fprintf(stderr, "no IPv6 loopback: IPv6 cases skipped\n");
	}
	rec_free(&r);
}

/* ---- scale -------------------------------------------------------------- */

static void test_thousand_connections(void **state)
{
	(void)state;
	enum { N = 1000 };
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * N + 100) {
		rl.rlim_cur =
		    rl.rlim_max < 2 * N + 100 ? rl.rlim_max : 2 * N + 100;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < 2 * N + 100) {
			fprintf(stderr, "RLIMIT_NOFILE too low, skipped\n");
			return;
		}
	}
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.ring_entries = 1024;
	c.log_level = MLLP_LOG_WARNING;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc *t = calloc(N, sizeof(*t));
	for (int i = 0; i < N; i++)
		tc_connect(&t[i], port);
	assert_int_equal(rec_wait(&r, &r.ev[MLLP_RECV_EV_CONNECTION_START], N),
			 N);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_active, N);
	for (int i = 0; i < N; i++) {
		char msg[128];
		int n =
		    snprintf(msg, sizeof(msg),
			     "MSH|^~\\&|A|B|C|D|2024||ADT^A01|K%d|P|2.5\r", i);
		tc_send_frame(&t[i], msg, (size_t)n);
	}
	for (int i = 0; i < N; i++) {
		char *rep = tc_read_frame(&t[i], NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), "MSA|AA|K%d|", i);
		assert_non_null(strstr(rep, id));
		free(rep);
	}
	for (int i = 0; i < N; i++)
		tc_close(&t[i]);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], N), N);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_active, 0);
	assert_int_equal(st.replies_sent, N);
	mllp_receiver_destroy(rv);
	free(t);
	rec_free(&r);
}

static void test_max_connections(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_connections = 2;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc t[3];
	for (int i = 0; i < 3; i++)
		tc_connect(&t[i], port);
	assert_true(tc_wait_closed(&t[2]));
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_REFUSED], 1), 1);
	assert_true(rec_wait_line(&r, "max_connections reached"));
	tc_send_frame(&t[0], "x", 1);
	char *rep = tc_read_frame(&t[0], NULL);
	assert_non_null(rep);
	free(rep);
	for (int i = 0; i < 3; i++)
		tc_close(&t[i]);
	finish(rv, &r);
}

/* ---- dispatchers -------------------------------------------------------- */

static void test_echo_dispatcher(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t ml;
	unsigned char *m = corpus("adt_a01.hl7", &ml);
	tc_send_frame(&t, m, ml);
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_ack(m, ml, rep, rl, "AA");
	assert_non_null(strstr(
	    rep, "MSA|AA|01052901|A real MLLP message dispatcher was not "
		 "provided"));
	free(rep);
	/* Unparsable HL7: AR with the reason. */
	tc_send_frame(&t, "MSH", 3);
	rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_non_null(strstr(rep, "MSA|AR|"));
	assert_non_null(strstr(rep, "Message was not parsable as HL7"));
	free(rep);
	tc_send_frame(&t, "not hl7 at all", 14);
	rep = tc_read_frame(&t, NULL);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

/* Send n messages pipelined, count the codes of the replies. */
static void run_mix(struct mllp_ack_dispatcher *d, int n, uint64_t out[6])
{
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_ack, d);
	size_t cap = (size_t)n * 80, len = 0;
	char *buf = malloc(cap);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|"
					"M%d|P|2.5\r\x1c\r",
					i);
	tc_write(&t, buf, len);
	static const char *codes[6] = {"AA", "AE", "AR", "CA", "CE", "CR"};
	memset(out, 0, 6 * sizeof(out[0]));
	for (int i = 0; i < n; i++) {
		char *rep = tc_read_frame(&t, NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), "|M%d", i);
		char *msa = strstr(rep, "MSA|");
		assert_non_null(msa);
		assert_true(strncmp(msa + 6, id, strlen(id)) == 0);
		for (int k = 0; k < 6; k++)
			if (strncmp(msa + 4, codes[k], 2) == 0)
				out[k]++;
		free(rep);
	}
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(buf);
	rec_free(&r);
}

static void test_ack_mix(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=98,XX=1"),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=0"),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=98,AE=1,AR=1"), 0);
	d.seed = 42;
	uint64_t a[6], b[6];
	run_mix(&d, 2000, a);
	for (int k = 0; k < 6; k++)
		assert_int_equal(a[k], d.counts[k]);
	assert_int_equal(a[0] + a[1] + a[2], 2000);
	assert_true(a[0] > 1900 && a[1] > 0 && a[2] > 0);
	assert_int_equal(a[3] + a[4] + a[5], 0);
	/* Same seed, same sequence. */
	struct mllp_ack_dispatcher d2;
	mllp_ack_dispatcher_init(&d2);
	mllp_ack_dispatcher_set_mix(&d2, "AA=98,AE=1,AR=1");
	d2.seed = 42;
	run_mix(&d2, 2000, b);
	assert_memory_equal(a, b, sizeof(a));
	/* Fixed code. */
	struct mllp_ack_dispatcher d3;
	mllp_ack_dispatcher_init(&d3);
	d3.code = "CE";
	run_mix(&d3, 10, b);
	assert_int_equal(b[MLLP_ACK_CE], 10);
}

static void test_ack_delay(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.delay_ms = 150;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t counts[6];
	run_mix(&d, 5, counts); /* in order, checked by run_mix */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= 150.0);
	assert_int_equal(counts[0], 5);

	/* Stop while replies are held: dropped, nothing leaks. */
	struct rec r;
	rec_init(&r);
	d.delay_ms = 60000;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|S1|P|2.5\r", 40);
	struct mllp_receiver_stats st;
	assert_int_equal(rec_wait(&r, &r.ev[MLLP_RECV_EV_MESSAGE_RECEIVED], 1),
			 1);
	mllp_receiver_stop(rv);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.replies_sent, 0);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	finish(rv, &r);
}

/* A peer that sends without reading its replies is closed once the
 * replies waiting for it exceed max_reply_backlog. */
static void test_reply_backlog(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_reply_backlog = 64 * 1024;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	memset(&t, 0, sizeof(t));
	t.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	setsockopt(t.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct timeval tv = {.tv_sec = 10};
	setsockopt(t.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(mllp_receiver_port(rv))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(t.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	char chunk[64 * 1024];
	const char *f = "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|B1|P|2.5\r\x1c\r";
	size_t fl = strlen(f), n = 0;
	while (n + fl <= sizeof(chunk)) {
		memcpy(chunk + n, f, fl);
		n += fl;
	}
	bool closed = false;
	for (int i = 0; i < 2000 && !closed; i++) /* at most ~128 MiB */
		closed = send(t.fd, chunk, n, MSG_NOSIGNAL) < 0;
	assert_true(closed);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_ERROR], 1), 1);
	assert_int_equal(r.stop_errors[MLLP_CLOSE_ERROR], MLLP_ERR_WOULD_BLOCK);
	assert_true(rec_wait_line(&r, "reply backlog exceeded"));
	close(t.fd);
	finish(rv, &r);
}

/* ---- reply kinds -------------------------------------------------------- */

static void kinds_dispatch(void *ctx, const struct mllp_message *m,
			   struct mllp_reply *rep)
{
	(void)ctx;
	char w[16] = {0};
	memcpy(w, m->data, m->len < 15 ? m->len : 15);
	if (!strcmp(w, "none")) {
		rep->kind = MLLP_REPLY_NONE;
	} else if (!strcmp(w, "framed")) {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = "\x0bX\x1c\r";
		rep->len = 4;
	} else if (!strcmp(w, "bad")) {
		rep->kind = MLLP_REPLY_ACK;
		rep->ack_code = "ZZ"; /* invalid: logged, no reply */
	} else if (!strcmp(w, "partial")) {
		rep->kind = MLLP_REPLY_BYTES; /* partially wrapped: refused */
		rep->data = "\x0b"
			    "foo";
		rep->len = 4;
	} else if (!strcmp(w, "empty")) {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = NULL;
		rep->len = 0;
	} else if (m->kind == MLLP_MSG_HL7) {
		rep->kind = MLLP_REPLY_ACK;
		rep->ack_code = "AE";
		rep->ack_text = "bad|thing";
	} else {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = "last";
		rep->len = 4;
	}
}

static void test_reply_kinds(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, kinds_dispatch, NULL);
	c.keep_control_id = true;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	const char *hl7 = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|K1|P|2.5\r";
	const char *seq[] = {"none",	"framed", "bad",  hl7,
			     "partial", "empty",  "other"};
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		tc_send_frame(&t, seq[i], strlen(seq[i]));
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_string_equal(rep, "X");
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_ack(hl7, strlen(hl7), rep, rl, "AE");
	/* keep_control_id: the ACK's MSH-10 is the message's. */
	assert_non_null(strstr(rep, "|ACK^A01^ACK|K1|"));
	assert_non_null(strstr(rep, "MSA|AE|K1|bad\\F\\thing"));
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_int_equal(rl, 0);
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_string_equal(rep, "last");
	free(rep);
	tc_close(&t);
	assert_true(rec_wait_line(&r, "cannot build the reply"));
	assert_int_equal(rec_count_lines(&r, "cannot build the reply"), 2);
	finish(rv, &r);
}

/* Few, small provided buffers: the ring runs dry and the backend holds
 * the starved receives until buffers are given back; big frames arrive in
 * many pieces on several connections. */
struct big_arg {
	uint16_t port;
	const unsigned char *m;
	size_t len;
	int ok;
};

static void *big_main(void *arg)
{
	struct big_arg *a = arg;
	struct tc t;
	if (tc_connect_to(&t, "127.0.0.1", a->port) != 0)
		return NULL;
	for (int i = 0; i < 2; i++) {
		if (round_trip(&t, a->m, a->len) > 0)
			a->ok++;
	}
	tc_close(&t);
	return NULL;
}

static void test_tiny_buffers_big_frames(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.recv_buffers = 4;
	c.recv_buffer_size = 1024;
	c.read_buffer_keep = 4096;
	struct mllp_receiver *rv = start(&c);
	size_t ml;
	unsigned char *m = corpus("oru_r01_pdf_1mb.hl7", &ml);
	enum { N = 6 };
	pthread_t th[N];
	struct big_arg a[N];
	for (int i = 0; i < N; i++) {
		a[i] = (struct big_arg){mllp_receiver_port(rv), m, ml, 0};
		pthread_create(&th[i], NULL, big_main, &a[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].ok, 2);
	}
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

/* ---- the pool end to end ----------------------------------------------- */

static void test_pool_end_to_end(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	c.log_level = MLLP_LOG_WARNING;
	struct mllp_receiver *rv = start(&c);
	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.log = ti_quiet_log;
	pc.ring_entries = 64;
	pc.recv_buffers = 64;
	pc.backend = ti_backend();
	struct mllp_pool *pool = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_create(&pc, &pool, &err), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(pool, "127.0.0.1",
						mllp_receiver_port(rv), 4, NULL,
						&ep, &err),
			 0);
	char **names;
	size_t nn = tu_corpus_list("messages", &names);
	int sent = 0;
	enum { ROUNDS = 20 };
	struct mllp_future *fs[ROUNDS * 16];
	size_t nf = 0;
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < nn && nf < ROUNDS * 16; i++) {
			if (strstr(names[i], "feed_100") ||
			    strstr(names[i], "batch_3"))
				continue;
			if (round > 0 && strstr(names[i], "1mb"))
				continue;
			size_t ml;
			unsigned char *m = tu_corpus(names[i], &ml);
			struct mllp_send_options so;
			mllp_send_options_init(&so);
			so.kind = MLLP_PAYLOAD_HL7;
			so.block = true;
			int rc =
			    mllp_pool_send(pool, ep, m, ml, &so, &fs[nf], &err);
			if (rc != 0)
				fprintf(stderr, "%s: %s\n", names[i],
					err.message);
			assert_int_equal(rc, 0);
			nf++;
			sent++;
			free(m);
		}
	}
	for (size_t i = 0; i < nf; i++) {
		assert_int_equal(mllp_future_wait(fs[i], 20000), 0);
		const struct mllp_result *res = mllp_future_result(fs[i]);
		if (res->status != 0)
			fprintf(stderr, "future %zu: %s\n", i,
				res->error.message);
		assert_int_equal(res->status, 0);
		assert_true(res->has_verdict);
		assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
		mllp_future_free(fs[i]);
	}
	mllp_pool_destroy(pool);
	tu_free_names(names, nn);
	/* The single-client API too. */
	struct mllp_client *cl = NULL;
	assert_int_equal(mllp_client_start("127.0.0.1", mllp_receiver_port(rv),
					   &pc, &cl, &err),
			 0);
	size_t ml;
	unsigned char *m = corpus("adt_a08_utf8.hl7", &ml);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(cl, m, ml, MLLP_PAYLOAD_HL7, 5000, &f, &err), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(m);
	mllp_client_stop(cl);
	mllp_receiver_stop(rv);
	assert_int_equal(d.counts[MLLP_ACK_AA], (uint64_t)sent + 1);
	struct mllp_receiver_stats st;
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, (uint64_t)sent + 1);
	assert_int_equal(st.messages_hl7, (uint64_t)sent + 1);
	finish(rv, &r);
}

/* A peer that half-closes after sending still gets every reply. */
static void test_half_close_gets_replies(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.delay_ms = 50;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|H1|P|2.5\r", 40);
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|H2|P|2.5\r", 40);
	shutdown(t.fd, SHUT_WR);
	expect_ids(&t, "MSA|AA|H%d", 1, 2);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], 1), 1);
	finish(rv, &r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_start_errors),
	    cmocka_unit_test(test_port_in_use),
	    cmocka_unit_test(test_start_stop),
	    cmocka_unit_test(test_conn_info_and_context),
	    cmocka_unit_test(test_two_concurrent_senders),
	    cmocka_unit_test(test_raw_text),
	    cmocka_unit_test(test_many_frames_one_packet),
	    cmocka_unit_test(test_junk_between_frames),
	    cmocka_unit_test(test_split_every_byte),
	    cmocka_unit_test(test_oversize_frame),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_thousand_connections),
	    cmocka_unit_test(test_max_connections),
	    cmocka_unit_test(test_echo_dispatcher),
	    cmocka_unit_test(test_ack_mix),
	    cmocka_unit_test(test_ack_delay),
	    cmocka_unit_test(test_reply_backlog),
	    cmocka_unit_test(test_reply_kinds),
	    cmocka_unit_test(test_tiny_buffers_big_frames),
	    cmocka_unit_test(test_half_close_gets_replies),
	    cmocka_unit_test(test_pool_end_to_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

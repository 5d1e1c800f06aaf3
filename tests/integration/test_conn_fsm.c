/* The pool's connection state machine and its timers on the fake backend
 * (fake_backend.h): scripted connects, writes and replies, and a virtual
 * clock, so every test asserts the exact sequence of operations and the
 * exact virtual time of each, with no network I/O and no sleep. Times in
 * the expected traces are ms since the pool started; message n (< 10) is
 * 85 bytes framed, its ACK 76. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include <mllp/mllp.h>

#include "fake_backend.h"
#include "pool_internal.h"

#define PORT 2575

struct fsm {
	struct mllp_pool *p;
	uint32_t ep;
};

/* The pool of the running test (torn down by fsm_teardown, also after a
 * failed assertion). */
static struct fsm cur;

/* A pool on the fake backend with one endpoint of one connection;
 * o NULL: the documented defaults. */
static void fsm_up(struct fsm *t, const struct mllp_conn_options *o)
{
	struct mllp_pool_config cfg;
	fb_config(&cfg);
	if (o)
		cfg.conn = *o;
	struct mllp_error err;
	assert_int_equal(mllpi_pool_create_ops(&cfg, &fb_ops, &t->p, &err), 0);
	cur = *t;
	assert_int_equal(mllp_pool_add_endpoint(t->p, "127.0.0.1", PORT, 1,
						NULL, &t->ep, &err),
			 0);
}

static int fsm_setup(void **state)
{
	(void)state;
	memset(&cur, 0, sizeof(cur));
	fb_init();
	return 0;
}

/* Stop and destroy (the clock stays: stopping needs no time); the seam
 * was used correctly and nothing was left outstanding. */
static int fsm_teardown(void **state)
{
	(void)state;
	mllp_pool_destroy(cur.p);
	cur.p = NULL;
	fb_fini();
	if (fb_violations()[0]) {
		fprintf(stderr, "fake backend: %s", fb_violations());
		return -1;
	}
	return 0;
}

static char *hl7(int n, size_t *len)
{
	char *s = malloc(256);
	assert_non_null(s);
	int l = snprintf(s, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|"
			 "CTRL%d|P|2.5\rPID|1||%d||DOE^JOHN\r",
			 n, n);
	*len = (size_t)l;
	return s;
}

/* Frame length of message n: SB + payload + EB CR. */
static size_t frame_len(int n)
{
	size_t len;
	free(hl7(n, &len));
	return len + 3;
}

struct calls {
	int n;
	int status;
};

static void count_cb(struct mllp_future *f, void *arg)
{
	struct calls *c = arg;
	c->n++;
	c->status = mllp_future_result(f)->status;
}

static struct mllp_future *send_cb(struct fsm *t, int n, struct calls *c)
{
	size_t len;
	char *m = hl7(n, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	if (c) {
		o.callback = count_cb;
		o.callback_arg = c;
	}
	struct mllp_future *f = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(t->p, t->ep, m, len, &o, &f, &err), 0);
	free(m);
	return f;
}

static struct mllp_future *send_n(struct fsm *t, int n)
{
	return send_cb(t, n, NULL);
}

/* The future is complete (the manager is quiescent: no waiting needed). */
static const struct mllp_result *done(struct mllp_future *f)
{
	assert_true(mllp_future_poll(f));
	return mllp_future_result(f);
}

static void assert_failed(const struct mllp_result *r, int reason,
			  enum mllp_context ctx, const char *msg, bool written,
			  bool may_have_reached)
{
	assert_int_equal(r->status, reason);
	assert_int_equal(r->error.reason, reason);
	assert_int_equal(r->error.context, ctx);
	assert_string_equal(r->error.message, msg);
	assert_int_equal(r->written, written);
	assert_int_equal(r->may_have_reached, may_have_reached);
}

static void assert_acked(const struct mllp_result *r)
{
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
}

/* ---- connect timeout and backoff --------------------------------------- */

/* Every connect hangs: each attempt is canceled at connect_timeout (2 s)
 * and reported as a timeout, and the next waits 1 s, 2 s, 4 s ... capped
 * at backoff_max_s (180 s). */
static void test_connect_timeout_backoff(void **state)
{
	(void)state;
	fb_default(FB_CONNECT, FB_CONNECT_HANG);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_run_until(455000);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "0 connect s1\n"
	    "2000 cancel s1\n"
	    "2000 event connection_failure conn0 ETIMEDOUT delay 1000\n"
	    "3000 connect s2\n"
	    "5000 cancel s2\n"
	    "5000 event connection_failure conn0 ETIMEDOUT delay 2000\n"
	    "7000 connect s3\n"
	    "9000 cancel s3\n"
	    "9000 event connection_failure conn0 ETIMEDOUT delay 4000\n"
	    "13000 connect s4\n"
	    "15000 cancel s4\n"
	    "15000 event connection_failure conn0 ETIMEDOUT delay 8000\n"
	    "23000 connect s5\n"
	    "25000 cancel s5\n"
	    "25000 event connection_failure conn0 ETIMEDOUT delay 16000\n"
	    "41000 connect s6\n"
	    "43000 cancel s6\n"
	    "43000 event connection_failure conn0 ETIMEDOUT delay 32000\n"
	    "75000 connect s7\n"
	    "77000 cancel s7\n"
	    "77000 event connection_failure conn0 ETIMEDOUT delay 64000\n"
	    "141000 connect s8\n"
	    "143000 cancel s8\n"
	    "143000 event connection_failure conn0 ETIMEDOUT delay 128000\n"
	    "271000 connect s9\n"
	    "273000 cancel s9\n"
	    "273000 event connection_failure conn0 ETIMEDOUT delay 180000\n"
	    "453000 connect s10\n"
	    "455000 cancel s10\n"
	    "455000 event connection_failure conn0 ETIMEDOUT delay 180000\n");
	/* The canceled connect is what reports the timeout. */
	assert_non_null(strstr(fb_trace(FB_T_DONE | FB_T_LOG),
			       "2000 done s1 connect ECANCELED\n"
			       "2000 log Error connecting to 127.0.0.1:2575 "
			       "=> timed out\n"));
	/* A send while down fails at once with the last connect error. */
	size_t len;
	char *m = hl7(1, &len);
	struct mllp_future *f = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(t.p, t.ep, m, len, NULL, &f, &err),
			 -ETIMEDOUT);
	free(m);
	assert_null(f);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_string_equal(err.message, "timed out");
}

/* use_backoff false: every retry waits auto_reconnect_interval. */
static void test_connect_timeout_fixed(void **state)
{
	(void)state;
	fb_default(FB_CONNECT, FB_CONNECT_HANG);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.use_backoff = false;
	o.auto_reconnect_interval_ms = 250;
	o.connect_timeout_ms = 1000;
	struct fsm t;
	fsm_up(&t, &o);
	fb_run_until(3750);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "0 connect s1\n"
	    "1000 cancel s1\n"
	    "1000 event connection_failure conn0 ETIMEDOUT delay 250\n"
	    "1250 connect s2\n"
	    "2250 cancel s2\n"
	    "2250 event connection_failure conn0 ETIMEDOUT delay 250\n"
	    "2500 connect s3\n"
	    "3500 cancel s3\n"
	    "3500 event connection_failure conn0 ETIMEDOUT delay 250\n"
	    "3750 connect s4\n");
}

/* Refused twice (1 s, then 2 s later), then connected: recv armed, a
 * message goes through, and the backoff starts again at 1 s. */
static void test_refused_then_reconnect(void **state)
{
	(void)state;
	fb_next(FB_CONNECT, FB_CONNECT_REFUSE);
	fb_next(FB_CONNECT, FB_CONNECT_REFUSE);
	fb_reply_delay_ms(5);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_run_until(3000);
	assert_string_equal(
	    fb_trace(FB_T_ALL),
	    "0 connect s1\n"
	    "0 done s1 connect ECONNREFUSED\n"
	    "0 log Error connecting to 127.0.0.1:2575 => connection refused\n"
	    "0 event connection_failure conn0 ECONNREFUSED delay 1000\n"
	    "1000 connect s2\n"
	    "1000 done s2 connect ECONNREFUSED\n"
	    "1000 log Error connecting to 127.0.0.1:2575 => connection "
	    "refused\n"
	    "1000 event connection_failure conn0 ECONNREFUSED delay 2000\n"
	    "3000 connect s3\n"
	    "3000 done s3 connect 0\n"
	    "3000 event connection_success conn0\n"
	    "3000 recv s3\n");
	assert_true(mllp_pool_is_connected(t.p, t.ep, 0));
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(3005);
	char want[256];
	snprintf(want, sizeof(want),
		 "3000 send s3 %zu\n"
		 "3000 done s3 send %zu\n"
		 "3005 done s3 recv 76\n"
		 "3005 event receive_valid conn0\n",
		 frame_len(1), frame_len(1));
	assert_string_equal(fb_trace(FB_T_ALL), want);
	const struct mllp_result *r = done(f);
	assert_acked(r);
	assert_int_equal(r->latency_us, 5000);
	mllp_future_free(f);
	/* The peer closes with the next message in flight: reconnect at
	 * once; that attempt is refused and the next waits 1 s, not 4 s (the
	 * connect reset the backoff). */
	fb_trace_clear();
	fb_next(FB_CONNECT, FB_CONNECT_REFUSE);
	fb_next(FB_REPLY, FB_REPLY_EOF);
	f = send_n(&t, 2);
	fb_run_until(4010);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "3005 send s3 85\n"
	    "3010 event connection_closed conn0 CLOSED delay 0\n"
	    "3010 connect s4\n"
	    "3010 event connection_failure conn0 ECONNREFUSED delay 1000\n"
	    "4010 connect s5\n"
	    "4010 event connection_success conn0\n"
	    "4010 recv s5\n");
	assert_failed(done(f), MLLP_ERR_CLOSED, MLLP_CTX_RECEIVE,
		      "connection closed", true, true);
	mllp_future_free(f);
}

/* A connection closed by the peer while idle, before any reply on it,
 * reconnects after the backoff delay (no connect/close loop against a
 * receiver that drops every connection); a send meanwhile fails at once
 * with "connection closed" and reconnects now. Once a reply proved the
 * connection, a close reconnects at once. */
static void test_idle_close_before_reply(void **state)
{
	(void)state;
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	fb_peer(1, FB_REPLY_EOF);
	fb_run_until(500);
	assert_string_equal(
	    fb_trace(FB_T_ALL),
	    "0 done s1 recv EOF\n"
	    "0 event connection_closed conn0 CLOSED delay 1000\n");
	assert_false(mllp_pool_is_connected(t.p, t.ep, 0));
	size_t len;
	char *m = hl7(1, &len);
	struct mllp_future *f = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_send(t.p, t.ep, m, len, NULL, &f, &err),
			 MLLP_ERR_CLOSED);
	free(m);
	assert_null(f);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_string_equal(err.message, "connection closed");
	fb_run_until(2000);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "0 event connection_closed conn0 CLOSED delay 1000\n"
	    "500 connect s2\n"
	    "500 event connection_success conn0\n"
	    "500 recv s2\n");
	/* Proven by a reply: closed, then connected again at once. */
	f = send_n(&t, 2);
	fb_run_until(2000);
	assert_acked(done(f));
	mllp_future_free(f);
	fb_trace_clear();
	fb_peer(2, FB_REPLY_EOF);
	fb_run_until(2000);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "2000 event connection_closed conn0 CLOSED delay 0\n"
	    "2000 connect s3\n"
	    "2000 event connection_success conn0\n"
	    "2000 recv s3\n");
}

/* queue_timeout: a message waits that long for a connection, then fails
 * with the last connect error (context send). */
static void test_queue_timeout(void **state)
{
	(void)state;
	fb_default(FB_CONNECT, FB_CONNECT_HANG);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.queue_timeout_ms = 5000;
	struct fsm t;
	fsm_up(&t, &o);
	fb_run_until(1000);
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(5999);
	assert_false(mllp_future_poll(f));
	fb_run_until(6000);
	assert_failed(done(f), -ETIMEDOUT, MLLP_CTX_SEND, "timed out", false,
		      false);
	mllp_future_free(f);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT),
	    "0 connect s1\n"
	    "2000 cancel s1\n"
	    "2000 event connection_failure conn0 ETIMEDOUT delay 1000\n"
	    "3000 connect s2\n"
	    "5000 cancel s2\n"
	    "5000 event connection_failure conn0 ETIMEDOUT delay 2000\n");
}

/* ---- replies ------------------------------------------------------------ */

/* No reply: at reply_timeout (60 s after the last byte) the message fails
 * (receive, timed out, written), the socket is closed abortively
 * (close_on_recv_error) and, a message having been in flight, reconnected
 * at once. A per-send reply_timeout overrides it. */
static void test_reply_timeout(void **state)
{
	(void)state;
	fb_default(FB_REPLY, FB_REPLY_NONE);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(60000);
	char want[1024];
	snprintf(want, sizeof(want),
		 "0 send s1 %zu\n"
		 "0 done s1 send %zu\n"
		 "60000 log Error receiving from 127.0.0.1:2575 => timed out\n"
		 "60000 event receive_timeout conn0 TIMEOUT\n"
		 "60000 cancel s1\n"
		 "60000 event connection_closed conn0 TIMEOUT delay 0\n"
		 "60000 connect s2\n"
		 "60000 done s1 recv ECANCELED\n"
		 "60000 done s2 connect 0\n"
		 "60000 event connection_success conn0\n"
		 "60000 recv s2\n",
		 frame_len(1), frame_len(1));
	assert_string_equal(fb_trace(FB_T_ALL), want);
	assert_failed(done(f), MLLP_ERR_TIMEOUT, MLLP_CTX_RECEIVE, "timed out",
		      true, true);
	mllp_future_free(f);

	/* 250 ms for this message only. */
	fb_trace_clear();
	size_t len;
	char *m = hl7(2, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.reply_timeout_ms = 250;
	assert_int_equal(mllp_pool_send(t.p, t.ep, m, len, &o, &f, NULL), 0);
	free(m);
	fb_run_until(60249);
	assert_false(mllp_future_poll(f));
	fb_run_until(60250);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_EVENT),
			    "60000 send s2 85\n"
			    "60250 event receive_timeout conn0 TIMEOUT\n"
			    "60250 cancel s2\n"
			    "60250 event connection_closed conn0 TIMEOUT "
			    "delay 0\n"
			    "60250 connect s3\n"
			    "60250 event connection_success conn0\n"
			    "60250 recv s3\n");
	assert_failed(done(f), MLLP_ERR_TIMEOUT, MLLP_CTX_RECEIVE, "timed out",
		      true, true);
	mllp_future_free(f);
}

/* A reply with another MSA-2 is a reply (verdict bad_message_control_id),
 * not a transport error: the connection stays. */
static void test_reply_wrong_control_id(void **state)
{
	(void)state;
	fb_next(FB_REPLY, FB_REPLY_WRONG_ID);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	struct mllp_future *g = send_n(&t, 2);
	fb_run_until(10);
	const struct mllp_result *r = done(f);
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_acked(done(g));
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_EVENT),
			    "0 send s1 85\n"
			    "0 event receive_valid conn0\n"
			    "0 send s1 85\n"
			    "0 event receive_valid conn0\n");
	mllp_future_free(f);
	mllp_future_free(g);
}

/* A reply that does not start with a start block fails the message
 * (invalid header) and closes abortively; the next message waits for
 * the immediate reconnect. */
static void test_reply_junk(void **state)
{
	(void)state;
	fb_next(FB_REPLY, FB_REPLY_JUNK);
	fb_reply_delay_ms(7);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	struct mllp_future *g = send_n(&t, 2);
	fb_run_until(100);
	assert_string_equal(
	    fb_trace(FB_T_OPS | FB_T_EVENT | FB_T_LOG),
	    "0 send s1 85\n"
	    "7 log Error receiving from 127.0.0.1:2575 => Invalid header "
	    "received in server acknowledgment\n"
	    "7 event invalid_response conn0 INVALID_HEADER\n"
	    "7 cancel s1\n"
	    "7 event connection_closed conn0 INVALID_HEADER delay 0\n"
	    "7 connect s2\n"
	    "7 event connection_success conn0\n"
	    "7 recv s2\n"
	    "7 send s2 85\n"
	    "14 event receive_valid conn0\n");
	assert_failed(done(f), MLLP_ERR_INVALID_HEADER, MLLP_CTX_RECEIVE,
		      "Invalid header received in server acknowledgment", true,
		      true);
	assert_acked(done(g));
	mllp_future_free(f);
	mllp_future_free(g);
}

/* The peer closes with a message in flight: it fails with "connection
 * closed" (written: it may have reached the receiver) and the connection
 * is made again at once; the queued message goes on the new one. */
static void test_peer_eof_in_flight(void **state)
{
	(void)state;
	fb_next(FB_REPLY, FB_REPLY_EOF);
	fb_reply_delay_ms(100);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct calls c[3] = {{0, 0}, {0, 0}, {0, 0}};
	struct mllp_future *f[3];
	for (int i = 0; i < 3; i++)
		f[i] = send_cb(&t, i + 1, &c[i]);
	fb_run_until(99);
	assert_string_equal(fb_trace(FB_T_OPS), "0 send s1 85\n");
	fb_run_until(1000);
	assert_string_equal(
	    fb_trace(FB_T_ALL),
	    "0 send s1 85\n"
	    "0 done s1 send 85\n"
	    "100 done s1 recv EOF\n"
	    "100 log Error receiving from 127.0.0.1:2575 => connection "
	    "closed\n"
	    "100 event connection_closed conn0 CLOSED delay 0\n"
	    "100 connect s2\n"
	    "100 done s2 connect 0\n"
	    "100 event connection_success conn0\n"
	    "100 recv s2\n"
	    "100 send s2 85\n"
	    "100 done s2 send 85\n"
	    "200 done s2 recv 76\n"
	    "200 event receive_valid conn0\n"
	    "200 send s2 85\n"
	    "200 done s2 send 85\n"
	    "300 done s2 recv 76\n"
	    "300 event receive_valid conn0\n");
	assert_failed(done(f[0]), MLLP_ERR_CLOSED, MLLP_CTX_RECEIVE,
		      "connection closed", true, true);
	assert_acked(done(f[1]));
	assert_acked(done(f[2]));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].n, 1);
		mllp_future_free(f[i]);
	}
}

/* ---- sends -------------------------------------------------------------- */

/* A failed write fails the message (send, never written), closes
 * abortively and reconnects at once (reconnect_on_send_error). */
static void test_send_failure(void **state)
{
	(void)state;
	fb_next(FB_SEND, FB_SEND_FAIL);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(1);
	assert_string_equal(
	    fb_trace(FB_T_ALL),
	    "0 send s1 85\n"
	    "0 done s1 send EPIPE\n"
	    "0 log Error sending to 127.0.0.1:2575 => broken pipe\n"
	    "0 event send_error conn0 EPIPE\n"
	    "0 cancel s1\n"
	    "0 event connection_closed conn0 EPIPE delay 0\n"
	    "0 connect s2\n"
	    "0 done s1 recv ECANCELED\n"
	    "0 done s2 connect 0\n"
	    "0 event connection_success conn0\n"
	    "0 recv s2\n");
	assert_failed(done(f), -EPIPE, MLLP_CTX_SEND, "broken pipe", false,
		      false);
	mllp_future_free(f);
}

/* A short write is continued from where it stopped. */
static void test_short_write(void **state)
{
	(void)state;
	fb_next(FB_SEND, FB_SEND_SHORT);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(1);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_DONE),
			    "0 send s1 85\n"
			    "0 done s1 send 42\n"
			    "0 send s1 43\n"
			    "0 done s1 send 43\n"
			    "0 done s1 recv 76\n");
	assert_acked(done(f));
	mllp_future_free(f);
}

/* A write that never completes: at send_timeout the message fails (send,
 * timed out; bytes may have reached the receiver) and the socket is
 * closed and made again. */
static void test_send_timeout(void **state)
{
	(void)state;
	fb_next(FB_SEND, FB_SEND_HANG);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.send_timeout_ms = 1500;
	struct fsm t;
	fsm_up(&t, &o);
	fb_settle();
	fb_trace_clear();
	struct mllp_future *f = send_n(&t, 1);
	fb_run_until(1500);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_EVENT),
			    "0 send s1 85\n"
			    "1500 event send_error conn0 TIMEOUT\n"
			    "1500 cancel s1\n"
			    "1500 event connection_closed conn0 TIMEOUT "
			    "delay 0\n"
			    "1500 connect s2\n"
			    "1500 event connection_success conn0\n"
			    "1500 recv s2\n");
	assert_failed(done(f), MLLP_ERR_TIMEOUT, MLLP_CTX_SEND, "timed out",
		      false, true);
	mllp_future_free(f);
}

/* ---- stop --------------------------------------------------------------- */

/* Stop with one message in flight and two queued: each future completes
 * once, with "client stopped" (context send); the one in flight was
 * written, the queued ones not. Virtual time does not move. */
static void test_stop_with_work_queued(void **state)
{
	(void)state;
	fb_default(FB_REPLY, FB_REPLY_NONE);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	struct calls c[3] = {{0, 0}, {0, 0}, {0, 0}};
	struct mllp_future *f[3];
	for (int i = 0; i < 3; i++)
		f[i] = send_cb(&t, i + 1, &c[i]);
	fb_run_until(10);
	fb_trace_clear();
	assert_int_equal(mllp_pool_stop(t.p), 0);
	assert_int_equal(fb_now_ms(), 10);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_DONE | FB_T_EVENT),
			    "10 cancel s1\n"
			    "10 done s1 recv ECANCELED\n");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].n, 1);
		assert_int_equal(c[i].status, MLLP_ERR_STOPPED);
		assert_failed(done(f[i]), MLLP_ERR_STOPPED, MLLP_CTX_SEND,
			      "client stopped", i == 0, i == 0);
		mllp_future_free(f[i]);
	}
}

/* Stop while every connect hangs and messages wait for a connection
 * (queue_timeout): each fails once with "client stopped". */
static void test_stop_while_connecting(void **state)
{
	(void)state;
	fb_default(FB_CONNECT, FB_CONNECT_HANG);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.queue_timeout_ms = MLLP_INFINITE;
	struct fsm t;
	fsm_up(&t, &o);
	struct calls c[2] = {{0, 0}, {0, 0}};
	struct mllp_future *f[2];
	for (int i = 0; i < 2; i++)
		f[i] = send_cb(&t, i + 1, &c[i]);
	fb_run_until(1999);
	for (int i = 0; i < 2; i++)
		assert_false(mllp_future_poll(f[i]));
	fb_trace_clear();
	assert_int_equal(mllp_pool_stop(t.p), 0);
	assert_int_equal(fb_now_ms(), 1999);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_DONE | FB_T_EVENT),
			    "1999 cancel s1\n"
			    "1999 done s1 connect ECANCELED\n");
	for (int i = 0; i < 2; i++) {
		assert_int_equal(c[i].n, 1);
		assert_failed(done(f[i]), MLLP_ERR_STOPPED, MLLP_CTX_SEND,
			      "client stopped", false, false);
		mllp_future_free(f[i]);
	}
}

/* ---- MSH-15 NE: no accept ACK awaited ---------------------------------- */

/* An NE message completes when its last byte is written (here in two
 * sends) and arms no reply timer; the next message goes at once. The AA
 * a receiver in original mode sends anyway, 5 ms later, is a late accept
 * ACK: not the next message's reply, which gets its own. */
static void test_ne_done_when_written(void **state)
{
	(void)state;
	fb_reply_delay_ms(5);
	struct fsm t;
	fsm_up(&t, NULL);
	fb_settle();
	fb_trace_clear();
	char ne[256];
	int l = snprintf(ne, sizeof(ne),
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|"
			 "CTRL1|P|2.5|||NE|NE\rPID|1||1\r");
	fb_next(FB_SEND, FB_SEND_SHORT);
	struct mllp_future *f = NULL;
	assert_int_equal(
	    mllp_pool_send(t.p, t.ep, ne, (size_t)l, NULL, &f, NULL), 0);
	struct mllp_future *g = send_n(&t, 2);
	fb_settle();
	const struct mllp_result *r = done(f);
	assert_int_equal(r->status, 0);
	assert_true(r->written);
	assert_false(r->has_verdict);
	assert_null(r->reply);
	assert_false(mllp_future_poll(g));
	fb_run_until(60000);
	assert_acked(done(g));
	size_t fl = (size_t)l + 3;
	char want[512];
	snprintf(want, sizeof(want),
		 "0 send s1 %zu\n"
		 "0 send s1 %zu\n"
		 "0 send s1 85\n"
		 "5 event late_accept_ack conn0\n"
		 "5 event receive_valid conn0\n",
		 fl, fl - fl / 2);
	assert_string_equal(fb_trace(FB_T_OPS | FB_T_EVENT), want);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	assert_int_equal(mllp_pool_get_stats(t.p, &st), 0);
	assert_int_equal(st.late_accept_acks, 1);
	assert_int_equal(st.sent, 2);
	mllp_future_free(f);
	mllp_future_free(g);
}

#define FSM_TEST(f) cmocka_unit_test_setup_teardown(f, fsm_setup, fsm_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    FSM_TEST(test_connect_timeout_backoff),
	    FSM_TEST(test_connect_timeout_fixed),
	    FSM_TEST(test_refused_then_reconnect),
	    FSM_TEST(test_idle_close_before_reply),
	    FSM_TEST(test_queue_timeout),
	    FSM_TEST(test_reply_timeout),
	    FSM_TEST(test_reply_wrong_control_id),
	    FSM_TEST(test_reply_junk),
	    FSM_TEST(test_peer_eof_in_flight),
	    FSM_TEST(test_send_failure),
	    FSM_TEST(test_short_write),
	    FSM_TEST(test_send_timeout),
	    FSM_TEST(test_stop_with_work_queued),
	    FSM_TEST(test_stop_while_connecting),
	    FSM_TEST(test_ne_done_when_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

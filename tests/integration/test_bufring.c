/* Receive buffers running out, on the backend chosen by MLLP_TEST_BACKEND
 * (io_uring: the shared provided-buffer ring runs dry; epoll: every
 * buffer is handed out). With a handful of buffers and many connections
 * holding unread data, every connection is still read to the end, without
 * its owner re-arming anything: the backend resumes a receive starved of
 * buffers once buffers come back. Then the same through the receiver (an
 * honest client among connections that keep the buffers busy) and the
 * pool (replies larger than all receive buffers together, on many
 * connections at once). Loopback, ephemeral ports, bounded waits. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "backend.h"
#include "common.h" /* ti_backend(): MLLP_TEST_BACKEND */
#include "netutil.h"

#define DEADLINE_MS 10000

/* ---- the backend seam --------------------------------------------------- */

#define NSOCK	 16
#define PER_SOCK 20000 /* bytes written to each socket */
#define TOK(i)	 ((uint64_t)(i + 1) << 8)

struct seam {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *b;
	int rd[NSOCK]; /* read through the backend */
	int wr[NSOCK]; /* written by the test */
	size_t got[NSOCK];
	int ends[NSOCK];     /* completions with more == false */
	int end_res[NSOCK];  /* res of the last of them */
	int bad_data[NSOCK]; /* bytes that differ from the pattern */
};

static const struct mllpi_backend_ops *seam_ops(void)
{
	return ti_backend() == MLLP_BACKEND_EPOLL ? &mllpi_backend_epoll
						  : &mllpi_backend_uring;
}

/* A backend with recv_buffers buffers of 1 KiB and NSOCK connected pairs,
 * a recv armed on each; false (after a message) where the backend cannot
 * be set up here. */
static bool seam_open(struct seam *s, uint32_t recv_buffers)
{
	memset(s, 0, sizeof(*s));
	s->ops = seam_ops();
	struct mllpi_backend_config cfg = {
	    .entries = 64,
	    .recv_buffers = recv_buffers,
	    .recv_buffer_size = 1024,
	    .alloc = mllp_allocator_libc(),
	};
	struct mllp_error err;
	mllp_error_clear(&err);
	int rc = s->ops->create(&cfg, &s->b, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "skip %s: %s\n", s->ops->name, err.message);
		return false;
	}
	assert_int_equal(rc, 0);
	uint16_t port;
	int l = tn_listen(&port);
	for (int i = 0; i < NSOCK; i++) {
		s->wr[i] = tn_connect(port, 0);
		s->rd[i] = accept4(
		    l, NULL, NULL,
		    SOCK_CLOEXEC |
			(s->ops->nonblocking_sockets ? SOCK_NONBLOCK : 0));
		assert_true(s->rd[i] >= 0);
		assert_int_equal(s->ops->recv(s->b, s->rd[i], TOK(i)), 0);
	}
	close(l);
	return true;
}

static void seam_close(struct seam *s)
{
	for (int i = 0; i < NSOCK; i++) {
		close(s->rd[i]);
		close(s->wr[i]);
	}
	s->ops->destroy(s->b);
}

static int seam_index(uint64_t token)
{
	for (int i = 0; i < NSOCK; i++)
		if (TOK(i) == token)
			return i;
	fail_msg("unexpected token %llx", (unsigned long long)token);
	return -1;
}

/* One wait() taking up to max completions: account what came. */
static void seam_take(struct seam *s, int64_t timeout_us, int max)
{
	struct mllpi_cqe c[64];
	assert_true(max <= 64);
	int n = s->ops->wait(s->b, timeout_us, c, max);
	assert_true(n >= 0);
	for (int k = 0; k < n; k++) {
		int i = seam_index(c[k].token);
		if (c[k].res > 0) {
			for (int j = 0; j < c[k].res; j++)
				if (c[k].data[j] !=
				    (unsigned char)((s->got[i] + (size_t)j) %
						    251))
					s->bad_data[i]++;
			s->got[i] += (size_t)c[k].res;
		}
		if (!c[k].more) {
			s->ends[i]++;
			s->end_res[i] = c[k].res;
		}
	}
}

static void seam_pump(struct seam *s, int64_t timeout_us)
{
	seam_take(s, timeout_us, 64);
}

/* seam_take() with up to max completions a wait() until done(s) holds or
 * DEADLINE_MS have passed. */
static void seam_until(struct seam *s, int max,
		       bool (*done)(const struct seam *))
{
	uint64_t dl = tn_now_ms() + DEADLINE_MS;
	while (!done(s) && tn_now_ms() < dl)
		seam_take(s, 100000, max);
}

static bool seam_all_read(const struct seam *s)
{
	for (int i = 0; i < NSOCK; i++)
		if (s->got[i] != PER_SOCK)
			return false;
	return true;
}

static bool seam_any_read(const struct seam *s)
{
	for (int i = 0; i < NSOCK; i++)
		if (s->got[i])
			return true;
	return false;
}

static bool seam_all_ended(const struct seam *s)
{
	for (int i = 0; i < NSOCK; i++)
		if (s->ends[i] == 0)
			return false;
	return true;
}

/* Write PER_SOCK bytes (i % 251 pattern) into every socket before the
 * backend reads any: all have data waiting when the buffers run out. */
static void seam_write_all(struct seam *s)
{
	static unsigned char pat[PER_SOCK];
	for (size_t j = 0; j < sizeof(pat); j++)
		pat[j] = (unsigned char)(j % 251);
	for (int i = 0; i < NSOCK; i++)
		assert_int_equal(send(s->wr[i], pat, sizeof(pat), MSG_NOSIGNAL),
				 (ssize_t)sizeof(pat));
}

/* seam_open() and seam_write_all(); the test is skipped where the backend
 * cannot be set up. */
static void seam_start(struct seam *s, uint32_t recv_buffers)
{
	if (!seam_open(s, recv_buffers))
		skip();
	seam_write_all(s);
}

/* 16 connections with 20 KB each waiting and 4 buffers of 1 KiB: the
 * buffers run out at once and again and again. Every recv stays armed
 * (no completion ends one: the caller never has to re-arm, and never
 * sees -ENOBUFS), and every connection is read to its last byte. */
static void test_seam_dry_ring_resumes(void **state)
{
	(void)state;
	struct seam s;
	seam_start(&s, 4);
	seam_until(&s, 64, seam_all_read);
	for (int i = 0; i < NSOCK; i++)
		if (s.ends[i])
			fail_msg("recv %d ended (res %d: %s)", i, s.end_res[i],
				 mllp_strerror(s.end_res[i]));
	for (int i = 0; i < NSOCK; i++) {
		if (s.got[i] != PER_SOCK)
			fail_msg("connection %d: %zu of %d bytes read", i,
				 s.got[i], PER_SOCK);
		assert_int_equal(s.bad_data[i], 0);
	}
	/* Still armed: more data is read without a new recv. */
	assert_int_equal(send(s.wr[0], "\x00", 1, MSG_NOSIGNAL), 1);
	uint64_t dl = tn_now_ms() + DEADLINE_MS;
	while (s.got[0] == PER_SOCK && tn_now_ms() < dl)
		seam_pump(&s, 100000);
	assert_int_equal(s.got[0], PER_SOCK + 1);
	for (int i = 0; i < NSOCK; i++)
		assert_int_equal(s.ends[i], 0);
	/* The contract's close: cancel, every recv ends once, -ECANCELED. */
	for (int i = 0; i < NSOCK; i++)
		assert_int_equal(s.ops->cancel_fd(s.b, s.rd[i], 0), 0);
	seam_until(&s, 64, seam_all_ended);
	for (int i = 0; i < NSOCK; i++) {
		assert_int_equal(s.ends[i], 1);
		assert_int_equal(s.end_res[i], -ECANCELED);
	}
	seam_close(&s);
}

/* The same with one buffer, and a caller that takes one completion per
 * wait(): the end of a recv that ran dry is seen only after the buffer
 * it lacked has come back, and nothing else comes to give buffers back
 * again. Every connection is still read to its last byte. */
static void test_seam_dry_ring_one_at_a_time(void **state)
{
	(void)state;
	struct seam s;
	seam_start(&s, 1);
	seam_until(&s, 1, seam_all_read);
	for (int i = 0; i < NSOCK; i++) {
		if (s.got[i] != PER_SOCK || s.ends[i])
			fail_msg("connection %d: %zu of %d bytes read, %d "
				 "ends (res %d)",
				 i, s.got[i], PER_SOCK, s.ends[i],
				 s.end_res[i]);
		assert_int_equal(s.bad_data[i], 0);
	}
	seam_close(&s);
}

/* Cancelled while starved of buffers: each recv ends exactly once, with
 * -ECANCELED, including those the backend holds for want of a buffer and
 * those that ran dry but whose end was not taken yet (a wait() that takes
 * one completion at a time). */
static void test_seam_cancel_starved(void **state)
{
	(void)state;
	struct seam s;
	seam_start(&s, 1);
	/* One buffer: a wait() hands it to one connection at most. */
	seam_until(&s, 1, seam_any_read);
	assert_true(seam_any_read(&s));
	for (int i = 0; i < NSOCK; i++)
		assert_int_equal(s.ops->cancel_fd(s.b, s.rd[i], 0), 0);
	seam_until(&s, 64, seam_all_ended);
	/* Nothing more comes once every recv has ended. */
	seam_pump(&s, 50000);
	for (int i = 0; i < NSOCK; i++) {
		if (s.ends[i] != 1 || s.end_res[i] != -ECANCELED)
			fail_msg("recv %d: %d ends, last res %d (%s)", i,
				 s.ends[i], s.end_res[i],
				 mllp_strerror(s.end_res[i]));
	}
	seam_close(&s);
}

/* ---- the receiver ------------------------------------------------------- */

#define STUFFERS     32
#define STUFF_FRAMES 16
#define STUFF_PAD    4000 /* bytes of padding per frame */
#define HONEST_MSGS  20

/* A frame of about STUFF_PAD bytes with control id id. */
static size_t stuff_frame(char *out, size_t cap, int id)
{
	int n = snprintf(out, cap,
			 "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|S%d|P|2.5\r"
			 "NTE|1||",
			 id);
	memset(out + n, 'x', STUFF_PAD);
	n += STUFF_PAD;
	n += snprintf(out + n, cap - (size_t)n, "\r\x1c\r");
	assert_true((size_t)n < cap);
	return (size_t)n;
}

/* A tr_wait_until() predicate: the receiver has read want frames. */
struct all_read {
	struct mllp_receiver *rv;
	uint64_t want;
};

static bool all_read(void *arg)
{
	struct all_read *a = arg;
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(a->rv, &st);
	return st.messages_received >= a->want;
}

/* 32 connections each write 16 frames of 4 KB at once (and read nothing)
 * into a receiver with 4 receive buffers of 1 KiB: the buffers run out
 * over and over. An honest client's messages, one at a time, are still
 * each acknowledged, and every frame of every connection is read. */
static void test_receiver_few_buffers(void **state)
{
	(void)state;
	struct mllp_receiver_config c;
	ti_receiver_config(&c, mllp_dispatch_echo, NULL);
	c.recv_buffers = 4;
	c.recv_buffer_size = 1024;
	c.ring_entries = 64;
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_create(&c, &rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "skip: %s\n", err.message);
		skip();
	}
	assert_int_equal(rc, 0);
	uint16_t port = mllp_receiver_port(rv);
	int fds[STUFFERS];
	static char fr[STUFF_PAD + 256];
	for (int i = 0; i < STUFFERS; i++) {
		fds[i] = tn_connect(port, 0);
		for (int k = 0; k < STUFF_FRAMES; k++) {
			size_t len =
			    stuff_frame(fr, sizeof(fr), i * STUFF_FRAMES + k);
			assert_int_equal(send(fds[i], fr, len, MSG_NOSIGNAL),
					 (ssize_t)len);
		}
	}
	int acked = tn_honest_run(port, HONEST_MSGS, tn_now_ms() + DEADLINE_MS);
	assert_int_equal(acked, HONEST_MSGS);
	/* Every frame of every connection is read (none starved). */
	struct all_read a = {rv,
			     (uint64_t)STUFFERS * STUFF_FRAMES + HONEST_MSGS};
	tr_wait_until(all_read, &a, DEADLINE_MS);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, a.want);
	for (int i = 0; i < STUFFERS; i++)
		close(fds[i]);
	mllp_receiver_stop(rv);
	mllp_receiver_destroy(rv);
}

/* ---- the pool ----------------------------------------------------------- */

#define POOL_CONNS 16
#define POOL_MSGS  64
#define ACK_TEXT   6000 /* bytes of MSA-3: a reply spans 6 buffers */

static char ack_text[ACK_TEXT + 1];

static void big_ack(void *ctx, const struct mllp_message *msg,
		    struct mllp_reply *reply)
{
	(void)ctx;
	(void)msg;
	reply->kind = MLLP_REPLY_ACK;
	reply->ack_text = ack_text;
}

/* A pool with 4 receive buffers of 1 KiB on 16 connections, each reply
 * 6 KB: the pool's buffers run out while replies wait on many
 * connections. Every message gets its reply in time. */
static void test_pool_few_buffers(void **state)
{
	(void)state;
	memset(ack_text, 'a', ACK_TEXT);
	struct mllp_receiver_config c;
	ti_receiver_config(&c, big_ack, NULL);
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_create(&c, &rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "skip: %s\n", err.message);
		skip();
	}
	assert_int_equal(rc, 0);
	struct mllp_pool_config pc;
	ti_config(&pc, NULL);
	pc.recv_buffers = 4;
	pc.recv_buffer_size = 1024;
	pc.conn.reply_timeout_ms = DEADLINE_MS;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&pc, &p, &err), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1",
						mllp_receiver_port(rv),
						POOL_CONNS, NULL, &ep, &err),
			 0);
	struct mllp_future *f[POOL_MSGS];
	for (int i = 0; i < POOL_MSGS; i++) {
		char m[128];
		int len =
		    snprintf(m, sizeof(m),
			     "MSH|^~\\&|A|B|C|D|2024||ADT^A01|P%d|P|2.5\r", i);
		assert_int_equal(
		    mllp_pool_send(p, ep, m, (size_t)len, NULL, &f[i], &err),
		    0);
	}
	uint64_t dl = tn_now_ms() + DEADLINE_MS + 5000;
	for (int i = 0; i < POOL_MSGS; i++) {
		int64_t left = (int64_t)(dl - tn_now_ms());
		assert_int_equal(mllp_future_wait(f[i], left > 0 ? left : 0),
				 0);
		const struct mllp_result *res = mllp_future_result(f[i]);
		assert_non_null(res);
		if (res->status != 0)
			fail_msg("message %d: %s", i,
				 mllp_strerror(res->status));
		assert_true(res->reply_len > ACK_TEXT);
		mllp_future_free(f[i]);
	}
	mllp_pool_stop(p);
	mllp_pool_destroy(p);
	mllp_receiver_stop(rv);
	mllp_receiver_destroy(rv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_seam_dry_ring_resumes),
	    cmocka_unit_test(test_seam_dry_ring_one_at_a_time),
	    cmocka_unit_test(test_seam_cancel_starved),
	    cmocka_unit_test(test_receiver_few_buffers),
	    cmocka_unit_test(test_pool_few_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

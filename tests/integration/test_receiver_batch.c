/* Deferred receiver replies completed in batches
 * (mllp_receiver_reply_batch) on loopback: items given newest first still
 * leave in arrival order, each with its own bytes; each item's result is
 * what mllp_receiver_reply would return (bad items get no reply, the
 * connection goes on); a handle whose connection closed answers
 * MLLP_ERR_CLOSED without holding up the others; handles of two receivers
 * mixed in one call; 4 threads answering batches taken out of order from
 * 4 connections; no items, nothing done. Nothing leaks (counting
 * allocator). Ephemeral ports only; every wait is bounded; no sleep
 * synchronises. */
#include <errno.h>
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
#define MAX_KEPT    4096
#define ACK_CAP	    256

/* ---- the dispatcher: defers every frame, keeps the handles ----------------
 */

struct kept {
	struct mllp_reply_handle *h;
	int n; /* CTRL<n> */
};

struct keep {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kept items[MAX_KEPT];
	int nitems;	 /* kept, not yet taken */
	_Atomic int bad; /* anything unexpected on the receiver's thread */
	_Atomic int abandoned; /* reply_abandoned calls */
	_Atomic bool done;     /* workers: leave */
};

static void keep_init(struct keep *k)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
}

static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct keep *k = ctx;
	/* No cmocka assert here: this is the receiver's thread. */
	struct mllp_reply_handle *h = mllp_reply_defer(reply);
	if (!h) {
		atomic_fetch_add(&k->bad, 1);
		return;
	}
	pthread_mutex_lock(&k->mu);
	if (k->nitems < MAX_KEPT)
		k->items[k->nitems++] = (struct kept){h, rx_ctrl_of(msg)};
	else
		atomic_fetch_add(&k->bad, 1);
	pthread_cond_broadcast(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

static void on_abandoned(void *ctx, struct mllp_reply_handle *h,
			 enum mllp_close_reason reason)
{
	struct keep *k = ctx;
	(void)h;
	(void)reason;
	atomic_fetch_add(&k->abandoned, 1);
}

struct keep_min {
	struct keep *k;
	int n;
};

static bool keep_reached(void *arg)
{
	struct keep_min *w = arg;
	pthread_mutex_lock(&w->k->mu);
	bool ok = w->k->nitems >= w->n;
	pthread_mutex_unlock(&w->k->mu);
	return ok;
}

/* Wait until at least n handles are kept. */
static void keep_wait(struct keep *k, int n)
{
	struct keep_min w = {k, n};
	if (!tr_wait_until(keep_reached, &w, DEADLINE_MS))
		fail_msg("fewer than %d frames deferred in time", n);
}

/* Take the kept handle of frame n (fails the test when there is none). */
static struct mllp_reply_handle *keep_take(struct keep *k, int n)
{
	struct mllp_reply_handle *h = NULL;
	pthread_mutex_lock(&k->mu);
	for (int i = 0; i < k->nitems; i++) {
		if (k->items[i].n != n)
			continue;
		h = k->items[i].h;
		k->items[i] = k->items[--k->nitems];
		break;
	}
	pthread_mutex_unlock(&k->mu);
	if (!h)
		fail_msg("no deferred handle for CTRL%d", n);
	return h;
}

/* ---- a receiver on the counting allocator ---------------------------------
 */

struct fixture {
	struct rx_counted cnt;
	struct mllp_receiver *rv;
};

/* Start a receiver deferring into k; false when io_uring is unavailable
 * (the caller skips). */
static bool fixture_start(struct fixture *f, struct keep *k)
{
	memset(f, 0, sizeof(*f));
	rx_counted_init(&f->cnt);
	struct mllp_receiver_config c;
	ti_receiver_config(&c, dispatch, k);
	c.allocator = &f->cnt.a;
	c.reply_abandoned = on_abandoned;
	return rx_start(&c, &f->rv);
}

struct settle {
	struct mllp_receiver *rv;
	uint64_t sent;
};

static bool settled(void *arg)
{
	struct settle *w = arg;
	struct mllp_receiver_stats s = rx_stats(w->rv);
	return s.replies_pending == 0 && s.replies_sent >= w->sent;
}

/* Nothing pending and replies_sent reaches sent, exactly (every reply
 * then is in its client's socket). */
static void fixture_settle(struct fixture *f, uint64_t sent)
{
	struct settle w = {f->rv, sent};
	tr_wait_until(settled, &w, DEADLINE_MS);
	struct mllp_receiver_stats s = rx_stats(f->rv);
	assert_int_equal(s.replies_pending, 0);
	assert_int_equal(s.replies_sent, sent);
}

/* Destroy: nothing is left of the receiver. */
static void fixture_destroy(struct fixture *f)
{
	mllp_receiver_destroy(f->rv);
	assert_int_equal(atomic_load(&f->cnt.blocks), 0);
}

/* ---- a client: sends CTRL<n> frames, reads reply frames -------------------
 */

struct client {
	int fd;
	struct mllp_decoder dec;
	unsigned char buf[8192];
	size_t off, len;
};

static void client_open(struct client *c, struct mllp_receiver *rv)
{
	memset(c, 0, sizeof(*c));
	c->fd = tn_connect(mllp_receiver_port(rv), 0);
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	assert_int_equal(mllp_decoder_init(&c->dec, &fc, NULL), 0);
}

static void client_close(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	mllp_decoder_free(&c->dec);
}

/* Send frame n (control id CTRL<n>). */
static void client_send(struct client *c, int n)
{
	char f[512];
	tn_send_all(c->fd, f, rx_frame(f, sizeof(f), n));
}

/* The next reply frame's payload at out (cap bytes, NUL-terminated): its
 * length, or -1 when none came whole before end (tn_now_ms() value). */
static int client_next(struct client *c, char *out, size_t cap, uint64_t end)
{
	for (;;) {
		while (c->off < c->len) {
			size_t used;
			struct mllp_decoded ev;
			if (mllp_decoder_feed(&c->dec, c->buf + c->off,
					      c->len - c->off, &used, &ev) < 0)
				return -1;
			c->off += used;
			if (ev.kind != MLLP_DECODE_FRAME)
				continue;
			if (ev.len >= cap)
				return -1;
			memcpy(out, ev.data, ev.len);
			out[ev.len] = 0;
			return (int)ev.len;
		}
		uint64_t now = tn_now_ms();
		if (now >= end)
			return -1;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t r = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (r <= 0)
			return -1;
		c->off = 0;
		c->len = (size_t)r;
	}
}

/* The next reply is exactly the ACK of frame n. */
static void client_expect(struct client *c, int n)
{
	char got[ACK_CAP], want[ACK_CAP];
	rx_ack_text(want, sizeof(want), n);
	int l = client_next(c, got, sizeof(got), tn_now_ms() + DEADLINE_MS);
	if (l < 0)
		fail_msg("no reply where the one of CTRL%d was due", n);
	assert_string_equal(got, want);
}

/* Nothing more has arrived on c (call once the receiver counts every
 * reply sent: by then the bytes are in c's socket). */
static void client_expect_nothing(struct client *c)
{
	assert_int_equal(c->off, c->len);
	char b[64];
	ssize_t r = recv(c->fd, b, sizeof(b), MSG_DONTWAIT);
	int e = errno;
	if (r > 0)
		fail_msg("%zd unexpected bytes: %.*s", r, (int)r, b);
	assert_int_equal(r, -1);
	assert_int_equal(e, EAGAIN);
}

/* k fresh and the receiver of f started with it; skips the test when
 * io_uring is unavailable. */
static void start(struct fixture *f, struct keep *k)
{
	keep_init(k);
	if (!fixture_start(f, k))
		skip();
}

/* The end of a test with one receiver and one client: no frame was
 * mishandled, the receiver sent exactly sent replies and c got nothing
 * more; both closed and freed. */
static void end_one(struct fixture *f, struct keep *k, struct client *c,
		    uint64_t sent)
{
	assert_int_equal(atomic_load(&k->bad), 0);
	fixture_settle(f, sent);
	client_expect_nothing(c);
	fixture_destroy(f);
	client_close(c);
}

/* ---- the tests ------------------------------------------------------------
 */

#define ORDER_FRAMES 64

struct one_batch {
	struct mllp_reply_item *items;
	size_t n;
	size_t ok;
};

static void *batch_main(void *arg)
{
	struct one_batch *b = arg;
	b->ok = mllp_receiver_reply_batch(b->items, b->n);
	return NULL;
}

/* 64 deferred frames answered by one call on another thread, the items
 * newest first, each with its own ACK: the client gets exactly 64
 * replies, in the order it sent the frames, each the right one. */
static void test_order_and_content(void **state)
{
	(void)state;
	static struct keep k;
	struct fixture f;
	start(&f, &k);
	struct client c;
	client_open(&c, f.rv);
	for (int i = 0; i < ORDER_FRAMES; i++)
		client_send(&c, i);
	keep_wait(&k, ORDER_FRAMES);
	static char acks[ORDER_FRAMES][ACK_CAP];
	struct mllp_reply_item items[ORDER_FRAMES];
	for (int j = 0; j < ORDER_FRAMES; j++) {
		int n = ORDER_FRAMES - 1 - j;
		int l = rx_ack_text(acks[j], ACK_CAP, n);
		items[j] = (struct mllp_reply_item){keep_take(&k, n), acks[j],
						    (size_t)l, 12345};
	}
	struct one_batch b = {items, ORDER_FRAMES, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, batch_main, &b), 0);
	pthread_join(th, NULL);
	assert_int_equal(b.ok, ORDER_FRAMES);
	for (int j = 0; j < ORDER_FRAMES; j++)
		assert_int_equal(items[j].result, 0);
	for (int i = 0; i < ORDER_FRAMES; i++)
		client_expect(&c, i);
	end_one(&f, &k, &c, ORDER_FRAMES);
}

/* One call with a good item, a NULL handle, data NULL with a length, a
 * partly framed reply and "no reply": each result as mllp_receiver_reply
 * would give it, 2 good; only the first frame is answered, and the
 * connection goes on (a later frame gets its reply next). */
static void test_mixed_results(void **state)
{
	(void)state;
	static const char partial[] = "\x0b"
				      "ABC";
	assert_int_equal(mllp_wrap_check(NULL, partial, 4),
			 MLLP_ERR_PARTIAL_WRAP);
	static struct keep k;
	struct fixture f;
	start(&f, &k);
	struct client c;
	client_open(&c, f.rv);
	for (int i = 0; i < 4; i++)
		client_send(&c, i);
	keep_wait(&k, 4);
	char ack[ACK_CAP];
	int l = rx_ack_text(ack, sizeof(ack), 0);
	struct mllp_reply_item items[] = {
	    {keep_take(&k, 0), ack, (size_t)l, 12345},
	    {NULL, ack, (size_t)l, 12345},
	    {keep_take(&k, 1), NULL, 5, 12345},
	    {keep_take(&k, 2), partial, 4, 12345},
	    {keep_take(&k, 3), NULL, 0, 12345},
	};
	assert_int_equal(mllp_receiver_reply_batch(items, 5), 2);
	assert_int_equal(items[0].result, 0);
	assert_int_equal(items[1].result, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(items[2].result, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(items[3].result, MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(items[4].result, 0);
	client_expect(&c, 0);
	/* Frames 1..3 get nothing: the reply of frame 4 comes next. */
	client_send(&c, 4);
	keep_wait(&k, 1);
	assert_int_equal(rx_reply_n(keep_take(&k, 4), 4), 0);
	client_expect(&c, 4);
	end_one(&f, &k, &c, 2);
}

/* Two connections, a deferred frame on each; the first resets and the
 * receiver reports its handle abandoned. One call with both: the first
 * answers MLLP_ERR_CLOSED, the second is sent. */
static void test_closed_in_batch(void **state)
{
	(void)state;
	static struct keep k;
	struct fixture f;
	start(&f, &k);
	struct client c1, c2;
	client_open(&c1, f.rv);
	client_open(&c2, f.rv);
	client_send(&c1, 1);
	client_send(&c2, 2);
	keep_wait(&k, 2);
	/* A reset: after a plain end of file the receiver would still wait
	 * to write the pending reply, as it does for any reply. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(c1.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	client_close(&c1);
	assert_true(tr_wait_count(&k.abandoned, 1, DEADLINE_MS));
	assert_int_equal(rx_stats(f.rv).replies_abandoned, 1);
	char a1[ACK_CAP], a2[ACK_CAP];
	int l1 = rx_ack_text(a1, sizeof(a1), 1);
	int l2 = rx_ack_text(a2, sizeof(a2), 2);
	struct mllp_reply_item items[] = {
	    {keep_take(&k, 1), a1, (size_t)l1, 12345},
	    {keep_take(&k, 2), a2, (size_t)l2, 12345},
	};
	assert_int_equal(mllp_receiver_reply_batch(items, 2), 1);
	assert_int_equal(items[0].result, MLLP_ERR_CLOSED);
	assert_int_equal(items[1].result, 0);
	client_expect(&c2, 2);
	struct mllp_receiver_stats s = rx_stats(f.rv);
	assert_int_equal(s.replies_after_close, 1);
	assert_int_equal(s.replies_abandoned, 1);
	assert_int_equal(atomic_load(&k.abandoned), 1);
	end_one(&f, &k, &c2, 1);
}

/* Handles of two receivers in one call, r1 r2 r1: all sent, each client
 * gets its replies in order; both receivers are wholly freed. */
static void test_two_receivers(void **state)
{
	(void)state;
	static struct keep k;
	keep_init(&k);
	struct fixture f1, f2;
	if (!fixture_start(&f1, &k))
		skip();
	assert_true(fixture_start(&f2, &k));
	assert_int_not_equal(mllp_receiver_port(f1.rv),
			     mllp_receiver_port(f2.rv));
	struct client c1, c2;
	client_open(&c1, f1.rv);
	client_open(&c2, f2.rv);
	client_send(&c1, 0);
	client_send(&c1, 1);
	client_send(&c2, 10);
	keep_wait(&k, 3);
	char a[3][ACK_CAP];
	int ns[3] = {0, 10, 1};
	struct mllp_reply_item items[3];
	for (int i = 0; i < 3; i++) {
		int l = rx_ack_text(a[i], ACK_CAP, ns[i]);
		items[i] = (struct mllp_reply_item){keep_take(&k, ns[i]), a[i],
						    (size_t)l, 12345};
	}
	assert_int_equal(mllp_receiver_reply_batch(items, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(items[i].result, 0);
	client_expect(&c1, 0);
	client_expect(&c1, 1);
	client_expect(&c2, 10);
	assert_int_equal(atomic_load(&k.bad), 0);
	fixture_settle(&f1, 2);
	fixture_settle(&f2, 1);
	client_expect_nothing(&c1);
	client_expect_nothing(&c2);
	fixture_destroy(&f1);
	fixture_destroy(&f2);
	client_close(&c1);
	client_close(&c2);
}

#define MT_CONNS   4
#define MT_FRAMES  500
#define MT_WORKERS 4
#define MT_BATCH   16

struct mt {
	struct keep *k;
	_Atomic long ok;   /* sum of the calls' results */
	_Atomic int calls; /* batches answered */
	_Atomic int bad;   /* a result other than 0, a short count */
};

/* A worker: waits for MT_BATCH kept handles (fewer only once told to
 * leave), takes the oldest and answers them in one call, newest first;
 * the workers' calls overlap in any order. Taking the newest instead
 * could leave a connection's oldest handle under a queue that never
 * fills up again: its later replies wait behind it, so it stays paused at
 * max_pending_replies and sends no more frames. */
static void *mt_worker(void *arg)
{
	struct mt *m = arg;
	struct keep *k = m->k;
	static _Thread_local char acks[MT_BATCH][ACK_CAP];
	for (;;) {
		struct mllp_reply_item items[MT_BATCH];
		pthread_mutex_lock(&k->mu);
		while (k->nitems < MT_BATCH && !atomic_load(&k->done))
			pthread_cond_wait(&k->cv, &k->mu);
		int n = k->nitems < MT_BATCH ? k->nitems : MT_BATCH;
		for (int j = 0; j < n; j++) {
			struct kept it = k->items[n - 1 - j];
			int l = rx_ack_text(acks[j], ACK_CAP, it.n);
			items[j] = (struct mllp_reply_item){it.h, acks[j],
							    (size_t)l, 12345};
		}
		k->nitems -= n;
		memmove(k->items, k->items + n,
			(size_t)k->nitems * sizeof(k->items[0]));
		pthread_mutex_unlock(&k->mu);
		if (n == 0)
			return NULL;
		size_t ok = mllp_receiver_reply_batch(items, (size_t)n);
		atomic_fetch_add(&m->ok, (long)ok);
		atomic_fetch_add(&m->calls, 1);
		if (ok != (size_t)n)
			atomic_fetch_add(&m->bad, 1);
		for (int j = 0; j < n; j++)
			if (items[j].result != 0)
				atomic_fetch_add(&m->bad, 1);
	}
}

struct mt_sender {
	struct client *c;
	int base;
	pthread_t th;
};

/* Pipeline frames base..base+MT_FRAMES-1 without waiting for replies. */
static void *mt_sender_main(void *arg)
{
	struct mt_sender *s = arg;
	for (int i = 0; i < MT_FRAMES; i++)
		client_send(s->c, s->base + i);
	return NULL;
}

/* Read connection c's MT_FRAMES replies: how many came in order, each
 * the ACK of base+i, before end. */
static int mt_read(struct client *c, int base, uint64_t end)
{
	char got[ACK_CAP], want[ACK_CAP];
	for (int i = 0; i < MT_FRAMES; i++) {
		if (client_next(c, got, sizeof(got), end) < 0)
			return i;
		rx_ack_text(want, sizeof(want), base + i);
		if (strcmp(got, want) != 0) {
			fprintf(stderr, "reply %d: want %s, got %s\n", i, want,
				got);
			return i;
		}
	}
	return MT_FRAMES;
}

/* What the receiver and the queue say when replies did not all come. */
static void mt_print(struct fixture *f, struct keep *k, const int *got)
{
	struct mllp_receiver_stats s = rx_stats(f->rv);
	pthread_mutex_lock(&k->mu);
	int queued = k->nitems;
	pthread_mutex_unlock(&k->mu);
	fprintf(stderr,
		"replies read per connection: %d %d %d %d; %d handles "
		"queued; receiver: %llu messages, %llu replies sent, %llu "
		"pending, %llu reads paused\n",
		got[0], got[1], got[2], got[3], queued,
		(unsigned long long)s.messages_received,
		(unsigned long long)s.replies_sent,
		(unsigned long long)s.replies_pending,
		(unsigned long long)s.reads_paused);
}

/* 4 connections pipeline 500 frames each; 4 threads answer batches of 16
 * handles taken from one queue, each batch newest first (connections
 * mixed, out of arrival order): every frame gets exactly one reply, in
 * arrival order on its connection. */
static void test_many_threads(void **state)
{
	(void)state;
	static struct keep k;
	struct fixture f;
	start(&f, &k);
	static struct mt m;
	memset(&m, 0, sizeof(m));
	m.k = &k;
	pthread_t w[MT_WORKERS];
	for (int i = 0; i < MT_WORKERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, mt_worker, &m), 0);
	static struct client c[MT_CONNS];
	struct mt_sender s[MT_CONNS];
	for (int i = 0; i < MT_CONNS; i++) {
		client_open(&c[i], f.rv);
		s[i] = (struct mt_sender){&c[i], i * 1000, 0};
		assert_int_equal(
		    pthread_create(&s[i].th, NULL, mt_sender_main, &s[i]), 0);
	}
	uint64_t t0 = tn_now_ms(), end = t0 + DEADLINE_MS;
	int got[MT_CONNS];
	for (int i = 0; i < MT_CONNS; i++)
		got[i] = mt_read(&c[i], i * 1000, end);
	fprintf(stderr, "%d replies in %llu ms, %d calls\n",
		got[0] + got[1] + got[2] + got[3],
		(unsigned long long)(tn_now_ms() - t0), atomic_load(&m.calls));
	if (got[0] + got[1] + got[2] + got[3] != MT_CONNS * MT_FRAMES)
		mt_print(&f, &k, got);
	atomic_store(&k.done, true);
	pthread_mutex_lock(&k.mu);
	pthread_cond_broadcast(&k.cv);
	pthread_mutex_unlock(&k.mu);
	for (int i = 0; i < MT_WORKERS; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < MT_CONNS; i++) {
		pthread_join(s[i].th, NULL);
		assert_int_equal(got[i], MT_FRAMES);
	}
	assert_int_equal(atomic_load(&m.bad), 0);
	assert_int_equal(atomic_load(&m.ok), MT_CONNS * MT_FRAMES);
	assert_int_equal(atomic_load(&m.calls),
			 MT_CONNS * MT_FRAMES / MT_BATCH);
	assert_int_equal(atomic_load(&k.bad), 0);
	fixture_settle(&f, MT_CONNS * MT_FRAMES);
	for (int i = 0; i < MT_CONNS; i++)
		client_expect_nothing(&c[i]);
	fixture_destroy(&f);
	for (int i = 0; i < MT_CONNS; i++)
		client_close(&c[i]);
}

/* No items: 0, and nothing is done (a handle in an item not counted is
 * neither consumed nor answered: it is replied to afterwards, once). */
static void test_no_items(void **state)
{
	(void)state;
	assert_int_equal(mllp_receiver_reply_batch(NULL, 0), 0);
	assert_int_equal(mllp_receiver_reply_batch(NULL, 3), 0);
	static struct keep k;
	struct fixture f;
	start(&f, &k);
	struct client c;
	client_open(&c, f.rv);
	client_send(&c, 7);
	keep_wait(&k, 1);
	char ack[ACK_CAP];
	int l = rx_ack_text(ack, sizeof(ack), 7);
	struct mllp_reply_item it = {keep_take(&k, 7), ack, (size_t)l, 12345};
	assert_int_equal(mllp_receiver_reply_batch(&it, 0), 0);
	assert_int_equal(it.result, 12345);
	assert_int_equal(rx_stats(f.rv).replies_pending, 1);
	assert_int_equal(mllp_receiver_reply(it.handle, ack, (size_t)l), 0);
	client_expect(&c, 7);
	end_one(&f, &k, &c, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_content),
	    cmocka_unit_test(test_mixed_results),
	    cmocka_unit_test(test_closed_in_batch),
	    cmocka_unit_test(test_two_receivers),
	    cmocka_unit_test(test_many_threads),
	    cmocka_unit_test(test_no_items),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

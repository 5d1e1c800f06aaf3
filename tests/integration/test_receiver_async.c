/* Deferred receiver replies on loopback (mllp_reply_defer,
 * mllp_receiver_reply): replies completed out of order by 4 threads leave
 * in arrival order; a connection closed with replies pending answers
 * MLLP_ERR_CLOSED, leaks nothing and is counted (stats and the Prometheus
 * page); max_pending_replies pauses reads and memory stays bounded;
 * replies completed inside the dispatcher; stop and
 * destroy with handles outstanding; the listening port is free once stop
 * returns. Ephemeral ports only; every wait is bounded; no sleep
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
#define MAX_HANDLES 4096

/* ---- the dispatcher: defers every frame, keeps the handles ----------------
 */

enum mode {
	M_KEEP = 0, /* defer; the test or the workers reply */
	M_INLINE,   /* defer and reply inside the dispatcher */
	M_MIXED,    /* by n % 3: deferred+inline, synchronous, deferred none */
};

struct item {
	struct mllp_reply_handle *h;
	int n; /* CTRL<n> */
};

struct disp {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item items[MAX_HANDLES];
	int nitems; /* waiting to be replied (M_KEEP) */
	int taken;  /* handed out so far */
	_Atomic int mode;
	_Atomic int deferred;
	_Atomic int inline_rc_bad; /* anything unexpected on other threads */
	_Atomic bool done;	   /* workers: leave */
	_Atomic int order[MAX_HANDLES]; /* completion order (by n) */
	_Atomic int ncompleted;
	char sync_reply[128];
};

static void disp_init(struct disp *d, enum mode m)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	atomic_store(&d->mode, m);
}

static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct disp *d = ctx;
	int n = rx_ctrl_of(msg);
	int m = atomic_load(&d->mode);
	if (m == M_MIXED && n % 3 == 1) { /* synchronous */
		int l = rx_ack_text(d->sync_reply, sizeof(d->sync_reply), n);
		reply->kind = MLLP_REPLY_BYTES;
		reply->data = d->sync_reply;
		reply->len = (size_t)l;
		return;
	}
	/* No cmocka assert here: this is the receiver's thread. */
	struct mllp_reply_handle *h = mllp_reply_defer(reply);
	if (!h) {
		atomic_fetch_add(&d->inline_rc_bad, 1);
		return;
	}
	if (mllp_reply_defer(reply)) /* once per frame */
		atomic_fetch_add(&d->inline_rc_bad, 1);
	atomic_fetch_add(&d->deferred, 1);
	if (m == M_INLINE || (m == M_MIXED && n % 3 == 0)) {
		if (rx_reply_n(h, n) != 0)
			atomic_fetch_add(&d->inline_rc_bad, 1);
		return;
	}
	if (m == M_MIXED) { /* n % 3 == 2: no reply */
		if (mllp_receiver_reply(h, NULL, 0) != 0)
			atomic_fetch_add(&d->inline_rc_bad, 1);
		return;
	}
	pthread_mutex_lock(&d->mu);
	if (d->nitems < MAX_HANDLES)
		d->items[d->nitems++] = (struct item){h, n};
	else
		atomic_fetch_add(&d->inline_rc_bad, 1);
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Take every kept handle (for the test's own replies). */
static int disp_take_all(struct disp *d, struct item *out)
{
	pthread_mutex_lock(&d->mu);
	int n = d->nitems;
	memcpy(out, d->items, (size_t)n * sizeof(*out));
	d->nitems = 0;
	pthread_mutex_unlock(&d->mu);
	return n;
}

static bool disp_has(struct disp *d, int n)
{
	pthread_mutex_lock(&d->mu);
	bool ok = d->nitems >= n;
	pthread_mutex_unlock(&d->mu);
	return ok;
}

/* A worker: takes the newest kept handle (so completions come out of
 * arrival order) and replies to it. */
static void *worker(void *arg)
{
	struct disp *d = arg;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (d->nitems == 0 && !atomic_load(&d->done))
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->nitems == 0)
			break;
		struct item it = d->items[--d->nitems];
		pthread_mutex_unlock(&d->mu);
		int k = atomic_fetch_add(&d->ncompleted, 1);
		if (k < MAX_HANDLES)
			atomic_store(&d->order[k], it.n);
		if (rx_reply_n(it.h, it.n) != 0)
			atomic_fetch_add(&d->inline_rc_bad, 1);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- receiver and client helpers ------------------------------------------
 */

struct stat_wait {
	struct mllp_receiver *rv;
	uint64_t pending, active, sent;
	bool use_pending, use_active, use_sent;
};

static bool stat_reached(void *arg)
{
	struct stat_wait *w = arg;
	struct mllp_receiver_stats s = rx_stats(w->rv);
	return (!w->use_pending || s.replies_pending == w->pending) &&
	       (!w->use_active || s.connections_active == w->active) &&
	       (!w->use_sent || s.replies_sent >= w->sent);
}

static bool wait_pending(struct mllp_receiver *rv, uint64_t n)
{
	struct stat_wait w = {.rv = rv, .pending = n, .use_pending = true};
	return tr_wait_until(stat_reached, &w, DEADLINE_MS);
}

static bool wait_active(struct mllp_receiver *rv, uint64_t n)
{
	struct stat_wait w = {.rv = rv, .active = n, .use_active = true};
	return tr_wait_until(stat_reached, &w, DEADLINE_MS);
}

/* The receiver's Prometheus page has this whole line. */
static void page_has(struct mllp_receiver *rv, const char *line)
{
	static char page[16384];
	int n = mllp_metrics_render_receiver(rv, page, sizeof(page), NULL);
	assert_true(n > 0 && (size_t)n < sizeof(page));
	size_t len = strlen(line);
	for (const char *p = page; (p = strstr(p, line)); p += len)
		if ((p == page || p[-1] == '\n') && p[len] == '\n')
			return;
	fail_msg("no line '%s' in:\n%s", line, page);
}

/* What the receiver says when replies did not all come. */
static void print_stats(struct mllp_receiver *rv, int got)
{
	struct mllp_receiver_stats s = rx_stats(rv);
	fprintf(stderr,
		"%d replies read; receiver: %llu messages, %llu replies "
		"sent, %llu pending, %llu reads paused, %llu buffered bytes\n",
		got, (unsigned long long)s.messages_received,
		(unsigned long long)s.replies_sent,
		(unsigned long long)s.replies_pending,
		(unsigned long long)s.reads_paused,
		(unsigned long long)s.buffered_bytes);
}

static void send_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

struct sender {
	int fd;
	int from, count;
	pthread_t th;
};

/* Pipeline frames from..from+count-1 without waiting for replies. */
static void *sender_main(void *arg)
{
	struct sender *s = arg;
	char f[512];
	for (int i = s->from; i < s->from + s->count; i++)
		send_all(s->fd, f, rx_frame(f, sizeof(f), i));
	return NULL;
}

/* Read `count` reply frames; store MSA-2's n of each (CTRL<n>) in out.
 * Returns how many came before the deadline. */
static int read_replies(int fd, int *out, int count)
{
	static char buf[1 << 16];
	size_t got = 0;
	int n = 0;
	uint64_t end = tn_now_ms() + DEADLINE_MS;
	while (n < count) {
		uint64_t now = tn_now_ms();
		if (now >= end)
			break;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(end - now)) <= 0)
			continue;
		ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i + 1 < got; i++) {
			if (buf[i] != 0x1c || buf[i + 1] != 0x0d)
				continue;
			buf[i] = 0;
			const char *msa = strstr(buf + start, "MSA|AA|CTRL");
			out[n++] = msa ? atoi(msa + 11) : -1;
			start = i + 2;
			if (n == count)
				break;
		}
		memmove(buf, buf + start, got - start);
		got -= start;
	}
	return n;
}

/* A receiver on the counting allocator with the dispatcher d in mode m:
 * fixture_config fills f->c; fixture_start starts it (false when io_uring
 * is unavailable: the caller skips), connects f->fd and sends frames
 * 0..n-1, which all wait as pending replies. */
struct fixture {
	struct rx_counted k;
	struct mllp_receiver_config c;
	struct mllp_receiver *rv;
	int fd;
};

static void fixture_config(struct fixture *f, struct disp *d, enum mode m)
{
	memset(f, 0, sizeof(*f));
	disp_init(d, m);
	rx_counted_init(&f->k);
	ti_receiver_config(&f->c, dispatch, d);
	f->c.allocator = &f->k.a;
	f->fd = -1;
}

static bool fixture_start(struct fixture *f, int n)
{
	if (!rx_start(&f->c, &f->rv))
		return false;
	f->fd = tn_connect(mllp_receiver_port(f->rv), 0);
	char fr[512];
	for (int i = 0; i < n; i++)
		send_all(f->fd, fr, rx_frame(fr, sizeof(fr), i));
	assert_true(wait_pending(f->rv, (uint64_t)n));
	return true;
}

/* ---- the tests ------------------------------------------------------------
 */

#define OOO_FRAMES  2000
#define OOO_WORKERS 4

/* A client pipelines OOO_FRAMES frames; 4 threads complete the deferred
 * replies newest first: on the wire the replies come in arrival order
 * (MSA-2 CTRL0, CTRL1, ...), also across the max_pending_replies pauses. */
static void test_out_of_order_completion(void **state)
{
	(void)state;
	static struct disp d;
	disp_init(&d, M_KEEP);
	struct mllp_receiver_config c;
	ti_receiver_config(&c, dispatch, &d);
	struct mllp_receiver *rv;
	if (!rx_start(&c, &rv))
		skip();
	pthread_t w[OOO_WORKERS];
	for (int i = 0; i < OOO_WORKERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, worker, &d), 0);
	struct sender s = {.fd = tn_connect(mllp_receiver_port(rv), 0),
			   .from = 0,
			   .count = OOO_FRAMES};
	assert_int_equal(pthread_create(&s.th, NULL, sender_main, &s), 0);
	static int got[OOO_FRAMES];
	int n = read_replies(s.fd, got, OOO_FRAMES);
	pthread_join(s.th, NULL);
	if (n != OOO_FRAMES)
		print_stats(rv, n);
	assert_int_equal(n, OOO_FRAMES);
	for (int i = 0; i < OOO_FRAMES; i++)
		if (got[i] != i) {
			fprintf(stderr, "reply %d names CTRL%d\n", i, got[i]);
			fail();
		}
	/* The completions really were out of order. */
	int inversions = 0;
	int nc = atomic_load(&d.ncompleted);
	for (int i = 1; i < nc && i < MAX_HANDLES; i++)
		inversions +=
		    atomic_load(&d.order[i]) < atomic_load(&d.order[i - 1]);
	fprintf(stderr, "%d of %d completions out of order\n", inversions, nc);
	assert_true(inversions > 0);
	assert_int_equal(atomic_load(&d.inline_rc_bad), 0);
	assert_true(wait_pending(rv, 0));
	/* counted when the send completes, maybe after the client read it */
	struct stat_wait sw = {.rv = rv, .sent = OOO_FRAMES, .use_sent = true};
	assert_true(tr_wait_until(stat_reached, &sw, DEADLINE_MS));
	struct mllp_receiver_stats st = rx_stats(rv);
	assert_int_equal(st.replies_sent, OOO_FRAMES);
	assert_int_equal(st.replies_after_close, 0);
	close(s.fd);
	atomic_store(&d.done, true);
	pthread_mutex_lock(&d.mu);
	pthread_cond_broadcast(&d.cv);
	pthread_mutex_unlock(&d.mu);
	for (int i = 0; i < OOO_WORKERS; i++)
		pthread_join(w[i], NULL);
	mllp_receiver_destroy(rv);
}

/* The peer closes with 5 replies pending: each mllp_receiver_reply answers
 * MLLP_ERR_CLOSED, the stats count them, and nothing leaks. */
static void test_closed_with_pending(void **state)
{
	(void)state;
	static struct disp d;
	struct fixture t;
	fixture_config(&t, &d, M_KEEP);
	if (!fixture_start(&t, 5))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	page_has(rv, "mllp_replies_pending 5");
	page_has(rv, "mllp_replies_after_close_total 0");
	/* A reset: after a plain end of file the receiver would still wait
	 * to write the pending replies, as it does for any reply. */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	assert_true(wait_active(rv, 0));
	assert_int_equal(rx_stats(rv).replies_pending, 0);
	static struct item it[MAX_HANDLES];
	int n = disp_take_all(&d, it);
	assert_int_equal(n, 5);
	for (int i = 0; i < n; i++)
		assert_int_equal(rx_reply_n(it[i].h, it[i].n), MLLP_ERR_CLOSED);
	assert_int_equal(rx_stats(rv).replies_after_close, 5);
	page_has(rv, "mllp_replies_pending 0");
	page_has(rv, "mllp_replies_after_close_total 5");
	mllp_receiver_destroy(rv);
	assert_int_equal(atomic_load(&t.k.blocks), 0);
}

#define BP_LIMIT  8
#define BP_FRAMES 3000

/* A dispatcher that does not reply, a client that keeps sending: the
 * receiver reads no more at max_pending_replies (pending == the limit, no
 * frame decoded beyond it, buffered bytes bounded); once the test replies
 * (and the dispatcher answers the rest itself), reading resumes and every
 * frame gets its reply in order. */
static void test_backpressure(void **state)
{
	(void)state;
	static struct disp d;
	disp_init(&d, M_KEEP);
	struct mllp_receiver_config c;
	ti_receiver_config(&c, dispatch, &d);
	c.max_pending_replies = BP_LIMIT;
	struct mllp_receiver *rv;
	if (!rx_start(&c, &rv))
		skip();
	struct sender s = {.fd = tn_connect(mllp_receiver_port(rv), 0),
			   .from = 0,
			   .count = BP_FRAMES};
	assert_int_equal(pthread_create(&s.th, NULL, sender_main, &s), 0);
	assert_true(wait_pending(rv, BP_LIMIT));
	/* Held at the limit while the client keeps writing: the sender
	 * blocks once the socket buffers are full. A frame dispatched
	 * beyond the limit would show as more kept handles. */
	uint64_t until = tn_now_ms() + 300;
	while (tn_now_ms() < until) {
		struct mllp_receiver_stats st = rx_stats(rv);
		assert_int_equal(st.replies_pending, BP_LIMIT);
		assert_int_equal(st.messages_received, BP_LIMIT);
		assert_true(st.buffered_bytes < 1024 * 1024);
		struct pollfd p = {.fd = s.fd, .events = 0};
		poll(&p, 1, 10);
	}
	assert_true(rx_stats(rv).reads_paused >= 1);
	assert_false(disp_has(&d, BP_LIMIT + 1));
	/* Resume: the dispatcher answers what comes next itself; the test
	 * completes the kept ones, newest first. */
	atomic_store(&d.mode, M_INLINE);
	static struct item it[MAX_HANDLES];
	int n = disp_take_all(&d, it);
	assert_int_equal(n, BP_LIMIT);
	for (int i = n - 1; i >= 0; i--)
		assert_int_equal(rx_reply_n(it[i].h, it[i].n), 0);
	static int got[BP_FRAMES];
	int r = read_replies(s.fd, got, BP_FRAMES);
	pthread_join(s.th, NULL);
	assert_int_equal(r, BP_FRAMES);
	for (int i = 0; i < BP_FRAMES; i++)
		assert_int_equal(got[i], i);
	assert_int_equal(atomic_load(&d.inline_rc_bad), 0);
	assert_true(wait_pending(rv, 0));
	close(s.fd);
	mllp_receiver_destroy(rv);
}

#define MIXED_FRAMES 300

/* Replies completed inside the dispatcher (deferred, then replied at
 * once), mixed with synchronous replies and deferred "no reply": the
 * client gets exactly the frames with a reply, in order. */
static void test_reply_from_dispatcher(void **state)
{
	(void)state;
	static struct disp d;
	struct fixture t;
	fixture_config(&t, &d, M_MIXED);
	struct mllp_receiver *rv;
	if (!rx_start(&t.c, &rv))
		skip();
	struct sender s = {.fd = tn_connect(mllp_receiver_port(rv), 0),
			   .from = 0,
			   .count = MIXED_FRAMES};
	assert_int_equal(pthread_create(&s.th, NULL, sender_main, &s), 0);
	int want = MIXED_FRAMES - MIXED_FRAMES / 3; /* n % 3 == 2: none */
	static int got[MIXED_FRAMES];
	int r = read_replies(s.fd, got, want);
	pthread_join(s.th, NULL);
	assert_int_equal(r, want);
	for (int i = 0, j = 0; i < MIXED_FRAMES; i++) {
		if (i % 3 == 2)
			continue;
		assert_int_equal(got[j], i);
		j++;
	}
	assert_int_equal(atomic_load(&d.inline_rc_bad), 0);
	assert_int_equal(atomic_load(&d.deferred),
			 MIXED_FRAMES - MIXED_FRAMES / 3);
	assert_true(wait_pending(rv, 0));
	close(s.fd);
	mllp_receiver_destroy(rv);
	assert_int_equal(atomic_load(&t.k.blocks), 0);
}

/* Stop with 4 handles outstanding returns; replies after it answer
 * MLLP_ERR_CLOSED. destroy with one still outstanding returns too: the
 * receiver's memory goes when that last one is replied to. */
static void test_stop_with_outstanding(void **state)
{
	(void)state;
	static struct disp d;
	struct fixture t;
	fixture_config(&t, &d, M_KEEP);
	if (!fixture_start(&t, 4))
		skip();
	struct mllp_receiver *rv = t.rv;
	int fd = t.fd;
	static struct item it[MAX_HANDLES];
	int n = disp_take_all(&d, it);
	assert_int_equal(n, 4);
	/* One completed and sent before the stop. */
	assert_int_equal(rx_reply_n(it[0].h, it[0].n), 0);
	int got[1];
	assert_int_equal(read_replies(fd, got, 1), 1);
	assert_int_equal(got[0], 0);
	assert_int_equal(mllp_receiver_stop(rv), 0);
	assert_int_equal(rx_stats(rv).replies_pending, 0);
	assert_int_equal(rx_reply_n(it[1].h, it[1].n), MLLP_ERR_CLOSED);
	assert_int_equal(mllp_receiver_reply(it[2].h, NULL, 0),
			 MLLP_ERR_CLOSED);
	assert_int_equal(rx_stats(rv).replies_after_close, 2);
	mllp_receiver_destroy(rv);
	assert_true(atomic_load(&t.k.blocks) > 0); /* held by it[3] */
	assert_int_equal(rx_reply_n(it[3].h, it[3].n), MLLP_ERR_CLOSED);
	assert_int_equal(atomic_load(&t.k.blocks), 0);
	close(fd);
}

/* Bad input: no handle outside a receiver's dispatch, a NULL handle, data
 * NULL with a length (consumed: the frame gets no reply, nothing leaks),
 * a partly framed reply, max_pending_replies 0. */
static void test_bad_input(void **state)
{
	(void)state;
	struct mllp_reply own;
	memset(&own, 0, sizeof(own));
	assert_null(mllp_reply_defer(&own));
	assert_null(mllp_reply_defer(NULL));
	assert_int_equal(mllp_receiver_reply(NULL, "x", 1),
			 MLLP_ERR_INVALID_ARGUMENT);

	static struct disp d;
	struct fixture t;
	fixture_config(&t, &d, M_KEEP);
	t.c.max_pending_replies = 0;
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&t.c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "invalid receiver configuration");
	t.c.max_pending_replies = MLLP_RECEIVER_DEFAULT_MAX_PENDING;
	if (!fixture_start(&t, 3))
		skip();
	rv = t.rv;
	int fd = t.fd;
	static struct item it[MAX_HANDLES];
	assert_int_equal(disp_take_all(&d, it), 3);
	assert_int_equal(mllp_receiver_reply(it[0].h, NULL, 5),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_receiver_reply(it[1].h, "\x0bMSH|", 5),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(rx_reply_n(it[2].h, it[2].n), 0);
	int got[1];
	assert_int_equal(read_replies(fd, got, 1), 1);
	assert_int_equal(got[0], 2);
	assert_true(wait_pending(rv, 0));
	close(fd);
	mllp_receiver_destroy(rv);
	assert_int_equal(atomic_load(&t.k.blocks), 0);
}

/* Once mllp_receiver_stop returns (a client connected, so an accept is
 * armed again), the port is free: a connect is refused and a new listener
 * binds it at once (SO_REUSEADDR, as the receiver). */
static void test_stop_frees_port(void **state)
{
	(void)state;
	struct mllp_receiver_config c;
	ti_receiver_config(&c, mllp_dispatch_echo, NULL);
	struct mllp_receiver *rv;
	if (!rx_start(&c, &rv))
		skip();
	uint16_t port = mllp_receiver_port(rv);
	int fd = tn_connect(port, 0);
	assert_true(wait_active(rv, 1));
	assert_int_equal(mllp_receiver_stop(rv), 0);

	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	int crc = connect(cfd, (struct sockaddr *)&sa, sizeof(sa));
	int cerr = errno;
	close(cfd);
	if (crc == 0)
		fprintf(stderr, "port %u still accepts after stop\n", port);
	assert_int_equal(crc, -1);
	assert_int_equal(cerr, ECONNREFUSED);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int brc = bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
	if (brc != 0)
		fprintf(stderr, "bind port %u after stop: %s\n", port,
			strerror(errno));
	assert_int_equal(brc, 0);
	assert_int_equal(listen(lfd, 4), 0);
	close(lfd);
	close(fd);
	mllp_receiver_destroy(rv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_out_of_order_completion),
	    cmocka_unit_test(test_closed_with_pending),
	    cmocka_unit_test(test_backpressure),
	    cmocka_unit_test(test_reply_from_dispatcher),
	    cmocka_unit_test(test_stop_with_outstanding),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_stop_frees_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

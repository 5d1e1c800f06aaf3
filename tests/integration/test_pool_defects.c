/* Integration tests of the pool engine's edge cases on loopback: replies
 * sent before their message, ordering of sends and cancels, calls refused
 * on the manager thread. Run once per backend (MLLP_TEST_BACKEND). The
 * engine's internals (socket lifetime, wait errors, timer limits) are in
 * test_pool_engine.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "netutil.h"

/* ---- a raw MLLP server that answers before being asked ---------------- */

#define EARLY_MSGS 300

/* Answers each message CTRL<n> with an AA ACK (MSH-10 "ACK<n>"), then,
 * after a short pause, sends an AA for CTRL<n+1> (MSH-10 "PRE<n+1>") if
 * that message has not reached its socket yet: a reply to a message it
 * was never sent. Every message still gets its own ACK when it comes. */
#define ORDER_MAX 4096

struct early_srv {
	int lfd;
	uint16_t port;
	pthread_t th;
	bool preack; /* false: answer each message, nothing more */
	/* control ids in the order they arrived */
	int order[ORDER_MAX];
	_Atomic int norder;
	_Atomic bool stop;
	_Atomic bool pre[EARLY_MSGS + 2];
	/* when the early ACK's send began (CLOCK_REALTIME, ns) */
	int64_t pre_ns[EARLY_MSGS + 2];
	_Atomic int npre;
	_Atomic int frames;
};

/* A pool configured by cfg (ti_config's defaults when NULL) with one
 * endpoint of one connection to 127.0.0.1:port: the pool in *p, the
 * endpoint's id in *ep. */
static void pool_one_ep(const struct mllp_pool_config *cfg, uint16_t port,
			struct mllp_pool **p, uint32_t *ep)
{
	struct mllp_pool_config def;
	if (!cfg) {
		ti_config(&def, NULL);
		cfg = &def;
	}
	assert_int_equal(mllp_pool_create(cfg, p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(*p, "127.0.0.1", port, 1, NULL, ep, NULL),
	    0);
}

static void send_ack(int fd, const char *id, int n)
{
	char b[256];
	int l = snprintf(b, sizeof(b),
			 "\x0bMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK|"
			 "%s%d|P|2.5\rMSA|AA|CTRL%d\r\x1c\r",
			 id, n, n);
	tn_send_all(fd, b, (size_t)l);
}

static void pause_us(long us)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
	nanosleep(&ts, NULL);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Answer the complete frames in buf[0..*len) and drop them; rx_ns: when
 * the kernel received the last bytes read (SO_TIMESTAMPNS). */
static void early_frames(struct early_srv *s, int fd, char *buf, size_t *len,
			 unsigned *seed, int64_t rx_ns)
{
	for (;;) {
		char *end = memmem(buf, *len, "\x1c\r", 2);
		if (!end)
			return;
		size_t flen = (size_t)(end - buf) + 2;
		buf[flen - 2] = 0;
		char *id = strstr(buf, "|CTRL");
		int n = id ? atoi(id + 5) : -1;
		memmove(buf, buf + flen, *len - flen);
		*len -= flen;
		atomic_fetch_add(&s->frames, 1);
		int k = atomic_load(&s->norder);
		if (k < ORDER_MAX) {
			s->order[k] = n;
			atomic_store(&s->norder, k + 1);
		}
		if (n < 0)
			continue;
		/* Arrived before the early ACK for it left (the server was
		 * slow between its check and its send): not early. */
		if (n <= EARLY_MSGS && atomic_load(&s->pre[n]) &&
		    rx_ns < s->pre_ns[n])
			atomic_store(&s->pre[n], false);
		send_ack(fd, "ACK", n);
		if (!s->preack || n > EARLY_MSGS)
			continue;
		/* 0-300 us, a third of the time none. */
		int r = rand_r(seed) % 450;
		if (r >= 150)
			pause_us(r - 150);
		int pending = 0;
		if (*len == 0 && ioctl(fd, FIONREAD, &pending) == 0 &&
		    pending == 0 && n + 1 < EARLY_MSGS) {
			s->pre_ns[n + 1] = realtime_ns();
			atomic_store(&s->pre[n + 1], true);
			atomic_fetch_add(&s->npre, 1);
			send_ack(fd, "PRE", n + 1);
		}
	}
}

static void *early_main(void *arg)
{
	struct early_srv *s = arg;
	unsigned seed = 12345;
	int cfd = -1;
	char buf[8192];
	size_t len = 0;
	while (!atomic_load(&s->stop)) {
		struct pollfd pf[2] = {{s->lfd, POLLIN, 0}, {cfd, POLLIN, 0}};
		if (poll(pf, cfd >= 0 ? 2 : 1, 50) <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int nfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (nfd >= 0) {
				/* No Nagle: an early ACK leaves at once, not
				 * with the TCP ack of the next message. */
				int one = 1;
				setsockopt(nfd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
				setsockopt(nfd, SOL_SOCKET, SO_TIMESTAMPNS,
					   &one, sizeof(one));
				if (cfd >= 0)
					close(cfd);
				cfd = nfd;
				len = 0;
			}
			continue;
		}
		if (cfd < 0 || !(pf[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		struct iovec iov = {buf + len, sizeof(buf) - len};
		union {
			char b[CMSG_SPACE(sizeof(struct timespec))];
			struct cmsghdr align;
		} ctl;
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.b,
				    .msg_controllen = sizeof(ctl.b)};
		ssize_t r = recvmsg(cfd, &mh, 0);
		if (r <= 0) {
			close(cfd);
			cfd = -1;
			continue;
		}
		int64_t rx_ns = INT64_MAX;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SCM_TIMESTAMPNS) {
				struct timespec ts;
				memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
				rx_ns = (int64_t)ts.tv_sec * 1000000000 +
					ts.tv_nsec;
			}
		}
		len += (size_t)r;
		early_frames(s, cfd, buf, &len, &seed, rx_ns);
		if (len == sizeof(buf))
			len = 0;
	}
	if (cfd >= 0)
		close(cfd);
	return NULL;
}

struct early_msg {
	_Atomic int ends;
	bool accepted;
	bool by_pre;
};

static void early_cb(struct mllp_future *f, void *arg)
{
	struct early_msg *m = arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT) {
		m->accepted = true;
		m->by_pre = r->reply &&
			    memmem(r->reply, r->reply_len, "|PRE", 4) != NULL;
	}
	atomic_fetch_add(&m->ends, 1);
}

static void early_ack_run(bool close_on_recv_error)
{
	static struct early_srv s;
	memset(&s, 0, sizeof(s));
	s.preack = true;
	s.lfd = tn_listen(&s.port);
	assert_int_equal(pthread_create(&s.th, NULL, early_main, &s), 0);

	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.conn.reply_timeout_ms = 300;
	cfg.conn.close_on_recv_error = close_on_recv_error;
	cfg.conn.queue_timeout_ms = 60000;
	struct mllp_pool *p = NULL;
	uint32_t ep;
	pool_one_ep(&cfg, s.port, &p, &ep);
	static struct early_msg msgs[EARLY_MSGS];
	memset(msgs, 0, sizeof(msgs));
	struct mllp_future *fs[EARLY_MSGS];
	for (int i = 0; i < EARLY_MSGS; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		o.callback = early_cb;
		o.callback_arg = &msgs[i];
		struct mllp_error err;
		int rc = mllp_pool_send(p, ep, m, len, &o, &fs[i], &err);
		if (rc != 0)
			fprintf(stderr, "send %d: %s\n", i, err.message);
		assert_int_equal(rc, 0);
		free(m);
	}
	int by_pre = 0, accepted = 0, pre_sent;
	for (int i = 0; i < EARLY_MSGS; i++)
		assert_int_equal(mllp_future_wait(fs[i], 60000), 0);
	assert_int_equal(mllp_pool_stop(p), 0);
	pre_sent = atomic_load(&s.npre);
	for (int i = 0; i < EARLY_MSGS; i++) {
		assert_int_equal(atomic_load(&msgs[i].ends), 1);
		accepted += msgs[i].accepted;
		/* An early ACK that left after the message arrived (see
		 * early_frames) may be taken: the pool cannot tell. */
		if (msgs[i].by_pre && atomic_load(&s.pre[i])) {
			fprintf(stderr, "CTRL%d accepted by an early ACK\n", i);
			by_pre++;
		}
		mllp_future_free(fs[i]);
	}
	mllp_pool_destroy(p);
	atomic_store(&s.stop, true);
	pthread_join(s.th, NULL);
	close(s.lfd);
	fprintf(stderr, "%s: %d early ACKs sent, %d accepted, %d by early\n",
		ti_backend_name(), pre_sent, accepted, by_pre);
	/* The server answered, and sent early ACKs; how many depends on how
	 * often the pool was slower than the server's pause (a sanitized
	 * server is slower): too few, and the case was not exercised. */
	assert_true(accepted >= EARLY_MSGS / 10);
	if (pre_sent < EARLY_MSGS / 30) {
		fprintf(stderr,
			"only %d early ACKs sent (want %d): the pool always "
			"sent first; nothing to check\n",
			pre_sent, EARLY_MSGS / 30);
		skip();
	}
	/* The pool measures the bytes waiting in the socket right before
	 * it hands the send to the kernel: an early ACK landing in the few
	 * microseconds between the two is still taken (conn_presend.c; up
	 * to 3 % here). Without the fix 10-18 % were on io_uring. */
	assert_true(by_pre * 20 <= pre_sent);
}

/* A receiver that sends the next message's ACK before it has that
 * message: never taken as its reply (closed as unsolicited). */
static void test_early_ack_never_credited(void **state)
{
	(void)state;
	early_ack_run(true);
}

/* The same with replies correlated by MSA-2 (socket kept): the early ACK
 * is dropped, the message waits for its own reply (or times out). */
static void test_early_ack_never_credited_correlated(void **state)
{
	(void)state;
	early_ack_run(false);
}

/* ---- one FIFO for callbacks and threads ------------------------------ */

#define FIFO_N 600

/* Sends are serialised by mu and numbered in that order: the send of
 * message k returned before the send of k + 1 began, so the pool must
 * take, and with one connection send, them in that order (pool.h). */
struct fifo {
	pthread_mutex_t mu;
	int next;
	struct mllp_pool *p;
	uint32_t ep;
	struct mllp_future *fs[FIFO_N];
	_Atomic int done;
	_Atomic int from_cb;
};

static void fifo_cb(struct mllp_future *f, void *arg);

static void fifo_send(struct fifo *x, bool cb)
{
	pthread_mutex_lock(&x->mu);
	if (x->next < FIFO_N) {
		size_t len;
		char *m = tr_hl7(x->next, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.callback = fifo_cb;
		o.callback_arg = x;
		struct mllp_future *f = NULL;
		int rc = mllp_pool_send(x->p, x->ep, m, len, &o, &f, NULL);
		free(m);
		if (rc == 0) {
			x->fs[x->next++] = f;
			if (cb)
				atomic_fetch_add(&x->from_cb, 1);
		}
	}
	pthread_mutex_unlock(&x->mu);
}

static void fifo_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	struct fifo *x = arg;
	/* Every other completion sends one more. */
	if (atomic_fetch_add(&x->done, 1) % 2)
		fifo_send(x, true);
}

static bool fifo_all_done(void *arg)
{
	struct fifo *x = arg;
	return atomic_load(&x->done) >= FIFO_N;
}

/* Sends from completion callbacks and from another thread, interleaved:
 * the receiver gets them in the order of the send calls. */
static void test_fifo_callbacks_and_threads(void **state)
{
	(void)state;
	static struct early_srv s;
	memset(&s, 0, sizeof(s));
	s.lfd = tn_listen(&s.port);
	assert_int_equal(pthread_create(&s.th, NULL, early_main, &s), 0);
	static struct fifo x;
	memset(&x, 0, sizeof(x));
	pthread_mutex_init(&x.mu, NULL);
	pool_one_ep(NULL, s.port, &x.p, &x.ep);
	/* This thread keeps a few sends ahead of the completions; every
	 * completion sends one more from its callback. */
	uint64_t give_up = 0;
	for (int spins = 0; spins < 50000000; spins++) {
		pthread_mutex_lock(&x.mu);
		int next = x.next;
		pthread_mutex_unlock(&x.mu);
		if (next >= FIFO_N)
			break;
		if (next - atomic_load(&x.done) < 3)
			fifo_send(&x, false);
		else
			sched_yield();
		give_up = (uint64_t)spins;
	}
	(void)give_up;
	assert_true(tr_wait_until(fifo_all_done, &x, 20000));
	mllp_pool_stop(x.p);
	int bad = 0;
	for (int i = 0; i < FIFO_N; i++) {
		assert_int_equal(mllp_future_result(x.fs[i])->status, 0);
		mllp_future_free(x.fs[i]);
	}
	int n = atomic_load(&s.norder);
	assert_int_equal(n, FIFO_N);
	for (int i = 0; i < n; i++) {
		if (s.order[i] != i) {
			if (bad++ < 5)
				fprintf(stderr, "position %d: CTRL%d\n", i,
					s.order[i]);
		}
	}
	fprintf(stderr, "%d of %d sent from callbacks, %d out of order\n",
		atomic_load(&x.from_cb), FIFO_N, bad);
	mllp_pool_destroy(x.p);
	atomic_store(&s.stop, true);
	pthread_join(s.th, NULL);
	close(s.lfd);
	pthread_mutex_destroy(&x.mu);
	assert_true(atomic_load(&x.from_cb) > FIFO_N / 10);
	assert_true(atomic_load(&x.from_cb) < FIFO_N - FIFO_N / 10);
	assert_int_equal(bad, 0);
}

/* ---- a cancel racing its send ----------------------------------------- */

#define RACE_N 200

/* The callback of a message sends the next one and hands it to the
 * canceller thread, which cancels it at once, and waits for that before
 * it returns: the cancel is pushed while the send is not yet taken. */
struct race {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mllp_pool *p;
	uint32_t ep;
	struct mllp_future *handoff; /* to the canceller */
	bool canceled;		     /* by the canceller */
	bool x_done;		     /* the callback has returned */
	bool quit;
	struct mllp_future *y[RACE_N];
	_Atomic int y_ends[RACE_N];
	int round;
};

static void race_y_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

static bool timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, bool *flag)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	while (!*flag)
		if (pthread_cond_timedwait(cv, mu, &dl) == ETIMEDOUT)
			return *flag;
	return true;
}

static void race_x_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	struct race *r = arg;
	int i = r->round;
	size_t len;
	char *m = tr_hl7(100000 + i, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.callback = race_y_cb;
	o.callback_arg = &r->y_ends[i];
	struct mllp_future *y = NULL;
	int rc = mllp_pool_send(r->p, r->ep, m, len, &o, &y, NULL);
	free(m);
	pthread_mutex_lock(&r->mu);
	if (rc == 0) {
		r->y[i] = y;
		r->canceled = false;
		r->handoff = y;
		pthread_cond_broadcast(&r->cv);
		(void)timed_wait(&r->cv, &r->mu, &r->canceled);
	}
	r->x_done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void *canceller(void *arg)
{
	struct race *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->quit) {
		if (!r->handoff) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		mllp_future_cancel(r->handoff);
		r->handoff = NULL;
		r->canceled = true;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static void test_cancel_racing_its_send(void **state)
{
	(void)state;
	struct tr t;
	tr_start(&t, 0, TR_ACK);
	static struct race r;
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	pool_one_ep(NULL, t.port, &r.p, &r.ep);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, canceller, &r), 0);
	int not_canceled = 0;
	for (int i = 0; i < RACE_N; i++) {
		r.round = i;
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.callback = race_x_cb;
		o.callback_arg = &r;
		struct mllp_future *x = NULL;
		assert_int_equal(
		    mllp_pool_send(r.p, r.ep, m, len, &o, &x, NULL), 0);
		free(m);
		assert_int_equal(mllp_future_wait(x, 5000), 0);
		mllp_future_free(x);
		pthread_mutex_lock(&r.mu);
		assert_true(timed_wait(&r.cv, &r.mu, &r.x_done));
		r.x_done = false;
		struct mllp_future *y = r.y[i];
		pthread_mutex_unlock(&r.mu);
		assert_non_null(y);
		assert_int_equal(mllp_future_wait(y, 5000), 0);
		/* Canceled before it was taken or while in flight: always
		 * canceled, never answered. */
		if (mllp_future_result(y)->status != MLLP_ERR_CANCELED)
			not_canceled++;
	}
	mllp_pool_stop(r.p);
	for (int i = 0; i < RACE_N; i++) {
		assert_int_equal(atomic_load(&r.y_ends[i]), 1);
		mllp_future_free(r.y[i]);
	}
	pthread_mutex_lock(&r.mu);
	r.quit = true;
	pthread_cond_broadcast(&r.cv);
	pthread_mutex_unlock(&r.mu);
	pthread_join(th, NULL);
	mllp_pool_destroy(r.p);
	tr_stop(&t);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
	assert_int_equal(not_canceled, 0);
}

/* ---- calls refused on the manager thread ---------------------------- */

struct refusals {
	struct mllp_pool *p;
	uint32_t ep;
	struct mllp_future *other; /* a future still pending */
	int stop_rc, send_rc, send_timeout0_rc, wait_self_rc, wait_other_rc,
	    poll_self_rc;
	struct mllp_error send_err;
	_Atomic int ran;
};

static void refuse_cb(struct mllp_future *f, void *arg)
{
	struct refusals *x = arg;
	x->stop_rc = mllp_pool_stop(x->p);
	mllp_pool_destroy(x->p); /* refused: the pool lives on */
	size_t len;
	char *m = tr_hl7(2, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.block = true; /* block_timeout MLLP_INFINITE */
	struct mllp_future *g = NULL;
	x->send_rc = mllp_pool_send(x->p, x->ep, m, len, &o, &g, &x->send_err);
	/* block_timeout 0 never waits: allowed. */
	o.block_timeout_ms = 0;
	struct mllp_future *h = NULL;
	x->send_timeout0_rc = mllp_pool_send(x->p, x->ep, m, len, &o, &h, NULL);
	mllp_future_free(h);
	free(m);
	x->wait_self_rc = mllp_future_wait(f, 1000);
	x->wait_other_rc = mllp_future_wait(x->other, MLLP_INFINITE);
	x->poll_self_rc = mllp_future_wait(f, 0);
	atomic_store(&x->ran, 1);
}

/* From a completion callback: stop, destroy, a blocking send and waits
 * are refused with MLLP_ERR_INVALID_ARGUMENT (destroy, which returns
 * nothing, is ignored); the pool goes on working. */
static void test_refused_from_callback(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	static struct refusals x;
	memset(&x, 0, sizeof(x));
	pool_one_ep(NULL, r.port, &x.p, &x.ep);
	/* A future that stays pending: an endpoint nobody listens on, with
	 * a queue timeout that keeps it waiting. */
	struct mllp_conn_options co;
	mllp_conn_options_init(&co);
	co.queue_timeout_ms = MLLP_INFINITE;
	uint32_t dead;
	assert_int_equal(mllp_pool_add_endpoint(x.p, "127.0.0.1",
						tr_free_port(), 1, &co, &dead,
						NULL),
			 0);
	size_t len;
	char *m = tr_hl7(1, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	assert_int_equal(mllp_pool_send(x.p, dead, m, len, &o, &x.other, NULL),
			 0);
	o.callback = refuse_cb;
	o.callback_arg = &x;
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(x.p, x.ep, m, len, &o, &f, NULL), 0);
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	assert_true(tr_wait_count(&x.ran, 1, 5000));
	assert_int_equal(x.stop_rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(x.send_rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(x.send_err.message,
			    "a blocking send from a callback would wait for "
			    "the manager thread it runs on");
	assert_int_equal(x.send_timeout0_rc, 0);
	assert_int_equal(x.wait_self_rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(x.wait_other_rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(x.poll_self_rc, 0);
	/* Still working. */
	struct mllp_send_options plain;
	mllp_send_options_init(&plain);
	struct mllp_future *g = NULL;
	assert_int_equal(mllp_pool_send(x.p, x.ep, m, len, &plain, &g, NULL),
			 0);
	free(m);
	assert_int_equal(mllp_future_wait(g, 5000), 0);
	assert_int_equal(mllp_future_result(g)->status, 0);
	assert_int_equal(mllp_pool_stop(x.p), 0);
	assert_int_equal(mllp_future_result(x.other)->status, MLLP_ERR_STOPPED);
	mllp_future_free(f);
	mllp_future_free(g);
	mllp_future_free(x.other);
	mllp_pool_destroy(x.p);
	tr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_early_ack_never_credited),
	    cmocka_unit_test(test_early_ack_never_credited_correlated),
	    cmocka_unit_test(test_fifo_callbacks_and_threads),
	    cmocka_unit_test(test_cancel_racing_its_send),
	    cmocka_unit_test(test_refused_from_callback),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

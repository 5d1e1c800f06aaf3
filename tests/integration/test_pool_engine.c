/* Integration tests of the pool engine's internals: a socket's memory is
 * not reused while a completion handler holds it (fake backend, LIFO
 * allocator), a wait() that fails for good stops the manager (the real
 * backend, wrapped), and the largest timeouts the options accept do not
 * wrap. Run once per backend (MLLP_TEST_BACKEND). */
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

#include "backend.h"
#include "pool_internal.h"
#include "wrap_backend.h"

/* ---- an allocator that hands back the last freed block of a size ------ */

#define LIFO_SLOTS 256

struct lifo {
	pthread_mutex_t mu;
	void *blk[LIFO_SLOTS];
	size_t size[LIFO_SLOTS];
	int n;
};

static void *lifo_alloc(void *ctx, size_t size)
{
	struct lifo *l = ctx;
	pthread_mutex_lock(&l->mu);
	for (int i = l->n - 1; i >= 0; i--) {
		if (l->size[i] != size)
			continue;
		void *p = l->blk[i];
		memmove(&l->blk[i], &l->blk[i + 1],
			(size_t)(l->n - i - 1) * sizeof(void *));
		memmove(&l->size[i], &l->size[i + 1],
			(size_t)(l->n - i - 1) * sizeof(size_t));
		l->n--;
		pthread_mutex_unlock(&l->mu);
		return p;
	}
	pthread_mutex_unlock(&l->mu);
	return malloc(size);
}

static void lifo_free(void *ctx, void *p, size_t size)
{
	struct lifo *l = ctx;
	if (!p)
		return;
	pthread_mutex_lock(&l->mu);
	if (l->n < LIFO_SLOTS) {
		l->blk[l->n] = p;
		l->size[l->n++] = size;
		p = NULL;
	}
	pthread_mutex_unlock(&l->mu);
	free(p);
}

static void *lifo_realloc(void *ctx, void *p, size_t old, size_t size)
{
	void *n = lifo_alloc(ctx, size);
	if (!n)
		return NULL;
	if (p)
		memcpy(n, p, old < size ? old : size);
	lifo_free(ctx, p, old);
	return n;
}

static void lifo_drain(struct lifo *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->blk[i]);
	l->n = 0;
}

/* ---- a fake backend: scripted completions, no I/O ---------------------- */

#define FAKE_FDS 4096
#define FAKE_Q	 64

/* Connects succeed, sends complete in full; the first message sent is
 * answered with its ACK followed by junk in a recv completion that ends
 * the recv (more false: a multishot recv's last completion), later ones
 * with their ACK alone. It counts a recv armed on a socket whose connect
 * has not completed yet: the pool acting on a completion of a socket it
 * already closed. Manager thread only, except wake and the counters. */
static struct fake {
	int efd;
	struct mllpi_cqe q[FAKE_Q];
	int qfd[FAKE_Q]; /* the socket of a connect completion, else -1 */
	int nq;
	int state[FAKE_FDS]; /* 0 none, 1 connecting, 2 connected */
	uint64_t recv_tok[FAKE_FDS];
	char rx[FAKE_Q][512];
	int nrx;
	int sends;
	_Atomic int bad_recv;
} fk;

static void fake_push(uint64_t token, int res, const char *data, bool more)
{
	if (fk.nq == FAKE_Q)
		return;
	fk.qfd[fk.nq] = -1;
	struct mllpi_cqe *c = &fk.q[fk.nq++];
	c->token = token;
	c->res = res;
	c->data = (const unsigned char *)data;
	c->more = more;
}

static int fake_create(const struct mllpi_backend_config *cfg,
		       struct mllpi_backend **out, struct mllp_error *err)
{
	(void)cfg;
	(void)err;
	fk.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	*out = (struct mllpi_backend *)(void *)&fk;
	return fk.efd < 0 ? -errno : 0;
}

static void fake_destroy(struct mllpi_backend *b)
{
	(void)b;
	close(fk.efd);
}

static int fake_connect(struct mllpi_backend *b, int fd,
			const struct sockaddr *sa, socklen_t len,
			uint64_t token)
{
	(void)b;
	(void)sa;
	(void)len;
	assert_true(fd >= 0 && fd < FAKE_FDS);
	fk.state[fd] = 1;
	fk.recv_tok[fd] = 0;
	fake_push(token, 0, NULL, false);
	fk.qfd[fk.nq - 1] = fd;
	return 0;
}

/* The control id of a framed or bare HL7 message in msg. */
static int msg_ctrl(const struct msghdr *msg)
{
	char buf[512];
	size_t n = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		size_t l = msg->msg_iov[i].iov_len;
		if (l > sizeof(buf) - 1 - n)
			l = sizeof(buf) - 1 - n;
		memcpy(buf + n, msg->msg_iov[i].iov_base, l);
		n += l;
	}
	buf[n] = 0;
	const char *id = strstr(buf, "|CTRL");
	return id ? atoi(id + 5) : -1;
}

static int fake_sendmsg(struct mllpi_backend *b, int fd,
			const struct msghdr *msg, uint64_t token)
{
	(void)b;
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	fake_push(token, (int)total, NULL, false);
	if (fk.state[fd] != 2 || !fk.recv_tok[fd])
		return 0;
	char *r = fk.rx[fk.nrx++ % FAKE_Q];
	bool first = fk.sends++ == 0;
	int l = snprintf(r, 512,
			 "\x0bMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK|"
			 "A%d|P|2.5\rMSA|AA|CTRL%d\r\x1c\r%s",
			 fk.sends, msg_ctrl(msg), first ? "junk" : "");
	fake_push(fk.recv_tok[fd], l, r, !first);
	if (first)
		fk.recv_tok[fd] = 0;
	return 0;
}

static int fake_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	if (fk.state[fd] != 2)
		atomic_fetch_add(&fk.bad_recv, 1);
	fk.recv_tok[fd] = token;
	return 0;
}

static int fake_accept(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	(void)fd;
	(void)token;
	return -EOPNOTSUPP;
}

static int fake_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	if (fk.recv_tok[fd])
		fake_push(fk.recv_tok[fd], -ECANCELED, NULL, false);
	fk.recv_tok[fd] = 0;
	if (token)
		fake_push(token, 0, NULL, false);
	return 0;
}

static int fake_wait(struct mllpi_backend *b, int64_t timeout_us,
		     struct mllpi_cqe *out, int max)
{
	(void)b;
	if (fk.nq == 0 && timeout_us != 0) {
		struct pollfd pf = {fk.efd, POLLIN, 0};
		int ms = timeout_us < 0 ? -1 : (int)((timeout_us + 999) / 1000);
		poll(&pf, 1, ms);
	}
	uint64_t v;
	(void)!read(fk.efd, &v, sizeof(v));
	int n = fk.nq < max ? fk.nq : max;
	memcpy(out, fk.q, (size_t)n * sizeof(*out));
	for (int i = 0; i < n; i++)
		if (fk.qfd[i] >= 0) /* connected once handed back */
			fk.state[fk.qfd[i]] = 2;
	memmove(fk.q, fk.q + n, (size_t)(fk.nq - n) * sizeof(*out));
	memmove(fk.qfd, fk.qfd + n, (size_t)(fk.nq - n) * sizeof(int));
	fk.nq -= n;
	return n;
}

static void fake_wake(struct mllpi_backend *b)
{
	(void)b;
	uint64_t one = 1;
	(void)!write(fk.efd, &one, sizeof(one));
}

static const struct mllpi_backend_ops fake_ops = {
    .name = "fake",
    .nonblocking_sockets = true,
    .create = fake_create,
    .destroy = fake_destroy,
    .connect = fake_connect,
    .sendmsg = fake_sendmsg,
    .recv = fake_recv,
    .accept = fake_accept,
    .cancel_fd = fake_cancel_fd,
    .wait = fake_wait,
    .wake = fake_wake,
};

/* A reply that ends the recv and closes the connection (data after the
 * trailer) frees the socket, and the immediate reconnect allocates a new
 * one: with an allocator that hands the same block straight back, the
 * rest of the completion's handling must not take the new socket for the
 * old one (it armed a recv on the new socket before its connect
 * completed). */
static void test_socket_address_reuse(void **state)
{
	(void)state;
	memset(&fk, 0, sizeof(fk));
	static struct lifo l;
	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.mu, NULL);
	struct mllp_allocator a = {lifo_alloc, lifo_realloc, lifo_free, &l};
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.allocator = &a;
	struct mllp_pool *p = NULL;
	struct mllp_error err;
	assert_int_equal(mllpi_pool_create_ops(&cfg, &fake_ops, &p, &err), 0);
	uint32_t ep;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", 9, 1, NULL, &ep, NULL), 0);
	for (int i = 1; i <= 2; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		struct mllp_future *f;
		assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, &err),
				 0);
		free(m);
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		const struct mllp_result *r = mllp_future_result(f);
		/* The first: data after the trailer; the second: its ACK on
		 * the new connection. */
		assert_int_equal(r->status,
				 i == 1 ? MLLP_ERR_DATA_AFTER_TRAILER : 0);
		mllp_future_free(f);
	}
	mllp_pool_destroy(p);
	lifo_drain(&l);
	pthread_mutex_destroy(&l.mu);
	assert_int_equal(atomic_load(&fk.bad_recv), 0);
}

struct loglines {
	pthread_mutex_t mu;
	char text[4096];
};

static void log_keep(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)l;
	struct loglines *g = ctx;
	pthread_mutex_lock(&g->mu);
	size_t n = strlen(g->text);
	snprintf(g->text + n, sizeof(g->text) - n, "%s\n", line);
	pthread_mutex_unlock(&g->mu);
}

/* A pool on the wrapped backend of this run, with a test receiver that
 * never answers; NULL (test skipped) where io_uring is unavailable. */
static struct mllp_pool *wrapped_pool_mode(struct tr *r, struct loglines *g,
					   uint32_t *ep, enum tr_mode mode)
{
	const struct mllpi_backend_ops *wrap_ops = tw_reset();
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.log = log_keep;
	cfg.log_ctx = g;
	cfg.conn.reply_timeout_ms = MLLP_INFINITE;
	struct mllp_pool *p = NULL;
	struct mllp_error err;
	int rc = mllpi_pool_create_ops(&cfg, wrap_ops, &p, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		return NULL;
	}
	assert_int_equal(rc, 0);
	tr_start(r, 0, mode);
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", r->port, 1, NULL, ep, NULL),
	    0);
	return p;
}

static struct mllp_pool *wrapped_pool(struct tr *r, struct loglines *g,
				      uint32_t *ep)
{
	return wrapped_pool_mode(r, g, ep, TR_NONE);
}

static bool one_in_flight(void *arg)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(arg, &st);
	return st.in_flight == 1 && st.queued == 1;
}

static struct mllp_future *send_n(struct mllp_pool *p, uint32_t ep, int n,
				  int *rc)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	struct mllp_future *f = NULL;
	*rc = mllp_pool_send(p, ep, m, len, &o, &f, NULL);
	free(m);
	return f;
}

/* wait() failing for good (here EBADF, as for a ring whose descriptor is
 * gone): the manager stops, logs why, and fails the message in flight and
 * the queued ones with that reason; later sends are refused; stop returns.
 * Never a spin, never a hang. */
static void test_wait_error_stops_manager(void **state)
{
	(void)state;
	struct tr r;
	struct loglines g;
	uint32_t ep;
	struct mllp_pool *p = wrapped_pool(&r, &g, &ep);
	if (!p)
		skip();
	int rc;
	struct mllp_future *f1 = send_n(p, ep, 1, &rc);
	assert_int_equal(rc, 0);
	struct mllp_future *f2 = send_n(p, ep, 2, &rc);
	assert_int_equal(rc, 0);
	assert_true(tr_wait_until(one_in_flight, p, 5000));
	atomic_store(&tw_wait_fail, -EBADF);
	/* Wake the manager: a send, which fails with the same reason. */
	struct mllp_future *f3 = send_n(p, ep, 3, &rc);
	assert_int_equal(rc, 0);
	struct mllp_future *fs[3] = {f1, f2, f3};
	bool done = true;
	for (int i = 0; i < 3; i++)
		done = done && mllp_future_wait(fs[i], 5000) == 0;
	int failures = atomic_load(&tw_wait_failures);
	if (!done)
		atomic_store(&tw_wait_fail, 0); /* let stop finish */
	assert_true(done);
	/* No spin: a few failed calls, then the manager left. */
	assert_true(failures >= 1 && failures <= 8);
	for (int i = 0; i < 3; i++) {
		const struct mllp_result *res = mllp_future_result(fs[i]);
		assert_int_equal(res->status, -EBADF);
		assert_non_null(
		    strstr(res->error.message, "backend wrapped wait failed"));
		mllp_future_free(fs[i]);
	}
	struct mllp_future *f4 = send_n(p, ep, 4, &rc);
	assert_int_equal(rc, MLLP_ERR_STOPPED);
	assert_null(f4);
	assert_int_equal(mllp_pool_stop(p), 0);
	assert_int_equal(atomic_load(&tw_wait_failures), failures);
	assert_non_null(strstr(g.text, "the pool stopped: backend wrapped "
				       "wait failed: "));
	mllp_pool_destroy(p);
	tr_stop(&r);
	pthread_mutex_destroy(&g.mu);
}

/* ---- the largest timeouts the options accept ------------------------- */

/* A pool with one connection to port, conn options changed by tweak. */
static struct mllp_pool *limits_pool(uint16_t port,
				     void (*tweak)(struct mllp_conn_options *),
				     uint32_t *ep)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	tweak(&cfg.conn);
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", port, 1, NULL, ep, NULL), 0);
	return p;
}

static struct mllp_future *send_big(struct mllp_pool *p, uint32_t ep,
				    size_t size, int64_t reply_timeout)
{
	size_t len;
	char *m = tr_hl7(1, &len);
	char *big = malloc(size);
	assert_non_null(big);
	memset(big, 'x', size);
	memcpy(big, m, len);
	free(m);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_RAW;
	o.reply_timeout_ms = reply_timeout;
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(p, ep, big, size, &o, &f, NULL), 0);
	free(big);
	return f;
}

/* Still waiting after a while: no timer expired at once. */
static void expect_pending(struct mllp_future *f)
{
	assert_int_equal(mllp_future_wait(f, 300), MLLP_ERR_TIMEOUT);
}

static void max_reply(struct mllp_conn_options *o)
{
	o->reply_timeout_ms = INT64_MAX;
}

static void max_send(struct mllp_conn_options *o)
{
	o->send_timeout_ms = INT64_MAX;
}

static void max_queue(struct mllp_conn_options *o)
{
	o->queue_timeout_ms = INT64_MAX;
}

static void max_connect_backoff(struct mllp_conn_options *o)
{
	o->connect_timeout_ms = UINT32_MAX;
	o->use_backoff = true;
	o->backoff_max_s = UINT32_MAX;
	o->reply_timeout_ms = INT64_MAX;
	o->send_timeout_ms = INT64_MAX;
	o->queue_timeout_ms = INT64_MAX;
}

/* reply_timeout INT64_MAX (the connection's, then one message's): the
 * message waits for its reply. */
/* Messages sent one after another while the backend's measure with the
 * send answers rc; their verdicts; how many times it was asked. */
static int inq_run(int rc, int n)
{
	struct tr r;
	struct loglines g;
	uint32_t ep;
	struct mllp_pool *p = wrapped_pool_mode(&r, &g, &ep, TR_ACK);
	if (!p)
		skip();
	atomic_store(&tw_inq_fail, rc);
	for (int i = 1; i <= n; i++) {
		int src;
		struct mllp_future *f = send_n(p, ep, i, &src);
		assert_int_equal(src, 0);
		assert_int_equal(mllp_future_wait(f, 5000), 0);
		const struct mllp_result *res = mllp_future_result(f);
		assert_int_equal(res->status, 0);
		assert_true(res->has_verdict);
		assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
		mllp_future_free(f);
	}
	mllp_pool_destroy(p);
	tr_stop(&r);
	pthread_mutex_destroy(&g.mu);
	return atomic_load(&tw_inq_calls);
}

/* A send the backend cannot measure this time (-EAGAIN: the socket's
 * receive is not in the kernel yet) goes out plainly, measured by ioctl,
 * and the next message asks the backend again; only -EOPNOTSUPP (the
 * kernel never can) makes the pool stop asking. */
static void test_inq_declined_per_send(void **state)
{
	(void)state;
	if (ti_backend() == MLLP_BACKEND_EPOLL) {
		fprintf(stderr, "epoll: no send with a measure (ioctl)\n");
		skip();
	}
	assert_int_equal(inq_run(-EAGAIN, 5), 5);
	assert_int_equal(inq_run(-EOPNOTSUPP, 5), 1);
}

static void test_max_reply_timeout_waits(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_NONE);
	uint32_t ep;
	struct mllp_pool *p = limits_pool(r.port, max_reply, &ep);
	struct mllp_future *f = send_big(p, ep, 200, 0);
	expect_pending(f);
	struct mllp_future *g = send_big(p, ep, 200, INT64_MAX);
	expect_pending(g);
	mllp_pool_stop(p);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_STOPPED);
	mllp_future_free(f);
	mllp_future_free(g);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

/* send_timeout INT64_MAX, a receiver that never reads and a message
 * larger than the socket buffers: the send waits. */
static void test_max_send_timeout_waits(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_STALL);
	uint32_t ep;
	struct mllp_pool *p = limits_pool(r.port, max_send, &ep);
	struct mllp_future *f = send_big(p, ep, 64u << 20, 0);
	expect_pending(f);
	mllp_pool_stop(p);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

/* queue_timeout INT64_MAX and nothing listening: the message waits in
 * the queue. */
static void test_max_queue_timeout_waits(void **state)
{
	(void)state;
	uint32_t ep;
	struct mllp_pool *p = limits_pool(tr_free_port(), max_queue, &ep);
	struct mllp_future *f = send_big(p, ep, 200, 0);
	expect_pending(f);
	mllp_pool_stop(p);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_STOPPED);
	mllp_future_free(f);
	mllp_pool_destroy(p);
}

/* Every limit at once (connect_timeout and backoff_max_s at
 * UINT32_MAX too): a message still goes through normally. */
static void test_max_limits_still_work(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	uint32_t ep;
	struct mllp_pool *p = limits_pool(r.port, max_connect_backoff, &ep);
	size_t len;
	char *m = tr_hl7(7, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, NULL), 0);
	free(m);
	assert_int_equal(mllp_future_wait(f, 5000), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	tr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_socket_address_reuse),
	    cmocka_unit_test(test_wait_error_stops_manager),
	    cmocka_unit_test(test_inq_declined_per_send),
	    cmocka_unit_test(test_max_reply_timeout_waits),
	    cmocka_unit_test(test_max_send_timeout_waits),
	    cmocka_unit_test(test_max_queue_timeout_waits),
	    cmocka_unit_test(test_max_limits_still_work),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

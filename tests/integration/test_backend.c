/* Conformance of the I/O backends (pool/backend.h) over loopback: every
 * case runs against io_uring and against epoll, driving the seam directly
 * (as the pool's manager does) from the test thread, which is the thread
 * that created the backend (single issuer). io_uring cases are skipped
 * where io_uring cannot be set up; accept cases are skipped for a backend
 * without an accept op. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "backend.h"

#define TOK_CONNECT 0x100
#define TOK_SEND    0x200
#define TOK_RECV    0x300
#define TOK_ACCEPT  0x400
#define TOK_CANCEL  0x500

struct rec {
	uint64_t token;
	int res;
	bool more;
	bool taken;
};

#define MAX_RECS 65536

/* One test's backend and what its completions said. Test thread only. */
struct fx {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *b;
	struct rec recs[MAX_RECS];
	int nrec;
	/* bytes of every recv completion, in order */
	unsigned char *rx;
	size_t rxlen, rxcap;
	int recv_ends;	  /* recv completions with more == false */
	int last_end_res; /* res of the last of them */
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int setup(void **state)
{
	const struct mllpi_backend_ops *ops = *state;
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->ops = ops;
	struct mllpi_backend_config cfg = {
	    .entries = 64,
	    .recv_buffers = 8,
	    .recv_buffer_size = 4096,
	    .test_ring_error = 0,
	    .alloc = mllp_allocator_libc(),
	};
	struct mllp_error err;
	mllp_error_clear(&err);
	int rc = ops->create(&cfg, &f->b, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "skip %s: %s\n", ops->name, err.message);
		free(f);
		*state = NULL;
		return 0;
	}
	if (rc != 0)
		fprintf(stderr, "create %s: %s\n", ops->name, err.message);
	assert_int_equal(rc, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	f->ops->destroy(f->b);
	free(f->rx);
	free(f);
	return 0;
}

/* The fixture, or skip when the backend cannot be set up here. */
static struct fx *FX(void **state)
{
	if (!*state)
		skip();
	return *state;
}

/* One wait(); records completions and copies received bytes (valid only
 * until the next wait()). Returns how many came. */
static int pump(struct fx *f, int64_t timeout_us)
{
	struct mllpi_cqe c[64];
	int n = f->ops->wait(f->b, timeout_us, c, 64);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		assert_true(f->nrec < MAX_RECS);
		struct rec *r = &f->recs[f->nrec++];
		r->token = c[i].token;
		r->res = c[i].res;
		r->more = c[i].more;
		r->taken = false;
		if ((c[i].token & 0xff00) == TOK_RECV) {
			if (c[i].res > 0) {
				assert_non_null(c[i].data);
				if (f->rxlen + (size_t)c[i].res > f->rxcap) {
					f->rxcap = (f->rxlen + c[i].res) * 2;
					f->rx = realloc(f->rx, f->rxcap);
					assert_non_null(f->rx);
				}
				memcpy(f->rx + f->rxlen, c[i].data,
				       (size_t)c[i].res);
				f->rxlen += (size_t)c[i].res;
				/* Only the last completion of a recv may
				 * have more == false. */
				assert_true(c[i].more || c[i].res <= 0);
			}
			if (!c[i].more) {
				f->recv_ends++;
				f->last_end_res = c[i].res;
			}
		}
	}
	return n;
}

/* The first completion with token not yet taken (only_end: the first with
 * more == false), waiting up to ms. */
static struct rec *await_(struct fx *f, uint64_t token, int ms, bool only_end)
{
	uint64_t end = now_us() + (uint64_t)ms * 1000u;
	for (;;) {
		for (int i = 0; i < f->nrec; i++) {
			if (!f->recs[i].taken && f->recs[i].token == token &&
			    (!only_end || !f->recs[i].more)) {
				f->recs[i].taken = true;
				return &f->recs[i];
			}
		}
		uint64_t t = now_us();
		if (t >= end)
			return NULL;
		pump(f, (int64_t)(end - t));
	}
}

static struct rec *await(struct fx *f, uint64_t token, int ms)
{
	return await_(f, token, ms, false);
}

/* A recv completion of tok (end: its last one). Running out of provided
 * buffers never shows: the backend holds the recv and reads on once
 * buffers are given back, so no completion carries -ENOBUFS. */
static struct rec *await_recv(struct fx *f, uint64_t tok, int ms, bool end)
{
	struct rec *r = await_(f, tok, ms, end);
	if (r)
		assert_int_not_equal(r->res, -ENOBUFS);
	return r;
}

/* Cancel what is outstanding on fd (a recv with recv_tok, or none: 0),
 * wait for its end, then close: the contract's order. */
static void cancel_close(struct fx *f, int fd, uint64_t recv_tok)
{
	assert_int_equal(f->ops->cancel_fd(f->b, fd, 0), 0);
	if (recv_tok)
		assert_non_null(await_(f, recv_tok, 5000, true));
	close(fd);
}

static int make_listener(struct fx *f, int backlog, uint16_t *port)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	if (f->ops->nonblocking_sockets)
		type |= SOCK_NONBLOCK;
	int l = socket(AF_INET, type, 0);
	assert_true(l >= 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, backlog), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return l;
}

static void loopback(struct sockaddr_in *a, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = htons(port);
}

static int client_socket(struct fx *f)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	if (f->ops->nonblocking_sockets)
		type |= SOCK_NONBLOCK;
	int fd = socket(AF_INET, type, 0);
	assert_true(fd >= 0);
	return fd;
}

/* Blocking accept with a deadline (the listener may be non-blocking). */
static int accept_wait(int l)
{
	struct pollfd p = {.fd = l, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	return s;
}

/* A connected pair: *cfd through the backend's connect, *sfd accepted
 * (blocking) by the test. */
static void connect_pair(struct fx *f, int *cfd, int *sfd)
{
	uint16_t port;
	int l = make_listener(f, 16, &port);
	struct sockaddr_in a;
	loopback(&a, port);
	*cfd = client_socket(f);
	assert_int_equal(f->ops->connect(f->b, *cfd, (struct sockaddr *)&a,
					 sizeof(a), TOK_CONNECT),
			 0);
	struct rec *r = await(f, TOK_CONNECT, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 0);
	assert_false(r->more);
	*sfd = accept_wait(l);
	close(l);
}

/* ---- cases ------------------------------------------------------------ */

static void test_connect_ok(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	/* The connection works end to end. */
	assert_int_equal(write(s, "x", 1), 1);
	struct pollfd p = {.fd = c, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	close(c);
	close(s);
}

static void test_connect_refused(void **state)
{
	struct fx *f = FX(state);
	/* A bound socket that does not listen: its port refuses, and
	 * stays ours while the test runs. */
	int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a;
	loopback(&a, 0);
	assert_int_equal(bind(hold, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(hold, (struct sockaddr *)&a, &al), 0);
	for (int i = 0; i < 3; i++) {
		int c = client_socket(f);
		assert_int_equal(f->ops->connect(f->b, c, (struct sockaddr *)&a,
						 sizeof(a), TOK_CONNECT + i),
				 0);
		struct rec *r = await(f, TOK_CONNECT + i, 5000);
		assert_non_null(r);
		assert_int_equal(r->res, -ECONNREFUSED);
		assert_false(r->more);
		close(c);
	}
	close(hold);
}

static void test_sendmsg_iovecs(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	char a[] = "\x0bMSH|", b[] = "^~\\&|X", d[] = "\x1c\r";
	struct iovec iov[3] = {{a, strlen(a)}, {b, strlen(b)}, {d, strlen(d)}};
	struct msghdr m;
	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = 3;
	size_t total = strlen(a) + strlen(b) + strlen(d);
	assert_int_equal(f->ops->sendmsg(f->b, c, &m, TOK_SEND), 0);
	struct rec *r = await(f, TOK_SEND, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, (int)total);
	assert_false(r->more);
	char got[64];
	size_t n = 0;
	while (n < total) {
		ssize_t k = read(s, got + n, sizeof(got) - n);
		assert_true(k > 0);
		n += (size_t)k;
	}
	assert_memory_equal(got, "\x0bMSH|^~\\&|X\x1c\r", total);
	/* A send to a reset peer completes with an error (no SIGPIPE). */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(s);
	/* The reset reached c once c reports an error or hang-up. */
	struct pollfd hp = {.fd = c, .events = POLLIN};
	assert_int_equal(poll(&hp, 1, 5000), 1);
	assert_true(hp.revents & (POLLERR | POLLHUP));
	int err = 0;
	for (int i = 0; i < 4 && err == 0; i++) {
		assert_int_equal(f->ops->sendmsg(f->b, c, &m, TOK_SEND + 1 + i),
				 0);
		r = await(f, TOK_SEND + 1 + i, 5000);
		assert_non_null(r);
		if (r->res < 0)
			err = r->res;
	}
	assert_true(err == -ECONNRESET || err == -EPIPE);
	close(c);
}

struct drain_arg {
	int fd;
	size_t expect;
	size_t got;
	bool pattern_ok;
	/* set by the sender once its first completion came back */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool go;
};

static void drain_go(struct drain_arg *d)
{
	pthread_mutex_lock(&d->mu);
	d->go = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static void *drain_main(void *arg)
{
	struct drain_arg *d = arg;
	/* Read nothing until the first send has completed: it can only
	 * have been short (the message is larger than the socket
	 * buffers), so resuming is exercised. Bounded: the sender signals
	 * after at most its await timeout. */
	pthread_mutex_lock(&d->mu);
	while (!d->go)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
	unsigned char buf[65536];
	d->pattern_ok = true;
	while (d->got < d->expect) {
		ssize_t k = read(d->fd, buf, sizeof(buf));
		if (k <= 0)
			break;
		for (ssize_t i = 0; i < k; i++)
			if (buf[i] != (unsigned char)((d->got + i) % 251))
				d->pattern_ok = false;
		d->got += (size_t)k;
	}
	return NULL;
}

/* A large gather write against a slow reader: short completions are
 * resumed by resubmitting the rest, as the pool does. */
static void test_sendmsg_large_resumed(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	size_t total = 8u << 20;
	unsigned char *data = malloc(total);
	assert_non_null(data);
	for (size_t i = 0; i < total; i++)
		data[i] = (unsigned char)(i % 251);
	struct drain_arg d = {.fd = s, .expect = total};
	pthread_mutex_init(&d.mu, NULL);
	pthread_cond_init(&d.cv, NULL);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
	size_t sent = 0;
	int sends = 0;
	while (sent < total) {
		size_t rest = total - sent, half = rest / 2;
		struct iovec iov[2] = {{data + sent, half},
				       {data + sent + half, rest - half}};
		struct msghdr m;
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = half ? 2 : 1;
		if (!half)
			iov[0] = iov[1];
		uint64_t tok = TOK_SEND + (uint64_t)(sends++ & 0xff);
		assert_int_equal(f->ops->sendmsg(f->b, c, &m, tok), 0);
		struct rec *r = await(f, tok, 10000);
		if (sends == 1)
			drain_go(&d);
		assert_non_null(r);
		assert_true(r->res > 0);
		sent += (size_t)r->res;
	}
	assert_int_equal(sent, total);
	pthread_join(th, NULL);
	pthread_cond_destroy(&d.cv);
	pthread_mutex_destroy(&d.mu);
	/* At least one completion was short and resumed. */
	assert_true(sends > 1);
	assert_int_equal(d.got, total);
	assert_true(d.pattern_ok);
	free(data);
	close(c);
	close(s);
}

static void test_recv_data_eof(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV), 0);
	/* Nothing yet: no completion. */
	pump(f, 20000);
	assert_null(await(f, TOK_RECV, 0));
	assert_int_equal(write(s, "hello", 5), 5);
	struct rec *r = await(f, TOK_RECV, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 5);
	assert_true(r->more);
	assert_int_equal(f->rxlen, 5);
	assert_memory_equal(f->rx, "hello", 5);
	/* More data on the same recv. */
	assert_int_equal(write(s, " world", 6), 6);
	uint64_t end = now_us() + 5000000;
	while (f->rxlen < 11 && now_us() < end)
		pump(f, 100000);
	assert_int_equal(f->rxlen, 11);
	assert_memory_equal(f->rx, "hello world", 11);
	/* Data then FIN in one go: both seen, then res 0, more false. */
	assert_int_equal(write(s, "!", 1), 1);
	close(s);
	end = now_us() + 5000000;
	while (f->recv_ends == 0 && now_us() < end)
		pump(f, 100000);
	assert_int_equal(f->recv_ends, 1);
	assert_int_equal(f->rxlen, 12);
	assert_int_equal(f->recs[f->nrec - 1].res, 0);
	assert_false(f->recs[f->nrec - 1].more);
	close(c);
}

static void test_recv_data_before_arm(void **state)
{
	/* A recv armed on a socket whose data arrived before arming. */
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	assert_int_equal(write(s, "early", 5), 5);
	pump(f, 20000); /* events seen while nothing is armed */
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV), 0);
	uint64_t end = now_us() + 5000000;
	while (f->rxlen < 5 && now_us() < end)
		pump(f, 100000);
	assert_int_equal(f->rxlen, 5);
	assert_memory_equal(f->rx, "early", 5);
	cancel_close(f, c, TOK_RECV);
	close(s);
}

struct write_arg {
	int fd;
	size_t total;
};

static void *writer_main(void *arg)
{
	struct write_arg *w = arg;
	unsigned char buf[10000];
	size_t off = 0;
	while (off < w->total) {
		size_t n =
		    w->total - off < sizeof(buf) ? w->total - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)((off + i) % 251);
		ssize_t k = write(w->fd, buf, n);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	close(w->fd);
	return NULL;
}

/* A stream larger than all receive buffers together, over many waits:
 * buffers are recycled at each wait(), bytes arrive in order, and the one
 * recv lasts to the end of the stream (a backend out of buffers holds it
 * and reads on: it never ends with -ENOBUFS). */
static void test_recv_stream_recycled(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	struct write_arg w = {.fd = s, .total = 4u << 20};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV), 0);
	uint64_t end = now_us() + 20000000;
	while (f->recv_ends == 0 && now_us() < end)
		pump(f, 100000);
	pthread_join(th, NULL);
	assert_int_equal(f->recv_ends, 1);
	assert_int_equal(f->last_end_res, 0); /* EOF */
	assert_int_equal(f->rxlen, w.total);
	for (size_t i = 0; i < f->rxlen; i++)
		if (f->rx[i] != (unsigned char)(i % 251))
			fail_msg("byte %zu differs", i);
	close(c);
}

/* Many sockets ready at once: each one's data is delivered, none is
 * starved by a busy neighbour. */
static void test_recv_many_sockets(void **state)
{
	struct fx *f = FX(state);
	enum { N = 8 };
	int c[N], s[N];
	for (int i = 0; i < N; i++) {
		connect_pair(f, &c[i], &s[i]);
		assert_int_equal(f->ops->recv(f->b, c[i], TOK_RECV + 1 + i), 0);
	}
	/* Socket 0 gets 1 MiB, the others one byte each. */
	struct write_arg w = {.fd = s[0], .total = 1u << 20};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	for (int i = 1; i < N; i++)
		assert_int_equal(write(s[i], "z", 1), 1);
	for (int i = 1; i < N; i++) {
		struct rec *r = await_recv(f, TOK_RECV + 1 + i, 5000, false);
		assert_non_null(r);
		assert_int_equal(r->res, 1);
	}
	pthread_join(th, NULL);
	/* Socket 0 reads to its EOF (res 0) in the meantime. */
	struct rec *r = await_recv(f, TOK_RECV + 1, 20000, true);
	assert_non_null(r);
	assert_int_equal(r->res, 0);
	assert_int_equal(f->rxlen, w.total + N - 1);
	close(c[0]);
	for (int i = 1; i < N; i++) {
		cancel_close(f, c[i], TOK_RECV + 1 + i);
		close(s[i]);
	}
}

static void test_accept(void **state)
{
	struct fx *f = FX(state);
	if (!f->ops->accept)
		skip();
	uint16_t port;
	int l = make_listener(f, 16, &port);
	assert_int_equal(f->ops->accept(f->b, l, TOK_ACCEPT), 0);
	struct sockaddr_in a;
	loopback(&a, port);
	int cl[3];
	for (int i = 0; i < 3; i++) {
		cl[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(
		    connect(cl[i], (struct sockaddr *)&a, sizeof(a)), 0);
	}
	for (int i = 0; i < 3; i++) {
		struct rec *r = await(f, TOK_ACCEPT, 5000);
		assert_non_null(r);
		assert_true(r->res >= 0);
		assert_true(r->more);
		if (f->ops->nonblocking_sockets)
			assert_true(fcntl(r->res, F_GETFL) & O_NONBLOCK);
		assert_true(fcntl(r->res, F_GETFD) & FD_CLOEXEC);
		/* The accepted socket talks to its client. */
		assert_int_equal(write(r->res, "k", 1), 1);
		close(r->res);
	}
	/* Cancel ends the accept (more false) and reports one cancelled. */
	assert_int_equal(f->ops->cancel_fd(f->b, l, TOK_CANCEL), 0);
	struct rec *r = await(f, TOK_ACCEPT, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, -ECANCELED);
	assert_false(r->more);
	r = await(f, TOK_CANCEL, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 1);
	for (int i = 0; i < 3; i++)
		close(cl[i]);
	close(l);
}

static void test_cancel_fd(void **state)
{
	struct fx *f = FX(state);
	int c, s;
	connect_pair(f, &c, &s);
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV), 0);
	pump(f, 10000);
	assert_int_equal(f->ops->cancel_fd(f->b, c, TOK_CANCEL), 0);
	struct rec *r = await(f, TOK_RECV, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, -ECANCELED);
	assert_false(r->more);
	r = await(f, TOK_CANCEL, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 1);
	assert_false(r->more);
	/* Data after the cancel reaches nobody. */
	assert_int_equal(write(s, "late", 4), 4);
	pump(f, 20000);
	assert_int_equal(f->rxlen, 0);
	/* Nothing outstanding: the cancel completes with 0 found (io_uring
	 * CANCEL_ALL semantics; older kernels said -ENOENT). */
	assert_int_equal(f->ops->cancel_fd(f->b, c, TOK_CANCEL + 1), 0);
	r = await(f, TOK_CANCEL + 1, 5000);
	assert_non_null(r);
	assert_true(r->res == 0 || r->res == -ENOENT);
	/* Token 0: no completion wanted. A new recv on the same socket
	 * works after a cancel. */
	assert_int_equal(f->ops->cancel_fd(f->b, c, 0), 0);
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV + 1), 0);
	r = await(f, TOK_RECV + 1, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 4);
	assert_memory_equal(f->rx, "late", 4);
	assert_int_equal(f->ops->cancel_fd(f->b, c, 0), 0);
	r = await(f, TOK_RECV + 1, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, -ECANCELED);
	assert_false(r->more);
	for (int i = 0; i < f->nrec; i++)
		assert_int_not_equal(f->recs[i].token, 0);
	close(c);
	close(s);
}

/* A connect that cannot complete (the listener's accept queue is full, so
 * SYNs are dropped) is ended by cancel_fd with -ECANCELED. */
static void test_cancel_connect(void **state)
{
	struct fx *f = FX(state);
	uint16_t port;
	int l = make_listener(f, 0, &port);
	struct sockaddr_in a;
	loopback(&a, port);
	/* Backlog 0: one established connection fills the accept queue;
	 * wait until it is established (writable). */
	int fill =
	    socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	connect(fill, (struct sockaddr *)&a, sizeof(a));
	struct pollfd fp = {.fd = fill, .events = POLLOUT};
	assert_int_equal(poll(&fp, 1, 5000), 1);
	int c = client_socket(f);
	assert_int_equal(f->ops->connect(f->b, c, (struct sockaddr *)&a,
					 sizeof(a), TOK_CONNECT),
			 0);
	/* Its SYN is dropped: the first retransmission is a second away. */
	struct rec *r = await(f, TOK_CONNECT, 200);
	if (r) {
		int res = r->res;
		close(c);
		close(fill);
		close(l);
		fprintf(stderr,
			"%s: the connect completed (%d) although the accept "
			"queue is full: no connect can be held pending here; "
			"cancel of a connect not exercised\n",
			f->ops->name, res);
		skip();
	}
	assert_int_equal(f->ops->cancel_fd(f->b, c, TOK_CANCEL), 0);
	r = await(f, TOK_CONNECT, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, -ECANCELED);
	r = await(f, TOK_CANCEL, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 1);
	close(c);
	close(fill);
	close(l);
}

struct wake_arg {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *b;
	pid_t tid;   /* the waiting thread */
	bool asleep; /* it was seen blocked before the wake */
};

/* The scheduler state of thread tid of this process ('S': sleeping). */
static char thread_state(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = 0;
	const char *p = strrchr(buf, ')'); /* after "pid (comm)" */
	return p && p[1] == ' ' ? p[2] : '?';
}

static void *waker_main(void *arg)
{
	struct wake_arg *w = arg;
	/* Wait (bounded) until the other thread blocks in wait(). */
	uint64_t end = now_us() + 5000000;
	while (now_us() < end && !w->asleep) {
		w->asleep = thread_state(w->tid) == 'S';
		if (!w->asleep)
			sched_yield();
	}
	w->ops->wake(w->b);
	return NULL;
}

static void test_wake_other_thread(void **state)
{
	struct fx *f = FX(state);
	/* A sleeping wait(-1) returns when another thread wakes it, with no
	 * completion (the wake-up is absorbed). */
	for (int round = 0; round < 3; round++) {
		struct wake_arg w = {f->ops, f->b, (pid_t)syscall(SYS_gettid),
				     false};
		pthread_t th;
		uint64_t t0 = now_us();
		assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
		int n = pump(f, -1);
		uint64_t el = now_us() - t0;
		pthread_join(th, NULL);
		assert_int_equal(n, 0);
		/* It was asleep in wait() when woken, and woke up. */
		assert_true(w.asleep);
		assert_true(el < 5000000);
	}
	/* A wake before the wait makes that wait return at once... */
	f->ops->wake(f->b);
	f->ops->wake(f->b);
	uint64_t t0 = now_us();
	assert_int_equal(pump(f, 2000000), 0);
	assert_true(now_us() - t0 < 1000000);
	/* ...and is absorbed: the next wait sleeps its full timeout (a
	 * second wake-up may end one more wait early, never two). */
	int early = 0;
	for (int i = 0; i < 2; i++) {
		t0 = now_us();
		assert_int_equal(pump(f, 30000), 0);
		if (now_us() - t0 < 30000)
			early++;
	}
	assert_true(early <= 1);
	t0 = now_us();
	assert_int_equal(pump(f, 30000), 0);
	assert_true(now_us() - t0 >= 30000);
}

static void test_wait_timeout_not_early(void **state)
{
	struct fx *f = FX(state);
	/* Absorb anything pending from setup. */
	pump(f, 0);
	const int64_t t[] = {1, 999, 1500, 10000, 25001};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t t0 = now_us();
		int n = pump(f, t[i]);
		uint64_t el = now_us() - t0;
		assert_int_equal(n, 0);
		if (el < (uint64_t)t[i])
			fail_msg("%s: wait(%lld us) returned after %llu us",
				 f->ops->name, (long long)t[i],
				 (unsigned long long)el);
		assert_true(el < (uint64_t)t[i] + 1000000);
	}
	/* 0: do not wait. */
	uint64_t t0 = now_us();
	assert_int_equal(pump(f, 0), 0);
	assert_true(now_us() - t0 < 100000);
}

/* ---- parameterisation --------------------------------------------------- */

#define BOTH(fn)                                                               \
	{#fn "/io_uring", fn, setup, teardown,                                 \
	 (void *)(uintptr_t)&mllpi_backend_uring},                             \
	{                                                                      \
#fn "/epoll", fn, setup, teardown,                             \
		    (void *)(uintptr_t)&mllpi_backend_epoll                    \
	}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_connect_ok),
	    BOTH(test_connect_refused),
	    BOTH(test_sendmsg_iovecs),
	    BOTH(test_sendmsg_large_resumed),
	    BOTH(test_recv_data_eof),
	    BOTH(test_recv_data_before_arm),
	    BOTH(test_recv_stream_recycled),
	    BOTH(test_recv_many_sockets),
	    BOTH(test_accept),
	    BOTH(test_cancel_fd),
	    BOTH(test_cancel_connect),
	    BOTH(test_wake_other_thread),
	    BOTH(test_wait_timeout_not_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

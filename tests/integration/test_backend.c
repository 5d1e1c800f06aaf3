/* Conformance of the I/O backends (pool/backend.h) over loopback: connect,
 * sendmsg and recv. Every case runs against io_uring and against epoll,
 * driving the seam directly (as the pool's manager does) from the test
 * thread, which is the thread that created the backend (single issuer).
 * io_uring cases are skipped where io_uring cannot be set up. */
#include "backend_util.h"

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

/* sendmsg_inq: the bytes that came before the send are measured with it.
 * Receive completions ahead of the measure read bytes that came before the
 * send; the first res bytes after it did too; the rest (the reply here)
 * came after. With its recv already in the kernel the socket is measured
 * without a command per send (a harvest, io_uring with deferred task
 * running); with its recv queued in the same submission, by a linked
 * command (Linux 6.7+) or not at all (-EAGAIN: the caller's ioctl). */
static void inq_measure_run(struct fx *f, bool armed)
{
	if (!f->ops->sendmsg_inq) {
		fprintf(stderr, "%s: no send with a measure (ioctl instead)\n",
			f->ops->name);
		skip();
	}
	int c, s;
	connect_pair(f, &c, &s);
	assert_int_equal(f->ops->recv(f->b, c, TOK_RECV), 0);
	if (armed)
		pump(f, 0); /* the recv is armed in the kernel */
	/* Bytes waiting in c before the send: not read yet (receives run
	 * only when the backend waits). */
	assert_int_equal(write(s, "early", 5), 5);
	struct pollfd p = {.fd = c, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	char m[] = "msg";
	struct iovec iov = {m, 3};
	struct msghdr msg;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	int rc = f->ops->sendmsg_inq(f->b, c, &msg, TOK_SEND, TOK_CANCEL);
	if (rc == -EOPNOTSUPP || rc == -EAGAIN) {
		cancel_close(f, c, TOK_RECV);
		close(s);
		fprintf(stderr, "%s: %s: no measure with the send (%s)\n",
			f->ops->name, armed ? "recv armed" : "recv queued",
			strerror(-rc));
		skip();
	}
	assert_int_equal(rc, 0);
	struct rec *r = await(f, TOK_SEND, 5000);
	assert_non_null(r);
	assert_int_equal(r->res, 3);
	char got[8];
	size_t n = 0;
	while (n < 3) {
		assert_int_equal(poll(&(struct pollfd){s, POLLIN, 0}, 1, 5000),
				 1);
		ssize_t k = read(s, got + n, sizeof(got) - n);
		assert_true(k > 0);
		n += (size_t)k;
	}
	assert_memory_equal(got, "msg", 3);
	assert_int_equal(write(s, "reply", 5), 5);
	uint64_t end = now_us() + 5000000;
	while (f->rxlen < 10 && now_us() < end)
		pump(f, 100000);
	assert_int_equal(f->rxlen, 10);
	assert_memory_equal(f->rx, "earlyreply", 10);
	/* The measure, once; the bytes received ahead of it and the res
	 * bytes after it are exactly the 5 that came before the send. */
	int inq = -1, nmeasure = 0;
	size_t before = 0;
	for (int i = 0; i < f->nrec; i++) {
		if (f->recs[i].token == TOK_CANCEL) {
			inq = i;
			nmeasure++;
		}
		if (f->recs[i].token == TOK_RECV && inq < 0 &&
		    f->recs[i].res > 0)
			before += (size_t)f->recs[i].res;
	}
	fprintf(stderr, "%s: %zu bytes before the measure, measure %d\n",
		f->ops->name, before, f->recs[inq].res);
	assert_int_equal(nmeasure, 1);
	assert_true(f->recs[inq].res >= 0);
	assert_int_equal(before + (size_t)f->recs[inq].res, 5);
	cancel_close(f, c, TOK_RECV);
	close(s);
}

static void test_sendmsg_inq_measure(void **state)
{
	inq_measure_run(FX(state), true);
}

static void test_sendmsg_inq_measure_queued(void **state)
{
	inq_measure_run(FX(state), false);
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
	    BOTH(test_sendmsg_inq_measure),
	    BOTH(test_sendmsg_inq_measure_queued),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

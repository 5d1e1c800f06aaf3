/* Conformance of the I/O backends (pool/backend.h) over loopback: accept,
 * cancelling a socket's ops and a connect, waking the waiting thread from
 * another, wait timeouts. Every case runs against io_uring and against
 * epoll; io_uring cases are skipped where io_uring cannot be set up;
 * accept cases are skipped for a backend without an accept op. */
#include "backend_util.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_accept),
	    BOTH(test_cancel_fd),
	    BOTH(test_cancel_connect),
	    BOTH(test_wake_other_thread),
	    BOTH(test_wait_timeout_not_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

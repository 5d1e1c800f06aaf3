/* Fixture shared by the backend conformance suites (see backend_util.h). */
#include "backend_util.h"

uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int setup(void **state)
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

int teardown(void **state)
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
struct fx *FX(void **state)
{
	if (!*state)
		skip();
	return *state;
}

/* One wait(); records completions and copies received bytes (valid only
 * until the next wait()). Returns how many came. */
int pump(struct fx *f, int64_t timeout_us)
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
struct rec *await_(struct fx *f, uint64_t token, int ms, bool only_end)
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

struct rec *await(struct fx *f, uint64_t token, int ms)
{
	return await_(f, token, ms, false);
}

int make_listener(struct fx *f, int backlog, uint16_t *port)
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

void loopback(struct sockaddr_in *a, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a->sin_port = htons(port);
}

int client_socket(struct fx *f)
{
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	if (f->ops->nonblocking_sockets)
		type |= SOCK_NONBLOCK;
	int fd = socket(AF_INET, type, 0);
	assert_true(fd >= 0);
	return fd;
}

/* Blocking accept with a deadline (the listener may be non-blocking). */
int accept_wait(int l)
{
	struct pollfd p = {.fd = l, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	return s;
}

/* A connected pair: *cfd through the backend's connect, *sfd accepted
 * (blocking) by the test. */
void connect_pair(struct fx *f, int *cfd, int *sfd)
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

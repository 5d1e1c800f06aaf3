/* The epoll backend: the seam of backend.h implemented by readiness, for
 * hosts where io_uring is disabled or blocked. Same contract as
 * backend_uring.c: completions tagged by token, recv completions carry data
 * valid until the next wait(), continuous recv/accept end with a completion
 * whose more == false, cancel_fd completes every outstanding operation of
 * the fd with -ECANCELED and then itself (how many were cancelled, 0 for
 * none, as io_uring's IORING_ASYNC_CANCEL_ALL reports).
 *
 * Threading: one epoll instance, owned by the manager thread; every
 * function but wake() runs there. wake() writes an eventfd that is
 * registered in the epoll set (level-triggered) and read — absorbed — by
 * wait(). destroy() may run on another thread once the manager has ended.
 *
 * Sockets are non-blocking (nonblocking_sockets = true; the calls below
 * also pass MSG_DONTWAIT where they can).
 *
 * Edge-triggered, with a readiness cache. Each socket is added once
 * (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) when its first operation is
 * submitted and never modified afterwards: no epoll_ctl per message or per
 * short write, as level-triggered would need to toggle EPOLLOUT (and to
 * drop EPOLLIN while a recv is not armed, or spin). Per fd the backend
 * remembers `rd`/`wr` ("may be readable/writable"): set by events, cleared
 * only when a call says EAGAIN — or, for reads, when a TCP read returns
 * fewer bytes than asked and no hang-up was reported (the queue was empty
 * at that moment; new data raises a new edge). A recv armed on a socket
 * already known readable is served at once from the cache: no event is
 * lost between one operation's end and the next one's start.
 *
 * wait() works in two passes over a FIFO list of ready sockets: first
 * what is ready already (the sends submitted since the last wait(), which
 * thus go out back to back as one io_uring_enter would submit them, and
 * sockets left readable), then epoll_wait (not blocking when it has
 * completions in hand) and what it reported. Fairness and bounds: one
 * pass reads at most READ_BUDGET buffers (ACCEPT_BUDGET connections) per
 * socket, then moves it to the tail. Data completions are produced only
 * into the caller's array and only while a receive buffer is free; a
 * socket left readable stays listed and the next wait() does not block.
 *
 * Completions produced outside wait() (a connect that ended at once,
 * cancels) go to a pending ring that wait() drains first.
 * Its capacity is reserved at submission (pending + outstanding operations
 * + 1 <= capacity), so emitting a completion can never fail. The fd table,
 * the ring and the event array grow through the allocator hook and are
 * then reused: no allocation per message in steady state.
 *
 * Lifetimes: a socket whose operations have all completed may be closed by
 * the caller without telling the backend (closing removes it from the
 * epoll set); the next operation on that fd number then adds it again
 * (EPOLL_CTL_ADD, EEXIST meaning "still the same registered socket"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include "backend.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAKE_DATA     UINT64_MAX
#define READ_BUDGET   8	 /* buffers read per socket per wait() */
#define ACCEPT_BUDGET 16 /* connections accepted per socket per wait() */
#define MAX_EVENTS    256

enum { OP_CONNECT = 0, OP_SEND, OP_RECV, OP_ACCEPT, OP_COUNT_ };

struct fdst {
	uint64_t tok[OP_COUNT_];
	const struct msghdr *msg; /* OP_SEND: the caller's, until done */
	int next;		  /* ready list link (fd), -1: end */
	uint8_t ops;		  /* bit (1 << OP_x): outstanding */
	bool rd, wr;		  /* readiness cache (see above) */
	bool hup;		  /* hang-up/error reported: read to the end */
	bool listed;		  /* on the ready list */
};

struct mllpi_backend {
	const struct mllp_allocator *alloc;
	int epfd, efd;
	/* per-fd state, indexed by fd */
	struct fdst *fds;
	size_t nfds;
	int rhead, rtail; /* ready list (FIFO of fds) */
	/* completions waiting for the next wait(); never carry data */
	struct mllpi_cqe *q;
	size_t qcap, qhead, qlen;
	size_t live; /* outstanding operations */
	/* receive buffers: bused handed out by the current wait() */
	unsigned char *bufs;
	size_t bufs_bytes;
	uint32_t nbufs, buf_size, bused;
	struct epoll_event *evs;
};

/* ---- system calls ----------------------------------------------------- */

/* The per-message calls, made directly: the C library's wrappers of these
 * are thread-cancellation points and pay for it with two atomic
 * read-modify-writes per call in a multi-threaded process. The manager
 * thread is never cancelled. Same results and errno as the wrappers. */
static ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return syscall(SYS_sendmsg, fd, m, flags);
}

static ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
}

static int sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int ms)
{
	/* epoll_pwait with no mask: every architecture has it. */
	return (int)syscall(SYS_epoll_pwait, epfd, evs, max, ms, NULL,
			    (size_t)8);
}

/* ---- tables --------------------------------------------------------- */

static struct fdst *fd_state(struct mllpi_backend *b, int fd)
{
	if (fd < 0)
		return NULL;
	if ((size_t)fd >= b->nfds) {
		size_t cap = b->nfds ? b->nfds : 64;
		while (cap <= (size_t)fd)
			cap *= 2;
		struct fdst *t =
		    b->alloc->alloc(b->alloc->ctx, cap * sizeof(*t));
		if (!t)
			return NULL;
		if (b->nfds)
			memcpy(t, b->fds, b->nfds * sizeof(*t));
		memset(t + b->nfds, 0, (cap - b->nfds) * sizeof(*t));
		for (size_t i = b->nfds; i < cap; i++)
			t[i].next = -1;
		if (b->fds)
			b->alloc->free(b->alloc->ctx, b->fds,
				       b->nfds * sizeof(*t));
		b->fds = t;
		b->nfds = cap;
	}
	return &b->fds[fd];
}

/* Make room for one more completion that may have to wait in the ring. */
static int reserve(struct mllpi_backend *b)
{
	if (b->qlen + b->live + 1 <= b->qcap)
		return 0;
	size_t cap = b->qcap ? b->qcap * 2 : 64;
	struct mllpi_cqe *q = b->alloc->alloc(b->alloc->ctx, cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < b->qlen; i++)
		q[i] = b->q[(b->qhead + i) % b->qcap];
	if (b->q)
		b->alloc->free(b->alloc->ctx, b->q, b->qcap * sizeof(*q));
	b->q = q;
	b->qcap = cap;
	b->qhead = 0;
	return 0;
}

/* Queue a completion without data (capacity reserved, see reserve()). */
static void enqueue(struct mllpi_backend *b, uint64_t token, int res)
{
	struct mllpi_cqe *c = &b->q[(b->qhead + b->qlen) % b->qcap];
	c->token = token;
	c->res = res;
	c->data = NULL;
	c->more = false;
	b->qlen++;
}

/* The final completion of operation op on fd: into out while it has room,
 * else into the ring. */
static void finish(struct mllpi_backend *b, struct fdst *st, int op, int res,
		   struct mllpi_cqe *out, int *n, int max)
{
	uint64_t token = st->tok[op];
	st->ops &= (uint8_t) ~(1u << op);
	if (op == OP_SEND)
		st->msg = NULL;
	b->live--;
	if (out && *n < max) {
		struct mllpi_cqe *c = &out[(*n)++];
		c->token = token;
		c->res = res;
		c->data = NULL;
		c->more = false;
	} else {
		enqueue(b, token, res);
	}
}

static void list_push(struct mllpi_backend *b, int fd)
{
	struct fdst *st = &b->fds[fd];
	if (st->listed)
		return;
	st->listed = true;
	st->next = -1;
	if (b->rtail >= 0)
		b->fds[b->rtail].next = fd;
	else
		b->rhead = fd;
	b->rtail = fd;
}

static bool wants_service(const struct fdst *st)
{
	return (st->rd && (st->ops & (1u << OP_RECV | 1u << OP_ACCEPT))) ||
	       (st->wr && (st->ops & (1u << OP_CONNECT | 1u << OP_SEND)));
}

/* Before the first outstanding operation of fd: make sure the socket is in
 * the epoll set. EEXIST: it still is (same socket; the cache is valid). */
static int fd_register(struct mllpi_backend *b, int fd, struct fdst *st)
{
	if (st->ops)
		return 0;
	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = (uint64_t)fd;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
		/* A new socket: ADD reports its current readiness as an
		 * event, so the cache starts empty. */
		st->rd = st->wr = st->hup = false;
		return 0;
	}
	return errno == EEXIST ? 0 : -errno;
}

/* ---- create / destroy ----------------------------------------------- */

static void destroy(struct mllpi_backend *b)
{
	if (!b)
		return;
	const struct mllp_allocator *a = b->alloc;
	if (b->epfd >= 0)
		close(b->epfd);
	if (b->efd >= 0)
		close(b->efd);
	if (b->bufs)
		munmap(b->bufs, b->bufs_bytes);
	if (b->fds)
		a->free(a->ctx, b->fds, b->nfds * sizeof(*b->fds));
	if (b->q)
		a->free(a->ctx, b->q, b->qcap * sizeof(*b->q));
	if (b->evs)
		a->free(a->ctx, b->evs, MAX_EVENTS * sizeof(*b->evs));
	a->free(a->ctx, b, sizeof(*b));
}

static int create(const struct mllpi_backend_config *cfg,
		  struct mllpi_backend **out, struct mllp_error *err)
{
	*out = NULL;
	const struct mllp_allocator *a = cfg->alloc;
	struct mllpi_backend *b = a->alloc(a->ctx, sizeof(*b));
	if (!b) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(b, 0, sizeof(*b));
	b->alloc = a;
	b->epfd = b->efd = -1;
	b->rhead = b->rtail = -1;
	b->nbufs = cfg->recv_buffers ? cfg->recv_buffers : 1;
	b->buf_size = cfg->recv_buffer_size ? cfg->recv_buffer_size : 16384;
	/* test_ring_error concerns io_uring only: epoll ignores it. */
	int rc;
	const char *what;
	b->evs = a->alloc(a->ctx, MAX_EVENTS * sizeof(*b->evs));
	if (!b->evs || reserve(b) < 0) {
		rc = MLLP_ERR_NO_MEMORY;
		what = "allocation";
		goto fail;
	}
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		rc = -errno;
		what = "epoll_create1";
		goto fail;
	}
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		rc = -errno;
		what = "eventfd";
		goto fail;
	}
	struct epoll_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN; /* level-triggered: read on each report */
	ev.data.u64 = WAKE_DATA;
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->efd, &ev) < 0) {
		rc = -errno;
		what = "epoll_ctl(eventfd)";
		goto fail;
	}
	/* Anonymous mapping: pages are touched only when a read needs
	 * them, and buffers are handed out lowest index first. */
	b->bufs_bytes = (size_t)b->nbufs * b->buf_size;
	void *m = mmap(NULL, b->bufs_bytes, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		what = "mmap of the receive buffers";
		goto fail;
	}
	b->bufs = m;
	*out = b;
	return 0;
fail:
	mllp_error_set(err, MLLP_CTX_NONE, rc, "epoll backend setup: %s: %s",
		       what, mllp_strerror(rc));
	destroy(b);
	return rc;
}

/* ---- submissions ------------------------------------------------------ */

static int do_connect(struct mllpi_backend *b, int fd,
		      const struct sockaddr *sa, socklen_t len, uint64_t token)
{
	struct fdst *st = fd_state(b, fd);
	if (!st)
		return fd < 0 ? -EBADF : -ENOMEM;
	if (st->ops & (1u << OP_CONNECT))
		return -EALREADY;
	if (reserve(b) < 0)
		return -ENOMEM;
	/* EINTR: the connection goes on asynchronously, as EINPROGRESS. */
	int rc = connect(fd, sa, len);
	if (rc == 0 || (errno != EINPROGRESS && errno != EINTR)) {
		/* Done at once (connected, or refused): the completion
		 * waits for the next wait(). */
		enqueue(b, token, rc == 0 ? 0 : -errno);
		return 0;
	}
	rc = fd_register(b, fd, st);
	if (rc < 0)
		return rc;
	/* In progress: EPOLLOUT (or ERR/HUP) ends it; SO_ERROR says how. */
	st->ops |= 1u << OP_CONNECT;
	st->tok[OP_CONNECT] = token;
	b->live++;
	return 0;
}

static int do_sendmsg(struct mllpi_backend *b, int fd, const struct msghdr *msg,
		      uint64_t token)
{
	struct fdst *st = fd_state(b, fd);
	if (!st)
		return fd < 0 ? -EBADF : -ENOMEM;
	if (st->ops & (1u << OP_SEND))
		return -EBUSY; /* one send per socket at a time */
	if (reserve(b) < 0)
		return -ENOMEM;
	/* Written by the next wait(), with the other sends of this turn
	 * (back to back, like one io_uring_enter), if the socket may take
	 * bytes; else at its next EPOLLOUT edge. */
	int rc = fd_register(b, fd, st);
	if (rc < 0)
		return rc;
	st->ops |= 1u << OP_SEND;
	st->tok[OP_SEND] = token;
	st->msg = msg;
	b->live++;
	if (st->wr)
		list_push(b, fd);
	return 0;
}

/* recv and accept: continuous operations served by wait(). */
static int arm_reader(struct mllpi_backend *b, int fd, int op, uint64_t token)
{
	struct fdst *st = fd_state(b, fd);
	if (!st)
		return fd < 0 ? -EBADF : -ENOMEM;
	if (st->ops & (1u << op))
		return -EBUSY;
	if (reserve(b) < 0)
		return -ENOMEM;
	int rc = fd_register(b, fd, st);
	if (rc < 0)
		return rc;
	st->ops |= (uint8_t)(1u << op);
	st->tok[op] = token;
	b->live++;
	if (st->rd)
		list_push(b, fd);
	return 0;
}

static int do_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	return arm_reader(b, fd, OP_RECV, token);
}

static int do_accept(struct mllpi_backend *b, int listen_fd, uint64_t token)
{
	return arm_reader(b, listen_fd, OP_ACCEPT, token);
}

static int do_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	if (token && reserve(b) < 0)
		return -ENOMEM;
	int count = 0;
	if (fd >= 0 && (size_t)fd < b->nfds && b->fds[fd].ops) {
		struct fdst *st = &b->fds[fd];
		for (int op = 0; op < OP_COUNT_; op++) {
			if (st->ops & (1u << op)) {
				finish(b, st, op, -ECANCELED, NULL, NULL, 0);
				count++;
			}
		}
		/* Out of the set: the caller closes the socket next, or
		 * submits again (then added again). */
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
		st->rd = st->wr = st->hup = false;
	}
	if (token)
		enqueue(b, token, count); /* io_uring CANCEL_ALL: 0 if none */
	return 0;
}

/* ---- wait ------------------------------------------------------------- */

/* Serve one ready socket; true when it is still ready (budget spent, no
 * buffer or no room left). */
static bool service(struct mllpi_backend *b, int fd, struct fdst *st,
		    struct mllpi_cqe *out, int *n, int max)
{
	if ((st->ops & (1u << OP_CONNECT)) && st->wr) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		finish(b, st, OP_CONNECT, -soerr, out, n, max);
	}
	if ((st->ops & (1u << OP_SEND)) && st->wr) {
		ssize_t r;
		const struct msghdr *m = st->msg;
		do
			r = m->msg_iovlen == 1 && !m->msg_name &&
				    !m->msg_controllen
				? sys_send(fd, m->msg_iov[0].iov_base,
					   m->msg_iov[0].iov_len,
					   MSG_NOSIGNAL | MSG_DONTWAIT)
				: sys_sendmsg(fd, m,
					      MSG_NOSIGNAL | MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		if (r >= 0)
			finish(b, st, OP_SEND, (int)r, out, n, max);
		else if (errno == EAGAIN || errno == EWOULDBLOCK)
			st->wr = false;
		else
			finish(b, st, OP_SEND, -errno, out, n, max);
	}
	if ((st->ops & (1u << OP_ACCEPT)) && st->rd) {
		for (int k = 0; k < ACCEPT_BUDGET && *n < max; k++) {
			int nfd = accept4(fd, NULL, NULL,
					  SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (nfd >= 0) {
				struct mllpi_cqe *c = &out[(*n)++];
				c->token = st->tok[OP_ACCEPT];
				c->res = nfd;
				c->data = NULL;
				c->more = true;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				st->rd = false;
				break;
			}
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EPROTO)
				continue; /* that one is gone; go on */
			finish(b, st, OP_ACCEPT, -errno, out, n, max);
			break;
		}
	}
	if ((st->ops & (1u << OP_RECV)) && st->rd) {
		for (int k = 0; k < READ_BUDGET; k++) {
			if (*n >= max || b->bused >= b->nbufs)
				break;
			unsigned char *buf =
			    b->bufs + (size_t)b->bused * b->buf_size;
			ssize_t r =
			    sys_recv(fd, buf, b->buf_size, MSG_DONTWAIT);
			if (r > 0) {
				b->bused++;
				struct mllpi_cqe *c = &out[(*n)++];
				c->token = st->tok[OP_RECV];
				c->res = (int)r;
				c->data = buf;
				c->more = true;
				if ((size_t)r < b->buf_size && !st->hup) {
					/* Drained (TCP reads all there
					 * is): new data raises an edge. */
					st->rd = false;
					break;
				}
				continue;
			}
			if (r == 0) {
				finish(b, st, OP_RECV, 0, out, n, max);
				break;
			}
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				st->rd = false;
				break;
			}
			finish(b, st, OP_RECV, -errno, out, n, max);
			break;
		}
	}
	return wants_service(st);
}

static void absorb_wake(struct mllpi_backend *b)
{
	uint64_t v;
	/* Non-blocking eventfd: one read takes the whole count. */
	while (read(b->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* epoll_wait was interrupted (a signal, or task work of an io_uring of the
 * same thread: TIF_NOTIFY_SIGNAL): sleep on until end_us (monotonic; < 0:
 * no limit), so that a timer never fires early. */
static int wait_again(struct mllpi_backend *b, int64_t end_us)
{
	for (;;) {
		int ms = -1;
		if (end_us >= 0) {
			int64_t left = end_us - mono_us();
			if (left <= 0)
				return 0;
			left = (left + 999) / 1000;
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		int got = sys_epoll_wait(b->epfd, b->evs, MAX_EVENTS, ms);
		if (got >= 0 || errno != EINTR)
			return got;
	}
}

/* Serve the ready list once, in order; what stays ready goes to the tail
 * (after what is still unserved when out is full). */
static void serve_list(struct mllpi_backend *b, struct mllpi_cqe *out, int *np,
		       int max)
{
	int n = *np;
	int fd = b->rhead;
	int last = b->rtail;
	b->rhead = b->rtail = -1;
	while (fd >= 0) {
		struct fdst *st = &b->fds[fd];
		int next = st->next;
		st->listed = false;
		if (n < max) {
			if (service(b, fd, st, out, &n, max))
				list_push(b, fd);
		} else if (wants_service(st)) {
			/* No room left: keep the rest, in order, ahead of
			 * the sockets served this round. */
			st->listed = true;
			b->fds[last].next = b->rhead;
			if (b->rhead < 0)
				b->rtail = last;
			b->rhead = fd;
			break;
		}
		if (fd == last)
			break;
		fd = next;
	}
	*np = n;
}

static int do_wait(struct mllpi_backend *b, int64_t timeout_us,
		   struct mllpi_cqe *out, int max)
{
	if (max <= 0)
		return 0;
	/* Buffers handed out by the last wait() are free again. */
	b->bused = 0;
	int n = 0;
	while (n < max && b->qlen) {
		out[n++] = b->q[b->qhead];
		b->qhead = (b->qhead + 1) % b->qcap;
		b->qlen--;
	}
	/* Pass 1: what is ready already — the sends submitted since the
	 * last wait() and sockets left readable by the budget. */
	if (n < max && b->rhead >= 0)
		serve_list(b, out, &n, max);
	if (n == max)
		return n;
	/* Completions in hand: poll without blocking. */
	int ms;
	if (n > 0 || b->rhead >= 0 || timeout_us == 0) {
		ms = 0;
	} else if (timeout_us < 0) {
		ms = -1;
	} else {
		/* Round up: a timer must never fire early. */
		int64_t t = (timeout_us + 999) / 1000;
		ms = t > INT_MAX ? INT_MAX : (int)t;
	}
	{
		int64_t start = ms > 0 ? mono_us() : 0;
		int got = sys_epoll_wait(b->epfd, b->evs, MAX_EVENTS, ms);
		if (got < 0 && errno == EINTR && ms != 0)
			got = wait_again(b, ms > 0 ? start + timeout_us : -1);
		if (got < 0) {
			if (errno != EINTR && n == 0)
				return -errno;
			got = 0;
		}
		for (int i = 0; i < got; i++) {
			uint64_t d = b->evs[i].data.u64;
			uint32_t e = b->evs[i].events;
			if (d == WAKE_DATA) {
				absorb_wake(b);
				continue;
			}
			if (d >= b->nfds)
				continue;
			int fd = (int)d;
			struct fdst *st = &b->fds[fd];
			if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				st->hup = true;
			if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
				st->rd = true;
			if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
				st->wr = true;
			if (wants_service(st))
				list_push(b, fd);
		}
	}
	serve_list(b, out, &n, max);
	return n;
}

static void do_wake(struct mllpi_backend *b)
{
	eventfd_write(b->efd, 1);
}

const struct mllpi_backend_ops mllpi_backend_epoll = {
    .name = "epoll",
    .nonblocking_sockets = true,
    .create = create,
    .destroy = destroy,
    .connect = do_connect,
    .sendmsg = do_sendmsg,
    .recv = do_recv,
    .accept = do_accept,
    .cancel_fd = do_cancel_fd,
    .wait = do_wait,
    .wake = do_wake,
};

/* The io_uring backend (see backend.h for the contract); with
 * uring_measure.c the only files of the library that include liburing.h.
 *
 * Receive: multishot recv with ring-mapped provided buffers, set up by hand
 * on liburing 2.3 (mmap a page-aligned ring, io_uring_register_buf_ring,
 * io_uring_buf_ring_init/add/advance). Buffers handed out by one wait() are
 * given back to the kernel at the start of the next wait(). Wake-ups: an
 * eventfd read is always armed on the ring, so a producer's eventfd write
 * completes it and ends the manager's io_uring_enter.
 *
 * A dry buffer ring: the kernel ends a multishot recv with -ENOBUFS when it
 * finds no buffer, and a recv submitted while the ring is dry ends at once
 * the same way. The backend keeps that to itself: the recv is parked (one
 * slot per fd, a FIFO of starved fds) and submitted again by the first
 * wait() that gives buffers back, oldest first and before the kernel runs
 * the receives still armed (a recv that buffers reached after it was
 * submitted, and so may have run dry before them, goes at the next wait()
 * already). No recv is lost to a dry ring, none is re-armed into a ring
 * known dry (no spinning), and the caller never sees -ENOBUFS. The ring is
 * dry only while every buffer is with the caller or in unreaped
 * completions, so some later wait() always gives buffers back.
 * To find the fd of a recv completion, a recv is submitted with user_data
 * RECV_BIT | fd and its caller's token is kept in the fd's slot.
 *
 * Send with a measure (sendmsg_inq), two ways:
 *   - a harvest (deferred task running, Linux 6.1+), when the socket's recv
 *     is armed in the kernel: every byte that reached a socket with an
 *     armed multishot recv has queued deferred task work, which runs only
 *     when this thread enters the ring for events. So before a submission
 *     that holds such sends, the backend runs all of that work (enters
 *     with no submission while the kernel flags work pending: none when
 *     it flags none, at most 64) and queues a NOP behind the sends: the
 *     completions ahead of the NOP read every byte that was waiting
 *     before the sends (the caller takes them as read before the
 *     measure) and the NOP's
 *     completion becomes each send's measure, res 0 (or, for a socket
 *     whose recv ended meanwhile, the bytes ioctl(SIOCINQ) finds then).
 *     One NOP per submission instead of a command per message (the
 *     enters do work the wait would do anyway: at 64 connections 0.07
 *     io_uring_enter per message before, 0.23 after, perf stat);
 *   - else an IORING_OP_URING_CMD SIOCINQ on the socket hard-linked ahead
 *     of the send, when a probe at set-up found the kernel runs it (Linux
 *     6.7+). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uring_internal.h"

static void prep_inq(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = SOCK_CMD_SIOCINQ;
}

/* Does the kernel run SIOCINQ as a ring command on a TCP socket? Asked
 * once, on an unconnected socket (no traffic), before any other SQE. */
static bool probe_inq(struct mllpi_backend *b)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool ok = false;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	struct io_uring_cqe *cqe;
	if (sqe) {
		prep_inq(sqe, fd);
		io_uring_sqe_set_data64(sqe, 0);
		if (io_uring_submit_and_wait(&b->ring, 1) >= 0 &&
		    io_uring_peek_cqe(&b->ring, &cqe) == 0) {
			ok = cqe->res == 0;
			io_uring_cqe_seen(&b->ring, cqe);
		}
	}
	close(fd);
	return ok;
}

static int arm_wake(struct mllpi_backend *b)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_read(sqe, b->efd, &b->efd_value, sizeof(b->efd_value), 0);
	io_uring_sqe_set_data64(sqe, WAKE_TOKEN);
	b->wake_armed = true;
	return 0;
}

static void destroy(struct mllpi_backend *b)
{
	if (!b)
		return;
	if (b->ring.ring_fd >= 0)
		io_uring_queue_exit(&b->ring);
	if (b->br)
		munmap(b->br, b->br_bytes);
	if (b->bufs)
		munmap(b->bufs, b->bufs_bytes);
	if (b->efd >= 0)
		close(b->efd);
	if (b->used)
		b->alloc->free(b->alloc->ctx, b->used,
			       b->nbufs * sizeof(*b->used));
	if (b->rs)
		b->alloc->free(b->alloc->ctx, b->rs, b->nrs * sizeof(*b->rs));
	if (b->marks)
		b->alloc->free(b->alloc->ctx, b->marks,
			       b->mcap * sizeof(*b->marks));
	b->alloc->free(b->alloc->ctx, b, sizeof(*b));
}

/* The ring (or cfg->test_ring_error): 0, or the error with err set. */
static int ring_setup(struct mllpi_backend *b,
		      const struct mllpi_backend_config *cfg,
		      struct mllp_error *err)
{
	int rc = cfg->test_ring_error;
	if (rc >= 0) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		/* Single issuer: this thread (the manager) is the only one
		 * that submits. Cooperative task running: no IPI to interrupt
		 * the manager for task work. Deferred task running (kernel
		 * 6.1+): completion work (the recv copies) runs in batches
		 * when the manager waits, not one task-work notification per
		 * packet; flagged in the SQ ring while some is pending (for
		 * the harvest of sendmsg_inq). A generous CQ (8x) keeps
		 * multishot completions from overflowing. */
		p.flags = IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_COOP_TASKRUN |
			  IORING_SETUP_DEFER_TASKRUN |
			  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE;
		p.cq_entries = cfg->entries * 8;
		rc = io_uring_queue_init_params(cfg->entries, &b->ring, &p);
		b->harvest_ok = rc >= 0;
		if (rc == -EINVAL) {
			/* Before 6.1: no deferred task running. */
			p.flags &= ~(IORING_SETUP_DEFER_TASKRUN |
				     IORING_SETUP_TASKRUN_FLAG);
			rc = io_uring_queue_init_params(cfg->entries, &b->ring,
							&p);
		}
		if (rc == -EINVAL) {
			/* Older kernel without the flags: plain ring. */
			memset(&p, 0, sizeof(p));
			rc = io_uring_queue_init_params(cfg->entries, &b->ring,
							&p);
		}
	}
	if (rc >= 0)
		return 0;
	b->ring.ring_fd = -1;
	if (rc == -EPERM || rc == -ENOSYS || rc == -EACCES) {
		mllp_error_set(err, MLLP_CTX_NONE,
			       MLLP_ERR_IO_URING_UNAVAILABLE,
			       "io_uring is unavailable: "
			       "io_uring_setup failed with %s (%s); "
			       "disabled by sysctl "
			       "kernel.io_uring_disabled, blocked by "
			       "a seccomp profile, or not supported "
			       "by the kernel",
			       rc == -EPERM    ? "EPERM"
			       : rc == -ENOSYS ? "ENOSYS"
					       : "EACCES",
			       strerror(-rc));
		return MLLP_ERR_IO_URING_UNAVAILABLE;
	}
	mllp_error_set(err, MLLP_CTX_NONE, rc, "io_uring_queue_init failed: %s",
		       strerror(-rc));
	return rc;
}

/* The provided-buffer ring and its buffers: page-aligned memory shared
 * with the kernel, every buffer handed to it. 0 or -errno. */
static int bufs_setup(struct mllpi_backend *b)
{
	b->br_bytes = b->nbufs * sizeof(struct io_uring_buf);
	void *m = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	b->br = m;
	b->bufs_bytes = (size_t)b->nbufs * b->buf_size;
	m = mmap(NULL, b->bufs_bytes, PROT_READ | PROT_WRITE,
		 MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	b->bufs = m;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = b->nbufs;
	reg.bgid = BGID;
	int rc = io_uring_register_buf_ring(&b->ring, &reg, 0);
	if (rc < 0)
		return rc;
	io_uring_buf_ring_init(b->br);
	int mask = io_uring_buf_ring_mask(b->nbufs);
	for (uint32_t i = 0; i < b->nbufs; i++)
		io_uring_buf_ring_add(b->br, b->bufs + (size_t)i * b->buf_size,
				      b->buf_size, (unsigned short)i, mask,
				      (int)i);
	/* advance: a release store of the tail publishes the entries. */
	io_uring_buf_ring_advance(b->br, (int)b->nbufs);
	return 0;
}

static int create(const struct mllpi_backend_config *cfg,
		  struct mllpi_backend **out, struct mllp_error *err)
{
	*out = NULL;
	struct mllpi_backend *b =
	    cfg->alloc->alloc(cfg->alloc->ctx, sizeof(*b));
	if (!b)
		return MLLP_ERR_NO_MEMORY;
	memset(b, 0, sizeof(*b));
	b->alloc = cfg->alloc;
	b->efd = -1;
	b->ring.ring_fd = -1;
	b->nbufs = cfg->recv_buffers;
	b->buf_size = cfg->recv_buffer_size;
	b->starved = (struct fdlist){-1, -1};
	b->canceled = (struct fdlist){-1, -1};

	int rc = ring_setup(b, cfg, err);
	if (rc < 0) {
		destroy(b);
		return rc;
	}
	b->efd = eventfd(0, EFD_CLOEXEC);
	if (b->efd < 0) {
		rc = -errno;
		goto fail;
	}
	b->used =
	    cfg->alloc->alloc(cfg->alloc->ctx, b->nbufs * sizeof(*b->used));
	if (!b->used) {
		rc = MLLP_ERR_NO_MEMORY;
		goto fail;
	}
	rc = bufs_setup(b);
	if (rc < 0)
		goto fail;
	b->inq_ok = probe_inq(b);
	rc = arm_wake(b);
	if (rc < 0)
		goto fail;
	*out = b;
	return 0;
fail:
	mllp_error_set(err, MLLP_CTX_NONE, rc, "io_uring backend setup: %s",
		       mllp_strerror(rc));
	destroy(b);
	return rc;
}

static int do_connect(struct mllpi_backend *b, int fd,
		      const struct sockaddr *sa, socklen_t len, uint64_t token)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_connect(sqe, fd, sa, len);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

/* Sockets get sendmsg with MSG_NOSIGNAL (a write to a reset socket must
 * not raise SIGPIPE in the host process). The msghdr lives in the
 * caller's storage next to the iovecs until the completion. */
static void prep_send(struct io_uring_sqe *sqe, int fd,
		      const struct msghdr *msg, uint64_t token)
{
	if (msg->msg_iovlen == 1 && !msg->msg_name && !msg->msg_controllen)
		/* One buffer (a framed payload): a plain send spares the
		 * kernel the msghdr and iovec import of every sendmsg. */
		io_uring_prep_send(sqe, fd, msg->msg_iov[0].iov_base,
				   msg->msg_iov[0].iov_len, MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, token);
}

static int do_sendmsg(struct mllpi_backend *b, int fd, const struct msghdr *msg,
		      uint64_t token)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	prep_send(sqe, fd, msg, token);
	return 0;
}

/* The SIOCINQ command hard-linked ahead of the send, in one submission.
 * The command completes at once, inline (no wait, no worker); the send is
 * issued only after it, whatever its result (a hard link), as task work of
 * the same io_uring_enter: the measure is taken shortly before the kernel
 * takes the send, with no return to user space between. The command's
 * completion is posted at the end of the submission, before the deferred
 * task work runs (the linked send, and the receives of bytes that reached
 * the socket): every receive completion after it reads bytes that were
 * still in the socket at the measure, or came later. */
static int do_sendmsg_inq(struct mllpi_backend *b, int fd,
			  const struct msghdr *msg, uint64_t token,
			  uint64_t inq_token)
{
	struct rslot *s = fd >= 0 && (uint32_t)fd < b->nrs ? &b->rs[fd] : NULL;
	if (b->harvest_ok && s && s->armed && !s->ended && !s->cancel_req &&
	    s->sgen != b->sub_gen) {
		/* The recv is in the kernel: measured by the harvest. */
		if (!mllpi_uring_sq_room(b, 2))
			return -EBUSY;
		int rc = mllpi_uring_marks_push(b, fd, inq_token);
		if (rc < 0)
			return rc;
		prep_send(io_uring_get_sqe(&b->ring), fd, msg, token);
		return 0;
	}
	if (!b->inq_ok)
		return b->harvest_ok ? -EAGAIN : -EOPNOTSUPP;
	if (!mllpi_uring_sq_room(b, 2))
		return -EBUSY;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	prep_inq(sqe, fd);
	io_uring_sqe_set_data64(sqe, inq_token);
	sqe->flags |= IOSQE_IO_HARDLINK;
	prep_send(io_uring_get_sqe(&b->ring), fd, msg, token);
	return 0;
}

/* ---- the starved recvs ------------------------------------------------- */

static void list_push(struct mllpi_backend *b, struct fdlist *l, int fd)
{
	struct rslot *s = &b->rs[fd];
	s->next = -1;
	s->prev = l->tail;
	if (l->tail >= 0)
		b->rs[l->tail].next = fd;
	else
		l->head = fd;
	l->tail = fd;
}

static void list_unlink(struct mllpi_backend *b, struct fdlist *l, int fd)
{
	struct rslot *s = &b->rs[fd];
	if (s->prev >= 0)
		b->rs[s->prev].next = s->next;
	else
		l->head = s->next;
	if (s->next >= 0)
		b->rs[s->next].prev = s->prev;
	else
		l->tail = s->prev;
	s->prev = s->next = -1;
}

/* A slot for fd (the table grows through the allocator hook). */
static int slot_reserve(struct mllpi_backend *b, int fd)
{
	if (fd < 0)
		return -EBADF;
	if ((uint32_t)fd < b->nrs)
		return 0;
	uint32_t n = b->nrs ? b->nrs : 64;
	while (n <= (uint32_t)fd)
		n *= 2;
	struct rslot *rs = b->alloc->alloc(b->alloc->ctx, n * sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	if (b->rs) {
		memcpy(rs, b->rs, b->nrs * sizeof(*rs));
		b->alloc->free(b->alloc->ctx, b->rs, b->nrs * sizeof(*rs));
	}
	memset(rs + b->nrs, 0, (n - b->nrs) * sizeof(*rs));
	b->rs = rs;
	b->nrs = n;
	return 0;
}

static int submit_recv(struct mllpi_backend *b, int fd)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, RECV_BIT | (uint64_t)fd);
	struct rslot *s = &b->rs[fd];
	s->gen = b->back_gen;
	s->sgen = b->sub_gen;
	s->armed = true;
	s->ended = false;
	return 0;
}

/* Submit parked recvs again, oldest first: all of them when buffers are
 * back (back), else those that ran dry before the last buffers came back
 * (the kernel may have ended them before that, seen only now). Those that
 * find the ring dry again are parked again, behind the others. */
static void rearm_starved(struct mllpi_backend *b, bool back)
{
	b->rearm_retry = false;
	int fd = b->starved.head;
	while (fd >= 0) {
		struct rslot *s = &b->rs[fd];
		int next = s->next;
		if (back || s->retry) {
			if (submit_recv(b, fd) < 0) {
				b->rearm_retry = true; /* SQ full */
				return;
			}
			list_unlink(b, &b->starved, fd);
			s->parked = false;
		}
		fd = next;
	}
}

static int do_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	if (token & RECV_BIT)
		return -EINVAL;
	int rc = slot_reserve(b, fd);
	if (rc < 0)
		return rc;
	struct rslot *s = &b->rs[fd];
	if (s->parked || s->canceled)
		return -EBUSY; /* its recv has not ended */
	rc = submit_recv(b, fd);
	if (rc == 0) {
		s->token = token;
		s->cancel_req = false;
	}
	return rc;
}

/* Multishot accept: one CQE per connection while IORING_CQE_F_MORE is set;
 * a CQE without it (error, cancel) ends it and the caller re-arms. */
static int do_accept(struct mllpi_backend *b, int listen_fd, uint64_t token)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

static int do_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	struct io_uring_sqe *sqe = mllpi_uring_get_sqe(b);
	if (!sqe)
		return -EBUSY;
	if (fd >= 0 && (uint32_t)fd < b->nrs) {
		struct rslot *s = &b->rs[fd];
		/* A recv that ends on a dry ring from now on ends for good. */
		s->cancel_req = true;
		if (s->parked) {
			/* Not in the kernel: this backend completes it. */
			list_unlink(b, &b->starved, fd);
			s->parked = false;
			s->canceled = true;
			list_push(b, &b->canceled, fd);
		}
	}
	io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

static void recycle(struct mllpi_backend *b)
{
	if (!b->nused)
		return;
	int mask = io_uring_buf_ring_mask(b->nbufs);
	for (uint32_t i = 0; i < b->nused; i++)
		io_uring_buf_ring_add(
		    b->br, b->bufs + (size_t)b->used[i] * b->buf_size,
		    b->buf_size, b->used[i], mask, (int)i);
	/* release store of the tail: the kernel sees the entries. */
	io_uring_buf_ring_advance(b->br, (int)b->nused);
	b->nused = 0;
}

/* Parked recvs cancelled by cancel_fd(): their completions. */
static int emit_canceled(struct mllpi_backend *b, struct mllpi_cqe *out,
			 int max)
{
	int n = 0, fd;
	while (n < max && (fd = b->canceled.head) >= 0) {
		list_unlink(b, &b->canceled, fd);
		b->rs[fd].canceled = false;
		out[n++] = (struct mllpi_cqe){.token = b->rs[fd].token,
					      .res = -ECANCELED};
	}
	return n;
}

/* The completions posted, into out[n..max). */
static int reap(struct mllpi_backend *b, struct mllpi_cqe *out, int n, int max)
{
	struct io_uring_cqe *cqe;
	/* An empty CQ is not entered for (as io_uring_peek_cqe would while
	 * the kernel flags task work) unless completions overflowed. */
	while (n < max &&
	       (io_uring_cq_ready(&b->ring) ||
		(IO_URING_READ_ONCE(*b->ring.sq.kflags) &
		 IORING_SQ_CQ_OVERFLOW)) &&
	       io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		uint64_t token = io_uring_cqe_get_data64(cqe);
		if (token == WAKE_TOKEN || token == 0) {
			if (token)
				b->wake_armed = false;
			io_uring_cqe_seen(&b->ring, cqe);
			continue;
		}
		if (IS_MARK(token)) {
			/* The measures of the sends this NOP went with. */
			b->memit += (uint32_t)(token & UINT32_MAX);
			io_uring_cqe_seen(&b->ring, cqe);
			n += mllpi_uring_emit_marks(b, out + n, max - n);
			continue;
		}
		int res = cqe->res;
		if (token & RECV_BIT) {
			int fd = (int)(token & ~RECV_BIT);
			struct rslot *s = &b->rs[fd];
			if (!(cqe->flags & IORING_CQE_F_MORE)) {
				s->armed = s->ended = false;
				if (res == -ENOBUFS && !s->cancel_req) {
					/* Dry ring: parked until buffers
					 * are back. */
					s->parked = true;
					s->retry = s->gen != b->back_gen;
					list_push(b, &b->starved, fd);
					io_uring_cqe_seen(&b->ring, cqe);
					continue;
				}
				if (res == -ENOBUFS)
					res = -ECANCELED; /* as asked */
				s->cancel_req = false;
			}
			token = s->token;
		}
		struct mllpi_cqe *c = &out[n++];
		c->token = token;
		c->res = res;
		c->data = NULL;
		c->more = (cqe->flags & IORING_CQE_F_MORE) != 0;
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			uint16_t bid =
			    (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
			c->data = b->bufs + (size_t)bid * b->buf_size;
			b->used[b->nused++] = bid;
		}
		io_uring_cqe_seen(&b->ring, cqe);
	}
	return n;
}

static int do_wait(struct mllpi_backend *b, int64_t timeout_us,
		   struct mllpi_cqe *out, int max)
{
	bool back = b->nused > 0;
	if (back)
		b->back_gen++;
	recycle(b);
	if (b->starved.head >= 0)
		rearm_starved(b, back || b->rearm_retry);
	if (!b->wake_armed)
		arm_wake(b);
	int n = emit_canceled(b, out, max);
	n += mllpi_uring_emit_marks(b, out + n, max - n);
	if (b->memit > 0)
		return n; /* out is full: the measures first, all of them */
	if (n > 0)
		timeout_us = 0; /* completions in hand: do not block */
	mllpi_uring_marks_seal(b);
	int rc;
	if (timeout_us == 0) {
		/* Submit and run deferred completion work without waiting: a
		 * plain submit would leave it pending (DEFER_TASKRUN) for as
		 * long as the manager finds new work on every turn. */
		rc = io_uring_submit_and_get_events(&b->ring);
	} else if (timeout_us < 0) {
		rc = io_uring_submit_and_wait(&b->ring, 1);
	} else {
		struct __kernel_timespec ts = {
		    .tv_sec = timeout_us / 1000000,
		    .tv_nsec = (timeout_us % 1000000) * 1000,
		};
		struct io_uring_cqe *cqe = NULL;
		rc = io_uring_submit_and_wait_timeout(&b->ring, &cqe, 1, &ts,
						      NULL);
	}
	b->sub_gen++;
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
	    rc != -EBUSY)
		return n > 0 ? n : rc;
	return reap(b, out, n, max);
}

static void do_wake(struct mllpi_backend *b)
{
	eventfd_write(b->efd, 1);
}

const struct mllpi_backend_ops mllpi_backend_uring = {
    .name = "io_uring",
    .nonblocking_sockets = false,
    .create = create,
    .destroy = destroy,
    .connect = do_connect,
    .sendmsg = do_sendmsg,
    .sendmsg_inq = do_sendmsg_inq,
    .recv = do_recv,
    .accept = do_accept,
    .cancel_fd = do_cancel_fd,
    .wait = do_wait,
    .wake = do_wake,
};

/* The io_uring backend: the only file of the library that includes
 * liburing.h (see backend.h for the contract).
 *
 * Receive: multishot recv with ring-mapped provided buffers, set up by hand
 * on liburing 2.3 (mmap a page-aligned ring, io_uring_register_buf_ring,
 * io_uring_buf_ring_init/add/advance). Buffers handed out by one wait() are
 * given back to the kernel at the start of the next wait(). Wake-ups: an
 * eventfd read is always armed on the ring, so a producer's eventfd write
 * completes it and ends the manager's io_uring_enter. */
#include "backend.h"

#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define WAKE_TOKEN UINT64_MAX
#define BGID	   7

struct mllpi_backend {
	struct io_uring ring;
	const struct mllp_allocator *alloc;
	int efd;
	uint64_t efd_value;
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	unsigned char *bufs;
	size_t bufs_bytes;
	uint32_t nbufs, buf_size;
	uint16_t *used; /* buffer ids handed out by the last wait() */
	uint32_t nused;
	bool wake_armed;
};

static struct io_uring_sqe *get_sqe(struct mllpi_backend *b)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe) {
		/* SQ full: flush it to the kernel and retry. */
		io_uring_submit(&b->ring);
		sqe = io_uring_get_sqe(&b->ring);
	}
	return sqe;
}

static int arm_wake(struct mllpi_backend *b)
{
	struct io_uring_sqe *sqe = get_sqe(b);
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
	b->alloc->free(b->alloc->ctx, b, sizeof(*b));
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

	int rc = cfg->test_ring_error;
	if (rc >= 0) {
		struct io_uring_params p;
		memset(&p, 0, sizeof(p));
		/* Single issuer: this thread (the manager) is the only one
		 * that submits. Cooperative task running: no IPI to interrupt
		 * the manager for task work. Deferred task running (kernel
		 * 6.1+): completion work (the recv copies) runs in batches
		 * when the manager waits, not one task-work notification per
		 * packet. A generous CQ (8x) keeps multishot completions from
		 * overflowing. */
		p.flags = IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_COOP_TASKRUN |
			  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
		p.cq_entries = cfg->entries * 8;
		rc = io_uring_queue_init_params(cfg->entries, &b->ring, &p);
		if (rc == -EINVAL) {
			/* Before 6.1: no deferred task running. */
			p.flags &= ~IORING_SETUP_DEFER_TASKRUN;
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
	if (rc < 0) {
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
			rc = MLLP_ERR_IO_URING_UNAVAILABLE;
		} else {
			mllp_error_set(err, MLLP_CTX_NONE, rc,
				       "io_uring_queue_init failed: %s",
				       strerror(-rc));
		}
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
	/* The buffer ring: page-aligned memory shared with the kernel. */
	b->br_bytes = b->nbufs * sizeof(struct io_uring_buf);
	void *m = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	b->br = m;
	b->bufs_bytes = (size_t)b->nbufs * b->buf_size;
	m = mmap(NULL, b->bufs_bytes, PROT_READ | PROT_WRITE,
		 MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (m == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	b->bufs = m;
	struct io_uring_buf_reg reg;
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)b->br;
	reg.ring_entries = b->nbufs;
	reg.bgid = BGID;
	rc = io_uring_register_buf_ring(&b->ring, &reg, 0);
	if (rc < 0)
		goto fail;
	io_uring_buf_ring_init(b->br);
	int mask = io_uring_buf_ring_mask(b->nbufs);
	for (uint32_t i = 0; i < b->nbufs; i++)
		io_uring_buf_ring_add(b->br, b->bufs + (size_t)i * b->buf_size,
				      b->buf_size, (unsigned short)i, mask,
				      (int)i);
	/* advance: a release store of the tail publishes the entries. */
	io_uring_buf_ring_advance(b->br, (int)b->nbufs);
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
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_connect(sqe, fd, sa, len);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

/* Sockets get sendmsg with MSG_NOSIGNAL (a write to a reset socket must
 * not raise SIGPIPE in the host process). The msghdr lives in the
 * caller's storage next to the iovecs until the completion. */
static int do_sendmsg(struct mllpi_backend *b, int fd, const struct msghdr *msg,
		      uint64_t token)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return -EBUSY;
	if (msg->msg_iovlen == 1 && !msg->msg_name && !msg->msg_controllen)
		/* One buffer (a framed payload): a plain send spares the
		 * kernel the msghdr and iovec import of every sendmsg. */
		io_uring_prep_send(sqe, fd, msg->msg_iov[0].iov_base,
				   msg->msg_iov[0].iov_len, MSG_NOSIGNAL);
	else
		io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

static int do_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

/* Multishot accept: one CQE per connection while IORING_CQE_F_MORE is set;
 * a CQE without it (error, cancel) ends it and the caller re-arms. */
static int do_accept(struct mllpi_backend *b, int listen_fd, uint64_t token)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL,
				       SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, token);
	return 0;
}

static int do_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	struct io_uring_sqe *sqe = get_sqe(b);
	if (!sqe)
		return -EBUSY;
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

static int do_wait(struct mllpi_backend *b, int64_t timeout_us,
		   struct mllpi_cqe *out, int max)
{
	recycle(b);
	if (!b->wake_armed)
		arm_wake(b);
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
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
	    rc != -EBUSY)
		return rc;

	int n = 0;
	struct io_uring_cqe *cqe;
	while (n < max && io_uring_peek_cqe(&b->ring, &cqe) == 0) {
		uint64_t token = io_uring_cqe_get_data64(cqe);
		if (token == WAKE_TOKEN) {
			b->wake_armed = false;
			io_uring_cqe_seen(&b->ring, cqe);
			continue;
		}
		if (token == 0) {
			io_uring_cqe_seen(&b->ring, cqe);
			continue;
		}
		struct mllpi_cqe *c = &out[n++];
		c->token = token;
		c->res = cqe->res;
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
    .recv = do_recv,
    .accept = do_accept,
    .cancel_fd = do_cancel_fd,
    .wait = do_wait,
    .wake = do_wake,
};

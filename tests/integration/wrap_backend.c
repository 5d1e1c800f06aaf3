/* The real backend wrapped, its wait() and sendmsg_inq failing on demand
 * (wrap_backend.h). */
#include "wrap_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "common.h"

_Atomic int tw_wait_fail;
_Atomic int tw_wait_failures;
_Atomic int tw_inq_fail;
_Atomic int tw_inq_calls;

static const struct mllpi_backend_ops *real_ops;

static int wrap_create(const struct mllpi_backend_config *cfg,
		       struct mllpi_backend **out, struct mllp_error *err)
{
	return real_ops->create(cfg, out, err);
}
static void wrap_destroy(struct mllpi_backend *b)
{
	real_ops->destroy(b);
}
static int wrap_connect(struct mllpi_backend *b, int fd,
			const struct sockaddr *sa, socklen_t len,
			uint64_t token)
{
	return real_ops->connect(b, fd, sa, len, token);
}
static int wrap_sendmsg(struct mllpi_backend *b, int fd,
			const struct msghdr *msg, uint64_t token)
{
	return real_ops->sendmsg(b, fd, msg, token);
}
static int wrap_sendmsg_inq(struct mllpi_backend *b, int fd,
			    const struct msghdr *msg, uint64_t token,
			    uint64_t inq_token)
{
	atomic_fetch_add(&tw_inq_calls, 1);
	int rc = atomic_load(&tw_inq_fail);
	return rc ? rc : real_ops->sendmsg_inq(b, fd, msg, token, inq_token);
}
static int wrap_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	return real_ops->recv(b, fd, token);
}
static int wrap_accept(struct mllpi_backend *b, int fd, uint64_t token)
{
	return real_ops->accept(b, fd, token);
}
static int wrap_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	return real_ops->cancel_fd(b, fd, token);
}
static int wrap_wait(struct mllpi_backend *b, int64_t timeout_us,
		     struct mllpi_cqe *out, int max)
{
	int rc = atomic_load(&tw_wait_fail);
	if (rc) {
		atomic_fetch_add(&tw_wait_failures, 1);
		return rc;
	}
	return real_ops->wait(b, timeout_us, out, max);
}
static void wrap_wake(struct mllpi_backend *b)
{
	real_ops->wake(b);
}

static struct mllpi_backend_ops wrap_ops = {
    .name = "wrapped",
    .create = wrap_create,
    .destroy = wrap_destroy,
    .connect = wrap_connect,
    .sendmsg = wrap_sendmsg,
    .recv = wrap_recv,
    .accept = wrap_accept,
    .cancel_fd = wrap_cancel_fd,
    .wait = wrap_wait,
    .wake = wrap_wake,
};

const struct mllpi_backend_ops *tw_reset(void)
{
	real_ops = ti_backend() == MLLP_BACKEND_EPOLL ? &mllpi_backend_epoll
						      : &mllpi_backend_uring;
	wrap_ops.nonblocking_sockets = real_ops->nonblocking_sockets;
	wrap_ops.sendmsg_inq = real_ops->sendmsg_inq ? wrap_sendmsg_inq : NULL;
	atomic_store(&tw_wait_fail, 0);
	atomic_store(&tw_wait_failures, 0);
	atomic_store(&tw_inq_fail, 0);
	atomic_store(&tw_inq_calls, 0);
	return &wrap_ops;
}

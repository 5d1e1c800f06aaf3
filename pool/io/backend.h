/* Internal: the I/O backend seam of the pool engine.
 *
 * The manager's connection state machines, timers, futures and queue see
 * only this interface: submit connect / sendmsg / recv / cancel on a socket,
 * then wait for completions, each tagged with the caller's 64-bit token.
 * io_uring implements it natively (backend_uring.c and uring_measure.c,
 * the only files that include liburing.h); backend_epoll.c implements the
 * same by readiness (non-blocking sockets, sendmsg/recv loops, edge-triggered
 * epoll).
 *
 * Threading: every function but wake() is called on the manager thread
 * only (io_uring SINGLE_ISSUER: the backend is created on that thread too).
 * wake() is called by producers, from any thread.
 *
 * Lifetimes: buffers given to sendmsg (msghdr, iovecs and the bytes)
 * and connect (the address) must stay valid until the completion of that
 * operation is returned. A socket must not be closed while an operation on
 * it is outstanding: cancel_fd(), then wait for every completion. */
#ifndef MLLPI_BACKEND_H
#define MLLPI_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <mllp/alloc.h>
#include <mllp/error.h>

struct mllpi_backend;

/* One completion. */
struct mllpi_cqe {
	/* as submitted; 0 and tokens from 2^63 on are reserved for the
	 * backend (callers' tokens are pointers with a few tag bits) */
	uint64_t token;
	int res; /* bytes, 0, or -errno, exactly as the kernel says */
	/* recv only: res bytes at data, valid until the next wait(). */
	const unsigned char *data;
	/* recv only: false when this recv has ended (error, EOF, cancel):
	 * submit a new recv to go on. Running out of receive buffers does
	 * not end a recv: the backend holds it and reads on once buffers
	 * are given back (no -ENOBUFS reaches the caller). */
	bool more;
};

struct mllpi_backend_config {
	uint32_t entries;      /* SQ size */
	uint32_t recv_buffers; /* provided buffers (power of two) */
	uint32_t recv_buffer_size;
	int test_ring_error; /* test hook: fail setup with this -errno */
	const struct mllp_allocator *alloc;
};

struct mllpi_backend_ops {
	const char *name;
	/* True when sockets given to the backend must be non-blocking. */
	bool nonblocking_sockets;
	/* Create on the calling (manager) thread. Errors:
	 * MLLP_ERR_IO_URING_UNAVAILABLE (err says why), -errno,
	 * MLLP_ERR_NO_MEMORY. */
	int (*create)(const struct mllpi_backend_config *cfg,
		      struct mllpi_backend **out, struct mllp_error *err);
	void (*destroy)(struct mllpi_backend *b);
	int (*connect)(struct mllpi_backend *b, int fd,
		       const struct sockaddr *sa, socklen_t len,
		       uint64_t token);
	/* sendmsg(fd, msg, MSG_NOSIGNAL) of msg's iovecs (gather write, no
	 * copy). One completion: bytes written (may be short) or -errno. */
	int (*sendmsg)(struct mllpi_backend *b, int fd,
		       const struct msghdr *msg, uint64_t token);
	/* sendmsg() with the bytes that reached fd (TCP) before the kernel
	 * takes the send measured, without a system call per send: inq_token
	 * completes with res = bytes, or -errno. Receive completions of fd
	 * returned before it read bytes that came before the send; the first
	 * res bytes of those after it came before it too, the rest came
	 * later. 0; -EBUSY; -EAGAIN (nothing submitted: this send cannot be
	 * measured so, fd's receive is not in the kernel yet); -EOPNOTSUPP
	 * (nothing submitted) when the kernel never can; NULL in a backend
	 * that never can. */
	int (*sendmsg_inq)(struct mllpi_backend *b, int fd,
			   const struct msghdr *msg, uint64_t token,
			   uint64_t inq_token);
	/* Continuous receive: completions with data until one has
	 * more == false. */
	int (*recv)(struct mllpi_backend *b, int fd, uint64_t token);
	/* Continuous accept on a listening socket: one completion per
	 * accepted connection (res = the new socket's fd, close-on-exec, and
	 * non-blocking when nonblocking_sockets; or -errno) until one has
	 * more == false (error, cancel): submit a new accept to go on. */
	int (*accept)(struct mllpi_backend *b, int listen_fd, uint64_t token);
	/* Cancel every outstanding operation on fd; each completes (usually
	 * with -ECANCELED). The cancel request itself completes with token
	 * (0: no completion wanted). */
	int (*cancel_fd)(struct mllpi_backend *b, int fd, uint64_t token);
	/* Submit what is pending, wait up to timeout_us (-1: no limit, 0: do
	 * not wait) for at least one completion or a wake(), and return up to
	 * max completions (>= 0) or -errno. Wake-ups are absorbed. */
	int (*wait)(struct mllpi_backend *b, int64_t timeout_us,
		    struct mllpi_cqe *out, int max);
	/* Any thread: make a current or the next wait() return. */
	void (*wake)(struct mllpi_backend *b);
};

extern const struct mllpi_backend_ops mllpi_backend_uring;
/* Readiness (epoll) backend: where io_uring is disabled or blocked. */
extern const struct mllpi_backend_ops mllpi_backend_epoll;

#endif

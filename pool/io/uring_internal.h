/* Internal: the io_uring backend's state, shared by backend_uring.c (the
 * backend) and uring_measure.c (its submission queue and the measures of
 * sendmsg_inq by harvest); the only files of the library that include
 * liburing.h. Manager thread only. */
#ifndef MLLPI_URING_INTERNAL_H
#define MLLPI_URING_INTERNAL_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

#define WAKE_TOKEN UINT64_MAX
#define BGID	   7
/* user_data of a recv: RECV_BIT | fd (callers' tokens stay below it). */
#define RECV_BIT ((uint64_t)1 << 63)
/* user_data of a harvest's NOP: MARK_BITS | the measures it completes. */
#define MARK_BITS  ((uint64_t)3 << 62)
#define IS_MARK(t) (((t) >> 62) == 3 && (t) != WAKE_TOKEN)
/* IORING_OP_URING_CMD on a socket: SIOCINQ (Linux 6.7). The value of
 * SOCKET_URING_OP_SIOCINQ in linux/io_uring.h, which older kernel headers
 * (Debian 12's 6.1) lack. */
#define SOCK_CMD_SIOCINQ 0u

/* Per fd: the recv outstanding on it, and its place in a starved list. */
struct rslot {
	uint64_t token;
	int prev, next;	 /* list links (fd), -1: none */
	bool parked;	 /* ended by a dry ring, waiting for buffers */
	bool canceled;	 /* parked, then cancelled: completes -ECANCELED */
	bool cancel_req; /* cancel_fd() since the recv was submitted */
	bool retry;	 /* buffers came back after it was submitted */
	bool armed;	 /* submitted, its last completion not reaped */
	bool ended;	 /* a completion without MORE is in the CQ */
	uint32_t gen;	 /* back_gen when it was submitted */
	uint32_t sgen;	 /* sub_gen when it was submitted */
};

/* A send's measure by harvest: completed by its NOP. */
struct mark {
	uint64_t token;
	int fd;
	int res;
};

/* A FIFO of fds linked through their slots. */
struct fdlist {
	int head, tail;
};

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
	struct rslot *rs; /* indexed by fd */
	uint32_t nrs;
	struct fdlist starved;	/* parked recvs, oldest first */
	struct fdlist canceled; /* parked recvs cancelled, to complete */
	bool rearm_retry;	/* a re-arm found the SQ full */
	uint32_t back_gen;	/* wait()s that gave buffers back */
	bool inq_ok;		/* the kernel runs SIOCINQ commands */
	bool harvest_ok;	/* deferred task running, flagged */
	uint32_t sub_gen;	/* submissions to the kernel so far */
	struct mark *marks;	/* FIFO: measures not yet completed */
	uint32_t mcap, mhead, mcount;
	uint32_t munsub; /* of them, the newest, without a NOP yet */
	uint32_t memit;	 /* of them, the oldest, whose NOP is reaped */
};

/* The submission queue: hand what is queued to the kernel now (the
 * queued measures sealed first; uring_measure.c). */
void mllpi_uring_flush(struct mllpi_backend *b);

/* SQ slots kept for the NOP of the sends with a measure queued. */
static inline unsigned mllpi_uring_sq_reserve(const struct mllpi_backend *b)
{
	return b->munsub ? 1 : 0;
}

/* An SQE, flushing a full queue to the kernel first (NULL: none even
 * then). */
static inline struct io_uring_sqe *mllpi_uring_get_sqe(struct mllpi_backend *b)
{
	if (io_uring_sq_space_left(&b->ring) <= mllpi_uring_sq_reserve(b))
		mllpi_uring_flush(b);
	return io_uring_get_sqe(&b->ring);
}

/* Room for n more SQEs (submitting what is queued if need be). */
static inline bool mllpi_uring_sq_room(struct mllpi_backend *b, unsigned n)
{
	if (io_uring_sq_space_left(&b->ring) >= n + mllpi_uring_sq_reserve(b))
		return true;
	mllpi_uring_flush(b);
	return io_uring_sq_space_left(&b->ring) >= n;
}

/* Measures by harvest: queue fd's (its send is queued next); before a
 * submission, harvest and queue their NOP; the measures whose NOP came
 * back, into out (as far as max). */
int mllpi_uring_marks_push(struct mllpi_backend *b, int fd, uint64_t token);
void mllpi_uring_marks_seal(struct mllpi_backend *b);
int mllpi_uring_emit_marks(struct mllpi_backend *b, struct mllpi_cqe *out,
			   int max);

#endif

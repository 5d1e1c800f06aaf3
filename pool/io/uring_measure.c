/* The io_uring backend's submission queue, and the measures of
 * sendmsg_inq by harvest (backend_uring.c says how they work). */
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "uring_internal.h"

/* ---- measures by harvest ----------------------------------------------- */

/* Run every deferred completion work queued so far (the receives of bytes
 * that reached their sockets): enters for events without a submission
 * while the kernel flags work pending (it sets the flag when work is
 * queued on an empty list, and when a pass leaves some: from 6.13 a pass
 * runs at most 20 items). No work pending, no system call. */
static void harvest(struct mllpi_backend *b)
{
	for (int i = 0; i < 64 && (IO_URING_READ_ONCE(*b->ring.sq.kflags) &
				   IORING_SQ_TASKRUN);
	     i++)
		io_uring_get_events(&b->ring);
}

static struct mark *mark_at(struct mllpi_backend *b, uint32_t i)
{
	return &b->marks[(b->mhead + i) & (b->mcap - 1)];
}

int mllpi_uring_marks_push(struct mllpi_backend *b, int fd, uint64_t token)
{
	if (b->mcount == b->mcap) {
		uint32_t n = b->mcap ? b->mcap * 2 : 64;
		struct mark *m = b->alloc->alloc(b->alloc->ctx, n * sizeof(*m));
		if (!m)
			return -ENOMEM;
		for (uint32_t i = 0; i < b->mcount; i++)
			m[i] = *mark_at(b, i);
		if (b->marks)
			b->alloc->free(b->alloc->ctx, b->marks,
				       b->mcap * sizeof(*m));
		b->marks = m;
		b->mcap = n;
		b->mhead = 0;
	}
	*mark_at(b, b->mcount++) = (struct mark){token, fd, 0};
	b->munsub++;
	return 0;
}

/* Before a submission that holds sends with a measure: harvest, then the
 * NOP (its slot reserved) that completes their measures. A socket whose
 * receive ended in what the harvest posted (or meanwhile) is read no more
 * before its send: the bytes it holds are measured by ioctl. */
void mllpi_uring_marks_seal(struct mllpi_backend *b)
{
	if (!b->munsub)
		return;
	harvest(b);
	unsigned head;
	struct io_uring_cqe *cqe;
	io_uring_for_each_cqe(&b->ring, head, cqe)
	{
		uint64_t t = cqe->user_data;
		if ((t >> 62) == 2 && !(cqe->flags & IORING_CQE_F_MORE) &&
		    (t & ~RECV_BIT) < b->nrs)
			b->rs[t & ~RECV_BIT].ended = true;
	}
	for (uint32_t i = b->mcount - b->munsub; i < b->mcount; i++) {
		struct mark *m = mark_at(b, i);
		struct rslot *s = &b->rs[m->fd];
		int n = 0;
		if ((!s->armed || s->ended || s->cancel_req) &&
		    ioctl(m->fd, SIOCINQ, &n) == 0 && n > 0)
			m->res = n;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, MARK_BITS | b->munsub);
	b->munsub = 0;
}

/* Measures whose NOP completed, in order, as far as out has room. */
int mllpi_uring_emit_marks(struct mllpi_backend *b, struct mllpi_cqe *out,
			   int max)
{
	int n = 0;
	for (; n < max && b->memit > 0; b->memit--, b->mcount--) {
		struct mark *m = mark_at(b, 0);
		out[n++] = (struct mllpi_cqe){.token = m->token, .res = m->res};
		b->mhead = (b->mhead + 1) & (b->mcap - 1);
	}
	return n;
}

/* ---- the submission queue ---------------------------------------------- */

void mllpi_uring_flush(struct mllpi_backend *b)
{
	mllpi_uring_marks_seal(b);
	io_uring_submit(&b->ring);
	b->sub_gen++;
}

/* The completion fd: completed MLLP_NOTIFY_FD futures handed from the
 * manager to a host event loop (completion_fd.h, future.h). */
#include "pool_internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/eventfd.h>
#include <unistd.h>

void mllpi_cfd_init(struct mllpi_cfd *d)
{
	mllpi_mpsc_init(&d->q);
	atomic_init(&d->signaled, false);
	atomic_init(&d->fd, -1);
	pthread_mutex_init(&d->mu, NULL);
}

void mllpi_cfd_fini(struct mllpi_cfd *d)
{
	struct mllpi_node *n;
	while ((n = mllpi_mpsc_pop(&d->q)))
		mllpi_future_release(
		    MLLPI_CONTAINER_OF(n, struct mllp_future, done_node));
	int fd = atomic_load_explicit(&d->fd, memory_order_relaxed);
	if (fd >= 0)
		close(fd);
	pthread_mutex_destroy(&d->mu);
}

/* Add one to the eventfd, if it exists yet (else its creation looks at
 * `signaled`). EAGAIN (the count at its maximum) leaves it readable. */
static void cfd_write(struct mllpi_cfd *d)
{
	/* seq_cst: pairs with the creator's store of fd and load of
	 * signaled (mllp_pool_completion_fd): either we see the fd or the
	 * creator sees signaled set. */
	int fd = atomic_load_explicit(&d->fd, memory_order_seq_cst);
	if (fd < 0)
		return;
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void mllpi_cfd_push(struct mllpi_cfd *d, struct mllp_future *f)
{
	/* Never sealed: the push always succeeds. Its seq_cst CAS on top
	 * is the manager's half of the Dekker pair with the harvester
	 * (cfd_rearm: store signaled false, then load top). */
	mllpi_mpsc_push(&d->q, &f->done_node);
	/* seq_cst load: after the push in the single total order, so
	 * either it sees the harvester's false or the harvester sees the
	 * node. A plain load first: while the harvester has not emptied
	 * the list, completions cost no write to the shared line. */
	if (atomic_load_explicit(&d->signaled, memory_order_seq_cst))
		return;
	/* seq_cst exchange: one writer per empty → non-empty transition
	 * (the creator of the fd is the only other). */
	if (!atomic_exchange_explicit(&d->signaled, true, memory_order_seq_cst))
		cfd_write(d);
}

/* Harvester (under mu), the list found empty: zero the eventfd, clear
 * `signaled`, and look again for a push that raced with it. */
static void cfd_rearm(struct mllpi_cfd *d)
{
	int fd = atomic_load_explicit(&d->fd, memory_order_relaxed);
	uint64_t v;
	/* Before clearing signaled: a push that sees it false writes after
	 * this read, so its count is never swallowed. */
	if (fd >= 0)
		while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
	/* seq_cst store, then seq_cst load of top: the harvester's half of
	 * the Dekker pair with mllpi_cfd_push. */
	atomic_store_explicit(&d->signaled, false, memory_order_seq_cst);
	if (mllpi_mpsc_maybe_nonempty(&d->q) &&
	    !atomic_exchange_explicit(&d->signaled, true, memory_order_seq_cst))
		cfd_write(d);
}

int mllp_pool_completion_fd(struct mllp_pool *pool)
{
	if (!pool)
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllpi_cfd *d = &pool->cfd;
	/* acquire: the fd is published once and never changes. */
	int fd = atomic_load_explicit(&d->fd, memory_order_acquire);
	if (fd >= 0)
		return fd;
	pthread_mutex_lock(&d->mu);
	fd = atomic_load_explicit(&d->fd, memory_order_relaxed);
	if (fd < 0) {
		fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (fd < 0) {
			fd = -errno;
		} else {
			/* seq_cst store, then load of signaled: see
			 * cfd_write. A push that found no fd left the
			 * count to us. */
			atomic_store_explicit(&d->fd, fd, memory_order_seq_cst);
			if (atomic_load_explicit(&d->signaled,
						 memory_order_seq_cst))
				cfd_write(d);
		}
	}
	pthread_mutex_unlock(&d->mu);
	return fd;
}

int mllp_pool_harvest(struct mllp_pool *pool, struct mllp_future **futures,
		      size_t max)
{
	if (!pool || (!futures && max > 0))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (max > INT_MAX)
		max = INT_MAX;
	struct mllpi_cfd *d = &pool->cfd;
	size_t n = 0;
	pthread_mutex_lock(&d->mu);
	while (n < max) {
		struct mllpi_node *node = mllpi_mpsc_pop(&d->q);
		if (!node) {
			cfd_rearm(d);
			break;
		}
		futures[n++] =
		    MLLPI_CONTAINER_OF(node, struct mllp_future, done_node);
	}
	pthread_mutex_unlock(&d->mu);
	return (int)n;
}

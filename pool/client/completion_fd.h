/* Internal: the pool's completion fd (completion_fd.c) — completed
 * MLLP_NOTIFY_FD futures handed from the manager to the host's harvester.
 * Not installed.
 *
 * The manager pushes each such future onto a lock-free list (mpsc.h, the
 * harvester its consumer) and writes the eventfd only when `signaled` was
 * false: when the harvester had found the list empty since the last
 * write. So a burst of completions costs one write(), not one per future;
 * the harvester reads the eventfd (to zero) only when it finds the list
 * empty, then clears `signaled` and looks again. */
#ifndef MLLPI_COMPLETION_FD_H
#define MLLPI_COMPLETION_FD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mpsc.h"

struct mllp_future;

struct mllpi_cfd {
	/* completed futures (their done_node), oldest first; consumer: the
	 * harvester under mu */
	struct mllpi_mpsc q;
	/* true: the eventfd holds a count, or is about to (a push saw it
	 * false and writes); the harvester clears it when the list is empty */
	_Atomic bool signaled;
	/* the eventfd, -1 until mllp_pool_completion_fd() creates it */
	_Atomic int fd;
	/* serialises harvesters and the fd's creation */
	pthread_mutex_t mu;
};

void mllpi_cfd_init(struct mllpi_cfd *d);
/* Destroy: release the futures never harvested, close the fd. No other
 * thread may use d any more. */
void mllpi_cfd_fini(struct mllpi_cfd *d);
/* Manager side, once per completed MLLP_NOTIFY_FD future (after its
 * result, waiters and callback): the list's reference goes with it. */
void mllpi_cfd_push(struct mllpi_cfd *d, struct mllp_future *f);

#endif

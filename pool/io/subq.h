/* Internal: the pool's submission queue — what producers use to hand
 * operations to the manager thread. The intrusive MPSC list of mpsc.h,
 * plus the wake-up and stop protocols, plus a local FIFO for the
 * manager's internal markers that must be taken even after the seal
 * (endpoint_remove.c), which needs no atomics at all. The pool and the
 * queue benchmark use this same code. A push is one compare-and-swap and
 * one load.
 *
 * - One FIFO: every submission, the manager's own from its callbacks
 *   included, goes onto the list, so the order of the pushes (the total
 *   order of the CASes) is the order in which they are taken. A local
 *   node is taken once the batch already in hand is done, before the next
 *   batch.
 *
 * - Wake-up (no lost wake-up): the producer swings the list top
 *   (seq_cst CAS), then loads `sleeping` (seq_cst); if set, it clears it
 *   and the caller wakes the manager. The manager stores sleeping = 1
 *   (seq_cst), then checks the queue (seq_cst top load) before it
 *   blocks. In the single total order of seq_cst operations either the
 *   manager sees the node or the producer sees sleeping.
 * - Stop: `stopped` (set by stop) only lets callers refuse early. The
 *   guarantee is the seal: the manager, about to leave, seals the list
 *   (mllpi_subq_seal) and takes what was pushed before it; a push after
 *   the seal fails without touching the list. No producer counter is
 *   shared, and every node pushed successfully is taken.
 *
 * Layout: the list's top (producers), `sleeping` (manager, read by
 * producers), `stopped` and the consumer's fields are 64 bytes apart
 * (padding, not alignas: the pool is allocated through a user allocator
 * that only guarantees malloc alignment). */
#ifndef MLLPI_SUBQ_H
#define MLLPI_SUBQ_H

#include <stdatomic.h>
#include <stdbool.h>

#include "mpsc.h"

struct mllpi_subq {
	struct mllpi_mpsc list;
	/* written by the manager before it blocks; read by every push */
	_Atomic int sleeping;
	char pad_sleeping_[64];
	/* set once by stop: lets callers refuse early */
	_Atomic bool stopped;
	char pad_stopped_[64];
	/* consumer only: the manager's own submissions */
	struct mllpi_node *local_head, *local_tail;
};

enum mllpi_push { MLLPI_PUSHED = 0, MLLPI_PUSHED_WAKE, MLLPI_PUSH_STOPPED };

static inline void mllpi_subq_init(struct mllpi_subq *q)
{
	mllpi_mpsc_init(&q->list);
	atomic_init(&q->sleeping, 0);
	atomic_init(&q->stopped, false);
	q->local_head = q->local_tail = NULL;
}

/* Any thread, the consumer too (its callbacks' submissions keep their
 * place in the one FIFO). MLLPI_PUSHED_WAKE: the caller wakes the
 * consumer. MLLPI_PUSH_STOPPED: the queue is sealed (the manager is
 * leaving); n was not pushed and is not referenced. Pointer reuse (ABA)
 * is harmless: see mpsc.h. */
static inline enum mllpi_push mllpi_subq_push(struct mllpi_subq *q,
					      struct mllpi_node *n)
{
	if (!mllpi_mpsc_push(&q->list, n)) /* seq_cst CAS */
		return MLLPI_PUSH_STOPPED;
	/* seq_cst load: the producer's half of the wake-up pair. */
	if (atomic_load_explicit(&q->sleeping, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&q->sleeping, 0, memory_order_seq_cst))
		return MLLPI_PUSHED_WAKE;
	return MLLPI_PUSHED;
}

/* The consumer's internal markers: FIFO among themselves, no atomics
 * shared with anyone (the fields are atomic for the list's sake), taken
 * after the batch in hand and also after the seal. */
static inline void mllpi_subq_push_local(struct mllpi_subq *q,
					 struct mllpi_node *n)
{
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	if (q->local_tail)
		atomic_store_explicit(&q->local_tail->next, n,
				      memory_order_relaxed);
	else
		q->local_head = n;
	q->local_tail = n;
}

static inline struct mllpi_node *mllpi_subq_pop_local(struct mllpi_subq *q)
{
	struct mllpi_node *n = q->local_head;
	if (n) {
		q->local_head =
		    atomic_load_explicit(&n->next, memory_order_relaxed);
		if (!q->local_head)
			q->local_tail = NULL;
	}
	return n;
}

/* Consumer only: the next node, or NULL for now: the batch in hand, then
 * the local markers (pushed while that batch was handled), then the next
 * batch. */
static inline struct mllpi_node *mllpi_subq_pop(struct mllpi_subq *q)
{
	if (!q->list.ready && q->local_head)
		return mllpi_subq_pop_local(q);
	return mllpi_mpsc_pop(&q->list);
}

/* Consumer only: false only when the queue is certainly empty (seq_cst
 * top load: see above). */
static inline bool mllpi_subq_maybe_nonempty(struct mllpi_subq *q)
{
	return q->local_head || mllpi_mpsc_maybe_nonempty(&q->list);
}

/* Consumer, before it blocks: true when something is queued (do not
 * block). mllpi_subq_awake() after the wait in any case. */
static inline bool mllpi_subq_prepare_sleep(struct mllpi_subq *q)
{
	/* seq_cst store, then the seq_cst top load: the consumer's half
	 * of the wake-up pair. */
	atomic_store_explicit(&q->sleeping, 1, memory_order_seq_cst);
	return mllpi_subq_maybe_nonempty(q);
}

static inline void mllpi_subq_awake(struct mllpi_subq *q)
{
	/* relaxed: a producer that still sees 1 only issues a spare
	 * wake-up. */
	atomic_store_explicit(&q->sleeping, 0, memory_order_relaxed);
}

/* Consumer, leaving for good: refuse every later push. Then take what
 * remains with mllpi_subq_pop_sealed() until it returns NULL. */
static inline void mllpi_subq_seal(struct mllpi_subq *q)
{
	mllpi_mpsc_seal(&q->list);
}

static inline struct mllpi_node *mllpi_subq_pop_sealed(struct mllpi_subq *q)
{
	struct mllpi_node *n = mllpi_mpsc_pop(&q->list);
	return n ? n : mllpi_subq_pop_local(q);
}

#endif

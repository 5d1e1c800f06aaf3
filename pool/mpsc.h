/* Internal: intrusive lock-free multi-producer / single-consumer queue
 * (Dmitry Vyukov's non-blocking MPSC node queue), which the consumer can
 * seal.
 *
 * Producers: mllpi_mpsc_push() from any thread, lock-free (one
 * compare-and-swap of the head, retried only when another push won, and
 * one store). Consumer: mllpi_mpsc_pop() from one thread only (the pool's
 * manager). A push that has swung the head but not yet linked its node
 * makes pop() return NULL for a moment although the queue is not empty;
 * mllpi_mpsc_maybe_nonempty() still reports it, so the consumer does not go
 * to sleep on it (see the wake-up protocol in subq.h).
 *
 * Sealing: the consumer swings the head to a sentinel (mllpi_mpsc_seal);
 * from then on every push fails without touching the queue, and the
 * consumer takes what was pushed before with mllpi_mpsc_pop_sealed(). So
 * a refused producer never links into the queue (its node may be freed at
 * once), and nothing pushed successfully is left behind. */
#ifndef MLLPI_MPSC_H
#define MLLPI_MPSC_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct mllpi_node {
	_Atomic(struct mllpi_node *) next;
	int kind; /* what the node is (interpreted by the consumer) */
};

/* head (written by every producer) and tail (written by the consumer on
 * every pop) are 64 bytes apart, so they never share a cache line: else
 * each pop would steal the line the producers exchange on (false
 * sharing). Padding, not alignas: the pool is allocated through a
 * user allocator that only guarantees malloc alignment. */
struct mllpi_mpsc {
	/* Last pushed node; producers swing it. */
	_Atomic(struct mllpi_node *) head;
	char pad_head_[64 - sizeof(void *)];
	/* Next node to pop; consumer only. */
	struct mllpi_node *tail;
	struct mllpi_node stub;
	/* its address is the head of a sealed queue (never read) */
	struct mllpi_node sealed;
	/* keeps the next member off tail's cache line */
	char pad_tail_[64 - sizeof(void *) - 2 * sizeof(struct mllpi_node)];
};

static inline void mllpi_mpsc_init(struct mllpi_mpsc *q)
{
	atomic_init(&q->stub.next, NULL);
	q->stub.kind = -1;
	atomic_init(&q->head, &q->stub);
	q->tail = &q->stub;
}

/* False: the queue is sealed, n was not pushed (and is not referenced). */
static inline bool mllpi_mpsc_push(struct mllpi_mpsc *q, struct mllpi_node *n)
{
	/* relaxed: n is not yet visible to anyone; the release store below
	 * publishes it together with this field. */
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	/* relaxed: only the first guess of the CAS. */
	struct mllpi_node *prev =
	    atomic_load_explicit(&q->head, memory_order_relaxed);
	/* seq_cst CAS: (1) serialises producers and orders the node's
	 * contents before its publication chain; (2) it takes part in the
	 * single total order with the manager's `sleeping` store and head
	 * load (the wake-up pair of subq.h: the producer then loads
	 * `sleeping` with seq_cst). relaxed on failure: retried. */
	do {
		if (prev == &q->sealed)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(
	    &q->head, &prev, n, memory_order_seq_cst, memory_order_relaxed));
	/* release: makes n's contents (written before push) visible to the
	 * consumer that acquires prev->next. */
	atomic_store_explicit(&prev->next, n, memory_order_release);
	return true;
}

/* Consumer only. Returns the oldest node or NULL (empty, or a producer is
 * between its exchange and its link). */
static inline struct mllpi_node *mllpi_mpsc_pop(struct mllpi_mpsc *q)
{
	struct mllpi_node *tail = q->tail;
	/* acquire: pairs with the release store in push, so the node's
	 * contents are visible once we see the link. */
	struct mllpi_node *next =
	    atomic_load_explicit(&tail->next, memory_order_acquire);
	if (tail == &q->stub) {
		if (next == NULL)
			return NULL;
		q->tail = next;
		tail = next;
		next = atomic_load_explicit(&tail->next, memory_order_acquire);
	}
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	/* acquire: see the latest head; if it is not tail, a producer is
	 * mid-push: report empty for now (the caller retries). */
	struct mllpi_node *head =
	    atomic_load_explicit(&q->head, memory_order_acquire);
	if (tail != head)
		return NULL;
	/* tail is the only node: push the stub behind it so tail can be
	 * handed out while the queue keeps a node. */
	(void)mllpi_mpsc_push(q, &q->stub); /* never sealed while popping */
	next = atomic_load_explicit(&tail->next, memory_order_acquire);
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	return NULL;
}

/* Consumer only: false only when the queue is certainly empty. seq_cst
 * load of head: the manager's half of the Dekker pair (store sleeping;
 * load head) against the producer's (exchange head; load sleeping). */
static inline bool mllpi_mpsc_maybe_nonempty(struct mllpi_mpsc *q)
{
	struct mllpi_node *head =
	    atomic_load_explicit(&q->head, memory_order_seq_cst);
	if (head != q->tail)
		return true;
	/* head == tail: non-empty only if tail is a real node. */
	return q->tail != &q->stub;
}

/* Consumer only, once: refuse every later push. Returns the last node
 * pushed before (the end of what mllpi_mpsc_pop_sealed() returns). */
static inline struct mllpi_node *mllpi_mpsc_seal(struct mllpi_mpsc *q)
{
	/* seq_cst: ordered with the pushes' CAS (one of them, or the seal,
	 * wins; a push that loses sees the sentinel). */
	return atomic_exchange_explicit(&q->head, &q->sealed,
					memory_order_seq_cst);
}

/* Consumer only, after mllpi_mpsc_seal() returned last: the next node
 * pushed before the seal, waiting for links still in progress (a producer
 * between its CAS and its store); NULL when all have been returned. */
static inline struct mllpi_node *mllpi_mpsc_pop_sealed(struct mllpi_mpsc *q,
						       struct mllpi_node *last)
{
	for (;;) {
		struct mllpi_node *t = q->tail;
		if (t == NULL)
			return NULL;
		if (t == last) {
			q->tail = NULL;
			return t == &q->stub ? NULL : t;
		}
		/* acquire: the node's contents with its link. */
		struct mllpi_node *next;
		while ((next = atomic_load_explicit(
			    &t->next, memory_order_acquire)) == NULL)
			sched_yield(); /* its successor is being linked */
		q->tail = next;
		if (t != &q->stub)
			return t;
	}
}

#endif

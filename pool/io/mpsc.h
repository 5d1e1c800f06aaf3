/* Internal: intrusive lock-free multi-producer / single-consumer FIFO,
 * which the consumer can seal.
 *
 * Producers push onto a LIFO list (one compare-and-swap of `top`, retried
 * after a short pause only when another push or the consumer won). The
 * consumer takes the whole list with one exchange, reverses it into its own
 * FIFO `ready` list, and pops from that without any atomic operation until
 * it is empty. So producers and the consumer meet on `top` once per batch, not
 * once per node, and a push is complete the moment its CAS succeeds:
 * there is no half-linked state for the consumer to wait out.
 *
 * Order: the CASes on `top` are totally ordered; reversing a batch gives
 * that order back, and each batch was pushed after the previous one was
 * taken. So nodes come out in push order — in particular each producer's
 * nodes in the order it pushed them.
 *
 * ABA: producers only add at `top`; the consumer never removes a single
 * node from it, only swaps the whole list out. A CAS that succeeds with a
 * reused pointer still links n in front of the node that is `top` then.
 *
 * Sealing: the consumer swings `top` to a sentinel (mllpi_mpsc_seal); from
 * then on every push fails without touching the queue, and the consumer
 * takes what was pushed before with mllpi_mpsc_pop(). So a refused
 * producer never links into the queue (its node may be freed at once), and
 * nothing pushed successfully is left behind. */
#ifndef MLLPI_MPSC_H
#define MLLPI_MPSC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Pauses a producer makes after a failed CAS (each some 10 ns on current
 * x86; 64 measured best in bench_queue with two producers). */
#define MLLPI_MPSC_BACKOFF 64

static inline void mllpi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

struct mllpi_node {
	_Atomic(struct mllpi_node *) next;
	int kind; /* what the node is (interpreted by the consumer) */
};

/* top (written by every producer) and the consumer's fields are 64 bytes
 * apart, so they never share a cache line. Padding, not alignas: the pool
 * is allocated through a user allocator that only guarantees malloc
 * alignment. */
struct mllpi_mpsc {
	/* Last pushed node, or NULL, or &sealed; producers swing it. */
	_Atomic(struct mllpi_node *) top;
	char pad_top_[64 - sizeof(void *)];
	/* Consumer only: taken nodes, oldest first. */
	struct mllpi_node *ready;
	/* its address is the top of a sealed queue (never read) */
	struct mllpi_node sealed;
	/* keeps the next member off the consumer's cache line */
	char pad_ready_[64 - sizeof(void *) - sizeof(struct mllpi_node)];
};

static inline void mllpi_mpsc_init(struct mllpi_mpsc *q)
{
	atomic_init(&q->top, NULL);
	q->ready = NULL;
	atomic_init(&q->sealed.next, NULL);
	q->sealed.kind = -1;
}

/* False: the queue is sealed, n was not pushed (and is not referenced). */
static inline bool mllpi_mpsc_push(struct mllpi_mpsc *q, struct mllpi_node *n)
{
	/* relaxed: only the first guess of the CAS. */
	struct mllpi_node *top =
	    atomic_load_explicit(&q->top, memory_order_relaxed);
	for (;;) {
		if (top == &q->sealed)
			return false;
		/* relaxed: published by the CAS below (release). */
		atomic_store_explicit(&n->next, top, memory_order_relaxed);
		/* seq_cst CAS: (1) release: n's contents and link are
		 * visible to the consumer whose exchange takes them (the
		 * later CASes of other producers continue the release
		 * sequence); (2) it takes part in the single total order
		 * with the manager's `sleeping` store and top load (the
		 * wake-up pair of subq.h: the producer then loads
		 * `sleeping` with seq_cst). relaxed on failure: retried
		 * with the fresh top. */
		if (atomic_compare_exchange_weak_explicit(&q->top, &top, n,
							  memory_order_seq_cst,
							  memory_order_relaxed))
			return true;
		/* Lost to another push (or the consumer's exchange): that
		 * thread owns the line now. Retrying at once would pull the
		 * line back and forth between cores on every attempt; a
		 * short pause lets the winner finish its burst. */
		for (int i = 0; i < MLLPI_MPSC_BACKOFF; i++)
			mllpi_cpu_relax();
	}
}

/* Consumer only: reverse the LIFO chain `c` (newest first) and append it
 * to ready. */
static inline void mllpi_mpsc_take_(struct mllpi_mpsc *q, struct mllpi_node *c)
{
	struct mllpi_node *fifo = NULL;
	while (c) {
		/* relaxed: the exchange that took c acquired the links. */
		struct mllpi_node *next =
		    atomic_load_explicit(&c->next, memory_order_relaxed);
		atomic_store_explicit(&c->next, fifo, memory_order_relaxed);
		fifo = c;
		c = next;
	}
	if (!q->ready) {
		q->ready = fifo;
		return;
	}
	struct mllpi_node *last = q->ready;
	struct mllpi_node *n;
	while ((n = atomic_load_explicit(&last->next, memory_order_relaxed)))
		last = n;
	atomic_store_explicit(&last->next, fifo, memory_order_relaxed);
}

/* Consumer only. Returns the oldest node, or NULL when the queue is empty.
 * Also the way to drain a sealed queue. */
static inline struct mllpi_node *mllpi_mpsc_pop(struct mllpi_mpsc *q)
{
	if (!q->ready) {
		/* relaxed: a hint; skips the exchange (a write to the
		 * producers' line) when nothing is there. */
		struct mllpi_node *top =
		    atomic_load_explicit(&q->top, memory_order_relaxed);
		if (top == NULL || top == &q->sealed)
			return NULL;
		/* acquire: pairs with the pushes' CAS (release sequence
		 * on top), so the taken nodes' contents are visible. */
		mllpi_mpsc_take_(q, atomic_exchange_explicit(
					&q->top, NULL, memory_order_acquire));
	}
	struct mllpi_node *n = q->ready;
	if (n)
		q->ready = atomic_load_explicit(&n->next, memory_order_relaxed);
	return n;
}

/* Consumer only: false only when the queue is empty. seq_cst load of
 * top: the manager's half of the Dekker pair (store sleeping; load top)
 * against the producer's (CAS top; load sleeping). */
static inline bool mllpi_mpsc_maybe_nonempty(struct mllpi_mpsc *q)
{
	if (q->ready)
		return true;
	struct mllpi_node *top =
	    atomic_load_explicit(&q->top, memory_order_seq_cst);
	return top != NULL && top != &q->sealed;
}

/* Consumer only, once: refuse every later push. What was pushed before
 * stays to be taken with mllpi_mpsc_pop(). */
static inline void mllpi_mpsc_seal(struct mllpi_mpsc *q)
{
	/* seq_cst: ordered with the pushes' CAS (one of them, or the seal,
	 * wins; a push that loses sees the sentinel). Acquire part: the
	 * taken nodes' contents. */
	struct mllpi_node *c =
	    atomic_exchange_explicit(&q->top, &q->sealed, memory_order_seq_cst);
	mllpi_mpsc_take_(q, c);
}

#endif

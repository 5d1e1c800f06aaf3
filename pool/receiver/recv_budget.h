/* Internal: the receiver-wide budget of buffered bytes.
 *
 * Each open connection reports the bytes it holds (partial frame, replies
 * waiting, held replies, received bytes kept undecoded) with
 * mllpi_rbudget_set(). Above 3/4 of the limit the budget is under
 * pressure. The fair share is limit / (2 * connections), at least
 * fair_min (mllpi_rbudget_init); under pressure:
 *   - a connection holding more than the fair share is paused (its
 *     `paused` flag is set and the reads hook called, so that the receiver
 *     stops reading it);
 *   - a connection at or below the fair share is never paused, and a
 *     paused one that gets there reads again at once: when its own bytes
 *     fall, or when connections close and the share grows. So a client
 *     that holds little (one frame in, one reply out) keeps being served
 *     however long non-reading peers keep the total between 1/2 and the
 *     limit, and its reads can only take the total over the limit at the
 *     expense of a heavier connection;
 * below 1/2 of the limit the pressure ends and every paused connection is
 * resumed. Above the limit the heaviest connections are shed (the shed
 * hook closes them) until the total fits again, so the published total
 * never exceeds the limit. A paused connection above its share waits: for
 * its peer to take its replies, for the share to grow, or for the relief.
 *
 * Threading: the manager thread only; the published figures are atomics
 * readable from any thread. The hooks may call mllpi_rbudget_remove()
 * (closing a connection does; the connection must stay in memory until
 * the call returns) but not mllpi_rbudget_set(). */
#ifndef MLLPI_RECV_BUDGET_H
#define MLLPI_RECV_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MLLPI_RBUDGET_FAIR_MIN ((size_t)64 * 1024)

struct mllpi_rbudget_conn {
	struct mllpi_rbudget_conn *prev, *next;
	size_t bytes;
	bool listed;
	bool paused; /* the budget asks the receiver not to read it */
};

struct mllpi_rbudget {
	size_t limit;
	size_t fair_min; /* the fair share's floor */
	size_t total;
	uint32_t n;
	uint32_t npaused; /* connections with `paused` set */
	bool pressure;
	struct mllpi_rbudget_conn *head;
	void (*reads)(struct mllpi_rbudget_conn *bc); /* paused changed */
	void (*shed)(struct mllpi_rbudget_conn *bc);  /* close it */
	_Atomic uint64_t st_total, st_peak, st_shed, st_pauses;
};

/* fair_min: the fair share never falls below it (nor below
 * MLLPI_RBUDGET_FAIR_MIN); at least what a connection at rest keeps
 * allocated, so that one is never paused for its kept buffers alone. */
void mllpi_rbudget_init(struct mllpi_rbudget *b, size_t limit, size_t fair_min,
			void (*reads)(struct mllpi_rbudget_conn *),
			void (*shed)(struct mllpi_rbudget_conn *));

/* A new connection, holding nothing yet. */
void mllpi_rbudget_add(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc);

/* The connection closes: its bytes no longer count. Idempotent. */
void mllpi_rbudget_remove(struct mllpi_rbudget *b,
			  struct mllpi_rbudget_conn *bc);

/* bc now holds `bytes`: account them, then pause, resume or shed as the
 * rules above say (bc itself may be paused or shed). */
void mllpi_rbudget_set(struct mllpi_rbudget *b, struct mllpi_rbudget_conn *bc,
		       size_t bytes);

#endif

/* Internal: the receiver-wide budget of buffered bytes.
 *
 * Each open connection reports the bytes it holds (partial frame, replies
 * waiting, held replies) with mllpi_rbudget_set(). Above 3/4 of the limit
 * the budget is under pressure: connections holding more than a fair
 * share (limit / (2 * connections), at least MLLPI_RBUDGET_FAIR_MIN) are
 * paused (their `paused` flag is set and the reads hook called, so that
 * the receiver stops reading them); below 1/2 of the limit every paused
 * connection is resumed. Above the limit the heaviest connections are
 * shed (the shed hook closes them) until the total fits again, so the
 * published total never exceeds the limit.
 *
 * Threading: the manager thread only; the published figures are atomics
 * readable from any thread. The hooks may call mllpi_rbudget_remove()
 * (closing a connection does) but not mllpi_rbudget_set(). */
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
	size_t total;
	uint32_t n;
	bool pressure;
	struct mllpi_rbudget_conn *head;
	void (*reads)(struct mllpi_rbudget_conn *bc); /* paused changed */
	void (*shed)(struct mllpi_rbudget_conn *bc);  /* close it */
	_Atomic uint64_t st_total, st_peak, st_shed, st_pauses;
};

void mllpi_rbudget_init(struct mllpi_rbudget *b, size_t limit,
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

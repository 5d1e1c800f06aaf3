/* libmllp: reconnect delay policy.
 *
 * Exponential (the reference's use_backoff): the first retry waits 1 s, then
 * 2 s, 4 s, ... capped at backoff_max_s (default 180); a successful
 * connect resets it. Fixed: every retry waits auto_reconnect_interval_ms
 * (default 1000). Optional jitter subtracts a random part of up to
 * jitter_percent of the delay, from an injected random source.
 *
 * Pure: no clock, no global state. Threading: one thread per struct. */
#ifndef MLLP_BACKOFF_H
#define MLLP_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include <mllp/export.h>

MLLP_BEGIN_DECLS

struct mllp_backoff_config {
	bool use_backoff;		     /* default true */
	uint32_t backoff_max_s;		     /* default 180 */
	uint32_t auto_reconnect_interval_ms; /* default 1000 */
	uint32_t jitter_percent;	     /* 0..100, default 0 (none) */
	/* Random source for jitter: returns a uniformly random 64-bit value.
	 * May be NULL when jitter_percent is 0. Called on the owner's thread.
	 */
	uint64_t (*random)(void *ctx);
	void *random_ctx;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_backoff_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

MLLP_API void mllp_backoff_config_init(struct mllp_backoff_config *cfg);

struct mllp_backoff {
	struct mllp_backoff_config cfg;
	uint64_t next_ms;  /* delay the next failure will wait, before jitter */
	uint32_t failures; /* consecutive failures since the last reset */
};

/* Returns 0 or MLLP_ERR_INVALID_ARGUMENT (zero max with backoff, zero
 * interval without, jitter over 100 or jitter without a random source). */
MLLP_API int mllp_backoff_init(struct mllp_backoff *b,
			       const struct mllp_backoff_config *cfg);

/* A connect attempt failed: returns how long to wait (ms) before the next
 * attempt and advances the sequence. */
MLLP_API uint64_t mllp_backoff_fail(struct mllp_backoff *b);

/* The delay the next failure would return, before jitter (no change). */
MLLP_API uint64_t mllp_backoff_peek(const struct mllp_backoff *b);

/* A connect succeeded (or the caller wants an immediate fresh start):
 * the next failure waits the initial delay again. */
MLLP_API void mllp_backoff_reset(struct mllp_backoff *b);

MLLP_END_DECLS

#endif

/* Internal: the manager's timers — one binary min-heap of deadlines for
 * every connect, send, reply, backoff and queue timeout of a pool. The
 * earliest deadline bounds how long the manager sleeps; no kernel timeout
 * per message. Manager thread only. */
#ifndef MLLPI_TIMER_H
#define MLLPI_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/alloc.h>

struct mllpi_timer {
	uint64_t deadline_us; /* monotonic */
	size_t index;	      /* heap slot + 1; 0 when not armed */
	int kind;	      /* interpreted by the owner */
	void *owner;
};

struct mllpi_timers {
	struct mllpi_timer **heap;
	size_t len, cap;
	const struct mllp_allocator *alloc;
};

void mllpi_timers_init(struct mllpi_timers *t,
		       const struct mllp_allocator *alloc);
void mllpi_timers_free(struct mllpi_timers *t);
/* Arm (or re-arm) tm at deadline_us. Returns 0 or MLLP_ERR_NO_MEMORY. */
int mllpi_timer_arm(struct mllpi_timers *t, struct mllpi_timer *tm,
		    uint64_t deadline_us);
void mllpi_timer_disarm(struct mllpi_timers *t, struct mllpi_timer *tm);
static inline bool mllpi_timer_armed(const struct mllpi_timer *tm)
{
	return tm->index != 0;
}
/* The earliest armed timer, or NULL. */
static inline struct mllpi_timer *mllpi_timers_peek(struct mllpi_timers *t)
{
	return t->len ? t->heap[0] : NULL;
}
/* Make room for n armed timers so that arming cannot fail. */
int mllpi_timers_reserve(struct mllpi_timers *t, size_t n);
/* Monotonic microseconds: CLOCK_MONOTONIC, or the test clock. */
uint64_t mllpi_now_us(void);
/* Test hook: from now on mllpi_now_us() returns now_us(ctx) (NULL: the
 * real clock again). Not thread-safe: call it only while no pool or
 * receiver exists (before the first is created, after the last is
 * destroyed); the clock must never go backwards while one runs. */
void mllpi_clock_override(uint64_t (*now_us)(void *ctx), void *ctx);
/* The deadline ms milliseconds after now_us. Delays are clamped to
 * MLLPI_MAX_DELAY_US (about 31 years): the largest timeouts the options
 * accept (INT64_MAX ms) would wrap the microsecond clock and expire at
 * once; clamped, they are as good as never. */
#define MLLPI_MAX_DELAY_US 1000000000000000ull
uint64_t mllpi_after_ms(uint64_t now_us, uint64_t ms);

#endif

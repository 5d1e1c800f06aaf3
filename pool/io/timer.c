/* The manager's timer heap (see timer.h). */
#include "timer.h"

#include <time.h>

#include <mllp/error.h>

/* The test clock (mllpi_clock_override): plain globals, written before
 * any pool exists and read-only while one runs, so no atomics; the
 * pthread_create of the manager orders the write before its reads. */
static uint64_t (*clock_fn)(void *ctx);
static void *clock_ctx;

void mllpi_clock_override(uint64_t (*now_us)(void *ctx), void *ctx)
{
	clock_ctx = ctx;
	clock_fn = now_us;
}

uint64_t mllpi_now_us(void)
{
	if (__builtin_expect(clock_fn != NULL, 0))
		return clock_fn(clock_ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mllpi_after_ms(uint64_t now_us, uint64_t ms)
{
	if (ms > MLLPI_MAX_DELAY_US / 1000u)
		return now_us + MLLPI_MAX_DELAY_US;
	return now_us + ms * 1000u;
}

void mllpi_timers_init(struct mllpi_timers *t,
		       const struct mllp_allocator *alloc)
{
	t->heap = NULL;
	t->len = t->cap = 0;
	t->alloc = alloc;
}

void mllpi_timers_free(struct mllpi_timers *t)
{
	for (size_t i = 0; i < t->len; i++)
		t->heap[i]->index = 0;
	t->alloc->free(t->alloc->ctx, t->heap, t->cap * sizeof(*t->heap));
	t->heap = NULL;
	t->len = t->cap = 0;
}

static void place(struct mllpi_timers *t, size_t i, struct mllpi_timer *tm)
{
	t->heap[i] = tm;
	tm->index = i + 1;
}

static void sift_up(struct mllpi_timers *t, size_t i)
{
	struct mllpi_timer *tm = t->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (t->heap[p]->deadline_us <= tm->deadline_us)
			break;
		place(t, i, t->heap[p]);
		i = p;
	}
	place(t, i, tm);
}

static void sift_down(struct mllpi_timers *t, size_t i)
{
	struct mllpi_timer *tm = t->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->len)
			break;
		if (c + 1 < t->len &&
		    t->heap[c + 1]->deadline_us < t->heap[c]->deadline_us)
			c++;
		if (tm->deadline_us <= t->heap[c]->deadline_us)
			break;
		place(t, i, t->heap[c]);
		i = c;
	}
	place(t, i, tm);
}

int mllpi_timer_arm(struct mllpi_timers *t, struct mllpi_timer *tm,
		    uint64_t deadline_us)
{
	if (tm->index) {
		uint64_t old = tm->deadline_us;
		tm->deadline_us = deadline_us;
		if (deadline_us < old)
			sift_up(t, tm->index - 1);
		else
			sift_down(t, tm->index - 1);
		return 0;
	}
	if (t->len == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 64;
		void *p = t->alloc->realloc(t->alloc->ctx, t->heap,
					    t->cap * sizeof(*t->heap),
					    ncap * sizeof(*t->heap));
		if (!p)
			return MLLP_ERR_NO_MEMORY;
		t->heap = p;
		t->cap = ncap;
	}
	tm->deadline_us = deadline_us;
	t->heap[t->len] = tm;
	tm->index = ++t->len;
	sift_up(t, t->len - 1);
	return 0;
}

void mllpi_timer_disarm(struct mllpi_timers *t, struct mllpi_timer *tm)
{
	if (!tm->index)
		return;
	size_t i = tm->index - 1;
	tm->index = 0;
	t->len--;
	if (i == t->len)
		return;
	struct mllpi_timer *last = t->heap[t->len];
	t->heap[i] = last;
	last->index = i + 1;
	if (i > 0 && t->heap[(i - 1) / 2]->deadline_us > last->deadline_us)
		sift_up(t, i);
	else
		sift_down(t, i);
}

int mllpi_timers_reserve(struct mllpi_timers *t, size_t n)
{
	if (n <= t->cap)
		return 0;
	void *p =
	    t->alloc->realloc(t->alloc->ctx, t->heap, t->cap * sizeof(*t->heap),
			      n * sizeof(*t->heap));
	if (!p)
		return MLLP_ERR_NO_MEMORY;
	t->heap = p;
	t->cap = n;
	return 0;
}

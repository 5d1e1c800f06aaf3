/* Internal: the manager loop that the pool and the receiver share.
 *
 * A loop owns one manager thread, its I/O backend (io_uring, or epoll when
 * asked or when io_uring is refused in auto mode) and its timers. The
 * thread creates the backend, reports the outcome to the starting thread
 * (start returns it), then runs turns until the owner says it is done:
 *
 *   take queued work -> fire due timers -> end of turn (deferred frees)
 *   -> done? -> wait for completions (or a wake-up, or the next timer;
 *   no sleep while work is pending) -> hand each completion to the owner
 *   -> end of turn -> ...
 *
 * The owners differ only in their hooks. Errors from wait(): EINTR is
 * ignored; MAX consecutive other failures mean no completion can come back
 * any more: the fatal hook runs (it must fail and drop everything without
 * waiting for completions) and the loop ends.
 *
 * Time: now_us is refreshed after every wait() and after a turn that took
 * queued work (one clock read per turn, not per message), always through
 * mllpi_now_us(). wall_s (time()) is refreshed after every wait().
 *
 * Threading: every field but the setup handshake is the manager thread's.
 * mllpi_loop_wake() may be called from any thread once start returned 0. */
#ifndef MLLPI_LOOP_H
#define MLLPI_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <mllp/alloc.h>
#include <mllp/error.h>
#include <mllp/pool.h>

#include "backend.h"
#include "timer.h"

/* What the owner does with the loop's events. ctx is the owner. Every hook
 * but on_cqe and done may be NULL. */
struct mllpi_loop_hooks {
	/* On the manager thread, once the backend exists, before start
	 * returns: arm what must be armed first (the receiver's accept).
	 * A negative return (with err set) fails start. */
	int (*setup)(void *ctx, struct mllp_error *err);
	/* Start of every turn: take queued work. Returns how many items it
	 * took. */
	int (*take_work)(void *ctx);
	/* After the timers: true when queued work may be waiting (the wait
	 * then does not sleep). */
	bool (*pending)(void *ctx);
	/* A timer whose deadline has passed (already disarmed). */
	void (*on_timer)(void *ctx, struct mllpi_timer *t);
	void (*on_cqe)(void *ctx, const struct mllpi_cqe *cq);
	/* After the timers and after each batch of completions: free what
	 * was closed this turn. */
	void (*end_turn)(void *ctx);
	/* True: leave the loop (checked once per turn, before the wait). */
	bool (*done)(void *ctx);
	/* True while stopping: the wait then polls (bounded sleep). */
	bool (*stopping)(void *ctx);
	/* Before a wait that may sleep: true means work arrived meanwhile
	 * (do not sleep). awake: after such a wait. (subq.h's pair.) */
	bool (*prepare_sleep)(void *ctx);
	void (*awake)(void *ctx);
	/* Right before every wait(). */
	void (*before_wait)(void *ctx);
	/* wait() failed for good with rc. */
	void (*fatal)(void *ctx, int rc);
	/* On the manager thread after the last turn. */
	void (*finish)(void *ctx);
	/* The one warning when auto mode falls back to epoll. */
	void (*warn)(void *ctx, const char *line);
};

struct mllpi_loop {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *be;
	struct mllpi_timers timers;
	uint64_t now_us;
	int64_t wall_s;
	uint64_t turn; /* wait() calls returned so far */
	/* private */
	const struct mllpi_loop_hooks *hooks;
	void *ctx;
	struct mllpi_backend_config bc;
	bool fallback; /* auto: epoll when io_uring is refused */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int setup_rc; /* 1 while pending */
	struct mllp_error setup_err;
};

/* Prepare l (no thread yet). ops: the backend to start with (NULL: as
 * kind says); kind MLLP_BACKEND_AUTO with the io_uring backend falls back
 * to epoll when io_uring is refused. bc->alloc must outlive the loop. */
void mllpi_loop_init(struct mllpi_loop *l, const struct mllpi_backend_ops *ops,
		     enum mllp_backend_kind kind,
		     const struct mllpi_backend_config *bc,
		     const struct mllpi_loop_hooks *hooks, void *ctx);
/* Start the manager thread and wait for its setup: 0, or its error (the
 * thread has then ended; err says why). what names the thread in errors
 * ("manager", "receiver"). */
int mllpi_loop_start(struct mllpi_loop *l, const char *what,
		     struct mllp_error *err);
/* Any thread: make a current or the next wait() return. */
void mllpi_loop_wake(struct mllpi_loop *l);
/* Wait for the manager thread to end (after the owner asked it to). */
void mllpi_loop_join(struct mllpi_loop *l);
/* Free the backend and the timers (after join, or when start failed). */
void mllpi_loop_fini(struct mllpi_loop *l);
/* The loop running on this thread (NULL off every manager thread). */
struct mllpi_loop *mllpi_loop_current(void);
/* The deadline of the next timer as a wait() timeout: -1 none, else
 * microseconds from now_us (0 when due). */
int64_t mllpi_loop_timeout(struct mllpi_loop *l);

#endif

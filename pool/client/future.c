/* Futures: exactly-once completion, wait (futex), poll, cancel, free. */
#include "app_ack.h"
#include "pool_internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void futex_wait(_Atomic uint32_t *addr, uint32_t val,
		       const struct timespec *rel)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, rel, NULL,
		0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
		NULL, 0);
}

/* Manager side: publish the result and run the callback. The engine's
 * reference is kept (released separately when the connection is done with
 * the message). */
void mllpi_wake_state(_Atomic uint32_t *state)
{
	futex_wake_all(state);
}

void mllpi_future_publish(struct mllp_future *f)
{
	f->completed = true;
	if (f->app) /* enhanced mode: the application stage (app_track.c) */
		mllpi_app_accepted(f);
	/* seq_cst store: (1) release — the result written before is visible
	 * to whoever acquires state == 1; (2) Dekker pair with the waiter
	 * (waiters++ seq_cst; load state seq_cst): either the waiter sees 1
	 * or we see its waiters count and wake it. */
	atomic_store_explicit(&f->state, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&f->waiters, memory_order_seq_cst) > 0)
		futex_wake_all(&f->state);
	if (f->cb)
		f->cb(f, f->cb_arg);
	/* After the callback: a harvested future's callback has run. The
	 * list's reference was taken at send (future_new). */
	if (f->notify_fd)
		mllpi_cfd_push(&f->pool->cfd, f);
}

void mllpi_future_release(struct mllp_future *f)
{
	/* acq_rel: the last owner sees every write of the others before it
	 * frees the memory. */
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
		return;
	struct mllp_allocator a = f->alloc;
	if (f->app)
		mllpi_app_free(f);
	if (f->reply_heap)
		a.free(a.ctx, f->reply_heap, f->reply_heap_size);
	a.free(a.ctx, f, f->alloc_size);
}

bool mllp_future_poll(const struct mllp_future *f)
{
	if (!f)
		return false;
	/* acquire: pairs with the publishing store; the result is visible. */
	return atomic_load_explicit(&((struct mllp_future *)f)->state,
				    memory_order_acquire) == 1;
}

const struct mllp_result *mllp_future_result(const struct mllp_future *f)
{
	return mllp_future_poll(f) ? &f->result : NULL;
}

int mllp_future_wait(struct mllp_future *f, int64_t timeout_ms)
{
	if (!f)
		return MLLP_ERR_INVALID_ARGUMENT;
	/* On the manager thread (a callback of f's pool) a wait could only
	 * wait for itself: refused, completed or not, so that the mistake
	 * shows at once. timeout 0 is a poll and allowed. */
	if (timeout_ms != 0 && mllpi_pool_on_manager(f->pool))
		return MLLP_ERR_INVALID_ARGUMENT;
	return mllpi_wait_state(&f->state, &f->waiters, timeout_ms);
}

int mllpi_wait_state(_Atomic uint32_t *state, _Atomic uint32_t *waiters,
		     int64_t timeout_ms)
{
	/* acquire: pairs with the publishing store; the result is visible. */
	if (atomic_load_explicit(state, memory_order_acquire) == 1)
		return 0;
	if (timeout_ms == 0)
		return MLLP_ERR_TIMEOUT;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms > 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}
	/* seq_cst: announce the waiter before re-checking state (see
	 * mllpi_future_publish). */
	atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
	int rc = 0;
	while (atomic_load_explicit(state, memory_order_seq_cst) == 0) {
		if (timeout_ms < 0) {
			futex_wait(state, 0, NULL);
			continue;
		}
		struct timespec now, rel;
		clock_gettime(CLOCK_MONOTONIC, &now);
		rel.tv_sec = deadline.tv_sec - now.tv_sec;
		rel.tv_nsec = deadline.tv_nsec - now.tv_nsec;
		if (rel.tv_nsec < 0) {
			rel.tv_sec--;
			rel.tv_nsec += 1000000000;
		}
		if (rel.tv_sec < 0) {
			rc = MLLP_ERR_TIMEOUT;
			break;
		}
		futex_wait(state, 0, &rel);
	}
	/* relaxed: only a hint for the completer's wake decision. */
	atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
	if (rc == 0)
		/* acquire: make the result visible (the loop's seq_cst load
		 * already orders, this documents it). */
		atomic_thread_fence(memory_order_acquire);
	return rc;
}

int mllp_future_cancel(struct mllp_future *f)
{
	if (!f)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (mllp_future_poll(f))
		return 0;
	/* relaxed exchange: only de-duplicates cancel requests; the queue
	 * push orders the rest. */
	if (atomic_exchange_explicit(&f->cancel_requested, true,
				     memory_order_relaxed))
		return 0;
	/* The cancel op holds a reference until the manager handled it. */
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	if (mllpi_pool_push(f->pool, &f->cancel_node) != 0)
		mllpi_future_release(f);
	return 0;
}

void mllp_future_free(struct mllp_future *f)
{
	if (f)
		mllpi_future_release(f);
}

/* libmllp: futures — the completion object of every asynchronous send.
 *
 * A future completes exactly once: with a reply (verified HL7 ACK or raw
 * reply bytes), with "written" for send_async, or with an error record. A
 * send call that fails synchronously returns no future, so nothing
 * completes later.
 *
 * Ownership: the producer that got the future from a send call owns it and
 * must call mllp_future_free() exactly once, before or after completion,
 * from any thread, including from inside the future's own callback. The
 * library keeps the memory alive internally as long as it still needs it.
 *
 * Threading: wait/poll/result/cancel/free may be called from any thread.
 * The callback (see struct mllp_send_options) runs on the pool's manager
 * thread, exactly once, after the result is visible; it must not block and
 * must not wait on any future. */
#ifndef MLLP_FUTURE_H
#define MLLP_FUTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/export.h>

MLLP_BEGIN_DECLS

/* Timeout value meaning "wait forever", for every *_ms field and argument
 * of the pool, future and client APIs. */
#define MLLP_INFINITE (-1)

struct mllp_future;

/* Size of mllp_result.why, NUL included. */
#define MLLP_RESULT_WHY_MAX 160

/* The outcome of a completed future. Owned by the future; valid until
 * mllp_future_free(). */
struct mllp_result {
	/* 0 on success (a reply arrived, or, for send_async, the message was
	 * written); otherwise the error code, equal to error.reason. */
	int status;
	/* On failure: context (connect/send/receive/verify), reason, message.
	 * Cleared on success. */
	struct mllp_error error;
	/* True when every byte of the message was written to the socket. On
	 * failure this says whether it may have reached the receiver (true:
	 * written, not acknowledged) or certainly did not (false: never
	 * completely written; see may_have_reached for partial writes). */
	bool written;
	/* On failure: true when at least one byte was written, so the
	 * receiver may have seen (part of) it. */
	bool may_have_reached;
	/* HL7 payload with a reply: the verdict and the ack record (views into
	 * reply[]); why holds the reference's explanation for a non-accept
	 * verdict. */
	bool has_verdict;
	enum mllp_verdict verdict;
	struct mllp_ack ack;
	char why[MLLP_RESULT_WHY_MAX];
	/* The unwrapped reply payload (the ACK for HL7, the reply bytes for
	 * raw payloads); a copy owned by the future. NULL/0 without reply. */
	const unsigned char *reply;
	size_t reply_len;
	/* Microseconds from the first byte written to the reply (0 without). */
	uint64_t latency_us;
};

/* Wait until the future completes or timeout_ms passes (MLLP_INFINITE:
 * forever; 0: just check). Returns 0 when complete, MLLP_ERR_TIMEOUT
 * otherwise, MLLP_ERR_INVALID_ARGUMENT for NULL or for a timeout other
 * than 0 on the manager thread of the future's pool (from a callback,
 * telemetry or log hook it could only wait for itself: refused even when
 * the future is complete). */
MLLP_API int mllp_future_wait(struct mllp_future *f, int64_t timeout_ms);

/* True when the future has completed (acquire: the result is visible). */
MLLP_API bool mllp_future_poll(const struct mllp_future *f);

/* The result of a completed future, or NULL while pending. */
MLLP_API const struct mllp_result *
mllp_future_result(const struct mllp_future *f);

/* Ask the pool to cancel the message. A message still queued is failed
 * with MLLP_ERR_CANCELED (never written); one already being sent or
 * awaiting its reply completes with MLLP_ERR_CANCELED and its reply, if
 * any, is consumed by the pool and reported to telemetry only. A completed
 * future is not changed. Asynchronous: wait for completion to know which
 * happened. Returns 0, or MLLP_ERR_INVALID_ARGUMENT. */
MLLP_API int mllp_future_cancel(struct mllp_future *f);

/* Release the caller's reference. Allowed before completion (the message
 * still runs to its end; the result is then discarded) and inside the
 * future's callback. NULL is ignored. */
MLLP_API void mllp_future_free(struct mllp_future *f);

/* Callback run once on the manager thread when the future completes. */
typedef void (*mllp_future_cb)(struct mllp_future *f, void *arg);

/* ---- Completion fd: harvesting futures from a host event loop -----------
 *
 * A broker with its own event loop (libuv, epoll, ...) polls one file
 * descriptor per pool instead of waiting on futures or running code on the
 * manager thread. A future sent with mllp_send_options.notify =
 * MLLP_NOTIFY_FD is, once complete (result set, waiters woken, callback
 * run), appended to the pool's harvest list; mllp_pool_completion_fd()
 * becomes readable and mllp_pool_harvest() hands the futures out in
 * completion order, each exactly once.
 *
 * Such a future is otherwise an ordinary future: mllp_future_wait, poll,
 * result and cancel work as usual and it may have a callback too. The
 * harvest list holds a reference of its own: mllp_pool_harvest() gives it
 * to the caller, who frees it with mllp_future_free(). So a future sent
 * with MLLP_NOTIFY_FD is freed twice, once for the pointer the send
 * returned and once for the one the harvest returned, in any order: a
 * broker that keeps no pointer frees the send's at once and the harvested
 * one when done with the result. Futures still unharvested when the pool
 * is destroyed are released by mllp_pool_destroy(). */
enum mllp_notify {
	MLLP_NOTIFY_NONE = 0, /* wait, poll or callback only (no cost) */
	MLLP_NOTIFY_FD,	      /* also delivered to mllp_pool_harvest() */
};

struct mllp_pool;

/* The pool's completion fd: an eventfd (non-blocking, close-on-exec)
 * owned by the pool, created by the first call (later calls return the
 * same fd) and closed by mllp_pool_destroy(). Poll it for reading only:
 * never read, write or close it. It is readable while futures wait to be
 * harvested (level-triggered: after a wake-up, harvest until a call
 * returns fewer than max; what is left keeps the fd readable). A wake-up
 * may find nothing (mllp_pool_harvest returns 0): harmless. Futures
 * completed before the first call are not lost: the fd is readable at
 * once. Returns the fd, MLLP_ERR_INVALID_ARGUMENT for NULL, or -errno
 * from eventfd (e.g. -EMFILE; a later call tries again). Thread-safe. */
MLLP_API int mllp_pool_completion_fd(struct mllp_pool *pool);

/* Take up to max completed MLLP_NOTIFY_FD futures into futures[], oldest
 * completion first, without blocking; the caller frees each (see above).
 * Returns how many (0..max, at most INT_MAX), or MLLP_ERR_INVALID_ARGUMENT
 * for a NULL pool or futures NULL with max > 0. When it returns fewer than
 * max it found none left and the fd is quiet until the next completion
 * (a late wake-up that finds nothing may still follow). Stopping the pool
 * completes every future, so after mllp_pool_stop() the rest is
 * harvested. Thread-safe (concurrent harvesters are serialised; one
 * harvesting thread is the intended use); lock-free towards the manager,
 * which never waits for a harvester. Not after mllp_pool_destroy(). */
MLLP_API int mllp_pool_harvest(struct mllp_pool *pool,
			       struct mllp_future **futures, size_t max);

MLLP_END_DECLS

#endif

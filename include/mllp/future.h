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
	char why[160];
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

MLLP_END_DECLS

#endif

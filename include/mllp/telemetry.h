/* libmllp: telemetry events, counters and the log hook of a pool.
 *
 * Event names follow the reference client (Elixir mllp 0.9.x):
 * connection_success, connection_failure, connection_closed, send_error,
 * receive_timeout, invalid_response, receive_valid; and stale_reply (a
 * reply the receiver resent for a message this connection had its answer
 * to already: dropped, see mllp_pool_stats.stale_replies); commit_ack and
 * commit_nak (MLLP release 2, mllp_conn_options.mllp_release);
 * application_ack, application_ack_timeout and late_accept_ack (enhanced
 * acknowledgement mode, mllp/enhanced.h). Events are
 * delivered to
 * a callback set in struct mllp_pool_config; it runs on the pool's manager
 * thread, must not block and must not wait on a future.
 *
 * Threading: mllp_event_name() and mllp_log_level_name() are pure. */
#ifndef MLLP_TELEMETRY_H
#define MLLP_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/export.h>

MLLP_BEGIN_DECLS

enum mllp_event_kind {
	MLLP_EV_CONNECTION_SUCCESS = 0,
	MLLP_EV_CONNECTION_FAILURE,
	MLLP_EV_CONNECTION_CLOSED,
	MLLP_EV_SEND_ERROR,
	MLLP_EV_RECEIVE_TIMEOUT,
	MLLP_EV_INVALID_RESPONSE,
	MLLP_EV_RECEIVE_VALID,
	MLLP_EV_STALE_REPLY,
	/* MLLP release 2 (mllp_conn_options.mllp_release): a commit ACK took
	 * the message in flight (latency_us: send to commit ACK); a NAK (or
	 * no commit answer in time: receive_timeout) answered it: error
	 * MLLP_ERR_NAK, whose message says whether it is sent again. */
	MLLP_EV_COMMIT_ACK,
	MLLP_EV_COMMIT_NAK,
	/* An ordered lane holds (see "Ordered lanes", pool.h): error is the
	 * failure of its message (emitted before its future completes);
	 * connection_id is 0, latency_us 0. */
	MLLP_EV_LANE_HELD,
	/* Enhanced acknowledgement mode (mllp/enhanced.h): the ack listener
	 * took an application ACK (verdict; latency_us from when the manager
	 * took the message; orphan when it matched no message); an
	 * application stage ended by its timeout. */
	MLLP_EV_APPLICATION_ACK,
	MLLP_EV_APPLICATION_ACK_TIMEOUT,
	/* An answer came on the connection for a message whose MSH-15 (NE,
	 * ER) asked for no accept ACK on success and which completed when
	 * written: dropped (mllp_pool_stats.late_accept_acks); verdict: that
	 * of the answer (a CE is application_error); orphan true. */
	MLLP_EV_LATE_ACCEPT_ACK,
};

/* Number of event kinds (a define, not an enumerator, so that a switch
 * over every kind needs no default). */
#define MLLP_EVENT_COUNT 14

/* "connection_success", ... as the reference names them. Never NULL. */
MLLP_API const char *mllp_event_name(enum mllp_event_kind kind);

/* One telemetry event. Every pointer is valid only during the callback. */
struct mllp_event {
	enum mllp_event_kind kind;
	const char *address; /* endpoint host as given, NUL-terminated */
	uint16_t port;
	uint32_t endpoint_id;
	uint32_t connection_id; /* index of the connection in its endpoint */
	/* The error for failure/closed/send_error/receive_timeout/
	 * invalid_response; NULL otherwise. */
	const struct mllp_error *error;
	/* Microseconds: connect duration for connection_success; send to
	 * reply for receive_valid / invalid_response; 0 otherwise. */
	uint64_t latency_us;
	/* connection_failure/closed: the delay (ms, before any test scaling)
	 * until the next connect attempt. */
	uint64_t reconnect_delay_ms;
	/* receive_valid for HL7 payloads: the verdict of the ACK. */
	bool has_verdict;
	enum mllp_verdict verdict;
	/* receive_valid / invalid_response: true when the reply belonged to a
	 * message whose future was already completed (send_async, canceled)
	 * or to no message at all (a late reply dropped by correlation). */
	bool orphan;
};

typedef void (*mllp_telemetry_fn)(void *ctx, const struct mllp_event *ev);

enum mllp_log_level {
	MLLP_LOG_ERROR = 0,
	MLLP_LOG_WARNING,
	MLLP_LOG_INFO,
	MLLP_LOG_DEBUG,
};

/* "error", "warning", "info", "debug". Never NULL. */
MLLP_API const char *mllp_log_level_name(enum mllp_log_level level);

/* A log line without trailing newline; valid only during the call. Runs on
 * the manager thread (or the caller's thread for synchronous errors). */
typedef void (*mllp_log_fn)(void *ctx, enum mllp_log_level level,
			    const char *line);

/* Number of protocol error slots in mllp_pool_stats.errors_mllp: indexed by
 * MLLP_ERR_BASE - reason for reasons in the library range. */
#define MLLP_STATS_MLLP_ERRORS 32

/* Counters of a pool, a snapshot (each counter read atomically, the set
 * not). Plain data.
 *
 * Versioning (as struct mllp_endpoint_stats, pool.h): fields are only
 * ever added at the end. The caller sets `size` to the size of the struct
 * it was compiled with (mllp_pool_stats_init does); the library fills
 * that many bytes at most (fewer when it is older and its struct
 * smaller) and sets `size` to the number of bytes filled. */
struct mllp_pool_stats {
	size_t size;   /* in: sizeof as the caller knows it; out: filled */
	uint64_t sent; /* messages completely written */
	uint64_t acked[MLLP_VERDICT_COUNT]; /* replies verified, by verdict */
	uint64_t raw_replies;		    /* replies to raw payloads */
	uint64_t errors;		    /* futures failed, all reasons */
	uint64_t errors_os; /* ... of which with a -errno reason */
	uint64_t errors_mllp[MLLP_STATS_MLLP_ERRORS]; /* by MLLP_ERR_* */
	uint64_t connects;			      /* successful connects */
	uint64_t reconnects; /* connect attempts after the first */
	uint64_t connect_failures;
	uint64_t in_flight;	 /* on a connection, future not yet complete */
	uint64_t queued;	 /* messages waiting for a connection, now */
	uint64_t tls_handshakes; /* TLS handshakes completed */
	uint64_t tls_resumed;	 /* ... of which resumed a session */
	/* The I/O backend that runs: "io_uring" or "epoll" (static). */
	const char *backend;
	/* Replies dropped as stale: an ACK the receiver sent again for a
	 * message whose reply the same connection had taken already (some
	 * receivers resend every earlier ACK before the new one). The
	 * message in flight keeps waiting for its own reply. */
	uint64_t stale_replies;
	/* Ordered lanes (pool.h), now: lanes that exist (a keyed message
	 * queued, in flight, waiting or retrying, or held); of which held;
	 * keyed messages waiting behind an earlier message of their key; of
	 * which behind a held lane. */
	uint64_t lanes_active;
	uint64_t lanes_held;
	uint64_t lane_waiting;
	uint64_t lane_held_waiting;
	/* Answers dropped as late accept ACKs: a reply on the connection for
	 * a message whose MSH-15 (NE, ER) asked for no accept ACK on success
	 * and which had completed when written (mllp/enhanced.h). */
	uint64_t late_accept_acks;
};

/* Zero *s and set s->size to this header's sizeof (inline on purpose: the
 * size is the caller's). Caller-owned memory; thread-safe for distinct s. */
static inline void mllp_pool_stats_init(struct mllp_pool_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
}

MLLP_END_DECLS

#endif

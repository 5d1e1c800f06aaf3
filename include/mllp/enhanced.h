/* libmllp: enhanced acknowledgement mode (HL7 v2, MSH-15 / MSH-16) on the
 * pool's side.
 *
 * In enhanced mode a message asks, in MSH-15, for an accept
 * acknowledgement (MSA-1 CA, CE or CR: "received and stored", sent back on
 * the same connection) and, in MSH-16, for an application acknowledgement
 * (AA, AE or AR: "processed"), which the receiving system sends later as a
 * message of its own, usually on a connection it opens to the sender's
 * listener. Both fields take AL (always), ER (on error or reject only), SU
 * (on success only) or NE (never); both empty is original mode.
 *
 * Two stages per message:
 *   1. accept: the future of mllp_pool_send(), as for every message. Its
 *      verdict is that of the accept ACK (CA application_accept, CE
 *      application_error, CR application_reject; result.ack.code says
 *      which code came). What the pool waits for follows MSH-15:
 *        - AL, SU, empty: a reply on the connection, as for every
 *          message (SU: no reply is no confirmation, a reply timeout);
 *        - NE (never an accept ACK) and ER (one only on error or
 *          reject): nothing. The stage completes when the message is
 *          written (with TLS: its records handed to the kernel): status
 *          0, written, no verdict, no reply. With max_inflight > 1 the
 *          message leaves the window then. With mllp_release 2 the
 *          commit ACK is still awaited (release 2 is about transport).
 *      An answer that still comes on the connection for such a message
 *      (a CE / CR for ER, any ACK from a receiver in original mode) is a
 *      late accept ACK: it is not credited to another message and does
 *      not close the connection; it is dropped, counted
 *      (late_accept_acks in the pool and endpoint stats,
 *      mllp_late_accept_acks_total), reported (telemetry
 *      late_accept_ack with its verdict, orphan) and logged (a CE / CR
 *      each time, others once per connection), and it ends the
 *      message's application stage if that is still open, as below (CE /
 *      CR: not accepted; an original-mode AA / AE / AR: the application
 *      ACK; a CA changes nothing). The connection remembers the ids of
 *      its last 256 answered or written messages for this.
 *   2. application: when the pool has an ack listener
 *      (mllp_pool_listen_acks) at the time of mllp_pool_send() and the
 *      message is HL7 with MSH-16 AL, ER or SU, the same future also has
 *      an application stage: mllp_future_wait_application() and
 *      mllp_future_application_result(). Application ACKs arriving on the
 *      listener are matched by MSA-2 to the MSH-10 of the pool's messages
 *      waiting for one, of any endpoint (the oldest first when ids repeat).
 * Each stage completes exactly once. The application stage ends:
 *   - with the application ACK that matched (status 0, verdict of AA / AE
 *     / AR, reply and ack as for the accept stage; latency_us from when
 *     the manager took the message);
 *   - with the accept stage's reply itself when that reply is an original
 *     mode ACK (AA / AE / AR: the receiver answered in original mode);
 *   - with MLLP_ERR_NOT_ACCEPTED (context receive) when the accept ACK is
 *     CE or CR (the receiving system will not process the message): "no
 *     application acknowledgement: the accept acknowledgement was CR" (for
 *     MSH-15 ER, a late CE / CR does the same); or
 *     when the accept stage's reply was no valid ACK of the message: "...:
 *     the accept stage's reply was bad_message_control_id" (the verdict's
 *     name); or with the accept stage's own error when it failed (timeout,
 *     closed, canceled, stopped, ...);
 *   - after application_ack_timeout_ms counted from the end of the accept
 *     stage: MLLP_ERR_TIMEOUT "no application acknowledgement within N ms"
 *     for MSH-16 AL and SU; for ER (an application ACK comes only on
 *     error) status 0 without verdict or reply: no error was reported;
 *   - with MLLP_ERR_STOPPED when the pool stops first.
 * An application ACK may complete the application stage before the accept
 * stage (the receiving system was quick); a caller that needs both waits
 * for both.
 *
 * The listener answers each frame as its MSH-15 asks (AL always, ER only
 * on a refusal, SU only on success, empty or NE never): CA for an
 * application ACK that matched, CR ("no message waits for this
 * acknowledgement") for one that matched nothing — it is not credited to
 * any message, it is counted (unmatched) and logged, and the peer learns
 * that sending it again is useless — and CR (AR in original mode) for a
 * frame that is no acknowledgement at all (no MSA segment).
 *
 * Cost: a message without MSH-16 AL/ER/SU, or any message while the pool
 * has no listener, pays nothing more than a branch. MSH-15 is read from
 * the parse that finds MSH-10 (no other pass over the message); a message
 * without it pays a branch. A message with an
 * application stage takes one small allocation (its control id and
 * endpoint name) and one hash-table insertion on the manager thread.
 *
 * Telemetry (pool config telemetry, on the pool's manager thread, as every
 * pool event): the accept stage is receive_valid as before (verdict of
 * the CA / CE / CR); application_ack for each application ACK the
 * listener takes (verdict, latency_us; orphan true and endpoint_id
 * UINT32_MAX, address the peer's, when it matched nothing);
 * application_ack_timeout when the timeout ends a stage (error set;
 * for ER too, with the error's reason 0); late_accept_ack for an answer
 * to an NE / ER message that completed when written (see above). */
#ifndef MLLP_ENHANCED_H
#define MLLP_ENHANCED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/export.h>
#include <mllp/future.h>
#include <mllp/pool.h>
#include <mllp/receiver.h>
#include <mllp/tls.h>

MLLP_BEGIN_DECLS

/* The pool's ack listener. Zero-initialise, then
 * mllp_ack_listen_config_init(). */
struct mllp_ack_listen_config {
	/* Address and port to listen on (as mllp_receiver_config: NULL is
	 * "0.0.0.0"; port 0 ephemeral, read it with mllp_pool_ack_port).
	 * Default port MLLP_PORT_UNSET: MLLP_ERR_INVALID_ARGUMENT. */
	const char *address;
	int32_t port;
	/* Time an application ACK may take after the end of the accept
	 * stage (ms; default 600000; MLLP_INFINITE: no limit; 0 invalid). */
	int64_t application_ack_timeout_ms;
	/* Listener TLS (see mllp/tls.h), or NULL; borrowed during the call
	 * only, as mllp_receiver_config.tls. */
	const struct mllp_tls_server_config *tls;
	/* I/O backend of the listener (default MLLP_BACKEND_AUTO). */
	enum mllp_backend_kind backend;
	/* Clients allowed to connect, as mllp_receiver_config (copied);
	 * NULL / 0: everyone. */
	const char *const *allowed_clients;
	size_t allowed_clients_count;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_ack_listen_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the defaults noted above on caller-owned *cfg (no allocation, no
 * error). Thread-safe for distinct cfg. */
MLLP_API void mllp_ack_listen_config_init(struct mllp_ack_listen_config *cfg);

/* Give the pool its ack listener: a receiver (mllp/receiver.h) bound and
 * listening when the call returns, run by its own thread, whose frames
 * are taken as application ACKs (see above). Messages sent from then on
 * get an application stage when their MSH-16 asks for one. One listener
 * per pool. The pool's log hook and log level serve it too.
 * Lifetime: it runs until mllp_pool_stop(), which stops it first (no
 * application ACK is taken after that; stages still open end with
 * MLLP_ERR_STOPPED), and is freed by mllp_pool_destroy().
 * Returns 0; MLLP_ERR_INVALID_ARGUMENT (NULL pool or cfg, reserved fields
 * not zero, port unset, application_ack_timeout_ms 0 or below other than
 * MLLP_INFINITE, "the pool has an ack listener already", a call from a
 * callback of the pool); MLLP_ERR_STOPPED; the errors of
 * mllp_receiver_create (-EADDRINUSE, ...). err (may be NULL) says why.
 * Thread-safe (one caller wins). */
MLLP_API int mllp_pool_listen_acks(struct mllp_pool *pool,
				   const struct mllp_ack_listen_config *cfg,
				   struct mllp_error *err);

/* The ack listener's bound port, 0 when the pool has none. Thread-safe. */
MLLP_API uint16_t mllp_pool_ack_port(const struct mllp_pool *pool);

/* Counters of the ack listener (a snapshot; each read atomically).
 * Versioning as struct mllp_pool_stats: only ever extended at the end;
 * set size (mllp_ack_listen_stats_init does). */
struct mllp_ack_listen_stats {
	size_t size;	    /* in: sizeof as the caller knows it; out: filled */
	uint64_t received;  /* frames the listener took */
	uint64_t matched;   /* application ACKs credited to a message */
	uint64_t unmatched; /* application ACKs that matched no message */
	uint64_t not_ack;   /* frames without MSA (not an ACK) */
	uint64_t timeouts;  /* application stages ended by the timeout */
	uint64_t accept_acks; /* accept ACKs the listener sent back */
	uint64_t pending;     /* application stages open now */
};

static inline void mllp_ack_listen_stats_init(struct mllp_ack_listen_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
}

/* Fill *out. Returns 0; MLLP_ERR_INVALID_ARGUMENT (NULL, out->size too
 * small); MLLP_ERR_NOT_FOUND when the pool has no ack listener.
 * Thread-safe. */
MLLP_API int mllp_pool_ack_stats(const struct mllp_pool *pool,
				 struct mllp_ack_listen_stats *out);

/* True when f has an application stage (see above). Thread-safe. */
MLLP_API bool mllp_future_has_application(const struct mllp_future *f);

/* Wait for f's application stage as mllp_future_wait() waits for the
 * accept stage (same timeouts, same refusal on the pool's manager
 * thread). Returns 0 when it completed, MLLP_ERR_TIMEOUT, or
 * MLLP_ERR_NOT_FOUND when f has no application stage,
 * MLLP_ERR_INVALID_ARGUMENT for NULL. Any thread. */
MLLP_API int mllp_future_wait_application(struct mllp_future *f,
					  int64_t timeout_ms);

/* The application stage's result once it completed (see above), else
 * NULL (also without application stage). Valid until mllp_future_free().
 * Any thread. */
MLLP_API const struct mllp_result *
mllp_future_application_result(const struct mllp_future *f);

MLLP_END_DECLS

#endif

/* libmllp: the single-client API — the reference's MLLP.Client in C.
 *
 * A client is one connection of a private pool (see pool.h for the
 * semantics and options). mllp_client_create connects right away and
 * returns after the first connect attempt has finished (connected or
 * failed, bounded by connect_timeout_ms), as the reference's start_link
 * does.
 *
 * Lifecycle (as every object of this library with a thread):
 * mllp_client_create creates and starts, mllp_client_stop stops (never
 * frees; idempotent, thread-safe) and mllp_client_destroy frees (stopping
 * first if needed).
 *
 * Threading: every function is thread-safe; concurrent sends are queued
 * and sent one at a time (each caller gets its own reply, never another's).
 * Ownership: the client owns its pool; futures returned are the caller's. */
#ifndef MLLP_CLIENT_H
#define MLLP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/error.h>
#include <mllp/export.h>
#include <mllp/future.h>
#include <mllp/pool.h>

MLLP_BEGIN_DECLS

struct mllp_client;

/* Create a client for address (IPv4/IPv6 literal or host name) and port
 * and start connecting. cfg NULL uses mllp_pool_config_init() defaults.
 * On success the caller owns *out: free it with mllp_client_destroy().
 * Errors (*out NULL): MLLP_ERR_BAD_ADDRESS "Invalid server ip address"
 * (NULL, empty or unresolvable address), MLLP_ERR_IO_URING_UNAVAILABLE,
 * MLLP_ERR_NO_MEMORY, MLLP_ERR_INVALID_ARGUMENT (a bad cfg, e.g. reserved
 * fields not zero). A refused connection is not an error here: the client
 * keeps trying, and sends report the last connect error. */
MLLP_API int mllp_client_create(const char *address, uint16_t port,
				const struct mllp_pool_config *cfg,
				struct mllp_client **out,
				struct mllp_error *err);

/* Send and await the reply. kind as in mllp_send_options; reply_timeout_ms
 * (0: the client's reply_timeout_ms, MLLP_INFINITE allowed). On return
 * 0 or a synchronous error (then *out is NULL, err filled); with 0, *out is
 * a completed future the caller frees: its result holds the verdict/ack or
 * raw reply, or the error (context send/receive/verify). */
MLLP_API int mllp_client_send(struct mllp_client *c, const void *payload,
			      size_t len, enum mllp_payload_kind kind,
			      int64_t reply_timeout_ms,
			      struct mllp_future **out, struct mllp_error *err);

/* Send without waiting for the reply: the future completes when the
 * message is written (or fails); it never hangs. Its reply is consumed
 * and reported to telemetry, never given to another message. */
MLLP_API int mllp_client_send_async(struct mllp_client *c, const void *payload,
				    size_t len, enum mllp_payload_kind kind,
				    struct mllp_future **out,
				    struct mllp_error *err);

/* True while the connection is up (false from the instant it is being
 * closed). */
MLLP_API bool mllp_client_is_connected(const struct mllp_client *c);

/* Really disconnect and connect again (asynchronous). */
MLLP_API int mllp_client_reconnect(struct mllp_client *c);

/* The client's pool, for stats and the generic API (endpoint id 0). */
MLLP_API struct mllp_pool *mllp_client_pool(struct mllp_client *c);

/* Stop the client (as mllp_pool_stop: queued and in-flight messages fail
 * with MLLP_ERR_STOPPED, later sends too) and return after every future
 * has completed; the client is not freed. Idempotent and thread-safe:
 * concurrent calls wait for the same stop. Returns 0, or
 * MLLP_ERR_INVALID_ARGUMENT for NULL or a call from a callback of the
 * client's pool (nothing is stopped). */
MLLP_API int mllp_client_stop(struct mllp_client *c);

/* Stop (if not yet) and free the client. Futures the caller still holds
 * stay valid until freed. NULL is ignored. No other call on c may run
 * concurrently with or after it (futures excepted). */
MLLP_API void mllp_client_destroy(struct mllp_client *c);

MLLP_END_DECLS

#endif

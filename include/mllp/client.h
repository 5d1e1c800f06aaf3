/* libmllp: the single-client API — the reference's MLLP.Client in C.
 *
 * A client is one connection of a private pool (see pool.h for the
 * semantics and options). start connects right away and returns after the
 * first connect attempt has finished (connected or failed, bounded by
 * connect_timeout), as the reference's start_link does.
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

/* Start a client for address (IPv4/IPv6 literal or host name) and port.
 * cfg NULL uses mllp_pool_config_init() defaults. Errors:
 * MLLP_ERR_BAD_ADDRESS "Invalid server ip address" (NULL, empty or
 * unresolvable address), MLLP_ERR_IO_URING_UNAVAILABLE, MLLP_ERR_NO_MEMORY.
 * A refused connection is not an error here: the client keeps trying, and
 * sends report the last connect error. */
MLLP_API int mllp_client_start(const char *address, uint16_t port,
			       const struct mllp_pool_config *cfg,
			       struct mllp_client **out,
			       struct mllp_error *err);

/* Send and await the reply. kind as in mllp_send_options; reply_timeout
 * in ms (0: the client's reply_timeout, MLLP_INFINITE allowed). On return
 * 0 or a synchronous error (then *out is NULL, err filled); with 0, *out is
 * a completed future the caller frees: its result holds the verdict/ack or
 * raw reply, or the error (context send/receive/verify). */
MLLP_API int mllp_client_send(struct mllp_client *c, const void *payload,
			      size_t len, enum mllp_payload_kind kind,
			      int64_t reply_timeout, struct mllp_future **out,
			      struct mllp_error *err);

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

/* Stop and free the client: queued messages fail with MLLP_ERR_STOPPED;
 * returns after every future has completed. NULL is ignored. */
MLLP_API void mllp_client_stop(struct mllp_client *c);

MLLP_END_DECLS

#endif

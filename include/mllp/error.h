/* libmllp: error codes and error records.
 *
 * Codes: 0 is success. Operating-system errors are reported as -errno,
 * exactly as the kernel returns them (e.g. -ECONNREFUSED). Protocol and
 * library errors live in their own negative range, from MLLP_ERR_BASE
 * downwards, far below any errno value. One X-macro table (MLLP_ERR_TABLE)
 * gives the enum, mllp_strerror() and mllp_err_name().
 *
 * An error record (struct mllp_error) carries a context (which phase failed:
 * connect, send, receive, tls, verify), a reason (an error code) and a human
 * message: the equivalent of the reference client's error struct with its
 * `context`, `reason` and `message`.
 *
 * Threading: every function here is pure or works on caller-owned memory;
 * all are thread-safe. */
#ifndef MLLP_ERROR_H
#define MLLP_ERROR_H

#include <stddef.h>

#include <mllp/export.h>

MLLP_BEGIN_DECLS

#define MLLP_ERR_BASE (-10000)

/* X(name, offset below MLLP_ERR_BASE, message) */
#define MLLP_ERR_TABLE(X)                                                      \
	X(INVALID_ARGUMENT, 0, "invalid argument")                             \
	X(NO_MEMORY, 1, "out of memory")                                       \
	X(BUFFER_TOO_SMALL, 2, "output buffer too small")                      \
	X(PARTIAL_WRAP, 3, "cannot wrap a partially wrapped message")          \
	X(BAD_ENVELOPE, 4, "message is not a complete MLLP envelope")          \
	X(FRAME_TOO_BIG, 5, "frame too big")                                   \
	X(INVALID_HEADER, 6,                                                   \
	  "Invalid header received in server acknowledgment")                  \
	X(DATA_AFTER_TRAILER, 7, "Data received after trailer")                \
	X(TIMEOUT, 8, "timed out")                                             \
	X(CLOSED, 9, "connection closed")                                      \
	X(BUSY, 10, "busy with other call")                                    \
	X(WOULD_BLOCK, 11, "queue full, operation would block")                \
	X(NOT_HL7, 12, "message is not HL7 (no MSH segment)")                  \
	X(BAD_MSH, 13, "malformed MSH segment")                                \
	X(NOT_FOUND, 14, "segment or field not present")                       \
	X(UNSOLICITED, 15, "unsolicited data received while idle")             \
	X(STOPPED, 16, "client stopped")                                       \
	X(CANCELED, 17, "operation canceled")                                  \
	X(IO_URING_UNAVAILABLE, 18,                                            \
	  "io_uring is unavailable (disabled by sysctl, blocked by seccomp "   \
	  "or not supported by the kernel)")                                   \
	X(NOT_CONNECTED, 19, "not connected")                                  \
	X(BAD_ADDRESS, 20, "Invalid server ip address")                        \
	X(TLS, 21, "TLS failure")                                              \
	X(BAD_STATE, 22, "operation not allowed in this state")                \
	X(NO_TLS, 23, "built without TLS")                                     \
	X(ENDPOINT_REMOVED, 24, "endpoint removed")                            \
	X(NAK, 25, "negative commit acknowledgement (NAK)")                    \
	X(NOT_ACCEPTED, 26, "the message was not accepted")

enum mllp_err {
	MLLP_OK = 0,
#define MLLP_ERR_ENUM_(name, off, msg) MLLP_ERR_##name = MLLP_ERR_BASE - (off),
	MLLP_ERR_TABLE(MLLP_ERR_ENUM_)
#undef MLLP_ERR_ENUM_
};

/* A human message for any code: 0, an MLLP_ERR_* value or a -errno value.
 * Common socket errors read as the reference writes them ("connection
 * refused", "timed out", "connection closed"). Never NULL; static storage. */
MLLP_API const char *mllp_strerror(int code);

/* The symbolic name of a code: "MLLP_OK", "MLLP_ERR_TIMEOUT",
 * "ECONNREFUSED", or "UNKNOWN" for a value that is none of these. Never
 * NULL; static storage. */
MLLP_API const char *mllp_err_name(int code);

/* Which phase of the exchange failed. */
enum mllp_context {
	MLLP_CTX_NONE = 0,
	MLLP_CTX_CONNECT,
	MLLP_CTX_SEND,
	MLLP_CTX_RECEIVE,
	MLLP_CTX_TLS,
	MLLP_CTX_VERIFY,
};

/* "none", "connect", "send", "receive", "tls", "verify". Never NULL. */
MLLP_API const char *mllp_context_name(enum mllp_context ctx);

#define MLLP_ERROR_MESSAGE_MAX 192

/* An error record. Plain data, owned by whoever holds it; copy freely.
 * reason is an error code as above; message is NUL-terminated, never
 * longer than MLLP_ERROR_MESSAGE_MAX - 1 bytes (truncated, not overflowed). */
struct mllp_error {
	enum mllp_context context;
	int reason;
	char message[MLLP_ERROR_MESSAGE_MAX];
};

/* Fill *err. fmt may be NULL: the message is then mllp_strerror(reason).
 * printf-style; the result is truncated to fit. */
MLLP_API void mllp_error_set(struct mllp_error *err, enum mllp_context ctx,
			     int reason, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Clear *err to "no error" (context none, reason 0, empty message). */
MLLP_API void mllp_error_clear(struct mllp_error *err);

/* Write "context: message (NAME)" into buf (always NUL-terminated when
 * cap > 0). Returns the length the full text needs, as snprintf does. */
MLLP_API int mllp_error_format(const struct mllp_error *err, char *buf,
			       size_t cap);

MLLP_END_DECLS

#endif

/* libmllp: the connection pool — one manager thread, one io_uring ring
 * (or one epoll instance: see enum mllp_backend_kind), many MLLP client
 * connections, any number of producer threads.
 *
 * Shape: a pool owns a manager thread that owns the ring, every socket,
 * every timer and every connection state. Producers call mllp_pool_send()
 * from any thread: the message goes onto a lock-free queue and the manager
 * is woken only when it sleeps. Each endpoint (host + port) has N
 * connections; a message goes to an idle connection of its endpoint, else
 * waits in the endpoint's bounded queue. Per connection, messages are sent
 * one at a time, in FIFO order, each awaiting its reply (MLLP is
 * request/reply). FIFO holds across threads: a message whose
 * mllp_pool_send() returned before another's began (in program order, or
 * ordered by a lock or any other synchronisation between the threads) is
 * taken first, so with one connection per endpoint it is sent first.
 *
 * Connection semantics follow the reference client (Elixir MLLP.Client
 * 0.9.x), with its known defects fixed; the options keep its names.
 *
 * Allocation: through config.allocator, by default jemalloc's mallocx /
 * dallocx in a private arena (the host's malloc is never replaced).
 *
 * Errors: functions return 0 or a negative code (see error.h) and fill an
 * optional struct mllp_error with context and message.
 *
 * Units: every field and parameter that holds a time names its unit with a
 * suffix, the same in every header of the library: _ms milliseconds
 * (connect_timeout_ms), _s seconds (backoff_max_s, keepalive_idle_s), _us
 * microseconds (latency_us). MLLP_INFINITE where a comment allows it.
 *
 * Lifecycle: mllp_pool_create creates and starts, mllp_pool_stop stops
 * (never frees; idempotent), mllp_pool_destroy frees (stopping first if
 * needed); the client and the receiver follow the same vocabulary.
 *
 * Versioning: the config and options structs end with reserved space
 * (MLLP_RESERVED_WORDS, export.h) that their _init zeroes and the library
 * checks: always initialise them with their _init. The stats structs the
 * library fills carry their size (see struct mllp_endpoint_stats).
 *
 * Threading: every function may be called from any thread unless its
 * comment says otherwise; the pool serialises internally. Callbacks
 * (future callbacks, telemetry, log) run on the manager thread, one at a
 * time; from there, only what their comments allow (mllp_pool_send with
 * block false, the status getters, mllp_pool_reconnect, futures'
 * poll/result/cancel/free) — never stop, destroy, remove_endpoint or a
 * wait.
 *
 * Signals: no function of this library is async-signal-safe (they take
 * locks, allocate and may block). To stop a pool from a signal handler,
 * use the self-pipe pattern: before installing the handler, create a
 * pipe (pipe2 with O_CLOEXEC; the write end O_NONBLOCK); the handler only
 * write()s one byte to it (write is async-signal-safe) and saves and
 * restores errno; a thread of the application blocks in read() (or
 * poll()) on the read end, and when the byte arrives it calls
 * mllp_pool_stop() and mllp_pool_destroy() as usual. signalfd, or
 * sigwait in a dedicated thread with the signal blocked elsewhere, are
 * equivalent. */
#ifndef MLLP_POOL_H
#define MLLP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mllp/alloc.h>
#include <mllp/error.h>
#include <mllp/export.h>
#include <mllp/future.h>
#include <mllp/telemetry.h>
#include <mllp/tls.h>

MLLP_BEGIN_DECLS

/* What an ordered lane does when one of its messages fails (transport
 * failure, send, reply or queue timeout, cancel, a verdict other than
 * accept such as AE/AR). See "Ordered lanes" below mllp_send_options. */
enum mllp_lane_policy {
	/* The lane holds at once: the message's future fails, a lane_held
	 * event is emitted, and the key's later messages wait until
	 * mllp_pool_release_key(). */
	MLLP_LANE_HOLD = 0,
	/* The lane sends the message again after the reconnect backoff
	 * delay, up to lane_max_retries times; its future completes with the
	 * outcome of the last attempt only. Then it holds as MLLP_LANE_HOLD.
	 * A canceled message is not retried: the lane holds at once. */
	MLLP_LANE_RETRY,
};

/* Memory one lane takes, an upper bound (its bookkeeping, its key and its
 * share of the endpoint's lane table): max_lanes * MLLP_LANE_BYTES bounds
 * what the lanes of an endpoint cost besides the messages themselves and
 * the copy of a held lane's failed message. */
#define MLLP_LANE_BYTES 256
/* Longest ordering key, in bytes (key_len, or the value key_field
 * extracts). */
#define MLLP_KEY_MAX 128

/* max_inflight (mllp_conn_options): the largest window, the probe
 * (see there) and the window an endpoint pipelines at once the probe has
 * passed. */
#define MLLP_INFLIGHT_MAX	  1024u
#define MLLP_INFLIGHT_AUTO	  UINT32_MAX
#define MLLP_INFLIGHT_AUTO_WINDOW 16u

/* Per-connection behaviour; names (with their unit added) and defaults as
 * in the reference. Zero-initialise, then mllp_conn_options_init().
 * MLLP_INFINITE where noted. */
struct mllp_conn_options {
	/* (Plain data, copied by mllp_pool_add_endpoint and
	 * mllp_pool_create; tls is the one pointer, see there.) */
	bool use_backoff;		     /* true: 1 s, 2 s, 4 s ... */
	uint32_t backoff_max_s;		     /* 180 s */
	uint32_t auto_reconnect_interval_ms; /* 1000 ms, when !use_backoff */
	uint32_t connect_timeout_ms;	     /* 2000 ms */
	int64_t reply_timeout_ms;	     /* 60000 ms, or MLLP_INFINITE */
	int64_t send_timeout_ms;	     /* 60000 ms, or MLLP_INFINITE */
	/* Kept for the reference's name; a timed-out send always closes the
	 * socket (a half-written frame cannot be recovered). */
	bool send_timeout_close;
	bool keepalive;		  /* true (SO_KEEPALIVE) */
	int keepalive_idle_s;	  /* 60 s (TCP_KEEPIDLE) */
	int keepalive_interval_s; /* 10 s (TCP_KEEPINTVL) */
	int keepalive_count;	  /* 6 (TCP_KEEPCNT) */
	bool nodelay;		  /* true (TCP_NODELAY) */
	/* true: after a reply timeout, an invalid reply, data after the
	 * trailer or unsolicited bytes while idle, close abortively (linger
	 * 0) and reconnect. false: keep the socket; late replies are then
	 * correlated by MSA-2 and dropped when they do not match (HL7
	 * payloads only: raw replies carry no id, so with raw payloads keep
	 * the default; a receiver that answers with a wrong MSA-2 then yields
	 * a reply timeout rather than bad_message_control_id). */
	bool close_on_recv_error;
	bool reconnect_on_send_error; /* true */
	/* 0: while no connection of the endpoint is up (or connecting), a
	 * send fails at once with context send and the last connect error
	 * (MLLP_ERR_CLOSED "connection closed (...)" when the link dropped
	 * and no reconnect attempt has failed since), and triggers an
	 * immediate reconnect. > 0: the message waits that
	 * many ms for a connection (MLLP_INFINITE: forever). */
	int64_t queue_timeout_ms;
	/* Pipelining: messages a connection writes without waiting for their
	 * replies. 1 (default; 0 is taken as 1): one at a time, as the
	 * reference. 2..MLLP_INFLIGHT_MAX: up to that many, frames that are
	 * ready together written in one send; each reply is matched to its
	 * message by MSA-2 = MSH-10, in whatever order the replies come. A
	 * message whose control id is already in flight on the connection
	 * waits there until the earlier one completes; the order on the wire
	 * stays the order messages were taken. A reply that matches nothing
	 * in flight, an invalid reply or a reply timeout (with
	 * close_on_recv_error) closes the connection abortively and fails
	 * every message in flight on it (written: may have reached the
	 * receiver); a reply is never credited to another message.
	 * MLLP_INFLIGHT_AUTO: the first connection to come up sends two
	 * messages back to back; only if both replies come back well formed
	 * and matched does the endpoint pipeline (MLLP_INFLIGHT_AUTO_WINDOW),
	 * else it stays at one in flight and logs why once. Opt-in: only for
	 * receivers known to read frames one after another (a receiver that
	 * reads a stream of several frames as one message breaks). Another
	 * value: MLLP_ERR_INVALID_ARGUMENT at mllp_pool_add_endpoint. */
	uint32_t max_inflight;
	/* The receiver answers in the order of the messages (raw payloads
	 * carry no id: they are pipelined only when this is true, else they
	 * go one at a time). Default false. */
	bool replies_in_order;
	/* TLS for the endpoint's connections (see mllp/tls.h), or NULL for
	 * plaintext. Used only when tls->enabled. Borrowed: read during
	 * mllp_pool_add_endpoint() only (the TLS context is built there: every
	 * file is loaded, and a bad path or an unreadable key fails the call
	 * naming the file; not kept afterwards). The handshake runs under its
	 * own connect_timeout_ms after the TCP connect; a failed handshake is a
	 * connect failure with context MLLP_CTX_TLS and reason MLLP_ERR_TLS
	 * (message: unknown CA, host name mismatch, ...), which sends then
	 * report as the last connect error. Never a plaintext fallback.
	 * verify MLLP_TLS_VERIFY_NONE logs one warning per endpoint. With
	 * session_resumption, each connection keeps its session and offers it
	 * when it reconnects. Default NULL. */
	const struct mllp_tls_client_config *tls;
	/* MLLP release: 1 (default; 0 reads as 1) or 2 (reliable delivery:
	 * README "MLLP Release 2"). With 2, the receiver answers each message
	 * with a commit acknowledgement (0x0B 0x06 0x1C 0x0D) or a negative
	 * one (NAK, 0x0B 0x15 0x1C 0x0D); the message is done (its future
	 * completes, status 0, no verdict) when its commit ACK arrives. A NAK,
	 * or no commit answer within the reply timeout, sends the same
	 * message again on the same connection, up to r2_max_retries times;
	 * then the future fails with MLLP_ERR_NAK "negative commit
	 * acknowledgement (NAK) after N attempts" or MLLP_ERR_TIMEOUT "no
	 * commit acknowledgement after N attempts" (context receive). An HL7
	 * ACK that follows the commit ACK is verified against the committed
	 * message and reported through telemetry only (receive_valid,
	 * orphan). One message in flight: with max_inflight other than 1,
	 * MLLP_ERR_INVALID_ARGUMENT "mllp_conn_options: mllp_release 2 allows
	 * one message in flight (max_inflight must be 1)"; another release
	 * value: MLLP_ERR_INVALID_ARGUMENT too (at mllp_pool_add_endpoint, or
	 * mllp_pool_create for cfg.conn). */
	uint32_t mllp_release;
	/* Release 2: resends after a NAK or a commit timeout (default 2). */
	uint32_t r2_max_retries;
	/* Ordered lanes (see "Ordered lanes" below mllp_send_options): what
	 * a lane does when a keyed message fails. Default MLLP_LANE_HOLD;
	 * another value: MLLP_ERR_INVALID_ARGUMENT. */
	enum mllp_lane_policy lane_policy;
	/* MLLP_LANE_RETRY: attempts after the first before the lane holds
	 * (default 5). The delay before each follows use_backoff /
	 * backoff_max_s / auto_reconnect_interval_ms as reconnects do. */
	uint32_t lane_max_retries;
	/* Lanes (distinct keys with a message queued, in flight, waiting or
	 * held) at most per endpoint (default 65536; 0 reads as the
	 * default). A message of a new key beyond it fails (its future) with
	 * MLLP_ERR_WOULD_BLOCK "too many ordering keys in use (max_lanes N);
	 * the message was not sent". Each lane takes at most MLLP_LANE_BYTES
	 * of memory; a lane with nothing left to order is freed. */
	uint32_t max_lanes;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_conn_options_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the defaults noted above on caller-owned *o (no allocation, no
 * error). Thread-safe for distinct o. */
MLLP_API void mllp_conn_options_init(struct mllp_conn_options *o);

/* Which I/O backend a pool (or receiver) uses. */
enum mllp_backend_kind {
	/* io_uring; when it cannot be set up (io_uring_setup refused with
	 * EPERM/ENOSYS/EACCES: kernel.io_uring_disabled, a container's
	 * seccomp profile, an old kernel), epoll, with one warning through
	 * the log hook naming the reason. */
	MLLP_BACKEND_AUTO = 0,
	/* io_uring only: MLLP_ERR_IO_URING_UNAVAILABLE when unavailable. */
	MLLP_BACKEND_IO_URING,
	/* epoll (readiness, non-blocking sockets): works everywhere. */
	MLLP_BACKEND_EPOLL,
};

struct mllp_pool_config {
	/* Default options of endpoints added without their own. */
	struct mllp_conn_options conn;
	/* NULL: jemalloc mallocx/dallocx in a private arena. Copied. */
	const struct mllp_allocator *allocator;
	/* Largest reply payload accepted (default MLLP_DEFAULT_MAX_FRAME). */
	size_t max_reply;
	/* Messages waiting for a connection per endpoint (default 65536). */
	uint32_t queue_capacity;
	/* Ring size (default 1024 SQEs) and receive buffers (default 256
	 * buffers of 16 KiB, shared by all connections). */
	uint32_t ring_entries;
	uint32_t recv_buffers;
	uint32_t recv_buffer_size;
	/* Telemetry: called on the manager thread; NULL for none.
	 * telemetry_ctx is passed back as is, never freed by the pool: it
	 * must stay valid until mllp_pool_stop() (or _destroy()) has
	 * returned. */
	mllp_telemetry_fn telemetry;
	void *telemetry_ctx;
	/* Log hook; NULL logs to stderr ("Error connecting to host:port =>
	 * msg", with the address tried after host:port when the host is
	 * written otherwise, e.g. "localhost:2575 ([::1]:2575)"). Lines
	 * above log_level (default MLLP_LOG_ERROR) are dropped.
	 * Runs on the manager thread, or on the caller's thread of
	 * mllp_pool_create / mllp_pool_add_endpoint for lines they log.
	 * log_ctx, like telemetry_ctx, must stay valid until
	 * mllp_pool_stop() (or _destroy()) has returned. */
	mllp_log_fn log;
	void *log_ctx;
	enum mllp_log_level log_level;
	/* I/O backend (default MLLP_BACKEND_AUTO). The auto fallback's
	 * warning is logged at MLLP_LOG_WARNING whatever log_level: it
	 * changes the pool's performance profile. */
	enum mllp_backend_kind backend;
	/* Test hooks, not for production: when test_ring_error is a negative
	 * errno, ring setup behaves as if io_uring_queue_init returned it
	 * (with backend auto, the pool then falls back to epoll).
	 * backoff_divisor (default 1) divides every reconnect delay. */
	int test_ring_error;
	uint32_t backoff_divisor;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_pool_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the defaults noted above on caller-owned *cfg (no allocation, no
 * error). Thread-safe for distinct cfg. */
MLLP_API void mllp_pool_config_init(struct mllp_pool_config *cfg);

struct mllp_pool;

/* Size of a host name buffer, NUL included: mllp_pool_add_endpoint takes
 * a host of up to MLLP_HOST_MAX - 1 bytes. */
#define MLLP_HOST_MAX 256

/* Create a pool and its manager thread; the ring is created on that
 * thread and its setup result reported here. cfg is copied (NULL: the
 * defaults); of what it points to, only the callbacks' contexts are kept
 * (see telemetry_ctx). On success the caller owns *out: free it with
 * mllp_pool_destroy(). Errors: MLLP_ERR_NO_MEMORY,
 * MLLP_ERR_INVALID_ARGUMENT (e.g. "mllp_pool_config: reserved fields must
 * be zero (initialise with mllp_pool_config_init)"),
 * MLLP_ERR_IO_URING_UNAVAILABLE (backend
 * MLLP_BACKEND_IO_URING and io_uring disabled, blocked or unsupported;
 * err->message says so), -errno.
 * On error *out is NULL. err may be NULL. Thread-safe. */
MLLP_API int mllp_pool_create(const struct mllp_pool_config *cfg,
			      struct mllp_pool **out, struct mllp_error *err);

/* Add an endpoint with `connections` connections (>= 1) and start
 * connecting them at once. host is an IPv4/IPv6 literal or a host name:
 * it is resolved here, on the caller's thread, with getaddrinfo (the
 * manager never blocks on DNS); every resolved address is tried in turn.
 * host is copied (up to MLLP_HOST_MAX - 1 bytes): the caller may free it
 * on return.
 * opts NULL uses cfg.conn; opts is copied (its tls: see there).
 * *endpoint_id receives the endpoint's id: the lowest free id, from 0; an
 * id freed by mllp_pool_remove_endpoint() is given out again (as file
 * descriptors are), so an id must not be used after its removal.
 * Errors: MLLP_ERR_BAD_ADDRESS ("Invalid server ip address" for an empty
 * host; "cannot resolve 'HOST': REASON", the resolver's reason, when the
 * host does not resolve), MLLP_ERR_STOPPED, MLLP_ERR_NO_MEMORY,
 * MLLP_ERR_INVALID_ARGUMENT (also for opts with reserved fields not
 * zero); with opts->tls enabled, the errors of
 * mllp_tls_ctx_new_client() (MLLP_ERR_NO_TLS in a build without TLS).
 * Thread-safe (serialised internally); may block on DNS. Up to 1024
 * endpoints at a time (one more: MLLP_ERR_INVALID_ARGUMENT). */
MLLP_API int mllp_pool_add_endpoint(struct mllp_pool *pool, const char *host,
				    uint16_t port, uint32_t connections,
				    const struct mllp_conn_options *opts,
				    uint32_t *endpoint_id,
				    struct mllp_error *err);

enum mllp_payload_kind {
	MLLP_PAYLOAD_AUTO = 0, /* HL7 when it parses as HL7, raw otherwise */
	MLLP_PAYLOAD_HL7,      /* must parse (MLLP_ERR_NOT_HL7/BAD_MSH) */
	MLLP_PAYLOAD_RAW,      /* reply returned unwrapped, not verified */
};

/* Per-send options. Zero-initialise, then mllp_send_options_init(). */
struct mllp_send_options {
	enum mllp_payload_kind kind;
	/* Reply timeout for this message: 0 uses the connection's
	 * reply_timeout_ms; MLLP_INFINITE waits forever. */
	int64_t reply_timeout_ms;
	/* send_async: the future completes when the message is written; the
	 * reply is still awaited and consumed, and reported to telemetry. */
	bool async;
	/* When the endpoint queue is full: false → MLLP_ERR_WOULD_BLOCK at
	 * once; true → wait up to block_timeout_ms (MLLP_INFINITE allowed)
	 * for room, then MLLP_ERR_WOULD_BLOCK. */
	bool block;
	int64_t block_timeout_ms;
	/* false (default): the payload is copied into the future. true: the
	 * payload is borrowed and must stay valid and unchanged until the
	 * future completes and, after a cancel, until mllp_pool_stop(). */
	bool borrow_payload;
	/* Completion callback (manager thread), or NULL. callback_arg is
	 * passed back as is: it must stay valid until the callback has run
	 * (every future completes by the time mllp_pool_stop() returns). */
	mllp_future_cb callback;
	void *callback_arg;
	/* MLLP_NOTIFY_FD: once complete, the future is also delivered to
	 * mllp_pool_harvest() (see "Completion fd" in future.h). Default
	 * MLLP_NOTIFY_NONE; another value: MLLP_ERR_INVALID_ARGUMENT. */
	enum mllp_notify notify;
	/* Ordering key (see "Ordered lanes" below): key_len bytes at key,
	 * copied by mllp_pool_send (1 to MLLP_KEY_MAX bytes). Or key_field:
	 * the HL7 field whose value is the key, "SEG-F", "SEG-F.C" or
	 * "SEG-F.C.S" (e.g. "PID-3", "PID-3.1", "MSH-4"; first segment of
	 * that id, first repetition), read from the message by
	 * mllp_pool_send. Not both (MLLP_ERR_INVALID_ARGUMENT, as for a bad
	 * key_field or a key too long). A message without that field, or with
	 * it empty, is refused and nothing is sent: MLLP_ERR_NOT_FOUND "key
	 * field PID-3 is missing or empty" — sending it unordered could let
	 * it overtake its key's earlier messages. Default none (NULL, 0,
	 * NULL). A keyed message cannot be async (MLLP_ERR_INVALID_ARGUMENT):
	 * its lane waits for its reply. */
	const void *key;
	size_t key_len;
	const char *key_field;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_send_options_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the defaults noted above on caller-owned *o (no allocation, no
 * error). Thread-safe for distinct o. */
MLLP_API void mllp_send_options_init(struct mllp_send_options *o);

/* Send payload[0..len) to an endpoint, framed (an already framed payload
 * is sent as is). opts NULL uses the defaults. On success *out receives a
 * future the caller must free. On error nothing is sent, *out is NULL and
 * no future or callback will ever run. The payload is copied before the
 * call returns unless opts->borrow_payload. Errors: MLLP_ERR_WOULD_BLOCK
 * (queue full), MLLP_ERR_STOPPED, MLLP_ERR_ENDPOINT_REMOVED (the endpoint
 * was removed, or is removed while the call waits for queue room),
 * MLLP_ERR_INVALID_ARGUMENT "no such endpoint" (an id never added),
 * MLLP_ERR_NOT_HL7 / MLLP_ERR_BAD_MSH
 * (kind HL7), MLLP_ERR_PARTIAL_WRAP, MLLP_ERR_NO_MEMORY,
 * MLLP_ERR_INVALID_ARGUMENT, or, with queue_timeout_ms 0 while every
 * connection of the endpoint is down, the last connect error (context
 * send; e.g. -ECONNREFUSED "connection refused", or MLLP_ERR_CLOSED right
 * after the link dropped) — an immediate reconnect
 * is then triggered. Thread-safe, lock-free unless blocking on a full
 * queue. Allowed from a future callback (manager thread) only with block
 * false (or block_timeout_ms 0): a blocking send there is refused with
 * MLLP_ERR_INVALID_ARGUMENT, whether the queue has room or not. Sends
 * from callbacks keep the FIFO order above with sends from other
 * threads. */
MLLP_API int mllp_pool_send(struct mllp_pool *pool, uint32_t endpoint_id,
			    const void *payload, size_t len,
			    const struct mllp_send_options *opts,
			    struct mllp_future **out, struct mllp_error *err);

/* Ordered lanes. Messages sent to one endpoint with the same key (key or
 * key_field of mllp_send_options) form a lane: they are sent one at a
 * time, in the order their mllp_pool_send() calls took effect (the FIFO
 * order above); the next is sent only after the previous one's future
 * completed with an accept (AA/CA; status 0 for raw payloads or with
 * mllp_release 2). Messages of different keys, and unkeyed messages, run
 * in parallel over all the endpoint's connections; a key is bound to no
 * connection, so order holds across reconnects. A message waiting behind
 * its key's earlier one ("waiting") keeps its queue slot but no queue
 * timeout runs for it: queue_timeout_ms counts from when it is its lane's
 * turn.
 *
 * When a keyed message fails (see enum mllp_lane_policy) the lane holds:
 * its later messages wait, a lane_held telemetry event is emitted (error:
 * the failure) and, once any retries are spent, the future reports the
 * failure. mllp_pool_release_key() resumes the lane. A held lane keeps a
 * copy of the failed message until then. mllp_pool_stop() and
 * mllp_pool_remove_endpoint() fail every waiting message (never written)
 * with MLLP_ERR_STOPPED / MLLP_ERR_ENDPOINT_REMOVED; cancel fails a
 * waiting message (MLLP_ERR_CANCELED) and its lane goes on with the next.
 *
 * Cost: an unkeyed message pays one branch; a keyed one a hash of its key
 * (producer thread) and one lookup in the endpoint's lane table (manager
 * thread). Lanes are counted in struct mllp_endpoint_stats and struct
 * mllp_pool_stats (lanes_active, lanes_held, lane_waiting,
 * lane_held_waiting). */

/* How mllp_pool_release_key() resumes a held lane. */
enum mllp_lane_release {
	/* Send the failed message again, first of its lane; a new future for
	 * it goes to *retry (same payload and reply timeout; no callback, no
	 * notify). */
	MLLP_RELEASE_RETRY = 0,
	/* Drop the failed message (it stays failed) and go on with the
	 * lane's next message. */
	MLLP_RELEASE_SKIP,
};

/* Resume the held lane of key[0..key_len) on the endpoint (for a
 * key_field lane, the field's value). With MLLP_RELEASE_RETRY, *retry
 * receives the new future of the failed message, which the caller must
 * free (retry may be NULL for MLLP_RELEASE_SKIP; *retry is NULL on error
 * and after a skip). Returns 0; MLLP_ERR_NOT_FOUND "no held lane for this
 * key" (no such lane, or it is not held: e.g. still retrying);
 * MLLP_ERR_INVALID_ARGUMENT (NULL pool, key NULL, key_len 0 or above
 * MLLP_KEY_MAX, retry NULL with MLLP_RELEASE_RETRY, an unknown action, an
 * id never added); MLLP_ERR_ENDPOINT_REMOVED; MLLP_ERR_STOPPED;
 * MLLP_ERR_NO_MEMORY. Thread-safe; also from a callback (on the manager
 * thread it acts at once, elsewhere it waits for the manager's answer). */
MLLP_API int mllp_pool_release_key(struct mllp_pool *pool, uint32_t endpoint_id,
				   const void *key, size_t key_len,
				   enum mllp_lane_release action,
				   struct mllp_future **retry,
				   struct mllp_error *err);

/* True when connection `conn` of the endpoint is connected and not being
 * closed, as the manager last published it (accurate at all times: a
 * connection being closed after an error reads false at once, before the
 * callback of its message in flight runs). False for an unknown or
 * removed endpoint, a conn out of range, or after stop. Thread-safe and
 * lock-free, any thread including callbacks; a snapshot that may change
 * right after it is read. */
MLLP_API bool mllp_pool_is_connected(const struct mllp_pool *pool,
				     uint32_t endpoint_id, uint32_t conn);

/* Number of connections of the endpoint that are up (0 for an unknown or
 * removed endpoint). Thread-safe and lock-free, any thread including
 * callbacks. A snapshot: it is updated right after each connection's
 * is_connected flag, so for an instant it may differ from the number of
 * connections that read true. */
MLLP_API uint32_t mllp_pool_connected_count(const struct mllp_pool *pool,
					    uint32_t endpoint_id);

/* Disconnect every connection of the endpoint (failing its message in
 * flight with MLLP_ERR_CLOSED) and connect again now, resetting backoff.
 * Asynchronous: returns once the request is queued; requests made while
 * one is pending are merged into it, and a request made while the manager
 * carries one out causes one more reconnect (never lost). Thread-safe,
 * lock-free, also from a callback. Returns 0, MLLP_ERR_STOPPED,
 * MLLP_ERR_ENDPOINT_REMOVED or MLLP_ERR_INVALID_ARGUMENT (unknown id). */
MLLP_API int mllp_pool_reconnect(struct mllp_pool *pool, uint32_t endpoint_id);

/* Remove an endpoint: refuse new sends to it (MLLP_ERR_ENDPOINT_REMOVED,
 * also for producers blocked waiting for queue room), fail every message
 * queued for it and every message in flight on its connections with
 * MLLP_ERR_ENDPOINT_REMOVED (context send): the message text says
 * "endpoint removed; the message was not sent" (result.written and
 * may_have_reached false) or "endpoint removed; the message may have
 * reached the receiver" (bytes were written: may_have_reached true).
 * Each future completes exactly once; a future already completed (e.g.
 * send_async) is not changed. Then close its connections (no reconnect,
 * no telemetry event) and free the endpoint; its id may be given to a
 * later mllp_pool_add_endpoint().
 *
 * Blocks until done: returns after every future of the endpoint has
 * completed (callbacks run) and every socket of it is closed. Sends to the
 * id racing with the removal from other threads either get their future
 * (then failed as above, or completed normally if it finished first) or
 * fail with MLLP_ERR_ENDPOINT_REMOVED; never a crash or a hang.
 *
 * Returns 0; MLLP_ERR_ENDPOINT_REMOVED when the id is already removed (or
 * being removed by another thread); MLLP_ERR_INVALID_ARGUMENT for an id
 * never added, a NULL pool, or a call from the manager thread (a future
 * callback, telemetry or log hook: it would wait for itself);
 * MLLP_ERR_STOPPED when the pool is stopping or stopped (its futures end
 * with MLLP_ERR_STOPPED; the call waits for the stop to finish and still
 * frees the id). Thread-safe; not concurrently with mllp_pool_destroy. */
MLLP_API int mllp_pool_remove_endpoint(struct mllp_pool *pool,
				       uint32_t endpoint_id);

/* Counters of one endpoint: what mllp_pool_get_stats counts for the pool,
 * for this endpoint alone (from its add until now), plus its state. A
 * snapshot: each counter is read atomically, the set not.
 *
 * Versioning: fields are only ever added at the end. The caller sets
 * `size` to the size of the struct it was compiled with
 * (mllp_endpoint_stats_init does); the library fills that many bytes at
 * most (fewer when it is older and its struct smaller) and sets `size` to
 * the number of bytes filled. So binaries built against this header keep
 * working with later versions of the library, and the reverse. */
struct mllp_endpoint_stats {
	size_t size; /* in: sizeof as the caller knows it; out: filled */
	char host[MLLP_HOST_MAX]; /* as given to add_endpoint */
	uint16_t port;
	uint32_t connections; /* configured */
	uint32_t connected;   /* up now (mllp_pool_connected_count) */
	/* The counters of struct mllp_pool_stats (telemetry.h), same names
	 * and meaning, for this endpoint alone. */
	uint64_t queued;
	uint64_t in_flight;
	uint64_t sent;
	uint64_t acked[MLLP_VERDICT_COUNT];
	uint64_t raw_replies;
	uint64_t errors;
	uint64_t errors_os;
	uint64_t errors_mllp[MLLP_STATS_MLLP_ERRORS];
	uint64_t connects;
	uint64_t reconnects;
	uint64_t connect_failures;
	uint64_t tls_handshakes;
	uint64_t tls_resumed;
	/* The last error the endpoint saw: a failed message, a failed
	 * connect attempt or a dropped connection, whichever came last;
	 * reason 0 and an empty message when none yet. */
	struct mllp_error last_error;
	uint64_t stale_replies; /* as in struct mllp_pool_stats */
	/* Ordered lanes, as in struct mllp_pool_stats. */
	uint64_t lanes_active;
	uint64_t lanes_held;
	uint64_t lane_waiting;
	uint64_t lane_held_waiting;
	uint64_t late_accept_acks; /* as in struct mllp_pool_stats */
};

/* Zero *s and set s->size to this header's sizeof (inline on purpose: the
 * size is the caller's). Caller-owned memory; thread-safe for distinct s. */
static inline void mllp_endpoint_stats_init(struct mllp_endpoint_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
}

/* Fill *out (see struct mllp_endpoint_stats: out->size must be set) for
 * the endpoint. Returns 0; MLLP_ERR_INVALID_ARGUMENT for out NULL or
 * out->size < sizeof(size_t), a NULL pool or an id never added;
 * MLLP_ERR_ENDPOINT_REMOVED for a removed id (*out unchanged on error).
 * Thread-safe, any thread including callbacks; never blocks for long (one
 * uncontended mutex for last_error). */
MLLP_API int mllp_pool_get_endpoint_stats(const struct mllp_pool *pool,
					  uint32_t endpoint_id,
					  struct mllp_endpoint_stats *out);

/* Snapshot of the pool's counters (every endpoint, removed ones included)
 * into caller-owned *out (see struct mllp_pool_stats, telemetry.h:
 * out->size must be set, e.g. by mllp_pool_stats_init). Returns 0;
 * MLLP_ERR_INVALID_ARGUMENT for a NULL pool, out NULL or out->size <
 * sizeof(size_t) (*out unchanged then). Thread-safe, any thread including
 * callbacks. */
MLLP_API int mllp_pool_get_stats(const struct mllp_pool *pool,
				 struct mllp_pool_stats *out);

/* Which I/O backend runs: "io_uring" or "epoll" (after an auto
 * fallback: "epoll"); "none" for NULL. Static storage. Thread-safe. */
MLLP_API const char *mllp_pool_backend(const struct mllp_pool *pool);

/* Stop: refuse new sends (MLLP_ERR_STOPPED), fail every queued message
 * with MLLP_ERR_STOPPED (never written) and every message in flight with
 * MLLP_ERR_STOPPED (may have reached the receiver), close every socket,
 * and return after every future has completed and the manager thread has
 * exited. Idempotent; concurrent calls wait for the same stop. After it
 * returns no callback runs any more: the callbacks' contexts may be freed.
 * Returns 0, or MLLP_ERR_INVALID_ARGUMENT for NULL or a call from the
 * manager thread (a future callback, telemetry or log hook: it would wait
 * for itself; nothing is stopped).
 * The pool also stops by itself if its backend's wait fails for good
 * (e.g. the ring's descriptor is gone): one error line is logged and every
 * queued and in-flight message fails with that error (message "the pool
 * stopped: backend ... wait failed: ..."); later sends get
 * MLLP_ERR_STOPPED; mllp_pool_stop() is still called as usual.
 * Safe while other threads are inside mllp_pool_send() or
 * mllp_future_wait() (but not mllp_pool_destroy()): a send racing the stop
 * either fails at once with no future (MLLP_ERR_STOPPED; a send blocked
 * on a full queue is woken for it; or an error it would have had anyway,
 * such as the last connect error with queue_timeout_ms 0), or returns a
 * future that is complete by the time the stop returns (MLLP_ERR_STOPPED
 * unless it was answered first); a wait returns 0 once its future is
 * complete, at the latest when the stop returns (MLLP_ERR_TIMEOUT only if
 * its own timeout passes first). */
MLLP_API int mllp_pool_stop(struct mllp_pool *pool);

/* Stop (if not yet) and free the pool. Futures the caller still holds stay
 * valid until freed. NULL is ignored. From the manager thread (a
 * callback, telemetry or log hook) the call is refused: nothing is freed
 * and an error line is logged. No other call on the pool may run
 * concurrently with or after it (futures excepted). */
MLLP_API void mllp_pool_destroy(struct mllp_pool *pool);

MLLP_END_DECLS

#endif

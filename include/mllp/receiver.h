/* libmllp: the MLLP receiver — a server that accepts MLLP connections,
 * hands every frame to a dispatcher and sends its reply back.
 *
 * Shape: a receiver owns one manager thread, one I/O backend instance (an
 * io_uring ring), one listening socket and every accepted connection. The
 * listener accepts continuously (multishot accept); each connection has a
 * streaming decoder, an ordered reply queue and one send in flight at most
 * (replies queued meanwhile are coalesced into the next send).
 *
 * Semantics follow the reference (Elixir MLLP.Receiver 0.9.x) with its
 * defects fixed: every frame gets its own reply, in order, also when several
 * frames arrive in one packet; bytes outside frames are discarded and
 * logged with their count ("discarding unexpected data"), never merged into
 * a frame; a CR/LF right after a frame (netcat) is dropped quietly; frames,
 * connections, idle time and buffers are bounded.
 *
 * Lifecycle (as every object of this library with a thread):
 * mllp_receiver_create binds, listens and starts; mllp_receiver_stop
 * stops (never frees; idempotent); mllp_receiver_destroy frees (stopping
 * first if needed).
 *
 * Threading: mllp_receiver_create/stop/destroy from any thread (not from a
 * callback of the same receiver). The dispatcher, telemetry and log
 * callbacks run on the receiver's manager thread, one at a time; they must
 * not block (a blocking dispatcher stalls every connection of the
 * receiver). Stats and port getters are thread-safe.
 *
 * Contexts: the pointers the config hands back to callbacks
 * (dispatch_ctx, telemetry_ctx, log_ctx) are never copied, freed or
 * touched by the receiver except to pass them on: each must stay valid
 * until mllp_receiver_stop() (or mllp_receiver_destroy()) has returned;
 * after that no callback runs.
 *
 * Allocation: through config.allocator, by default jemalloc's mallocx in a
 * private arena (as the pool). Errors: 0 or a negative code (error.h);
 * mllp_receiver_create fills an optional struct mllp_error with a human
 * message. The *_name() functions are pure and thread-safe. Runs on
 * either I/O backend (io_uring, or epoll where io_uring is refused:
 * config.backend). */
#ifndef MLLP_RECEIVER_H
#define MLLP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/alloc.h>
#include <mllp/error.h>
#include <mllp/export.h>
#include <mllp/pool.h>
#include <mllp/telemetry.h>
#include <mllp/tls.h>

MLLP_BEGIN_DECLS

/* Value of mllp_receiver_config.port meaning "not set" (create fails with
 * "No tcp port provided"). Port 0 asks for an ephemeral port. */
#define MLLP_PORT_UNSET (-1)

/* Defaults (see mllp_receiver_config_init). */
#define MLLP_RECEIVER_DEFAULT_MAX_FRAME	      ((size_t)16 * 1024 * 1024)
#define MLLP_RECEIVER_DEFAULT_MAX_CONNECTIONS 20000u
#define MLLP_RECEIVER_DEFAULT_IDLE_TIMEOUT_MS 300000u
#define MLLP_RECEIVER_DEFAULT_MAX_BUFFERED    ((size_t)256 * 1024 * 1024)
#define MLLP_RECEIVER_DEFAULT_REPLY_PAUSE     ((size_t)256 * 1024)

/* Log limits of a receiver (a peer must not control the log's volume):
 * every line passes a token bucket of MLLP_RECEIVER_LOG_BURST lines refilled
 * at MLLP_RECEIVER_LOG_RATE lines per second; bytes outside frames are logged
 * at most MLLP_RECEIVER_LOG_CONN_BURST times per connection per
 * MLLP_RECEIVER_LOG_WINDOW_MS, then summarised once per window ("discarding
 * unexpected data: N more junk chunks (B bytes) from PEER in the last S
 * s") and once more when the connection closes. The first line written
 * after lines were left out ends with " (N earlier lines not logged)". */
#define MLLP_RECEIVER_LOG_BURST	     64u
#define MLLP_RECEIVER_LOG_RATE	     10u
#define MLLP_RECEIVER_LOG_CONN_BURST 4u
#define MLLP_RECEIVER_LOG_WINDOW_MS  10000u

/* What a frame holds: HL7 when its payload starts with "MSH" (the
 * reference's mllp_hl7), anything else unknown (mllp_unknown). */
enum mllp_msg_kind {
	MLLP_MSG_HL7 = 0,
	MLLP_MSG_UNKNOWN,
};

/* "mllp_hl7" or "mllp_unknown". Never NULL. */
MLLP_API const char *mllp_msg_kind_name(enum mllp_msg_kind kind);

/* Sizes of the text fields of struct mllp_conn_info, NUL included: a
 * numeric IPv6 address (INET6_ADDRSTRLEN is 46), and a certificate name
 * (a DNS name is at most 253 bytes). */
#define MLLP_ADDRESS_MAX       48
#define MLLP_TLS_PEER_NAME_MAX 256

/* The connection a message came on. Owned by the receiver; valid during
 * the callback it is given to (the same pointer for the whole life of the
 * connection). Addresses are numeric, NUL-terminated (IPv4-mapped IPv6
 * peers are shown as IPv4). */
struct mllp_conn_info {
	uint64_t id; /* unique per receiver, from 1 */
	char peer_address[MLLP_ADDRESS_MAX];
	uint16_t peer_port;
	char local_address[MLLP_ADDRESS_MAX];
	uint16_t local_port;
	/* TLS only, once the handshake is done: the client certificate's
	 * name that matched allowed_clients (as configured), else its first
	 * SAN DNS name or its CN; empty without TLS or without a client
	 * certificate. */
	char tls_peer_name[MLLP_TLS_PEER_NAME_MAX];
};

/* One received message, handed to the dispatcher. data/len view the
 * payload (without SB/EB/CR); valid only during the callback. For HL7,
 * mllp_hl7_parse(&h, data, len) gives the MSH fields as views, among them
 * h.accept_ack_type (MSH-15) and h.app_ack_type (MSH-16): both empty is
 * original acknowledgement mode, otherwise enhanced mode
 * (mllp_hl7_is_enhanced_mode), where MSH-15 says whether an accept ACK
 * (CA/CE/CR) is wanted: AL always, ER on error or reject only, SU on
 * success only, NE never. */
struct mllp_message {
	const unsigned char *data;
	size_t len;
	enum mllp_msg_kind kind;
	const struct mllp_conn_info *conn;
};

enum mllp_reply_kind {
	MLLP_REPLY_NONE = 0, /* no reply for this frame */
	MLLP_REPLY_BYTES,    /* send data/len (framed by the library unless
			      * it already is a complete frame) */
	MLLP_REPLY_ACK,	     /* the library builds an ACK of the message with
			      * mllp_ack_build(): ack_code, ack_text */
	/* Refuse the frame (not stored): with mllp_release 2 it is answered
	 * with a NAK block (0x0B 0x15 0x1C 0x0D) and the sender sends it
	 * again; with release 1 it gets no reply. */
	MLLP_REPLY_NAK,
};

/* The dispatcher's answer. The receiver zero-fills it (kind NONE, delay 0)
 * before each call. Pointers need to stay valid only until the dispatcher
 * returns: the library copies what it sends. */
struct mllp_reply {
	enum mllp_reply_kind kind;
	const void *data; /* BYTES */
	size_t len;
	const char *ack_code; /* ACK: AA AE AR CA CE CR; NULL means AA */
	const char *ack_text; /* ACK: MSA-3, may be NULL */
	/* Hold the reply this long (ms) before sending it, on the manager's
	 * timer (the manager never blocks). Replies still go out in frame
	 * order: a reply waits for the ones before it. */
	uint32_t delay_ms;
	/* Private: set by the receiver for mllp_reply_defer(); NULL in a
	 * reply the caller made itself. */
	void *deferral_;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zero-filled by the
	 * receiver; a dispatcher must leave it zero (else the frame gets no
	 * reply and an error line is logged). */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* A dispatcher: called on the manager thread once per frame, in arrival
 * order; ctx is mllp_receiver_config.dispatch_ctx. Must not block. */
typedef void (*mllp_dispatch_fn)(void *ctx, const struct mllp_message *msg,
				 struct mllp_reply *reply);

/* ---- deferred replies ----------------------------------------------------
 *
 * A dispatcher may answer later, from any thread (e.g. after its own
 * durable commit): it calls mllp_reply_defer() and returns; the reply is
 * given later with mllp_receiver_reply(). Replies still leave in the order
 * the frames arrived on their connection: a reply completed early waits
 * for the earlier ones (each frame holds a slot in the connection's FIFO,
 * sent once every earlier slot is). A synchronous reply behind a pending
 * deferred one waits too.
 *
 * Backpressure: a connection with mllp_receiver_config.max_pending_replies
 * deferred replies not yet sent stops being read (frames already received
 * wait undecoded) until replies go out; memory stays bounded.
 *
 * Handle lifetime: a handle is valid from mllp_reply_defer() until it is
 * passed to mllp_receiver_reply(), which always consumes it (also when it
 * returns an error); it is never freed otherwise, also not when its
 * connection closes or the receiver stops: the owner must reply to every
 * handle exactly once. Its connection may close meanwhile (peer, error,
 * idle timeout, deferred_timeout_ms, mllp_receiver_stop() after its
 * drain): the reply then returns MLLP_ERR_CLOSED and is counted in
 * replies_after_close; the owner learns it at once through
 * mllp_receiver_config.reply_abandoned (mllp_reply_abandoned_fn). A
 * connection with deferred replies pending is not idle (idle_timeout_ms
 * does not close it; deferred_timeout_ms bounds the wait), and after the
 * peer's end of file it stays open until they are sent, as for any
 * reply. mllp_receiver_stop() waits for them up to stop_drain_ms.
 * mllp_receiver_destroy() with handles outstanding: the receiver stops
 * (as mllp_receiver_stop); its memory (and the allocator's use) ends
 * when the last outstanding handle is replied to
 * (each such reply returns MLLP_ERR_CLOSED), so the allocator must stay
 * valid until then and be thread-safe (mllp_receiver_reply allocates a
 * reply above 256 bytes, and may free, on the calling thread). */

/* Default of mllp_receiver_config.max_pending_replies. */
#define MLLP_RECEIVER_DEFAULT_MAX_PENDING 64u
/* Default of mllp_receiver_config.stop_drain_ms. */
#define MLLP_RECEIVER_DEFAULT_STOP_DRAIN_MS 1000u

struct mllp_reply_handle;

/* From a dispatcher, on the reply it was given: answer this frame later.
 * Returns the handle, or NULL (nothing deferred: the reply is taken as
 * usual) when reply was not given by a receiver's dispatch call, when this
 * frame was already deferred, or when out of memory. The rest of *reply is
 * ignored once deferred. Manager thread (inside the dispatcher) only. */
MLLP_API struct mllp_reply_handle *mllp_reply_defer(struct mllp_reply *reply);

/* Complete a deferred reply, from any thread (the dispatcher's own call
 * included). data/len are copied before the call returns; they are sent
 * as MLLP_REPLY_BYTES are (framed by the library unless already a
 * complete frame). data NULL and len 0: this frame gets no reply (later
 * ones go on). Consumes h in every case. Returns:
 *   0: handed to the connection (it is written once the earlier replies
 *     are; a connection that closes before that drops it, as any reply);
 *   MLLP_ERR_CLOSED: the connection had closed (or the receiver stopped);
 *   MLLP_ERR_INVALID_ARGUMENT: h NULL, or data NULL with len > 0;
 *   MLLP_ERR_PARTIAL_WRAP: data is a partly framed payload;
 *   MLLP_ERR_NO_MEMORY.
 * On an error other than CLOSED the frame gets no reply (with
 * mllp_release 2: the commit ACK alone). Not concurrent with another call
 * on the same h.
 * With mllp_release 2 this call says the message is stored: the frame is
 * answered with the commit ACK block, then the reply (if any) as a frame
 * of its own. */
MLLP_API int mllp_receiver_reply(struct mllp_reply_handle *h, const void *data,
				 size_t len);

/* One reply of mllp_receiver_reply_batch(). */
struct mllp_reply_item {
	struct mllp_reply_handle *handle; /* consumed, as by the call below */
	const void *data;		  /* as mllp_receiver_reply() */
	size_t len;
	int result; /* out: what mllp_receiver_reply() would return */
};

/* Complete several deferred replies at once, from any thread: as
 * mllp_receiver_reply() on each item in order (each item's result says
 * how it went; handles of several receivers may be mixed), except that a
 * receiver's manager thread is woken at most once per run of its handles,
 * after the last of them. A worker that answers what it took in one go
 * hands it over with one wake-up, instead of one per reply while the
 * manager sleeps. items NULL or n 0: nothing. Returns the number of items
 * whose result is 0. */
MLLP_API size_t mllp_receiver_reply_batch(struct mllp_reply_item *items,
					  size_t n);

/* Refuse a deferred frame (not stored), from any thread: with mllp_release
 * 2 it is answered with a NAK block (the sender sends it again); with
 * release 1 it gets no reply. Consumes h in every case. Returns 0,
 * MLLP_ERR_CLOSED (the connection had closed, or the receiver stopped) or
 * MLLP_ERR_INVALID_ARGUMENT (h NULL). Not concurrent with another call on
 * the same h. */
MLLP_API int mllp_receiver_refuse(struct mllp_reply_handle *h);

/* Built-in dispatcher `echo` (the reference's EchoDispatcher): HL7 gets an
 * AA ACK with MSA-3 "A real MLLP message dispatcher was not provided" (in
 * enhanced mode a CA accept ACK instead, when MSH-15 asks for one: AL,
 * SU, empty or another value; none for ER and NE); HL7
 * that cannot be parsed gets AR with the reason (mllp_ack_build does
 * that); a non-HL7 frame gets the reply "mllp_unknown". ctx is ignored (may
 * be NULL). Stateless: may serve several receivers at once; may also be
 * called from a user dispatcher to delegate. */
MLLP_API void mllp_dispatch_echo(void *ctx, const struct mllp_message *msg,
				 struct mllp_reply *reply);

/* Index of each code in the weight and count arrays below. */
enum mllp_ack_code_index {
	MLLP_ACK_AA = 0,
	MLLP_ACK_AE,
	MLLP_ACK_AR,
	MLLP_ACK_CA,
	MLLP_ACK_CE,
	MLLP_ACK_CR,
};

/* Number of ACK codes: the size of the arrays above. */
#define MLLP_ACK_CODE_COUNT 6

/* State of the built-in dispatcher `ack`: pass a pointer to it as
 * dispatch_ctx with dispatch = mllp_dispatch_ack. Owned by the caller; it
 * must outlive the receiver. Set the fields before mllp_receiver_create and do
 * not change them while the receiver runs; the counts are written on the
 * manager thread and may be read after mllp_receiver_stop() returned. */
struct mllp_ack_dispatcher {
	/* The code of every ACK when the mix is all zero (default "AA"). */
	const char *code;
	/* Weights of AA AE AR CA CE CR (by enum mllp_ack_code_index), e.g.
	 * 98, 1, 1: each ACK's code is drawn with these odds. All zero: use
	 * `code`. */
	uint32_t mix[MLLP_ACK_CODE_COUNT];
	/* Seed of the PRNG drawing from the mix (same seed, same sequence). */
	uint64_t seed;
	/* MSA-3 text of the ACKs, NULL for none. */
	const char *text;
	/* Reply delay in ms (0: at once); see struct mllp_reply. */
	uint32_t delay_ms;
	/* Out: ACKs answered per code (frames mllp_hl7_parse() refuses,
	 * non-HL7 or with an unusable MSH, get AR "not parsable" from
	 * mllp_ack_build and count as AR). */
	uint64_t counts[MLLP_ACK_CODE_COUNT];
	uint64_t rng; /* private */
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_ack_dispatcher_init, must stay zero (mllp_receiver_create
	 * checks it when dispatch is mllp_dispatch_ack). */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Defaults: code "AA", no mix, seed 1, no text, no delay, counts zero.
 * Works on caller memory; thread-safe for distinct d. */
MLLP_API void mllp_ack_dispatcher_init(struct mllp_ack_dispatcher *d);

/* Parse a mix such as "AA=98,AE=1,AR=1" into d->mix (other codes 0).
 * Returns 0, or MLLP_ERR_INVALID_ARGUMENT (unknown code, bad number, a
 * code given twice, or all weights zero); d->mix is unchanged then. */
MLLP_API int mllp_ack_dispatcher_set_mix(struct mllp_ack_dispatcher *d,
					 const char *spec);

/* The `ack` dispatcher; ctx is a struct mllp_ack_dispatcher * (not NULL).
 * Updates ctx's PRNG and counts: one receiver per struct at a time.
 * Original mode (MSH-15 and MSH-16 empty): the code as drawn. Enhanced
 * mode: the accept ACK of the drawn outcome (AA or CA → CA, AE/CE → CE,
 * AR/CR → CR) when MSH-15 asks for one with that outcome (AL, empty or an
 * unknown value: always; ER: CE/CR only; SU: CA only), else no reply
 * (not counted). The application ACK, a message of its own to the
 * sender's listener, is the application's to send. */
MLLP_API void mllp_dispatch_ack(void *ctx, const struct mllp_message *msg,
				struct mllp_reply *reply);

/* ---- telemetry ---------------------------------------------------------- */

enum mllp_receiver_event_kind {
	MLLP_RECEIVER_EV_CONNECTION_START = 0,
	MLLP_RECEIVER_EV_CONNECTION_STOP,
	MLLP_RECEIVER_EV_MESSAGE_RECEIVED,
	MLLP_RECEIVER_EV_REPLY_SENT,
};

/* "connection_start", "connection_stop", "message_received",
 * "reply_sent". Never NULL. */
MLLP_API const char *
mllp_receiver_event_name(enum mllp_receiver_event_kind kind);

/* Why a connection ended. */
enum mllp_close_reason {
	MLLP_CLOSE_NONE = 0,
	MLLP_CLOSE_PEER,	  /* closed by peer (EOF, after the replies) */
	MLLP_CLOSE_ERROR,	  /* socket error, oversize frame, backlog */
	MLLP_CLOSE_IDLE_TIMEOUT,  /* no complete frame for idle_timeout */
	MLLP_CLOSE_REFUSED,	  /* not in allowed_clients, or too many, or
				   * TLS: the client certificate refused */
	MLLP_CLOSE_STOPPED,	  /* the receiver stopped */
	MLLP_CLOSE_REPLY_TIMEOUT, /* a deferred reply did not come within
				   * deferred_timeout_ms */
};

/* "none", "closed", "error", "idle_timeout", "refused", "stopped",
 * "reply_timeout". */
MLLP_API const char *mllp_close_reason_name(enum mllp_close_reason reason);

/* One receiver event. Pointers are valid only during the callback. */
struct mllp_receiver_event {
	enum mllp_receiver_event_kind kind;
	const struct mllp_conn_info *conn;
	/* connection_stop: why, the error code (0, -errno or MLLP_ERR_*, e.g.
	 * MLLP_ERR_FRAME_TOO_BIG, MLLP_ERR_TIMEOUT), and how long the
	 * connection lived (us; 0 for a refused one). */
	enum mllp_close_reason reason;
	int error;
	uint64_t duration_us;
	/* message_received: the payload's kind and length. reply_sent: the
	 * bytes written by one send and the number of replies it completed
	 * (replies queued together are coalesced into one write). */
	enum mllp_msg_kind msg_kind;
	size_t len;
	uint32_t replies;
};

typedef void (*mllp_receiver_telemetry_fn)(
    void *ctx, const struct mllp_receiver_event *ev);

/* Counters of a receiver, a snapshot (each counter read atomically, the
 * set not). Plain data.
 *
 * Versioning (as struct mllp_endpoint_stats, pool.h): the caller sets
 * `size` to the size of the struct it was compiled with
 * (mllp_receiver_stats_init does); the library fills that many bytes at
 * most (fewer when it is older and its struct smaller) and sets `size` to
 * the number of bytes filled. */
struct mllp_receiver_stats {
	size_t size; /* in: sizeof as the caller knows it; out: filled */
	uint64_t connections_accepted; /* admitted connections, ever */
	uint64_t connections_active;   /* open now */
	uint64_t connections_refused;  /* allow-list, max_connections, or a
					* TLS client certificate refused (by
					* reason: at the end) */
	uint64_t connections_idle_timeout;
	uint64_t connections_error;
	uint64_t messages_received; /* frames, all kinds */
	uint64_t messages_hl7;
	uint64_t replies_sent; /* replies completely written */
	uint64_t bytes_received;
	uint64_t bytes_sent;
	uint64_t junk_bytes;	 /* discarded outside frames (CR/LF after a
				  * frame included) */
	uint64_t frames_too_big; /* connections closed for an oversize frame */
	/* Bytes held for open connections (partial frames, replies not yet
	 * written, held replies; TLS engine buffers not included), now and
	 * at most so far: never above max_buffered_bytes. */
	uint64_t buffered_bytes;
	uint64_t buffered_bytes_peak;
	uint64_t connections_shed;     /* closed: max_buffered_bytes exceeded */
	uint64_t reads_paused;	       /* times reading a connection was paused
					* (reply_backlog_pause or the budget) */
	uint64_t log_lines_suppressed; /* over the log rate limit */
	uint64_t log_lines_dropped;    /* stderr would have blocked */
	/* Fields are only ever added here, at the end: the offsets above
	 * never change. connections_refused by reason; the three add up to
	 * it: a client not in allowed_clients; one over max_connections (or
	 * one the receiver had no memory for); a TLS client whose
	 * certificate was refused in the handshake (none, unknown CA,
	 * expired, revoked, name not allowed). */
	uint64_t connections_refused_allow_list;
	uint64_t connections_refused_max_connections;
	uint64_t connections_refused_tls_cert;
	/* TLS server handshakes completed, full or resumed; of them, those
	 * that resumed a session (tickets or session IDs); and handshakes
	 * that failed: the TLS engine's error (a refused certificate
	 * included, also counted above; a plaintext client) or the
	 * handshake timeout. A client that disconnects during the handshake
	 * is in neither. Zero without TLS. */
	uint64_t tls_handshakes;
	uint64_t tls_handshakes_resumed;
	uint64_t tls_handshake_failures;
	/* Deferred replies (mllp_reply_defer) not yet sent, now; and
	 * replies completed after their connection had closed (those
	 * mllp_receiver_reply answered MLLP_ERR_CLOSED, and those that met
	 * the close on their way to the connection). */
	uint64_t replies_pending;
	uint64_t replies_after_close;
	/* Deferred replies whose connection closed while they were still
	 * unanswered (each reported to reply_abandoned when it is set); and
	 * connections mllp_receiver_stop closed after stop_drain_ms with
	 * replies not yet written (each also logged once at stop). */
	uint64_t replies_abandoned;
	uint64_t connections_stop_unfinished;
};

/* Zero *s and set s->size to this header's sizeof (inline on purpose: the
 * size is the caller's). Caller-owned memory; thread-safe for distinct s. */
static inline void mllp_receiver_stats_init(struct mllp_receiver_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->size = sizeof(*s);
}

/* Abandoned deferred replies: called once for each deferred handle still
 * unanswered when its connection closes (the peer closed or reset, an
 * error, idle_timeout_ms, deferred_timeout_ms, or mllp_receiver_stop()
 * after its drain), with the connection's close reason. The message may
 * need undoing: the sender was not told it was taken and sends it again.
 * On the manager thread (must not block; ctx is dispatch_ctx), as the
 * connection closes (before its connection_stop telemetry event).
 * Nothing changes for h: it stays the
 * owner's until passed to mllp_receiver_reply() or
 * mllp_receiver_refuse(), which consume it and return MLLP_ERR_CLOSED
 * (from the callback too). An owner replying on another thread at the
 * same time may get there first: the callback then names a handle
 * already consumed, so take h as a key to look up, not as a handle
 * known to be alive. Not called for a handle the owner had replied to
 * already (a reply not yet written when the connection closes is dropped
 * with it; the sender sends the message again). */
typedef void (*mllp_reply_abandoned_fn)(void *ctx, struct mllp_reply_handle *h,
					enum mllp_close_reason reason);

/* ---- the receiver --------------------------------------------------------
 */

/* Zero-initialise, then mllp_receiver_config_init() sets the defaults
 * noted on each field. */
struct mllp_receiver_config {
	/* Address to listen on: IPv4/IPv6 literal or host name (first
	 * address). NULL: "0.0.0.0". "::" listens dual-stack. */
	const char *address;
	/* 0..65535, 0 = ephemeral (read it with mllp_receiver_port).
	 * Default MLLP_PORT_UNSET: mllp_receiver_create fails with "No tcp
	 * port provided". */
	int32_t port;
	/* Required (else "No dispatcher module provided"). */
	mllp_dispatch_fn dispatch;
	/* The user context, given to every call; must stay valid until
	 * mllp_receiver_stop() has returned. */
	void *dispatch_ctx;
	/* Clients allowed to connect: IPv4/IPv6 addresses, CIDR ranges
	 * ("10.0.0.0/8", "fd00::/8") and host names, resolved once at create
	 * (an unresolvable name is warned about and dropped). NULL or count
	 * 0: everyone. A non-empty list admits only matches, even when every
	 * entry was dropped. A refused client is closed at once and logged.
	 * Copied at create. With TLS and tls->require_client_cert (verify
	 * peer), and no tls->allowed_clients of its own, the entries are
	 * client certificate names instead (SAN DNS names or CN, compared
	 * ignoring ASCII case; the reference's 0.9.7 semantics): a client
	 * whose certificate names none is refused in the handshake. */
	const char *const *allowed_clients;
	size_t allowed_clients_count;
	/* Largest frame payload (default 16 MiB,
	 * MLLP_RECEIVER_DEFAULT_MAX_FRAME; lower than the core's 64 MiB: a
	 * receiver faces untrusted peers). A bigger frame closes the connection
	 * (logged). */
	size_t max_frame;
	/* Connections open at once (default 20000, as the reference); one
	 * more is closed at once (logged, telemetry reason refused). */
	uint32_t max_connections;
	/* Close a connection when no complete frame has arrived for this long
	 * (ms; default 300000; 0: never). Partial frames do not count as
	 * activity, so a client trickling bytes (slowloris) is closed after
	 * it too. Reply writes count. */
	uint32_t idle_timeout_ms;
	/* Bytes a connection keeps allocated between frames (decoder and
	 * reply buffers shrink back to this after a big frame; default
	 * 64 KiB). */
	size_t read_buffer_keep;
	/* Bytes of replies a connection may have waiting while the peer does
	 * not read them (default 16 MiB); beyond it the connection is closed
	 * (error). See reply_backlog_pause, which normally keeps a connection
	 * well below it. */
	size_t max_reply_backlog;
	/* listen() backlog (default 1024). */
	int listen_backlog;
	/* ACKs built by the library keep the message's MSH-10 (default
	 * false: a new id "ACK<n>", as mllp_ack_build does). */
	bool keep_control_id;
	/* NULL: jemalloc private arena. Copied. */
	const struct mllp_allocator *allocator;
	/* I/O backend (default MLLP_BACKEND_AUTO: io_uring, or epoll with one
	 * warning when io_uring is refused; see pool.h). */
	enum mllp_backend_kind backend;
	/* Ring size (default 1024) and provided receive buffers (default
	 * 512 of 16 KiB, shared by every connection). */
	uint32_t ring_entries;
	uint32_t recv_buffers;
	uint32_t recv_buffer_size;
	/* Telemetry on the manager thread; NULL for none. telemetry_ctx
	 * must stay valid until mllp_receiver_stop() has returned. */
	mllp_receiver_telemetry_fn telemetry;
	void *telemetry_ctx;
	/* Log hook (manager thread; create's caller for create-time lines);
	 * must not block. NULL logs to stderr without ever blocking the
	 * manager: a line that would block is dropped and counted
	 * (log_lines_dropped). Lines above log_level (default
	 * MLLP_LOG_WARNING) are dropped; the others are rate-limited
	 * (MLLP_RECEIVER_LOG_BURST, above). log_ctx must stay valid until
	 * mllp_receiver_stop() has returned. */
	mllp_log_fn log;
	void *log_ctx;
	enum mllp_log_level log_level;
	/* TLS (see mllp/tls.h), or NULL: used when tls->enabled. Borrowed
	 * during mllp_receiver_create() only: the context is built there
	 * (certificate chain, key, client CA, CRL loaded; a bad path or an
	 * unreadable key fails create with a message naming the file). A
	 * client that fails the handshake (no certificate, unknown CA,
	 * expired, revoked, name not allowed, not TLS) is closed after the
	 * alert, logged with the reason, and counted as refused (certificate
	 * problems) or error, and as a failed handshake. Without TLS the
	 * receiver logs one warning "Starting listener on a non secured
	 * socket, data will be passed over unencrypted connection!". */
	const struct mllp_tls_server_config *tls;
	/* Handshake time limit per TLS connection (ms; default 10000). */
	uint32_t tls_handshake_timeout_ms;
	/* Stop reading a connection while its replies not yet written
	 * (queued, in flight, held by a delay) exceed this many bytes
	 * (default 256 KiB, MLLP_RECEIVER_DEFAULT_REPLY_PAUSE); read it again
	 * once they drain to half of it. A peer that sends without reading
	 * is thus held back by TCP flow control instead of growing the
	 * receiver's memory (it is closed after idle_timeout_ms as no frame
	 * completes). A value >= max_reply_backlog disables pausing: the
	 * connection is closed at max_reply_backlog instead. 0 is invalid.
	 * Bytes already received when the pause begins are kept undecoded
	 * (they count in buffered_bytes) until the replies drain, so a
	 * connection overshoots it by at most one frame's reply. */
	size_t reply_backlog_pause;
	/* Receiver-wide budget of bytes buffered for connections (see
	 * mllp_receiver_stats.buffered_bytes; default 256 MiB,
	 * MLLP_RECEIVER_DEFAULT_MAX_BUFFERED; must be at least max_frame).
	 * Above 3/4 of it the receiver stops reading connections that hold more
	 * than a fair share (budget / (2 * open connections), at least
	 * 64 KiB and what a connection at rest keeps: 4 * read_buffer_keep,
	 * 5 * with TLS) and reads them again below 1/2 of it, or as soon as
	 * they hold no more than the share (their bytes drained, or
	 * connections closed and the share grew): a connection within its
	 * share is always read. A connection that would take the total above
	 * it is closed, the heaviest first (logged, rate-limited: "buffer
	 * budget exceeded"; telemetry reason error, error
	 * MLLP_ERR_NO_MEMORY). */
	size_t max_buffered_bytes;
	/* Deferred replies (mllp_reply_defer) a connection may have pending
	 * (default 64, MLLP_RECEIVER_DEFAULT_MAX_PENDING; 0 is invalid): at the
	 * limit the receiver stops reading the connection until replies
	 * are sent. */
	uint32_t max_pending_replies;
	/* MLLP release: 1 (default; 0 reads as 1) or 2 (reliable delivery:
	 * README "MLLP Release 2"). With 2 every frame is answered first
	 * with a commit acknowledgement block (0x0B 0x06 0x1C 0x0D) once the
	 * dispatcher has taken it — when it returns, or, for a deferred reply,
	 * when mllp_receiver_reply() is called — or with a NAK block (0x0B
	 * 0x15 0x1C 0x0D) when it refuses it (MLLP_REPLY_NAK,
	 * mllp_receiver_refuse(), or a reply with reserved fields set). The
	 * dispatcher's reply, if any, follows as a frame of its own (a reply
	 * delay holds the reply, not the commit ACK). The built-in
	 * dispatchers take every frame. Another value:
	 * MLLP_ERR_INVALID_ARGUMENT at create. */
	uint32_t mllp_release;
	/* mllp_receiver_stop's drain (ms; default 1000,
	 * MLLP_RECEIVER_DEFAULT_STOP_DRAIN_MS): see mllp_receiver_stop. 0:
	 * close every connection at once (replies not yet written are
	 * dropped). */
	uint32_t stop_drain_ms;
	/* Longest wait for a deferred reply (ms; default 0: no limit): a
	 * connection whose oldest deferred frame is not answered within it
	 * is closed (telemetry reason reply_timeout, error
	 * MLLP_ERR_TIMEOUT; the sender sends the frame again) and its
	 * deferred handles are reported to reply_abandoned. */
	uint32_t deferred_timeout_ms;
	/* Told when deferred replies are abandoned (see
	 * mllp_reply_abandoned_fn); NULL for none. Its ctx is dispatch_ctx. */
	mllp_reply_abandoned_fn reply_abandoned;
	/* Called on the manager thread after a batch of completions in which
	 * the dispatcher was called (at least once since the last call),
	 * before the manager waits again; NULL
	 * for none. Its ctx is dispatch_ctx. A dispatcher that defers frames
	 * to other threads queues them quietly and wakes those threads here,
	 * once per batch instead of once per frame. Must not block. */
	void (*dispatch_batch_end)(void *ctx);
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_receiver_config_init, must stay zero. Options are taken from
	 * it at its start (the struct keeps its size and layout). */
	uint64_t reserved_[MLLP_RESERVED_WORDS - 3];
};

MLLP_API void mllp_receiver_config_init(struct mllp_receiver_config *cfg);

struct mllp_receiver;

/* Resolve allowed_clients, bind and listen (on the caller's thread, so
 * the port is known and errors are synchronous), then start the manager
 * thread, which accepts. On success *out is the running receiver.
 * Errors (err gets the message; *out is NULL):
 *   MLLP_ERR_INVALID_ARGUMENT "No tcp port provided" (port unset),
 *     "mllp_receiver_config: reserved fields must be zero (initialise
 *     with mllp_receiver_config_init)",
 *     "No dispatcher module provided", a bad address / CIDR / config;
 *   -EADDRINUSE (the port is in use), other -errno from socket/bind;
 *   MLLP_ERR_IO_URING_UNAVAILABLE (backend MLLP_BACKEND_IO_URING only),
 *   MLLP_ERR_NO_MEMORY. */
MLLP_API int mllp_receiver_create(const struct mllp_receiver_config *cfg,
				  struct mllp_receiver **out,
				  struct mllp_error *err);

/* The bound port (the ephemeral one for port 0). Thread-safe. */
MLLP_API uint16_t mllp_receiver_port(const struct mllp_receiver *r);

/* The bound address, numeric ("127.0.0.1", "::"). Static for the life of
 * the receiver. Thread-safe. */
MLLP_API const char *mllp_receiver_address(const struct mllp_receiver *r);

/* Which I/O backend runs: "io_uring" or "epoll". Static storage.
 * Thread-safe. */
MLLP_API const char *mllp_receiver_backend(const struct mllp_receiver *r);

/* Snapshot of the counters into caller-owned *out (out->size must be set,
 * e.g. by mllp_receiver_stats_init). Returns 0; MLLP_ERR_INVALID_ARGUMENT
 * for a NULL receiver, out NULL or out->size < sizeof(size_t) (*out
 * unchanged then). Thread-safe. */
MLLP_API int mllp_receiver_get_stats(const struct mllp_receiver *r,
				     struct mllp_receiver_stats *out);

/* Stop: stop accepting and reading at once, drain, close every
 * connection (telemetry reason stopped) and return after the last
 * callback has returned and the manager thread has exited: from then on
 * the contexts of the config (dispatch_ctx, telemetry_ctx, log_ctx) may be
 * freed. Idempotent and thread-safe: concurrent callers all return once
 * the receiver has stopped. From a callback of this receiver (the manager
 * thread: it would wait for itself) nothing is stopped and the call
 * returns MLLP_ERR_INVALID_ARGUMENT, as for NULL.
 * Drain: for up to config.stop_drain_ms (default 1000 ms) the receiver
 * keeps writing the replies it holds (synchronous replies not yet
 * written, delayed ones, deferred replies completed before or during the
 * drain) and closes each connection once it has nothing left to write;
 * frames received but not yet dispatched are dropped (never answered: the
 * sender sends them again). When the bound passes, the connections left
 * are closed: counted in connections_stop_unfinished and logged once
 * ("stop: N connections closed with replies not written after D ms"),
 * and their deferred handles still unanswered are reported to
 * reply_abandoned. stop_drain_ms 0: every connection is closed at once
 * (replies not yet written are dropped).
 * Deferred replies still outstanding stay valid: mllp_receiver_reply()
 * on them returns MLLP_ERR_CLOSED (see mllp_reply_defer). The listening
 * port is free when it returns. Returns 0 (also when already stopped). */
MLLP_API int mllp_receiver_stop(struct mllp_receiver *r);

/* Stop (if not yet) and free. NULL is ignored. From a callback of this
 * receiver the call is refused: nothing is freed and an error line is
 * logged. No other call on r may run
 * concurrently with or after it, except mllp_receiver_reply() on handles
 * still outstanding (the memory is freed by the last of them: see
 * mllp_reply_defer). */
MLLP_API void mllp_receiver_destroy(struct mllp_receiver *r);

MLLP_END_DECLS

#endif

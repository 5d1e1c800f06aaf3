/* Internal: the receiver's data structures and what crosses its files
 * (pool/receiver/). Not installed; only the receiver's files include it.
 *
 * One manager thread owns a backend instance, the listening socket, every
 * connection and one timer heap. Per connection:
 *   recv (continuous) -> decoder -> dispatcher -> reply, appended framed to
 *   the connection's write buffer (or held in a FIFO while a reply delay
 *   runs) -> after each received chunk, the write buffer is swapped with
 *   the idle flight buffer and sent in one sendmsg. One send in flight per
 *   socket: replies produced meanwhile wait in the write buffer and go out
 *   together (coalesced) when it completes. Replies leave in frame order.
 *
 * A connection is freed only when no operation is outstanding (cancel_fd,
 * then wait for every completion). The listener is created and bound on
 * the caller's thread (errors and the port are known synchronously);
 * accepting runs on the manager.
 *
 * Files: options.c (names, defaults, the configuration check), allow.c
 * (the allow-list), listener.c (listening, accepting, refusing), rconn.c
 * (a connection's life: reads, end of file, close, free), rconn_reply.c
 * (frames to replies, output buffers, sends), rconn_tls.c (TLS over the
 * shared stream, pool/io/tls_stream.h), manager.c (the loop's hooks:
 * completions, timers, stop), receiver.c (the public calls); recv_log.c,
 * recv_budget.c and recv_dispatch.c as their headers say; rdefer.c (deferred
 * replies: handles completed from any thread, handed over on an MPSC queue).
 *
 * Threading: everything below is the manager thread's once start returned,
 * except the counters (st_*, atomics, read by any thread), what stop
 * uses (stop_req, mu, joined, lfd after the join), and what deferred
 * replies share with the threads that complete them (a handle's state and
 * bytes, r->replies, r->refs: see rdefer.c). */
#ifndef MLLPI_RECEIVER_INTERNAL_H
#define MLLPI_RECEIVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <mllp/framer.h>
#include <mllp/receiver.h>
#include <mllp/tls.h>

#include "alloc.h"
#include "backend.h"
#include "loop.h"
#include "recv_budget.h"
#include "recv_log.h"
#include "subq.h"
#include "timer.h"
#include "tls_stream.h"

/* Completion tokens: object pointer | op (low 3 bits; objects are at least
 * 8-byte aligned). */
#define TOK_RECV     1u
#define TOK_SEND     2u
#define TOK_ACCEPT   3u
#define TOK_CANCEL   4u
#define TOK_TLS_SEND 5u /* the sends of the connection's TLS stream */
#define TOK_MASK     7u

/* mllpi_timer.kind of the receiver's timers. */
enum { T_IDLE = 1, T_DELAY, T_LISTEN, T_DRAIN };

struct obuf {
	unsigned char *p;
	size_t len, cap;
	uint32_t replies;
};

/* A reply slot in the connection's FIFO: a reply held back by a delay
 * (or behind a deferred one), or a deferred reply (embedded in its
 * struct mllp_reply_handle). Slots leave in order, each once it is ready
 * and due. */
struct held {
	struct held *next;
	uint64_t due_us;
	size_t len;	      /* framed bytes at `bytes` (0: no reply) */
	unsigned char *bytes; /* right after the slot, or the handle's */
	bool deferred;	      /* the slot of a struct mllp_reply_handle */
	bool ready;	      /* bytes are final (deferred: completed) */
};

/* A deferred reply (rdefer.c). state: H_WAITING (the owner holds it),
 * H_DONE (completed: pushed, or about to be, on r->replies), H_ORPHANED
 * (its connection closed first: the owner's mllp_receiver_reply frees
 * it). Whoever moves it off H_WAITING (one atomic exchange each) decides
 * who frees it. */
enum { H_WAITING = 0, H_DONE, H_ORPHANED };
#define HANDLE_INLINE 256 /* reply bytes kept in the handle itself */

struct mllp_reply_handle {
	struct held q;		/* its slot in the connection's FIFO */
	struct mllpi_node node; /* on r->replies once completed */
	struct mllp_receiver *r;
	struct rconn *c;    /* manager only: NULL once detached (closed) */
	uint64_t queued_us; /* manager only: when it was deferred */
	_Atomic int state;
	size_t cap; /* q.bytes allocated apart (0: inline) */
	unsigned char inl[HANDLE_INLINE];
};

struct rconn {
	struct mllp_receiver *r;
	struct rconn *prev, *next; /* live list */
	int fd;
	int pending; /* operations outstanding in the backend */
	bool closing;
	bool recv_armed;
	bool eof;
	bool sending;
	bool after_frame;	    /* last decoder event was a frame */
	bool reaped;		    /* on the dead list */
	enum mllp_close_reason why; /* set by close: for reply_abandoned */
	struct rconn *dead_next;
	struct mllp_conn_info info;
	uint64_t start_us;
	uint64_t last_active_us;
	struct mllp_decoder dec;
	struct obuf wr, fl; /* being filled, in flight */
	size_t fl_off;
	struct iovec iov;
	struct msghdr msg;
	struct held *hhead, *htail;
	size_t held_bytes;
	struct mllpi_timer idle, delay;
	uint64_t junk_run; /* junk bytes seen in this chunk, to log */
	struct mllpi_rlog_conn jlog;
	struct mllpi_rbudget_conn bc;
	bool rd_backlog; /* unsent replies hold reading back */
	bool rd_cancel;	 /* a cancel of the recv is outstanding */
	/* TLS (NULL: plaintext; rconn_tls.c). wr holds plaintext replies,
	 * handed to the stream from wr_off between its flights (fl unused:
	 * the stream sends its own ciphertext). */
	struct mllpi_tls_stream *tls;
	bool tls_up;
	size_t wr_off;
	uint32_t tls_replies; /* replies wholly in the engine, not sent */
	/* Deferred replies: slots in the FIFO (until released), the handle
	 * of the frame being dispatched, received bytes not yet decoded
	 * (at the max_pending_replies limit), reads held back for them. */
	uint32_t deferred;
	struct mllp_reply_handle *defer_h;
	struct obuf stash;
	size_t stash_off;
	bool rd_pending;
	bool dirty; /* on r->dirty: a completed reply to move on */
	struct rconn *dirty_next;
};

struct allow_entry {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct mllp_receiver {
	struct mllp_receiver_config cfg;
	struct mllp_allocator alloc;
	/* The manager thread, its backend and timers (loop.h); now_us and
	 * wall_s (ACK MSH-7) are refreshed after every wait(). */
	struct mllpi_loop loop;
	struct mllp_frame_config fcfg;
	int lfd;
	int lpending;
	bool accept_armed;
	struct mllpi_timer ltimer; /* accept retry */
	char addr_str[48];
	uint16_t port;
	struct allow_entry *allow;
	size_t nallow, allow_cap;
	bool allow_on;
	bool thread_started;
	bool joined;
	pthread_mutex_t mu; /* stop and join: one caller at a time */
	_Atomic bool stop_req;
	bool stopping;
	bool draining;		   /* stopping: writing the replies it holds */
	struct mllpi_timer dtimer; /* the end of the stop's drain */
	struct rconn *conns;
	struct rconn *dead; /* closed, nothing outstanding: free them */
	uint32_t nconns;    /* allocated (admitted, not yet freed) */
	uint64_t next_id;
	uint64_t ack_seq;
	unsigned char *scratch;
	size_t scratch_cap;
	struct mllp_tls_ctx *tls_ctx; /* NULL: plaintext */
	struct mllpi_rlog log;
	struct mllpi_rbudget budget;
	/* Deferred replies (rdefer.c): completed handles to the manager;
	 * handles that may still be pushed there (not yet taken, not
	 * orphaned); connections with completed replies this turn; and the
	 * references to r: 1 for the owner, 1 per handle not yet replied
	 * (the last one to drop frees r). */
	struct mllpi_subq replies;
	uint64_t hwait;
	struct rconn *dirty;
	/* frames dispatched since the last dispatch_batch_end call */
	bool dispatched;
	_Atomic uint64_t st_pending;
	/* Written by the completing threads: a cache line of their own
	 * (padding, not alignas: see mpsc.h). */
	char pad_refs_[64];
	_Atomic uint64_t refs;
	_Atomic uint64_t st_late;
	char pad_late_[64 - 2 * sizeof(uint64_t)];
	_Atomic uint64_t st_accepted, st_active, st_refused, st_idle, st_error,
	    st_msgs, st_hl7, st_replies, st_bytes_in, st_bytes_out, st_junk,
	    st_too_big, st_paused, st_tls_hs, st_tls_resumed, st_tls_failed,
	    st_abandoned, st_stop_unfinished;
	_Atomic uint64_t st_refused_by[3]; /* enum refusal */
};

/* Why a connection was refused: st_refused_by's index. */
enum refusal { REFUSED_ALLOW_LIST, REFUSED_MAX_CONNECTIONS, REFUSED_TLS_CERT };

/* Counters: the manager thread is their only writer, so a relaxed load
 * and store (no locked read-modify-write) suffice; readers on other threads
 * see each counter whole (relaxed atomic load). */
#define ST_ADD(r, f, n)                                                        \
	atomic_store_explicit(                                                 \
	    &(r)->f,                                                           \
	    atomic_load_explicit(&(r)->f, memory_order_relaxed) + (n),         \
	    memory_order_relaxed)
#define ST_SUB(r, f, n)                                                        \
	atomic_store_explicit(                                                 \
	    &(r)->f,                                                           \
	    atomic_load_explicit(&(r)->f, memory_order_relaxed) - (n),         \
	    memory_order_relaxed)

static inline uint64_t tok(const void *p, unsigned op)
{
	return (uint64_t)(uintptr_t)p | op;
}

/* One telemetry event, when the hook is set. */
static inline void
emit(struct mllp_receiver *r, enum mllp_receiver_event_kind kind,
     const struct mllp_conn_info *info, enum mllp_close_reason why, int error,
     uint64_t duration_us, enum mllp_msg_kind mk, size_t len, uint32_t replies)
{
	if (!r->cfg.telemetry)
		return;
	struct mllp_receiver_event ev = {
	    .kind = kind,
	    .conn = info,
	    .reason = why,
	    .error = error,
	    .duration_us = duration_us,
	    .msg_kind = mk,
	    .len = len,
	    .replies = replies,
	};
	r->cfg.telemetry(r->cfg.telemetry_ctx, &ev);
}

/* ---- options.c ---------------------------------------------------------- */

/* 0, or MLLP_ERR_INVALID_ARGUMENT with err saying what is wrong in cfg. */
int mllpi_receiver_config_check(const struct mllp_receiver_config *cfg,
				struct mllp_error *err);

/* ---- allow.c ------------------------------------------------------------ */

/* Build r->allow from r->cfg.allowed_clients (addresses, CIDR ranges, host
 * names resolved now); *cap is the array's capacity. */
int mllpi_recv_allow_build(struct mllp_receiver *r, size_t *cap,
			   struct mllp_error *err);
/* True when the allow-list is off or ss matches an entry. */
bool mllpi_recv_allowed(const struct mllp_receiver *r,
			const struct sockaddr_storage *ss);
void mllpi_recv_allow_free(struct mllp_receiver *r);

/* ---- listener.c --------------------------------------------------------- */

/* Caller's thread: resolve, bind and listen (r->lfd, r->port, r->addr_str). */
int mllpi_recv_listen(struct mllp_receiver *r, struct mllp_error *err);
/* Submit an accept unless one is armed or the receiver stops (on failure:
 * retry from r->ltimer). */
void mllpi_recv_listener_arm(struct mllp_receiver *r);
/* An accept completion: admit or refuse the connection, accept again. */
void mllpi_recv_on_accept(struct mllp_receiver *r, const struct mllpi_cqe *cq);

/* ---- rconn.c: a connection's life --------------------------------------- */

void mllpi_rconn_free(struct rconn *c);
/* Queue a closed connection with nothing outstanding for freeing at the
 * end of the loop turn. */
void mllpi_rconn_reap(struct rconn *c);
/* Free the connections queued by mllpi_rconn_reap. */
void mllpi_recv_free_dead(struct mllp_receiver *r);
/* Close (once): cancel what is outstanding, emit connection_stop. */
void mllpi_rconn_close(struct rconn *c, enum mllp_close_reason why, int error);
/* Log "connection from PEER: what (error)" and close as an error. */
void mllpi_rconn_fail(struct rconn *c, int error, const char *what);
/* Plaintext bytes from the peer: decode, dispatch, then flush. */
void mllpi_rconn_on_data(struct rconn *c, const unsigned char *p, size_t len);
void mllpi_rconn_arm_recv(struct rconn *c);
/* Close when the peer ended (or the receiver drains at stop) and every
 * reply is out. */
void mllpi_rconn_check_eof(struct rconn *c);
/* Stop began: read and dispatch no more, close once the replies are out
 * (a TLS handshake not done: at once). */
void mllpi_rconn_drain(struct rconn *c);
/* When the oldest deferred reply still awaited passes
 * deferred_timeout_ms (0: none). */
uint64_t mllpi_rconn_deferred_due(const struct mllp_receiver *r,
				  const struct rconn *c);
/* Decode the bytes kept while the pending limit held the connection. */
void mllpi_rconn_replay(struct rconn *c);
/* Arm or cancel the recv as the backlog and the budget say. */
void mllpi_rconn_reads(struct rconn *c);
/* After each event of a connection: backlog pause and budget. */
void mllpi_rconn_account(struct rconn *c);
/* The budget's hooks (recv_budget.h). */
void mllpi_rconn_budget_reads(struct mllpi_rbudget_conn *bc);
void mllpi_rconn_budget_shed(struct mllpi_rbudget_conn *bc);
/* When the idle timer is due (0: none). */
uint64_t mllpi_rconn_idle_due(const struct mllp_receiver *r,
			      const struct rconn *c);
void mllpi_rconn_on_recv(struct rconn *c, const struct mllpi_cqe *cq);

/* ---- rconn_reply.c: replies and output ---------------------------------- */

int mllpi_obuf_reserve(struct mllp_receiver *r, struct obuf *b, size_t more);
void mllpi_obuf_free(struct mllp_receiver *r, struct obuf *b);
/* Drop the replies held back by a delay. */
void mllpi_rconn_held_free(struct rconn *c);
/* Submit c->fl as the connection's one send in flight. */
void mllpi_rconn_send_flight(struct rconn *c);
/* Start a send of the write buffer when none is in flight. */
void mllpi_rconn_flush(struct rconn *c);
/* Move the held replies due at now into the write buffer. */
void mllpi_rconn_release_held(struct rconn *c, uint64_t now);
/* Held replies due or completed: release them, then (while the connection
 * stays open) decode what the pending limit held back, send what is
 * ready and close after end of file; account. */
void mllpi_rconn_resume(struct rconn *c, uint64_t now);
/* One decoded frame: dispatch it, append or hold its reply. */
void mllpi_rconn_on_frame(struct rconn *c, const unsigned char *data,
			  size_t len);
void mllpi_rconn_on_send(struct rconn *c, const struct mllpi_cqe *cq);
/* A flight of len bytes is written, completing `replies` replies: count,
 * report, send what waits, close at the end of the peer's input. */
void mllpi_rconn_sent(struct rconn *c, size_t len, uint32_t replies);

/* The framed form of reply bytes into dst (w: mllp_wrap_check's answer,
 * 1 already framed); returns the length written. */
static inline size_t mllpi_reply_frame(unsigned char *dst, const void *data,
				       size_t len, int w)
{
	if (w == 1) {
		memcpy(dst, data, len);
		return len;
	}
	dst[0] = MLLP_SB;
	if (len)
		memcpy(dst + 1, data, len);
	dst[len + 1] = MLLP_EB;
	dst[len + 2] = MLLP_CR;
	return len + 3;
}

/* MLLP release 2: the commit ACK block (0x0B 0x06 0x1C 0x0D), or the
 * NAK block (0x0B 0x15 0x1C 0x0D), into dst; returns its length. */
#define MLLPI_R2_BLOCK 4
static inline size_t mllpi_r2_block(unsigned char *dst, bool nak)
{
	dst[0] = MLLP_SB;
	dst[1] = nak ? 0x15 : 0x06;
	dst[2] = MLLP_EB;
	dst[3] = MLLP_CR;
	return MLLPI_R2_BLOCK;
}

/* ---- rdefer.c: deferred replies ----------------------------------------- */

static inline struct mllp_reply_handle *mllpi_slot_handle(struct held *q)
{
	return (
	    struct mllp_reply_handle
		*)(void *)((char *)q - offsetof(struct mllp_reply_handle, q));
}

static inline struct mllp_reply_handle *mllpi_node_handle(struct mllpi_node *n)
{
	return (
	    struct mllp_reply_handle *)(void *)((char *)n -
						offsetof(
						    struct mllp_reply_handle,
						    node));
}

/* The frame just dispatched was deferred: its slot joins the FIFO. */
void mllpi_rdefer_queue(struct rconn *c, struct mllp_reply_handle *h);
/* A closing connection lets go of a deferred slot. */
void mllpi_rdefer_detach(struct rconn *c, struct mllp_reply_handle *h);
/* Free a handle (its bytes too). */
void mllpi_rdefer_free(struct mllp_receiver *r, struct mllp_reply_handle *h);
/* Manager, each turn: take completed handles, move their connections on.
 * Returns how many were taken. */
int mllpi_rdefer_take(struct mllp_receiver *r);
/* Drop the owner's reference (destroy): frees r when it was the last. */
void mllpi_receiver_unref(struct mllp_receiver *r);

/* ---- rconn_tls.c: TLS over the shared stream ---------------------------- */

/* Accepted with TLS on: the server side of the connection's stream
 * (c->tls). 0 or an error (err says why). */
int mllpi_rtls_start(struct rconn *c, struct mllp_error *err);
/* Between the stream's flights: the waiting replies go to the stream. */
void mllpi_rtls_flush(struct rconn *c);
/* Ciphertext from the peer: handshake, then plaintext to on_data. */
void mllpi_rtls_on_data(struct rconn *c, const unsigned char *p, size_t len);
/* A completion of the stream's send (TOK_TLS_SEND). */
void mllpi_rtls_on_sent(struct rconn *c, const struct mllpi_cqe *cq);
/* The connection closes (why): close_notify when orderly. */
void mllpi_rtls_close(struct rconn *c, enum mllp_close_reason why);

/* ---- manager.c ---------------------------------------------------------- */

/* The receiver's hooks into the shared manager loop (loop.h). */
extern const struct mllpi_loop_hooks mllpi_receiver_hooks;

/* ---- receiver.c --------------------------------------------------------- */

/* mllp_receiver_create on the given backend (NULL: as cfg->backend says);
 * for tests that wrap or fake the backend seam. */
int mllpi_receiver_create_ops(const struct mllp_receiver_config *cfg,
			      const struct mllpi_backend_ops *ops,
			      struct mllp_receiver **out,
			      struct mllp_error *err);
/* Free everything (after the manager thread ended, or start failed). */
void mllpi_receiver_free(struct mllp_receiver *r);

/* ---- recv_dispatch.c ---------------------------------------------------- */

/* The code the built-in dispatchers answer h with, for the application
 * code `code` (AA AE AR; CA CE CR taken as their A counterparts in
 * enhanced mode): as is in original mode (MSH-15 and MSH-16 empty); in
 * enhanced mode the accept code (CA CE CR) when MSH-15 asks for an accept
 * ACK with that outcome (AL, empty or another value: always; ER: on error
 * or reject; SU: on success), else NULL (no reply). */
const char *mllpi_enhanced_code(const struct mllp_hl7_msg *h, const char *code);

#endif

/* Internal: the manager side of the pool, shared by the files that run on
 * the manager thread (and by send.c and pool.c where they hand work
 * over): completion tokens, counters, telemetry, the endpoint
 * queue, sockets and the connection state machine. Not installed.
 *
 * Where things are: outcome.c (log lines, error counters, failed
 * futures), queue.c (endpoint queue, queue slots), sock.c (socket
 * lifetime), conn.c (going down, closing, reconnecting), conn_connect.c
 * (connecting), conn_send.c (sending), conn_reply.c (replies),
 * completion.c (completions and timers), pool_manager.c (producers'
 * operations, the loop's hooks), conn_tls.c (TLS over the shared stream,
 * pool/io/tls_stream.h).
 *
 * I/O goes through the backend seam (backend.h); nothing here includes
 * liburing.h.
 *
 * The small helpers of the per-message path are static inline here so
 * that the split into files costs the hot path no call. */
#ifndef MLLPI_CONN_H
#define MLLPI_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/pool.h>

#include "endpoint.h"
#include "pool_internal.h"

/* Completion tokens: (sock pointer | op); TOK_TLS_SEND: the sends of the
 * socket's TLS stream (s->tls); TOK_INQ: the bytes waiting before a send
 * (conn_presend.c). */
#define TOK_CONNECT  1u
#define TOK_SEND     2u
#define TOK_RECV     3u
#define TOK_TLS_SEND 4u
#define TOK_INQ	     5u
#define TOK_MASK     7u

static inline uint64_t mllpi_tok(struct mllpi_sock *s, unsigned op)
{
	return (uint64_t)(uintptr_t)s | op;
}

/* Count on endpoint ep and on its pool (see mllpi_counter_add). */
#define STAT_ADD(ep, field, n)                                                 \
	do {                                                                   \
		atomic_fetch_add_explicit(&(ep)->pool->field, (n),             \
					  memory_order_relaxed);               \
		mllpi_counter_add(&(ep)->field, (n));                          \
	} while (0)
#define STAT_SUB(ep, field, n)                                                 \
	do {                                                                   \
		atomic_fetch_sub_explicit(&(ep)->pool->field, (n),             \
					  memory_order_relaxed);               \
		mllpi_counter_add(&(ep)->field, -(uint64_t)(n));               \
	} while (0)

/* ---- outcome.c ---------------------------------------------------------- */

/* A log line at level lvl (cfg.log, else stderr), if cfg.log_level lets it
 * through. */
void mllpi_pool_log(struct mllp_pool *p, enum mllp_log_level lvl,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Complete f with an error (once). written: all bytes written;
 * partial: some bytes written. Counted in the error counters. */
void mllpi_fail_future(struct mllp_future *f, enum mllp_context ctx, int reason,
		       const char *msg, bool written, bool partial);

/* A telemetry event of connection c (nothing without cfg.telemetry). */
static inline void mllpi_emit(struct mllpi_conn *c, enum mllp_event_kind kind,
			      const struct mllp_error *err, uint64_t latency_us,
			      uint64_t delay_ms, bool has_verdict,
			      enum mllp_verdict v, bool orphan)
{
	struct mllp_pool *p = c->ep->pool;
	if (!p->cfg.telemetry)
		return;
	struct mllp_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.address = c->ep->host;
	ev.port = c->ep->port;
	ev.endpoint_id = c->ep->id;
	ev.connection_id = c->id;
	ev.error = err;
	ev.latency_us = latency_us;
	ev.reconnect_delay_ms = delay_ms;
	ev.has_verdict = has_verdict;
	ev.verdict = v;
	ev.orphan = orphan;
	p->cfg.telemetry(p->cfg.telemetry_ctx, &ev);
}

/* Complete f. A message on a connection stops counting as in flight
 * first, so that the counters agree with the future as soon as its
 * waiter wakes up (mllpi_conn_drop_cur does not count it again). */
static inline void mllpi_publish_now(struct mllp_future *f)
{
	if (f->where == W_INFLIGHT && !f->left_flight) {
		f->left_flight = true;
		STAT_SUB(f->ep, st_in_flight, 1);
	}
	mllpi_future_publish(f);
}

/* The one completion funnel: a keyed message's lane learns its outcome
 * first (lane.c: it may keep the message for a retry instead). */
static inline void mllpi_publish(struct mllp_future *f)
{
	if (f->lane) {
		mllpi_lane_publish(f);
		return;
	}
	mllpi_publish_now(f);
}

static inline void mllpi_fail_future_err(struct mllp_future *f,
					 const struct mllp_error *e,
					 enum mllp_context ctx, bool written,
					 bool partial)
{
	mllpi_fail_future(f, ctx, e->reason, e->message[0] ? e->message : NULL,
			  written, partial);
}

/* No reply came in time to the message sent at start_us: e is set to the
 * timeout, logged and reported (receive_timeout). */
static inline void mllpi_reply_timed_out(struct mllpi_conn *c,
					 uint64_t start_us,
					 struct mllp_error *e)
{
	mllp_error_set(e, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, NULL);
	mllpi_pool_log(c->ep->pool, MLLP_LOG_ERROR,
		       "Error receiving from %s:%u => %s", c->ep->host,
		       c->ep->port, e->message);
	mllpi_emit(c, MLLP_EV_RECEIVE_TIMEOUT, e, mllpi_now_us() - start_us, 0,
		   false, 0, false);
}

/* e = reason in context ctx, with note as its text when not NULL. */
static inline void mllpi_error_note(struct mllp_error *e, enum mllp_context ctx,
				    int reason, const char *note)
{
	if (note)
		mllp_error_set(e, ctx, reason, "%s", note);
	else
		mllp_error_set(e, ctx, reason, NULL);
}

/* ---- queue.c ------------------------------------------------------------ */

/* n queue slots of ep are free again: wakes blocked producers once the
 * queue has drained to half its capacity. */
void mllpi_space_freed(struct mllpi_endpoint *ep, uint32_t n);
/* Give back the slots of the messages moved onto a connection this turn
 * (see mllpi_slot_moved). */
void mllpi_flush_moved(struct mllp_pool *p);
/* Arm the queue timer for the oldest queued message (queue_timeout), or
 * disarm it. */
void mllpi_q_arm_timer(struct mllpi_endpoint *ep);
/* The endpoint's last connect (or close) error, under ep->mu. */
void mllpi_get_last_error(struct mllpi_endpoint *ep, struct mllp_error *e);
/* Fail every queued message (never written). */
void mllpi_q_fail_all(struct mllpi_endpoint *ep, const struct mllp_error *e);
/* The next queued message that may be sent now, taken off the queue
 * (its slot given back at the end of the turn), or NULL. */
struct mllp_future *mllpi_q_take(struct mllpi_endpoint *ep);

/* A message left the endpoint's queue for a connection: its slot is given
 * back at the end of the manager's turn (mllpi_flush_moved, before wait()),
 * with every other slot freed that way in the turn, in one read-modify-write of
 * `reserved` instead of one per message. That line is shared with the
 * producers: each write of it by the manager makes their next reservation
 * miss. A message whose future completes in the same turn (a send that
 * fails at once) has its slot given back first (see mllpi_conn_start_message):
 * a completed future's slot is always free. */
static inline void mllpi_slot_moved(struct mllpi_endpoint *ep)
{
	struct mllp_pool *p = ep->pool;
	if (ep->moved++ == 0) {
		ep->moved_next = p->moved_list;
		p->moved_list = ep;
	}
}

/* Unlink a queued message; the caller gives its slot back. */
static inline void mllpi_q_remove(struct mllpi_endpoint *ep,
				  struct mllp_future *f)
{
	if (f->qprev)
		f->qprev->qnext = f->qnext;
	else
		ep->qhead = f->qnext;
	if (f->qnext)
		f->qnext->qprev = f->qprev;
	else
		ep->qtail = f->qprev;
	f->qprev = f->qnext = NULL;
	f->where = W_NEW;
	STAT_SUB(ep, st_queued, 1);
}

static inline void mllpi_q_append(struct mllpi_endpoint *ep,
				  struct mllp_future *f)
{
	f->qnext = NULL;
	f->qprev = ep->qtail;
	if (ep->qtail)
		ep->qtail->qnext = f;
	else
		ep->qhead = f;
	ep->qtail = f;
	f->where = W_QUEUED;
	/* read only for the queue timeout */
	f->queued_us =
	    ep->opts.queue_timeout_ms > 0 ? ep->pool->loop.now_us : 0;
	STAT_ADD(ep, st_queued, 1);
}

/* The manager takes f (a new message, or a lane's copy sent again): its
 * part of the future starts afresh; the caller sets f->lane. */
static inline void mllpi_future_take(struct mllp_future *f)
{
	f->where = W_NEW;
	f->completed = false;
	f->queued_us = 0;
	f->qprev = f->qnext = NULL;
	memset(&f->result, 0, sizeof(f->result));
	f->reply_heap = NULL;
	f->reply_heap_size = 0;
	f->left_flight = false;
	f->taken = true;
}

/* f cannot wait: no connection is usable and queue_timeout is 0. It is
 * failed with the endpoint's last error and released; true then. */
static inline bool mllpi_q_refuse(struct mllpi_endpoint *ep,
				  struct mllp_future *f)
{
	/* relaxed: only the manager writes usable. */
	if (atomic_load_explicit(&ep->usable, memory_order_relaxed) != 0 ||
	    ep->opts.queue_timeout_ms != 0)
		return false;
	struct mllp_error e;
	mllpi_get_last_error(ep, &e);
	mllpi_space_freed(ep, 1);
	mllpi_fail_future_err(f, &e, MLLP_CTX_SEND, false, false);
	f->where = W_DONE;
	mllpi_future_release(f);
	return true;
}

/* ---- sock.c ------------------------------------------------------------- */

/* Closed and nothing outstanding: freed at the end of this turn
 * (mllpi_sock_reap). */
void mllpi_sock_maybe_free(struct mllp_pool *p, struct mllpi_sock *s);
/* Free the sockets queued by mllpi_sock_maybe_free (end of the turn). */
void mllpi_sock_reap(struct mllp_pool *p);
/* Detach the connection's socket: cancel its operations; the fd is closed
 * once the last completion has come back. */
void mllpi_sock_detach(struct mllpi_conn *c, bool abortive);

/* ---- conn.c ------------------------------------------------------------- */

/* Publish the connection's state for mllp_pool_is_connected. */
void mllpi_publish_connected(struct mllpi_conn *c, bool up);
/* Move c to state next, keeping ep->usable (connecting or up) counted. */
void mllpi_set_usable(struct mllpi_conn *c, enum mllpi_cstate next);
/* Connect again after delay_ms (divided by cfg.backoff_divisor). */
void mllpi_schedule_reconnect(struct mllpi_conn *c, uint64_t delay_ms);
/* The connection goes down: no message, no socket; fail_queue: fail the
 * queued messages when no connection is left (queue_timeout 0). */
void mllpi_conn_down(struct mllpi_conn *c, bool fail_queue);
/* Close an established (or connecting) connection. The message in flight
 * is failed with e (context ctx). reconnect_now: connect again at once;
 * else after the backoff delay. emit_closed: a connection_closed event. */
void mllpi_conn_close(struct mllpi_conn *c, bool abortive,
		      enum mllp_context ctx, const struct mllp_error *e,
		      bool reconnect_now, bool emit_closed);

static inline void mllpi_idle_remove(struct mllpi_conn *c)
{
	if (!c->in_idle)
		return;
	struct mllpi_conn **pp = &c->ep->idle;
	while (*pp && *pp != c)
		pp = &(*pp)->idle_next;
	if (*pp)
		*pp = c->idle_next;
	c->idle_next = NULL;
	c->in_idle = false;
}

/* Release the message in flight (already completed or to be failed by the
 * caller first). */
static inline void mllpi_conn_drop_cur(struct mllpi_conn *c)
{
	struct mllp_future *f = c->cur;
	if (!f)
		return;
	c->cur = NULL;
	f->where = W_DONE;
	if (!f->left_flight)
		STAT_SUB(c->ep, st_in_flight, 1);
	mllpi_future_release(f);
}

/* ---- conn_connect.c ----------------------------------------------------- */

/* Start connecting a connection that is down (or has never tried). */
void mllpi_conn_start_connect(struct mllpi_conn *c);
/* A connect attempt failed with reason (context connect) / with err
 * (context connect, or tls for a failed handshake). */
void mllpi_connect_failed(struct mllpi_conn *c, int reason);
void mllpi_connect_failed_err(struct mllpi_conn *c,
			      const struct mllp_error *err);
/* TCP is up (or, with TLS, the handshake is done): the connection goes
 * idle and takes queued work. */
void mllpi_conn_on_connected(struct mllpi_conn *c);
/* Submit a receive on the connection's socket unless one is armed. */
static inline void mllpi_conn_arm_recv(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->recv_armed || !c->sock)
		return;
	if (p->loop.ops->recv(p->loop.be, c->sock->fd,
			      mllpi_tok(c->sock, TOK_RECV)) == 0) {
		c->sock->pending++;
		c->recv_armed = true;
	}
}

/* ---- conn_send.c -------------------------------------------------------- */

/* Submit the send of the bytes of the message in flight not yet written:
 * 0 or the backend's negative errno. */
int mllpi_submit_send(struct mllpi_conn *c);
/* A send failed: logged, reported, the connection closed. why may be
 * NULL. */
void mllpi_conn_send_failed(struct mllpi_conn *c, int reason, const char *why);
/* Start sending f on idle connection c. */
void mllpi_conn_start_message(struct mllpi_conn *c, struct mllp_future *f);
/* An idle connection takes the next queued message, or goes idle. */
void mllpi_conn_dispatch(struct mllpi_conn *c);

/* ---- conn_tls.c --------------------------------------------------------- */

/* TCP is up on an endpoint with TLS: start the handshake (under a fresh
 * connect_timeout_ms); the connection goes up (mllpi_conn_on_connected)
 * when it is done, or fails as a connect failure. */
void mllpi_conn_tls_start(struct mllpi_conn *c);
/* mllpi_submit_send on a TLS socket: the message's plaintext not yet
 * taken goes to the stream. 0 or an error. */
int mllpi_conn_tls_send(struct mllpi_conn *c);
/* The connect timer fired during the handshake. */
void mllpi_conn_tls_timeout(struct mllpi_conn *c);

/* Arm the connection's send or reply timer lazily: c->due_us holds the
 * real deadline; a heap entry due at or before it is left as it is (it
 * re-arms itself to due_us when it expires early, see mllpi_pool_on_timer), so
 * a message costs no heap operation in steady state. */
static inline void mllpi_conn_timer_lazy(struct mllp_pool *p,
					 struct mllpi_conn *c,
					 enum mllpi_tkind kind, uint64_t due)
{
	c->timer.kind = kind;
	c->due_us = due;
	if (!c->timer.index || c->timer.deadline_us > due)
		mllpi_timer_arm(&p->loop.timers, &c->timer, due);
}

/* The send of the message in flight was submitted: watch for a reply
 * sent early and arm the send timer; false when send_timeout_ms is -1
 * (no timer armed). */
static inline bool mllpi_conn_send_submitted(struct mllp_pool *p,
					     struct mllpi_conn *c)
{
	mllpi_presend_start(c);
	int64_t st = c->ep->opts.send_timeout_ms;
	if (st < 0)
		return false;
	mllpi_conn_timer_lazy(p, c, T_SEND,
			      mllpi_after_ms(c->send_start_us, (uint64_t)st));
	return true;
}

/* The message in flight is finished (completed); go idle when the send
 * has completed too. */
static inline void mllpi_conn_finish(struct mllpi_conn *c)
{
	if (c->send_in_flight) {
		c->reply_done = true; /* finish when the send completes */
		return;
	}
	/* Disarmed lazily: the heap entry stays (the next message's timer
	 * reuses it; if it expires first, mllpi_pool_on_timer drops it as
	 * T_NONE). */
	c->timer.kind = T_NONE;
	mllpi_conn_drop_cur(c);
	c->state = C_IDLE;
	mllpi_conn_dispatch(c);
}

/* ---- conn_stale.c ------------------------------------------------------- */

/* A reply to the message with this control id was taken on c. */
void mllpi_stale_note(struct mllpi_conn *c, const char *id, size_t len);
/* True when msa2 (the MSA-2 of reply data[0..len)) is the control id of a
 * message c answered already: the frame was a resent ACK, and is now
 * dropped, counted and reported; or of a message that asked for no accept
 * ACK (MSH-15 NE / ER) and completed when written: a late accept ACK,
 * dropped, counted (late_accept_acks), reported with its verdict and
 * given to the message's application stage (mllpi_app_late). */
bool mllpi_stale_drop(struct mllpi_conn *c, const struct mllp_str *msa2,
		      const unsigned char *data, size_t len);
/* The same for a whole reply frame (reads its MSA-2 when c remembers any
 * id). */
bool mllpi_stale_frame(struct mllpi_conn *c, const unsigned char *data,
		       size_t len);
/* Every byte of f (no_accept: its MSH-15 asks for no accept ACK on
 * success) is written: f completes (status 0, written, no verdict, no
 * reply) unless it has already, and its control id is remembered so that
 * an answer still coming is a late accept ACK. early: a reply kept in f
 * before the send completed is handled as one now. The caller releases
 * f from the connection afterwards. */
void mllpi_accept_written(struct mllpi_conn *c, struct mllp_future *f,
			  bool early);
/* A frame about to be taken (or kept) as the reply of f (NULL: a raw
 * message): true when it is a late accept ACK instead, naming another
 * message (dropped as mllpi_stale_drop says). A branch while c remembers
 * no message that asked for no accept ACK. */
bool mllpi_stale_late_frame(struct mllpi_conn *c, const unsigned char *data,
			    size_t len, const struct mllp_future *f);
/* A new socket: forget. _free: the connection goes away. */
void mllpi_stale_reset(struct mllpi_conn *c);
void mllpi_stale_free(struct mllpi_conn *c, const struct mllp_allocator *a);

/* ---- conn_r2.c ---------------------------------------------------------- */

/* MLLP release 2 (mllp_conn_options.mllp_release): a new socket (_reset);
 * the message in flight was taken (_start); a complete frame received
 * (_frame: a commit ACK / NAK or content; pre: it came before the message
 * in flight was handed to the kernel); the reply timer fired (_timeout:
 * resend, or fail once r2_max_retries resends are used). */
void mllpi_r2_reset(struct mllpi_conn *c);
void mllpi_r2_start(struct mllpi_conn *c);
void mllpi_r2_frame(struct mllpi_conn *c, const unsigned char *data, size_t len,
		    bool pre);
void mllpi_r2_timeout(struct mllpi_conn *c);

/* ---- conn_reply.c ------------------------------------------------------- */

/* Bytes received on c (plaintext): decoded, frames handled. */
void mllpi_conn_on_recv_data(struct mllpi_conn *c, const unsigned char *data,
			     size_t len);
/* A complete reply frame for c->cur. False when it was dropped as stale
 * (conn_stale.c): c->cur still waits for its reply. */
bool mllpi_conn_handle_reply(struct mllpi_conn *c, const unsigned char *data,
			     size_t len);
/* Keep reply data[0..len) in f (inline or on the heap): 0 or
 * MLLP_ERR_NO_MEMORY. */
int mllpi_store_reply(struct mllp_future *f, const unsigned char *data,
		      size_t len);
/* f's reply, taken on c: counted, its latency (lat) recorded, f completed
 * with it (HL7: verdict v, the ACK's views ack and the text why, as
 * mllp_ack_verify_id gave them, the views re-based in place onto f's copy;
 * raw: v, ack and why unused) unless f has completed already, and
 * reported (receive_valid). */
void mllpi_reply_publish(struct mllpi_conn *c, struct mllp_future *f,
			 const unsigned char *data, size_t len,
			 enum mllp_verdict v, struct mllp_ack *ack,
			 const char *why, uint64_t lat);

/* ---- completion.c, pool_manager.c
 * -------------------------------------------- */

/* The loop's hooks (loop.h), ctx the pool: a backend completion, an
 * expired timer. */
void mllpi_pool_on_cqe(void *ctx, const struct mllpi_cqe *cq);
void mllpi_pool_on_timer(void *ctx, struct mllpi_timer *t);
/* res bytes of the message in flight are written (res < 0: the send
 * failed): the rest is sent, or the message is written through. With
 * TLS, res counts plaintext (conn_tls.c). */
void mllpi_conn_on_sent(struct mllpi_conn *c, int res);
/* Every hook of the pool's manager loop (pool_manager.c). */
extern const struct mllpi_loop_hooks mllpi_pool_hooks;

#endif

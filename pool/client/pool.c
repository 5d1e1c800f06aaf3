/* The pool engine: manager thread, endpoint queues, per-connection MLLP
 * state machines, timers. I/O goes through the backend seam (backend.h);
 * nothing here includes liburing.h.
 *
 * Producers hand operations to the manager through the submission queue
 * of subq.h (wake-up and stop protocols described there); the manager's
 * own submissions, from completion callbacks, go through its local FIFO. */
#include "endpoint.h"
#include "netaddr.h"
#include "pool_internal.h"
#include "tls_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mllp/hl7.h>

#define TOK_CONNECT 1u
#define TOK_SEND    2u
#define TOK_RECV    3u
#define TOK_MASK    7u

/* ---- names ---------------------------------------------------------- */

const char *mllp_event_name(enum mllp_event_kind kind)
{
	static const char *const names[] = {
	    "connection_success", "connection_failure", "connection_closed",
	    "send_error",	  "receive_timeout",	"invalid_response",
	    "receive_valid",
	};
	if ((unsigned)kind < MLLP_EV_COUNT_)
		return names[kind];
	return "unknown";
}

const char *mllp_log_level_name(enum mllp_log_level level)
{
	switch (level) {
	case MLLP_LOG_ERROR:
		return "error";
	case MLLP_LOG_WARNING:
		return "warning";
	case MLLP_LOG_INFO:
		return "info";
	case MLLP_LOG_DEBUG:
		return "debug";
	}
	return "unknown";
}

/* ---- configuration -------------------------------------------------- */

void mllp_conn_options_init(struct mllp_conn_options *o)
{
	memset(o, 0, sizeof(*o));
	o->use_backoff = true;
	o->backoff_max_seconds = 180;
	o->auto_reconnect_interval = 1000;
	o->connect_timeout = 2000;
	o->reply_timeout = 60000;
	o->send_timeout = 60000;
	o->send_timeout_close = true;
	o->keepalive = true;
	o->keepalive_idle = 60;
	o->keepalive_interval = 10;
	o->keepalive_count = 6;
	o->nodelay = true;
	o->close_on_recv_error = true;
	o->reconnect_on_send_error = true;
	o->queue_timeout = 0;
	o->tls = NULL;
}

void mllp_pool_config_init(struct mllp_pool_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	mllp_conn_options_init(&cfg->conn);
	cfg->max_reply = MLLP_DEFAULT_MAX_FRAME;
	cfg->queue_capacity = 65536;
	cfg->ring_entries = 1024;
	cfg->recv_buffers = 256;
	cfg->recv_buffer_size = 16384;
	cfg->log_level = MLLP_LOG_ERROR;
	cfg->backoff_divisor = 1;
}

void mllp_send_options_init(struct mllp_send_options *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = MLLP_PAYLOAD_AUTO;
	o->block_timeout = MLLP_INFINITE;
}

/* ---- logging and telemetry ------------------------------------------ */

static void logf_(struct mllp_pool *p, enum mllp_log_level lvl, const char *fmt,
		  ...) __attribute__((format(printf, 3, 4)));

static void logf_(struct mllp_pool *p, enum mllp_log_level lvl, const char *fmt,
		  ...)
{
	if (lvl > p->cfg.log_level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (p->cfg.log)
		p->cfg.log(p->cfg.log_ctx, lvl, line);
	else
		fprintf(stderr, "[%s] mllp: %s\n", mllp_log_level_name(lvl),
			line);
}

static void emit(struct mllpi_conn *c, enum mllp_event_kind kind,
		 const struct mllp_error *err, uint64_t latency_us,
		 uint64_t delay_ms, bool has_verdict, enum mllp_verdict v,
		 bool orphan)
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

static void count_error(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	int reason = e->reason;
	STAT_ADD(ep, st_errors, 1);
	if (reason > MLLP_ERR_BASE && reason < 0) {
		STAT_ADD(ep, st_errors_os, 1);
	} else {
		int idx = MLLP_ERR_BASE - reason;
		if (idx >= 0 && idx < MLLP_STATS_MLLP_ERRORS)
			STAT_ADD(ep, st_errors_mllp[idx], 1);
	}
	mllpi_endpoint_note_error(ep, e);
}

/* ---- futures, manager side ------------------------------------------ */

/* Complete f. A message on a connection stops counting as in flight
 * first, so that the counters agree with the future as soon as its
 * waiter wakes up (conn_drop_cur does not count it again). */
static void publish(struct mllp_future *f)
{
	if (f->where == W_INFLIGHT && !f->left_flight) {
		f->left_flight = true;
		STAT_SUB(f->ep, st_in_flight, 1);
	}
	mllpi_future_publish(f);
}

/* Complete f with an error (once). written: all bytes written;
 * partial: some bytes written. */
static void fail_future(struct mllp_future *f, enum mllp_context ctx,
			int reason, const char *msg, bool written, bool partial)
{
	if (f->completed)
		return;
	struct mllp_result *r = &f->result;
	r->status = reason;
	if (msg)
		mllp_error_set(&r->error, ctx, reason, "%s", msg);
	else
		mllp_error_set(&r->error, ctx, reason, NULL);
	r->written = written;
	r->may_have_reached = written || partial;
	count_error(f->ep, &r->error);
	publish(f);
}

static void fail_future_err(struct mllp_future *f, const struct mllp_error *e,
			    enum mllp_context ctx, bool written, bool partial)
{
	fail_future(f, ctx, e->reason, e->message[0] ? e->message : NULL,
		    written, partial);
}

static int store_reply(struct mllp_future *f, const unsigned char *data,
		       size_t len)
{
	if (data == f->result.reply && len == f->result.reply_len)
		return 0; /* kept already (early reply, see handle_reply) */
	unsigned char *dst = f->reply_inline;
	if (len > sizeof(f->reply_inline)) {
		dst = f->alloc.alloc(f->alloc.ctx, len);
		if (!dst)
			return MLLP_ERR_NO_MEMORY;
		f->reply_heap = dst;
		f->reply_heap_size = len;
	}
	memcpy(dst, data, len);
	f->result.reply = dst;
	f->result.reply_len = len;
	return 0;
}

/* ---- endpoint queue (manager) ---------------------------------------- */

static void space_freed(struct mllpi_endpoint *ep, uint32_t n)
{
	if (!n)
		return;
	/* seq_cst: Dekker pair with a blocking producer (waiters++ then
	 * reserve attempt): either it sees the freed slot or we see it
	 * waiting and signal under the mutex. */
	uint32_t was =
	    atomic_fetch_sub_explicit(&ep->reserved, n, memory_order_seq_cst);
	/* Hysteresis: wake blocked producers only once the queue has drained
	 * to half its capacity (with a capacity of 1, when the slot is free),
	 * not for every freed slot: one wake-up per half queue instead of one
	 * per message. (A producer with a block_timeout re-tries the
	 * reservation when it times out, so room above the mark is still
	 * taken then.) */
	uint32_t cap = ep->pool->cfg.queue_capacity;
	uint32_t low = cap / 2 ? cap / 2 : cap - 1;
	if (was - n > low)
		return;
	if (atomic_load_explicit(&ep->space_waiters, memory_order_seq_cst)) {
		/* Empty critical section: a producer that saw the queue full
		 * under the mutex is inside pthread_cond_wait once we hold
		 * it, so the broadcast after unlocking reaches it; signalling
		 * outside the mutex spares the woken thread from blocking
		 * again on the mutex we still hold. */
		pthread_mutex_lock(&ep->mu);
		pthread_mutex_unlock(&ep->mu);
		pthread_cond_broadcast(&ep->cv);
	}
}

/* A message left the endpoint's queue for a connection: its slot is given
 * back at the end of the manager's turn (flush_moved, before wait()), with
 * every other slot freed that way in the turn, in one read-modify-write
 * of `reserved` instead of one per message. That line is shared with the
 * producers: each write of it by the manager makes their next reservation
 * miss. A message whose future completes in the same turn (a send that
 * fails at once) has its slot given back first (see conn_start_message):
 * a completed future's slot is always free. */
static void slot_moved(struct mllpi_endpoint *ep)
{
	struct mllp_pool *p = ep->pool;
	if (ep->moved++ == 0) {
		ep->moved_next = p->moved_list;
		p->moved_list = ep;
	}
}

static void flush_moved(struct mllp_pool *p)
{
	struct mllpi_endpoint *ep;
	while ((ep = p->moved_list) != NULL) {
		p->moved_list = ep->moved_next;
		uint32_t n = ep->moved;
		ep->moved = 0;
		space_freed(ep, n);
	}
}

/* Unlink a queued message; the caller gives its slot back. */
static void q_remove(struct mllpi_endpoint *ep, struct mllp_future *f)
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

static void q_append(struct mllpi_endpoint *ep, struct mllp_future *f)
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
	f->queued_us = ep->opts.queue_timeout > 0 ? ep->pool->loop.now_us : 0;
	STAT_ADD(ep, st_queued, 1);
}

static void q_arm_timer(struct mllpi_endpoint *ep)
{
	struct mllp_pool *p = ep->pool;
	if (ep->opts.queue_timeout > 0 && ep->qhead) {
		mllpi_timer_arm(
		    &p->loop.timers, &ep->qtimer,
		    mllpi_after_ms(ep->qhead->queued_us,
				   (uint64_t)ep->opts.queue_timeout));
	} else {
		mllpi_timer_disarm(&p->loop.timers, &ep->qtimer);
	}
}

static void get_last_error(struct mllpi_endpoint *ep, struct mllp_error *e)
{
	pthread_mutex_lock(&ep->mu);
	*e = ep->last_error;
	pthread_mutex_unlock(&ep->mu);
}

/* Fail every queued message (never written). */
static void q_fail_all(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	while (ep->qhead) {
		struct mllp_future *f = ep->qhead;
		q_remove(ep, f);
		space_freed(ep, 1);
		fail_future_err(f, e, MLLP_CTX_SEND, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
	}
	q_arm_timer(ep);
}

/* ---- sockets and connections ---------------------------------------- */

static void conn_start_connect(struct mllpi_conn *c);
static void conn_open_socket(struct mllpi_conn *c);
static void conn_dispatch(struct mllpi_conn *c);

static uint64_t tok(struct mllpi_sock *s, unsigned op)
{
	return (uint64_t)(uintptr_t)s | op;
}

static void publish_connected(struct mllpi_conn *c, bool up)
{
	bool was =
	    atomic_load_explicit(&c->connected_pub, memory_order_relaxed);
	if (was == up)
		return;
	/* release/relaxed: a status flag; no data hangs off it. */
	atomic_store_explicit(&c->connected_pub, up, memory_order_release);
	if (up)
		atomic_fetch_add_explicit(&c->ep->connected, 1,
					  memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&c->ep->connected, 1,
					  memory_order_relaxed);
}

/* Free a socket queued by sock_maybe_free (end of the manager's turn). */
static void sock_free(struct mllp_pool *p, struct mllpi_sock *s)
{
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		p->socks = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	if (s->tls)
		mllpi_tls_free(p, s);
	if (s->abortive) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(s->fd);
	struct mllpi_endpoint *ep = s->ep;
	p->alloc.free(p->alloc.ctx, s, sizeof(*s));
	p->live_socks--;
	mllpi_endpoint_sock_freed(p, ep);
}

/* Closed and nothing outstanding: freed at the end of this turn
 * (sock_reap), so its address cannot be handed to a new socket while a
 * completion handler up the stack still holds it. */
static void sock_maybe_free(struct mllp_pool *p, struct mllpi_sock *s)
{
	if (s->conn || s->pending > 0 || s->dead)
		return;
	s->dead = true;
	s->dead_next = p->dead;
	p->dead = s;
}

static void sock_reap(struct mllp_pool *p)
{
	while (p->dead) {
		struct mllpi_sock *s = p->dead;
		p->dead = s->dead_next;
		sock_free(p, s);
	}
}

/* Detach the connection's socket: cancel its operations; the fd is closed
 * once the last completion has come back. */
static void sock_detach(struct mllpi_conn *c, bool abortive)
{
	struct mllp_pool *p = c->ep->pool;
	struct mllpi_sock *s = c->sock;
	if (!s)
		return;
	if (s->tls)
		mllpi_tls_close(p, s, abortive); /* close_notify if orderly */
	c->sock = NULL;
	s->conn = NULL;
	s->abortive = abortive;
	if (s->pending > 0)
		p->loop.ops->cancel_fd(p->loop.be, s->fd, 0);
	else
		sock_maybe_free(p, s);
}

static void idle_remove(struct mllpi_conn *c)
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

static void set_usable(struct mllpi_conn *c, enum mllpi_cstate next)
{
	bool was = c->state != C_DOWN;
	bool now = next != C_DOWN;
	c->state = next;
	/* seq_cst: producers read `usable` (seq_cst) to fail fast while every
	 * connection is down; a plain counter, no data hangs off it. */
	if (was && !now)
		atomic_fetch_sub_explicit(&c->ep->usable, 1,
					  memory_order_seq_cst);
	else if (!was && now)
		atomic_fetch_add_explicit(&c->ep->usable, 1,
					  memory_order_seq_cst);
}

static void schedule_reconnect(struct mllpi_conn *c, uint64_t delay_ms)
{
	struct mllp_pool *p = c->ep->pool;
	c->timer.kind = T_BACKOFF;
	uint32_t div = p->cfg.backoff_divisor ? p->cfg.backoff_divisor : 1;
	mllpi_timer_arm(&p->loop.timers, &c->timer,
			mllpi_now_us() + mllpi_after_ms(0, delay_ms) / div);
}

/* The connection goes down: no message, no socket. When no connection of
 * the endpoint is usable and queue_timeout is 0, queued messages fail with
 * the last connect error — unless the caller reconnects at once
 * (fail_queue false): they then wait for that attempt's outcome. */
static void conn_down(struct mllpi_conn *c, bool fail_queue)
{
	struct mllpi_endpoint *ep = c->ep;
	idle_remove(c);
	publish_connected(c, false);
	mllpi_timer_disarm(&ep->pool->loop.timers, &c->timer);
	c->timer.kind = T_NONE;
	c->recv_armed = false;
	mllp_decoder_reset(&c->dec);
	mllpi_presend_forget(c);
	set_usable(c, C_DOWN);
	/* relaxed: only the manager writes usable. */
	if (fail_queue &&
	    atomic_load_explicit(&ep->usable, memory_order_relaxed) == 0 &&
	    ep->opts.queue_timeout == 0 && ep->qhead) {
		struct mllp_error e;
		get_last_error(ep, &e);
		q_fail_all(ep, &e);
	}
}

/* Release the message in flight (already completed or to be failed by the
 * caller first). */
static void conn_drop_cur(struct mllpi_conn *c)
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

/* An established connection closed because of e. Until a reconnect attempt
 * fails, a send that finds every connection down is told the link closed
 * (the reference's sending/closed), not a stale connect error. Recorded
 * before is_connected turns false, so whoever sees it false sees this. */
static void record_closed(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	pthread_mutex_lock(&ep->mu);
	if (e->reason == MLLP_ERR_CLOSED)
		ep->last_error = *e;
	else
		mllp_error_set(&ep->last_error, MLLP_CTX_RECEIVE,
			       MLLP_ERR_CLOSED, "connection closed (%s)",
			       e->message);
	ep->stat_error = ep->last_error;
	pthread_mutex_unlock(&ep->mu);
}

/* Close an established (or connecting) connection. The message in flight
 * is failed with e (context ctx). reconnect_now: connect again at once;
 * else after the backoff delay. */
static void conn_close(struct mllpi_conn *c, bool abortive,
		       enum mllp_context ctx, const struct mllp_error *e,
		       bool reconnect_now, bool emit_closed)
{
	struct mllp_pool *p = c->ep->pool;
	bool was_up = c->state == C_IDLE || c->state == C_BUSY;
	if (was_up && !p->stopping)
		record_closed(c->ep, e);
	/* Down before the future completes: its callback (or a waiter woken
	 * by it) must not read is_connected true for a closing socket. */
	publish_connected(c, false);
	bool had_msg = c->cur != NULL;
	if (c->cur) {
		/* A send still in flight may have been written by the
		 * kernel already: the receiver may have (part of) it. */
		fail_future_err(c->cur, e, ctx, c->send_done,
				(c->sent > 0 || c->send_in_flight) &&
				    !c->send_done);
		conn_drop_cur(c);
	}
	c->send_in_flight = false;
	sock_detach(c, abortive);
	/* A socket closed while idle before its first reply (a receiver that
	 * accepts and drops or resets every connection, or greets it with
	 * junk) is reconnected after the backoff delay, not at once: else
	 * such a receiver drives a tight connect/close loop (thousands per
	 * second). The delay is peeked, not consumed: the connect resets it
	 * anyway. With a message in flight the reconnect stays immediate
	 * (the next message should not fail fast; the loop is bounded by the
	 * messages). */
	bool defer = reconnect_now && !c->proven && !had_msg && !p->stopping;
	if (defer)
		reconnect_now = false;
	c->proven = false;
	conn_down(c, !reconnect_now || p->stopping);
	if (p->stopping)
		return;
	uint64_t delay = reconnect_now ? 0 : mllp_backoff_peek(&c->backoff);
	if (was_up && emit_closed)
		emit(c, MLLP_EV_CONNECTION_CLOSED, e, 0, delay, false, 0,
		     false);
	if (reconnect_now) {
		conn_start_connect(c);
	} else if (defer) {
		schedule_reconnect(c, delay);
	} else {
		schedule_reconnect(c, mllp_backoff_fail(&c->backoff));
	}
}

static void connect_failed_err(struct mllpi_conn *c,
			       const struct mllp_error *err);

/* " ([::1]:2575)": the address tried, for a log line naming the host, so
 * the attempts on each resolved address can be told apart; empty when the
 * host is that address already. */
static void addr_note(const struct mllpi_endpoint *ep, int idx, char *buf,
		      size_t cap)
{
	char a[MLLPI_ADDR_TEXT_MAX];
	uint16_t port;
	buf[0] = 0;
	if (idx < 0 || idx >= ep->naddrs)
		return;
	mllpi_addr_text(&ep->addrs[idx], a, sizeof(a), &port);
	if (strcmp(a, ep->host) == 0)
		return;
	mllpi_addr_port_text(&ep->addrs[idx], a, sizeof(a));
	snprintf(buf, cap, " (%s)", a);
}

static void connect_failed(struct mllpi_conn *c, int reason)
{
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_CONNECT, reason, NULL);
	connect_failed_err(c, &e);
}

/* A connect attempt failed with err (context connect, or tls for a failed
 * handshake): it becomes the endpoint's last connect error. */
static void connect_failed_err(struct mllpi_conn *c,
			       const struct mllp_error *err)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e = *err;
	pthread_mutex_lock(&ep->mu);
	ep->last_error = e;
	ep->stat_error = e;
	pthread_mutex_unlock(&ep->mu);
	STAT_ADD(ep, st_connect_failures, 1);
	char at[MLLPI_ADDR_TEXT_MAX + 3];
	addr_note(ep, c->addr_idx, at, sizeof(at));
	logf_(p, MLLP_LOG_ERROR, "Error connecting to %s:%u%s => %s", ep->host,
	      ep->port, at, e.message);
	sock_detach(c, false);
	if (ep->naddrs > 1)
		c->addr_idx = (c->addr_idx + 1) % ep->naddrs;
	if (ep->naddrs > 1 && ++c->addr_tries < ep->naddrs && !p->stopping) {
		/* Try the next resolved address at once (e.g. ::1 refused,
		 * then 127.0.0.1); one failure event per round. */
		conn_open_socket(c);
		return;
	}
	c->addr_tries = 0;
	conn_down(c, true);
	/* After conn_down: a client_start waiting for this sees the
	 * connection down (usable already decremented). */
	if (!c->first_attempt_done) {
		pthread_mutex_lock(&ep->mu);
		c->first_attempt_done = true;
		ep->first_done++;
		pthread_cond_broadcast(&ep->cv);
		pthread_mutex_unlock(&ep->mu);
	}
	if (p->stopping)
		return;
	uint64_t delay = mllp_backoff_fail(&c->backoff);
	emit(c, MLLP_EV_CONNECTION_FAILURE, &e, 0, delay, false, 0, false);
	schedule_reconnect(c, delay);
}

static void set_sockopts(struct mllpi_conn *c, int fd)
{
	const struct mllp_conn_options *o = &c->ep->opts;
	int one = 1;
	if (o->nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->keepalive) {
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (o->keepalive_idle > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
				   &o->keepalive_idle, sizeof(int));
		if (o->keepalive_interval > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
				   &o->keepalive_interval, sizeof(int));
		if (o->keepalive_count > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
				   &o->keepalive_count, sizeof(int));
	}
}

static void conn_start_connect(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (p->stopping || (c->state != C_DOWN && c->attempts > 0))
		return;
	mllpi_timer_disarm(&p->loop.timers, &c->timer);
	if (c->attempts++ > 0)
		STAT_ADD(ep, st_reconnects, 1);
	set_usable(c, C_CONNECTING);
	conn_open_socket(c);
}

/* Open a socket and submit the connect to the current address (state is
 * already C_CONNECTING). */
static void conn_open_socket(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	const struct sockaddr_storage *sa = &ep->addrs[c->addr_idx];
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	if (p->loop.ops->nonblocking_sockets)
		type |= SOCK_NONBLOCK;
	int fd = socket(sa->ss_family, type, 0);
	if (fd < 0) {
		connect_failed(c, -errno);
		return;
	}
	set_sockopts(c, fd);
	struct mllpi_sock *s = p->alloc.alloc(p->alloc.ctx, sizeof(*s));
	if (!s) {
		close(fd);
		connect_failed(c, MLLP_ERR_NO_MEMORY);
		return;
	}
	memset(s, 0, sizeof(*s));
	s->conn = c;
	s->fd = fd;
	s->ep = ep;
	s->all_next = p->socks;
	if (p->socks)
		p->socks->all_prev = s;
	p->socks = s;
	ep->socks++;
	p->live_socks++;
	c->sock = s;
	int rc = p->loop.ops->connect(
	    p->loop.be, fd, (const struct sockaddr *)sa,
	    ep->addrlens[c->addr_idx], tok(s, TOK_CONNECT));
	if (rc < 0) {
		connect_failed(c, rc);
		return;
	}
	s->pending++;
	c->connect_start_us = mllpi_now_us();
	c->timer.kind = T_CONNECT;
	mllpi_timer_arm(
	    &p->loop.timers, &c->timer,
	    mllpi_after_ms(c->connect_start_us, ep->opts.connect_timeout));
}

static void conn_arm_recv(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->recv_armed || !c->sock)
		return;
	if (p->loop.ops->recv(p->loop.be, c->sock->fd,
			      tok(c->sock, TOK_RECV)) == 0) {
		c->sock->pending++;
		c->recv_armed = true;
	}
}

static void on_connected(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (ep->tls_ctx && !c->sock->tls) {
		/* TCP is up: the TLS handshake comes first; it calls back
		 * here (mllpi_conn_tls_up) when it is complete. */
		mllpi_tls_start(c);
		return;
	}
	mllpi_timer_disarm(&p->loop.timers, &c->timer);
	c->timer.kind = T_NONE;
	c->addr_tries = 0;
	mllp_backoff_reset(&c->backoff);
	set_usable(c, C_IDLE);
	publish_connected(c, true);
	pthread_mutex_lock(&ep->mu);
	if (!c->first_attempt_done) {
		c->first_attempt_done = true;
		ep->first_done++;
		pthread_cond_broadcast(&ep->cv);
	}
	pthread_mutex_unlock(&ep->mu);
	STAT_ADD(ep, st_connects, 1);
	emit(c, MLLP_EV_CONNECTION_SUCCESS, NULL,
	     mllpi_now_us() - c->connect_start_us, 0, false, 0, false);
	mllp_decoder_reset(&c->dec);
	conn_arm_recv(c);
	conn_dispatch(c);
}

static int submit_send(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	if (c->sock->tls)
		return mllpi_tls_submit_send(c);
	size_t skip = c->sent;
	int n = 0;
	for (int i = 0; i < c->iov_full_n; i++) {
		size_t l = c->iov_full[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		c->iov[n].iov_base = (char *)c->iov_full[i].iov_base + skip;
		c->iov[n].iov_len = l - skip;
		skip = 0;
		n++;
	}
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = (size_t)n;
	int rc = p->loop.ops->sendmsg(p->loop.be, c->sock->fd, &c->msg,
				      tok(c->sock, TOK_SEND));
	if (rc == 0) {
		c->sock->pending++;
		c->send_in_flight = true;
	}
	return rc;
}

static const unsigned char sb_byte[1] = {MLLP_SB};
static const unsigned char trailer[2] = {MLLP_EB, MLLP_CR};

static void conn_send_failed(struct mllpi_conn *c, int reason, const char *why)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e;
	if (why)
		mllp_error_set(&e, MLLP_CTX_SEND, reason, "%s", why);
	else
		mllp_error_set(&e, MLLP_CTX_SEND, reason, NULL);
	logf_(p, MLLP_LOG_ERROR, "Error sending to %s:%u => %s", ep->host,
	      ep->port, e.message);
	emit(c, MLLP_EV_SEND_ERROR, &e, 0, 0, false, 0, false);
	conn_close(c, true, MLLP_CTX_SEND, &e, ep->opts.reconnect_on_send_error,
		   true);
}

/* Arm the connection's send or reply timer lazily: c->due_us holds the
 * real deadline; a heap entry due at or before it is left as it is (it
 * re-arms itself to due_us when it expires early, see on_timer), so a
 * message costs no heap operation in steady state. */
static void conn_timer_lazy(struct mllp_pool *p, struct mllpi_conn *c,
			    enum mllpi_tkind kind, uint64_t due)
{
	c->timer.kind = kind;
	c->due_us = due;
	if (!c->timer.index || c->timer.deadline_us > due)
		mllpi_timer_arm(&p->loop.timers, &c->timer, due);
}

/* Start sending f on idle connection c. */
static void conn_start_message(struct mllpi_conn *c, struct mllp_future *f)
{
	struct mllp_pool *p = c->ep->pool;
	idle_remove(c);
	c->state = C_BUSY;
	c->cur = f;
	f->where = W_INFLIGHT;
	STAT_ADD(c->ep, st_in_flight, 1);
	c->sent = 0;
	c->send_done = false;
	c->reply_done = false;
	c->early_reply = false;
	if (f->framed) {
		c->iov_full[0].iov_base = (void *)f->payload;
		c->iov_full[0].iov_len = f->len;
		c->iov_full_n = 1;
	} else {
		c->iov_full[0].iov_base = (void *)sb_byte;
		c->iov_full[0].iov_len = 1;
		c->iov_full[1].iov_base = (void *)f->payload;
		c->iov_full[1].iov_len = f->len;
		c->iov_full[2].iov_base = (void *)trailer;
		c->iov_full[2].iov_len = 2;
		c->iov_full_n = 3;
	}
	c->total = f->framed ? f->len : f->len + 3;
	c->send_start_us = p->loop.now_us;
	/* Keep a frame in progress when replies are correlated: it is a late
	 * reply to an earlier message (see on_timer, T_REPLY). */
	if (c->ep->opts.close_on_recv_error ||
	    !mllp_decoder_in_frame(&c->dec)) {
		mllp_decoder_reset(&c->dec);
		mllpi_presend_forget(c);
	}
	int rc = submit_send(c);
	if (rc < 0) {
		flush_moved(p); /* this future's slot first (slot_moved) */
		conn_send_failed(c, rc, NULL);
		return;
	}
	mllpi_presend_start(c);
	int64_t st = c->ep->opts.send_timeout;
	if (st >= 0)
		conn_timer_lazy(p, c, T_SEND,
				mllpi_after_ms(c->send_start_us, (uint64_t)st));
}

/* An idle connection takes the next queued message, or goes idle. */
static void conn_dispatch(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	if (c->state != C_IDLE || ep->pool->stopping)
		return;
	if (ep->qhead) {
		struct mllp_future *f = ep->qhead;
		q_remove(ep, f);
		slot_moved(ep);
		q_arm_timer(ep);
		conn_start_message(c, f);
		return;
	}
	if (!c->in_idle) {
		c->idle_next = ep->idle;
		ep->idle = c;
		c->in_idle = true;
	}
}

/* The message in flight is finished (completed); go idle when the send
 * has completed too. */
static void conn_finish(struct mllpi_conn *c)
{
	if (c->send_in_flight) {
		c->reply_done = true; /* finish when the send completes */
		return;
	}
	/* Disarmed lazily: the heap entry stays (the next message's timer
	 * reuses it; if it expires first, on_timer drops it as T_NONE). */
	c->timer.kind = T_NONE;
	conn_drop_cur(c);
	c->state = C_IDLE;
	conn_dispatch(c);
}

/* A receive error; note (may be NULL) is added to the reason's text. */
static void recv_error_note(struct mllpi_conn *c, int reason, const char *note,
			    bool telemetry_ev, bool may_close)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e;
	if (note)
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason, "%s %s",
			       mllp_strerror(reason), note);
	else
		mllp_error_set(&e, MLLP_CTX_RECEIVE, reason, NULL);
	logf_(p, MLLP_LOG_ERROR, "Error receiving from %s:%u => %s", ep->host,
	      ep->port, e.message);
	if (telemetry_ev)
		emit(c, MLLP_EV_INVALID_RESPONSE, &e,
		     mllpi_now_us() - c->send_start_us, 0, false, 0,
		     c->cur ? c->cur->completed : true);
	if (may_close && ep->opts.close_on_recv_error) {
		conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		return;
	}
	/* Keep the socket: fail the message, drop buffered bytes. */
	mllp_decoder_reset(&c->dec);
	mllpi_presend_forget(c);
	if (c->cur) {
		fail_future_err(c->cur, &e, MLLP_CTX_RECEIVE, c->send_done,
				c->sent > 0 || c->send_in_flight);
		conn_finish(c);
	}
}

static void recv_error(struct mllpi_conn *c, int reason, bool telemetry_ev,
		       bool may_close)
{
	recv_error_note(c, reason, NULL, telemetry_ev, may_close);
}

/* A reply that starts as a TLS record does (alert 0x15 or handshake 0x16,
 * then version major 3): a plaintext client talking to a TLS port. */
static const char *tls_reply_note(const unsigned char *data, size_t len)
{
	if (len >= 2 && (data[0] == 0x15 || data[0] == 0x16) && data[1] == 0x03)
		return "(the peer answered with TLS: is it a TLS port?)";
	return NULL;
}

/* With close_on_recv_error false, replies are correlated by MSA-2: a
 * frame whose MSA-2 is not the MSH-10 of the message in flight is a late
 * reply to an earlier message (after its timeout): dropped and reported.
 * Note: in this mode a receiver that answers with a wrong MSA-2 makes the
 * message end in a reply timeout instead of bad_message_control_id. */
static bool stale_reply(struct mllpi_conn *c, const unsigned char *data,
			size_t len)
{
	struct mllp_future *f = c->cur;
	if (!f->hl7 || c->ep->opts.close_on_recv_error)
		return false;
	enum mllp_verdict v = mllp_ack_verify_id(
	    f->control_id, f->control_id_len, data, len, NULL, NULL, 0);
	if (v != MLLP_BAD_MESSAGE_CONTROL_ID)
		return false;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_UNSOLICITED,
		       "reply does not match the message in flight; dropped");
	emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, true, v, true);
	return true;
}

/* A complete reply frame for c->cur. */
static void handle_reply(struct mllpi_conn *c, const unsigned char *data,
			 size_t len)
{
	struct mllp_future *f = c->cur;
	struct mllp_pool *p = c->ep->pool;
	if (!c->send_done && !f->completed) {
		/* The receiver answered before our last byte was written.
		 * As in the reference (which writes, then reads), the reply
		 * is taken once the send has completed: kept until then, and
		 * dropped with the message if the send fails. So `written`
		 * and the sent counter always agree. */
		if (store_reply(f, data, len) != 0) {
			fail_future(f, MLLP_CTX_RECEIVE, MLLP_ERR_NO_MEMORY,
				    NULL, false, true);
			conn_finish(c);
			return;
		}
		c->early_reply = true;
		return;
	}
	uint64_t lat = p->loop.now_us - c->send_start_us;
	mllpi_latency_add(&p->lat, lat);
	c->proven = true;
	if (!f->hl7) {
		STAT_ADD(c->ep, st_raw, 1);
		if (!f->completed) {
			f->result.status = 0;
			f->result.written = true;
			f->result.latency_us = lat;
			if (store_reply(f, data, len) != 0) {
				fail_future(f, MLLP_CTX_RECEIVE,
					    MLLP_ERR_NO_MEMORY, NULL, true,
					    true);
			} else {
				publish(f);
			}
		}
		emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, false, 0,
		     f->completed && f->async);
		conn_finish(c);
		return;
	}
	struct mllp_ack ack;
	char why[160];
	why[0] = 0;
	enum mllp_verdict v =
	    mllp_ack_verify_id(f->control_id, f->control_id_len, data, len,
			       &ack, why, sizeof(why));
	STAT_ADD(c->ep, st_acked[v], 1);
	if (!f->completed) {
		struct mllp_result *r = &f->result;
		r->status = 0;
		r->written = true;
		r->latency_us = lat;
		r->has_verdict = true;
		r->verdict = v;
		/* the text only: the rest is zero already (op_send) */
		memcpy(r->why, why, strnlen(why, sizeof(r->why) - 1));
		if (store_reply(f, data, len) != 0) {
			fail_future(f, MLLP_CTX_RECEIVE, MLLP_ERR_NO_MEMORY,
				    NULL, true, true);
		} else {
			/* Re-base the ack views onto the future's copy. */
			const char *base = (const char *)data;
			const char *nb = (const char *)r->reply;
			struct mllp_str *views[] = {&ack.code, &ack.control_id,
						    &ack.text, &ack.err,
						    &ack.message};
			for (size_t i = 0; i < 5; i++) {
				if (views[i]->ptr && views[i]->ptr >= base &&
				    views[i]->ptr <= base + len)
					views[i]->ptr =
					    nb + (views[i]->ptr - base);
				else if (views[i]->len == 0)
					views[i]->ptr = NULL;
			}
			r->ack = ack;
			publish(f);
		}
	}
	emit(c, MLLP_EV_RECEIVE_VALID, NULL, lat, 0, true, v,
	     f->completed && (f->async || f->result.status != 0));
	conn_finish(c);
}

static void on_recv_data(struct mllpi_conn *c, const unsigned char *data,
			 size_t len)
{
	struct mllpi_endpoint *ep = c->ep;
	/* The first `early` bytes arrived before the message in flight was
	 * handed to the kernel: no frame holding one can be its reply. */
	size_t early = mllpi_presend_take(c, len);
	size_t off = 0;
	while (len > 0 && c->sock) {
		size_t used = 0;
		struct mllp_decoded ev;
		if (off < early)
			c->presend_taint = true;
		int rc = mllp_decoder_feed(&c->dec, data, len, &used, &ev);
		if (rc < 0 && !ep->opts.close_on_recv_error) {
			/* An oversize reply (or no memory for it) leaves the
			 * rest of the frame in the stream: its tail would be
			 * taken for junk before the next reply. No way to
			 * resynchronise: close whatever close_on_recv_error. */
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE, rc, NULL);
			logf_(ep->pool, MLLP_LOG_ERROR,
			      "Error receiving from %s:%u => %s", ep->host,
			      ep->port, e.message);
			emit(c, MLLP_EV_INVALID_RESPONSE, &e,
			     mllpi_now_us() - c->send_start_us, 0, false, 0,
			     c->cur ? c->cur->completed : true);
			conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
			return;
		}
		if (rc < 0) {
			recv_error(c, rc, true, true);
			return;
		}
		data += used;
		len -= used;
		off += used;
		if (ev.kind == MLLP_DECODE_NEED_MORE)
			break;
		bool pre = c->presend_taint;
		c->presend_taint = false;
		if (ev.kind == MLLP_DECODE_JUNK) {
			if (c->cur && !pre) {
				/* The reply does not start with SB. */
				recv_error_note(c, MLLP_ERR_INVALID_HEADER,
						tls_reply_note(ev.data, ev.len),
						true, true);
				return;
			}
			/* Unsolicited bytes while idle: reported (orphan
			 * invalid_response), then closed or dropped. */
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE,
				       MLLP_ERR_UNSOLICITED, NULL);
			emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false, 0,
			     true);
			if (ep->opts.close_on_recv_error) {
				logf_(ep->pool, MLLP_LOG_ERROR,
				      "Error receiving from %s:%u => %s",
				      ep->host, ep->port, e.message);
				conn_close(c, true, MLLP_CTX_RECEIVE, &e, true,
					   true);
				return;
			}
			continue;
		}
		/* A complete frame: unsolicited when no message is in flight,
		 * the one in flight has its reply already, or the frame came
		 * before the message was sent. */
		if (!c->cur || pre || c->early_reply || c->reply_done) {
			struct mllp_error e;
			if (c->cur && pre)
				mllp_error_set(&e, MLLP_CTX_RECEIVE,
					       MLLP_ERR_UNSOLICITED,
					       "reply received before the "
					       "message was sent");
			else
				mllp_error_set(&e, MLLP_CTX_RECEIVE,
					       MLLP_ERR_UNSOLICITED, NULL);
			emit(c, MLLP_EV_INVALID_RESPONSE, &e, 0, 0, false, 0,
			     true);
			if (ep->opts.close_on_recv_error) {
				conn_close(c, true, MLLP_CTX_RECEIVE, &e, true,
					   true);
				return;
			}
			continue;
		}
		if (stale_reply(c, ev.data, ev.len))
			continue;
		if (len > 0) {
			/* Bytes after the trailer in the same packet. */
			recv_error(c, MLLP_ERR_DATA_AFTER_TRAILER, true, true);
			return;
		}
		handle_reply(c, ev.data, ev.len);
	}
}

/* ---- completions ------------------------------------------------------ */

static void on_cqe(struct mllp_pool *p, const struct mllpi_cqe *cq)
{
	struct mllpi_sock *s =
	    (struct mllpi_sock *)(uintptr_t)(cq->token & ~(uint64_t)TOK_MASK);
	unsigned op = (unsigned)(cq->token & TOK_MASK);
	bool ends = op != TOK_RECV || !cq->more;
	if (ends)
		s->pending--;
	struct mllpi_conn *c = s->conn;
	if (!c) {
		/* Stale: the socket is being closed. */
		sock_maybe_free(p, s);
		return;
	}
	struct mllpi_cqe tc;
	if (op == MLLPI_TOK_TLS_SEND) {
		/* TLS ciphertext written (tls_conn.c): the flight goes on, or
		 * a message's bytes are through: then TOK_SEND, with the
		 * plaintext count. */
		tc = *cq;
		if (!mllpi_tls_on_send(c, cq->res, &tc.res))
			return;
		cq = &tc;
		op = TOK_SEND;
	}
	switch (op) {
	case TOK_CONNECT:
		if (cq->res == 0) {
			on_connected(c);
		} else {
			int reason =
			    cq->res == -ECANCELED ? -ETIMEDOUT : cq->res;
			connect_failed(c, reason);
		}
		break;
	case TOK_SEND:
		c->send_in_flight = false;
		if (cq->res < 0) {
			conn_send_failed(c, cq->res, NULL);
			break;
		}
		c->sent += (size_t)cq->res;
		if (c->sent < c->total) {
			int rc = submit_send(c);
			if (rc < 0)
				conn_send_failed(c, rc, NULL);
			break;
		}
		c->send_done = true;
		STAT_ADD(c->ep, st_sent, 1);
		if (c->cur && c->cur->async && !c->cur->completed) {
			c->cur->result.status = 0;
			c->cur->result.written = true;
			publish(c->cur);
		}
		if (c->early_reply && c->cur) {
			/* The reply that came first (see handle_reply). */
			c->early_reply = false;
			handle_reply(c, c->cur->result.reply,
				     c->cur->result.reply_len);
			break;
		}
		if (c->reply_done) {
			conn_finish(c);
			break;
		}
		{
			int64_t rt = c->cur ? c->cur->reply_timeout : 0;
			if (rt == 0)
				rt = c->ep->opts.reply_timeout;
			if (rt >= 0) {
				conn_timer_lazy(p, c, T_REPLY,
						mllpi_after_ms(mllpi_now_us(),
							       (uint64_t)rt));
			} else {
				mllpi_timer_disarm(&p->loop.timers, &c->timer);
				c->timer.kind = T_NONE;
			}
		}
		break;
	case TOK_RECV:
		if (cq->res > 0 && cq->data) {
			if (s->tls)
				mllpi_tls_on_recv(c, cq->data, (size_t)cq->res);
			else
				on_recv_data(c, cq->data, (size_t)cq->res);
		}
		if (c->sock != s)
			break; /* closed meanwhile */
		if (!cq->more)
			c->recv_armed = false;
		if (cq->res <= 0 && cq->res != -ENOBUFS &&
		    mllpi_tls_handshaking(s)) {
			mllpi_tls_on_eof(c, cq->res);
			break;
		}
		if (cq->res == 0) {
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_CLOSED,
				       NULL);
			if (c->cur)
				logf_(p, MLLP_LOG_ERROR,
				      "Error receiving from %s:%u => %s",
				      c->ep->host, c->ep->port, e.message);
			conn_close(c, false, MLLP_CTX_RECEIVE, &e, true, true);
		} else if (cq->res < 0 && cq->res != -ENOBUFS) {
			struct mllp_error e;
			mllp_error_set(&e, MLLP_CTX_RECEIVE, cq->res, NULL);
			logf_(p, MLLP_LOG_ERROR,
			      "Error receiving from %s:%u => %s", c->ep->host,
			      c->ep->port, e.message);
			conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		} else if (!cq->more) {
			conn_arm_recv(c); /* -ENOBUFS or end: re-arm */
		}
		break;
	default:
		break;
	}
}

static void on_timer(struct mllp_pool *p, struct mllpi_timer *t)
{
	if (t->kind == T_QUEUE) {
		struct mllpi_endpoint *ep = t->owner;
		uint64_t now = mllpi_now_us();
		struct mllp_error e;
		get_last_error(ep, &e);
		/* relaxed: manager-written status count. */
		if (atomic_load_explicit(&ep->connected, memory_order_relaxed) >
		    0)
			mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_TIMEOUT,
				       "timed out waiting for a connection");
		while (ep->qhead &&
		       mllpi_after_ms(ep->qhead->queued_us,
				      (uint64_t)ep->opts.queue_timeout) <=
			   now) {
			struct mllp_future *f = ep->qhead;
			q_remove(ep, f);
			space_freed(ep, 1);
			fail_future_err(f, &e, MLLP_CTX_SEND, false, false);
			f->where = W_DONE;
			mllpi_future_release(f);
		}
		q_arm_timer(ep);
		return;
	}
	struct mllpi_conn *c = t->owner;
	struct mllp_error e;
	int kind = t->kind;
	if ((kind == T_SEND || kind == T_REPLY) && c->due_us > t->deadline_us) {
		/* Lazy entry (conn_timer_lazy): not due yet. */
		mllpi_timer_arm(&p->loop.timers, t, c->due_us);
		return;
	}
	t->kind = T_NONE;
	switch (kind) {
	case T_BACKOFF:
		conn_start_connect(c);
		break;
	case T_CONNECT:
		if (c->sock && c->sock->tls) {
			mllpi_tls_timeout(c); /* the handshake's timeout */
			break;
		}
		/* Cancel the connect; its completion (-ECANCELED) reports
		 * the failure as a timeout. */
		if (c->sock)
			p->loop.ops->cancel_fd(p->loop.be, c->sock->fd, 0);
		break;
	case T_SEND:
		mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_TIMEOUT, NULL);
		logf_(p, MLLP_LOG_ERROR, "Error sending to %s:%u => %s",
		      c->ep->host, c->ep->port, e.message);
		emit(c, MLLP_EV_SEND_ERROR, &e, 0, 0, false, 0, false);
		conn_close(c, true, MLLP_CTX_SEND, &e,
			   c->ep->opts.reconnect_on_send_error, true);
		break;
	case T_REPLY:
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, NULL);
		logf_(p, MLLP_LOG_ERROR, "Error receiving from %s:%u => %s",
		      c->ep->host, c->ep->port, e.message);
		emit(c, MLLP_EV_RECEIVE_TIMEOUT, &e,
		     mllpi_now_us() - c->send_start_us, 0, false, 0, false);
		if (c->ep->opts.close_on_recv_error) {
			conn_close(c, true, MLLP_CTX_RECEIVE, &e, true, true);
		} else {
			/* The decoder is kept: a late reply still arriving
			 * completes and is dropped by MSA-2 correlation
			 * (stale_reply) instead of its tail being taken for
			 * junk before the next message's reply. */
			if (c->cur)
				fail_future_err(c->cur, &e, MLLP_CTX_RECEIVE,
						true, true);
			conn_finish(c);
		}
		break;
	default:
		break;
	}
}

/* ---- operations from producers -------------------------------------- */

static void op_send(struct mllp_pool *p, struct mllp_future *f)
{
	struct mllpi_endpoint *ep = f->ep;
	/* The manager's part of the future (see mllp_pool_send). */
	f->where = W_NEW;
	f->completed = false;
	f->queued_us = 0;
	f->qprev = f->qnext = NULL;
	memset(&f->result, 0, sizeof(f->result));
	f->reply_heap = NULL;
	f->reply_heap_size = 0;
	f->left_flight = false;
	f->taken = true;
	if (!p->stopping && !ep->retired && f->cancel_first) {
		/* Its cancel came first (op_cancel): never sent. */
		space_freed(ep, 1);
		fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL, false,
			    false);
		f->where = W_DONE;
		mllpi_future_release(f);
		return;
	}
	if (p->stopping || ep->retired) {
		/* retired: sent from a callback just before the removal */
		space_freed(ep, 1);
		if (p->fatal.reason && !ep->retired)
			fail_future_err(f, &p->fatal, MLLP_CTX_SEND, false,
					false);
		else
			fail_future(f, MLLP_CTX_SEND,
				    ep->retired ? MLLP_ERR_ENDPOINT_REMOVED
						: MLLP_ERR_STOPPED,
				    NULL, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
		return;
	}
	if (ep->idle) {
		struct mllpi_conn *c = ep->idle;
		slot_moved(ep);
		conn_start_message(c, f);
		return;
	}
	/* relaxed: only the manager writes usable. */
	if (atomic_load_explicit(&ep->usable, memory_order_relaxed) == 0 &&
	    ep->opts.queue_timeout == 0) {
		struct mllp_error e;
		get_last_error(ep, &e);
		space_freed(ep, 1);
		fail_future_err(f, &e, MLLP_CTX_SEND, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
		for (uint32_t i = 0; i < ep->nconns; i++) {
			mllp_backoff_reset(&ep->conns[i].backoff);
			conn_start_connect(&ep->conns[i]);
		}
		return;
	}
	/* Not counted in space_freed: the slot stays taken while queued. */
	q_append(ep, f);
	if (ep->qhead == f)
		q_arm_timer(ep);
}

static void op_cancel(struct mllp_pool *p, struct mllp_future *f)
{
	(void)p;
	if (!f->taken) {
		/* Before its send (not possible through the one FIFO, kept
		 * safe anyway): the manager's fields are not set yet; the
		 * send is failed as canceled when it comes. */
		f->cancel_first = true;
		mllpi_future_release(f); /* the cancel op's reference */
		return;
	}
	if (f->where == W_QUEUED) {
		q_remove(f->ep, f);
		space_freed(f->ep, 1);
		q_arm_timer(f->ep);
		fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL, false,
			    false);
		f->where = W_DONE;
		mllpi_future_release(f); /* the engine's reference */
	} else if (f->where == W_INFLIGHT && !f->completed) {
		struct mllpi_conn *c = NULL;
		for (uint32_t i = 0; i < f->ep->nconns; i++)
			if (f->ep->conns[i].cur == f)
				c = &f->ep->conns[i];
		fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
			    c ? c->send_done : false,
			    c ? c->sent > 0 || c->send_in_flight : false);
	}
	mllpi_future_release(f); /* the cancel op's reference */
}

static void op_add(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	if (ep->retired)
		return; /* removed before its add node came (endpoint.h) */
	ep->added = true;
	/* One timer per connection plus the queue timer: reserve so that
	 * arming never fails. */
	p->timer_slots += ep->nconns + 1;
	if (mllpi_timers_reserve(&p->loop.timers, p->timer_slots) != 0)
		logf_(p, MLLP_LOG_ERROR, "out of memory for timers");
	if (p->stopping)
		return;
	/* Connections start in C_CONNECTING (counted in usable since the
	 * endpoint was added, so early sends queue instead of failing). */
	for (uint32_t i = 0; i < ep->nconns; i++)
		conn_start_connect(&ep->conns[i]);
}

static void op_kick(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	/* seq_cst: de-duplication flag; cleared before acting so a later
	 * kick is not lost. */
	atomic_store_explicit(&ep->kick_pending, false, memory_order_seq_cst);
	if (ep->retired)
		return;
	for (uint32_t i = 0; i < ep->nconns; i++) {
		if (ep->conns[i].state == C_DOWN) {
			mllp_backoff_reset(&ep->conns[i].backoff);
			conn_start_connect(&ep->conns[i]);
		}
	}
}

static void op_reconnect(struct mllp_pool *p, struct mllpi_endpoint *ep)
{
	(void)p;
	/* seq_cst: cleared before acting, so a request made meanwhile
	 * pushes the node again and is not lost. */
	atomic_store_explicit(&ep->reconnect_pending, false,
			      memory_order_seq_cst);
	if (ep->retired)
		return;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_CLOSED,
		       "connection closed by reconnect");
	for (uint32_t i = 0; i < ep->nconns; i++) {
		struct mllpi_conn *c = &ep->conns[i];
		mllp_backoff_reset(&c->backoff);
		if (c->state == C_DOWN) {
			conn_start_connect(c);
		} else {
			c->proven = true; /* asked for: reconnect at once */
			conn_close(c, false, MLLP_CTX_SEND, &e, true, true);
		}
	}
}

void mllpi_endpoint_close_all(struct mllpi_endpoint *ep,
			      const struct mllp_error *unsent,
			      const struct mllp_error *sent)
{
	struct mllp_pool *p = ep->pool;
	flush_moved(p); /* ep leaves p->moved_list */
	q_fail_all(ep, unsent);
	mllpi_timer_disarm(&p->loop.timers, &ep->qtimer);
	for (uint32_t j = 0; j < ep->nconns; j++) {
		struct mllpi_conn *c = &ep->conns[j];
		publish_connected(c, false); /* before callbacks */
		if (c->cur) {
			bool partial = c->sent > 0 || c->send_in_flight;
			fail_future_err(c->cur,
					c->send_done || partial ? sent : unsent,
					MLLP_CTX_SEND, c->send_done, partial);
			conn_drop_cur(c);
		}
		c->send_in_flight = false;
		sock_detach(c, false);
		if (c->state != C_DOWN)
			conn_down(c, true);
		mllpi_timer_disarm(&p->loop.timers, &c->timer);
	}
}

static void op_stop(struct mllp_pool *p)
{
	p->stopping = true;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_SEND, MLLP_ERR_STOPPED, NULL);
	struct mllpi_endpoint *eps[MLLPI_MAX_ENDPOINTS];
	uint32_t n = mllpi_endpoints_snapshot(p, eps);
	for (uint32_t i = 0; i < n; i++)
		mllpi_endpoint_close_all(eps[i], &e, &e);
}

static void handle_node(struct mllp_pool *p, struct mllpi_node *n)
{
	switch (n->kind) {
	case MLLPI_OP_SEND:
		op_send(p, MLLPI_CONTAINER_OF(n, struct mllp_future, node));
		break;
	case MLLPI_OP_CANCEL:
		op_cancel(
		    p, MLLPI_CONTAINER_OF(n, struct mllp_future, cancel_node));
		break;
	case MLLPI_OP_ADD:
		op_add(p,
		       MLLPI_CONTAINER_OF(n, struct mllpi_endpoint, add_node));
		break;
	case MLLPI_OP_KICK:
		op_kick(
		    p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint, kick_node));
		break;
	case MLLPI_OP_RECONNECT:
		op_reconnect(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						   reconnect_node));
		break;
	case MLLPI_OP_STOP:
		op_stop(p);
		break;
	case MLLPI_OP_REMOVE:
		mllpi_op_remove(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						      remove_node));
		break;
	case MLLPI_OP_REMOVED:
		mllpi_op_removed(p, MLLPI_CONTAINER_OF(n, struct mllpi_endpoint,
						       removed_node));
		break;
	default:
		break;
	}
}

bool mllpi_pool_on_manager(const struct mllp_pool *pool)
{
	return mllpi_loop_current() == &pool->loop;
}

int mllpi_pool_push(struct mllp_pool *pool, struct mllpi_node *n)
{
	/* acquire: refuse early once the stop is seen. A push that races
	 * with the stop is either taken before the seal or refused by it
	 * (subq.h); the manager drains its own FIFO before it leaves. */
	if (n->kind != MLLPI_OP_STOP &&
	    atomic_load_explicit(&pool->q.stopped, memory_order_acquire))
		return MLLP_ERR_STOPPED;
	/* From a callback too: one FIFO (subq.h). */
	switch (mllpi_subq_push(&pool->q, n)) {
	case MLLPI_PUSH_STOPPED:
		return MLLP_ERR_STOPPED;
	case MLLPI_PUSHED_WAKE:
		mllpi_loop_wake(&pool->loop);
		break;
	case MLLPI_PUSHED:
		break;
	}
	return 0;
}

/* ---- the manager: the loop's hooks (loop.h) ---------------------------- */

/* Queued operations taken per turn at most (then the wait does not
 * sleep). */
#define MAX_BATCH 4096

static int mgr_take_work(void *ctx)
{
	struct mllp_pool *p = ctx;
	int batch = 0;
	struct mllpi_node *n;
	while (batch < MAX_BATCH && (n = mllpi_subq_pop(&p->q))) {
		handle_node(p, n);
		batch++;
	}
	p->batch_full = batch >= MAX_BATCH;
	return batch;
}

static bool mgr_pending(void *ctx)
{
	struct mllp_pool *p = ctx;
	return p->batch_full || mllpi_subq_maybe_nonempty(&p->q);
}

static void mgr_on_timer(void *ctx, struct mllpi_timer *t)
{
	on_timer(ctx, t);
}

static void mgr_on_cqe(void *ctx, const struct mllpi_cqe *cq)
{
	on_cqe(ctx, cq);
}

static void mgr_end_turn(void *ctx)
{
	struct mllp_pool *p = ctx;
	flush_moved(p); /* before wait(): see slot_moved */
	sock_reap(p);
}

static bool mgr_done(void *ctx)
{
	struct mllp_pool *p = ctx;
	return p->stopping && p->live_socks == 0 &&
	       !mllpi_subq_maybe_nonempty(&p->q);
}

static bool mgr_stopping(void *ctx)
{
	return ((struct mllp_pool *)ctx)->stopping;
}

static bool mgr_prepare_sleep(void *ctx)
{
	/* the wake-up pair of subq.h */
	return mllpi_subq_prepare_sleep(&((struct mllp_pool *)ctx)->q);
}

static void mgr_awake(void *ctx)
{
	/* Only after a prepared sleep: the line stays shared with the
	 * producers while the manager is busy. */
	mllpi_subq_awake(&((struct mllp_pool *)ctx)->q);
}

static void mgr_before_wait(void *ctx)
{
	struct mllp_pool *p = ctx;
	if (p->fresh)
		mllpi_presend_measure(p); /* right before wait() */
}

/* The backend's wait() keeps failing with rc: no completion can come back
 * any more. Stop as mllp_pool_stop does, but fail every message with rc
 * (logged once), and close and free every socket without waiting for
 * completions. Later sends are refused with MLLP_ERR_STOPPED. */
static void mgr_fatal(void *ctx, int rc)
{
	struct mllp_pool *p = ctx;
	mllp_error_set(&p->fatal, MLLP_CTX_NONE, rc,
		       "the pool stopped: backend %s wait failed: %s",
		       p->loop.ops->name, mllp_strerror(rc));
	logf_(p, MLLP_LOG_ERROR, "%s", p->fatal.message);
	/* seq_cst: the stop protocol of subq.h (as mllp_pool_stop). */
	atomic_store_explicit(&p->q.stopped, true, memory_order_seq_cst);
	mllpi_endpoints_wake_all(p);
	p->stopping = true;
	struct mllpi_endpoint *eps[MLLPI_MAX_ENDPOINTS];
	uint32_t n = mllpi_endpoints_snapshot(p, eps);
	for (uint32_t i = 0; i < n; i++)
		mllpi_endpoint_close_all(eps[i], &p->fatal, &p->fatal);
	for (struct mllpi_sock *s = p->socks; s; s = s->all_next) {
		s->conn = NULL;
		s->pending = 0;
		sock_maybe_free(p, s);
	}
	sock_reap(p);
}

/* The stop protocol of subq.h: refuse later pushes, take what came in
 * meanwhile (failed as stopped; their callbacks' submissions are
 * refused). */
static void mgr_finish(void *ctx)
{
	struct mllp_pool *p = ctx;
	mllpi_subq_seal(&p->q);
	struct mllpi_node *n;
	while ((n = mllpi_subq_pop_sealed(&p->q)) != NULL)
		handle_node(p, n);
	sock_reap(p);
}

static void mgr_warn(void *ctx, const char *line)
{
	struct mllp_pool *p = ctx;
	if (p->cfg.log)
		p->cfg.log(p->cfg.log_ctx, MLLP_LOG_WARNING, line);
	else
		fprintf(stderr, "[warning] mllp: %s\n", line);
}

static const struct mllpi_loop_hooks manager_hooks = {
    .take_work = mgr_take_work,
    .pending = mgr_pending,
    .on_timer = mgr_on_timer,
    .on_cqe = mgr_on_cqe,
    .end_turn = mgr_end_turn,
    .done = mgr_done,
    .stopping = mgr_stopping,
    .prepare_sleep = mgr_prepare_sleep,
    .awake = mgr_awake,
    .before_wait = mgr_before_wait,
    .fatal = mgr_fatal,
    .finish = mgr_finish,
    .warn = mgr_warn,
};

/* ---- public API ------------------------------------------------------ */

int mllp_pool_create(const struct mllp_pool_config *cfg, struct mllp_pool **out,
		     struct mllp_error *err)
{
	return mllpi_pool_create_ops(cfg, NULL, out, err);
}

int mllpi_pool_create_ops(const struct mllp_pool_config *cfg,
			  const struct mllpi_backend_ops *ops,
			  struct mllp_pool **out, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!out) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	*out = NULL;
	struct mllp_pool_config c;
	if (cfg)
		c = *cfg;
	else
		mllp_pool_config_init(&c);
	if (c.ring_entries == 0 || c.recv_buffers == 0 ||
	    (c.recv_buffers & (c.recv_buffers - 1)) || c.recv_buffers > 32768 ||
	    c.recv_buffer_size == 0 || c.queue_capacity == 0 ||
	    (unsigned)c.backend > MLLP_BACKEND_EPOLL) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "invalid pool configuration");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllp_allocator a;
	if (c.allocator)
		a = *c.allocator;
	else
		mllpi_default_allocator(&a);
	struct mllp_pool *p = a.alloc(a.ctx, sizeof(*p));
	if (!p) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(p, 0, sizeof(*p));
	p->cfg = c;
	p->alloc = a;
	struct mllpi_backend_config bc = {
	    .entries = c.ring_entries,
	    .recv_buffers = c.recv_buffers,
	    .recv_buffer_size = c.recv_buffer_size,
	    .test_ring_error = c.test_ring_error,
	    .alloc = &p->alloc,
	};
	mllpi_loop_init(&p->loop, ops, c.backend, &bc, &manager_hooks, p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->add_mu, NULL);
	mllpi_subq_init(&p->q);
	p->stop_node.kind = MLLPI_OP_STOP;
	int rc = mllpi_loop_start(&p->loop, "manager", err);
	if (rc < 0) {
		mllpi_loop_fini(&p->loop);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->add_mu);
		a.free(a.ctx, p, sizeof(*p));
		return rc;
	}
	*out = p;
	return 0;
}

static int bad_address(struct mllp_error *err, const char *host)
{
	(void)host;
	mllp_error_set(err, MLLP_CTX_CONNECT, MLLP_ERR_BAD_ADDRESS, NULL);
	return MLLP_ERR_BAD_ADDRESS;
}

/* getaddrinfo failed with gr: the host and the resolver's reason. */
static int unresolvable(struct mllp_error *err, const char *host, int gr)
{
	const char *why = gr == EAI_SYSTEM ? mllp_strerror(-errno)
			  : gr != 0	   ? gai_strerror(gr)
					   : "no address";
	mllp_error_set(err, MLLP_CTX_CONNECT, MLLP_ERR_BAD_ADDRESS,
		       "cannot resolve '%s': %s", host, why);
	return MLLP_ERR_BAD_ADDRESS;
}

int mllp_pool_add_endpoint(struct mllp_pool *pool, const char *host,
			   uint16_t port, uint32_t connections,
			   const struct mllp_conn_options *opts,
			   uint32_t *endpoint_id, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!pool || connections == 0 || connections > 65536) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (!host || !*host || strlen(host) >= 256 || port == 0)
		return bad_address(err, host);
	/* acquire: early refusal only; mllpi_pool_push re-checks with the
	 * producer protocol. */
	if (atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	/* Resolution on the caller's thread: the manager never blocks. */
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int gr = getaddrinfo(host, portstr, &hints, &res);
	if (gr != 0 || !res)
		return unresolvable(err, host, gr);
	struct mllp_allocator *a = &pool->alloc;
	struct mllpi_endpoint *ep = a->alloc(a->ctx, sizeof(*ep));
	struct mllpi_conn *conns =
	    a->alloc(a->ctx, sizeof(*conns) * connections);
	if (!ep || !conns) {
		freeaddrinfo(res);
		a->free(a->ctx, ep, sizeof(*ep));
		a->free(a->ctx, conns, sizeof(*conns) * connections);
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(ep, 0, sizeof(*ep));
	memset(conns, 0, sizeof(*conns) * connections);
	for (struct addrinfo *ai = res; ai && ep->naddrs < MLLPI_MAX_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(ep->addrs[0]))
			continue;
		memcpy(&ep->addrs[ep->naddrs], ai->ai_addr, ai->ai_addrlen);
		ep->addrlens[ep->naddrs] = ai->ai_addrlen;
		ep->naddrs++;
	}
	freeaddrinfo(res);
	ep->pool = pool;
	snprintf(ep->host, sizeof(ep->host), "%s", host);
	ep->port = port;
	if (opts)
		ep->opts = *opts;
	else
		ep->opts = pool->cfg.conn;
	if (ep->opts.tls && ep->opts.tls->enabled) {
		/* Every file is loaded now: a bad path fails here. */
		int trc =
		    mllp_tls_ctx_new_client(ep->opts.tls, &ep->tls_ctx, err);
		if (trc < 0) {
			a->free(a->ctx, conns, sizeof(*conns) * connections);
			a->free(a->ctx, ep, sizeof(*ep));
			return trc;
		}
		if (mllp_tls_ctx_insecure(ep->tls_ctx)) {
			/* Once per endpoint, whatever log_level. */
			char line[512];
			snprintf(line, sizeof(line),
				 "TLS to %s:%u does not verify the server "
				 "(verify none): the traffic is encrypted but "
				 "anyone in the path can read it",
				 host, port);
			if (pool->cfg.log)
				pool->cfg.log(pool->cfg.log_ctx,
					      MLLP_LOG_WARNING, line);
			else
				fprintf(stderr, "[warning] mllp: %s\n", line);
		}
	}
	ep->opts.tls = NULL; /* borrowed: not kept */
	ep->nconns = connections;
	ep->conns = conns;
	ep->add_node.kind = MLLPI_OP_ADD;
	ep->kick_node.kind = MLLPI_OP_KICK;
	ep->reconnect_node.kind = MLLPI_OP_RECONNECT;
	pthread_mutex_init(&ep->mu, NULL);
	pthread_cond_init(&ep->cv, NULL);
	mllp_error_set(&ep->last_error, MLLP_CTX_CONNECT,
		       MLLP_ERR_NOT_CONNECTED, NULL);
	ep->qtimer.kind = T_QUEUE;
	ep->qtimer.owner = ep;
	atomic_init(&ep->usable, connections);
	struct mllp_backoff_config bcfg;
	mllp_backoff_config_init(&bcfg);
	bcfg.use_backoff = ep->opts.use_backoff;
	if (ep->opts.backoff_max_seconds)
		bcfg.backoff_max_seconds = ep->opts.backoff_max_seconds;
	if (ep->opts.auto_reconnect_interval)
		bcfg.auto_reconnect_interval_ms =
		    ep->opts.auto_reconnect_interval;
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	fc.max_frame = pool->cfg.max_reply;
	int rc = 0;
	for (uint32_t i = 0; i < connections; i++) {
		struct mllpi_conn *c = &conns[i];
		c->ep = ep;
		c->id = i;
		c->state = C_CONNECTING; /* counted in usable until OP_ADD */
		c->timer.owner = c;
		c->addr_idx = (int)(i % (uint32_t)ep->naddrs);
		if (rc == 0)
			rc = mllp_backoff_init(&c->backoff, &bcfg);
		if (rc == 0)
			rc = mllp_decoder_init(&c->dec, &fc, &pool->alloc);
	}
	/* Published (endpoint.c) with the caller inside the id until the add
	 * node is pushed. */
	if (rc == 0)
		rc = mllpi_endpoint_take_slot(pool, ep);
	if (rc != 0) {
		mllpi_endpoint_free(pool, ep);
		mllp_error_set(err, MLLP_CTX_NONE, rc, NULL);
		return rc;
	}
	uint32_t id = ep->id;
	/* The manager sizes its timer heap when it handles the add; reserve
	 * now from here is not allowed (manager-owned), so OP_ADD does it. */
	rc = mllpi_pool_push(pool, &ep->add_node);
	mllpi_endpoint_leave(pool, id);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	if (endpoint_id)
		*endpoint_id = id;
	return 0;
}

/* Take a queue slot. */
static bool try_reserve(struct mllpi_endpoint *ep, uint32_t cap)
{
	/* seq_cst: Dekker pair with space_freed (see there). */
	uint32_t cur =
	    atomic_load_explicit(&ep->reserved, memory_order_seq_cst);
	while (cur < cap) {
		if (atomic_compare_exchange_weak_explicit(
			&ep->reserved, &cur, cur + 1, memory_order_seq_cst,
			memory_order_seq_cst))
			return true;
	}
	return false;
}

static int reserve_slot(struct mllp_pool *pool, struct mllpi_endpoint *ep,
			const struct mllp_send_options *o)
{
	uint32_t cap = pool->cfg.queue_capacity;
	if (try_reserve(ep, cap))
		return 0;
	if (!o->block || o->block_timeout == 0)
		return MLLP_ERR_WOULD_BLOCK;
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	if (o->block_timeout > 0) {
		dl.tv_sec += o->block_timeout / 1000;
		dl.tv_nsec += (o->block_timeout % 1000) * 1000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
	}
	int rc = 0;
	pthread_mutex_lock(&ep->mu);
	atomic_fetch_add_explicit(&ep->space_waiters, 1, memory_order_seq_cst);
	while (!try_reserve(ep, cap)) {
		if (atomic_load_explicit(&pool->q.stopped,
					 memory_order_seq_cst)) {
			rc = MLLP_ERR_STOPPED;
			break;
		}
		/* seq_cst: see mllp_pool_remove_endpoint. */
		if (atomic_load_explicit(&ep->removing, memory_order_seq_cst)) {
			rc = MLLP_ERR_ENDPOINT_REMOVED;
			break;
		}
		if (o->block_timeout < 0) {
			pthread_cond_wait(&ep->cv, &ep->mu);
		} else if (pthread_cond_timedwait(&ep->cv, &ep->mu, &dl) ==
			   ETIMEDOUT) {
			if (!try_reserve(ep, cap))
				rc = MLLP_ERR_WOULD_BLOCK;
			break;
		}
	}
	atomic_fetch_sub_explicit(&ep->space_waiters, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&ep->mu);
	return rc;
}

/* mllp_pool_send inside endpoint ep (entered). */
static int send_on(struct mllp_pool *pool, struct mllpi_endpoint *ep,
		   const void *payload, size_t len,
		   const struct mllp_send_options *opts,
		   struct mllp_future **out, struct mllp_error *err)
{
	if (!out || (!payload && len)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllp_send_options o;
	if (opts)
		o = *opts;
	else
		mllp_send_options_init(&o);
	if (o.block && o.block_timeout != 0 && mllpi_pool_on_manager(pool)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_INVALID_ARGUMENT,
			       "a blocking send from a callback would wait "
			       "for the manager thread it runs on");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	/* acquire: early refusal only (see mllpi_pool_push). */
	if (atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	int wc = mllp_wrap_check(NULL, payload, len);
	if (wc < 0) {
		mllp_error_set(err, MLLP_CTX_SEND, wc, NULL);
		return wc;
	}
	bool framed = wc == 1;
	const unsigned char *body = payload;
	size_t body_len = len;
	if (framed) {
		body++;
		body_len -= 3;
	}
	/* Parse on the producer's thread: the manager only parses replies. */
	struct mllp_hl7_msg msg;
	bool hl7 = false;
	if (o.kind != MLLP_PAYLOAD_RAW) {
		int prc = mllp_hl7_parse(&msg, body, body_len);
		if (prc == 0 && msg.control_id.len > 0)
			hl7 = true;
		else if (o.kind == MLLP_PAYLOAD_HL7) {
			int r = prc ? prc : MLLP_ERR_BAD_MSH;
			mllp_error_set(
			    err, MLLP_CTX_SEND, r,
			    prc ? NULL : "message has no MSH-10 control id");
			return r;
		}
	}
	/* Fail fast while every connection is down (queue_timeout 0). */
	if (ep->opts.queue_timeout == 0 &&
	    atomic_load_explicit(&ep->usable, memory_order_seq_cst) == 0) {
		struct mllp_error e;
		get_last_error(ep, &e);
		mllp_error_set(err, MLLP_CTX_SEND, e.reason, "%s", e.message);
		/* seq_cst exchange: one kick node in the queue at a time;
		 * the manager clears the flag before acting. */
		if (!atomic_exchange_explicit(&ep->kick_pending, true,
					      memory_order_seq_cst))
			if (mllpi_pool_push(pool, &ep->kick_node) != 0)
				atomic_store(&ep->kick_pending, false);
		return e.reason;
	}
	int rc = reserve_slot(pool, ep, &o);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_SEND, rc, NULL);
		return rc;
	}
	/* A copied payload is stored framed (SB payload EB CR) so that it
	 * goes out as one buffer: one plain send instead of a gather of
	 * three iovecs. Small borrowed payloads are copied too: copying a
	 * few hundred bytes costs less than the kernel's iovec import. */
	bool copy = !o.borrow_payload || (!framed && len <= MLLPI_SMALL_COPY);
	bool wrap = copy && !framed;
	size_t extra = copy ? len + (wrap ? 3 : 0) : 0;
	size_t size = sizeof(struct mllp_future) + extra;
	struct mllp_future *f = pool->alloc.alloc(pool->alloc.ctx, size);
	if (!f) {
		/* give the slot back (seq_cst as every reserved update) */
		atomic_fetch_sub_explicit(&ep->reserved, 1,
					  memory_order_seq_cst);
		mllp_error_set(err, MLLP_CTX_SEND, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	/* The producer's part only; the manager initialises the rest when
	 * it takes the message (op_send): those lines were last written by
	 * the manager (the previous future at this address), so they stay
	 * in its cache instead of crossing to this thread and back. */
	memset(f, 0, offsetof(struct mllp_future, where));
	f->alloc = pool->alloc;
	f->alloc_size = size;
	f->pool = pool;
	f->ep = ep;
	f->node.kind = MLLPI_OP_SEND;
	f->cancel_node.kind = MLLPI_OP_CANCEL;
	atomic_init(&f->refs, 2); /* caller + engine */
	const unsigned char *pl = payload;
	size_t pl_len = len, shift = 0;
	if (copy) {
		unsigned char *dst = (unsigned char *)(f + 1);
		if (wrap) {
			dst[0] = MLLP_SB;
			shift = 1;
		}
		if (len)
			memcpy(dst + shift, payload, len);
		if (wrap) {
			dst[len + 1] = MLLP_EB;
			dst[len + 2] = MLLP_CR;
			pl_len = len + 3;
		}
		pl = dst;
	}
	f->payload = pl;
	f->len = pl_len;
	f->framed = framed || wrap;
	f->hl7 = hl7;
	if (hl7) {
		f->control_id = (const char *)pl + shift +
				(msg.control_id.ptr - (const char *)payload);
		f->control_id_len = msg.control_id.len;
	}
	f->reply_timeout = o.reply_timeout;
	f->async = o.async;
	f->cb = o.callback;
	f->cb_arg = o.callback_arg;
	rc = mllpi_pool_push(pool, &f->node);
	if (rc != 0) {
		atomic_fetch_sub_explicit(&ep->reserved, 1,
					  memory_order_seq_cst);
		pool->alloc.free(pool->alloc.ctx, f, size);
		mllp_error_set(err, MLLP_CTX_SEND, rc, NULL);
		return rc;
	}
	*out = f;
	return 0;
}

int mllp_pool_send(struct mllp_pool *pool, uint32_t endpoint_id,
		   const void *payload, size_t len,
		   const struct mllp_send_options *opts,
		   struct mllp_future **out, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (out)
		*out = NULL;
	struct mllpi_endpoint *ep;
	int rc =
	    mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_SEND, &ep, err);
	if (rc != 0)
		return rc;
	rc = send_on(pool, ep, payload, len, opts, out, err);
	mllpi_endpoint_leave(pool, endpoint_id);
	return rc;
}

void mllp_pool_get_stats(const struct mllp_pool *pool,
			 struct mllp_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!pool)
		return;
	struct mllp_pool *p = (struct mllp_pool *)pool;
	/* relaxed: statistics, each counter on its own. */
#define LD(f) atomic_load_explicit(&p->f, memory_order_relaxed)
	out->sent = LD(st_sent);
	for (int i = 0; i < 7; i++)
		out->acked[i] = LD(st_acked[i]);
	out->raw_replies = LD(st_raw);
	out->errors = LD(st_errors);
	out->errors_os = LD(st_errors_os);
	for (int i = 0; i < MLLP_STATS_MLLP_ERRORS; i++)
		out->errors_mllp[i] = LD(st_errors_mllp[i]);
	out->connects = LD(st_connects);
	out->reconnects = LD(st_reconnects);
	out->connect_failures = LD(st_connect_failures);
	out->in_flight = LD(st_in_flight);
	out->queued = LD(st_queued);
	out->tls_handshakes = LD(st_tls_handshakes);
	out->tls_resumed = LD(st_tls_resumed);
	out->backend = p->loop.ops->name;
#undef LD
}

const char *mllp_pool_backend(const struct mllp_pool *pool)
{
	return pool ? pool->loop.ops->name : "none";
}

int mllp_pool_stop(struct mllp_pool *pool)
{
	/* From a callback the manager would wait for itself. */
	if (!pool || mllpi_pool_on_manager(pool))
		return MLLP_ERR_INVALID_ARGUMENT;
	pthread_mutex_lock(&pool->mu);
	if (pool->joined) {
		pthread_mutex_unlock(&pool->mu);
		return 0;
	}
	/* seq_cst: the stop protocol of subq.h. */
	bool was = atomic_exchange_explicit(&pool->q.stopped, true,
					    memory_order_seq_cst);
	if (!was) {
		mllpi_endpoints_wake_all(pool);
		mllpi_pool_push(pool, &pool->stop_node);
	}
	mllpi_loop_join(&pool->loop);
	pool->joined = true;
	pthread_mutex_unlock(&pool->mu);
	return 0;
}

void mllp_pool_destroy(struct mllp_pool *pool)
{
	if (!pool)
		return;
	if (mllpi_pool_on_manager(pool)) {
		/* It would free the manager under its own feet. */
		logf_(pool, MLLP_LOG_ERROR,
		      "mllp_pool_destroy called from a callback: ignored");
		return;
	}
	mllp_pool_stop(pool);
	struct mllp_allocator a = pool->alloc;
	mllpi_endpoints_free_all(pool);
	mllpi_loop_fini(&pool->loop);
	pthread_mutex_destroy(&pool->mu);
	pthread_mutex_destroy(&pool->add_mu);
	a.free(a.ctx, pool, sizeof(*pool));
}

/* ---- TLS glue: called by tls_conn.c ---------------------------------- */

void mllpi_conn_tls_up(struct mllpi_conn *c)
{
	on_connected(c);
}

void mllpi_conn_tls_arm_recv(struct mllpi_conn *c)
{
	conn_arm_recv(c);
}

void mllpi_conn_tls_plain(struct mllpi_conn *c, const unsigned char *data,
			  size_t len)
{
	on_recv_data(c, data, len);
}

void mllpi_conn_tls_failed(struct mllpi_conn *c, const struct mllp_error *e)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (c->state == C_CONNECTING) {
		/* The server was reached: no other address is tried in this
		 * round (its error would hide this one), and the next round
		 * starts at the same address. */
		int idx = c->addr_idx;
		c->addr_tries = ep->naddrs;
		connect_failed_err(c, e);
		c->addr_idx = idx;
		return;
	}
	/* After the handshake: the server refused us late (TLS 1.3 checks
	 * the client certificate after the client's handshake is done) or
	 * a fatal record error. */
	if (e->context == MLLP_CTX_TLS) {
		pthread_mutex_lock(&ep->mu);
		ep->last_error = *e;
		pthread_mutex_unlock(&ep->mu);
	}
	logf_(p, MLLP_LOG_ERROR, "TLS error with %s:%u => %s", ep->host,
	      ep->port, e->message);
	conn_close(c, true, e->context, e, true, true);
}

void mllpi_conn_tls_count(struct mllpi_conn *c, bool resumed)
{
	STAT_ADD(c->ep, st_tls_handshakes, 1);
	if (resumed)
		STAT_ADD(c->ep, st_tls_resumed, 1);
}

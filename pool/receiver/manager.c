/* The receiver's manager: its hooks into the shared loop (loop.h), the
 * dispatch of completions and timers, stopping, and the fatal stop when
 * the backend's wait() fails for good. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "receiver_internal.h"

static void on_cqe(struct mllp_receiver *r, const struct mllpi_cqe *cq)
{
	unsigned op = (unsigned)(cq->token & TOK_MASK);
	void *obj = (void *)(uintptr_t)(cq->token & ~(uint64_t)TOK_MASK);
	switch (op) {
	case TOK_ACCEPT:
		mllpi_recv_on_accept(r, cq);
		break;
	case TOK_RECV:
		mllpi_rconn_on_recv(obj, cq);
		break;
	case TOK_SEND:
		mllpi_rconn_on_send(obj, cq);
		break;
	case TOK_TLS_SEND:
		mllpi_rtls_on_sent(obj, cq);
		break;
	case TOK_CANCEL: {
		struct rconn *c = obj;
		c->pending--;
		c->rd_cancel = false;
		mllpi_rconn_reads(c);
		mllpi_rconn_reap(c);
		break;
	}
	default:
		break;
	}
}

/* Close every connection not yet closing (reason stopped); returns how
 * many. */
static uint32_t close_all(struct mllp_receiver *r)
{
	uint32_t n = 0;
	struct rconn *c = r->conns;
	while (c) {
		struct rconn *next = c->next;
		if (!c->closing) {
			n++;
			mllpi_rconn_close(c, MLLP_CLOSE_STOPPED,
					  MLLP_ERR_STOPPED);
		}
		c = next;
	}
	return n;
}

/* The stop's drain is over: what still has replies to write is closed. */
static void drain_end(struct mllp_receiver *r)
{
	r->draining = false;
	uint32_t n = close_all(r);
	if (n == 0)
		return;
	ST_ADD(r, st_stop_unfinished, n);
	mllpi_rlog_line(&r->log, MLLP_LOG_WARNING,
			"stop: %u connection%s closed with replies not "
			"written after %u ms",
			n, n == 1 ? "" : "s", r->cfg.stop_drain_ms);
}

/* The idle timer: the TLS handshake's limit, the deferred reply timeout,
 * then the idle timeout. */
static void on_idle(struct mllp_receiver *r, struct rconn *c, uint64_t now)
{
	if (c->tls && !c->tls_up && r->cfg.tls_handshake_timeout_ms &&
	    c->start_us + (uint64_t)r->cfg.tls_handshake_timeout_ms * 1000u <=
		now) {
		mllpi_rlog_line(
		    &r->log, MLLP_LOG_WARNING,
		    "TLS connection from %s:%u: %s (%u ms), closing",
		    c->info.peer_address, c->info.peer_port,
		    mllp_tls_failure_text(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
		    r->cfg.tls_handshake_timeout_ms);
		ST_ADD(r, st_tls_failed, 1);
		mllpi_rconn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_TIMEOUT);
		return;
	}
	uint64_t dd = mllpi_rconn_deferred_due(r, c);
	if (dd && dd <= now) {
		mllpi_rlog_line(&r->log, MLLP_LOG_WARNING,
				"connection from %s:%u: no deferred reply "
				"within %u ms, closing",
				c->info.peer_address, c->info.peer_port,
				r->cfg.deferred_timeout_ms);
		mllpi_rconn_close(c, MLLP_CLOSE_REPLY_TIMEOUT,
				  MLLP_ERR_TIMEOUT);
		return;
	}
	uint64_t due = mllpi_rconn_idle_due(r, c);
	if (due && due <= now && c->deferred > 0) /* waiting for us */
		due = now + (uint64_t)r->cfg.idle_timeout_ms * 1000u;
	if (due && due <= now) {
		mllpi_rlog_line(&r->log, MLLP_LOG_INFO,
				"connection from %s:%u idle for %u ms, closing",
				c->info.peer_address, c->info.peer_port,
				r->cfg.idle_timeout_ms);
		mllpi_rconn_close(c, MLLP_CLOSE_IDLE_TIMEOUT, MLLP_ERR_TIMEOUT);
		return;
	}
	if (dd && (!due || dd < due))
		due = dd;
	if (due && mllpi_timer_arm(&r->loop.timers, &c->idle, due) < 0)
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY, "timer");
}

static void on_timer(struct mllp_receiver *r, struct mllpi_timer *t,
		     uint64_t now)
{
	if (t->kind == T_LISTEN) {
		mllpi_recv_listener_arm(r);
		return;
	}
	if (t->kind == T_DRAIN) {
		drain_end(r);
		return;
	}
	struct rconn *c = t->owner;
	if (t->kind == T_DELAY) {
		mllpi_rconn_resume(c, now);
		return;
	}
	on_idle(r, c, now); /* T_IDLE */
}

/* Stop accepting; drain (unless told not to, or stop_drain_ms is 0) or
 * close every connection. */
static void begin_stop(struct mllp_receiver *r, bool drain)
{
	r->stopping = true;
	mllpi_timer_disarm(&r->loop.timers, &r->ltimer);
	if (r->lpending > 0)
		r->loop.ops->cancel_fd(r->loop.be, r->lfd, 0);
	/* Stop listening now, whatever the backend still holds: an
	 * io_uring accept keeps the file (so its port) open past close()
	 * until the ring lets go of it; a shut down listener refuses
	 * clients and lets the port be bound again (SO_REUSEADDR) at once.
	 * It also ends an accept the cancel could not reach. */
	shutdown(r->lfd, SHUT_RDWR);
	/* Drain: the replies held go out (deferred ones completed meanwhile
	 * too) until drain_end; no new frame is read. */
	uint64_t now = mllpi_now_us();
	if (!drain || r->cfg.stop_drain_ms == 0 ||
	    mllpi_timer_arm(&r->loop.timers, &r->dtimer,
			    now + (uint64_t)r->cfg.stop_drain_ms * 1000u) < 0) {
		close_all(r);
		return;
	}
	r->draining = true;
	for (struct rconn *c = r->conns; c; c = c->next)
		mllpi_rconn_drain(c);
}

static int mgr_setup(void *ctx, struct mllp_error *err)
{
	struct mllp_receiver *r = ctx;
	if (r->loop.ops->nonblocking_sockets) {
		int fl = fcntl(r->lfd, F_GETFL);
		if (fl < 0 || fcntl(r->lfd, F_SETFL, fl | O_NONBLOCK) < 0) {
			int rc = -errno;
			mllp_error_set(err, MLLP_CTX_NONE, rc,
				       "cannot make the listener non-blocking");
			return rc;
		}
	}
	mllpi_recv_listener_arm(r);
	if (!r->accept_armed) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY,
			       "cannot submit accept");
		return MLLP_ERR_NO_MEMORY;
	}
	return 0;
}

static int mgr_take_work(void *ctx)
{
	struct mllp_receiver *r = ctx;
	/* acquire: pairs with the release store in stop(). */
	if (!r->stopping &&
	    atomic_load_explicit(&r->stop_req, memory_order_acquire)) {
		begin_stop(r, true);
		mllpi_recv_free_dead(r);
	}
	return r->hwait ? mllpi_rdefer_take(r) : 0;
}

/* The wake-up pair of subq.h, only while a completed reply may still be
 * pushed (a receiver that never defers pays nothing). */
static bool mgr_prepare_sleep(void *ctx)
{
	struct mllp_receiver *r = ctx;
	return r->hwait && mllpi_subq_prepare_sleep(&r->replies);
}

static void mgr_awake(void *ctx)
{
	struct mllp_receiver *r = ctx;
	if (r->hwait)
		mllpi_subq_awake(&r->replies);
}

static void mgr_on_timer(void *ctx, struct mllpi_timer *t)
{
	struct mllp_receiver *r = ctx;
	on_timer(r, t, r->loop.now_us);
}

static void mgr_on_cqe(void *ctx, const struct mllpi_cqe *cq)
{
	on_cqe(ctx, cq);
}

static void mgr_end_turn(void *ctx)
{
	struct mllp_receiver *r = ctx;
	if (r->dispatched && r->cfg.dispatch_batch_end) {
		r->dispatched = false;
		r->cfg.dispatch_batch_end(r->cfg.dispatch_ctx);
	}
	mllpi_recv_free_dead(r);
}

static bool mgr_done(void *ctx)
{
	struct mllp_receiver *r = ctx;
	/* hwait: completed replies of closed connections on their way to
	 * r->replies (pushed right after their state changed): take them. */
	return r->stopping && r->nconns == 0 && r->lpending == 0 &&
	       r->hwait == 0;
}

/* The backend's wait() keeps failing with rc: no completion can come back
 * any more. Stop (logged once) and free every connection without waiting
 * for its completions. A socket with an operation still in the backend
 * stays open after close (an io_uring request holds the file) until the
 * backend is destroyed: shut each down first, so its peer learns now, and
 * the listener too, so that no client is taken in any more. */
static void mgr_fatal(void *ctx, int rc)
{
	struct mllp_receiver *r = ctx;
	mllpi_rlog_line(&r->log, MLLP_LOG_ERROR,
			"the receiver stopped: backend %s wait failed: %s",
			r->loop.ops->name, mllp_strerror(rc));
	if (!r->stopping)
		begin_stop(r, false);
	else
		close_all(r); /* the drain's, if any */
	mllpi_recv_free_dead(r);
	while (r->conns) {
		struct rconn *c = r->conns;
		shutdown(c->fd, SHUT_RDWR);
		c->pending = 0;
		mllpi_rconn_free(c);
	}
	shutdown(r->lfd, SHUT_RDWR);
	r->lpending = 0;
}

static void mgr_warn(void *ctx, const char *line)
{
	struct mllp_receiver *r = ctx;
	/* whatever log_level: the one line that names the backend */
	enum mllp_log_level lvl = r->log.level;
	r->log.level = MLLP_LOG_WARNING;
	mllpi_rlog_line(&r->log, MLLP_LOG_WARNING, "%s", line);
	r->log.level = lvl;
}

const struct mllpi_loop_hooks mllpi_receiver_hooks = {
    .setup = mgr_setup,
    .take_work = mgr_take_work,
    .prepare_sleep = mgr_prepare_sleep,
    .awake = mgr_awake,
    .on_timer = mgr_on_timer,
    .on_cqe = mgr_on_cqe,
    .end_turn = mgr_end_turn,
    .done = mgr_done,
    .fatal = mgr_fatal,
    .warn = mgr_warn,
};

/* The MLLP receiver (see include/mllp/receiver.h).
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
 * Completion tokens: object pointer | op (low 3 bits; objects are at least
 * 8-byte aligned). A connection is
 * freed only when no operation is outstanding (cancel_fd, then wait for
 * every completion). The listener is created and bound on the caller's
 * thread (errors and the port are known synchronously); accepting runs on
 * the manager.
 *
 * The backend is chosen in one place: choose_backend(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/ack.h>
#include <mllp/framer.h>
#include <mllp/receiver.h>
#include <mllp/tls.h>

#include "alloc.h"
#include "backend.h"
#include "loop.h"
#include "netaddr.h"
#include "recv_budget.h"
#include "recv_log.h"
#include "timer.h"

#define TOK_RECV   1u
#define TOK_SEND   2u
#define TOK_ACCEPT 3u
#define TOK_CANCEL 4u
#define TOK_MASK   7u

enum { T_IDLE = 1, T_DELAY, T_LISTEN };

#define ACCEPT_RETRY_US 100000u
#define UNSECURED_WARNING                                                      \
	"Starting listener on a non secured socket, data will be passed "      \
	"over unencrypted connection!"

struct obuf {
	unsigned char *p;
	size_t len, cap;
	uint32_t replies;
};

/* A reply held back by a delay. */
struct held {
	struct held *next;
	uint64_t due_us;
	size_t len; /* framed bytes that follow */
	unsigned char bytes[];
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
	bool after_frame; /* last decoder event was a frame */
	bool reaped;	  /* on the dead list */
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
	/* TLS (NULL: plaintext). wr holds plaintext replies, taken into the
	 * engine from wr_off; fl carries ciphertext. */
	struct mllp_tls_conn *tls;
	bool tls_up;
	size_t wr_off;
	uint32_t tls_replies; /* replies wholly in the engine, not sent */
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
	_Atomic uint64_t st_accepted, st_active, st_refused, st_idle, st_error,
	    st_msgs, st_hl7, st_replies, st_bytes_in, st_bytes_out, st_junk,
	    st_too_big, st_paused, st_tls_hs, st_tls_resumed, st_tls_failed;
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

/* ---- names and defaults --------------------------------------------- */

const char *mllp_msg_kind_name(enum mllp_msg_kind kind)
{
	return kind == MLLP_MSG_HL7 ? "mllp_hl7" : "mllp_unknown";
}

const char *mllp_recv_event_name(enum mllp_recv_event_kind kind)
{
	switch (kind) {
	case MLLP_RECV_EV_CONNECTION_START:
		return "connection_start";
	case MLLP_RECV_EV_CONNECTION_STOP:
		return "connection_stop";
	case MLLP_RECV_EV_MESSAGE_RECEIVED:
		return "message_received";
	case MLLP_RECV_EV_REPLY_SENT:
		return "reply_sent";
	}
	return "unknown";
}

const char *mllp_close_reason_name(enum mllp_close_reason reason)
{
	switch (reason) {
	case MLLP_CLOSE_NONE:
		return "none";
	case MLLP_CLOSE_PEER:
		return "closed";
	case MLLP_CLOSE_ERROR:
		return "error";
	case MLLP_CLOSE_IDLE_TIMEOUT:
		return "idle_timeout";
	case MLLP_CLOSE_REFUSED:
		return "refused";
	case MLLP_CLOSE_STOPPED:
		return "stopped";
	}
	return "unknown";
}

void mllp_receiver_config_init(struct mllp_receiver_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = MLLP_PORT_UNSET;
	cfg->max_frame = MLLP_RECV_DEFAULT_MAX_FRAME;
	cfg->max_connections = MLLP_RECV_DEFAULT_MAX_CONNECTIONS;
	cfg->idle_timeout_ms = MLLP_RECV_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->read_buffer_keep = 64 * 1024;
	cfg->max_reply_backlog = 16 * 1024 * 1024;
	cfg->listen_backlog = 1024;
	cfg->ring_entries = 1024;
	cfg->recv_buffers = 512;
	cfg->recv_buffer_size = 16 * 1024;
	cfg->log_level = MLLP_LOG_WARNING;
	cfg->tls_handshake_timeout_ms = 10000;
	cfg->reply_backlog_pause = MLLP_RECV_DEFAULT_REPLY_PAUSE;
	cfg->max_buffered_bytes = MLLP_RECV_DEFAULT_MAX_BUFFERED;
}

/* ---- logging and telemetry ---------------------------------------------- */

static void logf_(struct mllp_receiver *r, enum mllp_log_level lvl,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void logf_(struct mllp_receiver *r, enum mllp_log_level lvl,
		  const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mllpi_rlog_vline(&r->log, lvl, fmt, ap);
	va_end(ap);
}

static void emit(struct mllp_receiver *r, enum mllp_recv_event_kind kind,
		 const struct mllp_conn_info *info, enum mllp_close_reason why,
		 int error, uint64_t duration_us, enum mllp_msg_kind mk,
		 size_t len, uint32_t replies)
{
	if (!r->cfg.telemetry)
		return;
	struct mllp_recv_event ev = {
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

/* ---- addresses and the allow list --------------------------------------- */

static bool prefix_match(const unsigned char *a, const unsigned char *b,
			 unsigned bits)
{
	unsigned bytes = bits / 8, rem = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFFu << (8 - rem));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

static bool allowed(const struct mllp_receiver *r,
		    const struct sockaddr_storage *ss)
{
	if (!r->allow_on)
		return true;
	int fam;
	const unsigned char *a;
	if (ss->ss_family == AF_INET) {
		fam = AF_INET;
		a = (const unsigned char *)&(
			(const struct sockaddr_in *)(const void *)ss)
			->sin_addr;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			fam = AF_INET;
			a = &s6->sin6_addr.s6_addr[12];
		} else {
			fam = AF_INET6;
			a = s6->sin6_addr.s6_addr;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < r->nallow; i++)
		if (r->allow[i].family == fam &&
		    prefix_match(a, r->allow[i].addr, r->allow[i].prefix))
			return true;
	return false;
}

static int allow_push(struct mllp_receiver *r, size_t *cap, int fam,
		      const void *addr, unsigned prefix)
{
	if (r->nallow == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		void *p = r->alloc.realloc(r->alloc.ctx, r->allow,
					   *cap * sizeof(*r->allow),
					   ncap * sizeof(*r->allow));
		if (!p)
			return MLLP_ERR_NO_MEMORY;
		r->allow = p;
		*cap = ncap;
	}
	struct allow_entry *e = &r->allow[r->nallow++];
	memset(e, 0, sizeof(*e));
	e->family = fam;
	e->prefix = prefix;
	memcpy(e->addr, addr, fam == AF_INET ? 4 : 16);
	return 0;
}

static int allow_build(struct mllp_receiver *r, size_t *cap,
		       struct mllp_error *err)
{
	const struct mllp_receiver_config *c = &r->cfg;
	r->allow_on = c->allowed_clients && c->allowed_clients_count > 0;
	for (size_t i = 0; r->allow_on && i < c->allowed_clients_count; i++) {
		const char *s = c->allowed_clients[i];
		if (!s || !*s) {
			mllp_error_set(err, MLLP_CTX_NONE,
				       MLLP_ERR_INVALID_ARGUMENT,
				       "empty allowed_clients entry");
			return MLLP_ERR_INVALID_ARGUMENT;
		}
		char host[256];
		snprintf(host, sizeof(host), "%s", s);
		char *slash = strchr(host, '/');
		long prefix = -1;
		if (slash) {
			*slash = 0;
			char *end;
			prefix = strtol(slash + 1, &end, 10);
			if (*end || slash[1] == 0)
				prefix = 999;
		}
		unsigned char buf[16];
		int fam = 0;
		if (inet_pton(AF_INET, host, buf) == 1)
			fam = AF_INET;
		else if (inet_pton(AF_INET6, host, buf) == 1)
			fam = AF_INET6;
		if (slash && (fam == 0 || prefix < 0 ||
			      prefix > (fam == AF_INET ? 32 : 128))) {
			mllp_error_set(err, MLLP_CTX_NONE,
				       MLLP_ERR_INVALID_ARGUMENT,
				       "invalid CIDR range in allowed_clients: "
				       "%s",
				       s);
			return MLLP_ERR_INVALID_ARGUMENT;
		}
		if (fam) {
			unsigned pf = slash ? (unsigned)prefix
					    : (fam == AF_INET ? 32u : 128u);
			if (allow_push(r, cap, fam, buf, pf) < 0)
				goto nomem;
			continue;
		}
		/* A host name: resolve now (the manager never does DNS). */
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		int gr = getaddrinfo(host, NULL, &hints, &res);
		if (gr != 0) {
			logf_(r, MLLP_LOG_WARNING,
			      "allowed_clients: cannot resolve %s (%s), "
			      "dropped",
			      s, gai_strerror(gr));
			continue;
		}
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			int rc = 0;
			if (ai->ai_family == AF_INET)
				rc = allow_push(
				    r, cap, AF_INET,
				    &((struct sockaddr_in *)(void *)ai->ai_addr)
					 ->sin_addr,
				    32);
			else if (ai->ai_family == AF_INET6)
				rc =
				    allow_push(r, cap, AF_INET6,
					       &((struct sockaddr_in6 *)(void *)
						     ai->ai_addr)
						    ->sin6_addr,
					       128);
			if (rc < 0) {
				freeaddrinfo(res);
				goto nomem;
			}
		}
		freeaddrinfo(res);
	}
	if (r->allow_on && r->nallow == 0)
		logf_(r, MLLP_LOG_WARNING,
		      "allowed_clients: no entry left, every client will be "
		      "refused");
	return 0;
nomem:
	mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
	return MLLP_ERR_NO_MEMORY;
}

/* ---- buffers -------------------------------------------------------------
 */

static int obuf_reserve(struct mllp_receiver *r, struct obuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 1024;
	while (ncap < b->len + more)
		ncap *= 2;
	void *p = r->alloc.realloc(r->alloc.ctx, b->p, b->cap, ncap);
	if (!p)
		return MLLP_ERR_NO_MEMORY;
	b->p = p;
	b->cap = ncap;
	return 0;
}

static void obuf_free(struct mllp_receiver *r, struct obuf *b)
{
	if (b->p)
		r->alloc.free(r->alloc.ctx, b->p, b->cap);
	memset(b, 0, sizeof(*b));
}

static void obuf_trim(struct mllp_receiver *r, struct obuf *b)
{
	if (b->len == 0 && b->cap > r->cfg.read_buffer_keep)
		obuf_free(r, b);
}

/* ---- connections -------------------------------------------------------- */

static uint64_t tok(const void *p, unsigned op)
{
	return (uint64_t)(uintptr_t)p | op;
}

static void conn_free(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	close(c->fd);
	mllp_tls_conn_free(c->tls);
	mllp_decoder_free(&c->dec);
	obuf_free(r, &c->wr);
	obuf_free(r, &c->fl);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->nconns--;
	r->alloc.free(r->alloc.ctx, c, sizeof(*c));
}

/* Queue a closed connection with nothing outstanding for freeing at the
 * end of the loop turn (callers may still look at it until then). */
static void conn_reap(struct rconn *c)
{
	if (!c->closing || c->pending > 0 || c->reaped)
		return;
	c->reaped = true;
	c->dead_next = c->r->dead;
	c->r->dead = c;
}

static void free_dead(struct mllp_receiver *r)
{
	while (r->dead) {
		struct rconn *c = r->dead;
		r->dead = c->dead_next;
		conn_free(c);
	}
}

static void held_free_all(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	struct held *h = c->hhead;
	while (h) {
		struct held *n = h->next;
		r->alloc.free(r->alloc.ctx, h, sizeof(*h) + h->len);
		h = n;
	}
	c->hhead = c->htail = NULL;
	c->held_bytes = 0;
}

/* ---- TLS: ciphertext out ------------------------------------------------ */

static void conn_fail(struct rconn *c, int error, const char *what);

/* Best effort: write what the engine has (an alert, close_notify) straight
 * to the socket before it is closed, so the peer learns why. Skipped while
 * a send is in the backend (two writers could interleave). */
static void tls_send_direct(struct rconn *c)
{
	const void *d;
	if (c->sending)
		return;
	size_t n = mllp_tls_conn_out_peek(c->tls, &d);
	if (n > 0 && send(c->fd, d, n, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		mllp_tls_conn_out_consume(c->tls, n);
}

/* TLS: encrypt the replies waiting in wr, then send the engine's
 * ciphertext (handshake messages, records) from fl: one send in flight. A
 * flight counts the replies it completes once they are wholly in it. */
/* Submit the flush buffer (c->fl) as the connection's one send in flight. */
static void send_flush_buffer(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	c->fl_off = 0;
	c->iov.iov_base = c->fl.p;
	c->iov.iov_len = c->fl.len;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = &c->iov;
	c->msg.msg_iovlen = 1;
	int rc =
	    r->loop.ops->sendmsg(r->loop.be, c->fd, &c->msg, tok(c, TOK_SEND));
	if (rc < 0) {
		conn_fail(c, rc, "cannot submit send");
		return;
	}
	c->pending++;
	c->sending = true;
}

static void tls_flush(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->closing || c->sending)
		return;
	if (c->tls_up) {
		while (c->wr_off < c->wr.len) {
			size_t w = 0;
			int rc = mllp_tls_conn_write(
			    c->tls, c->wr.p + c->wr_off, c->wr.len - c->wr_off,
			    &w, NULL);
			if (rc == MLLP_ERR_WOULD_BLOCK)
				break;
			if (rc < 0) {
				conn_fail(c, rc, "TLS write failed");
				return;
			}
			c->wr_off += w;
			if (w == 0 || mllp_tls_conn_write_pending(c->tls))
				break;
		}
		if (c->wr.len > 0 && c->wr_off == c->wr.len) {
			c->tls_replies += c->wr.replies;
			c->wr.len = 0;
			c->wr.replies = 0;
			c->wr_off = 0;
		}
		if (mllp_tls_conn_write_pending(c->tls) > 0) {
			int rc = mllp_tls_conn_flush(c->tls, NULL);
			if (rc < 0 && rc != MLLP_ERR_WOULD_BLOCK) {
				conn_fail(c, rc, "TLS write failed");
				return;
			}
		}
	}
	size_t n = mllp_tls_conn_out_pending(c->tls);
	if (n == 0)
		return;
	c->fl.len = 0;
	if (obuf_reserve(r, &c->fl, n) < 0) {
		conn_fail(c, MLLP_ERR_NO_MEMORY, "cannot buffer TLS output");
		return;
	}
	c->fl.len = mllp_tls_conn_take_out(c->tls, c->fl.p, n);
	c->fl.replies = 0;
	if (c->wr.len == 0 && mllp_tls_conn_write_pending(c->tls) == 0) {
		c->fl.replies = c->tls_replies;
		c->tls_replies = 0;
	}
	send_flush_buffer(c);
}

/* Close: cancel what is outstanding, free when the last completion is
 * back. Emits connection_stop once. */
static void conn_close(struct rconn *c, enum mllp_close_reason why, int error)
{
	struct mllp_receiver *r = c->r;
	if (c->closing)
		return;
	c->closing = true;
	/* close_notify, best effort: on an orderly close of ours, and in
	 * answer to the peer's (a close by the peer without one is not
	 * answered). */
	if (c->tls && c->tls_up && why != MLLP_CLOSE_ERROR &&
	    (why != MLLP_CLOSE_PEER ||
	     mllp_tls_conn_close_notify_received(c->tls)) &&
	    mllp_tls_conn_shutdown(c->tls, NULL) == 0)
		tls_send_direct(c);
	mllpi_timer_disarm(&r->loop.timers, &c->idle);
	mllpi_timer_disarm(&r->loop.timers, &c->delay);
	held_free_all(c);
	mllpi_rbudget_remove(&r->budget, &c->bc);
	mllpi_rlog_conn_end(&r->log, &c->jlog, c->info.peer_address,
			    c->info.peer_port, r->loop.now_us);
	ST_SUB(r, st_active, 1);
	if (why == MLLP_CLOSE_IDLE_TIMEOUT)
		ST_ADD(r, st_idle, 1);
	else if (why == MLLP_CLOSE_ERROR)
		ST_ADD(r, st_error, 1);
	emit(r, MLLP_RECV_EV_CONNECTION_STOP, &c->info, why, error,
	     mllpi_now_us() - c->start_us, MLLP_MSG_UNKNOWN, 0, 0);
	/* The cancel request is itself awaited (counted in pending): the fd
	 * is closed only after it ran, so it can never hit a new socket that
	 * reuses the number. */
	if (c->pending > 0) {
		if (r->loop.ops->cancel_fd(r->loop.be, c->fd,
					   tok(c, TOK_CANCEL)) == 0)
			c->pending++;
		else /* no room to cancel: end the operations another way */
			shutdown(c->fd, SHUT_RDWR);
	}
	conn_reap(c);
}

static void conn_fail(struct rconn *c, int error, const char *what)
{
	logf_(c->r, MLLP_LOG_ERROR, "connection from %s:%u: %s (%s)",
	      c->info.peer_address, c->info.peer_port, what,
	      mllp_strerror(error));
	conn_close(c, MLLP_CLOSE_ERROR, error);
}

static bool conn_drained(const struct rconn *c)
{
	return !c->sending && c->wr.len == 0 && !c->hhead &&
	       (!c->tls || mllp_tls_conn_out_pending(c->tls) == 0);
}

/* Start a send of the write buffer when none is in flight. */
static void conn_flush(struct rconn *c)
{
	if (c->tls) {
		tls_flush(c);
		return;
	}
	if (c->closing || c->sending || c->wr.len == 0)
		return;
	struct obuf t = c->fl;
	c->fl = c->wr;
	c->wr = t;
	c->wr.len = 0;
	c->wr.replies = 0;
	send_flush_buffer(c);
}

/* Append one framed reply to the write buffer. */
static int conn_append(struct rconn *c, const unsigned char *framed, size_t len)
{
	struct mllp_receiver *r = c->r;
	if (c->sending && c->wr.len + len > r->cfg.max_reply_backlog)
		return MLLP_ERR_WOULD_BLOCK;
	if (obuf_reserve(r, &c->wr, len) < 0)
		return MLLP_ERR_NO_MEMORY;
	memcpy(c->wr.p + c->wr.len, framed, len);
	c->wr.len += len;
	c->wr.replies++;
	return 0;
}

static int scratch_reserve(struct mllp_receiver *r, size_t n)
{
	if (n <= r->scratch_cap)
		return 0;
	size_t ncap = r->scratch_cap ? r->scratch_cap : 1024;
	while (ncap < n)
		ncap *= 2;
	void *p =
	    r->alloc.realloc(r->alloc.ctx, r->scratch, r->scratch_cap, ncap);
	if (!p)
		return MLLP_ERR_NO_MEMORY;
	r->scratch = p;
	r->scratch_cap = ncap;
	return 0;
}

/* Build the framed reply in r->scratch; *len 0 means no reply. */
static int build_reply(struct rconn *c, const struct mllp_message *m,
		       const struct mllp_reply *rep, size_t *len)
{
	struct mllp_receiver *r = c->r;
	*len = 0;
	if (rep->kind == MLLP_REPLY_BYTES) {
		if (rep->len > 0 && !rep->data)
			return MLLP_ERR_INVALID_ARGUMENT;
		int w = mllp_wrap_check(NULL, rep->data, rep->len);
		if (w < 0)
			return w;
		size_t need = w == 1 ? rep->len : rep->len + 3;
		if (scratch_reserve(r, need) < 0)
			return MLLP_ERR_NO_MEMORY;
		if (w == 1) {
			memcpy(r->scratch, rep->data, rep->len);
		} else {
			r->scratch[0] = MLLP_SB;
			if (rep->len)
				memcpy(r->scratch + 1, rep->data, rep->len);
			r->scratch[rep->len + 1] = MLLP_EB;
			r->scratch[rep->len + 2] = MLLP_CR;
		}
		*len = need;
		return 0;
	}
	if (rep->kind != MLLP_REPLY_ACK)
		return 0;
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.code = rep->ack_code;
	o.text = rep->ack_text;
	o.keep_control_id = r->cfg.keep_control_id;
	o.sequence = ++r->ack_seq;
	o.now = r->loop.wall_s; /* 0 (not yet set) means now */
	size_t n = 0;
	size_t room = r->scratch_cap > 3 ? r->scratch_cap - 3 : 0;
	int rc = mllp_ack_build(m->data, m->len, &o,
				room ? (char *)r->scratch + 1 : NULL, room, &n);
	if (rc == MLLP_ERR_BUFFER_TOO_SMALL) {
		if (scratch_reserve(r, n + 3) < 0)
			return MLLP_ERR_NO_MEMORY;
		rc = mllp_ack_build(m->data, m->len, &o, (char *)r->scratch + 1,
				    r->scratch_cap - 3, &n);
	}
	if (rc < 0)
		return rc;
	r->scratch[0] = MLLP_SB;
	r->scratch[n + 1] = MLLP_EB;
	r->scratch[n + 2] = MLLP_CR;
	*len = n + 3;
	return 0;
}

static void conn_arm_delay(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (!c->hhead) {
		mllpi_timer_disarm(&r->loop.timers, &c->delay);
		return;
	}
	if (mllpi_timer_arm(&r->loop.timers, &c->delay, c->hhead->due_us) < 0)
		conn_fail(c, MLLP_ERR_NO_MEMORY, "cannot arm reply timer");
}

/* Move held replies that are due (in order) into the write buffer. */
static void conn_release_held(struct rconn *c, uint64_t now)
{
	struct mllp_receiver *r = c->r;
	while (c->hhead && c->hhead->due_us <= now) {
		struct held *h = c->hhead;
		int rc = conn_append(c, h->bytes, h->len);
		if (rc < 0) {
			conn_fail(c, rc, "reply backlog exceeded");
			return;
		}
		c->hhead = h->next;
		if (!c->hhead)
			c->htail = NULL;
		c->held_bytes -= h->len;
		r->alloc.free(r->alloc.ctx, h, sizeof(*h) + h->len);
	}
	conn_arm_delay(c);
}

static void conn_on_frame(struct rconn *c, const unsigned char *data,
			  size_t len)
{
	struct mllp_receiver *r = c->r;
	struct mllp_message m = {
	    .data = data,
	    .len = len,
	    .kind = (len >= 3 && memcmp(data, "MSH", 3) == 0)
			? MLLP_MSG_HL7
			: MLLP_MSG_UNKNOWN,
	    .conn = &c->info,
	};
	c->last_active_us = r->loop.now_us;
	ST_ADD(r, st_msgs, 1);
	if (m.kind == MLLP_MSG_HL7)
		ST_ADD(r, st_hl7, 1);
	emit(r, MLLP_RECV_EV_MESSAGE_RECEIVED, &c->info, MLLP_CLOSE_NONE, 0, 0,
	     m.kind, len, 0);
	struct mllp_reply rep;
	memset(&rep, 0, sizeof(rep));
	r->cfg.dispatch(r->cfg.dispatch_ctx, &m, &rep);
	size_t n;
	int rc = build_reply(c, &m, &rep, &n);
	if (rc < 0) {
		logf_(r, MLLP_LOG_ERROR,
		      "connection from %s:%u: cannot build the reply: %s",
		      c->info.peer_address, c->info.peer_port,
		      mllp_strerror(rc));
		if (rc == MLLP_ERR_NO_MEMORY)
			conn_close(c, MLLP_CLOSE_ERROR, rc);
		return;
	}
	if (n == 0)
		return;
	if (rep.delay_ms == 0 && !c->hhead) {
		rc = conn_append(c, r->scratch, n);
		if (rc < 0)
			conn_fail(c, rc, "reply backlog exceeded");
		return;
	}
	/* Held: behind earlier held replies, never before them. */
	if (c->held_bytes + n > r->cfg.max_reply_backlog) {
		conn_fail(c, MLLP_ERR_WOULD_BLOCK, "reply backlog exceeded");
		return;
	}
	struct held *h = r->alloc.alloc(r->alloc.ctx, sizeof(*h) + n);
	if (!h) {
		conn_fail(c, MLLP_ERR_NO_MEMORY, "cannot hold the reply");
		return;
	}
	h->next = NULL;
	h->len = n;
	h->due_us = c->last_active_us + (uint64_t)rep.delay_ms * 1000u;
	if (c->htail && h->due_us < c->htail->due_us)
		h->due_us = c->htail->due_us;
	memcpy(h->bytes, r->scratch, n);
	if (c->htail)
		c->htail->next = h;
	else
		c->hhead = h;
	c->htail = h;
	c->held_bytes += n;
	if (c->hhead == h)
		conn_arm_delay(c);
}

static bool only_crlf(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

static void conn_on_data(struct rconn *c, const unsigned char *p, size_t len)
{
	struct mllp_receiver *r = c->r;
	ST_ADD(r, st_bytes_in, len);
	c->junk_run = 0;
	while (len > 0 && !c->closing) {
		size_t used;
		struct mllp_decoded ev;
		int rc = mllp_decoder_feed(&c->dec, p, len, &used, &ev);
		if (rc < 0) {
			if (rc == MLLP_ERR_FRAME_TOO_BIG) {
				ST_ADD(r, st_too_big, 1);
				logf_(r, MLLP_LOG_ERROR,
				      "connection from %s:%u: frame bigger "
				      "than %zu bytes, closing",
				      c->info.peer_address, c->info.peer_port,
				      r->cfg.max_frame);
				conn_close(c, MLLP_CLOSE_ERROR, rc);
			} else {
				conn_fail(c, rc, "decoder failure");
			}
			return;
		}
		p += used;
		len -= used;
		if (ev.kind == MLLP_DECODE_FRAME) {
			c->after_frame = true;
			conn_on_frame(c, ev.data, ev.len);
			if (!c->closing &&
			    c->dec.cap > r->cfg.read_buffer_keep &&
			    !mllp_decoder_in_frame(&c->dec))
				mllp_decoder_free(&c->dec);
		} else if (ev.kind == MLLP_DECODE_JUNK) {
			ST_ADD(r, st_junk, ev.len);
			/* A CR/LF after a frame (netcat): quietly dropped. */
			if (c->after_frame && only_crlf(ev.data, ev.len))
				continue;
			c->after_frame = false;
			c->junk_run += ev.len;
		}
	}
	if (c->junk_run && !c->closing)
		mllpi_rlog_junk(&r->log, &c->jlog, c->info.peer_address,
				c->info.peer_port, c->junk_run, r->loop.now_us);
	c->junk_run = 0;
	if (!c->closing)
		conn_flush(c);
}

static void conn_arm_recv(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	int rc = r->loop.ops->recv(r->loop.be, c->fd, tok(c, TOK_RECV));
	if (rc < 0) {
		conn_fail(c, rc, "cannot submit receive");
		return;
	}
	c->pending++;
	c->recv_armed = true;
}

static void conn_check_eof(struct rconn *c)
{
	if (c->eof && !c->closing && conn_drained(c))
		conn_close(c, MLLP_CLOSE_PEER, 0);
}

/* Read unless the reply backlog or the budget holds the connection back:
 * arm the recv, or cancel it (the send in flight, cancelled with it, is
 * submitted again by on_send). */
static void conn_reads(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->closing || c->eof || r->stopping || c->rd_cancel)
		return;
	bool want = !c->rd_backlog && !c->bc.paused;
	if (want && !c->recv_armed) {
		conn_arm_recv(c);
	} else if (!want && c->recv_armed &&
		   r->loop.ops->cancel_fd(r->loop.be, c->fd,
					  tok(c, TOK_CANCEL)) == 0) {
		c->pending++;
		c->rd_cancel = true;
	}
}

/* After each event of a connection: its unsent replies decide whether it
 * reads (reply_backlog_pause), its buffers count against the budget. */
static void conn_account(struct rconn *c)
{
	struct mllp_receiver *r = c->r;
	if (c->closing)
		return;
	size_t unsent = c->wr.len + c->held_bytes +
			(c->sending ? c->fl.len - c->fl_off : 0);
	size_t pause = r->cfg.reply_backlog_pause;
	if (pause < r->cfg.max_reply_backlog) {
		bool was = c->rd_backlog;
		c->rd_backlog = unsent > pause || (was && unsent > pause / 2);
		if (c->rd_backlog && !was)
			ST_ADD(r, st_paused, 1);
	}
	mllpi_rbudget_set(&r->budget, &c->bc,
			  c->dec.cap + c->wr.cap + c->fl.cap + c->held_bytes);
	conn_reads(c);
}

/* The connection that embeds bc. */
static struct rconn *bc_conn(struct mllpi_rbudget_conn *bc)
{
	return (struct rconn *)(void *)((char *)bc -
					offsetof(struct rconn, bc));
}

static void budget_reads(struct mllpi_rbudget_conn *bc)
{
	conn_reads(bc_conn(bc));
}

static void budget_shed(struct mllpi_rbudget_conn *bc)
{
	struct rconn *c = bc_conn(bc);
	logf_(c->r, MLLP_LOG_WARNING,
	      "connection from %s:%u: buffer budget exceeded (%zu bytes "
	      "held, max_buffered_bytes %zu), closing",
	      c->info.peer_address, c->info.peer_port, bc->bytes,
	      c->r->cfg.max_buffered_bytes);
	conn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_NO_MEMORY);
}

/* ---- TLS: ciphertext in ------------------------------------------------- */

/* The handshake failed: send the alert, log the engine's reason and close
 * (refused when the client's certificate is the problem). */
static void tls_refuse(struct rconn *c, const struct mllp_error *e)
{
	struct mllp_receiver *r = c->r;
	enum mllp_tls_failure f = mllp_tls_conn_failure(c->tls);
	bool refused =
	    !mllp_tls_conn_failure_by_peer(c->tls) &&
	    (f == MLLP_TLS_FAIL_UNKNOWN_CA || f == MLLP_TLS_FAIL_CERT_EXPIRED ||
	     f == MLLP_TLS_FAIL_CERT_NOT_YET_VALID ||
	     f == MLLP_TLS_FAIL_CERT_REVOKED ||
	     f == MLLP_TLS_FAIL_NO_CLIENT_CERT ||
	     f == MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED ||
	     f == MLLP_TLS_FAIL_BAD_CERT);
	logf_(r, MLLP_LOG_WARNING, "%s TLS connection from %s:%u: %s",
	      refused ? "refused" : "failed", c->info.peer_address,
	      c->info.peer_port, e->message);
	tls_send_direct(c);
	ST_ADD(r, st_tls_failed, 1);
	if (refused) {
		ST_ADD(r, st_refused, 1);
		ST_ADD(r, st_refused_by[REFUSED_TLS_CERT], 1);
	}
	conn_close(c, refused ? MLLP_CLOSE_REFUSED : MLLP_CLOSE_ERROR,
		   MLLP_ERR_TLS);
}

static void tls_on_data(struct rconn *c, const unsigned char *p, size_t len)
{
	struct mllp_receiver *r = c->r;
	struct mllp_error e;
	if (mllp_tls_conn_feed(c->tls, p, len) != 0) {
		conn_fail(c, MLLP_ERR_NO_MEMORY, "cannot buffer TLS input");
		return;
	}
	if (!c->tls_up) {
		int rc = mllp_tls_conn_handshake(c->tls, &e);
		if (rc == MLLP_ERR_WOULD_BLOCK) {
			tls_flush(c);
			return;
		}
		if (rc < 0) {
			tls_refuse(c, &e);
			return;
		}
		c->tls_up = true;
		bool resumed = mllp_tls_conn_session_reused(c->tls);
		ST_ADD(r, st_tls_hs, 1);
		ST_ADD(r, st_tls_resumed, resumed ? 1 : 0);
		const char *pn = mllp_tls_conn_peer_name(c->tls);
		if (pn)
			snprintf(c->info.tls_peer_name,
				 sizeof(c->info.tls_peer_name), "%s", pn);
		logf_(r, MLLP_LOG_DEBUG,
		      "TLS connection from %s:%u: %s %s%s, peer %s",
		      c->info.peer_address, c->info.peer_port,
		      mllp_tls_conn_version(c->tls),
		      mllp_tls_conn_cipher(c->tls), resumed ? " (resumed)" : "",
		      pn ? pn : "without certificate");
	}
	unsigned char buf[16384];
	while (!c->closing) {
		size_t got = 0;
		int rc = mllp_tls_conn_read(c->tls, buf, sizeof(buf), &got, &e);
		if (rc == 0) {
			conn_on_data(c, buf, got);
			continue;
		}
		if (rc == MLLP_ERR_WOULD_BLOCK)
			break;
		if (rc == MLLP_ERR_CLOSED) {
			c->eof = true; /* close_notify: as end of file */
			break;
		}
		logf_(r, MLLP_LOG_ERROR,
		      "TLS error on connection from %s:%u: %s",
		      c->info.peer_address, c->info.peer_port, e.message);
		tls_send_direct(c);
		conn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_TLS);
		return;
	}
	if (!c->closing)
		tls_flush(c);
	conn_check_eof(c);
}

static void on_recv(struct rconn *c, const struct mllpi_cqe *cq)
{
	if (!cq->more) {
		c->pending--;
		c->recv_armed = false;
	}
	if (c->closing) {
		conn_reap(c);
		return;
	}
	if (cq->res > 0 && cq->data) {
		if (c->tls)
			tls_on_data(c, cq->data, (size_t)cq->res);
		else
			conn_on_data(c, cq->data, (size_t)cq->res);
		if (c->closing) {
			conn_reap(c);
			return;
		}
	}
	if (cq->res == 0) {
		c->eof = true;
		conn_check_eof(c);
	} else if (cq->res < 0 && cq->res != -ENOBUFS &&
		   cq->res != -ECANCELED) {
		if (cq->res == -ECONNRESET)
			conn_close(c, MLLP_CLOSE_PEER, cq->res);
		else
			conn_fail(c, cq->res, "receive failed");
	}
	conn_account(c); /* -ENOBUFS, cancel or end: reads go on if allowed */
	conn_reap(c);
}

static void on_send(struct rconn *c, const struct mllpi_cqe *cq)
{
	struct mllp_receiver *r = c->r;
	/* Cancelled by conn_reads (nothing written): submit it again. */
	int res = cq->res == -ECANCELED ? 0 : cq->res;
	c->pending--;
	c->sending = false;
	if (c->closing) {
		conn_reap(c);
		return;
	}
	if (res < 0) {
		if (res == -EPIPE || res == -ECONNRESET)
			conn_close(c, MLLP_CLOSE_PEER, res);
		else
			conn_fail(c, res, "send failed");
		conn_reap(c);
		return;
	}
	ST_ADD(r, st_bytes_out, (uint64_t)res);
	c->fl_off += (size_t)res;
	if (c->fl_off < c->fl.len) {
		/* Short write: send the rest. */
		c->iov.iov_base = c->fl.p + c->fl_off;
		c->iov.iov_len = c->fl.len - c->fl_off;
		int rc = r->loop.ops->sendmsg(r->loop.be, c->fd, &c->msg,
					      tok(c, TOK_SEND));
		if (rc < 0) {
			conn_fail(c, rc, "cannot submit send");
			conn_reap(c);
			return;
		}
		c->pending++;
		c->sending = true;
		return;
	}
	ST_ADD(r, st_replies, c->fl.replies);
	c->last_active_us = r->loop.now_us;
	if (c->fl.replies > 0 || !c->tls) /* not for handshake flights */
		emit(r, MLLP_RECV_EV_REPLY_SENT, &c->info, MLLP_CLOSE_NONE, 0,
		     0, MLLP_MSG_UNKNOWN, c->fl.len, c->fl.replies);
	c->fl.len = 0;
	c->fl.replies = 0;
	obuf_trim(r, &c->fl);
	if (c->closing) {
		conn_reap(c);
		return;
	}
	conn_flush(c);
	obuf_trim(r, &c->wr);
	conn_check_eof(c);
	conn_account(c);
	conn_reap(c);
}

/* ---- accepting ---------------------------------------------------------- */

static void listener_arm(struct mllp_receiver *r)
{
	if (r->stopping || r->accept_armed)
		return;
	int rc = r->loop.ops->accept(r->loop.be, r->lfd, tok(r, TOK_ACCEPT));
	if (rc < 0) {
		logf_(r, MLLP_LOG_ERROR, "cannot submit accept: %s",
		      mllp_strerror(rc));
		mllpi_timer_arm(&r->loop.timers, &r->ltimer,
				mllpi_now_us() + ACCEPT_RETRY_US);
		return;
	}
	r->lpending++;
	r->accept_armed = true;
}

static void refuse(struct mllp_receiver *r, int fd,
		   const struct sockaddr_storage *peer,
		   const struct sockaddr_storage *local, const char *why,
		   enum refusal by)
{
	struct mllp_conn_info info;
	memset(&info, 0, sizeof(info));
	mllpi_addr_text(peer, info.peer_address, sizeof(info.peer_address),
			&info.peer_port);
	mllpi_addr_text(local, info.local_address, sizeof(info.local_address),
			&info.local_port);
	logf_(r, MLLP_LOG_WARNING, "refused connection from %s:%u: %s",
	      info.peer_address, info.peer_port, why);
	/* Abortive close: the client learns at once (RST). */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	ST_ADD(r, st_refused, 1);
	ST_ADD(r, st_refused_by[by], 1);
	emit(r, MLLP_RECV_EV_CONNECTION_STOP, &info, MLLP_CLOSE_REFUSED, 0, 0,
	     MLLP_MSG_UNKNOWN, 0, 0);
}

/* When the idle timer is due: idle_timeout after the last activity, or
 * sooner the handshake's limit (TLS); 0: no timer. */
static uint64_t conn_idle_due(const struct mllp_receiver *r,
			      const struct rconn *c)
{
	uint64_t due =
	    r->cfg.idle_timeout_ms
		? c->last_active_us + (uint64_t)r->cfg.idle_timeout_ms * 1000u
		: 0;
	if (c->tls && !c->tls_up && r->cfg.tls_handshake_timeout_ms) {
		uint64_t hd = c->start_us +
			      (uint64_t)r->cfg.tls_handshake_timeout_ms * 1000u;
		if (!due || hd < due)
			due = hd;
	}
	return due;
}

static void on_accepted(struct mllp_receiver *r, int fd)
{
	struct sockaddr_storage peer, local;
	socklen_t pl = sizeof(peer), ll = sizeof(local);
	memset(&peer, 0, sizeof(peer));
	memset(&local, 0, sizeof(local));
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
		close(fd); /* already gone */
		return;
	}
	getsockname(fd, (struct sockaddr *)&local, &ll);
	if (r->stopping) {
		close(fd);
		return;
	}
	if (!allowed(r, &peer)) {
		refuse(r, fd, &peer, &local, "not in allowed_clients",
		       REFUSED_ALLOW_LIST);
		return;
	}
	if (r->nconns >= r->cfg.max_connections) {
		refuse(r, fd, &peer, &local, "max_connections reached",
		       REFUSED_MAX_CONNECTIONS);
		return;
	}
	struct rconn *c = r->alloc.alloc(r->alloc.ctx, sizeof(*c));
	if (!c) {
		refuse(r, fd, &peer, &local, "out of memory",
		       REFUSED_MAX_CONNECTIONS);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->fd = fd;
	c->info.id = ++r->next_id;
	mllpi_addr_text(&peer, c->info.peer_address,
			sizeof(c->info.peer_address), &c->info.peer_port);
	mllpi_addr_text(&local, c->info.local_address,
			sizeof(c->info.local_address), &c->info.local_port);
	mllp_decoder_init(&c->dec, &r->fcfg, &r->alloc);
	c->idle.kind = T_IDLE;
	c->idle.owner = c;
	c->delay.kind = T_DELAY;
	c->delay.owner = c;
	c->start_us = c->last_active_us = mllpi_now_us();
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	r->nconns++;
	mllpi_rbudget_add(&r->budget, &c->bc);
	ST_ADD(r, st_accepted, 1);
	ST_ADD(r, st_active, 1);
	emit(r, MLLP_RECV_EV_CONNECTION_START, &c->info, MLLP_CLOSE_NONE, 0, 0,
	     MLLP_MSG_UNKNOWN, 0, 0);
	if (r->tls_ctx) {
		struct mllp_error e;
		int rc = mllp_tls_conn_new_server(r->tls_ctx, &c->tls, &e);
		if (rc < 0) {
			conn_fail(c, rc, "cannot start TLS");
			return;
		}
	}
	uint64_t due = conn_idle_due(r, c);
	if (due && mllpi_timer_arm(&r->loop.timers, &c->idle, due) < 0) {
		conn_fail(c, MLLP_ERR_NO_MEMORY, "cannot arm idle timer");
		return;
	}
	conn_arm_recv(c);
}

static void on_accept_cqe(struct mllp_receiver *r, const struct mllpi_cqe *cq)
{
	if (!cq->more) {
		r->lpending--;
		r->accept_armed = false;
	}
	if (cq->res >= 0) {
		on_accepted(r, cq->res);
	} else if (cq->res != -ECANCELED || !r->stopping) {
		logf_(r, MLLP_LOG_ERROR, "accept failed: %s",
		      mllp_strerror(cq->res));
	}
	if (!cq->more && !r->stopping) {
		if (cq->res < 0)
			mllpi_timer_arm(&r->loop.timers, &r->ltimer,
					mllpi_now_us() + ACCEPT_RETRY_US);
		else
			listener_arm(r);
	}
}

/* ---- the manager loop --------------------------------------------------- */

static void on_cqe(struct mllp_receiver *r, const struct mllpi_cqe *cq)
{
	unsigned op = (unsigned)(cq->token & TOK_MASK);
	void *obj = (void *)(uintptr_t)(cq->token & ~(uint64_t)TOK_MASK);
	switch (op) {
	case TOK_ACCEPT:
		on_accept_cqe(r, cq);
		break;
	case TOK_RECV:
		on_recv(obj, cq);
		break;
	case TOK_SEND:
		on_send(obj, cq);
		break;
	case TOK_CANCEL: {
		struct rconn *c = obj;
		c->pending--;
		c->rd_cancel = false;
		conn_reads(c);
		conn_reap(c);
		break;
	}
	default:
		break;
	}
}

static void on_timer(struct mllp_receiver *r, struct mllpi_timer *t,
		     uint64_t now)
{
	if (t->kind == T_LISTEN) {
		listener_arm(r);
		return;
	}
	struct rconn *c = t->owner;
	if (t->kind == T_DELAY) {
		conn_release_held(c, now);
		if (!c->closing)
			conn_flush(c);
		if (!c->closing)
			conn_check_eof(c);
		conn_account(c);
		return;
	}
	/* T_IDLE (and the TLS handshake's limit) */
	if (c->tls && !c->tls_up && r->cfg.tls_handshake_timeout_ms &&
	    c->start_us + (uint64_t)r->cfg.tls_handshake_timeout_ms * 1000u <=
		now) {
		logf_(r, MLLP_LOG_WARNING,
		      "TLS connection from %s:%u: %s (%u ms), closing",
		      c->info.peer_address, c->info.peer_port,
		      mllp_tls_failure_text(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
		      r->cfg.tls_handshake_timeout_ms);
		ST_ADD(r, st_tls_failed, 1);
		conn_close(c, MLLP_CLOSE_ERROR, MLLP_ERR_TIMEOUT);
		return;
	}
	uint64_t due = conn_idle_due(r, c);
	if (due == 0)
		return;
	if (due > now) {
		if (mllpi_timer_arm(&r->loop.timers, &c->idle, due) < 0)
			conn_fail(c, MLLP_ERR_NO_MEMORY, "timer");
		return;
	}
	logf_(r, MLLP_LOG_INFO, "connection from %s:%u idle for %u ms, closing",
	      c->info.peer_address, c->info.peer_port, r->cfg.idle_timeout_ms);
	conn_close(c, MLLP_CLOSE_IDLE_TIMEOUT, MLLP_ERR_TIMEOUT);
}

static void begin_stop(struct mllp_receiver *r)
{
	r->stopping = true;
	mllpi_timer_disarm(&r->loop.timers, &r->ltimer);
	if (r->lpending > 0 &&
	    r->loop.ops->cancel_fd(r->loop.be, r->lfd, 0) < 0)
		shutdown(r->lfd, SHUT_RDWR); /* ends the accept too */
	struct rconn *c = r->conns;
	while (c) {
		struct rconn *n = c->next;
		conn_close(c, MLLP_CLOSE_STOPPED, MLLP_ERR_STOPPED);
		c = n;
	}
}

/* ---- the manager: the loop's hooks (loop.h) ---------------------------- */

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
	listener_arm(r);
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
		begin_stop(r);
		free_dead(r);
	}
	return 0;
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
	free_dead(ctx);
}

static bool mgr_done(void *ctx)
{
	struct mllp_receiver *r = ctx;
	return r->stopping && r->nconns == 0 && r->lpending == 0;
}

/* The backend's wait() keeps failing with rc: no completion can come back
 * any more. Stop (logged once) and free every connection without waiting
 * for its completions. */
static void mgr_fatal(void *ctx, int rc)
{
	struct mllp_receiver *r = ctx;
	logf_(r, MLLP_LOG_ERROR,
	      "the receiver stopped: backend %s wait failed: %s",
	      r->loop.ops->name, mllp_strerror(rc));
	if (!r->stopping)
		begin_stop(r);
	free_dead(r);
	while (r->conns) {
		struct rconn *c = r->conns;
		c->pending = 0;
		conn_free(c);
	}
	r->lpending = 0;
}

static void mgr_warn(void *ctx, const char *line)
{
	struct mllp_receiver *r = ctx;
	/* whatever log_level: the one line that names the backend */
	enum mllp_log_level lvl = r->log.level;
	r->log.level = MLLP_LOG_WARNING;
	logf_(r, MLLP_LOG_WARNING, "%s", line);
	r->log.level = lvl;
}

static const struct mllpi_loop_hooks manager_hooks = {
    .setup = mgr_setup,
    .take_work = mgr_take_work,
    .on_timer = mgr_on_timer,
    .on_cqe = mgr_on_cqe,
    .end_turn = mgr_end_turn,
    .done = mgr_done,
    .fatal = mgr_fatal,
    .warn = mgr_warn,
};

/* ---- public API ------------------------------------------------------- */

static int open_listener(struct mllp_receiver *r, struct mllp_error *err)
{
	const char *host = r->cfg.address ? r->cfg.address : "0.0.0.0";
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%d", (int)r->cfg.port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gr = getaddrinfo(host, portstr, &hints, &res);
	if (gr != 0 || !res) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_BAD_ADDRESS,
			       "cannot resolve listen address %s: %s", host,
			       gai_strerror(gr));
		return MLLP_ERR_BAD_ADDRESS;
	}
	/* Made non-blocking by the manager when its backend wants it. */
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	int fd = socket(res->ai_family, type, 0);
	int rc = 0;
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, r->cfg.listen_backlog) < 0) {
		rc = -errno;
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		goto fail;
	}
	mllpi_addr_text(&ss, r->addr_str, sizeof(r->addr_str), &r->port);
	if (ss.ss_family == AF_INET6) /* keep "::" as given */
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr,
			  r->addr_str, sizeof(r->addr_str));
	freeaddrinfo(res);
	r->lfd = fd;
	return 0;
fail:
	if (rc == -EADDRINUSE)
		mllp_error_set(err, MLLP_CTX_NONE, rc,
			       "cannot listen on %s:%d: address already in use "
			       "(eaddrinuse)",
			       host, (int)r->cfg.port);
	else
		mllp_error_set(err, MLLP_CTX_NONE, rc,
			       "cannot listen on %s:%d: %s", host,
			       (int)r->cfg.port, strerror(-rc));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

static void receiver_free(struct mllp_receiver *r)
{
	if (r->lfd >= 0)
		close(r->lfd);
	mllpi_loop_fini(&r->loop);
	if (r->allow)
		r->alloc.free(r->alloc.ctx, r->allow,
			      r->allow_cap * sizeof(*r->allow));
	if (r->scratch)
		r->alloc.free(r->alloc.ctx, r->scratch, r->scratch_cap);
	mllp_tls_ctx_free(r->tls_ctx);
	mllpi_rlog_close(&r->log);
	pthread_mutex_destroy(&r->mu);
	struct mllp_allocator a = r->alloc;
	a.free(a.ctx, r, sizeof(*r));
}

int mllp_receiver_start(const struct mllp_receiver_config *cfg,
			struct mllp_receiver **out, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!out || !cfg) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	*out = NULL;
	if (cfg->port == MLLP_PORT_UNSET) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "No tcp port provided");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (!cfg->dispatch) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "No dispatcher module provided");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (cfg->port < 0 || cfg->port > 65535 || cfg->max_frame == 0 ||
	    cfg->max_connections == 0 || cfg->ring_entries == 0 ||
	    cfg->recv_buffers == 0 ||
	    (cfg->recv_buffers & (cfg->recv_buffers - 1)) ||
	    cfg->recv_buffers > 32768 || cfg->recv_buffer_size == 0 ||
	    cfg->max_reply_backlog == 0 || cfg->listen_backlog <= 0 ||
	    cfg->reply_backlog_pause == 0 ||
	    cfg->max_buffered_bytes < cfg->max_frame ||
	    (unsigned)cfg->backend > MLLP_BACKEND_EPOLL) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "invalid receiver configuration");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllp_allocator a;
	if (cfg->allocator)
		a = *cfg->allocator;
	else
		mllpi_default_allocator(&a);
	struct mllp_receiver *r = a.alloc(a.ctx, sizeof(*r));
	if (!r) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->alloc = a;
	mllpi_rlog_init(&r->log, cfg);
	mllpi_rbudget_init(&r->budget, cfg->max_buffered_bytes, budget_reads,
			   budget_shed);
	r->lfd = -1;
	struct mllpi_backend_config bc = {
	    .entries = cfg->ring_entries,
	    .recv_buffers = cfg->recv_buffers,
	    .recv_buffer_size = cfg->recv_buffer_size,
	    .alloc = &r->alloc,
	};
	mllpi_loop_init(&r->loop, NULL, cfg->backend, &bc, &manager_hooks, r);
	mllp_frame_config_init(&r->fcfg);
	r->fcfg.max_frame = cfg->max_frame;
	r->ltimer.kind = T_LISTEN;
	r->ltimer.owner = r;
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->stop_req, false);

	int rc = 0;
	bool cert_names = false;
	if (cfg->tls && cfg->tls->enabled) {
		/* Loads every file now: a bad path fails start, naming it. */
		struct mllp_tls_server_config sc = *cfg->tls;
		if (sc.require_client_cert && sc.n_allowed_clients == 0 &&
		    cfg->allowed_clients && cfg->allowed_clients_count > 0) {
			/* verify_peer: allowed_clients are certificate
			 * names (the reference's 0.9.7 semantics). */
			sc.allowed_clients = cfg->allowed_clients;
			sc.n_allowed_clients = cfg->allowed_clients_count;
			cert_names = true;
		}
		rc = mllp_tls_ctx_new_server(&sc, &r->tls_ctx, err);
		if (rc < 0) {
			receiver_free(r);
			return rc;
		}
	}
	r->cfg.tls = NULL; /* borrowed: not kept */
	r->cfg.allowed_clients = cert_names ? NULL : cfg->allowed_clients;
	rc = allow_build(r, &r->allow_cap, err);
	/* Not kept: the caller's strings need not outlive start. */
	r->cfg.allowed_clients = NULL;
	r->cfg.allowed_clients_count = 0;
	if (rc == 0)
		rc = open_listener(r, err);
	if (rc < 0) {
		receiver_free(r);
		return rc;
	}
	if (!r->tls_ctx)
		logf_(r, MLLP_LOG_WARNING, UNSECURED_WARNING);

	rc = mllpi_loop_start(&r->loop, "receiver", err);
	if (rc < 0) {
		receiver_free(r);
		return rc;
	}
	r->thread_started = true;
	*out = r;
	return 0;
}

uint16_t mllp_receiver_port(const struct mllp_receiver *r)
{
	return r ? r->port : 0;
}

const char *mllp_receiver_address(const struct mllp_receiver *r)
{
	return r ? r->addr_str : "";
}

const char *mllp_receiver_backend(const struct mllp_receiver *r)
{
	return r ? r->loop.ops->name : "none";
}

#define LOAD(f) atomic_load_explicit(&m->f, memory_order_relaxed)

void mllp_receiver_get_stats(const struct mllp_receiver *r,
			     struct mllp_receiver_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!r)
		return;
	/* C11 atomic_load takes a non-const pointer (fixed only in C17). */
	struct mllp_receiver *m = (struct mllp_receiver *)(uintptr_t)r;
	out->connections_accepted = LOAD(st_accepted);
	out->connections_active = LOAD(st_active);
	out->connections_refused = LOAD(st_refused);
	out->connections_idle_timeout = LOAD(st_idle);
	out->connections_error = LOAD(st_error);
	out->messages_received = LOAD(st_msgs);
	out->messages_hl7 = LOAD(st_hl7);
	out->replies_sent = LOAD(st_replies);
	out->bytes_received = LOAD(st_bytes_in);
	out->bytes_sent = LOAD(st_bytes_out);
	out->junk_bytes = LOAD(st_junk);
	out->frames_too_big = LOAD(st_too_big);
	out->buffered_bytes = LOAD(budget.st_total);
	out->buffered_bytes_peak = LOAD(budget.st_peak);
	out->connections_shed = LOAD(budget.st_shed);
	out->reads_paused = LOAD(st_paused) + LOAD(budget.st_pauses);
	out->log_lines_suppressed = LOAD(log.suppressed);
	out->log_lines_dropped = LOAD(log.dropped);
	out->connections_refused_allow_list =
	    LOAD(st_refused_by[REFUSED_ALLOW_LIST]);
	out->connections_refused_max_connections =
	    LOAD(st_refused_by[REFUSED_MAX_CONNECTIONS]);
	out->connections_refused_tls_cert =
	    LOAD(st_refused_by[REFUSED_TLS_CERT]);
	out->tls_handshakes = LOAD(st_tls_hs);
	out->tls_handshakes_resumed = LOAD(st_tls_resumed);
	out->tls_handshake_failures = LOAD(st_tls_failed);
}

int mllp_receiver_stop(struct mllp_receiver *r)
{
	if (!r || !r->thread_started)
		return 0;
	/* One caller stops and joins; concurrent ones wait on the mutex
	 * until it has (the manager no longer takes it once running). */
	pthread_mutex_lock(&r->mu);
	if (!r->joined) {
		/* release: the manager acquires it before acting on it. */
		atomic_store_explicit(&r->stop_req, true, memory_order_release);
		mllpi_loop_wake(&r->loop);
		mllpi_loop_join(&r->loop);
		r->joined = true;
		/* Nothing is outstanding on it any more: free the port. */
		close(r->lfd);
		r->lfd = -1;
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

void mllp_receiver_destroy(struct mllp_receiver *r)
{
	if (!r)
		return;
	mllp_receiver_stop(r);
	receiver_free(r);
}

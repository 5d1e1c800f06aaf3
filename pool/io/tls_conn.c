/* TLS on the pool's client connections: see tls_conn.h.
 *
 * Per socket: the engine connection and one flight buffer of ciphertext.
 * The engine's out buffer is copied into the flight buffer (take_out), so
 * the engine may be used (reads, writes) while a send is in flight; the
 * flight buffer lives with the socket and is freed only after the last
 * completion (sock_maybe_free).
 *
 * Byte accounting: the pool counts a message's plaintext bytes in c->sent
 * as they are written. Here plain_enc counts plaintext taken by the engine
 * and not yet in a flight, plain_tx the plaintext whose ciphertext the
 * flight in progress carries (attributed only once the engine holds no
 * plaintext back, so a completed flight means those bytes are on the
 * wire). A flight's completion hands plain_tx to the pool's TOK_SEND
 * logic, which asks for the rest through mllpi_tls_submit_send(). */
#include "pool_internal.h"
#include "tls_conn.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

struct mllpi_tls {
	struct mllp_tls_conn *conn;
	bool hs_done;
	bool sess_saved;
	bool tx_busy;
	unsigned char *tx;
	size_t tx_cap, tx_len, tx_off;
	size_t plain_enc, plain_tx;
	/* The peer's first two bytes (n_first of them so far): whether it
	 * speaks TLS at all, for the handshake timeout's message. */
	unsigned char first[2];
	size_t n_first;
	struct iovec iov;
	struct msghdr msg;
};

/* Plaintext goes to the engine in pieces of GATHER_MAX bytes (one TLS
 * record each) gathered across the iovecs (SB, payload, trailer): a small
 * message is one record, not one per iovec. */
#define GATHER_MAX 16384

static struct mllp_pool *pool_of(struct mllpi_conn *c)
{
	return c->ep->pool;
}

static uint64_t tls_tok(struct mllpi_sock *s)
{
	return (uint64_t)(uintptr_t)s | MLLPI_TOK_TLS_SEND;
}

static int tx_submit(struct mllp_pool *p, struct mllpi_sock *s,
		     struct mllpi_tls *t)
{
	t->iov.iov_base = t->tx + t->tx_off;
	t->iov.iov_len = t->tx_len - t->tx_off;
	memset(&t->msg, 0, sizeof(t->msg));
	t->msg.msg_iov = &t->iov;
	t->msg.msg_iovlen = 1;
	int rc = p->loop.ops->sendmsg(p->loop.be, s->fd, &t->msg, tls_tok(s));
	if (rc < 0)
		return rc;
	s->pending++;
	t->tx_busy = true;
	return 0;
}

/* Start a flight with what the engine has to send, unless one is in
 * flight. Returns 0 or an error (submit failure, engine failure). */
static int pump(struct mllp_pool *p, struct mllpi_sock *s, struct mllpi_tls *t)
{
	if (t->tx_busy)
		return 0;
	if (mllp_tls_conn_write_pending(t->conn) > 0) {
		int rc = mllp_tls_conn_flush(t->conn, NULL);
		if (rc < 0 && rc != MLLP_ERR_WOULD_BLOCK)
			return rc;
	}
	size_t n = mllp_tls_conn_out_pending(t->conn);
	if (n == 0)
		return 0;
	if (n > t->tx_cap) {
		size_t cap = t->tx_cap ? t->tx_cap : 4096;
		while (cap < n)
			cap *= 2;
		void *nb =
		    p->alloc.realloc(p->alloc.ctx, t->tx, t->tx_cap, cap);
		if (!nb)
			return MLLP_ERR_NO_MEMORY;
		t->tx = nb;
		t->tx_cap = cap;
	}
	t->tx_len = mllp_tls_conn_take_out(t->conn, t->tx, n);
	t->tx_off = 0;
	if (mllp_tls_conn_write_pending(t->conn) == 0) {
		t->plain_tx = t->plain_enc;
		t->plain_enc = 0;
	} else {
		t->plain_tx = 0;
	}
	return tx_submit(p, s, t);
}

/* Best effort: write a fatal alert (or close_notify) straight to the
 * socket before it is closed, so the peer learns why. Skipped while a
 * flight is in the backend (two writers could interleave). */
static void send_direct(struct mllpi_sock *s, struct mllpi_tls *t)
{
	const void *d;
	if (t->tx_busy)
		return;
	size_t n = mllp_tls_conn_out_peek(t->conn, &d);
	if (n > 0 && send(s->fd, d, n, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		mllp_tls_conn_out_consume(t->conn, n);
}

static void fail(struct mllpi_conn *c, struct mllpi_tls *t,
		 const struct mllp_error *e)
{
	send_direct(c->sock, t);
	mllpi_conn_tls_failed(c, e);
}

static void save_session(struct mllpi_conn *c, struct mllpi_tls *t)
{
	struct mllp_tls_session *s = mllp_tls_conn_get_session(t->conn);
	if (!s)
		return;
	mllp_tls_session_free(c->tls_sess);
	c->tls_sess = s;
	t->sess_saved = true;
}

/* Decrypt what was fed and hand it to the MLLP decoder. */
static void read_loop(struct mllpi_conn *c, struct mllpi_sock *s,
		      struct mllpi_tls *t)
{
	unsigned char buf[16384];
	struct mllp_error e;
	for (;;) {
		size_t got = 0;
		int rc =
		    mllp_tls_conn_read(t->conn, buf, sizeof(buf), &got, &e);
		if (!t->sess_saved)
			save_session(c, t);
		if (rc == 0) {
			mllpi_conn_tls_plain(c, buf, got);
			if (c->sock != s)
				return; /* closed meanwhile (s may be gone) */
			continue;
		}
		if (rc == MLLP_ERR_WOULD_BLOCK || rc == MLLP_ERR_CLOSED)
			break; /* CLOSED: close_notify; the FIN follows */
		fail(c, t, &e);
		return;
	}
	int rc = pump(pool_of(c), s, t);
	if (rc < 0) {
		mllp_error_set(&e, MLLP_CTX_SEND, rc, NULL);
		mllpi_conn_tls_failed(c, &e);
	}
}

static void drive_handshake(struct mllpi_conn *c, struct mllpi_sock *s,
			    struct mllpi_tls *t)
{
	struct mllp_error e;
	int rc = mllp_tls_conn_handshake(t->conn, &e);
	if (rc == MLLP_ERR_WOULD_BLOCK) {
		rc = pump(pool_of(c), s, t);
		if (rc < 0) {
			mllp_error_set(&e, MLLP_CTX_CONNECT, rc, NULL);
			mllpi_conn_tls_failed(c, &e);
		}
		return;
	}
	if (rc < 0) {
		fail(c, t, &e);
		return;
	}
	t->hs_done = true;
	mllpi_conn_tls_count(c, mllp_tls_conn_session_reused(t->conn));
	save_session(c, t);
	rc = pump(pool_of(c), s, t);
	if (rc < 0) {
		mllp_error_set(&e, MLLP_CTX_CONNECT, rc, NULL);
		mllpi_conn_tls_failed(c, &e);
		return;
	}
	mllpi_conn_tls_up(c);
	if (c->sock != s)
		return;
	/* Application data (or a session ticket) that came with the last
	 * handshake message. */
	read_loop(c, s, t);
}

void mllpi_tls_start(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllpi_sock *s = c->sock;
	struct mllp_error e;
	struct mllpi_tls *t = p->alloc.alloc(p->alloc.ctx, sizeof(*t));
	if (!t) {
		mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		mllpi_conn_tls_failed(c, &e);
		return;
	}
	memset(t, 0, sizeof(*t));
	int rc = mllp_tls_conn_new_client(ep->tls_ctx, ep->host, &t->conn, &e);
	if (rc < 0) {
		p->alloc.free(p->alloc.ctx, t, sizeof(*t));
		mllpi_conn_tls_failed(c, &e);
		return;
	}
	s->tls = t;
	if (c->tls_sess)
		(void)mllp_tls_conn_set_session(t->conn, c->tls_sess);
	/* The handshake has its own connect_timeout, from now. */
	c->timer.kind = T_CONNECT;
	mllpi_timer_arm(&p->loop.timers, &c->timer,
			mllpi_now_us() +
			    (uint64_t)ep->opts.connect_timeout * 1000u);
	mllpi_conn_tls_arm_recv(c);
	if (c->sock != s)
		return;
	drive_handshake(c, s, t);
}

void mllpi_tls_on_recv(struct mllpi_conn *c, const unsigned char *data,
		       size_t len)
{
	struct mllpi_sock *s = c->sock;
	struct mllpi_tls *t = s->tls;
	for (size_t i = 0; i < len && t->n_first < sizeof(t->first); i++)
		t->first[t->n_first++] = data[i];
	if (mllp_tls_conn_feed(t->conn, data, len) != 0) {
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		mllpi_conn_tls_failed(c, &e);
		return;
	}
	if (!t->hs_done)
		drive_handshake(c, s, t);
	else
		read_loop(c, s, t);
}

bool mllpi_tls_handshaking(const struct mllpi_sock *s)
{
	return s->tls && !s->tls->hs_done;
}

void mllpi_tls_on_eof(struct mllpi_conn *c, int res)
{
	struct mllpi_tls *t = c->sock->tls;
	struct mllp_error e;
	mllp_tls_conn_feed_eof(t->conn);
	int rc = mllp_tls_conn_handshake(t->conn, &e);
	if (rc != MLLP_ERR_TLS) {
		/* The engine did not classify it: closed during the
		 * handshake. */
		mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "%s during the TLS handshake (%s)",
			       mllp_tls_failure_text(MLLP_TLS_FAIL_CLOSED),
			       res == 0 ? "end of file" : mllp_strerror(res));
	}
	mllpi_conn_tls_failed(c, &e);
}

/* Plaintext of the message from byte `skip` on, at most `cap` bytes, as
 * one piece: a pointer into the iovec when the piece lies in one, else
 * copied into buf. Returns the piece's length (0: nothing left). */
static size_t next_piece(const struct mllpi_conn *c, size_t skip, size_t cap,
			 unsigned char *buf, const unsigned char **out)
{
	size_t at = 0;
	*out = buf;
	for (int i = 0; i < c->iov_full_n && at < cap; i++) {
		const unsigned char *b = c->iov_full[i].iov_base;
		size_t l = c->iov_full[i].iov_len;
		if (skip >= l) {
			skip -= l;
			continue;
		}
		b += skip;
		l -= skip;
		skip = 0;
		if (l > cap - at)
			l = cap - at;
		if (at == 0 && l == cap) {
			*out = b; /* whole piece in this iovec: no copy */
			return l;
		}
		memcpy(buf + at, b, l);
		at += l;
	}
	return at;
}

int mllpi_tls_submit_send(struct mllpi_conn *c)
{
	struct mllp_pool *p = pool_of(c);
	struct mllpi_sock *s = c->sock;
	struct mllpi_tls *t = s->tls;
	if (!t->hs_done)
		return MLLP_ERR_BAD_STATE;
	size_t skip = c->sent + t->plain_enc + t->plain_tx;
	size_t left = c->total > skip ? c->total - skip : 0;
	unsigned char gather[GATHER_MAX];
	/* Records of GATHER_MAX plaintext bytes (one wolfSSL_write, one
	 * record each), the last one shorter: the start block, payload and
	 * trailer share records instead of one record per iovec. */
	while (left > 0) {
		const unsigned char *b;
		size_t cap = left < sizeof(gather) ? left : sizeof(gather);
		size_t l = next_piece(c, skip, cap, gather, &b);
		size_t w = 0;
		if (l == 0)
			break;
		int rc = mllp_tls_conn_write(t->conn, b, l, &w, NULL);
		if (rc == MLLP_ERR_WOULD_BLOCK)
			break;
		if (rc < 0)
			return rc;
		t->plain_enc += w;
		skip += w;
		left -= w;
		if (w < l || mllp_tls_conn_write_pending(t->conn))
			break;
	}
	c->send_in_flight = true;
	int rc = pump(p, s, t);
	if (rc < 0) {
		c->send_in_flight = false;
		return rc;
	}
	return 0;
}

bool mllpi_tls_on_send(struct mllpi_conn *c, int res, int *plain)
{
	struct mllp_pool *p = pool_of(c);
	struct mllpi_sock *s = c->sock;
	struct mllpi_tls *t = s->tls;
	struct mllp_error e;
	t->tx_busy = false;
	if (res >= 0) {
		t->tx_off += (size_t)res;
		if (t->tx_off < t->tx_len) {
			res = tx_submit(p, s, t); /* short write: the rest */
			if (res == 0)
				return false;
		}
	}
	if (res < 0) {
		if (c->send_in_flight) {
			*plain = res;
			return true;
		}
		mllp_error_set(&e,
			       t->hs_done ? MLLP_CTX_SEND : MLLP_CTX_CONNECT,
			       res, NULL);
		mllpi_conn_tls_failed(c, &e);
		return false;
	}
	t->tx_len = t->tx_off = 0;
	size_t done = t->plain_tx;
	t->plain_tx = 0;
	if (c->send_in_flight) {
		/* The message is written through when done completes it:
		 * anything else the engine produced meanwhile goes on now. */
		if (c->sent + done >= c->total) {
			int rc = pump(p, s, t);
			if (rc < 0) {
				*plain = rc;
				return true;
			}
		}
		*plain = (int)done;
		return true;
	}
	int rc = pump(p, s, t);
	if (rc < 0) {
		mllp_error_set(&e,
			       t->hs_done ? MLLP_CTX_SEND : MLLP_CTX_CONNECT,
			       rc, NULL);
		mllpi_conn_tls_failed(c, &e);
	}
	return false;
}

/* Whether the peer's first bytes so far can start a server's TLS record
 * (handshake 0x16 or alert 0x15, then version major 3). */
static bool peer_sent_tls(const struct mllpi_tls *t)
{
	if (t->n_first == 0 || (t->first[0] != 0x16 && t->first[0] != 0x15))
		return false;
	return t->n_first < 2 || t->first[1] == 0x03;
}

void mllpi_tls_timeout(struct mllpi_conn *c)
{
	const struct mllpi_tls *t = c->sock ? c->sock->tls : NULL;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_TLS, "%s (%u ms)%s",
		       mllp_tls_failure_text(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
		       c->ep->opts.connect_timeout,
		       t && !peer_sent_tls(t)
			   ? ": the peer sent no TLS handshake: is it a "
			     "plaintext MLLP port?"
			   : "");
	mllpi_conn_tls_failed(c, &e);
}

void mllpi_tls_close(struct mllp_pool *p, struct mllpi_sock *s, bool abortive)
{
	(void)p;
	struct mllpi_tls *t = s->tls;
	if (abortive || !t->hs_done || t->tx_busy)
		return;
	if (mllp_tls_conn_out_pending(t->conn) == 0 &&
	    mllp_tls_conn_shutdown(t->conn, NULL) == 0)
		send_direct(s, t);
}

void mllpi_tls_free(struct mllp_pool *p, struct mllpi_sock *s)
{
	struct mllpi_tls *t = s->tls;
	if (!t)
		return;
	s->tls = NULL;
	mllp_tls_conn_free(t->conn);
	if (t->tx)
		p->alloc.free(p->alloc.ctx, t->tx, t->tx_cap);
	p->alloc.free(p->alloc.ctx, t, sizeof(*t));
}

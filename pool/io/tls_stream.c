/* A TLS stream over one socket, for the pool's and the receiver's
 * connections: see tls_stream.h.
 *
 * The engine's out buffer is copied into the stream's flight buffer
 * (take_out), so the engine may be used (reads, writes) while a send is in
 * flight; the flight buffer lives with the stream, freed only once no send
 * is outstanding.
 *
 * Byte accounting: plain_enc counts plaintext taken by the engine and not
 * yet in a flight, plain_tx the plaintext whose ciphertext the flight in
 * progress carries (attributed only once the engine holds no plaintext
 * back, so a completed flight means those bytes are on the wire). A
 * flight's completion reports plain_tx to the owner (`sent`). */
#include "tls_stream.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

struct mllpi_tls_stream {
	struct mllp_tls_conn *conn;
	struct mllpi_tls_stream_cbs cb;
	void *ctx;
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *be;
	int fd;
	uint64_t token;
	struct mllp_allocator alloc;
	size_t keep;
	bool hs_done;
	bool sess_saved;
	bool busy;   /* a send of tx is outstanding */
	bool closed; /* the owner closed: no callbacks */
	bool dead;   /* failed: no callbacks */
	unsigned char *tx;
	size_t tx_cap, tx_len, tx_off;
	size_t plain_enc, plain_tx;
	/* The peer's first two bytes (n_first of them so far): whether it
	 * speaks TLS at all. */
	unsigned char first[2];
	size_t n_first;
	struct iovec iov;
	struct msghdr msg;
};

/* Plaintext goes to the engine in pieces of GATHER_MAX bytes (one TLS
 * record each) gathered across the iovecs (SB, payload, trailer): a small
 * message is one record, not one per iovec. */
#define GATHER_MAX 16384

static bool stopped(const struct mllpi_tls_stream *t)
{
	return t->closed || t->dead;
}

static void fail(struct mllpi_tls_stream *t, const struct mllp_error *e)
{
	if (stopped(t))
		return;
	t->dead = true;
	t->cb.failed(t->ctx, e);
}

static void fail_code(struct mllpi_tls_stream *t, enum mllp_context ctx,
		      int reason)
{
	struct mllp_error e;
	mllp_error_set(&e, ctx, reason, NULL);
	fail(t, &e);
}

/* The context of a failed send: connect while the handshake runs. */
static enum mllp_context send_ctx(const struct mllpi_tls_stream *t)
{
	return t->hs_done ? MLLP_CTX_SEND : MLLP_CTX_CONNECT;
}

static int tx_submit(struct mllpi_tls_stream *t)
{
	t->iov.iov_base = t->tx + t->tx_off;
	t->iov.iov_len = t->tx_len - t->tx_off;
	memset(&t->msg, 0, sizeof(t->msg));
	t->msg.msg_iov = &t->iov;
	t->msg.msg_iovlen = 1;
	int rc = t->ops->sendmsg(t->be, t->fd, &t->msg, t->token);
	if (rc < 0)
		return rc;
	t->busy = true;
	return 0;
}

static int tx_reserve(struct mllpi_tls_stream *t, size_t n)
{
	if (n <= t->tx_cap)
		return 0;
	size_t cap = t->tx_cap ? t->tx_cap : 4096;
	while (cap < n)
		cap *= 2;
	void *nb = t->alloc.realloc(t->alloc.ctx, t->tx, t->tx_cap, cap);
	if (!nb)
		return MLLP_ERR_NO_MEMORY;
	t->tx = nb;
	t->tx_cap = cap;
	return 0;
}

/* Start a flight with what the engine has to send, unless one is in
 * flight. Returns 0 or an error (submit failure, engine failure). */
static int pump(struct mllpi_tls_stream *t)
{
	if (t->busy)
		return 0;
	if (mllp_tls_conn_write_pending(t->conn) > 0) {
		int rc = mllp_tls_conn_flush(t->conn, NULL);
		if (rc < 0 && rc != MLLP_ERR_WOULD_BLOCK)
			return rc;
	}
	size_t n = mllp_tls_conn_out_pending(t->conn);
	if (n == 0)
		return 0;
	int rc = tx_reserve(t, n);
	if (rc < 0)
		return rc;
	t->tx_len = mllp_tls_conn_take_out(t->conn, t->tx, n);
	t->tx_off = 0;
	if (mllp_tls_conn_write_pending(t->conn) == 0) {
		t->plain_tx = t->plain_enc;
		t->plain_enc = 0;
	} else {
		t->plain_tx = 0;
	}
	return tx_submit(t);
}

static void pump_or_fail(struct mllpi_tls_stream *t, enum mllp_context ctx)
{
	int rc = pump(t);
	if (rc < 0)
		fail_code(t, ctx, rc);
}

/* Best effort: write what the engine has (a fatal alert, close_notify)
 * straight to the socket before it is closed, so the peer learns why.
 * Skipped while a flight is in the backend (two writers could
 * interleave). */
static void send_direct(struct mllpi_tls_stream *t)
{
	const void *d;
	if (t->busy)
		return;
	size_t n = mllp_tls_conn_out_peek(t->conn, &d);
	if (n > 0 && send(t->fd, d, n, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
		mllp_tls_conn_out_consume(t->conn, n);
}

/* The engine failed (e: its wording): its alert goes out first. */
static void engine_fail(struct mllpi_tls_stream *t, const struct mllp_error *e)
{
	send_direct(t);
	fail(t, e);
}

static void save_session(struct mllpi_tls_stream *t)
{
	if (!t->cb.session)
		return;
	struct mllp_tls_session *s = mllp_tls_conn_get_session(t->conn);
	if (!s)
		return;
	t->sess_saved = true;
	t->cb.session(t->ctx, s);
}

/* Decrypt what was fed and hand it up, then send what the engine has. */
static void read_loop(struct mllpi_tls_stream *t)
{
	unsigned char buf[16384];
	struct mllp_error e;
	for (;;) {
		size_t got = 0;
		int rc =
		    mllp_tls_conn_read(t->conn, buf, sizeof(buf), &got, &e);
		if (!t->sess_saved)
			save_session(t);
		if (rc == 0) {
			t->cb.plain_in(t->ctx, buf, got);
			if (stopped(t))
				return;
			continue;
		}
		if (rc == MLLP_ERR_WOULD_BLOCK)
			break;
		if (rc == MLLP_ERR_CLOSED) {
			/* close_notify: the end of file follows */
			if (t->cb.peer_closed) {
				t->cb.peer_closed(t->ctx);
				if (stopped(t))
					return;
			}
			break;
		}
		engine_fail(t, &e);
		return;
	}
	pump_or_fail(t, MLLP_CTX_SEND);
}

static void drive_handshake(struct mllpi_tls_stream *t)
{
	struct mllp_error e;
	int rc = mllp_tls_conn_handshake(t->conn, &e);
	if (rc == MLLP_ERR_WOULD_BLOCK) {
		pump_or_fail(t, MLLP_CTX_CONNECT);
		return;
	}
	if (rc < 0) {
		engine_fail(t, &e);
		return;
	}
	t->hs_done = true;
	save_session(t);
	t->cb.handshake_done(t->ctx, mllp_tls_conn_session_reused(t->conn));
	if (stopped(t))
		return;
	/* Application data (or a session ticket) that came with the last
	 * handshake message; then the handshake's last flight (with what
	 * the owner wrote meanwhile) goes out. */
	read_loop(t);
}

int mllpi_tls_stream_new(const struct mllpi_tls_stream_io *io,
			 const struct mllpi_tls_stream_cbs *cbs, void *ctx,
			 struct mllp_tls_conn *conn,
			 struct mllpi_tls_stream **out)
{
	struct mllpi_tls_stream *t =
	    io->alloc->alloc(io->alloc->ctx, sizeof(*t));
	if (!t) {
		mllp_tls_conn_free(conn);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(t, 0, sizeof(*t));
	t->conn = conn;
	t->cb = *cbs;
	t->ctx = ctx;
	t->ops = io->ops;
	t->be = io->be;
	t->fd = io->fd;
	t->token = io->token;
	t->alloc = *io->alloc;
	t->keep = io->keep;
	*out = t;
	return 0;
}

void mllpi_tls_stream_start(struct mllpi_tls_stream *t)
{
	if (!stopped(t))
		drive_handshake(t);
}

void mllpi_tls_stream_on_recv(struct mllpi_tls_stream *t,
			      const unsigned char *data, size_t len)
{
	if (stopped(t))
		return;
	for (size_t i = 0; i < len && t->n_first < sizeof(t->first); i++)
		t->first[t->n_first++] = data[i];
	if (mllp_tls_conn_feed(t->conn, data, len) != 0) {
		fail_code(t, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY);
		return;
	}
	if (!t->hs_done)
		drive_handshake(t);
	else
		read_loop(t);
}

void mllpi_tls_stream_on_eof(struct mllpi_tls_stream *t, int res)
{
	struct mllp_error e;
	if (stopped(t))
		return;
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
	fail(t, &e);
}

void mllpi_tls_stream_on_sent(struct mllpi_tls_stream *t, int res)
{
	t->busy = false;
	if (stopped(t))
		return;
	if (res == -ECANCELED)
		res = 0; /* cancelled by the owner (nothing written): again */
	if (res >= 0) {
		t->tx_off += (size_t)res;
		if (t->tx_off < t->tx_len) {
			res = tx_submit(t); /* short write: the rest */
			if (res == 0)
				return;
		}
	}
	if (res < 0) {
		fail_code(t, send_ctx(t), res);
		return;
	}
	size_t wire = t->tx_len, plain = t->plain_tx;
	t->tx_len = t->tx_off = 0;
	t->plain_tx = 0;
	if (t->tx_cap > t->keep) {
		t->alloc.free(t->alloc.ctx, t->tx, t->tx_cap);
		t->tx = NULL;
		t->tx_cap = 0;
	}
	if (t->cb.sent) {
		t->cb.sent(t->ctx, plain, wire);
		if (stopped(t))
			return;
	}
	pump_or_fail(t, send_ctx(t));
}

/* Plaintext from byte `skip` on, at most `cap` bytes, as one piece: a
 * pointer into the iovec when the piece lies in one, else copied into
 * buf. Returns the piece's length (0: nothing left). */
static size_t next_piece(const struct iovec *iov, int n, size_t skip,
			 size_t cap, unsigned char *buf,
			 const unsigned char **out)
{
	size_t at = 0;
	*out = buf;
	for (int i = 0; i < n && at < cap; i++) {
		const unsigned char *b = iov[i].iov_base;
		size_t l = iov[i].iov_len;
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

int mllpi_tls_stream_write(struct mllpi_tls_stream *t, const struct iovec *iov,
			   int n, size_t skip, size_t *taken)
{
	*taken = 0;
	if (!t->hs_done || stopped(t))
		return MLLP_ERR_BAD_STATE;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	size_t left = total > skip ? total - skip : 0;
	unsigned char gather[GATHER_MAX];
	/* Records of GATHER_MAX plaintext bytes (one engine write, one
	 * record each), the last one shorter. */
	while (left > 0) {
		const unsigned char *b;
		size_t cap = left < sizeof(gather) ? left : sizeof(gather);
		size_t l = next_piece(iov, n, skip, cap, gather, &b);
		size_t w = 0;
		if (l == 0)
			break;
		int rc = mllp_tls_conn_write(t->conn, b, l, &w, NULL);
		if (rc == MLLP_ERR_WOULD_BLOCK)
			break;
		if (rc < 0) {
			t->dead = true;
			return rc;
		}
		t->plain_enc += w;
		*taken += w;
		skip += w;
		left -= w;
		if (w < l || mllp_tls_conn_write_pending(t->conn))
			break;
	}
	int rc = pump(t);
	if (rc < 0)
		t->dead = true;
	return rc;
}

void mllpi_tls_stream_close(struct mllpi_tls_stream *t, bool notify)
{
	if (t->closed)
		return;
	bool dead = t->dead;
	t->closed = true;
	if (!notify || dead || !t->hs_done || t->busy)
		return;
	if (mllp_tls_conn_out_pending(t->conn) == 0 &&
	    mllp_tls_conn_shutdown(t->conn, NULL) == 0)
		send_direct(t);
}

void mllpi_tls_stream_abandon(struct mllpi_tls_stream *t)
{
	t->busy = false;
	t->dead = true;
}

void mllpi_tls_stream_free(struct mllpi_tls_stream *t)
{
	if (!t)
		return;
	mllp_tls_conn_free(t->conn);
	if (t->tx)
		t->alloc.free(t->alloc.ctx, t->tx, t->tx_cap);
	t->alloc.free(t->alloc.ctx, t, sizeof(*t));
}

bool mllpi_tls_stream_handshaking(const struct mllpi_tls_stream *t)
{
	return !t->hs_done;
}

bool mllpi_tls_stream_busy(const struct mllpi_tls_stream *t)
{
	return t->busy;
}

bool mllpi_tls_stream_drained(const struct mllpi_tls_stream *t)
{
	return !t->busy && mllp_tls_conn_out_pending(t->conn) == 0;
}

size_t mllpi_tls_stream_plain_unsent(const struct mllpi_tls_stream *t)
{
	return t->plain_enc + t->plain_tx;
}

size_t mllpi_tls_stream_wire_unsent(const struct mllpi_tls_stream *t)
{
	return t->busy ? t->tx_len - t->tx_off : 0;
}

size_t mllpi_tls_stream_buffered(const struct mllpi_tls_stream *t)
{
	return t->tx_cap;
}

bool mllpi_tls_stream_peer_sent_tls(const struct mllpi_tls_stream *t)
{
	if (t->n_first == 0 || (t->first[0] != 0x16 && t->first[0] != 0x15))
		return false;
	return t->n_first < 2 || t->first[1] == 0x03;
}

struct mllp_tls_conn *mllpi_tls_stream_engine(const struct mllpi_tls_stream *t)
{
	return t->conn;
}

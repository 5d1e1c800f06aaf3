/* Internal: a TLS stream over one socket (tls_stream.c), shared by the
 * pool's connections and the receiver's, over the memory-buffer engine
 * (include/mllp/tls.h).
 *
 * The stream is the one owner of the socket's TLS send state: it drives
 * the handshake, feeds received ciphertext to the engine, hands plaintext
 * up, and sends the engine's ciphertext from its own flight buffer through
 * the backend's sendmsg, one send in flight, with the owner's token for
 * it. It knows nothing of the owner's connection: it reports through
 * callbacks what really happened, and the owner keeps its plaintext send
 * state (what to write next, what a written byte completes).
 *
 * The owner:
 *   - creates the engine connection (client or server) and hands it over
 *     with mllpi_tls_stream_new; a client then calls
 *     mllpi_tls_stream_start (its first handshake flight); a server's
 *     handshake starts with the peer's first bytes;
 *   - passes received ciphertext to mllpi_tls_stream_on_recv, and the
 *     completions of the stream's token to mllpi_tls_stream_on_sent;
 *   - writes plaintext with mllpi_tls_stream_write (after the handshake);
 *   - calls mllpi_tls_stream_close when its connection closes (then no
 *     callback comes any more) and mllpi_tls_stream_free once no send of
 *     the stream is outstanding (mllpi_tls_stream_busy), never from inside
 *     a callback.
 *
 * Callbacks run on the owner's thread from inside the calls above; any of
 * them may close the stream (and the stream then stops at once). After
 * `failed` the stream is dead: it does nothing more but wait for its send
 * in flight and for close/free. A function that returns an error does not
 * call `failed` for it.
 *
 * Everything runs on the manager thread. */
#ifndef MLLPI_TLS_STREAM_H
#define MLLPI_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <mllp/alloc.h>
#include <mllp/error.h>
#include <mllp/tls.h>

#include "backend.h"

struct mllpi_tls_stream;

struct mllpi_tls_stream_cbs {
	/* Plaintext from the peer (data valid during the call only). */
	void (*plain_in)(void *ctx, const unsigned char *data, size_t len);
	/* The handshake completed (resumed: an abbreviated one). */
	void (*handshake_done)(void *ctx, bool resumed);
	/* The stream failed: the engine (context tls, reason MLLP_ERR_TLS,
	 * the engine's wording; its alert already written to the socket),
	 * a send of ciphertext (context connect during the handshake, send
	 * after it; reason -errno or an MLLP_ERR_ code), or memory (context
	 * tls, MLLP_ERR_NO_MEMORY). The stream is dead afterwards. */
	void (*failed)(void *ctx, const struct mllp_error *e);
	/* A flight of `wire` ciphertext bytes is written; `plain` plaintext
	 * bytes (0 or more) are now wholly on the wire: every byte accepted
	 * by mllpi_tls_stream_write up to the flight's start, when the
	 * engine held none of them back. Optional. */
	void (*sent)(void *ctx, size_t plain, size_t wire);
	/* The peer ended the TLS connection (close_notify); the end of file
	 * follows. Optional. */
	void (*peer_closed)(void *ctx);
	/* Client: a session to offer on the next connection (after the
	 * handshake, and once more when a TLS 1.3 ticket arrives). The
	 * owner takes it (mllp_tls_session_free). Optional. */
	void (*session)(void *ctx, struct mllp_tls_session *s);
};

/* Where the stream sends: the backend, the socket and the token of its
 * sends (the owner routes that token's completions to
 * mllpi_tls_stream_on_sent), the allocator of its buffers, and how big a
 * flight buffer may stay allocated between flights (SIZE_MAX: any). */
struct mllpi_tls_stream_io {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *be;
	int fd;
	uint64_t token;
	const struct mllp_allocator *alloc;
	size_t keep;
};

/* A stream over engine connection conn (taken over: freed with the
 * stream, or here on failure). io and cbs are copied. 0 or
 * MLLP_ERR_NO_MEMORY. */
int mllpi_tls_stream_new(const struct mllpi_tls_stream_io *io,
			 const struct mllpi_tls_stream_cbs *cbs, void *ctx,
			 struct mllp_tls_conn *conn,
			 struct mllpi_tls_stream **out);
/* Client: send the first handshake flight. Failures go to `failed`. */
void mllpi_tls_stream_start(struct mllpi_tls_stream *t);
/* Ciphertext received from the peer: drive the handshake, hand the
 * plaintext up, send what the engine has to send. */
void mllpi_tls_stream_on_recv(struct mllpi_tls_stream *t,
			      const unsigned char *data, size_t len);
/* End of file (res 0) or a receive error (res < 0) during the handshake:
 * `failed` with the engine's reading of it (context tls). */
void mllpi_tls_stream_on_eof(struct mllpi_tls_stream *t, int res);
/* A completion of the stream's token (res: bytes written or -errno). */
void mllpi_tls_stream_on_sent(struct mllpi_tls_stream *t, int res);
/* Encrypt plaintext: the bytes of iov[0..n) from byte `skip` on, as much
 * as the engine takes (*taken), in records of up to 16 KiB gathered
 * across the iovecs, and start a flight unless one is in flight. 0, or an
 * error (MLLP_ERR_BAD_STATE before the handshake completed, the engine's,
 * a failed submission): then nothing is reported to `failed`. */
int mllpi_tls_stream_write(struct mllpi_tls_stream *t, const struct iovec *iov,
			   int n, size_t skip, size_t *taken);
/* The owner's connection closes: no callback any more. notify: an orderly
 * close (best effort: close_notify written straight to the socket, when
 * the handshake is done and no flight is out). */
void mllpi_tls_stream_close(struct mllpi_tls_stream *t, bool notify);
/* The backend failed for good: the send in flight will never complete;
 * the stream takes it as ended (then it may be freed). */
void mllpi_tls_stream_abandon(struct mllpi_tls_stream *t);
/* Free (t may be NULL); only when not busy. */
void mllpi_tls_stream_free(struct mllpi_tls_stream *t);

/* Whether the handshake still runs. */
bool mllpi_tls_stream_handshaking(const struct mllpi_tls_stream *t);
/* Whether a send of the stream is outstanding in the backend. */
bool mllpi_tls_stream_busy(const struct mllpi_tls_stream *t);
/* Nothing in flight and no ciphertext waiting in the engine. */
bool mllpi_tls_stream_drained(const struct mllpi_tls_stream *t);
/* Plaintext accepted by mllpi_tls_stream_write and not yet reported by
 * `sent`. */
size_t mllpi_tls_stream_plain_unsent(const struct mllpi_tls_stream *t);
/* Ciphertext of the flight in progress not yet written, and the bytes the
 * stream holds allocated (for the owner's memory accounting). */
size_t mllpi_tls_stream_wire_unsent(const struct mllpi_tls_stream *t);
size_t mllpi_tls_stream_buffered(const struct mllpi_tls_stream *t);
/* Whether the peer's first bytes so far can start a TLS record from a
 * server (handshake or alert, version major 3): false when it sent
 * nothing or something else (a plaintext service). */
bool mllpi_tls_stream_peer_sent_tls(const struct mllpi_tls_stream *t);
/* The engine connection, for the owner's questions (peer name, version,
 * failure, close_notify); not to be driven by the owner. */
struct mllp_tls_conn *mllpi_tls_stream_engine(const struct mllpi_tls_stream *t);

#endif

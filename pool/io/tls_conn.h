/* Internal: TLS on the pool's client connections (tls_conn.c), over the
 * shared memory-buffer engine (include/mllp/tls.h).
 *
 * The connection code calls in at a few points only, and only when the
 * socket has TLS state (sock->tls != NULL): the plaintext path pays one
 * pointer test.
 *
 *   TCP connect done   on_connected() -> mllpi_tls_start(): the handshake
 *                      runs under the connect timer (a fresh
 *                      connect_timeout); when it completes the connection
 *                      goes up through mllpi_conn_tls_up() (on_connected).
 *   recv data          mllpi_tls_on_recv(): ciphertext in, plaintext to
 *                      the MLLP decoder (mllpi_conn_tls_plain).
 *   message send       submit_send() -> mllpi_tls_submit_send(): plaintext
 *                      encrypted, ciphertext copied to the socket's own
 *                      flight buffer and sent with token MLLPI_TOK_TLS_SEND
 *                      (one send in flight per socket, as for plaintext).
 *   send completion    mllpi_tls_on_send(): continues the flight; returns
 *                      true with the plaintext bytes now fully written when
 *                      the pool's TOK_SEND logic must run.
 *   close              sock_detach() -> mllpi_tls_close() (close_notify on
 *                      an orderly close), sock_maybe_free() ->
 *                      mllpi_tls_free().
 *
 * Everything runs on the manager thread. */
#ifndef MLLPI_TLS_CONN_H
#define MLLPI_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#define MLLPI_TOK_TLS_SEND 4u

struct mllp_pool;
struct mllpi_conn;
struct mllpi_sock;
struct mllpi_tls;

void mllpi_tls_start(struct mllpi_conn *c);
void mllpi_tls_on_recv(struct mllpi_conn *c, const unsigned char *data,
		       size_t len);
/* EOF or a receive error while the handshake runs: a TLS failure. */
bool mllpi_tls_handshaking(const struct mllpi_sock *s);
void mllpi_tls_on_eof(struct mllpi_conn *c, int res);
int mllpi_tls_submit_send(struct mllpi_conn *c);
bool mllpi_tls_on_send(struct mllpi_conn *c, int res, int *plain);
/* The connect timer fired during the handshake. */
void mllpi_tls_timeout(struct mllpi_conn *c);
void mllpi_tls_close(struct mllp_pool *p, struct mllpi_sock *s, bool abortive);
void mllpi_tls_free(struct mllp_pool *p, struct mllpi_sock *s);

/* Implemented in pool/client/conn_tls.c for tls_conn.c. */
void mllpi_conn_tls_up(struct mllpi_conn *c);
void mllpi_conn_tls_arm_recv(struct mllpi_conn *c);
void mllpi_conn_tls_plain(struct mllpi_conn *c, const unsigned char *data,
			  size_t len);
/* A TLS failure: during the handshake a connect failure (context tls,
 * stored as the endpoint's last connect error); after it, the connection
 * is closed and its message in flight failed with e. */
void mllpi_conn_tls_failed(struct mllpi_conn *c, const struct mllp_error *e);
void mllpi_conn_tls_count(struct mllpi_conn *c, bool resumed);

#endif

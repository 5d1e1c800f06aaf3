/* libmllp: what the files of the wolfSSL TLS engine share.
 *
 * The engine (built with MLLP_TLS ON) is five files, one concept each:
 *
 *   tls_ctx.c     contexts: versions, cipher suites, certificates, keys,
 *                 CAs and CRLs loaded and checked at creation.
 *   tls_mem.c     connections over memory buffers: the in and out buffers,
 *                 wolfSSL's custom I/O callbacks, creating and freeing a
 *                 connection, what it tells after the handshake, sessions.
 *   tls_drive.c   driving a connection: handshake, writes (and the bytes
 *                 held after WANT_WRITE), reads, shutdown.
 *   tls_verify.c  peer verification: the verify callback, the IP-address
 *                 host check, the receiver's allow-list, the peer's name.
 *   tls_fail.c    naming a failure: wolfSSL errors, certificate verdicts
 *                 and alerts mapped to enum mllp_tls_failure and a message.
 *
 * tls_common.c holds what needs no TLS library; tls_none.c replaces the
 * engine when MLLP_TLS is OFF. Not installed. */
#ifndef MLLP_TLS_INTERNAL_H
#define MLLP_TLS_INTERNAL_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include <mllp/error.h>
#include <mllp/tls.h>

/* Largest plaintext handed to wolfSSL_write at once: one TLS record. It is
 * also the size of the held-bytes buffer. */
#define MLLPI_TLS_CHUNK 16384

/* The rest of a CN or SAN name kept for messages and the peer name. */
#define MLLPI_NAME_MAX 256

struct mllpi_bytes {
	unsigned char *p;
	size_t off; /* first unused byte */
	size_t len; /* end of the bytes */
	size_t cap;
};

struct mllp_tls_ctx {
	WOLFSSL_CTX *wctx;
	bool server;
	bool verify; /* verify the peer's certificate */
	bool resume; /* session resumption wanted */
	size_t max_out;
	bool has_cert;	   /* a certificate of our own is loaded */
	char *server_name; /* client: override of the host name */
	char **allowed;	   /* server: allowed client names */
	size_t n_allowed;
};

struct mllp_tls_conn {
	struct mllp_tls_ctx *ctx;
	WOLFSSL *ssl;
	struct mllpi_bytes in;
	struct mllpi_bytes out;
	bool eof;
	bool started;	     /* handshake begun */
	bool done;	     /* handshake complete */
	bool got_first;	     /* first byte from the peer seen */
	unsigned char first; /* ...and its value */
	bool close_notify;
	bool ticket;	     /* a session ticket arrived (client) */
	bool cert_requested; /* the server sent a CertificateRequest */
	/* wolfSSL met a full out buffer and may hold output to retry; false
	 * again once a read ran dry (WANT_READ) or a write went through. */
	bool send_blocked;

	/* Plaintext of a write that met WANT_WRITE, repeated verbatim. */
	unsigned char *held;
	size_t held_len;

	/* The name the server certificate is checked against (for
	 * messages), and the same when it is an IP literal (checked by the
	 * verify callback; wolfSSL checks DNS names itself). */
	char name[MLLPI_NAME_MAX];
	char ip[INET6_ADDRSTRLEN];

	/* First verification failure seen by the verify callback. */
	int verify_err;
	int verify_depth;
	char verify_subject[MLLPI_NAME_MAX];
	char verify_issuer[MLLPI_NAME_MAX];
	bool not_allowed;
	char *peer_name;

	/* Sticky failure. */
	int fail_rc;
	enum mllp_tls_failure failure;
	bool by_peer;
	struct mllp_error fail_err;
};

/* ---- tls_mem.c: byte buffers --------------------------------------------- */

/* Bytes in b not consumed yet. */
static inline size_t mllpi_tls_avail(const struct mllpi_bytes *b)
{
	return b->len - b->off;
}

/* Append n bytes to b, compacting or growing it as needed. Returns 0 or
 * MLLP_ERR_NO_MEMORY (nothing appended). */
int mllpi_tls_append(struct mllpi_bytes *b, const void *src, size_t n);

/* ---- tls_ctx.c ----------------------------------------------------------- */

/* A malloc'ed copy of s, or NULL when out of memory. */
char *mllpi_tls_strdup(const char *s);

/* ---- tls_verify.c -------------------------------------------------------- */

/* wolfSSL's verify callback (wolfSSL_CTX_set_verify): called for each
 * certificate of the peer's chain, it records the first failure in the
 * connection, checks an IP-address host name and the allow-list on the
 * leaf, and keeps the peer's name. */
int mllpi_tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

/* After a handshake in which the verify callback kept no peer name, take
 * it from the peer certificate wolfSSL kept, applying the allow-list
 * again. Returns 0, or MLLP_ERR_TLS with the failure recorded (err). */
int mllpi_tls_late_peer_name(struct mllp_tls_conn *c, struct mllp_error *err);

/* ---- tls_fail.c ---------------------------------------------------------- */

/* The text of a wolfSSL (or wolfCrypt) error code. Never NULL. */
const char *mllpi_tls_wolf_text(int code);

/* Name the failure behind wolfSSL error e, make it the connection's sticky
 * failure and copy it to err (may be NULL). Returns MLLP_ERR_TLS. */
int mllpi_tls_fail(struct mllp_tls_conn *c, int e, struct mllp_error *err);

/* The connection's sticky failure again: copies it to err (may be NULL)
 * and returns its code. */
int mllpi_tls_sticky(const struct mllp_tls_conn *c, struct mllp_error *err);

#endif

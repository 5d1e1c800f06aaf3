/* libmllp: the TLS engine (wolfSSL) over memory buffers.
 *
 * Two objects:
 *
 *   struct mllp_tls_ctx   built once from a client or server configuration.
 *                         Loads every file (CA, certificate chain, key, CRL)
 *                         at creation and reports a bad path, an unreadable
 *                         key or a key that does not match its certificate
 *                         as an error naming the file.
 *   struct mllp_tls_conn  one TLS connection. It never touches a socket or a
 *                         clock: the caller feeds it the ciphertext received
 *                         from the socket (mllp_tls_conn_feed), takes the
 *                         ciphertext to write (mllp_tls_conn_out_peek /
 *                         _consume or mllp_tls_conn_take_out) and drives the
 *                         handshake, reads, writes and shutdown. Every call
 *                         that cannot progress answers MLLP_ERR_WOULD_BLOCK
 *                         ("again"): send what is pending out, feed what
 *                         arrives, call again.
 *
 * Timeouts are the caller's: the engine has no clock. Arm a handshake timer
 * when the connection starts and, if it fires before
 * mllp_tls_conn_handshake() returned 0, fail the connection with context
 * MLLP_CTX_TLS and reason MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT (text from
 * mllp_tls_failure_text()).
 *
 * Failures: a failed handshake returns MLLP_ERR_TLS and fills a struct
 * mllp_error with context MLLP_CTX_TLS, reason MLLP_ERR_TLS and a message a
 * person can act on ("certificate verify failed: unknown CA (issuer 'CN=x'
 * is not trusted by ca_file)"). mllp_tls_conn_failure() gives the same
 * reason as an enum for programs. Nothing ever falls back to plaintext. A
 * fatal alert for the peer is left in the out buffer: send it before closing
 * the socket, so the peer learns why.
 *
 * Memory: wolfSSL allocates with the C library's malloc (it has no
 * per-object allocator hook); the engine's own buffers use malloc too.
 *
 * Threading: a context may be shared by many connections, but contexts and
 * connections are meant for one thread (the pool's manager thread): creating
 * connections from a context is safe from several threads (wolfSSL locks
 * its context), everything else on one object must not run concurrently.
 * wolfSSL_Init() is called (reference counted) by each context creation and
 * wolfSSL_Cleanup() by each context free.
 *
 * A build without TLS (-DMLLP_TLS=OFF; MLLP_HAVE_TLS is 0 in <mllp/config.h>,
 * mllp_tls_available() is false) keeps every declaration here: the
 * configuration and failure-name functions work as documented, creating a
 * context or a connection fails with MLLP_ERR_NO_TLS ("built without TLS";
 * err gets context MLLP_CTX_TLS and that text), and so does enabling TLS on a
 * pool endpoint or a receiver. No context or connection can exist there, so
 * the functions taking one never run on one. */
#ifndef MLLP_TLS_H
#define MLLP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/config.h>
#include <mllp/error.h>
#include <mllp/export.h>

MLLP_BEGIN_DECLS

/* True when the library was built with TLS (MLLP_HAVE_TLS of the library
 * actually linked, which a program built against other headers may not
 * share). Thread-safe. */
MLLP_API bool mllp_tls_available(void);

/* Protocol versions. MLLP_TLS_VERSION_DEFAULT as a minimum means TLS 1.2,
 * as a maximum the highest supported (TLS 1.3). */
enum mllp_tls_version {
	MLLP_TLS_VERSION_DEFAULT = 0,
	MLLP_TLS_VERSION_1_2 = 12,
	MLLP_TLS_VERSION_1_3 = 13,
};

/* Peer verification. The zero value verifies: a zero-initialised
 * configuration is never insecure by accident. */
enum mllp_tls_verify {
	MLLP_TLS_VERIFY_PEER = 0,
	/* Client only, explicit opt-in: accept any server certificate (no
	 * chain, date, host-name or CRL check). The traffic is still
	 * encrypted, but anyone in the path can read it. Callers should log a
	 * warning once (mllp_tls_ctx_insecure() tells). */
	MLLP_TLS_VERIFY_NONE = 1,
};

/* Why a TLS connection failed: one reason a person can act on. */
enum mllp_tls_failure {
	MLLP_TLS_FAIL_NONE = 0,
	/* The certificate chain does not lead to a trusted CA (ca_file /
	 * ca_path / client_ca_file). */
	MLLP_TLS_FAIL_UNKNOWN_CA,
	/* A certificate's validity period is over. */
	MLLP_TLS_FAIL_CERT_EXPIRED,
	/* A certificate's validity period has not begun (clock skew?). */
	MLLP_TLS_FAIL_CERT_NOT_YET_VALID,
	/* The server certificate does not name the host (server_name) in its
	 * SAN, nor in its CN when it has no SAN. */
	MLLP_TLS_FAIL_HOST_MISMATCH,
	/* The certificate is listed in the CRL. */
	MLLP_TLS_FAIL_CERT_REVOKED,
	/* The server requires a client certificate and none was sent. */
	MLLP_TLS_FAIL_NO_CLIENT_CERT,
	/* The client certificate is valid but its names are not in
	 * allowed_clients. */
	MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED,
	/* Any other certificate problem: bad signature, wrong key usage (a
	 * server certificate used as a client certificate), malformed, CRL
	 * missing or out of date. */
	MLLP_TLS_FAIL_BAD_CERT,
	/* No protocol version or cipher suite both sides accept. */
	MLLP_TLS_FAIL_PROTOCOL_MISMATCH,
	/* The peer does not speak TLS (plaintext MLLP, or another protocol). */
	MLLP_TLS_FAIL_NOT_TLS,
	/* Any other protocol error (bad record MAC, decode error, ...). */
	MLLP_TLS_FAIL_PROTOCOL,
	/* The peer closed the connection during the handshake. */
	MLLP_TLS_FAIL_CLOSED,
	/* The handshake did not finish in time: reported by the caller's
	 * timer, never by the engine. */
	MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT,
	/* A file could not be loaded or an option is invalid (context
	 * creation). */
	MLLP_TLS_FAIL_CONFIG,
	/* Out of memory or an unexpected wolfSSL error. */
	MLLP_TLS_FAIL_INTERNAL,
};

/* "unknown CA", "certificate expired", "host name mismatch", ... Never
 * NULL; static storage; thread-safe. */
MLLP_API const char *mllp_tls_failure_text(enum mllp_tls_failure f);

/* "unknown_ca", "cert_expired", ... (stable identifiers for logs and
 * tests). Never NULL; static storage; thread-safe. */
MLLP_API const char *mllp_tls_failure_name(enum mllp_tls_failure f);

/* Default limit of ciphertext held in a connection's out buffer: 256 KiB. */
#define MLLP_TLS_DEFAULT_MAX_OUT ((size_t)256 * 1024)

/* Client options (per endpoint). Zero-initialise, then
 * mllp_tls_client_config_init() sets the defaults. Strings are borrowed for
 * the duration of mllp_tls_ctx_new_client() only (copied when needed). */
struct mllp_tls_client_config {
	/* TLS on for this endpoint (the engine itself ignores the flag; it is
	 * for the pool to decide whether to build a context). Default false. */
	bool enabled;
	/* Trust anchors: a PEM file, a directory of hashed PEM files (c_rehash
	 * layout), and/or the system's CA store. At least one is required
	 * when verify is MLLP_TLS_VERIFY_PEER. */
	const char *ca_file;
	const char *ca_path;
	bool use_system_cas;
	/* Client certificate (chain, PEM) and its key for mutual TLS; both or
	 * neither. The key is checked against the certificate when the context
	 * is built (mllp_tls_ctx_new_client). */
	const char *cert_file;
	const char *key_file;
	/* Default MLLP_TLS_VERIFY_PEER. */
	enum mllp_tls_verify verify;
	/* Name sent as SNI and checked against the server certificate (SAN,
	 * CN only when there is no SAN), overriding the host given to
	 * mllp_tls_conn_new_client(). An IP address is matched against IP
	 * SAN entries and sent without SNI. Default NULL. */
	const char *server_name;
	/* CRL (PEM) checked against the server's certificate. Default NULL. */
	const char *crl_file;
	/* Default minimum TLS 1.2, maximum TLS 1.3 (preferred when both ends
	 * have it). */
	enum mllp_tls_version min_version;
	enum mllp_tls_version max_version;
	/* OpenSSL-style cipher list for TLS 1.2 and 1.3 suites, most
	 * preferred first, e.g.
	 * "TLS13-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256". NULL
	 * (or "") uses mllp_tls_default_cipher_list() (AEAD suites with forward
	 * secrecy; ChaCha20-Poly1305 first unless wolfSSL has hardware
	 * AES). */
	const char *cipher_list;
	/* Offer session resumption (tickets) so a reconnect saves a full
	 * handshake; see mllp_tls_conn_get_session(). Default true. */
	bool session_resumption;
	/* Most ciphertext the out buffer holds: when it is full, wolfSSL
	 * meets WANT_WRITE and calls answer "again" (MLLP_ERR_WOULD_BLOCK)
	 * until the caller drains it. 0 means MLLP_TLS_DEFAULT_MAX_OUT. Any
	 * value works (even a few bytes); larger means fewer round trips
	 * through the caller. */
	size_t max_out;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_tls_client_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the documented defaults (enabled false, verify peer, TLS 1.2+,
 * session resumption on, everything else unset). Thread-safe. */
MLLP_API void mllp_tls_client_config_init(struct mllp_tls_client_config *cfg);

/* Receiver options. Zero-initialise, then mllp_tls_server_config_init().
 * Strings are borrowed for the duration of mllp_tls_ctx_new_server() only
 * (allowed_clients is copied). */
struct mllp_tls_server_config {
	bool enabled;
	/* Certificate chain (PEM: leaf first, then intermediates) and key.
	 * Both required; the key is checked against the certificate. */
	const char *cert_file;
	const char *key_file;
	/* Require a valid client certificate (verify_peer with
	 * fail_if_no_peer_cert): clients without one are refused. Default
	 * false. */
	bool require_client_cert;
	/* CA (PEM) client certificates must chain to; required with
	 * require_client_cert. */
	const char *client_ca_file;
	/* CRL (PEM) checked against client certificates. */
	const char *crl_file;
	/* Names accepted in the client certificate: a client is accepted when
	 * one of its SAN DNS names, or its subject CN, equals one of these,
	 * ignoring ASCII case. n_allowed_clients 0: any client with a valid
	 * certificate. Needs require_client_cert. */
	const char *const *allowed_clients;
	size_t n_allowed_clients;
	enum mllp_tls_version min_version;
	enum mllp_tls_version max_version;
	/* As in the client configuration (NULL: the default list). The
	 * receiver's order decides which common suite is used. */
	const char *cipher_list;
	/* Issue session tickets so clients can resume. Default true. A
	 * resumed session is not verified again (no CRL check); the
	 * allow-list is applied again to the certificate kept in it. */
	bool session_resumption;
	/* As in the client configuration. */
	size_t max_out;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_tls_server_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set the documented defaults (enabled false, no client certificate
 * required, TLS 1.2+, session resumption on). Thread-safe. */
MLLP_API void mllp_tls_server_config_init(struct mllp_tls_server_config *cfg);

/* The cipher suites both ends use when cipher_list is NULL, most
 * preferred first: only AEAD suites with forward secrecy (no NULL, RC4,
 * 3DES, CBC, anonymous or PSK suites), TLS 1.3 then TLS 1.2:
 *   TLS13-CHACHA20-POLY1305-SHA256, TLS13-AES128-GCM-SHA256,
 *   TLS13-AES256-GCM-SHA384, ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305,
 *   ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256, ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384,
 *   DHE-RSA-CHACHA20-POLY1305, DHE-RSA-AES{128,256}-GCM-SHA{256,384}.
 * ChaCha20-Poly1305 comes first when wolfSSL has no hardware AES (Debian's
 * wolfSSL is built without AES-NI; there a 151-byte message and its ACK
 * cost the engine, both ends, about 2.3 us with ChaCha20-Poly1305 against
 * 3.5 us with AES-128-GCM); with AES-NI (and a CPU that has it) or ARMv8
 * crypto, AES-128-GCM first. A receiver applies its own order, so a
 * default receiver picks ChaCha20-Poly1305 whenever the client offers it.
 * Older peers with only CBC suites need an explicit cipher_list. "" in a
 * build without TLS. Static storage; thread-safe. */
MLLP_API const char *mllp_tls_default_cipher_list(void);

struct mllp_tls_ctx;
struct mllp_tls_conn;
struct mllp_tls_session;

/* Build a context. On success returns 0 and *out owns a new context (free
 * with mllp_tls_ctx_free). On failure *out is NULL, err (may be NULL) is
 * filled with context MLLP_CTX_TLS and a message naming the file or the
 * option, and the return is MLLP_ERR_INVALID_ARGUMENT (missing or
 * contradictory option, reserved fields not zero), MLLP_ERR_TLS (a file cannot
 * be read or parsed, a key does not match its certificate, wolfSSL refuses an
 * option), MLLP_ERR_NO_MEMORY, or MLLP_ERR_NO_TLS in a build without TLS. */
MLLP_API int mllp_tls_ctx_new_client(const struct mllp_tls_client_config *cfg,
				     struct mllp_tls_ctx **out,
				     struct mllp_error *err);
MLLP_API int mllp_tls_ctx_new_server(const struct mllp_tls_server_config *cfg,
				     struct mllp_tls_ctx **out,
				     struct mllp_error *err);

/* True when the context is a client context that does not verify the
 * server (MLLP_TLS_VERIFY_NONE): log a warning. */
MLLP_API bool mllp_tls_ctx_insecure(const struct mllp_tls_ctx *ctx);

/* Free a context. Every connection made from it must have been freed
 * first. NULL is allowed. */
MLLP_API void mllp_tls_ctx_free(struct mllp_tls_ctx *ctx);

/* Start a client connection to host (a DNS name or an IP address literal;
 * may be NULL when the context has a server_name or does not verify). The
 * handshake starts with the first mllp_tls_conn_handshake() call. Returns 0
 * and *out, MLLP_ERR_NO_MEMORY, MLLP_ERR_INVALID_ARGUMENT (server context,
 * or no name to verify against) or MLLP_ERR_TLS; err (may be NULL) says
 * why. The context must outlive the connection. */
MLLP_API int mllp_tls_conn_new_client(struct mllp_tls_ctx *ctx,
				      const char *host,
				      struct mllp_tls_conn **out,
				      struct mllp_error *err);

/* Start a server connection (an accepted socket). Same returns as above. */
MLLP_API int mllp_tls_conn_new_server(struct mllp_tls_ctx *ctx,
				      struct mllp_tls_conn **out,
				      struct mllp_error *err);

/* Free a connection (without sending anything: call
 * mllp_tls_conn_shutdown() first for an orderly close). NULL allowed. */
MLLP_API void mllp_tls_conn_free(struct mllp_tls_conn *c);

/* ---- ciphertext in and out ---------------------------------------------- */

/* Append len bytes received from the socket. The bytes are copied. Returns
 * 0 or MLLP_ERR_NO_MEMORY. */
MLLP_API int mllp_tls_conn_feed(struct mllp_tls_conn *c, const void *data,
				size_t len);

/* The socket reached end of file (or was reset): once the fed bytes are
 * used up, reads and the handshake see the transport closed. */
MLLP_API void mllp_tls_conn_feed_eof(struct mllp_tls_conn *c);

/* Ciphertext waiting to be written to the socket: returns its length and
 * sets *data to it (NULL when 0). The view stays valid and unchanged until
 * mllp_tls_conn_out_consume() or any call on the connection other than
 * mllp_tls_conn_out_pending() / _out_peek(). */
MLLP_API size_t mllp_tls_conn_out_peek(const struct mllp_tls_conn *c,
				       const void **data);

/* The socket took n bytes (n <= the peeked length) of the out buffer. */
MLLP_API void mllp_tls_conn_out_consume(struct mllp_tls_conn *c, size_t n);

/* Bytes waiting in the out buffer. */
MLLP_API size_t mllp_tls_conn_out_pending(const struct mllp_tls_conn *c);

/* Copy up to cap bytes of the out buffer into buf and consume them.
 * Returns the number copied (0 when nothing is pending). */
MLLP_API size_t mllp_tls_conn_take_out(struct mllp_tls_conn *c, void *buf,
				       size_t cap);

/* ---- driving the connection --------------------------------------------- */

/* Advance the handshake. Returns 0 when it is complete (also on later
 * calls), MLLP_ERR_WOULD_BLOCK when it needs more input from the peer or
 * room in the out buffer (flush the out buffer, feed what arrives, call
 * again), or MLLP_ERR_TLS on failure (sticky: later calls return it
 * again); err (may be NULL) then says why, see mllp_tls_conn_failure().
 * After a failure, send what is in the out buffer (the alert) and close.
 *
 * With TLS 1.3 the client's handshake completes before the server has
 * checked the client certificate: a client whose certificate is refused
 * learns it at its first mllp_tls_conn_read(), which then fails with the
 * server's reason (by peer). */
MLLP_API int mllp_tls_conn_handshake(struct mllp_tls_conn *c,
				     struct mllp_error *err);

/* Write plaintext. On 0, *written (<= len) bytes were taken: encrypted
 * into the out buffer or held by the engine; the caller may reuse buf at
 * once (wolfSSL's "same buffer after WANT_WRITE" rule is handled inside).
 * MLLP_ERR_WOULD_BLOCK: nothing taken, the out buffer is full (flush and
 * call again). MLLP_ERR_BAD_STATE: handshake not complete or shut down.
 * MLLP_ERR_CLOSED: the peer closed. MLLP_ERR_TLS: fatal error (err). */
MLLP_API int mllp_tls_conn_write(struct mllp_tls_conn *c, const void *buf,
				 size_t len, size_t *written,
				 struct mllp_error *err);

/* Plaintext held by the engine after a write that met a full out buffer
 * (0 once it is all encrypted). Call mllp_tls_conn_flush() after draining
 * the out buffer to push it on. */
MLLP_API size_t mllp_tls_conn_write_pending(const struct mllp_tls_conn *c);

/* Encrypt plaintext held from an earlier write into the out buffer.
 * Returns 0 when nothing is held any more, MLLP_ERR_WOULD_BLOCK when the
 * out buffer filled again, or an error as mllp_tls_conn_write(). */
MLLP_API int mllp_tls_conn_flush(struct mllp_tls_conn *c,
				 struct mllp_error *err);

/* Read decrypted plaintext into buf (cap bytes). Returns 0 with *got > 0
 * bytes, MLLP_ERR_WOULD_BLOCK when more ciphertext is needed,
 * MLLP_ERR_CLOSED when the peer closed (see
 * mllp_tls_conn_close_notify_received() for orderly or truncated), or
 * MLLP_ERR_TLS (err). Reading also processes post-handshake messages such
 * as TLS 1.3 session tickets. */
MLLP_API int mllp_tls_conn_read(struct mllp_tls_conn *c, void *buf, size_t cap,
				size_t *got, struct mllp_error *err);

/* Queue close_notify into the out buffer (orderly close); send it, then
 * close the socket. Returns 0, MLLP_ERR_WOULD_BLOCK (out buffer full:
 * flush and call again) or MLLP_ERR_TLS. It does not wait for the peer's
 * close_notify. */
MLLP_API int mllp_tls_conn_shutdown(struct mllp_tls_conn *c,
				    struct mllp_error *err);

/* True once the peer's close_notify has been read (orderly close). */
MLLP_API bool
mllp_tls_conn_close_notify_received(const struct mllp_tls_conn *c);

/* ---- after the handshake ------------------------------------------------ */

/* The reason of the last failure (MLLP_TLS_FAIL_NONE when none). */
MLLP_API enum mllp_tls_failure
mllp_tls_conn_failure(const struct mllp_tls_conn *c);

/* True when the failure was reported by the peer through an alert (the
 * peer refused our certificate or our offer); false when this side found
 * it. */
MLLP_API bool mllp_tls_conn_failure_by_peer(const struct mllp_tls_conn *c);

/* The peer's name after a successful handshake (also a resumed one): on a
 * server with allowed_clients, the allowed name that matched (as
 * configured); else the certificate's first SAN DNS name, or its CN. NULL
 * before the handshake completed and when the peer sent no certificate.
 * Owned by the connection, valid until it is freed. */
MLLP_API const char *mllp_tls_conn_peer_name(const struct mllp_tls_conn *c);

/* "TLSv1.2" / "TLSv1.3" and the cipher suite name, after the handshake.
 * Static or connection-owned strings; never NULL. */
MLLP_API const char *mllp_tls_conn_version(const struct mllp_tls_conn *c);
MLLP_API const char *mllp_tls_conn_cipher(const struct mllp_tls_conn *c);

/* True when the handshake resumed a session instead of a full one. */
MLLP_API bool mllp_tls_conn_session_reused(const struct mllp_tls_conn *c);

/* ---- session resumption (client) ---------------------------------------- */

/* A resumable session of a completed client connection, or NULL when
 * there is none yet. With TLS 1.3 the server's ticket arrives after the
 * handshake: it is only usable once a mllp_tls_conn_read() has consumed it
 * (any read, even one answering MLLP_ERR_WOULD_BLOCK, after the ticket's
 * bytes were fed). The caller owns the result: mllp_tls_session_free. */
MLLP_API struct mllp_tls_session *
mllp_tls_conn_get_session(struct mllp_tls_conn *c);

/* Offer session s on a new client connection before its handshake (s is
 * copied; the caller keeps ownership). Returns 0, or MLLP_ERR_BAD_STATE
 * (handshake started, server connection) / MLLP_ERR_TLS (session refused,
 * e.g. expired). A server that declines simply makes a full handshake. */
MLLP_API int mllp_tls_conn_set_session(struct mllp_tls_conn *c,
				       const struct mllp_tls_session *s);

/* Free a session. NULL allowed. */
MLLP_API void mllp_tls_session_free(struct mllp_tls_session *s);

/* Free the calling thread's wolfSSL per-thread caches (Debian's wolfSSL
 * keeps an ECC fixed-point cache per thread, a few MB, never freed
 * otherwise). Call it on a thread that ran TLS connections, before the
 * thread exits, once they are all freed. The pool's and the receiver's
 * manager threads do it themselves. Harmless when there is nothing to
 * free. */
MLLP_API void mllp_tls_thread_cleanup(void);

MLLP_END_DECLS

#endif

/* libmllp: the TLS engine (wolfSSL) over memory buffers.
 *
 * wolfSSL talks to two custom I/O callbacks that read from the connection's
 * in buffer (ciphertext fed by the caller) and append to its out buffer
 * (ciphertext the caller writes to the socket). An empty in buffer answers
 * WANT_READ, a full out buffer (max_out) WANT_WRITE: wolfSSL then returns
 * and the caller retries once it has moved bytes. No socket, no clock.
 *
 * Certificate checks run in wolfSSL; a verify callback watches every
 * verdict so a failure can be named precisely (the first failing check,
 * the certificate's subject and issuer), applies the IP-address host check
 * and the receiver's allow-list, and remembers the peer's name.
 *
 * wolfSSL's rule that a write which met WANT_WRITE must be repeated with
 * the same buffer and length is kept by copying that chunk into the
 * connection ("held" bytes) and repeating it from there. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/openssl/evp.h>

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

struct mllp_tls_session {
	WOLFSSL_SESSION *s;
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

/* The text of a wolfSSL (or wolfCrypt) error code. */
static const char *mllpi_wolf_text(int code)
{
	const char *s;

	if (code > 0)
		code = -code;
	s = wolfSSL_ERR_reason_error_string((unsigned long)code);
	return s != NULL ? s : "unknown error";
}

static char *mllpi_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

/* A file named by option `what` can be opened for reading and, when
 * marker is not NULL, holds a PEM block with that label within its first
 * 4 MiB; otherwise fill err naming it. (wolfSSL accepts a CA file without
 * any certificate silently.) */
static int mllpi_check_file(const char *what, const char *path,
			    const char *marker, struct mllp_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;
	bool found;

	if (f == NULL) {
		int e = errno;

		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "cannot read %s '%s': %s", what, path,
			       strerror(e));
		return MLLP_ERR_TLS;
	}
	if (marker == NULL) {
		fclose(f);
		return 0;
	}
	buf = malloc((size_t)4 << 20);
	if (buf == NULL) {
		fclose(f);
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	n = fread(buf, 1, ((size_t)4 << 20) - 1, f);
	fclose(f);
	buf[n] = 0;
	found = memmem(buf, n, marker, strlen(marker)) != NULL;
	free(buf);
	if (!found) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "%s '%s' holds no PEM block '%s'", what, path,
			       marker);
		return MLLP_ERR_TLS;
	}
	return 0;
}

static int mllpi_cfg_error(struct mllp_error *err, int rc, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int mllpi_cfg_error(struct mllp_error *err, int rc, const char *fmt, ...)
{
	char msg[MLLP_ERROR_MESSAGE_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mllp_error_set(err, MLLP_CTX_TLS, rc, "%s", msg);
	return rc;
}

/* The wolfSSL method for a version range. */
static int mllpi_method(bool server, enum mllp_tls_version min,
			enum mllp_tls_version max, WOLFSSL_METHOD **m,
			int *set_min, struct mllp_error *err)
{
	if (min == MLLP_TLS_VERSION_DEFAULT)
		min = MLLP_TLS_VERSION_1_2;
	if (max == MLLP_TLS_VERSION_DEFAULT)
		max = MLLP_TLS_VERSION_1_3;
	if ((min != MLLP_TLS_VERSION_1_2 && min != MLLP_TLS_VERSION_1_3) ||
	    (max != MLLP_TLS_VERSION_1_2 && max != MLLP_TLS_VERSION_1_3) ||
	    min > max)
		return mllpi_cfg_error(
		    err, MLLP_ERR_INVALID_ARGUMENT,
		    "invalid TLS version range (min_version %s, max_version "
		    "%s)",
		    min == MLLP_TLS_VERSION_1_3 ? "1.3" : "1.2",
		    max == MLLP_TLS_VERSION_1_3 ? "1.3" : "1.2");
	*set_min = 0;
	if (max == MLLP_TLS_VERSION_1_2) {
		*m = server ? wolfTLSv1_2_server_method()
			    : wolfTLSv1_2_client_method();
	} else if (min == MLLP_TLS_VERSION_1_3) {
		*m = server ? wolfTLSv1_3_server_method()
			    : wolfTLSv1_3_client_method();
	} else {
		*m = server ? wolfSSLv23_server_method()
			    : wolfSSLv23_client_method();
		*set_min = WOLFSSL_TLSV1_2;
	}
	if (*m == NULL) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	return 0;
}

static int mllpi_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

/* Default cipher suites (cipher_list NULL), most preferred first; the
 * receiver's order decides (wolfSSL servers use their own order). Only
 * AEAD suites with forward secrecy: ChaCha20-Poly1305 and AES-GCM, TLS 1.3
 * and TLS 1.2 (ECDHE, then DHE). Without hardware AES in wolfSSL (Debian's
 * build has no AES-NI) ChaCha20-Poly1305 is the cheaper one, so it comes
 * first; with it, AES-128-GCM does. */
static const char mllpi_ciphers_chacha[] =
    "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:"
    "TLS13-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "DHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:"
    "DHE-RSA-AES256-GCM-SHA384";
static const char mllpi_ciphers_aes[] =
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
    "TLS13-CHACHA20-POLY1305-SHA256:"
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"
    "DHE-RSA-CHACHA20-POLY1305";

/* Whether wolfSSL runs AES-GCM in hardware here: built with AES-NI (and
 * the CPU has AES-NI and PCLMULQDQ: wolfSSL checks the same at run time)
 * or with the ARMv8 crypto extensions. */
static bool mllpi_aes_accelerated(void)
{
#if defined(WOLFSSL_AESNI) && (defined(__x86_64__) || defined(__i386__))
	return __builtin_cpu_supports("aes") &&
	       __builtin_cpu_supports("pclmul");
#elif defined(WOLFSSL_ARMASM)
	return true;
#else
	return false;
#endif
}

const char *mllp_tls_default_cipher_list(void)
{
#if !defined(HAVE_CHACHA) || !defined(HAVE_POLY1305)
	return mllpi_ciphers_aes;
#else
	return mllpi_aes_accelerated() ? mllpi_ciphers_aes
				       : mllpi_ciphers_chacha;
#endif
}

/* Everything both sides share: the context, versions, ciphers. */
static int mllpi_ctx_common(struct mllp_tls_ctx *t, enum mllp_tls_version min,
			    enum mllp_tls_version max, const char *ciphers,
			    size_t max_out, struct mllp_error *err)
{
	WOLFSSL_METHOD *m = NULL;
	int set_min = 0;
	int rc = mllpi_method(t->server, min, max, &m, &set_min, err);

	if (rc != 0)
		return rc;
	t->wctx = wolfSSL_CTX_new(m);
	if (t->wctx == NULL) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY,
			       "cannot create the wolfSSL context");
		return MLLP_ERR_NO_MEMORY;
	}
	if (set_min != 0 &&
	    wolfSSL_CTX_SetMinVersion(t->wctx, set_min) != WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "cannot set the minimum TLS version");
	if (ciphers != NULL && *ciphers == '\0')
		ciphers = NULL; /* "" is "not set", never wolfSSL's list */
	if (ciphers == NULL &&
	    wolfSSL_CTX_set_cipher_list(
		t->wctx, mllp_tls_default_cipher_list()) != WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "wolfSSL supports none of the default "
				       "cipher suites (set cipher_list)");
	if (ciphers != NULL &&
	    wolfSSL_CTX_set_cipher_list(t->wctx, ciphers) != WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "cipher_list '%s' names no cipher suite "
				       "this wolfSSL supports",
				       ciphers);
	t->max_out = max_out != 0 ? max_out : MLLP_TLS_DEFAULT_MAX_OUT;
	return 0;
}

/* Whether the loaded key belongs to the loaded certificate: sign a short
 * text with the key and verify it with the certificate's public key.
 * wolfSSL 5.5.4's wolfSSL_CTX_check_private_key() accepts a foreign EC
 * key. Key types without SHA-256 signing are left to wolfSSL's check. */
static bool mllpi_key_matches(WOLFSSL_CTX *wctx)
{
	static const char probe[] = "libmllp key check";
	WOLFSSL_X509 *x = wolfSSL_CTX_get0_certificate(wctx);
	WOLFSSL_EVP_PKEY *key = wolfSSL_CTX_get0_privatekey(wctx);
	WOLFSSL_EVP_PKEY *pub;
	WOLFSSL_EVP_MD_CTX *md;
	unsigned char sig[1024];
	size_t len = sizeof sig;
	bool signed_ok, ok;

	if (x == NULL || key == NULL)
		return true;
	md = wolfSSL_EVP_MD_CTX_new();
	if (md == NULL)
		return true;
	signed_ok =
	    wolfSSL_EVP_DigestSignInit(md, NULL, wolfSSL_EVP_sha256(), NULL,
				       key) == WOLFSSL_SUCCESS &&
	    wolfSSL_EVP_DigestSignUpdate(md, probe, sizeof probe) ==
		WOLFSSL_SUCCESS &&
	    wolfSSL_EVP_DigestSignFinal(md, sig, &len) == WOLFSSL_SUCCESS;
	wolfSSL_EVP_MD_CTX_free(md);
	if (!signed_ok)
		return true;
	pub = wolfSSL_X509_get_pubkey(x);
	md = wolfSSL_EVP_MD_CTX_new();
	ok = pub != NULL && md != NULL &&
	     wolfSSL_EVP_DigestVerifyInit(md, NULL, wolfSSL_EVP_sha256(), NULL,
					  pub) == WOLFSSL_SUCCESS &&
	     wolfSSL_EVP_DigestVerifyUpdate(md, probe, sizeof probe) ==
		 WOLFSSL_SUCCESS &&
	     wolfSSL_EVP_DigestVerifyFinal(md, sig, len) == WOLFSSL_SUCCESS;
	wolfSSL_EVP_MD_CTX_free(md);
	wolfSSL_EVP_PKEY_free(pub);
	return ok;
}

/* Load cert chain + key and check that they belong together. */
static int mllpi_load_identity(struct mllp_tls_ctx *t, const char *cert,
			       const char *key, struct mllp_error *err)
{
	int rc;

	if ((rc = mllpi_check_file("cert_file", cert,
				   "-----BEGIN CERTIFICATE-----", err)) != 0 ||
	    (rc = mllpi_check_file("key_file", key, NULL, err)) != 0)
		return rc;
	if (wolfSSL_CTX_use_certificate_chain_file(t->wctx, cert) !=
	    WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "cert_file '%s' holds no usable PEM "
				       "certificate",
				       cert);
	if (wolfSSL_CTX_use_PrivateKey_file(
		t->wctx, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "key_file '%s' holds no usable PEM "
				       "private key (or it does not match "
				       "cert_file '%s')",
				       key, cert);
	if (wolfSSL_CTX_check_private_key(t->wctx) != WOLFSSL_SUCCESS ||
	    !mllpi_key_matches(t->wctx))
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "key_file '%s' does not match cert_file "
				       "'%s'",
				       key, cert);
	t->has_cert = true;
	return 0;
}

static int mllpi_load_ca(struct mllp_tls_ctx *t, const char *what,
			 const char *file, const char *path,
			 struct mllp_error *err)
{
	int rc;

	if (file != NULL &&
	    (rc = mllpi_check_file(what, file, "-----BEGIN CERTIFICATE-----",
				   err)) != 0)
		return rc;
	if (path != NULL &&
	    (rc = mllpi_check_file("ca_path", path, NULL, err)) != 0)
		return rc;
	if (wolfSSL_CTX_load_verify_locations(t->wctx, file, path) !=
	    WOLFSSL_SUCCESS) {
		if (file != NULL && path != NULL)
			return mllpi_cfg_error(
			    err, MLLP_ERR_TLS,
			    "cannot load CA certificates from '%s' or '%s'",
			    file, path);
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "%s '%s' holds no usable PEM CA "
				       "certificate",
				       file != NULL ? what : "ca_path",
				       file != NULL ? file : path);
	}
	return 0;
}

static int mllpi_load_crl(struct mllp_tls_ctx *t, const char *crl,
			  struct mllp_error *err)
{
	int rc =
	    mllpi_check_file("crl_file", crl, "-----BEGIN X509 CRL-----", err);

	if (rc != 0)
		return rc;
	if (wolfSSL_CTX_EnableCRL(t->wctx, WOLFSSL_CRL_CHECK) !=
	    WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "cannot enable CRL checking");
	if (wolfSSL_CTX_LoadCRLFile(t->wctx, crl, WOLFSSL_FILETYPE_PEM) !=
	    WOLFSSL_SUCCESS)
		return mllpi_cfg_error(err, MLLP_ERR_TLS,
				       "crl_file '%s' holds no usable PEM CRL "
				       "(or its issuer is not a loaded CA)",
				       crl);
	return 0;
}

static struct mllp_tls_ctx *mllpi_ctx_alloc(bool server, struct mllp_error *err)
{
	struct mllp_tls_ctx *t = calloc(1, sizeof *t);

	if (t == NULL) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		return NULL;
	}
	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		free(t);
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "wolfSSL_Init failed");
		return NULL;
	}
	t->server = server;
	return t;
}

int mllp_tls_ctx_new_client(const struct mllp_tls_client_config *cfg,
			    struct mllp_tls_ctx **out, struct mllp_error *err)
{
	struct mllp_tls_ctx *t;
	int rc;

	if (out == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	*out = NULL;
	if (cfg == NULL)
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "no TLS client configuration");
	if ((cfg->cert_file == NULL) != (cfg->key_file == NULL))
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "cert_file and key_file go together: "
				       "set both or neither");
	if (cfg->verify != MLLP_TLS_VERIFY_PEER &&
	    cfg->verify != MLLP_TLS_VERIFY_NONE)
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "invalid verify mode");
	if (cfg->verify == MLLP_TLS_VERIFY_PEER && cfg->ca_file == NULL &&
	    cfg->ca_path == NULL && !cfg->use_system_cas)
		return mllpi_cfg_error(
		    err, MLLP_ERR_INVALID_ARGUMENT,
		    "verify_peer needs trust anchors: set ca_file, ca_path or "
		    "use_system_cas (or opt in to verify none)");
	t = mllpi_ctx_alloc(false, err);
	if (t == NULL)
		return MLLP_ERR_NO_MEMORY;
	t->verify = cfg->verify == MLLP_TLS_VERIFY_PEER;
	t->resume = cfg->session_resumption;
	rc = mllpi_ctx_common(t, cfg->min_version, cfg->max_version,
			      cfg->cipher_list, cfg->max_out, err);
	if (rc == 0 && (cfg->ca_file != NULL || cfg->ca_path != NULL))
		rc = mllpi_load_ca(t, "ca_file", cfg->ca_file, cfg->ca_path,
				   err);
	if (rc == 0 && cfg->use_system_cas &&
	    wolfSSL_CTX_load_system_CA_certs(t->wctx) != WOLFSSL_SUCCESS)
		rc = mllpi_cfg_error(err, MLLP_ERR_TLS,
				     "cannot load the system CA certificates");
	if (rc == 0 && cfg->cert_file != NULL)
		rc = mllpi_load_identity(t, cfg->cert_file, cfg->key_file, err);
	if (rc == 0 && cfg->crl_file != NULL)
		rc = mllpi_load_crl(t, cfg->crl_file, err);
	if (rc == 0 && cfg->server_name != NULL &&
	    (t->server_name = mllpi_strdup(cfg->server_name)) == NULL) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		rc = MLLP_ERR_NO_MEMORY;
	}
	if (rc == 0) {
		wolfSSL_CTX_set_verify(t->wctx,
				       t->verify ? WOLFSSL_VERIFY_PEER
						 : WOLFSSL_VERIFY_NONE,
				       mllpi_verify_cb);
		if (!t->resume) {
			wolfSSL_CTX_set_session_cache_mode(
			    t->wctx, WOLFSSL_SESS_CACHE_OFF);
			wolfSSL_CTX_NoTicketTLSv12(t->wctx);
		}
	}
	if (rc != 0) {
		mllp_tls_ctx_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int mllp_tls_ctx_new_server(const struct mllp_tls_server_config *cfg,
			    struct mllp_tls_ctx **out, struct mllp_error *err)
{
	struct mllp_tls_ctx *t;
	int rc;

	if (out == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	*out = NULL;
	if (cfg == NULL)
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "no TLS server configuration");
	if (cfg->cert_file == NULL || cfg->key_file == NULL)
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "a TLS receiver needs cert_file and "
				       "key_file");
	if (cfg->require_client_cert && cfg->client_ca_file == NULL)
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "require_client_cert needs "
				       "client_ca_file");
	if (cfg->n_allowed_clients > 0 &&
	    (!cfg->require_client_cert || cfg->allowed_clients == NULL))
		return mllpi_cfg_error(err, MLLP_ERR_INVALID_ARGUMENT,
				       "allowed_clients needs "
				       "require_client_cert");
	t = mllpi_ctx_alloc(true, err);
	if (t == NULL)
		return MLLP_ERR_NO_MEMORY;
	t->verify = cfg->require_client_cert;
	t->resume = cfg->session_resumption;
	rc = mllpi_ctx_common(t, cfg->min_version, cfg->max_version,
			      cfg->cipher_list, cfg->max_out, err);
	if (rc == 0)
		rc = mllpi_load_identity(t, cfg->cert_file, cfg->key_file, err);
	if (rc == 0 && cfg->client_ca_file != NULL)
		rc = mllpi_load_ca(t, "client_ca_file", cfg->client_ca_file,
				   NULL, err);
	if (rc == 0 && cfg->crl_file != NULL)
		rc = mllpi_load_crl(t, cfg->crl_file, err);
	if (rc == 0 && cfg->n_allowed_clients > 0) {
		t->allowed = calloc(cfg->n_allowed_clients, sizeof(char *));
		if (t->allowed == NULL)
			rc = MLLP_ERR_NO_MEMORY;
		for (size_t i = 0; rc == 0 && i < cfg->n_allowed_clients; i++) {
			if (cfg->allowed_clients[i] == NULL) {
				rc = mllpi_cfg_error(
				    err, MLLP_ERR_INVALID_ARGUMENT,
				    "allowed_clients holds a NULL name");
				break;
			}
			t->allowed[i] = mllpi_strdup(cfg->allowed_clients[i]);
			if (t->allowed[i] == NULL)
				rc = MLLP_ERR_NO_MEMORY;
			t->n_allowed = i + 1;
		}
		if (rc == MLLP_ERR_NO_MEMORY)
			mllp_error_set(err, MLLP_CTX_TLS, rc, NULL);
	}
	if (rc == 0) {
		wolfSSL_CTX_set_verify(
		    t->wctx,
		    t->verify ? WOLFSSL_VERIFY_PEER |
				    WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT
			      : WOLFSSL_VERIFY_NONE,
		    t->verify ? mllpi_verify_cb : NULL);
		if (!t->resume) {
			wolfSSL_CTX_set_session_cache_mode(
			    t->wctx, WOLFSSL_SESS_CACHE_OFF);
			wolfSSL_CTX_NoTicketTLSv12(t->wctx);
			wolfSSL_CTX_no_ticket_TLSv13(t->wctx);
		} else if (t->verify) {
			/* A TLS 1.2 ticket does not keep the client's
			 * certificate, which the allow-list needs again on
			 * resumption: resume 1.2 by session id (the cache
			 * keeps it). */
			wolfSSL_CTX_NoTicketTLSv12(t->wctx);
		}
	}
	if (rc != 0) {
		mllp_tls_ctx_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

bool mllp_tls_ctx_insecure(const struct mllp_tls_ctx *ctx)
{
	return ctx != NULL && !ctx->server && !ctx->verify;
}

void mllp_tls_ctx_free(struct mllp_tls_ctx *t)
{
	if (t == NULL)
		return;
	if (t->wctx != NULL)
		wolfSSL_CTX_free(t->wctx);
	free(t->server_name);
	for (size_t i = 0; i < t->n_allowed; i++)
		free(t->allowed[i]);
	free(t->allowed);
	free(t);
	wolfSSL_Cleanup();
}

/* ---- byte buffers -------------------------------------------------------- */

static size_t mllpi_avail(const struct mllpi_bytes *b)
{
	return b->len - b->off;
}

/* Append n bytes, compacting or growing as needed. */
static int mllpi_append(struct mllpi_bytes *b, const void *src, size_t n)
{
	if (b->off > 0 && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 4096;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL)
			return MLLP_ERR_NO_MEMORY;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

static void mllpi_consume(struct mllpi_bytes *b, size_t n)
{
	if (n > mllpi_avail(b))
		n = mllpi_avail(b);
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

/* ---- wolfSSL I/O callbacks ---------------------------------------------- */

static int mllpi_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct mllp_tls_conn *c = arg;
	size_t n = mllpi_avail(&c->in);

	(void)ssl;
	if (n == 0)
		return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE
			      : WOLFSSL_CBIO_ERR_WANT_READ;
	if (sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, c->in.p + c->in.off, n);
	mllpi_consume(&c->in, n);
	return (int)n;
}

static int mllpi_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct mllp_tls_conn *c = arg;
	size_t pending = mllpi_avail(&c->out);
	size_t room = pending < c->ctx->max_out ? c->ctx->max_out - pending : 0;
	size_t n;

	(void)ssl;
	if (sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (room == 0) {
		c->send_blocked = true;
		return WOLFSSL_CBIO_ERR_WANT_WRITE;
	}
	n = (size_t)sz < room ? (size_t)sz : room;
	if (mllpi_append(&c->out, buf, n) != 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	return (int)n;
}

static int mllpi_ticket_cb(WOLFSSL *ssl, const unsigned char *ticket, int len,
			   void *arg)
{
	struct mllp_tls_conn *c = arg;

	(void)ssl;
	(void)ticket;
	if (len > 0)
		c->ticket = true;
	return 0;
}

/* Watches handshake messages: a client notes a CertificateRequest, so a
 * TLS 1.2 handshake_failure that follows can be read as "client
 * certificate required". */
static void mllpi_msg_cb(int write_p, int version, int content_type,
			 const void *buf, size_t len, WOLFSSL *ssl, void *arg)
{
	struct mllp_tls_conn *c = arg;
	const unsigned char *b = buf;

	(void)version;
	(void)ssl;
	if (!write_p && content_type == 22 && len > 0 && b[0] == 13)
		c->cert_requested = true;
}

/* ---- certificate names --------------------------------------------------- */

/* Call fn for every SAN DNS name of x and then its CN, until fn returns
 * true. Returns that name's matching verdict. */
typedef bool (*mllpi_name_fn)(const char *name, size_t len, void *arg);

static bool mllpi_each_name(WOLFSSL_X509 *x, mllpi_name_fn fn, void *arg,
			    bool cn_always)
{
	WOLFSSL_STACK *sk;
	bool hit = false;
	bool have_dns = false;
	char cn[MLLPI_NAME_MAX];
	int n;

	sk = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sk != NULL) {
		int num = wolfSSL_sk_GENERAL_NAME_num(sk);

		for (int i = 0; i < num && !hit; i++) {
			WOLFSSL_GENERAL_NAME *gn =
			    wolfSSL_sk_GENERAL_NAME_value(sk, i);
			unsigned char *d;
			int len;

			if (gn == NULL || gn->type != ASN_DNS_TYPE ||
			    gn->d.dNSName == NULL)
				continue;
			d = wolfSSL_ASN1_STRING_data(gn->d.dNSName);
			len = wolfSSL_ASN1_STRING_length(gn->d.dNSName);
			if (d == NULL || len <= 0)
				continue;
			have_dns = true;
			hit = fn((const char *)d, (size_t)len, arg);
		}
		wolfSSL_sk_GENERAL_NAME_pop_free(sk, wolfSSL_GENERAL_NAME_free);
	}
	if (hit || (have_dns && !cn_always))
		return hit;
	n = wolfSSL_X509_NAME_get_text_by_NID(wolfSSL_X509_get_subject_name(x),
					      NID_commonName, cn, sizeof cn);
	if (n > 0)
		hit = fn(cn, strlen(cn), arg);
	return hit;
}

static bool mllpi_first_name(const char *name, size_t len, void *arg)
{
	char **out = arg;

	if (len >= MLLPI_NAME_MAX || memchr(name, 0, len) != NULL)
		return false;
	*out = malloc(len + 1);
	if (*out != NULL) {
		memcpy(*out, name, len);
		(*out)[len] = 0;
	}
	return true;
}

struct mllpi_allow {
	const struct mllp_tls_ctx *t;
	const char *matched;
};

static bool mllpi_allowed_name(const char *name, size_t len, void *arg)
{
	struct mllpi_allow *a = arg;

	if (memchr(name, 0, len) != NULL)
		return false;
	for (size_t i = 0; i < a->t->n_allowed; i++) {
		const char *w = a->t->allowed[i];

		if (strlen(w) == len && strncasecmp(w, name, len) == 0) {
			a->matched = w;
			return true;
		}
	}
	return false;
}

static void mllpi_oneline(WOLFSSL_X509_NAME *n, char *buf, size_t cap)
{
	buf[0] = 0;
	if (n != NULL && wolfSSL_X509_NAME_oneline(n, buf, (int)cap) == NULL)
		buf[0] = 0;
}

static void mllpi_record_verify(struct mllp_tls_conn *c, int code,
				WOLFSSL_X509_STORE_CTX *store)
{
	if (c->verify_err != 0)
		return;
	c->verify_err = code != 0 ? code : VERIFY_CERT_ERROR;
	c->verify_depth = store->error_depth;
	if (store->current_cert != NULL) {
		mllpi_oneline(
		    wolfSSL_X509_get_subject_name(store->current_cert),
		    c->verify_subject, sizeof c->verify_subject);
		mllpi_oneline(wolfSSL_X509_get_issuer_name(store->current_cert),
			      c->verify_issuer, sizeof c->verify_issuer);
	}
}

/* Called by wolfSSL for each certificate of the peer's chain, also when it
 * passed (WOLFSSL_ALWAYS_VERIFY_CB). Records the first failure, adds the
 * IP-address check and the allow-list on the leaf, keeps the peer name. */
static int mllpi_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	WOLFSSL *ssl = wolfSSL_X509_STORE_CTX_get_ex_data(
	    store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	struct mllp_tls_conn *c =
	    ssl != NULL ? wolfSSL_get_app_data(ssl) : NULL;

	if (c == NULL)
		return preverify;
	if (!c->ctx->verify)
		return 1; /* explicit opt-in: verify none */
	if (!preverify) {
		mllpi_record_verify(c, store->error, store);
		return 0;
	}
	if (store->error_depth != 0 || store->current_cert == NULL)
		return 1;
	if (c->ip[0] != 0 &&
	    wolfSSL_X509_check_ip_asc(store->current_cert, c->ip, 0) !=
		WOLFSSL_SUCCESS) {
		mllpi_record_verify(c, IPADDR_MISMATCH, store);
		return 0;
	}
	if (c->ctx->n_allowed > 0) {
		struct mllpi_allow a = {c->ctx, NULL};

		if (!mllpi_each_name(store->current_cert, mllpi_allowed_name,
				     &a, true)) {
			c->not_allowed = true;
			mllpi_record_verify(c, VERIFY_CERT_ERROR, store);
			return 0;
		}
		free(c->peer_name);
		c->peer_name = mllpi_strdup(a.matched);
		return 1;
	}
	if (c->peer_name == NULL)
		mllpi_each_name(store->current_cert, mllpi_first_name,
				&c->peer_name, false);
	return 1;
}

/* ---- connections --------------------------------------------------------- */

static int mllpi_conn_new(struct mllp_tls_ctx *t, bool server,
			  struct mllp_tls_conn **out, struct mllp_error *err)
{
	struct mllp_tls_conn *c;

	if (out == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	*out = NULL;
	if (t == NULL || t->server != server) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_INVALID_ARGUMENT,
			       "a %s connection needs a %s TLS context",
			       server ? "server" : "client",
			       server ? "server" : "client");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL || (c->ssl = wolfSSL_new(t->wctx)) == NULL) {
		free(c);
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	c->ctx = t;
	wolfSSL_SSLSetIORecv(c->ssl, mllpi_io_recv);
	wolfSSL_SSLSetIOSend(c->ssl, mllpi_io_send);
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	wolfSSL_set_app_data(c->ssl, c);
	*out = c;
	return 0;
}

int mllp_tls_conn_new_client(struct mllp_tls_ctx *t, const char *host,
			     struct mllp_tls_conn **out, struct mllp_error *err)
{
	struct mllp_tls_conn *c;
	const char *name;
	unsigned char addr[sizeof(struct in6_addr)];
	int rc = mllpi_conn_new(t, false, out, err);

	if (rc != 0)
		return rc;
	c = *out;
	name = t->server_name != NULL ? t->server_name : host;
	if (name == NULL && t->verify) {
		mllp_tls_conn_free(c);
		*out = NULL;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_INVALID_ARGUMENT,
			       "no host name to verify the server certificate "
			       "against (set server_name)");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (name != NULL)
		snprintf(c->name, sizeof c->name, "%s", name);
	if (name != NULL && (inet_pton(AF_INET, name, addr) == 1 ||
			     inet_pton(AF_INET6, name, addr) == 1)) {
		/* An address: no SNI (RFC 6066), IP SAN check. */
		if (strlen(name) < sizeof c->ip)
			memcpy(c->ip, name, strlen(name) + 1);
	} else if (name != NULL) {
		if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, name,
				   (unsigned short)strlen(name)) !=
			WOLFSSL_SUCCESS ||
		    (t->verify && wolfSSL_check_domain_name(c->ssl, name) !=
				      WOLFSSL_SUCCESS)) {
			mllp_tls_conn_free(c);
			*out = NULL;
			mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "cannot use server name '%s'", name);
			return MLLP_ERR_TLS;
		}
	}
	wolfSSL_set_msg_callback(c->ssl, mllpi_msg_cb);
	wolfSSL_set_msg_callback_arg(c->ssl, c);
	/* UseSessionTicket: TLS 1.2 tickets too (else 1.2 resumes by
	 * session id only, from the server's small fixed-size cache). */
	if (t->resume &&
	    (wolfSSL_set_SessionTicket_cb(c->ssl, mllpi_ticket_cb, c) !=
		 WOLFSSL_SUCCESS ||
	     wolfSSL_UseSessionTicket(c->ssl) != WOLFSSL_SUCCESS)) {
		mllp_tls_conn_free(c);
		*out = NULL;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "cannot enable session tickets");
		return MLLP_ERR_TLS;
	}
	return 0;
}

int mllp_tls_conn_new_server(struct mllp_tls_ctx *t, struct mllp_tls_conn **out,
			     struct mllp_error *err)
{
	return mllpi_conn_new(t, true, out, err);
}

void mllp_tls_conn_free(struct mllp_tls_conn *c)
{
	if (c == NULL)
		return;
	if (c->ssl != NULL)
		wolfSSL_free(c->ssl);
	free(c->in.p);
	free(c->out.p);
	free(c->held);
	free(c->peer_name);
	free(c);
}

int mllp_tls_conn_feed(struct mllp_tls_conn *c, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (!c->got_first) {
		c->got_first = true;
		c->first = *(const unsigned char *)data;
	}
	return mllpi_append(&c->in, data, len);
}

void mllp_tls_conn_feed_eof(struct mllp_tls_conn *c)
{
	c->eof = true;
}

size_t mllp_tls_conn_out_peek(const struct mllp_tls_conn *c, const void **data)
{
	size_t n = mllpi_avail(&c->out);

	*data = n != 0 ? c->out.p + c->out.off : NULL;
	return n;
}

void mllp_tls_conn_out_consume(struct mllp_tls_conn *c, size_t n)
{
	mllpi_consume(&c->out, n);
}

size_t mllp_tls_conn_out_pending(const struct mllp_tls_conn *c)
{
	return mllpi_avail(&c->out);
}

size_t mllp_tls_conn_take_out(struct mllp_tls_conn *c, void *buf, size_t cap)
{
	size_t n = mllpi_avail(&c->out);

	if (n > cap)
		n = cap;
	if (n != 0)
		memcpy(buf, c->out.p + c->out.off, n);
	mllpi_consume(&c->out, n);
	return n;
}

/* ---- failure classification ---------------------------------------------- */

/* Which failure a certificate verdict code means. */
static enum mllp_tls_failure mllpi_cert_failure(int code)
{
	switch (code) {
	case ASN_NO_SIGNER_E:
	case ASN_SELF_SIGNED_E:
		return MLLP_TLS_FAIL_UNKNOWN_CA;
	case ASN_AFTER_DATE_E:
		return MLLP_TLS_FAIL_CERT_EXPIRED;
	case ASN_BEFORE_DATE_E:
		return MLLP_TLS_FAIL_CERT_NOT_YET_VALID;
	case DOMAIN_NAME_MISMATCH:
	case IPADDR_MISMATCH:
		return MLLP_TLS_FAIL_HOST_MISMATCH;
	case CRL_CERT_REVOKED:
		return MLLP_TLS_FAIL_CERT_REVOKED;
	case NO_PEER_CERT:
		return MLLP_TLS_FAIL_NO_CLIENT_CERT;
	case VERSION_ERROR:
	case MATCH_SUITE_ERROR:
	case UNSUPPORTED_SUITE:
		return MLLP_TLS_FAIL_PROTOCOL_MISMATCH;
	case ASN_SIG_CONFIRM_E:
	case EXTKEYUSE_AUTH_E:
	case KEYUSE_SIGNATURE_E:
	case KEYUSE_ENCIPHER_E:
	case CRL_MISSING:
	case CRL_CERT_DATE_ERR:
	case VERIFY_CERT_ERROR:
	case ASN_PARSE_E:
		return MLLP_TLS_FAIL_BAD_CERT;
	default:
		return MLLP_TLS_FAIL_NONE;
	}
}

/* Which failure an alert from the peer means. */
static enum mllp_tls_failure mllpi_alert_failure(int alert)
{
	switch (alert) {
	case unknown_ca:
		return MLLP_TLS_FAIL_UNKNOWN_CA;
	case certificate_expired:
		return MLLP_TLS_FAIL_CERT_EXPIRED;
	case certificate_revoked:
		return MLLP_TLS_FAIL_CERT_REVOKED;
	case certificate_required:
		return MLLP_TLS_FAIL_NO_CLIENT_CERT;
	case access_denied:
		return MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED;
	case bad_certificate:
	case unsupported_certificate:
	case certificate_unknown:
		return MLLP_TLS_FAIL_BAD_CERT;
	case handshake_failure:
	case wolfssl_alert_protocol_version:
	case insufficient_security:
	case inappropriate_fallback:
		return MLLP_TLS_FAIL_PROTOCOL_MISMATCH;
	default:
		return MLLP_TLS_FAIL_PROTOCOL;
	}
}

static const char *mllpi_alert_name(int alert)
{
	const char *s;

	switch (alert) {
	case certificate_required:
		return "certificate_required";
	case access_denied:
		return "access_denied";
	case inappropriate_fallback:
		return "inappropriate_fallback";
	case missing_extension:
		return "missing_extension";
	default:
		s = wolfSSL_alert_desc_string_long(alert);
		return s != NULL ? s : "unknown alert";
	}
}

static const char *mllpi_depth_word(int depth)
{
	return depth == 0 ? "certificate" : "CA certificate";
}

/* Record the failure behind wolfSSL error e; returns MLLP_ERR_TLS. */
static int mllpi_fail(struct mllp_tls_conn *c, int e, struct mllp_error *err)
{
	struct mllp_error *fe = &c->fail_err;
	const char *peer = c->ctx->server ? "client" : "server";
	WOLFSSL_ALERT_HISTORY h;
	enum mllp_tls_failure f = MLLP_TLS_FAIL_NONE;

	memset(&h, 0, sizeof h);
	wolfSSL_get_alert_history(c->ssl, &h);
	if (c->got_first && !c->done && (c->first < 20 || c->first > 24)) {
		/* Not a TLS record type (0x16 handshake, 0x15 alert, ...). */
		f = MLLP_TLS_FAIL_NOT_TLS;
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "the %s does not speak TLS (first byte 0x%02x; "
			       "plaintext MLLP?)",
			       peer, c->first);
	} else if (c->not_allowed) {
		f = MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED;
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "client name not allowed: certificate '%s' "
			       "matches none of allowed_clients",
			       c->verify_subject);
	} else if (c->verify_err != 0) {
		/* wolfSSL reports some verdicts to the callback as OpenSSL
		 * X509_V_ERR values (positive) and returns its own code: take
		 * the callback's code when it is wolfSSL's, else the return. */
		int code = c->verify_err < 0 ? c->verify_err : e;

		f = mllpi_cert_failure(code);
		if (f == MLLP_TLS_FAIL_NONE) {
			code = e;
			f = mllpi_cert_failure(e);
		}
		if (f == MLLP_TLS_FAIL_NONE ||
		    f == MLLP_TLS_FAIL_PROTOCOL_MISMATCH)
			f = MLLP_TLS_FAIL_BAD_CERT;
		switch (f) {
		case MLLP_TLS_FAIL_UNKNOWN_CA:
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "%s certificate verify failed: unknown "
				       "CA: issuer '%s' of '%s' is not trusted",
				       peer, c->verify_issuer,
				       c->verify_subject);
			break;
		case MLLP_TLS_FAIL_HOST_MISMATCH:
			mllp_error_set(
			    fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			    "host name mismatch: server certificate '%s' does "
			    "not name '%s'",
			    c->verify_subject, c->name);
			break;
		default:
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "%s certificate verify failed: %s: %s "
				       "'%s' (%s)",
				       peer, mllp_tls_failure_text(f),
				       mllpi_depth_word(c->verify_depth),
				       c->verify_subject,
				       mllpi_wolf_text(code));
			break;
		}
	} else if (e == FATAL_ERROR && h.last_rx.code > 0) {
		f = mllpi_alert_failure(h.last_rx.code);
		c->by_peer = true;
		if (h.last_rx.code == handshake_failure && !c->ctx->server &&
		    c->cert_requested && !c->ctx->has_cert)
			f = MLLP_TLS_FAIL_NO_CLIENT_CERT; /* TLS 1.2 */
		switch (f) {
		case MLLP_TLS_FAIL_NO_CLIENT_CERT:
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "no client certificate: the server "
				       "requires one and none is configured "
				       "(alert %s)",
				       mllpi_alert_name(h.last_rx.code));
			break;
		case MLLP_TLS_FAIL_PROTOCOL_MISMATCH:
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "the %s refused the handshake: %s "
				       "(alert %s: no TLS version or cipher "
				       "suite in common)",
				       peer, mllp_tls_failure_text(f),
				       mllpi_alert_name(h.last_rx.code));
			break;
		case MLLP_TLS_FAIL_PROTOCOL:
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "the %s sent alert %s", peer,
				       mllpi_alert_name(h.last_rx.code));
			break;
		default:
			/* certificate_expired also means "not yet valid"
			 * (RFC 8446 6.2). */
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "the %s refused our certificate: %s%s "
				       "(alert %s)",
				       peer, mllp_tls_failure_text(f),
				       h.last_rx.code == certificate_expired
					   ? " or not yet valid"
					   : "",
				       mllpi_alert_name(h.last_rx.code));
			break;
		}
	} else if ((f = mllpi_cert_failure(e)) != MLLP_TLS_FAIL_NONE) {
		if (f == MLLP_TLS_FAIL_NO_CLIENT_CERT) {
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "no client certificate: this receiver "
				       "requires one");
			/* wolfSSL 5.5.4 fails a TLS 1.2 handshake without a
			 * client certificate silently; tell the client, in
			 * the clear as no cipher is active yet. */
			if (h.last_tx.code <= 0 &&
			    wolfSSL_version(c->ssl) == TLS1_2_VERSION) {
				static const unsigned char alert[] = {
				    21, 3, 3, 0, 2, 2, handshake_failure};

				mllpi_append(&c->out, alert, sizeof alert);
			}
		} else if (e == VERSION_ERROR) {
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "%s: no TLS version in common with the "
				       "%s (see min_version/max_version)",
				       mllp_tls_failure_text(f), peer);
		} else if (f == MLLP_TLS_FAIL_PROTOCOL_MISMATCH) {
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "%s: no cipher suite in common with the "
				       "%s (see cipher_list)",
				       mllp_tls_failure_text(f), peer);
		} else {
			mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
				       "%s (%s)", mllp_tls_failure_text(f),
				       mllpi_wolf_text(e));
		}
	} else if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E ||
		   (c->eof && mllpi_avail(&c->in) == 0)) {
		f = MLLP_TLS_FAIL_CLOSED;
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "the %s closed the connection during the TLS "
			       "handshake",
			       peer);
	} else if (e == MEMORY_E) {
		f = MLLP_TLS_FAIL_INTERNAL;
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "out of memory in wolfSSL");
	} else {
		f = MLLP_TLS_FAIL_PROTOCOL;
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "TLS protocol error: %s (%d)",
			       mllpi_wolf_text(e), e);
	}
	c->failure = f;
	c->fail_rc = MLLP_ERR_TLS;
	if (err != NULL)
		*err = *fe;
	return MLLP_ERR_TLS;
}

static int mllpi_sticky(const struct mllp_tls_conn *c, struct mllp_error *err)
{
	if (err != NULL)
		*err = c->fail_err;
	return c->fail_rc;
}

/* ---- driving ------------------------------------------------------------- */

/* After a handshake in which the verify callback kept no name (verify
 * none, or a resumed session: no certificate was verified this time), take
 * it from the peer certificate wolfSSL keeps, applying the allow-list
 * again. */
static int mllpi_late_peer_name(struct mllp_tls_conn *c, struct mllp_error *err)
{
	WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(c->ssl); /* a copy */
	struct mllpi_allow a = {c->ctx, NULL};
	bool ok = true;

	if (x == NULL) {
		if (c->ctx->n_allowed == 0)
			return 0;
		/* Cannot happen with wolfSSL keeping session certificates;
		 * never accept a client the allow-list cannot vouch for. */
		c->not_allowed = true;
		snprintf(c->verify_subject, sizeof c->verify_subject,
			 "(none kept in the resumed session)");
		return mllpi_fail(c, VERIFY_CERT_ERROR, err);
	}
	if (c->ctx->n_allowed > 0) {
		ok = mllpi_each_name(x, mllpi_allowed_name, &a, true);
		if (ok)
			c->peer_name = mllpi_strdup(a.matched);
		else
			mllpi_oneline(wolfSSL_X509_get_subject_name(x),
				      c->verify_subject,
				      sizeof c->verify_subject);
	} else {
		mllpi_each_name(x, mllpi_first_name, &c->peer_name, false);
	}
	wolfSSL_X509_free(x);
	if (!ok) {
		c->not_allowed = true;
		return mllpi_fail(c, VERIFY_CERT_ERROR, err);
	}
	return 0;
}

int mllp_tls_conn_handshake(struct mllp_tls_conn *c, struct mllp_error *err)
{
	int ret, e;

	if (c->fail_rc != 0)
		return mllpi_sticky(c, err);
	if (c->done)
		return 0;
	c->started = true;
	for (int again = 0;; again++) {
		ret = c->ctx->server ? wolfSSL_accept(c->ssl)
				     : wolfSSL_connect(c->ssl);
		if (ret == WOLFSSL_SUCCESS)
			break;
		e = wolfSSL_get_error(c->ssl, ret);
		if (e == WOLFSSL_ERROR_WANT_READ ||
		    e == WOLFSSL_ERROR_WANT_WRITE)
			return MLLP_ERR_WOULD_BLOCK;
		if (e != WOLFSSL_ERROR_NONE)
			return mllpi_fail(c, e, err);
		/* wolfSSL 5.5.4 answers -1 with no error after sending the
		 * last piece of a message that met WANT_WRITE: it wants to be
		 * called again. Do so while it progresses. */
		if (mllpi_avail(&c->out) >= c->ctx->max_out)
			return MLLP_ERR_WOULD_BLOCK;
		if (again == 16)
			return mllpi_fail(c, e, err);
	}
	c->done = true;
	if (c->peer_name == NULL)
		return mllpi_late_peer_name(c, err);
	return 0;
}

/* One wolfSSL_write of n bytes at p; on WANT_WRITE the bytes are held
 * (copied unless p already is the held buffer). Returns 0 (all taken),
 * MLLP_ERR_WOULD_BLOCK (held), or an error. */
static int mllpi_write_chunk(struct mllp_tls_conn *c, const void *p, size_t n,
			     struct mllp_error *err)
{
	int ret = wolfSSL_write(c->ssl, p, (int)n);
	int e;

	if (ret > 0) {
		c->held_len = 0;
		c->send_blocked = false;
		return 0;
	}
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ ||
	    e == WOLFSSL_ERROR_NONE) {
		/* NONE: see mllp_tls_conn_handshake; repeat the same bytes. */
		if (p != c->held) {
			if (c->held == NULL &&
			    (c->held = malloc(MLLPI_TLS_CHUNK)) == NULL) {
				/* wolfSSL holds part of this chunk already:
				 * the connection cannot go on. */
				c->failure = MLLP_TLS_FAIL_INTERNAL;
				c->fail_rc = MLLP_ERR_NO_MEMORY;
				mllp_error_set(&c->fail_err, MLLP_CTX_TLS,
					       MLLP_ERR_NO_MEMORY, NULL);
				return mllpi_sticky(c, err);
			}
			memcpy(c->held, p, n);
			c->held_len = n;
		}
		return MLLP_ERR_WOULD_BLOCK;
	}
	if (e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED, NULL);
		return MLLP_ERR_CLOSED;
	}
	return mllpi_fail(c, e, err);
}

int mllp_tls_conn_flush(struct mllp_tls_conn *c, struct mllp_error *err)
{
	if (c->fail_rc != 0)
		return mllpi_sticky(c, err);
	if (c->held_len == 0)
		return 0;
	return mllpi_write_chunk(c, c->held, c->held_len, err);
}

size_t mllp_tls_conn_write_pending(const struct mllp_tls_conn *c)
{
	return c->held_len;
}

int mllp_tls_conn_write(struct mllp_tls_conn *c, const void *buf, size_t len,
			size_t *written, struct mllp_error *err)
{
	const unsigned char *p = buf;
	size_t done = 0;
	int rc;

	*written = 0;
	if (c->fail_rc != 0)
		return mllpi_sticky(c, err);
	if (!c->done) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_BAD_STATE,
			       "TLS write before the handshake completed");
		return MLLP_ERR_BAD_STATE;
	}
	rc = mllp_tls_conn_flush(c, err);
	if (rc != 0)
		return rc;
	while (done < len) {
		size_t n = len - done;

		if (mllpi_avail(&c->out) >= c->ctx->max_out)
			break; /* full: nothing more taken now */
		if (n > MLLPI_TLS_CHUNK)
			n = MLLPI_TLS_CHUNK;
		rc = mllpi_write_chunk(c, p + done, n, err);
		if (rc == MLLP_ERR_WOULD_BLOCK) {
			done += n; /* held by the engine */
			break;
		}
		if (rc != 0) {
			if (done > 0)
				break; /* report what was taken */
			return rc;
		}
		done += n;
	}
	*written = done;
	if (done == 0 && len > 0)
		return MLLP_ERR_WOULD_BLOCK;
	return 0;
}

int mllp_tls_conn_read(struct mllp_tls_conn *c, void *buf, size_t cap,
		       size_t *got, struct mllp_error *err)
{
	int ret, e;

	*got = 0;
	if (c->fail_rc != 0)
		return mllpi_sticky(c, err);
	if (!c->done) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_BAD_STATE,
			       "TLS read before the handshake completed");
		return MLLP_ERR_BAD_STATE;
	}
	if (c->close_notify) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED, NULL);
		return MLLP_ERR_CLOSED;
	}
	/* Nothing to read: no ciphertext fed, no decrypted bytes left over,
	 * no output wolfSSL may want to retry, not at end of file. wolfSSL
	 * reads exactly the record it works on from the in buffer (no read
	 * ahead), so an empty in buffer means wolfSSL_read would only meet
	 * WANT_READ: answer "again" without the call (a wolfSSL_read that
	 * ends in WANT_READ walks the record layer and formats an error
	 * line: about 4 % of the engine's CPU per message). */
	if (mllpi_avail(&c->in) == 0 && !c->eof && !c->send_blocked &&
	    c->held_len == 0 && wolfSSL_pending(c->ssl) == 0)
		return MLLP_ERR_WOULD_BLOCK;
	if (cap > INT_MAX)
		cap = INT_MAX;
	ret = wolfSSL_read(c->ssl, buf, (int)cap);
	if (ret > 0) {
		*got = (size_t)ret;
		return 0;
	}
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_READ) {
		c->send_blocked = false;
		return MLLP_ERR_WOULD_BLOCK;
	}
	if (e == WOLFSSL_ERROR_WANT_WRITE)
		return MLLP_ERR_WOULD_BLOCK;
	if (e == WOLFSSL_ERROR_ZERO_RETURN) {
		c->close_notify = true;
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED,
			       "the peer closed the TLS connection "
			       "(close_notify)");
		return MLLP_ERR_CLOSED;
	}
	if (e == SOCKET_PEER_CLOSED_E ||
	    (c->eof && mllpi_avail(&c->in) == 0 && e == SOCKET_ERROR_E)) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_CLOSED,
			       "the peer closed the connection without "
			       "close_notify");
		return MLLP_ERR_CLOSED;
	}
	return mllpi_fail(c, e, err);
}

int mllp_tls_conn_shutdown(struct mllp_tls_conn *c, struct mllp_error *err)
{
	int ret, e;

	if (!c->done || c->fail_rc != 0)
		return 0; /* nothing was established: just close */
	if (c->held_len > 0) {
		/* Finish the write wolfSSL is in the middle of first. */
		int rc = mllp_tls_conn_flush(c, err);

		if (rc != 0)
			return rc;
	}
	if (wolfSSL_get_shutdown(c->ssl) & WOLFSSL_SENT_SHUTDOWN)
		return 0;
	ret = wolfSSL_shutdown(c->ssl);
	if (ret == WOLFSSL_SUCCESS || ret == WOLFSSL_SHUTDOWN_NOT_DONE)
		return 0;
	e = wolfSSL_get_error(c->ssl, ret);
	if (e == WOLFSSL_ERROR_WANT_WRITE || e == WOLFSSL_ERROR_WANT_READ)
		return MLLP_ERR_WOULD_BLOCK;
	if (ret == 0 || e == WOLFSSL_ERROR_NONE ||
	    e == WOLFSSL_ERROR_ZERO_RETURN)
		return 0;
	mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_TLS,
		       "cannot send close_notify: %s", mllpi_wolf_text(e));
	return MLLP_ERR_TLS;
}

bool mllp_tls_conn_close_notify_received(const struct mllp_tls_conn *c)
{
	return c->close_notify;
}

enum mllp_tls_failure mllp_tls_conn_failure(const struct mllp_tls_conn *c)
{
	return c->failure;
}

bool mllp_tls_conn_failure_by_peer(const struct mllp_tls_conn *c)
{
	return c->by_peer;
}

const char *mllp_tls_conn_peer_name(const struct mllp_tls_conn *c)
{
	return c->done ? c->peer_name : NULL;
}

const char *mllp_tls_conn_version(const struct mllp_tls_conn *c)
{
	const char *v = wolfSSL_get_version(c->ssl);

	return v != NULL ? v : "unknown";
}

const char *mllp_tls_conn_cipher(const struct mllp_tls_conn *c)
{
	const char *s = wolfSSL_get_cipher_name(c->ssl);

	return s != NULL ? s : "none";
}

bool mllp_tls_conn_session_reused(const struct mllp_tls_conn *c)
{
	return c->done && wolfSSL_session_reused(c->ssl) == 1;
}

/* ---- sessions ------------------------------------------------------------ */

struct mllp_tls_session *mllp_tls_conn_get_session(struct mllp_tls_conn *c)
{
	struct mllp_tls_session *s;
	WOLFSSL_SESSION *ws;

	if (c->ctx->server || !c->done || !c->ctx->resume || c->fail_rc != 0)
		return NULL;
	if (wolfSSL_version(c->ssl) == TLS1_3_VERSION && !c->ticket)
		return NULL; /* the NewSessionTicket was not read yet */
	ws = wolfSSL_get1_session(c->ssl);
	if (ws == NULL)
		return NULL;
	if (!wolfSSL_SESSION_is_resumable(ws) ||
	    (s = malloc(sizeof *s)) == NULL) {
		wolfSSL_SESSION_free(ws);
		return NULL;
	}
	s->s = ws;
	return s;
}

int mllp_tls_conn_set_session(struct mllp_tls_conn *c,
			      const struct mllp_tls_session *s)
{
	if (c->ctx->server || c->started || s == NULL)
		return MLLP_ERR_BAD_STATE;
	if (wolfSSL_set_session(c->ssl, s->s) != WOLFSSL_SUCCESS)
		return MLLP_ERR_TLS;
	return 0;
}

void mllp_tls_session_free(struct mllp_tls_session *s)
{
	if (s == NULL)
		return;
	wolfSSL_SESSION_free(s->s);
	free(s);
}

void mllp_tls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
	wc_ecc_fp_free(); /* this thread's ECC fixed-point cache */
#endif
}

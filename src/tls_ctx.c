/* libmllp: TLS contexts (wolfSSL).
 *
 * A context is built once from a client or server configuration: the
 * protocol version range, the cipher suites, the trust anchors (CA file,
 * CA directory, system store), our certificate chain and key (checked to
 * belong together), the CRL and the receiver's allow-list. Every file is
 * loaded at creation, and a bad path, a file without the expected PEM
 * block, an unreadable key or a key that does not match its certificate is
 * an error naming the file and the option. Connections are made from a
 * context in tls_mem.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/evp.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#include "reserved.h"
#include "tls_internal.h"

char *mllpi_tls_strdup(const char *s)
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
	rc = MLLPI_CHECK_RESERVED(cfg, "mllp_tls_client_config", MLLP_CTX_TLS,
				  err);
	if (rc != 0)
		return rc;
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
	    (t->server_name = mllpi_tls_strdup(cfg->server_name)) == NULL) {
		mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_MEMORY, NULL);
		rc = MLLP_ERR_NO_MEMORY;
	}
	if (rc == 0) {
		wolfSSL_CTX_set_verify(t->wctx,
				       t->verify ? WOLFSSL_VERIFY_PEER
						 : WOLFSSL_VERIFY_NONE,
				       mllpi_tls_verify_cb);
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
	rc = MLLPI_CHECK_RESERVED(cfg, "mllp_tls_server_config", MLLP_CTX_TLS,
				  err);
	if (rc != 0)
		return rc;
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
			t->allowed[i] =
			    mllpi_tls_strdup(cfg->allowed_clients[i]);
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
		    t->verify ? mllpi_tls_verify_cb : NULL);
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

/* libmllp: naming a TLS failure (wolfSSL).
 *
 * When a handshake, read or write fails, wolfSSL gives an error code, the
 * verify callback (tls_verify.c) may have recorded a certificate verdict,
 * and the peer may have sent an alert. Here these become one reason (enum
 * mllp_tls_failure) and one message a person can act on ("server
 * certificate verify failed: unknown CA: issuer '...' of '...' is not
 * trusted"), kept in the connection as its sticky failure. */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#include "tls_internal.h"

/* The text of a wolfSSL (or wolfCrypt) error code. */
const char *mllpi_tls_wolf_text(int code)
{
	const char *s;

	if (code > 0)
		code = -code;
	s = wolfSSL_ERR_reason_error_string((unsigned long)code);
	return s != NULL ? s : "unknown error";
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

/* A certificate verdict recorded by the verify callback (code) or returned
 * by wolfSSL (e): the failure, its message in c->fail_err. */
static enum mllp_tls_failure mllpi_fail_verify(struct mllp_tls_conn *c, int e,
					       const char *peer)
{
	struct mllp_error *fe = &c->fail_err;
	/* wolfSSL reports some verdicts to the callback as OpenSSL
	 * X509_V_ERR values (positive) and returns its own code: take the
	 * callback's code when it is wolfSSL's, else the return. */
	int code = c->verify_err < 0 ? c->verify_err : e;
	enum mllp_tls_failure f = mllpi_cert_failure(code);

	if (f == MLLP_TLS_FAIL_NONE) {
		code = e;
		f = mllpi_cert_failure(e);
	}
	if (f == MLLP_TLS_FAIL_NONE || f == MLLP_TLS_FAIL_PROTOCOL_MISMATCH)
		f = MLLP_TLS_FAIL_BAD_CERT;
	switch (f) {
	case MLLP_TLS_FAIL_UNKNOWN_CA:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "%s certificate verify failed: unknown "
			       "CA: issuer '%s' of '%s' is not trusted",
			       peer, c->verify_issuer, c->verify_subject);
		break;
	case MLLP_TLS_FAIL_HOST_MISMATCH:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "host name mismatch: server certificate '%s' "
			       "does not name '%s'",
			       c->verify_subject, c->name);
		break;
	default:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "%s certificate verify failed: %s: %s "
			       "'%s' (%s)",
			       peer, mllp_tls_failure_text(f),
			       mllpi_depth_word(c->verify_depth),
			       c->verify_subject, mllpi_tls_wolf_text(code));
		break;
	}
	return f;
}

/* A fatal alert from the peer: the failure, its message in c->fail_err. */
static enum mllp_tls_failure mllpi_fail_alert(struct mllp_tls_conn *c,
					      int alert, const char *peer)
{
	struct mllp_error *fe = &c->fail_err;
	enum mllp_tls_failure f = mllpi_alert_failure(alert);

	c->by_peer = true;
	if (alert == handshake_failure && !c->ctx->server &&
	    c->cert_requested && !c->ctx->has_cert)
		f = MLLP_TLS_FAIL_NO_CLIENT_CERT; /* TLS 1.2 */
	switch (f) {
	case MLLP_TLS_FAIL_NO_CLIENT_CERT:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "no client certificate: the server "
			       "requires one and none is configured "
			       "(alert %s)",
			       mllpi_alert_name(alert));
		break;
	case MLLP_TLS_FAIL_PROTOCOL_MISMATCH:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "the %s refused the handshake: %s "
			       "(alert %s: no TLS version or cipher "
			       "suite in common)",
			       peer, mllp_tls_failure_text(f),
			       mllpi_alert_name(alert));
		break;
	case MLLP_TLS_FAIL_PROTOCOL:
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "the %s sent alert %s", peer,
			       mllpi_alert_name(alert));
		break;
	default:
		/* certificate_expired also means "not yet valid"
		 * (RFC 8446 6.2). */
		mllp_error_set(
		    fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
		    "the %s refused our certificate: %s%s "
		    "(alert %s)",
		    peer, mllp_tls_failure_text(f),
		    alert == certificate_expired ? " or not yet valid" : "",
		    mllpi_alert_name(alert));
		break;
	}
	return f;
}

/* Failure f that this side found from wolfSSL error e (no verdict from the
 * verify callback, no alert from the peer): its message in c->fail_err.
 * last_tx is the last alert this side sent (0 or less: none). */
static void mllpi_fail_local(struct mllp_tls_conn *c, int e,
			     enum mllp_tls_failure f, int last_tx,
			     const char *peer)
{
	struct mllp_error *fe = &c->fail_err;

	if (f == MLLP_TLS_FAIL_NO_CLIENT_CERT) {
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS,
			       "no client certificate: this receiver "
			       "requires one");
		/* wolfSSL 5.5.4 fails a TLS 1.2 handshake without a client
		 * certificate silently; tell the client, in the clear as no
		 * cipher is active yet. */
		if (last_tx <= 0 && wolfSSL_version(c->ssl) == TLS1_2_VERSION) {
			static const unsigned char alert[] = {
			    21, 3, 3, 0, 2, 2, handshake_failure};

			mllpi_tls_append(&c->out, alert, sizeof alert);
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
		mllp_error_set(fe, MLLP_CTX_TLS, MLLP_ERR_TLS, "%s (%s)",
			       mllp_tls_failure_text(f),
			       mllpi_tls_wolf_text(e));
	}
}

/* Record the failure behind wolfSSL error e; returns MLLP_ERR_TLS. The
 * first that applies names it: a peer that does not speak TLS, a client
 * the allow-list refused, a certificate verdict, an alert from the peer, a
 * certificate or protocol error wolfSSL returned, the peer closing, out of
 * memory, any other protocol error. */
int mllpi_tls_fail(struct mllp_tls_conn *c, int e, struct mllp_error *err)
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
		f = mllpi_fail_verify(c, e, peer);
	} else if (e == FATAL_ERROR && h.last_rx.code > 0) {
		f = mllpi_fail_alert(c, h.last_rx.code, peer);
	} else if ((f = mllpi_cert_failure(e)) != MLLP_TLS_FAIL_NONE) {
		mllpi_fail_local(c, e, f, h.last_tx.code, peer);
	} else if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E ||
		   (c->eof && mllpi_tls_avail(&c->in) == 0)) {
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
			       mllpi_tls_wolf_text(e), e);
	}
	c->failure = f;
	c->fail_rc = MLLP_ERR_TLS;
	if (err != NULL)
		*err = *fe;
	return MLLP_ERR_TLS;
}

int mllpi_tls_sticky(const struct mllp_tls_conn *c, struct mllp_error *err)
{
	if (err != NULL)
		*err = c->fail_err;
	return c->fail_rc;
}

/* libmllp: TLS peer verification (wolfSSL).
 *
 * wolfSSL runs the certificate checks (chain, dates, DNS host name, CRL).
 * Its verify callback here watches every verdict, also the passing ones,
 * and records the first failure with the certificate's depth, subject and
 * issuer, so tls_fail.c can name it precisely. On the leaf it adds what
 * wolfSSL does not check: an IP-address host name against the IP SAN
 * entries, and the receiver's allow-list against the SAN DNS names and the
 * CN. It keeps the peer's name, and after a handshake that verified no
 * certificate (verify none, a resumed session) takes it from the
 * certificate wolfSSL kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/asn.h>

#include <mllp/error.h>
#include <mllp/tls.h>

#include "tls_internal.h"

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
int mllpi_tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
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
		c->peer_name = mllpi_tls_strdup(a.matched);
		return 1;
	}
	if (c->peer_name == NULL)
		mllpi_each_name(store->current_cert, mllpi_first_name,
				&c->peer_name, false);
	return 1;
}

/* After a handshake in which the verify callback kept no name (verify
 * none, or a resumed session: no certificate was verified this time), take
 * it from the peer certificate wolfSSL keeps, applying the allow-list
 * again. */
int mllpi_tls_late_peer_name(struct mllp_tls_conn *c, struct mllp_error *err)
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
		return mllpi_tls_fail(c, VERIFY_CERT_ERROR, err);
	}
	if (c->ctx->n_allowed > 0) {
		ok = mllpi_each_name(x, mllpi_allowed_name, &a, true);
		if (ok)
			c->peer_name = mllpi_tls_strdup(a.matched);
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
		return mllpi_tls_fail(c, VERIFY_CERT_ERROR, err);
	}
	return 0;
}

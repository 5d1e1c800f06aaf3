/* libmllp: the TLS functions that need no TLS library (failure names,
 * configuration defaults), shared by the wolfSSL engine (the files
 * tls_internal.h lists) and the build without TLS (tls_none.c). */
#include <string.h>

#include <mllp/config.h>
#include <mllp/tls.h>

bool mllp_tls_available(void)
{
	return MLLP_HAVE_TLS != 0;
}

/* ---- failure names ------------------------------------------------------- */

static const struct {
	const char *name;
	const char *text;
} mllpi_failures[] = {
    [MLLP_TLS_FAIL_NONE] = {"none", "no failure"},
    [MLLP_TLS_FAIL_UNKNOWN_CA] = {"unknown_ca", "unknown CA"},
    [MLLP_TLS_FAIL_CERT_EXPIRED] = {"cert_expired", "certificate expired"},
    [MLLP_TLS_FAIL_CERT_NOT_YET_VALID] = {"cert_not_yet_valid",
					  "certificate not yet valid"},
    [MLLP_TLS_FAIL_HOST_MISMATCH] = {"host_mismatch", "host name mismatch"},
    [MLLP_TLS_FAIL_CERT_REVOKED] = {"cert_revoked", "certificate revoked"},
    [MLLP_TLS_FAIL_NO_CLIENT_CERT] = {"no_client_cert",
				      "no client certificate"},
    [MLLP_TLS_FAIL_CLIENT_NOT_ALLOWED] = {"client_not_allowed",
					  "client name not allowed"},
    [MLLP_TLS_FAIL_BAD_CERT] = {"bad_cert", "certificate rejected"},
    [MLLP_TLS_FAIL_PROTOCOL_MISMATCH] = {"protocol_mismatch",
					 "protocol or cipher mismatch"},
    [MLLP_TLS_FAIL_NOT_TLS] = {"not_tls", "peer does not speak TLS"},
    [MLLP_TLS_FAIL_PROTOCOL] = {"protocol", "TLS protocol error"},
    [MLLP_TLS_FAIL_CLOSED] = {"closed",
			      "connection closed during the handshake"},
    [MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT] = {"handshake_timeout",
					 "handshake timeout"},
    [MLLP_TLS_FAIL_CONFIG] = {"config", "TLS configuration error"},
    [MLLP_TLS_FAIL_INTERNAL] = {"internal", "internal TLS error"},
};

#define MLLPI_NFAIL (sizeof mllpi_failures / sizeof mllpi_failures[0])

const char *mllp_tls_failure_text(enum mllp_tls_failure f)
{
	if ((unsigned)f >= MLLPI_NFAIL)
		return "unknown TLS failure";
	return mllpi_failures[f].text;
}

const char *mllp_tls_failure_name(enum mllp_tls_failure f)
{
	if ((unsigned)f >= MLLPI_NFAIL)
		return "unknown";
	return mllpi_failures[f].name;
}

/* ---- configuration ------------------------------------------------------- */

void mllp_tls_client_config_init(struct mllp_tls_client_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->verify = MLLP_TLS_VERIFY_PEER;
	cfg->min_version = MLLP_TLS_VERSION_1_2;
	cfg->max_version = MLLP_TLS_VERSION_1_3;
	cfg->session_resumption = true;
	cfg->max_out = MLLP_TLS_DEFAULT_MAX_OUT;
}

void mllp_tls_server_config_init(struct mllp_tls_server_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->min_version = MLLP_TLS_VERSION_1_2;
	cfg->max_version = MLLP_TLS_VERSION_1_3;
	cfg->session_resumption = true;
	cfg->max_out = MLLP_TLS_DEFAULT_MAX_OUT;
}

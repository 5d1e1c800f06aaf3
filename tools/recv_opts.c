/* The receiver's command-line options (see recv_opts.h). */
#include "recv_opts.h"

#include <stdio.h>
#include <stdlib.h>

#include "common.h"

void recv_opts_init(struct recv_opts *r, bool more)
{
	*r = (struct recv_opts){.more = more};
	mllp_receiver_config_init(&r->cfg);
	mllp_tls_server_config_init(&r->tls);
}

/* Append s to a growable list of strings (exits 1 when out of memory). */
static void push_str(const char *prog, const char ***v, size_t *n,
		     const char *s)
{
	const char **p = realloc(*v, (*n + 1) * sizeof(**v));
	if (!p) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_FAILURE);
	}
	*v = p;
	p[(*n)++] = s;
}

/* The listener and limit options; false when ch is none of them. */
static bool limit_option(const char *prog, int ch, const char *arg,
			 struct recv_opts *r)
{
	struct mllp_receiver_config *cfg = &r->cfg;
	switch (ch) {
	case RECV_OPT_BIND:
		cfg->address = arg;
		return true;
	case RECV_OPT_MAX_FRAME:
		cfg->max_frame = (size_t)tool_arg_u64(
		    prog, arg, 1, SIZE_MAX,
		    "--max-frame wants a size in bytes >= 1");
		return true;
	case RECV_OPT_MAX_CONN:
		cfg->max_connections = (uint32_t)tool_arg_u64(
		    prog, arg, 1, UINT32_MAX,
		    "--max-connections wants a number >= 1");
		return true;
	case RECV_OPT_IDLE:
		cfg->idle_timeout_ms =
		    (uint32_t)tool_arg_u64(prog, arg, 0, UINT32_MAX / 1000,
					   "--idle-timeout wants seconds") *
		    1000u;
		return true;
	case RECV_OPT_MAX_BUFFERED:
		cfg->max_buffered_bytes = (size_t)tool_arg_u64(
		    prog, arg, 1, SIZE_MAX,
		    "--max-buffered-bytes wants a size in bytes >= 1");
		r->have_max_buffered = true;
		return true;
	case RECV_OPT_REPLY_PAUSE:
		cfg->reply_backlog_pause = (size_t)tool_arg_u64(
		    prog, arg, 1, SIZE_MAX,
		    "--reply-backlog-pause wants a size in bytes >= 1");
		return true;
	case RECV_OPT_ALLOW:
		push_str(prog, &r->allow, &r->nallow, arg);
		return true;
	case RECV_OPT_BACKEND:
		cfg->backend = tool_arg_backend(prog, arg);
		return true;
	case RECV_OPT_MLLP2:
		cfg->mllp_release = 2;
		return true;
	default:
		return false;
	}
}

bool recv_option(const char *prog, int ch, const char *arg, struct recv_opts *r)
{
	struct mllp_tls_server_config *tls = &r->tls;
	switch (ch) {
	case RECV_OPT_TLS:
		tls->enabled = true;
		return true;
	case RECV_OPT_CERT:
		tls->cert_file = arg;
		return true;
	case RECV_OPT_KEY:
		tls->key_file = arg;
		return true;
	case RECV_OPT_CA:
		tls->client_ca_file = arg;
		return true;
	case RECV_OPT_CRL:
		tls->crl_file = arg;
		return true;
	case RECV_OPT_REQUIRE_CERT:
		tls->require_client_cert = true;
		return true;
	case RECV_OPT_ALLOW_CN:
		push_str(prog, &r->cns, &r->ncns, arg);
		return true;
	default:
		return limit_option(prog, ch, arg, r);
	}
}

void recv_opts_check(const char *prog, struct recv_opts *r)
{
	struct mllp_receiver_config *cfg = &r->cfg;
	struct mllp_tls_server_config *tls = &r->tls;
	if (r->more && cfg->max_buffered_bytes < cfg->max_frame)
		tool_usage(prog,
			   "--max-buffered-bytes (%zu%s) must be at least "
			   "--max-frame (%zu)",
			   cfg->max_buffered_bytes,
			   r->have_max_buffered ? "" : ", the default",
			   cfg->max_frame);
	bool tls_opts = tls->cert_file || tls->key_file ||
			tls->client_ca_file || tls->crl_file ||
			tls->require_client_cert || r->ncns;
	tool_tls_built(prog, tls->enabled);
	if (tls_opts && !tls->enabled)
		tool_usage(prog, "%s need --tls",
			   r->more ? "--cert/--key/--ca/--crl/"
				     "--require-client-cert/--allow-cn"
				   : "--cert/--key/--ca/--require-client-cert");
	if (tls->enabled && (!tls->cert_file || !tls->key_file))
		tool_usage(prog, "--tls needs --cert and --key");
	if (tls->require_client_cert && !tls->client_ca_file)
		tool_usage(prog, "--require-client-cert needs --ca");
	if (r->ncns && !tls->require_client_cert)
		tool_usage(prog, "--allow-cn needs --require-client-cert");
	tls->allowed_clients = r->cns;
	tls->n_allowed_clients = r->ncns;
	cfg->allowed_clients = r->allow;
	cfg->allowed_clients_count = r->nallow;
	cfg->tls = tls->enabled ? tls : NULL;
}

void recv_opts_free(struct recv_opts *r)
{
	free(r->allow);
	free(r->cns);
	r->allow = r->cns = NULL;
	r->nallow = r->ncns = 0;
}

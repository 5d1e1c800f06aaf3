/* libmllp: the TLS engine in a build without TLS (-DMLLP_TLS=OFF).
 *
 * Same functions as the wolfSSL engine (the files tls_internal.h lists),
 * no TLS library: creating a context or a connection fails with
 * MLLP_ERR_NO_TLS, so no context, connection or session ever exists and the
 * functions that take one have nothing to do. They still answer safely (NULL
 * allowed) for callers that do not check. */
#include <stddef.h>

#include <mllp/error.h>
#include <mllp/tls.h>

static int no_tls(struct mllp_error *err)
{
	mllp_error_set(err, MLLP_CTX_TLS, MLLP_ERR_NO_TLS, NULL);
	return MLLP_ERR_NO_TLS;
}

const char *mllp_tls_default_cipher_list(void)
{
	return "";
}

int mllp_tls_ctx_new_client(const struct mllp_tls_client_config *cfg,
			    struct mllp_tls_ctx **out, struct mllp_error *err)
{
	(void)cfg;
	if (out)
		*out = NULL;
	return no_tls(err);
}

int mllp_tls_ctx_new_server(const struct mllp_tls_server_config *cfg,
			    struct mllp_tls_ctx **out, struct mllp_error *err)
{
	(void)cfg;
	if (out)
		*out = NULL;
	return no_tls(err);
}

bool mllp_tls_ctx_insecure(const struct mllp_tls_ctx *ctx)
{
	(void)ctx;
	return false;
}

void mllp_tls_ctx_free(struct mllp_tls_ctx *ctx)
{
	(void)ctx;
}

int mllp_tls_conn_new_client(struct mllp_tls_ctx *ctx, const char *host,
			     struct mllp_tls_conn **out, struct mllp_error *err)
{
	(void)ctx;
	(void)host;
	if (out)
		*out = NULL;
	return no_tls(err);
}

int mllp_tls_conn_new_server(struct mllp_tls_ctx *ctx,
			     struct mllp_tls_conn **out, struct mllp_error *err)
{
	(void)ctx;
	if (out)
		*out = NULL;
	return no_tls(err);
}

void mllp_tls_conn_free(struct mllp_tls_conn *c)
{
	(void)c;
}

int mllp_tls_conn_feed(struct mllp_tls_conn *c, const void *data, size_t len)
{
	(void)c;
	(void)data;
	(void)len;
	return MLLP_ERR_NO_TLS;
}

void mllp_tls_conn_feed_eof(struct mllp_tls_conn *c)
{
	(void)c;
}

size_t mllp_tls_conn_out_peek(const struct mllp_tls_conn *c, const void **data)
{
	(void)c;
	if (data)
		*data = NULL;
	return 0;
}

void mllp_tls_conn_out_consume(struct mllp_tls_conn *c, size_t n)
{
	(void)c;
	(void)n;
}

size_t mllp_tls_conn_out_pending(const struct mllp_tls_conn *c)
{
	(void)c;
	return 0;
}

size_t mllp_tls_conn_take_out(struct mllp_tls_conn *c, void *buf, size_t cap)
{
	(void)c;
	(void)buf;
	(void)cap;
	return 0;
}

int mllp_tls_conn_handshake(struct mllp_tls_conn *c, struct mllp_error *err)
{
	(void)c;
	return no_tls(err);
}

int mllp_tls_conn_write(struct mllp_tls_conn *c, const void *buf, size_t len,
			size_t *written, struct mllp_error *err)
{
	(void)c;
	(void)buf;
	(void)len;
	if (written)
		*written = 0;
	return no_tls(err);
}

size_t mllp_tls_conn_write_pending(const struct mllp_tls_conn *c)
{
	(void)c;
	return 0;
}

int mllp_tls_conn_flush(struct mllp_tls_conn *c, struct mllp_error *err)
{
	(void)c;
	return no_tls(err);
}

int mllp_tls_conn_read(struct mllp_tls_conn *c, void *buf, size_t cap,
		       size_t *got, struct mllp_error *err)
{
	(void)c;
	(void)buf;
	(void)cap;
	if (got)
		*got = 0;
	return no_tls(err);
}

int mllp_tls_conn_shutdown(struct mllp_tls_conn *c, struct mllp_error *err)
{
	(void)c;
	return no_tls(err);
}

bool mllp_tls_conn_close_notify_received(const struct mllp_tls_conn *c)
{
	(void)c;
	return false;
}

enum mllp_tls_failure mllp_tls_conn_failure(const struct mllp_tls_conn *c)
{
	(void)c;
	return MLLP_TLS_FAIL_NONE;
}

bool mllp_tls_conn_failure_by_peer(const struct mllp_tls_conn *c)
{
	(void)c;
	return false;
}

const char *mllp_tls_conn_peer_name(const struct mllp_tls_conn *c)
{
	(void)c;
	return NULL;
}

const char *mllp_tls_conn_version(const struct mllp_tls_conn *c)
{
	(void)c;
	return "none";
}

const char *mllp_tls_conn_cipher(const struct mllp_tls_conn *c)
{
	(void)c;
	return "none";
}

bool mllp_tls_conn_session_reused(const struct mllp_tls_conn *c)
{
	(void)c;
	return false;
}

struct mllp_tls_session *mllp_tls_conn_get_session(struct mllp_tls_conn *c)
{
	(void)c;
	return NULL;
}

int mllp_tls_conn_set_session(struct mllp_tls_conn *c,
			      const struct mllp_tls_session *s)
{
	(void)c;
	(void)s;
	return MLLP_ERR_NO_TLS;
}

void mllp_tls_session_free(struct mllp_tls_session *s)
{
	(void)s;
}

void mllp_tls_thread_cleanup(void)
{
}

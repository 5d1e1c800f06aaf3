/* The single-client API: one connection of a private pool. */
#include "pool_internal.h"

#include <string.h>

#include <mllp/client.h>

struct mllp_client {
	struct mllp_pool *pool;
	struct mllp_allocator alloc;
};

int mllp_client_create(const char *address, uint16_t port,
		       const struct mllp_pool_config *cfg,
		       struct mllp_client **out, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!out) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	*out = NULL;
	if (!address || !*address) {
		mllp_error_set(err, MLLP_CTX_CONNECT, MLLP_ERR_BAD_ADDRESS,
			       NULL);
		return MLLP_ERR_BAD_ADDRESS;
	}
	struct mllp_pool_config c;
	if (cfg)
		c = *cfg;
	else
		mllp_pool_config_init(&c);
	/* A client needs few resources. */
	if (c.recv_buffers > 64)
		c.recv_buffers = 64;
	if (c.ring_entries > 64)
		c.ring_entries = 64;
	struct mllp_pool *pool;
	int rc = mllp_pool_create(&c, &pool, err);
	if (rc != 0)
		return rc;
	uint32_t id;
	rc = mllp_pool_add_endpoint(pool, address, port, 1, NULL, &id, err);
	if (rc != 0) {
		mllp_pool_destroy(pool);
		return rc;
	}
	struct mllp_client *cl =
	    pool->alloc.alloc(pool->alloc.ctx, sizeof(*cl));
	if (!cl) {
		mllp_pool_destroy(pool);
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	cl->pool = pool;
	cl->alloc = pool->alloc;
	/* As the reference: return once the first attempt has an outcome. */
	mllpi_endpoint_wait_first(pool, id,
				  (int64_t)c.conn.connect_timeout_ms + 1000);
	*out = cl;
	return 0;
}

static int client_send(struct mllp_client *c, const void *payload, size_t len,
		       enum mllp_payload_kind kind, int64_t reply_timeout_ms,
		       bool async, struct mllp_future **out,
		       struct mllp_error *err)
{
	if (!c) {
		if (out)
			*out = NULL;
		if (err)
			mllp_error_set(err, MLLP_CTX_SEND,
				       MLLP_ERR_INVALID_ARGUMENT, NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = kind;
	o.reply_timeout_ms = reply_timeout_ms;
	o.async = async;
	o.block = true;
	return mllp_pool_send(c->pool, 0, payload, len, &o, out, err);
}

int mllp_client_send(struct mllp_client *c, const void *payload, size_t len,
		     enum mllp_payload_kind kind, int64_t reply_timeout_ms,
		     struct mllp_future **out, struct mllp_error *err)
{
	int rc = client_send(c, payload, len, kind, reply_timeout_ms, false,
			     out, err);
	if (rc == 0)
		mllp_future_wait(*out, MLLP_INFINITE);
	return rc;
}

int mllp_client_send_async(struct mllp_client *c, const void *payload,
			   size_t len, enum mllp_payload_kind kind,
			   struct mllp_future **out, struct mllp_error *err)
{
	return client_send(c, payload, len, kind, 0, true, out, err);
}

bool mllp_client_is_connected(const struct mllp_client *c)
{
	return c && mllp_pool_is_connected(c->pool, 0, 0);
}

int mllp_client_reconnect(struct mllp_client *c)
{
	return c ? mllp_pool_reconnect(c->pool, 0) : MLLP_ERR_INVALID_ARGUMENT;
}

struct mllp_pool *mllp_client_pool(struct mllp_client *c)
{
	return c ? c->pool : NULL;
}

int mllp_client_stop(struct mllp_client *c)
{
	return c ? mllp_pool_stop(c->pool) : MLLP_ERR_INVALID_ARGUMENT;
}

void mllp_client_destroy(struct mllp_client *c)
{
	if (!c)
		return;
	struct mllp_allocator a = c->alloc;
	mllp_pool_destroy(c->pool);
	a.free(a.ctx, c, sizeof(*c));
}

/* mllp_pool_add_endpoint: address resolution, the endpoint and its
 * connections built on the caller's thread, then handed to the manager. */
#include "endpoint.h"
#include "reserved.h"
#include "window.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

static int bad_address(struct mllp_error *err, const char *host)
{
	(void)host;
	mllp_error_set(err, MLLP_CTX_CONNECT, MLLP_ERR_BAD_ADDRESS, NULL);
	return MLLP_ERR_BAD_ADDRESS;
}

/* getaddrinfo failed with gr: the host and the resolver's reason. */
static int unresolvable(struct mllp_error *err, const char *host, int gr)
{
	const char *why = gr == EAI_SYSTEM ? mllp_strerror(-errno)
			  : gr != 0	   ? gai_strerror(gr)
					   : "no address";
	mllp_error_set(err, MLLP_CTX_CONNECT, MLLP_ERR_BAD_ADDRESS,
		       "cannot resolve '%s': %s", host, why);
	return MLLP_ERR_BAD_ADDRESS;
}

/* Resolve host:port on the caller's thread (the manager never blocks):
 * *res for keep_addrs, or the error. */
static int resolve(const char *host, uint16_t port, struct addrinfo **res,
		   struct mllp_error *err)
{
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int gr = getaddrinfo(host, portstr, &hints, res);
	if (gr != 0 || !*res)
		return unresolvable(err, host, gr);
	return 0;
}

/* Keep up to MLLPI_MAX_ADDRS of the resolved addresses; frees res. */
static void keep_addrs(struct mllpi_endpoint *ep, struct addrinfo *res)
{
	for (struct addrinfo *ai = res; ai && ep->naddrs < MLLPI_MAX_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(ep->addrs[0]))
			continue;
		memcpy(&ep->addrs[ep->naddrs], ai->ai_addr, ai->ai_addrlen);
		ep->addrlens[ep->naddrs] = ai->ai_addrlen;
		ep->naddrs++;
	}
	freeaddrinfo(res);
}

/* The endpoint's TLS context (opts.tls enabled): every file is loaded now,
 * so a bad path fails here. Warns once when the server is not verified. */
static int endpoint_tls(struct mllp_pool *pool, struct mllpi_endpoint *ep,
			const char *host, uint16_t port, struct mllp_error *err)
{
	int trc = mllp_tls_ctx_new_client(ep->opts.tls, &ep->tls_ctx, err);
	if (trc < 0)
		return trc;
	if (mllp_tls_ctx_insecure(ep->tls_ctx)) {
		/* Once per endpoint, whatever log_level. */
		char line[512];
		snprintf(line, sizeof(line),
			 "TLS to %s:%u does not verify the server "
			 "(verify none): the traffic is encrypted but "
			 "anyone in the path can read it",
			 host, port);
		if (pool->cfg.log)
			pool->cfg.log(pool->cfg.log_ctx, MLLP_LOG_WARNING,
				      line);
		else
			fprintf(stderr, "[warning] mllp: %s\n", line);
	}
	return 0;
}

/* The endpoint's nodes, lock, queue timer and connections (each with its
 * backoff and decoder): 0 or the first error. */
static int endpoint_init(struct mllp_pool *pool, struct mllpi_endpoint *ep,
			 struct mllpi_conn *conns, uint32_t connections)
{
	ep->opts.tls = NULL; /* borrowed: not kept */
	ep->nconns = connections;
	ep->conns = conns;
	ep->add_node.kind = MLLPI_OP_ADD;
	ep->kick_node.kind = MLLPI_OP_KICK;
	ep->reconnect_node.kind = MLLPI_OP_RECONNECT;
	pthread_mutex_init(&ep->mu, NULL);
	pthread_cond_init(&ep->cv, NULL);
	mllp_error_set(&ep->last_error, MLLP_CTX_CONNECT,
		       MLLP_ERR_NOT_CONNECTED, NULL);
	ep->qtimer.kind = T_QUEUE;
	ep->qtimer.owner = ep;
	atomic_init(&ep->usable, connections);
	struct mllp_backoff_config bcfg;
	mllp_backoff_config_init(&bcfg);
	bcfg.use_backoff = ep->opts.use_backoff;
	if (ep->opts.backoff_max_s)
		bcfg.backoff_max_s = ep->opts.backoff_max_s;
	if (ep->opts.auto_reconnect_interval_ms)
		bcfg.auto_reconnect_interval_ms =
		    ep->opts.auto_reconnect_interval_ms;
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	fc.max_frame = pool->cfg.max_reply;
	int rc = 0;
	for (uint32_t i = 0; i < connections; i++) {
		struct mllpi_conn *c = &conns[i];
		c->ep = ep;
		c->id = i;
		c->state = C_CONNECTING; /* counted in usable until OP_ADD */
		c->timer.owner = c;
		c->addr_idx = (int)(i % (uint32_t)ep->naddrs);
		if (rc == 0)
			rc = mllp_backoff_init(&c->backoff, &bcfg);
		if (rc == 0)
			rc = mllp_decoder_init(&c->dec, &fc, &pool->alloc);
	}
	return rc;
}

/* Publish ep (endpoint.c) and hand it to the manager. */
static int endpoint_publish(struct mllp_pool *pool, struct mllpi_endpoint *ep,
			    uint32_t *endpoint_id, struct mllp_error *err)
{
	/* Published with the caller inside the id until the add node is
	 * pushed. */
	int rc = mllpi_endpoint_take_slot(pool, ep);
	if (rc != 0) {
		mllpi_endpoint_free(pool, ep);
		mllp_error_set(err, MLLP_CTX_NONE, rc, NULL);
		return rc;
	}
	uint32_t id = ep->id;
	/* The manager sizes its timer heap when it handles the add; reserve
	 * now from here is not allowed (manager-owned), so OP_ADD does it. */
	rc = mllpi_pool_push(pool, &ep->add_node);
	mllpi_endpoint_leave(pool, id);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	if (endpoint_id)
		*endpoint_id = id;
	return 0;
}

int mllp_pool_add_endpoint(struct mllp_pool *pool, const char *host,
			   uint16_t port, uint32_t connections,
			   const struct mllp_conn_options *opts,
			   uint32_t *endpoint_id, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!pool || connections == 0 || connections > 65536) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (opts) {
		int rrc = MLLPI_CHECK_RESERVED(opts, "mllp_conn_options",
					       MLLP_CTX_NONE, err);
		if (rrc == 0)
			rrc = mllpi_r2_check_options(opts, err);
		if (rrc != 0)
			return rrc;
	}
	if ((unsigned)(opts ? opts : &pool->cfg.conn)->lane_policy >
	    MLLP_LANE_RETRY) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "mllp_conn_options: unknown lane_policy");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (!host || !*host || strlen(host) >= MLLP_HOST_MAX || port == 0)
		return bad_address(err, host);
	/* acquire: early refusal only; mllpi_pool_push re-checks with the
	 * producer protocol. */
	if (atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	struct addrinfo *res = NULL;
	int rc = resolve(host, port, &res, err);
	if (rc != 0)
		return rc;
	struct mllp_allocator *a = &pool->alloc;
	struct mllpi_endpoint *ep = a->alloc(a->ctx, sizeof(*ep));
	struct mllpi_conn *conns =
	    a->alloc(a->ctx, sizeof(*conns) * connections);
	if (!ep || !conns) {
		freeaddrinfo(res);
		a->free(a->ctx, ep, sizeof(*ep));
		a->free(a->ctx, conns, sizeof(*conns) * connections);
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(ep, 0, sizeof(*ep));
	memset(conns, 0, sizeof(*conns) * connections);
	keep_addrs(ep, res);
	ep->pool = pool;
	snprintf(ep->host, sizeof(ep->host), "%s", host);
	ep->port = port;
	if (opts)
		ep->opts = *opts;
	else
		ep->opts = pool->cfg.conn;
	if (ep->opts.max_inflight == 0)
		ep->opts.max_inflight = 1;
	rc = mllpi_win_check_options(&ep->opts, err);
	if (rc != 0) {
		a->free(a->ctx, conns, sizeof(*conns) * connections);
		a->free(a->ctx, ep, sizeof(*ep));
		return rc;
	}
	if (ep->opts.tls && ep->opts.tls->enabled) {
		rc = endpoint_tls(pool, ep, host, port, err);
		if (rc < 0) {
			a->free(a->ctx, conns, sizeof(*conns) * connections);
			a->free(a->ctx, ep, sizeof(*ep));
			return rc;
		}
	}
	rc = endpoint_init(pool, ep, conns, connections);
	if (rc == 0)
		rc = mllpi_win_alloc(ep);
	if (rc != 0) {
		mllpi_endpoint_free(pool, ep);
		mllp_error_set(err, MLLP_CTX_NONE, rc, NULL);
		return rc;
	}
	return endpoint_publish(pool, ep, endpoint_id, err);
}

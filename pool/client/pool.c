/* The pool's lifetime: create, stop, destroy; its statistics and
 * backend name. */
#include "conn.h"
#include "endpoint.h"

#include <string.h>

int mllp_pool_create(const struct mllp_pool_config *cfg, struct mllp_pool **out,
		     struct mllp_error *err)
{
	return mllpi_pool_create_ops(cfg, NULL, out, err);
}

int mllpi_pool_create_ops(const struct mllp_pool_config *cfg,
			  const struct mllpi_backend_ops *ops,
			  struct mllp_pool **out, struct mllp_error *err)
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
	struct mllp_pool_config c;
	if (cfg)
		c = *cfg;
	else
		mllp_pool_config_init(&c);
	if (c.ring_entries == 0 || c.recv_buffers == 0 ||
	    (c.recv_buffers & (c.recv_buffers - 1)) || c.recv_buffers > 32768 ||
	    c.recv_buffer_size == 0 || c.queue_capacity == 0 ||
	    (unsigned)c.backend > MLLP_BACKEND_EPOLL) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "invalid pool configuration");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	struct mllp_allocator a;
	if (c.allocator)
		a = *c.allocator;
	else
		mllpi_default_allocator(&a);
	struct mllp_pool *p = a.alloc(a.ctx, sizeof(*p));
	if (!p) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(p, 0, sizeof(*p));
	p->cfg = c;
	p->alloc = a;
	struct mllpi_backend_config bc = {
	    .entries = c.ring_entries,
	    .recv_buffers = c.recv_buffers,
	    .recv_buffer_size = c.recv_buffer_size,
	    .test_ring_error = c.test_ring_error,
	    .alloc = &p->alloc,
	};
	mllpi_loop_init(&p->loop, ops, c.backend, &bc, &mllpi_pool_hooks, p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->add_mu, NULL);
	mllpi_subq_init(&p->q);
	p->stop_node.kind = MLLPI_OP_STOP;
	int rc = mllpi_loop_start(&p->loop, "manager", err);
	if (rc < 0) {
		mllpi_loop_fini(&p->loop);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->add_mu);
		a.free(a.ctx, p, sizeof(*p));
		return rc;
	}
	*out = p;
	return 0;
}

void mllp_pool_get_stats(const struct mllp_pool *pool,
			 struct mllp_pool_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!pool)
		return;
	struct mllp_pool *p = (struct mllp_pool *)pool;
	/* relaxed: statistics, each counter on its own. */
#define LD(f) atomic_load_explicit(&p->f, memory_order_relaxed)
	out->sent = LD(st_sent);
	for (int i = 0; i < 7; i++)
		out->acked[i] = LD(st_acked[i]);
	out->raw_replies = LD(st_raw);
	out->errors = LD(st_errors);
	out->errors_os = LD(st_errors_os);
	for (int i = 0; i < MLLP_STATS_MLLP_ERRORS; i++)
		out->errors_mllp[i] = LD(st_errors_mllp[i]);
	out->connects = LD(st_connects);
	out->reconnects = LD(st_reconnects);
	out->connect_failures = LD(st_connect_failures);
	out->in_flight = LD(st_in_flight);
	out->queued = LD(st_queued);
	out->tls_handshakes = LD(st_tls_handshakes);
	out->tls_resumed = LD(st_tls_resumed);
	out->stale_replies = LD(st_stale);
	out->backend = p->loop.ops->name;
#undef LD
}

const char *mllp_pool_backend(const struct mllp_pool *pool)
{
	return pool ? pool->loop.ops->name : "none";
}

int mllp_pool_stop(struct mllp_pool *pool)
{
	/* From a callback the manager would wait for itself. */
	if (!pool || mllpi_pool_on_manager(pool))
		return MLLP_ERR_INVALID_ARGUMENT;
	pthread_mutex_lock(&pool->mu);
	if (pool->joined) {
		pthread_mutex_unlock(&pool->mu);
		return 0;
	}
	/* seq_cst: the stop protocol of subq.h. */
	bool was = atomic_exchange_explicit(&pool->q.stopped, true,
					    memory_order_seq_cst);
	if (!was) {
		mllpi_endpoints_wake_all(pool);
		mllpi_pool_push(pool, &pool->stop_node);
	}
	mllpi_loop_join(&pool->loop);
	pool->joined = true;
	pthread_mutex_unlock(&pool->mu);
	return 0;
}

void mllp_pool_destroy(struct mllp_pool *pool)
{
	if (!pool)
		return;
	if (mllpi_pool_on_manager(pool)) {
		/* It would free the manager under its own feet. */
		mllpi_pool_log(
		    pool, MLLP_LOG_ERROR,
		    "mllp_pool_destroy called from a callback: ignored");
		return;
	}
	mllp_pool_stop(pool);
	struct mllp_allocator a = pool->alloc;
	mllpi_endpoints_free_all(pool);
	mllpi_loop_fini(&pool->loop);
	pthread_mutex_destroy(&pool->mu);
	pthread_mutex_destroy(&pool->add_mu);
	a.free(a.ctx, pool, sizeof(*pool));
}

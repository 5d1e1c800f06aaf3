/* The pool's lifetime: create, stop, destroy; its statistics and
 * backend name. */
#include "app_ack.h"
#include "conn.h"
#include "endpoint.h"
#include "reserved.h"

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
	int rc =
	    MLLPI_CHECK_RESERVED(&c, "mllp_pool_config", MLLP_CTX_NONE, err);
	if (rc == 0)
		rc = MLLPI_CHECK_RESERVED(&c.conn, "mllp_conn_options",
					  MLLP_CTX_NONE, err);
	if (rc == 0)
		rc = mllpi_r2_check_options(&c.conn, err);
	if (rc != 0)
		return rc;
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
	mllpi_cfd_init(&p->cfd);
	p->stop_node.kind = MLLPI_OP_STOP;
	rc = mllpi_loop_start(&p->loop, "manager", err);
	if (rc < 0) {
		mllpi_loop_fini(&p->loop);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->add_mu);
		mllpi_cfd_fini(&p->cfd);
		a.free(a.ctx, p, sizeof(*p));
		return rc;
	}
	*out = p;
	return 0;
}

int mllp_pool_get_stats(const struct mllp_pool *pool,
			struct mllp_pool_stats *out)
{
	if (!pool || !out || out->size < sizeof(out->size))
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllp_pool *p = (struct mllp_pool *)pool;
	struct mllp_pool_stats st;
	memset(&st, 0, sizeof(st));
	MLLPI_LOAD_COUNTERS(&st, p);
	st.backend = p->loop.ops->name;
	/* The caller's struct may be older (smaller) than ours. */
	size_t n = out->size < sizeof(st) ? out->size : sizeof(st);
	st.size = n;
	memcpy(out, &st, n);
	return 0;
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
	mllpi_acks_stop(pool); /* the ack listener first (app_listen.c) */
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
	mllpi_acks_free(pool); /* the ack listener (app_listen.c) */
	/* unharvested futures released, the completion fd closed */
	mllpi_cfd_fini(&pool->cfd);
	mllpi_endpoints_free_all(pool);
	mllpi_loop_fini(&pool->loop);
	pthread_mutex_destroy(&pool->mu);
	pthread_mutex_destroy(&pool->add_mu);
	a.free(a.ctx, pool, sizeof(*pool));
}

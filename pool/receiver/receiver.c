/* The MLLP receiver's public calls (see include/mllp/receiver.h): start,
 * port, address, backend, stats, stop and destroy. The design is in
 * receiver_internal.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <mllp/receiver.h>
#include <mllp/tls.h>

#include "receiver_internal.h"

#define UNSECURED_WARNING                                                      \
	"Starting listener on a non secured socket, data will be passed "      \
	"over unencrypted connection!"

void mllpi_receiver_free(struct mllp_receiver *r)
{
	if (r->lfd >= 0)
		close(r->lfd);
	/* Completed replies of closed connections that the manager did not
	 * take (its wait failed for good): every reply call has returned
	 * (r->refs reached 0), so nothing more is pushed. */
	struct mllpi_node *n;
	while ((n = mllpi_subq_pop(&r->replies)))
		mllpi_rdefer_free(r, mllpi_node_handle(n));
	mllpi_loop_fini(&r->loop);
	mllpi_recv_allow_free(r);
	if (r->scratch)
		r->alloc.free(r->alloc.ctx, r->scratch, r->scratch_cap);
	mllp_tls_ctx_free(r->tls_ctx);
	mllpi_rlog_close(&r->log);
	pthread_mutex_destroy(&r->mu);
	struct mllp_allocator a = r->alloc;
	a.free(a.ctx, r, sizeof(*r));
}

int mllp_receiver_create(const struct mllp_receiver_config *cfg,
			 struct mllp_receiver **out, struct mllp_error *err)
{
	return mllpi_receiver_create_ops(cfg, NULL, out, err);
}

int mllpi_receiver_create_ops(const struct mllp_receiver_config *cfg,
			      const struct mllpi_backend_ops *ops,
			      struct mllp_receiver **out,
			      struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (!out || !cfg) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       NULL);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	*out = NULL;
	int rc = mllpi_receiver_config_check(cfg, err);
	if (rc < 0)
		return rc;
	struct mllp_allocator a;
	if (cfg->allocator)
		a = *cfg->allocator;
	else
		mllpi_default_allocator(&a);
	struct mllp_receiver *r = a.alloc(a.ctx, sizeof(*r));
	if (!r) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
		return MLLP_ERR_NO_MEMORY;
	}
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
	r->alloc = a;
	mllpi_rlog_init(&r->log, cfg);
	/* A connection at rest keeps up to read_buffer_keep in its decoder,
	 * reply, flight and stash buffers, and in the TLS stream's output. */
	size_t rest =
	    ((cfg->tls && cfg->tls->enabled) ? 5u : 4u) * cfg->read_buffer_keep;
	mllpi_rbudget_init(&r->budget, cfg->max_buffered_bytes, rest,
			   mllpi_rconn_budget_reads, mllpi_rconn_budget_shed);
	r->lfd = -1;
	struct mllpi_backend_config bc = {
	    .entries = cfg->ring_entries,
	    .recv_buffers = cfg->recv_buffers,
	    .recv_buffer_size = cfg->recv_buffer_size,
	    .alloc = &r->alloc,
	};
	mllpi_loop_init(&r->loop, ops, cfg->backend, &bc, &mllpi_receiver_hooks,
			r);
	mllp_frame_config_init(&r->fcfg);
	r->fcfg.max_frame = cfg->max_frame;
	r->ltimer.kind = T_LISTEN;
	r->ltimer.owner = r;
	r->dtimer.kind = T_DRAIN;
	r->dtimer.owner = r;
	pthread_mutex_init(&r->mu, NULL);
	atomic_init(&r->stop_req, false);
	mllpi_subq_init(&r->replies);
	atomic_init(&r->refs, 1);

	bool cert_names = false;
	if (cfg->tls && cfg->tls->enabled) {
		/* Loads every file now: a bad path fails start, naming it. */
		struct mllp_tls_server_config sc = *cfg->tls;
		if (sc.require_client_cert && sc.n_allowed_clients == 0 &&
		    cfg->allowed_clients && cfg->allowed_clients_count > 0) {
			/* verify_peer: allowed_clients are certificate
			 * names (the reference's 0.9.7 semantics). */
			sc.allowed_clients = cfg->allowed_clients;
			sc.n_allowed_clients = cfg->allowed_clients_count;
			cert_names = true;
		}
		rc = mllp_tls_ctx_new_server(&sc, &r->tls_ctx, err);
		if (rc < 0) {
			mllpi_receiver_free(r);
			return rc;
		}
	}
	r->cfg.tls = NULL; /* borrowed: not kept */
	r->cfg.allowed_clients = cert_names ? NULL : cfg->allowed_clients;
	rc = mllpi_recv_allow_build(r, &r->allow_cap, err);
	/* Not kept: the caller's strings need not outlive start. */
	r->cfg.allowed_clients = NULL;
	r->cfg.allowed_clients_count = 0;
	if (rc == 0)
		rc = mllpi_recv_listen(r, err);
	if (rc < 0) {
		mllpi_receiver_free(r);
		return rc;
	}
	if (!r->tls_ctx)
		mllpi_rlog_line(&r->log, MLLP_LOG_WARNING, UNSECURED_WARNING);

	rc = mllpi_loop_start(&r->loop, "receiver", err);
	if (rc < 0) {
		mllpi_receiver_free(r);
		return rc;
	}
	r->thread_started = true;
	*out = r;
	return 0;
}

uint16_t mllp_receiver_port(const struct mllp_receiver *r)
{
	return r ? r->port : 0;
}

const char *mllp_receiver_address(const struct mllp_receiver *r)
{
	return r ? r->addr_str : "";
}

const char *mllp_receiver_backend(const struct mllp_receiver *r)
{
	return r ? r->loop.ops->name : "none";
}

#define LOAD(f) atomic_load_explicit(&m->f, memory_order_relaxed)

int mllp_receiver_get_stats(const struct mllp_receiver *r,
			    struct mllp_receiver_stats *out)
{
	if (!r || !out || out->size < sizeof(out->size))
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllp_receiver_stats st;
	memset(&st, 0, sizeof(st));
	/* C11 atomic_load takes a non-const pointer (fixed only in C17). */
	struct mllp_receiver *m = (struct mllp_receiver *)(uintptr_t)r;
	st.connections_accepted = LOAD(st_accepted);
	st.connections_active = LOAD(st_active);
	st.connections_refused = LOAD(st_refused);
	st.connections_idle_timeout = LOAD(st_idle);
	st.connections_error = LOAD(st_error);
	st.messages_received = LOAD(st_msgs);
	st.messages_hl7 = LOAD(st_hl7);
	st.replies_sent = LOAD(st_replies);
	st.bytes_received = LOAD(st_bytes_in);
	st.bytes_sent = LOAD(st_bytes_out);
	st.junk_bytes = LOAD(st_junk);
	st.frames_too_big = LOAD(st_too_big);
	st.buffered_bytes = LOAD(budget.st_total);
	st.buffered_bytes_peak = LOAD(budget.st_peak);
	st.connections_shed = LOAD(budget.st_shed);
	st.reads_paused = LOAD(st_paused) + LOAD(budget.st_pauses);
	st.log_lines_suppressed = LOAD(log.suppressed);
	st.log_lines_dropped = LOAD(log.dropped);
	st.connections_refused_allow_list =
	    LOAD(st_refused_by[REFUSED_ALLOW_LIST]);
	st.connections_refused_max_connections =
	    LOAD(st_refused_by[REFUSED_MAX_CONNECTIONS]);
	st.connections_refused_tls_cert = LOAD(st_refused_by[REFUSED_TLS_CERT]);
	st.tls_handshakes = LOAD(st_tls_hs);
	st.tls_handshakes_resumed = LOAD(st_tls_resumed);
	st.tls_handshake_failures = LOAD(st_tls_failed);
	st.replies_pending = LOAD(st_pending);
	st.replies_after_close = LOAD(st_late);
	st.replies_abandoned = LOAD(st_abandoned);
	st.connections_stop_unfinished = LOAD(st_stop_unfinished);
	/* The caller's struct may be older (smaller) than ours. */
	size_t n = out->size < sizeof(st) ? out->size : sizeof(st);
	st.size = n;
	memcpy(out, &st, n);
	return 0;
}

int mllp_receiver_stop(struct mllp_receiver *r)
{
	/* From a callback the manager would wait for itself. */
	if (!r || mllpi_loop_current() == &r->loop)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (!r->thread_started)
		return 0;
	/* One caller stops and joins; concurrent ones wait on the mutex
	 * until it has (the manager no longer takes it once running). */
	pthread_mutex_lock(&r->mu);
	if (!r->joined) {
		/* release: the manager acquires it before acting on it. */
		atomic_store_explicit(&r->stop_req, true, memory_order_release);
		mllpi_loop_wake(&r->loop);
		mllpi_loop_join(&r->loop);
		r->joined = true;
		/* Nothing is outstanding on it any more: free the port. */
		close(r->lfd);
		r->lfd = -1;
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

void mllp_receiver_destroy(struct mllp_receiver *r)
{
	if (!r)
		return;
	if (mllpi_loop_current() == &r->loop) {
		/* It would free the manager under its own feet. */
		mllpi_rlog_line(
		    &r->log, MLLP_LOG_ERROR,
		    "mllp_receiver_destroy called from a callback: ignored");
		return;
	}
	mllp_receiver_stop(r);
	/* Deferred replies still outstanding keep r until they are replied
	 * to (rdefer.c); otherwise this frees it. */
	mllpi_receiver_unref(r);
}

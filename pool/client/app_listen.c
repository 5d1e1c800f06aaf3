/* Enhanced acknowledgement mode, the public side (include/mllp/enhanced.h):
 * the pool's ack listener — a receiver whose dispatcher defers each frame
 * and hands it to the pool's manager, which matches it and answers it
 * (app_track.c) — the application stage given to a message at send, and
 * the calls that wait for it. */
#include "app_ack.h"
#include "conn.h"

#include <mllp/enhanced.h>

#include <stdio.h>
#include <string.h>

void mllp_ack_listen_config_init(struct mllp_ack_listen_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = MLLP_PORT_UNSET;
	cfg->application_ack_timeout_ms = 600000;
}

static struct mllpi_acks *acks_of(const struct mllp_pool *p)
{
	/* acquire: pairs with the release store of mllp_pool_listen_acks */
	return atomic_load_explicit(&((struct mllp_pool *)p)->acks,
				    memory_order_acquire);
}

bool mllpi_app_attach(struct mllp_pool *p, struct mllp_future *f,
		      const struct mllp_hl7_msg *msg)
{
	struct mllp_str t = msg->app_ack_type;
	enum mllpi_app_want want = mllp_str_eq(t, "AL")	  ? APP_AL
				   : mllp_str_eq(t, "ER") ? APP_ER
				   : mllp_str_eq(t, "SU") ? APP_SU
							  : 0;
	if (!want || !acks_of(p))
		return true;
	struct mllpi_endpoint *ep = f->ep;
	size_t host_len = strlen(ep->host);
	size_t size =
	    sizeof(struct mllpi_app) + msg->control_id.len + host_len + 1;
	struct mllpi_app *app = p->alloc.alloc(p->alloc.ctx, size);
	if (!app)
		return false;
	memset(app, 0, sizeof(*app));
	char *id = (char *)(app + 1);
	memcpy(id, msg->control_id.ptr, msg->control_id.len);
	memcpy(id + msg->control_id.len, ep->host, host_len + 1);
	app->f = f;
	app->size = size;
	app->want = want;
	app->id = id;
	app->id_len = msg->control_id.len;
	app->host = id + msg->control_id.len;
	app->port = ep->port;
	app->endpoint_id = ep->id;
	f->app = app;
	return true;
}

/* The listener's dispatcher (its manager thread): every HL7 frame goes to
 * the pool's manager with its reply deferred; anything else gets the
 * built-in answer ("not parsable" AR). */
static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct mllpi_acks *a = ctx;
	struct mllp_pool *p = a->pool;
	atomic_fetch_add_explicit(&a->received, 1, memory_order_relaxed);
	struct mllp_hl7_msg m;
	if (msg->kind != MLLP_MSG_HL7 ||
	    mllp_hl7_parse(&m, msg->data, msg->len) != 0) {
		atomic_fetch_add_explicit(&a->not_ack, 1, memory_order_relaxed);
		reply->kind = MLLP_REPLY_ACK;
		reply->ack_code = "AR";
		return;
	}
	size_t size = sizeof(struct mllpi_app_in) + msg->len;
	struct mllpi_app_in *in = p->alloc.alloc(p->alloc.ctx, size);
	if (!in)
		return; /* no reply: the peer sends it again */
	struct mllp_reply_handle *h = mllp_reply_defer(reply);
	if (!h) {
		p->alloc.free(p->alloc.ctx, in, size);
		return;
	}
	memset(in, 0, sizeof(*in));
	in->node.kind = MLLPI_OP_APP_ACK;
	in->h = h;
	in->size = size;
	snprintf(in->peer, sizeof(in->peer), "%s", msg->conn->peer_address);
	in->len = msg->len;
	memcpy(in->data, msg->data, msg->len);
	if (mllpi_pool_push(p, &in->node) != 0) {
		/* the pool stops: no answer */
		mllp_receiver_reply(h, NULL, 0);
		p->alloc.free(p->alloc.ctx, in, size);
	}
}

static int check(struct mllp_pool *pool,
		 const struct mllp_ack_listen_config *cfg,
		 struct mllp_error *err)
{
	static const uint64_t zero[MLLP_RESERVED_WORDS];
	const char *why = NULL;
	if (!pool || !cfg)
		why = "mllp_pool_listen_acks: NULL pool or config";
	else if (mllpi_pool_on_manager(pool))
		why = "mllp_pool_listen_acks: not from a callback of the pool";
	else if (memcmp(cfg->reserved_, zero, sizeof(zero)) != 0)
		why = "mllp_ack_listen_config: reserved fields must be zero "
		      "(initialise with mllp_ack_listen_config_init)";
	else if (cfg->application_ack_timeout_ms == 0 ||
		 (cfg->application_ack_timeout_ms < 0 &&
		  cfg->application_ack_timeout_ms != MLLP_INFINITE))
		why = "mllp_ack_listen_config: application_ack_timeout_ms "
		      "must be positive or MLLP_INFINITE";
	else if (acks_of(pool))
		why = "the pool has an ack listener already";
	if (why) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "%s", why);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED, NULL);
		return MLLP_ERR_STOPPED;
	}
	return 0;
}

static void acks_release(struct mllp_pool *p, struct mllpi_acks *a)
{
	if (a->buckets)
		p->alloc.free(p->alloc.ctx, a->buckets,
			      a->nbuckets * sizeof(*a->buckets));
	p->alloc.free(p->alloc.ctx, a, sizeof(*a));
}

int mllp_pool_listen_acks(struct mllp_pool *pool,
			  const struct mllp_ack_listen_config *cfg,
			  struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	int rc = check(pool, cfg, err);
	if (rc != 0)
		return rc;
	struct mllpi_acks *a = pool->alloc.alloc(pool->alloc.ctx, sizeof(*a));
	if (!a)
		goto nomem;
	memset(a, 0, sizeof(*a));
	a->pool = pool;
	a->timeout_ms = cfg->application_ack_timeout_ms;
	a->nbuckets = 64;
	a->buckets = pool->alloc.alloc(pool->alloc.ctx,
				       a->nbuckets * sizeof(*a->buckets));
	if (!a->buckets) {
		pool->alloc.free(pool->alloc.ctx, a, sizeof(*a));
		goto nomem;
	}
	memset(a->buckets, 0, a->nbuckets * sizeof(*a->buckets));
	a->timer.kind = T_APP;
	a->timer.owner = a;
	struct mllp_receiver_config rc_cfg;
	mllp_receiver_config_init(&rc_cfg);
	rc_cfg.address = cfg->address;
	rc_cfg.port = cfg->port;
	rc_cfg.dispatch = dispatch;
	rc_cfg.dispatch_ctx = a;
	rc_cfg.tls = cfg->tls;
	rc_cfg.backend = cfg->backend;
	rc_cfg.allowed_clients = cfg->allowed_clients;
	rc_cfg.allowed_clients_count = cfg->allowed_clients_count;
	rc_cfg.allocator = &pool->alloc;
	rc_cfg.log = pool->cfg.log;
	rc_cfg.log_ctx = pool->cfg.log_ctx;
	rc_cfg.log_level = pool->cfg.log_level;
	/* one listener: the pool's lock serialises the callers */
	pthread_mutex_lock(&pool->mu);
	if (acks_of(pool) || pool->joined ||
	    atomic_load_explicit(&pool->q.stopped, memory_order_acquire)) {
		pthread_mutex_unlock(&pool->mu);
		acks_release(pool, a);
		rc = check(pool, cfg, err);
		if (rc == 0) {
			mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_STOPPED,
				       NULL);
			rc = MLLP_ERR_STOPPED;
		}
		return rc;
	}
	rc = mllp_receiver_create(&rc_cfg, &a->rx, err);
	if (rc == 0)
		/* release: the acks are complete before a producer or the
		 * manager sees them */
		atomic_store_explicit(&pool->acks, a, memory_order_release);
	pthread_mutex_unlock(&pool->mu);
	if (rc != 0)
		acks_release(pool, a);
	return rc;
nomem:
	mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
	return MLLP_ERR_NO_MEMORY;
}

uint16_t mllp_pool_ack_port(const struct mllp_pool *pool)
{
	struct mllpi_acks *a = pool ? acks_of(pool) : NULL;
	return a ? mllp_receiver_port(a->rx) : 0;
}

#define LD(x) atomic_load_explicit(&a->x, memory_order_relaxed)

int mllp_pool_ack_stats(const struct mllp_pool *pool,
			struct mllp_ack_listen_stats *out)
{
	if (!pool || !out || out->size < sizeof(size_t))
		return MLLP_ERR_INVALID_ARGUMENT;
	struct mllpi_acks *a = acks_of(pool);
	if (!a)
		return MLLP_ERR_NOT_FOUND;
	struct mllp_ack_listen_stats st = {
	    .received = LD(received),
	    .matched = LD(matched),
	    .unmatched = LD(unmatched),
	    .not_ack = LD(not_ack),
	    .timeouts = LD(timeouts),
	    .accept_acks = LD(accept_acks),
	    .pending = LD(pending),
	};
	size_t n = out->size < sizeof(st) ? out->size : sizeof(st);
	st.size = n;
	memcpy(out, &st, n);
	return 0;
}

/* Stop the listener: its stop drains (stop_drain_ms), so the accept ACKs
 * it has queued (a caller may stop as soon as an application stage
 * completes) are written first; the pool's manager still runs and answers
 * what the listener handed it meanwhile. */
void mllpi_acks_stop(struct mllp_pool *p)
{
	struct mllpi_acks *a = acks_of(p);
	if (!a)
		return;
	mllp_receiver_stop(a->rx);
}

void mllpi_acks_free(struct mllp_pool *p)
{
	struct mllpi_acks *a = acks_of(p);
	if (!a)
		return;
	mllp_receiver_destroy(a->rx);
	atomic_store_explicit(&p->acks, NULL, memory_order_relaxed);
	acks_release(p, a);
}

bool mllp_future_has_application(const struct mllp_future *f)
{
	return f && f->app;
}

int mllp_future_wait_application(struct mllp_future *f, int64_t timeout_ms)
{
	if (!f)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (!f->app)
		return MLLP_ERR_NOT_FOUND;
	if (timeout_ms != 0 && mllpi_pool_on_manager(f->pool))
		return MLLP_ERR_INVALID_ARGUMENT;
	return mllpi_wait_state(&f->app->state, &f->app->waiters, timeout_ms);
}

const struct mllp_result *
mllp_future_application_result(const struct mllp_future *f)
{
	if (!f || !f->app)
		return NULL;
	/* acquire: pairs with the publishing store (app_track.c) */
	if (atomic_load_explicit(&f->app->state, memory_order_acquire) != 1)
		return NULL;
	return &f->app->result;
}

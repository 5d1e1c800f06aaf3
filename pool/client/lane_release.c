/* Ordered lanes (see lane.h): resuming a held lane
 * (mllp_pool_release_key), canceling a keyed message the lane holds, and
 * the lanes' teardown with their endpoint. */
#include "conn.h"
#include "endpoint.h"
#include "lane_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* A release request: on the caller's stack; the manager answers it and
 * wakes the caller (done under mu), or the call runs on the manager. */
struct release_req {
	struct mllpi_node node;
	struct mllpi_endpoint *ep;
	const unsigned char *key;
	uint32_t key_len;
	uint32_t hash;
	enum mllp_lane_release action;
	struct mllp_future *retry;
	int rc;
	char why[64];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

/* The lane is no longer held. */
static void unhold(struct mllpi_endpoint *ep, struct mllpi_lane *l)
{
	l->held = false;
	STAT_SUB(ep, st_lanes_held, 1);
	STAT_SUB(ep, st_lane_held_waiting, l->nwait);
}

/* The lane's copy becomes a message again, first of its lane. */
static struct mllp_future *send_copy(struct mllpi_endpoint *ep,
				     struct mllpi_lane *l)
{
	struct mllp_future *f = l->copy;
	l->copy = NULL;
	/* The manager's part, as op_send sets it. */
	mllpi_future_take(f);
	f->tries = 0;
	f->lnext = NULL;
	f->lane = l;
	l->cur = f;
	/* the caller's reference is handed out: keep it alive while the
	 * submission may complete it (a failure holds the lane again). */
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	/* its queue slot (seq_cst as every update of reserved) */
	atomic_fetch_add_explicit(&ep->reserved, 1, memory_order_seq_cst);
	l->pins++;
	mllpi_lane_submit(ep, f);
	l->pins--;
	return f;
}

/* The manager's part of a release. */
static void do_release(struct mllp_pool *p, struct release_req *r)
{
	struct mllpi_endpoint *ep = r->ep;
	if (p->stopping) {
		r->rc = MLLP_ERR_STOPPED;
		return;
	}
	if (ep->retired) {
		r->rc = MLLP_ERR_ENDPOINT_REMOVED;
		return;
	}
	struct mllpi_lane *l =
	    mllpi_lane_find(&ep->lanes, r->hash, r->key, r->key_len);
	if (!l || !l->held) {
		r->rc = MLLP_ERR_NOT_FOUND;
		snprintf(r->why, sizeof(r->why), "no held lane for this key");
		return;
	}
	if (r->action == MLLP_RELEASE_RETRY && !l->copy) {
		/* its copy could not be made when it held */
		r->rc = MLLP_ERR_NO_MEMORY;
		return;
	}
	unhold(ep, l);
	if (r->action == MLLP_RELEASE_RETRY) {
		struct mllp_future *f = send_copy(ep, l);
		r->retry = f;
		mllpi_future_release(f); /* send_copy's extra reference */
	} else if (l->copy) {
		/* never handed out: freed as it is */
		mllpi_future_release(l->copy);
		mllpi_future_release(l->copy);
		l->copy = NULL;
	}
	mllpi_lane_next(ep, l);
}

void mllpi_lane_op_release(struct mllp_pool *p, struct mllpi_node *n)
{
	struct release_req *r = MLLPI_CONTAINER_OF(n, struct release_req, node);
	do_release(p, r);
	pthread_mutex_lock(&r->mu);
	r->done = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* mllp_pool_release_key inside endpoint ep (entered). */
static int release_on(struct mllp_pool *pool, struct mllpi_endpoint *ep,
		      struct release_req *r)
{
	if (mllpi_pool_on_manager(pool)) {
		do_release(pool, r);
		return r->rc;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->node.kind = MLLPI_OP_RELEASE;
	int rc = mllpi_pool_push(pool, &r->node);
	if (rc == 0) {
		pthread_mutex_lock(&r->mu);
		while (!r->done)
			pthread_cond_wait(&r->cv, &r->mu);
		pthread_mutex_unlock(&r->mu);
		rc = r->rc;
	}
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	(void)ep;
	return rc;
}

int mllp_pool_release_key(struct mllp_pool *pool, uint32_t endpoint_id,
			  const void *key, size_t key_len,
			  enum mllp_lane_release action,
			  struct mllp_future **retry, struct mllp_error *err)
{
	struct mllp_error tmp;
	if (!err)
		err = &tmp;
	mllp_error_clear(err);
	if (retry)
		*retry = NULL;
	int bad = MLLP_ERR_INVALID_ARGUMENT;
	if (!key || key_len == 0 || key_len > MLLP_KEY_MAX)
		mllp_error_set(err, MLLP_CTX_SEND, bad,
			       "mllp_pool_release_key: the key is 1 to %d "
			       "bytes",
			       MLLP_KEY_MAX);
	else if ((unsigned)action > MLLP_RELEASE_SKIP)
		mllp_error_set(err, MLLP_CTX_SEND, bad,
			       "mllp_pool_release_key: action is "
			       "MLLP_RELEASE_RETRY or MLLP_RELEASE_SKIP");
	else if (action == MLLP_RELEASE_RETRY && !retry)
		mllp_error_set(err, MLLP_CTX_SEND, bad,
			       "mllp_pool_release_key: MLLP_RELEASE_RETRY "
			       "needs retry (the new future)");
	else
		bad = 0;
	if (bad)
		return bad;
	struct mllpi_endpoint *ep;
	int rc =
	    mllpi_endpoint_enter(pool, endpoint_id, MLLP_CTX_SEND, &ep, err);
	if (rc != 0)
		return rc;
	struct release_req r;
	memset(&r, 0, sizeof(r));
	r.ep = ep;
	r.key = key;
	r.key_len = (uint32_t)key_len;
	r.hash = mllpi_key_hash(key, key_len);
	r.action = action;
	rc = release_on(pool, ep, &r);
	mllpi_endpoint_leave(pool, endpoint_id);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_SEND, rc, r.why[0] ? "%s" : NULL,
			       r.why);
		return rc;
	}
	if (retry)
		*retry = r.retry;
	return 0;
}

/* ---- cancel ------------------------------------------------------------- */

bool mllpi_lane_cancel(struct mllp_future *f)
{
	struct mllpi_lane *l = f->lane;
	struct mllpi_endpoint *ep = f->ep;
	if (!l)
		return false;
	if (f->where == W_PARKED) {
		/* waiting behind its key's earlier message: never sent */
		struct mllp_future **pp = &l->whead, *prev = NULL;
		while (*pp && *pp != f) {
			prev = *pp;
			pp = &(*pp)->lnext;
		}
		if (!*pp)
			return false;
		*pp = f->lnext;
		if (l->wtail == f)
			l->wtail = prev;
		f->lnext = NULL;
		l->nwait--;
		STAT_SUB(ep, st_lane_waiting, 1);
		if (l->held)
			STAT_SUB(ep, st_lane_held_waiting, 1);
		f->lane = NULL;
		mllpi_space_freed(ep, 1);
		mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
				  false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
		return true;
	}
	if (l->cur == f && l->retrying) {
		/* waiting for its retry: not retried, the lane holds (an
		 * earlier attempt may have reached the receiver) */
		mllpi_lane_unretry(ep, l);
		mllpi_lane_arm_timer(ep);
		bool reached = f->result.may_have_reached;
		f->completed = false;
		mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_CANCELED, NULL,
				  f->result.written, reached);
		mllpi_future_release(f); /* keep_for_retry's reference */
		return true;
	}
	return false;
}

/* ---- teardown ----------------------------------------------------------- */

/* Fail l's waiting messages and its message waiting for a retry. */
static void fail_lane(struct mllpi_endpoint *ep, struct mllpi_lane *l,
		      const struct mllp_error *unsent,
		      const struct mllp_error *sent)
{
	while (l->whead) {
		struct mllp_future *f = l->whead;
		l->whead = f->lnext;
		f->lnext = NULL;
		f->lane = NULL;
		l->nwait--;
		STAT_SUB(ep, st_lane_waiting, 1);
		if (l->held)
			STAT_SUB(ep, st_lane_held_waiting, 1);
		mllpi_space_freed(ep, 1);
		mllpi_fail_future_err(f, unsent, MLLP_CTX_SEND, false, false);
		f->where = W_DONE;
		mllpi_future_release(f);
	}
	l->wtail = NULL;
	struct mllp_future *f = l->cur;
	l->cur = NULL;
	if (f) {
		f->lane = NULL;
		if (l->retrying) {
			bool reached = f->result.may_have_reached;
			f->completed = false;
			mllpi_fail_future_err(f, reached ? sent : unsent,
					      MLLP_CTX_SEND, f->result.written,
					      reached);
			mllpi_future_release(f);
		}
	}
	l->retrying = false;
	l->rnext = NULL;
	if (l->held) {
		l->held = false;
		STAT_SUB(ep, st_lanes_held, 1);
	}
	if (l->copy) {
		mllpi_future_release(l->copy);
		mllpi_future_release(l->copy);
		l->copy = NULL;
	}
}

void mllpi_lanes_fail_all(struct mllpi_endpoint *ep,
			  const struct mllp_error *unsent,
			  const struct mllp_error *sent)
{
	struct mllp_pool *p = ep->pool;
	struct mllpi_lanes *ls = &ep->lanes;
	const struct mllp_allocator *a = &p->alloc;
	mllpi_timer_disarm(&p->loop.timers, &ls->timer);
	ls->retry = NULL;
	if (ls->tab) {
		for (uint32_t i = 0; i <= ls->mask; i++) {
			struct mllpi_lane *l = ls->tab[i], *next;
			for (; l; l = next) {
				next = l->hnext;
				fail_lane(ep, l, unsent, sent);
				STAT_SUB(ep, st_lanes_active, 1);
				a->free(a->ctx, l, sizeof(*l));
			}
		}
		a->free(a->ctx, ls->tab, (ls->mask + 1) * sizeof(*ls->tab));
	}
	ls->tab = NULL;
	ls->mask = 0;
	ls->count = 0;
	while (ls->spare) {
		struct mllpi_lane *l = ls->spare;
		ls->spare = l->hnext;
		a->free(a->ctx, l, sizeof(*l));
	}
	ls->nspare = 0;
}

void mllpi_lanes_free(struct mllp_pool *pool, struct mllpi_endpoint *ep)
{
	struct mllpi_lanes *ls = &ep->lanes;
	const struct mllp_allocator *a = &pool->alloc;
	if (ls->tab) {
		for (uint32_t i = 0; i <= ls->mask; i++) {
			struct mllpi_lane *l = ls->tab[i], *next;
			for (; l; l = next) {
				next = l->hnext;
				if (l->copy) {
					mllpi_future_release(l->copy);
					mllpi_future_release(l->copy);
				}
				a->free(a->ctx, l, sizeof(*l));
			}
		}
		a->free(a->ctx, ls->tab, (ls->mask + 1) * sizeof(*ls->tab));
		ls->tab = NULL;
	}
	while (ls->spare) {
		struct mllpi_lane *l = ls->spare;
		ls->spare = l->hnext;
		a->free(a->ctx, l, sizeof(*l));
	}
}

/* Ordered lanes (see lane.h): the lane table, admission of keyed messages,
 * what a lane does with its message's outcome, retries and holds. Release
 * requests and the endpoint's teardown are in lane_release.c. */
#include "conn.h"
#include "endpoint.h"
#include "lane_internal.h"

#include <stdio.h>
#include <string.h>

/* Free lanes kept for reuse per endpoint, at most. */
#define SPARE_MAX 1024
/* Buckets of a new table. */
#define TAB_MIN 64

_Static_assert(sizeof(struct mllpi_lane) + 2 * sizeof(void *) <=
		   MLLP_LANE_BYTES,
	       "MLLP_LANE_BYTES bounds a lane and its share of the table");

/* ---- the table ---------------------------------------------------------- */

struct mllpi_lane *mllpi_lane_find(struct mllpi_lanes *ls, uint32_t hash,
				   const unsigned char *key, uint32_t len)
{
	if (!ls->tab)
		return NULL;
	for (struct mllpi_lane *l = ls->tab[hash & ls->mask]; l; l = l->hnext)
		if (l->hash == hash && l->key_len == len &&
		    memcmp(l->key, key, len) == 0)
			return l;
	return NULL;
}

/* Double the buckets (or make the first table). false: no memory (the
 * table stays as it is: longer chains, still correct). */
static bool grow(struct mllp_pool *p, struct mllpi_lanes *ls)
{
	uint32_t n = ls->tab ? (ls->mask + 1) * 2 : TAB_MIN;
	struct mllpi_lane **t = p->alloc.alloc(p->alloc.ctx, n * sizeof(*t));
	if (!t)
		return ls->tab != NULL;
	memset(t, 0, n * sizeof(*t));
	if (ls->tab) {
		for (uint32_t i = 0; i <= ls->mask; i++) {
			struct mllpi_lane *l = ls->tab[i], *next;
			for (; l; l = next) {
				next = l->hnext;
				l->hnext = t[l->hash & (n - 1)];
				t[l->hash & (n - 1)] = l;
			}
		}
		p->alloc.free(p->alloc.ctx, ls->tab,
			      (ls->mask + 1) * sizeof(*ls->tab));
	}
	ls->tab = t;
	ls->mask = n - 1;
	return true;
}

/* A new lane for f's key, in the table. NULL: max_lanes reached or no
 * memory (*full tells which). */
static struct mllpi_lane *lane_new(struct mllpi_endpoint *ep,
				   const struct mllp_future *f, bool *full)
{
	struct mllp_pool *p = ep->pool;
	struct mllpi_lanes *ls = &ep->lanes;
	uint32_t max = ep->opts.max_lanes ? ep->opts.max_lanes : 65536;
	*full = ls->count >= max;
	if (*full)
		return NULL;
	if ((!ls->tab || ls->count > ls->mask) && !grow(p, ls))
		return NULL;
	struct mllpi_lane *l = ls->spare;
	if (l) {
		ls->spare = l->hnext;
		ls->nspare--;
	} else {
		l = p->alloc.alloc(p->alloc.ctx, sizeof(*l));
		if (!l)
			return NULL;
	}
	memset(l, 0, offsetof(struct mllpi_lane, key));
	l->hash = f->key_hash;
	l->key_len = f->key_len;
	memcpy(l->key, f->key, f->key_len);
	l->hnext = ls->tab[l->hash & ls->mask];
	ls->tab[l->hash & ls->mask] = l;
	ls->count++;
	STAT_ADD(ep, st_lanes_active, 1);
	return l;
}

/* Unlink l from the table and free it (onto the spare list). */
static void lane_free(struct mllpi_endpoint *ep, struct mllpi_lane *l)
{
	struct mllp_pool *p = ep->pool;
	struct mllpi_lanes *ls = &ep->lanes;
	struct mllpi_lane **pp = &ls->tab[l->hash & ls->mask];
	while (*pp != l)
		pp = &(*pp)->hnext;
	*pp = l->hnext;
	ls->count--;
	STAT_SUB(ep, st_lanes_active, 1);
	if (ls->nspare < SPARE_MAX) {
		l->hnext = ls->spare;
		ls->spare = l;
		ls->nspare++;
	} else {
		p->alloc.free(p->alloc.ctx, l, sizeof(*l));
	}
}

/* ---- admission ---------------------------------------------------------- */

static void lane_park(struct mllpi_endpoint *ep, struct mllpi_lane *l,
		      struct mllp_future *f)
{
	f->lane = l;
	f->lnext = NULL;
	f->where = W_PARKED;
	if (l->wtail)
		l->wtail->lnext = f;
	else
		l->whead = f;
	l->wtail = f;
	l->nwait++;
	STAT_ADD(ep, st_lane_waiting, 1);
	if (l->held)
		STAT_ADD(ep, st_lane_held_waiting, 1);
}

bool mllpi_lane_admit(struct mllpi_endpoint *ep, struct mllp_future *f)
{
	f->lnext = NULL;
	f->tries = 0;
	struct mllpi_lane *l =
	    mllpi_lane_find(&ep->lanes, f->key_hash, f->key, f->key_len);
	if (l) {
		if (!l->cur && !l->held && !l->whead) {
			l->cur = f; /* idle lane kept alive by a pin */
			f->lane = l;
			return true;
		}
		lane_park(ep, l, f);
		return false;
	}
	bool full;
	l = lane_new(ep, f, &full);
	if (!l) {
		f->lane = NULL;
		mllpi_space_freed(ep, 1);
		if (full) {
			char why[96];
			snprintf(why, sizeof(why),
				 "too many ordering keys in use (max_lanes "
				 "%u); the message was not sent",
				 ep->opts.max_lanes ? ep->opts.max_lanes
						    : 65536u);
			mllpi_fail_future(f, MLLP_CTX_SEND,
					  MLLP_ERR_WOULD_BLOCK, why, false,
					  false);
		} else {
			mllpi_fail_future(f, MLLP_CTX_SEND, MLLP_ERR_NO_MEMORY,
					  NULL, false, false);
		}
		f->where = W_DONE;
		mllpi_future_release(f);
		return false;
	}
	l->cur = f;
	f->lane = l;
	return true;
}

/* ---- sending a lane's message ------------------------------------------- */

void mllpi_lane_submit(struct mllpi_endpoint *ep, struct mllp_future *f)
{
	f->where = W_NEW;
	/* As op_send: nothing to wait for with queue_timeout 0. */
	if (mllpi_q_refuse(ep, f))
		return;
	mllpi_q_append(ep, f);
	if (ep->qhead == f)
		mllpi_q_arm_timer(ep);
	/* An idle connection takes it through mllpi_q_take (conn_send.c). */
	if (ep->idle)
		mllpi_conn_dispatch(ep->idle);
}

/* The lane's current message is done (l->cur NULL, not held): its next
 * waiting message goes, or the lane is freed when nothing is left. */
void mllpi_lane_next(struct mllpi_endpoint *ep, struct mllpi_lane *l)
{
	if (l->cur || l->held || l->pins)
		return;
	struct mllp_future *f = l->whead;
	if (!f) {
		lane_free(ep, l);
		return;
	}
	l->whead = f->lnext;
	if (!l->whead)
		l->wtail = NULL;
	f->lnext = NULL;
	l->nwait--;
	STAT_SUB(ep, st_lane_waiting, 1);
	l->cur = f;
	mllpi_lane_submit(ep, f);
}

/* ---- outcomes ----------------------------------------------------------- */

/* The delay before retry `tries` (1, 2, ...) of a lane: the reconnect
 * backoff of the endpoint's options, scaled by backoff_divisor. */
static uint64_t retry_delay_us(const struct mllpi_endpoint *ep, uint32_t tries)
{
	const struct mllp_conn_options *o = &ep->opts;
	uint64_t ms;
	if (o->use_backoff) {
		uint64_t cap =
		    (uint64_t)(o->backoff_max_s ? o->backoff_max_s : 180) *
		    1000;
		ms = tries > 20 ? cap : (uint64_t)1000 << (tries - 1);
		if (ms > cap)
			ms = cap;
	} else {
		ms = o->auto_reconnect_interval_ms
			 ? o->auto_reconnect_interval_ms
			 : 1000;
	}
	uint32_t div = ep->pool->cfg.backoff_divisor;
	return ms * 1000 / (div ? div : 1);
}

void mllpi_lane_arm_timer(struct mllpi_endpoint *ep)
{
	struct mllpi_lanes *ls = &ep->lanes;
	struct mllp_pool *p = ep->pool;
	uint64_t due = UINT64_MAX;
	for (struct mllpi_lane *l = ls->retry; l; l = l->rnext)
		if (l->retry_due_us < due)
			due = l->retry_due_us;
	ls->timer.kind = T_LANE;
	ls->timer.owner = ep;
	if (due == UINT64_MAX)
		mllpi_timer_disarm(&p->loop.timers, &ls->timer);
	else
		mllpi_timer_arm(&p->loop.timers, &ls->timer, due);
}

/* f failed and may be tried again: keep it (not completed) for the
 * lane's timer. Whoever failed it still drops the engine's reference:
 * one more, the engine's while f waits and when it is sent again. */
static void keep_for_retry(struct mllpi_endpoint *ep, struct mllpi_lane *l,
			   struct mllp_future *f)
{
	f->tries++;
	f->completed = true; /* the connection must not fail it again */
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
	l->retrying = true;
	l->retry_due_us = mllpi_now_us() + retry_delay_us(ep, f->tries);
	l->rnext = ep->lanes.retry;
	ep->lanes.retry = l;
	mllpi_lane_arm_timer(ep);
}

void mllpi_lane_hold(struct mllpi_endpoint *ep, struct mllpi_lane *l,
		     struct mllp_future *f)
{
	struct mllp_pool *p = ep->pool;
	l->held = true;
	STAT_ADD(ep, st_lanes_held, 1);
	STAT_ADD(ep, st_lane_held_waiting, l->nwait);
	/* The copy a release sends again: taken now, while a borrowed
	 * payload is still the caller's to keep (until f completes). NULL
	 * without memory: a retry release then fails with NO_MEMORY. */
	l->copy = mllpi_future_copy(f);
	/* The manager's fields too: a copy that is never sent (skip,
	 * teardown) is freed as it is. */
	if (l->copy)
		mllpi_future_take(l->copy);
	if (!p->cfg.telemetry)
		return;
	struct mllp_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = MLLP_EV_LANE_HELD;
	ev.address = ep->host;
	ev.port = ep->port;
	ev.endpoint_id = ep->id;
	ev.error = &f->result.error;
	p->cfg.telemetry(p->cfg.telemetry_ctx, &ev);
}

/* true: f's lane goes on (an accept, or a message canceled before any
 * byte of it was written). */
static bool lane_ok(const struct mllp_future *f)
{
	const struct mllp_result *r = &f->result;
	if (r->status == MLLP_ERR_CANCELED)
		return !r->may_have_reached;
	return r->status == 0 &&
	       (!r->has_verdict || r->verdict == MLLP_APPLICATION_ACCEPT);
}

void mllpi_lane_publish(struct mllp_future *f)
{
	struct mllpi_endpoint *ep = f->ep;
	struct mllp_pool *p = ep->pool;
	struct mllpi_lane *l = f->lane;
	f->lane = NULL;
	l->cur = NULL;
	if (p->stopping || ep->retired) {
		/* Its lane is torn down with the endpoint (lane_release.c). */
		mllpi_publish_now(f);
		return;
	}
	if (!lane_ok(f)) {
		if (ep->opts.lane_policy == MLLP_LANE_RETRY &&
		    f->result.status != MLLP_ERR_CANCELED &&
		    f->tries < ep->opts.lane_max_retries) {
			l->cur = f;
			f->lane = l;
			keep_for_retry(ep, l, f);
			return;
		}
		mllpi_lane_hold(ep, l, f);
	}
	/* Pinned while the callback runs: a release from it must not free
	 * the lane under us. */
	l->pins++;
	mllpi_publish_now(f);
	l->pins--;
	mllpi_lane_next(ep, l);
}

/* ---- retries ------------------------------------------------------------ */

/* Send the lane's kept message again (it takes a queue slot again). */
static void resend(struct mllpi_endpoint *ep, struct mllp_future *f)
{
	f->completed = false;
	f->left_flight = false;
	if (f->reply_heap)
		f->alloc.free(f->alloc.ctx, f->reply_heap, f->reply_heap_size);
	f->reply_heap = NULL;
	f->reply_heap_size = 0;
	memset(&f->result, 0, sizeof(f->result));
	/* seq_cst as every update of reserved */
	atomic_fetch_add_explicit(&ep->reserved, 1, memory_order_seq_cst);
	/* keep_for_retry's reference is the engine's again (the connection
	 * that failed it dropped the old one) */
	mllpi_lane_submit(ep, f);
}

void mllpi_lane_on_timer(struct mllpi_endpoint *ep)
{
	uint64_t now = mllpi_now_us();
	struct mllpi_lane **pp = &ep->lanes.retry, *due = NULL;
	while (*pp) {
		struct mllpi_lane *l = *pp;
		if (l->retry_due_us <= now) {
			*pp = l->rnext;
			l->rnext = due;
			due = l;
		} else {
			pp = &l->rnext;
		}
	}
	while (due) {
		struct mllpi_lane *l = due;
		due = l->rnext;
		l->rnext = NULL;
		l->retrying = false;
		resend(ep, l->cur);
	}
	mllpi_lane_arm_timer(ep);
}

/* Take l off the retry list. */
void mllpi_lane_unretry(struct mllpi_endpoint *ep, struct mllpi_lane *l)
{
	struct mllpi_lane **pp = &ep->lanes.retry;
	while (*pp && *pp != l)
		pp = &(*pp)->rnext;
	if (*pp)
		*pp = l->rnext;
	l->rnext = NULL;
	l->retrying = false;
}

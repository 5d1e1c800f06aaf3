/* Enhanced acknowledgement mode, the manager's side: messages waiting for
 * an application ACK (a table by control id), matching what the listener
 * took, the application_ack_timeout, and the end of every open stage when
 * the pool stops. Each stage ends exactly once (app_end); the table's
 * reference on the future is dropped right after. */
#include "app_ack.h"
#include "conn.h"

#include <mllp/ack.h>
#include <mllp/enhanced.h>

#include <string.h>

#define RX(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)

static struct mllpi_acks *acks_of(struct mllp_pool *p)
{
	/* acquire: pairs with the release store of mllp_pool_listen_acks */
	return atomic_load_explicit(&p->acks, memory_order_acquire);
}

static void emit(struct mllp_pool *p, enum mllp_event_kind kind,
		 const struct mllpi_app *app, const char *peer,
		 const struct mllp_error *e, uint64_t lat, bool has_v,
		 enum mllp_verdict v)
{
	if (!p->cfg.telemetry)
		return;
	struct mllp_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.address = app ? app->host : peer;
	ev.port = app ? app->port : 0;
	ev.endpoint_id = app ? app->endpoint_id : UINT32_MAX;
	ev.error = e;
	ev.latency_us = lat;
	ev.has_verdict = has_v;
	ev.verdict = v;
	ev.orphan = app == NULL;
	p->cfg.telemetry(p->cfg.telemetry_ctx, &ev);
}

/* Complete the stage (once): the result is set by the caller. It stops
 * counting as pending first, so that the counters agree with the stage as
 * soon as its waiter wakes up. */
static void app_publish(struct mllpi_acks *a, struct mllpi_app *app)
{
	if (app->tracked)
		atomic_fetch_sub_explicit(&a->pending, 1, memory_order_relaxed);
	/* seq_cst store: the result is visible to whoever acquires state 1,
	 * and the Dekker pair with the waiter (see mllpi_future_publish). */
	atomic_store_explicit(&app->state, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&app->waiters, memory_order_seq_cst) > 0)
		mllpi_wake_state(&app->state);
}

/* Out of the table and the deadline list, once the stage completed; the
 * table's reference on the future goes (possibly the last: app may be
 * freed). */
static void untrack(struct mllpi_acks *a, struct mllpi_app *app)
{
	if (!app->tracked)
		return;
	struct mllpi_app **pp = &a->buckets[app->hash & (a->nbuckets - 1)];
	while (*pp && *pp != app)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = app->hnext;
	if (app->armed) {
		if (app->dprev)
			app->dprev->dnext = app->dnext;
		else
			a->dhead = app->dnext;
		if (app->dnext)
			app->dnext->dprev = app->dprev;
		else
			a->dtail = app->dprev;
		app->armed = false;
	}
	app->tracked = false;
	a->count--;
	mllpi_future_release(app->f);
}

static void app_fail(struct mllpi_acks *a, struct mllpi_app *app,
		     const struct mllp_error *e)
{
	if (atomic_load_explicit(&app->state, memory_order_relaxed))
		return;
	app->result.status = e->reason;
	app->result.error = *e;
	app->result.written = app->f->result.written;
	app->result.may_have_reached = app->f->result.may_have_reached;
	app_publish(a, app);
	untrack(a, app);
}

/* The stage ends with ACK data[0..len) (verified against the message). */
static void app_reply(struct mllpi_acks *a, struct mllpi_app *app,
		      const unsigned char *data, size_t len)
{
	struct mllp_pool *p = a->pool;
	struct mllp_result *r = &app->result;
	struct mllp_allocator al = app->f->alloc;
	unsigned char *copy = len ? al.alloc(al.ctx, len) : NULL;
	if (len && !copy) {
		struct mllp_error e;
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_NO_MEMORY, NULL);
		app_fail(a, app, &e);
		return;
	}
	if (len)
		memcpy(copy, data, len);
	app->reply = copy;
	app->reply_len = len;
	r->status = 0;
	r->written = true;
	r->has_verdict = true;
	r->verdict = mllp_ack_verify_id(app->id, app->id_len, copy, len,
					&r->ack, r->why, sizeof(r->why));
	r->reply = copy;
	r->reply_len = len;
	r->latency_us = p->loop.now_us - app->start_us;
	app_publish(a, app);
}

static uint32_t id_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

/* Double the table when it holds more stages than buckets (no memory:
 * the chains just grow longer). */
static void grow(struct mllpi_acks *a)
{
	struct mllp_pool *p = a->pool;
	size_t n = a->nbuckets * 2;
	struct mllpi_app **nb = p->alloc.alloc(p->alloc.ctx, n * sizeof(*nb));
	if (!nb)
		return;
	memset(nb, 0, n * sizeof(*nb));
	for (size_t i = 0; i < a->nbuckets; i++) {
		struct mllpi_app *x = a->buckets[i];
		while (x) { /* re-append in order: oldest first per chain */
			struct mllpi_app *next = x->hnext;
			struct mllpi_app **pp = &nb[x->hash & (n - 1)];
			while (*pp)
				pp = &(*pp)->hnext;
			x->hnext = NULL;
			*pp = x;
			x = next;
		}
	}
	p->alloc.free(p->alloc.ctx, a->buckets,
		      a->nbuckets * sizeof(*a->buckets));
	a->buckets = nb;
	a->nbuckets = n;
}

void mllpi_app_track(struct mllp_future *f)
{
	struct mllpi_app *app = f->app;
	struct mllpi_acks *a = acks_of(f->pool);
	if (a->count >= a->nbuckets)
		grow(a);
	app->hash = id_hash(app->id, app->id_len);
	struct mllpi_app **pp = &a->buckets[app->hash & (a->nbuckets - 1)];
	while (*pp)
		pp = &(*pp)->hnext;
	app->hnext = NULL;
	*pp = app;
	app->tracked = true;
	app->armed = false;
	app->start_us = f->pool->loop.now_us;
	a->count++;
	atomic_fetch_add_explicit(&a->pending, 1, memory_order_relaxed);
	/* the table's reference, until the stage ends */
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

static void arm(struct mllpi_acks *a, struct mllpi_app *app)
{
	struct mllp_pool *p = a->pool;
	if (a->timeout_ms < 0)
		return; /* MLLP_INFINITE */
	app->due_us = mllpi_after_ms(p->loop.now_us, (uint64_t)a->timeout_ms);
	app->dnext = NULL;
	app->dprev = a->dtail;
	if (a->dtail)
		a->dtail->dnext = app;
	else
		a->dhead = app;
	a->dtail = app;
	app->armed = true;
	if (a->dhead == app)
		mllpi_timer_arm(&p->loop.timers, &a->timer, app->due_us);
}

/* A judged answer of the accept stage (verdict v, MSA-1 code, the frame
 * data[0..len)) ends the application stage: an original-mode ACK (AA..AR)
 * is its application ACK; CE / CR: the receiving system will not process
 * the message. False for a CA: the stage goes on. */
static bool end_by_answer(struct mllpi_acks *a, struct mllpi_app *app,
			  enum mllp_verdict v, struct mllp_str code,
			  const unsigned char *data, size_t len)
{
	if (code.ptr[0] == 'A') {
		app_reply(a, app, data, len);
		untrack(a, app);
		return true;
	}
	if (v == MLLP_APPLICATION_ACCEPT)
		return false;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_NOT_ACCEPTED,
		       "no application acknowledgement: the accept "
		       "acknowledgement was %.*s",
		       (int)code.len, code.ptr);
	app_fail(a, app, &e);
	return true;
}

static bool judged(enum mllp_verdict v)
{
	return v == MLLP_APPLICATION_ACCEPT || v == MLLP_APPLICATION_ERROR ||
	       v == MLLP_APPLICATION_REJECT;
}

void mllpi_app_accepted(struct mllp_future *f)
{
	struct mllpi_app *app = f->app;
	struct mllpi_acks *a = acks_of(f->pool);
	if (!app->tracked ||
	    atomic_load_explicit(&app->state, memory_order_relaxed))
		return;
	const struct mllp_result *r = &f->result;
	struct mllp_error e;
	if (r->status != 0) {
		app_fail(a, app, &r->error);
		return;
	}
	/* async, release 2, MSH-15 NE / ER: the accept is implicit */
	if (!r->has_verdict) {
		arm(a, app);
		return;
	}
	/* AA..AR, CA..CR: a code was judged; else a wrong id, a bad code,
	 * no MSA */
	if (judged(r->verdict)) {
		if (!end_by_answer(a, app, r->verdict, r->ack.code, r->reply,
				   r->reply_len))
			arm(a, app);
		return;
	}
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_NOT_ACCEPTED,
		       "no application acknowledgement: the accept "
		       "stage's reply was %s",
		       mllp_verdict_name(r->verdict));
	app_fail(a, app, &e);
}

void mllpi_app_on_timer(struct mllpi_acks *a)
{
	struct mllp_pool *p = a->pool;
	uint64_t now = p->loop.now_us;
	while (a->dhead && a->dhead->due_us <= now) {
		struct mllpi_app *app = a->dhead;
		struct mllp_error e;
		RX(a->timeouts);
		if (app->want == APP_ER) {
			/* no application ACK: no error was reported */
			mllp_error_clear(&e);
			app->result.status = 0;
			app->result.written = true;
			emit(p, MLLP_EV_APPLICATION_ACK_TIMEOUT, app, NULL, &e,
			     0, false, 0);
			app_publish(a, app);
			untrack(a, app);
			continue;
		}
		mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT,
			       "no application acknowledgement within %lld ms",
			       (long long)a->timeout_ms);
		emit(p, MLLP_EV_APPLICATION_ACK_TIMEOUT, app, NULL, &e, 0,
		     false, 0);
		app_fail(a, app, &e);
	}
	if (a->dhead)
		mllpi_timer_arm(&p->loop.timers, &a->timer, a->dhead->due_us);
}

void mllpi_app_stop_all(struct mllp_pool *p)
{
	struct mllpi_acks *a = acks_of(p);
	if (!a)
		return;
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_STOPPED, NULL);
	for (size_t i = 0; i < a->nbuckets; i++)
		while (a->buckets[i])
			app_fail(a, a->buckets[i], &e);
	if (mllpi_timer_armed(&a->timer))
		mllpi_timer_disarm(&p->loop.timers, &a->timer);
}

/* The oldest open stage waiting for control id msa2 (of endpoint ep_id;
 * UINT32_MAX: any), or NULL. */
static struct mllpi_app *lookup(struct mllpi_acks *a, struct mllp_str msa2,
				uint32_t ep_id)
{
	if (msa2.len == 0)
		return NULL;
	uint32_t h = id_hash(msa2.ptr, msa2.len);
	for (struct mllpi_app *x = a->buckets[h & (a->nbuckets - 1)]; x;
	     x = x->hnext)
		if (x->hash == h && x->id_len == msa2.len &&
		    memcmp(x->id, msa2.ptr, msa2.len) == 0 &&
		    (ep_id == UINT32_MAX || x->endpoint_id == ep_id) &&
		    !atomic_load_explicit(&x->state, memory_order_relaxed))
			return x;
	return NULL;
}

void mllpi_app_late(struct mllp_pool *p, uint32_t ep_id,
		    const struct mllp_ack *ack, enum mllp_verdict v,
		    const unsigned char *data, size_t len)
{
	struct mllpi_acks *a = acks_of(p);
	if (!a || p->stopping || !judged(v))
		return;
	struct mllpi_app *app = lookup(a, ack->control_id, ep_id);
	/* only a stage whose accept stage is over (not a message with the
	 * same id still in flight) */
	if (app && app->f->completed)
		(void)end_by_answer(a, app, v, ack->code, data, len);
}

/* Answer the listener's frame: an accept ACK (code) when its MSH-15 asks
 * for one with that outcome, else nothing. */
static void answer(struct mllpi_acks *a, struct mllpi_app_in *in,
		   const struct mllp_hl7_msg *m, bool ok, const char *code,
		   const char *text)
{
	struct mllp_str t = m->accept_ack_type;
	bool want = mllp_str_eq(t, "AL") || (ok && mllp_str_eq(t, "SU")) ||
		    (!ok && mllp_str_eq(t, "ER"));
	if (t.len == 0 && m->app_ack_type.len == 0 && code[0] == 'A')
		want = true; /* original mode: the refusal is answered */
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.code = code;
	o.text = text;
	o.sequence = atomic_load_explicit(&a->received, memory_order_relaxed);
	char buf[1024];
	size_t n = 0;
	if (want &&
	    mllp_ack_build(in->data, in->len, &o, buf, sizeof(buf), &n) == 0) {
		RX(a->accept_acks);
		mllp_receiver_reply(in->h, buf, n);
		return;
	}
	mllp_receiver_reply(in->h, NULL, 0);
}

void mllpi_app_op_in(struct mllp_pool *p, struct mllpi_node *n)
{
	struct mllpi_app_in *in =
	    MLLPI_CONTAINER_OF(n, struct mllpi_app_in, node);
	struct mllpi_acks *a = acks_of(p);
	struct mllp_hl7_msg m;
	struct mllp_str msa, msa1, msa2;
	mllp_hl7_parse(&m, in->data, in->len); /* the listener parsed it */
	if (mllp_hl7_find_segment(&m, "MSA", 1, &msa) != 0 ||
	    mllp_hl7_field(&m, msa, 1, &msa1) != 0 ||
	    mllp_hl7_field(&m, msa, 2, &msa2) != 0) {
		RX(a->not_ack);
		mllpi_pool_log(p, MLLP_LOG_WARNING,
			       "ack listener: a message from %s that is not "
			       "an acknowledgement (no MSA-2); refused",
			       in->peer);
		bool enh = mllp_hl7_is_enhanced_mode(&m);
		answer(a, in, &m, false, enh ? "CR" : "AR",
		       "not an acknowledgement");
	} else {
		struct mllpi_app *app =
		    p->stopping ? NULL : lookup(a, msa2, UINT32_MAX);
		if (app) {
			RX(a->matched);
			/* The sender's accept ACK is queued before the stage
			 * completes: a waiter that stops the pool at once
			 * must not cut it off. */
			answer(a, in, &m, true, "CA", NULL);
			app_reply(a, app, in->data, in->len);
			emit(p, MLLP_EV_APPLICATION_ACK, app, NULL, NULL,
			     app->result.latency_us, true, app->result.verdict);
			untrack(a, app);
		} else {
			RX(a->unmatched);
			mllpi_pool_log(p, MLLP_LOG_WARNING,
				       "ack listener: application "
				       "acknowledgement %.*s from %s matches "
				       "no message waiting for one; dropped",
				       (int)(msa2.len > 64 ? 64 : msa2.len),
				       msa2.ptr ? msa2.ptr : "", in->peer);
			/* its own MSA-2 as the id: the verdict of MSA-1 */
			enum mllp_verdict v =
			    mllp_ack_verify_id(msa2.ptr, msa2.len, in->data,
					       in->len, NULL, NULL, 0);
			emit(p, MLLP_EV_APPLICATION_ACK, NULL, in->peer, NULL,
			     0, true, v);
			answer(a, in, &m, false, "CR",
			       "no message waits for this acknowledgement");
		}
	}
	p->alloc.free(p->alloc.ctx, in, in->size);
}

void mllpi_app_free(struct mllp_future *f)
{
	struct mllpi_app *app = f->app;
	struct mllp_allocator al = f->alloc;
	if (app->reply)
		al.free(al.ctx, app->reply, app->reply_len);
	al.free(al.ctx, app, app->size);
	f->app = NULL;
}

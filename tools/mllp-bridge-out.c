/* mllp-bridge out: JetStream -> MLLP.
 *
 * Consumption: a durable push consumer with a deliver group and explicit
 * acks, bound with js_Subscribe (ManualAck): the library's delivery thread
 * hands each message to a callback, which queues it for the worker. No
 * Fetch at all, so neither of nats.c 3.4.1's Fetch defects (the timeout
 * not honoured; a heap overflow when a timed-out Fetch left messages
 * buffered with batches > 1) can arise. MaxAckPending is the window: the
 * server never has more than that many messages outstanding with the
 * bridges of the group, so memory is bounded by it.
 *
 * The worker thread owns every held message (a "job"): it keeps one job
 * in flight per ordering key (a lane, FIFO), sends it through the pool,
 * and acks it in JetStream only after the receiver's AA or CA. AE/AR:
 * dead-letter (publish with the ACK and reason, then Term) or hold the
 * lane. Transport failures, reply timeouts and invalid ACKs: the job is
 * sent again after the backoff delay (mllp_backoff). Every held job gets
 * an InProgress every AckWait/3, so JetStream does not redeliver it
 * behind the bridge's back; a bridge that dies leaves its jobs unacked and
 * JetStream redelivers them after AckWait. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mllp-bridge.h"

enum job_ev { EV_NONE, EV_NEW, EV_DONE };

struct lane;
struct out_state;

struct job {
	struct out_state *st;
	struct job *qnext;	 /* worker queue */
	struct job *prev, *next; /* every held job */
	struct job *lnext;	 /* lane FIFO */
	struct lane *lane;	 /* NULL: no key */
	natsMsg *nm;
	struct mllp_future *f;
	enum job_ev ev;
	uint64_t seq; /* stream sequence */
	bool in_pool, held, dead_letter_due;
	int64_t retry_at_ms; /* 0: none */
	int64_t progress_at_ms;
	struct mllp_backoff bo;
	char key[65];
};

#define LANE_BUCKETS 4096
struct lane {
	struct lane *hnext;
	struct job *head, *tail;
	char key[65];
};

struct out_state {
	const struct bridge_nats_opts *no;
	struct bridge_out_opts *oo;
	struct bridge_nats n;
	natsSubscription *sub;
	struct mllp_pool *pool;
	uint32_t ep;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *qhead, *qtail; /* events for the worker */
	bool quit;
	_Atomic bool draining;
	/* worker-owned */
	struct job *all;
	_Atomic uint64_t held_jobs;
	struct lane *lanes[LANE_BUCKETS];
	int64_t last_fail_log_ms;
	uint64_t fail_logs_skipped;
	/* Resume phase (see resume_check): messages a previous owner left
	 * unacked, those seen again, the last stream sequence it was given,
	 * and the newer messages parked meanwhile. */
	uint64_t resume_need, resume_got, resume_until;
	int64_t resume_deadline_ms;
	struct job *park_head, *park_tail;
	size_t parked;
	int64_t ack_wait_ms; /* the consumer's */
	/* counters */
	_Atomic uint64_t received, delivered, dead_lettered, lanes_held,
	    retries, redelivered, duplicates_dropped, released, in_progress;
};

static void post(struct out_state *st, struct job *j, enum job_ev ev)
{
	j->ev = ev;
	j->qnext = NULL;
	pthread_mutex_lock(&st->lock);
	if (st->qtail)
		st->qtail->qnext = j;
	else
		st->qhead = j;
	st->qtail = j;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
}

/* The subscription's delivery thread: queue it for the worker. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm,
		   void *closure)
{
	(void)nc;
	(void)sub;
	struct out_state *st = closure;
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		/* Not acked: JetStream redelivers it after AckWait. */
		natsMsg_Destroy(nm);
		return;
	}
	j->nm = nm;
	j->st = st;
	post(st, j, EV_NEW);
}

/* A future completed (the pool's manager thread). */
static void on_done(struct mllp_future *f, void *arg)
{
	(void)f;
	struct job *j = arg;
	post(j->st, j, EV_DONE);
}

static unsigned lane_hash(const char *key)
{
	unsigned h = 2166136261u;
	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % LANE_BUCKETS;
}

static struct lane *lane_get(struct out_state *st, const char *key)
{
	struct lane **b = &st->lanes[lane_hash(key)];
	for (struct lane *l = *b; l; l = l->hnext)
		if (strcmp(l->key, key) == 0)
			return l;
	struct lane *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	snprintf(l->key, sizeof(l->key), "%s", key);
	l->hnext = *b;
	*b = l;
	return l;
}

static void lane_free_if_empty(struct out_state *st, struct lane *l)
{
	if (l->head)
		return;
	for (struct lane **p = &st->lanes[lane_hash(l->key)]; *p;
	     p = &(*p)->hnext)
		if (*p == l) {
			*p = l->hnext;
			free(l);
			return;
		}
}

/* The ordering key: --key-header's value, else the key field's digest
 * (an empty key: no lane, no order). */
static void job_key(struct out_state *st, struct job *j)
{
	const char *v = NULL;
	if (st->oo->key_header) {
		if (natsMsgHeader_Get(j->nm, st->oo->key_header, &v) ==
			NATS_OK &&
		    v && *v)
			snprintf(j->key, sizeof(j->key), "%s", v);
		return;
	}
	struct mllp_hl7_msg m;
	if (mllp_hl7_parse(&m, natsMsg_GetData(j->nm),
			   (size_t)natsMsg_GetDataLength(j->nm)) != 0)
		return;
	struct mllp_str k = bridge_field_get(&m, &st->oo->key);
	if (k.len)
		bridge_key_digest(k, j->key);
}

static void fail_log(struct out_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Delivery failures are logged at most once a second (with the count of
 * lines left out): a receiver that is down fails every message. */
static void fail_log(struct out_state *st, const char *fmt, ...)
{
	int64_t now = bridge_now_ms();
	if (now - st->last_fail_log_ms < 1000) {
		st->fail_logs_skipped++;
		return;
	}
	char line[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (st->fail_logs_skipped)
		bridge_log("%s (%" PRIu64 " similar lines not logged)", line,
			   st->fail_logs_skipped);
	else
		bridge_log("%s", line);
	st->last_fail_log_ms = now;
	st->fail_logs_skipped = 0;
}

static void schedule_retry(struct out_state *st, struct job *j)
{
	uint64_t d = mllp_backoff_fail(&j->bo);
	j->retry_at_ms = bridge_now_ms() + (int64_t)d;
	atomic_fetch_add(&st->retries, 1);
}

static void send_job(struct out_state *st, struct job *j)
{
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.borrow_payload = true; /* j->nm lives until the future is done */
	so.callback = on_done;
	so.callback_arg = j;
	struct mllp_error err;
	int rc = mllp_pool_send(st->pool, st->ep, natsMsg_GetData(j->nm),
				(size_t)natsMsg_GetDataLength(j->nm), &so,
				&j->f, &err);
	if (rc == 0) {
		j->in_pool = true;
		return;
	}
	char e[300];
	mllp_error_format(&err, e, sizeof(e));
	fail_log(st, "cannot queue stream message %" PRIu64 " for %s:%u: %s",
		 j->seq, st->oo->to_host, st->oo->to_port, e);
	schedule_retry(st, j);
}

/* Release a job: not acked, so JetStream gives it to another bridge
 * (Nak), or, from the dying process, after AckWait. */
static void drop_job(struct out_state *st, struct job *j, bool nak)
{
	if (nak) {
		natsMsg_Nak(j->nm, NULL);
		atomic_fetch_add(&st->released, 1);
	}
	if (j->prev)
		j->prev->next = j->next;
	else
		st->all = j->next;
	if (j->next)
		j->next->prev = j->prev;
	mllp_future_free(j->f);
	natsMsg_Destroy(j->nm);
	free(j);
	atomic_fetch_sub(&st->held_jobs, 1);
}

/* While draining: release a lane's jobs, in order. */
static void release_lane(struct out_state *st, struct lane *l)
{
	while (l->head) {
		struct job *j = l->head;
		l->head = j->lnext;
		drop_job(st, j, true);
	}
	l->tail = NULL;
	lane_free_if_empty(st, l);
}

/* A job is done (acked or terminated): the next of its lane goes. */
static void finish_job(struct out_state *st, struct job *j)
{
	struct lane *l = j->lane;
	if (l) {
		l->head = j->lnext;
		if (!l->head)
			l->tail = NULL;
	}
	drop_job(st, j, false);
	if (!l)
		return;
	if (atomic_load(&st->draining))
		release_lane(st, l);
	else if (l->head)
		send_job(st, l->head);
	else
		lane_free_if_empty(st, l);
}

/* Into its key's lane, in stream order behind the lane's active job (a
 * redelivered older message goes before newer ones not yet sent); sent
 * when it heads the lane. A message without a key goes at once. */
static void lane_add(struct out_state *st, struct job *j)
{
	if (!j->key[0]) {
		send_job(st, j);
		return;
	}
	struct lane *l = lane_get(st, j->key);
	if (!l) {
		drop_job(st, j, true);
		return;
	}
	for (struct job *o = l->head; o && l->tail->seq >= j->seq; o = o->lnext)
		if (o->seq == j->seq) {
			/* A redelivery of a message this bridge holds. */
			atomic_fetch_add(&st->duplicates_dropped, 1);
			drop_job(st, j, false);
			return;
		}
	j->lane = l;
	if (!l->head) {
		l->head = l->tail = j;
		send_job(st, j);
		return;
	}
	struct job *at = l->tail->seq < j->seq ? l->tail : l->head;
	while (at->lnext && at->lnext->seq < j->seq)
		at = at->lnext;
	j->lnext = at->lnext;
	at->lnext = j;
	if (!j->lnext)
		l->tail = j;
}

static int by_seq(const void *a, const void *b)
{
	const struct job *x = *(const struct job *const *)a;
	const struct job *y = *(const struct job *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The resume phase (a consumer left with unacked messages by a previous
 * owner) ends when every one of them was redelivered here, or after twice
 * AckWait: then every message parked meanwhile, old and new, joins its
 * lane in stream order. */
static void resume_check(struct out_state *st)
{
	if (!st->resume_need || (st->resume_got < st->resume_need &&
				 bridge_now_ms() < st->resume_deadline_ms))
		return;
	if (st->resume_got < st->resume_need)
		bridge_log("resume: %" PRIu64 " of %" PRIu64
			   " messages left unacked by a previous owner came "
			   "back within twice AckWait; going on",
			   st->resume_got, st->resume_need);
	st->resume_need = 0;
	struct job **v = malloc(st->parked * sizeof(*v));
	size_t n = 0;
	for (struct job *j = st->park_head, *next; j; j = next) {
		next = j->qnext;
		if (v)
			v[n++] = j;
		else
			lane_add(st, j); /* out of memory: arrival order */
	}
	st->park_head = st->park_tail = NULL;
	st->parked = 0;
	if (!v)
		return;
	qsort(v, n, sizeof(*v), by_seq);
	for (size_t i = 0; i < n; i++)
		lane_add(st, v[i]);
	free(v);
}

/* A new message from JetStream. */
static void on_new(struct out_state *st, struct job *j)
{
	jsMsgMetaData *meta = NULL;
	if (natsMsg_GetMetaData(&meta, j->nm) == NATS_OK) {
		j->seq = meta->Sequence.Stream;
		if (meta->NumDelivered > 1)
			atomic_fetch_add(&st->redelivered, 1);
		jsMsgMetaData_Destroy(meta);
	}
	atomic_fetch_add(&st->received, 1);
	atomic_fetch_add(&st->held_jobs, 1);
	j->next = st->all;
	if (st->all)
		st->all->prev = j;
	st->all = j;
	if (atomic_load(&st->draining)) {
		drop_job(st, j, true);
		return;
	}
	j->progress_at_ms = bridge_now_ms();
	struct mllp_backoff_config bc;
	mllp_backoff_config_init(&bc);
	bc.backoff_max_s = st->oo->retry_max_s;
	mllp_backoff_init(&j->bo, &bc);
	job_key(st, j);
	if (st->resume_need) {
		/* Parked until the previous owner's messages are all back,
		 * then started in stream order (redeliveries come in the
		 * order of their Naks or AckWait expiries, not of the
		 * stream). */
		if (j->seq <= st->resume_until)
			st->resume_got++;
		j->qnext = NULL;
		if (st->park_tail)
			st->park_tail->qnext = j;
		else
			st->park_head = j;
		st->park_tail = j;
		st->parked++;
	} else {
		lane_add(st, j);
	}
	resume_check(st);
}

/* Copy a header value, CR and LF written as \r and \n. */
static void header_text(const unsigned char *s, size_t len, char *out,
			size_t cap)
{
	size_t at = 0;
	for (size_t i = 0; i < len && at + 3 < cap; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			out[at++] = '\\';
			out[at++] = s[i] == '\r' ? 'r' : 'n';
		} else {
			out[at++] = (char)s[i];
		}
	}
	out[at] = 0;
}

/* AE/AR with --on-reject dead-letter: publish the message with the ACK
 * and the reason, then Term it. false when the publish failed. */
static bool dead_letter(struct out_state *st, struct job *j,
			const struct mllp_result *r)
{
	natsMsg *dm = NULL;
	char ack[2048], code[8];
	header_text(r->reply, r->reply_len, ack, sizeof(ack));
	header_text((const unsigned char *)r->ack.code.ptr, r->ack.code.len,
		    code, sizeof(code));
	natsStatus s = natsMsg_Create(&dm, st->oo->dead_letter, NULL,
				      natsMsg_GetData(j->nm),
				      natsMsg_GetDataLength(j->nm));
	if (s == NATS_OK)
		s = natsMsgHeader_Set(dm, BRIDGE_H_CODE, code);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(dm, BRIDGE_H_REASON,
				      r->has_verdict
					  ? r->why
					  : "not HL7: the reply cannot be "
					    "verified as an ACK");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(dm, BRIDGE_H_ACK, ack);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(dm, "Mllp-Subject",
				      natsMsg_GetSubject(j->nm));
	jsErrCode jerr = 0;
	if (s == NATS_OK)
		s = js_PublishMsg(NULL, st->n.js, dm, NULL, &jerr);
	natsMsg_Destroy(dm);
	if (s != NATS_OK) {
		fail_log(st,
			 "cannot publish stream message %" PRIu64
			 " to the dead-letter subject '%s' (is it in a "
			 "stream?): %s; retrying",
			 j->seq, st->oo->dead_letter, nats_GetLastError(NULL));
		return false;
	}
	natsMsg_Term(j->nm, NULL);
	atomic_fetch_add(&st->dead_lettered, 1);
	return true;
}

/* The pool's answer for a job. */
static void on_done_job(struct out_state *st, struct job *j)
{
	const struct mllp_result *r = mllp_future_result(j->f);
	j->in_pool = false;
	bool draining = atomic_load(&st->draining);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT) {
		natsMsg_Ack(j->nm, NULL);
		atomic_fetch_add(&st->delivered, 1);
		finish_job(st, j);
		return;
	}
	/* A message that is not HL7 gets a reply that cannot be verified:
	 * rejected as AE/AR are. */
	bool reject = r->status == 0 && (!r->has_verdict ||
					 r->verdict == MLLP_APPLICATION_ERROR ||
					 r->verdict == MLLP_APPLICATION_REJECT);
	if (reject && st->oo->hold) {
		bridge_log("lane %s held at stream message %" PRIu64
			   ": %s (--on-reject hold: nothing after it is "
			   "delivered)",
			   j->key[0] ? j->key : "(no key)", j->seq, r->why);
		j->held = true;
		atomic_fetch_add(&st->lanes_held, 1);
	} else if (reject) {
		if (dead_letter(st, j, r)) {
			finish_job(st, j);
			return;
		}
		j->dead_letter_due = true; /* keeps j->f: the ACK */
		schedule_retry(st, j);
		return;
	} else if (!draining) {
		char e[300];
		if (r->status != 0)
			mllp_error_format(&r->error, e, sizeof(e));
		else
			snprintf(e, sizeof(e), "%s", r->why);
		fail_log(st,
			 "delivery of stream message %" PRIu64
			 " to %s:%u failed: %s; retrying in %" PRIu64 " ms",
			 j->seq, st->oo->to_host, st->oo->to_port, e,
			 mllp_backoff_peek(&j->bo));
		schedule_retry(st, j);
	}
	mllp_future_free(j->f);
	j->f = NULL;
	if (draining && !j->in_pool) {
		if (j->lane)
			release_lane(st, j->lane);
		else
			drop_job(st, j, true);
	}
}

/* Retries that are due, and InProgress for every held job every
 * AckWait/3. */
static void timers(struct out_state *st)
{
	int64_t now = bridge_now_ms(), every = st->ack_wait_ms / 3;
	resume_check(st);
	for (struct job *j = st->all, *next; j; j = next) {
		next = j->next;
		if (now - j->progress_at_ms >= every) {
			natsMsg_InProgress(j->nm, NULL);
			j->progress_at_ms = now;
			atomic_fetch_add(&st->in_progress, 1);
		}
		if (!j->retry_at_ms || now < j->retry_at_ms || j->in_pool ||
		    atomic_load(&st->draining))
			continue;
		j->retry_at_ms = 0;
		if (!j->dead_letter_due) {
			send_job(st, j);
		} else if (dead_letter(st, j, mllp_future_result(j->f))) {
			finish_job(st, j);
		} else {
			schedule_retry(st, j);
		}
	}
}

/* Draining: every job not in the pool is released, lane by lane. */
static void drain_idle(struct out_state *st)
{
	st->park_head = st->park_tail = NULL; /* released with the rest */
	st->parked = 0;
	st->resume_need = 0;
	for (struct job *j = st->all, *next; j; j = next) {
		next = j->next;
		if (j->in_pool)
			continue;
		if (!j->lane) {
			drop_job(st, j, true);
			continue;
		}
		if (j->lane->head && j->lane->head->in_pool)
			continue;
		struct lane *l = j->lane;
		/* next may be freed with the lane: start over. */
		release_lane(st, l);
		next = st->all;
	}
}

static void *worker(void *arg)
{
	struct out_state *st = arg;
	bool drained = false;
	int64_t last_timers = 0;
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (!st->qhead && !st->quit) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&st->wake, &st->lock, &ts);
		}
		if (st->quit && !st->qhead)
			break;
		struct job *q = st->qhead;
		st->qhead = st->qtail = NULL;
		pthread_mutex_unlock(&st->lock);
		while (q) {
			struct job *j = q;
			q = q->qnext;
			if (j->ev == EV_NEW)
				on_new(st, j);
			else
				on_done_job(st, j);
		}
		if (atomic_load(&st->draining) && !drained) {
			drain_idle(st);
			drained = true;
		}
		/* Timers walk every held job: at most every 50 ms, not per
		 * event. */
		if (bridge_now_ms() - last_timers >= 50) {
			timers(st);
			last_timers = bridge_now_ms();
		}
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* Bind the consumer (mllp-bridge-nats.c); a consumer left with unacked
 * messages and no bridge bound starts the resume phase. */
static int subscribe(struct out_state *st)
{
	struct bridge_consumer_info ci;
	int code = bridge_consumer_bind(&st->n, st->no->stream, st->oo, on_msg,
					st, &st->sub, &ci);
	if (code != 0)
		return code;
	st->ack_wait_ms = ci.ack_wait_ms;
	if (!ci.push_bound && ci.ack_pending > 0) {
		st->resume_need = ci.ack_pending;
		st->resume_until = ci.delivered_stream_seq;
		st->resume_deadline_ms = bridge_now_ms() + 2 * st->ack_wait_ms;
		bridge_log(
		    "resume: %" PRIu64 " messages of consumer '%s' were "
		    "left unacked by a previous owner; newer messages "
		    "wait until they are redelivered (at most %" PRId64 " ms)",
		    ci.ack_pending, st->oo->consumer, 2 * st->ack_wait_ms);
	}
	return 0;
}

static int start_pool(struct out_state *st)
{
	struct bridge_out_opts *oo = st->oo;
	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.log = tool_log;
	pc.log_ctx = (void *)BRIDGE_PROG;
	pc.conn.queue_timeout_ms = MLLP_INFINITE; /* wait for a connection */
	pc.conn.reply_timeout_ms = oo->reply_timeout_ms;
	pc.conn.backoff_max_s = oo->retry_max_s;
	pc.conn.tls = oo->tls_enabled ? &oo->tls : NULL;
	struct mllp_error err;
	int rc = mllp_pool_create(&pc, &st->pool, &err);
	if (rc == 0)
		rc = mllp_pool_add_endpoint(st->pool, oo->to_host, oo->to_port,
					    oo->connections, NULL, &st->ep,
					    &err);
	if (rc == 0)
		return 0;
	char e[300];
	mllp_error_format(&err, e, sizeof(e));
	bridge_log("%s", e);
	return BRIDGE_EXIT_RUNTIME;
}

/* SIGTERM: stop taking (the subscription drains into the worker, which
 * releases what is not in flight), wait up to --drain-timeout for the
 * messages in flight, then stop the pool (what is still in flight fails
 * and is released). */
static void drain(struct out_state *st)
{
	atomic_store(&st->draining, true);
	natsSubscription_Drain(st->sub);
	natsSubscription_WaitForDrainCompletion(st->sub, 5000);
	int64_t end = bridge_now_ms() + st->oo->drain_timeout_ms;
	while (atomic_load(&st->held_jobs) > 0 && bridge_now_ms() < end)
		nats_Sleep(10);
	mllp_pool_stop(st->pool);
	end = bridge_now_ms() + 5000;
	while (atomic_load(&st->held_jobs) > 0 && bridge_now_ms() < end)
		nats_Sleep(10);
	natsConnection_FlushTimeout(st->n.nc, 2000);
}

static void print_counters(struct out_state *st)
{
	printf("received=%" PRIu64 "\ndelivered=%" PRIu64
	       "\ndead_lettered=%" PRIu64 "\nlanes_held=%" PRIu64
	       "\nretries=%" PRIu64 "\nredelivered=%" PRIu64
	       "\nduplicates_dropped=%" PRIu64 "\nreleased=%" PRIu64
	       "\nin_progress=%" PRIu64 "\n",
	       atomic_load(&st->received), atomic_load(&st->delivered),
	       atomic_load(&st->dead_lettered), atomic_load(&st->lanes_held),
	       atomic_load(&st->retries), atomic_load(&st->redelivered),
	       atomic_load(&st->duplicates_dropped), atomic_load(&st->released),
	       atomic_load(&st->in_progress));
	fflush(stdout);
}

int bridge_out_run(const struct bridge_nats_opts *no,
		   struct bridge_out_opts *oo, int sig_fd)
{
	static struct out_state st;
	st.no = no;
	st.oo = oo;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.wake, NULL);
	/* Acks need no haste: gathered, they cost a write per millisecond
	 * instead of one per message. */
	int code = bridge_nats_connect(no, NULL, false, &st.n);
	if (code == 0)
		code = bridge_stream_ensure(no, &st.n);
	if (code == 0)
		code = start_pool(&st);
	struct bridge_metrics *mh = NULL;
	const struct bridge_out_counters mc = {
	    &st.received,	    &st.delivered, &st.dead_lettered,
	    &st.lanes_held,	    &st.retries,   &st.redelivered,
	    &st.duplicates_dropped, &st.released,  &st.in_progress,
	    &st.held_jobs};
	if (code == 0)
		code = bridge_metrics_out_start(oo->metrics, &mc, &st.n,
						st.pool, &mh);
	if (code == 0) /* --exclusive: a standby until the consumer is ours */
		code = bridge_lease_acquire(&st.n, no, oo, sig_fd);
	pthread_t th;
	bool worker_up = false;
	if (code == 0)
		code =
		    subscribe(&st); /* messages queue until the worker runs */
	if (code == 0) {
		worker_up = pthread_create(&th, NULL, worker, &st) == 0;
		if (!worker_up)
			code = BRIDGE_EXIT_RUNTIME;
	}
	if (code == 0) {
		printf("consuming %s/%s\n", no->stream, oo->consumer);
		fflush(stdout);
		bridge_wait_signal(sig_fd, -1);
		drain(&st);
	} else {
		atomic_store(&st.draining, true);
		mllp_pool_stop(st.pool);
	}
	if (worker_up) {
		pthread_mutex_lock(&st.lock);
		st.quit = true;
		pthread_cond_signal(&st.wake);
		pthread_mutex_unlock(&st.lock);
		pthread_join(th, NULL);
	}
	bridge_lease_release();
	bridge_metrics_stop(mh);
	natsSubscription_Destroy(st.sub);
	bridge_nats_close(&st.n);
	mllp_pool_destroy(st.pool);
	if (code == 0 || code == BRIDGE_STOPPED)
		print_counters(&st);
	return code == BRIDGE_STOPPED ? 0 : code;
}

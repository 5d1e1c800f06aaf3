/* mllp-bridge in: MLLP -> JetStream.
 *
 * The receiver's dispatcher (its manager thread) parses each message,
 * builds the subject, the de-duplication id and the headers, defers the
 * reply and publishes asynchronously. The reply is given when JetStream
 * answers: AA after the PubAck (a duplicate too), AE with the reason when
 * JetStream refuses the message, when NATS is not connected, or when no
 * PubAck arrives within --publish-timeout (or no reply at all with
 * --on-unavailable no-reply). Nothing is acknowledged that is not stored.
 * The receiver sends the replies of a connection in arrival order.
 *
 * Publishes awaiting their PubAck are kept in a FIFO (oldest first): the
 * PubAck handler (the JetStream context's thread) finds its entry there by
 * the natsMsg pointer, usually at the head. A reaper thread answers
 * entries older than the timeout; it then takes the JetStream context's
 * whole pending list (js_PublishAsyncGetPendingList), so that publishes
 * that will never be answered (a restarted server) do not hold the
 * context's MaxPending window forever. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "mllp-bridge.h"

struct in_entry {
	struct in_entry *prev, *next;
	natsMsg *nm; /* identity only once published: owned by the context */
	struct mllp_reply_handle *h;
	int64_t t0_ms;
	size_t msh_len;
	char msh[]; /* the MSH segment, to build the ACK */
};

struct in_state {
	const struct bridge_nats_opts *no;
	struct bridge_in_opts *io;
	struct bridge_nats n;
	struct mllp_receiver *recv;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct in_entry *head, *tail; /* awaiting their PubAck, oldest first */
	_Atomic uint64_t pending; /* written under lock; --metrics reads it */
	bool stop;
	_Atomic bool draining;
	_Atomic uint64_t ack_seq;
	/* counters */
	_Atomic uint64_t received, stored, duplicates, refused, timed_out,
	    unavailable, rejected, replies_lost;
};

static void unlink_locked(struct in_state *st, struct in_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		st->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		st->tail = e->prev;
	e->prev = e->next = NULL;
	st->pending--;
}

/* Find and unlink the entry of nm; NULL when already answered. */
static struct in_entry *take(struct in_state *st, const natsMsg *nm)
{
	pthread_mutex_lock(&st->lock);
	struct in_entry *e = st->head;
	while (e && e->nm != nm)
		e = e->next;
	if (e)
		unlink_locked(st, e);
	pthread_mutex_unlock(&st->lock);
	return e;
}

/* Answer an entry (code "AA", or AE with text) and free it. Any thread. */
static void finish(struct in_state *st, struct in_entry *e, const char *code,
		   const char *text)
{
	bool accept = strcmp(code, "AA") == 0;
	if (!accept && st->io->no_reply_unavailable) {
		mllp_receiver_reply(e->h, NULL, 0);
		free(e);
		return;
	}
	struct mllp_ack_options ao;
	mllp_ack_options_init(&ao);
	ao.code = code;
	ao.text = text;
	ao.sequence = atomic_fetch_add(&st->ack_seq, 1);
	/* The reply is copied by mllp_receiver_reply: the usual ACK is built
	 * on the stack. */
	char local[1024];
	size_t cap = e->msh_len + 512 + (text ? 2 * strlen(text) : 0), len = 0;
	char *buf = cap <= sizeof(local) ? local : malloc(cap);
	int rc = buf ? mllp_ack_build(e->msh, e->msh_len, &ao, buf, cap, &len)
		     : MLLP_ERR_NO_MEMORY;
	if (rc == 0)
		rc = mllp_receiver_reply(e->h, buf, len);
	else
		mllp_receiver_reply(e->h, NULL, 0);
	if (rc != 0)
		atomic_fetch_add(&st->replies_lost, 1);
	if (buf != local)
		free(buf);
	free(e);
}

/* The PubAck handler: JetStream's answer to one publish. */
static void on_puback(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae,
		      void *closure)
{
	(void)js;
	struct in_state *st = closure;
	struct in_entry *e = take(st, nm);
	if (e && pa) {
		atomic_fetch_add(pa->Duplicate ? &st->duplicates : &st->stored,
				 1);
		finish(st, e, "AA", NULL);
	} else if (e) {
		char why[300];
		snprintf(why, sizeof(why),
			 "not stored: JetStream refused the message: %s",
			 pae && pae->ErrText ? pae->ErrText
			 : pae		     ? natsStatus_GetText(pae->Err)
					     : "no answer");
		atomic_fetch_add(&st->refused, 1);
		bridge_log("%s", why);
		finish(st, e, "AE", why);
	}
	natsMsg_Destroy(nm);
}

/* Headers: the key digest, MSH fields, the peer. */
static natsStatus set_headers(natsMsg *nm, const struct mllp_hl7_msg *m,
			      const char *digest,
			      const struct mllp_message *msg)
{
	struct {
		const char *name;
		struct mllp_str v;
	} f[] = {{BRIDGE_H_MSH3, m->sending_app},
		 {BRIDGE_H_MSH4, m->sending_facility},
		 {BRIDGE_H_MSH9, m->message_type},
		 {BRIDGE_H_MSH10, m->control_id}};
	natsStatus s = natsMsgHeader_Set(nm, BRIDGE_H_KEY, digest);
	for (size_t i = 0; s == NATS_OK && i < sizeof(f) / sizeof(f[0]); i++) {
		char v[256];
		size_t n =
		    f[i].v.len < sizeof(v) - 1 ? f[i].v.len : sizeof(v) - 1;
		if (n)
			memcpy(v, f[i].v.ptr, n);
		v[n] = 0;
		s = natsMsgHeader_Set(nm, f[i].name, v);
	}
	char peer[MLLP_ADDRESS_MAX + 8];
	snprintf(peer, sizeof(peer),
		 strchr(msg->conn->peer_address, ':') ? "[%s]:%u" : "%s:%u",
		 msg->conn->peer_address, msg->conn->peer_port);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, BRIDGE_H_PEER, peer);
	return s;
}

/* A synchronous refusal from the dispatcher: AE (or no reply), counted. */
static void refuse_now(struct in_state *st, struct mllp_reply *reply,
		       const char *why)
{
	atomic_fetch_add(&st->unavailable, 1);
	if (st->io->no_reply_unavailable)
		return; /* kind NONE */
	reply->kind = MLLP_REPLY_ACK;
	reply->ack_code = "AE";
	reply->ack_text = why;
}

/* Publish one parsed message with its entry already queued; on a
 * synchronous failure the entry is answered here. */
static void publish(struct in_state *st, struct in_entry *e, natsMsg *nm,
		    const char *msg_id)
{
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = msg_id;
	po.ExpectStream = st->no->stream;
	natsStatus s = js_PublishMsgAsync(st->n.js, &nm, &po);
	if (s == NATS_OK)
		return;
	natsMsg_Destroy(nm);
	if (!take(st, e->nm))
		return;
	char why[300];
	snprintf(why, sizeof(why), "not stored: JetStream publish failed: %s%s",
		 natsStatus_GetText(s),
		 s == NATS_TIMEOUT ? " (too many publishes awaiting "
				     "JetStream: --max-pending)"
				   : "");
	atomic_fetch_add(&st->unavailable, 1);
	bridge_log("%s", why);
	finish(st, e, "AE", why);
}

/* Build the NATS message and its entry, defer the reply, publish. */
static void dispatch_hl7(struct in_state *st, const struct mllp_message *msg,
			 const struct mllp_hl7_msg *m, struct mllp_reply *reply)
{
	struct bridge_in_opts *io = st->io;
	char digest[33], id[33], subject[512];
	bridge_key_digest(bridge_field_get(m, &io->key), digest);
	bridge_msg_id(m, id);
	if (bridge_subject(&io->subject, m,
			   bridge_partition(digest, io->partitions), subject,
			   sizeof(subject)) < 0) {
		reply->kind = MLLP_REPLY_ACK;
		reply->ack_code = "AR";
		reply->ack_text = "the subject built from this message is "
				  "longer than 511 bytes";
		atomic_fetch_add(&st->rejected, 1);
		return;
	}
	natsMsg *nm = NULL;
	struct in_entry *e = malloc(sizeof(*e) + m->msh.len + 1);
	natsStatus s =
	    e ? natsMsg_Create(&nm, subject, NULL, (const char *)msg->data,
			       (int)msg->len)
	      : NATS_NO_MEMORY;
	if (s == NATS_OK)
		s = set_headers(nm, m, digest, msg);
	if (s != NATS_OK || !(e->h = mllp_reply_defer(reply))) {
		natsMsg_Destroy(nm);
		free(e);
		refuse_now(st, reply, "not stored: out of memory");
		return;
	}
	e->nm = nm;
	e->t0_ms = bridge_now_ms();
	e->msh_len = m->msh.len + 1;
	memcpy(e->msh, m->msh.ptr, m->msh.len);
	e->msh[m->msh.len] = '\r';
	e->next = NULL;
	pthread_mutex_lock(&st->lock);
	e->prev = st->tail;
	if (st->tail)
		st->tail->next = e;
	else
		st->head = e;
	st->tail = e;
	st->pending++;
	pthread_mutex_unlock(&st->lock);
	publish(st, e, nm, id);
}

/* The receiver's dispatcher (manager thread). */
static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct in_state *st = ctx;
	atomic_fetch_add(&st->received, 1);
	struct mllp_hl7_msg m;
	if (msg->kind != MLLP_MSG_HL7 ||
	    mllp_hl7_parse(&m, msg->data, msg->len) != 0) {
		/* mllp_ack_build answers AR "not parsable" with the reason. */
		reply->kind = MLLP_REPLY_ACK;
		reply->ack_code = "AR";
		atomic_fetch_add(&st->rejected, 1);
		return;
	}
	if (m.control_id.len == 0) {
		reply->kind = MLLP_REPLY_ACK;
		reply->ack_code = "AR";
		reply->ack_text = "empty MSH-10 (message control id): the "
				  "message cannot be de-duplicated";
		atomic_fetch_add(&st->rejected, 1);
		return;
	}
	if (atomic_load(&st->draining)) {
		refuse_now(st, reply,
			   "not stored: the bridge is shutting down");
		return;
	}
	if (natsConnection_Status(st->n.nc) != NATS_CONN_STATUS_CONNECTED) {
		refuse_now(st, reply,
			   "not stored: NATS is not connected (JetStream "
			   "unavailable)");
		return;
	}
	dispatch_hl7(st, msg, &m, reply);
}

/* Answer everything older than the publish timeout (see the top). */
static void expire(struct in_state *st)
{
	int64_t now = bridge_now_ms(), limit = st->io->publish_timeout_ms;
	pthread_mutex_lock(&st->lock);
	bool late = st->head && now - st->head->t0_ms >= limit;
	pthread_mutex_unlock(&st->lock);
	if (!late)
		return;
	char why[200];
	snprintf(why, sizeof(why),
		 "not stored: JetStream did not acknowledge within %" PRId64
		 " ms (--publish-timeout)",
		 limit);
	bridge_log("%s", why);
	natsMsgList pl = {NULL, 0};
	if (js_PublishAsyncGetPendingList(&pl, st->n.js) == NATS_OK) {
		for (int i = 0; i < pl.Count; i++) {
			struct in_entry *e = take(st, pl.Msgs[i]);
			if (e) {
				atomic_fetch_add(&st->timed_out, 1);
				finish(st, e, "AE", why);
			}
		}
		natsMsgList_Destroy(&pl);
	}
	/* Entries the context no longer holds (its handler is about to run,
	 * or never will): answered at twice the limit. */
	for (;;) {
		pthread_mutex_lock(&st->lock);
		struct in_entry *e = st->head;
		if (e && now - e->t0_ms >= 2 * limit)
			unlink_locked(st, e);
		else
			e = NULL;
		pthread_mutex_unlock(&st->lock);
		if (!e)
			break;
		atomic_fetch_add(&st->timed_out, 1);
		finish(st, e, "AE", why);
	}
}

static void *reaper(void *arg)
{
	struct in_state *st = arg;
	int64_t tick = st->io->publish_timeout_ms / 4;
	if (tick < 5)
		tick = 5;
	if (tick > 200)
		tick = 200;
	pthread_mutex_lock(&st->lock);
	while (!st->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)tick * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&st->wake, &st->lock, &ts);
		pthread_mutex_unlock(&st->lock);
		expire(st);
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static int start_receiver(struct in_state *st)
{
	struct bridge_in_opts *io = st->io;
	struct mllp_receiver_config *c = &io->recv.cfg;
	c->dispatch = dispatch;
	c->dispatch_ctx = st;
	/* Each publish in flight is answered within publish_timeout_ms. */
	c->stop_drain_ms = (uint32_t)io->publish_timeout_ms + 1000;
	c->log = tool_log;
	c->log_ctx = (void *)BRIDGE_PROG;
	struct mllp_error err;
	if (mllp_receiver_create(c, &st->recv, &err) != 0) {
		char ebuf[300];
		mllp_error_format(&err, ebuf, sizeof(ebuf));
		bridge_log("%s", ebuf);
		return BRIDGE_EXIT_RUNTIME;
	}
	const char *addr = mllp_receiver_address(st->recv);
	printf(strchr(addr, ':') ? "listening on [%s]:%u\n"
				 : "listening on %s:%u\n",
	       addr, mllp_receiver_port(st->recv));
	fflush(stdout);
	return 0;
}

/* SIGTERM: refuse new messages (AE), wait up to 30 s for the PubAcks and
 * for the replies to be written, then stop the receiver. */
/* The receiver's stop drains: it stops reading at once and writes every
 * answer of a publish in flight as its PubAck (or its timeout) comes, for
 * up to stop_drain_ms (start_receiver). A frame dispatched meanwhile is
 * refused. */
static void drain(struct in_state *st)
{
	atomic_store(&st->draining, true);
	mllp_receiver_stop(st->recv);
}

static void print_counters(struct in_state *st)
{
	printf("received=%" PRIu64 "\nstored=%" PRIu64 "\nduplicates=%" PRIu64
	       "\nrefused=%" PRIu64 "\ntimed_out=%" PRIu64
	       "\nunavailable=%" PRIu64 "\nrejected=%" PRIu64
	       "\nreplies_lost=%" PRIu64 "\n",
	       atomic_load(&st->received), atomic_load(&st->stored),
	       atomic_load(&st->duplicates), atomic_load(&st->refused),
	       atomic_load(&st->timed_out), atomic_load(&st->unavailable),
	       atomic_load(&st->rejected), atomic_load(&st->replies_lost));
	fflush(stdout);
}

int bridge_in_run(const struct bridge_nats_opts *no, struct bridge_in_opts *io,
		  int sig_fd)
{
	static struct in_state st;
	st.no = no;
	st.io = io;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.wake, NULL);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = io->max_pending;
	jo.PublishAsync.AckHandler = on_puback;
	jo.PublishAsync.AckHandlerClosure = &st;
	jo.PublishAsync.StallWait = 1;
	int code = bridge_nats_connect(no, &jo, true, &st.n);
	if (code == 0)
		code = bridge_stream_ensure(no, &st.n);
	pthread_t th;
	if (code == 0 && pthread_create(&th, NULL, reaper, &st) != 0)
		code = BRIDGE_EXIT_RUNTIME;
	if (code != 0) {
		bridge_nats_close(&st.n);
		return code;
	}
	code = start_receiver(&st);
	struct bridge_metrics *mh = NULL;
	const struct bridge_in_counters mc = {
	    &st.received, &st.stored,	    &st.duplicates,
	    &st.refused,  &st.timed_out,    &st.unavailable,
	    &st.rejected, &st.replies_lost, &st.pending};
	if (code == 0)
		code = bridge_metrics_in_start(io->metrics, &mc, &st.n, st.recv,
					       &mh);
	if (code == 0) {
		bridge_wait_signal(sig_fd, -1);
		drain(&st);
	}
	bridge_metrics_stop(mh);
	pthread_mutex_lock(&st.lock);
	st.stop = true;
	pthread_cond_signal(&st.wake);
	pthread_mutex_unlock(&st.lock);
	pthread_join(th, NULL);
	bridge_nats_close(&st.n);
	/* Entries never answered (drain timed out) are answered now: their
	 * connections are closed, the replies return MLLP_ERR_CLOSED. */
	while (st.head) {
		struct in_entry *e = st.head;
		unlink_locked(&st, e);
		finish(&st, e, "AE", "not stored: the bridge stopped");
	}
	mllp_receiver_destroy(st.recv);
	if (code == 0)
		print_counters(&st);
	return code;
}

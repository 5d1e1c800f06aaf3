/* Ordered lanes of the pool on loopback, once per backend: order per key
 * across connections, hold and release (retry, skip), the retry policy,
 * key_field extraction and its errors, the bound on lanes, cancel, stop
 * and removal with messages waiting in a lane. The receiver is the
 * library's, with a dispatcher that records arrivals, rejects or holds
 * back replies by MSH-10 prefix. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "common.h"

#define MAX_ARRIVALS 4096
#define MAX_DEFER    16

/* The receiver's side: MSH-10 "R..." is answered AE the first time it
 * arrives (AA later), "X..." always AE, "D..." is held back until the
 * test answers it (lx_answer), anything else AA. Arrivals are recorded
 * by MSH-10. */
struct lx {
	struct mllp_receiver *rcv;
	uint16_t port;
	pthread_mutex_t mu;
	char arrived[MAX_ARRIVALS][24];
	int n;
	struct mllp_reply_handle *deferred[MAX_DEFER];
	char deferred_ack[MAX_DEFER][512];
	size_t deferred_len[MAX_DEFER];
	char deferred_id[MAX_DEFER][24];
	int ndefer;
	/* "Kkk.sss": answered by the shuffler thread in random order;
	 * overlaps counts arrivals of sss before kk.(sss-1) was answered. */
	struct shuf_entry {
		struct mllp_reply_handle *h;
		int k, s;
		char ack[512];
		size_t len;
	} shuf[64];
	int nshuf;
	bool replied[20][40];
	_Atomic int overlaps;
	pthread_t shuffler;
	_Atomic bool stop;
	uint64_t rnd;
};

static bool lx_seen_locked(struct lx *x, const char *id, int before)
{
	for (int i = 0; i < before; i++)
		if (strcmp(x->arrived[i], id) == 0)
			return true;
	return false;
}

static void lx_dispatch(void *ctx, const struct mllp_message *msg,
			struct mllp_reply *reply)
{
	struct lx *x = ctx;
	struct mllp_hl7_msg m;
	char id[24] = "";
	if (mllp_hl7_parse(&m, msg->data, msg->len) == 0)
		snprintf(id, sizeof(id), "%.*s", (int)m.control_id.len,
			 m.control_id.ptr);
	pthread_mutex_lock(&x->mu);
	bool again = lx_seen_locked(x, id, x->n);
	if (x->n < MAX_ARRIVALS)
		snprintf(x->arrived[x->n++], sizeof(x->arrived[0]), "%s", id);
	reply->kind = MLLP_REPLY_ACK;
	if ((id[0] == 'R' && !again) || id[0] == 'X')
		reply->ack_code = "AE";
	int k, s;
	if (id[0] == 'K' && sscanf(id, "K%d.%d", &k, &s) == 2 && k < 20 &&
	    s < 40 && x->nshuf < 64) {
		if (s > 0 && !x->replied[k][s - 1])
			atomic_fetch_add(&x->overlaps, 1);
		struct shuf_entry *e = &x->shuf[x->nshuf++];
		struct mllp_ack_options ao;
		mllp_ack_options_init(&ao);
		mllp_ack_build(msg->data, msg->len, &ao, e->ack, sizeof(e->ack),
			       &e->len);
		e->k = k;
		e->s = s;
		e->h = mllp_reply_defer(reply);
	}
	if (id[0] == 'D' && x->ndefer < MAX_DEFER) {
		int k = x->ndefer++;
		struct mllp_ack_options ao;
		mllp_ack_options_init(&ao);
		mllp_ack_build(msg->data, msg->len, &ao, x->deferred_ack[k],
			       sizeof(x->deferred_ack[k]), &x->deferred_len[k]);
		snprintf(x->deferred_id[k], sizeof(x->deferred_id[k]), "%s",
			 id);
		x->deferred[k] = mllp_reply_defer(reply);
	}
	pthread_mutex_unlock(&x->mu);
}

/* Answer the held-back "K" messages in random order. */
static void *lx_shuffler(void *arg)
{
	struct lx *x = arg;
	while (!atomic_load(&x->stop)) {
		pthread_mutex_lock(&x->mu);
		if (x->nshuf == 0) {
			pthread_mutex_unlock(&x->mu);
			sched_yield();
			continue;
		}
		x->rnd = x->rnd * 6364136223846793005ull + 1;
		int i = (int)((x->rnd >> 33) % (uint64_t)x->nshuf);
		struct shuf_entry e = x->shuf[i];
		x->shuf[i] = x->shuf[--x->nshuf];
		x->replied[e.k][e.s] = true; /* before the reply leaves */
		pthread_mutex_unlock(&x->mu);
		mllp_receiver_reply(e.h, e.ack, e.len);
	}
	return NULL;
}

static void lx_start(struct lx *x)
{
	memset(x, 0, sizeof(*x));
	pthread_mutex_init(&x->mu, NULL);
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, lx_dispatch, x);
	assert_int_equal(mllp_receiver_create(&rc, &x->rcv, NULL), 0);
	x->port = mllp_receiver_port(x->rcv);
	x->rnd = 99;
	assert_int_equal(pthread_create(&x->shuffler, NULL, lx_shuffler, x), 0);
}

/* Answer the held-back message id (AA). */
static void lx_answer(struct lx *x, const char *id)
{
	pthread_mutex_lock(&x->mu);
	for (int k = 0; k < x->ndefer; k++) {
		if (x->deferred[k] && strcmp(x->deferred_id[k], id) == 0) {
			mllp_receiver_reply(x->deferred[k], x->deferred_ack[k],
					    x->deferred_len[k]);
			x->deferred[k] = NULL;
		}
	}
	pthread_mutex_unlock(&x->mu);
}

static void lx_stop(struct lx *x)
{
	atomic_store(&x->stop, true);
	pthread_join(x->shuffler, NULL);
	pthread_mutex_lock(&x->mu);
	for (int i = 0; i < x->nshuf; i++)
		mllp_receiver_reply(x->shuf[i].h, NULL, 0);
	for (int k = 0; k < x->ndefer; k++)
		if (x->deferred[k])
			mllp_receiver_reply(x->deferred[k], NULL, 0);
	pthread_mutex_unlock(&x->mu);
	mllp_receiver_destroy(x->rcv);
	pthread_mutex_destroy(&x->mu);
}

/* How many times id arrived. */
static int lx_count(struct lx *x, const char *id)
{
	pthread_mutex_lock(&x->mu);
	int c = 0;
	for (int i = 0; i < x->n; i++)
		c += strcmp(x->arrived[i], id) == 0;
	pthread_mutex_unlock(&x->mu);
	return c;
}

struct lx_wait {
	struct lx *x;
	const char *id;
};

static bool lx_has(void *arg)
{
	struct lx_wait *w = arg;
	return lx_count(w->x, w->id) > 0;
}

static void lx_wait_arrival(struct lx *x, const char *id)
{
	struct lx_wait w = {x, id};
	assert_true(tr_wait_until(lx_has, &w, 5000));
}

/* The order in which ids of the given prefix first arrived, joined by
 * spaces, into out. */
static void lx_order(struct lx *x, const char *prefix, char *out, size_t cap)
{
	out[0] = 0;
	pthread_mutex_lock(&x->mu);
	size_t pl = strlen(prefix), used = 0;
	for (int i = 0; i < x->n; i++) {
		if (strncmp(x->arrived[i], prefix, pl) != 0)
			continue;
		int w = snprintf(out + used, cap - used, "%s%s",
				 used ? " " : "", x->arrived[i]);
		if (w > 0 && (size_t)w < cap - used)
			used += (size_t)w;
	}
	pthread_mutex_unlock(&x->mu);
}

/* An HL7 message with MSH-10 id and PID-3 pid (NULL: no PID segment). */
static char *msg_of(const char *id, const char *pid, size_t *len)
{
	char *s = malloc(512);
	int l = snprintf(s, 512,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A08|"
			 "%s|P|2.5\r%s%s%s",
			 id, pid ? "PID|1||" : "", pid ? pid : "",
			 pid ? "||DOE^JOHN\r" : "");
	*len = (size_t)l;
	return s;
}

static struct ti_rec rec;

static struct mllp_pool *lane_pool(uint16_t port, uint32_t conns,
				   const struct mllp_conn_options *o,
				   uint32_t *ep)
{
	struct mllp_pool_config cfg;
	ti_rec_init(&rec);
	ti_config(&cfg, &rec);
	cfg.conn.queue_timeout_ms = 10000;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	struct mllp_conn_options eo = o ? *o : cfg.conn;
	eo.queue_timeout_ms = 10000;
	assert_int_equal(
	    mllp_pool_add_endpoint(p, "127.0.0.1", port, conns, &eo, ep, NULL),
	    0);
	return p;
}

/* Send id keyed by key (bytes) or by key_field (field non-NULL: pid is
 * the PID-3 value). */
static struct mllp_future *send_keyed(struct mllp_pool *p, uint32_t ep,
				      const char *id, const char *key,
				      const char *field, const char *pid)
{
	size_t len;
	char *m = msg_of(id, pid ? pid : key, &len);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.block = true;
	if (field) {
		so.key_field = field;
	} else if (key) {
		so.key = key;
		so.key_len = strlen(key);
	}
	struct mllp_future *f = NULL;
	struct mllp_error err;
	int rc = mllp_pool_send(p, ep, m, len, &so, &f, &err);
	if (rc != 0)
		fprintf(stderr, "send %s: %s\n", id, err.message);
	assert_int_equal(rc, 0);
	free(m);
	return f;
}

static const struct mllp_result *done(struct mllp_future *f)
{
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	return mllp_future_result(f);
}

static void expect_aa(struct mllp_future *f)
{
	const struct mllp_result *r = done(f);
	assert_int_equal(r->status, 0);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
}

static void ep_stats(struct mllp_pool *p, uint32_t ep,
		     struct mllp_endpoint_stats *st)
{
	mllp_endpoint_stats_init(st);
	assert_int_equal(mllp_pool_get_endpoint_stats(p, ep, st), 0);
}

struct lanes_zero {
	struct mllp_pool *p;
	uint32_t ep;
};

static bool no_lanes(void *arg)
{
	struct lanes_zero *z = arg;
	struct mllp_endpoint_stats st;
	ep_stats(z->p, z->ep, &st);
	return st.lanes_active == 0 && st.lane_waiting == 0;
}

/* One lane left, with one message waiting in it: the lane of a completed
 * message is let go by the manager just after its future completes. */
static bool one_lane_waiting(void *arg)
{
	struct lanes_zero *z = arg;
	struct mllp_endpoint_stats st;
	ep_stats(z->p, z->ep, &st);
	return st.lanes_active == 1 && st.lane_waiting == 1;
}

/* 20 keys x 40 messages interleaved over 4 connections, replies given in
 * random order by another thread: no message arrives before the reply to
 * its key's previous one left, each key arrives in submission order, and
 * no lane is left afterwards. */
static void test_order_per_key(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 4, NULL, &ep);
	enum { KEYS = 20, PER = 40 };
	struct mllp_future *f[KEYS * PER];
	for (int s = 0; s < PER; s++) {
		for (int k = 0; k < KEYS; k++) {
			char id[24], key[16];
			snprintf(id, sizeof(id), "K%02d.%03d", k, s);
			snprintf(key, sizeof(key), "P%02d", k);
			f[s * KEYS + k] =
			    send_keyed(p, ep, id, key, NULL, NULL);
		}
	}
	for (int i = 0; i < KEYS * PER; i++)
		expect_aa(f[i]);
	assert_int_equal(atomic_load(&x.overlaps), 0);
	for (int k = 0; k < KEYS; k++) {
		char prefix[8], got[2048], want[2048];
		snprintf(prefix, sizeof(prefix), "K%02d.", k);
		lx_order(&x, prefix, got, sizeof(got));
		size_t used = 0;
		for (int s = 0; s < PER; s++)
			used += (size_t)snprintf(
			    want + used, sizeof(want) - used, "%sK%02d.%03d",
			    s ? " " : "", k, s);
		assert_string_equal(got, want);
	}
	struct lanes_zero z = {p, ep};
	assert_true(tr_wait_until(no_lanes, &z, 5000));
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* The next message of a key waits for the reply to the previous one, even
 * with idle connections: B (same PID-3.1 as A, other components) does not
 * arrive while A's reply is held back, though C sent after it does. */
static void test_key_field_waits_for_reply(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 4, NULL, &ep);
	struct mllp_future *a =
	    send_keyed(p, ep, "DA", NULL, "PID-3.1", "123^^^H");
	lx_wait_arrival(&x, "DA");
	struct mllp_future *b =
	    send_keyed(p, ep, "B1", NULL, "PID-3.1", "123^^^X");
	struct mllp_future *c =
	    send_keyed(p, ep, "C1", NULL, "PID-3.1", "456^^^H");
	lx_wait_arrival(&x, "C1");
	expect_aa(c);
	assert_int_equal(lx_count(&x, "B1"), 0);
	struct lanes_zero z = {p, ep};
	assert_true(tr_wait_until(one_lane_waiting, &z, 5000));
	struct mllp_endpoint_stats st;
	ep_stats(p, ep, &st);
	assert_int_equal(st.lanes_active, 1);
	assert_int_equal(st.lane_waiting, 1);
	assert_int_equal(st.lanes_held, 0);
	lx_answer(&x, "DA");
	expect_aa(a);
	expect_aa(b);
	char got[128];
	lx_order(&x, "", got, sizeof(got));
	assert_string_equal(got, "DA C1 B1");
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* key / key_field errors, refused at send. */
static void test_key_errors(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 1, NULL, &ep);
	size_t len;
	char *m = msg_of("E1", NULL, &len);
	struct mllp_send_options so;
	struct mllp_future *f = NULL;
	struct mllp_error err;
	mllp_send_options_init(&so);
	so.key_field = "PID-3";
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err),
			 MLLP_ERR_NOT_FOUND);
	assert_null(f);
	assert_string_equal(err.message, "key field PID-3 is missing or empty");
	so.key_field = "PID3";
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message,
			    "bad key_field 'PID3' (expected e.g. PID-3 or "
			    "PID-3.1)");
	so.key_field = "MSH-4";
	so.key = "x";
	so.key_len = 1;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "key and key_field are exclusive");
	so.key_field = NULL;
	so.async = true;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "a keyed message cannot be async: "
					 "its lane waits for its reply");
	so.async = false;
	char big[MLLP_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));
	so.key = big;
	so.key_len = sizeof(big);
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "a key is 1 to 128 bytes");
	/* MSH-4 is a key too: sent. */
	so.key = NULL;
	so.key_len = 0;
	so.key_field = "MSH-4";
	assert_int_equal(mllp_pool_send(p, ep, m, len, &so, &f, &err), 0);
	expect_aa(f);
	free(m);
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* A rejected message holds its lane (lane_held, counted); other keys go
 * on; release RETRY sends it again with a new future, then the rest. */
static void test_hold_release_retry(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 2, NULL, &ep);
	struct mllp_future *f1 = send_keyed(p, ep, "H1", "k", NULL, NULL);
	struct mllp_future *f2 = send_keyed(p, ep, "RH2", "k", NULL, NULL);
	struct mllp_future *f3 = send_keyed(p, ep, "H3", "k", NULL, NULL);
	expect_aa(f1);
	const struct mllp_result *r = done(f2);
	assert_int_equal(r->status, 0);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ERROR);
	mllp_future_free(f2);
	assert_int_equal(ti_count(&rec, MLLP_EV_LANE_HELD), 1);
	assert_string_equal(mllp_event_name(MLLP_EV_LANE_HELD), "lane_held");
	struct mllp_endpoint_stats st;
	ep_stats(p, ep, &st);
	assert_int_equal(st.lanes_held, 1);
	assert_int_equal(st.lane_waiting, 1);
	assert_int_equal(st.lane_held_waiting, 1);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	assert_int_equal(mllp_pool_get_stats(p, &ps), 0);
	assert_int_equal(ps.lanes_held, 1);
	assert_int_equal(ps.lane_held_waiting, 1);
	/* another key is not held up */
	expect_aa(send_keyed(p, ep, "O1", "other", NULL, NULL));
	assert_int_equal(lx_count(&x, "H3"), 0);
	struct mllp_future *again = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_release_key(p, ep, "nope", 4,
					       MLLP_RELEASE_RETRY, &again,
					       &err),
			 MLLP_ERR_NOT_FOUND);
	assert_string_equal(err.message, "no held lane for this key");
	assert_int_equal(mllp_pool_release_key(p, ep, "k", 1,
					       MLLP_RELEASE_RETRY, NULL, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "mllp_pool_release_key: "
					 "MLLP_RELEASE_RETRY needs retry (the "
					 "new future)");
	assert_int_equal(
	    mllp_pool_release_key(p, ep, "k", 0, MLLP_RELEASE_SKIP, NULL, &err),
	    MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message,
			    "mllp_pool_release_key: the key is 1 to 128 bytes");
	assert_int_equal(mllp_pool_release_key(p, ep, "k", 1,
					       (enum mllp_lane_release)7, NULL,
					       &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message,
			    "mllp_pool_release_key: action is "
			    "MLLP_RELEASE_RETRY or MLLP_RELEASE_SKIP");
	assert_int_equal(mllp_pool_release_key(
			     p, ep, "k", 1, MLLP_RELEASE_RETRY, &again, &err),
			 0);
	assert_non_null(again);
	expect_aa(again);
	expect_aa(f3);
	char got[128];
	lx_order(&x, "", got, sizeof(got));
	assert_string_equal(got, "H1 RH2 O1 RH2 H3");
	ep_stats(p, ep, &st);
	assert_int_equal(st.lanes_held, 0);
	assert_int_equal(st.lane_held_waiting, 0);
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* Release SKIP: the failed message is not sent again; the lane goes on. */
static void test_hold_release_skip(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 2, NULL, &ep);
	struct mllp_future *f1 = send_keyed(p, ep, "XS1", "k", NULL, NULL);
	struct mllp_future *f2 = send_keyed(p, ep, "S2", "k", NULL, NULL);
	assert_int_equal(done(f1)->verdict, MLLP_APPLICATION_ERROR);
	mllp_future_free(f1);
	assert_int_equal(lx_count(&x, "S2"), 0);
	assert_int_equal(
	    mllp_pool_release_key(p, ep, "k", 1, MLLP_RELEASE_SKIP, NULL, NULL),
	    0);
	expect_aa(f2);
	char got[64];
	lx_order(&x, "", got, sizeof(got));
	assert_string_equal(got, "XS1 S2");
	/* not held any more */
	assert_int_equal(
	    mllp_pool_release_key(p, ep, "k", 1, MLLP_RELEASE_SKIP, NULL, NULL),
	    MLLP_ERR_NOT_FOUND);
	struct lanes_zero z = {p, ep};
	assert_true(tr_wait_until(no_lanes, &z, 5000));
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* MLLP_LANE_RETRY: a message rejected once is sent again by the lane and
 * its one future reports the accept; one rejected every time is tried
 * 1 + lane_max_retries times, then fails and holds. */
static void test_retry_policy(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.lane_policy = MLLP_LANE_RETRY;
	o.lane_max_retries = 2;
	o.use_backoff = false;
	o.auto_reconnect_interval_ms = 200; /* / backoff_divisor 100 */
	o.connect_timeout_ms = 1000;
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 2, &o, &ep);
	struct mllp_future *f1 = send_keyed(p, ep, "RP1", "k", NULL, NULL);
	struct mllp_future *f2 = send_keyed(p, ep, "XP2", "k", NULL, NULL);
	struct mllp_future *f3 = send_keyed(p, ep, "P3", "k", NULL, NULL);
	expect_aa(f1);
	assert_int_equal(lx_count(&x, "RP1"), 2);
	const struct mllp_result *r = done(f2);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ERROR);
	mllp_future_free(f2);
	assert_int_equal(lx_count(&x, "XP2"), 3);
	assert_int_equal(ti_count(&rec, MLLP_EV_LANE_HELD), 1);
	assert_false(mllp_future_poll(f3));
	assert_int_equal(lx_count(&x, "P3"), 0);
	assert_int_equal(
	    mllp_pool_release_key(p, ep, "k", 1, MLLP_RELEASE_SKIP, NULL, NULL),
	    0);
	expect_aa(f3);
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* max_lanes: a message of one key too many fails with WOULD_BLOCK; once
 * the lanes are idle (freed) the key is served. */
static void test_bounded_lanes(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.max_lanes = 2;
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 4, &o, &ep);
	struct mllp_future *a = send_keyed(p, ep, "DB1", "a", NULL, NULL);
	struct mllp_future *b = send_keyed(p, ep, "DB2", "b", NULL, NULL);
	lx_wait_arrival(&x, "DB1");
	lx_wait_arrival(&x, "DB2");
	struct mllp_future *c = send_keyed(p, ep, "B3", "c", NULL, NULL);
	const struct mllp_result *r = done(c);
	assert_int_equal(r->status, MLLP_ERR_WOULD_BLOCK);
	assert_string_equal(r->error.message,
			    "too many ordering keys in use (max_lanes 2); "
			    "the message was not sent");
	assert_false(r->may_have_reached);
	mllp_future_free(c);
	lx_answer(&x, "DB1");
	lx_answer(&x, "DB2");
	expect_aa(a);
	expect_aa(b);
	struct lanes_zero z = {p, ep};
	assert_true(tr_wait_until(no_lanes, &z, 5000));
	expect_aa(send_keyed(p, ep, "B4", "c", NULL, NULL));
	mllp_pool_destroy(p);
	lx_stop(&x);
}

static void count_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	atomic_fetch_add((_Atomic int *)arg, 1);
}

/* Cancel a waiting message (never sent; the lane goes on), then stop with
 * one in flight and one waiting: each future completes exactly once. */
static void test_cancel_and_stop(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 2, NULL, &ep);
	_Atomic int calls[3] = {0, 0, 0};
	struct mllp_future *f[3];
	const char *ids[3] = {"DC1", "C2", "C3"};
	for (int i = 0; i < 3; i++) {
		size_t len;
		char *m = msg_of(ids[i], "k", &len);
		struct mllp_send_options so;
		mllp_send_options_init(&so);
		so.key = "k";
		so.key_len = 1;
		so.callback = count_cb;
		so.callback_arg = &calls[i];
		assert_int_equal(
		    mllp_pool_send(p, ep, m, len, &so, &f[i], NULL), 0);
		free(m);
	}
	lx_wait_arrival(&x, "DC1");
	assert_int_equal(mllp_future_cancel(f[1]), 0);
	const struct mllp_result *r = done(f[1]);
	assert_int_equal(r->status, MLLP_ERR_CANCELED);
	assert_false(r->may_have_reached);
	struct mllp_endpoint_stats st;
	ep_stats(p, ep, &st);
	assert_int_equal(st.lane_waiting, 1);
	assert_int_equal(mllp_pool_stop(p), 0);
	r = done(f[0]);
	assert_int_equal(r->status, MLLP_ERR_STOPPED);
	assert_true(r->may_have_reached);
	r = done(f[2]);
	assert_int_equal(r->status, MLLP_ERR_STOPPED);
	assert_false(r->may_have_reached);
	assert_false(r->written);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(atomic_load(&calls[i]), 1);
		mllp_future_free(f[i]);
	}
	assert_int_equal(lx_count(&x, "C2") + lx_count(&x, "C3"), 0);
	ep_stats(p, ep, &st);
	assert_int_equal(st.lanes_active, 0);
	assert_int_equal(st.lane_waiting, 0);
	mllp_pool_destroy(p);
	lx_stop(&x);
}

/* Removal with a held lane and a message waiting behind it: the waiting
 * one ends "endpoint removed; the message was not sent". */
static void test_remove_held(void **state)
{
	(void)state;
	struct lx x;
	lx_start(&x);
	uint32_t ep;
	struct mllp_pool *p = lane_pool(x.port, 1, NULL, &ep);
	struct mllp_future *f1 = send_keyed(p, ep, "XR1", "k", NULL, NULL);
	struct mllp_future *f2 = send_keyed(p, ep, "R2", "k", NULL, NULL);
	assert_int_equal(done(f1)->verdict, MLLP_APPLICATION_ERROR);
	assert_int_equal(mllp_pool_remove_endpoint(p, ep), 0);
	const struct mllp_result *r = done(f2);
	assert_int_equal(r->status, MLLP_ERR_ENDPOINT_REMOVED);
	assert_string_equal(r->error.message,
			    "endpoint removed; the message was not sent");
	mllp_future_free(f1);
	mllp_future_free(f2);
	assert_int_equal(
	    mllp_pool_release_key(p, ep, "k", 1, MLLP_RELEASE_SKIP, NULL, NULL),
	    MLLP_ERR_ENDPOINT_REMOVED);
	ti_expect_no_lanes(p);
	mllp_pool_destroy(p);
	lx_stop(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_per_key),
	    cmocka_unit_test(test_key_field_waits_for_reply),
	    cmocka_unit_test(test_key_errors),
	    cmocka_unit_test(test_hold_release_retry),
	    cmocka_unit_test(test_hold_release_skip),
	    cmocka_unit_test(test_retry_policy),
	    cmocka_unit_test(test_bounded_lanes),
	    cmocka_unit_test(test_cancel_and_stop),
	    cmocka_unit_test(test_remove_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

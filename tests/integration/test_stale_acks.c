/* Receivers that resend old ACKs on a kept connection. node-hl7-server 2.5
 * answers message k with the ACKs of messages 1..k in one write: each
 * resent ACK is a stale duplicate, dropped and counted, and every message
 * still ends once with its own AA. A reply for an id that was never sent
 * is not stale: the connection still closes. Run once per backend
 * (MLLP_TEST_BACKEND). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"
#include "netutil.h"

#define MSGS 20

enum srv_mode {
	RESEND_ALL, /* message k: the ACKs of 1..k, one write */
	NEVER_SENT, /* message k: an ACK for an id never sent, then its own */
};

struct srv {
	struct tn_peer peer;
	enum srv_mode mode;
	_Atomic int frames;
	int ids[MSGS * 2]; /* the messages received on this connection */
	int nids;
};

/* Answer the message CTRL<n>; ids: the numbers of the messages received
 * on this connection so far, this one last (nids of them). */
static void answer(struct srv *s, int fd, const int *ids, int nids)
{
	static char out[MSGS * 128 + 256];
	size_t len = 0;
	char id[32];
	if (s->mode == RESEND_ALL) {
		for (int i = 0; i < nids; i++) {
			snprintf(id, sizeof(id), "CTRL%d", ids[i]);
			len += tn_put_ack(out + len, sizeof(out) - len, id);
		}
	} else {
		snprintf(id, sizeof(id), "NEVER%d", ids[nids - 1]);
		len += tn_put_ack(out + len, sizeof(out) - len, id);
		snprintf(id, sizeof(id), "CTRL%d", ids[nids - 1]);
		len += tn_put_ack(out + len, sizeof(out) - len, id);
	}
	tn_send_all(fd, out, len);
}

/* Complete frames of buf[0..*len): answered, then dropped. */
static bool frames(void *ctx, int fd, char *buf, size_t *len)
{
	struct srv *s = ctx;
	int n;
	while ((n = tn_take_ctrl_frame(buf, len)) >= 0) {
		atomic_fetch_add(&s->frames, 1);
		if (s->nids < MSGS * 2)
			s->ids[s->nids++] = n;
		answer(s, fd, s->ids, s->nids);
	}
	return true;
}

/* A new connection: a new feed. */
static void new_feed(void *ctx)
{
	struct srv *s = ctx;
	s->nids = 0;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	tn_peer_start(&s->peer, frames, new_feed, s);
}

static void srv_stop(struct srv *s)
{
	tn_peer_stop(&s->peer);
}

/* Log lines with "Stale reply" in them. */
struct logs {
	pthread_mutex_t mu;
	int stale;
	char first[512];
};

static void count_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct logs *g = ctx;
	(void)l;
	pthread_mutex_lock(&g->mu);
	if (strstr(line, "Stale reply") && g->stale++ == 0)
		snprintf(g->first, sizeof(g->first), "%s", line);
	pthread_mutex_unlock(&g->mu);
}

static struct mllp_future *send_ctrl(struct mllp_pool *p, uint32_t ep, int n)
{
	char msg[256];
	int l = snprintf(msg, sizeof(msg),
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A08|"
			 "CTRL%d|P|2.5\rPID|1||%d\r",
			 n, n);
	struct mllp_future *f = NULL;
	assert_int_equal(mllp_pool_send(p, ep, msg, (size_t)l, NULL, &f, NULL),
			 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	return f;
}

static void make_pool(struct mllp_pool **p, uint32_t *ep, uint16_t port,
		      struct ti_rec *rec, struct logs *g)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, rec);
	cfg.log = count_log;
	cfg.log_ctx = g;
	cfg.log_level = MLLP_LOG_WARNING;
	cfg.conn.queue_timeout_ms = 5000; /* sends wait for a reconnect */
	assert_int_equal(mllp_pool_create(&cfg, p, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(*p, "127.0.0.1", port, 1, NULL, ep, NULL),
	    0);
}

/* Message k answered by the ACKs of 1..k: all accepted, once each; the
 * k-1 resent ACKs of each answer dropped as stale; one log line; the
 * connection never closed. */
static void test_resent_acks(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct logs g = {.mu = PTHREAD_MUTEX_INITIALIZER};
	srv_start(&s, RESEND_ALL);
	ti_rec_init(&rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s.peer.port, &rec, &g);
	for (int k = 1; k <= MSGS; k++) {
		struct mllp_future *f = send_ctrl(p, ep, k);
		const struct mllp_result *r = mllp_future_result(f);
		assert_int_equal(r->status, 0);
		assert_true(r->has_verdict);
		assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
		char want[32];
		snprintf(want, sizeof(want), "CTRL%d", k);
		assert_int_equal(r->ack.control_id.len, strlen(want));
		assert_memory_equal(r->ack.control_id.ptr, want, strlen(want));
		mllp_future_free(f);
	}
	/* Every stale frame of the last answer is handled before its AA:
	 * the counts are final once the last future completed. */
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	const uint64_t stale = MSGS * (MSGS - 1) / 2;
	assert_int_equal(st.stale_replies, stale);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], MSGS);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.connects, 1);
	struct mllp_endpoint_stats es;
	mllp_endpoint_stats_init(&es);
	assert_int_equal(mllp_pool_get_endpoint_stats(p, ep, &es), 0);
	assert_int_equal(es.stale_replies, stale);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_STALE_REPLY), (int)stale);
	assert_int_equal(ti_count(&rec, MLLP_EV_RECEIVE_VALID), MSGS);
	assert_int_equal(ti_count(&rec, MLLP_EV_CONNECTION_CLOSED), 0);
	assert_int_equal(ti_count(&rec, MLLP_EV_INVALID_RESPONSE), 0);
	assert_int_equal(g.stale, 1);
	assert_non_null(strstr(g.first, "Stale reply from 127.0.0.1:"));
	assert_non_null(strstr(g.first, "the ACK of message 'CTRL1'"));
	assert_int_equal(atomic_load(&s.peer.accepts), 1);
	srv_stop(&s);
}

/* A reply whose MSA-2 was never sent on the connection is not stale: the
 * message is not accepted and the connection is closed, as before.
 * Nothing is counted as stale. */
static void test_never_sent_id_closes(void **state)
{
	(void)state;
	static struct srv s;
	static struct ti_rec rec;
	static struct logs g = {.mu = PTHREAD_MUTEX_INITIALIZER};
	srv_start(&s, NEVER_SENT);
	ti_rec_init(&rec);
	struct mllp_pool *p;
	uint32_t ep;
	make_pool(&p, &ep, s.peer.port, &rec, &g);
	for (int k = 1; k <= 2; k++) {
		struct mllp_future *f = send_ctrl(p, ep, k);
		const struct mllp_result *r = mllp_future_result(f);
		/* Both frames in one read: data after the reply's trailer;
		 * split over two reads: the first is this message's reply,
		 * with the wrong id (then the second is unsolicited). Never
		 * accepted either way. */
		if (r->status == 0) {
			assert_true(r->has_verdict);
			assert_int_equal(r->verdict,
					 MLLP_BAD_MESSAGE_CONTROL_ID);
		} else {
			assert_int_equal(r->status,
					 MLLP_ERR_DATA_AFTER_TRAILER);
			assert_int_equal(r->error.context, MLLP_CTX_RECEIVE);
		}
		mllp_future_free(f);
		/* Closed before the next message goes. */
		assert_true(
		    ti_wait_count(&rec, MLLP_EV_CONNECTION_CLOSED, k, 5000));
	}
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.stale_replies, 0);
	mllp_pool_destroy(p);
	assert_int_equal(ti_count(&rec, MLLP_EV_STALE_REPLY), 0);
	assert_int_equal(g.stale, 0);
	srv_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resent_acks),
	    cmocka_unit_test(test_never_sent_id_closes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

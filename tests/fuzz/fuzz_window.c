/* libFuzzer target: pipelining's reply correlation (pool/client
 * conn_window*.c), on the fake backend of the integration tests (virtual
 * clock, no network).
 *
 * Each input is one run: a pool with one connection and a window of
 * 2..17 (max_inflight), 1..32 HL7 messages CTRL0.. queued at once, then a
 * script, a byte or two a step: the peer answers message i (in any order,
 * again, or before it was written), answers an id never sent, sends junk,
 * writes come back short, or virtual time moves on (reply timeouts of
 * 1 s). At the end time runs on until every message has ended.
 *
 * Checks: every message ends exactly once; a reply a message takes names
 * its own id (never another message's, nor one never sent); the counters add up
 * (replies + errors = messages, nothing left in flight or queued); the
 * pool used the backend seam correctly (fb_violations). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <mllp/pool.h>

#include "../integration/fake_backend.h"
#include "fuzz.h"
#include "pool_internal.h"

#define MAXM 32

struct msg {
	char id[16];
	_Atomic int ends;
	int status;
	bool has_verdict;
	enum mllp_verdict verdict;
	char ack_id[32];
};

static struct msg g_msgs[MAXM];

static void on_done(struct mllp_future *f, void *arg)
{
	struct msg *m = arg;
	const struct mllp_result *r = mllp_future_result(f);
	atomic_fetch_add(&m->ends, 1);
	m->status = r->status;
	m->has_verdict = r->has_verdict;
	m->verdict = r->verdict;
	size_t n = r->ack.control_id.len < sizeof(m->ack_id) - 1
		       ? r->ack.control_id.len
		       : sizeof(m->ack_id) - 1;
	if (n)
		memcpy(m->ack_id, r->ack.control_id.ptr, n);
	m->ack_id[n] = 0;
	mllp_future_free(f);
}

static void step(uint8_t op, uint8_t arg, int nmsgs)
{
	switch (op % 8) {
	case 0:
	case 1:
	case 2:
	case 3:
		(void)fb_peer_last(FB_REPLY_ACK, g_msgs[arg % nmsgs].id);
		break;
	case 4:
		(void)fb_peer_last(FB_REPLY_ACK, "NEVER");
		break;
	case 5:
		fb_run_until(fb_now_ms() + (uint64_t)arg * 10u);
		return;
	case 6:
		if (arg % 4 == 0)
			(void)fb_peer_last(FB_REPLY_JUNK, "");
		break;
	default:
		fb_next(FB_SEND, FB_SEND_SHORT);
		break;
	}
	fb_settle();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint32_t window = 2u + data[0] % 16u;
	int nmsgs = 1 + data[1] % MAXM;
	bool close_on_err = (data[2] & 1) == 0;
	data += 3;
	size -= 3;
	fb_init();
	fb_default(FB_REPLY, FB_REPLY_NONE);
	struct mllp_pool_config cfg;
	fb_config(&cfg);
	cfg.conn.max_inflight = window;
	cfg.conn.reply_timeout_ms = 1000;
	cfg.conn.queue_timeout_ms = 60000;
	cfg.conn.close_on_recv_error = close_on_err;
	struct mllp_pool *p;
	CHECK(mllpi_pool_create_ops(&cfg, &fb_ops, &p, NULL) == 0);
	uint32_t ep;
	CHECK(mllp_pool_add_endpoint(p, "127.0.0.1", 2575, 1, NULL, &ep,
				     NULL) == 0);
	for (int i = 0; i < nmsgs; i++) {
		struct msg *m = &g_msgs[i];
		memset(m, 0, sizeof(*m));
		snprintf(m->id, sizeof(m->id), "CTRL%d", i);
		char buf[160];
		int l = snprintf(buf, sizeof(buf),
				 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||"
				 "ADT^A08|%s|P|2.5\rPID|1||%d\r",
				 m->id, i);
		struct mllp_send_options so;
		mllp_send_options_init(&so);
		so.callback = on_done;
		so.callback_arg = m;
		struct mllp_future *f;
		CHECK(mllp_pool_send(p, ep, buf, (size_t)l, &so, &f, NULL) ==
		      0);
	}
	fb_settle();
	for (size_t i = 0; i + 1 < size && i < 256; i += 2)
		step(data[i], data[i + 1], nmsgs);
	/* every reply timeout (1 s) and reconnect is over by then */
	fb_run_until(fb_now_ms() + 600000u);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	mllp_pool_destroy(p);
	fb_fini();
	if (fb_violations()[0])
		fprintf(stderr, "fake backend: %s", fb_violations());
	CHECK(fb_violations()[0] == 0);
	uint64_t replied = 0;
	for (int i = 0; i < MLLP_VERDICT_COUNT; i++)
		replied += st.acked[i];
	CHECK(replied + st.errors == (uint64_t)nmsgs);
	CHECK(st.in_flight == 0 && st.queued == 0);
	for (int i = 0; i < nmsgs; i++) {
		const struct msg *m = &g_msgs[i];
		CHECK(atomic_load(&m->ends) == 1);
		/* A reply taken names this message (or none). */
		if (m->has_verdict)
			CHECK(strcmp(m->ack_id, m->id) == 0 ||
			      m->ack_id[0] == 0);
	}
	return 0;
}

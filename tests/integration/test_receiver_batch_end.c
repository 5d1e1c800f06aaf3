/* The receiver's dispatch_batch_end hook, on loopback: it follows every
 * batch of dispatched frames before the manager waits again (never twice
 * without a frame between, never missing after the last one), so a
 * dispatcher may queue frames quietly and hand them on there; and replies
 * given from the hook itself, on the manager thread, go out in order.
 * Ephemeral ports only; every wait is bounded; no sleep synchronises. */
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "common.h" /* ti_receiver_config() */
#include "netutil.h"
#include "rx_util.h"

#define DEADLINE_MS 20000
#define NFRAMES	    200
#define LOG_MAX	    (4 * NFRAMES)

/* What the manager thread did, in order: 'D' a frame dispatched, 'E' the
 * hook. Read by the test only once every reply has arrived. */
struct ctx {
	bool defer; /* defer every frame; the hook answers them */
	char log[LOG_MAX];
	_Atomic int nlog;
	struct mllp_reply_handle *held[NFRAMES + 1];
	int held_n[NFRAMES + 1];
	int nheld;
	_Atomic int batch_results; /* results other than 0 */
};

static void note(struct ctx *x, char ev)
{
	int n = atomic_load(&x->nlog);
	if (n < LOG_MAX)
		x->log[n] = ev;
	atomic_store(&x->nlog, n + 1);
}

static void dispatch(void *ctx, const struct mllp_message *msg,
		     struct mllp_reply *reply)
{
	struct ctx *x = ctx;
	note(x, 'D');
	if (!x->defer) {
		reply->kind = MLLP_REPLY_ACK;
		return;
	}
	struct mllp_reply_handle *h = mllp_reply_defer(reply);
	assert_non_null(h);
	assert_true(x->nheld <= NFRAMES);
	x->held_n[x->nheld] = rx_ctrl_of(msg);
	x->held[x->nheld++] = h;
}

/* The hook: with defer, answers every frame held so far in one batch,
 * newest first (the receiver keeps the wire in arrival order). */
static void batch_end(void *ctx)
{
	struct ctx *x = ctx;
	note(x, 'E');
	if (!x->defer || x->nheld == 0)
		return;
	static char acks[NFRAMES + 1][256];
	static struct mllp_reply_item items[NFRAMES + 1];
	int k = x->nheld;
	for (int i = 0; i < k; i++) {
		int j = k - 1 - i;
		int len = rx_ack_text(acks[i], sizeof(acks[i]), x->held_n[j]);
		items[i] = (struct mllp_reply_item){
		    .handle = x->held[j], .data = acks[i], .len = (size_t)len};
	}
	x->nheld = 0;
	size_t ok = mllp_receiver_reply_batch(items, (size_t)k);
	atomic_fetch_add(&x->batch_results, k - (int)ok);
}

/* Send frames first..first+n-1 in one write and read their n replies;
 * each names its frame's CTRL<n>, in order. */
static void round_trip(int fd, int first, int n)
{
	size_t cap = (size_t)n * 512, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	for (int i = 0; i < n; i++)
		len += rx_frame(out + len, cap - len, first + i);
	tn_send_all(fd, out, len);
	free(out);
	char buf[8192];
	size_t got = 0;
	uint64_t end = tn_now_ms() + DEADLINE_MS;
	for (int want = first; want < first + n;) {
		int id = tn_take_ctrl_frame(buf, &got);
		if (id >= 0) {
			assert_int_equal(id, want);
			want++;
			continue;
		}
		assert_true(tn_now_ms() < end);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, DEADLINE_MS), 1);
		ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(got, 0);
}

static void run(bool defer)
{
	static struct ctx x;
	memset(&x, 0, sizeof(x));
	x.defer = defer;
	struct mllp_receiver_config c;
	ti_receiver_config(&c, dispatch, &x);
	c.dispatch_batch_end = batch_end;
	c.max_pending_replies = NFRAMES + 1;
	struct mllp_receiver *rv;
	if (!rx_start(&c, &rv))
		skip();
	int fd = tn_connect(mllp_receiver_port(rv), 0);
	round_trip(fd, 1, NFRAMES);
	/* Sent only once every reply of the batch above is in: a batch of
	 * its own. */
	round_trip(fd, NFRAMES + 1, 1);
	close(fd);
	/* Each reply left after its frame's batch ended (replies go out
	 * when the manager waits), so the log is complete. */
	int n = atomic_load(&x.nlog), d = 0, e = 0;
	assert_true(n <= LOG_MAX);
	for (int i = 0; i < n; i++) {
		if (x.log[i] == 'D') {
			d++;
			continue;
		}
		assert_int_equal(x.log[i], 'E');
		/* never twice in a row, never before a frame */
		assert_true(i > 0 && x.log[i - 1] == 'D');
		e++;
	}
	fprintf(stderr, "%s: %d frames, %d batch ends\n", ti_backend_name(), d,
		e);
	assert_int_equal(d, NFRAMES + 1);
	assert_true(e >= 2);
	assert_int_equal(x.log[n - 1], 'E');
	assert_int_equal(atomic_load(&x.batch_results), 0);
	assert_int_equal(mllp_receiver_stop(rv), 0);
	mllp_receiver_destroy(rv);
}

/* Synchronous replies: the hook follows each batch of frames. */
static void test_batch_end_follows_frames(void **state)
{
	(void)state;
	run(false);
}

/* Every frame deferred and answered from the hook, in one
 * mllp_receiver_reply_batch per batch, newest first: the replies still
 * leave in arrival order. */
static void test_replies_from_batch_end(void **state)
{
	(void)state;
	run(true);
}

/* Unset by default. */
static void test_default_unset(void **state)
{
	(void)state;
	struct mllp_receiver_config c;
	mllp_receiver_config_init(&c);
	assert_null(c.dispatch_batch_end);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_batch_end_follows_frames),
	    cmocka_unit_test(test_replies_from_batch_end),
	    cmocka_unit_test(test_default_unset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

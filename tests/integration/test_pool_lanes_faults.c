/* Order per key under faults, once per backend: 4 connections, 1,000 keys,
 * 100,000 messages submitted interleaved, keyed by PID-3, to a receiver
 * that records arrivals and at random closes the connection on a message,
 * rejects it (AE) or holds its reply back a few milliseconds. Every failed
 * message holds its lane; a releaser thread resumes it (retry or skip).
 * Checked: per key, first deliveries arrive in submission order; no later
 * message of a held key arrives before its release; every future
 * completes exactly once and accepted + rejected + failed = submitted; no
 * lane, queued or in-flight message is left. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"

/* Under a sanitizer (several times slower) a fifth of the messages, so
 * that the run stays within its time. */
#define LANES_PER_KEY (TU_SANITIZED ? 20 : 100)

enum {
	KEYS = 1000,
	PER = LANES_PER_KEY,
	N = KEYS * PER,
	CONNS = 4,
	FR_MAX = 16
};

/* Fault rates, per thousand messages received. */
#define CLOSE_PM  2
#define REJECT_PM 5
#define DELAY_PM  10

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- what happened, shared by the receiver, callbacks and releaser ---- */

struct state {
	pthread_mutex_t mu;
	int last_first[KEYS]; /* seq of the key's last first delivery */
	bool delivered[N];
	int held[KEYS]; /* seq whose failure holds the key, or -1 */
	_Atomic int completions[N];
	_Atomic int accepted, rejected, failed;
	_Atomic int order_violations, hold_violations;
	_Atomic int closes, rejects, delays, bad_frames;
	/* failures to release (key, seq), a ring */
	int fail_q[N];
	size_t fq_head, fq_tail;
	pthread_cond_t cv;
};

static struct state st;

/* ---- the receiver ------------------------------------------------------ */

struct pending {
	struct pending *next;
	uint64_t due_us;
	size_t len;
	char buf[128];
};

struct fconn {
	int fd;
	struct mllp_decoder dec;
	struct pending *head, *tail;
};

struct frecv {
	int lfd;
	uint16_t port;
	pthread_t th;
	_Atomic bool stop;
	struct fconn c[FR_MAX];
	uint64_t rnd;
};

static uint32_t fr_rand(struct frecv *r)
{
	r->rnd ^= r->rnd << 13;
	r->rnd ^= r->rnd >> 7;
	r->rnd ^= r->rnd << 17;
	return (uint32_t)(r->rnd >> 11);
}

static void fc_close(struct fconn *c)
{
	close(c->fd);
	c->fd = -1;
	mllp_decoder_free(&c->dec);
	while (c->head) {
		struct pending *p = c->head;
		c->head = p->next;
		free(p);
	}
	c->tail = NULL;
}

/* An arrival of message (k, s): recorded and checked. */
static void record(int k, int s)
{
	pthread_mutex_lock(&st.mu);
	int i = k * PER + s;
	if (!st.delivered[i]) {
		st.delivered[i] = true;
		if (s <= st.last_first[k])
			atomic_fetch_add(&st.order_violations, 1);
		st.last_first[k] = s;
	}
	if (st.held[k] >= 0 && s > st.held[k])
		atomic_fetch_add(&st.hold_violations, 1);
	pthread_mutex_unlock(&st.mu);
}

/* A frame from c: false when the connection was closed for it. */
static bool fr_frame(struct frecv *r, struct fconn *c, const unsigned char *d,
		     size_t len)
{
	struct mllp_hl7_msg m;
	int k = -1, s = -1;
	if (mllp_hl7_parse(&m, d, len) == 0)
		sscanf(m.control_id.ptr, "%d.%d", &k, &s);
	if (k < 0 || k >= KEYS || s < 0 || s >= PER) {
		atomic_fetch_add(&st.bad_frames, 1); /* checked at the end */
		return true;
	}
	record(k, s);
	uint32_t roll = fr_rand(r) % 1000;
	if (roll < CLOSE_PM) {
		atomic_fetch_add(&st.closes, 1);
		fc_close(c);
		return false;
	}
	struct pending *p = malloc(sizeof(*p));
	if (!p)
		abort();
	const char *code = roll < CLOSE_PM + REJECT_PM ? "AE" : "AA";
	if (code[1] == 'E')
		atomic_fetch_add(&st.rejects, 1);
	int n = snprintf(p->buf, sizeof(p->buf),
			 "\x0bMSH|^~\\&|R|R|S|S|20240101||ACK|A%d.%d|P|2.5\r"
			 "MSA|%s|%d.%d\r\x1c\r",
			 k, s, code, k, s);
	p->len = (size_t)n;
	p->due_us = now_us();
	if (roll >= CLOSE_PM + REJECT_PM &&
	    roll < CLOSE_PM + REJECT_PM + DELAY_PM) {
		atomic_fetch_add(&st.delays, 1);
		p->due_us += 1000 + fr_rand(r) % 4000;
	}
	p->next = NULL;
	if (c->tail)
		c->tail->next = p;
	else
		c->head = p;
	c->tail = p;
	return true;
}

static void fr_read(struct frecv *r, struct fconn *c)
{
	unsigned char buf[65536];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n <= 0) {
		fc_close(c);
		return;
	}
	const unsigned char *p = buf;
	size_t left = (size_t)n;
	while (left > 0) {
		size_t used = 0;
		struct mllp_decoded ev;
		if (mllp_decoder_feed(&c->dec, p, left, &used, &ev) < 0) {
			atomic_fetch_add(&st.bad_frames, 1);
			fc_close(c);
			return;
		}
		p += used;
		left -= used;
		if (ev.kind == MLLP_DECODE_FRAME &&
		    !fr_frame(r, c, ev.data, ev.len))
			return;
	}
}

/* Write the replies that are due (in order per connection); the time
 * until the next one, in ms for poll (5 at most). */
static int fr_flush(struct frecv *r)
{
	uint64_t now = now_us(), next = now + 5000;
	for (int i = 0; i < FR_MAX; i++) {
		struct fconn *c = &r->c[i];
		while (c->fd >= 0 && c->head && c->head->due_us <= now) {
			struct pending *p = c->head;
			if (write(c->fd, p->buf, p->len) != (ssize_t)p->len) {
				fc_close(c);
				break;
			}
			c->head = p->next;
			if (!c->head)
				c->tail = NULL;
			free(p);
		}
		if (c->fd >= 0 && c->head && c->head->due_us < next)
			next = c->head->due_us;
	}
	return (int)((next - now + 999) / 1000);
}

static void fr_accept(struct frecv *r)
{
	int fd = accept(r->lfd, NULL, NULL);
	if (fd < 0)
		return;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < FR_MAX; i++) {
		if (r->c[i].fd < 0) {
			r->c[i].fd = fd;
			mllp_decoder_init(&r->c[i].dec, NULL, NULL);
			return;
		}
	}
	close(fd);
}

static void *fr_main(void *arg)
{
	struct frecv *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd pf[FR_MAX + 1];
		int idx[FR_MAX + 1];
		int n = 0;
		pf[n] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
		idx[n++] = -1;
		for (int i = 0; i < FR_MAX; i++) {
			if (r->c[i].fd < 0)
				continue;
			pf[n] =
			    (struct pollfd){.fd = r->c[i].fd, .events = POLLIN};
			idx[n++] = i;
		}
		int timeout = fr_flush(r);
		if (poll(pf, (nfds_t)n, timeout) <= 0)
			continue;
		for (int j = 0; j < n; j++) {
			if (!(pf[j].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (idx[j] < 0)
				fr_accept(r);
			else if (r->c[idx[j]].fd == pf[j].fd)
				fr_read(r, &r->c[idx[j]]);
		}
	}
	for (int i = 0; i < FR_MAX; i++)
		if (r->c[i].fd >= 0)
			fc_close(&r->c[i]);
	return NULL;
}

static void fr_start(struct frecv *r)
{
	memset(r, 0, sizeof(*r));
	r->rnd = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < FR_MAX; i++)
		r->c[i].fd = -1;
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lfd, 64), 0);
	socklen_t al = sizeof(a);
	getsockname(r->lfd, (struct sockaddr *)&a, &al);
	r->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&r->th, NULL, fr_main, r), 0);
}

static void fr_stop(struct frecv *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	close(r->lfd);
}

/* ---- the client side ------------------------------------------------------
 */

static void on_done(struct mllp_future *f, void *arg)
{
	int i = (int)(intptr_t)arg;
	atomic_fetch_add(&st.completions[i], 1);
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->verdict == MLLP_APPLICATION_ACCEPT) {
		atomic_fetch_add(&st.accepted, 1);
		return;
	}
	if (r->status == 0)
		atomic_fetch_add(&st.rejected, 1);
	else
		atomic_fetch_add(&st.failed, 1);
	/* The lane holds now: queued for the releaser. */
	pthread_mutex_lock(&st.mu);
	st.held[i / PER] = i % PER;
	st.fail_q[st.fq_tail++ % N] = i;
	pthread_cond_signal(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

struct releaser {
	struct mllp_pool *pool;
	uint32_t ep;
	pthread_t th;
	_Atomic bool stop;
	uint64_t rnd;
	int retries, skips;
};

static void key_of(int k, char *buf, size_t cap)
{
	snprintf(buf, cap, "MRN%04d", k);
}

/* Resume the lane of message i: retry (7 in 10) or skip. A retry's future
 * is waited for here; when it fails the lane holds again and the loop
 * goes on with it. */
static void release_one(struct releaser *rl, int i)
{
	char key[16];
	int k = i / PER;
	key_of(k, key, sizeof(key));
	for (;;) {
		rl->rnd =
		    rl->rnd * 6364136223846793005ull + 1442695040888963407ull;
		bool retry = (rl->rnd >> 33) % 10 < 7;
		struct mllp_future *f = NULL;
		pthread_mutex_lock(&st.mu);
		st.held[k] = -1; /* cleared before the release */
		pthread_mutex_unlock(&st.mu);
		int rc = mllp_pool_release_key(
		    rl->pool, rl->ep, key, strlen(key),
		    retry ? MLLP_RELEASE_RETRY : MLLP_RELEASE_SKIP, &f, NULL);
		if (rc != 0)
			atomic_fetch_add(&st.bad_frames, 1000000);
		if (!retry) {
			rl->skips++;
			return;
		}
		rl->retries++;
		if (!f || mllp_future_wait(f, 30000) != 0) {
			atomic_fetch_add(&st.bad_frames, 1000000);
			return;
		}
		const struct mllp_result *r = mllp_future_result(f);
		bool ok =
		    r->status == 0 && r->verdict == MLLP_APPLICATION_ACCEPT;
		mllp_future_free(f);
		if (ok)
			return;
		pthread_mutex_lock(&st.mu);
		st.held[k] = i % PER;
		pthread_mutex_unlock(&st.mu);
	}
}

static void *releaser_main(void *arg)
{
	struct releaser *rl = arg;
	pthread_mutex_lock(&st.mu);
	while (!atomic_load(&rl->stop) || st.fq_head != st.fq_tail) {
		if (st.fq_head == st.fq_tail) {
			struct timespec dl;
			clock_gettime(CLOCK_REALTIME, &dl);
			dl.tv_nsec += 2000000;
			if (dl.tv_nsec >= 1000000000) {
				dl.tv_sec++;
				dl.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&st.cv, &st.mu, &dl);
			continue;
		}
		int i = st.fail_q[st.fq_head++ % N];
		pthread_mutex_unlock(&st.mu);
		release_one(rl, i);
		pthread_mutex_lock(&st.mu);
	}
	pthread_mutex_unlock(&st.mu);
	return NULL;
}

static bool all_complete(void *arg)
{
	(void)arg;
	return atomic_load(&st.accepted) + atomic_load(&st.rejected) +
		   atomic_load(&st.failed) >=
	       N;
}

static void test_order_under_faults(void **state)
{
	(void)state;
	memset(&st, 0, sizeof(st));
	pthread_mutex_init(&st.mu, NULL);
	pthread_cond_init(&st.cv, NULL);
	for (int k = 0; k < KEYS; k++) {
		st.last_first[k] = -1;
		st.held[k] = -1;
	}
	struct frecv r;
	fr_start(&r);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.conn.queue_timeout_ms = 30000;
	cfg.conn.reply_timeout_ms = 5000;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1", r.port, CONNS,
						NULL, &ep, NULL),
			 0);
	struct releaser rl = {.pool = p, .ep = ep, .rnd = 42};
	assert_int_equal(pthread_create(&rl.th, NULL, releaser_main, &rl), 0);
	/* Round s sends seq s of every key, keys in a shuffled order. */
	int order[KEYS];
	for (int k = 0; k < KEYS; k++)
		order[k] = k;
	uint64_t rnd = 7;
	uint64_t t0 = now_us();
	for (int s = 0; s < PER; s++) {
		for (int k = KEYS - 1; k > 0; k--) {
			rnd = rnd * 6364136223846793005ull + 1;
			int j = (int)((rnd >> 33) % (uint64_t)(k + 1));
			int t = order[k];
			order[k] = order[j];
			order[j] = t;
		}
		for (int j = 0; j < KEYS; j++) {
			int k = order[j], i = k * PER + s;
			char msg[256], key[16];
			key_of(k, key, sizeof(key));
			int len =
			    snprintf(msg, sizeof(msg),
				     "MSH|^~\\&|S|F|R|F|20240101||ADT^A08|"
				     "%d.%d|P|2.5\rPID|1||%s^^^H||DOE\r",
				     k, s, key);
			struct mllp_send_options so;
			mllp_send_options_init(&so);
			so.key_field = "PID-3.1";
			so.block = true;
			so.callback = on_done;
			so.callback_arg = (void *)(intptr_t)i;
			struct mllp_future *f = NULL;
			assert_int_equal(mllp_pool_send(p, ep, msg, (size_t)len,
							&so, &f, NULL),
					 0);
			mllp_future_free(f);
		}
	}
	assert_true(tr_wait_until(all_complete, NULL, 60000));
	atomic_store(&rl.stop, true);
	pthread_join(rl.th, NULL);
	uint64_t ms = (now_us() - t0) / 1000;
	fprintf(stderr,
		"%s: %d messages in %llu ms: %d accepted, %d rejected, %d "
		"failed; receiver: %d closes, %d rejects, %d delays; "
		"releases: %d retries, %d skips\n",
		mllp_pool_backend(p), N, (unsigned long long)ms,
		atomic_load(&st.accepted), atomic_load(&st.rejected),
		atomic_load(&st.failed), atomic_load(&st.closes),
		atomic_load(&st.rejects), atomic_load(&st.delays), rl.retries,
		rl.skips);
	/* bad frames, and (in millions) failed releases */
	assert_int_equal(atomic_load(&st.bad_frames), 0);
	assert_int_equal(atomic_load(&st.order_violations), 0);
	assert_int_equal(atomic_load(&st.hold_violations), 0);
	assert_int_equal(atomic_load(&st.accepted) + atomic_load(&st.rejected) +
			     atomic_load(&st.failed),
			 N);
	for (int i = 0; i < N; i++)
		assert_int_equal(atomic_load(&st.completions[i]), 1);
	/* the faults happened */
	assert_true(atomic_load(&st.closes) > 0);
	assert_true(atomic_load(&st.rejects) > 0);
	assert_true(atomic_load(&st.delays) > 0);
	ti_expect_no_lanes(p);
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	assert_int_equal(mllp_pool_get_stats(p, &ps), 0);
	assert_int_equal(ps.queued, 0);
	assert_int_equal(ps.in_flight, 0);
	mllp_pool_destroy(p);
	fr_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_under_faults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

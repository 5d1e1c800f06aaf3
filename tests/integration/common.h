/* Shared helpers of the pool integration tests: telemetry recorder and
 * message helpers. */
#ifndef TI_COMMON_H
#define TI_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/mllp.h>

#include "receiver.h"
#include "testutil.h"

#define TI_MAX_EVENTS 512

struct ti_event {
	enum mllp_event_kind kind;
	int reason;
	uint64_t delay_ms;
	bool orphan;
	bool has_verdict;
	enum mllp_verdict verdict;
};

struct ti_rec {
	pthread_mutex_t mu;
	struct ti_event ev[TI_MAX_EVENTS];
	int n;
};

static inline void ti_rec_init(struct ti_rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
}

static inline void ti_telemetry(void *ctx, const struct mllp_event *e)
{
	struct ti_rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	if (r->n < TI_MAX_EVENTS) {
		struct ti_event *t = &r->ev[r->n++];
		t->kind = e->kind;
		t->reason = e->error ? e->error->reason : 0;
		t->delay_ms = e->reconnect_delay_ms;
		t->orphan = e->orphan;
		t->has_verdict = e->has_verdict;
		t->verdict = e->verdict;
	}
	pthread_mutex_unlock(&r->mu);
}

static inline int ti_count(struct ti_rec *r, enum mllp_event_kind k)
{
	pthread_mutex_lock(&r->mu);
	int c = 0;
	for (int i = 0; i < r->n; i++)
		c += r->ev[i].kind == k;
	pthread_mutex_unlock(&r->mu);
	return c;
}

/* A tr_wait_until() predicate: rec holds at least n events of kind. */
struct ti_min {
	struct ti_rec *rec;
	enum mllp_event_kind kind;
	int n;
};

static inline bool ti_min_reached(void *arg)
{
	struct ti_min *w = arg;
	return ti_count(w->rec, w->kind) >= w->n;
}

/* Wait up to timeout_ms until rec holds at least n events of kind. */
static inline bool ti_wait_count(struct ti_rec *rec, enum mllp_event_kind kind,
				 int n, int timeout_ms)
{
	struct ti_min w = {rec, kind, n};
	return tr_wait_until(ti_min_reached, &w, timeout_ms);
}

static inline void ti_quiet_log(void *ctx, enum mllp_log_level l,
				const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

/* The backend under test: the same suites run once per backend,
 * chosen by the environment variable MLLP_TEST_BACKEND = io_uring (or
 * uring) | epoll | auto (unset: auto); CMakeLists.txt registers each
 * suite once per backend. */
static inline enum mllp_backend_kind ti_backend(void)
{
	const char *b = getenv("MLLP_TEST_BACKEND");
	if (!b || !*b || !strcmp(b, "auto"))
		return MLLP_BACKEND_AUTO;
	if (!strcmp(b, "epoll"))
		return MLLP_BACKEND_EPOLL;
	if (!strcmp(b, "io_uring") || !strcmp(b, "uring"))
		return MLLP_BACKEND_IO_URING;
	fprintf(stderr, "MLLP_TEST_BACKEND=%s: want io_uring|epoll|auto\n", b);
	abort();
}

/* What mllp_pool_backend() reports for ti_backend() (auto: io_uring where
 * it is available). */
static inline const char *ti_backend_name(void)
{
	return ti_backend() == MLLP_BACKEND_EPOLL ? "epoll" : "io_uring";
}

/* A receiver config for tests: 127.0.0.1, an ephemeral port, dispatch
 * with ctx, quiet log, the backend under test. */
static inline void ti_receiver_config(struct mllp_receiver_config *rc,
				      mllp_dispatch_fn dispatch, void *ctx)
{
	mllp_receiver_config_init(rc);
	rc->address = "127.0.0.1";
	rc->port = 0;
	rc->dispatch = dispatch;
	rc->dispatch_ctx = ctx;
	rc->log = ti_quiet_log;
	rc->backend = ti_backend();
}

/* A pool config for tests: quiet log, telemetry into rec (may be NULL),
 * fast backoff (divisor). */
static inline void ti_config(struct mllp_pool_config *cfg, struct ti_rec *rec)
{
	mllp_pool_config_init(cfg);
	cfg->log = ti_quiet_log;
	if (rec) {
		cfg->telemetry = ti_telemetry;
		cfg->telemetry_ctx = rec;
	}
	cfg->backoff_divisor = 100;
	cfg->conn.connect_timeout_ms = 1000;
	cfg->conn.reply_timeout_ms = 5000;
	cfg->ring_entries = 64;
	cfg->recv_buffers = 64;
	cfg->backend = ti_backend();
}

/* Nothing is left of p's lanes: none active, held or with messages
 * waiting (fails the test otherwise). */
static inline void ti_expect_no_lanes(struct mllp_pool *p)
{
	struct mllp_pool_stats ps;
	mllp_pool_stats_init(&ps);
	assert_int_equal(mllp_pool_get_stats(p, &ps), 0);
	assert_int_equal(ps.lanes_active, 0);
	assert_int_equal(ps.lanes_held, 0);
	assert_int_equal(ps.lane_waiting, 0);
}

#endif

/* Helpers shared by the fault suites (test_faults*.c): the event recorder,
 * the pool and fault-receiver environment, sends with their expected
 * outcome, error-and-recover scenarios.
 *
 * Environment of every fault suite: FAULTS_ONLY=<glob> runs only the
 * matching tests (cmocka filter); MLLP_TEST_BACKEND=io_uring|epoll|auto
 * picks the backend; FAULTS_LIBC_ALLOC=1 makes pools allocate with malloc
 * (for memcheck). */
#ifndef FAULTS_UTIL_H
#define FAULTS_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

#include <mllp/mllp.h>

#include "faultrecv.h"

uint64_t now_ms(void);

void pause_ms(int ms);

#define MAX_EV 4096

struct ev {
	enum mllp_event_kind kind;
	uint32_t conn;
	int reason;
	enum mllp_context ctx;
	bool orphan;
	uint64_t delay_ms;
};

struct rec {
	pthread_mutex_t mu;
	struct ev ev[MAX_EV];
	int n;
	/* Per-connection grammar of the events, checked as they come (all
	 * of them, also past MAX_EV): success only while down, failure only
	 * while down, closed only while up, every other event while up. */
	bool up[256];
	int violations;
	long total;
};

extern struct rec g_rec;

extern int64_t g_rt;

void on_event(void *ctx, const struct mllp_event *e);

void quiet(void *ctx, enum mllp_log_level l, const char *line);

void rec_reset(void);

void rec_seq(uint32_t conn, char *out, size_t cap);

bool rec_find(uint32_t conn, enum mllp_event_kind k, int nth, struct ev *out);

bool wait_seq(uint32_t conn, const char *want, int timeout_ms);

enum mllp_backend_kind test_backend(void);

void base_config(struct mllp_pool_config *cfg);

struct env {
	struct fr fr;
	struct mllp_pool *pool;
	uint32_t ep;
	uint32_t nconns;
};

bool all_up(struct env *e);

bool wait_up(struct env *e, int timeout_ms);

void env_pool(struct env *e, const struct mllp_pool_config *cfg,
	      uint32_t nconns);

void env_begin(struct env *e, const struct fr_config *fc);

void env_refusing(struct env *e, struct mllp_pool_config *cfg);

void env_start(struct env *e, const struct fr_config *fc, int fault,
	       const struct mllp_pool_config *cfg);

void env_start_up(struct env *e, const struct fr_config *fc, int fault,
		  const struct mllp_pool_config *cfg);

int rec_violations(void);

void env_stop(struct env *e);

char *hl7(int n, size_t *len);

/* What the completion callback saw. */
struct probe {
	struct mllp_pool *pool;
	uint32_t ep;
	_Atomic int calls;
	_Atomic bool connected; /* is_connected(conn 0) inside the callback */
};

void probe_cb(struct mllp_future *f, void *arg);

struct mllp_future *send_wait(struct env *e, int n, struct probe *pr);

void expect_verdict(struct mllp_future *f, int n, enum mllp_verdict v);

void send_expect_aa(struct env *e, int n);

void expect_error(struct mllp_future *f, enum mllp_context ctx, int reason,
		  bool written, bool reached);

void expect_stats(struct env *e, uint64_t sent, uint64_t errors,
		  uint64_t accepted);

void send_expect_error(struct env *e, int n, enum mllp_context ctx, int reason,
		       bool written, bool reached, bool connected);

void expect_orphan_invalid(bool any_reason, int reason);

#endif

/* The manager loop shared by the pool and the receiver (loop.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mllp/tls.h>

#include "loop.h"

/* Completions taken per wait(). */
#define MAX_CQES 256
/* Consecutive failed wait() calls (other than EINTR) after which the
 * error is taken as persistent. */
#define MAX_WAIT_ERRORS 3
/* Longest sleep while stopping with no timer armed. */
#define STOPPING_POLL_US 1000

static _Thread_local struct mllpi_loop *this_loop;

struct mllpi_loop *mllpi_loop_current(void)
{
	return this_loop;
}

void mllpi_loop_init(struct mllpi_loop *l, const struct mllpi_backend_ops *ops,
		     enum mllp_backend_kind kind,
		     const struct mllpi_backend_config *bc,
		     const struct mllpi_loop_hooks *hooks, void *ctx)
{
	memset(l, 0, sizeof(*l));
	l->ops = ops			      ? ops
		 : kind == MLLP_BACKEND_EPOLL ? &mllpi_backend_epoll
					      : &mllpi_backend_uring;
	l->fallback =
	    kind == MLLP_BACKEND_AUTO && l->ops == &mllpi_backend_uring;
	l->bc = *bc;
	l->hooks = hooks;
	l->ctx = ctx;
	mllpi_timers_init(&l->timers, bc->alloc);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
}

/* The backend, with auto's fallback to epoll (one warning naming why). */
static int create_backend(struct mllpi_loop *l, struct mllp_error *err)
{
	int rc = l->ops->create(&l->bc, &l->be, err);
	if (rc != MLLP_ERR_IO_URING_UNAVAILABLE || !l->fallback)
		return rc;
	char line[512];
	snprintf(line, sizeof(line), "%s; using the epoll backend",
		 err->message);
	if (l->hooks->warn)
		l->hooks->warn(l->ctx, line);
	else
		fprintf(stderr, "[warning] mllp: %s\n", line);
	mllp_error_clear(err);
	l->ops = &mllpi_backend_epoll;
	return l->ops->create(&l->bc, &l->be, err);
}

/* Backend and the owner's setup; the outcome goes to the starting thread
 * (l->ops reaches it through the mutex). */
static int setup(struct mllpi_loop *l)
{
	struct mllp_error err;
	mllp_error_clear(&err);
	int rc = create_backend(l, &err);
	if (rc == 0 && l->hooks->setup)
		rc = l->hooks->setup(l->ctx, &err);
	if (rc < 0 && l->be) {
		l->ops->destroy(l->be);
		l->be = NULL;
	}
	pthread_mutex_lock(&l->mu);
	l->setup_rc = rc;
	l->setup_err = err;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int64_t mllpi_loop_timeout(struct mllpi_loop *l)
{
	struct mllpi_timer *t = mllpi_timers_peek(&l->timers);
	if (!t)
		return -1;
	return t->deadline_us > l->now_us
		   ? (int64_t)(t->deadline_us - l->now_us)
		   : 0;
}

/* Take queued work and fire due timers. */
static void turn_start(struct mllpi_loop *l)
{
	const struct mllpi_loop_hooks *h = l->hooks;
	if (h->take_work && h->take_work(l->ctx) > 0)
		l->now_us = mllpi_now_us();
	struct mllpi_timer *t;
	while ((t = mllpi_timers_peek(&l->timers)) &&
	       t->deadline_us <= l->now_us) {
		mllpi_timer_disarm(&l->timers, t);
		h->on_timer(l->ctx, t);
	}
	if (h->end_turn)
		h->end_turn(l->ctx);
}

/* How long the wait may last; *may_sleep: prepare_sleep was called. */
static int64_t wait_timeout(struct mllpi_loop *l, bool *may_sleep)
{
	const struct mllpi_loop_hooks *h = l->hooks;
	int64_t timeout = mllpi_loop_timeout(l);
	if (timeout < 0 && h->stopping && h->stopping(l->ctx))
		timeout = STOPPING_POLL_US;
	*may_sleep = false;
	if (h->pending && h->pending(l->ctx)) {
		timeout = 0;
	} else if (timeout != 0 && h->prepare_sleep) {
		*may_sleep = true;
		if (h->prepare_sleep(l->ctx))
			timeout = 0;
	}
	return timeout;
}

static void run(struct mllpi_loop *l)
{
	const struct mllpi_loop_hooks *h = l->hooks;
	struct mllpi_cqe cqes[MAX_CQES];
	int wait_errors = 0;
	l->now_us = mllpi_now_us();
	l->wall_s = (int64_t)time(NULL);
	for (;;) {
		turn_start(l);
		if (h->done(l->ctx))
			break;
		bool may_sleep;
		int64_t timeout = wait_timeout(l, &may_sleep);
		if (h->before_wait)
			h->before_wait(l->ctx);
		int got = l->ops->wait(l->be, timeout, cqes, MAX_CQES);
		l->turn++;
		l->now_us = mllpi_now_us();
		l->wall_s = (int64_t)time(NULL);
		if (may_sleep && h->awake)
			h->awake(l->ctx);
		if (got < 0 && got != -EINTR) {
			if (++wait_errors >= MAX_WAIT_ERRORS) {
				if (h->fatal)
					h->fatal(l->ctx, got);
				break;
			}
			continue;
		}
		wait_errors = 0;
		for (int i = 0; i < got; i++)
			h->on_cqe(l->ctx, &cqes[i]);
		if (h->end_turn)
			h->end_turn(l->ctx);
	}
}

static void *loop_main(void *arg)
{
	struct mllpi_loop *l = arg;
	if (setup(l) < 0)
		return NULL;
	this_loop = l;
	run(l);
	if (l->hooks->finish)
		l->hooks->finish(l->ctx);
	this_loop = NULL;
	mllp_tls_thread_cleanup(); /* wolfSSL's per-thread ECC cache */
	return NULL;
}

int mllpi_loop_start(struct mllpi_loop *l, const char *what,
		     struct mllp_error *err)
{
	l->setup_rc = 1;
	int rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc != 0) {
		mllp_error_set(err, MLLP_CTX_NONE, -rc,
			       "cannot start the %s thread", what);
		return -rc;
	}
	pthread_mutex_lock(&l->mu);
	while (l->setup_rc == 1)
		pthread_cond_wait(&l->cv, &l->mu);
	rc = l->setup_rc;
	pthread_mutex_unlock(&l->mu);
	if (rc < 0) {
		pthread_join(l->thread, NULL);
		*err = l->setup_err;
		return rc;
	}
	l->started = true;
	return 0;
}

void mllpi_loop_wake(struct mllpi_loop *l)
{
	l->ops->wake(l->be);
}

void mllpi_loop_join(struct mllpi_loop *l)
{
	if (l->started)
		pthread_join(l->thread, NULL);
	l->started = false;
}

void mllpi_loop_fini(struct mllpi_loop *l)
{
	if (l->be)
		l->ops->destroy(l->be);
	l->be = NULL;
	mllpi_timers_free(&l->timers);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}

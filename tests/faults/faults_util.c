/* Helpers shared by the fault suites (see faults_util.h). */
#include "faults_util.h"

/* ---- helpers --------------------------------------------------------------
 */

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

struct rec g_rec;

/* Per-send reply timeout of send_wait (0: the pool's). */
int64_t g_rt;

void on_event(void *ctx, const struct mllp_event *e)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	uint32_t c = e->connection_id & 255;
	bool ok;
	switch (e->kind) {
	case MLLP_EV_CONNECTION_SUCCESS:
		ok = !r->up[c];
		r->up[c] = true;
		break;
	case MLLP_EV_CONNECTION_FAILURE:
		ok = !r->up[c];
		break;
	case MLLP_EV_CONNECTION_CLOSED:
		ok = r->up[c];
		r->up[c] = false;
		break;
	default:
		ok = r->up[c];
		break;
	}
	if (!ok && r->violations++ < 5)
		fprintf(stderr, "telemetry: %s on conn %u out of order\n",
			mllp_event_name(e->kind), c);
	r->total++;
	if (r->n < MAX_EV) {
		struct ev *t = &r->ev[r->n++];
		t->kind = e->kind;
		t->conn = e->connection_id;
		t->reason = e->error ? e->error->reason : 0;
		t->ctx = e->error ? e->error->context : MLLP_CTX_NONE;
		t->orphan = e->orphan;
		t->delay_ms = e->reconnect_delay_ms;
	}
	pthread_mutex_unlock(&r->mu);
}

void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

void rec_reset(void)
{
	pthread_mutex_lock(&g_rec.mu);
	g_rec.n = 0;
	g_rec.violations = 0;
	g_rec.total = 0;
	memset(g_rec.up, 0, sizeof(g_rec.up));
	pthread_mutex_unlock(&g_rec.mu);
}

/* Events of connection `conn`, as a string of one letter per event:
 * S success, F failure, C closed, E send_error, T receive_timeout,
 * I invalid_response, V receive_valid, D stale_reply (a duplicate). */
void rec_seq(uint32_t conn, char *out, size_t cap)
{
	static const char letters[] = "SFCETIVD";
	size_t k = 0;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n && k + 1 < cap; i++)
		if (g_rec.ev[i].conn == conn)
			out[k++] = letters[g_rec.ev[i].kind];
	pthread_mutex_unlock(&g_rec.mu);
	out[k] = 0;
}

/* The i-th event of kind k on conn (or NULL). Copied out. */
bool rec_find(uint32_t conn, enum mllp_event_kind k, int nth, struct ev *out)
{
	bool found = false;
	pthread_mutex_lock(&g_rec.mu);
	for (int i = 0; i < g_rec.n; i++) {
		if (g_rec.ev[i].conn != conn || g_rec.ev[i].kind != k)
			continue;
		if (nth-- == 0) {
			*out = g_rec.ev[i];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&g_rec.mu);
	return found;
}

/* Wait (bounded) until the event string of conn equals want. */
bool wait_seq(uint32_t conn, const char *want, int timeout_ms)
{
	char got[256];
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		rec_seq(conn, got, sizeof(got));
		if (strcmp(got, want) == 0)
			return true;
		if (now_ms() > end) {
			fprintf(stderr,
				"events of conn %u: got \"%s\", want "
				"\"%s\"\n",
				conn, got, want);
			return false;
		}
		pause_ms(1);
	}
}

/* The backend under test: MLLP_TEST_BACKEND = io_uring | epoll | auto
 * (unset: auto), as in the integration suites. */
enum mllp_backend_kind test_backend(void)
{
	const char *b = getenv("MLLP_TEST_BACKEND");
	if (b && !strcmp(b, "epoll"))
		return MLLP_BACKEND_EPOLL;
	if (b && (!strcmp(b, "io_uring") || !strcmp(b, "uring")))
		return MLLP_BACKEND_IO_URING;
	return MLLP_BACKEND_AUTO;
}

void base_config(struct mllp_pool_config *cfg)
{
	mllp_pool_config_init(cfg);
	cfg->backend = test_backend();
	/* FAULTS_LIBC_ALLOC=1: the pool allocates with malloc, so memcheck
	 * sees every allocation (jemalloc's private arena hides them). */
	const char *la = getenv("FAULTS_LIBC_ALLOC");
	if (la && *la == '1')
		cfg->allocator = mllp_allocator_libc();
	cfg->log = quiet;
	cfg->telemetry = on_event;
	cfg->telemetry_ctx = &g_rec;
	cfg->backoff_divisor = 100;
	cfg->conn.connect_timeout_ms = 1000;
	cfg->conn.reply_timeout_ms = 300;
	cfg->max_reply = 64 * 1024;
	cfg->ring_entries = 256;
	cfg->recv_buffers = 64;
}

bool all_up(struct env *e)
{
	return mllp_pool_connected_count(e->pool, e->ep) == e->nconns;
}

bool wait_up(struct env *e, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (!all_up(e)) {
		if (now_ms() > end)
			return false;
		pause_ms(1);
	}
	return true;
}

void env_pool(struct env *e, const struct mllp_pool_config *cfg,
	      uint32_t nconns)
{
	e->nconns = nconns;
	struct mllp_error err;
	int rc = mllp_pool_create(cfg, &e->pool, &err);
	if (rc != 0)
		fprintf(stderr, "pool: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_int_equal(mllp_pool_add_endpoint(e->pool, "127.0.0.1",
						e->fr.port, nconns, NULL,
						&e->ep, NULL),
			 0);
}

/* A zeroed env, the telemetry reset, the fault receiver started. */
void env_begin(struct env *e, const struct fr_config *fc)
{
	memset(e, 0, sizeof(*e));
	rec_reset();
	fr_start(&e->fr, fc);
}

/* env_begin() with the listener closed (connects refused), and a base
 * config in cfg. */
void env_refusing(struct env *e, struct mllp_pool_config *cfg)
{
	env_begin(e, NULL);
	fr_listen(&e->fr, false);
	base_config(cfg);
}

/* Receiver with one fault firing once, and a pool of one connection. */
void env_start(struct env *e, const struct fr_config *fc, int fault,
	       const struct mllp_pool_config *cfg)
{
	env_begin(e, fc);
	g_rt = 0;
	if (fault >= 0)
		fr_set(&e->fr, (enum fr_fault)fault, 1000000, 1);
	struct mllp_pool_config def;
	if (!cfg) {
		base_config(&def);
		cfg = &def;
	}
	env_pool(e, cfg, 1);
}

/* env_start(), then wait until the connection is up. */
void env_start_up(struct env *e, const struct fr_config *fc, int fault,
		  const struct mllp_pool_config *cfg)
{
	env_start(e, fc, fault, cfg);
	assert_true(wait_up(e, 5000));
}

int rec_violations(void)
{
	pthread_mutex_lock(&g_rec.mu);
	int v = g_rec.violations;
	pthread_mutex_unlock(&g_rec.mu);
	return v;
}

void env_stop(struct env *e)
{
	mllp_pool_destroy(e->pool);
	fr_stop(&e->fr);
	assert_int_equal(rec_violations(), 0);
}

/* A test HL7 message with control id CTRL<n> (malloc'd). */
char *hl7(int n, size_t *len)
{
	char *s = malloc(256);
	assert_non_null(s);
	int l = snprintf(s, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|"
			 "CTRL%d|P|2.5\rEVN|A01|20240101120000\rPID|1||%d||"
			 "DOE^JOHN\r",
			 n, n);
	*len = (size_t)l;
	return s;
}

void probe_cb(struct mllp_future *f, void *arg)
{
	(void)f;
	struct probe *p = arg;
	atomic_store(&p->connected, mllp_pool_is_connected(p->pool, p->ep, 0));
	atomic_fetch_add(&p->calls, 1);
}

/* Send message n (HL7) and wait for its completion; the caller frees. */
struct mllp_future *send_wait(struct env *e, int n, struct probe *pr)
{
	size_t len;
	char *m = hl7(n, &len);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.reply_timeout_ms = g_rt;
	if (pr) {
		pr->pool = e->pool;
		pr->ep = e->ep;
		atomic_store(&pr->calls, 0);
		o.callback = probe_cb;
		o.callback_arg = pr;
	}
	struct mllp_future *f = NULL;
	struct mllp_error err;
	int rc = mllp_pool_send(e->pool, e->ep, m, len, &o, &f, &err);
	free(m);
	if (rc != 0)
		fprintf(stderr, "send %d: %s\n", n, err.message);
	assert_int_equal(rc, 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	if (pr) {
		/* The callback runs after the result is published: wait for
		 * it (bounded), then it must have run exactly once. */
		uint64_t end = now_ms() + 5000;
		while (atomic_load(&pr->calls) == 0 && now_ms() < end)
			pause_ms(1);
		assert_int_equal(atomic_load(&pr->calls), 1);
	}
	return f;
}

void expect_verdict(struct mllp_future *f, int n, enum mllp_verdict v)
{
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != 0)
		fprintf(stderr, "message %d: %s (%s)\n", n, r->error.message,
			mllp_err_name(r->status));
	assert_int_equal(r->status, 0);
	assert_true(r->written);
	assert_true(r->has_verdict);
	if (r->verdict != v)
		fprintf(stderr, "message %d: verdict %s: %s\n", n,
			mllp_verdict_name(r->verdict), r->why);
	assert_int_equal(r->verdict, v);
	if (v != MLLP_BAD_MESSAGE_CONTROL_ID) {
		char want[32];
		snprintf(want, sizeof(want), "CTRL%d", n);
		assert_true(mllp_str_eq(r->ack.control_id, want));
	}
}

void send_expect_aa(struct env *e, int n)
{
	/* A healthy exchange: a generous reply timeout (loaded CI, TSan). */
	int64_t saved = g_rt;
	g_rt = 5000;
	struct probe pr;
	struct mllp_future *f = send_wait(e, n, &pr);
	g_rt = saved;
	expect_verdict(f, n, MLLP_APPLICATION_ACCEPT);
	assert_true(atomic_load(&pr.connected));
	mllp_future_free(f);
}

void expect_error(struct mllp_future *f, enum mllp_context ctx, int reason,
		  bool written, bool reached)
{
	const struct mllp_result *r = mllp_future_result(f);
	assert_non_null(r);
	if (r->status != reason)
		fprintf(stderr, "status %s (%s: %s), want %s\n",
			mllp_err_name(r->status),
			mllp_context_name(r->error.context), r->error.message,
			mllp_err_name(reason));
	assert_int_equal(r->status, reason);
	assert_int_equal(r->error.reason, reason);
	assert_int_equal(r->error.context, ctx);
	assert_int_equal(r->written, written);
	assert_int_equal(r->may_have_reached, reached);
	assert_false(r->has_verdict);
}

void expect_stats(struct env *e, uint64_t sent, uint64_t errors,
		  uint64_t accepted)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(e->pool, &st);
	assert_int_equal(st.sent, sent);
	assert_int_equal(st.errors, errors);
	assert_int_equal(st.acked[MLLP_APPLICATION_ACCEPT], accepted);
	assert_int_equal(st.in_flight, 0);
	assert_int_equal(st.queued, 0);
}

/* Send message n: it fails as expect_error() checks, and the completion
 * callback saw the connection up (connected) or not. */
void send_expect_error(struct env *e, int n, enum mllp_context ctx, int reason,
		       bool written, bool reached, bool connected)
{
	struct probe pr;
	struct mllp_future *f = send_wait(e, n, &pr);
	expect_error(f, ctx, reason, written, reached);
	assert_int_equal(atomic_load(&pr.connected), connected);
	mllp_future_free(f);
}

/* The first invalid_response of connection 0 is an orphan (with reason,
 * unless any_reason). */
void expect_orphan_invalid(bool any_reason, int reason)
{
	struct ev iv;
	assert_true(rec_find(0, MLLP_EV_INVALID_RESPONSE, 0, &iv));
	assert_true(iv.orphan);
	if (!any_reason)
		assert_int_equal(iv.reason, reason);
}

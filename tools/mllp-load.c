/* mllp-load: drive an MLLP receiver through the pool and report.
 *
 *   mllp-load [OPTIONS] [HOST PORT]
 *
 * Without HOST PORT it starts the library's receiver in-process on an
 * ephemeral loopback port (the embedded receiver) and loads that.
 *
 * Closed loop (default): every connection keeps one message in flight; a
 * completion callback (on the pool's manager thread) records the result
 * and sends the connection's next message at once, from a per-slot buffer
 * lent to the pool (no copy). Latency is the library's, from the first
 * byte written to the reply.
 * Open loop (--rate): the main thread sends message i at its intended time
 * t0 + i / rate (or on the ramp), whatever the replies do; latency is
 * measured from the intended time (corrected for coordinated omission),
 * or with --uncorrected the library's, from the first byte written.
 *
 * Every message is accounted for: sent == accepted + app_errors +
 * app_rejects + failed, checked at the end. Public library API only.
 * The parts: see load.h. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

static const char *prog = LOAD_PROG;

struct load_state L;

static void count_failure(size_t slot)
{
	atomic_fetch_add_explicit(&L.errors[slot], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&L.failed, 1, memory_order_relaxed);
}

/* ---- results ------------------------------------------------------------
 */

static void wake_main(void)
{
	uint64_t one = 1;
	ssize_t n = write(L.efd, &one, sizeof(one));
	(void)n;
}

/* Record one completed future. */
static void account(const struct mllp_result *r, uint64_t latency_us,
		    size_t len)
{
	if (r->status != 0) {
		count_failure(load_err_index(r->status));
		return;
	}
	tool_hist_record(&L.hist, latency_us);
	/* The second's maximum, reset by the per-second sample. */
	uint64_t m = atomic_load_explicit(&L.sec_max, memory_order_relaxed);
	while (latency_us > m &&
	       !atomic_compare_exchange_weak_explicit(
		   &L.sec_max, &m, latency_us, memory_order_relaxed,
		   memory_order_relaxed))
		;
	if (!r->has_verdict && L.o.cl.mllp_release == 2) { /* committed */
		atomic_fetch_add_explicit(&L.accepted, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&L.bytes_acked, len,
					  memory_order_relaxed);
		return;
	}
	if (!r->has_verdict) {
		count_failure(ERR_OTHER);
		return;
	}
	switch (r->verdict) {
	case MLLP_APPLICATION_ACCEPT:
		atomic_fetch_add_explicit(&L.accepted, 1, memory_order_relaxed);
		break;
	case MLLP_APPLICATION_ERROR:
		atomic_fetch_add_explicit(&L.app_errors, 1,
					  memory_order_relaxed);
		break;
	case MLLP_APPLICATION_REJECT:
		atomic_fetch_add_explicit(&L.app_rejects, 1,
					  memory_order_relaxed);
		break;
	default:
		count_failure(ERR_VERDICT0 + (size_t)r->verdict);
		return;
	}
	atomic_fetch_add_explicit(&L.bytes_acked, len, memory_order_relaxed);
}

static void finish_one(void)
{
	/* seq_cst: pairs with main storing stopping then reading inflight,
	 * so either main sees 0 or this sees stopping and wakes it. */
	if (atomic_fetch_sub(&L.inflight, 1) == 1 &&
	    (atomic_load(&L.stopping) || atomic_load(&L.issued_all)))
		wake_main();
}

/* ---- closed loop ----------------------------------------------------------
 */

static void on_closed_done(struct mllp_future *f, void *arg);

/* Send the slot's next message; runs on the main thread (start, re-kick)
 * or in a completion callback (manager thread), never blocks. Every
 * message in flight holds one unit of L.inflight. held: the caller hands
 * over the unit of the message that just completed (the callback), which
 * the next message keeps, so the closed loop's steady state touches the
 * in-flight count not at all; a unit not passed on is released
 * (finish_one). Without held a unit is taken for the new message. */
static void slot_send(struct slot *s, bool held)
{
	if (atomic_load_explicit(&L.stopping, memory_order_acquire))
		goto release;
	uint64_t seq =
	    atomic_fetch_add_explicit(&L.tickets, 1, memory_order_relaxed);
	if (L.o.count && seq >= L.o.count) {
		/* The last messages are out: main drains them. */
		if (!atomic_exchange(&L.issued_all, true))
			wake_main();
		goto release;
	}
	const struct tmpl *t = &L.tmpl[seq % L.ntmpl];
	s->tmpl = (uint32_t)(seq % L.ntmpl);
	load_gen_message(t, seq, s->buf);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.borrow_payload = true;
	so.key_field = L.o.keys ? "PID-3.1" : NULL;
	so.callback = on_closed_done;
	so.callback_arg = s;
	atomic_fetch_add_explicit(&L.sent, 1, memory_order_relaxed);
	if (!held)
		atomic_fetch_add_explicit(&L.inflight, 1, memory_order_acq_rel);
	held = true;
	struct mllp_future *f;
	int rc =
	    mllp_pool_send(L.pool, L.ep, s->buf, t->out_len, &so, &f, NULL);
	if (rc == 0)
		return; /* the callback accounts for it and frees f */
	count_failure(load_err_index(rc));
	/* Retried by the main thread after a pause, so a down endpoint is
	 * not hammered from the callback. */
	atomic_store_explicit(&s->idle, true, memory_order_release);
	if (!atomic_exchange_explicit(&L.kick_pending, true,
				      memory_order_acq_rel))
		wake_main();
release:
	if (held)
		finish_one();
}

static void on_closed_done(struct mllp_future *f, void *arg)
{
	struct slot *s = arg;
	const struct mllp_result *r = mllp_future_result(f);
	account(r, r->latency_us, L.tmpl[s->tmpl].out_len);
	mllp_future_free(f);
	slot_send(s, true);
}

/* ---- open loop ------------------------------------------------------------
 */

static void on_open_done(struct mllp_future *f, void *arg)
{
	uintptr_t a = (uintptr_t)arg;
	uint64_t intended = L.t0_ns + (uint64_t)(a >> 8);
	uint64_t now = tool_now_ns();
	uint64_t lat = now > intended ? (now - intended) / 1000 : 0;
	const struct mllp_result *r = mllp_future_result(f);
	if (L.o.uncorrected)
		lat = r->latency_us;
	account(r, lat, L.tmpl[a & 0xFF].out_len);
	mllp_future_free(f);
	finish_one();
}

/* Intended send time of message i, in ns after t0. */
static uint64_t intended_ns(uint64_t i)
{
	double r = L.o.rate, ramp = L.o.ramp_s, t;
	double ramp_msgs = r * ramp / 2.0;
	if (ramp > 0 && (double)i < ramp_msgs)
		t = sqrt(2.0 * ramp * (double)i / r);
	else
		t = ramp + ((double)i - ramp_msgs) / r;
	return (uint64_t)(t * 1e9);
}

static void open_send(uint64_t i, uint64_t rel_ns, unsigned char *scratch)
{
	size_t ti = i % L.ntmpl;
	const struct tmpl *t = &L.tmpl[ti];
	load_gen_message(t, i, scratch);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.key_field = L.o.keys ? "PID-3.1" : NULL;
	so.callback = on_open_done;
	so.callback_arg = (void *)(uintptr_t)((rel_ns << 8) | ti);
	atomic_fetch_add_explicit(&L.sent, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&L.inflight, 1, memory_order_acq_rel);
	struct mllp_future *f;
	int rc =
	    mllp_pool_send(L.pool, L.ep, scratch, t->out_len, &so, &f, NULL);
	if (rc != 0) {
		count_failure(load_err_index(rc));
		finish_one();
	}
	/* Otherwise the callback accounts for it and frees f. */
}

/* ---- signals --------------------------------------------------------------
 */

static void on_signal(int sig)
{
	int none = 0;
	atomic_compare_exchange_strong(&L.signo, &none, sig);
	atomic_fetch_add(&L.sigints, 1);
	atomic_store(&L.stopping, true);
	wake_main();
}

/* The eventfd that wakes the main thread, SIGINT/SIGTERM handlers. */
static int setup_process(void)
{
	L.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (L.efd < 0) {
		fprintf(stderr, "%s: eventfd: %s\n", prog, strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	/* Precise wake-ups for the open-loop pacer (default slack 50 us). */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ---- the run ----------------------------------------------------------------
 */

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Sleep until until_ns (UINT64_MAX: no deadline) or a wake-up. */
static void wait_event(uint64_t until_ns)
{
	struct timespec ts = {0, 0};
	const struct timespec *tp = NULL;
	if (until_ns != UINT64_MAX) {
		uint64_t now = tool_now_ns();
		if (until_ns > now) {
			uint64_t d = until_ns - now;
			ts.tv_sec = (time_t)(d / 1000000000u);
			ts.tv_nsec = (long)(d % 1000000000u);
		}
		tp = &ts;
	}
	struct pollfd pfd = {.fd = L.efd, .events = POLLIN};
	if (ppoll(&pfd, 1, tp, NULL) > 0) {
		uint64_t v;
		ssize_t r = read(L.efd, &v, sizeof(v));
		(void)r;
	}
}

/* The pool, with one endpoint of o->connections connections. */
static int start_pool(const struct opts *o, const char *host, uint16_t port)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	tool_client_pool_config(&o->cl, &cfg);
	cfg.conn.queue_timeout_ms = o->cl.timeout_ms;
	cfg.conn.use_backoff = false;
	cfg.conn.auto_reconnect_interval_ms = 100;
	cfg.log = tool_log_limited;
	cfg.log_ctx = (void *)prog;
	if (o->rate > 0)
		cfg.queue_capacity = 1u << 20;
	struct mllp_error err;
	int rc = mllp_pool_create(&cfg, &L.pool, &err);
	if (rc == 0)
		rc = mllp_pool_add_endpoint(L.pool, host, port, o->connections,
					    NULL, &L.ep, &err);
	if (rc != 0) {
		char ebuf[300];
		mllp_error_format(&err, ebuf, sizeof(ebuf));
		fprintf(stderr, "%s: %s\n", prog, ebuf);
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

/* Closed loop: start the slots (on the ramp) and re-kick those whose send
 * failed; lowers *wake_at to the next start or kick. */
static void closed_step(uint64_t now, uint64_t *next_kick, uint64_t *wake_at)
{
	const struct opts *o = &L.o;
	for (uint32_t i = 0; i < L.nslots; i++) {
		struct slot *s = &L.slots[i];
		if (s->started)
			continue;
		uint64_t at = L.t0_ns + (uint64_t)(o->ramp_s * 1e9 * (double)i /
						   (double)L.nslots);
		if (at > now) {
			if (at < *wake_at)
				*wake_at = at;
			continue;
		}
		s->started = true;
		slot_send(s, false);
	}
	if (!atomic_load(&L.kick_pending))
		return;
	if (now >= *next_kick) {
		atomic_store(&L.kick_pending, false);
		for (uint32_t i = 0; i < L.nslots; i++)
			if (atomic_exchange(&L.slots[i].idle, false))
				slot_send(&L.slots[i], false);
		*next_kick = now + 10000000u;
	} else if (*next_kick < *wake_at) {
		*wake_at = *next_kick;
	}
}

/* Open loop: send every message whose intended time has come; lowers
 * *wake_at to the next one. Returns true when every message is sent. */
static bool open_step(uint64_t now, uint64_t dur_ns, uint64_t *open_i,
		      unsigned char *scratch, uint64_t *wake_at)
{
	const struct opts *o = &L.o;
	for (;;) {
		if (o->count && *open_i >= o->count)
			return true;
		uint64_t rel = intended_ns(*open_i);
		if (!o->count && rel >= dur_ns)
			return true;
		if (L.t0_ns + rel > now) {
			if (L.t0_ns + rel < *wake_at)
				*wake_at = L.t0_ns + rel;
			return false;
		}
		open_send(*open_i, rel, scratch);
		(*open_i)++;
	}
}

/* Send until the duration or count is reached or a signal stops the run.
 * The main thread sleeps until its next deadline (end of the duration, a
 * ramp step, a re-kick, an open-loop send, a status line) or a wake-up. */
static void run(struct progress *pg, unsigned char *scratch)
{
	const struct opts *o = &L.o;
	bool closed = o->rate <= 0;
	uint64_t dur_ns = (uint64_t)(o->duration_s * 1e9);
	uint64_t next_kick = 0, open_i = 0;
	for (;;) {
		uint64_t now = tool_now_ns();
		if (atomic_load(&L.stopping))
			return;
		/* Closed loop: the duration ends it. Open loop: every message
		 * intended within the duration is sent, even when the pacer
		 * wakes late (open_step ends when the next one would be due
		 * after the duration). */
		if (closed && !o->count && now - L.t0_ns >= dur_ns)
			return;
		uint64_t wake_at = pg->on ? pg->next_ns : UINT64_MAX;
		if (!o->count && L.t0_ns + dur_ns < wake_at)
			wake_at = L.t0_ns + dur_ns;
		if (closed) {
			closed_step(now, &next_kick, &wake_at);
			if (atomic_load(&L.issued_all))
				return; /* count reached: drain */
		} else if (open_step(now, dur_ns, &open_i, scratch, &wake_at)) {
			return; /* every message sent: drain */
		}
		if (load_progress_tick(pg, now))
			continue;
		wait_event(wake_at);
	}
}

/* No new messages; wait for those in flight, bounded by the reply timeout
 * (+ 0.5 s); the caller then stops the pool, which fails whatever is left
 * (MLLP_ERR_STOPPED). A run so ends at most that long after its duration,
 * whatever the receiver does. A second signal ends the wait.
 * A second ending within 0.1 s of the stop of sending waits those 0.1 s:
 * a quick drain leaves it to the run's last sample (load_progress_final),
 * so a 3 s run has 3 per-second lines, not a fourth one of a few
 * microseconds. */
static void drain(struct progress *pg)
{
	atomic_store(&L.stopping, true);
	uint64_t now = tool_now_ns();
	uint64_t drain_end =
	    now + (uint64_t)L.o.cl.timeout_ms * 1000000u + 500000000u;
	uint64_t hold = now + 100000000u;
	if (pg->next_ns > hold)
		hold = 0;
	while (atomic_load(&L.inflight) > 0 && atomic_load(&L.sigints) < 2) {
		now = tool_now_ns();
		if (now >= drain_end)
			break;
		if (now >= hold)
			load_progress_tick(pg, now);
		uint64_t due = pg->next_ns > hold ? pg->next_ns : hold;
		uint64_t w = drain_end;
		if (pg->on && due < w)
			w = due;
		wait_event(w);
	}
}

/* Buffers: one scratch message (open loop), one per slot (closed loop). */
static int alloc_buffers(unsigned char **scratch)
{
	bool ok = (*scratch = malloc(L.max_len)) != NULL;
	if (ok && L.o.rate <= 0) {
		/* a window of messages per connection */
		L.nslots = L.o.connections * tool_window_size(L.o.cl.window);
		L.slots = calloc(L.nslots, sizeof(*L.slots));
		ok = L.slots != NULL;
		for (uint32_t i = 0; ok && i < L.nslots; i++)
			ok = (L.slots[i].buf = malloc(L.max_len)) != NULL;
	}
	if (ok)
		return 0;
	fprintf(stderr, "%s: out of memory\n", prog);
	return TOOL_EXIT_FAIL;
}

static void free_buffers(unsigned char *scratch)
{
	if (L.slots)
		for (uint32_t i = 0; i < L.nslots; i++)
			free(L.slots[i].buf);
	free(L.slots);
	free(scratch);
}

/* Run, drain, stop the pool and the embedded receiver, and report (the
 * per-second files too); returns the exit status. */
static int run_and_report(struct load_embedded *emb, struct report *rep,
			  struct progress *pg, FILE *html,
			  unsigned char *scratch)
{
	rep->backend = mllp_pool_backend(L.pool);
	rep->message_bytes = L.tmpl[0].out_len;
	double cpu0 = cpu_seconds();
	rep->start_unix = (int64_t)time(NULL);
	L.t0_ns = tool_now_ns();
	load_progress_init(pg, L.t0_ns);
	run(pg, scratch);
	drain(pg);

	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	uint32_t up = mllp_pool_connected_count(L.pool, L.ep);
	mllp_pool_stop(L.pool);
	uint64_t end_ns = tool_now_ns();
	load_progress_final(pg, end_ns, up);
	mllp_pool_get_stats(L.pool, &st);
	load_embedded_stop(emb);
	load_report_collect(rep, (double)(end_ns - L.t0_ns) / 1e9,
			    cpu_seconds() - cpu0, st.reconnects);
	int code = load_report_print(&L.o, rep);
	/* A report file that cannot be written fails a run that passed. */
	int wcode = load_progress_close(pg);
	if (html && load_html_write(html, rep, pg) != 0)
		wcode = TOOL_EXIT_FAIL;
	return code == TOOL_EXIT_OK && wcode ? wcode : code;
}

int main(int argc, char **argv)
{
	struct opts *o = &L.o;
	L.efd = -1;
	load_parse_args(argc, argv, o);
	if (o->progress < 0)
		o->progress = isatty(STDERR_FILENO);
	/* Each connection is a socket, twice with the embedded receiver. */
	char what[64];
	snprintf(what, sizeof(what), "-c %u", o->connections);
	if (!tool_nofile(
		prog, (uint64_t)o->connections * (o->host ? 1 : 2) + 64, what))
		return TOOL_EXIT_FAIL;

	static struct load_inputs in;
	static struct report rep;
	static struct progress pg;
	FILE *html = NULL;
	struct load_embedded emb = {0};
	const char *host = NULL;
	uint16_t port = 0;
	unsigned char *scratch = NULL;
	int code = load_templates(o, &in);
	if (code == 0)
		code = load_progress_open(&pg, o);
	if (code == 0)
		code = load_html_open(o, &html);
	if (code == 0)
		code = setup_process();
	if (code == 0)
		code = load_embedded_start(o, &emb, &host, &port, rep.target,
					   sizeof(rep.target));
	if (code == 0)
		code = start_pool(o, host, port);
	if (code == 0)
		code = alloc_buffers(&scratch);
	if (code == 0) {
		code = run_and_report(&emb, &rep, &pg, html, scratch);
		html = NULL; /* closed by load_html_write */
	}

	mllp_pool_destroy(L.pool);
	load_embedded_destroy(&emb);
	free_buffers(scratch);
	load_inputs_free(&in);
	load_progress_free(&pg);
	if (html)
		fclose(html);
	if (L.efd >= 0)
		close(L.efd);
	return code;
}

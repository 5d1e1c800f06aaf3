/* mllp-load's per-second work, on the main thread: the status line
 * (--progress), one JSON line (--timeseries) and one kept point (for
 * --html) per second, from differences of the run's counters and
 * histogram. Nothing here runs per message: the completions only count
 * into L. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const char *prog = LOAD_PROG;

int load_progress_open(struct progress *p, const struct opts *o)
{
	memset(p, 0, sizeof(*p));
	p->keep = o->html != NULL;
	p->on = o->progress || o->timeseries || p->keep;
	if (!o->timeseries)
		return 0;
	if (strcmp(o->timeseries, "-") == 0) {
		p->ts = stdout;
		p->ts_stdout = true;
		return 0;
	}
	p->ts = fopen(o->timeseries, "w");
	if (!p->ts) {
		fprintf(stderr, "%s: cannot write %s: %s\n", prog,
			o->timeseries, strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	return 0;
}

void load_progress_init(struct progress *p, uint64_t t0_ns)
{
	p->last_ns = t0_ns;
	p->next_ns = t0_ns + 1000000000u;
}

/* Failures by kind: MLLP_ERR_TIMEOUT; a reply with a failing verdict
 * (wrong control id, invalid ACK); anything else (transport). */
static void split_failures(const uint64_t *d, struct series_point *s)
{
	size_t to = load_err_index(MLLP_ERR_TIMEOUT);
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (i == to)
			s->timeouts += d[i];
		else if (i >= ERR_VERDICT0 && i < ERR_OTHER)
			s->invalid += d[i];
		else
			s->transport += d[i];
	}
}

static void write_json(FILE *f, const struct series_point *s, const uint64_t *d)
{
	fprintf(f,
		"{\"t\":%.3f,\"dt\":%.3f,\"sent\":%" PRIu64
		",\"acked\":{\"accepted\":%" PRIu64 ",\"app_errors\":%" PRIu64
		",\"app_rejects\":%" PRIu64 "},\"failed\":{",
		s->t, s->dt, s->sent, s->accepted, s->app_errors,
		s->app_rejects);
	const char *sep = "";
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (!d[i])
			continue;
		fprintf(f, "%s\"%s\":%" PRIu64, sep, load_err_name(i), d[i]);
		sep = ",";
	}
	uint64_t acked = s->accepted + s->app_errors + s->app_rejects;
	fprintf(f, "},\"throughput_msgs_per_s\":%.1f,\"latency_us\":",
		s->dt > 0 ? (double)acked / s->dt : 0.0);
	if (s->replies)
		fprintf(f,
			"{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
			",\"p99\":%" PRIu64 ",\"max\":%" PRIu64 "}",
			s->p50, s->p90, s->p99, s->max);
	else
		fprintf(f, "null");
	fprintf(f, ",\"connections_up\":%u,\"reconnects\":%" PRIu64 "}\n",
		s->connections, s->reconnects);
	fflush(f);
}

static void keep_point(struct progress *p, const struct series_point *s)
{
	if (p->n == p->cap) {
		/* Once a second at most: no allocation per message. */
		size_t cap = p->cap ? 2 * p->cap : 256;
		struct series_point *v = realloc(p->v, cap * sizeof(*v));
		if (!v)
			return; /* the chart lacks the point; the run goes on */
		p->v = v;
		p->cap = cap;
	}
	p->v[p->n++] = *s;
}

/* The interval since the last sample, ending at now. */
static void sample(struct progress *p, uint64_t now, uint32_t connections,
		   uint64_t reconnects)
{
	struct series_point s = {0};
	uint64_t d[ERR_SLOTS],
	    done[3] = {atomic_load(&L.accepted), atomic_load(&L.app_errors),
		       atomic_load(&L.app_rejects)};
	uint64_t sent = atomic_load(&L.sent);
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		uint64_t e = atomic_load(&L.errors[i]);
		d[i] = e - p->last_errors[i];
		p->last_errors[i] = e;
	}
	s.t = (double)(now - L.t0_ns) / 1e9;
	s.dt = (double)(now - p->last_ns) / 1e9;
	s.sent = sent - p->last_sent;
	s.accepted = done[0] - p->last_done[0];
	s.app_errors = done[1] - p->last_done[1];
	s.app_rejects = done[2] - p->last_done[2];
	split_failures(d, &s);
	s.replies = p->diff.count;
	s.p50 = tool_hist_quantile(&p->diff, 0.50);
	s.p90 = tool_hist_quantile(&p->diff, 0.90);
	s.p99 = tool_hist_quantile(&p->diff, 0.99);
	/* The second's own maximum (the diff's is the run's). */
	s.max = atomic_exchange_explicit(&L.sec_max, 0, memory_order_relaxed);
	if (s.max < s.p99)
		s.max = s.p99;
	s.connections = connections;
	s.reconnects = reconnects - p->last_reconnects;
	p->last_sent = sent;
	memcpy(p->last_done, done, sizeof(done));
	p->last_reconnects = reconnects;
	if (p->ts)
		write_json(p->ts, &s, d);
	if (p->keep)
		keep_point(p, &s);
}

static uint64_t pool_reconnects(void)
{
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(L.pool, &st);
	return st.reconnects;
}

bool load_progress_tick(struct progress *p, uint64_t now)
{
	if (!p->on || now < p->next_ns)
		return false;
	uint64_t acked = atomic_load(&L.accepted) + atomic_load(&L.app_errors) +
			 atomic_load(&L.app_rejects);
	tool_hist_snapshot(&L.hist, &p->cur);
	tool_hist_diff(&p->cur, &p->prev, &p->diff);
	double dt = (double)(now - p->last_ns) / 1e9;
	if (L.o.progress)
		fprintf(
		    stderr,
		    "%7.1fs  sent %" PRIu64 "  acked %" PRIu64
		    "  rate %.0f/s  p99 %" PRIu64 "us  errors %" PRIu64 "\n",
		    (double)(now - L.t0_ns) / 1e9, atomic_load(&L.sent), acked,
		    dt > 0 ? (double)(acked - p->last_acked) / dt : 0.0,
		    tool_hist_quantile(&p->diff, 0.99), atomic_load(&L.failed));
	if (p->ts || p->keep)
		sample(p, now, mllp_pool_connected_count(L.pool, L.ep),
		       pool_reconnects());
	p->prev = p->cur;
	p->last_ns = now;
	p->last_acked = acked;
	p->next_ns += 1000000000u;
	return true;
}

void load_progress_final(struct progress *p, uint64_t now, uint32_t connections)
{
	if (!(p->ts || p->keep) || now <= p->last_ns)
		return;
	tool_hist_snapshot(&L.hist, &p->cur);
	tool_hist_diff(&p->cur, &p->prev, &p->diff);
	sample(p, now, connections, pool_reconnects());
	p->prev = p->cur;
	p->last_ns = now;
}

int load_progress_close(struct progress *p)
{
	if (!p->ts)
		return 0;
	bool bad = ferror(p->ts) != 0;
	if (p->ts_stdout)
		bad = fflush(p->ts) != 0 || bad;
	else
		bad = fclose(p->ts) != 0 || bad;
	p->ts = NULL;
	if (!bad)
		return 0;
	fprintf(stderr, "%s: cannot write %s: %s\n", prog, L.o.timeseries,
		strerror(errno ? errno : EIO));
	return TOOL_EXIT_FAIL;
}

void load_progress_free(struct progress *p)
{
	if (p->ts && !p->ts_stdout)
		fclose(p->ts);
	free(p->v);
	p->v = NULL;
}

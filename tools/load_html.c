/* mllp-load's --html: one self-contained page (no script, no network, no
 * font files) with the run's parameters and summary and four charts drawn
 * here as inline SVG: throughput, latency over time, the latency
 * distribution and the outcomes per second. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"
#include "load_svg.h"

static const char *prog = LOAD_PROG;

int load_html_open(const struct opts *o, FILE **f)
{
	*f = NULL;
	if (!o->html)
		return 0;
	*f = fopen(o->html, "w");
	if (*f)
		return 0;
	fprintf(stderr, "%s: cannot write %s: %s\n", prog, o->html,
		strerror(errno));
	return TOOL_EXIT_FAIL;
}

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			putc(*s, f);
		}
	}
}

static const char style[] =
    "body{font:14px/1.4 'DejaVu Sans',Verdana,sans-serif;color:#222;"
    "margin:24px;background:#fff}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:0 0 4px}\n"
    ".sub{color:#555;margin:0 0 16px}\n"
    ".tables{display:flex;flex-wrap:wrap;gap:24px;margin-bottom:20px}\n"
    "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;"
    "border-bottom:1px solid #e4e4e4;vertical-align:top}\n"
    "th{font-weight:600;color:#444}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}\n"
    ".ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}\n"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,"
    "minmax(560px,1fr));gap:20px}\n"
    "section{border:1px solid #e4e4e4;border-radius:6px;padding:10px}\n"
    "svg.chart{width:100%;height:auto;display:block}\n"
    "svg text{font-family:'DejaVu Sans',Verdana,sans-serif;font-size:12px;"
    "fill:#333}\n"
    ".grid line{stroke:#e6e6e6}.axis line{stroke:#555}\n"
    ".xl text,.at{text-anchor:middle}.yl text{text-anchor:end}\n"
    ".at{font-size:12px;fill:#555}\n"
    "svg path{fill:none;stroke-width:2;stroke-linejoin:round;"
    "stroke-linecap:round}\n"
    "svg line.c0,svg line.c1,svg line.c2,svg line.c3,svg line.c4,"
    "svg line.c5{stroke-width:3}\n"
    ".c0{stroke:#1f77b4}.c1{stroke:#ff7f0e}.c2{stroke:#d62728}"
    ".c3{stroke:#9467bd}.c4{stroke:#555}.c5{stroke:#8c564b}\n"
    ".dash{stroke-dasharray:5 4}\n"
    ".foot{color:#666;margin-top:16px;font-size:12px;word-break:break-all}"
    "\n";

static void row(FILE *f, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void row(FILE *f, const char *name, const char *fmt, ...)
{
	char v[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof(v), fmt, ap);
	va_end(ap);
	fprintf(f, "<tr><th>%s</th><td>", name);
	esc(f, v);
	fprintf(f, "</td></tr>\n");
}

static void parameters(FILE *f, const struct report *r)
{
	const struct opts *o = &L.o;
	fprintf(f, "<table id=\"parameters\"><caption><h2>Parameters</h2>"
		   "</caption>\n");
	row(f, "target", "%s%s", r->target, o->cl.tls.enabled ? " (TLS)" : "");
	if (o->rate > 0)
		row(f, "mode", "open loop at %.0f msg/s", o->rate);
	else
		row(f, "mode",
		    "closed loop, one message in flight per "
		    "connection");
	row(f, "connections", "%u", o->connections);
	if (o->count)
		row(f, "messages", "%" PRIu64, o->count);
	else
		row(f, "duration", "%g s", o->duration_s);
	if (o->ramp_s > 0)
		row(f, "ramp", "%g s", o->ramp_s);
	row(f, "message size", "%zu bytes", r->message_bytes);
	row(f, "reply timeout", "%" PRId64 " ms", o->cl.timeout_ms);
	row(f, "backend", "%s", r->backend);
	row(f, "latency", "%s", load_latency_basis());
	char when[64];
	time_t t = (time_t)r->start_unix;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC",
		 gmtime_r(&t, &tm));
	row(f, "started", "%s", when);
	fprintf(f, "</table>\n");
}

static void summary(FILE *f, const struct report *r)
{
	fprintf(f,
		"<table id=\"summary\"><caption><h2>Summary</h2></caption>\n");
	row(f, "duration", "%.3f s", r->duration_s);
	row(f, "sent", "%" PRIu64, r->sent);
	row(f, "accepted", "%" PRIu64, r->accepted);
	row(f, "app errors", "%" PRIu64, r->app_errors);
	row(f, "app rejects", "%" PRIu64, r->app_rejects);
	char why[400] = "";
	size_t len = 0;
	for (size_t i = 0; i < ERR_SLOTS && len + 1 < sizeof(why); i++)
		if (r->errors[i])
			len += (size_t)snprintf(
			    why + len, sizeof(why) - len, "%s%s %" PRIu64,
			    len ? ", " : " (", load_err_name(i), r->errors[i]);
	if (len && len + 1 < sizeof(why))
		strcat(why, ")");
	row(f, "failed", "%" PRIu64 "%s", r->failed, why);
	row(f, "throughput", "%.0f msg/s, %.2f MB/s", r->msgs_per_s,
	    r->mb_per_s);
	row(f, "latency",
	    "p50 %" PRIu64 " us, p90 %" PRIu64 " us, p99 %" PRIu64
	    " us, p99.9 %" PRIu64 " us, max %" PRIu64 " us",
	    r->p50, r->p90, r->p99, r->p999, r->max);
	row(f, "latency mean", "%.1f us (standard deviation %.1f us)",
	    r->mean_us, r->stddev_us);
	row(f, "cpu", "%.2f s%s", r->cpu_s,
	    L.o.host ? "" : " (client and embedded receiver)");
	row(f, "reconnects", "%" PRIu64, r->reconnects);
	row(f, "accounting", "%s",
	    r->accounting_ok ? "every message accounted for" : "MISMATCH");
	for (size_t i = 0; i < L.o.nth; i++) {
		char v[80];
		load_threshold_value(&L.o, r, i, v, sizeof(v));
		fprintf(f, "<tr><th>threshold ");
		esc(f, L.o.th[i].expr);
		fprintf(f, "</th><td><span class=\"%s\">%s</span> (",
			r->th[i].ok ? "ok" : "bad",
			r->th[i].ok ? "ok" : "MISSED");
		esc(f, v);
		fprintf(f, ")</td></tr>\n");
	}
	row(f, "exit status", "%d", r->code);
	fprintf(f, "</table>\n");
}

/* Columns of the per-second points. */
struct cols {
	size_t n;
	double *t0, *t, *v[6]; /* interval [t0, t), values */
};

static bool cols_alloc(struct cols *c, const struct progress *p)
{
	size_t n = p->n, k = n ? n : 1;
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->t0 = calloc(8 * k, sizeof(double));
	if (!c->t0)
		return false;
	c->t = c->t0 + k;
	for (size_t i = 0; i < 6; i++)
		c->v[i] = c->t0 + (i + 2) * k;
	for (size_t i = 0; i < n; i++) {
		c->t[i] = p->v[i].t;
		c->t0[i] = p->v[i].t - p->v[i].dt;
	}
	return true;
}

static double per_s(uint64_t v, double dt)
{
	return dt > 0 ? (double)v / dt : 0;
}

static double max_of(const struct cols *c, size_t nv, bool skip_zero)
{
	double m = 0;
	for (size_t j = 0; j < nv; j++)
		for (size_t i = 0; i < c->n; i++)
			if (!isnan(c->v[j][i]) && c->v[j][i] > m &&
			    (!skip_zero || c->v[j][i] > 0))
				m = c->v[j][i];
	return m;
}

static double min_positive(const struct cols *c, size_t nv)
{
	double m = INFINITY;
	for (size_t j = 0; j < nv; j++)
		for (size_t i = 0; i < c->n; i++)
			if (c->v[j][i] > 0 && c->v[j][i] < m)
				m = c->v[j][i];
	return isinf(m) ? 1 : m;
}

static void chart(FILE *f, const struct cols *c, size_t nv,
		  struct svg_chart *ch, const char *id, const char *title,
		  const char *const *labels, const char *const *classes)
{
	fprintf(f, "<section><h2>%s</h2>\n", title);
	ch->f = f;
	svg_begin(ch, id, title);
	for (size_t j = 0; j < nv; j++)
		svg_series(ch, c->t0, c->t, c->v[j], c->n, classes[j]);
	svg_end(ch, labels, classes, nv);
	fprintf(f, "</section>\n");
}

static double end_time(const struct cols *c)
{
	return c->n ? c->t[c->n - 1] : 1;
}

/* The axes of a chart over time: x from the start to the last point, y as
 * given, fitted to [lo, hi]. */
static struct svg_chart time_axes(const struct cols *c, struct svg_axis y,
				  double lo, double hi)
{
	struct svg_chart ch = {
	    .x = {.fmt = SVG_SEC, .title = "time since the start"}, .y = y};
	svg_axis_fit(&ch.x, 0, end_time(c));
	svg_axis_fit(&ch.y, lo, hi);
	return ch;
}

static void chart_throughput(FILE *f, const struct progress *p, struct cols *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct series_point *s = &p->v[i];
		c->v[0][i] =
		    per_s(s->accepted + s->app_errors + s->app_rejects, s->dt);
		c->v[1][i] = per_s(s->sent, s->dt);
	}
	struct svg_chart ch = time_axes(
	    c, (struct svg_axis){.fmt = SVG_NUM, .title = "messages/s"}, 0,
	    max_of(c, 2, false));
	static const char *const lab[] = {"acknowledged/s", "sent/s"};
	static const char *const cls[] = {"c0", "c1 dash"};
	chart(f, c, 2, &ch, "chart-throughput", "Throughput", lab, cls);
}

static void chart_latency(FILE *f, const struct progress *p, struct cols *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct series_point *s = &p->v[i];
		bool has = s->replies > 0;
		c->v[0][i] = has ? (double)(s->p50 ? s->p50 : 1) : NAN;
		c->v[1][i] = has ? (double)(s->p99 ? s->p99 : 1) : NAN;
		c->v[2][i] = has ? (double)(s->max ? s->max : 1) : NAN;
	}
	struct svg_chart ch =
	    time_axes(c,
		      (struct svg_axis){
			  .log = true, .fmt = SVG_US, .title = "latency (log)"},
		      min_positive(c, 3), max_of(c, 3, true));
	static const char *const lab[] = {"p50", "p99", "max"};
	static const char *const cls[] = {"c0", "c1", "c2"};
	chart(f, c, 3, &ch, "chart-latency", "Latency over time", lab, cls);
}

static void chart_outcomes(FILE *f, const struct progress *p, struct cols *c)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct series_point *s = &p->v[i];
		c->v[0][i] = per_s(s->accepted, s->dt);
		c->v[1][i] = per_s(s->app_errors, s->dt);
		c->v[2][i] = per_s(s->app_rejects, s->dt);
		c->v[3][i] = per_s(s->timeouts, s->dt);
		c->v[4][i] = per_s(s->transport, s->dt);
		c->v[5][i] = per_s(s->invalid, s->dt);
	}
	struct svg_chart ch = time_axes(
	    c, (struct svg_axis){.fmt = SVG_NUM, .title = "messages/s"}, 0,
	    max_of(c, 6, false));
	static const char *const lab[] = {
	    "AA/CA",	   "AE/CE", "AR/CR", "timeouts", "transport errors",
	    "invalid ACKs"};
	static const char *const cls[] = {"c0", "c1", "c2", "c3", "c4", "c5"};
	chart(f, c, 6, &ch, "chart-outcomes", "Outcomes per second", lab, cls);
}

/* The spectrum's points, collected for the distribution chart. */
struct dist {
	double *x, *y;
	size_t n, cap;
	bool oom;
};

static void dist_add(void *ctx, const struct spectrum_point *p)
{
	struct dist *d = ctx;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 256;
		double *x = realloc(d->x, cap * sizeof(double));
		double *y = x ? realloc(d->y, cap * sizeof(double)) : NULL;
		if (x)
			d->x = x;
		if (!y) {
			d->oom = true;
			return;
		}
		d->y = y;
		d->cap = cap;
	}
	/* x: 1/(1-p); the 100 % point goes to the right edge (set later). */
	d->x[d->n] = p->pct < 1 ? 1 / (1 - p->pct) : INFINITY;
	d->y[d->n++] = p->value_us ? (double)p->value_us : 1;
}

static void chart_distribution(FILE *f, const struct report *r)
{
	struct dist d = {0};
	load_spectrum(&r->lat, dist_add, &d);
	struct svg_chart ch = {
	    .x = {.log = true, .fmt = SVG_PCT, .title = "percentile (log)"},
	    .y = {.log = true, .fmt = SVG_US, .title = "latency (log)"}};
	/* As far right as the sample count resolves: 1/(1-p) <= count. */
	double right = r->lat.count > 100 ? (double)r->lat.count : 100;
	svg_axis_fit(&ch.x, 1, right);
	for (size_t i = 0; i < d.n; i++)
		if (isinf(d.x[i]) || d.x[i] > ch.x.hi)
			d.x[i] = ch.x.hi;
	double lo = d.n ? d.y[0] : 1, hi = d.n ? d.y[d.n - 1] : 1;
	svg_axis_fit(&ch.y, lo, hi);
	fprintf(f, "<section><h2>Latency distribution</h2>\n");
	ch.f = f;
	svg_begin(&ch, "chart-distribution", "Latency distribution");
	if (!d.oom)
		svg_series(&ch, NULL, d.x, d.y, d.n, "c0");
	static const char *const lab[] = {"latency at percentile"};
	static const char *const cls[] = {"c0"};
	svg_end(&ch, lab, cls, 1);
	fprintf(f, "</section>\n");
	free(d.x);
	free(d.y);
}

int load_html_write(FILE *f, const struct report *r, const struct progress *p)
{
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
		   "charset=\"utf-8\">\n<title>mllp-load: ");
	esc(f, r->target);
	fprintf(f, "</title>\n<style>\n%s</style></head><body>\n", style);
	fprintf(f, "<h1>mllp-load report</h1>\n<p class=\"sub\">");
	esc(f, r->target);
	if (r->rate > 0)
		fprintf(f, ", open loop at %.0f msg/s", r->rate);
	else
		fprintf(f, ", closed loop");
	fprintf(f, ", %u connection%s, %.1f s%s</p>\n", L.o.connections,
		L.o.connections == 1 ? "" : "s", r->duration_s,
		r->interrupted ? " (interrupted)" : "");
	fprintf(f, "<div class=\"tables\">\n");
	parameters(f, r);
	summary(f, r);
	fprintf(f, "</div>\n<div class=\"charts\">\n");
	struct cols c;
	if (cols_alloc(&c, p)) {
		chart_throughput(f, p, &c);
		chart_latency(f, p, &c);
		chart_distribution(f, r);
		chart_outcomes(f, p, &c);
		free(c.t0);
	}
	fprintf(f, "</div>\n<p class=\"foot\">");
	for (int i = 0; i < L.o.argc; i++) {
		if (i)
			putc(' ', f);
		esc(f, L.o.argv[i]);
	}
	fprintf(f, "</p>\n</body></html>\n");
	bool bad = ferror(f) != 0;
	bad = fclose(f) != 0 || bad;
	if (!bad)
		return 0;
	fprintf(stderr, "%s: cannot write %s: %s\n", prog, L.o.html,
		strerror(errno ? errno : EIO));
	return TOOL_EXIT_FAIL;
}

/* mllp-load's --threshold: METRIC OP VALUE, where METRIC is a latency
 * percentile (p50, p99, p999 = p99.9, p99.99, ...) or max with a unit (us,
 * ms, s), errors (a percentage of the messages sent that were not accepted)
 * or rate (acknowledged messages/s), and OP is <, <=, > or >=. A run that
 * misses one exits 99 and says which, with the measured value. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const char *prog = LOAD_PROG;

static _Noreturn void bad(const char *expr)
{
	tool_usage(prog,
		   "--threshold wants METRIC<VALUE or METRIC>VALUE such as "
		   "p99<5ms, p50<800us, errors<0.1%% or rate>50000, got '%s'",
		   expr);
}

/* "p50", "p999", "p99.9": the quantile (0 < q < 1), or 1 for p100. */
static bool parse_percentile(const char *m, size_t len, double *q)
{
	char d[16];
	if (len < 3 || len >= sizeof(d) || m[0] != 'p')
		return false;
	size_t n = 0, dots = 0;
	for (size_t i = 1; i < len; i++) {
		if (m[i] == '.' && dots++ == 0 && i > 1 && i + 1 < len)
			d[n++] = '.';
		else if (isdigit((unsigned char)m[i]))
			d[n++] = m[i];
		else
			return false;
	}
	d[n] = '\0';
	double pct;
	if (dots || strcmp(d, "100") == 0) {
		pct = strtod(d, NULL);
	} else {
		/* p999 = p99.9: two digits of integer part, then decimals. */
		char x[20];
		snprintf(x, sizeof(x), "%.2s.%s", d, d + 2);
		pct = strtod(x, NULL);
	}
	if (!(pct > 0) || pct > 100)
		return false;
	*q = pct / 100;
	return true;
}

static const char *const unit_names[] = {"us", "ms", "s", "%", "/s"};

/* Split METRIC OP NUMBER UNIT (spaces allowed around OP). */
static void split(const char *expr, struct threshold *t, const char **unit)
{
	const char *p = expr, *m;
	while (*p == ' ')
		p++;
	m = p;
	while (isalnum((unsigned char)*p) || *p == '.')
		p++;
	size_t mlen = (size_t)(p - m);
	if (mlen == 0 || mlen >= sizeof(t->name))
		bad(expr);
	memcpy(t->name, m, mlen);
	t->name[mlen] = '\0';
	while (*p == ' ')
		p++;
	if (*p != '<' && *p != '>')
		bad(expr);
	t->less = *p++ == '<';
	if (*p == '=') {
		t->or_equal = true;
		p++;
	}
	while (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p) && *p != '.')
		bad(expr);
	char *end = NULL;
	errno = 0;
	t->limit = strtod(p, &end);
	if (errno || end == p || !isfinite(t->limit))
		bad(expr);
	while (*end == ' ')
		end++;
	*unit = end;
}

void load_threshold_parse(const char *expr, struct threshold *t)
{
	memset(t, 0, sizeof(*t));
	t->expr = expr;
	const char *u;
	split(expr, t, &u);
	size_t ulen = strlen(u);
	while (ulen && u[ulen - 1] == ' ')
		ulen--;
	if (strcmp(t->name, "errors") == 0) {
		t->metric = TH_ERRORS;
		t->unit = TH_PERCENT;
		if (ulen != 1 || u[0] != '%' || t->limit > 100)
			tool_usage(prog,
				   "--threshold '%s': errors wants a "
				   "percentage (0..100%%) such as errors<0.1%%",
				   expr);
		return;
	}
	if (strcmp(t->name, "rate") == 0) {
		t->metric = TH_RATE;
		t->unit = TH_PER_S;
		if (ulen != 0 && (ulen != 2 || strncmp(u, "/s", 2) != 0))
			tool_usage(prog,
				   "--threshold '%s': rate wants messages/s "
				   "such as rate>50000",
				   expr);
		return;
	}
	if (strcmp(t->name, "max") == 0)
		t->metric = TH_MAX;
	else if (parse_percentile(t->name, strlen(t->name), &t->q))
		t->metric = t->q >= 1 ? TH_MAX : TH_LATENCY;
	else
		bad(expr);
	for (int i = TH_US; i <= TH_S; i++)
		if (ulen == strlen(unit_names[i]) &&
		    strncmp(u, unit_names[i], ulen) == 0) {
			t->unit = (enum th_unit)i;
			return;
		}
	tool_usage(prog,
		   "--threshold '%s': a latency wants a unit: us, ms or s",
		   expr);
}

void load_threshold_eval(const struct opts *o, struct report *r)
{
	static const double per_us[] = {1, 1e3, 1e6};
	r->th_missed = 0;
	for (size_t i = 0; i < o->nth; i++) {
		const struct threshold *t = &o->th[i];
		struct th_result *x = &r->th[i];
		x->measured = true;
		switch (t->metric) {
		case TH_LATENCY:
		case TH_MAX:
			x->measured = r->lat.count > 0;
			x->value =
			    (double)(t->metric == TH_MAX
					 ? r->lat.max
					 : tool_hist_quantile(&r->lat, t->q)) /
			    per_us[t->unit];
			break;
		case TH_ERRORS: {
			uint64_t bad_ =
			    r->failed + r->app_errors + r->app_rejects;
			x->value = r->sent
				       ? 100.0 * (double)bad_ / (double)r->sent
				       : 0;
			break;
		}
		case TH_RATE:
			x->value = r->msgs_per_s;
			break;
		}
		double v = x->value, lim = t->limit;
		if (t->less)
			x->ok = t->or_equal ? v <= lim : v < lim;
		else
			x->ok = t->or_equal ? v >= lim : v > lim;
		x->ok = x->ok && x->measured;
		if (!x->ok)
			r->th_missed++;
	}
}

void load_threshold_value(const struct opts *o, const struct report *r,
			  size_t i, char *out, size_t cap)
{
	const struct threshold *t = &o->th[i];
	const struct th_result *x = &r->th[i];
	static const char *const fmt[] = {"%s %.0f us", "%s %.3f ms",
					  "%s %.6f s", "%s %.3f%%",
					  "%s %.1f msg/s"};
	if (!x->measured)
		snprintf(out, cap, "%s none (no reply)", t->name);
	else
		snprintf(out, cap, fmt[t->unit], t->name, x->value);
}

void load_threshold_human(FILE *f, const struct opts *o, const struct report *r)
{
	for (size_t i = 0; i < o->nth; i++) {
		char v[80];
		load_threshold_value(o, r, i, v, sizeof(v));
		fprintf(f, "  threshold    %s: %s (%s)\n", o->th[i].expr,
			r->th[i].ok ? "ok" : "MISSED", v);
	}
}

void load_threshold_json(FILE *f, const struct opts *o, const struct report *r)
{
	fprintf(f, "\"thresholds\":[");
	for (size_t i = 0; i < o->nth; i++) {
		fprintf(f, "%s{\"expr\":", i ? "," : "");
		tool_json_str(f, o->th[i].expr, strlen(o->th[i].expr));
		if (r->th[i].measured)
			fprintf(f, ",\"value\":%.6g", r->th[i].value);
		else
			fprintf(f, ",\"value\":null");
		fprintf(f, ",\"unit\":\"%s\",\"ok\":%s}",
			unit_names[o->th[i].unit],
			r->th[i].ok ? "true" : "false");
	}
	fprintf(f, "]");
}

void load_threshold_missed(const struct opts *o, const struct report *r)
{
	for (size_t i = 0; i < o->nth; i++) {
		if (r->th[i].ok)
			continue;
		char v[80];
		load_threshold_value(o, r, i, v, sizeof(v));
		fprintf(stderr, "%s: threshold %s missed: %s\n", prog,
			o->th[i].expr, v);
	}
}

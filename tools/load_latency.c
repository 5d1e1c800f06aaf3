/* mllp-load's latency distribution: the percentile spectrum of the run's
 * histogram, iterated as HdrHistogram's percentile iterator does, and
 * --latency's output in wrk2's layout (fixed percentiles, then the
 * detailed spectrum with HdrHistogram's "classic" columns and footer, which
 * HdrHistogram's plotters read). Values are printed in milliseconds. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "load.h"

void load_spectrum(const struct tool_hist_snap *s,
		   void (*fn)(void *ctx, const struct spectrum_point *p),
		   void *ctx)
{
	if (s->count == 0)
		return;
	/* Percentile levels (in %) are visited in ticks that halve with the
	 * distance to 100 %: 5 ticks per half distance. A bucket reaching
	 * one level or more gives one point per level; the bucket holding
	 * the last value gives one, then the 100 % point. */
	const double ticks_per_half = 5;
	double to = 0;
	uint64_t cum = 0, value = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS && cum < s->count; i++) {
		if (!s->b[i])
			continue;
		cum += s->b[i];
		value = tool_hist_bucket_upper(i);
		if (value > s->max)
			value = s->max;
		double reached = 100.0 * (double)cum / (double)s->count;
		while (to <= reached) {
			struct spectrum_point p = {value, to / 100.0, cum};
			fn(ctx, &p);
			double half =
			    pow(2, floor(log2(100.0 / (100.0 - to))) + 1);
			to += 100.0 / (ticks_per_half * half);
			if (cum == s->count)
				break;
		}
	}
	struct spectrum_point last = {value, 1.0, cum};
	fn(ctx, &last);
}

void load_latency_moments(const struct tool_hist_snap *s, double *mean,
			  double *stddev)
{
	double sum = 0, sq = 0, n = (double)s->count;
	*mean = *stddev = 0;
	if (s->count == 0)
		return;
	uint64_t lo = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS; i++) {
		uint64_t hi = tool_hist_bucket_upper(i);
		double mid = ((double)lo + (double)hi) / 2;
		lo = hi + 1;
		if (!s->b[i])
			continue;
		sum += mid * (double)s->b[i];
	}
	*mean = sum / n;
	lo = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS; i++) {
		uint64_t hi = tool_hist_bucket_upper(i);
		double d = ((double)lo + (double)hi) / 2 - *mean;
		lo = hi + 1;
		sq += d * d * (double)s->b[i];
	}
	*stddev = sqrt(sq / n);
}

const char *load_latency_basis(void)
{
	if (L.o.rate <= 0)
		return "from the first byte written to the reply";
	if (L.o.uncorrected)
		return "uncorrected: from the first byte written to the reply";
	return "from the intended send time, corrected for coordinated "
	       "omission";
}

/* wrk2's units: "812.00us", "1.23ms", "2.50s". */
static void fmt_us(char *out, size_t cap, uint64_t us)
{
	if (us < 1000)
		snprintf(out, cap, "%.2fus", (double)us);
	else if (us < 1000000)
		snprintf(out, cap, "%.2fms", (double)us / 1e3);
	else
		snprintf(out, cap, "%.2fs", (double)us / 1e6);
}

static void print_point(void *ctx, const struct spectrum_point *p)
{
	fprintf(ctx, "%12.3f %12f %12" PRIu64 " %12.2f\n",
		(double)p->value_us / 1e3, p->pct, p->count,
		1.0 / (1.0 - p->pct));
}

void load_latency_print(FILE *f, const struct report *r)
{
	static const double pcts[] = {50, 75, 90, 99, 99.9, 99.99, 99.999, 100};
	const struct tool_hist_snap *s = &r->lat;
	fprintf(f, "\n  Latency Distribution (HdrHistogram - %s Latency: %s)\n",
		L.o.uncorrected ? "Uncorrected" : "Recorded",
		load_latency_basis());
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		char v[32];
		fmt_us(v, sizeof(v),
		       pcts[i] == 100 ? s->max
				      : tool_hist_quantile(s, pcts[i] / 100));
		fprintf(f, "%7.3f%%%10s\n", pcts[i], v);
	}
	fprintf(f, "\n  Detailed Percentile spectrum:\n");
	fprintf(f, "%12s %12s %12s %12s\n\n", "Value", "Percentile",
		"TotalCount", "1/(1-Percentile)");
	load_spectrum(s, print_point, f);
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n",
		r->mean_us / 1e3, r->stddev_us / 1e3);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
		(double)s->max / 1e3, s->count);
	/* The histogram's layout as HdrHistogram counts it: 2 * TOOL_HIST_SUB
	 * sub-buckets per power-of-two bucket, enough buckets for any 64-bit
	 * value (the first one exact). */
	fprintf(f, "#[Buckets = %12d, SubBuckets     = %12d]\n",
		64 - __builtin_ctz(TOOL_HIST_SUB), 2 * TOOL_HIST_SUB);
	fprintf(f, "----------------------------------------------------------"
		   "\n");
}

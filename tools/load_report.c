/* mllp-load's report: errors by reason, the final report (human and
 * JSON) and the exit status it implies. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "load.h"

static const char *prog = LOAD_PROG;

size_t load_err_index(int code)
{
	if (code <= MLLP_ERR_BASE && code > MLLP_ERR_BASE - 32)
		return (size_t)(MLLP_ERR_BASE - code);
	if (code < 0 && code > -(ERR_VERDICT0 - 32))
		return (size_t)(32 - code);
	return ERR_OTHER;
}

/* Every reason by its C symbol, in capitals: MLLP_ERR_TIMEOUT,
 * ECONNREFUSED, MLLP_BAD_MESSAGE_CONTROL_ID (a failing verdict), OTHER. */
const char *load_err_name(size_t i)
{
	if (i < 32)
		return mllp_err_name(MLLP_ERR_BASE - (int)i);
	if (i < ERR_VERDICT0)
		return mllp_err_name(-(int)(i - 32));
	switch (i < ERR_OTHER ? (int)(i - ERR_VERDICT0) : -1) {
	case MLLP_BAD_MESSAGE_CONTROL_ID:
		return "MLLP_BAD_MESSAGE_CONTROL_ID";
	case MLLP_BAD_ACK_CODE:
		return "MLLP_BAD_ACK_CODE";
	case MLLP_INVALID_MESSAGE:
		return "MLLP_INVALID_MESSAGE";
	case MLLP_INVALID_ACK_MESSAGE:
		return "MLLP_INVALID_ACK_MESSAGE";
	default:
		return "OTHER";
	}
}

/* The non-zero error counters: " (name n, name n" for people (the caller
 * closes the parenthesis) or "\"name\":n,\"name\":n" in JSON. Returns
 * how many. */
static size_t print_errors(FILE *f, const struct report *r, bool json)
{
	size_t n = 0;
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (!r->errors[i])
			continue;
		if (json)
			fprintf(f, "%s\"%s\":%" PRIu64, n ? "," : "",
				load_err_name(i), r->errors[i]);
		else
			fprintf(f, "%s%s %" PRIu64, n ? ", " : " (",
				load_err_name(i), r->errors[i]);
		n++;
	}
	return n;
}

/* --window as JSON: a number, or "auto". */
static const char *window_json(void)
{
	static char b[16];
	if (L.o.cl.window == MLLP_INFLIGHT_AUTO)
		return "\"auto\"";
	snprintf(b, sizeof(b), "%u", tool_window_size(L.o.cl.window));
	return b;
}

static void print_human(FILE *f, const struct report *r)
{
	fprintf(f, "mllp-load: %s, %u connection%s, %s", r->target,
		L.o.connections, L.o.connections == 1 ? "" : "s",
		r->rate > 0 ? "open loop" : "closed loop");
	if (L.o.cl.window > 1)
		fprintf(f, ", window %s",
			L.o.cl.window == MLLP_INFLIGHT_AUTO ? "auto"
							    : window_json());
	if (r->rate > 0)
		fprintf(f, " at %.0f msg/s", r->rate);
	fprintf(f, ", %zu-byte messages, backend %s%s\n", r->message_bytes,
		r->backend, r->interrupted ? " (interrupted)" : "");
	fprintf(f, "  duration     %.3f s\n", r->duration_s);
	fprintf(f, "  sent         %" PRIu64 "\n", r->sent);
	fprintf(f, "  accepted     %" PRIu64 "\n", r->accepted);
	fprintf(f, "  app errors   %" PRIu64 "\n", r->app_errors);
	fprintf(f, "  app rejects  %" PRIu64 "\n", r->app_rejects);
	fprintf(f, "  failed       %" PRIu64, r->failed);
	fprintf(f, "%s\n", print_errors(f, r, false) ? ")" : "");
	fprintf(f, "  throughput   %.0f msg/s, %.2f MB/s\n", r->msgs_per_s,
		r->mb_per_s);
	fprintf(f,
		"  latency us   p50 %" PRIu64 "  p90 %" PRIu64 "  p99 %" PRIu64
		"  p99.9 %" PRIu64 "  max %" PRIu64 "\n",
		r->p50, r->p90, r->p99, r->p999, r->max);
	uint64_t done =
	    r->accepted + r->app_errors + r->app_rejects + r->failed;
	fprintf(f, "  cpu          %.2f s, %.2f us/msg%s\n", r->cpu_s,
		done ? r->cpu_s * 1e6 / (double)done : 0.0,
		L.o.host ? "" : " (client and embedded receiver)");
	fprintf(f, "  reconnects   %" PRIu64 "\n", r->reconnects);
	load_threshold_human(f, &L.o, r);
}

static void print_json(FILE *f, const struct report *r)
{
	fprintf(f, "{\"tool\":\"mllp-load\",\"target\":");
	tool_json_str(f, r->target, strlen(r->target));
	fprintf(f,
		",\"embedded\":%s,\"mode\":\"%s\",\"rate\":%.0f,"
		"\"message_bytes\":%zu,\"backend\":\"%s\","
		"\"interrupted\":%s,\"duration_s\":%.6f,\"connections\":%u,"
		"\"window\":%s,"
		"\"sent\":%" PRIu64 ",\"accepted\":%" PRIu64
		",\"app_errors\":%" PRIu64 ",\"app_rejects\":%" PRIu64
		",\"failed\":%" PRIu64 ",\"errors\":{",
		L.o.host ? "false" : "true", r->rate > 0 ? "open" : "closed",
		r->rate, r->message_bytes, r->backend,
		r->interrupted ? "true" : "false", r->duration_s,
		L.o.connections, window_json(), r->sent, r->accepted,
		r->app_errors, r->app_rejects, r->failed);
	print_errors(f, r, true);
	fprintf(f,
		"},\"throughput_msgs_per_s\":%.1f,\"throughput_mb_per_s\":%.3f,"
		"\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
		",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
		"},\"reconnects\":%" PRIu64 ",\"cpu_s\":%.3f,"
		"\"accounting_ok\":%s,",
		r->msgs_per_s, r->mb_per_s, r->p50, r->p90, r->p99, r->p999,
		r->max, r->reconnects, r->cpu_s,
		r->accounting_ok ? "true" : "false");
	load_threshold_json(f, &L.o, r);
	fprintf(f, "}\n");
}

void load_report_collect(struct report *r, double duration_s, double cpu_s,
			 uint64_t reconnects)
{
	struct tool_hist_snap *snap = &r->lat;
	r->duration_s = duration_s;
	r->cpu_s = cpu_s;
	r->sent = atomic_load(&L.sent);
	r->accepted = atomic_load(&L.accepted);
	r->app_errors = atomic_load(&L.app_errors);
	r->app_rejects = atomic_load(&L.app_rejects);
	r->failed = atomic_load(&L.failed);
	for (size_t i = 0; i < ERR_SLOTS; i++)
		r->errors[i] = atomic_load(&L.errors[i]);
	uint64_t acked = r->accepted + r->app_errors + r->app_rejects;
	r->msgs_per_s = duration_s > 0 ? (double)acked / duration_s : 0;
	r->mb_per_s = duration_s > 0 ? (double)atomic_load(&L.bytes_acked) /
					   duration_s / 1e6
				     : 0;
	tool_hist_snapshot(&L.hist, snap);
	r->p50 = tool_hist_quantile(snap, 0.50);
	r->p90 = tool_hist_quantile(snap, 0.90);
	r->p99 = tool_hist_quantile(snap, 0.99);
	r->p999 = tool_hist_quantile(snap, 0.999);
	r->max = snap->max;
	load_latency_moments(snap, &r->mean_us, &r->stddev_us);
	r->reconnects = reconnects;
	r->interrupted = atomic_load(&L.sigints) > 0;
	r->rate = L.o.rate;
	r->accounting_ok =
	    r->sent == r->accepted + r->app_errors + r->app_rejects + r->failed;
	load_threshold_eval(&L.o, r);
}

FILE *load_human_stream(const struct opts *o)
{
	if ((o->json && strcmp(o->json, "-") == 0) ||
	    (o->timeseries && strcmp(o->timeseries, "-") == 0))
		return stderr;
	return stdout;
}

/* The exit status: an errors threshold takes over from the default rule
 * (any AE/AR/CE/CR: 1, any failure: 2); a missed threshold is 99; then an
 * accounting mismatch (2) and a signal (128 + it) win. */
static int exit_code(const struct report *r)
{
	bool errors_th = false;
	for (size_t i = 0; i < L.o.nth; i++)
		errors_th = errors_th || L.o.th[i].metric == TH_ERRORS;
	int code = TOOL_EXIT_OK;
	if (!errors_th && (r->app_errors || r->app_rejects))
		code = TOOL_EXIT_APP;
	if (!errors_th && r->failed)
		code = TOOL_EXIT_FAIL;
	if (r->th_missed)
		code = LOAD_EXIT_THRESHOLD;
	if (!r->accounting_ok)
		code = TOOL_EXIT_FAIL;
	if (r->interrupted)
		code = TOOL_EXIT_SIGNAL + atomic_load(&L.signo);
	return code;
}

int load_report_print(const struct opts *o, struct report *r)
{
	FILE *human = load_human_stream(o);
	if (o->json && strcmp(o->json, "-") == 0) {
		print_json(stdout, r);
	} else if (o->json) {
		FILE *jf = fopen(o->json, "w");
		if (!jf) {
			fprintf(stderr, "%s: cannot write %s: %s\n", prog,
				o->json, strerror(errno));
		} else {
			print_json(jf, r);
			fclose(jf);
		}
	}
	print_human(human, r);
	if (o->latency)
		load_latency_print(human, r);
	fflush(stdout);
	if (tool_log_suppressed())
		fprintf(stderr, "%s: %" PRIu64 " more log lines suppressed\n",
			prog, tool_log_suppressed());

	load_threshold_missed(o, r);
	if (!r->accounting_ok)
		fprintf(stderr,
			"%s: ACCOUNTING MISMATCH: sent %" PRIu64
			" != accepted %" PRIu64 " + app_errors %" PRIu64
			" + app_rejects %" PRIu64 " + failed %" PRIu64
			" (a message was lost: this is a bug)\n",
			prog, r->sent, r->accepted, r->app_errors,
			r->app_rejects, r->failed);
	r->code = exit_code(r);
	return r->code;
}

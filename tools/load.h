/* mllp-load's parts: options (load_opts.c), message templates
 * (load_msgs.c), the embedded receiver (load_embedded.c), the report
 * (load_report.c), thresholds (load_threshold.c), the per-second samples
 * (load_series.c), the percentile spectrum (load_latency.c), the HTML
 * report (load_html.c, load_svg.c) and the run itself (mllp-load.c). They
 * share one state,
 * L, owned by mllp-load.c: the main thread writes the configuration before
 * the pool starts; the counters are atomics any thread may update. */
#ifndef MLLP_TOOLS_LOAD_H
#define MLLP_TOOLS_LOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mllp/mllp.h>

#include "common.h"

#define LOAD_PROG	    "mllp-load"
#define LOAD_USAGE_LINE	    "Usage: mllp-load [OPTIONS] [HOST PORT]"
#define ID_DIGITS	    12 /* MSH-10 of sent messages: "L" + 12 digits */
#define ID_LEN		    (1 + ID_DIGITS)
#define KEY_DIGITS	    9 /* --keys: PID-3.1 "P" + 9 digits */
#define KEY_LEN		    (1 + KEY_DIGITS)
#define TS_LEN		    14 /* MSH-7: YYYYMMDDHHMMSS */
#define MAX_TEMPLATES	    256
#define ERR_SLOTS	    256
#define LOAD_MAX_CONNS	    65536 /* the pool's most per endpoint */
#define LOAD_MAX_THRESHOLDS 32

/* A --threshold: METRIC OP VALUE, e.g. p99<5ms, errors<0.1%, rate>50000. */
enum th_metric { TH_LATENCY, TH_MAX, TH_ERRORS, TH_RATE };
enum th_unit { TH_US, TH_MS, TH_S, TH_PERCENT, TH_PER_S };
struct threshold {
	const char *expr; /* as given */
	char name[16];	  /* "p99", "p99.9", "max", "errors", "rate" */
	enum th_metric metric;
	double q; /* TH_LATENCY: the quantile, 0 < q < 1 */
	bool less, or_equal;
	double limit;	   /* in unit */
	enum th_unit unit; /* of limit and of the measured value shown */
};

struct opts {
	uint32_t connections;
	double duration_s;
	uint64_t count; /* 0: run for duration_s */
	double rate;	/* 0: closed loop */
	double ramp_s;
	const char *files[MAX_TEMPLATES];
	size_t nfiles;
	size_t size;		    /* synthetic ORU^R01 size, 0: none */
	struct tool_client_opts cl; /* --timeout, --backend, --tls ... */
	const char *json;	    /* NULL, "-" or a path */
	int progress;		    /* -1: auto (stderr is a tty) */
	const char *host;
	uint16_t port;
	const char *embedded_ack;
	uint32_t embedded_delay_ms;
	bool embedded_delay_set;
	bool latency;		/* --latency: the percentile spectrum */
	bool uncorrected;	/* --uncorrected (open loop only) */
	const char *timeseries; /* NULL, "-" or a path */
	const char *html;	/* NULL or a path */
	struct threshold th[LOAD_MAX_THRESHOLDS];
	size_t nth;
	int argc; /* the command line, for the HTML report */
	char **argv;
	/* --keys: synthetic patients (PID-3.1); 0: unkeyed */
	uint32_t keys;
};

/* A message template: MSH-7 and MSH-10 are rewritten per message. */
struct tmpl {
	const unsigned char *data;
	size_t len;
	size_t ts_off, ts_len; /* MSH-7 */
	size_t id_off, id_len; /* MSH-10 */
	size_t out_len;	       /* length of every message made from it */
	/* PID-3.1, rewritten with --keys */
	size_t pid_off, pid_len;
};

/* One closed-loop sender: one message in flight at a time. */
struct slot {
	unsigned char *buf;
	uint32_t tmpl;
	_Atomic bool idle; /* its last send failed synchronously */
	bool started;
};

struct load_state {
	struct opts o;
	struct mllp_pool *pool;
	uint32_t ep;
	struct tmpl tmpl[MAX_TEMPLATES];
	size_t ntmpl;
	size_t max_len;
	struct slot *slots;
	uint32_t nslots; /* closed loop: connections x window */
	int efd;
	uint64_t t0_ns;
	_Atomic bool stopping;
	_Atomic int sigints;
	_Atomic int signo; /* the first signal that stopped the run */
	_Atomic uint64_t tickets;
	_Atomic bool kick_pending;
	_Atomic bool issued_all; /* count mode: every ticket is taken */
	/* Counters. */
	_Atomic uint64_t sent, accepted, app_errors, app_rejects, failed;
	_Atomic uint64_t inflight, bytes_acked;
	_Atomic uint64_t errors[ERR_SLOTS];
	struct tool_hist hist;
	_Atomic uint64_t sec_max; /* the highest latency since the last tick */
};

extern struct load_state L;

/* ---- load_opts.c ---- */
/* Parse the command line into *o (exits 64 on bad usage, 0 after --help
 * or --version). */
void load_parse_args(int argc, char **argv, struct opts *o);

/* ---- load_msgs.c ---- */
/* The message inputs: template files, a synthetic size, or the built-in
 * message. Owns what it read until load_inputs_free(). */
struct load_inputs {
	struct tool_buf bufs[MAX_TEMPLATES];
	struct tool_msgs msgs;
	unsigned char *oru;
};
/* Read and check every template into L.tmpl; returns 0 or an exit code
 * (66 unreadable, 65 empty or not HL7: the file is named). */
int load_templates(const struct opts *o, struct load_inputs *in);
void load_inputs_free(struct load_inputs *in);
/* Write message number seq of template t into out (t->out_len bytes). */
void load_gen_message(const struct tmpl *t, uint64_t seq, unsigned char *out);

/* ---- load_embedded.c ---- */
/* The embedded receiver (no HOST PORT): started on 127.0.0.1 with an
 * ephemeral port; NULL fields when a target was given. */
struct load_embedded {
	struct mllp_receiver *recv;
	struct mllp_ack_dispatcher disp;
};
/* Start it when o has no host; sets *host, *port and target (a text for
 * the report). Returns 0 or an exit code (message printed). */
int load_embedded_start(const struct opts *o, struct load_embedded *e,
			const char **host, uint16_t *port, char *target,
			size_t target_cap);
void load_embedded_stop(struct load_embedded *e);
void load_embedded_destroy(struct load_embedded *e);

/* ---- load_report.c ---- */
enum { ERR_VERDICT0 = 224, ERR_OTHER = ERR_SLOTS - 1 };

/* The error slot of a failure code (MLLP_ERR_* or -errno). */
size_t load_err_index(int code);
/* A slot's reason by its C symbol: MLLP_ERR_TIMEOUT, ECONNREFUSED,
 * MLLP_BAD_MESSAGE_CONTROL_ID (a failing verdict), OTHER. */
const char *load_err_name(size_t slot);
/* A --threshold missed (k6's code). */
enum { LOAD_EXIT_THRESHOLD = 99 };

/* A threshold's outcome: the measured value in the threshold's unit
 * (measured false: no latency was measured, which misses it). */
struct th_result {
	double value;
	bool measured, ok;
};

struct report {
	double duration_s;
	uint64_t sent, accepted, app_errors, app_rejects, failed;
	uint64_t errors[ERR_SLOTS];
	double msgs_per_s, mb_per_s;
	uint64_t p50, p90, p99, p999, max;
	uint64_t reconnects;
	const char *backend;
	char target[300];
	bool interrupted;
	bool accounting_ok;
	double rate;
	size_t message_bytes;
	double cpu_s; /* this process: client (+ embedded receiver) */
	double mean_us, stddev_us;
	struct tool_hist_snap lat; /* the run's latency */
	struct th_result th[LOAD_MAX_THRESHOLDS];
	size_t th_missed;
	int64_t start_unix; /* wall clock at the start, seconds */
	int code;	    /* the exit status */
};

/* Fill the counters, latency, accounting and thresholds of r from L. */
void load_report_collect(struct report *r, double duration_s, double cpu_s,
			 uint64_t reconnects);
/* Print the report (JSON to o->json, human to stdout or, with --json - or
 * --timeseries -, stderr; then the spectrum with --latency and the missed
 * thresholds), set r->code to the exit status it implies and return it. */
int load_report_print(const struct opts *o, struct report *r);
/* Where the human report goes: stdout, or stderr when stdout holds JSON. */
FILE *load_human_stream(const struct opts *o);

/* ---- load_series.c ---- */
/* One second of the run (the last one may be shorter): counts of what
 * completed in it, latency of the replies in it. */
struct series_point {
	double t, dt; /* end of the interval since the start, its length (s) */
	uint64_t sent, accepted, app_errors, app_rejects;
	uint64_t timeouts, invalid, transport; /* failures, see load_series.c */
	uint64_t replies;		       /* latency samples */
	uint64_t p50, p90, p99, max;	       /* us, 0 without replies */
	uint32_t connections;		       /* up at its end */
	uint64_t reconnects;
};

/* The per-second machinery: the status line (--progress), one JSON line
 * (--timeseries) and one kept point (--html) per second. The main thread
 * alone uses it. */
struct progress {
	bool on; /* anything to do each second */
	FILE *ts;
	bool ts_stdout, keep;
	struct series_point *v;
	size_t n, cap;
	uint64_t next_ns, last_ns, last_sent, last_acked, last_reconnects;
	uint64_t last_done[3];
	uint64_t last_errors[ERR_SLOTS];
	struct tool_hist_snap prev, cur, diff;
};
/* Open --timeseries; 0 or an exit code (message printed). */
int load_progress_open(struct progress *p, const struct opts *o);
void load_progress_init(struct progress *p, uint64_t t0_ns);
/* Do the second's work when it is due at now; true when it was. */
bool load_progress_tick(struct progress *p, uint64_t now);
/* After the pool stopped: the rest of the run since the last second
 * (connections: those up before the stop). */
void load_progress_final(struct progress *p, uint64_t now,
			 uint32_t connections);
/* Close --timeseries: 0, or 2 when it could not be written (printed). */
int load_progress_close(struct progress *p);
void load_progress_free(struct progress *p);

/* ---- load_threshold.c ---- */
/* Parse a --threshold expression into *t (exits 64 when it is bad). */
void load_threshold_parse(const char *expr, struct threshold *t);
/* Evaluate every threshold of o against r (fills r->th, r->th_missed). */
void load_threshold_eval(const struct opts *o, struct report *r);
/* "p99 1.234 ms": the measured value of threshold i. */
void load_threshold_value(const struct opts *o, const struct report *r,
			  size_t i, char *out, size_t cap);
/* The human lines, the JSON array and the missed ones on stderr. */
void load_threshold_human(FILE *f, const struct opts *o,
			  const struct report *r);
void load_threshold_json(FILE *f, const struct opts *o, const struct report *r);
void load_threshold_missed(const struct opts *o, const struct report *r);

/* ---- load_latency.c ---- */
/* One line of the percentile spectrum, as HdrHistogram iterates it (5
 * ticks per half distance): the value, the percentile iterated to (0..1)
 * and the count at or below the value. */
struct spectrum_point {
	uint64_t value_us;
	double pct;
	uint64_t count;
};
/* Call fn for every point of s's spectrum; the last is at 100 %. */
void load_spectrum(const struct tool_hist_snap *s,
		   void (*fn)(void *ctx, const struct spectrum_point *p),
		   void *ctx);
/* Mean and standard deviation (bucket midpoints), us. */
void load_latency_moments(const struct tool_hist_snap *s, double *mean,
			  double *stddev);
/* --latency: fixed percentiles and the spectrum, wrk2's layout. */
void load_latency_print(FILE *f, const struct report *r);
/* What the latency is measured from, for the reports. */
const char *load_latency_basis(void);

/* ---- load_html.c ---- */
/* Open --html at the start: 0 or 2 (printed). */
int load_html_open(const struct opts *o, FILE **f);
/* Write the report and close f: 0, or 2 when it could not be written. */
int load_html_write(FILE *f, const struct report *r, const struct progress *p);

#endif

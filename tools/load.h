/* mllp-load's parts: options (load_opts.c), message templates
 * (load_msgs.c), the embedded receiver (load_embedded.c), the report
 * (load_report.c) and the run itself (mllp-load.c). They share one state,
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

#define LOAD_PROG	"mllp-load"
#define LOAD_USAGE_LINE "Usage: mllp-load [OPTIONS] [HOST PORT]"
#define ID_DIGITS	12 /* MSH-10 of sent messages: "L" + 12 digits */
#define ID_LEN		(1 + ID_DIGITS)
#define TS_LEN		14 /* MSH-7: YYYYMMDDHHMMSS */
#define MAX_TEMPLATES	256
#define ERR_SLOTS	256
#define LOAD_MAX_CONNS	4096

struct opts {
	uint32_t connections;
	double duration_s;
	uint64_t count; /* 0: run for duration_s */
	double rate;	/* 0: closed loop */
	double ramp_s;
	const char *files[MAX_TEMPLATES];
	size_t nfiles;
	size_t size; /* synthetic ORU^R01 size, 0: none */
	int64_t timeout_ms;
	int64_t send_timeout_ms; /* 0: the library's default */
	const char *json;	 /* NULL, "-" or a path */
	int progress;		 /* -1: auto (stderr is a tty) */
	const char *host;
	uint16_t port;
	const char *embedded_ack;
	uint32_t embedded_delay_ms;
	bool embedded_delay_set;
	enum mllp_backend_kind backend;
	struct mllp_tls_client_config tls; /* --tls ... (HOST PORT only) */
};

/* A message template: MSH-7 and MSH-10 are rewritten per message. */
struct tmpl {
	const unsigned char *data;
	size_t len;
	size_t ts_off, ts_len; /* MSH-7 */
	size_t id_off, id_len; /* MSH-10 */
	size_t out_len;	       /* length of every message made from it */
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
};

/* The per-second status line's state. */
struct progress {
	uint64_t next_ns, last_ns, last_acked;
	struct tool_hist_snap prev, cur, diff;
};
void load_progress_init(struct progress *p, uint64_t t0_ns);
/* Print a status line when one is due at now; true when it printed. */
bool load_progress_tick(struct progress *p, uint64_t now);

/* Fill the counters, latency and accounting of r from L. */
void load_report_collect(struct report *r, double duration_s, double cpu_s,
			 uint64_t reconnects);
/* Print the report (JSON to o->json, human to stdout or, with --json -,
 * stderr) and return the exit status it implies. */
int load_report_print(const struct opts *o, const struct report *r);

#endif

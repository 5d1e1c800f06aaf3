/* mllp-load's command line: the help text and the option parser. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"

static const char *prog = LOAD_PROG;

/* The rest of the help: TLS, reconnects, report keys, exit status. */
static void usage_notes(FILE *f)
{
	fprintf(
	    f, TOOL_TLS_USAGE
	    "  (TLS needs HOST PORT: the embedded receiver is plaintext.)\n"
	    "\n"
	    "Connections reconnect 100 ms after a failure. SIGINT or SIGTERM "
	    "stops early; the\n"
	    "report is still printed. Report keys (JSON): duration_s, "
	    "connections, sent,\n"
	    "accepted, app_errors, app_rejects, failed, errors {reason: "
	    "count},\n"
	    "throughput_msgs_per_s, throughput_mb_per_s, latency_us {p50 p90 "
	    "p99 p999 max},\n"
	    "reconnects, backend, window, thresholds.\n"
	    "\n"
	    "Exit status: 0 every message accepted; 1 any AE/AR/CE/CR; 2 any "
	    "failure\n"
	    "(transport, timeout, invalid ACK, wrong control id), an "
	    "accounting mismatch,\n"
	    "too low an open-file limit, or a --timeseries or --html file "
	    "that cannot be\n"
	    "written; 64 bad usage; 65 a template file holds no message or "
	    "not HL7; 66 a\n"
	    "template file cannot be read; 99 a --threshold missed (an errors "
	    "threshold\n"
	    "replaces the AE/AR and failure rules 1 and 2); 130 (143) stopped "
	    "by SIGINT\n"
	    "(SIGTERM).\n");
}

static void usage(FILE *f)
{
	fprintf(
	    f, LOAD_USAGE_LINE
	    "\n"
	    "Drive an MLLP receiver with HL7 v2 messages and report "
	    "throughput, latency and\n"
	    "every message's fate. Without HOST PORT, the library's receiver "
	    "is started\n"
	    "in-process on an ephemeral loopback port (embedded receiver).\n"
	    "\n"
	    "Options:\n"
	    "  -c, --connections N   connections, 1..65536 (default 16); the "
	    "open-file\n"
	    "                        limit is raised to its hard limit and "
	    "must allow them\n"
	    "  -d, --duration S      run for S seconds (default 10; "
	    "fractions allowed)\n"
	    "  -n, --count N         send N messages instead (overrides "
	    "--duration)\n"
	    "  -r, --rate N          open loop: N messages/s whatever the "
	    "replies do; latency\n"
	    "                        from the intended send time (default: "
	    "closed loop, one\n"
	    "                        message in flight per connection, "
	    "latency from the send)\n"
	    "      --ramp S          reach the rate (open loop) or the "
	    "connection count\n"
	    "                        (closed loop) linearly over S seconds "
	    "(default 0)\n"
	    "  -m, --message FILE    template message(s), repeatable; each "
	    "sent message gets a\n"
	    "                        unique MSH-10 and a fresh MSH-7 "
	    "(default: a built-in\n"
	    "                        ADT^A01 of about 300 bytes)\n"
	    "      --size BYTES      use a synthetic ORU^R01 of about BYTES "
	    "bytes instead\n"
	    "      --keys N          spread the messages over N synthetic "
	    "patients (PID-3.1\n"
	    "                        P000000000 .. in turn) sent as ordered "
	    "lanes keyed by\n"
	    "                        PID-3.1: a patient's next message goes "
	    "once its previous\n"
	    "                        one is accepted (1..10000000; default: "
	    "unkeyed)\n"
	    "  -t, --timeout MS      reply timeout (default 5000); also how "
	    "long a message may\n"
	    "                        wait for a connection, and the bound on "
	    "the final drain\n"
	    "      --send-timeout MS how long writing one message may take "
	    "(default 60000)\n"
	    "      --json FILE|-     write the report as JSON to FILE (- = "
	    "stdout; the human\n"
	    "                        report then goes to stderr)\n"
	    "      --progress        one status line per second on stderr "
	    "(default when\n"
	    "                        stderr is a terminal)\n"
	    "      --no-progress     no status lines\n"
	    "      --latency         after the report, the latency at fixed "
	    "percentiles and\n"
	    "                        the percentile spectrum (wrk2's layout, "
	    "values in ms)\n"
	    "      --uncorrected     open loop: latency from the first byte "
	    "written instead of\n"
	    "                        the intended send time (not corrected "
	    "for coordinated\n"
	    "                        omission)\n"
	    "      --timeseries FILE|-\n"
	    "                        one JSON line per second to FILE (- = "
	    "stdout; the human\n"
	    "                        report then goes to stderr)\n"
	    "      --html FILE       a self-contained HTML report with charts "
	    "(throughput,\n"
	    "                        latency over time, latency distribution, "
	    "outcomes)\n"
	    "      --threshold EXPR  fail the run (exit 99) unless EXPR holds; "
	    "repeatable:\n"
	    "                        p50/p90/p99/p999/p99.99/max<TIME "
	    "(us, ms, s), errors<PCT%%\n"
	    "                        (not accepted, of sent), rate>N "
	    "(acked msg/s); < <= > >=\n"
	    "      --embedded-ack CODE|MIX\n"
	    "                        embedded receiver's ACK code (AA AE AR "
	    "CA CE CR) or mix\n"
	    "                        such as AA=98,AE=1,AR=1 (default AA)\n"
	    "      --embedded-delay MS\n"
	    "                        embedded receiver's reply delay "
	    "(default 0)\n"
	    "      --backend B       I/O backend of the pool and the "
	    "embedded receiver: auto\n"
	    "                        (io_uring, else epoll), io_uring or "
	    "epoll (default auto)\n"
	    "      --mllp2           MLLP release 2, also for the embedded "
	    "receiver: a message\n"
	    "                        counts as accepted at its commit ACK "
	    "(0x06); a NAK or no\n"
	    "                        commit ACK in time sends it again, "
	    "twice at most\n"
	    "      --window N|auto   pipelining: up to N (1..1024) messages "
	    "in flight per\n"
	    "                        connection, replies matched by MSA-2 "
	    "(closed loop: N\n"
	    "                        per connection); auto: probe the "
	    "receiver with two\n"
	    "                        messages first, then 16 (default 1; "
	    "only for receivers\n"
	    "                        known to read frames one by one)\n"
	    "  -h, --help            show this help\n"
	    "      --version         show the version and the libraries "
	    "built in\n"
	    "\n");
	usage_notes(f);
}

static double parse_seconds(const char *s, const char *opt, double min)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || !end || *end || end == s || !(v >= min) || v > 1e7)
		tool_usage(prog, "%s wants seconds, got '%s'", opt, s);
	return v;
}

static bool valid_code(const char *s)
{
	static const char *const codes[] = {"AA", "AE", "AR", "CA", "CE", "CR"};
	for (size_t i = 0; i < 6; i++)
		if (strcmp(s, codes[i]) == 0)
			return true;
	return false;
}

enum {
	OPT_RAMP = 256,
	OPT_SIZE,
	OPT_JSON,
	OPT_PROGRESS,
	OPT_NO_PROGRESS,
	OPT_EACK,
	OPT_EDELAY,
	OPT_LATENCY,
	OPT_UNCORRECTED,
	OPT_TIMESERIES,
	OPT_HTML,
	OPT_THRESHOLD,
	OPT_KEYS
};

static const struct option longopts[] = {
    {"connections", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"count", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},
    {"ramp", required_argument, NULL, OPT_RAMP},
    {"message", required_argument, NULL, 'm'},
    {"size", required_argument, NULL, OPT_SIZE},
    {"keys", required_argument, NULL, OPT_KEYS},
    {"json", required_argument, NULL, OPT_JSON},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"embedded-ack", required_argument, NULL, OPT_EACK},
    {"embedded-delay", required_argument, NULL, OPT_EDELAY},
    {"help", no_argument, NULL, 'h'},
    {"latency", no_argument, NULL, OPT_LATENCY},
    {"uncorrected", no_argument, NULL, OPT_UNCORRECTED},
    {"timeseries", required_argument, NULL, OPT_TIMESERIES},
    {"html", required_argument, NULL, OPT_HTML},
    {"threshold", required_argument, NULL, OPT_THRESHOLD},
    TOOL_CLIENT_LONGOPTS,
    {NULL, 0, NULL, 0},
};

/* The defaults of every option. */
static void set_defaults(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	tool_client_init(&o->cl, 5000);
	o->connections = 16;
	o->duration_s = 10;
	o->progress = -1;
	o->argc = argc;
	o->argv = argv;
}

/* Apply one option getopt_long returned (c, with optarg); exits after
 * --help, --version and a bad value. */
static void apply_option(int c, char **argv, struct opts *o)
{
	switch (c) {
	case 'c':
		o->connections =
		    (uint32_t)tool_arg_u64(prog, optarg, 1, LOAD_MAX_CONNS,
					   "--connections wants 1..65536");
		break;
	case 'd':
		o->duration_s = parse_seconds(optarg, "--duration", 0.001);
		break;
	case 'n':
		o->count = tool_arg_u64(prog, optarg, 1, UINT64_C(999999999999),
					"--count wants N >= 1");
		break;
	case 'r':
		o->rate =
		    (double)tool_arg_u64(prog, optarg, 1, 10000000,
					 "--rate wants 1..10000000 messages/s");
		break;
	case OPT_RAMP:
		o->ramp_s = parse_seconds(optarg, "--ramp", 0);
		break;
	case 'm':
		if (o->nfiles == MAX_TEMPLATES)
			tool_usage(prog, "too many --message files");
		o->files[o->nfiles++] = optarg;
		break;
	case OPT_KEYS:
		o->keys = (uint32_t)tool_arg_u64(prog, optarg, 1, 10000000,
						 "--keys wants 1..10000000");
		break;
	case OPT_SIZE:
		o->size =
		    (size_t)tool_arg_u64(prog, optarg, 64, 64u << 20,
					 "--size wants 64..67108864 bytes");
		break;
	case OPT_JSON:
		o->json = optarg;
		break;
	case OPT_PROGRESS:
		o->progress = 1;
		break;
	case OPT_NO_PROGRESS:
		o->progress = 0;
		break;
	case OPT_EACK:
		o->embedded_ack = optarg;
		break;
	case OPT_EDELAY:
		o->embedded_delay_ms = (uint32_t)tool_arg_u64(
		    prog, optarg, 0, 3600000,
		    "--embedded-delay wants milliseconds");
		o->embedded_delay_set = true;
		break;
	case OPT_LATENCY:
		o->latency = true;
		break;
	case OPT_UNCORRECTED:
		o->uncorrected = true;
		break;
	case OPT_TIMESERIES:
		o->timeseries = optarg;
		break;
	case OPT_HTML:
		o->html = optarg;
		break;
	case OPT_THRESHOLD:
		if (o->nth == LOAD_MAX_THRESHOLDS)
			tool_usage(prog, "too many --threshold (at most 32)");
		load_threshold_parse(optarg, &o->th[o->nth++]);
		break;
	case 'h':
		usage(stdout);
		exit(0);
	default:
		tool_client_option(prog, LOAD_USAGE_LINE, c, optarg, argv,
				   &o->cl);
		break;
	}
}

/* HOST PORT, or neither (the embedded receiver). */
static void take_operands(int argc, char **argv, struct opts *o)
{
	int rest = argc - optind;
	if (rest == 1 || rest > 2)
		tool_usage(prog, "give HOST and PORT, or neither (embedded "
				 "receiver)");
	if (rest == 2) {
		o->host = argv[optind];
		o->port = tool_arg_port(prog, argv[optind + 1], false);
		if (o->embedded_ack || o->embedded_delay_set)
			tool_usage(prog, "--embedded-ack and --embedded-delay "
					 "need the embedded receiver (no HOST "
					 "PORT)");
	}
	if (o->cl.tls.enabled && rest != 2)
		tool_usage(prog, "--tls needs HOST and PORT (the embedded "
				 "receiver is plaintext)");
}

/* Refuse options that exclude or need each other. */
static void check_combinations(const struct opts *o)
{
	if (o->size && o->nfiles)
		tool_usage(prog, "--size and --message exclude each other");
	if ((uint64_t)o->connections * tool_window_size(o->cl.window) > 65536)
		tool_usage(prog, "--connections x --window may be 65536 at "
				 "most (messages in flight)");
	if (o->ramp_s > 0 && !o->rate && o->count)
		tool_usage(prog, "--ramp in closed loop needs --duration");
	if (o->uncorrected && !o->rate)
		tool_usage(prog, "--uncorrected needs --rate (closed-loop "
				 "latency is already from the send)");
	if (o->json && o->timeseries && strcmp(o->json, "-") == 0 &&
	    strcmp(o->timeseries, "-") == 0)
		tool_usage(prog,
			   "--json - and --timeseries - both want stdout");
	if (o->embedded_ack && !strchr(o->embedded_ack, '=') &&
	    !valid_code(o->embedded_ack))
		tool_usage(prog,
			   "--embedded-ack wants AA AE AR CA CE CR or a mix "
			   "such as AA=98,AE=1,AR=1, got '%s'",
			   o->embedded_ack);
}

void load_parse_args(int argc, char **argv, struct opts *o)
{
	set_defaults(argc, argv, o);
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:d:n:r:m:t:h", longopts,
				NULL)) != -1)
		apply_option(c, argv, o);
	tool_tls_check(prog, &o->cl.tls);
	take_operands(argc, argv, o);
	check_combinations(o);
}

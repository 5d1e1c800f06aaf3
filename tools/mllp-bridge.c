/* mllp-bridge: durable, ordered HL7 feeds on NATS JetStream.
 *
 *   mllp-bridge in   MLLP -> JetStream: AA only once JetStream stored it
 *   mllp-bridge out  JetStream -> MLLP: acked in JetStream only after AA
 *
 * This file: the command line and the signals. Public library API only;
 * the NATS client is Debian's libnats (nats.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "metrics_http.h"
#include "mllp-bridge.h"
#include "recv_opts.h"

#define USAGE_LINE "Usage: mllp-bridge in|out [OPTIONS]"

static const char usage_text[] = USAGE_LINE
    "\n"
    "\n"
    "Durable HL7 feeds on NATS JetStream.\n"
    "  in   listen for MLLP and publish each message to JetStream; the\n"
    "       sender gets AA only once JetStream has stored it\n"
    "  out  deliver a stream's messages through a durable consumer to an\n"
    "       MLLP receiver; a message is acked in JetStream only after the\n"
    "       receiver's AA (or CA)\n"
    "\n"
    "NATS (both):\n"
    "  --nats URL            server(s), comma-separated (default\n"
    "                        nats://127.0.0.1:4222)\n"
    "  --stream NAME         the stream (default HL7); missing: an error\n"
    "  --create-stream       create the stream when it is missing, with:\n"
    "  --stream-subjects S   its subjects (default 'hl7.>')\n"
    "  --replicas N          replicas (default 1)\n"
    "  --max-age S           drop messages older than S seconds (default 0:\n"
    "                        keep)\n"
    "  --duplicate-window S  de-duplication window (default 120)\n"
    "  --memory-storage      memory instead of file storage\n"
    "  --key-field F         the ordering key's HL7 field (default PID-3)\n"
    "  --metrics ADDR:PORT   serve the counters to Prometheus at\n"
    "                        http://ADDR:PORT/metrics (IPv6 in brackets;\n"
    "                        port 0: ephemeral) and print \"metrics on\n"
    "                        ADDR:PORT\" (in: the second line on stdout,\n"
    "                        out: the first)\n"
    "\n"
    "in:\n"
    "  --listen PORT         MLLP port (default 2575; 0: ephemeral); the\n"
    "                        first line on stdout is \"listening on "
    "ADDR:PORT\"\n"
    "  --bind ADDR           address to listen on (default 0.0.0.0)\n"
    "  --subject T           subject template (default 'hl7.in.{MSH-9.1}'):\n"
    "                        {SEG-N[.C[.S]]} is an HL7 field, {partition}\n"
    "                        the key's partition (--partitions); bytes not\n"
    "                        allowed in a subject token become %XX, an\n"
    "                        empty field '_'\n"
    "  --partitions P        {partition} = hash(key) mod P (default 1)\n"
    "  --publish-timeout MS  no PubAck within MS: the sender gets AE\n"
    "                        (default 5000)\n"
    "  --on-unavailable M    ae (default): AE with the reason when a\n"
    "                        message is not stored; no-reply: no answer\n"
    "                        (the sender's timeout and retry apply)\n"
    "  --max-pending N       publishes awaiting JetStream (default 4096)\n"
    "  --max-frame BYTES, --max-connections N, --idle-timeout S,\n"
    "  --allow ADDR|CIDR|HOST (repeatable): as mllp-recv\n"
    "  --tls --cert FILE --key FILE [--ca FILE --require-client-cert]\n"
    "\n"
    "out:\n"
    "  --consumer NAME       the durable consumer (required)\n"
    "  --create-consumer     create it when missing (push, deliver group\n"
    "                        NAME, explicit ack) with:\n"
    "  --filter SUBJ         its subject filter (default 'hl7.in.>')\n"
    "  --ack-wait S          its AckWait (default 30)\n"
    "  --max-ack-pending N   its MaxAckPending: the window (default 1000)\n"
    "  --to HOST:PORT        the MLLP receiver (required; [v6]:port)\n"
    "  -c N                  connections to it (default 1)\n"
    "  --key-header H        order by this header instead of --key-field\n"
    "                        (e.g. Mllp-Key, set by mllp-bridge in)\n"
    "  --on-reject P         dead-letter (default): AE/AR publish the\n"
    "                        message with the ACK to --dead-letter and\n"
    "                        terminate it; hold: the key's lane stops\n"
    "  --dead-letter SUBJ    default hl7.dead.CONSUMER\n"
    "  -t, --timeout MS      reply timeout (default 60000)\n"
    "  --retry-max S         longest delay between retries (default 30)\n"
    "  --drain-timeout S     on SIGTERM, wait this long for messages in\n"
    "                        flight (default 10)\n"
    "  --exclusive           own the consumer alone: while another bridge\n"
    "                        holds its lease or is bound to it, wait as a\n"
    "                        standby; take over when it is gone\n"
    "  --lease S             the lease's lifetime (default 10; the lease\n"
    "                        bucket keeps the first bridge's), renewed and\n"
    "                        polled by standbys every S/3\n"
    "  --tls --ca FILE --cert FILE --key FILE --server-name N --insecure\n"
    "\n"
    "  -h, --help            this text\n"
    "  --version             the version and the libraries built in\n"
    "\n"
    "SIGINT/SIGTERM drain and exit 0, printing the counters. Exit status 1\n"
    "when the bridge cannot start (NATS unreachable, stream or consumer\n"
    "missing, port in use) or lost its --exclusive lease (after draining),\n"
    "64 for bad options.\n";

enum {
	O_NATS = 256,
	O_STREAM,
	O_CREATE_STREAM,
	O_STREAM_SUBJECTS,
	O_REPLICAS,
	O_MAX_AGE,
	O_DUP_WINDOW,
	O_MEMORY,
	O_KEY_FIELD,
	O_VERSION,
	O_METRICS,
	/* in */
	O_LISTEN,
	O_SUBJECT,
	O_PARTITIONS,
	O_PUBLISH_TIMEOUT,
	O_ON_UNAVAILABLE,
	O_MAX_PENDING,
	/* out */
	O_CONSUMER,
	O_CREATE_CONSUMER,
	O_FILTER,
	O_ACK_WAIT,
	O_MAX_ACK_PENDING,
	O_TO,
	O_KEY_HEADER,
	O_ON_REJECT,
	O_DEAD_LETTER,
	O_RETRY_MAX,
	O_DRAIN_TIMEOUT,
	O_EXCLUSIVE,
	O_LEASE,
	O_SERVER_NAME,
	O_INSECURE,
};

struct setup {
	bool out;
	struct bridge_nats_opts no;
	struct bridge_in_opts in;
	struct bridge_out_opts oo;
	const char *key_field, *subject, *to;
	char dead_letter[300];
};

static uint64_t num(const char *arg, uint64_t min, uint64_t max,
		    const char *what)
{
	return tool_arg_u64(BRIDGE_PROG, arg, min, max, what);
}

/* An option of `in`; false when ch is none. */
static bool in_option(struct setup *st, int ch, const char *arg)
{
	struct bridge_in_opts *io = &st->in;
	switch (ch) {
	case O_LISTEN:
		io->recv.cfg.port = tool_arg_port(BRIDGE_PROG, arg, true);
		return true;
	case O_SUBJECT:
		st->subject = arg;
		return true;
	case O_PARTITIONS:
		io->partitions = (unsigned)num(arg, 1, 1u << 20,
					       "--partitions wants 1..1048576");
		return true;
	case O_PUBLISH_TIMEOUT:
		io->publish_timeout_ms = (int64_t)num(
		    arg, 1, 3600000, "--publish-timeout wants 1..3600000 ms");
		return true;
	case O_ON_UNAVAILABLE:
		if (strcmp(arg, "ae") != 0 && strcmp(arg, "no-reply") != 0)
			tool_usage(BRIDGE_PROG,
				   "--on-unavailable wants ae or no-reply, "
				   "got '%s'",
				   arg);
		io->no_reply_unavailable = strcmp(arg, "no-reply") == 0;
		return true;
	case O_MAX_PENDING:
		io->max_pending = (int64_t)num(
		    arg, 1, 1000000, "--max-pending wants 1..1000000");
		return true;
	default:
		return recv_option(BRIDGE_PROG, ch, arg, &io->recv);
	}
}

/* --to HOST:PORT ([v6]:PORT). */
static void parse_to(struct setup *st, const char *arg)
{
	static char host[MLLP_HOST_MAX];
	const char *colon = strrchr(arg, ':');
	const char *h = arg;
	size_t hl = colon ? (size_t)(colon - arg) : 0;
	if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (!colon || hl == 0 || hl >= sizeof(host))
		tool_usage(BRIDGE_PROG, "--to wants HOST:PORT, got '%s'", arg);
	memcpy(host, h, hl);
	host[hl] = 0;
	st->oo.to_host = host;
	st->oo.to_port = tool_arg_port(BRIDGE_PROG, colon + 1, false);
}

/* An option of `out`; false when ch is none. */
static bool out_option(struct setup *st, int ch, const char *arg)
{
	struct bridge_out_opts *oo = &st->oo;
	static const int tls_map[][2] = {{RECV_OPT_TLS, TOOL_OPT_TLS},
					 {RECV_OPT_CA, TOOL_OPT_CA},
					 {RECV_OPT_CERT, TOOL_OPT_CERT},
					 {RECV_OPT_KEY, TOOL_OPT_KEY},
					 {O_SERVER_NAME, TOOL_OPT_SERVER_NAME},
					 {O_INSECURE, TOOL_OPT_INSECURE}};
	for (size_t i = 0; i < sizeof(tls_map) / sizeof(tls_map[0]); i++)
		if (ch == tls_map[i][0])
			return tool_tls_option(tls_map[i][1], arg, &oo->tls);
	switch (ch) {
	case O_CONSUMER:
		oo->consumer = arg;
		return true;
	case O_CREATE_CONSUMER:
		oo->create_consumer = true;
		return true;
	case O_FILTER:
		oo->filter = arg;
		return true;
	case O_ACK_WAIT:
		oo->ack_wait_s =
		    (int64_t)num(arg, 1, 86400, "--ack-wait wants 1..86400 s");
		return true;
	case O_MAX_ACK_PENDING:
		oo->max_ack_pending = (int64_t)num(
		    arg, 1, 1000000, "--max-ack-pending wants 1..1000000");
		return true;
	case O_TO:
		parse_to(st, arg);
		return true;
	case 'c':
		oo->connections =
		    (uint32_t)num(arg, 1, 10000, "-c wants 1..10000");
		return true;
	case O_KEY_HEADER:
		oo->key_header = arg;
		return true;
	case O_ON_REJECT:
		if (strcmp(arg, "dead-letter") != 0 && strcmp(arg, "hold") != 0)
			tool_usage(BRIDGE_PROG,
				   "--on-reject wants dead-letter or hold, got "
				   "'%s'",
				   arg);
		oo->hold = strcmp(arg, "hold") == 0;
		return true;
	case O_DEAD_LETTER:
		oo->dead_letter = arg;
		return true;
	case 't':
		oo->reply_timeout_ms = (int64_t)num(
		    arg, 1, 86400000, "--timeout wants 1..86400000 ms");
		return true;
	case O_RETRY_MAX:
		oo->retry_max_s =
		    (uint32_t)num(arg, 1, 3600, "--retry-max wants 1..3600 s");
		return true;
	case O_DRAIN_TIMEOUT:
		oo->drain_timeout_ms =
		    (int64_t)num(arg, 0, 3600,
				 "--drain-timeout wants 0..3600 s") *
		    1000;
		return true;
	case O_EXCLUSIVE:
		oo->exclusive = true;
		return true;
	case O_LEASE:
		oo->lease_s =
		    (int64_t)num(arg, 1, 3600, "--lease wants 1..3600 s");
		return true;
	default:
		return false;
	}
}

/* An option of both directions; false when ch is none. */
static bool nats_option(struct setup *st, int ch, const char *arg)
{
	struct bridge_nats_opts *no = &st->no;
	switch (ch) {
	case O_NATS:
		no->url = arg;
		return true;
	case O_STREAM:
		no->stream = arg;
		return true;
	case O_CREATE_STREAM:
		no->create_stream = true;
		return true;
	case O_STREAM_SUBJECTS:
		no->subjects = arg;
		return true;
	case O_REPLICAS:
		no->replicas = (int64_t)num(arg, 1, 5, "--replicas wants 1..5");
		return true;
	case O_MAX_AGE:
		no->max_age_s = (int64_t)num(arg, 0, 100ull * 365 * 86400,
					     "--max-age wants seconds");
		return true;
	case O_DUP_WINDOW:
		no->dup_window_s = (int64_t)num(
		    arg, 1, 30ull * 86400, "--duplicate-window wants seconds");
		return true;
	case O_MEMORY:
		no->memory = true;
		return true;
	case O_KEY_FIELD:
		st->key_field = arg;
		return true;
	case O_METRICS:
		if (tool_metrics_check(arg) != 0)
			tool_usage(BRIDGE_PROG,
				   "--metrics wants ADDR:PORT (e.g. "
				   "127.0.0.1:9464, [::1]:0), got '%s'",
				   arg);
		st->in.metrics = st->oo.metrics = arg;
		return true;
	default:
		return false;
	}
}

static void defaults(struct setup *st)
{
	st->no.url = "nats://127.0.0.1:4222";
	st->no.stream = "HL7";
	st->no.subjects = "hl7.>";
	st->no.replicas = 1;
	st->no.dup_window_s = 120;
	st->key_field = "PID-3";
	st->subject = "hl7.in.{MSH-9.1}";
	recv_opts_init(&st->in.recv, false);
	st->in.recv.cfg.port = 2575;
	st->in.publish_timeout_ms = 5000;
	st->in.max_pending = 4096;
	st->in.partitions = 1;
	st->oo.filter = "hl7.in.>";
	st->oo.connections = 1;
	st->oo.ack_wait_s = 30;
	st->oo.max_ack_pending = 1000;
	st->oo.reply_timeout_ms = 60000;
	st->oo.retry_max_s = 30;
	st->oo.drain_timeout_ms = 10000;
	mllp_tls_client_config_init(&st->oo.tls);
}

/* Refuse contradictions (exit 64) and complete the configuration. */
static void check(struct setup *st)
{
	if (bridge_field_parse(st->key_field, &st->in.key) != 0)
		tool_usage(BRIDGE_PROG,
			   "--key-field wants SEG-N[.C[.S]] (e.g. PID-3), "
			   "got '%s'",
			   st->key_field);
	st->oo.key = st->in.key;
	if (!st->out) {
		char why[200];
		if (bridge_template_parse(st->subject, &st->in.subject, why,
					  sizeof(why)) != 0)
			tool_usage(BRIDGE_PROG, "--subject '%s': %s",
				   st->subject, why);
		recv_opts_check(BRIDGE_PROG, &st->in.recv);
		return;
	}
	struct bridge_out_opts *oo = &st->oo;
	if (!oo->consumer)
		tool_usage(BRIDGE_PROG, "out needs --consumer NAME");
	if (!oo->to_host)
		tool_usage(BRIDGE_PROG, "out needs --to HOST:PORT");
	if (strpbrk(oo->consumer, ". *>"))
		tool_usage(BRIDGE_PROG,
			   "--consumer '%s': a name without '.', '*', '>' or "
			   "spaces",
			   oo->consumer);
	if (!oo->dead_letter) {
		snprintf(st->dead_letter, sizeof(st->dead_letter),
			 "hl7.dead.%s", oo->consumer);
		oo->dead_letter = st->dead_letter;
	}
	tool_tls_check(BRIDGE_PROG, &oo->tls);
	oo->tls_enabled = oo->tls.enabled;
	if (oo->lease_s && !oo->exclusive)
		tool_usage(BRIDGE_PROG, "--lease goes with --exclusive");
	if (!oo->lease_s)
		oo->lease_s = 10;
}

/* Which options belong to which direction (0 both, 1 in, 2 out). */
static int option_side(int ch)
{
	if (ch == RECV_OPT_TLS || ch == RECV_OPT_CERT || ch == RECV_OPT_KEY ||
	    ch == RECV_OPT_CA)
		return 0; /* both, meaning per direction */
	if ((ch >= O_LISTEN && ch <= O_MAX_PENDING) ||
	    (ch >= RECV_OPT_BIND && ch < RECV_OPT_END_))
		return 1;
	if ((ch >= O_CONSUMER && ch <= O_INSECURE) || ch == 'c' || ch == 't')
		return 2;
	return 0;
}

static void parse(int argc, char **argv, struct setup *st)
{
	static const struct option opts[] = {
	    {"nats", required_argument, NULL, O_NATS},
	    {"stream", required_argument, NULL, O_STREAM},
	    {"create-stream", no_argument, NULL, O_CREATE_STREAM},
	    {"stream-subjects", required_argument, NULL, O_STREAM_SUBJECTS},
	    {"replicas", required_argument, NULL, O_REPLICAS},
	    {"max-age", required_argument, NULL, O_MAX_AGE},
	    {"duplicate-window", required_argument, NULL, O_DUP_WINDOW},
	    {"memory-storage", no_argument, NULL, O_MEMORY},
	    {"key-field", required_argument, NULL, O_KEY_FIELD},
	    {"version", no_argument, NULL, O_VERSION},
	    {"metrics", required_argument, NULL, O_METRICS},
	    {"help", no_argument, NULL, 'h'},
	    {"listen", required_argument, NULL, O_LISTEN},
	    {"subject", required_argument, NULL, O_SUBJECT},
	    {"partitions", required_argument, NULL, O_PARTITIONS},
	    {"publish-timeout", required_argument, NULL, O_PUBLISH_TIMEOUT},
	    {"on-unavailable", required_argument, NULL, O_ON_UNAVAILABLE},
	    {"max-pending", required_argument, NULL, O_MAX_PENDING},
	    {"consumer", required_argument, NULL, O_CONSUMER},
	    {"create-consumer", no_argument, NULL, O_CREATE_CONSUMER},
	    {"filter", required_argument, NULL, O_FILTER},
	    {"ack-wait", required_argument, NULL, O_ACK_WAIT},
	    {"max-ack-pending", required_argument, NULL, O_MAX_ACK_PENDING},
	    {"to", required_argument, NULL, O_TO},
	    {"key-header", required_argument, NULL, O_KEY_HEADER},
	    {"on-reject", required_argument, NULL, O_ON_REJECT},
	    {"dead-letter", required_argument, NULL, O_DEAD_LETTER},
	    {"timeout", required_argument, NULL, 't'},
	    {"retry-max", required_argument, NULL, O_RETRY_MAX},
	    {"drain-timeout", required_argument, NULL, O_DRAIN_TIMEOUT},
	    {"exclusive", no_argument, NULL, O_EXCLUSIVE},
	    {"lease", required_argument, NULL, O_LEASE},
	    {"server-name", required_argument, NULL, O_SERVER_NAME},
	    {"insecure", no_argument, NULL, O_INSECURE},
	    RECV_LONGOPTS,
	    {NULL, 0, NULL, 0}};
	opterr = 0;
	int ch, idx = -1;
	char name[40];
	while ((ch = getopt_long(argc, argv, ":hc:t:", opts, &idx)) != -1) {
		if (ch == 'h') {
			fputs(usage_text, stdout);
			exit(0);
		}
		if (ch == O_VERSION)
			tool_version(BRIDGE_PROG);
		if (ch == ':' || ch == '?')
			tool_option_error(BRIDGE_PROG, USAGE_LINE, ch, argv);
		if (idx >= 0)
			snprintf(name, sizeof(name), "--%s", opts[idx].name);
		else
			snprintf(name, sizeof(name), "-%c", ch);
		idx = -1;
		int side = option_side(ch);
		if (side == 1 && st->out)
			tool_usage(BRIDGE_PROG, "%s is an option of 'in'",
				   name);
		if (side == 2 && !st->out)
			tool_usage(BRIDGE_PROG, "%s is an option of 'out'",
				   name);
		if (!nats_option(st, ch, optarg) &&
		    !(st->out ? out_option(st, ch, optarg)
			      : in_option(st, ch, optarg)))
			tool_usage(BRIDGE_PROG, "%s is not an option of '%s'",
				   name, st->out ? "out" : "in");
	}
	if (optind < argc)
		tool_usage(BRIDGE_PROG, "unexpected argument '%s'",
			   argv[optind]);
	check(st);
}

int main(int argc, char **argv)
{
	static struct setup st;
	defaults(&st);
	if (argc < 2 || argv[1][0] == '-') {
		if (argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
				  strcmp(argv[1], "--help") == 0)) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (argc >= 2 && strcmp(argv[1], "--version") == 0)
			tool_version(BRIDGE_PROG);
		tool_usage(BRIDGE_PROG, "say 'in' or 'out' first");
	}
	if (strcmp(argv[1], "out") == 0)
		st.out = true;
	else if (strcmp(argv[1], "in") != 0)
		tool_usage(BRIDGE_PROG,
			   "the first argument is 'in' or 'out', "
			   "got '%s'",
			   argv[1]);
	parse(argc - 1, argv + 1, &st);
	int sfd = tool_signal_fd();
	if (sfd < 0) {
		perror(BRIDGE_PROG ": signalfd");
		return BRIDGE_EXIT_RUNTIME;
	}
	tool_nofile(BRIDGE_PROG, 0, "");
	int code = st.out ? bridge_out_run(&st.no, &st.oo, sfd)
			  : bridge_in_run(&st.no, &st.in, sfd);
	recv_opts_free(&st.in.recv);
	nats_Close();
	return code == 0 && bridge_lease_lost() ? BRIDGE_EXIT_RUNTIME : code;
}

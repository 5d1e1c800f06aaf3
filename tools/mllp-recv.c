/* mllp-recv: an MLLP receiver on the command line.
 *
 * Public library API only (mllp_receiver_*), plus the tools' shared
 * argument helpers. The first line on stdout is "listening on ADDR:PORT"
 * so scripts can read the port; SIGINT/SIGTERM stop it gracefully (the
 * replies held are written for up to --stop-drain ms) and print the
 * counters. --metrics serves them to Prometheus (the second
 * line is then "metrics on ADDR:PORT"). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "common.h"
#include "metrics_http.h"
#include "recv_opts.h"

#define PROG	   "mllp-recv"
#define USAGE_LINE "Usage: mllp-recv [OPTIONS] [PORT]"

enum { EXIT_RUNTIME = 1 };

static const char usage_text[] = USAGE_LINE
    "\n"
    "\n"
    "Listen for MLLP connections and answer every frame. PORT defaults to\n"
    "2575; 0 picks an ephemeral port. The first line on stdout is\n"
    "\"listening on ADDR:PORT\".\n"
    "\n"
    "Dispatcher (default: an AA ACK for every message):\n"
    "  --ack CODE            ACK code: AA|AE|AR|CA|CE|CR\n"
    "  --ack-mix SPEC        draw codes with weights, e.g. AA=98,AE=1,AR=1\n"
    "  --seed N              seed of the --ack-mix draw (default 1)\n"
    "  --echo                the reference's EchoDispatcher: HL7 gets AA\n"
    "                        \"A real MLLP message dispatcher was not\n"
    "                        provided\", unparsable HL7 gets AR, other\n"
    "                        frames get \"mllp_unknown\"\n"
    "  --delay MS            hold each reply MS milliseconds (in order)\n"
    "\n"
    "Listener and limits:\n"
    "  --bind ADDR           address to listen on (default 0.0.0.0; \"::\"\n"
    "                        for dual-stack IPv6)\n"
    "  --max-frame BYTES     largest frame; bigger closes the connection\n"
    "                        (default 16777216)\n"
    "  --max-connections N   connections at once (default 20000)\n"
    "  --idle-timeout S      close a connection without a complete frame\n"
    "                        for S seconds (default 300; 0: never)\n"
    "  --max-buffered-bytes N  bytes all connections together may hold\n"
    "                        (partial frames, unsent replies; default\n"
    "                        268435456, at least --max-frame): above 3/4\n"
    "                        the heaviest are not read, past it they close\n"
    "  --reply-backlog-pause N  stop reading a connection while more than\n"
    "                        N bytes of its replies are unsent (default\n"
    "                        262144; >= 16777216: never pause)\n"
    "  --allow ADDR|CIDR|HOST  admit only these clients (repeatable; host\n"
    "                        names resolved at start)\n"
    "  --backend B           auto|io_uring|epoll (default auto)\n"
    "  --mllp2               MLLP release 2: answer each frame first with\n"
    "                        the commit ACK block (0x0B 0x06 0x1C 0x0D),\n"
    "                        then its reply as a frame of its own\n"
    "\n"
    "TLS:\n"
    "  --tls                 accept TLS connections only (needs --cert, "
    "--key)\n"
    "  --cert FILE           certificate chain (PEM, leaf first)\n"
    "  --key FILE            its private key (PEM)\n"
    "  --ca FILE             CA (PEM) client certificates must chain to\n"
    "  --crl FILE            CRL (PEM) checked against client certificates\n"
    "  --require-client-cert refuse clients without a valid certificate\n"
    "                        (needs --ca)\n"
    "  --allow-cn NAME       admit only client certificates naming NAME in\n"
    "                        SAN or CN, ignoring case (repeatable; needs\n"
    "                        --require-client-cert)\n"
    "\n"
    "Run and output:\n"
    "  --count N             exit 0 after N messages have been answered\n"
    "  --stop-drain MS       on stop (SIGINT/SIGTERM, --count), keep\n"
    "                        writing the replies already held, --delay's\n"
    "                        too, for up to MS milliseconds (default 1000;\n"
    "                        0: close at once)\n"
    "  --out FILE            append each received message, framed\n"
    "  --quiet               log errors only (no warnings) on stderr\n"
    "  --stats               print the counters on exit (always printed\n"
    "                        after SIGINT/SIGTERM)\n"
    "  --metrics ADDR:PORT   serve the counters to Prometheus at\n"
    "                        http://ADDR:PORT/metrics (IPv6 in brackets;\n"
    "                        port 0: ephemeral); the second line on stdout\n"
    "                        is then \"metrics on ADDR:PORT\"\n"
    "  -h, --help            this text\n"
    "  --version             the version and the libraries built in\n"
    "\n"
    "Exit status: 0 after --count messages or SIGINT/SIGTERM, 1 when the\n"
    "receiver cannot start (e.g. port in use), --out cannot be opened or\n"
    "the --metrics address cannot be listened on, 64 for bad options (the\n"
    "reason on stderr).\n";

struct app {
	struct mllp_ack_dispatcher ack;
	bool echo;
	uint32_t delay_ms;
	FILE *out;
	uint64_t count;
	_Atomic uint64_t replied;
	int done_fd; /* eventfd: --count reached */
	bool quiet;
	/* --metrics: the ACK dispatcher's counts, mirrored by the manager
	 * thread for the HTTP server's thread; the running receiver. */
	_Atomic uint64_t acks[MLLP_ACK_CODE_COUNT];
	const struct mllp_receiver *recv;
};

/* Runs on the receiver's manager thread. */
static void dispatch(void *ctx, const struct mllp_message *m,
		     struct mllp_reply *rep)
{
	struct app *a = ctx;
	if (a->out) {
		unsigned char sb = MLLP_SB, tr[2] = {MLLP_EB, MLLP_CR};
		fwrite(&sb, 1, 1, a->out);
		fwrite(m->data, 1, m->len, a->out);
		fwrite(tr, 1, 2, a->out);
		fflush(a->out);
	}
	if (a->echo) {
		mllp_dispatch_echo(NULL, m, rep);
		rep->delay_ms = a->delay_ms;
	} else {
		mllp_dispatch_ack(&a->ack, m, rep);
		for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
			atomic_store_explicit(&a->acks[i], a->ack.counts[i],
					      memory_order_relaxed);
	}
}

/* The /metrics page, on the HTTP server's thread: the receiver's
 * families, then the ACKs by code (not with --echo, which does not count
 * them). Like the mllp_metrics_render_* calls: the length, the text only
 * when it fits. */
static int render_metrics(void *ctx, char *buf, size_t cap)
{
	struct app *a = ctx;
	int n = mllp_metrics_render_receiver(a->recv, buf, cap, NULL);
	if (n < 0 || a->echo)
		return n;
	uint64_t c[MLLP_ACK_CODE_COUNT];
	for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
		c[i] = atomic_load_explicit(&a->acks[i], memory_order_relaxed);
	size_t used = (size_t)n;
	int m = mllp_metrics_render_acks(c, used < cap ? buf + used : NULL,
					 used < cap ? cap - used : 0, NULL);
	if (m < 0)
		return m;
	if (used + (size_t)m >= cap && cap > 0)
		buf[0] = 0;
	return n + m;
}

static void telemetry(void *ctx, const struct mllp_receiver_event *ev)
{
	struct app *a = ctx;
	if (ev->kind != MLLP_RECEIVER_EV_REPLY_SENT || a->count == 0)
		return;
	uint64_t before = atomic_fetch_add_explicit(&a->replied, ev->replies,
						    memory_order_relaxed);
	if (before < a->count && before + ev->replies >= a->count) {
		uint64_t one = 1;
		if (write(a->done_fd, &one, sizeof(one)) < 0)
			abort();
	}
}

static void print_stats(const struct mllp_receiver *r)
{
	struct mllp_receiver_stats s;
	mllp_receiver_stats_init(&s);
	mllp_receiver_get_stats(r, &s);
	printf("backend=%s\n", mllp_receiver_backend(r));
	printf("messages_received=%" PRIu64 "\n"
	       "messages_hl7=%" PRIu64 "\n"
	       "replies_sent=%" PRIu64 "\n"
	       "connections_accepted=%" PRIu64 "\n"
	       "connections_refused=%" PRIu64 "\n"
	       "connections_idle_timeout=%" PRIu64 "\n"
	       "connections_error=%" PRIu64 "\n"
	       "bytes_received=%" PRIu64 "\n"
	       "bytes_sent=%" PRIu64 "\n"
	       "junk_bytes=%" PRIu64 "\n"
	       "frames_too_big=%" PRIu64 "\n"
	       "buffered_bytes_peak=%" PRIu64 "\n"
	       "connections_shed=%" PRIu64 "\n"
	       "reads_paused=%" PRIu64 "\n"
	       "connections_stop_unfinished=%" PRIu64 "\n",
	       s.messages_received, s.messages_hl7, s.replies_sent,
	       s.connections_accepted, s.connections_refused,
	       s.connections_idle_timeout, s.connections_error,
	       s.bytes_received, s.bytes_sent, s.junk_bytes, s.frames_too_big,
	       s.buffered_bytes_peak, s.connections_shed, s.reads_paused,
	       s.connections_stop_unfinished);
	fflush(stdout);
}

enum {
	OPT_ACK = 256,
	OPT_ACK_MIX,
	OPT_SEED,
	OPT_ECHO,
	OPT_DELAY,
	OPT_COUNT,
	OPT_OUT,
	OPT_QUIET,
	OPT_STATS,
	OPT_VERSION,
	OPT_METRICS,
	OPT_STOP_DRAIN,
};

/* Everything the command line sets. */
struct setup {
	struct app a;
	struct recv_opts ro;
	const char *out_path;
	const char *metrics; /* --metrics ADDR:PORT */
	bool stats, have_ack, have_mix;
};

/* The dispatcher and output options; false when ch is none of them. */
static bool dispatch_option(struct setup *st, int ch, const char *arg)
{
	struct app *a = &st->a;
	switch (ch) {
	case OPT_ACK: {
		static const char *codes[] = {"AA", "AE", "AR",
					      "CA", "CE", "CR"};
		bool ok = false;
		for (int i = 0; i < 6; i++)
			ok |= strcmp(arg, codes[i]) == 0;
		if (!ok)
			tool_usage(PROG,
				   "--ack: %s is not one of AA|AE|AR|CA|CE|CR",
				   arg);
		a->ack.code = arg;
		st->have_ack = true;
		return true;
	}
	case OPT_ACK_MIX:
		if (mllp_ack_dispatcher_set_mix(&a->ack, arg) != 0)
			tool_usage(PROG,
				   "--ack-mix: bad mix '%s' (want e.g. "
				   "AA=98,AE=1,AR=1)",
				   arg);
		st->have_mix = true;
		return true;
	case OPT_SEED:
		a->ack.seed = tool_arg_u64(PROG, arg, 0, UINT64_MAX,
					   "--seed wants a number");
		return true;
	case OPT_ECHO:
		a->echo = true;
		return true;
	case OPT_DELAY:
		a->delay_ms = (uint32_t)tool_arg_u64(
		    PROG, arg, 0, 3600000,
		    "--delay wants milliseconds 0..3600000");
		return true;
	case OPT_STOP_DRAIN:
		st->ro.cfg.stop_drain_ms = (uint32_t)tool_arg_u64(
		    PROG, arg, 0, 3600000,
		    "--stop-drain wants milliseconds 0..3600000");
		return true;
	case OPT_COUNT:
		a->count = tool_arg_u64(PROG, arg, 1, UINT64_MAX,
					"--count wants N >= 1");
		return true;
	case OPT_OUT:
		st->out_path = arg;
		return true;
	case OPT_QUIET:
		a->quiet = true;
		return true;
	case OPT_STATS:
		st->stats = true;
		return true;
	case OPT_METRICS:
		if (tool_metrics_check(arg) != 0)
			tool_usage(PROG,
				   "--metrics wants ADDR:PORT (e.g. "
				   "127.0.0.1:9464, [::1]:0), got '%s'",
				   arg);
		st->metrics = arg;
		return true;
	default:
		return false;
	}
}

/* Refuse contradictions (exit 64), then complete the configuration. */
static void check_args(struct setup *st)
{
	struct app *a = &st->a;
	if (a->echo && (st->have_ack || st->have_mix))
		tool_usage(PROG, "--echo cannot be combined with --ack or "
				 "--ack-mix");
	if (st->have_ack && st->have_mix)
		tool_usage(PROG, "--ack and --ack-mix exclude each other");
	recv_opts_check(PROG, &st->ro);
	a->ack.delay_ms = a->delay_ms;
}

static void parse_args(int argc, char **argv, struct setup *st)
{
	static const struct option opts[] = {
	    {"ack", required_argument, NULL, OPT_ACK},
	    {"ack-mix", required_argument, NULL, OPT_ACK_MIX},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"echo", no_argument, NULL, OPT_ECHO},
	    {"delay", required_argument, NULL, OPT_DELAY},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"stats", no_argument, NULL, OPT_STATS},
	    {"metrics", required_argument, NULL, OPT_METRICS},
	    {"stop-drain", required_argument, NULL, OPT_STOP_DRAIN},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION},
	    RECV_LONGOPTS,
	    RECV_MORE_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	mllp_ack_dispatcher_init(&st->a.ack);
	recv_opts_init(&st->ro, true);
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (ch == 'h') {
			fputs(usage_text, stdout);
			exit(0);
		}
		if (ch == OPT_VERSION)
			tool_version(PROG);
		if (!dispatch_option(st, ch, optarg) &&
		    !recv_option(PROG, ch, optarg, &st->ro))
			tool_option_error(PROG, USAGE_LINE, ch, argv);
	}
	st->ro.cfg.port = 2575;
	if (optind < argc)
		st->ro.cfg.port = tool_arg_port(PROG, argv[optind++], true);
	if (optind < argc)
		tool_usage(PROG, "unexpected argument '%s'", argv[optind]);
	check_args(st);
}

/* Start the receiver and print "listening on ADDR:PORT"; NULL after an
 * error (printed). */
static struct mllp_receiver *start(struct setup *st)
{
	struct mllp_receiver_config *cfg = &st->ro.cfg;
	cfg->dispatch = dispatch;
	cfg->dispatch_ctx = &st->a;
	cfg->telemetry = telemetry;
	cfg->telemetry_ctx = &st->a;
	cfg->log = tool_log;
	cfg->log_ctx = (void *)PROG;
	cfg->log_level = st->a.quiet ? MLLP_LOG_ERROR : MLLP_LOG_WARNING;
	struct mllp_receiver *r = NULL;
	struct mllp_error err;
	if (mllp_receiver_create(cfg, &r, &err) != 0) {
		char ebuf[300];
		mllp_error_format(&err, ebuf, sizeof(ebuf));
		fprintf(stderr, "%s: %s\n", PROG, ebuf);
		return NULL;
	}
	const char *addr = mllp_receiver_address(r);
	if (strchr(addr, ':'))
		printf("listening on [%s]:%u\n", addr, mllp_receiver_port(r));
	else
		printf("listening on %s:%u\n", addr, mllp_receiver_port(r));
	fflush(stdout);
	return r;
}

/* Wait for SIGINT/SIGTERM (on sfd) or --count (on done_fd); true when a
 * signal ended it. */
static bool wait_for_end(int sfd, const struct app *a)
{
	struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN},
			       {.fd = a->done_fd, .events = POLLIN}};
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) > 0 && !a->quiet)
				fprintf(stderr, "%s: %s, stopping\n", PROG,
					strsignal((int)si.ssi_signo));
			return true;
		}
		if (pf[1].revents)
			return false;
	}
}

/* --out FILE, opened for appending; 0 or EXIT_RUNTIME (printed). */
static int open_out(const struct setup *st, struct app *a)
{
	if (!st->out_path)
		return 0;
	a->out = fopen(st->out_path, "ab");
	if (a->out)
		return 0;
	fprintf(stderr, "%s: cannot open %s: %s\n", PROG, st->out_path,
		strerror(errno));
	return EXIT_RUNTIME;
}

/* The open-file limit, the --count eventfd and the signalfd (*sfd); 0 or
 * EXIT_RUNTIME (printed). */
static int setup_process(struct app *a, int *sfd)
{
	/* Each connection is a socket: raise the open-file limit (no
	 * minimum: connections past it are refused and counted). */
	tool_nofile(PROG, 0, "");
	a->done_fd = eventfd(0, EFD_CLOEXEC);
	*sfd = tool_signal_fd();
	if (a->done_fd >= 0 && *sfd >= 0)
		return 0;
	fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
	return EXIT_RUNTIME;
}

/* --metrics: serve them and print "metrics on ADDR:PORT"; *mh stays NULL
 * without the option. 0 or EXIT_RUNTIME (printed). */
static int start_metrics(const struct setup *st, struct app *a,
			 struct mllp_receiver *r, struct tool_metrics_http **mh)
{
	*mh = NULL;
	if (!st->metrics)
		return 0;
	char err[400];
	a->recv = r;
	*mh = tool_metrics_http_start(st->metrics, render_metrics, a, err,
				      sizeof(err));
	if (!*mh) {
		fprintf(stderr, "%s: %s\n", PROG, err);
		return EXIT_RUNTIME;
	}
	printf("metrics on %s\n", tool_metrics_http_address(*mh));
	fflush(stdout);
	return 0;
}

/* Serve until a signal or --count, stop, and print the statistics (with
 * --stats, or after a signal). */
static void serve(struct setup *st, struct mllp_receiver *r,
		  struct tool_metrics_http *mh, int sfd)
{
	bool by_signal = wait_for_end(sfd, &st->a);
	tool_metrics_http_stop(mh);
	mllp_receiver_stop(r);
	if (st->stats || by_signal)
		print_stats(r);
}

int main(int argc, char **argv)
{
	static struct setup st;
	struct app *a = &st.a;
	int sfd = -1;
	parse_args(argc, argv, &st);
	int code = open_out(&st, a);
	if (code == 0)
		code = setup_process(a, &sfd);
	if (code != 0)
		return code;
	struct mllp_receiver *r = start(&st);
	if (!r)
		return EXIT_RUNTIME;
	struct tool_metrics_http *mh;
	code = start_metrics(&st, a, r, &mh);
	if (code == 0)
		serve(&st, r, mh, sfd);
	mllp_receiver_destroy(r);
	if (code != 0)
		return code;
	recv_opts_free(&st.ro);
	if (a->out)
		fclose(a->out);
	close(sfd);
	close(a->done_fd);
	return 0;
}

/* mllp-recv: an MLLP receiver on the command line (issue 4).
 *
 * Public library API only (mllp_receiver_*), plus the tools' shared
 * argument helpers. The first line on stdout is "listening on ADDR:PORT"
 * so scripts can read the port; SIGINT/SIGTERM stop it gracefully and
 * print the counters. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "common.h"

#define PROG "mllp-recv"

enum { EXIT_RUNTIME = 1 };

static const char usage_text[] =
    "usage: mllp-recv [OPTIONS] [PORT]\n"
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
    "  --allow ADDR|CIDR|HOST  admit only these clients (repeatable; host\n"
    "                        names resolved at start)\n"
    "  --backend B           auto|io_uring|epoll (default auto)\n"
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
    "  --out FILE            append each received message, framed\n"
    "  --quiet               log errors only (no warnings) on stderr\n"
    "  --stats               print the counters on exit (always printed\n"
    "                        after SIGINT/SIGTERM)\n"
    "  --help                this text\n"
    "\n"
    "Exit status: 0 after --count messages or SIGINT/SIGTERM, 1 when the\n"
    "receiver cannot start (e.g. port in use) or --out cannot be opened,\n"
    "64 for bad options (one line on stderr saying why).\n";

struct app {
	struct mllp_ack_dispatcher ack;
	bool echo;
	uint32_t delay_ms;
	FILE *out;
	uint64_t count;
	_Atomic uint64_t replied;
	int done_fd; /* eventfd: --count reached */
	bool quiet;
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
	}
}

static void telemetry(void *ctx, const struct mllp_recv_event *ev)
{
	struct app *a = ctx;
	if (ev->kind != MLLP_RECV_EV_REPLY_SENT || a->count == 0)
		return;
	uint64_t before = atomic_fetch_add_explicit(&a->replied, ev->replies,
						    memory_order_relaxed);
	if (before < a->count && before + ev->replies >= a->count) {
		uint64_t one = 1;
		if (write(a->done_fd, &one, sizeof(one)) < 0)
			abort();
	}
}

static void log_line(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	fprintf(stderr, "%s: [%s] %s\n", PROG, mllp_log_level_name(l), line);
}

static void print_stats(const struct mllp_receiver *r)
{
	struct mllp_receiver_stats s;
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
	       "frames_too_big=%" PRIu64 "\n",
	       s.messages_received, s.messages_hl7, s.replies_sent,
	       s.connections_accepted, s.connections_refused,
	       s.connections_idle_timeout, s.connections_error,
	       s.bytes_received, s.bytes_sent, s.junk_bytes, s.frames_too_big);
	fflush(stdout);
}

enum {
	OPT_BIND = 256,
	OPT_ACK,
	OPT_ACK_MIX,
	OPT_SEED,
	OPT_ECHO,
	OPT_DELAY,
	OPT_MAX_FRAME,
	OPT_MAX_CONN,
	OPT_IDLE,
	OPT_ALLOW,
	OPT_COUNT,
	OPT_OUT,
	OPT_QUIET,
	OPT_STATS,
	OPT_BACKEND,
	OPT_TLS,
	OPT_CERT,
	OPT_KEY,
	OPT_CA,
	OPT_CRL,
	OPT_REQUIRE_CERT,
	OPT_ALLOW_CN,
	OPT_HELP,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"bind", required_argument, NULL, OPT_BIND},
	    {"ack", required_argument, NULL, OPT_ACK},
	    {"ack-mix", required_argument, NULL, OPT_ACK_MIX},
	    {"seed", required_argument, NULL, OPT_SEED},
	    {"echo", no_argument, NULL, OPT_ECHO},
	    {"delay", required_argument, NULL, OPT_DELAY},
	    {"max-frame", required_argument, NULL, OPT_MAX_FRAME},
	    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
	    {"idle-timeout", required_argument, NULL, OPT_IDLE},
	    {"allow", required_argument, NULL, OPT_ALLOW},
	    {"count", required_argument, NULL, OPT_COUNT},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"quiet", no_argument, NULL, OPT_QUIET},
	    {"stats", no_argument, NULL, OPT_STATS},
	    {"backend", required_argument, NULL, OPT_BACKEND},
	    {"tls", no_argument, NULL, OPT_TLS},
	    {"cert", required_argument, NULL, OPT_CERT},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"crl", required_argument, NULL, OPT_CRL},
	    {"require-client-cert", no_argument, NULL, OPT_REQUIRE_CERT},
	    {"allow-cn", required_argument, NULL, OPT_ALLOW_CN},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	static struct app a;
	mllp_ack_dispatcher_init(&a.ack);
	struct mllp_receiver_config cfg;
	mllp_receiver_config_init(&cfg);
	const char *out_path = NULL;
	const char **allow = NULL;
	size_t nallow = 0;
	static struct mllp_tls_server_config tls;
	mllp_tls_server_config_init(&tls);
	const char **cns = NULL;
	size_t ncns = 0;
	bool stats = false, have_ack = false, have_mix = false;

	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case OPT_BIND:
			cfg.address = optarg;
			break;
		case OPT_ACK: {
			static const char *codes[] = {"AA", "AE", "AR",
						      "CA", "CE", "CR"};
			bool ok = false;
			for (int i = 0; i < 6; i++)
				ok |= strcmp(optarg, codes[i]) == 0;
			if (!ok)
				tool_usage(PROG,
					   "--ack: %s is not one of "
					   "AA|AE|AR|CA|CE|CR",
					   optarg);
			a.ack.code = optarg;
			have_ack = true;
			break;
		}
		case OPT_ACK_MIX:
			if (mllp_ack_dispatcher_set_mix(&a.ack, optarg) != 0)
				tool_usage(PROG,
					   "--ack-mix: bad mix '%s' (want e.g. "
					   "AA=98,AE=1,AR=1)",
					   optarg);
			have_mix = true;
			break;
		case OPT_SEED:
			a.ack.seed = tool_arg_u64(PROG, optarg, 0, UINT64_MAX,
						  "--seed wants a number");
			break;
		case OPT_ECHO:
			a.echo = true;
			break;
		case OPT_DELAY:
			a.delay_ms = (uint32_t)tool_arg_u64(
			    PROG, optarg, 0, 3600000,
			    "--delay wants milliseconds 0..3600000");
			break;
		case OPT_MAX_FRAME:
			cfg.max_frame = (size_t)tool_arg_u64(
			    PROG, optarg, 1, SIZE_MAX,
			    "--max-frame wants a size in bytes >= 1");
			break;
		case OPT_MAX_CONN:
			cfg.max_connections = (uint32_t)tool_arg_u64(
			    PROG, optarg, 1, UINT32_MAX,
			    "--max-connections wants a number >= 1");
			break;
		case OPT_IDLE:
			cfg.idle_timeout_ms =
			    (uint32_t)tool_arg_u64(
				PROG, optarg, 0, UINT32_MAX / 1000,
				"--idle-timeout wants seconds") *
			    1000u;
			break;
		case OPT_ALLOW: {
			const char **n =
			    realloc(allow, (nallow + 1) * sizeof(*allow));
			if (!n) {
				fprintf(stderr, "%s: out of memory\n", PROG);
				return EXIT_RUNTIME;
			}
			allow = n;
			allow[nallow++] = optarg;
			break;
		}
		case OPT_COUNT:
			a.count = tool_arg_u64(PROG, optarg, 1, UINT64_MAX,
					       "--count wants N >= 1");
			break;
		case OPT_OUT:
			out_path = optarg;
			break;
		case OPT_QUIET:
			a.quiet = true;
			break;
		case OPT_STATS:
			stats = true;
			break;
		case OPT_BACKEND:
			if (strcmp(optarg, "auto") == 0)
				cfg.backend = MLLP_BACKEND_AUTO;
			else if (strcmp(optarg, "io_uring") == 0)
				cfg.backend = MLLP_BACKEND_IO_URING;
			else if (strcmp(optarg, "epoll") == 0)
				cfg.backend = MLLP_BACKEND_EPOLL;
			else
				tool_usage(PROG,
					   "--backend: %s is not one of "
					   "auto|io_uring|epoll",
					   optarg);
			break;
		case OPT_TLS:
			tls.enabled = true;
			break;
		case OPT_CERT:
			tls.cert_file = optarg;
			break;
		case OPT_KEY:
			tls.key_file = optarg;
			break;
		case OPT_CA:
			tls.client_ca_file = optarg;
			break;
		case OPT_CRL:
			tls.crl_file = optarg;
			break;
		case OPT_REQUIRE_CERT:
			tls.require_client_cert = true;
			break;
		case OPT_ALLOW_CN: {
			const char **n =
			    realloc(cns, (ncns + 1) * sizeof(*cns));
			if (!n) {
				fprintf(stderr, "%s: out of memory\n", PROG);
				return EXIT_RUNTIME;
			}
			cns = n;
			cns[ncns++] = optarg;
			break;
		}
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		default:
			if (optopt)
				tool_usage(PROG, "option %s needs a value",
					   argv[optind - 1]);
			tool_usage(PROG, "unknown option %s", argv[optind - 1]);
		}
	}
	uint16_t port = 2575;
	if (optind < argc) {
		if (tool_parse_port(argv[optind], true, &port) != 0)
			tool_usage(PROG, "bad port '%s'", argv[optind]);
		optind++;
	}
	if (optind < argc)
		tool_usage(PROG, "unexpected argument '%s'", argv[optind]);
	if (a.echo && (have_ack || have_mix))
		tool_usage(PROG, "--echo cannot be combined with --ack or "
				 "--ack-mix");
	if (have_ack && have_mix)
		tool_usage(PROG, "--ack and --ack-mix exclude each other");
	a.ack.delay_ms = a.delay_ms;
	bool tls_opts = tls.cert_file || tls.key_file || tls.client_ca_file ||
			tls.crl_file || tls.require_client_cert || ncns;
	if (tls_opts && !tls.enabled)
		tool_usage(PROG,
			   "--cert/--key/--ca/--crl/--require-client-cert/"
			   "--allow-cn need --tls");
	if (tls.enabled && (!tls.cert_file || !tls.key_file))
		tool_usage(PROG, "--tls needs --cert and --key");
	if (tls.require_client_cert && !tls.client_ca_file)
		tool_usage(PROG, "--require-client-cert needs --ca");
	if (ncns && !tls.require_client_cert)
		tool_usage(PROG, "--allow-cn needs --require-client-cert");
	tls.allowed_clients = cns;
	tls.n_allowed_clients = ncns;

	if (out_path) {
		a.out = fopen(out_path, "ab");
		if (!a.out) {
			fprintf(stderr, "%s: cannot open %s: %s\n", PROG,
				out_path, strerror(errno));
			return EXIT_RUNTIME;
		}
	}
	a.done_fd = eventfd(0, EFD_CLOEXEC);
	/* Signals go to a signalfd: block them before the receiver's thread
	 * starts, so it inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (a.done_fd < 0 || sfd < 0) {
		fprintf(stderr, "%s: %s\n", PROG, strerror(errno));
		return EXIT_RUNTIME;
	}

	cfg.port = port;
	cfg.dispatch = dispatch;
	cfg.dispatch_ctx = &a;
	cfg.allowed_clients = allow;
	cfg.allowed_clients_count = nallow;
	cfg.tls = tls.enabled ? &tls : NULL;
	cfg.telemetry = telemetry;
	cfg.telemetry_ctx = &a;
	cfg.log = log_line;
	cfg.log_level = a.quiet ? MLLP_LOG_ERROR : MLLP_LOG_WARNING;
	struct mllp_receiver *r = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_start(&cfg, &r, &err);
	free(allow);
	free(cns);
	if (rc != 0) {
		fprintf(stderr, "%s: %s\n", PROG, err.message);
		return EXIT_RUNTIME;
	}
	const char *addr = mllp_receiver_address(r);
	if (strchr(addr, ':'))
		printf("listening on [%s]:%u\n", addr, mllp_receiver_port(r));
	else
		printf("listening on %s:%u\n", addr, mllp_receiver_port(r));
	fflush(stdout);

	struct pollfd pf[2] = {{.fd = sfd, .events = POLLIN},
			       {.fd = a.done_fd, .events = POLLIN}};
	bool by_signal = false;
	for (;;) {
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pf[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) > 0 && !a.quiet)
				fprintf(stderr, "%s: %s, stopping\n", PROG,
					strsignal((int)si.ssi_signo));
			by_signal = true;
			break;
		}
		if (pf[1].revents)
			break;
	}
	mllp_receiver_stop(r);
	if (stats || by_signal)
		print_stats(r);
	mllp_receiver_destroy(r);
	if (a.out)
		fclose(a.out);
	close(sfd);
	close(a.done_fd);
	return 0;
}

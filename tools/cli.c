/* Shared helpers of the tools: usage errors, option values, --version,
 * log hooks, the open-file limit, the signalfd, the client options (see
 * common.h). */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

#include <mllp/version.h>

void tool_usage(const char *prog, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see --help)\n");
	exit(TOOL_EXIT_USAGE);
}

int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

uint64_t tool_arg_u64(const char *prog, const char *arg, uint64_t min,
		      uint64_t max, const char *what)
{
	uint64_t v;
	if (tool_parse_u64(arg, min, max, &v) != 0)
		tool_usage(prog, "%s, got '%s'", what, arg);
	return v;
}

void tool_option_error(const char *prog, const char *usage_line, int c,
		       char *const *argv)
{
	/* A long option is reported as typed (without "=value"); a short
	 * one by its letter (optopt), since it may sit inside a group. */
	const char *typed = optind > 0 ? argv[optind - 1] : "";
	int len = 0;
	bool is_long = strncmp(typed, "--", 2) == 0;
	if (is_long)
		len = (int)strcspn(typed, "=");
	if (c == ':' && is_long)
		fprintf(stderr, "%s: option %.*s needs a value\n", prog, len,
			typed);
	else if (c == ':')
		fprintf(stderr, "%s: option -%c needs a value\n", prog, optopt);
	else if (optopt && is_long && typed[len] == '=')
		fprintf(stderr, "%s: option %.*s takes no value\n", prog, len,
			typed);
	else if (optopt)
		fprintf(stderr, "%s: unknown option -%c\n", prog, optopt);
	else
		fprintf(stderr, "%s: unknown option %.*s\n", prog,
			is_long ? len : (int)strlen(typed), typed);
	fprintf(stderr, "%s\n", usage_line);
	exit(TOOL_EXIT_USAGE);
}

uint16_t tool_arg_port(const char *prog, const char *arg, bool allow_zero)
{
	uint64_t v;
	if (tool_parse_u64(arg, allow_zero ? 0 : 1, 65535, &v) != 0)
		tool_usage(prog, "PORT wants %s..65535, got '%s'",
			   allow_zero ? "0" : "1", arg);
	return (uint16_t)v;
}

void tool_version(const char *prog)
{
	/* What the linked library says, not the headers this tool was
	 * compiled against. */
	const struct mllp_build_info *bi = mllp_build_info();
	printf("%s (libmllp) %s\n", prog, bi->version);
	if (strcmp(bi->version, MLLP_VERSION_STRING) != 0)
		printf("built with the headers of libmllp %s\n",
		       MLLP_VERSION_STRING);
	/* "io_uring, epoll": io_uring gets its liburing version. */
	printf("I/O backends: ");
	for (const char *b = bi->backends; *b;) {
		size_t n = strcspn(b, ",");
		printf("%.*s", (int)n, b);
		if (n == 8 && strncmp(b, "io_uring", n) == 0)
			printf(" (liburing %s)", bi->liburing_version);
		b += n;
		if (*b == ',') {
			printf(", ");
			b += strspn(b, ", ");
		}
	}
	if (bi->wolfssl_version)
		printf("\nTLS: wolfSSL %s\n", bi->wolfssl_version);
	else
		printf("\nTLS: without TLS\n");
	if (bi->allocator_version)
		printf("Allocator: %s %s\n", bi->allocator,
		       bi->allocator_version);
	else
		printf("Allocator: %s\n", bi->allocator);
	exit(TOOL_EXIT_OK);
}

bool tool_nofile(const char *prog, uint64_t need, const char *what)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return true; /* nothing known: let the run say what fails */
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return true;
	fprintf(stderr,
		"%s: %s needs about %llu open files, the limit is %llu (hard "
		"limit %llu): raise it (ulimit -n) or use fewer connections\n",
		prog, what, (unsigned long long)need,
		(unsigned long long)rl.rlim_cur,
		(unsigned long long)rl.rlim_max);
	return false;
}

int tool_signal_fd(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC);
}

void tool_log(void *ctx, enum mllp_log_level level, const char *line)
{
	fprintf(stderr, "%s: %s: %s\n", (const char *)ctx,
		mllp_log_level_name(level), line);
}

enum mllp_backend_kind tool_arg_backend(const char *prog, const char *arg)
{
	if (strcmp(arg, "auto") == 0)
		return MLLP_BACKEND_AUTO;
	if (strcmp(arg, "io_uring") == 0)
		return MLLP_BACKEND_IO_URING;
	if (strcmp(arg, "epoll") == 0)
		return MLLP_BACKEND_EPOLL;
	tool_usage(prog, "--backend wants auto, io_uring or epoll, got '%s'",
		   arg);
}

#define TOOL_LOG_LINES 5

static _Atomic uint64_t log_lines;

void tool_log_limited(void *ctx, enum mllp_log_level level, const char *line)
{
	if (level > MLLP_LOG_WARNING)
		return;
	if (atomic_fetch_add_explicit(&log_lines, 1, memory_order_relaxed) <
	    TOOL_LOG_LINES)
		tool_log(ctx, level, line);
}

uint64_t tool_log_suppressed(void)
{
	uint64_t n = atomic_load_explicit(&log_lines, memory_order_relaxed);
	return n > TOOL_LOG_LINES ? n - TOOL_LOG_LINES : 0;
}

void tool_client_init(struct tool_client_opts *c, int64_t timeout_ms)
{
	memset(c, 0, sizeof(*c));
	mllp_tls_client_config_init(&c->tls);
	c->timeout_ms = timeout_ms;
}

bool tool_tls_option(int ch, const char *arg, struct mllp_tls_client_config *t)
{
	switch (ch) {
	case TOOL_OPT_TLS:
		t->enabled = true;
		return true;
	case TOOL_OPT_CA:
		t->ca_file = arg;
		return true;
	case TOOL_OPT_CERT:
		t->cert_file = arg;
		return true;
	case TOOL_OPT_KEY:
		t->key_file = arg;
		return true;
	case TOOL_OPT_CRL:
		t->crl_file = arg;
		return true;
	case TOOL_OPT_SERVER_NAME:
		t->server_name = arg;
		return true;
	case TOOL_OPT_INSECURE:
		t->verify = MLLP_TLS_VERIFY_NONE;
		return true;
	default:
		return false;
	}
}

void tool_client_option(const char *prog, const char *usage_line, int c,
			const char *arg, char *const *argv,
			struct tool_client_opts *cl)
{
	switch (c) {
	case 't':
		cl->timeout_ms = (int64_t)tool_arg_u64(
		    prog, arg, 1, 86400000,
		    "--timeout wants milliseconds 1..86400000");
		return;
	case TOOL_OPT_SEND_TIMEOUT:
		cl->send_timeout_ms = (int64_t)tool_arg_u64(
		    prog, arg, 1, 86400000,
		    "--send-timeout wants milliseconds 1..86400000");
		return;
	case TOOL_OPT_BACKEND:
		cl->backend = tool_arg_backend(prog, arg);
		return;
	case TOOL_OPT_MLLP2:
		cl->mllp_release = 2;
		return;
	case TOOL_OPT_WINDOW:
		cl->window = strcmp(arg, "auto") == 0
				 ? MLLP_INFLIGHT_AUTO
				 : (uint32_t)tool_arg_u64(
				       prog, arg, 1, MLLP_INFLIGHT_MAX,
				       "--window wants 1..1024 or auto");
		return;
	case TOOL_OPT_VERSION:
		tool_version(prog);
	default:
		break;
	}
	if (c != ':' && c != '?' && tool_tls_option(c, arg, &cl->tls))
		return;
	tool_option_error(prog, usage_line, c, argv);
}

void tool_client_pool_config(const struct tool_client_opts *cl,
			     struct mllp_pool_config *cfg)
{
	cfg->conn.reply_timeout_ms = cl->timeout_ms;
	if (cl->send_timeout_ms)
		cfg->conn.send_timeout_ms = cl->send_timeout_ms;
	cfg->backend = cl->backend;
	cfg->conn.tls = &cl->tls; /* read by add_endpoint; off unless --tls */
	if (cl->mllp_release)
		cfg->conn.mllp_release = cl->mllp_release;
	if (cl->window)
		cfg->conn.max_inflight = cl->window;
}

void tool_tls_built(const char *prog, bool enabled)
{
	if (enabled && !mllp_tls_available())
		tool_usage(prog, "--tls: %s (configure with -DMLLP_TLS=ON)",
			   mllp_strerror(MLLP_ERR_NO_TLS));
}

void tool_tls_check(const char *prog, struct mllp_tls_client_config *t)
{
	tool_tls_built(prog, t->enabled);
	bool any = t->ca_file || t->cert_file || t->key_file || t->crl_file ||
		   t->server_name || t->verify == MLLP_TLS_VERIFY_NONE;
	if (any && !t->enabled)
		tool_usage(prog, "--ca/--cert/--key/--crl/--server-name/"
				 "--insecure need --tls");
	if (!t->cert_file != !t->key_file)
		tool_usage(prog, "--cert and --key go together");
	if (t->verify == MLLP_TLS_VERIFY_NONE && (t->ca_file || t->crl_file))
		tool_usage(prog, "--insecure excludes --ca and --crl");
	if (t->enabled && t->verify == MLLP_TLS_VERIFY_PEER && !t->ca_file)
		t->use_system_cas = true;
}

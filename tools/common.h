/* Shared helpers of the tools: exit codes, argument parsing, --version,
 * log hooks, the open-file limit (cli.c); input reading and message
 * splitting, JSON strings, a log-linear latency histogram and clocks
 * (common.c). Public library API only. */
#ifndef MLLP_TOOLS_COMMON_H
#define MLLP_TOOLS_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mllp/pool.h>

/* Exit codes shared by the tools (sysexits for usage and input). */
enum {
	TOOL_EXIT_OK = 0,   /* every message accepted */
	TOOL_EXIT_APP = 1,  /* some AE/AR/CE/CR */
	TOOL_EXIT_FAIL = 2, /* transport, timeout, invalid ACK, wrong id */
	TOOL_EXIT_KEY = 3,  /* mllp-send --key-field: a key's messages unsent */
	TOOL_EXIT_USAGE = 64,	/* bad usage */
	TOOL_EXIT_DATAERR = 65, /* no message, or not HL7, in the input */
	TOOL_EXIT_NOINPUT = 66, /* an input file cannot be read */
	TOOL_EXIT_SIGNAL = 128	/* + the signal that cut the run short */
};

/* Print "prog: <reason> (see --help)" on stderr and exit 64. */
_Noreturn void tool_usage(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A getopt_long error, with opterr = 0 and an optstring starting with ':'
 * (c is what getopt_long returned: ':' or '?'). Prints "prog: option -x
 * needs a value" (a known option lacking its value) or "prog: unknown
 * option --foo", then usage_line, on stderr and exits 64. */
_Noreturn void tool_option_error(const char *prog, const char *usage_line,
				 int c, char *const *argv);

/* The PORT argument: a number in 1..65535 (0..65535 when allow_zero), else
 * exits 64 with "prog: PORT wants 1..65535, got '<arg>'". */
uint16_t tool_arg_port(const char *prog, const char *arg, bool allow_zero);

/* --version: print the tool's name and, as the linked library reports
 * them (mllp_build_info), its version, the I/O backends with the liburing
 * version, the TLS library's version and the default allocator, on
 * stdout, and exit 0. */
_Noreturn void tool_version(const char *prog);

/* Raise the soft open-file limit to the hard limit. Then, when fewer
 * than `need` descriptors are allowed, print "prog: <what> needs about
 * <need> open files, the limit is <n> (...)" on stderr and return false. */
bool tool_nofile(const char *prog, uint64_t need, const char *what);

/* Block SIGINT and SIGTERM and return a signalfd (close-on-exec) that
 * reads them, or -1 (errno set); SIGPIPE is ignored. Call it before any
 * thread starts, so every thread inherits the mask. */
int tool_signal_fd(void);

/* A pool/receiver log hook printing "<ctx>: <level>: <line>" on stderr; ctx
 * is the program name. Lines above the hook's log_level never reach it. */
void tool_log(void *ctx, enum mllp_log_level level, const char *line);

/* Parse an unsigned decimal integer in [min, max]; the whole string must be
 * the number. Returns 0 or -1. */
int tool_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* An option value that must be a decimal integer in [min, max]: returns
 * it, or exits 64 with "prog: <what>, got '<arg>'". */
uint64_t tool_arg_u64(const char *prog, const char *arg, uint64_t min,
		      uint64_t max, const char *what);

/* The --backend value: "auto", "io_uring" or "epoll", else exits 64 with
 * "prog: --backend wants auto, io_uring or epoll, got '<arg>'". */
enum mllp_backend_kind tool_arg_backend(const char *prog, const char *arg);

/* A pool/receiver log hook like tool_log for the first 5 lines at
 * MLLP_LOG_WARNING or above, then only counting them
 * (tool_log_suppressed). ctx is the program name. */
void tool_log_limited(void *ctx, enum mllp_log_level level, const char *line);
uint64_t tool_log_suppressed(void);

/* Options shared by mllp-send and mllp-load (--timeout, --send-timeout,
 * --backend, TLS, --mllp2, --version): put TOOL_CLIENT_LONGOPTS in the
 * getopt_long table (needs <getopt.h>) and 't:' in the optstring, hand every
 * option code the tool does not handle itself to tool_client_option(), and call
 * tool_tls_check() after parsing. TOOL_TLS_USAGE is the TLS help text. */
enum {
	TOOL_OPT_TLS = 0x1000,
	TOOL_OPT_CA,
	TOOL_OPT_CERT,
	TOOL_OPT_KEY,
	TOOL_OPT_CRL,
	TOOL_OPT_SERVER_NAME,
	TOOL_OPT_INSECURE,
	TOOL_OPT_BACKEND,
	TOOL_OPT_SEND_TIMEOUT,
	TOOL_OPT_VERSION,
	TOOL_OPT_MLLP2,
	TOOL_OPT_WINDOW,
	TOOL_OPT_END_ /* a tool's own option codes start at 0x2000 */
};
_Static_assert(TOOL_OPT_END_ <= 0x2000, "shared option codes overlap 0x2000");
/* clang-format off */
#define TOOL_CLIENT_LONGOPTS                                                      \
	{"timeout", required_argument, NULL, 't'},                             \
	{"send-timeout", required_argument, NULL, TOOL_OPT_SEND_TIMEOUT},      \
	{"version", no_argument, NULL, TOOL_OPT_VERSION},                      \
	{"tls", no_argument, NULL, TOOL_OPT_TLS},                              \
	{"ca", required_argument, NULL, TOOL_OPT_CA},                          \
	{"cert", required_argument, NULL, TOOL_OPT_CERT},                      \
	{"key", required_argument, NULL, TOOL_OPT_KEY},                        \
	{"crl", required_argument, NULL, TOOL_OPT_CRL},                        \
	{"server-name", required_argument, NULL, TOOL_OPT_SERVER_NAME},        \
	{"insecure", no_argument, NULL, TOOL_OPT_INSECURE},                    \
	{"backend", required_argument, NULL, TOOL_OPT_BACKEND},                \
	{"mllp2", no_argument, NULL, TOOL_OPT_MLLP2},                          \
	{"window", required_argument, NULL, TOOL_OPT_WINDOW}
/* clang-format on */
#define TOOL_TLS_USAGE                                                         \
	"TLS:\n"                                                               \
	"      --tls            connect with TLS (verifies the server: --ca, " \
	"else the\n"                                                           \
	"                       system CAs)\n"                                 \
	"      --ca FILE        CA certificates (PEM) to verify the server\n"  \
	"      --cert FILE      client certificate (PEM) for mutual TLS\n"     \
	"      --key FILE       its private key (PEM)\n"                       \
	"      --crl FILE       CRL (PEM) checked against the server\n"        \
	"      --server-name N  name to verify and send as SNI (default "      \
	"HOST)\n"                                                              \
	"      --insecure       do not verify the server (warned; still "      \
	"encrypted)\n"

/* --mllp2 in the help of mllp-send and mllp-load. */
#define TOOL_MLLP2_USAGE                                                       \
	"      --mllp2          MLLP release 2: each message is done at its "  \
	"commit ACK\n"                                                         \
	"                       (0x06); a NAK or no commit ACK in time sends " \
	"it again,\n"                                                          \
	"                       twice at most\n"

/* --window in the help of mllp-send and mllp-load. */
#define TOOL_WINDOW_USAGE                                                      \
	"      --window N|auto  pipelining: up to N (1..1024) messages in "    \
	"flight per\n"                                                         \
	"                       connection, replies matched by MSA-2; auto: "  \
	"probe the\n"                                                          \
	"                       receiver with two messages first (default 1; " \
	"only for\n"                                                           \
	"                       receivers known to read frames one by one)\n"

/* Apply option ch (arg: its value); false when ch is not a TLS option. */
bool tool_tls_option(int ch, const char *arg, struct mllp_tls_client_config *t);
/* What the shared client options set. */
struct tool_client_opts {
	int64_t timeout_ms;
	int64_t send_timeout_ms; /* 0: the library's default */
	enum mllp_backend_kind backend;
	struct mllp_tls_client_config tls;
	uint32_t mllp_release; /* --mllp2: 2; else 0 (the default, 1) */
	/* --window: max_inflight (MLLP_INFLIGHT_AUTO for auto); 0: not
	 * given (1) */
	uint32_t window;
};

/* Messages one connection carries at once with --window w (the auto
 * window for auto). */
static inline uint32_t tool_window_size(uint32_t w)
{
	if (w == MLLP_INFLIGHT_AUTO)
		return MLLP_INFLIGHT_AUTO_WINDOW;
	return w ? w : 1;
}

/* Zero c, set the TLS defaults and the reply timeout timeout_ms. */
void tool_client_init(struct tool_client_opts *c, int64_t timeout_ms);
/* The getopt_long cases mllp-send and mllp-load share: --timeout,
 * --send-timeout, --backend, the TLS options (into *cl), --version, and
 * the errors (':' and '?', see tool_option_error). Call it from the
 * switch's default case with the option code c and optarg; it returns
 * only for an option it applied, else exits (0 for --version, 64). */
void tool_client_option(const char *prog, const char *usage_line, int c,
			const char *arg, char *const *argv,
			struct tool_client_opts *cl);
/* Set cfg's reply and send timeouts, backend and TLS from cl (cfg keeps a
 * pointer to cl->tls: cl outlives the endpoints added with cfg). */
void tool_client_pool_config(const struct tool_client_opts *cl,
			     struct mllp_pool_config *cfg);
/* Refuse contradictions (exit 64 via tool_usage); with --tls and no --ca,
 * use the system CAs. */
void tool_tls_check(const char *prog, struct mllp_tls_client_config *t);

/* In a build without TLS, refuse --tls (exit 64 via tool_usage). */
void tool_tls_built(const char *prog, bool enabled);

/* A growable byte buffer owned by its holder. */
struct tool_buf {
	unsigned char *data;
	size_t len;
	size_t cap;
};

/* Append the whole content of path ("-" = stdin) to buf. Returns 0 or
 * -errno (the file could not be opened or read). */
int tool_read_file(const char *path, struct tool_buf *buf);

void tool_buf_free(struct tool_buf *buf);

/* One message: a view into a buffer owned by the caller. */
struct tool_msg {
	unsigned char *data;
	size_t len;
	bool batch; /* FHS/BHS batch: sent as one message */
};

struct tool_msgs {
	struct tool_msg *v;
	size_t n;
	size_t cap;
};

/* Split data[0..len) into messages, appended to out; views point into data,
 * which may be rewritten in place (segment ends), so the caller keeps data
 * alive and unchanged while the views are used. data[len] must be writable
 * (one spare byte: a last segment without end gets its CR); tool_read_file
 * always leaves such room.
 *  - data containing SB (0x0B): each MLLP frame's payload is one message,
 *    untouched; bytes outside frames are dropped (counted in *junk); an
 *    unterminated last frame is kept as a message.
 *  - otherwise: text split at each segment starting "MSH"; a text holding
 *    an FHS or BHS segment is one (batch) message. Unless keep_bytes, LF
 *    and CRLF segment ends become CR and empty lines are dropped.
 * Returns 0 or -ENOMEM. */
int tool_split(unsigned char *data, size_t len, bool keep_bytes,
	       struct tool_msgs *out, size_t *junk);

void tool_msgs_free(struct tool_msgs *m);

/* Write s[0..len) as a JSON string (quoted, escaped; invalid UTF-8 bytes
 * become \u00XX as if ISO-8859-1). */
void tool_json_str(FILE *f, const void *s, size_t len);

/* Monotonic and wall clocks. */
uint64_t tool_now_ns(void);

/* A log-linear histogram of microsecond values: exact below 128, then 64
 * sub-buckets per power of two (about 1.6 % resolution). Counters are
 * atomic (relaxed): any thread may record; readers take snapshots, whose
 * count is the sum of their buckets (so a record is one increment). No
 * per-value storage. */
#define TOOL_HIST_SUB	  64
#define TOOL_HIST_BUCKETS (TOOL_HIST_SUB * 60 + 2 * TOOL_HIST_SUB)

struct tool_hist {
	_Atomic uint64_t b[TOOL_HIST_BUCKETS];
	_Atomic uint64_t max;
};

/* A plain copy of a histogram, for percentiles and interval differences. */
struct tool_hist_snap {
	uint64_t b[TOOL_HIST_BUCKETS];
	uint64_t count;
	uint64_t max;
};

void tool_hist_record(struct tool_hist *h, uint64_t v);
void tool_hist_snapshot(const struct tool_hist *h, struct tool_hist_snap *out);
/* out = a - b (bucket by bucket; max is a's). */
void tool_hist_diff(const struct tool_hist_snap *a,
		    const struct tool_hist_snap *b, struct tool_hist_snap *out);
/* The value at quantile q (0..1): the upper bound of the bucket holding
 * it, capped at the maximum seen. 0 for an empty histogram. */
uint64_t tool_hist_quantile(const struct tool_hist_snap *s, double q);
/* The highest value bucket idx (< TOOL_HIST_BUCKETS) holds; the lowest is
 * the previous bucket's plus one (0 for bucket 0). */
uint64_t tool_hist_bucket_upper(size_t idx);

#endif

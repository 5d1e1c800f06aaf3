/* mllp-load: drive an MLLP receiver through the pool and report.
 *
 *   mllp-load [OPTIONS] [HOST PORT]
 *
 * Without HOST PORT it starts the library's receiver in-process on an
 * ephemeral loopback port (the embedded receiver) and loads that.
 *
 * Closed loop (default): every connection keeps one message in flight; a
 * completion callback (on the pool's manager thread) records the result
 * and sends the connection's next message at once, from a per-slot buffer
 * lent to the pool (no copy). Latency is the library's, from the first
 * byte written to the reply.
 * Open loop (--rate): the main thread sends message i at its intended time
 * t0 + i / rate (or on the ramp), whatever the replies do; latency is
 * measured from the intended time (corrected for coordinated omission).
 *
 * Every message is accounted for: sent == accepted + app_errors +
 * app_rejects + failed, checked at the end. Public library API only. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#if __has_include(<mllp/receiver.h>)
#include <mllp/receiver.h>
#define LOAD_HAVE_RECEIVER 1
#else
#define LOAD_HAVE_RECEIVER 0
#endif

#include "common.h"

static const char *prog = "mllp-load";

#define ID_DIGITS     12 /* MSH-10 of sent messages: "L" + 12 digits */
#define ID_LEN	      (1 + ID_DIGITS)
#define TS_LEN	      14 /* MSH-7: YYYYMMDDHHMMSS */
#define MAX_TEMPLATES 256
#define ERR_SLOTS     256

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
	const char *json; /* NULL, "-" or a path */
	int progress;	  /* -1: auto (stderr is a tty) */
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

static struct {
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
	_Atomic uint64_t tickets;
	_Atomic bool kick_pending;
	_Atomic bool issued_all; /* count mode: every ticket is taken */
	/* Counters. */
	_Atomic uint64_t sent, accepted, app_errors, app_rejects, failed;
	_Atomic uint64_t inflight, bytes_acked;
	_Atomic uint64_t errors[ERR_SLOTS];
	struct tool_hist hist;
} L;

/* ---- errors by reason ---------------------------------------------------
 */

enum { ERR_VERDICT0 = 224, ERR_OTHER = ERR_SLOTS - 1 };

static size_t err_index(int code)
{
	if (code <= MLLP_ERR_BASE && code > MLLP_ERR_BASE - 32)
		return (size_t)(MLLP_ERR_BASE - code);
	if (code < 0 && code > -(ERR_VERDICT0 - 32))
		return (size_t)(32 - code);
	return ERR_OTHER;
}

static const char *err_slot_name(size_t i)
{
	if (i < 32)
		return mllp_err_name(MLLP_ERR_BASE - (int)i);
	if (i < ERR_VERDICT0)
		return mllp_err_name(-(int)(i - 32));
	if (i < ERR_OTHER)
		return mllp_verdict_name((enum mllp_verdict)(i - ERR_VERDICT0));
	return "other";
}

static void count_failure(size_t slot)
{
	atomic_fetch_add_explicit(&L.errors[slot], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&L.failed, 1, memory_order_relaxed);
}

/* ---- messages -----------------------------------------------------------
 */

static const char default_template[] =
    "MSH|^~\\&|MLLPLOAD|LOADFAC|RECEIVER|RECVFAC|20240101120000||"
    "ADT^A01^ADT_A01|00000000|P|2.5\r"
    "EVN|A01|20240101120000\r"
    "PID|1||123456^^^HOSP^MR||DOE^JANE^Q||19800101|F|||1 MAIN ST^^"
    "SPRINGFIELD^IL^62701||555-0100\r"
    "PV1|1|I|WARD1^101^A||||1234^SMITH^JOHN|||MED||||||||V000123\r";

static int add_template(const unsigned char *data, size_t len, const char *what)
{
	if (L.ntmpl == MAX_TEMPLATES)
		tool_usage(prog, "more than %d template messages",
			   MAX_TEMPLATES);
	struct mllp_hl7_msg m;
	if (mllp_hl7_parse(&m, data, len) != 0 || !m.control_id.ptr ||
	    !m.timestamp.ptr)
		tool_usage(prog, "%s: not an HL7 message with MSH-7 and MSH-10",
			   what);
	struct tmpl *t = &L.tmpl[L.ntmpl++];
	t->data = data;
	t->len = len;
	t->ts_off = (size_t)((const unsigned char *)m.timestamp.ptr - data);
	t->ts_len = m.timestamp.len;
	t->id_off = (size_t)((const unsigned char *)m.control_id.ptr - data);
	t->id_len = m.control_id.len;
	t->out_len = len - t->ts_len - t->id_len + TS_LEN + ID_LEN;
	if (t->out_len > L.max_len)
		L.max_len = t->out_len;
	return 0;
}

/* A synthetic ORU^R01 of about `size` bytes (one OBX carries the filler). */
static unsigned char *make_oru(size_t size, size_t *len)
{
	static const char head[] =
	    "MSH|^~\\&|MLLPLOAD|LOADFAC|RECEIVER|RECVFAC|20240101120000||"
	    "ORU^R01^ORU_R01|00000000|P|2.5\r"
	    "PID|1||123456^^^HOSP^MR||DOE^JANE||19800101|F\r"
	    "OBR|1|ORD1|FIL1|LOAD^Load test^L|||20240101120000\r"
	    "OBX|1|TX|LOAD^Payload^L||";
	static const char tail[] = "||||||F\r";
	size_t fixed = sizeof(head) - 1 + sizeof(tail) - 1;
	size_t fill = size > fixed ? size - fixed : 1;
	unsigned char *p = malloc(fixed + fill + 1);
	if (!p)
		return NULL;
	memcpy(p, head, sizeof(head) - 1);
	for (size_t i = 0; i < fill; i++)
		p[sizeof(head) - 1 + i] = (unsigned char)('A' + i % 26);
	memcpy(p + sizeof(head) - 1 + fill, tail, sizeof(tail) - 1);
	*len = fixed + fill;
	return p;
}

/* Write message number seq of template t into out (t->out_len bytes). */
static void gen_message(const struct tmpl *t, uint64_t seq, unsigned char *out)
{
	static _Thread_local time_t ts_sec = -1;
	static _Thread_local char ts[TS_LEN + 1];
	time_t now = time(NULL);
	if (now != ts_sec) {
		struct tm tm;
		gmtime_r(&now, &tm);
		char tmp[32];
		snprintf(tmp, sizeof(tmp), "%04d%02d%02d%02d%02d%02d",
			 (tm.tm_year + 1900) % 10000, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
		memcpy(ts, tmp, TS_LEN);
		ts_sec = now;
	}
	unsigned char *w = out;
	memcpy(w, t->data, t->ts_off);
	w += t->ts_off;
	memcpy(w, ts, TS_LEN);
	w += TS_LEN;
	size_t mid = t->ts_off + t->ts_len;
	memcpy(w, t->data + mid, t->id_off - mid);
	w += t->id_off - mid;
	*w = 'L';
	for (int i = ID_DIGITS; i >= 1; i--) {
		w[i] = (unsigned char)('0' + seq % 10);
		seq /= 10;
	}
	w += ID_LEN;
	size_t rest = t->id_off + t->id_len;
	memcpy(w, t->data + rest, t->len - rest);
}

/* ---- results ------------------------------------------------------------
 */

static void wake_main(void)
{
	uint64_t one = 1;
	ssize_t n = write(L.efd, &one, sizeof(one));
	(void)n;
}

/* Record one completed future. */
static void account(const struct mllp_result *r, uint64_t latency_us,
		    size_t len)
{
	if (r->status != 0) {
		count_failure(err_index(r->status));
		return;
	}
	tool_hist_record(&L.hist, latency_us);
	if (!r->has_verdict) {
		count_failure(ERR_OTHER);
		return;
	}
	switch (r->verdict) {
	case MLLP_APPLICATION_ACCEPT:
		atomic_fetch_add_explicit(&L.accepted, 1, memory_order_relaxed);
		break;
	case MLLP_APPLICATION_ERROR:
		atomic_fetch_add_explicit(&L.app_errors, 1,
					  memory_order_relaxed);
		break;
	case MLLP_APPLICATION_REJECT:
		atomic_fetch_add_explicit(&L.app_rejects, 1,
					  memory_order_relaxed);
		break;
	default:
		count_failure(ERR_VERDICT0 + (size_t)r->verdict);
		return;
	}
	atomic_fetch_add_explicit(&L.bytes_acked, len, memory_order_relaxed);
}

static void finish_one(void)
{
	/* seq_cst: pairs with main storing stopping then reading inflight,
	 * so either main sees 0 or this sees stopping and wakes it. */
	if (atomic_fetch_sub(&L.inflight, 1) == 1 &&
	    (atomic_load(&L.stopping) || atomic_load(&L.issued_all)))
		wake_main();
}

/* ---- closed loop ----------------------------------------------------------
 */

static void on_closed_done(struct mllp_future *f, void *arg);

/* Send the slot's next message; runs on the main thread (start, re-kick)
 * or in a completion callback (manager thread), never blocks. */
static void slot_send(struct slot *s)
{
	if (atomic_load_explicit(&L.stopping, memory_order_acquire))
		return;
	uint64_t seq =
	    atomic_fetch_add_explicit(&L.tickets, 1, memory_order_relaxed);
	if (L.o.count && seq >= L.o.count) {
		/* The last messages are out: main drains them. */
		if (!atomic_exchange(&L.issued_all, true))
			wake_main();
		return;
	}
	const struct tmpl *t = &L.tmpl[seq % L.ntmpl];
	s->tmpl = (uint32_t)(seq % L.ntmpl);
	gen_message(t, seq, s->buf);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.borrow_payload = true;
	so.callback = on_closed_done;
	so.callback_arg = s;
	atomic_fetch_add_explicit(&L.sent, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&L.inflight, 1, memory_order_acq_rel);
	struct mllp_future *f;
	int rc =
	    mllp_pool_send(L.pool, L.ep, s->buf, t->out_len, &so, &f, NULL);
	if (rc != 0) {
		count_failure(err_index(rc));
		/* Retried by the main thread after a pause, so a down
		 * endpoint is not hammered from the callback. */
		atomic_store_explicit(&s->idle, true, memory_order_release);
		if (!atomic_exchange_explicit(&L.kick_pending, true,
					      memory_order_acq_rel))
			wake_main();
		finish_one();
	}
}

static void on_closed_done(struct mllp_future *f, void *arg)
{
	struct slot *s = arg;
	const struct mllp_result *r = mllp_future_result(f);
	account(r, r->latency_us, L.tmpl[s->tmpl].out_len);
	mllp_future_free(f);
	slot_send(s);
	finish_one();
}

/* ---- open loop ------------------------------------------------------------
 */

static void on_open_done(struct mllp_future *f, void *arg)
{
	uintptr_t a = (uintptr_t)arg;
	uint64_t intended = L.t0_ns + (uint64_t)(a >> 8);
	uint64_t now = tool_now_ns();
	uint64_t lat = now > intended ? (now - intended) / 1000 : 0;
	const struct mllp_result *r = mllp_future_result(f);
	account(r, lat, L.tmpl[a & 0xFF].out_len);
	mllp_future_free(f);
	finish_one();
}

/* Intended send time of message i, in ns after t0. */
static uint64_t intended_ns(uint64_t i)
{
	double r = L.o.rate, ramp = L.o.ramp_s, t;
	double ramp_msgs = r * ramp / 2.0;
	if (ramp > 0 && (double)i < ramp_msgs)
		t = sqrt(2.0 * ramp * (double)i / r);
	else
		t = ramp + ((double)i - ramp_msgs) / r;
	return (uint64_t)(t * 1e9);
}

static void open_send(uint64_t i, uint64_t rel_ns, unsigned char *scratch)
{
	size_t ti = i % L.ntmpl;
	const struct tmpl *t = &L.tmpl[ti];
	gen_message(t, i, scratch);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.callback = on_open_done;
	so.callback_arg = (void *)(uintptr_t)((rel_ns << 8) | ti);
	atomic_fetch_add_explicit(&L.sent, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&L.inflight, 1, memory_order_acq_rel);
	struct mllp_future *f;
	int rc =
	    mllp_pool_send(L.pool, L.ep, scratch, t->out_len, &so, &f, NULL);
	if (rc != 0) {
		count_failure(err_index(rc));
		finish_one();
	}
	/* Otherwise the callback accounts for it and frees f. */
}

/* ---- signals, options -----------------------------------------------------
 */

static void on_sigint(int sig)
{
	(void)sig;
	atomic_fetch_add(&L.sigints, 1);
	atomic_store(&L.stopping, true);
	wake_main();
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: mllp-load [OPTIONS] [HOST PORT]\n"
	    "Drive an MLLP receiver with HL7 v2 messages and report "
	    "throughput, latency and\n"
	    "every message's fate. Without HOST PORT, the library's receiver "
	    "is started\n"
	    "in-process on an ephemeral loopback port (embedded receiver).\n"
	    "\n"
	    "Options:\n"
	    "  -c, --connections N   connections (default 16)\n"
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
	    "  -t, --timeout MS      reply timeout (default 5000); also how "
	    "long a message may\n"
	    "                        wait for a connection, and the bound on "
	    "the final drain\n"
	    "      --json FILE|-     write the report as JSON to FILE (- = "
	    "stdout; the human\n"
	    "                        report then goes to stderr)\n"
	    "      --progress        one status line per second on stderr "
	    "(default when\n"
	    "                        stderr is a terminal)\n"
	    "      --no-progress     no status lines\n"
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
	    "  -h, --help            show this help\n"
	    "\n" TOOL_TLS_USAGE
	    "  (TLS needs HOST PORT: the embedded receiver is plaintext.)\n"
	    "\n"
	    "Connections reconnect 100 ms after a failure. SIGINT stops "
	    "early; the report is\n"
	    "still printed. Report keys (JSON): duration_s, connections, "
	    "sent, accepted,\n"
	    "app_errors, app_rejects, failed, errors {reason: count}, "
	    "throughput_msgs_per_s,\n"
	    "throughput_mb_per_s, latency_us {p50 p90 p99 p999 max}, "
	    "reconnects, backend.\n"
	    "\n"
	    "Exit status: 0 every message accepted; 1 any AE/AR/CE/CR; 2 any "
	    "failure (transport,\n"
	    "timeout, invalid ACK, wrong control id) or an accounting "
	    "mismatch; 64 bad usage;\n"
	    "66 a template file cannot be read.\n");
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

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_RAMP = 256,
		OPT_SIZE,
		OPT_JSON,
		OPT_PROGRESS,
		OPT_NO_PROGRESS,
		OPT_EACK,
		OPT_EDELAY
	};
	static const struct option longopts[] = {
	    {"connections", required_argument, NULL, 'c'},
	    {"duration", required_argument, NULL, 'd'},
	    {"count", required_argument, NULL, 'n'},
	    {"rate", required_argument, NULL, 'r'},
	    {"ramp", required_argument, NULL, OPT_RAMP},
	    {"message", required_argument, NULL, 'm'},
	    {"size", required_argument, NULL, OPT_SIZE},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", required_argument, NULL, OPT_JSON},
	    {"progress", no_argument, NULL, OPT_PROGRESS},
	    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
	    {"embedded-ack", required_argument, NULL, OPT_EACK},
	    {"embedded-delay", required_argument, NULL, OPT_EDELAY},
	    {"help", no_argument, NULL, 'h'},
	    TOOL_CLIENT_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	tool_tls_init(&o->tls);
	o->connections = 16;
	o->duration_s = 10;
	o->timeout_ms = 5000;
	o->progress = -1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:d:n:r:m:t:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'c':
			o->connections = (uint32_t)tool_arg_u64(
			    prog, optarg, 1, 4096,
			    "--connections wants 1..4096");
			break;
		case 'd':
			o->duration_s =
			    parse_seconds(optarg, "--duration", 0.001);
			break;
		case 'n':
			o->count = tool_arg_u64(prog, optarg, 1,
						UINT64_C(999999999999),
						"--count wants N >= 1");
			break;
		case 'r':
			o->rate = (double)tool_arg_u64(
			    prog, optarg, 1, 10000000,
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
		case OPT_SIZE:
			o->size = (size_t)tool_arg_u64(
			    prog, optarg, 64, 64u << 20,
			    "--size wants 64..67108864 bytes");
			break;
		case 't':
			o->timeout_ms = (int64_t)tool_arg_u64(
			    prog, optarg, 1, 86400000,
			    "--timeout wants milliseconds 1..86400000");
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
		case 'h':
			usage(stdout);
			exit(0);
		default:
			tool_client_option(prog, c, optarg, argv[optind - 1],
					   &o->backend, &o->tls);
			break;
		}
	}
	tool_tls_check(prog, &o->tls);
	int rest = argc - optind;
	if (rest == 1 || rest > 2)
		tool_usage(prog, "give HOST and PORT, or neither (embedded "
				 "receiver)");
	if (rest == 2) {
		o->host = argv[optind];
		if (tool_parse_port(argv[optind + 1], false, &o->port) != 0)
			tool_usage(prog, "PORT wants 1..65535, got '%s'",
				   argv[optind + 1]);
		if (o->embedded_ack || o->embedded_delay_set)
			tool_usage(prog, "--embedded-ack and --embedded-delay "
					 "need the embedded receiver (no HOST "
					 "PORT)");
	}
	if (o->tls.enabled && rest != 2)
		tool_usage(prog, "--tls needs HOST and PORT (the embedded "
				 "receiver is plaintext)");
	if (o->size && o->nfiles)
		tool_usage(prog, "--size and --message exclude each other");
	if (o->ramp_s > 0 && !o->rate && o->count)
		tool_usage(prog, "--ramp in closed loop needs --duration");
	if (o->embedded_ack && !strchr(o->embedded_ack, '=') &&
	    !valid_code(o->embedded_ack))
		tool_usage(prog,
			   "--embedded-ack wants AA AE AR CA CE CR or a mix "
			   "such as AA=98,AE=1,AR=1, got '%s'",
			   o->embedded_ack);
}

/* ---- the report -----------------------------------------------------------
 */

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

static void print_human(FILE *f, const struct report *r)
{
	fprintf(f, "mllp-load: %s, %u connection%s, %s", r->target,
		L.o.connections, L.o.connections == 1 ? "" : "s",
		r->rate > 0 ? "open loop" : "closed loop");
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
	const char *sep = " (";
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (!r->errors[i])
			continue;
		fprintf(f, "%s%s %" PRIu64, sep, err_slot_name(i),
			r->errors[i]);
		sep = ", ";
	}
	fprintf(f, "%s\n", sep[0] == ',' ? ")" : "");
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
}

static void print_json(FILE *f, const struct report *r)
{
	fprintf(f, "{\"tool\":\"mllp-load\",\"target\":");
	tool_json_str(f, r->target, strlen(r->target));
	fprintf(f,
		",\"embedded\":%s,\"mode\":\"%s\",\"rate\":%.0f,"
		"\"message_bytes\":%zu,\"backend\":\"%s\","
		"\"interrupted\":%s,\"duration_s\":%.6f,\"connections\":%u,"
		"\"sent\":%" PRIu64 ",\"accepted\":%" PRIu64
		",\"app_errors\":%" PRIu64 ",\"app_rejects\":%" PRIu64
		",\"failed\":%" PRIu64 ",\"errors\":{",
		L.o.host ? "false" : "true", r->rate > 0 ? "open" : "closed",
		r->rate, r->message_bytes, r->backend,
		r->interrupted ? "true" : "false", r->duration_s,
		L.o.connections, r->sent, r->accepted, r->app_errors,
		r->app_rejects, r->failed);
	const char *sep = "";
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (!r->errors[i])
			continue;
		fprintf(f, "%s\"%s\":%" PRIu64, sep, err_slot_name(i),
			r->errors[i]);
		sep = ",";
	}
	fprintf(f,
		"},\"throughput_msgs_per_s\":%.1f,\"throughput_mb_per_s\":%.3f,"
		"\"latency_us\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
		",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
		"},\"reconnects\":%" PRIu64 ",\"cpu_s\":%.3f,"
		"\"accounting_ok\":%s}\n",
		r->msgs_per_s, r->mb_per_s, r->p50, r->p90, r->p99, r->p999,
		r->max, r->reconnects, r->cpu_s,
		r->accounting_ok ? "true" : "false");
}

static void progress_line(uint64_t now, uint64_t *last_ns, uint64_t *last_acked,
			  struct tool_hist_snap *prev,
			  struct tool_hist_snap *cur,
			  struct tool_hist_snap *diff)
{
	uint64_t acked = atomic_load(&L.accepted) + atomic_load(&L.app_errors) +
			 atomic_load(&L.app_rejects);
	tool_hist_snapshot(&L.hist, cur);
	tool_hist_diff(cur, prev, diff);
	double dt = (double)(now - *last_ns) / 1e9;
	fprintf(stderr,
		"%7.1fs  sent %" PRIu64 "  acked %" PRIu64
		"  rate %.0f/s  p99 %" PRIu64 "us  errors %" PRIu64 "\n",
		(double)(now - L.t0_ns) / 1e9, atomic_load(&L.sent), acked,
		dt > 0 ? (double)(acked - *last_acked) / dt : 0.0,
		tool_hist_quantile(diff, 0.99), atomic_load(&L.failed));
	*prev = *cur;
	*last_ns = now;
	*last_acked = acked;
}

/* ---- main -----------------------------------------------------------------
 */

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int wait_event(uint64_t until_ns)
{
	uint64_t now = tool_now_ns();
	struct timespec ts = {0, 0};
	if (until_ns > now) {
		uint64_t d = until_ns - now;
		ts.tv_sec = (time_t)(d / 1000000000u);
		ts.tv_nsec = (long)(d % 1000000000u);
	}
	struct pollfd pfd = {.fd = L.efd, .events = POLLIN};
	int n = ppoll(&pfd, 1, &ts, NULL);
	if (n > 0) {
		uint64_t v;
		ssize_t r = read(L.efd, &v, sizeof(v));
		(void)r;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct opts *o = &L.o;
	parse_args(argc, argv, o);
	if (o->progress < 0)
		o->progress = isatty(STDERR_FILENO);

	/* Templates. */
	struct tool_buf bufs[MAX_TEMPLATES];
	memset(bufs, 0, sizeof(bufs));
	struct tool_msgs msgs = {0};
	unsigned char *oru = NULL;
	for (size_t i = 0; i < o->nfiles; i++) {
		int rc = tool_read_file(o->files[i], &bufs[i]);
		if (rc != 0) {
			fprintf(stderr, "%s: cannot read %s: %s\n", prog,
				o->files[i], strerror(-rc));
			return TOOL_EXIT_NOINPUT;
		}
		size_t first = msgs.n;
		if (tool_split(bufs[i].data, bufs[i].len, false, &msgs, NULL) !=
		    0)
			return TOOL_EXIT_FAIL;
		if (msgs.n == first)
			tool_usage(prog, "%s holds no message", o->files[i]);
	}
	for (size_t i = 0; i < msgs.n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "template message %zu", i + 1);
		add_template(msgs.v[i].data, msgs.v[i].len, what);
	}
	if (o->size) {
		size_t len;
		oru = make_oru(o->size, &len);
		if (!oru)
			return TOOL_EXIT_FAIL;
		add_template(oru, len, "synthetic ORU^R01");
	}
	if (L.ntmpl == 0)
		add_template((const unsigned char *)default_template,
			     sizeof(default_template) - 1, "built-in ADT^A01");

	L.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (L.efd < 0) {
		fprintf(stderr, "%s: eventfd: %s\n", prog, strerror(errno));
		return TOOL_EXIT_FAIL;
	}
	/* Precise wake-ups for the open-loop pacer (default slack 50 us). */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct report rep;
	memset(&rep, 0, sizeof(rep));
	struct mllp_error err;
	char ebuf[300];

	/* The embedded receiver. */
#if LOAD_HAVE_RECEIVER
	struct mllp_receiver *recv = NULL;
	struct mllp_ack_dispatcher disp;
	const char *host = o->host;
	uint16_t port = o->port;
	if (!host) {
		mllp_ack_dispatcher_init(&disp);
		if (o->embedded_ack && strchr(o->embedded_ack, '=')) {
			if (mllp_ack_dispatcher_set_mix(&disp,
							o->embedded_ack) != 0)
				tool_usage(prog,
					   "--embedded-ack: bad mix '%s' "
					   "(e.g. AA=98,AE=1,AR=1)",
					   o->embedded_ack);
		} else if (o->embedded_ack) {
			disp.code = o->embedded_ack;
		}
		disp.seed = (uint64_t)time(NULL);
		disp.delay_ms = o->embedded_delay_ms;
		struct mllp_receiver_config rc;
		mllp_receiver_config_init(&rc);
		rc.address = "127.0.0.1";
		rc.port = 0;
		rc.dispatch = mllp_dispatch_ack;
		rc.dispatch_ctx = &disp;
		rc.max_frame = o->size > MLLP_RECV_DEFAULT_MAX_FRAME
				   ? o->size + 4096
				   : MLLP_RECV_DEFAULT_MAX_FRAME;
		rc.log = tool_log_limited;
		rc.log_ctx = (void *)prog;
		rc.log_level = MLLP_LOG_ERROR;
		rc.backend = o->backend;
		if (mllp_receiver_start(&rc, &recv, &err) != 0) {
			mllp_error_format(&err, ebuf, sizeof(ebuf));
			fprintf(stderr, "%s: embedded receiver: %s\n", prog,
				ebuf);
			return TOOL_EXIT_FAIL;
		}
		host = "127.0.0.1";
		port = mllp_receiver_port(recv);
		snprintf(rep.target, sizeof(rep.target),
			 "embedded receiver 127.0.0.1:%u (ack %s, delay %u ms)",
			 port, o->embedded_ack ? o->embedded_ack : "AA",
			 o->embedded_delay_ms);
	} else {
		snprintf(rep.target, sizeof(rep.target), "%s:%u", host, port);
	}
#else
	const char *host = o->host;
	uint16_t port = o->port;
	if (!host) {
		fprintf(stderr,
			"%s: this build has no embedded receiver: give HOST "
			"PORT\n",
			prog);
		return TOOL_EXIT_USAGE;
	}
	snprintf(rep.target, sizeof(rep.target), "%s:%u", host, port);
#endif

	/* The pool. */
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.conn.reply_timeout = o->timeout_ms;
	cfg.conn.queue_timeout = o->timeout_ms;
	cfg.conn.use_backoff = false;
	cfg.conn.auto_reconnect_interval = 100;
	cfg.log = tool_log_limited;
	cfg.log_ctx = (void *)prog;
	cfg.backend = o->backend;
	cfg.conn.tls = &o->tls; /* read by add_endpoint; off unless --tls */
	if (o->rate > 0)
		cfg.queue_capacity = 1u << 20;
	int rc = mllp_pool_create(&cfg, &L.pool, &err);
	if (rc == 0)
		rc = mllp_pool_add_endpoint(L.pool, host, port, o->connections,
					    NULL, &L.ep, &err);
	if (rc != 0) {
		mllp_error_format(&err, ebuf, sizeof(ebuf));
		fprintf(stderr, "%s: %s\n", prog, ebuf);
		return TOOL_EXIT_FAIL;
	}
	rep.backend = mllp_pool_backend(L.pool);
	rep.message_bytes = L.tmpl[0].out_len;

	/* Run. */
	bool closed = o->rate <= 0;
	uint64_t dur_ns = (uint64_t)(o->duration_s * 1e9);
	unsigned char *scratch = malloc(L.max_len);
	if (!scratch)
		return TOOL_EXIT_FAIL;
	if (closed) {
		L.slots = calloc(o->connections, sizeof(*L.slots));
		if (!L.slots)
			return TOOL_EXIT_FAIL;
		for (uint32_t i = 0; i < o->connections; i++) {
			L.slots[i].buf = malloc(L.max_len);
			if (!L.slots[i].buf)
				return TOOL_EXIT_FAIL;
		}
	}
	static struct tool_hist_snap prev, cur, diff;
	uint64_t last_ns, last_acked = 0;
	double cpu0 = cpu_seconds();
	L.t0_ns = tool_now_ns();
	last_ns = L.t0_ns;
	uint64_t next_progress = L.t0_ns + 1000000000u;
	uint64_t next_kick = 0;
	uint64_t open_i = 0;
	for (;;) {
		uint64_t now = tool_now_ns();
		if (atomic_load(&L.stopping))
			break;
		/* Closed loop: the duration ends it. Open loop: every message
		 * intended within the duration is sent, even when the pacer
		 * wakes late (the loop below ends when the next one would be
		 * due after the duration). */
		if (closed && !o->count && now - L.t0_ns >= dur_ns)
			break;
		uint64_t wake_at = next_progress;
		if (!o->count && L.t0_ns + dur_ns < wake_at)
			wake_at = L.t0_ns + dur_ns;
		if (closed) {
			/* Start slots (on the ramp), re-kick failed ones. */
			for (uint32_t i = 0; i < o->connections; i++) {
				struct slot *s = &L.slots[i];
				if (!s->started) {
					uint64_t at =
					    L.t0_ns +
					    (uint64_t)(o->ramp_s * 1e9 *
						       (double)i /
						       (double)o->connections);
					if (at > now) {
						if (at < wake_at)
							wake_at = at;
						continue;
					}
					s->started = true;
					slot_send(s);
				}
			}
			if (atomic_load(&L.kick_pending)) {
				if (now >= next_kick) {
					atomic_store(&L.kick_pending, false);
					for (uint32_t i = 0; i < o->connections;
					     i++)
						if (atomic_exchange(
							&L.slots[i].idle,
							false))
							slot_send(&L.slots[i]);
					next_kick = now + 10000000u;
				} else if (next_kick < wake_at) {
					wake_at = next_kick;
				}
			}
			if (atomic_load(&L.issued_all))
				break; /* count reached: drain below */
		} else {
			bool all = false;
			for (;;) {
				if (o->count && open_i >= o->count) {
					all = true;
					break;
				}
				uint64_t rel = intended_ns(open_i);
				if (!o->count && rel >= dur_ns) {
					all = true;
					break;
				}
				if (L.t0_ns + rel > now) {
					if (L.t0_ns + rel < wake_at)
						wake_at = L.t0_ns + rel;
					break;
				}
				open_send(open_i, rel, scratch);
				open_i++;
			}
			if (all)
				break; /* every message sent: drain below */
		}
		if (o->progress && now >= next_progress) {
			progress_line(now, &last_ns, &last_acked, &prev, &cur,
				      &diff);
			next_progress += 1000000000u;
			continue;
		}
		wait_event(wake_at);
	}

	/* Drain: no new messages; wait for those in flight, bounded by the
	 * reply timeout (+ 0.5 s), then stop the pool, which fails whatever
	 * is left (MLLP_ERR_STOPPED). A run so ends at most that long after
	 * its duration, whatever the receiver does. */
	atomic_store(&L.stopping, true);
	uint64_t drain_end =
	    tool_now_ns() + (uint64_t)o->timeout_ms * 1000000u + 500000000u;
	while (atomic_load(&L.inflight) > 0 && atomic_load(&L.sigints) < 2) {
		uint64_t now = tool_now_ns();
		if (now >= drain_end)
			break;
		if (o->progress && now >= next_progress) {
			progress_line(now, &last_ns, &last_acked, &prev, &cur,
				      &diff);
			next_progress += 1000000000u;
		}
		uint64_t w =
		    drain_end < next_progress ? drain_end : next_progress;
		if (!o->progress)
			w = drain_end;
		wait_event(w);
	}
	struct mllp_pool_stats st;
	mllp_pool_stop(L.pool);
	uint64_t end_ns = tool_now_ns();
	mllp_pool_get_stats(L.pool, &st);
#if LOAD_HAVE_RECEIVER
	if (recv)
		mllp_receiver_stop(recv);
#endif

	/* Report. */
	rep.duration_s = (double)(end_ns - L.t0_ns) / 1e9;
	rep.cpu_s = cpu_seconds() - cpu0;
	rep.sent = atomic_load(&L.sent);
	rep.accepted = atomic_load(&L.accepted);
	rep.app_errors = atomic_load(&L.app_errors);
	rep.app_rejects = atomic_load(&L.app_rejects);
	rep.failed = atomic_load(&L.failed);
	for (size_t i = 0; i < ERR_SLOTS; i++)
		rep.errors[i] = atomic_load(&L.errors[i]);
	uint64_t acked = rep.accepted + rep.app_errors + rep.app_rejects;
	rep.msgs_per_s =
	    rep.duration_s > 0 ? (double)acked / rep.duration_s : 0;
	rep.mb_per_s =
	    rep.duration_s > 0
		? (double)atomic_load(&L.bytes_acked) / rep.duration_s / 1e6
		: 0;
	tool_hist_snapshot(&L.hist, &cur);
	rep.p50 = tool_hist_quantile(&cur, 0.50);
	rep.p90 = tool_hist_quantile(&cur, 0.90);
	rep.p99 = tool_hist_quantile(&cur, 0.99);
	rep.p999 = tool_hist_quantile(&cur, 0.999);
	rep.max = cur.max;
	rep.reconnects = st.reconnects;
	rep.interrupted = atomic_load(&L.sigints) > 0;
	rep.rate = o->rate;
	rep.accounting_ok = rep.sent == rep.accepted + rep.app_errors +
					    rep.app_rejects + rep.failed;

	FILE *human = stdout;
	if (o->json && strcmp(o->json, "-") == 0) {
		human = stderr;
		print_json(stdout, &rep);
	} else if (o->json) {
		FILE *jf = fopen(o->json, "w");
		if (!jf) {
			fprintf(stderr, "%s: cannot write %s: %s\n", prog,
				o->json, strerror(errno));
		} else {
			print_json(jf, &rep);
			fclose(jf);
		}
	}
	print_human(human, &rep);
	fflush(stdout);
	if (tool_log_suppressed())
		fprintf(stderr, "%s: %" PRIu64 " more log lines suppressed\n",
			prog, tool_log_suppressed());

	int code = TOOL_EXIT_OK;
	if (rep.app_errors || rep.app_rejects)
		code = TOOL_EXIT_APP;
	if (rep.failed)
		code = TOOL_EXIT_FAIL;
	if (!rep.accounting_ok) {
		fprintf(stderr,
			"%s: ACCOUNTING MISMATCH: sent %" PRIu64
			" != accepted %" PRIu64 " + app_errors %" PRIu64
			" + app_rejects %" PRIu64 " + failed %" PRIu64
			" (a message was lost: this is a bug)\n",
			prog, rep.sent, rep.accepted, rep.app_errors,
			rep.app_rejects, rep.failed);
		code = TOOL_EXIT_FAIL;
	}

	mllp_pool_destroy(L.pool);
#if LOAD_HAVE_RECEIVER
	mllp_receiver_destroy(recv);
#endif
	if (L.slots)
		for (uint32_t i = 0; i < o->connections; i++)
			free(L.slots[i].buf);
	free(L.slots);
	free(scratch);
	free(oru);
	tool_msgs_free(&msgs);
	for (size_t i = 0; i < o->nfiles; i++)
		tool_buf_free(&bufs[i]);
	close(L.efd);
	return code;
}

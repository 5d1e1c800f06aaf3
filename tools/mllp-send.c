/* mllp-send: send HL7 v2 messages over MLLP and verify each reply.
 *
 *   mllp-send [OPTIONS] HOST PORT [FILE...]
 *
 * Reads messages from FILEs (or stdin), sends them through a pool of
 * connections, waits for each reply and verifies it as an HL7 ACK against
 * the message's MSH-10. Exit 0 when every message was accepted (or written,
 * when its MSH-15 NE/ER asks for no accept ACK), 1 when any
 * got an application error or reject, 2 when any failed, 64 for bad usage,
 * 65 for no message in the input, 66 for an unreadable input file, 128 +
 * the signal when SIGINT or SIGTERM cut the run short. Public library API
 * only. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/mllp.h>

#include "common.h"
#include "send_enhanced.h"
#include "send_keys.h"

static const char *prog = "mllp-send";
#define USAGE_LINE "Usage: mllp-send [OPTIONS] HOST PORT [FILE...]"

struct opts {
	uint32_t connections;
	struct tool_client_opts cl; /* --timeout, --backend, TLS */
	bool raw;
	bool async;
	bool print_ack;
	bool quiet;
	bool json;
	bool keep_bytes;
	const char *key_field; /* --key-field, or NULL */
	uint32_t retries;      /* --retries (with --key-field) */
	bool retries_set;
	struct send_enh_opts enh; /* --enhanced, --ack-listen, --app-timeout */
	const char *host;
	uint16_t port;
	char **files;
	int nfiles;
};

static void usage(FILE *f)
{
	fprintf(
	    f, USAGE_LINE
	    "\n"
	    "Send HL7 v2 messages over MLLP and verify each reply (ACK).\n"
	    "\n"
	    "Input: each FILE in turn, or stdin when none is given ('-' "
	    "also reads stdin).\n"
	    "  A stream containing SB (0x0B) is split into MLLP frames, "
	    "each sent as is.\n"
	    "  Plain text is split into messages at each segment starting "
	    "MSH; a text with\n"
	    "  FHS/BHS batch segments is sent as one message (its reply is "
	    "judged by MSA-1).\n"
	    "  LF and CRLF segment ends become CR and empty lines are "
	    "dropped.\n"
	    "\n"
	    "Options:\n"
	    "  -c, --connections N  connections to open, 1..1024 (default "
	    "1); message order\n"
	    "                       is kept per connection (per key with "
	    "--key-field)\n"
	    "      --key-field F    keep order per HL7 field F (e.g. PID-3, "
	    "PID-3.1, MSH-4)\n"
	    "                       across all connections: a message of a "
	    "key is sent\n"
	    "                       once the key's previous one is accepted "
	    "(AA/CA); a\n"
	    "                       message without F is not sent (an "
	    "error)\n"
	    "      --retries N      with --key-field: a failed message (or "
	    "AE/AR) is sent\n"
	    "                       again after the reconnect backoff, N "
	    "times at most\n"
	    "                       (default 5, 0..100); then the key's "
	    "later messages are\n"
	    "                       not sent\n"
	    "  -t, --timeout MS     reply timeout in milliseconds (default "
	    "60000)\n"
	    "      --send-timeout MS\n"
	    "                       how long writing one message may take "
	    "(default 60000)\n"
	    "      --raw            do not verify replies as HL7 ACKs: "
	    "print each reply;\n"
	    "                       a message counts as \"replied\"\n"
	    "      --async          do not wait for replies: a message "
	    "counts as \"written\"\n"
	    "      --print-ack      print each full ACK after its line\n"
	    "      --keep-bytes     send the bytes untouched (no segment "
	    "end conversion)\n"
	    "  -q, --quiet          print nothing; the exit code tells\n"
	    "      --json           one JSON object per message and line: "
	    "index, control_id,\n"
	    "                       verdict, ack_code, text, latency_us, "
	    "error\n"
	    "      --backend B      I/O backend: auto (io_uring, else "
	    "epoll), io_uring or\n"
	    "                       epoll (default auto)\n" TOOL_MLLP2_USAGE
	    "                       (verdict \"committed\"; the HL7 ACK "
	    "that follows is\n"
	    "                       not judged)\n" TOOL_WINDOW_USAGE
		SEND_ENH_USAGE "  -h, --help           show this help\n"
	    "      --version        show the version and the libraries "
	    "built in\n"
	    "\n" TOOL_TLS_USAGE "\n"
	    "Output (default): one line per message: index, MSH-10, "
	    "verdict, MSA-1, MSA-3\n"
	    "text (quoted), latency; then a summary line on stderr.\n"
	    "\n"
	    "Exit status: 0 every message accepted (AA/CA), or with --raw "
	    "every message\n"
	    "replied, with --async written, with --mllp2 committed; 1 any "
	    "application error or\n"
	    "reject (AE/AR/CE/CR); 2 any transport failure, timeout, "
	    "invalid ACK or wrong\n"
	    "control id, or too low an open-file limit; 64 bad usage; 65 no "
	    "message in the\n"
	    "input; 66 an input file cannot be read; 130 (143) stopped by "
	    "SIGINT (SIGTERM);\n"
	    "3 with --key-field: a message failed after its retries and "
	    "its key's later\n"
	    "messages were not sent (the failure itself counts as 1 or 2 "
	    "otherwise).\n"
	    "A message whose MSH-15 is NE or ER asks for no accept ACK: it "
	    "counts as a\n"
	    "success once written, and the summary counts it as \"written "
	    "without an accept\n"
	    "ACK\", not as accepted.\n");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		OPT_RAW = 256,
		OPT_ASYNC,
		OPT_PRINT_ACK,
		OPT_JSON,
		OPT_KEEP,
		OPT_KEY_FIELD,
		OPT_RETRIES,
	};
	static const struct option longopts[] = {
	    {"connections", required_argument, NULL, 'c'},
	    {"raw", no_argument, NULL, OPT_RAW},
	    {"async", no_argument, NULL, OPT_ASYNC},
	    {"print-ack", no_argument, NULL, OPT_PRINT_ACK},
	    {"keep-bytes", no_argument, NULL, OPT_KEEP},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"key-field", required_argument, NULL, OPT_KEY_FIELD},
	    {"retries", required_argument, NULL, OPT_RETRIES},
	    {"help", no_argument, NULL, 'h'},
	    SEND_ENH_LONGOPTS,
	    TOOL_CLIENT_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	tool_client_init(&o->cl, 60000);
	o->connections = 1;
	o->retries = 5;
	o->enh.timeout_ms = 60000;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->connections = (uint32_t)tool_arg_u64(
			    prog, optarg, 1, 1024,
			    "--connections wants 1..1024");
			break;
		case OPT_RAW:
			o->raw = true;
			break;
		case OPT_ASYNC:
			o->async = true;
			break;
		case OPT_PRINT_ACK:
			o->print_ack = true;
			break;
		case OPT_KEEP:
			o->keep_bytes = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case OPT_KEY_FIELD:
			o->key_field = optarg;
			break;
		case OPT_RETRIES:
			o->retries = (uint32_t)tool_arg_u64(
			    prog, optarg, 0, 100, "--retries wants 0..100");
			o->retries_set = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			if (!send_enh_option(prog, c, optarg, &o->enh))
				tool_client_option(prog, USAGE_LINE, c, optarg,
						   argv, &o->cl);
			break;
		}
	}
	tool_tls_check(prog, &o->cl.tls);
	if (argc - optind < 2)
		tool_usage(prog, "HOST and PORT are required");
	o->host = argv[optind];
	o->port = tool_arg_port(prog, argv[optind + 1], false);
	o->files = argv + optind + 2;
	o->nfiles = argc - optind - 2;
	if (o->quiet && o->json)
		tool_usage(prog, "--quiet and --json exclude each other");
	send_keys_check(prog, o->key_field, o->retries_set, o->async || o->raw);
	send_enh_check(prog, &o->enh, o->raw, o->async);
}

/* What happened to one message, ready to print. */
struct outcome {
	int cls;	/* 0 accepted / written / replied, 1 AE/AR, 2 failure */
	bool no_accept; /* MSH-15 NE/ER: written, no accept ACK asked */
	const char *verdict;
	struct mllp_str code;
	struct mllp_str text;
	uint64_t latency_us;
	bool has_latency;
	char error[512]; /* room for a file name (300) and an error (200) */
	char note[64];	 /* printed whatever the class */
	const unsigned char *reply;
	size_t reply_len;
};

/* The reply to a batch carries no id to match: judge it by MSA-1 alone. */
static void judge_batch_reply(struct outcome *oc)
{
	struct mllp_hl7_msg m;
	struct mllp_str msa, f;
	if (mllp_hl7_parse(&m, oc->reply, oc->reply_len) != 0 ||
	    mllp_hl7_find_segment(&m, "MSA", 1, &msa) != 0) {
		oc->cls = 2;
		oc->verdict = mllp_verdict_name(MLLP_INVALID_ACK_MESSAGE);
		snprintf(oc->error, sizeof(oc->error),
			 "Invalid ACK message: no MSA segment");
		return;
	}
	if (mllp_hl7_field(&m, msa, 1, &f) == 0)
		oc->code = f;
	if (mllp_hl7_field(&m, msa, 3, &f) == 0)
		oc->text = f;
	enum mllp_verdict v = MLLP_BAD_ACK_CODE;
	if (mllp_str_eq(oc->code, "AA") || mllp_str_eq(oc->code, "CA"))
		v = MLLP_APPLICATION_ACCEPT;
	else if (mllp_str_eq(oc->code, "AE") || mllp_str_eq(oc->code, "CE"))
		v = MLLP_APPLICATION_ERROR;
	else if (mllp_str_eq(oc->code, "AR") || mllp_str_eq(oc->code, "CR"))
		v = MLLP_APPLICATION_REJECT;
	oc->verdict = mllp_verdict_name(v);
	oc->cls = send_enh_verdict_class(v);
	if (v == MLLP_BAD_ACK_CODE)
		snprintf(oc->error, sizeof(oc->error),
			 "The value %.*s is not a valid acknowledgment_code",
			 (int)oc->code.len, oc->code.ptr ? oc->code.ptr : "");
}

static void judge(const struct opts *o, const struct tool_msg *msg,
		  const struct mllp_result *r, struct outcome *oc)
{
	if (r->status != 0) {
		oc->cls = 2;
		oc->verdict = "error";
		mllp_error_format(&r->error, oc->error, sizeof(oc->error));
		return;
	}
	oc->reply = r->reply;
	oc->reply_len = r->reply_len;
	oc->latency_us = r->latency_us;
	oc->has_latency = r->reply != NULL;
	if (o->async) {
		oc->verdict = "written";
		return;
	}
	if (o->cl.mllp_release == 2) { /* done at the commit ACK */
		oc->verdict = "committed";
		oc->reply = NULL; /* the byte 0x06: nothing to print */
		oc->reply_len = 0;
		return;
	}
	if (o->raw) {
		oc->verdict = "replied";
		return;
	}
	if (msg->batch) {
		judge_batch_reply(oc);
		return;
	}
	const char *acc;
	if (!r->has_verdict && !r->reply &&
	    (acc = send_enh_no_accept(msg->data, msg->len)) != NULL) {
		/* MSH-15 NE / ER: done when written, no reply awaited */
		oc->verdict = "written";
		oc->no_accept = true;
		snprintf(oc->note, sizeof(oc->note),
			 "accept: none requested (MSH-15 %s)", acc);
		return;
	}
	if (!r->has_verdict) {
		oc->cls = 2;
		oc->verdict = "error";
		snprintf(oc->error, sizeof(oc->error), "reply not verified");
		return;
	}
	oc->verdict = mllp_verdict_name(r->verdict);
	oc->cls = send_enh_verdict_class(r->verdict);
	oc->code = r->ack.code;
	oc->text = r->ack.text;
	if (r->verdict != MLLP_APPLICATION_ACCEPT)
		snprintf(oc->error, sizeof(oc->error), "%s", r->why);
}

/* Bytes with CR segment ends, printed as lines. */
static void print_segments(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		putchar(p[i] == '\r' ? '\n' : p[i]);
	if (len > 0 && p[len - 1] != '\r' && p[len - 1] != '\n')
		putchar('\n');
}

static void print_outcome(const struct opts *o, size_t index,
			  struct mllp_str control_id, const struct outcome *oc)
{
	if (o->quiet)
		return;
	if (o->json) {
		printf("{\"index\":%zu,\"control_id\":", index);
		if (control_id.len)
			tool_json_str(stdout, control_id.ptr, control_id.len);
		else
			fputs("null", stdout);
		printf(",\"verdict\":\"%s\",\"ack_code\":", oc->verdict);
		if (oc->code.len)
			tool_json_str(stdout, oc->code.ptr, oc->code.len);
		else
			fputs("null", stdout);
		fputs(",\"text\":", stdout);
		if (oc->text.len)
			tool_json_str(stdout, oc->text.ptr, oc->text.len);
		else
			fputs("null", stdout);
		if (oc->has_latency)
			printf(",\"latency_us\":%" PRIu64, oc->latency_us);
		else
			fputs(",\"latency_us\":null", stdout);
		fputs(",\"error\":", stdout);
		if (oc->error[0])
			tool_json_str(stdout, oc->error, strlen(oc->error));
		else
			fputs("null", stdout);
		if (oc->note[0]) {
			fputs(",\"note\":", stdout);
			tool_json_str(stdout, oc->note, strlen(oc->note));
		}
		if (o->raw || o->print_ack) {
			fputs(",\"reply\":", stdout);
			if (oc->reply)
				tool_json_str(stdout, oc->reply, oc->reply_len);
			else
				fputs("null", stdout);
		}
		fputs("}\n", stdout);
		return;
	}
	printf("%zu %.*s %s %.*s \"%.*s\"", index,
	       control_id.len ? (int)control_id.len : 1,
	       control_id.len ? control_id.ptr : "-", oc->verdict,
	       oc->code.len ? (int)oc->code.len : 1,
	       oc->code.len ? oc->code.ptr : "-", (int)oc->text.len,
	       oc->text.ptr ? oc->text.ptr : "");
	if (oc->has_latency)
		printf(" %" PRIu64 ".%03" PRIu64 "ms", oc->latency_us / 1000,
		       oc->latency_us % 1000);
	else
		printf(" -");
	if (oc->error[0] && oc->cls != 0)
		printf(" (%s)", oc->error);
	if (oc->note[0])
		printf(" (%s)", oc->note);
	putchar('\n');
	if ((o->raw || o->print_ack) && oc->reply)
		print_segments(oc->reply, oc->reply_len);
}

static void drop_log(void *ctx, enum mllp_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

/* The inputs: every file read and split before connecting. */
struct inputs {
	const char *const *files;
	int nfiles;
	struct tool_buf *bufs;
	size_t *first; /* first[i]: index of file i's first message */
	struct tool_msgs msgs;
	struct send_enh_store enh; /* --enhanced: rewritten messages */
};

/* Read and split every input; returns 0 or an exit status (printed). */
static int read_inputs(const struct opts *o, struct inputs *in)
{
	static const char *stdin_only[] = {"-"};
	in->files = o->nfiles ? (const char *const *)o->files : stdin_only;
	in->nfiles = o->nfiles ? o->nfiles : 1;
	in->bufs = calloc((size_t)in->nfiles, sizeof(*in->bufs));
	in->first = calloc((size_t)in->nfiles + 1, sizeof(*in->first));
	if (!in->bufs || !in->first) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return TOOL_EXIT_FAIL;
	}
	for (int i = 0; i < in->nfiles; i++) {
		int rc = tool_read_file(in->files[i], &in->bufs[i]);
		if (rc != 0) {
			fprintf(stderr, "%s: cannot read %s: %s\n", prog,
				in->files[i], strerror(-rc));
			return TOOL_EXIT_NOINPUT;
		}
		in->first[i] = in->msgs.n;
		size_t junk = 0;
		if (tool_split(in->bufs[i].data, in->bufs[i].len, o->keep_bytes,
			       &in->msgs, &junk) != 0) {
			fprintf(stderr, "%s: out of memory\n", prog);
			return TOOL_EXIT_FAIL;
		}
		if (junk && !o->quiet)
			fprintf(stderr,
				"%s: %s: %zu bytes outside MLLP frames "
				"ignored\n",
				prog, in->files[i], junk);
	}
	in->first[in->nfiles] = in->msgs.n;
	if (in->msgs.n == 0) {
		fprintf(stderr, "%s: no message in the input\n", prog);
		return TOOL_EXIT_DATAERR;
	}
	return o->enh.enhanced ? send_enh_rewrite(prog, &in->msgs, &in->enh)
			       : 0;
}

static void free_inputs(struct inputs *in)
{
	tool_msgs_free(&in->msgs);
	send_enh_store_free(&in->enh);
	for (int i = 0; in->bufs && i < in->nfiles; i++)
		tool_buf_free(&in->bufs[i]);
	free(in->bufs);
	free(in->first);
}

/* Write "FILE: message K: " for message i into buf (stdin is "stdin"). */
static void name_origin(const struct inputs *in, size_t i, char *buf,
			size_t cap)
{
	int f = 0;
	while (f + 1 < in->nfiles && in->first[f + 1] <= i)
		f++;
	const char *name =
	    strcmp(in->files[f], "-") == 0 ? "stdin" : in->files[f];
	snprintf(buf, cap, "%s: message %zu: ", name, i - in->first[f] + 1);
}

/* SIGINT and SIGTERM are blocked in every thread; this one waits for
 * them, records the first and stops the pool, which completes every
 * message in flight (MLLP_ERR_STOPPED) so the main thread reports at once.
 * SIGUSR1 from the main thread ends it. */
struct sigwatch {
	pthread_t thread;
	sigset_t set;
	struct mllp_pool *pool;
	_Atomic int signo;
};

static void *sigwatch_main(void *arg)
{
	struct sigwatch *w = arg;
	int sig = 0;
	if (sigwait(&w->set, &sig) == 0 && sig != SIGUSR1) {
		atomic_store(&w->signo, sig);
		if (w->pool)
			mllp_pool_stop(w->pool);
	}
	return NULL;
}

static void sigwatch_block(struct sigwatch *w)
{
	sigemptyset(&w->set);
	sigaddset(&w->set, SIGINT);
	sigaddset(&w->set, SIGTERM);
	sigaddset(&w->set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &w->set, NULL);
}

/* Counts of a run, for the summary and the exit status. */
struct tally {
	size_t counts[3]; /* by class */
	size_t app_err, app_rej, not_sent;
	size_t no_accept; /* of counts[0]: MSH-15 NE/ER, written */
	int worst;
	struct send_enh_tally app; /* the application stage */
	/* --key-field: the keys (send_keys.h), the messages not sent because
	 * an earlier one of their key failed, and what send_keys_failed
	 * needs. */
	struct send_keys *keys;
	bool *dropped;
	size_t key_dropped;
	struct mllp_pool *pool;
	uint32_t ep;
	struct mllp_future **fut;
	size_t end;
};

static int send_all(const struct opts *o, const struct inputs *in,
		    struct mllp_pool *pool, uint32_t ep, struct sigwatch *w,
		    struct tally *t);

static void print_summary(const struct opts *o, const struct tally *t, size_t n,
			  bool interrupted)
{
	if (o->quiet)
		return;
	const char *ok_word = o->async ? "written"
			      : o->raw ? "replied"
				       : "accepted";
	fprintf(stderr, "%s: %s%zu message%s: ", prog,
		interrupted ? "interrupted: " : "", n, n == 1 ? "" : "s");
	send_enh_summary_ok(t->counts[0], t->no_accept, ok_word);
	if (!o->async && !o->raw)
		fprintf(stderr, ", %zu application error%s, %zu reject%s",
			t->app_err, t->app_err == 1 ? "" : "s", t->app_rej,
			t->app_rej == 1 ? "" : "s");
	fprintf(stderr, ", %zu failed", t->counts[2]);
	if (t->not_sent)
		fprintf(stderr, ", %zu not sent", t->not_sent);
	if (t->key_dropped)
		fprintf(stderr,
			", %zu not sent because an earlier message of their "
			"key failed",
			t->key_dropped);
	fputc('\n', stderr);
	send_enh_summary(prog, o->quiet, &t->app);
}

/* A pool with one endpoint of o->connections connections. */
static int start_pool(const struct opts *o, struct mllp_pool **pool,
		      uint32_t *ep)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	tool_client_pool_config(&o->cl, &cfg);
	cfg.max_reply = MLLP_DEFAULT_MAX_FRAME;
	cfg.log = o->quiet ? drop_log : tool_log;
	cfg.log_ctx = (void *)prog;
	if (o->key_field) {
		/* a failed message of a key is retried, then its lane holds */
		cfg.conn.lane_policy = MLLP_LANE_RETRY;
		cfg.conn.lane_max_retries = o->retries;
	}
	struct mllp_error err;
	char buf[256];
	int rc = mllp_pool_create(&cfg, pool, &err);
	if (rc != 0) {
		mllp_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s: %s\n", prog, buf);
		return TOOL_EXIT_FAIL;
	}
	rc = mllp_pool_add_endpoint(*pool, o->host, o->port, o->connections,
				    NULL, ep, &err);
	if (rc != 0) {
		mllp_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s: %s: %s\n", prog, o->host, buf);
		return TOOL_EXIT_FAIL;
	}
	if (o->enh.listen) /* the application ACKs' listener */
		return send_enh_listen(prog, *pool, o->enh.listen,
				       o->enh.timeout_ms, cfg.backend,
				       o->quiet);
	return 0;
}

/* Start the pool and the signal watcher, send every message, print the
 * summary and stop; returns the exit status. w's signals are blocked. */
static int run(const struct opts *o, const struct inputs *in,
	       struct sigwatch *w)
{
	struct mllp_pool *pool = NULL;
	uint32_t ep = 0;
	int status = start_pool(o, &pool, &ep);
	bool watching = false;
	if (status == 0) {
		w->pool = pool;
		watching =
		    pthread_create(&w->thread, NULL, sigwatch_main, w) == 0;
		struct tally t = {0};
		status = send_all(o, in, pool, ep, w, &t);
		int sig = atomic_load(&w->signo);
		print_summary(o, &t, in->msgs.n, sig != 0);
		if (sig)
			status = TOOL_EXIT_SIGNAL + sig;
	}
	if (watching) {
		pthread_kill(w->thread, SIGUSR1);
		pthread_join(w->thread, NULL);
	}
	mllp_pool_destroy(pool);
	return status;
}

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	if (o.json)
		setvbuf(stdout, NULL, _IOLBF, 0); /* one object per line, now */
	char what[64];
	snprintf(what, sizeof(what), "-c %u", o.connections);
	if (!tool_nofile(prog, (uint64_t)o.connections + 64, what))
		return TOOL_EXIT_FAIL;
	struct inputs in = {0};
	int status = read_inputs(&o, &in);
	if (status == 0) {
		/* Blocked before the pool's thread starts, so it inherits
		 * the mask. */
		static struct sigwatch w;
		sigwatch_block(&w);
		status = run(&o, &in, &w);
	}
	free_inputs(&in);
	return status;
}

/* Print the outcome of message i (its future f, or its send error) and
 * count it. */
static void report_one(const struct opts *o, const struct inputs *in, size_t i,
		       struct mllp_future *f, const struct mllp_error *serr,
		       struct tally *t)
{
	const struct tool_msg *m = &in->msgs.v[i];
	struct outcome oc;
	memset(&oc, 0, sizeof(oc));
	if (f) {
		mllp_future_wait(f, MLLP_INFINITE);
		judge(o, m, mllp_future_result(f), &oc);
	} else {
		oc.cls = 2;
		oc.verdict = "error";
		char where[300], why[200];
		name_origin(in, i, where, sizeof(where));
		mllp_error_format(serr, why, sizeof(why));
		/* A message the library refuses names its file. */
		snprintf(oc.error, sizeof(oc.error), "%s%s",
			 serr->reason == MLLP_ERR_NOT_HL7 ||
				 serr->reason == MLLP_ERR_BAD_MSH
			     ? where
			     : "",
			 why);
	}
	struct mllp_hl7_msg hm;
	struct mllp_str id = {NULL, 0};
	if (!m->batch && mllp_hl7_parse(&hm, m->data, m->len) == 0)
		id = hm.control_id;
	if (t->dropped && t->dropped[i]) {
		oc.cls = 2;
		oc.verdict = "not_sent";
		oc.has_latency = false;
		oc.reply = NULL;
		snprintf(oc.error, sizeof(oc.error),
			 "not sent: an earlier message of its key failed");
		t->key_dropped++;
	} else if (f && t->keys && oc.cls != 0) {
		send_keys_failed(t->keys, t->pool, t->ep, i, t->fut, t->end,
				 t->dropped);
	}
	print_outcome(o, i + 1, id, &oc);
	send_enh_report(o->quiet, o->json, i + 1, id, f, &t->app, &t->worst);
	t->counts[oc.cls]++;
	t->no_accept += oc.cls == 0 && oc.no_accept;
	if (oc.cls == 1 && strstr(oc.verdict, "reject"))
		t->app_rej++;
	else if (oc.cls == 1)
		t->app_err++;
	if (oc.cls > t->worst)
		t->worst = oc.cls;
}

/* --key-field: what report_one needs to stop a failed key. */
static bool keys_start(struct tally *t, const char *field,
		       const struct inputs *in, struct mllp_pool *pool,
		       uint32_t ep, struct mllp_future **fut)
{
	t->keys = send_keys_new(field, &in->msgs);
	t->dropped = calloc(in->msgs.n, sizeof(*t->dropped));
	if (!t->keys || !t->dropped) {
		fprintf(stderr, "%s: out of memory\n", prog);
		send_keys_free(t->keys);
		free(t->dropped);
		t->keys = NULL;
		t->dropped = NULL;
		return false;
	}
	t->pool = pool;
	t->ep = ep;
	t->fut = fut;
	return true;
}

/* Send every message through the pool and report each outcome in input
 * order, a window of messages in flight; stops sending when a signal
 * came. Returns the exit status. */
static int send_all(const struct opts *o, const struct inputs *in,
		    struct mllp_pool *pool, uint32_t ep, struct sigwatch *w,
		    struct tally *t)
{
	size_t n = in->msgs.n;
	/* enough futures ahead to fill every connection's window */
	size_t per = 2 * (size_t)tool_window_size(o->cl.window);
	size_t window = (size_t)o->connections * (per > 8 ? per : 8);
	struct mllp_future **fut = calloc(n, sizeof(*fut));
	struct mllp_error *serr = calloc(n, sizeof(*serr));
	if (!fut || !serr) {
		fprintf(stderr, "%s: out of memory\n", prog);
		free(fut);
		free(serr);
		return TOOL_EXIT_FAIL;
	}
	if (o->key_field && !keys_start(t, o->key_field, in, pool, ep, fut)) {
		free(fut);
		free(serr);
		return TOOL_EXIT_FAIL;
	}
	size_t next = 0; /* next message to report */
	size_t end = n;	 /* messages submitted (all, unless a signal) */
	for (size_t i = 0; i <= end; i++) {
		if (i < end && atomic_load(&w->signo))
			end = i; /* stop sending; report what was sent */
		t->end = i;
		while (next < i && (i - next >= window || i == end)) {
			report_one(o, in, next, fut[next], &serr[next], t);
			mllp_future_free(fut[next]);
			fut[next] = NULL;
			next++;
		}
		if (i == end)
			break;
		const struct tool_msg *m = &in->msgs.v[i];
		struct mllp_send_options so;
		mllp_send_options_init(&so);
		so.kind =
		    o->raw || m->batch ? MLLP_PAYLOAD_RAW : MLLP_PAYLOAD_HL7;
		so.async = o->async;
		so.block = true;
		so.block_timeout_ms = MLLP_INFINITE;
		so.borrow_payload = true; /* the inputs outlive the pool */
		so.key_field = o->key_field;
		if (t->keys && send_keys_dead(t->keys, i)) {
			/* an earlier message of its key failed */
			t->dropped[i] = true;
			continue;
		}
		if (mllp_pool_send(pool, ep, m->data, m->len, &so, &fut[i],
				   &serr[i]) != 0)
			fut[i] = NULL;
	}
	fflush(stdout);
	t->not_sent = n - end;
	free(fut);
	free(serr);
	send_keys_free(t->keys);
	free(t->dropped);
	return t->key_dropped ? TOOL_EXIT_KEY : t->worst;
}

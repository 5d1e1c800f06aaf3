/* mllp-send: send HL7 v2 messages over MLLP and verify each reply.
 *
 *   mllp-send [OPTIONS] HOST PORT [FILE...]
 *
 * Reads messages from FILEs (or stdin), sends them through a pool of
 * connections, waits for each reply and verifies it as an HL7 ACK against
 * the message's MSH-10. Exit 0 when every message was accepted, 1 when any
 * got an application error or reject, 2 when any failed, 64 for bad usage,
 * 66 for an unreadable input file. Public library API only. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/mllp.h>

#include "common.h"

static const char *prog = "mllp-send";

struct opts {
	uint32_t connections;
	int64_t timeout_ms;
	bool raw;
	bool async;
	bool print_ack;
	bool quiet;
	bool json;
	bool keep_bytes;
	enum mllp_backend_kind backend;
	struct mllp_tls_client_config tls;
	const char *host;
	uint16_t port;
	char **files;
	int nfiles;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mllp-send [OPTIONS] HOST PORT [FILE...]\n"
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
		"  -c, --connections N  connections to open (default 1); "
		"message order is kept\n"
		"                       per connection\n"
		"  -t, --timeout MS     reply timeout in milliseconds (default "
		"60000)\n"
		"      --raw            do not verify replies as HL7 ACKs: "
		"print each reply\n"
		"      --async          do not wait for replies: a message "
		"counts once written\n"
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
		"                       epoll (default auto)\n"
		"  -h, --help           show this help\n"
		"\n" TOOL_TLS_USAGE "\n"
		"Output (default): one line per message: index, MSH-10, "
		"verdict, MSA-1, MSA-3\n"
		"text (quoted), latency; then a summary line on stderr.\n"
		"\n"
		"Exit status: 0 every message accepted (AA/CA); 1 any "
		"application error or\n"
		"reject (AE/AR/CE/CR); 2 any transport failure, timeout, "
		"invalid ACK or wrong\n"
		"control id; 64 bad usage; 65 no message in the input; 66 an "
		"input file cannot\n"
		"be read.\n");
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	enum { OPT_RAW = 256, OPT_ASYNC, OPT_PRINT_ACK, OPT_JSON, OPT_KEEP };
	static const struct option longopts[] = {
	    {"connections", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"raw", no_argument, NULL, OPT_RAW},
	    {"async", no_argument, NULL, OPT_ASYNC},
	    {"print-ack", no_argument, NULL, OPT_PRINT_ACK},
	    {"keep-bytes", no_argument, NULL, OPT_KEEP},
	    {"quiet", no_argument, NULL, 'q'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"help", no_argument, NULL, 'h'},
	    TOOL_CLIENT_LONGOPTS,
	    {NULL, 0, NULL, 0},
	};
	memset(o, 0, sizeof(*o));
	tool_tls_init(&o->tls);
	o->connections = 1;
	o->timeout_ms = 60000;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":c:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->connections = (uint32_t)tool_arg_u64(
			    prog, optarg, 1, 1024,
			    "--connections wants 1..1024");
			break;
		case 't':
			o->timeout_ms = (int64_t)tool_arg_u64(
			    prog, optarg, 1, 86400000,
			    "--timeout wants milliseconds 1..86400000");
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
		case OPT_JSON:
			o->json = true;
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
	if (argc - optind < 2)
		tool_usage(prog, "HOST and PORT are required");
	o->host = argv[optind];
	if (tool_parse_port(argv[optind + 1], false, &o->port) != 0)
		tool_usage(prog, "PORT wants 1..65535, got '%s'",
			   argv[optind + 1]);
	o->files = argv + optind + 2;
	o->nfiles = argc - optind - 2;
	if (o->quiet && o->json)
		tool_usage(prog, "--quiet and --json exclude each other");
}

/* What happened to one message, ready to print. */
struct outcome {
	int cls; /* 0 accepted / written / raw reply, 1 AE/AR, 2 failure */
	const char *verdict;
	struct mllp_str code;
	struct mllp_str text;
	uint64_t latency_us;
	bool has_latency;
	char error[256];
	const unsigned char *reply;
	size_t reply_len;
};

static int verdict_class(enum mllp_verdict v)
{
	switch (v) {
	case MLLP_APPLICATION_ACCEPT:
		return 0;
	case MLLP_APPLICATION_ERROR:
	case MLLP_APPLICATION_REJECT:
		return 1;
	default:
		return 2;
	}
}

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
	oc->cls = verdict_class(v);
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
	if (o->raw) {
		oc->verdict = "raw";
		return;
	}
	if (msg->batch) {
		judge_batch_reply(oc);
		return;
	}
	if (!r->has_verdict) {
		oc->cls = 2;
		oc->verdict = "error";
		snprintf(oc->error, sizeof(oc->error), "reply not verified");
		return;
	}
	oc->verdict = mllp_verdict_name(r->verdict);
	oc->cls = verdict_class(r->verdict);
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

static int send_all(const struct opts *op, const struct tool_msgs *mp);

int main(int argc, char **argv)
{
	struct opts o;
	parse_args(argc, argv, &o);
	if (o.json)
		setvbuf(stdout, NULL, _IOLBF, 0); /* one object per line, now */

	/* Read and split every input before connecting. */
	static const char *stdin_only[] = {"-"};
	const char *const *files =
	    o.nfiles ? (const char *const *)o.files : stdin_only;
	int nfiles = o.nfiles ? o.nfiles : 1;
	struct tool_buf *bufs = calloc((size_t)nfiles, sizeof(*bufs));
	struct tool_msgs msgs = {0};
	int status = 0;
	if (!bufs) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return TOOL_EXIT_FAIL;
	}
	for (int i = 0; i < nfiles; i++) {
		int rc = tool_read_file(files[i], &bufs[i]);
		if (rc != 0) {
			fprintf(stderr, "%s: cannot read %s: %s\n", prog,
				files[i], strerror(-rc));
			status = TOOL_EXIT_NOINPUT;
			goto out;
		}
		size_t junk = 0;
		if (tool_split(bufs[i].data, bufs[i].len, o.keep_bytes, &msgs,
			       &junk) != 0) {
			fprintf(stderr, "%s: out of memory\n", prog);
			status = TOOL_EXIT_FAIL;
			goto out;
		}
		if (junk && !o.quiet)
			fprintf(stderr,
				"%s: %s: %zu bytes outside MLLP frames "
				"ignored\n",
				prog, files[i], junk);
	}
	if (msgs.n == 0) {
		fprintf(stderr, "%s: no message in the input\n", prog);
		status = 65;
		goto out;
	}

	status = send_all(&o, &msgs);
out:
	tool_msgs_free(&msgs);
	for (int i = 0; i < nfiles; i++)
		tool_buf_free(&bufs[i]);
	free(bufs);
	return status;
}

/* Send every message through a pool and report each outcome in input
 * order; returns the exit status. */
static int send_all(const struct opts *op, const struct tool_msgs *mp)
{
	const struct opts o = *op;
	const struct tool_msgs msgs = *mp;
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.conn.reply_timeout = o.timeout_ms;
	cfg.max_reply = MLLP_DEFAULT_MAX_FRAME;
	cfg.backend = o.backend;
	cfg.conn.tls = &o.tls; /* read by add_endpoint; off unless --tls */
	if (o.quiet)
		cfg.log = drop_log;
	struct mllp_error err;
	struct mllp_pool *pool = NULL;
	int rc = mllp_pool_create(&cfg, &pool, &err);
	if (rc != 0) {
		char buf[256];
		mllp_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s: %s\n", prog, buf);
		return TOOL_EXIT_FAIL;
	}
	uint32_t ep;
	rc = mllp_pool_add_endpoint(pool, o.host, o.port, o.connections, NULL,
				    &ep, &err);
	if (rc != 0) {
		char buf[256];
		mllp_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s: %s: %s\n", prog, o.host, buf);
		mllp_pool_destroy(pool);
		return TOOL_EXIT_FAIL;
	}

	/* A window of messages in flight; results are reported in input
	 * order as they complete. */
	size_t window = (size_t)o.connections * 8;
	struct mllp_future **fut = calloc(msgs.n, sizeof(*fut));
	struct mllp_error *serr = calloc(msgs.n, sizeof(*serr));
	if (!fut || !serr) {
		fprintf(stderr, "%s: out of memory\n", prog);
		free(fut);
		free(serr);
		mllp_pool_destroy(pool);
		return TOOL_EXIT_FAIL;
	}
	size_t counts[3] = {0, 0, 0};
	size_t app_err = 0, app_rej = 0;
	int worst = 0;
	size_t next = 0; /* next message to report */
	for (size_t i = 0; i <= msgs.n; i++) {
		while (next < i && (i - next >= window || i == msgs.n)) {
			const struct tool_msg *m = &msgs.v[next];
			struct outcome oc;
			memset(&oc, 0, sizeof(oc));
			if (fut[next]) {
				mllp_future_wait(fut[next], MLLP_INFINITE);
				judge(&o, m, mllp_future_result(fut[next]),
				      &oc);
			} else {
				oc.cls = 2;
				oc.verdict = "error";
				mllp_error_format(&serr[next], oc.error,
						  sizeof(oc.error));
			}
			struct mllp_hl7_msg hm;
			struct mllp_str id = {NULL, 0};
			if (!m->batch &&
			    mllp_hl7_parse(&hm, m->data, m->len) == 0)
				id = hm.control_id;
			print_outcome(&o, next + 1, id, &oc);
			counts[oc.cls]++;
			if (oc.cls == 1 && strstr(oc.verdict, "reject"))
				app_rej++;
			else if (oc.cls == 1)
				app_err++;
			if (oc.cls > worst)
				worst = oc.cls;
			mllp_future_free(fut[next]);
			fut[next] = NULL;
			next++;
		}
		if (i == msgs.n)
			break;
		const struct tool_msg *m = &msgs.v[i];
		struct mllp_send_options so;
		mllp_send_options_init(&so);
		so.kind =
		    o.raw || m->batch ? MLLP_PAYLOAD_RAW : MLLP_PAYLOAD_HL7;
		so.async = o.async;
		so.block = true;
		so.block_timeout = MLLP_INFINITE;
		so.borrow_payload = true; /* bufs outlive the pool */
		if (mllp_pool_send(pool, ep, m->data, m->len, &so, &fut[i],
				   &serr[i]) != 0)
			fut[i] = NULL;
	}
	fflush(stdout);
	mllp_pool_destroy(pool);
	if (!o.quiet && !o.json)
		fprintf(stderr,
			"%s: %zu message%s: %zu accepted, %zu application "
			"error%s, %zu reject%s, %zu failed\n",
			prog, msgs.n, msgs.n == 1 ? "" : "s", counts[0],
			app_err, app_err == 1 ? "" : "s", app_rej,
			app_rej == 1 ? "" : "s", counts[2]);
	free(fut);
	free(serr);
	return worst;
}

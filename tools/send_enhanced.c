/* mllp-send's enhanced acknowledgement mode: see send_enhanced.h. */
#include "send_enhanced.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* MSH-15 and MSH-16 set to AL in a copy of m when both are empty; false
 * when no memory. */
static bool rewrite_one(struct tool_msg *m, struct send_enh_store *st)
{
	struct mllp_hl7_msg h;
	if (m->batch || mllp_hl7_parse(&h, m->data, m->len) != 0 ||
	    mllp_hl7_is_enhanced_mode(&h))
		return true;
	/* MSH fields after MSH-1: sep-separated pieces, "MSH" first; piece
	 * k is MSH-(k+1). */
	const char *msh = h.msh.ptr;
	size_t mlen = h.msh.len;
	char sep = h.delims.field;
	size_t pieces = 1;
	for (size_t i = 0; i < mlen; i++)
		pieces += msh[i] == sep;
	/* up to MSH-14 kept (the separator before piece k is the k-th),
	 * then |AL|AL, then the rest from MSH-17 on */
	size_t cut = mlen, seen = 0;
	for (size_t i = 0; i < mlen; i++)
		if (msh[i] == sep && ++seen == 14) {
			cut = i;
			break;
		}
	size_t pad = pieces < 14 ? 14 - pieces : 0;
	const char *rest = msh + mlen; /* after MSH-16 */
	seen = 0;
	for (size_t i = 0; i < mlen; i++)
		if (msh[i] == sep && ++seen == 16) {
			rest = msh + i;
			break;
		}
	size_t head = (size_t)(msh - (const char *)m->data) + cut;
	size_t tail = m->len - (size_t)(rest - (const char *)m->data);
	size_t len = head + pad + 6 + tail;
	unsigned char *b = malloc(len + 1);
	unsigned char **nb = realloc(st->bufs, (st->n + 1) * sizeof(*nb));
	if (!b || !nb) {
		free(b);
		if (nb)
			st->bufs = nb;
		return false;
	}
	st->bufs = nb;
	st->bufs[st->n++] = b;
	memcpy(b, m->data, head);
	memset(b + head, (unsigned char)sep, pad);
	size_t o = head + pad;
	b[o++] = (unsigned char)sep;
	memcpy(b + o, "AL", 2);
	o += 2;
	b[o++] = (unsigned char)sep;
	memcpy(b + o, "AL", 2);
	o += 2;
	memcpy(b + o, rest, tail);
	m->data = b;
	m->len = len;
	return true;
}

int send_enh_rewrite(const char *prog, struct tool_msgs *msgs,
		     struct send_enh_store *st)
{
	for (size_t i = 0; i < msgs->n; i++)
		if (!rewrite_one(&msgs->v[i], st)) {
			fprintf(stderr, "%s: out of memory\n", prog);
			return TOOL_EXIT_FAIL;
		}
	return 0;
}

void send_enh_store_free(struct send_enh_store *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->bufs[i]);
	free(st->bufs);
	st->bufs = NULL;
	st->n = 0;
}

int send_enh_listen(const char *prog, struct mllp_pool *pool, const char *spec,
		    int64_t timeout_ms, enum mllp_backend_kind backend,
		    bool quiet)
{
	char addr[256] = "0.0.0.0";
	const char *port = spec;
	const char *colon = strrchr(spec, ':');
	if (colon) {
		size_t n = (size_t)(colon - spec);
		if (n >= sizeof(addr))
			n = sizeof(addr) - 1;
		if (n > 2 && spec[0] == '[' && spec[n - 1] == ']')
			snprintf(addr, sizeof(addr), "%.*s", (int)(n - 2),
				 spec + 1);
		else
			snprintf(addr, sizeof(addr), "%.*s", (int)n, spec);
		port = colon + 1;
	}
	struct mllp_ack_listen_config lc;
	mllp_ack_listen_config_init(&lc);
	lc.address = addr;
	lc.port = tool_arg_port(prog, port, true);
	lc.application_ack_timeout_ms = timeout_ms;
	lc.backend = backend;
	struct mllp_error err;
	if (mllp_pool_listen_acks(pool, &lc, &err) != 0) {
		char buf[256];
		mllp_error_format(&err, buf, sizeof(buf));
		fprintf(stderr, "%s: --ack-listen %s: %s\n", prog, spec, buf);
		return TOOL_EXIT_FAIL;
	}
	if (!quiet)
		fprintf(stderr,
			"%s: listening for application acknowledgements on "
			"%s:%u\n",
			prog, addr, (unsigned)mllp_pool_ack_port(pool));
	return 0;
}

int send_enh_verdict_class(enum mllp_verdict v)
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

static int cls_of(const struct mllp_result *r)
{
	if (r->status != 0)
		return 2;
	return r->has_verdict ? send_enh_verdict_class(r->verdict) : 0;
}

static void print_json(size_t index, struct mllp_str id, const char *verdict,
		       const struct mllp_result *r, const char *error)
{
	printf("{\"index\":%zu,\"stage\":\"application\",\"control_id\":",
	       index);
	if (id.len)
		tool_json_str(stdout, id.ptr, id.len);
	else
		fputs("null", stdout);
	printf(",\"verdict\":\"%s\",\"ack_code\":", verdict);
	if (r->ack.code.len)
		tool_json_str(stdout, r->ack.code.ptr, r->ack.code.len);
	else
		fputs("null", stdout);
	fputs(",\"text\":", stdout);
	if (r->ack.text.len)
		tool_json_str(stdout, r->ack.text.ptr, r->ack.text.len);
	else
		fputs("null", stdout);
	if (r->reply)
		printf(",\"latency_us\":%" PRIu64, r->latency_us);
	else
		fputs(",\"latency_us\":null", stdout);
	fputs(",\"error\":", stdout);
	if (error[0])
		tool_json_str(stdout, error, strlen(error));
	else
		fputs("null", stdout);
	fputs("}\n", stdout);
}

void send_enh_report(bool quiet, bool json, size_t index, struct mllp_str id,
		     struct mllp_future *f, struct send_enh_tally *t,
		     int *worst)
{
	if (!f || !mllp_future_has_application(f))
		return;
	mllp_future_wait_application(f, MLLP_INFINITE);
	const struct mllp_result *r = mllp_future_application_result(f);
	int cls = cls_of(r);
	t->counts[cls]++;
	t->reported++;
	if (cls > *worst)
		*worst = cls;
	if (quiet)
		return;
	const char *verdict = r->status != 0   ? "error"
			      : r->has_verdict ? mllp_verdict_name(r->verdict)
					       : "no_error_reported";
	char error[256] = "";
	if (r->status != 0)
		mllp_error_format(&r->error, error, sizeof(error));
	else if (cls != 0)
		snprintf(error, sizeof(error), "%s", r->why);
	if (json) {
		print_json(index, id, verdict, r, error);
		return;
	}
	printf("%zu %.*s application %s %.*s \"%.*s\"", index,
	       id.len ? (int)id.len : 1, id.len ? id.ptr : "-", verdict,
	       r->ack.code.len ? (int)r->ack.code.len : 1,
	       r->ack.code.len ? r->ack.code.ptr : "-", (int)r->ack.text.len,
	       r->ack.text.ptr ? r->ack.text.ptr : "");
	if (r->reply)
		printf(" %" PRIu64 ".%03" PRIu64 "ms", r->latency_us / 1000,
		       r->latency_us % 1000);
	else
		printf(" -");
	if (error[0])
		printf(" (%s)", error);
	putchar('\n');
}

const char *send_enh_no_accept(const void *data, size_t len)
{
	struct mllp_hl7_msg h;
	if (mllp_hl7_parse(&h, data, len) != 0)
		return NULL;
	if (mllp_str_eq(h.accept_ack_type, "NE"))
		return "NE";
	if (mllp_str_eq(h.accept_ack_type, "ER"))
		return "ER";
	return NULL;
}

void send_enh_summary_ok(size_t ok, size_t no_accept, const char *ok_word)
{
	fprintf(stderr, "%zu %s", ok - no_accept, ok_word);
	if (no_accept)
		fprintf(stderr,
			", %zu written without an accept ACK (MSH-15 NE/ER)",
			no_accept);
}

void send_enh_summary(const char *prog, bool quiet,
		      const struct send_enh_tally *t)
{
	if (quiet || t->reported == 0)
		return;
	fprintf(stderr,
		"%s: application stage: %zu accepted, %zu errors or rejects, "
		"%zu failed\n",
		prog, t->counts[0], t->counts[1], t->counts[2]);
}

bool send_enh_option(const char *prog, int c, const char *arg,
		     struct send_enh_opts *e)
{
	switch (c) {
	case SEND_ENH_OPT_ENHANCED:
		e->enhanced = true;
		break;
	case SEND_ENH_OPT_LISTEN:
		e->listen = arg;
		break;
	case SEND_ENH_OPT_TIMEOUT:
		e->timeout_ms = (int64_t)tool_arg_u64(
		    prog, arg, 1, 86400000, "--app-timeout wants 1..86400000");
		break;
	default:
		return false;
	}
	return true;
}

void send_enh_check(const char *prog, const struct send_enh_opts *e, bool raw,
		    bool async)
{
	if ((e->enhanced || e->listen) && raw)
		tool_usage(prog, "--enhanced and --ack-listen exclude --raw");
	if (e->listen && async)
		tool_usage(prog, "--ack-listen excludes --async");
}

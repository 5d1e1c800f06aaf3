/* Prometheus text exposition (format 0.0.4): the writer, the options, and
 * the receiver's and the ACK dispatcher's families. The pool's families
 * are in metrics_pool.c. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/metrics.h>

#include "metrics_writer.h"
#include "reserved.h"

/* ---- the writer --------------------------------------------------------- */

static void put(struct mllpi_mw *w, const char *s, size_t n)
{
	/* Copy only while the whole text still fits with its NUL: once a
	 * piece does not, no later piece can (len only grows). */
	if (w->len + n < w->cap)
		memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void puts_(struct mllpi_mw *w, const char *s)
{
	put(w, s, strlen(s));
}

void mllpi_mw_u64(uint64_t v, char *out)
{
	char tmp[21];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = 0;
}

void mllpi_mw_seconds(uint64_t us, char *out)
{
	mllpi_mw_u64(us / 1000000, out);
	uint64_t frac = us % 1000000;
	if (frac == 0)
		return;
	size_t n = strlen(out);
	out[n++] = '.';
	for (uint64_t d = 100000; d > 0 && frac > 0; d /= 10) {
		out[n++] = (char)('0' + frac / d);
		frac %= d;
	}
	out[n] = 0;
}

/* A label value: backslash, double quote and line feed escaped. */
static void put_escaped(struct mllpi_mw *w, const char *s)
{
	const char *run = s;
	for (; *s; s++) {
		const char *esc = *s == '\\'   ? "\\\\"
				  : *s == '"'  ? "\\\""
				  : *s == '\n' ? "\\n"
					       : NULL;
		if (!esc)
			continue;
		put(w, run, (size_t)(s - run));
		put(w, esc, 2);
		run = s + 1;
	}
	put(w, run, (size_t)(s - run));
}

static bool name_ok(const char *s, bool colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_' || (colon && c == ':');
		if (!alpha && (p == s || c < '0' || c > '9'))
			return false;
	}
	return true;
}

/* Label names the families use themselves. */
static bool reserved_label(const char *n)
{
	static const char *const used[] = {"backend",	  "code", "endpoint",
					   "endpoint_id", "le",	  "reason",
					   "verdict"};
	if (n[0] == '_' && n[1] == '_')
		return true;
	for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++)
		if (strcmp(n, used[i]) == 0)
			return true;
	return false;
}

int mllpi_mw_init(struct mllpi_mw *w, char *buf, size_t cap,
		  const struct mllp_metrics_options *o)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = buf ? cap : 0;
	if (o && MLLPI_CHECK_RESERVED(o, "mllp_metrics_options", MLLP_CTX_NONE,
				      NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	w->prefix = o && o->prefix ? o->prefix : "mllp";
	if (!name_ok(w->prefix, true))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (!o || o->nlabels == 0)
		return 0;
	if (!o->labels)
		return MLLP_ERR_INVALID_ARGUMENT;
	for (size_t i = 0; i < o->nlabels; i++) {
		const struct mllp_metrics_label *l = &o->labels[i];
		if (!name_ok(l->name, false) || reserved_label(l->name) ||
		    !l->value)
			return MLLP_ERR_INVALID_ARGUMENT;
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->labels[j].name, l->name) == 0)
				return MLLP_ERR_INVALID_ARGUMENT;
	}
	w->labels = o->labels;
	w->nlabels = o->nlabels;
	return 0;
}

int mllpi_mw_end(struct mllpi_mw *w, int rc)
{
	if (rc == 0 && w->len > INT_MAX)
		rc = MLLP_ERR_BUFFER_TOO_SMALL;
	if (rc == 0 && w->len < w->cap) {
		w->buf[w->len] = 0;
		return (int)w->len;
	}
	if (w->cap > 0)
		w->buf[0] = 0;
	return rc < 0 ? rc : (int)w->len;
}

void mllpi_mw_family(struct mllpi_mw *w, const char *name, const char *type,
		     const char *help)
{
	w->fam = name;
	w->type = type;
	w->help = help;
}

static void put_name(struct mllpi_mw *w)
{
	puts_(w, w->prefix);
	put(w, "_", 1);
	puts_(w, w->fam);
}

void mllpi_mw_sample(struct mllpi_mw *w, const char *suffix,
		     const struct mllpi_kv *kv, size_t nkv, const char *value,
		     uint64_t v)
{
	if (w->written_fam != w->fam) {
		w->written_fam = w->fam;
		puts_(w, "# HELP ");
		put_name(w);
		put(w, " ", 1);
		puts_(w, w->help);
		puts_(w, "\n# TYPE ");
		put_name(w);
		put(w, " ", 1);
		puts_(w, w->type);
		put(w, "\n", 1);
	}
	put_name(w);
	if (suffix)
		puts_(w, suffix);
	size_t n = w->nlabels + nkv;
	for (size_t i = 0; i < n; i++) {
		bool mine = i >= w->nlabels;
		put(w, i == 0 ? "{" : ",", 1);
		puts_(w, mine ? kv[i - w->nlabels].k : w->labels[i].name);
		put(w, "=\"", 2);
		put_escaped(w,
			    mine ? kv[i - w->nlabels].v : w->labels[i].value);
		put(w, "\"", 1);
	}
	if (n)
		put(w, "}", 1);
	put(w, " ", 1);
	char num[21];
	if (!value) {
		mllpi_mw_u64(v, num);
		value = num;
	}
	puts_(w, value);
	put(w, "\n", 1);
}

void mllpi_mw_one(struct mllpi_mw *w, const char *name, const char *type,
		  const char *help, uint64_t v)
{
	mllpi_mw_family(w, name, type, help);
	mllpi_mw_sample(w, NULL, NULL, 0, NULL, v);
}

void mllp_metrics_options_init(struct mllp_metrics_options *o)
{
	memset(o, 0, sizeof(*o));
	o->prefix = "mllp";
}

/* ---- the receiver -------------------------------------------------------- */

/* One family with one label of two values. */
static void two(struct mllpi_mw *w, const char *name, const char *help,
		const char *k, const char *v1, uint64_t n1, const char *v2,
		uint64_t n2)
{
	mllpi_mw_family(w, name, "counter", help);
	struct mllpi_kv kv = {k, v1};
	mllpi_mw_sample(w, NULL, &kv, 1, NULL, n1);
	if (v2) {
		kv.v = v2;
		mllpi_mw_sample(w, NULL, &kv, 1, NULL, n2);
	}
}

static void render_receiver(struct mllpi_mw *w,
			    const struct mllp_receiver_stats *s,
			    const char *backend)
{
	if (backend) {
		mllpi_mw_family(w, "receiver_info", "gauge",
				"The receiver's I/O backend (always 1).");
		struct mllpi_kv kv = {"backend", backend};
		mllpi_mw_sample(w, NULL, &kv, 1, NULL, 1);
	}
	mllpi_mw_one(w, "connections_accepted_total", "counter",
		     "Connections admitted.", s->connections_accepted);
	mllpi_mw_one(w, "connections_open", "gauge", "Connections open now.",
		     s->connections_active);
	mllpi_mw_family(w, "connections_refused_total", "counter",
			"Connections refused, by reason.");
	const struct {
		const char *reason;
		uint64_t n;
	} refused[] = {
	    {"allow_list", s->connections_refused_allow_list},
	    {"max_connections", s->connections_refused_max_connections},
	    {"tls_client_cert", s->connections_refused_tls_cert},
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		struct mllpi_kv kv = {"reason", refused[i].reason};
		mllpi_mw_sample(w, NULL, &kv, 1, NULL, refused[i].n);
	}
	two(w, "connections_closed_total",
	    "Connections the receiver closed, by reason (closes by the peer "
	    "and at stop not counted).",
	    "reason", "idle_timeout", s->connections_idle_timeout, "error",
	    s->connections_error);
	mllpi_mw_one(w, "connections_shed_total", "counter",
		     "Connections closed because the buffer budget was "
		     "exceeded (also counted as closed on error).",
		     s->connections_shed);
	mllpi_mw_one(w, "messages_received_total", "counter",
		     "Frames received, all kinds.", s->messages_received);
	mllpi_mw_one(w, "messages_hl7_received_total", "counter",
		     "Frames received that hold HL7 (start with MSH).",
		     s->messages_hl7);
	mllpi_mw_one(w, "replies_sent_total", "counter",
		     "Replies completely written.", s->replies_sent);
	mllpi_mw_one(w, "replies_pending", "gauge",
		     "Deferred replies not yet sent on open connections, now.",
		     s->replies_pending);
	mllpi_mw_one(w, "replies_after_close_total", "counter",
		     "Deferred replies completed after their connection had "
		     "closed (not sent).",
		     s->replies_after_close);
	mllpi_mw_one(w, "replies_abandoned_total", "counter",
		     "Deferred replies still unanswered when their connection "
		     "closed (reported through reply_abandoned).",
		     s->replies_abandoned);
	mllpi_mw_one(w, "connections_stop_unfinished_total", "counter",
		     "Connections closed by stop with replies not yet written "
		     "when stop_drain_ms passed.",
		     s->connections_stop_unfinished);
	mllpi_mw_one(w, "received_bytes_total", "counter",
		     "Bytes received from clients.", s->bytes_received);
	mllpi_mw_one(w, "sent_bytes_total", "counter", "Bytes sent to clients.",
		     s->bytes_sent);
	mllpi_mw_one(w, "junk_bytes_total", "counter",
		     "Bytes discarded outside frames.", s->junk_bytes);
	two(w, "frames_rejected_total",
	    "Frames rejected, by reason (the connection is closed).", "reason",
	    "too_big", s->frames_too_big, NULL, 0);
	mllpi_mw_one(w, "buffered_bytes", "gauge",
		     "Bytes held for open connections now (partial frames, "
		     "unsent replies).",
		     s->buffered_bytes);
	mllpi_mw_one(w, "buffered_bytes_peak", "gauge",
		     "Most bytes held for open connections so far.",
		     s->buffered_bytes_peak);
	mllpi_mw_one(w, "reads_paused_total", "counter",
		     "Times reading a connection was paused (reply backlog or "
		     "buffer budget).",
		     s->reads_paused);
	two(w, "log_lines_dropped_total", "Log lines left out, by reason.",
	    "reason", "rate_limit", s->log_lines_suppressed, "would_block",
	    s->log_lines_dropped);
	/* Always present (zero without TLS), so a query need not tell "no
	 * TLS" from "no handshake yet". Named receiver_ so that they never
	 * meet the pool's tls_handshakes_total on a page holding both.
	 * Resumed handshakes are a family of their own, not a label of
	 * handshakes_total: they are a part of it, not a sibling, and
	 * sum(receiver_tls_handshakes_total) stays the number of
	 * handshakes. */
	mllpi_mw_one(w, "receiver_tls_handshakes_total", "counter",
		     "TLS handshakes completed, full or resumed.",
		     s->tls_handshakes);
	mllpi_mw_one(w, "receiver_tls_handshakes_resumed_total", "counter",
		     "TLS handshakes that resumed a session.",
		     s->tls_handshakes_resumed);
	mllpi_mw_one(w, "receiver_tls_handshake_failures_total", "counter",
		     "TLS handshakes that failed (a refused client certificate "
		     "included) or timed out.",
		     s->tls_handshake_failures);
}

int mllp_metrics_render_receiver_stats(const struct mllp_receiver_stats *stats,
				       const char *backend, char *buf,
				       size_t cap,
				       const struct mllp_metrics_options *o)
{
	struct mllpi_mw w;
	int rc = mllpi_mw_init(&w, buf, cap, o);
	if (rc == 0 && (!stats || stats->size < sizeof(stats->size)))
		rc = MLLP_ERR_INVALID_ARGUMENT;
	if (rc == 0) {
		/* A caller's older (smaller) struct: the rest reads zero. */
		struct mllp_receiver_stats s;
		memset(&s, 0, sizeof(s));
		memcpy(&s, stats,
		       stats->size < sizeof(s) ? stats->size : sizeof(s));
		render_receiver(&w, &s, backend);
	}
	return mllpi_mw_end(&w, rc);
}

int mllp_metrics_render_receiver(const struct mllp_receiver *r, char *buf,
				 size_t cap,
				 const struct mllp_metrics_options *o)
{
	if (!r) {
		struct mllpi_mw w;
		mllpi_mw_init(&w, buf, cap, NULL);
		return mllpi_mw_end(&w, MLLP_ERR_INVALID_ARGUMENT);
	}
	struct mllp_receiver_stats s;
	mllp_receiver_stats_init(&s);
	mllp_receiver_get_stats(r, &s);
	return mllp_metrics_render_receiver_stats(&s, mllp_receiver_backend(r),
						  buf, cap, o);
}

int mllp_metrics_render_acks(const uint64_t counts[MLLP_ACK_CODE_COUNT],
			     char *buf, size_t cap,
			     const struct mllp_metrics_options *o)
{
	static const char *const codes[MLLP_ACK_CODE_COUNT] = {
	    "AA", "AE", "AR", "CA", "CE", "CR"};
	struct mllpi_mw w;
	int rc = mllpi_mw_init(&w, buf, cap, o);
	if (rc == 0 && !counts)
		rc = MLLP_ERR_INVALID_ARGUMENT;
	if (rc == 0) {
		mllpi_mw_family(&w, "acks_sent_total", "counter",
				"ACKs the dispatcher answered, by MSA-1 code.");
		for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++) {
			struct mllpi_kv kv = {"code", codes[i]};
			mllpi_mw_sample(&w, NULL, &kv, 1, NULL, counts[i]);
		}
	}
	return mllpi_mw_end(&w, rc);
}

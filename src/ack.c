/* Verifying HL7 acknowledgements and generating them.
 *
 * Verification reads the sent message's MSH only (for MSH-10) and the
 * reply's MSH delimiters, MSA and first ERR: no allocation, no copy, and
 * no formatting at all on the accept path. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mllp/ack.h>
#include <mllp/error.h>

#include "hl7_internal.h"
#include "reserved.h"

_Static_assert(MLLP_INVALID_ACK_MESSAGE + 1 == MLLP_VERDICT_COUNT,
	       "MLLP_VERDICT_COUNT counts enum mllp_verdict");

const char *mllp_verdict_name(enum mllp_verdict v)
{
	switch (v) {
	case MLLP_APPLICATION_ACCEPT:
		return "application_accept";
	case MLLP_APPLICATION_ERROR:
		return "application_error";
	case MLLP_APPLICATION_REJECT:
		return "application_reject";
	case MLLP_BAD_MESSAGE_CONTROL_ID:
		return "bad_message_control_id";
	case MLLP_BAD_ACK_CODE:
		return "bad_ack_code";
	case MLLP_INVALID_MESSAGE:
		return "invalid_message";
	case MLLP_INVALID_ACK_MESSAGE:
		return "invalid_ack_message";
	}
	return "unknown";
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void
mllpi_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}

/* printf precision for a view; views longer than INT_MAX are cut. */
static int mllpi_prec(struct mllp_str v)
{
	return v.len > 0x7fffffff ? 0x7fffffff : (int)v.len;
}

/* Read the reply: delimiters, MSA-1..3, first ERR. Returns false (with
 * *why written) when it is not an HL7 message with an MSA segment. */
static bool mllpi_ack_read(const void *ack, size_t ack_len,
			   struct mllp_ack *out, char *why, size_t why_cap)
{
	struct mllp_hl7_msg m;
	const char *reason, *p, *end, *e;
	bool have_msa = false;
	char fs;

	memset(out, 0, sizeof(*out));
	out->message.ptr = ack;
	out->message.len = ack_len;
	if (ack == NULL && ack_len > 0) {
		mllpi_why(why, why_cap, "Invalid ACK message: NULL buffer");
		return false;
	}
	if (mllpi_hl7_head(&m, ack, ack_len, &reason) != 0) {
		mllpi_why(why, why_cap, "Invalid ACK message: %s", reason);
		return false;
	}
	fs = m.delims.field;
	p = m.msh.ptr + m.msh.len;
	end = (const char *)ack + ack_len;
	while (p < end) {
		size_t n;

		if (*p == '\r' || *p == '\n') {
			p++;
			continue;
		}
		e = mllpi_find_eol(p, end);
		n = (size_t)(e - p);
		if (n >= 3 && (n == 3 || p[3] == fs)) {
			if (!have_msa && memcmp(p, "MSA", 3) == 0) {
				struct mllp_str *f[3] = {
				    &out->code, &out->control_id, &out->text};
				const char *q = p + 3;
				int i;

				for (i = 0; i < 3 && q < e; i++) {
					const char *s = q + 1;

					q = mllpi_find_byte(s, e, fs);
					f[i]->ptr = s;
					f[i]->len = (size_t)(q - s);
				}
				have_msa = true;
			} else if (out->err.ptr == NULL &&
				   memcmp(p, "ERR", 3) == 0) {
				out->err.ptr = p;
				out->err.len = n;
			}
			if (have_msa && out->err.ptr != NULL)
				break;
		}
		p = e;
	}
	if (!have_msa) {
		mllpi_why(why, why_cap, "Invalid ACK message: no MSA segment");
		return false;
	}
	return true;
}

/* The verdict for a readable reply: control id first, then the code, as
 * the reference does. cid_len > 0. */
static enum mllp_verdict mllpi_judge(const char *cid, size_t cid_len,
				     const struct mllp_ack *a, char *why,
				     size_t why_cap)
{
	const char *c = a->code.ptr;
	enum mllp_verdict v;
	const char *name;

	if (a->control_id.len != cid_len ||
	    memcmp(a->control_id.ptr, cid, cid_len) != 0) {
		struct mllp_str sent = {cid, cid_len};

		mllpi_why(why, why_cap,
			  "The message_control_id of the message %.*s does not "
			  "match the message_control_id of the ACK message "
			  "(%.*s).",
			  mllpi_prec(sent), cid, mllpi_prec(a->control_id),
			  a->control_id.ptr != NULL ? a->control_id.ptr : "");
		return MLLP_BAD_MESSAGE_CONTROL_ID;
	}
	if (a->code.len != 2 || (c[0] != 'A' && c[0] != 'C'))
		goto bad;
	switch (c[1]) {
	case 'A':
		if (why != NULL && why_cap > 0)
			why[0] = '\0';
		return MLLP_APPLICATION_ACCEPT;
	case 'E':
		v = MLLP_APPLICATION_ERROR;
		name = "application_error";
		break;
	case 'R':
		v = MLLP_APPLICATION_REJECT;
		name = "application_reject";
		break;
	default:
		goto bad;
	}
	if (a->text.len > 0)
		mllpi_why(why, why_cap, "The ACK reports %s (%c%c): %.*s", name,
			  c[0], c[1], mllpi_prec(a->text), a->text.ptr);
	else
		mllpi_why(why, why_cap, "The ACK reports %s (%c%c)", name, c[0],
			  c[1]);
	return v;
bad:
	mllpi_why(why, why_cap,
		  "The value %.*s is not a valid acknowledgment_code",
		  mllpi_prec(a->code), a->code.ptr != NULL ? a->code.ptr : "");
	return MLLP_BAD_ACK_CODE;
}

enum mllp_verdict mllp_ack_verify_id(const char *control_id,
				     size_t control_id_len, const void *ack,
				     size_t ack_len, struct mllp_ack *out,
				     char *why, size_t why_cap)
{
	struct mllp_ack local;

	if (out == NULL)
		out = &local;
	if (control_id == NULL || control_id_len == 0) {
		/* Still fill the record: the caller may want to log it. */
		mllpi_ack_read(ack, ack_len, out, NULL, 0);
		mllpi_why(why, why_cap,
			  "Invalid message: empty message control id (MSH-10)");
		return MLLP_INVALID_MESSAGE;
	}
	if (!mllpi_ack_read(ack, ack_len, out, why, why_cap))
		return MLLP_INVALID_ACK_MESSAGE;
	return mllpi_judge(control_id, control_id_len, out, why, why_cap);
}

enum mllp_verdict mllp_ack_verify(const void *msg, size_t msg_len,
				  const void *ack, size_t ack_len,
				  struct mllp_ack *out, char *why,
				  size_t why_cap)
{
	struct mllp_hl7_msg m;
	struct mllp_ack local;
	const char *reason = "NULL buffer";

	if (out == NULL)
		out = &local;
	if ((msg == NULL && msg_len > 0) ||
	    mllpi_hl7_parse(&m, msg, msg_len, &reason) != 0) {
		mllpi_ack_read(ack, ack_len, out, NULL, 0);
		mllpi_why(why, why_cap, "Invalid message: %s", reason);
		return MLLP_INVALID_MESSAGE;
	}
	return mllp_ack_verify_id(m.control_id.ptr, m.control_id.len, ack,
				  ack_len, out, why, why_cap);
}

void mllp_ack_options_init(struct mllp_ack_options *opts)
{
	if (opts == NULL)
		return;
	memset(opts, 0, sizeof(*opts));
	opts->code = "AA";
}

/* ---- building ---------------------------------------------------------- */

static const struct mllp_hl7_delims mllpi_default_delims = {
    '|', '^', '~', '\\', '&', 0,
};

/* An output cursor that counts what it cannot store. */
struct mllpi_out {
	char *buf;
	size_t cap;
	size_t len;
};

static void mllpi_put(struct mllpi_out *o, const void *p, size_t n)
{
	if (n > 0 && o->len <= o->cap && n <= o->cap - o->len)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

static void mllpi_putc(struct mllpi_out *o, char c)
{
	mllpi_put(o, &c, 1);
}

static void mllpi_puts(struct mllpi_out *o, const char *s)
{
	mllpi_put(o, s, strlen(s));
}

static void mllpi_putv(struct mllpi_out *o, struct mllp_str v)
{
	mllpi_put(o, v.ptr, v.len);
}

/* Plain text into an ST field: delimiters become escape sequences (\F\
 * \S\ \R\ \E\ \T\ \P\), CR and LF become \X0D\ and \X0A\. */
static void mllpi_put_text(struct mllpi_out *o, const char *s,
			   const struct mllp_hl7_delims *d)
{
	char esc[6];

	for (; *s != '\0'; s++) {
		char c = *s, k = 0;

		if (c == d->field)
			k = 'F';
		else if (c == d->component)
			k = 'S';
		else if (c == d->repetition)
			k = 'R';
		else if (c == d->escape)
			k = 'E';
		else if (c == d->subcomponent)
			k = 'T';
		else if (d->truncation != 0 && c == d->truncation)
			k = 'P';
		if (k != 0) {
			esc[0] = d->escape;
			esc[1] = k;
			esc[2] = d->escape;
			mllpi_put(o, esc, 3);
		} else if (c == '\r' || c == '\n') {
			esc[0] = d->escape;
			esc[1] = 'X';
			esc[2] = '0';
			esc[3] = c == '\r' ? 'D' : 'A';
			esc[4] = d->escape;
			mllpi_put(o, esc, 5);
		} else {
			mllpi_putc(o, c);
		}
	}
}

/* YYYYMMDDHHMMSS in UTC for t seconds since the epoch, clamped to years
 * 0000..9999. Civil-from-days after H. Hinnant; no time zone involved. */
static void mllpi_timestamp(int64_t t, char out[14])
{
	const int64_t lo = -62167219200LL; /* 0000-01-01T00:00:00Z */
	const int64_t hi = 253402300799LL; /* 9999-12-31T23:59:59Z */
	int64_t days, secs, era, doe, yoe, doy, mp, y, m, d;
	int64_t v[6];
	int i, w[6] = {4, 2, 2, 2, 2, 2}, pos = 0;

	if (t < lo)
		t = lo;
	if (t > hi)
		t = hi;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468;
	era = (days >= 0 ? days : days - 146096) / 146097;
	doe = days - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	v[0] = y;
	v[1] = m;
	v[2] = d;
	v[3] = secs / 3600;
	v[4] = secs / 60 % 60;
	v[5] = secs % 60;
	for (i = 0; i < 6; i++) {
		int j;

		for (j = w[i] - 1; j >= 0; j--) {
			out[pos + j] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
		pos += w[i];
	}
}

static bool mllpi_valid_code(const char *c)
{
	return (c[0] == 'A' || c[0] == 'C') &&
	       (c[1] == 'A' || c[1] == 'E' || c[1] == 'R') && c[2] == '\0';
}

/* True when s holds a segment terminator. */
static bool mllpi_has_eol(const char *s)
{
	return s != NULL && strpbrk(s, "\r\n") != NULL;
}

/* MSH-10 of the ACK. */
static void mllpi_put_ack_id(struct mllpi_out *o,
			     const struct mllp_ack_options *opts,
			     const struct mllp_hl7_msg *m)
{
	char num[24];
	int n;

	if (opts->keep_control_id && m != NULL && m->control_id.len > 0) {
		mllpi_putv(o, m->control_id);
	} else if (opts->control_id != NULL) {
		mllpi_puts(o, opts->control_id);
	} else {
		n = snprintf(num, sizeof(num), "ACK%llu",
			     (unsigned long long)opts->sequence);
		mllpi_put(o, num, (size_t)n);
	}
}

static void mllpi_put_err(struct mllpi_out *o,
			  const struct mllp_ack_options *opts, char fs)
{
	if (opts->err == NULL)
		return;
	mllpi_puts(o, "ERR");
	mllpi_putc(o, fs);
	mllpi_puts(o, opts->err);
	mllpi_putc(o, '\r');
}

/* The AR for a message we could not parse: default delimiters, minimal
 * MSH, MSA-2 = the ACK's own control id (there is no other), as the
 * reference does. */
static void mllpi_build_unparsable(struct mllpi_out *o,
				   const struct mllp_ack_options *opts,
				   const char *ts, const char *reason)
{
	mllpi_puts(o, "MSH|^~\\&|||||");
	mllpi_put(o, ts, 14);
	mllpi_puts(o, "||ACK|");
	mllpi_put_ack_id(o, opts, NULL);
	mllpi_puts(o, "|P|2.5\rMSA|AR|");
	mllpi_put_ack_id(o, opts, NULL);
	mllpi_puts(o, "|Message was not parsable as HL7. Reason: ");
	mllpi_puts(o, reason);
	mllpi_putc(o, '\r');
	mllpi_put_err(o, opts, '|');
}

/* Field idx (>= 3) of the output MSH, when it is copied from the message:
 * false for the fields the ACK sets itself. */
static bool mllpi_copied(unsigned idx)
{
	return idx != 7 && idx != 9 && idx != 10 && idx != 15 && idx != 16;
}

static void mllpi_build_ack(struct mllpi_out *o,
			    const struct mllp_ack_options *opts,
			    const struct mllp_hl7_msg *m, const char *code,
			    const char *ts)
{
	const struct mllp_hl7_delims *d = &m->delims;
	const char *msh_end = m->msh.ptr + m->msh.len;
	const char *enc = m->msh.ptr + 4;
	const char *q, *e;
	char fs = d->field;
	unsigned idx, last = 12;

	/* Pass 1: the last copied field past MSH-12 that is non-empty (the
	 * ACK does not end in empty fields). */
	q = mllpi_find_byte(enc, msh_end, fs);
	for (idx = 3; q < msh_end; idx++, q = e) {
		e = mllpi_find_byte(q + 1, msh_end, fs);
		if (idx > last && mllpi_copied(idx) && e > q + 1)
			last = idx;
	}

	mllpi_put(o, m->msh.ptr, 4); /* "MSH" and the field separator */
	mllpi_put(o, enc, d->truncation != 0 ? 5 : 4);
	q = mllpi_find_byte(enc, msh_end, fs);
	for (idx = 3; idx <= last; idx++) {
		struct mllp_str f = {NULL, 0};

		if (q < msh_end) {
			e = mllpi_find_byte(q + 1, msh_end, fs);
			f.ptr = q + 1;
			f.len = (size_t)(e - f.ptr);
			q = e;
		}
		mllpi_putc(o, fs);
		switch (idx) {
		case 3:
			mllpi_putv(o, m->receiving_app);
			break;
		case 4:
			mllpi_putv(o, m->receiving_facility);
			break;
		case 5:
			mllpi_putv(o, m->sending_app);
			break;
		case 6:
			mllpi_putv(o, m->sending_facility);
			break;
		case 7:
			mllpi_put(o, ts, 14);
			break;
		case 9:
			mllpi_puts(o, "ACK");
			mllpi_putc(o, d->component);
			mllpi_putv(o, m->trigger);
			mllpi_putc(o, d->component);
			mllpi_puts(o, "ACK");
			break;
		case 10:
			mllpi_put_ack_id(o, opts, m);
			break;
		case 15:
		case 16:
			/* An acknowledgement requests no acknowledgement. */
			break;
		default:
			mllpi_putv(o, f);
			break;
		}
	}
	mllpi_putc(o, '\r');

	mllpi_puts(o, "MSA");
	mllpi_putc(o, fs);
	mllpi_puts(o, code);
	mllpi_putc(o, fs);
	mllpi_putv(o, m->control_id);
	if (opts->text != NULL && opts->text[0] != '\0') {
		mllpi_putc(o, fs);
		mllpi_put_text(o, opts->text, d);
	}
	mllpi_putc(o, '\r');
	mllpi_put_err(o, opts, fs);
}

/* A caller-chosen control id must not contain a delimiter or terminator. */
static bool mllpi_id_ok(const char *id, const struct mllp_hl7_delims *d)
{
	for (; id != NULL && *id != '\0'; id++) {
		char c = *id;

		if (c == '\r' || c == '\n' || c == d->field ||
		    c == d->component || c == d->repetition || c == d->escape ||
		    c == d->subcomponent ||
		    (d->truncation != 0 && c == d->truncation))
			return false;
	}
	return true;
}

int mllp_ack_build(const void *msg, size_t msg_len,
		   const struct mllp_ack_options *opts, char *out, size_t cap,
		   size_t *out_len)
{
	struct mllp_ack_options defaults;
	struct mllpi_out o = {out, cap, 0};
	struct mllp_hl7_msg m;
	const char *code, *reason;
	char ts[14];
	int64_t now;
	int rc;

	if (out_len == NULL || (out == NULL && cap > 0) ||
	    (msg == NULL && msg_len > 0))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (opts == NULL) {
		mllp_ack_options_init(&defaults);
		opts = &defaults;
	}
	if (MLLPI_CHECK_RESERVED(opts, "mllp_ack_options", MLLP_CTX_NONE,
				 NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	code = opts->code != NULL ? opts->code : "AA";
	if (!mllpi_valid_code(code) || mllpi_has_eol(opts->err))
		return MLLP_ERR_INVALID_ARGUMENT;
	now = opts->now_s != 0 ? opts->now_s : (int64_t)time(NULL);
	mllpi_timestamp(now, ts);

	rc = mllpi_hl7_parse(&m, msg, msg_len, &reason);
	if (rc != 0) {
		if (!mllpi_id_ok(opts->control_id, &mllpi_default_delims))
			return MLLP_ERR_INVALID_ARGUMENT;
		mllpi_build_unparsable(&o, opts, ts, reason);
	} else {
		if (!mllpi_id_ok(opts->control_id, &m.delims))
			return MLLP_ERR_INVALID_ARGUMENT;
		mllpi_build_ack(&o, opts, &m, code, ts);
	}
	*out_len = o.len;
	return o.len > cap ? MLLP_ERR_BUFFER_TOO_SMALL : 0;
}

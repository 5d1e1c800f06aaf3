/* Zero-copy views into HL7 v2 messages.
 *
 * Everything here reads the caller's bytes in place and never reads past
 * data + len (the tests put inputs right before a guard page). Scanning is
 * done 16 bytes at a time with SSE2 where available, only over full blocks
 * that lie inside the buffer, and byte by byte for the tail.
 *
 * mllp_hl7_parse() looks at the MSH segment only: a 1 MiB message costs
 * the same as a 200-byte one. */
#include <stdbool.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/hl7.h>

#include "hl7_internal.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const struct mllp_hl7_delims mllpi_default_delims = {
    .field = '|',
    .component = '^',
    .repetition = '~',
    .escape = '\\',
    .subcomponent = '&',
    .truncation = 0,
};

const char *mllpi_find_eol(const char *p, const char *end)
{
#if defined(__SSE2__)
	const __m128i cr = _mm_set1_epi8('\r');
	const __m128i lf = _mm_set1_epi8('\n');

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));

		if (m != 0)
			return p + __builtin_ctz(m);
		p += 16;
	}
#endif
	for (; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			return p;
	}
	return end;
}

const char *mllpi_find_byte(const char *p, const char *end, char c)
{
#if defined(__SSE2__)
	const __m128i k = _mm_set1_epi8(c);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, k));

		if (m != 0)
			return p + __builtin_ctz(m);
		p += 16;
	}
#endif
	for (; p < end; p++) {
		if (*p == c)
			return p;
	}
	return end;
}

static inline bool mllpi_is_eol(char c)
{
	return c == '\r' || c == '\n';
}

/* A delimiter must be printable ASCII punctuation: not a letter, digit,
 * space, control character or non-ASCII byte. Locale-independent. */
static bool mllpi_is_delim(char ch)
{
	unsigned char c = (unsigned char)ch;

	if (c < 0x21 || c > 0x7e)
		return false;
	if (c >= '0' && c <= '9')
		return false;
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
		return false;
	return true;
}

/* A header segment (MSH, FHS, BHS) at p: delimiters from its first two
 * fields. *enc_end receives the end of the encoding characters. */
static int mllpi_header(const char *p, const char *end,
			struct mllp_hl7_delims *d, struct mllp_str *seg,
			const char **enc_end, const char **reason)
{
	const char *seg_end = mllpi_find_eol(p + 3, end);
	const char *enc, *e;
	size_t n, i, j;
	char fs;

	seg->ptr = p;
	seg->len = (size_t)(seg_end - p);
	if (seg_end == p + 3) {
		*reason = "no field separator after MSH";
		return MLLP_ERR_BAD_MSH;
	}
	fs = p[3];
	if (!mllpi_is_delim(fs)) {
		*reason = "field separator (MSH-1) is not a punctuation "
			  "character";
		return MLLP_ERR_BAD_MSH;
	}
	enc = p + 4;
	e = mllpi_find_byte(enc, seg_end, fs);
	n = (size_t)(e - enc);
	if (n < 4 || n > 5) {
		*reason = "MSH-2 does not hold 4 or 5 encoding characters";
		return MLLP_ERR_BAD_MSH;
	}
	for (i = 0; i < n; i++) {
		if (!mllpi_is_delim(enc[i]) || enc[i] == fs)
			goto clash;
		for (j = 0; j < i; j++) {
			if (enc[j] == enc[i])
				goto clash;
		}
	}
	d->field = fs;
	d->component = enc[0];
	d->repetition = enc[1];
	d->escape = enc[2];
	d->subcomponent = enc[3];
	d->truncation = n == 5 ? enc[4] : 0;
	*enc_end = e;
	return 0;
clash:
	*reason = "encoding characters (MSH-2) are not distinct punctuation "
		  "characters different from the field separator";
	return MLLP_ERR_BAD_MSH;
}

static int mllpi_head(struct mllp_hl7_msg *msg, const void *data, size_t len,
		      const char **enc_end, const char **reason)
{
	const char *p = data;
	const char *end;
	struct mllp_hl7_delims d;
	struct mllp_str seg;
	const char *e;

	memset(msg, 0, sizeof(*msg));
	msg->data = data;
	msg->len = len;
	msg->delims = mllpi_default_delims;
	if (len == 0) {
		*reason = "empty message";
		return MLLP_ERR_NOT_HL7;
	}
	end = p + len;
	while (p < end && mllpi_is_eol(*p))
		p++;
	if (p == end) {
		*reason = "empty message";
		return MLLP_ERR_NOT_HL7;
	}
	if (end - p < 3 || memcmp(p, "MSH", 3) != 0) {
		if (end - p >= 3 &&
		    (memcmp(p, "FHS", 3) == 0 || memcmp(p, "BHS", 3) == 0)) {
			/* A batch: no message, but its delimiters let the
			 * caller find the MSH segments inside. */
			if (mllpi_header(p, end, &d, &seg, &e, reason) == 0)
				msg->delims = d;
			*reason = "batch header (FHS/BHS) instead of MSH";
		} else {
			*reason = "no MSH segment at the start";
		}
		return MLLP_ERR_NOT_HL7;
	}
	return mllpi_header(p, end, &msg->delims, &msg->msh, enc_end, reason);
}

int mllpi_hl7_head(struct mllp_hl7_msg *msg, const void *data, size_t len,
		   const char **reason)
{
	const char *enc_end;

	return mllpi_head(msg, data, len, &enc_end, reason);
}

/* Piece n (1-based) of v split at sep. */
static bool mllpi_piece(struct mllp_str v, char sep, unsigned n,
			struct mllp_str *out)
{
	const char *p = v.ptr;
	const char *end = p + v.len;
	const char *e;

	if (v.len == 0) {
		/* An empty value has one empty piece. */
		if (n != 1)
			return false;
		*out = v;
		return true;
	}
	while (--n > 0) {
		p = mllpi_find_byte(p, end, sep);
		if (p == end)
			return false;
		p++;
	}
	e = mllpi_find_byte(p, end, sep);
	out->ptr = p;
	out->len = (size_t)(e - p);
	return true;
}

int mllpi_hl7_parse(struct mllp_hl7_msg *msg, const void *data, size_t len,
		    const char **reason)
{
	const char *q, *e, *end;
	unsigned idx;
	int rc;

	rc = mllpi_head(msg, data, len, &q, reason);
	if (rc != 0)
		return rc;
	/* q is at the separator ending MSH-2 (or the segment end). Fields
	 * past MSH-16 are not needed: stop there. */
	end = msg->msh.ptr + msg->msh.len;
	for (idx = 3; q < end && idx <= 16; idx++, q = e) {
		struct mllp_str f;

		f.ptr = q + 1;
		e = mllpi_find_byte(f.ptr, end, msg->delims.field);
		f.len = (size_t)(e - f.ptr);
		switch (idx) {
		case 3:
			msg->sending_app = f;
			break;
		case 4:
			msg->sending_facility = f;
			break;
		case 5:
			msg->receiving_app = f;
			break;
		case 6:
			msg->receiving_facility = f;
			break;
		case 7:
			msg->timestamp = f;
			break;
		case 9:
			msg->message_type = f;
			break;
		case 10:
			msg->control_id = f;
			break;
		case 11:
			msg->processing_id = f;
			break;
		case 12:
			msg->version = f;
			break;
		case 15:
			msg->accept_ack_type = f;
			break;
		case 16:
			msg->app_ack_type = f;
			break;
		default:
			break;
		}
	}
	if (msg->message_type.len > 0) {
		char cs = msg->delims.component;

		mllpi_piece(msg->message_type, cs, 1, &msg->type);
		mllpi_piece(msg->message_type, cs, 2, &msg->trigger);
		mllpi_piece(msg->message_type, cs, 3, &msg->structure);
	}
	return 0;
}

int mllp_hl7_parse(struct mllp_hl7_msg *msg, const void *data, size_t len)
{
	const char *reason;

	if (msg == NULL || (data == NULL && len > 0))
		return MLLP_ERR_INVALID_ARGUMENT;
	return mllpi_hl7_parse(msg, data, len, &reason);
}

bool mllp_hl7_is_enhanced_mode(const struct mllp_hl7_msg *msg)
{
	return msg != NULL &&
	       (msg->accept_ack_type.len > 0 || msg->app_ack_type.len > 0);
}

bool mllp_hl7_next_segment(const struct mllp_hl7_msg *msg, size_t *cursor,
			   struct mllp_str *seg)
{
	const char *p, *end, *e;

	if (msg == NULL || cursor == NULL || seg == NULL || msg->data == NULL ||
	    *cursor >= msg->len)
		return false;
	p = msg->data + *cursor;
	end = msg->data + msg->len;
	while (p < end && mllpi_is_eol(*p))
		p++;
	if (p == end) {
		*cursor = msg->len;
		return false;
	}
	e = mllpi_find_eol(p, end);
	seg->ptr = p;
	seg->len = (size_t)(e - p);
	*cursor = (size_t)(e - msg->data);
	return true;
}

int mllp_hl7_find_segment(const struct mllp_hl7_msg *msg, const char *id,
			  unsigned nth, struct mllp_str *seg)
{
	struct mllp_str s;
	size_t cursor = 0, n;

	if (msg == NULL || id == NULL || seg == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	n = strlen(id);
	if (nth == 0 || n == 0)
		return MLLP_ERR_NOT_FOUND;
	while (mllp_hl7_next_segment(msg, &cursor, &s)) {
		if (s.len < n || memcmp(s.ptr, id, n) != 0)
			continue;
		if (s.len > n && s.ptr[n] != msg->delims.field)
			continue;
		if (--nth == 0) {
			*seg = s;
			return 0;
		}
	}
	return MLLP_ERR_NOT_FOUND;
}

/* MSH and the batch headers FHS/BHS number their fields from the field
 * separator itself. */
static bool mllpi_is_header_seg(struct mllp_str seg, char fs)
{
	return seg.len >= 4 && seg.ptr[3] == fs &&
	       (memcmp(seg.ptr, "MSH", 3) == 0 ||
		memcmp(seg.ptr, "FHS", 3) == 0 ||
		memcmp(seg.ptr, "BHS", 3) == 0);
}

int mllp_hl7_field(const struct mllp_hl7_msg *msg, struct mllp_str seg,
		   unsigned index, struct mllp_str *out)
{
	const char *p, *end, *e;
	unsigned k;
	char fs;

	if (msg == NULL || out == NULL || (seg.ptr == NULL && seg.len > 0))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (seg.len == 0)
		return MLLP_ERR_NOT_FOUND;
	fs = msg->delims.field;
	p = seg.ptr;
	end = p + seg.len;
	k = index;
	if (index > 0 && mllpi_is_header_seg(seg, fs)) {
		if (index == 1) {
			out->ptr = p + 3;
			out->len = 1;
			return 0;
		}
		k = index - 1;
	}
	for (; k > 0; k--) {
		p = mllpi_find_byte(p, end, fs);
		if (p == end)
			return MLLP_ERR_NOT_FOUND;
		p++;
	}
	e = mllpi_find_byte(p, end, fs);
	out->ptr = p;
	out->len = (size_t)(e - p);
	return 0;
}

int mllp_hl7_component(const struct mllp_hl7_msg *msg, struct mllp_str field,
		       unsigned rep, unsigned comp, unsigned sub,
		       struct mllp_str *out)
{
	struct mllp_str v = field;

	if (msg == NULL || out == NULL || (field.ptr == NULL && field.len > 0))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (rep > 0 && !mllpi_piece(v, msg->delims.repetition, rep, &v))
		return MLLP_ERR_NOT_FOUND;
	if (comp > 0 && !mllpi_piece(v, msg->delims.component, comp, &v))
		return MLLP_ERR_NOT_FOUND;
	if (sub > 0 && !mllpi_piece(v, msg->delims.subcomponent, sub, &v))
		return MLLP_ERR_NOT_FOUND;
	*out = v;
	return 0;
}

bool mllp_str_eq(struct mllp_str v, const char *s)
{
	size_t n;

	if (s == NULL)
		return v.len == 0;
	n = strlen(s);
	return n == v.len && (n == 0 || memcmp(v.ptr, s, n) == 0);
}

/* path "SEG-F[.C[.S]]": the segment id and the field, component and
 * subcomponent numbers (0: not given). False when it is not of that
 * shape. */
static bool parse_path(const char *s, char seg[4], unsigned num[3])
{
	for (int i = 0; i < 3; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
			return false;
		seg[i] = ch;
	}
	seg[3] = 0;
	s += 3;
	num[0] = num[1] = num[2] = 0;
	for (int part = 0; part < 3; part++) {
		if (*s != (part == 0 ? '-' : '.'))
			return false;
		s++;
		unsigned v = 0;
		int digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 5) {
			v = v * 10 + (unsigned)(*s - '0');
			s++;
			digits++;
		}
		if (v == 0 || (*s >= '0' && *s <= '9'))
			return false;
		num[part] = v;
		if (*s == 0)
			return true;
	}
	return false;
}

int mllp_hl7_value(const struct mllp_hl7_msg *msg, const char *path,
		   struct mllp_str *out)
{
	char seg[4];
	unsigned num[3];
	struct mllp_str s, f;

	if (msg == NULL || path == NULL || out == NULL ||
	    !parse_path(path, seg, num))
		return MLLP_ERR_INVALID_ARGUMENT;
	if (mllp_hl7_find_segment(msg, seg, 1, &s) != 0 ||
	    mllp_hl7_field(msg, s, num[0], &f) != 0)
		return MLLP_ERR_NOT_FOUND;
	return mllp_hl7_component(msg, f, 1, num[1], num[2], out);
}

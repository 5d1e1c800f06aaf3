/* libFuzzer target: HL7 views, ACK verification and ACK generation.
 *
 * The input is split at its first 0x00 byte into a "message" and an "ack";
 * without a 0x00 both are the whole input (the corpus seeds have none).
 * Each part is copied into an exact-size heap block, so ASan sees any
 * over-read. Invariants checked:
 *
 *   - parse, segment iteration and field/component access never crash;
 *   - verify never crashes, gives one of the seven verdicts, writes a
 *     NUL-terminated `why` within its capacity, and agrees with verify_id
 *     run on the message's MSH-10; an unparsable message or an empty
 *     MSH-10 gives invalid_message;
 *   - build succeeds on any input (an AR when the message does not parse)
 *     with a buffer of the size a size query returned, and the result
 *     parses as HL7 with an MSA;
 *   - an ACK built for a parseable message with a non-empty MSH-10
 *     verifies back to its code's verdict (AA -> application_accept),
 *     whatever text or ERR it carries; a plain AA ACK gives
 *     application_accept; for an unparsable message MSA-1 is AR.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/hl7.h>

#include "fuzz.h"

static const char *const codes[6] = {"AA", "AE", "AR", "CA", "CE", "CR"};

static enum mllp_verdict verdict_of_code(const char *c)
{
	return c[1] == 'A'   ? MLLP_APPLICATION_ACCEPT
	       : c[1] == 'E' ? MLLP_APPLICATION_ERROR
			     : MLLP_APPLICATION_REJECT;
}

static char *dup_exact(const uint8_t *p, size_t n)
{
	char *d = malloc(n > 0 ? n : 1);

	CHECK(d != NULL);
	if (n > 0)
		memcpy(d, p, n);
	return d;
}

static void check_why(const char *why, size_t cap)
{
	CHECK(memchr(why, '\0', cap) != NULL);
}

static void walk_views(const struct mllp_hl7_msg *m)
{
	struct mllp_str seg, f, c;
	size_t cursor = 0;
	unsigned nseg = 0, i;

	while (mllp_hl7_next_segment(m, &cursor, &seg) && nseg++ < 64) {
		CHECK(seg.len > 0);
		CHECK(seg.ptr >= m->data &&
		      seg.ptr + seg.len <= m->data + m->len);
		for (i = 0; i < 8; i++) {
			if (mllp_hl7_field(m, seg, i, &f) != 0)
				break;
			CHECK(f.ptr >= seg.ptr &&
			      f.ptr + f.len <= seg.ptr + seg.len);
			if (mllp_hl7_component(m, f, 1, 2, 1, &c) == 0)
				CHECK(c.ptr >= f.ptr &&
				      c.ptr + c.len <= f.ptr + f.len);
			(void)mllp_hl7_component(m, f, 0, 3, 0, &c);
			(void)mllp_hl7_component(m, f, 2, 0, 2, &c);
		}
	}
	(void)mllp_hl7_find_segment(m, "MSA", 1, &seg);
	(void)mllp_hl7_find_segment(m, "MSH", 2, &seg);
	(void)mllp_hl7_is_enhanced_mode(m);
}

/* Build with the given options and check the result; returns the ACK
 * (malloc'd, exact size) and its length. */
static char *build_checked(const char *msg, size_t msg_len,
			   const struct mllp_ack_options *o, size_t *len)
{
	size_t need = 0, got = 0;
	struct mllp_hl7_msg a;
	struct mllp_str msa;
	char *out;

	CHECK(mllp_ack_build(msg, msg_len, o, NULL, 0, &need) ==
	      MLLP_ERR_BUFFER_TOO_SMALL);
	CHECK(need > 0);
	out = malloc(need);
	CHECK(out != NULL);
	CHECK(mllp_ack_build(msg, msg_len, o, out, need, &got) == 0);
	CHECK(got == need);
	CHECK(mllp_hl7_parse(&a, out, got) == 0);
	CHECK(mllp_hl7_find_segment(&a, "MSA", 1, &msa) == 0);
	*len = got;
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *z = size > 0 ? memchr(data, 0, size) : NULL;
	size_t msg_len = z != NULL ? (size_t)(z - data) : size;
	size_t ack_len = z != NULL ? size - msg_len - 1 : size;
	char *msg = dup_exact(data, msg_len);
	char *ack = dup_exact(z != NULL ? z + 1 : data, ack_len);
	unsigned sel = size > 0 ? data[size - 1] : 0;
	struct mllp_ack_options o;
	struct mllp_hl7_msg m, a;
	struct mllp_ack rec, rec2;
	enum mllp_verdict v, v2;
	char why[128], small[8], text[48];
	bool parsed, has_id;
	size_t i, built_len;
	char *built;

	parsed = mllp_hl7_parse(&m, msg, msg_len) == 0;
	has_id = parsed && m.control_id.len > 0;
	if (parsed)
		walk_views(&m);
	if (mllp_hl7_parse(&a, ack, ack_len) == 0)
		walk_views(&a);

	/* Verification. */
	v = mllp_ack_verify(msg, msg_len, ack, ack_len, &rec, why, sizeof(why));
	CHECK((unsigned)v <= MLLP_INVALID_ACK_MESSAGE);
	check_why(why, sizeof(why));
	v2 = mllp_ack_verify(msg, msg_len, ack, ack_len, NULL, small,
			     sizeof(small));
	CHECK(v2 == v);
	check_why(small, sizeof(small));
	if (!has_id) {
		CHECK(v == MLLP_INVALID_MESSAGE);
	} else {
		v2 = mllp_ack_verify_id(m.control_id.ptr, m.control_id.len, ack,
					ack_len, &rec2, NULL, 0);
		CHECK(v2 == v);
		CHECK(memcmp(&rec, &rec2, sizeof(rec)) == 0);
		if (v == MLLP_APPLICATION_ACCEPT ||
		    v == MLLP_APPLICATION_ERROR ||
		    v == MLLP_APPLICATION_REJECT || v == MLLP_BAD_ACK_CODE)
			CHECK(rec.control_id.len == m.control_id.len &&
			      memcmp(rec.control_id.ptr, m.control_id.ptr,
				     m.control_id.len) == 0);
	}
	v = mllp_ack_verify_id("01052901", 8, ack, ack_len, &rec, why,
			       sizeof(why));
	CHECK((unsigned)v <= MLLP_INVALID_ACK_MESSAGE);
	check_why(why, sizeof(why));
	if (v != MLLP_INVALID_ACK_MESSAGE)
		CHECK(rec.message.ptr == ack && rec.message.len == ack_len);

	/* Generation, for one code picked by the input, with and without a
	 * text taken from the input. */
	for (i = 0; i < sizeof(text) - 1 && i < ack_len && ack[i] != '\0'; i++)
		text[i] = ack[i];
	text[i] = '\0';
	mllp_ack_options_init(&o);
	o.code = codes[sel % 6];
	o.keep_control_id = (sel >> 3) & 1;
	o.sequence = size;
	o.now_s = (int64_t)(sel * 86400LL * 97);
	if ((sel >> 4) & 1)
		o.text = text;
	if ((sel >> 5) & 1)
		o.err = "^^^207&Application internal error&HL70357||207|E";
	if (o.now_s == 0)
		o.now_s = 1;
	built = build_checked(msg, msg_len, &o, &built_len);
	v = mllp_ack_verify(msg, msg_len, built, built_len, &rec, why,
			    sizeof(why));
	if (has_id) {
		CHECK(v == verdict_of_code(o.code));
		CHECK(rec.code.len == 2 &&
		      memcmp(rec.code.ptr, o.code, 2) == 0);
		CHECK(o.err == NULL || rec.err.len > 0);
	} else {
		/* Parsed with an empty MSH-10: the code asked for; not
		 * parsed: an AR. Either way nothing to match against. */
		const char *want = parsed ? o.code : "AR";

		CHECK(v == MLLP_INVALID_MESSAGE);
		CHECK(rec.code.len == 2 && memcmp(rec.code.ptr, want, 2) == 0);
	}
	free(built);

	/* A plain AA always verifies back to accept. */
	mllp_ack_options_init(&o);
	o.now_s = 1;
	built = build_checked(msg, msg_len, &o, &built_len);
	if (has_id)
		CHECK(mllp_ack_verify(msg, msg_len, built, built_len, NULL,
				      NULL, 0) == MLLP_APPLICATION_ACCEPT);
	free(built);

	free(msg);
	free(ack);
	return 0;
}

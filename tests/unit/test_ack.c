/* ACK verification and generation: vectors.tsv row by row, every verify
 * outcome with its exact text, the reference's generation checks, and a
 * build-then-verify round trip for every corpus message and code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/hl7.h>

#define assert_view(v, s)                                                      \
	do {                                                                   \
		struct mllp_str v_ = (v);                                      \
		const char *s_ = (s);                                          \
		if (v_.len != strlen(s_) ||                                    \
		    (v_.len > 0 && memcmp(v_.ptr, s_, v_.len) != 0))           \
			fail_msg("view \"%.*s\" (%zu bytes) != \"%s\"",        \
				 (int)v_.len, v_.ptr ? v_.ptr : "", v_.len,    \
				 s_);                                          \
	} while (0)

#define assert_views_equal(a, b)                                               \
	do {                                                                   \
		struct mllp_str a_ = (a), b_ = (b);                            \
		if (a_.len != b_.len ||                                        \
		    (a_.len > 0 && memcmp(a_.ptr, b_.ptr, a_.len) != 0))       \
			fail_msg("\"%.*s\" != \"%.*s\"", (int)a_.len,          \
				 a_.ptr ? a_.ptr : "", (int)b_.len,            \
				 b_.ptr ? b_.ptr : "");                        \
	} while (0)

static const char *const codes[6] = {"AA", "AE", "AR", "CA", "CE", "CR"};

static enum mllp_verdict verdict_of_code(const char *code)
{
	switch (code[1]) {
	case 'A':
		return MLLP_APPLICATION_ACCEPT;
	case 'E':
		return MLLP_APPLICATION_ERROR;
	default:
		return MLLP_APPLICATION_REJECT;
	}
}

/* A corpus file before a guard page. */
struct blob {
	struct tu_guard g;
	const unsigned char *d;
	size_t n;
};

static void load_at(struct blob *b, const char *dir, const char *rel)
{
	unsigned char *raw = tu_corpus_at(dir, rel, &b->n);

	b->d = tu_guard_copy(&b->g, raw, b->n);
	free(raw);
}

static void load(struct blob *b, const char *rel)
{
	load_at(b, tu_corpus_dir(NULL), rel);
}

static void load_str(struct blob *b, const char *s)
{
	b->n = strlen(s);
	b->d = tu_guard_copy(&b->g, s, b->n);
}

static void unload(struct blob *b)
{
	tu_guard_free(&b->g);
}

/* ---- verification ------------------------------------------------------ */

static void test_vectors(void **state)
{
	const char *dir = tu_corpus_dir(state);
	struct tu_vector *rows;
	size_t n = tu_vectors_at(dir, &rows), i;

	assert_true(n >= 16);
	for (i = 0; i < n; i++) {
		struct blob msg, ack;
		struct mllp_hl7_msg m;
		struct mllp_ack a;
		char why[256];
		enum mllp_verdict v;

		load_at(&msg, dir, rows[i].message);
		load_at(&ack, dir, rows[i].ack);
		memset(why, 'x', sizeof(why));
		v = mllp_ack_verify(msg.d, msg.n, ack.d, ack.n, &a, why,
				    sizeof(why));
		if (strcmp(mllp_verdict_name(v), rows[i].expected) != 0)
			fail_msg("row %zu (%s, %s): %s (%s), expected %s",
				 i + 1, rows[i].message, rows[i].ack,
				 mllp_verdict_name(v), why, rows[i].expected);
		if (v == MLLP_APPLICATION_ACCEPT)
			assert_string_equal(why, "");
		else
			assert_true(strlen(why) > 10);
		assert_ptr_equal(a.message.ptr, ack.d);
		assert_int_equal(a.message.len, ack.n);

		/* The hot path gives the same verdict. */
		assert_int_equal(mllp_hl7_parse(&m, msg.d, msg.n), 0);
		assert_int_equal(mllp_ack_verify_id(m.control_id.ptr,
						    m.control_id.len, ack.d,
						    ack.n, NULL, NULL, 0),
				 v);
		unload(&msg);
		unload(&ack);
	}
	tu_free_vectors(rows, n);
	tu_corpus_checked(dir, n, "vectors");
}

/* The ACK of the last expect(): out's views point into it. */
static struct blob held;

static void release_held(void)
{
	if (held.g.map != NULL)
		unload(&held);
}

/* Verify the corpus ACK `ack` against adt_a01 and check verdict and text.
 * The ACK stays loaded until the next call or release_held(). */
static void expect(const char *ack_rel, enum mllp_verdict want,
		   const char *why_want, struct mllp_ack *out)
{
	struct blob msg, ack;
	char why[300];
	enum mllp_verdict v;

	load(&msg, "messages/adt_a01.hl7");
	load(&ack, ack_rel);
	v = mllp_ack_verify(msg.d, msg.n, ack.d, ack.n, out, why, sizeof(why));
	if (v != want)
		fail_msg("%s: %s, expected %s (%s)", ack_rel,
			 mllp_verdict_name(v), mllp_verdict_name(want), why);
	assert_string_equal(why, why_want);
	v = mllp_ack_verify_id("01052901", 8, ack.d, ack.n, NULL, why,
			       sizeof(why));
	assert_int_equal(v, want);
	assert_string_equal(why, why_want);
	unload(&msg);
	release_held();
	held = ack;
}

static void test_verify_texts(void **state)
{
	struct mllp_ack a;

	(void)state;
	expect("acks/aa.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	expect("acks/ca.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	expect("acks/aa_lf.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	expect("acks/aa_custom_delims.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	expect("acks/ae.hl7", MLLP_APPLICATION_ERROR,
	       "The ACK reports application_error (AE): Patient not found", &a);
	expect("acks/ce.hl7", MLLP_APPLICATION_ERROR,
	       "The ACK reports application_error (CE): Commit error", &a);
	expect("acks/ar.hl7", MLLP_APPLICATION_REJECT,
	       "The ACK reports application_reject (AR): Unsupported message "
	       "type",
	       &a);
	expect("acks/cr.hl7", MLLP_APPLICATION_REJECT,
	       "The ACK reports application_reject (CR): Commit reject", &a);
	expect("acks/wrong_id.hl7", MLLP_BAD_MESSAGE_CONTROL_ID,
	       "The message_control_id of the message 01052901 does not match "
	       "the message_control_id of the ACK message (01052902).",
	       &a);
	/* The reference's substring test accepts both of these. */
	expect("acks/id_prefix.hl7", MLLP_BAD_MESSAGE_CONTROL_ID,
	       "The message_control_id of the message 01052901 does not match "
	       "the message_control_id of the ACK message (0105290).",
	       &a);
	expect("acks/id_superstring.hl7", MLLP_BAD_MESSAGE_CONTROL_ID,
	       "The message_control_id of the message 01052901 does not match "
	       "the message_control_id of the ACK message (01052901X).",
	       &a);
	expect("acks/bad_code.hl7", MLLP_BAD_ACK_CODE,
	       "The value XX is not a valid acknowledgment_code", &a);
	assert_view(a.code, "XX");
	expect("acks/lowercase_code.hl7", MLLP_BAD_ACK_CODE,
	       "The value aa is not a valid acknowledgment_code", &a);
	expect("acks/no_msa.hl7", MLLP_INVALID_ACK_MESSAGE,
	       "Invalid ACK message: no MSA segment", &a);
	assert_int_equal(a.code.len, 0);
	expect("acks/not_hl7.txt", MLLP_INVALID_ACK_MESSAGE,
	       "Invalid ACK message: no MSH segment at the start", &a);
	expect("acks/empty.hl7", MLLP_INVALID_ACK_MESSAGE,
	       "Invalid ACK message: empty message", &a);
	release_held();
}

static void test_ack_record(void **state)
{
	struct mllp_ack a;

	(void)state;
	expect("acks/aa.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	assert_view(a.code, "AA");
	assert_view(a.control_id, "01052901");
	assert_int_equal(a.text.len, 0);
	assert_int_equal(a.err.len, 0);
	assert_true(a.message.len > 90);

	expect("acks/ae.hl7", MLLP_APPLICATION_ERROR,
	       "The ACK reports application_error (AE): Patient not found", &a);
	assert_view(a.code, "AE");
	assert_view(a.control_id, "01052901");
	assert_view(a.text, "Patient not found");
	assert_view(a.err, "ERR|^^^207&Application internal error&HL70357||"
			   "207|E||||Patient not found");

	expect("acks/ar.hl7", MLLP_APPLICATION_REJECT,
	       "The ACK reports application_reject (AR): Unsupported message "
	       "type",
	       &a);
	assert_view(a.text, "Unsupported message type");

	expect("acks/aa_custom_delims.hl7", MLLP_APPLICATION_ACCEPT, "", &a);
	assert_view(a.code, "AA");
	assert_view(a.control_id, "01052901");
	release_held();
}

static enum mllp_verdict verify_strs(const char *msg, const char *ack,
				     struct mllp_ack *a, char *why, size_t cap)
{
	struct blob m, k;
	enum mllp_verdict v;

	load_str(&m, msg);
	load_str(&k, ack);
	v = mllp_ack_verify(m.d, m.n, k.d, k.n, a, why, cap);
	unload(&m);
	/* a's views point into the ACK: keep it until the next call. */
	release_held();
	held = k;
	return v;
}

#define MSG(id) "MSH|^~\\&|A|B|C|D|20260101||ADT^A01^ADT_A01|" id "|P|2.5\r"
#define ACKH	"MSH|^~\\&|C|D|A|B|20260101||ACK^A01^ACK|K1|P|2.5\r"

static void test_substring_both_directions(void **state)
{
	struct blob aa;
	char why[256];

	(void)state;
	/* Message id shorter / longer than the ACK's. */
	assert_int_equal(verify_strs(MSG("0105290"), ACKH "MSA|AA|01052901\r",
				     NULL, why, sizeof(why)),
			 MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_string_equal(why, "The message_control_id of the message "
				 "0105290 does not match the "
				 "message_control_id of the ACK message "
				 "(01052901).");
	assert_int_equal(verify_strs(MSG("01052901X"), ACKH "MSA|AA|01052901\r",
				     NULL, why, sizeof(why)),
			 MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(verify_strs(MSG("X01052901"), ACKH "MSA|AA|01052901\r",
				     NULL, why, sizeof(why)),
			 MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(verify_strs(MSG("01052901"), ACKH "MSA|AA|\r", NULL,
				     why, sizeof(why)),
			 MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_string_equal(why, "The message_control_id of the message "
				 "01052901 does not match the "
				 "message_control_id of the ACK message ().");
	/* An MSA-2 with a component is not the bare id either. */
	assert_int_equal(verify_strs(MSG("01052901"),
				     ACKH "MSA|AA|01052901^X\r", NULL, why,
				     sizeof(why)),
			 MLLP_BAD_MESSAGE_CONTROL_ID);

	load(&aa, "acks/aa.hl7");
	assert_int_equal(
	    mllp_ack_verify_id("0105290", 7, aa.d, aa.n, NULL, NULL, 0),
	    MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(
	    mllp_ack_verify_id("010529011", 9, aa.d, aa.n, NULL, NULL, 0),
	    MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(
	    mllp_ack_verify_id("01052901", 8, aa.d, aa.n, NULL, NULL, 0),
	    MLLP_APPLICATION_ACCEPT);
	unload(&aa);
}

/* Documented choice: an empty MSH-10 in the sent message matches nothing
 * and is reported as invalid_message. */
static void test_empty_control_id(void **state)
{
	struct blob aa;
	struct mllp_ack a;
	char why[256];

	(void)state;
	assert_int_equal(
	    verify_strs(MSG(""), ACKH "MSA|AA|\r", &a, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	assert_string_equal(why, "Invalid message: empty message control id "
				 "(MSH-10)");
	/* The record is still filled from the ACK. */
	assert_view(a.code, "AA");
	assert_int_equal(verify_strs(MSG(""), ACKH "MSA|AA|01052901\r", NULL,
				     why, sizeof(why)),
			 MLLP_INVALID_MESSAGE);
	assert_int_equal(verify_strs("MSH|^~\\&\r", ACKH "MSA|AA|\r", NULL, why,
				     sizeof(why)),
			 MLLP_INVALID_MESSAGE);

	load(&aa, "acks/aa.hl7");
	assert_int_equal(
	    mllp_ack_verify_id("", 0, aa.d, aa.n, &a, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	assert_string_equal(why, "Invalid message: empty message control id "
				 "(MSH-10)");
	assert_view(a.control_id, "01052901");
	assert_int_equal(mllp_ack_verify_id(NULL, 8, aa.d, aa.n, NULL, NULL, 0),
			 MLLP_INVALID_MESSAGE);
	unload(&aa);
}

static void test_invalid_message(void **state)
{
	struct blob aa, txt;
	struct mllp_ack a;
	char why[256];

	(void)state;
	load(&aa, "acks/aa.hl7");
	load(&txt, "acks/not_hl7.txt");
	assert_int_equal(
	    mllp_ack_verify(txt.d, txt.n, aa.d, aa.n, &a, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	assert_string_equal(why,
			    "Invalid message: no MSH segment at the start");
	assert_view(a.code, "AA");
	assert_int_equal(
	    mllp_ack_verify(txt.d, 0, aa.d, aa.n, NULL, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	assert_string_equal(why, "Invalid message: empty message");
	assert_int_equal(
	    mllp_ack_verify(NULL, 5, aa.d, aa.n, NULL, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	assert_string_equal(why, "Invalid message: NULL buffer");
	assert_int_equal(verify_strs("MSH|^~|A|B\r", ACKH "MSA|AA|1\r", NULL,
				     why, sizeof(why)),
			 MLLP_INVALID_MESSAGE);
	assert_string_equal(why, "Invalid message: MSH-2 does not hold 4 or 5 "
				 "encoding characters");
	assert_int_equal(
	    verify_strs("MSH|^~\\&\r", "MSH|^~\\&\r", NULL, why, sizeof(why)),
	    MLLP_INVALID_MESSAGE);
	unload(&aa);
	unload(&txt);
}

static void test_invalid_ack(void **state)
{
	char why[256];
	struct mllp_ack a;

	(void)state;
	assert_int_equal(
	    verify_strs(MSG("1"), "MSA|AA|1\r", &a, why, sizeof(why)),
	    MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: no MSH segment at the "
				 "start");
	assert_int_equal(a.message.len, 9);
	assert_int_equal(verify_strs(MSG("1"), "MSH|^^\\&|\rMSA|AA|1\r", NULL,
				     why, sizeof(why)),
			 MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: encoding characters "
				 "(MSH-2) are not distinct punctuation "
				 "characters different from the field "
				 "separator");
	/* "MSAX" and "XMSA" segments are not MSA. */
	assert_int_equal(verify_strs(MSG("1"), ACKH "MSAX|AA|1\rXMSA|AA|1\r",
				     NULL, why, sizeof(why)),
			 MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: no MSA segment");
	/* A batch reply is not an ACK. */
	assert_int_equal(verify_strs(MSG("1"), "BHS|^~\\&\r" ACKH "MSA|AA|1\r",
				     NULL, why, sizeof(why)),
			 MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: batch header (FHS/BHS) "
				 "instead of MSH");
	assert_int_equal(
	    mllp_ack_verify_id("1", 1, NULL, 3, &a, why, sizeof(why)),
	    MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: NULL buffer");
	assert_int_equal(
	    mllp_ack_verify_id("1", 1, NULL, 0, NULL, why, sizeof(why)),
	    MLLP_INVALID_ACK_MESSAGE);
	assert_string_equal(why, "Invalid ACK message: empty message");
}

/* invalid_message, then invalid_ack_message, then the control id, then the
 * code (the reference checks the id before it looks at the code). */
static void test_precedence(void **state)
{
	char why[256];

	(void)state;
	assert_int_equal(verify_strs("junk", "junk", NULL, why, sizeof(why)),
			 MLLP_INVALID_MESSAGE);
	assert_int_equal(verify_strs(MSG(""), "junk", NULL, why, sizeof(why)),
			 MLLP_INVALID_MESSAGE);
	assert_int_equal(verify_strs(MSG("1"), ACKH, NULL, why, sizeof(why)),
			 MLLP_INVALID_ACK_MESSAGE);
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|XX|2\r", NULL, why, sizeof(why)),
	    MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|XX|1\r", NULL, why, sizeof(why)),
	    MLLP_BAD_ACK_CODE);
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|AR|2\r", NULL, why, sizeof(why)),
	    MLLP_BAD_MESSAGE_CONTROL_ID);
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|AR|1\r", NULL, why, sizeof(why)),
	    MLLP_APPLICATION_REJECT);
	assert_string_equal(why, "The ACK reports application_reject (AR)");
}

static void test_codes_case_sensitive(void **state)
{
	static const char *const bad[] = {"aa", "Aa", "aA", "ca", "AAA", "A",
					  "",	"AX", "XA", "BA", "A A", "AA "};
	char ack[128], why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];

		snprintf(ack, sizeof(ack), ACKH "MSA|%s|77\r", bad[i]);
		assert_int_equal(
		    verify_strs(MSG("77"), ack, NULL, why, sizeof(why)),
		    MLLP_BAD_ACK_CODE);
		snprintf(want, sizeof(want),
			 "The value %s is not a valid acknowledgment_code",
			 bad[i]);
		assert_string_equal(why, want);
	}
	for (i = 0; i < 6; i++) {
		snprintf(ack, sizeof(ack), ACKH "MSA|%s|77\r", codes[i]);
		assert_int_equal(verify_strs(MSG("77"), ack, NULL, NULL, 0),
				 verdict_of_code(codes[i]));
	}
	/* MSA with no fields at all. */
	assert_int_equal(
	    verify_strs(MSG("77"), ACKH "MSA\r", NULL, why, sizeof(why)),
	    MLLP_BAD_MESSAGE_CONTROL_ID);
}

static void test_terminators_and_layout(void **state)
{
	char why[256];
	struct mllp_ack a;

	(void)state;
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|AA|1\r", &a, why, sizeof(why)),
	    MLLP_APPLICATION_ACCEPT);
	assert_int_equal(verify_strs(MSG("1"),
				     "MSH|^~\\&|C|D\r\nMSA|AA|1|ok\r\n", &a,
				     why, sizeof(why)),
			 MLLP_APPLICATION_ACCEPT);
	assert_view(a.text, "ok");
	assert_int_equal(verify_strs(MSG("1"), "\r\nMSH|^~\\&\nMSA|AA|1", &a,
				     why, sizeof(why)),
			 MLLP_APPLICATION_ACCEPT);
	assert_view(a.control_id, "1");
	/* ERR before MSA, other segments in between, second MSA ignored. */
	assert_int_equal(verify_strs(MSG("1"),
				     ACKH "ERR|x\rSFT|y\rMSA|AE|1|t|\rMSA|AA|1"
					  "\rERR|z\r",
				     &a, why, sizeof(why)),
			 MLLP_APPLICATION_ERROR);
	assert_view(a.err, "ERR|x");
	assert_view(a.text, "t");
	/* LF message against CRLF ACK. */
	{
		struct blob lf;
		const char *crlf = ACKH "MSA|CA|01052901\r\n";

		load(&lf, "messages/adt_a01_lf.hl7");
		assert_int_equal(mllp_ack_verify(lf.d, lf.n, crlf, strlen(crlf),
						 NULL, why, sizeof(why)),
				 MLLP_APPLICATION_ACCEPT);
		unload(&lf);
	}
}

static void test_why_handling(void **state)
{
	char why[16];

	(void)state;
	memset(why, 'x', sizeof(why));
	assert_int_equal(
	    verify_strs(MSG("1"), ACKH "MSA|XX|1\r", NULL, why, 10),
	    MLLP_BAD_ACK_CODE);
	assert_string_equal(why, "The value");
	assert_int_equal(why[10], 'x');
	/* why_cap 0: nothing written. */
	why[0] = 'q';
	assert_int_equal(verify_strs(MSG("1"), ACKH "MSA|XX|1\r", NULL, why, 0),
			 MLLP_BAD_ACK_CODE);
	assert_int_equal(why[0], 'q');
}

static void test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(mllp_verdict_name(MLLP_APPLICATION_ACCEPT),
			    "application_accept");
	assert_string_equal(mllp_verdict_name(MLLP_APPLICATION_ERROR),
			    "application_error");
	assert_string_equal(mllp_verdict_name(MLLP_APPLICATION_REJECT),
			    "application_reject");
	assert_string_equal(mllp_verdict_name(MLLP_BAD_MESSAGE_CONTROL_ID),
			    "bad_message_control_id");
	assert_string_equal(mllp_verdict_name(MLLP_BAD_ACK_CODE),
			    "bad_ack_code");
	assert_string_equal(mllp_verdict_name(MLLP_INVALID_MESSAGE),
			    "invalid_message");
	assert_string_equal(mllp_verdict_name(MLLP_INVALID_ACK_MESSAGE),
			    "invalid_ack_message");
	assert_string_equal(mllp_verdict_name((enum mllp_verdict)99),
			    "unknown");
}

/* ---- generation -------------------------------------------------------- */

/* 2006-05-29 14:01:32 UTC */
#define T0 1148911292LL

/* Build into a fresh malloc'd, NUL-terminated string; checks the size
 * protocol on the way: a size query, one byte short, exact fit. */
static char *build(const void *msg, size_t len,
		   const struct mllp_ack_options *o)
{
	size_t need = 0, got = 0;
	char *out;

	assert_int_equal(mllp_ack_build(msg, len, o, NULL, 0, &need),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_true(need > 20);
	out = malloc(need + 1);
	assert_non_null(out);
	assert_int_equal(mllp_ack_build(msg, len, o, out, need - 1, &got),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(got, need);
	got = 0;
	assert_int_equal(mllp_ack_build(msg, len, o, out, need, &got), 0);
	assert_int_equal(got, need);
	out[need] = '\0';
	return out;
}

static void opts_at(struct mllp_ack_options *o, const char *code)
{
	mllp_ack_options_init(o);
	o->code = code;
	o->now = T0;
}

static void test_build_exact(void **state)
{
	struct mllp_ack_options o;
	struct blob msg;
	char *ack;

	(void)state;
	load(&msg, "messages/adt_a01.hl7");
	opts_at(&o, "AA");
	o.control_id = "ACK-1";
	o.text = "OK";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|SuperOE|XYZImgCtr|MegaReg|XYZHospC|"
				 "20060529140132||ACK^A01^ACK|ACK-1|P|2.5\r"
				 "MSA|AA|01052901|OK\r");
	free(ack);

	/* Defaults: AA, id "ACK" + sequence, no text. */
	mllp_ack_options_init(&o);
	assert_string_equal(o.code, "AA");
	assert_null(o.text);
	assert_null(o.err);
	assert_null(o.control_id);
	assert_int_equal(o.keep_control_id, 0);
	assert_int_equal(o.now, 0);
	o.now = T0;
	o.sequence = 18446744073709551615ULL;
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|SuperOE|XYZImgCtr|MegaReg|XYZHospC|"
				 "20060529140132||ACK^A01^ACK|"
				 "ACK18446744073709551615|P|2.5\r"
				 "MSA|AA|01052901\r");
	free(ack);

	/* Keep the original id; AE with ERR; NULL code means AA. */
	opts_at(&o, "AE");
	o.keep_control_id = 1;
	o.text = "Patient not found";
	o.err = "^^^207&Application internal error&HL70357||207|E";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|SuperOE|XYZImgCtr|MegaReg|XYZHospC|"
				 "20060529140132||ACK^A01^ACK|01052901|P|2.5\r"
				 "MSA|AE|01052901|Patient not found\r"
				 "ERR|^^^207&Application internal error&"
				 "HL70357||207|E\r");
	free(ack);
	o.code = NULL;
	o.text = NULL;
	o.err = NULL;
	ack = build(msg.d, msg.n, &o);
	assert_non_null(strstr(ack, "\rMSA|AA|01052901\r"));
	free(ack);

	/* opts NULL: defaults with the current time. */
	ack = build(msg.d, msg.n, NULL);
	assert_non_null(
	    strstr(ack, "||ACK^A01^ACK|ACK0|P|2.5\rMSA|AA|01052901\r"));
	free(ack);
	unload(&msg);
}

/* The reference's generation checks, for each code. */
static void test_build_reference_fields(void **state)
{
	struct blob msg;
	size_t i;

	(void)state;
	load(&msg, "messages/adt_a01.hl7");
	for (i = 0; i < 6; i++) {
		struct mllp_ack_options o;
		struct mllp_hl7_msg a;
		struct mllp_str msa, f;
		char *ack;

		opts_at(&o, codes[i]);
		ack = build(msg.d, msg.n, &o);
		assert_int_equal(mllp_hl7_parse(&a, ack, strlen(ack)), 0);
		assert_view(a.type, "ACK");
		assert_view(a.trigger, "A01");
		assert_view(a.structure, "ACK");
		assert_view(a.sending_app, "SuperOE");
		assert_view(a.sending_facility, "XYZImgCtr");
		assert_view(a.receiving_app, "MegaReg");
		assert_view(a.receiving_facility, "XYZHospC");
		assert_view(a.timestamp, "20060529140132");
		assert_view(a.processing_id, "P");
		assert_view(a.version, "2.5");
		assert_int_equal(mllp_hl7_find_segment(&a, "MSA", 1, &msa), 0);
		assert_int_equal(mllp_hl7_field(&a, msa, 1, &f), 0);
		assert_view(f, codes[i]);
		assert_int_equal(mllp_hl7_field(&a, msa, 2, &f), 0);
		assert_view(f, "01052901");
		assert_int_equal(mllp_hl7_field(&a, msa, 3, &f),
				 MLLP_ERR_NOT_FOUND);
		assert_int_equal(mllp_hl7_find_segment(&a, "ERR", 1, &msa),
				 MLLP_ERR_NOT_FOUND);
		assert_null(strchr(ack, '\n'));
		free(ack);
	}
	unload(&msg);
}

static void test_build_text_escaped(void **state)
{
	struct mllp_ack_options o;
	struct blob msg;
	struct mllp_ack a;
	char *ack;

	(void)state;
	load(&msg, "messages/v27_truncation.hl7");
	opts_at(&o, "AR");
	o.control_id = "K9";
	o.text = "a|b^c~d\\e&f#g\rh\ni";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack,
			    "MSH|^~\\&#|APP2|FAC2|APP|FAC|20060529140132||"
			    "ACK^A04^ACK|K9|P|2.7\r"
			    "MSA|AR|TRUNC-1|a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"
			    "\\P\\g\\X0D\\h\\X0A\\i\r");
	assert_int_equal(
	    mllp_ack_verify(msg.d, msg.n, ack, strlen(ack), &a, NULL, 0),
	    MLLP_APPLICATION_REJECT);
	assert_view(a.text, "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f\\P\\g\\X0D\\h"
			    "\\X0A\\i");
	free(ack);
	unload(&msg);
}

static void test_build_custom_delimiters(void **state)
{
	struct mllp_ack_options o;
	struct blob msg;
	char *ack;

	(void)state;
	/* '#' as field separator (an ACK is a message too). */
	load(&msg, "acks/aa_custom_delims.hl7");
	opts_at(&o, "CA");
	o.control_id = "Z";
	o.text = "x#y";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH#^~\\&#MegaReg#XYZHospC#SuperOE#XYZImgCtr#"
				 "20060529140132##ACK^A01^ACK#Z#P#2.5\r"
				 "MSA#CA#ACK-0001#x\\F\\y\r");
	assert_int_equal(
	    mllp_ack_verify(msg.d, msg.n, ack, strlen(ack), NULL, NULL, 0),
	    MLLP_APPLICATION_ACCEPT);
	free(ack);
	unload(&msg);

	/* Every delimiter of its own. */
	load_str(&msg, "MSH!*@%$!S!F!R!G!2020!!ORU*R01*X!ID7!P!2.4\rOBX!1\r");
	opts_at(&o, "AE");
	o.control_id = "Q";
	o.err = "a*b";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH!*@%$!R!G!S!F!20060529140132!!ACK*R01*ACK!"
				 "Q!P!2.4\rMSA!AE!ID7\rERR!a*b\r");
	assert_int_equal(
	    mllp_ack_verify(msg.d, msg.n, ack, strlen(ack), NULL, NULL, 0),
	    MLLP_APPLICATION_ERROR);
	free(ack);
	unload(&msg);
}

static void test_build_keeps_and_clears_fields(void **state)
{
	struct mllp_ack_options o;
	struct mllp_hl7_msg a;
	struct mllp_str f;
	struct blob msg;
	char *ack;

	(void)state;
	/* MSH-15/16 cleared (an ACK requests no ACK), MSH-18 kept. */
	load(&msg, "messages/adt_a08_utf8.hl7");
	opts_at(&o, "CA");
	o.control_id = "C1";
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|LAB|LABO|ADT1|H\xc3\x94PITAL-NORD|"
				 "20060529140132||ACK^A08^ACK|C1|P|2.5.1|||||"
				 "|UNICODE UTF-8\r"
				 "MSA|CA|MSG-UTF8-0001\r");
	assert_int_equal(mllp_hl7_parse(&a, ack, strlen(ack)), 0);
	assert_false(mllp_hl7_is_enhanced_mode(&a));
	assert_int_equal(mllp_hl7_field(&a, a.msh, 18, &f), 0);
	assert_view(f, "UNICODE UTF-8");
	free(ack);
	unload(&msg);

	/* Trailing MSH-15/16 disappear entirely. */
	load(&msg, "messages/enhanced_mode.hl7");
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|EHR|HOSP|LIS|LAB|20060529140132||"
				 "ACK^R01^ACK|C1|P|2.5\rMSA|CA|ENH-777\r");
	free(ack);
	unload(&msg);

	/* Latin-1 bytes and MSH-17/18 travel byte for byte. */
	load(&msg, "messages/adt_a04_latin1.hl7");
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|LAB|LABOR|ADT1|KLINIK|"
				 "20060529140132||ACK^A04^ACK|C1|P|2.5||||"
				 "|DEU|8859/1\rMSA|CA|MSG-L1-0001\r");
	free(ack);
	unload(&msg);

	/* A short MSH is padded to MSH-12; MSH-8 kept; no trigger. */
	load_str(&msg, "MSH|^~\\&|A||||x|SEC|ADT\n");
	ack = build(msg.d, msg.n, &o);
	assert_string_equal(ack, "MSH|^~\\&|||A||20060529140132|SEC|ACK^^ACK|"
				 "C1||\rMSA|CA|\r");
	free(ack);
	unload(&msg);
}

static void test_build_unparsable(void **state)
{
	static const struct {
		const char *in;
		const char *reason;
	} cases[] = {
	    {"", "empty message"},
	    {"<ack status=\"ok\"/>", "no MSH segment at the start"},
	    {"FHS|^~\\&\rMSH|^~\\&|A\r",
	     "batch header (FHS/BHS) instead of MSH"},
	    {"MSH|^~|A", "MSH-2 does not hold 4 or 5 encoding characters"},
	    {"MSH", "no field separator after MSH"},
	    {"MSHx^~\\&x",
	     "field separator (MSH-1) is not a punctuation character"},
	};
	struct mllp_ack_options o;
	size_t i;
	char want[512], *ack;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct blob msg;

		load_str(&msg, cases[i].in);
		opts_at(&o, "AA"); /* ignored: it is an AR */
		o.text = "ignored";
		o.sequence = 5;
		ack = build(msg.d, msg.n, &o);
		snprintf(want, sizeof(want),
			 "MSH|^~\\&|||||20060529140132||ACK|ACK5|P|2.5\r"
			 "MSA|AR|ACK5|Message was not parsable as HL7. "
			 "Reason: %s\r",
			 cases[i].reason);
		assert_string_equal(ack, want);
		free(ack);
		unload(&msg);
	}
	/* NULL message of length 0; ERR is kept. */
	opts_at(&o, "CE");
	o.control_id = "R1";
	o.err = "^^^100";
	ack = build(NULL, 0, &o);
	assert_string_equal(ack, "MSH|^~\\&|||||20060529140132||ACK|R1|P|2.5\r"
				 "MSA|AR|R1|Message was not parsable as HL7. "
				 "Reason: empty message\rERR|^^^100\r");
	free(ack);
}

static void test_build_arguments(void **state)
{
	static const char *const bad[] = {"XX", "aa", "", "AAA", "A", "Ca"};
	struct mllp_ack_options o;
	struct blob msg;
	char out[512];
	size_t len = 7, i;

	(void)state;
	load(&msg, "messages/adt_a01.hl7");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		opts_at(&o, bad[i]);
		assert_int_equal(
		    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), &len),
		    MLLP_ERR_INVALID_ARGUMENT);
		/* Also for a message that is not HL7. */
		assert_int_equal(
		    mllp_ack_build("x", 1, &o, out, sizeof(out), &len),
		    MLLP_ERR_INVALID_ARGUMENT);
	}
	assert_int_equal(len, 7);
	opts_at(&o, "AA");
	assert_int_equal(
	    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), NULL),
	    MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_build(msg.d, msg.n, &o, NULL, 10, &len),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_build(NULL, 10, &o, out, sizeof(out), &len),
			 MLLP_ERR_INVALID_ARGUMENT);
	o.err = "a\rb";
	assert_int_equal(
	    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), &len),
	    MLLP_ERR_INVALID_ARGUMENT);
	o.err = NULL;
	o.control_id = "a|b";
	assert_int_equal(
	    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), &len),
	    MLLP_ERR_INVALID_ARGUMENT);
	o.control_id = "a^b";
	assert_int_equal(
	    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), &len),
	    MLLP_ERR_INVALID_ARGUMENT);
	o.control_id = "a\nb";
	assert_int_equal(mllp_ack_build("x", 1, &o, out, sizeof(out), &len),
			 MLLP_ERR_INVALID_ARGUMENT);
	o.control_id = "ok-1";
	assert_int_equal(
	    mllp_ack_build(msg.d, msg.n, &o, out, sizeof(out), &len), 0);
	mllp_ack_options_init(NULL);
	unload(&msg);
}

static void test_build_timestamps(void **state)
{
	static const struct {
		long long t;
		const char *ts;
	} fixed[] = {
	    {1, "19700101000001"},
	    {-1, "19691231235959"},
	    {951782400, "20000229000000"},
	    {4107542399LL, "21000228235959"},
	    {4107542400LL, "21000301000000"},
	    {253402300799LL, "99991231235959"},
	    {253402300800LL, "99991231235959"},
	    {-62167219200LL, "00000101000000"},
	    {-99999999999999LL, "00000101000000"},
	};
	struct mllp_ack_options o;
	struct mllp_hl7_msg a;
	char out[512];
	size_t len, i;
	unsigned long long x = 88172645463325252ULL;
	time_t before, after;

	(void)state;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		opts_at(&o, "AA");
		o.now = fixed[i].t;
		assert_int_equal(mllp_ack_build(MSG("1"), strlen(MSG("1")), &o,
						out, sizeof(out), &len),
				 0);
		assert_int_equal(mllp_hl7_parse(&a, out, len), 0);
		assert_view(a.timestamp, fixed[i].ts);
	}
	/* Against gmtime_r over a spread of instants. */
	for (i = 0; i < 2000; i++) {
		struct tm tm;
		time_t t;
		char want[32];

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		t = (time_t)(x % 7258118400ULL) - 2208988800LL; /* 1900..2100 */
		if (t == 0)
			continue;
		assert_non_null(gmtime_r(&t, &tm));
		snprintf(want, sizeof(want), "%04d%02d%02d%02d%02d%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
		opts_at(&o, "AA");
		o.now = (int64_t)t;
		assert_int_equal(mllp_ack_build(MSG("1"), strlen(MSG("1")), &o,
						out, sizeof(out), &len),
				 0);
		assert_int_equal(mllp_hl7_parse(&a, out, len), 0);
		assert_view(a.timestamp, want);
	}
	/* now == 0: the current time. */
	opts_at(&o, "AA");
	o.now = 0;
	before = time(NULL);
	assert_int_equal(mllp_ack_build(MSG("1"), strlen(MSG("1")), &o, out,
					sizeof(out), &len),
			 0);
	after = time(NULL);
	assert_int_equal(mllp_hl7_parse(&a, out, len), 0);
	{
		struct tm tb, ta;
		char sb[32], sa[32];

		gmtime_r(&before, &tb);
		gmtime_r(&after, &ta);
		strftime(sb, sizeof(sb), "%Y%m%d%H%M%S", &tb);
		strftime(sa, sizeof(sa), "%Y%m%d%H%M%S", &ta);
		assert_int_equal(a.timestamp.len, 14);
		assert_true(memcmp(a.timestamp.ptr, sb, 14) >= 0);
		assert_true(memcmp(a.timestamp.ptr, sa, 14) <= 0);
	}
}

/* Build, for one message and every code, and verify back. */
static void roundtrip(const char *name, const void *data, size_t len)
{
	struct tu_guard gm;
	struct mllp_hl7_msg m;
	const unsigned char *d = tu_guard_copy(&gm, data, len);
	size_t i;

	if (mllp_hl7_parse(&m, d, len) != 0)
		fail_msg("%s: does not parse", name);
	for (i = 0; i < 6; i++) {
		struct mllp_ack_options o;
		struct mllp_hl7_msg a;
		struct mllp_ack rec;
		struct mllp_str f1, f2;
		struct tu_guard ga;
		unsigned char *ad;
		char *ack, why[256];
		enum mllp_verdict v;

		opts_at(&o, codes[i]);
		o.sequence = i;
		o.text = i % 2 ? "some text" : NULL;
		ack = build(d, len, &o);
		ad = tu_guard_copy(&ga, ack, strlen(ack));
		assert_int_equal(mllp_hl7_parse(&a, ad, strlen(ack)), 0);
		assert_views_equal(a.sending_app, m.receiving_app);
		assert_views_equal(a.sending_facility, m.receiving_facility);
		assert_views_equal(a.receiving_app, m.sending_app);
		assert_views_equal(a.receiving_facility, m.sending_facility);
		assert_view(a.type, "ACK");
		assert_views_equal(a.trigger, m.trigger);
		assert_view(a.structure, "ACK");
		assert_views_equal(a.processing_id, m.processing_id);
		assert_views_equal(a.version, m.version);
		assert_memory_equal(&a.delims, &m.delims, sizeof(a.delims));
		assert_int_equal(mllp_hl7_field(&a, a.msh, 2, &f1), 0);
		assert_int_equal(mllp_hl7_field(&m, m.msh, 2, &f2), 0);
		assert_views_equal(f1, f2);
		assert_null(strchr(ack, '\n'));

		v = mllp_ack_verify(d, len, ad, strlen(ack), &rec, why,
				    sizeof(why));
		if (v != verdict_of_code(codes[i]))
			fail_msg("%s %s: %s (%s)", name, codes[i],
				 mllp_verdict_name(v), why);
		assert_view(rec.code, codes[i]);
		assert_views_equal(rec.control_id, m.control_id);
		assert_view(rec.text, i % 2 ? "some text" : "");
		assert_int_equal(mllp_ack_verify_id(m.control_id.ptr,
						    m.control_id.len, ad,
						    strlen(ack), NULL, NULL, 0),
				 v);
		tu_guard_free(&ga);
		free(ack);
	}
	tu_guard_free(&gm);
}

static void test_build_roundtrip_corpus(void **state)
{
	const char *dir = tu_corpus_dir(state);
	char **names;
	size_t n = tu_corpus_list_at(dir, "messages", &names), i, len;

	assert_true(n >= 12);
	for (i = 0; i < n; i++) {
		unsigned char *raw = tu_corpus_at(dir, names[i], &len);

		if (strstr(names[i], "batch_3") != NULL) {
			/* Each MSH of the batch, parsed where it starts. */
			struct mllp_hl7_msg b;
			struct mllp_str seg;
			unsigned k;

			assert_int_equal(mllp_hl7_parse(&b, raw, len),
					 MLLP_ERR_NOT_HL7);
			for (k = 1;
			     mllp_hl7_find_segment(&b, "MSH", k, &seg) == 0;
			     k++)
				roundtrip(names[i], seg.ptr,
					  len - (size_t)((const unsigned char *)
							     seg.ptr -
							 raw));
			assert_int_equal(k, 4);
		} else if (strstr(names[i], ".mllp") != NULL) {
			/* Frames unwrapped by hand. */
			size_t j = 0, frames = 0;

			while (j < len && raw[j] == 0x0b) {
				unsigned char *eb =
				    memchr(raw + j, 0x1c, len - j);

				assert_non_null(eb);
				roundtrip(names[i], raw + j + 1,
					  (size_t)(eb - raw) - j - 1);
				j = (size_t)(eb - raw) + 2;
				frames++;
			}
			assert_int_equal(frames, 100);
		} else {
			roundtrip(names[i], raw, len);
		}
		free(raw);
	}
	tu_free_names(names, n);
	tu_corpus_checked(dir, n, "messages/ files");
}

static int teardown(void **state)
{
	(void)state;
	release_held();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TU_CORPUS_TESTS(test_vectors),
	    cmocka_unit_test(test_verify_texts),
	    cmocka_unit_test(test_ack_record),
	    cmocka_unit_test(test_substring_both_directions),
	    cmocka_unit_test(test_empty_control_id),
	    cmocka_unit_test(test_invalid_message),
	    cmocka_unit_test(test_invalid_ack),
	    cmocka_unit_test(test_precedence),
	    cmocka_unit_test(test_codes_case_sensitive),
	    cmocka_unit_test(test_terminators_and_layout),
	    cmocka_unit_test(test_why_handling),
	    cmocka_unit_test(test_verdict_names),
	    cmocka_unit_test(test_build_exact),
	    cmocka_unit_test(test_build_reference_fields),
	    cmocka_unit_test(test_build_text_escaped),
	    cmocka_unit_test(test_build_custom_delimiters),
	    cmocka_unit_test(test_build_keeps_and_clears_fields),
	    cmocka_unit_test(test_build_unparsable),
	    cmocka_unit_test(test_build_arguments),
	    cmocka_unit_test(test_build_timestamps),
	    TU_CORPUS_TESTS(test_build_roundtrip_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}

/* ACK verification: vectors.tsv row by row and every verify outcome with
 * its exact text. */
#include "ack_util.h"

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
#define ACKH "MSH|^~\\&|C|D|A|B|20260101||ACK^A01^ACK|K1|P|2.5\r"

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
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}

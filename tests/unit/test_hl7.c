/* HL7 v2 views: MSH parsing with the message's own delimiters, line
 * endings, segment iteration, MSH field numbering, separators, enhanced
 * mode, bad input and arguments. */
#include "hl7_util.h"

/* CR segment ends replaced by CRLF (malloc'd). */
static char *to_crlf(const unsigned char *s, size_t n, size_t *out_n)
{
	char *o = malloc(2 * n + 1);
	size_t i, k = 0;

	assert_non_null(o);
	for (i = 0; i < n; i++) {
		o[k++] = (char)s[i];
		if (s[i] == '\r')
			o[k++] = '\n';
	}
	o[k] = '\0';
	*out_n = k;
	return o;
}

static void test_adt_a01_msh(void **state)
{
	struct parsed p;

	(void)state;
	parse_corpus(&p, "messages/adt_a01.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.m.delims.field, '|');
	assert_int_equal(p.m.delims.component, '^');
	assert_int_equal(p.m.delims.repetition, '~');
	assert_int_equal(p.m.delims.escape, '\\');
	assert_int_equal(p.m.delims.subcomponent, '&');
	assert_int_equal(p.m.delims.truncation, 0);
	assert_view(p.m.msh, "MSH|^~\\&|MegaReg|XYZHospC|SuperOE|XYZImgCtr|"
			     "20060529090131-0500||ADT^A01^ADT_A01|01052901|P|"
			     "2.5");
	assert_view(p.m.sending_app, "MegaReg");
	assert_view(p.m.sending_facility, "XYZHospC");
	assert_view(p.m.receiving_app, "SuperOE");
	assert_view(p.m.receiving_facility, "XYZImgCtr");
	assert_view(p.m.timestamp, "20060529090131-0500");
	assert_view(p.m.message_type, "ADT^A01^ADT_A01");
	assert_view(p.m.type, "ADT");
	assert_view(p.m.trigger, "A01");
	assert_view(p.m.structure, "ADT_A01");
	assert_view(p.m.control_id, "01052901");
	assert_view(p.m.processing_id, "P");
	assert_view(p.m.version, "2.5");
	assert_int_equal(p.m.accept_ack_type.len, 0);
	assert_int_equal(p.m.app_ack_type.len, 0);
	assert_false(mllp_hl7_is_enhanced_mode(&p.m));
	tu_guard_free(&p.g);
}

/* Every view of m, by name, for comparing two parses. */
static void msh_views(const struct mllp_hl7_msg *m, struct mllp_str v[16])
{
	v[0] = m->msh;
	v[1] = m->sending_app;
	v[2] = m->sending_facility;
	v[3] = m->receiving_app;
	v[4] = m->receiving_facility;
	v[5] = m->timestamp;
	v[6] = m->message_type;
	v[7] = m->type;
	v[8] = m->trigger;
	v[9] = m->structure;
	v[10] = m->control_id;
	v[11] = m->processing_id;
	v[12] = m->version;
	v[13] = m->accept_ack_type;
	v[14] = m->app_ack_type;
	v[15].ptr = NULL;
	v[15].len = 0;
}

static void assert_same_message(const struct mllp_hl7_msg *a,
				const struct mllp_hl7_msg *b)
{
	struct mllp_str va[16], vb[16], sa, sb;
	size_t ca = 0, cb = 0;
	int i, nseg = 0;

	msh_views(a, va);
	msh_views(b, vb);
	for (i = 0; i < 16; i++) {
		assert_int_equal(va[i].len, vb[i].len);
		if (va[i].len > 0)
			assert_memory_equal(va[i].ptr, vb[i].ptr, va[i].len);
	}
	assert_memory_equal(&a->delims, &b->delims, sizeof(a->delims));
	for (;;) {
		bool ha = mllp_hl7_next_segment(a, &ca, &sa);
		bool hb = mllp_hl7_next_segment(b, &cb, &sb);

		assert_int_equal(ha, hb);
		if (!ha)
			break;
		nseg++;
		assert_int_equal(sa.len, sb.len);
		assert_memory_equal(sa.ptr, sb.ptr, sa.len);
		assert_null(memchr(sa.ptr, '\r', sa.len));
		assert_null(memchr(sa.ptr, '\n', sa.len));
	}
	assert_true(nseg > 1);
}

static void test_lf_and_crlf_like_cr(void **state)
{
	struct parsed cr, lf, crlf;
	size_t n, n2;
	unsigned char *raw;
	char *c;

	(void)state;
	parse_corpus(&cr, "messages/adt_a01.hl7");
	parse_corpus(&lf, "messages/adt_a01_lf.hl7");
	assert_int_equal(cr.rc, 0);
	assert_int_equal(lf.rc, 0);
	assert_same_message(&cr.m, &lf.m);

	raw = tu_corpus("messages/adt_a01.hl7", &n);
	c = to_crlf(raw, n, &n2);
	parse_str(&crlf, c);
	assert_int_equal(crlf.rc, 0);
	assert_same_message(&cr.m, &crlf.m);
	free(c);
	free(raw);
	tu_guard_free(&cr.g);
	tu_guard_free(&lf.g);
	tu_guard_free(&crlf.g);
}

static void test_segments_count_and_order(void **state)
{
	static const char *const ids[] = {"MSH", "EVN", "PID", "PV1",
					  "OBX", "OBX", "AL1", "DG1"};
	struct parsed p;
	struct mllp_str seg;
	size_t cursor = 0;
	unsigned i = 0;

	(void)state;
	parse_corpus(&p, "messages/adt_a01.hl7");
	assert_int_equal(p.rc, 0);
	while (mllp_hl7_next_segment(&p.m, &cursor, &seg)) {
		assert_true(i < 8);
		assert_true(seg.len >= 3);
		assert_memory_equal(seg.ptr, ids[i], 3);
		if (i == 0)
			assert_ptr_equal(seg.ptr, p.m.msh.ptr);
		i++;
	}
	assert_int_equal(i, 8);
	assert_int_equal(cursor, p.m.len);
	/* Finished stays finished. */
	assert_false(mllp_hl7_next_segment(&p.m, &cursor, &seg));
	cursor = p.m.len + 5;
	assert_false(mllp_hl7_next_segment(&p.m, &cursor, &seg));
	assert_false(mllp_hl7_next_segment(NULL, &cursor, &seg));
	tu_guard_free(&p.g);
}

static void test_empty_lines_and_leading_terminators(void **state)
{
	struct parsed p;
	struct mllp_str seg;
	size_t cursor = 0;

	(void)state;
	parse_str(&p, "\r\n\nMSH|^~\\&|A|B|C|D|2020||ADT^A01|X1|P|2.5\r\r\n"
		      "\nPID|1\n\r\r");
	assert_int_equal(p.rc, 0);
	assert_view(p.m.sending_app, "A");
	assert_view(p.m.control_id, "X1");
	assert_view(p.m.type, "ADT");
	assert_view(p.m.trigger, "A01");
	assert_int_equal(p.m.structure.len, 0);
	assert_true(mllp_hl7_next_segment(&p.m, &cursor, &seg));
	assert_view(seg, "MSH|^~\\&|A|B|C|D|2020||ADT^A01|X1|P|2.5");
	assert_true(mllp_hl7_next_segment(&p.m, &cursor, &seg));
	assert_view(seg, "PID|1");
	assert_false(mllp_hl7_next_segment(&p.m, &cursor, &seg));
	tu_guard_free(&p.g);
}

static void test_msh_field_numbering(void **state)
{
	struct parsed p;
	struct mllp_str f;

	(void)state;
	parse_corpus(&p, "messages/adt_a01.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 0, &f), 0);
	assert_view(f, "MSH");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 1, &f), 0);
	assert_view(f, "|");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 2, &f), 0);
	assert_view(f, "^~\\&");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 3, &f), 0);
	assert_view(f, "MegaReg");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 8, &f), 0);
	assert_view(f, "");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 9, &f), 0);
	assert_view(f, "ADT^A01^ADT_A01");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 10, &f), 0);
	assert_view(f, "01052901");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 12, &f), 0);
	assert_view(f, "2.5");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 13, &f),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 1000, &f),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(
	    mllp_hl7_component(&p.m, p.m.message_type, 1, 2, 0, &f), 0);
	assert_view(f, "A01");
	tu_guard_free(&p.g);
}

static void test_v27_truncation(void **state)
{
	struct parsed p;
	struct mllp_str f, c;

	(void)state;
	parse_corpus(&p, "messages/v27_truncation.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.m.delims.field, '|');
	assert_int_equal(p.m.delims.component, '^');
	assert_int_equal(p.m.delims.repetition, '~');
	assert_int_equal(p.m.delims.escape, '\\');
	assert_int_equal(p.m.delims.subcomponent, '&');
	assert_int_equal(p.m.delims.truncation, '#');
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 2, &f), 0);
	assert_view(f, "^~\\&#");
	assert_view(p.m.sending_app, "APP");
	assert_view(p.m.control_id, "TRUNC-1");
	assert_view(p.m.version, "2.7");
	assert_view(p.m.structure, "ADT_A01");
	/* The truncation character is data, not a separator. */
	field_of(&p.m, "PID", 1, 5, &f);
	assert_view(f, "LONGNAME#^ANN");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 0, &c), 0);
	assert_view(c, "LONGNAME#");
	tu_guard_free(&p.g);
}

static void test_custom_field_separator(void **state)
{
	struct parsed p;
	struct mllp_str f;

	(void)state;
	parse_corpus(&p, "acks/aa_custom_delims.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.m.delims.field, '#');
	assert_int_equal(p.m.delims.truncation, 0);
	assert_view(p.m.sending_app, "SuperOE");
	assert_view(p.m.message_type, "ACK^A01^ACK");
	assert_view(p.m.control_id, "ACK-0001");
	assert_view(p.m.version, "2.5");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 1, &f), 0);
	assert_view(f, "#");
	field_of(&p.m, "MSA", 1, 1, &f);
	assert_view(f, "AA");
	field_of(&p.m, "MSA", 1, 2, &f);
	assert_view(f, "01052901");

	/* Other delimiters of one's own. */
	tu_guard_free(&p.g);
	parse_str(&p, "MSH!*@%$!S!F!R!G!2020!!ORU*R01*X!ID7!P!2.4\r"
		      "OBX!1!a*b@c*d$e\r");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.m.delims.component, '*');
	assert_int_equal(p.m.delims.repetition, '@');
	assert_int_equal(p.m.delims.escape, '%');
	assert_int_equal(p.m.delims.subcomponent, '$');
	assert_view(p.m.type, "ORU");
	assert_view(p.m.trigger, "R01");
	assert_view(p.m.structure, "X");
	assert_view(p.m.control_id, "ID7");
	field_of(&p.m, "OBX", 1, 2, &f);
	{
		struct mllp_str c;

		assert_int_equal(mllp_hl7_component(&p.m, f, 2, 2, 2, &c), 0);
		assert_view(c, "e");
		assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
		assert_view(c, "b");
	}
	tu_guard_free(&p.g);
}

static void test_enhanced_mode(void **state)
{
	struct parsed p;

	(void)state;
	parse_corpus(&p, "messages/enhanced_mode.hl7");
	assert_int_equal(p.rc, 0);
	assert_view(p.m.accept_ack_type, "AL");
	assert_view(p.m.app_ack_type, "AL");
	assert_true(mllp_hl7_is_enhanced_mode(&p.m));
	tu_guard_free(&p.g);

	parse_corpus(&p, "messages/adt_a08_utf8.hl7");
	assert_int_equal(p.rc, 0);
	assert_view(p.m.accept_ack_type, "AL");
	assert_view(p.m.app_ack_type, "NE");
	assert_true(mllp_hl7_is_enhanced_mode(&p.m));
	tu_guard_free(&p.g);

	parse_str(&p, "MSH|^~\\&|A|B|C|D|2020||ADT^A01|1|P|2.5||||NE\r");
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.m.accept_ack_type.len, 0);
	assert_view(p.m.app_ack_type, "NE");
	assert_true(mllp_hl7_is_enhanced_mode(&p.m));
	tu_guard_free(&p.g);
	assert_false(mllp_hl7_is_enhanced_mode(NULL));
}

static void test_not_hl7_and_bad_msh(void **state)
{
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
	    {"", MLLP_ERR_NOT_HL7},
	    {"\r\n\r", MLLP_ERR_NOT_HL7},
	    {"MS", MLLP_ERR_NOT_HL7},
	    {"msh|^~\\&|", MLLP_ERR_NOT_HL7},
	    {"PID|1\r", MLLP_ERR_NOT_HL7},
	    {"<ack status=\"ok\"/>", MLLP_ERR_NOT_HL7},
	    {" MSH|^~\\&|", MLLP_ERR_NOT_HL7},
	    {"\x0bMSH|^~\\&|", MLLP_ERR_NOT_HL7},
	    {"MSH", MLLP_ERR_BAD_MSH},
	    {"MSH\rPID|1", MLLP_ERR_BAD_MSH},
	    {"MSH|", MLLP_ERR_BAD_MSH},
	    {"MSH||A", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\|A|B", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\&#!|A", MLLP_ERR_BAD_MSH},
	    {"MSH|^^\\&|A", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\a|A", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\ |A", MLLP_ERR_BAD_MSH},
	    {"MSHA^~\\&A", MLLP_ERR_BAD_MSH},
	    {"MSH ^~\\& ", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\&\xe9|", MLLP_ERR_BAD_MSH},
	    {"MSH|^~\\&\r|", 0},
	    {"MSH|^~\\&", 0},
	    {"MSH|^~\\&#", 0},
	    {"\n\nMSH|^~\\&|", 0},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct parsed p;

		parse_str(&p, cases[i].in);
		if (p.rc != cases[i].rc)
			fail_msg("case %zu \"%s\": rc %d (%s), expected %d", i,
				 cases[i].in, p.rc, mllp_err_name(p.rc),
				 cases[i].rc);
		assert_int_equal(p.m.len, strlen(cases[i].in));
		tu_guard_free(&p.g);
	}
}

static void test_bad_arguments(void **state)
{
	struct mllp_hl7_msg m;

	(void)state;
	assert_int_equal(mllp_hl7_parse(NULL, "MSH|^~\\&|", 9),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_parse(&m, NULL, 9),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_parse(&m, NULL, 0), MLLP_ERR_NOT_HL7);
}

static void test_str_eq(void **state)
{
	struct mllp_str e = {NULL, 0};

	(void)state;
	assert_true(mllp_str_eq(str_of("abc"), "abc"));
	assert_false(mllp_str_eq(str_of("abc"), "ab"));
	assert_false(mllp_str_eq(str_of("ab"), "abc"));
	assert_false(mllp_str_eq(str_of("abc"), "abd"));
	assert_true(mllp_str_eq(e, ""));
	assert_true(mllp_str_eq(e, NULL));
	assert_false(mllp_str_eq(str_of("a"), NULL));
	assert_false(mllp_str_eq(e, "a"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_adt_a01_msh),
	    cmocka_unit_test(test_lf_and_crlf_like_cr),
	    cmocka_unit_test(test_segments_count_and_order),
	    cmocka_unit_test(test_empty_lines_and_leading_terminators),
	    cmocka_unit_test(test_msh_field_numbering),
	    cmocka_unit_test(test_v27_truncation),
	    cmocka_unit_test(test_custom_field_separator),
	    cmocka_unit_test(test_enhanced_mode),
	    cmocka_unit_test(test_not_hl7_and_bad_msh),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_str_eq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* HL7 v2 views: MSH parsing with the message's own delimiters, segment
 * iteration, field/repetition/component/subcomponent access, every corpus
 * message. Corpus inputs sit right before a guard page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
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

static struct mllp_str str_of(const char *s)
{
	struct mllp_str v = {s, strlen(s)};
	return v;
}

/* Parse a string literal (copied before a guard page). */
struct parsed {
	struct tu_guard g;
	struct mllp_hl7_msg m;
	int rc;
};

static void parse_str(struct parsed *p, const char *s)
{
	size_t n = strlen(s);
	unsigned char *d = tu_guard_copy(&p->g, s, n);

	p->rc = mllp_hl7_parse(&p->m, d, n);
}

static void parse_corpus(struct parsed *p, const char *rel)
{
	size_t n;
	unsigned char *raw = tu_corpus(rel, &n);
	unsigned char *d = tu_guard_copy(&p->g, raw, n);

	free(raw);
	p->rc = mllp_hl7_parse(&p->m, d, n);
}

static void field_of(const struct mllp_hl7_msg *m, const char *seg_id,
		     unsigned nth, unsigned idx, struct mllp_str *out)
{
	struct mllp_str seg;

	assert_int_equal(mllp_hl7_find_segment(m, seg_id, nth, &seg), 0);
	assert_int_equal(mllp_hl7_field(m, seg, idx, out), 0);
}

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

static void test_fields_components_repetitions(void **state)
{
	struct parsed p;
	struct mllp_str pid, f, c;

	(void)state;
	parse_corpus(&p, "messages/adt_a01.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "PID", 1, &pid), 0);
	assert_int_equal(mllp_hl7_field(&p.m, pid, 0, &f), 0);
	assert_view(f, "PID");
	/* Empty fields are present and empty. */
	assert_int_equal(mllp_hl7_field(&p.m, pid, 1, &f), 0);
	assert_view(f, "");
	assert_int_equal(mllp_hl7_field(&p.m, pid, 2, &f), 0);
	assert_view(f, "");
	assert_int_equal(mllp_hl7_field(&p.m, pid, 3, &f), 0);
	assert_view(f, "56782445^^^UAReg^PI");
	assert_int_equal(mllp_hl7_component(&p.m, f, 0, 0, 0, &c), 0);
	assert_view(c, "56782445^^^UAReg^PI");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 0, &c), 0);
	assert_view(c, "56782445");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
	assert_view(c, "");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 0, &c), 0);
	assert_view(c, "UAReg");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 5, 0, &c), 0);
	assert_view(c, "PI");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 6, 0, &c),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_component(&p.m, f, 2, 0, 0, &c),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 1, &c), 0);
	assert_view(c, "56782445");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 2, &c),
			 MLLP_ERR_NOT_FOUND);

	/* PID-11: two repetitions. */
	assert_int_equal(mllp_hl7_field(&p.m, pid, 11, &f), 0);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 0, &c), 0);
	assert_view(c, "260 GOODWIN CREST DRIVE");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 7, 0, &c), 0);
	assert_view(c, "M");
	assert_int_equal(mllp_hl7_component(&p.m, f, 2, 0, 0, &c), 0);
	assert_view(c, "NICKELL'S PICKLES^10000 W 100TH AVE^BIRMINGHAM^AL^"
		       "35200^^O");
	assert_int_equal(mllp_hl7_component(&p.m, f, 2, 1, 0, &c), 0);
	assert_view(c, "NICKELL'S PICKLES");
	assert_int_equal(mllp_hl7_component(&p.m, f, 2, 7, 0, &c), 0);
	assert_view(c, "O");
	assert_int_equal(mllp_hl7_component(&p.m, f, 3, 0, 0, &c),
			 MLLP_ERR_NOT_FOUND);
	/* rep 0: the whole field is split into components. */
	assert_int_equal(mllp_hl7_component(&p.m, f, 0, 7, 0, &c), 0);
	assert_view(c, "M~NICKELL'S PICKLES");

	/* Last field, and past the end. */
	assert_int_equal(mllp_hl7_field(&p.m, pid, 17, &f), 0);
	assert_view(f, "");
	assert_int_equal(mllp_hl7_field(&p.m, pid, 18, &f), 0);
	assert_view(f, "0105I30001^^^99DEF^AN");
	assert_int_equal(mllp_hl7_field(&p.m, pid, 19, &f), MLLP_ERR_NOT_FOUND);

	/* nth segment. */
	field_of(&p.m, "OBX", 2, 3, &f);
	assert_view(f, "^Body Weight");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
	assert_view(c, "Body Weight");
	field_of(&p.m, "DG1", 1, 6, &f);
	assert_view(f, "A");
	assert_int_equal(mllp_hl7_find_segment(&p.m, "OBX", 3, &pid),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "OBX", 0, &pid),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZZ", 1, &pid),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "", 1, &pid),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, NULL, 1, &pid),
			 MLLP_ERR_INVALID_ARGUMENT);
	tu_guard_free(&p.g);
}

static void test_subcomponents_err(void **state)
{
	struct parsed p;
	struct mllp_str err, f, c;

	(void)state;
	parse_corpus(&p, "acks/ae.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ERR", 1, &err), 0);
	assert_view(err, "ERR|^^^207&Application internal error&HL70357||207|"
			 "E||||Patient not found");
	assert_int_equal(mllp_hl7_field(&p.m, err, 1, &f), 0);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 0, &c), 0);
	assert_view(c, "207&Application internal error&HL70357");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 1, &c), 0);
	assert_view(c, "207");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 2, &c), 0);
	assert_view(c, "Application internal error");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 3, &c), 0);
	assert_view(c, "HL70357");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 4, 4, &c),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 1, &c), 0);
	assert_view(c, "");
	assert_int_equal(mllp_hl7_field(&p.m, err, 3, &f), 0);
	assert_view(f, "207");
	assert_int_equal(mllp_hl7_field(&p.m, err, 4, &f), 0);
	assert_view(f, "E");
	assert_int_equal(mllp_hl7_field(&p.m, err, 8, &f), 0);
	assert_view(f, "Patient not found");
	assert_int_equal(mllp_hl7_field(&p.m, err, 9, &f), MLLP_ERR_NOT_FOUND);
	tu_guard_free(&p.g);
}

static void test_edge_fields(void **state)
{
	struct parsed p;
	struct mllp_str seg, f, c;

	(void)state;
	parse_str(&p, "MSH|^~\\&\rZZ1|a|\rZZ2\rZZ3||\rZZ1X|b\r");
	assert_int_equal(p.rc, 0);
	/* MSH with nothing after MSH-2: every field view empty. */
	assert_view(p.m.msh, "MSH|^~\\&");
	assert_int_equal(p.m.sending_app.len, 0);
	assert_int_equal(p.m.control_id.len, 0);
	assert_int_equal(p.m.message_type.len, 0);
	assert_int_equal(p.m.type.len, 0);
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 2, &f), 0);
	assert_view(f, "^~\\&");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 3, &f),
			 MLLP_ERR_NOT_FOUND);

	/* Trailing separator: the last field is present and empty. */
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZ1", 1, &seg), 0);
	assert_view(seg, "ZZ1|a|");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 1, &f), 0);
	assert_view(f, "a");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 2, &f), 0);
	assert_view(f, "");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 1, &c), 0);
	assert_view(c, "");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_field(&p.m, seg, 3, &f), MLLP_ERR_NOT_FOUND);
	/* "ZZ1X" is not "ZZ1". */
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZ1", 2, &seg),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZ1X", 1, &seg), 0);

	/* A segment that is only its id. */
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZ2", 1, &seg), 0);
	assert_int_equal(mllp_hl7_field(&p.m, seg, 0, &f), 0);
	assert_view(f, "ZZ2");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 1, &f), MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_find_segment(&p.m, "ZZ3", 1, &seg), 0);
	assert_int_equal(mllp_hl7_field(&p.m, seg, 2, &f), 0);
	assert_view(f, "");

	/* Views over literals and bad arguments. */
	assert_int_equal(mllp_hl7_component(&p.m, str_of("a&b^c"), 0, 0, 2, &c),
			 0);
	assert_view(c, "b^c");
	assert_int_equal(mllp_hl7_field(NULL, seg, 1, &f),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_field(&p.m, seg, 1, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 1, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
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

static void test_escapes_left_as_is(void **state)
{
	struct parsed p;
	struct mllp_str f, c;
	static const char obx5[] = "Pipe \\F\\ caret \\S\\ tilde \\R\\ amp "
				   "\\T\\ backslash \\E\\ hex \\X0D0A\\ done";

	(void)state;
	parse_corpus(&p, "messages/escapes.hl7");
	assert_int_equal(p.rc, 0);
	field_of(&p.m, "OBX", 1, 5, &f);
	assert_view(f, obx5);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 1, 1, &c), 0);
	assert_view(c, obx5);
	field_of(&p.m, "OBX", 1, 11, &f);
	assert_view(f, "F");
	tu_guard_free(&p.g);
}

static void test_latin1_and_utf8_bytes(void **state)
{
	struct parsed p;
	struct mllp_str f, c;

	(void)state;
	parse_corpus(&p, "messages/adt_a04_latin1.hl7");
	assert_int_equal(p.rc, 0);
	assert_view(p.m.control_id, "MSG-L1-0001");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 17, &f), 0);
	assert_view(f, "DEU");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 18, &f), 0);
	assert_view(f, "8859/1");
	field_of(&p.m, "PID", 1, 5, &f);
	assert_view(f, "Gr\xf6\xdf"
		       "e^J\xfcrgen");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
	assert_view(c, "J\xfcrgen");
	field_of(&p.m, "PID", 1, 11, &f);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 3, 0, &c), 0);
	assert_view(c, "K\xf6ln");
	tu_guard_free(&p.g);

	parse_corpus(&p, "messages/adt_a08_utf8.hl7");
	assert_int_equal(p.rc, 0);
	assert_view(p.m.sending_facility, "H\xc3\x94PITAL-NORD");
	assert_view(p.m.version, "2.5.1");
	assert_int_equal(mllp_hl7_field(&p.m, p.m.msh, 18, &f), 0);
	assert_view(f, "UNICODE UTF-8");
	field_of(&p.m, "PID", 1, 5, &f);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
	assert_view(c, "Zo\xc3\xab");
	tu_guard_free(&p.g);
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

/* The batch is not a message, but its MSH segments can be found and each
 * parsed where it starts. */
static void test_batch(void **state)
{
	struct parsed p;
	struct mllp_str seg, f;
	unsigned i;
	char want[16];

	(void)state;
	parse_corpus(&p, "messages/batch_3.hl7");
	assert_int_equal(p.rc, MLLP_ERR_NOT_HL7);
	assert_int_equal(p.m.delims.field, '|');
	assert_int_equal(mllp_hl7_find_segment(&p.m, "FHS", 1, &seg), 0);
	assert_int_equal(mllp_hl7_field(&p.m, seg, 1, &f), 0);
	assert_view(f, "|");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 2, &f), 0);
	assert_view(f, "^~\\&");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 3, &f), 0);
	assert_view(f, "FEED");
	assert_int_equal(mllp_hl7_field(&p.m, seg, 11, &f), 0);
	assert_view(f, "FILE-1");
	field_of(&p.m, "BHS", 1, 11, &f);
	assert_view(f, "BATCH-1");
	field_of(&p.m, "BTS", 1, 1, &f);
	assert_view(f, "3");
	field_of(&p.m, "FTS", 1, 1, &f);
	assert_view(f, "1");
	for (i = 1; i <= 3; i++) {
		struct mllp_hl7_msg one;
		size_t rest;

		assert_int_equal(mllp_hl7_find_segment(&p.m, "MSH", i, &seg),
				 0);
		rest = p.m.len - (size_t)(seg.ptr - p.m.data);
		assert_int_equal(mllp_hl7_parse(&one, seg.ptr, rest), 0);
		snprintf(want, sizeof(want), "B1-000%u", i);
		assert_view(one.control_id, want);
		assert_view(one.message_type, "ADT^A01^ADT_A01");
		assert_ptr_equal(one.msh.ptr, seg.ptr);
		assert_int_equal(one.msh.len, seg.len);
	}
	assert_int_equal(mllp_hl7_find_segment(&p.m, "MSH", 4, &seg),
			 MLLP_ERR_NOT_FOUND);
	tu_guard_free(&p.g);
}

static void test_one_mib_message(void **state)
{
	struct parsed p;
	struct mllp_str f, c;

	(void)state;
	parse_corpus(&p, "messages/oru_r01_pdf_1mb.hl7");
	assert_int_equal(p.rc, 0);
	assert_true(p.m.len > 1000000);
	assert_view(p.m.control_id, "ORU-PDF-0001");
	assert_view(p.m.message_type, "ORU^R01^ORU_R01");
	assert_true(p.m.msh.len < 200);
	field_of(&p.m, "OBX", 1, 5, &f);
	assert_true(f.len > 1000000);
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 2, 0, &c), 0);
	assert_view(c, "AP");
	assert_int_equal(mllp_hl7_component(&p.m, f, 1, 5, 0, &c), 0);
	assert_true(c.len > 1000000);
	assert_memory_equal(c.ptr, "JVBERi0", 7);
	tu_guard_free(&p.g);
}

/* The common checks for one message of the corpus. */
static void check_message(const char *name, const void *data, size_t len)
{
	struct tu_guard g;
	struct mllp_hl7_msg m;
	struct mllp_str seg, f;
	size_t cursor = 0;
	unsigned nseg = 0;
	unsigned char *d = tu_guard_copy(&g, data, len);
	int rc = mllp_hl7_parse(&m, d, len);

	if (rc != 0)
		fail_msg("%s: parse failed: %s", name, mllp_err_name(rc));
	if (m.type.len != 3 || m.trigger.len != 3 || m.structure.len < 7)
		fail_msg("%s: MSH-9 parts \"%.*s\"", name,
			 (int)m.message_type.len, m.message_type.ptr);
	if (m.control_id.len == 0)
		fail_msg("%s: empty MSH-10", name);
	assert_int_equal(m.delims.field, '|');
	assert_int_equal(m.delims.component, '^');
	assert_int_equal(m.delims.repetition, '~');
	assert_int_equal(m.delims.escape, '\\');
	assert_int_equal(m.delims.subcomponent, '&');
	assert_true(m.version.len >= 3);
	assert_true(m.sending_app.len > 0 && m.receiving_app.len > 0);
	assert_int_equal(mllp_hl7_field(&m, m.msh, 10, &f), 0);
	assert_ptr_equal(f.ptr, m.control_id.ptr);
	while (mllp_hl7_next_segment(&m, &cursor, &seg)) {
		if (nseg == 0) {
			assert_ptr_equal(seg.ptr, m.msh.ptr);
			assert_int_equal(seg.len, m.msh.len);
		}
		assert_true(seg.len >= 4);
		assert_int_equal(seg.ptr[3], '|');
		nseg++;
	}
	assert_true(nseg >= 2);
	tu_guard_free(&g);
}

/* Frames of an MLLP stream, unwrapped by hand (the framer tests cover the
 * framer). */
static size_t for_each_frame(const unsigned char *s, size_t n,
			     void (*fn)(const char *, const void *, size_t,
					size_t))
{
	size_t i = 0, count = 0;

	while (i < n) {
		const unsigned char *sb = memchr(s + i, 0x0b, n - i);
		const unsigned char *eb;

		if (sb == NULL)
			break;
		eb = memchr(sb, 0x1c, n - (size_t)(sb - s));
		assert_non_null(eb);
		assert_true((size_t)(eb - s) + 1 < n);
		assert_int_equal(eb[1], 0x0d);
		fn("feed_100.mllp", sb + 1, (size_t)(eb - sb - 1), count);
		count++;
		i = (size_t)(eb - s) + 2;
	}
	return count;
}

static void check_feed_frame(const char *name, const void *data, size_t len,
			     size_t i)
{
	struct mllp_hl7_msg m;
	char want[16];

	check_message(name, data, len);
	assert_int_equal(mllp_hl7_parse(&m, data, len), 0);
	snprintf(want, sizeof(want), "FEED%06zu", i);
	assert_view(m.control_id, want);
}

static void test_every_corpus_message(void **state)
{
	const char *dir = tu_corpus_dir(state);
	char **names;
	size_t n = tu_corpus_list_at(dir, "messages", &names), i, len;
	unsigned seen = 0;

	assert_true(n >= 12);
	for (i = 0; i < n; i++) {
		unsigned char *raw = tu_corpus_at(dir, names[i], &len);

		if (strstr(names[i], "batch_3") != NULL) {
			/* test_batch. */
		} else if (strstr(names[i], ".mllp") != NULL) {
			assert_int_equal(
			    for_each_frame(raw, len, check_feed_frame), 100);
			seen++;
		} else {
			check_message(names[i], raw, len);
			seen++;
		}
		free(raw);
	}
	assert_int_equal(seen, n - 1);
	tu_free_names(names, n);
	tu_corpus_checked(dir, n, "messages/ files");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_adt_a01_msh),
	    cmocka_unit_test(test_lf_and_crlf_like_cr),
	    cmocka_unit_test(test_segments_count_and_order),
	    cmocka_unit_test(test_empty_lines_and_leading_terminators),
	    cmocka_unit_test(test_msh_field_numbering),
	    cmocka_unit_test(test_fields_components_repetitions),
	    cmocka_unit_test(test_subcomponents_err),
	    cmocka_unit_test(test_edge_fields),
	    cmocka_unit_test(test_v27_truncation),
	    cmocka_unit_test(test_custom_field_separator),
	    cmocka_unit_test(test_enhanced_mode),
	    cmocka_unit_test(test_escapes_left_as_is),
	    cmocka_unit_test(test_latin1_and_utf8_bytes),
	    cmocka_unit_test(test_not_hl7_and_bad_msh),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_str_eq),
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_one_mib_message),
	    TU_CORPUS_TESTS(test_every_corpus_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

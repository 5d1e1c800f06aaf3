/* HL7 v2 views over whole inputs: batches, a 1 MiB message, and every
 * corpus message (inputs right before a guard page). */
#include "hl7_util.h"

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
	    cmocka_unit_test(test_batch),
	    cmocka_unit_test(test_one_mib_message),
	    TU_CORPUS_TESTS(test_every_corpus_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

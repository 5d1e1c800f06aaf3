/* HL7 v2 views: field, repetition, component and subcomponent access,
 * edge fields, escapes and non-ASCII bytes left as they are. */
#include "hl7_util.h"

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

/* mllp_hl7_value: a path SEG-F[.C[.S]] (the first repetition). */
static void test_value_paths(void **state)
{
	struct parsed p;
	struct mllp_str v;

	(void)state;
	parse_corpus(&p, "messages/adt_a01.hl7");
	assert_int_equal(p.rc, 0);
	assert_int_equal(mllp_hl7_value(&p.m, "PID-3", &v), 0);
	assert_view(v, "56782445^^^UAReg^PI");
	assert_int_equal(mllp_hl7_value(&p.m, "PID-3.1", &v), 0);
	assert_view(v, "56782445");
	assert_int_equal(mllp_hl7_value(&p.m, "PID-3.4", &v), 0);
	assert_view(v, "UAReg");
	assert_int_equal(mllp_hl7_value(&p.m, "PID-3.1.1", &v), 0);
	assert_view(v, "56782445");
	assert_int_equal(mllp_hl7_value(&p.m, "PID-2", &v), 0);
	assert_view(v, "");
	assert_int_equal(mllp_hl7_value(&p.m, "PID-3.9", &v),
			 MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_value(&p.m, "ZZZ-1", &v), MLLP_ERR_NOT_FOUND);
	assert_int_equal(mllp_hl7_value(&p.m, "PID-999", &v),
			 MLLP_ERR_NOT_FOUND);
	static const char *const bad[] = {
	    "PID",	   "PID3",   "PID-", "PID-0",	   "pid-3", "PID-3.",
	    "PID-3.1.1.1", "PID-3x", "PI-3", "PID-123456", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(mllp_hl7_value(&p.m, bad[i], &v),
				 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_value(&p.m, NULL, &v),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_hl7_value(NULL, "PID-3", &v),
			 MLLP_ERR_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields_components_repetitions),
	    cmocka_unit_test(test_subcomponents_err),
	    cmocka_unit_test(test_edge_fields),
	    cmocka_unit_test(test_escapes_left_as_is),
	    cmocka_unit_test(test_latin1_and_utf8_bytes),
	    cmocka_unit_test(test_value_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

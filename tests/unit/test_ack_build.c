/* ACK generation: the reference's generation checks, delimiters,
 * timestamps, arguments, and a build-then-verify round trip for every
 * corpus message and code. */
#include "ack_util.h"

#define assert_views_equal(a, b)                                               \
	do {                                                                   \
		struct mllp_str a_ = (a), b_ = (b);                            \
		if (a_.len != b_.len ||                                        \
		    (a_.len > 0 && memcmp(a_.ptr, b_.ptr, a_.len) != 0))       \
			fail_msg("\"%.*s\" != \"%.*s\"", (int)a_.len,          \
				 a_.ptr ? a_.ptr : "", (int)b_.len,            \
				 b_.ptr ? b_.ptr : "");                        \
	} while (0)

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
	o->now_s = T0;
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
	assert_int_equal(o.now_s, 0);
	o.now_s = T0;
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
		o.now_s = fixed[i].t;
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
		o.now_s = (int64_t)t;
		assert_int_equal(mllp_ack_build(MSG("1"), strlen(MSG("1")), &o,
						out, sizeof(out), &len),
				 0);
		assert_int_equal(mllp_hl7_parse(&a, out, len), 0);
		assert_view(a.timestamp, want);
	}
	/* now == 0: the current time. */
	opts_at(&o, "AA");
	o.now_s = 0;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
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

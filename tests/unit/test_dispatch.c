/* The built-in ACK dispatcher on its own: the code it asks for, and the
 * counts it keeps, which must match what mllp_ack_build() then sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <mllp/mllp.h>

static const char good[] = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\r";
/* Starts with "MSH" but MSH-2 clashes: not parsable. */
static const char bad_msh[] = "MSH|||||\r";
static const char not_hl7[] = "<ack status=\"ok\"/>";

static void dispatch(struct mllp_ack_dispatcher *d, const char *data,
		     enum mllp_msg_kind kind, struct mllp_reply *rep)
{
	struct mllp_message m = {.data = (const unsigned char *)data,
				 .len = strlen(data),
				 .kind = kind};
	memset(rep, 0, sizeof(*rep));
	mllp_dispatch_ack(d, &m, rep);
}

/* The code of the ACK that mllp_ack_build() makes for this reply. */
static void sent_code(const char *data, const struct mllp_reply *rep,
		      char code[3])
{
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.code = rep->ack_code;
	o.text = rep->ack_text;
	char out[512];
	size_t n;
	assert_int_equal(
	    mllp_ack_build(data, strlen(data), &o, out, sizeof(out), &n), 0);
	out[n] = 0;
	const char *msa = strstr(out, "\rMSA|");
	assert_non_null(msa);
	memcpy(code, msa + 5, 2);
	code[2] = 0;
}

static void test_counts_follow_what_is_sent(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.code = "AE";
	struct {
		const char *data;
		enum mllp_msg_kind kind;
		const char *want;
	} cases[] = {
	    {good, MLLP_MSG_HL7, "AE"},
	    {bad_msh, MLLP_MSG_HL7, "AR"},
	    {not_hl7, MLLP_MSG_UNKNOWN, "AR"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mllp_reply rep;
		char code[3];
		dispatch(&d, cases[i].data, cases[i].kind, &rep);
		assert_int_equal(rep.kind, MLLP_REPLY_ACK);
		sent_code(cases[i].data, &rep, code);
		assert_string_equal(code, cases[i].want);
	}
	assert_int_equal(d.counts[MLLP_ACK_AE], 1);
	assert_int_equal(d.counts[MLLP_ACK_AR], 2);
	assert_int_equal(d.counts[MLLP_ACK_AA], 0);
}

static void test_mix_counts_add_up(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=2,AE=1,AR=1"), 0);
	uint64_t seen[MLLP_ACK_CODE_COUNT] = {0};
	for (int i = 0; i < 400; i++) {
		struct mllp_reply rep;
		char code[3];
		dispatch(&d, good, MLLP_MSG_HL7, &rep);
		sent_code(good, &rep, code);
		seen[strcmp(code, "AA") == 0   ? MLLP_ACK_AA
		     : strcmp(code, "AE") == 0 ? MLLP_ACK_AE
					       : MLLP_ACK_AR]++;
	}
	for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
		assert_int_equal(d.counts[i], seen[i]);
	assert_true(seen[MLLP_ACK_AA] > seen[MLLP_ACK_AE]);
	assert_true(seen[MLLP_ACK_AE] > 0 && seen[MLLP_ACK_AR] > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts_follow_what_is_sent),
	    cmocka_unit_test(test_mix_counts_add_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

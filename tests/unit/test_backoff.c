/* Reconnect delay sequences, deterministic. */
#include "testutil.h"
#include <mllp/backoff.h>
#include <mllp/error.h>

static void test_defaults(void **state)
{
	(void)state;
	struct mllp_backoff_config c;
	mllp_backoff_config_init(&c);
	assert_true(c.use_backoff);
	assert_int_equal(c.backoff_max_s, 180);
	assert_int_equal(c.auto_reconnect_interval_ms, 1000);
	assert_int_equal(c.jitter_percent, 0);
}

/* 1 s, 2 s, 4 s ... capped at 180 s. */
static void test_exponential_sequence(void **state)
{
	(void)state;
	struct mllp_backoff b;
	assert_int_equal(mllp_backoff_init(&b, NULL), 0);
	static const uint64_t want[] = {1000,	2000,	4000,  8000,
					16000,	32000,	64000, 128000,
					180000, 180000, 180000};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(mllp_backoff_fail(&b), want[i]);
	/* Stays capped however long it fails. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(mllp_backoff_fail(&b), 180000);
}

/* The reference's case: 1 after success, 2 after one failure, 4 later,
 * and back to 1 after a reset. */
static void test_reset_on_success(void **state)
{
	(void)state;
	struct mllp_backoff b;
	assert_int_equal(mllp_backoff_init(&b, NULL), 0);
	assert_int_equal(mllp_backoff_peek(&b), 1000);
	mllp_backoff_fail(&b);
	assert_int_equal(mllp_backoff_peek(&b), 2000);
	mllp_backoff_fail(&b);
	assert_int_equal(mllp_backoff_peek(&b), 4000);
	mllp_backoff_reset(&b);
	assert_int_equal(mllp_backoff_peek(&b), 1000);
	assert_int_equal(b.failures, 0);
	assert_int_equal(mllp_backoff_fail(&b), 1000);
}

static void test_small_cap(void **state)
{
	(void)state;
	struct mllp_backoff_config c;
	struct mllp_backoff b;
	mllp_backoff_config_init(&c);
	c.backoff_max_s = 3;
	assert_int_equal(mllp_backoff_init(&b, &c), 0);
	assert_int_equal(mllp_backoff_fail(&b), 1000);
	assert_int_equal(mllp_backoff_fail(&b), 2000);
	assert_int_equal(mllp_backoff_fail(&b), 3000);
	assert_int_equal(mllp_backoff_fail(&b), 3000);
}

static void test_fixed_interval(void **state)
{
	(void)state;
	struct mllp_backoff_config c;
	struct mllp_backoff b;
	mllp_backoff_config_init(&c);
	c.use_backoff = false;
	c.auto_reconnect_interval_ms = 250;
	assert_int_equal(mllp_backoff_init(&b, &c), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(mllp_backoff_fail(&b), 250);
	mllp_backoff_reset(&b);
	assert_int_equal(mllp_backoff_fail(&b), 250);
}

struct seq_rng {
	uint64_t values[4];
	unsigned i;
};

static uint64_t seq_random(void *ctx)
{
	struct seq_rng *r = ctx;
	return r->values[r->i++ % 4];
}

/* Jitter takes value % (span + 1) off the delay, span = percent of it. */
static void test_jitter(void **state)
{
	(void)state;
	struct seq_rng rng = {{0, 100, 1000000, 501}, 0};
	struct mllp_backoff_config c;
	struct mllp_backoff b;
	mllp_backoff_config_init(&c);
	c.jitter_percent = 50;
	c.random = seq_random;
	c.random_ctx = &rng;
	assert_int_equal(mllp_backoff_init(&b, &c), 0);
	assert_int_equal(mllp_backoff_fail(&b), 1000);	     /* -0 */
	assert_int_equal(mllp_backoff_fail(&b), 2000 - 100); /* -100 */
	assert_int_equal(mllp_backoff_fail(&b), 4000 - 1000000 % 2001);
	assert_int_equal(mllp_backoff_fail(&b), 8000 - 501);
	/* Jitter never changes the underlying sequence. */
	assert_int_equal(mllp_backoff_peek(&b), 16000);
	/* Never more than the percentage. */
	for (int i = 0; i < 50; i++) {
		uint64_t base = mllp_backoff_peek(&b);
		uint64_t d = mllp_backoff_fail(&b);
		assert_true(d <= base && d >= base / 2);
	}
}

static void test_invalid_config(void **state)
{
	(void)state;
	struct mllp_backoff_config c;
	struct mllp_backoff b;

	mllp_backoff_config_init(&c);
	c.backoff_max_s = 0;
	assert_int_equal(mllp_backoff_init(&b, &c), MLLP_ERR_INVALID_ARGUMENT);

	mllp_backoff_config_init(&c);
	c.use_backoff = false;
	c.auto_reconnect_interval_ms = 0;
	assert_int_equal(mllp_backoff_init(&b, &c), MLLP_ERR_INVALID_ARGUMENT);

	mllp_backoff_config_init(&c);
	c.jitter_percent = 101;
	c.random = seq_random;
	assert_int_equal(mllp_backoff_init(&b, &c), MLLP_ERR_INVALID_ARGUMENT);

	mllp_backoff_config_init(&c);
	c.jitter_percent = 10; /* no random source */
	assert_int_equal(mllp_backoff_init(&b, &c), MLLP_ERR_INVALID_ARGUMENT);

	assert_int_equal(mllp_backoff_init(NULL, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_exponential_sequence),
	    cmocka_unit_test(test_reset_on_success),
	    cmocka_unit_test(test_small_cap),
	    cmocka_unit_test(test_fixed_interval),
	    cmocka_unit_test(test_jitter),
	    cmocka_unit_test(test_invalid_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

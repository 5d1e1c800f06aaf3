/* Unit tests for the MLLP framer: wrap and unwrap, the reference's
 * envelope cases and a round trip of every corpus message. */
#include "framer_util.h"

/* ---- wrap / unwrap: the reference's envelope cases ------------------------
 */

static void test_wrap_simple(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap_check(NULL, "yes", 3), 0);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, SB "yes" EB CR, 6);
	assert_int_equal(mllp_wrapped_size(3), 6);
}

static void test_wrap_already_wrapped_unchanged(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" EB CR, 6), 1);
	assert_int_equal(
	    mllp_wrap(NULL, SB "yes" EB CR, 6, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, SB "yes" EB CR, 6);
	/* An empty wrapped payload is a frame too. */
	assert_int_equal(mllp_wrap_check(NULL, SB EB CR, 3), 1);
}

static void test_wrap_partial_is_refused(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, SB "yes", 4, out, sizeof(out), &n),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes", 4),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB, 1), MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB EB, 2),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB CR, 2),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" EB, 5),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" CR, 5),
			 MLLP_ERR_PARTIAL_WRAP);
	/* A trailer without the start byte is payload: it gets wrapped. */
	assert_int_equal(mllp_wrap_check(NULL, "yes" EB CR, 5), 0);
	assert_int_equal(mllp_wrap_check(NULL, EB CR, 2), 0);
	assert_int_equal(mllp_wrap_check(NULL, "", 0), 0);
	assert_int_equal(mllp_wrap(NULL, NULL, 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, SB EB CR, 3);
}

static void test_wrap_buffer_too_small(void **state)
{
	unsigned char out[6];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, 5, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 6);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, NULL, 0, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 6);
	assert_int_equal(mllp_wrap(NULL, SB "y" EB CR, 4, out, 3, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 4);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, 6, &n), 0);
}

static void test_wrap_invalid_arguments(void **state)
{
	unsigned char out[8];
	size_t n;
	const void *pl;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, sizeof(out), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap(NULL, NULL, 3, out, sizeof(out), &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, NULL, 64, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap_check(NULL, NULL, 3),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, NULL, 3, &pl, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, "yes", 3, NULL, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, "yes", 3, &pl, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
}

static void test_wrap_in_place(void **state)
{
	unsigned char buf[16] = "hello";
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, buf, 5, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, SB "hello" EB CR, 8);
}

static void test_unwrap_reference_cases(void **state)
{
	struct tu_guard g;
	const void *pl = NULL;
	size_t n = 99;
	const unsigned char *in;

	(void)state;
	/* "Unwrapping a simple message" */
	in = tu_guard_copy(&g, SB "yes" EB CR, 6);
	assert_int_equal(mllp_unwrap(NULL, in, 6, &pl, &n), 0);
	assert_ptr_equal(pl, in + 1);
	assert_int_equal(n, 3);
	assert_memory_equal(pl, "yes", 3);
	tu_guard_free(&g);

	/* "Unwrapping an unwrapped message": returned whole. */
	in = tu_guard_copy(&g, "yes", 3);
	assert_int_equal(mllp_unwrap(NULL, in, 3, &pl, &n), 0);
	assert_ptr_equal(pl, in);
	assert_int_equal(n, 3);
	tu_guard_free(&g);

	/* Partially wrapped: leading wrapper only, trailing wrapper only. */
	in = tu_guard_copy(&g, SB "yes", 4);
	assert_int_equal(mllp_unwrap(NULL, in, 4, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	tu_guard_free(&g);
	in = tu_guard_copy(&g, "yes" EB CR, 5);
	assert_int_equal(mllp_unwrap(NULL, in, 5, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	tu_guard_free(&g);

	/* Edges: empty, lone start byte, lone trailer, empty frame. */
	assert_int_equal(mllp_unwrap(NULL, "", 0, &pl, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mllp_unwrap(NULL, SB, 1, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, EB CR, 2, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, SB EB, 2, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, SB EB CR, 3, &pl, &n), 0);
	assert_int_equal(n, 0);
	/* Only one start byte and one trailer are removed. */
	assert_int_equal(mllp_unwrap(NULL, S(SB SB "x" EB CR EB CR), &pl, &n),
			 0);
	assert_int_equal(n, 4);
	assert_memory_equal(pl, SB "x" EB CR, 4);
}

static void test_wrap_unwrap_roundtrip_corpus(void **state)
{
	const char *dir = tu_corpus_dir(state);
	char **names;
	size_t count = tu_corpus_list_at(dir, "messages", &names);

	assert_true(count >= 12);
	for (size_t i = 0; i < count; i++) {
		size_t len, wlen, plen;
		unsigned char *msg = tu_corpus_at(dir, names[i], &len);
		int kind = mllp_wrap_check(NULL, msg, len);
		unsigned char *w;
		const unsigned char *gw;
		const void *pl;
		struct tu_guard g;

		assert_true(kind == 0 || kind == 1);
		w = malloc(len + 3);
		assert_non_null(w);
		assert_int_equal(mllp_wrap(NULL, msg, len, w, len + 3, &wlen),
				 0);
		if (kind == 1) {
			/* feed_100.mllp: already framed, returned as is. */
			assert_int_equal(wlen, len);
			assert_memory_equal(w, msg, len);
			free(w);
			free(msg);
			continue;
		}
		assert_int_equal(wlen, len + 3);
		gw = tu_guard_copy(&g, w, wlen);
		assert_int_equal(mllp_wrap_check(NULL, gw, wlen), 1);
		assert_int_equal(mllp_unwrap(NULL, gw, wlen, &pl, &plen), 0);
		assert_int_equal(plen, len);
		assert_ptr_equal(pl, gw + 1);
		assert_memory_equal(pl, msg, len);
		tu_guard_free(&g);
		/* Unwrapping the raw message returns it whole. */
		gw = tu_guard_copy(&g, msg, len);
		assert_int_equal(mllp_unwrap(NULL, gw, len, &pl, &plen), 0);
		assert_ptr_equal(pl, gw);
		assert_int_equal(plen, len);
		tu_guard_free(&g);
		free(w);
		free(msg);
	}
	tu_free_names(names, count);
	tu_corpus_checked(dir, count, "messages/ files");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrap_simple),
	    cmocka_unit_test(test_wrap_already_wrapped_unchanged),
	    cmocka_unit_test(test_wrap_partial_is_refused),
	    cmocka_unit_test(test_wrap_buffer_too_small),
	    cmocka_unit_test(test_wrap_invalid_arguments),
	    cmocka_unit_test(test_wrap_in_place),
	    cmocka_unit_test(test_unwrap_reference_cases),
	    TU_CORPUS_TESTS(test_wrap_unwrap_roundtrip_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

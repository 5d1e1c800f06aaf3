/* mllp_build_info(): what the linked library was built with, checked
 * against what this build's configuration says (CMake passes the
 * versions pkg-config found and the options chosen). */
#include <string.h>

#include "testutil.h"
#include <mllp/mllp.h>

static void test_fields(void **state)
{
	(void)state;
	const struct mllp_build_info *bi = mllp_build_info();
	assert_non_null(bi);
	assert_ptr_equal(bi,
			 mllp_build_info()); /* static, the same each time */
	assert_string_equal(bi->version, mllp_version());
	assert_string_equal(bi->version, MLLP_VERSION_STRING);
	assert_string_equal(bi->backends, "io_uring, epoll");
	assert_string_equal(bi->liburing_version, TEST_LIBURING_VERSION);
}

static void test_tls(void **state)
{
	(void)state;
	const struct mllp_build_info *bi = mllp_build_info();
	assert_int_equal(bi->wolfssl_version != NULL, mllp_tls_available());
#if MLLP_HAVE_TLS
	assert_non_null(bi->wolfssl_version);
	assert_string_equal(bi->wolfssl_version, TEST_WOLFSSL_VERSION);
#else
	assert_null(bi->wolfssl_version);
#endif
}

static void test_allocator(void **state)
{
	(void)state;
	const struct mllp_build_info *bi = mllp_build_info();
	assert_string_equal(bi->allocator, TEST_ALLOCATOR);
	if (strcmp(TEST_ALLOCATOR, "jemalloc") == 0) {
		/* pkg-config says "5.3.0_0" where the header says 5.3.0. */
		assert_non_null(bi->allocator_version);
		size_t n = strlen(bi->allocator_version);
		assert_true(n > 0);
		assert_memory_equal(bi->allocator_version,
				    TEST_JEMALLOC_VERSION, n);
		assert_true(strchr("_-.", TEST_JEMALLOC_VERSION[n]) != NULL);
	} else {
		assert_null(bi->allocator_version);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_tls),
	    cmocka_unit_test(test_allocator),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

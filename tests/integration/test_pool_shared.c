/* Linked against the shared libmllp, public API only: the pool allocates
 * from jemalloc's private arena while the process keeps the C library's
 * malloc (the library never replaces it), and a pool works end to end. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mllp/mllp.h>

static void test_malloc_not_replaced(void **state)
{
	(void)state;
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(NULL, &p, NULL), 0);
	assert_string_equal(mllp_pool_backend(p), "io_uring");
	Dl_info info;
	void *(*volatile fn)(size_t) = malloc;
	assert_true(dladdr((void *)fn, &info) != 0);
	assert_non_null(info.dli_fname);
	assert_null(strstr(info.dli_fname, "jemalloc"));
	void *m = malloc(64);
	assert_non_null(m);
	free(m);
	mllp_pool_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_malloc_not_replaced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Error table, names, messages and error records. */
#include <errno.h>
#include <string.h>

#include "testutil.h"
#include <mllp/error.h>
#include <mllp/version.h>

static void test_success(void **state)
{
	(void)state;
	assert_string_equal(mllp_strerror(0), "success");
	assert_string_equal(mllp_err_name(0), "MLLP_OK");
}

static void test_reference_texts(void **state)
{
	(void)state;
	assert_string_equal(mllp_strerror(-ECONNREFUSED), "connection refused");
	assert_string_equal(mllp_strerror(MLLP_ERR_TIMEOUT), "timed out");
	assert_string_equal(mllp_strerror(MLLP_ERR_CLOSED),
			    "connection closed");
	assert_string_equal(mllp_strerror(MLLP_ERR_INVALID_HEADER),
			    "Invalid header received in server acknowledgment");
	assert_string_equal(mllp_strerror(MLLP_ERR_DATA_AFTER_TRAILER),
			    "Data received after trailer");
	assert_string_equal(mllp_strerror(MLLP_ERR_PARTIAL_WRAP),
			    "cannot wrap a partially wrapped message");
	assert_string_equal(mllp_strerror(MLLP_ERR_BAD_ADDRESS),
			    "Invalid server ip address");
}

/* A build without TLS names itself in every TLS failure. */
static void test_no_tls_text(void **state)
{
	(void)state;
	assert_string_equal(mllp_strerror(MLLP_ERR_NO_TLS),
			    "built without TLS");
	assert_string_equal(mllp_err_name(MLLP_ERR_NO_TLS), "MLLP_ERR_NO_TLS");
	assert_int_equal(MLLP_ERR_NO_TLS, MLLP_ERR_BASE - 23);
}

/* Every code of the table has a distinct value, a name and a message, and
 * the range lies below every errno value. */
static void test_table_consistent(void **state)
{
	(void)state;
	static const int codes[] = {
#define CODE_(name, off, msg) MLLP_ERR_##name,
	    MLLP_ERR_TABLE(CODE_)
#undef CODE_
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	assert_true(n > 10);
	for (size_t i = 0; i < n; i++) {
		assert_true(codes[i] <= MLLP_ERR_BASE);
		assert_true(codes[i] < -4095); /* below any -errno */
		assert_string_not_equal(mllp_strerror(codes[i]),
					"unknown error");
		assert_memory_equal(mllp_err_name(codes[i]), "MLLP_ERR_", 9);
		for (size_t j = i + 1; j < n; j++)
			assert_int_not_equal(codes[i], codes[j]);
	}
	assert_string_equal(mllp_err_name(MLLP_ERR_FRAME_TOO_BIG),
			    "MLLP_ERR_FRAME_TOO_BIG");
}

static void test_errno_names(void **state)
{
	(void)state;
	assert_string_equal(mllp_err_name(-ECONNREFUSED), "ECONNREFUSED");
	assert_string_equal(mllp_err_name(-EPIPE), "EPIPE");
	/* Not in our own table: the C library's description. */
	assert_string_equal(mllp_err_name(-ENOENT), "ENOENT");
	assert_true(strlen(mllp_strerror(-ENOENT)) > 0);
	assert_string_equal(mllp_err_name(12345), "UNKNOWN");
	assert_string_equal(mllp_err_name(MLLP_ERR_BASE - 9999), "UNKNOWN");
	assert_string_equal(mllp_strerror(MLLP_ERR_BASE - 9999),
			    "unknown error");
}

static void test_record(void **state)
{
	(void)state;
	struct mllp_error e;
	char buf[256];

	mllp_error_set(&e, MLLP_CTX_SEND, -ECONNREFUSED, NULL);
	assert_int_equal(e.context, MLLP_CTX_SEND);
	assert_int_equal(e.reason, -ECONNREFUSED);
	assert_string_equal(e.message, "connection refused");
	mllp_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "send: connection refused (ECONNREFUSED)");

	mllp_error_set(&e, MLLP_CTX_RECEIVE, MLLP_ERR_TIMEOUT, "after %d ms",
		       60000);
	mllp_error_format(&e, buf, sizeof(buf));
	assert_string_equal(buf, "receive: after 60000 ms (MLLP_ERR_TIMEOUT)");

	mllp_error_clear(&e);
	assert_int_equal(e.reason, 0);
	assert_int_equal(e.context, MLLP_CTX_NONE);
	assert_string_equal(e.message, "");
}

static void test_record_truncates(void **state)
{
	(void)state;
	struct mllp_error e;
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	mllp_error_set(&e, MLLP_CTX_TLS, MLLP_ERR_TLS, "%s", big);
	assert_int_equal(strlen(e.message), MLLP_ERROR_MESSAGE_MAX - 1);

	char small[8];
	int need = mllp_error_format(&e, small, sizeof(small));
	assert_true(need > (int)sizeof(small));
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_context_names(void **state)
{
	(void)state;
	assert_string_equal(mllp_context_name(MLLP_CTX_CONNECT), "connect");
	assert_string_equal(mllp_context_name(MLLP_CTX_SEND), "send");
	assert_string_equal(mllp_context_name(MLLP_CTX_RECEIVE), "receive");
	assert_string_equal(mllp_context_name(MLLP_CTX_TLS), "tls");
	assert_string_equal(mllp_context_name(MLLP_CTX_VERIFY), "verify");
}

static void test_version(void **state)
{
	(void)state;
	assert_string_equal(mllp_version(), MLLP_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_success),
	    cmocka_unit_test(test_reference_texts),
	    cmocka_unit_test(test_no_tls_text),
	    cmocka_unit_test(test_table_consistent),
	    cmocka_unit_test(test_errno_names),
	    cmocka_unit_test(test_record),
	    cmocka_unit_test(test_record_truncates),
	    cmocka_unit_test(test_context_names),
	    cmocka_unit_test(test_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

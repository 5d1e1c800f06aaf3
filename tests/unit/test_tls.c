/* The TLS engine, client against server, purely in memory: bytes are pumped
 * between two engines in a bounded loop. Certificates are made at run time
 * by tests/make_certs.sh (openssl CLI) into a temporary directory. */
#include "tls_util.h"

/* tests/ source directory, for make_certs.sh. The build defines it
 * (target_compile_definitions); without it, it is found from __FILE__
 * (absolute in CMake builds): <source>/tests/unit/test_tls.c. */
static void source_dir(char *buf, size_t cap)
{
#ifdef MLLP_TEST_SOURCE_DIR
	snprintf(buf, cap, "%s", MLLP_TEST_SOURCE_DIR);
#else
	char *slash;

	snprintf(buf, cap, "%s", __FILE__);
	for (int i = 0; i < 2; i++) {
		slash = strrchr(buf, '/');
		if (slash == NULL) {
			snprintf(buf, cap, "tests");
			return;
		}
		*slash = 0;
	}
#endif
}

static int group_setup(void **state)
{
	char cmd[3 * PATH_MAX + 64];
	char src[PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	(void)state;
	snprintf(certdir, sizeof certdir, "%s/mllp-tls-XXXXXX",
		 tmp != NULL && *tmp != 0 ? tmp : "/tmp");
	if (mkdtemp(certdir) == NULL)
		return -1;
	source_dir(src, sizeof src);
	snprintf(cmd, sizeof cmd, "sh '%s/make_certs.sh' '%s'", src, certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_failure_names),
	    cmocka_unit_test(test_tls13_roundtrip),
	    cmocka_unit_test(test_tls12_roundtrip),
	    cmocka_unit_test(test_one_byte_feeds),
	    cmocka_unit_test(test_want_write),
	    cmocka_unit_test(test_ip_and_server_name),
	    cmocka_unit_test(test_unknown_ca),
	    cmocka_unit_test(test_host_mismatch),
	    cmocka_unit_test(test_verify_none),
	    cmocka_unit_test(test_client_crl_ok),
	    cmocka_unit_test(test_protocol_mismatch),
	    cmocka_unit_test(test_mtls_ok),
	    cmocka_unit_test(test_mtls_allowed),
	    cmocka_unit_test(test_mtls_refused),
	    cmocka_unit_test(test_mtls_resumed),
	    cmocka_unit_test(test_close_notify),
	    cmocka_unit_test(test_not_tls),
	    cmocka_unit_test(test_resumption_tls13),
	    cmocka_unit_test(test_resumption_tls12),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_records_at_once),
	    cmocka_unit_test(test_default_ciphers),
	    cmocka_unit_test(test_default_refuses_weak),
	    cmocka_unit_test(test_handshake_cost),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

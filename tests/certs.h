/* Test certificates, shared by the TLS tests (integration/tls_helpers.c)
 * and the TLS benchmark (bench/e2e_tls.c): tests/make_certs.sh run into a
 * fresh temporary directory (ca.pem, server.pem/.key for "localhost",
 * client.pem/.key, crl.pem, ...). No cmocka here: callers report
 * failures. */
#ifndef MLLP_TEST_CERTS_H
#define MLLP_TEST_CERTS_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* Make the directory $TMPDIR/NAME-XXXXXX (/tmp without TMPDIR), its path
 * into dir (PATH_MAX bytes), and run TESTS_DIR/make_certs.sh in it.
 * Returns 0, or -1 when either fails. */
static inline int tc_certs_make(const char *tests_dir, const char *name,
				char *dir)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, PATH_MAX, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
		 name);
	if (!mkdtemp(dir))
		return -1;
	char cmd[2 * PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "sh '%s/make_certs.sh' '%s'", tests_dir,
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Remove the directory tc_certs_make made. Returns 0 or -1. */
static inline int tc_certs_remove(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif

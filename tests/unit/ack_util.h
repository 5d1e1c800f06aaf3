/* Helpers shared by the ACK tests (test_ack.c, test_ack_build.c): input
 * blobs before a guard page, view assertions, verdicts of codes. */
#ifndef ACK_UTIL_H
#define ACK_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/hl7.h>

#define assert_view(v, s)                                                      \
	do {                                                                   \
		struct mllp_str v_ = (v);                                      \
		const char *s_ = (s);                                          \
		if (v_.len != strlen(s_) ||                                    \
		    (v_.len > 0 && memcmp(v_.ptr, s_, v_.len) != 0))           \
			fail_msg("view \"%.*s\" (%zu bytes) != \"%s\"",        \
				 (int)v_.len, v_.ptr ? v_.ptr : "", v_.len,    \
				 s_);                                          \
	} while (0)

extern const char *const codes[6];

enum mllp_verdict verdict_of_code(const char *code);

/* A corpus file before a guard page. */
struct blob {
	struct tu_guard g;
	const unsigned char *d;
	size_t n;
};

void load_at(struct blob *b, const char *dir, const char *rel);

void load(struct blob *b, const char *rel);

void load_str(struct blob *b, const char *s);

void unload(struct blob *b);

extern struct blob held;

void release_held(void);

#define MSG(id) "MSH|^~\\&|A|B|C|D|20260101||ADT^A01^ADT_A01|" id "|P|2.5\r"

int teardown(void **state);

#endif

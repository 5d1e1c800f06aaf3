/* Helpers shared by the HL7 v2 view tests (test_hl7_*.c): parsing a
 * string or a corpus file into views, field lookup, view assertions. */
#ifndef HL7_UTIL_H
#define HL7_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
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

struct mllp_str str_of(const char *s);

/* Parse a string literal (copied before a guard page). */
struct parsed {
	struct tu_guard g;
	struct mllp_hl7_msg m;
	int rc;
};

void parse_str(struct parsed *p, const char *s);

void parse_corpus(struct parsed *p, const char *rel);

void field_of(const struct mllp_hl7_msg *m, const char *seg_id, unsigned nth,
	      unsigned idx, struct mllp_str *out);

#endif

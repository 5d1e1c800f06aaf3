/* libmllp: version of the headers and of the linked library. */
#ifndef MLLP_VERSION_H
#define MLLP_VERSION_H

#include <mllp/export.h>

#define MLLP_VERSION_MAJOR  0
#define MLLP_VERSION_MINOR  1
#define MLLP_VERSION_PATCH  0
#define MLLP_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define MLLP_VERSION_NUMBER                                                    \
	(MLLP_VERSION_MAJOR * 10000 + MLLP_VERSION_MINOR * 100 +               \
	 MLLP_VERSION_PATCH)

MLLP_BEGIN_DECLS

/* The version string of the library actually linked (static storage, never
 * freed). Thread-safe. Compare with MLLP_VERSION_STRING to detect a header /
 * library mismatch. */
MLLP_API const char *mllp_version(void);

MLLP_END_DECLS

#endif

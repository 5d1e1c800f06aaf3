/* libmllp: version of the headers and of the linked library. */
#ifndef MLLP_VERSION_H
#define MLLP_VERSION_H

#include <mllp/export.h>

#define MLLP_VERSION_MAJOR  0
#define MLLP_VERSION_MINOR  2
#define MLLP_VERSION_PATCH  0
#define MLLP_VERSION_STRING "0.2.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for compile-time comparisons. */
#define MLLP_VERSION_NUMBER                                                    \
	(MLLP_VERSION_MAJOR * 10000 + MLLP_VERSION_MINOR * 100 +               \
	 MLLP_VERSION_PATCH)

MLLP_BEGIN_DECLS

/* The version string of the library actually linked (static storage, never
 * freed). Thread-safe. Compare with MLLP_VERSION_STRING to detect a header /
 * library mismatch. */
MLLP_API const char *mllp_version(void);

/* What the linked library was built with, whatever headers the caller was
 * compiled against. Every string is static, never freed. */
struct mllp_build_info {
	const char *version;  /* of the library: as mllp_version() */
	const char *backends; /* I/O backends compiled in, in the order auto
			       * tries them: "io_uring, epoll" */
	const char *liburing_version; /* liburing built with, e.g. "2.3";
				       * "unknown" when it did not say */
	/* wolfSSL built with, e.g. "5.5.4"; NULL: built without TLS
	 * (MLLP_TLS=OFF, see mllp_tls_available()). */
	const char *wolfssl_version;
	/* The default allocator of pools and receivers: "jemalloc" (a
	 * private arena) or "libc" (MLLP_JEMALLOC=OFF, sanitizer builds);
	 * allocator_version is jemalloc's, e.g. "5.3.0", NULL for libc. */
	const char *allocator;
	const char *allocator_version;
	/* Fields are only ever added at the end. */
};

/* The build information of the linked library: a pointer to static,
 * constant data, never NULL. Thread-safe. */
MLLP_API const struct mllp_build_info *mllp_build_info(void);

MLLP_END_DECLS

#endif

/* mllp_build_info(): what this copy of the library was built with. The
 * versions are those of the headers the library was compiled against
 * (liburing 2.3 has no version header: CMake passes what pkg-config
 * said). */
#include <pthread.h>

#include "alloc.h"

#include <mllp/config.h>
#include <mllp/version.h>

#if __has_include(<liburing/io_uring_version.h>)
#include <liburing/io_uring_version.h>
#define MLLPI_BI_STR_(x) #x
#define MLLPI_BI_STR(x)	 MLLPI_BI_STR_(x)
#define MLLPI_BI_URING                                                         \
	MLLPI_BI_STR(IO_URING_VERSION_MAJOR)                                   \
	"." MLLPI_BI_STR(IO_URING_VERSION_MINOR)
#elif defined(MLLPI_LIBURING_VERSION)
#define MLLPI_BI_URING MLLPI_LIBURING_VERSION
#else
#define MLLPI_BI_URING "unknown"
#endif

#if MLLP_HAVE_TLS
#include <wolfssl/version.h>
#define MLLPI_BI_WOLFSSL LIBWOLFSSL_VERSION_STRING
#else
#define MLLPI_BI_WOLFSSL NULL
#endif

static struct mllp_build_info info;
static pthread_once_t info_once = PTHREAD_ONCE_INIT;

static void info_fill(void)
{
	info.version = MLLP_VERSION_STRING;
	info.backends = "io_uring, epoll";
	info.liburing_version = MLLPI_BI_URING[0] ? MLLPI_BI_URING : "unknown";
	info.wolfssl_version = MLLPI_BI_WOLFSSL;
	mllpi_default_allocator_build(&info.allocator, &info.allocator_version);
}

const struct mllp_build_info *mllp_build_info(void)
{
	pthread_once(&info_once, info_fill);
	return &info;
}

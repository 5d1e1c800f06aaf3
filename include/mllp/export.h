/* libmllp: symbol export macro.
 *
 * The library is built with hidden visibility; only declarations marked
 * MLLP_API are exported from the shared object. */
#ifndef MLLP_EXPORT_H
#define MLLP_EXPORT_H

#if defined(MLLP_STATIC_DEFINE)
#define MLLP_API
#elif defined(__GNUC__) || defined(__clang__)
#define MLLP_API __attribute__((visibility("default")))
#else
#define MLLP_API
#endif

#ifdef __cplusplus
#define MLLP_BEGIN_DECLS extern "C" {
#define MLLP_END_DECLS	 }
#else
#define MLLP_BEGIN_DECLS
#define MLLP_END_DECLS
#endif

#endif

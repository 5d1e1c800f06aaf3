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

/* Words of reserved space that end every config and options struct the
 * library reads (the `reserved_` member): the struct's _init zeroes them
 * and the library refuses a struct whose reserved space is not zero
 * (MLLP_ERR_INVALID_ARGUMENT, "mllp_X: reserved fields must be zero
 * (initialise with mllp_X_init)"). A later version adds options by taking
 * words from this space, so the struct keeps its size and layout, and an
 * option a caller set is never silently ignored by an older library. */
#define MLLP_RESERVED_WORDS 8

#ifdef __cplusplus
#define MLLP_BEGIN_DECLS extern "C" {
#define MLLP_END_DECLS	 }
#else
#define MLLP_BEGIN_DECLS
#define MLLP_END_DECLS
#endif

#endif

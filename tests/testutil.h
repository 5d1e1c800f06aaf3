/* Shared helpers for the test programs: corpus access and guard pages.
 * Every helper aborts the test (cmocka fail) on an unexpected error. */
#ifndef MLLP_TESTUTIL_H
#define MLLP_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Read a whole file; returns malloc'd bytes (plus a NUL not counted in
 * *len). Fails the test if it cannot be read. */
unsigned char *tu_read_file(const char *path, size_t *len);

/* Read a corpus file by its path relative to the corpus directory, e.g.
 * "messages/adt_a01.hl7". */
unsigned char *tu_corpus(const char *rel, size_t *len);

/* The same from the corpus directory dir. */
unsigned char *tu_corpus_at(const char *dir, const char *rel, size_t *len);

/* The regular files of a corpus subdirectory ("messages", "acks"), sorted
 * by name; *names is a malloc'd array of malloc'd relative paths
 * ("messages/adt_a01.hl7"). Free with tu_free_names. */
size_t tu_corpus_list(const char *subdir, char ***names);
size_t tu_corpus_list_at(const char *dir, const char *subdir, char ***names);
void tu_free_names(char **names, size_t n);

/* One row of vectors.tsv. */
struct tu_vector {
	char *message;	/* relative path */
	char *ack;	/* relative path */
	char *expected; /* verdict name, e.g. "application_accept" */
};
/* All rows (header skipped); free with tu_free_vectors. Fails the test
 * when the file has no rows. */
size_t tu_vectors(struct tu_vector **rows);
size_t tu_vectors_at(const char *dir, struct tu_vector **rows);
void tu_free_vectors(struct tu_vector *rows, size_t n);

/* Tests over a whole corpus run twice: over the project's corpus
 * (MLLP_CORPUS_DIR) and over the extra one (MLLP_EXTRA_CORPUS_DIR, a CMake
 * cache variable). TU_CORPUS_TESTS(f) gives both entries of a test array;
 * f calls tu_corpus_dir(state) for its directory (state NULL: the
 * project's), which, in the second run with no extra corpus configured,
 * prints so and skips the test. f ends
 * with tu_corpus_checked(dir, count, "files"), which prints what it
 * checked. */
extern char tu_extra_corpus_tag;
#define TU_EXTRA_CORPUS ((void *)&tu_extra_corpus_tag)
/* clang-format off */
#define TU_CORPUS_TESTS(f)                                                     \
	cmocka_unit_test(f),                                                   \
	{#f "_extra_corpus", f, NULL, NULL, TU_EXTRA_CORPUS}
/* clang-format on */
const char *tu_corpus_dir(void **state);
void tu_corpus_checked(const char *dir, size_t n, const char *what);

/* TU_SANITIZED: 1 when built with the thread or address sanitizer (clang's
 * __has_feature, gcc's __SANITIZE_*__), else 0. Such a build runs several
 * times slower, so long cases do less work under it. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

/* A copy of len bytes placed so that its last byte sits right before an
 * inaccessible page: reading one byte past the end faults. */
struct tu_guard {
	void *map;
	size_t map_len;
	unsigned char *data;
};
unsigned char *tu_guard_copy(struct tu_guard *g, const void *src, size_t len);
void tu_guard_free(struct tu_guard *g);

#endif

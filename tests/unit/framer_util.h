/* Helpers shared by the framer tests (test_framer*.c): guarded input
 * regions, a frame sink, feeding in chunks, counting allocators. */
#ifndef FRAMER_UTIL_H
#define FRAMER_UTIL_H

#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/framer.h>

#define SB     "\x0b"
#define EB     "\x1c"
#define CR     "\x0d"
#define S(lit) ((const unsigned char *)(lit)), (sizeof(lit) - 1)

/* ---- helpers --------------------------------------------------------------
 */

/* A guard region: chunks are copied so that they end at the guard page. */
struct region {
	struct tu_guard g;
	unsigned char *end; /* first inaccessible byte */
	size_t cap;
};

void region_init(struct region *r, size_t cap);

const unsigned char *region_put(struct region *r, const void *src, size_t len);

void region_free(struct region *r);

struct frame_rec {
	unsigned char *data;
	size_t len;
	bool in_chunk; /* the view pointed into the chunk (zero copy) */
};

/* Everything a decoder produced. */
struct sink {
	struct frame_rec *f;
	size_t n, cap;
	uint64_t junk;
	size_t junk_events;
	int err;
	size_t calls;
};

void sink_free(struct sink *s);

void sink_push(struct sink *s, const unsigned char *p, size_t len,
	       bool in_chunk);

int feed_chunk(struct mllp_decoder *d, const unsigned char *p, size_t len,
	       struct sink *s);

int feed_guarded(struct mllp_decoder *d, struct region *r, const void *p,
		 size_t len, struct sink *s);

void decode_whole(const struct mllp_frame_config *cfg, const void *data,
		  size_t len, struct sink *s);

void assert_frame(const struct sink *s, size_t i, const void *p, size_t len);

#define ASSERT_FRAME(s, i, lit) assert_frame((s), (i), S(lit))

#endif

/* Unit tests for the MLLP framer: wrap/unwrap and the streaming decoder.
 *
 * Decoder inputs sit right before an inaccessible page (tu_guard_copy), so
 * reading one byte past a chunk crashes the test. */
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

static void region_init(struct region *r, size_t cap)
{
	unsigned char *zero = calloc(1, cap ? cap : 1);

	assert_non_null(zero);
	tu_guard_copy(&r->g, zero, cap);
	free(zero);
	r->end = r->g.data + cap;
	r->cap = cap;
}

/* Place src (len bytes) right before the guard page; returns its copy. */
static const unsigned char *region_put(struct region *r, const void *src,
				       size_t len)
{
	assert_true(len <= r->cap);
	if (len > 0)
		memcpy(r->end - len, src, len);
	return r->end - len;
}

static void region_free(struct region *r)
{
	tu_guard_free(&r->g);
}

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

static void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->f[i].data);
	free(s->f);
	memset(s, 0, sizeof(*s));
}

static void sink_push(struct sink *s, const unsigned char *p, size_t len,
		      bool in_chunk)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 8;
		s->f = realloc(s->f, s->cap * sizeof(*s->f));
		assert_non_null(s->f);
	}
	s->f[s->n].data = malloc(len ? len : 1);
	assert_non_null(s->f[s->n].data);
	if (len > 0)
		memcpy(s->f[s->n].data, p, len);
	s->f[s->n].len = len;
	s->f[s->n].in_chunk = in_chunk;
	s->n++;
}

/* Feed one chunk completely, checking the contract of every call: each call
 * on a non-empty rest consumes at least one byte (no endless loop), views
 * lie inside the chunk or the decoder's buffer. Returns the error, or 0. */
static int feed_chunk(struct mllp_decoder *d, const unsigned char *p,
		      size_t len, struct sink *s)
{
	size_t off = 0;

	do {
		size_t used = (size_t)-1;
		struct mllp_decoded ev;
		int rc = mllp_decoder_feed(d, p + off, len - off, &used, &ev);

		s->calls++;
		if (rc < 0) {
			assert_int_equal(used, 0);
			assert_int_equal(ev.kind, MLLP_DECODE_NEED_MORE);
			s->err = rc;
			return rc;
		}
		assert_int_equal(rc, 0);
		assert_true(used <= len - off);
		if (len - off > 0)
			assert_true(used > 0);
		switch (ev.kind) {
		case MLLP_DECODE_NEED_MORE:
			assert_int_equal(used, len - off);
			assert_int_equal(ev.len, 0);
			break;
		case MLLP_DECODE_JUNK:
			assert_true(ev.len > 0);
			assert_ptr_equal(ev.data, p + off);
			assert_int_equal(ev.len, used);
			s->junk += ev.len;
			s->junk_events++;
			break;
		case MLLP_DECODE_FRAME: {
			bool in_chunk = ev.data >= p && ev.data <= p + len;

			if (!in_chunk) {
				assert_true(ev.data >= d->buf &&
					    ev.data + ev.len <=
						d->buf + d->cap);
			} else {
				assert_true(ev.data + ev.len <= p + len);
			}
			sink_push(s, ev.data, ev.len, in_chunk);
			break;
		}
		default:
			fail_msg("unknown event kind %d", (int)ev.kind);
		}
		off += used;
	} while (off < len);
	return 0;
}

/* Feed a chunk through a guard region. */
static int feed_guarded(struct mllp_decoder *d, struct region *r, const void *p,
			size_t len, struct sink *s)
{
	return feed_chunk(d, region_put(r, p, len), len, s);
}

/* Decode data whole, one guarded chunk. */
static void decode_whole(const struct mllp_frame_config *cfg, const void *data,
			 size_t len, struct sink *s)
{
	struct mllp_decoder d;
	struct region r;

	memset(s, 0, sizeof(*s));
	region_init(&r, len);
	assert_int_equal(mllp_decoder_init(&d, cfg, NULL), 0);
	feed_guarded(&d, &r, data, len, s);
	assert_int_equal(d.junk_total, s->junk);
	assert_int_equal(d.frames_total, s->n);
	mllp_decoder_free(&d);
	region_free(&r);
}

static void assert_frame(const struct sink *s, size_t i, const void *p,
			 size_t len)
{
	assert_true(i < s->n);
	assert_int_equal(s->f[i].len, len);
	if (len > 0)
		assert_memory_equal(s->f[i].data, p, len);
}

#define ASSERT_FRAME(s, i, lit) assert_frame((s), (i), S(lit))

static unsigned char *wrap_alloc(const void *payload, size_t len, size_t *out)
{
	unsigned char *w = malloc(mllp_wrapped_size(len));

	assert_non_null(w);
	assert_int_equal(
	    mllp_wrap(NULL, payload, len, w, mllp_wrapped_size(len), out), 0);
	return w;
}

/* A counting allocator that can be told to fail. */
struct count_alloc {
	size_t live_bytes;
	size_t live_blocks;
	size_t calls;
	size_t largest;
	size_t fail_after; /* calls allowed before failing; SIZE_MAX: never */
};

static void *ca_alloc(void *ctx, size_t size)
{
	struct count_alloc *c = ctx;
	void *p;

	if (c->calls++ >= c->fail_after)
		return NULL;
	p = malloc(size);
	if (p != NULL) {
		c->live_bytes += size;
		c->live_blocks++;
		if (size > c->largest)
			c->largest = size;
	}
	return p;
}

static void *ca_realloc(void *ctx, void *old, size_t old_size, size_t size)
{
	struct count_alloc *c = ctx;
	void *p;

	if (c->calls++ >= c->fail_after)
		return NULL;
	p = realloc(old, size);
	if (p != NULL) {
		c->live_bytes = c->live_bytes - old_size + size;
		if (old == NULL)
			c->live_blocks++;
		if (size > c->largest)
			c->largest = size;
	}
	return p;
}

static void ca_free(void *ctx, void *p, size_t size)
{
	struct count_alloc *c = ctx;

	if (p == NULL)
		return;
	c->live_bytes -= size;
	c->live_blocks--;
	free(p);
}

static struct mllp_allocator ca_make(struct count_alloc *c, size_t fail_after)
{
	struct mllp_allocator a = {ca_alloc, ca_realloc, ca_free, c};

	memset(c, 0, sizeof(*c));
	c->fail_after = fail_after;
	return a;
}

/* ---- wrap / unwrap: the reference's envelope cases ------------------------
 */

static void test_wrap_simple(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap_check(NULL, "yes", 3), 0);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, SB "yes" EB CR, 6);
	assert_int_equal(mllp_wrapped_size(3), 6);
}

static void test_wrap_already_wrapped_unchanged(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" EB CR, 6), 1);
	assert_int_equal(
	    mllp_wrap(NULL, SB "yes" EB CR, 6, out, sizeof(out), &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, SB "yes" EB CR, 6);
	/* An empty wrapped payload is a frame too. */
	assert_int_equal(mllp_wrap_check(NULL, SB EB CR, 3), 1);
}

static void test_wrap_partial_is_refused(void **state)
{
	unsigned char out[16];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, SB "yes", 4, out, sizeof(out), &n),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes", 4),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB, 1), MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB EB, 2),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB CR, 2),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" EB, 5),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(NULL, SB "yes" CR, 5),
			 MLLP_ERR_PARTIAL_WRAP);
	/* A trailer without the start byte is payload: it gets wrapped. */
	assert_int_equal(mllp_wrap_check(NULL, "yes" EB CR, 5), 0);
	assert_int_equal(mllp_wrap_check(NULL, EB CR, 2), 0);
	assert_int_equal(mllp_wrap_check(NULL, "", 0), 0);
	assert_int_equal(mllp_wrap(NULL, NULL, 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, SB EB CR, 3);
}

static void test_wrap_buffer_too_small(void **state)
{
	unsigned char out[6];
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, 5, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 6);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, NULL, 0, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 6);
	assert_int_equal(mllp_wrap(NULL, SB "y" EB CR, 4, out, 3, &n),
			 MLLP_ERR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 4);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, 6, &n), 0);
}

static void test_wrap_invalid_arguments(void **state)
{
	unsigned char out[8];
	size_t n;
	const void *pl;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, "yes", 3, out, sizeof(out), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap(NULL, NULL, 3, out, sizeof(out), &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap(NULL, "yes", 3, NULL, 64, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_wrap_check(NULL, NULL, 3),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, NULL, 3, &pl, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, "yes", 3, NULL, &n),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_unwrap(NULL, "yes", 3, &pl, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
}

static void test_wrap_in_place(void **state)
{
	unsigned char buf[16] = "hello";
	size_t n = 0;

	(void)state;
	assert_int_equal(mllp_wrap(NULL, buf, 5, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(buf, SB "hello" EB CR, 8);
}

static void test_unwrap_reference_cases(void **state)
{
	struct tu_guard g;
	const void *pl = NULL;
	size_t n = 99;
	const unsigned char *in;

	(void)state;
	/* "Unwrapping a simple message" */
	in = tu_guard_copy(&g, SB "yes" EB CR, 6);
	assert_int_equal(mllp_unwrap(NULL, in, 6, &pl, &n), 0);
	assert_ptr_equal(pl, in + 1);
	assert_int_equal(n, 3);
	assert_memory_equal(pl, "yes", 3);
	tu_guard_free(&g);

	/* "Unwrapping an unwrapped message": returned whole. */
	in = tu_guard_copy(&g, "yes", 3);
	assert_int_equal(mllp_unwrap(NULL, in, 3, &pl, &n), 0);
	assert_ptr_equal(pl, in);
	assert_int_equal(n, 3);
	tu_guard_free(&g);

	/* Partially wrapped: leading wrapper only, trailing wrapper only. */
	in = tu_guard_copy(&g, SB "yes", 4);
	assert_int_equal(mllp_unwrap(NULL, in, 4, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	tu_guard_free(&g);
	in = tu_guard_copy(&g, "yes" EB CR, 5);
	assert_int_equal(mllp_unwrap(NULL, in, 5, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	tu_guard_free(&g);

	/* Edges: empty, lone start byte, lone trailer, empty frame. */
	assert_int_equal(mllp_unwrap(NULL, "", 0, &pl, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(mllp_unwrap(NULL, SB, 1, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, EB CR, 2, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, SB EB, 2, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
	assert_int_equal(mllp_unwrap(NULL, SB EB CR, 3, &pl, &n), 0);
	assert_int_equal(n, 0);
	/* Only one start byte and one trailer are removed. */
	assert_int_equal(mllp_unwrap(NULL, S(SB SB "x" EB CR EB CR), &pl, &n),
			 0);
	assert_int_equal(n, 4);
	assert_memory_equal(pl, SB "x" EB CR, 4);
}

static void test_wrap_unwrap_roundtrip_corpus(void **state)
{
	const char *dir = tu_corpus_dir(state);
	char **names;
	size_t count = tu_corpus_list_at(dir, "messages", &names);

	assert_true(count >= 12);
	for (size_t i = 0; i < count; i++) {
		size_t len, wlen, plen;
		unsigned char *msg = tu_corpus_at(dir, names[i], &len);
		int kind = mllp_wrap_check(NULL, msg, len);
		unsigned char *w;
		const unsigned char *gw;
		const void *pl;
		struct tu_guard g;

		assert_true(kind == 0 || kind == 1);
		w = malloc(len + 3);
		assert_non_null(w);
		assert_int_equal(mllp_wrap(NULL, msg, len, w, len + 3, &wlen),
				 0);
		if (kind == 1) {
			/* feed_100.mllp: already framed, returned as is. */
			assert_int_equal(wlen, len);
			assert_memory_equal(w, msg, len);
			free(w);
			free(msg);
			continue;
		}
		assert_int_equal(wlen, len + 3);
		gw = tu_guard_copy(&g, w, wlen);
		assert_int_equal(mllp_wrap_check(NULL, gw, wlen), 1);
		assert_int_equal(mllp_unwrap(NULL, gw, wlen, &pl, &plen), 0);
		assert_int_equal(plen, len);
		assert_ptr_equal(pl, gw + 1);
		assert_memory_equal(pl, msg, len);
		tu_guard_free(&g);
		/* Unwrapping the raw message returns it whole. */
		gw = tu_guard_copy(&g, msg, len);
		assert_int_equal(mllp_unwrap(NULL, gw, len, &pl, &plen), 0);
		assert_ptr_equal(pl, gw);
		assert_int_equal(plen, len);
		tu_guard_free(&g);
		free(w);
		free(msg);
	}
	tu_free_names(names, count);
	tu_corpus_checked(dir, count, "messages/ files");
}

/* ---- decoder basics -------------------------------------------------------
 */

static void test_decoder_init_args(void **state)
{
	struct mllp_decoder d;
	struct mllp_frame_config cfg;
	struct mllp_allocator bad = {NULL, NULL, NULL, NULL};

	(void)state;
	mllp_frame_config_init(&cfg);
	assert_int_equal(cfg.start_byte, MLLP_SB);
	assert_int_equal(cfg.end_byte, MLLP_EB);
	assert_int_equal(cfg.end_byte2, MLLP_CR);
	assert_int_equal(cfg.max_frame, MLLP_DEFAULT_MAX_FRAME);
	assert_int_equal(MLLP_DEFAULT_MAX_FRAME, 64u * 1024 * 1024);

	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	assert_int_equal(d.cfg.max_frame, MLLP_DEFAULT_MAX_FRAME);
	assert_null(d.buf); /* allocates nothing yet */
	assert_false(mllp_decoder_in_frame(&d));
	mllp_decoder_free(&d);

	cfg.max_frame = 0;
	assert_int_equal(mllp_decoder_init(&d, &cfg, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	mllp_frame_config_init(&cfg);
	cfg.end_byte2 = cfg.end_byte;
	assert_int_equal(mllp_decoder_init(&d, &cfg, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_decoder_init(&d, NULL, &bad),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_decoder_init(NULL, NULL, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
}

static void test_decoder_empty_feed(void **state)
{
	struct mllp_decoder d;
	struct mllp_decoded ev;
	size_t used = 7;

	(void)state;
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	assert_int_equal(mllp_decoder_feed(&d, NULL, 0, &used, &ev), 0);
	assert_int_equal(used, 0);
	assert_int_equal(ev.kind, MLLP_DECODE_NEED_MORE);
	assert_int_equal(mllp_decoder_feed(&d, NULL, 5, &used, &ev),
			 MLLP_ERR_INVALID_ARGUMENT);
	/* Not sticky: a bad call does not poison the decoder. */
	assert_int_equal(mllp_decoder_feed(&d, SB "a" EB CR, 4, &used, &ev), 0);
	assert_int_equal(ev.kind, MLLP_DECODE_FRAME);
	mllp_decoder_free(&d);
}

static void test_decoder_single_frame_zero_copy(void **state)
{
	struct mllp_decoder d;
	struct mllp_decoded ev;
	struct tu_guard g;
	const unsigned char *in = tu_guard_copy(&g, SB "MSH|x" EB CR, 8);
	size_t used;

	(void)state;
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	assert_int_equal(mllp_decoder_feed(&d, in, 8, &used, &ev), 0);
	assert_int_equal(ev.kind, MLLP_DECODE_FRAME);
	assert_int_equal(used, 8);
	assert_ptr_equal(ev.data, in + 1); /* a view: no copy */
	assert_int_equal(ev.len, 5);
	assert_memory_equal(ev.data, "MSH|x", 5);
	assert_null(d.buf); /* nothing was allocated */
	assert_int_equal(d.frames_total, 1);
	assert_int_equal(d.junk_total, 0);
	assert_false(mllp_decoder_in_frame(&d));
	mllp_decoder_free(&d);
	tu_guard_free(&g);
}

static void test_decoder_empty_frame(void **state)
{
	struct sink s;

	(void)state;
	decode_whole(NULL, S(SB EB CR SB EB CR), &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.f[0].len, 0);
	assert_int_equal(s.f[1].len, 0);
	sink_free(&s);
}

static void test_decoder_split_copies_into_buffer(void **state)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	region_init(&r, 16);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	feed_guarded(&d, &r, S(SB "abc"), &s);
	assert_true(mllp_decoder_in_frame(&d));
	assert_int_equal(s.n, 0);
	feed_guarded(&d, &r, S("def" EB CR), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "abcdef");
	assert_false(s.f[0].in_chunk);
	assert_false(mllp_decoder_in_frame(&d));
	/* A frame whose start byte ended the previous chunk but whose payload
	 * lies whole in the next chunk is still a view. */
	feed_guarded(&d, &r, S(SB), &s);
	feed_guarded(&d, &r, S("xyz" EB CR), &s);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 1, "xyz");
	assert_true(s.f[1].in_chunk);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

/* ---- the reference's defects, each proven absent ---------------------------
 */

/* The reference loops forever on frame + junk + frame in one packet. */
static void test_refdefect_frame_junk_frame_no_endless_loop(void **state)
{
	struct sink s;

	(void)state;
	decode_whole(NULL, S(SB "one" EB CR "junk\n" SB "two" EB CR), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 0, "one");
	ASSERT_FRAME(&s, 1, "two");
	assert_int_equal(s.junk, 5);
	assert_true(s.calls <= 4); /* frame, junk, frame (+ final) */
	sink_free(&s);
}

/* The reference corrupts its buffer on frame + junk + partial frame. */
static void test_refdefect_frame_junk_partial_not_corrupted(void **state)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	region_init(&r, 64);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	feed_guarded(&d, &r, S(SB "one" EB CR "JUNK" SB "tw"), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "one");
	assert_int_equal(s.junk, 4);
	assert_true(mllp_decoder_in_frame(&d));
	assert_int_equal(d.len, 2);
	feed_guarded(&d, &r, S("o" EB CR), &s);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 1, "two");
	assert_int_equal(s.junk, 4);
	assert_int_equal(d.junk_total, 4);
	assert_int_equal(d.frames_total, 2);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

/* The reference merges two messages when one packet ends in EB and the next
 * is CR + the next frame. */
static void test_refdefect_eb_then_cr_and_next_frame_not_merged(void **state)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	region_init(&r, 64);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	feed_guarded(&d, &r, S(SB "first" EB), &s);
	assert_int_equal(s.n, 0);
	feed_guarded(&d, &r, S(CR SB "second" EB CR), &s);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 0, "first");
	ASSERT_FRAME(&s, 1, "second");
	assert_int_equal(s.junk, 0);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

/* The reference answers only the last of several frames in one packet. */
static void test_refdefect_several_frames_one_packet_all_out(void **state)
{
	struct sink s;

	(void)state;
	decode_whole(NULL,
		     S(SB "m1" EB CR SB "m2" EB CR SB "m3" EB CR SB "m4" EB CR),
		     &s);
	assert_int_equal(s.n, 4);
	ASSERT_FRAME(&s, 0, "m1");
	ASSERT_FRAME(&s, 1, "m2");
	ASSERT_FRAME(&s, 2, "m3");
	ASSERT_FRAME(&s, 3, "m4");
	for (size_t i = 0; i < 4; i++)
		assert_true(s.f[i].in_chunk);
	sink_free(&s);
}

/* ---- the reference's framer tests, ported ---------------------------------
 */

/* Feed the packets in order; expect frames (NUL-separated list). */
static void run_packets(const char *const *packets, size_t np,
			const char *const *want, size_t nw, uint64_t junk)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	region_init(&r, 256);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	for (size_t i = 0; i < np; i++)
		feed_guarded(&d, &r, packets[i], strlen(packets[i]), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, nw);
	for (size_t i = 0; i < nw; i++)
		assert_frame(&s, i, want[i], strlen(want[i]));
	assert_int_equal(s.junk, junk);
	assert_int_equal(d.junk_total, junk);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

static void test_reference_framer_packets(void **state)
{
	(void)state;
	{ /* simple frame */
		const char *p[] = {SB "hello" EB CR};
		const char *w[] = {"hello"};
		run_packets(p, 1, w, 1, 0);
	}
	{ /* half a frame is buffered, nothing out */
		const char *p[] = {SB "hel"};
		run_packets(p, 1, NULL, 0, 0);
	}
	{ /* a frame and a half, then the rest */
		const char *p[] = {SB "one" EB CR SB "tw", "o" EB CR};
		const char *w[] = {"one", "two"};
		run_packets(p, 2, w, 2, 0);
	}
	{ /* several frames plus a partial one */
		const char *p[] = {SB "a" EB CR SB "b" EB CR SB "c", "c" EB CR};
		const char *w[] = {"a", "b", "cc"};
		run_packets(p, 2, w, 3, 0);
	}
	{ /* CR in its own packet */
		const char *p[] = {SB "abc" EB, CR};
		const char *w[] = {"abc"};
		run_packets(p, 2, w, 1, 0);
	}
	{ /* EB and CR in separate packets */
		const char *p[] = {SB "abc", EB, CR};
		const char *w[] = {"abc"};
		run_packets(p, 3, w, 1, 0);
	}
	{ /* EB CR as its own packet */
		const char *p[] = {SB "abc", EB CR};
		const char *w[] = {"abc"};
		run_packets(p, 2, w, 1, 0);
	}
	{ /* unframed data is discarded and counted */
		const char *p[] = {"no frame here"};
		run_packets(p, 1, NULL, 0, 13);
	}
	{ /* trailing LF after a frame (netcat users): junk, no error */
		const char *p[] = {SB "abc" EB CR "\n", SB "d" EB CR "\n"};
		const char *w[] = {"abc", "d"};
		run_packets(p, 2, w, 2, 2);
	}
}

/* ---- junk handling ---------------------------------------------------------
 */

static void test_junk_before_start_reported_with_bytes(void **state)
{
	struct mllp_decoder d;
	struct mllp_decoded ev;
	struct tu_guard g;
	const unsigned char *in = tu_guard_copy(&g, "xy\n" SB "a" EB CR, 7);
	size_t used;

	(void)state;
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	assert_int_equal(mllp_decoder_feed(&d, in, 7, &used, &ev), 0);
	assert_int_equal(ev.kind, MLLP_DECODE_JUNK);
	assert_ptr_equal(ev.data, in);
	assert_int_equal(ev.len, 3);
	assert_int_equal(used, 3);
	assert_int_equal(d.junk_total, 3);
	assert_false(mllp_decoder_in_frame(&d));
	/* The frame that follows does not contain the junk. */
	assert_int_equal(mllp_decoder_feed(&d, in + 3, 4, &used, &ev), 0);
	assert_int_equal(ev.kind, MLLP_DECODE_FRAME);
	assert_int_equal(ev.len, 1);
	assert_memory_equal(ev.data, "a", 1);
	mllp_decoder_free(&d);
	tu_guard_free(&g);
}

static void test_junk_split_across_chunks_never_merged(void **state)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	region_init(&r, 64);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	feed_guarded(&d, &r, S("ju"), &s);
	feed_guarded(&d, &r, S("nk" EB CR), &s); /* a stray trailer is junk */
	feed_guarded(&d, &r, S("!" SB "m"), &s);
	feed_guarded(&d, &r, S("sg" EB CR "after"), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "msg");
	assert_int_equal(s.junk, 2 + 4 + 1 + 5);
	assert_int_equal(s.junk_events, 4);
	assert_int_equal(d.junk_total, 12);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

/* ---- bytes inside frames ---------------------------------------------------
 */

static void test_start_byte_inside_frame_is_data(void **state)
{
	struct sink s;

	(void)state;
	decode_whole(NULL, S(SB "a" SB "b" SB EB CR), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "a" SB "b" SB);
	sink_free(&s);
}

static void test_end_byte_without_cr_is_data(void **state)
{
	struct sink s;

	(void)state;
	decode_whole(NULL, S(SB "a" EB "b" EB EB CR SB EB "\n" EB CR), &s);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 0, "a" EB "b" EB);
	ASSERT_FRAME(&s, 1, EB "\n");
	sink_free(&s);
}

static void test_end_byte_at_chunk_end_then_data(void **state)
{
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	region_init(&r, 64);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	feed_guarded(&d, &r, S(SB "a" EB), &s);
	feed_guarded(&d, &r, S("b" EB), &s); /* EB was data */
	feed_guarded(&d, &r, S(EB), &s);     /* the previous EB was data */
	feed_guarded(&d, &r, S(SB), &s);     /* and this one too */
	feed_guarded(&d, &r, S(EB), &s);
	assert_int_equal(s.n, 0);
	feed_guarded(&d, &r, S(CR), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "a" EB "b" EB EB SB);
	/* An empty frame split after the start byte and after EB. */
	feed_guarded(&d, &r, S(SB), &s);
	feed_guarded(&d, &r, S(EB), &s);
	feed_guarded(&d, &r, S(CR), &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.f[1].len, 0);
	assert_int_equal(s.junk, 0);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

/* Every split point (two chunks) and every pair of split points (three
 * chunks) of a stream full of awkward bytes gives the same events. */
static void test_every_split_of_tricky_stream(void **state)
{
	static const unsigned char in[] =
	    "jk" SB "a" SB EB "b" EB EB CR CR "\n" SB EB CR SB "x" EB CR "z";
	const size_t n = sizeof(in) - 1;
	struct sink ref;
	struct region r;

	(void)state;
	decode_whole(NULL, in, n, &ref);
	assert_int_equal(ref.n, 3);
	ASSERT_FRAME(&ref, 0, "a" SB EB "b" EB);
	assert_int_equal(ref.f[1].len, 0);
	ASSERT_FRAME(&ref, 2, "x");
	assert_int_equal(ref.junk, 2 + 2 + 1);
	region_init(&r, n);
	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct mllp_decoder d;
			struct sink s = {0};

			assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
			feed_guarded(&d, &r, in, i, &s);
			feed_guarded(&d, &r, in + i, j - i, &s);
			feed_guarded(&d, &r, in + j, n - j, &s);
			assert_int_equal(s.n, ref.n);
			for (size_t k = 0; k < ref.n; k++)
				assert_frame(&s, k, ref.f[k].data,
					     ref.f[k].len);
			assert_int_equal(s.junk, ref.junk);
			assert_int_equal(d.junk_total, ref.junk);
			assert_int_equal(d.frames_total, ref.n);
			mllp_decoder_free(&d);
			sink_free(&s);
		}
	}
	region_free(&r);
	sink_free(&ref);
}

/* ---- max_frame -------------------------------------------------------------
 */

static void test_max_frame_exact_ok_one_more_fails(void **state)
{
	struct mllp_frame_config cfg;
	struct count_alloc c;
	struct mllp_allocator a = ca_make(&c, SIZE_MAX);
	unsigned char in[16 + 3 + 1];
	const size_t max = 16;

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.max_frame = max;
	/* Exactly max_frame: whole, split at every point, byte at a time. */
	in[0] = MLLP_SB;
	memset(in + 1, 'x', max);
	in[max + 1] = MLLP_EB;
	in[max + 2] = MLLP_CR;
	for (size_t split = 0; split <= max + 3; split++) {
		struct mllp_decoder d;
		struct region r;
		struct sink s = {0};

		region_init(&r, max + 3);
		assert_int_equal(mllp_decoder_init(&d, &cfg, &a), 0);
		feed_guarded(&d, &r, in, split, &s);
		feed_guarded(&d, &r, in + split, max + 3 - split, &s);
		assert_int_equal(s.err, 0);
		assert_int_equal(s.n, 1);
		assert_int_equal(s.f[0].len, max);
		assert_true(d.cap <= max);
		mllp_decoder_free(&d);
		region_free(&r);
		sink_free(&s);
	}
	/* max_frame + 1: the error, whatever the split. */
	in[0] = MLLP_SB;
	memset(in + 1, 'x', max + 1);
	in[max + 2] = MLLP_EB;
	in[max + 3] = MLLP_CR;
	for (size_t split = 0; split <= max + 4; split++) {
		struct mllp_decoder d;
		struct region r;
		struct sink s = {0};

		region_init(&r, max + 4);
		assert_int_equal(mllp_decoder_init(&d, &cfg, &a), 0);
		if (feed_guarded(&d, &r, in, split, &s) == 0)
			feed_guarded(&d, &r, in + split, max + 4 - split, &s);
		assert_int_equal(s.err, MLLP_ERR_FRAME_TOO_BIG);
		assert_int_equal(s.n, 0);
		assert_true(d.cap <= max);
		mllp_decoder_free(&d);
		region_free(&r);
		sink_free(&s);
	}
	assert_true(c.largest <= max); /* no allocation beyond max_frame */
	assert_int_equal(c.live_blocks, 0);
	assert_int_equal(c.live_bytes, 0);
}

static void test_max_frame_end_byte_as_last_data_byte(void **state)
{
	/* max bytes of payload then an EB that is data: too big only once the
	 * byte after the EB shows it was not the trailer. */
	struct mllp_frame_config cfg;
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.max_frame = 3;
	region_init(&r, 16);
	assert_int_equal(mllp_decoder_init(&d, &cfg, NULL), 0);
	feed_guarded(&d, &r, S(SB "abc" EB), &s);
	assert_int_equal(s.err, 0);
	feed_guarded(&d, &r, S("d"), &s);
	assert_int_equal(s.err, MLLP_ERR_FRAME_TOO_BIG);
	mllp_decoder_reset(&d);
	memset(&s, 0, sizeof(s));
	feed_guarded(&d, &r, S(SB "abc" EB), &s);
	feed_guarded(&d, &r, S(CR), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "abc");
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

static void test_max_frame_error_sticky_until_reset(void **state)
{
	struct mllp_frame_config cfg;
	struct mllp_decoder d;
	struct mllp_decoded ev;
	struct region r;
	struct sink s = {0};
	size_t used;

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.max_frame = 4;
	region_init(&r, 64);
	assert_int_equal(mllp_decoder_init(&d, &cfg, NULL), 0);
	feed_guarded(&d, &r, S(SB "abcd"), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(feed_guarded(&d, &r, S("e"), &s),
			 MLLP_ERR_FRAME_TOO_BIG);
	assert_int_equal(d.error, MLLP_ERR_FRAME_TOO_BIG);
	/* Sticky: even a perfect frame is refused, and empty feeds too. */
	assert_int_equal(mllp_decoder_feed(&d, SB "ok" EB CR, 5, &used, &ev),
			 MLLP_ERR_FRAME_TOO_BIG);
	assert_int_equal(used, 0);
	assert_int_equal(ev.kind, MLLP_DECODE_NEED_MORE);
	assert_int_equal(mllp_decoder_feed(&d, NULL, 0, &used, &ev),
			 MLLP_ERR_FRAME_TOO_BIG);
	/* Reset: the partial frame is dropped, the rest of it is junk. */
	mllp_decoder_reset(&d);
	assert_false(mllp_decoder_in_frame(&d));
	memset(&s, 0, sizeof(s));
	feed_guarded(&d, &r, S("fg" EB CR SB "ok" EB CR), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "ok");
	assert_int_equal(s.junk, 4);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&s);
}

static void test_max_frame_whole_chunk_too_big(void **state)
{
	struct mllp_frame_config cfg;
	struct sink s;

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.max_frame = 2;
	decode_whole(&cfg, S(SB "ab" EB CR SB "abc" EB CR SB "x" EB CR), &s);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "ab");
	assert_int_equal(s.err, MLLP_ERR_FRAME_TOO_BIG);
	sink_free(&s);
}

static void test_buffer_grows_geometrically_capped(void **state)
{
	struct mllp_frame_config cfg;
	struct count_alloc c;
	struct mllp_allocator a = ca_make(&c, SIZE_MAX);
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};
	const size_t max = 100000;
	unsigned char byte = 'q';

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.max_frame = max;
	region_init(&r, 4);
	assert_int_equal(mllp_decoder_init(&d, &cfg, &a), 0);
	feed_guarded(&d, &r, S(SB), &s);
	for (size_t i = 0; i < max; i++)
		feed_guarded(&d, &r, &byte, 1, &s);
	feed_guarded(&d, &r, S(EB CR), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.f[0].len, max);
	assert_int_equal(d.cap, max); /* capped, not rounded past it */
	assert_true(c.calls <= 16);   /* 1024, 2048, ... then max */
	assert_int_equal(c.largest, max);
	mllp_decoder_free(&d);
	assert_int_equal(c.live_bytes, 0);
	region_free(&r);
	sink_free(&s);
}

/* ---- custom framing bytes --------------------------------------------------
 */

static void test_custom_start_end_bytes(void **state)
{
	struct mllp_frame_config cfg;
	struct sink s;
	unsigned char out[16];
	const void *pl;
	size_t n;

	(void)state;
	mllp_frame_config_init(&cfg);
	cfg.start_byte = '<';
	cfg.end_byte = '>';
	cfg.end_byte2 = '\n';
	/* The default framing bytes are ordinary data here. */
	decode_whole(&cfg, S("x<a" SB EB CR ">b>\n<>\n" SB "c" EB CR), &s);
	assert_int_equal(s.n, 2);
	ASSERT_FRAME(&s, 0, "a" SB EB CR ">b");
	assert_int_equal(s.f[1].len, 0);
	assert_int_equal(s.junk, 1 + 4);
	sink_free(&s);

	assert_int_equal(mllp_wrap(&cfg, "hi", 2, out, sizeof(out), &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "<hi>\n", 5);
	assert_int_equal(mllp_wrap_check(&cfg, "<hi>\n", 5), 1);
	assert_int_equal(mllp_wrap_check(&cfg, "<hi", 3),
			 MLLP_ERR_PARTIAL_WRAP);
	assert_int_equal(mllp_wrap_check(&cfg, SB "hi", 3), 0);
	assert_int_equal(mllp_unwrap(&cfg, "<hi>\n", 5, &pl, &n), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(pl, "hi", 2);
	assert_int_equal(mllp_unwrap(&cfg, "<hi", 3, &pl, &n),
			 MLLP_ERR_BAD_ENVELOPE);
}

/* ---- allocation failure ----------------------------------------------------
 */

static void test_allocation_failure_no_memory_no_leak(void **state)
{
	struct count_alloc c;
	struct mllp_allocator a;
	struct mllp_decoder d;
	struct region r;
	struct sink s = {0};
	unsigned char big[3000];

	(void)state;
	memset(big, 'b', sizeof(big));
	region_init(&r, sizeof(big));

	/* The first allocation fails. */
	a = ca_make(&c, 0);
	assert_int_equal(mllp_decoder_init(&d, NULL, &a), 0);
	/* A frame whole in a chunk needs no memory at all. */
	feed_guarded(&d, &r, S(SB "ok" EB CR), &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(feed_guarded(&d, &r, S(SB "split"), &s),
			 MLLP_ERR_NO_MEMORY);
	assert_int_equal(feed_guarded(&d, &r, S("more"), &s),
			 MLLP_ERR_NO_MEMORY); /* sticky */
	mllp_decoder_free(&d);
	assert_int_equal(c.live_blocks, 0);

	/* The first allocation succeeds, growing fails; reset recovers. */
	a = ca_make(&c, 1);
	sink_free(&s);
	assert_int_equal(mllp_decoder_init(&d, NULL, &a), 0);
	feed_guarded(&d, &r, S(SB "x"), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(c.live_blocks, 1);
	assert_int_equal(feed_guarded(&d, &r, big, sizeof(big), &s),
			 MLLP_ERR_NO_MEMORY);
	assert_int_equal(c.live_blocks, 1); /* old buffer kept, not leaked */
	mllp_decoder_reset(&d);
	s.err = 0;
	feed_guarded(&d, &r, S(SB "a"), &s);
	feed_guarded(&d, &r, S("b" EB CR), &s);
	assert_int_equal(s.err, 0);
	assert_int_equal(s.n, 1);
	ASSERT_FRAME(&s, 0, "ab");
	mllp_decoder_free(&d);
	assert_int_equal(c.live_blocks, 0);
	assert_int_equal(c.live_bytes, 0);
	region_free(&r);
	sink_free(&s);
}

/* ---- the corpus ------------------------------------------------------------
 */

/* Check one decode of a wrapped corpus message. */
static void check_single(const struct sink *s, const unsigned char *msg,
			 size_t len)
{
	assert_int_equal(s->err, 0);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->junk, 0);
	assert_frame(s, 0, msg, len);
}

static void corpus_frame_splits(const char *name, const unsigned char *msg,
				size_t len)
{
	size_t wlen;
	unsigned char *w = wrap_alloc(msg, len, &wlen);
	struct region r;
	struct mllp_decoder d;
	size_t stride = wlen > 65536 ? 4099 : 1;
	size_t nsplits = 0;

	region_init(&r, wlen);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);

	/* Whole: a view into the chunk. */
	{
		struct sink s = {0};

		feed_guarded(&d, &r, w, wlen, &s);
		check_single(&s, msg, len);
		assert_true(s.f[0].in_chunk);
		sink_free(&s);
	}
	/* Every split point (with a stride for the big message, plus the
	 * first and last 64 points). The decoder is reused: it must be back
	 * to its initial state after each frame. */
	for (size_t k = 0; k <= wlen; k++) {
		struct sink s = {0};

		if (k % stride != 0 && k > 64 && k + 64 < wlen)
			continue;
		nsplits++;
		feed_guarded(&d, &r, w, k, &s);
		feed_guarded(&d, &r, w + k, wlen - k, &s);
		check_single(&s, msg, len);
		assert_false(mllp_decoder_in_frame(&d));
		sink_free(&s);
	}
	/* Byte at a time, each byte right before the guard page. */
	{
		struct sink s = {0};

		for (size_t k = 0; k < wlen; k++)
			feed_guarded(&d, &r, w + k, 1, &s);
		check_single(&s, msg, len);
		sink_free(&s);
	}
	assert_true(nsplits >= (wlen > 65536 ? 200 : wlen + 1));
	assert_int_equal(d.junk_total, 0);
	(void)name;
	mllp_decoder_free(&d);
	region_free(&r);
	free(w);
}

static void test_corpus_every_split_and_byte_at_a_time(void **state)
{
	const char *dir = tu_corpus_dir(state);
	char **names;
	size_t count = tu_corpus_list_at(dir, "messages", &names);
	size_t done = 0;

	for (size_t i = 0; i < count; i++) {
		size_t len;
		unsigned char *msg;

		if (strstr(names[i], "feed_100.mllp") != NULL)
			continue; /* already framed: see the feed test */
		msg = tu_corpus_at(dir, names[i], &len);
		corpus_frame_splits(names[i], msg, len);
		free(msg);
		done++;
	}
	assert_true(done >= 11);
	tu_free_names(names, count);
	tu_corpus_checked(dir, done, "messages/ files");
}

/* MSH-10 of an HL7 message: the field after the ninth field separator. */
static void msh10(const unsigned char *p, size_t len, char *out, size_t cap)
{
	size_t i = 0, bars = 0, o = 0;

	assert_true(len > 4 && memcmp(p, "MSH", 3) == 0);
	for (i = 3; i < len && bars < 9; i++)
		if (p[i] == p[3])
			bars++;
	while (i < len && p[i] != p[3] && p[i] != '\r' && o + 1 < cap)
		out[o++] = (char)p[i++];
	out[o] = '\0';
}

static void check_feed(const struct sink *s)
{
	assert_int_equal(s->err, 0);
	assert_int_equal(s->n, 100);
	assert_int_equal(s->junk, 0);
	for (size_t i = 0; i < 100; i++) {
		char id[32], want[32];

		msh10(s->f[i].data, s->f[i].len, id, sizeof(id));
		snprintf(want, sizeof(want), "FEED%06zu", i);
		assert_string_equal(id, want);
	}
}

static void test_corpus_feed_100_frames_in_order(void **state)
{
	size_t len;
	unsigned char *feed = tu_corpus("messages/feed_100.mllp", &len);
	struct sink ref, s = {0};
	struct region r;
	struct mllp_decoder d;
	uint64_t runs = 0;

	(void)state;
	decode_whole(NULL, feed, len, &ref);
	check_feed(&ref);
	for (size_t i = 0; i < 100; i++)
		assert_true(ref.f[i].in_chunk);

	region_init(&r, len);
	assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
	/* Byte at a time. */
	for (size_t k = 0; k < len; k++)
		feed_guarded(&d, &r, feed + k, 1, &s);
	check_feed(&s);
	for (size_t i = 0; i < 100; i++)
		assert_frame(&s, i, ref.f[i].data, ref.f[i].len);
	sink_free(&s);
	runs++;
	/* Chunks of every size from 2 to 97 bytes, and some TCP-like sizes. */
	for (size_t c = 2; c < 1600; c = c < 97 ? c + 1 : c * 2 + 1) {
		for (size_t off = 0; off < len; off += c) {
			size_t n = len - off < c ? len - off : c;

			feed_guarded(&d, &r, feed + off, n, &s);
		}
		check_feed(&s);
		for (size_t i = 0; i < 100; i++)
			assert_frame(&s, i, ref.f[i].data, ref.f[i].len);
		sink_free(&s);
		runs++;
	}
	/* Two chunks, split with a stride of 7 across the whole feed. */
	for (size_t k = 0; k <= len; k += 7) {
		feed_guarded(&d, &r, feed, k, &s);
		feed_guarded(&d, &r, feed + k, len - k, &s);
		assert_int_equal(s.n, 100);
		assert_int_equal(s.junk, 0);
		sink_free(&s);
		runs++;
	}
	assert_int_equal(d.frames_total, runs * 100);
	assert_int_equal(d.junk_total, 0);
	mllp_decoder_free(&d);
	region_free(&r);
	sink_free(&ref);
	free(feed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wrap_simple),
	    cmocka_unit_test(test_wrap_already_wrapped_unchanged),
	    cmocka_unit_test(test_wrap_partial_is_refused),
	    cmocka_unit_test(test_wrap_buffer_too_small),
	    cmocka_unit_test(test_wrap_invalid_arguments),
	    cmocka_unit_test(test_wrap_in_place),
	    cmocka_unit_test(test_unwrap_reference_cases),
	    TU_CORPUS_TESTS(test_wrap_unwrap_roundtrip_corpus),
	    cmocka_unit_test(test_decoder_init_args),
	    cmocka_unit_test(test_decoder_empty_feed),
	    cmocka_unit_test(test_decoder_single_frame_zero_copy),
	    cmocka_unit_test(test_decoder_empty_frame),
	    cmocka_unit_test(test_decoder_split_copies_into_buffer),
	    cmocka_unit_test(test_refdefect_frame_junk_frame_no_endless_loop),
	    cmocka_unit_test(test_refdefect_frame_junk_partial_not_corrupted),
	    cmocka_unit_test(
		test_refdefect_eb_then_cr_and_next_frame_not_merged),
	    cmocka_unit_test(test_refdefect_several_frames_one_packet_all_out),
	    cmocka_unit_test(test_reference_framer_packets),
	    cmocka_unit_test(test_junk_before_start_reported_with_bytes),
	    cmocka_unit_test(test_junk_split_across_chunks_never_merged),
	    cmocka_unit_test(test_start_byte_inside_frame_is_data),
	    cmocka_unit_test(test_end_byte_without_cr_is_data),
	    cmocka_unit_test(test_end_byte_at_chunk_end_then_data),
	    cmocka_unit_test(test_every_split_of_tricky_stream),
	    cmocka_unit_test(test_max_frame_exact_ok_one_more_fails),
	    cmocka_unit_test(test_max_frame_end_byte_as_last_data_byte),
	    cmocka_unit_test(test_max_frame_error_sticky_until_reset),
	    cmocka_unit_test(test_max_frame_whole_chunk_too_big),
	    cmocka_unit_test(test_buffer_grows_geometrically_capped),
	    cmocka_unit_test(test_custom_start_end_bytes),
	    cmocka_unit_test(test_allocation_failure_no_memory_no_leak),
	    TU_CORPUS_TESTS(test_corpus_every_split_and_byte_at_a_time),
	    cmocka_unit_test(test_corpus_feed_100_frames_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

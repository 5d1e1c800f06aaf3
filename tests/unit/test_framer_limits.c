/* Unit tests for the MLLP streaming decoder's limits: max_frame, buffer
 * growth, custom framing bytes, allocation failure. */
#include "framer_util.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_max_frame_exact_ok_one_more_fails),
	    cmocka_unit_test(test_max_frame_end_byte_as_last_data_byte),
	    cmocka_unit_test(test_max_frame_error_sticky_until_reset),
	    cmocka_unit_test(test_max_frame_whole_chunk_too_big),
	    cmocka_unit_test(test_buffer_grows_geometrically_capped),
	    cmocka_unit_test(test_custom_start_end_bytes),
	    cmocka_unit_test(test_allocation_failure_no_memory_no_leak),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

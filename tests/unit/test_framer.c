/* Unit tests for the MLLP streaming decoder: basics, the reference's
 * defects proven absent, its framer tests ported, junk handling and
 * framing bytes inside frames.
 *
 * Decoder inputs sit right before an inaccessible page (tu_guard_copy), so
 * reading one byte past a chunk crashes the test. */
#include "framer_util.h"

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

/* in[0..n) fed in three chunks, split at every pair of points (each chunk
 * right before a guard page), decodes as ref, the stream decoded whole. */
static void expect_every_split(const unsigned char *in, size_t n,
			       const struct sink *ref)
{
	struct region r;

	region_init(&r, n);
	for (size_t i = 0; i <= n; i++) {
		for (size_t j = i; j <= n; j++) {
			struct mllp_decoder d;
			struct sink s = {0};

			assert_int_equal(mllp_decoder_init(&d, NULL, NULL), 0);
			feed_guarded(&d, &r, in, i, &s);
			feed_guarded(&d, &r, in + i, j - i, &s);
			feed_guarded(&d, &r, in + j, n - j, &s);
			assert_int_equal(s.n, ref->n);
			for (size_t k = 0; k < ref->n; k++)
				assert_frame(&s, k, ref->f[k].data,
					     ref->f[k].len);
			assert_int_equal(s.junk, ref->junk);
			assert_int_equal(d.junk_total, ref->junk);
			assert_int_equal(d.frames_total, ref->n);
			mllp_decoder_free(&d);
			sink_free(&s);
		}
	}
	region_free(&r);
}

/* Every split point (two chunks) and every pair of split points (three
 * chunks) of a stream full of awkward bytes gives the same events. */
static void test_every_split_of_tricky_stream(void **state)
{
	static const unsigned char in[] =
	    "jk" SB "a" SB EB "b" EB EB CR CR "\n" SB EB CR SB "x" EB CR "z";
	const size_t n = sizeof(in) - 1;
	struct sink ref;

	(void)state;
	decode_whole(NULL, in, n, &ref);
	assert_int_equal(ref.n, 3);
	ASSERT_FRAME(&ref, 0, "a" SB EB "b" EB);
	assert_int_equal(ref.f[1].len, 0);
	ASSERT_FRAME(&ref, 2, "x");
	assert_int_equal(ref.junk, 2 + 2 + 1);
	expect_every_split(in, n, &ref);
	sink_free(&ref);
}

/* MLLP release 2: the commit ACK (SB 0x06 EB CR) and NAK (SB 0x15 EB CR)
 * blocks are frames of one byte, also back to back with an HL7 ACK, in
 * one chunk or split at every pair of points. */
static void test_commit_blocks_are_one_byte_frames(void **state)
{
	static const unsigned char in[] =
	    SB "\x06" EB CR SB "MSA|AA|1" EB CR SB "\x15" EB CR SB "\x06" EB CR;
	const size_t n = sizeof(in) - 1;
	struct sink ref;

	(void)state;
	decode_whole(NULL, in, n, &ref);
	assert_int_equal(ref.n, 4);
	ASSERT_FRAME(&ref, 0, "\x06");
	ASSERT_FRAME(&ref, 1, "MSA|AA|1");
	ASSERT_FRAME(&ref, 2, "\x15");
	ASSERT_FRAME(&ref, 3, "\x06");
	assert_int_equal(ref.junk, 0);
	expect_every_split(in, n, &ref);
	sink_free(&ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commit_blocks_are_one_byte_frames),
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

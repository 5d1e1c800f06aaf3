/* Unit tests for the MLLP streaming decoder over the corpus: every split
 * point and byte at a time, and 100 frames fed in order. */
#include "framer_util.h"

static unsigned char *wrap_alloc(const void *payload, size_t len, size_t *out)
{
	unsigned char *w = malloc(mllp_wrapped_size(len));

	assert_non_null(w);
	assert_int_equal(
	    mllp_wrap(NULL, payload, len, w, mllp_wrapped_size(len), out), 0);
	return w;
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
	    TU_CORPUS_TESTS(test_corpus_every_split_and_byte_at_a_time),
	    cmocka_unit_test(test_corpus_feed_100_frames_in_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Helpers shared by the framer tests (see framer_util.h). */
#include "framer_util.h"

void region_init(struct region *r, size_t cap)
{
	unsigned char *zero = calloc(1, cap ? cap : 1);

	assert_non_null(zero);
	tu_guard_copy(&r->g, zero, cap);
	free(zero);
	r->end = r->g.data + cap;
	r->cap = cap;
}

/* Place src (len bytes) right before the guard page; returns its copy. */
const unsigned char *region_put(struct region *r, const void *src, size_t len)
{
	assert_true(len <= r->cap);
	if (len > 0)
		memcpy(r->end - len, src, len);
	return r->end - len;
}

void region_free(struct region *r)
{
	tu_guard_free(&r->g);
}

void sink_free(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->f[i].data);
	free(s->f);
	memset(s, 0, sizeof(*s));
}

void sink_push(struct sink *s, const unsigned char *p, size_t len,
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
int feed_chunk(struct mllp_decoder *d, const unsigned char *p, size_t len,
	       struct sink *s)
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
int feed_guarded(struct mllp_decoder *d, struct region *r, const void *p,
		 size_t len, struct sink *s)
{
	return feed_chunk(d, region_put(r, p, len), len, s);
}

/* Decode data whole, one guarded chunk. */
void decode_whole(const struct mllp_frame_config *cfg, const void *data,
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

void assert_frame(const struct sink *s, size_t i, const void *p, size_t len)
{
	assert_true(i < s->n);
	assert_int_equal(s->f[i].len, len);
	if (len > 0)
		assert_memory_equal(s->f[i].data, p, len);
}

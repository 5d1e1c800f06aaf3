/* libFuzzer target: the streaming MLLP decoder.
 *
 * The first input byte picks the configuration (max_frame, framing bytes)
 * and the chunking; the rest is the byte stream. The stream is decoded four
 * ways and the transcripts (frames in order, junk byte total, final error,
 * partial-frame state) must be identical:
 *
 *   oracle    a naive byte-by-byte state machine written here;
 *   whole     one mllp_decoder_feed() loop over the whole stream;
 *   chunked   chunks whose sizes come from the stream's own bytes, each
 *             copied into an exact-size heap block (ASan sees over-reads);
 *   bytewise  one byte at a time (streams up to 64 KiB, to stay fast).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/framer.h>

#include "fuzz.h"

/* What a decoding produced. Frames are folded into a running hash. */
struct transcript {
	uint64_t frames;
	uint64_t hash;
	uint64_t junk;
	int err;
	bool in_frame;
};

static void tr_init(struct transcript *t)
{
	memset(t, 0, sizeof(*t));
	t->hash = 1469598103934665603ull; /* FNV-1a offset basis */
}

static void tr_mix(struct transcript *t, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		t->hash ^= b[i];
		t->hash *= 1099511628211ull;
	}
}

static void tr_frame(struct transcript *t, const unsigned char *p, size_t n)
{
	uint64_t len = n;

	t->frames++;
	tr_mix(t, &len, sizeof(len));
	tr_mix(t, p, n);
}

static bool tr_equal(const struct transcript *a, const struct transcript *b)
{
	return a->frames == b->frames && a->hash == b->hash &&
	       a->junk == b->junk && a->err == b->err &&
	       a->in_frame == b->in_frame;
}

/* The oracle: the MLLP rules applied one byte at a time, no cleverness. */
enum oracle_state { OUT, IN, AFTER };

struct oracle {
	const struct mllp_frame_config *cfg;
	enum oracle_state st;
	unsigned char *cur;
	size_t len;
};

/* A payload byte, or the first end byte, while inside a frame. */
static void oracle_in(struct oracle *o, unsigned char b, struct transcript *t)
{
	if (b == o->cfg->end_byte) {
		o->st = AFTER;
		return;
	}
	o->cur[o->len++] = b;
	if (o->len > o->cfg->max_frame)
		t->err = MLLP_ERR_FRAME_TOO_BIG;
}

static void oracle(const struct mllp_frame_config *cfg, const uint8_t *p,
		   size_t n, struct transcript *t)
{
	struct oracle o = {cfg, OUT, malloc(n + 1), 0};

	CHECK(o.cur != NULL);
	for (size_t i = 0; i < n && t->err == 0; i++) {
		unsigned char b = p[i];

		switch (o.st) {
		case OUT:
			if (b == cfg->start_byte) {
				o.st = IN;
				o.len = 0;
			} else {
				t->junk++;
			}
			break;
		case IN:
			oracle_in(&o, b, t);
			break;
		case AFTER:
			if (b == cfg->end_byte2) {
				tr_frame(t, o.cur, o.len);
				o.st = OUT;
				break;
			}
			/* The end byte was data; b is examined afresh. */
			o.cur[o.len++] = cfg->end_byte;
			o.st = IN;
			if (o.len > cfg->max_frame)
				t->err = MLLP_ERR_FRAME_TOO_BIG;
			else
				oracle_in(&o, b, t);
			break;
		}
	}
	t->in_frame = o.st != OUT;
	free(o.cur);
}

/* Feed one chunk completely; checks the per-call contract. Returns false
 * once the decoder reported an error. */
static bool feed(struct mllp_decoder *d, const unsigned char *p, size_t n,
		 struct transcript *t)
{
	size_t off = 0;

	do {
		struct mllp_decoded ev;
		size_t used = (size_t)-1;
		int rc = mllp_decoder_feed(d, p + off, n - off, &used, &ev);

		if (rc < 0) {
			CHECK(used == 0 && ev.kind == MLLP_DECODE_NEED_MORE);
			CHECK(rc == MLLP_ERR_FRAME_TOO_BIG ||
			      rc == MLLP_ERR_NO_MEMORY);
			t->err = rc;
			return false;
		}
		CHECK(rc == 0);
		CHECK(used <= n - off);
		CHECK(off == n || used > 0);
		switch (ev.kind) {
		case MLLP_DECODE_NEED_MORE:
			CHECK(used == n - off && ev.len == 0);
			break;
		case MLLP_DECODE_JUNK:
			CHECK(ev.data == p + off && ev.len == used && used > 0);
			t->junk += ev.len;
			break;
		case MLLP_DECODE_FRAME:
			CHECK(ev.len <= d->cfg.max_frame);
			tr_frame(t, ev.data, ev.len);
			break;
		default:
			CHECK(0);
		}
		off += used;
	} while (off < n);
	return true;
}

static void finish(struct mllp_decoder *d, struct transcript *t)
{
	t->in_frame = mllp_decoder_in_frame(d);
	CHECK(d->junk_total == t->junk);
	CHECK(d->frames_total == t->frames);
	CHECK(d->cap <= d->cfg.max_frame);
	mllp_decoder_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_frames[4] = {MLLP_DEFAULT_MAX_FRAME, 4096, 64,
					     1};
	static const size_t chunk_limits[4] = {8, 64, 4096, 65536};
	struct mllp_frame_config cfg;
	struct transcript want, got;
	struct mllp_decoder d;
	const uint8_t *p;
	size_t n;
	uint8_t ctl;

	if (size == 0)
		return 0;
	ctl = data[0];
	p = data + 1;
	n = size - 1;

	mllp_frame_config_init(&cfg);
	cfg.max_frame = max_frames[ctl & 3];
	if (ctl & 4) {
		/* Printable framing bytes, easy for the fuzzer to produce. */
		cfg.start_byte = '<';
		cfg.end_byte = '>';
		cfg.end_byte2 = '\n';
	}

	tr_init(&want);
	oracle(&cfg, p, n, &want);

	/* Whole stream in one chunk. */
	tr_init(&got);
	CHECK(mllp_decoder_init(&d, &cfg, NULL) == 0);
	feed(&d, p, n, &got);
	finish(&d, &got);
	CHECK(tr_equal(&want, &got));

	/* Chunk sizes derived from the stream's bytes. */
	tr_init(&got);
	CHECK(mllp_decoder_init(&d, &cfg, NULL) == 0);
	{
		size_t limit = chunk_limits[(ctl >> 3) & 3];
		size_t off = 0, i = 0;

		while (off < n) {
			size_t k =
			    1 + ((size_t)p[off] * 31 + (ctl >> 5) + i) % limit;
			unsigned char *c;
			bool ok;

			if (k > n - off)
				k = n - off;
			c = malloc(k);
			CHECK(c != NULL);
			memcpy(c, p + off, k);
			ok = feed(&d, c, k, &got);
			free(c);
			if (!ok)
				break;
			off += k;
			i++;
		}
	}
	finish(&d, &got);
	CHECK(tr_equal(&want, &got));

	/* One byte at a time. */
	if (n <= 65536) {
		tr_init(&got);
		CHECK(mllp_decoder_init(&d, &cfg, NULL) == 0);
		for (size_t i = 0; i < n; i++) {
			unsigned char *c = malloc(1);

			CHECK(c != NULL);
			c[0] = p[i];
			if (!feed(&d, c, 1, &got)) {
				free(c);
				break;
			}
			free(c);
		}
		finish(&d, &got);
		CHECK(tr_equal(&want, &got));
	}
	return 0;
}

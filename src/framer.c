/* libmllp: MLLP framing — wrapping payloads and a streaming decoder.
 *
 * The decoder is a three-state machine:
 *
 *   OUTSIDE   looking for the start byte; everything else is junk.
 *   IN_FRAME  collecting payload, looking for the first end byte.
 *   AFTER_EB  the last byte received was an end byte; the next byte decides
 *             whether it was the trailer (second end byte) or data.
 *
 * Only bytes of the current chunk are ever scanned (memchr from where the
 * previous scan stopped), so a frame split across chunks is examined once.
 * A frame that lies whole in one chunk is handed out as a view into the
 * chunk; only payload bytes of a frame split across chunks are copied. */
#include <stdint.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/framer.h>

#include "reserved.h"

enum {
	MLLPI_OUTSIDE = 0,
	MLLPI_IN_FRAME = 1,
	MLLPI_AFTER_EB = 2,
};

/* Smallest buffer allocated for a split frame (unless max_frame is
 * smaller): avoids a string of tiny reallocations for short messages. */
#define MLLPI_MIN_BUF ((size_t)1024)

static const struct mllp_frame_config mllpi_default_cfg = {
    .start_byte = MLLP_SB,
    .end_byte = MLLP_EB,
    .end_byte2 = MLLP_CR,
    .max_frame = MLLP_DEFAULT_MAX_FRAME,
};

void mllp_frame_config_init(struct mllp_frame_config *cfg)
{
	*cfg = mllpi_default_cfg;
}

static const struct mllp_frame_config *
mllpi_cfg(const struct mllp_frame_config *cfg)
{
	return cfg != NULL ? cfg : &mllpi_default_cfg;
}

/* ---- wrapping ------------------------------------------------------------ */

int mllp_wrap_check(const struct mllp_frame_config *cfg, const void *payload,
		    size_t len)
{
	const unsigned char *p = payload;

	cfg = mllpi_cfg(cfg);
	if (MLLPI_CHECK_RESERVED(cfg, "mllp_frame_config", MLLP_CTX_NONE,
				 NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (len == 0)
		return 0;
	if (p == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (p[0] != cfg->start_byte)
		return 0;
	if (len >= 3 && p[len - 2] == cfg->end_byte &&
	    p[len - 1] == cfg->end_byte2)
		return 1;
	return MLLP_ERR_PARTIAL_WRAP;
}

int mllp_wrap(const struct mllp_frame_config *cfg, const void *payload,
	      size_t len, void *out, size_t cap, size_t *out_len)
{
	unsigned char *o = out;
	size_t need;
	int kind;

	cfg = mllpi_cfg(cfg);
	if (out_len == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	kind = mllp_wrap_check(cfg, payload, len);
	if (kind < 0)
		return kind;
	if (kind == 0 && len > SIZE_MAX - 3)
		return MLLP_ERR_INVALID_ARGUMENT;
	need = kind == 1 ? len : mllp_wrapped_size(len);
	*out_len = need;
	if (cap < need)
		return MLLP_ERR_BUFFER_TOO_SMALL;
	if (o == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (kind == 1) {
		memmove(o, payload, len);
		return 0;
	}
	/* memmove first, then the header: payload and out may overlap. */
	if (len > 0)
		memmove(o + 1, payload, len);
	o[0] = cfg->start_byte;
	o[len + 1] = cfg->end_byte;
	o[len + 2] = cfg->end_byte2;
	return 0;
}

int mllp_unwrap(const struct mllp_frame_config *cfg, const void *data,
		size_t len, const void **payload, size_t *payload_len)
{
	const unsigned char *p = data;
	bool head, tail;

	cfg = mllpi_cfg(cfg);
	if (payload == NULL || payload_len == NULL || (p == NULL && len > 0) ||
	    MLLPI_CHECK_RESERVED(cfg, "mllp_frame_config", MLLP_CTX_NONE,
				 NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	head = len >= 1 && p[0] == cfg->start_byte;
	tail = len >= 2 && p[len - 2] == cfg->end_byte &&
	       p[len - 1] == cfg->end_byte2;
	if (head && tail && len >= 3) {
		*payload = p + 1;
		*payload_len = len - 3;
		return 0;
	}
	if (head || tail)
		return MLLP_ERR_BAD_ENVELOPE;
	*payload = data;
	*payload_len = len;
	return 0;
}

/* ---- streaming decoder --------------------------------------------------- */

int mllp_decoder_init(struct mllp_decoder *d,
		      const struct mllp_frame_config *cfg,
		      const struct mllp_allocator *alloc)
{
	if (d == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;
	cfg = mllpi_cfg(cfg);
	if (alloc == NULL)
		alloc = mllp_allocator_libc();
	if (cfg->max_frame == 0 || cfg->end_byte == cfg->end_byte2 ||
	    alloc->realloc == NULL || alloc->free == NULL ||
	    MLLPI_CHECK_RESERVED(cfg, "mllp_frame_config", MLLP_CTX_NONE,
				 NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->alloc = *alloc;
	d->state = MLLPI_OUTSIDE;
	return 0;
}

void mllp_decoder_free(struct mllp_decoder *d)
{
	if (d == NULL)
		return;
	if (d->buf != NULL)
		d->alloc.free(d->alloc.ctx, d->buf, d->cap);
	d->buf = NULL;
	d->cap = 0;
	d->len = 0;
	d->state = MLLPI_OUTSIDE;
}

void mllp_decoder_reset(struct mllp_decoder *d)
{
	d->len = 0;
	d->state = MLLPI_OUTSIDE;
	d->error = 0;
}

bool mllp_decoder_in_frame(const struct mllp_decoder *d)
{
	return d->state != MLLPI_OUTSIDE;
}

static int mllpi_fail(struct mllp_decoder *d, int err)
{
	d->error = err;
	return err;
}

/* Append n payload bytes to the split-frame buffer. The buffer grows
 * geometrically but never beyond max_frame; a payload that would exceed
 * max_frame fails before anything is allocated for it. */
static int mllpi_append(struct mllp_decoder *d, const unsigned char *src,
			size_t n)
{
	size_t max = d->cfg.max_frame;

	if (n == 0)
		return 0;
	if (n > max - d->len) /* d->len <= max always holds */
		return mllpi_fail(d, MLLP_ERR_FRAME_TOO_BIG);
	if (d->len + n > d->cap) {
		size_t need = d->len + n;
		size_t ncap = d->cap > 0 ? d->cap : MLLPI_MIN_BUF;
		unsigned char *nb;

		while (ncap < need && ncap <= max / 2)
			ncap *= 2;
		if (ncap < need || ncap > max)
			ncap = max; /* need <= max */
		nb = d->alloc.realloc(d->alloc.ctx, d->buf, d->cap, ncap);
		if (nb == NULL)
			return mllpi_fail(d, MLLP_ERR_NO_MEMORY);
		d->buf = nb;
		d->cap = ncap;
	}
	memcpy(d->buf + d->len, src, n);
	d->len += n;
	return 0;
}

/* A frame is complete: hand out its payload and return to OUTSIDE. */
static int mllpi_emit(struct mllp_decoder *d, const unsigned char *data,
		      size_t len, struct mllp_decoded *out)
{
	out->kind = MLLP_DECODE_FRAME;
	out->data = data;
	out->len = len;
	d->len = 0;
	d->state = MLLPI_OUTSIDE;
	d->frames_total++;
	return 0;
}

int mllp_decoder_feed(struct mllp_decoder *d, const void *data, size_t len,
		      size_t *consumed, struct mllp_decoded *out)
{
	const unsigned char *p = data;
	const unsigned char eb = d->cfg.end_byte, eb2 = d->cfg.end_byte2;
	size_t start = 0, scan, j;
	int rc;

	out->kind = MLLP_DECODE_NEED_MORE;
	out->data = NULL;
	out->len = 0;
	*consumed = 0;
	if (d->error != 0)
		return d->error;
	if (len == 0)
		return 0;
	if (p == NULL)
		return MLLP_ERR_INVALID_ARGUMENT;

	switch (d->state) {
	case MLLPI_OUTSIDE: {
		const unsigned char *sb = memchr(p, d->cfg.start_byte, len);
		size_t skip = sb != NULL ? (size_t)(sb - p) : len;

		if (skip > 0) {
			/* Junk is reported on its own, never merged into the
			 * frame that may follow it. */
			d->junk_total += skip;
			out->kind = MLLP_DECODE_JUNK;
			out->data = p;
			out->len = skip;
			*consumed = skip;
			return 0;
		}
		d->state = MLLPI_IN_FRAME;
		start = 1;
		break;
	}
	case MLLPI_AFTER_EB:
		if (p[0] == eb2) {
			*consumed = 1;
			/* An empty payload has no buffer: view the chunk. */
			return mllpi_emit(d, d->len > 0 ? d->buf : p, d->len,
					  out);
		}
		/* The end byte was data; p[0] is examined below as usual
		 * (it may itself be an end byte). */
		rc = mllpi_append(d, &eb, 1);
		if (rc < 0)
			return rc;
		d->state = MLLPI_IN_FRAME;
		break;
	default:
		break;
	}

	/* IN_FRAME: payload of this chunk starts at p + start. scan moves past
	 * end bytes that turned out to be data; nothing is looked at twice. */
	scan = start;
	for (;;) {
		const unsigned char *e = memchr(p + scan, eb, len - scan);

		if (e == NULL) {
			rc = mllpi_append(d, p + start, len - start);
			if (rc < 0)
				return rc;
			*consumed = len;
			return 0;
		}
		j = (size_t)(e - p);
		if (j + 1 == len) {
			/* The chunk ends on an end byte: wait for the next. */
			rc = mllpi_append(d, p + start, j - start);
			if (rc < 0)
				return rc;
			d->state = MLLPI_AFTER_EB;
			*consumed = len;
			return 0;
		}
		if (p[j + 1] == eb2)
			break;
		scan = j + 1;
	}

	/* The trailer is at p[j], p[j + 1]; the payload is what is held plus
	 * p[start..j). */
	*consumed = j + 2;
	if (d->len == 0) {
		/* Whole in this chunk: a view, no copy. */
		if (j - start > d->cfg.max_frame) {
			*consumed = 0;
			return mllpi_fail(d, MLLP_ERR_FRAME_TOO_BIG);
		}
		return mllpi_emit(d, p + start, j - start, out);
	}
	rc = mllpi_append(d, p + start, j - start);
	if (rc < 0) {
		*consumed = 0;
		return rc;
	}
	return mllpi_emit(d, d->buf, d->len, out);
}

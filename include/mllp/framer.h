/* libmllp: MLLP framing — wrapping payloads and a streaming decoder.
 *
 * An MLLP frame is SB (0x0B), the payload, then EB (0x1C) CR (0x0D). The
 * payload is opaque bytes: UTF-8, ISO-8859-1 and control bytes all pass
 * unchanged (an SB inside a frame is data).
 *
 * Nothing here does I/O. The decoder takes chunks as they arrive and hands
 * out complete frames as views. Scanning is resumable: each received byte is
 * examined once, whatever the chunking (total work is linear in bytes
 * received).
 *
 * Threading: a decoder belongs to one thread at a time; distinct decoders
 * are independent. Wrapping functions are pure and thread-safe. */
#ifndef MLLP_FRAMER_H
#define MLLP_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/alloc.h>
#include <mllp/export.h>

MLLP_BEGIN_DECLS

#define MLLP_SB 0x0B
#define MLLP_EB 0x1C
#define MLLP_CR 0x0D
/* Default maximum payload size accepted by a decoder: 64 MiB. */
#define MLLP_DEFAULT_MAX_FRAME ((size_t)64 * 1024 * 1024)

/* Framing bytes and limits. Zero-initialise, then mllp_frame_config_init()
 * sets the defaults (SB 0x0B, EB 0x1C, CR 0x0D, max_frame 64 MiB). */
struct mllp_frame_config {
	unsigned char start_byte; /* default MLLP_SB */
	unsigned char end_byte;	  /* default MLLP_EB */
	unsigned char end_byte2;  /* default MLLP_CR */
	size_t max_frame;	  /* largest payload accepted, in bytes
				   * (a payload of exactly max_frame is
				   * accepted, one byte more is not) */
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_frame_config_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Set *cfg to the defaults listed above. */
MLLP_API void mllp_frame_config_init(struct mllp_frame_config *cfg);

/* Bytes a wrapped payload of payload_len bytes occupies (payload_len + 3). */
static inline size_t mllp_wrapped_size(size_t payload_len)
{
	return payload_len + 3;
}

/* Classify a payload before wrapping. cfg may be NULL (defaults).
 * Returns 0 when it needs wrapping, 1 when it is already a complete frame
 * (starts with the start byte and ends with the two end bytes), or
 * MLLP_ERR_PARTIAL_WRAP when it starts with the start byte but lacks the
 * trailer ("cannot wrap a partially wrapped message"). Useful to send
 * header, payload and trailer as three iovecs without copying. */
MLLP_API int mllp_wrap_check(const struct mllp_frame_config *cfg,
			     const void *payload, size_t len);

/* Write the wrapped payload into out (cap bytes); *out_len receives the
 * length. An already wrapped payload is copied unchanged. payload and out
 * may overlap (wrapping in place is allowed). Errors:
 * MLLP_ERR_PARTIAL_WRAP (see above), MLLP_ERR_BUFFER_TOO_SMALL (*out_len
 * then holds the size needed), MLLP_ERR_INVALID_ARGUMENT. */
MLLP_API int mllp_wrap(const struct mllp_frame_config *cfg, const void *payload,
		       size_t len, void *out, size_t cap, size_t *out_len);

/* Unwrap one complete frame: *payload and *payload_len receive a view into
 * data (no copy). Data without start byte and without trailer is returned
 * whole (it was never wrapped, as in the reference); data with only one of
 * them gives MLLP_ERR_BAD_ENVELOPE. */
MLLP_API int mllp_unwrap(const struct mllp_frame_config *cfg, const void *data,
			 size_t len, const void **payload, size_t *payload_len);

/* What one call of mllp_decoder_feed() found. */
enum mllp_decode_kind {
	/* Every byte given was consumed; no frame is complete yet. */
	MLLP_DECODE_NEED_MORE = 0,
	/* A complete frame: data/len view its payload (without SB, EB, CR). */
	MLLP_DECODE_FRAME = 1,
	/* Bytes outside any frame were discarded: data/len view them (the part
	 * of them in this chunk). Never merged into a frame. */
	MLLP_DECODE_JUNK = 2,
};

struct mllp_decoded {
	enum mllp_decode_kind kind;
	const unsigned char
	    *data; /* valid until the next call on the decoder */
	size_t len;
};

/* A streaming decoder. Treat the fields as private; the struct is public so
 * it can be embedded without an allocation. */
struct mllp_decoder {
	struct mllp_frame_config cfg;
	struct mllp_allocator alloc;
	unsigned char *buf;    /* partial frame payload (copied on split) */
	size_t len;	       /* bytes of payload held in buf */
	size_t cap;	       /* bytes allocated for buf */
	uint8_t state;	       /* private */
	int error;	       /* sticky error, 0 when none */
	uint64_t junk_total;   /* bytes discarded outside frames, ever */
	uint64_t frames_total; /* frames produced, ever */
};

/* Initialise a decoder. cfg and alloc may be NULL (defaults: see
 * mllp_frame_config_init and mllp_allocator_libc). Allocates nothing yet.
 * Returns 0 or MLLP_ERR_INVALID_ARGUMENT (max_frame 0, identical end
 * bytes, or an allocator without realloc or free). The allocator is copied;
 * its ctx must outlive the decoder. */
MLLP_API int mllp_decoder_init(struct mllp_decoder *d,
			       const struct mllp_frame_config *cfg,
			       const struct mllp_allocator *alloc);

/* Release the decoder's buffer. The struct may be initialised again. */
MLLP_API void mllp_decoder_free(struct mllp_decoder *d);

/* Drop any partial frame and clear a sticky error; keeps the buffer for
 * reuse and the counters. */
MLLP_API void mllp_decoder_reset(struct mllp_decoder *d);

/* Feed bytes. Consumes a prefix of data[0..len) (*consumed bytes) and
 * reports one event in *out. Call again with the rest until the whole chunk
 * is consumed; an event of kind NEED_MORE means all of it was.
 *
 * Views point either into data (a frame that lies whole in the chunk: no
 * copy) or into the decoder's own buffer (a frame split across chunks);
 * they stay valid until the next call on this decoder.
 *
 * Errors (negative return): MLLP_ERR_FRAME_TOO_BIG when a payload grows
 * beyond cfg.max_frame (no allocation beyond that size is made), and
 * MLLP_ERR_NO_MEMORY. The error is sticky: later calls return it until
 * mllp_decoder_reset(). On error *consumed is 0 and out is NEED_MORE with
 * no data. A NULL data with len 0 is allowed (NEED_MORE, nothing consumed).
 *
 * A typical loop:
 *
 *	while (len > 0) {
 *		rc = mllp_decoder_feed(d, p, len, &used, &ev);
 *		if (rc < 0)
 *			break;
 *		if (ev.kind == MLLP_DECODE_FRAME)
 *			handle(ev.data, ev.len);
 *		p += used;
 *		len -= used;
 *	}
 */
MLLP_API int mllp_decoder_feed(struct mllp_decoder *d, const void *data,
			       size_t len, size_t *consumed,
			       struct mllp_decoded *out);

/* True while the decoder holds the start of a frame whose end has not
 * arrived yet. */
MLLP_API bool mllp_decoder_in_frame(const struct mllp_decoder *d);

MLLP_END_DECLS

#endif

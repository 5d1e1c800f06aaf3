/* Internal: the Prometheus text writer shared by metrics.c (receiver,
 * ACKs, options) and metrics_pool.c (pool). snprintf-like: it counts
 * every byte and copies only while the whole text still fits, so a text
 * that does not fit leaves buf[0..cap) untouched but for a prefix, which
 * mllpi_mw_end() turns into the empty string. */
#ifndef MLLPI_METRICS_WRITER_H
#define MLLPI_METRICS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include <mllp/metrics.h>

struct mllpi_mw {
	char *buf;
	size_t cap;
	size_t len; /* bytes of the complete text so far */
	const char *prefix;
	const struct mllp_metrics_label *labels;
	size_t nlabels;
	/* The family whose HELP and TYPE lines are written before its first
	 * sample (a family without samples is left out). */
	const char *fam, *type, *help;
	const char *written_fam; /* the last family whose header went out */
};

/* A family label: name and value (escaped on output). */
struct mllpi_kv {
	const char *k;
	const char *v;
};

/* Check the options (NULL: defaults) and start an empty text. 0 or
 * MLLP_ERR_INVALID_ARGUMENT. */
int mllpi_mw_init(struct mllpi_mw *w, char *buf, size_t cap,
		  const struct mllp_metrics_options *o);
/* Terminate: the length, or rc when rc < 0 (buf then empty). */
int mllpi_mw_end(struct mllpi_mw *w, int rc);
/* The family the next samples belong to (name without the prefix). */
void mllpi_mw_family(struct mllpi_mw *w, const char *name, const char *type,
		     const char *help);
/* One sample: PREFIX_fam[suffix]{const labels, kv} value. value is text
 * (NULL: v in decimal). */
void mllpi_mw_sample(struct mllpi_mw *w, const char *suffix,
		     const struct mllpi_kv *kv, size_t nkv, const char *value,
		     uint64_t v);
/* Shorthands: a family of one unlabelled sample. */
void mllpi_mw_one(struct mllpi_mw *w, const char *name, const char *type,
		  const char *help, uint64_t v);
/* us microseconds as seconds in decimal ("0.0001", "2.5", "60"); out
 * holds at least 32 bytes. Locale-independent. */
void mllpi_mw_seconds(uint64_t us, char *out);
/* Decimal text of v into out (at least 21 bytes). */
void mllpi_mw_u64(uint64_t v, char *out);

#endif

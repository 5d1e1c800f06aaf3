/* Shared helpers of the tools: input, splitting, JSON, clocks, the latency
 * histogram (see common.h). */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int buf_reserve(struct tool_buf *b, size_t more)
{
	if (b->cap - b->len >= more)
		return 0;
	size_t cap = b->cap ? b->cap : 65536;
	while (cap - b->len < more)
		cap *= 2;
	unsigned char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int tool_read_file(const char *path, struct tool_buf *buf)
{
	int fd = strcmp(path, "-") == 0 ? STDIN_FILENO
					: open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = 0;
	for (;;) {
		if (buf_reserve(buf, 65536) != 0) {
			rc = -ENOMEM;
			break;
		}
		ssize_t n = read(fd, buf->data + buf->len, buf->cap - buf->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		buf->len += (size_t)n;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

void tool_buf_free(struct tool_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}

static int msgs_push(struct tool_msgs *m, unsigned char *data, size_t len,
		     bool batch)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct tool_msg *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		m->v = v;
		m->cap = cap;
	}
	m->v[m->n].data = data;
	m->v[m->n].len = len;
	m->v[m->n].batch = batch;
	m->n++;
	return 0;
}

void tool_msgs_free(struct tool_msgs *m)
{
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}

static int split_frames(unsigned char *data, size_t len, struct tool_msgs *out,
			size_t *junk)
{
	size_t i = 0;
	while (i < len) {
		unsigned char *sb = memchr(data + i, 0x0B, len - i);
		if (!sb) {
			*junk += len - i;
			break;
		}
		size_t start = (size_t)(sb - data) + 1;
		*junk += start - 1 - i;
		size_t j = start;
		size_t end = len; /* unterminated: the rest */
		size_t next = len;
		while (j + 1 < len) {
			unsigned char *eb = memchr(data + j, 0x1C, len - j - 1);
			if (!eb)
				break;
			size_t k = (size_t)(eb - data);
			if (data[k + 1] == 0x0D) {
				end = k;
				next = k + 2;
				break;
			}
			j = k + 1;
		}
		if (msgs_push(out, data + start, end - start, false) != 0)
			return -ENOMEM;
		i = next;
	}
	return 0;
}

static bool seg_is(const unsigned char *s, size_t len, const char *id)
{
	return len >= 3 && memcmp(s, id, 3) == 0;
}

int tool_split(unsigned char *data, size_t len, bool keep_bytes,
	       struct tool_msgs *out, size_t *junk)
{
	size_t junk0 = 0;
	if (!junk)
		junk = &junk0;
	if (memchr(data, 0x0B, len))
		return split_frames(data, len, out, junk);

	/* Pass 1: normalise segment ends in place (w <= r always), and find
	 * whether the text is a batch. */
	bool batch = false;
	size_t w = 0, r = 0;
	while (r < len) {
		size_t s = r;
		while (r < len && data[r] != '\r' && data[r] != '\n')
			r++;
		size_t seglen = r - s;
		size_t termlen = 0;
		if (r < len) {
			termlen = 1;
			if (data[r] == '\r' && r + 1 < len &&
			    data[r + 1] == '\n')
				termlen = 2;
		}
		if (seg_is(data + s, seglen, "FHS") ||
		    seg_is(data + s, seglen, "BHS"))
			batch = true;
		if (keep_bytes) {
			r += termlen;
			continue;
		}
		if (seglen > 0) {
			memmove(data + w, data + s, seglen);
			w += seglen;
			data[w++] = '\r';
		}
		r += termlen;
	}
	if (!keep_bytes)
		len = w;
	if (len == 0)
		return 0;
	if (batch)
		return msgs_push(out, data, len, true);

	/* Pass 2: cut at each segment that starts with MSH. */
	size_t msg_start = 0;
	bool have = false;
	size_t i = 0;
	while (i < len) {
		size_t s = i;
		while (i < len && data[i] != '\r' && data[i] != '\n')
			i++;
		if (seg_is(data + s, i - s, "MSH")) {
			if (have && msgs_push(out, data + msg_start,
					      s - msg_start, false) != 0)
				return -ENOMEM;
			if (!have && s > 0)
				s = 0; /* leading bytes stay with message 1 */
			msg_start = s;
			have = true;
		}
		while (i < len && (data[i] == '\r' || data[i] == '\n'))
			i++;
	}
	return msgs_push(out, data + msg_start, len - msg_start, false);
}

void tool_json_str(FILE *f, const void *s, size_t len)
{
	const unsigned char *p = s;
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
		} else if (c == '\n') {
			fputs("\\n", f);
		} else if (c == '\r') {
			fputs("\\r", f);
		} else if (c == '\t') {
			fputs("\\t", f);
		} else if (c < 0x20 || c == 0x7F) {
			fprintf(f, "\\u%04x", c);
		} else if (c < 0x80) {
			putc(c, f);
		} else {
			/* Valid UTF-8 sequences pass; other bytes are read as
			 * ISO-8859-1. */
			size_t n = c >= 0xF0 && c < 0xF5   ? 4
				   : c >= 0xE0		   ? 3
				   : c >= 0xC2 && c < 0xE0 ? 2
							   : 0;
			bool ok = n > 0 && i + n <= len;
			for (size_t k = 1; ok && k < n; k++)
				ok = (p[i + k] & 0xC0) == 0x80;
			if (ok) {
				fwrite(p + i, 1, n, f);
				i += n - 1;
			} else {
				fprintf(f, "\\u%04x", c);
			}
		}
	}
	putc('"', f);
}

uint64_t tool_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t hist_index(uint64_t v)
{
	if (v < 2 * TOOL_HIST_SUB)
		return (size_t)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - 6; /* v >> shift in [64, 128) */
	return (size_t)shift * TOOL_HIST_SUB + (size_t)(v >> shift);
}

static uint64_t hist_upper(size_t idx)
{
	if (idx < 2 * TOOL_HIST_SUB)
		return idx;
	size_t shift = idx / TOOL_HIST_SUB - 1;
	uint64_t m = idx - shift * TOOL_HIST_SUB;
	return ((m + 1) << shift) - 1;
}

uint64_t tool_hist_bucket_upper(size_t idx)
{
	return hist_upper(idx);
}

void tool_hist_record(struct tool_hist *h, uint64_t v)
{
	atomic_fetch_add_explicit(&h->b[hist_index(v)], 1,
				  memory_order_relaxed);
	uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);
	while (v > m &&
	       !atomic_compare_exchange_weak_explicit(
		   &h->max, &m, v, memory_order_relaxed, memory_order_relaxed))
		;
}

void tool_hist_snapshot(const struct tool_hist *h, struct tool_hist_snap *out)
{
	uint64_t count = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS; i++) {
		out->b[i] =
		    atomic_load_explicit(&h->b[i], memory_order_relaxed);
		count += out->b[i];
	}
	out->count = count;
	out->max = atomic_load_explicit(&h->max, memory_order_relaxed);
}

void tool_hist_diff(const struct tool_hist_snap *a,
		    const struct tool_hist_snap *b, struct tool_hist_snap *out)
{
	uint64_t count = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS; i++) {
		out->b[i] = a->b[i] - b->b[i];
		count += out->b[i];
	}
	out->count = count;
	out->max = a->max;
}

uint64_t tool_hist_quantile(const struct tool_hist_snap *s, double q)
{
	if (s->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)s->count + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > s->count)
		rank = s->count;
	uint64_t seen = 0;
	for (size_t i = 0; i < TOOL_HIST_BUCKETS; i++) {
		seen += s->b[i];
		if (seen >= rank) {
			uint64_t v = hist_upper(i);
			return v < s->max ? v : s->max;
		}
	}
	return s->max;
}

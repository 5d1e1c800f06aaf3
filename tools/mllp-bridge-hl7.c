/* mllp-bridge: HL7 field references, subject templates, SHA-256 digests
 * (de-duplication ids, ordering keys, partitions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mllp-bridge.h"

int bridge_field_parse(const char *spec, struct bridge_field *f)
{
	memset(f, 0, sizeof(*f));
	if (strlen(spec) < 5 || spec[3] != '-')
		return -1;
	for (int i = 0; i < 3; i++) {
		char c = spec[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return -1;
		f->seg[i] = c;
	}
	unsigned v[3] = {0, 0, 0};
	const char *p = spec + 4;
	for (int i = 0; i < 3; i++) {
		if (*p < '0' || *p > '9')
			return -1;
		char *end;
		unsigned long n = strtoul(p, &end, 10);
		if (n == 0 || n > 1000)
			return -1;
		v[i] = (unsigned)n;
		p = end;
		if (*p == 0)
			break;
		if (*p != '.' || i == 2)
			return -1;
		p++;
	}
	f->field = v[0];
	f->comp = v[1];
	f->sub = v[2];
	snprintf(f->path, sizeof(f->path), "%.3s-%u", f->seg, v[0]);
	for (int i = 1; i < 3 && v[i]; i++)
		snprintf(f->path + strlen(f->path),
			 sizeof(f->path) - strlen(f->path), ".%u", v[i]);
	return 0;
}

struct mllp_str bridge_field_get(const struct mllp_hl7_msg *m,
				 const struct bridge_field *f)
{
	struct mllp_str v = {NULL, 0};
	if (mllp_hl7_value(m, f->path, &v) != 0)
		v.len = 0;
	return v;
}

int bridge_template_parse(const char *text, struct bridge_template *t,
			  char *why, size_t cap)
{
	memset(t, 0, sizeof(*t));
	t->text = text;
	if (!*text) {
		snprintf(why, cap, "empty subject template");
		return -1;
	}
	for (const char *p = text; *p;) {
		if (*p == '}') {
			snprintf(why, cap, "'}' without '{' at offset %zu",
				 (size_t)(p - text));
			return -1;
		}
		if (*p != '{') {
			p++;
			continue;
		}
		const char *end = strchr(p, '}');
		if (!end) {
			snprintf(why, cap, "'{' without '}' at offset %zu",
				 (size_t)(p - text));
			return -1;
		}
		if (t->n == BRIDGE_TEMPLATE_MAX) {
			snprintf(why, cap, "more than %d placeholders",
				 BRIDGE_TEMPLATE_MAX);
			return -1;
		}
		char spec[32];
		size_t len = (size_t)(end - p - 1);
		if (len >= sizeof(spec))
			len = sizeof(spec) - 1;
		memcpy(spec, p + 1, len);
		spec[len] = 0;
		t->ph[t->n].start = (size_t)(p - text);
		t->ph[t->n].end = (size_t)(end + 1 - text);
		if (strcmp(spec, "partition") == 0) {
			t->ph[t->n].partition = true;
		} else if (bridge_field_parse(spec, &t->ph[t->n].f) != 0) {
			snprintf(why, cap,
				 "'{%s}' is neither a field (e.g. {MSH-9.1}, "
				 "{PID-3.1}) nor {partition}",
				 spec);
			return -1;
		}
		t->n++;
		p = end + 1;
	}
	return 0;
}

/* Append v escaped for a subject token; false when it does not fit. */
static bool put_token(struct mllp_str v, char *out, size_t cap, size_t *at)
{
	static const char hex[] = "0123456789ABCDEF";
	if (v.len == 0) {
		if (*at + 1 >= cap)
			return false;
		out[(*at)++] = '_';
		return true;
	}
	for (size_t i = 0; i < v.len; i++) {
		unsigned char c = (unsigned char)v.ptr[i];
		bool plain = c > ' ' && c < 0x7f && c != '.' && c != '*' &&
			     c != '>' && c != '%';
		size_t need = plain ? 1 : 3;
		if (*at + need >= cap)
			return false;
		if (plain) {
			out[(*at)++] = (char)c;
		} else {
			out[(*at)++] = '%';
			out[(*at)++] = hex[c >> 4];
			out[(*at)++] = hex[c & 15];
		}
	}
	return true;
}

int bridge_subject(const struct bridge_template *t,
		   const struct mllp_hl7_msg *m, unsigned partition, char *out,
		   size_t cap)
{
	size_t at = 0, from = 0;
	for (size_t i = 0; i <= t->n; i++) {
		size_t lit_end = i < t->n ? t->ph[i].start : strlen(t->text);
		size_t n = lit_end - from;
		if (at + n >= cap)
			return -1;
		memcpy(out + at, t->text + from, n);
		at += n;
		if (i == t->n)
			break;
		from = t->ph[i].end;
		if (t->ph[i].partition) {
			int w = snprintf(out + at, cap - at, "%u", partition);
			if (w < 0 || (size_t)w >= cap - at)
				return -1;
			at += (size_t)w;
		} else if (!put_token(bridge_field_get(m, &t->ph[i].f), out,
				      cap, &at)) {
			return -1;
		}
	}
	out[at] = 0;
	return (int)at;
}

/* ---- SHA-256 (FIPS 180-4) ----------------------------------------------- */

struct sha256 {
	uint32_t h[8];
	unsigned char buf[64];
	size_t used;
	uint64_t total;
};

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

#define SHA_S0(x) (ror(x, 2) ^ ror(x, 13) ^ ror(x, 22))
#define SHA_S1(x) (ror(x, 6) ^ ror(x, 11) ^ ror(x, 25))

static void sha_block(struct sha256 *s, const unsigned char *p)
{
	uint32_t w[64];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 =
		    ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 =
		    ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
	uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
	for (int i = 0; i < 64; i++) {
		uint32_t t1 =
		    h + SHA_S1(e) + ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
		uint32_t t2 = SHA_S0(a) + ((a & b) ^ (a & c) ^ (b & c));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
	s->h[5] += f;
	s->h[6] += g;
	s->h[7] += h;
}

static void sha_init(struct sha256 *s)
{
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
				       0xa54ff53a, 0x510e527f, 0x9b05688c,
				       0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, h0, sizeof(h0));
	s->used = 0;
	s->total = 0;
}

static void sha_update(struct sha256 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	s->total += len;
	if (s->used) {
		size_t n = 64 - s->used < len ? 64 - s->used : len;
		memcpy(s->buf + s->used, p, n);
		s->used += n;
		p += n;
		len -= n;
		if (s->used < 64)
			return;
		sha_block(s, s->buf);
		s->used = 0;
	}
	for (; len >= 64; p += 64, len -= 64)
		sha_block(s, p);
	memcpy(s->buf, p, len);
	s->used = len;
}

static void sha_hex(struct sha256 *s, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t bits = s->total * 8;
	/* 0x80, zeros up to 56 bytes into a block, the length in bits */
	s->buf[s->used++] = 0x80;
	if (s->used > 56) {
		memset(s->buf + s->used, 0, 64 - s->used);
		sha_block(s, s->buf);
		s->used = 0;
	}
	memset(s->buf + s->used, 0, 56 - s->used);
	for (int i = 0; i < 8; i++)
		s->buf[56 + i] = (unsigned char)(bits >> (56 - 8 * i));
	sha_block(s, s->buf);
	for (int i = 0; i < 32; i++) {
		unsigned char b =
		    (unsigned char)(s->h[i / 4] >> (24 - 8 * (i % 4)));
		out[2 * i] = hex[b >> 4];
		out[2 * i + 1] = hex[b & 15];
	}
	out[64] = 0;
}

void bridge_sha256_hex(const void *data, size_t len, char out[65])
{
	struct sha256 s;
	sha_init(&s);
	sha_update(&s, data, len);
	sha_hex(&s, out);
}

/* One part of a digest: its length in decimal, ':', its bytes. */
static void sha_part(struct sha256 *s, struct mllp_str v)
{
	char n[24];
	size_t at = sizeof(n);
	n[--at] = ':';
	size_t len = v.len;
	do
		n[--at] = (char)('0' + len % 10);
	while ((len /= 10) != 0);
	sha_update(s, n + at, sizeof(n) - at);
	if (v.len)
		sha_update(s, v.ptr, v.len);
}

void bridge_msg_id(const struct mllp_hl7_msg *m, char out[33])
{
	struct sha256 s;
	char full[65];
	sha_init(&s);
	sha_part(&s, m->sending_app);
	sha_part(&s, m->sending_facility);
	sha_part(&s, m->control_id);
	sha_hex(&s, full);
	memcpy(out, full, 32);
	out[32] = 0;
}

void bridge_key_digest(struct mllp_str key, char out[33])
{
	char full[65];
	bridge_sha256_hex(key.len ? key.ptr : "", key.len, full);
	memcpy(out, full, 32);
	out[32] = 0;
}

unsigned bridge_partition(const char digest[33], unsigned partitions)
{
	char head[9];
	memcpy(head, digest, 8);
	head[8] = 0;
	return partitions ? (unsigned)(strtoul(head, NULL, 16) % partitions)
			  : 0;
}

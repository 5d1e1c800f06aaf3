/* The receiver's built-in dispatchers `echo` and `ack` (see
 * include/mllp/receiver.h): stateless or caller-owned state, no I/O. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/hl7.h>

#include <mllp/receiver.h>

#include "receiver_internal.h"

_Static_assert(MLLP_ACK_CR + 1 == MLLP_ACK_CODE_COUNT,
	       "MLLP_ACK_CODE_COUNT counts enum mllp_ack_code_index");

#define ECHO_TEXT "A real MLLP message dispatcher was not provided"

static const char *const ack_codes[MLLP_ACK_CODE_COUNT] = {"AA", "AE", "AR",
							   "CA", "CE", "CR"};

const char *mllpi_enhanced_code(const struct mllp_hl7_msg *h, const char *code)
{
	if (!mllp_hl7_is_enhanced_mode(h))
		return code; /* original mode: as asked */
	static const char *const accept[3] = {"CA", "CE", "CR"};
	int i = code[1] == 'A' ? 0 : code[1] == 'E' ? 1 : 2;
	struct mllp_str t = h->accept_ack_type;
	if (mllp_str_eq(t, "NE") || (mllp_str_eq(t, "ER") && i == 0) ||
	    (mllp_str_eq(t, "SU") && i != 0))
		return NULL;
	return accept[i];
}

void mllp_dispatch_echo(void *ctx, const struct mllp_message *msg,
			struct mllp_reply *reply)
{
	(void)ctx;
	if (msg->kind == MLLP_MSG_HL7) {
		struct mllp_hl7_msg h;
		const char *code = "AA";
		if (mllp_hl7_parse(&h, msg->data, msg->len) == 0)
			code = mllpi_enhanced_code(&h, code);
		reply->kind = code ? MLLP_REPLY_ACK : MLLP_REPLY_NONE;
		reply->ack_code = code;
		reply->ack_text = code ? ECHO_TEXT : NULL;
	} else {
		reply->kind = MLLP_REPLY_BYTES;
		reply->data = "mllp_unknown";
		reply->len = strlen("mllp_unknown");
	}
}

void mllp_ack_dispatcher_init(struct mllp_ack_dispatcher *d)
{
	memset(d, 0, sizeof(*d));
	d->code = "AA";
	d->seed = 1;
}

int mllp_ack_dispatcher_set_mix(struct mllp_ack_dispatcher *d, const char *spec)
{
	if (!d || !spec)
		return MLLP_ERR_INVALID_ARGUMENT;
	uint32_t mix[MLLP_ACK_CODE_COUNT] = {0};
	bool seen[MLLP_ACK_CODE_COUNT] = {false};
	uint64_t total = 0;
	const char *p = spec;
	while (*p) {
		int idx = -1;
		for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
			if (strncmp(p, ack_codes[i], 2) == 0 && p[2] == '=')
				idx = i;
		if (idx < 0 || seen[idx])
			return MLLP_ERR_INVALID_ARGUMENT;
		p += 3;
		if (*p < '0' || *p > '9')
			return MLLP_ERR_INVALID_ARGUMENT;
		char *end;
		unsigned long v = strtoul(p, &end, 10);
		if (v > 1000000000ul)
			return MLLP_ERR_INVALID_ARGUMENT;
		p = end;
		seen[idx] = true;
		mix[idx] = (uint32_t)v;
		total += v;
		if (*p == ',')
			p++;
		else if (*p)
			return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (total == 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	memcpy(d->mix, mix, sizeof(mix));
	return 0;
}

/* splitmix64: small, seedable, good enough for a load-test mix. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

void mllp_dispatch_ack(void *ctx, const struct mllp_message *msg,
		       struct mllp_reply *reply)
{
	struct mllp_ack_dispatcher *d = ctx;
	const char *code = d->code ? d->code : "AA";
	uint64_t total = 0;
	for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
		total += d->mix[i];
	if (total) {
		if (d->rng == 0)
			d->rng = d->seed ? d->seed : 1;
		uint64_t x = rng_next(&d->rng) % total;
		for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++) {
			if (x < d->mix[i]) {
				code = ack_codes[i];
				break;
			}
			x -= d->mix[i];
		}
	}
	/* mllp_ack_build() answers AR to whatever it cannot parse, also to a
	 * frame that starts with "MSH" but has no usable MSH: count what is
	 * sent. */
	int idx = MLLP_ACK_AR;
	struct mllp_hl7_msg h;
	if (msg->kind == MLLP_MSG_HL7 &&
	    mllp_hl7_parse(&h, msg->data, msg->len) == 0) {
		/* enhanced mode: the accept ACK MSH-15 asks for, if any */
		code = mllpi_enhanced_code(&h, code);
		if (!code)
			return; /* MLLP_REPLY_NONE */
		for (int i = 0; i < MLLP_ACK_CODE_COUNT; i++)
			if (strcmp(code, ack_codes[i]) == 0)
				idx = i;
	}
	d->counts[idx]++;
	reply->kind = MLLP_REPLY_ACK;
	reply->ack_code = code;
	reply->ack_text = d->text;
	reply->delay_ms = d->delay_ms;
}

/* Reconnect delay policy: exponential doubling with a cap, or fixed. */
#include <mllp/backoff.h>
#include <mllp/error.h>

#include "reserved.h"

#define INITIAL_MS 1000u

void mllp_backoff_config_init(struct mllp_backoff_config *cfg)
{
	if (!cfg)
		return;
	*cfg = (struct mllp_backoff_config){
	    .use_backoff = true,
	    .backoff_max_s = 180,
	    .auto_reconnect_interval_ms = 1000,
	    .jitter_percent = 0,
	};
}

int mllp_backoff_init(struct mllp_backoff *b,
		      const struct mllp_backoff_config *cfg)
{
	struct mllp_backoff_config def;

	if (!b)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (!cfg) {
		mllp_backoff_config_init(&def);
		cfg = &def;
	}
	if (MLLPI_CHECK_RESERVED(cfg, "mllp_backoff_config", MLLP_CTX_NONE,
				 NULL) != 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (cfg->use_backoff && cfg->backoff_max_s == 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (!cfg->use_backoff && cfg->auto_reconnect_interval_ms == 0)
		return MLLP_ERR_INVALID_ARGUMENT;
	if (cfg->jitter_percent > 100 ||
	    (cfg->jitter_percent > 0 && !cfg->random))
		return MLLP_ERR_INVALID_ARGUMENT;
	b->cfg = *cfg;
	mllp_backoff_reset(b);
	return 0;
}

static uint64_t cap_ms(const struct mllp_backoff *b)
{
	return (uint64_t)b->cfg.backoff_max_s * 1000u;
}

void mllp_backoff_reset(struct mllp_backoff *b)
{
	b->failures = 0;
	if (b->cfg.use_backoff)
		b->next_ms = INITIAL_MS < cap_ms(b) ? INITIAL_MS : cap_ms(b);
	else
		b->next_ms = b->cfg.auto_reconnect_interval_ms;
}

uint64_t mllp_backoff_peek(const struct mllp_backoff *b)
{
	return b->next_ms;
}

uint64_t mllp_backoff_fail(struct mllp_backoff *b)
{
	uint64_t delay = b->next_ms;

	if (b->failures < UINT32_MAX)
		b->failures++;
	if (b->cfg.use_backoff) {
		uint64_t next = b->next_ms * 2;
		b->next_ms = next < cap_ms(b) ? next : cap_ms(b);
	}
	if (b->cfg.jitter_percent > 0) {
		/* Subtract up to jitter_percent of the delay, uniformly. */
		uint64_t span = delay * b->cfg.jitter_percent / 100;
		if (span > 0)
			delay -= b->cfg.random(b->cfg.random_ctx) % (span + 1);
	}
	return delay;
}

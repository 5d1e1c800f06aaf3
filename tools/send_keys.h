/* mllp-send --key-field: per-key ordering of a run. The library keeps each
 * key's messages in order (ordered lanes, retried with the backoff up to
 * --retries); once a message of a key has failed for good, its lane holds
 * and the key's later messages are not sent: those already handed to the
 * pool are canceled before the lane is released, later ones are never
 * submitted. */
#ifndef MLLP_TOOLS_SEND_KEYS_H
#define MLLP_TOOLS_SEND_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include <mllp/mllp.h>

#include "common.h"

struct send_keys;

/* Usage checks of --key-field FIELD (NULL: not given), --retries (given or
 * not), and --async or --raw (either given); exits 64 naming the
 * problem. */
void send_keys_check(const char *prog, const char *field, bool retries,
		     bool async_or_raw);

/* For the n messages of msgs, keyed by field (e.g. "PID-3"). NULL: no
 * memory. */
struct send_keys *send_keys_new(const char *field,
				const struct tool_msgs *msgs);
void send_keys_free(struct send_keys *k);
/* True when message i's key has failed already: do not send it. */
bool send_keys_dead(struct send_keys *k, size_t i);
/* Message i (of the pool's endpoint ep) failed for good: its key is dead;
 * the key's messages among fut[i + 1 .. end) (submitted, not yet
 * reported) are canceled and marked in dropped[], then the lane is
 * released. */
void send_keys_failed(struct send_keys *k, struct mllp_pool *pool, uint32_t ep,
		      size_t i, struct mllp_future **fut, size_t end,
		      bool *dropped);

#endif

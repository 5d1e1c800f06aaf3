/* mllp-send --key-field: see send_keys.h. */
#include "send_keys.h"

#include <stdlib.h>
#include <string.h>

struct send_keys {
	const char *field;
	const struct tool_msgs *msgs;
	/* keys that failed: few, searched linearly */
	struct mllp_str *dead;
	size_t ndead, cap;
};

void send_keys_check(const char *prog, const char *field, bool retries,
		     bool async_or_raw)
{
	if (retries && !field)
		tool_usage(prog, "--retries needs --key-field");
	if (!field)
		return;
	if (async_or_raw)
		tool_usage(prog, "--key-field excludes --async and --raw");
	/* The path's shape, on a minimal message. */
	static const char minimal[] = "MSH|^~\\&|";
	struct mllp_hl7_msg m;
	struct mllp_str v;
	mllp_hl7_parse(&m, minimal, sizeof(minimal) - 1);
	if (mllp_hl7_value(&m, field, &v) == MLLP_ERR_INVALID_ARGUMENT)
		tool_usage(prog,
			   "--key-field wants SEG-F[.C[.S]], e.g. PID-3 or "
			   "PID-3.1, not '%s'",
			   field);
}

struct send_keys *send_keys_new(const char *field, const struct tool_msgs *msgs)
{
	struct send_keys *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->field = field;
	k->msgs = msgs;
	return k;
}

void send_keys_free(struct send_keys *k)
{
	if (!k)
		return;
	free(k->dead);
	free(k);
}

/* Message i's key (a view into the message), or an empty view. */
static struct mllp_str key_of(const struct send_keys *k, size_t i)
{
	const struct tool_msg *m = &k->msgs->v[i];
	struct mllp_hl7_msg hm;
	struct mllp_str v = {NULL, 0};
	if (m->batch || mllp_hl7_parse(&hm, m->data, m->len) != 0 ||
	    mllp_hl7_value(&hm, k->field, &v) != 0)
		v.len = 0;
	return v;
}

static bool same(struct mllp_str a, struct mllp_str b)
{
	return a.len && a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool send_keys_dead(struct send_keys *k, size_t i)
{
	if (!k->ndead)
		return false;
	struct mllp_str key = key_of(k, i);
	for (size_t d = 0; d < k->ndead; d++)
		if (same(k->dead[d], key))
			return true;
	return false;
}

void send_keys_failed(struct send_keys *k, struct mllp_pool *pool, uint32_t ep,
		      size_t i, struct mllp_future **fut, size_t end,
		      bool *dropped)
{
	struct mllp_str key = key_of(k, i);
	if (!key.len || send_keys_dead(k, i))
		return;
	if (k->ndead == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		struct mllp_str *d = realloc(k->dead, cap * sizeof(*d));
		if (!d)
			return; /* later messages of the key still fail */
		k->dead = d;
		k->cap = cap;
	}
	k->dead[k->ndead++] = key;
	/* The lane holds: its waiting messages are canceled (never sent),
	 * then it is released; the pool takes both in this order. */
	for (size_t j = i + 1; j < end; j++) {
		if (fut[j] && same(key_of(k, j), key)) {
			mllp_future_cancel(fut[j]);
			dropped[j] = true;
		}
	}
	mllp_pool_release_key(pool, ep, key.ptr, key.len, MLLP_RELEASE_SKIP,
			      NULL, NULL);
}

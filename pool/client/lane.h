/* Internal: ordered lanes (lane.c) — per key, one message at a time, in
 * submission order, over all of an endpoint's connections. Not installed.
 *
 * Shape: each endpoint has a hash table of lanes keyed by the bytes of
 * the ordering key (struct mllpi_lanes). A lane has at most one message
 * that is its "current" one: queued in the endpoint queue, on a
 * connection, or waiting for its retry; the key's later messages wait in
 * the lane's own FIFO (W_PARKED), never in the endpoint queue, so the
 * queue holds only messages that may be sent now and mllpi_q_take() need
 * not skip anything. When the current message's future completes with an
 * accept, the next waiting one goes to the endpoint queue (or straight to
 * an idle connection); when it fails, the lane retries it (MLLP_LANE_RETRY)
 * or holds until mllp_pool_release_key(). A lane with no message and not
 * held is freed (kept on a small free list for reuse).
 *
 * Cost: a keyed message costs one hash on the producer and one lookup on
 * the manager; an unkeyed message one branch (f->key_len / f->lane).
 * Manager thread only, except mllpi_key_hash and mllp_pool_release_key's
 * hand-over. */
#ifndef MLLPI_LANE_H
#define MLLPI_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timer.h"

struct mllp_future;
struct mllp_error;
struct mllp_pool;
struct mllpi_endpoint;
struct mllpi_lane;
struct mllpi_node;

/* An endpoint's lanes (manager side). */
struct mllpi_lanes {
	struct mllpi_lane **tab;  /* buckets (chained), a power of two */
	uint32_t mask;		  /* buckets - 1; tab NULL until the first */
	uint32_t count;		  /* lanes in the table */
	struct mllpi_lane *spare; /* freed lanes kept for reuse */
	uint32_t nspare;
	/* Lanes whose message waits for its retry (MLLP_LANE_RETRY), and the
	 * one timer (kind T_LANE, owner the endpoint) for the earliest. */
	struct mllpi_lane *retry;
	struct mllpi_timer timer;
};

/* FNV-1a of the key's bytes (producer thread, at send). */
static inline uint32_t mllpi_key_hash(const unsigned char *k, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

/* lane_key.c, producer thread: the ordering key of a send (key, or
 * key_field read from the parsed message msg; hl7: it parsed as HL7):
 * *key and *len (0: none; a view into opts->key or the payload).
 * 0 or an error (err set, context send). */
struct mllp_send_options;
struct mllp_hl7_msg;
int mllpi_send_key(const struct mllp_send_options *o,
		   const struct mllp_hl7_msg *msg, bool hl7,
		   const unsigned char **key, size_t *len,
		   struct mllp_error *err);
/* send.c, manager thread: a new future holding a copy of f's message
 * (framed), key, kind and reply timeout; no callback, no notify; refs 2
 * (caller + engine). NULL: no memory. */
struct mllp_future *mllpi_future_copy(const struct mllp_future *f);

/* op_send, for a keyed message f (f->key_len > 0) that may be sent:
 * true when it is its lane's turn (f->lane set; the caller goes on as for
 * any message), false when the lane took it (waiting behind the key's
 * earlier message) or failed it (too many lanes, no memory). */
bool mllpi_lane_admit(struct mllpi_endpoint *ep, struct mllp_future *f);
/* mllpi_publish of a message of a lane (f->lane set): the lane learns the
 * outcome — it keeps f for a retry (the future is not completed), or
 * completes it and then sends the key's next message or holds. */
void mllpi_lane_publish(struct mllp_future *f);
/* op_cancel of a keyed message: true when the lane handled it (a waiting
 * message failed as canceled; a message waiting for its retry failed as
 * canceled, the lane holds). The caller still drops the cancel's
 * reference. */
bool mllpi_lane_cancel(struct mllp_future *f);
/* The T_LANE timer of ep: messages whose retry is due are sent again. */
void mllpi_lane_on_timer(struct mllpi_endpoint *ep);
/* The MLLPI_OP_RELEASE node (mllp_pool_release_key). */
void mllpi_lane_op_release(struct mllp_pool *p, struct mllpi_node *n);
/* Stop, removal (mllpi_endpoint_close_all): fail every waiting message
 * with unsent (never written) and every message waiting for its retry
 * with sent, drop held lanes' copies, free every lane. Idempotent. */
void mllpi_lanes_fail_all(struct mllpi_endpoint *ep,
			  const struct mllp_error *unsent,
			  const struct mllp_error *sent);
/* mllpi_endpoint_free (any thread, the manager done with ep): free what
 * is left of the lanes' memory (nothing after mllpi_lanes_fail_all). */
void mllpi_lanes_free(struct mllp_pool *pool, struct mllpi_endpoint *ep);

#endif

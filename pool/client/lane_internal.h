/* Internal: one ordered lane and the functions lane.c and lane_release.c
 * share (see lane.h). Manager thread only. Not installed. */
#ifndef MLLPI_LANE_INTERNAL_H
#define MLLPI_LANE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <mllp/pool.h>

#include "lane.h"

struct mllpi_lane {
	struct mllpi_lane *hnext; /* bucket chain; spare list when free */
	uint32_t hash;
	uint32_t key_len;
	/* The lane's message (queued, on a connection, or waiting for its
	 * retry: retrying), or NULL. */
	struct mllp_future *cur;
	/* The key's later messages, in submission order (lnext). */
	struct mllp_future *whead, *wtail;
	uint32_t nwait;
	bool held;
	bool retrying;
	/* > 0 while the lane's future's callback runs (not freed then). */
	uint16_t pins;
	/* Held: a copy of the failed message, sent by a retry release (not a
	 * message until then), or NULL. */
	struct mllp_future *copy;
	/* On the endpoint's retry list (retrying). */
	struct mllpi_lane *rnext;
	uint64_t retry_due_us;
	unsigned char key[MLLP_KEY_MAX];
};

/* The lane of key[0..len) with that hash, or NULL. */
struct mllpi_lane *mllpi_lane_find(struct mllpi_lanes *ls, uint32_t hash,
				   const unsigned char *key, uint32_t len);
/* Send f, its lane's message now: to the endpoint queue (an idle
 * connection takes it at once), or failed as op_send fails a message
 * while every connection is down with queue_timeout 0. Its queue slot is
 * taken already. */
void mllpi_lane_submit(struct mllpi_endpoint *ep, struct mllp_future *f);
/* Nothing in flight and not held: send the next waiting message, or free
 * the lane when there is none. */
void mllpi_lane_next(struct mllpi_endpoint *ep, struct mllpi_lane *l);
/* The lane holds after f failed: counted, a copy of f kept, lane_held
 * emitted. */
void mllpi_lane_hold(struct mllpi_endpoint *ep, struct mllpi_lane *l,
		     struct mllp_future *f);
/* Re-arm the endpoint's T_LANE timer for its earliest retry (or disarm). */
void mllpi_lane_arm_timer(struct mllpi_endpoint *ep);
/* Take l off the endpoint's retry list. */
void mllpi_lane_unretry(struct mllpi_endpoint *ep, struct mllpi_lane *l);

#endif

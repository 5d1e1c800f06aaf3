/* Internal: enhanced acknowledgement mode's application stage
 * (include/mllp/enhanced.h). app_listen.c: the ack listener (a receiver
 * whose dispatcher hands frames to the pool's manager) and the public
 * calls; app_track.c: the manager side (messages waiting for an
 * application ACK, matching, timeouts). Not installed. */
#ifndef MLLPI_APP_ACK_H
#define MLLPI_APP_ACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/ack.h>
#include <mllp/future.h>
#include <mllp/hl7.h>
#include <mllp/receiver.h>

#include "mpsc.h"
#include "timer.h"

struct mllp_pool;

/* What MSH-16 asks for. */
enum mllpi_app_want { APP_AL = 1, APP_ER, APP_SU };

/* The application stage of one message, allocated with it (send.c) when
 * it asks for one and the pool listens; freed with the future. The
 * producer fills the first part; the rest is the manager's. state and
 * waiters as in struct mllp_future (0 pending, 1 complete; futex word). */
struct mllpi_app {
	_Atomic uint32_t state;
	_Atomic uint32_t waiters;
	struct mllp_future *f;
	size_t size; /* of this allocation (id and host follow it) */
	enum mllpi_app_want want;
	const char *id; /* MSH-10, a copy */
	size_t id_len;
	uint32_t hash;
	const char *host; /* the endpoint's, a copy */
	uint16_t port;
	uint32_t endpoint_id;
	/* manager side */
	bool tracked;		 /* in the table; holds a reference on f */
	bool armed;		 /* in the deadline list */
	uint64_t start_us;	 /* when the manager took the message */
	uint64_t due_us;	 /* application_ack_timeout deadline */
	struct mllpi_app *hnext; /* hash chain (oldest first) */
	struct mllpi_app *dprev, *dnext;
	struct mllp_result result;
	unsigned char *reply; /* result.reply, allocated */
	size_t reply_len;
};

/* The ack listener of a pool (pool->acks). */
struct mllpi_acks {
	struct mllp_pool *pool;
	struct mllp_receiver *rx;
	int64_t timeout_ms;
	/* Manager side: the table by control id, the armed stages in
	 * deadline order (one timeout for all: arming order is deadline
	 * order), and their timer (kind T_APP). */
	struct mllpi_app **buckets;
	size_t nbuckets, count;
	struct mllpi_app *dhead, *dtail;
	struct mllpi_timer timer;
	/* counters (relaxed: statistics) */
	_Atomic uint64_t received, matched, unmatched, not_ack, timeouts,
	    accept_acks, pending;
};

/* A frame the listener took, handed to the manager (MLLPI_OP_APP_ACK). */
struct mllpi_app_in {
	struct mllpi_node node;
	struct mllp_reply_handle *h;
	size_t size;
	char peer[MLLP_ADDRESS_MAX];
	size_t len;
	unsigned char data[];
};

/* send.c, producer: give f an application stage when msg's MSH-16 asks
 * and the pool listens. False: no memory. */
bool mllpi_app_attach(struct mllp_pool *p, struct mllp_future *f,
		      const struct mllp_hl7_msg *msg);
/* Manager: f was taken (op_send): its stage enters the table. */
void mllpi_app_track(struct mllp_future *f);
/* Manager: f's accept stage completes (mllpi_future_publish, before its
 * waiters wake): the application stage ends or its timeout starts. */
void mllpi_app_accepted(struct mllp_future *f);
/* Manager: a late accept ACK (conn_stale.c; ack its views, v its verdict,
 * data[0..len) the frame) came on a connection of endpoint ep_id for a
 * message that completed when written (MSH-15 NE / ER). Its application
 * stage, if still open, ends as the accept-stage rules say: CE / CR with
 * MLLP_ERR_NOT_ACCEPTED, an original-mode ACK (AA / AE / AR) as its
 * application ACK; a CA changes nothing. */
void mllpi_app_late(struct mllp_pool *p, uint32_t ep_id,
		    const struct mllp_ack *ack, enum mllp_verdict v,
		    const unsigned char *data, size_t len);
/* The last reference of f went (future.c). */
void mllpi_app_free(struct mllp_future *f);
/* Manager: the T_APP timer (owner: the acks); a frame from the listener
 * (MLLPI_OP_APP_ACK); the pool stops (every open stage ends). */
void mllpi_app_on_timer(struct mllpi_acks *a);
void mllpi_app_op_in(struct mllp_pool *p, struct mllpi_node *n);
void mllpi_app_stop_all(struct mllp_pool *p);
/* mllp_pool_stop (not the manager): stop the listener first.
 * mllp_pool_destroy: free it. */
void mllpi_acks_stop(struct mllp_pool *p);
void mllpi_acks_free(struct mllp_pool *p);

#endif

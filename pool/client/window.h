/* Internal: pipelining. A connection of an endpoint whose max_inflight is
 * not 1 carries a window of messages (c->win; c->cur stays NULL): up to
 * `max` of them written without waiting for their replies, each reply
 * matched to its message by MSA-2 = MSH-10 (conn_window_reply.c). Not
 * installed.
 *
 * The window is a list in wire order (the futures' qprev/qnext, free once
 * a message has left the endpoint queue). Messages come in through
 * mllpi_q_take (or op_send's fast path) only. A message that may not join
 * yet (its control id is in flight, or a raw payload without
 * replies_in_order while others are in flight, or others while it is) is
 * `held`: the window stops taking until it can join, so the order on the
 * wire stays the order messages were taken.
 *
 * Sending: frames that join during a manager turn are written at the end
 * of the turn (mllpi_win_flush), all of those not yet written in one
 * sendmsg (or one TLS write); one send is outstanding at a time, and what
 * joined meanwhile goes with the next. `wnext`/`woff` say how far the
 * wire has got: a completed send of n bytes walks them forward, and every
 * message it writes through starts its reply deadline.
 *
 * Timers: the connection's one timer is armed at or before the earliest
 * deadline (the send in flight, or a written message's reply); when it
 * fires the window is scanned (mllpi_win_on_timer). */
#ifndef MLLPI_WINDOW_H
#define MLLPI_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "pool_internal.h"

/* f->w_state */
enum mllpi_wstate {
	W_UNSENT = 0, /* not handed to the kernel yet */
	W_SENDING,    /* (part of it) in a send */
	W_WRITTEN,    /* every byte written: its reply is awaited */
};

/* ep->probe (max_inflight MLLP_INFLIGHT_AUTO) */
enum mllpi_probe {
	PROBE_NONE = 0, /* not an auto endpoint */
	PROBE_WAIT,	/* no connection probing yet */
	PROBE_RUNNING,	/* one connection probes, the others carry one */
	PROBE_PASSED,	/* pipelining: MLLP_INFLIGHT_AUTO_WINDOW */
	PROBE_FAILED,	/* one in flight for good */
};

struct mllpi_window {
	uint32_t max; /* the window now (1 while an auto endpoint waits) */
	uint32_t n;   /* messages in the window */
	struct mllp_future *head, *tail;
	struct mllp_future *wnext; /* first message not wholly written */
	size_t woff;		   /* its bytes written */
	struct mllp_future *held;  /* taken, waiting to join */
	/* a raw payload without replies_in_order is in the window */
	bool alone;
	bool probing; /* this connection runs the endpoint's probe */
	uint32_t probe_ok;
	uint64_t send_due_us; /* send timeout of the send in flight, 0: none */
	bool in_flush;
	struct mllpi_conn *flush_next;
	struct msghdr msg;
	int iov_cap;
	struct iovec iov[];
};

/* Validate max_inflight (and its combination with other options) of an
 * endpoint being added: 0 or MLLP_ERR_INVALID_ARGUMENT with err set. */
int mllpi_win_check_options(const struct mllp_conn_options *o,
			    struct mllp_error *err);
/* Give every connection of ep its window when max_inflight is not 1: 0 or
 * MLLP_ERR_NO_MEMORY. _free: at the endpoint's end. */
int mllpi_win_alloc(struct mllpi_endpoint *ep);
void mllpi_win_free(struct mllpi_endpoint *ep);

/* conn_window.c, manager thread. */

/* The connection (up) takes messages until its window is full. */
void mllpi_win_fill(struct mllpi_conn *c);
/* f, taken for c (op_send's fast path or mllpi_q_take), joins the window
 * or is held. */
void mllpi_win_take(struct mllpi_conn *c, struct mllp_future *f);
/* Submit the sends of the windows that have frames to write (end of the
 * manager's turn). */
void mllpi_win_flush(struct mllp_pool *p);
/* A send of the window completed: res bytes written, or -errno. */
void mllpi_win_on_sent(struct mllpi_conn *c, int res);
/* The connection's timer fired (send or reply deadline). */
void mllpi_win_on_timer(struct mllpi_conn *c);
/* The connection closes: every message in the window (and the held one)
 * fails, with `sent` when it may have reached the receiver, else with
 * `unsent` (context ctx). */
void mllpi_win_fail_all(struct mllpi_conn *c, const struct mllp_error *sent,
			const struct mllp_error *unsent, enum mllp_context ctx);
/* A message of the window has its outcome (reply taken or failed): it
 * leaves the window, the held message may join, the window refills. */
void mllpi_win_done(struct mllpi_conn *c, struct mllp_future *f);
/* Whether f (in flight) is written, partly or wholly; for a cancel. */
bool mllpi_win_find(struct mllpi_endpoint *ep, const struct mllp_future *f,
		    struct mllpi_conn **out);
/* Forget the connections of ep in the pool's flush list (removal). */
void mllpi_win_unflush(struct mllpi_endpoint *ep);

/* conn_window_reply.c */

/* Plaintext received on a window connection. */
void mllpi_win_on_recv(struct mllpi_conn *c, const unsigned char *data,
		       size_t len);
/* The reply of f was kept before f was written: take it now. */
void mllpi_win_take_early(struct mllpi_conn *c, struct mllp_future *f);
/* Probe bookkeeping: f (a probe message) got a matched, well-formed
 * reply (ok) or ended otherwise with reason `why`. */
void mllpi_win_probe_result(struct mllpi_conn *c, struct mllp_future *f,
			    bool ok, const char *why);
/* The window the connection may fill now (auto endpoints: the probe). */
uint32_t mllpi_win_limit(struct mllpi_conn *c);
/* An auto endpoint waiting for its probe: c (up) runs it. */
void mllpi_win_probe_start(struct mllpi_conn *c);
/* A message joined c's window (the tail): one of the probe's two? */
void mllpi_win_probe_joined(struct mllpi_conn *c);

#endif

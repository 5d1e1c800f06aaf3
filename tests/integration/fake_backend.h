/* A fake I/O backend for the pool engine: scripted completions and a
 * virtual clock, no network I/O and no sleeping (the pool still opens its
 * sockets and sets their options; they are never connected).
 *
 * Time: fb_init() installs a virtual monotonic clock (mllpi_clock_override)
 * that starts at FB_T0_US and moves only inside the fake's wait(): when no
 * completion is ready, the clock jumps to whichever comes first, the
 * manager's timeout or the next scripted completion, provided that is not
 * later than the limit the test set (fb_run_until); otherwise wait() blocks
 * until the test injects something, moves the limit, or a producer wakes
 * it. So the manager runs exactly the events due up to the limit, and the
 * test reads a quiescent state afterwards.
 *
 * Script: each operation takes the next mode queued with fb_next() (else
 * its default, fb_default()): connects succeed, are refused or never
 * complete; sends write all, write half then the rest, fail or never
 * complete; a completely written frame is answered (fb_reply_delay_ms later)
 * with its ACK (MSA-2 = the MSH-10 written), an ACK with a wrong control
 * id, junk, an EOF, a reset or nothing; fb_peer() makes the peer do one
 * of those unasked. cancel_fd() completes every outstanding operation of
 * the socket with -ECANCELED (completions already due are kept).
 *
 * Trace: everything the pool did, one line each, "<ms> <what>", with the
 * virtual time in ms since FB_T0_US (".uuu" added when not a whole ms),
 * sockets named s1, s2, ... in the order of their connects:
 *   "0 connect s1", "0 send s1 120", "0 recv s1", "0 cancel s1",
 *   "0 done s1 connect 0", "2000 done s1 connect ECANCELED",
 *   "0 done s1 send 120", "0 done s1 recv 97", "0 done s1 recv EOF",
 *   "2000 event connection_failure conn0 ETIMEDOUT delay 1000",
 *   "2000 log Error connecting to 127.0.0.1:2575 => timed out".
 * fb_trace() returns the lines of the chosen kinds.
 *
 * Threading: the fake's ops run on the manager thread (wake on any); the
 * fb_* functions on the test's thread. One fake at a time (global). */
#ifndef FB_FAKE_BACKEND_H
#define FB_FAKE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include <mllp/pool.h>

#include "backend.h"

#define FB_T0_US 1000000000000ull /* virtual start: 1e6 s */

enum fb_op { FB_CONNECT = 0, FB_SEND, FB_REPLY, FB_OPS_ };

enum fb_mode {
	/* FB_CONNECT */
	FB_CONNECT_OK = 0,
	FB_CONNECT_REFUSE, /* -ECONNREFUSED */
	FB_CONNECT_HANG,   /* until canceled */
	/* FB_SEND */
	FB_SEND_ALL,
	FB_SEND_SHORT, /* half the frame, then the rest on the next call */
	FB_SEND_FAIL,  /* -EPIPE */
	FB_SEND_HANG,  /* until canceled */
	/* FB_REPLY: what a completely written frame gets */
	FB_REPLY_ACK,	   /* AA, MSA-2 = MSH-10 of the frame */
	FB_REPLY_WRONG_ID, /* AA, MSA-2 "WRONG" */
	FB_REPLY_JUNK,	   /* bytes without a start block */
	FB_REPLY_EOF,	   /* recv completes with 0 */
	FB_REPLY_RESET,	   /* recv completes with -ECONNRESET */
	FB_REPLY_NONE,
};

/* Trace line kinds for fb_trace(). */
#define FB_T_OPS   1u /* connect, send, recv, cancel submitted */
#define FB_T_DONE  2u /* completions handed to the pool */
#define FB_T_EVENT 4u /* telemetry */
#define FB_T_LOG   8u /* log lines */
#define FB_T_ALL   15u

extern const struct mllpi_backend_ops fb_ops;

/* Reset the fake and install the virtual clock (now FB_T0_US, limit
 * there too); defaults: connect ok, send all, reply ack, no delay. Call
 * before creating the pool. */
void fb_init(void);
/* Remove the virtual clock; checks nothing is outstanding. After the
 * pool is destroyed. */
void fb_fini(void);
/* The pool config the tests start from: telemetry and log into the
 * trace, small ring; conn options at their documented defaults. */
void fb_config(struct mllp_pool_config *cfg);

void fb_default(enum fb_op op, enum fb_mode m);
void fb_next(enum fb_op op, enum fb_mode m); /* queued, used once */
void fb_reply_delay_ms(uint64_t ms);
/* The peer of socket sN (1, 2, ... as in the trace) does what reply mode m
 * says now, unasked (FB_REPLY_EOF, _RESET, _JUNK, _ACK of id ""). */
void fb_peer(int sock, enum fb_mode m);
/* The peer of the newest socket answers now as reply mode m says, with
 * id as the MSA-2 of FB_REPLY_ACK (pipelining: any id, any order); false,
 * and nothing sent, when that socket has no receive armed (closed). */
bool fb_peer_last(enum fb_mode m, const char *id);

/* Let virtual time run up to ms (since FB_T0_US) and return once the
 * manager has handled everything due by then and sleeps; the clock then
 * reads ms. fb_settle(): the same without moving the clock. */
void fb_run_until(uint64_t ms);
void fb_settle(void);
/* Virtual time now, ms since FB_T0_US. */
uint64_t fb_now_ms(void);

/* The trace lines of the kinds in mask, each ending in '\n'; a static
 * buffer, valid until the next call. fb_trace_clear() forgets them. */
const char *fb_trace(unsigned mask);
void fb_trace_clear(void);
/* Anything the pool did wrong with the seam (an operation on a socket
 * whose connect was not complete, a second recv, a socket closed with
 * operations outstanding...): "" when none. */
const char *fb_violations(void);

#endif

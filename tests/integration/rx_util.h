/* What the receiver suites on the deferred-reply path share
 * (test_receiver_async.c, test_receiver_drain.c, test_receiver_engine.c):
 * an allocator that counts what is live, receiver start and stats, the
 * CTRL<n> frames and their ACKs, and a port that refuses new clients.
 * Setup failures fail the test (cmocka asserts); never call these from
 * the receiver's thread unless said so. */
#ifndef TI_RX_UTIL_H
#define TI_RX_UTIL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/mllp.h>

/* ---- an allocator that counts what is live ------------------------------ */

struct rx_counted {
	_Atomic long long bytes;
	_Atomic long long blocks;
	struct mllp_allocator a; /* counts into this struct */
};

/* Point k->a at the counting functions (k is their context); leaves the
 * counts as they are (zero them first for a fresh count). */
void rx_counted_init(struct rx_counted *k);

/* ---- the receiver ---------------------------------------------------------
 */

/* Create and start the receiver of c in *rv. False when io_uring is
 * unavailable (said on stderr: the caller skips); any other error fails
 * the test. */
bool rx_start(const struct mllp_receiver_config *c, struct mllp_receiver **rv);

/* The receiver's stats now. */
struct mllp_receiver_stats rx_stats(struct mllp_receiver *rv);

/* ---- CTRL<n> messages and their ACKs ---------------------------------- */

/* n of the message's control id CTRL<n>, or -1. Safe on any thread. */
int rx_ctrl_of(const struct mllp_message *msg);

/* The reply of frame n: an ACK naming CTRL<n> in MSA-2, at out (cap
 * bytes); its length as snprintf. Safe on any thread. */
int rx_ack_text(char *out, size_t cap, int n);

/* Complete h with the reply of frame n; mllp_receiver_reply's result.
 * Safe on any thread. */
int rx_reply_n(struct mllp_reply_handle *h, int n);

/* Frame i: SB, tr_hl7(i) (control id CTRL<i>), EB CR, at out (cap bytes,
 * which must hold it); its length. */
size_t rx_frame(char *out, size_t cap, int i);

/* ---- the listening port ------------------------------------------------- */

/* True when a connect to 127.0.0.1:port is refused before deadline_ms
 * have passed (a connect that is taken in is closed and tried again
 * after a millisecond). */
bool rx_port_refuses(uint16_t port, int deadline_ms);

#endif

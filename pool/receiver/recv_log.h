/* Internal: the receiver's log, rate-limited and never blocking.
 *
 * Every line of a receiver passes one global token bucket
 * (MLLP_RECEIVER_LOG_BURST lines, refilled at MLLP_RECEIVER_LOG_RATE per
 * second); a line over it is counted, not written. Junk (bytes outside frames)
 * is limited per connection as well: MLLP_RECEIVER_LOG_CONN_BURST lines per
 * MLLP_RECEIVER_LOG_WINDOW_MS window, then one summary line per window with the
 * count of chunks and bytes not logged, and a last one when the
 * connection closes.
 *
 * The default sink (no log hook) is stderr written without blocking: a
 * pipe or a terminal through a descriptor of its own opened O_NONBLOCK, a
 * socket with MSG_DONTWAIT. A line that would block is dropped and
 * counted. The next line that gets through says how many lines before it
 * were not written (rate limit and full sink together).
 *
 * Threading: the caller's thread during start, then the manager thread
 * only; the totals are atomics, readable from any thread. */
#ifndef MLLPI_RECV_LOG_H
#define MLLPI_RECV_LOG_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <mllp/receiver.h>

struct mllpi_rlog {
	mllp_log_fn fn; /* NULL: the stderr sink below */
	void *ctx;
	enum mllp_log_level level;
	int fd;		    /* stderr sink; -1 before init */
	bool own_fd;	    /* fd is ours (closed by mllpi_rlog_close) */
	bool sock;	    /* fd is a socket: send(MSG_DONTWAIT) */
	uint64_t tokens_us; /* bucket, in microseconds of refill */
	uint64_t last_us;   /* last refill */
	uint64_t unsent;    /* lines not written since the last line out */
	_Atomic uint64_t suppressed; /* total, over the rate limit */
	_Atomic uint64_t dropped;    /* total, the sink would have blocked */
};

/* Per connection junk state; zero-initialised. */
struct mllpi_rlog_conn {
	uint64_t win_start_us;
	uint32_t lines;	 /* junk lines logged in this window */
	uint64_t chunks; /* junk chunks not logged in this window */
	uint64_t bytes;
};

/* Set up from the receiver's log fields (takes no allocation). */
void mllpi_rlog_init(struct mllpi_rlog *lg,
		     const struct mllp_receiver_config *cfg);

/* Close the sink's own descriptor, if any. */
void mllpi_rlog_close(struct mllpi_rlog *lg);

/* One line (printf format), if lvl passes log_level and the bucket. */
void mllpi_rlog_vline(struct mllpi_rlog *lg, enum mllp_log_level lvl,
		      const char *fmt, va_list ap);

/* The same with its arguments inline. */
void mllpi_rlog_line(struct mllpi_rlog *lg, enum mllp_log_level lvl,
		     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A chunk of junk of n bytes from peer:port at now_us: logged, counted
 * for a summary, or summarised with what came before. */
void mllpi_rlog_junk(struct mllpi_rlog *lg, struct mllpi_rlog_conn *lc,
		     const char *peer, unsigned port, uint64_t n,
		     uint64_t now_us);

/* The connection closes: summarise what its window did not log. */
void mllpi_rlog_conn_end(struct mllpi_rlog *lg, struct mllpi_rlog_conn *lc,
			 const char *peer, unsigned port, uint64_t now_us);

#endif

/* libmllp: the counters of a pool and of a receiver as Prometheus text
 * (exposition format version 0.0.4), rendered into caller buffers.
 *
 * The library renders text only: it serves no HTTP (mllp-recv --metrics
 * does, with libmicrohttpd). Every family has its HELP and TYPE lines;
 * names follow the Prometheus conventions (counters end in _total, units
 * in the name: _seconds, _bytes). The families of a pool and those of a
 * receiver never share a name, so one process may render both under the
 * same prefix into one page.
 *
 * Rendering works like snprintf: each call returns the length of the
 * complete text (without the NUL), whatever cap is. When it fits (return
 * < cap) buf holds the text and a NUL; when it does not (return >= cap),
 * buf holds the empty string (never a partial exposition) and nothing is
 * written at or beyond buf[cap]. cap 0 (buf may then be NULL) only
 * measures. To render a live pool or receiver, grow the buffer to more
 * than the returned length and call again: a counter may gain a digit
 * between two calls, so leave some room (mllp-recv adds a quarter). Calls can
 * be chained into one page: render at buf + used with cap - used.
 * Negative returns are errors (MLLP_ERR_*; MLLP_ERR_BUFFER_TOO_SMALL when
 * the text would exceed INT_MAX bytes); buf is then the empty string when
 * cap > 0. Ownership: buf and everything passed in stay the caller's;
 * nothing is kept after a call returns.
 *
 * Names of the families (PREFIX is "mllp" by default):
 *
 *   pool: PREFIX_pool_info{backend}, PREFIX_messages_sent_total,
 *   PREFIX_acks_total{verdict}, PREFIX_raw_replies_total,
 *   PREFIX_messages_failed_total, PREFIX_send_failures_total{reason},
 *   PREFIX_connects_total, PREFIX_reconnects_total,
 *   PREFIX_connect_failures_total, PREFIX_tls_handshakes_total,
 *   PREFIX_tls_sessions_resumed_total, PREFIX_inflight, PREFIX_queued,
 *   PREFIX_reply_latency_seconds (histogram), and per endpoint, labelled
 *   endpoint="host:port" (IPv6 in brackets) and endpoint_id:
 *   PREFIX_endpoint_connections, PREFIX_endpoint_connected,
 *   PREFIX_endpoint_inflight, PREFIX_endpoint_queued,
 *   PREFIX_endpoint_messages_sent_total, PREFIX_endpoint_acks_total{verdict},
 *   PREFIX_endpoint_raw_replies_total, PREFIX_endpoint_messages_failed_total,
 *   PREFIX_endpoint_send_failures_total{reason},
 *   PREFIX_endpoint_connects_total, PREFIX_endpoint_reconnects_total,
 *   PREFIX_endpoint_connect_failures_total,
 *   PREFIX_endpoint_tls_handshakes_total,
 *   PREFIX_endpoint_tls_sessions_resumed_total. A family without samples
 *   (no endpoint, no failure) is left out.
 *
 *   receiver: PREFIX_receiver_info{backend},
 *   PREFIX_connections_accepted_total, PREFIX_connections_open,
 *   PREFIX_connections_refused_total{reason} (allow_list, max_connections,
 *   tls_client_cert), PREFIX_connections_closed_total{reason}
 *   (idle_timeout, error), PREFIX_connections_shed_total,
 *   PREFIX_messages_received_total, PREFIX_messages_hl7_received_total,
 *   PREFIX_replies_sent_total, PREFIX_received_bytes_total,
 *   PREFIX_sent_bytes_total, PREFIX_junk_bytes_total,
 *   PREFIX_frames_rejected_total{reason} (too_big), PREFIX_buffered_bytes,
 *   PREFIX_buffered_bytes_peak, PREFIX_reads_paused_total,
 *   PREFIX_log_lines_dropped_total{reason} (rate_limit, would_block),
 *   PREFIX_receiver_tls_handshakes_total,
 *   PREFIX_receiver_tls_handshakes_resumed_total,
 *   PREFIX_receiver_tls_handshake_failures_total (zero without TLS); every
 *   label value above is always present, zero included;
 *   and from an ACK count snapshot: PREFIX_acks_sent_total{code}.
 *
 * Reason labels of send failures: "os" for an OS error (-errno), else the
 * MLLP_ERR_* name without its prefix, in lower case ("timeout", "closed",
 * "stopped", ...). The pool-wide family lists every MLLP error name (zeros
 * included) so that rates exist before the first failure; the per-endpoint
 * family lists the reasons that occurred. Their sum may be below
 * messages_failed_total only for a reason outside both ranges.
 *
 * Label values are escaped as the format wants (backslash, double quote,
 * line feed); they should be UTF-8 (host names and constant labels are
 * copied as given).
 *
 * Threading: every function here may be called from any thread, at any
 * time between the object's creation and its destroy (not concurrently
 * with mllp_pool_destroy / mllp_receiver_destroy), including from the
 * pool's or the receiver's callbacks: they take snapshots with the
 * objects' thread-safe getters and never block for long. The *_stats
 * variants are pure functions of their arguments. */
#ifndef MLLP_METRICS_H
#define MLLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <mllp/export.h>
#include <mllp/pool.h>
#include <mllp/receiver.h>

MLLP_BEGIN_DECLS

/* One constant label, added to every sample (e.g. instance="a"). */
struct mllp_metrics_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting "__" */
	const char *value; /* any text; escaped on output */
};

/* Rendering options. Zero-initialise, then mllp_metrics_options_init(), or
 * pass NULL for the defaults. Borrowed during the call only. */
struct mllp_metrics_options {
	/* Name prefix: [a-zA-Z_:][a-zA-Z0-9_:]* (default NULL: "mllp"). The
	 * families are PREFIX_name. */
	const char *prefix;
	/* Constant labels, in this order before the family's own; none of
	 * them may repeat or be named as a family label (backend, code,
	 * endpoint, endpoint_id, le, reason, verdict). */
	const struct mllp_metrics_label *labels;
	size_t nlabels;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_metrics_options_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

/* Defaults on caller-owned *o: prefix "mllp", no labels. Thread-safe for
 * distinct o. */
MLLP_API void mllp_metrics_options_init(struct mllp_metrics_options *o);

/* The buckets of the reply latency histogram, in microseconds (upper
 * bounds, inclusive): 100 us .. 60 s. */
#define MLLP_LATENCY_BUCKETS 18

/* A pool's reply latency histogram: time from the message's send to its
 * reply (the latency_us of the result and of the receive_valid event),
 * counted by the manager thread, without allocation, for every reply that
 * is counted in acked or raw_replies (so the total count equals their
 * sum, up to the snapshot's skew). A snapshot: each counter read
 * atomically, the set not. Plain data.
 *
 * Versioning (as struct mllp_endpoint_stats, pool.h): the caller sets
 * `size` to the size of the struct it was compiled with
 * (mllp_latency_histogram_init does); the library fills that many bytes
 * at most and sets `size` to the number of bytes filled. */
struct mllp_latency_histogram {
	size_t size; /* in: sizeof as the caller knows it; out: filled */
	uint64_t bound_us[MLLP_LATENCY_BUCKETS]; /* ascending upper bounds */
	/* Replies per bucket, not cumulative: count[i] took at most
	 * bound_us[i] and more than bound_us[i - 1]; count[BUCKETS] took
	 * more than the last bound. */
	uint64_t count[MLLP_LATENCY_BUCKETS + 1];
	uint64_t sum_us; /* sum of every latency counted */
};

/* Zero *h and set h->size to this header's sizeof (inline on purpose: the
 * size is the caller's). Caller-owned memory; thread-safe for distinct h. */
static inline void mllp_latency_histogram_init(struct mllp_latency_histogram *h)
{
	memset(h, 0, sizeof(*h));
	h->size = sizeof(*h);
}

/* Snapshot of the pool's reply latency histogram into caller-owned *out
 * (out->size must be set, e.g. by mllp_latency_histogram_init): the
 * bounds, and the counts (zero for a NULL pool: the bounds alone).
 * Returns 0, or MLLP_ERR_INVALID_ARGUMENT for out NULL or out->size <
 * sizeof(size_t) (*out unchanged then). Thread-safe, lock-free, any
 * thread including callbacks. */
MLLP_API int mllp_pool_get_latency(const struct mllp_pool *pool,
				   struct mllp_latency_histogram *out);

/* Render a pool's families (above) from snapshots the caller took:
 * stats (required, its size set, as from mllp_pool_get_stats; fields past
 * its size count as zero), latency (NULL: the histogram is left out; its
 * size set as stats'), and neps
 * endpoints: eps[i] (each with its size set, as from
 * mllp_pool_get_endpoint_stats; fields past its size count as zero) with
 * the id ids[i] (ids NULL: i). Pure: reads its arguments only.
 * Errors: MLLP_ERR_INVALID_ARGUMENT (stats NULL, stats or latency with a
 * size below sizeof(size_t), eps NULL with neps > 0, an eps[i] NULL or with a
 * size below sizeof(size_t), a bad prefix or label name, a repeated or reserved
 * label name, o with reserved fields not zero). */
MLLP_API int mllp_metrics_render_pool_stats(
    const struct mllp_pool_stats *stats,
    const struct mllp_latency_histogram *latency,
    const struct mllp_endpoint_stats *const *eps, const uint32_t *ids,
    size_t neps, char *buf, size_t cap, const struct mllp_metrics_options *o);

/* Render a live pool: its stats, its latency histogram and every endpoint
 * not removed (ids ascending), snapshots taken now. Allocates a
 * temporary array of endpoint stats through the pool's allocator.
 * Errors: those of mllp_metrics_render_pool_stats, MLLP_ERR_INVALID_ARGUMENT
 * for a NULL pool, MLLP_ERR_NO_MEMORY. */
MLLP_API int mllp_metrics_render_pool(const struct mllp_pool *pool, char *buf,
				      size_t cap,
				      const struct mllp_metrics_options *o);

/* Render a receiver's families from a stats snapshot (its size set, as
 * from mllp_receiver_get_stats; fields past its size count as zero) and
 * its backend name ("io_uring", "epoll"; NULL leaves PREFIX_receiver_info
 * out). Pure. Errors: MLLP_ERR_INVALID_ARGUMENT (stats NULL or with a size
 * below sizeof(size_t), bad options). */
MLLP_API int
mllp_metrics_render_receiver_stats(const struct mllp_receiver_stats *stats,
				   const char *backend, char *buf, size_t cap,
				   const struct mllp_metrics_options *o);

/* Render a live receiver (mllp_receiver_get_stats and
 * mllp_receiver_backend now). Errors: as above, and
 * MLLP_ERR_INVALID_ARGUMENT for a NULL receiver. */
MLLP_API int mllp_metrics_render_receiver(const struct mllp_receiver *r,
					  char *buf, size_t cap,
					  const struct mllp_metrics_options *o);

/* Render PREFIX_acks_sent_total{code} (ACKs a dispatcher answered, by
 * MSA-1 code AA AE AR CA CE CR) from counts indexed by enum
 * mllp_ack_code_index, as struct mllp_ack_dispatcher.counts holds them.
 * Those are written by the receiver's manager thread without atomics: read
 * them directly only after mllp_receiver_stop() returned; while it runs,
 * pass a copy kept by the dispatcher (mllp-recv mirrors them into
 * atomics in its own dispatcher). Pure. Errors:
 * MLLP_ERR_INVALID_ARGUMENT (counts NULL, bad options). */
MLLP_API int
mllp_metrics_render_acks(const uint64_t counts[MLLP_ACK_CODE_COUNT], char *buf,
			 size_t cap, const struct mllp_metrics_options *o);

MLLP_END_DECLS

#endif

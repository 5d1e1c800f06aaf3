/* mllp-bridge: MLLP <-> NATS JetStream. Shared declarations of the
 * bridge's files: the command line (mllp-bridge.c), HL7 fields, subjects
 * and digests (mllp-bridge-hl7.c), the NATS connection and stream set-up
 * (mllp-bridge-nats.c), the inbound bridge (mllp-bridge-in.c), the
 * outbound bridge (mllp-bridge-out.c) and its consumer
 * (mllp-bridge-consumer.c). Public library API only. */
#ifndef MLLP_TOOLS_BRIDGE_H
#define MLLP_TOOLS_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include <mllp/mllp.h>

#include "recv_opts.h"

#define BRIDGE_PROG "mllp-bridge"

/* Exit codes: 0 after SIGTERM/SIGINT (drained), 1 when the bridge cannot
 * start (NATS unreachable, stream or consumer missing, port in use), 64
 * for bad options. */
enum { BRIDGE_EXIT_RUNTIME = 1 };

/* A field reference such as MSH-9.1, PID-3 or PID-3.1.2: segment id,
 * field, and (0: whole) component and subcomponent; path is the
 * normalised text mllp_hl7_value() reads. */
struct bridge_field {
	char seg[4];
	unsigned field;
	unsigned comp;
	unsigned sub;
	char path[40];
};

/* Parse "SEG-N[.C[.S]]"; 0 or -1. */
int bridge_field_parse(const char *spec, struct bridge_field *f);

/* The field's value in a parsed message (mllp_hl7_value: the first
 * segment of that id, the field's first repetition); an empty view when
 * absent. */
struct mllp_str bridge_field_get(const struct mllp_hl7_msg *m,
				 const struct bridge_field *f);

/* A subject template: literal text with {SEG-N[.C[.S]]} and {partition}
 * placeholders. */
#define BRIDGE_TEMPLATE_MAX 16
struct bridge_template {
	const char *text;
	struct {
		size_t start, end; /* the placeholder's span in text */
		bool partition;
		struct bridge_field f;
	} ph[BRIDGE_TEMPLATE_MAX];
	size_t n;
};

/* Parse a template; 0, or -1 with a reason in why (cap bytes). */
int bridge_template_parse(const char *text, struct bridge_template *t,
			  char *why, size_t cap);

/* Expand a template for message m into out (cap bytes, NUL-terminated).
 * Field values are escaped for a subject token: bytes other than
 * printable ASCII, and ' ', '.', '*', '>' and '%', become %XX (hex); an
 * empty value becomes "_". partition replaces {partition}. Returns the
 * length, or -1 when it does not fit. */
int bridge_subject(const struct bridge_template *t,
		   const struct mllp_hl7_msg *m, unsigned partition, char *out,
		   size_t cap);

/* SHA-256 of data[0..len) as 64 lowercase hex digits plus NUL (out has
 * 65 bytes). */
void bridge_sha256_hex(const void *data, size_t len, char out[65]);

/* The de-duplication id of a message: the first 32 hex digits of the
 * SHA-256 of MSH-3, MSH-4 and MSH-10 (each preceded by its length, so the
 * parts cannot run into each other). out has 33 bytes. */
void bridge_msg_id(const struct mllp_hl7_msg *m, char out[33]);

/* The key digest: the first 32 hex digits of the SHA-256 of the key
 * value; the partition of a key is its digest's first 8 hex digits as a
 * number modulo the partition count. */
void bridge_key_digest(struct mllp_str key, char out[33]);
unsigned bridge_partition(const char digest[33], unsigned partitions);

/* The NATS side shared by both directions. */
struct bridge_nats_opts {
	const char *url;      /* --nats, comma-separated server URLs */
	const char *stream;   /* --stream */
	bool create_stream;   /* --create-stream */
	const char *subjects; /* --stream-subjects (for --create-stream) */
	int64_t replicas;     /* --replicas */
	int64_t max_age_s;    /* --max-age, 0: unlimited */
	int64_t dup_window_s; /* --duplicate-window */
	bool memory;	      /* --memory-storage */
};

struct bridge_nats {
	natsConnection *nc;
	jsCtx *js;
	const char *url;
};

/* Connect (reconnecting forever afterwards, every reconnect and
 * disconnect logged) and make the JetStream context; js_opts may be NULL.
 * send_asap: every publish is written at once (for latency: in's
 * publishes wait for their PubAck); otherwise writes gather for up to
 * 1 ms (out's acks: fewer writes for the bridge and the server).
 * 0, or BRIDGE_EXIT_RUNTIME after printing why. */
int bridge_nats_connect(const struct bridge_nats_opts *o, jsOptions *js_opts,
			bool send_asap, struct bridge_nats *n);

/* Check that the stream exists, or create it with --create-stream. 0, or
 * BRIDGE_EXIT_RUNTIME after printing why ("stream 'HL7' not found ...").
 */
int bridge_stream_ensure(const struct bridge_nats_opts *o,
			 struct bridge_nats *n);

void bridge_nats_close(struct bridge_nats *n);

/* One log line "mllp-bridge: <line>" on stderr (thread-safe; lines are
 * written whole). */
void bridge_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic milliseconds. */
int64_t bridge_now_ms(void);

/* The bridge's options (both directions; mllp-bridge.c parses them). */
struct bridge_in_opts {
	struct recv_opts recv; /* listener, limits, TLS (recv_opts.h) */
	struct bridge_template subject;
	int64_t publish_timeout_ms;
	bool no_reply_unavailable; /* --on-unavailable no-reply */
	int64_t max_pending;	   /* async publishes in flight */
	struct bridge_field key;   /* --key-field (the key digest header) */
	unsigned partitions;	   /* --partitions ({partition}) */
	const char *metrics;	   /* --metrics ADDR:PORT, or NULL */
};

struct bridge_out_opts {
	const char *consumer;
	const char *filter;
	const char *to_host;
	uint16_t to_port;
	uint32_t connections;
	struct bridge_field key;
	const char *key_header;	 /* --key-header, else key is the field */
	bool hold;		 /* --on-reject hold */
	const char *dead_letter; /* subject */
	int64_t ack_wait_s;
	int64_t max_ack_pending;
	bool create_consumer;
	int64_t reply_timeout_ms;
	int64_t drain_timeout_ms;
	uint32_t retry_max_s;
	struct mllp_tls_client_config tls;
	bool tls_enabled;
	const char *metrics; /* --metrics ADDR:PORT, or NULL */
	bool exclusive;	     /* --exclusive (mllp-bridge-lease.c) */
	int64_t lease_s;     /* --lease */
};

/* What bridge_consumer_bind read before subscribing: the consumer's
 * AckWait, its messages delivered and not yet acked, the last stream
 * sequence it delivered, and whether a subscriber was bound to it. */
struct bridge_consumer_info {
	int64_t ack_wait_ms;
	uint64_t ack_pending;
	uint64_t delivered_stream_seq;
	bool push_bound;
};

/* Look the consumer oo->consumer up on the stream (or create it with
 * --create-consumer), check that it is a push consumer with a deliver
 * group and explicit acks, and subscribe to it (queue = its deliver group,
 * manual acks; cb runs on the subscription's thread). 0, or
 * BRIDGE_EXIT_RUNTIME after printing why ("consumer 'X' not found on
 * stream 'Y' ..."). */
int bridge_consumer_bind(struct bridge_nats *n, const char *stream,
			 const struct bridge_out_opts *oo, natsMsgHandler cb,
			 void *closure, natsSubscription **sub,
			 struct bridge_consumer_info *info);

/* Run a direction until SIGINT/SIGTERM arrives on sig_fd (a signalfd);
 * the exit code. */
int bridge_in_run(const struct bridge_nats_opts *no, struct bridge_in_opts *io,
		  int sig_fd);
int bridge_out_run(const struct bridge_nats_opts *no,
		   struct bridge_out_opts *oo, int sig_fd);

/* Wait for a signal on sig_fd for at most timeout_ms (-1: forever); true
 * when one arrived (it is logged). */
bool bridge_wait_signal(int sig_fd, int timeout_ms);

/* The HTTP-style header names the bridge writes. */
#define BRIDGE_H_KEY	"Mllp-Key"
#define BRIDGE_H_PEER	"Mllp-Peer"
#define BRIDGE_H_MSH3	"Mllp-Msh-3"
#define BRIDGE_H_MSH4	"Mllp-Msh-4"
#define BRIDGE_H_MSH9	"Mllp-Msh-9"
#define BRIDGE_H_MSH10	"Mllp-Msh-10"
#define BRIDGE_H_ACK	"Mllp-Ack"
#define BRIDGE_H_CODE	"Mllp-Ack-Code"
#define BRIDGE_H_REASON "Mllp-Reason"

/* --metrics (mllp-bridge-metrics.c): the counters a direction serves to
 * Prometheus, as pointers to its atomics (read on the HTTP server's
 * thread, never written there). */
struct bridge_in_counters {
	const _Atomic uint64_t *received, *stored, *duplicates, *refused,
	    *timed_out, *unavailable, *rejected, *replies_lost, *pending;
};
struct bridge_out_counters {
	const _Atomic uint64_t *received, *delivered, *dead_lettered,
	    *lanes_held, *retries, *redelivered, *duplicates_dropped, *released,
	    *in_progress, *held;
};
struct bridge_metrics;

/* Serve /metrics at spec (NULL: nothing, *out NULL, 0) and print "metrics
 * on ADDR:PORT" on stdout: the bridge's families (mllp_bridge_*), NATS's
 * connection state, and the receiver's (in) or the pool's (out) families
 * as mllp-recv renders them. c, n and recv or pool must stay valid until
 * bridge_metrics_stop. 0, or BRIDGE_EXIT_RUNTIME after logging why. */
int bridge_metrics_in_start(const char *spec,
			    const struct bridge_in_counters *c,
			    const struct bridge_nats *n,
			    const struct mllp_receiver *recv,
			    struct bridge_metrics **out);
int bridge_metrics_out_start(const char *spec,
			     const struct bridge_out_counters *c,
			     const struct bridge_nats *n,
			     const struct mllp_pool *pool,
			     struct bridge_metrics **out);
/* Stop serving and free; NULL ignored. */
void bridge_metrics_stop(struct bridge_metrics *m);

/* --exclusive (mllp-bridge-lease.c): one owner per consumer, by a lease in
 * the JetStream key-value bucket BRIDGE_LEASE_BUCKET. */
#define BRIDGE_LEASE_BUCKET "mllp_bridge_leases"
/* bridge_lease_acquire's answer when a signal arrived during the standby:
 * the bridge exits 0 without having consumed. */
enum { BRIDGE_STOPPED = -1 };

/* Without --exclusive: 0 at once. With it: take the consumer's lease, as a
 * standby while another bridge holds it or the consumer is bound (logged
 * once, polled every lease/3), then keep it renewed from a thread of its
 * own until bridge_lease_release. 0 once this bridge owns the consumer,
 * BRIDGE_STOPPED after a signal on sig_fd, BRIDGE_EXIT_RUNTIME after
 * logging why. When the lease is lost (taken by another bridge after this
 * one could not renew it in time) the bridge logs it and raises SIGTERM
 * on itself: it drains, and bridge_lease_lost() says so. */
int bridge_lease_acquire(struct bridge_nats *n,
			 const struct bridge_nats_opts *no,
			 const struct bridge_out_opts *oo, int sig_fd);
/* Stop renewing and give the lease up (a standby takes over at its next
 * poll); before the NATS connection closes. Without a lease: nothing. */
void bridge_lease_release(void);
/* True when the lease was lost while running (the exit status is then 1). */
bool bridge_lease_lost(void);
/* 1 while waiting as a standby (for the metrics). */
uint64_t bridge_lease_standby(void);

#endif

/* Shared pieces of the end-to-end loopback benchmarks (e2e_pool, e2e_lanes,
 * e2e_recv, e2e_load): the test message and its ACK frame, clocks, the
 * minimal epoll ACK receiver (run in a forked child), the raw epoll
 * ping-pong client and the pool row. Plain C11 (+ _GNU_SOURCE). */
#ifndef MLLP_BENCH_E2E_COMMON_H
#define MLLP_BENCH_E2E_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The test message: an ADT^A01 of about 120 bytes, MSH-10 "CTRL1". */
extern const char e2e_msg[];
extern const size_t e2e_msg_len;
/* Filled by e2e_init(): the message's MLLP frame and the frame of its ACK
 * (AA, as mllp_ack_build makes it with default options). */
extern unsigned char e2e_frame[512];
extern size_t e2e_frame_len;
extern unsigned char e2e_ack_frame[1024];
extern size_t e2e_ack_len;

/* Build the frames above and ignore SIGPIPE. Call once, first. */
void e2e_init(void);

/* CLOCK_MONOTONIC seconds, nanoseconds. */
double e2e_now_s(void);
uint64_t e2e_now_ns(void);
/* This process's CPU time (user + system, all threads), seconds. */
double e2e_cpu_s(void);
/* User + system seconds of a struct rusage (e.g. a child's, from wait4). */
double e2e_rusage_s(const struct rusage *ru);

/* Fork the minimal epoll ACK receiver: one thread, one epoll set, reads
 * whatever arrives, counts EB CR trailers and sends one ACK frame per
 * message (one send each). The listening socket (127.0.0.1, ephemeral
 * port, backlog 4096) is bound before the fork; its port goes to *port.
 * echo_id false: the prebuilt e2e_ack_frame as is (MSA-2 "CTRL1": right
 * for e2e_msg only); true: the same ACK with MSA-2 set to each message's
 * own MSH-10 (needed by clients that vary MSH-10, such as mllp-load).
 * Returns the child's pid; the child runs until killed. Raise
 * RLIMIT_NOFILE before calling if many connections will be made. */
pid_t e2e_receiver_spawn(bool echo_id, uint16_t *port);

/* Send sig to child pid, reap it with wait4 and return its CPU seconds
 * (user + system, all its threads, over its whole life). */
double e2e_child_stop(pid_t pid, int sig);

/* The raw epoll ping-pong client: conns connections to 127.0.0.1:port
 * (connected before the clock starts), one e2e_frame in flight on each,
 * the next sent as soon as its ACK's EB CR arrives; one thread, for secs.
 * *rate: ACKed messages/s; *cpu_us: this process's CPU microseconds per
 * ACKed message over the timed window. */
void e2e_raw_client(uint16_t port, int conns, double secs, double *rate,
		    double *cpu_us);

/* Round-trip latency of the raw client, microseconds. */
struct e2e_latency {
	double p50_us, p99_us, max_us;
};
/* e2e_raw_client, and with lat non-NULL also each message's round trip
 * (from its send() to its ACK's EB CR: one clock read per message) into
 * *lat. */
void e2e_raw_client_lat(uint16_t port, int conns, double secs, double *rate,
			double *cpu_us, struct e2e_latency *lat);

struct mllp_pool;
struct mllp_pool_config;

/* A pool configured as cfg, its queue_capacity set to conns * 8, with one
 * endpoint of conns connections to 127.0.0.1:port (its id in *ep), back
 * once all are connected. Exits if the pool cannot be made. */
struct mllp_pool *e2e_pool_connect(const struct mllp_pool_config *cfg,
				   uint16_t port, int conns, uint32_t *ep);

/* The pool row: a pool of e2e_pool_connect, connected before the clock
 * starts; this thread keeps its queue full with blocking
 * sends of e2e_msg (borrowed, no copy) for secs, the futures completed by
 * callback; then every queued message is let finish. keys > 0: each
 * message keyed "k" + 5 digits, the keys in turn (ordered lanes). *rate:
 * messages/s ACKed AA; *cpu_us: this process's CPU microseconds per such
 * message. Exits if the pool cannot be made; says on stderr how many
 * failed. */
void e2e_pool_row(const struct mllp_pool_config *cfg, uint16_t port, int conns,
		  int keys, double secs, double *rate, double *cpu_us);

/* Parse a comma-separated list of positive integers (connection counts)
 * into list[0..max); returns how many. */
int e2e_parse_list(const char *s, int *list, int max);

/* The median of v[0..n) (sorts v; n >= 1). */
double e2e_median(double *v, int n);

/* E2E_PIN=CLIENT,RECEIVER (default 0,1) or off: the CPUs to pin the client
 * and the receiver to. True when both are allowed to this process and
 * differ; else false, with why in how. A malformed value exits 2 (prog
 * names the program). Pin a thread or a process's threads to come with
 * e2e_pin_to (pid 0: the calling thread, inherited by threads it then
 * starts): 0 or -1. */
bool e2e_pin_cpus(const char *prog, int *client, int *receiver, char *how,
		  size_t cap);
int e2e_pin_to(pid_t pid, int cpu);

#endif

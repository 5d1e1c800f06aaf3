/* End-to-end loopback benchmark of the pool engine.
 *
 * The minimal epoll ACK receiver of e2e_common.c runs in a forked child
 * process (so the parent's CPU time is the client's alone). For each
 * connection count the parent runs, for `seconds` each:
 *   raw  — the raw epoll ping-pong client of e2e_common.c: one message in
 *          flight per connection, one thread (the physical-limit proxy);
 *   pool — mllp_pool with that many connections, one producer thread
 *          keeping the queue full (blocking sends), futures completed by
 *          callback;
 *   cb   — (second pool row) closed loop as mllp-load drives it: one
 *          message in flight per connection, re-submitted from the
 *          completion callback (non-blocking send on the manager thread);
 *          ratios against the same raw run (E2E_NO_CB=1 skips it).
 * It prints ACKed messages/s and client CPU microseconds per message.
 * The pool rows run once per I/O backend, io_uring then epoll, against the
 * same raw run (E2E_BACKENDS=io_uring or =epoll for one).
 *
 * usage: e2e_pool [seconds=2] [conns list, default 1,16,64,256]
 *        e2e_pool --idle N   user-space RSS per idle pool connection */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "e2e_common.h"

/* ---- pool client ------------------------------------------------------ */

/* The pool's I/O backend for the pool rows (both in one run). */
static enum mllp_backend_kind bench_backend = MLLP_BACKEND_IO_URING;

/* The pool rows' configuration: bench_backend; E2E_LIBC_ALLOC set: the
 * libc allocator. */
static void pool_config(struct mllp_pool_config *cfg)
{
	mllp_pool_config_init(cfg);
	cfg->backend = bench_backend;
	if (getenv("E2E_LIBC_ALLOC"))
		cfg->allocator = mllp_allocator_libc();
}

static void run_pool(uint16_t port, int conns, double secs, double *rate,
		     double *cpu_us)
{
	struct mllp_pool_config cfg;
	pool_config(&cfg);
	e2e_pool_row(&cfg, port, conns, 0, secs, rate, cpu_us);
}

/* Closed loop, as mllp-load drives the pool: `conns` messages in flight
 * (one per connection, like the raw client), each completion callback
 * (manager thread) re-submits with a non-blocking mllp_pool_send. The
 * main thread only sleeps. */
struct closed_loop {
	struct mllp_pool *pool;
	uint32_t ep;
	struct mllp_send_options o;
	atomic_bool stop;
	atomic_ullong done, bad, live;
};

static void on_done_resubmit(struct mllp_future *f, void *arg)
{
	struct closed_loop *cl = arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->verdict == MLLP_APPLICATION_ACCEPT)
		atomic_fetch_add_explicit(&cl->done, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&cl->bad, 1, memory_order_relaxed);
	mllp_future_free(f);
	struct mllp_future *nf;
	if (!atomic_load_explicit(&cl->stop, memory_order_relaxed) &&
	    mllp_pool_send(cl->pool, cl->ep, e2e_msg, e2e_msg_len, &cl->o, &nf,
			   NULL) == 0)
		return;
	atomic_fetch_sub_explicit(&cl->live, 1, memory_order_release);
}

static void run_pool_cb(uint16_t port, int conns, double secs, double *rate,
			double *cpu_us)
{
	struct mllp_pool_config cfg;
	pool_config(&cfg);
	static struct closed_loop cl;
	cl.pool = e2e_pool_connect(&cfg, port, conns, &cl.ep);
	mllp_send_options_init(&cl.o);
	cl.o.kind = MLLP_PAYLOAD_HL7;
	cl.o.block = false; /* required from a callback */
	cl.o.borrow_payload = true;
	cl.o.callback = on_done_resubmit;
	cl.o.callback_arg = &cl;
	atomic_store(&cl.stop, false);
	atomic_store(&cl.done, 0);
	atomic_store(&cl.bad, 0);
	atomic_store(&cl.live, (unsigned long long)conns);
	double c0 = e2e_cpu_s(), t0 = e2e_now_s();
	for (int i = 0; i < conns; i++) {
		struct mllp_future *f;
		if (mllp_pool_send(cl.pool, cl.ep, e2e_msg, e2e_msg_len, &cl.o,
				   &f, NULL) != 0)
			atomic_fetch_sub(&cl.live, 1);
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&cl.stop, true);
	while (atomic_load_explicit(&cl.live, memory_order_acquire) > 0)
		usleep(100);
	uint64_t done = atomic_load(&cl.done);
	double t = e2e_now_s() - t0, c = e2e_cpu_s() - c0;
	*rate = done / t;
	*cpu_us = done ? c * 1e6 / done : 0;
	mllp_pool_destroy(cl.pool);
	if (atomic_load(&cl.bad))
		fprintf(stderr, "pool-cb: %llu failed\n",
			(unsigned long long)atomic_load(&cl.bad));
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void run_idle(uint16_t port, int conns)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.ring_entries = 4096;
	long before = rss_kib();
	struct mllp_pool *pool;
	struct mllp_error err;
	if (mllp_pool_create(&cfg, &pool, &err) != 0) {
		fprintf(stderr, "pool: %s\n", err.message);
		exit(1);
	}
	long created = rss_kib();
	uint32_t ep;
	mllp_pool_add_endpoint(pool, "127.0.0.1", port, (uint32_t)conns, NULL,
			       &ep, NULL);
	double end = e2e_now_s() + 60;
	while (mllp_pool_connected_count(pool, ep) < (uint32_t)conns &&
	       e2e_now_s() < end)
		usleep(10000);
	uint32_t up = mllp_pool_connected_count(pool, ep);
	long after = rss_kib();
	printf("idle connections up: %u of %d\n", up, conns);
	printf("RSS: before pool %ld KiB, empty pool %ld KiB, with "
	       "connections %ld KiB\n",
	       before, created, after);
	printf("user-space RSS per idle connection: %.2f KiB (excluding the "
	       "pool's fixed cost)\n",
	       up ? (double)(after - created) / up : 0.0);
	mllp_pool_destroy(pool);
}

int main(int argc, char **argv)
{
	int idle = 0;
	if (argc > 2 && strcmp(argv[1], "--idle") == 0) {
		idle = atoi(argv[2]);
		struct rlimit rl;
		getrlimit(RLIMIT_NOFILE, &rl);
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	int list[16] = {1, 16, 64, 256}, nlist = 4;
	if (argc > 2)
		nlist = e2e_parse_list(argv[2], list, 16);
	e2e_init();
	uint16_t port;
	pid_t child = e2e_receiver_spawn(false, &port);
	if (idle) {
		run_idle(port, idle);
		e2e_child_stop(child, SIGKILL);
		return 0;
	}
	/* Pool rows per backend, against the same raw run:
	 * E2E_BACKENDS=io_uring|epoll|io_uring,epoll (default both). */
	const char *bl = getenv("E2E_BACKENDS");
	if (!bl || !*bl)
		bl = "io_uring,epoll";
	printf("%6s %8s %12s %10s %12s %10s %8s %8s\n", "conns", "backend",
	       "raw msg/s", "raw us/msg", "pool msg/s", "pool us/msg", "tput",
	       "cpu");
	for (int i = 0; i < nlist; i++) {
		double rr, rc, pr, pc;
		rr = rc = 1;
		if (!getenv("E2E_ONLY_POOL"))
			e2e_raw_client(port, list[i], secs, &rr, &rc);
		bool first = true;
		for (int k = 0; k < 2; k++) {
			const char *bn = k == 0 ? "io_uring" : "epoll";
			if (!strstr(bl, bn))
				continue;
			bench_backend =
			    k == 0 ? MLLP_BACKEND_IO_URING : MLLP_BACKEND_EPOLL;
			run_pool(port, list[i], secs, &pr, &pc);
			if (first)
				printf("%6d %8s %12.0f %10.2f %12.0f %10.2f "
				       "%7.2fx %7.2fx\n",
				       list[i], bn, rr, rc, pr, pc, pr / rr,
				       pc / rc);
			else
				printf("%6s %8s %12s %10s %12.0f %10.2f "
				       "%7.2fx %7.2fx\n",
				       "", bn, "", "", pr, pc, pr / rr,
				       pc / rc);
			first = false;
			fflush(stdout);
			if (getenv("E2E_NO_CB"))
				continue;
			run_pool_cb(port, list[i], secs, &pr, &pc);
			printf(
			    "%6s %8s %12s %10s %12.0f %10.2f %7.2fx %7.2fx\n",
			    "  cb", bn, "", "", pr, pc, pr / rr, pc / rc);
			fflush(stdout);
		}
	}
	e2e_child_stop(child, SIGKILL);
	return 0;
}

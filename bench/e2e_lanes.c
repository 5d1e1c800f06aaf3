/* End-to-end loopback benchmark of ordered lanes: the same pool rows as
 * e2e_pool (one producer thread keeping the queue full with blocking
 * sends, futures completed by callback) against the minimal epoll ACK
 * receiver of e2e_common.c in a forked child, run unkeyed, then keyed
 * with K distinct keys in turn (mllp_send_options.key), in the same run.
 * The rows take turns, `rounds` times (a shared machine swings run to
 * run: turns spread the swings over every row); each row prints the
 * medians of its rounds: ACKed messages/s, client CPU microseconds per
 * message, and the ratios of both to the unkeyed row.
 *
 * usage: e2e_lanes [seconds=2] [conns=64] [keys list, default 10000,64]
 *                  [rounds=5]
 *   E2E_BACKENDS=io_uring|epoll|io_uring,epoll (default both) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "e2e_common.h"

/* keys 0: unkeyed. */
static void run(enum mllp_backend_kind be, uint16_t port, int conns, int keys,
		double secs, double *rate, double *cpu_us)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.backend = be;
	e2e_pool_row(&cfg, port, conns, keys, secs, rate, cpu_us);
}

#define MAX_ROUNDS 15

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	int conns = argc > 2 ? atoi(argv[2]) : 64;
	int keys[8] = {0, 10000, 64}, nkeys = 3; /* 0: unkeyed */
	if (argc > 3)
		nkeys = 1 + e2e_parse_list(argv[3], keys + 1, 7);
	int rounds = argc > 4 ? atoi(argv[4]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 5;
	e2e_init();
	uint16_t port;
	pid_t child = e2e_receiver_spawn(false, &port);
	const char *bl = getenv("E2E_BACKENDS");
	if (!bl || !*bl)
		bl = "io_uring,epoll";
	printf("%6s %8s %8s %12s %10s %8s %8s\n", "conns", "backend", "keys",
	       "msg/s", "us/msg", "tput", "cpu");
	for (int b = 0; b < 2; b++) {
		const char *bn = b == 0 ? "io_uring" : "epoll";
		if (!strstr(bl, bn))
			continue;
		enum mllp_backend_kind be =
		    b == 0 ? MLLP_BACKEND_IO_URING : MLLP_BACKEND_EPOLL;
		double r[8][MAX_ROUNDS], c[8][MAX_ROUNDS];
		for (int k = 0; k < rounds; k++)
			for (int i = 0; i < nkeys; i++)
				run(be, port, conns, keys[i], secs, &r[i][k],
				    &c[i][k]);
		double base = e2e_median(r[0], rounds),
		       base_c = e2e_median(c[0], rounds);
		for (int i = 0; i < nkeys; i++) {
			double mr = e2e_median(r[i], rounds),
			       mc = e2e_median(c[i], rounds);
			char kn[16];
			snprintf(kn, sizeof(kn), "%d", keys[i]);
			printf("%6d %8s %8s %12.0f %10.2f %7.2fx %7.2fx\n",
			       conns, bn, keys[i] ? kn : "none", mr, mc,
			       mr / base, mc / base_c);
		}
		fflush(stdout);
	}
	e2e_child_stop(child, SIGKILL);
	return 0;
}

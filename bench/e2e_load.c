/* End-to-end loopback benchmark of the mllp-load tool.
 *
 * The minimal epoll ACK receiver of e2e_common.c runs in a forked child,
 * answering each message with an ACK that carries its own MSH-10 (mllp-load
 * gives every message a unique one). For each connection count, in the same
 * run and against that receiver, a number of rounds (E2E_ROUNDS, default
 * 5), each running for `seconds`, in alternating order:
 *   raw  — the raw epoll ping-pong client (one message in flight per
 *          connection, one thread: the physical-limit proxy), in this
 *          process; CPU is this process's over the timed window;
 *   load — the built mllp-load binary as a child process, stderr not a
 *          terminal (/dev/null):
 *            mllp-load -c N -d S --json - --no-progress -m MSG 127.0.0.1 PORT
 *          (closed loop, one message in flight per connection; MSG is the
 *          raw client's message written to a temporary file, so both send
 *          the same bytes but for MSH-7/MSH-10). Its throughput is the
 *          report's throughput_msgs_per_s; its CPU is the child's from
 *          wait4() (whole process: start, connects, run, drain, exit),
 *          divided by the messages it got ACKed.
 * A row gives the medians over the rounds: msg/s and client CPU us/msg of
 * both, `tput` (load/raw msg/s) and `cpu` (load/raw us/msg) with their
 * range over the rounds (each ratio is taken within one round), and
 * `cpu-run`: the same with the CPU mllp-load's report gives (cpu_s: the
 * timed run only). At one connection a second line gives the round-trip
 * latency p50/p99 of both: the raw client's from its send() to the ACK's
 * EB CR (one clock read per message), mllp-load's from its report (first
 * byte written to the reply).
 *
 * Pinning: the receiver on one CPU, this process and mllp-load on another
 * (E2E_PIN=CLIENT,RECEIVER, default 0,1 when both CPUs are allowed;
 * E2E_PIN=off leaves placement to the scheduler). On a machine shared with
 * other work, run it under `chrt -f 10` (root): the receiver and mllp-load
 * inherit the real-time policy, so builds and tests elsewhere do not
 * preempt the two CPUs in the middle of a round.
 *
 * Pipelining: E2E_WINDOWS=1,2,4,8,16,64 runs mllp-load with --window W
 * (one row per connection count and window; the raw client stays the
 * one-in-flight ping-pong baseline of the same round), a `win` column
 * first, and every row gets its latency line (mllp-load's p50/p99 under
 * that window).
 *
 * usage: [E2E_ROUNDS=N] e2e_load [seconds=1] [conns list, default 1,64]
 *        [mllp-load path] (default path: the mllp-load of the build tree);
 *        E2E_BACKEND=auto|io_uring|epoll is passed as mllp-load --backend. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_common.h"

#ifndef MLLP_LOAD_PATH
#define MLLP_LOAD_PATH "mllp-load"
#endif

struct load_result {
	double msgs_per_s; /* throughput_msgs_per_s */
	double self_cpu_s; /* cpu_s */
	double acked;	   /* accepted + app_errors + app_rejects */
	double failed;
	double p50_us, p99_us; /* latency_us */
	double child_cpu_s;    /* wait4 */
	int status;	       /* exit status, or -1 */
};

/* The number after "key": in a flat JSON text, or -1. */
static double json_num(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(json, pat);
	if (!p)
		return -1;
	char *end;
	double v = strtod(p + strlen(pat), &end);
	return end == p + strlen(pat) ? -1 : v;
}

/* --window of the row being measured (0: not given). */
static int g_window;

static int run_load(const char *path, const char *msgfile, uint16_t port,
		    int conns, double secs, struct load_result *r)
{
	char c_arg[16], d_arg[32], p_arg[16], w_arg[16];
	snprintf(c_arg, sizeof(c_arg), "%d", conns);
	snprintf(d_arg, sizeof(d_arg), "%g", secs);
	snprintf(p_arg, sizeof(p_arg), "%u", (unsigned)port);
	const char *be = getenv("E2E_BACKEND");
	const char *argv[20];
	int a = 0;
	argv[a++] = path;
	argv[a++] = "-c";
	argv[a++] = c_arg;
	argv[a++] = "-d";
	argv[a++] = d_arg;
	argv[a++] = "--json";
	argv[a++] = "-";
	argv[a++] = "--no-progress";
	argv[a++] = "-m";
	argv[a++] = msgfile;
	if (be && *be) {
		argv[a++] = "--backend";
		argv[a++] = be;
	}
	if (g_window > 0) {
		snprintf(w_arg, sizeof(w_arg), "%d", g_window);
		argv[a++] = "--window";
		argv[a++] = w_arg;
	}
	argv[a++] = "127.0.0.1";
	argv[a++] = p_arg;
	argv[a] = NULL;

	int out[2];
	if (pipe(out) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		close(out[0]);
		close(out[1]);
		if (!getenv("E2E_VERBOSE") &&
		    !freopen("/dev/null", "w", stderr))
			_exit(127);
		execv(path, (char *const *)argv);
		fprintf(stderr, "e2e_load: cannot run %s\n", path);
		_exit(127);
	}
	close(out[1]);
	static char json[16384];
	size_t len = 0;
	ssize_t got;
	while ((got = read(out[0], json + len, sizeof(json) - 1 - len)) > 0)
		len += (size_t)got;
	json[len] = 0;
	close(out[0]);
	struct rusage ru;
	int st;
	if (wait4(pid, &st, 0, &ru) != pid)
		return -1;
	r->child_cpu_s = e2e_rusage_s(&ru);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->msgs_per_s = json_num(json, "throughput_msgs_per_s");
	r->self_cpu_s = json_num(json, "cpu_s");
	double acc = json_num(json, "accepted");
	double ae = json_num(json, "app_errors");
	double ar = json_num(json, "app_rejects");
	r->failed = json_num(json, "failed");
	r->p50_us = json_num(json, "p50");
	r->p99_us = json_num(json, "p99");
	if (r->msgs_per_s < 0 || r->self_cpu_s < 0 || acc < 0 || ae < 0 ||
	    ar < 0) {
		fprintf(stderr, "e2e_load: no report from %s (status %d)\n",
			path, r->status);
		return -1;
	}
	r->acked = acc + ae + ar;
	return 0;
}

/* Pin this process (and so mllp-load) and the receiver child to CPUs of
 * E2E_PIN; writes what was done into how. */
static void pin(pid_t receiver, char *how, size_t cap)
{
	int c, r;
	if (!e2e_pin_cpus("e2e_load", &c, &r, how, cap))
		return;
	if (e2e_pin_to(receiver, r) != 0 || e2e_pin_to(0, c) != 0) {
		snprintf(how, cap, "not pinned (CPUs %d,%d refused)", c, r);
		return;
	}
	snprintf(how, cap, "client on CPU %d, receiver on CPU %d", c, r);
}

#define MAX_ROUNDS 64
/* Per round of a row: raw, load and their ratios, by column. */
enum {
	C_RAW_RATE,
	C_RAW_CPU,
	C_LOAD_RATE,
	C_LOAD_CPU,
	C_TPUT,
	C_CPU,
	C_CPU_RUN,
	C_RAW_P50,
	C_RAW_P99,
	C_LOAD_P50,
	C_LOAD_P99,
	C_N
};

/* One round: the raw client and mllp-load for secs each, in the order
 * given (rounds alternate it, so a drift of the machine's load favours
 * neither). Fills v[C_*]; returns 0 or -1. */
static int round_once(const char *load, const char *msgfile, uint16_t port,
		      int conns, double secs, bool raw_first, double *v)
{
	double rr = 0, rc_us = 0;
	struct e2e_latency rl = {0};
	struct load_result lr = {0};
	for (int k = 0; k < 2; k++) {
		if ((k == 0) == raw_first) {
			e2e_raw_client_lat(port, conns, secs, &rr, &rc_us,
					   conns == 1 ? &rl : NULL);
			continue;
		}
		if (run_load(load, msgfile, port, conns, secs, &lr) != 0)
			return -1;
		if (lr.status != 0 || lr.failed > 0)
			fprintf(stderr,
				"  mllp-load exit status %d, %.0f failed\n",
				lr.status, lr.failed);
	}
	double lc = lr.acked > 0 ? lr.child_cpu_s * 1e6 / lr.acked : 0;
	double ls = lr.acked > 0 ? lr.self_cpu_s * 1e6 / lr.acked : 0;
	v[C_RAW_RATE] = rr;
	v[C_RAW_CPU] = rc_us;
	v[C_LOAD_RATE] = lr.msgs_per_s;
	v[C_LOAD_CPU] = lc;
	v[C_TPUT] = rr > 0 ? lr.msgs_per_s / rr : 0;
	v[C_CPU] = rc_us > 0 ? lc / rc_us : 0;
	v[C_CPU_RUN] = rc_us > 0 ? ls / rc_us : 0;
	v[C_RAW_P50] = rl.p50_us;
	v[C_RAW_P99] = rl.p99_us;
	v[C_LOAD_P50] = lr.p50_us;
	v[C_LOAD_P99] = lr.p99_us;
	return 0;
}

/* One row: `rounds` rounds against the same receiver; prints the medians
 * (and the range of the two main ratios). Returns 0 or -1. */
static int row(const char *load, const char *msgfile, uint16_t port, int conns,
	       double secs, int rounds)
{
	static double v[C_N][MAX_ROUNDS];
	for (int r = 0; r < rounds; r++) {
		double one[C_N];
		if (round_once(load, msgfile, port, conns, secs, r % 2 == 0,
			       one) != 0)
			return -1;
		for (int c = 0; c < C_N; c++)
			v[c][r] = one[c];
	}
	double lo[C_N], hi[C_N], m[C_N];
	for (int c = 0; c < C_N; c++) {
		m[c] = e2e_median(v[c], rounds); /* sorted now */
		lo[c] = v[c][0];
		hi[c] = v[c][rounds - 1];
	}
	if (g_window > 0)
		printf("%4d ", g_window);
	printf("%6d %10.0f %8.2f %10.0f %8.2f  %5.2fx [%4.2f-%4.2f]  "
	       "%5.2fx [%4.2f-%4.2f]  %5.2fx\n",
	       conns, m[C_RAW_RATE], m[C_RAW_CPU], m[C_LOAD_RATE],
	       m[C_LOAD_CPU], m[C_TPUT], lo[C_TPUT], hi[C_TPUT], m[C_CPU],
	       lo[C_CPU], hi[C_CPU], m[C_CPU_RUN]);
	if (conns == 1 && g_window == 0)
		printf("%6s latency us p50/p99: raw %.1f/%.1f, mllp-load "
		       "%.0f/%.0f\n",
		       "", m[C_RAW_P50], m[C_RAW_P99], m[C_LOAD_P50],
		       m[C_LOAD_P99]);
	else if (g_window > 0)
		printf("%11s latency us p50/p99: mllp-load %.0f/%.0f%s\n", "",
		       m[C_LOAD_P50], m[C_LOAD_P99],
		       conns == 1 ? "" : " (raw: one connection only)");
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	int list[16] = {1, 64}, nlist = 2;
	if (argc > 2)
		nlist = e2e_parse_list(argv[2], list, 16);
	const char *load = argc > 3 ? argv[3] : MLLP_LOAD_PATH;
	const char *re = getenv("E2E_ROUNDS");
	int rounds = re ? atoi(re) : 5;
	if (secs <= 0 || nlist == 0 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr, "usage: [E2E_ROUNDS=1..64] e2e_load "
				"[seconds=1] [conns list, default 1,64] "
				"[mllp-load path]\n");
		return 2;
	}
	if (access(load, X_OK) != 0) {
		fprintf(stderr, "e2e_load: %s is not executable\n", load);
		return 2;
	}
	e2e_init();

	/* The raw client's message, for mllp-load -m. */
	char msgfile[] = "/tmp/e2e_load_msg.XXXXXX";
	int mfd = mkstemp(msgfile);
	if (mfd < 0 ||
	    write(mfd, e2e_msg, e2e_msg_len) != (ssize_t)e2e_msg_len) {
		perror("e2e_load: temporary message file");
		return 1;
	}
	close(mfd);

	uint16_t port;
	pid_t child = e2e_receiver_spawn(true, &port);
	char how[96];
	pin(child, how, sizeof(how));
	const char *be = getenv("E2E_BACKEND");
	printf("mllp-load %s, backend %s, %d rounds of %.1f s each per row, "
	       "%s\n",
	       load, be && *be ? be : "auto", rounds, secs, how);
	int wins[16] = {0}, nwins = 1;
	const char *we = getenv("E2E_WINDOWS");
	if (we && *we && (nwins = e2e_parse_list(we, wins, 16)) == 0) {
		fprintf(stderr, "e2e_load: E2E_WINDOWS wants a list such as "
				"1,2,4,8,16,64\n");
		return 2;
	}
	if (we && *we)
		printf("%4s ", "win");
	printf("%6s %10s %8s %10s %8s  %-20s %-20s %6s\n", "conns", "raw msg/s",
	       "raw us", "load msg/s", "load us", "tput [range]", "cpu [range]",
	       "cpu-run");
	int rc = 0;
	for (int i = 0; i < nlist && rc == 0; i++)
		for (int w = 0; w < nwins && rc == 0; w++) {
			g_window = wins[w];
			rc = row(load, msgfile, port, list[i], secs, rounds)
				 ? 1
				 : 0;
		}
	e2e_child_stop(child, SIGKILL);
	unlink(msgfile);
	return rc;
}

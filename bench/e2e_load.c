/* End-to-end loopback benchmark of the mllp-load tool.
 *
 * The minimal epoll ACK receiver of e2e_common.c runs in a forked child,
 * answering each message with an ACK that carries its own MSH-10 (mllp-load
 * gives every message a unique one). For each connection count, in the same
 * run and against that receiver, for `seconds` each:
 *   raw  — the raw epoll ping-pong client (one message in flight per
 *          connection, one thread: the physical-limit proxy), in this
 *          process; CPU is this process's over the timed window;
 *   load — the built mllp-load binary as a child process:
 *            mllp-load -c N -d S --json - --no-progress -m MSG 127.0.0.1 PORT
 *          (closed loop, one message in flight per connection; MSG is the
 *          raw client's message written to a temporary file, so both send
 *          the same bytes but for MSH-7/MSH-10). Its throughput is the
 *          report's throughput_msgs_per_s; its CPU is the child's from
 *          wait4() (whole process: start, connects, run, drain, exit),
 *          divided by the messages it got ACKed. `self` is the CPU the
 *          report itself gives (cpu_s: the timed run only) per message.
 * `tput` is load/raw msg/s, `cpu` load/raw us/msg.
 *
 * usage: e2e_load [seconds=2] [conns list, default 16,64] [mllp-load path]
 *        (default path: the mllp-load of the build tree);
 *        E2E_BACKEND=auto|io_uring|epoll is passed as mllp-load --backend. */
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
	double child_cpu_s; /* wait4 */
	int status;	    /* exit status, or -1 */
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

static int run_load(const char *path, const char *msgfile, uint16_t port,
		    int conns, double secs, struct load_result *r)
{
	char c_arg[16], d_arg[32], p_arg[16];
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
	if (r->msgs_per_s < 0 || r->self_cpu_s < 0 || acc < 0 || ae < 0 ||
	    ar < 0) {
		fprintf(stderr, "e2e_load: no report from %s (status %d)\n",
			path, r->status);
		return -1;
	}
	r->acked = acc + ae + ar;
	return 0;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	int list[16] = {16, 64}, nlist = 2;
	if (argc > 2)
		nlist = e2e_parse_list(argv[2], list, 16);
	const char *load = argc > 3 ? argv[3] : MLLP_LOAD_PATH;
	if (secs <= 0 || nlist == 0) {
		fprintf(stderr, "usage: e2e_load [seconds=2] [conns list, "
				"default 16,64] [mllp-load path]\n");
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
	const char *be = getenv("E2E_BACKEND");
	printf("mllp-load %s, backend %s, %.1f s per row\n", load,
	       be && *be ? be : "auto", secs);
	printf("%6s %12s %10s %12s %11s %8s %8s %10s\n", "conns", "raw msg/s",
	       "raw us/msg", "load msg/s", "load us/msg", "tput", "cpu",
	       "self us/msg");
	int rc = 0;
	for (int i = 0; i < nlist; i++) {
		double rr, rc_us;
		e2e_raw_client(port, list[i], secs, &rr, &rc_us);
		struct load_result lr;
		if (run_load(load, msgfile, port, list[i], secs, &lr) != 0) {
			rc = 1;
			break;
		}
		double lc = lr.acked > 0 ? lr.child_cpu_s * 1e6 / lr.acked : 0;
		double ls = lr.acked > 0 ? lr.self_cpu_s * 1e6 / lr.acked : 0;
		printf("%6d %12.0f %10.2f %12.0f %11.2f %7.2fx %7.2fx %10.2f\n",
		       list[i], rr, rc_us, lr.msgs_per_s, lc,
		       lr.msgs_per_s / rr, lc / rc_us, ls);
		if (lr.status != 0 || lr.failed > 0)
			fprintf(stderr,
				"  mllp-load exit status %d, %.0f failed\n",
				lr.status, lr.failed);
		fflush(stdout);
	}
	e2e_child_stop(child, SIGKILL);
	unlink(msgfile);
	return rc;
}

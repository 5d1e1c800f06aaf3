/* End-to-end loopback benchmark of the receiver (issue 4).
 *
 * For each connection count, two receivers run in turn in a forked child
 * process (so its CPU time, from wait4(), is the receiver's alone):
 *   epoll — a minimal epoll ACK receiver: reads, counts EB CR trailers and
 *           writes one prebuilt ACK per frame (the physical-limit proxy);
 *   mllp  — the library's receiver (mllp_receiver_start) with the built-in
 *           `ack` dispatcher: decoder, a real ACK built per message with
 *           mllp_ack_build, in-order replies, one coalesced send per socket;
 *   fixed — the library's receiver with a dispatcher answering the same
 *           prebuilt ACK bytes as the epoll receiver (equal work per
 *           message: what the engine itself costs).
 * The parent drives both with the pool (mllp_pool, N connections, a
 * producer keeping the queue full) for `seconds`, and prints ACKed
 * messages/s and receiver CPU microseconds per message.
 *
 * usage: e2e_recv [seconds=2] [conns list, default 16,64]
 *        E2E_BACKEND=io_uring|epoll picks the receiver's (and pool's)
 *        backend (default io_uring). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

static const char msg[] =
    "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|CTRL1|P|2.5\r"
    "EVN|A01|20240101120000\rPID|1||12345||DOE^JOHN||19700101|M\r";
static unsigned char ack_frame[1024];
static size_t ack_len;
static enum mllp_backend_kind backend = MLLP_BACKEND_IO_URING;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- receivers (child processes) ----------------------------------------
 */

static void epoll_receiver(int lfd)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static unsigned char state[65536]; /* per fd: last byte was EB */
	unsigned char buf[65536];
	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd < 0) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (c < 0 || c >= 65536)
					continue;
				int one = 1;
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
				state[c] = 0;
				struct epoll_event e = {.events = EPOLLIN,
							.data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
				continue;
			}
			ssize_t got = recv(fd, buf, sizeof(buf), 0);
			if (got <= 0) {
				if (got < 0 && errno == EAGAIN)
					continue;
				close(fd);
				continue;
			}
			int replies = 0;
			for (ssize_t k = 0; k < got; k++) {
				if (state[fd] && buf[k] == MLLP_CR)
					replies++;
				state[fd] = buf[k] == MLLP_EB;
			}
			for (int k = 0; k < replies; k++)
				if (send(fd, ack_frame, ack_len, MSG_NOSIGNAL) <
				    0)
					break;
		}
	}
}

static void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

static void fixed_dispatch(void *ctx, const struct mllp_message *m,
			   struct mllp_reply *rep)
{
	(void)ctx;
	(void)m;
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = ack_frame;
	rep->len = ack_len;
}

static void mllp_receiver_child(int port_pipe, bool fixed)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the manager */
	static struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config c;
	mllp_receiver_config_init(&c);
	c.address = "127.0.0.1";
	c.port = 0;
	c.dispatch = fixed ? fixed_dispatch : mllp_dispatch_ack;
	c.dispatch_ctx = &d;
	c.log = quiet;
	c.backend = backend;
	struct mllp_receiver *r;
	struct mllp_error err;
	if (mllp_receiver_start(&c, &r, &err) != 0) {
		fprintf(stderr, "receiver: %s\n", err.message);
		_exit(1);
	}
	uint16_t port = mllp_receiver_port(r);
	if (write(port_pipe, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	int sig;
	sigwait(&set, &sig);
	mllp_receiver_stop(r);
	mllp_receiver_destroy(r);
	_exit(0);
}

/* Fork a receiver; returns its pid and port. */
static pid_t spawn(int kind, uint16_t *port)
{
	int pp[2];
	if (pipe(pp) != 0)
		exit(1);
	bool lib = kind > 0;
	int lfd = -1;
	if (!lib) {
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		bind(lfd, (struct sockaddr *)&a, sizeof(a));
		listen(lfd, 4096);
		socklen_t al = sizeof(a);
		getsockname(lfd, (struct sockaddr *)&a, &al);
		*port = ntohs(a.sin_port);
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(pp[0]);
		if (lib)
			mllp_receiver_child(pp[1], kind == 2);
		epoll_receiver(lfd);
		_exit(0);
	}
	close(pp[1]);
	if (lib && read(pp[0], port, sizeof(*port)) != sizeof(*port)) {
		fprintf(stderr, "receiver child failed\n");
		exit(1);
	}
	close(pp[0]);
	if (lfd >= 0)
		close(lfd);
	return pid;
}

/* ---- driver: the pool ----------------------------------------------------
 */

static atomic_ullong done, bad;

static void on_done(struct mllp_future *f, void *arg)
{
	(void)arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT)
		atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&bad, 1, memory_order_relaxed);
	mllp_future_free(f);
}

static void drive(uint16_t port, int conns, double secs, double *rate)
{
	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.log = quiet;
	pc.backend = backend;
	pc.queue_capacity = (uint32_t)conns * 4;
	struct mllp_pool *p;
	struct mllp_error err;
	if (mllp_pool_create(&pc, &p, &err) != 0) {
		fprintf(stderr, "pool: %s\n", err.message);
		exit(1);
	}
	uint32_t ep;
	struct mllp_conn_options co;
	mllp_conn_options_init(&co);
	co.queue_timeout = 5000;
	mllp_pool_add_endpoint(p, "127.0.0.1", port, (uint32_t)conns, &co, &ep,
			       NULL);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.block = true;
	so.borrow_payload = true;
	so.callback = on_done;
	atomic_store(&done, 0);
	atomic_store(&bad, 0);
	double t0 = now_s(), end = t0 + secs;
	uint64_t n = 0;
	while (now_s() < end) {
		for (int k = 0; k < 256; k++) {
			struct mllp_future *f;
			if (mllp_pool_send(p, ep, msg, sizeof(msg) - 1, &so, &f,
					   NULL) == 0)
				n++;
		}
	}
	double t = now_s() - t0;
	unsigned long long d = atomic_load(&done);
	*rate = (double)d / t;
	mllp_pool_destroy(p);
	if (atomic_load(&bad) > n / 100 + 1000)
		fprintf(stderr, "warning: %llu failed\n",
			(unsigned long long)atomic_load(&bad));
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	int list[16] = {16, 64}, nlist = 2;
	if (argc > 2) {
		nlist = 0;
		for (char *s = strtok(argv[2], ","); s && nlist < 16;
		     s = strtok(NULL, ","))
			list[nlist++] = atoi(s);
	}
	const char *be = getenv("E2E_BACKEND");
	if (be && strcmp(be, "epoll") == 0)
		backend = MLLP_BACKEND_EPOLL;
	signal(SIGPIPE, SIG_IGN);
	struct mllp_ack_options ao;
	mllp_ack_options_init(&ao);
	char ack[900];
	size_t l;
	mllp_ack_build(msg, sizeof(msg) - 1, &ao, ack, sizeof(ack), &l);
	mllp_wrap(NULL, ack, l, ack_frame, sizeof(ack_frame), &ack_len);

	printf("backend %s, %.1f s per row\n",
	       backend == MLLP_BACKEND_EPOLL ? "epoll" : "io_uring", secs);
	printf("%6s %8s %12s %14s %8s %8s\n", "conns", "receiver", "msg/s",
	       "recv us/msg", "tput", "cpu");
	for (int i = 0; i < nlist; i++) {
		double rate[3], cpu[3];
		for (int k = 0; k < 3; k++) {
			uint16_t port;
			pid_t pid = spawn(k, &port);
			drive(port, list[i], secs, &rate[k]);
			kill(pid, SIGTERM);
			struct rusage ru;
			int st;
			wait4(pid, &st, 0, &ru);
			double c = (double)ru.ru_utime.tv_sec +
				   (double)ru.ru_utime.tv_usec / 1e6 +
				   (double)ru.ru_stime.tv_sec +
				   (double)ru.ru_stime.tv_usec / 1e6;
			cpu[k] = rate[k] > 0 ? c * 1e6 / (rate[k] * secs) : 0;
		}
		printf("%6d %8s %12.0f %14.2f\n", list[i], "epoll", rate[0],
		       cpu[0]);
		printf("%6s %8s %12.0f %14.2f %7.2fx %7.2fx\n", "", "mllp",
		       rate[1], cpu[1], rate[1] / rate[0], cpu[1] / cpu[0]);
		printf("%6s %8s %12.0f %14.2f %7.2fx %7.2fx\n", "", "fixed",
		       rate[2], cpu[2], rate[2] / rate[0], cpu[2] / cpu[0]);
		fflush(stdout);
	}
	return 0;
}

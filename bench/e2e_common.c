/* Shared pieces of the end-to-end loopback benchmarks; see e2e_common.h. */
#include "e2e_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

const char e2e_msg[] =
    "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|CTRL1|P|2.5\r"
    "EVN|A01|20240101120000\rPID|1||12345||DOE^JOHN||19700101|M\r";
const size_t e2e_msg_len = sizeof(e2e_msg) - 1;
unsigned char e2e_frame[512];
size_t e2e_frame_len;
unsigned char e2e_ack_frame[1024];
size_t e2e_ack_len;

/* e2e_ack_frame split around its MSA-2 (for the echo_id receiver). */
static size_t ack_pre_len, ack_post_off;

void e2e_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (mllp_wrap(NULL, e2e_msg, e2e_msg_len, e2e_frame, sizeof(e2e_frame),
		      &e2e_frame_len) != 0) {
		fprintf(stderr, "e2e_init: mllp_wrap failed\n");
		exit(1);
	}
	struct mllp_ack_options ao;
	mllp_ack_options_init(&ao);
	char ack[900];
	size_t l;
	if (mllp_ack_build(e2e_msg, e2e_msg_len, &ao, ack, sizeof(ack), &l) !=
		0 ||
	    mllp_wrap(NULL, ack, l, e2e_ack_frame, sizeof(e2e_ack_frame),
		      &e2e_ack_len) != 0) {
		fprintf(stderr, "e2e_init: mllp_ack_build failed\n");
		exit(1);
	}
	static const char msa[] = "\rMSA|AA|CTRL1";
	const unsigned char *p =
	    memmem(e2e_ack_frame, e2e_ack_len, msa, sizeof(msa) - 1);
	if (!p) {
		fprintf(stderr, "e2e_init: no MSA|AA|CTRL1 in the ACK\n");
		exit(1);
	}
	ack_pre_len = (size_t)(p - e2e_ack_frame) + sizeof(msa) - 1 - 5;
	ack_post_off = ack_pre_len + 5;
}

uint64_t e2e_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double e2e_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double e2e_rusage_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec +
	       (double)ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

double e2e_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return e2e_rusage_s(&ru);
}

double e2e_child_stop(pid_t pid, int sig)
{
	struct rusage ru;
	int st;
	kill(pid, sig);
	if (wait4(pid, &st, 0, &ru) != pid)
		return 0;
	return e2e_rusage_s(&ru);
}

int e2e_parse_list(const char *s, int *list, int max)
{
	int n = 0;
	while (*s && n < max) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		if (v > 0)
			list[n++] = (int)v;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			break;
	}
	return n;
}

/* ---- the minimal epoll ACK receiver (child process) -------------------- */

#define ID_MAX 64

struct rconn {
	int fd;
	int state;  /* 1: the last byte was EB */
	int header; /* echo_id: inside the first segment of a frame */
	int pipes;  /* echo_id: field separators seen in it */
	size_t id_len;
	char id[ID_MAX]; /* echo_id: MSH-10 of the current frame */
};

/* The ACKs of the frames of one read, sent together (one send per read,
 * as a receiver answering pipelined frames does; one ACK when the client
 * waits for each reply). */
static unsigned char acks[65536];
static size_t acks_len;

static void flush_acks(struct rconn *c)
{
	if (acks_len)
		send(c->fd, acks, acks_len, MSG_NOSIGNAL);
	acks_len = 0;
}

static void send_ack(struct rconn *c, bool echo_id)
{
	if (acks_len + sizeof(e2e_ack_frame) + ID_MAX > sizeof(acks))
		flush_acks(c);
	unsigned char *out = acks + acks_len;
	if (!echo_id) {
		memcpy(out, e2e_ack_frame, e2e_ack_len);
		acks_len += e2e_ack_len;
		return;
	}
	memcpy(out, e2e_ack_frame, ack_pre_len);
	memcpy(out + ack_pre_len, c->id, c->id_len);
	memcpy(out + ack_pre_len + c->id_len, e2e_ack_frame + ack_post_off,
	       e2e_ack_len - ack_post_off);
	acks_len += e2e_ack_len - 5 + c->id_len;
}

static void receiver(int lfd, bool echo_id)
{
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	static unsigned char buf[65536];
	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				int fd =
				    accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					continue;
				int one = 1;
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
					   sizeof(one));
				struct rconn *c = calloc(1, sizeof(*c));
				if (!c) {
					close(fd);
					continue;
				}
				c->fd = fd;
				struct epoll_event e = {.events = EPOLLIN,
							.data.ptr = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				continue;
			}
			struct rconn *c = evs[i].data.ptr;
			ssize_t got = recv(c->fd, buf, sizeof(buf), 0);
			if (got <= 0) {
				if (got < 0 && errno == EAGAIN)
					continue;
				close(c->fd);
				free(c);
				continue;
			}
			for (ssize_t k = 0; k < got; k++) {
				unsigned char b = buf[k];
				if (echo_id) {
					if (b == MLLP_SB) {
						c->header = 1;
						c->pipes = 0;
						c->id_len = 0;
					} else if (c->header) {
						if (b == MLLP_CR)
							c->header = 0;
						else if (b == '|')
							c->pipes++;
						else if (c->pipes == 9 &&
							 c->id_len < ID_MAX)
							c->id[c->id_len++] =
							    (char)b;
					}
				}
				if (c->state == 1 && b == MLLP_CR)
					send_ack(c, echo_id);
				c->state = b == MLLP_EB;
			}
			flush_acks(c);
		}
	}
}

pid_t e2e_receiver_spawn(bool echo_id, uint16_t *port)
{
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(lfd, 4096) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) != 0) {
		perror("receiver socket");
		exit(1);
	}
	*port = ntohs(a.sin_port);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		receiver(lfd, echo_id);
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* ---- the raw epoll ping-pong client ------------------------------------ */

static int connect_to(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void e2e_raw_client(uint16_t port, int conns, double secs, double *rate,
		    double *cpu_us)
{
	e2e_raw_client_lat(port, conns, secs, rate, cpu_us, NULL);
}

/* Round-trip times, kept (ns) and sorted at the end for the quantiles. */
struct lat_log {
	uint32_t *v;
	size_t n, cap;
};

static void lat_add(struct lat_log *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 65536;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void lat_finish(struct lat_log *l, struct e2e_latency *out)
{
	memset(out, 0, sizeof(*out));
	if (l->n) {
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
		out->p50_us = l->v[(l->n - 1) / 2] / 1e3;
		out->p99_us = l->v[(size_t)((double)(l->n - 1) * 0.99)] / 1e3;
		out->max_us = l->v[l->n - 1] / 1e3;
	}
	free(l->v);
}

void e2e_raw_client_lat(uint16_t port, int conns, double secs, double *rate,
			double *cpu_us, struct e2e_latency *lat)
{
	int ep = epoll_create1(0);
	int *fds = calloc((size_t)conns, sizeof(int));
	int *st = calloc((size_t)conns, sizeof(int));
	uint64_t *sent_ns = calloc((size_t)conns, sizeof(uint64_t));
	struct lat_log log = {0};
	if (ep < 0 || !fds || !st || !sent_ns) {
		perror("raw client");
		exit(1);
	}
	for (int i = 0; i < conns; i++) {
		fds[i] = connect_to(port);
		struct epoll_event e = {.events = EPOLLIN,
					.data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
	}
	static unsigned char buf[65536];
	uint64_t done = 0;
	double c0 = e2e_cpu_s(), t0 = e2e_now_s(), end = t0 + secs;
	for (int i = 0; i < conns; i++) {
		if (lat)
			sent_ns[i] = e2e_now_ns();
		send(fds[i], e2e_frame, e2e_frame_len, MSG_NOSIGNAL);
	}
	while (e2e_now_s() < end) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, 100);
		for (int k = 0; k < n; k++) {
			int i = (int)evs[k].data.u32;
			ssize_t got = recv(fds[i], buf, sizeof(buf), 0);
			for (ssize_t j = 0; j < got; j++) {
				if (st[i] == 1 && buf[j] == MLLP_CR) {
					done++;
					if (lat) {
						uint64_t now = e2e_now_ns();
						lat_add(&log, now - sent_ns[i]);
						sent_ns[i] = now;
					}
					send(fds[i], e2e_frame, e2e_frame_len,
					     MSG_NOSIGNAL);
				}
				st[i] = buf[j] == MLLP_EB;
			}
		}
	}
	double t = e2e_now_s() - t0, c = e2e_cpu_s() - c0;
	*rate = (double)done / t;
	*cpu_us = done ? c * 1e6 / (double)done : 0;
	if (lat)
		lat_finish(&log, lat);
	free(sent_ns);
	for (int i = 0; i < conns; i++)
		close(fds[i]);
	close(ep);
	free(fds);
	free(st);
}

/* ---- the pool row ------------------------------------------------------ */

struct mllp_pool *e2e_pool_connect(const struct mllp_pool_config *cfg,
				   uint16_t port, int conns, uint32_t *ep)
{
	struct mllp_pool_config c = *cfg;
	c.queue_capacity = (uint32_t)conns * 8;
	struct mllp_pool *pool;
	struct mllp_error err;
	if (mllp_pool_create(&c, &pool, &err) != 0) {
		fprintf(stderr, "pool: %s\n", err.message);
		exit(1);
	}
	mllp_pool_add_endpoint(pool, "127.0.0.1", port, (uint32_t)conns, NULL,
			       ep, NULL);
	while (mllp_pool_connected_count(pool, *ep) < (uint32_t)conns)
		usleep(1000);
	return pool;
}

static atomic_ullong row_ok, row_bad;

static void row_done(struct mllp_future *f, void *arg)
{
	(void)arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->verdict == MLLP_APPLICATION_ACCEPT)
		atomic_fetch_add_explicit(&row_ok, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&row_bad, 1, memory_order_relaxed);
	mllp_future_free(f);
}

void e2e_pool_row(const struct mllp_pool_config *cfg, uint16_t port, int conns,
		  int keys, double secs, double *rate, double *cpu_us)
{
	uint32_t ep;
	struct mllp_pool *pool = e2e_pool_connect(cfg, port, conns, &ep);
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.block = true;
	o.borrow_payload = true; /* static message: no copy */
	o.callback = row_done;
	atomic_store(&row_ok, 0);
	atomic_store(&row_bad, 0);
	char key[16];
	double c0 = e2e_cpu_s(), t0 = e2e_now_s(), end = t0 + secs;
	uint64_t n = 0;
	while ((n & 255) || e2e_now_s() < end) {
		if (keys) {
			/* "k" + 5 digits, the keys in turn */
			unsigned k = (unsigned)(n % (uint64_t)keys);
			key[0] = 'k';
			for (int d = 5; d >= 1; d--, k /= 10)
				key[d] = (char)('0' + k % 10);
			o.key = key;
			o.key_len = 6;
		}
		struct mllp_future *f;
		if (mllp_pool_send(pool, ep, e2e_msg, e2e_msg_len, &o, &f,
				   NULL) == 0)
			n++;
	}
	/* Let what is queued finish: every future completes. */
	while (atomic_load(&row_ok) + atomic_load(&row_bad) < n)
		usleep(100);
	uint64_t ok = atomic_load(&row_ok);
	double t = e2e_now_s() - t0, cpu = e2e_cpu_s() - c0;
	*rate = ok / t;
	*cpu_us = ok ? cpu * 1e6 / ok : 0;
	mllp_pool_destroy(pool);
	if (atomic_load(&row_bad))
		fprintf(stderr, "pool: %llu failed\n",
			(unsigned long long)atomic_load(&row_bad));
}

bool e2e_pin_cpus(const char *prog, int *client, int *receiver, char *how,
		  size_t cap)
{
	const char *env = getenv("E2E_PIN");
	int c = 0, r = 1;
	if (env && strcmp(env, "off") == 0) {
		snprintf(how, cap, "not pinned");
		return false;
	}
	if (env && sscanf(env, "%d,%d", &c, &r) != 2) {
		fprintf(stderr,
			"%s: E2E_PIN wants CLIENT,RECEIVER or off, got '%s'\n",
			prog, env);
		exit(2);
	}
	cpu_set_t mine;
	if (sched_getaffinity(0, sizeof(mine), &mine) != 0 || c == r || c < 0 ||
	    r < 0 || c >= CPU_SETSIZE || r >= CPU_SETSIZE ||
	    !CPU_ISSET(c, &mine) || !CPU_ISSET(r, &mine)) {
		snprintf(how, cap, "not pinned (CPUs %d,%d not both allowed)",
			 c, r);
		return false;
	}
	*client = c;
	*receiver = r;
	return true;
}

int e2e_pin_to(pid_t pid, int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	return sched_setaffinity(pid, sizeof(s), &s) == 0 ? 0 : -1;
}

double e2e_median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
			double t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

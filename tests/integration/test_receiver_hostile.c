/* The MLLP receiver facing hostile peers, on loopback: concurrent stops,
 * a flood of bytes outside frames (the log stays bounded and never stalls
 * the receiver, also when stderr is a pipe nobody reads), and clients that
 * pipeline frames without reading their replies (buffered bytes stay
 * within max_buffered_bytes). In each case an honest client on another
 * connection gets every message acknowledged within a deadline.
 * Ephemeral ports only; every wait is bounded; no sleep synchronises. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "common.h" /* ti_backend(): MLLP_TEST_BACKEND */
#include "netutil.h"

#define HONEST_MSGS 50
/* Liveness, not speed: the honest client gets every ACK within this. A
 * sanitized receiver reads the flood several times slower, and each of its
 * turns serves every flooding connection, so it gets longer. */
#define HONEST_DEADLINE_MS (TU_SANITIZED ? 30000 : 10000)
#define FLOOD_CONNS	   20
/* A flood lasts until the honest client is done, at most FLOOD_MS. */
#define FLOOD_MS  (HONEST_DEADLINE_MS + 5000)
#define JUNK_MIN  ((uint64_t)8 * 1024 * 1024)	/* bytes */
#define FLOOD_MAX ((uint64_t)256 * 1024 * 1024) /* bytes */

static void start_receiver(struct mllp_receiver_config *c,
			   struct mllp_receiver **rv)
{
	struct mllp_error err;
	int rc = mllp_receiver_create(c, rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		exit(77);
	}
	if (rc != 0)
		fprintf(stderr, "receiver start: %s\n", err.message);
	assert_int_equal(rc, 0);
}

/* ---- a log hook that counts -------------------------------------------- */

struct counter {
	_Atomic int lines;
	_Atomic int junk_lines;
	_Atomic int budget_lines;
};

static void count_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct counter *k = ctx;
	(void)l;
	atomic_fetch_add(&k->lines, 1);
	if (strstr(line, "discarding unexpected data"))
		atomic_fetch_add(&k->junk_lines, 1);
	if (strstr(line, "buffer budget exceeded"))
		atomic_fetch_add(&k->budget_lines, 1);
}

static void base_cfg(struct mllp_receiver_config *c, struct counter *k)
{
	mllp_receiver_config_init(c);
	c->address = "127.0.0.1";
	c->port = 0;
	c->dispatch = mllp_dispatch_echo;
	c->log = k ? count_log : NULL;
	c->log_ctx = k;
	c->ring_entries = 256;
	c->recv_buffers = 256;
	c->backend = ti_backend();
}

/* ---- flooders: many connections writing without reading ---------------- */

struct flood {
	uint16_t port;
	int n;
	int fds[64];
	const char *chunk;
	size_t chunk_len;
	uint64_t end_ms;    /* stop writing then */
	uint64_t max_bytes; /* or after this many bytes */
	_Atomic bool stop;  /* or when told */
	_Atomic bool running;
	_Atomic uint64_t sent;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	uint64_t sent = 0;
	while (!atomic_load(&f->stop) && tn_now_ms() < f->end_ms &&
	       sent < f->max_bytes) {
		bool any = false;
		for (int i = 0; i < f->n; i++) {
			ssize_t r = send(f->fds[i], f->chunk, f->chunk_len,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r > 0) {
				sent += (uint64_t)r;
				any = true;
			}
		}
		atomic_store(&f->sent, sent);
		if (!any) { /* every socket full (or closed): wait a little */
			struct pollfd p[64];
			for (int i = 0; i < f->n; i++)
				p[i] = (struct pollfd){.fd = f->fds[i],
						       .events = POLLOUT};
			poll(p, (nfds_t)f->n, 10);
		}
	}
	atomic_store(&f->running, false);
	return NULL;
}

static void flood_start(struct flood *f, pthread_t *th, uint16_t port, int n,
			int rcvbuf, const char *chunk, size_t chunk_len,
			uint64_t max_bytes)
{
	memset(f, 0, sizeof(*f));
	f->port = port;
	f->n = n;
	for (int i = 0; i < n; i++)
		f->fds[i] = tn_connect(port, rcvbuf);
	f->chunk = chunk;
	f->chunk_len = chunk_len;
	f->end_ms = tn_now_ms() + FLOOD_MS;
	f->max_bytes = max_bytes;
	atomic_store(&f->running, true);
	assert_int_equal(pthread_create(th, NULL, flood_main, f), 0);
	/* The honest client starts once the flood is under way. */
	uint64_t dl = tn_now_ms() + 5000;
	while (atomic_load(&f->sent) < 64 * 1024 && tn_now_ms() < dl)
		sched_yield();
}

/* Stop the flood once it has sent min_bytes (bounded wait). */
static void flood_end(struct flood *f, pthread_t th, uint64_t min_bytes)
{
	uint64_t dl = tn_now_ms() + 10000;
	while (atomic_load(&f->running) && atomic_load(&f->sent) < min_bytes &&
	       tn_now_ms() < dl)
		sched_yield();
	atomic_store(&f->stop, true);
	pthread_join(th, NULL);
	for (int i = 0; i < f->n; i++)
		close(f->fds[i]);
}

static char junk[1024];

/* ---- stop ---------------------------------------------------------------- */

struct stopper {
	struct mllp_receiver *rv;
	pthread_barrier_t *bar;
	int rc;
};

static void *stop_main(void *arg)
{
	struct stopper *s = arg;
	pthread_barrier_wait(s->bar);
	s->rc = mllp_receiver_stop(s->rv);
	return NULL;
}

static void stop_from_threads(struct mllp_receiver *rv)
{
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, 4);
	pthread_t th[4];
	struct stopper s[4];
	for (int i = 0; i < 4; i++) {
		s[i] = (struct stopper){.rv = rv, .bar = &bar, .rc = -1};
		assert_int_equal(pthread_create(&th[i], NULL, stop_main, &s[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(s[i].rc, 0);
	}
	pthread_barrier_destroy(&bar);
}

/* Four threads stop at once, then four again: every call returns 0, the
 * connection is closed, the port no longer accepts; destroy then works. */
static void test_stop_concurrent(void **state)
{
	(void)state;
	struct counter k = {0};
	struct mllp_receiver_config c;
	base_cfg(&c, &k);
	struct mllp_receiver *rv = NULL;
	start_receiver(&c, &rv);
	uint16_t port = mllp_receiver_port(rv);
	int fd = tn_connect(port, 0);
	assert_int_equal(
	    tn_honest_run(port, 1, tn_now_ms() + HONEST_DEADLINE_MS), 1);
	stop_from_threads(rv);
	char b;
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_true(recv(fd, &b, 1, 0) <= 0); /* closed by the stop */
	close(fd);
	stop_from_threads(rv);
	assert_int_equal(mllp_receiver_stop(rv), 0);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(s);
	mllp_receiver_destroy(rv);
}

/* ---- junk flood ------------------------------------------------------ */

/* Junk over 20 connections: the log stays within the rate limit (the
 * token bucket bounds every line, the receiver's start warning included:
 * MLLP_RECEIVER_LOG_BURST + MLLP_RECEIVER_LOG_RATE per second of its life), the
 * rest is counted, and the honest client is answered throughout. */
static void test_junk_flood_log_bounded(void **state)
{
	(void)state;
	struct counter k = {0};
	struct mllp_receiver_config c;
	base_cfg(&c, &k);
	uint64_t t0 = tn_now_ms();
	struct mllp_receiver *rv = NULL;
	start_receiver(&c, &rv);
	uint16_t port = mllp_receiver_port(rv);
	struct flood f;
	pthread_t th;
	flood_start(&f, &th, port, FLOOD_CONNS, 0, junk, sizeof(junk),
		    UINT64_MAX);
	int acked =
	    tn_honest_run(port, HONEST_MSGS, tn_now_ms() + HONEST_DEADLINE_MS);
	bool flooding = atomic_load(&f.running);
	flood_end(&f, th, JUNK_MIN);
	assert_int_equal(acked, HONEST_MSGS);
	assert_true(flooding); /* the honest client ran during the flood */
	/* Wait (bounded) until the receiver has read what was sent. */
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	uint64_t dl = tn_now_ms() + 10000;
	mllp_receiver_get_stats(rv, &st);
	while (st.connections_active > 0 && tn_now_ms() < dl) {
		sched_yield();
		mllp_receiver_get_stats(rv, &st);
	}
	mllp_receiver_stop(rv);
	uint64_t secs = (tn_now_ms() - t0 + 999) / 1000;
	mllp_receiver_get_stats(rv, &st);
	int lines = atomic_load(&k.lines);
	int bound =
	    (int)(MLLP_RECEIVER_LOG_BURST + MLLP_RECEIVER_LOG_RATE * secs);
	fprintf(stderr,
		"junk flood: %llu junk bytes in %llu s, %d log lines (bound "
		"%d), %llu suppressed\n",
		(unsigned long long)st.junk_bytes, (unsigned long long)secs,
		lines, bound, (unsigned long long)st.log_lines_suppressed);
	assert_true(st.junk_bytes >= JUNK_MIN); /* the flood did happen */
	assert_true(atomic_load(&k.junk_lines) >= 1);
	assert_true(lines <= bound);
	assert_true(st.log_lines_suppressed > 0);
	assert_int_equal(st.log_lines_dropped, 0); /* a hook never drops */
	mllp_receiver_destroy(rv);
}

struct piped {
	int saved; /* the real stderr */
	int rd, wr;
};

/* stderr becomes a full pipe that nobody reads. */
static void stderr_to_full_pipe(struct piped *p)
{
	int fds[2];
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
	p->rd = fds[0];
	p->wr = fds[1];
	fflush(stderr);
	p->saved = dup(STDERR_FILENO);
	assert_true(p->saved >= 0);
	assert_true(dup2(p->wr, STDERR_FILENO) == STDERR_FILENO);
}

static void fill_pipe(struct piped *p)
{
	/* O_NONBLOCK is on the description stderr shares: set it only to
	 * fill, then clear it again so a writer of stderr would block. */
	int fl = fcntl(p->wr, F_GETFL);
	fcntl(p->wr, F_SETFL, fl | O_NONBLOCK);
	static const char fill[4096] = {'.'};
	int n = 0;
	while (write(p->wr, fill, sizeof(fill)) > 0 && n++ < 100000)
		;
	fcntl(p->wr, F_SETFL, fl);
}

static void stderr_restore(struct piped *p)
{
	dup2(p->saved, STDERR_FILENO);
	close(p->saved);
	/* A writer still blocked on the pipe (there must be none) gets
	 * EPIPE now instead of waiting forever. */
	close(p->rd);
	close(p->wr);
}

/* The default log sink is a pipe nobody reads: the receiver drops lines
 * instead of blocking, and the honest client is answered in time. */
static void test_junk_flood_stderr_pipe(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	struct mllp_receiver_config c;
	base_cfg(&c, NULL); /* default sink: stderr */
	struct piped p;
	stderr_to_full_pipe(&p);
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_create(&c, &rv, &err);
	int acked = -1;
	bool flooding = false;
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	if (rc == 0) {
		fill_pipe(&p);
		uint16_t port = mllp_receiver_port(rv);
		struct flood f;
		pthread_t th;
		flood_start(&f, &th, port, FLOOD_CONNS, 0, junk, sizeof(junk),
			    UINT64_MAX);
		acked = tn_honest_run(port, HONEST_MSGS,
				      tn_now_ms() + HONEST_DEADLINE_MS);
		flooding = atomic_load(&f.running);
		flood_end(&f, th, JUNK_MIN);
		mllp_receiver_get_stats(rv, &st);
	}
	stderr_restore(&p);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		exit(77);
	}
	assert_int_equal(rc, 0);
	mllp_receiver_destroy(rv);
	fprintf(stderr, "stderr pipe: %d/%d acknowledged, %llu lines dropped\n",
		acked, HONEST_MSGS, (unsigned long long)st.log_lines_dropped);
	assert_int_equal(acked, HONEST_MSGS);
	assert_true(flooding); /* the honest client ran during the flood */
	assert_true(st.log_lines_dropped > 0);
}

/* ---- memory budget ---------------------------------------------------- */

/* The process's resident high-water mark (VmHWM), in bytes; 0 when
 * /proc does not say. */
static uint64_t rss_peak(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	char line[256];
	unsigned long long kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024u;
}

#define NONREADERS     40
#define BUDGET	       ((size_t)4 * 1024 * 1024)
#define RSS_GROWTH_MAX ((uint64_t)96 * 1024 * 1024)

/* Clients that pipeline frames and never read their ACKs: the receiver
 * pauses them (reply backlog, budget) and sheds the heaviest, so the bytes
 * it buffers never exceed max_buffered_bytes; the honest client still gets
 * every ACK in time. */
static void test_nonreaders_budget(void **state)
{
	(void)state;
	uint64_t rss0 = rss_peak();
	struct counter k = {0};
	struct mllp_receiver_config c;
	base_cfg(&c, &k);
	c.max_frame = 1024 * 1024;
	c.max_buffered_bytes = BUDGET;
	struct mllp_receiver *rv = NULL;
	start_receiver(&c, &rv);
	uint16_t port = mllp_receiver_port(rv);
	static char frames[16 * 1024];
	const char *fr = "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|P|P|2.5\r\x1c\r";
	size_t fl = strlen(fr), n = 0;
	while (n + fl <= sizeof(frames)) {
		memcpy(frames + n, fr, fl);
		n += fl;
	}
	struct flood f;
	pthread_t th;
	flood_start(&f, &th, port, NONREADERS, 4096, frames, n, FLOOD_MAX);
	int acked =
	    tn_honest_run(port, HONEST_MSGS, tn_now_ms() + HONEST_DEADLINE_MS);
	flood_end(&f, th, 0);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	mllp_receiver_stop(rv);
	uint64_t rss_growth = rss_peak() - rss0;
	fprintf(stderr,
		"non-readers: %llu bytes sent, %llu frames, buffered peak %llu "
		"(budget %zu), %llu pauses, %llu shed, RSS high-water +%llu "
		"KiB\n",
		(unsigned long long)atomic_load(&f.sent),
		(unsigned long long)st.messages_received,
		(unsigned long long)st.buffered_bytes_peak, BUDGET,
		(unsigned long long)st.reads_paused,
		(unsigned long long)st.connections_shed,
		(unsigned long long)(rss_growth / 1024));
	assert_int_equal(acked, HONEST_MSGS);
	/* Generous against allocator overhead; without the limits the
	 * replies alone took over 120 MiB here. Sanitizers keep shadow
	 * memory and quarantines: the bound is checked without them. */
	if (TU_SANITIZED)
		fprintf(stderr, "RSS bound not checked under a sanitizer\n");
	else
		assert_true(rss_growth < RSS_GROWTH_MAX);
	assert_true(st.buffered_bytes_peak > 0);
	assert_true(st.buffered_bytes_peak <= BUDGET);
	assert_true(st.buffered_bytes <= BUDGET);
	/* The limits did engage: without them the non-readers' replies
	 * would have grown far past the budget. */
	assert_true(st.reads_paused + st.connections_shed > 0);
	if (st.connections_shed > 0)
		assert_true(atomic_load(&k.budget_lines) >= 1);
	mllp_receiver_destroy(rv);
}

/* ---- reply backlog: pause, then resume -------------------------------- */

/* Frames the pipelining client writes before it reads: enough that their
 * ACKs overflow what the kernel can buffer for the connection (the
 * receiver's send buffer grows up to tcp_wmem's maximum), so the rest must
 * wait in the receiver and its reading pauses. */
static int pipelined_frames(void)
{
	long wmem_max = 4 * 1024 * 1024;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
	if (f) {
		long lo, def, hi;
		if (fscanf(f, "%ld %ld %ld", &lo, &def, &hi) == 3 && hi > 0)
			wmem_max = hi;
		fclose(f);
	}
	/* An ACK is over 60 bytes; twice the kernel's share, at least
	 * 20,000 frames. */
	long n = (2 * wmem_max + MLLP_RECEIVER_DEFAULT_REPLY_PAUSE) / 60;
	return n < 20000 ? 20000 : n > 2000000 ? 2000000 : (int)n;
}

static int pipelined;

struct writer {
	int fd;
	int sent; /* frames written */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	for (int i = 0; i < pipelined; i++) {
		char f[128];
		int len = snprintf(f, sizeof(f),
				   "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|P%d|P|"
				   "2.5\r\x1c\r",
				   i);
		if (send(w->fd, f, (size_t)len, MSG_NOSIGNAL) != len)
			break;
		w->sent++;
	}
	return NULL;
}

/* A client that pipelines without reading is paused once its unsent
 * replies exceed reply_backlog_pause (not closed); when it reads, the
 * receiver reads again and every reply arrives, in order. */
static void test_backlog_pause_resume(void **state)
{
	(void)state;
	pipelined = pipelined_frames();
	struct counter k = {0};
	struct mllp_receiver_config c;
	base_cfg(&c, &k);
	struct mllp_receiver *rv = NULL;
	start_receiver(&c, &rv);
	struct writer w = {.fd = tn_connect(mllp_receiver_port(rv), 4096)};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	uint64_t dl = tn_now_ms() + 10000;
	mllp_receiver_get_stats(rv, &st);
	while (st.reads_paused == 0 && tn_now_ms() < dl) {
		sched_yield();
		mllp_receiver_get_stats(rv, &st);
	}
	assert_true(st.reads_paused >= 1);
	/* Now read: every ACK, in order. */
	struct timeval tv = {.tv_sec = 10};
	setsockopt(w.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static char buf[1 << 16];
	size_t have = 0;
	int next = 0;
	dl = tn_now_ms() + 30000;
	while (next < pipelined && tn_now_ms() < dl) {
		ssize_t r = recv(w.fd, buf + have, sizeof(buf) - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
		char *p = buf, *end = buf + have, *eb;
		while ((eb = memchr(p, 0x1c, (size_t)(end - p))) &&
		       eb + 1 < end) {
			char want[32];
			int wl =
			    snprintf(want, sizeof(want), "MSA|AA|P%d", next);
			*eb = 0;
			const char *m = strstr(p, want);
			if (!m || (m[wl] >= '0' && m[wl] <= '9'))
				break;
			next++;
			p = eb + 2;
		}
		if (eb && eb + 1 < end)
			break; /* a reply out of order */
		have = (size_t)(end - p);
		memmove(buf, p, have);
	}
	pthread_join(th, NULL);
	mllp_receiver_get_stats(rv, &st);
	close(w.fd);
	mllp_receiver_destroy(rv);
	fprintf(stderr,
		"pipelined: %d sent, %d replies in order, %llu pauses\n",
		w.sent, next, (unsigned long long)st.reads_paused);
	assert_int_equal(w.sent, pipelined);
	assert_int_equal(next, pipelined);
	assert_int_equal(st.connections_error, 0);
}

/* A budget smaller than one frame cannot work: start refuses it. */
static void test_budget_config(void **state)
{
	(void)state;
	struct mllp_receiver_config c;
	base_cfg(&c, NULL);
	assert_int_equal(c.max_buffered_bytes,
			 MLLP_RECEIVER_DEFAULT_MAX_BUFFERED);
	assert_int_equal(c.reply_backlog_pause,
			 MLLP_RECEIVER_DEFAULT_REPLY_PAUSE);
	c.max_buffered_bytes = c.max_frame - 1;
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&c, &rv, &err),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err.message, "invalid receiver configuration");
	assert_null(rv);
}

int main(void)
{
	memset(junk, 'x', sizeof(junk));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stop_concurrent),
	    cmocka_unit_test(test_junk_flood_log_bounded),
	    cmocka_unit_test(test_junk_flood_stderr_pipe),
	    cmocka_unit_test(test_nonreaders_budget),
	    cmocka_unit_test(test_backlog_pause_resume),
	    cmocka_unit_test(test_budget_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

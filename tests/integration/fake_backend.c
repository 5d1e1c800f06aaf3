/* The fake backend of the pool engine tests (see fake_backend.h). */
#include "fake_backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/telemetry.h>

#include "timer.h"

#define FB_SOCKS   256
#define FB_FDS	   4096
#define FB_PENDING 256
#define FB_DATA	   512
#define FB_TRACE   (64 * 1024)
#define FB_SCRIPT  32

enum { K_CONNECT = 0, K_SEND, K_RECV, K_NKINDS };
static const char *const kind_name[K_NKINDS] = {"connect", "send", "recv"};

struct fb_sock {
	int fd;
	/* outstanding operations: token, 0 when none; final: the completion
	 * that ends it is queued already */
	uint64_t tok[K_NKINDS];
	bool final[K_NKINDS];
	bool connected; /* connect completion handed back with 0 */
	unsigned char wbuf[4096];
	size_t wlen;
	bool short_done;
	int send_mode;
};

struct fb_pending {
	uint64_t ready_us;
	int sock; /* serial */
	int kind;
	struct mllpi_cqe cqe;
	unsigned char data[FB_DATA];
};

struct fb_script_q {
	int q[FB_SCRIPT];
	int head, n;
	int dflt;
};

static struct fb {
	pthread_mutex_t mu;
	pthread_cond_t cv;	/* manager blocked in wait */
	pthread_cond_t cv_test; /* test waiting for quiescence */
	_Atomic uint64_t now;
	uint64_t limit;
	bool blocked;
	uint64_t wait_dl; /* deadline of the blocked wait */
	bool woken;
	struct fb_sock socks[FB_SOCKS + 1];
	int nsocks;
	int fd_sock[FB_FDS];
	struct fb_pending pend[FB_PENDING];
	int npend;
	unsigned char out_data[64][FB_DATA];
	struct fb_script_q script[FB_OPS_];
	uint64_t reply_delay_us;
	char trace[FB_TRACE];
	size_t tlen;
	unsigned tkind[FB_TRACE / 8]; /* kind of each line */
	int tlines;
	char viol[1024];
	char out[FB_TRACE];
} fb = {.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.cv_test = PTHREAD_COND_INITIALIZER};

static uint64_t fb_clock(void *ctx)
{
	(void)ctx;
	/* relaxed: written by the manager inside wait(), or by the test
	 * while the manager is blocked (ordered by fb.mu) */
	return atomic_load_explicit(&fb.now, memory_order_relaxed);
}

/* ---- trace -------------------------------------------------------------- */

static void trace_locked(unsigned kind, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void trace_locked(unsigned kind, const char *fmt, ...)
{
	uint64_t t = fb_clock(NULL) - FB_T0_US;
	char line[512];
	int n;
	if (t % 1000)
		n = snprintf(line, sizeof(line), "%llu.%03llu ",
			     (unsigned long long)(t / 1000),
			     (unsigned long long)(t % 1000));
	else
		n = snprintf(line, sizeof(line), "%llu ",
			     (unsigned long long)(t / 1000));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	size_t l = strlen(line);
	if (fb.tlen + l + 2 > FB_TRACE ||
	    fb.tlines == (int)(sizeof(fb.tkind) / sizeof(fb.tkind[0])))
		return;
	memcpy(fb.trace + fb.tlen, line, l);
	fb.tlen += l;
	fb.trace[fb.tlen++] = '\n';
	fb.trace[fb.tlen] = 0;
	fb.tkind[fb.tlines++] = kind;
}

static void violation_locked(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void violation_locked(const char *fmt, ...)
{
	size_t n = strlen(fb.viol);
	if (n + 2 >= sizeof(fb.viol))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fb.viol + n, sizeof(fb.viol) - n - 1, fmt, ap);
	va_end(ap);
	n = strlen(fb.viol);
	fb.viol[n] = '\n';
	fb.viol[n + 1] = 0;
}

/* "0", "120", "EOF" for a recv's 0, or the errno's name. */
static const char *res_text(int kind, int res, char *buf, size_t cap)
{
	static const struct {
		int e;
		const char *name;
	} names[] = {{ECANCELED, "ECANCELED"},
		     {ECONNREFUSED, "ECONNREFUSED"},
		     {ECONNRESET, "ECONNRESET"},
		     {EPIPE, "EPIPE"},
		     {ETIMEDOUT, "ETIMEDOUT"}};
	if (res == 0 && kind == K_RECV)
		return "EOF";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (res == -names[i].e)
			return names[i].name;
	snprintf(buf, cap, "%d", res);
	return buf;
}

/* ---- script ------------------------------------------------------------- */

static int script_take_locked(enum fb_op op)
{
	struct fb_script_q *s = &fb.script[op];
	if (s->n == 0)
		return s->dflt;
	int m = s->q[s->head];
	s->head = (s->head + 1) % FB_SCRIPT;
	s->n--;
	return m;
}

void fb_default(enum fb_op op, enum fb_mode m)
{
	pthread_mutex_lock(&fb.mu);
	fb.script[op].dflt = (int)m;
	pthread_mutex_unlock(&fb.mu);
}

void fb_next(enum fb_op op, enum fb_mode m)
{
	pthread_mutex_lock(&fb.mu);
	struct fb_script_q *s = &fb.script[op];
	if (s->n < FB_SCRIPT) {
		s->q[(s->head + s->n) % FB_SCRIPT] = (int)m;
		s->n++;
	}
	pthread_mutex_unlock(&fb.mu);
}

void fb_reply_delay_ms(uint64_t ms)
{
	pthread_mutex_lock(&fb.mu);
	fb.reply_delay_us = ms * 1000u;
	pthread_mutex_unlock(&fb.mu);
}

/* ---- completions -------------------------------------------------------- */

static void push_locked(int sock, int kind, int res, const void *data,
			size_t len, bool more, uint64_t delay_us)
{
	if (fb.npend == FB_PENDING) {
		violation_locked("too many pending completions");
		return;
	}
	struct fb_sock *s = &fb.socks[sock];
	struct fb_pending *p = &fb.pend[fb.npend++];
	p->ready_us = fb_clock(NULL) + delay_us;
	p->sock = sock;
	p->kind = kind;
	p->cqe.token = s->tok[kind];
	p->cqe.res = res;
	p->cqe.more = kind == K_RECV && more;
	p->cqe.data = NULL;
	if (len > sizeof(p->data))
		len = sizeof(p->data);
	if (data)
		memcpy(p->data, data, len);
	if (!p->cqe.more)
		s->final[kind] = true;
	pthread_cond_broadcast(&fb.cv);
}

static struct fb_sock *sock_of_locked(int fd, int *serial, const char *op)
{
	int n = fd >= 0 && fd < FB_FDS ? fb.fd_sock[fd] : 0;
	if (n == 0) {
		violation_locked("%s on fd %d never connected", op, fd);
		return NULL;
	}
	*serial = n;
	return &fb.socks[n];
}

static int fake_create(const struct mllpi_backend_config *cfg,
		       struct mllpi_backend **out, struct mllp_error *err)
{
	(void)cfg;
	(void)err;
	*out = (struct mllpi_backend *)(void *)&fb;
	return 0;
}

static void fake_destroy(struct mllpi_backend *b)
{
	(void)b;
}

static int fake_connect(struct mllpi_backend *b, int fd,
			const struct sockaddr *sa, socklen_t len,
			uint64_t token)
{
	(void)b;
	(void)sa;
	(void)len;
	pthread_mutex_lock(&fb.mu);
	if (fd < 0 || fd >= FB_FDS || fb.nsocks == FB_SOCKS) {
		violation_locked("connect: fd %d or too many sockets", fd);
		pthread_mutex_unlock(&fb.mu);
		return -EMFILE;
	}
	int old = fb.fd_sock[fd];
	for (int k = 0; old && k < K_NKINDS; k++)
		if (fb.socks[old].tok[k])
			violation_locked(
			    "s%d: fd %d reused with %s outstanding", old, fd,
			    kind_name[k]);
	int n = ++fb.nsocks;
	struct fb_sock *s = &fb.socks[n];
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	fb.fd_sock[fd] = n;
	s->tok[K_CONNECT] = token;
	trace_locked(FB_T_OPS, "connect s%d", n);
	int m = script_take_locked(FB_CONNECT);
	if (m == FB_CONNECT_OK)
		push_locked(n, K_CONNECT, 0, NULL, 0, false, 0);
	else if (m == FB_CONNECT_REFUSE)
		push_locked(n, K_CONNECT, -ECONNREFUSED, NULL, 0, false, 0);
	pthread_mutex_unlock(&fb.mu);
	return 0;
}

/* The MSH-10 of the HL7 message in buf (framed), or "" */
static void msh10(const unsigned char *buf, size_t len, char *out, size_t cap)
{
	out[0] = 0;
	const char *m = memmem(buf, len, "MSH|", 4);
	if (!m)
		return;
	const char *end = (const char *)buf + len;
	const char *f = m + 4;
	for (int i = 0; i < 8 && f < end; i++) {
		const char *bar = memchr(f, '|', (size_t)(end - f));
		if (!bar)
			return;
		f = bar + 1;
	}
	size_t n = 0;
	while (f + n < end && f[n] != '|' && f[n] != '\r' && n + 1 < cap)
		n++;
	memcpy(out, f, n);
	out[n] = 0;
}

/* Answer on s's recv as mode m says (id: the MSH-10 to acknowledge),
 * delay_us from now. */
static void answer_locked(int serial, struct fb_sock *s, int m, const char *id,
			  uint64_t delay_us)
{
	if (m == FB_REPLY_NONE)
		return;
	if (!s->tok[K_RECV] || s->final[K_RECV]) {
		violation_locked("s%d: reply due but no recv armed", serial);
		return;
	}
	char r[FB_DATA];
	int l = 0;
	int res;
	switch (m) {
	case FB_REPLY_ACK:
	case FB_REPLY_WRONG_ID:
		l = snprintf(r, sizeof(r),
			     "\x0bMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||"
			     "ACK|A%s|P|2.5\rMSA|AA|%s\r\x1c\r",
			     id, m == FB_REPLY_ACK ? id : "WRONG");
		res = l;
		break;
	case FB_REPLY_JUNK:
		l = snprintf(r, sizeof(r), "junk\r\n");
		res = l;
		break;
	case FB_REPLY_EOF:
		res = 0;
		break;
	default:
		res = -ECONNRESET;
		break;
	}
	push_locked(serial, K_RECV, res, r, (size_t)l, res > 0, delay_us);
}

/* The frame written on s is complete: answer it as the script says. */
static void reply_locked(int serial, struct fb_sock *s)
{
	int m = script_take_locked(FB_REPLY);
	char id[64];
	msh10(s->wbuf, s->wlen, id, sizeof(id));
	s->wlen = 0;
	answer_locked(serial, s, m, id, fb.reply_delay_us);
}

void fb_peer(int sock, enum fb_mode m)
{
	pthread_mutex_lock(&fb.mu);
	if (sock < 1 || sock > fb.nsocks)
		violation_locked("fb_peer: no socket s%d", sock);
	else
		answer_locked(sock, &fb.socks[sock], (int)m, "", 0);
	pthread_mutex_unlock(&fb.mu);
}

bool fb_peer_last(enum fb_mode m, const char *id)
{
	pthread_mutex_lock(&fb.mu);
	int n = fb.nsocks;
	struct fb_sock *s = n > 0 ? &fb.socks[n] : NULL;
	bool ok = s && s->tok[K_RECV] && !s->final[K_RECV];
	if (ok)
		answer_locked(n, s, (int)m, id, 0);
	pthread_mutex_unlock(&fb.mu);
	return ok;
}

static int fake_sendmsg(struct mllpi_backend *b, int fd,
			const struct msghdr *msg, uint64_t token)
{
	(void)b;
	pthread_mutex_lock(&fb.mu);
	int n;
	struct fb_sock *s = sock_of_locked(fd, &n, "send");
	if (!s) {
		pthread_mutex_unlock(&fb.mu);
		return -EBADF;
	}
	if (!s->connected || s->tok[K_SEND])
		violation_locked("s%d: send %s", n,
				 s->tok[K_SEND] ? "while one is outstanding"
						: "before connected");
	size_t total = 0;
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	s->tok[K_SEND] = token;
	s->final[K_SEND] = false;
	trace_locked(FB_T_OPS, "send s%d %zu", n, total);
	if (s->wlen == 0) {
		s->send_mode = script_take_locked(FB_SEND);
		s->short_done = false;
	}
	size_t w = total;
	switch (s->send_mode) {
	case FB_SEND_FAIL:
		push_locked(n, K_SEND, -EPIPE, NULL, 0, false, 0);
		pthread_mutex_unlock(&fb.mu);
		return 0;
	case FB_SEND_HANG:
		pthread_mutex_unlock(&fb.mu);
		return 0;
	case FB_SEND_SHORT:
		if (!s->short_done) {
			w = total / 2;
			s->short_done = true;
		}
		break;
	default:
		break;
	}
	/* gather the w bytes written */
	size_t left = w;
	for (size_t i = 0; i < msg->msg_iovlen && left; i++) {
		size_t l = msg->msg_iov[i].iov_len < left
			       ? msg->msg_iov[i].iov_len
			       : left;
		if (s->wlen + l <= sizeof(s->wbuf))
			memcpy(s->wbuf + s->wlen, msg->msg_iov[i].iov_base, l);
		s->wlen += l;
		left -= l;
	}
	push_locked(n, K_SEND, (int)w, NULL, 0, false, 0);
	if (s->wlen >= 2 && s->wbuf[s->wlen - 2] == 0x1c &&
	    s->wbuf[s->wlen - 1] == 0x0d)
		reply_locked(n, s);
	pthread_mutex_unlock(&fb.mu);
	return 0;
}

static int fake_recv(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	pthread_mutex_lock(&fb.mu);
	int n;
	struct fb_sock *s = sock_of_locked(fd, &n, "recv");
	if (s) {
		if (!s->connected || s->tok[K_RECV])
			violation_locked("s%d: recv %s", n,
					 s->tok[K_RECV]
					     ? "while one is outstanding"
					     : "before connected");
		s->tok[K_RECV] = token;
		s->final[K_RECV] = false;
		trace_locked(FB_T_OPS, "recv s%d", n);
	}
	pthread_mutex_unlock(&fb.mu);
	return s ? 0 : -EBADF;
}

static int fake_accept(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	(void)fd;
	(void)token;
	return -EOPNOTSUPP;
}

/* Every outstanding operation of the socket completes with -ECANCELED,
 * but for completions already due (the kernel had them). */
static int fake_cancel_fd(struct mllpi_backend *b, int fd, uint64_t token)
{
	(void)b;
	pthread_mutex_lock(&fb.mu);
	int n;
	struct fb_sock *s = sock_of_locked(fd, &n, "cancel");
	if (!s) {
		pthread_mutex_unlock(&fb.mu);
		return -EBADF;
	}
	if (token)
		violation_locked("s%d: cancel with a token", n);
	trace_locked(FB_T_OPS, "cancel s%d", n);
	uint64_t now = fb_clock(NULL);
	int j = 0;
	for (int i = 0; i < fb.npend; i++) {
		struct fb_pending *p = &fb.pend[i];
		if (p->sock == n && p->ready_us > now) {
			s->final[p->kind] = false;
			continue;
		}
		if (j != i)
			fb.pend[j] = *p;
		j++;
	}
	fb.npend = j;
	for (int k = 0; k < K_NKINDS; k++)
		if (s->tok[k] && !s->final[k])
			push_locked(n, k, -ECANCELED, NULL, 0, false, 0);
	pthread_mutex_unlock(&fb.mu);
	return 0;
}

/* Hand back up to max completions due now; 0 when none. */
static int take_due_locked(struct mllpi_cqe *out, int max)
{
	uint64_t now = fb_clock(NULL);
	int got = 0, j = 0;
	char rb[32];
	if (max > 64)
		max = 64;
	for (int i = 0; i < fb.npend; i++) {
		struct fb_pending *p = &fb.pend[i];
		if (got == max || p->ready_us > now) {
			if (j != i)
				fb.pend[j] = *p;
			j++;
			continue;
		}
		struct fb_sock *s = &fb.socks[p->sock];
		out[got] = p->cqe;
		if (p->kind == K_RECV && p->cqe.res > 0) {
			memcpy(fb.out_data[got], p->data, FB_DATA);
			out[got].data = fb.out_data[got];
		}
		if (!p->cqe.more)
			s->tok[p->kind] = 0;
		if (p->kind == K_CONNECT && p->cqe.res == 0)
			s->connected = true;
		trace_locked(FB_T_DONE, "done s%d %s %s", p->sock,
			     kind_name[p->kind],
			     res_text(p->kind, p->cqe.res, rb, sizeof(rb)));
		got++;
	}
	fb.npend = j;
	return got;
}

static uint64_t next_ready_locked(void)
{
	uint64_t t = UINT64_MAX;
	for (int i = 0; i < fb.npend; i++)
		if (fb.pend[i].ready_us < t)
			t = fb.pend[i].ready_us;
	return t;
}

static int fake_wait(struct mllpi_backend *b, int64_t timeout_us,
		     struct mllpi_cqe *out, int max)
{
	(void)b;
	pthread_mutex_lock(&fb.mu);
	uint64_t now = fb_clock(NULL);
	uint64_t dl = timeout_us < 0 ? UINT64_MAX : now + (uint64_t)timeout_us;
	int got;
	for (;;) {
		got = take_due_locked(out, max);
		if (got > 0 || fb.woken)
			break;
		now = fb_clock(NULL);
		if (now >= dl)
			break;
		uint64_t next = next_ready_locked();
		if (dl < next)
			next = dl;
		if (next <= fb.limit) {
			atomic_store_explicit(&fb.now, next,
					      memory_order_relaxed);
			continue;
		}
		fb.blocked = true;
		fb.wait_dl = dl;
		pthread_cond_broadcast(&fb.cv_test);
		pthread_cond_wait(&fb.cv, &fb.mu);
		fb.blocked = false;
	}
	fb.woken = false;
	pthread_mutex_unlock(&fb.mu);
	return got;
}

static void fake_wake(struct mllpi_backend *b)
{
	(void)b;
	pthread_mutex_lock(&fb.mu);
	fb.woken = true;
	pthread_cond_broadcast(&fb.cv);
	pthread_mutex_unlock(&fb.mu);
}

const struct mllpi_backend_ops fb_ops = {
    .name = "fake",
    .nonblocking_sockets = true,
    .create = fake_create,
    .destroy = fake_destroy,
    .connect = fake_connect,
    .sendmsg = fake_sendmsg,
    .recv = fake_recv,
    .accept = fake_accept,
    .cancel_fd = fake_cancel_fd,
    .wait = fake_wait,
    .wake = fake_wake,
};

/* ---- the test's side ---------------------------------------------------- */

/* The manager sleeps in wait() and nothing due by the limit can wake it. */
static bool quiet_locked(void)
{
	return fb.blocked && !fb.woken && fb.wait_dl > fb.limit &&
	       next_ready_locked() > fb.limit;
}

static void settle_locked(void)
{
	pthread_cond_broadcast(&fb.cv);
	while (!quiet_locked())
		pthread_cond_wait(&fb.cv_test, &fb.mu);
}

void fb_run_until(uint64_t ms)
{
	pthread_mutex_lock(&fb.mu);
	uint64_t t = FB_T0_US + ms * 1000u;
	if (t > fb.limit)
		fb.limit = t;
	settle_locked();
	if (fb_clock(NULL) < t)
		atomic_store_explicit(&fb.now, t, memory_order_relaxed);
	pthread_mutex_unlock(&fb.mu);
}

void fb_settle(void)
{
	pthread_mutex_lock(&fb.mu);
	settle_locked();
	pthread_mutex_unlock(&fb.mu);
}

uint64_t fb_now_ms(void)
{
	return (fb_clock(NULL) - FB_T0_US) / 1000u;
}

const char *fb_trace(unsigned mask)
{
	pthread_mutex_lock(&fb.mu);
	size_t o = 0;
	const char *line = fb.trace;
	for (int i = 0; i < fb.tlines; i++) {
		const char *nl = strchr(line, '\n');
		size_t l = (size_t)(nl - line) + 1;
		if (fb.tkind[i] & mask) {
			memcpy(fb.out + o, line, l);
			o += l;
		}
		line = nl + 1;
	}
	fb.out[o] = 0;
	pthread_mutex_unlock(&fb.mu);
	return fb.out;
}

void fb_trace_clear(void)
{
	pthread_mutex_lock(&fb.mu);
	fb.tlen = 0;
	fb.tlines = 0;
	fb.trace[0] = 0;
	pthread_mutex_unlock(&fb.mu);
}

const char *fb_violations(void)
{
	return fb.viol;
}

static void fb_telemetry(void *ctx, const struct mllp_event *e)
{
	(void)ctx;
	pthread_mutex_lock(&fb.mu);
	char what[160] = "";
	if (e->error) {
		const char *name = mllp_err_name(e->error->reason);
		if (strncmp(name, "MLLP_ERR_", 9) == 0)
			name += 9;
		snprintf(what, sizeof(what), " %s", name);
	}
	if (e->kind == MLLP_EV_CONNECTION_FAILURE ||
	    e->kind == MLLP_EV_CONNECTION_CLOSED)
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
			 " delay %llu",
			 (unsigned long long)e->reconnect_delay_ms);
	trace_locked(FB_T_EVENT, "event %s conn%u%s", mllp_event_name(e->kind),
		     e->connection_id, what);
	pthread_mutex_unlock(&fb.mu);
}

static void fb_log(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	pthread_mutex_lock(&fb.mu);
	trace_locked(FB_T_LOG, "log %s", line);
	pthread_mutex_unlock(&fb.mu);
}

void fb_config(struct mllp_pool_config *cfg)
{
	mllp_pool_config_init(cfg);
	cfg->telemetry = fb_telemetry;
	cfg->log = fb_log;
	cfg->ring_entries = 64;
	cfg->recv_buffers = 64;
}

void fb_init(void)
{
	pthread_mutex_lock(&fb.mu);
	fb.tlen = 0;
	fb.tlines = 0;
	fb.trace[0] = 0;
	fb.viol[0] = 0;
	fb.nsocks = 0;
	fb.npend = 0;
	memset(fb.fd_sock, 0, sizeof(fb.fd_sock));
	memset(fb.script, 0, sizeof(fb.script));
	fb.script[FB_CONNECT].dflt = FB_CONNECT_OK;
	fb.script[FB_SEND].dflt = FB_SEND_ALL;
	fb.script[FB_REPLY].dflt = FB_REPLY_ACK;
	fb.reply_delay_us = 0;
	fb.blocked = fb.woken = false;
	atomic_store_explicit(&fb.now, FB_T0_US, memory_order_relaxed);
	fb.limit = FB_T0_US;
	pthread_mutex_unlock(&fb.mu);
	mllpi_clock_override(fb_clock, NULL);
}

void fb_fini(void)
{
	mllpi_clock_override(NULL, NULL);
	pthread_mutex_lock(&fb.mu);
	for (int n = 1; n <= fb.nsocks; n++)
		for (int k = 0; k < K_NKINDS; k++)
			if (fb.socks[n].tok[k])
				violation_locked("s%d: %s outstanding at the "
						 "end",
						 n, kind_name[k]);
	pthread_mutex_unlock(&fb.mu);
}

/* Fault-injection receiver (see faultrecv.h). */
#include "faultrecv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/framer.h>
#include <mllp/hl7.h>

#include "testutil.h"

enum { FR_REQ_LISTEN_OFF = 1, FR_REQ_LISTEN_ON, FR_REQ_RESTART, FR_REQ_DOWN };

enum op_kind { OP_WRITE = 0, OP_PAUSE, OP_CLOSE, OP_RST };

struct fr_op {
	enum op_kind kind;
	unsigned char *data; /* OP_WRITE: owned */
	size_t len, off;
	long us; /* OP_PAUSE */
};

struct fr_conn {
	int fd;
	bool reading;
	struct mllp_decoder dec;
	struct fr_op *ops;
	size_t nops, head, cap;
	uint64_t ready_at; /* µs: the script waits until then */
};

struct fr_priv {
	int lfd;
	struct fr_conn *conns;
	int nconns;
	uint64_t rng;
	uint64_t ack_seq;
};

static const char *const names[FR_COUNT] = {
    "reject",
    "accept_close",
    "unsolicited",
    "stop_reading",
    "close_no_reply",
    "rst_mid_reply",
    "no_reply",
    "bytewise",
    "split_eb_cr",
    "junk_before",
    "data_after",
    "wrong_id",
    "ae",
    "ar",
    "ce",
    "cr",
    "no_trailer",
    "oversize",
    "double",
};

const char *fr_fault_name(enum fr_fault f)
{
	return (unsigned)f < FR_COUNT ? names[f] : "?";
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t rng_next(struct fr_priv *p)
{
	/* xorshift64* */
	uint64_t x = p->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	p->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Draw one fault in [from, to): the first whose probability fires and
 * whose limit is not reached. -1 for none. */
static int draw(struct fr *r, int from, int to)
{
	struct fr_priv *p = r->priv;
	for (int f = from; f < to; f++) {
		uint32_t ppm = atomic_load(&r->prob[f]);
		if (!ppm)
			continue;
		if (rng_next(p) % 1000000u >= ppm)
			continue;
		uint32_t lim = atomic_load(&r->limit[f]);
		uint32_t got = atomic_fetch_add(&r->fired[f], 1);
		if (lim && got >= lim) {
			atomic_fetch_sub(&r->fired[f], 1);
			continue;
		}
		return f;
	}
	return -1;
}

/* ---- listener ----------------------------------------------------------- */

static int open_listener(struct fr *r, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	/* The port may linger briefly after a close: retry, bounded. */
	uint64_t end = now_us() + 2000000u;
	while (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (errno != EADDRINUSE || now_us() > end) {
			close(fd);
			return -1;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	if (listen(fd, r->cfg.backlog) != 0) {
		close(fd);
		return -1;
	}
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	r->port = ntohs(a.sin_port);
	return fd;
}

/* ---- connections and their scripts --------------------------------------- */

static void push_op(struct fr_conn *c, enum op_kind k, const void *data,
		    size_t len, long us)
{
	if (c->nops == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		c->ops = realloc(c->ops, ncap * sizeof(*c->ops));
		assert_non_null(c->ops);
		c->cap = ncap;
	}
	struct fr_op *o = &c->ops[c->nops++];
	memset(o, 0, sizeof(*o));
	o->kind = k;
	o->us = us;
	if (k == OP_WRITE) {
		o->data = malloc(len ? len : 1);
		assert_non_null(o->data);
		memcpy(o->data, data, len);
		o->len = len;
	}
}

static void write_bytes(struct fr_conn *c, const void *data, size_t len)
{
	push_op(c, OP_WRITE, data, len, 0);
}

static void conn_free(struct fr *r, struct fr_conn *c, bool rst)
{
	if (rst) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(c->fd);
	c->fd = -1;
	mllp_decoder_free(&c->dec);
	for (size_t i = c->head; i < c->nops; i++)
		free(c->ops[i].data);
	free(c->ops);
	c->ops = NULL;
	c->nops = c->head = c->cap = 0;
	atomic_fetch_sub(&r->open_conns, 1);
}

size_t fr_build_ack(const unsigned char *msg, size_t len, const char *code,
		    const char *control_id, char *out, size_t cap)
{
	struct mllp_hl7_msg m;
	char id[128];
	if (mllp_hl7_parse(&m, msg, len) == 0 && m.control_id.len > 0 &&
	    m.control_id.len < sizeof(id)) {
		memcpy(id, m.control_id.ptr, m.control_id.len);
		id[m.control_id.len] = 0;
	} else {
		snprintf(id, sizeof(id), "UNKNOWN");
	}
	int n = snprintf(out, cap,
			 "MSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK^A01^"
			 "ACK|ACK%s|P|2.5\rMSA|%s|%s|fault receiver\r",
			 id, code, control_id ? control_id : id);
	return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

/* Script the reply to one message according to the fault drawn. Returns
 * false when the connection is to be closed now (FIN). */
static bool script_reply(struct fr *r, struct fr_conn *c,
			 const unsigned char *msg, size_t len)
{
	struct fr_priv *p = r->priv;
	int f = draw(r, FR_FIRST_MSG_FAULT, FR_COUNT);
	static const unsigned char sb = MLLP_SB, eb = MLLP_EB, cr = MLLP_CR;
	char ack[1024];
	const char *code = "AA";
	const char *id = NULL;
	char wrong[64];
	switch (f) {
	case FR_CLOSE_NO_REPLY:
		return false;
	case FR_NO_REPLY:
		return true;
	case FR_AE:
		code = "AE";
		break;
	case FR_AR:
		code = "AR";
		break;
	case FR_CE:
		code = "CE";
		break;
	case FR_CR:
		code = "CR";
		break;
	case FR_WRONG_ID:
		snprintf(wrong, sizeof(wrong), "WRONG%llu",
			 (unsigned long long)++p->ack_seq);
		id = wrong;
		break;
	default:
		break;
	}
	struct mllp_hl7_msg m;
	bool hl7 = mllp_hl7_parse(&m, msg, len) == 0 && m.control_id.len > 0;
	const unsigned char *body = msg;
	size_t blen = len;
	if (hl7) {
		blen = fr_build_ack(msg, len, code, id, ack, sizeof(ack));
		body = (const unsigned char *)ack;
	}
	switch (f) {
	case FR_RST_MID_REPLY:
		write_bytes(c, &sb, 1);
		write_bytes(c, body, blen / 2);
		push_op(c, OP_PAUSE, NULL, 0, 2000);
		push_op(c, OP_RST, NULL, 0, 0);
		return true;
	case FR_BYTEWISE: {
		long us = r->cfg.byte_pause_us;
		write_bytes(c, &sb, 1);
		for (size_t i = 0; i < blen; i++) {
			push_op(c, OP_PAUSE, NULL, 0, us);
			write_bytes(c, body + i, 1);
		}
		push_op(c, OP_PAUSE, NULL, 0, us);
		write_bytes(c, &eb, 1);
		push_op(c, OP_PAUSE, NULL, 0, us);
		write_bytes(c, &cr, 1);
		return true;
	}
	case FR_SPLIT_EB_CR:
		write_bytes(c, &sb, 1);
		write_bytes(c, body, blen);
		write_bytes(c, &eb, 1);
		push_op(c, OP_PAUSE, NULL, 0, r->cfg.split_pause_us);
		write_bytes(c, &cr, 1);
		return true;
	case FR_NO_TRAILER:
		write_bytes(c, &sb, 1);
		write_bytes(c, body, blen);
		return true;
	case FR_OVERSIZE: {
		size_t n = r->cfg.oversize + 3;
		unsigned char *big = malloc(n);
		assert_non_null(big);
		memset(big, 'x', n);
		big[0] = MLLP_SB;
		big[n - 2] = MLLP_EB;
		big[n - 1] = MLLP_CR;
		write_bytes(c, big, n);
		free(big);
		return true;
	}
	default:
		break;
	}
	/* One frame (plus junk before / after, or a second frame). */
	size_t n = 0;
	unsigned char *out = malloc(2 * blen + 64);
	assert_non_null(out);
	if (f == FR_JUNK_BEFORE) {
		memcpy(out, "junk!", 5);
		n = 5;
	}
	out[n++] = MLLP_SB;
	memcpy(out + n, body, blen);
	n += blen;
	out[n++] = MLLP_EB;
	out[n++] = MLLP_CR;
	if (f == FR_DATA_AFTER) {
		memcpy(out + n, "after", 5);
		n += 5;
	}
	if (f == FR_DOUBLE && r->cfg.double_pause_us > 0) {
		write_bytes(c, out, n);
		push_op(c, OP_PAUSE, NULL, 0, r->cfg.double_pause_us);
	} else if (f == FR_DOUBLE) {
		memcpy(out + n, out, n); /* both frames in one write */
		n *= 2;
	}
	write_bytes(c, out, n);
	free(out);
	if (hl7 && (f < 0 || f == FR_BYTEWISE || f == FR_SPLIT_EB_CR))
		atomic_fetch_add(&r->replies, 1);
	return true;
}

/* Run the script as far as it goes without blocking. Returns false when
 * the connection is gone. */
static bool run_script(struct fr *r, struct fr_conn *c, uint64_t now)
{
	while (c->head < c->nops) {
		if (c->ready_at > now)
			return true;
		struct fr_op *o = &c->ops[c->head];
		switch (o->kind) {
		case OP_WRITE:
			while (o->off < o->len) {
				ssize_t w = send(c->fd, o->data + o->off,
						 o->len - o->off,
						 MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0 &&
				    (errno == EAGAIN || errno == EWOULDBLOCK))
					return true; /* wait for POLLOUT */
				if (w <= 0) {
					conn_free(r, c, false);
					return false;
				}
				o->off += (size_t)w;
			}
			free(o->data);
			o->data = NULL;
			break;
		case OP_PAUSE:
			c->ready_at = now + (uint64_t)o->us;
			c->head++;
			now = now_us();
			continue;
		case OP_CLOSE:
			conn_free(r, c, false);
			return false;
		case OP_RST:
			conn_free(r, c, true);
			return false;
		}
		c->head++;
	}
	c->head = c->nops = 0;
	return true;
}

/* Accept one connection: 1 added (last in the table), 0 none pending,
 * -1 accepted and dropped (table full). */
static int accept_one(struct fr *r)
{
	struct fr_priv *p = r->priv;
	int fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return 0;
	atomic_fetch_add(&r->accepted, 1);
	atomic_fetch_add(&r->open_conns, 1);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (p->nconns >= r->cfg.max_conns) {
		close(fd);
		atomic_fetch_sub(&r->open_conns, 1);
		return -1;
	}
	struct fr_conn *c = &p->conns[p->nconns++];
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->reading = true;
	mllp_decoder_init(&c->dec, NULL, NULL);
	int f = draw(r, 0, FR_FIRST_MSG_FAULT);
	if (f == FR_REJECT) {
		push_op(c, OP_RST, NULL, 0, 0);
	} else if (f == FR_ACCEPT_CLOSE) {
		push_op(c, OP_CLOSE, NULL, 0, 0);
	} else if (f == FR_UNSOLICITED) {
		static const char unsol[] =
		    "\vMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK^A01^"
		    "ACK|UNSOL|P|2.5\rMSA|AA|NOBODY\r\x1c\r";
		write_bytes(c, unsol, sizeof(unsol) - 1);
	} else if (f == FR_STOP_READING) {
		c->reading = false;
	}
	return 1;
}

static void close_all(struct fr *r)
{
	struct fr_priv *p = r->priv;
	for (int i = 0; i < p->nconns; i++)
		conn_free(r, &p->conns[i], false);
	p->nconns = 0;
}

static void handle_request(struct fr *r)
{
	struct fr_priv *p = r->priv;
	pthread_mutex_lock(&r->mu);
	int req = r->req;
	r->req = 0;
	pthread_mutex_unlock(&r->mu);
	if (req == FR_REQ_LISTEN_OFF || req == FR_REQ_RESTART ||
	    req == FR_REQ_DOWN) {
		if (p->lfd >= 0) {
			close(p->lfd);
			p->lfd = -1;
			atomic_store(&r->listening, 0);
		}
	}
	if (req == FR_REQ_RESTART || req == FR_REQ_DOWN) {
		close_all(r);
		atomic_fetch_add(&r->restarts, 1);
	}
	if ((req == FR_REQ_LISTEN_ON || req == FR_REQ_RESTART) && p->lfd < 0) {
		p->lfd = open_listener(r, r->port);
		atomic_store(&r->listening, p->lfd >= 0);
	}
	pthread_mutex_lock(&r->mu);
	r->done = r->seq;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Fill the poll table: the wake pipe, the listener (unless paused), then
 * each connection; the poll timeout (ms) is the nearest scripted write. */
static int fill_pollfds(struct fr *r, struct pollfd *pfd, uint64_t now)
{
	struct fr_priv *p = r->priv;
	int timeout = 50;
	pfd[0].fd = r->wake[0];
	pfd[0].events = POLLIN;
	pfd[1].fd = p->lfd >= 0 && !atomic_load(&r->paused) ? p->lfd : -1;
	pfd[1].events = POLLIN;
	for (int i = 0; i < p->nconns; i++) {
		struct fr_conn *c = &p->conns[i];
		short ev = POLLRDHUP;
		if (c->reading)
			ev |= POLLIN;
		if (c->head < c->nops) {
			if (c->ready_at > now) {
				uint64_t ms = (c->ready_at - now + 999) / 1000;
				if ((int)ms < timeout)
					timeout = (int)ms;
			} else {
				ev |= POLLOUT;
			}
		}
		pfd[i + 2].fd = c->fd;
		pfd[i + 2].events = ev;
		pfd[i + 2].revents = 0;
	}
	return timeout;
}

/* Read what a connection sent and script a reply for each frame; false
 * when the connection was closed (end of file, error, bad framing). */
static bool read_conn(struct fr *r, struct fr_conn *c, unsigned char *buf,
		      size_t cap)
{
	ssize_t got = recv(c->fd, buf, cap, 0);
	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return true;
	if (got <= 0) {
		conn_free(r, c, false);
		return false;
	}
	const unsigned char *d = buf;
	size_t left = (size_t)got;
	while (left > 0) {
		size_t used = 0;
		struct mllp_decoded ev;
		if (mllp_decoder_feed(&c->dec, d, left, &used, &ev) < 0) {
			conn_free(r, c, false);
			return false;
		}
		d += used;
		left -= used;
		if (ev.kind != MLLP_DECODE_FRAME)
			continue;
		atomic_fetch_add(&r->frames, 1);
		if (!script_reply(r, c, ev.data, ev.len))
			push_op(c, OP_CLOSE, NULL, 0, 0);
	}
	return true;
}

/* Serve every connection polled (n: poll's result), run their scripts,
 * then drop the closed ones from the table. */
static void serve_conns(struct fr *r, const struct pollfd *pfd, int n,
			unsigned char *buf, size_t cap)
{
	struct fr_priv *p = r->priv;
	uint64_t now = now_us();
	int nc = p->nconns;
	for (int i = 0; i < nc; i++) {
		struct fr_conn *c = &p->conns[i];
		short re = n > 0 ? pfd[i + 2].revents : 0;
		bool alive = true;
		if (c->reading && (re & (POLLIN | POLLHUP | POLLERR))) {
			alive = read_conn(r, c, buf, cap);
		} else if (!c->reading &&
			   (re & (POLLRDHUP | POLLHUP | POLLERR))) {
			conn_free(r, c, false);
			alive = false;
		}
		if (alive)
			run_script(r, c, now);
	}
	int k = 0;
	for (int i = 0; i < p->nconns; i++)
		if (p->conns[i].fd >= 0)
			p->conns[k++] = p->conns[i];
	p->nconns = k;
}

/* Accept up to 16 pending connections and start their scripts. */
static void accept_some(struct fr *r)
{
	struct fr_priv *p = r->priv;
	for (int i = 0; i < 16 && p->lfd >= 0; i++) {
		int got = accept_one(r);
		if (got == 0)
			break;
		if (got < 0)
			continue;
		struct fr_conn *c = &p->conns[p->nconns - 1];
		if (!run_script(r, c, now_us()))
			p->nconns--;
	}
}

/* The wake pipe is readable: true when it asks the thread to quit, else
 * the pending request is handled. */
static bool woken(struct fr *r)
{
	char b[64];
	ssize_t got = read(r->wake[0], b, sizeof(b));
	for (ssize_t i = 0; i < got; i++)
		if (b[i] == 'q')
			return true;
	handle_request(r);
	return false;
}

static void *fr_main(void *arg)
{
	struct fr *r = arg;
	struct fr_priv *p = r->priv;
	const size_t cap = 65536;
	struct pollfd *pfd = calloc((size_t)r->cfg.max_conns + 2, sizeof(*pfd));
	unsigned char *buf = malloc(cap);
	assert_non_null(pfd);
	assert_non_null(buf);
	for (;;) {
		int timeout = fill_pollfds(r, pfd, now_us());
		int n = poll(pfd, (nfds_t)p->nconns + 2, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			if (woken(r))
				break;
			continue; /* the table may have changed */
		}
		serve_conns(r, pfd, n, buf, cap);
		if (n > 0 && (pfd[1].revents & POLLIN))
			accept_some(r);
	}
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
	close_all(r);
	free(pfd);
	free(buf);
	return NULL;
}

void fr_start(struct fr *r, const struct fr_config *cfg)
{
	memset(r, 0, sizeof(*r));
	if (cfg)
		r->cfg = *cfg;
	if (r->cfg.backlog <= 0)
		r->cfg.backlog = 128;
	if (!r->cfg.seed)
		r->cfg.seed = 1;
	if (!r->cfg.byte_pause_us)
		r->cfg.byte_pause_us = 200;
	if (!r->cfg.split_pause_us)
		r->cfg.split_pause_us = 5000;
	if (!r->cfg.oversize)
		r->cfg.oversize = 1024 * 1024;
	if (r->cfg.max_conns <= 0)
		r->cfg.max_conns = 256;
	struct fr_priv *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	p->conns = calloc((size_t)r->cfg.max_conns, sizeof(*p->conns));
	assert_non_null(p->conns);
	p->rng = r->cfg.seed;
	r->priv = p;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	atomic_store(&r->paused, r->cfg.start_paused);
	assert_int_equal(pipe2(r->wake, O_CLOEXEC | O_NONBLOCK), 0);
	p->lfd = open_listener(r, r->cfg.port);
	assert_true(p->lfd >= 0);
	atomic_store(&r->listening, 1);
	assert_int_equal(pthread_create(&r->th, NULL, fr_main, r), 0);
	r->running = true;
}

static void poke(struct fr *r, char c)
{
	while (write(r->wake[1], &c, 1) < 0 && errno == EINTR)
		;
}

void fr_stop(struct fr *r)
{
	if (!r->running)
		return;
	poke(r, 'q');
	pthread_join(r->th, NULL);
	r->running = false;
	close(r->wake[0]);
	close(r->wake[1]);
	struct fr_priv *p = r->priv;
	free(p->conns);
	free(p);
	r->priv = NULL;
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

void fr_set(struct fr *r, enum fr_fault f, uint32_t ppm, uint32_t limit)
{
	atomic_store(&r->limit[f], limit);
	atomic_store(&r->fired[f], 0);
	atomic_store(&r->prob[f], ppm);
}

void fr_clear(struct fr *r)
{
	for (int f = 0; f < FR_COUNT; f++)
		atomic_store(&r->prob[f], 0);
}

static void request(struct fr *r, int req)
{
	pthread_mutex_lock(&r->mu);
	r->req = req;
	uint64_t my = ++r->seq;
	pthread_mutex_unlock(&r->mu);
	poke(r, 'r');
	pthread_mutex_lock(&r->mu);
	while (r->done < my)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
}

void fr_listen(struct fr *r, bool on)
{
	request(r, on ? FR_REQ_LISTEN_ON : FR_REQ_LISTEN_OFF);
}

void fr_restart(struct fr *r)
{
	request(r, FR_REQ_RESTART);
}

void fr_down(struct fr *r)
{
	request(r, FR_REQ_DOWN);
}

void fr_pause_accept(struct fr *r, bool paused)
{
	atomic_store(&r->paused, paused);
	poke(r, 'p');
}

/* Helpers shared by the receiver suites (see recv_util.h). */
#include "recv_util.h"

void rec_init(struct rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

void rec_free(struct rec *r)
{
	for (int i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

void rec_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct rec *r = ctx;
	(void)l;
	pthread_mutex_lock(&r->mu);
	if (r->nlines < MAX_LINES)
		r->lines[r->nlines++] = strdup(line);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void rec_tel(void *ctx, const struct mllp_receiver_event *ev)
{
	struct rec *r = ctx;
	pthread_mutex_lock(&r->mu);
	r->ev[ev->kind]++;
	if (ev->kind == MLLP_RECEIVER_EV_CONNECTION_STOP) {
		r->reasons[ev->reason]++;
		r->stop_errors[ev->reason] = ev->error;
	}
	if (ev->kind == MLLP_RECEIVER_EV_CONNECTION_START)
		r->last_info = *ev->conn;
	if (ev->kind == MLLP_RECEIVER_EV_REPLY_SENT)
		r->replies += (int)ev->replies;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

int rec_count_lines(struct rec *r, const char *sub)
{
	pthread_mutex_lock(&r->mu);
	int n = 0;
	for (int i = 0; i < r->nlines; i++)
		n += strstr(r->lines[i], sub) != NULL;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* Wait (bounded, 10 s) until *counter >= want; returns the value. */
int rec_wait(struct rec *r, const int *counter, int want)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	while (*counter < want &&
	       pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
		;
	int v = *counter;
	pthread_mutex_unlock(&r->mu);
	return v;
}

/* Wait until a log line containing sub exists. */
bool rec_wait_line(struct rec *r, const char *sub)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		for (int i = 0; i < r->nlines; i++)
			if (strstr(r->lines[i], sub)) {
				pthread_mutex_unlock(&r->mu);
				return true;
			}
		if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&r->mu);
	return false;
}

/* ---- receiver helpers --------------------------------------------------- */

void cfg_for(struct mllp_receiver_config *c, struct rec *r, mllp_dispatch_fn fn,
	     void *ctx)
{
	mllp_receiver_config_init(c);
	c->address = "127.0.0.1";
	c->port = 0;
	c->dispatch = fn;
	c->dispatch_ctx = ctx;
	c->log = rec_log;
	c->log_ctx = r;
	c->log_level = MLLP_LOG_DEBUG;
	c->telemetry = rec_tel;
	c->telemetry_ctx = r;
	c->ring_entries = 256;
	c->recv_buffers = 256;
	c->backend = ti_backend();
}

struct mllp_receiver *start(const struct mllp_receiver_config *c)
{
	struct mllp_receiver *rv = NULL;
	struct mllp_error err;
	int rc = mllp_receiver_create(c, &rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		exit(77);
	}
	if (rc != 0)
		fprintf(stderr, "receiver start: %s\n", err.message);
	assert_int_equal(rc, 0);
	assert_true(mllp_receiver_port(rv) != 0);
	return rv;
}

int tc_connect_to(struct tc *t, const char *addr, uint16_t port)
{
	memset(t, 0, sizeof(*t));
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (void *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
		sl = sizeof(*s4);
	}
	t->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(t->fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(t->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(t->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	mllp_decoder_init(&t->dec, &fc, NULL);
	return connect(t->fd, (struct sockaddr *)&ss, sl);
}

void tc_connect(struct tc *t, uint16_t port)
{
	assert_int_equal(tc_connect_to(t, "127.0.0.1", port), 0);
}

void tc_close(struct tc *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	mllp_decoder_free(&t->dec);
}

void tc_write(struct tc *t, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w = send(t->fd, b, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

void tc_send_frame(struct tc *t, const void *p, size_t n)
{
	unsigned char sb = MLLP_SB, tr[2] = {MLLP_EB, MLLP_CR};
	tc_write(t, &sb, 1);
	tc_write(t, p, n);
	tc_write(t, tr, 2);
}

/* Next reply frame, malloc'd (NUL added), or NULL on EOF/error/timeout. */
char *tc_read_frame(struct tc *t, size_t *len)
{
	for (;;) {
		while (t->off < t->len) {
			size_t used;
			struct mllp_decoded ev;
			int rc = mllp_decoder_feed(&t->dec, t->buf + t->off,
						   t->len - t->off, &used, &ev);
			assert_int_equal(rc, 0);
			t->off += used;
			if (ev.kind == MLLP_DECODE_FRAME) {
				char *out = malloc(ev.len + 1);
				memcpy(out, ev.data, ev.len);
				out[ev.len] = 0;
				if (len)
					*len = ev.len;
				return out;
			}
		}
		ssize_t n = recv(t->fd, t->buf, sizeof(t->buf), 0);
		if (n <= 0)
			return NULL;
		t->off = 0;
		t->len = (size_t)n;
	}
}

/* True when the peer closed (EOF or reset) within the receive timeout. */
bool tc_wait_closed(struct tc *t)
{
	for (;;) {
		ssize_t n = recv(t->fd, t->buf, sizeof(t->buf), 0);
		if (n == 0)
			return true;
		if (n < 0)
			return errno == ECONNRESET;
	}
}

unsigned char *corpus(const char *name, size_t *len)
{
	char rel[128];
	snprintf(rel, sizeof(rel), "messages/%s", name);
	return tu_corpus(rel, len);
}

/* rec_init(r), then a config for fn/ctx (cfg_for). */
void rec_cfg(struct rec *r, struct mllp_receiver_config *c, mllp_dispatch_fn fn,
	     void *ctx)
{
	rec_init(r);
	cfg_for(c, r, fn, ctx);
}

/* rec_init(r), then start a receiver with the default config for fn/ctx. */
struct mllp_receiver *start_with(struct rec *r, mllp_dispatch_fn fn, void *ctx)
{
	struct mllp_receiver_config c;
	rec_cfg(r, &c, fn, ctx);
	return start(&c);
}

/* start_with(), then connect t to the receiver. */
struct mllp_receiver *start_connected(struct rec *r, struct tc *t,
				      mllp_dispatch_fn fn, void *ctx)
{
	struct mllp_receiver *rv = start_with(r, fn, ctx);
	tc_connect(t, mllp_receiver_port(rv));
	return rv;
}

/* Destroy the receiver, then free its recorder. */
void finish(struct mllp_receiver *rv, struct rec *r)
{
	mllp_receiver_destroy(rv);
	rec_free(r);
}

/* Read replies from to to (inclusive); each holds fmt with its index. */
void expect_ids(struct tc *t, const char *fmt, int from, int to)
{
	for (int i = from; i <= to; i++) {
		char *rep = tc_read_frame(t, NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), fmt, i);
		assert_non_null(strstr(rep, id));
		free(rep);
	}
}

/* Check reply is an ACK of msg with the given code. */
void assert_ack(const void *msg, size_t mlen, const char *reply, size_t rlen,
		const char *code)
{
	struct mllp_ack a;
	char why[256];
	enum mllp_verdict v =
	    mllp_ack_verify(msg, mlen, reply, rlen, &a, why, sizeof(why));
	if (v == MLLP_BAD_MESSAGE_CONTROL_ID || v == MLLP_INVALID_ACK_MESSAGE ||
	    v == MLLP_INVALID_MESSAGE)
		fprintf(stderr, "verify: %s\n", why);
	assert_true(v <= MLLP_APPLICATION_REJECT);
	assert_true(mllp_str_eq(a.code, code));
}

/* Send msg framed, read the reply (for threads: no assertions): 1 when it
 * is an application accept of msg, 0 when not, -1 without a reply. */
int round_trip(struct tc *t, const void *msg, size_t n)
{
	tc_send_frame(t, msg, n);
	size_t rl;
	char *rep = tc_read_frame(t, &rl);
	if (!rep)
		return -1;
	int ok = mllp_ack_verify(msg, n, rep, rl, NULL, NULL, 0) ==
		 MLLP_APPLICATION_ACCEPT;
	free(rep);
	return ok;
}

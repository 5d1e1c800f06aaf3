/* Test receiver (see receiver.h). */
#include "netutil.h"
#include "receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/ack.h>
#include <mllp/framer.h>

#include "testutil.h"

struct tr_conn {
	int fd;
	struct mllp_decoder dec;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pause_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000,
			      .tv_nsec = (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static void reply(struct tr *r, struct tr_conn *c, const unsigned char *msg,
		  size_t len)
{
	int mode = atomic_load(&r->mode);
	if (atomic_load(&r->delay_count) > 0) {
		atomic_fetch_sub(&r->delay_count, 1);
		pause_us((long)atomic_load(&r->delay_ms) * 1000);
	}
	if (mode == TR_NONE)
		return;
	static const unsigned char sb = MLLP_SB, eb = MLLP_EB, cr = MLLP_CR;
	if (mode == TR_ECHO) {
		tn_send_all(c->fd, &sb, 1);
		tn_send_all(c->fd, msg, len);
		tn_send_all(c->fd, &eb, 1);
		tn_send_all(c->fd, &cr, 1);
		return;
	}
	char ack[4096];
	size_t alen = 0;
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.keep_control_id = 0;
	if (mllp_ack_build(msg, len, &o, ack, sizeof(ack) - 8, &alen) != 0)
		alen = 0;
	unsigned char out[4200];
	size_t n = 0;
	switch (mode) {
	case TR_ACK:
	case TR_ACK_BYTEWISE:
	case TR_SPLIT_TRAILER:
	case TR_DATA_AFTER:
	case TR_NO_TRAILER:
		out[n++] = MLLP_SB;
		break;
	default:
		break;
	}
	memcpy(out + n, ack, alen);
	n += alen;
	if (mode != TR_NO_TRAILER) {
		out[n++] = MLLP_EB;
		out[n++] = MLLP_CR;
	}
	if (mode == TR_DATA_AFTER) {
		memcpy(out + n, "junk", 4);
		n += 4;
	}
	if (mode == TR_ACK_BYTEWISE) {
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (size_t i = 0; i < n; i++) {
			tn_send_all(c->fd, out + i, 1);
			pause_us(300);
		}
	} else if (mode == TR_SPLIT_TRAILER) {
		tn_send_all(c->fd, out, n - 1);
		pause_us(20000);
		tn_send_all(c->fd, out + n - 1, 1);
	} else {
		tn_send_all(c->fd, out, n);
	}
}

static void *tr_main(void *arg)
{
	struct tr *r = arg;
	struct tr_conn conns[TR_MAX_CONNS];
	int nconns = 0;
	unsigned char buf[65536];
	while (!atomic_load(&r->stop)) {
		struct pollfd pfd[TR_MAX_CONNS + 1];
		pfd[0].fd = r->lfd;
		pfd[0].events = POLLIN;
		for (int i = 0; i < nconns; i++) {
			pfd[i + 1].fd = conns[i].fd;
			pfd[i + 1].events =
			    atomic_load(&r->mode) == TR_STALL ? 0 : POLLIN;
		}
		int n = poll(pfd, (nfds_t)nconns + 1, 20);
		if (n <= 0)
			continue;
		if ((pfd[0].revents & POLLIN) && nconns < TR_MAX_CONNS) {
			struct sockaddr_in peer;
			socklen_t pl = sizeof(peer);
			int fd = accept(r->lfd, (struct sockaddr *)&peer, &pl);
			if (fd >= 0) {
				/* Not polled in this round: no stale revents
				 * (a blocking recv here would stall every
				 * other connection). */
				pfd[nconns + 1].fd = fd;
				pfd[nconns + 1].revents = 0;
				conns[nconns].fd = fd;
				mllp_decoder_init(&conns[nconns].dec, NULL,
						  NULL);
				nconns++;
				atomic_store(&r->last_peer_port,
					     ntohs(peer.sin_port));
				atomic_fetch_add(&r->accepted, 1);
				atomic_fetch_add(&r->open_conns, 1);
				if (atomic_load(&r->junk_on_accept))
					tn_send_all(fd, "unsolicited", 11);
			}
		}
		for (int i = 0; i < nconns; i++) {
			if (!(pfd[i + 1].revents &
			      (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct tr_conn *c = &conns[i];
			if (atomic_load(&r->mode) == TR_STALL &&
			    !(pfd[i + 1].revents & (POLLHUP | POLLERR)))
				continue;
			ssize_t got = recv(c->fd, buf, sizeof(buf), 0);
			bool drop = got <= 0;
			const unsigned char *p = buf;
			size_t left = got > 0 ? (size_t)got : 0;
			while (!drop && left > 0) {
				size_t used = 0;
				struct mllp_decoded ev;
				if (mllp_decoder_feed(&c->dec, p, left, &used,
						      &ev) < 0) {
					drop = true;
					break;
				}
				p += used;
				left -= used;
				if (ev.kind != MLLP_DECODE_FRAME)
					continue;
				int nf = atomic_fetch_add(&r->frames, 1) + 1;
				int ce = atomic_load(&r->close_every);
				if (atomic_load(&r->mode) == TR_CLOSE ||
				    (ce > 0 && nf % ce == 0)) {
					atomic_fetch_add(&r->closes, 1);
					drop = true;
					break;
				}
				reply(r, c, ev.data, ev.len);
			}
			if (drop) {
				close(c->fd);
				mllp_decoder_free(&c->dec);
				conns[i] = conns[--nconns];
				pfd[i + 1] = pfd[nconns + 1];
				atomic_fetch_sub(&r->open_conns, 1);
				i--;
			}
		}
	}
	/* Listener first: no connection may be accepted while closing. */
	close(r->lfd);
	for (int i = 0; i < nconns; i++) {
		close(conns[i].fd);
		mllp_decoder_free(&conns[i].dec);
		atomic_fetch_sub(&r->open_conns, 1);
	}
	return NULL;
}

void tr_start(struct tr *r, uint16_t port, enum tr_mode mode)
{
	memset(r, 0, sizeof(*r));
	atomic_store(&r->mode, (int)mode);
	r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(r->lfd >= 0);
	int one = 1;
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	assert_int_equal(bind(r->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(r->lfd, 128), 0);
	socklen_t al = sizeof(a);
	getsockname(r->lfd, (struct sockaddr *)&a, &al);
	r->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&r->th, NULL, tr_main, r), 0);
	r->running = true;
}

void tr_stop(struct tr *r)
{
	if (!r->running)
		return;
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	r->running = false;
}

uint16_t tr_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t al = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

bool tr_wait_count(_Atomic int *counter, int n, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (atomic_load(counter) < n) {
		if (now_ms() > end)
			return false;
		pause_us(1000);
	}
	return true;
}

bool tr_wait_until(bool (*pred)(void *), void *arg, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (!pred(arg)) {
		if (now_ms() > end)
			return false;
		pause_us(1000);
	}
	return true;
}

char *tr_hl7(int n, size_t *len)
{
	char *s = malloc(256);
	int l = snprintf(s, 256,
			 "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|"
			 "CTRL%d|P|2.5\rEVN|A01|20240101120000\rPID|1||%d||"
			 "DOE^JOHN\r",
			 n, n);
	*len = (size_t)l;
	return s;
}

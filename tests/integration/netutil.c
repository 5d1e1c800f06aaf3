#include "netutil.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

uint64_t tn_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tn_listen(uint16_t *port)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 128), 0);
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return l;
}

int tn_connect(uint16_t port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Read one reply frame on fd into buf (NUL-terminated) before deadline;
 * false when none came whole. */
void tn_send_all(int fd, const void *p, size_t n)
{
	const unsigned char *b = p;
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

static bool read_reply(int fd, char *buf, size_t cap, uint64_t deadline)
{
	size_t got = 0;
	buf[0] = 0;
	while (tn_now_ms() < deadline && got < cap - 1) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)(deadline - tn_now_ms());
		if (poll(&p, 1, left > 0 ? left : 0) != 1)
			return false;
		ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
		if (r <= 0)
			return false;
		got += (size_t)r;
		buf[got] = 0;
		if (got >= 2 && buf[got - 2] == 0x1c && buf[got - 1] == '\r')
			return true;
	}
	return false;
}

int tn_honest_run(uint16_t port, int n, uint64_t deadline)
{
	int fd = tn_connect(port, 0);
	int acked = 0;
	for (int i = 0; i < n; i++) {
		char f[128], want[32], buf[4096];
		int len = snprintf(f, sizeof(f),
				   "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|H%d|P|"
				   "2.5\r\x1c\r",
				   i);
		snprintf(want, sizeof(want), "MSA|AA|H%d", i);
		if (send(fd, f, (size_t)len, MSG_NOSIGNAL) != len)
			break;
		if (!read_reply(fd, buf, sizeof(buf), deadline) ||
		    !strstr(buf, want)) {
			fprintf(stderr, "message %d not acknowledged in time\n",
				i);
			break;
		}
		acked++;
	}
	close(fd);
	return acked;
}

static void *peer_main(void *arg)
{
	struct tn_peer *s = arg;
	int cfd = -1;
	size_t len = 0;
	while (!atomic_load(&s->stop)) {
		struct pollfd pf[2] = {{s->lfd, POLLIN, 0}, {cfd, POLLIN, 0}};
		if (poll(pf, cfd >= 0 ? 2 : 1, 20) <= 0)
			continue;
		if (pf[0].revents & POLLIN) {
			int nfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
			if (nfd >= 0) {
				if (cfd >= 0)
					close(cfd);
				cfd = nfd;
				len = 0;
				if (s->on_accept)
					s->on_accept(s->ctx);
				atomic_fetch_add(&s->accepts, 1);
			}
			continue;
		}
		if (cfd < 0 || !(pf[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t r = recv(cfd, s->buf + len, sizeof(s->buf) - len, 0);
		if (r > 0)
			len += (size_t)r;
		if (r <= 0 || !s->on_bytes(s->ctx, cfd, s->buf, &len)) {
			close(cfd);
			cfd = -1;
			len = 0;
		}
	}
	if (cfd >= 0)
		close(cfd);
	return NULL;
}

void tn_peer_start(struct tn_peer *s, tn_peer_bytes_fn on_bytes,
		   tn_peer_accept_fn on_accept, void *ctx)
{
	atomic_store(&s->accepts, 0);
	atomic_store(&s->stop, false);
	s->on_bytes = on_bytes;
	s->on_accept = on_accept;
	s->ctx = ctx;
	s->lfd = tn_listen(&s->port);
	assert_int_equal(pthread_create(&s->th, NULL, peer_main, s), 0);
}

void tn_peer_stop(struct tn_peer *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->lfd);
}

size_t tn_put_ack(char *b, size_t cap, const char *id)
{
	int l = snprintf(b, cap,
			 "\x0bMSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK|"
			 "A%s|P|2.5\rMSA|AA|%s\r\x1c\r",
			 id, id);
	return (size_t)l;
}

int tn_take_ctrl_frame(char *buf, size_t *len)
{
	char *end = memmem(buf, *len, "\x1c\r", 2);
	if (!end)
		return -1;
	size_t flen = (size_t)(end - buf) + 2;
	*end = 0;
	char *c = strstr(buf, "|CTRL");
	int n = c ? atoi(c + 5) : 0;
	memmove(buf, buf + flen, *len - flen);
	*len -= flen;
	return n;
}

/* libFuzzer target: the receiver's per-connection path.
 *
 * One library receiver (echo dispatcher, max_frame 64 KiB, malloc-backed so
 * ASan sees its buffers) runs in the process on 127.0.0.1. Each input is
 * one client connection: the first byte picks the write chunk size, the
 * rest is the byte stream, written in those chunks while replies are read;
 * then the client shuts its side down and reads until the receiver closes.
 *
 * Checks: the receiver closes within a deadline (no hang); its replies are
 * well-formed MLLP frames with nothing between them; with no oversize
 * frame in the stream, there is exactly one reply per frame sent (the echo
 * dispatcher answers every frame), else at most one per frame before it. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/alloc.h>
#include <mllp/error.h>
#include <mllp/framer.h>
#include <mllp/receiver.h>

#include "fuzz.h"

#define MAX_FRAME (64 * 1024)

static struct mllp_receiver *g_recv;
static uint16_t g_port;

static void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

static void start_once(void)
{
	if (g_recv)
		return;
	struct mllp_receiver_config cfg;
	mllp_receiver_config_init(&cfg);
	cfg.address = "127.0.0.1";
	cfg.port = 0;
	cfg.dispatch = mllp_dispatch_echo;
	cfg.max_frame = MAX_FRAME;
	cfg.idle_timeout_ms = 5000;
	cfg.allocator = mllp_allocator_libc();
	cfg.log = quiet;
	struct mllp_error err;
	CHECK(mllp_receiver_create(&cfg, &g_recv, &err) == 0);
	g_port = mllp_receiver_port(g_recv);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Frames the receiver will see in the stream, and whether one is too big
 * (the receiver closes there). */
static size_t count_frames(const uint8_t *p, size_t n, bool *too_big)
{
	struct mllp_frame_config fc;
	mllp_frame_config_init(&fc);
	fc.max_frame = MAX_FRAME;
	struct mllp_decoder d;
	CHECK(mllp_decoder_init(&d, &fc, NULL) == 0);
	size_t frames = 0;
	*too_big = false;
	while (n > 0) {
		size_t used = 0;
		struct mllp_decoded ev;
		if (mllp_decoder_feed(&d, p, n, &used, &ev) < 0) {
			*too_big = true;
			break;
		}
		p += used;
		n -= used;
		if (ev.kind == MLLP_DECODE_FRAME)
			frames++;
	}
	mllp_decoder_free(&d);
	return frames;
}

struct replies {
	struct mllp_decoder dec;
	size_t frames;
	bool junk;
};

static void on_reply_bytes(struct replies *r, const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t used = 0;
		struct mllp_decoded ev;
		CHECK(mllp_decoder_feed(&r->dec, p, n, &used, &ev) == 0);
		p += used;
		n -= used;
		if (ev.kind == MLLP_DECODE_FRAME)
			r->frames++;
		else if (ev.kind == MLLP_DECODE_JUNK)
			r->junk = true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	start_once();
	if (size < 1)
		return 0;
	size_t chunk = (size_t)(data[0] & 0x3f) + 1;
	if (data[0] & 0x40)
		chunk = 65536;
	data++;
	size--;
	bool too_big;
	size_t want = count_frames(data, size, &too_big);

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(g_port);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	CHECK(rc == 0 || errno == EINPROGRESS);

	struct replies rep;
	memset(&rep, 0, sizeof(rep));
	CHECK(mllp_decoder_init(&rep.dec, NULL, NULL) == 0);
	size_t off = 0;
	bool shut = false, eof = false, peer_gone = false;
	uint64_t deadline = now_ms() + 8000;
	uint8_t buf[65536];
	while (!eof) {
		CHECK(now_ms() < deadline); /* the receiver must not hang */
		if (off == size && !shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (!shut)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (pfd.revents & POLLOUT) {
			size_t n = size - off < chunk ? size - off : chunk;
			ssize_t w = send(fd, data + off, n, MSG_NOSIGNAL);
			if (w > 0) {
				off += (size_t)w;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* The receiver closed (oversize frame). */
				off = size;
				peer_gone = true;
			}
		}
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t got = recv(fd, buf, sizeof(buf), 0);
			if (got > 0)
				on_reply_bytes(&rep, buf, (size_t)got);
			else if (got == 0 ||
				 (errno != EAGAIN && errno != EINTR))
				eof = true;
		}
	}
	close(fd);
	CHECK(!rep.junk);
	CHECK(!mllp_decoder_in_frame(&rep.dec) || too_big || peer_gone);
	if (too_big || peer_gone)
		CHECK(rep.frames <= want);
	else
		CHECK(rep.frames == want);
	mllp_decoder_free(&rep.dec);
	return 0;
}

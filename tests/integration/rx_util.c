/* What the receiver suites on the deferred-reply path share: see
 * rx_util.h. */
#include "rx_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "netutil.h"
#include "receiver.h"

static void *cnt_alloc(void *ctx, size_t size)
{
	struct rx_counted *k = ctx;
	void *p = malloc(size);
	if (p) {
		atomic_fetch_add(&k->bytes, (long long)size);
		atomic_fetch_add(&k->blocks, 1);
	}
	return p;
}

static void *cnt_realloc(void *ctx, void *p, size_t old_size, size_t new_size)
{
	struct rx_counted *k = ctx;
	void *q = realloc(p, new_size);
	if (!q)
		return NULL;
	atomic_fetch_add(&k->bytes, (long long)new_size - (long long)old_size);
	if (!p)
		atomic_fetch_add(&k->blocks, 1);
	return q;
}

static void cnt_free(void *ctx, void *p, size_t size)
{
	struct rx_counted *k = ctx;
	if (!p)
		return;
	atomic_fetch_sub(&k->bytes, (long long)size);
	atomic_fetch_sub(&k->blocks, 1);
	free(p);
}

void rx_counted_init(struct rx_counted *k)
{
	k->a = (struct mllp_allocator){cnt_alloc, cnt_realloc, cnt_free, k};
}

bool rx_start(const struct mllp_receiver_config *c, struct mllp_receiver **rv)
{
	struct mllp_error err;
	int rc = mllp_receiver_create(c, rv, &err);
	if (rc == MLLP_ERR_IO_URING_UNAVAILABLE) {
		fprintf(stderr, "io_uring unavailable: %s\n", err.message);
		return false;
	}
	if (rc != 0)
		fprintf(stderr, "receiver start: %s\n", err.message);
	assert_int_equal(rc, 0);
	return true;
}

struct mllp_receiver_stats rx_stats(struct mllp_receiver *rv)
{
	struct mllp_receiver_stats s;
	mllp_receiver_stats_init(&s);
	mllp_receiver_get_stats(rv, &s);
	return s;
}

int rx_ctrl_of(const struct mllp_message *msg)
{
	char buf[512];
	size_t l = msg->len < sizeof(buf) - 1 ? msg->len : sizeof(buf) - 1;
	memcpy(buf, msg->data, l);
	buf[l] = 0;
	const char *p = strstr(buf, "|CTRL");
	return p ? atoi(p + 5) : -1;
}

int rx_ack_text(char *out, size_t cap, int n)
{
	return snprintf(out, cap,
			"MSH|^~\\&|RCV|RFAC|SND|SFAC|20240101120000||ACK|"
			"A%d|P|2.5\rMSA|AA|CTRL%d\r",
			n, n);
}

int rx_reply_n(struct mllp_reply_handle *h, int n)
{
	char a[256];
	int l = rx_ack_text(a, sizeof(a), n);
	return mllp_receiver_reply(h, a, (size_t)l);
}

size_t rx_frame(char *out, size_t cap, int i)
{
	size_t len;
	char *m = tr_hl7(i, &len);
	assert_true(len + 3 <= cap);
	out[0] = 0x0b;
	memcpy(out + 1, m, len);
	out[len + 1] = 0x1c;
	out[len + 2] = 0x0d;
	free(m);
	return len + 3;
}

bool rx_port_refuses(uint16_t port, int deadline_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	uint64_t end = tn_now_ms() + (uint64_t)deadline_ms;
	while (tn_now_ms() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		int e = errno;
		close(fd);
		if (rc < 0 && e == ECONNREFUSED)
			return true;
		struct pollfd none = {.fd = -1};
		poll(&none, 1, 1); /* a bounded retry, not a synchronisation */
	}
	return false;
}

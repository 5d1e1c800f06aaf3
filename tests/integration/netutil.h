/* Loopback sockets for the integration tests: a listener on an ephemeral
 * port, a blocking client, an honest MLLP client that waits for each ACK,
 * and a monotonic clock in milliseconds. Failures to set up a socket fail
 * the test (cmocka asserts). */
#ifndef TI_NETUTIL_H
#define TI_NETUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds. */
uint64_t tn_now_ms(void);

/* A listening socket on 127.0.0.1 and an ephemeral port (put in *port). */
int tn_listen(uint16_t *port);

/* A blocking client connected to 127.0.0.1:port, with TCP_NODELAY and a
 * 10 s send timeout (a bounded write); rcvbuf > 0 shrinks its receive
 * buffer. */
int tn_connect(uint16_t port, int rcvbuf);

/* Write all n bytes (MSG_NOSIGNAL, EINTR retried); stops quietly at the
 * first error (the peer went away: the test sees it by other means). */
void tn_send_all(int fd, const void *p, size_t n);

/* On a new connection, send n HL7 messages (control ids H0, H1, ...) one at
 * a time, each waiting for its AA ACK; returns how many were acknowledged
 * before deadline (tn_now_ms() value), saying on stderr which one was
 * not. */
int tn_honest_run(uint16_t port, int n, uint64_t deadline);

/* Write at b (cap bytes) the MLLP frame of an HL7 ACK, MSA|AA|id (its own
 * control id A<id>); its length. */
size_t tn_put_ack(char *b, size_t cap, const char *id);

/* A scripted peer on a thread: listens on an ephemeral port and serves one
 * connection at a time (a new one replaces the old). on_bytes gets the
 * bytes received on the connection and not yet consumed, buf[0..*len): it
 * consumes what it wants (moving the rest to the front, updating *len) and
 * returns false to close the connection. on_accept (may be NULL) hears of
 * each new connection before its bytes. */
typedef bool (*tn_peer_bytes_fn)(void *ctx, int fd, char *buf, size_t *len);
typedef void (*tn_peer_accept_fn)(void *ctx);

struct tn_peer {
	uint16_t port;
	_Atomic int accepts; /* connections accepted */
	int lfd;
	pthread_t th;
	_Atomic bool stop;
	tn_peer_bytes_fn on_bytes;
	tn_peer_accept_fn on_accept;
	void *ctx;
	char buf[65536];
};

void tn_peer_start(struct tn_peer *s, tn_peer_bytes_fn on_bytes,
		   tn_peer_accept_fn on_accept, void *ctx);
/* Stop the thread, close the connection and the listener. */
void tn_peer_stop(struct tn_peer *s);

/* For an on_bytes callback: take the first complete frame (up to EB CR)
 * off buf[0..*len), moving the rest to the front. Returns the n of its
 * control id CTRL<n> (0 when it names none), or -1 when buf holds no
 * complete frame (nothing taken). */
int tn_take_ctrl_frame(char *buf, size_t *len);

#endif

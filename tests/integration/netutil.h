/* Loopback sockets for the integration tests: a listener on an ephemeral
 * port, a blocking client, an honest MLLP client that waits for each ACK,
 * and a monotonic clock in milliseconds. Failures to set up a socket fail
 * the test (cmocka asserts). */
#ifndef TI_NETUTIL_H
#define TI_NETUTIL_H

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

#endif

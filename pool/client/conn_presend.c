/* Bytes that reached a connection before the message in flight was handed
 * to the kernel can never be its reply: a receiver cannot answer a message
 * it has not been sent. Both backends hand the sends queued during a turn
 * to the kernel in the next wait() (io_uring_enter, or the epoll backend's
 * write pass), so two kinds of bytes are early:
 *   - bytes delivered in the same completion batch after the message was
 *     assigned (the backend had them before the send was even queued);
 *   - bytes already waiting in the socket's receive queue when the manager
 *     is about to wait (SIOCINQ, measured right before wait()).
 * Such bytes make the frame that holds them unsolicited (conn_reply.c,
 * mllpi_conn_on_recv_data). TLS connections get the first rule only: the socket
 * queue holds ciphertext, whose plaintext length is unknown.
 *
 * Left open: bytes that arrive in the microseconds between the measure and
 * the kernel taking the send are still taken as a reply. Only the kernel's
 * receive timestamps could tell them apart; measuring after the send
 * instead would fail genuine fast replies whenever the manager is
 * preempted right after its send. */
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "pool_internal.h"

void mllpi_presend_start(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	c->send_turn = p->loop.turn;
	c->presend = 0;
	if (!c->in_fresh) {
		c->fresh_next = p->fresh;
		p->fresh = c;
		c->in_fresh = true;
	}
}

void mllpi_presend_measure(struct mllp_pool *p)
{
	struct mllpi_conn *c = p->fresh;
	p->fresh = NULL;
	while (c) {
		struct mllpi_conn *next = c->fresh_next;
		c->fresh_next = NULL;
		c->in_fresh = false;
		int n = 0;
		if (c->sock && c->cur && !c->sock->tls &&
		    c->send_turn == p->loop.turn &&
		    ioctl(c->sock->fd, SIOCINQ, &n) == 0 && n > 0)
			c->presend = (size_t)n;
		c = next;
	}
}

size_t mllpi_presend_take(struct mllpi_conn *c, size_t len)
{
	if (!c->cur)
		return 0;
	if (c->send_turn == c->ep->pool->loop.turn)
		return len;
	size_t n = c->presend < len ? c->presend : len;
	c->presend -= n;
	return n;
}

void mllpi_presend_forget(struct mllpi_conn *c)
{
	c->presend = 0;
	c->presend_taint = false;
}

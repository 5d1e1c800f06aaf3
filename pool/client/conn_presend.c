/* Bytes that reached a connection before the message in flight was handed
 * to the kernel can never be its reply: a receiver cannot answer a message
 * it has not been sent. Both backends hand the sends queued during a turn
 * to the kernel in the next wait() (io_uring_enter, or the epoll backend's
 * write pass), so two kinds of bytes are early:
 *   - bytes delivered in the same completion batch after the message was
 *     assigned (the backend had them before the send was even queued);
 *   - bytes already waiting in the socket's receive queue when the send is
 *     handed to the kernel.
 * Such bytes make the frame that holds them unsolicited (conn_reply.c,
 * mllpi_conn_on_recv_data). TLS connections get the first rule only: the
 * socket queue holds ciphertext, whose plaintext length is unknown.
 *
 * The waiting bytes are measured one of two ways:
 *   - by the backend with the send (sendmsg_inq: io_uring, backend_uring.c
 *     says how): no system call per message. The measure comes back as a
 *     completion (TOK_INQ) ahead of every receive completion that read
 *     bytes which came after it; until it is back, every byte delivered
 *     was read before it and is early.
 *   - else with ioctl(SIOCINQ) right before wait(), one system call per
 *     message.
 * Left open either way: bytes that arrive between the measure and the
 * kernel taking the send are still taken as a reply (microseconds: from
 * the backend's measure to the send's turn in its submission). Measuring after
 * the send instead would fail genuine fast replies whenever the manager is
 * preempted right after its send. */
#include <errno.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "conn.h"

void mllpi_presend_start(struct mllpi_conn *c)
{
	struct mllp_pool *p = c->ep->pool;
	c->send_turn = p->loop.turn;
	c->presend = 0;
	if (c->sock && c->sock->inq_out > 0)
		return; /* measured by the kernel with the send */
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
	if (c->send_turn == c->ep->pool->loop.turn ||
	    (c->sock && c->sock->inq_out > 0))
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

int mllpi_presend_send(struct mllpi_conn *c, uint64_t token, uint64_t inq_token)
{
	struct mllp_pool *p = c->ep->pool;
	const struct mllpi_backend_ops *ops = p->loop.ops;
	if (ops->sendmsg_inq && !p->inq_unsupported) {
		int rc = ops->sendmsg_inq(p->loop.be, c->sock->fd, &c->msg,
					  token, inq_token);
		if (rc == -EAGAIN) /* this one by ioctl, see _start */
			return ops->sendmsg(p->loop.be, c->sock->fd, &c->msg,
					    token);
		if (rc != -EOPNOTSUPP) {
			if (rc == 0) {
				c->sock->pending++;
				c->sock->inq_out++;
			}
			return rc;
		}
		p->inq_unsupported = true;
		mllpi_pool_log(
		    p, MLLP_LOG_DEBUG,
		    "%s: no SIOCINQ command on sockets (Linux 6.7+): "
		    "bytes waiting before a send measured by ioctl",
		    ops->name);
	}
	return ops->sendmsg(p->loop.be, c->sock->fd, &c->msg, token);
}

void mllpi_presend_on_inq(struct mllpi_sock *s, struct mllpi_conn *c, int res)
{
	/* Measures complete in the order they were submitted: the last one
	 * is that of the message in flight. */
	if (--s->inq_out > 0 || !c || !c->cur)
		return;
	c->presend = res > 0 ? (size_t)res : 0;
}

/* Socket lifetime: a socket is detached from its connection when it
 * closes and freed once no operation is outstanding, at the end of the
 * manager's turn. */
#include "conn.h"
#include "endpoint.h"
#include "tls_stream.h"

#include <unistd.h>

/* Free a socket queued by mllpi_sock_maybe_free (end of the manager's turn). */
static void sock_free(struct mllp_pool *p, struct mllpi_sock *s)
{
	if (s->all_prev)
		s->all_prev->all_next = s->all_next;
	else
		p->socks = s->all_next;
	if (s->all_next)
		s->all_next->all_prev = s->all_prev;
	mllpi_tls_stream_free(s->tls);
	if (s->abortive) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(s->fd);
	struct mllpi_endpoint *ep = s->ep;
	p->alloc.free(p->alloc.ctx, s, sizeof(*s));
	p->live_socks--;
	mllpi_endpoint_sock_freed(p, ep);
}

/* Closed and nothing outstanding: freed at the end of this turn
 * (mllpi_sock_reap), so its address cannot be handed to a new socket while a
 * completion handler up the stack still holds it. */
void mllpi_sock_maybe_free(struct mllp_pool *p, struct mllpi_sock *s)
{
	if (s->conn || s->pending > 0 || s->dead ||
	    (s->tls && mllpi_tls_stream_busy(s->tls)))
		return;
	s->dead = true;
	s->dead_next = p->dead;
	p->dead = s;
}

void mllpi_sock_reap(struct mllp_pool *p)
{
	while (p->dead) {
		struct mllpi_sock *s = p->dead;
		p->dead = s->dead_next;
		sock_free(p, s);
	}
}

/* Detach the connection's socket: cancel its operations; the fd is closed
 * once the last completion has come back. */
void mllpi_sock_detach(struct mllpi_conn *c, bool abortive)
{
	struct mllp_pool *p = c->ep->pool;
	struct mllpi_sock *s = c->sock;
	if (!s)
		return;
	if (s->tls) /* close_notify if orderly */
		mllpi_tls_stream_close(s->tls, !abortive);
	c->sock = NULL;
	s->conn = NULL;
	s->abortive = abortive;
	if (s->pending > 0 || (s->tls && mllpi_tls_stream_busy(s->tls)))
		p->loop.ops->cancel_fd(p->loop.be, s->fd, 0);
	else
		mllpi_sock_maybe_free(p, s);
}

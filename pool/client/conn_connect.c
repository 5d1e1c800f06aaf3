/* Connecting: opening a socket, the connect, its failure (next address,
 * backoff), and the connection coming up (after the TLS handshake, if
 * any). */
#include "conn.h"
#include "endpoint.h"
#include "netaddr.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void set_sockopts(struct mllpi_conn *c, int fd)
{
	const struct mllp_conn_options *o = &c->ep->opts;
	int one = 1;
	if (o->nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (o->keepalive) {
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		if (o->keepalive_idle_s > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE,
				   &o->keepalive_idle_s, sizeof(int));
		if (o->keepalive_interval_s > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL,
				   &o->keepalive_interval_s, sizeof(int));
		if (o->keepalive_count > 0)
			setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT,
				   &o->keepalive_count, sizeof(int));
	}
}

/* Open a socket and submit the connect to the current address (state is
 * already C_CONNECTING). */
static void conn_open_socket(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	const struct sockaddr_storage *sa = &ep->addrs[c->addr_idx];
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	if (p->loop.ops->nonblocking_sockets)
		type |= SOCK_NONBLOCK;
	int fd = socket(sa->ss_family, type, 0);
	if (fd < 0) {
		mllpi_connect_failed(c, -errno);
		return;
	}
	set_sockopts(c, fd);
	struct mllpi_sock *s = p->alloc.alloc(p->alloc.ctx, sizeof(*s));
	if (!s) {
		close(fd);
		mllpi_connect_failed(c, MLLP_ERR_NO_MEMORY);
		return;
	}
	memset(s, 0, sizeof(*s));
	s->conn = c;
	s->fd = fd;
	s->ep = ep;
	s->all_next = p->socks;
	if (p->socks)
		p->socks->all_prev = s;
	p->socks = s;
	ep->socks++;
	p->live_socks++;
	c->sock = s;
	int rc = p->loop.ops->connect(
	    p->loop.be, fd, (const struct sockaddr *)sa,
	    ep->addrlens[c->addr_idx], mllpi_tok(s, TOK_CONNECT));
	if (rc < 0) {
		mllpi_connect_failed(c, rc);
		return;
	}
	s->pending++;
	c->connect_start_us = mllpi_now_us();
	c->timer.kind = T_CONNECT;
	mllpi_timer_arm(
	    &p->loop.timers, &c->timer,
	    mllpi_after_ms(c->connect_start_us, ep->opts.connect_timeout_ms));
}

/* " ([::1]:2575)": the address tried, for a log line naming the host, so
 * the attempts on each resolved address can be told apart; empty when the
 * host is that address already. */
static void addr_note(const struct mllpi_endpoint *ep, int idx, char *buf,
		      size_t cap)
{
	char a[MLLPI_ADDR_TEXT_MAX];
	uint16_t port;
	buf[0] = 0;
	if (idx < 0 || idx >= ep->naddrs)
		return;
	mllpi_addr_text(&ep->addrs[idx], a, sizeof(a), &port);
	if (strcmp(a, ep->host) == 0)
		return;
	mllpi_addr_port_text(&ep->addrs[idx], a, sizeof(a));
	snprintf(buf, cap, " (%s)", a);
}

void mllpi_connect_failed(struct mllpi_conn *c, int reason)
{
	struct mllp_error e;
	mllp_error_set(&e, MLLP_CTX_CONNECT, reason, NULL);
	mllpi_connect_failed_err(c, &e);
}

/* A connect attempt failed with err (context connect, or tls for a failed
 * handshake): it becomes the endpoint's last connect error. */
void mllpi_connect_failed_err(struct mllpi_conn *c,
			      const struct mllp_error *err)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	struct mllp_error e = *err;
	pthread_mutex_lock(&ep->mu);
	ep->last_error = e;
	ep->stat_error = e;
	pthread_mutex_unlock(&ep->mu);
	STAT_ADD(ep, st_connect_failures, 1);
	char at[MLLPI_ADDR_TEXT_MAX + 3];
	addr_note(ep, c->addr_idx, at, sizeof(at));
	mllpi_pool_log(p, MLLP_LOG_ERROR, "Error connecting to %s:%u%s => %s",
		       ep->host, ep->port, at, e.message);
	mllpi_sock_detach(c, false);
	if (ep->naddrs > 1)
		c->addr_idx = (c->addr_idx + 1) % ep->naddrs;
	if (ep->naddrs > 1 && ++c->addr_tries < ep->naddrs && !p->stopping) {
		/* Try the next resolved address at once (e.g. ::1 refused,
		 * then 127.0.0.1); one failure event per round. */
		conn_open_socket(c);
		return;
	}
	c->addr_tries = 0;
	mllpi_conn_down(c, true);
	/* After mllpi_conn_down: a client_create waiting for this sees the
	 * connection down (usable already decremented). */
	if (!c->first_attempt_done) {
		pthread_mutex_lock(&ep->mu);
		c->first_attempt_done = true;
		ep->first_done++;
		pthread_cond_broadcast(&ep->cv);
		pthread_mutex_unlock(&ep->mu);
	}
	if (p->stopping)
		return;
	uint64_t delay = mllp_backoff_fail(&c->backoff);
	mllpi_emit(c, MLLP_EV_CONNECTION_FAILURE, &e, 0, delay, false, 0,
		   false);
	mllpi_schedule_reconnect(c, delay);
}

void mllpi_conn_start_connect(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (p->stopping || (c->state != C_DOWN && c->attempts > 0))
		return;
	mllpi_timer_disarm(&p->loop.timers, &c->timer);
	if (c->attempts++ > 0)
		STAT_ADD(ep, st_reconnects, 1);
	mllpi_set_usable(c, C_CONNECTING);
	conn_open_socket(c);
}

void mllpi_conn_on_connected(struct mllpi_conn *c)
{
	struct mllpi_endpoint *ep = c->ep;
	struct mllp_pool *p = ep->pool;
	if (ep->tls_ctx && !c->sock->tls) {
		/* TCP is up: the TLS handshake comes first; it calls back
		 * here (conn_tls.c) when it is complete. */
		mllpi_conn_tls_start(c);
		return;
	}
	mllpi_timer_disarm(&p->loop.timers, &c->timer);
	c->timer.kind = T_NONE;
	c->addr_tries = 0;
	mllp_backoff_reset(&c->backoff);
	mllpi_set_usable(c, C_IDLE);
	mllpi_publish_connected(c, true);
	pthread_mutex_lock(&ep->mu);
	if (!c->first_attempt_done) {
		c->first_attempt_done = true;
		ep->first_done++;
		pthread_cond_broadcast(&ep->cv);
	}
	pthread_mutex_unlock(&ep->mu);
	STAT_ADD(ep, st_connects, 1);
	mllpi_emit(c, MLLP_EV_CONNECTION_SUCCESS, NULL,
		   mllpi_now_us() - c->connect_start_us, 0, false, 0, false);
	mllp_decoder_reset(&c->dec);
	mllpi_stale_reset(c);
	mllpi_r2_reset(c);
	mllpi_conn_arm_recv(c);
	mllpi_conn_dispatch(c);
}

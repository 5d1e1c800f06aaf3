/* The receiver's listening socket and accept path: open and bind it (the
 * caller's thread), arm accepts, admit or refuse each connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netaddr.h"
#include "receiver_internal.h"

#define ACCEPT_RETRY_US 100000u

int mllpi_recv_listen(struct mllp_receiver *r, struct mllp_error *err)
{
	const char *host = r->cfg.address ? r->cfg.address : "0.0.0.0";
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%d", (int)r->cfg.port);
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int gr = getaddrinfo(host, portstr, &hints, &res);
	if (gr != 0 || !res) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_BAD_ADDRESS,
			       "cannot resolve listen address %s: %s", host,
			       gai_strerror(gr));
		return MLLP_ERR_BAD_ADDRESS;
	}
	/* Made non-blocking by the manager when its backend wants it. */
	int type = SOCK_STREAM | SOCK_CLOEXEC;
	int fd = socket(res->ai_family, type, 0);
	int rc = 0;
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, r->cfg.listen_backlog) < 0) {
		rc = -errno;
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		goto fail;
	}
	mllpi_addr_text(&ss, r->addr_str, sizeof(r->addr_str), &r->port);
	if (ss.ss_family == AF_INET6) /* keep "::" as given */
		inet_ntop(AF_INET6,
			  &((struct sockaddr_in6 *)(void *)&ss)->sin6_addr,
			  r->addr_str, sizeof(r->addr_str));
	freeaddrinfo(res);
	r->lfd = fd;
	return 0;
fail:
	if (rc == -EADDRINUSE)
		mllp_error_set(err, MLLP_CTX_NONE, rc,
			       "cannot listen on %s:%d: address already in use "
			       "(eaddrinuse)",
			       host, (int)r->cfg.port);
	else
		mllp_error_set(err, MLLP_CTX_NONE, rc,
			       "cannot listen on %s:%d: %s", host,
			       (int)r->cfg.port, strerror(-rc));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

void mllpi_recv_listener_arm(struct mllp_receiver *r)
{
	if (r->stopping || r->accept_armed)
		return;
	int rc = r->loop.ops->accept(r->loop.be, r->lfd, tok(r, TOK_ACCEPT));
	if (rc < 0) {
		mllpi_rlog_line(&r->log, MLLP_LOG_ERROR,
				"cannot submit accept: %s", mllp_strerror(rc));
		mllpi_timer_arm(&r->loop.timers, &r->ltimer,
				mllpi_now_us() + ACCEPT_RETRY_US);
		return;
	}
	r->lpending++;
	r->accept_armed = true;
}

static void refuse(struct mllp_receiver *r, int fd,
		   const struct sockaddr_storage *peer,
		   const struct sockaddr_storage *local, const char *why,
		   enum refusal by)
{
	struct mllp_conn_info info;
	memset(&info, 0, sizeof(info));
	mllpi_addr_text(peer, info.peer_address, sizeof(info.peer_address),
			&info.peer_port);
	mllpi_addr_text(local, info.local_address, sizeof(info.local_address),
			&info.local_port);
	mllpi_rlog_line(&r->log, MLLP_LOG_WARNING,
			"refused connection from %s:%u: %s", info.peer_address,
			info.peer_port, why);
	/* Abortive close: the client learns at once (RST). */
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	ST_ADD(r, st_refused, 1);
	ST_ADD(r, st_refused_by[by], 1);
	emit(r, MLLP_RECEIVER_EV_CONNECTION_STOP, &info, MLLP_CLOSE_REFUSED, 0,
	     0, MLLP_MSG_UNKNOWN, 0, 0);
}

static void on_accepted(struct mllp_receiver *r, int fd)
{
	struct sockaddr_storage peer, local;
	socklen_t pl = sizeof(peer), ll = sizeof(local);
	memset(&peer, 0, sizeof(peer));
	memset(&local, 0, sizeof(local));
	if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
		close(fd); /* already gone */
		return;
	}
	getsockname(fd, (struct sockaddr *)&local, &ll);
	if (r->stopping) {
		close(fd);
		return;
	}
	if (!mllpi_recv_allowed(r, &peer)) {
		refuse(r, fd, &peer, &local, "not in allowed_clients",
		       REFUSED_ALLOW_LIST);
		return;
	}
	if (r->nconns >= r->cfg.max_connections) {
		refuse(r, fd, &peer, &local, "max_connections reached",
		       REFUSED_MAX_CONNECTIONS);
		return;
	}
	struct rconn *c = r->alloc.alloc(r->alloc.ctx, sizeof(*c));
	if (!c) {
		refuse(r, fd, &peer, &local, "out of memory",
		       REFUSED_MAX_CONNECTIONS);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->fd = fd;
	c->info.id = ++r->next_id;
	mllpi_addr_text(&peer, c->info.peer_address,
			sizeof(c->info.peer_address), &c->info.peer_port);
	mllpi_addr_text(&local, c->info.local_address,
			sizeof(c->info.local_address), &c->info.local_port);
	mllp_decoder_init(&c->dec, &r->fcfg, &r->alloc);
	c->idle.kind = T_IDLE;
	c->idle.owner = c;
	c->delay.kind = T_DELAY;
	c->delay.owner = c;
	c->start_us = c->last_active_us = mllpi_now_us();
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = r->conns;
	if (r->conns)
		r->conns->prev = c;
	r->conns = c;
	r->nconns++;
	mllpi_rbudget_add(&r->budget, &c->bc);
	ST_ADD(r, st_accepted, 1);
	ST_ADD(r, st_active, 1);
	emit(r, MLLP_RECEIVER_EV_CONNECTION_START, &c->info, MLLP_CLOSE_NONE, 0,
	     0, MLLP_MSG_UNKNOWN, 0, 0);
	if (r->tls_ctx) {
		struct mllp_error e;
		int rc = mllpi_rtls_start(c, &e);
		if (rc < 0) {
			mllpi_rconn_fail(c, rc, "cannot start TLS");
			return;
		}
	}
	uint64_t due = mllpi_rconn_idle_due(r, c);
	if (due && mllpi_timer_arm(&r->loop.timers, &c->idle, due) < 0) {
		mllpi_rconn_fail(c, MLLP_ERR_NO_MEMORY,
				 "cannot arm idle timer");
		return;
	}
	mllpi_rconn_arm_recv(c);
}

void mllpi_recv_on_accept(struct mllp_receiver *r, const struct mllpi_cqe *cq)
{
	if (!cq->more) {
		r->lpending--;
		r->accept_armed = false;
	}
	if (cq->res >= 0) {
		on_accepted(r, cq->res);
	} else if (!r->stopping) { /* stopping: cancelled or shut down */
		mllpi_rlog_line(&r->log, MLLP_LOG_ERROR, "accept failed: %s",
				mllp_strerror(cq->res));
	}
	if (!cq->more && !r->stopping) {
		if (cq->res < 0)
			mllpi_timer_arm(&r->loop.timers, &r->ltimer,
					mllpi_now_us() + ACCEPT_RETRY_US);
		else
			mllpi_recv_listener_arm(r);
	}
}

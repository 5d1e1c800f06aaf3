/* The receiver's allow-list (allowed_clients): addresses, CIDR ranges and
 * host names (resolved at start) matched against each accepted peer. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "receiver_internal.h"

static bool prefix_match(const unsigned char *a, const unsigned char *b,
			 unsigned bits)
{
	unsigned bytes = bits / 8, rem = bits % 8;
	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rem == 0)
		return true;
	unsigned char mask = (unsigned char)(0xFFu << (8 - rem));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool mllpi_recv_allowed(const struct mllp_receiver *r,
			const struct sockaddr_storage *ss)
{
	if (!r->allow_on)
		return true;
	int fam;
	const unsigned char *a;
	if (ss->ss_family == AF_INET) {
		fam = AF_INET;
		a = (const unsigned char *)&(
			(const struct sockaddr_in *)(const void *)ss)
			->sin_addr;
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			fam = AF_INET;
			a = &s6->sin6_addr.s6_addr[12];
		} else {
			fam = AF_INET6;
			a = s6->sin6_addr.s6_addr;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < r->nallow; i++)
		if (r->allow[i].family == fam &&
		    prefix_match(a, r->allow[i].addr, r->allow[i].prefix))
			return true;
	return false;
}

static int allow_push(struct mllp_receiver *r, size_t *cap, int fam,
		      const void *addr, unsigned prefix)
{
	if (r->nallow == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		void *p = r->alloc.realloc(r->alloc.ctx, r->allow,
					   *cap * sizeof(*r->allow),
					   ncap * sizeof(*r->allow));
		if (!p)
			return MLLP_ERR_NO_MEMORY;
		r->allow = p;
		*cap = ncap;
	}
	struct allow_entry *e = &r->allow[r->nallow++];
	memset(e, 0, sizeof(*e));
	e->family = fam;
	e->prefix = prefix;
	memcpy(e->addr, addr, fam == AF_INET ? 4 : 16);
	return 0;
}

int mllpi_recv_allow_build(struct mllp_receiver *r, size_t *cap,
			   struct mllp_error *err)
{
	const struct mllp_receiver_config *c = &r->cfg;
	r->allow_on = c->allowed_clients && c->allowed_clients_count > 0;
	for (size_t i = 0; r->allow_on && i < c->allowed_clients_count; i++) {
		const char *s = c->allowed_clients[i];
		if (!s || !*s) {
			mllp_error_set(err, MLLP_CTX_NONE,
				       MLLP_ERR_INVALID_ARGUMENT,
				       "empty allowed_clients entry");
			return MLLP_ERR_INVALID_ARGUMENT;
		}
		char host[256];
		snprintf(host, sizeof(host), "%s", s);
		char *slash = strchr(host, '/');
		long prefix = -1;
		if (slash) {
			*slash = 0;
			char *end;
			prefix = strtol(slash + 1, &end, 10);
			if (*end || slash[1] == 0)
				prefix = 999;
		}
		unsigned char buf[16];
		int fam = 0;
		if (inet_pton(AF_INET, host, buf) == 1)
			fam = AF_INET;
		else if (inet_pton(AF_INET6, host, buf) == 1)
			fam = AF_INET6;
		if (slash && (fam == 0 || prefix < 0 ||
			      prefix > (fam == AF_INET ? 32 : 128))) {
			mllp_error_set(err, MLLP_CTX_NONE,
				       MLLP_ERR_INVALID_ARGUMENT,
				       "invalid CIDR range in allowed_clients: "
				       "%s",
				       s);
			return MLLP_ERR_INVALID_ARGUMENT;
		}
		if (fam) {
			unsigned pf = slash ? (unsigned)prefix
					    : (fam == AF_INET ? 32u : 128u);
			if (allow_push(r, cap, fam, buf, pf) < 0)
				goto nomem;
			continue;
		}
		/* A host name: resolve now (the manager never does DNS). */
		struct addrinfo hints, *res = NULL;
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		int gr = getaddrinfo(host, NULL, &hints, &res);
		if (gr != 0) {
			mllpi_rlog_line(
			    &r->log, MLLP_LOG_WARNING,
			    "allowed_clients: cannot resolve %s (%s), "
			    "dropped",
			    s, gai_strerror(gr));
			continue;
		}
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			int rc = 0;
			if (ai->ai_family == AF_INET)
				rc = allow_push(
				    r, cap, AF_INET,
				    &((struct sockaddr_in *)(void *)ai->ai_addr)
					 ->sin_addr,
				    32);
			else if (ai->ai_family == AF_INET6)
				rc =
				    allow_push(r, cap, AF_INET6,
					       &((struct sockaddr_in6 *)(void *)
						     ai->ai_addr)
						    ->sin6_addr,
					       128);
			if (rc < 0) {
				freeaddrinfo(res);
				goto nomem;
			}
		}
		freeaddrinfo(res);
	}
	if (r->allow_on && r->nallow == 0)
		mllpi_rlog_line(
		    &r->log, MLLP_LOG_WARNING,
		    "allowed_clients: no entry left, every client will be "
		    "refused");
	return 0;
nomem:
	mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_NO_MEMORY, NULL);
	return MLLP_ERR_NO_MEMORY;
}

void mllpi_recv_allow_free(struct mllp_receiver *r)
{
	if (r->allow)
		r->alloc.free(r->alloc.ctx, r->allow,
			      r->allow_cap * sizeof(*r->allow));
	r->allow = NULL;
	r->nallow = r->allow_cap = 0;
}

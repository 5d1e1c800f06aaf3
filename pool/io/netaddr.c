/* Socket addresses as text: see netaddr.h. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

void mllpi_addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap,
		     uint16_t *port)
{
	buf[0] = 0;
	*port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)cap);
		*port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf,
				  (socklen_t)cap);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, buf,
				  (socklen_t)cap);
		*port = ntohs(s6->sin6_port);
	}
}

void mllpi_addr_port_text(const struct sockaddr_storage *ss, char *buf,
			  size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	uint16_t port;
	mllpi_addr_text(ss, a, sizeof(a), &port);
	if (strchr(a, ':'))
		snprintf(buf, cap, "[%s]:%u", a, port);
	else
		snprintf(buf, cap, "%s:%u", a, port);
}

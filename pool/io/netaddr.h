/* Internal: socket addresses as text, for logs and connection info. */
#ifndef MLLPI_NETADDR_H
#define MLLPI_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for "[IPv6]:65535" and its NUL. */
#define MLLPI_ADDR_TEXT_MAX 56

/* Numeric text of an address ("127.0.0.1", "::1"; an IPv4-mapped IPv6
 * address as IPv4) and its port. Empty text and port 0 for another
 * family. */
void mllpi_addr_text(const struct sockaddr_storage *ss, char *buf, size_t cap,
		     uint16_t *port);

/* The address with its port: "127.0.0.1:2575", "[::1]:2575". */
void mllpi_addr_port_text(const struct sockaddr_storage *ss, char *buf,
			  size_t cap);

#endif

/* GET /metrics over HTTP with libmicrohttpd (metrics_http.h). The
 * listening socket is made here (so errors name their reason), then
 * handed to libmicrohttpd, whose single internal thread (epoll: no
 * FD_SETSIZE limit) serves every connection. */
#include "metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common.h"

struct tool_metrics_http {
	struct MHD_Daemon *d;
	int fd;
	tool_metrics_fn fn;
	void *ctx;
	size_t last; /* size of the last page: the next starts there */
	char address[80];
};

/* Split spec into host and port text; -1 when malformed. */
static int split(const char *spec, char *host, size_t hostcap, uint16_t *port)
{
	const char *colon = strrchr(spec, ':');
	if (!colon)
		return -1;
	const char *h = spec;
	size_t hl = (size_t)(colon - spec);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	} else if (memchr(h, ':', hl) || memchr(h, '[', hl)) {
		return -1; /* an IPv6 address wants brackets */
	}
	uint64_t p;
	if (hl == 0 || hl >= hostcap ||
	    tool_parse_u64(colon + 1, 0, 65535, &p) != 0)
		return -1;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)p;
	return 0;
}

int tool_metrics_check(const char *spec)
{
	char host[256];
	uint16_t port;
	return split(spec, host, sizeof(host), &port);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status,
			     const char *text, const char *allow)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* The page, in a buffer grown until it fits (a counter may gain a digit
 * between two renders: a few tries). NULL on error. */
static char *render(struct tool_metrics_http *h, size_t *len)
{
	size_t cap = h->last + 4096;
	for (int tries = 0; tries < 8; tries++) {
		char *buf = malloc(cap);
		if (!buf)
			return NULL;
		int n = h->fn(h->ctx, buf, cap);
		if (n >= 0 && (size_t)n < cap) {
			*len = (size_t)n;
			h->last = (size_t)n;
			return buf;
		}
		free(buf);
		if (n < 0)
			return NULL;
		cap = (size_t)n + (size_t)n / 4 + 4096;
	}
	return NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req)
{
	static int started;
	(void)version;
	(void)upload_data;
	struct tool_metrics_http *h = cls;
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND,
			     "not found: the metrics are at /metrics\n", NULL);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			     "method not allowed: GET /metrics\n", "GET, HEAD");
	/* A request with a body is refused before the body is read (the
	 * connection then closes after the answer). */
	const char *cl =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if ((cl && strcmp(cl, "0") != 0) ||
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND,
					"Transfer-Encoding"))
		return reply(c, MHD_HTTP_BAD_REQUEST,
			     "bad request: GET /metrics takes no body\n", NULL);
	/* The first call comes with the headers: answering on the next one,
	 * once the request is complete, keeps the connection alive. */
	if (!*req) {
		*req = &started;
		return MHD_YES;
	}
	if (*upload_data_size != 0)
		return MHD_NO; /* a body after all: close */
	size_t len;
	char *page = render(h, &len);
	if (!page)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
			     "cannot render the metrics\n", NULL);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, page, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(page);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				TOOL_METRICS_CONTENT_TYPE);
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* Bind and listen on the first address of host:port; the fd or -1 (err
 * set). Writes the bound address to h->address. */
static int listen_on(struct tool_metrics_http *h, const char *spec, char *err,
		     size_t errcap)
{
	char host[256], svc[8];
	uint16_t port;
	if (split(spec, host, sizeof(host), &port) != 0) {
		snprintf(err, errcap, "--metrics wants ADDR:PORT, got '%s'",
			 spec);
		return -1;
	}
	snprintf(svc, sizeof(svc), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
			*ai = NULL;
	int rc = getaddrinfo(host, svc, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errcap, "--metrics: cannot resolve '%s': %s",
			 host, gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family,
			SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, zero = 0;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6) /* "::" takes IPv4 too */
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				   sizeof(zero));
	}
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, TOOL_METRICS_MAX_CONNS) != 0) {
		snprintf(err, errcap, "--metrics: cannot listen on %s: %s",
			 spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char num[64] = "?";
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	getnameinfo((struct sockaddr *)&ss, sl, num, sizeof(num), NULL, 0,
		    NI_NUMERICHOST);
	unsigned p = ntohs(ss.ss_family == AF_INET6
			       ? ((struct sockaddr_in6 *)&ss)->sin6_port
			       : ((struct sockaddr_in *)&ss)->sin_port);
	snprintf(h->address, sizeof(h->address),
		 ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", num, p);
	return fd;
}

struct tool_metrics_http *tool_metrics_http_start(const char *spec,
						  tool_metrics_fn fn, void *ctx,
						  char *err, size_t errcap)
{
	struct tool_metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errcap, "--metrics: out of memory");
		return NULL;
	}
	h->fn = fn;
	h->ctx = ctx;
	h->fd = listen_on(h, spec, err, errcap);
	if (h->fd < 0) {
		free(h);
		return NULL;
	}
	h->d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
	    handle, h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)h->fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)TOOL_METRICS_MAX_CONNS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned int)TOOL_METRICS_MAX_PER_IP,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)TOOL_METRICS_MAX_REQUEST, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)TOOL_METRICS_TIMEOUT_S, MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errcap,
			 "--metrics: cannot start the HTTP server on %s",
			 h->address);
		close(h->fd);
		free(h);
		return NULL;
	}
	return h;
}

const char *tool_metrics_http_address(const struct tool_metrics_http *h)
{
	return h->address;
}

void tool_metrics_http_stop(struct tool_metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the listening socket too */
	free(h);
}

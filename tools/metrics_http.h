/* A tiny HTTP server for Prometheus scrapes: GET (and HEAD) /metrics,
 * served by libmicrohttpd on its own thread (never a pool's or a
 * receiver's manager thread). Other paths get 404, other methods 405
 * with "Allow: GET, HEAD", a request with a body 400. Bounded: at most
 * TOOL_METRICS_MAX_CONNS connections (TOOL_METRICS_MAX_PER_IP per client
 * address), requests of at most TOOL_METRICS_MAX_REQUEST bytes of header
 * (larger ones are answered with an error and closed by libmicrohttpd), and a
 * connection idle for TOOL_METRICS_TIMEOUT_S seconds (an unfinished request
 * included) is closed. */
#ifndef MLLP_TOOLS_METRICS_HTTP_H
#define MLLP_TOOLS_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define TOOL_METRICS_MAX_CONNS	  32
#define TOOL_METRICS_MAX_PER_IP	  16
#define TOOL_METRICS_MAX_REQUEST  16384
#define TOOL_METRICS_TIMEOUT_S	  10
#define TOOL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Renders the page like the mllp_metrics_render_* calls: writes the text
 * and a NUL into buf when it fits in cap, returns its length (without the
 * NUL) whatever cap is, or a negative error. Called on the server's
 * thread, one call at a time. */
typedef int (*tool_metrics_fn)(void *ctx, char *buf, size_t cap);

struct tool_metrics_http;

/* Check the syntax of "ADDR:PORT" (ADDR an IPv4 address, a host name or
 * an IPv6 address in brackets; PORT 0..65535, 0 for an ephemeral port).
 * 0, or -1 when it is not of that form. */
int tool_metrics_check(const char *spec);

/* Resolve spec (see above), listen and start the server thread. On error
 * returns NULL and writes the reason to err ("cannot listen on
 * 127.0.0.1:80: Permission denied"). fn and ctx must stay valid until
 * tool_metrics_http_stop() returned. The server thread inherits the
 * caller's signal mask. */
struct tool_metrics_http *tool_metrics_http_start(const char *spec,
						  tool_metrics_fn fn, void *ctx,
						  char *err, size_t errcap);

/* The bound address, "127.0.0.1:PORT" or "[::1]:PORT" (numeric, the
 * ephemeral port for port 0). Valid until stop. */
const char *tool_metrics_http_address(const struct tool_metrics_http *h);

/* Stop the server (waits for its thread) and free it. NULL ignored. */
void tool_metrics_http_stop(struct tool_metrics_http *h);

#endif

/* What the pool says when it cannot reach a receiver: an unresolvable host
 * is named with the resolver's reason, and each connect failure's log line
 * names the address tried. Loopback only; every wait is bounded. Backend:
 * MLLP_TEST_BACKEND (common.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

/* ---- log capture: the first lines ---------------------------------------- */

#define CAP_LINES 16

struct cap {
	pthread_mutex_t mu;
	char line[CAP_LINES][256];
	int n;
};

static void cap_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct cap *c = ctx;
	(void)l;
	pthread_mutex_lock(&c->mu);
	if (c->n < CAP_LINES)
		snprintf(c->line[c->n++], sizeof(c->line[0]), "%s", line);
	pthread_mutex_unlock(&c->mu);
}

struct cap_min {
	struct cap *c;
	int n;
};

static bool cap_reached(void *arg)
{
	struct cap_min *w = arg;
	pthread_mutex_lock(&w->c->mu);
	bool r = w->c->n >= w->n;
	pthread_mutex_unlock(&w->c->mu);
	return r;
}

static bool cap_has(struct cap *c, int upto, const char *want)
{
	bool r = false;
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->n && i < upto && !r; i++)
		r = strcmp(c->line[i], want) == 0;
	pthread_mutex_unlock(&c->mu);
	return r;
}

static void cap_print(struct cap *c)
{
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->n; i++)
		fprintf(stderr, "  log: %s\n", c->line[i]);
	pthread_mutex_unlock(&c->mu);
}

/* A pool logging into cap, one connection to host:port. */
static struct mllp_pool *pool_to(struct cap *cap, const char *host,
				 uint16_t port, uint32_t *ep,
				 struct mllp_error *err, int *rc)
{
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.log = cap_log;
	cfg.log_ctx = cap;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, err), 0);
	*rc = mllp_pool_add_endpoint(p, host, port, 1, NULL, ep, err);
	return p;
}

/* Skip the test, saying why. */
#define skip_msg(...)                                                          \
	do {                                                                   \
		fprintf(stderr, "skipped: " __VA_ARGS__);                      \
		fprintf(stderr, "\n");                                         \
		skip();                                                        \
	} while (0)

/* ---- tests -------------------------------------------------------------- */

/* A host that does not resolve: the error names it and keeps the resolver's
 * reason (whatever this machine's resolver says: no DNS in a sandbox may
 * give another reason than "Name or service not known"). */
static void test_unresolvable_host(void **state)
{
	(void)state;
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	int gr = getaddrinfo("x.invalid", "2575", &hints, &res);
	if (gr == 0) {
		freeaddrinfo(res);
		skip_msg("this resolver answers for x.invalid: cannot test");
	}
	char want[256];
	snprintf(want, sizeof(want), "cannot resolve 'x.invalid': %s",
		 gr == EAI_SYSTEM ? mllp_strerror(-errno) : gai_strerror(gr));
	struct cap cap = {.n = 0};
	pthread_mutex_init(&cap.mu, NULL);
	struct mllp_error err;
	uint32_t ep;
	int rc;
	struct mllp_pool *p = pool_to(&cap, "x.invalid", 2575, &ep, &err, &rc);
	assert_int_equal(rc, MLLP_ERR_BAD_ADDRESS);
	assert_int_equal(err.reason, MLLP_ERR_BAD_ADDRESS);
	assert_int_equal(err.context, MLLP_CTX_CONNECT);
	assert_string_equal(err.message, want);
	mllp_pool_destroy(p);
	pthread_mutex_destroy(&cap.mu);
}

/* A port that refuses on both ::1 and 127.0.0.1: a dual-stack socket bound
 * to it and not listening. Returns the fd (close it after) and the port. */
static int refusing_port(uint16_t *port)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int off = 0;
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	struct sockaddr_in6 sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_any;
	socklen_t sl = sizeof(sa);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(sa.sin6_port);
	return fd;
}

/* Whether localhost resolves to ::1 and 127.0.0.1, in that order. */
static bool localhost_is_dual(void)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo("localhost", "1", &hints, &res) != 0)
		return false;
	bool v6 = res->ai_family == AF_INET6, v4 = false;
	for (struct addrinfo *a = res->ai_next; a; a = a->ai_next)
		v4 |= a->ai_family == AF_INET;
	freeaddrinfo(res);
	return v6 && v4;
}

/* A pool logging into cap (initialised here), one connection to host at a
 * port that refuses on ::1 and 127.0.0.1, until cap holds n lines (5 s at
 * most); the pool is destroyed then. Returns the port. Skips the test
 * where no dual-stack socket can be had. */
static uint16_t refused_lines(struct cap *cap, const char *host, int n)
{
	uint16_t port = 0;
	int hold = refusing_port(&port);
	if (hold < 0)
		skip_msg("no dual-stack IPv6 socket here: cannot test");
	cap->n = 0;
	pthread_mutex_init(&cap->mu, NULL);
	struct mllp_error err;
	uint32_t ep;
	int rc;
	struct mllp_pool *p = pool_to(cap, host, port, &ep, &err, &rc);
	assert_int_equal(rc, 0);
	struct cap_min w = {cap, n};
	assert_true(tr_wait_until(cap_reached, &w, 5000));
	mllp_pool_destroy(p);
	close(hold);
	return port;
}

/* localhost is ::1 and 127.0.0.1: the two refusals of one round are two
 * log lines that say which address each was. */
static void test_log_names_each_address(void **state)
{
	(void)state;
	if (!localhost_is_dual())
		skip_msg("localhost does not resolve to ::1 then 127.0.0.1 "
			 "here: cannot test");
	struct cap cap;
	uint16_t port = refused_lines(&cap, "localhost", 2);
	char v6[160], v4[160];
	snprintf(v6, sizeof(v6),
		 "Error connecting to localhost:%u ([::1]:%u) => connection "
		 "refused",
		 port, port);
	snprintf(v4, sizeof(v4),
		 "Error connecting to localhost:%u (127.0.0.1:%u) => "
		 "connection refused",
		 port, port);
	if (!cap_has(&cap, 2, v6) || !cap_has(&cap, 2, v4)) {
		cap_print(&cap);
		fail_msg("want the lines '%s' and '%s'", v6, v4);
	}
	pthread_mutex_destroy(&cap.mu);
}

/* The first log line of a pool to host at a refusing port is
 * "Error connecting to HOST:PORT (ADDR:PORT) => connection refused", or
 * without the parenthesis when addr is NULL. */
static void first_line_case(const char *host, const char *addr)
{
	struct cap cap;
	uint16_t port = refused_lines(&cap, host, 1);
	char at[80] = "", want[200];
	if (addr)
		snprintf(at, sizeof(at), " (%s:%u)", addr, port);
	snprintf(want, sizeof(want),
		 "Error connecting to %s:%u%s => connection refused", host,
		 port, at);
	if (!cap_has(&cap, 1, want)) {
		cap_print(&cap);
		fail_msg("want the line '%s'", want);
	}
	pthread_mutex_destroy(&cap.mu);
}

/* A host given as the address itself: not repeated. */
static void test_log_literal_address(void **state)
{
	(void)state;
	first_line_case("127.0.0.1", NULL);
	first_line_case("::1", NULL);
}

/* A host written otherwise than its address (as a name would be): the
 * address tried follows, IPv6 in brackets. Runs where localhost is IPv4
 * only, too. */
static void test_log_other_spelling(void **state)
{
	(void)state;
	first_line_case("127.1", "127.0.0.1");
	first_line_case("0:0:0:0:0:0:0:1", "[::1]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unresolvable_host),
	    cmocka_unit_test(test_log_names_each_address),
	    cmocka_unit_test(test_log_literal_address),
	    cmocka_unit_test(test_log_other_spelling),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

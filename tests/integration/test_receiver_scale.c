/* The MLLP receiver on loopback: the allow-list (IPv4 and IPv6), a
 * thousand connections, the connection limit. */
#include <errno.h>

#include "recv_util.h"

/* ---- allow-list --------------------------------------------------------- */

/* Start with the allow-list, connect from addr; true when served. */
static bool try_allow(const char *listen, const char *from,
		      const char *const *allow, size_t n, struct rec *r)
{
	struct mllp_receiver_config c;
	cfg_for(&c, r, mllp_dispatch_echo, NULL);
	c.address = listen;
	c.allowed_clients = allow;
	c.allowed_clients_count = n;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	assert_int_equal(tc_connect_to(&t, from, mllp_receiver_port(rv)), 0);
	bool ok = false;
	const char *msg = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|AL1|P|2.5\r";
	unsigned char sb = MLLP_SB, tr[2] = {MLLP_EB, MLLP_CR};
	/* A refused client may see its writes fail (reset). */
	if (send(t.fd, &sb, 1, MSG_NOSIGNAL) == 1 &&
	    send(t.fd, msg, strlen(msg), MSG_NOSIGNAL) > 0 &&
	    send(t.fd, tr, 2, MSG_NOSIGNAL) == 2) {
		char *rep = tc_read_frame(&t, NULL);
		ok = rep != NULL;
		free(rep);
	}
	tc_close(&t);
	mllp_receiver_destroy(rv);
	return ok;
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	s6.sin6_addr = in6addr_loopback;
	bool ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
	close(fd);
	return ok;
}

static void test_allow_list(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	const char *deny4[] = {"10.1.2.3"};
	const char *allow4[] = {"127.0.0.1"};
	const char *cidr_ok[] = {"192.168.0.0/16", "127.0.0.0/8"};
	const char *cidr_no[] = {"127.0.1.0/24"};
	const char *names[] = {"no-such-host.invalid", "localhost"};
	const char *gone[] = {"no-such-host.invalid"};
	assert_false(try_allow("127.0.0.1", "127.0.0.1", deny4, 1, &r));
	assert_true(rec_count_lines(&r, "refused connection from 127.0.0.1") >=
		    1);
	assert_true(r.reasons[MLLP_CLOSE_REFUSED] >= 1);
	assert_true(try_allow("127.0.0.1", "127.0.0.1", allow4, 1, &r));
	assert_true(try_allow("127.0.0.1", "127.0.0.1", cidr_ok, 2, &r));
	assert_false(try_allow("127.0.0.1", "127.0.0.1", cidr_no, 1, &r));
	assert_true(try_allow("127.0.0.1", "127.0.0.1", names, 2, &r));
	assert_true(
	    rec_count_lines(&r, "cannot resolve no-such-host.invalid") >= 1);
	assert_false(try_allow("127.0.0.1", "127.0.0.1", gone, 1, &r));
	if (have_ipv6()) {
		const char *a6[] = {"::1"};
		const char *c6ok[] = {"::/64"};
		const char *c6no[] = {"fd00::/8"};
		const char *v4only[] = {"127.0.0.1"};
		assert_true(try_allow("::1", "::1", a6, 1, &r));
		assert_true(try_allow("::1", "::1", c6ok, 1, &r));
		assert_false(try_allow("::1", "::1", c6no, 1, &r));
		assert_false(try_allow("::1", "::1", v4only, 1, &r));
		/* Dual-stack listener: an IPv4 client (v4-mapped) matches
		 * IPv4 entries. */
		assert_true(try_allow("::", "127.0.0.1", v4only, 1, &r));
		assert_false(try_allow("::", "127.0.0.1", a6, 1, &r));
	} else {
		fprintf(stderr, "no IPv6 loopback: IPv6 cases skipped\n");
	}
	rec_free(&r);
}

/* ---- scale -------------------------------------------------------------- */

static void test_thousand_connections(void **state)
{
	(void)state;
	enum { N = 1000 };
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2 * N + 100) {
		rl.rlim_cur =
		    rl.rlim_max < 2 * N + 100 ? rl.rlim_max : 2 * N + 100;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < 2 * N + 100) {
			fprintf(stderr, "RLIMIT_NOFILE too low, skipped\n");
			return;
		}
	}
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.ring_entries = 1024;
	c.log_level = MLLP_LOG_WARNING;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc *t = calloc(N, sizeof(*t));
	for (int i = 0; i < N; i++)
		tc_connect(&t[i], port);
	assert_int_equal(
	    rec_wait(&r, &r.ev[MLLP_RECEIVER_EV_CONNECTION_START], N), N);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_active, N);
	for (int i = 0; i < N; i++) {
		char msg[128];
		int n =
		    snprintf(msg, sizeof(msg),
			     "MSH|^~\\&|A|B|C|D|2024||ADT^A01|K%d|P|2.5\r", i);
		tc_send_frame(&t[i], msg, (size_t)n);
	}
	for (int i = 0; i < N; i++) {
		char *rep = tc_read_frame(&t[i], NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), "MSA|AA|K%d|", i);
		assert_non_null(strstr(rep, id));
		free(rep);
	}
	for (int i = 0; i < N; i++)
		tc_close(&t[i]);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], N), N);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.connections_active, 0);
	assert_int_equal(st.replies_sent, N);
	mllp_receiver_destroy(rv);
	free(t);
	rec_free(&r);
}

static void test_max_connections(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_connections = 2;
	struct mllp_receiver *rv = start(&c);
	uint16_t port = mllp_receiver_port(rv);
	struct tc t[3];
	for (int i = 0; i < 2; i++)
		tc_connect(&t[i], port);
	/* The third is refused at once (abortive close): the reset may come
	 * before connect() has returned. */
	if (tc_connect_to(&t[2], "127.0.0.1", port) == 0)
		assert_true(tc_wait_closed(&t[2]));
	else
		assert_int_equal(errno, ECONNRESET);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_REFUSED], 1), 1);
	assert_true(rec_wait_line(&r, "max_connections reached"));
	tc_send_frame(&t[0], "x", 1);
	char *rep = tc_read_frame(&t[0], NULL);
	assert_non_null(rep);
	free(rep);
	for (int i = 0; i < 3; i++)
		tc_close(&t[i]);
	finish(rv, &r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_thousand_connections),
	    cmocka_unit_test(test_max_connections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

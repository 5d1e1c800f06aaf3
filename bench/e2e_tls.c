/* End-to-end loopback benchmark of TLS, in one process.
 *
 * Two library receivers (the built-in `ack` dispatcher, AA), one plaintext
 * and one TLS (certificates made at start by tests/make_certs.sh into a
 * temporary directory), and one pool with an endpoint of N connections to
 * each. Messages run closed-loop: every connection keeps one message in
 * flight (the completion callback sends the next one). Phases, each
 * `seconds` long, alternate plaintext / TLS twice and report ACKed
 * messages/s and the TLS/plaintext ratio. Then handshakes per second: the
 * TLS endpoint is reconnected over and over (mllp_pool_reconnect), once
 * with session resumption off (full handshakes) and once on (resumed),
 * counted with mllp_pool_get_stats().tls_handshakes / tls_resumed.
 *
 * usage: e2e_tls [seconds=3] [connections=64]
 *        E2E_BACKEND=io_uring|epoll (default io_uring);
 *        E2E_TLS_VERSION=12|13 (default 13);
 *        E2E_CIPHERS=<cipher list> (client; default: the library's
 *        default list, and then a second TLS endpoint pinned to
 *        AES-128-GCM runs in the same phases for comparison);
 *        E2E_HANDSHAKES_ONLY=1 skips the message phases;
 *        E2E_NO_HANDSHAKES=1 skips the handshake phases;
 *        E2E_ONLY=tls|plaintext runs only those message phases. */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "certs.h"

static const char msg[] =
    "MSH|^~\\&|SND|SFAC|RCV|RFAC|20240101120000||ADT^A01|CTRL1|P|2.5\r"
    "EVN|A01|20240101120000\r"
    "PID|1||123456^^^HOSP^MR||DOE^JOHN||19800101|M\r"
    "PV1|1|I|WARD^101^1\r";

static char certdir[PATH_MAX];

static const char *cert(const char *name)
{
	static char buf[8][PATH_MAX + 32];
	static int n;
	char *b = buf[n++ % 8];
	snprintf(b, sizeof(buf[0]), "%s/%s", certdir, name);
	return b;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	if (l <= MLLP_LOG_ERROR)
		fprintf(stderr, "log: %s\n", line);
}

struct loop {
	struct mllp_pool *pool;
	uint32_t ep;
	_Atomic bool run;
	_Atomic uint64_t acked, failed;
	_Atomic int live;
};

static void on_done(struct mllp_future *f, void *arg);

static void send_one(struct loop *l)
{
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.callback = on_done;
	o.callback_arg = l;
	o.borrow_payload = true;
	struct mllp_future *f;
	atomic_fetch_add(&l->live, 1);
	if (mllp_pool_send(l->pool, l->ep, msg, sizeof(msg) - 1, &o, &f,
			   NULL) != 0)
		atomic_fetch_sub(&l->live, 1);
}

static void on_done(struct mllp_future *f, void *arg)
{
	struct loop *l = arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT)
		atomic_fetch_add_explicit(&l->acked, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&l->failed, 1, memory_order_relaxed);
	mllp_future_free(f);
	atomic_fetch_sub(&l->live, 1);
	if (atomic_load(&l->run))
		send_one(l);
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) /
		   1e6;
}

static double g_cpu_us; /* CPU (pool + receivers) per message, last phase */

/* Closed loop on one endpoint for `secs`: ACKed messages per second.
 * E2E_ONLY=tls|plaintext runs only that kind (for profiling); the other
 * answers 0. */
static double phase(struct loop *l, uint32_t conns, double secs, bool is_tls)
{
	const char *only = getenv("E2E_ONLY");
	if (only && strcmp(only, is_tls ? "tls" : "plaintext") != 0) {
		g_cpu_us = 0;
		return 0;
	}
	atomic_store(&l->acked, 0);
	atomic_store(&l->failed, 0);
	atomic_store(&l->run, true);
	for (uint32_t i = 0; i < conns; i++)
		send_one(l);
	double t0 = now_s(), c0 = cpu_s();
	usleep((useconds_t)(secs * 1e6));
	uint64_t n = atomic_load(&l->acked);
	double dt = now_s() - t0;
	g_cpu_us = n ? (cpu_s() - c0) * 1e6 / (double)n : 0;
	atomic_store(&l->run, false);
	while (atomic_load(&l->live) > 0)
		usleep(1000);
	if (atomic_load(&l->failed))
		fprintf(stderr, "  (%llu failed)\n",
			(unsigned long long)atomic_load(&l->failed));
	return (double)n / dt;
}

static struct mllp_receiver *receiver(const struct mllp_tls_server_config *t,
				      enum mllp_backend_kind be,
				      struct mllp_ack_dispatcher *d)
{
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = mllp_dispatch_ack;
	rc.dispatch_ctx = d;
	rc.tls = t;
	rc.backend = be;
	rc.log = quiet;
	struct mllp_receiver *r;
	struct mllp_error e;
	if (mllp_receiver_create(&rc, &r, &e) != 0) {
		fprintf(stderr, "receiver: %s\n", e.message);
		exit(1);
	}
	return r;
}

static uint32_t add_ep(struct mllp_pool *p, uint16_t port, uint32_t conns,
		       const struct mllp_tls_client_config *t)
{
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.tls = t;
	o.connect_timeout_ms = 10000;
	uint32_t id;
	struct mllp_error e;
	if (mllp_pool_add_endpoint(p, "127.0.0.1", port, conns, &o, &id, &e)) {
		fprintf(stderr, "add_endpoint: %s\n", e.message);
		exit(1);
	}
	return id;
}

static void wait_up(struct mllp_pool *p, uint32_t ep, uint32_t n)
{
	for (int i = 0; i < 20000 && mllp_pool_connected_count(p, ep) < n; i++)
		usleep(1000);
}

/* Reconnect the endpoint repeatedly for secs: handshakes per second
 * (resumed ones when resumed). */
static double handshakes(struct mllp_pool *p, uint32_t ep, uint32_t conns,
			 double secs, bool resumed, double *resumed_share)
{
	struct mllp_pool_stats s0, s;
	wait_up(p, ep, conns);
	usleep(200000); /* TLS 1.3 tickets read */
	mllp_pool_stats_init(&s0);
	mllp_pool_stats_init(&s);
	mllp_pool_get_stats(p, &s0);
	double t0 = now_s(), dt;
	uint64_t target = s0.tls_handshakes;
	do {
		target += conns;
		mllp_pool_reconnect(p, ep);
		do {
			usleep(200);
			mllp_pool_get_stats(p, &s);
		} while (s.tls_handshakes < target && now_s() - t0 < secs + 10);
		dt = now_s() - t0;
	} while (dt < secs);
	uint64_t n = s.tls_handshakes - s0.tls_handshakes;
	*resumed_share =
	    n ? (double)(s.tls_resumed - s0.tls_resumed) / (double)n : 0;
	(void)resumed;
	return (double)n / dt;
}

/* The throughput phases: plaintext, TLS (and TLS pinned to AES-GCM), each
 * twice, alternating; prints the rates and the ratios. */
static void throughput(struct loop *lp, struct loop *lt, struct loop *la,
		       uint32_t conns, double secs, bool cmp_aes)
{
	double r[3][2], c[3][2];
	for (int k = 0; k < 2; k++) {
		r[0][k] = phase(lp, conns, secs, false);
		c[0][k] = g_cpu_us;
		r[1][k] = phase(lt, conns, secs, true);
		c[1][k] = g_cpu_us;
		r[2][k] = c[2][k] = 0;
		if (cmp_aes) {
			r[2][k] = phase(la, conns, secs, true);
			c[2][k] = g_cpu_us;
		}
	}
	static const char *const name[3] = {"plaintext ", "tls       ",
					    "tls aesgcm"};
	double m[3], mc[3];
	for (int i = 0; i < (cmp_aes ? 3 : 2); i++) {
		m[i] = (r[i][0] + r[i][1]) / 2;
		mc[i] = (c[i][0] + c[i][1]) / 2;
		printf("%s %10.0f msgs/s  (%.0f, %.0f)  %.1f us "
		       "CPU/msg\n",
		       name[i], m[i], r[i][0], r[i][1], mc[i]);
	}
	printf("ratio tls/plaintext %.2f (CPU per message %.2f)\n", m[1] / m[0],
	       mc[0] / mc[1]);
	if (cmp_aes)
		printf("ratio tls aesgcm/plaintext %.2f (CPU per "
		       "message %.2f)\n",
		       m[2] / m[0], mc[0] / mc[2]);
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3;
	uint32_t conns = argc > 2 ? (uint32_t)atoi(argv[2]) : 64;
	const char *bs = getenv("E2E_BACKEND");
	enum mllp_backend_kind be = bs && !strcmp(bs, "epoll")
					? MLLP_BACKEND_EPOLL
					: MLLP_BACKEND_IO_URING;
	const char *vs = getenv("E2E_TLS_VERSION");
	enum mllp_tls_version ver = vs && !strcmp(vs, "12")
					? MLLP_TLS_VERSION_1_2
					: MLLP_TLS_VERSION_1_3;
	if (tc_certs_make(MLLP_SOURCE_DIR "/tests", "mllp-e2e-tls", certdir) !=
	    0) {
		fprintf(stderr, "e2e_tls: cannot make the certificates\n");
		return 1;
	}

	static struct mllp_ack_dispatcher d1, d2;
	mllp_ack_dispatcher_init(&d1);
	mllp_ack_dispatcher_init(&d2);
	struct mllp_tls_server_config st;
	mllp_tls_server_config_init(&st);
	st.enabled = true;
	st.cert_file = cert("server.pem");
	st.key_file = cert("server.key");
	struct mllp_receiver *plain = receiver(NULL, be, &d1);
	struct mllp_receiver *tls = receiver(&st, be, &d2);

	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.backend = be;
	pc.log = quiet;
	struct mllp_pool *pool;
	struct mllp_error e;
	if (mllp_pool_create(&pc, &pool, &e) != 0) {
		fprintf(stderr, "pool: %s\n", e.message);
		return 1;
	}
	struct mllp_tls_client_config ct;
	mllp_tls_client_config_init(&ct);
	ct.enabled = true;
	ct.ca_file = cert("ca.pem");
	ct.min_version = ver;
	ct.max_version = ver;
	ct.cipher_list = getenv("E2E_CIPHERS"); /* NULL: the library's */
	if (ct.cipher_list && !*ct.cipher_list)
		ct.cipher_list = NULL;
	/* Without E2E_CIPHERS, a second TLS endpoint pinned to AES-128-GCM
	 * runs in the same phases, for comparison with the default. */
	struct mllp_tls_client_config ca = ct;
	ca.cipher_list =
	    "TLS13-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:"
	    "ECDHE-RSA-AES128-GCM-SHA256";
	bool cmp_aes = ct.cipher_list == NULL;
	static struct loop lp, lt, la;
	lp.pool = lt.pool = la.pool = pool;
	lp.ep = add_ep(pool, mllp_receiver_port(plain), conns, NULL);
	lt.ep = add_ep(pool, mllp_receiver_port(tls), conns, &ct);
	if (cmp_aes)
		la.ep = add_ep(pool, mllp_receiver_port(tls), conns, &ca);
	wait_up(pool, lp.ep, conns);
	wait_up(pool, lt.ep, conns);
	if (cmp_aes)
		wait_up(pool, la.ep, conns);
	char first[64] = "";
	if (cmp_aes) {
		/* The default list's first suite for the version (what a
		 * default receiver picks): TLS 1.3 or ECDHE-ECDSA. */
		const char *want =
		    ver == MLLP_TLS_VERSION_1_2 ? "ECDHE-ECDSA-" : "TLS13-";
		const char *q = mllp_tls_default_cipher_list();
		while (q && strncmp(q, want, strlen(want)) != 0)
			q = (q = strchr(q, ':')) ? q + 1 : NULL;
		if (q)
			snprintf(first, sizeof(first), "%.*s",
				 (int)strcspn(q, ":"), q);
	}
	printf("e2e_tls: %u connections, %.1f s phases, backend %s, %s, "
	       "%zu-byte messages, ciphers %s%s\n",
	       conns, secs, mllp_pool_backend(pool),
	       ver == MLLP_TLS_VERSION_1_2 ? "TLS 1.2" : "TLS 1.3",
	       sizeof(msg) - 1, cmp_aes ? "default: " : "",
	       cmp_aes ? first : ct.cipher_list);
	if (!getenv("E2E_HANDSHAKES_ONLY"))
		throughput(&lp, &lt, &la, conns, secs, cmp_aes);

	/* Handshakes: a second pool per mode (sessions per connection). */
	for (int resume = 0; resume < 2 && !getenv("E2E_NO_HANDSHAKES");
	     resume++) {
		struct mllp_pool *hp;
		if (mllp_pool_create(&pc, &hp, &e) != 0)
			return 1;
		ct.session_resumption = resume;
		uint32_t hep = add_ep(hp, mllp_receiver_port(tls), conns, &ct);
		double share;
		double rate = handshakes(hp, hep, conns, secs, resume, &share);
		printf("%s handshakes/s %8.0f  (resumed share %.2f)\n",
		       resume ? "resumed" : "full   ", rate, share);
		mllp_pool_destroy(hp);
	}
	mllp_pool_destroy(pool);
	mllp_receiver_destroy(plain);
	mllp_receiver_destroy(tls);
	return tc_certs_remove(certdir) == 0 ? 0 : 1;
}

/* Helpers of the TLS integration tests: see tls_helpers.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "certs.h"
#include "common.h"
#include "testutil.h"
#include "tls_helpers.h"

static char certdir[PATH_MAX];

const char *cp(const char *name)
{
	static char names[64][32];
	static char paths[64][PATH_MAX + 64];
	static unsigned n;
	for (unsigned i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return paths[i];
	assert_true(n < 64 && strlen(name) < sizeof(names[0]));
	snprintf(names[n], sizeof(names[0]), "%s", name);
	snprintf(paths[n], sizeof(paths[0]), "%s/%s", certdir, name);
	return paths[n++];
}

int tt_certs_setup(void **state)
{
	(void)state;
	return tc_certs_make(MLLP_TEST_SOURCE_DIR, "mllp-tlspool", certdir);
}

int tt_certs_teardown(void **state)
{
	(void)state;
	return tc_certs_remove(certdir);
}

/* ---- log capture -------------------------------------------------------- */

void cap_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct logcap *c = ctx;
	(void)l;
	pthread_mutex_lock(&c->mu);
	size_t n = strlen(c->text);
	snprintf(c->text + n, sizeof(c->text) - n, "%s\n", line);
	pthread_mutex_unlock(&c->mu);
}

bool cap_has(struct logcap *c, const char *s)
{
	pthread_mutex_lock(&c->mu);
	bool r = strstr(c->text, s) != NULL;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* ---- a TLS receiver ----------------------------------------------------- */

static void srv_dispatch(void *ctx, const struct mllp_message *m,
			 struct mllp_reply *rep)
{
	struct srv *s = ctx;
	pthread_mutex_lock(&s->mu);
	snprintf(s->peer_name, sizeof(s->peer_name), "%s",
		 m->conn->tls_peer_name);
	s->msgs++;
	s->last_len = m->len;
	s->last_sum = 0;
	for (size_t i = 0; i < m->len; i++)
		s->last_sum = s->last_sum * 31 + m->data[i];
	pthread_mutex_unlock(&s->mu);
	mllp_dispatch_echo(NULL, m, rep);
}

void server_cfg(struct mllp_tls_server_config *t)
{
	mllp_tls_server_config_init(t);
	t->enabled = true;
	t->cert_file = cp("server.pem");
	t->key_file = cp("server.key");
}

void mtls_cfg(struct mllp_tls_server_config *t)
{
	server_cfg(t);
	t->require_client_cert = true;
	t->client_ca_file = cp("ca.pem");
}

uint32_t g_hs_ms;

void srv_start_ex(struct srv *s, const struct mllp_tls_server_config *t,
		  const char *const *allowed, size_t nallowed, uint32_t idle_ms)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->log.mu, NULL);
	struct mllp_receiver_config rc;
	ti_receiver_config(&rc, srv_dispatch, s);
	rc.tls = t;
	rc.allowed_clients = allowed;
	rc.allowed_clients_count = nallowed;
	rc.log = cap_log;
	rc.log_ctx = &s->log;
	rc.log_level = MLLP_LOG_INFO;
	rc.ring_entries = 256;
	rc.recv_buffers = 64;
	if (idle_ms)
		rc.idle_timeout_ms = idle_ms;
	if (g_hs_ms)
		rc.tls_handshake_timeout_ms = g_hs_ms;
	struct mllp_error e;
	int rc2 = mllp_receiver_create(&rc, &s->r, &e);
	if (rc2 != 0)
		fail_msg("receiver start: %s", e.message);
	s->port = mllp_receiver_port(s->r);
}

void srv_start(struct srv *s, const struct mllp_tls_server_config *t)
{
	srv_start_ex(s, t, NULL, 0, 0);
}

void srv_stop(struct srv *s)
{
	mllp_receiver_destroy(s->r);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->log.mu);
}

void srv_peer(struct srv *s, char *buf, size_t cap)
{
	pthread_mutex_lock(&s->mu);
	snprintf(buf, cap, "%s", s->peer_name);
	pthread_mutex_unlock(&s->mu);
}

/* ---- the pool side ------------------------------------------------------ */

void client_cfg(struct mllp_tls_client_config *t)
{
	mllp_tls_client_config_init(t);
	t->enabled = true;
	t->ca_file = cp("ca.pem");
}

void client_cert(struct mllp_tls_client_config *t, const char *name)
{
	char f[64];
	snprintf(f, sizeof(f), "%s.pem", name);
	t->cert_file = cp(f);
	snprintf(f, sizeof(f), "%s.key", name);
	t->key_file = cp(f);
}

void cli_conn_options(struct mllp_conn_options *o,
		      const struct mllp_tls_client_config *t)
{
	mllp_conn_options_init(o);
	o->connect_timeout_ms = 3000;
	o->reply_timeout_ms = 5000;
	o->tls = t;
}

int cli_open_opts(struct cli *c, const char *host, uint16_t port,
		  const struct mllp_conn_options *o, uint32_t conns,
		  struct mllp_error *err)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->log.mu, NULL);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.log = cap_log;
	cfg.log_ctx = &c->log;
	cfg.ring_entries = 512;
	cfg.recv_buffers = 256;
	struct mllp_error e;
	assert_int_equal(mllp_pool_create(&cfg, &c->pool, &e), 0);
	return mllp_pool_add_endpoint(c->pool, host, port, conns, o, &c->ep,
				      err);
}

int cli_open_n(struct cli *c, const char *host, uint16_t port,
	       const struct mllp_tls_client_config *t, uint32_t conns,
	       struct mllp_error *err)
{
	struct mllp_conn_options o;
	cli_conn_options(&o, t);
	return cli_open_opts(c, host, port, &o, conns, err);
}

void cli_open(struct cli *c, const char *host, uint16_t port,
	      const struct mllp_tls_client_config *t)
{
	struct mllp_error e;
	int rc = cli_open_n(c, host, port, t, 1, &e);
	if (rc != 0)
		fail_msg("add_endpoint: %s", e.message);
}

void cli_close(struct cli *c)
{
	mllp_pool_destroy(c->pool);
	pthread_mutex_destroy(&c->log.mu);
}

/* Send one message; returns the status, the error message in msg. */
int send_msg(struct cli *c, const void *data, size_t len,
	     struct mllp_result *out, char *msg, size_t cap)
{
	struct mllp_future *f = NULL;
	struct mllp_error e;
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	int rc = mllp_pool_send(c->pool, c->ep, data, len, &so, &f, &e);
	if (rc != 0) {
		if (msg)
			snprintf(msg, cap, "%s", e.message);
		return rc;
	}
	assert_int_equal(mllp_future_wait(f, 15000), 0);
	const struct mllp_result *r = mllp_future_result(f);
	rc = r->status;
	if (out)
		*out = *r;
	if (msg)
		snprintf(msg, cap, "%s", r->error.message);
	mllp_future_free(f);
	return rc;
}

void expect_aa(struct cli *c)
{
	struct mllp_result r;
	char m[256];
	int rc = send_msg(c, HL7, sizeof(HL7) - 1, &r, m, sizeof(m));
	if (rc != 0)
		fail_msg("send failed: %d %s", rc, m);
	assert_true(r.has_verdict);
	assert_int_equal(r.verdict, MLLP_APPLICATION_ACCEPT);
}

/* Expect a TLS failure whose message contains want (NULL: any). */
void expect_tls_error(struct cli *c, const char *want)
{
	char m[256];
	int rc = send_msg(c, HL7, sizeof(HL7) - 1, NULL, m, sizeof(m));
	if (getenv("MLLP_TEST_VERBOSE"))
		fprintf(stderr, "  %d: %s\n", rc, m);
	if (rc != MLLP_ERR_TLS || (want && !strstr(m, want)))
		fail_msg("want a TLS error with '%s', got %d '%s'",
			 want ? want : "", rc, m);
}

bool wait_until(bool (*pred)(void *), void *arg, int ms)
{
	for (int i = 0; i < ms; i += 5) {
		if (pred(arg))
			return true;
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	return pred(arg);
}

/* A TLS receiver (server_cfg) and a pool to it at host (client_cfg). */
void open_pair(struct srv *s, struct mllp_tls_server_config *st, struct cli *c,
	       struct mllp_tls_client_config *ct, const char *host)
{
	server_cfg(st);
	srv_start(s, st);
	client_cfg(ct);
	cli_open(c, host, s->port, ct);
}

void close_pair(struct cli *c, struct srv *s)
{
	cli_close(c);
	srv_stop(s);
}

int connect_loopback(uint16_t port)
{
	return connect_loopback_ex(port, false);
}

int connect_loopback_ex(uint16_t port, bool may_be_reset)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* A receiver that refuses at once (abortive close) may reset the
	 * connection before connect() has returned here. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
	    !(may_be_reset && errno == ECONNRESET))
		fail_msg("connect to 127.0.0.1:%u: %s", port, strerror(errno));
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

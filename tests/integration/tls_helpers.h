/* Helpers of the TLS integration tests (test_tls_pool.c, test_tls_peer.c):
 * certificates made at run time by tests/make_certs.sh, a TLS receiver
 * that records what it got, a pool client, log capture. Every wait is
 * bounded; every helper fails the test on an unexpected error. */
#ifndef TT_TLS_HELPERS_H
#define TT_TLS_HELPERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/mllp.h>

/* cmocka group setup / teardown: make the certificates in a temporary
 * directory, remove it. */
int tt_certs_setup(void **state);
int tt_certs_teardown(void **state);
/* The path of a file made by make_certs.sh ("ca.pem", "server.key", ...);
 * static storage. */
const char *cp(const char *name);

/* ---- log capture -------------------------------------------------------- */

struct logcap {
	pthread_mutex_t mu;
	char text[16384];
};

/* A log callback appending each line to ctx (a struct logcap). */
void cap_log(void *ctx, enum mllp_log_level l, const char *line);
bool cap_has(struct logcap *c, const char *s);

/* ---- a TLS receiver ----------------------------------------------------- */

struct srv {
	struct mllp_receiver *r;
	uint16_t port;
	struct logcap log;
	pthread_mutex_t mu;
	char peer_name[256];
	int msgs;
	size_t last_len; /* the last message: length and byte sum */
	uint64_t last_sum;
};

/* The receiver's TLS handshake timeout for the next srv_start (0: the
 * default). */
extern uint32_t g_hs_ms;

/* server.pem / server.key; mtls_cfg adds a required client certificate
 * from ca.pem. */
void server_cfg(struct mllp_tls_server_config *t);
void mtls_cfg(struct mllp_tls_server_config *t);
/* A receiver on 127.0.0.1, an ephemeral port (s->port), echo dispatcher,
 * TLS per t (NULL: plaintext), logging into s->log. */
void srv_start_ex(struct srv *s, const struct mllp_tls_server_config *t,
		  const char *const *allowed, size_t nallowed,
		  uint32_t idle_ms);
void srv_start(struct srv *s, const struct mllp_tls_server_config *t);
void srv_stop(struct srv *s);
/* The TLS peer name of the last message. */
void srv_peer(struct srv *s, char *buf, size_t cap);

/* ---- the pool side ------------------------------------------------------ */

static const char HL7[] = "MSH|^~\\&|SND|FAC|RCV|FAC|20240101120000||ADT^A01|"
			  "MSG00001|P|2.5\rPID|1||123456\r";

struct cli {
	struct mllp_pool *pool;
	uint32_t ep;
	struct logcap log;
};

/* TLS on, verified against ca.pem; client_cert adds NAME.pem / NAME.key. */
void client_cfg(struct mllp_tls_client_config *t);
void client_cert(struct mllp_tls_client_config *t, const char *name);
/* The endpoint options cli_open_n uses: connect timeout 3 s, reply
 * timeout 5 s, TLS per t (NULL: plaintext). */
void cli_conn_options(struct mllp_conn_options *o,
		      const struct mllp_tls_client_config *t);
/* A pool (backend of the test) logging into c->log, with one endpoint of
 * conns connections and options o: returns add_endpoint's result. */
int cli_open_opts(struct cli *c, const char *host, uint16_t port,
		  const struct mllp_conn_options *o, uint32_t conns,
		  struct mllp_error *err);
/* The same with cli_conn_options(t). */
int cli_open_n(struct cli *c, const char *host, uint16_t port,
	       const struct mllp_tls_client_config *t, uint32_t conns,
	       struct mllp_error *err);
void cli_open(struct cli *c, const char *host, uint16_t port,
	      const struct mllp_tls_client_config *t);
void cli_close(struct cli *c);
/* Send one message; returns the status, the error message in msg. */
int send_msg(struct cli *c, const void *data, size_t len,
	     struct mllp_result *out, char *msg, size_t cap);
void expect_aa(struct cli *c);
/* Expect a TLS failure whose message contains want (NULL: any). */
void expect_tls_error(struct cli *c, const char *want);
bool wait_until(bool (*pred)(void *), void *arg, int ms);
/* A TLS receiver (server_cfg) and a pool to it at host (client_cfg). */
void open_pair(struct srv *s, struct mllp_tls_server_config *st, struct cli *c,
	       struct mllp_tls_client_config *ct, const char *host);
void close_pair(struct cli *c, struct srv *s);

/* A plain TCP socket connected to 127.0.0.1:port (no TLS), every recv on
 * it bounded to 5 s. */
int connect_loopback(uint16_t port);
/* The same; may_be_reset: a reset during connect() (a receiver that
 * refuses the connection at once) is not a failure. */
int connect_loopback_ex(uint16_t port, bool may_be_reset);

#endif

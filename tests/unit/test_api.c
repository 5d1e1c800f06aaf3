/* The public surface's versioning rules: reserved space of config and
 * options structs refused when not zero, stats structs filled up to the
 * caller's size, and the client's create/stop/destroy lifecycle. Loopback
 * only (127.0.0.1, ephemeral ports). */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <mllp/mllp.h>

#define RESERVED_MSG(type)                                                     \
	type ": reserved fields must be zero (initialise with " type "_init)"

static const char msg[] = "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||"
			  "ADT^A01|MSG00001|P|2.5\rPID|1||12345||Doe^John\r";

static void quiet_log(void *ctx, enum mllp_log_level level, const char *line)
{
	(void)ctx;
	(void)level;
	(void)line;
}

static void expect_reserved(int rc, const struct mllp_error *err,
			    const char *want)
{
	assert_int_equal(rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(err->reason, MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(err->message, want);
}

/* A receiver on 127.0.0.1, ephemeral port, echo dispatcher. */
static struct mllp_receiver *echo_receiver(void)
{
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = mllp_dispatch_echo;
	rc.log = quiet_log;
	struct mllp_receiver *r;
	struct mllp_error err;
	int rv = mllp_receiver_create(&rc, &r, &err);
	if (rv != 0)
		fail_msg("receiver: %s", err.message);
	return r;
}

static struct mllp_pool *quiet_pool(void)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.log = quiet_log;
	struct mllp_pool *p;
	struct mllp_error err;
	if (mllp_pool_create(&cfg, &p, &err) != 0)
		fail_msg("pool: %s", err.message);
	return p;
}

/* ---- reserved space ------------------------------------------------------ */

static void test_pool_config_reserved(void **state)
{
	(void)state;
	for (int i = 0; i < MLLP_RESERVED_WORDS; i++) {
		struct mllp_pool_config cfg;
		mllp_pool_config_init(&cfg);
		assert_int_equal(cfg.reserved_[i], 0);
		cfg.reserved_[i] = 1;
		struct mllp_pool *p = (struct mllp_pool *)&cfg;
		struct mllp_error err;
		expect_reserved(mllp_pool_create(&cfg, &p, &err), &err,
				RESERVED_MSG("mllp_pool_config"));
		assert_null(p);
	}
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.conn.reserved_[MLLP_RESERVED_WORDS - 1] = 1;
	struct mllp_pool *p;
	struct mllp_error err;
	expect_reserved(mllp_pool_create(&cfg, &p, &err), &err,
			RESERVED_MSG("mllp_conn_options"));
	assert_null(p);
	/* The same config with the space zero is accepted. */
	cfg.conn.reserved_[MLLP_RESERVED_WORDS - 1] = 0;
	cfg.log = quiet_log;
	assert_int_equal(mllp_pool_create(&cfg, &p, &err), 0);
	mllp_pool_destroy(p);
}

static void test_conn_and_send_options_reserved(void **state)
{
	(void)state;
	struct mllp_pool *p = quiet_pool();
	struct mllp_receiver *r = echo_receiver();
	struct mllp_conn_options o;
	mllp_conn_options_init(&o);
	o.reserved_[3] = 42;
	uint32_t id = 77;
	struct mllp_error err;
	expect_reserved(mllp_pool_add_endpoint(p, "127.0.0.1",
					       mllp_receiver_port(r), 1, &o,
					       &id, &err),
			&err, RESERVED_MSG("mllp_conn_options"));
	assert_int_equal(id, 77);
	o.reserved_[3] = 0;
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1",
						mllp_receiver_port(r), 1, &o,
						&id, &err),
			 0);

	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.reserved_[0] = 1;
	struct mllp_future *f = NULL;
	expect_reserved(mllp_pool_send(p, id, msg, strlen(msg), &so, &f, &err),
			&err, RESERVED_MSG("mllp_send_options"));
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_null(f);
	so.reserved_[0] = 0;
	so.block = true;
	assert_int_equal(mllp_pool_send(p, id, msg, strlen(msg), &so, &f, &err),
			 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	mllp_receiver_destroy(r);
}

static void test_receiver_config_reserved(void **state)
{
	(void)state;
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = mllp_dispatch_echo;
	/* the last reserved word (options are taken from its start) */
	size_t last = sizeof(rc.reserved_) / sizeof(rc.reserved_[0]) - 1;
	rc.reserved_[last] = 1;
	struct mllp_receiver *r = (struct mllp_receiver *)&rc;
	struct mllp_error err;
	expect_reserved(mllp_receiver_create(&rc, &r, &err), &err,
			RESERVED_MSG("mllp_receiver_config"));
	assert_null(r);

	/* The built-in ack dispatcher's state is read by the library too. */
	rc.reserved_[last] = 0;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.reserved_[0] = 9;
	rc.dispatch = mllp_dispatch_ack;
	rc.dispatch_ctx = &d;
	rc.log = quiet_log;
	expect_reserved(mllp_receiver_create(&rc, &r, &err), &err,
			RESERVED_MSG("mllp_ack_dispatcher"));
	assert_null(r);
	d.reserved_[0] = 0;
	assert_int_equal(mllp_receiver_create(&rc, &r, &err), 0);
	mllp_receiver_destroy(r);
}

static void test_tls_configs_reserved(void **state)
{
	(void)state;
	if (!mllp_tls_available()) {
		print_message("built without TLS: mllp_tls_ctx_new_* fail with "
			      "MLLP_ERR_NO_TLS before reading the config\n");
		skip();
	}
	struct mllp_tls_client_config cc;
	mllp_tls_client_config_init(&cc);
	cc.verify = MLLP_TLS_VERIFY_NONE;
	struct mllp_tls_ctx *ctx;
	struct mllp_error err;
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, &err), 0);
	mllp_tls_ctx_free(ctx);
	cc.reserved_[2] = 1;
	expect_reserved(mllp_tls_ctx_new_client(&cc, &ctx, &err), &err,
			RESERVED_MSG("mllp_tls_client_config"));
	assert_int_equal(err.context, MLLP_CTX_TLS);
	assert_null(ctx);

	struct mllp_tls_server_config sc;
	mllp_tls_server_config_init(&sc);
	sc.cert_file = "server.pem";
	sc.key_file = "server.key";
	sc.reserved_[5] = 1;
	expect_reserved(mllp_tls_ctx_new_server(&sc, &ctx, &err), &err,
			RESERVED_MSG("mllp_tls_server_config"));
	assert_null(ctx);
}

/* The core's functions have no error record: the code alone says it. */
static void test_core_configs_reserved(void **state)
{
	(void)state;
	struct mllp_ack_options ao;
	mllp_ack_options_init(&ao);
	char out[512];
	size_t n;
	assert_int_equal(
	    mllp_ack_build(msg, strlen(msg), &ao, out, sizeof(out), &n), 0);
	ao.reserved_[1] = 1;
	assert_int_equal(
	    mllp_ack_build(msg, strlen(msg), &ao, out, sizeof(out), &n),
	    MLLP_ERR_INVALID_ARGUMENT);

	for (int i = 0; i < MLLP_RESERVED_WORDS; i++) {
		struct mllp_frame_config fc;
		mllp_frame_config_init(&fc);
		struct mllp_decoder d;
		assert_int_equal(mllp_decoder_init(&d, &fc, NULL), 0);
		mllp_decoder_free(&d);
		fc.reserved_[i] = 1;
		assert_int_equal(mllp_decoder_init(&d, &fc, NULL),
				 MLLP_ERR_INVALID_ARGUMENT);
		assert_int_equal(mllp_wrap(&fc, "a", 1, out, sizeof(out), &n),
				 MLLP_ERR_INVALID_ARGUMENT);
		assert_int_equal(mllp_wrap_check(&fc, "a", 1),
				 MLLP_ERR_INVALID_ARGUMENT);
		const void *pl;
		size_t pl_len;
		assert_int_equal(mllp_unwrap(&fc, "a", 1, &pl, &pl_len),
				 MLLP_ERR_INVALID_ARGUMENT);
	}

	struct mllp_backoff_config bc;
	mllp_backoff_config_init(&bc);
	struct mllp_backoff b;
	assert_int_equal(mllp_backoff_init(&b, &bc), 0);
	bc.reserved_[7] = 1;
	assert_int_equal(mllp_backoff_init(&b, &bc), MLLP_ERR_INVALID_ARGUMENT);

	struct mllp_metrics_options mo;
	mllp_metrics_options_init(&mo);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	assert_true(
	    mllp_metrics_render_receiver_stats(&st, "epoll", NULL, 0, &mo) > 0);
	mo.reserved_[4] = 1;
	assert_int_equal(
	    mllp_metrics_render_receiver_stats(&st, "epoll", NULL, 0, &mo),
	    MLLP_ERR_INVALID_ARGUMENT);
}

/* ---- stats sizes --------------------------------------------------------- */

static void test_pool_stats_size(void **state)
{
	(void)state;
	struct mllp_pool *p = quiet_pool();
	struct mllp_pool_stats s;
	mllp_pool_stats_init(&s);
	assert_int_equal(s.size, sizeof(s));
	assert_int_equal(mllp_pool_get_stats(p, &s), 0);
	assert_int_equal(s.size, sizeof(s));
	assert_non_null(s.backend);

	/* An older caller's struct, up to backend: filled that far, the rest
	 * untouched. */
	size_t part =
	    offsetof(struct mllp_pool_stats, backend) + sizeof(s.backend);
	memset(&s, 0xAB, sizeof(s));
	s.size = part;
	assert_int_equal(mllp_pool_get_stats(p, &s), 0);
	assert_int_equal(s.size, part);
	assert_string_equal(s.backend, mllp_pool_backend(p));
	assert_int_equal(s.sent, 0);
	const unsigned char *rest = (const unsigned char *)&s + part;
	for (size_t i = 0; i < sizeof(s) - part; i++)
		assert_int_equal(rest[i], 0xAB);

	/* Too small for even the size field: refused, nothing written. */
	memset(&s, 0xAB, sizeof(s));
	s.size = sizeof(s.size) - 1;
	assert_int_equal(mllp_pool_get_stats(p, &s), MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(s.size, sizeof(s.size) - 1);
	assert_int_equal(s.sent, 0xABABABABABABABABull);
	assert_int_equal(mllp_pool_get_stats(p, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	mllp_pool_stats_init(&s);
	assert_int_equal(mllp_pool_get_stats(NULL, &s),
			 MLLP_ERR_INVALID_ARGUMENT);

	/* The latency histogram follows the same scheme. */
	struct mllp_latency_histogram h;
	size_t hpart = offsetof(struct mllp_latency_histogram, bound_us) +
		       sizeof(h.bound_us[0]);
	memset(&h, 0xAB, sizeof(h));
	h.size = hpart;
	assert_int_equal(mllp_pool_get_latency(p, &h), 0);
	assert_int_equal(h.size, hpart);
	assert_int_equal(h.bound_us[0], 100);
	assert_int_equal(h.bound_us[1], 0xABABABABABABABABull);
	assert_int_equal(h.sum_us, 0xABABABABABABABABull);
	h.size = 1;
	assert_int_equal(mllp_pool_get_latency(p, &h),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(h.size, 1);
	mllp_pool_destroy(p);
}

static void test_receiver_stats_size(void **state)
{
	(void)state;
	struct mllp_receiver *r = echo_receiver();
	struct mllp_receiver_stats s;
	mllp_receiver_stats_init(&s);
	assert_int_equal(s.size, sizeof(s));
	assert_int_equal(mllp_receiver_get_stats(r, &s), 0);
	assert_int_equal(s.size, sizeof(s));

	size_t part = offsetof(struct mllp_receiver_stats, connections_active);
	memset(&s, 0xAB, sizeof(s));
	s.size = part;
	assert_int_equal(mllp_receiver_get_stats(r, &s), 0);
	assert_int_equal(s.size, part);
	assert_int_equal(s.connections_accepted, 0);
	const unsigned char *rest = (const unsigned char *)&s + part;
	for (size_t i = 0; i < sizeof(s) - part; i++)
		assert_int_equal(rest[i], 0xAB);

	memset(&s, 0xAB, sizeof(s));
	s.size = 0;
	assert_int_equal(mllp_receiver_get_stats(r, &s),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.connections_accepted, 0xABABABABABABABABull);
	assert_int_equal(mllp_receiver_get_stats(r, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	mllp_receiver_stats_init(&s);
	assert_int_equal(mllp_receiver_get_stats(NULL, &s),
			 MLLP_ERR_INVALID_ARGUMENT);
	mllp_receiver_destroy(r);
}

/* ---- the client's lifecycle ---------------------------------------------- */

static struct mllp_client *client_for(const struct mllp_receiver *r)
{
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.log = quiet_log;
	struct mllp_client *c;
	struct mllp_error err;
	if (mllp_client_create("127.0.0.1", mllp_receiver_port(r), &cfg, &c,
			       &err) != 0)
		fail_msg("client: %s", err.message);
	return c;
}

static void send_accepted(struct mllp_client *c)
{
	struct mllp_future *f;
	struct mllp_error err;
	assert_int_equal(mllp_client_send(c, msg, strlen(msg), MLLP_PAYLOAD_HL7,
					  10000, &f, &err),
			 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_non_null(res);
	assert_int_equal(res->status, 0);
	assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
}

static void *stop_thread(void *arg)
{
	return (void *)(intptr_t)mllp_client_stop(arg);
}

/* create, stop (twice, and from two threads at once), still usable for
 * getters after the stop, then destroy. */
static void test_client_stop_then_destroy(void **state)
{
	(void)state;
	struct mllp_receiver *r = echo_receiver();
	struct mllp_client *c = client_for(r);
	send_accepted(c);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, stop_thread, c), 0);
	assert_int_equal(mllp_client_stop(c), 0);
	void *trc;
	assert_int_equal(pthread_join(t, &trc), 0);
	assert_int_equal((intptr_t)trc, 0);
	assert_int_equal(mllp_client_stop(c), 0); /* idempotent */
	/* Stopped, not freed: the client still answers. */
	assert_false(mllp_client_is_connected(c));
	assert_non_null(mllp_client_pool(c));
	struct mllp_future *f = (struct mllp_future *)c;
	struct mllp_error err;
	assert_int_equal(mllp_client_send(c, msg, strlen(msg), MLLP_PAYLOAD_HL7,
					  1000, &f, &err),
			 MLLP_ERR_STOPPED);
	assert_null(f);
	mllp_client_destroy(c);
	mllp_receiver_destroy(r);
}

/* destroy without a stop first stops, then frees; NULLs. */
static void test_client_destroy_without_stop(void **state)
{
	(void)state;
	struct mllp_receiver *r = echo_receiver();
	struct mllp_client *c = client_for(r);
	send_accepted(c);
	/* A future still held across the destroy stays valid. */
	struct mllp_future *f;
	struct mllp_error err;
	assert_int_equal(mllp_client_send_async(c, msg, strlen(msg),
						MLLP_PAYLOAD_HL7, &f, &err),
			 0);
	mllp_client_destroy(c);
	assert_true(mllp_future_poll(f));
	mllp_future_free(f);
	assert_int_equal(mllp_client_stop(NULL), MLLP_ERR_INVALID_ARGUMENT);
	mllp_client_destroy(NULL);
	mllp_receiver_destroy(r);
}

/* The receiver follows the same vocabulary: stop is idempotent and
 * refused (not a deadlock) from its own callback. */
struct self_stop {
	struct mllp_receiver *r;
	_Atomic int rc;
	_Atomic int calls;
};

static void stop_self(void *ctx, const struct mllp_message *m,
		      struct mllp_reply *reply)
{
	struct self_stop *st = ctx;
	st->rc = mllp_receiver_stop(st->r);
	st->calls++;
	mllp_dispatch_echo(NULL, m, reply);
}

static void test_receiver_stop_vocabulary(void **state)
{
	(void)state;
	struct self_stop st = {.r = NULL, .rc = 1, .calls = 0};
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = stop_self;
	rc.dispatch_ctx = &st;
	rc.log = quiet_log;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&rc, &st.r, &err), 0);
	struct mllp_client *c = client_for(st.r);
	send_accepted(c); /* the reply came: the receiver still runs */
	mllp_client_destroy(c);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.rc, MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_receiver_stop(st.r), 0);
	assert_int_equal(mllp_receiver_stop(st.r), 0);
	assert_int_equal(mllp_receiver_stop(NULL), MLLP_ERR_INVALID_ARGUMENT);
	mllp_receiver_destroy(st.r);
	mllp_receiver_destroy(NULL);
}

/* A dispatcher that sets a field this library does not know (reserved
 * space): the frame gets no reply, and the log says why. */
static void reply_with_reserved(void *ctx, const struct mllp_message *m,
				struct mllp_reply *reply)
{
	(void)ctx;
	(void)m;
	reply->kind = MLLP_REPLY_ACK;
	reply->reserved_[0] = 1;
}

struct log_copy {
	pthread_mutex_t mu;
	char line[512];
	int n;
};

static void copy_log(void *ctx, enum mllp_log_level level, const char *line)
{
	struct log_copy *lc = ctx;
	if (level != MLLP_LOG_ERROR)
		return;
	pthread_mutex_lock(&lc->mu);
	snprintf(lc->line, sizeof(lc->line), "%s", line);
	lc->n++;
	pthread_mutex_unlock(&lc->mu);
}

static void test_reply_reserved(void **state)
{
	(void)state;
	struct log_copy lc = {.mu = PTHREAD_MUTEX_INITIALIZER, .n = 0};
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = reply_with_reserved;
	rc.log = copy_log;
	rc.log_ctx = &lc;
	struct mllp_receiver *r;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&rc, &r, &err), 0);
	struct mllp_client *c = client_for(r);
	struct mllp_future *f;
	assert_int_equal(mllp_client_send(c, msg, strlen(msg), MLLP_PAYLOAD_HL7,
					  300, &f, &err),
			 0);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	mllp_future_free(f);
	mllp_client_destroy(c);
	assert_int_equal(mllp_receiver_stop(r), 0);
	assert_int_equal(lc.n, 1);
	const char *want = ": no reply sent: mllp_reply: reserved fields must "
			   "be zero";
	assert_int_equal(strncmp(lc.line, "connection from 127.0.0.1:", 26), 0);
	size_t ll = strlen(lc.line), wl = strlen(want);
	assert_true(ll > wl);
	assert_string_equal(lc.line + ll - wl, want);
	mllp_receiver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_config_reserved),
	    cmocka_unit_test(test_conn_and_send_options_reserved),
	    cmocka_unit_test(test_receiver_config_reserved),
	    cmocka_unit_test(test_tls_configs_reserved),
	    cmocka_unit_test(test_core_configs_reserved),
	    cmocka_unit_test(test_pool_stats_size),
	    cmocka_unit_test(test_receiver_stats_size),
	    cmocka_unit_test(test_client_stop_then_destroy),
	    cmocka_unit_test(test_client_destroy_without_stop),
	    cmocka_unit_test(test_receiver_stop_vocabulary),
	    cmocka_unit_test(test_reply_reserved),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* A build without TLS (-DMLLP_TLS=OFF): the TLS API is all there, and every
 * way to turn TLS on fails with MLLP_ERR_NO_TLS, "built without TLS". */
#include <string.h>

#include "testutil.h"
#include <mllp/mllp.h>

#if MLLP_HAVE_TLS
#error "test_no_tls is for builds with MLLP_TLS=OFF"
#endif

static void assert_no_tls(int rc, const struct mllp_error *err)
{
	assert_int_equal(rc, MLLP_ERR_NO_TLS);
	assert_int_equal(err->reason, MLLP_ERR_NO_TLS);
	assert_int_equal(err->context, MLLP_CTX_TLS);
	assert_string_equal(err->message, "built without TLS");
}

static void test_build_says_no_tls(void **state)
{
	(void)state;
	assert_false(mllp_tls_available());
	assert_string_equal(mllp_strerror(MLLP_ERR_NO_TLS),
			    "built without TLS");
	assert_string_equal(mllp_err_name(MLLP_ERR_NO_TLS), "MLLP_ERR_NO_TLS");
	assert_string_equal(mllp_tls_default_cipher_list(), "");
	/* What needs no TLS library still works. */
	assert_string_equal(
	    mllp_tls_failure_text(MLLP_TLS_FAIL_HANDSHAKE_TIMEOUT),
	    "handshake timeout");
	struct mllp_tls_client_config c;
	mllp_tls_client_config_init(&c);
	assert_false(c.enabled);
	assert_true(c.session_resumption);
}

static void test_contexts_and_connections_fail(void **state)
{
	(void)state;
	struct mllp_error err;
	struct mllp_tls_client_config cc;
	struct mllp_tls_server_config sc;
	struct mllp_tls_ctx *ctx = (void *)1;
	struct mllp_tls_conn *conn = (void *)1;

	mllp_tls_client_config_init(&cc);
	cc.enabled = true;
	assert_no_tls(mllp_tls_ctx_new_client(&cc, &ctx, &err), &err);
	assert_null(ctx);
	mllp_tls_server_config_init(&sc);
	sc.enabled = true;
	ctx = (void *)1;
	assert_no_tls(mllp_tls_ctx_new_server(&sc, &ctx, &err), &err);
	assert_null(ctx);
	assert_no_tls(mllp_tls_conn_new_client(NULL, "localhost", &conn, &err),
		      &err);
	assert_null(conn);
	conn = (void *)1;
	assert_no_tls(mllp_tls_conn_new_server(NULL, &conn, &err), &err);
	assert_null(conn);
	/* NULL error records are allowed. */
	assert_int_equal(mllp_tls_ctx_new_client(&cc, &ctx, NULL),
			 MLLP_ERR_NO_TLS);
	mllp_tls_ctx_free(NULL);
	mllp_tls_conn_free(NULL);
	mllp_tls_session_free(NULL);
	mllp_tls_thread_cleanup();
}

static void test_pool_endpoint_with_tls_fails(void **state)
{
	(void)state;
	struct mllp_pool_config cfg;
	mllp_pool_config_init(&cfg);
	cfg.backend = MLLP_BACKEND_EPOLL;
	struct mllp_pool *pool = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_create(&cfg, &pool, &err), 0);
	struct mllp_tls_client_config tls;
	mllp_tls_client_config_init(&tls);
	tls.enabled = true;
	struct mllp_conn_options opts = cfg.conn;
	opts.tls = &tls;
	uint32_t ep = 0;
	assert_no_tls(
	    mllp_pool_add_endpoint(pool, "127.0.0.1", 9, 1, &opts, &ep, &err),
	    &err);
	/* TLS off on the endpoint: a plaintext endpoint as usual. */
	tls.enabled = false;
	assert_int_equal(
	    mllp_pool_add_endpoint(pool, "127.0.0.1", 9, 1, &opts, &ep, &err),
	    0);
	mllp_pool_stop(pool);
	mllp_pool_destroy(pool);
}

static void test_receiver_with_tls_fails(void **state)
{
	(void)state;
	struct mllp_receiver_config cfg;
	mllp_receiver_config_init(&cfg);
	cfg.address = "127.0.0.1";
	cfg.port = 0;
	cfg.dispatch = mllp_dispatch_echo;
	cfg.backend = MLLP_BACKEND_EPOLL;
	struct mllp_tls_server_config tls;
	mllp_tls_server_config_init(&tls);
	tls.enabled = true;
	tls.cert_file = "server.pem";
	tls.key_file = "server.key";
	cfg.tls = &tls;
	struct mllp_receiver *r = (void *)1;
	struct mllp_error err;
	assert_no_tls(mllp_receiver_create(&cfg, &r, &err), &err);
	assert_null(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_says_no_tls),
	    cmocka_unit_test(test_contexts_and_connections_fail),
	    cmocka_unit_test(test_pool_endpoint_with_tls_fails),
	    cmocka_unit_test(test_receiver_with_tls_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

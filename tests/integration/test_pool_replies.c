/* Integration tests of the pool engine on loopback, ported from the
 * reference client suites: what comes back (large, fragmented and broken
 * replies, raw echo, late and unsolicited replies, reply timers) and the
 * payload forms sent. */
#include "pool_util.h"

/* Send and return the completed future (caller frees). */
static struct mllp_future *send_hl7(struct mllp_client *c, int n, int64_t rt)
{
	size_t len;
	char *m = tr_hl7(n, &len);
	struct mllp_future *f;
	struct mllp_error err;
	int rc = mllp_client_send(c, m, len, MLLP_PAYLOAD_HL7, rt, &f, &err);
	free(m);
	assert_int_equal(rc, 0);
	assert_true(mllp_future_poll(f));
	return f;
}

static void test_large_messages(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	/* 10 KB */
	size_t len;
	char *m = tr_hl7(10, &len);
	char *big = malloc(12000);
	memcpy(big, m, len);
	size_t n = len;
	memcpy(big + n, "OBX|1|TX|||", 11);
	n += 11;
	while (n < 10 * 1024)
		big[n++] = 'x';
	big[n++] = '\r';
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(c, big, n, MLLP_PAYLOAD_HL7, 0, &f, NULL), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(big);
	free(m);
	/* 1 MiB from the corpus */
	unsigned char *mb = tu_corpus("messages/oru_r01_pdf_1mb.hl7", &len);
	assert_true(len > 1000000);
	assert_int_equal(
	    mllp_client_send(c, mb, len, MLLP_PAYLOAD_HL7, 0, &f, NULL), 0);
	const struct mllp_result *res = mllp_future_result(f);
	if (res->status)
		fprintf(stderr, "1 MiB: %s\n", res->error.message);
	assert_int_equal(res->status, 0);
	assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(mb);
	stop_pair(c, &r);
}

static void test_fragmented_reply(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK_BYTEWISE, NULL, NULL);
	send_expect_aa(c, 3, 0);
	stop_pair(c, &r);
}

static void test_split_trailer(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_SPLIT_TRAILER, NULL, NULL);
	send_expect_aa(c, 4, 0);
	stop_pair(c, &r);
}

static void expect_recv_error(enum tr_mode mode, int reason,
			      enum mllp_event_kind ev, int64_t rt)
{
	struct tr r;
	struct ti_rec rec;
	struct mllp_client *c = start_pair(&r, mode, &rec, NULL);
	struct mllp_future *f = send_hl7(c, 5, rt);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, reason);
	assert_int_equal(res->error.context, MLLP_CTX_RECEIVE);
	assert_true(res->written);
	assert_true(res->may_have_reached);
	if (reason == MLLP_ERR_INVALID_HEADER)
		assert_string_equal(
		    res->error.message,
		    "Invalid header received in server acknowledgment");
	assert_int_equal(ti_count(&rec, ev), 1);
	mllp_future_free(f);
	/* close_on_recv_error (default): closed abortively, reconnected. */
	assert_true(tr_wait_count(&r.accepted, 2, 5000));
	assert_true(tr_wait_until(client_up, c, 5000));
	stop_pair(c, &r);
}

static void test_no_header(void **state)
{
	(void)state;
	expect_recv_error(TR_NO_HEADER, MLLP_ERR_INVALID_HEADER,
			  MLLP_EV_INVALID_RESPONSE, 0);
}

static void test_data_after_trailer(void **state)
{
	(void)state;
	expect_recv_error(TR_DATA_AFTER, MLLP_ERR_DATA_AFTER_TRAILER,
			  MLLP_EV_INVALID_RESPONSE, 0);
}

static void test_missing_trailer_timeout(void **state)
{
	(void)state;
	expect_recv_error(TR_NO_TRAILER, MLLP_ERR_TIMEOUT,
			  MLLP_EV_RECEIVE_TIMEOUT, 200);
}

static void test_raw_echo(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ECHO, NULL, NULL);
	const char *xml = "<hello>world</hello>";
	struct mllp_future *f;
	assert_int_equal(mllp_client_send(c, xml, strlen(xml), MLLP_PAYLOAD_RAW,
					  0, &f, NULL),
			 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, 0);
	assert_false(res->has_verdict);
	assert_int_equal(res->reply_len, strlen(xml));
	assert_memory_equal(res->reply, xml, strlen(xml));
	mllp_future_free(f);
	/* auto: not HL7 → raw */
	assert_int_equal(mllp_client_send(c, xml, strlen(xml),
					  MLLP_PAYLOAD_AUTO, 0, &f, NULL),
			 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->reply_len, strlen(xml));
	mllp_future_free(f);
	stop_pair(c, &r);
}

static void keep_socket(struct mllp_pool_config *cfg)
{
	cfg->conn.close_on_recv_error = false;
}

/* A reply arriving after its timeout is never the next message's answer. */
static void late_reply(bool close_on_error)
{
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct mllp_client *c =
	    start_client(r.port, NULL, close_on_error ? NULL : keep_socket);
	atomic_store(&r.delay_ms, 400);
	atomic_store(&r.delay_count, 1);
	struct mllp_future *f = send_hl7(c, 1, 100);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(mllp_future_result(f)->error.context,
			 MLLP_CTX_RECEIVE);
	mllp_future_free(f);
	/* The next message gets its own reply (MSA-2 checked inside). */
	send_expect_aa(c, 2, 3000);
	send_expect_aa(c, 3, 3000);
	if (close_on_error)
		assert_int_equal(atomic_load(&r.accepted), 2);
	else
		assert_int_equal(atomic_load(&r.accepted), 1);
	stop_pair(c, &r);
}

static void test_close_on_recv_error_true(void **state)
{
	(void)state;
	late_reply(true);
}

static void test_close_on_recv_error_false(void **state)
{
	(void)state;
	late_reply(false);
}

/* A connection's reply timer is re-armed lazily (its heap entry stays
 * across messages, pool.c conn_timer_lazy): an earlier message's shorter
 * deadline must not cut a later reply short, and a shorter per-send
 * timeout after a long one must still fire. */
static void test_reply_timer_reuse(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	/* 1: 200 ms timeout, answered at once: its deadline stays behind. */
	send_expect_aa(c, 1, 200);
	/* 2: answered after 400 ms, past message 1's deadline. */
	atomic_store(&r.delay_ms, 400);
	atomic_store(&r.delay_count, 1);
	send_expect_aa(c, 2, 3000);
	/* 3: the default (60 s) timeout; 4: 150 ms, answered after 600 ms:
	 * times out. */
	send_expect_aa(c, 3, 0);
	atomic_store(&r.delay_ms, 600);
	atomic_store(&r.delay_count, 1);
	struct mllp_future *f = send_hl7(c, 4, 150);
	assert_int_equal(mllp_future_result(f)->status, MLLP_ERR_TIMEOUT);
	assert_int_equal(mllp_future_result(f)->error.context,
			 MLLP_CTX_RECEIVE);
	mllp_future_free(f);
	stop_pair(c, &r);
}

/* Unsolicited bytes while idle: close and reconnect (default), or drop. */
static void unsolicited(bool close_on_error)
{
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	atomic_store(&r.junk_on_accept, true);
	struct ti_rec rec;
	ti_rec_init(&rec);
	struct mllp_client *c =
	    start_client(r.port, &rec, close_on_error ? NULL : keep_socket);
	assert_true(wait_orphan(&rec, MLLP_EV_INVALID_RESPONSE, false,
				MLLP_ERR_UNSOLICITED, 5000));
	if (close_on_error) {
		assert_true(tr_wait_count(&r.accepted, 2, 5000));
		atomic_store(&r.junk_on_accept, false);
		/* The junk-sending connections get closed; wait for a clean
		 * one. */
		assert_true(tr_wait_count(&r.accepted, 3, 5000));
		assert_true(tr_wait_until(client_up, c, 5000));
		int acc = atomic_load(&r.accepted);
		for (int i = 0; i < 100 && !mllp_client_is_connected(c); i++)
			tr_wait_until(client_up, c, 50);
		(void)acc;
	} else {
		assert_true(mllp_client_is_connected(c));
	}
	send_expect_aa(c, 12, 0);
	if (!close_on_error)
		assert_int_equal(atomic_load(&r.accepted), 1);
	stop_pair(c, &r);
}

static void test_unsolicited_close(void **state)
{
	(void)state;
	unsolicited(true);
}

static void test_unsolicited_drop(void **state)
{
	(void)state;
	unsolicited(false);
}

/* Payload checks happen on the caller's thread; a framed payload is sent
 * as is. */
static void test_payload_forms(void **state)
{
	(void)state;
	struct tr r;
	struct mllp_client *c = start_pair(&r, TR_ACK, NULL, NULL);
	struct mllp_future *f = (void *)1;
	struct mllp_error err;
	assert_int_equal(
	    mllp_client_send(c, "hello", 5, MLLP_PAYLOAD_HL7, 0, &f, &err),
	    MLLP_ERR_NOT_HL7);
	assert_null(f);
	assert_int_equal(err.context, MLLP_CTX_SEND);
	assert_int_equal(mllp_client_send(c, "\x0bMSH|^~\\&|", 10,
					  MLLP_PAYLOAD_AUTO, 0, &f, &err),
			 MLLP_ERR_PARTIAL_WRAP);
	size_t len;
	char *m = tr_hl7(21, &len);
	char *framed = malloc(len + 3);
	framed[0] = 0x0b;
	memcpy(framed + 1, m, len);
	framed[len + 1] = 0x1c;
	framed[len + 2] = 0x0d;
	assert_int_equal(
	    mllp_client_send(c, framed, len + 3, MLLP_PAYLOAD_HL7, 0, &f, NULL),
	    0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	assert_true(
	    mllp_str_eq(mllp_future_result(f)->ack.control_id, "CTRL21"));
	mllp_future_free(f);
	assert_int_equal(atomic_load(&r.frames), 1);
	free(framed);
	free(m);
	stop_pair(c, &r);
}

/* A receiver that answers before it has read the whole message (the
 * message is larger than the socket buffers, so the client is still
 * writing). The reply is taken only once the last byte is written: the
 * future does not complete before, and then completes accepted with
 * written true, in agreement with the sent counter. */
static void test_reply_before_send_completes(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	struct mllp_pool *p;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(p, "127.0.0.1",
						ntohs(sa.sin_port), 1, NULL,
						&ep, NULL),
			 0);
	int cfd = accept(lfd, NULL, NULL);
	assert_true(cfd >= 0);

	/* 32 MiB: far more than loopback socket buffers hold. */
	const char head[] = "MSH|^~\\&|S|S|R|R|20260101000000||ADT^A01|EARLY1|"
			    "P|2.5\rOBX|1|TX|||";
	size_t big = (size_t)32 << 20, len = sizeof(head) - 1 + big + 1;
	char *m = malloc(len);
	assert_non_null(m);
	memcpy(m, head, sizeof(head) - 1);
	memset(m + sizeof(head) - 1, 'x', big);
	m[len - 1] = '\r';
	struct mllp_send_options o;
	mllp_send_options_init(&o);
	o.kind = MLLP_PAYLOAD_HL7;
	o.borrow_payload = true;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(p, ep, m, len, &o, &f, NULL), 0);

	/* Read the start of the frame, then answer at once. */
	char buf[65536];
	size_t got = 0;
	while (got < 64) {
		ssize_t n = recv(cfd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	const char ack[] =
	    "\x0bMSH|^~\\&|R|R|S|S|20260101000001||ACK|A1|P|2.5\r"
	    "MSA|AA|EARLY1\r\x1c\r";
	assert_int_equal(send(cfd, ack, sizeof(ack) - 1, MSG_NOSIGNAL),
			 (ssize_t)(sizeof(ack) - 1));
	/* Not read further: the client cannot finish writing, so the
	 * future must not complete (it would, with the early reply). */
	assert_int_equal(mllp_future_wait(f, 300), MLLP_ERR_TIMEOUT);
	struct mllp_pool_stats st;
	mllp_pool_stats_init(&st);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 0);

	/* Read the rest of the frame: the send completes, then the reply
	 * is taken. */
	while (got < len + 3) {
		ssize_t n = recv(cfd, buf, sizeof(buf), 0);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	const struct mllp_result *r = mllp_future_result(f);
	assert_int_equal(r->status, 0);
	assert_true(r->written);
	assert_true(r->has_verdict);
	assert_int_equal(r->verdict, MLLP_APPLICATION_ACCEPT);
	mllp_pool_get_stats(p, &st);
	assert_int_equal(st.sent, 1);
	mllp_future_free(f);
	mllp_pool_destroy(p);
	close(cfd);
	close(lfd);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_large_messages),
	    cmocka_unit_test(test_fragmented_reply),
	    cmocka_unit_test(test_split_trailer),
	    cmocka_unit_test(test_no_header),
	    cmocka_unit_test(test_data_after_trailer),
	    cmocka_unit_test(test_missing_trailer_timeout),
	    cmocka_unit_test(test_raw_echo),
	    cmocka_unit_test(test_close_on_recv_error_true),
	    cmocka_unit_test(test_close_on_recv_error_false),
	    cmocka_unit_test(test_reply_timer_reuse),
	    cmocka_unit_test(test_unsolicited_close),
	    cmocka_unit_test(test_unsolicited_drop),
	    cmocka_unit_test(test_payload_forms),
	    cmocka_unit_test(test_reply_before_send_completes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

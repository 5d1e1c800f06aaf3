/* The MLLP receiver on loopback: its dispatchers (echo, ACK mix, ACK
 * delay, reply backlog), reply kinds, tiny buffers with big frames, half
 * closed clients, and the pool end to end. */
#include "recv_util.h"

/* ---- dispatchers -------------------------------------------------------- */

static void test_echo_dispatcher(void **state)
{
	(void)state;
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_echo, NULL);
	size_t ml;
	unsigned char *m = corpus("adt_a01.hl7", &ml);
	tc_send_frame(&t, m, ml);
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_ack(m, ml, rep, rl, "AA");
	assert_non_null(strstr(
	    rep, "MSA|AA|01052901|A real MLLP message dispatcher was not "
		 "provided"));
	free(rep);
	/* Unparsable HL7: AR with the reason. */
	tc_send_frame(&t, "MSH", 3);
	rep = tc_read_frame(&t, NULL);
	assert_non_null(rep);
	assert_non_null(strstr(rep, "MSA|AR|"));
	assert_non_null(strstr(rep, "Message was not parsable as HL7"));
	free(rep);
	tc_send_frame(&t, "not hl7 at all", 14);
	rep = tc_read_frame(&t, NULL);
	assert_string_equal(rep, "mllp_unknown");
	free(rep);
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

/* Send n messages pipelined, count the codes of the replies. */
static void run_mix(struct mllp_ack_dispatcher *d, int n, uint64_t out[6])
{
	struct rec r;
	struct tc t;
	struct mllp_receiver *rv =
	    start_connected(&r, &t, mllp_dispatch_ack, d);
	size_t cap = (size_t)n * 80, len = 0;
	char *buf = malloc(cap);
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|"
					"M%d|P|2.5\r\x1c\r",
					i);
	tc_write(&t, buf, len);
	static const char *codes[6] = {"AA", "AE", "AR", "CA", "CE", "CR"};
	memset(out, 0, 6 * sizeof(out[0]));
	for (int i = 0; i < n; i++) {
		char *rep = tc_read_frame(&t, NULL);
		assert_non_null(rep);
		char id[32];
		snprintf(id, sizeof(id), "|M%d", i);
		char *msa = strstr(rep, "MSA|");
		assert_non_null(msa);
		assert_true(strncmp(msa + 6, id, strlen(id)) == 0);
		for (int k = 0; k < 6; k++)
			if (strncmp(msa + 4, codes[k], 2) == 0)
				out[k]++;
		free(rep);
	}
	tc_close(&t);
	mllp_receiver_destroy(rv);
	free(buf);
	rec_free(&r);
}

static void test_ack_mix(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=98,XX=1"),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=0"),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&d, "AA=98,AE=1,AR=1"), 0);
	d.seed = 42;
	uint64_t a[6], b[6];
	run_mix(&d, 2000, a);
	for (int k = 0; k < 6; k++)
		assert_int_equal(a[k], d.counts[k]);
	assert_int_equal(a[0] + a[1] + a[2], 2000);
	assert_true(a[0] > 1900 && a[1] > 0 && a[2] > 0);
	assert_int_equal(a[3] + a[4] + a[5], 0);
	/* Same seed, same sequence. */
	struct mllp_ack_dispatcher d2;
	mllp_ack_dispatcher_init(&d2);
	mllp_ack_dispatcher_set_mix(&d2, "AA=98,AE=1,AR=1");
	d2.seed = 42;
	run_mix(&d2, 2000, b);
	assert_memory_equal(a, b, sizeof(a));
	/* Fixed code. */
	struct mllp_ack_dispatcher d3;
	mllp_ack_dispatcher_init(&d3);
	d3.code = "CE";
	run_mix(&d3, 10, b);
	assert_int_equal(b[MLLP_ACK_CE], 10);
}

static void test_ack_delay(void **state)
{
	(void)state;
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.delay_ms = 150;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t counts[6];
	run_mix(&d, 5, counts); /* in order, checked by run_mix */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= 150.0);
	assert_int_equal(counts[0], 5);

	/* Stop while replies are held: dropped, nothing leaks. */
	struct rec r;
	rec_init(&r);
	d.delay_ms = 60000;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|S1|P|2.5\r", 40);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	assert_int_equal(
	    rec_wait(&r, &r.ev[MLLP_RECEIVER_EV_MESSAGE_RECEIVED], 1), 1);
	mllp_receiver_stop(rv);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.replies_sent, 0);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	finish(rv, &r);
}

/* A peer that sends without reading its replies is closed once the
 * replies waiting for it exceed max_reply_backlog. */
static void test_reply_backlog(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.max_reply_backlog = 64 * 1024;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	memset(&t, 0, sizeof(t));
	t.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 4096;
	setsockopt(t.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	struct timeval tv = {.tv_sec = 10};
	setsockopt(t.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(mllp_receiver_port(rv))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	assert_int_equal(connect(t.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	char chunk[64 * 1024];
	const char *f = "\x0bMSH|^~\\&|A|B|C|D|2024||ADT^A01|B1|P|2.5\r\x1c\r";
	size_t fl = strlen(f), n = 0;
	while (n + fl <= sizeof(chunk)) {
		memcpy(chunk + n, f, fl);
		n += fl;
	}
	bool closed = false;
	for (int i = 0; i < 2000 && !closed; i++) /* at most ~128 MiB */
		closed = send(t.fd, chunk, n, MSG_NOSIGNAL) < 0;
	assert_true(closed);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_ERROR], 1), 1);
	assert_int_equal(r.stop_errors[MLLP_CLOSE_ERROR], MLLP_ERR_WOULD_BLOCK);
	assert_true(rec_wait_line(&r, "reply backlog exceeded"));
	close(t.fd);
	finish(rv, &r);
}

/* ---- reply kinds -------------------------------------------------------- */

static void kinds_dispatch(void *ctx, const struct mllp_message *m,
			   struct mllp_reply *rep)
{
	(void)ctx;
	char w[16] = {0};
	memcpy(w, m->data, m->len < 15 ? m->len : 15);
	if (!strcmp(w, "none")) {
		rep->kind = MLLP_REPLY_NONE;
	} else if (!strcmp(w, "framed")) {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = "\x0bX\x1c\r";
		rep->len = 4;
	} else if (!strcmp(w, "bad")) {
		rep->kind = MLLP_REPLY_ACK;
		rep->ack_code = "ZZ"; /* invalid: logged, no reply */
	} else if (!strcmp(w, "partial")) {
		rep->kind = MLLP_REPLY_BYTES; /* partially wrapped: refused */
		rep->data = "\x0b"
			    "foo";
		rep->len = 4;
	} else if (!strcmp(w, "empty")) {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = NULL;
		rep->len = 0;
	} else if (m->kind == MLLP_MSG_HL7) {
		rep->kind = MLLP_REPLY_ACK;
		rep->ack_code = "AE";
		rep->ack_text = "bad|thing";
	} else {
		rep->kind = MLLP_REPLY_BYTES;
		rep->data = "last";
		rep->len = 4;
	}
}

static void test_reply_kinds(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, kinds_dispatch, NULL);
	c.keep_control_id = true;
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	const char *hl7 = "MSH|^~\\&|A|B|C|D|2024||ADT^A01|K1|P|2.5\r";
	const char *seq[] = {"none",	"framed", "bad",  hl7,
			     "partial", "empty",  "other"};
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		tc_send_frame(&t, seq[i], strlen(seq[i]));
	size_t rl;
	char *rep = tc_read_frame(&t, &rl);
	assert_string_equal(rep, "X");
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_ack(hl7, strlen(hl7), rep, rl, "AE");
	/* keep_control_id: the ACK's MSH-10 is the message's. */
	assert_non_null(strstr(rep, "|ACK^A01^ACK|K1|"));
	assert_non_null(strstr(rep, "MSA|AE|K1|bad\\F\\thing"));
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_int_equal(rl, 0);
	free(rep);
	rep = tc_read_frame(&t, &rl);
	assert_string_equal(rep, "last");
	free(rep);
	tc_close(&t);
	assert_true(rec_wait_line(&r, "cannot build the reply"));
	assert_int_equal(rec_count_lines(&r, "cannot build the reply"), 2);
	finish(rv, &r);
}

/* Few, small provided buffers: the ring runs dry and the backend holds
 * the starved receives until buffers are given back; big frames arrive in
 * many pieces on several connections. */
struct big_arg {
	uint16_t port;
	const unsigned char *m;
	size_t len;
	int ok;
};

static void *big_main(void *arg)
{
	struct big_arg *a = arg;
	struct tc t;
	if (tc_connect_to(&t, "127.0.0.1", a->port) != 0)
		return NULL;
	for (int i = 0; i < 2; i++) {
		if (round_trip(&t, a->m, a->len) > 0)
			a->ok++;
	}
	tc_close(&t);
	return NULL;
}

static void test_tiny_buffers_big_frames(void **state)
{
	(void)state;
	struct rec r;
	struct mllp_receiver_config c;
	rec_cfg(&r, &c, mllp_dispatch_echo, NULL);
	c.recv_buffers = 4;
	c.recv_buffer_size = 1024;
	c.read_buffer_keep = 4096;
	struct mllp_receiver *rv = start(&c);
	size_t ml;
	unsigned char *m = corpus("oru_r01_pdf_1mb.hl7", &ml);
	enum { N = 6 };
	pthread_t th[N];
	struct big_arg a[N];
	for (int i = 0; i < N; i++) {
		a[i] = (struct big_arg){mllp_receiver_port(rv), m, ml, 0};
		pthread_create(&th[i], NULL, big_main, &a[i]);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(a[i].ok, 2);
	}
	mllp_receiver_destroy(rv);
	free(m);
	rec_free(&r);
}

/* ---- the pool end to end ----------------------------------------------- */

static void test_pool_end_to_end(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	c.log_level = MLLP_LOG_WARNING;
	struct mllp_receiver *rv = start(&c);
	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.log = ti_quiet_log;
	pc.ring_entries = 64;
	pc.recv_buffers = 64;
	pc.backend = ti_backend();
	struct mllp_pool *pool = NULL;
	struct mllp_error err;
	assert_int_equal(mllp_pool_create(&pc, &pool, &err), 0);
	uint32_t ep;
	assert_int_equal(mllp_pool_add_endpoint(pool, "127.0.0.1",
						mllp_receiver_port(rv), 4, NULL,
						&ep, &err),
			 0);
	char **names;
	size_t nn = tu_corpus_list("messages", &names);
	int sent = 0, enhanced = 0; /* MSH-15/16 set: answered CA */
	enum { ROUNDS = 20 };
	struct mllp_future *fs[ROUNDS * 16];
	size_t nf = 0;
	for (int round = 0; round < ROUNDS; round++) {
		for (size_t i = 0; i < nn && nf < ROUNDS * 16; i++) {
			if (strstr(names[i], "feed_100") ||
			    strstr(names[i], "batch_3"))
				continue;
			if (round > 0 && strstr(names[i], "1mb"))
				continue;
			size_t ml;
			unsigned char *m = tu_corpus(names[i], &ml);
			struct mllp_hl7_msg hm;
			enhanced += mllp_hl7_parse(&hm, m, ml) == 0 &&
				    mllp_hl7_is_enhanced_mode(&hm);
			struct mllp_send_options so;
			mllp_send_options_init(&so);
			so.kind = MLLP_PAYLOAD_HL7;
			so.block = true;
			int rc =
			    mllp_pool_send(pool, ep, m, ml, &so, &fs[nf], &err);
			if (rc != 0)
				fprintf(stderr, "%s: %s\n", names[i],
					err.message);
			assert_int_equal(rc, 0);
			nf++;
			sent++;
			free(m);
		}
	}
	for (size_t i = 0; i < nf; i++) {
		assert_int_equal(mllp_future_wait(fs[i], 20000), 0);
		const struct mllp_result *res = mllp_future_result(fs[i]);
		if (res->status != 0)
			fprintf(stderr, "future %zu: %s\n", i,
				res->error.message);
		assert_int_equal(res->status, 0);
		assert_true(res->has_verdict);
		assert_int_equal(res->verdict, MLLP_APPLICATION_ACCEPT);
		mllp_future_free(fs[i]);
	}
	mllp_pool_destroy(pool);
	tu_free_names(names, nn);
	/* The single-client API too. */
	struct mllp_client *cl = NULL;
	assert_int_equal(mllp_client_create("127.0.0.1", mllp_receiver_port(rv),
					    &pc, &cl, &err),
			 0);
	size_t ml;
	unsigned char *m = corpus("adt_a08_utf8.hl7", &ml);
	struct mllp_future *f;
	assert_int_equal(
	    mllp_client_send(cl, m, ml, MLLP_PAYLOAD_HL7, 5000, &f, &err), 0);
	assert_int_equal(mllp_future_result(f)->status, 0);
	assert_int_equal(mllp_future_result(f)->verdict,
			 MLLP_APPLICATION_ACCEPT);
	mllp_future_free(f);
	free(m);
	mllp_client_destroy(cl);
	mllp_receiver_stop(rv);
	/* adt_a08_utf8.hl7 (MSH-15 AL): enhanced mode, CA */
	assert_int_equal(d.counts[MLLP_ACK_AA], (uint64_t)(sent - enhanced));
	assert_int_equal(d.counts[MLLP_ACK_CA], (uint64_t)enhanced + 1);
	assert_true(enhanced > 0);
	struct mllp_receiver_stats st;
	mllp_receiver_stats_init(&st);
	mllp_receiver_get_stats(rv, &st);
	assert_int_equal(st.messages_received, (uint64_t)sent + 1);
	assert_int_equal(st.messages_hl7, (uint64_t)sent + 1);
	finish(rv, &r);
}

/* A peer that half-closes after sending still gets every reply. */
static void test_half_close_gets_replies(void **state)
{
	(void)state;
	struct rec r;
	rec_init(&r);
	struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	d.delay_ms = 50;
	struct mllp_receiver_config c;
	cfg_for(&c, &r, mllp_dispatch_ack, &d);
	struct mllp_receiver *rv = start(&c);
	struct tc t;
	tc_connect(&t, mllp_receiver_port(rv));
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|H1|P|2.5\r", 40);
	tc_send_frame(&t, "MSH|^~\\&|A|B|C|D|2024||ADT^A01|H2|P|2.5\r", 40);
	shutdown(t.fd, SHUT_WR);
	expect_ids(&t, "MSA|AA|H%d", 1, 2);
	assert_true(tc_wait_closed(&t));
	tc_close(&t);
	assert_int_equal(rec_wait(&r, &r.reasons[MLLP_CLOSE_PEER], 1), 1);
	finish(rv, &r);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_echo_dispatcher),
	    cmocka_unit_test(test_ack_mix),
	    cmocka_unit_test(test_ack_delay),
	    cmocka_unit_test(test_reply_backlog),
	    cmocka_unit_test(test_reply_kinds),
	    cmocka_unit_test(test_tiny_buffers_big_frames),
	    cmocka_unit_test(test_half_close_gets_replies),
	    cmocka_unit_test(test_pool_end_to_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mllp/metrics.h on live objects: a pool sending to the library's own
 * receiver in this process, both rendered while they run. Exact counts
 * after a known number of messages; the latency histogram counts every
 * reply; removed endpoints are left out; a buffer too small. */
#include <stdarg.h>

#include "testutil.h"
#include "common.h"

#include <mllp/metrics.h>

#define N_HL7 24

struct live {
	struct mllp_ack_dispatcher ack;
	struct mllp_receiver *r;
	struct mllp_pool *p;
	uint16_t port;
	uint32_t ep;
	int verdicts[7];
	int raw;
};

static void start(struct live *l)
{
	memset(l, 0, sizeof(*l));
	mllp_ack_dispatcher_init(&l->ack);
	assert_int_equal(mllp_ack_dispatcher_set_mix(&l->ack, "AA=3,AR=1"), 0);
	l->ack.seed = 5;
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = mllp_dispatch_ack;
	rc.dispatch_ctx = &l->ack;
	rc.backend = ti_backend();
	rc.log = ti_quiet_log;
	struct mllp_error err;
	assert_int_equal(mllp_receiver_create(&rc, &l->r, &err), 0);
	l->port = mllp_receiver_port(l->r);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	assert_int_equal(mllp_pool_create(&cfg, &l->p, &err), 0);
	assert_int_equal(mllp_pool_add_endpoint(l->p, "127.0.0.1", l->port, 2,
						NULL, &l->ep, &err),
			 0);
}

static void stop(struct live *l)
{
	mllp_pool_destroy(l->p);
	mllp_receiver_destroy(l->r);
}

/* Send one payload and wait for its reply; tally its verdict. */
static void send_one(struct live *l, const void *msg, size_t len,
		     enum mllp_payload_kind kind)
{
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = kind;
	struct mllp_future *f;
	assert_int_equal(mllp_pool_send(l->p, l->ep, msg, len, &so, &f, NULL),
			 0);
	assert_int_equal(mllp_future_wait(f, 10000), 0);
	const struct mllp_result *res = mllp_future_result(f);
	assert_int_equal(res->status, 0);
	if (res->has_verdict)
		l->verdicts[res->verdict]++;
	else
		l->raw++;
	mllp_future_free(f);
}

static void send_all(struct live *l)
{
	for (int i = 0; i < N_HL7; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		send_one(l, m, len, MLLP_PAYLOAD_HL7);
		free(m);
	}
	send_one(l, "hello", 5, MLLP_PAYLOAD_RAW);
}

static char *render_pool(struct live *l)
{
	int need = mllp_metrics_render_pool(l->p, NULL, 0, NULL);
	assert_true(need > 0);
	size_t cap = (size_t)need + 4096;
	char *buf = malloc(cap);
	assert_non_null(buf);
	int n = mllp_metrics_render_pool(l->p, buf, cap, NULL);
	assert_true(n > 0 && (size_t)n < cap);
	return buf;
}

static void has_line(const char *text, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void has_line(const char *text, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	size_t n = strlen(line);
	for (const char *p = text; (p = strstr(p, line)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_pool_live(void **state)
{
	(void)state;
	struct live l;
	start(&l);
	send_all(&l);
	int total = N_HL7 + 1;
	assert_int_equal(l.raw, 1);
	assert_int_equal(l.verdicts[MLLP_APPLICATION_ACCEPT] +
			     l.verdicts[MLLP_APPLICATION_REJECT],
			 N_HL7);
	/* Both codes of the mix were drawn (seed 5). */
	assert_true(l.verdicts[MLLP_APPLICATION_ACCEPT] > 0);
	assert_true(l.verdicts[MLLP_APPLICATION_REJECT] > 0);

	struct mllp_latency_histogram h;
	mllp_latency_histogram_init(&h);
	assert_int_equal(mllp_pool_get_latency(l.p, &h), 0);
	uint64_t count = 0;
	for (int i = 0; i <= MLLP_LATENCY_BUCKETS; i++)
		count += h.count[i];
	assert_int_equal(count, total);
	assert_true(h.sum_us > 0);

	char *t = render_pool(&l);
	has_line(t, "mllp_pool_info{backend=\"%s\"} 1", ti_backend_name());
	has_line(t, "mllp_messages_sent_total %d", total);
	has_line(t, "mllp_acks_total{verdict=\"application_accept\"} %d",
		 l.verdicts[MLLP_APPLICATION_ACCEPT]);
	has_line(t, "mllp_acks_total{verdict=\"application_reject\"} %d",
		 l.verdicts[MLLP_APPLICATION_REJECT]);
	has_line(t, "mllp_raw_replies_total 1");
	has_line(t, "mllp_messages_failed_total 0");
	has_line(t, "mllp_inflight 0");
	has_line(t, "mllp_queued 0");
	has_line(t, "mllp_connects_total 2");
	has_line(t, "mllp_reply_latency_seconds_bucket{le=\"+Inf\"} %d", total);
	has_line(t, "mllp_reply_latency_seconds_count %d", total);
	has_line(t,
		 "mllp_endpoint_messages_sent_total{endpoint=\"127.0.0.1:%u\","
		 "endpoint_id=\"0\"} %d",
		 l.port, total);
	has_line(t,
		 "mllp_endpoint_connections{endpoint=\"127.0.0.1:%u\","
		 "endpoint_id=\"0\"} 2",
		 l.port);
	has_line(t,
		 "mllp_endpoint_acks_total{endpoint=\"127.0.0.1:%u\","
		 "endpoint_id=\"0\",verdict=\"application_reject\"} %d",
		 l.port, l.verdicts[MLLP_APPLICATION_REJECT]);

	/* The receiver's side of the same exchange. */
	char rb[8192];
	int n = mllp_metrics_render_receiver(l.r, rb, sizeof(rb), NULL);
	assert_true(n > 0 && (size_t)n < sizeof(rb));
	has_line(rb, "mllp_receiver_info{backend=\"%s\"} 1",
		 mllp_receiver_backend(l.r));
	has_line(rb, "mllp_messages_received_total %d", total);
	has_line(rb, "mllp_messages_hl7_received_total %d", N_HL7);
	has_line(rb, "mllp_connections_accepted_total 2");
	has_line(rb, "mllp_connections_open 2");
	/* Every refusal reason and the TLS families, zero included. */
	has_line(rb, "mllp_connections_refused_total{reason=\"allow_list\"} 0");
	has_line(
	    rb, "mllp_connections_refused_total{reason=\"max_connections\"} 0");
	has_line(
	    rb, "mllp_connections_refused_total{reason=\"tls_client_cert\"} 0");
	has_line(rb, "mllp_receiver_tls_handshakes_total 0");
	has_line(rb, "mllp_receiver_tls_handshakes_resumed_total 0");
	has_line(rb, "mllp_receiver_tls_handshake_failures_total 0");

	/* ACKs by code, from the dispatcher's counts once it has stopped. */
	mllp_pool_stop(l.p);
	mllp_receiver_stop(l.r);
	char ab[1024];
	n = mllp_metrics_render_acks(l.ack.counts, ab, sizeof(ab), NULL);
	assert_true(n > 0);
	/* The raw payload got AR "not parsable" too. */
	has_line(ab, "mllp_acks_sent_total{code=\"AA\"} %d",
		 l.verdicts[MLLP_APPLICATION_ACCEPT]);
	has_line(ab, "mllp_acks_sent_total{code=\"AR\"} %d",
		 l.verdicts[MLLP_APPLICATION_REJECT] + 1);
	/* The three pages as one, for test_metrics.sh to hand to promtool
	 * (no family twice, no lint). */
	const char *out = getenv("MLLP_TEST_METRICS_OUT");
	if (out) {
		FILE *f = fopen(out, "w");
		assert_non_null(f);
		fputs(t, f);
		fputs(rb, f);
		fputs(ab, f);
		assert_int_equal(fclose(f), 0);
	}
	free(t);
	stop(&l);
}

/* Endpoints removed are left out; ids as given. */
static void test_pool_endpoints(void **state)
{
	(void)state;
	struct live l;
	start(&l);
	uint32_t b, c;
	assert_int_equal(
	    mllp_pool_add_endpoint(l.p, "::1", 9, 1, NULL, &b, NULL), 0);
	assert_int_equal(
	    mllp_pool_add_endpoint(l.p, "localhost", l.port, 1, NULL, &c, NULL),
	    0);
	assert_int_equal(b, 1);
	assert_int_equal(c, 2);
	char *t = render_pool(&l);
	has_line(t, "mllp_endpoint_connections{endpoint=\"[::1]:9\","
		    "endpoint_id=\"1\"} 1");
	free(t);
	assert_int_equal(mllp_pool_remove_endpoint(l.p, b), 0);
	t = render_pool(&l);
	assert_null(strstr(t, "endpoint_id=\"1\""));
	has_line(t,
		 "mllp_endpoint_connections{endpoint=\"127.0.0.1:%u\","
		 "endpoint_id=\"0\"} 2",
		 l.port);
	has_line(t,
		 "mllp_endpoint_connections{endpoint=\"localhost:%u\","
		 "endpoint_id=\"2\"} 1",
		 l.port);
	free(t);
	stop(&l);
}

/* A live render into a buffer too small: the length, the empty string,
 * nothing past cap; with room, the same length. */
static void test_small_buffer_live(void **state)
{
	(void)state;
	struct live l;
	start(&l);
	send_all(&l);
	mllp_pool_stop(l.p); /* the counters stay still from here */
	int need = mllp_metrics_render_pool(l.p, NULL, 0, NULL);
	assert_true(need > 0);
	char *buf = malloc((size_t)need + 16);
	assert_non_null(buf);
	memset(buf, 'z', (size_t)need + 16);
	assert_int_equal(mllp_metrics_render_pool(l.p, buf, (size_t)need, NULL),
			 need);
	assert_int_equal(buf[0], 0);
	for (int i = need; i < need + 16; i++)
		assert_int_equal(buf[i], 'z');
	assert_int_equal(
	    mllp_metrics_render_pool(l.p, buf, (size_t)need + 1, NULL), need);
	assert_int_equal(strlen(buf), need);
	assert_int_equal(buf[need - 1], '\n');
	free(buf);
	stop(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_live),
	    cmocka_unit_test(test_pool_endpoints),
	    cmocka_unit_test(test_small_buffer_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

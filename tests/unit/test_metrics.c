/* Prometheus text of pool and receiver counters (mllp/metrics.h): exact
 * text for known stats, label escaping, buffers too small, bad options. */
#include "testutil.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/metrics.h>

/* Receiver stats whose every counter differs, so a mix-up shows. */
static struct mllp_receiver_stats recv_stats(void)
{
	struct mllp_receiver_stats s;
	mllp_receiver_stats_init(&s);
	s.connections_accepted = 1;
	s.connections_active = 2;
	s.connections_refused = 19 + 20 + 21; /* rendered by reason only */
	s.connections_idle_timeout = 4;
	s.connections_error = 5;
	s.messages_received = 6;
	s.messages_hl7 = 7;
	s.replies_sent = 8;
	s.bytes_received = 9;
	s.bytes_sent = 10;
	s.junk_bytes = 11;
	s.frames_too_big = 12;
	s.buffered_bytes = 13;
	s.buffered_bytes_peak = 14;
	s.connections_shed = 15;
	s.reads_paused = 16;
	s.log_lines_suppressed = 17;
	s.log_lines_dropped = 18;
	s.connections_refused_allow_list = 19;
	s.connections_refused_max_connections = 20;
	s.connections_refused_tls_cert = 21;
	s.tls_handshakes = 22;
	s.tls_handshakes_resumed = 23;
	s.tls_handshake_failures = 24;
	s.replies_pending = 25;
	s.replies_after_close = 26;
	s.replies_abandoned = 27;
	s.connections_stop_unfinished = 28;
	return s;
}

static const char recv_text[] =
    "# HELP hl7_receiver_info The receiver's I/O backend (always 1).\n"
    "# TYPE hl7_receiver_info gauge\n"
    "hl7_receiver_info{site=\"x\",backend=\"epoll\"} 1\n"
    "# HELP hl7_connections_accepted_total Connections admitted.\n"
    "# TYPE hl7_connections_accepted_total counter\n"
    "hl7_connections_accepted_total{site=\"x\"} 1\n"
    "# HELP hl7_connections_open Connections open now.\n"
    "# TYPE hl7_connections_open gauge\n"
    "hl7_connections_open{site=\"x\"} 2\n"
    "# HELP hl7_connections_refused_total Connections refused, by reason.\n"
    "# TYPE hl7_connections_refused_total counter\n"
    "hl7_connections_refused_total{site=\"x\",reason=\"allow_list\"} 19\n"
    "hl7_connections_refused_total{site=\"x\",reason=\"max_connections\"} "
    "20\n"
    "hl7_connections_refused_total{site=\"x\",reason=\"tls_client_cert\"} "
    "21\n"
    "# HELP hl7_connections_closed_total Connections the receiver closed, by "
    "reason (closes by the peer and at stop not counted).\n"
    "# TYPE hl7_connections_closed_total counter\n"
    "hl7_connections_closed_total{site=\"x\",reason=\"idle_timeout\"} 4\n"
    "hl7_connections_closed_total{site=\"x\",reason=\"error\"} 5\n"
    "# HELP hl7_connections_shed_total Connections closed because the buffer "
    "budget was exceeded (also counted as closed on error).\n"
    "# TYPE hl7_connections_shed_total counter\n"
    "hl7_connections_shed_total{site=\"x\"} 15\n"
    "# HELP hl7_messages_received_total Frames received, all kinds.\n"
    "# TYPE hl7_messages_received_total counter\n"
    "hl7_messages_received_total{site=\"x\"} 6\n"
    "# HELP hl7_messages_hl7_received_total Frames received that hold HL7 "
    "(start with MSH).\n"
    "# TYPE hl7_messages_hl7_received_total counter\n"
    "hl7_messages_hl7_received_total{site=\"x\"} 7\n"
    "# HELP hl7_replies_sent_total Replies completely written.\n"
    "# TYPE hl7_replies_sent_total counter\n"
    "hl7_replies_sent_total{site=\"x\"} 8\n"
    "# HELP hl7_replies_pending Deferred replies not yet sent on open "
    "connections, now.\n"
    "# TYPE hl7_replies_pending gauge\n"
    "hl7_replies_pending{site=\"x\"} 25\n"
    "# HELP hl7_replies_after_close_total Deferred replies completed after "
    "their connection had closed (not sent).\n"
    "# TYPE hl7_replies_after_close_total counter\n"
    "hl7_replies_after_close_total{site=\"x\"} 26\n"
    "# HELP hl7_replies_abandoned_total Deferred replies still unanswered "
    "when their connection closed (reported through reply_abandoned).\n"
    "# TYPE hl7_replies_abandoned_total counter\n"
    "hl7_replies_abandoned_total{site=\"x\"} 27\n"
    "# HELP hl7_connections_stop_unfinished_total Connections closed by stop "
    "with replies not yet written when stop_drain_ms passed.\n"
    "# TYPE hl7_connections_stop_unfinished_total counter\n"
    "hl7_connections_stop_unfinished_total{site=\"x\"} 28\n"
    "# HELP hl7_received_bytes_total Bytes received from clients.\n"
    "# TYPE hl7_received_bytes_total counter\n"
    "hl7_received_bytes_total{site=\"x\"} 9\n"
    "# HELP hl7_sent_bytes_total Bytes sent to clients.\n"
    "# TYPE hl7_sent_bytes_total counter\n"
    "hl7_sent_bytes_total{site=\"x\"} 10\n"
    "# HELP hl7_junk_bytes_total Bytes discarded outside frames.\n"
    "# TYPE hl7_junk_bytes_total counter\n"
    "hl7_junk_bytes_total{site=\"x\"} 11\n"
    "# HELP hl7_frames_rejected_total Frames rejected, by reason (the "
    "connection is closed).\n"
    "# TYPE hl7_frames_rejected_total counter\n"
    "hl7_frames_rejected_total{site=\"x\",reason=\"too_big\"} 12\n"
    "# HELP hl7_buffered_bytes Bytes held for open connections now (partial "
    "frames, unsent replies).\n"
    "# TYPE hl7_buffered_bytes gauge\n"
    "hl7_buffered_bytes{site=\"x\"} 13\n"
    "# HELP hl7_buffered_bytes_peak Most bytes held for open connections so "
    "far.\n"
    "# TYPE hl7_buffered_bytes_peak gauge\n"
    "hl7_buffered_bytes_peak{site=\"x\"} 14\n"
    "# HELP hl7_reads_paused_total Times reading a connection was paused "
    "(reply backlog or buffer budget).\n"
    "# TYPE hl7_reads_paused_total counter\n"
    "hl7_reads_paused_total{site=\"x\"} 16\n"
    "# HELP hl7_log_lines_dropped_total Log lines left out, by reason.\n"
    "# TYPE hl7_log_lines_dropped_total counter\n"
    "hl7_log_lines_dropped_total{site=\"x\",reason=\"rate_limit\"} 17\n"
    "hl7_log_lines_dropped_total{site=\"x\",reason=\"would_block\"} 18\n"
    "# HELP hl7_receiver_tls_handshakes_total TLS handshakes completed, full "
    "or resumed.\n"
    "# TYPE hl7_receiver_tls_handshakes_total counter\n"
    "hl7_receiver_tls_handshakes_total{site=\"x\"} 22\n"
    "# HELP hl7_receiver_tls_handshakes_resumed_total TLS handshakes that "
    "resumed a session.\n"
    "# TYPE hl7_receiver_tls_handshakes_resumed_total counter\n"
    "hl7_receiver_tls_handshakes_resumed_total{site=\"x\"} 23\n"
    "# HELP hl7_receiver_tls_handshake_failures_total TLS handshakes that "
    "failed (a refused client certificate included) or timed out.\n"
    "# TYPE hl7_receiver_tls_handshake_failures_total counter\n"
    "hl7_receiver_tls_handshake_failures_total{site=\"x\"} 24\n";

static void test_receiver_text(void **state)
{
	(void)state;
	struct mllp_receiver_stats s = recv_stats();
	struct mllp_metrics_label lab = {"site", "x"};
	struct mllp_metrics_options o;
	mllp_metrics_options_init(&o);
	assert_string_equal(o.prefix, "mllp");
	o.prefix = "hl7";
	o.labels = &lab;
	o.nlabels = 1;
	char buf[8192];
	int n = mllp_metrics_render_receiver_stats(&s, "epoll", buf,
						   sizeof(buf), &o);
	assert_string_equal(buf, recv_text);
	assert_int_equal(n, strlen(recv_text));
	/* No backend: no info family; the rest unchanged. */
	n = mllp_metrics_render_receiver_stats(&s, NULL, buf, sizeof(buf), &o);
	const char *rest = strstr(recv_text, "# HELP hl7_connections_accepted");
	assert_non_null(rest);
	assert_string_equal(buf, rest);
	assert_int_equal(n, strlen(rest));
}

static void test_acks_text(void **state)
{
	(void)state;
	const uint64_t counts[MLLP_ACK_CODE_COUNT] = {
	    98, 1, 2, 0, 3, 18446744073709551615u};
	char buf[1024];
	int n = mllp_metrics_render_acks(counts, buf, sizeof(buf), NULL);
	static const char want[] =
	    "# HELP mllp_acks_sent_total ACKs the dispatcher answered, by "
	    "MSA-1 code.\n"
	    "# TYPE mllp_acks_sent_total counter\n"
	    "mllp_acks_sent_total{code=\"AA\"} 98\n"
	    "mllp_acks_sent_total{code=\"AE\"} 1\n"
	    "mllp_acks_sent_total{code=\"AR\"} 2\n"
	    "mllp_acks_sent_total{code=\"CA\"} 0\n"
	    "mllp_acks_sent_total{code=\"CE\"} 3\n"
	    "mllp_acks_sent_total{code=\"CR\"} 18446744073709551615\n";
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
}

/* A pool snapshot: two endpoints (one IPv6), a histogram. */
struct pool_case {
	struct mllp_pool_stats s;
	struct mllp_latency_histogram h;
	struct mllp_endpoint_stats e[2];
	const struct mllp_endpoint_stats *ep[2];
	uint32_t ids[2];
};

static void pool_case(struct pool_case *c)
{
	memset(c, 0, sizeof(*c));
	mllp_pool_stats_init(&c->s);
	c->s.backend = "io_uring";
	c->s.sent = 10;
	c->s.acked[MLLP_APPLICATION_ACCEPT] = 7;
	c->s.acked[MLLP_APPLICATION_REJECT] = 1;
	c->s.raw_replies = 1;
	c->s.errors = 3;
	c->s.errors_os = 1;
	c->s.errors_mllp[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT] = 2;
	c->s.connects = 4;
	c->s.reconnects = 5;
	c->s.connect_failures = 6;
	c->s.in_flight = 2;
	c->s.queued = 9;
	c->s.tls_handshakes = 12;
	c->s.tls_resumed = 11;
	c->s.stale_replies = 13;
	c->s.lanes_active = 31;
	c->s.lanes_held = 32;
	c->s.lane_waiting = 33;
	c->s.lane_held_waiting = 34;
	c->s.late_accept_acks = 17;
	mllp_latency_histogram_init(&c->h);
	assert_int_equal(mllp_pool_get_latency(NULL, &c->h), 0);
	c->h.count[0] = 3;	 /* <= 100 us */
	c->h.count[3] = 2;	 /* <= 1 ms */
	c->h.count[17] = 1;	 /* <= 60 s */
	c->h.count[18] = 3;	 /* above */
	c->h.sum_us = 250001250; /* 250.00125 s */
	for (int i = 0; i < 2; i++) {
		mllp_endpoint_stats_init(&c->e[i]);
		c->ep[i] = &c->e[i];
	}
	strcpy(c->e[0].host, "127.0.0.1");
	c->e[0].port = 2575;
	c->e[0].connections = 2;
	c->e[0].connected = 1;
	c->e[0].sent = 6;
	c->e[0].acked[MLLP_APPLICATION_ACCEPT] = 5;
	c->e[0].errors = 2;
	c->e[0].errors_mllp[MLLP_ERR_BASE - MLLP_ERR_TIMEOUT] = 2;
	strcpy(c->e[1].host, "::1");
	c->e[1].port = 7;
	c->e[1].connections = 1;
	c->e[1].sent = 4;
	c->e[1].errors = 1;
	c->e[1].errors_os = 1;
	c->e[1].tls_handshakes = 3;
	c->ids[0] = 0;
	c->ids[1] = 5;
}

static char *render_pool(const struct pool_case *c, int *n)
{
	int need = mllp_metrics_render_pool_stats(&c->s, &c->h, c->ep, c->ids,
						  2, NULL, 0, NULL);
	assert_true(need > 0);
	char *buf = malloc((size_t)need + 1);
	assert_non_null(buf);
	*n = mllp_metrics_render_pool_stats(&c->s, &c->h, c->ep, c->ids, 2, buf,
					    (size_t)need + 1, NULL);
	assert_int_equal(*n, need);
	assert_int_equal(strlen(buf), need);
	return buf;
}

/* want appears in text as whole lines. */
static void assert_block(const char *text, const char *want)
{
	const char *p = strstr(text, want);
	if (!p || (p != text && p[-1] != '\n'))
		fail_msg("missing block:\n%s", want);
}

static void test_pool_text(void **state)
{
	(void)state;
	struct pool_case c;
	pool_case(&c);
	int n;
	char *t = render_pool(&c, &n);
	assert_true(strncmp(t,
			    "# HELP mllp_pool_info The pool's I/O backend "
			    "(always 1).\n"
			    "# TYPE mllp_pool_info gauge\n"
			    "mllp_pool_info{backend=\"io_uring\"} 1\n"
			    "# HELP mllp_messages_sent_total Messages "
			    "completely written.\n"
			    "# TYPE mllp_messages_sent_total counter\n"
			    "mllp_messages_sent_total 10\n",
			    236) == 0);
	assert_block(t,
		     "# TYPE mllp_acks_total counter\n"
		     "mllp_acks_total{verdict=\"application_accept\"} 7\n"
		     "mllp_acks_total{verdict=\"application_error\"} 0\n"
		     "mllp_acks_total{verdict=\"application_reject\"} 1\n"
		     "mllp_acks_total{verdict=\"bad_message_control_id\"} 0\n"
		     "mllp_acks_total{verdict=\"bad_ack_code\"} 0\n"
		     "mllp_acks_total{verdict=\"invalid_message\"} 0\n"
		     "mllp_acks_total{verdict=\"invalid_ack_message\"} 0\n");
	assert_block(t, "mllp_raw_replies_total 1\n");
	assert_block(t, "mllp_messages_failed_total 3\n");
	/* Pool-wide: every reason, zeros included. */
	assert_block(t, "# TYPE mllp_send_failures_total counter\n"
			"mllp_send_failures_total{reason=\"os\"} 1\n"
			"mllp_send_failures_total{reason=\"invalid_argument\"} "
			"0\n");
	assert_block(t, "mllp_send_failures_total{reason=\"timeout\"} 2\n"
			"mllp_send_failures_total{reason=\"closed\"} 0\n");
	assert_block(t, "mllp_send_failures_total{reason=\"endpoint_removed\"} "
			"0\n"
			"mllp_send_failures_total{reason=\"nak\"} 0\n"
			"mllp_send_failures_total{reason=\"not_accepted\"} "
			"0\n# HELP mllp_connects_total");
	assert_block(t, "mllp_connects_total 4\n");
	assert_block(t, "mllp_reconnects_total 5\n");
	assert_block(t, "mllp_connect_failures_total 6\n");
	assert_block(t, "mllp_tls_handshakes_total 12\n");
	assert_block(t, "mllp_tls_sessions_resumed_total 11\n");
	assert_block(t, "mllp_stale_replies_total 13\n");
	assert_block(t, "mllp_late_accept_acks_total 17\n");
	assert_block(t, "# TYPE mllp_inflight gauge\nmllp_inflight 2\n");
	assert_block(t, "# TYPE mllp_queued gauge\nmllp_queued 9\n");
	assert_block(t, "# TYPE mllp_lanes gauge\nmllp_lanes 31\n");
	assert_block(t, "# TYPE mllp_lanes_held gauge\nmllp_lanes_held 32\n");
	assert_block(t,
		     "# TYPE mllp_lane_waiting gauge\nmllp_lane_waiting 33\n");
	assert_block(t, "# TYPE mllp_lane_held_waiting gauge\n"
			"mllp_lane_held_waiting 34\n");
	assert_block(
	    t,
	    "# HELP mllp_reply_latency_seconds Time from a message's send to "
	    "its reply.\n"
	    "# TYPE mllp_reply_latency_seconds histogram\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.0001\"} 3\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.00025\"} 3\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.0005\"} 3\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.001\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.0025\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.005\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.01\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.025\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.05\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.1\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.25\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"0.5\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"1\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"2.5\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"5\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"10\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"30\"} 5\n"
	    "mllp_reply_latency_seconds_bucket{le=\"60\"} 6\n"
	    "mllp_reply_latency_seconds_bucket{le=\"+Inf\"} 9\n"
	    "mllp_reply_latency_seconds_sum 250.00125\n"
	    "mllp_reply_latency_seconds_count 9\n"
	    "# HELP mllp_endpoint_messages_sent_total Messages completely "
	    "written.\n"
	    "# TYPE mllp_endpoint_messages_sent_total counter\n"
	    "mllp_endpoint_messages_sent_total{endpoint=\"127.0.0.1:2575\","
	    "endpoint_id=\"0\"} 6\n"
	    "mllp_endpoint_messages_sent_total{endpoint=\"[::1]:7\","
	    "endpoint_id=\"5\"} 4\n");
	/* Per endpoint: only the reasons that occurred. */
	assert_block(t, "# TYPE mllp_endpoint_send_failures_total counter\n"
			"mllp_endpoint_send_failures_total{endpoint=\"127.0.0."
			"1:2575\",endpoint_id=\"0\",reason=\"timeout\"} 2\n"
			"mllp_endpoint_send_failures_total{endpoint=\"[::1]:"
			"7\",endpoint_id=\"5\",reason=\"os\"} 1\n"
			"# HELP mllp_endpoint_connects_total");
	assert_block(t,
		     "mllp_endpoint_acks_total{endpoint=\"127.0.0.1:2575\","
		     "endpoint_id=\"0\",verdict=\"application_accept\"} 5\n");
	assert_block(t, "mllp_endpoint_tls_handshakes_total{endpoint=\"[::1]:"
			"7\",endpoint_id=\"5\"} 3\n");
	assert_block(t, "# TYPE mllp_endpoint_connected gauge\n"
			"mllp_endpoint_connected{endpoint=\"127.0.0.1:2575\","
			"endpoint_id=\"0\"} 1\n"
			"mllp_endpoint_connected{endpoint=\"[::1]:7\","
			"endpoint_id=\"5\"} 0\n");
	/* The last family closes the text. */
	const char *end = "endpoint_id=\"5\"} 0\n";
	assert_string_equal(t + n - strlen(end), end);
	free(t);
}

/* Every sample follows the HELP and TYPE lines of its family, each family
 * appears once, and pool and receiver families never share a name. */
static void check_families(const char *t, char names[][64], size_t *nn)
{
	char fam[64] = "";
	bool help = false;
	for (const char *l = t; *l;) {
		const char *e = strchr(l, '\n');
		assert_non_null(e);
		char line[512];
		size_t len = (size_t)(e - l);
		assert_true(len < sizeof(line));
		memcpy(line, l, len);
		line[len] = 0;
		char name[64], rest[448];
		if (sscanf(line, "# HELP %63s %447[^\n]", name, rest) == 2) {
			for (size_t i = 0; i < *nn; i++)
				if (strcmp(names[i], name) == 0)
					fail_msg("family %s twice", name);
			strcpy(names[(*nn)++], name);
			strcpy(fam, name);
			help = true;
		} else if (sscanf(line, "# TYPE %63s %447s", name, rest) == 2) {
			assert_true(help);
			assert_string_equal(name, fam);
			help = false;
		} else {
			assert_true(fam[0] && !help);
			assert_true(strncmp(line, fam, strlen(fam)) == 0);
		}
		l = e + 1;
	}
}

static void test_families(void **state)
{
	(void)state;
	static char names[200][64];
	size_t nn = 0;
	struct pool_case c;
	pool_case(&c);
	int n;
	char *t = render_pool(&c, &n);
	check_families(t, names, &nn);
	free(t);
	size_t npool = nn;
	assert_int_equal(npool, 40);
	char buf[8192];
	struct mllp_receiver_stats s = recv_stats();
	assert_true(mllp_metrics_render_receiver_stats(&s, "epoll", buf,
						       sizeof(buf), NULL) > 0);
	check_families(buf, names, &nn);
	uint64_t counts[MLLP_ACK_CODE_COUNT] = {0};
	assert_true(mllp_metrics_render_acks(counts, buf, sizeof(buf), NULL) >
		    0);
	check_families(buf, names, &nn);
	assert_int_equal(nn, npool + 25);
}

static void test_escaping(void **state)
{
	(void)state;
	struct mllp_metrics_label lab[2] = {{"a", "back\\slash \"q\"\nnl"},
					    {"b", ""}};
	struct mllp_metrics_options o = {.labels = lab, .nlabels = 2};
	const uint64_t counts[MLLP_ACK_CODE_COUNT] = {1, 0, 0, 0, 0, 0};
	char buf[2048];
	assert_true(mllp_metrics_render_acks(counts, buf, sizeof(buf), &o) > 0);
	assert_block(buf,
		     "mllp_acks_sent_total{a=\"back\\\\slash \\\"q\\\"\\nnl"
		     "\",b=\"\",code=\"AA\"} 1\n");
	/* A host name as given: escaped too. */
	struct pool_case c;
	pool_case(&c);
	strcpy(c.e[0].host, "h\"x\\");
	int n;
	char *t = render_pool(&c, &n);
	assert_block(t, "mllp_endpoint_queued{endpoint=\"h\\\"x\\\\:2575\","
			"endpoint_id=\"0\"} 0\n");
	free(t);
}

/* Too small: the needed length, the empty string, nothing written at or
 * past cap; one more byte than the length: the whole text. */
static void test_small_buffer(void **state)
{
	(void)state;
	struct mllp_receiver_stats s = recv_stats();
	struct mllp_metrics_label lab = {"site", "x"};
	struct mllp_metrics_options o = {
	    .prefix = "hl7", .labels = &lab, .nlabels = 1};
	size_t len = strlen(recv_text);
	assert_int_equal(
	    mllp_metrics_render_receiver_stats(&s, "epoll", NULL, 0, &o), len);
	char *buf = malloc(len + 64);
	assert_non_null(buf);
	for (size_t cap = 0; cap <= len + 1; cap++) {
		memset(buf, 0x5a, len + 64);
		int n = mllp_metrics_render_receiver_stats(&s, "epoll", buf,
							   cap, &o);
		assert_int_equal(n, len);
		for (size_t i = cap; i < len + 64; i++)
			if (buf[i] != 0x5a)
				fail_msg("cap %zu: byte %zu written", cap, i);
		if (cap > 0 && cap <= len)
			assert_int_equal(buf[0], 0);
	}
	assert_string_equal(buf, recv_text);
	/* The pool's text too, through a guard page: one byte past cap
	 * faults. */
	struct pool_case c;
	pool_case(&c);
	int need = mllp_metrics_render_pool_stats(&c.s, &c.h, c.ep, c.ids, 2,
						  NULL, 0, NULL);
	struct tu_guard g;
	char *gb = (char *)tu_guard_copy(&g, recv_text, 100);
	assert_int_equal(mllp_metrics_render_pool_stats(&c.s, &c.h, c.ep, c.ids,
							2, gb, 100, NULL),
			 need);
	assert_int_equal(gb[0], 0);
	tu_guard_free(&g);
	free(buf);
}

static void test_bad_options(void **state)
{
	(void)state;
	struct mllp_receiver_stats s = recv_stats();
	char buf[8192];
	static const char *const bad_prefix[] = {"", "1x", "a-b", "a b", "é"};
	for (size_t i = 0; i < 5; i++) {
		struct mllp_metrics_options o = {.prefix = bad_prefix[i]};
		strcpy(buf, "old");
		assert_int_equal(mllp_metrics_render_receiver_stats(
				     &s, NULL, buf, sizeof(buf), &o),
				 MLLP_ERR_INVALID_ARGUMENT);
		assert_string_equal(buf, "");
	}
	struct mllp_metrics_options ok = {.prefix = "a:b_C9"};
	assert_true(mllp_metrics_render_receiver_stats(&s, NULL, buf,
						       sizeof(buf), &ok) > 0);
	assert_true(
	    strncmp(buf, "# HELP a:b_C9_connections_accepted_total", 40) == 0);
	/* Label names: syntax, reserved, repeated; values not NULL. */
	static const struct mllp_metrics_label bad[][2] = {
	    {{"le", "1"}, {"x", "1"}},	     {{"reason", "1"}, {"x", "1"}},
	    {{"__x", "1"}, {"x", "1"}},	     {{"a:b", "1"}, {"x", "1"}},
	    {{"x", "1"}, {"x", "2"}},	     {{"9", "1"}, {"x", "1"}},
	    {{"x", NULL}, {"y", "1"}},	     {{NULL, "1"}, {"y", "1"}},
	    {{"endpoint", "1"}, {"y", "1"}},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mllp_metrics_options o = {.labels = bad[i],
						 .nlabels = 2};
		assert_int_equal(mllp_metrics_render_receiver_stats(
				     &s, NULL, buf, sizeof(buf), &o),
				 MLLP_ERR_INVALID_ARGUMENT);
	}
	struct mllp_metrics_options nolabels = {.nlabels = 1};
	assert_int_equal(mllp_metrics_render_receiver_stats(
			     &s, NULL, buf, sizeof(buf), &nolabels),
			 MLLP_ERR_INVALID_ARGUMENT);
	/* NULL arguments. */
	assert_int_equal(mllp_metrics_render_receiver_stats(NULL, NULL, buf,
							    sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(
	    mllp_metrics_render_receiver(NULL, buf, sizeof(buf), NULL),
	    MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_metrics_render_pool(NULL, buf, sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_metrics_render_acks(NULL, buf, sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	struct pool_case c;
	pool_case(&c);
	assert_int_equal(mllp_metrics_render_pool_stats(
			     NULL, NULL, NULL, NULL, 0, buf, sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_int_equal(mllp_metrics_render_pool_stats(
			     &c.s, NULL, NULL, NULL, 1, buf, sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	const struct mllp_endpoint_stats *none[1] = {NULL};
	assert_int_equal(mllp_metrics_render_pool_stats(
			     &c.s, NULL, none, NULL, 1, buf, sizeof(buf), NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_string_equal(buf, "");
}

/* An endpoint stats struct from an older caller (smaller size): the
 * fields past its size count as zero; ids NULL: the index; no histogram,
 * no backend: those families are left out. */
static void test_pool_variants(void **state)
{
	(void)state;
	struct pool_case c;
	pool_case(&c);
	c.e[1].size = offsetof(struct mllp_endpoint_stats, tls_handshakes);
	c.s.backend = NULL;
	char buf[32768];
	int n = mllp_metrics_render_pool_stats(&c.s, NULL, c.ep, NULL, 2, buf,
					       sizeof(buf), NULL);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	assert_block(buf, "mllp_endpoint_tls_handshakes_total{endpoint=\"[::1]:"
			  "7\",endpoint_id=\"1\"} 0\n");
	assert_null(strstr(buf, "reply_latency"));
	assert_null(strstr(buf, "pool_info"));
	/* No endpoint: no endpoint family at all. */
	n = mllp_metrics_render_pool_stats(&c.s, NULL, NULL, NULL, 0, buf,
					   sizeof(buf), NULL);
	assert_true(n > 0);
	assert_null(strstr(buf, "mllp_endpoint_"));
}

static void test_latency_bounds(void **state)
{
	(void)state;
	struct mllp_latency_histogram h;
	memset(&h, 0xff, sizeof(h));
	h.size = sizeof(h);
	assert_int_equal(mllp_pool_get_latency(NULL, &h), 0);
	assert_int_equal(h.size, sizeof(h));
	assert_int_equal(h.bound_us[0], 100);
	assert_int_equal(h.bound_us[MLLP_LATENCY_BUCKETS - 1], 60000000);
	for (int i = 1; i < MLLP_LATENCY_BUCKETS; i++)
		assert_true(h.bound_us[i] > h.bound_us[i - 1]);
	for (int i = 0; i <= MLLP_LATENCY_BUCKETS; i++)
		assert_int_equal(h.count[i], 0);
	assert_int_equal(h.sum_us, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_receiver_text),
	    cmocka_unit_test(test_acks_text),
	    cmocka_unit_test(test_pool_text),
	    cmocka_unit_test(test_families),
	    cmocka_unit_test(test_escaping),
	    cmocka_unit_test(test_small_buffer),
	    cmocka_unit_test(test_bad_options),
	    cmocka_unit_test(test_pool_variants),
	    cmocka_unit_test(test_latency_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

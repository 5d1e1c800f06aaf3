/* Option defaults (the _init functions) and the names of events and log
 * levels. */
#include <string.h>
#include <mllp/framer.h>
#include <mllp/pool.h>

/* ---- names ---------------------------------------------------------- */

const char *mllp_event_name(enum mllp_event_kind kind)
{
	static const char *const names[] = {
	    "connection_success",
	    "connection_failure",
	    "connection_closed",
	    "send_error",
	    "receive_timeout",
	    "invalid_response",
	    "receive_valid",
	    "stale_reply",
	    "commit_ack",
	    "commit_nak",
	    "lane_held",
	    "application_ack",
	    "application_ack_timeout",
	    "late_accept_ack",
	};
	_Static_assert(sizeof(names) / sizeof(names[0]) == MLLP_EVENT_COUNT &&
			   MLLP_EV_LATE_ACCEPT_ACK + 1 == MLLP_EVENT_COUNT,
		       "MLLP_EVENT_COUNT counts enum mllp_event_kind");
	if ((unsigned)kind < MLLP_EVENT_COUNT)
		return names[kind];
	return "unknown";
}

const char *mllp_log_level_name(enum mllp_log_level level)
{
	switch (level) {
	case MLLP_LOG_ERROR:
		return "error";
	case MLLP_LOG_WARNING:
		return "warning";
	case MLLP_LOG_INFO:
		return "info";
	case MLLP_LOG_DEBUG:
		return "debug";
	}
	return "unknown";
}

/* ---- configuration -------------------------------------------------- */

void mllp_conn_options_init(struct mllp_conn_options *o)
{
	memset(o, 0, sizeof(*o));
	o->use_backoff = true;
	o->backoff_max_s = 180;
	o->auto_reconnect_interval_ms = 1000;
	o->connect_timeout_ms = 2000;
	o->reply_timeout_ms = 60000;
	o->send_timeout_ms = 60000;
	o->send_timeout_close = true;
	o->keepalive = true;
	o->keepalive_idle_s = 60;
	o->keepalive_interval_s = 10;
	o->keepalive_count = 6;
	o->nodelay = true;
	o->close_on_recv_error = true;
	o->reconnect_on_send_error = true;
	o->queue_timeout_ms = 0;
	o->max_inflight = 1;
	o->replies_in_order = false;
	o->tls = NULL;
	o->mllp_release = 1;
	o->r2_max_retries = 2;
	o->lane_policy = MLLP_LANE_HOLD;
	o->lane_max_retries = 5;
	o->max_lanes = 65536;
}

void mllp_pool_config_init(struct mllp_pool_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	mllp_conn_options_init(&cfg->conn);
	cfg->max_reply = MLLP_DEFAULT_MAX_FRAME;
	cfg->queue_capacity = 65536;
	cfg->ring_entries = 1024;
	cfg->recv_buffers = 256;
	cfg->recv_buffer_size = 16384;
	cfg->log_level = MLLP_LOG_ERROR;
	cfg->backoff_divisor = 1;
}

void mllp_send_options_init(struct mllp_send_options *o)
{
	memset(o, 0, sizeof(*o));
	o->kind = MLLP_PAYLOAD_AUTO;
	o->block_timeout_ms = MLLP_INFINITE;
}

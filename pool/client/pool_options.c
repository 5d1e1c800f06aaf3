/* Option defaults (the _init functions) and the names of events and log
 * levels. */
#include <string.h>
#include <mllp/framer.h>
#include <mllp/pool.h>

/* ---- names ---------------------------------------------------------- */

const char *mllp_event_name(enum mllp_event_kind kind)
{
	static const char *const names[] = {
	    "connection_success", "connection_failure", "connection_closed",
	    "send_error",	  "receive_timeout",	"invalid_response",
	    "receive_valid",	  "stale_reply",
	};
	if ((unsigned)kind < MLLP_EV_COUNT_)
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
	o->backoff_max_seconds = 180;
	o->auto_reconnect_interval = 1000;
	o->connect_timeout = 2000;
	o->reply_timeout = 60000;
	o->send_timeout = 60000;
	o->send_timeout_close = true;
	o->keepalive = true;
	o->keepalive_idle = 60;
	o->keepalive_interval = 10;
	o->keepalive_count = 6;
	o->nodelay = true;
	o->close_on_recv_error = true;
	o->reconnect_on_send_error = true;
	o->queue_timeout = 0;
	o->tls = NULL;
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
	o->block_timeout = MLLP_INFINITE;
}

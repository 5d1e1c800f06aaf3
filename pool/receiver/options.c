/* The receiver's option names and defaults: the names of message kinds,
 * events and close reasons, mllp_receiver_config_init, and the check of a
 * configuration before start. */
#include <string.h>

#include <mllp/receiver.h>

#include "receiver_internal.h"
#include "reserved.h"

const char *mllp_msg_kind_name(enum mllp_msg_kind kind)
{
	return kind == MLLP_MSG_HL7 ? "mllp_hl7" : "mllp_unknown";
}

const char *mllp_receiver_event_name(enum mllp_receiver_event_kind kind)
{
	switch (kind) {
	case MLLP_RECEIVER_EV_CONNECTION_START:
		return "connection_start";
	case MLLP_RECEIVER_EV_CONNECTION_STOP:
		return "connection_stop";
	case MLLP_RECEIVER_EV_MESSAGE_RECEIVED:
		return "message_received";
	case MLLP_RECEIVER_EV_REPLY_SENT:
		return "reply_sent";
	}
	return "unknown";
}

const char *mllp_close_reason_name(enum mllp_close_reason reason)
{
	switch (reason) {
	case MLLP_CLOSE_NONE:
		return "none";
	case MLLP_CLOSE_PEER:
		return "closed";
	case MLLP_CLOSE_ERROR:
		return "error";
	case MLLP_CLOSE_IDLE_TIMEOUT:
		return "idle_timeout";
	case MLLP_CLOSE_REFUSED:
		return "refused";
	case MLLP_CLOSE_STOPPED:
		return "stopped";
	case MLLP_CLOSE_REPLY_TIMEOUT:
		return "reply_timeout";
	}
	return "unknown";
}

/* Options taken from the reserved space keep the struct's size (LP64). */
_Static_assert(sizeof(void *) != 8 ||
		   sizeof(struct mllp_receiver_config) == 256,
	       "mllp_receiver_config changed size");

void mllp_receiver_config_init(struct mllp_receiver_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->port = MLLP_PORT_UNSET;
	cfg->max_frame = MLLP_RECEIVER_DEFAULT_MAX_FRAME;
	cfg->max_connections = MLLP_RECEIVER_DEFAULT_MAX_CONNECTIONS;
	cfg->idle_timeout_ms = MLLP_RECEIVER_DEFAULT_IDLE_TIMEOUT_MS;
	cfg->read_buffer_keep = 64 * 1024;
	cfg->max_reply_backlog = 16 * 1024 * 1024;
	cfg->listen_backlog = 1024;
	cfg->ring_entries = 1024;
	cfg->recv_buffers = 512;
	cfg->recv_buffer_size = 16 * 1024;
	cfg->log_level = MLLP_LOG_WARNING;
	cfg->tls_handshake_timeout_ms = 10000;
	cfg->reply_backlog_pause = MLLP_RECEIVER_DEFAULT_REPLY_PAUSE;
	cfg->max_buffered_bytes = MLLP_RECEIVER_DEFAULT_MAX_BUFFERED;
	cfg->max_pending_replies = MLLP_RECEIVER_DEFAULT_MAX_PENDING;
	cfg->mllp_release = 1;
	cfg->stop_drain_ms = MLLP_RECEIVER_DEFAULT_STOP_DRAIN_MS;
}

int mllpi_receiver_config_check(const struct mllp_receiver_config *cfg,
				struct mllp_error *err)
{
	int rc = MLLPI_CHECK_RESERVED(cfg, "mllp_receiver_config",
				      MLLP_CTX_NONE, err);
	if (rc == 0 && cfg->dispatch == mllp_dispatch_ack && cfg->dispatch_ctx)
		rc = MLLPI_CHECK_RESERVED(
		    (const struct mllp_ack_dispatcher *)cfg->dispatch_ctx,
		    "mllp_ack_dispatcher", MLLP_CTX_NONE, err);
	if (rc != 0)
		return rc;
	if (cfg->port == MLLP_PORT_UNSET) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "No tcp port provided");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (!cfg->dispatch) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "No dispatcher module provided");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (cfg->mllp_release > 2) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "mllp_receiver_config: mllp_release must be 1 "
			       "or 2 (got %u)",
			       cfg->mllp_release);
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	if (cfg->port < 0 || cfg->port > 65535 || cfg->max_frame == 0 ||
	    cfg->max_connections == 0 || cfg->ring_entries == 0 ||
	    cfg->recv_buffers == 0 ||
	    (cfg->recv_buffers & (cfg->recv_buffers - 1)) ||
	    cfg->recv_buffers > 32768 || cfg->recv_buffer_size == 0 ||
	    cfg->max_reply_backlog == 0 || cfg->listen_backlog <= 0 ||
	    cfg->reply_backlog_pause == 0 ||
	    cfg->max_buffered_bytes < cfg->max_frame ||
	    cfg->max_pending_replies == 0 ||
	    (unsigned)cfg->backend > MLLP_BACKEND_EPOLL) {
		mllp_error_set(err, MLLP_CTX_NONE, MLLP_ERR_INVALID_ARGUMENT,
			       "invalid receiver configuration");
		return MLLP_ERR_INVALID_ARGUMENT;
	}
	return 0;
}

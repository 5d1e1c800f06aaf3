/* mllp-load's embedded receiver: the library's receiver in-process on an
 * ephemeral loopback port, answering with an ACK code or mix after a
 * delay, when no HOST PORT is given. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"

static const char *prog = LOAD_PROG;

int load_embedded_start(const struct opts *o, struct load_embedded *e,
			const char **host, uint16_t *port, char *target,
			size_t target_cap)
{
	memset(e, 0, sizeof(*e));
	if (o->host) {
		*host = o->host;
		*port = o->port;
		snprintf(target, target_cap, "%s:%u", o->host, o->port);
		return 0;
	}
	mllp_ack_dispatcher_init(&e->disp);
	if (o->embedded_ack && strchr(o->embedded_ack, '=')) {
		if (mllp_ack_dispatcher_set_mix(&e->disp, o->embedded_ack) != 0)
			tool_usage(prog,
				   "--embedded-ack: bad mix '%s' "
				   "(e.g. AA=98,AE=1,AR=1)",
				   o->embedded_ack);
	} else if (o->embedded_ack) {
		e->disp.code = o->embedded_ack;
	}
	e->disp.seed = (uint64_t)time(NULL);
	e->disp.delay_ms = o->embedded_delay_ms;
	struct mllp_receiver_config rc;
	mllp_receiver_config_init(&rc);
	rc.address = "127.0.0.1";
	rc.port = 0;
	rc.dispatch = mllp_dispatch_ack;
	rc.dispatch_ctx = &e->disp;
	rc.max_frame = o->size > MLLP_RECEIVER_DEFAULT_MAX_FRAME
			   ? o->size + 4096
			   : MLLP_RECEIVER_DEFAULT_MAX_FRAME;
	rc.log = tool_log_limited;
	rc.log_ctx = (void *)prog;
	rc.log_level = MLLP_LOG_ERROR;
	rc.backend = o->cl.backend;
	if (o->connections > rc.max_connections) /* one per -c, at most */
		rc.max_connections = o->connections;
	rc.mllp_release = o->cl.mllp_release ? o->cl.mllp_release : 1;
	struct mllp_error err;
	if (mllp_receiver_create(&rc, &e->recv, &err) != 0) {
		char ebuf[300];
		mllp_error_format(&err, ebuf, sizeof(ebuf));
		fprintf(stderr, "%s: embedded receiver: %s\n", prog, ebuf);
		return TOOL_EXIT_FAIL;
	}
	*host = "127.0.0.1";
	*port = mllp_receiver_port(e->recv);
	snprintf(target, target_cap,
		 "embedded receiver 127.0.0.1:%u (ack %s, delay %u ms)", *port,
		 o->embedded_ack ? o->embedded_ack : "AA",
		 o->embedded_delay_ms);
	return 0;
}

void load_embedded_stop(struct load_embedded *e)
{
	if (e->recv)
		mllp_receiver_stop(e->recv);
}

void load_embedded_destroy(struct load_embedded *e)
{
	mllp_receiver_destroy(e->recv);
	e->recv = NULL;
}

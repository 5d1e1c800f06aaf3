/* mllp-bridge out: the durable consumer — looked up (or created with
 * --create-consumer: push, deliver group, explicit acks) and bound with a
 * queue subscription and manual acks. */
#include <stdio.h>

#include "mllp-bridge.h"

/* The consumer's configuration for --create-consumer. */
static natsStatus create(struct bridge_nats *n, const char *stream,
			 const struct bridge_out_opts *oo, jsConsumerInfo **ci)
{
	char deliver[300];
	snprintf(deliver, sizeof(deliver), "_MLLP.deliver.%s.%s", stream,
		 oo->consumer);
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = oo->consumer;
	cc.DeliverSubject = deliver;
	cc.DeliverGroup = oo->consumer;
	cc.AckPolicy = js_AckExplicit;
	cc.AckWait = oo->ack_wait_s * 1000000000LL;
	cc.MaxAckPending = oo->max_ack_pending;
	cc.FilterSubject = oo->filter;
	jsErrCode jerr = 0;
	natsStatus s = js_AddConsumer(ci, n->js, stream, &cc, NULL, &jerr);
	if (s != NATS_OK)
		bridge_log("cannot create consumer '%s' on stream '%s': %s",
			   oo->consumer, stream, nats_GetLastError(NULL));
	return s;
}

/* Look the consumer up, or create it; NULL after logging why. */
static jsConsumerInfo *lookup(struct bridge_nats *n, const char *stream,
			      const struct bridge_out_opts *oo)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s =
	    js_GetConsumerInfo(&ci, n->js, stream, oo->consumer, NULL, &jerr);
	if (s == NATS_NOT_FOUND && oo->create_consumer)
		return create(n, stream, oo, &ci) == NATS_OK ? ci : NULL;
	if (s == NATS_NOT_FOUND)
		bridge_log("consumer '%s' not found on stream '%s' (create it "
			   "with --create-consumer)",
			   oo->consumer, stream);
	else if (s != NATS_OK)
		bridge_log("cannot look up consumer '%s' on stream '%s': %s",
			   oo->consumer, stream, nats_GetLastError(NULL));
	return s == NATS_OK ? ci : NULL;
}

int bridge_consumer_bind(struct bridge_nats *n, const char *stream,
			 const struct bridge_out_opts *oo, natsMsgHandler cb,
			 void *closure, natsSubscription **sub,
			 struct bridge_consumer_info *info)
{
	jsConsumerInfo *ci = lookup(n, stream, oo);
	if (!ci)
		return BRIDGE_EXIT_RUNTIME;
	const char *group = ci->Config->DeliverGroup;
	if (!ci->Config->DeliverSubject || !group || !*group ||
	    ci->Config->AckPolicy != js_AckExplicit) {
		bridge_log(
		    "consumer '%s' on stream '%s' is not a push consumer "
		    "with a deliver group and explicit acks (create one "
		    "with --create-consumer under another name)",
		    oo->consumer, stream);
		jsConsumerInfo_Destroy(ci);
		return BRIDGE_EXIT_RUNTIME;
	}
	info->ack_wait_ms = ci->Config->AckWait / 1000000;
	info->ack_pending =
	    ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0;
	info->delivered_stream_seq = ci->Delivered.Stream;
	info->push_bound = ci->PushBound;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = oo->consumer;
	so.Queue = group;
	so.ManualAck = true;
	jsErrCode jerr = 0;
	natsStatus s = js_Subscribe(sub, n->js, ci->Config->FilterSubject, cb,
				    closure, NULL, &so, &jerr);
	jsConsumerInfo_Destroy(ci);
	if (s != NATS_OK) {
		bridge_log("cannot subscribe to consumer '%s' on stream '%s': "
			   "%s",
			   oo->consumer, stream, nats_GetLastError(NULL));
		return BRIDGE_EXIT_RUNTIME;
	}
	/* The server bounds what is outstanding (MaxAckPending): let the
	 * client's queue hold all of it. */
	natsSubscription_SetPendingLimits(*sub, -1, -1);
	return 0;
}

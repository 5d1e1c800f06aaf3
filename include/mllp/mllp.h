/* libmllp: umbrella header. Include this, or the one header per concept. */
#ifndef MLLP_MLLP_H
#define MLLP_MLLP_H

#include <mllp/ack.h>
#include <mllp/alloc.h>
#include <mllp/backoff.h>
#include <mllp/client.h>
#include <mllp/enhanced.h>
#include <mllp/error.h>
#include <mllp/export.h>
#include <mllp/framer.h>
#include <mllp/future.h>
#include <mllp/hl7.h>
#include <mllp/metrics.h>
#include <mllp/pool.h>
#include <mllp/receiver.h>
#include <mllp/telemetry.h>
#include <mllp/tls.h>
#include <mllp/version.h>

#endif

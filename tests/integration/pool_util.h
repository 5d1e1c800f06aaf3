/* Helpers shared by the pool suites test_pool.c, test_pool_replies.c and
 * test_pool_async.c: a client and test receiver pair, sends that expect an
 * AA, waits on client state. */
#ifndef POOL_UTIL_H
#define POOL_UTIL_H

#include <errno.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"

struct mllp_client *start_client(uint16_t port, struct ti_rec *rec,
				 void (*tweak)(struct mllp_pool_config *));

struct mllp_client *start_pair(struct tr *r, enum tr_mode mode,
			       struct ti_rec *rec,
			       void (*tweak)(struct mllp_pool_config *));

void stop_pair(struct mllp_client *c, struct tr *r);

bool client_up(void *arg);

void send_expect_aa(struct mllp_client *c, int n, int64_t rt);

/* An orphan event of kind (with reason, unless any_reason) in rec. */
struct orphan_want {
	struct ti_rec *rec;
	enum mllp_event_kind kind;
	bool any_reason;
	int reason;
};

bool has_orphan(void *arg);

bool wait_orphan(struct ti_rec *rec, enum mllp_event_kind kind, bool any_reason,
		 int reason, int timeout_ms);

#endif

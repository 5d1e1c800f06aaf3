/* Helpers shared by the receiver suites test_receiver.c,
 * test_receiver_scale.c and test_receiver_dispatch.c: a recorder of log
 * lines and telemetry, receiver start and stop, a raw test client. */
#ifndef RECV_UTIL_H
#define RECV_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "testutil.h"

#include "common.h" /* ti_backend(): MLLP_TEST_BACKEND, as the pool suites */

/* ---- recorder: log lines and telemetry, waitable ----------------------- */

#define MAX_LINES 256

struct rec {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *lines[MAX_LINES];
	int nlines;
	int ev[4];
	int reasons[8];
	int stop_errors[8]; /* error code of the last stop per reason */
	int replies;	    /* sum of reply_sent.replies */
	struct mllp_conn_info last_info;
};

void rec_init(struct rec *r);

void rec_free(struct rec *r);

void rec_log(void *ctx, enum mllp_log_level l, const char *line);

void rec_tel(void *ctx, const struct mllp_receiver_event *ev);

int rec_count_lines(struct rec *r, const char *sub);

int rec_wait(struct rec *r, const int *counter, int want);

bool rec_wait_line(struct rec *r, const char *sub);

void cfg_for(struct mllp_receiver_config *c, struct rec *r, mllp_dispatch_fn fn,
	     void *ctx);

struct mllp_receiver *start(const struct mllp_receiver_config *c);

/* ---- a raw test client -------------------------------------------------- */

struct tc {
	int fd;
	struct mllp_decoder dec;
	unsigned char buf[65536];
	size_t off, len;
};

int tc_connect_to(struct tc *t, const char *addr, uint16_t port);

void tc_connect(struct tc *t, uint16_t port);

void tc_close(struct tc *t);

void tc_write(struct tc *t, const void *p, size_t n);

void tc_send_frame(struct tc *t, const void *p, size_t n);

char *tc_read_frame(struct tc *t, size_t *len);

bool tc_wait_closed(struct tc *t);

unsigned char *corpus(const char *name, size_t *len);

void rec_cfg(struct rec *r, struct mllp_receiver_config *c, mllp_dispatch_fn fn,
	     void *ctx);

struct mllp_receiver *start_with(struct rec *r, mllp_dispatch_fn fn, void *ctx);

struct mllp_receiver *start_connected(struct rec *r, struct tc *t,
				      mllp_dispatch_fn fn, void *ctx);

void finish(struct mllp_receiver *rv, struct rec *r);

void expect_ids(struct tc *t, const char *fmt, int from, int to);

void assert_ack(const void *msg, size_t mlen, const char *reply, size_t rlen,
		const char *code);

int round_trip(struct tc *t, const void *msg, size_t n);

#endif

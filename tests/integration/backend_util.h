/* Fixture shared by the backend conformance suites (test_backend.c,
 * test_backend_cancel.c): one backend per case and what its completions
 * said, pumping and awaiting completions, loopback sockets, and BOTH(),
 * which runs a case against io_uring and against epoll. */
#ifndef BACKEND_UTIL_H
#define BACKEND_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "backend.h"

#define TOK_CONNECT 0x100
#define TOK_SEND    0x200
#define TOK_RECV    0x300
#define TOK_ACCEPT  0x400
#define TOK_CANCEL  0x500

struct rec {
	uint64_t token;
	int res;
	bool more;
	bool taken;
};

#define MAX_RECS 65536

/* One test's backend and what its completions said. Test thread only. */
struct fx {
	const struct mllpi_backend_ops *ops;
	struct mllpi_backend *b;
	struct rec recs[MAX_RECS];
	int nrec;
	/* bytes of every recv completion, in order */
	unsigned char *rx;
	size_t rxlen, rxcap;
	int recv_ends;	  /* recv completions with more == false */
	int last_end_res; /* res of the last of them */
};

uint64_t now_us(void);

int setup(void **state);

int teardown(void **state);

struct fx *FX(void **state);

int pump(struct fx *f, int64_t timeout_us);

struct rec *await_(struct fx *f, uint64_t token, int ms, bool only_end);

struct rec *await(struct fx *f, uint64_t token, int ms);

int make_listener(struct fx *f, int backlog, uint16_t *port);

void loopback(struct sockaddr_in *a, uint16_t port);

int client_socket(struct fx *f);

int accept_wait(int l);

void connect_pair(struct fx *f, int *cfd, int *sfd);

/* ---- parameterisation --------------------------------------------------- */

#define BOTH(fn)                                                               \
	{#fn "/io_uring", fn, setup, teardown,                                 \
	 (void *)(uintptr_t)&mllpi_backend_uring},                             \
	{                                                                      \
#fn "/epoll", fn, setup, teardown,                             \
		    (void *)(uintptr_t)&mllpi_backend_epoll                    \
	}

#endif

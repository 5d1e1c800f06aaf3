/* The real I/O backend of this run (MLLP_TEST_BACKEND: io_uring or epoll),
 * wrapped so that wait() (and sendmsg_inq) fails on demand: while tw_wait_fail
 * holds a -errno, every wait() returns it (counted in tw_wait_failures); every
 * other call passes through. The wrapped backend is named "wrapped". For
 * tests that start a manager on it (mllpi_pool_create_ops,
 * mllpi_receiver_create_ops). */
#ifndef TI_WRAP_BACKEND_H
#define TI_WRAP_BACKEND_H

#include <stdatomic.h>

#include "backend.h"

extern _Atomic int tw_wait_fail;
extern _Atomic int tw_wait_failures;
/* sendmsg_inq (where the real backend has one): while tw_inq_fail holds a
 * -errno every call returns it, nothing submitted; calls counted in
 * tw_inq_calls. */
extern _Atomic int tw_inq_fail;
extern _Atomic int tw_inq_calls;

/* Wrap the backend under test, wait() passing through, counters at 0; the
 * ops returned stay valid for the whole process. */
const struct mllpi_backend_ops *tw_reset(void);

#endif

/* See mpsc_shim.c. Opaque from C++. */
#ifndef MLLPI_MPSC_SHIM_H
#define MLLPI_MPSC_SHIM_H
#include <stdbool.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
struct mllpi_node;
/* Frees what the _new functions return. */
void mllpi_bench_free(void *q);

/* The pool's submission queue (pool/io/subq.h), as the pool drives it. */
struct mllpi_subq;
struct mllpi_subq *mllpi_bench_subq_new(void);
/* True when the consumer must be woken. */
bool mllpi_bench_subq_push(struct mllpi_subq *q, struct mllpi_node *n);
struct mllpi_node *mllpi_bench_subq_pop(struct mllpi_subq *q);
bool mllpi_bench_subq_maybe_nonempty(struct mllpi_subq *q);
/* Announce sleeping; true: something is queued, do not block. */
bool mllpi_bench_subq_prepare_sleep(struct mllpi_subq *q);
void mllpi_bench_subq_awake(struct mllpi_subq *q);
#ifdef __cplusplus
}
#endif
#endif

/* See mpsc_shim.c. Opaque from C++. */
#ifndef MLLPI_MPSC_SHIM_H
#define MLLPI_MPSC_SHIM_H
#include <stdbool.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
struct mllpi_mpsc;
struct mllpi_node;
struct mllpi_mpsc *mllpi_bench_q_new(void);
void mllpi_bench_q_free(struct mllpi_mpsc *q);
void mllpi_bench_q_push(struct mllpi_mpsc *q, struct mllpi_node *n);
struct mllpi_node *mllpi_bench_q_pop(struct mllpi_mpsc *q);
size_t mllpi_bench_node_size(void);
bool mllpi_bench_q_maybe_nonempty(struct mllpi_mpsc *q);
#ifdef __cplusplus
}
#endif
#endif

/* What the enhanced acknowledgement mode suites share
 * (test_enhanced.c, test_enhanced_accept.c): messages with MSH-15 and
 * MSH-16, the library receiver with the built-in ack dispatcher, and the
 * pool's ack listener. Failures fail the test (cmocka). */
#ifndef TI_ENHANCED_UTIL_H
#define TI_ENHANCED_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <mllp/mllp.h>

/* A message with control id CTRL<n>, MSH-15 acc and MSH-16 app ("" for
 * none), at b (cap bytes); its length as snprintf. */
size_t te_make_msg(char *b, size_t cap, int n, const char *acc,
		   const char *app);

/* The receiving system: the library receiver with the built-in `ack`
 * dispatcher d (initialised here) answering `code`, started. */
struct mllp_receiver *te_ack_receiver(struct mllp_ack_dispatcher *d,
				      const char *code);

/* A receiver in original mode: its dispatcher answers AA to every
 * message, whatever MSH-15 asks; started. */
struct mllp_receiver *te_aa_receiver(void);

/* r is a success (else the test fails with its status and message) with
 * verdict v and MSA-1 code. */
void te_expect_verdict(const struct mllp_result *r, const char *code,
		       enum mllp_verdict v);

/* Give p an ack listener on 127.0.0.1, an ephemeral port and the backend
 * under test, with application_ack_timeout_ms timeout_ms. */
void te_listen_acks(struct mllp_pool *p, int64_t timeout_ms);

#endif

/* The test_tls program (test_tls.c and tls_cases_*.c): its helpers (client
 * and server configurations, an in-memory client/server pair, pumping
 * bytes between them) and its cases. */
#ifndef TLS_UTIL_H
#define TLS_UTIL_H

#include "testutil.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mllp/error.h>
#include <mllp/tls.h>

/* Whether this wolfSSL accelerates AES (then the default prefers AES-GCM). */
#if defined(__has_include)
#if __has_include(<wolfssl/options.h>)
#include <wolfssl/options.h>
#if !defined(WOLFSSL_AESNI) && !defined(WOLFSSL_ARMASM)
#define MLLP_TEST_WOLFSSL_NO_AES_ACCEL 1
#endif
#endif
#endif

extern char certdir[PATH_MAX];

const char *cp(const char *name);

void client_cfg(struct mllp_tls_client_config *c);

void server_cfg(struct mllp_tls_server_config *s);

void mtls_cfg(struct mllp_tls_server_config *s);

void client_cert(struct mllp_tls_client_config *c, const char *name);

struct pair {
	struct mllp_tls_ctx *cctx, *sctx;
	struct mllp_tls_conn *c, *s;
	int crc, src;
	struct mllp_error cerr, serr;
};

void pair_open(struct pair *p, const struct mllp_tls_client_config *cc,
	       const struct mllp_tls_server_config *sc, const char *host);

void pair_reconnect(struct pair *p, const char *host);

void pair_close(struct pair *p);

size_t pump(struct mllp_tls_conn *from, struct mllp_tls_conn *to, size_t chunk);

void handshake(struct pair *p, size_t chunk);

void handshake_ok(struct pair *p, size_t chunk);

void transfer(struct mllp_tls_conn *a, struct mllp_tls_conn *b, const void *msg,
	      size_t len, size_t chunk);

/* A framed message and its framed ACK (sizeof - 1: their lengths). */
#define TLS_FRAME                                                              \
	"\x0bMSH|^~\\&|SEND|FAC|RECV|FAC|20260101120000||ADT^A01|MSG00001|P|"  \
	"2.5\rPID|1||12345^^^HOSP^MR||DOE^JOHN\r\x1c\r"
#define TLS_ACK                                                                \
	"\x0bMSH|^~\\&|RECV|FAC|SEND|FAC|20260101120001||"                     \
	"ACK^A01|ACK00001|P|2.5\rMSA|AA|MSG00001\r\x1c\r"
extern const char frame[sizeof TLS_FRAME];

extern const char ack[sizeof TLS_ACK];

void roundtrip(struct pair *p, size_t chunk);

void expect_contains(const char *s, const char *sub);

/* The cases, in tls_cases_handshake.c, tls_cases_mtls.c,
 * tls_cases_config.c. */
void test_tls13_roundtrip(void **state);

void test_tls12_roundtrip(void **state);

void test_one_byte_feeds(void **state);

void test_want_write(void **state);

void test_ip_and_server_name(void **state);

void test_unknown_ca(void **state);

void test_host_mismatch(void **state);

void test_verify_none(void **state);

void test_client_crl_ok(void **state);

void test_protocol_mismatch(void **state);

void test_mtls_ok(void **state);

void test_mtls_allowed(void **state);

void test_mtls_refused(void **state);

void test_mtls_resumed(void **state);

void test_close_notify(void **state);

void test_not_tls(void **state);

void test_resumption_tls13(void **state);

void test_resumption_tls12(void **state);

void test_failure_names(void **state);

void test_bad_files(void **state);

void test_records_at_once(void **state);

void test_default_ciphers(void **state);

void test_default_refuses_weak(void **state);

void test_handshake_cost(void **state);

#endif

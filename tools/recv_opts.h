/* The receiver's command-line options, shared by mllp-recv and
 * mllp-bridge in: the listen address, the limits, the client allow list
 * and the TLS server options. Put RECV_LONGOPTS (and, for the whole set,
 * RECV_MORE_LONGOPTS) in the getopt_long table (needs <getopt.h>), hand
 * option codes to recv_option(), and call recv_opts_check() after
 * parsing. Public library API only. */
#ifndef MLLP_TOOLS_RECV_OPTS_H
#define MLLP_TOOLS_RECV_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include <mllp/mllp.h>

enum {
	RECV_OPT_BIND = 0x3000,
	RECV_OPT_MAX_FRAME,
	RECV_OPT_MAX_CONN,
	RECV_OPT_IDLE,
	RECV_OPT_ALLOW,
	RECV_OPT_TLS,
	RECV_OPT_CERT,
	RECV_OPT_KEY,
	RECV_OPT_CA,
	RECV_OPT_REQUIRE_CERT,
	/* RECV_MORE_LONGOPTS */
	RECV_OPT_MAX_BUFFERED,
	RECV_OPT_REPLY_PAUSE,
	RECV_OPT_BACKEND,
	RECV_OPT_MLLP2,
	RECV_OPT_CRL,
	RECV_OPT_ALLOW_CN,
	RECV_OPT_END_
};
_Static_assert(RECV_OPT_END_ <= 0x4000, "receiver option codes overlap 0x4000");

/* clang-format off */
#define RECV_LONGOPTS                                                          \
	{"bind", required_argument, NULL, RECV_OPT_BIND},                      \
	{"max-frame", required_argument, NULL, RECV_OPT_MAX_FRAME},            \
	{"max-connections", required_argument, NULL, RECV_OPT_MAX_CONN},       \
	{"idle-timeout", required_argument, NULL, RECV_OPT_IDLE},              \
	{"allow", required_argument, NULL, RECV_OPT_ALLOW},                    \
	{"tls", no_argument, NULL, RECV_OPT_TLS},                              \
	{"cert", required_argument, NULL, RECV_OPT_CERT},                      \
	{"key", required_argument, NULL, RECV_OPT_KEY},                        \
	{"ca", required_argument, NULL, RECV_OPT_CA},                          \
	{"require-client-cert", no_argument, NULL, RECV_OPT_REQUIRE_CERT}
#define RECV_MORE_LONGOPTS                                                     \
	{"max-buffered-bytes", required_argument, NULL, RECV_OPT_MAX_BUFFERED},\
	{"reply-backlog-pause", required_argument, NULL, RECV_OPT_REPLY_PAUSE},\
	{"backend", required_argument, NULL, RECV_OPT_BACKEND},                \
	{"mllp2", no_argument, NULL, RECV_OPT_MLLP2},                          \
	{"crl", required_argument, NULL, RECV_OPT_CRL},                        \
	{"allow-cn", required_argument, NULL, RECV_OPT_ALLOW_CN}
/* clang-format on */

/* What the receiver options set. */
struct recv_opts {
	struct mllp_receiver_config cfg;
	struct mllp_tls_server_config tls;
	const char **allow; /* --allow, in order */
	size_t nallow;
	const char **cns; /* --allow-cn, in order */
	size_t ncns;
	bool more; /* the tool's table holds RECV_MORE_LONGOPTS */
	bool have_max_buffered;
};

/* The library's defaults (mllp_receiver_config_init,
 * mllp_tls_server_config_init); more: the tool takes RECV_MORE_LONGOPTS
 * too (the errors of recv_opts_check name those options). */
void recv_opts_init(struct recv_opts *r, bool more);

/* Apply option ch (arg: its value); false when ch is not a receiver
 * option. A bad value exits 64 with "prog: <reason>, got '<arg>' (see
 * --help)"; out of memory exits 1. */
bool recv_option(const char *prog, int ch, const char *arg,
		 struct recv_opts *r);

/* Refuse contradictions (exit 64 via tool_usage), then point cfg at the
 * allow lists and, with --tls, at tls (r must outlive the receiver). */
void recv_opts_check(const char *prog, struct recv_opts *r);

/* Free the allow lists (after the receiver is destroyed). */
void recv_opts_free(struct recv_opts *r);

#endif

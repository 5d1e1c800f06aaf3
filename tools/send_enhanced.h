/* mllp-send --enhanced, --ack-listen and --app-timeout: enhanced
 * acknowledgement mode (MSH-15 / MSH-16), the pool's ack listener and the
 * application stage printed after each message's accept stage. */
#ifndef MLLP_SEND_ENHANCED_H
#define MLLP_SEND_ENHANCED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mllp/mllp.h>

#include "common.h"

/* The options (see usage). */
struct send_enh_opts {
	bool enhanced;	    /* --enhanced */
	const char *listen; /* --ack-listen [ADDRESS:]PORT, or NULL */
	int64_t timeout_ms; /* --app-timeout MS (default 60000) */
};

/* getopt values and long options of mllp-send's parse_args: a range of
 * their own, above the shared client options of common.h (TOOL_OPT_*). */
#define SEND_ENH_OPT_ENHANCED 0x2000
#define SEND_ENH_OPT_LISTEN   0x2001
#define SEND_ENH_OPT_TIMEOUT  0x2002
#define SEND_ENH_LONGOPTS                                                      \
	{"enhanced", no_argument, NULL, SEND_ENH_OPT_ENHANCED},                \
	    {"ack-listen", required_argument, NULL, SEND_ENH_OPT_LISTEN},      \
	{                                                                      \
		"app-timeout", required_argument, NULL, SEND_ENH_OPT_TIMEOUT   \
	}

#define SEND_ENH_USAGE                                                         \
	"      --enhanced       enhanced acknowledgement mode: messages "      \
	"whose MSH-15 and\n"                                                   \
	"                       MSH-16 are both empty are sent with AL in "    \
	"both (the\n"                                                          \
	"                       receiver answers an accept ACK, CA/CE/CR)\n"   \
	"      --ack-listen [ADDRESS:]PORT\n"                                  \
	"                       listen there (default address 0.0.0.0; port "  \
	"0: any) for\n"                                                        \
	"                       the application ACKs of messages whose "       \
	"MSH-16 asks for\n"                                                    \
	"                       one; each message then gets a second line, "   \
	"its\n"                                                                \
	"                       application stage\n"                           \
	"      --app-timeout MS how long an application ACK may take after "   \
	"the accept\n"                                                         \
	"                       ACK (default 60000)\n"

/* Take option c when it is one of SEND_ENH_OPT_* (true; exits 64 on a bad
 * value), else false. */
bool send_enh_option(const char *prog, int c, const char *arg,
		     struct send_enh_opts *e);
/* Refuse contradictions once every option is parsed (exit 64). */
void send_enh_check(const char *prog, const struct send_enh_opts *e, bool raw,
		    bool async);

/* Messages rewritten by send_enh_rewrite (their copies). */
struct send_enh_store {
	unsigned char **bufs;
	size_t n;
};

/* Outcomes of the application stage, by class (0 accepted, 1 AE/AR,
 * 2 failure or timeout). */
struct send_enh_tally {
	size_t counts[3];
	size_t reported;
};

/* --enhanced: in each message (not a batch) whose MSH-15 and MSH-16 are
 * both empty, set both to AL (a copy of the message kept in *st; the
 * others are sent as they are). 0, or an exit status (printed). */
int send_enh_rewrite(const char *prog, struct tool_msgs *msgs,
		     struct send_enh_store *st);
void send_enh_store_free(struct send_enh_store *st);

/* --ack-listen [ADDRESS:]PORT: the pool's ack listener (address default
 * 0.0.0.0, port 0 ephemeral), application_ack_timeout_ms timeout_ms. The
 * bound address and port are printed on stderr unless quiet. 0, or an
 * exit status (the error printed). */
int send_enh_listen(const char *prog, struct mllp_pool *pool, const char *spec,
		    int64_t timeout_ms, enum mllp_backend_kind backend,
		    bool quiet);

/* The application stage of message `index` (1-based; id its MSH-10): waits
 * for it, prints one line (or JSON object) unless quiet, counts it in t
 * and raises *worst to its class. Nothing when f (may be NULL) has no
 * application stage. */
void send_enh_report(bool quiet, bool json, size_t index, struct mllp_str id,
		     struct mllp_future *f, struct send_enh_tally *t,
		     int *worst);

/* "NE" or "ER" when HL7 message data[0..len) asks in MSH-15 for no accept
 * ACK on success (the pool completes it when written), else NULL. */
const char *send_enh_no_accept(const void *data, size_t len);

/* The class of a verdict for the summary and the exit status: 0 accept,
 * 1 application error or reject, 2 anything else (a failure). */
int send_enh_verdict_class(enum mllp_verdict v);

/* The successes of the summary line, on stderr: "N WORD" (ok_word:
 * "accepted", "written", ...), N being ok less no_accept, then, when
 * no_accept > 0, ", M written without an accept ACK (MSH-15 NE/ER)": the
 * messages of the ok whose MSH-15 asked for no accept ACK, done once
 * written (send_enh_no_accept). */
void send_enh_summary_ok(size_t ok, size_t no_accept, const char *ok_word);

/* "application stage: N accepted, N errors or rejects, N failed" on
 * stderr, when any was reported and not quiet. */
void send_enh_summary(const char *prog, bool quiet,
		      const struct send_enh_tally *t);

#endif

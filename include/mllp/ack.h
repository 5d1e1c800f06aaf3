/* libmllp: verifying HL7 acknowledgements and generating them.
 *
 * Verification follows the reference (MLLP.Ack) with its substring defect
 * fixed: MSA-2 must *equal* the message's MSH-10, byte for byte. Codes are
 * case-sensitive. Exactly one verdict, decided in this order (the
 * reference's order: it checks the control id before it looks at the
 * code):
 *   1. invalid_message      the sent message is not HL7 (see
 *                           mllp_hl7_parse) or its MSH-10 is empty (an
 *                           empty id matches nothing);
 *   2. invalid_ack_message  the reply is not HL7 or has no MSA segment;
 *   3. bad_message_control_id  MSA-2 != MSH-10, whatever MSA-1 says;
 *   4. bad_ack_code         MSA-1 is none of AA AE AR CA CE CR;
 *   5. application_accept / _error / _reject  by MSA-1.
 * Only the sent message's MSH and the reply's MSH delimiters, first MSA and
 * first ERR are read.
 *
 * Threading: pure functions over caller memory; thread-safe. */
#ifndef MLLP_ACK_H
#define MLLP_ACK_H

#include <stddef.h>
#include <stdint.h>

#include <mllp/export.h>
#include <mllp/hl7.h>

MLLP_BEGIN_DECLS

/* Exactly one verdict per verification. */
enum mllp_verdict {
	MLLP_APPLICATION_ACCEPT = 0, /* MSA-1 AA or CA */
	MLLP_APPLICATION_ERROR,	     /* AE or CE */
	MLLP_APPLICATION_REJECT,     /* AR or CR */
	MLLP_BAD_MESSAGE_CONTROL_ID, /* MSA-2 != MSH-10 */
	MLLP_BAD_ACK_CODE,	     /* MSA-1 none of the six */
	MLLP_INVALID_MESSAGE,	     /* the sent message is not HL7 */
	MLLP_INVALID_ACK_MESSAGE,    /* the reply is not HL7 or has no MSA */
};

/* Number of verdicts: the size of arrays indexed by enum mllp_verdict (a
 * define, not an enumerator, so that a switch over every verdict needs no
 * default). */
#define MLLP_VERDICT_COUNT 7

/* "application_accept", "application_error", ... as in the reference.
 * Never NULL. */
MLLP_API const char *mllp_verdict_name(enum mllp_verdict v);

/* What the ACK said. Views into the ACK buffer; empty when absent. */
struct mllp_ack {
	struct mllp_str code;	    /* MSA-1 */
	struct mllp_str control_id; /* MSA-2 */
	struct mllp_str text;	    /* MSA-3 */
	struct mllp_str err;	    /* first ERR segment, whole, or empty */
	struct mllp_str message;    /* the whole ACK message */
};

/* Verify ack[0..ack_len) against the sent message msg[0..msg_len).
 * Fills *out (may be NULL) as far as the ACK could be read, also when the
 * verdict is invalid_message. When why is non-NULL and why_cap > 0, a
 * NUL-terminated text is written (truncated to fit): empty for accept;
 * otherwise, with the reference's texts where it has them:
 *   invalid_message      "Invalid message: <what>", e.g. "... no MSH
 *                        segment at the start", "... empty message
 *                        control id (MSH-10)"
 *   invalid_ack_message  "Invalid ACK message: <what>", e.g. "... no MSA
 *                        segment", "... empty message"
 *   bad_message_control_id  "The message_control_id of the message
 *                        01052901 does not match the message_control_id
 *                        of the ACK message (01052902)."
 *   bad_ack_code         "The value XX is not a valid acknowledgment_code"
 *   application_error / _reject  "The ACK reports application_error (AE):
 *                        <MSA-3>" (": <MSA-3>" only when MSA-3 is set).
 * Nothing is formatted on the accept path. */
MLLP_API enum mllp_verdict mllp_ack_verify(const void *msg, size_t msg_len,
					   const void *ack, size_t ack_len,
					   struct mllp_ack *out, char *why,
					   size_t why_cap);

/* The same against an already extracted control id (MSH-10 of the sent
 * message): what a sender keeps per message in flight, so the reply is the
 * only thing parsed. control_id must be non-empty (and non-NULL), else the
 * verdict is MLLP_INVALID_MESSAGE. */
MLLP_API enum mllp_verdict mllp_ack_verify_id(const char *control_id,
					      size_t control_id_len,
					      const void *ack, size_t ack_len,
					      struct mllp_ack *out, char *why,
					      size_t why_cap);

/* Options for mllp_ack_build(). Zero-initialise, then mllp_ack_options_init
 * (code "AA", no text, MSH-10 "ACK" + sequence 0 = "ACK0", current time:
 * set control_id or count `sequence` up for unique ids). */
struct mllp_ack_options {
	const char *code; /* MSA-1: AA AE AR CA CE CR; NULL means "AA" */
	/* MSA-3 as plain text, may be NULL or empty (then no MSA-3). Written
	 * escaped: delimiters become \F\ \S\ \R\ \E\ \T\ (and \P\
	 * for a v2.7 truncation character), CR and LF become \X0D\ and
	 * \X0A\. */
	const char *text;
	/* Optional ERR segment body after "ERR|" (built with the message's
	 * delimiters by the caller, written as is), NULL for none. Must not
	 * contain CR or LF. */
	const char *err;
	/* MSH-10 of the ACK: when keep_control_id and the original MSH-10 is
	 * non-empty, the original MSH-10; else control_id if non-NULL (it
	 * must not contain a delimiter, CR or LF); else "ACK" followed by
	 * `sequence` in decimal (the caller increments it to keep ids
	 * unique). */
	int keep_control_id;
	const char *control_id;
	uint64_t sequence;
	/* MSH-7 as seconds since the epoch, written YYYYMMDDHHMMSS in UTC
	 * (clamped to the years 0000..9999); 0 means now (time()). */
	int64_t now_s;
	/* Reserved (MLLP_RESERVED_WORDS, export.h): zeroed by
	 * mllp_ack_options_init, must stay zero. */
	uint64_t reserved_[MLLP_RESERVED_WORDS];
};

MLLP_API void mllp_ack_options_init(struct mllp_ack_options *opts);

/* Build the ACK for msg[0..msg_len) into out (cap bytes, no NUL added);
 * *out_len receives its length. opts NULL means the defaults. The MSH is
 * copied with MSH-3<->MSH-5 and MSH-4<->MSH-6 swapped, MSH-7 set, MSH-9 =
 * ACK^<trigger>^ACK, MSH-10 per the options, MSH-8, MSH-11, MSH-12 and the
 * fields after them kept (e.g. MSH-18 character set), except MSH-15/16,
 * which are left empty (an acknowledgement requests no acknowledgement);
 * the MSH has at least 12 fields and does not end in empty fields past
 * MSH-12. Then MSA|code|<MSH-10>[|text] and the optional ERR, each segment
 * ended by CR, using the message's own delimiters (MSH-2 copied as is,
 * truncation character included).
 * A message that cannot be parsed gets, whatever the code asked for:
 *   MSH|^~\&|||||<MSH-7>||ACK|<id>|P|2.5 CR
 *   MSA|AR|<id>|Message was not parsable as HL7. Reason: <why> CR
 * (then the optional ERR), where <id> is the ACK's own MSH-10 as above (as
 * the reference does: there is no original id) and <why> names the defect,
 * e.g. "no MSH segment at the start"; text is not used then.
 * To size the buffer, call with out NULL and cap 0.
 * Returns 0, MLLP_ERR_BUFFER_TOO_SMALL (*out_len = size needed; nothing
 * useful written) or MLLP_ERR_INVALID_ARGUMENT (code not one of the six,
 * err with CR/LF, control_id with a delimiter, out_len NULL, out NULL with
 * cap > 0, msg NULL with msg_len > 0). */
MLLP_API int mllp_ack_build(const void *msg, size_t msg_len,
			    const struct mllp_ack_options *opts, char *out,
			    size_t cap, size_t *out_len);

MLLP_END_DECLS

#endif

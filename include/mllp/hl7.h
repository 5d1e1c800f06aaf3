/* libmllp: zero-copy views into HL7 v2 messages.
 *
 * mllp_hl7_parse() reads the MSH segment with the message's own delimiters
 * (MSH-1 field separator; MSH-2 component, repetition, escape and
 * subcomponent characters, plus the v2.7 truncation character when MSH-2 has
 * five characters). Segment terminators CR, LF and CRLF are all accepted.
 * Every result is a view (pointer + length) into the caller's buffer: the
 * buffer must outlive the views. Nothing is allocated, nothing unescaped.
 *
 * Field numbering follows HL7: for MSH, field 1 is the field separator
 * itself and field 2 the encoding characters; for other segments field 1 is
 * the first field after the segment id. Repetitions, components and
 * subcomponents are numbered from 1.
 *
 * Threading: pure functions over caller memory; thread-safe. */
#ifndef MLLP_HL7_H
#define MLLP_HL7_H

#include <stdbool.h>
#include <stddef.h>

#include <mllp/export.h>

MLLP_BEGIN_DECLS

/* A view of bytes owned by someone else. Not NUL-terminated. */
struct mllp_str {
	const char *ptr;
	size_t len;
};

struct mllp_hl7_delims {
	char field;	   /* MSH-1, usually '|' */
	char component;	   /* usually '^' */
	char repetition;   /* usually '~' */
	char escape;	   /* usually '\\' */
	char subcomponent; /* usually '&' */
	char truncation;   /* v2.7 '#', or 0 when MSH-2 has four characters */
};

/* A parsed message: the MSH fields users need most, as views. A field
 * absent from the message is an empty view (ptr may be NULL); a field
 * present but empty is an empty view pointing into the message. */
struct mllp_hl7_msg {
	const char *data;
	size_t len;
	struct mllp_hl7_delims delims;
	struct mllp_str msh;	     /* the MSH segment, without terminator */
	struct mllp_str sending_app; /* MSH-3 */
	struct mllp_str sending_facility;   /* MSH-4 */
	struct mllp_str receiving_app;	    /* MSH-5 */
	struct mllp_str receiving_facility; /* MSH-6 */
	struct mllp_str timestamp;	    /* MSH-7 */
	struct mllp_str message_type;	    /* MSH-9 whole */
	struct mllp_str type;		    /* MSH-9.1, e.g. ADT */
	struct mllp_str trigger;	    /* MSH-9.2, e.g. A01 */
	struct mllp_str structure;	    /* MSH-9.3, e.g. ADT_A01 */
	struct mllp_str control_id;	    /* MSH-10 */
	struct mllp_str processing_id;	    /* MSH-11 */
	struct mllp_str version;	    /* MSH-12 */
	struct mllp_str accept_ack_type; /* MSH-15 (enhanced mode when set) */
	struct mllp_str app_ack_type;	 /* MSH-16 */
};

/* Parse the MSH of data[0..len). Leading segment terminators are skipped;
 * a batch (FHS/BHS first) is not a message: use mllp_hl7_find_segment().
 * Only the MSH segment is read, so the cost does not depend on the size of
 * the message.
 * Delimiters must be distinct printable ASCII punctuation characters (no
 * letter, digit, space, control or non-ASCII byte).
 * Errors: MLLP_ERR_NOT_HL7 (empty, or does not start with "MSH"),
 * MLLP_ERR_BAD_MSH (no field separator, MSH-2 not 4 or 5 characters, or
 * separator/encoding characters that clash or are not punctuation),
 * MLLP_ERR_INVALID_ARGUMENT (msg NULL, or data NULL with len > 0).
 * On NOT_HL7 and BAD_MSH, msg->data and msg->len are still set and
 * msg->delims hold the defaults "|^~\&" (for a batch: the FHS/BHS
 * delimiters), so the segment functions below can still walk the bytes. */
MLLP_API int mllp_hl7_parse(struct mllp_hl7_msg *msg, const void *data,
			    size_t len);

/* True when MSH-15 or MSH-16 is present: enhanced acknowledgement mode. */
MLLP_API bool mllp_hl7_is_enhanced_mode(const struct mllp_hl7_msg *msg);

/* Iterate segments: *cursor starts at 0; each call stores the next segment
 * (without terminator, empty lines skipped) in *seg and returns true, or
 * returns false at the end (also for NULL arguments). The walk covers the
 * whole buffer msg->data[0..len), e.g. every message of a batch. */
MLLP_API bool mllp_hl7_next_segment(const struct mllp_hl7_msg *msg,
				    size_t *cursor, struct mllp_str *seg);

/* Find the nth (1-based) segment whose id is `id` (e.g. "MSA", "ERR"): the
 * id followed by the field separator or the end of the segment ("MSAX" is
 * not "MSA"). Returns 0, MLLP_ERR_NOT_FOUND (also for nth 0 or an empty
 * id) or MLLP_ERR_INVALID_ARGUMENT (NULL pointers). */
MLLP_API int mllp_hl7_find_segment(const struct mllp_hl7_msg *msg,
				   const char *id, unsigned nth,
				   struct mllp_str *seg);

/* Field `index` of segment seg (numbering as described above; index 0 is
 * the segment id). FHS and BHS are numbered like MSH. MSH-1 and MSH-2 are
 * returned whole: do not split MSH-2 into components. A field between two
 * separators, or after a trailing one, is present and empty. Returns 0,
 * MLLP_ERR_NOT_FOUND (fewer fields, or an empty segment) or
 * MLLP_ERR_INVALID_ARGUMENT (NULL pointers). */
MLLP_API int mllp_hl7_field(const struct mllp_hl7_msg *msg, struct mllp_str seg,
			    unsigned index, struct mllp_str *out);

/* Repetition `rep`, component `comp` and subcomponent `sub` (all 1-based; 0
 * means "the whole level") of a field view. rep 0 does not split at the
 * repetition separator, so comp then counts over the whole field: ask for
 * rep 1 to address the first repetition. An empty value has one empty
 * piece. Escape sequences are left as they are. Returns 0,
 * MLLP_ERR_NOT_FOUND or MLLP_ERR_INVALID_ARGUMENT (NULL pointers). */
MLLP_API int mllp_hl7_component(const struct mllp_hl7_msg *msg,
				struct mllp_str field, unsigned rep,
				unsigned comp, unsigned sub,
				struct mllp_str *out);

/* The value at `path` ("SEG-F", "SEG-F.C" or "SEG-F.C.S": e.g. "PID-3",
 * "PID-3.1", "MSH-4"; segment id of three upper-case letters or digits,
 * numbers from 1): the first segment with that id, its field F (numbered
 * as mllp_hl7_field), first repetition, component C and subcomponent S
 * when given. Returns 0 (the view may be empty: present but empty),
 * MLLP_ERR_NOT_FOUND (no such segment, field or component) or
 * MLLP_ERR_INVALID_ARGUMENT (a path not of that shape, NULL pointers). */
MLLP_API int mllp_hl7_value(const struct mllp_hl7_msg *msg, const char *path,
			    struct mllp_str *out);

/* Convenience: true when the view equals the NUL-terminated string s (a
 * NULL s equals an empty view). */
MLLP_API bool mllp_str_eq(struct mllp_str v, const char *s);

MLLP_END_DECLS

#endif

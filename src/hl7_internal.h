/* libmllp internal: the scanning primitives and header parser shared by the
 * HL7 views (hl7.c) and the ACK code (ack.c). Never installed. */
#ifndef MLLPI_HL7_INTERNAL_H
#define MLLPI_HL7_INTERNAL_H

#include <stddef.h>

#include <mllp/hl7.h>

/* First CR or LF in [p, end), or end. Reads nothing at or past end. */
const char *mllpi_find_eol(const char *p, const char *end);

/* First byte c in [p, end), or end. Reads nothing at or past end. */
const char *mllpi_find_byte(const char *p, const char *end, char c);

/* The header only: delimiters and the MSH segment view (msg->msh), no
 * field split. Same errors as mllp_hl7_parse(); on error *reason (never
 * NULL) names what is wrong as a short noun phrase ("empty message"),
 * msg->data/len are set and msg->delims hold the defaults (or the FHS/BHS
 * delimiters of a batch). */
int mllpi_hl7_head(struct mllp_hl7_msg *msg, const void *data, size_t len,
		   const char **reason);

/* mllp_hl7_parse() with the reason of a failure, as above. */
int mllpi_hl7_parse(struct mllp_hl7_msg *msg, const void *data, size_t len,
		    const char **reason);

#endif

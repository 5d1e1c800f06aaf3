/* The reserved space of public config and options structs (see
 * MLLP_RESERVED_WORDS in mllp/export.h): every function that reads such a
 * struct refuses it when its reserved words are not all zero. */
#ifndef MLLPI_RESERVED_H
#define MLLPI_RESERVED_H

#include <stddef.h>
#include <stdint.h>

#include <mllp/error.h>

/* 0 when words[0..n) are all zero. Otherwise MLLP_ERR_INVALID_ARGUMENT,
 * with err (may be NULL) set to context ctx and the message "TYPE:
 * reserved fields must be zero (initialise with TYPE_init)". */
int mllpi_check_reserved(const uint64_t *words, size_t n, const char *type,
			 enum mllp_context ctx, struct mllp_error *err);

/* mllpi_check_reserved on the reserved_ member of *s. */
#define MLLPI_CHECK_RESERVED(s, type, ctx, err)                                \
	mllpi_check_reserved((s)->reserved_,                                   \
			     sizeof((s)->reserved_) / sizeof(uint64_t), type,  \
			     ctx, err)

#endif

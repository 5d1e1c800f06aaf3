/* The ordering key of a send (producer thread): the caller's bytes, or an
 * HL7 field named by key_field ("PID-3", "PID-3.1", "MSH-4") read with
 * mllp_hl7_value (hl7.h). */
#include "conn.h"
#include "lane.h"

#include <mllp/hl7.h>

#include <string.h>

/* Set err (context send) and return its reason. */
#define KEY_ERROR(err, rc, ...)                                                \
	(mllp_error_set((err), MLLP_CTX_SEND, (rc), __VA_ARGS__), (rc))

/* The value of key_field in msg. */
static int field_key(const char *spec, const struct mllp_hl7_msg *msg, bool hl7,
		     const unsigned char **key, size_t *len,
		     struct mllp_error *err)
{
	/* The path's shape first, on a minimal message: a bad key_field is
	 * reported as such whatever the payload. */
	static const char minimal[] = "MSH|^~\\&|";
	struct mllp_hl7_msg probe;
	struct mllp_str v;
	mllp_hl7_parse(&probe, minimal, sizeof(minimal) - 1);
	if (mllp_hl7_value(&probe, spec, &v) == MLLP_ERR_INVALID_ARGUMENT)
		return KEY_ERROR(err, MLLP_ERR_INVALID_ARGUMENT,
				 "bad key_field '%.32s' (expected e.g. PID-3 "
				 "or PID-3.1)",
				 spec);
	if (!hl7)
		return KEY_ERROR(err, MLLP_ERR_NOT_HL7,
				 "key field %s: the message is not HL7", spec);
	if (mllp_hl7_value(msg, spec, &v) != 0 || v.len == 0)
		return KEY_ERROR(err, MLLP_ERR_NOT_FOUND,
				 "key field %s is missing or empty", spec);
	if (v.len > MLLP_KEY_MAX)
		return KEY_ERROR(err, MLLP_ERR_INVALID_ARGUMENT,
				 "key field %s is longer than %d bytes", spec,
				 MLLP_KEY_MAX);
	*key = (const unsigned char *)v.ptr;
	*len = v.len;
	return 0;
}

int mllpi_send_key(const struct mllp_send_options *o,
		   const struct mllp_hl7_msg *msg, bool hl7,
		   const unsigned char **key, size_t *len,
		   struct mllp_error *err)
{
	*key = NULL;
	*len = 0;
	if (!o->key && !o->key_len && !o->key_field)
		return 0;
	if (o->async)
		return KEY_ERROR(err, MLLP_ERR_INVALID_ARGUMENT,
				 "a keyed message cannot be async: its lane "
				 "waits for its reply");
	if (o->key_field) {
		if (o->key || o->key_len)
			return KEY_ERROR(err, MLLP_ERR_INVALID_ARGUMENT,
					 "key and key_field are exclusive");
		return field_key(o->key_field, msg, hl7, key, len, err);
	}
	if (!o->key || o->key_len == 0 || o->key_len > MLLP_KEY_MAX)
		return KEY_ERROR(err, MLLP_ERR_INVALID_ARGUMENT,
				 "a key is 1 to %d bytes", MLLP_KEY_MAX);
	*key = o->key;
	*len = o->key_len;
	return 0;
}

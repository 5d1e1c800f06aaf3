/* Error codes and error records: one table gives names and messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <mllp/error.h>
#include <mllp/version.h>

#include "reserved.h"

struct err_entry {
	int code;
	const char *name;
	const char *message;
};

static const struct err_entry err_table[] = {
#define MLLP_ERR_ROW_(name, off, msg)                                          \
	{MLLP_ERR_BASE - (off), "MLLP_ERR_" #name, msg},
    MLLP_ERR_TABLE(MLLP_ERR_ROW_)
#undef MLLP_ERR_ROW_
};

/* Socket errors as the reference words them (Erlang's inet error texts).
 * Other errno values fall back to the C library's description. */
static const struct err_entry errno_table[] = {
    {ECONNREFUSED, "ECONNREFUSED", "connection refused"},
    {ETIMEDOUT, "ETIMEDOUT", "timed out"},
    {ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {ECONNABORTED, "ECONNABORTED", "connection aborted"},
    {EPIPE, "EPIPE", "broken pipe"},
    {EHOSTUNREACH, "EHOSTUNREACH", "host is unreachable"},
    {ENETUNREACH, "ENETUNREACH", "network is unreachable"},
    {EADDRINUSE, "EADDRINUSE", "address already in use"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL", "address not available"},
    {ENOTCONN, "ENOTCONN", "socket is not connected"},
    {ECANCELED, "ECANCELED", "operation canceled"},
    {EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {EINVAL, "EINVAL", "invalid argument"},
    {ENOMEM, "ENOMEM", "out of memory"},
    {EMFILE, "EMFILE", "too many open files"},
    {EPERM, "EPERM", "operation not permitted"},
    {ENOSYS, "ENOSYS", "function not implemented"},
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const struct err_entry *find(const struct err_entry *t, size_t n,
				    int code)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].code == code)
			return &t[i];
	return NULL;
}

const char *mllp_strerror(int code)
{
	const struct err_entry *e;

	if (code == 0)
		return "success";
	if (code <= MLLP_ERR_BASE) {
		e = find(err_table, COUNT_OF(err_table), code);
		return e ? e->message : "unknown error";
	}
	if (code < 0) {
		e = find(errno_table, COUNT_OF(errno_table), -code);
		if (e)
			return e->message;
		/* glibc >= 2.32: thread-safe, static storage, NULL if unknown
		 */
		const char *d = strerrordesc_np(-code);
		return d ? d : "unknown error";
	}
	return "unknown error";
}

const char *mllp_err_name(int code)
{
	const struct err_entry *e;

	if (code == 0)
		return "MLLP_OK";
	if (code <= MLLP_ERR_BASE) {
		e = find(err_table, COUNT_OF(err_table), code);
		return e ? e->name : "UNKNOWN";
	}
	if (code < 0) {
		const char *n = strerrorname_np(-code);
		return n ? n : "UNKNOWN";
	}
	return "UNKNOWN";
}

const char *mllp_context_name(enum mllp_context ctx)
{
	switch (ctx) {
	case MLLP_CTX_NONE:
		return "none";
	case MLLP_CTX_CONNECT:
		return "connect";
	case MLLP_CTX_SEND:
		return "send";
	case MLLP_CTX_RECEIVE:
		return "receive";
	case MLLP_CTX_TLS:
		return "tls";
	case MLLP_CTX_VERIFY:
		return "verify";
	}
	return "unknown";
}

void mllp_error_set(struct mllp_error *err, enum mllp_context ctx, int reason,
		    const char *fmt, ...)
{
	if (!err)
		return;
	err->context = ctx;
	err->reason = reason;
	if (!fmt) {
		snprintf(err->message, sizeof(err->message), "%s",
			 mllp_strerror(reason));
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
}

void mllp_error_clear(struct mllp_error *err)
{
	if (!err)
		return;
	err->context = MLLP_CTX_NONE;
	err->reason = 0;
	err->message[0] = '\0';
}

int mllp_error_format(const struct mllp_error *err, char *buf, size_t cap)
{
	if (!err)
		return snprintf(buf, cap, "none: no error (MLLP_OK)");
	const char *msg =
	    err->message[0] ? err->message : mllp_strerror(err->reason);
	return snprintf(buf, cap, "%s: %s (%s)",
			mllp_context_name(err->context), msg,
			mllp_err_name(err->reason));
}

const char *mllp_version(void)
{
	return MLLP_VERSION_STRING;
}

int mllpi_check_reserved(const uint64_t *words, size_t n, const char *type,
			 enum mllp_context ctx, struct mllp_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (words[i] != 0) {
			mllp_error_set(err, ctx, MLLP_ERR_INVALID_ARGUMENT,
				       "%s: reserved fields must be zero "
				       "(initialise with %s_init)",
				       type, type);
			return MLLP_ERR_INVALID_ARGUMENT;
		}
	}
	return 0;
}

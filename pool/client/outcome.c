/* How the manager reports an outcome: log lines, error counters, futures
 * failed with an error. */
#include "conn.h"
#include "endpoint.h"

#include <stdarg.h>
#include <stdio.h>

void mllpi_pool_log(struct mllp_pool *p, enum mllp_log_level lvl,
		    const char *fmt, ...)
{
	if (lvl > p->cfg.log_level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (p->cfg.log)
		p->cfg.log(p->cfg.log_ctx, lvl, line);
	else
		fprintf(stderr, "[%s] mllp: %s\n", mllp_log_level_name(lvl),
			line);
}

static void count_error(struct mllpi_endpoint *ep, const struct mllp_error *e)
{
	int reason = e->reason;
	STAT_ADD(ep, st_errors, 1);
	if (reason > MLLP_ERR_BASE && reason < 0) {
		STAT_ADD(ep, st_errors_os, 1);
	} else {
		int idx = MLLP_ERR_BASE - reason;
		if (idx >= 0 && idx < MLLP_STATS_MLLP_ERRORS)
			STAT_ADD(ep, st_errors_mllp[idx], 1);
	}
	mllpi_endpoint_note_error(ep, e);
}

/* Complete f with an error (once). written: all bytes written;
 * partial: some bytes written. */
void mllpi_fail_future(struct mllp_future *f, enum mllp_context ctx, int reason,
		       const char *msg, bool written, bool partial)
{
	if (f->completed)
		return;
	struct mllp_result *r = &f->result;
	r->status = reason;
	if (msg)
		mllp_error_set(&r->error, ctx, reason, "%s", msg);
	else
		mllp_error_set(&r->error, ctx, reason, NULL);
	r->written = written;
	r->may_have_reached = written || partial;
	count_error(f->ep, &r->error);
	mllpi_publish(f);
}

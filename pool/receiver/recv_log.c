/* The receiver's rate-limited, non-blocking log (see recv_log.h). */
#include "recv_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "timer.h"

#define LINE_COST_US  (1000000u / MLLP_RECEIVER_LOG_RATE)
#define BUCKET_CAP_US ((uint64_t)MLLP_RECEIVER_LOG_BURST * LINE_COST_US)
#define WINDOW_US     ((uint64_t)MLLP_RECEIVER_LOG_WINDOW_MS * 1000u)

void mllpi_rlog_init(struct mllpi_rlog *lg,
		     const struct mllp_receiver_config *cfg)
{
	lg->fn = cfg->log;
	lg->ctx = cfg->log_ctx;
	lg->level = cfg->log_level;
	lg->fd = -1;
	lg->own_fd = false;
	lg->sock = false;
	lg->tokens_us = BUCKET_CAP_US;
	lg->last_us = mllpi_now_us();
	lg->unsent = 0;
	atomic_init(&lg->suppressed, 0);
	atomic_init(&lg->dropped, 0);
	if (lg->fn)
		return;
	lg->fd = STDERR_FILENO;
	struct stat st;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		lg->sock = true;
	} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		/* A description of our own, so O_NONBLOCK does not change
		 * the process's (shared) stderr. On failure the write is
		 * guarded by poll() instead. */
		int fd = open("/proc/self/fd/2",
			      O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0) {
			lg->fd = fd;
			lg->own_fd = true;
		}
	}
}

void mllpi_rlog_close(struct mllpi_rlog *lg)
{
	if (lg->own_fd)
		close(lg->fd);
	lg->own_fd = false;
	lg->fd = -1;
}

/* Write one whole line to the stderr sink without blocking; false when it
 * would block (or failed). */
static bool sink_write(struct mllpi_rlog *lg, const char *buf, size_t n)
{
	if (lg->fd < 0)
		return false;
	if (!lg->own_fd && !lg->sock) {
		struct pollfd p = {.fd = lg->fd, .events = POLLOUT};
		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT))
			return false;
	}
	ssize_t w;
	do
		w = lg->sock ? send(lg->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL)
			     : write(lg->fd, buf, n);
	while (w < 0 && errno == EINTR);
	return w > 0;
}

/* Take one line's worth from the bucket. */
static bool bucket_take(struct mllpi_rlog *lg)
{
	uint64_t t = mllpi_now_us();
	lg->tokens_us += t - lg->last_us;
	lg->last_us = t;
	if (lg->tokens_us > BUCKET_CAP_US)
		lg->tokens_us = BUCKET_CAP_US;
	if (lg->tokens_us < LINE_COST_US)
		return false;
	lg->tokens_us -= LINE_COST_US;
	return true;
}

/* Relaxed: the manager is the only writer; readers see each total whole. */
static void count(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void mllpi_rlog_vline(struct mllpi_rlog *lg, enum mllp_log_level lvl,
		      const char *fmt, va_list ap)
{
	if (lvl > lg->level)
		return;
	if (!bucket_take(lg)) {
		count(&lg->suppressed);
		lg->unsent++;
		return;
	}
	char line[640];
	int n = vsnprintf(line, 512, fmt, ap);
	if (n < 0)
		return;
	if (n > 511)
		n = 511;
	if (lg->unsent)
		n += snprintf(line + n, sizeof(line) - (size_t)n,
			      " (%llu earlier lines not logged)",
			      (unsigned long long)lg->unsent);
	if (lg->fn) {
		lg->unsent = 0;
		lg->fn(lg->ctx, lvl, line);
		return;
	}
	char out[720];
	int m = snprintf(out, sizeof(out), "[%s] mllp receiver: %s\n",
			 mllp_log_level_name(lvl), line);
	if (m < 0)
		return;
	if ((size_t)m >= sizeof(out))
		m = (int)sizeof(out) - 1;
	if (sink_write(lg, out, (size_t)m)) {
		lg->unsent = 0;
	} else {
		count(&lg->dropped);
		lg->unsent++;
	}
}

void mllpi_rlog_line(struct mllpi_rlog *lg, enum mllp_log_level lvl,
		     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mllpi_rlog_vline(lg, lvl, fmt, ap);
	va_end(ap);
}

static void summarise(struct mllpi_rlog *lg, struct mllpi_rlog_conn *lc,
		      const char *peer, unsigned port, uint64_t now_us_)
{
	if (lc->chunks == 0)
		return;
	uint64_t secs = (now_us_ - lc->win_start_us + 999999u) / 1000000u;
	mllpi_rlog_line(
	    lg, MLLP_LOG_WARNING,
	    "discarding unexpected data: %llu more junk chunks (%llu bytes) "
	    "from %s:%u in the last %llu s",
	    (unsigned long long)lc->chunks, (unsigned long long)lc->bytes, peer,
	    port, (unsigned long long)secs);
	lc->chunks = 0;
	lc->bytes = 0;
}

void mllpi_rlog_junk(struct mllpi_rlog *lg, struct mllpi_rlog_conn *lc,
		     const char *peer, unsigned port, uint64_t n,
		     uint64_t now_us_)
{
	if (now_us_ - lc->win_start_us >= WINDOW_US) {
		summarise(lg, lc, peer, port, now_us_);
		lc->lines = 0;
		lc->win_start_us = now_us_;
	}
	if (lc->lines < MLLP_RECEIVER_LOG_CONN_BURST) {
		lc->lines++;
		mllpi_rlog_line(
		    lg, MLLP_LOG_WARNING,
		    "discarding unexpected data (%llu bytes) from %s:%u",
		    (unsigned long long)n, peer, port);
		return;
	}
	lc->chunks++;
	lc->bytes += n;
}

void mllpi_rlog_conn_end(struct mllpi_rlog *lg, struct mllpi_rlog_conn *lc,
			 const char *peer, unsigned port, uint64_t now_us_)
{
	summarise(lg, lc, peer, port, now_us_);
}

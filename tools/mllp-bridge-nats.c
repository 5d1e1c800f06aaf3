/* mllp-bridge: the NATS connection (reconnecting, every state change
 * logged), the stream check or creation, log lines, clocks, signals. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "mllp-bridge.h"

void bridge_log(const char *fmt, ...)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s: ", BRIDGE_PROG);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* One write per line: lines of several threads do not mix. */
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

int64_t bridge_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool bridge_wait_signal(int sig_fd, int timeout_ms)
{
	struct pollfd pf = {.fd = sig_fd, .events = POLLIN};
	int r;
	do
		r = poll(&pf, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return false;
	struct signalfd_siginfo si;
	if (read(sig_fd, &si, sizeof(si)) > 0)
		bridge_log("%s, draining", strsignal((int)si.ssi_signo));
	return true;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	bridge_log("NATS connection lost%s%s; reconnecting (publishes are "
		   "refused until it is back)",
		   *url ? " to " : "", url);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	(void)closure;
	char url[256] = "";
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	bridge_log("NATS reconnected to %s", url);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub,
			   natsStatus err, void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	bridge_log("NATS asynchronous error: %s", natsStatus_GetText(err));
}

/* The servers of a comma-separated list. */
static natsStatus set_servers(natsOptions *o, const char *list)
{
	char buf[2048];
	const char *v[32];
	int n = 0;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t && n < 32;
	     t = strtok_r(NULL, ",", &save))
		v[n++] = t;
	if (n == 0)
		return NATS_INVALID_ARG;
	return natsOptions_SetServers(o, v, n);
}

/* Options: the servers, reconnect forever every 250 ms, the callbacks. */
static natsStatus make_options(const char *url, bool send_asap,
			       natsOptions **out)
{
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = set_servers(o, url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, BRIDGE_PROG);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	/* send_asap: write each publish at once (one write per message);
	 * otherwise the library's flusher writes what gathered within 1 ms
	 * (one write for many). */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, send_asap);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, on_disconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, on_reconnected, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, on_async_error, NULL);
	if (s != NATS_OK) {
		natsOptions_Destroy(o);
		return s;
	}
	*out = o;
	return NATS_OK;
}

int bridge_nats_connect(const struct bridge_nats_opts *o, jsOptions *js_opts,
			bool send_asap, struct bridge_nats *n)
{
	memset(n, 0, sizeof(*n));
	n->url = o->url;
	natsOptions *opts = NULL;
	natsStatus s = make_options(o->url, send_asap, &opts);
	if (s == NATS_OK)
		s = natsConnection_Connect(&n->nc, opts);
	natsOptions_Destroy(opts);
	if (s != NATS_OK) {
		bridge_log("cannot connect to NATS at %s: %s (is nats-server "
			   "running there, with -js?)",
			   o->url, natsStatus_GetText(s));
		return BRIDGE_EXIT_RUNTIME;
	}
	s = natsConnection_JetStream(&n->js, n->nc, js_opts);
	if (s != NATS_OK) {
		bridge_log("cannot use JetStream at %s: %s", o->url,
			   natsStatus_GetText(s));
		bridge_nats_close(n);
		return BRIDGE_EXIT_RUNTIME;
	}
	return 0;
}

/* --create-stream: file storage unless --memory-storage. */
static int create_stream(const struct bridge_nats_opts *o,
			 struct bridge_nats *n)
{
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	const char *subjects[1] = {o->subjects};
	cfg.Name = o->stream;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = o->memory ? js_MemoryStorage : js_FileStorage;
	cfg.Replicas = o->replicas;
	cfg.MaxAge = o->max_age_s * 1000000000LL;
	cfg.Duplicates = o->dup_window_s * 1000000000LL;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_AddStream(&si, n->js, &cfg, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		bridge_log("cannot create stream '%s' (subjects '%s', "
			   "replicas %lld) at %s: %s",
			   o->stream, o->subjects, (long long)o->replicas,
			   o->url, nats_GetLastError(NULL));
		return BRIDGE_EXIT_RUNTIME;
	}
	bridge_log("created stream '%s' (subjects '%s', replicas %lld)",
		   o->stream, o->subjects, (long long)o->replicas);
	return 0;
}

int bridge_stream_ensure(const struct bridge_nats_opts *o,
			 struct bridge_nats *n)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, n->js, o->stream, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s == NATS_OK)
		return 0;
	if (s == NATS_NOT_FOUND && o->create_stream)
		return create_stream(o, n);
	if (s == NATS_NOT_FOUND) {
		bridge_log("stream '%s' not found at %s (create it with "
			   "--create-stream, or name another with --stream)",
			   o->stream, o->url);
		return BRIDGE_EXIT_RUNTIME;
	}
	bridge_log("cannot look up stream '%s' at %s: %s", o->stream, o->url,
		   nats_GetLastError(NULL));
	return BRIDGE_EXIT_RUNTIME;
}

void bridge_nats_close(struct bridge_nats *n)
{
	jsCtx_Destroy(n->js);
	n->js = NULL;
	if (n->nc) {
		natsConnection_Close(n->nc);
		natsConnection_Destroy(n->nc);
	}
	n->nc = NULL;
}

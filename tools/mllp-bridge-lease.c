/* mllp-bridge out --exclusive: one owner per consumer.
 *
 * The owner holds a lease: the key STREAM.CONSUMER in the JetStream
 * key-value bucket BRIDGE_LEASE_BUCKET, whose values live --lease seconds
 * (the bucket's MaxAge, set when the first bridge creates it). A bridge
 * takes the lease with kvStore_Create, which JetStream stores only when
 * the key has no value (an expected last sequence of 0 for its subject),
 * so of several standbys polling at the same moment exactly one gets it.
 * The owner rewrites the key every lease/3 with kvStore_Update against
 * the revision it wrote last, which fails once another bridge took the
 * key. A bridge that dies stops renewing: its value expires after the
 * lease and a standby takes it at its next poll. The new owner also waits
 * until the consumer is not bound (ConsumerInfo PushBound: its previous
 * owner's connection is gone, or a bridge without --exclusive left it)
 * before binding it, so it never joins another bridge in the deliver
 * group. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mllp-bridge.h"

enum take { TAKE_OWNED, TAKE_HELD, TAKE_FREE, TAKE_ERROR };

static struct {
	struct bridge_nats *n;
	kvStore *kv;
	const char *consumer;
	char key[300];
	char value[200]; /* this bridge: host, pid, start time */
	uint64_t rev;	 /* the revision this bridge wrote last */
	int64_t every_ms;
	bool owned, thread_up, quit, renew_failing;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	_Atomic bool lost;
	_Atomic uint64_t standby;
} L = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* A key of letters, digits and "-_/=." (JetStream's key syntax). */
static bool key_ok(const char *k)
{
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || strchr("-_/=.", *k)))
			return false;
	return true;
}

/* Open the bucket, or create it with the lease as its values' lifetime;
 * the lease period is the bucket's. 0 or BRIDGE_EXIT_RUNTIME (logged). */
static int open_bucket(const struct bridge_nats_opts *no, int64_t lease_s)
{
	natsStatus s = js_KeyValue(&L.kv, L.n->js, BRIDGE_LEASE_BUCKET);
	if (s == NATS_NOT_FOUND) {
		kvConfig kc;
		kvConfig_Init(&kc);
		kc.Bucket = BRIDGE_LEASE_BUCKET;
		kc.History = 1;
		kc.TTL = lease_s * 1000000000LL;
		kc.StorageType = js_FileStorage;
		kc.Replicas = (int)no->replicas;
		s = js_CreateKeyValue(&L.kv, L.n->js, &kc);
		if (s != NATS_OK) /* created by another bridge meanwhile? */
			s = js_KeyValue(&L.kv, L.n->js, BRIDGE_LEASE_BUCKET);
	}
	kvStatus *ks = NULL;
	int64_t ttl = 0;
	if (s == NATS_OK && (s = kvStore_Status(&ks, L.kv)) == NATS_OK) {
		ttl = kvStatus_TTL(ks);
		kvStatus_Destroy(ks);
	}
	if (s != NATS_OK) {
		bridge_log("--exclusive: cannot open the lease bucket '%s' at "
			   "%s: %s",
			   BRIDGE_LEASE_BUCKET, no->url,
			   nats_GetLastError(NULL));
		return BRIDGE_EXIT_RUNTIME;
	}
	if (ttl <= 0) {
		bridge_log("--exclusive: the lease bucket '%s' keeps its "
			   "values forever, so no lease could expire (delete "
			   "its stream KV_%s and start again)",
			   BRIDGE_LEASE_BUCKET, BRIDGE_LEASE_BUCKET);
		return BRIDGE_EXIT_RUNTIME;
	}
	int64_t ttl_ms = ttl / 1000000;
	if (ttl_ms != lease_s * 1000)
		bridge_log("--exclusive: the lease bucket '%s' keeps values "
			   "%" PRId64 " ms, not --lease %" PRId64
			   " s: leases last %" PRId64 " ms",
			   BRIDGE_LEASE_BUCKET, ttl_ms, lease_s, ttl_ms);
	L.every_ms = ttl_ms / 3 > 50 ? ttl_ms / 3 : 50;
	return 0;
}

/* After a write failed: whose the key is now. TAKE_OWNED when the value
 * is this bridge's (the write went through, its answer was lost). */
static enum take whose(char *holder, size_t cap)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, L.kv, L.key);
	if (s == NATS_NOT_FOUND)
		return TAKE_FREE;
	if (s != NATS_OK) {
		snprintf(holder, cap, "%s", nats_GetLastError(NULL));
		return TAKE_ERROR;
	}
	const char *v = kvEntry_ValueString(e);
	enum take r = TAKE_HELD;
	if (v && strcmp(v, L.value) == 0) {
		L.rev = kvEntry_Revision(e);
		r = TAKE_OWNED;
	} else {
		snprintf(holder, cap, "%s", v ? v : "?");
	}
	kvEntry_Destroy(e);
	return r;
}

/* After a write of the key that answered s: written (s NATS_OK), the
 * owner's at rev; else err (errcap bytes) says why not and whose() says
 * who has it. */
static enum take written(natsStatus s, uint64_t rev, char *err, size_t errcap,
			 char *holder, size_t cap)
{
	if (s == NATS_OK) {
		L.rev = rev;
		return TAKE_OWNED;
	}
	snprintf(err, errcap, "%s", nats_GetLastError(NULL));
	return whose(holder, cap);
}

/* Take the key if it has no value. */
static enum take take(char *holder, size_t cap)
{
	uint64_t rev = 0;
	natsStatus s =
	    kvStore_Create(&rev, L.kv, L.key, L.value, (int)strlen(L.value));
	char err[300];
	enum take r = written(s, rev, err, sizeof(err), holder, cap);
	if (r == TAKE_FREE) { /* expired meanwhile, or NATS is away */
		snprintf(holder, cap, "%s", err);
		r = TAKE_ERROR;
	}
	return r;
}

/* Rewrite the owner's value; TAKE_OWNED, TAKE_HELD (lost: holder says to
 * whom) or TAKE_ERROR (not renewed this time: holder says why). */
static enum take renew(char *holder, size_t cap)
{
	uint64_t rev = 0;
	natsStatus s = kvStore_Update(&rev, L.kv, L.key, L.value,
				      (int)strlen(L.value), L.rev);
	char err[300];
	enum take r = written(s, rev, err, sizeof(err), holder, cap);
	if (r == TAKE_FREE) {
		r = take(holder, cap);
		if (r == TAKE_OWNED)
			bridge_log("lease on consumer '%s' had expired (not "
				   "renewed for longer than the lease); taken "
				   "again",
				   L.consumer);
	} else if (r == TAKE_ERROR) {
		snprintf(holder, cap, "%s", err);
	}
	return r;
}

/* One renewal of the running owner: logs a failure once, a loss always.
 * false when the lease is lost. */
static bool renew_logged(void)
{
	char why[300] = "";
	enum take r = renew(why, sizeof(why));
	if (r == TAKE_OWNED) {
		if (L.renew_failing)
			bridge_log("lease on consumer '%s' renewed again",
				   L.consumer);
		L.renew_failing = false;
		return true;
	}
	if (r == TAKE_HELD) {
		bridge_log("lost the lease on consumer '%s' to another bridge "
			   "(%s) after failing to renew it within the lease; "
			   "stopping",
			   L.consumer, why);
		L.owned = false;
		return false;
	}
	if (!L.renew_failing)
		bridge_log("cannot renew the lease on consumer '%s': %s; "
			   "retrying every %" PRId64 " ms (another bridge may "
			   "take over if this lasts longer than the lease)",
			   L.consumer, why, L.every_ms);
	L.renew_failing = true;
	return true;
}

/* The owner's renewals, every lease/3; a loss stops the bridge (SIGTERM:
 * the main thread drains). */
static void *keeper(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&L.lock);
	while (!L.quit) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += L.every_ms / 1000;
		ts.tv_nsec += (L.every_ms % 1000) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&L.wake, &L.lock, &ts);
		if (L.quit)
			break;
		pthread_mutex_unlock(&L.lock);
		bool kept = renew_logged();
		pthread_mutex_lock(&L.lock);
		if (!kept) {
			atomic_store(&L.lost, true);
			kill(getpid(), SIGTERM);
			break;
		}
	}
	pthread_mutex_unlock(&L.lock);
	return NULL;
}

/* Whether the consumer is bound: 1, 0 (or missing: bridge_consumer_bind
 * says so), -1 when it cannot be looked up (why set). */
static int bound(const char *stream, char *why, size_t cap)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	natsStatus s =
	    js_GetConsumerInfo(&ci, L.n->js, stream, L.consumer, NULL, &jerr);
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK) {
		snprintf(why, cap, "%s", nats_GetLastError(NULL));
		return -1;
	}
	int b = ci->PushBound ? 1 : 0;
	jsConsumerInfo_Destroy(ci);
	return b;
}

/* One poll of the standby: true once the lease is this bridge's and the
 * consumer is not bound. Logs the first wait and changed errors. */
static bool poll_once(const char *stream, bool *logged, char *last_err,
		      size_t cap)
{
	char why[300] = "";
	enum take r =
	    L.owned ? renew(why, sizeof(why)) : take(why, sizeof(why));
	L.owned = r == TAKE_OWNED;
	int b = L.owned ? bound(stream, why, sizeof(why)) : 0;
	if (L.owned && b == 0)
		return true;
	if (r == TAKE_HELD || (L.owned && b == 1)) {
		if (!*logged)
			bridge_log("standby: consumer '%s' is bound by another "
				   "bridge (%s%s); waiting, checking every "
				   "%" PRId64 " ms",
				   L.consumer, L.owned ? "" : "lease held by ",
				   L.owned ? "bound without a lease" : why,
				   L.every_ms);
		*logged = true;
		return false;
	}
	if (strcmp(last_err, why) != 0)
		bridge_log("standby: cannot check the lease on consumer '%s': "
			   "%s; retrying every %" PRId64 " ms",
			   L.consumer, why, L.every_ms);
	snprintf(last_err, cap, "%s", why);
	return false;
}

int bridge_lease_acquire(struct bridge_nats *n,
			 const struct bridge_nats_opts *no,
			 const struct bridge_out_opts *oo, int sig_fd)
{
	if (!oo->exclusive)
		return 0;
	L.n = n;
	L.consumer = oo->consumer;
	snprintf(L.key, sizeof(L.key), "%s.%s", no->stream, oo->consumer);
	if (!key_ok(L.key)) {
		bridge_log("--exclusive: '%s' is no lease key (stream and "
			   "consumer names of letters, digits, '-', '_', '/' "
			   "and '=' only)",
			   L.key);
		return BRIDGE_EXIT_RUNTIME;
	}
	char host[128] = "?";
	gethostname(host, sizeof(host) - 1);
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(L.value, sizeof(L.value), "%s pid %d since %lld.%03ld", host,
		 (int)getpid(), (long long)tv.tv_sec,
		 (long)(tv.tv_usec / 1000));
	int code = open_bucket(no, oo->lease_s);
	if (code != 0)
		return code;
	atomic_store(&L.standby, 1);
	bool logged = false;
	char last_err[300] = "";
	while (!poll_once(no->stream, &logged, last_err, sizeof(last_err))) {
		if (bridge_wait_signal(sig_fd, (int)L.every_ms)) {
			bridge_lease_release();
			return BRIDGE_STOPPED;
		}
	}
	atomic_store(&L.standby, 0);
	if (logged || last_err[0])
		bridge_log("taking over consumer '%s'", L.consumer);
	L.thread_up = pthread_create(&L.th, NULL, keeper, NULL) == 0;
	if (!L.thread_up) {
		bridge_log("--exclusive: cannot start the lease thread");
		bridge_lease_release();
		return BRIDGE_EXIT_RUNTIME;
	}
	return 0;
}

/* Delete the key if its value is still the one this bridge wrote (a
 * delete marker with the expected last revision). */
static void give_up(void)
{
	char subject[400];
	snprintf(subject, sizeof(subject), "$KV.%s.%s", BRIDGE_LEASE_BUCKET,
		 L.key);
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, subject, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(m, "KV-Operation", "DEL");
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.ExpectLastSubjectSeq = L.rev;
	if (s == NATS_OK)
		s = js_PublishMsg(NULL, L.n->js, m, &po, NULL);
	natsMsg_Destroy(m);
	if (s != NATS_OK)
		bridge_log("cannot give the lease on consumer '%s' up (%s): a "
			   "standby takes over when it expires",
			   L.consumer, nats_GetLastError(NULL));
}

void bridge_lease_release(void)
{
	if (!L.kv)
		return;
	if (L.thread_up) {
		pthread_mutex_lock(&L.lock);
		L.quit = true;
		pthread_cond_signal(&L.wake);
		pthread_mutex_unlock(&L.lock);
		pthread_join(L.th, NULL);
		L.thread_up = false;
	}
	if (L.owned && !atomic_load(&L.lost))
		give_up();
	L.owned = false;
	kvStore_Destroy(L.kv);
	L.kv = NULL;
}

bool bridge_lease_lost(void)
{
	return atomic_load(&L.lost);
}

uint64_t bridge_lease_standby(void)
{
	return atomic_load(&L.standby);
}

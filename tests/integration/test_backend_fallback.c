/* Backend choice of the pool: auto falls back to epoll when
 * io_uring is refused — simulated by the test hook, and for real by a
 * seccomp filter in a forked child — with one warning naming the reason
 * and a full send/ACK round trip; io_uring mode fails with the dedicated
 * error instead; epoll mode is taken as asked. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "common.h"

/* Log lines at warning level, captured. */
struct logcap {
	pthread_mutex_t mu;
	int warnings;
	int others;
	char line[512];
};

static void capture_log(void *ctx, enum mllp_log_level l, const char *line)
{
	struct logcap *c = ctx;
	pthread_mutex_lock(&c->mu);
	if (l == MLLP_LOG_WARNING) {
		c->warnings++;
		snprintf(c->line, sizeof(c->line), "%s", line);
	} else {
		c->others++;
	}
	pthread_mutex_unlock(&c->mu);
}

/* One HL7 message through the pool, acknowledged (0) or a failure code;
 * plain returns so that a forked child can use it too. */
static int round_trip(struct mllp_pool *p, uint16_t port)
{
	uint32_t ep;
	if (mllp_pool_add_endpoint(p, "127.0.0.1", port, 2, NULL, &ep, NULL))
		return 1;
	int rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		size_t len;
		char *m = tr_hl7(i, &len);
		struct mllp_send_options o;
		mllp_send_options_init(&o);
		o.kind = MLLP_PAYLOAD_HL7;
		struct mllp_future *f = NULL;
		if (mllp_pool_send(p, ep, m, len, &o, &f, NULL) != 0) {
			rc = 2;
		} else if (mllp_future_wait(f, 10000) != 0) {
			rc = 3;
		} else {
			const struct mllp_result *r = mllp_future_result(f);
			if (!r || r->status != 0 || !r->has_verdict ||
			    r->verdict != MLLP_APPLICATION_ACCEPT) {
				fprintf(stderr, "round trip %d: %s\n", i,
					r ? r->error.message : "no result");
				rc = 4;
			}
		}
		mllp_future_free(f);
		free(m);
	}
	return rc;
}

static void test_auto_falls_back(void **state)
{
	(void)state;
	/* seccomp's usual answer, an old kernel, an LSM's refusal. */
	int errs[] = {-EPERM, -ENOSYS, -EACCES};
	const char *names[] = {"EPERM", "ENOSYS", "EACCES"};
	for (int i = 0; i < 3; i++) {
		struct tr r;
		tr_start(&r, 0, TR_ACK);
		struct logcap cap;
		memset(&cap, 0, sizeof(cap));
		pthread_mutex_init(&cap.mu, NULL);
		struct mllp_pool_config cfg;
		ti_config(&cfg, NULL);
		cfg.backend = MLLP_BACKEND_AUTO;
		cfg.test_ring_error = errs[i];
		cfg.log = capture_log;
		cfg.log_ctx = &cap;
		struct mllp_pool *p = NULL;
		struct mllp_error err;
		assert_int_equal(mllp_pool_create(&cfg, &p, &err), 0);
		assert_string_equal(mllp_pool_backend(p), "epoll");
		assert_int_equal(round_trip(p, r.port), 0);
		struct mllp_pool_stats st;
		mllp_pool_stats_init(&st);
		mllp_pool_get_stats(p, &st);
		assert_string_equal(st.backend, "epoll");
		assert_true(st.acked[MLLP_APPLICATION_ACCEPT] >= 20);
		mllp_pool_destroy(p);
		/* Exactly one warning, naming the reason and the fallback;
		 * nothing else logged. */
		assert_int_equal(cap.warnings, 1);
		assert_int_equal(cap.others, 0);
		assert_non_null(strstr(cap.line, "io_uring is unavailable"));
		assert_non_null(strstr(cap.line, names[i]));
		assert_non_null(strstr(cap.line, "epoll"));
		pthread_mutex_destroy(&cap.mu);
		tr_stop(&r);
	}
}

static void test_io_uring_mode_fails(void **state)
{
	(void)state;
	struct logcap cap;
	memset(&cap, 0, sizeof(cap));
	pthread_mutex_init(&cap.mu, NULL);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.backend = MLLP_BACKEND_IO_URING;
	cfg.test_ring_error = -EPERM;
	cfg.log = capture_log;
	cfg.log_ctx = &cap;
	struct mllp_pool *p = (void *)1;
	struct mllp_error err;
	assert_int_equal(mllp_pool_create(&cfg, &p, &err),
			 MLLP_ERR_IO_URING_UNAVAILABLE);
	assert_null(p);
	assert_non_null(strstr(err.message, "io_uring is unavailable"));
	assert_int_equal(cap.warnings, 0);
	pthread_mutex_destroy(&cap.mu);
}

static void test_epoll_mode(void **state)
{
	(void)state;
	struct tr r;
	tr_start(&r, 0, TR_ACK);
	struct logcap cap;
	memset(&cap, 0, sizeof(cap));
	pthread_mutex_init(&cap.mu, NULL);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.backend = MLLP_BACKEND_EPOLL;
	cfg.log = capture_log;
	cfg.log_ctx = &cap;
	struct mllp_pool *p = NULL;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL), 0);
	assert_string_equal(mllp_pool_backend(p), "epoll");
	assert_int_equal(round_trip(p, r.port), 0);
	mllp_pool_destroy(p);
	assert_int_equal(cap.warnings, 0);
	/* An out-of-range kind is refused. */
	cfg.backend = (enum mllp_backend_kind)7;
	p = (void *)1;
	assert_int_equal(mllp_pool_create(&cfg, &p, NULL),
			 MLLP_ERR_INVALID_ARGUMENT);
	assert_null(p);
	pthread_mutex_destroy(&cap.mu);
	tr_stop(&r);
}

/* ---- the real thing: seccomp refuses io_uring_setup with EPERM --------- */

#if defined(__x86_64__)
#define TI_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TI_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(TI_AUDIT_ARCH) && defined(__NR_io_uring_setup)
static int install_filter(void)
{
	struct sock_filter prog[] = {
	    /* Another architecture's calls: allowed (not ours to judge). */
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TI_AUDIT_ARCH, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		     offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & 0xffff)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog fp = {
	    .len = (unsigned short)(sizeof(prog) / sizeof(prog[0])),
	    .filter = prog,
	};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp);
}

/* The child: exit status 0 when every check holds, else which failed. */
static int seccomp_child(uint16_t port)
{
	if (install_filter() != 0)
		return 77;
	/* The filter works: io_uring_setup now fails with EPERM. */
	if (syscall(__NR_io_uring_setup, 4, NULL) != -1 || errno != EPERM)
		return 10;
	struct logcap cap;
	memset(&cap, 0, sizeof(cap));
	pthread_mutex_init(&cap.mu, NULL);
	struct mllp_pool_config cfg;
	ti_config(&cfg, NULL);
	cfg.log = capture_log;
	cfg.log_ctx = &cap;
	/* io_uring mode: the dedicated error. */
	cfg.backend = MLLP_BACKEND_IO_URING;
	struct mllp_pool *p = NULL;
	if (mllp_pool_create(&cfg, &p, NULL) != MLLP_ERR_IO_URING_UNAVAILABLE)
		return 11;
	/* auto, no hook: epoll, one warning naming EPERM, a round trip. */
	cfg.backend = MLLP_BACKEND_AUTO;
	if (mllp_pool_create(&cfg, &p, NULL) != 0)
		return 12;
	if (strcmp(mllp_pool_backend(p), "epoll") != 0)
		return 13;
	int rc = round_trip(p, port);
	mllp_pool_destroy(p);
	if (rc)
		return 20 + rc;
	if (cap.warnings != 1 || !strstr(cap.line, "EPERM") ||
	    !strstr(cap.line, "epoll"))
		return 14;
	return 0;
}

static void test_seccomp_auto_falls_back(void **state)
{
	(void)state;
	/* Fork while this process is single-threaded (ThreadSanitizer does
	 * not allow threads after a multi-threaded fork); the receiver then
	 * starts here and its port goes to the child through a pipe. */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[1]);
		uint16_t port = 0;
		if (read(pfd[0], &port, sizeof(port)) != sizeof(port))
			_exit(9);
		_exit(seccomp_child(port));
	}
	close(pfd[0]);
	struct tr r;
	tr_start(&r, 0, TR_ACK); /* serves the child from this process */
	assert_int_equal(write(pfd[1], &r.port, sizeof(r.port)),
			 sizeof(r.port));
	close(pfd[1]);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	tr_stop(&r);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip(); /* seccomp filters not permitted here */
	if (WEXITSTATUS(st) != 0)
		fail_msg("seccomp child failed check %d", WEXITSTATUS(st));
}
#else
static void test_seccomp_auto_falls_back(void **state)
{
	(void)state;
	skip(); /* no audit arch / io_uring_setup number for this target */
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auto_falls_back),
	    cmocka_unit_test(test_io_uring_mode_fails),
	    cmocka_unit_test(test_epoll_mode),
	    cmocka_unit_test(test_seccomp_auto_falls_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

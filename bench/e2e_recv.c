/* End-to-end loopback benchmark of the receiver.
 *
 * For each connection count, three receivers run in turn, each in a forked
 * child process (so its CPU time, from wait4(), is the receiver's alone):
 *   epoll — the minimal epoll ACK receiver of e2e_common.c: reads, counts
 *           EB CR trailers and writes one prebuilt ACK per frame (the
 *           physical-limit proxy);
 *   mllp  — the library's receiver (mllp_receiver_create) with the built-in
 *           `ack` dispatcher: decoder, a real ACK built per message with
 *           mllp_ack_build, in-order replies, one coalesced send per socket;
 *   fixed — the library's receiver with a dispatcher answering the same
 *           prebuilt ACK bytes as the epoll receiver (equal work per
 *           message: what the engine itself costs);
 *   async — the library's receiver answering later from another thread:
 *           the dispatcher defers (mllp_reply_defer) and queues the handle
 *           with a copy of the message, and wakes the worker once per
 *           batch of frames (dispatch_batch_end); one worker thread takes what
 * is queued, builds each ACK with mllp_ack_build and completes them in one
 * mllp_receiver_reply_batch call (one wake-up of the manager per batch). `vs
 * mllp` is its throughput relative to the mllp row (the same ACKs answered
 * synchronously). The parent drives each with the pool (mllp_pool, N
 * connections up before the clock starts, a producer keeping the queue full)
 * for `seconds`, lets every queued message complete, and prints ACKed
 * messages/s and receiver CPU microseconds per ACKed message (the child's
 * whole-life CPU divided by every message it ACKed). `tput` and `cpu` are
 * ratios to the epoll row; throughput at equal receiver CPU, relative to the
 * epoll receiver, is 1 / cpu (messages per receiver CPU-second).
 *
 * Pinning: this process (the pool's threads) on one CPU, the receiver
 * child (all its threads: its manager, and the async worker) on another
 * (E2E_PIN=CLIENT,RECEIVER, default 0,1 when both CPUs are allowed;
 * E2E_PIN=off leaves placement to the scheduler).
 *
 * Rounds (E2E_ROUNDS, default 3): the four receivers run in turn once per
 * round; a row gives the medians over the rounds, each ratio taken within
 * its round, and the async row the range of "vs mllp".
 *
 * usage: [E2E_ROUNDS=N] e2e_recv [seconds=2] [conns list, default 16,64]
 *        E2E_BACKEND=io_uring|epoll picks the receiver's (and pool's)
 *        backend (default io_uring). */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mllp/mllp.h>

#include "e2e_common.h"

static enum mllp_backend_kind backend = MLLP_BACKEND_IO_URING;
/* The receiver's CPU (E2E_PIN), or -1: not pinned. */
static int pin_receiver = -1;

/* ---- the library's receiver (child process) ------------------------------
 */

static void quiet(void *ctx, enum mllp_log_level l, const char *line)
{
	(void)ctx;
	(void)l;
	(void)line;
}

static void fixed_dispatch(void *ctx, const struct mllp_message *m,
			   struct mllp_reply *rep)
{
	(void)ctx;
	(void)m;
	rep->kind = MLLP_REPLY_BYTES;
	rep->data = e2e_ack_frame;
	rep->len = e2e_ack_len;
}

/* ---- async: a worker thread answers deferred replies -------------------- */

#define AQ_CAP	   16384 /* > connections * max_pending_replies */
#define AQ_MSG_MAX 1024

struct aq_item {
	struct mllp_reply_handle *h;
	size_t len;
	char msg[AQ_MSG_MAX];
};

/* A ring of deferred messages: the manager puts, the worker takes all
 * that is there at once. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct aq_item *items;
	size_t head, n;
	bool worker_waits;
} aq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, false};

/* Build the ACK of it into ack (n bytes; 0: no reply). */
static size_t aq_ack(struct aq_item *it, uint64_t seq, int64_t now, char *ack,
		     size_t cap)
{
	struct mllp_ack_options o;
	mllp_ack_options_init(&o);
	o.sequence = seq;
	o.now_s = now; /* one clock read per batch, as the manager per turn */
	size_t n = 0;
	if (mllp_ack_build(it->msg, it->len, &o, ack, cap, &n) < 0)
		n = 0;
	return n;
}

#define AQ_BATCH   256
#define AQ_ACK_MAX 1024

/* Takes all that is queued (up to AQ_BATCH), builds the ACKs and completes
 * them in one mllp_receiver_reply_batch call: the manager is woken once
 * per batch. */
static void *aq_worker(void *arg)
{
	(void)arg;
	static struct aq_item batch[AQ_BATCH];
	static char acks[AQ_BATCH][AQ_ACK_MAX];
	static struct mllp_reply_item items[AQ_BATCH];
	uint64_t seq = 0;
	for (;;) {
		pthread_mutex_lock(&aq.mu);
		while (aq.n == 0) {
			aq.worker_waits = true;
			pthread_cond_wait(&aq.cv, &aq.mu);
		}
		aq.worker_waits = false;
		size_t k = 0;
		while (aq.n > 0 && k < AQ_BATCH) {
			batch[k++] = aq.items[aq.head];
			aq.head = (aq.head + 1) % AQ_CAP;
			aq.n--;
		}
		pthread_mutex_unlock(&aq.mu);
		int64_t now = (int64_t)time(NULL);
		for (size_t i = 0; i < k; i++) {
			size_t n =
			    aq_ack(&batch[i], ++seq, now, acks[i], AQ_ACK_MAX);
			items[i] =
			    (struct mllp_reply_item){.handle = batch[i].h,
						     .data = n ? acks[i] : NULL,
						     .len = n};
		}
		mllp_receiver_reply_batch(items, k);
	}
	return NULL;
}

static void async_dispatch(void *ctx, const struct mllp_message *m,
			   struct mllp_reply *rep)
{
	(void)ctx;
	if (m->len > AQ_MSG_MAX) {
		rep->kind = MLLP_REPLY_ACK;
		return;
	}
	struct mllp_reply_handle *h = mllp_reply_defer(rep);
	if (!h) {
		rep->kind = MLLP_REPLY_ACK;
		return;
	}
	pthread_mutex_lock(&aq.mu);
	if (aq.n == AQ_CAP) { /* cannot happen below the limits */
		pthread_mutex_unlock(&aq.mu);
		mllp_receiver_reply(h, NULL, 0);
		return;
	}
	struct aq_item *it = &aq.items[(aq.head + aq.n) % AQ_CAP];
	it->h = h;
	it->len = m->len;
	memcpy(it->msg, m->data, m->len);
	aq.n++;
	pthread_mutex_unlock(&aq.mu);
}

/* The end of a batch of frames: the worker is woken once for all of
 * them. */
static void async_batch_end(void *ctx)
{
	(void)ctx;
	pthread_mutex_lock(&aq.mu);
	bool wake = aq.worker_waits && aq.n > 0;
	if (wake)
		aq.worker_waits = false;
	pthread_mutex_unlock(&aq.mu);
	if (wake)
		pthread_cond_signal(&aq.cv);
}

static void mllp_receiver_child(int port_pipe, int kind)
{
	/* Before any thread starts: the manager and the worker inherit it. */
	if (pin_receiver >= 0 && e2e_pin_to(0, pin_receiver) != 0)
		_exit(1);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by the manager */
	static struct mllp_ack_dispatcher d;
	mllp_ack_dispatcher_init(&d);
	struct mllp_receiver_config c;
	mllp_receiver_config_init(&c);
	c.address = "127.0.0.1";
	c.port = 0;
	c.dispatch = kind == 2	 ? fixed_dispatch
		     : kind == 3 ? async_dispatch
				 : mllp_dispatch_ack;
	if (kind == 3) {
		aq.items = calloc(AQ_CAP, sizeof(*aq.items));
		pthread_t w;
		if (!aq.items ||
		    pthread_create(&w, NULL, aq_worker, NULL) != 0) {
			fprintf(stderr, "async worker: cannot start\n");
			_exit(1);
		}
	}
	if (kind == 3)
		c.dispatch_batch_end = async_batch_end;
	c.dispatch_ctx = &d;
	c.log = quiet;
	c.backend = backend;
	struct mllp_receiver *r;
	struct mllp_error err;
	if (mllp_receiver_create(&c, &r, &err) != 0) {
		fprintf(stderr, "receiver: %s\n", err.message);
		_exit(1);
	}
	uint16_t port = mllp_receiver_port(r);
	if (write(port_pipe, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	int sig;
	sigwait(&set, &sig);
	mllp_receiver_stop(r);
	mllp_receiver_destroy(r);
	_exit(0);
}

/* Fork a receiver (kind 0 epoll, 1 mllp, 2 fixed, 3 async); returns its
 * pid and port. */
static pid_t spawn(int kind, uint16_t *port)
{
	if (kind == 0) {
		pid_t pid = e2e_receiver_spawn(false, port);
		if (pin_receiver >= 0 && e2e_pin_to(pid, pin_receiver) != 0)
			exit(1); /* one thread: pinned whole */
		return pid;
	}
	int pp[2];
	if (pipe(pp) != 0)
		exit(1);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		close(pp[0]);
		mllp_receiver_child(pp[1], kind);
	}
	close(pp[1]);
	if (read(pp[0], port, sizeof(*port)) != sizeof(*port)) {
		fprintf(stderr, "receiver child failed\n");
		exit(1);
	}
	close(pp[0]);
	return pid;
}

/* ---- driver: the pool ----------------------------------------------------
 */

static atomic_ullong done, bad;

static void on_done(struct mllp_future *f, void *arg)
{
	(void)arg;
	const struct mllp_result *r = mllp_future_result(f);
	if (r->status == 0 && r->has_verdict &&
	    r->verdict == MLLP_APPLICATION_ACCEPT)
		atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&bad, 1, memory_order_relaxed);
	mllp_future_free(f);
}

/* Drive the receiver at port for secs (connections up before the clock
 * starts; every queued message completes before it stops). *rate: ACKed
 * messages/s; *acked: how many, i.e. every message the receiver answered
 * in its life, so that its CPU time divides by it. */
static void drive(uint16_t port, int conns, double secs, double *rate,
		  uint64_t *acked)
{
	struct mllp_pool_config pc;
	mllp_pool_config_init(&pc);
	pc.log = quiet;
	pc.backend = backend;
	pc.queue_capacity = (uint32_t)conns * 4;
	struct mllp_pool *p;
	struct mllp_error err;
	if (mllp_pool_create(&pc, &p, &err) != 0) {
		fprintf(stderr, "pool: %s\n", err.message);
		exit(1);
	}
	uint32_t ep;
	struct mllp_conn_options co;
	mllp_conn_options_init(&co);
	co.queue_timeout_ms = 5000;
	mllp_pool_add_endpoint(p, "127.0.0.1", port, (uint32_t)conns, &co, &ep,
			       NULL);
	double up_by = e2e_now_s() + 10;
	while (mllp_pool_connected_count(p, ep) < (uint32_t)conns &&
	       e2e_now_s() < up_by)
		usleep(1000);
	struct mllp_send_options so;
	mllp_send_options_init(&so);
	so.kind = MLLP_PAYLOAD_HL7;
	so.block = true;
	so.borrow_payload = true;
	so.callback = on_done;
	atomic_store(&done, 0);
	atomic_store(&bad, 0);
	double t0 = e2e_now_s(), end = t0 + secs;
	uint64_t n = 0;
	while (e2e_now_s() < end) {
		for (int k = 0; k < 256; k++) {
			struct mllp_future *f;
			if (mllp_pool_send(p, ep, e2e_msg, e2e_msg_len, &so, &f,
					   NULL) == 0)
				n++;
		}
	}
	/* Let what is queued finish: every future completes. */
	double drain_by = e2e_now_s() + 10;
	while (atomic_load(&done) + atomic_load(&bad) < n &&
	       e2e_now_s() < drain_by)
		usleep(100);
	double t = e2e_now_s() - t0;
	*acked = atomic_load(&done);
	*rate = (double)*acked / t;
	mllp_pool_destroy(p);
	if (atomic_load(&bad) > n / 100 + 1000)
		fprintf(stderr, "warning: %llu failed\n",
			(unsigned long long)atomic_load(&bad));
}

#define MAX_ROUNDS 15

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	int list[16] = {16, 64}, nlist = 2;
	if (argc > 2)
		nlist = e2e_parse_list(argv[2], list, 16);
	const char *be = getenv("E2E_BACKEND");
	if (be && strcmp(be, "epoll") == 0)
		backend = MLLP_BACKEND_EPOLL;
	const char *re = getenv("E2E_ROUNDS");
	int rounds = re ? atoi(re) : 3;
	if (secs <= 0 || nlist == 0 || rounds < 1 || rounds > MAX_ROUNDS) {
		fprintf(stderr,
			"usage: [E2E_ROUNDS=1..%d] e2e_recv "
			"[seconds=2] [conns list, default 16,64]\n",
			MAX_ROUNDS);
		return 2;
	}
	e2e_init();
	/* This process (the pool's threads start later and inherit it) on
	 * one CPU, each receiver child on the other. */
	char how[96];
	int pc, pr;
	if (e2e_pin_cpus("e2e_recv", &pc, &pr, how, sizeof(how))) {
		if (e2e_pin_to(0, pc) != 0) {
			fprintf(stderr, "e2e_recv: cannot pin to CPU %d\n", pc);
			return 1;
		}
		pin_receiver = pr;
		snprintf(how, sizeof(how),
			 "client on CPU %d, receiver on CPU %d", pc, pr);
	}

	printf("backend %s, %d rounds of %.1f s per receiver, %s (medians)\n",
	       backend == MLLP_BACKEND_EPOLL ? "epoll" : "io_uring", rounds,
	       secs, how);
	printf("%6s %8s %12s %14s %8s %8s\n", "conns", "receiver", "msg/s",
	       "recv us/msg", "tput", "cpu");
	for (int i = 0; i < nlist; i++) {
		/* Per round: each receiver's rate and CPU, and the ratios
		 * taken within the round. */
		double rate[4][MAX_ROUNDS], cpu[4][MAX_ROUNDS];
		double tput[4][MAX_ROUNDS], cpur[4][MAX_ROUNDS];
		double vs[MAX_ROUNDS];
		for (int rd = 0; rd < rounds; rd++) {
			for (int k = 0; k < 4; k++) {
				uint16_t port;
				uint64_t acked;
				pid_t pid = spawn(k, &port);
				drive(port, list[i], secs, &rate[k][rd],
				      &acked);
				/* The receiver's CPU over its whole life
				 * (start, accepts, the run, the drain) per
				 * message it ACKed. */
				double c = e2e_child_stop(pid, SIGTERM);
				cpu[k][rd] =
				    acked ? c * 1e6 / (double)acked : 0;
			}
			for (int k = 1; k < 4; k++) {
				tput[k][rd] = rate[k][rd] / rate[0][rd];
				cpur[k][rd] = cpu[k][rd] / cpu[0][rd];
			}
			vs[rd] = rate[3][rd] / rate[1][rd];
		}
		static const char *const name[4] = {"epoll", "mllp", "fixed",
						    "async"};
		char cn[16];
		snprintf(cn, sizeof(cn), "%d", list[i]);
		for (int k = 0; k < 4; k++) {
			printf("%6s %8s %12.0f %14.2f", k ? "" : cn, name[k],
			       e2e_median(rate[k], rounds),
			       e2e_median(cpu[k], rounds));
			if (k > 0)
				printf(" %7.2fx %7.2fx",
				       e2e_median(tput[k], rounds),
				       e2e_median(cpur[k], rounds));
			if (k == 3) {
				double m = e2e_median(vs, rounds); /* sorted */
				printf("  %.2fx [%.2f-%.2f] vs mllp", m, vs[0],
				       vs[rounds - 1]);
			}
			printf("\n");
		}
		fflush(stdout);
	}
	return 0;
}

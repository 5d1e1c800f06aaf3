/* The pool's submission queue (pool/io/subq.h over pool/io/mpsc.h): order, the
 * wake-up protocol and the seal, with real threads. Bounded: every wait
 * has a deadline. */
#include "testutil.h"

#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "subq.h"

struct item {
	struct mllpi_node node; /* first: a node pointer is an item pointer */
	int producer;
	int seq;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One thread: nodes come out in the order they went in, list and local
 * FIFO alike, and an empty queue says so. */
static void test_fifo_one_thread(void **state)
{
	(void)state;
	static struct mllpi_subq q;
	mllpi_subq_init(&q);
	assert_false(mllpi_subq_maybe_nonempty(&q));
	assert_null(mllpi_subq_pop(&q));
	enum { N = 1000 };
	static struct item it[N];
	/* Interleave pops with pushes: the consumer takes a batch while
	 * later pushes go on behind it. */
	int next = 0;
	for (int i = 0; i < N; i++) {
		it[i].seq = i;
		assert_int_equal(mllpi_subq_push(&q, &it[i].node),
				 MLLPI_PUSHED);
		assert_true(mllpi_subq_maybe_nonempty(&q));
		if (i % 7 == 3) {
			struct item *got = (struct item *)mllpi_subq_pop(&q);
			assert_non_null(got);
			assert_int_equal(got->seq, next++);
		}
	}
	struct mllpi_node *n;
	while ((n = mllpi_subq_pop(&q)) != NULL)
		assert_int_equal(((struct item *)n)->seq, next++);
	assert_int_equal(next, N);
	assert_false(mllpi_subq_maybe_nonempty(&q));
}

/* The manager's own submissions (local FIFO) keep their order and do not
 * starve the list, nor the list them. */
static void test_local_and_list(void **state)
{
	(void)state;
	static struct mllpi_subq q;
	mllpi_subq_init(&q);
	static struct item a[3], b[3];
	for (int i = 0; i < 3; i++) {
		a[i].producer = 0;
		a[i].seq = i;
		b[i].producer = 1;
		b[i].seq = i;
		mllpi_subq_push(&q, &a[i].node);
		mllpi_subq_push_local(&q, &b[i].node);
	}
	/* No batch in hand: the local markers first, then the list's batch,
	 * each in order. */
	for (int i = 0; i < 6; i++) {
		struct item *got = (struct item *)mllpi_subq_pop(&q);
		assert_non_null(got);
		assert_int_equal(got->producer, i < 3 ? 1 : 0);
		assert_int_equal(got->seq, i % 3);
	}
	assert_null(mllpi_subq_pop(&q));
	/* A batch in hand is finished before a local marker pushed while it
	 * is handled. */
	for (int i = 0; i < 3; i++)
		mllpi_subq_push(&q, &a[i].node);
	assert_ptr_equal(mllpi_subq_pop(&q), &a[0].node);
	mllpi_subq_push_local(&q, &b[0].node);
	mllpi_subq_push(&q, &b[1].node);
	assert_ptr_equal(mllpi_subq_pop(&q), &a[1].node);
	assert_ptr_equal(mllpi_subq_pop(&q), &a[2].node);
	assert_ptr_equal(mllpi_subq_pop(&q), &b[0].node);
	assert_ptr_equal(mllpi_subq_pop(&q), &b[1].node);
	assert_null(mllpi_subq_pop(&q));
}

enum { PRODUCERS = 4, PER = 50000 };

struct mp {
	struct mllpi_subq q;
	int efd;
	pthread_barrier_t go;
	struct item items[PRODUCERS][PER];
	int pushed[PRODUCERS]; /* successful pushes, per producer */
	bool seal_midway;
	_Atomic bool sealed; /* set by the consumer after the seal */
	pthread_t th[PRODUCERS];
	struct pa {
		struct mp *m;
		int id;
	} pa[PRODUCERS];
	/* consumer: each producer's last sequence number taken, or -1 */
	int last[PRODUCERS];
};

static void die(const char *why)
{
	fprintf(stderr, "producer: %s\n", why);
	abort();
}

static void *producer(void *arg)
{
	struct pa *a = arg;
	struct mp *m = a->m;
	pthread_barrier_wait(&m->go);
	for (int i = 0; i < PER; i++) {
		/* Half the pushes race with the seal; the rest surely come
		 * after it. */
		uint64_t deadline = now_ms() + 10000;
		while (m->seal_midway && i == PER / 2 &&
		       !atomic_load(&m->sealed))
			if (now_ms() > deadline)
				die("the consumer never sealed");
			else
				sched_yield();
		struct item *it = &m->items[a->id][i];
		it->producer = a->id;
		it->seq = i;
		enum mllpi_push r = mllpi_subq_push(&m->q, &it->node);
		/* (cmocka's assertions belong to the test's thread.) */
		if (r == MLLPI_PUSH_STOPPED && !m->seal_midway)
			die("push refused by a queue never sealed");
		if (r == MLLPI_PUSH_STOPPED)
			continue;
		m->pushed[a->id]++;
		uint64_t one = 1;
		if (r == MLLPI_PUSHED_WAKE && write(m->efd, &one, 8) != 8)
			die("eventfd write failed");
		/* Now and then let the consumer run dry and sleep. */
		if (i % 4096 == 0)
			sched_yield();
	}
	return NULL;
}

/* The consumer as the manager runs it: drain, announce sleeping, check
 * again, block on the eventfd. A lost wake-up shows as a 10 s stall. */
static int consume(struct mp *m, int until, int last_seq[PRODUCERS])
{
	int got = 0;
	uint64_t deadline = now_ms() + 10000;
	while (got < until) {
		struct mllpi_node *n = mllpi_subq_pop(&m->q);
		if (n) {
			struct item *it = (struct item *)n;
			/* Each producer's nodes in its order, none twice. */
			assert_true(it->seq > last_seq[it->producer]);
			assert_int_equal(it->seq, last_seq[it->producer] + 1);
			last_seq[it->producer] = it->seq;
			got++;
			continue;
		}
		if (mllpi_subq_prepare_sleep(&m->q)) {
			mllpi_subq_awake(&m->q);
			continue;
		}
		struct pollfd p = {.fd = m->efd, .events = POLLIN};
		int left = (int)(deadline - now_ms());
		if (left <= 0 || poll(&p, 1, left) != 1)
			fail_msg("consumer stalled with %d of %d taken: a "
				 "wake-up was lost",
				 got, until);
		uint64_t v;
		assert_int_equal(read(m->efd, &v, 8), 8);
		mllpi_subq_awake(&m->q);
	}
	return got;
}

static struct mp *mp_new(bool seal_midway)
{
	struct mp *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	mllpi_subq_init(&m->q);
	m->efd = eventfd(0, EFD_CLOEXEC);
	assert_true(m->efd >= 0);
	m->seal_midway = seal_midway;
	pthread_barrier_init(&m->go, NULL, PRODUCERS + 1);
	return m;
}

static void mp_free(struct mp *m)
{
	pthread_barrier_destroy(&m->go);
	close(m->efd);
	free(m);
}

/* Start the producers, all released at once. */
static void start_producers(struct mp *m)
{
	for (int i = 0; i < PRODUCERS; i++) {
		m->pa[i] = (struct pa){m, i};
		m->last[i] = -1;
		assert_int_equal(
		    pthread_create(&m->th[i], NULL, producer, &m->pa[i]), 0);
	}
	pthread_barrier_wait(&m->go);
}

/* Four producers, one sleeping consumer: every node arrives once, each
 * producer's in order, and no wake-up is lost. */
static void test_producers_order_and_wakeups(void **state)
{
	(void)state;
	struct mp *m = mp_new(false);
	start_producers(m);
	int *last = m->last;
	int got = consume(m, PRODUCERS * PER, last);
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(m->th[i], NULL);
		assert_int_equal(last[i], PER - 1);
	}
	assert_int_equal(got, PRODUCERS * PER);
	assert_null(mllpi_subq_pop(&m->q));
	mp_free(m);
}

/* Seal while producers push: a push either fails (and the node is not in
 * the queue) or its node is taken after the seal. Nothing is lost, nothing
 * refused gets in, and every push after a refusal is refused too. */
static void test_seal_takes_every_accepted_push(void **state)
{
	(void)state;
	struct mp *m = mp_new(true);
	start_producers(m);
	int *last = m->last;
	/* Take a few, then seal with the producers still running. */
	int got = consume(m, 1000, last);
	mllpi_subq_seal(&m->q);
	atomic_store(&m->sealed, true);
	struct mllpi_node *n;
	while ((n = mllpi_subq_pop_sealed(&m->q)) != NULL) {
		struct item *it = (struct item *)n;
		assert_int_equal(it->seq, last[it->producer] + 1);
		last[it->producer] = it->seq;
		got++;
	}
	int pushed = 0;
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(m->th[i], NULL);
		/* Accepted pushes are a prefix of each producer's. */
		assert_int_equal(last[i] + 1, m->pushed[i]);
		pushed += m->pushed[i];
	}
	assert_int_equal(got, pushed);
	/* Each producer's second half came after the seal. */
	for (int i = 0; i < PRODUCERS; i++)
		assert_true(m->pushed[i] <= PER / 2);
	/* After the producers are done nothing more appears. */
	assert_null(mllpi_subq_pop_sealed(&m->q));
	static struct item late;
	assert_int_equal(mllpi_subq_push(&m->q, &late.node),
			 MLLPI_PUSH_STOPPED);
	assert_null(mllpi_subq_pop_sealed(&m->q));
	mp_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_one_thread),
	    cmocka_unit_test(test_local_and_list),
	    cmocka_unit_test(test_producers_order_and_wakeups),
	    cmocka_unit_test(test_seal_takes_every_accepted_push),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// Submission queue: enqueue+dequeue throughput of the pool's submission
// queue (pool/io/subq.h: the lock-free intrusive MPSC list of pool/io/mpsc.h
// with the pool's wake-up and stop protocols) against a mutex+condvar
// queue, with 1 and 2 producer threads and one consumer, in the same run.
//
// Each iteration moves kBatch items from the producers to the consumer;
// items/s is reported as "items_per_second".
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/eventfd.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "mpsc_shim.h"

namespace
{

// With BENCH_QUEUE_PIN=1 in the environment the consumer runs on CPU 0 and
// every producer on CPU 1: a cross-core hand-over every time, whatever the
// scheduler would have done (it otherwise sometimes puts a producer and
// the consumer on one CPU, which changes the mutex baseline by 2x).
void pin(int cpu)
{
	static const bool on = getenv("BENCH_QUEUE_PIN") != nullptr;
	if (!on)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		abort();
}

constexpr int kBatch = 200000;
// Items as the pool has them: a queue node is 16 bytes; items are packed
// (a future holds its node; here plain memory stands in for futures).
constexpr size_t kStride = 16;

struct MutexQueue {
	std::mutex mu;
	std::condition_variable cv;
	std::deque<void *> q;
	void push(void *p)
	{
		{
			std::lock_guard<std::mutex> g(mu);
			q.push_back(p);
		}
		cv.notify_one();
	}
	void *pop()
	{
		std::unique_lock<std::mutex> g(mu);
		cv.wait(g, [&] { return !q.empty(); });
		void *p = q.front();
		q.pop_front();
		return p;
	}
};

void BM_MutexCondvar(benchmark::State &state)
{
	const int producers = static_cast<int>(state.range(0));
	pin(0);
	std::vector<char> storage(static_cast<size_t>(kBatch) * kStride);
	for (auto _ : state) {
		MutexQueue q;
		std::vector<std::thread> th;
		const int per = kBatch / producers;
		for (int p = 0; p < producers; p++)
			th.emplace_back([&, p] {
				pin(1);
				for (int i = 0; i < per; i++)
					q.push(&storage[(size_t)(p * per + i) *
							kStride]);
			});
		for (int i = 0; i < per * producers; i++)
			benchmark::DoNotOptimize(q.pop());
		for (auto &t : th)
			t.join();
	}
	state.SetItemsProcessed(state.iterations() * kBatch);
}

// The pool's submission queue (pool/io/subq.h) as the pool drives it: the
// consumer drains; when the queue is empty it announces `sleeping` and
// blocks on an eventfd, which a producer writes only when its push says
// the consumer may be asleep.
void BM_SubmissionQueue(benchmark::State &state)
{
	const int producers = static_cast<int>(state.range(0));
	pin(0);
	std::vector<char> storage(static_cast<size_t>(kBatch) * kStride);
	int efd = eventfd(0, EFD_CLOEXEC);
	std::atomic<int64_t> wakes{0}, sleeps{0};
	for (auto _ : state) {
		struct mllpi_subq *q = mllpi_bench_subq_new();
		std::vector<std::thread> th;
		const int per = kBatch / producers;
		for (int p = 0; p < producers; p++)
			th.emplace_back([&, p] {
				pin(1);
				for (int i = 0; i < per; i++) {
					if (!mllpi_bench_subq_push(
						q,
						reinterpret_cast<mllpi_node *>(
						    &storage[(size_t)(p * per +
								      i) *
							     kStride])))
						continue;
					uint64_t one = 1;
					if (write(efd, &one, 8) < 0)
						abort();
					wakes.fetch_add(
					    1, std::memory_order_relaxed);
				}
			});
		int got = 0;
		while (got < per * producers) {
			struct mllpi_node *n = mllpi_bench_subq_pop(q);
			if (n) {
				benchmark::DoNotOptimize(n);
				got++;
				continue;
			}
			if (mllpi_bench_subq_maybe_nonempty(q))
				continue; /* pushed since the pop looked */
			if (!mllpi_bench_subq_prepare_sleep(q)) {
				sleeps.fetch_add(1, std::memory_order_relaxed);
				uint64_t v;
				if (read(efd, &v, 8) < 0)
					abort();
			}
			mllpi_bench_subq_awake(q);
		}
		for (auto &t : th)
			t.join();
		mllpi_bench_free(q);
	}
	close(efd);
	state.SetItemsProcessed(state.iterations() * kBatch);
	// How often the protocol costs a system call pair, per item.
	const double items = static_cast<double>(state.iterations()) * kBatch;
	state.counters["wakes_per_kitem"] =
	    1000.0 * static_cast<double>(wakes.load()) / items;
	state.counters["sleeps_per_kitem"] =
	    1000.0 * static_cast<double>(sleeps.load()) / items;
}

// The bound: one thread pushes kBatch items, then takes them, with no
// other thread and no hand-over between cores. What is left is the cost of
// the push's locked instruction and the pop.
void BM_SubmissionQueueOneThread(benchmark::State &state)
{
	std::vector<char> storage(static_cast<size_t>(kBatch) * kStride);
	struct mllpi_subq *q = mllpi_bench_subq_new();
	for (auto _ : state) {
		for (int i = 0; i < kBatch; i++)
			mllpi_bench_subq_push(
			    q, reinterpret_cast<mllpi_node *>(
				   &storage[(size_t)i * kStride]));
		int got = 0;
		while (mllpi_node *n = mllpi_bench_subq_pop(q)) {
			benchmark::DoNotOptimize(n);
			got++;
		}
		if (got != kBatch)
			abort();
	}
	mllpi_bench_free(q);
	state.SetItemsProcessed(state.iterations() * kBatch);
}

} // namespace

BENCHMARK(BM_MutexCondvar)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SubmissionQueue)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SubmissionQueueOneThread)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Benchmarks for ACK verification and generation, and the MSH parse they
// rest on, over the corpus ADT^A01 (messages/adt_a01.hl7 + acks/aa.hl7).
//
//   bench_core --benchmark_filter='Ack|Hl7'
//
// Target: <= 250 ns per verification of the ADT^A01 pair, both for
// mllp_ack_verify (parses both) and mllp_ack_verify_id (reply only).
// BM_AckVerify/oru_1mib shows that the size of the sent message does not
// matter: only its MSH is read.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <mllp/ack.h>
#include <mllp/error.h>
#include <mllp/hl7.h>

#ifndef MLLP_CORPUS_DIR
#error "MLLP_CORPUS_DIR must name the HL7 corpus directory"
#endif

namespace
{

std::string read_ack_corpus(const char *rel)
{
	std::string path = std::string(MLLP_CORPUS_DIR) + "/" + rel;
	std::ifstream f(path, std::ios::binary);
	if (!f) {
		std::fprintf(stderr, "cannot read %s\n", path.c_str());
		std::abort();
	}
	return std::string(std::istreambuf_iterator<char>(f),
			   std::istreambuf_iterator<char>());
}

const std::string &adt_a01()
{
	static const std::string s = read_ack_corpus("messages/adt_a01.hl7");
	return s;
}

const std::string &aa_ack()
{
	static const std::string s = read_ack_corpus("acks/aa.hl7");
	return s;
}

void BM_Hl7ParseAdtA01(benchmark::State &state)
{
	const std::string &msg = adt_a01();
	struct mllp_hl7_msg m;

	for (auto _ : state) {
		int rc = mllp_hl7_parse(&m, msg.data(), msg.size());
		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(m.control_id);
	}
	if (mllp_hl7_parse(&m, msg.data(), msg.size()) != 0)
		state.SkipWithError("adt_a01 does not parse");
}
BENCHMARK(BM_Hl7ParseAdtA01);

void BM_AckVerify(benchmark::State &state)
{
	const std::string &msg = adt_a01();
	const std::string &ack = aa_ack();
	struct mllp_ack out;

	for (auto _ : state) {
		enum mllp_verdict v =
		    mllp_ack_verify(msg.data(), msg.size(), ack.data(),
				    ack.size(), &out, nullptr, 0);
		benchmark::DoNotOptimize(v);
		benchmark::DoNotOptimize(out);
	}
	if (mllp_ack_verify(msg.data(), msg.size(), ack.data(), ack.size(),
			    nullptr, nullptr, 0) != MLLP_APPLICATION_ACCEPT)
		state.SkipWithError("verdict is not application_accept");
}
BENCHMARK(BM_AckVerify)->Name("BM_AckVerify/adt_a01");

void BM_AckVerifyId(benchmark::State &state)
{
	const std::string &msg = adt_a01();
	const std::string &ack = aa_ack();
	struct mllp_hl7_msg m;
	struct mllp_ack out;

	// The id a sender keeps per message in flight.
	if (mllp_hl7_parse(&m, msg.data(), msg.size()) != 0) {
		state.SkipWithError("adt_a01 does not parse");
		return;
	}
	std::string id(m.control_id.ptr, m.control_id.len);
	for (auto _ : state) {
		enum mllp_verdict v =
		    mllp_ack_verify_id(id.data(), id.size(), ack.data(),
				       ack.size(), &out, nullptr, 0);
		benchmark::DoNotOptimize(v);
		benchmark::DoNotOptimize(out);
	}
	if (mllp_ack_verify_id(id.data(), id.size(), ack.data(), ack.size(),
			       nullptr, nullptr, 0) != MLLP_APPLICATION_ACCEPT)
		state.SkipWithError("verdict is not application_accept");
}
BENCHMARK(BM_AckVerifyId)->Name("BM_AckVerifyId/adt_a01");

// A rejection: the `why` text is formatted (slow path, for comparison).
void BM_AckVerifyBadId(benchmark::State &state)
{
	const std::string &ack = read_ack_corpus("acks/wrong_id.hl7");
	char why[256];

	for (auto _ : state) {
		enum mllp_verdict v =
		    mllp_ack_verify_id("01052901", 8, ack.data(), ack.size(),
				       nullptr, why, sizeof(why));
		benchmark::DoNotOptimize(v);
		benchmark::DoNotOptimize(why);
	}
}
BENCHMARK(BM_AckVerifyBadId)->Name("BM_AckVerifyId/wrong_id_with_why");

// The 1 MiB ORU^R01 against its AA: costs what the ADT^A01 pair costs.
void BM_AckVerifyLarge(benchmark::State &state)
{
	static const std::string msg =
	    read_ack_corpus("messages/oru_r01_pdf_1mb.hl7");
	struct mllp_ack_options o;
	std::vector<char> ack(1024);
	size_t len = 0;

	mllp_ack_options_init(&o);
	o.now_s = 1;
	if (mllp_ack_build(msg.data(), msg.size(), &o, ack.data(), ack.size(),
			   &len) != 0) {
		state.SkipWithError("build failed");
		return;
	}
	for (auto _ : state) {
		enum mllp_verdict v =
		    mllp_ack_verify(msg.data(), msg.size(), ack.data(), len,
				    nullptr, nullptr, 0);
		benchmark::DoNotOptimize(v);
	}
	if (mllp_ack_verify(msg.data(), msg.size(), ack.data(), len, nullptr,
			    nullptr, 0) != MLLP_APPLICATION_ACCEPT)
		state.SkipWithError("verdict is not application_accept");
}
BENCHMARK(BM_AckVerifyLarge)->Name("BM_AckVerify/oru_1mib");

void BM_AckBuild(benchmark::State &state)
{
	const std::string &msg = adt_a01();
	struct mllp_ack_options o;
	char out[512];
	size_t len = 0;

	mllp_ack_options_init(&o);
	o.now_s = 1148911292; // fixed: no clock read in the loop
	for (auto _ : state) {
		o.sequence++;
		int rc = mllp_ack_build(msg.data(), msg.size(), &o, out,
					sizeof(out), &len);
		benchmark::DoNotOptimize(rc);
		benchmark::DoNotOptimize(out);
	}
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
				static_cast<int64_t>(len));
}
BENCHMARK(BM_AckBuild)->Name("BM_AckBuild/adt_a01");

} // namespace

// Benchmarks for the MLLP framer: the streaming decoder against a plain
// memchr scan of the same buffer (the baseline, measured in the same run).
//
//   bench_core --benchmark_filter='Framer'
//
// Target: BM_FramerDecode/1MiB at >= 0.5x the bytes/s of BM_FramerMemchr.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <mllp/error.h>
#include <mllp/framer.h>

#ifndef MLLP_CORPUS_DIR
#error "MLLP_CORPUS_DIR must name the HL7 corpus directory"
#endif

namespace
{

std::vector<unsigned char> read_corpus(const char *rel)
{
	std::string path = std::string(MLLP_CORPUS_DIR) + "/" + rel;
	std::ifstream f(path, std::ios::binary);
	if (!f) {
		std::fprintf(stderr, "cannot read %s\n", path.c_str());
		std::abort();
	}
	return std::vector<unsigned char>(std::istreambuf_iterator<char>(f),
					  std::istreambuf_iterator<char>());
}

std::vector<unsigned char> wrap(const std::vector<unsigned char> &payload)
{
	std::vector<unsigned char> out(mllp_wrapped_size(payload.size()));
	size_t n = 0;
	if (mllp_wrap(nullptr, payload.data(), payload.size(), out.data(),
		      out.size(), &n) != 0)
		std::abort();
	out.resize(n);
	return out;
}

// The 1 MiB ORU^R01 with a base64 PDF, wrapped.
const std::vector<unsigned char> &frame_1m()
{
	static const std::vector<unsigned char> f =
	    wrap(read_corpus("messages/oru_r01_pdf_1mb.hl7"));
	return f;
}

// A 1 KiB message: the first 1024 bytes of the same message (MSH, PID,
// OBR and the start of the OBX), wrapped.
const std::vector<unsigned char> &frame_1k()
{
	static const std::vector<unsigned char> f = [] {
		std::vector<unsigned char> m =
		    read_corpus("messages/oru_r01_pdf_1mb.hl7");
		m.resize(1024);
		return wrap(m);
	}();
	return f;
}

// Feed buf in chunks of `chunk` bytes; returns the number of frames.
size_t decode(mllp_decoder *d, const unsigned char *buf, size_t len,
	      size_t chunk)
{
	size_t frames = 0;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < chunk ? len - off : chunk;
		const unsigned char *p = buf + off;
		off += n;
		while (n > 0) {
			mllp_decoded ev;
			size_t used;
			if (mllp_decoder_feed(d, p, n, &used, &ev) != 0)
				std::abort();
			if (ev.kind == MLLP_DECODE_FRAME) {
				benchmark::DoNotOptimize(ev.data);
				frames++;
			}
			p += used;
			n -= used;
		}
	}
	return frames;
}

void run_decoder(benchmark::State &state, const std::vector<unsigned char> &f,
		 size_t chunk, size_t want_frames)
{
	mllp_decoder d;
	if (mllp_decoder_init(&d, nullptr, nullptr) != 0)
		std::abort();
	for (auto _ : state) {
		size_t frames = decode(&d, f.data(), f.size(), chunk);
		if (frames != want_frames) {
			state.SkipWithError("wrong number of frames");
			break;
		}
	}
	state.SetBytesProcessed(int64_t(state.iterations()) *
				int64_t(f.size()));
	state.counters["frame_bytes"] = double(f.size());
	mllp_decoder_free(&d);
}

// The whole 1 KiB frame in one chunk (zero-copy path).
void BM_FramerDecode_1KiB(benchmark::State &state)
{
	run_decoder(state, frame_1k(), SIZE_MAX, 1);
}

// The whole 1 MiB frame in one chunk (zero-copy path).
void BM_FramerDecode_1MiB(benchmark::State &state)
{
	run_decoder(state, frame_1m(), SIZE_MAX, 1);
}

// The 1 MiB frame in 64 KiB chunks (split path: the payload is copied).
void BM_FramerDecode_1MiB_64KiBChunks(benchmark::State &state)
{
	run_decoder(state, frame_1m(), 64 * 1024, 1);
}

// 100 ADT messages framed back to back, in one chunk (many frames per
// chunk, as a busy feed delivers them).
void BM_FramerDecode_Feed100(benchmark::State &state)
{
	static const std::vector<unsigned char> feed =
	    read_corpus("messages/feed_100.mllp");
	run_decoder(state, feed, SIZE_MAX, 100);
}

// Baseline: memchr for the end byte over the same 1 MiB buffer. A decoder
// cannot do better than one scan of its input.
void BM_FramerMemchr_1MiB(benchmark::State &state)
{
	const std::vector<unsigned char> &f = frame_1m();
	for (auto _ : state) {
		const void *e =
		    std::memchr(f.data() + 1, MLLP_EB, f.size() - 1);
		benchmark::DoNotOptimize(e);
		if (e == nullptr) {
			state.SkipWithError("no end byte");
			break;
		}
	}
	state.SetBytesProcessed(int64_t(state.iterations()) *
				int64_t(f.size()));
}

} // namespace

BENCHMARK(BM_FramerDecode_1KiB);
BENCHMARK(BM_FramerDecode_1MiB);
BENCHMARK(BM_FramerMemchr_1MiB);
BENCHMARK(BM_FramerDecode_1MiB_64KiBChunks);
BENCHMARK(BM_FramerDecode_Feed100);

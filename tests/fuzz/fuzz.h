/* What every libFuzzer target here shares: the entry point libFuzzer
 * calls, once per input, and CHECK, which stops the run (a crash the
 * fuzzer reports with its input) when a property does not hold. */
#ifndef MLLP_FUZZ_H
#define MLLP_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			__builtin_trap();                                      \
	} while (0)

#endif

#!/usr/bin/env bash
# Soak: the mixed-fault run of the fault suite (32 connections, 4 producer
# threads, every fault scenario at once, a listener restart and downtime)
# with 1,000,000 messages, on each backend. Checks the same accounting
# identity as the CI-sized run. Not part of the test suite.
# usage: bench/soak_faults.sh [BUILD_DIR=build] [MESSAGES=1000000]
set -euo pipefail
build=${1:-build}
total=${2:-1000000}
bin="$build/tests/faults/test_faults_mixed"
[ -x "$bin" ] || { echo "soak_faults: $bin not built" >&2; exit 64; }
for backend in io_uring epoll; do
	start=$(date +%s.%N)
	MLLP_TEST_BACKEND=$backend FAULTS_ONLY=test_mixed \
		FAULTS_MIXED_TOTAL=$total "$bin"
	end=$(date +%s.%N)
	echo "soak_faults: $backend: $total messages in $(awk "BEGIN{printf \"%.1f\", $end - $start}") s"
done

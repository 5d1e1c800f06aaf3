#!/usr/bin/env bash
# Valgrind memcheck of a short fault run, in its own build tree.
# usage: valgrind.sh SRC_DIR BUILD_DIR CORPUS_DIR C_COMPILER
#
# Two limits of valgrind 3.19 (Debian 12) shape this run:
# - it cannot read clang's default DWARF 5: the tree is built -gdwarf-4;
# - its io_uring_enter wrapper blocks while holding valgrind's big lock,
#   so a process whose manager thread waits in io_uring_enter hangs. The
#   pool therefore runs its epoll backend here (MLLP_TEST_BACKEND=epoll);
#   everything above the I/O seam (state machines, futures, timers,
#   queues, the fault receiver) is the same code.
set -euo pipefail
src=$1 build=$2 corpus=$3 cc=$4
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS=-gdwarf-4 -DMLLP_BUILD_BENCH=OFF -DMLLP_BUILD_TOOLS=OFF \
  -DMLLP_CORPUS_DIR="$corpus" -DMLLP_WERROR=ON >/dev/null
# The fault suites, each a program (tests/faults/CMakeLists.txt).
suites=(test_faults test_faults_restart test_faults_mixed)
cmake --build "$build" -j"$(nproc)" --target "${suites[@]}" >/dev/null
# Pools allocate with malloc so memcheck sees every block; a short filter
# of scenarios plus a small mixed run keep it to a minute or two.
export MLLP_TEST_BACKEND=epoll FAULTS_LIBC_ALLOC=1 FAULTS_MIXED_TOTAL=2000
export FAULTS_ONLY=${FAULTS_ONLY:-*}
# Each suite is bounded (it takes well under a minute): a failed case can
# leave threads behind that hang a later one, and the failure must show
# at once rather than at ctest's timeout.
for t in "${suites[@]}"; do
  timeout -k 10 300 valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --show-leak-kinds=definite,indirect "$build/tests/faults/$t"
done

#!/usr/bin/env bash
# Configure, build and run part of the suite in a sanitizer build.
# usage: sanitize.sh SRC_DIR BUILD_DIR SANITIZERS LABEL_REGEX CORPUS_DIR C_COMPILER
#   [EXTRA_CORPUS_DIR]
# The sanitizer tree reads the main build's corpora (it generates none).
set -euo pipefail
src=$1 build=$2 san=$3 labels=$4 corpus=$5 cc=$6 extra=${7:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" \
  -DMLLP_SANITIZE="$san" -DMLLP_BUILD_BENCH=OFF -DMLLP_BUILD_TOOLS=ON \
  -DMLLP_CORPUS_DIR="$corpus" -DMLLP_EXTRA_CORPUS_DIR="$extra" -DMLLP_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
# The bridge's process tests run in the main suite only (label bridge).
ctest --test-dir "$build" -L "$labels" -LE bridge --output-on-failure -j"$(nproc)"
